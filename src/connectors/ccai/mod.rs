//! Google Contact Center AI Platform (`kind = "ccai"`, formerly UJET): HTTP Basic auth with
//! the tenant subdomain and an API token, the Manager API's agent listing as agents and
//! statuses, its "User status" group as the catalog, bulk writes with
//! `POST /apps/api/v1/agent_statuses`, and polling as the event source (the platform has no
//! push for agent status).
//!
//! Sources:
//! - Apps API (base URL, Basic auth, "10 request per second per customer"):
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/apps-api>
//! - Manager API (groups, Basic auth): <https://cloud.google.com/contact-center/ccai-platform/docs/manager-api>
//! - Agents (`GET /manager/api/v1/agents?page=&per=&id[]=`, `status{id,name}`,
//!   `status_updated_at`, `online`, `wrap_up`; default page size 100):
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/manager-api-agent>
//! - Agent status (`POST /apps/api/v1/agent_statuses` `{"status", "agent_ids", "team_ids"}`;
//!   the answer lists `{agent_id, …, previous_status, current_status}`; transitions to or
//!   from system statuses such as In-Call return an error):
//!   <https://cloud.google.com/contact-center/ccai-platform/docs/apps-api-agent-status>
//!
//! Not confirmed by the documentation, hence configurable: the catalog path
//! (`user_statuses_path`), which statuses are system statuses, and the HTTP status of the
//! refusal (any 4xx other than 401/403/404/408/429 is taken as a refusal).

pub mod config;
mod writes;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::rest::{Auth, RestClient};
use super::retry::Resilience;
use super::{
    Activity, Agent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactActivity,
    ContactCenter, StatusKind,
};
use crate::model::CcStatus;
use crate::model::contact_center::EventTimeBounds;
use crate::model::health::HealthState;
use config::CcaiConfig;

pub struct CcaiConnector {
    cfg: CcaiConfig,
    base: url::Url,
    rest: RestClient,
    writes: writes::Batcher,
}

/// An id the platform sends as a number or a string.
#[derive(Deserialize, Clone, Debug)]
#[serde(untagged)]
enum Id {
    Num(i64),
    Text(String),
}

impl Id {
    fn text(&self) -> String {
        match self {
            Id::Num(n) => n.to_string(),
            Id::Text(s) => s.clone(),
        }
    }
}

#[derive(Deserialize)]
struct StatusRef {
    id: Option<Id>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ApiAgent {
    id: Id,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    agent_number: Option<String>,
    status: Option<StatusRef>,
    status_updated_at: Option<String>,
    #[serde(default)]
    online: Option<bool>,
    #[serde(default)]
    wrap_up: Option<bool>,
}

#[derive(Deserialize)]
struct ApiStatus {
    id: Id,
    name: String,
}

/// A page of a listing: a bare array, or an object holding the array under a known key.
fn rows(v: Value, keys: &[&str]) -> Result<Vec<Value>, ConnectorError> {
    match v {
        Value::Array(a) => Ok(a),
        Value::Object(mut m) => keys
            .iter()
            .find_map(|k| m.remove(*k))
            .and_then(|v| match v {
                Value::Array(a) => Some(a),
                _ => None,
            })
            .ok_or_else(|| ConnectorError::Decode("expected a list".into())),
        _ => Err(ConnectorError::Decode("expected a list".into())),
    }
}

fn ci(list: &[String], name: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(name))
}

impl CcaiConnector {
    /// `cfg` must have been validated (token resolved).
    pub fn new(cfg: CcaiConfig, http: reqwest::Client) -> Result<Self, ConnectorError> {
        let token = cfg
            .api_token
            .clone()
            .ok_or_else(|| ConnectorError::Unauthorized("no API token configured".into()))?;
        Ok(Self {
            base: cfg.base(),
            rest: RestClient {
                http,
                auth: Auth::Basic(cfg.subdomain.clone(), token),
                resilience: Resilience::new(&cfg.limits),
            },
            writes: writes::Batcher::default(),
            cfg,
        })
    }

