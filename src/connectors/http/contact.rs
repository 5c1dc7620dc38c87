//! What the generic connector reads about contacts: an agent's contact activity (and its
//! channel) next to the status, by JSON pointer, in inbound events and poll rows; and the
//! contact-event webhook (`POST /connectors/{name}/contact-events`), whose fields are found
//! by pointer and whose step names are mapped to `offered`, `connected`, `ended`,
//! `recording_available`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::extract::{parse_timestamp, pointer_str};
use super::inbound::{document, verify};
use super::inbound_config::VerifyConfig;
use crate::config::ConfigErrors;
use crate::connectors::InboundError;
use crate::model::contact_center::{
    Activity, Channel, ContactActivity, ContactEvent, ContactEventKind,
};

/// `[connectors.inbound.activity]` / `[connectors.poll.activity]`: where the agent's contact
/// activity is in an event or a poll row.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    /// JSON pointer to the platform's activity value.
    pub pointer: String,
    /// Platform value → `offered`, `on_contact`, `after_contact_work`, `idle` or
    /// `logged_out` (keys compared case-insensitively). Values that are already one of those
    /// names need no entry; any other value is an unknown activity.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// JSON pointer to the contact's channel.
    pub channel_pointer: Option<String>,
    /// Platform channel value → `voice`, `chat`, `email` or `task` (same rules as `values`).
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

/// `[connectors.contact_events]`: the contact-event webhook.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ContactEventsConfig {
    /// How a request proves it comes from the platform (as `[connectors.inbound.verify]`).
    pub verify: VerifyConfig,
    /// JSON pointer to an array of events when one request carries several; absent = the
    /// body is one event.
    pub events_pointer: Option<String>,
    /// JSON pointer to the contact (call, conversation, interaction) id.
    pub contact_id_pointer: String,
    /// JSON pointer to the step, mapped by `kinds`.
    pub kind_pointer: String,
    /// Platform step value → `offered`, `connected`, `ended` or `recording_available`
    /// (keys case-insensitive; those names themselves need no entry). Events with any other
    /// step are acknowledged and dropped (platforms send many event types to one URL).
    #[serde(default)]
    pub kinds: BTreeMap<String, String>,
    /// JSON pointer to the channel, mapped by `channels`.
    pub channel_pointer: Option<String>,
    /// Platform channel value → `voice`, `chat`, `email` or `task`.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    /// JSON pointer to the agent id (offered to / connected to).
    pub agent_id_pointer: Option<String>,
    /// JSON pointer to the queue name or id.
    pub queue_pointer: Option<String>,
    /// JSON pointer to the customer's number, address or handle.
    pub customer_endpoint_pointer: Option<String>,
    /// JSON pointer to the recording's URL (`recording_available`).
    pub recording_url_pointer: Option<String>,
    /// JSON pointer to the event time (RFC 3339, or Unix seconds / milliseconds); absent =
    /// receive time.
    pub timestamp_pointer: Option<String>,
    /// JSON pointer to the event id; without one, a contact's step is stored once.
    pub event_id_pointer: Option<String>,
    /// JSON pointer to an object of the platform's attributes, kept with the event.
    pub attributes_pointer: Option<String>,
}

/// `value` looked up in `map` (keys case-insensitive), else taken as a name of `names`.
fn mapped<T: Copy>(
    map: &BTreeMap<String, String>,
    value: &str,
    names: &[(T, &'static str)],
) -> Option<T> {
    let target = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(value))
        .map_or(value, |(_, v)| v.as_str());
    names
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(target))
        .map(|(t, _)| *t)
}

fn activities() -> Vec<(ContactActivity, &'static str)> {
    ContactActivity::ALL.map(|a| (a, a.as_str())).to_vec()
}

fn channels() -> Vec<(Channel, &'static str)> {
    Channel::ALL.map(|c| (c, c.as_str())).to_vec()
}

fn kinds() -> Vec<(ContactEventKind, &'static str)> {
    [
        ContactEventKind::Offered,
        ContactEventKind::Connected,
        ContactEventKind::Ended,
        ContactEventKind::RecordingAvailable,
    ]
    .map(|k| (k, k.as_str()))
    .to_vec()
}

fn channel_of(
    item: &Value,
    pointer: Option<&str>,
    map: &BTreeMap<String, String>,
) -> Option<Channel> {
    mapped(map, &pointer_str(item, pointer?)?, &channels())
}

impl ActivityConfig {
    /// The activity in `item`; `None` when absent or not a known value.
    pub fn extract(&self, item: &Value) -> Option<Activity> {
        let raw = pointer_str(item, &self.pointer)?;
        let Some(activity) = mapped(&self.values, &raw, &activities()) else {
            tracing::debug!(value = %raw, "unknown contact activity value ignored");
            return None;
        };
        Some(Activity {
            activity,
            channel: channel_of(item, self.channel_pointer.as_deref(), &self.channels),
        })
    }

    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        for (k, v) in &self.values {
            if mapped(&BTreeMap::new(), v, &activities()).is_none() {
                errs.push(
                    format!("{path}.values.{k}"),
                    format!("\"{v}\" is not a contact activity; use one of offered, on_contact, after_contact_work, idle, logged_out"),
                );
            }
        }
        check_channels(&format!("{path}.channels"), &self.channels, errs);
    }
}

