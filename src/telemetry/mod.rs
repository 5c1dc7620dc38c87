//! Logs (tracing, JSON or pretty) and metrics (Prometheus text through the `metrics` crate).
//!
//! Metrics are per application, not process-global: each [`Metrics`] owns its own Prometheus
//! recorder, so two applications can run in one process (the tests do).

use std::io::IsTerminal;
use std::sync::Arc;

pub mod catalog;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use serde::{Deserialize, Serialize};

use crate::config::ConfigErrors;

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter such as `info` or `presence_bridge=debug,tower_http=info`.
    /// `RUST_LOG`, when set, wins.
    pub filter: String,
    /// `json`, `pretty`, or `auto` (JSON when stdout is not a terminal).
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Auto,
        }
    }
}

impl LogConfig {
    pub fn validate(&self, path: &str, errs: &mut ConfigErrors) {
        if let Err(e) = EnvFilter::try_new(&self.filter) {
            errs.push(ConfigErrors::key(path, "filter"), e.to_string());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

/// Installs the global tracing subscriber (done once, by `main`). `RUST_LOG` wins over the
/// configured filter.
pub fn init_tracing(cfg: &LogConfig) -> anyhow::Result<()> {
    let text = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => v,
        _ => cfg.filter.clone(),
    };
    let mut filter = EnvFilter::try_new(&text)?;
    // The AWS credential chain warns once per provider per attempt (a dozen lines when no
    // credentials exist); the Amazon Connect connector says it once itself. A filter that
    // names aws_config decides for itself.
    if !text.contains("aws_config") {
        filter = filter.add_directive("aws_config=error".parse()?);
    }
    let json = match cfg.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()?;
    } else {
        // Colour only for a terminal: a file or a pipe gets plain text.
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init()?;
    }
    Ok(())
}

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Buckets (seconds) for latency histograms: 0.5 ms to 10 s.
const LATENCY_BUCKETS_SECS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// This application's metrics registry. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS_SECS)
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        for (name, help) in catalog::METRICS {
            // The recorder keeps one description per name, whatever the kind.
            recorder.describe_counter((*name).into(), None, (*help).into());
        }
        Self {
            recorder: Arc::new(recorder),
            handle,
        }
    }

    pub fn counter(&self, name: &'static str, labels: &[(&'static str, String)]) -> Counter {
        self.recorder
            .register_counter(&key(name, labels), &METADATA)
    }

    pub fn gauge(&self, name: &'static str, labels: &[(&'static str, String)]) -> Gauge {
        self.recorder.register_gauge(&key(name, labels), &METADATA)
    }

    pub fn histogram(&self, name: &'static str, labels: &[(&'static str, String)]) -> Histogram {
        self.recorder
            .register_histogram(&key(name, labels), &METADATA)
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    let labels: Vec<Label> = labels
        .iter()
        .map(|(k, v)| Label::new(*k, v.clone()))
        .collect();
    Key::from_parts(name, labels)
}
