//! The durable inbox: every observation is stored here before it is acknowledged, and the
//! engine takes it from here. Wraps [`Store::inbox_push`] and wakes the consumer.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::store::{NewInboxItem, Store, StoreResult};

/// Shared handle: producers push, the engine waits on [`Inbox::notified`].
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
}

impl Inbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Stores the items durably (all or none) and wakes the consumer.
    pub async fn push(&self, items: Vec<NewInboxItem>) -> StoreResult<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.store.inbox_push(&items).await?;
        self.wake.notify_one();
        Ok(())
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

impl Inbox {
    /// Stores observations (all or none) as [`KIND_OBSERVATION`] items.
    pub async fn push_observations(
        &self,
        observations: &[crate::model::Observation],
    ) -> StoreResult<()> {
        let items = observations
            .iter()
            .map(|o| NewInboxItem {
                kind: KIND_OBSERVATION.to_owned(),
                user_id: Some(o.user.clone()),
                payload: serde_json::to_value(o).expect("observations serialize"),
                received_at: chrono::Utc::now(),
            })
            .collect();
        self.push(items).await
    }
}
