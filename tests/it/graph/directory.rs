//! Directory sync and `$batch` writes against the simulated tenant, with a real SQLite store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use presence_bridge::graph::GraphClient;
use presence_bridge::graph::directory::{DELTA_LINK_KEY, DirectorySync};
use presence_bridge::graph::presence::PresenceWrite;
use presence_bridge::graph::presence::scope_changes::ScopeChanges;
use presence_bridge::sim::graph::{FaultKind, FaultRule, SimUser};
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::{self, Store, UserMatch};
use secrecy::SecretString;

use super::{client_config, sim_with_users, user_id};

fn sqlite_config(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        url: SecretString::from(format!("sqlite://{}/graph.db", dir.path().display())),
        ..StoreConfig::default()
    }
}

async fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    store::open(&sqlite_config(dir)).await.expect("store opens")
}

#[tokio::test]
async fn licensed_users_are_listed_across_pages_and_filtered() {
    let sim = sim_with_users(1050).await;
    let mut unlicensed = SimUser::licensed(
        "10000000-0000-4000-8000-000000000001",
        "nolic@contoso.example",
    );
    unlicensed.assigned_plans.clear();
    let mut disabled = SimUser::licensed(
        "10000000-0000-4000-8000-000000000002",
        "off@contoso.example",
    );
    disabled.account_enabled = false;
    let mut suspended = SimUser::licensed(
        "10000000-0000-4000-8000-000000000003",
        "susp@contoso.example",
    );
    suspended.assigned_plans[0].capability_status = "Suspended".into();
    for u in [unlicensed, disabled, suspended] {
        sim.state.upsert_user(u);
    }
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let users = client
        .list_teams_users(&client.config().teams_service_plan_ids)
        .await
        .unwrap();
    assert_eq!(users.len(), 1050);
    assert_eq!(sim.state.request_count("/v1.0/users"), 2, "999 + 51");
    let u = users.iter().find(|u| u.id == user_id(3)).unwrap();
    assert_eq!(
        u.user_principal_name.as_deref(),
        Some("user3@contoso.example")
    );
    assert_eq!(
        u.business_phones.as_deref(),
        Some(&["+1 425 555 0100".to_owned()][..])
    );
}

#[tokio::test]
async fn delta_keeps_the_store_current_and_survives_link_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let sim = sim_with_users(3).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let sync = DirectorySync::new(client.clone(), store.clone());

    let r = sync.run_once().await.unwrap();
    assert!(r.full);
    assert_eq!(r.upserted, 3);
    let link1 = store
        .get_kv(DELTA_LINK_KEY)
        .await
        .unwrap()
        .expect("delta link stored");

    // An agent match made elsewhere survives the sync.
    let mut u0 = store.get_user(&user_id(0)).await.unwrap();
    u0.cc_connector = Some("cc".into());
    u0.cc_agent_id = Some("agent-0".into());
    store.upsert_users(&[u0]).await.unwrap();

    sim.state
        .upsert_user(SimUser::licensed(&user_id(10), "new@contoso.example"));
    sim.state
        .update_user(&user_id(1), |u| u.assigned_plans.clear());
    sim.state.delete_user(&user_id(2));
    sim.state
        .update_user(&user_id(0), |u| u.mobile_phone = Some("+1 555 0199".into()));

    // A restart: a new sync object picks up the stored link.
    let sync = DirectorySync::new(client.clone(), store.clone());
    let r = sync.run_once().await.unwrap();
    assert!(!r.full);
    assert_eq!((r.upserted, r.deactivated), (2, 2));
    let link2 = store.get_kv(DELTA_LINK_KEY).await.unwrap().unwrap();
    assert_ne!(link1, link2);
    let users = store.list_users().await.unwrap();
    let active: Vec<&str> = users
        .iter()
        .filter(|u| u.active)
        .map(|u| u.teams_id.as_str())
        .collect();
    assert_eq!(active, [user_id(0), user_id(10)]);
    let u0 = store.get_user(&user_id(0)).await.unwrap();
    assert_eq!(u0.mobile_phone.as_deref(), Some("+1 555 0199"));
    assert_eq!(u0.cc_agent_id.as_deref(), Some("agent-0"));

    // The link expires: a full resync, which also catches what changed meanwhile.
    sim.state.expire_delta_links();
    sim.state
        .update_user(&user_id(10), |u| u.account_enabled = false);
    let r = sync.run_once().await.unwrap();
    assert!(r.full);
    assert_eq!(r.deactivated, 1);
    assert_ne!(store.get_kv(DELTA_LINK_KEY).await.unwrap().unwrap(), link2);
    assert!(!store.get_user(&user_id(10)).await.unwrap().active);
}

