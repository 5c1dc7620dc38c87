//! The refresh policy on tokio's paused clock, with a scripted token source.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;

/// Issues `tok-1`, `tok-2`, … after `latency`, or fails while `failing` is set; records
/// every fetch and every observed outcome.
#[derive(Default)]
struct Script {
    latency: Duration,
    lifetime: Duration,
    failing: Mutex<bool>,
    fetches: Mutex<u32>,
    observed: Mutex<VecDeque<String>>,
}

/// The scripted source's refusal of its `n`th request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal(u32);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refusal {}", self.0)
    }
}

impl TokenSource for Arc<Script> {
    type Error = Refusal;

    async fn fetch(&self) -> Result<IssuedToken, Refusal> {
        let n = {
            let mut f = self.fetches.lock().unwrap();
            *f += 1;
            *f
        };
        tokio::time::sleep(self.latency).await;
        if *self.failing.lock().unwrap() {
            return Err(Refusal(n));
        }
        Ok(IssuedToken {
            secret: SecretString::from(format!("tok-{n}")),
            lifetime: self.lifetime,
        })
    }

    fn observe(&self, refresh: Refresh<'_, Refusal>) {
        let what = match refresh {
            Refresh::Acquired => "acquired".to_owned(),
            Refresh::FailedKeepingOld(e) => format!("kept old: {e}"),
            Refresh::Failed(e) => format!("failed: {e}"),
        };
        self.observed.lock().unwrap().push_back(what);
    }
}

impl Script {
    fn fetches(&self) -> u32 {
        *self.fetches.lock().unwrap()
    }

    fn fail(&self, on: bool) {
        *self.failing.lock().unwrap() = on;
    }

    fn last_observed(&self) -> Option<String> {
        self.observed.lock().unwrap().back().cloned()
    }
}

/// Lifetime 100 s, renewed 30 s ahead, one second per token request.
fn cache() -> (Arc<Script>, Arc<RefreshingToken<Arc<Script>>>) {
    let script = Arc::new(Script {
        latency: Duration::from_secs(1),
        lifetime: Duration::from_secs(100),
        ..Script::default()
    });
    let cache = Arc::new(RefreshingToken::new(
        script.clone(),
        Duration::from_secs(30),
    ));
    (script, cache)
}

/// `n` concurrent `token()` calls, in the order they were started.
async fn concurrently(
    cache: &Arc<RefreshingToken<Arc<Script>>>,
    n: usize,
) -> Vec<Result<String, Refusal>> {
    let calls = (0..n).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.token().await.map(|t| t.expose_secret().to_owned()) })
    });
    let mut out = Vec::new();
    for c in calls.collect::<Vec<_>>() {
        out.push(c.await.unwrap());
    }
    out
}

fn ok(s: &str) -> Result<String, Refusal> {
    Ok(s.to_owned())
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_refresh() {
    let (script, cache) = cache();
    let out = concurrently(&cache, 10).await;
    assert_eq!(out, vec![ok("tok-1"); 10]);
    assert_eq!(script.fetches(), 1);
}

#[tokio::test(start_paused = true)]
async fn cached_until_the_margin_then_renewed_ahead_of_expiry() {
    let (script, cache) = cache();
    let first = cache.token().await.unwrap();
    tokio::time::advance(Duration::from_secs(68)).await;
    assert_eq!(
        cache.token().await.unwrap().expose_secret(),
        first.expose_secret()
    );
    assert_eq!(script.fetches(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(cache.token().await.unwrap().expose_secret(), "tok-2");
    assert_eq!(script.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_margin_longer_than_the_lifetime_renews_on_every_call() {
    let script = Arc::new(Script {
        lifetime: Duration::from_secs(30),
        ..Script::default()
    });
    let cache = Arc::new(RefreshingToken::new(
        script.clone(),
        Duration::from_secs(60),
    ));
    cache.token().await.unwrap();
    cache.token().await.unwrap();
    assert_eq!(script.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_keeps_serving_the_live_token_then_reports_the_error() {
    let (script, cache) = cache();
    cache.token().await.unwrap();
    assert_eq!(script.last_observed().as_deref(), Some("acquired"));
    script.fail(true);
    // Past the refresh point (70 s after issue), before expiry (100 s).
    tokio::time::advance(Duration::from_secs(80)).await;
    assert_eq!(cache.token().await.unwrap().expose_secret(), "tok-1");
    assert_eq!(
        script.last_observed().as_deref(),
        Some("kept old: refusal 2")
    );
    assert_eq!(script.fetches(), 2, "the refresh was tried");
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(cache.token().await.unwrap_err(), Refusal(3));
    assert_eq!(script.last_observed().as_deref(), Some("failed: refusal 3"));
    script.fail(false);
    assert_eq!(cache.token().await.unwrap().expose_secret(), "tok-4");
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_failed_refresh() {
    let (script, cache) = cache();
    script.fail(true);
    let out = concurrently(&cache, 5).await;
    assert_eq!(out, vec![Err(Refusal(1)); 5]);
    assert_eq!(script.fetches(), 1);

    script.fail(false);
    cache.token().await.unwrap();
    script.fail(true);
    tokio::time::advance(Duration::from_secs(80)).await;
    let out = concurrently(&cache, 5).await;
    assert_eq!(out, vec![ok("tok-2"); 5], "the live token, to everyone");
    assert_eq!(script.fetches(), 3);
}

#[tokio::test(start_paused = true)]
async fn invalidating_the_refused_token_fetches_a_new_one_once() {
    let (script, cache) = cache();
    let first = cache.token().await.unwrap();
    cache
        .invalidate(&SecretString::from("some other token".to_owned()))
        .await;
    assert_eq!(cache.token().await.unwrap().expose_secret(), "tok-1");
    // Two callers saw the 401 on tok-1: one refresh.
    cache.invalidate(&first).await;
    let second = cache.token().await.unwrap();
    cache.invalidate(&first).await;
    assert_eq!(cache.token().await.unwrap().expose_secret(), "tok-2");
    assert_eq!(second.expose_secret(), "tok-2");
    assert_eq!(script.fetches(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_invalidated_token_is_not_kept_when_the_refresh_fails() {
    let (script, cache) = cache();
    let first = cache.token().await.unwrap();
    script.fail(true);
    cache.invalidate(&first).await;
    assert_eq!(cache.token().await.unwrap_err(), Refusal(2));
}
