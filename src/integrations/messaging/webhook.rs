//! Genesys' outbound webhook for the Open Messaging integration: `X-Hub-Signature-256:
//! sha256=<base64(HMAC-SHA256(secret, body))>` checked in constant time before the body is
//! read (<https://developer.genesys.cloud/commdigital/digital/openmessaging/validate.html>;
//! base64, not hex), then the `NormalizedMessage` queued with its id as the dedupe id: a
//! message Genesys delivers again (it retries on timeouts, 429 and 5xx) is carried once.

use std::sync::Arc;

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::integrations::messaging::Bridge;
use crate::integrations::messaging::wire::{Hop, NormalizedMessage};

/// Why a webhook call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRejection {
    #[error("no such integration")]
    UnknownIntegration,
    #[error("missing or wrong signature")]
    BadSignature,
    #[error("not a normalized message")]
    BadBody,
    #[error("cannot queue now")]
    Unavailable,
}

/// The webhook of one integration.
pub struct GenesysWebhook {
    name: String,
    secret: SecretString,
    bridge: Arc<Bridge>,
}

impl GenesysWebhook {
    pub fn new(name: String, secret: SecretString, bridge: Arc<Bridge>) -> Self {
        Self {
            name,
            secret,
            bridge,
        }
    }

    /// Checks and queues one call. `Ok(true)` = new, `Ok(false)` = a duplicate.
    pub async fn accept(
        &self,
        integration: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<bool, WebhookRejection> {
        if integration != self.name {
            return Err(WebhookRejection::UnknownIntegration);
        }
        if !verify(&self.secret, signature, body) {
            self.bridge
                .count("messaging_webhook_total", "bad_signature");
            return Err(WebhookRejection::BadSignature);
        }
        let msg: NormalizedMessage =
            serde_json::from_slice(body).map_err(|_| WebhookRejection::BadBody)?;
        let key = format!("genesys:{}", msg.channel.to.id);
        let dedupe = format!("out:{}", msg.id);
        let new = self
            .bridge
            .enqueue(vec![(key, dedupe, Hop::Outbound { message: msg })])
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "agent message not queued; Genesys will retry");
                WebhookRejection::Unavailable
            })?;
        self.bridge.count(
            "messaging_webhook_total",
            if new > 0 { "queued" } else { "duplicate" },
        );
        Ok(new > 0)
    }
}

/// `sha256=<base64>` of HMAC-SHA256 over `body`, compared in constant time.
pub fn verify(secret: &SecretString, header: Option<&str>, body: &[u8]) -> bool {
    let Some(given) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(given) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer_signature() {
        // HMAC-SHA256(key="secret", "{}") computed with `openssl dgst -sha256 -hmac secret
        // -binary | base64`, outside this code.
        let secret = SecretString::from("secret");
        let sig = "sha256=dzJZAsrKgS3CWXM6rNBGtzgXNyx3e42VtAJkdHRRbhM=";
        assert!(verify(&secret, Some(sig), b"{}"));
        assert!(!verify(&secret, Some(sig), b"{ }"));
        assert!(!verify(&SecretString::from("other"), Some(sig), b"{}"));
        assert!(!verify(&secret, None, b"{}"));
        assert!(!verify(&secret, Some("sha256=not base64!"), b"{}"));
        // hex (the GitHub habit) is not what Genesys sends
        assert!(!verify(
            &secret,
            Some("sha256=77325902caca812dc259733aacd046b73817372c777b8d95b402647474516e13"),
            b"{}"
        ));
    }
}
