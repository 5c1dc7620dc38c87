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
    let mut planner = Planner::new(agents, by, csv);
    users.iter().for_each(|u| planner.user(u));
    planner.finish()
}

/// The matching computed one user at a time, so that the users can be read a page at a time:
/// [`Planner::user`] for each user, then [`Planner::finish`]. Holds the agents' keys and, per
/// agent, the users that name it (id and UPN), not the users' records.
pub struct Planner<'a> {
    by: MatchBy,
    agents: &'a [AgentRecord],
    /// Normalised key → indexes into `agents`.
    agent_by_key: HashMap<String, Vec<usize>>,
    /// For `csv`: Teams id or UPN → agent ids.
    wanted: HashMap<&'a str, Vec<&'a str>>,
    /// Agent index → the users whose key names only that agent.
    taken: HashMap<usize, Vec<Claim>>,
    report: MatchReport,
}

/// A user's claim on an agent: Teams id and UPN.
type Claim = (Box<str>, Box<str>);

impl<'a> Planner<'a> {
    pub fn new(agents: &'a [AgentRecord], by: MatchBy, csv: &'a [(String, String)]) -> Self {
        let mut agent_by_key: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in agents.iter().enumerate() {
            for k in agent_keys(a, by) {
                agent_by_key.entry(k).or_default().push(i);
            }
        }
        let wanted = csv.iter().fold(HashMap::new(), |mut m, (t, a)| {
            m.entry(t.as_str())
                .or_insert_with(Vec::new)
                .push(a.as_str());
            m
        });
        Self {
            by,
            agents,
            agent_by_key,
            wanted,
            taken: HashMap::new(),
            report: MatchReport::default(),
        }
    }

    /// Takes one user into the matching (inactive users match nothing).
    pub fn user(&mut self, u: &UserRecord) {
        if !u.active {
            return;
        }
        let keys = teams_keys(u, self.by);
        let candidates: Vec<usize> = if self.by == MatchBy::Csv {
            let ids: Vec<&str> = keys
                .iter()
                .filter_map(|k| self.wanted.get(k.as_str()))
                .flatten()
                .copied()
                .collect();
            if ids.len() > 1 {
                self.report.conflicts.push(format!(
                    "{}: listed {} times in the CSV",
                    u.upn,
                    ids.len()
                ));
                return;
            }
            ids.iter()
                .flat_map(|id| self.agent_by_key.get(*id).into_iter().flatten().copied())
                .collect()
        } else {
            keys.iter()
                .flat_map(|k| self.agent_by_key.get(k).into_iter().flatten().copied())
                .collect()
        };
        match candidates.as_slice() {
            [] => self.report.unmatched_teams.push(u.upn.clone()),
            [a] => self
                .taken
                .entry(*a)
                .or_default()
                .push((u.teams_id.as_str().into(), u.upn.as_str().into())),
            many => self.report.conflicts.push(format!(
                "{}: {} agents match ({})",
                u.upn,
                many.len(),
                many.iter()
                    .map(|&i| format!("{}/{}", self.agents[i].connector, self.agents[i].agent_id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The matching of the users taken so far.
    pub fn finish(mut self) -> MatchReport {
        let mut report = std::mem::take(&mut self.report);
        for (i, a) in self.agents.iter().enumerate() {
            match self.taken.remove(&i).as_deref() {
                None | Some([]) => report
                    .unmatched_agents
                    .push(format!("{}/{}", a.connector, a.agent_id)),
                Some([(teams_id, upn)]) => report.matched.push(Pair {
                    teams_id: teams_id.to_string(),
                    upn: upn.to_string(),
                    connector: a.connector.clone(),
                    agent_id: a.agent_id.clone(),
                }),
                Some(us) => report.conflicts.push(format!(
                    "{}/{}: matches {} Teams users ({})",
                    a.connector,
                    a.agent_id,
                    us.len(),
                    us.iter()
                        .map(|(_, upn)| &**upn)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        report
    }
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
