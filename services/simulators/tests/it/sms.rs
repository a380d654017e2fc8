//! Alibaba SMS through the real connector.

use crate::helpers::{aliyun_raw, msg, Sim};
use connectors::{AliyunSms, Lookup, Provider, SendOutcome};
use simulators::SimulatorConfig;
use std::collections::HashMap;
use std::time::Duration;

fn today_cn() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

#[tokio::test]
async fn sent_sms_is_recorded_with_sign_and_attribution() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    assert_eq!(p.sms.channel(), domain::Channel::Sms);
    let batch: Vec<_> = (0..40)
        .map(|i| {
            msg(
                &format!("p-sms-{i:03}"),
                &format!("1380000{i:04}"),
                &format!("您可申领稳岗返还，详见 https://x.cn/{i}"),
            )
        })
        .collect();
    let out = p.sms.send(&batch).await;
    assert_eq!(out.len(), 40);
    assert!(out.iter().all(SendOutcome::is_accepted), "{out:?}");
    let recorded = sim.messages().await;
    assert_eq!(recorded.len(), 40);
    let m = recorded.iter().find(|m| m.push_ref == "p-sms-007").unwrap();
    assert_eq!(m.channel, "sms");
    assert_eq!(m.to, "13800000007");
    assert_eq!(
        m.content,
        "【人社服务】您可申领稳岗返还，详见 https://x.cn/7"
    );
    assert_eq!(m.campaign_id, "camp-A");
    assert_eq!(m.subject_id, "subj-p-sms-007");
    assert_eq!(m.template, "SMS_POLICY_PUSH");
    let SendOutcome::Accepted { provider_id } = &out[7] else {
        unreachable!()
    };
    assert_eq!(
        *provider_id,
        format!("{}:{}", m.provider_id, m.to),
        "the request's BizId and the number"
    );
}

