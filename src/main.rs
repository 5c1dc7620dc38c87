use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use presence_bridge::cli::{self, Cli, EXIT_FAILURE};

/// mimalloc rather than glibc's malloc: at 100,000 people glibc kept hundreds of MB of freed
/// memory in its per-thread arenas after each bulk read (RSS 785 MiB of which `malloc_trim`
/// gave back 365), and its free-list upkeep (`malloc_consolidate`, `_int_malloc`) was over
/// half of the CPU at rest. mimalloc's version 2 rather than its version 3 (the crate's
/// default): at 100,000 people version 3 held 376–400 MiB two minutes after everyone was
/// matched where version 2 held 231 MiB, with about the same heap in use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Opts the process out of transparent huge pages. mimalloc asks for them on its 1 GiB arena
/// (`madvise(MADV_HUGEPAGE)`), and a 2 MiB page then stays resident for a few KB in use: with
/// 1,000 people about 45 of the daemon's 90 MiB were such pages. Memory is the daemon's
/// budget; the TLB misses saved are not worth it.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes only integers and changes only this process's flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// How long the runtime waits at exit for blocking tasks: enough for file writes to finish,
/// short enough that SIGTERM stops the daemon within 2 s whatever its peers do.
const BLOCKING_WORK_GRACE: Duration = Duration::from_millis(300);

fn main() -> ExitCode {
    no_transparent_huge_pages();
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
