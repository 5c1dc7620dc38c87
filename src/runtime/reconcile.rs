//! Reconciliation: every `sync.reconcile_interval_secs` and on demand, read both sides in bulk,
//! let the engine compare them with what it knows, and write only where they disagree with
//! the rules. The drift report goes to the log, the metrics, the store (`GET
//! /api/v1/reconcile/last`) and [`Reconciler::run_once`]'s caller.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::engine::Drift;
use crate::engine::config::MatchBy;
use crate::model::contact_center::Activity;
use crate::model::{CcStatus, InboxPayload, TeamsPresence, UserId};
use crate::runtime::matching::{self, MatchError};
use crate::runtime::pilot;
use crate::runtime::service::{Shared, load_people, refresh_pilot};
use crate::runtime::shards::Workers;
use crate::runtime::worker::WorkerMsg;
use crate::store::inbox::Inbox;
use crate::store::{Store, StoreError, StoreResult};

/// Users read from Teams and handed to the engine at a time in a pass: ten full
/// `getPresencesByUserId` calls, so chunking adds no call.
const RECONCILE_CHUNK: usize = 10 * crate::graph::presence::MAX_IDS_PER_READ;
/// Store key of the last report.
const LAST_REPORT_KEY: &str = "engine.reconcile.last";
/// Users are matched to agents again this often (and at start): the directory and agent
/// listings are refreshed by their own jobs, and a minute keeps a new hire's wait short while
/// a pass costs two list queries.
const DIRECTORY_REFRESH: Duration = Duration::from_secs(60);
/// A minute's check reads a fingerprint of the users and agents (and the mapping file's
/// modification time) and matches again only when it changed; at 100,000 people a pass is two
/// full reads and a plan, seconds of CPU, and most minutes change nothing. At least this often
/// the pass runs anyway.
const DIRECTORY_REFRESH_MAX: Duration = Duration::from_secs(15 * 60);
/// Until the first reconciliation (while the directory and agents are still being listed at
/// start), the fingerprint is checked and matching redone this often.
const DIRECTORY_REFRESH_EMPTY: Duration = Duration::from_secs(3);
type DirectoryVersion = ([String; 5], Option<std::time::SystemTime>);

/// At most this many affected users are listed in a report (counts cover all).
const REPORT_USERS: usize = 200;

