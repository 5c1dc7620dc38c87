#!/usr/bin/env bash
# Runs every fuzz target (or those named) for a bounded time each, one after another, keeping
# what each finds in fuzz/corpus/<target> (new inputs) and fuzz/artifacts/<target> (crashes).
#
#   fuzz/run.sh                      # every target, FUZZ_SECS (default 60) seconds each
#   FUZZ_SECS=600 fuzz/run.sh jwt    # one target for ten minutes
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# it use the unstable compiler flags it needs. Runs at the lowest CPU priority, one job.
# The fuzzer runs in the script's process (no -jobs: its workers would all log to one
# fuzz-0.log in this folder), so several targets can run side by side, each logging to its own
# artifacts/<target>/last-run.log.
# FUZZ_SANITIZER (default `none`: the code is safe Rust; `address` for ASan) is passed on.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(notifications jwt http_events template config)
fi
if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "== $t: ${secs}s"
    # The seeds (committed) are read; new inputs go to the kept corpus.
    if ! nice -n 19 cargo fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" \
        "corpus/$t" "seeds/$t" -- -max_total_time="$secs" -print_final_stats=1 2>"$log"; then
        echo "!! $t found a crash: see artifacts/$t and $log"
        status=1
    fi
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|SUMMARY|panicked" "$log" || true
done
exit $status
