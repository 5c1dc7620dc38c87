//! presence-bridge keeps Microsoft Teams presence and contact-center agent status in step.
//!
//! Architecture in one paragraph: every input (a Graph change notification, a Graph presence
//! poll, a contact-center event or poll, a reconciliation read) becomes an
//! [`model::Observation`] and is written to the durable inbox ([`inbox`]) before it is
//! acknowledged. The engine ([`engine`]) takes observations for one user in order, applies the
//! admin's mapping tables, hold-down, echo and loop guards, and emits decisions; writers at the
//! edges carry them out through Microsoft Graph ([`graph`]) or a contact-center connector
//! ([`connectors`]). State lives behind the [`store::Store`] trait (SQLite by default, Postgres
//! for several replicas). [`app::Application`] wires the parts, [`http`] serves the webhook,
//! health, metrics and API routes. With the `demo` feature (on by default) `sim` holds the
//! simulated Graph tenant and contact center used by the tests, the demo and the benchmarks;
//! production builds (`--no-default-features`) leave it out.

pub mod app;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod engine;
pub mod graph;
pub mod health;
pub mod http;
pub mod job;
pub mod model;
pub mod net;
pub mod runtime;
#[cfg(feature = "demo")]
pub mod sim;
pub mod store;
pub mod telemetry;