/// What a reconciliation found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Matched users whose both sides were compared.
    pub users_checked: usize,
    /// Users by kind of drift: `teams_missed`, `cc_missed`, `session_lost`.
    pub drift: BTreeMap<String, usize>,
    /// Writes the reconciliation caused.
    pub writes: usize,
    /// In shadow mode: writes the reconciliation would have caused (none is made).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub shadow_writes: usize,
    /// Users with drift (at most 200).
    pub users: Vec<String>,
    /// Reads that failed (the side was skipped).
    pub errors: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why the user → agent map could not be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("matching: {0}")]
    Matching(#[from] MatchError),
    #[error("directory: {0}")]
    Load(#[from] StoreError),
}

/// Why the last report could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored reconcile report unreadable: {0}")]
    Unreadable(#[from] serde_json::Error),
}

/// Asks the engine for a reconciliation now (through the inbox, so any replica's engine
/// takes it).
pub async fn request(inbox: &Inbox) -> StoreResult<()> {
    inbox.push(vec![InboxPayload::ReconcileRequest]).await
}

/// The report of the last reconciliation, if one ran.
pub async fn last_report(store: &dyn Store) -> Result<Option<ReconcileReport>, ReportError> {
    match store.get_kv(LAST_REPORT_KEY).await? {
        Some(text) => Ok(Some(serde_json::from_str(&text)?)),
        None => Ok(None),
    }
}

pub(crate) struct Reconciler {
    pub shared: Arc<Shared>,
    pub workers: Workers,
}

impl Reconciler {
    pub async fn run(self, cancel: CancellationToken) {
        let interval = Duration::from_secs(self.shared.config.sync.reconcile_interval_secs);
        let mut next = tokio::time::Instant::now() + interval;
        let mut next_refresh = tokio::time::Instant::now();
        let mut initial_done = false;
        // The fingerprint at the last pass that succeeded, and when it ran.
        let mut matched_at: Option<(DirectoryVersion, tokio::time::Instant)> = None;
        // The fingerprint at the previous check.
        let mut last_check: Option<DirectoryVersion> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(next_refresh) => {
                    let version = self.directory_version().await;
                    let fresh = matches!(
                        (&matched_at, &version),
                        (Some((seen, at)), Some(now)) if seen == now && at.elapsed() < DIRECTORY_REFRESH_MAX
                    );
                    if !fresh {
                        match self.refresh_directory().await {
                            Ok(()) => {
                                matched_at = version.clone().map(|v| (v, tokio::time::Instant::now()));
                            }
                            Err(e) => tracing::warn!(error = %e, "user matching failed"),
                        }
                    }
                    let empty = self.shared.directory.read().expect("directory lock").is_empty();
                    // The directory is stored a page at a time at start: while its
                    // fingerprint still moves between two checks, the listing is not done.
                    let settled = version.is_none() || version == last_check;
                    last_check = version;
                    if !empty && !initial_done && settled {
                        // Learn both sides of every matched user once at start, so guards
                        // such as only_if_cc see real statuses before the first event. (Not
                        // on a half-stored directory: the pass takes long at scale, and the
                        // rest of the people would wait for it to be matched.)
                        initial_done = true;
                        self.run_once().await;
                        next = tokio::time::Instant::now() + interval;
                    }
                    let wait = if initial_done { DIRECTORY_REFRESH } else { DIRECTORY_REFRESH_EMPTY };
                    next_refresh = tokio::time::Instant::now() + wait;
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
                _ = self.shared.reconcile_now.notified() => {}
            }
            self.run_once().await;
            next = tokio::time::Instant::now() + interval;
        }
    }

    /// What matching depends on, cheaply: the store's fingerprint of users and agents and the
    /// mapping file's modification time. `None` when it cannot be read (match anyway).
    async fn directory_version(&self) -> Option<DirectoryVersion> {
        let store = self.shared.store.directory_version().await.ok()?;
        let csv = match (
            &self.shared.config.sync.match_by,
            &self.shared.config.sync.match_csv_file,
        ) {
            (MatchBy::Csv, Some(path)) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
            _ => None,
        };
        Some((store, csv))
    }

    /// Matches users to agents and reloads the engine's user → agent map.
    async fn refresh_directory(&self) -> Result<(), DirectoryError> {
        let s = &self.shared;
        matching::apply(&s.config, s.store.as_ref()).await?;
        let dir = load_people(s.store.as_ref()).await?;
        s.metrics
            .gauge("engine_matched_users", &[])
            .set(dir.len() as f64);
        let changed = *s.directory.read().expect("directory lock") != dir;
        *s.directory.write().expect("directory lock") = dir;
        if changed {
            s.scope_changes.notify();
        }
        refresh_pilot(s).await?;
        Ok(())
    }

    /// One full pass over all matched users.
    pub async fn run_once(&self) -> ReconcileReport {
        let s = &self.shared;
        let started_at = Utc::now();
        let mut report = ReconcileReport {
            started_at,
            ..Default::default()
        };
        if let Err(e) = self.refresh_directory().await {
            report.errors.push(e.to_string());
        }
        let dir: Vec<(UserId, Arc<str>, Box<str>)> = s
            .directory
            .read()
            .expect("directory lock")
            .iter()
            .filter(|(k, _)| pilot::includes(&s.pilot, k))
            .map(|(k, m)| (k.clone(), m.connector.clone(), m.agent.clone()))
            .collect();
        // The contact center's side in one bulk read per connector (that is what its API
        // offers), then Teams and the engine a chunk of users at a time: what the pass holds
        // beyond that read is one chunk's presences and reads, not everyone's.
        let mut by_connector: HashMap<&str, Vec<String>> = HashMap::new();
        for (_, conn, agent) in &dir {
            by_connector
                .entry(&**conn)
                .or_default()
                .push(agent.to_string());
        }
        let mut cc: HashMap<&str, HashMap<String, (CcStatus, Option<Activity>)>> = HashMap::new();
        for (conn, agents) in by_connector {
            let Some(c) = s.connectors.get(conn) else {
                continue;
            };
            match c.current_statuses(&agents).await {
                Ok(list) => {
                    cc.insert(
                        conn,
                        list.into_iter()
                            .map(|a| (a.agent_id, (a.status, a.activity)))
                            .collect(),
                    );
                }
                Err(e) => report.errors.push(format!("{conn}: {e}")),
            }
        }
        let mut teams_failed = false;
        for chunk in dir.chunks(RECONCILE_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|(u, ..)| u.clone()).collect();
            // Once Teams cannot be read, the rest of the pass goes without it (as one read).
            let mut teams: HashMap<String, TeamsPresence> = if teams_failed {
                HashMap::new()
            } else {
                match s.presence.get_presences(&ids).await {
                    Ok(v) => v.into_iter().collect(),
                    Err(e) => {
                        report.errors.push(format!("teams: {e}"));
                        teams_failed = true;
                        HashMap::new()
                    }
                }
            };
            let mut reads = Vec::new();
            for (user, conn, agent) in chunk {
                let t = teams.remove(user);
                let (c, activity) = match cc.get(&**conn).and_then(|m| m.get(&**agent)).cloned() {
                    Some((c, a)) => (Some(c), a),
                    None => (None, None),
                };
                if t.is_none() && c.is_none() {
                    continue;
                }
                report.users_checked += 1;
                reads.push((user.clone(), t, c, activity));
            }
            let answers = self
                .workers
                .scatter(
                    reads,
                    |r| &r.0,
                    |reads, done| WorkerMsg::Reconcile {
                        reads,
                        read_at: started_at.timestamp_millis(),
                        done,
                    },
                )
                .await;
            self.tally(&mut report, answers.into_iter().flatten());
        }
        report.finished_at = Utc::now();
        self.publish(&report).await;
        report
    }

    /// Adds the engine's answers for a chunk of users to the report.
    fn tally(
        &self,
        report: &mut ReconcileReport,
        answers: impl Iterator<Item = (UserId, Drift, usize)>,
    ) {
        let shadow = self.shared.config.sync.shadow();
        for (user, drift, writes) in answers {
            if shadow {
                report.shadow_writes += writes;
            } else {
                report.writes += writes;
            }
            let kinds = [
                ("teams_missed", drift.teams_missed),
                ("cc_missed", drift.cc_missed),
                ("session_lost", drift.session_lost),
            ];
            for (k, on) in kinds {
                if on {
                    *report.drift.entry(k.to_owned()).or_default() += 1;
                }
            }
            if (drift.any() || writes > 0) && report.users.len() < REPORT_USERS {
                report.users.push(user);
            }
        }
    }

    async fn publish(&self, r: &ReconcileReport) {
        let s = &self.shared;
        for (kind, n) in &r.drift {
            s.metrics
                .counter("engine_reconcile_drift_total", &[("kind", kind.clone())])
                .increment(*n as u64);
        }
        s.metrics
            .counter("engine_reconcile_runs_total", &[])
            .increment(1);
        s.metrics
            .gauge("engine_reconcile_last_writes", &[])
            .set(r.writes as f64);
        tracing::info!(
            users = r.users_checked,
            drift = ?r.drift,
            writes = r.writes,
            shadow_writes = r.shadow_writes,
            errors = r.errors.len(),
            "reconciliation finished"
        );
        match serde_json::to_string(r) {
            Ok(text) => {
                if let Err(e) = s.store.put_kv(LAST_REPORT_KEY, &text).await {
                    tracing::warn!(error = %e, "reconcile report not saved");
                }
            }
            Err(e) => tracing::warn!(error = %e, "reconcile report not serializable"),
        }
    }
}
