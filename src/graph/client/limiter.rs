//! Graph's request budgets: one [`TokenBucket`] per API family, shared by every clone of the
//! client, sized from `graph.*_budget` and `graph.budget_window_secs`.

use std::time::Duration;

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

/// One bucket per family with a documented budget, and an unlimited one for the other calls
/// that only holds them back after a throttled answer.
#[derive(Debug)]
pub(crate) struct Limiters {
    presence_read: TokenBucket,
    presence_write: TokenBucket,
    directory: TokenBucket,
    other: TokenBucket,
}

impl Limiters {
    pub(crate) fn from_config(cfg: &GraphConfig) -> Self {
        let window = Duration::from_secs(cfg.budget_window_secs);
        Self {
            presence_read: TokenBucket::new(cfg.presence_read_budget, window),
            presence_write: TokenBucket::new(cfg.presence_write_budget, window),
            directory: TokenBucket::new(cfg.directory_budget, window),
            // A zero window does not limit; the bucket is there for its pause.
            other: TokenBucket::new(1, Duration::ZERO),
        }
    }

    /// Takes `n` units of `family`'s budget, waiting until they are available.
    pub(crate) async fn acquire(&self, family: ApiFamily, n: u32) {
        self.bucket(family).acquire(n).await;
    }

    /// Holds every caller of `family` back for `d` (Graph throttled it).
    pub(crate) fn pause_for(&self, family: ApiFamily, d: Duration) {
        self.bucket(family).pause_for(d);
    }

    fn bucket(&self, family: ApiFamily) -> &TokenBucket {
        match family {
            ApiFamily::PresenceRead => &self.presence_read,
            ApiFamily::PresenceWrite => &self.presence_write,
            ApiFamily::Directory => &self.directory,
            ApiFamily::Other => &self.other,
        }
    }
}
