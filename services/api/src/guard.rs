//! What stands between a stranger and the handlers: a caught panic becomes a 500 JSON
//! error (logged without its message, which may quote personal data); request rates per
//! source address ([`RateLimit`], 429) on the routes anyone can reach; and the limits'
//! refusals (413, 429) answer in the API's JSON error shape.
//!
//! The rate limiter is a token bucket per source address (IPv6 by /64) in a bounded
//! table, rather than `governor`'s keyed limiter, whose table grows with every new
//! address between sweeps: a stranger with many addresses must not grow our memory.

use crate::error::ApiError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;

/// Requests per second and burst of one kind of unauthenticated request, per address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

/// The request rates strangers get.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// Recipient pages (`/l/...`): people behind one carrier NAT share an address.
    pub public_pages: Rate,
    /// Console sign-in attempts.
    pub sign_in: Rate,
    /// Provider callbacks refused for a missing or wrong secret.
    pub failed_callbacks: Rate,
    /// JSON API requests with a bearer token that is not an enabled operator's.
    pub failed_bearer: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            public_pages: Rate {
                per_second: 20.0,
                burst: 60,
            },
            sign_in: Rate {
                per_second: 0.2,
                burst: 10,
            },
            failed_callbacks: Rate {
                per_second: 1.0,
                burst: 20,
            },
            failed_bearer: Rate {
                per_second: 0.5,
                burst: 20,
            },
        }
    }
}

/// A token bucket per source address. At most [`RateLimit::MAX_ADDRESSES`] addresses are
/// tracked: when the table is full, buckets that have refilled are forgotten; if none
/// has, a new address is refused until some do.
pub struct RateLimit {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimit {
    pub const MAX_ADDRESSES: usize = 100_000;

    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `peer` (unknown peers share one bucket); false when
    /// the address has none left.
    pub fn check(&self, peer: Option<IpAddr>) -> bool {
        self.check_at(peer, Instant::now())
    }

    /// Whether `peer` has a token left, without taking it.
    pub fn has_token(&self, peer: Option<IpAddr>) -> bool {
        self.has_token_at(peer, Instant::now())
    }

    fn has_token_at(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let burst = f64::from(self.rate.burst.max(1));
        let table = self.buckets.lock().expect("rate limit lock");
        match table.get(&bucket_key(peer)) {
            None => true,
            Some((tokens, at)) => {
                let refilled = tokens
                    + now.saturating_duration_since(*at).as_secs_f64() * self.rate.per_second;
                refilled.min(burst) >= 1.0
            }
        }
    }

    fn check_at(&self, peer: Option<IpAddr>, now: Instant) -> bool {
        let key = bucket_key(peer);
        let burst = f64::from(self.rate.burst.max(1));
        let refill = |(tokens, at): (f64, Instant)| {
            (tokens + now.saturating_duration_since(at).as_secs_f64() * self.rate.per_second)
                .min(burst)
        };
        let mut table = self.buckets.lock().expect("rate limit lock");
        if !table.contains_key(&key) && table.len() >= Self::MAX_ADDRESSES {
            table.retain(|_, b| refill(*b) < burst);
            if table.len() >= Self::MAX_ADDRESSES {
                return false;
            }
        }
        let bucket = table.entry(key).or_insert((burst, now));
        let tokens = refill(*bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }
}

/// IPv4 addresses alone; IPv6 by /64 (one subscriber's prefix); IPv4-mapped IPv6 as
/// IPv4; unknown peers as one.
fn bucket_key(peer: Option<IpAddr>) -> IpAddr {
    match peer {
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        Some(IpAddr::V4(v4)) => IpAddr::V4(v4),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The rate limiters and the public concurrency bound of one API process.
pub struct Guard {
    pub public_pages: RateLimit,
    pub sign_in: RateLimit,
    pub failed_callbacks: RateLimit,
    pub failed_bearer: RateLimit,
    pub public_in_flight: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Guard {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            public_pages: RateLimit::new(limits.public_pages),
            sign_in: RateLimit::new(limits.sign_in),
            failed_callbacks: RateLimit::new(limits.failed_callbacks),
            failed_bearer: RateLimit::new(limits.failed_bearer),
            public_in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(PUBLIC_IN_FLIGHT)),
        }
    }
}

/// `429 {"error":{"code":"rate_limited",...}}` with `Retry-After`.
pub fn too_many_requests() -> Response {
    ApiError::rate_limited().into_response()
}

/// The TCP peer's address, when the server records it (`into_make_service_with_connect_info`).
pub fn peer_ip(req: &axum::extract::Request) -> Option<IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Requests on the routes strangers reach that run at once; more are answered 503.
pub const PUBLIC_IN_FLIGHT: usize = 512;

/// Middleware: at most [`PUBLIC_IN_FLIGHT`] public requests at once.
pub async fn limit_concurrency(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Ok(_permit) = s.guard.public_in_flight.clone().try_acquire_owned() else {
        let mut r = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many requests in flight; try again shortly",
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return r;
    };
    next.run(req).await
}

/// Middleware: the sign-in attempts' rate per source address (`POST` only).
pub async fn limit_sign_in(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() == axum::http::Method::POST && !s.guard.sign_in.check(peer_ip(&req)) {
        tracing::warn!("sign-in attempts throttled for one address");
        return too_many_requests();
    }
    next.run(req).await
}

/// Middleware: the recipient pages' rate per source address.
pub async fn limit_public_pages(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if !s.guard.public_pages.check(crate::routes::peer_ip(&req)) {
        return too_many_requests();
    }
    next.run(req).await
}

/// Turns a panicking handler into `500 {"error":{"code":"internal",...}}`; the connection
/// stays up and the panic's message is not logged (it may quote the request).
pub fn catch_panic() -> CatchPanicLayer<fn(Box<dyn Any + Send + 'static>) -> Response> {
    CatchPanicLayer::custom(panic_response as fn(Box<dyn Any + Send + 'static>) -> Response)
}

fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500 (message withheld)");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error; see the server log",
    )
    .into_response()
}

/// Replaces the process's panic hook by one that logs where a panic happened but not its
/// message: messages of slicing and parsing panics quote the text they were given, which
/// may be an ID number or a phone number.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        if tracing::dispatcher::has_been_set() {
            tracing::error!(
                %location,
                thread,
                "panic (message withheld: it may carry personal data)"
            );
        } else {
            eprintln!("panic at {location} in thread {thread} (message withheld: it may carry personal data)");
        }
    }));
}

