//! One engine worker: owns the state of the users of its shard, feeds their observations and
//! timers to the pure engine in order, persists state, observed statuses and the audit trail
//! after each batch, then hands the batch's writes to the [`Writer`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::connectors::CatalogStatus;
use crate::engine::config::WriteMode;
use crate::engine::state::{Action, Decision, Millis, Reason, UserState};
use crate::engine::{Drift, Engine};
use crate::model::{AuditInput, CcStatus, Observation, TeamsPresence, UserId};
use crate::runtime::audit::{self, to_utc};
use crate::runtime::pilot;
use crate::runtime::service::Shared;
use crate::runtime::writer::Matched;
use crate::store::{AuditEntry, JsonText, ObservedStatus, WriteRecord};

/// How long clearing sessions on shutdown may take in total.
const SHUTDOWN_CLEAR_BUDGET: Duration = Duration::from_secs(5);

/// One reconciliation read: the user and what each side showed (when read).
pub type Read = (
    UserId,
    Option<TeamsPresence>,
    Option<CcStatus>,
    Option<crate::model::contact_center::Activity>,
);

pub enum WorkerMsg {
    Observations {
        items: Vec<Observation>,
        done: oneshot::Sender<()>,
    },
    Reconcile {
        reads: Vec<Read>,
        /// When the reads started (epoch milliseconds): a side observed later is left alone.
        read_at: Millis,
        done: oneshot::Sender<Vec<(UserId, Drift, usize)>>,
    },
    /// One connector's status catalog (each connector keeps its own).
    Catalog(String, Vec<CatalogStatus>),
    /// Ends these users' flapping suspensions now, as if their cooldown had run out.
    Resume {
        items: Vec<crate::model::ResumeUser>,
        done: oneshot::Sender<()>,
    },
}

/// Most rows of one kind (states, audit entries, observed statuses, writes) a worker holds
/// before writing them: at 100,000 people a reconciliation's records held to its end took
/// gigabytes; 1,000 keeps a write's commit cost shared while memory stays a few megabytes.
const FLUSH_AT: usize = 1_000;

pub struct Worker {
    pub engine: Engine,
    /// Boxed: a state is ~600 bytes, and a table of them inline keeps that much again empty
    /// (hash tables run up to 1/8 to 1/2 free); boxed, an empty slot costs a pointer.
    pub users: HashMap<UserId, Box<UserState>>,
    pub shared: Arc<Shared>,
    pub rx: mpsc::Receiver<WorkerMsg>,
    timers: BinaryHeap<Reverse<(Millis, UserId)>>,
    scheduled: HashMap<UserId, Millis>,
    touched: HashSet<UserId>,
    audit: Vec<AuditEntry>,
    observed: Vec<ObservedStatus>,
    writes: Vec<WriteRecord>,
    /// Decisions that needed nothing (no rule matched, already in place, older than what was
    /// seen) since the last flush: logged as one line.
    no_rule: usize,
    /// Writes decided but not handed to the writer yet: they go out once the state that
    /// records them is saved, so an owner taking over after a crash never repeats one (a
    /// write lost with the crash is repaired by the reconciliation it runs at start).
    outbox: Vec<(UserId, Action)>,
}

