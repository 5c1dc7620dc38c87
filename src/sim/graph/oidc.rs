//! The simulated identity platform's OpenID Connect sign-in for web apps: the authorization
//! endpoint (a plain login form for the tenant's users instead of Microsoft's pages), the
//! `authorization_code` grant of the token endpoint (with PKCE) returning a signed `id_token`,
//! the discovery document and the signing keys.
//!
//! From the Microsoft identity platform documentation:
//! - authorization code flow and PKCE (`response_type=code`, `code_challenge`,
//!   `code_challenge_method=S256`, `state`, `nonce`; the redirect back with `code` and `state`;
//!   the code redeemed with `grant_type=authorization_code`, `code_verifier`, `redirect_uri`):
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow>
//! - OpenID Connect on the platform (discovery document at
//!   `/{tenant}/v2.0/.well-known/openid-configuration`, keys at `/{tenant}/discovery/v2.0/keys`,
//!   issuer `…/{tenant-id}/v2.0`): <https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc>
//! - ID token claims (`aud` = the app's client id, `iss`, `iat`, `nbf`, `exp`, `nonce`, `oid`,
//!   `tid`, `preferred_username`, `name`, and `roles` for app roles assigned to the user,
//!   `groups` when the app asks for group claims):
//!   <https://learn.microsoft.com/en-us/entra/identity-platform/id-tokens>
//!
//! Not modelled: consent, `prompt`, `login_hint`, `response_mode` other than `query`, MFA,
//! per-user passwords (every user signs in with [`SIM_SIGN_IN_PASSWORD`]), the groups overage
//! claim, client authentication at the token endpoint for this grant beyond the client id.

use std::collections::HashMap;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

use super::SimGraph;
use super::tokens::TokenIssuer;

/// The password every simulated user signs in with on the login form.
pub const SIM_SIGN_IN_PASSWORD: &str = "demo";

/// How long an authorization code may be redeemed (the platform's are short-lived too).
const CODE_LIFETIME_SECS: i64 = 300;

/// A code handed out by the authorization endpoint, not yet redeemed.
#[derive(Debug, Clone)]
pub struct PendingCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct OidcState {
    pub codes: HashMap<String, PendingCode>,
    /// App roles assigned to users (user id → role values) for the `roles` claim.
    pub app_roles: HashMap<String, Vec<String>>,
}

impl SimGraph {
    /// Assigns app roles (their values, e.g. `PresenceBridge.Operator`) to a user by UPN.
    pub fn assign_app_roles(&self, upn: &str, roles: &[&str]) -> bool {
        let mut t = self.lock();
        let Some(id) = t.user_id_by_upn(upn) else {
            return false;
        };
        t.oidc
            .app_roles
            .insert(id, roles.iter().map(|r| (*r).to_owned()).collect());
        true
    }

    /// `{origin}/{tenant}/v2.0`, the issuer of the id tokens.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.origin, self.options.tenant_id)
    }
}

impl super::Tenant {
    /// The id of the user with this user principal name (compared case-insensitively).
    pub fn user_id_by_upn(&self, upn: &str) -> Option<String> {
        self.users
            .values()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
            .map(|u| u.id.clone())
    }
}

pub(super) fn routes() -> Router<SimGraph> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(authorize_form).post(authorize_submit),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(discovery),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    client_id: String,
    response_type: String,
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
}

fn bad_request(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
        .replace('>', "&gt;")
}

fn check_request(sim: &SimGraph, tenant: &str, p: &AuthorizeParams) -> Result<(), Box<Response>> {
    let refusal = if tenant != sim.options.tenant_id {
        Some("AADSTS90002: Tenant not found.")
    } else if p.client_id != sim.options.client_id {
        Some("AADSTS700016: Application not found.")
    } else if p.response_type != "code" {
        Some("AADSTS70005: response_type must be code.")
    } else if !p.scope.split(' ').any(|s| s == "openid") {
        Some("AADSTS900144: the scope must include openid.")
    } else if p.code_challenge.is_none() || p.code_challenge_method.as_deref() != Some("S256") {
        Some("AADSTS9002325: Proof Key for Code Exchange (S256) is required.")
    } else {
        None
    };
    match refusal {
        Some(message) => Err(Box::new(bad_request(message))),
        None => Ok(()),
    }
}

