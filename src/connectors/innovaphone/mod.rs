//! innovaphone PBX (`kind = "innovaphone"`): one AppWebsocket connection to the PBX, logged in
//! as a PBX App object with the documented challenge/response ([`login`]), then the PbxApi
//! (<https://sdk.innovaphone.com/doc/appwebsocket/PbxApi.htm>): `SubscribePresence` per agent
//! (by `sip` or `num`, the agent's id as the AppWebsocket `src`, which the PBX echoes on every
//! `PresenceState`/`PresenceUpdate` of that subscription), `PresenceUpdate` as the event
//! source (the first item of `presence` is the newest), and `SetPresence {sip, contact,
//! activity, note}` to write, checking `SetPresenceResult.error`.
//!
//! The connection ([`session`]) pings, reconnects with backoff, subscribes every agent again
//! after a reconnect, and the first `PresenceUpdate` of each subscription reconciles
//! (`Source::Reconcile`): the PbxApi has no bulk read, a subscription's first update is the
//! current state. The App object needs the PbxApi granted ("Grant access to APIs").
//!
//! Agents come from the configuration; their e-mail and display name are taken from the
//! PBX's `PresenceState` unless configured. Statuses are presence activities (`""` =
//! available); an activity listed in `on_the_phone_activities` (the PBX's line state, e.g.
//! `on-the-phone`) anywhere in the presence list is the `on_contact` activity on voice;
//! every presence item `closed` (no phone registered, no client) is `logged_out`.

pub mod config;
pub mod login;
mod session;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::retry::Resilience;
use super::{
    Activity, Agent, AgentStatus, CatalogStatus, Channel, ConnectorError, ConnectorEvent,
    ContactActivity, ContactCenter, StatusKind,
};
use crate::model::CcStatus;
use crate::model::contact_center::EventTimeBounds;
use crate::model::health::HealthState;
use config::InnovaphoneConfig;

/// The catalog id of the empty activity ("available").
pub const AVAILABLE: &str = "available";

/// One item of a `PresenceUpdate`'s `presence` array (PbxApi "presence" object).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PresenceItem {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub activity: String,
}

/// What the PBX told about one agent.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    pub sip: Option<String>,
    pub dn: Option<String>,
    pub email: Option<String>,
    pub current: Option<(CcStatus, Activity, DateTime<Utc>)>,
}

/// The catalog: the configured presence activities (it needs no PBX, so `check-config` checks
/// rules against it too).
pub fn static_catalog(cfg: &InnovaphoneConfig) -> Vec<CatalogStatus> {
    cfg.activities
        .iter()
        .map(|a| {
            let s = InnovaphoneConnector::status_of_activity(a);
            let kind = if a.is_empty() {
                StatusKind::Routable
            } else if cfg
                .on_the_phone_activities
                .iter()
                .any(|p| p.eq_ignore_ascii_case(a))
            {
                StatusKind::OnContact
            } else {
                StatusKind::NotRoutable
            };
            CatalogStatus {
                id: s.id,
                name: s.name,
                kind,
                settable: true,
            }
        })
        .collect()
}

pub struct InnovaphoneConnector {
    cfg: InnovaphoneConfig,
    resilience: Resilience,
    /// Frames to the current connection; `None` while disconnected.
    link: Mutex<Option<mpsc::UnboundedSender<String>>>,
    /// Requests waiting for their result, by `src`.
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    known: RwLock<HashMap<String, Known>>,
    seq: AtomicU64,
    shutdown: CancellationToken,
}

impl InnovaphoneConnector {
    /// `cfg` must have been validated (password resolved).
    pub fn new(cfg: InnovaphoneConfig) -> Self {
        Self {
            resilience: Resilience::new(&cfg.limits),
            link: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            known: RwLock::new(HashMap::new()),
            seq: AtomicU64::new(0),
            shutdown: CancellationToken::new(),
            cfg,
        }
    }

