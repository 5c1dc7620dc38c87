//! Three replicas under steady traffic; the owner of every piece of work is killed with
//! `kill -9`, then paused with SIGSTOP past its lease, then all three are restarted one by one.
//! Every time another replica takes over within the lease time, no transition reaches Teams
//! twice (no person has more writes on the tenant's write log than write decisions in the
//! audit trail) and none is lost (both sides end where the last accepted event of every
//! agent says).

use std::time::{Duration, Instant};

use super::harness::{Replicas, TestDatabase, Traffic};

const AGENTS: usize = 12;
/// Short, so the test is quick; the default is 15 s.
const LEASE_SECS: u64 = 4;
/// Each agent's status changes this often.
const PACE: Duration = Duration::from_millis(150);
/// Teams writes to see after a takeover before the traffic stops.
const WRITES_AFTER: usize = 20;

async fn three_replicas(test: &str) -> Option<Replicas> {
    let db = TestDatabase::create(test).await?;
    let mut r = Replicas::new(db, 3, AGENTS, LEASE_SECS).await;
    r.start_all().await;
    Some(r)
}

async fn assert_no_double_writes(r: &Replicas) {
    let doubles = r.double_writes().await;
    if let Some(first) = doubles.first() {
        let user = first.split(' ').next().unwrap_or_default();
        panic!(
            "{} transitions written twice:\n{}\ndecisions for {user}:\n{}",
            doubles.len(),
            doubles.join("\n"),
            r.audit(user).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_hands_every_piece_of_work_to_another_replica() {
    let Some(mut r) = three_replicas("replicas::failover::kill_9").await else {
        return;
    };
    let (owner, token) = r.owner("engine").await.expect("an engine owner");
    assert_eq!(owner, 0, "the first replica up takes the engine");
    let ingress = 1;
    r.route_events_to(ingress);
    let traffic = Traffic::start(&r.cc, AGENTS, PACE);
    r.wait_writes_past(WRITES_AFTER).await;

    let before = r.teams_writes();
    let killed_at = Instant::now();
    r.kill(owner);
    let (next, next_token) = r.wait_owner("engine", Some(owner)).await;
    let taken = killed_at.elapsed();
    let first_write = r.wait_writes_past(before).await - killed_at;
    eprintln!(
        "kill -9: replica {next} took the engine lease (token {next_token}) after {taken:?}; \
         first Teams write after the kill at {first_write:?}"
    );
    assert!(
        next_token > token,
        "the fencing token grows at each new owner"
    );
    assert!(
        taken <= Duration::from_secs(LEASE_SECS) + Duration::from_secs(2),
        "takeover took {taken:?}, lease time {LEASE_SECS} s"
    );
    for lease in ["graph_presence", "graph_directory", "connector:simcc"] {
        let (i, _) = r.wait_owner(lease, Some(owner)).await;
        assert_ne!(i, owner, "{lease}");
    }

    let n = r.teams_writes();
    r.wait_writes_past(n + WRITES_AFTER).await;
    let expected = traffic.stop().await;
    r.wait_settled(&expected).await;
    assert_no_double_writes(&r).await;
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_past_its_lease_is_fenced_and_follows_when_it_wakes() {
    let Some(r) = three_replicas("replicas::failover::sigstop").await else {
        return;
    };
    let (owner, _) = r.owner("engine").await.expect("an engine owner");
    r.route_events_to(1);
    let traffic = Traffic::start(&r.cc, AGENTS, PACE);
    r.wait_writes_past(WRITES_AFTER).await;

    r.signal(owner, libc::SIGSTOP);
    let (next, _) = r.wait_owner("engine", Some(owner)).await;
    let n = r.teams_writes();
    r.wait_writes_past(n + WRITES_AFTER).await;

    // Renewals wait while the test holds the leases table (reads go on), so the woken
    // replica keeps running its work a moment longer, still believing it owns it: the inbox
    // rows the traffic keeps adding wake its engine, whose writes its fence must refuse.
    let mut hold = r.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE leases IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    r.signal(owner, libc::SIGCONT);
    let deadline = Instant::now() + super::harness::WAIT;
    while !std::fs::read_to_string(r.log_path(owner))
        .unwrap()
        .lines()
        .any(|l| l.contains("fenced: write refused"))
    {
        assert!(
            Instant::now() < deadline,
            "the woken replica tried no write under its old lease (or was not refused):\n{}",
            r.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    hold.rollback().await.unwrap();

    // It wakes, finds its leases gone, stops its work and follows.
    let http = reqwest::Client::new();
    let ready = format!("{}/health/ready", r.replicas[owner].base);
    let deadline = Instant::now() + super::harness::WAIT;
    loop {
        let body: serde_json::Value = match http.get(&ready).send().await {
            Ok(resp) => resp.json().await.unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let cluster = body["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == "cluster")
            .and_then(|c| c["detail"].as_str())
            .unwrap_or_default()
            .to_owned();
        if cluster.starts_with("role: follower") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the woken replica did not follow: {cluster:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = std::fs::read_to_string(r.log_path(owner)).unwrap();
    assert!(
        log.contains("lost the engine lease"),
        "the woken replica logs that it lost the engine lease"
    );
    let fenced = log.matches("fenced: write refused").count();
    for line in log
        .lines()
        .filter(|l| l.contains("fenced") || l.contains("lost the"))
    {
        eprintln!("{}", &line[..line.len().min(300)]);
    }
    eprintln!("sigstop: replica {next} took over; the woken replica had {fenced} writes refused");
    assert!(fenced > 0, "refused writes are logged");
    let metrics = http
        .get(format!("{}/metrics", r.replicas[owner].base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("cluster_fenced_writes_total{lease=\"engine\"}")),
        "refused writes are counted:\n{metrics}"
    );
    assert_eq!(r.owner("engine").await.map(|o| o.0), Some(next));

    let expected = traffic.stop().await;
    r.wait_settled(&expected).await;
    assert_no_double_writes(&r).await;
    r.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_all_three_loses_and_doubles_nothing() {
    let Some(mut r) = three_replicas("replicas::failover::rolling").await else {
        return;
    };
    r.route_events_to(1);
    let traffic = Traffic::start(&r.cc, AGENTS, PACE);
    r.wait_writes_past(WRITES_AFTER).await;
    for i in 0..3 {
        r.route_events_to((i + 1) % 3);
        let owned = r.owner("engine").await.map(|o| o.0) == Some(i);
        let stopping = Instant::now();
        let status = r.stop(i);
        assert!(status.success(), "replica {i} stopped with {status}");
        if owned {
            let (next, _) = r.wait_owner("engine", Some(i)).await;
            eprintln!(
                "rolling restart: replica {i} stopped, replica {next} runs the engine after {:?}",
                stopping.elapsed()
            );
        }
        r.start(i).await;
        let n = r.teams_writes();
        r.wait_writes_past(n + WRITES_AFTER / 2).await;
    }
    let expected = traffic.stop().await;
    r.wait_settled(&expected).await;
    assert_no_double_writes(&r).await;
    r.finish().await;
}
