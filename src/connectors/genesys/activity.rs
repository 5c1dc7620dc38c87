//! What a Genesys agent is doing, from three topics of the Notifications API: the presence
//! the agent selected (`v2.users.{id}.presence`), the ACD routing status
//! (`v2.users.{id}.routingStatus`: `OFF_QUEUE`, `IDLE`, `INTERACTING`, `NOT_RESPONDING`,
//! `COMMUNICATING`, model `UserRoutingStatusNotification`, platform-client-sdk-java
//! `build/docs/UserRoutingStatusNotification.md`) and the agent's conversations
//! (`v2.users.{id}.conversations`, model `ConversationEventTopicConversation`: participants
//! with `userId`, `purpose`, `queueId`, `address`, `wrapupRequired`, `wrapup`, `endAcwTime`
//! and per-medium communications `calls`, `callbacks`, `chats`, `messages`, `emails` whose
//! `state` is `alerting`, `offering`, `dialing`, `contacting`, `connected`, `disconnected`,
//! `terminated`; platform-client-sdk-java `build/docs/ConversationEventTopicParticipant.md`
//! and `ConversationEventTopicCall.md`).
//!
//! Each topic sends its own notifications, so one [`Tracker`] per channel keeps the last of
//! each per agent and reports an [`AgentEvent`] (status with activity) whenever the pair
//! changes, and [`ContactEvent`]s as an agent's leg of a conversation moves on.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::connectors::AgentEvent;
use crate::model::contact_center::{
    Activity, Channel, ContactActivity, ContactEvent, ContactEventKind,
};
use crate::model::{CcStatus, Source};

/// The activity a routing status means. INTERACTING (an ACD interaction) and COMMUNICATING
/// (a non-ACD one) are on a contact; the others are not.
pub fn routing_activity(status: &str) -> ContactActivity {
    match status.to_ascii_uppercase().as_str() {
        "INTERACTING" | "COMMUNICATING" => ContactActivity::OnContact,
        _ => ContactActivity::Idle,
    }
}

/// One agent's leg of one conversation.
#[derive(Debug, Default)]
struct Leg {
    activity: Option<ContactActivity>,
    channel: Option<Channel>,
    /// Steps already reported for this leg.
    sent: BTreeSet<ContactEventKind>,
    /// The call was recorded at some point.
    recorded: bool,
    /// Time of the last step reported: a later step is never dated before it (the model has
    /// no alerting time, so `offered` is dated on receipt, which may be after the platform's
    /// `connectedTime` of the next notification).
    last_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct AgentTrack {
    status: Option<CcStatus>,
    routing: Option<ContactActivity>,
    legs: BTreeMap<String, Leg>,
    /// A conversation notification came for the agent: with no leg open, they are idle.
    conversations_seen: bool,
    emitted: Option<(CcStatus, Option<Activity>)>,
}

impl AgentTrack {
    /// The conversations decide when there are any (they know the channel and wrap-up);
    /// otherwise the routing status does; with neither, an agent whose conversations were
    /// seen to end is idle (a `None` would keep the last activity reported).
    fn activity(&self) -> Option<Activity> {
        let rank = |a: ContactActivity| match a {
            ContactActivity::OnContact => 3,
            ContactActivity::Offered => 2,
            ContactActivity::AfterContactWork => 1,
            _ => 0,
        };
        let best = self
            .legs
            .values()
            .filter_map(|l| l.activity.map(|a| (rank(a), a, l.channel)))
            .filter(|(r, _, _)| *r > 0)
            .max_by_key(|(r, _, _)| *r);
        match best {
            Some((_, activity, channel)) => Some(Activity { activity, channel }),
            None => self
                .routing
                .or(self.conversations_seen.then_some(ContactActivity::Idle))
                .map(|activity| Activity {
                    activity,
                    channel: None,
                }),
        }
    }
}

/// Per-channel memory of the agents' last presence, routing status and conversations.
pub struct Tracker {
    agents: HashMap<String, AgentTrack>,
    /// Base of recording URLs (`{api}/api/v2/conversations/{id}/recordings`), when
    /// `recording_available` events are on.
    recordings: Option<url::Url>,
}

fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

const MEDIA: [(&str, Channel); 5] = [
    ("calls", Channel::Voice),
    ("callbacks", Channel::Voice),
    ("chats", Channel::Chat),
    ("messages", Channel::Chat),
    ("emails", Channel::Email),
];

impl Tracker {
    pub fn new(recordings: Option<url::Url>) -> Self {
        Self {
            agents: HashMap::new(),
            recordings,
        }
    }

    /// An event when the agent's (status, activity) differs from the last one reported.
    fn changed(&mut self, agent: &str, at: DateTime<Utc>, source: Source) -> Option<AgentEvent> {
        let t = self.agents.get_mut(agent)?;
        let status = t.status.clone()?;
        let now = (status.clone(), t.activity());
        if t.emitted.as_ref() == Some(&now) {
            return None;
        }
        t.emitted = Some(now.clone());
        Some(AgentEvent {
            agent_id: agent.to_owned(),
            status,
            at,
            event_id: None,
            source,
            activity: now.1,
        })
    }

