//! The simulated identity platform: `/{tenant}/oauth2/v2.0/token` (client credentials with a
//! secret or a verified client assertion, device code, refresh token with rotation) and
//! `/{tenant}/oauth2/v2.0/devicecode`, plus the bearer check every Graph route uses.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{SimGraph, graph_error};

/// A token the simulator issued.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub expires_at: DateTime<Utc>,
    /// The signed-in user for delegated tokens; `None` for app tokens.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub user_code: String,
    pub approved_user: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Why a user's refresh tokens stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDenial {
    /// AADSTS50173-style: the grant was revoked (password change, admin revoke).
    Revoked,
    /// AADSTS700082-style: the refresh token expired from inactivity.
    Expired,
}

#[derive(Debug, Default)]
pub struct IdentityState {
    pub access_tokens: HashMap<String, IssuedToken>,
    /// When set, every bearer token is refused (401), even fresh ones.
    pub reject_all_tokens: bool,
    /// Token requests answered with a token, by grant type.
    pub tokens_issued: HashMap<String, u32>,
    pub used_jtis: HashSet<String>,
    pub device_codes: HashMap<String, DeviceCode>,
    /// Live refresh tokens → user id. A used one is removed (rotation).
    pub refresh_tokens: HashMap<String, String>,
    pub refresh_denied: HashMap<String, RefreshDenial>,
}

const DEVICE_CODE_LIFETIME_SECS: i64 = 900;
/// Polling interval the device-code answer asks for.
const DEVICE_CODE_INTERVAL_SECS: u64 = 1;

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(devicecode))
}

/// The identity platform's error shape.
fn oauth_error(error: &str, code: u32, description: &str) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: {id}"),
        "error_codes": [code],
        "timestamp": Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string(),
        "trace_id": id,
        "correlation_id": uuid::Uuid::new_v4().to_string(),
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

impl SimGraph {
    /// Checks the bearer token; `Ok(user)` for delegated tokens, `Ok(None)` for app tokens.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let now = self.now();
        let t = self.lock();
        let denied = || {
            Box::new(graph_error(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token is empty, invalid or has expired.",
            ))
        };
        if t.identity.reject_all_tokens {
            return Err(denied());
        }
        match token.and_then(|tok| t.identity.access_tokens.get(tok)) {
            Some(it) if it.expires_at > now => Ok(it.user_id.clone()),
            _ => Err(denied()),
        }
    }

    /// Forgets every issued access token (the next call with one gets 401).
    pub fn revoke_access_tokens(&self) {
        self.lock().identity.access_tokens.clear();
    }

    /// Refuses all bearer tokens while `on`.
    pub fn reject_all_tokens(&self, on: bool) {
        self.lock().identity.reject_all_tokens = on;
    }

    /// Token requests answered with a token for `grant_type`.
    pub fn tokens_issued(&self, grant_type: &str) -> u32 {
        *self
            .lock()
            .identity
            .tokens_issued
            .get(grant_type)
            .unwrap_or(&0)
    }

    /// Signs in `upn` for a pending device code (as the person would in a browser).
    pub fn approve_device_code(&self, user_code: &str, upn: &str) -> bool {
        let mut t = self.lock();
        let Some(user_id) = t.user_id_by_upn(upn) else {
            return false;
        };
        match t
            .identity
            .device_codes
            .values_mut()
            .find(|d| d.user_code == user_code)
        {
            Some(d) => {
                d.approved_user = Some(user_id);
                true
            }
            None => false,
        }
    }

    /// Makes a user's refresh tokens fail (revoked or expired); `None` lets them work again.
    pub fn deny_refresh(&self, user_id: &str, denial: Option<RefreshDenial>) {
        let mut t = self.lock();
        match denial {
            Some(d) => t.identity.refresh_denied.insert(user_id.to_owned(), d),
            None => t.identity.refresh_denied.remove(user_id),
        };
    }

    pub(super) fn issue(&self, grant: &str, user_id: Option<String>) -> serde_json::Value {
        let now = self.now();
        let lifetime = self.options.token_lifetime_secs;
        let mut t = self.lock();
        let access = format!("sim-at-{}", uuid::Uuid::new_v4().simple());
        t.identity.access_tokens.insert(
            access.clone(),
            IssuedToken {
                expires_at: now + chrono::Duration::seconds(lifetime as i64),
                user_id: user_id.clone(),
            },
        );
        *t.identity
            .tokens_issued
            .entry(grant.to_owned())
            .or_default() += 1;
        let mut body =
            json!({"token_type": "Bearer", "expires_in": lifetime, "access_token": access});
        if let Some(u) = user_id {
            let refresh = format!("sim-rt-{}", uuid::Uuid::new_v4().simple());
            t.identity.refresh_tokens.insert(refresh.clone(), u);
            body["refresh_token"] = json!(refresh);
            body["scope"] = json!("Presence.Read.All");
        }
        body
    }

    fn check_client_credentials(
        &self,
        tenant: &str,
        form: &HashMap<String, String>,
    ) -> Result<(), Box<Response>> {
        let o = &self.options;
        if tenant != o.tenant_id {
            return Err(Box::new(oauth_error(
                "invalid_request",
                90002,
                "Tenant not found.",
            )));
        }
        if form.get("client_id") != Some(&o.client_id) {
            return Err(Box::new(oauth_error(
                "unauthorized_client",
                700016,
                "Application not found.",
            )));
        }
        if let Some(secret) = form.get("client_secret") {
            return match &o.client_secret {
                Some(s) if s == secret => Ok(()),
                _ => Err(Box::new(oauth_error(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided.",
                ))),
            };
        }
        match (
            form.get("client_assertion_type").map(String::as_str),
            form.get("client_assertion"),
        ) {
            (Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), Some(a)) => {
                let aud = format!("{}/{}/oauth2/v2.0/token", self.origin, o.tenant_id);
                let jti = super::control::verify_assertion(o, a, &aud).map_err(|e| {
                    Box::new(oauth_error("invalid_client", 700027, &format!("{e:#}")))
                })?;
                if !self.lock().identity.used_jtis.insert(jti) {
                    return Err(Box::new(oauth_error(
                        "invalid_client",
                        700027,
                        "The assertion was already used.",
                    )));
                }
                Ok(())
            }
            _ => Err(Box::new(oauth_error(
                "invalid_client",
                7000218,
                "The request body must contain client_assertion or client_secret.",
            ))),
        }
    }
}

