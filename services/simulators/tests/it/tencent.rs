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
