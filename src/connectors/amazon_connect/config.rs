//! Settings of a `kind = "amazon_connect"` connector.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigErrors, serialize_redacted_opt};
use crate::connectors::config::{EventTimeConfig, LimitsConfig};

/// `[[connectors]]` with `kind = "amazon_connect"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AmazonConnectConfig {
    /// Unique connector name.
    pub name: String,
    /// AWS region of the instance, e.g. `eu-west-2`.
    pub region: String,
    /// The Amazon Connect instance id (the UUID in the instance ARN).
    pub instance_id: String,
    /// Overrides the service endpoint (tests, VPC endpoints).
    pub endpoint_url: Option<url::Url>,
    /// Static access key id; normally absent so the standard AWS credential chain is used
    /// (environment, profile, web identity, instance/container role).
    pub access_key_id: Option<String>,
    /// Static secret access key, with `access_key_id`.
    #[serde(default, serialize_with = "serialize_redacted_opt")]
    pub secret_access_key: Option<SecretString>,
    /// File holding the static secret access key.
    pub secret_access_key_file: Option<std::path::PathBuf>,
    /// Seconds between two GetCurrentUserData polls (the event source; ⌈agents/100⌉ calls
    /// per poll).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// Request rate, retries, timeouts.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// The range an event's own time must fall in.
    #[serde(default)]
    pub event_time: EventTimeConfig,
}

fn default_poll() -> u64 {
    10
}

impl AmazonConnectConfig {
    pub(crate) fn validate(&mut self, path: &str, errs: &mut ConfigErrors) {
        if self.region.is_empty() {
            errs.push(format!("{path}.region"), "is required");
        }
        if self.instance_id.is_empty() {
            errs.push(format!("{path}.instance_id"), "is required");
        }
        self.secret_access_key = crate::config::resolve_secret(
            errs,
            &format!("{path}.secret_access_key"),
            self.secret_access_key.take(),
            self.secret_access_key_file.as_deref(),
        );
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            errs.push(
                format!("{path}.access_key_id"),
                "give access_key_id and secret_access_key together (or neither, to use the AWS credential chain)",
            );
        }
        if self.poll_interval_secs == 0 {
            errs.push(format!("{path}.poll_interval_secs"), "must be at least 1");
        }
    }
}
