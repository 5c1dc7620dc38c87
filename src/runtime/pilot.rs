//! `sync.only`: the pilot group. When the list is not empty, the engine makes decisions only
//! for the users it names; everyone else's statuses are still read, stored and shown, but no
//! decision is made for them and reconciliation leaves them out.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use crate::model::UserId;
use crate::model::directory::UserRecord;

/// The users the engine syncs: `None` when `sync.only` is empty (everyone).
pub type Pilot = Arc<RwLock<Option<HashSet<UserId>>>>;

/// Whether `entry` of `sync.only` names `user`: its Teams object id, user principal name or
/// e-mail address (case-insensitive), its matched agent's id, or `connector:agent`.
pub fn names(entry: &str, user: &UserRecord) -> bool {
    let e = entry.trim();
    let ci = |v: &str| v.eq_ignore_ascii_case(e);
    if ci(&user.teams_id) || ci(&user.upn) || user.mail.as_deref().is_some_and(ci) {
        return true;
    }
    let Some(agent) = user.cc_agent_id.as_deref() else {
        return false;
    };
    if agent == e {
        return true;
    }
    match (user.cc_connector.as_deref(), e.split_once(':')) {
        (Some(conn), Some((c, a))) => conn == c && agent == a,
        _ => false,
    }
}

/// The members of the pilot group among `users` (active ones), and the entries that name
/// nobody. `None` when `only` is empty.
pub fn members(only: &[String], users: &[UserRecord]) -> (Option<HashSet<UserId>>, Vec<String>) {
    if only.is_empty() {
        return (None, Vec::new());
    }
    let active: Vec<&UserRecord> = users.iter().filter(|u| u.active).collect();
    let mut set = HashSet::new();
    let mut unmatched = Vec::new();
    for entry in only {
        let mut any = false;
        for u in active.iter().filter(|u| names(entry, u)) {
            any = true;
            set.insert(u.teams_id.clone());
        }
        if !any {
            unmatched.push(entry.clone());
        }
    }
    (Some(set), unmatched)
}

/// Whether the engine syncs `user`.
pub fn includes(pilot: &Pilot, user: &str) -> bool {
    pilot
        .read()
        .expect("pilot lock")
        .as_ref()
        .is_none_or(|s| s.contains(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, upn: &str, mail: Option<&str>, agent: Option<(&str, &str)>) -> UserRecord {
        UserRecord {
            teams_id: id.into(),
            upn: upn.into(),
            mail: mail.map(Into::into),
            display_name: None,
            business_phones: vec![],
            mobile_phone: None,
            cc_connector: agent.map(|a| a.0.into()),
            cc_agent_id: agent.map(|a| a.1.into()),
            active: true,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn entries_name_users_by_id_upn_mail_agent_or_connector_and_agent() {
        let users = vec![
            user("id-1", "one@corp.example", None, None),
            user("id-2", "two@corp.example", Some("Two@Mail.example"), None),
            user("id-3", "three@corp.example", None, Some(("cc", "agent-3"))),
            user("id-4", "four@corp.example", None, Some(("gc", "agent-4"))),
            user(
                "id-5",
                "five@corp.example",
                None,
                Some(("gc", "arn:aws:x:5")),
            ),
            user("id-6", "six@corp.example", None, Some(("cc", "agent-6"))),
        ];
        let only: Vec<String> = [
            "ID-1",
            "two@mail.example",
            "agent-3",
            "gc:agent-4",
            "arn:aws:x:5",
            "cc:agent-4",
            "nobody@corp.example",
        ]
        .map(String::from)
        .to_vec();
        let (set, unmatched) = members(&only, &users);
        let mut set: Vec<String> = set.unwrap().into_iter().collect();
        set.sort();
        assert_eq!(set, ["id-1", "id-2", "id-3", "id-4", "id-5"]);
        assert_eq!(unmatched, ["cc:agent-4", "nobody@corp.example"]);
        assert_eq!(members(&[], &users), (None, vec![]));
        let pilot: Pilot = Arc::new(RwLock::new(None));
        assert!(includes(&pilot, "anyone"));
        *pilot.write().unwrap() = Some(HashSet::from(["id-1".to_owned()]));
        assert!(includes(&pilot, "id-1") && !includes(&pilot, "id-6"));
    }
}
