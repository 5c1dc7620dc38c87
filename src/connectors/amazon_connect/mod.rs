//! Amazon Connect (`kind = "amazon_connect"`) through `aws-sdk-connect`: agents from
//! ListUsers + DescribeUser (email from `IdentityInfo`, cached per user id), the catalog from
//! ListAgentStatuses, current statuses from GetCurrentUserData in batches of 100 (also the
//! polling event source, diffed against the last snapshot), writes with PutUserStatus.
//!
//! **PutUserStatus during a contact sets the agent's *next* status**: Amazon Connect applies
//! it when the contact (and after-contact work) ends, so a "Busy (Teams)" written while the
//! agent is on a contact shows up only afterwards.
//!
//! Besides the status the agent (or a supervisor) selected, each agent's contact activity
//! (offered, on a contact, after-contact work, idle, logged out) comes from the states of
//! their contacts ([`contacts`]): GetCurrentUserData's `Contacts` when polling, the snapshots
//! of the agent event stream in Kinesis mode ([`kinesis`], `events = "kinesis"`), which also
//! yields contact events (offered, connected, ended) from the contact states it reports,
//! and `recording_available` from the contact-record stream when one is configured.
//!
//! The SDK's own retries are turned off: every call goes through the connector's shared
//! [`Resilience`] (rate limit, backoff, throttling), like the other connectors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_connect::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_connect::types::{AgentStatusType, UserDataFilters};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::retry::Resilience;
use super::{
    Agent, AgentStatus, CatalogStatus, ConnectorError, ConnectorEvent, ContactCenter, StatusKind,
};
use crate::model::CcStatus;
use crate::model::contact_center::EventTimeBounds;
use crate::model::health::HealthState;
use crate::net::retry_after;
use crate::store::Store;
use config::{AmazonConnectConfig, EventsMode};
use contacts::Resolved;
use kinesis::{KinesisSource, Progress};

pub mod config;
mod contacts;
mod kinesis;

/// Cursor keys of the contact-record stream start with this (the agent event stream's are
/// bare shard ids).
const CONTACT_RECORDS_PREFIX: &str = "ctr/";

/// Agents per GetCurrentUserData call (the API's filter limit).
pub const USERDATA_BATCH: usize = 100;
/// Page size of ListUsers and ListAgentStatuses (the API maximum).
const LIST_PAGE: i32 = 1000;

pub struct AmazonConnectConnector {
    cfg: AmazonConnectConfig,
    client: aws_sdk_connect::Client,
    resilience: Resilience,
    /// DescribeUser results by user id.
    described: Mutex<HashMap<String, Agent>>,
    /// Catalog by status ARN (GetCurrentUserData names statuses by ARN).
    by_arn: RwLock<HashMap<String, CatalogStatus>>,
    /// The agent event stream reader (`events = "kinesis"`).
    stream: Option<KinesisSource>,
    /// The contact-record stream reader, when configured.
    records: Option<KinesisSource>,
    /// Events the stream readers sent, and how many the runtime stored: a stream position is
    /// saved only once the events read before it are stored.
    progress: Arc<Progress>,
}

/// Maps an SDK error to what callers branch on.
fn map_err<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_connect::config::http::HttpResponse>,
) -> ConnectorError {
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = se.err().code().unwrap_or_default();
            let retry_after = se
                .raw()
                .headers()
                .get("retry-after")
                .and_then(retry_after::parse);
            match (code, status) {
                (
                    "ThrottlingException" | "TooManyRequestsException" | "LimitExceededException",
                    _,
                )
                | (_, 429) => ConnectorError::Throttled { retry_after },
                (
                    "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException",
                    _,
                )
                | (_, 401 | 403) => ConnectorError::Unauthorized(format!("{code} (HTTP {status})")),
                ("ResourceNotFoundException", _) | (_, 404) => {
                    ConnectorError::NotFound(code.to_owned())
                }
                (_, 500..=599) => ConnectorError::Transport(format!("{code} (HTTP {status})")),
                _ => ConnectorError::Rejected {
                    reason: format!("{code}: {}", se.err().message().unwrap_or_default()),
                },
            }
        }
        // One sentence from the chain of causes: the SDK's own `DisplayErrorContext` ends with
        // the error's debug structure, which is not for readiness or logs.
        SdkError::ConstructionFailure(_) => ConnectorError::Rejected {
            reason: crate::net::transport::causes(&e),
        },
        _ => {
            let causes = crate::net::transport::causes(&e);
            if causes.contains("credentials") {
                // The chain found none: not a network problem, and no retry will help.
                ConnectorError::Unauthorized(format!(
                    "no AWS credentials ({causes}); set access_key_id and secret_access_key, \
                     or give the daemon a role"
                ))
            } else {
                ConnectorError::Transport(crate::net::transport::describe(&e))
            }
        }
    }
}

