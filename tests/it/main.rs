//! The one integration-test binary: each module exercises the real daemon over HTTP against
//! the simulators, real SQLite files and (when configured) the local Postgres server.

mod engine;
mod foundation;
mod helpers;
mod store;
