//! The sync scope against the simulated tenant: presence subscriptions and polling cover the
//! users matched to an agent (not every licensed user), `sync.include` adds people by Entra
//! group (members read transitively) and UPN, `sync.exclude` removes people, and the shards
//! follow the matches without churn. The management API lists agents without a Teams user.

use std::collections::BTreeMap;
use std::sync::Arc;

use presence_bridge::engine::config::{PresenceScope, ScopeList, ScopeMode};
use presence_bridge::graph::GraphClient;
use presence_bridge::graph::directory::DirectorySync;
use presence_bridge::graph::notifications::config::{PollConfig, PresenceSource};
use presence_bridge::graph::presence::memory::PresenceMemory;
use presence_bridge::graph::presence::poller::Poller;
use presence_bridge::graph::scope::scoped_user_ids;
use presence_bridge::graph::subscriptions::api::presence_resource_ids;
use presence_bridge::sim::graph::{SimGraphOptions, SimUser, spawn};
use presence_bridge::store::inbox::Inbox;
use presence_bridge::store::{self, AgentRecord, Store, UserRecord};
use presence_bridge::telemetry::Metrics;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::graph::{client_config, user_id};
use crate::graph_notify::cert_config;
use crate::graph_notify::e2e::Env;

const LICENSED: usize = 10_000;
const AGENTS: usize = 700;

/// Users `0..matched` keep their agent; the others are licensed but matched to nobody.
async fn match_only(store: &Arc<dyn Store>, matched: usize) {
    let users: Vec<UserRecord> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|mut u| {
            let i: usize = u.teams_id[24..].parse().unwrap();
            (u.cc_connector, u.cc_agent_id) = if i < matched {
                (Some("cc".into()), Some(format!("agent-{i}")))
            } else {
                (None, None)
            };
            u
        })
        .collect();
    store.upsert_users(&users).await.unwrap();
}

/// Subscription id → the user ids it covers.
fn live_shards(env: &Env) -> BTreeMap<String, Vec<String>> {
    env.live_presence_subscriptions()
        .into_iter()
        .map(|s| {
            let mut ids = presence_resource_ids(&s.resource);
            ids.sort();
            (s.id, ids)
        })
        .collect()
}

#[tokio::test]
async fn ten_thousand_licensed_and_700_agents_need_two_subscriptions_and_one_more_changes_one() {
    let env = Env::with_users(LICENSED, 2).await;
    match_only(&env.store, AGENTS).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut d = env
        .daemon_on(listener, vec![cert_config(1, "cert-a")])
        .await;
    let parts = d.parts();
    let manager = parts.manager.expect("hybrid mode has a manager");

    let cov = manager.reconcile().await.unwrap();
    assert_eq!((cov.shards, cov.accounts_missing, cov.failing), (2, 0, 0));
    let before = live_shards(&env);
    assert_eq!(before.len(), 2, "ceil(700 / 650) subscriptions, not 16");
    let covered: Vec<&String> = before.values().flatten().collect();
    assert_eq!(covered.len(), AGENTS);
    assert!(
        covered
            .iter()
            .all(|u| u[24..].parse::<usize>().unwrap() < AGENTS)
    );

    // One more agent is matched: one shard changes, the other keeps its subscription.
    match_only(&env.store, AGENTS + 1).await;
    manager.reconcile().await.unwrap();
    let after = live_shards(&env);
    assert_eq!(after.len(), 2);
    let kept = before
        .iter()
        .filter(|(id, m)| after.get(*id) == Some(m))
        .count();
    assert_eq!(
        kept, 1,
        "exactly one shard changed: {before:?} -> {after:?}"
    );
    assert!(after.values().flatten().any(|u| *u == user_id(AGENTS)));
    assert_eq!(after.values().map(Vec::len).sum::<usize>(), AGENTS + 1);

    // The poller reads the same population: 701 users in two getPresencesByUserId calls.
    let calls = env.sim.state.request_count("getPresencesByUserId");
    parts
        .poller
        .poll_all(&CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        env.sim.state.request_count("getPresencesByUserId") - calls,
        2,
        "ceil(701 / 650) reads, not 16"
    );
    d.shutdown().await;
}

