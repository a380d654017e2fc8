//! The record (全过程留痕): reading a push's events, and the tamper-evident chains of the
//! audit log and the push events (their heads, published daily, and their verification).
//! The design is in `docs/security.md` ("The tamper-evident record").

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::push_event::PushEvent;
use serde::{Deserialize, Serialize};

/// A stored event of a push.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub event: PushEvent,
}

/// The last link of one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// `audit`, or a push-event writer stream (`host:pid/…`).
    pub chain: String,
    /// Links in the chain so far (audit entries, or event segments of the stream).
    pub seq: i64,
    pub hash: String,
}

/// Every chain's head at one time: what is published daily.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHeads {
    pub at: DateTime<Utc>,
    pub heads: Vec<ChainHead>,
}

/// What `audit verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Audit entries checked in the chain.
    pub audit_entries: u64,
    /// Audit entries written before the chain existed (no hash).
    pub audit_unchained: u64,
    /// Push-event writer streams, segments and events checked.
    pub streams: u64,
    pub segments: u64,
    pub events: u64,
    /// Published heads found in the chains.
    pub published_checked: u64,
    /// Every break found, the first one first.
    pub broken: Vec<String>,
}

impl ChainReport {
    pub fn intact(&self) -> bool {
        self.broken.is_empty()
    }
}

/// The record's reads and checks (its writes happen inside the state changes).
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// A push's events, oldest first.
    async fn push_events(&self, push_id: &str) -> Result<Vec<StoredEvent>>;
    /// The events of many pushes (a subject's history), oldest first.
    async fn events_of_pushes(&self, push_ids: &[String]) -> Result<Vec<StoredEvent>>;
    /// The head of every chain now (the audit chain, and each event stream's last link).
    async fn chain_heads(&self, at: DateTime<Utc>) -> Result<ChainHeads>;
    /// Checks every chain: each audit entry and event segment against its hash and the
    /// link before it, every event against its segment, no link missing, the audit head,
    /// and that every `published` head is still in its chain.
    async fn verify_chains(&self, published: &[ChainHeads]) -> Result<ChainReport>;
}
