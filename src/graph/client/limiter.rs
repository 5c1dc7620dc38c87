//! Graph's request budgets: one [`TokenBucket`] per API family, shared by every clone of the
//! client, sized from `graph.*_budget` and `graph.budget_window_secs`.

use std::time::Duration;

use tokio::time::Instant;

use crate::graph::config::GraphConfig;
use crate::net::bucket::TokenBucket;

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

/// One bucket per family with a documented budget.
#[derive(Debug)]
pub(crate) struct Limiters {
    presence_read: TokenBucket,
    presence_write: TokenBucket,
    directory: TokenBucket,
}

impl Limiters {
    pub(crate) fn from_config(cfg: &GraphConfig) -> Self {
        let window = Duration::from_secs(cfg.budget_window_secs);
        Self {
            presence_read: TokenBucket::new(cfg.presence_read_budget, window),
            presence_write: TokenBucket::new(cfg.presence_write_budget, window),
            directory: TokenBucket::new(cfg.directory_budget, window),
        }
    }

    /// Takes `n` units of `family`'s budget, waiting until they are available.
    pub(crate) async fn acquire(&self, family: ApiFamily, n: u32) {
        if let Some(b) = self.bucket(family) {
            b.acquire(n).await;
        }
    }

    /// Holds every caller of `family` back until `until` (Graph throttled it).
    pub(crate) fn pause_until(&self, family: ApiFamily, until: Instant) {
        if let Some(b) = self.bucket(family) {
            b.pause_until(until);
        }
    }

    fn bucket(&self, family: ApiFamily) -> Option<&TokenBucket> {
        match family {
            ApiFamily::PresenceRead => Some(&self.presence_read),
            ApiFamily::PresenceWrite => Some(&self.presence_write),
            ApiFamily::Directory => Some(&self.directory),
            ApiFamily::Other => None,
        }
    }
}
