//! One Dataverse environment over the Web API: the app token by client credentials with the
//! scope `{environment}/.default` (the shared refreshing token of `connectors::oauth`), and
//! one request per step, its answer sorted into what the step runner branches on.
//!
//! Documented behaviour relied on:
//! - token: `POST {authority}/{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials`,
//!   `scope=https://{org}.crm.dynamics.com/.default`
//!   (https://learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth);
//! - service protection: `429 Too Many Requests` with `Retry-After` in seconds, evaluated over
//!   a 5-minute sliding window; a client that keeps sending while throttled waits longer
//!   (https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).

use std::time::Duration;

use secrecy::ExposeSecret;

use super::config::DynamicsConfig;
use super::template::RenderedRequest;
use crate::connectors::ConnectorError;
use crate::connectors::http::config::{ClientAuth, OAuth2Config};
use crate::connectors::oauth::{TokenCache, token_cache};

/// Wait assumed when a 429 carries no usable `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(30);

/// How a step's request ended.
#[derive(Debug)]
pub enum Answer {
    /// 2xx: the response headers and body.
    Success {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: bytes::Bytes,
    },
    /// 429 (or 503 with `Retry-After`): send again after this wait, not before.
    Throttled(Duration),
    /// Worth trying again later (5xx, no answer, token refused once).
    Transient(String),
    /// Refused for good (4xx): trying again would change nothing.
    Rejected { status: u16, detail: String },
}

/// An environment's Web API client.
pub struct DataverseClient {
    http: reqwest::Client,
    token: TokenCache,
}

impl std::fmt::Debug for DataverseClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataverseClient").finish_non_exhaustive()
    }
}

/// The token endpoint of `cfg`.
pub fn token_url(cfg: &DynamicsConfig) -> Result<url::Url, url::ParseError> {
    cfg.authority_url
        .join(&format!("{}/oauth2/v2.0/token", cfg.tenant_id))
}

/// The scope asked for: `{environment}/.default` unless configured.
pub fn scope(cfg: &DynamicsConfig) -> String {
    cfg.scope
        .clone()
        .unwrap_or_else(|| format!("{}/.default", cfg.url.as_str().trim_end_matches('/')))
}

impl DataverseClient {
    /// The client of a validated environment (secret resolved).
    pub fn new(cfg: &DynamicsConfig, http: reqwest::Client) -> Result<Self, ConnectorError> {
        let oauth = OAuth2Config {
            token_url: token_url(cfg)
                .map_err(|e| ConnectorError::Unauthorized(format!("token URL: {e}")))?,
            client_id: cfg.client_id.clone(),
            client_secret: cfg.client_secret.clone(),
            client_secret_file: None,
            scope: Some(scope(cfg)),
            resource: None,
            client_auth: ClientAuth::Body,
            expiry_skew_secs: cfg.token_expiry_skew_secs,
        };
        Ok(Self {
            token: token_cache(http.clone(), oauth)?,
            http,
        })
    }

    /// Sends `req` with the app token; a 401 drops the token so the next attempt gets a new
    /// one.
    pub async fn send(&self, req: &RenderedRequest, timeout: Duration) -> Answer {
        let token = match self.token.token().await {
            Ok(t) => t,
            Err(ConnectorError::Throttled { retry_after }) => {
                return Answer::Throttled(retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT));
            }
            Err(e) => return Answer::Transient(format!("token: {e}")),
        };
        let mut b = self
            .http
            .request(req.method.clone(), req.url.clone())
            .timeout(timeout)
            .bearer_auth(token.expose_secret());
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        if let Some(ct) = &req.content_type {
            b = b.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(body) = &req.body {
            b = b.body(body.clone());
        }
        let resp = match b.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Transient(crate::net::transport::describe(&e)),
        };
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::Transient(crate::net::transport::describe(&e)),
        };
        if status.is_success() {
            return Answer::Success {
                status: status.as_u16(),
                headers,
                body,
            };
        }
        let retry_after = crate::net::retry_after::from_headers(&headers);
        match status.as_u16() {
            429 => Answer::Throttled(retry_after.unwrap_or(DEFAULT_THROTTLE_WAIT)),
            503 if retry_after.is_some() => Answer::Throttled(retry_after.unwrap_or_default()),
            401 => {
                self.token.invalidate(&token).await;
                Answer::Transient("HTTP 401: the token was refused".into())
            }
            s if status.is_server_error() || s == 408 => {
                Answer::Transient(format!("HTTP {s}: {}", error_message(&body)))
            }
            s => Answer::Rejected {
                status: s,
                detail: error_message(&body),
            },
        }
    }
}

/// The `error.message` of an OData error body, else a short excerpt of the body.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// The record id at the end of an `OData-EntityId` header:
/// `[Organization URI]/api/data/v9.2/accounts(00aa00aa-…)` → `00aa00aa-…`
/// (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api).
pub fn entity_id(header: &str) -> Option<String> {
    let inner = header.trim().strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let id = &inner[open + 1..];
    (!id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_id_is_the_key_in_parentheses() {
        assert_eq!(
            entity_id("https://org.crm.dynamics.com/api/data/v9.2/phonecalls(00aa00aa-bb11-cc22-dd33-44ee44ee44ee)")
                .as_deref(),
            Some("00aa00aa-bb11-cc22-dd33-44ee44ee44ee")
        );
        assert_eq!(entity_id("https://org/api/data/v9.2/phonecalls"), None);
        assert_eq!(entity_id("x()"), None);
    }
}
