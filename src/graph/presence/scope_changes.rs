//! A signal that the set of people whose presence is read may have changed: the directory
//! sync stored users, or a matching pass matched or unmatched someone. The poller keeps that
//! set in memory and reads it from the store again only when this fires, instead of every
//! round (a store read of every user took seconds at 100,000).

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; every clone signals the same listeners.
#[derive(Clone)]
pub struct ScopeChanges(Arc<watch::Sender<u64>>);

impl Default for ScopeChanges {
    fn default() -> Self {
        Self(Arc::new(watch::channel(0).0))
    }
}

impl std::fmt::Debug for ScopeChanges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ScopeChanges")
            .field(&*self.0.borrow())
            .finish()
    }
}

impl ScopeChanges {
    /// Says the scope may have changed; listeners wake once however often it is called
    /// before they look.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A listener: `changed().await` resolves after the next [`ScopeChanges::notify`].
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
