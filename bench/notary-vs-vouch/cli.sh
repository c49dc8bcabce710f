#!/usr/bin/env bash
# Side-by-side benchmark of the vouch CLI and the notary client, each against its own server on
# loopback (servers started as in run.sh, by servers.sh).
#
# Measures the wall time of one process run, median of RUNS runs (default 7):
#   (a) signing one more tag: `vouch sign GUN:TAG --digest sha256:… --length N` (keys made with
#       the default scrypt settings, and with VOUCH_KDF=fast-insecure-for-tests) vs
#       `notary addhash GUN TAG N --sha256 HEX` + `notary publish GUN`; and key derivation alone
#       (`vouch key import` of a default and of a fast key file; PBKDF2/scrypt in hashlib);
#   (b) `vouch verify GUN:TAG --no-registry` vs `notary lookup GUN TAG`;
#   (c) signing the 1st, the MID-th (1,000th) and the BIG-th (10,000th) tag of one repository,
#       the earlier tags built in bulk (vouch: one `vouch sign` of all of them, resolved through
#       stub_registry.py; notary: `notary addhash` per tag, then one `notary publish`).
# During each group of runs it samples the CPU used by every process other than this script's
# children and the two servers; a group where that exceeds MAX_OTHER_CPU percent of one core is
# repeated (up to TRIES times) and the last figure is reported with its disturbance.
#
# Usage: bench/notary-vs-vouch/cli.sh        (from anywhere; needs root for apt-get once)
#   (d) signing the 1st and the BIG-th tag of a repository made with `vouch init --hashed-bins
#       BINS` (default 256), where a sign rewrites one bin instead of the whole targets role.
# Environment: RUNS (default 7), MID (1000), BIG (10000), MAX_OTHER_CPU (15), TRIES (2), BINS.
set -euo pipefail

RUNS=${RUNS:-7}
MID=${MID:-1000}
BIG=${BIG:-10000}
MAX_OTHER_CPU=${MAX_OTHER_CPU:-15}
TRIES=${TRIES:-2}
BINS=${BINS:-256}
NOTARY_PORT=14453
VOUCH_PORT=14454
REGISTRY_PORT=14455
# ROOT, WORK, install_tools, start_servers, ticks, proc_ticks, HZ
source "$(dirname "$0")/servers.sh"
HERE=$ROOT/bench/notary-vs-vouch
install_tools

echo "building vouch and vouch-server (release)…" >&2
(cd "$ROOT" && cargo build --release --locked -q -p vouch-cli -p vouch-server --bin vouch --bin vouch-server)
VOUCH_CLI="$ROOT/target/release/vouch"

start_servers "$NOTARY_PORT" "$VOUCH_PORT"
python3 "$HERE/stub_registry.py" "$REGISTRY_PORT" &
PIDS+=("$!")
REGISTRY=127.0.0.1:$REGISTRY_PORT

export NOTARY_ROOT_PASSPHRASE=bench NOTARY_TARGETS_PASSPHRASE=bench NOTARY_SNAPSHOT_PASSPHRASE=bench
export VOUCH_ROOT_PASSPHRASE=bench VOUCH_TARGETS_PASSPHRASE=bench
export VOUCH_SERVER=$VOUCH_URL VOUCH_TOKEN
VOUCH_TOKEN=$(cat "$VOUCH_TOKEN_FILE")
unset VOUCH_KDF
LOG=$WORK/commands.log
TD_DEFAULT=$WORK/vouch-trust-default # keys with the default scrypt settings (32 MiB)
TD_FAST=$WORK/vouch-trust-fast       # keys made with VOUCH_KDF=fast-insecure-for-tests

notary_() { notary -c "$NOTARY_CLIENT_CONFIG" "$@"; }
vouch_() { "$VOUCH_CLI" "$@"; }
hex_of() { printf 'manifest of %s:%s' "$1" "$2" | sha256sum | cut -d' ' -f1; } # GUN TAG
until_ready() { for _ in $(seq 50); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; return 1; }
until_ready "http://$REGISTRY/v2/"

