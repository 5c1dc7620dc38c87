//! The one token bucket: `capacity` requests per `window`, refilled continuously, shared by
//! every caller of one API so its budget is respected by construction. A throttled answer
//! pauses the whole bucket until its `Retry-After` has passed. Uses tokio's clock (tests
//! pause it).
//!
//! Each `acquire` reserves its place before it waits (the generic cell rate algorithm), so
//! callers are served in arrival order and a burst of waiters never wakes all at once.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct TokenBucket {
    capacity: u32,
    /// Time one token takes to come back.
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When the bucket would be full again if nobody took more (theoretical arrival time
    /// of the next request, shifted by the burst allowance).
    full_at: Instant,
    /// No request leaves before this instant (a `Retry-After`).
    paused_until: Option<Instant>,
}

impl TokenBucket {
    /// `capacity` requests per `window`; a zero window does not limit.
    pub(crate) fn new(capacity: u32, window: Duration) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            interval: window / capacity,
            state: Mutex::new(State {
                full_at: Instant::now(),
                paused_until: None,
            }),
        }
    }

    /// `rate` requests per second, spaced evenly (no burst); `rate` must be positive.
    pub(crate) fn per_second(rate: f64) -> Self {
        let interval = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
        Self::new(1, interval)
    }

    /// Takes `n` tokens, waiting until they are available. Requests larger than the capacity
    /// are charged the capacity.
    pub(crate) async fn acquire(&self, n: u32) {
        let mut at = self.reserve(n);
        loop {
            if at > Instant::now() {
                tokio::time::sleep_until(at).await;
            }
            // A pause that began while this caller waited holds it back too.
            match self.lock().paused_until {
                Some(p) if p > Instant::now() => at = p,
                _ => return,
            }
        }
    }

    /// No request leaves before `until`; afterwards requests restart at the steady rate
    /// rather than in a burst.
    pub(crate) fn pause_until(&self, until: Instant) {
        let mut s = self.lock();
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        // Empty the bucket as of `until`, but let the first request through then.
        let empty_at = add(until, self.interval.saturating_mul(self.capacity - 1));
        s.full_at = s.full_at.max(empty_at);
    }

    /// No request leaves for `d` from now (a `Retry-After`, however long: one too long to
    /// represent holds back for a century).
    pub(crate) fn pause_for(&self, d: Duration) {
        self.pause_until(add(Instant::now(), d));
    }

    /// How long the current pause still runs, if one does.
    pub(crate) fn paused_for(&self) -> Option<Duration> {
        let until = self.lock().paused_until?;
        until
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
    }

    /// Books `n` tokens and returns when they may be used.
    fn reserve(&self, n: u32) -> Instant {
        let n = n.min(self.capacity);
        let burst = self.interval.saturating_mul(self.capacity);
        let mut s = self.lock();
        let now = Instant::now();
        s.full_at = add(s.full_at.max(now), self.interval.saturating_mul(n));
        let allowed = s.full_at.checked_sub(burst).unwrap_or(now).max(now);
        s.paused_until.map_or(allowed, |p| allowed.max(p))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("token bucket lock poisoned")
    }
}

/// `t + d`, saturating far in the future instead of overflowing.
fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .unwrap_or_else(|| t + Duration::from_secs(100 * 365 * 24 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_refill_once_the_budget_is_spent() {
        let l = TokenBucket::new(3, Duration::from_secs(30));
        let start = Instant::now();
        for _ in 0..3 {
            l.acquire(1).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn refills_while_idle_up_to_the_capacity() {
        let l = TokenBucket::new(2, Duration::from_secs(10));
        l.acquire(2).await;
        tokio::time::advance(Duration::from_secs(60)).await;
        let start = Instant::now();
        l.acquire(2).await;
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "full again, but not fuller"
        );
        l.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_requests_are_charged_the_capacity() {
        let l = TokenBucket::new(4, Duration::from_secs(4));
        let start = Instant::now();
        l.acquire(100).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        l.acquire(100).await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn per_second_spaces_requests() {
        let l = TokenBucket::per_second(4.0);
        let start = Instant::now();
        for _ in 0..5 {
            l.acquire(1).await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_are_served_one_interval_apart() {
        let l = std::sync::Arc::new(TokenBucket::per_second(10.0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..5)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    l.acquire(1).await;
                    start.elapsed()
                })
            })
            .collect();
        let mut waited = Vec::new();
        for t in tasks {
            waited.push(t.await.unwrap());
        }
        waited.sort();
        let want: Vec<_> = (0..5).map(|i| Duration::from_millis(100 * i)).collect();
        assert_eq!(waited, want);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_everyone_back_then_resumes_at_the_steady_rate() {
        let l = std::sync::Arc::new(TokenBucket::new(10, Duration::from_secs(10)));
        let start = Instant::now();
        l.acquire(1).await;
        // A caller already waiting for its slot when the pause begins waits for the pause.
        l.acquire(9).await;
        let waiting = {
            let l = l.clone();
            tokio::spawn(async move {
                l.acquire(1).await;
                start.elapsed()
            })
        };
        tokio::task::yield_now().await;
        l.pause_until(start + Duration::from_secs(7));
        assert_eq!(waiting.await.unwrap(), Duration::from_secs(7));
        l.acquire(1).await;
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        l.acquire(1).await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(8),
            "no burst after a pause"
        );
    }
}
