//! Postgres implementation of [`super::Store`], for several replicas sharing one database.
//! The method bodies are shared with SQLite ([`super::sql`]); only the inbox claim differs,
//! locking with `FOR UPDATE SKIP LOCKED` so replicas never lease the same item.

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::sql::{scrub, shown_url};
use super::{StoreError, StoreResult};
use crate::store::config::StoreConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// How long taking a connection from the pool (or opening one) may wait. Short, so that
/// readiness reports a dead database within a probe's timeout instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// The Postgres store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// `store.instance_id`: the name inbox leases are held under.
    owner: String,
}

impl PgStore {
    /// Connects to the server named by `store.url` and applies the migrations (under
    /// Postgres's advisory lock, so replicas starting together do not race).
    pub async fn open(cfg: &StoreConfig) -> StoreResult<Self> {
        let url = cfg.url.expose_secret();
        let shown = shown_url(url);
        let opts = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!(
                "store.url {shown:?} is not a valid Postgres URL ({}); use postgres://user@host:5432/db",
                scrub(&e.to_string(), url)
            ))
        })?;
        let unreachable = |cause: String| {
            StoreError::Unavailable(format!(
                "cannot connect to Postgres at {shown} ({}); check that the server is running and store.url is right",
                scrub(&cause, url)
            ))
        };
        // One direct connection first: it fails with the real cause (refused, authentication,
        // unknown database) where the pool would only report a timeout. A server that is not
        // up yet (refused, unreachable, silent) is tried again until connect_wait_secs have
        // passed, so a container started before its database does not exit at once.
        let started = std::time::Instant::now();
        let wait = Duration::from_secs(cfg.connect_wait_secs);
        let mut delay = Duration::from_millis(500);
        let mut attempt = 1u32;
        let probe = loop {
            let cause = match tokio::time::timeout(
                ACQUIRE_TIMEOUT,
                PgConnection::connect_with(&opts),
            )
            .await
            {
                Ok(Ok(conn)) => break conn,
                Ok(Err(e @ (sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut))) => e.to_string(),
                Ok(Err(e)) => return Err(unreachable(e.to_string())),
                Err(_) => format!("no answer within {ACQUIRE_TIMEOUT:?}"),
            };
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(unreachable(if attempt > 1 {
                    format!(
                        "{cause}; gave up after {attempt} attempts in {} s (store.connect_wait_secs)",
                        started.elapsed().as_secs()
                    )
                } else {
                    cause
                }));
            }
            let pause = delay.min(left);
            tracing::warn!(
                database = %shown,
                attempt,
                retry_in_ms = pause.as_millis() as u64,
                cause = %scrub(&cause, url),
                "database not reachable yet; trying again"
            );
            tokio::time::sleep(pause).await;
            delay = (delay * 2).min(Duration::from_secs(10));
            attempt += 1;
        };
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(opts)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot migrate the Postgres database at {shown} ({}); check the role's rights",
                scrub(&e.to_string(), url)
            ))
        })?;
        Ok(Self {
            pool,
            owner: cfg.instance_id(),
        })
    }
}

super::sql::impl_store!(
    PgStore,
    sqlx::Postgres,
    "postgres",
    "FOR UPDATE SKIP LOCKED"
);