fn check_channels(path: &str, map: &BTreeMap<String, String>, errs: &mut ConfigErrors) {
    for (k, v) in map {
        if mapped(&BTreeMap::new(), v, &channels()).is_none() {
            errs.push(
                format!("{path}.{k}"),
                format!("\"{v}\" is not a channel; use one of voice, chat, email, task"),
            );
        }
    }
}

impl ContactEventsConfig {
    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        for (k, v) in &self.kinds {
            if mapped(&BTreeMap::new(), v, &kinds()).is_none() {
                errs.push(
                    format!("{path}.kinds.{k}"),
                    format!("\"{v}\" is not a contact event; use one of offered, connected, ended, recording_available"),
                );
            }
        }
        check_channels(&format!("{path}.channels"), &self.channels, errs);
    }

    /// Every JSON pointer of the section, by key, for the pointer syntax check.
    pub fn pointers(&self) -> Vec<(&'static str, Option<&String>)> {
        vec![
            ("events_pointer", self.events_pointer.as_ref()),
            ("contact_id_pointer", Some(&self.contact_id_pointer)),
            ("kind_pointer", Some(&self.kind_pointer)),
            ("channel_pointer", self.channel_pointer.as_ref()),
            ("agent_id_pointer", self.agent_id_pointer.as_ref()),
            ("queue_pointer", self.queue_pointer.as_ref()),
            (
                "customer_endpoint_pointer",
                self.customer_endpoint_pointer.as_ref(),
            ),
            ("recording_url_pointer", self.recording_url_pointer.as_ref()),
            ("timestamp_pointer", self.timestamp_pointer.as_ref()),
            ("event_id_pointer", self.event_id_pointer.as_ref()),
            ("attributes_pointer", self.attributes_pointer.as_ref()),
        ]
    }

    /// Verifies the request and reads its contact events (steps not mapped are dropped).
    pub fn parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ContactEvent>, InboundError> {
        verify(&self.verify, headers, body, now)?;
        let doc = document(headers, body)?;
        let items: Vec<&Value> = match &self.events_pointer {
            Some(p) => doc
                .pointer(p)
                .and_then(Value::as_array)
                .ok_or_else(|| InboundError::Malformed(format!("no array at {p}")))?
                .iter()
                .collect(),
            None => vec![&doc],
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let missing = |what: &str, p: &str| {
                InboundError::Malformed(format!("event {i}: no {what} at {p}"))
            };
            let raw_kind = pointer_str(item, &self.kind_pointer)
                .ok_or_else(|| missing("kind", &self.kind_pointer))?;
            let Some(kind) = mapped(&self.kinds, &raw_kind, &kinds()) else {
                tracing::debug!(kind = %raw_kind, "contact event of an unmapped kind dropped");
                continue;
            };
            let contact_id = pointer_str(item, &self.contact_id_pointer)
                .ok_or_else(|| missing("contact id", &self.contact_id_pointer))?;
            let at = match &self.timestamp_pointer {
                Some(p) => item
                    .pointer(p)
                    .and_then(parse_timestamp)
                    .ok_or_else(|| missing("timestamp", p))?,
                None => now,
            };
            let field = |p: &Option<String>| p.as_ref().and_then(|p| pointer_str(item, p));
            out.push(ContactEvent {
                contact_id,
                kind,
                at,
                channel: channel_of(item, self.channel_pointer.as_deref(), &self.channels),
                agent_id: field(&self.agent_id_pointer),
                queue: field(&self.queue_pointer),
                customer_endpoint: field(&self.customer_endpoint_pointer),
                recording_url: field(&self.recording_url_pointer),
                event_id: field(&self.event_id_pointer),
                attributes: self
                    .attributes_pointer
                    .as_ref()
                    .and_then(|p| item.pointer(p))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activity_values_are_mapped_or_taken_by_name() {
        let cfg: ActivityConfig = toml::from_str(
            r#"
pointer = "/state"
channel_pointer = "/media"
values = { TALKING = "on_contact", wrap = "after_contact_work" }
channels = { phone = "voice" }
"#,
        )
        .unwrap();
        let a = cfg
            .extract(&json!({"state": "talking", "media": "PHONE"}))
            .unwrap();
        assert_eq!(a.activity, ContactActivity::OnContact);
        assert_eq!(a.channel, Some(Channel::Voice));
        let a = cfg
            .extract(&json!({"state": "Idle", "media": "fax"}))
            .unwrap();
        assert_eq!((a.activity, a.channel), (ContactActivity::Idle, None));
        assert_eq!(cfg.extract(&json!({"state": "dancing"})), None);
        assert_eq!(cfg.extract(&json!({})), None);
    }

    #[test]
    fn unknown_targets_are_reported_with_their_key() {
        let cfg: ActivityConfig = toml::from_str(
            "pointer = \"/s\"\nvalues = { busy = \"on_call\" }\nchannels = { sms = \"text\" }",
        )
        .unwrap();
        let mut errs = ConfigErrors::default();
        cfg.validate("connectors[0].inbound.activity", &mut errs);
        let paths: Vec<_> = errs.iter().map(|i| i.path.clone()).collect();
        assert_eq!(
            paths,
            [
                "connectors[0].inbound.activity.values.busy",
                "connectors[0].inbound.activity.channels.sms"
            ]
        );
    }
}
