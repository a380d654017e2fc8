//! `/wechat/`: WeChat official account — `cgi-bin/stable_token`,
//! `cgi-bin/message/template/send`, `cgi-bin/message/subscribe/bizsend`.
//!
//! - **Tokens.** `stable_token` (POST JSON; appid / secret from the config, 40013 / 40125
//!   otherwise) returns the current token while it has more than 5 minutes left (normal
//!   mode is idempotent) and issues a new one after that, the old one staying valid until
//!   it expires; `force_refresh: true` issues a new one and invalidates the old at once.
//!   Sends check `access_token`: missing 41001, unknown or invalidated 40001, expired 42001.
//! - **Sends.** `touser` (40003), `template_id` (40037 if a list is configured), every
//!   `data.<key>.value` against its keyword type (47003 `argument invalid!
//!   data.<key>.value invalid`), followers (43004 template / 43101 subscribe for the
//!   configured unsubscribed openids). A template message with a `client_msg_id` already
//!   seen for the same openid within 10 minutes answers the first `msgid` and is not
//!   recorded again (also across a restart: the log's last 10 minutes are loaded into the
//!   de-duplication map on the first send). Accepted: `{"errcode":0,"errmsg":"ok","msgid":…}`,
//!   recorded as the registered template's text with every `{{key.DATA}}` filled (a
//!   keyword missing from `data`: 47003), or, for the catch-all or a template not in
//!   [`crate::SimulatorConfig::templates`], the data values joined by `\n` in the request's
//!   keyword order; then `\n` + url (or page); and reported by an event push (`TEMPLATESENDJOBFINISH` /
//!   `subscribe_msg_sent_event`).

use crate::receipts::cdata;
use crate::sandbox::NewMessage;
use crate::state::SimulatorState;
use crate::wechat_values;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::Json;
use domain::provider_template::{placeholders, Provider};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `client_msg_id` de-duplication window.
const DEDUP_WINDOW: Duration = Duration::from_secs(600);
/// Normal-mode `stable_token` hands out a new token when the current one has less left.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Tokens and `client_msg_id`s.
pub(crate) struct WechatState {
    tokens: Mutex<Tokens>,
    /// `(openid, client_msg_id)` → `(msgid, first seen)`.
    dedup: Mutex<HashMap<(String, String), (u64, Instant)>>,
    /// Set once the map holds the sandbox log's last 10 minutes (after a restart).
    warm: tokio::sync::OnceCell<()>,
}

#[derive(Default)]
struct Tokens {
    current: Option<String>,
    /// Every token not invalidated by a force refresh → its expiry.
    expiry: HashMap<String, Instant>,
}

impl WechatState {
    pub fn new() -> Self {
        Self {
            tokens: Mutex::new(Tokens::default()),
            dedup: Mutex::new(HashMap::new()),
            warm: tokio::sync::OnceCell::new(),
        }
    }
}

type Reply = Json<Value>;

fn err(code: i64, msg: &str) -> Reply {
    Json(json!({ "errcode": code, "errmsg": msg }))
}

#[derive(Deserialize)]
struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    force_refresh: bool,
}

