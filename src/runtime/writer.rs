//! Carries out the engine's writes: one slot per (user, side), the newest write wins. A failed
//! write is retried with backoff (honouring `Retry-After`) until it succeeds, fails for good,
//! or a newer write for the same slot supersedes it. Writes for different users run in
//! parallel; writes for one slot run in order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connectors::{CatalogStatus, ConnectorError, ContactCenter};
use crate::engine::config::WriteMode;
use crate::engine::rules::resolve;
use crate::engine::state::Action;
use crate::graph::{GraphError, PresenceApi};
use crate::model::{Side, UserId};
use crate::telemetry::Metrics;

/// First retry delay; doubled per attempt up to `sync.write_retry_max_secs`.
const FIRST_RETRY: Duration = Duration::from_millis(500);

/// A matched user as the engine uses them: where their contact-center status lives, and how
/// the log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    /// The connector's name: one allocation shared by everyone on that connector.
    pub connector: Arc<str>,
    pub agent: Box<str>,
    /// "Name (upn)".
    pub label: Box<str>,
}

/// The matched users by Teams id: one map (with compact strings) rather than an agent map and
/// a name map, which at 100,000 people held every id twice.
pub type Directory = Arc<RwLock<HashMap<UserId, Matched>>>;

struct Slot {
    generation: u64,
    action: Action,
}

/// Shared by the workers. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    presence: Arc<dyn PresenceApi>,
    connectors: HashMap<String, Arc<dyn ContactCenter>>,
    catalogs: RwLock<HashMap<String, Vec<CatalogStatus>>>,
    directory: Directory,
    slots: Mutex<HashMap<(UserId, Side), Slot>>,
    session_expiration: Duration,
    retry_max: Duration,
    metrics: Metrics,
    tracker: TaskTracker,
    cancel: CancellationToken,
    /// Shadow mode: nothing is ever written (the workers log and count would-be writes).
    shadow: bool,
}

enum Failure {
    Retry(Option<Duration>),
    Permanent(String),
}

impl From<GraphError> for Failure {
    fn from(e: GraphError) -> Self {
        if e.is_transient() {
            Failure::Retry(e.retry_after())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

impl From<ConnectorError> for Failure {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::Throttled { retry_after } => Failure::Retry(retry_after),
            e if e.is_transient() => Failure::Retry(None),
            e => Failure::Permanent(e.to_string()),
        }
    }
}

impl Writer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        presence: Arc<dyn PresenceApi>,
        connectors: HashMap<String, Arc<dyn ContactCenter>>,
        directory: Directory,
        session_expiration: Duration,
        retry_max: Duration,
        metrics: Metrics,
        cancel: CancellationToken,
        shadow: bool,
    ) -> Writer {
        Writer {
            inner: Arc::new(Inner {
                presence,
                connectors,
                catalogs: RwLock::new(HashMap::new()),
                directory,
                slots: Mutex::new(HashMap::new()),
                session_expiration,
                retry_max,
                metrics,
                tracker: TaskTracker::new(),
                cancel,
                shadow,
            }),
        }
    }

    /// Remembers a connector's catalog so statuses named in rules resolve to its ids.
    pub fn set_catalog(&self, connector: &str, catalog: Vec<CatalogStatus>) {
        self.inner
            .catalogs
            .write()
            .expect("catalog lock")
            .insert(connector.to_owned(), catalog);
    }

    /// Queues a write; supersedes any write for the same user and side not yet done.
    pub fn submit(&self, user: &str, action: Action) {
        if self.inner.shadow {
            tracing::debug!(user, ?action, "shadow mode: write not made");
            return;
        }
        let key = (user.to_owned(), action.side());
        let mut slots = self.inner.slots.lock().expect("slots lock");
        match slots.get_mut(&key) {
            Some(slot) => {
                slot.generation += 1;
                slot.action = action;
            }
            None => {
                slots.insert(
                    key.clone(),
                    Slot {
                        generation: 0,
                        action,
                    },
                );
                let inner = self.inner.clone();
                self.inner
                    .tracker
                    .spawn(async move { inner.run(key).await });
            }
        }
    }

    /// Waits for the writes in flight (used on shutdown; bounded by the caller).
    pub async fn drain(&self) {
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }

    /// Makes one write now, without a slot (used to clear sessions on shutdown).
    pub async fn write_once(&self, user: &str, action: &Action) -> bool {
        if self.inner.shadow {
            tracing::debug!(user, ?action, "shadow mode: write not made");
            return false;
        }
        self.inner.perform(user, action).await.is_ok()
    }
}

