//! The roles that move a campaign from its audience to the providers, written against
//! the store, bus, limits and provider traits only: none of them knows which backend it
//! runs on.
//!
//! ```text
//!  launch ─► planner ──(push rows, committed)──► outbox ─► relay ─► bus push.<channel>
//!                                                                      │
//!   provider ◄── connector worker (claim queued→sending, send, record) ◄┘
//!       ├── receipts ─► API callbacks ─► queue ─► store (batches)
//!       └── status queries / pulls ◄── settle (pushes `sent` past the receipt deadline)
//! ```
//!
//! # Layout
//! - [`matching`]: audiences, tag membership, per-subject matching and explanations.
//! - [`eligibility`]: every policy in force one subject qualifies for (a compiled
//!   [`domain::rule::compiled::RuleSet`] of the policies' rules), with reasons in words.
//! - [`planner`]: turns a launched campaign into push rows (and unreachable skips).
//! - [`relay`]: moves committed queued push rows onto the bus.
//! - [`delivery`]: the connector worker of one channel.
//! - [`reconcile`]: settles pushes left in `sending` by a dead process.
//! - [`settle`]: settles pushes left in `sent` whose receipt never came (asks the
//!   provider; fails them after the give-up deadline), run with each connector role.
//! - [`followup`]: what a recipient's answer asks for (hotline key 1: the link by SMS;
//!   key 0 or a blacklisted number: an opt-out).
//! - [`retry`]: the named retry schedules.
//! - [`backoff`]: what a role does while a backend (store, bus, Redis) is gone: pause,
//!   retry with a capped backoff, count the errors and the time paused.
//! - [`codes`]: push ids and link codes.
//! - [`lifecycle`]: a policy's end (expired after `effective_to`, or withdrawn): its
//!   campaigns end, queued pushes are skipped, nothing more is sent.
//! - [`sweep`]: the daily calendar sweep (tags and continuous campaigns that change with
//!   the date alone: ages, parameter values taking effect).
//! - [`events`]: subject changes, delivery events and dead letters on the bus.
//! - [`schedule`]: starts scheduled and recurring (cron) campaigns, ends campaigns at
//!   their end date.
//! - [`delivery`] also holds the limits checked at send time: the channel's send window,
//!   opt-outs, de-duplication and the frequency cap per subject across campaigns
//!   ([`limits::SendCounter`]), and each campaign's throttle.

pub mod backoff;
pub mod codes;
pub mod delivery;
pub mod eligibility;
pub mod events;
pub mod followup;
pub mod guard;
pub mod lifecycle;
pub mod matching;
pub mod planner;
pub mod reconcile;
pub mod relay;
pub mod retry;
pub mod schedule;
pub mod settle;
pub mod sweep;

