#!/usr/bin/env bash
# Runs one fuzz campaign: fuzz/run.sh TARGET SECONDS
#
# Installs cargo-fuzz when it is missing, builds TARGET (release, debug assertions on so
# integer overflow panics) with libFuzzer on the stable toolchain (RUSTC_BOOTSTRAP=1 lets
# stable accept the flags cargo-fuzz passes), and runs it for SECONDS on one core. Reads the
# checked-in seeds of fuzz/corpus/TARGET/ and writes what it discovers to a working corpus,
# fuzz/work/TARGET/ (not checked in), which is minimised afterwards (libFuzzer's merge). A
# crash stops the run and leaves its input in fuzz/artifacts/TARGET/; copy it into
# fuzz/corpus/TARGET/ so the corpus test replays it (see fuzz/README.md).
#
# Prints a summary line: executions, coverage (libFuzzer's `cov:` edges and `ft:` features),
# seconds, corpus size, crash inputs. The full libFuzzer log is fuzz/work/TARGET.log.
#
# Environment: CARGO_TARGET_DIR (default fuzz/target), FUZZ_SANITIZER (default none: the
# crates forbid unsafe code, and without AddressSanitizer the run is about twice as fast;
# `address` turns it on), FUZZ_MAX_LEN (default 65536: the largest input libFuzzer makes).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 TARGET SECONDS" >&2
    exit 2
fi
target="$1"
seconds="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [ ! -f "fuzz_targets/$target.rs" ]; then
    echo "no such target: $target (one of: $(cd fuzz_targets && ls | sed 's/\.rs$//' | tr '\n' ' '))" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$here/target}"
sanitizer="${FUZZ_SANITIZER:-none}"
max_len="${FUZZ_MAX_LEN:-65536}"
flags=(--sanitizer "$sanitizer" --debug-assertions --target-dir "$target_dir")
# The library a target's body lives in, when it is not vouch-tuf (see Cargo.toml [features]).
case "$target" in
    multipart | jwt | server_config | changefeed_query | events_start | proposal_body | repo_state) flags+=(--features server) ;;
    admission_review | policy) flags+=(--features admission) ;;
    bundle | pins | token_challenge | registry_response | cache_file | docker_config) flags+=(--features verifier) ;;
esac

mkdir -p "work/$target" "artifacts/$target"
log="work/$target.log"
crashes_before=$(find "artifacts/$target" -type f | wc -l)

cargo fuzz build "${flags[@]}" "$target"
set +e
cargo fuzz run "${flags[@]}" "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" 2>&1 | tee "$log" |
    grep -E '^(#[0-9]+.*(INITED|DONE)|==|.*panicked|SUMMARY|Test unit written|stat::)'
status=${PIPESTATUS[0]}
set -e

# Keep only the inputs that add coverage.
merged="work/$target.merged"
rm -rf "$merged" && mkdir -p "$merged"
cargo fuzz run "${flags[@]}" "$target" "$merged" "work/$target" -- -merge=1 >/dev/null 2>&1 || true
rm -rf "work/$target" && mv "$merged" "work/$target"

execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
last=$(grep -E '^#[0-9]+' "$log" | grep -E 'cov: [0-9]+' | tail -1)
cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
crashes_after=$(find "artifacts/$target" -type f | wc -l)
echo "target=$target seconds=$seconds executions=${execs:-?} cov=${cov:-?} ft=${ft:-?}" \
    "corpus=$(find "work/$target" -type f | wc -l) new_crash_inputs=$((crashes_after - crashes_before))" \
    "exit=$status"
exit "$status"
