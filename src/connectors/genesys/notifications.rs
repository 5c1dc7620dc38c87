//! One Notifications API channel: create it, subscribe each agent's topics over REST
//! (`v2.users.{id}.presence`, and `.routingStatus` and `.conversations` when on), connect the
//! WebSocket, reconcile with bulk reads, then turn frames into events ([`Tracker`]). A silent socket (no heartbeat within `heartbeat_timeout_secs`), a closed socket,
//! a `404` result and `v2.system.socket_closing` all lead to a fresh channel; so does the
//! channel reaching `channel_max_age_secs` (channels live 24 h). The new channel is connected
//! and subscribed before the old socket is closed.

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::GenesysConnector;
use super::activity::Tracker;
use crate::connectors::{AgentEvent, ConnectorError, ConnectorEvent};
use crate::model::CcStatus;
use crate::model::contact_center::ContactEvent;
use crate::model::health::HealthState;

/// Sends a frame's contact events, then the agent event; false when the receiver is gone.
/// The contact's step goes first: it is what the agent's new activity is about.
async fn send(
    events: &mpsc::Sender<ConnectorEvent>,
    contacts: Vec<ContactEvent>,
    agent: Option<AgentEvent>,
) -> bool {
    for e in contacts
        .into_iter()
        .map(ConnectorEvent::from)
        .chain(agent.map(ConnectorEvent::from))
    {
        if events.send(e).await.is_err() {
            return false;
        }
    }
    true
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Deserialize)]
struct Channel {
    id: String,
    #[serde(rename = "connectUri")]
    connect_uri: String,
}

/// What one frame means.
enum Frame {
    Presence(String, CcStatus, chrono::DateTime<chrono::Utc>),
    Routing(String, Value),
    Conversation(String, Value),
    Heartbeat,
    Closing,
    Gone,
    Other,
}

fn parse_frame(c: &GenesysConnector, text: &str) -> Frame {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return Frame::Other;
    };
    if v.get("result").and_then(Value::as_str) == Some("404") {
        return Frame::Gone;
    }
    let topic = v
        .get("topicName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if topic == "channel.metadata" {
        return Frame::Heartbeat;
    }
    if topic == "v2.system.socket_closing" {
        return Frame::Closing;
    }
    let Some((agent, kind)) = topic
        .strip_prefix("v2.users.")
        .and_then(|t| t.rsplit_once('.'))
    else {
        return Frame::Other;
    };
    let Some(body) = v.get("eventBody") else {
        return Frame::Other;
    };
    match kind {
        "presence" => match c.presence_of(body) {
            Some((status, at)) => Frame::Presence(
                agent.to_owned(),
                status,
                at.unwrap_or_else(chrono::Utc::now),
            ),
            None => Frame::Other,
        },
        "routingStatus" => Frame::Routing(agent.to_owned(), body.clone()),
        "conversations" => Frame::Conversation(agent.to_owned(), body.clone()),
        _ => Frame::Other,
    }
}

async fn open(c: &GenesysConnector, agents: &[String]) -> Result<Socket, ConnectorError> {
    let timeout = Duration::from_secs(c.cfg.limits.request_timeout_secs);
    let url = c.url("api/v2/notifications/channels");
    let ch: Channel = c
        .rest
        .send("create channel", None, |h| {
            h.post(url.clone()).timeout(timeout)
        })
        .await?
        .json()?;
    let topics: Vec<Value> = agents
        .iter()
        .flat_map(|id| c.cfg.topics_of(id))
        .map(|t| json!({ "id": t }))
        .collect();
    let sub = c.url(&format!(
        "api/v2/notifications/channels/{}/subscriptions",
        ch.id
    ));
    c.rest
        .send("subscribe", None, |h| {
            h.put(sub.clone()).json(&topics).timeout(timeout)
        })
        .await?;
    let (ws, _) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async(ch.connect_uri.as_str()),
    )
    .await
    .map_err(|_| ConnectorError::Transport("notification socket connect timed out".into()))?
    .map_err(|e| ConnectorError::Transport(format!("notification socket: {e}")))?;
    tracing::debug!(channel = %ch.id, topics = topics.len(), "notification channel connected");
    Ok(ws)
}

/// Runs one channel for `agents` until cancelled.
pub(super) async fn run_channel(
    c: &GenesysConnector,
    agents: &[String],
    events: &mpsc::Sender<ConnectorEvent>,
    cancel: &CancellationToken,
) -> Result<(), ConnectorError> {
    let heartbeat = Duration::from_secs(c.cfg.heartbeat_timeout_secs);
    let max_age = Duration::from_secs(c.cfg.channel_max_age_secs);
    let mut previous: Option<Socket> = None;
    let recordings =
        (c.cfg.subscribe_conversations && c.cfg.recording_events).then(|| c.api.clone());
    let mut tracker = Tracker::new(recordings);
    loop {
        let opened = open(c, agents).await;
        if let Some(mut old) = previous.take() {
            let _ = old.close(None).await;
        }
        let mut ws = opened?;
        c.rest
            .resilience
            .health
            .set(HealthState::Up, "notifications connected");
        for e in c.reconcile(agents).await? {
            tracker.seed(&e);
            if events.send(e.into()).await.is_err() {
                return Ok(());
            }
        }
        let rollover_at = Instant::now() + max_age;
        let reason = loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    let _ = ws.close(None).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(rollover_at) => break "channel age",
                msg = tokio::time::timeout(heartbeat, ws.next()) => match msg {
                    Err(_) => break "no heartbeat",
                    Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break "socket closed",
                    Ok(Some(Ok(Message::Text(t)))) => match parse_frame(c, t.as_str()) {
                        Frame::Presence(agent, status, at) => {
                            let out = tracker.presence(&agent, status, at);
                            if !send(events, Vec::new(), out).await {
                                return Ok(());
                            }
                        }
                        Frame::Routing(agent, body) => {
                            let out = tracker.routing(&agent, &body);
                            if !send(events, Vec::new(), out).await {
                                return Ok(());
                            }
                        }
                        Frame::Conversation(agent, body) => {
                            let (contacts, out) = tracker.conversation(&agent, &body);
                            if !send(events, contacts, out).await {
                                return Ok(());
                            }
                        }
                        Frame::Closing => break "socket_closing",
                        Frame::Gone => break "channel gone",
                        Frame::Heartbeat | Frame::Other => {}
                    },
                    Ok(Some(Ok(_))) => {}
                },
            }
        };
        tracing::info!(connector = %c.cfg.name, reason, "opening a new notification channel");
        if reason == "channel age" || reason == "socket_closing" {
            previous = Some(ws);
        }
    }
}
