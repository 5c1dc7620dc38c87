//! [`SubscriptionApi`] over the Graph client: app-only calls for the `users` subscription,
//! delegated calls (the sync account's access token) for presence subscriptions.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;

use crate::graph::GraphError;
use crate::graph::accounts::{AccountError, AccountTokens};
use crate::graph::client::ApiFamily;
use crate::graph::client::{GraphClient, GraphRequest};
use crate::graph::subscriptions::api::{
    Caller, NewSubscription, RemoteSubscription, SubscriptionApi, SubscriptionPatch,
};

pub struct GraphSubscriptions {
    client: GraphClient,
    accounts: Option<Arc<AccountTokens>>,
}

impl GraphSubscriptions {
    /// `accounts` is `None` when no token encryption key is configured (no sync accounts).
    pub fn new(client: GraphClient, accounts: Option<Arc<AccountTokens>>) -> Self {
        Self { client, accounts }
    }

    async fn send(
        &self,
        caller: Caller<'_>,
        method: Method,
        url: String,
        body: Option<serde_json::Value>,
    ) -> Result<bytes::Bytes, GraphError> {
        let mut req = GraphRequest::new(method, url, ApiFamily::Other);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Caller::Account(id) = caller {
            let accounts = self.accounts.as_ref().ok_or_else(|| {
                GraphError::Unauthorized("sync accounts are not configured".into())
            })?;
            let token = accounts.access_token(id).await.map_err(|e| match e {
                AccountError::Graph(g) => g,
                other => GraphError::Unauthorized(other.to_string()),
            })?;
            req = req.bearer(token);
        }
        self.client.send(req).await
    }
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, GraphError> {
    serde_json::from_slice(b).map_err(|e| GraphError::Decode(e.to_string()))
}

#[async_trait]
impl SubscriptionApi for GraphSubscriptions {
    async fn create(
        &self,
        caller: Caller<'_>,
        sub: &NewSubscription,
    ) -> Result<RemoteSubscription, GraphError> {
        let body = serde_json::to_value(sub).map_err(|e| GraphError::Decode(e.to_string()))?;
        decode(
            &self
                .send(caller, Method::POST, "subscriptions".into(), Some(body))
                .await?,
        )
    }

    async fn update(
        &self,
        caller: Caller<'_>,
        id: &str,
        patch: &SubscriptionPatch,
    ) -> Result<RemoteSubscription, GraphError> {
        let body = serde_json::to_value(patch).map_err(|e| GraphError::Decode(e.to_string()))?;
        decode(
            &self
                .send(
                    caller,
                    Method::PATCH,
                    format!("subscriptions/{id}"),
                    Some(body),
                )
                .await?,
        )
    }

    async fn delete(&self, caller: Caller<'_>, id: &str) -> Result<(), GraphError> {
        let url = format!("subscriptions/{id}");
        self.send(caller, Method::DELETE, url, None)
            .await
            .map(|_| ())
    }

    async fn list(&self, caller: Caller<'_>) -> Result<Vec<RemoteSubscription>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Page {
            value: Vec<RemoteSubscription>,
        }
        let page: Page = decode(
            &self
                .send(caller, Method::GET, "subscriptions".into(), None)
                .await?,
        )?;
        Ok(page.value)
    }
}
