//! The Graph client and the poller against the simulated tenant on loopback: reads that keep
//! what they can, throttling that holds the whole API family back, and readiness that follows
//! what the calls meet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use presence_bridge::graph::config::GraphConfig;
use presence_bridge::graph::notifications::config::{PollConfig, PresenceSource};
use presence_bridge::graph::presence::memory::PresenceMemory;
use presence_bridge::graph::presence::poller::Poller;
use presence_bridge::graph::{GraphClient, PresenceApi};
use presence_bridge::model::health::{HealthRegistry, HealthState};
use presence_bridge::sim::graph::{FaultKind, FaultRule, SimGraph, SimGraphOptions, SimUser};
use presence_bridge::store::inbox::Inbox;
use presence_bridge::store::{self, UserRecord};
use presence_bridge::telemetry::Metrics;
use secrecy::SecretString;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::graph::{client_config, sim_with_users, user_id};

/// The `graph` readiness component's state.
fn graph_state(health: &HealthRegistry) -> Option<HealthState> {
    health.get("graph").map(|c| c.state)
}

/// Requests the simulated tenant received, with the (tokio) time each arrived.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, Instant)>>,
    arrived: tokio::sync::Notify,
}

impl Recorder {
    fn times(&self, needle: &str) -> Vec<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p.contains(needle))
            .map(|(_, t)| *t)
            .collect()
    }

    /// Waits until `n` requests to a path containing `needle` arrived.
    async fn wait_for(&self, needle: &str, n: usize) -> Vec<Instant> {
        loop {
            let arrived = self.arrived.notified();
            let times = self.times(needle);
            if times.len() >= n {
                return times;
            }
            arrived.await;
        }
    }
}

/// Serves the simulated tenant `sim` on `listener`, recording each request's arrival.
fn serve(sim: SimGraph, listener: tokio::net::TcpListener, rec: Arc<Recorder>) {
    let app = presence_bridge::sim::graph::router(sim).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let rec = rec.clone();
            async move {
                rec.seen
                    .lock()
                    .unwrap()
                    .push((req.uri().path().to_owned(), Instant::now()));
                rec.arrived.notify_waiters();
                next.run(req).await
            }
        },
    ));
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// A simulated tenant with `users` licensed users on loopback, recorded.
async fn recorded_sim(users: usize) -> (SimGraph, GraphConfig, Arc<Recorder>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let sim = SimGraph::new(SimGraphOptions::default(), origin.clone());
    for i in 0..users {
        sim.upsert_user(SimUser::licensed(
            &user_id(i),
            &format!("u{i}@contoso.example"),
        ));
    }
    let rec = Arc::new(Recorder::default());
    serve(sim.clone(), listener, rec.clone());
    let o = &sim.options;
    let cfg = GraphConfig {
        tenant_id: Some(o.tenant_id.clone()),
        client_id: Some(o.client_id.clone()),
        client_secret: o.client_secret.clone().map(SecretString::from),
        base_url: format!("{origin}/v1.0").parse().unwrap(),
        authority_url: origin.parse().unwrap(),
        ..GraphConfig::default()
    };
    (sim, cfg, rec)
}

/// A non-GUID id used to make `getPresencesByUserId` answer 400 and the whole claimed batch
/// (57 users in one case) was dropped. Now the id is left out and the others are read; a 400
/// Graph gives for the whole call is narrowed down by halving.
#[tokio::test]
async fn one_bad_user_id_costs_only_itself_in_a_coalesced_read() {
    let sim = sim_with_users(57).await;
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let mut ids: Vec<String> = (0..57).map(user_id).collect();
    ids.insert(20, "not-a-user-id".into());
    let got = client
        .get_presences(&ids)
        .await
        .expect("the read keeps what it can");
    assert_eq!(got.len(), 57);
    assert!(got.iter().all(|(id, _)| id != "not-a-user-id"));

    // An id that looks right but that Graph refuses: the call answers 400 as a whole.
    sim.state.inject_fault(FaultRule {
        path_contains: "getPresencesByUserId".into(),
        remaining: 1,
        kind: FaultKind::Status {
            status: 400,
            retry_after_secs: None,
        },
    });
    let before = sim.state.request_count("getPresencesByUserId");
    let got = client
        .get_presences(&ids)
        .await
        .expect("the read keeps what it can");
    assert_eq!(got.len(), 57);
    assert_eq!(
        sim.state.request_count("getPresencesByUserId") - before,
        3,
        "the refused call, then each half"
    );
}

