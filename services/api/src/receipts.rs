//! The receipt queue between the provider callbacks and the store.
//!
//! A callback checks its receipts (authentication, the push's channel and state, see
//! `routes::callbacks`) and hands them to [`ReceiptQueue::offer`]; the provider gets its
//! success answer as soon as they are queued, so a burst of receipts never makes a
//! provider wait (and give up). One applier task writes them with
//! [`store::PushStore::apply_receipts`]: up to [`ReceiptQueue::BATCH`] at a time, at
//! most [`ReceiptQueue::LINGER`] after the first one arrived.
//!
//! - Bounded: with [`ReceiptQueue::CAPACITY`] receipts waiting, a callback is refused
//!   whole (the handler answers "try again", and the provider sends it again later).
//! - A receipt whose push is not recorded as sent yet (it overtook the provider's answer
//!   to the send) matches nothing; when it names a provider id it is kept in the store
//!   ([`store::PushStore::keep_late_receipts`], 24 h, at most 100,000, the oldest dropped
//!   first) and applied when the send is recorded, also after a restart. Every
//!   [`ReceiptQueue::LATE_EVERY`] the applier sweeps them
//!   ([`store::PushStore::sweep_late_receipts`]): expired ones are deleted, any whose send
//!   was recorded meanwhile is applied.
//! - A batch the store refuses (database down) stays queued and is tried again.
//! - Durability: receipts are in memory only between the answer to the provider and
//!   their batch's commit (a few milliseconds). A receipt lost there (the process
//!   killed), dropped from the full late table or expired leaves its push `sent`; the
//!   settling job (`pipeline::settle`) asks the provider for it once the push has waited
//!   longer than the receipt deadline.
//!
//! Metrics: `policy_push_receipts_total{stage}` (`queued`, `refused`, `applied`, `late`,
//! `expired`) and `policy_push_receipt_queue_depth{queue}` (`incoming`, `late`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use store::{LateReceiptLimits, ReceiptUpdate};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Receipts waiting to be written, and the task that writes them.
pub struct ReceiptQueue {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    incoming: VecDeque<ReceiptUpdate>,
    /// Receipts of the batch being written.
    in_flight: usize,
}

impl ReceiptQueue {
    /// Receipts accepted and not yet written, at most.
    pub const CAPACITY: usize = 100_000;
    /// Receipts written per store call, at most.
    pub const BATCH: usize = 500;
    /// How long the applier waits for more receipts to join a batch.
    pub const LINGER: Duration = Duration::from_millis(20);
    /// How often the kept late receipts are swept (expired ones deleted, any whose send
    /// was recorded meanwhile applied).
    pub const LATE_EVERY: Duration = Duration::from_secs(1);
    /// How long the applier waits after the store refused a batch.
    const BACKOFF: Duration = Duration::from_millis(500);

    /// A queue and its applier task (which ends when the queue is dropped).
    pub fn start(store: Arc<dyn store::Store>) -> Arc<Self> {
        let me = Arc::new(Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(Self::run(Arc::downgrade(&me), store));
        }
        me
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("receipt queue lock")
    }

    /// Queues `receipts`, all or none: false when there is no room for all of them.
    pub fn offer(&self, receipts: Vec<ReceiptUpdate>) -> bool {
        let m = telemetry::metrics();
        let n = receipts.len() as u64;
        {
            let mut st = self.lock();
            if st.incoming.len() + st.in_flight + receipts.len() > Self::CAPACITY {
                m.receipts.with_label_values(&["refused"]).inc_by(n);
                return false;
            }
            st.incoming.extend(receipts);
            m.receipt_queue_depth
                .with_label_values(&["incoming"])
                .set(st.incoming.len() as i64);
        }
        m.receipts.with_label_values(&["queued"]).inc_by(n);
        self.wake.notify_one();
        true
    }

    /// Receipts accepted and not written yet (queued or in the batch being written); the
    /// kept late receipts are not counted.
    pub fn pending(&self) -> usize {
        let st = self.lock();
        st.incoming.len() + st.in_flight
    }

    /// Takes the next batch of incoming receipts.
    fn take(&self) -> Vec<ReceiptUpdate> {
        let mut st = self.lock();
        let n = st.incoming.len().min(Self::BATCH);
        let batch: Vec<ReceiptUpdate> = st.incoming.drain(..n).collect();
        st.in_flight = n;
        telemetry::metrics()
            .receipt_queue_depth
            .with_label_values(&["incoming"])
            .set(st.incoming.len() as i64);
        batch
    }

    /// A batch the store refused goes back, in order, to be tried again.
    fn give_back(&self, batch: Vec<ReceiptUpdate>) {
        let mut st = self.lock();
        st.in_flight = 0;
        for r in batch.into_iter().rev() {
            st.incoming.push_front(r);
        }
    }

    /// Writes a batch; receipts that matched nothing and name a provider id are kept in
    /// the store for their send. Err: nothing of the batch is lost, it is to be retried.
    async fn write(store: &dyn store::Store, batch: &[ReceiptUpdate]) -> store::Result<()> {
        let now = chrono::Utc::now();
        let matched = store.apply_receipts(batch, now).await?;
        let unmatched: Vec<ReceiptUpdate> = batch
            .iter()
            .zip(&matched)
            .filter(|(_, ok)| !**ok)
            .map(|(r, _)| r.clone())
            .collect();
        let kept = store
            .keep_late_receipts(&unmatched, now, LateReceiptLimits::default())
            .await?;
        let m = telemetry::metrics();
        m.receipts
            .with_label_values(&["applied"])
            .inc_by(matched.iter().filter(|x| **x).count() as u64);
        m.receipts.with_label_values(&["late"]).inc_by(kept);
        Ok(())
    }

    /// Deletes expired kept receipts and applies those whose send was recorded.
    async fn sweep(store: &dyn store::Store) {
        match store.sweep_late_receipts(chrono::Utc::now()).await {
            Ok(done) => {
                let m = telemetry::metrics();
                m.receipts
                    .with_label_values(&["applied"])
                    .inc_by(done.applied);
                m.receipts
                    .with_label_values(&["expired"])
                    .inc_by(done.expired);
                m.receipt_queue_depth
                    .with_label_values(&["late"])
                    .set(done.waiting);
                if done.expired > 0 {
                    tracing::warn!(
                        receipts = done.expired,
                        "receipts matched no push before expiring; the settling job will ask the provider"
                    );
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot sweep late receipts"),
        }
    }

    async fn run(me: Weak<Self>, store: Arc<dyn store::Store>) {
        let mut next_late = Instant::now() + Self::LATE_EVERY;
        loop {
            let Some(q) = me.upgrade() else { return };
            if q.lock().incoming.is_empty() {
                // Holds the queue at most until the next sweep, so a dropped queue ends
                // the task soon after.
                tokio::select! {
                    _ = q.wake.notified() => {}
                    _ = tokio::time::sleep_until(next_late) => {}
                }
            }
            if q.lock().incoming.len() < Self::BATCH {
                tokio::time::sleep(Self::LINGER).await;
            }
            if Instant::now() >= next_late {
                next_late = Instant::now() + Self::LATE_EVERY;
                Self::sweep(store.as_ref()).await;
            }
            let batch = q.take();
            if batch.is_empty() {
                continue;
            }
            match Self::write(store.as_ref(), &batch).await {
                Ok(()) => q.lock().in_flight = 0,
                Err(e) => {
                    tracing::error!(error = %e, receipts = batch.len(), "cannot record receipts; trying again");
                    q.give_back(batch);
                    tokio::time::sleep(Self::BACKOFF).await;
                }
            }
        }
    }
}
