//! Per-user engine state and the engine's outputs. Plain data, serialized to the store so echo
//! memory, overrides and suspensions survive a restart.

use serde::{Deserialize, Serialize};

use crate::engine::config::WriteMode;
use crate::model::contact_center::Activity;
use crate::model::{CcStatus, Side, Source, TeamsPresence};

/// Engine time: milliseconds since the Unix epoch.
pub type Millis = i64;

/// A change the engine has decided but not yet made (hold-down running).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The rule that will apply, or `None` for "no rule" (restore / clear).
    pub rule: Option<u16>,
    /// When it is made unless something changes first.
    pub due: Millis,
}

/// Teams → contact center: the override in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamsToCcState {
    /// Rule whose status the bridge put in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u16>,
    /// The agent's status before the override (what restore puts back). Boxed, like the
    /// other parts most users have none of, so that a user without them costs a pointer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Box<CcStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// After a login with `on_cc_login = keep_cc`: wait for the next Teams change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet: bool,
}

/// The Teams presence the bridge holds for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldPresence {
    pub availability: String,
    pub activity: String,
    pub mode: WriteMode,
}

impl HeldPresence {
    pub fn shows(&self, p: &TeamsPresence) -> bool {
        self.availability.eq_ignore_ascii_case(&p.availability)
            && self.activity.eq_ignore_ascii_case(&p.activity)
    }
}

/// Contact center → Teams: the presence the bridge holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CcToTeamsState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u16>,
    /// The presence the bridge holds (a session or a preferred presence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Box<HeldPresence>>,
    /// The user's own Teams presence: the last one that was not the echo of the bridge's.
    /// Rules and `only_if_teams` guards look at this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<TeamsPresence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// Next keep-alive re-post of a held session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_due: Option<Millis>,
}

/// The last contact-center status the bridge wrote (echo memory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenCc {
    pub status: CcStatus,
    pub at: Millis,
    /// True until a different status is observed: while live, seeing it again is an echo.
    pub live: bool,
}

/// The newest observation applied on one side: its time (epoch milliseconds, as the source
/// reported it) and, for Teams, Graph's `sequenceNumber` when the source carried one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<compact_str::CompactString>,
}

impl Seen {
    /// Whether an observation made at `at` (with `sequence`) is older than this one. Graph's
    /// sequence numbers decide when both are known (they order one user's presence versions
    /// exactly, and an equal one is the same version again); otherwise the times do, and an
    /// equal time is not older.
    pub fn supersedes(&self, at: Millis, sequence: Option<&str>) -> bool {
        match (self.sequence.as_deref(), sequence) {
            (Some(old), Some(new)) => (new.len(), new) <= (old.len(), old),
            _ => at < self.at,
        }
    }

    /// This stamp moved forward to an observation that does not [`Seen::supersedes`] it.
    pub fn advanced(old: Option<&Seen>, at: Millis, sequence: Option<&str>) -> Seen {
        Seen {
            at: old.map_or(at, |o| o.at.max(at)),
            sequence: sequence
                .map(Into::into)
                .or_else(|| old.and_then(|o| o.sequence.clone())),
        }
    }
}

/// Everything the engine knows about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<TeamsPresence>,
    /// When the Teams presence last changed.
    #[serde(default)]
    pub teams_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc: Option<CcStatus>,
    #[serde(default)]
    pub cc_at: Millis,
    /// What the agent is doing (on a contact, wrap-up…), as last reported with the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc_activity: Option<Activity>,
    /// The newest Teams observation applied: older ones are stale and change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams_seen: Option<Seen>,
    /// The newest contact-center observation applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc_seen: Option<Seen>,
    #[serde(default)]
    pub t2c: TeamsToCcState,
    #[serde(default)]
    pub c2t: CcToTeamsState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote_cc: Option<Box<WrittenCc>>,
    /// When the bridge last wrote to Teams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrote_teams_at: Option<Millis>,
    /// Times of recent writes, for the oscillation breaker (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_writes: Vec<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_until: Option<Millis>,
    /// The connector the user's agent is matched on (the runtime sets it from the directory
    /// before each call): rules naming another connector do not apply to the user, and
    /// statuses resolve in this connector's catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
}

/// The sync state shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    Ok,
    Holding,
    Suspended,
}

