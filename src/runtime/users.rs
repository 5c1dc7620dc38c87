//! What the API shows of the engine's per-user state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::engine::state::{SyncState, UserState};
use crate::model::UserId;
use crate::runtime::audit::to_utc;
use crate::store::{Store, StoreResult};

/// One user's sync state as of a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSync {
    pub state: SyncState,
    /// While sync is suspended after flapping: until when.
    pub suspended_until: Option<DateTime<Utc>>,
}

/// The sync state of every user the engine holds state for, as of `now`. Unreadable state is
/// left out (the engine drops it too when it loads).
pub async fn sync_states(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> StoreResult<HashMap<UserId, UserSync>> {
    let now = now.timestamp_millis();
    Ok(store
        .load_user_states()
        .await?
        .into_iter()
        .filter_map(|(user, v)| {
            let st: UserState = serde_json::from_value(v).ok()?;
            let view = UserSync {
                state: st.sync_state(now),
                suspended_until: st.suspended_until.map(to_utc),
            };
            Some((user, view))
        })
        .collect())
}
