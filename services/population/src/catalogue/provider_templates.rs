//! The templates the demo bureau registered with its providers (written for this product,
//! not copies of real registrations), and the campaign channels that bind them instead
//! of free text.

use domain::campaign::TemplateBinding;
use domain::provider_template::ProviderTemplate;
use serde_json::json;

/// The demo's registered templates; `link_base` is the fixed part of recipient links
/// (`{link_base}/l/…`), which the registered text carries since providers refuse links in
/// variables.
pub fn provider_templates(link_base: &str) -> Vec<ProviderTemplate> {
    let base = link_base.trim_end_matches('/');
    [
        json!({"provider": "aliyun_sms", "code": "SMS_480512", "name": "稳岗返还免申即享告知",
            "sign_name": "人社服务",
            "text": format!("${{company}}：经系统比对，贵单位符合${{policy}}条件，预计返还${{amount}}元，免申即享，进度查询：{base}/l/${{code}} 拒收请回复R"),
            "variables": [{"name": "company", "max_chars": 30}, {"name": "policy", "max_chars": 20},
                          {"name": "amount", "kind": "amount"}, {"name": "code", "kind": "code", "max_chars": 32}]}),
        json!({"provider": "wechat", "code": "Kx2vT0policyNotice01", "name": "政策申领提醒",
            "text": "政策名称：{{thing1.DATA}}\n预计金额：{{amount2.DATA}}\n截止日期：{{date3.DATA}}\n办理方式：{{thing4.DATA}}",
            "variables": [{"name": "thing1"}, {"name": "amount2"}, {"name": "date3"}, {"name": "thing4"}]}),
    ]
    .into_iter()
    .map(|doc| serde_json::from_value(doc).expect("demo templates deserialize"))
    .collect()
}

/// `(campaign index, channel, binding)`: the demo campaign channels sent through a
/// registered template (the campaign's free text for that channel is dropped).
pub fn template_bindings() -> Vec<(usize, &'static str, TemplateBinding)> {
    let binding = |template: &str, vars: &[(&str, &str)]| TemplateBinding {
        template: template.into(),
        provider: None,
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    vec![
        (
            0,
            "sms",
            binding(
                "SMS_480512",
                &[
                    ("company", "{{ subject.name }}"),
                    ("policy", "{{ policy.title }}"),
                    ("amount", "{{ benefit | yuan }}"),
                    ("code", "{{ link_code }}"),
                ],
            ),
        ),
        (
            0,
            "wechat",
            binding(
                "Kx2vT0policyNotice01",
                &[
                    ("thing1", "{{ policy.title }}"),
                    ("amount2", "¥{{ benefit | yuan }}"),
                    ("date3", "{{ policy.effective_to }}"),
                    ("thing4", "免申即享，点击查看拨付进度"),
                ],
            ),
        ),
    ]
}
