//! Matching Teams users to contact-center agents by the configured key (`sync.match_by`):
//! email (Teams `mail`, else `userPrincipalName`), UPN, display name (all case-insensitive),
//! or an explicit CSV file of `teams_id_or_upn,cc_agent_id` lines. Ambiguous keys are
//! conflicts and match nothing. [`apply`] records the matches on the users; [`plan`] only
//! reports (for `presence-bridge users --report`).

use std::collections::HashMap;

use serde::Serialize;

use crate::engine::config::MatchBy;
use crate::model::directory::{AgentRecord, UserRecord};

/// A line of the matching CSV file that is not `teams_id_or_upn,cc_agent_id`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: expected teams_id_or_upn,cc_agent_id")]
pub struct CsvError {
    pub line: usize,
}

/// One matched pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pair {
    pub teams_id: String,
    pub upn: String,
    pub connector: String,
    pub agent_id: String,
}

/// The outcome of a matching pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MatchReport {
    pub matched: Vec<Pair>,
    /// Active Teams users without an agent (UPNs).
    pub unmatched_teams: Vec<String>,
    /// Agents without a Teams user (`connector/agent_id`).
    pub unmatched_agents: Vec<String>,
    /// Keys that are ambiguous, in words.
    pub conflicts: Vec<String>,
}

fn norm(s: &str) -> String {
    s.trim().to_lowercase()
}

fn teams_keys(u: &UserRecord, by: MatchBy) -> Vec<String> {
    match by {
        MatchBy::Email => vec![norm(u.mail.as_deref().unwrap_or(&u.upn))],
        MatchBy::Upn => vec![norm(&u.upn)],
        MatchBy::DisplayName => u.display_name.iter().map(|d| norm(d)).collect(),
        MatchBy::Csv => vec![norm(&u.teams_id), norm(&u.upn)],
    }
}

fn agent_keys(a: &AgentRecord, by: MatchBy) -> Vec<String> {
    let keys: Vec<&String> = match by {
        MatchBy::Email => a.email.iter().collect(),
        MatchBy::Upn => a.email.iter().chain(a.username.iter()).collect(),
        MatchBy::DisplayName => a.display_name.iter().collect(),
        MatchBy::Csv => vec![&a.agent_id],
    };
    let mut keys: Vec<String> = keys.into_iter().map(|k| norm(k)).collect();
    keys.dedup();
    keys
}

/// Parses the CSV mapping: `teams_id_or_upn,cc_agent_id` per line; `#` comments and a
/// header line starting with `teams` are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<(String, String)>, CsvError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || (i == 0 && line.starts_with("teams")) {
            continue;
        }
        match line.split_once(',') {
            Some((t, a)) if !t.trim().is_empty() && !a.trim().is_empty() => {
                out.push((norm(t), norm(a)))
            }
            _ => return Err(CsvError { line: i + 1 }),
        }
    }
    Ok(out)
}

