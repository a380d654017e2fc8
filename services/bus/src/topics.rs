//! Topic names and the messages carried on them.

use serde::{Deserialize, Serialize};

/// Push tasks for one channel's connector: `push.sms`, `push.wechat`, `push.hotline`.
pub fn push_topic(channel: &str) -> String {
    format!("push.{channel}")
}

/// A push row handed from the outbox to a connector. The row in the store is the truth;
/// the task only names it, so a duplicated task is harmless (the claim fails).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushTask {
    pub push_id: String,
    pub campaign_id: String,
}

impl PushTask {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, crate::BusError> {
        serde_json::from_slice(bytes).map_err(|e| crate::BusError::Decode {
            topic: "push.*".into(),
            detail: e.to_string(),
        })
    }
}
