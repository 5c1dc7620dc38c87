//! The engine's I/O shell: takes observations from the durable inbox, runs the pure engine
//! per user on sharded workers, carries decisions out through Microsoft Graph and the
//! contact-center connectors, reconciles both sides and keeps the audit log.
//!
//! Other parts read and steer it only through typed calls: [`reconcile::request`],
//! [`reconcile::last_report`], [`users::sync_states`], [`audit::decisions`], [`audit::explain`].

pub mod alerts;
pub mod audit;
pub mod matching;
pub mod pilot;
pub mod queue;
pub mod reconcile;
pub mod service;
mod shards;
pub mod users;
pub mod worker;
pub mod writer;

pub use service::{EngineRuntime, RuntimeDeps};
