//! `[connectors.inbound]` of a `kind = "http"` connector: how an inbound webhook request is
//! verified (shared secret or HMAC with a replay window) and where its fields are.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::serialize_redacted_opt;

/// `[connectors.inbound]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InboundConfig {
    /// How a request proves it comes from the platform. Bodies are JSON, or form-urlencoded
    /// (by content type), whose fields become a flat object for the pointers.
    pub verify: VerifyConfig,
    /// JSON pointer to an array of events when one request carries several; absent = the
    /// body is one event.
    pub events_pointer: Option<String>,
    /// JSON pointer to the agent id inside an event.
    pub agent_id_pointer: String,
    /// JSON pointer to the status inside an event.
    pub status_pointer: String,
    /// Whether the status value is the catalog `id` or its `name`.
    #[serde(default)]
    pub status_is: StatusIs,
    /// JSON pointer to the event time (RFC 3339, or Unix seconds / milliseconds);
    /// absent = receive time.
    pub timestamp_pointer: Option<String>,
    /// JSON pointer to the event id, used to drop duplicates.
    pub event_id_pointer: Option<String>,
    /// Where the agent's contact activity (and its channel) is in an event; absent = the
    /// platform's events say nothing about it.
    pub activity: Option<super::contact::ActivityConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusIs {
    #[default]
    Id,
    Name,
}

/// `[connectors.inbound.verify]`, `type` selects the method. Comparisons are constant-time.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VerifyConfig {
    /// The request carries a shared secret in a header.
    SharedSecret {
        /// Header name.
        header: String,
        /// The secret.
        #[serde(default, serialize_with = "serialize_redacted_opt")]
        secret: Option<SecretString>,
        /// File holding the secret.
        secret_file: Option<PathBuf>,
    },
    /// The request carries an HMAC of the body (or of `timestamp.body`).
    Hmac(HmacConfig),
}

/// HMAC signature settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// Header carrying the signature.
    pub header: String,
    /// The HMAC key.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub secret: Option<SecretString>,
    /// File holding the HMAC key.
    pub secret_file: Option<PathBuf>,
    /// `sha256` or `sha1`.
    #[serde(default)]
    pub algorithm: HmacAlgorithm,
    /// `hex` or `base64`.
    #[serde(default)]
    pub encoding: SignatureEncoding,
    /// Text before the signature in the header, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: String,
    /// What is signed: the raw `body`, or `timestamp_body` = `{timestamp}.{body}`.
    #[serde(default)]
    pub signed: SignedString,
    /// Header carrying the timestamp (Unix seconds); only with `timestamp_body`, where the
    /// signature covers it. With `body` the header is not signed, so a window on it could be
    /// moved by rewriting the header: that combination is refused at start.
    pub timestamp_header: Option<String>,
    /// Requests whose signed timestamp is further than this from now are rejected; 0 = no
    /// window. Default: 300 with `timestamp_body`; only 0 is allowed with `body`.
    pub replay_window_secs: Option<u64>,
}

/// Replay window of a `timestamp_body` signature when none is configured.
pub const DEFAULT_REPLAY_WINDOW_SECS: u64 = 300;

impl HmacConfig {
    /// The replay window in effect: none without a signed timestamp.
    pub fn replay_window(&self) -> u64 {
        match self.signed {
            SignedString::TimestampBody => self
                .replay_window_secs
                .unwrap_or(DEFAULT_REPLAY_WINDOW_SECS),
            SignedString::Body => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    #[default]
    Sha256,
    Sha1,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignedString {
    #[default]
    Body,
    TimestampBody,
}
