//! Builds the notification parts from the configuration (used by `Application::build`).

use crate::config::Config;
use crate::graph::crypto::Decryptor;
use crate::graph::jwt::{JwksCache, TokenValidator};
use crate::graph::notifications::NotificationReceiver;
use crate::graph::notify_config::load_keys;
use crate::graph::presence_memory::PresenceMemory;
use crate::inbox::Inbox;
use crate::telemetry::Metrics;

/// The identity the validation tokens must be issued for.
pub struct TokenAudience<'a> {
    pub client_id: &'a str,
    pub tenant_id: &'a str,
    /// e.g. `https://login.microsoftonline.com`
    pub authority: &'a str,
    /// Overrides `{authority}/common/discovery/v2.0/keys`.
    pub jwks_url: Option<&'a url::Url>,
}

/// The token validator for our app and tenant.
pub fn token_validator(
    aud: &TokenAudience<'_>,
    http: reqwest::Client,
) -> Result<TokenValidator, String> {
    let url = match aud.jwks_url {
        Some(u) => u.clone(),
        None => url::Url::parse(&format!(
            "{}/common/discovery/v2.0/keys",
            aud.authority.trim_end_matches('/')
        ))
        .map_err(|e| format!("graph.authority_url: {e}"))?,
    };
    Ok(TokenValidator::new(
        JwksCache::new(url, http),
        aud.client_id,
        aud.tenant_id,
        aud.authority,
    ))
}

/// The receiver for this configuration.
pub fn receiver(
    cfg: &Config,
    inbox: &Inbox,
    metrics: &Metrics,
) -> Result<NotificationReceiver, String> {
    let keys = load_keys(&cfg.graph.webhook)?;
    let tokens = None;
    Ok(NotificationReceiver::new(
        inbox.clone(),
        metrics.clone(),
        Decryptor::new(keys),
        tokens,
        PresenceMemory::new(),
    ))
}
