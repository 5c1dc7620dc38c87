//! The operator console: server-rendered pages at `/` (team, person, health) with a little
//! hand-written JavaScript for live updates (server-sent events), sign-in with Microsoft Entra
//! ID, and the actions an operator takes (reconcile now, resume a suspended user, sign a sync
//! account in again). Templates
//! and assets are compiled into the binary; nothing is fetched from elsewhere.
//!
//! Owns only presentation and access: the data comes from the store and the readiness
//! registry, actions go through the inbox like the API's.

pub mod accounts;
pub mod config;
mod health;
mod pages;
pub mod session;
pub mod signin;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use crate::http::health::Readiness;
use crate::store::Store;
use crate::store::inbox::Inbox;
use session::{Role, Session, Sessions};
use signin::Entra;

/// How the console decides who is signed in.
pub enum ConsoleAuthMode {
    /// Everyone is an operator named `local` (loopback only; checked with the config).
    None,
    Entra(Arc<Entra>),
}

/// What the console needs, built by the application from `[console]`.
pub struct ConsoleSettings {
    pub auth: ConsoleAuthMode,
    /// Mark the session cookie `Secure` (the console is reached over https).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// Cancelled when the daemon stops: live-update streams end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Device-code sign-ins of sync accounts.
    pub accounts: accounts::AccountSignIns,
}

/// The console's sub-state; `None` inside when the console is off.
#[derive(Clone)]
pub struct ConsoleState {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    store: Arc<dyn Store>,
    inbox: Inbox,
    readiness: Readiness,
    sessions: Sessions,
    auth: ConsoleAuthMode,
    /// The session of everyone when there is no sign-in.
    local: Session,
    templates: minijinja::Environment<'static>,
    shutdown: tokio_util::sync::CancellationToken,
    accounts: accounts::AccountSignIns,
}

impl ConsoleState {
    /// A console that serves nothing.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    pub fn new(
        settings: ConsoleSettings,
        store: Arc<dyn Store>,
        inbox: Inbox,
        readiness: Readiness,
    ) -> Self {
        let sessions = Sessions::new(settings.session_ttl, settings.secure_cookies);
        let local = Session::local();
        Self {
            inner: Some(Arc::new(Inner {
                store,
                inbox,
                readiness,
                sessions,
                auth: settings.auth,
                local,
                templates: pages::templates(),
                shutdown: settings.shutdown,
                accounts: settings.accounts,
            })),
        }
    }
}

/// The console's routes (none when it is off).
pub fn routes<S>(state: ConsoleState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
{
    if state.inner.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/", get(pages::team))
        .route("/console/people/{id}", get(pages::person))
        .route("/console/health", get(pages::health))
        .route("/console/events/team", get(pages::team_events))
        .route("/console/events/health", get(pages::health_events))
        .route("/console/sign-in", get(pages::sign_in))
        .route("/console/callback", get(pages::callback))
        .route("/console/sign-out", post(pages::sign_out))
        .route("/console/actions/reconcile", post(pages::reconcile))
        .route("/console/actions/resume", post(pages::resume))
        .route(
            "/console/actions/account-sign-in",
            post(pages::account_sign_in),
        )
        .route(
            "/console/accounts/sign-in/{id}",
            get(pages::account_sign_in_page),
        )
        .route(
            "/console/events/account-sign-in/{id}",
            get(pages::account_sign_in_events),
        )
        .route("/console/assets/console.js", get(pages::script))
        .route("/console/assets/console.css", get(pages::style))
}

impl Session {
    fn local() -> Session {
        Session::new("local".into(), "local operator".into(), Role::Operator)
    }
}
