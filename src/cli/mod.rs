//! The command line: `presence-bridge [--config PATH] <command>`.

pub mod accounts;
#[cfg(feature = "demo")]
pub mod demo;
pub mod engine;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code for a configuration error (EX_CONFIG).
pub const EXIT_CONFIG: i32 = 78;
/// Exit code for a runtime failure (database, network, ...).
pub const EXIT_FAILURE: i32 = 1;

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
    CheckConfig,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage the delegated sync accounts that hold presence subscriptions.
    Accounts {
        #[command(subcommand)]
        command: crate::cli::accounts::AccountsCommand,
    },
    /// Contact-center connector tools.
    #[command(subcommand)]
    Connectors(ConnectorsCommand),
    /// Print the last sync decisions for a user in plain words.
    Explain {
        /// The user's Teams object id.
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
    },
    /// Run the full daemon on SQLite against a simulated Teams tenant and contact center
    /// (no credentials, no network; ignores --config). Ctrl-C stops it.
    #[cfg(feature = "demo")]
    Demo {
        /// How many simulated people.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=10000))]
        users: u16,
        /// Address to listen on (default 127.0.0.1:8080 from config/demo.toml).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
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
