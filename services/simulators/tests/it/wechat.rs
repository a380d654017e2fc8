//! WeChat through the real connector.

use crate::helpers::{msg, Sim};
use connectors::{Lookup, SendOutcome, WechatApi};
use simulators::SimulatorConfig;

const OPENID: &str = "oX1a2b3c4d5e6f7g8h9i0jklmnop";

#[tokio::test]
async fn template_message_is_recorded_in_keyword_order() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let m = msg(
        "p-wx-1",
        OPENID,
        "thing1: 稳岗返还\namount2: ¥12,345\ntime3: 2025-06-30 17:00",
    );
    let out = p.wechat.send(std::slice::from_ref(&m)).await;
    let SendOutcome::Accepted { provider_id } = &out[0] else {
        panic!("{out:?}")
    };
    let rec = sim.messages().await;
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].channel, "wechat");
    assert_eq!(rec[0].to, OPENID);
    assert_eq!(
        rec[0].content,
        "稳岗返还\n¥12,345\n2025-06-30 17:00\nhttps://policy.example.gov.cn/p/p-wx-1"
    );
    assert_eq!(&rec[0].provider_id, provider_id);
    assert_eq!(rec[0].push_ref, "p-wx-1");
    assert_eq!(rec[0].subject_id, "subj-p-wx-1");
    assert_eq!(
        p.wechat.lookup(&m, chrono::Utc::now().date_naive()).await,
        Lookup::Unknown
    );

    // Free text goes in 20-character things.
    let text = "您好，您可能符合一次性扩岗补助申领条件，请于6月30日前登录一网通办申请。";
    let out = p.wechat.send(&[msg("p-wx-2", OPENID, text)]).await;
    assert!(out[0].is_accepted(), "{out:?}");
    let rec = sim.messages().await;
    let lines: Vec<&str> = rec[1].content.lines().collect();
    assert_eq!(lines[..lines.len() - 1].concat(), text);
}

#[tokio::test]
async fn duplicate_client_msg_id_is_not_recorded_twice() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let m = msg("p-dup", OPENID, "thing1: 稳岗返还");
    let first = p.wechat.send(std::slice::from_ref(&m)).await;
    let again = p.wechat.send(&[m.clone(), m.clone()]).await;
    assert!(first[0].is_accepted());
    assert_eq!(again, vec![first[0].clone(), first[0].clone()]);
    assert_eq!(sim.messages().await.len(), 1);
    // Another openid with the same client_msg_id is another message.
    let other = p
        .wechat
        .send(&[msg(
            "p-dup",
            "oOtherUser0000000000000001",
            "thing1: 稳岗返还",
        )])
        .await;
    assert_ne!(other[0], first[0]);
    assert_eq!(sim.messages().await.len(), 2);
}

#[tokio::test]
async fn dedup_survives_a_simulator_restart() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let m = msg("p-restart", OPENID, "thing1: 稳岗返还");
    let first = sim.providers().wechat.send(std::slice::from_ref(&m)).await;
    let dir = sim.stop().await;
    let sim = Sim::start_in(SimulatorConfig::default(), dir).await;
    let again = sim.providers().wechat.send(std::slice::from_ref(&m)).await;
    assert_eq!(again, first);
    assert_eq!(sim.messages().await.len(), 1);
}

#[tokio::test]
async fn unsubscribed_openid_is_unreachable() {
    let sim = Sim::start(SimulatorConfig {
        wechat_unsubscribed_suffix: Some("_gone".into()),
        ..SimulatorConfig::default()
    })
    .await;
    let p = sim.providers();
    let out = p
        .wechat
        .send(&[msg("p-u", "oSomeoneWhoLeft000000_gone", "thing1: 稳岗返还")])
        .await;
    assert!(
        matches!(&out[0], SendOutcome::Unreachable { code, .. } if code == "43004"),
        "{out:?}"
    );
    let mut cfg = sim.config();
    cfg.wechat.api = WechatApi::Subscribe;
    let sub = connectors::build_providers(&cfg);
    let out = sub
        .wechat
        .send(&[msg(
            "p-u2",
            "oSomeoneWhoLeft000000_gone",
            "thing1: 稳岗返还",
        )])
        .await;
    assert!(
        matches!(&out[0], SendOutcome::Unreachable { code, .. } if code == "43101"),
        "{out:?}"
    );
    let out = sub
        .wechat
        .send(&[msg("p-s", OPENID, "thing1: 稳岗返还")])
        .await;
    assert!(out[0].is_accepted(), "{out:?}");
    assert!(sim.messages().await[0]
        .content
        .ends_with("\nhttps://policy.example.gov.cn/p/p-s"));
}