/// Gives a 413 from a body limit the API's JSON error shape (the limits themselves answer
/// in plain text).
pub async fn json_refusals(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is larger than this route accepts",
        )
        .into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn boom() -> &'static str {
        let id = String::from("1101051949123100é");
        // The byte slicing of issue 10, kept here to prove the layer holds.
        let _ = &id[..17];
        "unreachable"
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json() {
        let app = axum::Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "ok" }))
            .layer(catch_panic());
        let res = app
            .clone()
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "internal");
        assert!(!String::from_utf8_lossy(&body).contains("1101051949"));
        let res = app
            .oneshot(
                axum::http::Request::get("/ok")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_per_address() {
        let limit = RateLimit::new(Rate {
            per_second: 0.0,
            burst: 3,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        let got: Vec<bool> = (0..5).map(|_| limit.check_at(Some(a), now)).collect();
        assert_eq!(got, [true, true, true, false, false]);
        assert!(
            limit.check_at(Some(b), now),
            "another address has its own bucket"
        );
        // One IPv6 subscriber (/64) is one address, whatever its interface id.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for _ in 0..3 {
            assert!(limit.check_at(v6("2001:db8:1:2::1"), now));
        }
        assert!(!limit.check_at(v6("2001:db8:1:2:ffff::9"), now));
        assert!(limit.check_at(v6("2001:db8:1:3::1"), now));
    }

    #[test]
    fn peeking_takes_no_token() {
        let limit = RateLimit::new(Rate {
            per_second: 0.0,
            burst: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..5 {
            assert!(limit.has_token_at(Some(a), now));
        }
        assert!(limit.check_at(Some(a), now));
        assert!(limit.check_at(Some(a), now));
        assert!(!limit.has_token_at(Some(a), now), "spent");
        assert!(limit.has_token_at("192.0.2.2".parse().ok(), now));
    }

    #[test]
    fn a_bucket_refills_with_time() {
        let limit = RateLimit::new(Rate {
            per_second: 2.0,
            burst: 2,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(limit.check_at(Some(a), t0));
        assert!(limit.check_at(Some(a), t0));
        assert!(!limit.check_at(Some(a), t0));
        let later = t0 + std::time::Duration::from_millis(600);
        assert!(limit.check_at(Some(a), later), "one token back after 0.5 s");
        assert!(!limit.check_at(Some(a), later));
    }

    #[tokio::test]
    async fn a_plain_413_becomes_json() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        let res = json_refusals(plain).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "payload_too_large");
        let other = json_refusals((StatusCode::NOT_FOUND, "x").into_response()).await;
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
    }
}
