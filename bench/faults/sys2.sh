#!/usr/bin/env bash
# bench/faults/sys2.sh — adversarial fault campaign on the whole system:
# otaupd (and its registry), otaupctl and otaup-term over loopback, with
# faults at random instants that bench/faults/system.sh and scen.sh do not
# place there.
#
#   bench/faults/sys2.sh [BUILD_DIR]
#
# Scenarios (each bounded in time; a slow link -- small frames, window 2,
# 20 ms round trip, a 32 KiB personal-data region damaged by the new
# software -- makes every phase last long enough to be hit):
#   killd    otaupd SIGKILLed at a random instant after a random phase began
#            (backup, start, transfer, restore, commit), restarted on the
#            same registry, once or twice; the terminal reconnects
#   killt    otaup-term SIGKILLed at a random instant (sometimes also with
#            --cut-after N [--torn] on a later run), restarted on the same
#            flash file until done
#   oper     operator actions during a session: a newer release published,
#            the release withdrawn (--force), the terminal's request taken
#            back by a second terminal of the same model; two terminals of
#            one model at once; the same id on two connections at once
#   disk     the registry on a small tmpfs filled up during the backup and
#            during the transfer (root only; skipped otherwise), then room
#            made: clear errors, the registry still opens, the upgrade ends
#   hostile  random bytes, truncated and corrupted frames, mute clients,
#            slowloris (a byte at a time), clients that never read, beside a
#            real terminal's upgrade that must finish
#
# Every end state is checked: the flash holds the release byte for byte in
# its boot slot, the personal-data region equals what --init wrote, the
# registry holds no backup, `otaupctl status` says the session is done and
# the terminal upgraded, and the daemon is still alive (no sanitizer report
# in its log). A failure prints the command that reproduces it
# (SYS2_SEED, SYS2_ONLY, SYS2_ROUNDS=1 and the round).
#
# Knobs: SYS2_ROUNDS (default 2), SYS2_SEED (default: the time), SYS2_ONLY
# (one scenario), SYS2_PORT (first port, default 18700), SYS2_KEEP=1 keeps
# the scratch directory. Exit code: the number of failed checks.
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$SRC/build/dev}" 2>/dev/null && pwd)" || { echo "sys2.sh: no build directory ${1:-}" >&2; exit 2; }
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
T="$BUILD/examples/otaup-term/otaup-term"
for p in "$D" "$C" "$T"; do
    [ -x "$p" ] || { echo "sys2.sh: $p missing: build first" >&2; exit 2; }
done
ROUNDS="${SYS2_ROUNDS:-2}"
SEED="${SYS2_SEED:-$(date +%s)}"
ONLY="${SYS2_ONLY:-}"
PORT="${SYS2_PORT:-18700}"
WORK="$(mktemp -d /tmp/otaup-sys2-XXXXXX)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
FAILS=0 CHECKS=0 DPID="" MNT=""
T0=$(date +%s)
RANDOM=$SEED

cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    local j
    for j in $(jobs -p); do kill -KILL "$j" 2>/dev/null; done
    [ -n "$MNT" ] && umount "$MNT" 2>/dev/null
    if [ "${SYS2_KEEP:-0}" = 1 ]; then echo "scratch: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

repro() { echo "    reproduce: SYS2_SEED=$SEED SYS2_ONLY=$SCEN SYS2_ROUNDS=$R SYS2_KEEP=1 $0 $BUILD (round $R, scenario dir $DIR)"; }
check() { # description, command...
    local what=$1; shift
    CHECKS=$((CHECKS + 1))
    if "$@" >/dev/null 2>&1; then return 0; fi
    FAILS=$((FAILS + 1))
    echo "  FAIL: $SCEN: $what"
    repro
    return 1
}

