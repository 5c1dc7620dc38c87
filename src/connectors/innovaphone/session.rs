//! The AppWebsocket connection: connect, log in, subscribe every agent's presence, then read
//! until the connection is lost, pinging meanwhile; reconnect with backoff and do it all again.

use std::collections::HashSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{InnovaphoneConnector, PresenceItem, login};
use crate::connectors::{AgentEvent, ConnectorError, ConnectorEvent};
use crate::model::Source;
use crate::model::health::HealthState;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How a connection ended.
enum End {
    /// Cancelled, or the event receiver is gone.
    Stopped,
    /// Lost after having been logged in (the backoff starts over).
    Lost(String),
    /// Could not be established.
    Failed(ConnectorError),
}

/// Runs connections until cancelled. A refused login ends it with `Unauthorized` (readiness
/// shows the connector down; the connector job starts it again later).
pub(super) async fn run(
    c: &InnovaphoneConnector,
    events: mpsc::Sender<ConnectorEvent>,
    cancel: CancellationToken,
) -> Result<(), ConnectorError> {
    let mut attempt = 0u32;
    loop {
        let end = tokio::select! {
            _ = cancel.cancelled() => End::Stopped,
            _ = c.shutdown.cancelled() => End::Stopped,
            end = connection(c, &events, &cancel) => end,
        };
        *c.link.lock().expect("link lock") = None;
        c.pending.lock().expect("pending lock").clear();
        let why = match end {
            End::Stopped => return Ok(()),
            End::Failed(e @ ConnectorError::Unauthorized(_)) => {
                c.resilience
                    .health
                    .set(HealthState::Down, format!("AppWebsocket login: {e}"));
                return Err(e);
            }
            End::Failed(e) => e.to_string(),
            End::Lost(why) => {
                attempt = 0;
                why
            }
        };
        let delay = c.resilience.backoff(attempt);
        attempt = attempt.saturating_add(1);
        c.resilience.health.set(
            HealthState::Degraded,
            format!("AppWebsocket: {why}; reconnecting"),
        );
        tracing::info!(connector = %c.cfg.name, reason = %why, ?delay, "reconnecting to the PBX");
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = c.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

async fn next_text(ws: &mut Socket, timeout: Duration) -> Result<Value, ConnectorError> {
    loop {
        match tokio::time::timeout(timeout, ws.next()).await {
            Err(_) => return Err(ConnectorError::Transport("no answer from the PBX".into())),
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) => {
                return Err(ConnectorError::Transport("closed by the PBX".into()));
            }
            Ok(Some(Err(e))) => return Err(ConnectorError::Transport(e.to_string())),
            Ok(Some(Ok(Message::Text(t)))) => {
                return serde_json::from_str(t.as_str())
                    .map_err(|e| ConnectorError::Decode(format!("AppWebsocket message: {e}")));
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn send(ws: &mut Socket, v: &Value) -> Result<(), ConnectorError> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| ConnectorError::Transport(e.to_string()))
}

/// Connects and logs in (AppChallenge, AppLogin with the digest, AppLoginResult).
async fn open(c: &InnovaphoneConnector) -> Result<Socket, ConnectorError> {
    use secrecy::ExposeSecret;
    let timeout = Duration::from_secs(c.cfg.limits.request_timeout_secs);
    let (mut ws, _) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::connect_async(c.cfg.url.as_str()),
    )
    .await
    .map_err(|_| {
        ConnectorError::Transport(format!(
            "no answer from {} within {} s; check the PBX address (url) and the network",
            host_of(&c.cfg.url),
            timeout.as_secs()
        ))
    })?
    .map_err(|e| {
        ConnectorError::Transport(crate::net::transport::describe_at(
            Some(&host_of(&c.cfg.url)),
            &e,
        ))
    })?;
    send(&mut ws, &json!({"mt": "AppChallenge"})).await?;
    let challenge = loop {
        let m = next_text(&mut ws, timeout).await?;
        if m.get("mt").and_then(Value::as_str) == Some("AppChallengeResult") {
            break m
                .get("challenge")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
    };
    let password = c
        .cfg
        .password
        .as_ref()
        .map(|p| p.expose_secret().to_owned())
        .unwrap_or_default();
    send(
        &mut ws,
        &login::app_login(&c.cfg.app, &challenge, &password),
    )
    .await?;
    loop {
        let m = next_text(&mut ws, timeout).await?;
        if m.get("mt").and_then(Value::as_str) == Some("AppLoginResult") {
            if m.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(ws);
            }
            let _ = ws.close(None).await;
            return Err(ConnectorError::Unauthorized(format!(
                "AppLogin as {:?} refused (wrong App object name or password, or the object is not enabled)",
                c.cfg.app
            )));
        }
    }
}

/// Subscribes every agent's presence on a short connection of its own and waits for each
/// one's `PresenceState` and first `PresenceUpdate` (its current state), which are stored;
/// then closes. A user the PBX does not know answers `PresenceState` with `up: false` and is
/// skipped.
pub(super) async fn snapshot(c: &InnovaphoneConnector) -> Result<(), ConnectorError> {
    let mut ws = open(c).await?;
    subscribe_all(c, &mut ws).await?;
    let mut waiting: HashSet<String> = c.cfg.agents.iter().map(|a| a.id().to_owned()).collect();
    let timeout = Duration::from_secs(c.cfg.limits.request_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut fresh = waiting.clone();
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let v = match next_text(&mut ws, left).await {
            Ok(v) => v,
            Err(e) => {
                let _ = ws.close(None).await;
                return Err(e);
            }
        };
        let src = v
            .get("src")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mt = v.get("mt").and_then(Value::as_str).unwrap_or_default();
        let down = mt == "PresenceState" && v.get("up").and_then(Value::as_bool) == Some(false);
        if handle(c, &v, &mut fresh).is_some() || down {
            waiting.remove(&src);
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

/// `SubscribePresence` for every agent; `src` is the agent's id, echoed on its messages.
async fn subscribe_all(c: &InnovaphoneConnector, ws: &mut Socket) -> Result<(), ConnectorError> {
    for a in &c.cfg.agents {
        let mut m = json!({"api": "PbxApi", "mt": "SubscribePresence", "src": a.id()});
        match (&a.sip, &a.num) {
            (Some(sip), _) => m["sip"] = json!(sip),
            (None, Some(num)) => m["num"] = json!(num),
            (None, None) => continue,
        }
        send(ws, &m).await?;
    }
    Ok(())
}

/// One logged-in connection, until lost.
async fn connection(
    c: &InnovaphoneConnector,
    events: &mpsc::Sender<ConnectorEvent>,
    cancel: &CancellationToken,
) -> End {
    let mut ws = match open(c).await {
        Ok(ws) => ws,
        Err(e) => return End::Failed(e),
    };
    if let Err(e) = subscribe_all(c, &mut ws).await {
        return End::Failed(e);
    }
    c.resilience.health.set(
        HealthState::Up,
        "AppWebsocket logged in, presence subscribed",
    );
    let (tx, mut out) = mpsc::unbounded_channel::<String>();
    *c.link.lock().expect("link lock") = Some(tx);
    // Agents whose first update on this connection is still to come: it reconciles.
    let mut fresh: HashSet<String> = c.cfg.agents.iter().map(|a| a.id().to_owned()).collect();
    let idle = Duration::from_secs(c.cfg.idle_timeout_secs);
    let mut ping = tokio::time::interval(Duration::from_secs(c.cfg.ping_interval_secs));
    ping.tick().await;
    // Anything received (a pong included) moves the deadline; pings and sends do not.
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let _ = ws.close(None).await;
                return End::Stopped;
            }
            _ = ping.tick() => {
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return End::Lost("ping failed".into());
                }
            }
            Some(frame) = out.recv() => {
                if ws.send(Message::text(frame)).await.is_err() {
                    return End::Lost("send failed".into());
                }
            }
            _ = tokio::time::sleep_until(heard + idle) => {
                return End::Lost("nothing received within idle_timeout_secs".into());
            }
            msg = ws.next() => {
                heard = tokio::time::Instant::now();
                match msg {
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => {
                        return End::Lost("connection closed".into());
                    }
                    Some(Ok(Message::Text(t))) => {
                        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                        if let Some(e) = handle(c, &v, &mut fresh)
                            && events.send(e.into()).await.is_err()
                        {
                            return End::Stopped;
                        }
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }
}

/// Takes one message from the PBX; a presence change becomes an event.
fn handle(c: &InnovaphoneConnector, v: &Value, fresh: &mut HashSet<String>) -> Option<AgentEvent> {
    let mt = v.get("mt").and_then(Value::as_str).unwrap_or_default();
    let src = v.get("src").and_then(Value::as_str).unwrap_or_default();
    if let Some(waiter) = c.pending.lock().expect("pending lock").remove(src) {
        let _ = waiter.send(v.clone());
        return None;
    }
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match mt {
        "PresenceState" => {
            let mut known = c.known.write().expect("known lock");
            let k = known.entry(src.to_owned()).or_default();
            k.sip = text("sip").or(k.sip.take());
            k.dn = text("dn").or(k.dn.take());
            k.email = text("email").or(k.email.take());
            if v.get("up").and_then(Value::as_bool) == Some(false) {
                tracing::warn!(connector = %c.cfg.name, agent = src, "presence monitor down");
            }
            None
        }
        "PresenceUpdate" => {
            if !c.cfg.agents.iter().any(|a| a.id() == src) {
                return None;
            }
            let items: Vec<PresenceItem> = v
                .get("presence")
                .cloned()
                .and_then(|p| serde_json::from_value(p).ok())
                .unwrap_or_default();
            let (status, activity) = c.normalise(&items);
            let at = chrono::Utc::now();
            c.known
                .write()
                .expect("known lock")
                .entry(src.to_owned())
                .or_default()
                .current = Some((status.clone(), activity, at));
            let source = if fresh.remove(src) {
                Source::Reconcile
            } else {
                Source::ConnectorPush
            };
            Some(AgentEvent {
                agent_id: src.to_owned(),
                status,
                at,
                event_id: None,
                source,
                activity: Some(activity),
            })
        }
        _ => None,
    }
}

/// "host:port" of the PBX URL, for messages (the path is not shown).
fn host_of(url: &url::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => "the PBX".to_owned(),
    }
}
