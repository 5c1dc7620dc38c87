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
    /// Seconds between two GetCurrentUserData polls (the event source in `events = "poll"`
    /// mode; ⌈agents/100⌉ calls per poll).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
    /// The event source: GetCurrentUserData polling, or the agent event stream in Kinesis.
    #[serde(default)]
    pub events: EventsMode,
    /// The Kinesis data stream of the instance's agent events (`events = "kinesis"`).
    pub kinesis: Option<KinesisConfig>,
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

/// Where the connector learns of status and contact changes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventsMode {
    /// GetCurrentUserData every `poll_interval_secs`, diffed against the last read.
    #[default]
    Poll,
    /// The instance's agent event stream, read from its Kinesis data stream.
    Kinesis,
}

/// Where reading a stream starts when no position was saved for it yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialPosition {
    /// Only records that arrive from now on.
    #[default]
    Latest,
    /// Every record the stream still holds (its retention, 24 hours by default).
    TrimHorizon,
}

/// `[connectors.kinesis]`: the agent event stream's Kinesis data stream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KinesisConfig {
    /// The stream's name (give this or `stream_arn`).
    pub stream_name: Option<String>,
    /// The stream's ARN (give this or `stream_name`).
    pub stream_arn: Option<String>,
    /// The instance's contact-record stream (Data streaming -> Contact Trace Records), by
    /// name or ARN. Optional: when given, it is read too, for `recording_available` contact
    /// events (recording location, customer endpoint).
    pub contact_records_stream_name: Option<String>,
    /// See `contact_records_stream_name`.
    pub contact_records_stream_arn: Option<String>,
    /// Overrides the Kinesis endpoint (tests, VPC endpoints). The region and credentials are
    /// the connector's.
    pub endpoint_url: Option<url::Url>,
    /// Milliseconds between two GetRecords calls on a shard that is caught up. Kinesis
    /// allows 5 reads per second per shard, so at least 200.
    #[serde(default = "default_kinesis_poll")]
    pub poll_interval_ms: u64,
    /// Records asked for per GetRecords call (1-10000).
    #[serde(default = "default_max_records")]
    pub max_records: u32,
    /// Seconds between two ListShards calls, which find shards added by resharding (a
    /// closed shard's children are also learned from GetRecords at once).
    #[serde(default = "default_shard_refresh")]
    pub shard_refresh_secs: u64,
    /// Where reading starts the first time (no saved position): `latest` or `trim_horizon`.
    #[serde(default)]
    pub initial_position: InitialPosition,
}

fn default_kinesis_poll() -> u64 {
    1000
}

fn default_max_records() -> u32 {
    1000
}

fn default_shard_refresh() -> u64 {
    60
}

impl KinesisConfig {
    fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        if self.stream_name.as_deref().unwrap_or_default().is_empty()
            && self.stream_arn.as_deref().unwrap_or_default().is_empty()
        {
            errs.push(
                format!("{path}.stream_name"),
                "give stream_name or stream_arn",
            );
        }
        if self.poll_interval_ms < 200 {
            errs.push(
                format!("{path}.poll_interval_ms"),
                "must be at least 200 (Kinesis allows 5 reads per second per shard)",
            );
        }
        if !(1..=10_000).contains(&self.max_records) {
            errs.push(format!("{path}.max_records"), "must be 1-10000");
        }
        if self.shard_refresh_secs == 0 {
            errs.push(format!("{path}.shard_refresh_secs"), "must be at least 1");
        }
    }
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
        match (&self.events, &self.kinesis) {
            (EventsMode::Kinesis, None) => errs.push(
                format!("{path}.kinesis"),
                "events = \"kinesis\" needs a [connectors.kinesis] section with stream_name or stream_arn",
            ),
            (_, Some(k)) => k.validate(&format!("{path}.kinesis"), errs),
            (EventsMode::Poll, None) => {}
        }
    }
}
