//! Builds the notification parts from the configuration: the receiver (before the router)
//! and, once the Graph client exists, the subscription manager, the poller and the directory
//! sync on `users` change notifications, which become jobs when the application runs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::config::Config;
use crate::app::{AppError, Core};
use crate::graph::accounts::AccountTokens;
use crate::graph::client::GraphClient;
use crate::graph::directory::DirectorySync;
use crate::graph::notifications::NotificationReceiver;
use crate::graph::notifications::config::{PresenceSource, load_keys};
use crate::graph::notifications::crypto::Decryptor;
use crate::graph::notifications::jwt::{JwksCache, TokenValidator};
use crate::graph::presence::memory::PresenceMemory;
use crate::graph::presence::poller::Poller;
use crate::graph::subscriptions::client::GraphSubscriptions;
use crate::graph::subscriptions::{Coverage, ManagerSettings, SubscriptionManager};
use crate::job::Job;
use crate::store::inbox::Inbox;
use crate::telemetry::Metrics;

/// The identity the validation tokens must be issued for.
struct TokenAudience<'a> {
    pub client_id: &'a str,
    pub tenant_id: &'a str,
    /// e.g. `https://login.microsoftonline.com`
    pub authority: &'a str,
    /// Overrides `{authority}/common/discovery/v2.0/keys`.
    pub jwks_url: Option<&'a url::Url>,
}

/// The token validator for our app and tenant.
fn token_validator(
    aud: &TokenAudience<'_>,
    http: reqwest::Client,
) -> Result<TokenValidator, AppError> {
    let url = match aud.jwks_url {
        Some(u) => u.clone(),
        None => url::Url::parse(&format!(
            "{}/common/discovery/v2.0/keys",
            aud.authority.trim_end_matches('/')
        ))
        .map_err(|e| AppError::Config(format!("graph.authority_url: {e}")))?,
    };
    Ok(TokenValidator::new(
        JwksCache::new(url, http),
        aud.client_id,
        aud.tenant_id,
        aud.authority,
    ))
}

/// The validation-token checker for our app and tenant; `None` without
/// `graph.tenant_id`/`client_id`.
pub(super) fn validator(cfg: &Config) -> Result<Option<TokenValidator>, AppError> {
    let g = &cfg.graph;
    match (&g.client_id, &g.tenant_id) {
        (Some(client_id), Some(tenant_id)) => Ok(Some(token_validator(
            &TokenAudience {
                client_id,
                tenant_id,
                authority: g.authority_url.as_str(),
                jwks_url: g.webhook.jwks_url.as_ref(),
            },
            reqwest::Client::new(),
        )?)),
        _ => Ok(None),
    }
}

/// The receiver for this configuration. Without `graph.tenant_id`/`client_id` rich
/// notifications cannot be checked and are refused.
pub fn receiver(
    cfg: &Config,
    inbox: &Inbox,
    metrics: &Metrics,
) -> Result<NotificationReceiver, AppError> {
    let keys = load_keys(&cfg.graph.webhook)
        .map_err(|e| AppError::Config(format!("graph.webhook.certificates: {e}")))?;
    let tokens = validator(cfg)?;
    Ok(NotificationReceiver::new(
        inbox.clone(),
        metrics.clone(),
        Decryptor::new(keys),
        tokens,
        PresenceMemory::new(),
        cfg.graph.webhook.max_notifications_per_batch,
    ))
}

/// The manager (absent in `poll` mode), the poller, and the directory sync that follows
/// `users` change notifications (with the manager, when `users_subscription` is on).
pub struct NotifyParts {
    pub mode: PresenceSource,
    pub manager: Option<SubscriptionManager>,
    pub poller: Poller,
    directory_on_change: Option<(DirectorySync, Arc<tokio::sync::Notify>)>,
    /// Every sync account refreshed on a schedule (with `graph.token_encryption_key`).
    account_refresh: Option<(Arc<AccountTokens>, std::time::Duration, Metrics)>,
}

