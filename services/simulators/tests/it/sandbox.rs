//! The sandbox log across a restart and through `serve`'s shutdown.

use crate::helpers::{msg, Sim};
use simulators::SimulatorConfig;

#[tokio::test]
async fn what_was_accepted_before_a_restart_still_shows() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let batch: Vec<_> = (0..20)
        .map(|i| msg(&format!("p-{i}"), &format!("1380000{i:04}"), "x"))
        .collect();
    assert!(p.sms.send(&batch).await.iter().all(|o| o.is_accepted()));
    let dir = sim.stop().await;
    let sim = Sim::start_in(SimulatorConfig::default(), dir).await;
    let all = sim.messages().await;
    assert_eq!(all.len(), 20);
    assert!(all.iter().all(|m| m.campaign_id == "camp-A"));
    let out = sim
        .providers()
        .sms
        .send(&[msg("p-after", "13800009998", "y")])
        .await;
    assert!(out[0].is_accepted());
    let all = sim.messages().await;
    assert_eq!(all.last().unwrap().seq, 21);
    assert_eq!(
        sim.state.sandbox().list(Some("camp-A"), 20, 10).await.len(),
        1
    );
    assert!(sim
        .state
        .sandbox()
        .list(Some("other"), 0, 10)
        .await
        .is_empty());
}
