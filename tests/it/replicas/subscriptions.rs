//! Three replicas with Teams presence by webhook (hybrid mode) behind a load balancer: the
//! owner of the `graph_presence` lease made one presence subscription per shard with the sync
//! accounts; it is killed with `kill -9`, another replica takes the lease, and the tenant
//! still holds exactly one live subscription per shard at every moment: the new owner adopts
//! (renews) the subscriptions recorded in the shared database instead of making new ones.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use presence_bridge::cli::demo::{DEMO_CONNECTOR, demo_user_id};
use presence_bridge::graph::accounts::AccountTokens;
use presence_bridge::graph::config::GraphConfig;
use presence_bridge::sim::graph::{SimGraph, SimUser};
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::{self, UserRecord};
use secrecy::SecretString;

use super::harness::{Replicas, TestDatabase, Traffic, WAIT};
use crate::graph_notify::fixture;

const AGENTS: usize = 12;
/// Four people per subscription: three shards, one per sync account.
const SHARD_SIZE: usize = 4;
const ACCOUNTS: usize = AGENTS / SHARD_SIZE;
const LEASE_SECS: u64 = 4;
const PACE: Duration = Duration::from_millis(150);

fn encryption_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([5u8; 32])
}

/// A load balancer in front of the replicas: each request goes to the next running replica
/// (round robin); a replica that does not answer is skipped, as a health-checking balancer
/// would. Graph's validation handshakes and notifications reach the replicas through it.
async fn start_balancer(backends: Arc<Mutex<Vec<Option<String>>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let forward = move |method: axum::http::Method,
                        uri: axum::http::Uri,
                        mut headers: axum::http::HeaderMap,
                        body: axum::body::Bytes| {
        let (http, next, backends) = (http.clone(), next.clone(), backends.clone());
        async move {
            headers.remove(axum::http::header::HOST);
            let live: Vec<String> = backends.lock().unwrap().iter().flatten().cloned().collect();
            let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let first = next.fetch_add(1, Ordering::Relaxed);
            for k in 0..live.len() {
                let base = &live[(first + k) % live.len()];
                let sent = http
                    .request(method.clone(), format!("{base}{path}"))
                    .headers(headers.clone())
                    .body(body.clone())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                if let Ok(res) = sent {
                    let status = res.status();
                    let headers = res.headers().clone();
                    let body = res.bytes().await.unwrap_or_default();
                    return (status, headers, body);
                }
            }
            (
                axum::http::StatusCode::BAD_GATEWAY,
                axum::http::HeaderMap::new(),
                axum::body::Bytes::new(),
            )
        }
    };
    let app = axum::Router::new().fallback(forward);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

/// The people matched to the contact center's agents (what directory sync finds), and
/// `ACCOUNTS` signed-in sync accounts, stored in the shared database before any replica
/// starts; the replicas' `[graph]` section for hybrid mode with rich notifications.
async fn prepare(r: &mut Replicas) {
    let cfg = StoreConfig {
        url: SecretString::from(r.db.as_ref().expect("database").url.clone()),
        ..StoreConfig::default()
    };
    let store = store::open(&cfg).await.unwrap();
    let now = chrono::Utc::now();
    let people: Vec<UserRecord> = (1..=AGENTS)
        .map(|i| UserRecord {
            teams_id: demo_user_id(i),
            upn: format!("agent{i}@example.com"),
            mail: None,
            display_name: Some(format!("Agent {i}")),
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: Some(DEMO_CONNECTOR.into()),
            cc_agent_id: Some(format!("agent-{i}")),
            active: true,
            updated_at: now,
        })
        .collect();
    store.upsert_users(&people).await.unwrap();
    let graph = GraphConfig {
        token_encryption_key: Some(SecretString::from(encryption_key())),
        ..crate::graph::client_config(&r.graph)
    };
    let tokens = AccountTokens::new(&graph, store.clone(), None).unwrap();
    for i in 0..ACCOUNTS {
        let upn = format!("svc-presence-{i}@example.com");
        r.graph.state.upsert_user(SimUser::licensed(
            &format!("50000000-0000-4000-8000-{i:012}"),
            &upn,
        ));
        let sim = r.graph.state.clone();
        tokens
            .add_account(|p| assert!(sim.approve_device_code(&p.user_code, &upn)))
            .await
            .expect("sync account signs in");
    }

    r.public_url = Some(start_balancer(r.backends.clone()).await);
    let polled = r.graph.polled_graph_toml();
    assert!(polled.contains("presence_source = \"poll\""));
    r.graph_toml = format!(
        "{}\n[graph.subscriptions]\nshard_size = {SHARD_SIZE}\n\n\
         [[graph.webhook.certificates]]\nid = \"cert-a\"\ncertificate_file = \"{}\"\n\
         private_key_file = \"{}\"\n",
        polled.replace(
            "presence_source = \"poll\"",
            &format!(
                "presence_source = \"hybrid\"\ntoken_encryption_key = \"{}\"",
                encryption_key()
            ),
        ),
        fixture("notify-cert-1.pem").display(),
        fixture("notify-key-1.pem").display(),
    );
}

/// The live subscriptions on the tenant: presence ones by the people they cover, and the
/// ids of the `users` ones.
fn live(graph: &SimGraph) -> (BTreeMap<Vec<String>, Vec<String>>, Vec<String>) {
    let now = graph.now();
    let mut shards: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
    let mut users = Vec::new();
    for s in graph
        .subscriptions()
        .into_iter()
        .filter(|s| s.expires_at > now)
    {
        if s.resource.contains("presences") {
            let mut members = s.user_ids.clone();
            members.sort();
            shards.entry(members).or_default().push(s.id);
        } else {
            users.push(s.id);
        }
    }
    (shards, users)
}

/// Samples the tenant's subscriptions until stopped; every sample that is not exactly the
/// subscriptions of `expected` (the same ids, one per shard) is recorded.
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, Vec<String>)>,
}

