//! How alerts join the application: with at least one `[[alerts]]` sink, the evaluator and
//! the sender (a runner of the `alerts` work queue) run as jobs, and the engine reports
//! suspensions to the evaluator.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::app::Core;
use crate::job::Job;
use crate::runtime::alerts::deliver::{AlertSender, QUEUE};
use crate::runtime::alerts::{AlertJob, SignalReceiver, certificate_not_after};
use crate::runtime::queue::QueueRunner;

/// The alert jobs; none without a sink.
pub(crate) fn build(
    core: &Core,
    signals: Option<SignalReceiver>,
    cancel: &CancellationToken,
) -> Vec<Job> {
    let (cfg, Some(signals)) = (&core.config, signals) else {
        return Vec::new();
    };
    let sinks = Arc::new(cfg.alerts.clone());
    let sender = AlertSender {
        http: reqwest::Client::new(),
        sinks: sinks.clone(),
        metrics: core.metrics.clone(),
    };
    let runner = QueueRunner::new(
        core.store.clone(),
        QUEUE,
        Arc::new(sender),
        core.clock.clone(),
    )
    .with_metrics(core.metrics.clone());
    let credential_expires_at = cfg.graph.client_secret_expires_at.or_else(|| {
        cfg.graph
            .certificate_file
            .as_deref()
            .and_then(certificate_not_after)
    });
    let evaluator = AlertJob {
        store: core.store.clone(),
        health: core.health.clone(),
        clock: core.clock.clone(),
        metrics: core.metrics.clone(),
        sinks,
        alerting: cfg.alerting.clone(),
        credential_expires_at,
        instance: core.store.instance_id().to_owned(),
        sender_wake: runner.waker(),
    };
    vec![
        ("alerts", Box::pin(evaluator.run(signals, cancel.clone()))),
        ("alert_sender", Box::pin(runner.run(cancel.clone()))),
    ]
}
