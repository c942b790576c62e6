#!/usr/bin/env bash
# bench/faults/scen.sh — operator scenarios through the real programs.
#
#   bench/faults/scen.sh [BUILD_DIR]
#
# What an outside operator does with otaupd, otaupctl and otaup-term over
# loopback, each scenario with its own registry and daemon (SQLite), and
# what must hold at the end of each: the terminal's boot slot holds the
# newest release byte for byte, its report says that version and personal
# data intact, the registry holds no backup (or, for a terminal refused on
# purpose: a non-zero exit, the old image, personal data intact).
#
# Scenarios (each bounded in time):
#   chain      1.0 -> 2.0 -> 3.0 on one terminal, in place and A/B, user
#              data damaged by each new version (restored)
#   skip       1.0 straight to 3.0
#   publish    3.0 published while the terminal is cut off (power cut)
#              in the middle of 2.0: 2.0 is finished, then 3.0
#   killxfer   otaupd SIGKILLed in the middle of transfers (several
#              terminals), restarted on the same registry
#   killrest   otaupd SIGKILLed as soon as a restore begins: the backup
#              is still held, then deleted once the restore is done
#   cutkill    a terminal power cut (--cut-after, torn or not) followed by
#              a daemon SIGKILL and restart, then the terminal resumes
#   fleet      terminals of two models and five flash maps (4 KiB .. 256 B
#              sectors, in place and A/B) at once against --max-conns,
#              with garbage peers, a lossy link and daemon kills
#   params     the same id back with another flash map / model / an older
#              build time / an image that contradicts its version; no
#              downgrade
#
# Knobs: SCEN_ROUNDS (default 1: every scenario once; each round uses new
# cut points and kill times), SCEN_PORT (first port, default 17600),
# SCEN_KEEP=1 keeps the scratch directory. Exit code: failed checks.
# Run time: 132 checks in 111 s for SCEN_ROUNDS=2 on an ASan+UBSan build
# (two shared cores); about 45 s per round on a release build.
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$SRC/build/dev}" 2>/dev/null && pwd)" || { echo "scen.sh: no build directory ${1:-}" >&2; exit 2; }
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
T="$BUILD/examples/otaup-term/otaup-term"
for p in "$D" "$C" "$T"; do
    [ -x "$p" ] || { echo "scen.sh: $p missing: build first" >&2; exit 2; }
done
ROUNDS="${SCEN_ROUNDS:-1}"
PORT="${SCEN_PORT:-17600}"
WORK="$(mktemp -d /tmp/otaup-scen-XXXXXX)"
FAILS=0 CHECKS=0
DPID=""
T0=$(date +%s)

cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    [ "${SCEN_KEEP:-0}" = 1 ] && echo "scratch: $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

check() { # description, then a command that must succeed
    local what=$1; shift
    CHECKS=$((CHECKS + 1))
    if "$@" >/dev/null 2>&1; then return 0; fi
    FAILS=$((FAILS + 1))
    echo "  FAIL: $what ($SCEN)"
}

# images: v1 (the example firmware 1.0), v2 (2.0), v3 (2.0 edited, grown)
python3 - "$SRC/tests/vectors/firmware" "$WORK" <<'EOF'
import random, sys, shutil
src, out = sys.argv[1], sys.argv[2]
shutil.copy(src + "/fw-v1.bin", out + "/v1.bin")
shutil.copy(src + "/fw-v2.bin", out + "/v2.bin")
d = bytearray(open(src + "/fw-v2.bin", "rb").read())
r = random.Random(3)
for _ in range(40):
    o = r.randrange(len(d) - 64)
    for j in range(r.randrange(1, 60)):
        d[o + j] = r.randrange(256)
d += bytes(r.randrange(256) for _ in range(3000))
open(out + "/v3.bin", "wb").write(d)
EOF
V1=$WORK/v1.bin V2=$WORK/v2.bin V3=$WORK/v3.bin
S2=$(stat -c %s "$V2") S3=$(stat -c %s "$V3")
BT1=2026-01-01 BT2=2026-02-01 BT3=2026-03-01