#[tokio::test]
async fn values_over_the_limits_are_refused_before_and_by_wechat() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    let out = p
        .wechat
        .send(&[msg(
            "p-long",
            OPENID,
            "thing1: 一二三四五六七八九十一二三四五六七八九十一",
        )])
        .await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, message } if code == "field_too_long" && message.starts_with("field_too_long: thing1")),
        "{out:?}"
    );
    // The simulator's own check, for a client that does not check.
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/wechat/cgi-bin/stable_token", sim.base))
        .json(&serde_json::json!({"grant_type":"client_credential","appid":"wxsimulator00000001","secret":"sim-app-secret"}))
        .send().await.unwrap().json().await.unwrap();
    let send = |data: serde_json::Value| {
        let url = format!(
            "{}/wechat/cgi-bin/message/template/send?access_token={}",
            sim.base,
            token["access_token"].as_str().unwrap()
        );
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&serde_json::json!({"touser": OPENID, "template_id": "t", "data": data}))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let r = send(
        serde_json::json!({"thing1": {"value": "一二三四五六七八九十一二三四五六七八九十一"}}),
    )
    .await;
    assert_eq!(r["errcode"], 47003);
    assert_eq!(r["errmsg"], "argument invalid! data.thing1.value invalid");
    let r =
        send(serde_json::json!({"amount2": {"value": "¥12,345"}, "phrase3": {"value": "已受理"}}))
            .await;
    assert_eq!(r["errcode"], 0, "{r}");
    assert!(r["msgid"].is_u64());
    assert_eq!(sim.messages().await.len(), 1);
}

#[tokio::test]
async fn tokens_refresh_after_invalidation_and_bad_secret_is_permanent() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let p = sim.providers();
    assert!(p.wechat.send(&[msg("p-t1", OPENID, "thing1: 一")]).await[0].is_accepted());
    // Someone force-refreshes: the connector's cached token is now invalid (40001).
    let client = reqwest::Client::new();
    let url = format!("{}/wechat/cgi-bin/stable_token", sim.base);
    let body = serde_json::json!({"grant_type":"client_credential","appid":"wxsimulator00000001","secret":"sim-app-secret","force_refresh":true});
    let forced: serde_json::Value = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(forced["access_token"].is_string());
    let stale = client
        .post(format!(
            "{}/wechat/cgi-bin/message/template/send?access_token=bogus",
            sim.base
        ))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(stale["errcode"], 40001);
    let out = p.wechat.send(&[msg("p-t2", OPENID, "thing1: 二")]).await;
    assert!(out[0].is_accepted(), "refresh and retry once: {out:?}");
    // Normal mode is idempotent.
    let body = serde_json::json!({"grant_type":"client_credential","appid":"wxsimulator00000001","secret":"sim-app-secret"});
    let a: serde_json::Value = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: serde_json::Value = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["access_token"], b["access_token"]);
    assert_eq!(a["access_token"], forced["access_token"]);

    let mut cfg = sim.config();
    cfg.wechat.app_secret = "nope".into();
    let bad = connectors::build_providers(&cfg);
    let out = bad.wechat.send(&[msg("p-t3", OPENID, "thing1: 三")]).await;
    assert!(
        matches!(&out[0], SendOutcome::Permanent { code, .. } if code == "token_40125"),
        "{out:?}"
    );
}

#[tokio::test]
async fn expired_tokens_answer_42001() {
    let sim = Sim::start(SimulatorConfig {
        wechat_token_ttl: std::time::Duration::from_millis(200),
        ..SimulatorConfig::default()
    })
    .await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({"grant_type":"client_credential","appid":"wxsimulator00000001","secret":"sim-app-secret"});
    let t: serde_json::Value = client
        .post(format!("{}/wechat/cgi-bin/stable_token", sim.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r: serde_json::Value = client
        .post(format!(
            "{}/wechat/cgi-bin/message/template/send?access_token={}",
            sim.base,
            t["access_token"].as_str().unwrap()
        ))
        .json(&serde_json::json!({"touser": OPENID, "template_id": "t", "data": {"thing1": {"value": "x"}}}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(r["errcode"], 42001);
    // The connector (tokens shorter than its 5-minute margin are fetched every time) works.
    let out = sim
        .providers()
        .wechat
        .send(&[msg("p-e", OPENID, "thing1: 一")])
        .await;
    assert!(out[0].is_accepted(), "{out:?}");
}

#[tokio::test]
async fn replicas_share_one_access_token_through_the_cache() {
    let sim = Sim::start(SimulatorConfig::default()).await;
    let cache: std::sync::Arc<dyn limits::SharedCache> =
        std::sync::Arc::new(limits::MemoryCache::new());
    let replica = || {
        connectors::WechatOfficial::new(sim.config().wechat, reqwest::Client::new())
            .with_shared_token(cache.clone())
    };
    let (a, b) = (replica(), replica());
    let ta = a.access_token(None).await.unwrap();
    assert_eq!(
        b.access_token(None).await.unwrap(),
        ta,
        "one token for both"
    );
    // A refused token is replaced once, and the other replica picks up the new one.
    let fresh = a.access_token(Some(&ta)).await.unwrap();
    assert_ne!(fresh, ta);
    assert_eq!(b.access_token(None).await.unwrap(), fresh);
    // Both send with it.
    for (i, p) in [&a, &b].into_iter().enumerate() {
        let out =
            connectors::Provider::send(p, &[msg(&format!("p-share-{i}"), OPENID, "thing1: 补贴")])
                .await;
        assert!(out[0].is_accepted(), "{out:?}");
    }
}
