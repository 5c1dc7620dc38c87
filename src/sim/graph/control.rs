//! Budgets and fault injection (a middleware in front of every simulated Graph and identity
//! route), client-assertion verification, and the control API under `/_control` used by the
//! demo (tests may call the same methods on [`SimGraph`] directly).

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use super::{Budget, FaultKind, FaultRule, SimGraph, SimGraphOptions, SimUser, graph_error};

enum Action {
    Pass,
    Fail(u16, Option<u64>),
    Delay(u64),
    Drop,
}

fn decide(sim: &SimGraph, path: &str) -> Action {
    let now = sim.now();
    let lower = path.to_ascii_lowercase();
    let mut t = sim.lock();
    t.request_log.push(path.to_owned());
    let fault = t
        .faults
        .iter_mut()
        .find(|f| f.remaining > 0 && lower.contains(&f.path_contains.to_ascii_lowercase()))
        .map(|f| {
            f.remaining -= 1;
            f.kind.clone()
        });
    t.faults.retain(|f| f.remaining > 0);
    match fault {
        Some(FaultKind::Status {
            status,
            retry_after_secs,
        }) => return Action::Fail(status, retry_after_secs),
        Some(FaultKind::Delay { ms }) => return Action::Delay(ms),
        Some(FaultKind::Drop) => return Action::Drop,
        None => {}
    }
    for b in t
        .budgets
        .iter_mut()
        .filter(|b| lower.contains(&b.path_contains.to_ascii_lowercase()))
    {
        let window = chrono::Duration::seconds(b.window_secs as i64);
        let start = match b.window_start {
            Some(s) if now < s + window => s,
            _ => {
                b.window_start = Some(now);
                b.used = 0;
                now
            }
        };
        if b.used >= b.limit {
            let left = (start + window - now).num_milliseconds().max(0) as u64;
            return Action::Fail(429, Some(left.div_ceil(1000).max(1)));
        }
        b.used += 1;
    }
    Action::Pass
}

/// Applies injected faults, then the budgets, then runs the route.
pub(super) async fn faults_and_budgets(
    State(sim): State<SimGraph>,
    req: Request,
    next: Next,
) -> Response {
    match decide(&sim, req.uri().path()) {
        Action::Pass => next.run(req).await,
        Action::Delay(ms) => {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            next.run(req).await
        }
        Action::Fail(status, retry_after) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = if status == StatusCode::TOO_MANY_REQUESTS {
                graph_error(status, "TooManyRequests", "Please retry again later.")
            } else {
                graph_error(status, "ServiceUnavailable", "Injected failure.")
            };
            if let Some(s) = retry_after {
                resp.headers_mut()
                    .insert("retry-after", HeaderValue::from(s));
            }
            resp
        }
        Action::Drop => {
            let broken = futures::stream::once(async {
                Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(broken))
                .expect("valid response")
        }
    }
}

