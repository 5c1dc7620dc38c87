//! The last Teams presence the bridge took in for each user, shared by the notification
//! receiver and the poller so that each passes on only changes: an update with the same or an
//! older `sequenceNumber`, or with the same availability and activity, is not news.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::TeamsPresence;

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct PresenceMemory {
    last: Arc<Mutex<HashMap<String, TeamsPresence>>>,
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
                let stale =
                    matches!((&p.sequence, &prev.sequence), (Some(new), Some(old)) if new <= old);
                !stale && !prev.same_state(p)
            }
        }
    }

    /// Remembers `p` as the latest for `user` (after it was stored).
    pub fn record(&self, user: &str, p: &TeamsPresence) {
        self.last
            .lock()
            .expect("presence memory lock")
            .insert(user.to_owned(), p.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(a: &str, seq: Option<&str>) -> TeamsPresence {
        TeamsPresence {
            availability: a.into(),
            activity: a.into(),
            sequence: seq.map(str::to_owned),
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