impl UserState {
    /// The earliest moment the engine wants to be called back for this user.
    pub fn next_deadline(&self) -> Option<Millis> {
        [
            self.t2c.pending.as_ref().map(|p| p.due),
            self.c2t.pending.as_ref().map(|p| p.due),
            self.c2t.keepalive_due,
            self.suspended_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn sync_state(&self, now: Millis) -> SyncState {
        if self.suspended_until.is_some_and(|u| u > now) {
            SyncState::Suspended
        } else if self.t2c.pending.is_some() || self.c2t.pending.is_some() {
            SyncState::Holding
        } else {
            SyncState::Ok
        }
    }
}

/// A write the runtime carries out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Set the agent's contact-center status.
    SetCc { status: CcStatus },
    /// `setPresence` (session) or `setUserPreferredPresence` (preferred).
    SetTeams {
        availability: String,
        activity: String,
        mode: WriteMode,
    },
    /// `clearPresence` (session) or `clearUserPreferredPresence` (preferred).
    ClearTeams { mode: WriteMode },
}

impl Action {
    pub fn side(&self) -> Side {
        match self {
            Action::SetCc { .. } => Side::ContactCenter,
            _ => Side::Teams,
        }
    }
}

/// What made the engine decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Observation { side: Side, source: Source },
    Timer,
}

/// Why the engine did (or did not) act. Each has a plain-words explanation ([`Reason::words`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Echo,
    Stale,
    Unchanged,
    DirectionOff,
    Suspended,
    Holding,
    HoldCancelled,
    Mapped,
    AlreadySet,
    Restored,
    RestoreSkippedAgentChanged,
    OverrideEnded,
    Cleared,
    NothingToClear,
    KeepAlive,
    SessionLost,
    FlapSuspended,
    Resumed,
    LoggedOut,
    LoginKeepCc,
    OverrideAbandoned,
    NoRule,
}

impl Reason {
    pub fn words(self) -> &'static str {
        match self {
            Reason::Echo => "it is the echo of the bridge's own write, so it is not a user change",
            Reason::Stale => {
                "it is older than what was already seen on that side (observation time or Graph \
                 sequence number), so it changes nothing"
            }
            Reason::Unchanged => "nothing to do: the mapped status is already in place",
            Reason::DirectionOff => "this sync direction is turned off (sync.directions)",
            Reason::Suspended => "sync for this user is suspended after flapping",
            Reason::Holding => "waiting for the status to persist through the hold-down",
            Reason::HoldCancelled => "the status went back before the hold-down ended",
            Reason::Mapped => "a mapping rule matched",
            Reason::AlreadySet => "the other side already shows the mapped status",
            Reason::Restored => "the override ended, so the previous status is put back",
            Reason::RestoreSkippedAgentChanged => {
                "the override ended but the agent or a supervisor changed the status meanwhile, \
                 so it is left alone"
            }
            Reason::OverrideEnded => "the override ended; the rule does not restore",
            Reason::Cleared => "the bridge's Teams presence is removed",
            Reason::NothingToClear => "no rule matches and the bridge holds no Teams presence",
            Reason::KeepAlive => "the bridge's Teams session is re-posted before it fades",
            Reason::SessionLost => {
                "Teams no longer shows the bridge's presence, so it is posted again"
            }
            Reason::FlapSuspended => "too many changes in a short time: sync suspended",
            Reason::Resumed => "the suspension ended; sync resumes",
            Reason::LoggedOut => "the agent is logged out of the contact center",
            Reason::LoginKeepCc => {
                "the agent logged in; their contact-center status is kept (on_cc_login = keep_cc)"
            }
            Reason::OverrideAbandoned => {
                "the agent or a supervisor changed the status the bridge had set; nothing will \
                 be restored"
            }
            Reason::NoRule => "no mapping rule matches",
        }
    }
}

/// Which table a rule belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    TeamsToCc,
    CcToTeams,
}

/// One decision: what triggered it, the rule involved, the write (if any) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub at: Millis,
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<(Table, u16)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    pub reason: Reason,
    /// For `Holding`: when the change will be made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Millis>,
}

impl Decision {
    pub fn rule_label(&self) -> Option<String> {
        self.rule.map(|(t, i)| match t {
            Table::TeamsToCc => format!("teams_to_cc[{i}]"),
            Table::CcToTeams => format!("cc_to_teams[{i}]"),
        })
    }
}
