//! The sync engine, pure: mapping tables ([`rules`]), per-user state ([`state`]), hold-down,
//! echo and loop guards, restore and drift ([`decide`]), and the matching plan of users to
//! agents ([`matching`]). Observations and a clock in, decisions out: no I/O, and no import
//! but `model` and `config`. The I/O around it (inbox, workers, writers, reconciliation) is
//! `crate::runtime`. Owns `[sync]` and the mapping tables ([`config`]).

pub mod config;
pub mod decide;
pub mod matching;
pub mod rules;
pub mod state;
mod tables;

#[cfg(test)]
mod activity_tests;
#[cfg(test)]
mod tests;

pub use decide::{Drift, Engine};
pub use state::{Action, Decision, Millis, Reason, UserState};
