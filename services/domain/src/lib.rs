//! Domain of policy-push: the pure types and rules. No I/O, no clocks read (callers pass
//! the evaluation date), no randomness.
//!
//! # Layout
//! - [`attribute`]: the attribute catalogue (labels, types, units, value labels,
//!   personal or not) that plain explanations and imports read.
//! - [`ids`]: resident ID, credit code, mobile number, openid, masking.
//! - [`subject`]: subjects, attributes, [`subject::Facts`] (what a rule sees).
//! - [`rule`]: the CEL-subset rule language: parse, check, evaluate, explain (clauses
//!   for operators, Chinese sentences for residents).
//! - [`template`]: per-channel message templates, and the expressions a binding maps onto a
//!   provider template's variables.
//! - [`provider_template`]: templates as the providers register them (code, text, typed
//!   variables) and each provider's rules for variable values; a bound push's content.
//! - [`wechat_keywords`]: the value limits of WeChat keyword types.
//! - [`sms`]: SMS segment counting.
//! - [`channel`]: channels and reachability.
//! - [`operator`]: operator roles and permissions.
//! - [`window`]: send windows (hotline staffed hours, quiet hours).
//! - [`pseudonym`]: keyed pseudonyms of subjects (HMAC-SHA256) for the bus, Redis and logs.
//! - [`policy`], [`campaign`], [`push`]: the records operators create and their lifecycles.
//! - [`push_event`]: the events of a push's record (type and channel codes) and the
//!   canonical text the tamper-evident chains hash.

pub mod attribute;
pub mod campaign;
pub mod channel;
pub mod ids;
pub mod operator;
pub mod param;
pub mod policy;
pub mod provider_template;
pub mod pseudonym;
pub mod push;
pub mod push_event;
pub mod review;
#[cfg(test)]
mod robustness;
pub mod rule;
pub mod sms;
pub mod subject;
pub mod template;
pub mod wechat_keywords;
pub mod window;

pub use channel::Channel;
pub use param::{ParamValues, PolicyParam};
pub use rule::{Explanation, Rule, RuleError};
pub use subject::{AttrValue, Facts, Subject, SubjectDoc, SubjectId, SubjectKind};
