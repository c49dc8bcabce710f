#!/usr/bin/env bash
# Soak and fault run: vouch under a mixed load while processes are killed, a disk fills, the
# database goes away or its own disk fills, a webhook cache file is corrupted, the webhook's
# TLS certificate is replaced and the webhook receiver goes away; then checks that nothing
# acknowledged was lost or forked, python-tuf verifies every repository, memory and file
# descriptors stayed flat, every error status is a documented one, and every change reached
# the event streams, the webhook receiver and the registry mirror. Not part of CI.
#
# Starts a throwaway PostgreSQL (../notary-vs-vouch/pg.sh) whose data directory is a tmpfs of
# its own, two vouch-server replicas on it (one KEK file, one static token, one webhook
# signing key, mirroring into a docker-registry on a free loopback port), one vouch-server on
# SQLite whose data directory is a small tmpfs, and vouch-admission over HTTPS (a throwaway CA
# made here with openssl) verifying soak.example/adm/** against replica b with a
# --cache-dir; driver.py (python-tuf) then drives the load, injects the faults, runs the
# feeds' consumers (feeds.py), checks and prints one summary table. See README.md beside
# this script.
#
# Usage: bench/soak/run.sh [SECONDS]      (default 600, at most 3600; as root: tmpfs mount,
#                                          PostgreSQL as the postgres user)
# Needs Debian's docker-registry (/usr/bin/docker-registry).
# Environment: CARGO_TARGET_DIR (where the release build goes), VOUCH_BIN_DIR (a directory
#   already holding release builds of vouch-server, vouch-admission and vouch: no build, for
#   several runs sharing one), VOUCH_TEST_PYTHON (a python
#   with tuf 7; default target/venv/bin/python, made by scripts/python-env), PG_PORT (55492),
#   WORKERS (4), THINK_MS (10: pause of each worker between operations), FAULTS_PER_KIND (3),
#   TMPFS_SIZE (256m: the SQLite server's disk), PG_TMPFS_SIZE (PostgreSQL's disk; default
#   512 MiB + 1 MiB per 2 s of the run, about twice what the run's database takes),
#   KEEP_WORK (1: keep the scratch directory), HEAPTRACK (a process name, a|b|s|w: heaptrack
#   attached to it once warm, its trace in the scratch directory).
set -euo pipefail

