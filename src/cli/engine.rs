//! The engine's commands: `explain <user>` and `users --report`.

use super::out::outln;
use crate::app::config::Config;
use crate::runtime::audit;
use crate::runtime::matching;
use crate::runtime::pilot;

/// The Teams-licensed directory from Graph and every connector's agents, read now.
async fn read_live(
    config: &Config,
) -> anyhow::Result<(
    Vec<crate::model::directory::UserRecord>,
    Vec<crate::model::directory::AgentRecord>,
)> {
    let mut users = Vec::new();
    if config.graph.enabled() {
        let client = crate::graph::GraphClient::new(&config.graph, None)
            .map_err(|e| anyhow::anyhow!("graph: {e}"))?;
        users = client
            .list_teams_users(&config.graph.teams_service_plan_ids)
            .await
            .map_err(|e| anyhow::anyhow!("graph: reading the directory: {e}"))?
            .iter()
            .map(|u| u.to_record(None))
            .collect();
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let connectors = crate::connectors::build_connectors(&config.connectors, None, &cancel)
        .await
        .map_err(|e| anyhow::anyhow!("connectors: {e}"))?;
    let mut agents = Vec::new();
    let now = chrono::Utc::now();
    for c in &connectors {
        let listed = c
            .list_agents()
            .await
            .map_err(|e| anyhow::anyhow!("connector \"{}\": listing agents: {e}", c.name()))?;
        agents.extend(
            listed
                .into_iter()
                .map(|a| crate::model::directory::AgentRecord::listed(c.name(), a, now)),
        );
    }
    cancel.cancel();
    Ok((users, agents))
}

/// `presence-bridge explain <user>`.
pub(super) async fn explain(config: &Config, who: &str, limit: u32) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let user = &resolve_user(store.as_ref(), who).await?;
    let lines = audit::explain(store.as_ref(), user, limit)
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    if lines.is_empty() {
        outln!("no decisions recorded for {who}")?;
    } else if who != user {
        outln!("{who} is {user}:")?;
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

/// The Teams object id of the person `who` names: an object id, a UPN, an e-mail address or
/// a display name (case-insensitive). An id the store does not know is taken as given (its
/// decisions may still be recorded); a name that fits several people is an error listing them.
async fn resolve_user(store: &dyn crate::store::Store, who: &str) -> anyhow::Result<String> {
    if store.get_user(who).await.is_ok() {
        return Ok(who.to_owned());
    }
    let users = store
        .list_users()
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    let fits = |u: &crate::model::directory::UserRecord| {
        u.upn.eq_ignore_ascii_case(who)
            || u.mail
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(who))
            || u.display_name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(who))
    };
    let found: Vec<_> = users.iter().filter(|u| fits(u)).collect();
    match found.as_slice() {
        [] => Ok(who.to_owned()),
        [one] => Ok(one.teams_id.clone()),
        many => anyhow::bail!(
            "{who:?} names {} people: {}; give a UPN or object id",
            many.len(),
            many.iter()
                .map(|u| format!("{} [{}]", u.label(), u.teams_id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `presence-bridge users [--report] [--online]`.
pub(super) async fn users(config: &Config, report: bool, online: bool) -> anyhow::Result<()> {
    let r = if online {
        let (users, agents) = read_live(config).await?;
        matching::plan_with(&config.engine(), &users, &agents).map_err(anyhow::Error::msg)?
    } else {
        let store = super::open_store(config).await?;
        matching::plan_from_store(&config.engine(), store.as_ref())
            .await
            .map_err(anyhow::Error::msg)?
    };
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