impl Worker {
    pub fn new(
        engine: Engine,
        users: HashMap<UserId, UserState>,
        shared: Arc<Shared>,
        rx: mpsc::Receiver<WorkerMsg>,
    ) -> Worker {
        let mut w = Worker {
            engine,
            users: HashMap::new(),
            shared,
            rx,
            timers: BinaryHeap::new(),
            scheduled: HashMap::new(),
            touched: HashSet::new(),
            audit: Vec::new(),
            observed: Vec::new(),
            writes: Vec::new(),
            no_rule: 0,
            outbox: Vec::new(),
        };
        for (user, st) in users {
            w.schedule(&user, &st);
            w.users.insert(user, Box::new(st));
        }
        w
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let next = self.timers.peek().map(|Reverse((t, _))| *t);
            let wake = self
                .shared
                .clock
                .instant_at(next.unwrap_or(Millis::MAX / 2));
            tokio::select! {
                _ = cancel.cancelled() => break,
                msg = self.rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => break,
                },
                _ = tokio::time::sleep_until(wake), if next.is_some() => self.fire().await,
            }
        }
        self.shutdown().await;
    }

    async fn handle(&mut self, msg: WorkerMsg) {
        match msg {
            WorkerMsg::Observations { items, done } => {
                let now = self.shared.clock.now_millis();
                for o in items {
                    let input = AuditInput::Observation {
                        source: o.source,
                        status: o.status.clone(),
                    };
                    let observed = ObservedStatus {
                        user_id: o.user.clone(),
                        side: o.status.side(),
                        status: serde_json::to_value(&o.status).unwrap_or_default(),
                        observed_at: o.observed_at,
                        source: o.source.as_str().to_owned(),
                    };
                    let wall = Utc::now();
                    let lag = (wall - o.observed_at).num_milliseconds().max(0);
                    self.shared
                        .metrics
                        .histogram("engine_observation_lag_seconds", &[])
                        .record(lag as f64 / 1000.0);
                    // A time ahead of this clock counts as now, so one event from a fast
                    // clock cannot make every later one look stale.
                    let at = o
                        .observed_at
                        .timestamp_millis()
                        .min(wall.timestamp_millis());
                    let mut stale = false;
                    self.process(&o.user, input, |e, st, out| {
                        let start = out.len();
                        e.observe_activity_at(st, o.status, o.activity, o.source, at, now, out);
                        stale = out[start..].iter().any(|d| d.reason == Reason::Stale);
                    });
                    if !stale {
                        self.observed.push(observed);
                    }
                    self.flush_if_full().await;
                }
                self.flush().await;
                let _ = done.send(());
            }
            WorkerMsg::Reconcile {
                reads,
                read_at,
                done,
            } => {
                let now = self.shared.clock.now_millis();
                let mut results = Vec::with_capacity(reads.len());
                let read_time =
                    chrono::DateTime::from_timestamp_millis(read_at).unwrap_or_else(Utc::now);
                for (user, teams, cc, activity) in reads {
                    let input = AuditInput::Reconcile {
                        teams: teams.clone(),
                        contact_center: cc.clone(),
                    };
                    // What each side showed is kept like an observation's (the store keeps
                    // the newest by time), so someone who never changed has a status too.
                    let shown = [
                        teams.clone().map(crate::model::Status::Teams),
                        cc.clone().map(crate::model::Status::ContactCenter),
                    ];
                    for status in shown.into_iter().flatten() {
                        self.observed.push(ObservedStatus {
                            user_id: user.clone(),
                            side: status.side(),
                            status: serde_json::to_value(&status).unwrap_or_default(),
                            observed_at: read_time,
                            source: crate::model::Source::Reconcile.as_str().to_owned(),
                        });
                    }
                    let mut drift = Drift::default();
                    let writes = self.process(&user, input, |e, st, out| {
                        let cc = cc.map(|c| (c, activity));
                        drift = e.reconcile_at(st, teams, cc, read_at, now, out);
                    });
                    results.push((user, drift, writes));
                    self.flush_if_full().await;
                }
                self.flush().await;
                let _ = done.send(results);
            }
            WorkerMsg::Catalog(connector, catalog) => {
                self.engine.rules.set_connector_catalog(&connector, catalog)
            }
            WorkerMsg::Resume { items, done } => {
                let now = self.shared.clock.now_millis();
                for r in items {
                    let Some(st) = self.users.get_mut(&r.user) else {
                        continue;
                    };
                    if st.suspended_until.is_none_or(|u| u <= now) {
                        continue;
                    }
                    st.suspended_until = Some(now);
                    let input = AuditInput::Operator { by: r.by };
                    self.process(&r.user, input, |e, st, out| e.tick(st, now, out));
                }
                self.flush().await;
                let _ = done.send(());
            }
        }
    }

    async fn fire(&mut self) {
        let now = self.shared.clock.now_millis();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            let Reverse((_, user)) = self.timers.pop().expect("peeked");
            if self.scheduled.get(&user).is_some_and(|s| *s <= now) {
                self.scheduled.remove(&user);
                self.process(&user, AuditInput::Timer, |e, st, out| e.tick(st, now, out));
            }
        }
        self.flush().await;
    }

    /// Runs the engine for one user; carries out and records its decisions. Returns the
    /// number of writes.
    fn process(
        &mut self,
        user: &str,
        input: AuditInput,
        f: impl FnOnce(&Engine, &mut UserState, &mut Vec<Decision>),
    ) -> usize {
        if !pilot::includes(&self.shared.pilot, user) {
            self.shared
                .metrics
                .counter("engine_not_in_sync_only_total", &[])
                .increment(1);
            tracing::debug!(user, "not in sync.only: no decision made");
            return 0;
        }
        // Only the connector's shared name on this path (run for every observation); the
        // agent is looked up again for the rare shadow-mode line.
        let connector: Option<Arc<str>> = self
            .shared
            .directory
            .read()
            .expect("directory lock")
            .get(user)
            .map(|m| m.connector.clone());
        let connector = connector.as_deref();
        let matched = connector.is_some();
        let shadow = self.shared.config.sync.shadow();
        let st = self.users.entry(user.to_owned()).or_default();
        if st.connector.as_deref() != connector {
            st.connector = connector.map(str::to_owned);
        }
        let mut out = Vec::new();
        f(&self.engine, st, &mut out);
        let st = st.clone();
        for d in &out {
            match d.reason {
                Reason::FlapSuspended => {
                    let until = st.suspended_until.map(to_utc).unwrap_or_default();
                    self.shared.alerts.suspended(user, until);
                }
                Reason::Resumed => self.shared.alerts.resumed(user),
                _ => {}
            }
        }
        let mut writes = 0;
        for d in &out {
            self.record(user, &input, d);
            if let Some(a) = &d.action {
                if matches!(a, Action::SetCc { .. }) && !matched {
                    tracing::debug!(user, "no matched agent: contact-center write skipped");
                    continue;
                }
                writes += 1;
                if shadow {
                    let agent = self.shared.directory.read().expect("directory lock");
                    shadow_write(
                        &self.shared.metrics,
                        user,
                        agent.get(user),
                        a,
                        d.rule_label().as_deref(),
                        d.reason.words(),
                    );
                    continue;
                }
                self.writes.push(WriteRecord {
                    user_id: user.to_owned(),
                    side: a.side(),
                    status: serde_json::to_value(a).unwrap_or_default(),
                    written_at: to_utc(d.at),
                    sequence: None,
                });
                self.outbox.push((user.to_owned(), a.clone()));
            }
        }
        self.schedule(user, &st);
        self.touched.insert(user.to_owned());
        writes
    }

    fn record(&mut self, user: &str, input: &AuditInput, d: &Decision) {
        let shadow = self.shared.config.sync.shadow();
        let m = &self.shared.metrics;
        m.counter(
            "engine_decisions_total",
            &[("reason", reason_label(d.reason))],
        )
        .increment(1);
        if d.reason == Reason::FlapSuspended {
            m.counter("engine_flap_suspensions_total", &[]).increment(1);
            let dir = self.shared.directory.read().expect("directory lock");
            let who = dir.get(user).map_or(user, |m| &*m.label);
            tracing::warn!(
                user,
                "{who}: too many changes in a short time: sync suspended for the cooldown"
            );
        }
        let entry = audit::entry(user, input.clone(), d, shadow);
        let quiet = d.action.is_none()
            && matches!(
                d.reason,
                Reason::NoRule
                    | Reason::Stale
                    | Reason::Unchanged
                    | Reason::NothingToClear
                    | Reason::AlreadySet
            );
        if quiet {
            // Common and unremarkable (everyone's first statuses at start, re-reads that
            // change nothing): counted, and summarised once per batch at flush.
            self.no_rule += 1;
        } else if tracing::enabled!(tracing::Level::DEBUG) {
            let dir = self.shared.directory.read().expect("directory lock");
            let who = dir.get(user).map_or(user, |m| &*m.label);
            let sentence = audit::describe(&entry);
            // The sentence starts with its time, which the log line has already.
            let sentence = sentence.split_once("  ").map_or(sentence.as_str(), |s| s.1);
            tracing::debug!(user, "{who}: {sentence}");
        }
        self.audit.push(entry);
    }

    fn schedule(&mut self, user: &str, st: &UserState) {
        match st.next_deadline() {
            Some(d) if self.scheduled.get(user) != Some(&d) => {
                self.scheduled.insert(user.to_owned(), d);
                self.timers.push(Reverse((d, user.to_owned())));
            }
            Some(_) => {}
            None => {
                self.scheduled.remove(user);
            }
        }
    }

    /// Flushes once FLUSH_AT rows of any kind wait: a batch (a reconciliation hands each
    /// worker its share of everyone) is written as it goes, not held whole until its end.
    async fn flush_if_full(&mut self) {
        let pending = self
            .touched
            .len()
            .max(self.audit.len())
            .max(self.observed.len())
            .max(self.writes.len());
        if pending >= FLUSH_AT {
            self.flush().await;
        }
    }

    /// Persists what changed since the last flush. On a store failure the data is kept and
    /// written with the next flush.
    async fn flush(&mut self) {
        let no_rule = std::mem::take(&mut self.no_rule);
        if no_rule > 0 {
            tracing::debug!(
                decisions = no_rule,
                "{no_rule} status reading(s) needed nothing (no mapping rule matches, the mapped \
                 status is already in place, or it is older than what was seen)"
            );
        }
        let store = &self.shared.store;
        let states: Vec<(String, JsonText)> = self
            .touched
            .iter()
            .filter_map(|u| {
                let st = self.users.get(u)?;
                Some((u.clone(), JsonText::of(st).ok()?))
            })
            .collect();
        let result = async {
            if !states.is_empty() {
                store.save_user_states(&states).await?;
            }
            if !self.writes.is_empty() {
                store.put_writes(&self.writes).await?;
            }
            if !self.observed.is_empty() {
                store.put_observed(&self.observed).await?;
            }
            if !self.audit.is_empty() {
                store.append_audit(&self.audit).await?;
            }
            Ok::<(), crate::store::StoreError>(())
        }
        .await;
        match result {
            Ok(()) => {
                self.touched.clear();
                self.writes.clear();
                self.observed.clear();
                self.audit.clear();
                for (user, action) in self.outbox.drain(..) {
                    self.shared.writer.submit(&user, action);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "engine state could not be saved; retrying with the next batch")
            }
        }
    }

    async fn shutdown(&mut self) {
        if self.shared.config.sync.clear_sessions_on_shutdown {
            let held: Vec<(UserId, WriteMode)> = self
                .users
                .iter()
                .filter_map(|(u, st)| st.c2t.held.as_ref().map(|h| (u.clone(), h.mode)))
                .collect();
            let writer = self.shared.writer.clone();
            let mut cleared = Vec::new();
            if self.shared.config.sync.shadow() {
                for (user, mode) in held {
                    let clear = Action::ClearTeams { mode };
                    shadow_write(
                        &self.shared.metrics,
                        &user,
                        None,
                        &clear,
                        None,
                        "the daemon stops",
                    );
                    cleared.push(user);
                }
            } else {
                let _ = tokio::time::timeout(SHUTDOWN_CLEAR_BUDGET, async {
                    for (user, mode) in held {
                        if writer.write_once(&user, &Action::ClearTeams { mode }).await {
                            cleared.push(user);
                        }
                    }
                })
                .await;
            }
            for user in &cleared {
                if let Some(st) = self.users.get_mut(user) {
                    st.c2t.held = None;
                    st.c2t.applied = None;
                    st.c2t.keepalive_due = None;
                    self.touched.insert(user.clone());
                }
            }
            if self.shared.config.sync.shadow() {
                tracing::info!(
                    would_clear = cleared.len(),
                    "shadow mode: nothing cleared on shutdown (nothing was written)"
                );
            } else {
                tracing::info!(
                    cleared = cleared.len(),
                    "cleared the bridge's Teams sessions on shutdown"
                );
            }
        }
        self.flush().await;
    }
}

/// A write not made in shadow mode: one line in plain words and the count by side.
fn shadow_write(
    metrics: &crate::telemetry::Metrics,
    user: &str,
    agent: Option<&Matched>,
    action: &Action,
    rule: Option<&str>,
    why: &str,
) {
    let side = action.side().as_str();
    metrics
        .counter("engine_shadow_writes_total", &[("side", side.to_owned())])
        .increment(1);
    let whom = match (action, agent) {
        (Action::SetCc { .. }, Some(m)) => {
            format!("user {user} (agent {} on {})", m.agent, m.connector)
        }
        _ => format!("user {user}"),
    };
    let by = rule.map(|r| format!(" by rule {r}")).unwrap_or_default();
    tracing::info!(
        user,
        side,
        rule = rule.unwrap_or("-"),
        "shadow mode: would {} for {whom}{by}, because {why}; nothing written",
        audit::write_words(action, true)
    );
}

fn reason_label(r: Reason) -> String {
    match serde_json::to_value(r) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "other".into(),
    }
}
