//! SQLite implementation of [`super::Store`]: one file, WAL journal, created with its parent
//! directory when missing. The method bodies are shared with Postgres ([`super::sql`]).

use std::str::FromStr;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::sql::shown_url;
use super::{StoreError, StoreResult};
use crate::store::config::{SqliteSynchronousMode, StoreConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// `store.instance_id`: the name inbox leases are held under.
    owner: String,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file named by `store.url` and applies the
    /// migrations. Opening an up-to-date file again changes nothing.
    pub async fn open(cfg: &StoreConfig) -> StoreResult<Self> {
        let url = cfg.url.expose_secret();
        let shown = shown_url(url);
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "store.url {shown:?} is not a valid SQLite URL ({e}); use sqlite://path/to/file.db"
                ))
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match cfg.sqlite_synchronous {
                SqliteSynchronousMode::Normal => SqliteSynchronous::Normal,
                SqliteSynchronousMode::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_millis(cfg.sqlite_busy_timeout_ms))
            .foreign_keys(true);
        let path = opts.get_filename().to_owned();
        let in_memory = path.as_os_str() == ":memory:";
        if let Some(dir) = path
            .parent()
            .filter(|d| !in_memory && !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create the directory {} for store.url ({e}); create it or point store.url elsewhere",
                    dir.display()
                ))
            })?;
        }
        // Each in-memory connection would be its own database: keep exactly one, forever.
        let pool_opts = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(cfg.max_connections)
        };
        let pool = pool_opts.connect_with(opts).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot open the SQLite database {} ({e}); check that the path is writable",
                path.display()
            ))
        })?;
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot migrate the SQLite database {} ({e}); was it written by a newer version?",
                path.display()
            ))
        })?;
        Ok(Self {
            pool,
            owner: cfg.instance_id(),
        })
    }
}

super::sql::impl_store!(SqliteStore, sqlx::Sqlite, "sqlite", "");

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_synchronous_is_what_the_connections_use() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, pragma) in [
            (SqliteSynchronousMode::Normal, 1),
            (SqliteSynchronousMode::Full, 2),
        ] {
            let cfg = StoreConfig {
                url: format!("sqlite://{}/{pragma}.db", dir.path().display()).into(),
                sqlite_synchronous: mode,
                ..StoreConfig::default()
            };
            let s = SqliteStore::open(&cfg).await.unwrap();
            let got: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&s.pool)
                .await
                .unwrap();
            assert_eq!(got, pragma, "{mode:?}");
        }
    }
}
