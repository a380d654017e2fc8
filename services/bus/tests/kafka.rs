//! The Kafka backend against librdkafka's in-process mock cluster (a real Kafka protocol
//! endpoint on loopback): keyed order, consumer groups, and offsets committed only for
//! what was acknowledged, in order. The mock has no CreateTopics, so topics are created
//! on the mock itself.

use bus::kafka::{KafkaBus, KafkaConfig};
use bus::topics::PushTask;
use bus::{Bus, Delivery, Subscription};
use rdkafka::mocking::MockCluster;
use std::collections::BTreeMap;
use std::time::Duration;

type Mock = MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// A config for a fresh prefix, with the given topics created on the mock.
fn config(cluster: &Mock, partitions: i32, topics: &[&str]) -> KafkaConfig {
    let prefix = format!("t{}-", uuid::Uuid::new_v4().simple());
    for t in topics {
        cluster
            .create_topic(&format!("{prefix}{t}"), partitions, 1)
            .unwrap();
    }
    KafkaConfig {
        topic_prefix: prefix,
        partitions,
        create_topics: false,
        ..KafkaConfig::new(cluster.bootstrap_servers())
    }
}

/// Reads until `n` messages arrived (or fails after a deadline).
async fn read(sub: &mut Box<dyn Subscription>, n: usize) -> Vec<Delivery> {
    let mut got = Vec::new();
    while got.len() < n {
        let batch = tokio::time::timeout(Duration::from_secs(30), sub.next_batch(n - got.len()))
            .await
            .expect("messages within 30 s")
            .expect("bus open");
        got.extend(batch);
    }
    got
}

fn task(i: u32) -> Vec<u8> {
    PushTask {
        push_id: format!("p-{i}"),
        campaign_id: "c".into(),
    }
    .encode()
}

fn push_id(d: &Delivery) -> String {
    PushTask::decode(&d.payload).unwrap().push_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_arrive_in_order_per_key() {
    let cluster = MockCluster::new(1).unwrap();
    let bus = KafkaBus::new(config(&cluster, 4, &["push.sms"])).unwrap();
    assert!(bus.durable());
    let messages: Vec<_> = (0..200)
        .map(|i| (format!("subject-{}", i % 7), task(i)))
        .collect();
    bus.publish("push.sms", messages).await.unwrap();
    let mut sub = bus.subscribe("push.sms", "connector-sms").await.unwrap();
    let got = read(&mut sub, 200).await;
    let mut per_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for d in &got {
        assert_eq!(d.topic, "push.sms");
        let n: u32 = push_id(d)[2..].parse().unwrap();
        per_key.entry(d.key.clone()).or_default().push(n);
    }
    assert_eq!(per_key.len(), 7);
    for (key, ns) in per_key {
        let mut sorted = ns.clone();
        sorted.sort();
        assert_eq!(ns, sorted, "{key} out of order");
    }
    sub.ack(&got).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_commits_only_the_acknowledged_prefix() {
    let cluster = MockCluster::new(1).unwrap();
    let cfg = config(&cluster, 1, &["push.wechat"]);
    let bus = KafkaBus::new(cfg.clone()).unwrap();
    bus.publish(
        "push.wechat",
        (0..10).map(|i| ("k".to_string(), task(i))).collect(),
    )
    .await
    .unwrap();
    {
        let mut first = bus.subscribe("push.wechat", "g").await.unwrap();
        let got = read(&mut first, 10).await;
        assert_eq!(
            got.iter().map(push_id).collect::<Vec<_>>()[..3],
            ["p-0", "p-1", "p-2"]
        );
        // 0..=3 and 5 done; 4 is still in flight when the process dies.
        let done: Vec<_> = got
            .iter()
            .filter(|d| [0, 1, 2, 3, 5].contains(&push_id(d)[2..].parse::<u32>().unwrap()))
            .cloned()
            .collect();
        first.ack(&done).await.unwrap();
    }
    // A new member of the group resumes at the first unacknowledged message.
    let bus2 = KafkaBus::new(cfg).unwrap();
    let mut second = bus2.subscribe("push.wechat", "g").await.unwrap();
    let got = read(&mut second, 6).await;
    assert_eq!(
        got.iter().map(push_id).collect::<Vec<_>>(),
        ["p-4", "p-5", "p-6", "p-7", "p-8", "p-9"]
    );
    second.ack(&got).await.unwrap();
    drop(second);
    // Everything acknowledged: a third member gets only what is published next.
    let mut third = bus2.subscribe("push.wechat", "g").await.unwrap();
    bus2.publish("push.wechat", vec![("k".into(), task(10))])
        .await
        .unwrap();
    let got = read(&mut third, 1).await;
    assert_eq!(push_id(&got[0]), "p-10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_sees_every_message() {
    let cluster = MockCluster::new(1).unwrap();
    let bus = KafkaBus::new(config(&cluster, 2, &["push.hotline"])).unwrap();
    let mut a = bus.subscribe("push.hotline", "a").await.unwrap();
    let mut b = bus.subscribe("push.hotline", "b").await.unwrap();
    bus.publish(
        "push.hotline",
        (0..20).map(|i| (format!("s{i}"), task(i))).collect(),
    )
    .await
    .unwrap();
    let mut ga: Vec<_> = read(&mut a, 20).await.iter().map(push_id).collect();
    let mut gb: Vec<_> = read(&mut b, 20).await.iter().map(push_id).collect();
    ga.sort();
    gb.sort();
    assert_eq!(ga, gb);
    assert_eq!(ga.len(), 20);
}

#[tokio::test]
async fn an_unreachable_cluster_is_an_error_not_a_hang_at_publish() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bus = KafkaBus::new(KafkaConfig::new(format!("127.0.0.1:{port}"))).unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        bus.publish("push.sms", vec![("k".into(), task(1))]),
    )
    .await
    .expect("publish gives up within the admin timeout");
    assert!(r.is_err());
}
