//! WeChat official account: stable access token cache and template / subscription sends.
//!
//! **Token.** `POST {base}cgi-bin/stable_token` (normal mode) gives a token shared by every
//! caller of the account; it is cached here until 5 minutes before its expiry. Refreshes
//! are serialized by a `tokio::sync::Mutex`, so concurrent sends wait for one fetch instead
//! of each fetching. A send answered 40001 / 40014 / 42001 drops the token, fetches a new
//! one (normal mode; if WeChat hands back the very token it just refused, force mode) and
//! retries once.
//!
//! **Send.** Template message (`cgi-bin/message/template/send`, default) with `touser`,
//! `template_id`, `url` = link, `client_msg_id` = push id and `data`: a push bound to a
//! registered template ([`crate::bound`]) sends its `template_id` and its variables as the
//! keywords; free text goes to the configured `template_id` with `data` built from the
//! content by [`crate::wechat_fields`]. Keyword limits are checked first (a bad value is
//! `Permanent { code: "field_too_long" | "field_invalid" }`, never sent). Or subscription
//! notification (`cgi-bin/message/subscribe/bizsend`, `page` = link; it has no
//! `client_msg_id`).
//!
//! **Lookup.** WeChat has no query API: [`Provider::lookup`] answers `Unknown`. Resending
//! a template message with the same `client_msg_id` within 10 minutes is de-duplicated by
//! WeChat (same openid + client_msg_id → the first `msgid`, nothing sent again), so the
//! pipeline may resend after a crash with the same push id.

use crate::config::{with_slash, WechatApi, WechatConfig};
use crate::{classify, http, wechat_fields, Lookup, OutgoingMessage, Provider, SendOutcome};
use domain::ids::mask_any;
use domain::provider_template::Provider as Registered;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Refresh this long before the token's announced expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// The WeChat official-account connector.
pub struct WechatOfficial {
    cfg: WechatConfig,
    base: String,
    client: reqwest::Client,
    /// The cached token. Held across the fetch so only one refresh runs at a time.
    token: Mutex<Option<CachedToken>>,
    /// Where replicas share the token (Redis in production), so one refresher serves every
    /// connector process and a refresh never invalidates another replica's token.
    shared: Option<std::sync::Arc<dyn limits::SharedCache>>,
}

#[derive(Clone)]
struct CachedToken {
    value: String,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// The body of a template or subscription send.
#[derive(Serialize)]
struct SendBody<'a> {
    touser: &'a str,
    template_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_msg_id: Option<&'a str>,
    data: DataFields<'a>,
}

/// `{"thing1": {"value": "…"}, …}` in the content's keyword order (a `serde_json::Map`
/// would sort the keys).
struct DataFields<'a>(&'a [(String, String)]);

impl Serialize for DataFields<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &serde_json::json!({ "value": v }))?;
        }
        map.end()
    }
}

#[derive(Deserialize)]
struct SendReply {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(default)]
    msgid: Option<serde_json::Value>,
}

impl WechatOfficial {
    pub fn new(cfg: WechatConfig, client: reqwest::Client) -> Self {
        Self {
            base: with_slash(&cfg.base_url),
            cfg,
            client,
            token: Mutex::new(None),
            shared: None,
        }
    }

    /// Shares the token through `cache` with every other process using it.
    pub fn with_shared_token(mut self, cache: std::sync::Arc<dyn limits::SharedCache>) -> Self {
        self.shared = Some(cache);
        self
    }

    fn shared_key(&self) -> String {
        format!("wechat:access-token:{}", self.cfg.app_id)
    }