/// A tenant of 300 licensed users: 0..10 are agents; group "experts" holds 150 users (more
/// than a page) through a nested group; "leave" excludes one agent.
#[tokio::test]
async fn include_and_exclude_by_group_and_upn_reach_the_poller() {
    const EXPERTS: &str = "6f1c1a5e-0000-4000-8000-00000000e001";
    const NESTED: &str = "6f1c1a5e-0000-4000-8000-00000000e002";
    const LEAVE: &str = "6f1c1a5e-0000-4000-8000-00000000e003";
    let sim = spawn(SimGraphOptions::default()).await;
    for i in 0..300 {
        sim.state.upsert_user(SimUser::licensed(
            &user_id(i),
            &format!("user{i}@contoso.example"),
        ));
    }
    sim.state.set_group(
        EXPERTS,
        std::iter::once(NESTED.to_owned())
            .chain((100..110).map(user_id))
            .collect(),
    );
    sim.state
        .set_group(NESTED, (110..250).map(user_id).collect());
    sim.state.set_group(LEAVE, vec![user_id(3)]);

    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::helpers::test_config(&dir);
    let store = store::open(&cfg.store).await.unwrap();
    let client = GraphClient::new(&client_config(&sim), None).unwrap();
    let scope = PresenceScope {
        mode: ScopeMode::Matched,
        include: ScopeList {
            groups: vec![EXPERTS.into()],
            upns: vec!["USER290@contoso.example".into()],
        },
        exclude: ScopeList {
            groups: vec![LEAVE.into()],
            upns: vec![
                "user4@contoso.example".into(),
                "user120@contoso.example".into(),
            ],
        },
    };
    DirectorySync::new(client.clone(), store.clone())
        .with_scope(scope.clone())
        .run_once()
        .await
        .unwrap();
    // Agents 0..10 matched (as the matching pass records it).
    let users: Vec<UserRecord> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.teams_id[24..].parse::<usize>().unwrap() < 10)
        .map(|mut u| {
            u.cc_connector = Some("cc".into());
            u.cc_agent_id = Some(format!("agent-{}", &u.teams_id[24..]));
            u
        })
        .collect();
    store.upsert_users(&users).await.unwrap();
    assert_eq!(
        store.list_users().await.unwrap().len(),
        300,
        "the directory lists everyone"
    );

    let mut want: Vec<String> = (0..10)
        .filter(|i| ![3, 4].contains(i))
        .chain((100..250).filter(|i| *i != 120))
        .chain([290])
        .map(user_id)
        .collect();
    want.sort();
    let got = scoped_user_ids(store.as_ref(), &scope).await.unwrap();
    assert_eq!(got, want);
    assert!(
        sim.state.request_count("transitiveMembers") >= 3,
        "the 150 experts came over two pages"
    );

    // The poller reads exactly these users.
    let poller = Poller {
        api: Arc::new(client),
        inbox: Inbox::new(store.clone()),
        store: store.clone(),
        memory: PresenceMemory::new(),
        coverage: None,
        mode: PresenceSource::Poll,
        cfg: PollConfig::default(),
        metrics: Metrics::new(),
        scope,

        changes: Default::default(),
    };
    poller.poll_all(&CancellationToken::new()).await.unwrap();
    let items = store.inbox_claim(1000, 30).await.unwrap();
    let mut polled: Vec<String> = items.iter().filter_map(|i| i.user_id.clone()).collect();
    polled.sort();
    polled.dedup();
    assert_eq!(polled, want);

    // A group that cannot be read keeps its last known members.
    sim.state.lock().groups.remove(EXPERTS);
    let again = DirectorySync::new(
        GraphClient::new(&client_config(&sim), None).unwrap(),
        store.clone(),
    )
    .with_scope(poller.scope.clone());
    again.run_once().await.unwrap();
    assert_eq!(
        scoped_user_ids(store.as_ref(), &poller.scope)
            .await
            .unwrap(),
        want
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_users_api_lists_agents_without_a_teams_user() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::helpers::test_config(&dir);
    cfg.api.bearer_token = Some(secrecy::SecretString::from("t0ken"));
    let app = crate::helpers::spawn_app_with(cfg, dir).await;
    let now = chrono::Utc::now();
    app.store
        .upsert_users(&[UserRecord {
            teams_id: "t1".into(),
            upn: "ann@example.com".into(),
            mail: None,
            display_name: Some("Ann".into()),
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: Some("cc".into()),
            cc_agent_id: Some("a1".into()),
            active: true,
            updated_at: now,
        }])
        .await
        .unwrap();
    let agent = |id: &str, name: &str| AgentRecord {
        connector: "cc".into(),
        agent_id: id.into(),
        email: Some(format!("{id}@example.com")),
        username: None,
        display_name: Some(name.into()),
        updated_at: now,
    };
    app.store
        .replace_agents("cc", &[agent("a1", "Ann"), agent("a2", "Bo")])
        .await
        .unwrap();
    let body: Value = app
        .client
        .get(format!("{}/api/v1/users", app.address))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{body}");
    assert_eq!(users[0]["teams_id"], "t1");
    assert_eq!(users[0]["cc_agent_id"], "a1");
    assert_eq!(users[1]["teams_id"], Value::Null);
    assert_eq!(users[1]["cc_agent_id"], "a2");
    assert_eq!(users[1]["display_name"], "Bo");
    assert_eq!(users[1]["sync_state"], "no_teams_user");
    app.shutdown().await;
}
