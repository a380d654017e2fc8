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
//!   to the send) matches nothing; when it names a provider id it waits in the late list
//!   and is tried again every [`ReceiptQueue::LATE_EVERY`] for [`ReceiptQueue::LATE_TTL`]
//!   (at most [`ReceiptQueue::LATE_CAPACITY`], the oldest dropped first).
//! - A batch the store refuses (database down) stays queued and is tried again.
//! - Durability: receipts are in memory only between the answer to the provider and
//!   their batch's commit (a few milliseconds). A receipt lost there (the process
//!   killed), dropped from a full late list or expired leaves its push `sent`; the
//!   settling job (`pipeline::settle`) asks the provider for it once the push has waited
//!   longer than the receipt deadline.
//!
//! Metrics: `policy_push_receipts_total{stage}` (`queued`, `refused`, `applied`, `late`,
//! `expired`) and `policy_push_receipt_queue_depth{queue}` (`incoming`, `late`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use store::ReceiptUpdate;
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
    /// Receipts that matched no push yet: (expires, receipt).
    late: VecDeque<(Instant, ReceiptUpdate)>,
}

impl ReceiptQueue {
    /// Receipts accepted and not yet written, at most.
    pub const CAPACITY: usize = 100_000;
    /// Receipts written per store call, at most.
    pub const BATCH: usize = 500;
    /// How long the applier waits for more receipts to join a batch.
    pub const LINGER: Duration = Duration::from_millis(20);
    /// Receipts waiting for their send to be recorded, at most.
    pub const LATE_CAPACITY: usize = 10_000;
    /// How long a receipt waits for its send.
    pub const LATE_TTL: Duration = Duration::from_secs(30);
    /// How often the waiting receipts are tried.
    pub const LATE_EVERY: Duration = Duration::from_millis(200);
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
    /// late list is not counted.
    pub fn pending(&self) -> usize {
        let st = self.lock();
        st.incoming.len() + st.in_flight
    }

    /// Receipts waiting for their send to be recorded.
    pub fn late(&self) -> usize {
        self.lock().late.len()
    }

    /// Takes the next batch: late receipts that are due first, then incoming ones.
    fn take(&self, now: Instant, late_due: bool) -> (Vec<ReceiptUpdate>, Vec<Instant>) {
        let mut st = self.lock();
        let mut batch = Vec::new();
        let mut expires = Vec::new();
        if late_due {
            let before = st.late.len();
            st.late.retain(|(exp, _)| *exp > now);
            let expired = before - st.late.len();
            if expired > 0 {
                telemetry::metrics()
                    .receipts
                    .with_label_values(&["expired"])
                    .inc_by(expired as u64);
                tracing::warn!(
                    receipts = expired,
                    "receipts matched no push before expiring; the settling job will ask the provider"
                );
            }
            for (exp, r) in st.late.drain(..) {
                batch.push(r);
                expires.push(exp);
            }
        }
        let n = st.incoming.len().min(Self::BATCH);
        for r in st.incoming.drain(..n) {
            batch.push(r);
            expires.push(now + Self::LATE_TTL);
        }
        st.in_flight = n;
        let m = telemetry::metrics();
        m.receipt_queue_depth
            .with_label_values(&["incoming"])
            .set(st.incoming.len() as i64);
        m.receipt_queue_depth
            .with_label_values(&["late"])
            .set(st.late.len() as i64);
        (batch, expires)
    }

    /// After a batch: unmatched receipts with a provider id wait in the late list.
    fn done(&self, batch: Vec<ReceiptUpdate>, expires: Vec<Instant>, matched: &[bool]) {
        let m = telemetry::metrics();
        let applied = matched.iter().filter(|x| **x).count() as u64;
        m.receipts.with_label_values(&["applied"]).inc_by(applied);
        let mut st = self.lock();
        st.in_flight = 0;
        let mut added = 0u64;
        for ((r, exp), ok) in batch.into_iter().zip(expires).zip(matched) {
            if *ok || r.provider_id.is_none() {
                continue;
            }
            if st.late.len() >= Self::LATE_CAPACITY {
                st.late.pop_front();
                tracing::warn!("late receipt list full; dropped the oldest");
            }
            st.late.push_back((exp, r));
            added += 1;
        }
        m.receipts.with_label_values(&["late"]).inc_by(added);
        m.receipt_queue_depth
            .with_label_values(&["late"])
            .set(st.late.len() as i64);
    }

    /// A batch the store refused goes back, in order, to be tried again.
    fn give_back(&self, batch: Vec<ReceiptUpdate>, expires: Vec<Instant>, fresh: usize) {
        let mut st = self.lock();
        st.in_flight = 0;
        let late = batch.len() - fresh;
        let mut items = batch.into_iter().zip(expires);
        let old: Vec<_> = items.by_ref().take(late).collect();
        let new: Vec<ReceiptUpdate> = items.map(|(r, _)| r).collect();
        for r in new.into_iter().rev() {
            st.incoming.push_front(r);
        }
        for (r, exp) in old.into_iter().rev() {
            st.late.push_front((exp, r));
        }
    }

    async fn run(me: Weak<Self>, store: Arc<dyn store::Store>) {
        let mut next_late = Instant::now() + Self::LATE_EVERY;
        loop {
            let Some(q) = me.upgrade() else { return };
            if q.lock().incoming.is_empty() {
                // Holds the queue at most until the next late round, so a dropped queue
                // ends the task soon after.
                tokio::select! {
                    _ = q.wake.notified() => {}
                    _ = tokio::time::sleep_until(next_late) => {}
                }
            }
            if q.lock().incoming.len() < Self::BATCH {
                tokio::time::sleep(Self::LINGER).await;
            }
            let now = Instant::now();
            let late_due = now >= next_late;
            if late_due {
                next_late = now + Self::LATE_EVERY;
            }
            let (batch, expires) = q.take(now, late_due);
            if batch.is_empty() {
                continue;
            }
            let fresh = q.lock().in_flight;
            match store.apply_receipts(&batch, chrono::Utc::now()).await {
                Ok(matched) => q.done(batch, expires, &matched),
                Err(e) => {
                    tracing::error!(error = %e, receipts = batch.len(), "cannot record receipts; trying again");
                    q.give_back(batch, expires, fresh);
                    tokio::time::sleep(Self::BACKOFF).await;
                }
            }
        }
    }
}
