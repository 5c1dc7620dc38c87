//! The runner of the durable work queue ([`Store::queue_claim`]): one per consumer (Dynamics
//! steps, messaging hops, alerts). It hands each due job to the consumer's [`JobHandler`] and
//! records the outcome: done, retried at the time the remote asked for (`Retry-After`), or
//! retried with a growing backoff after a failure. Jobs of one key are handed out one at a
//! time and in order by the store, so the runner may run different keys concurrently.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::model::Clock;
use crate::store::{Job, Store};

/// Jobs taken per claim. Small: a claim leases them, and a lease held by a busy runner only
/// delays other keys.
const CLAIM_BATCH: u32 = 32;

/// Jobs of different keys handled at once: enough to keep a remote API's rate budget busy
/// without opening a connection per contact.
const CONCURRENCY: usize = 8;

/// How long a claimed job is leased. Longer than any one remote call with its timeout, so a
/// slow call is not handed to a second runner; a crashed runner's jobs come back after it.
const LEASE_SECS: u32 = 120;

/// The longest wait between two looks at the queue when nothing woke the runner: a job pushed
/// by another process (a replica) is found within this time.
const IDLE_POLL: Duration = Duration::from_secs(5);

/// Wait after the store failed before trying again.
const STORE_RETRY: Duration = Duration::from_secs(2);

/// First and longest backoff after a failed attempt (doubling in between).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What became of one attempt at a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished: never handed out again.
    Done,
    /// Not now: run again after this long (a remote's `Retry-After`, or an input not there
    /// yet). Not a failure.
    RetryAfter(Duration),
    /// The attempt failed: logged and retried after a backoff that grows with the attempts.
    Failed(String),
}

/// A queue's consumer.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn handle(&self, job: &Job) -> JobOutcome;
}

/// Runs one queue until cancelled.
pub struct QueueRunner {
    store: Arc<dyn Store>,
    queue: &'static str,
    handler: Arc<dyn JobHandler>,
    clock: Clock,
    wake: Arc<Notify>,
    metrics: Option<crate::telemetry::Metrics>,
}

impl QueueRunner {
    pub fn new(
        store: Arc<dyn Store>,
        queue: &'static str,
        handler: Arc<dyn JobHandler>,
        clock: Clock,
    ) -> Self {
        Self {
            store,
            queue,
            handler,
            clock,
            wake: Arc::new(Notify::new()),
            metrics: None,
        }
    }

    /// Counts attempts in `queue_jobs_total{queue,outcome}`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Notify it after pushing a job so the runner looks at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Claims and handles jobs until `cancel` fires. A job being handled when it fires is
    /// given back to run at once after the restart.
    pub async fn run(self, cancel: CancellationToken) {
        let queue = self.queue;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let claimed = self
                .store
                .queue_claim(queue, CLAIM_BATCH, LEASE_SECS, self.clock.now())
                .await;
            let jobs = match claimed {
                Ok(jobs) => jobs,
                Err(error) => {
                    tracing::warn!(queue, %error, "cannot take jobs from the queue; trying again");
                    if self.pause(STORE_RETRY, &cancel).await {
                        break;
                    }
                    continue;
                }
            };
            if jobs.is_empty() {
                let wait = match self.store.queue_next_due(queue).await {
                    Ok(Some(at)) => (at - self.clock.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .clamp(Duration::from_millis(10), IDLE_POLL),
                    _ => IDLE_POLL,
                };
                if self.pause(wait, &cancel).await {
                    break;
                }
                continue;
            }
            futures::stream::iter(jobs)
                .for_each_concurrent(CONCURRENCY, |job| self.attempt(job, &cancel))
                .await;
        }
        tracing::debug!(queue, "queue runner stopped");
    }

    /// Waits `d`, or less when woken; true when cancelled.
    async fn pause(&self, d: Duration, cancel: &CancellationToken) -> bool {
        tokio::select! {
            _ = cancel.cancelled() => true,
            _ = self.wake.notified() => false,
            _ = tokio::time::sleep(d) => false,
        }
    }

