//! Fault injection: latency, system errors, hangs, lost and duplicated receipts, drawn from
//! one seeded RNG so a run is reproducible for a given request order.

use crate::config::FaultConfig;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Duration;

/// What to do with one send request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Answer the provider's system error.
    Error,
    /// Hang (the caller's timeout fires), then answer a system error.
    Timeout,
}

pub(crate) struct Faults {
    cfg: FaultConfig,
    rng: Mutex<StdRng>,
}

impl Faults {
    pub fn new(cfg: FaultConfig) -> Self {
        let rng = Mutex::new(StdRng::seed_from_u64(cfg.seed));
        Self { cfg, rng }
    }

    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        let x: f64 = self.rng.lock().expect("rng lock").gen();
        x < p
    }

    /// Applies `slow_ms`, then decides whether this send fails. A `Timeout` has already
    /// waited `timeout` when returned.
    pub async fn before_send(&self) -> Option<Fault> {
        if self.cfg.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.cfg.slow_ms)).await;
        }
        if self.roll(self.cfg.timeout_rate) {
            tokio::time::sleep(self.cfg.timeout).await;
            return Some(Fault::Timeout);
        }
        if self.roll(self.cfg.error_rate) {
            return Some(Fault::Error);
        }
        None
    }

    /// Applies `slow_ms` only (token and query endpoints).
    pub async fn latency(&self) {
        if self.cfg.slow_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.cfg.slow_ms)).await;
        }
    }

    /// How many times a receipt is delivered: 0 (lost), 1, or 2 (duplicated).
    pub fn receipt_copies(&self) -> usize {
        if self.roll(self.cfg.receipt_loss_rate) {
            0
        } else if self.roll(self.cfg.receipt_duplicate_rate) {
            2
        } else {
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rates_and_determinism() {
        let cfg = FaultConfig {
            error_rate: 0.5,
            seed: 7,
            ..FaultConfig::default()
        };
        let a = Faults::new(cfg.clone());
        let b = Faults::new(cfg);
        let mut ra = Vec::new();
        let mut rb = Vec::new();
        for _ in 0..200 {
            ra.push(a.before_send().await);
            rb.push(b.before_send().await);
        }
        assert_eq!(ra, rb);
        let errors = ra.iter().filter(|f| **f == Some(Fault::Error)).count();
        assert!((60..140).contains(&errors), "{errors}");
        let none = Faults::new(FaultConfig::default());
        assert_eq!(none.before_send().await, None);
        assert_eq!(none.receipt_copies(), 1);
    }
}
