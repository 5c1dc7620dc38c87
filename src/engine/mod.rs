//! The sync engine: mapping tables, per-user state, hold-down, echo and loop guards, restore,
//! reconciliation. The core is pure logic (observations and a clock in, decisions out); I/O
//! happens in the runtime at the edges.

pub mod config;
