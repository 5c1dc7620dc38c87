//! The command line: `presence-bridge [--config PATH] <command>`. One file per command group
//! ([`daemon`]: run, check-config, migrate; [`accounts`]; [`engine`]: explain, users;
//! [`connectors`]; [`demo`]); each command returns `anyhow::Result`, and [`exit_code`] is the
//! one mapping from an error to the process's exit status (0 / 78 / 1).

pub mod accounts;
mod alerts;
mod connectors;
mod daemon;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
mod demo_messaging;
mod dynamics;
mod engine;
mod out;
#[cfg(feature = "demo")]
pub mod sim;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::app::AppError;
use crate::app::config::{Config, ConfigError};

/// Exit code for a configuration error (EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;
/// Exit code for a runtime failure (database, network, ...).
pub const EXIT_FAILURE: u8 = 1;

/// Keeps Microsoft Teams presence and contact-center agent status in step.
#[derive(Debug, Parser)]
#[command(name = "presence-bridge", version, about)]
pub struct Cli {
    /// Path of the TOML configuration file.
    #[arg(
        long,
        global = true,
        env = "PRESENCE_BRIDGE_CONFIG",
        default_value = "/etc/presence-bridge/presence-bridge.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run,
    /// Validate the configuration and print the effective values (secrets redacted).
    CheckConfig {
        /// Also sign in to Microsoft Graph and every connector, read their status catalogs
        /// and agents, and check every rule against the catalogs read (exit 78 on a mismatch).
        #[arg(long)]
        online: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the delegated sync accounts that hold presence subscriptions.
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Alert sinks (`[[alerts]]`).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Contact-center connector tools.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Microsoft Dynamics 365 (Dataverse) tools.
    #[command(subcommand)]
    Dynamics(DynamicsCommand),
    /// Print the last sync decisions for a user in plain words.
    Explain {
        /// The user: Teams object id, UPN, e-mail address or display name.
        user: String,
        /// How many decisions to show.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Teams users and contact-center agents.
    Users {
        /// Print matched pairs, unmatched users and agents, and conflicts, changing nothing.
        #[arg(long)]
        report: bool,
        /// Read the directory from Graph and the agents from every connector now, instead of
        /// what the daemon stored: a matching preview before the daemon ever ran.
        #[arg(long)]
        online: bool,
    },
    /// Run the full daemon on SQLite against a simulated Teams tenant and contact center
    /// (no credentials, no network; ignores --config). Ctrl-C stops it.
    #[cfg(feature = "demo")]
    Demo {
        /// How many simulated people.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        users: u32,
        /// Address to listen on (default 127.0.0.1:8080 from config/demo.toml).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The simulated contact center: the generic one, an innovaphone PBX or a Google
        /// CCAI Platform tenant.
        #[arg(long, value_enum, default_value_t = demo::DemoCc::Sim)]
        cc: demo::DemoCc,
        /// Also bridge a simulated customer's Teams chat to a simulated Genesys agent
        /// (Teams chat ⇄ Open Messaging).
        #[arg(long)]
        messaging: bool,
    },
    /// Run the demo's simulated Teams tenant and contact center alone (no daemon), print the
    /// daemon configuration that points at them, and serve until Ctrl-C (ignores --config).
    #[cfg(feature = "demo")]
    Sim {
        /// How many simulated people.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=200_000))]
        users: u32,
        /// Address of the simulated Graph (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Address of the simulated contact center (default: the same host, any free port).
        #[arg(long)]
        cc_listen: Option<std::net::SocketAddr>,
        /// Agents per page of the contact center's list and poll endpoints.
        #[arg(long, default_value_t = 1000)]
        page_size: usize,
        /// Requests per second the printed connector entry allows towards the contact center.
        #[arg(long, default_value_t = 20.0)]
        cc_requests_per_sec: f64,
        /// Each person changes status about once every this many seconds, in Teams and in the
        /// contact center by turns (0: nobody changes; 600 = once per 10 minutes).
        #[arg(long, default_value_t = 0)]
        change_every_secs: u64,
        /// Where the contact center posts its event webhooks (the daemon's
        /// /connectors/simcc/events).
        #[arg(long)]
        webhook_url: Option<String>,
        /// Write the daemon configuration to this file instead of printing it.
        #[arg(long)]
        config_out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send a sample alert to every sink (or one) now and print what each answered.
    Test {
        /// Only this sink.
        #[arg(long)]
        sink: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Print the exact set-status request an http connector would send (secrets redacted).
    Render {
        /// Connector name.
        name: String,
        /// Agent id.
        agent: String,
        /// Status id or name from the connector's catalog.
        status: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DynamicsCommand {
    /// Print the exact Web API request a contact step would send (token redacted).
    Render {
        /// The step: created, connected, ended or recording_available.
        step: String,
        /// A JSON file holding the contact event.
        event: PathBuf,
        /// The `[[dynamics]]` environment (default: the first).
        #[arg(long)]
        environment: Option<String>,
        /// The connector the event comes from (`contact.connector`).
        #[arg(long, default_value = "connector")]
        connector: String,
        /// A value captured by an earlier step, `STEP.NAME=VALUE` (repeatable).
        #[arg(long = "capture")]
        captures: Vec<String>,
    },
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match dispatch(cli).await {
        Err(e) if out::is_broken_pipe(&e) => Ok(()),
        other => other,
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    #[cfg(feature = "demo")]
    if let Command::Demo {
        users,
        listen,
        cc,
        messaging,
    } = cli.command
    {
        let opts = demo::DemoOptions {
            users: users as usize,
            listen,
            cc,
            messaging,
        };
        return demo::run(opts).await;
    }
    #[cfg(feature = "demo")]
    if let Command::Sim {
        users,
        listen,
        cc_listen,
        page_size,
        cc_requests_per_sec,
        change_every_secs,
        webhook_url,
        config_out,
    } = cli.command
    {
        return sim::run(sim::SimOptions {
            users: users as usize,
            listen,
            cc_listen,
            page_size,
            cc_requests_per_sec,
            change_every_secs,
            webhook_url,
            config_out,
        })
        .await;
    }
    let config = load_config(&cli)?;
    match cli.command {
        Command::Run => daemon::run(config).await,
        Command::CheckConfig { online: false } => daemon::check_config(&cli.config, &config, true),
        Command::CheckConfig { online: true } => {
            daemon::check_config(&cli.config, &config, false)?;
            daemon::check_online(&config).await
        }
        Command::Migrate => daemon::migrate(&config).await,
        Command::Accounts { command } => accounts::run(&config, command).await,
        Command::Alerts(AlertsCommand::Test { sink }) => {
            alerts::test(&config, sink.as_deref()).await
        }
        Command::Connectors(ConnectorsCommand::Render {
            name,
            agent,
            status,
        }) => connectors::render(&config, &name, &agent, &status).await,
        Command::Dynamics(DynamicsCommand::Render {
            step,
            event,
            environment,
            connector,
            captures,
        }) => dynamics::render(
            &config,
            &step,
            &event,
            environment.as_deref(),
            &connector,
            &captures,
        ),
        Command::Explain { user, limit } => engine::explain(&config, &user, limit).await,
        Command::Users { report, online } => engine::users(&config, report, online).await,
        #[cfg(feature = "demo")]
        Command::Demo { .. } => unreachable!("handled before the configuration is loaded"),
        #[cfg(feature = "demo")]
        Command::Sim { .. } => unreachable!("handled before the configuration is loaded"),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Config::load(&cli.config).map_err(|e| match e {
        ConfigError::Invalid(errs) => {
            let mut text = format!("invalid configuration in {}:", cli.config.display());
            for issue in errs.iter() {
                text.push_str(&format!("\n  {}: {}", issue.path, issue.message));
            }
            anyhow::Error::new(InvalidConfig(text))
        }
        other => anyhow::Error::new(other),
    })
}

/// Every problem of a configuration file, one per line with its key path.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct InvalidConfig(String);

/// The exit status for an error: 78 when the configuration is at fault, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let config_fault = err.chain().any(|cause| {
        cause.downcast_ref::<InvalidConfig>().is_some()
            || cause.downcast_ref::<ConfigError>().is_some()
            || matches!(cause.downcast_ref::<AppError>(), Some(AppError::Config(_)))
    });
    if config_fault {
        EXIT_CONFIG
    } else {
        EXIT_FAILURE
    }
}

/// Opens the configured store for a command that reads or writes it.
async fn open_store(config: &Config) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    // A command run by hand reports an unreachable database at once.
    let cfg = crate::store::config::StoreConfig {
        connect_wait_secs: 0,
        ..config.store.clone()
    };
    crate::store::open(&cfg)
        .await
        .map_err(|e| anyhow::anyhow!("database: {e}"))
}
