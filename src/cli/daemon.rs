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
/// With `dump`, the effective configuration follows; `--online` leaves it out so its own
/// verdict is what the operator reads last.
pub(super) fn check_config(path: &Path, config: &Config, dump: bool) -> anyhow::Result<()> {
    outln!("# configuration is valid: {}", path.display())?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    if dump {
        out!("{}", config.to_redacted_toml())?;
    }
    Ok(())
}

/// `presence-bridge check-config --online`: signs in to Graph and to every connector, reads
/// each connector's status catalog and agents, and checks every rule against the catalogs
/// read. Each problem is reported with its key path; any problem exits 78.
pub(super) async fn check_online(config: &Config) -> anyhow::Result<()> {
    let mut errs = crate::config::ConfigErrors::default();
    if config.graph.enabled() {
        let client = crate::graph::GraphClient::new(&config.graph, None)
            .map_err(|e| anyhow::anyhow!("graph: {e}"))?;
        match client.app_token().await {
            Ok(_) => eprintln!("online: graph: signed in as the app"),
            Err(e) => errs.push("graph", format!("cannot sign in: {e}")),
        }
    }
    let cancel = tokio_util::sync::CancellationToken::new();
    let connectors = crate::connectors::build_connectors(&config.connectors, None, &cancel)
        .await
        .map_err(|e| anyhow::anyhow!("connectors: {e}"))?;
    for (i, c) in connectors.iter().enumerate() {
        let path = format!("connectors[{i}]");
        let name = c.name();
        let catalog = match c.status_catalog().await {
            Ok(catalog) => catalog,
            Err(e) => {
                errs.push(
                    path,
                    format!("connector \"{name}\": cannot read the status catalog: {e}"),
                );
                continue;
            }
        };
        crate::engine::rules::check_catalog(
            name,
            &config.teams_to_cc,
            &config.cc_to_teams,
            &catalog,
            &mut errs,
        );
        match c.list_agents().await {
            Ok(agents) => eprintln!(
                "online: connector \"{name}\": {} statuses, {} agents",
                catalog.len(),
                agents.len()
            ),
            Err(e) => errs.push(
                path,
                format!("connector \"{name}\": cannot list agents: {e}"),
            ),
        }
    }
    cancel.cancel();
    if errs.is_empty() {
        eprintln!("online: every rule fits the catalogs read");
        Ok(())
    } else {
        Err(crate::app::config::ConfigError::Invalid(errs).into())
    }
}

/// `presence-bridge migrate`.
pub(super) async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = super::open_store(config)
        .await
        .context("migrations not applied")?;
    outln!("migrations applied ({})", store.backend())?;
    Ok(())
}
