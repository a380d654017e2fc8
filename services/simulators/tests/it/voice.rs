//! Alibaba voice (12333 hotline) through the real connector.

use crate::helpers::{msg, Sim};
use connectors::aliyun_voice::voice_out_id;
use connectors::{Lookup, SendOutcome};
use simulators::SimulatorConfig;
use std::time::Duration;

#[tokio::test]
async fn call_is_recorded_with_tts_text_and_short_out_id() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let long_id = "push-2025-000000000042";
    let out = p
        .hotline
        .send(&[
            msg(
                "p-v-1",
                "13600000001",
                "您好，这里是12333，您可能符合稳岗返还条件。",
            ),
            msg(long_id, "13600000002", "您好"),
        ])
        .await;
    assert!(out.iter().all(SendOutcome::is_accepted), "{out:?}");
    let rec = sim.messages().await;
    let a = rec.iter().find(|m| m.to == "13600000001").unwrap();
    assert_eq!(a.channel, "hotline");
    assert_eq!(a.content, "您好，这里是12333，您可能符合稳岗返还条件。");
    assert_eq!(a.push_ref, "p-v-1");
    let b = rec.iter().find(|m| m.to == "13600000002").unwrap();
    assert_eq!(b.push_ref, voice_out_id(long_id));
    assert_eq!(b.push_ref.len(), 15);
    assert_eq!(
        b.subject_id,
        format!("subj-{}", voice_out_id(long_id)),
        "attribution sees the OutId as sent"
    );
    assert_eq!(
        p.hotline
            .lookup(
                &msg("p-v-1", "13600000001", ""),
                chrono::Utc::now().date_naive()
            )
            .await,
        Lookup::Unknown
    );
}

#[tokio::test]
async fn per_callee_limits_and_long_text() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let first = p.hotline.send(&[msg("p-1", "13600000003", "一")]).await;
    assert!(first[0].is_accepted());
    let second = p.hotline.send(&[msg("p-2", "13600000003", "二")]).await;
    assert!(
        matches!(&second[0], SendOutcome::Transient { code, retry_after: Some(d), .. }
            if code == "isv.BUSINESS_LIMIT_CONTROL" && *d == Duration::from_secs(60)),
        "{second:?}"
    );
    let long = "长".repeat(240);
    let out = p.hotline.send(&[msg("p-3", "13600000004", &long)]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "tts_too_long"),
        "{out:?}"
    );
    assert_eq!(sim.messages().await.len(), 1);
}

#[tokio::test]
async fn concurrency_limit_is_transient() {
    let sim = Sim::start(SimulatorConfig {
        voice_max_concurrent: 2,
        receipt_delay: Duration::from_secs(5),
        ..SimulatorConfig::default()
    })
    .await;
    let p = sim.providers();
    let batch: Vec<_> = (0..3)
        .map(|i| msg(&format!("p-{i}"), &format!("1360000010{i}"), "x"))
        .collect();
    let out = p.hotline.send(&batch).await;
    let limited = out
        .iter()
        .filter(|o| matches!(o, SendOutcome::Transient { retry_after: Some(d), .. } if *d == Duration::from_secs(1)))
        .count();
    assert_eq!(limited, 1, "{out:?}");
}