/// Computes the matching without changing anything.
pub fn plan(
    users: &[UserRecord],
    agents: &[AgentRecord],
    by: MatchBy,
    csv: &[(String, String)],
) -> MatchReport {
    let mut report = MatchReport::default();
    let mut agent_by_key: HashMap<String, Vec<&AgentRecord>> = HashMap::new();
    for a in agents {
        for k in agent_keys(a, by) {
            agent_by_key.entry(k).or_default().push(a);
        }
    }
    let wanted: HashMap<&str, Vec<&str>> = csv.iter().fold(HashMap::new(), |mut m, (t, a)| {
        m.entry(t.as_str()).or_default().push(a.as_str());
        m
    });
    let mut taken: HashMap<(String, String), Vec<&UserRecord>> = HashMap::new();
    for u in users.iter().filter(|u| u.active) {
        let keys = teams_keys(u, by);
        let candidates: Vec<&AgentRecord> = if by == MatchBy::Csv {
            let ids: Vec<&str> = keys
                .iter()
                .filter_map(|k| wanted.get(k.as_str()))
                .flatten()
                .copied()
                .collect();
            if ids.len() > 1 {
                report
                    .conflicts
                    .push(format!("{}: listed {} times in the CSV", u.upn, ids.len()));
                continue;
            }
            ids.iter()
                .flat_map(|id| agent_by_key.get(*id).into_iter().flatten().copied())
                .collect()
        } else {
            keys.iter()
                .flat_map(|k| agent_by_key.get(k).into_iter().flatten().copied())
                .collect()
        };
        match candidates.as_slice() {
            [] => report.unmatched_teams.push(u.upn.clone()),
            [a] => taken
                .entry((a.connector.clone(), a.agent_id.clone()))
                .or_default()
                .push(u),
            many => report.conflicts.push(format!(
                "{}: {} agents match ({})",
                u.upn,
                many.len(),
                many.iter()
                    .map(|a| format!("{}/{}", a.connector, a.agent_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    for a in agents {
        let key = (a.connector.clone(), a.agent_id.clone());
        match taken.get(&key).map(Vec::as_slice) {
            None | Some([]) => report
                .unmatched_agents
                .push(format!("{}/{}", a.connector, a.agent_id)),
            Some([u]) => report.matched.push(Pair {
                teams_id: u.teams_id.clone(),
                upn: u.upn.clone(),
                connector: a.connector.clone(),
                agent_id: a.agent_id.clone(),
            }),
            Some(us) => report.conflicts.push(format!(
                "{}/{}: matches {} Teams users ({})",
                a.connector,
                a.agent_id,
                us.len(),
                us.iter()
                    .map(|u| u.upn.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, upn: &str, mail: Option<&str>, name: &str) -> UserRecord {
        UserRecord {
            teams_id: id.into(),
            upn: upn.into(),
            mail: mail.map(Into::into),
            display_name: Some(name.into()),
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: None,
            cc_agent_id: None,
            active: true,
            updated_at: chrono::Utc::now(),
        }
    }

    fn agent(id: &str, email: &str, name: &str) -> AgentRecord {
        AgentRecord {
            connector: "cc".into(),
            agent_id: id.into(),
            email: Some(email.into()),
            username: None,
            display_name: Some(name.into()),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn email_matching_reports_pairs_unmatched_and_conflicts() {
        let users = vec![
            user(
                "t1",
                "ann@corp.example",
                Some("Ann.Lee@Example.com"),
                "Ann Lee",
            ),
            user("t2", "bob@example.com", None, "Bob"),
            user("t3", "cy@example.com", None, "Cy"),
            user("t4", "dee@example.com", None, "Dee"),
        ];
        let agents = vec![
            agent("a1", "ann.lee@example.com", "Ann Lee"),
            agent("a2", "BOB@example.com", "Bob"),
            agent("a3", "dee@example.com", "Dee"),
            agent("a4", "dee@example.com", "Dee 2"),
            agent("a5", "eve@example.com", "Eve"),
        ];
        let r = plan(&users, &agents, MatchBy::Email, &[]);
        let pairs: Vec<_> = r
            .matched
            .iter()
            .map(|p| (&*p.teams_id, &*p.agent_id))
            .collect();
        assert_eq!(pairs, vec![("t1", "a1"), ("t2", "a2")]);
        assert_eq!(r.unmatched_teams, vec!["cy@example.com"]);
        assert_eq!(r.unmatched_agents, vec!["cc/a3", "cc/a4", "cc/a5"]);
        assert_eq!(r.conflicts.len(), 1, "{:?}", r.conflicts);
        assert!(r.conflicts[0].starts_with("dee@example.com: 2 agents"));
    }

    #[test]
    fn csv_matching_by_id_or_upn() {
        let users = vec![
            user("t1", "ann@example.com", None, "Ann"),
            user("t2", "bob@example.com", None, "Bob"),
        ];
        let agents = vec![
            agent("A1", "x@example.com", "X"),
            agent("a2", "y@example.com", "Y"),
        ];
        let csv = parse_csv("teams,agent\nT1,a1\n# note\nbob@example.com,a2\n").unwrap();
        let r = plan(&users, &agents, MatchBy::Csv, &csv);
        assert_eq!(r.matched.len(), 2, "{r:?}");
        assert!(parse_csv("only-one-column").is_err());
    }
}
