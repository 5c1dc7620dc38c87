//! A token bucket per Graph API family, shared by every clone of the client, so the documented
//! budgets are respected by construction. Uses tokio's clock (tests pause it).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Which budget a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiFamily {
    PresenceRead,
    PresenceWrite,
    Directory,
    /// Calls without a documented budget (token-less `$batch` wrappers are charged per item).
    Other,
}

impl ApiFamily {
    /// Label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFamily::PresenceRead => "presence_read",
            ApiFamily::PresenceWrite => "presence_write",
            ApiFamily::Directory => "directory",
            ApiFamily::Other => "other",
        }
    }
}

/// `capacity` requests per `window`, refilled continuously.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_sec: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub fn new(capacity: u32, window: Duration) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_sec: capacity / window.as_secs_f64().max(0.001),
            state: Mutex::new(Bucket {
                tokens: capacity,
                at: Instant::now(),
            }),
        }
    }

    /// Takes `n` tokens, waiting until they are available. Requests larger than the capacity
    /// are charged the capacity.
    pub async fn acquire(&self, n: u32) {
        let n = f64::from(n).min(self.capacity);
        loop {
            let wait = {
                let mut b = self.state.lock().expect("limiter lock poisoned");
                let now = Instant::now();
                let refill = now.duration_since(b.at).as_secs_f64() * self.per_sec;
                b.tokens = (b.tokens + refill).min(self.capacity);
                b.at = now;
                if b.tokens >= n {
                    b.tokens -= n;
                    return;
                }
                Duration::from_secs_f64((n - b.tokens) / self.per_sec)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One limiter per family.
#[derive(Debug)]
pub struct Limiters {
    presence_read: RateLimiter,
    presence_write: RateLimiter,
    directory: RateLimiter,
}

impl Limiters {
    pub fn from_config(cfg: &crate::graph::config::GraphConfig) -> Self {
        let window = Duration::from_secs(cfg.budget_window_secs);
        Self {
            presence_read: RateLimiter::new(cfg.presence_read_budget, window),
            presence_write: RateLimiter::new(cfg.presence_write_budget, window),
            directory: RateLimiter::new(cfg.directory_budget, window),
        }
    }

    pub async fn acquire(&self, family: ApiFamily, n: u32) {
        match family {
            ApiFamily::PresenceRead => self.presence_read.acquire(n).await,
            ApiFamily::PresenceWrite => self.presence_write.acquire(n).await,
            ApiFamily::Directory => self.directory.acquire(n).await,
            ApiFamily::Other => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_refill_once_the_budget_is_spent() {
        let l = RateLimiter::new(3, Duration::from_secs(30));
        let start = Instant::now();
        for _ in 0..3 {
            l.acquire(1).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(1).await;
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
            "{waited:?}"
        );
    }
}
