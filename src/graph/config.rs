//! `[graph]`

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigErrors};
use crate::graph::notify_config::{PollConfig, PresenceSource, SubscriptionsConfig, WebhookConfig};

/// `[graph]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GraphConfig {
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

pub fn validate(cfg: &mut Config, errs: &mut ConfigErrors) {
    crate::graph::notify_config::validate(cfg, &cfg.graph.webhook, errs);
}
