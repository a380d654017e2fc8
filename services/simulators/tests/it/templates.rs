//! Registered provider templates: the connectors send code + variables, the simulators
//! render the registered text exactly and refuse unknown codes and variable mismatches
//! with the providers' own error codes.

use crate::helpers::{msg, Sim};
use connectors::{build_providers, OutgoingMessage, SendOutcome, SmsProviderKind};
use domain::provider_template::{BoundContent, ProviderTemplate};
use serde_json::json;
use simulators::SimulatorConfig;

fn template(doc: serde_json::Value) -> ProviderTemplate {
    let t: ProviderTemplate = serde_json::from_value(doc).unwrap();
    t.check().unwrap();
    t
}

fn aliyun() -> ProviderTemplate {
    template(
        json!({"provider": "aliyun_sms", "code": "SMS_468201", "sign_name": "人社服务",
        "text": "${name}您好，您可能符合${policy}申领条件，详见https://push.example.gov.cn/l/${code}",
        "variables": [{"name": "name", "kind": "name", "max_chars": 10},
                      {"name": "policy", "max_chars": 20}, {"name": "code", "kind": "code"}]}),
    )
}

fn tencent() -> ProviderTemplate {
    template(
        json!({"provider": "tencent_sms", "code": "1843021", "sign_name": "人社服务",
        "text": "您可能符合{1}申领条件，请于{2}前办理。",
        "variables": [{"name": "1"}, {"name": "2", "kind": "date"}]}),
    )
}

fn wechat() -> ProviderTemplate {
    template(json!({"provider": "wechat", "code": "tmpl_policy_01",
        "text": "政策名称：{{thing1.DATA}}\n截止日期：{{date2.DATA}}",
        "variables": [{"name": "thing1"}, {"name": "date2"}]}))
}

fn voice() -> ProviderTemplate {
    template(json!({"provider": "aliyun_voice", "code": "TTS_2001",
        "text": "您好，您可能符合${policy}申领条件，请于${deadline}前办理。",
        "variables": [{"name": "policy"}, {"name": "deadline", "kind": "date"}]}))
}

fn config() -> SimulatorConfig {
    SimulatorConfig {
        templates: vec![aliyun(), tencent(), wechat(), voice()],
        ..Default::default()
    }
}

