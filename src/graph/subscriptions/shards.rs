//! Pure planning for presence subscriptions: which users go in which shard (stable: users stay
//! in the shard whose subscription already covers them, newcomers fill free room), and which
//! sync account owns each shard (kept where possible). When people leave the scope and fewer
//! shards would do, the smallest shards are dissolved into the others' free room, so the
//! number of subscriptions (and sync accounts) follows the scope down as well as up.

use std::collections::{BTreeMap, HashSet};

use crate::graph::subscriptions::api::presence_resource_ids;
use crate::store::SubscriptionRecord;

/// One shard of at most `shard_size` users.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub shard: i64,
    pub members: Vec<String>,
    /// The stored subscription for this shard, if any.
    pub record: Option<SubscriptionRecord>,
    /// The sync account that owns (or will own) its subscription; `None` = polled.
    pub account: Option<String>,
}

impl Slot {
    /// The stored subscription covers exactly this shard's members.
    pub fn record_matches(&self) -> bool {
        self.record.as_ref().is_some_and(|r| {
            let mut ids = presence_resource_ids(&r.resource);
            ids.sort();
            let mut m = self.members.clone();
            m.sort();
            ids == m
        })
    }
}

/// The plan and the stored presence subscriptions that belong to no shard any more.
pub fn plan(
    users: &[String],
    accounts: &[String],
    records: &[SubscriptionRecord],
    shard_size: usize,
) -> (Vec<Slot>, Vec<SubscriptionRecord>) {
    let wanted: HashSet<&str> = users.iter().map(String::as_str).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut slots: BTreeMap<i64, Slot> = BTreeMap::new();
    let mut orphans = Vec::new();
    let mut sorted: Vec<&SubscriptionRecord> = records.iter().collect();
    sorted.sort_by_key(|r| (r.shard, r.created_at));
    for r in sorted {
        let Some(shard) = r.shard.filter(|s| *s >= 0 && !slots.contains_key(s)) else {
            orphans.push(r.clone());
            continue;
        };
        let mut members = Vec::new();
        for id in presence_resource_ids(&r.resource) {
            if members.len() < shard_size
                && wanted.contains(id.as_str())
                && placed.insert(id.clone())
            {
                members.push(id);
            }
        }
        if members.is_empty() {
            orphans.push(r.clone());
            continue;
        }
        slots.insert(
            shard,
            Slot {
                shard,
                members,
                record: Some(r.clone()),
                account: None,
            },
        );
    }
    // More shards than the users need (people left the scope, or the scope shrank at an
    // upgrade): dissolve the smallest while the others have room for its members.
    let needed = users.len().div_ceil(shard_size.max(1));
    while slots.len() > needed {
        let Some((&victim, smallest)) = slots
            .iter()
            .min_by_key(|(shard, s)| (s.members.len(), std::cmp::Reverse(**shard)))
        else {
            break;
        };
        let room: usize = slots
            .iter()
            .filter(|(shard, _)| **shard != victim)
            .map(|(_, s)| shard_size.saturating_sub(s.members.len()))
            .sum();
        if room < smallest.members.len() {
            break;
        }
        let gone = slots.remove(&victim).expect("present");
        for m in &gone.members {
            placed.remove(m);
        }
        orphans.extend(gone.record);
    }
    let mut rest = users.iter().filter(|u| !placed.contains(*u)).cloned();
    let mut next_free = 0i64;
    'fill: loop {
        let room = slots.values_mut().find(|s| s.members.len() < shard_size);
        let slot = match room {
            Some(s) => s,
            None => {
                while slots.contains_key(&next_free) {
                    next_free += 1;
                }
                let peek = rest.next();
                let Some(first) = peek else { break 'fill };
                slots.insert(
                    next_free,
                    Slot {
                        shard: next_free,
                        members: vec![first],
                        record: None,
                        account: None,
                    },
                );
                slots.get_mut(&next_free).expect("just inserted")
            }
        };
        while slot.members.len() < shard_size {
            match rest.next() {
                Some(u) => slot.members.push(u),
                None => break 'fill,
            }
        }
    }
    let healthy: HashSet<&str> = accounts.iter().map(String::as_str).collect();
    let mut taken: HashSet<String> = HashSet::new();
    for slot in slots.values_mut() {
        let owner = slot.record.as_ref().and_then(|r| r.account_id.clone());
        if let Some(a) = owner.filter(|a| healthy.contains(a.as_str()) && !taken.contains(a)) {
            taken.insert(a.clone());
            slot.account = Some(a);
        }
    }
    let mut free = accounts.iter().filter(|a| !taken.contains(*a));
    for slot in slots.values_mut().filter(|s| s.account.is_none()) {
        slot.account = free.next().cloned();
    }
    (slots.into_values().collect(), orphans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::subscriptions::api::presence_resource;

    fn users(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("u{i:05}")).collect()
    }

    fn record(shard: i64, members: &[String], account: &str) -> SubscriptionRecord {
        SubscriptionRecord {
            id: format!("sub-{shard}"),
            kind: "presence".into(),
            shard: Some(shard),
            account_id: Some(account.into()),
            resource: presence_resource(members),
            client_state: "s".into(),
            expires_at: chrono::Utc::now(),
            created_at: chrono::Utc::now(),
            last_renewed_at: None,
            last_reauthorized_at: None,
            state: "active".into(),
            last_error: None,
        }
    }

    #[test]
    fn splits_into_shards_and_gives_accounts() {
        let u = users(1300);
        let (slots, orphans) = plan(&u, &["a".into()], &[], 650);
        assert!(orphans.is_empty());
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].members.len(), 650);
        assert_eq!(slots[1].members.len(), 650);
        assert_eq!(slots[0].account.as_deref(), Some("a"));
        assert_eq!(
            slots[1].account, None,
            "too few accounts: second shard polled"
        );
    }

    #[test]
    fn keeps_existing_shards_and_owners() {
        let u = users(1300);
        let recs = vec![record(0, &u[650..], "b"), record(1, &u[..650], "a")];
        let (slots, orphans) = plan(&u, &["a".into(), "b".into()], &recs, 650);
        assert!(orphans.is_empty());
        assert!(slots.iter().all(Slot::record_matches));
        assert_eq!(slots[0].account.as_deref(), Some("b"));
        assert_eq!(slots[1].account.as_deref(), Some("a"));
    }

    #[test]
    fn a_leaver_and_a_newcomer_change_only_one_shard() {
        let mut u = users(1300);
        let recs = vec![record(0, &u[..650], "a"), record(1, &u[650..], "b")];
        u.remove(10);
        u.push("zz-new".into());
        let (slots, _) = plan(&u, &["a".into(), "b".into()], &recs, 650);
        assert!(!slots[0].record_matches());
        assert!(slots[0].members.contains(&"zz-new".to_owned()));
        assert!(slots[1].record_matches());
    }

    #[test]
    fn adding_one_user_changes_one_shard_at_most() {
        let mut u = users(1299);
        let recs = vec![record(0, &u[..650], "a"), record(1, &u[650..], "b")];
        u.push("zz-new".into());
        let (slots, orphans) = plan(&u, &["a".into(), "b".into()], &recs, 650);
        assert!(orphans.is_empty());
        assert_eq!(slots.len(), 2);
        assert!(slots[0].record_matches(), "the full shard is untouched");
        assert!(slots[1].members.contains(&"zz-new".to_owned()));
        // One more: no room left, so a new shard; the others stay as they are.
        let recs = vec![record(0, &u[..650], "a"), record(1, &u[650..], "b")];
        u.push("zz-newer".into());
        let (slots, _) = plan(&u, &["a".into(), "b".into(), "c".into()], &recs, 650);
        assert_eq!(slots.len(), 3);
        assert!(slots[0].record_matches() && slots[1].record_matches());
        assert_eq!(slots[2].members, vec!["zz-newer".to_owned()]);
    }

    #[test]
    fn a_shrunk_scope_is_compacted_into_fewer_shards() {
        // 16 shards of 650 from before the scope; 700 of those users remain.
        let all = users(10_400);
        let recs: Vec<_> = all
            .chunks(650)
            .enumerate()
            .map(|(i, c)| record(i as i64, c, &format!("acct-{i:02}")))
            .collect();
        let kept: Vec<String> = all.iter().step_by(14).take(700).cloned().collect();
        let accounts: Vec<String> = (0..16).map(|i| format!("acct-{i:02}")).collect();
        let (slots, orphans) = plan(&kept, &accounts, &recs, 650);
        assert_eq!(slots.len(), 2, "ceil(700 / 650) shards");
        assert_eq!(orphans.len(), 14, "the dissolved shards' subscriptions go");
        let placed: usize = slots.iter().map(|s| s.members.len()).sum();
        assert_eq!(placed, 700);
        assert!(slots.iter().all(|s| s.account.is_some()));
    }

    #[test]
    fn empty_or_duplicate_shards_are_orphans() {
        let u = users(10);
        let recs = vec![
            record(0, &u, "a"),
            record(0, &u, "b"),
            record(3, &["gone".into()], "c"),
        ];
        let (slots, orphans) = plan(&u, &["a".into()], &recs, 650);
        assert_eq!(slots.len(), 1);
        assert_eq!(orphans.len(), 2);
    }
}
