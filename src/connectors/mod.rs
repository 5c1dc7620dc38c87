//! Contact-center connectors behind one trait, [`ContactCenter`]. Each connector talks to one
//! platform and to nothing else: it lists agents and the status catalog, reads and sets agent
//! statuses, and turns the platform's events into [`AgentEvent`]s.
//!
//! Owns: `[[connectors]]` config ([`config`]), the shared resilience layer ([`retry`]: the
//! request budget, backoff, `Retry-After`, health), OAuth2 client credentials ([`oauth`]), the
//! REST client ([`rest`]), the connectors ([`http`], [`genesys`], [`amazon_connect`],
//! [`innovaphone`], [`ccai`]), the ingest path from events to the durable inbox ([`ingest`])
//! and the per-connector jobs ([`runtime`]). It does not decide anything: mapping, echo and
//! loop rules are the engine's; it only writes observations to the inbox and agent lists to
//! the store.

pub mod amazon_connect;
pub mod ccai;
pub mod config;
pub mod genesys;
pub mod http;
pub mod ingest;
pub mod innovaphone;
pub(crate) mod oauth;
pub mod poll;
pub(crate) mod rest;
pub(crate) mod retry;
pub mod runtime;

pub use crate::model::contact_center::{
    Activity, Agent, AgentEvent, AgentStatus, CatalogStatus, Channel, ConnectorError,
    ConnectorEvent, ContactActivity, ContactCenter, ContactEvent, ContactEventKind, InboundError,
    InboundWebhook, StatusKind,
};
pub use runtime::{ConnectorHandle, ConnectorRegistry, build_connectors, render_set_status};