fn to_chrono(t: &aws_sdk_connect::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// Asks the standard AWS credential chain once, at start, and says in one line whether it
/// found credentials (the chain's own per-provider warnings are kept below `error` by the
/// default log filter, see `telemetry::init_tracing`).
async fn say_which_credentials(shared: &aws_config::SdkConfig, connector: &str) {
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = shared.credentials_provider() else {
        tracing::warn!(connector, "no AWS credential provider is configured");
        return;
    };
    match provider.provide_credentials().await {
        Ok(c) => tracing::info!(
            connector,
            access_key_id = %c.access_key_id(),
            expires = ?c.expiry(),
            "AWS credentials found by the standard chain"
        ),
        Err(e) => tracing::warn!(
            connector,
            "no AWS credentials found: the standard chain (environment variables, profile, web \
             identity, container and instance role) gave none ({}); set access_key_id and \
             secret_access_key or give the daemon a role. Every call to Amazon Connect will \
             fail until then",
            crate::net::transport::describe(&e)
        ),
    }
}

impl AmazonConnectConnector {
    /// `cfg` must have been validated. Credentials: the static keys when given, else the
    /// standard AWS chain (environment, profile, web identity, container/instance role).
    /// `store` keeps the agent event stream's positions across restarts (Kinesis mode).
    pub async fn new(cfg: AmazonConnectConfig, store: Option<Arc<dyn Store>>) -> Self {
        let region = aws_config::Region::new(cfg.region.clone());
        let shared = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .region(region)
                .credentials_provider(aws_sdk_connect::config::SharedCredentialsProvider::new(
                    aws_sdk_connect::config::Credentials::new(
                        id.clone(),
                        secret.expose_secret().to_owned(),
                        None,
                        None,
                        "presence-bridge-config",
                    ),
                ))
                .build(),
            _ => {
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(region)
                    .load()
                    .await;
                say_which_credentials(&shared, &cfg.name).await;
                shared
            }
        };
        let timeout = aws_sdk_connect::config::timeout::TimeoutConfig::builder()
            .operation_attempt_timeout(Duration::from_secs(cfg.limits.request_timeout_secs))
            .build();
        let mut b = aws_sdk_connect::config::Builder::from(&shared)
            .retry_config(aws_sdk_connect::config::retry::RetryConfig::disabled())
            .timeout_config(timeout.clone());
        if let Some(u) = &cfg.endpoint_url {
            b = b.endpoint_url(u.as_str().trim_end_matches('/'));
        }
        let progress = Arc::new(Progress::default());
        let (stream, records) = match (&cfg.events, &cfg.kinesis) {
            (EventsMode::Kinesis, Some(k)) => {
                let mut kb = aws_sdk_kinesis::config::Builder::from(&shared)
                    .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
                    .timeout_config(timeout);
                if let Some(u) = &k.endpoint_url {
                    kb = kb.endpoint_url(u.as_str().trim_end_matches('/'));
                }
                let client = aws_sdk_kinesis::Client::from_conf(kb.build());
                // Its own request budget: stream reads must not starve Connect calls.
                let agent = KinesisSource::new(
                    client.clone(),
                    k.clone(),
                    (k.stream_name.clone(), k.stream_arn.clone()),
                    "",
                    Resilience::new(&cfg.limits),
                    store.clone(),
                    cfg.name.clone(),
                    progress.clone(),
                );
                let ctr = (k.contact_records_stream_name.is_some()
                    || k.contact_records_stream_arn.is_some())
                .then(|| {
                    KinesisSource::new(
                        client,
                        k.clone(),
                        (
                            k.contact_records_stream_name.clone(),
                            k.contact_records_stream_arn.clone(),
                        ),
                        CONTACT_RECORDS_PREFIX,
                        Resilience::new(&cfg.limits),
                        store,
                        cfg.name.clone(),
                        progress.clone(),
                    )
                    .after(&agent)
                });
                (Some(agent), ctr)
            }
            _ => (None, None),
        };
        Self {
            client: aws_sdk_connect::Client::from_conf(b.build()),
            resilience: Resilience::new(&cfg.limits),
            described: Mutex::new(HashMap::new()),
            by_arn: RwLock::new(HashMap::new()),
            stream,
            records,
            progress,
            cfg,
        }
    }

    /// Every request ends (unsent or aborted) once `token` is cancelled; so does the
    /// credential chain a request is waiting for.
    pub fn with_shutdown(mut self, token: CancellationToken) -> Self {
        for k in [&mut self.stream, &mut self.records].into_iter().flatten() {
            k.set_shutdown(token.clone());
        }
        self.resilience.set_shutdown(token);
        self
    }

    async fn describe(
        &self,
        user_id: &str,
        username: Option<&str>,
    ) -> Result<Agent, ConnectorError> {
        if let Some(a) = self.described.lock().expect("describe cache").get(user_id) {
            return Ok(a.clone());
        }
        let out = self
            .resilience
            .call("DescribeUser", || async {
                self.client
                    .describe_user()
                    .instance_id(&self.cfg.instance_id)
                    .user_id(user_id)
                    .send()
                    .await
                    .map_err(map_err)
            })
            .await?;
        let user = out.user();
        let info = user.and_then(|u| u.identity_info());
        let names: Vec<&str> = [
            info.and_then(|i| i.first_name()),
            info.and_then(|i| i.last_name()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let agent = Agent {
            id: user_id.to_owned(),
            email: info.and_then(|i| i.email()).map(str::to_owned),
            username: user
                .and_then(|u| u.username())
                .or(username)
                .map(str::to_owned),
            display_name: (!names.is_empty()).then(|| names.join(" ")),
        };
        self.described
            .lock()
            .expect("describe cache")
            .insert(user_id.to_owned(), agent.clone());
        Ok(agent)
    }

    /// The catalog status of an ARN, and whether it is an offline status.
    fn resolve(&self, arn: Option<&str>, name: Option<&str>) -> Option<Resolved> {
        if let Some(c) = arn.and_then(|a| self.by_arn.read().expect("catalog lock").get(a).cloned())
        {
            return Some((c.as_status(), c.kind == StatusKind::Offline));
        }
        // Unknown ARN (catalog not read yet): the id is the ARN's last segment.
        let id = arn?.rsplit('/').next()?.to_owned();
        Some((
            CcStatus {
                name: name.unwrap_or(&id).to_owned(),
                id,
            },
            false,
        ))
    }

    /// The events of one agent event stream record; none for a record that is not one.
    fn decode_record(&self, data: &[u8]) -> Vec<ConnectorEvent> {
        let rec: contacts::StreamRecord = match serde_json::from_slice(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(connector = %self.cfg.name, error = %e, "agent event stream record skipped: not an agent event");
                return Vec::new();
            }
        };
        let d = contacts::decode(&rec, |arn, name| self.resolve(arn, name));
        d.agent
            .map(ConnectorEvent::Agent)
            .into_iter()
            .chain(d.contacts.into_iter().map(ConnectorEvent::Contact))
            .collect()
    }

    async fn poll_all(&self) -> Result<Vec<AgentStatus>, ConnectorError> {
        if self.by_arn.read().expect("catalog lock").is_empty() {
            self.status_catalog().await?;
        }
        let mut ids: Vec<String> = self
            .described
            .lock()
            .expect("describe cache")
            .keys()
            .cloned()
            .collect();
        if ids.is_empty() {
            ids = self
                .list_agents()
                .await?
                .into_iter()
                .map(|a| a.id)
                .collect();
        }
        self.current_statuses(&ids).await
    }
}

#[async_trait]
impl ContactCenter for AmazonConnectConnector {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn list_agents(&self) -> Result<Vec<Agent>, ConnectorError> {
        let mut summaries = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .resilience
                .call("ListUsers", || async {
                    self.client
                        .list_users()
                        .instance_id(&self.cfg.instance_id)
                        .max_results(LIST_PAGE)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(map_err)
                })
                .await?;
            summaries.extend(
                out.user_summary_list()
                    .iter()
                    .filter_map(|u| Some((u.id()?.to_owned(), u.username().map(str::to_owned)))),
            );
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let listed: std::collections::HashSet<&String> =
            summaries.iter().map(|(id, _)| id).collect();
        self.described
            .lock()
            .expect("describe cache")
            .retain(|id, _| listed.contains(id));
        let mut agents = Vec::with_capacity(summaries.len());
        for (id, username) in &summaries {
            agents.push(self.describe(id, username.as_deref()).await?);
        }
        Ok(agents)
    }

    async fn status_catalog(&self) -> Result<Vec<CatalogStatus>, ConnectorError> {
        let mut catalog = Vec::new();
        let mut by_arn = HashMap::new();
        let mut token: Option<String> = None;
        loop {
            let out = self
                .resilience
                .call("ListAgentStatuses", || async {
                    self.client
                        .list_agent_statuses()
                        .instance_id(&self.cfg.instance_id)
                        .max_results(LIST_PAGE)
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(map_err)
                })
                .await?;
            for s in out.agent_status_summary_list() {
                let (Some(id), Some(name)) = (s.id(), s.name()) else {
                    continue;
                };
                let kind = match s.r#type() {
                    Some(AgentStatusType::Routable) => StatusKind::Routable,
                    Some(AgentStatusType::Offline) => StatusKind::Offline,
                    _ => StatusKind::NotRoutable,
                };
                let c = CatalogStatus {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    kind,
                    settable: true,
                };
                if let Some(arn) = s.arn() {
                    by_arn.insert(arn.to_owned(), c.clone());
                }
                catalog.push(c);
            }
            token = out.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        *self.by_arn.write().expect("catalog lock") = by_arn;
        Ok(catalog)
    }

    async fn current_statuses(
        &self,
        agent_ids: &[String],
    ) -> Result<Vec<AgentStatus>, ConnectorError> {
        let mut out = Vec::with_capacity(agent_ids.len());
        for batch in agent_ids.chunks(USERDATA_BATCH) {
            let mut token: Option<String> = None;
            loop {
                let filters = UserDataFilters::builder()
                    .set_agents(Some(batch.to_vec()))
                    .build();
                let page = self
                    .resilience
                    .call("GetCurrentUserData", || async {
                        self.client
                            .get_current_user_data()
                            .instance_id(&self.cfg.instance_id)
                            .filters(filters.clone())
                            .max_results(USERDATA_BATCH as i32)
                            .set_next_token(token.clone())
                            .send()
                            .await
                            .map_err(map_err)
                    })
                    .await?;
                for d in page.user_data_list() {
                    let Some(id) = d.user().and_then(|u| u.id()) else {
                        continue;
                    };
                    let Some(st) = d.status() else { continue };
                    if let Some((status, offline)) = self.resolve(st.status_arn(), st.status_name())
                    {
                        let activity = contacts::agent_activity(
                            d.contacts().iter().map(|c| {
                                (
                                    c.agent_contact_state().map(|s| s.as_str()),
                                    c.channel().map(|ch| ch.as_str()),
                                )
                            }),
                            offline,
                        );
                        out.push(AgentStatus {
                            agent_id: id.to_owned(),
                            status,
                            since: st.status_start_timestamp().and_then(to_chrono),
                            activity: Some(activity),
                        });
                    }
                }
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn set_status(&self, agent_id: &str, status: &CcStatus) -> Result<(), ConnectorError> {
        self.resilience
            .call("PutUserStatus", || async {
                self.client
                    .put_user_status()
                    .instance_id(&self.cfg.instance_id)
                    .user_id(agent_id)
                    .agent_status_id(&status.id)
                    .send()
                    .await
                    .map_err(map_err)
            })
            .await?;
        Ok(())
    }

    async fn run_events(
        &self,
        events: mpsc::Sender<ConnectorEvent>,
        cancel: CancellationToken,
    ) -> Result<(), ConnectorError> {
        if let Some(stream) = &self.stream {
            // Statuses in records are named by ARN: read the catalog first.
            if self.by_arn.read().expect("catalog lock").is_empty() {
                self.status_catalog().await?;
            }
            let agent = stream.run(&events, &cancel, |data| self.decode_record(data));
            return match &self.records {
                Some(records) => {
                    let ctr = records.run(&events, &cancel, |data| {
                        contacts::decode_contact_record(data)
                            .into_iter()
                            .map(ConnectorEvent::Contact)
                            .collect()
                    });
                    tokio::try_join!(agent, ctr).map(drop)
                }
                None => agent.await,
            };
        }
        let interval = Duration::from_secs(self.cfg.poll_interval_secs);
        super::poll::poll_loop(interval, events, cancel, || self.poll_all()).await
    }

    async fn health(&self) -> (HealthState, String) {
        let connect = self.resilience.health.get();
        let rank = |s: HealthState| match s {
            HealthState::Up => 0,
            HealthState::Degraded => 1,
            HealthState::Down => 2,
        };
        let mut worst = connect;
        for (what, k) in [
            ("agent event stream", &self.stream),
            ("contact-record stream", &self.records),
        ] {
            if let Some(k) = k {
                let h = k.resilience().health.get();
                if rank(h.0) > rank(worst.0) {
                    worst = (h.0, format!("{what}: {}", h.1));
                }
            }
        }
        worst
    }
    fn events_stored(&self, n: usize) {
        self.progress.stored(n);
    }

    fn event_time_bounds(&self) -> EventTimeBounds {
        self.cfg.event_time.bounds()
    }
}