#[tokio::test]
async fn bad_signature_and_unknown_key_are_refused_like_alibaba() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let url = format!("{}/aliyun/sms/", sim.base);
    let (status, body) = aliyun_raw(
        &url,
        "wrong-secret",
        "SendSms",
        "n-1",
        &[("PhoneNumbers", "13800000001")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["Code"], "SignatureDoesNotMatch");
    assert_eq!(
        body["Message"],
        "Specified signature is not matched with our calculation."
    );
    assert!(body["RequestId"].is_string());

    let mut cfg = sim.config();
    cfg.aliyun_sms.access_key_secret = "wrong-secret".into();
    let sms = AliyunSms::new(cfg.aliyun_sms.clone(), reqwest::Client::new());
    let out = sms.send(&[msg("p-1", "13800000001", "hi")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "SignatureDoesNotMatch"),
        "{out:?}"
    );

    cfg.aliyun_sms.access_key_id = "nobody".into();
    let sms = AliyunSms::new(cfg.aliyun_sms, reqwest::Client::new());
    let out = sms.send(&[msg("p-2", "13800000001", "hi")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "InvalidAccessKeyId.NotFound"),
        "{out:?}"
    );
    assert!(sim.messages().await.is_empty());
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let url = format!("{}/aliyun/sms/", sim.base);
    let biz = [
        ("PhoneNumbers", "13800000001"),
        ("SignName", "人社服务"),
        ("TemplateCode", "SMS_X"),
        ("TemplateParam", r#"{"content":"hello"}"#),
        ("OutId", "p-raw-1"),
    ];
    let (status, body) = aliyun_raw(&url, "sim-access-secret", "SendSms", "nonce-1", &biz).await;
    assert_eq!((status, body["Code"].as_str()), (200, Some("OK")), "{body}");
    assert!(body["BizId"].is_string());
    let (status, body) = aliyun_raw(&url, "sim-access-secret", "SendSms", "nonce-1", &biz).await;
    assert_eq!(status, 400);
    assert_eq!(body["Code"], "SignatureNonceUsed");
    assert_eq!(sim.messages().await.len(), 1);
}

#[tokio::test]
async fn business_errors_map_to_outcomes() {
    let mut templates = HashMap::new();
    templates.insert("SMS_POLICY_PUSH".to_string(), "${content}".to_string());
    let cfg = SimulatorConfig {
        sms_blacklist: vec!["13900000009".into()],
        sms_daily_limit_per_number: 2,
        sms_templates: Some(templates),
        ..SimulatorConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let p = sim.providers();
    let out = p
        .sms
        .send(&[
            msg("p-a", "13900000009", "x"),
            msg("p-b", "12345", "x"),
            msg("p-c", "13900000001", "x"),
            msg("p-d", "13900000001", "x"),
            msg("p-e", "13900000001", "x"),
        ])
        .await;
    assert!(
        matches!(&out[0], SendOutcome::Unreachable { code, .. } if code == "isv.BLACK_KEY_CONTROL_LIMIT"),
        "{out:?}"
    );
    assert!(matches!(&out[1], SendOutcome::Permanent { code, .. } if code == "invalid_mobile"));
    // Concurrent sends to one number: exactly two fit the daily limit of 2.
    let limited: Vec<_> = out[2..]
        .iter()
        .filter(|o| {
            matches!(o, SendOutcome::Transient { code, retry_after: Some(d), .. }
            if code == "isv.BUSINESS_LIMIT_CONTROL" && *d == Duration::from_secs(86_400))
        })
        .collect();
    assert_eq!(limited.len(), 1, "{out:?}");

    let mut cfg = sim.config();
    cfg.aliyun_sms.template_code = "SMS_UNKNOWN".into();
    let sms = AliyunSms::new(cfg.aliyun_sms, reqwest::Client::new());
    let out = sms.send(&[msg("p-f", "13900000002", "x")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "isv.SMS_TEMPLATE_ILLEGAL")
    );

    // What the connector never sends: an illegal number, bad JSON, a missing variable.
    let url = format!("{}/aliyun/sms/", sim.base);
    let base = [
        ("SignName", "人社服务"),
        ("TemplateCode", "SMS_POLICY_PUSH"),
    ];
    for (nonce, phone, param, code) in [
        (
            "n1",
            "12345",
            r#"{"content":"x"}"#,
            "isv.MOBILE_NUMBER_ILLEGAL",
        ),
        (
            "n2",
            "13900000003",
            r#"{"content":1}"#,
            "isv.INVALID_JSON_PARAM",
        ),
        (
            "n3",
            "13900000003",
            r#"{"other":"x"}"#,
            "isv.TEMPLATE_MISSING_PARAMETERS",
        ),
    ] {
        let mut biz = base.to_vec();
        biz.push(("PhoneNumbers", phone));
        biz.push(("TemplateParam", param));
        let (_, body) = aliyun_raw(&url, "sim-access-secret", "SendSms", nonce, &biz).await;
        assert_eq!(body["Code"], code);
    }
    let many = vec!["13900000003"; 1001].join(",");
    let mut biz = base.to_vec();
    biz.push(("PhoneNumbers", &many));
    biz.push(("TemplateParam", r#"{"content":"x"}"#));
    let (_, body) = aliyun_raw(&url, "sim-access-secret", "SendSms", "n4", &biz).await;
    assert_eq!(body["Code"], "isv.MOBILE_COUNT_OVER_LIMIT");
    assert_eq!(sim.messages().await.len(), 2);
}

#[tokio::test]
async fn send_batch_sms_records_each_number() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let url = format!("{}/aliyun/sms/", sim.base);
    let (_, body) = aliyun_raw(
        &url,
        "sim-access-secret",
        "SendBatchSms",
        "b1",
        &[
            ("PhoneNumberJson", r#"["13800000001","+8613800000002"]"#),
            ("SignNameJson", r#"["甲","乙"]"#),
            ("TemplateCode", "SMS_B"),
            (
                "TemplateParamJson",
                r#"[{"content":"一"},{"content":"二"}]"#,
            ),
        ],
    )
    .await;
    assert_eq!(body["Code"], "OK", "{body}");
    let m = sim.messages().await;
    assert_eq!(
        m.iter()
            .map(|m| (m.to.as_str(), m.content.as_str()))
            .collect::<Vec<_>>(),
        vec![("13800000001", "【甲】一"), ("13800000002", "【乙】二")]
    );
    let too_many = serde_json::to_string(&vec!["13800000001"; 101]).unwrap();
    let signs = serde_json::to_string(&vec!["甲"; 101]).unwrap();
    let (_, body) = aliyun_raw(
        &url,
        "sim-access-secret",
        "SendBatchSms",
        "b2",
        &[
            ("PhoneNumberJson", &too_many),
            ("SignNameJson", &signs),
            ("TemplateCode", "SMS_B"),
        ],
    )
    .await;
    assert_eq!(body["Code"], "isv.MOBILE_COUNT_OVER_LIMIT");
}

#[tokio::test]
async fn lookup_finds_a_push_by_out_id() {
    let sim = Sim::start(SimulatorConfig {
        sms_daily_limit_per_number: 100,
        ..SimulatorConfig::default()
    })
    .await;
    let p = sim.providers();
    // More than one page (50) of messages to the same number.
    let batch: Vec<_> = (0..60)
        .map(|i| {
            msg(
                &format!("p-look-{i:02}"),
                "13700000001",
                &format!("消息{i}"),
            )
        })
        .collect();
    let out = p.sms.send(&batch).await;
    assert!(out.iter().all(SendOutcome::is_accepted), "{out:?}");
    for m in &batch {
        let found = p.sms.lookup(m, today_cn()).await;
        assert!(
            matches!(found, Lookup::Found { .. }),
            "{}: {found:?}",
            m.push_id
        );
    }
    assert_eq!(
        p.sms
            .lookup(&msg("p-never", "13700000001", "x"), today_cn())
            .await,
        Lookup::NotFound
    );
    assert_eq!(
        p.sms
            .lookup(&msg("p-look-01", "13700000002", "x"), today_cn())
            .await,
        Lookup::NotFound
    );
    // Yesterday's query also looks at today (a send just before midnight).
    let yesterday = today_cn().pred_opt().unwrap();
    assert!(matches!(
        p.sms.lookup(&batch[3], yesterday).await,
        Lookup::Found { .. }
    ));
    // A query failure is Unknown, not NotFound.
    let mut cfg = sim.config();
    cfg.aliyun_sms.access_key_secret = "wrong".into();
    let bad = AliyunSms::new(cfg.aliyun_sms, reqwest::Client::new());
    assert_eq!(bad.lookup(&batch[0], today_cn()).await, Lookup::Unknown);
}

#[tokio::test]
async fn injected_errors_and_timeouts_are_transient() {
    let cfg = SimulatorConfig {
        fault: simulators::FaultConfig {
            error_rate: 1.0,
            ..Default::default()
        },
        ..SimulatorConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let p = sim.providers();
    let out = p
        .sms
        .send(&[
            msg("p-1", "13800000001", "x"),
            msg("p-2", "13800000002", "x"),
        ])
        .await;
    assert!(
        out.iter().all(
            |o| matches!(o, SendOutcome::Transient { code, .. } if code == "isp.SYSTEM_ERROR")
        ),
        "{out:?}"
    );
    let out = p
        .wechat
        .send(&[msg("p-3", "oWechatUser000000000000001", "thing1: 稳岗返还")])
        .await;
    assert!(
        matches!(&out[0], SendOutcome::Transient { code, .. } if code == "-1"),
        "{out:?}"
    );
    let out = p.hotline.send(&[msg("p-4", "13800000004", "您好")]).await;
    assert!(matches!(&out[0], SendOutcome::Transient { .. }), "{out:?}");
    assert!(sim.messages().await.is_empty());

    let cfg = SimulatorConfig {
        fault: simulators::FaultConfig {
            timeout_rate: 1.0,
            timeout: Duration::from_secs(3),
            ..Default::default()
        },
        ..SimulatorConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let mut pc = sim.config();
    pc.http.request_timeout_ms = 300;
    let p = connectors::build_providers(&pc);
    let out = p.sms.send(&[msg("p-5", "13800000005", "x")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Transient { code, .. } if code == "timeout"),
        "{out:?}"
    );
}

#[tokio::test]
async fn one_batch_records_each_number_refusals_included() {
    let cfg = SimulatorConfig {
        sms_blacklist: vec!["13900000017".into()],
        ..SimulatorConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let p = sim.providers();
    let batch: Vec<_> = (0..40)
        .map(|i| {
            msg(
                &format!("p-b-{i:02}"),
                &format!("1390000{i:04}"),
                &format!("第{i}条"),
            )
        })
        .chain(std::iter::once(msg("p-b-bad", "1390000", "x")))
        .collect();
    let out = p.sms.send(&batch).await;
    assert_eq!(out.len(), 41);
    assert!(
        matches!(&out[17], SendOutcome::Unreachable { code, .. } if code == "isv.BLACK_KEY_CONTROL_LIMIT"),
        "the blacklisted number alone is refused: {:?}",
        out[17]
    );
    assert!(matches!(&out[40], SendOutcome::Permanent { code, .. } if code == "invalid_mobile"));
    let recorded = sim.messages().await;
    assert_eq!(recorded.len(), 39, "every other number was sent once");
    for (i, (m, o)) in batch.iter().zip(&out).enumerate().take(40) {
        if i == 17 {
            continue;
        }
        let SendOutcome::Accepted { provider_id } = o else {
            panic!("{i}: {o:?}")
        };
        let r = recorded.iter().find(|r| r.push_ref == m.push_id).unwrap();
        assert_eq!(r.to, m.to, "sandbox attributes each number to its own push");
        assert_eq!(r.content, format!("【人社服务】第{i}条"));
        assert_eq!(*provider_id, format!("{}:{}", r.provider_id, m.to));
    }
    let biz_ids: std::collections::HashSet<_> =
        recorded.iter().map(|r| r.provider_id.as_str()).collect();
    assert!(
        biz_ids.len() < 10,
        "39 numbers go in a handful of SendBatchSms requests, not one each: {}",
        biz_ids.len()
    );
    assert!(recorded.iter().any(|r| r.out_id.contains(',')));
}

#[tokio::test]
async fn lookup_and_status_of_one_number_of_a_batch() {
    let sim = Sim::start(SimulatorConfig {
        receipt_delay: Duration::from_millis(50),
        failing_recipients: vec!["13600000003".into()],
        ..SimulatorConfig::default()
    })
    .await;
    let p = sim.providers();
    let batch: Vec<_> = (0..10)
        .map(|i| msg(&format!("p-c-{i}"), &format!("1360000{i:04}"), "通知"))
        .collect();
    // The outcomes are dropped, as by a process killed before recording them.
    let out = p.sms.send(&batch).await;
    assert!(out.iter().all(SendOutcome::is_accepted), "{out:?}");
    let recorded = sim.messages().await;
    assert_eq!(
        recorded
            .iter()
            .map(|r| r.provider_id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        1,
        "one SendBatchSms"
    );
    for m in &batch {
        assert!(
            matches!(p.sms.lookup(m, today_cn()).await, Lookup::Found { .. }),
            "{} is found by its push id",
            m.push_id
        );
    }
    // Same number, a push that was never sent.
    let never = msg("p-c-never", "13600000004", "通知");
    assert_eq!(p.sms.lookup(&never, today_cn()).await, Lookup::NotFound);
    // Another push id that is a prefix of a sent one is not mistaken for it.
    let prefix = msg("p-c-", "13600000004", "通知");
    assert_eq!(p.sms.lookup(&prefix, today_cn()).await, Lookup::NotFound);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let ok = p
        .sms
        .query_receipt(&batch[2], today_cn())
        .await
        .unwrap()
        .unwrap();
    assert!(ok.delivered);
    assert_eq!(ok.push_id.as_deref(), Some("p-c-2"));
    let failed = p
        .sms
        .query_receipt(&batch[3], today_cn())
        .await
        .unwrap()
        .unwrap();
    assert!(!failed.delivered);
    assert_eq!(failed.push_id.as_deref(), Some("p-c-3"));
    assert_eq!(p.sms.query_receipt(&never, today_cn()).await.unwrap(), None);
    assert_eq!(
        p.wechat.query_receipt(&never, today_cn()).await,
        Err(connectors::PullError::Unsupported)
    );
}

#[tokio::test]
async fn out_id_of_256_characters_is_refused() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let url = format!("{}/aliyun/sms/", sim.base);
    let long = "x".repeat(256);
    let biz = [
        ("PhoneNumberJson", r#"["13800000001","13800000002"]"#),
        ("SignNameJson", r#"["甲","甲"]"#),
        ("TemplateCode", "SMS_B"),
        (
            "TemplateParamJson",
            r#"[{"content":"一"},{"content":"二"}]"#,
        ),
        ("OutId", long.as_str()),
    ];
    let (_, body) = aliyun_raw(&url, "sim-access-secret", "SendBatchSms", "o1", &biz).await;
    assert_eq!(body["Code"], "isv.INVALID_PARAMETERS", "{body}");
    assert!(sim.messages().await.is_empty());
}
