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

/// The demo's part: contacts of the generic simulated contact center reported through the http
/// connector's contact-event webhook, written to a simulated Dataverse.
#[cfg(feature = "demo")]
pub mod demo {
    use std::sync::atomic::{AtomicU64, Ordering};

    use serde_json::json;

    use crate::sim::dataverse::SimDataverse;

    /// Secret of the demo's contact-event webhook.
    const SECRET: &str = "demo-contact-secret";

    /// What the demo adds to the simulated contact center's connector (its contact-event
    /// webhook) and the `[[dynamics]]` environment of `dataverse` with the phone-call recipe.
    pub fn config_toml(dataverse: &SimDataverse) -> String {
        format!(
            r#"
[connectors.contact_events]
contact_id_pointer = "/contact"
kind_pointer = "/kind"
channel_pointer = "/channel"
channels = {{ voice = "voice" }}
agent_id_pointer = "/agent"
customer_endpoint_pointer = "/from"
recording_url_pointer = "/recording"
timestamp_pointer = "/at"
event_id_pointer = "/id"

[connectors.contact_events.verify]
type = "shared_secret"
header = "X-Demo-Secret"
secret = "{SECRET}"

"#
        ) + &dataverse.environment_toml("demo-crm")
    }

    /// Reports the demo's contacts to the daemon's contact-event webhook.
    pub struct DemoContacts {
        http: reqwest::Client,
        url: String,
        next: AtomicU64,
    }

    impl DemoContacts {
        /// `url`: the daemon's `/connectors/{name}/contact-events`.
        pub fn new(url: String) -> Self {
            Self {
                http: reqwest::Client::new(),
                url,
                next: AtomicU64::new(1),
            }
        }

        async fn post(&self, contact: &str, kind: &str, agent: &str) {
            let body = json!({"id": format!("{contact}/{kind}"), "contact": contact, "kind": kind,
                "channel": "voice", "agent": agent, "from": "+1 425 555 0100",
                "recording": format!("https://recordings.example/{contact}.wav"),
                "at": chrono::Utc::now().to_rfc3339()});
            if let Err(e) = self
                .http
                .post(&self.url)
                .header("X-Demo-Secret", SECRET)
                .json(&body)
                .send()
                .await
            {
                tracing::warn!(target: "demo", error = %e, "contact event not delivered");
            }
        }

        /// A call rings at `agent` and is answered; returns its id.
        pub async fn begin(&self, agent: &str) -> String {
            let contact = format!("call-{}", self.next.fetch_add(1, Ordering::Relaxed));
            self.post(&contact, "offered", agent).await;
            self.post(&contact, "connected", agent).await;
            contact
        }

        /// The call ends and its recording is available.
        pub async fn end(&self, contact: &str, agent: &str) {
            self.post(contact, "ended", agent).await;
            self.post(contact, "recording_available", agent).await;
        }
    }
}