impl Inner {
    async fn run(self: Arc<Self>, key: (UserId, Side)) {
        let mut attempt: u32 = 0;
        loop {
            let (generation, action) = {
                let slots = self.slots.lock().expect("slots lock");
                let Some(slot) = slots.get(&key) else { return };
                (slot.generation, slot.action.clone())
            };
            let started = Instant::now();
            let result = self.perform(&key.0, &action).await;
            let side = key.1.as_str().to_owned();
            let outcome = match &result {
                Ok(()) => "ok",
                Err(Failure::Retry(_)) => "retry",
                Err(Failure::Permanent(_)) => "failed",
            };
            self.metrics
                .counter(
                    "engine_writes_total",
                    &[("side", side.clone()), ("result", outcome.to_owned())],
                )
                .increment(1);
            self.metrics
                .histogram("engine_write_duration_seconds", &[("side", side)])
                .record(started.elapsed().as_secs_f64());
            let delay = {
                let mut slots = self.slots.lock().expect("slots lock");
                let superseded = slots.get(&key).is_some_and(|s| s.generation != generation);
                if superseded {
                    attempt = 0;
                    continue;
                }
                match result {
                    Ok(()) => {
                        slots.remove(&key);
                        return;
                    }
                    Err(Failure::Permanent(reason)) => {
                        slots.remove(&key);
                        tracing::warn!(user = %key.0, side = key.1.as_str(), ?action, %reason,
                            "write failed and will not be retried; reconciliation repairs it");
                        return;
                    }
                    Err(Failure::Retry(after)) => {
                        attempt += 1;
                        let backoff = FIRST_RETRY.saturating_mul(1 << attempt.min(16));
                        after.unwrap_or(backoff).min(self.retry_max)
                    }
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.cancel.cancelled() => {
                    self.slots.lock().expect("slots lock").remove(&key);
                    return;
                }
            }
        }
    }

    async fn perform(&self, user: &str, action: &Action) -> Result<(), Failure> {
        match action {
            Action::SetTeams {
                availability,
                activity,
                mode: WriteMode::Session,
            } => Ok(self
                .presence
                .set_presence(user, availability, activity, self.session_expiration)
                .await?),
            Action::SetTeams {
                availability,
                activity,
                mode: WriteMode::Preferred,
            } => Ok(self
                .presence
                .set_user_preferred_presence(user, availability, activity, None)
                .await?),
            Action::ClearTeams {
                mode: WriteMode::Session,
            } => Ok(self.presence.clear_presence(user).await?),
            Action::ClearTeams {
                mode: WriteMode::Preferred,
            } => Ok(self.presence.clear_user_preferred_presence(user).await?),
            Action::SetCc { status } => {
                let entry = self
                    .directory
                    .read()
                    .expect("directory lock")
                    .get(user)
                    .cloned();
                let Some(Matched {
                    connector, agent, ..
                }) = entry
                else {
                    return Err(Failure::Permanent("user has no matched agent".into()));
                };
                let Some(cc) = self.connectors.get(&*connector) else {
                    return Err(Failure::Permanent(format!(
                        "connector {connector:?} is not configured"
                    )));
                };
                let status = match self.catalogs.read().expect("catalog lock").get(&*connector) {
                    Some(cat) if !cat.iter().any(|c| c.id == status.id) => {
                        resolve(cat, &status.name)
                    }
                    _ => status.clone(),
                };
                Ok(cc.set_status(&agent, &status).await?)
            }
        }
    }
}
