//! Simulated JSON batching: `POST /v1.0/$batch` runs each item through the same router (so
//! budgets and faults apply per item) and answers 200 with every item's status.

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{SimGraph, graph_error, router};

/// Graph's limit of requests in one batch.
const MAX_ITEMS: usize = 20;

pub(super) fn routes() -> Router<SimGraph> {
    Router::new().route("/v1.0/$batch", post(batch))
}

async fn batch(
    State(sim): State<SimGraph>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let items = body["requests"].as_array().cloned().unwrap_or_default();
    let ids: HashSet<&str> = items.iter().filter_map(|r| r["id"].as_str()).collect();
    if items.is_empty() || items.len() > MAX_ITEMS || ids.len() != items.len() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A batch holds 1 to 20 requests with unique ids.",
        );
    }
    let auth = headers.get("authorization").cloned();
    let mut responses = Vec::new();
    for item in items {
        let url = item["url"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_owned();
        let mut req = Request::builder()
            .method(item["method"].as_str().unwrap_or("GET"))
            .uri(format!("/v1.0/{url}"))
            .header("content-type", "application/json");
        if let Some(a) = &auth {
            req = req.header("authorization", a.clone());
        }
        let body = item.get("body").map(|b| b.to_string()).unwrap_or_default();
        let resp = router(sim.clone())
            .oneshot(req.body(Body::from(body)).expect("valid request"))
            .await
            .expect("router is infallible");
        let status = resp.status().as_u16();
        let mut hdrs = serde_json::Map::new();
        if let Some(ra) = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
        {
            hdrs.insert("Retry-After".into(), json!(ra));
        }
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut out = json!({"id": item["id"], "status": status, "headers": hdrs});
        if !body.is_null() {
            out["body"] = body;
        }
        responses.push(out);
    }
    // Graph may answer in any order; the simulator reverses it so clients cannot rely on order.
    responses.reverse();
    Json(json!({ "responses": responses })).into_response()
}
