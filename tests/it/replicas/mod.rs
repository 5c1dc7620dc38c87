//! Several daemon processes on one Postgres database: `kill -9` of the owner, a paused
//! owner, a rolling restart, one Graph subscription per shard across a takeover; and the
//! one-process rule of SQLite.

mod failover;
mod fence;
mod harness;
mod sqlite;
mod subscriptions;