    /// [`Self::access_token`] through the shared cache: one refresh at a time across every
    /// process; an unreachable cache makes the send wait and retry (transient).
    async fn shared_token(
        &self,
        cache: &dyn limits::SharedCache,
        refused: Option<&str>,
    ) -> Result<String, SendOutcome> {
        let key = self.shared_key();
        let unavailable =
            |e: limits::LimitsError| SendOutcome::transient("token_cache", e.to_string());
        if let Some(refused) = refused {
            if let Some(v) = cache.get(&key).await.map_err(unavailable)? {
                if v.expose() == refused {
                    cache.delete(&key).await.map_err(unavailable)?;
                }
            }
        }
        // The refresh's own failure (a configuration error, WeChat busy) is kept as is.
        let failure: std::sync::Mutex<Option<SendOutcome>> = std::sync::Mutex::new(None);
        let got = limits::cache::get_or_refresh(cache, &key, Default::default(), || async {
            let mut fresh = self.fetch_token(false).await;
            if let (Ok(t), Some(r)) = (&fresh, refused) {
                if t.value == r {
                    fresh = self.fetch_token(true).await;
                }
            }
            match fresh {
                Ok(t) => {
                    let ttl = t.refresh_at.saturating_duration_since(Instant::now());
                    Ok((
                        limits::CachedValue::new(t.value),
                        ttl.max(Duration::from_secs(1)),
                    ))
                }
                Err(outcome) => {
                    *failure.lock().expect("token failure lock") = Some(outcome);
                    Err("stable_token refused")
                }
            }
        })
        .await;
        match got {
            Ok(v) => Ok(v.expose().to_string()),
            Err(e) => Err(failure
                .lock()
                .expect("token failure lock")
                .take()
                .unwrap_or_else(|| unavailable(e))),
        }
    }

    /// A valid access token: the cached one, or a fresh one. `refused` is a token WeChat
    /// just refused: it is dropped, and if normal mode returns it again, force mode is used.
    pub async fn access_token(&self, refused: Option<&str>) -> Result<String, SendOutcome> {
        if let Some(cache) = &self.shared {
            return self.shared_token(cache.as_ref(), refused).await;
        }
        let mut guard = self.token.lock().await;
        if let Some(t) = guard.as_ref() {
            let is_refused = refused == Some(t.value.as_str());
            if !is_refused && Instant::now() < t.refresh_at {
                return Ok(t.value.clone());
            }
        }
        *guard = None;
        let mut fresh = self.fetch_token(false).await?;
        if refused == Some(fresh.value.as_str()) {
            fresh = self.fetch_token(true).await?;
        }
        *guard = Some(fresh.clone());
        Ok(fresh.value)
    }

