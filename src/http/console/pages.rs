//! The console's handlers: pages rendered from the templates in `templates/`, the live
//! updates (server-sent events carrying re-rendered HTML), sign-in and sign-out, and the
//! actions.

use std::convert::Infallible;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::SignInState;
use super::session::{Role, Session, csrf_ok};
use super::{ConsoleAuthMode, ConsoleState, Inner};
use crate::http::people::{self, PeopleParams};
use crate::model::health::{ComponentHealth, HealthState};
use crate::model::{InboxPayload, ResumeUser};
use crate::runtime::{audit, reconcile};
use crate::store::people::{PeopleSort, PeopleState};

/// How often a live page is re-rendered to see whether it changed: well inside the two
/// seconds in which a change must show, and one page query per second per open page.
const LIVE_REFRESH: Duration = Duration::from_secs(1);

/// Decisions shown on a person's page.
const PERSON_DECISIONS: u32 = 50;

/// Refresh tokens of sync accounts lapse after this many days without use (the identity
/// platform's documented inactivity lifetime); the health page counts down from the last
/// refresh. Amber from [`ACCOUNT_AMBER_DAYS`] days before.
const REFRESH_TOKEN_DAYS: i64 = 90;
const ACCOUNT_AMBER_DAYS: i64 = 14;

pub(super) fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, text) in [
        ("base.html", include_str!("templates/base.html")),
        ("team.html", include_str!("templates/team.html")),
        ("rows.html", include_str!("templates/rows.html")),
        ("health.html", include_str!("templates/health.html")),
        ("lights.html", include_str!("templates/lights.html")),
        ("person.html", include_str!("templates/person.html")),
        ("message.html", include_str!("templates/message.html")),
        ("account.html", include_str!("templates/account.html")),
        (
            "account_state.html",
            include_str!("templates/account_state.html"),
        ),
    ] {
        env.add_template(name, text)
            .expect("console templates are valid");
    }
    env.add_filter("tel", |s: String| -> String {
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    });
    env.add_filter("when", |s: Option<String>| -> String {
        s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| {
                t.with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M:%S UTC")
                    .to_string()
            })
            .unwrap_or_default()
    });
    env
}

fn inner(state: &ConsoleState) -> &Arc<Inner> {
    state
        .inner
        .as_ref()
        .expect("console routes exist only when it is on")
}

impl Inner {
    fn render(&self, name: &str, ctx: Value) -> Response {
        match self
            .templates
            .get_template(name)
            .and_then(|t| t.render(&ctx))
        {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "console page failed to render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the page could not be shown",
                )
                    .into_response()
            }
        }
    }

    fn message(
        &self,
        status: StatusCode,
        title: &str,
        message: &str,
        link: Option<(&str, &str)>,
    ) -> Response {
        let ctx = json!({
            "title": title,
            "message": message,
            "link": link.map(|l| l.0),
            "link_text": link.map(|l| l.1),
        });
        (status, self.render("message.html", ctx)).into_response()
    }

    /// The signed-in person, or where to send them.
    fn viewer(&self, headers: &HeaderMap) -> Result<Session, Box<Response>> {
        match &self.auth {
            ConsoleAuthMode::None => Ok(self.local.clone()),
            ConsoleAuthMode::Entra(_) => self
                .sessions
                .current(headers)
                .ok_or_else(|| Box::new(Redirect::to("/console/sign-in").into_response())),
        }
    }

    /// The signed-in operator whose form carries their CSRF token.
    fn operator(&self, headers: &HeaderMap, csrf: &str) -> Result<Session, Box<Response>> {
        let s = self.viewer(headers).map_err(|_| {
            Box::new(self.message(
                StatusCode::UNAUTHORIZED,
                "Signed out",
                "Sign in to act.",
                Some(("/console/sign-in", "Sign in")),
            ))
        })?;
        if !csrf_ok(&s, csrf) {
            return Err(Box::new(self.message(
                StatusCode::FORBIDDEN,
                "Refused",
                "The form is out of date; reload the page and try again.",
                Some(("/", "Team")),
            )));
        }
        if s.role != Role::Operator {
            return Err(Box::new(self.message(
                StatusCode::FORBIDDEN,
                "Refused",
                "Viewers may look but not act; ask for the operator role.",
                Some(("/", "Team")),
            )));
        }
        Ok(s)
    }
}

