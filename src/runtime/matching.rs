//! Matching at run time: reads users, agents and (for `sync.match_by = "csv"`) the mapping
//! file, computes the pure plan of [`crate::engine::matching`], and records it on the users.

use std::collections::HashMap;

use crate::engine::config::{EngineConfig, MatchBy};
use crate::engine::matching::{CsvError, MatchReport, Pair, parse_csv, plan};
use crate::model::directory::{AgentRecord, UserRecord};
use crate::store::{Store, StoreError};

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

/// Reads users, agents and (for `csv`) the mapping file, and computes the matching.
pub async fn plan_from_store(
    cfg: &EngineConfig,
    store: &dyn Store,
) -> Result<MatchReport, MatchError> {
    let (users, agents) = read_both(store).await?;
    plan_with(cfg, &users, &agents)
}

async fn read_both(store: &dyn Store) -> Result<(Vec<UserRecord>, Vec<AgentRecord>), StoreError> {
    let users = store.list_users().await?;
    let agents = store.list_agents(None).await?;
    Ok((users, agents))
}

/// Computes the matching of the given users and agents (read live by `users --online`).
pub fn plan_with(
    cfg: &EngineConfig,
    users: &[UserRecord],
    agents: &[AgentRecord],
) -> Result<MatchReport, MatchError> {
    let csv = match (&cfg.sync.match_by, &cfg.sync.match_csv_file) {
        (MatchBy::Csv, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| MatchError::CsvRead {
                path: path.clone(),
                source,
            })?;
            parse_csv(&text).map_err(|source| MatchError::Csv {
                path: path.clone(),
                source,
            })?
        }
        _ => Vec::new(),
    };
    Ok(plan(users, agents, cfg.sync.match_by, &csv))
}

/// Records the matching on the users (only those whose match changed). Users whose agent is
/// gone are unmatched, but only while the agent list is not empty (a connector that has
/// not listed its agents yet unmatches nobody).
pub async fn apply(cfg: &EngineConfig, store: &dyn Store) -> Result<MatchReport, MatchError> {
    let (users, agents) = read_both(store).await?;
    let report = plan_with(cfg, &users, &agents)?;
    let have_agents = !agents.is_empty();
    let by_id: HashMap<&str, &Pair> = report
        .matched
        .iter()
        .map(|p| (p.teams_id.as_str(), p))
        .collect();
    let mut changed = Vec::new();
    for mut u in users {
        let want = by_id
            .get(u.teams_id.as_str())
            .map(|p| (Some(p.connector.clone()), Some(p.agent_id.clone())));
        let want = match want {
            Some(w) => w,
            None if have_agents => (None, None),
            None => continue,
        };
        if (u.cc_connector.clone(), u.cc_agent_id.clone()) != want {
            (u.cc_connector, u.cc_agent_id) = want;
            u.updated_at = chrono::Utc::now();
            changed.push(u);
        }
    }
    if !changed.is_empty() {
        store.upsert_users(&changed).await?;
        tracing::info!(changed = changed.len(), "user matching updated");
    }
    Ok(report)
}
