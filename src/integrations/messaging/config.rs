//! `[messaging]`: the Teams chat ⇄ Genesys Cloud Open Messaging bridge.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, resolve_secret, serialize_redacted_opt};
use crate::connectors::http::config::OAuth2Config;

/// How a Teams reply to an earlier message is carried into the flat Open Messaging thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyPolicy {
    /// The replied-to text is quoted (`> sender: text`) before the reply.
    #[default]
    Quote,
    /// Only the reply's own text is sent.
    Strip,
}

/// `[messaging]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MessagingConfig {
    /// Turns the bridge on. Needs `[graph]` with `token_encryption_key` and a webhook
    /// certificate, `server.public_url`, and `[messaging.genesys]`.
    pub enabled: bool,
    /// User principal names of the support accounts whose chats are bridged. Each must be a
    /// signed-in sync account (`presence-bridge accounts add`) whose consent covers
    /// `Chat.Read`, `ChatMessage.Send` and (for shared files) `Files.Read.All`.
    pub support_accounts: Vec<String>,
    /// `quote` (default) or `strip`: what happens to the message a Teams reply refers to.
    pub reply_policy: ReplyPolicy,
    /// Messages of one chat within this many seconds of the last one continue the same Open
    /// Messaging identity (and so the same Genesys conversation); after a longer silence the
    /// chat starts a new one.
    pub thread_window_secs: u64,
    /// Largest attachment forwarded, either way; larger ones are replaced by a notice.
    pub max_attachment_bytes: u64,
    /// Where re-hosted attachments are kept until their links expire.
    pub attachment_dir: PathBuf,
    /// Lifetime of a re-hosted attachment's signed link.
    pub attachment_url_ttl_secs: u64,
    /// Key signing attachment links: base64 of at least 32 random bytes.
    #[serde(serialize_with = "serialize_redacted_opt")]
    pub url_signing_key: Option<SecretString>,
    /// File holding `url_signing_key`.
    pub url_signing_key_file: Option<PathBuf>,
    /// Chat-message subscriptions are asked to live this long (Graph allows up to 4,320
    /// minutes for chat messages).
    pub subscription_expiry_secs: u64,
    /// Chat-message subscriptions are renewed after this long.
    pub subscription_renew_interval_secs: u64,
    /// The Open Messaging integration.
    pub genesys: Option<GenesysMessagingConfig>,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            support_accounts: Vec::new(),
            reply_policy: ReplyPolicy::Quote,
            thread_window_secs: 24 * 3600,
            max_attachment_bytes: 10 * 1024 * 1024,
            attachment_dir: PathBuf::from("data/messaging-files"),
            attachment_url_ttl_secs: 3600,
            url_signing_key: None,
            url_signing_key_file: None,
            subscription_expiry_secs: 24 * 3600,
            subscription_renew_interval_secs: 6 * 3600,
            genesys: None,
        }
    }
}

/// `[messaging.genesys]`: one Genesys Cloud Open Messaging integration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenesysMessagingConfig {
    /// Name in the webhook path: Genesys posts to `{public_url}/messaging/genesys/{name}`
    /// (set that as the integration's `outboundNotificationWebhookUrl`).
    pub name: String,
    /// The Open Messaging integration id.
    pub integration_id: String,
    /// API base, e.g. `https://api.mypurecloud.com` (region-specific).
    pub api_base_url: url::Url,
    /// Client-credentials OAuth client of the Genesys org (token URL e.g.
    /// `https://login.mypurecloud.com/oauth/token`).
    pub oauth: OAuth2Config,
    /// The integration's `outboundNotificationWebhookSignatureSecretToken`.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub webhook_secret: Option<SecretString>,
    /// File holding `webhook_secret`.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// Send delivery receipts (`Delivered`/`Failed`) for agent messages.
    #[serde(default = "yes")]
    pub receipts: bool,
    /// Largest webhook body accepted.
    #[serde(default = "default_webhook_body")]
    pub max_webhook_body_bytes: usize,
}

fn yes() -> bool {
    true
}

fn default_webhook_body() -> usize {
    256 * 1024
}

/// Smallest signing key accepted, in bytes.
const MIN_SIGNING_KEY_BYTES: usize = 32;