/// Verifies a client assertion against the registered certificate; returns its `jti`.
pub(super) fn verify_assertion(
    o: &SimGraphOptions,
    jwt: &str,
    aud: &str,
) -> anyhow::Result<String> {
    use anyhow::{Context, anyhow, bail, ensure};
    use rsa::pkcs8::DecodePublicKey;
    use rsa::traits::PublicKeyParts;
    use x509_cert::der::{DecodePem, Encode};
    let cert_pem = o
        .certificate_pem
        .as_deref()
        .context("no certificate registered")?;
    let header = jsonwebtoken::decode_header(jwt).context("bad assertion header")?;
    let (s256, sha1) = crate::graph::client::auth::cert_thumbprints(cert_pem)?;
    let thumb_ok = match header.alg {
        jsonwebtoken::Algorithm::PS256 => header.x5t_s256.as_deref() == Some(s256.as_str()),
        jsonwebtoken::Algorithm::RS256 => header.x5t.as_deref() == Some(sha1.as_str()),
        _ => bail!("unsupported assertion algorithm"),
    };
    ensure!(
        thumb_ok,
        "certificate thumbprint does not match a registered certificate"
    );
    let cert = x509_cert::Certificate::from_pem(cert_pem.as_bytes())?;
    let spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    let key = rsa::RsaPublicKey::from_public_key_der(&spki)?;
    let dk = jsonwebtoken::DecodingKey::from_rsa_components(
        &URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        &URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    )?;
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    v.validate_nbf = true;
    let data =
        jsonwebtoken::decode::<serde_json::Value>(jwt, &dk, &v).context("assertion rejected")?;
    let c = data.claims;
    let id = Some(o.client_id.as_str());
    ensure!(
        c["iss"].as_str() == id && c["sub"].as_str() == id,
        "iss and sub must be the client id"
    );
    let (nbf, exp) = (
        c["nbf"].as_i64().unwrap_or(0),
        c["exp"].as_i64().unwrap_or(0),
    );
    ensure!(exp - nbf <= 600, "assertion lifetime exceeds 10 minutes");
    c["jti"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("jti is required"))
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/_control/users", post(add_user).get(list_users))
        .route("/_control/users/{id}", delete(remove_user))
        .route("/_control/users/{id}/licence", post(set_licence))
        .route(
            "/_control/users/{id}/status",
            post(set_status).delete(clear_status),
        )
        .route("/_control/writes", get(writes))
        .route("/_control/clock/advance", post(advance))
        .route("/_control/faults", post(add_fault))
        .route("/_control/budgets", post(set_budgets))
        .route("/_control/devicecode/approve", post(approve))
}

async fn add_user(State(sim): State<SimGraph>, Json(u): Json<SimUser>) -> StatusCode {
    sim.upsert_user(u);
    StatusCode::NO_CONTENT
}

async fn list_users(State(sim): State<SimGraph>) -> Json<Vec<SimUser>> {
    Json(
        sim.lock()
            .users
            .values()
            .filter(|u| !u.deleted)
            .cloned()
            .collect(),
    )
}

fn found(ok: bool) -> StatusCode {
    if ok {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn remove_user(State(sim): State<SimGraph>, Path(id): Path<String>) -> StatusCode {
    found(sim.delete_user(&id))
}

#[derive(Deserialize)]
struct Licence {
    service_plan_id: String,
    enabled: bool,
}

async fn set_licence(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    Json(l): Json<Licence>,
) -> StatusCode {
    found(sim.update_user(&id, |u| {
        u.assigned_plans
            .retain(|p| !p.service_plan_id.eq_ignore_ascii_case(&l.service_plan_id));
        u.assigned_plans.push(super::users::AssignedPlan {
            service_plan_id: l.service_plan_id,
            capability_status: if l.enabled { "Enabled" } else { "Suspended" }.into(),
        });
    }))
}

#[derive(Deserialize)]
struct Pair {
    availability: String,
    activity: String,
}

async fn set_status(
    State(sim): State<SimGraph>,
    Path(id): Path<String>,
    Json(p): Json<Pair>,
) -> Response {
    sim.set_user_status(&id, Some((&p.availability, &p.activity)));
    Json(sim.effective_presence(&id)).into_response()
}

async fn clear_status(State(sim): State<SimGraph>, Path(id): Path<String>) -> StatusCode {
    sim.set_user_status(&id, None);
    StatusCode::NO_CONTENT
}

async fn writes(State(sim): State<SimGraph>) -> Response {
    Json(sim.writes()).into_response()
}

#[derive(Deserialize)]
struct Advance {
    secs: u64,
}

async fn advance(State(sim): State<SimGraph>, Json(a): Json<Advance>) -> Response {
    sim.advance(std::time::Duration::from_secs(a.secs));
    Json(json!({"now": sim.now()})).into_response()
}

async fn add_fault(State(sim): State<SimGraph>, Json(f): Json<FaultRule>) -> StatusCode {
    sim.inject_fault(f);
    StatusCode::NO_CONTENT
}

async fn set_budgets(State(sim): State<SimGraph>, Json(b): Json<Vec<Budget>>) -> StatusCode {
    sim.set_budgets(b);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Approve {
    user_code: String,
    upn: String,
}

async fn approve(State(sim): State<SimGraph>, Json(a): Json<Approve>) -> StatusCode {
    found(sim.approve_device_code(&a.user_code, &a.upn))
}