SECONDS_TOTAL=${1:-600}
[[ "$SECONDS_TOTAL" =~ ^[0-9]+$ ]] && [ "$SECONDS_TOTAL" -ge 120 ] && [ "$SECONDS_TOTAL" -le 3600 ] ||
    { echo "usage: $0 [SECONDS]  (120-3600)" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PY=${VOUCH_TEST_PYTHON:-$ROOT/target/venv/bin/python}
[ -x "$PY" ] || { echo "no python with python-tuf at $PY: run scripts/python-env or set VOUCH_TEST_PYTHON" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (tmpfs mount, PostgreSQL as postgres)" >&2; exit 2; }

BIN=${VOUCH_BIN_DIR:-$TARGET/release}
if [ -z "${VOUCH_BIN_DIR:-}" ]; then
    echo "building vouch-server, vouch-admission and vouch (release)…" >&2
    (cd "$ROOT" && cargo build --release --locked -q -p vouch-server --bin vouch-server \
        -p vouch-admission --bin vouch-admission -p vouch-cli --bin vouch)
fi
for b in vouch-server vouch-admission vouch; do
    [ -x "$BIN/$b" ] || { echo "no $b in $BIN" >&2; exit 2; }
done
BIN=$(cd "$BIN" && pwd)

# pg_start, pg_stop, psql_do, pg_ctl_do, PG_URL, PG_ROOT, PG_BIN
source "$ROOT/bench/notary-vs-vouch/pg.sh"
WORK=$(mktemp -d /tmp/vouch-soak.XXXXXX)
DISK="$WORK/sqlite-disk"
RC=1
cleanup() {
    local p
    # The driver stops the servers it started; these are what is left if it was killed.
    for p in $(cat "$WORK/pids" 2>/dev/null); do
        case $(readlink "/proc/$p/exe" 2>/dev/null) in "$BIN"/* | /usr/bin/docker-registry) kill -9 "$p" ;; esac
    done
    sleep 0.5
    mountpoint -q "$DISK" && umount "$DISK"
    [ -z "$PG_ROOT" ] || cp "$PG_ROOT/log" "$WORK/postgresql.log" 2>/dev/null || true
    pg_stop
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$RC" != 0 ]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# PostgreSQL's data directory on a tmpfs of its own, so that the pg-disk-full fault can fill
# it; WAL kept small so that the database, not old segments, takes the room.
PG_DATA_TMPFS=${PG_TMPFS_SIZE:-$((512 + SECONDS_TOTAL / 2))m} pg_start "${PG_PORT:-55492}" "max_wal_size = 96MB
min_wal_size = 32MB"
psql_do -d postgres -c 'CREATE DATABASE vouch'
mkdir -p "$DISK"
mount -t tmpfs -o "size=${TMPFS_SIZE:-256m},mode=0700" soak-sqlite "$DISK"

# The webhook serves HTTPS, as in a cluster: a throwaway CA and a certificate for 127.0.0.1
# signed by it (the driver verifies against the CA; the rotate-cert fault signs new ones with
# the same extensions, tls/server.ext).
TLS="$WORK/tls"
mkdir -p "$TLS"
cat >"$TLS/ca.ext" <<EXT
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EXT
cat >"$TLS/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=vouch soak CA" -extensions v3 -config <(printf '[req]\ndistinguished_name=dn\n[dn]\n[v3]\n'; cat "$TLS/ca.ext") \
    -keyout "$TLS/ca.key" -out "$TLS/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -days 2 \
    -set_serial "0x$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    -extfile "$TLS/server.ext" -out "$TLS/server.pem" 2>/dev/null

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PA=$(free_port) PB=$(free_port) PS=$(free_port) PW=$(free_port) PR=$(free_port) PH=$(free_port)
TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The consumers' token: the event streams, the changefeed, webhook state and /metrics of
# every repository need a scope whose pattern is `*`.
FEED_TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The replicas' PostgreSQL repositories are named after the registry they are mirrored into
# (the mirror pushes a repository to the registry its name says; there is no mapping).
MIRROR_PREFIX="127.0.0.1:$PR/soak"
REGISTRY=/usr/bin/docker-registry
[ -x "$REGISTRY" ] || { echo "no $REGISTRY: apt-get install docker-registry" >&2; exit 2; }
mkdir -p "$WORK/registry"
cat >"$WORK/registry.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PR
YML
# Webhook signing keys (ed25519 PKCS#8; the replicas share one, the SQLite server has its
# own) and the subscriptions' HMAC secret; the server refuses files others may read.
"$PY" "$HERE/driver.py" orgkey "$WORK/webhook-pg.pem" "$WORK/webhook-pg.pub.json"
"$PY" "$HERE/driver.py" orgkey "$WORK/webhook-s.pem" "$WORK/webhook-s.pub.json"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64)" >"$WORK/webhook.secret"
chmod 600 "$WORK/webhook-pg.pem" "$WORK/webhook-s.pem" "$WORK/webhook.secret"
tokens_toml() {
    cat <<TOML
[[auth.tokens]]
name = "soak"
sha256 = "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
scopes = ["soak.example/*:pull,push,delete", "$MIRROR_PREFIX/*:pull,push,delete"]

[[auth.tokens]]
name = "soak-feeds"
sha256 = "$(printf %s "$FEED_TOKEN" | sha256sum | cut -d' ' -f1)"
scopes = ["*:pull"]

[events]
keep_alive_seconds = 5
TOML
}
# $1: signing key, $2: subscription name and receiver path
webhooks_toml() {
    cat <<TOML

[webhooks]
signing_key_file = "$1"
allow_http = true
allow_private_addresses = true
backoff_initial_ms = 500
backoff_max_seconds = 4

[[webhooks.subscriptions]]
name = "soak-$2"
url = "http://127.0.0.1:$PH/hook/$2"
secret_file = "$WORK/webhook.secret"
TOML
}
{ tokens_toml; webhooks_toml "$WORK/webhook-s.pem" sqlite; } >"$WORK/server.toml"
{ tokens_toml; webhooks_toml "$WORK/webhook-pg.pem" pg; cat <<TOML

[mirror]
repositories = ["$MIRROR_PREFIX/**"]
backoff_initial_ms = 500
backoff_max_seconds = 5
TOML
} >"$WORK/replica.toml"
# The organisation root key: signs every admission repository's root; the webhook pins it.
"$PY" "$HERE/driver.py" orgkey "$WORK/org-root.pem" "$WORK/org-root.pub.json"
cat >"$WORK/pins.toml" <<TOML
[[pin]]
gun = "soak.example/adm/**"
root_keys = ["org-root.pub.json"]
threshold = 1
TOML
cat >"$WORK/policy.toml" <<TOML
mode = "enforce"
refresh_interval_secs = 2
deadline_ms = 5000
trust_pins = "pins.toml"

[[rule]]
pattern = "soak.example/adm/**"
action = "verify"
server = "http://127.0.0.1:$PB"
TOML

SERVER="$BIN/vouch-server"
DB="$PG_URL/vouch?sslmode=disable"
"$PY" - "$WORK/config.json" <<PY
import json, sys
work = "$WORK"
server = ["$SERVER", "--config", f"{work}/server.toml"]
replica = lambda n, port: ["$SERVER", "--config", f"{work}/replica.toml", "--listen", f"127.0.0.1:{port}", "--data-dir", f"{work}/{n}-data",
                                    "--database-url", "$DB", "--kek-file", f"{work}/kek"]
env = {"VOUCH_LOG": "warn"}
cfg = {
    "duration": $SECONDS_TOTAL,
    "warmup": min(60, $SECONDS_TOTAL // 6),
    "workers": ${WORKERS:-4},
    "think_ms": ${THINK_MS:-10},
    "faults_per_kind": ${FAULTS_PER_KIND:-3},
    "pause": 5, "hold": 12, "quiet": 8, "cert_reload_bound": 15,
    "max_repos": 400, "admission_repos": 4,
    "token": "$TOKEN",
    "feed_token": "$FEED_TOKEN",
    "mirror_prefix": "$MIRROR_PREFIX",
    "vouch_cli": "$BIN/vouch",
    "receiver_port": $PH,
    "webhook_secret_file": f"{work}/webhook.secret",
    "webhook_keys": {"pg": f"{work}/webhook-pg.pem", "sqlite": f"{work}/webhook-s.pem"},
    "org_key_pem": f"{work}/org-root.pem",
    "tmpfs": "$DISK",
    "cache_dir": f"{work}/admission-cache",
    "pg_pidfile": "$PG_ROOT/data/postmaster.pid",
    "pg_disk": "$PG_ROOT/data",
    "pg_log": "$PG_ROOT/log",
    "pg_isready": ["$PG_BIN/pg_isready", "-q", "-h", "127.0.0.1", "-p", "$PG_PORT", "-U", "postgres",
                   "-d", "postgres", "-t", "2"],
    "tls": {n: f"{work}/tls/{f}" for n, f in [("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"),
                                              ("key", "server.key"), ("ext", "server.ext")]},
    "pg_cwd": "$PG_ROOT",
    "pg_ctl_log": f"{work}/pg_ctl.log",
    "pids_file": f"{work}/pids",
    "pg_stop": ["runuser", "-u", "postgres", "--", "$PG_BIN/pg_ctl", "-D", "$PG_ROOT/data", "-m", "fast", "-w", "stop"],
    "pg_start": ["runuser", "-u", "postgres", "--", "$PG_BIN/pg_ctl", "-D", "$PG_ROOT/data", "-l", "$PG_ROOT/log", "-w", "start"],
    "procs": {
        "r": {"argv": ["$REGISTRY", "serve", f"{work}/registry.yml"], "env": {}, "log": f"{work}/r.log",
              "url": "http://127.0.0.1:$PR", "health": "/v2/"},
        "a": {"argv": replica("a", $PA), "env": env, "log": f"{work}/a.log", "url": "http://127.0.0.1:$PA", "health": "/v2/"},
        "b": {"argv": replica("b", $PB), "env": env, "log": f"{work}/b.log", "url": "http://127.0.0.1:$PB", "health": "/v2/"},
        "s": {"argv": server + ["--listen", "127.0.0.1:$PS", "--data-dir", "$DISK/data"], "env": env,
              "log": f"{work}/s.log", "url": "http://127.0.0.1:$PS", "health": "/v2/"},
        "w": {"argv": ["$BIN/vouch-admission", "--policy", f"{work}/policy.toml",
                       "--listen", "127.0.0.1:$PW", "--tls-cert", f"{work}/tls/server.pem",
                       "--tls-key", f"{work}/tls/server.key", "--cache-dir", f"{work}/admission-cache",
                       "--log-format", "text"],
              "env": {"VOUCH_LOG": "info"}, "log": f"{work}/w.log", "url": "https://127.0.0.1:$PW", "health": "/healthz"},
    },
}
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
PY

echo "soak: $SECONDS_TOTAL s, scratch $WORK" >&2
set +e
"$PY" "$HERE/driver.py" "$WORK/config.json" 2> >(tee "$WORK/driver.log" >&2) | tee "$WORK/summary.md"
RC=${PIPESTATUS[0]}
set -e
echo "$(date -u '+%F %H:%M') UTC, $(nproc) cores; bench/soak/run.sh $SECONDS_TOTAL exited $RC" >&2
exit "$RC"
