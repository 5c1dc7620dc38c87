//! The subscription calls the manager makes, behind a trait so the manager's rules are tested
//! against the simulated tenant through the real client, and the wire shapes live in one place.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::graph::GraphError;

/// Who makes a call: the app itself, or a delegated sync account (presence subscriptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    App,
    Account(&'a str),
}

/// Body of `POST /subscriptions`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSubscription {
    pub change_type: String,
    pub notification_url: String,
    pub lifecycle_notification_url: String,
    pub resource: String,
    pub expiration_date_time: DateTime<Utc>,
    pub client_state: String,
    pub include_resource_data: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_certificate_id: Option<String>,
}

/// Body of `PATCH /subscriptions/{id}`: a new expiry, and on the first renewal after a start
/// the settings that may have changed since the subscription was made. `expirationDateTime`
/// and `notificationUrl` are the documented updatable fields; the certificate fields are
/// described for key rotation on the rich-notifications page (reference graph.md §3.2), so a
/// Graph that refuses them is answered by recreating the subscription.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionPatch {
    pub expiration_date_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_certificate_id: Option<String>,
}

impl SubscriptionPatch {
    /// A renewal: the expiry only.
    pub fn renewal(expires: DateTime<Utc>) -> Self {
        Self {
            expiration_date_time: expires,
            notification_url: None,
            encryption_certificate: None,
            encryption_certificate_id: None,
        }
    }
}

/// A subscription as Graph returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSubscription {
    pub id: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub change_type: String,
    pub expiration_date_time: DateTime<Utc>,
    #[serde(default)]
    pub client_state: Option<String>,
    #[serde(default)]
    pub notification_url: Option<String>,
    #[serde(default)]
    pub encryption_certificate_id: Option<String>,
}

#[async_trait]
pub trait SubscriptionApi: Send + Sync + 'static {
    /// `POST /subscriptions`; `Conflict` when one exists for the same resource or account.
    async fn create(
        &self,
        caller: Caller<'_>,
        sub: &NewSubscription,
    ) -> Result<RemoteSubscription, GraphError>;
    /// `PATCH /subscriptions/{id}`; `NotFound` when it is gone.
    async fn update(
        &self,
        caller: Caller<'_>,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> Result<RemoteSubscription, GraphError>;
    /// `DELETE /subscriptions/{id}`; `NotFound` when it is gone.
    async fn delete(&self, caller: Caller<'_>, id: &str) -> Result<(), GraphError>;
    /// `GET /subscriptions` (what this caller can see).
    async fn list(&self, caller: Caller<'_>) -> Result<Vec<RemoteSubscription>, GraphError>;
}

/// `/communications/presences?$filter=id in ('a','b',…)`.
pub fn presence_resource(user_ids: &[String]) -> String {
    let ids: Vec<String> = user_ids.iter().map(|u| format!("'{u}'")).collect();
    format!(
        "/communications/presences?$filter=id in ({})",
        ids.join(",")
    )
}

/// The user ids of a presence resource (inverse of [`presence_resource`]).
pub fn presence_resource_ids(resource: &str) -> Vec<String> {
    let Some(start) = resource.find("id in (") else {
        return Vec::new();
    };
    let rest = &resource[start + "id in (".len()..];
    let list = rest.split(')').next().unwrap_or("");
    list.split(',')
        .map(|s| s.trim().trim_matches('\'').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_resource_round_trips() {
        let ids = vec!["a-1".to_owned(), "b-2".to_owned()];
        let r = presence_resource(&ids);
        assert_eq!(r, "/communications/presences?$filter=id in ('a-1','b-2')");
        assert_eq!(presence_resource_ids(&r), ids);
        assert_eq!(
            presence_resource_ids("/communications/presences?$filter=id in ('x', 'y')"),
            vec!["x", "y"]
        );
        assert!(presence_resource_ids("users").is_empty());
    }
}
