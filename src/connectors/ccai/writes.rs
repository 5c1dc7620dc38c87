//! Status writes: `POST apps/api/v1/agent_statuses` `{"status": name, "agent_ids": [...]}`
//! (<https://cloud.google.com/contact-center/ccai-platform/docs/apps-api-agent-status>).
//! Writes of the same status that arrive within `write_batch_window_ms` share one request. A
//! refused batch of several agents is sent again one agent per request, so one agent on a
//! system status (the platform refuses transitions to or from In-Call) does not fail the
//! others; the refusal itself is `ConnectorError::Rejected` and is never retried.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::CcaiConnector;
use crate::connectors::ConnectorError;
use crate::model::CcStatus;

type Waiter = (String, oneshot::Sender<Result<(), ConnectorError>>);

/// Writes waiting for their batch, by status name.
#[derive(Default)]
pub(super) struct Batcher {
    pending: Mutex<HashMap<String, Vec<Waiter>>>,
}

/// Sets `agent_id` to `status`, in a batch with the other agents getting the same status.
pub(super) async fn set(
    c: &CcaiConnector,
    agent_id: &str,
    status: &CcStatus,
) -> Result<(), ConnectorError> {
    if agent_id.parse::<i64>().is_err() {
        return Err(ConnectorError::Rejected {
            reason: format!("agent id {agent_id:?} is not a CCAI Platform agent id (a number)"),
        });
    }
    let window = Duration::from_millis(c.cfg.write_batch_window_ms);
    if window.is_zero() {
        return post(c, &status.name, &[agent_id.to_owned()]).await;
    }
    let (tx, rx) = oneshot::channel();
    let leader = {
        let mut pending = c.writes.pending.lock().expect("batch lock");
        let batch = pending.entry(status.name.clone()).or_default();
        batch.push((agent_id.to_owned(), tx));
        batch.len() == 1
    };
    if leader {
        // The first write of a status waits for the others, then sends for all of them.
        tokio::time::sleep(window).await;
        let batch = c
            .writes
            .pending
            .lock()
            .expect("batch lock")
            .remove(&status.name)
            .unwrap_or_default();
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        let results = send_batch(c, &status.name, &ids).await;
        for ((_, tx), r) in batch.into_iter().zip(results) {
            let _ = tx.send(r);
        }
    }
    rx.await
        .unwrap_or_else(|_| Err(ConnectorError::Transport("write abandoned".into())))
}

/// One result per id, in order.
async fn send_batch(
    c: &CcaiConnector,
    status: &str,
    ids: &[String],
) -> Vec<Result<(), ConnectorError>> {
    match post(c, status, ids).await {
        Err(ConnectorError::Rejected { .. }) if ids.len() > 1 => {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(post(c, status, std::slice::from_ref(id)).await);
            }
            out
        }
        r => ids.iter().map(|_| r.clone()).collect(),
    }
}

async fn post(c: &CcaiConnector, status: &str, ids: &[String]) -> Result<(), ConnectorError> {
    let agent_ids: Vec<i64> = ids.iter().filter_map(|i| i.parse().ok()).collect();
    let body = json!({"status": status, "agent_ids": agent_ids});
    let url = c.url("apps/api/v1/agent_statuses");
    let timeout = Duration::from_secs(c.cfg.limits.request_timeout_secs);
    let resp = c
        .rest
        .send("set agent status", None, |h| {
            h.post(url.clone()).json(&body).timeout(timeout)
        })
        .await?;
    // The answer lists each agent with its `current_status`; an agent listed with another
    // status was not changed.
    let Ok(Value::Array(rows)) = resp.json::<Value>() else {
        return Ok(());
    };
    for row in rows {
        let current = row.get("current_status").and_then(|s| match s {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("name").and_then(Value::as_str),
            _ => None,
        });
        if let Some(current) = current
            && !current.eq_ignore_ascii_case(status)
        {
            let agent = row
                .get("agent_id")
                .map(Value::to_string)
                .unwrap_or_default();
            return Err(ConnectorError::Rejected {
                reason: format!("agent {agent} is still {current:?}, not {status:?}"),
            });
        }
    }
    Ok(())
}