/// The signed-in person; without one a page answers with the way to sign in.
pub(super) struct Viewer(Session);

impl<S> axum::extract::FromRequestParts<S> for Viewer
where
    S: Send + Sync,
    ConsoleState: axum::extract::FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Response> {
        let console = <ConsoleState as axum::extract::FromRef<S>>::from_ref(state);
        inner(&console)
            .viewer(&parts.headers)
            .map(Viewer)
            .map_err(|r| *r)
    }
}

fn session_json(s: &Session) -> Value {
    json!({ "name": s.name, "user": s.user, "role": s.role, "csrf": s.csrf })
}

/// A person's JSON with the words the page shows for the sync state.
fn with_words(mut p: Value, now: DateTime<Utc>) -> Value {
    let secs_until = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| (t.with_timezone(&Utc) - now).num_seconds().max(0))
    };
    let words = match p["sync_state"].as_str().unwrap_or("") {
        "ok" => "ok".to_owned(),
        "holding" => match secs_until(&p["holding_until"]) {
            Some(s) => format!("holding, {s} s left"),
            None => "holding".to_owned(),
        },
        "suspended" => match secs_until(&p["suspended_until"]) {
            Some(s) => format!("suspended: flapping, resumes in {s} s"),
            None => "suspended: flapping".to_owned(),
        },
        "unmatched" => "unmatched: no agent".to_owned(),
        "no_teams_user" => "unmatched: no Teams user".to_owned(),
        other => other.to_owned(),
    };
    p["sync_words"] = json!(words);
    p["activity_words"] = activity_words(&p["contact_activity"]).map_or(Value::Null, Value::from);
    p
}

/// The contact activity in words, with the channel when known: "on a contact (voice)".
fn activity_words(a: &Value) -> Option<String> {
    let words = match a["activity"].as_str()? {
        "offered" => "contact offered",
        "on_contact" => "on a contact",
        "after_contact_work" => "after-contact work",
        "idle" => "idle",
        "logged_out" => "logged out",
        other => other,
    };
    Some(match a["channel"].as_str() {
        Some(c) => format!("{words} ({c})"),
        None => words.to_owned(),
    })
}

struct TeamView {
    people: Vec<Value>,
    total: u64,
    pages: u64,
    q: crate::store::people::PeopleQuery,
}

async fn team_view(inner: &Inner, params: &PeopleParams) -> Result<TeamView, Box<Response>> {
    let now = Utc::now();
    let q = params
        .to_query(now)
        .map_err(|e| Box::new(e.into_response()))?;
    let page = people::page(inner.store.as_ref(), &q)
        .await
        .map_err(|e| Box::new(e.into_response()))?;
    let list = people::page_json(&page, &q);
    let people = list["users"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|p| with_words(p, now))
        .collect();
    let pages = page.total.div_ceil(u64::from(q.per_page)).max(1);
    Ok(TeamView {
        people,
        total: page.total,
        pages,
        q,
    })
}

fn query_string(q: &crate::store::people::PeopleQuery, page: u32) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.query.is_empty() {
        s.append_pair("query", &q.query);
    }
    if let Some(st) = q.state {
        s.append_pair("state", st.as_str());
    }
    if let Some(c) = &q.connector {
        s.append_pair("connector", c);
    }
    if q.sort != PeopleSort::Name {
        s.append_pair("sort", q.sort.as_str());
    }
    s.append_pair("page", &page.to_string());
    s.append_pair("per_page", &q.per_page.to_string());
    s.finish()
}

pub(super) async fn team(
    State(state): State<ConsoleState>,
    Viewer(session): Viewer,
    Query(params): Query<PeopleParams>,
) -> Response {
    let inner = inner(&state);
    let view = match team_view(inner, &params).await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let q = &view.q;
    let ctx = json!({
        "title": "Team",
        "page": "team",
        "session": session_json(&session),
        "operator": session.role == Role::Operator,
        "people": view.people,
        "total": view.total,
        "pages": view.pages,
        "states": PeopleState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "sorts": PeopleSort::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "params": {
            "query": q.query, "state": q.state.map(|s| s.as_str()),
            "connector": q.connector, "sort": q.sort.as_str(), "page": q.page, "per_page": q.per_page,
        },
        "query_string": query_string(q, q.page),
        "prev_link": (q.page > 1).then(|| format!("/?{}", query_string(q, q.page - 1))),
        "next_link": (u64::from(q.page) < view.pages).then(|| format!("/?{}", query_string(q, q.page + 1))),
    });
    inner.render("team.html", ctx)
}

