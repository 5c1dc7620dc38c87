//! What an operator meets before and while going live: configuration errors reported all at
//! once and blamed on the right source, and CLI messages they can act on. Through the real
//! binary, since exit codes and what is printed are the point.

#[cfg(feature = "demo")]
mod alerts;
mod cli;
#[cfg(feature = "demo")]
mod example_online;
mod metrics;
#[cfg(feature = "demo")]
mod online;
mod readiness;
#[cfg(feature = "demo")]
mod shadow;
