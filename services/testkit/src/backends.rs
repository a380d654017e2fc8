//! A fresh production backend set: a PostgreSQL database, topics under a fresh prefix on
//! librdkafka's mock cluster (a Kafka-protocol broker on loopback inside this process,
//! which the binary's processes reach over TCP) and a fresh Redis key prefix. Dropped
//! last, after the processes that use it: the database is dropped and the Redis keys
//! deleted.

use anyhow::{Context, Result};

/// What a backend set is created with.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// An account that may create databases ([`crate::urls::database_url`]).
    pub admin_url: String,
    pub redis_url: String,
    /// Partitions of each topic created on the mock cluster.
    pub partitions: i32,
    /// Names the database (`pp_<label>_…`), topic and Redis prefixes of this set.
    pub label: &'static str,
    /// Brokers of the mock cluster (more than one for leader changes).
    pub kafka_brokers: i32,
}

impl Default for BackendSettings {
    /// The tests' servers: the test URLs, 4 partitions, label `e2e`.
    fn default() -> Self {
        Self {
            admin_url: crate::urls::database_url(),
            redis_url: crate::urls::redis_url(),
            partitions: 4,
            label: "e2e",
            kafka_brokers: 1,
        }
    }
}

pub struct Backends {
    pub database_url: String,
    admin_url: String,
    database: String,
    pub kafka: rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    pub topic_prefix: String,
    pub partitions: i32,
    pub redis_url: String,
    pub redis_prefix: String,
    /// The pseudonym key every process of the deployment shares (random per backends).
    pub pseudonym_key: String,
}

/// A current-thread runtime for the few async calls made from synchronous code.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

impl Backends {
    /// Creates the database, the mock cluster and every topic of [`bus::topics::all`].
    /// Called from synchronous code (it runs its own runtime).
    pub fn new(s: &BackendSettings) -> Result<Self> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let database = format!("pp_{}_{}", s.label, &unique[..16]);
        runtime()?
            .block_on(store::postgres::admin::create_database(
                &s.admin_url,
                &database,
            ))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| {
                format!(
                    "creating database {database} via {} (is PostgreSQL running? see README)",
                    s.admin_url
                )
            })?;
        let database_url = store::postgres::admin::url_for_database(&s.admin_url, &database)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let kafka = rdkafka::mocking::MockCluster::new(s.kafka_brokers)
            .context("start the Kafka mock cluster")?;
        let b = Self {
            database_url,
            admin_url: s.admin_url.clone(),
            database,
            kafka,
            topic_prefix: format!("{}{}.", &s.label[..1], &unique[..12]),
            partitions: s.partitions,
            redis_url: s.redis_url.clone(),
            redis_prefix: format!("pp-{}-{}:", s.label, &unique[..12]),
            pseudonym_key: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        for t in bus::topics::all() {
            b.create_topic(&t)?;
        }
        Ok(b)
    }

    /// A set with the tests' settings; panics when it cannot be made.
    pub fn for_test() -> Self {
        Self::new(&BackendSettings::default()).expect("production test backends")
    }

    /// Creates `prefix + topic` on the mock cluster.
    pub fn create_topic(&self, topic: &str) -> Result<()> {
        self.kafka
            .create_topic(&format!("{}{topic}", self.topic_prefix), self.partitions, 1)
            .with_context(|| format!("creating topic {topic} on the mock cluster"))
    }

    /// The variables that point the binary at these backends.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("POLICY_PUSH_DATABASE_URL", self.database_url.clone()),
            ("POLICY_PUSH_KAFKA_BROKERS", self.kafka.bootstrap_servers()),
            ("POLICY_PUSH_KAFKA_TOPIC_PREFIX", self.topic_prefix.clone()),
            ("POLICY_PUSH_KAFKA_CREATE_TOPICS", "false".into()),
            ("POLICY_PUSH_KAFKA_PARTITIONS", self.partitions.to_string()),
            ("POLICY_PUSH_REDIS_URL", self.redis_url.clone()),
            ("POLICY_PUSH_REDIS_PREFIX", self.redis_prefix.clone()),
            ("POLICY_PUSH_PSEUDONYM_KEY", self.pseudonym_key.clone()),
        ]
    }

    /// This process's bus on the same cluster and prefix as the processes.
    pub fn kafka_config(&self) -> bus::kafka::KafkaConfig {
        bus::kafka::KafkaConfig {
            topic_prefix: self.topic_prefix.clone(),
            partitions: self.partitions,
            create_topics: false,
            ..bus::kafka::KafkaConfig::new(self.kafka.bootstrap_servers())
        }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        let Ok(rt) = runtime() else {
            return;
        };
        if let Err(e) = rt.block_on(store::postgres::admin::drop_database(
            &self.admin_url,
            &self.database,
        )) {
            eprintln!("testkit: could not drop database {}: {e}", self.database);
        }
        if let Err(e) = rt.block_on(delete_redis_prefix(&self.redis_url, &self.redis_prefix)) {
            eprintln!(
                "testkit: could not delete Redis keys {}*: {e}",
                self.redis_prefix
            );
        }
    }
}

/// Deletes every Redis key under `prefix` (frequency counters, claims, rate buckets of the
/// run), by SCAN in bounded rounds.
async fn delete_redis_prefix(url: &str, prefix: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut con = client.get_multiplexed_async_connection().await?;
    let pattern = format!("{prefix}*");
    let mut cursor: u64 = 0;
    for _ in 0..100_000 {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(5000)
            .query_async(&mut con)
            .await?;
        if !keys.is_empty() {
            redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<()>(&mut con)
                .await?;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    Ok(())
}
