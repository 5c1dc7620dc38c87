//! The one refreshing access token (client credentials and the like). How a token is obtained
//! is the caller's [`TokenSource`]; the cache owns the policy:
//!
//! - **ahead of expiry**: a token is renewed `margin` before its lifetime runs out (a margin at
//!   least as long as the lifetime renews on every call);
//! - **single flight**: concurrent callers wait for one refresh and share its outcome, a
//!   success or a failure alike;
//! - **keep the live token**: a failed refresh keeps serving the old token while it is still
//!   valid; the error reaches callers only when no valid token remains;
//! - **invalidate on 401**: [`RefreshingToken::invalidate`] drops the token the server
//!   refused, so the next caller fetches a new one (once, however many saw the 401).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

/// A token just issued and how long it lives.
#[derive(Debug)]
pub(crate) struct IssuedToken {
    pub(crate) secret: SecretString,
    pub(crate) lifetime: Duration,
}

/// What a refresh came to; sources use it to report health.
#[derive(Debug)]
pub(crate) enum Refresh<'a, E> {
    Acquired,
    /// The refresh failed; the old token is still valid and still served.
    FailedKeepingOld(&'a E),
    /// The refresh failed and no valid token remains.
    Failed(&'a E),
}

/// How tokens are obtained (one token request per call).
pub(crate) trait TokenSource: Send + Sync {
    type Error: Clone + Send + Sync;

    fn fetch(&self) -> impl Future<Output = Result<IssuedToken, Self::Error>> + Send;

    /// Told the outcome of every refresh.
    fn observe(&self, _refresh: Refresh<'_, Self::Error>) {}
}

struct Cached {
    secret: SecretString,
    refresh_at: Instant,
    expires_at: Instant,
}

struct Slot<E> {
    cached: Option<Cached>,
    /// The error of the last refresh, if it failed.
    failure: Option<E>,
}

/// A cached token from `S`, shared by every clone of a client.
pub(crate) struct RefreshingToken<S: TokenSource> {
    source: S,
    margin: Duration,
    slot: tokio::sync::Mutex<Slot<S::Error>>,
    /// Refreshes finished so far: a caller that sees it move while it waited for the lock
    /// takes the outcome of that refresh instead of starting another.
    refreshes: AtomicU64,
}

impl<S: TokenSource + std::fmt::Debug> std::fmt::Debug for RefreshingToken<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshingToken")
            .field("source", &self.source)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> RefreshingToken<S> {
    /// Tokens from `source`, renewed `margin` before they expire.
    pub(crate) fn new(source: S, margin: Duration) -> Self {
        Self {
            source,
            margin,
            slot: tokio::sync::Mutex::new(Slot {
                cached: None,
                failure: None,
            }),
            refreshes: AtomicU64::new(0),
        }
    }

    /// A valid token: the cached one while it is fresh, else the outcome of one refresh.
    pub(crate) async fn token(&self) -> Result<SecretString, S::Error> {
        let seen = self.refreshes.load(Ordering::Acquire);
        let mut slot = self.slot.lock().await;
        let now = Instant::now();
        if let Some(c) = &slot.cached
            && now < c.refresh_at
        {
            return Ok(c.secret.clone());
        }
        if self.refreshes.load(Ordering::Acquire) != seen {
            // A refresh finished while this caller waited: share its outcome.
            if let Some(live) = live(&slot, now) {
                return Ok(live);
            }
            if let Some(e) = &slot.failure {
                return Err(e.clone());
            }
        }
        let fetched = self.source.fetch().await;
        self.refreshes.fetch_add(1, Ordering::Release);
        let now = Instant::now();
        match fetched {
            Ok(t) => {
                slot.cached = Some(Cached {
                    refresh_at: now + t.lifetime.saturating_sub(self.margin),
                    expires_at: now + t.lifetime,
                    secret: t.secret.clone(),
                });
                slot.failure = None;
                self.source.observe(Refresh::Acquired);
                Ok(t.secret)
            }
            Err(e) => {
                let outcome = match live(&slot, now) {
                    Some(old) => {
                        self.source.observe(Refresh::FailedKeepingOld(&e));
                        Ok(old)
                    }
                    None => {
                        self.source.observe(Refresh::Failed(&e));
                        Err(e.clone())
                    }
                };
                slot.failure = Some(e);
                outcome
            }
        }
    }

    /// Drops the cached token if it is still `used` (the server answered 401 to it), so the
    /// next `token()` fetches a new one; concurrent 401s on one token cause one refresh.
    pub(crate) async fn invalidate(&self, used: &SecretString) {
        let mut slot = self.slot.lock().await;
        if slot
            .cached
            .as_ref()
            .is_some_and(|c| c.secret.expose_secret() == used.expose_secret())
        {
            slot.cached = None;
        }
    }
}

/// The cached token, if it has not expired.
fn live<E>(slot: &Slot<E>, now: Instant) -> Option<SecretString> {
    slot.cached
        .as_ref()
        .filter(|c| now < c.expires_at)
        .map(|c| c.secret.clone())
}

#[cfg(test)]
mod tests;
