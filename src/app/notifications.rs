//! Builds the notification parts from the configuration: the receiver (in
//! `Application::build`, before the router) and, once the Graph client exists, the
//! subscription manager and the poller as jobs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::Job;
use crate::config::Config;
use crate::graph::accounts::AccountTokens;
use crate::graph::client::GraphClient;
use crate::graph::notifications::NotificationReceiver;
use crate::graph::notifications::config::{PresenceSource, load_keys};
use crate::graph::notifications::crypto::Decryptor;
use crate::graph::notifications::jwt::{JwksCache, TokenValidator};
use crate::graph::presence::memory::PresenceMemory;
use crate::graph::presence::poller::Poller;
use crate::graph::subscriptions::client::GraphSubscriptions;
use crate::graph::subscriptions::{Coverage, ManagerSettings, SubscriptionManager};
use crate::http::AppState;
use crate::model::clock::Clock;
use crate::store::inbox::Inbox;
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

/// The receiver for this configuration. Without `graph.tenant_id`/`client_id` rich
/// notifications cannot be checked and are refused.
pub fn receiver(
    cfg: &Config,
    inbox: &Inbox,
    metrics: &Metrics,
) -> Result<NotificationReceiver, String> {
    let keys = load_keys(&cfg.graph.webhook).map_err(|e| e.to_string())?;
    let g = &cfg.graph;
    let tokens = match (&g.client_id, &g.tenant_id) {
        (Some(client_id), Some(tenant_id)) => Some(token_validator(
            &TokenAudience {
                client_id,
                tenant_id,
                authority: g.authority_url.as_str(),
                jwks_url: g.webhook.jwks_url.as_ref(),
            },
            reqwest::Client::new(),
        )?),
        _ => None,
    };
    Ok(NotificationReceiver::new(
        inbox.clone(),
        metrics.clone(),
        Decryptor::new(keys),
        tokens,
        PresenceMemory::new(),
    ))
}

/// The manager (absent in `poll` mode) and the poller.
pub struct NotifyParts {
    pub mode: PresenceSource,
    pub manager: Option<SubscriptionManager>,
    pub poller: Poller,
}

/// Builds the parts; `presence_source` unset means `hybrid` when a sync account exists and
/// `server.public_url` is set, else `poll`.
pub async fn parts(
    state: &AppState,
    client: &GraphClient,
    clock: Clock,
) -> Result<NotifyParts, String> {
    let cfg = &state.config;
    let accounts = match &cfg.graph.token_encryption_key {
        Some(_) => Some(Arc::new(
            AccountTokens::new(&cfg.graph, state.store.clone(), Some(state.health.clone()))
                .map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let has_accounts = !state
        .store
        .list_accounts()
        .await
        .map_err(|e| e.to_string())?
        .is_empty();
    let mode =
        cfg.graph
            .presence_source
            .unwrap_or(if has_accounts && cfg.server.public_url.is_some() {
                PresenceSource::Hybrid
            } else {
                PresenceSource::Poll
            });
    let manager = match (mode, &cfg.server.public_url) {
        (PresenceSource::Poll, _) | (_, None) => None,
        (_, Some(public)) => {
            let base = public.as_str().trim_end_matches('/');
            let settings = ManagerSettings {
                notification_url: format!("{base}/graph/notifications"),
                lifecycle_url: format!("{base}/graph/lifecycle"),
                certificate: state
                    .notifications
                    .decryptor()
                    .current()
                    .map(|k| (k.id.clone(), k.certificate_b64.clone())),
                cfg: cfg.graph.subscriptions.clone(),
            };
            Some(SubscriptionManager {
                api: Arc::new(GraphSubscriptions::new(client.clone(), accounts)),
                store: state.store.clone(),
                receiver: state.notifications.clone(),
                health: state.health.clone(),
                metrics: state.metrics.clone(),
                settings,
                clock,
                coverage: Coverage::default(),
            })
        }
    };
    let poller = Poller {
        api: Arc::new(client.clone()),
        store: state.store.clone(),
        inbox: state.inbox.clone(),
        memory: state.notifications.memory().clone(),
        coverage: manager.as_ref().map(|m| m.coverage()),
        mode,
        cfg: cfg.graph.poll.clone(),
        metrics: state.metrics.clone(),
    };
    Ok(NotifyParts {
        mode,
        manager,
        poller,
    })
}

/// Directory changes come in bursts (a licence and a profile edit, a batch of new hires); wait
/// this long after a `users` notification so one delta sync covers the burst.
const DIRECTORY_CHANGE_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a directory delta sync after `users` change notifications (debounced).
async fn sync_on_directory_change(
    sync: crate::graph::directory::DirectorySync,
    changed: Arc<tokio::sync::Notify>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = changed.notified() => {}
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(DIRECTORY_CHANGE_DEBOUNCE) => {}
        }
        if let Err(e) = sync.run_once().await {
            tracing::warn!(error = %e, "directory sync after a change notification failed");
        }
    }
}

/// Registers the subscription manager and poller jobs.
pub async fn jobs(
    state: &AppState,
    client: &GraphClient,
    cancel: &CancellationToken,
    jobs: &mut Vec<Job>,
) -> Result<(), String> {
    let p = parts(state, client, Clock::new()).await?;
    tracing::info!(presence_source = ?p.mode, "Teams presence source");
    if let Some(m) = p.manager {
        if state.config.graph.subscriptions.users_subscription {
            let sync =
                crate::graph::directory::DirectorySync::new(client.clone(), state.store.clone());
            let changed = state.notifications.directory_changed();
            jobs.push((
                "graph_directory_on_change",
                Box::pin(sync_on_directory_change(sync, changed, cancel.clone())),
            ));
        }
        jobs.push(("graph_subscriptions", Box::pin(m.run(cancel.clone()))));
    }
    jobs.push((
        "graph_presence_poll",
        Box::pin(p.poller.run(cancel.clone())),
    ));
    Ok(())
}
