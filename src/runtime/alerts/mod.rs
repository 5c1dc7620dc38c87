//! Outbound alerts (`[[alerts]]`): conditions an operator must hear about without watching a
//! dashboard — a user suspended by the oscillation breaker, a sync account whose sign-in
//! lapses or was revoked, the Graph client secret or certificate about to expire, presence
//! shards polled instead of subscribed for too long, a connector down for too long, a
//! reconciliation finding drift above a threshold.
//!
//! The evaluator ([`AlertJob`]) looks at the readiness registry, the last reconciliation and
//! the suspension signals from the engine ([`Signals`]) every `alerting.evaluate_interval_secs`
//! (and at once on a signal), keeps one alert per condition until it clears and then sends a
//! "resolved" ([`tracker`]); the state is kept in the store, so a restart neither repeats nor
//! forgets. Each alert is a job of the durable work queue per sink ([`deliver`]), so a sink
//! that is down or throttling gets it later, also after a restart.

pub mod config;
pub mod deliver;
pub mod tracker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use self::config::{AlertSinkConfig, AlertingConfig, ConditionKind};
use self::deliver::Outgoing;
use self::tracker::{Condition, Severity, Tracker, Transition};
use crate::model::Clock;
use crate::model::health::{HealthRegistry, HealthState};
use crate::store::{NewJob, Store};

/// Where the evaluator keeps its state in the store's key-value table.
const STATE_KEY: &str = "alerts.state";

/// What the engine tells the evaluator as it happens.
#[derive(Debug, Clone)]
enum Signal {
    Suspended { user: String, until: DateTime<Utc> },
    Resumed { user: String },
}

/// The engine's side of the alerts: cheap to clone; does nothing when no alert sink is
/// configured.
#[derive(Debug, Clone, Default)]
pub struct Signals(Option<mpsc::UnboundedSender<Signal>>);

impl Signals {
    /// A connected pair: the engine keeps the first, the evaluator takes the second.
    pub fn channel() -> (Signals, SignalReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Signals(Some(tx)), SignalReceiver(rx))
    }

    /// The oscillation breaker suspended `user` until `until`.
    pub fn suspended(&self, user: &str, until: DateTime<Utc>) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Signal::Suspended {
                user: user.to_owned(),
                until,
            });
        }
    }

    /// Sync resumed for `user`.
    pub fn resumed(&self, user: &str) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(Signal::Resumed {
                user: user.to_owned(),
            });
        }
    }
}

/// The evaluator's end of [`Signals`].
#[derive(Debug)]
pub struct SignalReceiver(mpsc::UnboundedReceiver<Signal>);

/// What the evaluator keeps across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    tracker: Tracker,
    /// Users suspended now: who (name shown in the alert) and until when.
    suspended: BTreeMap<String, (String, DateTime<Utc>)>,
}

/// The evaluator job.
pub struct AlertJob {
    pub store: Arc<dyn Store>,
    pub health: HealthRegistry,
    pub clock: Clock,
    pub metrics: crate::telemetry::Metrics,
    pub sinks: Arc<Vec<AlertSinkConfig>>,
    pub alerting: AlertingConfig,
    /// When the Graph client secret or certificate expires, when known.
    pub credential_expires_at: Option<DateTime<Utc>>,
    /// This daemon's name in alerts (`store.instance_id`).
    pub instance: String,
    /// Woken after alerts were queued.
    pub sender_wake: Arc<Notify>,
}

