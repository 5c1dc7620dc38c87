//! Running one step job: the contact's state (values captured so far, steps done) is read from
//! the store, a step already done is not sent again, a step whose input is not captured yet
//! waits for it (up to `input_wait_secs`), the request is rendered and sent, and what the
//! response holds is captured and stored with the step marked done, before the job is done.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::client::{Answer, DataverseClient, entity_id};
use super::config::{DynamicsConfig, Step};
use super::follow::StepJob;
use super::template::{Captured, context, missing_inputs, render_step};
use crate::connectors::Channel;
use crate::connectors::http::extract::pointer_str;
use crate::runtime::queue::{JobHandler, JobOutcome};
use crate::store::{ContactStateRecord, Job, Store, StoreError};
use crate::telemetry::Metrics;

/// How often a step waiting for a captured value looks again: the step that captures it
/// usually runs within a second or two of the event before it.
const INPUT_POLL: Duration = Duration::from_secs(2);

/// What is kept per environment and contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContactState {
    /// The contact's channel, from the first event that named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// Values captured, per step.
    #[serde(default)]
    pub captured: Captured,
    /// Steps done (their request answered with success), with when.
    #[serde(default)]
    pub done: BTreeMap<String, DateTime<Utc>>,
    /// Steps given up, with why (refused, template error, input never captured).
    #[serde(default)]
    pub failed: BTreeMap<String, String>,
    /// Steps not sent because the contact's channel is not followed.
    #[serde(default)]
    pub skipped: Vec<String>,
}

/// The store's integration name of an environment.
pub fn integration(env: &str) -> String {
    format!("dynamics:{env}")
}

/// Reads a contact's state in one environment.
pub async fn load_state(
    store: &dyn Store,
    env: &str,
    connector: &str,
    contact: &str,
) -> Result<ContactState, StoreError> {
    Ok(store
        .contact_state_get(&integration(env), connector, contact)
        .await?
        .and_then(|r| serde_json::from_value(r.state).ok())
        .unwrap_or_default())
}

struct Environment {
    cfg: Arc<DynamicsConfig>,
    client: DataverseClient,
}

/// Runs the step jobs of every configured environment. Each attempt runs as its own task: a
/// request in flight when the application stops is answered and recorded rather than cut off
/// between Dataverse's answer and the record of it (which would send it again after a
/// restart).
pub struct StepRunner(Arc<Inner>);

struct Inner {
    envs: BTreeMap<String, Environment>,
    store: Arc<dyn Store>,
    metrics: Metrics,
}

impl StepRunner {
    pub fn new(
        envs: Vec<(Arc<DynamicsConfig>, DataverseClient)>,
        store: Arc<dyn Store>,
        metrics: Metrics,
    ) -> Self {
        Self(Arc::new(Inner {
            envs: envs
                .into_iter()
                .map(|(cfg, client)| (cfg.name.clone(), Environment { cfg, client }))
                .collect(),
            store,
            metrics,
        }))
    }
}

impl Inner {
    fn count(&self, env: &str, step: &str, outcome: &'static str) {
        self.metrics
            .counter(
                "dynamics_steps_total",
                &[
                    ("environment", env.to_owned()),
                    ("step", step.to_owned()),
                    ("outcome", outcome.to_owned()),
                ],
            )
            .increment(1);
    }

    async fn save(&self, job: &StepJob, state: &ContactState) -> Result<(), StoreError> {
        self.store
            .contact_state_put(&ContactStateRecord {
                integration: integration(&job.environment),
                connector: job.connector.clone(),
                contact_id: job.event.contact_id.clone(),
                state: serde_json::to_value(state).unwrap_or_default(),
                updated_at: Utc::now(),
            })
            .await
    }

    /// Records a step given up for good and ends its job.
    async fn give_up(
        &self,
        job: &StepJob,
        mut state: ContactState,
        outcome: &'static str,
        why: String,
    ) -> JobOutcome {
        let step = job.step.as_str();
        tracing::warn!(environment = %job.environment, contact = %job.event.contact_id, step, reason = %why, "dynamics step given up");
        state.failed.insert(step.to_owned(), why);
        self.count(&job.environment, step, outcome);
        match self.save(job, &state).await {
            Ok(()) => JobOutcome::Done,
            Err(e) => JobOutcome::Failed(format!("saving the contact state: {e}")),
        }
    }

