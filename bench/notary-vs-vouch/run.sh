#!/usr/bin/env bash
# Side-by-side read benchmark of notary-server and vouch-server on loopback.
#
# Publishes the same repository shapes to both servers (one GUN with 10 tags, one with 1,000),
# then measures GET timestamp.json and targets.json of each with `wrk -t2 -c32 -d15s`, sampling
# the CPU used by every other process during each phase and repeating a disturbed phase. Prints
# a Markdown table. See README.md beside this script.
#
# Usage: bench/notary-vs-vouch/run.sh            (from anywhere; needs root for apt-get once)
# Environment: DURATION (default 15s), MAX_OTHER_CPU (percent of one core that other processes
# may use during a phase before it is repeated, default 15), TRIES (default 3).
set -euo pipefail

DURATION=${DURATION:-15s}
MAX_OTHER_CPU=${MAX_OTHER_CPU:-15}
TRIES=${TRIES:-3}
NOTARY_PORT=14443
VOUCH_PORT=14444
# ROOT, WORK, install_tools, start_servers, ticks, proc_ticks, HZ
source "$(dirname "$0")/servers.sh"
install_tools

echo "building vouch-server (release)…" >&2
(cd "$ROOT" && cargo build --release --locked -q -p vouch-server --bin vouch-server \
    --example bench_publish --example loopback_ceiling)
PUBLISH_BIN="$ROOT/target/release/examples/bench_publish"
CEILING_BIN="$ROOT/target/release/examples/loopback_ceiling"

# --- servers -------------------------------------------------------------------------------
start_servers "$NOTARY_PORT" "$VOUCH_PORT"

# --- the same repositories on both ----------------------------------------------------------
export NOTARY_ROOT_PASSPHRASE=bench NOTARY_TARGETS_PASSPHRASE=bench NOTARY_SNAPSHOT_PASSPHRASE=bench
publish() { # GUN NTAGS
    local gun=$1 n=$2
    notary -c "$NOTARY_CLIENT_CONFIG" init "$gun" >/dev/null
    for i in $(seq 0 $((n - 1))); do
        local hex
        hex=$(printf 'manifest of %s:tag-%s' "$gun" "$i" | sha256sum | cut -d' ' -f1)
        notary -c "$NOTARY_CLIENT_CONFIG" addhash "$gun" "tag-$i" $((1000 + i)) --sha256 "$hex" >/dev/null
    done
    notary -c "$NOTARY_CLIENT_CONFIG" publish "$gun" >/dev/null
    "$PUBLISH_BIN" "$VOUCH_URL" "$gun" "$n" "$VOUCH_TOKEN_FILE" >/dev/null
}
echo "publishing 10 and 1,000 tags to both servers…" >&2
publish bench/app10 10
publish bench/app1000 1000

# --- measurement ----------------------------------------------------------------------------

to_ms() { # wrk latency (e.g. 812.00us, 1.23ms, 2.01s) -> milliseconds
    awk -v v="$1" 'BEGIN{
        if (v ~ /us$/) {sub(/us$/,"",v); printf "%.2f", v/1000}
        else if (v ~ /ms$/) {sub(/ms$/,"",v); printf "%.2f", v}
        else if (v ~ /s$/) {sub(/s$/,"",v); printf "%.2f", v*1000}
        else print v}'
}

measure() { # NAME PID URL -> "req/s p50 p99 other%"
    local name=$1 pid=$2 url=$3 try out t0 s0 e0 t1 s1 e1 wrk_pid w other
    curl -sf -o /dev/null "$url"
    for try in $(seq "$TRIES"); do
        t0=$(ticks); s0=$(proc_ticks "$pid")
        wrk -t2 -c32 -d"$DURATION" --latency "$url" >"$WORK/wrk.out" &
        wrk_pid=$!
        w=0
        while kill -0 "$wrk_pid" 2>/dev/null; do
            w=$(proc_ticks "$wrk_pid")
            sleep 0.5
        done
        wait "$wrk_pid"
        t1=$(ticks); s1=$(proc_ticks "$pid")
        # CPU of everything but the server and wrk, in percent of one core over the phase.
        other=$(awk -v a="$t0" -v b="$t1" -v s="$((s1 - s0))" -v w="$w" -v hz="$HZ" -v d="${DURATION%s}" \
            'BEGIN{o=(b-a)-s-w; if (o<0) o=0; printf "%.0f", 100*o/hz/d}')
        out=$(awk '/Requests\/sec/{r=$2} /^ +50%/{p50=$2} /^ +99%/{p99=$2} END{print r, p50, p99}' "$WORK/wrk.out")
        if [ "$other" -le "$MAX_OTHER_CPU" ] || [ "$try" -eq "$TRIES" ]; then
            set -- $out
            echo "$1 $(to_ms "$2") $(to_ms "$3") $other"
            return
        fi
        echo "  $name: other processes used ${other}% of a core, repeating" >&2
        sleep 5
    done
}

rss_mb() { awk '/VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"; }

# The ceiling: a bare hyper server (examples/loopback_ceiling.rs: same runtime and connection
# settings as vouch-server, no routing, auth, metrics or cache) answering with a body of the
# same size, measured the same way. What wrk and the loopback path leave for any server here.
CEILING_PORT=14457
ceiling() { # URL -> "req/s p50 p99 other%" of the bare server with a body as large as URL's
    local size pid out
    size=$(curl -sf "$1" | wc -c)
    "$CEILING_BIN" "127.0.0.1:$CEILING_PORT" "$size" >/dev/null 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$CEILING_PORT/"; do sleep 0.1; done
    out=$(measure ceiling "$pid" "http://127.0.0.1:$CEILING_PORT/")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$out"
}

printf '| repository | file | notary req/s | vouch req/s | ratio | notary p50 / p99 ms | vouch p50 / p99 ms | other CPU %% (n/v) | bare hyper req/s (vouch / bare) |\n'
printf '| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n'
for gun in bench/app10 bench/app1000; do
    for file in timestamp targets; do
        url="http://127.0.0.1:$VOUCH_PORT/v2/$gun/_trust/tuf/$file.json"
        n=$(measure notary "$NOTARY_PID" "http://127.0.0.1:$NOTARY_PORT/v2/$gun/_trust/tuf/$file.json")
        v=$(measure vouch "$VOUCH_PID" "$url")
        c=$(ceiling "$url")
        read -r nr n50 n99 no <<<"$n"
        read -r vr v50 v99 vo <<<"$v"
        read -r cr _ _ co <<<"$c"
        ratio=$(awk -v a="$vr" -v b="$nr" 'BEGIN{printf "%.1f×", a/b}')
        share=$(awk -v a="$vr" -v b="$cr" 'BEGIN{printf "%.0f%%", 100*a/b}')
        printf '| %s | %s.json | %.0f | %.0f | %s | %s / %s | %s / %s | %s / %s | %.0f (%s; other %s%%) |\n' \
            "${gun#bench/}" "$file" "$nr" "$vr" "$ratio" "$n50" "$n99" "$v50" "$v99" "$no" "$vo" \
            "$cr" "$share" "$co"
    done
done
echo
echo "peak RSS: notary-server $(rss_mb "$NOTARY_PID") MB, vouch-server $(rss_mb "$VOUCH_PID") MB"
