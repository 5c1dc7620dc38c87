//! The HTTP surface: health, metrics, the Graph webhook, connector inbound events and the
//! management API. [`router`] is pure (state in, `Router` out) so handlers can be tested with
//! `oneshot` as well as over a socket. Handlers validate and hand over; they own no state.
//!
//! Each route group takes only the sub-state it uses ([`health::Readiness`], [`Metrics`],
//! [`graph::GraphWebhook`], [`ConnectorRegistry`], [`api::ApiState`]); the router is generic
//! over any state those can be taken from (axum's `FromRef`), which the application provides.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::connectors::ConnectorRegistry;
use crate::telemetry::Metrics;

pub mod api;
pub mod config;
pub mod connectors;
pub mod console;
pub mod error;
pub mod graph;
pub mod health;
pub mod messaging;
pub mod people;
pub mod screen_pop;
pub mod serve;

pub use config::ServerConfig;
pub use error::ApiError;

/// Header carrying the request id on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The whole router, with the limits of `[server]`.
pub fn router<S>(state: S, server: &ServerConfig) -> Router
where
    S: Clone + Send + Sync + 'static,
    health::Readiness: FromRef<S>,
    Metrics: FromRef<S>,
    graph::GraphWebhook: FromRef<S>,
    ConnectorRegistry: FromRef<S>,
    api::ApiState: FromRef<S>,
    screen_pop::ScreenPops: FromRef<S>,
    messaging::MessagingHttp: FromRef<S>,
    console::ConsoleState: FromRef<S>,
{
    let body_limit = server.body_limit_bytes;
    let timeout = Duration::from_secs(server.request_timeout_secs);
    let request_id = header::HeaderName::from_static(REQUEST_ID_HEADER);
    let webhook_body_limit = graph::GraphWebhook::from_ref(&state).max_body_bytes();
    Router::new()
        .merge(health::routes())
        .merge(graph::routes(webhook_body_limit))
        .merge(connectors::routes())
        .merge(api::routes(api::ApiState::from_ref(&state)))
        .merge(screen_pop::routes(api::ApiState::from_ref(&state)))
        .merge(messaging::routes(
            messaging::MessagingHttp::from_ref(&state).max_body_bytes(),
        ))
        .merge(console::routes(console::ConsoleState::from_ref(&state)))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            Metrics::from_ref(&state),
            track_metrics,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(
            // No ERROR line per 5xx response: handlers log the failures worth a line
            // themselves, and a load balancer probing an unready daemon every few seconds
            // would otherwise fill the log (readiness logs its changes instead).
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = method_label(req.method()), uri = %req.uri().path(), request_id = %id)
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A request method as a metric label or log field: one of the standard methods, else
/// `other`, so clients cannot invent label values (each one a new time series kept forever).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Counts requests and their latency by route template (never the raw path), method label
/// and status.
async fn track_metrics(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method()).to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics
        .counter(
            "http_requests_total",
            &[
                ("method", method.clone()),
                ("route", route.clone()),
                ("status", status),
            ],
        )
        .increment(1);
    metrics
        .histogram(
            "http_request_duration_seconds",
            &[("method", method), ("route", route)],
        )
        .record(start.elapsed().as_secs_f64());
    response
}

/// Error responses produced below the handlers (body limit, timeouts) come as plain text;
/// turn every other error into the JSON error shape so clients see one format.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    // JSON errors are already in shape; the console's HTML error pages are for people.
    let shaped = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if shaped {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let body = error::error_body(status, None);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string())).into_response()
}