impl NotifyParts {
    /// The parts as jobs that stop when `cancel` fires.
    pub fn into_jobs(self, cancel: &CancellationToken) -> Vec<Job> {
        tracing::info!(presence_source = ?self.mode, "Teams presence source");
        let mut jobs: Vec<Job> = Vec::new();
        if let Some((tokens, every, metrics)) = self.account_refresh {
            jobs.push((
                "graph_account_refresh",
                Box::pin(tokens.keep_fresh(every, metrics, cancel.clone())),
            ));
        }
        if let Some((sync, changed)) = self.directory_on_change {
            jobs.push((
                "graph_directory_on_change",
                Box::pin(sync_on_directory_change(sync, changed, cancel.clone())),
            ));
        }
        if let Some(m) = self.manager {
            jobs.push(("graph_subscriptions", Box::pin(m.run(cancel.clone()))));
        }
        jobs.push((
            "graph_presence_poll",
            Box::pin(self.poller.run(cancel.clone())),
        ));
        jobs
    }
}

/// Builds the parts; `presence_source` unset means `hybrid` when a sync account exists and
/// `server.public_url` is set, else `poll`.
pub(crate) async fn parts(
    core: &Core,
    receiver: &NotificationReceiver,
    client: &GraphClient,
) -> Result<NotifyParts, AppError> {
    let cfg = &core.config;
    let accounts = match &cfg.graph.token_encryption_key {
        Some(_) => Some(Arc::new(
            AccountTokens::new(&cfg.graph, core.store.clone(), Some(core.health.clone()))
                .map_err(|e| AppError::Config(format!("graph.token_encryption_key: {e}")))?,
        )),
        None => None,
    };
    let account_refresh = accounts.as_ref().map(|tokens| {
        (
            tokens.clone(),
            std::time::Duration::from_secs(cfg.graph.account_refresh_interval_secs),
            core.metrics.clone(),
        )
    });
    let has_accounts = !core.store.list_accounts().await?.is_empty();
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
                certificate: receiver
                    .decryptor()
                    .current()
                    .map(|k| (k.id.clone(), k.certificate_b64.clone())),
                cfg: cfg.graph.subscriptions.clone(),
                scope: cfg.sync.presence_scope(),
            };
            Some(SubscriptionManager {
                api: Arc::new(GraphSubscriptions::new(client.clone(), accounts)),
                store: core.store.clone(),
                receiver: receiver.clone(),
                health: core.health.clone(),
                metrics: core.metrics.clone(),
                settings,
                clock: core.clock.clone(),
                coverage: Coverage::default(),
                applied: Default::default(),
            })
        }
    };
    let poller = Poller {
        api: Arc::new(client.clone()),
        store: core.store.clone(),
        inbox: core.inbox.clone(),
        memory: receiver.memory().clone(),
        coverage: manager.as_ref().map(|m| m.coverage()),
        mode,
        cfg: cfg.graph.poll.clone(),
        metrics: core.metrics.clone(),
        scope: cfg.sync.presence_scope(),
        changes: core.scope_changes.clone(),
    };
    let directory_on_change = (manager.is_some() && cfg.graph.subscriptions.users_subscription)
        .then(|| {
            (
                DirectorySync::new(client.clone(), core.store.clone())
                    .with_scope(cfg.sync.presence_scope())
                    .with_changes(core.scope_changes.clone()),
                receiver.directory_changed(),
            )
        });
    Ok(NotifyParts {
        mode,
        manager,
        poller,
        directory_on_change,
        account_refresh,
    })
}

/// Directory changes come in bursts (a licence and a profile edit, a batch of new hires); wait
/// this long after a `users` notification so one delta sync covers the burst.
const DIRECTORY_CHANGE_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs a directory delta sync after `users` change notifications (debounced).
async fn sync_on_directory_change(
    sync: DirectorySync,
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
