//! Receipts reach a callback server and parse with the connectors' parsers.

use crate::helpers::{msg, Catcher, Sim};
use connectors::aliyun_voice::voice_out_id;
use connectors::receipts::{
    parse_aliyun_sms_report, parse_aliyun_voice_report, parse_wechat_event, verify_wechat_signature,
};
use connectors::SendOutcome;
use simulators::{FaultConfig, SimulatorConfig};
use std::collections::HashMap;
use std::time::Duration;

fn config(c: &Catcher) -> SimulatorConfig {
    SimulatorConfig {
        sms_report_url: Some(c.url("sms")),
        wechat_event_url: Some(c.url("wechat")),
        voice_report_url: Some(c.url("voice")),
        receipt_delay: Duration::from_millis(50),
        failing_suffix: Some("9999".into()),
        voice_dtmf: Some("1".into()),
        ..SimulatorConfig::default()
    }
}

#[tokio::test]
async fn receipts_for_every_channel() {
    let catcher = Catcher::start().await;
    let sim = Sim::start(config(&catcher)).await;
    let p = sim.providers();

    let sms: Vec<_> = (0..150)
        .map(|i| msg(&format!("p-r-{i:03}"), &format!("1380001{i:04}"), "提醒"))
        .chain(std::iter::once(msg("p-r-fail", "13800009999", "提醒")))
        .collect();
    let out = p.sms.send(&sms).await;
    assert!(out.iter().all(SendOutcome::is_accepted));
    let wx = p
        .wechat
        .send(&[
            msg("p-w-ok", "oReceiptUser00000000000001", "thing1: 稳岗返还"),
            msg(
                "p-w-fail",
                "oReceiptUser0000000000009999",
                "thing1: 稳岗返还",
            ),
        ])
        .await;
    let voice_id = "push-voice-0000000000001";
    let calls = p
        .hotline
        .send(&[msg(voice_id, "13600000001", "您好")])
        .await;

    // SMS: batched JSON arrays (at most 100 a POST), all 151 receipts.
    catcher
        .wait_for("sms", |b| {
            b.iter()
                .map(|(_, body)| parse_aliyun_sms_report(body).unwrap().len())
                .sum::<usize>()
                >= 151
        })
        .await;
    let bodies = catcher.bodies("sms");
    assert!(bodies.len() >= 2, "151 receipts need two POSTs at least");
    // Batched sends: each number's report matches its push by provider id (BizId and
    // number), never by the request's OutId, which lists every push of the request.
    let mut by_id = HashMap::new();
    for (_, body) in &bodies {
        let items = parse_aliyun_sms_report(body).unwrap();
        assert!(items.len() <= 100);
        for r in items {
            assert!(
                by_id.insert(r.provider_id.clone().unwrap(), r).is_none(),
                "one report per number"
            );
        }
    }
    assert_eq!(by_id.len(), 151);
    let by_push: HashMap<&str, _> = sms
        .iter()
        .zip(&out)
        .map(|(m, o)| {
            let SendOutcome::Accepted { provider_id } = o else {
                unreachable!()
            };
            (m.push_id.as_str(), &by_id[provider_id])
        })
        .collect();
    assert!(by_push["p-r-007"].delivered);
    assert!(!by_push["p-r-fail"].delivered);
    assert!(
        by_push.values().filter(|r| r.delivered).count() == 150,
        "exactly the failing number failed"
    );
    let requests: std::collections::HashSet<&str> =
        by_id.keys().map(|k| k.split(':').next().unwrap()).collect();
    assert!(
        requests.len() <= 151usize.div_ceil(16),
        "151 numbers in at most 10 requests, got {}",
        requests.len()
    );

    // WeChat: one signed XML event per message.
    catcher.wait_for("wechat", |b| b.len() >= 2).await;
    let mut events = HashMap::new();
    for (query, body) in catcher.bodies("wechat") {
        let q: HashMap<String, String> = serde_urlencoded::from_str(&query.unwrap()).unwrap();
        assert!(verify_wechat_signature(
            "sim-callback-token",
            &q["timestamp"],
            &q["nonce"],
            &q["signature"]
        ));
        let r = parse_wechat_event(&body).unwrap().remove(0);
        events.insert(r.provider_id.clone().unwrap(), r);
    }
    for (outcome, delivered) in wx.iter().zip([true, false]) {
        let SendOutcome::Accepted { provider_id } = outcome else {
            panic!("{wx:?}")
        };
        assert_eq!(events[provider_id].delivered, delivered);
    }
    assert_eq!(
        events
            .values()
            .find(|r| !r.delivered)
            .unwrap()
            .error
            .as_deref(),
        Some("failed:user block")
    );

    // Voice: the call's report names the short OutId and the CallId.
    catcher.wait_for("voice", |b| !b.is_empty()).await;
    let r = parse_aliyun_voice_report(&catcher.bodies("voice")[0].1)
        .unwrap()
        .remove(0);
    let SendOutcome::Accepted { provider_id } = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(r.provider_id.as_ref(), Some(provider_id));
    assert_eq!(r.push_id, Some(voice_out_id(voice_id)));
    assert!(r.delivered);
    assert_eq!(r.dtmf.as_deref(), Some("1"));
}

#[tokio::test]
async fn receipts_can_be_lost_or_duplicated() {
    let catcher = Catcher::start().await;
    let mut cfg = config(&catcher);
    cfg.fault = FaultConfig {
        receipt_duplicate_rate: 1.0,
        ..FaultConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let out = sim
        .providers()
        .sms
        .send(&[msg("p-dup-r", "13800000001", "x")])
        .await;
    assert!(out[0].is_accepted());
    let count = || {
        catcher
            .bodies("sms")
            .iter()
            .map(|(_, b)| parse_aliyun_sms_report(b).unwrap().len())
            .sum::<usize>()
    };
    catcher.wait_for("sms", |_| count() >= 2).await;
    assert_eq!(count(), 2);

    let catcher = Catcher::start().await;
    let mut cfg = config(&catcher);
    cfg.fault = FaultConfig {
        receipt_loss_rate: 1.0,
        ..FaultConfig::default()
    };
    let sim = Sim::start(cfg).await;
    let out = sim
        .providers()
        .sms
        .send(&[msg("p-lost", "13800000001", "x")])
        .await;
    assert!(out[0].is_accepted());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(catcher.bodies("sms").is_empty());
}
