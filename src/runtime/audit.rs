//! Reading the audit trail back in plain words: `presence-bridge explain <user>`.

use crate::store::{AuditEntry, Store, StoreResult};

/// One audit entry as a sentence: when, what came in, which rule, what was done and why.
pub fn describe(e: &AuditEntry) -> String {
    let input = &e.input["input"];
    let what = if input.get("timer").is_some() {
        "a timer fired".to_owned()
    } else if let Some(r) = input.get("reconcile") {
        format!(
            "reconciliation read Teams {} and contact center {}",
            teams_words(&r["teams"]),
            cc_words(&r["contact_center"])
        )
    } else {
        let status = &input["status"];
        match input["side"].as_str() {
            Some("teams") => format!(
                "Teams showed {} (from {})",
                teams_words(status),
                input["source"].as_str().unwrap_or("?")
            ),
            _ => format!(
                "the contact center showed {} (from {})",
                cc_words(status),
                input["source"].as_str().unwrap_or("?")
            ),
        }
    };
    let write = &e.input["decision"]["write"];
    let did = match e.action.as_str() {
        "write_cc" => format!(
            "set the contact-center status to {}",
            cc_words(&write["status"])
        ),
        "write_teams" => format!(
            "set Teams to {}/{} ({})",
            write["availability"].as_str().unwrap_or("?"),
            write["activity"].as_str().unwrap_or("?"),
            write["mode"].as_str().unwrap_or("session")
        ),
        "clear_teams" => "removed the bridge's Teams presence".to_owned(),
        _ => "did nothing".to_owned(),
    };
    let rule = e
        .rule
        .as_deref()
        .map(|r| format!(" [{r}]"))
        .unwrap_or_default();
    let due = e.input["decision"]["due"]
        .as_str()
        .map(|d| format!(" (until {d})"))
        .unwrap_or_default();
    format!(
        "{}  {what}: {did}{rule}, because {}{due}.",
        e.at.format("%Y-%m-%d %H:%M:%S%.3fZ"),
        e.reason
    )
}

fn teams_words(v: &serde_json::Value) -> String {
    match (v["availability"].as_str(), v["activity"].as_str()) {
        (Some(a), Some(b)) => format!("{a}/{b}"),
        _ => "nothing".to_owned(),
    }
}

fn cc_words(v: &serde_json::Value) -> String {
    match v["name"].as_str() {
        Some(n) => format!("\"{n}\""),
        None => "nothing".to_owned(),
    }
}

/// The user's last `limit` decisions, oldest first, one sentence each.
pub async fn explain(store: &dyn Store, user: &str, limit: u32) -> StoreResult<Vec<String>> {
    let mut entries = store.list_audit(user, limit).await?;
    entries.reverse();
    Ok(entries.iter().map(describe).collect())
}
