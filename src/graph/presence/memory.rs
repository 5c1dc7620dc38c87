//! The last Teams presence the bridge took in for each user, shared by the notification
//! receiver and the poller so that each passes on only changes: an update with the same or an
//! older `sequenceNumber`, or with the same availability and activity, is not news.

use std::collections::HashMap;
use std::hash::Hasher as _;
use std::sync::{Arc, Mutex};

use crate::model::TeamsPresence;

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct PresenceMemory {
    last: Arc<Mutex<HashMap<Box<str>, Last>>>,
}

/// What is kept of a user's last presence: at 100,000 people the presences themselves (three
/// strings each) took 20 MB; a digest of the state and the sequence number take half of that.
struct Last {
    /// [`digest`] of the availability and activity.
    state: u64,
    sequence: Option<Box<str>>,
}

/// A 64-bit digest of the availability and activity, case folded (as
/// [`TeamsPresence::same_state`] compares them). Two different states share one with odds
/// of 1 in 2^64, so a change is taken for a repeat only that rarely.
fn digest(p: &TeamsPresence) -> u64 {
    // SipHash with fixed keys: the same state gives the same digest for the process's life.
    let mut h = std::hash::DefaultHasher::new();
    for b in p.availability.bytes() {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.write_u8(0xff);
    for b in p.activity.bytes() {
        h.write_u8(b.to_ascii_lowercase());
    }
    h.finish()
}

impl PresenceMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `p` would change what we know about `user`.
    pub fn is_news(&self, user: &str, p: &TeamsPresence) -> bool {
        let last = self.last.lock().expect("presence memory lock");
        match last.get(user) {
            None => true,
            Some(prev) => {
                let stale = matches!((&p.sequence, &prev.sequence), (Some(new), Some(old)) if **new <= **old);
                !stale && prev.state != digest(p)
            }
        }
    }

    /// Remembers `p` as the latest for `user` (after it was stored).
    pub fn record(&self, user: &str, p: &TeamsPresence) {
        let last = Last {
            state: digest(p),
            sequence: p.sequence.as_deref().map(Box::from),
        };
        let mut map = self.last.lock().expect("presence memory lock");
        match map.get_mut(user) {
            Some(slot) => *slot = last,
            None => {
                map.insert(user.into(), last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &str, seq: Option<&str>) -> TeamsPresence {
        TeamsPresence {
            availability: a.into(),
            activity: a.into(),
            sequence: seq.map(Into::into),
        }
    }

    #[test]
    fn drops_same_older_and_identical() {
        let m = PresenceMemory::new();
        assert!(m.is_news("u", &p("Busy", Some("0002"))));
        m.record("u", &p("Busy", Some("0002")));
        assert!(!m.is_news("u", &p("Available", Some("0001"))), "older");
        assert!(
            !m.is_news("u", &p("Available", Some("0002"))),
            "same sequence"
        );
        assert!(
            !m.is_news("u", &p("busy", Some("0003"))),
            "identical presence"
        );
        assert!(m.is_news("u", &p("Available", Some("0003"))));
        assert!(m.is_news("u", &p("Available", None)));
        assert!(!m.is_news("u", &p("Busy", None)));
    }
}
