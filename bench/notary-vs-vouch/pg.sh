# A throwaway PostgreSQL cluster for the benchmarks (source it, do not run it); used by
# postgres.sh here and by ../soak/run.sh.
#
# pg_start PORT [CONF_LINES]: initdb in a new temporary directory under /tmp (not tmpfs: fsync
# must reach a disk), started with its defaults on 127.0.0.1:PORT plus CONF_LINES (added to
# postgresql.conf). Sets PG_BIN, PG_ROOT, PG_PORT and PG_URL (postgres://postgres@127.0.0.1:PORT).
# With PG_DATA_TMPFS=SIZE set (root only; e.g. 256m), the data directory is instead a tmpfs of
# that size of its own, mounted before initdb, so that a test can fill PostgreSQL's disk; fsync
# then reaches memory only. Unset (postgres.sh), nothing changes.
# pg_stop: stops it at once (immediate), unmounts that tmpfs and removes its directory; call it
# from your EXIT trap.
# as_pg CMD…: runs CMD as the postgres user when root (initdb refuses to run as root).
# psql_do ARGS…: psql on the cluster as postgres, stopping at the first error.
# pg_ctl_do ARGS…: pg_ctl on the cluster's data directory (e.g. pg_ctl_do -m fast stop).

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG_ROOT=
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_start() { # PORT [CONF_LINES]
    PG_PORT=$1
    PG_ROOT=$(mktemp -d /tmp/vouch-bench-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_ROOT"
    if [ -n "${PG_DATA_TMPFS:-}" ]; then
        mkdir "$PG_ROOT/data"
        mount -t tmpfs -o "size=$PG_DATA_TMPFS,mode=0700,uid=$(id -u postgres),gid=$(id -g postgres)" \
            vouch-bench-pg "$PG_ROOT/data"
    fi
    (cd "$PG_ROOT" && as_pg "$PG_BIN/initdb" -D "$PG_ROOT/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C >/dev/null)
    cat >>"$PG_ROOT/data/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_ROOT'
${2:-}
CONF
    pg_ctl_do -l "$PG_ROOT/log" -w start >/dev/null
    PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
}
pg_ctl_do() { (cd "$PG_ROOT" && as_pg "$PG_BIN/pg_ctl" -D "$PG_ROOT/data" "$@"); }
pg_stop() {
    [ -n "$PG_ROOT" ] || return 0
    pg_ctl_do -m immediate stop >/dev/null 2>&1 || true
    local i
    for i in 1 2 3 4 5; do # a backend may take a moment to go after an immediate stop
        mountpoint -q "$PG_ROOT/data" || break
        umount "$PG_ROOT/data" 2>/dev/null || sleep 1
    done
    mountpoint -q "$PG_ROOT/data" && { echo "pg_stop: $PG_ROOT/data still mounted" >&2; return 1; }
    rm -rf "$PG_ROOT"
}
psql_do() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres "$@"; }
