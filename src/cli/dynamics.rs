//! `dynamics render STEP EVENT_FILE`: the exact Web API request a step sends for a contact
//! event (the token redacted), Dynamics' "URI preview". The file holds a contact event as the
//! connectors normalise it (`{"contact_id", "kind", "at", "channel", "agent_id", …}`).
//! Values of earlier steps are given with `--capture created.activityid=…`; a value the step
//! uses and not given is shown as a sample id, and a note says so.

use std::path::Path;

use anyhow::Context;

use super::out::{out, outln};
use crate::app::config::Config;
use crate::connectors::ContactEvent;
use crate::integrations::dynamics::template::{Captured, missing_inputs};
use crate::integrations::dynamics::{self, StepName};

/// Stands in for a captured value not given on the command line.
const SAMPLE_ID: &str = "00000000-0000-0000-0000-000000000000";

pub(super) fn render(
    config: &Config,
    step: &str,
    event_file: &Path,
    environment: Option<&str>,
    connector: &str,
    captures: &[String],
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(event_file)
        .with_context(|| format!("cannot read {}", event_file.display()))?;
    let event: ContactEvent = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a contact event", event_file.display()))?;
    let mut captured = Captured::new();
    for c in captures {
        let (path, value) = c
            .split_once('=')
            .with_context(|| format!("--capture {c:?}: give STEP.NAME=VALUE"))?;
        let (s, name) = path
            .split_once('.')
            .with_context(|| format!("--capture {c:?}: give STEP.NAME=VALUE"))?;
        captured
            .entry(s.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }
    let env = match environment {
        Some(n) => config.dynamics.iter().find(|e| e.name == n),
        None => config.dynamics.first(),
    };
    if let (Some(env), Some(name)) = (env, StepName::parse(step))
        && let Some(tpl) = env.steps.get(name)
    {
        for m in missing_inputs(tpl, &captured) {
            let mut parts = m.splitn(3, '.').skip(1);
            if let (Some(s), Some(n)) = (parts.next(), parts.next()) {
                outln!("# {m} not given (--capture {s}.{n}=…): a sample id stands in")?;
                captured
                    .entry(s.to_owned())
                    .or_default()
                    .insert(n.to_owned(), SAMPLE_ID.to_owned());
            }
        }
    }
    let text = dynamics::render(
        &config.dynamics,
        environment,
        step,
        connector,
        &event,
        &captured,
    )?;
    out!("{text}")?;
    Ok(())
}
