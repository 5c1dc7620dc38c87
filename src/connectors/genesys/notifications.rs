//! One Notifications API channel: create it, subscribe `v2.users.{id}.presence` topics over
//! REST, connect the WebSocket, reconcile with bulk reads, then turn presence frames into
//! events. A silent socket (no heartbeat within `heartbeat_timeout_secs`), a closed socket,
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
use crate::connectors::{AgentEvent, ConnectorError, ConnectorEvent};
use crate::model::Source;
use crate::model::health::HealthState;

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
    Event(AgentEvent),
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
    let Some(agent) = topic
        .strip_prefix("v2.users.")
        .and_then(|t| t.strip_suffix(".presence"))
    else {
        return Frame::Other;
    };
    let Some((status, at)) = v.get("eventBody").and_then(|b| c.presence_of(b)) else {
        return Frame::Other;
    };
    Frame::Event(AgentEvent {
        agent_id: agent.to_owned(),
        status,
        at: at.unwrap_or_else(chrono::Utc::now),
        event_id: None,
        source: Source::ConnectorPush,
        activity: None,
    })
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
        .map(|id| json!({"id": format!("v2.users.{id}.presence")}))
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
    tracing::debug!(channel = %ch.id, topics = agents.len(), "notification channel connected");
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
                        Frame::Event(e) => {
                            if events.send(e.into()).await.is_err() {
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
