//! The hostile-input and fault suite: every defect found by running the daemon against
//! independent implementations of Graph and of a contact center, and by attacking it from
//! outside, reproduced here. Run it alone with `cargo test hostile`.
//!
//! - `ordering`: stale observations after a crash, lease reclaim, durable replay protection,
//!   `kill -9` with leased items in flight, SQLite durability setting, store writability.
//! - `ingest`: contact-center webhook timestamps, replay window covered by the signature,
//!   template path segments, outbound calls cancelled on shutdown.
//! - `surface`: fixed metric labels, slow and idle connections, connection cap, Graph
//!   notification batch cap and unknown ids, opaque validation tokens.
//! - `graph`: bad user ids in a coalesced read, `Retry-After` beyond the cap, coverage gaps,
//!   certificate and URL changes on existing subscriptions, Graph readiness.
//! - `cli`: DSN redaction in every form, broken pipes.

mod cli;
mod fuzz_finds;
mod graph;
mod ingest;
mod ordering;
mod surface;
