//! The generic HTTP connector (`kind = "http"`): for platforms without a dedicated connector.
//! Requests are minijinja templates; events come from a signed inbound webhook and/or a
//! polling request diffed against the last snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::poll::poll_loop;
use super::rest::{Auth, RestClient, RestResponse};
use super::retry::Resilience;
use super::{
    Agent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter, InboundError,
    InboundWebhook, StatusKind,
};
use crate::model::CcStatus;
use crate::model::contact_center::EventTimeBounds;
use crate::model::health::HealthState;
use crate::store::Store;
use config::{AuthConfig, HttpConnectorConfig, Paging, StatusIs};
use extract::{items, parse_timestamp, pointer_str};
use template::{RenderedRequest, SetStatusVars};

pub mod config;
pub mod contact;
pub mod extract;
pub mod inbound;
mod inbound_config;
pub mod template;
mod validate;

#[cfg(test)]
mod tests;

pub struct HttpConnector {
    cfg: HttpConnectorConfig,
    base_url: String,
    env: minijinja::Environment<'static>,
    rest: RestClient,
    /// Looks up the Teams user of an agent for the `teams_*` template variables.
    store: Option<Arc<dyn Store>>,
    /// Values captured from `set_status` responses, per agent.
    captures: Mutex<HashMap<String, BTreeMap<String, String>>>,
    catalog: RwLock<Vec<CatalogStatus>>,
}

impl HttpConnector {
    /// `cfg` must have been validated (secrets resolved).
    pub fn new(
        cfg: HttpConnectorConfig,
        http: reqwest::Client,
        store: Option<Arc<dyn Store>>,
    ) -> Result<Self, ConnectorError> {
        let missing = |what: &str| ConnectorError::Unauthorized(format!("{what} missing"));
        let auth = match &cfg.auth {
            AuthConfig::None => Auth::None,
            AuthConfig::Header { name, value, .. } => Auth::Header(
                name.parse().map_err(|_| ConnectorError::Rejected {
                    reason: "bad header name".into(),
                })?,
                value.clone().ok_or_else(|| missing("header value"))?,
            ),
            AuthConfig::Basic {
                username, password, ..
            } => Auth::Basic(
                username.clone(),
                password.clone().ok_or_else(|| missing("password"))?,
            ),
            AuthConfig::Bearer { token, .. } => {
                Auth::Bearer(token.clone().ok_or_else(|| missing("token"))?)
            }
            AuthConfig::Oauth2(o) => Auth::OAuth2(Box::new(super::oauth::token_cache(
                http.clone(),
                o.clone(),
            )?)),
        };
        let catalog = cfg
            .statuses
            .iter()
            .map(|s| CatalogStatus {
                id: s.id.clone(),
                name: s.name.clone(),
                kind: s.kind,
                settable: s.settable,
            })
            .collect();
        Ok(Self {
            base_url: cfg
                .base_url
                .as_ref()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            env: template::environment(),
            rest: RestClient {
                http,
                auth,
                resilience: Resilience::new(&cfg.limits),
            },
            store,
            captures: Mutex::new(HashMap::new()),
            catalog: RwLock::new(catalog),
            cfg,
        })
    }

