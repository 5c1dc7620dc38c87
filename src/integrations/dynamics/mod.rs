//! The contact lifecycle written to Microsoft Dynamics 365 (Dataverse Web API), one
//! `[[dynamics]]` entry per environment.
//!
//! Each contact event the connectors store becomes, per environment that follows it, a step
//! job on the shared durable queue ([`follow`]): `created` (first sight of the contact),
//! `connected`, `ended`, `recording_available`. Jobs of one contact run in order; a job
//! redelivered or pushed twice runs once. A step is a templated Web API request ([`config`],
//! [`template`]) whose response values (a JSON pointer, or the record id of the
//! `OData-EntityId` header) are captured for the later steps and kept per contact for
//! `retention_days` ([`steps`]); `429` answers wait the `Retry-After` asked for ([`client`]).
//! The record's link is served for the agent on the contact ([`screen_pop`]).
//!
//! What Microsoft documents and what is assumed: see `client.rs`, `template.rs` and the
//! simulated Dataverse (`sim::dataverse`). Owns no presence logic and never calls the engine.

pub mod client;
pub mod config;
pub mod follow;
pub mod screen_pop;
pub mod steps;
pub mod template;

use std::sync::Arc;

pub use config::{DynamicsConfig, StepName};
pub use screen_pop::ScreenPops;

use crate::connectors::ContactEvent;
use crate::connectors::ingest::ContactFollower;
use crate::store::NewJob;

/// Hands contact events to the step queue of every environment.
pub struct Follower {
    envs: Vec<Arc<DynamicsConfig>>,
    waker: Arc<tokio::sync::Notify>,
}

impl Follower {
    pub fn new(envs: Vec<Arc<DynamicsConfig>>, waker: Arc<tokio::sync::Notify>) -> Self {
        Self { envs, waker }
    }
}

impl ContactFollower for Follower {
    fn jobs(&self, connector: &str, events: &[ContactEvent]) -> Vec<NewJob> {
        follow::jobs(&self.envs, connector, events)
    }

    fn pushed(&self) {
        self.waker.notify_one();
    }
}

/// Why `dynamics render` could not print a request.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no [[dynamics]] environment is configured")]
    NoEnvironment,
    #[error("no [[dynamics]] environment is named {0:?}")]
    NoSuchEnvironment(String),
    #[error("{0:?} is not a step (created, connected, ended, recording_available)")]
    NoSuchStep(String),
    #[error("environment {env:?} has no {step} step")]
    StepAbsent { env: String, step: &'static str },
    #[error("{field}: {message}")]
    Template { field: String, message: String },
}

/// `presence-bridge dynamics render <step> <event>`: the exact request of a step for a
/// contact event (captured values given by the caller), the token redacted.
pub fn render(
    envs: &[DynamicsConfig],
    environment: Option<&str>,
    step: &str,
    connector: &str,
    event: &ContactEvent,
    captured: &template::Captured,
) -> Result<String, RenderError> {
    let env = match environment {
        Some(name) => envs
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| RenderError::NoSuchEnvironment(name.to_owned()))?,
        None => envs.first().ok_or(RenderError::NoEnvironment)?,
    };
    let name = StepName::parse(step).ok_or_else(|| RenderError::NoSuchStep(step.to_owned()))?;
    let tpl = env.steps.get(name).ok_or(RenderError::StepAbsent {
        env: env.name.clone(),
        step: name.as_str(),
    })?;
    let ctx = template::context(env, connector, event, captured);
    let mut req = template::render_step(env, tpl, &ctx).map_err(|e| RenderError::Template {
        field: format!("steps.{}.{}", name.as_str(), e.field),
        message: e.message,
    })?;
    req.headers
        .insert(0, ("Authorization".into(), "Bearer [redacted]".into()));
    Ok(req.to_string())
}

#[cfg(test)]
mod tests;
