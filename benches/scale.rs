//! Scale: the daemon alone at 1,000 / 10,000 / 100,000 people. The simulated Teams tenant and
//! contact center run as their own process (`presence-bridge sim`), the daemon as another
//! (`presence-bridge run` on the configuration the simulators print, SQLite in a temporary
//! folder, `poll` presence source); this bench only watches the daemon from outside (its
//! `/metrics`, its log, `/proc/<pid>`), so every figure is the daemon's cost alone.
//!
//! Printed for each size:
//! - start-up: time to the directory and the agent list being stored, to every person
//!   matched (`engine_matched_users`), and to the first full presence round over everyone;
//! - steady RSS `SCALE_STEADY_SECS` after all were matched (default 120) and the peak RSS;
//! - CPU % at rest (the last 30 s of that wait) and under `SCALE_LOAD_SECS` (default 60) of
//!   one change per person per 10 minutes, half in Teams, half in the contact center;
//! - the last full polling round: its calls and duration against the floor, ceil(N/650) calls
//!   at `graph.poll.calls_per_30s`;
//! - a reconciliation run on demand: its duration, the Graph calls and contact-center
//!   requests it made;
//! - shutdown: time from SIGTERM to exit, and whether the drain finished.
//!
//! `cargo bench --bench scale` (env: `SCALE_USERS`, default `1000,10000,100000`;
//! `SCALE_STEADY_SECS`; `SCALE_LOAD_SECS`; `SCALE_PAGE_SIZE`, agents per contact-center page,
//! default 1000; `SCALE_CC_RPS`, requests per second allowed towards it, default 20).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_presence-bridge");
/// Longest wait for start-up at any size.
const START_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// The CPU at rest is averaged over this much of the steady wait.
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// How often the daemon's metrics are read while waiting.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// `graph.poll.calls_per_30s` the daemon runs with (its default).
const POLL_CALLS_PER_30S: f64 = 750.0;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SCALE_USERS")
        .unwrap_or_else(|_| "1000,10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().replace('_', "").parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "scale: daemon and simulators as separate processes; each figure is the daemon's alone"
    );
    for n in sizes {
        rt.block_on(run(n));
    }
}

/// Lines of interest in a process's output, with when they were first seen.
#[derive(Default)]
struct Seen(Mutex<HashMap<&'static str, Instant>>);

impl Seen {
    fn at(&self, what: &str) -> Option<Instant> {
        self.0.lock().unwrap().get(what).copied()
    }
}

/// Reads `from` line by line on a thread, noting the first time each of `marks` appears.
fn watch_lines(
    from: impl std::io::Read + Send + 'static,
    marks: &'static [&'static str],
    seen: Arc<Seen>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            for m in marks {
                if line.contains(m) {
                    seen.0.lock().unwrap().entry(m).or_insert_with(Instant::now);
                }
            }
        }
    });
}

const DIRECTORY_SYNCED: &str = "directory synced";
const AGENTS_STORED: &str = "agent list stored";
const DRAIN_DONE: &str = "drain finished";
const DRAIN_CUT: &str = "drain did not finish";
const DAEMON_MARKS: &[&str] = &[DIRECTORY_SYNCED, AGENTS_STORED, DRAIN_DONE, DRAIN_CUT];

