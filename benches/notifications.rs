//! Webhook receiver throughput: realistic notification batches POSTed to the real router on
//! loopback, persisted in a SQLite inbox. Prints notifications/s accepted and persisted and
//! the p50/p99 time to the 202.
//!
//! After the rich run it measures the RSA limit of the machine with `openssl speed rsa2048
//! -multi <cores>` and prints the ratio of the rich rate to it.
//!
//! `cargo bench --bench notifications` (env: `BENCH_BATCHES`, `BENCH_BATCH_SIZE`,
//! `BENCH_CONCURRENCY`, `BENCH_OPENSSL_SECS`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::graph::notifications::config::CertificateConfig;
use presence_bridge::graph::notifications::crypto::{
    NotificationKey, public_key_from_certificate_der,
};
use presence_bridge::sim::graph::encrypt::encrypt_for_notification;
use presence_bridge::sim::graph::tokens::{TokenIssuer, serve_jwks};
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::inbox::Inbox;
use presence_bridge::store::{self, SubscriptionRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const TENANT_ID: &str = "99999999-8888-7777-6666-555555555555";
const SUB: &str = "bench-sub";
const STATE: &str = "bench-client-state-0123456789";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graph")
        .join(name)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let batches = env("BENCH_BATCHES", 400);
    let batch_size = env("BENCH_BATCH_SIZE", 50);
    let concurrency = env("BENCH_CONCURRENCY", 32);
    let dir = tempfile::tempdir().expect("tempdir");
    let cancel = CancellationToken::new();
    let issuer = TokenIssuer::new();
    let authority = serve_jwks(issuer.jwks().clone(), cancel.clone())
        .await
        .expect("jwks server");

    let key = NotificationKey::load(
        "cert-a",
        &fixture("notify-cert-1.pem"),
        &fixture("notify-key-1.pem"),
    )
    .expect("fixture key");
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key.certificate_b64)
        .expect("b64");
    let public = public_key_from_certificate_der(&der).expect("public key");

    let mut cfg = Config {
        store: StoreConfig {
            url: format!("sqlite://{}/bench.db", dir.path().display()).into(),
            ..StoreConfig::default()
        },
        ..Config::default()
    };
    cfg.graph.webhook.max_body_bytes = 8 * 1024 * 1024;
    cfg.graph.webhook.certificates = vec![CertificateConfig {
        id: "cert-a".into(),
        certificate_file: fixture("notify-cert-1.pem"),
        private_key_file: fixture("notify-key-1.pem"),
    }];
    // Validation tokens are checked against this tenant, app and authority (the JWKS server).
    cfg.graph.tenant_id = Some(TENANT_ID.into());
    cfg.graph.client_id = Some(CLIENT_ID.into());
    cfg.graph.client_secret = Some("bench-secret".into());
    cfg.graph.authority_url = authority.parse().expect("authority url");
    cfg.graph.base_url = authority.parse().expect("base url");
    let store = store::open(&cfg.store).await.expect("store");
    let now = chrono::Utc::now();
    store
        .upsert_subscription(&SubscriptionRecord {
            id: SUB.into(),
            kind: "presence".into(),
            shard: Some(0),
            account_id: None,
            resource: "communications/presences".into(),
            client_state: STATE.into(),
            expires_at: now + chrono::Duration::hours(1),
            created_at: now,
            last_renewed_at: None,
            last_reauthorized_at: None,
            state: "active".into(),
            last_error: None,
        })
        .await
        .expect("subscription");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/graph/notifications",
        listener.local_addr().expect("addr")
    );
    let app = Application::builder(cfg)
        .listener(listener)
        .store(store.clone())
        .without_jobs()
        .build()
        .await
        .expect("application");
    let stop = cancel.clone();
    tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));

    let token = issuer.validation_token(CLIENT_ID, TENANT_ID, &authority);
    println!(
        "webhook receiver: {batches} batches x {batch_size} notifications, {concurrency} in flight, SQLite inbox"
    );
    for rich in [false, true] {
        let offset = if rich { batches * batch_size } else { 0 };
        let bodies: Vec<Vec<u8>> = (0..batches)
            .map(|b| {
                let items: Vec<_> = (0..batch_size)
                    .map(|i| {
                        let user = format!(
                            "00000000-0000-4000-8000-{:012}",
                            offset + b * batch_size + i
                        );
                        let mut item = json!({
                            "subscriptionId": SUB, "clientState": STATE, "changeType": "updated",
                            "tenantId": TENANT_ID,
                            "resource": format!("communications/presences/{user}"),
                            "resourceData": {"@odata.id": format!("users/{user}/presence"),
                                "@odata.type": "#microsoft.graph.presence", "id": user},
                        });
                        if rich {
                            let plain =
                                json!({"id": user, "availability": "Busy", "activity": "InACall"});
                            let content = encrypt_for_notification(
                                &public,
                                "cert-a",
                                plain.to_string().as_bytes(),
                            )
                            .expect("encrypt");
                            item["encryptedContent"] = serde_json::to_value(content).expect("json");
                        }
                        item
                    })
                    .collect();
                let mut body = json!({ "value": items });
                if rich {
                    body["validationTokens"] = json!([token]);
                }
                serde_json::to_vec(&body).expect("json")
            })
            .collect();
        let before = store.inbox_len().await.expect("len");
        let client = reqwest::Client::new();
        let started = Instant::now();
        let answers: Vec<(Vec<Duration>, u32)> = futures::stream::iter(bodies)
            .map(|body| {
                let client = client.clone();
                let url = url.clone();
                async move {
                    // Like Graph: a 503 is retried (after a short pause); every answer's time counts.
                    let mut acks = Vec::new();
                    let mut refused = 0u32;
                    loop {
                        let t = Instant::now();
                        let res = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await
                            .expect("request");
                        let status = res.status().as_u16();
                        acks.push(t.elapsed());
                        match status {
                            202 => return (acks, refused),
                            503 => {
                                refused += 1;
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                            other => panic!("batch refused: {other}"),
                        }
                    }
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let elapsed = started.elapsed();
        let stored = store.inbox_len().await.expect("len") - before;
        let retried: u32 = answers.iter().map(|(_, r)| r).sum();
        let mut latencies: Vec<Duration> = answers.into_iter().flat_map(|(a, _)| a).collect();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let kind = if rich { "rich (decrypted)" } else { "basic" };
        let rate = (batches * batch_size) as f64 / elapsed.as_secs_f64();
        println!(
            "{kind:>17}: {rate:>8.0} notifications/s accepted and persisted ({stored} inbox items in {:.2} s); ack p50 {:.1} ms, p99 {:.1} ms; {retried} batches answered 503 and retried",
            elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
        );
        if rich {
            rsa_limit(rate);
        }
    }
    inbox_alone(&store).await;
    cancel.cancel();
}

/// Every rich notification costs one RSA-2048 private-key operation: compares `rate` with what
/// OpenSSL does on every core of this machine, measured now (`openssl speed rsa2048 -multi N`,
/// its `sign/s`: a signature is the same private-key operation as an OAEP decryption).
fn rsa_limit(rate: f64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let secs = env("BENCH_OPENSSL_SECS", 3).to_string();
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-seconds",
            &secs,
            "-multi",
            &cores.to_string(),
            "rsa2048",
        ])
        .stderr(std::process::Stdio::null())
        .output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            println!(
                "{:>17}: `openssl speed` failed ({}); no ratio",
                "RSA limit", o.status
            );
            return;
        }
        Err(e) => {
            println!(
                "{:>17}: openssl is not installed ({e}); no ratio",
                "RSA limit"
            );
            return;
        }
    };
    // `rsa 2048 bits 0.000110s 0.000003s   9120.0 300000.0`: sign/s is the third number.
    let sign_per_sec = text
        .lines()
        .filter(|l| l.starts_with("rsa 2048 bits") || l.starts_with("rsa  2048 bits"))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse::<f64>().ok())
        .next_back();
    match sign_per_sec {
        Some(limit) => println!(
            "{:>17}: {limit:>8.0} RSA-2048 private-key operations/s by openssl on {cores} cores, measured now; rich notifications reach {:.2} of it (goal 0.80)",
            "RSA limit",
            rate / limit
        ),
        None => println!(
            "{:>17}: `openssl speed` output not understood; no ratio",
            "RSA limit"
        ),
    }
}