use connectors::ProviderSet;
use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Settings of the pipeline roles.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Base of recipient links, e.g. `https://push.example.gov.cn` (links are `{base}/l/{code}`).
    pub public_url: String,
    /// Provider sends per second per channel; 0 = unlimited.
    pub rate_per_second: f64,
    /// Connector workers per channel.
    pub workers_per_channel: usize,
    /// How often idle roles look for work they were not woken for.
    pub poll_interval: Duration,
    /// SMS signature the provider adds (counted in segments).
    pub sms_sign_name: String,
    /// When the hotline may call (local Shanghai time); pushes due outside wait for it.
    pub hotline_window: domain::window::SendWindow,
    /// When SMS may be sent (quiet hours outside); pushes due outside wait for it.
    pub sms_window: domain::window::SendWindow,
    /// When WeChat messages may be sent; pushes due outside wait for it.
    pub wechat_window: domain::window::SendWindow,
    /// Notice pushes a subject may get per [`Self::frequency_window`], across all
    /// campaigns, counted at send time; 0 = no cap.
    pub frequency_cap: u32,
    pub frequency_window: Duration,
    /// Multiplies every retry delay (1.0 in production; tests shrink it).
    pub retry_scale: f64,
    /// How often the calendar sweep ([`sweep`]) runs after the one at start; `None`:
    /// daily, just after 00:00 Asia/Shanghai.
    pub sweep_interval: Option<Duration>,
    /// `None`: this process is the only one running connectors (the embedded default), so
    /// at start every push left in `sending` is settled. `Some(lease)`: connector processes
    /// may run side by side, so only claims older than the lease (longer than any send
    /// takes) are settled, at start and then every quarter lease.
    pub sending_lease: Option<Duration>,
    /// `None`: every subject write reaches this process's population index directly (one
    /// process). `Some(window)`: the index follows other processes' writes over the bus,
    /// so before planning a launch the planner also indexes subjects written in the last
    /// `window` straight from the store (a write just before a launch may not have
    /// arrived yet).
    pub index_catch_up: Option<Duration>,
    /// A push `sent` this long without a receipt is asked about at the provider
    /// ([`settle`]).
    pub receipt_deadline: Duration,
    /// A push without a final status this long after it was sent is failed ("no receipt
    /// from provider"): providers keep receipts about three days.
    pub receipt_give_up: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            rate_per_second: 0.0,
            workers_per_channel: 2,
            poll_interval: Duration::from_millis(250),
            sms_sign_name: "人社服务".into(),
            hotline_window: domain::window::SendWindow::staffed_hours(),
            sms_window: domain::window::SendWindow::daytime(),
            wechat_window: domain::window::SendWindow::daytime(),
            frequency_cap: 2,
            frequency_window: Duration::from_secs(7 * 24 * 3600),
            retry_scale: 1.0,
            sweep_interval: None,
            sending_lease: None,
            index_catch_up: None,
            receipt_deadline: Duration::from_secs(10 * 60),
            receipt_give_up: Duration::from_secs(72 * 3600),
        }
    }
}

impl PipelineConfig {
    /// The send window of a channel.
    pub fn window(&self, channel: domain::Channel) -> &domain::window::SendWindow {
        match channel {
            domain::Channel::Sms => &self.sms_window,
            domain::Channel::Wechat => &self.wechat_window,
            domain::Channel::Hotline => &self.hotline_window,
        }
    }
}

/// What time it is for the roles (the real clock, or a simulated one in tests).
pub type Clock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

/// The roles a process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleName {
    Planner,
    Relay,
    Connector(domain::Channel),
}

