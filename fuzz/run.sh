#!/usr/bin/env bash
# Runs every fuzz target (or those named) for FUZZ_SECONDS each (20 by
# default), starting from the committed corpus, and fails if any target
# crashes, trips an assertion, times out or runs out of memory. Prints
# the executions of each target. See README.md.
#
# Usage: fuzz/run.sh [TARGET…]    FUZZ_SECONDS=600 fuzz/run.sh envelope
# FUZZ_KEEP_CORPUS=1 continues from what earlier runs found.
#
# It builds with the pinned stable toolchain and no sanitizer (`unsafe` is
# denied in weft, so AddressSanitizer would mostly watch dependencies).
# Inputs the fuzzer finds go to fuzz/target/corpus/<target>, not into the
# committed corpus; a crashing input is kept in fuzz/artifacts/<target>/.
# Each target is run from the binary built here: `cargo fuzz run` would
# rebuild first.
set -euo pipefail
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz_dir"

seconds="${FUZZ_SECONDS:-20}"
# cargo-fuzz's build options; `run` must repeat them or it rebuilds.
build=(--sanitizer none --codegen-units 16)

"$fuzz_dir/../.ci/tools.sh" cargo-fuzz

if [ "$#" -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
else
    targets=("$@")
fi

start=$(date +%s)
cargo fuzz build "${build[@]}"
echo "fuzz build: $(($(date +%s) - start)) s"
triple="$(rustc -vV | sed -n 's/^host: //p')"
bin="$fuzz_dir/target/$triple/release"

# The compile target's module caches, and anything else a target writes.
export TMPDIR="$fuzz_dir/target/tmp"

declare -A executions outcome
failed=0
for target in "${targets[@]}"; do
    rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
    # Each run starts from the committed corpus only (so its length does
    # not grow with earlier runs' finds) unless FUZZ_KEEP_CORPUS=1.
    if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then
        rm -rf "target/corpus/$target"
    fi
    mkdir -p "target/corpus/$target"
    log="target/logs/$target.log"
    mkdir -p target/logs
    echo "== $target: ${seconds} s"
    # -timeout: one input may take at most 60 s (compiling a real
    # component, instrumented, takes a few).
    mkdir -p "artifacts/$target"
    if "$bin/$target" "target/corpus/$target" "corpus/$target" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" -timeout=60 \
        -print_final_stats=1 >"$log" 2>&1; then
        outcome[$target]=ok
    else
        outcome[$target]=FAILED
        failed=1
        grep -B2 -A12 -m1 -E "panicked|ERROR: libFuzzer|==[0-9]+== ERROR" "$log" || tail -n 40 "$log"
    fi
    executions[$target]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
done

echo
printf '%-12s %12s  %s\n' target executions result
for target in "${targets[@]}"; do
    printf '%-12s %12s  %s\n' "$target" "${executions[$target]:-?}" "${outcome[$target]}"
done
if [ "$failed" -ne 0 ]; then
    echo "a fuzz target failed: see fuzz/target/logs/ and fuzz/artifacts/" >&2
    exit 1
fi
