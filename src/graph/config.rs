//! `[graph]`: the Microsoft Graph tenant, the app registration and how the client behaves.
//! The section is optional: without `tenant_id` the daemon runs without a Teams side.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, resolve_secret, serialize_redacted_opt};
use crate::graph::notifications::config::{
    PollConfig, PresenceSource, SubscriptionsConfig, WebhookConfig,
};

/// The Microsoft Teams (`TEAMS1`) service plan id.
pub const TEAMS1_PLAN_ID: &str = "57ff2da0-773e-42df-b2af-ffb7a2317929";

/// How the client assertion JWT is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
pub enum AssertionAlgorithm {
    /// RSA-PSS with SHA-256 and the `x5t#S256` header (the documented form).
    #[default]
    PS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and the SHA-1 `x5t` header (older documentation).
    RS256,
}

/// `[graph]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
    /// Directory (tenant) id, a GUID. Setting it turns the Graph side on.
    pub tenant_id: Option<String>,
    /// Application (client) id of the app registration, a GUID. Also the setPresence session id.
    pub client_id: Option<String>,
    /// Client secret (use this or a certificate).
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub client_secret: Option<SecretString>,
    /// File holding the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// When the client secret expires (RFC 3339), as Entra ID shows it: readiness, the
    /// console and alerts warn ahead of it. A certificate's expiry is read from the file.
    pub client_secret_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// PEM certificate registered on the app (use with `certificate_key_file`).
    pub certificate_file: Option<PathBuf>,
    /// PEM private key (PKCS#8 or PKCS#1) of `certificate_file`.
    pub certificate_key_file: Option<PathBuf>,
    /// `PS256` (with `x5t#S256`, documented) or `RS256` (with `x5t`, older docs; UNCERTAIN
    /// whether still accepted).
    pub assertion_algorithm: AssertionAlgorithm,
    /// Graph endpoint including the version (other clouds: `https://graph.microsoft.us/v1.0`,
    /// `https://microsoftgraph.chinacloudapi.cn/v1.0`).
    pub base_url: url::Url,
    /// Identity platform endpoint (`https://login.microsoftonline.us`, `https://login.chinacloudapi.cn`).
    pub authority_url: url::Url,
    /// Timeout of one HTTP request to Graph or the identity platform, in seconds.
    pub request_timeout_secs: u64,
    /// Presence reads (get, getPresencesByUserId) allowed per `budget_window_secs`. Graph's API
    /// pages say 1500 per 30 s per app per tenant; its throttling page says 10,000 (UNCERTAIN).
    pub presence_read_budget: u32,
    /// Presence writes (setPresence and friends) allowed per `budget_window_secs` (UNCERTAIN:
    /// Graph documents no separate write figure; the presence figure is used by default).
    pub presence_write_budget: u32,
    /// Directory reads (users, delta) allowed per `budget_window_secs`.
    pub directory_budget: u32,
    /// Window of the budgets above, in seconds.
    pub budget_window_secs: u64,
    /// Retries of a throttled, failed (5xx) or timed-out call before giving up.
    pub max_retries: u32,
    /// First backoff delay when Graph gives no `Retry-After`, in milliseconds; doubles per try.
    pub backoff_initial_ms: u64,
    /// Largest backoff delay, in milliseconds.
    pub backoff_max_ms: u64,
    /// A `Retry-After` longer than this is not waited for inside a call; the caller gets
    /// `Throttled` and decides. In seconds.
    pub max_retry_after_secs: u64,
    /// Access tokens are renewed this long before they expire, in seconds.
    pub token_refresh_margin_secs: u64,
    /// Service plan ids that make a user Teams-licensed (UNCERTAIN: government clouds and
    /// other Teams SKUs use other ids).
    pub teams_service_plan_ids: Vec<String>,
    /// How often the directory is refreshed through `/users/delta`, in seconds.
    pub directory_sync_interval_secs: u64,
    /// Key (base64 of 32 random bytes) that encrypts stored sync-account refresh tokens.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub token_encryption_key: Option<SecretString>,
    /// File holding `token_encryption_key`.
    pub token_encryption_key_file: Option<PathBuf>,
    /// Every sync account's refresh token is used at least this often (seconds), whether or
    /// not it holds a subscription, so its 90-day sign-in never lapses unnoticed.
    pub account_refresh_interval_secs: u64,
    /// Where Teams presence comes from: `webhook`, `poll` or `hybrid`. Default: `hybrid` when
    /// sync accounts exist, else `poll`.
    pub presence_source: Option<PresenceSource>,
    /// The change-notification receiver.
    pub webhook: WebhookConfig,
    /// Presence and user-change subscriptions.
    pub subscriptions: SubscriptionsConfig,
    /// App-only presence polling.
    pub poll: PollConfig,
}

impl Default for GraphConfig {
    fn default() -> Self {
        Self {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            client_secret_expires_at: None,
            certificate_file: None,
            certificate_key_file: None,
            assertion_algorithm: AssertionAlgorithm::PS256,
            base_url: "https://graph.microsoft.com/v1.0"
                .parse()
                .expect("valid url"),
            authority_url: "https://login.microsoftonline.com"
                .parse()
                .expect("valid url"),
            request_timeout_secs: 30,
            presence_read_budget: 1500,
            presence_write_budget: 1500,
            directory_budget: 1000,
            budget_window_secs: 30,
            max_retries: 4,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
            max_retry_after_secs: 120,
            token_refresh_margin_secs: 300,
            teams_service_plan_ids: vec![TEAMS1_PLAN_ID.to_owned()],
            directory_sync_interval_secs: 900,
            token_encryption_key: None,
            token_encryption_key_file: None,
            account_refresh_interval_secs: 86_400,
            presence_source: None,
            webhook: WebhookConfig::default(),
            subscriptions: SubscriptionsConfig::default(),
            poll: PollConfig::default(),
        }
    }
}

