//! `graph.presence_source`, `[graph.webhook]`, `[graph.subscriptions]` and `[graph.poll]`:
//! how the bridge learns about Teams presence changes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::ConfigErrors;
use crate::graph::config::GraphConfig;
use crate::graph::notifications::crypto::{KeyLoadError, NotificationKey};

/// Users per presence subscription and per `getPresencesByUserId` call (Graph's limit).
pub const MAX_SHARD_SIZE: usize = 650;

/// Default of `graph.webhook.max_notifications_per_batch`.
pub const DEFAULT_MAX_NOTIFICATIONS_PER_BATCH: usize = 1000;

/// Where Teams presence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceSource {
    /// Presence subscriptions only (needs sync accounts and `server.public_url`).
    Webhook,
    /// App-only `getPresencesByUserId` polling only.
    Poll,
    /// Webhooks, a slow safety poll, and fast polling of shards whose subscription is unhealthy.
    Hybrid,
}

/// `[graph.webhook]`: the notification receiver.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Certificates for rich notifications (at most two, for rotation). The first one is put
    /// on new subscriptions; notifications are opened with whichever `encryptionCertificateId`
    /// names. Without any, subscriptions ask for basic notifications and presence is read
    /// after each one.
    pub certificates: Vec<CertificateConfig>,
    /// JWKS URL for the validation tokens. Default: `{graph.authority_url}/common/discovery/v2.0/keys`.
    pub jwks_url: Option<url::Url>,
    /// Largest notification body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Most notifications accepted in one POST; a larger batch gets 413 and nothing in it is
    /// looked at. Graph does not document how many it puts in one POST (UNCERTAIN); a
    /// presence subscription covers at most 650 users and one POST may mix subscriptions.
    pub max_notifications_per_batch: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            certificates: Vec::new(),
            jwks_url: None,
            max_body_bytes: 1024 * 1024,
            max_notifications_per_batch: DEFAULT_MAX_NOTIFICATIONS_PER_BATCH,
        }
    }
}

/// One rich-notification certificate.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// Our id for it (`encryptionCertificateId`), up to 128 characters.
    pub id: String,
    /// PEM X.509 certificate (self-signed is fine; RSA 2048–4096 bits).
    pub certificate_file: PathBuf,
    /// PEM private key of the certificate (PKCS#8 or PKCS#1).
    pub private_key_file: PathBuf,
}

/// `[graph.subscriptions]`: presence and user-change subscriptions.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionsConfig {
    /// Users per presence subscription, at most 650.
    pub shard_size: usize,
    /// How often presence subscriptions are renewed (PATCH), in seconds.
    pub presence_renew_interval_secs: u64,
    /// Expiry asked for on create and renewal of presence subscriptions, in seconds from now.
    /// Graph raises values under 45 min to 45 min and caps presence at 60 min.
    pub presence_expiry_secs: u64,
    /// Keep a `users` subscription (updated, deleted) that triggers a directory delta sync.
    pub users_subscription: bool,
    /// How often the `users` subscription is renewed, in seconds.
    pub users_renew_interval_secs: u64,
    /// Expiry asked for the `users` subscription, in seconds from now (at most 41,760 min).
    pub users_expiry_secs: u64,
}

impl Default for SubscriptionsConfig {
    fn default() -> Self {
        Self {
            shard_size: MAX_SHARD_SIZE,
            presence_renew_interval_secs: 600,
            presence_expiry_secs: 3600,
            users_subscription: true,
            users_renew_interval_secs: 3600,
            users_expiry_secs: 2 * 24 * 3600,
        }
    }
}

/// `[graph.poll]`: app-only presence polling.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollConfig {
    /// `getPresencesByUserId` calls per 30 s the poller may spend. Graph documents 1,500 per
    /// 30 s per app and tenant (the throttling page says 10,000: UNCERTAIN). The default is
    /// half of that on purpose: the same per-tenant budget (`graph.presence_read_budget`, one
    /// limiter for every presence read) also serves reconciliation, reads after basic
    /// notifications and reads of people new in scope, which must not queue behind a round;
    /// 750 still reads 100,000 people in about 6 s.
    pub calls_per_30s: u32,
    /// Shortest time between two full polls, in seconds (`poll` mode and unhealthy shards).
    pub interval_secs: u64,
    /// Time between two safety polls of healthy shards in `hybrid` mode, in seconds.
    pub safety_interval_secs: u64,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            calls_per_30s: 750,
            interval_secs: 10,
            safety_interval_secs: 900,
        }
    }
}

