//! Work ownership between processes sharing one database.
//!
//! Postgres ([`PgLeases`]): a row per piece of work in `leases`, held by one process until it
//! expires by the database's clock (so the replicas' clocks do not matter). Taking a lease
//! that ran out (or was released) adds one to its fencing token; renewing, releasing and the
//! fence check all name the token, so a process that lost a lease while it was paused can
//! neither renew it nor pass the check. New inbox rows and released leases are announced with
//! `NOTIFY` ([`PgLeases::listen`]).
//!
//! SQLite ([`SqliteLock`]): one process per database file, enforced by an exclusive `flock`
//! on `<database>.lock` that the kernel drops with the process, `kill -9` included.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::config::StoreConfig;
use super::sql::{db_err, scrub, shown_url};
use super::{StoreError, StoreResult};

/// Channel of the inbox trigger (migration `20261130100200_leases`).
pub const INBOX_CHANNEL: &str = "presence_bridge_inbox";
/// Channel a released lease is announced on (payload: the lease name).
pub const LEASE_CHANNEL: &str = "presence_bridge_leases";
/// Connections of the lease pool: renewals and fence checks are small and must not queue
/// behind the store's bulk work, so they have a pool of their own.
const POOL_CONNECTIONS: u32 = 4;
/// How long a lease statement may wait for a connection: a renewal that cannot run within
/// this is treated as failed (the holder stops at its local deadline).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// One row of `leases`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub expires_at: DateTime<Utc>,
    /// Whether it is held now (by the database's clock).
    pub live: bool,
}

/// The leases of a Postgres database.
#[derive(Clone, Debug)]
pub struct PgLeases {
    pool: PgPool,
}

impl PgLeases {
    /// A small pool of its own on `store.url` (the store has applied the migrations),
    /// connecting on first use: a database that is slow to answer makes the keepers retry
    /// instead of failing the start.
    pub fn connect(cfg: &StoreConfig) -> StoreResult<Self> {
        let url = cfg.url.expose_secret();
        let opts = PgConnectOptions::from_str(url).map_err(|e| {
            StoreError::Unavailable(format!(
                "store.url {:?}: {}",
                shown_url(url),
                scrub(&e.to_string(), url)
            ))
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(opts);
        Ok(Self { pool })
    }

    /// Takes `name` for `holder` for `ttl` when nobody holds it (or its holder let it run
    /// out); returns the new fencing token, or `None` while another holder has it.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<Option<i64>> {
        sqlx::query_scalar(
            "INSERT INTO leases (name, holder, token, expires_at, acquired_at) \
             VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond', now()) \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                 token = leases.token + 1, expires_at = EXCLUDED.expires_at, acquired_at = now() \
             WHERE leases.expires_at <= now() \
             RETURNING token",
        )
        .bind(name)
        .bind(holder)
        .bind(millis(ttl))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)
    }

    /// Extends a lease still held under `token`; `false` when it ran out or changed hands
    /// (the holder has lost it and must stop).
    pub async fn renew(
        &self,
        name: &str,
        holder: &str,
        token: i64,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE leases SET expires_at = now() + $4 * interval '1 millisecond' \
             WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(millis(ttl))
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    /// Gives a lease up at once (graceful stop) and announces it, so a follower takes it
    /// without waiting for it to run out. A lease no longer held under `token` is left alone.
    pub async fn release(&self, name: &str, holder: &str, token: i64) -> StoreResult<()> {
        sqlx::query(
            "WITH gone AS (UPDATE leases SET expires_at = now() \
                 WHERE name = $1 AND holder = $2 AND token = $3 RETURNING name) \
             SELECT pg_notify($4, name) FROM gone",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .bind(LEASE_CHANNEL)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)
        .map(drop)
    }

    /// The fence: whether `holder` still holds `name` under `token` now.
    pub async fn holds(&self, name: &str, holder: &str, token: i64) -> StoreResult<bool> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM leases WHERE name = $1 AND holder = $2 \
             AND token = $3 AND expires_at > now())",
        )
        .bind(name)
        .bind(holder)
        .bind(token)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)
    }

    /// Every lease, by name.
    pub async fn list(&self) -> StoreResult<Vec<LeaseRow>> {
        let rows: Vec<(String, String, i64, DateTime<Utc>, bool)> = sqlx::query_as(
            "SELECT name, holder, token, expires_at, expires_at > now() FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(name, holder, token, expires_at, live)| LeaseRow {
                name,
                holder,
                token,
                expires_at,
                live,
            })
            .collect())
    }

    /// Frees every leased inbox item (attempts + 1). Called by a new engine owner: only the
    /// engine owner claims items, so any lease on one belongs to a previous owner, which can
    /// no longer ack it (its fence fails); the items are processed again, in their order.
    pub async fn free_inbox_items(&self) -> StoreResult<u64> {
        Ok(sqlx::query(
            "UPDATE inbox SET lease_until = NULL, lease_owner = NULL, attempts = attempts + 1 \
             WHERE lease_until IS NOT NULL",
        )
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected())
    }

    /// A connection listening on [`INBOX_CHANNEL`] and [`LEASE_CHANNEL`].
    pub async fn listen(&self) -> StoreResult<PgListener> {
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(db_err)?;
        listener
            .listen_all([INBOX_CHANNEL, LEASE_CHANNEL])
            .await
            .map_err(db_err)?;
        Ok(listener)
    }
}

fn millis(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// The exclusive lock of a SQLite database's one process; dropped (and so released) with the
/// process or this value.
#[derive(Debug)]
pub struct SqliteLock {
    _file: File,
    pub path: PathBuf,
}

impl SqliteLock {
    /// Locks `<database>.lock` next to the database, writing who holds it; refused while
    /// another process holds it, with a message naming that process.
    pub fn acquire(database: &Path, instance: &str) -> StoreResult<SqliteLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot open the lock file {}: {e}",
                    path.display()
                ))
            })?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            return Err(StoreError::Conflict(format!(
                "the SQLite database {} is in use by another presence-bridge process{}; a SQLite \
                 database serves one replica: stop the other process, or use Postgres \
                 (store.url = \"postgres://…\") to run several replicas",
                database.display(),
                if holder.is_empty() {
                    String::new()
                } else {
                    format!(" ({holder})")
                }
            )));
        }
        let _ = file.set_len(0);
        let _ = write!(
            file,
            "instance {instance}, pid {}, since {}",
            std::process::id(),
            Utc::now().to_rfc3339()
        );
        let _ = file.flush();
        Ok(SqliteLock { _file: file, path })
    }
}
