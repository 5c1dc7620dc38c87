//! What the API shows of the engine's per-user state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::engine::state::{SyncState, UserState};
use crate::model::UserId;
use crate::runtime::audit::to_utc;
use crate::store::{JsonText, Store, StoreResult};

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
    Ok(store
        .load_user_states()
        .await?
        .into_iter()
        .filter_map(|(user, v)| Some((user, sync_of(&v, now)?.0)))
        .collect())
}

/// A user's sync state from the engine's stored state blob, as of `now` (`None` when the blob
/// does not read), with when a held status is due.
pub fn sync_of(blob: &JsonText, now: DateTime<Utc>) -> Option<(UserSync, Option<DateTime<Utc>>)> {
    let st: UserState = blob.parse().ok()?;
    let now = now.timestamp_millis();
    let view = UserSync {
        state: st.sync_state(now),
        suspended_until: st.suspended_until.map(to_utc),
    };
    let due = [st.t2c.pending.as_ref(), st.c2t.pending.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.due)
        .min()
        .map(to_utc);
    Some((view, due))
}
