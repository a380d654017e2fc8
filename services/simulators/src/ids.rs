//! Provider ids (`BizId`, `msgid`, `CallId`, `SerialNo`, `RequestId`): unique across
//! restarts (a counter started from the clock in microseconds).

use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct IdGen(AtomicU64);

impl IdGen {
    pub fn new() -> Self {
        let micros = chrono::Utc::now().timestamp_micros().max(0) as u64;
        Self(AtomicU64::new(micros))
    }

    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    /// Alibaba SMS `BizId`, e.g. `1717000000123456^0`.
    pub fn biz_id(&self) -> String {
        format!("{}^0", self.next())
    }

    /// Alibaba voice `CallId`, e.g. `1717000000123456^103000`.
    pub fn call_id(&self) -> String {
        let n = self.next();
        format!("{n}^{}", n % 1_000_000)
    }

    /// Tencent `SerialNo`, e.g. `2019:1717000000123456`.
    pub fn serial_no(&self) -> String {
        format!("2019:{}", self.next())
    }
}

/// A request id in the providers' style (upper-case UUID).
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}