pub(crate) async fn stable_token(
    State(st): State<SimulatorState>,
    method: Method,
    body: Bytes,
) -> Reply {
    st.faults.latency().await;
    if method != Method::POST {
        return err(43002, "require POST method");
    }
    let Ok(req) = serde_json::from_slice::<TokenRequest>(&body) else {
        return err(47001, "data format error");
    };
    if req.grant_type != "client_credential" {
        return err(40002, "invalid grant_type");
    }
    if req.appid != st.config.wechat_app_id {
        return err(40013, "invalid appid");
    }
    if req.secret != st.config.wechat_app_secret {
        return err(40125, "invalid appsecret");
    }
    let now = Instant::now();
    let ttl = st.config.wechat_token_ttl;
    let mut t = st.wechat.tokens.lock().expect("token lock");
    if req.force_refresh {
        if let Some(old) = t.current.take() {
            t.expiry.remove(&old);
        }
    }
    let reusable = t.current.as_ref().and_then(|c| {
        let exp = *t.expiry.get(c)?;
        (exp.saturating_duration_since(now) > RENEW_BEFORE).then(|| (c.clone(), exp))
    });
    let (token, exp) = match reusable {
        Some(r) => r,
        None => {
            let token = format!(
                "SIM_{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            );
            // Forget tokens expired for more than a day.
            t.expiry
                .retain(|_, e| now.saturating_duration_since(*e) < Duration::from_secs(86_400));
            t.expiry.insert(token.clone(), now + ttl);
            t.current = Some(token.clone());
            (token, now + ttl)
        }
    };
    Json(json!({
        "access_token": token,
        "expires_in": exp.saturating_duration_since(now).as_secs(),
    }))
}

fn check_token(st: &SimulatorState, token: Option<&String>) -> Result<(), Reply> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(err(41001, "access_token missing"));
    };
    let t = st.wechat.tokens.lock().expect("token lock");
    match t.expiry.get(token) {
        None => Err(err(
            40001,
            "invalid credential, access_token is invalid or not latest",
        )),
        Some(exp) if *exp <= Instant::now() => Err(err(42001, "access_token expired")),
        Some(_) => Ok(()),
    }
}

/// `data` with the keywords in request order.
#[derive(Default)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct SendRequest {
    #[serde(default)]
    touser: String,
    #[serde(default)]
    template_id: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default)]
    data: Ordered,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Template,
    Subscribe,
}

pub(crate) async fn template_send(
    State(st): State<SimulatorState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    send(&st, Api::Template, q.get("access_token"), &body).await
}

pub(crate) async fn bizsend(
    State(st): State<SimulatorState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Reply {
    send(&st, Api::Subscribe, q.get("access_token"), &body).await
}

fn openid_ok(s: &str) -> bool {
    (6..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn send(st: &SimulatorState, api: Api, token: Option<&String>, body: &[u8]) -> Reply {
    if let Err(r) = check_token(st, token) {
        return r;
    }
    let Ok(req) = serde_json::from_slice::<SendRequest>(body) else {
        return err(47001, "data format error");
    };
    if !openid_ok(&req.touser) {
        return err(40003, "invalid openid");
    }
    if !st.config.wechat_template_allowed(&req.template_id) {
        return err(40037, "invalid template_id");
    }
    let link = match api {
        Api::Template => req.url.clone().unwrap_or_default(),
        Api::Subscribe => req.page.clone().unwrap_or_default(),
    };
    if link.len() > 1024 {
        return err(40039, "invalid url size");
    }
    let mut values = Vec::with_capacity(req.data.0.len());
    for (key, v) in &req.data.0 {
        match v.get("value").and_then(Value::as_str) {
            Some(val) if wechat_values::valid(key, val) => values.push((key, val.to_string())),
            _ => {
                return err(
                    47003,
                    &format!("argument invalid! data.{key}.value invalid"),
                )
            }
        }
    }
    if values.is_empty() {
        return err(47003, "argument invalid! data is empty");
    }
    // A registered template is delivered as its text with each `{{key.DATA}}` filled.
    let registered = st.config.template(Provider::Wechat, &req.template_id);
    let text = match registered.filter(|t| !t.catch_all) {
        Some(t) => {
            let mut text = t.text.clone();
            for key in placeholders(Provider::Wechat, &t.text) {
                let Some((_, val)) = values.iter().find(|(k, _)| **k == key) else {
                    return err(47003, &format!("argument invalid! data.{key} is missing"));
                };
                text = text.replace(&format!("{{{{{key}.DATA}}}}"), val);
            }
            text
        }
        None => values
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    };
    if st.config.unsubscribed(&req.touser) {
        return match api {
            Api::Template => err(43004, "require subscribe"),
            Api::Subscribe => err(43101, "user refuse to accept the msg"),
        };
    }
    let cmid = match api {
        Api::Template => req.client_msg_id.clone().filter(|c| !c.is_empty()),
        Api::Subscribe => None,
    };
    // client_msg_id: answer the first msgid within 10 minutes, record nothing.
    let msgid = st.ids.next();
    if let Some(c) = &cmid {
        st.wechat.warm.get_or_init(|| warm_dedup(st)).await;
        let key = (req.touser.clone(), c.clone());
        // Claim before recording so a concurrent duplicate gets this msgid.
        let mut map = st.wechat.dedup.lock().expect("dedup lock");
        if let Some((first, at)) = map.get(&key) {
            if at.elapsed() < DEDUP_WINDOW {
                return ok(*first);
            }
        }
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < DEDUP_WINDOW);
        }
        map.insert(key, (msgid, Instant::now()));
    }
    if st.faults.before_send().await.is_some() {
        unclaim(st, &req.touser, cmid.as_deref(), msgid);
        return err(-1, "system error");
    }
    let mut content = text;
    if !link.is_empty() {
        content.push('\n');
        content.push_str(&link);
    }
    let recorded = st
        .record(vec![NewMessage {
            channel: "wechat",
            to: req.touser.clone(),
            content,
            provider_id: msgid.to_string(),
            push_ref: cmid.clone().unwrap_or_default(),
            out_id: String::new(),
            template: req.template_id.clone(),
        }])
        .await;
    if recorded.is_err() {
        unclaim(st, &req.touser, cmid.as_deref(), msgid);
        return err(-1, "system error");
    }
    if st.receipts.wants_wechat() {
        st.receipts
            .wechat(event_xml(st, api, &req.touser, &req.template_id, msgid));
    }
    ok(msgid)
}

fn ok(msgid: u64) -> Reply {
    Json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid }))
}

