//! [`SimulatorState`]: configuration, sandbox log, attribution and the simulators' mutable
//! state (tokens, nonces, counters), shared by every handler.

use crate::config::SimulatorConfig;
use crate::faults::Faults;
use crate::ids::IdGen;
use crate::limits::{NonceMemory, Windows};
use crate::receipts::Dispatcher;
use crate::sandbox::{MessageAttribution, NewMessage, SandboxError, SandboxLog, SandboxMessage};
use crate::wechat::WechatState;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Everything the simulators share. Cheap to clone.
#[derive(Clone)]
pub struct SimulatorState {
    inner: Arc<Inner>,
}

/// The shared state behind [`SimulatorState`] (fields crate-private).
pub struct Inner {
    pub(crate) config: SimulatorConfig,
    pub(crate) sandbox: SandboxLog,
    pub(crate) attribution: Arc<dyn MessageAttribution>,
    pub(crate) faults: Arc<Faults>,
    pub(crate) receipts: Dispatcher,
    pub(crate) ids: IdGen,
    /// Alibaba `SignatureNonce`s seen (replay refusal).
    pub(crate) nonces: Mutex<NonceMemory>,
    /// SMS sends per number + sign + template (rolling 24 h).
    pub(crate) sms_limits: Mutex<Windows>,
    /// Calls per callee (1/min, 5/h, 20/24 h).
    pub(crate) voice_limits: Mutex<Windows>,
    /// End times of calls in progress (concurrency limit).
    pub(crate) voice_calls: Mutex<VecDeque<Instant>>,
    pub(crate) wechat: WechatState,
    /// Tencent SMS statuses not pulled yet (`PullSmsSendStatus`), oldest first, each with
    /// the time its receipt exists.
    pub(crate) tencent_pull: Mutex<VecDeque<(chrono::DateTime<chrono::Utc>, serde_json::Value)>>,
}

impl std::ops::Deref for SimulatorState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl std::fmt::Debug for SimulatorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorState").finish_non_exhaustive()
    }
}

impl SimulatorState {
    /// Must be called inside a Tokio runtime: starts the receipt delivery tasks.
    pub fn new(
        config: SimulatorConfig,
        sandbox: SandboxLog,
        attribution: Arc<dyn MessageAttribution>,
    ) -> Self {
        let faults = Arc::new(Faults::new(config.fault.clone()));
        let receipts = Dispatcher::new(&config, faults.clone());
        let nonces = Mutex::new(NonceMemory::new(config.nonce_ttl, config.nonce_capacity));
        Self {
            inner: Arc::new(Inner {
                wechat: WechatState::new(),
                sandbox,
                attribution,
                faults,
                receipts,
                ids: IdGen::new(),
                nonces,
                sms_limits: Mutex::new(Windows::default()),
                voice_limits: Mutex::new(Windows::default()),
                voice_calls: Mutex::new(VecDeque::new()),
                tencent_pull: Mutex::new(VecDeque::new()),
                config,
            }),
        }
    }

    pub fn config(&self) -> &SimulatorConfig {
        &self.inner.config
    }

    pub fn sandbox(&self) -> &SandboxLog {
        &self.inner.sandbox
    }

    /// Records accepted messages (committed before returning), attributed.
    pub(crate) async fn record(
        &self,
        msgs: Vec<NewMessage>,
    ) -> Result<Vec<SandboxMessage>, SandboxError> {
        self.inner
            .sandbox
            .record(msgs, self.inner.attribution.as_ref())
            .await
    }
}