fn pairs(values: &[(&str, &str)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A message bound to `t` with `values` (rendered by the domain, as the planner does).
fn bound(
    push_id: &str,
    to: &str,
    t: &ProviderTemplate,
    values: &[(&str, &str)],
) -> OutgoingMessage {
    let params = pairs(values);
    let b = BoundContent {
        provider: t.provider,
        template: t.code.clone(),
        sign_name: t.sign_name.clone(),
        text: t.fill(&params).unwrap(),
        params,
    };
    msg(push_id, to, &b.to_content())
}

/// Bound content as given, unchecked (what a stale registry would send).
fn raw(
    push_id: &str,
    to: &str,
    t: &ProviderTemplate,
    code: &str,
    values: &[(&str, &str)],
) -> OutgoingMessage {
    let b = BoundContent {
        provider: t.provider,
        template: code.into(),
        sign_name: t.sign_name.clone(),
        text: String::new(),
        params: pairs(values),
    };
    msg(push_id, to, &b.to_content())
}

#[tokio::test]
async fn batch_sms_with_per_number_variables_is_rendered_exactly() {
    let sim = Sim::start(config()).await;
    let sms = sim.providers().sms;
    let t = aliyun();
    let people = [
        ("p1", "13800000001", "张伟"),
        ("p2", "13800000002", "欧阳娜娜"),
        ("p3", "13800000003", "李四"),
    ];
    let batch: Vec<OutgoingMessage> = people
        .iter()
        .map(|(id, to, name)| {
            bound(
                id,
                to,
                &t,
                &[("name", name), ("policy", "一次性扩岗补助"), ("code", id)],
            )
        })
        .collect();
    let outcomes = sms.send(&batch).await;
    assert!(
        outcomes.iter().all(SendOutcome::is_accepted),
        "{outcomes:?}"
    );
    let m = sim.messages().await;
    assert_eq!(m.len(), 3);
    for (rec, (id, to, name)) in m.iter().zip(people) {
        assert_eq!(rec.to, to);
        assert_eq!(rec.template, "SMS_468201");
        assert_eq!(
            rec.content,
            format!(
                "【人社服务】{name}您好，您可能符合一次性扩岗补助申领条件，详见https://push.example.gov.cn/l/{id}"
            )
        );
        assert_eq!(rec.push_ref, id);
    }
    // One SendBatchSms: one BizId for the three numbers, each with its own variables.
    assert!(m.iter().all(|r| r.provider_id == m[0].provider_id));
    assert_eq!(m[0].out_id, "p1,p2,p3");
}

#[tokio::test]
async fn alibaba_refuses_unknown_codes_and_missing_or_long_variables() {
    let sim = Sim::start(config()).await;
    let sms = sim.providers().sms;
    let t = aliyun();
    let out = sms
        .send(&[raw(
            "u1",
            "13800000001",
            &t,
            "SMS_UNKNOWN",
            &[("name", "张伟")],
        )])
        .await;
    assert_eq!(out[0].code(), Some("isv.SMS_TEMPLATE_ILLEGAL"), "{out:?}");
    // The catch-all is not registered here: free text is refused too.
    let out = sms.send(&[msg("u2", "13800000001", "全文")]).await;
    assert_eq!(out[0].code(), Some("isv.SMS_TEMPLATE_ILLEGAL"), "{out:?}");
    let out = sms
        .send(&[raw(
            "u3",
            "13800000001",
            &t,
            "SMS_468201",
            &[("name", "张伟"), ("policy", "稳岗")],
        )])
        .await;
    assert_eq!(
        out[0].code(),
        Some("isv.TEMPLATE_MISSING_PARAMETERS"),
        "{out:?}"
    );
    let long = "政".repeat(21);
    let out = sms
        .send(&[raw(
            "u4",
            "13800000001",
            &t,
            "SMS_468201",
            &[("name", "张伟"), ("policy", &long), ("code", "x")],
        )])
        .await;
    assert_eq!(out[0].code(), Some("isv.PARAM_LENGTH_LIMIT"), "{out:?}");
    assert!(sim.messages().await.is_empty());
}

#[tokio::test]
async fn tencent_renders_in_order_and_refuses_like_tencent() {
    let sim = Sim::start(config()).await;
    let mut cfg = sim.config();
    cfg.sms_provider = SmsProviderKind::Tencent;
    let sms = build_providers(&cfg).sms;
    let t = tencent();
    let out = sms
        .send(&[
            bound(
                "t1",
                "13800000001",
                &t,
                &[("1", "稳岗返还"), ("2", "2025-12-31")],
            ),
            bound(
                "t2",
                "13800000002",
                &t,
                &[("1", "稳岗返还"), ("2", "2025-12-31")],
            ),
        ])
        .await;
    assert!(out.iter().all(SendOutcome::is_accepted), "{out:?}");
    let m = sim.messages().await;
    assert_eq!(
        m.iter().map(|r| r.content.as_str()).collect::<Vec<_>>(),
        vec![
            "【人社服务】您可能符合稳岗返还申领条件，请于2025-12-31前办理。";
            2
        ]
    );
    let cases = [
        (
            raw("t3", "13800000001", &t, "999999", &[("1", "a"), ("2", "b")]),
            "FailedOperation.TemplateIncorrectOrUnapproved",
        ),
        (
            raw("t4", "13800000001", &t, "1843021", &[("1", "a")]),
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        ),
        (
            raw(
                "t5",
                "13800000001",
                &t,
                "1843021",
                &[("1", "小微企业一次性扩岗补助申领"), ("2", "2025-12-31")],
            ),
            "InvalidParameterValue.TemplateParameterLengthLimit",
        ),
        (
            raw(
                "t6",
                "13800000001",
                &t,
                "1843021",
                &[("1", "https://x.cn"), ("2", "b")],
            ),
            "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        ),
    ];
    for (m, code) in cases {
        let out = sms.send(std::slice::from_ref(&m)).await;
        assert_eq!(out[0].code(), Some(code), "{}: {out:?}", m.push_id);
    }
    assert_eq!(sim.messages().await.len(), 2);
}

#[tokio::test]
async fn wechat_and_voice_deliver_the_registered_text() {
    let sim = Sim::start(config()).await;
    let p = sim.providers();
    let w = wechat();
    let out = p
        .wechat
        .send(&[bound(
            "w1",
            "oOpenid000000000000000001",
            &w,
            &[("thing1", "一次性扩岗补助"), ("date2", "2025-12-31")],
        )])
        .await;
    assert!(out[0].is_accepted(), "{out:?}");
    let v = voice();
    let out = p
        .hotline
        .send(&[bound(
            "v1",
            "13800000009",
            &v,
            &[("policy", "一次性扩岗补助"), ("deadline", "2025-12-31")],
        )])
        .await;
    assert!(out[0].is_accepted(), "{out:?}");
    let out = p
        .wechat
        .send(&[raw(
            "w2",
            "oOpenid000000000000000002",
            &w,
            "tmpl_policy_01",
            &[("thing1", "x")],
        )])
        .await;
    assert_eq!(out[0].code(), Some("47003"), "{out:?}");
    let m = sim.messages().await;
    assert_eq!(
        m.iter().map(|r| r.content.as_str()).collect::<Vec<_>>(),
        vec![
            "政策名称：一次性扩岗补助\n截止日期：2025-12-31\nhttps://policy.example.gov.cn/p/w1",
            "您好，您可能符合一次性扩岗补助申领条件，请于2025-12-31前办理。",
        ]
    );
}
