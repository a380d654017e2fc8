//! Tencent SMS through the real connector.

use crate::helpers::{msg, Catcher, Sim};
use connectors::{SendOutcome, SmsProviderKind};
use simulators::SimulatorConfig;

#[tokio::test]
async fn tencent_sms_is_signed_recorded_and_reported() {
    let catcher = Catcher::start().await;
    let sim = Sim::start(SimulatorConfig {
        tencent_sms_report_url: Some(catcher.url("tencent")),
        receipt_delay: std::time::Duration::from_millis(50),
        sms_blacklist: vec!["13500000009".into()],
        ..SimulatorConfig::default()
    })
    .await;
    let mut cfg = sim.config();
    cfg.sms_provider = SmsProviderKind::Tencent;
    let p = connectors::build_providers(&cfg);
    let out = p
        .sms
        .send(&[
            msg("p-tc-1", "13500000001", "政策提醒 https://x.cn/1"),
            msg("p-tc-2", "13500000009", "x"),
        ])
        .await;
    let SendOutcome::Accepted { provider_id } = &out[0] else {
        panic!("{out:?}")
    };
    assert!(
        matches!(&out[1], SendOutcome::Unreachable { code, .. } if code == "FailedOperation.PhoneNumberInBlacklist")
    );
    let rec = sim.messages().await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].content, "【人社服务】政策提醒 https://x.cn/1");
    assert_eq!(rec[0].push_ref, "p-tc-1");
    catcher.wait_for("tencent", |b| !b.is_empty()).await;
    let receipts =
        connectors::receipts::parse_tencent_sms_report(&catcher.bodies("tencent")[0].1).unwrap();
    assert_eq!(receipts[0].provider_id.as_ref(), Some(provider_id));
    assert!(receipts[0].delivered);

    cfg.tencent_sms.secret_key = "wrong".into();
    let bad = connectors::build_providers(&cfg);
    let out = bad.sms.send(&[msg("p-tc-3", "13500000001", "x")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "AuthFailure.SignatureFailure"),
        "{out:?}"
    );
    cfg.tencent_sms.secret_id = "who".into();
    let bad = connectors::build_providers(&cfg);
    let out = bad.sms.send(&[msg("p-tc-4", "13500000001", "x")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "AuthFailure.SecretIdNotFound"),
        "{out:?}"
    );
}

#[tokio::test]
async fn same_text_shares_a_request_and_receipts_are_pulled_once() {
    let sim = Sim::start(SimulatorConfig {
        receipt_delay: std::time::Duration::from_millis(50),
        sms_blacklist: vec!["13500000103".into()],
        failing_recipients: vec!["13500000104".into()],
        ..SimulatorConfig::default()
    })
    .await;
    let mut cfg = sim.config();
    cfg.sms_provider = SmsProviderKind::Tencent;
    let p = connectors::build_providers(&cfg);
    let mut batch: Vec<_> = (0..6)
        .map(|i| msg(&format!("p-g-{i}"), &format!("1350000010{i}"), "同一条通知"))
        .collect();
    batch.push(msg("p-g-own", "13500000200", "另一条"));
    let out = p.sms.send(&batch).await;
    assert!(
        matches!(&out[3], SendOutcome::Unreachable { code, .. } if code == "FailedOperation.PhoneNumberInBlacklist"),
        "{out:?}"
    );
    let serials: Vec<&str> = out
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, o)| match o {
            SendOutcome::Accepted { provider_id } => provider_id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        serials
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        6,
        "a SerialNo per number"
    );
    let rec = sim.messages().await;
    assert_eq!(rec.len(), 6);
    let shared: Vec<_> = rec
        .iter()
        .filter(|m| m.out_id == "p-g-0,p-g-1,p-g-2,p-g-3,p-g-4,p-g-5")
        .collect();
    assert_eq!(
        shared.len(),
        5,
        "the five sent numbers of one SendSms: {rec:?}"
    );
    for m in &shared {
        assert_eq!(
            m.push_ref,
            format!("p-g-{}", &m.to[10..]),
            "each number attributed"
        );
    }
    let own = rec.iter().find(|m| m.to == "13500000200").unwrap();
    assert_eq!(
        (own.push_ref.as_str(), own.out_id.as_str()),
        ("p-g-own", "")
    );

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let pulled = p.sms.pull_receipts(1000).await.unwrap();
    assert_eq!(pulled.len(), 6, "{pulled:?}");
    for r in &pulled {
        let id = r.provider_id.as_deref().unwrap();
        let i = out
            .iter()
            .position(|o| matches!(o, SendOutcome::Accepted { provider_id } if provider_id == id))
            .expect("matches a push by SerialNo");
        assert_eq!(r.delivered, i != 4, "{r:?}");
        assert_eq!(r.push_id.as_deref(), (i == 6).then_some("p-g-own"));
    }
    assert!(
        p.sms.pull_receipts(1000).await.unwrap().is_empty(),
        "each status is pulled once"
    );
}
