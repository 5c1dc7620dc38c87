//! What an Amazon Connect agent is doing, from the states of their contacts, and the agent
//! event stream's records turned into agent and contact events. Pure: no I/O.
//!
//! Contact states (the same names in GetCurrentUserData's `AgentContactState` and in the
//! agent event stream's `Contacts[].State`), per
//! <https://docs.aws.amazon.com/connect/latest/adminguide/about-contact-states.html> and
//! <https://docs.aws.amazon.com/connect/latest/APIReference/API_AgentContactReference.html>:
//! `INCOMING`/`PENDING` (queued callbacks) and `CONNECTING` (ringing) are offers;
//! `CONNECTED` and `CONNECTED_ONHOLD` are conversations; `ENDED` means "the conversation has
//! ended, and the agent has started doing ACW for that contact"; `MISSED`, `REJECTED` and
//! `ERROR` end the agent's part without a conversation. `PAUSED` (tasks only) occupies nobody.
//!
//! The agent event record (`AgentARN`, `EventId`, `EventTimestamp`, `EventType` =
//! `LOGIN | LOGOUT | STATE_CHANGE | HEART_BEAT`, `CurrentAgentSnapshot`,
//! `PreviousAgentSnapshot` with `AgentStatus {ARN, Name, StartTimestamp}` and `Contacts`):
//! <https://docs.aws.amazon.com/connect/latest/adminguide/agent-event-stream-model.html>.
//! `STATE_CHANGE` also fires for configuration changes (routing profile, queues, …), so the
//! two snapshots are compared and only a change of status or activity makes an agent event.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::model::contact_center::{
    Activity, AgentEvent, Channel, ContactActivity, ContactEvent, ContactEventKind,
};
use crate::model::{CcStatus, Source};

/// The activity a contact in `state` gives its agent, if any.
pub fn activity_of_state(state: &str) -> Option<ContactActivity> {
    match state {
        "INCOMING" | "PENDING" | "CONNECTING" => Some(ContactActivity::Offered),
        "CONNECTED" | "CONNECTED_ONHOLD" => Some(ContactActivity::OnContact),
        "ENDED" => Some(ContactActivity::AfterContactWork),
        _ => None,
    }
}

/// `VOICE | CHAT | TASK | EMAIL`.
pub fn channel_of(name: &str) -> Option<Channel> {
    match name {
        "VOICE" => Some(Channel::Voice),
        "CHAT" => Some(Channel::Chat),
        "TASK" => Some(Channel::Task),
        "EMAIL" => Some(Channel::Email),
        _ => None,
    }
}

/// How much an activity says about the agent: on a contact beats an offer, which beats
/// after-contact work (an agent may handle several chats at once).
fn weight(a: ContactActivity) -> u8 {
    match a {
        ContactActivity::OnContact => 3,
        ContactActivity::Offered => 2,
        ContactActivity::AfterContactWork => 1,
        ContactActivity::Idle | ContactActivity::LoggedOut => 0,
    }
}

/// The activity of an agent whose contacts are in these `(state, channel)`s and whose status
/// is `offline` (or who logged out): the most telling contact (voice first among equals),
/// else idle, or logged out when offline with no contact.
pub fn agent_activity<'a>(
    contacts: impl IntoIterator<Item = (Option<&'a str>, Option<&'a str>)>,
    offline: bool,
) -> Activity {
    let best = contacts
        .into_iter()
        .filter_map(|(state, channel)| {
            let activity = activity_of_state(state?)?;
            Some((activity, channel.and_then(channel_of)))
        })
        .max_by(|a, b| {
            weight(a.0)
                .cmp(&weight(b.0))
                // Channel order is voice, chat, email, task: the smaller wins a tie.
                .then_with(|| b.1.cmp(&a.1))
        });
    match best {
        Some((activity, channel)) => Activity { activity, channel },
        None if offline => Activity {
            activity: ContactActivity::LoggedOut,
            channel: None,
        },
        None => Activity {
            activity: ContactActivity::Idle,
            channel: None,
        },
    }
}

