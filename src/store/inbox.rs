//! The durable inbox: every observation is stored here before it is acknowledged, and the
//! engine takes it from here. Wraps [`Store::inbox_push`] and wakes the consumer.
//!
//! Pushes are group-committed: while one transaction is being written, concurrent pushes queue
//! up and the next transaction carries all of them. Each caller is answered only after the
//! transaction holding its items committed, so "pushed" still means "durable". One caller's
//! items are stored all or none; if a shared transaction fails, its callers' items are retried
//! one caller per transaction so a failure stays with the caller it belongs to.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use crate::model::Observation;
use crate::store::{NewInboxItem, Store, StoreError, StoreResult};

/// Most items written in one shared transaction; more wait for the next one. Large enough to
/// amortise the commit (the fsync), small enough to keep one transaction short.
const MAX_GROUP_ITEMS: usize = 4_096;

/// Shared handle: producers push, the engine waits on [`Inbox::notified`].
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    group: Arc<Mutex<Group>>,
}

struct Waiting {
    items: Vec<NewInboxItem>,
    done: oneshot::Sender<StoreResult<()>>,
}

#[derive(Default)]
struct Group {
    queue: Vec<Waiting>,
    writing: bool,
}

impl Inbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
            group: Arc::new(Mutex::new(Group::default())),
        }
    }

    /// Stores the items durably (all or none) and wakes the consumer.
    pub async fn push(&self, items: Vec<NewInboxItem>) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (done, answer) = oneshot::channel();
        let start_writer = {
            let mut g = self.group.lock().expect("inbox lock");
            g.queue.push(Waiting { items, done });
            !std::mem::replace(&mut g.writing, true)
        };
        if start_writer {
            // A task of its own, so a caller that goes away cannot strand the others.
            tokio::spawn(self.clone().write_groups());
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("inbox writer stopped".into()))?
    }

    async fn write_groups(self) {
        loop {
            let group = {
                let mut g = self.group.lock().expect("inbox lock");
                if g.queue.is_empty() {
                    g.writing = false;
                    return;
                }
                let mut n = 0;
                let take = g
                    .queue
                    .iter()
                    .take_while(|w| {
                        let fits = n == 0 || n + w.items.len() <= MAX_GROUP_ITEMS;
                        n += w.items.len();
                        fits
                    })
                    .count();
                g.queue.drain(..take).collect::<Vec<_>>()
            };
            if group.len() == 1 {
                let w = group.into_iter().next().expect("one");
                let res = self.store.inbox_push(&w.items).await;
                self.answer(w.done, res);
                continue;
            }
            let all: Vec<NewInboxItem> = group.iter().flat_map(|w| w.items.clone()).collect();
            match self.store.inbox_push(&all).await {
                Ok(()) => {
                    for w in group {
                        self.answer(w.done, Ok(()));
                    }
                }
                Err(_) => {
                    for w in group {
                        let res = self.store.inbox_push(&w.items).await;
                        self.answer(w.done, res);
                    }
                }
            }
        }
    }

    fn answer(&self, done: oneshot::Sender<StoreResult<()>>, res: StoreResult<()>) {
        if res.is_ok() {
            self.wake.notify_one();
        }
        // The caller may have gone away; its items are stored either way.
        let _ = done.send(res);
    }

    /// Resolves after the next push (or at once if one happened since the last wait).
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// Inbox item kind: a serialized [`crate::model::Observation`].
pub const KIND_OBSERVATION: &str = "observation";
/// Inbox item kind: a basic Graph notification for these users; the consumer reads their
/// presence (coalesced `getPresencesByUserId`) and treats the result as observations.
/// Payload: [`TeamsRefresh`].
pub const KIND_TEAMS_REFRESH: &str = "teams_refresh";

/// Payload of a [`KIND_TEAMS_REFRESH`] item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TeamsRefresh {
    pub user_ids: Vec<String>,
}

/// The [`KIND_OBSERVATION`] item for an observation.
pub fn observation_item(o: &Observation) -> NewInboxItem {
    NewInboxItem {
        kind: KIND_OBSERVATION.to_owned(),
        user_id: Some(o.user.clone()),
        payload: serde_json::to_value(o).expect("observations serialize"),
        received_at: chrono::Utc::now(),
    }
}

impl Inbox {
    /// Stores observations (all or none) as [`KIND_OBSERVATION`] items.
    pub async fn push_observations(&self, observations: &[Observation]) -> StoreResult<()> {
        self.push(observations.iter().map(observation_item).collect())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(user: usize) -> NewInboxItem {
        NewInboxItem {
            kind: KIND_TEAMS_REFRESH.to_owned(),
            user_id: Some(format!("u{user}")),
            payload: serde_json::json!({"user_ids": [format!("u{user}")]}),
            received_at: chrono::Utc::now(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pushes_are_all_stored_before_they_are_answered() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::config::StoreConfig {
            url: format!("sqlite://{}/inbox.db", dir.path().display()).into(),
            ..Default::default()
        };
        let inbox = Inbox::new(crate::store::open(&cfg).await.unwrap());
        let pushes = (0..200).map(|i| {
            let inbox = inbox.clone();
            tokio::spawn(async move {
                inbox.push(vec![item(i), item(i + 1000)]).await.unwrap();
                // Answered only after commit: this caller's items are visible now.
                let n = inbox.store().inbox_len().await.unwrap();
                assert!(n >= 2);
            })
        });
        for p in futures::future::join_all(pushes).await {
            p.unwrap();
        }
        assert_eq!(inbox.store().inbox_len().await.unwrap(), 400);
        let claimed = inbox.store().inbox_claim(1000, 30).await.unwrap();
        let mut users: Vec<_> = claimed.iter().filter_map(|i| i.user_id.clone()).collect();
        users.sort();
        users.dedup();
        assert_eq!(users.len(), 400);
    }
}
