//! Leases and fences against the real database: a lease is held by one holder at a time, a
//! new holder gets a greater token, the old holder can neither renew nor release it, and
//! every write through the old holder's fence is refused (and leaves the data alone).

use std::time::{Duration, Instant};

use presence_bridge::runtime::cluster::Fence;
use presence_bridge::runtime::cluster::fenced::FencedStore;
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::lease::PgLeases;
use presence_bridge::store::{self, StoreError};
use presence_bridge::telemetry::Metrics;
use serde_json::json;

use super::harness::TestDatabase;

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

/// Waits until `lease` has run out by the database's clock.
async fn run_out(leases: &PgLeases, lease: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while leases
        .list()
        .await
        .unwrap()
        .iter()
        .any(|l| l.name == lease && l.live)
    {
        assert!(Instant::now() < deadline, "{lease} never ran out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_lost_its_lease_is_fenced() {
    let Some(db) = TestDatabase::create("replicas::fence").await else {
        return;
    };
    let cfg = StoreConfig {
        url: db.url.clone().into(),
        ..StoreConfig::default()
    };
    let store = store::open(&cfg).await.unwrap();
    let leases = PgLeases::connect(&cfg).unwrap();
    let metrics = Metrics::new();

    let a = leases
        .acquire("engine", "a", SHORT)
        .await
        .unwrap()
        .expect("free");
    assert_eq!(
        leases.acquire("engine", "b", LONG).await.unwrap(),
        None,
        "held by a"
    );
    let fence_a = Fence::held(
        leases.clone(),
        "engine",
        "a",
        a,
        Instant::now() + LONG,
        metrics.clone(),
    );
    let as_a = FencedStore::wrap(store.clone(), &fence_a);
    as_a.save_user_states(&[("u1".into(), json!({"by": "a"}).into())])
        .await
        .expect("a holds the lease");

    // a is paused past its lease; b takes it.
    run_out(&leases, "engine").await;
    let b = leases
        .acquire("engine", "b", LONG)
        .await
        .unwrap()
        .expect("ran out");
    assert!(b > a, "a new holder gets a greater token ({a} then {b})");
    assert!(
        !leases.renew("engine", "a", a, LONG).await.unwrap(),
        "a cannot renew"
    );
    leases.release("engine", "a", a).await.unwrap();
    assert!(
        leases.holds("engine", "b", b).await.unwrap(),
        "a's release leaves b's lease"
    );

    // a wakes and writes: refused, nothing changed.
    let refused = as_a
        .save_user_states(&[("u1".into(), json!({"by": "a, late"}).into())])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("fenced")),
        "{refused:?}"
    );
    assert!(as_a.inbox_ack(&[1]).await.is_err(), "acks are fenced too");
    let states = store.load_user_states().await.unwrap();
    assert_eq!(states, vec![("u1".to_owned(), json!({"by": "a"}).into())]);
    assert!(
        metrics
            .render()
            .contains("cluster_fenced_writes_total{lease=\"engine\"} 2"),
        "refusals are counted"
    );

    // b writes through its own fence; released, the lease goes to the next holder at once.
    let fence_b = Fence::held(
        leases.clone(),
        "engine",
        "b",
        b,
        Instant::now() + LONG,
        metrics,
    );
    FencedStore::wrap(store.clone(), &fence_b)
        .save_user_states(&[("u1".into(), json!({"by": "b"}).into())])
        .await
        .expect("b holds the lease");
    leases.release("engine", "b", b).await.unwrap();
    let c = leases
        .acquire("engine", "c", LONG)
        .await
        .unwrap()
        .expect("released");
    assert_eq!(c, b + 1);
    db.drop_now().await;
}
