//! The engine's commands: `explain <user>` and `users --report`.

use super::out::outln;
use crate::app::config::Config;
use crate::runtime::audit;
use crate::runtime::matching;
use crate::runtime::pilot;

/// `presence-bridge explain <user>`.
pub(super) async fn explain(config: &Config, user: &str, limit: u32) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let lines = audit::explain(store.as_ref(), user, limit)
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    if lines.is_empty() {
        outln!("no decisions recorded for {user}")?;
    }
    for l in lines {
        outln!("{l}")?;
    }
    let only = &config.engine().sync.only;
    if !only.is_empty()
        && let Ok(u) = store.get_user(user).await
        && !only.iter().any(|e| pilot::names(e, &u))
    {
        outln!(
            "{user} is not in sync.only (the pilot group): the bridge makes no decisions for them"
        )?;
    }
    Ok(())
}

/// `presence-bridge users [--report]`.
pub(super) async fn users(config: &Config, report: bool) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let r = matching::plan_from_store(&config.engine(), store.as_ref())
        .await
        .map_err(anyhow::Error::msg)?;
    outln!(
        "matched: {}, unmatched Teams users: {}, unmatched agents: {}, conflicts: {}",
        r.matched.len(),
        r.unmatched_teams.len(),
        r.unmatched_agents.len(),
        r.conflicts.len()
    )?;
    if report {
        for p in &r.matched {
            outln!(
                "match     {} ({}) <-> {}/{}",
                p.upn,
                p.teams_id,
                p.connector,
                p.agent_id
            )?;
        }
        for u in &r.unmatched_teams {
            outln!("no agent  {u}")?;
        }
        for a in &r.unmatched_agents {
            outln!("no user   {a}")?;
        }
        for c in &r.conflicts {
            outln!("conflict  {c}")?;
        }
    }
    Ok(())
}
