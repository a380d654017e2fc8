//! The Kafka backend (rdkafka over the bundled librdkafka).
//!
//! - Topics are the bus topic names under an optional prefix, created through the admin
//!   API when first used (`partitions` each) if the cluster does not have them, unless
//!   `create_topics` is off (deployments that provision topics themselves, and
//!   librdkafka's mock cluster, which has no CreateTopics: tests create them on the mock).
//! - Producer: idempotent (`enable.idempotence`, `acks=all`), batching with `linger.ms`
//!   and `lz4` compression; `publish` returns once the brokers acknowledged every message.
//!   Keys are the subject ids, so one subject's messages share a partition and stay in
//!   order.
//! - Subscriptions: one consumer per subscription in consumer group `group`, reading from
//!   the earliest offset when the group has none, never auto-committing. `ack` commits,
//!   per partition, only the offsets below the first message not yet acknowledged: a
//!   message is never skipped by a commit, so a crash redelivers (and the claim makes a
//!   redelivered task harmless) but never loses one.

use crate::{Bus, BusError, Delivery, Subscription};
use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Settings of the Kafka backend.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Put before every topic name (tests use a unique one; production leaves it empty).
    pub topic_prefix: String,
    /// Partitions of topics this backend creates: the most consumers a group can use.
    pub partitions: i32,
    pub replication: i32,
    /// Create missing topics through the admin API.
    pub create_topics: bool,
    /// How long the producer waits to fill a batch.
    pub linger: Duration,
    /// After the first message of a batch, how long `next_batch` waits for more.
    pub batch_wait: Duration,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: String::new(),
            partitions: 12,
            replication: 1,
            create_topics: true,
            linger: Duration::from_millis(5),
            batch_wait: Duration::from_millis(5),
        }
    }
}

fn backend(e: KafkaError) -> BusError {
    BusError::Backend(e.to_string())
}

pub struct KafkaBus {
    config: KafkaConfig,
    producer: FutureProducer,
    admin: AdminClient<DefaultClientContext>,
    /// Topics known to exist, so each is created (or found) once per process.
    known: Mutex<HashSet<String>>,
}

impl KafkaBus {
    pub fn new(config: KafkaConfig) -> Result<Self, BusError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", config.linger.as_millis().to_string())
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "60000")
            .create()
            .map_err(backend)?;
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .create()
            .map_err(backend)?;
        Ok(Self {
            config,
            producer,
            admin,
            known: Mutex::new(HashSet::new()),
        })
    }

    /// The Kafka topic of a bus topic.
    pub fn topic_name(&self, topic: &str) -> String {
        format!("{}{topic}", self.config.topic_prefix)
    }

    /// Creates the topic unless it exists.
    pub async fn ensure_topic(&self, topic: &str) -> Result<(), BusError> {
        let name = self.topic_name(topic);
        if !self.config.create_topics || self.known.lock().expect("topics lock").contains(&name) {
            return Ok(());
        }
        let new = NewTopic::new(
            &name,
            self.config.partitions,
            TopicReplication::Fixed(self.config.replication),
        );
        let opts = AdminOptions::new()
            .request_timeout(Some(Duration::from_secs(10)))
            .operation_timeout(Some(Duration::from_secs(10)));
        let results = self
            .admin
            .create_topics([&new], &opts)
            .await
            .map_err(backend)?;
        for r in results {
            match r {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((t, code)) => {
                    return Err(BusError::Backend(format!("creating topic {t}: {code}")))
                }
            }
        }
        self.known.lock().expect("topics lock").insert(name);
        Ok(())
    }

    /// Waits until every message produced so far is acknowledged.
    pub fn flush(&self, within: Duration) -> Result<(), BusError> {
        self.producer.flush(within).map_err(backend)
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: &str, messages: Vec<(String, Vec<u8>)>) -> Result<(), BusError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.ensure_topic(topic).await?;
        let name = self.topic_name(topic);
        let mut pending = Vec::with_capacity(messages.len());
        for (key, payload) in &messages {
            let mut record = FutureRecord::to(&name).key(key).payload(payload);
            // The local queue can fill under a burst: wait for room, then retry the record.
            loop {
                match self.producer.send_result(record) {
                    Ok(f) => {
                        pending.push(f);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                        record = r;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((e, _)) => return Err(backend(e)),
                }
            }
        }
        for f in pending {
            match f.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(backend(e)),
                Err(_) => return Err(BusError::Closed),
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, group: &str) -> Result<Box<dyn Subscription>, BusError> {
        self.subscribe_from(topic, group, "earliest").await
    }

    fn durable(&self) -> bool {
        true
    }

    async fn check(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_secs(1))
                .map(|_| ())
                .map_err(backend)
        })
        .await
        .map_err(|e| BusError::Backend(e.to_string()))?
    }
}