# --- timing ---------------------------------------------------------------------------------
SEQ=0
declare -A MED RANGE OTHER CCPU SCPU
children_ticks() { # this shell's own and its reaped children's CPU
    awk '{print $14+$15+$16+$17}' "/proc/$$/stat"
}
# measure KEY FUNC [ARGS…]: runs `FUNC ARGS… N` RUNS times (N counts up across the whole script,
# so each run can sign a new tag) after one untimed warm-up run, and records the median and range
# in milliseconds, the CPU time per run of this script's children (the client) and of the servers
# (milliseconds, from 1/HZ-second ticks averaged over the runs), and the other processes' CPU in
# percent of one core.
measure() {
    local key=$1 try i a b t0 c0 s0 w0 t1 c1 s1 w1 sorted
    shift
    SEQ=$((SEQ + 1))
    "$@" "$SEQ" >>"$LOG" 2>&1
    for try in $(seq "$TRIES"); do
        local times=()
        t0=$(ticks); c0=$(children_ticks)
        s0=$(($(proc_ticks "$NOTARY_PID") + $(proc_ticks "$VOUCH_PID") + $(proc_ticks "${PIDS[2]}")))
        w0=${EPOCHREALTIME/./}
        for i in $(seq "$RUNS"); do
            SEQ=$((SEQ + 1))
            a=${EPOCHREALTIME/./}
            "$@" "$SEQ" >>"$LOG" 2>&1
            b=${EPOCHREALTIME/./}
            times+=("$((b - a))")
        done
        w1=${EPOCHREALTIME/./}
        t1=$(ticks); c1=$(children_ticks)
        s1=$(($(proc_ticks "$NOTARY_PID") + $(proc_ticks "$VOUCH_PID") + $(proc_ticks "${PIDS[2]}")))
        OTHER[$key]=$(awk -v t="$((t1 - t0))" -v c="$((c1 - c0))" -v s="$((s1 - s0))" -v hz="$HZ" \
            -v w="$((w1 - w0))" 'BEGIN{o=t-c-s; if (o<0) o=0; printf "%.0f", 100*o/hz/(w/1e6)}')
        CCPU[$key]=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$RUNS" 'BEGIN{printf "%.0f", 1000*c/hz/n}')
        SCPU[$key]=$(awk -v c="$((s1 - s0))" -v hz="$HZ" -v n="$RUNS" 'BEGIN{printf "%.0f", 1000*c/hz/n}')
        sorted=$(printf '%s\n' "${times[@]}" | sort -n)
        MED[$key]=$(awk '{v[NR]=$1} END{m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.1f", m/1000}' <<<"$sorted")
        RANGE[$key]=$(awk 'NR==1{lo=$1} {hi=$1} END{printf "%.1f–%.1f", lo/1000, hi/1000}' <<<"$sorted")
        echo "  $key: median ${MED[$key]} ms (${RANGE[$key]}), CPU per run: client ${CCPU[$key]} ms, servers ${SCPU[$key]} ms; other CPU ${OTHER[$key]}%" >&2
        [ "${OTHER[$key]}" -le "$MAX_OTHER_CPU" ] && return 0
        [ "$try" -lt "$TRIES" ] && { echo "  $key: disturbed, repeating" >&2; sleep 3; }
    done
    return 0
}

# --- the operations timed ----------------------------------------------------------------------
vouch_sign() { # TRUSTDIR GUN N: sign one more tag `more-N`
    local hex
    hex=$(hex_of "$2" "more-$3")
    vouch_ --trust-dir "$1" sign "$2:more-$3" --digest "sha256:$hex" --length $((2000 + $3))
}
notary_sign() { # GUN N: stage and publish one more tag `more-N`
    local hex
    hex=$(hex_of "$1" "more-$2")
    notary_ addhash "$1" "more-$2" $((2000 + $2)) --sha256 "$hex" && notary_ publish "$1"
}
vouch_verify() { vouch_ --trust-dir "$1" verify "$2:$3" --no-registry; } # TRUSTDIR GUN TAG _
notary_lookup() { notary_ lookup "$1" "$2"; }                               # GUN TAG _
vouch_unlock() { # PEMFILE N: `vouch key import` into a fresh trust directory (one decryption)
    mkdir -m 700 "$WORK/import-$2"
    vouch_ --trust-dir "$WORK/import-$2" key import "$1" --role targets
}
vouch_first() { vouch_ --trust-dir "$TD_FAST" sign "bench/first-$1:tag-0" --digest "sha256:$(hex_of "bench/first-$1" tag-0)" --length 1000; }
notary_first() { notary_addhash_publish "bench/first-$1" tag-0 1000; }
notary_addhash_publish() { notary_ addhash "$1" "$2" "$3" --sha256 "$(hex_of "$1" "$2")" && notary_ publish "$1"; }
vouch_nth() { # GUN N: sign tag-(ntags + k) where the repository already has ntags tags
    local gun=$1 tag="tag-$(($2 + NEXT_OFFSET))"
    vouch_ --trust-dir "$TD_FAST" sign "$REGISTRY/$gun:$tag" --digest "sha256:$(hex_of "$gun" "$tag")" --length 1000
}
notary_nth() { notary_addhash_publish "$1" "tag-$(($2 + NEXT_OFFSET))" 1000; }

