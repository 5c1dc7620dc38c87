//! Store-level guarantees, on SQLite and (when configured) Postgres.

use std::sync::Arc;

use chrono::{Duration, Utc};
use presence_bridge::connectors::ingest::Ingest;
use presence_bridge::model::contact_center::{AgentEvent, ConnectorEvent};
use presence_bridge::model::{CcStatus, Side, Source};
use presence_bridge::store::inbox::Inbox;
use presence_bridge::store::{self, NewInboxItem, ObservedStatus, Store};
use presence_bridge::telemetry::Metrics;
use serde_json::json;

use super::both_backends;
use crate::store::{TestDb, t, user};

/// The store of `db` as the process named `instance` would open it.
async fn open_as(db: &TestDb, instance: &str) -> Arc<dyn Store> {
    let mut cfg = db.cfg.clone();
    cfg.instance_id = Some(instance.into());
    store::open(&cfg).await.expect("store opens")
}

fn observed(status: &str, at: chrono::DateTime<Utc>) -> ObservedStatus {
    ObservedStatus {
        user_id: "u1".into(),
        side: Side::ContactCenter,
        status: json!({ "side": "contact_center", "id": status, "name": status }),
        observed_at: at,
        source: "connector_push".into(),
    }
}

fn row(n: i64) -> NewInboxItem {
    NewInboxItem {
        kind: "reconcile_request".into(),
        user_id: None,
        payload: json!({ "kind": "reconcile_request" }),
        received_at: t(n),
    }
}

fn event(id: &str, agent: &str, status: &str, at: chrono::DateTime<Utc>) -> ConnectorEvent {
    ConnectorEvent::Agent(AgentEvent {
        agent_id: agent.into(),
        status: CcStatus {
            id: status.into(),
            name: status.into(),
        },
        at,
        event_id: Some(id.into()),
        source: Source::ConnectorPush,
        activity: None,
    })
}

/// An ingest path for connector `genesys` (the one `crate::store::user` matches agents in).
fn ingest(s: &Arc<dyn Store>) -> Ingest {
    Ingest::new("genesys", Inbox::new(s.clone()), Metrics::new())
}

