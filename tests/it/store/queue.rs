//! The durable work queue (integrations' jobs), on both backends: dedupe, per-key order,
//! due times, leases, retries, retention.

use super::*;
use presence_bridge::store::NewJob;

fn job(key: &str, dedupe: Option<&str>, n: i64, not_before: i64) -> NewJob {
    NewJob {
        queue: "q".into(),
        key: key.into(),
        dedupe: dedupe.map(str::to_owned),
        payload: serde_json::json!({ "n": n }),
        not_before: t(not_before),
    }
}

fn ns(jobs: &[presence_bridge::store::Job]) -> Vec<i64> {
    jobs.iter()
        .map(|j| j.payload["n"].as_i64().unwrap())
        .collect()
}

store_suite! {
    async fn jobs_are_stored_once_per_dedupe_id_even_after_done(db: TestDb) {
        let s = db.open().await;
        let n = s.queue_push(&[job("c1", Some("c1/created"), 1, 0), job("c1", Some("c1/created"), 2, 0)]).await.unwrap();
        assert_eq!(n, 1, "a second push with the same dedupe id is dropped, also within one call");
        assert_eq!(s.queue_push(&[job("c1", None, 3, 0), job("c1", None, 4, 0)]).await.unwrap(), 2, "no dedupe id: always new");
        let claimed = s.queue_claim("q", 10, 60, t(1)).await.unwrap();
        assert_eq!(ns(&claimed), vec![1], "only the head of the key");
        s.queue_done(claimed[0].id).await.unwrap();
        let again = db.open().await;
        assert_eq!(again.queue_push(&[job("c1", Some("c1/created"), 5, 0)]).await.unwrap(), 0, "done jobs still deduplicate");
        assert_eq!(again.queue_len("q").await.unwrap(), 2);
        assert_eq!(again.queue_len("other").await.unwrap(), 0);
    }

    async fn a_key_runs_in_order_and_keys_run_side_by_side(db: TestDb) {
        let s = db.open().await;
        s.queue_push(&[job("a", None, 1, 0), job("b", None, 10, 0), job("a", None, 2, 0), job("b", None, 11, 0)]).await.unwrap();
        let first = s.queue_claim("q", 10, 60, t(1)).await.unwrap();
        assert_eq!(ns(&first), vec![1, 10]);
        assert!(s.queue_claim("q", 10, 60, t(2)).await.unwrap().is_empty(), "heads are leased; their successors wait");
        // a's head is retried later: a's second job still waits behind it
        s.queue_retry(first[0].id, t(100), "429").await.unwrap();
        s.queue_done(first[1].id).await.unwrap();
        let b2 = s.queue_claim("q", 10, 60, t(3)).await.unwrap();
        assert_eq!(ns(&b2), vec![11]);
        assert_eq!(s.queue_next_due("q").await.unwrap(), Some(t(63)), "b's lease ends first");
        s.queue_done(b2[0].id).await.unwrap();
        assert_eq!(s.queue_next_due("q").await.unwrap(), Some(t(100)));
        let retried = s.queue_claim("q", 10, 60, t(100)).await.unwrap();
        assert_eq!(ns(&retried), vec![1]);
        assert_eq!(retried[0].attempts, 1);
        s.queue_done(retried[0].id).await.unwrap();
        assert_eq!(ns(&s.queue_claim("q", 10, 60, t(101)).await.unwrap()), vec![2]);
    }

    async fn a_job_waits_for_its_time_and_a_lost_lease_comes_back(db: TestDb) {
        let s = db.open().await;
        s.queue_push(&[job("a", None, 1, 50)]).await.unwrap();
        assert!(s.queue_claim("q", 10, 60, t(49)).await.unwrap().is_empty());
        assert_eq!(s.queue_next_due("q").await.unwrap(), Some(t(50)));
        let got = s.queue_claim("q", 10, 30, t(50)).await.unwrap();
        assert_eq!(ns(&got), vec![1]);
        assert!(s.queue_claim("q", 10, 30, t(79)).await.unwrap().is_empty(), "leased");
        let back = db.open().await.queue_claim("q", 10, 30, t(80)).await.unwrap();
        assert_eq!(ns(&back), vec![1], "the runner died: the lease ran out and it is handed out again");
        assert!(matches!(s.queue_done(999_999).await, Err(presence_bridge::store::StoreError::NotFound)));
    }

    async fn finished_jobs_are_pruned_after_retention(db: TestDb) {
        let s = db.open().await;
        s.queue_push(&[job("a", Some("x"), 1, 0), job("b", Some("y"), 2, 0)]).await.unwrap();
        let got = s.queue_claim("q", 10, 60, t(0)).await.unwrap();
        s.queue_done(got[0].id).await.unwrap();
        let pruned = s.prune_jobs(Utc::now() + chrono::TimeDelta::seconds(5)).await.unwrap();
        assert_eq!(pruned, 1, "only the done job");
        assert_eq!(s.queue_len("q").await.unwrap(), 1);
        assert_eq!(s.queue_push(&[job("a", Some("x"), 3, 0)]).await.unwrap(), 1, "pruned: no longer remembered");
    }
}
