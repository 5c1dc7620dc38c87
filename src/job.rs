//! A background job: a name for the logs and a future that ends when its cancellation token
//! fires. Subsystem builders return their jobs; the application spawns and drains them.

use std::future::Future;
use std::pin::Pin;

pub type Job = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);

/// Runs `job` until it ends, or until `grace` after `cancel` fired, whichever comes first: a
/// job still busy then (a reconciliation of 100,000 people halfway through its reads, a write
/// waiting out a `Retry-After`) is dropped where it stands and named in the log, so one slow
/// job cannot hold up the drain of the others. Returns whether the job ended by itself.
pub async fn bounded(
    name: &'static str,
    job: impl Future<Output = ()>,
    cancel: tokio_util::sync::CancellationToken,
    grace: std::time::Duration,
) -> bool {
    let deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = job => true,
        () = deadline => {
            tracing::warn!(
                job = name,
                grace_ms = grace.as_millis() as u64,
                "job did not stop within its drain time after shutdown; dropped"
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::bounded;

    #[tokio::test(start_paused = true)]
    async fn a_job_that_ignores_shutdown_is_dropped_after_its_grace_and_others_end_freely() {
        let cancel = CancellationToken::new();
        let grace = Duration::from_secs(5);
        let stuck = tokio::spawn(bounded(
            "stuck",
            std::future::pending(),
            cancel.clone(),
            grace,
        ));
        let stop = cancel.clone();
        let polite = tokio::spawn(bounded(
            "polite",
            async move { stop.cancelled().await },
            cancel.clone(),
            grace,
        ));
        // Before shutdown nothing is cut short, however long it runs.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!stuck.is_finished() && !polite.is_finished());
        let at = tokio::time::Instant::now();
        cancel.cancel();
        assert!(polite.await.unwrap(), "a job that stops is not dropped");
        assert!(!stuck.await.unwrap(), "the stuck job is dropped");
        assert_eq!(at.elapsed(), grace, "exactly its grace after the shutdown");
    }
}