async fn token(
    State(sim): State<SimGraph>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    match grant.as_str() {
        "client_credentials" => {
            if let Err(r) = sim.check_client_credentials(&tenant, &form) {
                return *r;
            }
            if !form.get("scope").is_some_and(|s| s.ends_with("/.default")) {
                return oauth_error(
                    "invalid_scope",
                    70011,
                    "The provided value for the input parameter 'scope' is not valid.",
                );
            }
            Json(sim.issue(&grant, None)).into_response()
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let now = sim.now();
            let state = sim.lock().identity.device_codes.get(&code).cloned();
            match state {
                None => oauth_error(
                    "invalid_grant",
                    70000,
                    "The provided device code is invalid.",
                ),
                Some(d) if d.expires_at <= now => {
                    oauth_error("expired_token", 70020, "The device code has expired.")
                }
                Some(DeviceCode {
                    approved_user: None,
                    ..
                }) => oauth_error(
                    "authorization_pending",
                    70016,
                    "The user has not yet finished authenticating.",
                ),
                Some(DeviceCode {
                    approved_user: Some(u),
                    ..
                }) => {
                    sim.lock().identity.device_codes.remove(&code);
                    Json(sim.issue(&grant, Some(u))).into_response()
                }
            }
        }
        "authorization_code" => sim.redeem_code(&tenant, &form),
        "refresh_token" => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            let user = sim.lock().identity.refresh_tokens.get(&rt).cloned();
            let Some(user) = user else {
                return oauth_error(
                    "invalid_grant",
                    9002313,
                    "Invalid request. The refresh token is malformed or was already used.",
                );
            };
            let denied = sim.lock().identity.refresh_denied.get(&user).copied();
            match denied {
                Some(RefreshDenial::Revoked) => oauth_error(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked.",
                ),
                Some(RefreshDenial::Expired) => oauth_error(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity.",
                ),
                None => {
                    sim.lock().identity.refresh_tokens.remove(&rt);
                    Json(sim.issue(&grant, Some(user))).into_response()
                }
            }
        }
        _ => oauth_error(
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

async fn devicecode(
    State(sim): State<SimGraph>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if tenant != sim.options.tenant_id {
        return oauth_error("invalid_request", 90002, "Tenant not found.");
    }
    if form.get("client_id") != Some(&sim.options.client_id) {
        return oauth_error("unauthorized_client", 700016, "Application not found.");
    }
    let device_code = format!("sim-dc-{}", uuid::Uuid::new_v4().simple());
    let user_code: String = uuid::Uuid::new_v4().simple().to_string()[..9].to_uppercase();
    let expires_at = sim.now() + chrono::Duration::seconds(DEVICE_CODE_LIFETIME_SECS);
    sim.lock().identity.device_codes.insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            approved_user: None,
            expires_at,
        },
    );
    let verification_uri = format!("{}/devicelogin", sim.origin);
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "expires_in": DEVICE_CODE_LIFETIME_SECS,
        "interval": DEVICE_CODE_INTERVAL_SECS,
        "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
    }))
    .into_response()
}
