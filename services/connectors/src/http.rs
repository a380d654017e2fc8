//! The HTTP client shared by every connector (one connection pool, bounded timeouts) and
//! the mapping of transport failures to [`SendOutcome::Transient`].

use crate::config::HttpConfig;
use crate::SendOutcome;
use std::time::Duration;

/// A pooled client: connect timeout, whole-request timeout, keep-alive.
pub(crate) fn client(cfg: &HttpConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(cfg.connect_timeout_ms))
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest client with rustls builds")
}

/// A request that got no HTTP answer. The provider may still have taken the message
/// (timeout after it was received): the pipeline's retry of a transient outcome should
/// reuse the same push id, which the providers de-duplicate or can be asked about.
pub(crate) fn transport_outcome(err: &reqwest::Error) -> SendOutcome {
    let code = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect_error"
    } else {
        "transport_error"
    };
    // reqwest errors include the URL, which has no personal data (parameters are in the
    // body or, for WeChat, only the access token, which we strip).
    SendOutcome::transient(code, strip_query(&err.to_string()))
}

/// Drops `?…` from URLs in a message so access tokens never reach logs or outcomes.
pub(crate) fn strip_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut skipping = false;
    for c in s.chars() {
        if c == '?' {
            skipping = true;
            out.push_str("?…");
            continue;
        }
        if skipping && (c == ')' || c.is_whitespace()) {
            skipping = false;
        }
        if !skipping {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn strip_query_hides_tokens() {
        assert_eq!(
            super::strip_query("error sending request for url (http://h/x?access_token=abc) boom"),
            "error sending request for url (http://h/x?…) boom"
        );
    }
}
