#!/usr/bin/env bash
# vouch-server on PostgreSQL: publishes under concurrency and cached reads, against the same
# build on SQLite and (unless NOTARY=0) notary-server on the same PostgreSQL.
#
# Starts a throwaway PostgreSQL cluster (its defaults, fsync on, data on the disk next to the
# SQLite file), vouch-server twice (PostgreSQL, SQLite) and notary-server on PostgreSQL, then:
#  1. Publishes: each server gets PUBLISHERS x PER_PUBLISHER new repositories per round, one
#     signed publish each (root + targets with one tag; notary also sends its snapshot),
#     recorded through publish_load.py's proxy, then replayed from PUBLISHERS concurrent
#     connections. Rounds alternate the servers. Prints publishes/s, p50/p99 of the publish
#     request, and the CPU per publish of the server and of the PostgreSQL cluster.
#  2. Reads: `wrk -t2 -c32 -d$DURATION` on timestamp.json and targets.json of a 10-tag
#     repository, alternating PostgreSQL and SQLite, ROUNDS times.
# See README.md beside this script and ../RESULTS.md, "vouch-server on PostgreSQL".
#
# Usage: bench/notary-vs-vouch/postgres.sh        (as root or as a user who can run initdb)
# Environment: PUBLISHERS (32), PER_PUBLISHER (10), ROUNDS (3), DURATION (10s),
#   PG_PORT (55491), NOTARY (1), CARGO_TARGET_DIR (where the release build goes), PG_CONF
#   (lines added to postgresql.conf, for diagnosis: e.g. PG_CONF='synchronous_commit = off').
set -euo pipefail

