//! The bus between roles: named topics of keyed messages, consumed by groups, acknowledged
//! after the consumer's work is durable.
//!
//! # Layout
//! - [`Bus`], [`Subscription`], [`Delivery`]: the interface every backend implements
//!   (the Kafka backend maps topics to Kafka topics, keys to message keys, groups to
//!   consumer groups and `ack` to an offset commit).
//! - [`memory`]: the in-process backend of the embedded default. It does not keep
//!   messages across a restart ([`Bus::durable`] is false), so the outbox relay
//!   re-reads undelivered rows at start.
//! - [`kafka`]: the production backend (rdkafka): idempotent producer, consumer groups,
//!   offsets committed in order on `ack` ([`Bus::durable`] is true).
//! - [`topics`]: the topic names and the messages carried on them (protobuf, generated
//!   from `proto/` by prost).
//! - [`open`]: picks the backend from configuration.

pub mod kafka;
pub mod memory;
pub mod topics;

use std::sync::Arc;

use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus closed")]
    Closed,
    #[error("bad message on {topic}: {detail}")]
    Decode { topic: String, detail: String },
    /// The backend refused or failed (Kafka unreachable, topic creation refused, ...).
    #[error("bus backend: {0}")]
    Backend(String),
}

/// The in-process bus when `kafka` is `None` (the embedded default), else Kafka.
pub fn open(kafka: Option<kafka::KafkaConfig>) -> Result<Arc<dyn Bus>, BusError> {
    match kafka {
        None => Ok(Arc::new(memory::MemoryBus::new())),
        Some(cfg) => Ok(Arc::new(kafka::KafkaBus::new(cfg)?)),
    }
}

/// One message as delivered to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    /// Backend-specific position, used by `ack`.
    pub offset: u64,
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes messages; returns when the backend has them (for Kafka: acknowledged
    /// by the brokers). Messages with the same key stay in order.
    async fn publish(&self, topic: &str, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError>;
    /// Joins consumer group `group` on `topic`.
    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BusError>;

    /// Whether published messages survive a restart of every process.
    fn durable(&self) -> bool;

    /// Whether the backend answers (`/readyz`): for Kafka, the cluster's metadata within
    /// a second; the in-process bus always does.
    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

#[async_trait]
pub trait Subscription: Send {
    /// Waits for at least one message and returns up to `max`; `None` once the bus is closed.
    async fn next_batch(&mut self, max: usize) -> Option<Vec<Delivery>>;
    /// Acknowledges handled messages (call after their effects are durable).
    async fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), BusError>;
}
