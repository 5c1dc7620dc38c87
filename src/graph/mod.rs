//! Microsoft Graph: the typed client and its auth ([`client`]), presence reads, writes and
//! polling ([`presence`]), the directory, delegated sync accounts, presence subscriptions
//! ([`subscriptions`]) and change notifications ([`notifications`]: crypto, JWT, receiver).
//!
//! Talks to Graph, the store (subscriptions, accounts, users, the inbox) and the shared
//! outbound policy in `net`; imports nothing above its layer (no runtime, HTTP, app or CLI)
//! and knows nothing of mapping rules.

use std::time::Duration;

use async_trait::async_trait;

use crate::model::TeamsPresence;

pub mod accounts;
pub mod client;
pub mod config;
pub mod directory;
pub mod notifications;
pub mod presence;
pub mod scope;
pub mod subscriptions;

#[cfg(test)]
mod tests;

pub use client::GraphClient;
pub use client::error::GraphError;

/// The presence calls the engine needs. The Graph client implements it; engine tests may use
/// the simulated tenant through the real client, or a fake.
#[async_trait]
pub trait PresenceApi: Send + Sync + 'static {
    /// `getPresencesByUserId`, split into batches of at most 650 ids. Users Graph does not
    /// return are absent from the result, and so are ids that are not Graph user ids or that
    /// Graph refuses: one bad id costs only itself, never the rest of the read.
    async fn get_presences(
        &self,
        user_ids: &[String],
    ) -> Result<Vec<(String, TeamsPresence)>, GraphError>;

    /// `setPresence` with the app's client id as session id. `expiration` must be within
    /// 5 minutes to 4 hours; pairs outside the five allowed ones are rejected before sending.
    async fn set_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Duration,
    ) -> Result<(), GraphError>;

    /// `clearPresence` for the app's session; a 404 (no session) counts as success.
    async fn clear_presence(&self, user_id: &str) -> Result<(), GraphError>;

    /// `setUserPreferredPresence`; `None` uses Graph's default expiry.
    async fn set_user_preferred_presence(
        &self,
        user_id: &str,
        availability: &str,
        activity: &str,
        expiration: Option<Duration>,
    ) -> Result<(), GraphError>;

    /// `clearUserPreferredPresence`.
    async fn clear_user_preferred_presence(&self, user_id: &str) -> Result<(), GraphError>;
}