/// Shared handles of the pipeline roles.
#[derive(Clone)]
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn bus::Bus>,
    pub limiter: Arc<dyn limits::RateLimiter>,
    pub providers: ProviderSet,
    pub config: PipelineConfig,
    /// Wakes the planner and relay when there is new work, so they need not wait a poll.
    pub wake: Arc<Notify>,
    /// The population index of bulk matching: built by [`Pipeline::load_index`] at start,
    /// then updated by every subject upsert ([`matching::index_subjects`]).
    pub index: matching::SharedIndex,
    /// Frequency caps and de-duplication at send time; in memory unless replaced (e.g.
    /// by [`limits::Limits::counter`] over Redis when connectors run in several processes).
    pub counter: Arc<dyn limits::SendCounter>,
    /// The time the send-time limits and the scheduler go by.
    pub clock: Clock,
    /// Keyed pseudonyms of subjects: bus keys, `subject.changed`, the counter's Redis
    /// keys. A random key per process unless replaced; processes of one deployment must
    /// share the configured key (`POLICY_PUSH_PSEUDONYM_KEY`).
    pub pseudonyms: domain::pseudonym::Pseudonymizer,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn bus::Bus>,
        limiter: Arc<dyn limits::RateLimiter>,
        providers: ProviderSet,
        config: PipelineConfig,
    ) -> Self {
        Self {
            store,
            bus,
            limiter,
            providers,
            config,
            wake: Arc::new(Notify::new()),
            index: Default::default(),
            counter: Arc::new(limits::MemoryCounter::new()),
            clock: Arc::new(chrono::Utc::now),
            pseudonyms: domain::pseudonym::Pseudonymizer::from_key(&rand::random::<[u8; 32]>())
                .expect("32 bytes are a long enough key"),
        }
    }

    /// Today's date in Shanghai by [`Pipeline::clock`]: the date every rule is evaluated
    /// on, with the parameter values in force that day.
    pub fn today(&self) -> chrono::NaiveDate {
        (self.clock)()
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .date_naive()
    }

    /// Now, by the pipeline's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }

    /// (Re)builds the population index from the store; returns the subjects indexed.
    pub async fn load_index(&self) -> anyhow::Result<u32> {
        let started = std::time::Instant::now();
        let index = matching::load_index(self.store.as_ref()).await?;
        let n = index.len();
        *self.index.write().expect("population index lock") = index;
        tracing::info!(
            subjects = n,
            ms = started.elapsed().as_millis() as u64,
            "population index built"
        );
        Ok(n)
    }

    /// Starts the given roles as tasks; they stop (draining in-flight work) when
    /// `shutdown` is cancelled.
    pub async fn spawn(
        &self,
        roles: &[RoleName],
        shutdown: CancellationToken,
    ) -> anyhow::Result<tokio::task::JoinSet<()>> {
        let mut set = tokio::task::JoinSet::new();
        if self.config.sending_lease.is_none()
            && roles.iter().any(|r| matches!(r, RoleName::Connector(_)))
        {
            // One process runs every connector: its in-memory frequency counter starts
            // from the notices the store says went out within the cap's window.
            let n = guard::seed_counter(self).await?;
            tracing::info!(sends = n, "frequency counter seeded from recent sends");
        }
        for role in roles {
            match *role {
                RoleName::Planner => {
                    set.spawn(planner::run(self.clone(), shutdown.clone()));
                    set.spawn(sweep::run(self.clone(), shutdown.clone()));
                    set.spawn(schedule::run(self.clone(), shutdown.clone()));
                }
                RoleName::Relay => {
                    // A bus that forgets (in-process): everything handed over goes out
                    // again. A durable bus keeps what it acknowledged: only rows a dead
                    // relay took but never confirmed (`dispatched = 1`: only a relay of an
                    // earlier version leaves that; `hand_over` commits straight to 2).
                    let durable = self.bus.durable();
                    let n = self.store.reset_dispatched(durable).await?;
                    if n > 0 {
                        tracing::info!(
                            pushes = n,
                            durable,
                            "re-queued pushes not known to be on the bus"
                        );
                    }
                    set.spawn(relay::run(self.clone(), shutdown.clone()));
                }
                RoleName::Connector(channel) => {
                    reconcile::settle_sending(self, channel).await?;
                    set.spawn(settle::run(self.clone(), channel, shutdown.clone()));
                    if let Some(lease) = self.config.sending_lease {
                        set.spawn(reconcile::run(
                            self.clone(),
                            channel,
                            lease,
                            shutdown.clone(),
                        ));
                    }
                    for worker in 0..self.config.workers_per_channel.max(1) {
                        let sub = self
                            .bus
                            .subscribe(
                                &bus::topics::push_topic(channel.as_str()),
                                &format!("connector-{channel}"),
                            )
                            .await?;
                        set.spawn(delivery::run(
                            self.clone(),
                            channel,
                            worker,
                            sub,
                            shutdown.clone(),
                        ));
                    }
                    // Pushes tried again arrive on their own topic, so a burst of retries
                    // does not hold up first sends.
                    let retries = self
                        .bus
                        .subscribe(
                            &bus::topics::retry_topic(channel.as_str()),
                            &format!("connector-{channel}-retry"),
                        )
                        .await?;
                    set.spawn(delivery::run(
                        self.clone(),
                        channel,
                        self.config.workers_per_channel.max(1),
                        retries,
                        shutdown.clone(),
                    ));
                }
            }
        }
        Ok(set)
    }
}
