//! The audit trail: one [`Record`] per engine decision, written by the workers and read back
//! by `presence-bridge explain <user>` (in plain words) and the decisions API.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::config::WriteMode;
use crate::engine::state::{Action, Decision, Reason, Trigger};
use crate::model::{AuditInput, AuditRecord, CcStatus, Status, TeamsPresence, UserId};
use crate::store::{AuditEntry, JsonText, Store, StoreResult};

/// The engine's account of one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditDecision {
    pub reason: Reason,
    pub trigger: Trigger,
    /// The write the decision made, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write: Option<Action>,
    /// For a hold-down: when the change will be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// The write was not made: the daemon ran in shadow mode (`sync.mode = "shadow"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

/// What the audit trail holds for each decision.
pub type Record = AuditRecord<AuditDecision>;

/// One audit entry with its record read, as the decisions API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub id: i64,
    pub user_id: UserId,
    pub at: DateTime<Utc>,
    pub input: Record,
    /// Which rule matched, e.g. `teams_to_cc[0]`.
    pub rule: Option<String>,
    /// `write_cc`, `write_teams`, `clear_teams` or `none`.
    pub action: String,
    /// Why, in plain words.
    pub reason: String,
}

pub(crate) fn to_utc(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The store's label for a decision's write.
pub(crate) fn action_label(write: Option<&Action>) -> &'static str {
    match write {
        Some(Action::SetCc { .. }) => "write_cc",
        Some(Action::SetTeams { .. }) => "write_teams",
        Some(Action::ClearTeams { .. }) => "clear_teams",
        None => "none",
    }
}

/// The audit entry of one decision about `user`, made on `input`; `shadow`: its write (if
/// any) is not made.
pub(crate) fn entry(user: &str, input: AuditInput, d: &Decision, shadow: bool) -> AuditEntry {
    let record = Record {
        input,
        decision: AuditDecision {
            reason: d.reason,
            trigger: d.trigger,
            write: d.action.clone(),
            due: d.due.map(to_utc),
            shadow: shadow && d.action.is_some(),
        },
    };
    AuditEntry {
        id: 0,
        user_id: user.to_owned(),
        at: to_utc(d.at),
        input: JsonText::of(&record).expect("audit records serialize"),
        rule: d.rule_label(),
        action: action_label(d.action.as_ref()).to_owned(),
        reason: d.reason.words().to_owned(),
    }
}

/// One audit entry as a sentence: when, what came in, which rule, what was done and why.
pub fn describe(e: &AuditEntry) -> String {
    let at = e.at.format("%Y-%m-%d %H:%M:%S%.3fZ");
    let rule = e
        .rule
        .as_deref()
        .map(|r| format!(" [{r}]"))
        .unwrap_or_default();
    let record = match e.input.parse::<Record>() {
        Ok(r) => r,
        Err(_) => return format!("{at}  an unreadable record{rule}, because {}.", e.reason),
    };
    let what = match &record.input {
        AuditInput::Timer => "a timer fired".to_owned(),
        AuditInput::Operator { by } => format!("{by} acted from the console"),
        AuditInput::Reconcile {
            teams,
            contact_center,
        } => format!(
            "reconciliation read Teams {} and contact center {}",
            teams_words(teams.as_ref()),
            cc_words(contact_center.as_ref())
        ),
        AuditInput::Observation {
            source,
            status: Status::Teams(p),
        } => format!(
            "Teams showed {} (from {})",
            teams_words(Some(p)),
            source.as_str()
        ),
        AuditInput::Observation {
            source,
            status: Status::ContactCenter(c),
        } => format!(
            "the contact center showed {} (from {})",
            cc_words(Some(c)),
            source.as_str()
        ),
    };
    let did = match (&record.decision.write, record.decision.shadow) {
        (Some(a), true) => format!("would {} (shadow mode)", write_words(a, true)),
        (Some(a), false) => write_words(a, false),
        (None, _) => "did nothing".to_owned(),
    };
    let due = record
        .decision
        .due
        .map(|d| {
            format!(
                " (until {})",
                d.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            )
        })
        .unwrap_or_default();
    format!("{at}  {what}: {did}{rule}, because {}{due}.", e.reason)
}

/// A write in plain words: "set the contact-center status to …" (`would`: the bare form, for
/// "would …", else the past tense).
pub(crate) fn write_words(a: &Action, would: bool) -> String {
    match a {
        Action::SetCc { status } => format!(
            "set the contact-center status to {}",
            cc_words(Some(status))
        ),
        Action::SetTeams {
            availability,
            activity,
            mode,
        } => format!(
            "set Teams to {availability}/{activity} ({})",
            mode_words(*mode)
        ),
        Action::ClearTeams { mode } if would => {
            format!("remove the bridge's Teams presence ({})", mode_words(*mode))
        }
        Action::ClearTeams { .. } => "removed the bridge's Teams presence".to_owned(),
    }
}

fn teams_words(p: Option<&TeamsPresence>) -> String {
    match p {
        Some(p) => format!("{}/{}", p.availability, p.activity),
        None => "nothing".to_owned(),
    }
}

fn cc_words(c: Option<&CcStatus>) -> String {
    match c {
        Some(c) => format!("\"{}\"", c.name),
        None => "nothing".to_owned(),
    }
}

fn mode_words(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Session => "session",
        WriteMode::Preferred => "preferred",
    }
}

/// The user's last `limit` decisions, oldest first, one sentence each.
pub async fn explain(store: &dyn Store, user: &str, limit: u32) -> StoreResult<Vec<String>> {
    let mut entries = store.list_audit(user, limit).await?;
    entries.reverse();
    Ok(entries.iter().map(describe).collect())
}

/// The user's last `limit` decisions, newest first. Entries whose record cannot be read are
/// logged and left out.
pub async fn decisions(store: &dyn Store, user: &str, limit: u32) -> StoreResult<Vec<Decided>> {
    let entries = store.list_audit(user, limit).await?;
    Ok(entries
        .into_iter()
        .filter_map(|e| match e.input.parse() {
            Ok(input) => Some(Decided {
                id: e.id,
                user_id: e.user_id,
                at: e.at,
                input,
                rule: e.rule,
                action: e.action,
                reason: e.reason,
            }),
            Err(err) => {
                tracing::warn!(id = e.id, user, error = %err, "unreadable audit record left out");
                None
            }
        })
        .collect())
}

#[cfg(test)]
mod tests;
