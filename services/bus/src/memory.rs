//! The in-process bus: one unbounded queue per (topic, group). Keys keep order because a
//! topic has a single queue per group; several consumers of one group share it.

use crate::{Bus, BusError, Delivery, Subscription};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

type Queue = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Delivery>>>;

#[derive(Default)]
struct Topic {
    /// One sender per consumer group: every group sees every message.
    groups: HashMap<String, (mpsc::UnboundedSender<Delivery>, Queue)>,
    next_offset: u64,
}

/// In-process bus. Messages published before any group subscribed to a topic are kept
/// for the first group that does (as Kafka keeps them for a group reading from the start).
#[derive(Default, Clone)]
pub struct MemoryBus {
    topics: Arc<Mutex<HashMap<String, Topic>>>,
    /// Messages published to topics nobody subscribed to yet.
    pending: Arc<Mutex<HashMap<String, Vec<Delivery>>>>,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Bus for MemoryBus {
    async fn publish(&self, topic: &str, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        let mut topics = self.topics.lock().expect("bus lock");
        let t = topics.entry(topic.to_string()).or_default();
        for (key, payload) in messages {
            let d = Delivery {
                topic: topic.to_string(),
                key,
                payload,
                offset: t.next_offset,
            };
            t.next_offset += 1;
            if t.groups.is_empty() {
                self.pending
                    .lock()
                    .expect("bus lock")
                    .entry(topic.to_string())
                    .or_default()
                    .push(d);
            } else {
                for (tx, _) in t.groups.values() {
                    tx.send(d.clone()).map_err(|_| BusError::Closed)?;
                }
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        let mut topics = self.topics.lock().expect("bus lock");
        let t = topics.entry(topic.to_string()).or_default();
        let first_group = t.groups.is_empty();
        let (_, queue) = t.groups.entry(group.to_string()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            (tx, Arc::new(tokio::sync::Mutex::new(rx)))
        });
        let queue = queue.clone();
        if first_group {
            if let Some(backlog) = self.pending.lock().expect("bus lock").remove(topic) {
                let (tx, _) = &t.groups[group];
                for d in backlog {
                    tx.send(d).map_err(|_| BusError::Closed)?;
                }
            }
        }
        Ok(Box::new(MemorySubscription { queue }))
    }

    fn durable(&self) -> bool {
        false
    }
}

struct MemorySubscription {
    queue: Queue,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn next_batch(&mut self, max: usize) -> Option<Vec<Delivery>> {
        let mut rx = self.queue.lock().await;
        let first = rx.recv().await?;
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        Some(batch)
    }

    async fn ack(&mut self, _deliveries: &[Delivery]) -> Result<(), BusError> {
        // Nothing to commit: the in-process queue forgets a message once it is received.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_each_see_every_message_in_order() {
        let bus = MemoryBus::new();
        bus.publish("t", vec![("k".into(), b"early".to_vec())])
            .await
            .unwrap();
        let mut a = bus.subscribe("t", "a").await.unwrap();
        let mut b = bus.subscribe("t", "b").await.unwrap();
        bus.publish(
            "t",
            vec![("k".into(), b"1".to_vec()), ("k".into(), b"2".to_vec())],
        )
        .await
        .unwrap();
        let got_a: Vec<_> = a
            .next_batch(10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(got_a, vec![b"early".to_vec(), b"1".to_vec(), b"2".to_vec()]);
        let got_b: Vec<_> = b
            .next_batch(10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.payload)
            .collect();
        assert_eq!(got_b, vec![b"1".to_vec(), b"2".to_vec()]);
    }

    #[tokio::test]
    async fn batches_are_bounded() {
        let bus = MemoryBus::new();
        let mut s = bus.subscribe("t", "g").await.unwrap();
        bus.publish("t", (0..5).map(|i| ("k".to_string(), vec![i])).collect())
            .await
            .unwrap();
        assert_eq!(s.next_batch(3).await.unwrap().len(), 3);
        assert_eq!(s.next_batch(3).await.unwrap().len(), 2);
    }
}
