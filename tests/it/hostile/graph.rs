//! Microsoft Graph under faults: bad user ids in a coalesced read, `Retry-After` beyond the
//! cap, coverage gaps when a subscription disappears, certificate and URL changes on existing
//! subscriptions, and Graph readiness through an outage. See `hostile/mod.rs`.

mod client;
mod subscriptions;
