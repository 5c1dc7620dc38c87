//! The audit-retention job deletes old entries and stops on cancel.

use super::*;
use presence_bridge::store::prune::audit_prune_job;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn audit_prune_job_deletes_entries_past_retention() {
    with_sqlite(|db| async move {
        let s = db.open().await;
        let entry = |at: DateTime<Utc>| AuditEntry {
            id: 0,
            user_id: "a".into(),
            at,
            input: json!({}).into(),
            rule: None,
            action: "ignore".into(),
            reason: "test".into(),
        };
        let now = Utc::now();
        s.append_audit(&[
            entry(now - Duration::days(3)),
            entry(now - Duration::hours(1)),
        ])
        .await
        .unwrap();
        let cancel = CancellationToken::new();
        let job = tokio::spawn(audit_prune_job(s.clone(), 2, cancel.clone()));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.list_audit("a", 10).await.unwrap().len() != 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "old entry not pruned"
            );
            tokio::task::yield_now().await;
        }
        cancel.cancel();
        job.await.unwrap();
        let left = s.list_audit("a", 10).await.unwrap();
        assert!(left[0].at > now - Duration::days(2));
    })
    .await
}
