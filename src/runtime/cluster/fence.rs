//! The fence of one held lease: checked before every state write and every outbound write of
//! the work the lease guards. A check passes only while the lease is held under the token it
//! was taken with, both by the local deadline (the last successful renewal plus the lease
//! time, measured on the monotonic clock from before the renewal was sent) and by the
//! database. A process paused past its lease fails the local check at once when it wakes,
//! and the database check catches the rest; either way the write is refused, logged and
//! counted in `cluster_fenced_writes_total`.
//!
//! Without leases (SQLite, one replica) the fence is open: every check passes.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::store::lease::PgLeases;
use crate::telemetry::Metrics;

/// A write refused because the lease guarding it is no longer held.
#[derive(Debug, Clone, thiserror::Error)]
#[error("fenced: lease {lease} (token {token}) is no longer held by this replica ({why})")]
pub struct Fenced {
    pub lease: String,
    pub token: i64,
    pub why: &'static str,
}

/// Cheap to clone; all clones share one state.
#[derive(Clone, Default)]
pub struct Fence {
    inner: Option<Arc<Held>>,
}

struct Held {
    leases: PgLeases,
    lease: String,
    holder: String,
    token: i64,
    deadline: Mutex<Instant>,
    revoked: AtomicBool,
    metrics: Metrics,
}

impl Fence {
    /// No lease guards the work (one replica): every check passes.
    pub fn open() -> Fence {
        Fence::default()
    }

    /// The fence of `lease`, just taken under `token`, valid locally until `deadline`.
    pub fn held(
        leases: PgLeases,
        lease: &str,
        holder: &str,
        token: i64,
        deadline: Instant,
        metrics: Metrics,
    ) -> Fence {
        Fence {
            inner: Some(Arc::new(Held {
                leases,
                lease: lease.to_owned(),
                holder: holder.to_owned(),
                token,
                deadline: Mutex::new(deadline),
                revoked: AtomicBool::new(false),
                metrics,
            })),
        }
    }

    /// Whether a lease guards the work (else the fence is open).
    pub fn is_guarded(&self) -> bool {
        self.inner.is_some()
    }

    /// The fencing token, when a lease guards the work.
    pub fn token(&self) -> Option<i64> {
        self.inner.as_ref().map(|h| h.token)
    }

    /// A renewal that started at `sent` succeeded: the lease is held until `sent + ttl`.
    pub(crate) fn extend(&self, until: Instant) {
        if let Some(h) = &self.inner {
            let mut d = h.deadline.lock().expect("fence lock");
            *d = (*d).max(until);
        }
    }

    /// The lease is lost or given up: every later check fails.
    pub(crate) fn revoke(&self) {
        if let Some(h) = &self.inner {
            h.revoked.store(true, Ordering::SeqCst);
        }
    }

    /// Whether the local deadline has passed (the holder must stop).
    pub(crate) fn expired(&self) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|h| Instant::now() >= *h.deadline.lock().expect("fence lock"))
    }

    /// Passes while the lease is held; `what` names the write for the log line of a refusal.
    pub async fn check(&self, what: &str) -> Result<(), Fenced> {
        let Some(h) = &self.inner else {
            return Ok(());
        };
        let why = if h.revoked.load(Ordering::SeqCst) {
            Some("lost or given up")
        } else if self.expired() {
            Some("its time ran out before a renewal")
        } else {
            match h.leases.holds(&h.lease, &h.holder, h.token).await {
                Ok(true) => None,
                Ok(false) => {
                    h.revoked.store(true, Ordering::SeqCst);
                    Some("the database shows another holder or an expired lease")
                }
                Err(_) => Some("the database could not confirm it"),
            }
        };
        let Some(why) = why else { return Ok(()) };
        h.metrics
            .counter("cluster_fenced_writes_total", &[("lease", h.lease.clone())])
            .increment(1);
        tracing::warn!(
            lease = %h.lease,
            token = h.token,
            write = what,
            "fenced: write refused, lease {} (token {}) is no longer held by this replica: {why}",
            h.lease,
            h.token
        );
        Err(Fenced {
            lease: h.lease.clone(),
            token: h.token,
            why,
        })
    }
}
