//! The retention job: deletes audit entries older than `store.audit_retention_days`, and
//! contact-center event ids past their replay window ([`INGEST_ID_RETENTION`], at most
//! [`INGEST_IDS_PER_AGENT`] per agent), contact events past [`CONTACT_EVENT_RETENTION`] and
//! finished jobs past [`JOB_RETENTION`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Store;

/// How often old rows are deleted. Audit retention is counted in days and event ids are kept
/// a day, so ten minutes' lag is immaterial; the per-agent cap bounds what a flood of distinct
/// ids can add between two runs to what arrives in ten minutes.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// How long a contact-center event id is remembered. Platforms redeliver within minutes and
/// signed webhooks carry a timestamp checked against a window of minutes, so a day covers
/// every redelivery with a wide margin; an older replay of an agent's latest event is still
/// refused as stale by the per-agent time, which is kept for good.
pub const INGEST_ID_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Most event ids remembered per agent: far above a day of real status changes, so only a
/// flood of distinct ids reaches it.
pub const INGEST_IDS_PER_AGENT: u32 = 5_000;

/// How long contact events are kept. They are served for a look at recent contacts
/// (`GET /api/v1/contacts`), not archived: a week covers the shifts anyone looks back at.
pub const CONTACT_EVENT_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// How long finished jobs of the work queue are kept, so a redelivered job (a webhook sent
/// again, an event replayed) is still recognised by its dedupe id: platforms redeliver within
/// hours; a week is the same window as the contact events the jobs are made from.
pub const JOB_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Runs until `cancel` fires: prunes at once, then every [`PRUNE_INTERVAL`]. A failed prune
/// is logged and retried at the next tick.
pub async fn audit_prune_job(
    store: Arc<dyn Store>,
    retention_days: u32,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {
                let now = chrono::Utc::now();
                let before = now - chrono::Duration::days(i64::from(retention_days));
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned old audit entries"),
                    Err(error) => {
                        tracing::warn!(%error, "audit prune failed; retrying at the next interval")
                    }
                }
                let before = now - INGEST_ID_RETENTION;
                match store.prune_ingest(before, INGEST_IDS_PER_AGENT).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned old contact-center event ids"),
                    Err(error) => {
                        tracing::warn!(%error, "event id prune failed; retrying at the next interval")
                    }
                }
                match store.prune_jobs(now - JOB_RETENTION).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned finished jobs"),
                    Err(error) => {
                        tracing::warn!(%error, "job prune failed; retrying at the next interval")
                    }
                }
                match store.prune_contact_events(now - CONTACT_EVENT_RETENTION).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, "pruned old contact events"),
                    Err(error) => {
                        tracing::warn!(%error, "contact event prune failed; retrying at the next interval")
                    }
                }
            }
        }
    }
}
