//! The one integration-test binary: each module exercises the real daemon over HTTP against
//! the simulators, real SQLite files and (when configured) the local Postgres server.
//! Modules that need the simulators build only with the `demo` feature (on by default).

#[cfg(feature = "demo")]
mod connectors;
mod connectors_amazon;
#[cfg(feature = "demo")]
mod connectors_amazon_contacts;
#[cfg(feature = "demo")]
mod connectors_ccai;
#[cfg(feature = "demo")]
mod connectors_genesys;
#[cfg(feature = "demo")]
mod connectors_http;
#[cfg(feature = "demo")]
mod connectors_innovaphone;
mod console;
#[cfg(feature = "demo")]
mod contact_states;
#[cfg(feature = "demo")]
mod demo;
#[cfg(feature = "demo")]
mod demo_cc;
#[cfg(feature = "demo")]
mod dynamics;
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
#[cfg(feature = "demo")]
mod messaging;
#[cfg(feature = "demo")]
mod multi_connector;
mod operator;
#[cfg(feature = "demo")]
mod replicas;
#[cfg(feature = "demo")]
mod scope;
mod store;
