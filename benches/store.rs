//! Store throughput: `inbox_push` rows/s by batch size, `ingest_push` (one contact-center
//! event per transaction, as a webhook pushes it) events/s, and `inbox_claim` + `inbox_ack`
//! items/s, on SQLite (a temp file, once with `store.sqlite_synchronous = "normal"` and once
//! with `"full"`) and on Postgres when `PRESENCE_BRIDGE_TEST_POSTGRES_URL` is set (a fresh
//! schema, dropped afterwards). Prints figures; asserts nothing.
//!
//! `cargo bench --bench store`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use presence_bridge::store::config::{SqliteSynchronousMode, StoreConfig};
use presence_bridge::store::{self, IngestRow, NewInboxItem, Store};
use secrecy::SecretString;
use serde_json::json;

#[path = "../tests/it/store/scratch.rs"]
mod scratch;
use scratch::ScratchSchema;

/// How long each measurement runs; with 4 batch sizes plus claim/ack on two backends the
/// whole bench stays well under a minute.
const RUN_FOR: Duration = Duration::from_secs(3);
const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];
const CLAIM_BATCH: u32 = 500;
/// Concurrent pushers (webhook requests arriving together), each pushing batches of 10.
const PUSHERS: usize = 8;

fn config(url: String) -> StoreConfig {
    StoreConfig {
        url: SecretString::from(url),
        ..StoreConfig::default()
    }
}

/// A payload shaped like a serialized observation.
fn items(n: usize) -> Vec<NewInboxItem> {
    (0..n)
        .map(|i| NewInboxItem {
            kind: "observation".into(),
            user_id: Some(format!("8f0c6a1e-1d2b-4c3a-9e8f-{i:012}")),
            payload: json!({
                "user": format!("8f0c6a1e-1d2b-4c3a-9e8f-{i:012}"),
                "side": "teams",
                "status": {"teams": {"availability": "Busy", "activity": "InACall"}},
                "observed_at": Utc::now(),
                "source": "graph_webhook",
            }),
            received_at: Utc::now(),
        })
        .collect()
}

async fn bench(name: &str, s: Arc<dyn Store>) {
    for batch in BATCH_SIZES {
        let batch_items = items(batch);
        let start = Instant::now();
        let mut rows = 0usize;
        while start.elapsed() < RUN_FOR {
            s.inbox_push(&batch_items).await.expect("push");
            rows += batch;
        }
        let rate = rows as f64 / start.elapsed().as_secs_f64();
        println!("{name:12} inbox_push  batch {batch:5}: {rate:>10.0} rows/s");
    }
    let start = Instant::now();
    let mut events = 0usize;
    while start.elapsed() < RUN_FOR {
        let item = items(1).remove(0);
        let row = IngestRow {
            event_id: Some(uuid::Uuid::new_v4().to_string()),
            agent_id: format!("agent-{}", events % 100),
            at: Utc::now(),
            item,
        };
        s.ingest_push("bench", &[row]).await.expect("ingest push");
        events += 1;
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    println!("{name:12} ingest_push 1 event/tx  : {rate:>10.0} events/s");
    let start = Instant::now();
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let batch = items(10);
                let mut rows = 0usize;
                while start.elapsed() < RUN_FOR {
                    s.inbox_push(&batch).await.expect("push");
                    rows += batch.len();
                }
                rows
            })
        })
        .collect();
    let mut rows = 0;
    for p in pushers {
        rows += p.await.expect("pusher");
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64();
    println!("{name:12} inbox_push  {PUSHERS} tasks x batch 10: {rate:>10.0} rows/s");

    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < RUN_FOR {
        let claimed = s.inbox_claim(CLAIM_BATCH, 60).await.expect("claim");
        if claimed.is_empty() {
            break;
        }
        let ids: Vec<i64> = claimed.iter().map(|i| i.id).collect();
        s.inbox_ack(&ids).await.expect("ack");
        done += ids.len();
    }
    let rate = done as f64 / start.elapsed().as_secs_f64();
    println!("{name:12} claim+ack   batch {CLAIM_BATCH:5}: {rate:>10.0} items/s");
}

#[tokio::main]
async fn main() {
    // Next to the build output, on the disk the project lives on: a tmpfs /tmp would make
    // every sync free and the comparison meaningless.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    for (name, mode) in [
        ("sqlite", SqliteSynchronousMode::Normal),
        ("sqlite-full", SqliteSynchronousMode::Full),
    ] {
        let url = format!("sqlite://{}/{name}.db", dir.path().display());
        let cfg = StoreConfig {
            sqlite_synchronous: mode,
            ..config(url)
        };
        let s = store::open(&cfg).await.expect("sqlite opens");
        bench(name, s).await;
    }

    let Ok(base) = std::env::var("PRESENCE_BRIDGE_TEST_POSTGRES_URL") else {
        println!("postgres skipped: PRESENCE_BRIDGE_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = ScratchSchema::create(&base, "bench").await;
    let s = store::open(&config(schema.url.clone()))
        .await
        .expect("postgres opens");
    bench("postgres", s).await;
    schema.drop().await;
}
