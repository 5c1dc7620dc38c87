//! Consumers of what the connectors take in, beyond presence: the contact lifecycle written to
//! Microsoft Dynamics 365 ([`dynamics`]). An integration reads contact events (and messages)
//! once the connectors' ingest path has stored them, and does its outside work through the
//! shared durable queue of [`crate::store`], one job per step; it never decides presence and
//! never touches the engine. It sits above `connectors` (whose types it reads) and below
//! `app`, which wires it.

pub mod dynamics;
