//! The demo catalogue: the tags, policies and campaigns a bureau operator would set up,
//! written against the generator's attributes. Rules are in the CEL subset of
//! `docs/rules.md`; templates use only the variables of [`domain::template`].
//!
//! Policy contents follow the bureau's real measures (稳岗返还, 一次性吸纳就业补贴,
//! 求职创业补贴, 职业技能培训补贴, 灵活就业社会保险费补贴, 就业见习), but **document
//! numbers, links and some amounts are illustrative**, not quotations of real documents.
//!
//! Rules only read attributes that every subject of their kind carries, except inside
//! `has()` or behind a clause that implies the attribute (`registered_unemployed_since`
//! after `employment_status == 'registered_unemployed'`), so they mean the same under
//! any reading of "a missing attribute makes the rule false".
//!
//! # Layout
//! - [`attributes`](fn@attributes): the attribute catalogue (labels, types, units,
//!   value labels) of every attribute the generator writes.
//! - [`tags`](fn@tags): named rules (`small_micro_enterprise`, `recent_graduate`, ...).
//! - [`policies`](fn@policies): six policy drafts with eligibility and benefit rules.
//! - [`campaigns`](fn@campaigns): one campaign per policy, with channel plan and templates.
//! - [`params`](fn@params): the policy parameters the rules read (`params.<name>`), with
//!   dated values and (illustrative) legal references.
//! - [`provider_templates`](fn@provider_templates): the templates the demo registered with
//!   its providers; [`template_bindings`]: the campaign channels that bind them.

mod attributes;
mod campaigns;
mod params;
mod policies;
mod provider_templates;
mod tags;

pub use attributes::attributes;
pub use campaigns::{campaigns, CampaignSpec, HOTLINE_CLOSING, SMS_CLOSING};
pub use params::{param_values, params};
pub use policies::{policies, CONTRIBUTION_BASE_MIN};
pub use provider_templates::{provider_templates, template_bindings};
pub use tags::{tags, TagSpec};

use chrono::{Datelike, NaiveDate};

/// The graduating cohort still in school (毕业年度): this year's until the end of June,
/// then next year's.
pub fn graduating_year(today: NaiveDate) -> i32 {
    if today.month() >= 7 {
        today.year() + 1
    } else {
        today.year()
    }
}

/// The most recent cohort that has left school.
pub fn latest_graduated_year(today: NaiveDate) -> i32 {
    graduating_year(today) - 1
}

/// Higher-education levels, as a rule's list literal.
pub(crate) const HIGHER_EDUCATION: &str = "['associate', 'bachelor', 'master', 'doctor']";

pub(crate) fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}
