//! The sync engine: mapping tables, per-user state, hold-down, echo and loop guards, restore,
//! reconciliation. The core ([`decide`]) is pure logic (observations and a clock in,
//! decisions out); I/O happens at the edges: [`runtime`] (inbox, workers, timers),
//! [`writer`] (Graph and connector writes with retry) and [`reconcile`]. Owns `[sync]` and
//! the mapping tables; talks to Graph and contact centers only through their traits.

pub mod config;
pub mod decide;
pub mod matching;
pub mod rules;
pub mod state;
mod tables;

#[cfg(test)]
mod tests;

pub use decide::{Drift, Engine};
pub use state::{Action, Decision, Millis, Reason, UserState};