/// One agent event stream record (the fields used).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRecord {
    #[serde(rename = "AgentARN")]
    pub agent_arn: String,
    pub event_id: Option<String>,
    pub event_timestamp: Option<String>,
    pub event_type: String,
    pub current_agent_snapshot: Option<Snapshot>,
    pub previous_agent_snapshot: Option<Snapshot>,
}

/// `CurrentAgentSnapshot` / `PreviousAgentSnapshot`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    pub agent_status: Option<SnapshotStatus>,
    /// Kept as sent: they are the contact events' attributes.
    pub contacts: Option<Vec<Value>>,
}

/// `AgentSnapshot.AgentStatus`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotStatus {
    #[serde(rename = "ARN")]
    pub arn: Option<String>,
    pub name: Option<String>,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The agent (user) id in an agent ARN: its last path segment
/// (`arn:aws:connect:region:account:instance/{instance}/agent/{user-id}`).
pub fn agent_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A contact's step, for comparing two snapshots: offered < connected < ended.
fn phase(state: &str) -> Option<ContactEventKind> {
    match state {
        "INCOMING" | "PENDING" | "CONNECTING" => Some(ContactEventKind::Offered),
        "CONNECTED" | "CONNECTED_ONHOLD" | "PAUSED" => Some(ContactEventKind::Connected),
        "ENDED" | "MISSED" | "REJECTED" | "ERROR" => Some(ContactEventKind::Ended),
        _ => None,
    }
}

/// What one record means: an agent event when the status or activity changed, and the
/// contact events of the agent's contacts that moved on, in the record's order.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    pub agent: Option<AgentEvent>,
    pub contacts: Vec<ContactEvent>,
}

/// A status as the connector resolves it, and whether it is an offline status.
pub type Resolved = (CcStatus, bool);

/// Decodes one record. `resolve` turns an `AgentStatus` (ARN, name) into the catalog status.
pub fn decode(
    rec: &StreamRecord,
    resolve: impl Fn(Option<&str>, Option<&str>) -> Option<Resolved>,
) -> Decoded {
    let mut out = Decoded::default();
    if rec.event_type == "HEART_BEAT" {
        return out;
    }
    let Some(cur) = &rec.current_agent_snapshot else {
        return out;
    };
    let at = time(rec.event_timestamp.as_deref()).unwrap_or_else(Utc::now);
    let agent_id = agent_id_of(&rec.agent_arn).to_owned();
    let logout = rec.event_type == "LOGOUT";
    let state_of = |s: &Snapshot, logged_out: bool| {
        let st = s.agent_status.as_ref();
        let (status, offline) = resolve(
            st.and_then(|x| x.arn.as_deref()),
            st.and_then(|x| x.name.as_deref()),
        )?;
        let contacts = s.contacts.iter().flatten();
        let activity = agent_activity(
            contacts.map(|c| (text(c, "State"), text(c, "Channel"))),
            offline || logged_out,
        );
        Some((status, activity))
    };
    let now = state_of(cur, logout);
    let before = rec
        .previous_agent_snapshot
        .as_ref()
        .and_then(|p| state_of(p, false));
    if let Some((status, activity)) = now
        && before.as_ref() != Some(&(status.clone(), activity))
    {
        out.agent = Some(AgentEvent {
            agent_id: agent_id.clone(),
            status,
            at,
            event_id: rec.event_id.clone(),
            source: Source::ConnectorPush,
            activity: Some(activity),
        });
    }

    let empty = Vec::new();
    let prev: Vec<&Value> = rec
        .previous_agent_snapshot
        .as_ref()
        .and_then(|p| p.contacts.as_ref())
        .unwrap_or(&empty)
        .iter()
        .collect();
    let prev_phase = |id: &str| {
        prev.iter()
            .find(|c| text(c, "ContactId") == Some(id))
            .and_then(|c| phase(text(c, "State")?))
    };
    let event = |c: &Value, id: &str, kind: ContactEventKind, at: DateTime<Utc>| ContactEvent {
        contact_id: id.to_owned(),
        kind,
        at,
        channel: text(c, "Channel").and_then(channel_of),
        agent_id: Some(agent_id.clone()),
        queue: c
            .get("Queue")
            .and_then(|q| text(q, "Name").or_else(|| text(q, "ARN")))
            .map(str::to_owned),
        customer_endpoint: None,
        recording_url: None,
        event_id: rec
            .event_id
            .as_ref()
            .map(|e| format!("{e}/{id}/{}", kind.as_str())),
        attributes: c.as_object().cloned().unwrap_or_default(),
    };
    for c in cur.contacts.iter().flatten() {
        let (Some(id), Some(kind)) = (text(c, "ContactId"), text(c, "State").and_then(phase))
        else {
            continue;
        };
        if prev_phase(id).is_none_or(|p| kind > p) {
            let at = time(text(c, "StateStartTimestamp")).unwrap_or(at);
            out.contacts.push(event(c, id, kind, at));
        }
    }
    // A contact gone from the snapshot without passing through an end state ended too.
    for c in &prev {
        let Some(id) = text(c, "ContactId") else {
            continue;
        };
        let gone = !cur
            .contacts
            .iter()
            .flatten()
            .any(|x| text(x, "ContactId") == Some(id));
        if gone && prev_phase(id).is_some_and(|p| p < ContactEventKind::Ended) {
            out.contacts.push(event(c, id, ContactEventKind::Ended, at));
        }
    }
    out
}

