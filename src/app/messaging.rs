//! How the Teams chat ⇄ Open Messaging bridge joins the application (with
//! `messaging.enabled`): the bridge, its endpoints, and three jobs: the queue runner of queue
//! `messaging`, the chat-message subscription manager, and the pruning of expired
//! attachments.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::app::notifications::validator;
use crate::app::{AppError, Core};
use crate::graph::accounts::AccountTokens;
use crate::graph::client::GraphClient;
use crate::graph::notifications::config::load_keys;
use crate::graph::notifications::crypto::Decryptor;
use crate::graph::subscriptions::client::GraphSubscriptions;
use crate::http::messaging::{Endpoints, MessagingHttp};
use crate::integrations::messaging::files::FileHost;
use crate::integrations::messaging::genesys::OpenMessagingApi;
use crate::integrations::messaging::hops::HopOutcome;
use crate::integrations::messaging::notify::ChatNotifications;
use crate::integrations::messaging::subscriptions::ChatSubscriptions;
use crate::integrations::messaging::teams::TeamsChats;
use crate::integrations::messaging::webhook::GenesysWebhook;
use crate::integrations::messaging::{Bridge, QUEUE};
use crate::job::Job;
use crate::runtime::queue::{JobHandler, JobOutcome, QueueRunner};
use crate::store::Job as QueuedJob;

/// How often expired attachments are deleted: links live an hour by default, so ten minutes
/// keeps at most a sixth of a lifetime's worth of dead files.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Carries queued hops out through the bridge.
struct Hops(Arc<Bridge>);

#[async_trait]
impl JobHandler for Hops {
    async fn handle(&self, job: &QueuedJob) -> JobOutcome {
        match self.0.handle(&job.payload).await {
            HopOutcome::Done => JobOutcome::Done,
            HopOutcome::RetryAfter(d) => JobOutcome::RetryAfter(d),
            HopOutcome::Failed(m) => JobOutcome::Failed(m),
        }
    }
}

/// The endpoints and jobs; `None` without `messaging.enabled`.
pub(crate) fn build(
    core: &Core,
    client: Option<&GraphClient>,
    cancel: &CancellationToken,
) -> Result<Option<(MessagingHttp, Vec<Job>)>, AppError> {
    let cfg = &core.config;
    let m = &cfg.messaging;
    if !m.enabled {
        return Ok(None);
    }
    let bad = |what: &str, e: String| AppError::Config(format!("messaging: {what}: {e}"));
    let client = client.ok_or_else(|| bad("graph", "[graph] is not configured".into()))?;
    let public = cfg
        .server
        .public_url
        .as_ref()
        .ok_or_else(|| bad("server.public_url", "is required".into()))?;
    let genesys_cfg = m
        .genesys
        .as_ref()
        .ok_or_else(|| bad("genesys", "is required".into()))?;
    let accounts = Arc::new(
        AccountTokens::new(&cfg.graph, core.store.clone(), Some(core.health.clone()))
            .map_err(|e| bad("graph.token_encryption_key", e.to_string()))?,
    );
    let teams = TeamsChats::new(client.clone(), accounts.clone())
        .map_err(|e| bad("graph", e.to_string()))?;
    let genesys = OpenMessagingApi::new(genesys_cfg).map_err(|e| bad("genesys", e.to_string()))?;
    let key = m
        .url_signing_key
        .as_ref()
        .ok_or_else(|| bad("url_signing_key", "is required".into()))?;
    let files = FileHost::new(
        m.attachment_dir.clone(),
        key,
        public.as_str(),
        Duration::from_secs(m.attachment_url_ttl_secs),
    )
    .map_err(|e| bad("attachment_dir", e.to_string()))?;
    let bridge = Arc::new(Bridge::new(
        m.clone(),
        core.store.clone(),
        teams,
        genesys,
        files.clone(),
        core.metrics.clone(),
        core.clock.clone(),
    ));
    let keys = load_keys(&cfg.graph.webhook)
        .map_err(|e| bad("graph.webhook.certificates", e.to_string()))?;
    let certificate = keys
        .first()
        .map(|k| (k.id.clone(), k.certificate_b64.clone()));
    let tokens = validator(cfg)?;
    let (lifecycle_tx, lifecycle_rx) = tokio::sync::mpsc::unbounded_channel();
    let notifications =
        ChatNotifications::new(bridge.clone(), Decryptor::new(keys), tokens, lifecycle_tx);
    let secret = genesys_cfg
        .webhook_secret
        .clone()
        .ok_or_else(|| bad("genesys.webhook_secret", "is required".into()))?;
    let webhook = GenesysWebhook::new(genesys_cfg.name.clone(), secret, bridge.clone());
    let http = MessagingHttp::new(Endpoints {
        webhook,
        notifications,
        files: files.clone(),
        clock: core.clock.clone(),
        webhook_body_bytes: genesys_cfg.max_webhook_body_bytes,
        notification_body_bytes: cfg.graph.webhook.max_body_bytes,
    });
    let base = public.as_str().trim_end_matches('/');
    let manager = ChatSubscriptions {
        api: Arc::new(GraphSubscriptions::new(client.clone(), Some(accounts))),
        store: core.store.clone(),
        support_accounts: m.support_accounts.clone(),
        notification_url: format!("{base}/messaging/graph/notifications"),
        lifecycle_url: format!("{base}/messaging/graph/lifecycle"),
        certificate,
        expiry_secs: m.subscription_expiry_secs,
        renew_interval_secs: m.subscription_renew_interval_secs,
        clock: core.clock.clone(),
        metrics: core.metrics.clone(),
        health: core.health.clone(),
    };
    let runner = QueueRunner::new(
        core.store.clone(),
        QUEUE,
        Arc::new(Hops(bridge.clone())),
        core.clock.clone(),
    );
    bridge.set_waker(runner.waker());
    let jobs: Vec<Job> = vec![
        ("messaging_queue", Box::pin(runner.run(cancel.clone()))),
        (
            "messaging_subscriptions",
            Box::pin(manager.run(lifecycle_rx, cancel.clone())),
        ),
        (
            "messaging_attachment_prune",
            Box::pin(prune(files, core.clock.clone(), cancel.clone())),
        ),
    ];
    Ok(Some((http, jobs)))
}

async fn prune(files: FileHost, clock: crate::model::clock::Clock, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => match files.prune(clock.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired attachments deleted"),
                Err(e) => tracing::warn!(error = %e, "attachment pruning failed"),
            },
        }
    }
}
