//! Ordering and durability under crashes, replays and locks (see `hostile/mod.rs`):
//!
//! - `store`: what the store guarantees on SQLite and Postgres: observed statuses never go
//!   back in time, a restarted instance takes back its own leases (and only those), event ids
//!   and per-agent times survive a restart and are checked atomically, readiness probes
//!   writability.
//! - `engine`: an observation older than the one applied changes nothing through the whole
//!   daemon; the engine's readiness comes back after a database lock; the SQLite durability
//!   option.
//! - `kill`: the real binary killed with `kill -9` while it holds leased items, restarted,
//!   and every agent's status on both sides checked against its last accepted event.

mod engine;
mod kill;
mod store;

/// Declares a store-level test once; it runs as `<name>::sqlite` and `<name>::postgres` (the
/// latter only when `PRESENCE_BRIDGE_TEST_POSTGRES_URL` is set).
macro_rules! both_backends {
    ($(async fn $name:ident($db:ident: TestDb) $body:block)*) => {$(
        mod $name {
            use super::*;
            async fn body($db: TestDb) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::store::with_sqlite(body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::store::with_postgres(module_path!(), body).await
            }
        }
    )*};
}
use both_backends;
