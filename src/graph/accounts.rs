//! Delegated sync accounts: the device-code sign-in, refresh tokens encrypted at rest
//! (AES-256-GCM) and rotated on every use, and delegated access tokens for the subscription
//! manager.

use std::collections::HashMap;

use chrono::Utc;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet, RefreshToken,
    RequestTokenError, Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::model::health::HealthState;
use crate::store::SyncAccountRecord;

/// Encrypts refresh tokens with `graph.token_encryption_key`. The account id is bound as
/// associated data, so a ciphertext cannot be moved to another account.
#[derive(Clone)]
pub struct TokenCipher {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCipher")
    }
}

/// Why a refresh token cannot be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("the key is not base64")]
    KeyNotBase64,
    #[error("the key is not 32 bytes")]
    KeyLength,
    #[error("ciphertext too short")]
    TooShort,
    #[error("cannot decrypt (wrong key or tampered data)")]
    Tampered,
    #[error("decrypted token is not UTF-8")]
    NotUtf8,
}

/// Nonce length of AES-GCM; the nonce is stored before the ciphertext.
const NONCE_LEN: usize = 12;

impl TokenCipher {
    /// From the base64 of a 32-byte key.
    pub fn from_secret(key: &SecretString) -> Result<Self, CipherError> {
        let bytes = STANDARD
            .decode(key.expose_secret().trim())
            .map_err(|_| CipherError::KeyNotBase64)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CipherError::KeyLength)?;
        Ok(Self { cipher })
    }

    pub fn encrypt(&self, account_id: &str, token: &SecretString) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: token.expose_secret().as_bytes(),
                    aad: account_id.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short token cannot fail");
        let mut out = nonce.to_vec();
        out.extend(ct);
        out
    }

    pub fn decrypt(&self, account_id: &str, data: &[u8]) -> Result<SecretString, CipherError> {
        if data.len() <= NONCE_LEN {
            return Err(CipherError::TooShort);
        }
        let (nonce, ct) = data.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: account_id.as_bytes(),
                },
            )
            .map_err(|_| CipherError::Tampered)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CipherError::NotUtf8)
    }
}

/// Refresh tokens lapse after this many days without use (reference graph.md §5: 90 days,
/// replaced by a fresh one at every use).
pub const REFRESH_TOKEN_DAYS: i64 = 90;
/// Readiness turns amber when a sign-in lapses within this many days.
pub const LAPSE_WARNING_DAYS: i64 = 14;

/// Whole days until a refresh token last used at `last_refresh_at` lapses (negative: lapsed).
pub fn days_left(
    last_refresh_at: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
) -> i64 {
    match last_refresh_at {
        Some(t) => REFRESH_TOKEN_DAYS - now.signed_duration_since(t).num_days(),
        None => 0,
    }
}

/// Readiness state and detail of an account from its stored record.
pub fn account_health(
    rec: &SyncAccountRecord,
    now: chrono::DateTime<Utc>,
) -> (HealthState, String) {
    if rec.state != "healthy" {
        return (
            HealthState::Down,
            format!(
                "sign-in {}; run `presence-bridge accounts add` as {}",
                rec.state, rec.upn
            ),
        );
    }
    let left = days_left(rec.last_refresh_at, now);
    let last_error = rec
        .last_error
        .as_deref()
        .map(|e| format!("; last refresh failed: {e}"))
        .unwrap_or_default();
    if left <= 0 {
        (
            HealthState::Down,
            format!("sign-in lapsed (no refresh for {REFRESH_TOKEN_DAYS} days){last_error}"),
        )
    } else if left <= LAPSE_WARNING_DAYS {
        (
            HealthState::Degraded,
            format!("sign-in lapses in {left} days unless a refresh succeeds{last_error}"),
        )
    } else {
        (
            HealthState::Up,
            format!("signed in; {left} days before the sign-in lapses without use{last_error}"),
        )
    }
}

/// Scopes a sync account consents to.
pub const DELEGATED_SCOPES: &[&str] = &["Presence.Read.All", "offline_access"];
/// Readiness component name of a sync account.
pub fn health_component(upn: &str) -> String {
    format!("graph_account:{upn}")
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("graph.token_encryption_key is not configured")]
    NoKey,
    #[error("the account's sign-in was revoked; run `accounts add` again: {0}")]
    Revoked(String),
    #[error("the account's refresh token expired; run `accounts add` again: {0}")]
    Expired(String),
    #[error("{0}")]
    Graph(#[from] super::GraphError),
    #[error(
        "no sync account has the id or user principal name {0:?}; `presence-bridge accounts list` shows them"
    )]
    UnknownAccount(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("stored token: {0}")]
    Crypto(#[from] CipherError),
}

/// What the person signing in must do.
#[derive(Debug, Clone)]
pub struct DeviceCodePrompt {
    pub verification_uri: String,
    pub user_code: String,
    pub message: String,
}

struct CachedAccess {
    token: SecretString,
    refresh_at: tokio::time::Instant,
}

