//! Daemon ↔ simulated tenant over HTTP: the subscription manager creates, renews, recreates
//! and adopts subscriptions; the simulator delivers rich notifications to the daemon's webhook;
//! uncovered shards are polled. Simulated hours pass by advancing both clocks.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use presence_bridge::app::{Application, NotifyParts};
use presence_bridge::graph::accounts::AccountTokens;
use presence_bridge::graph::config::GraphConfig;
use presence_bridge::graph::notifications::NotificationReceiver;
use presence_bridge::graph::notifications::config::{CertificateConfig, PresenceSource};
use presence_bridge::graph::subscriptions::HEALTH_COMPONENT;
use presence_bridge::model::clock::Clock;
use presence_bridge::model::health::{HealthRegistry, HealthState};
use presence_bridge::sim::graph::subscriptions::SimSubscription;
use presence_bridge::sim::graph::{SimGraphHandle, SimGraphOptions, SimUser, spawn};
use presence_bridge::store::{self, Store, UserRecord};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::cert_config;
use crate::graph::{client_config, user_id};

const USERS: usize = 1300;

fn account_upn(i: usize) -> String {
    format!("svc-presence-{i}@contoso.example")
}

/// A simulated tenant with users and signed-in sync accounts, a store, and a port for the
/// daemon; shared with the subscription tests of the hostile suite.
pub(crate) struct Env {
    pub(crate) sim: SimGraphHandle,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) graph: GraphConfig,
    pub(crate) clock: Clock,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
}

/// The daemon's HTTP side on `port`; its subscription manager and poller are driven by the
/// test.
pub(crate) struct Daemon {
    health: HealthRegistry,
    notifications: NotificationReceiver,
    parts: Option<NotifyParts>,
    url: String,
    pub(crate) port: u16,
    stop: CancellationToken,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    pub(crate) fn parts(&mut self) -> NotifyParts {
        self.parts.take().expect("graph parts are taken once")
    }

    /// Stops serving and waits until the port is free.
    pub(crate) async fn shutdown(self) {
        self.stop.cancel();
        self.join.await.unwrap().unwrap();
    }
}

impl Env {
    async fn new(accounts: usize) -> Env {
        Self::with_users(USERS, accounts).await
    }

    /// `users` licensed users, known to the store, and `accounts` signed-in sync accounts;
    /// Graph in hybrid mode.
    pub(crate) async fn with_users(users: usize, accounts: usize) -> Env {
        // Tokens outlive the simulated hours (the clock jumps; token refresh is tested elsewhere).
        let sim = spawn(SimGraphOptions {
            token_lifetime_secs: 30 * 24 * 3600,
            ..SimGraphOptions::default()
        })
        .await;
        for i in 0..users {
            sim.state.upsert_user(SimUser::licensed(
                &user_id(i),
                &format!("user{i}@contoso.example"),
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::helpers::test_config(&dir);
        let store = store::open(&cfg.store).await.unwrap();
        let now = chrono::Utc::now();
        // Every user is matched to an agent, so all are in the default sync scope.
        let records: Vec<UserRecord> = (0..users)
            .map(|i| UserRecord {
                teams_id: user_id(i),
                upn: format!("user{i}@contoso.example"),
                mail: None,
                display_name: None,
                business_phones: vec![],
                mobile_phone: None,
                cc_connector: Some("cc".into()),
                cc_agent_id: Some(format!("agent-{i}")),
                active: true,
                updated_at: now,
            })
            .collect();
        store.upsert_users(&records).await.unwrap();
        let graph = GraphConfig {
            token_encryption_key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
            )),
            presence_source: Some(PresenceSource::Hybrid),
            ..client_config(&sim)
        };
        let tokens = AccountTokens::new(&graph, store.clone(), None).unwrap();
        for i in 0..accounts {
            let upn = account_upn(i);
            sim.state.upsert_user(SimUser::licensed(
                &format!("50000000-0000-4000-8000-{i:012}"),
                &upn,
            ));
            let s = sim.state.clone();
            tokens
                .add_account(|p| assert!(s.approve_device_code(&p.user_code, &upn)))
                .await
                .expect("sync account signs in");
        }
        let port = crate::helpers::port_for_restarts();
        Env {
            sim,
            store,
            graph,
            clock: Clock::new(),
            dir,
            port,
        }
    }

    /// Starts (or restarts) the daemon's HTTP side on the same port.
    async fn daemon(&self) -> Daemon {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.daemon_on(listener, vec![cert_config(1, "cert-a")])
            .await
    }

    /// Starts the daemon's HTTP side on `listener` (its public URL) with these certificates
    /// (first = current), its manager and poller left to the test.
    pub(crate) async fn daemon_on(
        &self,
        listener: tokio::net::TcpListener,
        certificates: Vec<CertificateConfig>,
    ) -> Daemon {
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let mut cfg = crate::helpers::test_config(&self.dir);
        cfg.graph = self.graph.clone();
        cfg.graph.webhook.certificates = certificates;
        cfg.server.public_url = Some(url.parse().unwrap());
        let mut app = Application::builder(cfg)
            .listener(listener)
            .store(self.store.clone())
            .clock(self.clock.clone())
            .without_jobs()
            .build()
            .await
            .expect("daemon builds");
        let (health, notifications) = (app.health().clone(), app.notifications().clone());
        let parts = app.take_graph_parts();
        let stop = app.cancel_token();
        let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
        Daemon {
            health,
            notifications,
            parts,
            url,
            port,
            stop,
            join,
        }
    }

    /// Simulated time passes for the daemon and the tenant alike.
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.sim.state.advance(by);
    }

