//! Sending alerts: the body each sink kind takes, and the queue consumer that POSTs them
//! (retried through the durable work queue, honouring `Retry-After`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::config::{AlertSinkConfig, SinkKind};
use super::tracker::{AlertStatus, Severity, Transition};
use crate::runtime::queue::{JobHandler, JobOutcome};
use crate::store::Job;

/// The work queue alerts go through.
pub const QUEUE: &str = "alerts";

/// Longest a sink may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// One alert for one sink: the queue job's payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub sink: String,
    pub instance: String,
    #[serde(flatten)]
    pub alert: Transition,
}

/// The generic webhook's body.
pub fn webhook_body(o: &Outgoing) -> serde_json::Value {
    let a = &o.alert;
    serde_json::json!({
        "source": "presence-bridge",
        "instance": o.instance,
        "status": a.status,
        "condition": a.kind.as_str(),
        "key": a.key,
        "severity": a.severity,
        "summary": a.summary,
        "detail": a.detail,
        "since": a.since,
        "at": a.at,
    })
}

/// A Teams message carrying an Adaptive Card, the form incoming webhooks and Workflows'
/// "when a Teams webhook request is received" accept
/// (https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using#send-adaptive-cards-using-an-incoming-webhook).
/// The state is written in words as well as colour.
pub fn teams_body(o: &Outgoing) -> serde_json::Value {
    let a = &o.alert;
    let (word, color) = match (a.status, a.severity) {
        (AlertStatus::Resolved, _) => ("RESOLVED", "Good"),
        (AlertStatus::Firing, Severity::Critical) => ("CRITICAL", "Attention"),
        (AlertStatus::Firing, Severity::Warning) => ("WARNING", "Warning"),
    };
    serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {
                        "type": "TextBlock",
                        "text": format!("{word}: {}", a.summary),
                        "weight": "Bolder",
                        "size": "Medium",
                        "color": color,
                        "wrap": true,
                    },
                    { "type": "TextBlock", "text": a.detail, "wrap": true },
                    {
                        "type": "FactSet",
                        "facts": [
                            { "title": "Condition", "value": a.kind.as_str() },
                            { "title": "Since", "value": a.since.to_rfc3339() },
                            { "title": "Instance", "value": o.instance },
                        ],
                    },
                ],
            },
        }],
    })
}

/// Why a send did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Transport(String),
    #[error("the sink answered {status}{}", retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("alert sink {0:?} has no URL")]
    NoUrl(String),
}

/// POSTs one alert to its sink.
pub async fn send(
    http: &reqwest::Client,
    sink: &AlertSinkConfig,
    o: &Outgoing,
) -> Result<(), SendError> {
    let url = sink
        .url
        .as_ref()
        .ok_or_else(|| SendError::NoUrl(sink.name.clone()))?;
    let body = match sink.kind {
        SinkKind::Webhook => webhook_body(o),
        SinkKind::Teams => teams_body(o),
    };
    let resp = http
        .post(url.expose_secret())
        .timeout(SEND_TIMEOUT)
        .json(&body)
        .send()
        .await
        .map_err(|e| SendError::Transport(crate::net::transport::describe(&e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    Err(SendError::Status {
        status: status.as_u16(),
        retry_after: crate::net::retry_after::from_headers(resp.headers()),
    })
}

/// The queue consumer: sends each job to its sink.
pub struct AlertSender {
    pub http: reqwest::Client,
    pub sinks: Arc<Vec<AlertSinkConfig>>,
    pub metrics: crate::telemetry::Metrics,
}

#[async_trait]
impl JobHandler for AlertSender {
    async fn handle(&self, job: &Job) -> JobOutcome {
        let o: Outgoing = match serde_json::from_value(job.payload.clone()) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(job = job.id, error = %e, "unreadable alert job dropped");
                return JobOutcome::Done;
            }
        };
        let Some(sink) = self.sinks.iter().find(|s| s.name == o.sink) else {
            tracing::warn!(sink = %o.sink, "alert for a sink no longer configured dropped");
            return JobOutcome::Done;
        };
        let outcome = send(&self.http, sink, &o).await;
        let label = match &outcome {
            Ok(()) => "sent",
            Err(SendError::Status { status, .. }) if is_final(*status) => "rejected",
            Err(_) => "retried",
        };
        self.metrics
            .counter(
                "alerts_sent_total",
                &[("sink", sink.name.clone()), ("outcome", label.to_owned())],
            )
            .increment(1);
        match outcome {
            Ok(()) => {
                tracing::info!(sink = %sink.name, status = ?o.alert.status, alert = %o.alert.summary, "alert sent");
                JobOutcome::Done
            }
            Err(SendError::Status {
                status,
                retry_after: Some(wait),
            }) if status == 429 || status == 503 => JobOutcome::RetryAfter(wait),
            Err(SendError::Status { status, .. }) if is_final(status) => {
                tracing::error!(sink = %sink.name, status, alert = %o.alert.summary,
                    "the alert sink refused the alert; it is dropped (check the sink's URL)");
                JobOutcome::Done
            }
            Err(e) => JobOutcome::Failed(e.to_string()),
        }
    }
}

/// A refusal that sending again will not change (a wrong URL, a removed webhook).
fn is_final(status: u16) -> bool {
    (400..500).contains(&status) && status != 408 && status != 429
}
