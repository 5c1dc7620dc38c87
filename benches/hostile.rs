//! The HTTP surface under hostile clients, with the default `[server]` limits. Prints:
//! - resident memory (VmRSS) and `/metrics` size before and after a stretch of requests with
//!   made-up 1–4 KB method names and random paths (goal: RSS growth ≤ 20 MB);
//! - `/health/live` p50/p99/max latency, a new connection per probe, while 1,000 clients hold
//!   connections with partial headers (goal: p99 ≤ 50 ms);
//! - file descriptors in use with every connection slot taken, and what one more gets.
//!
//! `cargo bench --bench hostile` (env: `BENCH_HOSTILE_SECS`, default 60: length of the
//! made-up-method stretch; `BENCH_HOSTILE_CONCURRENCY`, default 32; `BENCH_SLOW_CLIENTS`,
//! default 1,000).

use std::time::{Duration, Instant};

use futures::StreamExt;
use presence_bridge::app::Application;
use presence_bridge::app::config::Config;
use presence_bridge::store::config::StoreConfig;
use presence_bridge::telemetry::Metrics;
use rand::Rng;
use rand::distributions::Alphanumeric;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// VmRSS of this process, in kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn random_string(rng: &mut impl Rng, len: usize) -> String {
    rng.sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The value of an unlabelled gauge in the application's own registry.
fn gauge(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls the application's registry until `name` reaches `want` (or 30 s pass).
async fn wait_gauge(metrics: &Metrics, name: &str, want: f64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if gauge(metrics, name) == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run() {
    let secs = env("BENCH_HOSTILE_SECS", 60) as u64;
    let concurrency = env("BENCH_HOSTILE_CONCURRENCY", 32);
    let slow_clients = env("BENCH_SLOW_CLIENTS", 1000);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = Config {
        store: StoreConfig {
            url: format!("sqlite://{}/bench.db", dir.path().display()).into(),
            ..StoreConfig::default()
        },
        ..Config::default()
    };
    let server = cfg.server.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let base = format!("http://{addr}");
    let app = Application::builder(cfg)
        .listener(listener)
        .without_jobs()
        .build()
        .await
        .expect("application");
    let metrics = app.metrics().clone();
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    let running = tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));
    println!(
        "limits: header_read_timeout_secs={} idle_timeout_secs={} max_connections={}",
        server.header_read_timeout_secs, server.idle_timeout_secs, server.max_connections
    );

    // 1. Made-up methods and random paths.
    let client = reqwest::Client::new();
    let metrics_len = |client: reqwest::Client, base: String| async move {
        let res = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics");
        res.bytes().await.expect("metrics body").len()
    };
    let _ = client.get(format!("{base}/health/live")).send().await;
    let rss_before = rss_kb();
    let metrics_before = metrics_len(client.clone(), base.clone()).await;
    let until = Instant::now() + Duration::from_secs(secs);
    let sent = futures::stream::iter(0..concurrency)
        .map(|_| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let (method, path) = {
                        let mut rng = rand::thread_rng();
                        let len = rng.gen_range(1024..=4096);
                        let path_len = rng.gen_range(1..=200);
                        (
                            format!("X{}", random_string(&mut rng, len)),
                            random_string(&mut rng, path_len),
                        )
                    };
                    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                    if client
                        .request(method, format!("{base}/{path}"))
                        .send()
                        .await
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |a, n| async move { a + n })
        .await;
    let rss_after = rss_kb();
    let metrics_after = metrics_len(client.clone(), base.clone()).await;
    println!(
        "made-up methods: {sent} requests in {secs} s ({concurrency} in flight); \
         VmRSS {} -> {} kB (growth {:.1} MB, goal <= 20 MB); /metrics {metrics_before} -> {metrics_after} bytes",
        rss_before,
        rss_after,
        (rss_after as f64 - rss_before as f64) / 1024.0
    );
    drop(client);

    // 2. /health/live beside slow clients.
    let mut slow = Vec::with_capacity(slow_clients);
    for _ in 0..slow_clients {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /health/live HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            .await
            .expect("partial headers");
        slow.push(s);
    }
    let held = wait_gauge(&metrics, "http_connections_open", slow_clients as f64).await;
    let probe = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let mut latencies = Vec::new();
    let mut failures = 0;
    // Inside the header timeout, so every slow client is still connected while probing.
    let window = Duration::from_secs(server.header_read_timeout_secs) / 2;
    let started = Instant::now();
    while started.elapsed() < window && latencies.len() < 2000 {
        let t = Instant::now();
        match probe.get(format!("{base}/health/live")).send().await {
            Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
            _ => failures += 1,
        }
    }
    latencies.sort();
    if latencies.is_empty() {
        println!("/health/live with {slow_clients} slow clients: no answer ({failures} failures)");
    } else {
        println!(
            "/health/live with {slow_clients} slow clients held ({held}): {} probes, p50 {:.2} ms, \
             p99 {:.2} ms (goal <= 50 ms), max {:.2} ms, {failures} failures",
            latencies.len(),
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().expect("non-empty").as_secs_f64() * 1000.0,
        );
    }
    drop(slow);
    drop(probe);
    wait_gauge(&metrics, "http_connections_open", 0.0).await;

    // 3. Every slot taken.
    let fds_idle = open_fds();
    let mut held = Vec::with_capacity(server.max_connections);
    for _ in 0..server.max_connections {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let full = wait_gauge(
        &metrics,
        "http_connections_open",
        server.max_connections as f64,
    )
    .await;
    let fds_full = open_fds();
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    let _ = extra
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: bench\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    let first_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("(closed without an answer)")
        .to_owned();
    println!(
        "at the cap ({} connections, all served: {full}): {fds_full} fds open in this process \
         ({fds_idle} before; {} of them the bench's own client sockets), so {} on the server side; \
         one more connection got: {first_line}",
        server.max_connections,
        held.len(),
        fds_full.saturating_sub(fds_idle + held.len()),
    );
    drop(held);
    drop(extra);

    cancel.cancel();
    let _ = running.await;
}
