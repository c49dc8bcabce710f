#!/usr/bin/env bash
# Event-stream benchmark: SUBSCRIBERS Server-Sent-Events streams on one vouch-server (release
# build, SQLite, a fresh data directory) while signed targets updates are published at RATE
# per second for SECONDS; first with 1 subscriber, then with SUBSCRIBERS, in the same run.
# Prints one Markdown table (server/examples/events_bench.rs makes it) and the machine's
# load. See README.md beside this script. Not part of CI.
#
# Usage: bench/events/run.sh [SUBSCRIBERS] [SECONDS] [RATE]     (default 1000 30 100)
# Environment: CARGO_TARGET_DIR (where the release build goes), REPOS (10: repositories
#   published to, round-robin), CLIENT_THREADS (1: worker threads of the subscribers),
#   KEEP_WORK (1: keep the scratch directory with the server's log), VOUCH_SERVER_BIN (another
#   vouch-server binary to measure, e.g. one built from another commit: A/B runs).
set -euo pipefail

SUBS=${1:-1000}
SECS=${2:-30}
RATE=${3:-100}
for v in "$SUBS" "$SECS" "$RATE"; do
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] ||
        { echo "usage: $0 [SUBSCRIBERS] [SECONDS] [RATE]  (positive integers)" >&2; exit 2; }
done
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

echo "building vouch-server and the events_bench example (release)…" >&2
(cd "$ROOT" && cargo build --release --locked -q -p vouch-server --bin vouch-server --example events_bench)

# One descriptor per stream on each side, plus the server's own: raise the soft limit to the
# hard one for both processes (they are children of this shell).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((SUBS + 256)) ]; then
    echo "the open-file limit ($(ulimit -n)) is too low for $SUBS streams: raise the hard limit" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/vouch-events.XXXXXX)
SERVER_PID=
RC=1
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$RC" != 0 ]; then
        echo "scratch directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
VOUCH_LOG=warn \
VOUCH_EVENTS_MAX_STREAMS=$((SUBS + 64)) \
VOUCH_EVENTS_MAX_STREAMS_PER_CLIENT=$((SUBS + 64)) \
VOUCH_MAX_CONNECTIONS=$((SUBS + 256)) \
    "${VOUCH_SERVER_BIN:-$TARGET/release/vouch-server}" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
    curl -sf "$URL/v2/" >/dev/null 2>&1 && [ -s "$WORK/data/admin.token" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.1
done

echo "before: $(uptime)" >&2
set +e
"$TARGET/release/examples/events_bench" --url "$URL" --token-file "$WORK/data/admin.token" \
    --server-pid "$SERVER_PID" --subscribers "$SUBS" --seconds "$SECS" --rate "$RATE" \
    --repos "${REPOS:-10}" --client-threads "${CLIENT_THREADS:-1}" | tee "$WORK/summary.md"
RC=${PIPESTATUS[0]}
set -e
echo "after: $(uptime)" >&2
echo "$(date -u '+%F %H:%M') UTC, $(nproc) cores, server ${VOUCH_SERVER_BIN:-at $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- server || echo '+changes')}; bench/events/run.sh $SUBS $SECS $RATE exited $RC" >&2
exit "$RC"
