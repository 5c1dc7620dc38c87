//! Genesys Cloud (`kind = "genesys"`).

pub mod config;