fn login_page(p: &AuthorizeParams, error: Option<&str>) -> Response {
    let hidden: String = [
        ("client_id", Some(p.client_id.as_str())),
        ("response_type", Some(p.response_type.as_str())),
        ("redirect_uri", Some(p.redirect_uri.as_str())),
        ("scope", Some(p.scope.as_str())),
        ("state", p.state.as_deref()),
        ("nonce", p.nonce.as_deref()),
        ("code_challenge", p.code_challenge.as_deref()),
        ("code_challenge_method", p.code_challenge_method.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.map(|v| format!(r#"<input type="hidden" name="{k}" value="{}">"#, escape(v)))
    })
    .collect();
    let error = error
        .map(|e| format!(r#"<p role="alert" id="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in (simulated tenant)</title></head>
<body><main><h1>Sign in</h1><p>Simulated Microsoft Entra ID tenant: sign in as one of its users.</p>{error}
<form method="post">{hidden}
<p><label for="login">User principal name</label> <input id="login" name="login" type="email" autocomplete="username" required></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button id="submit" type="submit">Sign in</button></p></form></main></body></html>"#
    ))
    .into_response()
}

async fn authorize_form(
    State(sim): State<SimGraph>,
    Path(tenant): Path<String>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    if let Err(r) = check_request(&sim, &tenant, &p) {
        return *r;
    }
    login_page(&p, None)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    login: String,
    password: String,
    #[serde(flatten)]
    request: AuthorizeParams,
}

async fn authorize_submit(
    State(sim): State<SimGraph>,
    Path(tenant): Path<String>,
    Form(f): Form<LoginForm>,
) -> Response {
    let p = f.request;
    if let Err(r) = check_request(&sim, &tenant, &p) {
        return *r;
    }
    let now = sim.now();
    let user = {
        let t = sim.lock();
        t.user_id_by_upn(f.login.trim()).filter(|id| {
            t.users
                .get(id)
                .is_some_and(|u| u.account_enabled && !u.deleted)
        })
    };
    let Some(user_id) = user.filter(|_| f.password == SIM_SIGN_IN_PASSWORD) else {
        return login_page(&p, Some("Your account or password is incorrect."));
    };
    let code = format!("sim-code-{}", uuid::Uuid::new_v4().simple());
    sim.lock().oidc.codes.insert(
        code.clone(),
        PendingCode {
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            code_challenge: p.code_challenge.clone().unwrap_or_default(),
            nonce: p.nonce.clone(),
            user_id,
            expires_at: now + chrono::Duration::seconds(CODE_LIFETIME_SECS),
        },
    );
    let Ok(mut target) = url::Url::parse(&p.redirect_uri) else {
        return bad_request("AADSTS50011: the redirect URI is not valid.");
    };
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(s) = &p.state {
        target.query_pairs_mut().append_pair("state", s);
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

impl SimGraph {
    /// Redeems an authorization code (token endpoint, `grant_type=authorization_code`):
    /// the client id and redirect URI must be those of the request, and the SHA-256 of the
    /// `code_verifier` must be the `code_challenge`. Answers the token response with an
    /// `id_token` signed by the simulator key.
    pub(super) fn redeem_code(&self, tenant: &str, form: &HashMap<String, String>) -> Response {
        let error = |code: u32, msg: &str| {
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "error": "invalid_grant",
                    "error_description": format!("AADSTS{code}: {msg}"),
                    "error_codes": [code],
                })),
            )
                .into_response()
        };
        if tenant != self.options.tenant_id {
            return error(90002, "Tenant not found.");
        }
        let code = form.get("code").cloned().unwrap_or_default();
        let now = self.now();
        let Some(pending) = self.lock().oidc.codes.remove(&code) else {
            return error(
                70008,
                "The provided authorization code is invalid or was used.",
            );
        };
        if pending.expires_at <= now {
            return error(70008, "The provided authorization code has expired.");
        }
        if form.get("client_id") != Some(&pending.client_id) {
            return error(700016, "The code was issued to another application.");
        }
        if form.get("redirect_uri") != Some(&pending.redirect_uri) {
            return error(
                50148,
                "The redirect_uri does not match the one of the request.",
            );
        }
        let verifier = form.get("code_verifier").cloned().unwrap_or_default();
        let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        if challenge != pending.code_challenge {
            return error(
                501481,
                "The code_verifier does not match the code_challenge.",
            );
        }
        let (upn, name, roles, groups) = {
            let t = self.lock();
            let u = t.users.get(&pending.user_id);
            let groups: Vec<String> = t
                .groups
                .iter()
                .filter(|(_, members)| members.contains(&pending.user_id))
                .map(|(g, _)| g.clone())
                .collect();
            (
                u.map(|u| u.user_principal_name.clone()).unwrap_or_default(),
                u.and_then(|u| u.display_name.clone()),
                t.oidc
                    .app_roles
                    .get(&pending.user_id)
                    .cloned()
                    .unwrap_or_default(),
                groups,
            )
        };
        let iat = now.timestamp();
        let mut claims = json!({
            "aud": pending.client_id,
            "iss": self.issuer(),
            "iat": iat,
            "nbf": iat,
            "exp": iat + 3600,
            "oid": pending.user_id,
            "sub": pending.user_id,
            "tid": self.options.tenant_id,
            "preferred_username": upn,
            "name": name,
            "ver": "2.0",
        });
        if let Some(n) = pending.nonce {
            claims["nonce"] = json!(n);
        }
        if !roles.is_empty() {
            claims["roles"] = json!(roles);
        }
        if !groups.is_empty() {
            claims["groups"] = json!(groups);
        }
        let id_token = TokenIssuer::new().sign(&claims);
        let mut body = self.issue("authorization_code", Some(pending.user_id));
        body["id_token"] = json!(id_token);
        body["scope"] = json!("openid profile");
        axum::Json(body).into_response()
    }
}

async fn discovery(State(sim): State<SimGraph>, Path(tenant): Path<String>) -> Response {
    let base = format!("{}/{tenant}", sim.origin);
    axum::Json(json!({
        "issuer": sim.issuer(),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
    .into_response()
}

async fn keys() -> Response {
    axum::Json(TokenIssuer::new().jwks().clone()).into_response()
}