    /// Every request ends once `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.resilience.set_shutdown(token.clone());
        self.shutdown = token;
        self
    }

    /// The status of an activity: `""` is [`AVAILABLE`].
    pub fn status_of_activity(activity: &str) -> CcStatus {
        if activity.is_empty() {
            CcStatus {
                id: AVAILABLE.into(),
                name: "Available".into(),
            }
        } else {
            CcStatus {
                id: activity.to_owned(),
                name: activity.to_owned(),
            }
        }
    }

    /// Status and activity of a `presence` array (newest item first).
    fn normalise(&self, items: &[PresenceItem]) -> (CcStatus, Activity) {
        let newest = items.first().map(|i| i.activity.as_str()).unwrap_or("");
        let on_phone = items.iter().any(|i| {
            self.cfg
                .on_the_phone_activities
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&i.activity))
        });
        let activity = if on_phone {
            Activity {
                activity: ContactActivity::OnContact,
                channel: Some(Channel::Voice),
            }
        } else if !items.is_empty() && items.iter().all(|i| i.status == "closed") {
            Activity {
                activity: ContactActivity::LoggedOut,
                channel: None,
            }
        } else {
            Activity {
                activity: ContactActivity::Idle,
                channel: None,
            }
        };
        (Self::status_of_activity(newest), activity)
    }

    /// Sends a request on the current connection and waits for the message with its `src`.
    async fn request(&self, mut msg: Value) -> Result<Value, ConnectorError> {
        let src = format!("req-{}", self.seq.fetch_add(1, Ordering::Relaxed));
        msg["src"] = json!(src);
        let (tx, rx) = oneshot::channel();
        {
            let link = self.link.lock().expect("link lock");
            let Some(link) = link.as_ref() else {
                return Err(ConnectorError::Transport("not connected to the PBX".into()));
            };
            self.pending
                .lock()
                .expect("pending lock")
                .insert(src.clone(), tx);
            if link.send(msg.to_string()).is_err() {
                self.pending.lock().expect("pending lock").remove(&src);
                return Err(ConnectorError::Transport("connection closed".into()));
            }
        }
        let timeout = Duration::from_secs(self.cfg.limits.request_timeout_secs);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ConnectorError::Transport(
                "connection closed before the answer".into(),
            )),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&src);
                Err(ConnectorError::Transport("no answer from the PBX".into()))
            }
        }
    }

    async fn set_presence(&self, msg: &Value) -> Result<(), ConnectorError> {
        let answer = self.request(msg.clone()).await?;
        let error = answer.get("error").and_then(Value::as_u64).unwrap_or(0);
        if answer.get("mt").and_then(Value::as_str) != Some("SetPresenceResult") || error != 0 {
            let text = answer
                .get("errorText")
                .and_then(Value::as_str)
                .unwrap_or("SetPresence failed");
            return Err(ConnectorError::Rejected {
                reason: format!("SetPresence error {error}: {text}"),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl ContactCenter for InnovaphoneConnector {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The configured agents with what the PBX says about them (`PresenceState`: SIP name,
    /// e-mail, display name), read on a connection of its own ([`session::snapshot`]).
    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        self.resilience
            .call("presence snapshot", || session::snapshot(self))
            .await?;
        let known = self.known.read().expect("known lock");
        Ok(self
            .cfg
            .agents
            .iter()
            .map(|a| {
                let k = known.get(a.id());
                Agent {
                    id: a.id().to_owned(),
                    email: a.email.clone().or_else(|| k.and_then(|k| k.email.clone())),
                    username: a.sip.clone().or_else(|| k.and_then(|k| k.sip.clone())),
                    display_name: a
                        .display_name
                        .clone()
                        .or_else(|| k.and_then(|k| k.dn.clone())),
                }
            })
            .collect())
    }

    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        Ok(static_catalog(&self.cfg))
    }

    /// Every agent's presence now: the first `PresenceUpdate` of a subscription is the PBX's
    /// current state (the PbxApi has no other read), taken on a connection of its own.
    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        self.resilience
            .call("presence snapshot", || session::snapshot(self))
            .await?;
        let known = self.known.read().expect("known lock");
        Ok(agent_ids
            .iter()
            .filter_map(|id| {
                let (status, activity, at) = known.get(id)?.current.clone()?;
                Some(AgentStatus {
                    agent_id: id.clone(),
                    status,
                    since: Some(at),
                    activity: Some(activity),
                })
            })
            .collect())
    }

    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        let agent = self.cfg.agents.iter().find(|a| a.id() == agent_id);
        let sip = agent.and_then(|a| a.sip.clone()).or_else(|| {
            self.known
                .read()
                .expect("known lock")
                .get(agent_id)
                .and_then(|k| k.sip.clone())
        });
        let Some(sip) = sip else {
            return Err(ConnectorError::NotFound(format!(
                "agent {agent_id:?} (no SIP name known)"
            )));
        };
        let activity = if status.id.eq_ignore_ascii_case(AVAILABLE) {
            ""
        } else {
            status.id.as_str()
        };
        let msg = json!({
            "api": "PbxApi",
            "mt": "SetPresence",
            "sip": sip,
            "contact": self.cfg.contact,
            "activity": activity,
            "note": self.cfg.note,
        });
        self.resilience
            .call("SetPresence", || self.set_presence(&msg))
            .await
    }

    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        session::run(self, events, cancel).await
    }

    async fn health(&self) -> (HealthState, String) {
        self.resilience.health.get()
    }

    fn event_time_bounds(&self) -> EventTimeBounds {
        self.cfg.event_time.bounds()
    }
}
