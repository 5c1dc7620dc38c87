//! The simulated Microsoft Graph tenant.

pub mod tokens;
