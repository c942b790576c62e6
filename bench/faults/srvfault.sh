#!/usr/bin/env bash
# bench/faults/srvfault.sh — server-side faults through the real programs
# (otaupd, otaupctl, otaup-term over loopback) that sys2.sh, sys3.sh and
# scen.sh do not place:
#
#   both     otaupd and otaup-term SIGKILLed at the same instant (a random
#            one of a slow session: backup, transfer, restore, commit), both
#            restarted, until the terminal is done (in place and A/B); after
#            every kill, a registry that holds no backup (not yet, or no more)
#            must mean personal data intact on the terminal
#   fleet    20 terminals at once (a third A/B, user data damaged by the new
#            software), FLEET_KILLS of them SIGKILLed at random instants and
#            otaupd SIGKILLed once and restarted; the unfinished ones run again
#   fsize    otaupd under a file-size limit (`ulimit -f`: the registry as
#            published plus 4..60 KiB), reached at a random phase: the daemon
#            serves on, its log says OTAUP_E_DB, the terminal is on 1.0 or
#            2.0 with its data; the limit lifted, the upgrade ends
#   immut    (root, a file system with chattr +i) the registry and its WAL
#            made immutable at a random phase (writes fail as on a registry
#            gone read-only); the user then stores new data on the terminal;
#            the flag lifted, the next connection must finish without
#            restoring the old backup over those data
#   twod     a second otaupd on the registry (by a symbolic link): exit 1,
#            the first one upgrades a terminal
#
# End state of every terminal: the boot slot holds 2.0 byte for byte, the
# personal data are those --init wrote (or, immut, the user's edit), the
# registry holds no backup, the daemon is alive; no otaupd log holds a
# sanitizer report (run it on build/asan). Each check prints FAIL
# with the seed to reproduce it; the exit code is the number of failures.
#
#   bench/faults/srvfault.sh [BUILD_DIR]
#   SRVF_ONLY=both SRVF_SEED=7 SRVF_ROUNDS=3 bench/faults/srvfault.sh build/asan
#
# Knobs: SRVF_ROUNDS (2), SRVF_SEED (the time), SRVF_ONLY (one scenario),
# SRVF_PORT (first port, 19300), FLEET_KILLS (5), SRVF_KEEP=1 keeps the
# scratch directory. About 2 minutes a round on a release build.
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$SRC/build/dev}" 2>/dev/null && pwd)" || { echo "srvfault.sh: no build directory" >&2; exit 2; }
D="$BUILD/examples/otaupd/otaupd" C="$BUILD/examples/otaupctl/otaupctl" T="$BUILD/examples/otaup-term/otaup-term"
for p in "$D" "$C" "$T"; do [ -x "$p" ] || { echo "srvfault.sh: $p missing: build first" >&2; exit 2; }; done
V1="$SRC/tests/vectors/firmware/fw-v1.bin" V2="$SRC/tests/vectors/firmware/fw-v2.bin"
N2=$(stat -c %s "$V2")
ROUNDS="${SRVF_ROUNDS:-2}" SEED="${SRVF_SEED:-$(date +%s)}" ONLY="${SRVF_ONLY:-}" PORT="${SRVF_PORT:-19300}"
KILLS="${FLEET_KILLS:-5}"
WORK="$(mktemp -d /tmp/otaup-srvf-XXXXXX)"
FAILS=0 CHECKS=0 DPID="" IMM=""
PIDS=()
RANDOM=$SEED
SLOW=(--frame 128 --window 2 --rtt 20)

