//! The durable inbox: every observation is stored here before it is acknowledged, and the
//! engine takes it from here. Wraps [`Store::inbox_push`] and [`Store::inbox_claim`] with the
//! typed [`InboxPayload`], and wakes the consumer.
//!
//! Pushes are group-committed: while one transaction is being written, concurrent pushes queue
//! up and the next transaction carries all of them. Each caller is answered only after the
//! transaction holding its items committed, so "pushed" still means "durable". One caller's
//! items are stored all or none; if a shared transaction fails, its callers' items are retried
//! one caller per transaction so a failure stays with the caller it belongs to.

use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, oneshot};

use crate::model::{InboxPayload, Observation};
use crate::store::{
    InboxItem, IngestRow, IngestVerdict, NewInboxItem, Store, StoreError, StoreResult,
};

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

    /// Stores the rows durably (all or none) and wakes the consumer.
    async fn push_rows(&self, items: Vec<NewInboxItem>) -> StoreResult<()> {
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

    /// The same inbox (pushes and wake-ups shared) over another handle on the store, e.g. one
    /// that checks a lease before each write.
    pub fn over(&self, store: Arc<dyn Store>) -> Inbox {
        Inbox {
            store,
            wake: self.wake.clone(),
            group: self.group.clone(),
        }
    }

    /// Wakes the consumer as a push does: for items another process stored.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves after the next push (or at once if one happened since the last wait).
    pub async fn notified(&self) {
        self.wake.notified().await
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The observation made of one contact-center event, with what the replay check keys on.
#[derive(Debug, Clone)]
pub struct CheckedObservation {
    /// The platform's event id, when it sends one.
    pub event_id: Option<String>,
    pub agent_id: String,
    pub observation: Observation,
}

/// An item taken from the inbox under a lease.
#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    /// Times the item was given back after a failure.
    pub attempts: i32,
    pub payload: Result<InboxPayload, UnreadableItem>,
}

/// A stored item that is no [`InboxPayload`] (unknown kind or broken JSON).
#[derive(Debug, thiserror::Error)]
#[error("inbox item of kind {kind:?} is unreadable: {source}")]
pub struct UnreadableItem {
    pub kind: String,
    #[source]
    pub source: serde_json::Error,
}

/// The stored row of a payload: the payload's JSON carries its `kind` tag, and the `kind`
/// column holds a copy for SQL.
fn encode(payload: &InboxPayload) -> NewInboxItem {
    NewInboxItem {
        kind: payload.kind().to_owned(),
        user_id: payload.user().cloned(),
        payload: serde_json::to_value(payload).expect("inbox payloads serialize"),
        received_at: chrono::Utc::now(),
    }
}

/// Reads a stored row back. Rows written before the payload carried its tag have the tag
/// only in the `kind` column; it is put back into the JSON before decoding.
fn decode(item: InboxItem) -> Claimed {
    let mut json = item.payload;
    if let serde_json::Value::Object(fields) = &mut json {
        fields
            .entry("kind")
            .or_insert_with(|| item.kind.clone().into());
    }
    Claimed {
        id: item.id,
        attempts: item.attempts,
        payload: serde_json::from_value(json).map_err(|source| UnreadableItem {
            kind: item.kind,
            source,
        }),
    }
}

impl Inbox {
    /// Stores the payloads durably (all or none) and wakes the consumer.
    pub async fn push(&self, payloads: Vec<InboxPayload>) -> StoreResult<()> {
        self.push_rows(payloads.iter().map(encode).collect()).await
    }

    /// Stores observations (all or none).
    pub async fn push_observations(&self, observations: &[Observation]) -> StoreResult<()> {
        self.push(
            observations
                .iter()
                .cloned()
                .map(InboxPayload::Observation)
                .collect(),
        )
        .await
    }

    /// Stores the observations of contact-center events that are neither duplicates nor
    /// stale, checked and recorded in the database in the same transaction (see
    /// [`Store::ingest_push`]), and wakes the consumer. One verdict per event, in order.
    pub async fn push_checked(
        &self,
        connector: &str,
        events: Vec<CheckedObservation>,
    ) -> StoreResult<Vec<IngestVerdict>> {
        let rows: Vec<IngestRow> = events
            .into_iter()
            .map(|e| IngestRow {
                event_id: e.event_id,
                agent_id: e.agent_id,
                at: e.observation.observed_at,
                item: encode(&InboxPayload::Observation(e.observation)),
            })
            .collect();
        let verdicts = self.store.ingest_push(connector, &rows).await?;
        if verdicts.contains(&IngestVerdict::Accepted) {
            self.wake.notify_one();
        }
        Ok(verdicts)
    }

    /// Leases up to `limit` items for `lease_secs` and decodes them (see [`Store::inbox_claim`]).
    pub async fn claim(&self, limit: u32, lease_secs: u32) -> StoreResult<Vec<Claimed>> {
        let rows = self.store.inbox_claim(limit, lease_secs).await?;
        Ok(rows.into_iter().map(decode).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TeamsRefresh;

    fn item(user: usize) -> NewInboxItem {
        NewInboxItem {
            user_id: Some(format!("u{user}")),
            ..encode(&InboxPayload::TeamsRefresh(TeamsRefresh {
                user_ids: vec![format!("u{user}")],
            }))
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
                inbox
                    .push_rows(vec![item(i), item(i + 1000)])
                    .await
                    .unwrap();
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

    fn row(kind: &str, payload: serde_json::Value) -> InboxItem {
        InboxItem {
            id: 7,
            kind: kind.into(),
            user_id: None,
            payload,
            received_at: chrono::Utc::now(),
            attempts: 2,
        }
    }

    #[test]
    fn rows_stored_before_the_tag_was_in_the_payload_still_decode() {
        let legacy = [
            (
                "observation",
                serde_json::json!({ "user": "u1", "observed_at": "2026-01-01T00:00:00Z",
                    "source": "connector_push",
                    "status": { "side": "contact_center", "id": "a", "name": "Available" } }),
            ),
            ("teams_refresh", serde_json::json!({ "user_ids": ["u1"] })),
            ("reconcile_request", serde_json::json!({})),
        ];
        for (kind, payload) in legacy {
            let c = decode(row(kind, payload));
            assert_eq!((c.id, c.attempts), (7, 2));
            assert_eq!(c.payload.expect(kind).kind(), kind);
        }
    }

    #[test]
    fn encoded_rows_decode_to_the_same_payload() {
        let p = InboxPayload::TeamsRefresh(TeamsRefresh {
            user_ids: vec!["u1".into()],
        });
        let r = encode(&p);
        assert_eq!(r.kind, "teams_refresh");
        assert_eq!(decode(row(&r.kind, r.payload)).payload.unwrap(), p);
    }

    #[test]
    fn unknown_or_broken_rows_are_unreadable_not_a_panic() {
        let e = decode(row("carrier_pigeon", serde_json::json!({})))
            .payload
            .unwrap_err();
        assert_eq!(e.kind, "carrier_pigeon");
        assert!(
            decode(row("observation", serde_json::json!({ "user": 1 })))
                .payload
                .is_err()
        );
        assert!(
            decode(row("observation", serde_json::json!("text")))
                .payload
                .is_err()
        );
    }
}
