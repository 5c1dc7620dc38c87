//! End-to-end latency through the real daemon, with hold-down 0 (printed, not asserted):
//! a basic Graph change notification POSTed to `/graph/notifications` → durable inbox →
//! engine (coalesced getPresencesByUserId read from the simulated tenant) → mapping → the
//! contact-center write request arriving at the simulated contact center.
//!
//! Run: `cargo bench --bench e2e`.

use std::time::{Duration, Instant};

use chrono::Utc;
use presence_bridge::app::Application;
use presence_bridge::cli::demo::{demo_config, demo_user_id, start_simulators};
use presence_bridge::store::SubscriptionRecord;
use serde_json::json;

const USERS: usize = 50;
const ROUNDS: usize = 400;
const SUBSCRIPTION: &str = "bench-subscription";
const CLIENT_STATE: &str = "bench-client-state";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let (graph, cc) = start_simulators(USERS).await.expect("simulators");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = demo_config(&graph, &cc, Some("127.0.0.1:0".parse().unwrap())).expect("config");
    cfg.store.url = format!("sqlite://{}/bench.db", dir.path().display()).into();
    cfg.sync.hold_down_secs = 0;
    // Each person changes many times a minute here; that is load, not flapping.
    cfg.sync.flap_max_writes = 1_000_000;
    // The connector's default limit (5 requests/s) would dominate the figure; measure the
    // pipeline itself (with the default, consecutive writes are spaced 200 ms apart).
    if let Some(presence_bridge::connectors::config::ConnectorConfig::Http(c)) =
        cfg.connectors.first_mut()
    {
        c.limits.requests_per_sec = 10_000.0;
    }
    // Keep the poller out of the way: only notifications should bring changes in.
    cfg.graph.poll.interval_secs = 3600;
    cfg.graph.poll.safety_interval_secs = 3600;
    let app = Application::builder(cfg)
        .build()
        .await
        .expect("application");
    let base = format!("http://{}", app.local_addr());
    let (store, notifications) = (app.store().clone(), app.notifications().clone());
    let stop = app.cancel_token();
    let server = tokio::spawn(app.run_until_stopped(std::future::pending()));

    let sub = SubscriptionRecord {
        id: SUBSCRIPTION.into(),
        kind: "presence".into(),
        shard: Some(0),
        account_id: None,
        resource: "/communications/presences".into(),
        client_state: CLIENT_STATE.into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
        created_at: Utc::now(),
        last_renewed_at: None,
        last_reauthorized_at: None,
        state: "active".into(),
        last_error: None,
    };
    store.upsert_subscription(&sub).await.expect("subscription");
    notifications.remember(&sub).await;

    // Wait until the engine has matched everyone (directory sync, agent listing, matching).
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let users: serde_json::Value = http
            .get(format!("{base}/api/v1/users"))
            .bearer_auth("demo-token")
            .send()
            .await
            .expect("api")
            .json()
            .await
            .expect("json");
        let matched = users["users"]
            .as_array()
            .map(|a| a.iter().filter(|u| u["cc_agent_id"].is_string()).count())
            .unwrap_or(0);
        if matched == USERS {
            break;
        }
        assert!(Instant::now() < deadline, "users were not matched in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let tenant = graph.state.options.tenant_id.clone();
    let mut latencies = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let i = round % USERS + 1;
        let user = demo_user_id(i);
        // Odd passes over the users start a Teams call (CC → "Busy (Teams)"), even passes
        // end it (the previous status is restored): every round causes one CC write.
        let in_call = (round / USERS).is_multiple_of(2);
        let status = if in_call {
            ("Busy", "InACall")
        } else {
            ("Available", "Available")
        };
        graph.state.set_user_status(&user, Some(status));
        let before = cc.writes().len();
        let body = json!({ "value": [{
            "subscriptionId": SUBSCRIPTION,
            "clientState": CLIENT_STATE,
            "changeType": "updated",
            "tenantId": tenant,
            "subscriptionExpirationDateTime": sub.expires_at.to_rfc3339(),
            "resource": format!("communications/presences/{user}"),
            "resourceData": {
                "@odata.id": format!("users/{user}/presence"),
                "@odata.type": "#microsoft.graph.presence",
                "id": user,
            },
        }]});
        let start = Instant::now();
        let res = http
            .post(format!("{base}/graph/notifications"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(res.status().as_u16(), 202, "notification not accepted");
        let deadline = start + Duration::from_secs(10);
        while cc.writes().len() == before {
            assert!(
                Instant::now() < deadline,
                "no contact-center write for round {round}"
            );
            tokio::task::yield_now().await;
        }
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "end-to-end (notification POST -> contact-center write request, hold-down 0, {ROUNDS} changes over {USERS} users, SQLite):"
    );
    println!(
        "  p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    stop.cancel();
    let _ = server.await;
    graph.shutdown().await;
}
