use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use presence_bridge::cli::{self, Cli, EXIT_FAILURE};

/// How long the runtime waits at exit for blocking tasks: enough for file writes to finish,
/// short enough that SIGTERM stops the daemon within 2 s whatever its peers do.
const BLOCKING_WORK_GRACE: Duration = Duration::from_millis(300);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(cli::run(cli));
    // Blocking work still running (a DNS lookup whose resolver never answers) must not hold
    // the process once the daemon has stopped.
    runtime.shutdown_timeout(BLOCKING_WORK_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
