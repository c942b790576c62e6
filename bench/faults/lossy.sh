#!/usr/bin/env bash
# bench/faults/lossy.sh — how long a whole upgrade takes over a very lossy
# link, through the real programs (otaupd, otaupctl, otaup-term) on
# loopback. For each seed: a fresh registry with the firmware pair of
# tests/vectors/firmware (1.0 and 2.0), an in-place terminal whose user
# data the upgrade damages (so the restore runs), and otaup-term with
# --drop 30 --corrupt 15 (about 40 % of frames lost each way) and
# --reconnect 10 --timeout 240. Prints one line per seed (exit code, wall
# seconds, reconnections, final version), the session's phases from the
# daemon's log (backup; transfer to end: restore, region hashes, commit;
# request to end), and the median of the wall seconds.
#
#   bench/faults/lossy.sh BUILD [SEEDS...]      (default seeds: 1 2 3 8)
#   LOSS="--drop 10 --corrupt 5" bench/faults/lossy.sh build/dev 1 2
#   DAEMON="--rto-max 3000" bench/faults/lossy.sh build/dev   (otaupd's own flags)
#
# Compare two builds (two trees) in the same run to quote a ratio; the
# times are wall-clock and depend on the machine's load.
set -u
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
B=${1:?usage: lossy.sh BUILD [SEEDS...]}
shift
SEEDS=${*:-"1 2 3 8"}
LOSS=${LOSS:-"--drop 30 --corrupt 15"}
DAEMON=${DAEMON:-}
D=$B/examples/otaupd/otaupd C=$B/examples/otaupctl/otaupctl T=$B/examples/otaup-term/otaup-term
for x in "$D" "$C" "$T"; do [ -x "$x" ] || { echo "lossy.sh: $x not built" >&2; exit 2; }; done
OLD=$SRC/tests/vectors/firmware/fw-v1.bin NEW=$SRC/tests/vectors/firmware/fw-v2.bin
WORK=$(mktemp -d /tmp/otaup-lossy-XXXXXX)
times=()
for seed in $SEEDS; do
    W=$WORK/s$seed
    mkdir -p "$W"
    export OTAUP_DB=$W/reg.db
    "$C" release add --model M --version 1.0 --build-time 1000 "$OLD" >/dev/null || exit 1
    port=$((20000 + RANDOM % 20000))
    "$D" --db "$W/reg.db" --listen "127.0.0.1:$port" --auto-request $DAEMON >"$W/d.log" 2>&1 &
    dp=$!
    for _ in $(seq 100); do grep -q "event=listen" "$W/d.log" 2>/dev/null && break; sleep 0.05; done
    "$C" release add --model M --version 2.0 --build-time 2000 "$NEW" >/dev/null || exit 1
    "$T" --flash "$W/t.flash" --init "$OLD" --id t --model M --version 1.0 --build-time 1000 \
        --slot-size 131072 --quiet >"$W/init" 2>&1 || exit 1
    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    timeout 300 "$T" --flash "$W/t.flash" --connect "127.0.0.1:$port" --report "$W/t.report" --quiet \
        --timeout 240 $LOSS --damage-user-data --reconnect 10 --seed "$seed" >"$W/t.out" 2>&1
    rc=$?
    t1=$(date +%s%N)
    kill "$dp" 2>/dev/null
    wait "$dp" 2>/dev/null
    ms=$(( (t1 - t0) / 1000000 ))
    times+=("$ms")
    printf 'seed %-4s exit %-3s %6d.%03d s  reconnections %-2s version %s\n' "$seed" "$rc" $((ms / 1000)) \
        $((ms % 1000)) "$(grep -c "reconnecting" "$W/t.out")" "$(sed -n 's/^version=//p' "$W/t.report")"
    # the session's phases, from the daemon's first event= line of each (its clock)
    awk '/ terminal=t event=(request|backup|transfer|done) / {
            split($1, a, "T"); split(a[2], h, ":"); t = h[1] * 3600 + h[2] * 60 + h[3]
            e = $4; sub(/^event=/, "", e); if (!(e in at)) at[e] = t }
         function d(x, y) { return (x in at && y in at) ? sprintf("%5.1f s", at[y] - at[x]) : "    -  " }
         END { printf "           phases: backup %s  transfer to end %s  request to end %s\n",
                      d("request", "backup"), d("transfer", "done"), d("request", "done") }' "$W/d.log"
done
med=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "lossy.sh: $B, loss '$LOSS', daemon '$DAEMON', seeds $SEEDS: median $((med / 1000)).$((med % 1000 / 100)) s (work: $WORK)"