new_scen() { # name
    SCEN=$1
    PORT=$((PORT + 1))
    DIR="$WORK/$1.$R"
    mkdir -p "$DIR"
    cd "$DIR" || exit 2
    export OTAUP_DB="$DIR/r.db"
    $C release add --model M1 --version 1.0 --build-time $BT1 "$V1" >/dev/null
}
listens() { local n; n=$(grep -c "event=listen" d.log 2>/dev/null); echo "${n:-0}"; }
dstart() {
    local n0
    n0=$(listens)
    $D --db "$OTAUP_DB" --listen 127.0.0.1:$PORT --auto-request "$@" >>d.log 2>&1 &
    DPID=$!
    for _ in $(seq 100); do
        [ "$(listens)" -gt "$n0" ] && return 0
        sleep 0.05
    done
    echo "  otaupd did not start ($SCEN)"
}
dstop() {
    [ -n "$DPID" ] || return 0
    kill -"${1:-TERM}" "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
mkterm() { # flash id model layout sector image version build
    $T --flash "$1" --init "$6" --id "$2" --model "$3" --version "$7" --build-time "$8" --layout "$4" \
       --sector-size "$5" --quiet
}
connect() { # flash [options]: bounded
    local f=$1; shift
    timeout 150 $T --flash "$f" --connect 127.0.0.1:$PORT --timeout 120 --reconnect 30 --report "$f.rep" --quiet "$@"
}
rep() { sed -n "s/^$2=//p" "$1.rep" 2>/dev/null; }
boot_image_is() { # flash image layout sector
    local f=$1 img=$2 n
    n=$(stat -c %s "$img")
    if [ "$3" = ab ]; then
        # A/B: slot 0 or slot 1 (the slot size is 256 KiB)
        cmp -s -n "$n" "$f" "$img" || cmp -s -n "$n" <(tail -c +$((262144 + 1)) "$f") "$img"
    else
        cmp -s -n "$n" "$f" "$img"
    fi
}
upgraded_to() { # flash version image layout
    [ "$(rep "$1" version)" = "$2" ] && [ "$(rep "$1" user_intact)" = 1 ] && boot_image_is "$1" "$3" "$4"
}
no_backups() { $C backups | grep -q "^0 backups held"; }
no_sanitizer() { ! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" d.log; }

for R in $(seq "$ROUNDS"); do
    echo "round $R"
    # ---- chain, skip ----------------------------------------------------------
    for L in inplace ab; do
        new_scen chain-$L
        dstart
        mkterm t.flash C1 M1 $L 4096 "$V1" 1.0 $BT1
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        connect t.flash --damage-user-data
        check "1.0 -> 2.0" upgraded_to t.flash 2.0 "$V2" $L
        $C release add --model M1 --version 3.0 --build-time $BT3 "$V3" >/dev/null
        connect t.flash --damage-user-data
        check "2.0 -> 3.0" upgraded_to t.flash 3.0 "$V3" $L
        connect t.flash
        check "3.0 up to date" upgraded_to t.flash 3.0 "$V3" $L
        check "no backup" no_backups
        dstop
        check "clean log" no_sanitizer
        echo "  chain $L: done"

        new_scen skip-$L
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        $C release add --model M1 --version 3.0 --build-time $BT3 "$V3" >/dev/null
        dstart
        mkterm t.flash S1 M1 $L 4096 "$V1" 1.0 $BT1
        connect t.flash
        check "1.0 -> 3.0" upgraded_to t.flash 3.0 "$V3" $L
        check "no backup" no_backups
        dstop
        echo "  skip $L: done"
    done
    # ---- publish mid-upgrade -------------------------------------------------------
    for L in inplace ab; do
        for cut in $((3 + R * 5)) $((12 + R * 7)); do
            new_scen publish-$L-$cut
            dstart
            mkterm t.flash P1 M1 $L 4096 "$V1" 1.0 $BT1
            $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
            connect t.flash --cut-after $cut
            rc=$?
            $C release add --model M1 --version 3.0 --build-time $BT3 "$V3" >/dev/null
            if [ $rc = 3 ]; then
                connect t.flash
                check "2.0 finished first (cut $cut)" upgraded_to t.flash 2.0 "$V2" $L
            else
                # fewer flash writes than $cut: 2.0 was done before 3.0 came
                check "2.0 (no cut: $cut writes or more)" upgraded_to t.flash 2.0 "$V2" $L
            fi
            connect t.flash
            check "then 3.0 (cut $cut)" upgraded_to t.flash 3.0 "$V3" $L
            check "no backup" no_backups
            dstop
        done
        echo "  publish $L: done"
    done
    # ---- daemon killed mid-transfer --------------------------------------------------
    new_scen killxfer
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    dstart
    pids=()
    for i in 1 2 3 4; do
        L=inplace; [ $((i % 2)) = 0 ] && L=ab
        mkterm t$i.flash K$i M1 $L 4096 "$V1" 1.0 $BT1
        connect t$i.flash --frame 128 --rtt 60 --damage-user-data &
        pids+=($!)
    done
    for k in 1 2 3; do
        sleep "0.$((3 + (R + k) % 6))"
        dstop KILL
        dstart
    done
    wait "${pids[@]}"
    for i in 1 2 3 4; do
        L=inplace; [ $((i % 2)) = 0 ] && L=ab
        check "K$i upgraded after daemon kills" upgraded_to t$i.flash 2.0 "$V2" $L
    done
    check "no backup" no_backups
    dstop
    echo "  killxfer: $(grep -c "event=resume" d.log) resumes"
    # ---- daemon killed as a restore begins ----------------------------------------
    for L in inplace ab; do
        new_scen killrest-$L
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        dstart
        mkterm t.flash Q1 M1 $L 4096 "$V1" 1.0 $BT1
        connect t.flash --frame 256 --rtt 150 --damage-user-data &
        tp=$!
        for _ in $(seq 3000); do grep -q "event=restore" d.log && break; sleep 0.02; done
        dstop KILL
        check "backup held while the restore is unfinished" bash -c "$C backups | grep -q 'of terminal Q1'"
        dstart
        wait $tp
        check "restored and upgraded" upgraded_to t.flash 2.0 "$V2" $L
        check "backup deleted after the restore" no_backups
        check "audit: restore before deletion" bash -c "$C audit --terminal Q1 | grep -E 'restored|backup-deleted' |
            head -1 | grep -q restored"
        dstop
    done
    echo "  killrest: done"
    # ---- power cut, then the daemon killed --------------------------------------------
    for L in inplace ab; do
        for torn in "" --torn; do
            cut=$((5 + (R * 13) % 40))
            new_scen cutkill-$L$torn
            $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
            dstart
            mkterm t.flash X1 M1 $L 1024 "$V1" 1.0 $BT1
            connect t.flash --cut-after $cut $torn --damage-user-data
            dstop KILL
            dstart
            connect t.flash
            check "cut $cut$torn, daemon killed, resumed" upgraded_to t.flash 2.0 "$V2" $L
            check "no backup" no_backups
            dstop
        done
    done
    echo "  cutkill: done"
    # ---- fleet -----------------------------------------------------------------------------
    new_scen fleet
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    $C release add --model M2 --version 1.0 --build-time $BT1 "$V2" >/dev/null
    $C release add --model M2 --version 2.0 --build-time $BT2 "$V3" >/dev/null
    dstart --max-conns 12
    specs=("M1 inplace 4096" "M1 ab 1024" "M2 inplace 512" "M2 ab 4096" "M1 inplace 2048" "M2 ab 256"
           "M1 ab 512" "M2 inplace 256")
    pids=()
    i=0
    for s in "${specs[@]}"; do
        set -- $s
        i=$((i + 1))
        img=$V1; [ "$1" = M2 ] && img=$V2
        mkterm f$i.flash F$i "$1" "$2" "$3" "$img" 1.0 $BT1
        connect f$i.flash --rtt 40 --drop 2 --damage-user-data &
        pids+=($!)
    done
    for k in 1 2 3 4 5; do
        (head -c 3000 /dev/urandom >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null
    done
    sleep 1
    dstop KILL
    dstart --max-conns 12
    wait "${pids[@]}"
    i=0
    for s in "${specs[@]}"; do
        set -- $s
        i=$((i + 1))
        img=$V2; [ "$1" = M2 ] && img=$V3
        check "F$i ($s) upgraded" upgraded_to f$i.flash 2.0 "$img" "$2"
    done
    check "no backup" no_backups
    check "garbage peers closed with their cause" bash -c "! grep -q 'reason=\"write failed\"' d.log"
    dstop
    check "clean log" no_sanitizer
    echo "  fleet: done"
    # ---- changed parameters ------------------------------------------------------------
    new_scen params
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    $C release add --model M2 --version 1.0 --build-time $BT1 "$V1" >/dev/null
    dstart
    mkterm t.flash P1 M1 inplace 4096 "$V1" 1.0 $BT1
    connect t.flash --cut-after 8
    rm -f t.flash t.flash.*
    mkterm t.flash P1 M1 ab 1024 "$V1" 1.0 $BT1
    connect t.flash
    check "new flash map under the same id: upgraded" upgraded_to t.flash 2.0 "$V2" ab
    rm -f t.flash t.flash.*
    mkterm t.flash P1 M2 inplace 4096 "$V1" 1.0 $BT1
    connect t.flash --reconnect 0
    check "another model under a registered id: refused" test "$(rep t.flash result)" != 0
    check "  ... old image kept" upgraded_to t.flash 1.0 "$V1" inplace
    rm -f t.flash t.flash.*
    mkterm t.flash P2 M1 inplace 4096 "$V1" 1.0 1000
    connect t.flash
    check "an older build time than the release's: upgraded" upgraded_to t.flash 2.0 "$V2" inplace
    rm -f t.flash t.flash.*
    mkterm t.flash P3 M1 inplace 4096 "$V3" 2.0 $BT2
    connect t.flash
    check "an image that contradicts its version: checked and given 2.0" upgraded_to t.flash 2.0 "$V2" inplace
    rm -f t.flash t.flash.*
    $C release add --model M1 --version 1.5 --build-time 2026-01-15 "$V3" >/dev/null
    mkterm t.flash P4 M1 inplace 4096 "$V2" 2.0 $BT2
    connect t.flash
    check "no downgrade to 1.5" upgraded_to t.flash 2.0 "$V2" inplace
    check "no backup" no_backups
    dstop
    check "clean log" no_sanitizer
    echo "  params: done"
done
echo "scen.sh: $CHECKS checks, $FAILS failed, $(( $(date +%s) - T0 )) s"
exit $FAILS
