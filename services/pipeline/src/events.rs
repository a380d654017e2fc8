//! Events on the bus besides the push tasks: subject changes (so every API replica keeps
//! its population index current), delivery events and dead letters (for the bureau's
//! other systems). The store stays the truth: an event that cannot be published is
//! logged and counted, and nothing in the pipeline waits for it.
//!
//! Messages are keyed by the subject's keyed pseudonym ([`Pipeline::pseudonyms`]), so one
//! subject's messages share a partition (and stay in order) without the ID number, or a
//! digest anyone could compute from it, in the key. `subject.changed` carries the same
//! pseudonym; the writer records the pair in the store before publishing, and followers
//! resolve it there ([`store::SubjectStore::subjects_by_pseudonym`]).

use crate::Pipeline;
use bus::topics::{
    BusMessage, DeadLetter, DeliveryEvent, SubjectChanged, DEAD_LETTERS, DELIVERY_EVENTS,
    SUBJECT_CHANGED,
};
use chrono::Utc;
use domain::{Channel, Subject};
use std::sync::OnceLock;
use store::{PushOutcome, PushRecord};
use tokio_util::sync::CancellationToken;

/// This process's name on the bus (random per start).
pub fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| format!("{:016x}", rand::random::<u64>()))
}

/// Publishes in the background; a failure is logged and counted, never fatal. Only on a
/// durable bus (Kafka): on the in-process bus no other process can follow these events,
/// and a topic without a consumer group would keep every message in memory.
fn publish_detached(p: &Pipeline, topic: &'static str, messages: Vec<(String, Vec<u8>)>) {
    if messages.is_empty() || !p.bus.durable() {
        return;
    }
    let bus = p.bus.clone();
    tokio::spawn(async move { publish_counted(bus.as_ref(), topic, messages).await });
}

/// Publishes and counts the outcome; a failure is logged.
async fn publish_counted(bus: &dyn bus::Bus, topic: &str, messages: Vec<(String, Vec<u8>)>) {
    let n = messages.len() as u64;
    let m = telemetry::metrics();
    match bus.publish(topic, messages).await {
        Ok(()) => m
            .bus_messages
            .with_label_values(&[topic, "published"])
            .inc_by(n),
        Err(e) => {
            m.bus_messages
                .with_label_values(&[topic, "publish_failed"])
                .inc_by(n);
            tracing::warn!(topic, error = %e, "cannot publish events");
        }
    }
}

/// Announces upserted subjects on `subject.changed`, after they are committed: their
/// pseudonyms are recorded in the store first, so a follower can resolve every message
/// it reads. Only on a durable bus, like the other events.
pub fn subjects_changed(p: &Pipeline, subjects: &[(Subject, Vec<String>)]) {
    if subjects.is_empty() || !p.bus.durable() {
        return;
    }
    let at = p.now().timestamp_millis();
    let mut pairs = Vec::with_capacity(subjects.len());
    let mut messages = Vec::with_capacity(subjects.len());
    for (s, _) in subjects {
        let id = s.id.as_str();
        let pseudonym = p.pseudonyms.subject(id);
        let event = SubjectChanged {
            subject: pseudonym.clone(),
            kind: s.id.kind().as_str().to_string(),
            origin: instance().to_string(),
            changed_at_ms: at,
        };
        messages.push((pseudonym.clone(), event.to_bytes()));
        pairs.push((pseudonym, id.to_string()));
    }
    let (bus, store) = (p.bus.clone(), p.store.clone());
    tokio::spawn(async move {
        if let Err(e) = store.put_subject_pseudonyms(&pairs).await {
            telemetry::metrics()
                .bus_messages
                .with_label_values(&[SUBJECT_CHANGED, "publish_failed"])
                .inc_by(pairs.len() as u64);
            tracing::warn!(error = %e, "cannot record subject pseudonyms; changes not announced");
            return;
        }
        publish_counted(bus.as_ref(), SUBJECT_CHANGED, messages).await;
    });
}