/// Loads the last 10 minutes of template messages from the sandbox log into the
/// de-duplication map, once per process: a `client_msg_id` sent before a restart is still
/// recognised after it.
async fn warm_dedup(st: &SimulatorState) {
    let now_utc = chrono::Utc::now();
    let since = now_utc - chrono::Duration::from_std(DEDUP_WINDOW).unwrap_or_default();
    let recent = match st.sandbox.recent("wechat", since).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read recent WeChat messages for de-duplication");
            return;
        }
    };
    let now = Instant::now();
    let mut map = st.wechat.dedup.lock().expect("dedup lock");
    for (to, cmid, msgid, at) in recent {
        let Ok(msgid) = msgid.parse::<u64>() else {
            continue;
        };
        let age = (now_utc - at).to_std().unwrap_or_default();
        let seen_at = now.checked_sub(age).unwrap_or(now);
        map.entry((to, cmid)).or_insert((msgid, seen_at));
    }
}

fn unclaim(st: &SimulatorState, to: &str, cmid: Option<&str>, msgid: u64) {
    if let Some(c) = cmid {
        let mut map = st.wechat.dedup.lock().expect("dedup lock");
        let key = (to.to_string(), c.to_string());
        if map.get(&key).is_some_and(|(id, _)| *id == msgid) {
            map.remove(&key);
        }
    }
}

fn event_xml(st: &SimulatorState, api: Api, openid: &str, template_id: &str, msgid: u64) -> String {
    let failed = st.config.fails(openid);
    let now = chrono::Utc::now().timestamp();
    let head = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now}</CreateTime><MsgType>{}</MsgType>",
        cdata("gh_simulator0001"),
        cdata(openid),
        cdata("event")
    );
    match api {
        Api::Template => format!(
            "{head}<Event>{}</Event><MsgID>{msgid}</MsgID><Status>{}</Status></xml>",
            cdata("TEMPLATESENDJOBFINISH"),
            cdata(if failed { "failed:user block" } else { "success" })
        ),
        Api::Subscribe => format!(
            "{head}<Event>{}</Event><SubscribeMsgSentEvent><List><TemplateId>{}</TemplateId><MsgID>{msgid}</MsgID><ErrorCode>{}</ErrorCode><ErrorStatus>{}</ErrorStatus></List></SubscribeMsgSentEvent></xml>",
            cdata("subscribe_msg_sent_event"),
            cdata(template_id),
            if failed { "20001" } else { "0" },
            cdata(if failed { "failed:user block" } else { "success" })
        ),
    }
}