    /// A bulk read after (re)connecting: the state to build on, reported as it is.
    pub fn seed(&mut self, e: &AgentEvent) {
        let t = self.agents.entry(e.agent_id.clone()).or_default();
        t.status = Some(e.status.clone());
        t.routing = e.activity.map(|a| a.activity);
        t.emitted = Some((e.status.clone(), t.activity()));
    }

    pub fn presence(
        &mut self,
        agent: &str,
        status: CcStatus,
        at: DateTime<Utc>,
    ) -> Option<AgentEvent> {
        self.agents.entry(agent.to_owned()).or_default().status = Some(status);
        self.changed(agent, at, Source::ConnectorPush)
    }

    /// A `v2.users.{id}.routingStatus` body: `{"routingStatus": {"status", "startTime"}}`.
    pub fn routing(&mut self, agent: &str, body: &Value) -> Option<AgentEvent> {
        let rs = body.get("routingStatus").unwrap_or(body);
        let status = rs.get("status")?.as_str()?;
        let at = time(rs.get("startTime")).unwrap_or_else(Utc::now);
        self.agents.entry(agent.to_owned()).or_default().routing = Some(routing_activity(status));
        self.changed(agent, at, Source::ConnectorPush)
    }

    /// A `v2.users.{id}.conversations` body: the agent's legs' activity, and the contact
    /// events of the steps not reported yet.
    pub fn conversation(
        &mut self,
        agent: &str,
        body: &Value,
    ) -> (Vec<ContactEvent>, Option<AgentEvent>) {
        let now = Utc::now();
        let Some(conv) = body.get("id").and_then(Value::as_str) else {
            return (Vec::new(), None);
        };
        let participants = body
            .get("participants")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        fn purpose(p: &Value) -> &str {
            p.get("purpose").and_then(Value::as_str).unwrap_or_default()
        }
        let customer = participants
            .iter()
            .find(|p| matches!(purpose(p), "customer" | "external"))
            .and_then(|p| p.get("address").and_then(Value::as_str))
            .map(str::to_owned);
        let acd_queue = participants
            .iter()
            .find(|p| purpose(p) == "acd")
            .and_then(|p| p.get("queueId").and_then(Value::as_str));
        let mut out = Vec::new();
        let track = self.agents.entry(agent.to_owned()).or_default();
        track.conversations_seen = true;
        // The agent's own legs (a transfer back gives a second one), latest last.
        for p in participants
            .iter()
            .filter(|p| p.get("userId").and_then(Value::as_str) == Some(agent))
        {
            let Some(pid) = p.get("id").and_then(Value::as_str) else {
                continue;
            };
            let Some((channel, comm)) = MEDIA
                .iter()
                .find_map(|(key, ch)| p.get(*key)?.as_array()?.last().map(|c| (*ch, c)))
            else {
                continue;
            };
            let state = comm
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let ended = matches!(state, "disconnected" | "terminated");
            let in_acw = ended
                && p.get("wrapupRequired").and_then(Value::as_bool) == Some(true)
                && p.get("wrapup").is_none_or(Value::is_null)
                && p.get("endAcwTime").is_none_or(Value::is_null);
            let activity = match state {
                "alerting" | "offering" => Some(ContactActivity::Offered),
                "dialing" | "contacting" | "connected" => Some(ContactActivity::OnContact),
                _ if in_acw => Some(ContactActivity::AfterContactWork),
                _ if ended => None,
                _ => continue,
            };
            let key = format!("{conv}/{pid}");
            let leg = track.legs.entry(key.clone()).or_default();
            leg.activity = activity;
            leg.channel = Some(channel);
            leg.recorded |= comm.get("recording").and_then(Value::as_bool) == Some(true);
            let mut steps = Vec::new();
            match state {
                "alerting" | "offering" => steps.push((ContactEventKind::Offered, now)),
                "dialing" | "contacting" | "connected" => steps.push((
                    ContactEventKind::Connected,
                    time(comm.get("connectedTime")).unwrap_or(now),
                )),
                _ => {
                    let at = time(comm.get("disconnectedTime")).unwrap_or(now);
                    steps.push((ContactEventKind::Ended, at));
                    if leg.recorded && self.recordings.is_some() {
                        steps.push((ContactEventKind::RecordingAvailable, at));
                    }
                }
            }
            for (kind, at) in steps {
                if !leg.sent.insert(kind) {
                    continue;
                }
                let at = leg.last_at.map_or(at, |last| at.max(last));
                leg.last_at = Some(at);
                let recording_url = (kind == ContactEventKind::RecordingAvailable)
                    .then_some(self.recordings.as_ref())
                    .flatten()
                    .and_then(|base| {
                        base.join(&format!("api/v2/conversations/{conv}/recordings"))
                            .ok()
                    })
                    .map(String::from);
                let mut attributes = serde_json::Map::new();
                for k in ["direction", "disconnectType"] {
                    if let Some(v) = comm.get(k) {
                        attributes.insert(k.to_owned(), v.clone());
                    }
                }
                if let Some(a) = p.get("attributes").and_then(Value::as_object) {
                    attributes.insert("participant".into(), Value::Object(a.clone()));
                }
                out.push(ContactEvent {
                    contact_id: conv.to_owned(),
                    kind,
                    at,
                    channel: Some(channel),
                    agent_id: matches!(
                        kind,
                        ContactEventKind::Offered | ContactEventKind::Connected
                    )
                    .then(|| agent.to_owned()),
                    queue: p
                        .get("queueId")
                        .and_then(Value::as_str)
                        .or(acd_queue)
                        .map(str::to_owned),
                    customer_endpoint: customer.clone(),
                    recording_url,
                    event_id: Some(format!("genesys:{conv}:{pid}:{}", kind.as_str())),
                    attributes,
                });
            }
            if ended && !in_acw {
                track.legs.remove(&key);
            }
        }
        let agent_event = self.changed(agent, now, Source::ConnectorPush);
        (out, agent_event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status() -> CcStatus {
        CcStatus {
            id: "on-queue".into(),
            name: "On Queue".into(),
        }
    }

    /// A conversation notification body as the SDK model documents it, with the agent's
    /// participant in `state` (a chat when `chat`).
    fn conv(state: &str, chat: bool, wrapup_required: bool) -> Value {
        let media = if chat { "chats" } else { "calls" };
        json!({
            "id": "c1",
            "participants": [
                {"id": "p-cust", "purpose": "customer", "address": "tel:+15550100"},
                {"id": "p-acd", "purpose": "acd", "queueId": "q1"},
                {"id": "p-agent", "purpose": "agent", "userId": "u1", "wrapupRequired": wrapup_required,
                 media: [{"state": state, "recording": true}]}
            ]
        })
    }

    #[test]
    fn routing_status_decides_until_conversations_tell_more() {
        let mut t = Tracker::new(None);
        assert!(t.presence("u1", status(), Utc::now()).is_some());
        let e = t
            .routing("u1", &json!({"routingStatus": {"status": "INTERACTING"}}))
            .unwrap();
        assert_eq!(e.activity.unwrap().activity, ContactActivity::OnContact);
        assert_eq!(e.activity.unwrap().channel, None);
        assert!(
            t.routing("u1", &json!({"routingStatus": {"status": "INTERACTING"}}))
                .is_none(),
            "no change, no event"
        );
        // A chat connected: same activity, now with its channel.
        let (events, e) = t.conversation("u1", &conv("connected", true, false));
        assert_eq!(e.unwrap().activity.unwrap().channel, Some(Channel::Chat));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, ContactEventKind::Connected);
        assert_eq!(events[0].queue.as_deref(), Some("q1"));
        assert_eq!(
            events[0].customer_endpoint.as_deref(),
            Some("tel:+15550100")
        );
    }

    #[test]
    fn a_recorded_call_with_wrap_up_goes_offered_connected_acw_ended_recording() {
        let base = url::Url::parse("https://api.mypurecloud.ie/").unwrap();
        let mut t = Tracker::new(Some(base));
        t.presence("u1", status(), Utc::now());
        let mut kinds = Vec::new();
        let mut activities = Vec::new();
        for (state, wrap) in [
            ("alerting", false),
            ("connected", false),
            ("connected", false),
            ("disconnected", true),
        ] {
            let (events, e) = t.conversation("u1", &conv(state, false, wrap));
            kinds.extend(events.iter().map(|e| e.kind));
            activities.push(e.and_then(|e| e.activity).map(|a| a.activity));
            if let Some(r) = events
                .iter()
                .find(|e| e.kind == ContactEventKind::RecordingAvailable)
            {
                assert_eq!(
                    r.recording_url.as_deref(),
                    Some("https://api.mypurecloud.ie/api/v2/conversations/c1/recordings")
                );
            }
        }
        use ContactEventKind::*;
        assert_eq!(kinds, [Offered, Connected, Ended, RecordingAvailable]);
        assert_eq!(
            activities,
            [
                Some(ContactActivity::Offered),
                Some(ContactActivity::OnContact),
                None,
                Some(ContactActivity::AfterContactWork)
            ]
        );
        // Wrap-up entered: the leg is over and, with no routing status known, the agent is
        // idle (not "unknown", which would keep after-contact work).
        let mut done = conv("disconnected", false, true);
        done["participants"][2]["wrapup"] = json!({"code": "ok"});
        let (events, e) = t.conversation("u1", &done);
        assert!(events.is_empty(), "steps are reported once");
        assert_eq!(e.unwrap().activity.unwrap().activity, ContactActivity::Idle);
    }
}