/// Announces what a connector recorded for a batch (`records[i]` went with
/// `outcomes[i]`) on `delivery.events`, and the pushes that failed for good on
/// `push.dead-letter`.
pub fn outcomes_recorded(
    p: &Pipeline,
    channel: Channel,
    records: &[PushRecord],
    outcomes: &[PushOutcome],
) {
    let at = p.now().timestamp_millis();
    let mut events = Vec::with_capacity(outcomes.len());
    let mut dead = Vec::new();
    for (r, o) in records.iter().zip(outcomes) {
        let (status, error) = match o {
            PushOutcome::Sent { .. } => ("sent", None),
            PushOutcome::Failed { error, .. } => ("failed", Some(error.as_str())),
            PushOutcome::Requeue { error, .. } => ("retry", Some(error.as_str())),
            PushOutcome::Defer { .. } => ("deferred", None),
        };
        let key = p.pseudonyms.subject(&r.subject_id);
        let code = error
            .map(|e| e.split(':').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        events.push((
            key.clone(),
            DeliveryEvent {
                push_id: r.id.clone(),
                campaign_id: r.campaign_id.clone(),
                channel: channel.as_str().to_string(),
                status: status.to_string(),
                error_code: code,
                at_ms: at,
            }
            .to_bytes(),
        ));
        if let (PushOutcome::Failed { .. }, Some(error)) = (o, error) {
            dead.push((
                key,
                DeadLetter {
                    push_id: r.id.clone(),
                    campaign_id: r.campaign_id.clone(),
                    channel: channel.as_str().to_string(),
                    error: error.to_string(),
                    attempts: r.attempts.max(0) as u32,
                    at_ms: at,
                }
                .to_bytes(),
            ));
        }
    }
    publish_detached(p, DELIVERY_EVENTS, events);
    publish_detached(p, DEAD_LETTERS, dead);
}

/// How far clocks of different machines may disagree.
const CLOCK_SKEW_MS: i64 = 60_000;

/// Follows `subject.changed` and re-indexes subjects that other processes changed, so an
/// API replica's audiences include upserts made through another replica. Runs until
/// `shutdown`. Each start is a new consumer group reading the topic from its oldest
/// retained message, so no change made while the index loaded can slip between the load
/// and the group's first position; changes announced before `indexed_since` (less the
/// clock skew) are already in the index and are skipped without touching the store.
pub async fn follow_subject_changes(
    p: Pipeline,
    indexed_since: chrono::DateTime<Utc>,
    shutdown: CancellationToken,
) {
    let skip_before = indexed_since.timestamp_millis() - CLOCK_SKEW_MS;
    let group = format!("index-{}", instance());
    let mut sub = match p.bus.subscribe(SUBJECT_CHANGED, &group).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow subject changes; this replica's index only sees its own upserts");
            return;
        }
    };
    loop {
        let batch = tokio::select! {
            _ = shutdown.cancelled() => return,
            b = sub.next_batch(1000) => match b { Some(b) => b, None => return },
        };
        let mut pseudonyms = Vec::new();
        for d in &batch {
            match SubjectChanged::from_bytes(SUBJECT_CHANGED, &d.payload) {
                // An empty pseudonym: a message of a version that carried the id.
                Ok(e) if e.subject.is_empty() => {}
                Ok(e) if e.origin != instance() && e.changed_at_ms >= skip_before => {
                    pseudonyms.push(e.subject)
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "skipping a bad subject.changed message"),
            }
        }
        pseudonyms.sort();
        pseudonyms.dedup();
        // One store read for the whole batch of changes.
        let loaded = match p.store.subjects_by_pseudonym(&pseudonyms).await {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, "cannot load changed subjects; will retry");
                // Not acknowledged: on Kafka the group reads them again after a restart;
                // here wait a little and carry on with the next batch.
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        crate::matching::index_subjects(&p.index, &loaded);
        if let Err(e) = sub.ack(&batch).await {
            tracing::warn!(error = %e, "cannot acknowledge subject changes");
        }
    }
}
