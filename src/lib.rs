//! presence-bridge keeps Microsoft Teams presence and contact-center agent status in step.
//!
//! Architecture in one paragraph: every input (a Graph change notification, a Graph presence
//! poll, a contact-center event or poll, a reconciliation read) becomes a
//! [`model::Observation`] and is written to the durable inbox ([`store::inbox`]) before it is
//! acknowledged. The engine's I/O shell ([`runtime`]) takes observations for one user in order
//! and hands them to the pure engine ([`engine`]: mapping tables, hold-down, echo and loop
//! guards), then carries the decisions out through Microsoft Graph ([`graph`]) or a
//! contact-center connector ([`connectors`]), both using one outbound HTTP policy ([`net`]).
//! State lives behind the [`store::Store`] trait (SQLite by default, Postgres for several
//! replicas). [`app::Application`] is the composition root: its builder wires every part and
//! the router of [`http`]; [`cli`] holds the commands. With the `demo` feature (on by
//! default) `sim` holds the simulated Graph tenant and contact centers used by the tests, the
//! demo and the benchmarks; production builds (`--no-default-features`) leave it out.
//!
//! Imports point one way, and `tests/it/layering.rs` enforces it: [`model`] (types and the
//! ports: health, the contact-center trait, clock), [`config`] (the section toolkit) and
//! [`job`] import nothing else; then [`engine`] and [`telemetry`]; then [`store`] and [`net`];
//! then [`graph`] and [`connectors`]; then `sim` and [`runtime`]; then [`http`], [`app`] and
//! [`cli`], in that order.

pub mod app;
pub mod cli;
pub(crate) mod config;
pub mod connectors;
pub mod engine;
pub mod graph;
pub(crate) mod http;
pub mod integrations;
pub(crate) mod job;
pub mod model;
pub(crate) mod net;
pub mod runtime;
#[cfg(feature = "demo")]
pub mod sim;
pub mod store;
pub mod telemetry;
