//! Signing a sync account in again from the console (ConnectPath's "Teams Login" without a
//! CLI): the device-code flow of `presence-bridge accounts add`, run by the daemon; the page
//! shows the URL and code and notices when the sign-in completes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::graph::accounts::{AccountTokens, DeviceCodePrompt};
use crate::graph::config::GraphConfig;
use crate::model::health::HealthRegistry;
use crate::store::Store;

/// Where one sign-in started from the console stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInState {
    /// Asking the identity platform for a code.
    Starting,
    /// Waiting for the person: open the URL, enter the code.
    Waiting {
        url: String,
        code: String,
    },
    /// Signed in as this user principal name.
    Done(String),
    Failed(String),
}

/// The sign-ins started from the console, by a random id (kept until the process ends; they
/// are few).
#[derive(Clone)]
pub struct AccountSignIns {
    graph: Option<Arc<GraphConfig>>,
    health: HealthRegistry,
    running: Arc<Mutex<HashMap<String, SignInState>>>,
}

impl AccountSignIns {
    /// `graph` is `None` when the Graph side is off (no sign-in to offer).
    pub fn new(graph: Option<Arc<GraphConfig>>, health: HealthRegistry) -> Self {
        Self {
            graph,
            health,
            running: Arc::default(),
        }
    }

    /// The Graph side's configuration, when it is on.
    pub(super) fn graph(&self) -> Option<&GraphConfig> {
        self.graph.as_deref()
    }

    pub fn state(&self, id: &str) -> Option<SignInState> {
        self.running.lock().expect("sign-ins lock").get(id).cloned()
    }

    fn set(&self, id: &str, state: SignInState) {
        self.running
            .lock()
            .expect("sign-ins lock")
            .insert(id.to_owned(), state);
    }

    /// Starts a device-code sign-in in the background (ended by `shutdown`); returns its id.
    pub fn start(
        &self,
        store: Arc<dyn Store>,
        by: String,
        shutdown: CancellationToken,
    ) -> Result<String, String> {
        let graph = self
            .graph
            .clone()
            .ok_or_else(|| "the Graph side is not configured".to_owned())?;
        let tokens = AccountTokens::new(&graph, store, Some(self.health.clone()))
            .map_err(|e| e.to_string())?;
        let id = super::session::random_token();
        self.set(&id, SignInState::Starting);
        let me = self.clone();
        let key = id.clone();
        tokio::spawn(async move {
            let shown = me.clone();
            let shown_key = key.clone();
            let run = tokens.add_account(move |p: &DeviceCodePrompt| {
                shown.set(
                    &shown_key,
                    SignInState::Waiting {
                        url: p.verification_uri.clone(),
                        code: p.user_code.clone(),
                    },
                );
            });
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = run => r,
            };
            match outcome {
                Ok(rec) => {
                    tracing::info!(by = %by, account = %rec.upn, action = "account_sign_in", "console action");
                    me.set(&key, SignInState::Done(rec.upn));
                }
                Err(e) => {
                    tracing::warn!(by = %by, error = %e, "console: sync account sign-in failed");
                    me.set(
                        &key,
                        SignInState::Failed("the sign-in did not complete".into()),
                    );
                }
            }
        });
        Ok(id)
    }
}
