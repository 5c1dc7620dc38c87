//! The one integration-test binary: each module exercises the real daemon over HTTP against
//! the simulators, real SQLite files and (when configured) the local Postgres server.
//! Modules that need the simulators build only with the `demo` feature (on by default).

#[cfg(feature = "demo")]
mod connectors;
mod connectors_amazon;
#[cfg(feature = "demo")]
mod connectors_genesys;
#[cfg(feature = "demo")]
mod connectors_http;
#[cfg(feature = "demo")]
mod demo;
mod engine;
mod foundation;
#[cfg(feature = "demo")]
mod graph;
#[cfg(feature = "demo")]
mod graph_notify;
mod helpers;
#[cfg(feature = "demo")]
mod hostile;
mod layering;
mod operator;
mod store;