both_backends! {
    async fn observed_status_never_goes_back_in_time(db: TestDb) {
        let s = db.open().await;
        s.put_observed(&[observed("on_contact", t(20))]).await.unwrap();
        // A late item from a crashed process: older, written after.
        s.put_observed(&[observed("available", t(10))]).await.unwrap();
        let now = s.list_observed().await.unwrap();
        assert_eq!(now[0].status["id"], "on_contact", "{now:?}");
        assert_eq!(now[0].observed_at, t(20));
        // In one batch too, whatever the order.
        s.put_observed(&[observed("acw", t(40)), observed("break", t(30))]).await.unwrap();
        assert_eq!(s.list_observed().await.unwrap()[0].status["id"], "acw");
        // Equal or newer times still replace.
        s.put_observed(&[observed("available", t(40))]).await.unwrap();
        assert_eq!(s.list_observed().await.unwrap()[0].status["id"], "available");
    }

    async fn a_restarted_instance_takes_back_its_own_leases_and_no_one_elses(db: TestDb) {
        let a = open_as(&db, "replica-a").await;
        a.inbox_push(&[row(1), row(2), row(3)]).await.unwrap();
        let held = a.inbox_claim(2, 60).await.unwrap();
        assert_eq!(held.len(), 2);
        // Another live replica starting up takes back nothing of replica-a's.
        let b = open_as(&db, "replica-b").await;
        assert_eq!(b.inbox_reclaim().await.unwrap(), 0);
        let third = b.inbox_claim(10, 60).await.unwrap();
        assert_eq!(third.len(), 1, "only the unleased item");
        // replica-a dies with its leases and starts again: they are back at once, in order.
        drop(a);
        let a = open_as(&db, "replica-a").await;
        assert_eq!(a.inbox_reclaim().await.unwrap(), 2);
        let again = a.inbox_claim(10, 60).await.unwrap();
        let ids: Vec<i64> = again.iter().map(|i| i.id).collect();
        assert_eq!(ids, held.iter().map(|i| i.id).collect::<Vec<_>>());
        assert!(again.iter().all(|i| i.attempts == 1), "{again:?}");
        // Taking back touches replica-a's two leases, never replica-b's third.
        assert_eq!(a.inbox_reclaim().await.unwrap(), 2);
        let freed: Vec<i64> = b.inbox_claim(10, 60).await.unwrap().iter().map(|i| i.id).collect();
        assert_eq!(freed, ids);
    }

    async fn a_replayed_event_after_a_restart_is_refused(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("u1", Some("agent-1"))]).await.unwrap();
        let now = Utc::now();
        let first = ingest(&s)
            .ingest(vec![event("ev-1", "agent-1", "on_contact", now)])
            .await
            .unwrap();
        assert_eq!(first.accepted, 1);
        drop(s);
        // Restart: a fresh process with a fresh ingest path.
        let s = db.open().await;
        let again = ingest(&s);
        let replay = again
            .ingest(vec![event("ev-1", "agent-1", "on_contact", now)])
            .await
            .unwrap();
        assert_eq!((replay.accepted, replay.duplicate), (0, 1), "{replay:?}");
        // An older event under a new id would move the agent back in time.
        let older = again
            .ingest(vec![event("ev-0", "agent-1", "available", now - Duration::seconds(5))])
            .await
            .unwrap();
        assert_eq!((older.accepted, older.stale), (0, 1), "{older:?}");
        assert_eq!(s.inbox_len().await.unwrap(), 1);
    }

    async fn concurrent_copies_of_one_signed_event_are_accepted_once(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("u1", Some("agent-1"))]).await.unwrap();
        // Two replicas, each with its own ingest path and pool, taking 20 copies at once.
        let replicas = [Arc::new(ingest(&s)), Arc::new(ingest(&db.open().await))];
        let ev = event("ev-once", "agent-1", "on_contact", Utc::now());
        let copies = (0..20).map(|i| {
            let ingest = replicas[i % 2].clone();
            let ev = ev.clone();
            tokio::spawn(async move { ingest.ingest(vec![ev]).await })
        });
        let mut accepted = 0;
        for c in futures::future::join_all(copies).await {
            let out = c.unwrap().expect("ingest succeeds");
            accepted += out.accepted;
            assert_eq!(out.accepted + out.duplicate, 1, "{out:?}");
        }
        assert_eq!(accepted, 1);
        assert_eq!(s.inbox_len().await.unwrap(), 1);
    }

    async fn event_ids_are_kept_a_bounded_time_and_number(db: TestDb) {
        let s = db.open().await;
        s.upsert_users(&[user("u1", Some("agent-1")), user("u2", Some("agent-2"))]).await.unwrap();
        let at = Utc::now();
        let events: Vec<_> = (0..5)
            .map(|i| event(&format!("a1-{i}"), "agent-1", "available", at + Duration::milliseconds(i)))
            .chain([event("a2-0", "agent-2", "available", at)])
            .collect();
        assert_eq!(ingest(&s).ingest(events).await.unwrap().accepted, 6);
        // Nothing is a day old; agent-1 has 3 ids over a cap of 2.
        let day_ago = Utc::now() - store::prune::INGEST_ID_RETENTION;
        assert_eq!(s.prune_ingest(day_ago, 2).await.unwrap(), 3);
        // The oldest ids are forgotten, the newest remembered.
        let again = ingest(&s)
            .ingest(vec![
                event("a1-4", "agent-1", "available", at + Duration::milliseconds(4)),
                event("a1-0", "agent-1", "available", at + Duration::milliseconds(9)),
            ])
            .await
            .unwrap();
        assert_eq!((again.duplicate, again.accepted), (1, 1), "{again:?}");
        // Past the retention every id goes.
        let later = Utc::now() + Duration::seconds(1);
        assert_eq!(s.prune_ingest(later, 100).await.unwrap(), 4);
    }
}

#[tokio::test]
async fn a_read_only_sqlite_file_is_not_ready() {
    crate::store::with_sqlite(|db| async move {
        let s = db.open().await;
        s.ping().await.expect("a writable file is ready");
        drop(s);
        let mut ro = db.cfg.clone();
        let url = secrecy::ExposeSecret::expose_secret(&ro.url).to_owned();
        ro.url = format!("{url}?mode=ro").into();
        let s = store::open(&ro).await.expect("a read-only file opens");
        assert!(s.put_kv("k", "v").await.is_err(), "writes fail");
        assert!(
            s.ping().await.is_err(),
            "readiness must not call a read-only database ready"
        );
    })
    .await
}