# ---- images: 1.0 (the example firmware), 2.0 (its 2.0 edited in many places) ----------
python3 - "$SRC/tests/vectors/firmware" "$WORK" <<'EOF'
import random, sys
src, out = sys.argv[1], sys.argv[2]
open(out + "/v1.bin", "wb").write(open(src + "/fw-v1.bin", "rb").read())
d = bytearray(open(src + "/fw-v2.bin", "rb").read())
r = random.Random(5)
for _ in range(120):
    o = r.randrange(len(d) - 128)
    for j in range(r.randrange(8, 120)):
        d[o + j] = r.randrange(256)
open(out + "/v2.bin", "wb").write(d)
d += bytes(r.randrange(256) for _ in range(2000))
open(out + "/v3.bin", "wb").write(d)
EOF
V1=$WORK/v1.bin V2=$WORK/v2.bin V3=$WORK/v3.bin
BT1=2026-01-01 BT2=2026-02-01 BT3=2026-03-01
USER=32768
SLOW=(--frame 128 --window 2 --rtt 20)

new_scen() { # name
    SCEN=$1
    PORT=$((PORT + 1))
    DIR="$WORK/$1.$R.$2"
    mkdir -p "$DIR"
    cd "$DIR" || exit 2
    export OTAUP_DB="${3:-$DIR}/r.db"
    $C release add --model M1 --version 1.0 --build-time $BT1 "$V1" >/dev/null
}
listens() { local n; n=$(grep -c "event=listen" "$DIR/d.log" 2>/dev/null); echo "${n:-0}"; }
dstart() {
    local n0
    n0=$(listens)
    $D --db "$OTAUP_DB" --listen 127.0.0.1:$PORT "$@" >>"$DIR/d.log" 2>&1 &
    DPID=$!
    for _ in $(seq 100); do
        [ "$(listens)" -gt "$n0" ] && return 0
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "  otaupd did not start ($SCEN)"; repro
    return 1
}
dkill() { # signal
    [ -n "$DPID" ] || return 0
    kill -"${1:-KILL}" "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
alive() { [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; }
mkterm() { # flash id layout
    $T --flash "$1" --init "$V1" --id "$2" --model M1 --version 1.0 --build-time $BT1 --layout "$3" \
       --user-size $USER --quiet && cp "$1" "$1.orig"
}
run_term() { # flash [options]: bounded
    local f=$1; shift
    timeout 170 $T --flash "$f" --connect 127.0.0.1:$PORT --timeout 150 --reconnect 60 --report "$f.rep" \
        --quiet "$@" >>"$f.out" 2>&1
}
rep() { sed -n "s/^$2=//p" "$1.rep" 2>/dev/null; }
# the personal-data region: where the registry's audit says region 0 is
user_off() { $C audit --terminal "$1" | sed -n 's/.*region 0 (0x\([0-9a-f]*\), \([0-9]*\) bytes.*/\1/p' | head -n 1; }
user_same() { # flash id
    local off
    off=$(user_off "$2")
    [ -n "$off" ] || return 1
    off=$((0x$off - 0x08000000))
    cmp -s -i "$off:$off" -n $USER "$1" "$1.orig"
}
boot_is() { # flash image layout
    local n
    n=$(stat -c %s "$2")
    if [ "$3" = ab ]; then
        cmp -s -n "$n" "$1" "$2" || cmp -s -n "$n" <(tail -c +$((262144 + 1)) "$1") "$2"
    else
        cmp -s -n "$n" "$1" "$2"
    fi
}
no_backups() { $C backups | grep -q "^0 backups held"; }
status_done() { # id version
    local s
    s=$($C status "$1") || return 1
    grep -q "version $2," <<<"$s" && grep -q "state upgraded" <<<"$s" &&
        { ! grep -q "  session " <<<"$s" || grep -q "  session [0-9a-f]*: done" <<<"$s"; }
}
no_sanitizer() { ! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$DIR/d.log"; }
end_state() { # flash id layout version image
    check "$2: flash boot slot is $4 byte for byte" boot_is "$1" "$5" "$3"
    check "$2: personal data intact" user_same "$1" "$2"
    check "$2: report says $4, data intact" test "$(rep "$1" version)/$(rep "$1" user_intact)" = "$4/1"
    check "$2: otaupctl status: upgraded, session done" status_done "$2" "$4"
}
finish_scen() {
    check "no backup left" no_backups
    check "daemon alive" alive
    dkill TERM
    check "no sanitizer report" no_sanitizer
}
wait_event() { # pattern, max tenths of a second
    local i
    for i in $(seq "$2"); do
        grep -q "$1" "$DIR/d.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
rnd() { echo $((RANDOM % $1)); }
# killd/killt run K: in place for even K, A/B for odd (sets L), the daemon
# started, terminal ID on 1.0, then 2.0 published
kill_scen() { # name k id
    L=inplace; [ $(($2 % 2)) = 1 ] && L=ab
    new_scen "$1" "$2"
    dstart --auto-request || return 1
    mkterm t.flash "$3" $L
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
}
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

PHASES=("event=backup" "event=start" "event=transfer" "event=restore" "event=done")
for R in $(seq "$ROUNDS"); do
    echo "round $R (seed $SEED)"
    # ---- killd: SIGKILL of otaupd at random instants -------------------------------------
    if want killd; then
        for k in 0 1 2 3; do
            kill_scen killd $k KD$k || continue
            run_term t.flash "${SLOW[@]}" --damage-user-data --seed $R$k &
            TP=$!
            kills=$((1 + $(rnd 2)))
            what=""
            for _ in $(seq $kills); do
                ph=${PHASES[$(rnd ${#PHASES[@]})]}
                n0=$(grep -c "$ph" d.log)
                wait_event_n() { local i; for i in $(seq 100); do [ "$(grep -c "$ph" d.log)" -gt "$n0" ] && return 0; sleep 0.05; done; return 1; }
                wait_event_n || break
                ms=$(rnd 400)
                sleep "$(printf '0.%03d' "$ms")"
                what="$what ${ph#event=}+${ms}ms"
                dkill KILL
                sleep "0.$(rnd 9)"
                dstart --auto-request || break
            done
            wait $TP
            rc=$?
            check "terminal exit 0 (kills:$what; layout $L; rc $rc)" test $rc = 0
            end_state t.flash KD$k $L 2.0 "$V2"
            finish_scen
        done
        echo "  killd: done ($(($(date +%s) - T0)) s)"
    fi
    # ---- killt: SIGKILL of otaup-term at random instants -------------------------------
    if want killt; then
        for k in 0 1 2 3; do
            kill_scen killt $k KT$k || continue
            what=""
            for i in 1 2 3; do
                extra=()
                if [ $((k + i)) -ge 3 ] && [ $(rnd 2) = 1 ]; then
                    extra=(--cut-after $((1 + $(rnd 40))))
                    [ $(rnd 2) = 1 ] && extra+=(--torn)
                fi
                # otaup-term itself in the background (not a subshell): $! is the process killed
                $T --flash t.flash --connect 127.0.0.1:$PORT --timeout 150 --reconnect 60 --report t.flash.rep \
                    --quiet "${SLOW[@]}" --damage-user-data --seed $R$k$i "${extra[@]}" >>t.flash.out 2>&1 &
                TP=$!
                ms=$((100 + $(rnd 2500)))
                sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
                what="$what kill@${ms}ms${extra[*]:+(${extra[*]})}"
                kill -KILL $TP 2>/dev/null
                wait $TP 2>/dev/null
                # the daemon notices the close; the next run must not be refused as a second connection
                sleep 0.$(rnd 5)
            done
            run_term t.flash "${SLOW[@]}" --seed $R$k
            rc=$?
            check "terminal done after kills (rc $rc;$what; layout $L)" test $rc = 0
            end_state t.flash KT$k $L 2.0 "$V2"
            finish_scen
        done
        echo "  killt: done ($(($(date +%s) - T0)) s)"
    fi
    # ---- oper: operator actions during a session -----------------------------------------
    if want oper; then
        # a newer release published at a random instant of a session to 2.0
        new_scen oper-newer 0
        dstart --auto-request
        mkterm t.flash ON1 inplace
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        run_term t.flash "${SLOW[@]}" --damage-user-data &
        TP=$!
        ph=${PHASES[$(rnd 4)]}
        wait_event "$ph" 100
        sleep 0.$(rnd 9)
        $C release add --model M1 --version 3.0 --build-time $BT3 "$V3" >/dev/null
        wait $TP
        check "2.0 session finished (3.0 published at $ph)" test $? = 0
        run_term t.flash "${SLOW[@]}"
        check "then 3.0" test $? = 0
        end_state t.flash ON1 inplace 3.0 "$V3"
        finish_scen

        # 2.0 withdrawn (forced) at a random instant: either the session finishes to 2.0
        # or it is dropped before its START with nothing written
        new_scen oper-withdraw 0
        dstart --auto-request
        mkterm t.flash OW1 inplace
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        run_term t.flash "${SLOW[@]}" --damage-user-data &
        TP=$!
        ph=${PHASES[$(rnd 4)]}
        wait_event "$ph" 100
        sleep 0.$(rnd 9)
        $C release withdraw 2 --force >/dev/null
        wait $TP
        rc=$?
        check "terminal exit 0 (withdrawn at $ph)" test $rc = 0
        if [ "$(rep t.flash version)" = 2.0 ]; then
            end_state t.flash OW1 inplace 2.0 "$V2"
        else
            check "withdrawn before START: image 1.0" boot_is t.flash "$V1" inplace
            check "withdrawn before START: flash unchanged" cmp -s t.flash t.flash.orig
        fi
        finish_scen

        # two terminals of one model at once, and one id on two connections at once
        new_scen oper-two 0
        dstart --auto-request
        mkterm a.flash OA inplace
        mkterm b.flash OB ab
        cp a.flash a2.flash; cp a.flash.meta a2.flash.meta; cp a.flash.orig a2.flash.orig
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        run_term a.flash "${SLOW[@]}" --damage-user-data &
        PA=$!
        run_term b.flash "${SLOW[@]}" --damage-user-data &
        PB=$!
        wait_event "terminal=OA event=backup" 100
        sleep 0.$(rnd 5)
        run_term a2.flash --reconnect 0 --timeout 10   # the same id while OA's session is live
        rc2=$?
        wait $PA; ra=$?
        wait $PB; rb=$?
        check "OA upgraded (rc $ra)" test $ra = 0
        check "OB upgraded (rc $rb)" test $rb = 0
        check "the clone refused (rc $rc2)" test $rc2 != 0
        check "the clone's flash unchanged" cmp -s a2.flash a2.flash.orig
        end_state a.flash OA inplace 2.0 "$V2"
        end_state b.flash OB ab 2.0 "$V2"
        finish_scen
        echo "  oper: done ($(($(date +%s) - T0)) s)"
    fi
    # ---- disk: a full file system under the registry ----------------------------------------
    if want disk && [ "$(id -u)" = 0 ]; then
        for k in 0 1; do
            MNT="$WORK/mnt.$R.$k"
            mkdir -p "$MNT"
            mount -t tmpfs -o size=1536k tmpfs "$MNT" || { echo "  disk: cannot mount tmpfs"; MNT=""; break; }
            new_scen disk $k "$MNT"
            $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
            dstart --auto-request
            mkterm t.flash DF$k inplace
            # fill the file system at a random instant: during the backup (k=0) or the transfer (k=1)
            run_term t.flash "${SLOW[@]}" --damage-user-data --reconnect 3 --timeout 40 &
            TP=$!
            if [ $k = 0 ]; then wait_event "event=accept" 100; else wait_event "event=start" 100; fi
            sleep 0.$(rnd 3)
            dd if=/dev/zero of="$MNT/fill" bs=4k 2>/dev/null
            wait $TP
            rc=$?
            check "daemon alive with a full disk" alive
            check "registry readable with a full disk" $C status DF$k
            check "flash image is 1.0 or 2.0 (rc $rc)" bash -c "cmp -s -n $(stat -c %s "$V1") t.flash $V1 || cmp -s -n $(stat -c %s "$V2") t.flash $V2"
            rm -f "$MNT/fill"
            run_term t.flash "${SLOW[@]}"
            rc=$?
            check "upgrade ends once room is made (rc $rc)" test $rc = 0
            end_state t.flash DF$k inplace 2.0 "$V2"
            grep -q "full" d.log
            check "the log says the disk is full" test $? = 0
            finish_scen
            check "registry integrity" bash -c "sqlite3 '$OTAUP_DB' 'PRAGMA integrity_check' 2>/dev/null | grep -qx ok || python3 -c \"import sqlite3,sys; sys.exit(0 if sqlite3.connect('$OTAUP_DB').execute('PRAGMA integrity_check').fetchone()[0]=='ok' else 1)\""
            cd "$WORK"
            umount "$MNT" && MNT=""
        done
        echo "  disk: done ($(($(date +%s) - T0)) s)"
    fi
    # ---- hostile: bad peers beside a real upgrade -----------------------------------------
    if want hostile; then
        new_scen hostile 0
        dstart --auto-request
        mkterm t.flash H1 inplace
        $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
        run_term t.flash "${SLOW[@]}" --damage-user-data &
        TP=$!
        python3 - "$PORT" "$SEED$R" >"$DIR/hostile.out" 2>&1 <<'EOF' &
import os, random, socket, sys, time
port, seed = int(sys.argv[1]), int(sys.argv[2])
r = random.Random(seed)
t_end = time.time() + 8
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    return s
held = []
# a HELLO-like header: magic guesses, then the real terminal's bytes are not known: mutate random
kinds = ["random", "trunc", "mute", "slow", "noread", "flood"]
n = 0
while time.time() < t_end and n < 200:
    k = r.choice(kinds); n += 1
    try:
        s = conn()
        if k == "random":
            s.sendall(bytes(r.randrange(256) for _ in range(r.randrange(1, 4000))))
            s.close()
        elif k == "trunc":
            s.sendall(bytes([0x4f, 0x55]) + bytes(r.randrange(256) for _ in range(r.randrange(0, 12))))
            s.shutdown(socket.SHUT_WR)
            try: s.recv(100)
            except Exception: pass
            s.close()
        elif k == "mute":
            held.append(s)
        elif k == "slow":
            for _ in range(5):
                s.send(bytes([r.randrange(256)])); time.sleep(0.05)
            held.append(s)
        elif k == "noread":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            held.append(s)
        elif k == "flood":
            s.settimeout(0.5)
            try:
                for _ in range(50):
                    s.send(os.urandom(8192))
            except Exception: pass
            s.close()
    except Exception as e:
        print("hostile:", k, e)
    time.sleep(0.02)
for s in held:
    try: s.close()
    except Exception: pass
print("hostile peers:", n)
EOF
        HP=$!
        wait $TP
        rc=$?
        wait $HP
        check "terminal upgraded beside hostile peers (rc $rc)" test $rc = 0
        end_state t.flash H1 inplace 2.0 "$V2"
        finish_scen
        echo "  hostile: done ($(($(date +%s) - T0)) s; $(tail -n 1 "$DIR/hostile.out"))"
    fi
done
echo "sys2: $CHECKS checks, $FAILS failed, $(($(date +%s) - T0)) s (seed $SEED, rounds $ROUNDS)"
exit $((FAILS > 125 ? 125 : FAILS))
