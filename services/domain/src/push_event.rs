//! The record of a push (全过程留痕): one append-only event per transition, and the
//! canonical encoding the tamper-evident chains hash.
//!
//! Events are stored narrow: a small-integer type and channel code ([`EventType::code`],
//! [`channel_code`]), an actor, and a JSON detail only when there is something to say.
//! [`PushEvent::canonical`] is the one text of an event that its chain hashes, on both
//! databases, whatever the database does to JSON key order or whitespace.

use crate::Channel;
use chrono::{DateTime, Timelike, Utc};
use serde_json::Value;

/// What happened to a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Written to the outbox by the planner (queued); its explanation is the push row's.
    Planned,
    /// Back in the queue (a replay of a dead letter, an interrupted send recovered).
    Queued,
    /// Handed to the bus by a relay.
    Bus,
    /// Claimed for sending by a connector process (`actor` names it).
    Claimed,
    /// Accepted by the provider (detail: its id).
    Sent,
    /// The provider's delivery receipt (detail: delivered or not, its error).
    Receipt,
    /// Tried again later on the same channel (detail: reason, next attempt).
    Retry,
    /// Moved to the next channel of the plan (channel: the one that refused; detail: the
    /// next channel and the provider's answer).
    Fallback,
    /// Held back without an attempt (quiet hours, a paused campaign).
    Deferred,
    /// Failed for good at send time (detail: the provider's code).
    Failed,
    /// Not sent: capped, duplicate, opted out (detail: reason).
    Skipped,
    /// The recipient opened the link.
    Clicked,
    /// The bureau's systems reported an application.
    Applied,
    /// The subject's personal data was erased.
    Erased,
    /// Cancelled before sending (the policy ended or was withdrawn).
    Cancelled,
}

impl EventType {
    pub const ALL: [EventType; 15] = [
        EventType::Planned,
        EventType::Queued,
        EventType::Bus,
        EventType::Claimed,
        EventType::Sent,
        EventType::Receipt,
        EventType::Retry,
        EventType::Fallback,
        EventType::Deferred,
        EventType::Failed,
        EventType::Skipped,
        EventType::Clicked,
        EventType::Applied,
        EventType::Erased,
        EventType::Cancelled,
    ];

    /// The stored code (never reused: a new type takes a new number).
    pub fn code(self) -> i16 {
        match self {
            EventType::Planned => 1,
            EventType::Queued => 2,
            EventType::Bus => 3,
            EventType::Claimed => 4,
            EventType::Sent => 5,
            EventType::Receipt => 6,
            EventType::Retry => 7,
            EventType::Fallback => 8,
            EventType::Deferred => 9,
            EventType::Failed => 10,
            EventType::Skipped => 11,
            EventType::Clicked => 12,
            EventType::Applied => 13,
            EventType::Erased => 14,
            EventType::Cancelled => 15,
        }
    }

    pub fn from_code(code: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The name the API answers.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Planned => "planned",
            EventType::Queued => "queued",
            EventType::Bus => "bus",
            EventType::Claimed => "claimed",
            EventType::Sent => "sent",
            EventType::Receipt => "receipt",
            EventType::Retry => "retry",
            EventType::Fallback => "fallback",
            EventType::Deferred => "deferred",
            EventType::Failed => "failed",
            EventType::Skipped => "skipped",
            EventType::Clicked => "clicked",
            EventType::Applied => "applied",
            EventType::Erased => "erased",
            EventType::Cancelled => "cancelled",
        }
    }

    /// The console's label.
    pub fn label_zh(self) -> &'static str {
        match self {
            EventType::Planned => "已生成",
            EventType::Queued => "重新排队",
            EventType::Bus => "已交消息总线",
            EventType::Claimed => "发送进程领取",
            EventType::Sent => "服务商已受理",
            EventType::Receipt => "回执",
            EventType::Retry => "稍后重试",
            EventType::Fallback => "改用下一渠道",
            EventType::Deferred => "暂缓发送",
            EventType::Failed => "发送失败",
            EventType::Skipped => "未发送",
            EventType::Clicked => "已点击",
            EventType::Applied => "已申请",
            EventType::Erased => "个人信息已删除",
            EventType::Cancelled => "已取消",
        }
    }
}

