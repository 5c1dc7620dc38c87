//! Pure bookkeeping of alert conditions: a condition must hold for its delay before it fires,
//! fires once, and is resolved once when it no longer holds. The state is persisted by the
//! caller, so a restart neither repeats an alert nor forgets to resolve one.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::ConditionKind;

/// How bad it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// Identifies the condition across evaluations, e.g. `connector_down:genesys`.
    pub key: String,
    pub kind: ConditionKind,
    pub severity: Severity,
    /// One line for a human: "Connector genesys is down".
    pub summary: String,
    /// What was seen, and what to do.
    pub detail: String,
    /// How long it must hold before it is an alert.
    pub after: Duration,
}

/// A condition that fired and is not resolved yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    pub kind: ConditionKind,
    pub severity: Severity,
    pub summary: String,
    /// Since when the condition holds.
    pub since: DateTime<Utc>,
}

/// What changed in one evaluation: an alert to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub key: String,
    pub kind: ConditionKind,
    pub severity: Severity,
    /// `firing` or `resolved`.
    pub status: AlertStatus,
    pub summary: String,
    pub detail: String,
    pub since: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Conditions seen but not old enough, and conditions that fired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    pending: BTreeMap<String, DateTime<Utc>>,
    firing: BTreeMap<String, Firing>,
}

impl Tracker {
    /// Compares the conditions that hold at `now` with what was seen before. `kinds` are the
    /// kinds this evaluation looked at: a firing condition of another kind is left alone
    /// (it is not resolved because nobody looked).
    pub fn step(
        &mut self,
        now: DateTime<Utc>,
        holding: Vec<Condition>,
        kinds: &[ConditionKind],
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for c in holding {
            seen.insert(c.key.clone());
            if self.firing.contains_key(&c.key) {
                continue;
            }
            let since = *self.pending.entry(c.key.clone()).or_insert(now);
            let held = (now - since).to_std().unwrap_or_default();
            if held >= c.after {
                self.pending.remove(&c.key);
                self.firing.insert(
                    c.key.clone(),
                    Firing {
                        kind: c.kind,
                        severity: c.severity,
                        summary: c.summary.clone(),
                        since,
                    },
                );
                out.push(Transition {
                    key: c.key,
                    kind: c.kind,
                    severity: c.severity,
                    status: AlertStatus::Firing,
                    summary: c.summary,
                    detail: c.detail,
                    since,
                    at: now,
                });
            }
        }
        self.pending
            .retain(|k, _| seen.contains(k) || !kinds.iter().any(|kd| k.starts_with(kd.as_str())));
        let cleared: Vec<String> = self
            .firing
            .iter()
            .filter(|(k, f)| !seen.contains(*k) && kinds.contains(&f.kind))
            .map(|(k, _)| k.clone())
            .collect();
        for key in cleared {
            let f = self.firing.remove(&key).expect("listed");
            out.push(Transition {
                key,
                kind: f.kind,
                severity: f.severity,
                status: AlertStatus::Resolved,
                detail: format!("resolved: {}", f.summary),
                summary: f.summary,
                since: f.since,
                at: now,
            });
        }
        out
    }

    /// Firing conditions, oldest first.
    pub fn firing(&self) -> impl Iterator<Item = (&String, &Firing)> {
        self.firing.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn down(after_secs: u64) -> Condition {
        Condition {
            key: "connector_down:genesys".into(),
            kind: ConditionKind::ConnectorDown,
            severity: Severity::Critical,
            summary: "Connector genesys is down".into(),
            detail: "token refused".into(),
            after: Duration::from_secs(after_secs),
        }
    }

    const ALL: &[ConditionKind] = &[ConditionKind::ConnectorDown, ConditionKind::Drift];

    #[test]
    fn fires_once_after_the_delay_and_resolves_once() {
        let mut t = Tracker::default();
        assert!(t.step(at(0), vec![down(300)], ALL).is_empty(), "too young");
        assert!(t.step(at(299), vec![down(300)], ALL).is_empty());
        let fired = t.step(at(300), vec![down(300)], ALL);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].status, AlertStatus::Firing);
        assert_eq!(fired[0].since, at(0));
        assert!(
            t.step(at(330), vec![down(300)], ALL).is_empty(),
            "no repeat while it holds"
        );
        let resolved = t.step(at(360), vec![], ALL);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].status, AlertStatus::Resolved);
        assert!(t.step(at(390), vec![], ALL).is_empty(), "resolved once");
    }

    #[test]
    fn a_blip_shorter_than_the_delay_never_fires_and_restarts_the_clock() {
        let mut t = Tracker::default();
        t.step(at(0), vec![down(300)], ALL);
        assert!(t.step(at(200), vec![], ALL).is_empty());
        assert!(
            t.step(at(400), vec![down(300)], ALL).is_empty(),
            "the clock restarted at 400"
        );
        assert_eq!(t.step(at(700), vec![down(300)], ALL).len(), 1);
    }

    #[test]
    fn kinds_not_looked_at_are_left_alone_and_state_survives_serde() {
        let mut t = Tracker::default();
        t.step(at(0), vec![down(0)], ALL);
        assert!(t.step(at(10), vec![], &[ConditionKind::Drift]).is_empty());
        let back: Tracker = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.firing().count(), 1);
    }
}
