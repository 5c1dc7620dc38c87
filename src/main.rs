use std::process::ExitCode;

use clap::Parser;
use presence_bridge::app::{AppError, Application, shutdown_signal};
use presence_bridge::cli::{Cli, Command, EXIT_CONFIG, EXIT_FAILURE};
use presence_bridge::config::{Config, ConfigError};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE as u8);
        }
    };
    let code = runtime.block_on(run(cli));
    ExitCode::from(code as u8)
}

fn load_config(cli: &Cli) -> Result<Config, i32> {
    Config::load(&cli.config).map_err(|e| {
        match e {
            ConfigError::Invalid(errs) => {
                eprintln!("error: invalid configuration in {}:", cli.config.display());
                for issue in errs.iter() {
                    eprintln!("  {}: {}", issue.path, issue.message);
                }
            }
            other => eprintln!("error: {other}"),
        }
        EXIT_CONFIG
    })
}

async fn run(cli: Cli) -> i32 {
    #[cfg(feature = "demo")]
    if let Command::Demo { users, listen } = cli.command {
        let opts = presence_bridge::cli::demo::DemoOptions {
            users: usize::from(users),
            listen,
        };
        return match presence_bridge::cli::demo::run(opts).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: demo: {e:#}");
                EXIT_FAILURE
            }
        };
    }
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::CheckConfig => {
            println!("# configuration is valid: {}", cli.config.display());
            print!("{}", config.to_redacted_toml());
            0
        }
        Command::Migrate => match presence_bridge::store::open(&config.store).await {
            Ok(store) => {
                println!("migrations applied ({})", store.backend());
                0
            }
            Err(e) => {
                eprintln!("error: database: {e}");
                EXIT_FAILURE
            }
        },
        Command::Connectors(presence_bridge::cli::ConnectorsCommand::Render {
            name,
            agent,
            status,
        }) => match presence_bridge::connectors::render_set_status(
            &config.connectors,
            &name,
            &agent,
            &status,
        )
        .await
        {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_FAILURE
            }
        },
        #[cfg(feature = "demo")]
        Command::Demo { .. } => unreachable!("handled before the configuration is loaded"),
        Command::Accounts { command } => {
            presence_bridge::cli::accounts::run(&config, command).await
        }
        Command::Explain { user, limit } => {
            presence_bridge::cli::engine::explain(&config, &user, limit).await
        }
        Command::Users { report } => presence_bridge::cli::engine::users(&config, report).await,
        Command::Run => {
            if let Err(e) = presence_bridge::telemetry::init_tracing(&config.log) {
                eprintln!("error: log.filter: {e}");
                return EXIT_CONFIG;
            }
            let app = match Application::build(config).await {
                Ok(app) => app,
                Err(e) => {
                    eprintln!("error: {e}");
                    return match e {
                        AppError::Config(_) => EXIT_CONFIG,
                        _ => EXIT_FAILURE,
                    };
                }
            };
            match app.run_until_stopped(shutdown_signal()).await {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "daemon stopped with an error");
                    EXIT_FAILURE
                }
            }
        }
    }
}