impl GraphConfig {
    /// True when the Graph side is configured (`tenant_id` present).
    pub fn enabled(&self) -> bool {
        self.tenant_id.is_some()
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// `https://graph.microsoft.com/.default` for the configured cloud.
    pub fn app_scope(&self) -> String {
        let origin = self.base_url.origin().ascii_serialization();
        format!("{origin}/.default")
    }

    /// `{authority}/{tenant}/oauth2/v2.0/{endpoint}`.
    pub fn identity_url(&self, endpoint: &str) -> String {
        let base = self.authority_url.as_str().trim_end_matches('/');
        let tenant = self.tenant_id.as_deref().unwrap_or("common");
        format!("{base}/{tenant}/oauth2/v2.0/{endpoint}")
    }

    /// Graph URL for a path relative to the version root (`users/{id}/presence`).
    pub fn graph_url(&self, path: &str) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}/{}", path.trim_start_matches('/'))
    }
}

fn check_guid(errs: &mut ConfigErrors, path: &str, v: &Option<String>, required: bool) {
    match v {
        Some(s) if uuid::Uuid::parse_str(s).is_err() => errs.push(path, "must be a GUID"),
        None if required => errs.push(path, "is required when graph.tenant_id is set"),
        _ => {}
    }
}

impl GraphConfig {
    /// Checks `[graph]` and its sub-sections and resolves its secrets.
    pub fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        crate::graph::notifications::config::validate(self, path, errs);
        let g = self;
        let on = g.enabled();
        check_guid(
            errs,
            &ConfigErrors::key(path, "tenant_id"),
            &g.tenant_id,
            false,
        );
        check_guid(
            errs,
            &ConfigErrors::key(path, "client_id"),
            &g.client_id,
            on,
        );
        g.client_secret = resolve_secret(
            errs,
            &ConfigErrors::key(path, "client_secret"),
            g.client_secret.take(),
            g.client_secret_file.as_deref(),
        );
        g.token_encryption_key = resolve_secret(
            errs,
            &ConfigErrors::key(path, "token_encryption_key"),
            g.token_encryption_key.take(),
            g.token_encryption_key_file.as_deref(),
        );
        errs.between(
            path,
            "account_refresh_interval_secs",
            g.account_refresh_interval_secs,
            3600,
            30 * 86_400,
        );
        if let Some(k) = &g.token_encryption_key
            && crate::graph::accounts::TokenCipher::from_secret(k).is_err()
        {
            errs.push(
                ConfigErrors::key(path, "token_encryption_key"),
                "must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)",
            );
        }
        let cert = g.certificate_file.is_some() || g.certificate_key_file.is_some();
        if cert && (g.certificate_file.is_none() || g.certificate_key_file.is_none()) {
            errs.push(
                ConfigErrors::key(path, "certificate_file"),
                "certificate_file and certificate_key_file go together",
            );
        }
        if on && cert && g.client_secret.is_some() {
            errs.push(
                ConfigErrors::key(path, "client_secret"),
                "give either a client secret or a certificate, not both",
            );
        }
        if on && !cert && g.client_secret.is_none() {
            errs.push(
                ConfigErrors::key(path, "client_secret"),
                "a client secret or certificate_file + certificate_key_file is required",
            );
        }
        if let (Some(c), Some(k)) = (&g.certificate_file, &g.certificate_key_file)
            && let Err(e) =
                crate::graph::client::auth::CertificateCredential::load(c, k, g.assertion_algorithm)
        {
            errs.push(ConfigErrors::key(path, "certificate_file"), e.to_string());
        }
        errs.http_url(ConfigErrors::key(path, "base_url"), &g.base_url);
        errs.http_url(ConfigErrors::key(path, "authority_url"), &g.authority_url);
        for (path, v) in [
            (
                ConfigErrors::key(path, "request_timeout_secs"),
                g.request_timeout_secs,
            ),
            (
                ConfigErrors::key(path, "presence_read_budget"),
                g.presence_read_budget.into(),
            ),
            (
                ConfigErrors::key(path, "presence_write_budget"),
                g.presence_write_budget.into(),
            ),
            (
                ConfigErrors::key(path, "directory_budget"),
                g.directory_budget.into(),
            ),
            (
                ConfigErrors::key(path, "budget_window_secs"),
                g.budget_window_secs,
            ),
            (
                ConfigErrors::key(path, "backoff_initial_ms"),
                g.backoff_initial_ms,
            ),
            (
                ConfigErrors::key(path, "directory_sync_interval_secs"),
                g.directory_sync_interval_secs,
            ),
        ] {
            if v == 0 {
                errs.push(path, "must be at least 1");
            }
        }
        if g.backoff_max_ms < g.backoff_initial_ms {
            errs.push(
                ConfigErrors::key(path, "backoff_max_ms"),
                "must be at least backoff_initial_ms",
            );
        }
        if g.teams_service_plan_ids.is_empty() {
            errs.push(
                ConfigErrors::key(path, "teams_service_plan_ids"),
                "must name at least one plan",
            );
        }
        for id in &g.teams_service_plan_ids {
            if uuid::Uuid::parse_str(id).is_err() {
                errs.push(
                    ConfigErrors::key(path, "teams_service_plan_ids"),
                    format!("{id:?} is not a GUID"),
                );
            }
        }
    }
}
