//! Genesys Cloud (`kind = "genesys"`): OAuth client credentials at `login.{region}`, REST at
//! `api.{region}`, presence definitions as the catalog, bulk presence reads (≤ 50 ids per
//! call), `PATCH …/presences/purecloud` to set, and the Notifications API WebSocket for
//! events ([`notifications`]).

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::http::config::{ClientAuth, OAuth2Config};
use super::oauth::token_cache;
use super::rest::{Auth, RestClient, path_segment};
use super::retry::Resilience;
use super::{
    Agent, AgentEvent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter,
    StatusKind,
};
use crate::model::contact_center::{Activity, EventTimeBounds};
use crate::model::health::HealthState;
use crate::model::{CcStatus, Source};
use config::GenesysConfig;

mod activity;
pub mod config;
mod notifications;

/// Ids per bulk presence read (the documented limit).
pub const BULK_IDS: usize = 50;

pub struct GenesysConnector {
    cfg: GenesysConfig,
    api: url::Url,
    rest: RestClient,
    catalog: RwLock<HashMap<String, CatalogStatus>>,
    /// Agent ids of the last full listing; the event source subscribes these.
    agent_ids: RwLock<Vec<String>>,
    /// Fired when a listing differs from the previous one: the event source subscribes again.
    agents_changed: tokio::sync::Notify,
}

#[derive(Deserialize)]
struct Page<T> {
    entities: Vec<T>,
    #[serde(rename = "pageCount", default)]
    page_count: Option<u32>,
}

#[derive(Deserialize)]
struct User {
    id: String,
    name: Option<String>,
    email: Option<String>,
    username: Option<String>,
}

#[derive(Deserialize)]
struct Definition {
    id: String,
    #[serde(rename = "systemPresence")]
    system_presence: Option<String>,
    #[serde(rename = "languageLabels", default)]
    language_labels: HashMap<String, String>,
    name: Option<String>,
    #[serde(default)]
    deactivated: bool,
}

#[derive(Deserialize)]
struct SystemPresence {
    id: String,
    name: String,
}

/// What a system presence means for routing: only ON_QUEUE receives ACD interactions.
fn kind_of(system_presence: &str) -> StatusKind {
    match system_presence.to_ascii_uppercase().as_str() {
        "ON_QUEUE" => StatusKind::Routable,
        "OFFLINE" => StatusKind::Offline,
        _ => StatusKind::NotRoutable,
    }
}

impl GenesysConnector {
    /// `cfg` must have been validated (secret resolved).
    pub fn new(cfg: GenesysConfig, http: reqwest::Client) -> Result<Self, ConnectorError> {
        let token_url =
            cfg.login_base()
                .join("oauth/token")
                .map_err(|e| ConnectorError::Rejected {
                    reason: e.to_string(),
                })?;
        let tokens = token_cache(
            http.clone(),
            OAuth2Config {
                token_url,
                client_id: cfg.client_id.clone(),
                client_secret: cfg.client_secret.clone(),
                client_secret_file: None,
                scope: None,
                resource: None,
                client_auth: ClientAuth::Basic,
                expiry_skew_secs: 300,
            },
        )?;
        Ok(Self {
            api: cfg.api_base(),
            rest: RestClient {
                http,
                auth: Auth::OAuth2(Box::new(tokens)),
                resilience: Resilience::new(&cfg.limits),
            },
            catalog: RwLock::new(HashMap::new()),
            agent_ids: RwLock::new(Vec::new()),
            agents_changed: tokio::sync::Notify::new(),
            cfg,
        })
    }