impl MessagingConfig {
    /// Checks the section and resolves its secrets. Cross-section needs (`[graph]`,
    /// `server.public_url`) are checked by the application wiring's caller.
    pub fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        if !self.enabled {
            return;
        }
        if self.support_accounts.is_empty() {
            errs.push(
                ConfigErrors::key(path, "support_accounts"),
                "name at least one support account",
            );
        }
        errs.between(
            path,
            "thread_window_secs",
            self.thread_window_secs,
            60,
            30 * 86_400,
        );
        errs.at_least(path, "max_attachment_bytes", self.max_attachment_bytes, 1);
        errs.between(
            path,
            "attachment_url_ttl_secs",
            self.attachment_url_ttl_secs,
            60,
            7 * 86_400,
        );
        // Chat messages: at most 4,320 minutes (reference/graph.md §3.1).
        errs.between(
            path,
            "subscription_expiry_secs",
            self.subscription_expiry_secs,
            3600,
            4320 * 60,
        );
        errs.between(
            path,
            "subscription_renew_interval_secs",
            self.subscription_renew_interval_secs,
            300,
            self.subscription_expiry_secs.max(300),
        );
        let key_path = ConfigErrors::key(path, "url_signing_key");
        self.url_signing_key = resolve_secret(
            errs,
            &key_path,
            self.url_signing_key.take(),
            self.url_signing_key_file.as_deref(),
        );
        match &self.url_signing_key {
            None => errs.push(&key_path, "is required (base64 of 32 or more random bytes)"),
            Some(k) => {
                use base64::Engine;
                let ok = base64::engine::general_purpose::STANDARD
                    .decode(k.expose_secret().trim())
                    .is_ok_and(|b| b.len() >= MIN_SIGNING_KEY_BYTES);
                if !ok {
                    errs.push(&key_path, "must be base64 of 32 or more bytes");
                }
            }
        }
        let gpath = ConfigErrors::key(path, "genesys");
        match &mut self.genesys {
            None => errs.push(&gpath, "is required when messaging is enabled"),
            Some(g) => {
                let ok_name = !g.name.is_empty()
                    && g.name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                if !ok_name {
                    errs.push(
                        ConfigErrors::key(&gpath, "name"),
                        "letters, digits, '-' and '_' only",
                    );
                }
                if g.integration_id.is_empty() {
                    errs.push(ConfigErrors::key(&gpath, "integration_id"), "is required");
                }
                g.oauth.validate(&ConfigErrors::key(&gpath, "oauth"), errs);
                let spath = ConfigErrors::key(&gpath, "webhook_secret");
                g.webhook_secret = resolve_secret(
                    errs,
                    &spath,
                    g.webhook_secret.take(),
                    g.webhook_secret_file.as_deref(),
                );
                if g.webhook_secret.is_none() {
                    errs.push(&spath, "is required (the integration's signature secret)");
                }
                errs.at_least(
                    &gpath,
                    "max_webhook_body_bytes",
                    g.max_webhook_body_bytes,
                    1024,
                );
            }
        }
    }
}

impl MessagingConfig {
    /// What the bridge needs from other sections: Graph with sync accounts (the token key)
    /// and a webhook certificate (chat messages arrive encrypted), and a public URL (where
    /// Graph and Genesys call, and where attachment links point).
    pub fn check_needs(
        &self,
        path: &str,
        graph: &crate::graph::config::GraphConfig,
        has_public_url: bool,
        errs: &mut ConfigErrors,
    ) {
        if !self.enabled {
            return;
        }
        let key = ConfigErrors::key(path, "enabled");
        if !graph.enabled() {
            errs.push(
                &key,
                "needs [graph] (graph.tenant_id and the app registration)",
            );
        }
        if graph.token_encryption_key.is_none() && graph.token_encryption_key_file.is_none() {
            errs.push(
                &key,
                "needs graph.token_encryption_key (support accounts are signed-in sync accounts)",
            );
        }
        if graph.webhook.certificates.is_empty() {
            errs.push(
                &key,
                "needs a graph.webhook.certificates entry (chat messages arrive encrypted)",
            );
        }
        if !has_public_url {
            errs.push(
                &key,
                "needs server.public_url (where Graph and Genesys call, and attachment links point)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> MessagingConfig {
        toml::from_str(text).expect("parses")
    }

    #[test]
    fn off_by_default_and_every_bad_value_is_reported() {
        let mut off = MessagingConfig::default();
        let mut errs = ConfigErrors::default();
        off.validate("messaging", &mut errs);
        assert!(errs.is_empty());
        assert_eq!(off.reply_policy, ReplyPolicy::Quote);
        assert_eq!(off.thread_window_secs, 86_400);

        let mut bad = parse(
            r#"
enabled = true
reply_policy = "strip"
thread_window_secs = 5
subscription_expiry_secs = 999999
url_signing_key = "c2hvcnQ="
[genesys]
name = "bad name"
integration_id = ""
api_base_url = "https://api.mypurecloud.com"
[genesys.oauth]
token_url = "https://login.mypurecloud.com/oauth/token"
client_id = "x"
client_secret = "y"
"#,
        );
        let mut errs = ConfigErrors::default();
        bad.validate("messaging", &mut errs);
        let text = errs.to_string();
        for key in [
            "messaging.support_accounts",
            "messaging.thread_window_secs",
            "messaging.subscription_expiry_secs",
            "messaging.url_signing_key",
            "messaging.genesys.name",
            "messaging.genesys.integration_id",
            "messaging.genesys.webhook_secret",
        ] {
            assert!(text.contains(key), "{key} not reported in {text}");
        }
        assert_eq!(bad.reply_policy, ReplyPolicy::Strip);

        let mut needs = ConfigErrors::default();
        bad.check_needs(
            "messaging",
            &crate::graph::config::GraphConfig::default(),
            false,
            &mut needs,
        );
        let text = needs.to_string();
        for what in [
            "[graph]",
            "token_encryption_key",
            "certificates",
            "public_url",
        ] {
            assert!(text.contains(what), "{what} not reported in {text}");
        }
    }
}
