//! The receipt parsers against callback bodies shaped like the providers' documentation.

use connectors::receipts::*;

#[test]
fn aliyun_sms_report() {
    let r = parse_aliyun_sms_report(include_bytes!("fixtures/aliyun_sms_report.json")).unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].provider_id.as_deref(),
        Some("932702304080415357^0:13800000001"),
        "BizId and number: one BizId covers a whole request"
    );
    assert_eq!(r[0].push_id.as_deref(), Some("p-000000000001"));
    assert!(r[0].delivered);
    assert_eq!(r[0].error, None);
    assert!(!r[1].delivered);
    assert_eq!(r[1].push_id, None, "an empty out_id is no push id");
    assert_eq!(r[1].error.as_deref(), Some("MK:0001: 用户接收失败"));
    assert!(parse_aliyun_sms_report(b"not json").is_err());
    assert!(parse_aliyun_sms_report(br#"[{"biz_id":"x"}]"#).is_err());
    let reply: serde_json::Value = serde_json::from_str(ALIYUN_SMS_REPORT_REPLY).unwrap();
    assert_eq!(reply["code"], 0);
}

#[test]
fn aliyun_batch_reports_match_per_number() {
    // Two numbers of one SendBatchSms: one BizId, the request's OutId listing both pushes.
    let body = r#"[
      {"phone_number":"+8613800000001","success":true,"err_code":"DELIVERED","biz_id":"77^0","out_id":"pa,pb"},
      {"phone_number":"13800000002","success":false,"err_code":"W-BLACK","err_msg":"黑名单","biz_id":"77^0","out_id":"pa,pb"}
    ]"#;
    let r = parse_aliyun_sms_report(body.as_bytes()).unwrap();
    assert_eq!(r[0].provider_id.as_deref(), Some("77^0:13800000001"));
    assert_eq!(r[1].provider_id.as_deref(), Some("77^0:13800000002"));
    assert_eq!(
        connectors::aliyun_sms::provider_id("77^0", "13800000002"),
        "77^0:13800000002",
        "the send side builds the same key"
    );
    assert_eq!(
        r[0].push_id, None,
        "a list of push ids names no single push"
    );
    assert!(r[0].delivered && !r[1].delivered);
    assert_eq!(r[1].error.as_deref(), Some("W-BLACK: 黑名单"));
}

#[test]
fn aliyun_voice_report() {
    let r = parse_aliyun_voice_report(include_bytes!("fixtures/aliyun_voice_report.json")).unwrap();
    assert_eq!(r.len(), 2);
    assert!(r[0].delivered);
    assert_eq!(r[0].dtmf.as_deref(), Some("1"));
    assert_eq!(r[0].provider_id.as_deref(), Some("116012354148^10281378"));
    assert!(!r[1].delivered);
    assert_eq!(r[1].error.as_deref(), Some("200002: 用户忙"));
    assert_eq!(r[1].push_id.as_deref(), Some("abcdefghijklmno"));
}

#[test]
fn wechat_template_events() {
    let ok = parse_wechat_event(include_bytes!("fixtures/wechat_template_finish.xml")).unwrap();
    assert_eq!(
        ok,
        vec![Receipt {
            provider_id: Some("200163836".into()),
            delivered: true,
            ..Receipt::default()
        }]
    );
    let failed = parse_wechat_event(include_bytes!("fixtures/wechat_template_failed.xml")).unwrap();
    assert!(!failed[0].delivered);
    assert_eq!(failed[0].error.as_deref(), Some("failed: system failed"));
    let sub = parse_wechat_event(include_bytes!("fixtures/wechat_subscribe_sent.xml")).unwrap();
    assert_eq!(sub.len(), 1);
    assert!(sub[0].delivered);
    assert_eq!(sub[0].provider_id.as_deref(), Some("1700827132819554304"));
    let other =
        b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event></xml>";
    assert!(parse_wechat_event(other).unwrap().is_empty());
    assert!(parse_wechat_event(b"{}").is_err());
}

#[test]
fn wechat_signature() {
    let sig = connectors::receipts::wechat_signature("token", "1700000000", "nonce");
    assert!(verify_wechat_signature(
        "token",
        "1700000000",
        "nonce",
        &sig
    ));
    assert!(!verify_wechat_signature(
        "other",
        "1700000000",
        "nonce",
        &sig
    ));
}

#[test]
fn tencent_sms_report() {
    let r = parse_tencent_sms_report(include_bytes!("fixtures/tencent_sms_report.json")).unwrap();
    assert!(r[0].delivered);
    assert_eq!(r[0].provider_id.as_deref(), Some("2019:538884*********"));
    assert!(!r[1].delivered);
    assert_eq!(r[1].error.as_deref(), Some("UNDELIV: 用户短信未送达"));
}