impl AlertJob {
    /// Runs until `cancel`: evaluates at once, then on every interval and every signal.
    pub async fn run(self, mut signals: SignalReceiver, cancel: CancellationToken) {
        let mut state: Persisted = match self.store.get_kv(STATE_KEY).await {
            Ok(Some(text)) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "stored alert state unreadable; starting afresh");
                Persisted::default()
            }),
            _ => Persisted::default(),
        };
        let every = Duration::from_secs(self.alerting.evaluate_interval_secs);
        loop {
            self.evaluate(&mut state).await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
                signal = signals.0.recv() => match signal {
                    Some(s) => {
                        self.apply(&mut state, s).await;
                        while let Ok(s) = signals.0.try_recv() {
                            self.apply(&mut state, s).await;
                        }
                    }
                    None => {
                        // No engine: look at the rest on the interval only.
                        tokio::select! {
                            _ = cancel.cancelled() => break,
                            _ = tokio::time::sleep(every) => {}
                        }
                    }
                },
            }
        }
    }

    async fn apply(&self, state: &mut Persisted, signal: Signal) {
        match signal {
            Signal::Suspended { user, until } => {
                let name = match self.store.get_user(&user).await {
                    Ok(u) => u.label(),
                    Err(_) => user.clone(),
                };
                state.suspended.insert(user, (name, until));
            }
            Signal::Resumed { user } => {
                state.suspended.remove(&user);
            }
        }
    }

    /// Looks at every condition, queues what changed and persists the state.
    async fn evaluate(&self, state: &mut Persisted) {
        let now = self.clock.now();
        let (holding, kinds) = self.conditions(state, now).await;
        let changes = state.tracker.step(now, holding, &kinds);
        let mut firing: BTreeMap<ConditionKind, usize> = BTreeMap::new();
        for (_, f) in state.tracker.firing() {
            *firing.entry(f.kind).or_default() += 1;
        }
        for kind in ALL_KINDS {
            self.metrics
                .gauge("alerts_firing", &[("condition", kind.as_str().to_owned())])
                .set(firing.get(kind).copied().unwrap_or(0) as f64);
        }
        if changes.is_empty() {
            return;
        }
        let jobs = self.jobs(&changes);
        // State first: should queueing fail, the alert is lost rather than repeated forever
        // on a store that accepts one write but not the other; both failing is logged.
        let persisted = serde_json::to_string(state).unwrap_or_default();
        if let Err(e) = self.store.put_kv(STATE_KEY, &persisted).await {
            tracing::error!(error = %e, "cannot store the alert state");
        }
        match self.store.queue_push(&jobs).await {
            Ok(_) => self.sender_wake.notify_one(),
            Err(e) => tracing::error!(error = %e, alerts = changes.len(), "cannot queue alerts"),
        }
        for c in &changes {
            tracing::info!(status = ?c.status, condition = c.kind.as_str(), alert = %c.summary, "alert");
        }
    }

    /// One job per change and interested sink, deduplicated by sink, condition, status and
    /// start time (a change queued twice is sent once).
    fn jobs(&self, changes: &[Transition]) -> Vec<NewJob> {
        let mut jobs = Vec::new();
        for c in changes {
            for sink in self.sinks.iter().filter(|s| s.wants(c.kind)) {
                let o = Outgoing {
                    sink: sink.name.clone(),
                    instance: self.instance.clone(),
                    alert: c.clone(),
                };
                jobs.push(NewJob {
                    queue: deliver::QUEUE.to_owned(),
                    key: sink.name.clone(),
                    dedupe: Some(format!(
                        "{}|{}|{:?}|{}",
                        sink.name,
                        c.key,
                        c.status,
                        c.since.timestamp_millis()
                    )),
                    payload: serde_json::to_value(&o).unwrap_or_default(),
                    not_before: c.at,
                });
            }
        }
        jobs
    }

    /// The conditions that hold now, and the kinds that were looked at.
    async fn conditions(
        &self,
        state: &Persisted,
        now: DateTime<Utc>,
    ) -> (Vec<Condition>, Vec<ConditionKind>) {
        let a = &self.alerting;
        let mut out = Vec::new();
        // Every kind is looked at, except drift when the last report cannot be read.
        let mut kinds = ALL_KINDS.to_vec();
        for (user, (name, until)) in &state.suspended {
            out.push(Condition {
                key: format!("user_suspended:{user}"),
                kind: ConditionKind::UserSuspended,
                severity: Severity::Warning,
                summary: format!("Sync suspended for {name}: status flapping"),
                detail: format!(
                    "Too many changes in a short time: the bridge stopped syncing this person until {} (UTC). `presence-bridge explain {user}` shows the decisions.",
                    until.format("%Y-%m-%d %H:%M:%S")
                ),
                after: Duration::ZERO,
            });
        }
        for c in self.health.snapshot() {
            if let Some(upn) = c.name.strip_prefix("graph_account:") {
                if c.state != HealthState::Up {
                    out.push(Condition {
                        key: format!("sync_account:{upn}"),
                        kind: ConditionKind::SyncAccount,
                        severity: severity(c.state),
                        summary: format!("Sync account {upn}: {}", first_clause(&c.detail)),
                        detail: format!(
                            "{}. Sign in again with `presence-bridge accounts add` as {upn}.",
                            c.detail
                        ),
                        after: Duration::ZERO,
                    });
                }
            } else if let Some(name) = c.name.strip_prefix("connector:") {
                if c.state == HealthState::Down {
                    out.push(Condition {
                        key: format!("connector_down:{name}"),
                        kind: ConditionKind::ConnectorDown,
                        severity: Severity::Critical,
                        summary: format!("Connector {name} is down"),
                        detail: format!(
                            "{} (for more than {} minutes). Contact-center statuses are not synced for its agents.",
                            c.detail, a.connector_down_minutes
                        ),
                        after: Duration::from_secs(a.connector_down_minutes * 60),
                    });
                }
            } else if c.name == crate::graph::subscriptions::HEALTH_COMPONENT
                && c.state != HealthState::Up
            {
                out.push(Condition {
                    key: "subscription_fallback".into(),
                    kind: ConditionKind::SubscriptionFallback,
                    severity: Severity::Warning,
                    summary: "Presence shards polled instead of subscribed".into(),
                    detail: format!(
                        "{} (for more than {} minutes): Teams changes arrive at polling speed. Check the sync accounts (`presence-bridge accounts list`).",
                        c.detail, a.polling_fallback_minutes
                    ),
                    after: Duration::from_secs(a.polling_fallback_minutes * 60),
                });
            }
        }
        if let Some(expires) = self.credential_expires_at {
            let left = (expires - now).num_days();
            if left <= a.secret_warning_days {
                let (severity, when) = if expires <= now {
                    (Severity::Critical, "expired".to_owned())
                } else {
                    (Severity::Warning, format!("expires in {left} days"))
                };
                out.push(Condition {
                    key: "client_credential".into(),
                    kind: ConditionKind::ClientCredential,
                    severity,
                    summary: format!("Graph client credential {when}"),
                    detail: format!(
                        "The app registration's client secret or certificate ends on {}. Add a new one in Entra ID and update graph.client_secret / graph.certificate_file (and graph.client_secret_expires_at).",
                        expires.format("%Y-%m-%d")
                    ),
                    after: Duration::ZERO,
                });
            }
        }
        match crate::runtime::reconcile::last_report(self.store.as_ref()).await {
            Ok(Some(r)) => {
                let drifted: usize = r.drift.values().sum();
                if drifted > a.drift_threshold {
                    out.push(Condition {
                        key: "drift".into(),
                        kind: ConditionKind::Drift,
                        severity: Severity::Warning,
                        summary: format!(
                            "Reconciliation found drift for {drifted} users (threshold {})",
                            a.drift_threshold
                        ),
                        detail: format!(
                            "The reconciliation finished at {} found {:?}; it wrote {} corrections. Changes are being missed: check subscriptions, polling and connector events.",
                            r.finished_at.format("%Y-%m-%d %H:%M:%S"),
                            r.drift,
                            r.writes
                        ),
                        after: Duration::ZERO,
                    });
                }
            }
            Ok(None) => {}
            Err(e) => {
                kinds.retain(|k| *k != ConditionKind::Drift);
                tracing::debug!(error = %e, "no reconciliation report for the drift alert");
            }
        }
        (out, kinds)
    }
}

const ALL_KINDS: &[ConditionKind] = &[
    ConditionKind::UserSuspended,
    ConditionKind::SyncAccount,
    ConditionKind::ClientCredential,
    ConditionKind::SubscriptionFallback,
    ConditionKind::ConnectorDown,
    ConditionKind::Drift,
];

fn severity(state: HealthState) -> Severity {
    match state {
        HealthState::Down => Severity::Critical,
        _ => Severity::Warning,
    }
}

/// The part of a readiness detail before its first `;`.
fn first_clause(detail: &str) -> &str {
    detail.split(';').next().unwrap_or(detail).trim()
}

/// The end of validity of the certificate in the PEM file, if it can be read.
pub fn certificate_not_after(path: &std::path::Path) -> Option<DateTime<Utc>> {
    use x509_cert::der::DecodePem;
    let pem = std::fs::read(path).ok()?;
    let cert = x509_cert::Certificate::from_pem(&pem).ok()?;
    let t = cert.tbs_certificate.validity.not_after.to_unix_duration();
    DateTime::from_timestamp(t.as_secs() as i64, 0)
}
