//! Which users have no working presence subscription: written by the subscription manager
//! after each pass, read by the poller (which reads those users fast) and by tests.

use std::sync::{Arc, RwLock};

/// Which users have no working presence subscription (the poller reads them fast).
#[derive(Clone, Default)]
pub struct Coverage {
    inner: Arc<RwLock<CoverageState>>,
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

impl Coverage {
    pub fn snapshot(&self) -> CoverageState {
        self.inner.read().expect("coverage lock").clone()
    }

    /// Marks users uncovered at once (a shard whose subscription is being replaced).
    pub(crate) fn add_uncovered(&self, users: &[String]) {
        let mut s = self.inner.write().expect("coverage lock");
        s.uncovered_users.extend_from_slice(users);
    }

    pub(crate) fn set(&self, s: CoverageState) {
        *self.inner.write().expect("coverage lock") = s;
    }
}
