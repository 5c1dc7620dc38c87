//! The audit-retention job: deletes audit entries older than `store.audit_retention_days`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Store;

/// How often old audit entries are deleted. Retention is counted in days, so an hour's lag is
/// immaterial, and one indexed DELETE an hour costs nothing noticeable.
pub const AUDIT_PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs until `cancel` fires: prunes at once, then every [`AUDIT_PRUNE_INTERVAL`]. A failed
/// prune is logged and retried at the next tick.
pub async fn audit_prune_job(
    store: Arc<dyn Store>,
    retention_days: u32,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(AUDIT_PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let before = chrono::Utc::now() - chrono::Duration::days(i64::from(retention_days));
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned old audit entries"),
                    Err(error) => {
                        tracing::warn!(%error, "audit prune failed; retrying at the next interval")
                    }
                }
            }
        }
    }
}
