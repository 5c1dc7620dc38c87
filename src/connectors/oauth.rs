//! OAuth2 client credentials with a cached token (renewed `expiry_skew_secs` before
//! `expires_in` runs out, or at once after a 401). Used by the generic HTTP connector and by
//! Genesys Cloud.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

use super::ConnectorError;
use super::config::require_secret;
use super::http::config::{ClientAuth, OAuth2Config};
use super::retry::{classify, transport};
use crate::config::ConfigErrors;

impl OAuth2Config {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        if self.client_id.is_empty() {
            errs.push(format!("{path}.client_id"), "is required");
        }
        require_secret(
            errs,
            &format!("{path}.client_secret"),
            &mut self.client_secret,
            self.client_secret_file.as_deref(),
        );
    }
}

/// A client-credentials token source.
pub struct TokenCache {
    http: reqwest::Client,
    cfg: OAuth2Config,
    secret: SecretString,
    cached: tokio::sync::Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("token_url", &self.cfg.token_url.as_str())
            .field("client_id", &self.cfg.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Lifetime assumed when the token response carries no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

impl TokenCache {
    /// `cfg` must have been validated (secret resolved).
    pub fn new(http: reqwest::Client, cfg: OAuth2Config) -> Result<Self, ConnectorError> {
        let secret = cfg
            .client_secret
            .clone()
            .ok_or_else(|| ConnectorError::Unauthorized("client secret missing".into()))?;
        Ok(Self {
            http,
            cfg,
            secret,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid access token, fetched when none is cached or it is about to expire.
    pub async fn token(&self) -> Result<SecretString, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let skew = Duration::from_secs(self.cfg.expiry_skew_secs);
        *cached = Some((
            token.clone(),
            Instant::now() + lifetime.saturating_sub(skew),
        ));
        Ok(token)
    }

    /// Forgets the cached token (after a 401).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), ConnectorError> {
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(s) = &self.cfg.scope {
            form.push(("scope", s));
        }
        if let Some(r) = &self.cfg.resource {
            form.push(("resource", r));
        }
        let mut req = self.http.post(self.cfg.token_url.clone());
        match self.cfg.client_auth {
            ClientAuth::Basic => {
                let raw = format!("{}:{}", self.cfg.client_id, self.secret.expose_secret());
                let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
                req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {b64}"));
            }
            ClientAuth::Body => {
                form.push(("client_id", &self.cfg.client_id));
                form.push(("client_secret", self.secret.expose_secret()));
            }
        }
        let resp = req.form(&form).send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(match classify(status, &headers, &body) {
                // invalid_client / invalid_grant come back as 400
                ConnectorError::Rejected { .. } => {
                    ConnectorError::Unauthorized(format!("token endpoint answered HTTP {status}"))
                }
                ConnectorError::Unauthorized(_) | ConnectorError::NotFound(_) => {
                    ConnectorError::Unauthorized(format!("token endpoint answered HTTP {status}"))
                }
                other => other,
            });
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Decode(format!("token response: {e}")))?;
        let lifetime = t
            .expires_in
            .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs);
        Ok((SecretString::from(t.access_token), lifetime))
    }
}