    /// The presence subscriptions Graph holds that have not expired.
    pub(crate) fn live_presence_subscriptions(&self) -> Vec<SimSubscription> {
        let now = self.sim.state.now();
        self.sim
            .state
            .subscriptions()
            .into_iter()
            .filter(|s| s.expires_at > now && s.resource.contains("presences"))
            .collect()
    }

    /// Waits (bounded) until the inbox holds an observation of `user` with `availability`
    /// from `source`; takes what it reads.
    pub(crate) async fn await_observation(&self, user: &str, availability: &str, source: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let items = self.store.inbox_claim(1000, 1).await.unwrap();
            let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
            let found = items.iter().any(|i| {
                i.user_id.as_deref() == Some(user)
                    && i.payload["status"]["availability"] == availability
                    && i.payload["source"] == source
            });
            self.store.inbox_ack(&ids).await.unwrap();
            if found {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {source} observation of {user} as {availability}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn two_accounts_cover_1300_users_renew_for_hours_recreate_and_adopt_on_restart() {
    let env = Env::new(2).await;
    let mut d1 = env.daemon().await;
    let parts = d1.parts();
    let manager = parts.manager.expect("hybrid mode has a manager");
    let cov = manager.reconcile().await.unwrap();
    assert_eq!((cov.shards, cov.accounts_missing, cov.failing), (2, 0, 0));
    assert!(cov.uncovered_users.is_empty());
    assert_eq!(env.live_presence_subscriptions().len(), 2);
    // Two presence subscriptions and the users subscription.
    assert_eq!(env.sim.state.subscriptions_created(), 3);
    let stored = env.store.list_subscriptions().await.unwrap();
    assert_eq!(stored.iter().filter(|s| s.kind == "presence").count(), 2);
    assert!(stored.iter().all(|s| s.client_state.len() >= 32));

    // A presence change arrives as a rich notification and reaches the inbox decrypted.
    env.sim
        .state
        .set_user_status(&user_id(700), Some(("Busy", "InACall")));
    env.await_observation(&user_id(700), "Busy", "graph_webhook")
        .await;

    // Three simulated hours: every subscription is renewed before it lapses, none recreated.
    for _ in 0..18 {
        env.advance(Duration::from_secs(600));
        let cov = manager.reconcile().await.unwrap();
        assert_eq!(cov.failing, 0);
        assert_eq!(env.live_presence_subscriptions().len(), 2);
    }
    assert_eq!(env.sim.state.subscriptions_created(), 3);

    // Graph forgets one subscription: the next renewal gets 404 and recreates it.
    let victim = stored
        .iter()
        .find(|s| s.shard == Some(0))
        .unwrap()
        .id
        .clone();
    assert!(env.sim.state.expire_subscription(&victim));
    env.advance(Duration::from_secs(600));
    manager.reconcile().await.unwrap();
    assert_eq!(env.sim.state.subscriptions_created(), 4);
    assert_eq!(env.live_presence_subscriptions().len(), 2);
    let after = env.store.list_subscriptions().await.unwrap();
    assert!(after.iter().all(|s| s.id != victim));

    // Restart: a new daemon on the same port and database adopts both, creating nothing.
    d1.shutdown().await;
    drop(manager);
    let mut d2 = env.daemon().await;
    let manager = d2.parts().manager.unwrap();
    let cov = manager.reconcile().await.unwrap();
    assert_eq!((cov.shards, cov.accounts_missing, cov.failing), (2, 0, 0));
    assert_eq!(
        env.sim.state.subscriptions_created(),
        4,
        "restart created subscriptions"
    );
    env.sim
        .state
        .set_user_status(&user_id(3), Some(("DoNotDisturb", "Presenting")));
    env.await_observation(&user_id(3), "DoNotDisturb", "graph_webhook")
        .await;
    assert_eq!(
        d2.health.get(HEALTH_COMPONENT).unwrap().state,
        HealthState::Up
    );

    // reauthorizationRequired right after a renewal: no second call within 10 minutes; later,
    // a PATCH.
    let mut events = d2.notifications.take_lifecycle_events().unwrap();
    let sub = env.store.list_subscriptions().await.unwrap();
    let sub = sub.iter().find(|s| s.kind == "presence").unwrap();
    let path = format!("/v1.0/subscriptions/{}", sub.id);
    let calls = env.sim.state.request_count(&path);
    for (wait, extra_calls) in [(0, 0), (660, 1)] {
        env.advance(Duration::from_secs(wait));
        let status = env
            .sim
            .state
            .send_lifecycle(&sub.id, "reauthorizationRequired")
            .await;
        assert_eq!(status, Some(202));
        let ev = events.recv().await.unwrap();
        assert_eq!(ev.subscription_id, sub.id);
        manager.on_lifecycle(ev).await;
        assert_eq!(env.sim.state.request_count(&path), calls + extra_calls);
    }

    // Lost local state: creation answers 409 and the existing subscriptions are adopted.
    for s in env.store.list_subscriptions().await.unwrap() {
        env.store.delete_subscription(&s.id).await.unwrap();
    }
    let cov = manager.reconcile().await.unwrap();
    assert_eq!((cov.shards, cov.failing), (2, 0));
    assert_eq!(
        env.sim.state.subscriptions_created(),
        4,
        "adopted, not created"
    );
    assert_eq!(env.live_presence_subscriptions().len(), 2);

    // A user leaves: that shard's subscription is replaced (delete, create), the other kept.
    env.store.deactivate_users(&[user_id(5)]).await.unwrap();
    manager.reconcile().await.unwrap();
    assert_eq!(env.sim.state.subscriptions_created(), 5);
    assert_eq!(env.live_presence_subscriptions().len(), 2);
    let subs = env.store.list_subscriptions().await.unwrap();
    assert!(subs.iter().all(|s| !s.resource.contains(&user_id(5))));
}

#[tokio::test]
async fn one_account_leaves_the_second_shard_polled_and_readiness_says_so() {
    let env = Env::new(1).await;
    let mut d = env.daemon().await;
    let parts = d.parts();
    let manager = parts.manager.unwrap();
    let cov = manager.reconcile().await.unwrap();
    assert_eq!((cov.shards, cov.accounts_missing), (2, 1));
    assert_eq!(cov.uncovered_users.len(), 650);
    assert_eq!(env.live_presence_subscriptions().len(), 1);

    let ready: serde_json::Value = reqwest::get(format!("{}/health/ready", d.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let check = ready["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == HEALTH_COMPONENT)
        .cloned()
        .unwrap_or_else(|| panic!("no {HEALTH_COMPONENT} in {ready}"));
    assert_eq!(check["state"], "degraded");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("1 sync account(s) missing"),
        "{check}"
    );

    // The uncovered shard's users are polled; a change there arrives as a poll observation.
    let polled = cov.uncovered_users[10].clone();
    env.sim
        .state
        .set_user_status(&polled, Some(("Away", "Away")));
    let stored = parts
        .poller
        .poll_uncovered(&CancellationToken::new())
        .await
        .unwrap();
    assert!(stored >= 1);
    env.await_observation(&polled, "Away", "graph_poll").await;
}

#[tokio::test]
async fn the_daemon_polls_presence_when_no_sync_account_exists() {
    let sim = spawn(SimGraphOptions::default()).await;
    sim.state
        .upsert_user(SimUser::licensed(&user_id(1), "user1@contoso.example"));
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::helpers::test_config(&dir);
    cfg.graph = client_config(&sim);
    cfg.graph.poll.interval_secs = 1;
    // No contact center here: read every licensed user's presence.
    cfg.sync.scope = presence_bridge::engine::config::ScopeMode::All;
    let app = crate::helpers::spawn_app_with(cfg, dir).await;
    // Default source without accounts is `poll`: the directory sync fills the store, then the
    // poller reads presence through getPresencesByUserId.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sim.state.request_count("getPresencesByUserId") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the daemon never polled presence"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(app.store.list_subscriptions().await.unwrap().is_empty());
    app.shutdown().await;
}