    async fn attempt(&self, job: Job, cancel: &CancellationToken) {
        let queue = self.queue;
        let outcome = tokio::select! {
            o = self.handler.handle(&job) => o,
            _ = cancel.cancelled() => JobOutcome::RetryAfter(Duration::ZERO),
        };
        let label = match &outcome {
            JobOutcome::Done => "done",
            JobOutcome::RetryAfter(_) => "deferred",
            JobOutcome::Failed(_) => "failed",
        };
        if let Some(m) = &self.metrics {
            m.counter(
                "queue_jobs_total",
                &[("queue", queue.to_owned()), ("outcome", label.to_owned())],
            )
            .increment(1);
        }
        let now = self.clock.now();
        let stored = match outcome {
            JobOutcome::Done => self.store.queue_done(job.id).await,
            JobOutcome::RetryAfter(d) => {
                let at = now + chrono::Duration::from_std(d).unwrap_or_default();
                self.store.queue_retry(job.id, at, "deferred").await
            }
            JobOutcome::Failed(error) => {
                let backoff = backoff(job.attempts);
                tracing::warn!(
                    queue,
                    job = job.id,
                    key = %job.key,
                    attempt = job.attempts + 1,
                    retry_in_secs = backoff.as_secs(),
                    %error,
                    "job failed; it will be retried"
                );
                let at = now + chrono::Duration::from_std(backoff).unwrap_or_default();
                self.store.queue_retry(job.id, at, &error).await
            }
        };
        if let Err(error) = stored {
            // The lease runs out and the job is handed out again: handlers are idempotent.
            tracing::warn!(queue, job = job.id, %error, "cannot record a job's outcome; it will run again");
        }
    }
}

/// Backoff after `attempts` earlier failures: 1 s, 2 s, 4 s, … up to [`MAX_BACKOFF`].
fn backoff(attempts: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::NewJob;

    /// Records what it was given; the first attempt at `a1` is deferred, `b1` fails once.
    #[derive(Default)]
    struct Recorder {
        seen: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl JobHandler for Recorder {
        async fn handle(&self, job: &Job) -> JobOutcome {
            let name = job.payload["name"].as_str().unwrap_or_default().to_owned();
            self.seen.lock().unwrap().push(name.clone());
            match (name.as_str(), job.attempts) {
                ("a1", 0) => JobOutcome::RetryAfter(Duration::from_millis(30)),
                ("b1", 0) => JobOutcome::Failed("remote said 500".into()),
                _ => JobOutcome::Done,
            }
        }
    }

    #[tokio::test]
    async fn jobs_of_a_key_run_in_order_through_deferrals_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::store::config::StoreConfig {
            url: format!("sqlite://{}/q.db", dir.path().display()).into(),
            ..Default::default()
        };
        let store = crate::store::open(&cfg).await.unwrap();
        let job = |key: &str, name: &str| NewJob {
            queue: "test".into(),
            key: key.into(),
            dedupe: Some(name.into()),
            payload: serde_json::json!({ "name": name }),
            not_before: chrono::Utc::now(),
        };
        store
            .queue_push(&[job("a", "a1"), job("b", "b1"), job("a", "a2")])
            .await
            .unwrap();
        let handler = Arc::new(Recorder::default());
        let runner = QueueRunner::new(store.clone(), "test", handler.clone(), Clock::new());
        let cancel = CancellationToken::new();
        let task = tokio::spawn(runner.run(cancel.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while store.queue_len("test").await.unwrap() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "queue did not drain"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        let seen = handler.seen.lock().unwrap().clone();
        let of = |k: char| -> Vec<&str> {
            seen.iter()
                .filter(|s| s.starts_with(k))
                .map(String::as_str)
                .collect()
        };
        assert_eq!(of('a'), vec!["a1", "a1", "a2"], "a2 waits until a1 is done");
        assert_eq!(of('b'), vec!["b1", "b1"], "a failure is retried");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