/// The stored code of a channel.
pub fn channel_code(c: Channel) -> i16 {
    match c {
        Channel::Wechat => 1,
        Channel::Sms => 2,
        Channel::Hotline => 3,
    }
}

pub fn channel_from_code(code: i16) -> Option<Channel> {
    Channel::ALL.into_iter().find(|c| channel_code(*c) == code)
}

/// One transition of one push.
#[derive(Debug, Clone, PartialEq)]
pub struct PushEvent {
    pub push_id: String,
    /// Microsecond precision (what both databases keep), see [`PushEvent::new`].
    pub at: DateTime<Utc>,
    pub kind: EventType,
    pub channel: Option<Channel>,
    /// Who: a role (`planner`, `relay`, `provider`, `recipient`), a process
    /// (`connector@host:pid`) or an operator (`operator:<id>`).
    pub actor: Option<String>,
    /// A JSON object, only when there is something to say. Never personal data: no
    /// recipient, no subject id (the push row holds those).
    pub detail: Option<Value>,
}

impl PushEvent {
    /// An event at `at`, truncated to the microsecond.
    pub fn new(push_id: impl Into<String>, at: DateTime<Utc>, kind: EventType) -> Self {
        Self {
            push_id: push_id.into(),
            at: micros(at),
            kind,
            channel: None,
            actor: None,
            detail: None,
        }
    }

    pub fn channel(mut self, c: Channel) -> Self {
        self.channel = Some(c);
        self
    }

    pub fn actor(mut self, a: impl Into<String>) -> Self {
        self.actor = Some(a.into());
        self
    }

    pub fn detail(mut self, d: Value) -> Self {
        self.detail = Some(d);
        self
    }

    /// The text a chain hashes: fields separated by a unit separator, the detail as
    /// canonical JSON (object keys sorted, no whitespace).
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(96);
        out.push_str(&self.push_id);
        out.push('\u{1f}');
        out.push_str(&timestamp_text(self.at));
        out.push('\u{1f}');
        out.push_str(&self.kind.code().to_string());
        out.push('\u{1f}');
        if let Some(c) = self.channel {
            out.push_str(&channel_code(c).to_string());
        }
        out.push('\u{1f}');
        out.push_str(self.actor.as_deref().unwrap_or(""));
        out.push('\u{1f}');
        if let Some(d) = &self.detail {
            canonical_json(d, &mut out);
        }
        out.push('\n');
        out
    }
}

/// `at` truncated to the microsecond.
pub fn micros(at: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = at.nanosecond();
    at.with_nanosecond(nanos - nanos % 1_000).unwrap_or(at)
}

/// Fixed-width UTC text of a time, to the microsecond (as hashed).
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Appends `v` as JSON with object keys in byte order and no whitespace.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.code()), "{t:?} reuses a code");
            assert_eq!(EventType::from_code(t.code()), Some(t));
        }
        assert_eq!(EventType::from_code(0), None);
        for c in Channel::ALL {
            assert_eq!(channel_from_code(channel_code(c)), Some(c));
        }
    }

    #[test]
    fn canonical_text_ignores_key_order_and_truncates_to_microseconds() {
        let at = Utc.with_ymd_and_hms(2026, 12, 3, 8, 0, 0).unwrap()
            + chrono::Duration::nanoseconds(1_234_567);
        let a = PushEvent::new("p1", at, EventType::Fallback)
            .channel(Channel::Wechat)
            .detail(json!({"to": "sms", "answer": "43004: 未关注"}));
        let mut b = a.clone();
        b.detail = Some(json!({"answer": "43004: 未关注", "to": "sms"}));
        assert_eq!(a.canonical(), b.canonical());
        assert!(a.canonical().contains("2026-12-03T08:00:00.001234Z"));
        assert!(a
            .canonical()
            .contains(r#"{"answer":"43004: 未关注","to":"sms"}"#));
        let mut c = a.clone();
        c.detail = Some(json!({"to": "hotline", "answer": "43004: 未关注"}));
        assert_ne!(a.canonical(), c.canonical());
    }
}
