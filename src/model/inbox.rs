//! What the durable inbox carries: one tagged enum, so producers and the engine's dispatcher
//! agree on every kind of item at compile time.

use serde::{Deserialize, Serialize};

use super::{Observation, UserId};

/// One inbox item. Stored as JSON with the variant name in `kind` (e.g.
/// `{"kind":"observation","user":…}`); the store also keeps `kind` in a column of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InboxPayload {
    /// A status seen on either side.
    Observation(Observation),
    /// A basic Graph notification for these users: the engine reads their presence (one
    /// coalesced `getPresencesByUserId`) and treats the result as observations.
    TeamsRefresh(TeamsRefresh),
    /// A reconciliation requested now (from the API).
    ReconcileRequest,
    /// Ends a user's flapping suspension now (from the console).
    ResumeUser(ResumeUser),
}

/// Payload of [`InboxPayload::ResumeUser`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeUser {
    pub user: UserId,
    /// Who asked (a user principal name), for the audit trail.
    pub by: String,
}

/// Payload of [`InboxPayload::TeamsRefresh`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamsRefresh {
    pub user_ids: Vec<UserId>,
}

impl InboxPayload {
    /// The serde tag of this variant, also kept in the store's `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            InboxPayload::Observation(_) => "observation",
            InboxPayload::TeamsRefresh(_) => "teams_refresh",
            InboxPayload::ReconcileRequest => "reconcile_request",
            InboxPayload::ResumeUser(_) => "resume_user",
        }
    }

    /// The one user the item concerns, when there is one (keeps per-user order in the store).
    pub fn user(&self) -> Option<&UserId> {
        match self {
            InboxPayload::Observation(o) => Some(&o.user),
            InboxPayload::ResumeUser(r) => Some(&r.user),
            InboxPayload::TeamsRefresh(_) | InboxPayload::ReconcileRequest => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Source, Status, TeamsPresence};

    fn samples() -> Vec<InboxPayload> {
        vec![
            InboxPayload::Observation(Observation {
                user: "u1".into(),
                status: Status::Teams(TeamsPresence::new("Busy", "InACall")),
                observed_at: chrono::Utc::now(),
                source: Source::GraphPoll,
                activity: None,
            }),
            InboxPayload::TeamsRefresh(TeamsRefresh {
                user_ids: vec!["u1".into(), "u2".into()],
            }),
            InboxPayload::ReconcileRequest,
            InboxPayload::ResumeUser(ResumeUser {
                user: "u1".into(),
                by: "ops@example.com".into(),
            }),
        ]
    }

    #[test]
    fn kind_is_the_serde_tag_and_payloads_round_trip() {
        for p in samples() {
            let v = serde_json::to_value(&p).unwrap();
            assert_eq!(v["kind"], p.kind(), "{v}");
            assert_eq!(serde_json::from_value::<InboxPayload>(v).unwrap(), p);
        }
    }

    #[test]
    fn an_unknown_kind_does_not_decode() {
        let v = serde_json::json!({ "kind": "something_else" });
        assert!(serde_json::from_value::<InboxPayload>(v).is_err());
    }
}
