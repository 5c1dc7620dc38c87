//! The one integration-test binary: each module exercises the real daemon over HTTP against
//! the simulators, real SQLite files and (when configured) the local Postgres server.

mod connectors;
mod connectors_amazon;
mod connectors_genesys;
mod connectors_http;
mod demo;
mod engine;
mod foundation;
mod graph;
mod graph_notify;
mod helpers;
mod layering;
mod store;