/// `presence-bridge sim` for `n` people; returns it with its contact center's base URL.
fn start_sim(n: usize, config: &std::path::Path, webhook: &str) -> (Child, String) {
    let mut sim = Command::new(BIN)
        .args(["sim", "--users", &n.to_string(), "--listen", "127.0.0.1:0"])
        .args(["--page-size", &env_num("SCALE_PAGE_SIZE", 1000).to_string()])
        .args([
            "--cc-requests-per-sec",
            &env_num("SCALE_CC_RPS", 20).to_string(),
        ])
        .args(["--webhook-url", webhook])
        .arg("--config-out")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start presence-bridge sim");
    let mut lines = BufReader::new(sim.stdout.take().expect("stdout")).lines();
    let mut cc_url = String::new();
    for line in lines.by_ref() {
        let line = line.expect("sim output");
        if let Some(u) = line.strip_prefix("simulated contact center:") {
            cc_url = u.trim().to_owned();
        }
        if line == "ready" {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (sim, cc_url)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// user + system CPU time of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// A `VmRSS`/`VmHWM`-style line of `/proc/<pid>/status`, in MiB.
fn status_mib(pid: u32, key: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The daemon's metrics: unlabelled ones by name, labelled ones summed by name.
async fn metrics(http: &reqwest::Client, base: &str) -> HashMap<String, f64> {
    let text = match http.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => return HashMap::new(),
    };
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = key.split('{').next().unwrap_or(key).to_owned();
        if let Ok(v) = value.parse::<f64>() {
            *out.entry(name).or_default() += v;
        }
    }
    out
}

fn get(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.get(name).copied().unwrap_or(0.0)
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".into(), |d| format!("{:.1} s", d.as_secs_f64()))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

async fn run(n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("sim.toml");
    let (mut sim, cc_url) = start_sim(n, &config, &format!("{base}/connectors/simcc/events"));
    let seen = Arc::new(Seen::default());
    let t0 = Instant::now();
    let mut daemon = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env(
            "PRESENCE_BRIDGE__SERVER__LISTEN",
            format!("127.0.0.1:{port}"),
        )
        .env(
            "PRESENCE_BRIDGE__STORE__URL",
            format!("sqlite://{}/daemon.db", dir.path().display()),
        )
        .env("PRESENCE_BRIDGE__LOG__FORMAT", "json")
        .env("PRESENCE_BRIDGE__LOG__FILTER", "info,tower_http=warn")
        .env("PRESENCE_BRIDGE__SERVER__SHUTDOWN_GRACE_SECS", "10")
        // The production defaults where the demo's settings are made for watching.
        .env("PRESENCE_BRIDGE__GRAPH__POLL__INTERVAL_SECS", "10")
        .env("PRESENCE_BRIDGE__SYNC__RECONCILE_INTERVAL_SECS", "3600")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();
    watch_lines(
        daemon.stdout.take().expect("stdout"),
        DAEMON_MARKS,
        seen.clone(),
    );
    watch_lines(
        daemon.stderr.take().expect("stderr"),
        DAEMON_MARKS,
        seen.clone(),
    );
    let http = reqwest::Client::new();
    let floor_calls = n.div_ceil(650);

    // Start-up: every person matched, then a full round over all of them.
    let (mut matched, mut first_round, mut first_reconcile) = (None, None, None);
    let mut rounds_at_match = None;
    while t0.elapsed() < START_TIMEOUT {
        tokio::time::sleep(WATCH_EVERY).await;
        if let Ok(Some(status)) = daemon.try_wait() {
            println!("{n:>7} people: the daemon exited at start ({status})");
            let _ = sim.kill();
            return;
        }
        let m = metrics(&http, &base).await;
        if matched.is_none() && get(&m, "engine_matched_users") as usize >= n {
            matched = Some(t0.elapsed());
            rounds_at_match = Some(get(&m, "graph_presence_poll_rounds_total"));
        }
        if first_round.is_none()
            && let Some(r) = rounds_at_match
            && get(&m, "graph_presence_poll_rounds_total") > r
            && get(&m, "graph_presence_poll_users") as usize >= n
        {
            first_round = Some(t0.elapsed());
        }
        if first_reconcile.is_none() && get(&m, "engine_reconcile_runs_total") >= 1.0 {
            first_reconcile = Some(t0.elapsed());
        }
        if first_round.is_some() && first_reconcile.is_some() {
            break;
        }
    }
    let since = |at: Option<Instant>| at.map(|a| a.duration_since(t0));
    let lists_read = match (seen.at(DIRECTORY_SYNCED), seen.at(AGENTS_STORED)) {
        (Some(a), Some(b)) => Some(a.max(b).duration_since(t0)),
        _ => None,
    };
    let after_lists = matched.zip(lists_read).map(|(m, l)| m.saturating_sub(l));
    println!(
        "{n:>7} people: directory stored {}, agents stored {}, all matched {} ({} after both lists; goal <= 10 s at 100k: {}), first full presence round {}, first reconciliation done {}",
        secs(since(seen.at(DIRECTORY_SYNCED))),
        secs(since(seen.at(AGENTS_STORED))),
        secs(matched),
        secs(after_lists),
        verdict(after_lists.is_some_and(|d| d <= Duration::from_secs(10))),
        secs(first_round),
        secs(first_reconcile),
    );

    // At rest: wait out the steady time, CPU over its last IDLE_WINDOW.
    let steady = Duration::from_secs(env_num("SCALE_STEADY_SECS", 120));
    let matched_at = t0 + matched.unwrap_or_else(|| t0.elapsed());
    let idle_from = (matched_at + steady).max(Instant::now() + IDLE_WINDOW) - IDLE_WINDOW;
    tokio::time::sleep_until(idle_from.into()).await;
    let cpu0 = cpu_time(pid);
    tokio::time::sleep(IDLE_WINDOW).await;
    let idle_cpu = (cpu_time(pid) - cpu0).as_secs_f64() / IDLE_WINDOW.as_secs_f64() * 100.0;
    let rss = status_mib(pid, "VmRSS:");
    let m = metrics(&http, &base).await;
    let round_secs = get(&m, "graph_presence_poll_round_seconds");
    let round_calls = get(&m, "graph_presence_poll_round_calls");
    let floor_secs = floor_calls as f64 * 30.0 / POLL_CALLS_PER_30S;
    println!(
        "{n:>7} people: RSS {rss:.0} MiB {:.0} s after all matched (goal <= 200 MiB at 100k: {}); CPU at rest {idle_cpu:.1} % of one core (goal <= 5 %: {})",
        matched_at.elapsed().as_secs_f64(),
        verdict(rss <= 200.0),
        verdict(idle_cpu <= 5.0),
    );
    println!(
        "{n:>7} people: last full polling round {round_calls:.0} calls in {round_secs:.2} s; floor {floor_calls} calls in {floor_secs:.2} s at {POLL_CALLS_PER_30S} calls/30 s; ratio {:.3} (goal <= 1.05: {})",
        round_secs / floor_secs,
        verdict(round_calls as usize == floor_calls && round_secs <= 1.05 * floor_secs),
    );

    // A reconciliation on demand: duration and calls.
    reconcile(&http, &base, &cc_url, n).await;

    // Under load: one change per person per 10 minutes, from outside both processes.
    let load = Duration::from_secs(env_num("SCALE_LOAD_SECS", 60));
    let graph_url = {
        let text = std::fs::read_to_string(&config).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("authority_url = \""))
            .map(|u| u.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    };
    let cpu0 = cpu_time(pid);
    let started = Instant::now();
    let changes = drive_changes(&http, &graph_url, &cc_url, n, load).await;
    let load_cpu = (cpu_time(pid) - cpu0).as_secs_f64() / started.elapsed().as_secs_f64() * 100.0;
    let m = metrics(&http, &base).await;
    println!(
        "{n:>7} people: CPU under {:.1} changes/s (1 per person per 10 min) {load_cpu:.1} % of one core over {:.0} s ({changes} changes made; {:.0} engine writes so far); RSS {:.0} MiB, peak {:.0} MiB",
        n as f64 / 600.0,
        started.elapsed().as_secs_f64(),
        get(&m, "engine_writes_total"),
        status_mib(pid, "VmRSS:"),
        status_mib(pid, "VmHWM:"),
    );

    // Shutdown.
    let stop = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exited = loop {
        if let Ok(Some(_)) = daemon.try_wait() {
            break Some(stop.elapsed());
        }
        if stop.elapsed() > Duration::from_secs(60) {
            let _ = daemon.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The last lines may still be in the pipe.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let drain = match (seen.at(DRAIN_DONE), seen.at(DRAIN_CUT)) {
        (Some(_), _) => "drain finished",
        (_, Some(_)) => "drain did NOT finish in time",
        _ => "no drain line logged",
    };
    println!("{n:>7} people: SIGTERM to exit {} ({drain})", secs(exited));
    let _ = Command::new("kill")
        .args(["-TERM", &sim.id().to_string()])
        .status();
    let _ = sim.wait();
}

/// Asks for a reconciliation and prints its duration and calls.
async fn reconcile(http: &reqwest::Client, base: &str, cc_url: &str, n: usize) {
    let cc_requests = || async {
        let v: serde_json::Value = match http.get(format!("{cc_url}control/stats")).send().await {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        v["api_requests"].as_f64().unwrap_or(0.0)
    };
    let before = metrics(http, base).await;
    let cc_before = cc_requests().await;
    let asked = http
        .post(format!("{base}/api/v1/reconcile"))
        .bearer_auth("demo-token")
        .send()
        .await;
    if !asked.is_ok_and(|r| r.status().is_success()) {
        println!("{n:>7} people: reconciliation could not be asked for");
        return;
    }
    let runs = get(&before, "engine_reconcile_runs_total");
    let deadline = Instant::now() + START_TIMEOUT;
    let after = loop {
        let m = metrics(http, base).await;
        if get(&m, "engine_reconcile_runs_total") > runs || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    };
    let cc_after = cc_requests().await;
    let report: serde_json::Value = match http
        .get(format!("{base}/api/v1/reconcile/last"))
        .bearer_auth("demo-token")
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => serde_json::Value::Null,
    };
    let at = |k: &str| {
        report[k]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    let took = at("started_at")
        .zip(at("finished_at"))
        .map(|(a, b)| (b - a).num_milliseconds() as f64 / 1000.0);
    let delta = |k: &str| get(&after, k) - get(&before, k);
    // The poller keeps running meanwhile: its calls are left out of the Graph figure.
    let graph_calls = delta("graph_requests_total") - delta("graph_presence_polls_total");
    println!(
        "{n:>7} people: reconciliation of {} users took {}; {graph_calls:.0} Graph calls besides polling (floor {}), {:.0} contact-center requests; {} writes",
        report["users_checked"],
        took.map_or_else(|| "?".into(), |t| format!("{t:.2} s")),
        n.div_ceil(650),
        cc_after - cc_before,
        report["writes"],
    );
}

/// Changes statuses at `n / 600` a second for `length`, Teams and contact center by turns,
/// through the simulators' control APIs. Returns how many were made.
async fn drive_changes(
    http: &reqwest::Client,
    graph_url: &str,
    cc_url: &str,
    n: usize,
    length: Duration,
) -> usize {
    let per_sec = n as f64 / 600.0;
    let started = Instant::now();
    let mut made = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut inflight = tokio::task::JoinSet::new();
    let mut busy = vec![false; n + 1];
    while started.elapsed() < length {
        tick.tick().await;
        let due = (started.elapsed().as_secs_f64() * per_sec) as usize;
        while made < due {
            made += 1;
            let i = 1 + (made * 7919) % n;
            busy[i] = !busy[i];
            let req = if made.is_multiple_of(2) {
                let pair = if busy[i] {
                    serde_json::json!({"availability": "Busy", "activity": "InACall"})
                } else {
                    serde_json::json!({"availability": "Available", "activity": "Available"})
                };
                http.post(format!(
                    "{graph_url}/_control/users/00000000-0000-4000-8000-{i:012}/status"
                ))
                .json(&pair)
            } else {
                let status = if busy[i] { "on_contact" } else { "available" };
                http.post(format!("{cc_url}control/agents/agent-{i}/status"))
                    .json(&serde_json::json!({ "status_id": status }))
            };
            inflight.spawn(async move {
                let _ = req.send().await;
            });
            while inflight.len() > 64 {
                inflight.join_next().await;
            }
        }
    }
    while inflight.join_next().await.is_some() {}
    made
}
