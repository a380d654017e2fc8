//! One demo campaign per policy of [`super::policies`].
//!
//! Template rules kept here (and checked by the tests):
//! - SMS: no `【】` (the provider adds the signature), the recipient `{{ link }}`, at most
//!   two 67-character parts with the signature, ends with `拒收请回复R`.
//! - Hotline (TTS): no link and no URL, at most about 200 characters, ends with
//!   `如需短信获取办理链接请按1，退订请按0。`.
//! - WeChat: one `keyword: value` line per field, keywords of the subscription-message
//!   types (`thing1`, `amount2`, `date3`, `phrase4`, ...), values at most 20 characters
//!   once rendered; amounts as `¥{{ benefit | yuan }}`, dates as `YYYY-MM-DD` (`date`,
//!   not `time`, which wants a clock time).

use domain::campaign::CampaignDraft;
use std::collections::BTreeMap;

/// A campaign before its policy has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSpec {
    /// Index into [`super::policies`].
    pub policy_index: usize,
    pub name: String,
    /// `once` or `continuous`.
    pub mode: &'static str,
    /// Ordered channel plan: the first channel that reaches a subject is used.
    pub channels: Vec<&'static str>,
    /// Channel name → template source.
    pub templates: BTreeMap<String, String>,
    pub audience_filter: Option<String>,
}

impl CampaignSpec {
    /// The API request body for the policy created with id `policy_id`.
    pub fn to_draft(&self, policy_id: &str) -> CampaignDraft {
        CampaignDraft {
            policy_id: policy_id.to_string(),
            name: self.name.clone(),
            mode: self.mode.to_string(),
            channels: self.channels.iter().map(|c| c.to_string()).collect(),
            templates: self.templates.clone(),
            bindings: BTreeMap::new(),
            audience_filter: self.audience_filter.clone(),
            schedule: None,
            throttle_per_second: None,
        }
    }
}

/// The closing line every hotline (TTS) template ends with.
pub const HOTLINE_CLOSING: &str = "如需短信获取办理链接请按1，退订请按0。";
/// The closing words every SMS template ends with.
pub const SMS_CLOSING: &str = "拒收请回复R";

fn templates(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The demo campaigns, one per policy, in the order of [`super::policies`].
pub fn campaigns() -> Vec<CampaignSpec> {
    vec![
        CampaignSpec {
            policy_index: 0,
            name: "稳岗返还免申即享告知（中小微企业）".into(),
            mode: "once",
            channels: vec!["sms", "wechat"],
            templates: templates(&[
                (
                    "sms",
                    "{{ subject.name }}：经系统比对，贵单位符合{{ policy.title }}条件，预计返还{{ benefit | yuan }}元，免申即享，进度查询：{{ link }} 拒收请回复R",
                ),
                (
                    "wechat",
                    "thing1: {{ policy.title }}\n\
                     amount2: ¥{{ benefit | yuan }}\n\
                     date3: {{ policy.effective_to }}\n\
                     thing4: 免申即享，点击查看拨付进度",
                ),
            ]),
            audience_filter: None,
        },
        CampaignSpec {
            policy_index: 1,
            name: "一次性吸纳就业补贴申领提醒".into(),
            mode: "continuous",
            channels: vec!["sms", "wechat"],
            templates: templates(&[
                (
                    "sms",
                    "{{ subject.name }}：贵单位今年吸纳高校毕业生或失业青年就业，可申领{{ policy.title }}约{{ benefit | yuan }}元，申领入口：{{ link }} 拒收请回复R",
                ),
                (
                    "wechat",
                    "thing1: {{ policy.title }}\n\
                     amount2: ¥{{ benefit | yuan }}\n\
                     date3: {{ policy.effective_to }}\n\
                     thing4: 请在截止日前在线申领",
                ),
            ]),
            audience_filter: None,
        },
        CampaignSpec {
            policy_index: 2,
            name: "困难高校毕业生求职创业补贴告知".into(),
            mode: "continuous",
            channels: vec!["wechat", "sms", "hotline"],
            templates: templates(&[
                (
                    "wechat",
                    "thing1: {{ policy.title }}\n\
                     amount2: ¥{{ benefit | yuan }}\n\
                     date3: {{ policy.effective_to }}\n\
                     phrase4: 待申请\n\
                     thing5: 点击查看申请方式",
                ),
                (
                    "sms",
                    "{{ subject.name }}同学：您可申领{{ policy.title }}{{ benefit | yuan }}元，请于{{ policy.effective_to }}前申请：{{ link }} 拒收请回复R",
                ),
                (
                    "hotline",
                    "{{ subject.name }}同学您好，这里是上海12333。经系统比对，您可能符合{{ policy.title }}的申领条件，补贴标准{{ benefit | yuan }}元，\
                     请于{{ policy.effective_to }}前通过一网通办或所在学校申请。如需短信获取办理链接请按1，退订请按0。",
                ),
            ]),
            audience_filter: None,
        },
        CampaignSpec {
            policy_index: 3,
            name: "补贴性职业技能培训报名通知".into(),
            mode: "once",
            channels: vec!["wechat", "sms"],
            templates: templates(&[
                (
                    "wechat",
                    "thing1: {{ policy.title }}\n\
                     thing2: 补贴性职业技能培训报名中\n\
                     date3: {{ policy.effective_to }}\n\
                     thing4: 点击查看课程与培训机构",
                ),
                (
                    "sms",
                    "{{ subject.name }}您好：补贴性职业技能培训报名中，取证后可享{{ policy.title }}，课程与报名：{{ link }} 拒收请回复R",
                ),
            ]),
            // people without a certificate first
            audience_filter: Some("!has(attrs.skills_certificates)".into()),
        },
        CampaignSpec {
            policy_index: 4,
            name: "“4050”灵活就业人员社保补贴告知".into(),
            mode: "once",
            // a call first: this group answers the phone more than it reads messages
            channels: vec!["hotline", "wechat"],
            templates: templates(&[
                (
                    "hotline",
                    "{{ subject.name }}您好，这里是上海12333。您以灵活就业方式参加社会保险，可能符合{{ policy.title }}条件，\
                     预计每年可补贴{{ benefit | yuan }}元。如需短信获取办理链接请按1，退订请按0。",
                ),
                (
                    "wechat",
                    "thing1: 灵活就业社保补贴\n\
                     amount2: ¥{{ benefit | yuan }}\n\
                     thing3: 按月补贴，一般最长3年\n\
                     thing4: 点击查看申领方式",
                ),
            ]),
            audience_filter: None,
        },
        CampaignSpec {
            policy_index: 5,
            name: "青年就业见习岗位推送".into(),
            mode: "continuous",
            channels: vec!["wechat", "sms"],
            templates: templates(&[
                (
                    "wechat",
                    "thing1: {{ policy.title }}\n\
                     thing2: 见习岗位开放报名中\n\
                     thing3: 见习期间发放见习生活补贴\n\
                     thing4: 点击查看见习岗位",
                ),
                (
                    "sms",
                    "{{ subject.name }}您好：{{ policy.title }}岗位开放报名，见习期间发放生活补贴，岗位查询：{{ link }} 拒收请回复R",
                ),
            ]),
            audience_filter: None,
        },
    ]
}