/// Delegated tokens of sync accounts: sign-in, refresh with rotation, health.
pub struct AccountTokens {
    cfg: std::sync::Arc<super::config::GraphConfig>,
    http: reqwest::Client,
    store: std::sync::Arc<dyn crate::store::Store>,
    cipher: TokenCipher,
    health: Option<crate::model::health::HealthRegistry>,
    /// One lock for all accounts: refreshes are rare, and a refresh token must never be used
    /// twice concurrently (it rotates).
    cache: tokio::sync::Mutex<HashMap<String, CachedAccess>>,
}

type DelegatedClient =
    BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    id: String,
    user_principal_name: String,
}

impl AccountTokens {
    pub fn new(
        cfg: &super::config::GraphConfig,
        store: std::sync::Arc<dyn crate::store::Store>,
        health: Option<crate::model::health::HealthRegistry>,
    ) -> Result<Self, AccountError> {
        let cipher = TokenCipher::from_secret(
            cfg.token_encryption_key
                .as_ref()
                .ok_or(AccountError::NoKey)?,
        )?;
        let http = reqwest::Client::builder()
            .timeout(cfg.request_timeout())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| super::GraphError::Transport(crate::net::transport::describe(&e)))?;
        Ok(Self {
            cfg: std::sync::Arc::new(cfg.clone()),
            http,
            store,
            cipher,
            health,
            cache: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    fn oauth(&self) -> Result<DelegatedClient, AccountError> {
        let bad = |e: url::ParseError| super::GraphError::Decode(e.to_string());
        Ok(BasicClient::new(ClientId::new(
            self.cfg.client_id.clone().unwrap_or_default(),
        ))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(self.cfg.identity_url("devicecode")).map_err(bad)?,
        )
        .set_token_uri(TokenUrl::new(self.cfg.identity_url("token")).map_err(bad)?))
    }

    /// Runs the device-code sign-in: `prompt` shows the URL and code; waits for the person,
    /// then stores the account (replacing the token of an account with the same UPN).
    pub async fn add_account(
        &self,
        prompt: impl FnOnce(&DeviceCodePrompt),
    ) -> Result<SyncAccountRecord, AccountError> {
        let client = self.oauth()?;
        let details: StandardDeviceAuthorizationResponse = client
            .exchange_device_code()
            .add_scopes(DELEGATED_SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .request_async(&self.http)
            .await
            .map_err(crate::graph::client::auth::token_error)?;
        prompt(&DeviceCodePrompt {
            verification_uri: details.verification_uri().to_string(),
            user_code: details.user_code().secret().clone(),
            message: format!(
                "To sign in, open {} and enter the code {}",
                details.verification_uri().as_str(),
                details.user_code().secret()
            ),
        });
        let token = client
            .exchange_device_access_token(&details)
            .request_async(&self.http, tokio::time::sleep, None)
            .await
            .map_err(crate::graph::client::auth::token_error)?;
        let refresh = token.refresh_token().ok_or_else(|| {
            super::GraphError::Decode("no refresh token (is offline_access consented?)".into())
        })?;
        let access = SecretString::from(token.access_token().secret().clone());
        let me: Me = self.me(&access).await?;
        let now = Utc::now();
        let existing = self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .find(|a| a.upn.eq_ignore_ascii_case(&me.user_principal_name));
        let id = existing
            .as_ref()
            .map(|a| a.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let record = SyncAccountRecord {
            encrypted_refresh_token: self
                .cipher
                .encrypt(&id, &SecretString::from(refresh.secret().clone())),
            id: id.clone(),
            upn: me.user_principal_name,
            user_object_id: Some(me.id),
            state: "healthy".into(),
            last_refresh_at: Some(now),
            last_error: None,
            created_at: existing.as_ref().map(|a| a.created_at).unwrap_or(now),
        };
        match existing {
            Some(_) => self.store.update_account(&record).await?,
            None => self.store.insert_account(&record).await?,
        }
        self.remember(&id, access, token.expires_in()).await;
        self.report(&record.upn, HealthState::Up, "signed in".into());
        Ok(record)
    }

    async fn me(&self, access: &SecretString) -> Result<Me, AccountError> {
        let resp = self
            .http
            .get(self.cfg.graph_url("me"))
            .bearer_auth(access.expose_secret())
            .send()
            .await
            .map_err(|e| super::GraphError::Transport(crate::net::transport::describe(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| super::GraphError::Transport(crate::net::transport::describe(&e)))?;
        if status != 200 {
            return Err(crate::graph::client::error_from(status, None, &body).into());
        }
        serde_json::from_slice(&body).map_err(|e| super::GraphError::Decode(e.to_string()).into())
    }

    async fn remember(&self, id: &str, token: SecretString, lifetime: Option<std::time::Duration>) {
        let lifetime = lifetime.unwrap_or(std::time::Duration::from_secs(600));
        let margin =
            std::time::Duration::from_secs(self.cfg.token_refresh_margin_secs).min(lifetime / 2);
        self.cache.lock().await.insert(
            id.to_owned(),
            CachedAccess {
                token,
                refresh_at: tokio::time::Instant::now() + lifetime - margin,
            },
        );
    }

    fn report(&self, upn: &str, state: HealthState, detail: String) {
        if let Some(h) = &self.health {
            h.set(&health_component(upn), false, state, detail);
        }
    }

    /// Uses every account's refresh token that was last used more than `every` ago, whether or
    /// not the account holds a subscription, so no sign-in lapses unnoticed; then reports each
    /// account's days left (readiness, and `graph_sync_account_days_left` when `metrics`).
    /// A transient failure keeps the account as it was and is tried again next time.
    pub async fn refresh_due(
        &self,
        every: std::time::Duration,
        metrics: Option<&crate::telemetry::Metrics>,
    ) -> Result<(), AccountError> {
        let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        for rec in self.store.list_accounts().await? {
            let due = rec.state == "healthy"
                && rec
                    .last_refresh_at
                    .is_none_or(|t| Utc::now().signed_duration_since(t) >= every);
            if due {
                self.cache.lock().await.remove(&rec.id);
                if let Err(e) = self.access_token(&rec.id).await {
                    tracing::warn!(account = %rec.upn, error = %e, "scheduled refresh of a sync account failed");
                    if !matches!(e, AccountError::Revoked(_) | AccountError::Expired(_)) {
                        let mut failed = self.store.get_account(&rec.id).await?;
                        failed.last_error = Some(e.to_string());
                        self.store.update_account(&failed).await?;
                    }
                }
            }
            let now_rec = self.store.get_account(&rec.id).await?;
            let (state, detail) = account_health(&now_rec, Utc::now());
            self.report(&now_rec.upn, state, detail);
            if let Some(m) = metrics {
                m.gauge(
                    "graph_sync_account_days_left",
                    &[("account", now_rec.upn.clone())],
                )
                .set(days_left(now_rec.last_refresh_at, Utc::now()).max(0) as f64);
            }
        }
        Ok(())
    }

    /// Runs [`Self::refresh_due`] at start and then every hour, refreshing tokens older than
    /// `every`, until cancelled.
    pub async fn keep_fresh(
        self: std::sync::Arc<Self>,
        every: std::time::Duration,
        metrics: crate::telemetry::Metrics,
        cancel: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600).min(every));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.refresh_due(every, Some(&metrics)).await {
                tracing::warn!(error = %e, "checking the sync accounts failed");
            }
        }
    }

    /// A delegated access token for the account, refreshing (and rotating the stored refresh
    /// token) when needed. A refused refresh marks the account revoked or expired.
    pub async fn access_token(&self, account_id: &str) -> Result<SecretString, AccountError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(account_id)
            && tokio::time::Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let mut rec = self.store.get_account(account_id).await?;
        let refresh = self.cipher.decrypt(&rec.id, &rec.encrypted_refresh_token)?;
        let result = self
            .oauth()?
            .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_owned()))
            .add_scopes(DELEGATED_SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
            .request_async(&self.http)
            .await;
        let token = match result {
            Ok(t) => t,
            Err(RequestTokenError::ServerResponse(r)) => {
                let text = r.to_string();
                let expired = ["AADSTS700082", "AADSTS70008:", "AADSTS700084"]
                    .iter()
                    .any(|c| text.contains(c));
                rec.state = if expired { "expired" } else { "revoked" }.into();
                rec.last_error = Some(r.error().to_string());
                self.store.update_account(&rec).await?;
                self.report(
                    &rec.upn,
                    HealthState::Down,
                    format!("sign-in {}", rec.state),
                );
                cache.remove(account_id);
                return Err(if expired {
                    AccountError::Expired(rec.upn)
                } else {
                    AccountError::Revoked(rec.upn)
                });
            }
            Err(e) => return Err(crate::graph::client::auth::token_error(e).into()),
        };
        let access = SecretString::from(token.access_token().secret().clone());
        if let Some(new_refresh) = token.refresh_token() {
            rec.encrypted_refresh_token = self
                .cipher
                .encrypt(&rec.id, &SecretString::from(new_refresh.secret().clone()));
        }
        rec.state = "healthy".into();
        rec.last_error = None;
        rec.last_refresh_at = Some(Utc::now());
        self.store.update_account(&rec).await?;
        self.report(&rec.upn, HealthState::Up, "token refreshed".into());
        drop(cache);
        self.remember(account_id, access.clone(), token.expires_in())
            .await;
        Ok(access)
    }

    /// Removes an account by id or UPN; `NotFound` when there is none.
    pub async fn remove_account(&self, id_or_upn: &str) -> Result<SyncAccountRecord, AccountError> {
        let rec = self
            .store
            .list_accounts()
            .await?
            .into_iter()
            .find(|a| a.id == id_or_upn || a.upn.eq_ignore_ascii_case(id_or_upn))
            .ok_or_else(|| AccountError::UnknownAccount(id_or_upn.to_owned()))?;
        self.store.delete_account(&rec.id).await?;
        self.cache.lock().await.remove(&rec.id);
        if let Some(h) = &self.health {
            h.remove(&health_component(&rec.upn));
        }
        Ok(rec)
    }
}