/// The `recording_available` events of one contact record (the contact-record stream, read
/// when `contact_records_stream_*` is set), one per recording or transcript whose `Status` is
/// `AVAILABLE` and that has a `Location` (the record's `Recording` object and its
/// `Recordings` list), per
/// <https://docs.aws.amazon.com/connect/latest/adminguide/ctr-data-model.html>. Connect
/// delivers contact records at least once and again when they change: the event id is made
/// of the contact id and the location, so a repeat is a duplicate. Other records (not JSON,
/// no contact id, no available recording) make nothing.
pub fn decode_contact_record(data: &[u8]) -> Vec<ContactEvent> {
    let Ok(rec) = serde_json::from_slice::<Value>(data) else {
        tracing::warn!("contact-record stream record skipped: not JSON");
        return Vec::new();
    };
    let Some(contact_id) = text(&rec, "ContactId") else {
        return Vec::new();
    };
    let at = time(text(&rec, "LastUpdateTimestamp"))
        .or_else(|| time(text(&rec, "DisconnectTimestamp")))
        .unwrap_or_else(Utc::now);
    let recordings = rec.get("Recording").into_iter().chain(
        rec.get("Recordings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for r in recordings {
        let (Some("AVAILABLE"), Some(location)) = (text(r, "Status"), text(r, "Location")) else {
            continue;
        };
        if seen.contains(&location) {
            continue;
        }
        seen.push(location);
        let mut attributes = r.as_object().cloned().unwrap_or_default();
        if let Some(a) = rec.get("Attributes").filter(|a| a.is_object()) {
            attributes.insert("Attributes".into(), a.clone());
        }
        out.push(ContactEvent {
            contact_id: contact_id.to_owned(),
            kind: ContactEventKind::RecordingAvailable,
            at,
            channel: text(&rec, "Channel").and_then(channel_of),
            agent_id: rec
                .get("Agent")
                .and_then(|a| text(a, "ARN"))
                .map(|arn| agent_id_of(arn).to_owned()),
            queue: rec
                .get("Queue")
                .and_then(|q| text(q, "Name").or_else(|| text(q, "ARN")))
                .map(str::to_owned),
            customer_endpoint: rec
                .get("CustomerEndpoint")
                .and_then(|c| text(c, "Address"))
                .map(str::to_owned),
            recording_url: Some(location.to_owned()),
            event_id: Some(format!("ctr/{contact_id}/recording_available/{location}")),
            attributes,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(arn: Option<&str>, name: Option<&str>) -> Option<Resolved> {
        let id = arn?.rsplit('/').next()?.to_owned();
        let offline = id == "st-offline";
        Some((
            CcStatus {
                id,
                name: name.unwrap_or_default().to_owned(),
            },
            offline,
        ))
    }

    fn snapshot(status: &str, contacts: Value) -> Value {
        json!({"AgentStatus": {"ARN": format!("arn:x/agent-state/{status}"), "Name": status},
               "Contacts": contacts})
    }

    fn record(kind: &str, prev: Option<Value>, cur: Value) -> StreamRecord {
        let mut v = json!({"AgentARN": "arn:aws:connect:eu-west-2:1:instance/i/agent/u1",
            "EventId": "e1", "EventTimestamp": "2026-01-01T10:00:00.000Z", "EventType": kind,
            "CurrentAgentSnapshot": cur, "Version": "2019-05-25"});
        if let Some(p) = prev {
            v["PreviousAgentSnapshot"] = p;
        }
        serde_json::from_value(v).unwrap()
    }

    fn contact(state: &str, channel: &str) -> Value {
        json!({"ContactId": "c1", "Channel": channel, "State": state,
               "StateStartTimestamp": "2026-01-01T09:59:59.000Z",
               "Queue": {"ARN": "arn:q/1", "Name": "Sales"}})
    }

    #[test]
    fn contact_records_make_recording_available_once_per_location() {
        let rec = json!({"ContactId": "c9", "Channel": "VOICE",
            "Agent": {"ARN": "arn:aws:connect:eu-west-2:1:instance/i/agent/u1"},
            "Queue": {"Name": "Sales"}, "CustomerEndpoint": {"Address": "+441234567890", "Type": "TELEPHONE_NUMBER"},
            "LastUpdateTimestamp": "2026-01-01T10:05:00Z", "Attributes": {"case": "42"},
            "Recording": {"Location": "bucket/c9.wav", "Status": "AVAILABLE", "Type": "AUDIO"},
            "Recordings": [{"Location": "bucket/c9.wav", "Status": "AVAILABLE"},
                           {"Location": "bucket/c9-deleted.wav", "Status": "DELETED"}]});
        let got = decode_contact_record(rec.to_string().as_bytes());
        assert_eq!(got.len(), 1);
        let e = &got[0];
        assert_eq!(e.kind, ContactEventKind::RecordingAvailable);
        assert_eq!(e.agent_id.as_deref(), Some("u1"));
        assert_eq!(e.customer_endpoint.as_deref(), Some("+441234567890"));
        assert_eq!(e.recording_url.as_deref(), Some("bucket/c9.wav"));
        assert_eq!(
            e.event_id.as_deref(),
            Some("ctr/c9/recording_available/bucket/c9.wav")
        );
        assert_eq!(e.attributes["Attributes"]["case"], "42");
        assert!(decode_contact_record(br#"{"ContactId": "c1", "Recording": null}"#).is_empty());
        assert!(decode_contact_record(b"junk").is_empty());
    }

    #[test]
    fn states_map_to_activities() {
        let a = |s: &[(&str, &str)], off| {
            agent_activity(s.iter().map(|(x, c)| (Some(*x), Some(*c))), off)
        };
        assert_eq!(a(&[], false).activity, ContactActivity::Idle);
        assert_eq!(a(&[], true).activity, ContactActivity::LoggedOut);
        assert_eq!(
            a(&[("CONNECTING", "VOICE")], false).activity,
            ContactActivity::Offered
        );
        assert_eq!(
            a(&[("CONNECTED_ONHOLD", "VOICE")], true),
            Activity {
                activity: ContactActivity::OnContact,
                channel: Some(Channel::Voice)
            }
        );
        assert_eq!(
            a(&[("ENDED", "CHAT")], false),
            Activity {
                activity: ContactActivity::AfterContactWork,
                channel: Some(Channel::Chat)
            }
        );
        assert_eq!(
            a(&[("MISSED", "VOICE")], false).activity,
            ContactActivity::Idle
        );
        // on a chat while a call rings: on the chat; two equal: voice first
        assert_eq!(
            a(&[("CONNECTING", "VOICE"), ("CONNECTED", "CHAT")], false).channel,
            Some(Channel::Chat)
        );
        assert_eq!(
            a(&[("CONNECTED", "TASK"), ("CONNECTED", "VOICE")], false).channel,
            Some(Channel::Voice)
        );
    }

    #[test]
    fn heartbeat_and_configuration_changes_make_no_event() {
        let s = snapshot("st-available", json!([]));
        assert_eq!(
            decode(&record("HEART_BEAT", Some(s.clone()), s.clone()), resolve),
            Decoded::default()
        );
        assert_eq!(
            decode(&record("STATE_CHANGE", Some(s.clone()), s), resolve),
            Decoded::default()
        );
        // a contact on hold after connected: same activity, no agent event, no contact event
        let d = decode(
            &record(
                "STATE_CHANGE",
                Some(snapshot(
                    "st-available",
                    json!([contact("CONNECTED", "VOICE")]),
                )),
                snapshot(
                    "st-available",
                    json!([contact("CONNECTED_ONHOLD", "VOICE")]),
                ),
            ),
            resolve,
        );
        assert_eq!(d, Decoded::default());
    }

    #[test]
    fn a_contact_lifecycle_makes_agent_and_contact_events() {
        let idle = snapshot("st-available", json!([]));
        let ringing = snapshot("st-available", json!([contact("CONNECTING", "VOICE")]));
        let talking = snapshot("st-available", json!([contact("CONNECTED", "VOICE")]));
        let acw = snapshot("st-available", json!([contact("ENDED", "VOICE")]));
        let steps = [
            (
                idle.clone(),
                ringing.clone(),
                ContactActivity::Offered,
                Some(ContactEventKind::Offered),
            ),
            (
                ringing,
                talking.clone(),
                ContactActivity::OnContact,
                Some(ContactEventKind::Connected),
            ),
            (
                talking,
                acw.clone(),
                ContactActivity::AfterContactWork,
                Some(ContactEventKind::Ended),
            ),
            (acw, idle, ContactActivity::Idle, None),
        ];
        for (prev, cur, activity, kind) in steps {
            let d = decode(&record("STATE_CHANGE", Some(prev), cur), resolve);
            let a = d.agent.expect("activity changed");
            assert_eq!(a.agent_id, "u1");
            assert_eq!(a.activity.unwrap().activity, activity);
            assert_eq!(a.event_id.as_deref(), Some("e1"));
            assert_eq!(
                d.contacts.iter().map(|c| c.kind).collect::<Vec<_>>(),
                Vec::from_iter(kind)
            );
            if let Some(c) = d.contacts.first() {
                assert_eq!(c.contact_id, "c1");
                assert_eq!(c.agent_id.as_deref(), Some("u1"));
                assert_eq!(c.channel, Some(Channel::Voice));
                assert_eq!(c.queue.as_deref(), Some("Sales"));
                assert_eq!(c.attributes["Queue"]["ARN"], "arn:q/1");
                assert_eq!(c.at.to_rfc3339(), "2026-01-01T09:59:59+00:00");
            }
        }
    }

    #[test]
    fn a_contact_that_vanishes_while_active_ended_and_logout_is_logged_out() {
        let d = decode(
            &record(
                "STATE_CHANGE",
                Some(snapshot(
                    "st-available",
                    json!([contact("CONNECTED", "CHAT")]),
                )),
                snapshot("st-available", json!([])),
            ),
            resolve,
        );
        assert_eq!(d.contacts.len(), 1);
        assert_eq!(d.contacts[0].kind, ContactEventKind::Ended);
        assert_eq!(d.contacts[0].event_id.as_deref(), Some("e1/c1/ended"));
        let d = decode(
            &record("LOGOUT", None, snapshot("st-available", json!([]))),
            resolve,
        );
        assert_eq!(
            d.agent.unwrap().activity.unwrap().activity,
            ContactActivity::LoggedOut
        );
        let d = decode(
            &record("LOGIN", None, snapshot("st-offline", json!([]))),
            resolve,
        );
        assert_eq!(d.agent.unwrap().status.id, "st-offline");
    }
}
