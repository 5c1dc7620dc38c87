//! Amazon Connect (`kind = "amazon_connect"`).

pub mod config;