/// `Retry-After: 8` with `max_retry_after_secs = 5`: the client handed the throttle back and
/// the poller polled again 2 s later. No request of the family may leave before 8 s: the
/// client holds the family's limiter back for the whole `Retry-After`.
#[tokio::test]
async fn a_retry_after_beyond_the_cap_holds_back_the_next_poll() {
    // The store is set up on the real clock (SQLite works on its own threads, and a paused
    // clock would time its pool out); the rest runs on a paused one.
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&crate::helpers::test_config(&dir).store)
        .await
        .unwrap();
    store
        .upsert_users(&[UserRecord {
            teams_id: user_id(0),
            upn: "u0@contoso.example".into(),
            mail: None,
            display_name: None,
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: None,
            cc_agent_id: None,
            active: true,
            updated_at: chrono::Utc::now(),
        }])
        .await
        .unwrap();
    tokio::time::pause();
    let (sim, mut cfg, rec) = recorded_sim(1).await;
    cfg.max_retry_after_secs = 5;
    let client = GraphClient::new(&cfg, None).unwrap();
    sim.inject_fault(FaultRule {
        path_contains: "getPresencesByUserId".into(),
        remaining: 1,
        kind: FaultKind::Status {
            status: 429,
            retry_after_secs: Some(8),
        },
    });
    let poller = Poller {
        api: Arc::new(client),
        inbox: Inbox::new(store.clone()),
        store,
        memory: PresenceMemory::new(),
        coverage: None,
        mode: PresenceSource::Poll,
        cfg: PollConfig {
            interval_secs: 2,
            ..PollConfig::default()
        },
        metrics: Metrics::new(),
        scope: presence_bridge::engine::config::PresenceScope::all(),

        changes: Default::default(),
    };
    let cancel = CancellationToken::new();
    let users = vec![user_id(0)];
    let err = poller.poll_users(&users, &cancel).await.unwrap_err();
    assert!(err.to_string().contains("throttled"), "{err}");
    // The poller's next round comes on its own schedule, 2 s later.
    tokio::time::advance(Duration::from_secs(2)).await;
    // Its outcome does not matter here (the inbox write runs on a paused clock); when the
    // read reached Graph does.
    let _ = poller.poll_users(&users, &cancel).await;
    let times = rec.wait_for("getPresencesByUserId", 2).await;
    assert!(
        times[1] - times[0] >= Duration::from_secs(8),
        "next read {:?} after the 429 asking for 8 s",
        times[1] - times[0]
    );
}

/// Readiness said "up" through a 20 s total outage: only token refreshes reported the
/// `graph` component. Calls now report it: connection refused and 5xx bring it down, an
/// answer brings it back up.
#[tokio::test(start_paused = true)]
async fn graph_readiness_follows_the_calls_through_an_outage() {
    let (sim, mut cfg, _rec) = recorded_sim(1).await;
    // Tokens come from the tenant; Graph itself is at a port where nothing listens yet.
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let graph_addr = spare.local_addr().unwrap();
    drop(spare);
    cfg.base_url = format!("http://{graph_addr}/v1.0").parse().unwrap();
    let health = HealthRegistry::new();
    let client = GraphClient::new(&cfg, Some(health.clone())).unwrap();
    let ids = vec![user_id(0)];

    client
        .get_presences(&ids)
        .await
        .expect_err("connection refused");
    assert_eq!(graph_state(&health), Some(HealthState::Down));

    // Graph comes back.
    let listener = tokio::net::TcpListener::bind(graph_addr).await.unwrap();
    serve(sim.clone(), listener, Arc::new(Recorder::default()));
    client
        .get_presences(&ids)
        .await
        .expect("Graph answers again");
    assert_eq!(graph_state(&health), Some(HealthState::Up));

    // A run of 5xx: down once the retries are spent; up at the next answer.
    sim.inject_fault(FaultRule {
        path_contains: "getPresencesByUserId".into(),
        remaining: 5,
        kind: FaultKind::Status {
            status: 502,
            retry_after_secs: None,
        },
    });
    client
        .get_presences(&ids)
        .await
        .expect_err("5xx after the retries");
    assert_eq!(graph_state(&health), Some(HealthState::Down));
    client
        .get_presences(&ids)
        .await
        .expect("Graph answers again");
    assert_eq!(graph_state(&health), Some(HealthState::Up));
}
