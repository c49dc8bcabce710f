# Shared by run.sh and cli.sh (source it, do not run it): a scratch directory, the tools, the
# two servers on loopback, and the CPU counters used to notice other processes.
#
# After sourcing: ROOT (the repository), WORK (scratch directory, removed on exit), HZ.
# start_servers NOTARY_PORT VOUCH_PORT starts notary-server (memory storage, trust_service
# local, plain HTTP) and vouch-server (SQLite in $WORK/vouch-data), and sets NOTARY_PID,
# VOUCH_PID, NOTARY_URL, VOUCH_URL, VOUCH_TOKEN_FILE and NOTARY_CLIENT_CONFIG (a notary client
# configuration with its trust directory in $WORK/notary-trust). Both are killed on exit.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d /tmp/notary-vs-vouch.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

install_tools() { # notary (server, signer, client 0.7) and wrk from Debian, when missing
    if ! command -v notary-server >/dev/null || ! command -v notary >/dev/null ||
        ! command -v wrk >/dev/null; then
        apt-get update -qq && apt-get install -y -qq notary wrk >/dev/null
    fi
}

start_servers() { # NOTARY_PORT VOUCH_PORT (vouch-server must be built in release mode)
    local notary_port=$1 vouch_port=$2
    cat >"$WORK/notary-server.json" <<JSON
{
  "server": {"http_addr": "127.0.0.1:$notary_port"},
  "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
  "logging": {"level": "error"},
  "storage": {"backend": "memory"}
}
JSON
    NOTARY_URL="http://127.0.0.1:$notary_port"
    VOUCH_URL="http://127.0.0.1:$vouch_port"
    NOTARY_CLIENT_CONFIG="$WORK/notary-client.json"
    cat >"$NOTARY_CLIENT_CONFIG" <<JSON
{"trust_dir": "$WORK/notary-trust", "remote_server": {"url": "$NOTARY_URL"}}
JSON
    notary-server -config "$WORK/notary-server.json" >"$WORK/notary-server.log" 2>&1 &
    NOTARY_PID=$!
    PIDS+=("$NOTARY_PID")
    VOUCH_LOG=warn "$ROOT/target/release/vouch-server" --listen "127.0.0.1:$vouch_port" \
        --data-dir "$WORK/vouch-data" >"$WORK/vouch-server.log" 2>&1 &
    VOUCH_PID=$!
    PIDS+=("$VOUCH_PID")
    VOUCH_TOKEN_FILE="$WORK/vouch-data/admin.token"
    local _
    for _ in $(seq 50); do
        curl -sf "$NOTARY_URL/v2/" >/dev/null 2>&1 &&
            curl -sf "$VOUCH_URL/v2/" >/dev/null 2>&1 && [ -s "$VOUCH_TOKEN_FILE" ] && return 0
        sleep 0.2
    done
    echo "the servers did not start; logs in $WORK" >&2
    cat "$WORK/notary-server.log" "$WORK/vouch-server.log" >&2
    return 1
}

ticks() { # user+nice+system jiffies of the machine (interrupt time is the benchmark's own traffic)
    awk '/^cpu /{print $2+$3+$4}' /proc/stat
}
proc_ticks() { # utime+stime of a process and its threads
    awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)
