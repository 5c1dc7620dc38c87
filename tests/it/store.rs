//! The store suite, written once and run against SQLite (a temp file per test) and, when
//! `PRESENCE_BRIDGE_TEST_POSTGRES_URL` is set, against Postgres (a fresh schema per test).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::FutureExt;
use presence_bridge::model::Side;
use presence_bridge::store::config::StoreConfig;
use presence_bridge::store::{
    self, AgentRecord, AuditEntry, NewInboxItem, ObservedStatus, Store, StoreError,
    SubscriptionRecord, SyncAccountRecord, UserMatch, UserRecord, WriteRecord,
};
use secrecy::SecretString;
use serde_json::json;

const PG_ENV: &str = "PRESENCE_BRIDGE_TEST_POSTGRES_URL";

/// One test database: a temp SQLite file or a Postgres schema. `open` may be called again to
/// simulate a restart.
#[derive(Clone)]
pub struct TestDb {
    pub cfg: StoreConfig,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestDb {
    pub async fn open(&self) -> Arc<dyn Store> {
        store::open(&self.cfg).await.expect("store opens")
    }
}

fn store_config(url: String) -> StoreConfig {
    StoreConfig {
        url: SecretString::from(url),
        ..StoreConfig::default()
    }
}

/// Runs `body` against a fresh SQLite file.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/nested/dir/store.db", dir.path().display());
    body(TestDb {
        cfg: store_config(url),
        _dir: Some(Arc::new(dir)),
    })
    .await
}

/// Runs `body` against a fresh Postgres schema, dropped afterwards (also when `body` panics);
/// prints that it was skipped when no server is configured.
pub async fn with_postgres<F, Fut>(name: &str, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(base) = std::env::var(PG_ENV) else {
        eprintln!("skipped {name} on postgres: {PG_ENV} is not set");
        return;
    };
    let schema = ScratchSchema::create(&base, "t").await;
    let db = TestDb {
        cfg: store_config(schema.url.clone()),
        _dir: None,
    };
    let outcome = std::panic::AssertUnwindSafe(body(db)).catch_unwind().await;
    schema.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each test once; it runs as `<name>::sqlite` and `<name>::postgres`.
macro_rules! store_suite {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn body($db: TestDb) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                with_sqlite(body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                with_postgres(module_path!(), body).await
            }
        }
    )*};
}

pub fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_750_000_000_000 + secs * 1000 + 123)
        .unwrap()
}

pub fn user(id: &str, agent: Option<&str>) -> UserRecord {
    UserRecord {
        teams_id: id.into(),
        upn: format!("{id}@example.com"),
        mail: Some(format!("{id}@example.com")),
        display_name: Some(format!("User {id}")),
        business_phones: vec!["+1 555 0100".into(), "+1 555 0101".into()],
        mobile_phone: None,
        cc_connector: agent.map(|_| "genesys".into()),
        cc_agent_id: agent.map(Into::into),
        active: true,
        updated_at: t(0),
    }
}

pub fn account(id: &str, upn: &str) -> SyncAccountRecord {
    SyncAccountRecord {
        id: id.into(),
        upn: upn.into(),
        user_object_id: Some("obj-1".into()),
        encrypted_refresh_token: vec![0, 1, 2, 255, 254],
        state: "healthy".into(),
        last_refresh_at: None,
        last_error: None,
        created_at: t(1),
    }
}

pub fn item(n: usize) -> NewInboxItem {
    NewInboxItem {
        kind: "observation".into(),
        user_id: Some(format!("u{n}")),
        payload: json!({ "n": n, "text": "héllo" }),
        received_at: t(n as i64),
    }
}

mod contact_state;
mod contacts;
mod cursors;
mod errors;
mod prune;
mod queue;
mod scratch;
mod suite;

use scratch::ScratchSchema;
