//! `run`, `check-config` and `migrate`.

use super::out::{out, outln};
use std::path::Path;

use anyhow::Context;

use crate::app::config::Config;
use crate::app::{Application, shutdown_signal};

/// `presence-bridge run`: the daemon, until SIGINT or SIGTERM.
pub(super) async fn run(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init_tracing(&config.log)
        .map_err(|e| crate::app::AppError::Config(format!("log.filter: {e}")))?;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "daemon stopped with an error"))
}

/// `presence-bridge check-config`: the effective configuration, secrets redacted.
pub(super) fn check_config(path: &Path, config: &Config) -> anyhow::Result<()> {
    outln!("# configuration is valid: {}", path.display())?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    out!("{}", config.to_redacted_toml())?;
    Ok(())
}

/// `presence-bridge migrate`.
pub(super) async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config)
        .await
        .context("migrations not applied")?;
    outln!("migrations applied ({})", store.backend())?;
    Ok(())
}
