//! What notifications for subscriptions that are not ours may cost. Anyone can POST to the
//! webhook, so each such notification must not cost a database lookup and a log line:
//! - an id Graph cannot have issued is dropped without a lookup ([`plausible_id`]);
//! - an id just looked up and not found is remembered for a while ([`UnknownIds`]);
//! - the warning is written at most once per interval, with the count since the last line
//!   ([`WarnEvery`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long an id that was not found stays "unknown" without another lookup. Short, because
/// with several replicas a subscription another one just created may not have been stored yet.
pub(super) const UNKNOWN_ID_TTL: Duration = Duration::from_secs(60);

/// Most unknown ids remembered; beyond it expired ones go, then all of them.
const MAX_UNKNOWN_IDS: usize = 10_000;

/// One warning line per kind per minute is enough to notice a misrouted or hostile sender;
/// the metrics count every dropped notification.
pub(super) const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// Graph's subscription ids are GUIDs; allow any short id-like string (ids of other Graph
/// clouds or of test doubles), refuse anything longer or with other characters.
pub(super) fn plausible_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Subscription ids recently looked up and not found.
#[derive(Default)]
pub(super) struct UnknownIds {
    ids: Mutex<HashMap<String, Instant>>,
}

impl UnknownIds {
    pub(super) fn contains(&self, id: &str) -> bool {
        let ids = self.ids.lock().expect("lock");
        ids.get(id).is_some_and(|at| at.elapsed() < UNKNOWN_ID_TTL)
    }

    pub(super) fn insert(&self, id: &str) {
        let mut ids = self.ids.lock().expect("lock");
        if ids.len() >= MAX_UNKNOWN_IDS {
            ids.retain(|_, at| at.elapsed() < UNKNOWN_ID_TTL);
            if ids.len() >= MAX_UNKNOWN_IDS {
                ids.clear();
            }
        }
        ids.insert(id.to_owned(), Instant::now());
    }

    /// A subscription just created under this id is ours after all.
    pub(super) fn remove(&self, id: &str) {
        self.ids.lock().expect("lock").remove(id);
    }
}

/// At most one warning line per [`WARN_INTERVAL`].
#[derive(Default)]
pub(super) struct WarnEvery {
    /// When the last line was written, and how many occurrences were not written since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl WarnEvery {
    /// `Some(n)` when a line is due now, `n` being the occurrences left unwritten since the
    /// previous line; `None` when this occurrence is only counted.
    pub(super) fn due(&self) -> Option<u64> {
        let mut state = self.state.lock().expect("lock");
        let (last, suppressed) = &mut *state;
        match last {
            Some(at) if at.elapsed() < WARN_INTERVAL => {
                *suppressed += 1;
                None
            }
            _ => {
                *last = Some(Instant::now());
                Some(std::mem::take(suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_id_like_strings_are_plausible() {
        assert!(plausible_id("7f105c7d-2dc5-4530-97cd-4e7ae6534c07"));
        assert!(plausible_id("sub-presence-0"));
        for bad in ["", "<script>", "a b", "a&b", &"a".repeat(129)] {
            assert!(!plausible_id(bad), "{bad:.20}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_with_the_count() {
        let w = WarnEvery::default();
        assert_eq!(w.due(), Some(0));
        for _ in 0..500 {
            assert_eq!(w.due(), None);
        }
        tokio::time::advance(WARN_INTERVAL).await;
        assert_eq!(w.due(), Some(500));
        assert_eq!(w.due(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_ids_expire_and_stay_bounded() {
        let u = UnknownIds::default();
        u.insert("a");
        assert!(u.contains("a"));
        tokio::time::advance(UNKNOWN_ID_TTL).await;
        assert!(!u.contains("a"));
        for i in 0..MAX_UNKNOWN_IDS + 10 {
            u.insert(&i.to_string());
        }
        assert!(u.ids.lock().unwrap().len() <= MAX_UNKNOWN_IDS);
        u.remove("5");
        assert!(!u.contains("5"));
    }
}
