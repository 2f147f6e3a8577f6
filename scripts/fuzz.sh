#!/usr/bin/env bash
# Fuzzes centralino for a bounded time and reports executions and crashes per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to all of them: config, inspect,
# webhook_twitter, webhook_facebook (see fuzz/fuzz_targets and RELIABILITY.md). Targets run
# one after another, one libFuzzer process each, so the machine keeps a core for others.
#
# Installs what it needs: the nightly toolchain (if rustup lacks one), cargo-fuzz, and the
# plugin components (`cargo xtask plugins`). Corpora grow in fuzz/corpus/<target>, seeded
# from tests/fixtures, fuzz/seeds, examples/ and the built components; crashes land in
# fuzz/artifacts/<target>; full logs in fuzz/logs. Not run in CI.
#
# Environment: FUZZ_SANITIZER (default `none`: the code under test is safe Rust, and
# wasmtime's trap handling and address-space reservations fight AddressSanitizer),
# FUZZ_JOBS (libFuzzer workers per target, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(config inspect webhook_twitter webhook_facebook)
fi
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}

step() { echo "==> $*" >&2; }

# --- tools -----------------------------------------------------------------------------
if ! rustup toolchain list | grep -q '^nightly'; then
    step "installing the nightly toolchain (cargo-fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    step "installing cargo-fuzz (a few minutes, once)"
    cargo install cargo-fuzz --locked
fi
if [ ! -f target/plugins/twitter.wasm ] || [ ! -f target/plugins/facebook.wasm ]; then
    step "building the plugin components"
    cargo xtask plugins
fi

# --- seeds -----------------------------------------------------------------------------
seed() {
    local target=$1
    shift
    mkdir -p "fuzz/corpus/$target"
    local file
    for file in "$@"; do
        [ -f "$file" ] && cp "$file" "fuzz/corpus/$target/seed-$(basename "$(dirname "$file")")-$(basename "$file")"
    done
}
shopt -s nullglob globstar
seed webhook_twitter tests/fixtures/twitter/**/*.json tests/fixtures/facebook/**/*.json fuzz/seeds/webhook_twitter/*
seed webhook_facebook tests/fixtures/facebook/**/*.json tests/fixtures/twitter/**/*.json fuzz/seeds/webhook_facebook/*
seed config examples/*.toml examples/**/*.toml fuzz/seeds/config/*
seed inspect target/plugins/*.wasm

declare -A dict=(
    [config]=fuzz/dict/toml.dict
    [inspect]=""
    [webhook_twitter]=fuzz/dict/json.dict
    [webhook_facebook]=fuzz/dict/json.dict
)

# --- build -----------------------------------------------------------------------------
step "building the fuzz targets (nightly, sanitizer: $sanitizer; the first build compiles wasmtime)"
(cd fuzz && cargo +nightly fuzz build --sanitizer "$sanitizer" --debug-assertions)

# --- run -------------------------------------------------------------------------------
mkdir -p fuzz/logs
summary=()
crashed=0
for target in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$target"
    before=$(find "fuzz/artifacts/$target" -type f | wc -l)
    corpus_before=$(find "fuzz/corpus/$target" -type f | wc -l)
    log="fuzz/logs/$target.log"
    step "fuzzing $target for ${seconds} s ($corpus_before inputs in its corpus)"
    args=(-max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1)
    if [ -n "${dict[$target]:-}" ]; then
        args+=(-dict="$root/${dict[$target]}")
    fi
    if [ "$jobs" -gt 1 ]; then
        args+=(-fork="$jobs")
    fi
    started=$(date +%s)
    set +e
    (cd fuzz && cargo +nightly fuzz run --sanitizer "$sanitizer" --debug-assertions "$target" -- "${args[@]}") >"$log" 2>&1
    status=$?
    set -e
    elapsed=$(( $(date +%s) - started ))
    execs=$( (grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | grep -o '[0-9]*$' | tail -1 || true)
    if [ -z "$execs" ]; then
        execs=$( (grep -o '^Done [0-9]* runs' "$log" || true) | grep -o '[0-9][0-9]*' | tail -1 || true)
    fi
    execs=${execs:-0}
    after=$(find "fuzz/artifacts/$target" -type f | wc -l)
    corpus_after=$(find "fuzz/corpus/$target" -type f | wc -l)
    found=$(( after - before ))
    if [ "$found" -gt 0 ] || [ "$status" -ne 0 ]; then
        crashed=1
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|faulted on' "$log" | head -5 >&2 || true
    fi
    rate=$(( execs / (elapsed > 0 ? elapsed : 1) ))
    summary+=("$(printf '%-18s %6ss %12s execs %8s/s %6s -> %-6s corpus %3s new crashes (exit %s)' \
        "$target" "$elapsed" "$execs" "$rate" "$corpus_before" "$corpus_after" "$found" "$status")")
done

echo
echo "fuzzing report ($(date -u +%Y-%m-%dT%H:%MZ), ${seconds} s per target, sanitizer $sanitizer, $(nproc) cores)"
printf '%s\n' "${summary[@]}"
if [ "$crashed" -ne 0 ]; then
    echo "crashes in fuzz/artifacts/<target>; reproduce with: (cd fuzz && cargo +nightly fuzz run -s $sanitizer -a <target> <file>)"
    exit 1
fi
echo "no crashes"