#[tokio::test(start_paused = true)]
async fn batches_hold_twenty_and_retry_only_the_failed_items() {
    let sim = sim_with_users(45).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let mut writes: Vec<PresenceWrite> = (0..45)
        .map(|i| PresenceWrite::Set {
            user_id: user_id(i),
            availability: "Busy".into(),
            activity: "InACall".into(),
            expiration: Duration::from_secs(3600),
        })
        .collect();
    writes.push(PresenceWrite::Set {
        user_id: user_id(0),
        availability: "Busy".into(),
        activity: "Busy".into(),
        expiration: Duration::from_secs(3600),
    });
    writes.push(PresenceWrite::Clear {
        user_id: user_id(44),
    });
    writes.push(PresenceWrite::Clear {
        user_id: user_id(44),
    });
    sim.state.inject_fault(FaultRule {
        path_contains: "/presence/setPresence".into(),
        remaining: 2,
        kind: FaultKind::Status {
            status: 429,
            retry_after_secs: Some(7),
        },
    });
    let start = tokio::time::Instant::now();
    let results = client.write_presence_batch(&writes).await;
    assert!(start.elapsed() >= Duration::from_secs(7));
    assert!(results[..45].iter().all(Result::is_ok));
    assert!(
        results[45]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("allowed pairs")
    );
    assert!(
        results[46].is_ok() && results[47].is_ok(),
        "second clear is a 404: success"
    );
    // 47 valid items in 3 batches, plus one retry batch carrying the 2 throttled items.
    assert_eq!(sim.state.request_count("$batch"), 4);
    assert_eq!(sim.state.request_count("/presence/setPresence"), 47);
    let sets = sim
        .state
        .writes()
        .iter()
        .filter(|w| w.call == "setPresence")
        .count();
    assert_eq!(sets, 45);
}

/// A delta reads the stored records of the users it names, not every user: at 100,000 people
/// each minute's delta, empty or not, read all of them (a second of SQL and ~70 MB).
#[tokio::test]
async fn a_delta_sync_reads_only_the_users_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let (store, counts) = crate::engine::RealTimeStore::open_counted(sqlite_config(&dir));
    let reads = || counts.full.load(std::sync::atomic::Ordering::SeqCst);
    let sim = sim_with_users(3).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let sync = DirectorySync::new(client, store.clone());
    assert!(sync.run_once().await.unwrap().full);
    let after_full = reads();

    let r = sync.run_once().await.unwrap();
    assert_eq!((r.full, r.upserted), (false, 0));
    assert_eq!(reads(), after_full, "an empty delta read every user");

    sim.state
        .upsert_user(SimUser::licensed(&user_id(2), "renamed2@contoso.example"));
    let r = sync.run_once().await.unwrap();
    assert_eq!((r.full, r.upserted), (false, 1));
    assert_eq!(reads(), after_full, "a delta of one user read every user");
    let u = store.get_user(&user_id(2)).await.unwrap();
    assert_eq!(u.upn, "renamed2@contoso.example");
}

/// A full resync (a restart without a delta link, or an expired one) reads the stored users a
/// page at a time: it read every stored record at once and held them through the whole
/// listing (at 100,000 people, tens of MB on top of the listing itself). Matches made since
/// the last sync are kept; a user the listing no longer shows is deactivated.
#[tokio::test]
async fn a_full_resync_holds_a_page_of_stored_users_not_all_of_them() {
    // More than one page of stored users and of Graph's listing.
    const N: usize = 2_500;
    let dir = tempfile::tempdir().unwrap();
    let (store, counts) = crate::engine::RealTimeStore::open_counted(sqlite_config(&dir));
    let sim = sim_with_users(N).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let sync = DirectorySync::new(client, store.clone());
    assert!(sync.run_once().await.unwrap().full);
    let matched = UserMatch {
        teams_id: user_id(7),
        connector: Some("cc".into()),
        agent_id: Some("agent-7".into()),
    };
    assert_eq!(
        store
            .set_user_matches(&[matched], Utc::now())
            .await
            .unwrap(),
        1
    );

    sim.state.delete_user(&user_id(3));
    sim.state
        .update_user(&user_id(7), |u| u.mobile_phone = Some("+1 555 0107".into()));
    sim.state.expire_delta_links();
    counts.largest.store(0, Ordering::SeqCst);
    let r = sync.run_once().await.unwrap();
    assert_eq!((r.full, r.upserted, r.deactivated), (true, N - 1, 1));
    let largest = counts.largest.load(Ordering::SeqCst);
    assert!(
        largest <= store::USER_PAGE as usize,
        "one read returned {largest} stored users"
    );
    let u7 = store.get_user(&user_id(7)).await.unwrap();
    assert_eq!(
        (u7.cc_agent_id.as_deref(), u7.mobile_phone.as_deref()),
        (Some("agent-7"), Some("+1 555 0107"))
    );
    assert!(!store.get_user(&user_id(3)).await.unwrap().active);
}

#[tokio::test]
async fn only_a_sync_that_changed_someone_wakes_the_poller() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir).await;
    let sim = sim_with_users(3).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let changes = ScopeChanges::default();
    let mut poller = changes.subscribe();
    let sync = DirectorySync::new(client, store).with_changes(changes);

    sync.run_once().await.unwrap();
    assert!(poller.has_changed().unwrap(), "the first (full) sync");
    poller.mark_unchanged();

    // A delta with nothing in it: the scope is as it was.
    let r = sync.run_once().await.unwrap();
    assert_eq!((r.full, r.upserted, r.deactivated), (false, 0, 0));
    assert!(!poller.has_changed().unwrap(), "an empty delta");

    sim.state.delete_user(&user_id(1));
    sync.run_once().await.unwrap();
    assert!(
        poller.has_changed().unwrap(),
        "a delta that deactivated someone"
    );
}