/// An event stream that sends `render()`'s HTML each time it differs from the last sent, and
/// ends when the daemon shuts down.
fn live<F, Fut>(inner: Arc<Inner>, render: F) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn(Arc<Inner>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    let start = (inner, render, None::<u64>, true);
    let stream = futures::stream::unfold(start, |(inner, render, last, mut first)| async move {
        loop {
            if !first {
                tokio::select! {
                    _ = inner.shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(LIVE_REFRESH) => {}
                }
            }
            first = false;
            if let Some(html) = render(inner.clone()).await {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                html.hash(&mut h);
                let hash = h.finish();
                if last != Some(hash) {
                    let event = Event::default().event("html").data(html);
                    return Some((Ok(event), (inner, render, Some(hash), false)));
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

pub(super) async fn team_events(
    State(state): State<ConsoleState>,
    Viewer(session): Viewer,
    Query(params): Query<PeopleParams>,
) -> Response {
    let inner = inner(&state).clone();
    live(inner, move |inner: Arc<Inner>| {
        let params = params.clone();
        let session = session.clone();
        async move {
            let view = team_view(&inner, &params).await.ok()?;
            let ctx = json!({
                "people": view.people,
                "session": session_json(&session),
                "operator": session.role == Role::Operator,
            });
            inner
                .templates
                .get_template("rows.html")
                .and_then(|t| t.render(&ctx))
                .ok()
        }
    })
    .into_response()
}

fn light_of(state: HealthState) -> (&'static str, &'static str) {
    match state {
        HealthState::Up => ("green", "ok"),
        HealthState::Degraded => ("amber", "degraded"),
        HealthState::Down => ("red", "down"),
    }
}

fn lights_json(checks: &[ComponentHealth]) -> Vec<Value> {
    checks
        .iter()
        .map(|c| {
            let (light, word) = light_of(c.state);
            json!({ "name": c.name, "light": light, "word": word, "detail": c.detail })
        })
        .collect()
}

pub(super) async fn health(State(state): State<ConsoleState>, Viewer(session): Viewer) -> Response {
    let inner = inner(&state);
    let checks = inner.readiness.checks().await;
    let now = Utc::now();
    let accounts: Vec<Value> = inner
        .store
        .list_accounts()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|a| {
            let since = a.last_refresh_at.unwrap_or(a.created_at);
            let left = REFRESH_TOKEN_DAYS - (now - since).num_days();
            let lapsed = a.state != "healthy" || left <= 0;
            let (light, word) = if lapsed {
                ("red", "down")
            } else if left <= ACCOUNT_AMBER_DAYS {
                ("amber", "degraded")
            } else {
                ("green", "ok")
            };
            let lapse = if lapsed {
                "sign in again".to_owned()
            } else {
                format!("lapses in {left} days without use")
            };
            json!({ "upn": a.upn, "state": a.state, "light": light, "light_word": word, "lapse": lapse })
        })
        .collect();
    let subscriptions = super::health::subscriptions_json(
        &inner.store.list_subscriptions().await.unwrap_or_default(),
        now,
    );
    let credentials = super::health::credential_lights(inner.accounts.graph(), now);
    let report = reconcile::last_report(inner.store.as_ref())
        .await
        .ok()
        .flatten()
        .and_then(|r| serde_json::to_string_pretty(&r).ok());
    let ctx = json!({
        "title": "Health",
        "page": "health",
        "operator": session.role == Role::Operator,
        "session": session_json(&session),
        "checks": lights_json(&checks),
        "accounts": accounts,
        "subscriptions": subscriptions,
        "credentials": credentials,
        "report": report,
    });
    inner.render("health.html", ctx)
}

pub(super) async fn health_events(State(state): State<ConsoleState>, _viewer: Viewer) -> Response {
    let inner = inner(&state).clone();
    live(inner, |inner: Arc<Inner>| async move {
        let checks = inner.readiness.checks().await;
        inner
            .templates
            .get_template("lights.html")
            .and_then(|t| t.render(json!({ "checks": lights_json(&checks) })))
            .ok()
    })
    .into_response()
}

pub(super) async fn person(
    State(state): State<ConsoleState>,
    Viewer(session): Viewer,
    Path(id): Path<String>,
) -> Response {
    let inner = inner(&state);
    let user = match inner.store.get_user(&id).await {
        Ok(u) => u,
        Err(crate::store::StoreError::NotFound) => {
            return inner.message(
                StatusCode::NOT_FOUND,
                "Not found",
                "Nobody has that id.",
                Some(("/", "Team")),
            );
        }
        Err(e) => return crate::http::ApiError::Internal(e.to_string()).into_response(),
    };
    let params = PeopleParams {
        query: Some(user.upn.clone()),
        per_page: Some("1000".into()),
        ..PeopleParams::default()
    };
    let person = match team_view(inner, &params).await {
        Ok(v) => v
            .people
            .into_iter()
            .find(|p| p["teams_id"] == json!(id))
            .unwrap_or_else(|| json!({ "upn": user.upn, "display_name": user.display_name, "sync_words": "inactive" })),
        Err(r) => return *r,
    };
    let decisions = audit::explain(inner.store.as_ref(), &id, PERSON_DECISIONS)
        .await
        .unwrap_or_default();
    let ctx = json!({
        "title": person["display_name"].as_str().unwrap_or(&user.upn),
        "page": "person",
        "session": session_json(&session),
        "person": person,
        "decisions": decisions,
    });
    inner.render("person.html", ctx)
}

pub(super) async fn sign_in(State(state): State<ConsoleState>) -> Response {
    let inner = inner(&state);
    match &inner.auth {
        ConsoleAuthMode::None => Redirect::to("/").into_response(),
        ConsoleAuthMode::Entra(entra) => {
            Redirect::to(&entra.start(&inner.sessions)).into_response()
        }
    }
}

#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) async fn callback(
    State(state): State<ConsoleState>,
    Query(cb): Query<Callback>,
) -> Response {
    let inner = inner(&state);
    let ConsoleAuthMode::Entra(entra) = &inner.auth else {
        return Redirect::to("/").into_response();
    };
    let again = Some(("/console/sign-in", "Sign in again"));
    if let Some(e) = cb.error {
        tracing::info!(error = %e, "console sign-in refused by the identity platform");
        return inner.message(
            StatusCode::FORBIDDEN,
            "Not signed in",
            "The sign-in was cancelled or refused.",
            again,
        );
    }
    let (Some(code), Some(st)) = (cb.code, cb.state) else {
        return inner.message(
            StatusCode::BAD_REQUEST,
            "Not signed in",
            "The sign-in answer is incomplete.",
            again,
        );
    };
    match entra.finish(&inner.sessions, &st, &code).await {
        Ok(who) => {
            tracing::info!(user = %who.user, role = ?who.role, "console sign-in");
            let cookie = inner.sessions.open(who.user, who.name, who.role);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(super::signin::SignInError::NoRole(user)) => {
            tracing::warn!(user = %user, "console sign-in refused: no console role");
            inner.message(
                StatusCode::FORBIDDEN,
                "No access",
                &format!("{user} has no role that lets them use this console. Ask an administrator to assign the viewer or operator app role."),
                None,
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in failed");
            inner.message(
                StatusCode::FORBIDDEN,
                "Not signed in",
                "The sign-in could not be completed.",
                again,
            )
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A form that carries the session's CSRF token.
pub(super) trait WithCsrf {
    fn csrf(&self) -> &str;
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// An action's form, taken from a signed-in operator whose form carries their CSRF token.
pub(super) struct Act<F>(Session, F);

impl<S, F> axum::extract::FromRequest<S> for Act<F>
where
    S: Send + Sync,
    ConsoleState: axum::extract::FromRef<S>,
    F: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let console = <ConsoleState as axum::extract::FromRef<S>>::from_ref(state);
        let headers = req.headers().clone();
        let Form(form) = Form::<F>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let session = inner(&console)
            .operator(&headers, form.csrf())
            .map_err(|r| *r)?;
        Ok(Act(session, form))
    }
}

pub(super) async fn sign_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let inner = inner(&state);
    if let Ok(s) = inner.viewer(&headers)
        && !csrf_ok(&s, &f.csrf)
    {
        return inner.message(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form is out of date; reload the page.",
            Some(("/", "Team")),
        );
    }
    let cookie = inner.sessions.close(&headers);
    (
        [(header::SET_COOKIE, cookie)],
        inner.message(
            StatusCode::OK,
            "Signed out",
            "You are signed out.",
            Some(("/console/sign-in", "Sign in")),
        ),
    )
        .into_response()
}

pub(super) async fn reconcile(
    State(state): State<ConsoleState>,
    Act(s, _f): Act<CsrfForm>,
) -> Response {
    let inner = inner(&state);
    if let Err(e) = reconcile::request(&inner.inbox).await {
        return crate::http::ApiError::Internal(e.to_string()).into_response();
    }
    tracing::info!(by = %s.user, action = "reconcile", "console action");
    inner.message(
        StatusCode::ACCEPTED,
        "Reconciliation requested",
        &format!(
            "A reconciliation was requested by {}; its report shows on the health page.",
            s.user
        ),
        Some(("/", "Back to the team")),
    )
}

#[derive(Deserialize)]
pub(super) struct ResumeForm {
    #[serde(default)]
    csrf: String,
    user: String,
}

impl WithCsrf for ResumeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn resume(
    State(state): State<ConsoleState>,
    Act(s, f): Act<ResumeForm>,
) -> Response {
    let inner = inner(&state);
    let item = InboxPayload::ResumeUser(ResumeUser {
        user: f.user.clone(),
        by: s.user.clone(),
    });
    if let Err(e) = inner.inbox.push(vec![item]).await {
        return crate::http::ApiError::Internal(e.to_string()).into_response();
    }
    tracing::info!(by = %s.user, user = %f.user, action = "resume", "console action");
    inner.message(
        StatusCode::ACCEPTED,
        "Resume requested",
        &format!("Sync resumes for {} (asked by {}).", f.user, s.user),
        Some(("/", "Back to the team")),
    )
}

pub(super) async fn account_sign_in(
    State(state): State<ConsoleState>,
    Act(s, _f): Act<CsrfForm>,
) -> Response {
    let inner = inner(&state);
    match inner
        .accounts
        .start(inner.store.clone(), s.user.clone(), inner.shutdown.clone())
    {
        Ok(id) => {
            tracing::info!(by = %s.user, action = "account_sign_in_started", "console action");
            Redirect::to(&format!("/console/accounts/sign-in/{id}")).into_response()
        }
        Err(why) => inner.message(
            StatusCode::CONFLICT,
            "Cannot sign in",
            &format!("A sync account cannot be signed in: {why}."),
            Some(("/console/health", "Back to health")),
        ),
    }
}

fn account_state_json(state: Option<SignInState>) -> Value {
    match state {
        None => {
            json!({ "kind": "failed", "reason": "this sign-in is unknown (the daemon restarted?)" })
        }
        Some(SignInState::Starting) => json!({ "kind": "starting" }),
        Some(SignInState::Waiting { url, code }) => {
            json!({ "kind": "waiting", "url": url, "code": code })
        }
        Some(SignInState::Done(upn)) => json!({ "kind": "done", "upn": upn }),
        Some(SignInState::Failed(reason)) => json!({ "kind": "failed", "reason": reason }),
    }
}

pub(super) async fn account_sign_in_page(
    State(state): State<ConsoleState>,
    Viewer(session): Viewer,
    Path(id): Path<String>,
) -> Response {
    let inner = inner(&state);
    let ctx = json!({
        "title": "Sign in a sync account",
        "page": "health",
        "session": session_json(&session),
        "id": id,
        "state": account_state_json(inner.accounts.state(&id)),
    });
    inner.render("account.html", ctx)
}

pub(super) async fn account_sign_in_events(
    State(state): State<ConsoleState>,
    _viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    let inner = inner(&state).clone();
    live(inner, move |inner: Arc<Inner>| {
        let id = id.clone();
        async move {
            let ctx = json!({ "state": account_state_json(inner.accounts.state(&id)) });
            inner
                .templates
                .get_template("account_state.html")
                .and_then(|t| t.render(ctx))
                .ok()
        }
    })
    .into_response()
}

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
        .into_response()
}

pub(super) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
        .into_response()
}
