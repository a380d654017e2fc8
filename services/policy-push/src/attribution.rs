//! Provider APIs do not carry our campaign and subject ids, but the sandbox lists
//! messages by campaign. In the embedded default the server knows both sides: a provider
//! wrapper notes each outgoing push id, and the simulators look it up when the message
//! arrives.

use async_trait::async_trait;
use connectors::{Lookup, OutgoingMessage, Provider, SendOutcome};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Push id → (campaign id, subject id) of messages on their way to a simulator.
#[derive(Default, Clone)]
pub struct InFlight(Arc<Mutex<HashMap<String, (String, String)>>>);

impl InFlight {
    pub fn attribute(&self, push_ref: &str) -> Option<(String, String)> {
        self.0
            .lock()
            .expect("attribution lock")
            .get(push_ref)
            .cloned()
    }

    fn note(&self, batch: &[OutgoingMessage]) {
        let mut m = self.0.lock().expect("attribution lock");
        for msg in batch {
            m.insert(
                msg.push_id.clone(),
                (msg.campaign_id.clone(), msg.subject_id.clone()),
            );
        }
    }

    fn forget(&self, batch: &[OutgoingMessage]) {
        let mut m = self.0.lock().expect("attribution lock");
        for msg in batch {
            m.remove(&msg.push_id);
        }
    }
}

/// A provider that notes what it sends in [`InFlight`] for the duration of the call.
pub struct Attributing {
    pub inner: Arc<dyn Provider>,
    pub in_flight: InFlight,
}

#[async_trait]
impl Provider for Attributing {
    fn channel(&self) -> domain::Channel {
        self.inner.channel()
    }
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }
    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        self.in_flight.note(batch);
        let out = self.inner.send(batch).await;
        self.in_flight.forget(batch);
        out
    }
    async fn lookup(&self, msg: &OutgoingMessage, sent_on: chrono::NaiveDate) -> Lookup {
        self.inner.lookup(msg, sent_on).await
    }
    async fn query_receipt(
        &self,
        msg: &OutgoingMessage,
        sent_on: chrono::NaiveDate,
    ) -> Result<Option<connectors::Receipt>, connectors::PullError> {
        self.inner.query_receipt(msg, sent_on).await
    }
    async fn pull_receipts(
        &self,
        limit: usize,
    ) -> Result<Vec<connectors::Receipt>, connectors::PullError> {
        self.inner.pull_receipts(limit).await
    }
}
