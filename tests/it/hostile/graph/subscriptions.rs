//! Presence subscriptions against the simulated tenant: a shard whose subscription vanished
//! is read at once, and a rotated certificate or a moved notification URL reaches
//! subscriptions made before. The daemon's HTTP side runs (it answers the handshakes and
//! receives the notifications); the test drives the subscription manager.

use std::time::Duration;

use presence_bridge::graph::notifications::config::CertificateConfig;
use presence_bridge::sim::graph::subscriptions::SimSubscription;
use tokio_util::sync::CancellationToken;

use crate::graph::user_id;
use crate::graph_notify::cert_config;
use crate::graph_notify::e2e::{Daemon, Env};

const USERS: usize = 3;

/// A tenant with `USERS` users and one signed-in sync account, in hybrid mode.
async fn env() -> Env {
    Env::with_users(USERS, 1).await
}

/// Starts the daemon's HTTP side on a fresh port (so a restart changes the public URL) with
/// these certificates (first = current).
async fn daemon(env: &Env, certificates: Vec<CertificateConfig>) -> Daemon {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    env.daemon_on(listener, certificates).await
}

/// The one live presence subscription.
fn presence_subscription(env: &Env) -> SimSubscription {
    let live = env.live_presence_subscriptions();
    assert_eq!(live.len(), 1, "one live presence subscription");
    live.into_iter().next().unwrap()
}

/// A renewal that found 404 recreated the subscription, but nobody read the shard: a change
/// made while it was gone reached the contact center only at the next safety poll or hourly
/// reconciliation. The shard is now read at once.
#[tokio::test]
async fn a_subscription_gone_on_renewal_has_its_shard_read_at_once() {
    let env = env().await;
    let mut d = daemon(&env, vec![cert_config(1, "cert-a")]).await;
    let parts = d.parts();
    let manager = parts.manager.expect("hybrid mode has a manager");
    let cov = manager.reconcile().await.unwrap();
    assert!(cov.uncovered_users.is_empty());
    let stop_poll = CancellationToken::new();
    let poller = tokio::spawn(parts.poller.run(stop_poll.clone()));
    // The poller's first round reads everyone (Offline): wait for it.
    env.await_observation(&user_id(USERS - 1), "Offline", "graph_poll")
        .await;

    // Graph forgets the subscription; a user changes while nothing covers them.
    let victim = presence_subscription(&env);
    assert!(env.sim.state.expire_subscription(&victim.id));
    env.sim
        .state
        .set_user_status(&user_id(1), Some(("Busy", "InACall")));
    let step = Duration::from_secs(600);
    env.clock.advance(step);
    env.sim.state.advance(step);
    manager.reconcile().await.unwrap();
    assert_ne!(presence_subscription(&env).id, victim.id, "recreated");
    env.await_observation(&user_id(1), "Busy", "graph_poll")
        .await;

    stop_poll.cancel();
    poller.await.unwrap();
    d.shutdown().await;
}

/// The certificate was set only at creation and records did not keep the notification URL:
/// after a restart with a rotated certificate and a new public URL, existing subscriptions
/// kept the old ones. Now the first renewal PATCHes both (no new subscription, no gap); when
/// Graph refuses the certificate in a PATCH, the subscription is replaced.
#[tokio::test]
async fn a_rotated_certificate_and_a_new_url_reach_existing_subscriptions() {
    let env = env().await;
    let mut d1 = daemon(&env, vec![cert_config(1, "cert-a")]).await;
    d1.parts().manager.unwrap().reconcile().await.unwrap();
    let first = presence_subscription(&env);
    assert_eq!(first.certificate_id.as_deref(), Some("cert-a"));
    assert!(first.notification_url.contains(&d1.port.to_string()));
    let created = env.sim.state.subscriptions_created();
    d1.shutdown().await;

    // Restart with the next certificate first (the old one kept for what is in flight) and
    // another public URL.
    let mut d2 = daemon(
        &env,
        vec![cert_config(2, "cert-b"), cert_config(1, "cert-a")],
    )
    .await;
    let port2 = d2.port.to_string();
    d2.parts().manager.unwrap().reconcile().await.unwrap();
    let now = presence_subscription(&env);
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
    d2.shutdown().await;

    // A Graph that takes no certificate by PATCH: the subscription is replaced.
    env.sim.state.refuse_certificate_patch(true);
    let mut d3 = daemon(
        &env,
        vec![cert_config(1, "cert-a"), cert_config(2, "cert-b")],
    )
    .await;
    let port3 = d3.port.to_string();
    d3.parts().manager.unwrap().reconcile().await.unwrap();
    let replaced = presence_subscription(&env);
    assert_ne!(replaced.id, first.id);
    assert_eq!(replaced.certificate_id.as_deref(), Some("cert-a"));
    assert!(replaced.notification_url.contains(&port3));
    env.sim
        .state
        .set_user_status(&user_id(2), Some(("Busy", "InACall")));
    env.await_observation(&user_id(2), "Busy", "graph_webhook")
        .await;
    d3.shutdown().await;
}