    /// Every request ends (unsent or aborted) once `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.rest.resilience.set_shutdown(token);
        self
    }

    fn url(&self, path: &str) -> url::Url {
        self.api.join(path).expect("static API paths join")
    }

    async fn get(&self, what: &str, url: url::Url) -> Result<Value, ConnectorError> {
        let timeout = Duration::from_secs(self.cfg.limits.request_timeout_secs);
        self.rest
            .send(what, None, |h| h.get(url.clone()).timeout(timeout))
            .await?
            .json()
    }

    fn resolve(&self, definition_id: &str, system_presence: Option<&str>) -> CcStatus {
        match self
            .catalog
            .read()
            .expect("catalog lock")
            .get(definition_id)
        {
            Some(c) => c.as_status(),
            None => CcStatus {
                id: definition_id.to_owned(),
                name: system_presence.unwrap_or(definition_id).to_owned(),
            },
        }
    }

    /// A presence object (`{presenceDefinition:{id, systemPresence}, modifiedDate}`) as a status.
    fn presence_of(&self, v: &Value) -> Option<(CcStatus, Option<DateTime<Utc>>)> {
        let def = v.get("presenceDefinition")?;
        let id = def.get("id")?.as_str()?;
        let status = self.resolve(id, def.get("systemPresence").and_then(Value::as_str));
        let at = v
            .get("modifiedDate")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc));
        Some((status, at))
    }

    /// The routing status of up to [`BULK_IDS`] users, by id:
    /// `GET /api/v2/users?id=…&expand=routingStatus` (reference §2.3: the user listing with
    /// `expand=presence,routingStatus` carries `routingStatus.status`).
    async fn routing_statuses(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, ConnectorError> {
        #[derive(Deserialize)]
        struct Routing {
            status: String,
        }
        #[derive(Deserialize)]
        struct WithRouting {
            id: String,
            #[serde(rename = "routingStatus")]
            routing_status: Option<Routing>,
        }
        let mut url = self.url("api/v2/users");
        url.query_pairs_mut()
            .append_pair("id", &ids.join(","))
            .append_pair("expand", "routingStatus")
            .append_pair("pageSize", &ids.len().to_string())
            .append_pair("pageNumber", "1");
        let page: Page<WithRouting> =
            serde_json::from_value(self.get("routing status", url).await?)
                .map_err(|e| ConnectorError::Decode(format!("users with routing status: {e}")))?;
        Ok(page
            .entities
            .into_iter()
            .filter_map(|u| Some((u.id, u.routing_status?.status)))
            .collect())
    }

    /// Bulk reads for a reconnect: every given agent's presence as reconcile events.
    async fn reconcile(&self, agent_ids: &[String]) -> Result<Vec<AgentEvent>, ConnectorError> {
        let now = Utc::now();
        Ok(self
            .current_statuses(agent_ids)
            .await?
            .into_iter()
            .map(|s| AgentEvent {
                agent_id: s.agent_id,
                status: s.status,
                at: s.since.unwrap_or(now),
                event_id: None,
                source: Source::Reconcile,
                activity: s.activity,
            })
            .collect())
    }
}