    /// Every request ends (unsent or aborted) once `token` is cancelled.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        self.rest.resilience.set_shutdown(token);
        self
    }

    /// The `set_status` request for an agent and status, as it would be sent, with the auth
    /// header's secret shown as `[redacted]` (for `presence-bridge connectors render`).
    pub async fn render_set_status(
        &self,
        agent_id: &str,
        status: &CcStatus,
    ) -> Result<RenderedRequest, ConnectorError> {
        let mut r = self.render_set(agent_id, status).await?;
        if let Some(h) = self.rest.auth.redacted_header() {
            r.headers.push(h);
        }
        Ok(r)
    }

    async fn render_set(
        &self,
        agent_id: &str,
        status: &CcStatus,
    ) -> Result<RenderedRequest, ConnectorError> {
        let tpl = self
            .cfg
            .set_status
            .as_ref()
            .ok_or_else(|| ConnectorError::Rejected {
                reason: format!("connector {} has no set_status request", self.cfg.name),
            })?;
        let user = match &self.store {
            Some(s) => s.user_by_agent(&self.cfg.name, agent_id).await.ok(),
            None => None,
        };
        let captures = self
            .captures
            .lock()
            .expect("captures lock")
            .get(agent_id)
            .cloned()
            .unwrap_or_default();
        let ctx = SetStatusVars {
            base_url: &self.base_url,
            agent_id,
            status_id: &status.id,
            status_name: &status.name,
            teams_user_id: user.as_ref().map_or("", |u| u.teams_id.as_str()),
            teams_upn: user.as_ref().map_or("", |u| u.upn.as_str()),
            captures: &captures,
        }
        .context();
        template::render_request(&self.env, tpl, &ctx).map_err(|e| ConnectorError::Rejected {
            reason: format!("set_status.{}: {}", e.field, e.message),
        })
    }

    async fn send(
        &self,
        what: &str,
        r: &RenderedRequest,
        accepted: &[u16],
    ) -> Result<RestResponse, ConnectorError> {
        self.rest
            .send(what, Some(accepted), |http| {
                let mut rb = http
                    .request(r.method.clone(), r.url.clone())
                    .timeout(Duration::from_secs(self.cfg.limits.request_timeout_secs));
                for (k, v) in &r.headers {
                    rb = rb.header(k, v);
                }
                if let Some(ct) = &r.content_type {
                    rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
                }
                if let Some(b) = &r.body {
                    rb = rb.body(b.clone());
                }
                rb
            })
            .await
    }

    /// Every item of every page.
    async fn fetch_pages<T>(
        &self,
        what: &str,
        p: Paging<'_>,
        mut read: impl FnMut(&serde_json::Value) -> Option<T> + Send,
    ) -> Result<Vec<T>, ConnectorError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        for page in 0..p.max_pages {
            let ctx = template::paged_context(&self.base_url, &cursor, page);
            let r = template::render_request(&self.env, p.request, &ctx).map_err(|e| {
                ConnectorError::Rejected {
                    reason: format!("{what}.{}: {}", e.field, e.message),
                }
            })?;
            let resp = self
                .send(what, &r, &p.request.accepted_status_codes)
                .await?;
            let doc: serde_json::Value = resp.json()?;
            let list = items(&doc, p.items_pointer).ok_or_else(|| {
                ConnectorError::Decode(format!("{what}: no array at {:?}", p.items_pointer))
            })?;
            // Read as each page arrives: a page's JSON is dropped before the next is fetched
            // (holding every page's rows took ~500 bytes per agent at 100,000 agents).
            out.extend(list.iter().filter_map(&mut read));
            match p.next_pointer.and_then(|np| pointer_str(&doc, np)) {
                Some(next) if next != cursor => cursor = next,
                _ => return Ok(out),
            }
        }
        Err(ConnectorError::Decode(format!(
            "{what}: more than {} pages",
            p.max_pages
        )))
    }

    /// Maps a platform status value to the catalog (unknown values keep the raw value).
    fn resolve(&self, value: &str, is: StatusIs) -> CcStatus {
        let catalog = self.catalog.read().expect("catalog lock");
        catalog
            .iter()
            .find(|c| match is {
                StatusIs::Id => c.id == value,
                StatusIs::Name => c.name == value,
            })
            .map(CatalogStatus::as_status)
            .unwrap_or_else(|| CcStatus {
                id: value.to_owned(),
                name: value.to_owned(),
            })
    }

    /// One full poll: every agent's status.
    async fn poll_all(&self) -> Result<Vec<AgentStatus>, ConnectorError> {
        let p = self
            .cfg
            .poll
            .as_ref()
            .ok_or_else(|| ConnectorError::Rejected {
                reason: format!(
                    "connector {} has no poll request; bulk reads are unavailable",
                    self.cfg.name
                ),
            })?;
        self.fetch_pages("poll", p.paging(), |row| {
            Some(AgentStatus {
                agent_id: pointer_str(row, &p.agent_id_pointer)?,
                status: self.resolve(&pointer_str(row, &p.status_pointer)?, p.status_is),
                since: p
                    .timestamp_pointer
                    .as_ref()
                    .and_then(|tp| row.pointer(tp))
                    .and_then(parse_timestamp),
                activity: p.activity.as_ref().and_then(|a| a.extract(row)),
            })
        })
        .await
    }
}