PUBLISHERS=${PUBLISHERS:-32}
PER_PUBLISHER=${PER_PUBLISHER:-10}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
PG_PORT=${PG_PORT:-55491}
NOTARY=${NOTARY:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
# ROOT, WORK (removed on exit), PIDS (killed on exit), install_tools, proc_ticks, HZ
source "$HERE/servers.sh"
install_tools
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
LOAD="python3 $HERE/publish_load.py"

echo "building vouch-server (release)…" >&2
(cd "$ROOT" && cargo build --release --locked -q -p vouch-server --bin vouch-server \
    --example bench_publish)
SERVER_BIN="$TARGET/release/vouch-server"
PUBLISH_BIN="$TARGET/release/examples/bench_publish"

# --- PostgreSQL -----------------------------------------------------------------------------
# pg_start, pg_stop, psql_do, PG_URL, PG_ROOT (a temporary directory under /tmp, not tmpfs)
source "$HERE/pg.sh"
pg_cleanup() {
    pg_stop
    cleanup # servers.sh: kill PIDS, remove WORK
}
trap pg_cleanup EXIT
# Defaults otherwise (fsync, synchronous_commit, shared_buffers, max_connections = 100),
# unless PG_CONF says otherwise.
pg_start "$PG_PORT" "${PG_CONF:-}"
psql_do -d postgres -c 'CREATE DATABASE vouch' -c 'CREATE DATABASE notary'

# notary-server creates no tables. The ones its SQL store reads and writes (gorm models: an
# id, created/updated/deleted times, the file; the changefeed of timestamps), written here.
psql_do -d notary <<'SQL'
CREATE TABLE tuf_files (
    id serial PRIMARY KEY,
    created_at timestamp NOT NULL DEFAULT now(),
    updated_at timestamp NOT NULL DEFAULT now(),
    deleted_at timestamp NULL,
    gun varchar(255) NOT NULL,
    role varchar(255) NOT NULL,
    version integer NOT NULL,
    sha256 char(64),
    data bytea NOT NULL,
    namespace varchar(255) NOT NULL DEFAULT 'published',
    UNIQUE (gun, role, version, namespace)
);
CREATE INDEX tuf_files_sha256 ON tuf_files (sha256);
CREATE TABLE changefeed (
    id serial PRIMARY KEY,
    created_at timestamp NOT NULL DEFAULT now(),
    gun varchar(255) NOT NULL,
    version integer NOT NULL,
    sha256 char(64),
    category varchar(20) NOT NULL DEFAULT 'update',
    namespace varchar(255) NOT NULL DEFAULT 'published'
);
CREATE INDEX changefeed_gun ON changefeed (gun, namespace);
SQL

# --- servers --------------------------------------------------------------------------------
start_vouch() { # NAME [--database-url URL] -> sets URL_<NAME>, PID_<NAME>, TOKEN_<NAME>
    local name=$1 out line
    shift
    out="$WORK/$name.out"
    # Many new repositories a minute is the point of the publish phase.
    VOUCH_LOG=warn VOUCH_NEW_REPOSITORIES_PER_MINUTE=1000000 "$SERVER_BIN" \
        --listen 127.0.0.1:0 --data-dir "$WORK/$name-data" --kek-file "$WORK/$name.kek" "$@" \
        >"$out" 2>"$WORK/$name.log" &
    PIDS+=($!)
    printf -v "PID_$name" %s "$!"
    for _ in $(seq 100); do
        line=$(head -1 "$out" 2>/dev/null || true)
        [ -n "$line" ] && [ -s "$WORK/$name-data/admin.token" ] && break
        sleep 0.1
    done
    line=$(grep -oE '127\.0\.0\.1:[0-9]+' <<<"$line" | head -1)
    [ -n "$line" ] || { echo "vouch-server $name did not start:" >&2; cat "$WORK/$name.log" >&2; exit 1; }
    printf -v "URL_$name" %s "http://$line"
    printf -v "TOKEN_$name" %s "$WORK/$name-data/admin.token"
}
start_vouch pg --database-url "$PG_URL/vouch?sslmode=disable"
start_vouch sqlite
SERVERS=(pg sqlite)

NOTARY_PORT=14491
if [ "$NOTARY" = 1 ]; then
    cat >"$WORK/notary-server.json" <<JSON
{
  "server": {"http_addr": "127.0.0.1:$NOTARY_PORT"},
  "trust_service": {"type": "local", "hostname": "", "port": "", "key_algorithm": "ecdsa"},
  "logging": {"level": "error"},
  "storage": {"backend": "postgres", "db_url": "$PG_URL/notary?sslmode=disable"}
}
JSON
    notary-server -config "$WORK/notary-server.json" >"$WORK/notary-server.log" 2>&1 &
    PIDS+=($!)
    PID_notary=$!
    URL_notary="http://127.0.0.1:$NOTARY_PORT"
    for _ in $(seq 50); do curl -sf "$URL_notary/v2/" >/dev/null && break; sleep 0.2; done
    curl -sf "$URL_notary/v2/" >/dev/null ||
        { echo "notary-server did not start:" >&2; cat "$WORK/notary-server.log" >&2; exit 1; }
    SERVERS+=(notary)
fi

# --- 1. publishes ---------------------------------------------------------------------------
N=$((PUBLISHERS * PER_PUBLISHER))
export NOTARY_ROOT_PASSPHRASE=bench NOTARY_TARGETS_PASSPHRASE=bench NOTARY_SNAPSHOT_PASSPHRASE=bench
# One new repository through the recording proxy at $1 (vouch: bench_publish; notary: init,
# one addhash, publish — the client's own requests before the publish reach the server).
vouch_one() { "$PUBLISH_BIN" "$1" "$3" 1 "$2" >/dev/null; } # PROXY_URL TOKEN_FILE GUN
notary_one() { # PROXY_URL CONFIG GUN; a trust directory per repository (concurrent clients
    # sharing one read each other's half-written key files)
    local cfg=$2 gun=$3 hex dir="$WORK/notary-trust/$3"
    hex=$(printf 'manifest of %s:tag-0' "$gun" | sha256sum | cut -d' ' -f1)
    notary -c "$cfg" -d "$dir" init "$gun" >/dev/null
    notary -c "$cfg" -d "$dir" addhash "$gun" tag-0 1000 --sha256 "$hex" >/dev/null
    notary -c "$cfg" -d "$dir" publish "$gun" >/dev/null
}
export -f vouch_one notary_one
export PUBLISH_BIN WORK
record() { # SERVER ROUND: N signed publishes to new repositories, in $WORK/cap/SERVER/ROUND
    local s=$1 r=$2 dir="$WORK/cap/$1/$2" url_var="URL_$1" pid fn arg proxy_port t0=$SECONDS
    $LOAD capture 0 "${!url_var}" "$dir" >"$WORK/proxy-$s-$r.out" 2>"$WORK/proxy-$s-$r.log" &
    pid=$!
    PIDS+=("$pid")
    until [ -s "$WORK/proxy-$s-$r.out" ]; do
        kill -0 "$pid" 2>/dev/null || { cat "$WORK/proxy-$s-$r.log" >&2; exit 1; }
        sleep 0.05
    done
    proxy_port=$(cut -d' ' -f2 "$WORK/proxy-$s-$r.out")
    if [ "$s" = notary ]; then
        fn=notary_one arg="$WORK/notary-client-$r.json"
        echo "{\"trust_dir\": \"$WORK/notary-trust\", \"remote_server\": {\"url\": \"http://127.0.0.1:$proxy_port\"}}" >"$arg"
    else
        fn=vouch_one tv="TOKEN_$s" arg=${!tv}
    fi
    seq "$N" | xargs -P 4 -I{} bash -c "$fn http://127.0.0.1:$proxy_port $arg bench/pub-r$r-{}"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    [ "$(ls "$dir" | grep -c '\.json$')" -eq "$N" ] ||
        { echo "recorded $(ls "$dir" | grep -c '\.json$') of $N publishes for $s" >&2; exit 1; }
    echo "  round $r $s: recorded in $((SECONDS - t0)) s" >&2
}

echo "recording $N publishes per server and round…" >&2
for r in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do record "$s" "$r"; done
done

# CPU of the PostgreSQL cluster: the postmaster, its live children (backends, WAL writer,
# checkpointer …) and the children it has reaped (cutime + cstime), in ticks.
pg_ticks() {
    local pm c t
    pm=$(head -1 "$PG_ROOT/data/postmaster.pid")
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
    for c in $(cat "/proc/$pm/task/"*/children 2>/dev/null); do
        t=$((t + $(proc_ticks "$c")))
    done
    echo "$t"
}
declare -A PUB
echo "replaying, $PUBLISHERS concurrent publishers…" >&2
for r in $(seq "$ROUNDS"); do
    # Alternate which server goes first.
    order=("${SERVERS[@]}")
    [ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${SERVERS[@]}" | tac))
    for s in "${order[@]}"; do
        url_var="URL_$s" pid_var="PID_$s"
        c0=$(proc_ticks "${!pid_var}") p0=$(pg_ticks)
        out=$($LOAD replay "${!url_var}" "$WORK/cap/$s/$r" "$PUBLISHERS")
        c1=$(proc_ticks "${!pid_var}") p1=$(pg_ticks)
        PUB[$s,$r]="$out $(( (c1 - c0) * 1000000 / HZ )) $(( (p1 - p0) * 1000000 / HZ ))"
        # The last repository of the round is served as published.
        curl -sf -o /dev/null "${!url_var}/v2/bench/pub-r$r-$N/_trust/tuf/timestamp.json" ||
            { echo "$s does not serve bench/pub-r$r-$N after the replay" >&2; exit 1; }
        echo "  round $r $s: $out" >&2
    done
done

label() { case $1 in pg) echo "vouch, PostgreSQL" ;; sqlite) echo "vouch, SQLite" ;;
    notary) echo "notary, PostgreSQL" ;; esac; }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