#[async_trait]
impl ContactCenter for GenesysConnector {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let mut url = self.url("api/v2/users");
            url.query_pairs_mut()
                .append_pair("pageSize", &self.cfg.page_size.to_string())
                .append_pair("pageNumber", &page.to_string())
                .append_pair("state", "active");
            let p: Page<User> = serde_json::from_value(self.get("list users", url).await?)
                .map_err(|e| ConnectorError::Decode(format!("users page: {e}")))?;
            let n = p.entities.len();
            out.extend(p.entities.into_iter().map(|u| Agent {
                id: u.id,
                email: u.email,
                username: u.username,
                display_name: u.name,
            }));
            if n == 0 || p.page_count.is_none_or(|c| page >= c) {
                let ids: Vec<String> = out.iter().map(|a| a.id.clone()).collect();
                let mut known = self.agent_ids.write().expect("agents lock");
                if !known.is_empty() && *known != ids {
                    self.agents_changed.notify_one();
                }
                *known = ids;
                return Ok(out);
            }
            page += 1;
        }
    }

    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        let system: Vec<SystemPresence> = serde_json::from_value(
            self.get("system presences", self.url("api/v2/systempresences"))
                .await?,
        )
        .map_err(|e| ConnectorError::Decode(format!("system presences: {e}")))?;
        let system_names: HashMap<String, String> = system
            .into_iter()
            .map(|s| (s.id.to_ascii_uppercase(), s.name))
            .collect();
        let defs: Page<Definition> = serde_json::from_value(
            self.get(
                "presence definitions",
                self.url("api/v2/presence/definitions"),
            )
            .await?,
        )
        .map_err(|e| ConnectorError::Decode(format!("presence definitions: {e}")))?;
        let catalog: Vec<CatalogStatus> = defs
            .entities
            .into_iter()
            .filter(|d| !d.deactivated)
            .map(|d| {
                let sp = d
                    .system_presence
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let name = d
                    .language_labels
                    .get("en_US")
                    .cloned()
                    .or(d.name)
                    .or_else(|| system_names.get(&sp).cloned())
                    .unwrap_or_else(|| d.id.clone());
                CatalogStatus {
                    id: d.id,
                    name,
                    kind: kind_of(&sp),
                    settable: true,
                }
            })
            .collect();
        *self.catalog.write().expect("catalog lock") =
            catalog.iter().map(|c| (c.id.clone(), c.clone())).collect();
        Ok(catalog)
    }

    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        let mut out = Vec::with_capacity(agent_ids.len());
        for chunk in agent_ids.chunks(BULK_IDS) {
            let routing = if self.cfg.subscribe_routing_status {
                self.routing_statuses(chunk).await?
            } else {
                HashMap::new()
            };
            let mut url = self.url("api/v2/users/presences/purecloud/bulk");
            url.query_pairs_mut().append_pair("id", &chunk.join(","));
            let rows = self.get("bulk presence", url).await?;
            for row in rows.as_array().map(Vec::as_slice).unwrap_or_default() {
                let Some(agent_id) = row
                    .get("userId")
                    .or_else(|| row.get("id"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                if let Some((status, since)) = self.presence_of(row) {
                    out.push(AgentStatus {
                        agent_id: agent_id.to_owned(),
                        status,
                        since,
                        activity: routing.get(agent_id).map(|s| Activity {
                            activity: activity::routing_activity(s),
                            channel: None,
                        }),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        let segment = path_segment(agent_id).ok_or_else(|| ConnectorError::Rejected {
            reason: format!("agent id {agent_id:?} cannot be a URL path segment"),
        })?;
        let url = self.url(&format!("api/v2/users/{segment}/presences/purecloud"));
        let body = json!({"presenceDefinition": {"id": status.id}});
        let timeout = Duration::from_secs(self.cfg.limits.request_timeout_secs);
        self.rest
            .send("set presence", None, |h| {
                h.patch(url.clone()).json(&body).timeout(timeout)
            })
            .await?;
        Ok(())
    }

    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        if self.catalog.read().expect("catalog lock").is_empty() {
            self.status_catalog().await?;
        }
        // Channels subscribe the agents of the last listing; when a later listing (the
        // connector job refreshes it periodically) differs, every channel is opened again.
        loop {
            let mut agents = self.agent_ids.read().expect("agents lock").clone();
            if agents.is_empty() {
                agents = self
                    .list_agents()
                    .await?
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
            }
            let generation = cancel.child_token();
            let per_channel = (self.cfg.topics_per_channel / self.cfg.topics_per_agent()).max(1);
            let channels = agents
                .chunks(per_channel)
                .map(|chunk| notifications::run_channel(self, chunk, &events, &generation));
            tokio::select! {
                result = futures::future::try_join_all(channels) => {
                    if let Err(e) = &result {
                        self.rest.resilience.health.record("notifications", &Err::<(), _>(e.clone()));
                    }
                    return result.map(|_| ());
                }
                _ = self.agents_changed.notified() => {
                    generation.cancel();
                    tracing::info!(connector = %self.cfg.name, "agent list changed; subscribing again");
                }
            }
        }
    }

    async fn health(&self) -> (HealthState, String) {
        self.rest.resilience.health.get()
    }
    fn event_time_bounds(&self) -> EventTimeBounds {
        self.cfg.event_time.bounds()
    }
}
