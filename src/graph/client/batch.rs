//! JSON `$batch` for bursts of presence writes: at most 20 requests per batch; items that come
//! back throttled or failed (429, 503, 5xx, 424) are retried alone, after the longest
//! `Retry-After` among them.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::graph::GraphError;
use crate::graph::client::{ApiFamily, GraphClient, GraphRequest, error_from};
use crate::graph::presence::PresenceWrite;
use crate::net::retry_after;

/// Graph's limit of requests in one batch.
pub const MAX_BATCH: usize = 20;

#[derive(Deserialize)]
struct BatchResponse {
    responses: Vec<ItemResponse>,
}

#[derive(Deserialize)]
struct ItemResponse {
    id: String,
    status: u16,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Value,
}

impl ItemResponse {
    fn outcome(&self, w: &PresenceWrite) -> Result<(), GraphError> {
        if (200..300).contains(&self.status) || (self.status == 404 && w.not_found_is_success()) {
            return Ok(());
        }
        let retry_after = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| retry_after::parse(v));
        if self.status == 424 {
            // A failed dependency (or, in older behaviour, the whole batch): retryable.
            return Err(GraphError::Server { status: 424 });
        }
        Err(error_from(
            self.status,
            retry_after,
            self.body.to_string().as_bytes(),
        ))
    }
}

impl GraphClient {
    /// Sends the writes in batches of at most 20; the result for each write, in input order.
    pub async fn write_presence_batch(
        &self,
        writes: &[PresenceWrite],
    ) -> Vec<Result<(), GraphError>> {
        let mut results: Vec<Option<Result<(), GraphError>>> = vec![None; writes.len()];
        let mut valid = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            match w.to_request(self.client_id()) {
                Ok((url, body)) => valid.push((i, url, body)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for chunk in valid.chunks(MAX_BATCH) {
            for (i, r) in self.send_batch(writes, chunk).await {
                results[i] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every write has an outcome"))
            .collect()
    }

    async fn send_batch(
        &self,
        writes: &[PresenceWrite],
        items: &[(usize, String, Value)],
    ) -> Vec<(usize, Result<(), GraphError>)> {
        let mut done = Vec::with_capacity(items.len());
        let mut pending: Vec<&(usize, String, Value)> = items.iter().collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            let requests: Vec<Value> = pending
                .iter()
                .map(|(i, url, body)| {
                    json!({"id": i.to_string(), "method": "POST", "url": format!("/{url}"),
                        "body": body, "headers": {"Content-Type": "application/json"}})
                })
                .collect();
            let req = GraphRequest {
                cost: pending.len() as u32,
                ..GraphRequest::new(Method::POST, "$batch", ApiFamily::PresenceWrite)
                    .json(json!({ "requests": requests }))
            };
            let answers: HashMap<String, ItemResponse> =
                match self.send_json::<BatchResponse>(req).await {
                    Ok(b) => b.responses.into_iter().map(|r| (r.id.clone(), r)).collect(),
                    Err(e) => {
                        done.extend(pending.iter().map(|(i, _, _)| (*i, Err(e.clone()))));
                        return done;
                    }
                };
            let mut retry = Vec::new();
            let mut wait: Option<Duration> = None;
            for item in pending {
                let outcome = match answers.get(&item.0.to_string()) {
                    Some(a) => a.outcome(&writes[item.0]),
                    None => Err(GraphError::Decode("batch answer lacks an item".into())),
                };
                if let Some(ra) = outcome.as_ref().err().and_then(GraphError::retry_after) {
                    // A throttled item throttles the family, as a throttled call does.
                    self.throttled(ApiFamily::PresenceWrite, ra);
                }
                match outcome {
                    Err(e) if e.is_transient() => match self.retry_delay(&e, attempt) {
                        Some(d) => {
                            wait = wait.max(Some(d));
                            retry.push(item);
                        }
                        None => done.push((item.0, Err(e))),
                    },
                    other => done.push((item.0, other)),
                }
            }
            if let Some(w) = wait {
                tracing::debug!(
                    items = retry.len(),
                    wait_ms = w.as_millis() as u64,
                    "retrying failed batch items"
                );
                tokio::time::sleep(w).await;
            }
            pending = retry;
            attempt += 1;
        }
        done
    }
}
