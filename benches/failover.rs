//! Failover time of three replicas on one Postgres database: under steady contact-center
//! traffic, the engine owner is killed with `kill -9`; printed per run are the time until
//! another replica holds the engine lease and until the first Teams write after the kill
//! (made by the new owner: the killed one writes nothing more). Five runs at the default
//! lease time (`store.lease_secs` = 15 s; `FAILOVER_LEASE_SECS` sets another).
//!
//! Needs `PRESENCE_BRIDGE_TEST_POSTGRES_URL` (a fresh database per run) and the daemon binary
//! (`cargo bench --bench failover` builds it).

#[path = "../tests/it/replicas/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::{Replicas, TestDatabase, Traffic};

const RUNS: usize = 5;
const AGENTS: usize = 12;
const PACE: Duration = Duration::from_millis(150);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let lease_secs: u64 = std::env::var("FAILOVER_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut taken = Vec::new();
    let mut first_write = Vec::new();
    for run in 1..=RUNS {
        let Some(db) = TestDatabase::create("the failover bench").await else {
            return;
        };
        let mut r = Replicas::new(db, 3, AGENTS, lease_secs).await;
        r.start_all().await;
        let (owner, _) = r.owner("engine").await.expect("an engine owner");
        let ingress = (owner + 1) % 3;
        r.route_events_to(ingress);
        let traffic = Traffic::start(&r.cc, AGENTS, PACE);
        r.wait_writes_past(10).await;
        let before = r.teams_writes();
        let killed = Instant::now();
        r.kill(owner);
        let (next, _) = r.wait_owner("engine", Some(owner)).await;
        let t = killed.elapsed();
        let w = r.wait_writes_past(before).await - killed;
        println!(
            "run {run}: kill -9 of replica {owner} → replica {next} holds the engine lease after \
             {:.2} s, first write by it after {:.2} s (lease {lease_secs} s)",
            t.as_secs_f64(),
            w.as_secs_f64()
        );
        taken.push(t.as_secs_f64());
        first_write.push(w.as_secs_f64());
        traffic.stop().await;
        r.finish().await;
    }
    for (what, v) in [
        ("lease taken", &mut taken),
        ("first write", &mut first_write),
    ] {
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{what}: min {:.2} s, median {:.2} s, max {:.2} s over {RUNS} runs",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        );
    }
}