    async fn fetch_token(&self, force_refresh: bool) -> Result<CachedToken, SendOutcome> {
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.cfg.app_id,
            "secret": self.cfg.app_secret.expose(),
            "force_refresh": force_refresh,
        });
        let resp = self
            .client
            .post(format!("{}cgi-bin/stable_token", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| http::transport_outcome(&e))?;
        let status = resp.status().as_u16();
        let reply: TokenReply = match resp.json().await {
            Ok(r) => r,
            Err(_) => return Err(classify::http_status(status)),
        };
        if reply.errcode != 0 || reply.access_token.is_empty() {
            tracing::warn!(errcode = reply.errcode, errmsg = %reply.errmsg, "wechat stable_token refused");
            // A refused token request is a configuration problem unless WeChat is busy or
            // over quota.
            let outcome = match reply.errcode {
                -1 | 45009 | 45011 => classify::wechat(reply.errcode, &reply.errmsg),
                _ => SendOutcome::permanent(
                    format!("token_{}", reply.errcode),
                    format!("stable_token: {}", reply.errmsg),
                ),
            };
            return Err(outcome);
        }
        let lifetime = Duration::from_secs(reply.expires_in);
        Ok(CachedToken {
            value: reply.access_token,
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        })
    }

    fn body<'a>(
        &'a self,
        msg: &'a OutgoingMessage,
        template_id: &'a str,
        data: &'a [(String, String)],
    ) -> SendBody<'a> {
        let data = DataFields(data);
        match self.cfg.api {
            WechatApi::Template => SendBody {
                touser: &msg.to,
                template_id,
                url: Some(&msg.link),
                page: None,
                client_msg_id: Some(&msg.push_id),
                data,
            },
            WechatApi::Subscribe => SendBody {
                touser: &msg.to,
                template_id,
                url: None,
                page: Some(&msg.link),
                client_msg_id: None,
                data,
            },
        }
    }

    fn send_path(&self) -> &'static str {
        match self.cfg.api {
            WechatApi::Template => "cgi-bin/message/template/send",
            WechatApi::Subscribe => "cgi-bin/message/subscribe/bizsend",
        }
    }

    /// One POST; `Ok(reply)` if WeChat answered with JSON.
    async fn post_once(&self, token: &str, body: &SendBody<'_>) -> Result<SendReply, SendOutcome> {
        let resp = self
            .client
            .post(format!("{}{}", self.base, self.send_path()))
            .query(&[("access_token", token)])
            .json(body)
            .send()
            .await
            .map_err(|e| http::transport_outcome(&e))?;
        let status = resp.status().as_u16();
        resp.json::<SendReply>()
            .await
            .map_err(|_| classify::http_status(status))
    }

    async fn send_one(&self, msg: &OutgoingMessage) -> SendOutcome {
        let outcome = self.send_inner(msg).await;
        tracing::debug!(
            push_id = %msg.push_id,
            to = %mask_any(&msg.to),
            outcome = ?outcome.code(),
            "wechat send"
        );
        outcome
    }

    async fn send_inner(&self, msg: &OutgoingMessage) -> SendOutcome {
        let (template_id, data) = match crate::bound(msg, Registered::Wechat) {
            Ok(Some(b)) => (b.template, b.params),
            Ok(None) => match wechat_fields::build_data(&msg.content) {
                Ok(d) => (self.cfg.template_id.clone(), d),
                Err(e) => return SendOutcome::permanent(e.code, e.to_string()),
            },
            Err(o) => return o,
        };
        if let Some(e) = data
            .iter()
            .find_map(|(k, v)| wechat_fields::check(k, v).err())
        {
            return SendOutcome::permanent(e.code, e.to_string());
        }
        let body = self.body(msg, &template_id, &data);
        let mut refused: Option<String> = None;
        for _attempt in 0..2 {
            let token = match self.access_token(refused.as_deref()).await {
                Ok(t) => t,
                Err(o) => return o,
            };
            let reply = match self.post_once(&token, &body).await {
                Ok(r) => r,
                Err(o) => return o,
            };
            if reply.errcode == 0 {
                let provider_id = match reply.msgid {
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    Some(serde_json::Value::String(s)) => s,
                    _ => String::new(),
                };
                return SendOutcome::Accepted { provider_id };
            }
            if classify::wechat_token_invalid(reply.errcode) && refused.is_none() {
                refused = Some(token);
                continue;
            }
            return classify::wechat(reply.errcode, &reply.errmsg);
        }
        unreachable!("the loop returns on its second attempt")
    }
}

#[async_trait::async_trait]
impl Provider for WechatOfficial {
    fn channel(&self) -> domain::Channel {
        domain::Channel::Wechat
    }

    fn max_batch(&self) -> usize {
        self.cfg.concurrency.max(1)
    }

    async fn send(&self, batch: &[OutgoingMessage]) -> Vec<SendOutcome> {
        // Futures built first (not in a stream closure) so the async-trait future is Send.
        let calls: Vec<_> = batch.iter().map(|m| self.send_one(m)).collect();
        stream::iter(calls)
            .buffered(self.max_batch())
            .collect()
            .await
    }

    /// WeChat has no query API; resending with the same `client_msg_id` is safe within
    /// 10 minutes (see the module docs).
    async fn lookup(&self, _msg: &OutgoingMessage, _sent_on: chrono::NaiveDate) -> Lookup {
        Lookup::Unknown
    }
}
