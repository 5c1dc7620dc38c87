//! OAuth2 client credentials for the generic HTTP connector and Genesys Cloud: the token
//! request ([`ClientCredentials`]) plugged into the shared refreshing token of
//! [`crate::net::token`] (renewed `expiry_skew_secs` before `expires_in` runs out, one refresh
//! for concurrent callers, the live token kept while a refresh fails, a new one after a 401).

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConnectorError;
use super::config::require_secret;
use super::http::config::{ClientAuth, OAuth2Config};
use super::retry::{classify, transport};
use crate::config::ConfigErrors;
use crate::net::token::{IssuedToken, RefreshingToken, TokenSource};

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

/// Requests client-credentials tokens from the platform's token endpoint.
pub struct ClientCredentials {
    http: reqwest::Client,
    cfg: OAuth2Config,
    secret: SecretString,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.cfg.token_url.as_str())
            .field("client_id", &self.cfg.client_id)
            .finish_non_exhaustive()
    }
}

/// The connector's cached access token, renewed `expiry_skew_secs` ahead of expiry.
pub type TokenCache = RefreshingToken<ClientCredentials>;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Lifetime assumed when the token response carries no `expires_in`.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The token cache for `cfg`, which must have been validated (secret resolved).
pub fn token_cache(http: reqwest::Client, cfg: OAuth2Config) -> Result<TokenCache, ConnectorError> {
    let secret = cfg
        .client_secret
        .clone()
        .ok_or_else(|| ConnectorError::Unauthorized("client secret missing".into()))?;
    let margin = Duration::from_secs(cfg.expiry_skew_secs);
    Ok(RefreshingToken::new(
        ClientCredentials { http, cfg, secret },
        margin,
    ))
}

impl TokenSource for ClientCredentials {
    type Error = ConnectorError;

    async fn fetch(&self) -> Result<IssuedToken, ConnectorError> {
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
        Ok(IssuedToken {
            secret: SecretString::from(t.access_token),
            lifetime: t
                .expires_in
                .map_or(DEFAULT_TOKEN_LIFETIME, Duration::from_secs),
        })
    }
}
