//! Wall-clock time for the subscription logic: `now()` = the UTC time at creation plus the
//! tokio time elapsed since, plus an offset tests move forward ([`Clock::advance`]) to run
//! simulated hours in milliseconds. In production the offset stays zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Shared, cheap to clone; clones see the same offset.
#[derive(Debug, Clone)]
pub struct Clock {
    base: DateTime<Utc>,
    start: Instant,
    offset_ms: Arc<AtomicI64>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Self {
            base: Utc::now(),
            start: Instant::now(),
            offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
}
