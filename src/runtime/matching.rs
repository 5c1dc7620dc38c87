//! Matching at run time: reads users, agents and (for `sync.match_by = "csv"`) the mapping
//! file, computes the plan of [`crate::engine::matching`], and records it on the users.

use std::collections::HashMap;

use crate::engine::config::{EngineConfig, MatchBy};
use crate::engine::matching::{CsvError, MatchReport, Planner, parse_csv, plan};
use crate::model::directory::{AgentRecord, UserMatch, UserRecord};
use crate::store::{Store, StoreError, each_user};

/// Why a matching pass could not run.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    CsvRead {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Csv {
        path: std::path::PathBuf,
        source: CsvError,
    },
}

/// Matches written per statement batch: other writers get the store between batches.
const MATCH_WRITE_CHUNK: usize = 5_000;

/// Reads users (a page at a time), agents and (for `csv`) the mapping file, and computes the
/// matching.
pub async fn plan_from_store(
    cfg: &EngineConfig,
    store: &dyn Store,
) -> Result<MatchReport, MatchError> {
    let agents = store.list_agents(None).await?;
    let csv = mapping(cfg)?;
    let mut planner = Planner::new(&agents, cfg.sync.match_by, &csv);
    each_user(store, |u| planner.user(&u)).await?;
    Ok(planner.finish())
}

/// Computes the matching of the given users and agents (read live by `users --online`).
pub fn plan_with(
    cfg: &EngineConfig,
    users: &[UserRecord],
    agents: &[AgentRecord],
) -> Result<MatchReport, MatchError> {
    Ok(plan(users, agents, cfg.sync.match_by, &mapping(cfg)?))
}

/// The mapping file's lines for `sync.match_by = "csv"`; none otherwise.
fn mapping(cfg: &EngineConfig) -> Result<Vec<(String, String)>, MatchError> {
    match (&cfg.sync.match_by, &cfg.sync.match_csv_file) {
        (MatchBy::Csv, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| MatchError::CsvRead {
                path: path.clone(),
                source,
            })?;
            parse_csv(&text).map_err(|source| MatchError::Csv {
                path: path.clone(),
                source,
            })
        }
        _ => Ok(Vec::new()),
    }
}

/// Records the matching on the users (only those whose match changed). Users whose agent is
/// gone are unmatched, but only while the agent list is not empty (a connector that has
/// not listed its agents yet unmatches nobody).
///
/// The users are read a page at a time and only their ids, UPNs and current matches are
/// kept, and only the match columns are written: at 100,000 people, holding every record
/// (and writing each back whole) made this the daemon's peak of memory.
pub async fn apply(cfg: &EngineConfig, store: &dyn Store) -> Result<MatchReport, MatchError> {
    let agents = store.list_agents(None).await?;
    let csv = mapping(cfg)?;
    let mut planner = Planner::new(&agents, cfg.sync.match_by, &csv);
    // The users matched (even in part) now: none at the first start.
    let mut current: HashMap<String, (Option<String>, Option<String>)> = HashMap::new();
    each_user(store, |u| {
        planner.user(&u);
        if u.cc_connector.is_some() || u.cc_agent_id.is_some() {
            current.insert(u.teams_id, (u.cc_connector, u.cc_agent_id));
        }
    })
    .await?;
    let report = planner.finish();
    let mut changed = Vec::new();
    for p in &report.matched {
        let want = (Some(p.connector.clone()), Some(p.agent_id.clone()));
        if current.remove(&p.teams_id).as_ref() != Some(&want) {
            changed.push(UserMatch {
                teams_id: p.teams_id.clone(),
                connector: want.0,
                agent_id: want.1,
            });
        }
    }
    if !agents.is_empty() {
        changed.extend(current.into_keys().map(|teams_id| UserMatch {
            teams_id,
            connector: None,
            agent_id: None,
        }));
    }
    let now = chrono::Utc::now();
    for chunk in changed.chunks(MATCH_WRITE_CHUNK) {
        store.set_user_matches(chunk, now).await?;
    }
    if !changed.is_empty() {
        tracing::info!(changed = changed.len(), "user matching updated");
    }
    Ok(report)
}
