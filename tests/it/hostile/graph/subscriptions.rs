//! Presence subscriptions against the simulated tenant: a shard whose subscription vanished
//! is read at once, and a rotated certificate or a moved notification URL reaches
//! subscriptions made before. The daemon's HTTP side runs (it answers the handshakes and
//! receives the notifications); the test drives the subscription manager.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use presence_bridge::app::{Application, NotifyParts};
use presence_bridge::graph::accounts::AccountTokens;
use presence_bridge::graph::config::GraphConfig;
use presence_bridge::graph::notifications::config::{CertificateConfig, PresenceSource};
use presence_bridge::model::clock::Clock;
use presence_bridge::sim::graph::subscriptions::SimSubscription;
use presence_bridge::sim::graph::{SimGraphHandle, SimGraphOptions, SimUser, spawn};
use presence_bridge::store::{self, Store, UserRecord};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::graph::{client_config, user_id};
use crate::graph_notify::cert_config;

const USERS: usize = 3;

struct Env {
    sim: SimGraphHandle,
    store: Arc<dyn Store>,
    graph: GraphConfig,
    clock: Clock,
    dir: tempfile::TempDir,
}

/// The daemon's HTTP side; its manager and poller are in `parts`.
struct Daemon {
    parts: NotifyParts,
    port: u16,
    stop: CancellationToken,
    join: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Stops a daemon's HTTP side and waits for its drain.
async fn stop(stop: CancellationToken, join: tokio::task::JoinHandle<anyhow::Result<()>>) {
    stop.cancel();
    join.await.unwrap().unwrap();
}

impl Env {
    /// A tenant with `USERS` users and one signed-in sync account, in hybrid mode.
    async fn new() -> Env {
        let sim = spawn(SimGraphOptions {
            token_lifetime_secs: 30 * 24 * 3600,
            ..SimGraphOptions::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&crate::helpers::test_config(&dir).store)
            .await
            .unwrap();
        let now = chrono::Utc::now();
        for i in 0..USERS {
            let upn = format!("user{i}@contoso.example");
            sim.state.upsert_user(SimUser::licensed(&user_id(i), &upn));
            store
                .upsert_users(&[UserRecord {
                    teams_id: user_id(i),
                    upn,
                    mail: None,
                    display_name: None,
                    business_phones: vec![],
                    mobile_phone: None,
                    cc_connector: None,
                    cc_agent_id: None,
                    active: true,
                    updated_at: now,
                }])
                .await
                .unwrap();
        }
        let graph = GraphConfig {
            token_encryption_key: Some(SecretString::from(
                base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
            )),
            presence_source: Some(PresenceSource::Hybrid),
            ..client_config(&sim)
        };
        let tokens = AccountTokens::new(&graph, store.clone(), None).unwrap();
        let upn = "svc-presence@contoso.example";
        sim.state.upsert_user(SimUser::licensed(
            "50000000-0000-4000-8000-000000000001",
            upn,
        ));
        let s = sim.state.clone();
        tokens
            .add_account(|p| assert!(s.approve_device_code(&p.user_code, upn)))
            .await
            .expect("sync account signs in");
        Env {
            sim,
            store,
            graph,
            clock: Clock::new(),
            dir,
        }
    }

    /// Starts the daemon's HTTP side on a fresh port with these certificates (first = current).
    async fn daemon(&self, certificates: Vec<CertificateConfig>) -> Daemon {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut cfg = crate::helpers::test_config(&self.dir);
        cfg.graph = self.graph.clone();
        cfg.graph.webhook.certificates = certificates;
        cfg.server.public_url = Some(format!("http://127.0.0.1:{port}").parse().unwrap());
        let mut app = Application::builder(cfg)
            .listener(listener)
            .store(self.store.clone())
            .clock(self.clock.clone())
            .without_jobs()
            .build()
            .await
            .expect("daemon builds");
        let parts = app.take_graph_parts().expect("graph is configured");
        let stop = app.cancel_token();
        let join = tokio::spawn(app.run_until_stopped(std::future::pending()));
        Daemon {
            parts,
            port,
            stop,
            join,
        }
    }

    fn presence_subscription(&self) -> SimSubscription {
        let now = self.sim.state.now();
        let live: Vec<_> = self
            .sim
            .state
            .subscriptions()
            .into_iter()
            .filter(|s| s.expires_at > now && s.resource.contains("presences"))
            .collect();
        assert_eq!(live.len(), 1, "one live presence subscription");
        live.into_iter().next().unwrap()
    }

    /// Waits (bounded) until the inbox holds an observation of `user` with `availability`
    /// from `source`; takes what it reads.
    async fn await_observation(&self, user: &str, availability: &str, source: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
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

/// A renewal that found 404 recreated the subscription, but nobody read the shard: a change
/// made while it was gone reached the contact center only at the next safety poll or hourly
/// reconciliation. The shard is now read at once.
#[tokio::test]
async fn a_subscription_gone_on_renewal_has_its_shard_read_at_once() {
    let env = Env::new().await;
    let d = env.daemon(vec![cert_config(1, "cert-a")]).await;
    let manager = d.parts.manager.expect("hybrid mode has a manager");
    let cov = manager.reconcile().await.unwrap();
    assert!(cov.uncovered_users.is_empty());
    let stop_poll = CancellationToken::new();
    let poller = tokio::spawn(d.parts.poller.run(stop_poll.clone()));
    // The poller's first round reads everyone (Offline): wait for it.
    env.await_observation(&user_id(USERS - 1), "Offline", "graph_poll")
        .await;

    // Graph forgets the subscription; a user changes while nothing covers them.
    let victim = env.presence_subscription();
    assert!(env.sim.state.expire_subscription(&victim.id));
    env.sim
        .state
        .set_user_status(&user_id(1), Some(("Busy", "InACall")));
    let step = Duration::from_secs(600);
    env.clock.advance(step);
    env.sim.state.advance(step);
    manager.reconcile().await.unwrap();
    assert_ne!(env.presence_subscription().id, victim.id, "recreated");
    env.await_observation(&user_id(1), "Busy", "graph_poll")
        .await;

    stop_poll.cancel();
    poller.await.unwrap();
    stop(d.stop, d.join).await;
}

/// The certificate was set only at creation and records did not keep the notification URL:
/// after a restart with a rotated certificate and a new public URL, existing subscriptions
/// kept the old ones. Now the first renewal PATCHes both (no new subscription, no gap); when
/// Graph refuses the certificate in a PATCH, the subscription is replaced.
#[tokio::test]
async fn a_rotated_certificate_and_a_new_url_reach_existing_subscriptions() {
    let env = Env::new().await;
    let d1 = env.daemon(vec![cert_config(1, "cert-a")]).await;
    d1.parts.manager.unwrap().reconcile().await.unwrap();
    let first = env.presence_subscription();
    assert_eq!(first.certificate_id.as_deref(), Some("cert-a"));
    assert!(first.notification_url.contains(&d1.port.to_string()));
    let created = env.sim.state.subscriptions_created();
    stop(d1.stop, d1.join).await;

    // Restart with the next certificate first (the old one kept for what is in flight) and
    // another public URL.
    let d2 = env
        .daemon(vec![cert_config(2, "cert-b"), cert_config(1, "cert-a")])
        .await;
    let port2 = d2.port.to_string();
    d2.parts.manager.unwrap().reconcile().await.unwrap();
    let now = env.presence_subscription();
    assert_eq!(now.id, first.id, "updated in place");
    assert_eq!(now.certificate_id.as_deref(), Some("cert-b"));
    assert!(
        now.notification_url.contains(&port2),
        "{}",
        now.notification_url
    );
    for s in env.sim.state.subscriptions() {
        assert!(s.notification_url.contains(&port2), "{s:?}");
    }
    assert_eq!(env.sim.state.subscriptions_created(), created);
    env.sim
        .state
        .set_user_status(&user_id(0), Some(("DoNotDisturb", "Presenting")));
    env.await_observation(&user_id(0), "DoNotDisturb", "graph_webhook")
        .await;
    stop(d2.stop, d2.join).await;

    // A Graph that takes no certificate by PATCH: the subscription is replaced.
    env.sim.state.refuse_certificate_patch(true);
    let d3 = env
        .daemon(vec![cert_config(1, "cert-a"), cert_config(2, "cert-b")])
        .await;
    let port3 = d3.port.to_string();
    d3.parts.manager.unwrap().reconcile().await.unwrap();
    let replaced = env.presence_subscription();
    assert_ne!(replaced.id, first.id);
    assert_eq!(replaced.certificate_id.as_deref(), Some("cert-a"));
    assert!(replaced.notification_url.contains(&port3));
    env.sim
        .state
        .set_user_status(&user_id(2), Some(("Busy", "InACall")));
    env.await_observation(&user_id(2), "Busy", "graph_webhook")
        .await;
    stop(d3.stop, d3.join).await;
}
