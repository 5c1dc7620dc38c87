//! Wall-clock time for the engine's I/O shell and the subscription logic: `now()` = the UTC
//! time at creation plus the tokio time elapsed since, plus an offset tests move forward
//! ([`Clock::advance`]) to run simulated hours in milliseconds. Built on tokio's clock, so a
//! paused tokio runtime stops it too. In production the offset stays zero.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// Shared, cheap to clone; clones see the same offset.
#[derive(Debug, Clone)]
pub struct Clock {
    base_ms: i64,
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
            base_ms: Utc::now().timestamp_millis(),
            start: Instant::now(),
            offset_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_millis()).unwrap_or_default()
    }

    /// Milliseconds since the Unix epoch (the engine's time).
    pub fn now_millis(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64 + self.offset()
    }

    /// The tokio instant at which [`Self::now_millis`] reaches `at` (now, if `at` is past).
    pub fn instant_at(&self, at: i64) -> Instant {
        let from_start = at - self.base_ms - self.offset();
        self.start + Duration::from_millis(from_start.max(0) as u64)
    }

    /// Moves this clock (and its clones) forward.
    pub fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }

    fn offset(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_tokio_time_and_the_offset() {
        let c = Clock::new();
        let t0 = c.now_millis();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(c.now_millis() - t0, 2_000);
        c.clone().advance(Duration::from_secs(60));
        assert_eq!(c.now_millis() - t0, 62_000);
        assert_eq!(c.now().timestamp_millis(), c.now_millis());
        assert_eq!(
            c.instant_at(c.now_millis() + 500),
            Instant::now() + Duration::from_millis(500)
        );
        assert_eq!(c.instant_at(t0 - 1), c.start);
    }
}