#[async_trait]
impl ContactCenter for HttpConnector {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        let Some(l) = &self.cfg.list_agents else {
            return Ok(self
                .cfg
                .agents
                .iter()
                .map(|a| Agent {
                    id: a.id.clone(),
                    email: a.email.clone(),
                    username: a.username.clone(),
                    display_name: a.display_name.clone(),
                })
                .collect());
        };
        let field = |row: &serde_json::Value, p: &Option<String>| {
            p.as_ref().and_then(|p| pointer_str(row, p))
        };
        self.fetch_pages("list_agents", l.paging(), |row| {
            Some(Agent {
                id: pointer_str(row, &l.id_pointer)?,
                email: field(row, &l.email_pointer),
                username: field(row, &l.username_pointer),
                display_name: field(row, &l.display_name_pointer),
            })
        })
        .await
    }

    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        let Some(l) = &self.cfg.list_statuses else {
            return Ok(self.catalog.read().expect("catalog lock").clone());
        };
        let catalog: Vec<CatalogStatus> = self
            .fetch_pages("list_statuses", l.paging(), |row| {
                let kind = l
                    .kind_pointer
                    .as_ref()
                    .and_then(|p| pointer_str(row, p))
                    .and_then(|k| {
                        serde_json::from_value::<StatusKind>(serde_json::Value::String(
                            k.to_ascii_lowercase(),
                        ))
                        .ok()
                    })
                    .unwrap_or(l.default_kind);
                Some(CatalogStatus {
                    id: pointer_str(row, &l.id_pointer)?,
                    name: pointer_str(row, &l.name_pointer)?,
                    kind,
                    settable: kind != StatusKind::OnContact,
                })
            })
            .await?;
        *self.catalog.write().expect("catalog lock") = catalog.clone();
        Ok(catalog)
    }

    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        let mut all = self.poll_all().await?;
        // A set: `agent_ids.contains` per status made this O(agents²) (seconds at 100,000).
        let wanted: std::collections::HashSet<&str> =
            agent_ids.iter().map(String::as_str).collect();
        all.retain(|s| wanted.contains(s.agent_id.as_str()));
        Ok(all)
    }

    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        let r = self.render_set(agent_id, status).await?;
        let tpl = self.cfg.set_status.as_ref().expect("render_set checked it");
        let resp = self
            .send("set_status", &r, &tpl.accepted_status_codes)
            .await?;
        if !tpl.captures.is_empty() {
            let doc: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
            let mut caps = self.captures.lock().expect("captures lock");
            let entry = caps.entry(agent_id.to_owned()).or_default();
            for c in &tpl.captures {
                let v = match (&c.header, &c.json_pointer) {
                    (Some(h), _) => resp
                        .headers
                        .get(h)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    (_, Some(p)) => doc.as_ref().and_then(|d| pointer_str(d, p)),
                    _ => None,
                };
                if let Some(v) = v {
                    entry.insert(c.name.clone(), v);
                }
            }
        }
        Ok(())
    }

    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        match &self.cfg.poll {
            Some(p) if p.interval_secs > 0 => {
                poll_loop(Duration::from_secs(p.interval_secs), events, cancel, || {
                    self.poll_all()
                })
                .await
            }
            _ => {
                cancel.cancelled().await;
                Ok(())
            }
        }
    }

    async fn health(&self) -> (HealthState, String) {
        self.rest.resilience.health.get()
    }

    fn event_time_bounds(&self) -> EventTimeBounds {
        self.cfg.event_time.bounds()
    }

    fn webhook(&self) -> Option<&dyn InboundWebhook> {
        self.cfg
            .inbound
            .as_ref()
            .map(|_| self as &dyn InboundWebhook)
    }

    fn contact_webhook(&self) -> Option<&dyn InboundWebhook> {
        self.cfg
            .contact_events
            .as_ref()
            .map(|c| c as &dyn InboundWebhook)
    }
}

impl InboundWebhook for contact::ContactEventsConfig {
    fn parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ConnectorEvent>, InboundError> {
        let events = contact::ContactEventsConfig::parse(self, headers, body, now)?;
        Ok(events.into_iter().map(ConnectorEvent::from).collect())
    }
}

impl InboundWebhook for HttpConnector {
    fn parse(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Vec<ConnectorEvent>, InboundError> {
        let cfg = self
            .cfg
            .inbound
            .as_ref()
            .ok_or_else(|| InboundError::Malformed("no inbound webhook".into()))?;
        inbound::verify(&cfg.verify, headers, body, now)?;
        let events = inbound::extract(cfg, headers, body, now, |v| self.resolve(v, cfg.status_is))?;
        let bounds = self.cfg.event_time.bounds();
        for (i, e) in events.iter().enumerate() {
            bounds
                .check(e.at, e.source, now)
                .map_err(|why| InboundError::Malformed(format!("event {i}: {why}")))?;
        }
        Ok(events.into_iter().map(ConnectorEvent::from).collect())
    }
}