/// The inbox by itself: many concurrent single-observation pushes, as a burst of small
/// notification batches produces them; shows what the group commit sustains.
async fn inbox_alone(store: &std::sync::Arc<dyn presence_bridge::store::Store>) {
    let tasks = env("BENCH_INBOX_TASKS", 256);
    let per_task = env("BENCH_INBOX_PUSHES", 100);
    let inbox = Inbox::new(store.clone());
    let before = store.inbox_len().await.expect("len");
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let o = presence_bridge::model::Observation {
                        user: format!("inbox-{t}-{i}"),
                        status: presence_bridge::model::Status::Teams(
                            presence_bridge::model::TeamsPresence::new("Busy", "InACall"),
                        ),
                        observed_at: chrono::Utc::now(),
                        source: presence_bridge::model::Source::GraphWebhook,
                        activity: None,
                    };
                    let s = Instant::now();
                    inbox.push_observations(&[o]).await.expect("push");
                    lat.push(s.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(h.await.expect("task"));
    }
    let elapsed = started.elapsed();
    let stored = store.inbox_len().await.expect("len") - before;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "{:>17}: {:>8.0} observations/s persisted ({stored} single-item pushes from {tasks} tasks in {:.2} s); push p50 {:.1} ms, p99 {:.1} ms",
        "inbox alone",
        stored as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
    );
}