echo "$(date -u '+%F %H:%M') UTC, $(nproc) cores, load average at the end of the publishes: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Publishes: $PUBLISHERS concurrent publishers, $N new repositories per server and round"
echo
echo "| round | server | publishes/s | p50 ms | p99 ms | failures | CPU ms/publish: server + PostgreSQL |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
for r in $(seq "$ROUNDS"); do
    for s in "${SERVERS[@]}"; do
        read -r json cpu_us pg_us <<<"${PUB[$s,$r]}"
        n=$(field "$json" publishes)
        cpu=$(awk -v c="$cpu_us" -v p="$pg_us" -v n="$n" \
            'BEGIN{if (n) printf "%.2f + %.2f", c/n/1000, p/n/1000}')
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$r" "$(label "$s")" \
            "$(field "$json" per_second)" "$(field "$json" p50_ms)" "$(field "$json" p99_ms)" \
            "$(field "$json" failures)" "$cpu"
    done
done

# --- 2. reads -------------------------------------------------------------------------------
for s in pg sqlite; do
    url_var="URL_$s" tv="TOKEN_$s"
    "$PUBLISH_BIN" "${!url_var}" bench/app10 10 "${!tv}" >/dev/null
done
to_ms() { # wrk latency (812.00us, 1.23ms, 2.01s) -> milliseconds
    awk -v v="$1" 'BEGIN{
        if (v ~ /us$/) {sub(/us$/,"",v); printf "%.2f", v/1000}
        else if (v ~ /ms$/) {sub(/ms$/,"",v); printf "%.2f", v}
        else if (v ~ /s$/) {sub(/s$/,"",v); printf "%.2f", v*1000}
        else print v}'
}
wrk_run() { # URL -> "req/s p99-ms"
    local r p
    curl -sf -o /dev/null "$1"
    read -r r p < <(wrk -t2 -c32 -d"$DURATION" --latency "$1" |
        awk '/Requests\/sec/{r=$2} /^ +99%/{p=$2} END{print r, p}')
    echo "$r $(to_ms "$p")"
}
echo
echo "Reads: wrk -t2 -c32 -d$DURATION, 10-tag repository"
echo
echo "| round | file | PostgreSQL req/s | SQLite req/s | PostgreSQL / SQLite | p99 ms, PostgreSQL / SQLite |"
echo "| --- | --- | ---: | ---: | ---: | --- |"
for r in $(seq "$ROUNDS"); do
    for f in timestamp targets; do
        declare -A R=()
        order=(pg sqlite)
        [ $((r % 2)) = 0 ] && order=(sqlite pg)
        for s in "${order[@]}"; do
            url_var="URL_$s"
            R[$s]=$(wrk_run "${!url_var}/v2/bench/app10/_trust/tuf/$f.json")
        done
        read -r pr pp <<<"${R[pg]}"
        read -r sr sp <<<"${R[sqlite]}"
        printf '| %s | %s.json | %.0f | %.0f | %s | %s / %s |\n' "$r" "$f" "$pr" "$sr" \
            "$(awk -v a="$pr" -v b="$sr" 'BEGIN{printf "%.0f %%", 100*a/b}')" "$pp" "$sp"
    done
done
