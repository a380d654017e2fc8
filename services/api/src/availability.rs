//! The API while its store is gone: requests fail fast with 503 `store_unavailable`
//! instead of hanging for the pool's acquire timeout.
//!
//! A [`StoreWatch`] asks the store a trivial question every [`EVERY`] with a
//! [`PING_TIMEOUT`]. An error marks the store down at once; a ping that times out does so
//! after [`TIMEOUTS_BEFORE_DOWN`] in a row (a busy pool is slow, not gone); one answer
//! marks it up again. While it is down, [`fail_fast`] answers every request except
//! `/healthz`, `/readyz` and `/metrics` with 503 at once, and a request already running
//! when the store goes down is answered the same way at that moment (the handler is
//! dropped: an open transaction rolls back). The state is exported as
//! `policy_push_backend_up{backend="store"}`.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the store is asked.
pub const EVERY: Duration = Duration::from_millis(250);
/// How long one question may take.
pub const PING_TIMEOUT: Duration = Duration::from_millis(750);
/// Timed-out questions in a row that mark the store down.
pub const TIMEOUTS_BEFORE_DOWN: u32 = 2;

/// Whether the store answers, as last seen.
pub struct StoreWatch {
    down: watch::Sender<bool>,
}

impl StoreWatch {
    /// Starts watching `store` (a task that ends when the watch is dropped).
    pub fn start(store: Arc<dyn store::Store>) -> Arc<Self> {
        let (down, _) = watch::channel(false);
        let w = Arc::new(Self { down });
        tokio::spawn(watch_store(store, Arc::downgrade(&w)));
        w
    }

    /// A watch that never changes (tests that need no store watch).
    pub fn always_up() -> Arc<Self> {
        Arc::new(Self {
            down: watch::channel(false).0,
        })
    }

    pub fn is_down(&self) -> bool {
        *self.down.borrow()
    }

    /// Marks the store down or up (what the pinger saw).
    pub fn set_down(&self, down: bool) {
        self.down
            .send_if_modified(|d| std::mem::replace(d, down) != down);
        telemetry::metrics()
            .backend_up
            .with_label_values(&["store"])
            .set(i64::from(!down));
    }

    /// Returns once the store is seen down.
    pub async fn went_down(&self) {
        let mut rx = self.down.subscribe();
        let _ = rx.wait_for(|down| *down).await;
    }
}

async fn watch_store(store: Arc<dyn store::Store>, watch: Weak<StoreWatch>) {
    let mut timeouts = 0u32;
    loop {
        let answer = tokio::time::timeout(PING_TIMEOUT, store.ping()).await;
        let Some(w) = watch.upgrade() else { return };
        match answer {
            Ok(Ok(_)) => {
                timeouts = 0;
                if w.is_down() {
                    tracing::info!("the store answers again");
                }
                w.set_down(false);
            }
            Ok(Err(e)) => {
                if !w.is_down() {
                    tracing::error!(error = %e, "the store does not answer; API requests get 503 until it does");
                }
                w.set_down(true);
            }
            Err(_) => {
                timeouts += 1;
                if timeouts >= TIMEOUTS_BEFORE_DOWN {
                    if !w.is_down() {
                        tracing::error!(
                            "the store does not answer in time; API requests get 503 until it does"
                        );
                    }
                    w.set_down(true);
                }
            }
        }
        drop(w);
        tokio::time::sleep(EVERY).await;
    }
}

/// Routes that answer whatever the store does.
fn exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// The middleware: 503 at once while the store is down (see the module docs).
pub async fn fail_fast(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let watch = s.store_watch.clone();
    if watch.is_down() {
        return ApiError::store_unavailable().into_response();
    }
    tokio::select! {
        r = next.run(req) => r,
        _ = watch.went_down() => ApiError::store_unavailable().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waiting_when_the_store_goes_down_is_answered_then() {
        let w = StoreWatch::always_up();
        let waiting = {
            let w = w.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = std::future::pending::<()>() => "handler",
                    _ = w.went_down() => "503",
                }
            })
        };
        tokio::task::yield_now().await;
        assert!(!w.is_down());
        w.set_down(true);
        assert_eq!(waiting.await.unwrap(), "503");
        assert!(w.is_down());
        w.set_down(false);
        assert!(!w.is_down());
    }

    #[test]
    fn health_and_metrics_are_exempt() {
        assert!(exempt("/readyz") && exempt("/healthz") && exempt("/metrics"));
        assert!(!exempt("/api/v1/campaigns"));
    }
}