impl Watch {
    fn start(graph: SimGraph, expected: BTreeSet<String>) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let (mut samples, mut wrong) = (0, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                tick.tick().await;
                samples += 1;
                let (shards, users) = live(&graph);
                let ids: BTreeSet<String> = shards.values().flatten().cloned().collect();
                let doubled = shards.values().any(|ids| ids.len() != 1);
                if (doubled || ids != expected || users.len() != 1) && wrong.len() < 20 {
                    wrong.push(format!("shards {shards:?}, users {users:?}"));
                }
            }
            (samples, wrong)
        });
        Watch { stop, task }
    }

    async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_presence_owner_leaves_one_subscription_per_shard_adopted_not_remade() {
    let Some(db) = TestDatabase::create("replicas::subscriptions::kill_9").await else {
        return;
    };
    let mut r = Replicas::new(db, 3, AGENTS, LEASE_SECS).await;
    prepare(&mut r).await;
    r.start_all().await;
    let (owner, token) = r.owner("graph_presence").await.expect("a presence owner");

    // The owner subscribes every shard once, with the sync accounts.
    let deadline = Instant::now() + WAIT;
    let before = loop {
        let (shards, users) = live(&r.graph.state);
        if shards.len() == ACCOUNTS
            && shards.keys().map(Vec::len).sum::<usize>() == AGENTS
            && users.len() == 1
        {
            break shards;
        }
        assert!(
            Instant::now() < deadline,
            "the owner did not subscribe the {ACCOUNTS} shards: {shards:?}\n{}",
            r.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        before.values().all(|ids| ids.len() == 1),
        "one subscription per shard: {before:?}"
    );
    let ids: BTreeSet<String> = before.values().flatten().cloned().collect();
    let created = r.graph.state.subscriptions_created();
    assert_eq!(created as usize, ACCOUNTS + 1, "the shards and `users`");

    r.route_events_to(1);
    let traffic = Traffic::start(&r.cc, AGENTS, PACE);
    let watch = Watch::start(r.graph.state.clone(), ids.clone());
    r.wait_writes_past(20).await;

    let killed_at = chrono::Utc::now();
    r.kill(owner);
    let (next, next_token) = r.wait_owner("graph_presence", Some(owner)).await;
    assert!(next_token > token);

    // The new owner takes over what the database records: it renews each subscription (its
    // first pass applies the notification URL and certificate to every one it did not make).
    let cfg = StoreConfig {
        url: SecretString::from(r.db.as_ref().expect("database").url.clone()),
        ..StoreConfig::default()
    };
    let store = store::open(&cfg).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let records = store.list_subscriptions().await.unwrap();
        let renewed = records
            .iter()
            .filter(|s| s.last_renewed_at.is_some_and(|t| t > killed_at))
            .count();
        if renewed == records.len() && records.len() == ACCOUNTS + 1 {
            let stored: BTreeSet<String> = records
                .iter()
                .filter(|s| s.kind == "presence")
                .map(|s| s.id.clone())
                .collect();
            assert_eq!(stored, ids, "the database records the same subscriptions");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica {next} did not renew the subscriptions: {records:?}\n{}",
            r.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Notifications keep arriving through the balancer at the surviving replicas.
    let delivered = r.graph.state.deliveries();
    let deadline = Instant::now() + WAIT;
    while r.graph.state.deliveries() <= delivered {
        assert!(Instant::now() < deadline, "no notification delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let expected = traffic.stop().await;
    r.wait_settled(&expected).await;
    let (samples, wrong) = watch.stop().await;
    eprintln!(
        "kill -9 of replica {owner}: replica {next} owns graph_presence (token {next_token}); \
         {samples} samples of the tenant's subscriptions"
    );
    assert!(
        wrong.is_empty(),
        "the tenant's subscriptions were not one per shard throughout:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        r.graph.state.subscriptions_created(),
        created,
        "the new owner made no subscription"
    );
    let (after, users) = live(&r.graph.state);
    assert_eq!(after, before, "the same subscription per shard at the end");
    assert_eq!(users.len(), 1);
    r.finish().await;
}