impl KafkaBus {
    async fn subscribe_from(
        &self,
        topic: &str,
        group: &str,
        reset: &str,
    ) -> Result<Box<dyn Subscription>, BusError> {
        self.ensure_topic(topic).await?;
        let context = LagContext {
            topic: topic.to_string(),
            slot: NEXT_SLOT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let consumer: StreamConsumer<LagContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.config.brokers)
            .set("group.id", format!("{}{group}", self.config.topic_prefix))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", reset)
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("statistics.interval.ms", "5000")
            .create_with_context(context)
            .map_err(backend)?;
        consumer
            .subscribe(&[&self.topic_name(topic)])
            .map_err(backend)?;
        Ok(Box::new(KafkaSubscription {
            consumer: Arc::new(consumer),
            topic: topic.to_string(),
            kafka_topic: self.topic_name(topic),
            batch_wait: self.config.batch_wait,
            buffered: VecDeque::new(),
            next_seq: 0,
            positions: HashMap::new(),
            in_flight: HashMap::new(),
        }))
    }
}

/// Lag of every consumer in this process, by (topic, consumer), summed per topic into
/// `policy_push_consumer_lag`.
static LAGS: Mutex<BTreeMap<(String, u64), i64>> = Mutex::new(BTreeMap::new());
static NEXT_SLOT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reads librdkafka's statistics (every 5 s) for the consumer lag of assigned partitions.
struct LagContext {
    topic: String,
    slot: u64,
}

impl rdkafka::client::ClientContext for LagContext {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let lag: i64 = statistics
            .topics
            .values()
            .flat_map(|t| t.partitions.values())
            .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
            .map(|p| p.consumer_lag)
            .sum();
        let mut lags = LAGS.lock().expect("lag lock");
        lags.insert((self.topic.clone(), self.slot), lag);
        let total: i64 = lags
            .iter()
            .filter(|((t, _), _)| t == &self.topic)
            .map(|(_, l)| l)
            .sum();
        telemetry::metrics()
            .consumer_lag
            .with_label_values(&[self.topic.as_str()])
            .set(total);
    }
}

impl rdkafka::consumer::ConsumerContext for LagContext {}

struct KafkaSubscription {
    consumer: Arc<StreamConsumer<LagContext>>,
    /// The bus topic name (without prefix), as deliveries report it.
    topic: String,
    kafka_topic: String,
    batch_wait: Duration,
    /// Received but not yet handed out: `next_batch` may be cancelled between receiving
    /// and returning, and nothing received may be lost then.
    buffered: VecDeque<Delivery>,
    /// `Delivery::offset` is a sequence number of this subscription; this maps it to the
    /// message's (partition, offset).
    next_seq: u64,
    positions: HashMap<u64, (i32, i64)>,
    /// Per partition, handed-out offsets and whether they were acknowledged.
    in_flight: HashMap<i32, BTreeMap<i64, bool>>,
}

impl KafkaSubscription {
    fn buffer(&mut self, m: &rdkafka::message::BorrowedMessage<'_>) {
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        let seq = self.next_seq;
        self.next_seq += 1;
        let (partition, offset) = (m.partition(), m.offset());
        // An offset at or below one we track means the group rewound this partition (a
        // rebalance handed it back): what we tracked for it is stale.
        let track = self.in_flight.entry(partition).or_default();
        if track.range(offset..).next().is_some() {
            track.clear();
        }
        track.insert(offset, false);
        self.positions.insert(seq, (partition, offset));
        self.buffered.push_back(Delivery {
            topic: self.topic.clone(),
            key,
            payload: m.payload().unwrap_or_default().to_vec(),
            offset: seq,
        });
    }
}

#[async_trait]
impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> Option<Vec<Delivery>> {
        let consumer = self.consumer.clone();
        if self.buffered.is_empty() {
            loop {
                match consumer.recv().await {
                    Ok(m) => {
                        self.buffer(&m);
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %self.topic, error = %e, "kafka consumer error; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        let until = tokio::time::Instant::now() + self.batch_wait;
        while self.buffered.len() < max {
            match tokio::time::timeout_at(until, consumer.recv()).await {
                Ok(Ok(m)) => self.buffer(&m),
                Ok(Err(e)) => {
                    tracing::warn!(topic = %self.topic, error = %e, "kafka consumer error");
                    break;
                }
                Err(_) => break,
            }
        }
        let n = self.buffered.len().min(max);
        telemetry::metrics()
            .bus_messages
            .with_label_values(&[self.topic.as_str(), "consumed"])
            .inc_by(n as u64);
        Some(self.buffered.drain(..n).collect())
    }

    async fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), BusError> {
        let mut touched = HashSet::new();
        for d in deliveries {
            if let Some((partition, offset)) = self.positions.remove(&d.offset) {
                if let Some(acked) = self
                    .in_flight
                    .get_mut(&partition)
                    .and_then(|t| t.get_mut(&offset))
                {
                    *acked = true;
                    touched.insert(partition);
                }
            }
        }
        // Per partition, advance over the acknowledged prefix; commit the offset after it.
        let mut commit = TopicPartitionList::new();
        for partition in touched {
            let track = self.in_flight.get_mut(&partition).expect("tracked");
            let mut next = None;
            while let Some((&offset, &acked)) = track.first_key_value() {
                if !acked {
                    break;
                }
                track.pop_first();
                next = Some(offset + 1);
            }
            if let Some(next) = next {
                commit
                    .add_partition_offset(&self.kafka_topic, partition, Offset::Offset(next))
                    .map_err(backend)?;
            }
        }
        if commit.count() == 0 {
            return Ok(());
        }
        let consumer = self.consumer.clone();
        tokio::task::spawn_blocking(move || consumer.commit(&commit, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Backend(e.to_string()))?
            .map_err(backend)
    }
}
