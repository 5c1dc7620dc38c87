//! The engine's CLI commands: `explain <user>` and `users --report`. They return the exit code.

use crate::app::config::Config;
use crate::cli::EXIT_FAILURE;
use crate::engine::matching;
use crate::runtime::audit;

/// `presence-bridge explain <user>`.
pub async fn explain(config: &Config, user: &str, limit: u32) -> i32 {
    let store = match crate::store::open(&config.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: database: {e}");
            return EXIT_FAILURE;
        }
    };
    match audit::explain(store.as_ref(), user, limit).await {
        Ok(lines) if lines.is_empty() => {
            println!("no decisions recorded for {user}");
            0
        }
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            0
        }
        Err(e) => {
            eprintln!("error: database: {e}");
            EXIT_FAILURE
        }
    }
}

/// `presence-bridge users [--report]`.
pub async fn users(config: &Config, report: bool) -> i32 {
    let store = match crate::store::open(&config.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: database: {e}");
            return EXIT_FAILURE;
        }
    };
    let r = match matching::plan_from_store(&config.engine(), store.as_ref()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILURE;
        }
    };
    println!(
        "matched: {}, unmatched Teams users: {}, unmatched agents: {}, conflicts: {}",
        r.matched.len(),
        r.unmatched_teams.len(),
        r.unmatched_agents.len(),
        r.conflicts.len()
    );
    if report {
        for p in &r.matched {
            println!(
                "match     {} ({}) <-> {}/{}",
                p.upn, p.teams_id, p.connector, p.agent_id
            );
        }
        for u in &r.unmatched_teams {
            println!("no agent  {u}");
        }
        for a in &r.unmatched_agents {
            println!("no user   {a}");
        }
        for c in &r.conflicts {
            println!("conflict  {c}");
        }
    }
    0
}