cleanup() {
    local p
    for p in $DPID "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    for p in $IMM; do chattr -i "$p" 2>/dev/null; done
    if [ "${SRVF_KEEP:-0}" = 1 ]; then echo "scratch: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

check() { # what, command...
    local what=$1; shift
    CHECKS=$((CHECKS + 1))
    "$@" >/dev/null 2>&1 && return 0
    FAILS=$((FAILS + 1))
    echo "  FAIL: $SCEN: $what"
    echo "    reproduce: SRVF_SEED=$SEED SRVF_ONLY=$SCEN SRVF_ROUNDS=$R SRVF_KEEP=1 $0 $BUILD (dir $DIR)"
    return 1
}
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
new_scen() { # name [variant]
    SCEN=$1 PORT=$((PORT + 1)) DIR="$WORK/$1.$R${2:+.$2}"
    mkdir -p "$DIR" && cd "$DIR" || exit 2
    export OTAUP_DB="$DIR/r.db"
    $C release add --model M1 --version 1.0 --build-time 1000 "$V1" >/dev/null
}
dstart() { # [otaupd options]: started and listening, or a FAIL
    local n0 i
    n0=$(grep -c "event=listen" d.log 2>/dev/null)
    $D --db r.db --listen 127.0.0.1:$PORT --auto-request "$@" >>d.log 2>&1 &
    DPID=$!
    for i in $(seq 100); do
        [ "$(grep -c "event=listen" d.log 2>/dev/null)" -gt "${n0:-0}" ] && return 0
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.05
    done
    check "otaupd starts" false
}
dkill() { # signal
    [ -n "$DPID" ] || return 0
    kill -"$1" "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
alive() { [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; }
mkterm() { # flash id layout user-size
    $T --flash "$1" --init "$V1" --id "$2" --model M1 --version 1.0 --build-time 1000 --layout "$3" \
        --user-size "$4" --quiet && cp "$1" "$1.orig"
}
data_is() { # flash id reference size: the personal-data region (the flash map of
    # otaup-term: the region, then one 4 KiB updater sector at the end) equals reference's
    local o
    o=$(( $(stat -c %s "$1") - $4 - 4096 ))
    cmp -s -i "$o:$o" -n "$4" "$1" "$3"
}
boot_v2() { # flash layout
    cmp -s -n "$N2" "$1" "$V2" || { [ "$2" = ab ] && cmp -s -n "$N2" <(tail -c +$((262144 + 1)) "$1") "$V2"; }
}
boot_v1() { cmp -s -n "$(stat -c %s "$V1")" "$1" "$V1"; }
no_backups() { $C backups | grep -q "^0 backups held"; }
rnd() { echo $((RANDOM % $1)); }

for R in $(seq "$ROUNDS"); do
    echo "round $R (seed $SEED)"
    # ---- both: daemon and terminal killed together ----------------------------------------
    if want both; then
        for L in inplace ab; do
            new_scen both $L
            mkterm t.flash B1 $L 32768
            $C release add --model M1 --version 2.0 --build-time 2000 "$V2" >/dev/null
            kills=0 done=0
            for k in $(seq 12); do
                dstart
                $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 60 --reconnect 5 "${SLOW[@]}" \
                    --damage-user-data --quiet --report t.rep >>t.out 2>&1 &
                TP=$!
                PIDS=("$TP")
                d=$(( $(rnd 30) + 1 ))
                [ $k -gt 6 ] && d=$((d + 40)) # later rounds leave it time to finish
                for _ in $(seq $d); do kill -0 $TP 2>/dev/null || break; sleep 0.1; done
                if kill -0 $TP 2>/dev/null; then
                    kill -KILL $TP; dkill KILL; wait $TP 2>/dev/null
                    kills=$((kills + 1))
                    if no_backups; then
                        check "$L: no backup held while the data differ from it (kill $kills)" \
                            data_is t.flash B1 t.flash.orig 32768
                    fi
                else
                    wait $TP; rc=$?; dkill TERM
                    [ $rc = 0 ] && { done=1; break; }
                fi
            done
            PIDS=()
            if [ $done = 0 ]; then dstart; $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 60 --quiet >>t.out 2>&1; done=$?; dkill TERM; [ $done = 0 ] && done=1; fi
            check "$L: upgraded after $kills double kills" test $done = 1
            check "$L: boot slot is 2.0" boot_v2 t.flash $L
            check "$L: personal data intact" data_is t.flash B1 t.flash.orig 32768
            check "$L: no backup left" no_backups
            echo "  both: $L upgraded after $kills double kills"
        done
    fi
    # ---- fleet: 20 terminals, some killed, the daemon killed once --------------------------
    if want fleet; then
        new_scen fleet
        for i in $(seq 20); do L=inplace; [ $((i % 3)) = 0 ] && L=ab; mkterm t$i.flash F$i $L 16384; echo $L >t$i.layout; done
        $C release add --model M1 --version 2.0 --build-time 2000 "$V2" >/dev/null
        dstart --max-conns 64
        PIDS=()
        for i in $(seq 20); do
            $T --flash t$i.flash --connect 127.0.0.1:$PORT --timeout 150 --reconnect 100 "${SLOW[@]}" \
                --damage-user-data --quiet --report t$i.rep >>t$i.out 2>&1 &
            PIDS+=($!)
        done
        for _ in $(seq "$KILLS"); do sleep 0.$(( $(rnd 9) + 1 )); kill -KILL "${PIDS[$(rnd 20)]}" 2>/dev/null; done
        sleep 0.$(( $(rnd 9) + 1 )); dkill KILL; sleep 0.3; dstart --max-conns 64
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
        PIDS=()
        for i in $(seq 20); do
            grep -q "^version=2.0" t$i.rep 2>/dev/null ||
                $T --flash t$i.flash --connect 127.0.0.1:$PORT --timeout 60 --reconnect 5 --quiet --report t$i.rep >>t$i.out 2>&1
            L=$(cat t$i.layout)
            check "F$i ($L): boot slot is 2.0" boot_v2 t$i.flash $L
            check "F$i ($L): personal data intact" data_is t$i.flash F$i t$i.flash.orig 16384
        done
        check "no backup left" no_backups
        check "daemon alive" alive
        dkill TERM
        echo "  fleet: done"
    fi
    # ---- fsize: a file-size limit reached at a random phase --------------------------------
    if want fsize; then
        new_scen fsize
        mkterm t.flash Z1 inplace 32768
        $C release add --model M1 --version 2.0 --build-time 2000 "$V2" >/dev/null
        lim=$(( ($(stat -c %s r.db) + 4096 * ($(rnd 15) + 1)) / 1024 ))
        ( ulimit -f $lim; exec $D --db r.db --listen 127.0.0.1:$PORT --auto-request >>d.log 2>&1 ) &
        DPID=$!
        for _ in $(seq 100); do grep -q "event=listen" d.log 2>/dev/null && break; sleep 0.05; done
        $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 30 --reconnect 2 "${SLOW[@]}" --damage-user-data \
            --quiet >>t.out 2>&1
        rc=$?
        check "daemon alive at the limit of $lim KiB" alive
        if [ $rc != 0 ]; then
            check "the log says why (OTAUP_E_DB)" grep -q "OTAUP_E_DB" d.log
        fi
        dkill TERM
        dstart
        $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 60 --reconnect 5 --quiet >>t.out 2>&1
        check "upgraded once the limit is gone" boot_v2 t.flash inplace
        check "personal data intact" data_is t.flash Z1 t.flash.orig 32768
        check "no backup left" no_backups
        dkill TERM
        echo "  fsize: done (limit $lim KiB, first run exit $rc)"
    fi
    # ---- immut: the registry stops taking writes; the user edits data afterwards -----------
    if want immut; then
        new_scen immut
        if [ "$(id -u)" = 0 ] && touch probe && chattr +i probe 2>/dev/null; then
            chattr -i probe
            mkterm t.flash I1 inplace 32768
            $C release add --model M1 --version 2.0 --build-time 2000 "$V2" >/dev/null
            dstart
            $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 40 --reconnect 3 "${SLOW[@]}" \
                --damage-user-data --quiet >>t.out 2>&1 &
            TP=$!
            PIDS=("$TP")
            ph=("event=backup" "event=start" "event=restore" "event=restore")
            p=${ph[$(rnd 4)]}
            for _ in $(seq 300); do grep -q "$p" d.log && break; sleep 0.1; done
            sleep 0.$(rnd 10)
            IMM="$DIR/r.db $DIR/r.db-wal"
            chattr +i $IMM
            wait $TP
            PIDS=()
            chattr -i $IMM
            IMM=""
            check "daemon alive with an immutable registry" alive
            o=$(( $(stat -c %s t.flash) - 32768 - 4096 ))
            if boot_v2 t.flash inplace; then
                # the user stores something new on the upgraded terminal
                printf 'NEW CONTACT +1 555 0100' | dd of=t.flash bs=1 seek=$((o + 100)) conv=notrunc 2>/dev/null
            fi
            cp t.flash t.want
            $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 60 --reconnect 5 --quiet >>t.out 2>&1
            check "upgraded once writable" boot_v2 t.flash inplace
            if cmp -s -n "$N2" t.want "$V2"; then
                check "the user's new data kept" data_is t.flash I1 t.want 32768
            else
                check "personal data intact" data_is t.flash I1 t.flash.orig 32768
            fi
            check "no backup left" no_backups
            dkill TERM
            echo "  immut: done (at $p)"
        else
            echo "  immut: skipped (needs root and chattr +i)"
        fi
    fi
    # ---- twod: one otaupd per registry ------------------------------------------------------
    if want twod; then
        new_scen twod
        mkterm t.flash W1 inplace 8192
        $C release add --model M1 --version 2.0 --build-time 2000 "$V2" >/dev/null
        dstart
        ln -s r.db alias.db
        timeout 5 $D --db "$DIR/alias.db" --listen 127.0.0.1:$((PORT + 500)) >second.log 2>&1
        check "second otaupd refused (exit 1)" test $? = 1
        check "second otaupd says why" grep -q "served by another otaupd" second.log
        $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 60 --quiet >>t.out 2>&1
        check "the first one upgrades" boot_v2 t.flash inplace
        check "daemon alive" alive
        dkill TERM
        echo "  twod: done"
    fi
done
cd /
CHECKS=$((CHECKS + 1))
if grep -rl "AddressSanitizer\|runtime error\|LeakSanitizer" "$WORK" --include=d.log >/dev/null 2>&1; then
    FAILS=$((FAILS + 1))
    echo "  FAIL: a sanitizer report in an otaupd log: $(grep -rl "AddressSanitizer\|runtime error\|LeakSanitizer" "$WORK" --include=d.log | head -n 3)"
fi
echo "srvfault: $CHECKS checks, $FAILS failed (seed $SEED, rounds $ROUNDS)"
exit $FAILS
