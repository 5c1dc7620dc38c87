//! The Open Messaging API calls the bridge makes: inbound messages and receipts, with the
//! org's client-credentials token (the connectors' refreshing token; a 401 drops it once).
//!
//! - `POST /api/v2/conversations/messages/{integrationId}/inbound/open/message`
//!   (reference/contact-centers.md §2.6);
//! - `POST /api/v2/conversations/messages/{integrationId}/inbound/open/receipt`, statuses
//!   `Delivered` and `Failed`
//!   (<https://developer.genesys.cloud/commdigital/digital/openmessaging/inboundReceiptMessages>).
//!
//! Calls are made once; retrying (after `Retry-After` on a 429) is the queue's job.

use secrecy::ExposeSecret;

use crate::connectors::oauth::{TokenCache, token_cache};
use crate::connectors::retry::{classify, transport};
use crate::integrations::messaging::config::GenesysMessagingConfig;
use crate::integrations::messaging::wire::{InboundMessage, Receipt};
use crate::model::contact_center::ConnectorError;

/// One Open Messaging integration's API.
pub struct OpenMessagingApi {
    http: reqwest::Client,
    base: String,
    integration_id: String,
    token: TokenCache,
}

impl std::fmt::Debug for OpenMessagingApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenMessagingApi")
            .field("base", &self.base)
            .field("integration_id", &self.integration_id)
            .finish_non_exhaustive()
    }
}

/// Longest an Open Messaging call may take.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl OpenMessagingApi {
    /// `cfg` must have been validated (its secrets resolved).
    pub fn new(cfg: &GenesysMessagingConfig) -> Result<Self, ConnectorError> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(transport)?;
        Ok(Self {
            token: token_cache(http.clone(), cfg.oauth.clone())?,
            http,
            base: cfg.api_base_url.as_str().trim_end_matches('/').to_owned(),
            integration_id: cfg.integration_id.clone(),
        })
    }

    pub async fn send_message(&self, msg: &InboundMessage) -> Result<(), ConnectorError> {
        self.post("message", &serde_json::to_value(msg).expect("serializable"))
            .await
    }

    pub async fn send_receipt(&self, receipt: &Receipt) -> Result<(), ConnectorError> {
        self.post(
            "receipt",
            &serde_json::to_value(receipt).expect("serializable"),
        )
        .await
    }

    async fn post(&self, what: &str, body: &serde_json::Value) -> Result<(), ConnectorError> {
        let url = format!(
            "{}/api/v2/conversations/messages/{}/inbound/open/{what}",
            self.base, self.integration_id
        );
        let token = self.token.token().await?;
        let resp = self
            .http
            .post(&url)
            .bearer_auth(token.expose_secret())
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            self.token.invalidate(&token).await;
            // A fresh token on the next attempt: transient, not a refusal.
            return Err(ConnectorError::Transport("HTTP 401 (token renewed)".into()));
        }
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        Err(classify(status, &headers, &body))
    }
}
