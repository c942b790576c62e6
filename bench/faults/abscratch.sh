#!/usr/bin/env bash
# bench/faults/abscratch.sh — A/B through a scratch area, cut at every flash
# operation, through the otaup CLI.
#
#   bench/faults/abscratch.sh [OTAUP [PAIRDIR ...]]
#
# An A/B delta whose target sectors are larger than its staging buffer is
# written by several steps per sector; a power cut in a later step is
# recovered by rebuilding the sector through the scratch area
# (docs/delta-format.md, "Minimal flash work"). For each pair (a directory
# holding `old` and `new`; without one, a generated pair of about 60 KiB
# with inserts, moves and changed bytes) this plans
#
#   otaup delta old new --mode ab --sector-size SECTOR --staging STAGING
#         --target (after OLD) --scratch (after NEW) --scratch-size SECTOR
#
# fills the target slot with random bytes (a slot that held something
# else), applies it once without faults, then for every STRIDE-th flash
# operation k, plain and torn: cut after k operations, in every third case
# cut again (torn) during the recovery, then resume to the end. Every end
# state: NEW at the target byte for byte, OLD untouched, no sidecar left;
# after every cut OLD untouched. Prints the runs, the failures and how many
# resumes rebuilt a sector through scratch (the path under test: a run
# that never rebuilds proves nothing, and the script fails then).
#
# Knobs: SECTOR (16384), STAGING (4096), STRIDE (1), SEED (1: the
# generated pair and the second cuts), TIMEOUT (s per command, 60). OTAUP
# defaults to build/dev/examples/otaup/otaup. Exit 0 when every run ended
# right, 1 otherwise, 2 on a usage error.
# Measured (docs/testing.md): the generated pair, 331 operations, 662
# resumed runs, 214 through a rebuild, 0 failures.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
OTAUP="${1:-$SRC/build/dev/examples/otaup/otaup}"
[ $# -gt 0 ] && shift
SECTOR="${SECTOR:-16384}" STAGING="${STAGING:-4096}" STRIDE="${STRIDE:-1}" SEED="${SEED:-1}"
TIMEOUT="${TIMEOUT:-60}"
[ -x "$OTAUP" ] || { echo "abscratch.sh: no otaup executable at $OTAUP" >&2; exit 2; }
W="$(mktemp -d /tmp/otaup-abscratch.XXXXXX)"
trap 'rm -rf "$W"' EXIT
RANDOM=$SEED
PAIRS=("$@")
if [ ${#PAIRS[@]} -eq 0 ]; then
    mkdir -p "$W/gen"
    python3 - "$W/gen" "$SEED" <<'EOF' || { echo "abscratch.sh: python3 needed to generate a pair" >&2; exit 2; }
import random, sys
d, seed = sys.argv[1], int(sys.argv[2])
r = random.Random(seed)
old = bytearray(r.getrandbits(8) for _ in range(60000))
new = bytearray(old)
for _ in range(6):  # inserts, moves, changed bytes
    p = r.randrange(len(new))
    k = r.choice((0, 1, 2))
    if k == 0:
        new[p:p] = bytes(r.getrandbits(8) for _ in range(r.randrange(1, 3000)))
    elif k == 1:
        q, n = r.randrange(len(new)), r.randrange(1, 4000)
        new[p:p] = new[q:q + n]
    else:
        for i in range(p, min(p + 500, len(new)), 7):
            new[i] ^= 0x5A
open(d + "/old", "wb").write(old)
open(d + "/new", "wb").write(new)
EOF
    PAIRS=("$W/gen")
fi
runs=0 fails=0 rebuilt=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
for P in "${PAIRS[@]}"; do
    olen=$(stat -c %s "$P/old") nlen=$(stat -c %s "$P/new")
    osec=$(((olen + SECTOR - 1) / SECTOR)) nsec=$(((nlen + SECTOR - 1) / SECTOR))
    T=$((osec * SECTOR)) S=$(((osec + nsec) * SECTOR))
    D="$W/p.delta" F="$W/F"
    if ! timeout "$TIMEOUT" "$OTAUP" delta "$P/old" "$P/new" -o "$D" -q --mode ab --sector-size "$SECTOR" \
        --staging "$STAGING" --target "$T" --scratch "$S" --scratch-size "$SECTOR"; then
        fail "$P: otaup delta refused"
        continue
    fi
    mk() {
        rm -f "$F" "$F.otaup-state"
        { cat "$P/old"; head -c $((T - olen)) /dev/zero | tr '\0' '\377'; head -c $((nsec * SECTOR)) /dev/urandom; } >"$F"
    }
    old_ok() { cmp -s <(head -c "$olen" "$F") "$P/old"; }
    end_ok() {
        cmp -s <(tail -c +$((T + 1)) "$F" | head -c "$nlen") "$P/new" && old_ok && [ ! -e "$F.otaup-state" ]
    }
    mk
    timeout "$TIMEOUT" "$OTAUP" apply --flash "$F" "$D" --stats >"$W/clean.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! end_ok; then
        fail "$P: the run without faults (exit $rc)"
        continue
    fi
    ops=$(sed -n 's/^flash operations: \([0-9]*\).*/\1/p' "$W/clean.out")
    echo "$P: $(wc -c <"$D") bytes of delta, $ops flash operations"
    for k in $(seq 1 "$STRIDE" "$ops"); do
        for torn in "" --torn; do
            mk
            repro="$OTAUP apply --flash F $D --cut-after $k $torn"
            timeout "$TIMEOUT" "$OTAUP" apply --flash "$F" "$D" --cut-after "$k" $torn >"$W/c.out" 2>&1
            rc=$?
            if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
                fail "$P: cut $k $torn: exit $rc: $(tail -1 "$W/c.out")"
                continue
            fi
            old_ok || fail "$P: OLD changed by: $repro"
            if [ $((k % 3)) -eq 0 ]; then
                k2=$((1 + RANDOM % 200))
                repro="$repro; ... --cut-after $k2 --torn"
                timeout "$TIMEOUT" "$OTAUP" apply --flash "$F" "$D" --cut-after "$k2" --torn >"$W/c2.out" 2>&1
            fi
            timeout "$TIMEOUT" "$OTAUP" apply --flash "$F" "$D" --stats >"$W/r.out" 2>&1
            rc=$?
            runs=$((runs + 1))
            if [ $rc -ne 0 ] || ! end_ok; then
                fail "$P: resume exit $rc or target != NEW after: $repro; $OTAUP apply --flash F $D"
            fi
            n=$(sed -n 's/.* \([0-9]*\) sector rebuilds.*/\1/p' "$W/r.out")
            [ "${n:-0}" -gt 0 ] && rebuilt=$((rebuilt + 1))
        done
    done
done
echo "abscratch: $runs resumed runs, $fails failures, $rebuilt resumes rebuilt a sector through scratch"
[ "$fails" -eq 0 ] && [ "$rebuilt" -gt 0 ]