    async fn run(&self, queued: &Job, job: StepJob) -> JobOutcome {
        let Some(env) = self.envs.get(&job.environment) else {
            tracing::warn!(environment = %job.environment, "step of an environment no longer configured dropped");
            return JobOutcome::Done;
        };
        let step_name = job.step.as_str();
        let mut state = match load_state(
            self.store.as_ref(),
            &job.environment,
            &job.connector,
            &job.event.contact_id,
        )
        .await
        {
            Ok(s) => s,
            Err(e) => return JobOutcome::Failed(format!("reading the contact state: {e}")),
        };
        if state.done.contains_key(step_name) || state.failed.contains_key(step_name) {
            self.count(&job.environment, step_name, "already_done");
            return JobOutcome::Done;
        }
        if state.channel.is_none() {
            state.channel = job.event.channel;
        }
        let channel = job.event.channel.or(state.channel);
        if !env.cfg.channels.is_empty() && channel.is_some_and(|c| !env.cfg.channels.contains(&c)) {
            state.skipped.push(step_name.to_owned());
            self.count(&job.environment, step_name, "skipped");
            return match self.save(&job, &state).await {
                Ok(()) => JobOutcome::Done,
                Err(e) => JobOutcome::Failed(format!("saving the contact state: {e}")),
            };
        }
        let Some(step) = env.cfg.steps.get(job.step) else {
            return JobOutcome::Done;
        };
        if let Some(outcome) = self.wait_for_inputs(queued, &job, &env.cfg, step, &state) {
            return match outcome {
                Ok(wait) => wait,
                Err(why) => self.give_up(&job, state, "input_missing", why).await,
            };
        }
        let ctx = context(&env.cfg, &job.connector, &job.event, &state.captured);
        let req = match render_step(&env.cfg, step, &ctx) {
            Ok(r) => r,
            Err(e) => {
                let why = format!("steps.{step_name}.{}: {}", e.field, e.message);
                return self.give_up(&job, state, "template_error", why).await;
            }
        };
        let timeout = Duration::from_secs(env.cfg.timeout_secs);
        match env.client.send(&req, timeout).await {
            Answer::Success { headers, body, .. } => {
                let caps = capture(step, &headers, &body);
                if caps.len() < step.captures.len() {
                    tracing::warn!(environment = %job.environment, contact = %job.event.contact_id, step = step_name, "the response lacks values the step captures");
                }
                state.captured.insert(step_name.to_owned(), caps);
                state.done.insert(step_name.to_owned(), Utc::now());
                self.count(&job.environment, step_name, "done");
                tracing::info!(environment = %job.environment, contact = %job.event.contact_id, step = step_name, "Dynamics 365 step done");
                match self.save(&job, &state).await {
                    Ok(()) => JobOutcome::Done,
                    Err(e) => JobOutcome::Failed(format!("saving the contact state: {e}")),
                }
            }
            Answer::Throttled(wait) => {
                tracing::info!(environment = %job.environment, step = step_name, wait_secs = wait.as_secs(), "Dataverse throttled the step; waiting as asked");
                self.count(&job.environment, step_name, "throttled");
                JobOutcome::RetryAfter(wait)
            }
            Answer::Transient(why) => {
                self.count(&job.environment, step_name, "failed");
                JobOutcome::Failed(why)
            }
            Answer::Rejected { status, detail } => {
                let why = format!("Dataverse answered HTTP {status}: {detail}");
                self.give_up(&job, state, "rejected", why).await
            }
        }
    }

    /// `None` when every input is there; else the wait, or why the step is given up (its
    /// input comes from a step given up, or it waited `input_wait_secs`).
    fn wait_for_inputs(
        &self,
        queued: &Job,
        job: &StepJob,
        cfg: &DynamicsConfig,
        step: &Step,
        state: &ContactState,
    ) -> Option<Result<JobOutcome, String>> {
        let missing = missing_inputs(step, &state.captured);
        if missing.is_empty() {
            return None;
        }
        let from_failed = missing.iter().find(|m| {
            m.split('.')
                .nth(1)
                .is_some_and(|s| state.failed.contains_key(s) || state.done.contains_key(s))
        });
        if let Some(m) = from_failed {
            return Some(Err(format!(
                "{m} was never captured (its step ended without it)"
            )));
        }
        let waited = Utc::now().signed_duration_since(queued.created_at);
        if waited.num_seconds() >= i64::try_from(cfg.input_wait_secs).unwrap_or(i64::MAX) {
            return Some(Err(format!(
                "{} not captured within input_wait_secs ({} s)",
                missing.join(", "),
                cfg.input_wait_secs
            )));
        }
        self.count(&job.environment, job.step.as_str(), "waiting");
        Some(Ok(JobOutcome::RetryAfter(INPUT_POLL)))
    }
}

/// The values `step` captures from a response.
fn capture(
    step: &Step,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> BTreeMap<String, String> {
    let doc: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    step.captures
        .iter()
        .filter_map(|c| {
            let v = if c.entity_id {
                header("OData-EntityId").and_then(entity_id)
            } else if let Some(p) = &c.json_pointer {
                doc.as_ref().and_then(|d| pointer_str(d, p))
            } else {
                c.header.as_deref().and_then(header).map(str::to_owned)
            };
            Some((c.name.clone(), v?))
        })
        .collect()
}

#[async_trait]
impl JobHandler for StepRunner {
    async fn handle(&self, job: &Job) -> JobOutcome {
        match serde_json::from_value::<StepJob>(job.payload.clone()) {
            Ok(step) => {
                let span = tracing::info_span!("dynamics_step", environment = %step.environment, contact = %step.event.contact_id, step = step.step.as_str());
                let (inner, queued) = (self.0.clone(), job.clone());
                let attempt = async move { inner.run(&queued, step).await };
                tokio::spawn(tracing::Instrument::instrument(attempt, span))
                    .await
                    .unwrap_or_else(|e| JobOutcome::Failed(format!("step task: {e}")))
            }
            Err(e) => {
                tracing::warn!(error = %e, "undecodable dynamics step dropped");
                JobOutcome::Done
            }
        }
    }
}
