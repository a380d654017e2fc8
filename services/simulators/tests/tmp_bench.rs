use std::sync::Arc;
use std::time::Instant;
use connectors::{build_providers, OutgoingMessage, ProvidersConfig};
use simulators::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = SandboxLog::open_in_dir(dir.path()).await.unwrap();
    let cfg = SimulatorConfig { enforce_limits: false, ..Default::default() };
    let state = SimulatorState::new(cfg, sandbox.clone(), Arc::new(NoAttribution));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener, state, std::future::pending()));
    let p = Arc::new(build_providers(&ProvidersConfig::simulator(&base)));
    for chan in ["sms", "wechat"] {
    let n = 20_000usize;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let batch: Vec<OutgoingMessage> = (i..(i + 32 * 8).min(n)).step_by(8).map(|k| OutgoingMessage {
                    push_id: format!("{chan}-{k}"), campaign_id: "c".into(), subject_id: "s".into(),
                    to: if chan == "sms" { format!("138{k:08}") } else { format!("oUser{k:023}") },
                    content: if chan == "sms" { "您好，稳岗返还 https://x.cn/p/abc".into() } else { "thing1: 稳岗返还\namount2: ¥12,345".into() },
                    link: "https://x.cn/p/abc".into() }).collect();
                let prov = if chan == "sms" { &p.sms } else { &p.wechat };
                let out = prov.send(&batch).await;
                assert!(out.iter().all(|o| o.is_accepted()), "{:?}", out.iter().find(|o| !o.is_accepted()));
                i += 32 * 8;
            }
        }));
    }
    for t in tasks { t.await.unwrap(); }
    let el = t.elapsed();
    println!("{chan}: {n} in {:?} = {:.0}/s", el, n as f64 / el.as_secs_f64());
    }
    println!("count {}", sandbox.count(None).await.unwrap());
}
