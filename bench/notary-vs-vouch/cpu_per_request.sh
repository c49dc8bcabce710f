#!/usr/bin/env bash
# Server CPU time per request of two vouch-server builds, measured side by side.
#
# Starts both builds (each with its own data directory) on loopback, publishes the same
# 10-tag repository to each with its own `bench_publish`, then for ROUNDS rounds and for
# timestamp.json and targets.json runs `wrk -t2 -c32 -d$DURATION` against one build, then the
# other, and prints the server's utime+stime per request served and its req/s. CPU per request
# is what the server itself spends, so it resolves differences that req/s (shared with wrk on
# the same cores) cannot. See ../RESULTS.md, "notary-server vs vouch-server", run 9.
#
# Usage: bench/notary-vs-vouch/cpu_per_request.sh OLD_RELEASE_DIR NEW_RELEASE_DIR
#   where each directory holds `vouch-server` and `examples/bench_publish` built with
#   `cargo build --release -p vouch-server --bin vouch-server --example bench_publish`.
# Environment: ROUNDS (default 5), DURATION (default 5s).
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,13p' "$0" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 2; }
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/cpu-per-request.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' EXIT
names=(old new)
dirs=("$1" "$2")
ports=(5801 5802)
for i in 0 1; do
    VOUCH_LOG=warn "${dirs[$i]}/vouch-server" --listen "127.0.0.1:${ports[$i]}" \
        --data-dir "$WORK/${names[$i]}" >"$WORK/${names[$i]}.log" 2>&1 &
    PIDS+=($!)
done
for i in 0 1; do
    for _ in $(seq 50); do
        [ -s "$WORK/${names[$i]}/admin.token" ] &&
            curl -sf "http://127.0.0.1:${ports[$i]}/v2/" >/dev/null && break
        sleep 0.2
    done
    "${dirs[$i]}/examples/bench_publish" "http://127.0.0.1:${ports[$i]}" bench/app10 10 \
        "$WORK/${names[$i]}/admin.token" >/dev/null
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "| round | build | file | req/s | server CPU µs/request |"
echo "| --- | --- | --- | ---: | ---: |"
for round in $(seq "$ROUNDS"); do
    for f in timestamp.json targets.json; do
        for i in 0 1; do
            url="http://127.0.0.1:${ports[$i]}/v2/bench/app10/_trust/tuf/$f"
            curl -sf "$url" >/dev/null
            t0=$(ticks "${PIDS[$i]}")
            out=$(wrk -t2 -c32 -d"$DURATION" "$url")
            t1=$(ticks "${PIDS[$i]}")
            echo "$out" | awk -v t=$((t1 - t0)) -v hz="$HZ" -v round="$round" -v b="${names[$i]}" -v f="$f" \
                '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
                 END {printf "| %d | %s | %s | %.0f | %.2f |\n", round, b, f, r, t / hz * 1e6 / n}'
        done
    done
done
