#!/usr/bin/env bash
# bench/faults/system.sh — system-level fault campaign through the real programs.
#
#   bench/faults/system.sh [BUILD_DIR]
#
# Runs otaupd, otaupctl and otaup-term (and `otaup keygen`) over loopback,
# each daemon on its own port with its registry in a scratch directory,
# and checks every upgrade where it matters: it ends either fully upgraded
# (the flash holds NEW byte for byte in its boot slot, the report says
# version 2.0 and personal data intact, the registry holds no backup) or
# cleanly not upgraded (a non-zero exit, the old image, personal data
# intact) — never a crash, a hang, a sanitizer report in the daemon's
# log, a wrong image or lost personal data. The daemon is killed and
# restarted (SIGKILL and SIGTERM) in the middle of transfers; what it
# prints at the end is one line per scenario and a summary; the exit code
# is the number of failed checks (0: all passed).
#
# Scenarios (each bounded in time):
#   layouts     in place and A/B; sector sizes 1 KiB..64 KiB; slot and
#               personal-data sizes; --frame/--window at both ends
#   link        --drop/--corrupt/--duplicate/--delay/--rtt at high rates
#   power       --cut-after N (with and without --torn) at many N, then
#               runs until done (each resumes from the journal)
#   daemon      SIGKILL and SIGTERM mid-transfer, restart, terminal resumes
#   identity    two terminals with the same id at once; an id registered
#               with another model; an image the server does not know
#               (planned from the block signature); a terminal already on
#               the newest release; one that runs it but reports an older
#               version; a model without releases; a release larger than
#               the slot
#   data        --damage-user-data (the server restores from the backup)
#   signed      keys made with `otaup keygen`; release add --sign; terminals
#               with the right key, another key, no key
#   fleet       FLEET terminals at once against one daemon
#   wire        garbage, mutated and truncated frames, silent clients,
#               half-closed connections, 200 idle connections
#   registry    a read-only and a corrupt database; bad flags and missing
#               files for every program
#
# Knobs (environment):
#   SYS_PAIRS   image pairs "OLD:NEW ..." (default: the prebuilt firmware
#               pair tests/vectors/firmware/fw-v{1,2}.bin, and the real
#               pairs expat and grub under SYS_DATA when present)
#   SYS_DATA    directory with PAIR/{old,new} (default
#               /work/wt/delta/bench/data/pairs; missing is fine)
#   SYS_BIG     1: also the large real pairs (libxml2, nginx: 1.2-1.7 MB)
#   SYS_CUTS    power-cut points per pair and variant (default 6)
#   FLEET       terminals at once in the fleet scenario (default 24)
#   SYS_PORT    first port (default 17400; each daemon takes the next one)
#   SYS_KEEP    1: keep the scratch directory
#
# Run time: about 15 minutes with the defaults on two shared cores, for a
# release or a sanitizer build alike (the lossy-link rows wait on
# retransmission back-off, not on the CPU): 185 checks in 838 s for an
# ASan+UBSan build with SYS_CUTS=4. Use the sanitizer build (tests/run.sh
# sanitize's flags: cmake -DOTAUP_SANITIZE=ON): the daemon's log is
# searched for AddressSanitizer/UBSan/LeakSanitizer reports. Not part of
# ctest.
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$SRC/build/dev}"
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
T="$BUILD/examples/otaup-term/otaup-term"
O="$BUILD/examples/otaup/otaup"
for p in "$D" "$C" "$T" "$O"; do
    [ -x "$p" ] || { echo "system.sh: $p missing: build first (cmake --build $BUILD)" >&2; exit 2; }
done
DATA="${SYS_DATA:-/work/wt/delta/bench/data/pairs}"
CUTS="${SYS_CUTS:-6}"
FLEET="${FLEET:-24}"
PORT="${SYS_PORT:-17400}"
WORK="$(mktemp -d /tmp/otaup-sysfault-XXXXXX)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
T0=$(date +%s)
FAILS=0 CHECKS=0 SCEN=0
DPID="" DDIR="" DPORT=""

cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    jobs -p | while read -r j; do kill -KILL "$j" 2>/dev/null; done
    [ "${SYS_KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

ok() { CHECKS=$((CHECKS + 1)); }
bad() { CHECKS=$((CHECKS + 1)); FAILS=$((FAILS + 1)); echo "  FAIL: $*"; }
expect() { # description, command...
    local what=$1; shift
    if "$@"; then ok; else bad "$what"; fi
}

# ---- the daemon -----------------------------------------------------------------
daemon_start() { # dir [args]
    DDIR=$1; shift
    [ -n "$DPORT" ] || { PORT=$((PORT + 1)); DPORT=$PORT; }
    local n0 i
    n0=$(cat "$DDIR/d.log" 2>/dev/null | grep -c "event=listen")
    "$D" --db "$DDIR/reg.db" --listen "127.0.0.1:$DPORT" "$@" >>"$DDIR/d.log" 2>&1 &
    DPID=$!
    for i in $(seq 200); do
        [ "$(cat "$DDIR/d.log" 2>/dev/null | grep -c "event=listen")" -gt "$n0" ] && return 0
        kill -0 "$DPID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
daemon_stop() { # signal
    local rc
    kill "-${1:-TERM}" "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    rc=$?
    DPID=""
    return $rc
}
sanitizer_clean() { # log
    ! grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$1"
}

# ---- one world: registry with 1.0 and 2.0 of a pair, a daemon ------------------------
OLD="" NEW="" SLOT=""
world() { # name old new [daemon args]
    local name=$1
    OLD=$2 NEW=$3
    shift 3
    W="$WORK/$name"
    mkdir -p "$W"
    export OTAUP_DB="$W/reg.db"
    DPORT=""
    local size
    size=$(stat -c %s "$NEW")
    [ "$(stat -c %s "$OLD")" -gt "$size" ] && size=$(stat -c %s "$OLD")
    SLOT=$(( (size + 65535) / 65536 * 65536 + 65536 ))
    "$C" release add --model M --version 1.0 --build-time 1000 "$OLD" >/dev/null || bad "$name: release 1.0"
    daemon_start "$W" --auto-request "$@" || { bad "$name: otaupd did not start"; cat "$W/d.log"; return 1; }
    "$C" release add --model M --version 2.0 --build-time 2000 "$NEW" >/dev/null || bad "$name: release 2.0"
}
world_end() {
    local rc
    daemon_stop TERM
    rc=$?
    [ $rc -eq 0 ] && ok || bad "$(basename "$W"): otaupd exit $rc on SIGTERM"
    expect "$(basename "$W"): sanitizer report in otaupd's log" sanitizer_clean "$W/d.log"
}

# ---- terminals ---------------------------------------------------------------------
mkterm() { # name [init args]
    local n=$1; shift
    "$T" --flash "$W/$n.flash" --init "$OLD" --id "$n" --model M --version 1.0 --build-time 1000 \
        --slot-size "$SLOT" --quiet "$@" >"$W/$n.init" 2>&1
}
# run a terminal until it ends (power cuts: run again without the cut), at most 60 runs
runterm() { # name [term args] ; sets RC
    local n=$1; shift
    local args=("$@") tries=0 i
    while :; do
        RC=0
        timeout 300 "$T" --flash "$W/$n.flash" --connect "127.0.0.1:$DPORT" --report "$W/$n.report" --quiet \
            --timeout 240 "${args[@]}" >>"$W/$n.out" 2>&1 || RC=$?
        tries=$((tries + 1))
        [ $RC -eq 3 ] && [ $tries -lt 60 ] || break
        local next=()
        for ((i = 0; i < ${#args[@]}; i++)); do
            case "${args[$i]}" in
            --cut-after) i=$((i + 1)) ;;
            --torn) ;;
            *) next+=("${args[$i]}") ;;
            esac
        done
        args=("${next[@]}")
    done
}
rep() { sed -n "s/^$2=//p" "$W/$1.report" 2>/dev/null; }
# the boot slot holds NEW (A/B: slot 1 after an odd number of switches; the report's hash names it)
upgraded() { # name
    local n=$1 h want
    [ "$RC" -eq 0 ] || { echo "    $n: exit $RC: $(tail -n 1 "$W/$n.out")"; return 1; }
    [ "$(rep "$n" version)" = 2.0 ] && [ "$(rep "$n" user_intact)" = 1 ] || return 1
    h=$(rep "$n" image_hash)
    want=$("$C" releases | awk '$3 == "2.0" && $2 == "M" { print $6 }' | head -n 1)
    if [ -n "$want" ] && [ "$h" != "$want" ]; then
        echo "    $n: image hash $h, NEW is $want"
        return 1
    fi
    if ! grep -q "layout=1" "$W/$n.flash.meta" 2>/dev/null; then
        cmp -s -n "$(stat -c %s "$NEW")" "$W/$n.flash" "$NEW" || { echo "    $n: flash is not NEW"; return 1; }
    fi
    ! "$C" backups | grep -q "of terminal $n\$"
}
not_upgraded() { # name
    local n=$1
    [ "$RC" -ne 0 ] && [ "$RC" -ne 3 ] || return 1
    [ "$RC" -ne 124 ] || { echo "    $n: hung (timeout)"; return 1; }
    [ "$(rep "$n" user_intact)" = 1 ] || return 1
    grep -q "layout=1" "$W/$n.flash.meta" 2>/dev/null && return 0
    cmp -s -n "$(stat -c %s "$OLD")" "$W/$n.flash" "$OLD"
}
scenario() { SCEN=$((SCEN + 1)); printf '%-58s' "$*"; }
done_line() { echo " ok (${CHECKS} checks, ${FAILS} failed so far, $(($(date +%s) - T0)) s)"; }

# ---- the pairs ------------------------------------------------------------------------
PAIRS=()
if [ -n "${SYS_PAIRS:-}" ]; then
    read -r -a PAIRS <<<"$SYS_PAIRS"
else
    PAIRS+=("$SRC/tests/vectors/firmware/fw-v1.bin:$SRC/tests/vectors/firmware/fw-v2.bin")
    for p in expat grub; do
        [ -f "$DATA/$p/old" ] && PAIRS+=("$DATA/$p/old:$DATA/$p/new")
    done
    if [ "${SYS_BIG:-0}" = 1 ]; then
        for p in nginx libxml2; do
            [ -f "$DATA/$p/old" ] && PAIRS+=("$DATA/$p/old:$DATA/$p/new")
        done
    fi
fi
echo "system.sh: build $BUILD, ${#PAIRS[@]} pair(s), scratch $WORK"

# terminal rows "INIT ARGS|RUN ARGS" ("-": none); the link rows run on the first pair only
ROWS=(
    "--layout inplace|-"
    "--layout ab|-"
    "--sector-size 1024|-"
    "--sector-size 2048|--frame 64"
    "--sector-size 65536|--window 1"
    "--user-size 0|-"
    "--user-size 65536|--damage-user-data"
    "--layout ab|--damage-user-data"
    "-|--frame 64 --window 1"
    "-|--frame 65536 --window 1024"
)
ROWS_LINK=(
    "-|--drop 25 --duplicate 25 --seed 3"
    "-|--corrupt 20 --delay 20:150 --seed 4"
    "-|--drop 10 --corrupt 10 --duplicate 10 --delay 10:100 --rtt 80 --seed 5"
    "--layout ab|--drop 15 --corrupt 10 --rtt 40 --seed 6"
    "-|--drop 30 --corrupt 15 --damage-user-data --reconnect 10 --seed 8"
)
pi=0
for pair in "${PAIRS[@]}"; do
    pi=$((pi + 1))
    po=${pair%%:*} pn=${pair##*:}
    pname="p$pi-$(basename "$(dirname "$po")")"

    # -- layouts, geometry, frames, link faults, damaged data
    scenario "$pname: layouts, geometry, frames, link, data"
    world "$pname-a" "$po" "$pn" || continue
    i=0
    while IFS='|' read -r init term; do
        i=$((i + 1))
        [ "$init" = - ] && init=""
        [ "$term" = - ] && term=""
        # shellcheck disable=SC2086
        mkterm "t$i" $init || { bad "$pname t$i init ($init): $(cat "$W/t$i.init")"; continue; }
        # shellcheck disable=SC2086
        runterm "t$i" $term
        expect "$pname t$i [$init | $term] upgraded" upgraded "t$i"
    done < <(printf '%s\n' "${ROWS[@]}"; [ "$pi" -eq 1 ] && printf '%s\n' "${ROWS_LINK[@]}")
    world_end
    done_line

    # -- power cuts at many points, torn and not, both layouts
    scenario "$pname: $CUTS power cuts x {in place, A/B} x {clean, torn}"
    world "$pname-c" "$po" "$pn" || continue
    for layout in inplace ab; do
        for torn in "" --torn; do
            for k in $(seq 1 "$CUTS"); do
                n="c-$layout${torn:+-t}-$k"
                N=$(( (k * k * 7 + k * 3) % 97 + 1 ))
                mkterm "$n" --layout "$layout" || { bad "$n init"; continue; }
                # shellcheck disable=SC2086
                runterm "$n" --cut-after "$N" $torn
                expect "$n (cut after $N$torn) upgraded" upgraded "$n"
            done
        done
    done
    world_end
    done_line

    # -- the daemon killed and restarted mid-transfer
    scenario "$pname: otaupd SIGKILL/SIGTERM mid-transfer"
    world "$pname-k" "$po" "$pn" || continue
    for sig in KILL TERM KILL; do
        n="k-$sig-$RANDOM"
        mkterm "$n" || { bad "$n init"; continue; }
        RC=0
        timeout 300 "$T" --flash "$W/$n.flash" --connect "127.0.0.1:$DPORT" --report "$W/$n.report" --quiet \
            --timeout 240 --rtt 120 --frame 128 --window 2 --reconnect 30 >"$W/$n.out" 2>&1 &
        tp=$!
        for _ in $(seq 400); do grep -q "terminal=$n event=start" "$W/d.log" && break; sleep 0.05; done
        sleep 0.6
        daemon_stop "$sig"
        sleep 0.3
        daemon_start "$W" --auto-request || bad "restart after SIG$sig"
        wait "$tp"
        RC=$?
        expect "$n (daemon SIG$sig mid-transfer) upgraded" upgraded "$n"
    done
    world_end
    done_line
done

# ---- identity, policy, signature path (first pair) -------------------------------------
po=${PAIRS[0]%%:*} pn=${PAIRS[0]##*:}
scenario "identity and policy"
world ident "$po" "$pn"
for n in dupA dupB; do
    "$T" --flash "$W/$n.flash" --init "$OLD" --id DUP --model M --version 1.0 --build-time 1000 --slot-size "$SLOT" --quiet
done
runterm dupA --rtt 60 --frame 256 --window 2 --reconnect 10 &
ra=$!
sleep 0.3
runterm dupB --rtt 60 --frame 256 --window 2 --reconnect 10
rb=$RC
wait $ra
RC=$(rep dupA result)
RC=${RC:-99}
expect "same id at once: first upgraded" upgraded dupA
RC=$rb
if [ "$rb" -eq 0 ]; then expect "same id at once: second upgraded" upgraded dupB; else expect "same id at once: second cleanly refused" not_upgraded dupB; fi
expect "same id at once: refused connection audited" bash -c "'$C' audit --terminal DUP | grep -q 'already connected'"
expect "same id at once: no backup left" bash -c "! '$C' backups | grep -q 'of terminal DUP'"
# already on the newest release
"$T" --flash "$W/new.flash" --init "$NEW" --id new --model M --version 2.0 --build-time 2000 --slot-size "$SLOT" --quiet
runterm new
expect "newest already: up to date" bash -c "[ $RC -eq 0 ] && grep -q 'up to date' '$W/new.out'"
# runs the newest, says 1.0
"$T" --flash "$W/lie.flash" --init "$NEW" --id lie --model M --version 1.0 --build-time 1000 --slot-size "$SLOT" --quiet
runterm lie --reconnect 0
expect "runs 2.0, says 1.0: up to date" bash -c "[ $RC -eq 0 ] && grep -q 'up to date' '$W/lie.out'"
expect "runs 2.0, says 1.0: no backup left" bash -c "! '$C' backups | grep -q 'of terminal lie'"
# an image nobody published (planned from its block signature)
{ cat "$OLD"; head -c 3000 /dev/urandom; } >"$W/odd.img"
"$T" --flash "$W/unk.flash" --init "$W/odd.img" --id unk --model M --version 1.0-field --build-time 1500 --slot-size "$SLOT" --quiet
runterm unk
expect "unknown image: upgraded" upgraded unk
# a model without releases
"$T" --flash "$W/om.flash" --init "$OLD" --id om --model OTHER --version 1.0 --build-time 1000 --slot-size "$SLOT" --quiet
runterm om
expect "model without releases: up to date" bash -c "[ $RC -eq 0 ] && grep -q 'up to date' '$W/om.out'"
# an id registered with another model
"$T" --flash "$W/mm.flash" --init "$OLD" --id unk --model OTHER --version 1.0 --build-time 1000 --slot-size "$SLOT" --quiet
runterm mm --reconnect 1 --rtt 100
expect "id under another model: refused" bash -c "[ $RC -eq 1 ]"
expect "id under another model: next connection not a protocol violation" bash -c "! grep -q 'never sent' '$W/d.log'"
# a release larger than the slot
head -c $((SLOT + 4096)) /dev/urandom >"$W/huge.img"
"$C" release add --model S --version 1.0 --build-time 1000 "$OLD" >/dev/null
"$C" release add --model S --version 2.0 --build-time 2000 "$W/huge.img" >/dev/null
"$T" --flash "$W/sm.flash" --init "$OLD" --id sm --model S --version 1.0 --build-time 1000 --slot-size "$SLOT" --quiet
runterm sm --reconnect 0
OLDSAVE=$OLD
expect "release larger than the slot: cleanly not upgraded" not_upgraded sm
world_end
done_line

# ---- signed releases -------------------------------------------------------------------------
scenario "signed releases: right, wrong, missing keys"
W="$WORK/signed"
mkdir -p "$W"
export OTAUP_DB="$W/reg.db"
DPORT=""
"$O" keygen -o "$W/k1" >/dev/null && "$O" keygen -o "$W/k2" >/dev/null || bad "keygen"
"$C" release add --model M --version 1.0 --build-time 1000 "$po" >/dev/null
for n in s-ok s-wrong s-none s-req; do mkterm "$n"; done
daemon_start "$W" --auto-request || bad "signed: otaupd did not start"
# the terminals report their software first: publication signs the deltas for the sources it knows
for n in s-ok s-wrong s-none; do runterm "$n"; done
"$C" release add --model M --version 2.0 --build-time 2000 --sign "$W/k1" --counter 3 "$pn" >/dev/null || bad "release add --sign"
expect "release add --sign with a public key refused" bash -c "! '$C' release add --model M --version 3.0 --build-time 3000 --sign '$W/k1.pub' '$pn' >/dev/null 2>&1"
expect "release add --sign with a missing key refused" bash -c "! '$C' release add --model M --version 3.0 --build-time 3000 --sign '$W/nokey' '$pn' >/dev/null 2>&1"
cp "$W/s-wrong.flash" "$W/s-wrong.before"
runterm s-ok --pub "$W/k1.pub" --require-signed
expect "signed, trusted key: upgraded" upgraded s-ok
expect "signed, trusted key: counter 3" bash -c "[ '$(rep s-ok security_counter)' = 3 ]"
runterm s-wrong --pub "$W/k2.pub" --require-signed
expect "signed, other key: refused" bash -c "[ $RC -eq 1 ] && [ '$(rep s-wrong refused)' != 0 ]"
expect "signed, other key: flash unchanged" cmp -s "$W/s-wrong.flash" "$W/s-wrong.before"
runterm s-none
expect "signed release, terminal without keys: upgraded" upgraded s-none
expect "--require-signed without --pub: usage error" bash -c "'$T' --flash '$W/s-req.flash' --require-signed >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "--pub of a private key file that is not a key" bash -c "echo junk >'$W/junk.pub'; '$T' --flash '$W/s-req.flash' --pub '$W/junk.pub' >/dev/null 2>&1; [ \$? -ne 0 ]"
world_end
done_line

# ---- a fleet at once --------------------------------------------------------------------------
scenario "fleet: $FLEET terminals at once"
world fleet "$po" "$pn"
pids=()
for i in $(seq "$FLEET"); do
    mkterm "f$i" $([ $((i % 3)) -eq 0 ] && echo "--layout ab")
done
for i in $(seq "$FLEET"); do
    (
        RC=0
        timeout 300 "$T" --flash "$W/f$i.flash" --connect "127.0.0.1:$DPORT" --report "$W/f$i.report" --quiet \
            --timeout 240 --drop 3 --rtt 20 --seed "$i" $([ $((i % 4)) -eq 0 ] && echo "--damage-user-data") \
            >"$W/f$i.out" 2>&1 || RC=$?
        echo $RC >"$W/f$i.rc"
    ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq "$FLEET"); do
    RC=$(cat "$W/f$i.rc" 2>/dev/null || echo 99)
    expect "fleet f$i upgraded" upgraded "f$i"
done
expect "fleet: no backup left" bash -c "'$C' backups | grep -q '^0 backups'"
expect "fleet: every connection closed" bash -c "[ \$(grep -c event=accept '$W/d.log') -eq \$(grep -c event=close '$W/d.log') ]"
world_end
done_line

# ---- hostile bytes on the daemon's socket -----------------------------------------------------
scenario "wire: garbage, mutations, silent and idle clients"
world wire "$po" "$pn"
python3 - "$DPORT" "$W" <<'PY' >"$W/wire.out" 2>&1 || bad "wire client: $(tail -n 3 "$W/wire.out")"
import random, socket, sys, time
port, w = int(sys.argv[1]), sys.argv[2]
random.seed(7)
def conn():
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.5); return s
def drain(s, t):
    end = time.time() + t
    try:
        while time.time() < end:
            if not s.recv(65536): return "closed"
    except socket.timeout: return "open"
    except OSError: return "reset"
    return "open"
for n in (1, 10, 63, 64, 65, 500, 5000, 70000):
    s = conn(); s.sendall(bytes(random.getrandbits(8) for _ in range(n))); drain(s, 0.3); s.close()
# a real terminal's first frames (HELLO, INFO): captured below, then mutated
cap = open(w + "/cap.bin", "rb").read() if len(sys.argv) > 3 else b""
idle = [conn() for _ in range(200)]
time.sleep(0.5)
for s in idle: s.close()
s = conn(); s.sendall(b"\x4f"); s.shutdown(socket.SHUT_WR); drain(s, 1); s.close()
print("ok")
PY
# a real terminal's opening frames, mutated (truncated, bits flipped, doubled, zeroed)
mkterm cap
python3 - "$DPORT" "$W" <<'PY' >"$W/cap.out" 2>&1 &
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen(1); open(sys.argv[2] + "/cap.port", "w").write(str(l.getsockname()[1]))
l.settimeout(20); c, _ = l.accept(); c.settimeout(1.0); buf = b""
try:
    while True:
        d = c.recv(65536)
        if not d: break
        buf += d
except socket.timeout: pass
open(sys.argv[2] + "/cap.bin", "wb").write(buf)
PY
cp_pid=$!
for _ in $(seq 100); do [ -s "$W/cap.port" ] && break; sleep 0.05; done
timeout 10 "$T" --flash "$W/cap.flash" --connect "127.0.0.1:$(cat "$W/cap.port")" --reconnect 0 --timeout 2 --quiet >/dev/null 2>&1
wait $cp_pid
python3 - "$DPORT" "$W/cap.bin" <<'PY' >>"$W/wire.out" 2>&1 || bad "mutation client"
import random, socket, sys, time
port = int(sys.argv[1]); data = open(sys.argv[2], "rb").read(); random.seed(11)
assert len(data) > 16, "no capture"
for i in range(150):
    b = bytearray(data); k = i % 4
    if k == 0: b = b[:random.randrange(1, len(b))]
    elif k == 1:
        for _ in range(random.randrange(1, 8)): b[random.randrange(len(b))] ^= 1 << random.randrange(8)
    elif k == 2: b = b + b
    else:
        p = random.randrange(len(b)); b[p:p + 16] = bytes(16)
    s = socket.create_connection(("127.0.0.1", port)); s.settimeout(0.2); s.sendall(bytes(b))
    try: s.recv(65536)
    except OSError: pass
    s.close()
print("mutations ok")
PY
# a silent client: the daemon keeps it (idle timeout 120 s) and still serves others
python3 -c "import socket,time; s=socket.create_connection(('127.0.0.1',$DPORT)); time.sleep(4)" &
sp=$!
mkterm w1
runterm w1
expect "wire: a terminal is served after the abuse" upgraded w1
wait $sp
expect "wire: otaupd alive" kill -0 "$DPID"
world_end
done_line

# ---- registry and program input ---------------------------------------------------------------
scenario "registry and flags"
W="$WORK/reg"
mkdir -p "$W"
export OTAUP_DB="$W/reg.db"
DPORT=""
"$C" release add --model M --version 1.0 --build-time 1000 "$po" >/dev/null
chmod 0444 "$W/reg.db"
if [ "$(id -u)" -ne 0 ]; then
    expect "read-only db: otaupctl release add fails" bash -c "! '$C' release add --model M --version 2.0 --build-time 2000 '$pn' >/dev/null 2>&1"
fi
chmod 0644 "$W/reg.db"
head -c 4096 /dev/urandom >"$W/bad.db"
expect "corrupt db: otaupctl exits 1" bash -c "OTAUP_DB='$W/bad.db' '$C' releases >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "corrupt db: otaupd exits 1" bash -c "timeout 10 '$D' --db '$W/bad.db' --listen 127.0.0.1:$((PORT + 1)) >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "corrupt db file untouched" bash -c "[ \$(stat -c %s '$W/bad.db') -eq 4096 ]"
expect "missing db: otaupctl refuses" bash -c "! OTAUP_DB='$W/none.db' '$C' releases >/dev/null 2>&1 && [ ! -e '$W/none.db' ]"
expect "otaupd bad flag: 2" bash -c "'$D' --frob >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaupd bad listen: 2" bash -c "'$D' --listen nowhere >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaupd missing sign key: 1" bash -c "'$D' --db '$W/reg.db' --sign-key '$W/nokey' >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaupd key file world-readable: 1" bash -c "chmod 0644 '$W/reg.db.key' 2>/dev/null || { echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef >'$W/reg.db.key'; chmod 0644 '$W/reg.db.key'; }; timeout 10 '$D' --db '$W/reg.db' --listen 127.0.0.1:$((PORT + 2)) >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaupctl no command: 2" bash -c "'$C' >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaupctl missing image: 1" bash -c "'$C' release add --model M --version 9 --build-time 1 '$W/nope' >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaupctl bad build time: 2" bash -c "'$C' release add --model M --version 9 --build-time soon '$po' >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaupctl status unknown terminal: 1" bash -c "'$C' status nobody >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaup-term no flash: 2" bash -c "'$T' >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaup-term missing flash: 1" bash -c "'$T' --flash '$W/none.flash' >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaup-term frame too small: 2" bash -c "'$T' --flash x --frame 1 >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaup-term window 1025: 2" bash -c "'$T' --flash x --window 1025 >/dev/null 2>&1; [ \$? -eq 2 ]"
expect "otaup-term image larger than the slot: 1" bash -c "'$T' --flash '$W/x.flash' --init '$pn' --id X --model M --version 1 --build-time 1 --slot-size 4096 >/dev/null 2>&1; [ \$? -eq 1 ]"
expect "otaup-term nobody listening: 1" bash -c "'$T' --flash '$W/x.flash' --connect 127.0.0.1:1 --reconnect 0 >/dev/null 2>&1; [ \$? -eq 1 ]" 2>/dev/null
done_line

echo "system.sh: $SCEN scenario groups, $CHECKS checks, $FAILS failed, $(($(date +%s) - T0)) s"
exit $((FAILS > 125 ? 125 : FAILS))