/// Checks `webhook`, `subscriptions` and `poll` of `[graph]`; called from
/// [`GraphConfig::validate`]. That webhooks need `server.public_url` is checked with the
/// whole file, in [`crate::app::config`].
pub fn validate(graph: &GraphConfig, path: &str, errs: &mut ConfigErrors) {
    let webhook = &graph.webhook;
    if webhook.certificates.len() > 2 {
        errs.push(
            format!("{path}.webhook.certificates"),
            "at most two (current and next)",
        );
    }
    for (i, c) in webhook.certificates.iter().enumerate() {
        let path = format!("{path}.webhook.certificates[{i}]");
        if c.id.is_empty() || c.id.len() > 128 {
            errs.push(format!("{path}.id"), "must be 1 to 128 characters");
        }
        if webhook.certificates[..i].iter().any(|o| o.id == c.id) {
            errs.push(format!("{path}.id"), "duplicate certificate id");
        }
        if let Err(e) = NotificationKey::load(&c.id, &c.certificate_file, &c.private_key_file) {
            errs.push(path, e.to_string());
        }
    }
    if webhook.max_body_bytes < 1024 {
        errs.push(
            format!("{path}.webhook.max_body_bytes"),
            "must be at least 1024",
        );
    }
    if webhook.max_notifications_per_batch == 0 {
        errs.push(
            format!("{path}.webhook.max_notifications_per_batch"),
            "must be at least 1",
        );
    }
    let s = &graph.subscriptions;
    if s.shard_size == 0 || s.shard_size > MAX_SHARD_SIZE {
        errs.push(
            format!("{path}.subscriptions.shard_size"),
            "must be 1 to 650",
        );
    }
    if !(45 * 60..=60 * 60).contains(&s.presence_expiry_secs) {
        errs.push(
            format!("{path}.subscriptions.presence_expiry_secs"),
            "must be 2700 to 3600 (Graph keeps presence subscriptions 45 to 60 minutes)",
        );
    }
    if s.presence_renew_interval_secs < 60
        || s.presence_renew_interval_secs * 2 > s.presence_expiry_secs
    {
        errs.push(
            format!("{path}.subscriptions.presence_renew_interval_secs"),
            "must be at least 60 and at most half of presence_expiry_secs",
        );
    }
    if !(3600..=41_760 * 60).contains(&s.users_expiry_secs) {
        errs.push(
            format!("{path}.subscriptions.users_expiry_secs"),
            "must be 3600 to 2505600 (41,760 minutes)",
        );
    }
    if s.users_renew_interval_secs < 60 || s.users_renew_interval_secs * 2 > s.users_expiry_secs {
        errs.push(
            format!("{path}.subscriptions.users_renew_interval_secs"),
            "must be at least 60 and at most half of users_expiry_secs",
        );
    }
    let p = &graph.poll;
    if p.calls_per_30s == 0 {
        errs.push(format!("{path}.poll.calls_per_30s"), "must be at least 1");
    }
    if p.interval_secs == 0 {
        errs.push(format!("{path}.poll.interval_secs"), "must be at least 1");
    }
    if p.safety_interval_secs < p.interval_secs {
        errs.push(
            format!("{path}.poll.safety_interval_secs"),
            "must be at least graph.poll.interval_secs",
        );
    }
}

/// Loads the configured certificates (validated already; errors here mean the files changed).
pub fn load_keys(webhook: &WebhookConfig) -> Result<Vec<NotificationKey>, KeyLoadError> {
    webhook
        .certificates
        .iter()
        .map(|c| NotificationKey::load(&c.id, &c.certificate_file, &c.private_key_file))
        .collect()
}

/// Polling cadence from the budget: (interval between full polls, calls per poll).
pub fn poll_cadence(users: usize, poll: &PollConfig) -> (std::time::Duration, usize) {
    let calls = users.div_ceil(MAX_SHARD_SIZE).max(1);
    let per_sec = f64::from(poll.calls_per_30s) / 30.0;
    let needed = calls as f64 / per_sec;
    let interval = needed.max(poll.interval_secs as f64);
    (std::time::Duration::from_secs_f64(interval), calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `[graph]` section of a configuration file.
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        graph: GraphConfig,
    }

    fn parse(extra: &str) -> Result<File, toml::de::Error> {
        let text = format!(
            "{}\n{extra}",
            include_str!("../../../config/presence-bridge.example.toml")
        );
        toml::from_str(&text)
    }

    #[test]
    fn documented_section_parses_with_its_defaults() {
        let cfg = parse("").expect("example section parses");
        let g = &cfg.graph;
        // The example leaves the source to its default and the certificates commented out.
        assert_eq!(g.presence_source, None);
        assert!(g.webhook.certificates.is_empty());
        assert_eq!(
            g.webhook.max_body_bytes,
            WebhookConfig::default().max_body_bytes
        );
        assert_eq!(
            g.subscriptions.presence_renew_interval_secs,
            SubscriptionsConfig::default().presence_renew_interval_secs
        );
        assert_eq!(g.poll.calls_per_30s, PollConfig::default().calls_per_30s);
    }

    #[test]
    fn every_bad_value_is_reported() {
        let mut cfg = parse("").unwrap();
        cfg.graph.webhook.certificates.push(CertificateConfig {
            id: "missing".into(),
            certificate_file: "/nonexistent/notify.crt.pem".into(),
            private_key_file: "/nonexistent/notify.key.pem".into(),
        });
        cfg.graph.subscriptions.shard_size = 651;
        cfg.graph.subscriptions.presence_expiry_secs = 4000;
        cfg.graph.subscriptions.users_renew_interval_secs = 10;
        cfg.graph.poll.calls_per_30s = 0;
        cfg.graph.poll.safety_interval_secs = 1;
        cfg.graph.webhook.max_body_bytes = 10;
        let mut errs = ConfigErrors::default();
        validate(&cfg.graph, "graph", &mut errs);
        let paths: Vec<&str> = errs.iter().map(|i| i.path.as_str()).collect();
        for p in [
            "graph.webhook.certificates[0]",
            "graph.webhook.max_body_bytes",
            "graph.subscriptions.shard_size",
            "graph.subscriptions.presence_expiry_secs",
            "graph.subscriptions.users_renew_interval_secs",
            "graph.poll.calls_per_30s",
            "graph.poll.safety_interval_secs",
        ] {
            assert!(paths.contains(&p), "{p} not reported: {paths:?}");
        }
    }

    #[test]
    fn cadence_follows_the_budget() {
        let poll = PollConfig {
            calls_per_30s: 1500,
            interval_secs: 1,
            safety_interval_secs: 900,
        };
        let (interval, calls) = poll_cadence(100_000, &poll);
        assert_eq!(calls, 154);
        assert!((interval.as_secs_f64() - 3.08).abs() < 0.01, "{interval:?}");
        let (interval, _) = poll_cadence(650, &PollConfig::default());
        assert_eq!(interval.as_secs(), 10);
    }
}