    /// Every request ends (unsent or aborted) once `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.rest.resilience.set_shutdown(token);
        self
    }

    fn url(&self, path: &str) -> url::Url {
        self.base.join(path).expect("relative API paths join")
    }

    async fn get(&self, what: &str, url: url::Url) -> Result<Value, ConnectorError> {
        let timeout = Duration::from_secs(self.cfg.limits.request_timeout_secs);
        self.rest
            .send(what, None, |h| h.get(url.clone()).timeout(timeout))
            .await?
            .json()
    }

    /// Every page of `GET manager/api/v1/agents`, with extra query pairs (`id[]` filters).
    async fn agents(&self, filter: &[(&str, String)]) -> Result<Vec<ApiAgent>, ConnectorError> {
        let per = self.cfg.page_size as usize;
        let mut out = Vec::new();
        for page in 1u32.. {
            let mut url = self.url("manager/api/v1/agents");
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("page", &page.to_string())
                    .append_pair("per", &per.to_string());
                for (k, v) in filter {
                    q.append_pair(k, v);
                }
            }
            let list = rows(self.get("list agents", url).await?, &["agents", "data"])?;
            let n = list.len();
            for row in list {
                out.push(
                    serde_json::from_value(row)
                        .map_err(|e| ConnectorError::Decode(format!("agent: {e}")))?,
                );
            }
            if n < per {
                break;
            }
        }
        Ok(out)
    }

    fn kind_of(&self, name: &str) -> StatusKind {
        if self
            .cfg
            .on_contact_statuses
            .keys()
            .any(|k| k.eq_ignore_ascii_case(name))
        {
            StatusKind::OnContact
        } else if ci(&self.cfg.routable_statuses, name) {
            StatusKind::Routable
        } else if ci(&self.cfg.offline_statuses, name) {
            StatusKind::Offline
        } else {
            StatusKind::NotRoutable
        }
    }

    /// What the agent is doing: `wrap_up` is after-contact work, an on-contact status is on a
    /// contact (with its channel), not `online` is logged out, anything else idle.
    fn activity_of(&self, a: &ApiAgent, status: &str) -> Activity {
        if a.wrap_up == Some(true) {
            return Activity {
                activity: ContactActivity::AfterContactWork,
                channel: None,
            };
        }
        if let Some((_, ch)) = self
            .cfg
            .on_contact_statuses
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(status))
        {
            return Activity {
                activity: ContactActivity::OnContact,
                channel: Some(*ch),
            };
        }
        let activity = if a.online == Some(false) {
            ContactActivity::LoggedOut
        } else {
            ContactActivity::Idle
        };
        Activity {
            activity,
            channel: None,
        }
    }

    fn status_of(&self, a: &ApiAgent) -> Option<AgentStatus> {
        let s = a.status.as_ref()?;
        let name = s.name.clone()?;
        let id = s.id.as_ref().map_or_else(|| name.clone(), Id::text);
        let since = a
            .status_updated_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        Some(AgentStatus {
            agent_id: a.id.text(),
            activity: Some(self.activity_of(a, &name)),
            status: CcStatus { id, name },
            since,
        })
    }

    async fn snapshot(&self) -> Result<Vec<AgentStatus>, ConnectorError> {
        Ok(self
            .agents(&[])
            .await?
            .iter()
            .filter_map(|a| self.status_of(a))
            .collect())
    }
}

#[async_trait]
impl ContactCenter for CcaiConnector {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        Ok(self
            .agents(&[])
            .await?
            .into_iter()
            .map(|a| {
                let display = match (&a.first_name, &a.last_name) {
                    (Some(f), Some(l)) => Some(format!("{f} {l}")),
                    (Some(n), None) | (None, Some(n)) => Some(n.clone()),
                    (None, None) => None,
                };
                Agent {
                    id: a.id.text(),
                    email: a.email,
                    username: a.agent_number,
                    display_name: display,
                }
            })
            .collect())
    }

    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        let list = rows(
            self.get("user statuses", self.url(&self.cfg.user_statuses_path))
                .await?,
            &["user_statuses", "statuses", "data"],
        )?;
        list.into_iter()
            .map(|row| {
                let s: ApiStatus = serde_json::from_value(row)
                    .map_err(|e| ConnectorError::Decode(format!("user status: {e}")))?;
                Ok(CatalogStatus {
                    id: s.id.text(),
                    kind: self.kind_of(&s.name),
                    settable: !ci(&self.cfg.system_statuses, &s.name),
                    name: s.name,
                })
            })
            .collect()
    }

    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        let mut out = Vec::with_capacity(agent_ids.len());
        for chunk in agent_ids.chunks(self.cfg.page_size as usize) {
            let filter: Vec<(&str, String)> = chunk.iter().map(|id| ("id[]", id.clone())).collect();
            out.extend(
                self.agents(&filter)
                    .await?
                    .iter()
                    .filter_map(|a| self.status_of(a)),
            );
        }
        Ok(out)
    }

    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        writes::set(self, agent_id, status).await
    }

    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        // Diffed per agent on status *and* activity: wrap-up can begin and end while the
        // status name stays the same.
        let interval = Duration::from_secs(self.cfg.poll_interval_secs);
        super::poll::poll_loop(interval, events, cancel, || self.snapshot()).await
    }

    async fn health(&self) -> (HealthState, String) {
        self.rest.resilience.health.get()
    }

    fn event_time_bounds(&self) -> EventTimeBounds {
        self.cfg.event_time.bounds()
    }
}
