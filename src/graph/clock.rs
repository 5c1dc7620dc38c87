//! Wall-clock time that follows tokio's clock: `now()` = the UTC time at creation plus the
//! tokio time elapsed since. In production the two agree; under a paused tokio clock
//! (`start_paused` tests) expiries and renewals advance with the simulated time.

use chrono::{DateTime, Utc};
use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: DateTime<Utc>,
    start: Instant,
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
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.start.elapsed()).unwrap_or_default();
        self.base + elapsed
    }
}