# --- (a) sign one more tag, and key derivation ------------------------------------------------
echo "(a) one more tag…" >&2
vouch_ --trust-dir "$TD_DEFAULT" init bench/cli-default >>"$LOG"
VOUCH_KDF=fast-insecure-for-tests vouch_ --trust-dir "$TD_FAST" init bench/cli-fast >>"$LOG"
notary_ init -p bench/cli-notary >>"$LOG"
measure sign_vouch_default vouch_sign "$TD_DEFAULT" bench/cli-default
FAST0=$((SEQ + 1))
measure sign_vouch_fast vouch_sign "$TD_FAST" bench/cli-fast
NOTARY0=$((SEQ + 1))
measure sign_notary notary_sign bench/cli-notary

targets_key() { # TRUSTDIR -> key id of its targets key
    vouch_ --trust-dir "$1" --output json key list |
        python3 -c 'import json,sys; print([k["keyid"] for k in json.load(sys.stdin)["keys"] if k["role"]=="targets"][0])'
}
vouch_ --trust-dir "$TD_DEFAULT" key export "$(targets_key "$TD_DEFAULT")" -o "$WORK/default.pem" >>"$LOG"
vouch_ --trust-dir "$TD_FAST" key export "$(targets_key "$TD_FAST")" -o "$WORK/fast.pem" >>"$LOG"
measure unlock_default vouch_unlock "$WORK/default.pem"
measure unlock_fast vouch_unlock "$WORK/fast.pem"
# The key derivation functions alone, as the two key files ask for them: notary's PKCS#8 files
# use PBES2 with PBKDF2-HMAC-SHA1 and the iteration count shown by asn1parse; vouch's default
# is scrypt N=2^15, r=8, p=1.
NOTARY_KEY=$(grep -l 'role: targets' "$WORK"/notary-trust/private/*.key | head -1)
NOTARY_KDF=$(awk '!/^-----/ && !/:/ && NF' "$NOTARY_KEY" | base64 -d | openssl asn1parse -inform DER |
    awk '/:PBKDF2/{p=1} p && /INTEGER/{sub(/.*:/,""); print; exit}')
NOTARY_ITER=$((16#$NOTARY_KDF))
KDF_ALONE=$(python3 - "$NOTARY_ITER" <<'PY'
import hashlib, sys, time
def median_ms(f, n):
    t = []
    for _ in range(n):
        a = time.perf_counter(); f(); t.append((time.perf_counter() - a) * 1000)
    return sorted(t)[n // 2]
it = int(sys.argv[1])
pb = median_ms(lambda: hashlib.pbkdf2_hmac("sha1", b"bench", b"saltsalt", it, 32), 21)
sc = median_ms(lambda: hashlib.scrypt(b"bench", salt=b"saltsalt" * 2, n=2**15, r=8, p=1, maxmem=64 << 20, dklen=32), 7)
sf = median_ms(lambda: hashlib.scrypt(b"bench", salt=b"saltsalt" * 2, n=2**10, r=8, p=1, dklen=32), 21)
print(f"{pb:.2f} {sc:.1f} {sf:.2f}")
PY
)
read -r KDF_PBKDF2 KDF_SCRYPT KDF_SCRYPT_FAST <<<"$KDF_ALONE"

# --- (b) verify / lookup ----------------------------------------------------------------------
echo "(b) verify vs lookup…" >&2
measure verify_vouch vouch_verify "$TD_FAST" bench/cli-fast "more-$FAST0"
measure lookup_notary notary_lookup bench/cli-notary "more-$NOTARY0"

# --- (c) the 1st, MID-th and BIG-th tag of one repository --------------------------------------
# enough fresh repositories for the warm-up and every try
echo "(c) 1st tag: $((RUNS * TRIES + 1)) fresh repositories each…" >&2
for i in $(seq $((SEQ + 1)) $((SEQ + RUNS * TRIES + 1))); do
    VOUCH_KDF=fast-insecure-for-tests vouch_ --trust-dir "$TD_FAST" init "bench/first-$i" >>"$LOG"
    notary_ init -p "bench/first-$i" >>"$LOG"
done
FIRST0=$SEQ
measure first_vouch vouch_first
SEQ=$FIRST0 # notary's runs use the same repository numbers as vouch's
measure first_notary notary_first

bulk() { # NTAGS: repositories bench/tagsNTAGS on both servers with tag-0 … tag-(NTAGS-1)
    local n=$1 gun=bench/tags$1 a b
    VOUCH_KDF=fast-insecure-for-tests vouch_ --trust-dir "$TD_FAST" init "$REGISTRY/$gun" >>"$LOG"
    a=${EPOCHREALTIME/./}
    # one process, one publish: the stub registry gives each tag's digest and length
    seq 0 $((n - 1)) | sed "s|^|$REGISTRY/$gun:tag-|" | xargs -s 2000000 \
        "$VOUCH_CLI" --trust-dir "$TD_FAST" --output json sign >"$WORK/bulk-vouch-$n.json"
    b=${EPOCHREALTIME/./}
    echo "  vouch: $n tags built in $(((b - a) / 1000)) ms" >&2
    notary_ init -p "$gun" >>"$LOG"
    a=${EPOCHREALTIME/./}
    seq 0 $((n - 1)) | while read -r i; do
        echo "tag-$i $((1000 + i)) $(hex_of "$gun" "tag-$i")"
    done | xargs -P 2 -n 3 sh -c 'notary -c "$0" addhash "$1" "$2" "$3" --sha256 "$4" >/dev/null' \
        "$NOTARY_CLIENT_CONFIG" "$gun"
    notary_ publish "$gun" >>"$LOG"
    b=${EPOCHREALTIME/./}
    echo "  notary: $n tags built in $(((b - a) / 1000)) ms" >&2
    local nv nn
    nv=$(vouch_ --trust-dir "$TD_FAST" --output json list "$REGISTRY/$gun" |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["targets"]))')
    nn=$(notary_ list "$gun" | grep -c '^tag-')
    echo "  targets now: vouch $nv, notary $nn" >&2
    [ "$nv" -eq "$n" ] && [ "$nn" -eq "$n" ]
}
# n = MID-2: the untimed warm-up run signs the (MID-1)-th tag, the timed runs start at the MID-th
for n in $((MID - 2)) $((BIG - 2)); do
    echo "(c) building $n tags on both…" >&2
    bulk "$n"
    NEXT_OFFSET=$((n - SEQ - 1)) # warm-up signs tag-n, the timed runs tag-(n+1) onwards
    measure "tag${n}_vouch" vouch_nth "bench/tags$n"
    NEXT_OFFSET=$((n - SEQ - 1))
    measure "tag${n}_notary" notary_nth "bench/tags$n"
    measure "verify${n}_vouch" vouch_verify "$TD_FAST" "$REGISTRY/bench/tags$n" tag-5
    measure "lookup${n}_notary" notary_lookup "bench/tags$n" tag-5
done

# --- (d) the 1st and BIG-th tag of a hashed-bin repository (vouch init --hashed-bins BINS) ------
# notary has no equivalent; its rows above (one targets role) are the comparison.
echo "(d) hashed bins ($BINS): 1st tag, $((RUNS * TRIES + 1)) fresh repositories…" >&2
for i in $(seq $((SEQ + 1)) $((SEQ + RUNS * TRIES + 1))); do
    VOUCH_KDF=fast-insecure-for-tests vouch_ --trust-dir "$TD_FAST" init --hashed-bins "$BINS" "bench/binsfirst-$i" >>"$LOG"
done
vouch_first_bins() { vouch_ --trust-dir "$TD_FAST" sign "bench/binsfirst-$1:tag-0" --digest "sha256:$(hex_of "bench/binsfirst-$1" tag-0)" --length 1000; }
measure first_bins_vouch vouch_first_bins
n=$((BIG - 2)) gun=bench/bins$((BIG - 2))
echo "(d) building $n tags in $BINS bins…" >&2
VOUCH_KDF=fast-insecure-for-tests vouch_ --trust-dir "$TD_FAST" init --hashed-bins "$BINS" "$REGISTRY/$gun" >>"$LOG"
seq 0 $((n - 1)) | sed "s|^|$REGISTRY/$gun:tag-|" | xargs -s 2000000 \
    "$VOUCH_CLI" --trust-dir "$TD_FAST" --output json sign >"$WORK/bulk-bins-$n.json"
NEXT_OFFSET=$((n - SEQ - 1))
measure "bins${n}_vouch" vouch_nth "$gun"
measure "binsverify${n}_vouch" vouch_verify "$TD_FAST" "$REGISTRY/$gun" tag-5

# --- report -----------------------------------------------------------------------------------
row() { # LABEL VOUCHKEY NOTARYKEY
    printf '| %s | %s (%s) | %s (%s) | %s | %s + %s / %s + %s | %s / %s |\n' "$1" "${MED[$2]}" "${RANGE[$2]}" \
        "${MED[$3]}" "${RANGE[$3]}" \
        "$(awk -v a="${MED[$2]}" -v b="${MED[$3]}" 'BEGIN{printf "%.2f×", a/b}')" \
        "${CCPU[$2]}" "${SCPU[$2]}" "${CCPU[$3]}" "${SCPU[$3]}" "${OTHER[$2]}" "${OTHER[$3]}"
}
M=$((MID - 2)) B=$((BIG - 2))
echo
echo "Wall time of one process run in ms: median of $RUNS (range); ratio = vouch / notary."
echo
printf '| operation | vouch ms | notary ms | ratio | CPU ms per run, client + server (v / n) | other CPU %% (v / n) |\n| --- | --- | --- | --- | --- | --- |\n'
row "sign one more tag (vouch default KDF)" sign_vouch_default sign_notary
row "sign one more tag (vouch fast KDF)" sign_vouch_fast sign_notary
row "verify --no-registry / lookup (few tags)" verify_vouch lookup_notary
row "sign the 1st tag" first_vouch first_notary
row "sign the ${MID}th tag (and the next $((RUNS - 1)))" "tag${M}_vouch" "tag${M}_notary"
row "sign the ${BIG}th tag (and the next $((RUNS - 1)))" "tag${B}_vouch" "tag${B}_notary"
row "verify / lookup (about $MID tags)" "verify${M}_vouch" "lookup${M}_notary"
row "verify / lookup (about $BIG tags)" "verify${B}_vouch" "lookup${B}_notary"
row "sign the 1st tag ($BINS hashed bins; notary: one targets role)" first_bins_vouch first_notary
row "sign the ${BIG}th tag ($BINS hashed bins; notary: one targets role)" "bins${B}_vouch" "tag${B}_notary"
row "verify / lookup (about $BIG tags, $BINS hashed bins)" "binsverify${B}_vouch" "lookup${B}_notary"
echo
echo "Growth with $BINS hashed bins, ${BIG}th tag / 1st tag: vouch $(awk -v a="${MED[bins${B}_vouch]}" -v b="${MED[first_bins_vouch]}" 'BEGIN{printf "%.2f×", a/b}')"
echo "Growth, ${BIG}th tag / 1st tag: vouch $(awk -v a="${MED[tag${B}_vouch]}" -v b="${MED[first_vouch]}" 'BEGIN{printf "%.2f×", a/b}'), notary $(awk -v a="${MED[tag${B}_notary]}" -v b="${MED[first_notary]}" 'BEGIN{printf "%.2f×", a/b}')"
echo "Key derivation: vouch key import (one unlock) default ${MED[unlock_default]} ms (${RANGE[unlock_default]}, other ${OTHER[unlock_default]}%), fast ${MED[unlock_fast]} ms (${RANGE[unlock_fast]}, other ${OTHER[unlock_fast]}%)"
echo "KDF alone (python hashlib, median): scrypt N=2^15 r=8 p=1 (vouch default) ${KDF_SCRYPT} ms; scrypt N=2^10 (fast) ${KDF_SCRYPT_FAST} ms; PBKDF2-HMAC-SHA1 $NOTARY_ITER iterations (notary key files) ${KDF_PBKDF2} ms"
