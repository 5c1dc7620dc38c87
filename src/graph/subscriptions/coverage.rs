//! Which users have no working presence subscription: written by the subscription manager
//! after each pass, read by the poller (which reads those users fast) and by tests. The
//! manager also asks here for immediate reads: when a shard loses its subscription (a `404`, a
//! failed create, a replacement) its users are read at once, and again once the new
//! subscription is confirmed, so a change made in the gap is not left to the next safety poll.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

/// Which users have no working presence subscription (the poller reads them fast).
#[derive(Clone, Default)]
pub struct Coverage {
    inner: Arc<RwLock<CoverageState>>,
    reads: Arc<ReadRequests>,
}

#[derive(Default, Clone, Debug)]
pub struct CoverageState {
    /// False until the manager finished its first pass.
    pub known: bool,
    pub uncovered_users: Vec<String>,
    pub shards: usize,
    pub accounts_missing: usize,
    pub failing: usize,
}

/// Users to read at once, and the poller's wake-up.
#[derive(Default)]
struct ReadRequests {
    pending: Mutex<Vec<String>>,
    wake: Notify,
}

impl Coverage {
    pub fn snapshot(&self) -> CoverageState {
        self.inner.read().expect("coverage lock").clone()
    }

    /// Marks users uncovered at once (a shard whose subscription is being replaced).
    pub(crate) fn add_uncovered(&self, users: &[String]) {
        let mut s = self.inner.write().expect("coverage lock");
        for u in users {
            if !s.uncovered_users.contains(u) {
                s.uncovered_users.push(u.clone());
            }
        }
    }

    pub(crate) fn set(&self, s: CoverageState) {
        *self.inner.write().expect("coverage lock") = s;
    }

    /// Asks the poller to read `users` now, outside its schedule.
    pub(crate) fn request_read(&self, users: &[String]) {
        if users.is_empty() {
            return;
        }
        {
            let mut p = self.reads.pending.lock().expect("coverage read lock");
            for u in users {
                if !p.contains(u) {
                    p.push(u.clone());
                }
            }
        }
        self.reads.wake.notify_one();
    }

    /// Waits until reads are asked for, and takes them.
    pub async fn requested_reads(&self) -> Vec<String> {
        loop {
            let taken =
                std::mem::take(&mut *self.reads.pending.lock().expect("coverage read lock"));
            if !taken.is_empty() {
                return taken;
            }
            self.reads.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn read_requests_are_merged_and_taken_once() {
        let c = Coverage::default();
        c.request_read(&["a".into(), "b".into()]);
        c.request_read(&["b".into(), "c".into()]);
        assert_eq!(c.requested_reads().await, vec!["a", "b", "c"]);
        let waiting = tokio::spawn({
            let c = c.clone();
            async move { c.requested_reads().await }
        });
        c.request_read(&["d".into()]);
        assert_eq!(waiting.await.unwrap(), vec!["d"]);
    }
}
