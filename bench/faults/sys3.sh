#!/usr/bin/env bash
# bench/faults/sys3.sh — server-side faults that system.sh, sys2.sh and
# scen.sh do not place: the registry file and its store damaged, locked or
# left by a crash, build times out of range, and the programs' edges
# (ports, logs, peers that are not otaup).
#
#   bench/faults/sys3.sh [BUILD_DIR]
#
# Scenarios (each bounded in time; loopback only):
#   dbfile   the registry file empty, cut short, overwritten in its middle,
#            a directory, in a directory its user cannot write (as nobody,
#            when run as root), with garbage -wal/-shm files beside it, and
#            a copy taken mid-write (its -wal replayed)
#   lock     another process holds the registry's write lock (BEGIN
#            EXCLUSIVE) for 20 s while two terminals connect: clear errors
#            ("database is locked"), both upgraded once it is released,
#            otaupctl's reads served at once and its writes refused in
#            bounded time, the daemon alive
#   store    the registry's stored data damaged at rest: a precomputed
#            delta with a flipped bit or cut short (planned again), the
#            target image damaged before any delta to it was planned
#            (refused before START, flash untouched), the source image
#            damaged (planned from the block signature),
#            a delta damaged while an in-place terminal is cut off
#            mid-transfer (resumed after a daemon restart), and its backup
#            damaged meanwhile (not needed: committed without it)
#   clock    build times out of range: milliseconds given for seconds,
#            a date past 9999, a build time stored by another program
#            beyond it (printed as a number), a terminal built in the
#            future (upgraded by its image hash)
#   cli      otaupd on a port in use, an empty port, port 0 (the listen
#            line names the port; a terminal upgraded through it), its log
#            on a full device and on a closed descriptor (still serving, the
#            registry intact), a registry in a missing directory;
#            otaupctl with the daemon down; otaup-term against an HTTP
#            server, a mute listener, one that closes at once and one that
#            sends random bytes: exit 1 in bounded time, flash unchanged
#
# Each check prints PASS or FAIL; the summary gives the counts. The exit
# code is the number of failed checks. Knobs: SYS3_ONLY (one scenario),
# SYS3_PORT (first port; default: a free-looking one from 21000),
# SYS3_KEEP=1 keeps the scratch directory. Needs python3 (sqlite3 module)
# for the lock and the damage. Use a sanitizer build to have the daemons'
# logs searched for reports. Not part of ctest.
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$(cd "${1:-$SRC/build/dev}" 2>/dev/null && pwd)" || { echo "sys3.sh: no build directory ${1:-}" >&2; exit 2; }
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
T="$BUILD/examples/otaup-term/otaup-term"
for p in "$D" "$C" "$T"; do
    [ -x "$p" ] || { echo "sys3.sh: $p missing: build first" >&2; exit 2; }
done
command -v python3 >/dev/null || { echo "sys3.sh: python3 needed" >&2; exit 2; }
ONLY="${SYS3_ONLY:-}"
PORT="${SYS3_PORT:-$((21000 + $$ % 4000))}"
WORK="$(mktemp -d /tmp/otaup-sys3-XXXXXX)"
chmod 0755 "$WORK"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
FAILS=0 CHECKS=0 DPID="" SCEN=""
T0=$(date +%s)
FW="$SRC/tests/vectors/firmware"
V1="$FW/fw-v1.bin" V2="$FW/fw-v2.bin"
BT1=2026-01-01 BT2=2026-02-01
N2=$(stat -c %s "$V2")

cleanup() {
    [ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    local j
    for j in $(jobs -p); do kill -KILL "$j" 2>/dev/null; done
    if [ "${SYS3_KEEP:-0}" = 1 ]; then echo "scratch: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

check() { # description, command...
    local what=$1; shift
    CHECKS=$((CHECKS + 1))
    if "$@" >/dev/null 2>&1; then
        echo "  PASS: $SCEN: $what"
        return 0
    fi
    FAILS=$((FAILS + 1))
    echo "  FAIL: $SCEN: $what (scenario dir $DIR; SYS3_KEEP=1 SYS3_ONLY=${SCEN%%-*} $0 $BUILD)"
    return 1
}
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
free_port() { # the next port nobody listens on
    PORT=$((PORT + 1))
    while ss -ltn 2>/dev/null | grep -q ":$PORT\b"; do PORT=$((PORT + 1)); done
}
new_scen() { # name [no-release]
    SCEN=$1
    free_port
    DIR="$WORK/$1"
    mkdir -p "$DIR"
    chmod 0755 "$DIR"
    cd "$DIR" || exit 2
    export OTAUP_DB="$DIR/r.db"
    [ -n "${2:-}" ] || $C release add --model M1 --version 1.0 --build-time $BT1 "$V1" >/dev/null
}
listens() { local n; n=$(grep -c "event=listen" "$DIR/d.log" 2>/dev/null); echo "${n:-0}"; }
dstart() {
    local n0
    n0=$(listens)
    $D --db "$OTAUP_DB" --listen 127.0.0.1:$PORT ${DAUTO-"--auto-request"} "$@" >>"$DIR/d.log" 2>&1 &
    DPID=$!
    for _ in $(seq 100); do
        [ "$(listens)" -gt "$n0" ] && return 0
        kill -0 "$DPID" 2>/dev/null || break
        sleep 0.05
    done
    echo "  otaupd did not start ($SCEN)"
    return 1
}
dkill() { # signal
    [ -n "$DPID" ] || return 0
    kill -"${1:-TERM}" "$DPID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=""
}
alive() { [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; }
mkterm() { # flash id [options]
    local f=$1 id=$2; shift 2
    $T --flash "$f" --init "$V1" --id "$id" --model M1 --version 1.0 --build-time $BT1 --quiet "$@" && cp "$f" "$f.orig"
}
run_term() { # flash [options]: bounded
    local f=$1; shift
    timeout 120 $T --flash "$f" --connect 127.0.0.1:$PORT --timeout 100 --reconnect 5 --report "$f.rep" \
        --quiet "$@" >>"$f.out" 2>&1
}
rep() { sed -n "s/^$2=//p" "$1.rep" 2>/dev/null; }
is_v2() { cmp -s -n "$N2" "$1" "$V2"; }
unchanged() { cmp -s "$1" "$1.orig"; }
upgraded() { # flash id
    is_v2 "$1" && [ "$(rep "$1" version)/$(rep "$1" user_intact)" = "2.0/1" ] &&
        $C status "$2" | grep -q "state upgraded"
}
no_backups() { $C backups | grep -q "^0 backups held"; }
no_sanitizer() { ! grep -q "AddressSanitizer\|runtime error\|LeakSanitizer" "$DIR"/*.log 2>/dev/null; }
dlog() { grep -q "$1" "$DIR/d.log"; }
finish() {
    check "daemon alive" alive
    dkill TERM
    check "no sanitizer report" no_sanitizer
}
# python3 on the registry: damage(what) and a lock holder
py_damage() { # what: delta | deltacut | image:ID
    python3 - "$OTAUP_DB" "$1" <<'EOF'
import sqlite3, sys
db, what = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db)
if what in ("delta", "deltacut"):
    rows = c.execute("select rowid, delta from deltas").fetchall()
    assert rows, "no stored delta"
    for rid, d in rows:
        d = bytearray(d)
        if what == "delta":
            d[len(d) - len(d) // 4] ^= 0x10
        else:
            d = d[: len(d) // 2]
        c.execute("update deltas set delta=? where rowid=?", (bytes(d), rid))
else:
    # before any delta is planned from it or to it (a delta stored while
    # the image was good still leads to the image published)
    c.execute("delete from deltas")
    rid = int(what.split(":")[1])
    (img,), = c.execute("select image from releases where id=?", (rid,)).fetchall()
    img = bytearray(img)
    img[len(img) // 3] ^= 0x01
    c.execute("update releases set image=? where id=?", (bytes(img), rid))
c.commit()
EOF
}
lock_for() { # seconds: holds the write lock; returns once it is held
    rm -f "$DIR/locked"
    python3 - "$OTAUP_DB" "$1" "$DIR/locked" <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
c.execute("insert into audit(time, terminal, event, detail) values(0, '-', 'lock', 'held by sys3.sh')")
open(sys.argv[3], "w").write("1")
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
EOF
    LPID=$!
    for _ in $(seq 100); do [ -e "$DIR/locked" ] && return 0; sleep 0.1; done
    return 1
}
elapsed_le() { # max seconds, command...: runs it, succeeds if it took at most max
    local max=$1 s e; shift
    s=$(date +%s)
    "$@"
    e=$(date +%s)
    [ $((e - s)) -le "$max" ]
}
# a command's exit code is $1 and it took at most $2 s (killed a little later:
# bounded); its output goes to $DIR/out
exits() { # code max-seconds command...
    local want=$1 max=$2 rc s; shift 2
    s=$(date +%s)
    timeout -k 2 $((max + 5)) "$@" >"$DIR/out" 2>&1
    rc=$?
    [ "$rc" = "$want" ] && [ $(($(date +%s) - s)) -le "$max" ]
}
said() { grep -q "$1" "$DIR/out"; }

# ---- dbfile: the registry file damaged or odd -----------------------------------------------
if want dbfile; then
    new_scen dbfile
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    : >empty.db
    check "empty file: otaupctl releases exits 1" exits 1 10 $C --db empty.db releases
    check "empty file: says it is empty" said "empty (0 bytes)"
    check "empty file: left empty" test "$(stat -c %s empty.db)" = 0
    cp r.db cut.db
    truncate -s $(($(stat -c %s r.db) / 3)) cut.db
    sum=$(cksum <cut.db)
    check "cut short: otaupctl releases exits 1" exits 1 10 $C --db cut.db releases
    check "cut short: says malformed" said "malformed"
    check "cut short: otaupd exits 1" exits 1 15 $D --db cut.db --listen 127.0.0.1:$PORT
    check "cut short: file untouched" test "$(cksum <cut.db)" = "$sum"
    # pages in the middle overwritten (the header and schema page intact)
    cp r.db mid.db
    python3 - mid.db <<'EOF'
import os, sys
f = open(sys.argv[1], "r+b")
n = os.path.getsize(sys.argv[1])
f.seek(4096 * 2)
f.write(os.urandom(max(0, n - 4096 * 4)))
EOF
    sum=$(cksum <mid.db)
    exits 1 10 $C --db mid.db releases
    check "overwritten middle: otaupctl releases ends (0 or 1), no crash" test $? -le 1
    check "overwritten middle: otaupctl terminals ends (0 or 1)" bash -c "timeout 10 $C --db mid.db terminals >/dev/null 2>&1; [ \$? -le 1 ]"
    # not under timeout(1): one SIGTERM only (a second one arriving while a
    # sanitizer build runs its exit-time leak check can hang that check)
    $D --db mid.db --listen 127.0.0.1:$PORT --quiet >mid.log 2>&1 &
    MP=$!
    sleep 1
    if kill -0 $MP 2>/dev/null; then
        # it opened: a terminal's session fails cleanly, nothing written to it
        mkterm mid.flash MID
        timeout 60 $T --flash mid.flash --connect 127.0.0.1:$PORT --timeout 20 --reconnect 0 --quiet >mid.out 2>&1
        rc=$?
        check "overwritten middle: terminal ends in bounded time (rc $rc)" test $rc -le 1
        check "overwritten middle: its flash is the old image or the new one" bash -c "cmp -s mid.flash mid.flash.orig || cmp -s -n $N2 mid.flash '$V2'"
    fi
    kill -TERM $MP 2>/dev/null
    for _ in $(seq 200); do kill -0 $MP 2>/dev/null || break; sleep 0.05; done
    check "overwritten middle: otaupd ends within 10 s of SIGTERM" bash -c "! kill -0 $MP"
    kill -KILL $MP 2>/dev/null
    wait $MP 2>/dev/null
    check "overwritten middle: no crash, no sanitizer report" bash -c "! grep -q 'Sanitizer\|runtime error' mid.log"
    mkdir dir.db
    check "a directory: otaupctl exits 1" exits 1 10 $C --db dir.db releases
    check "a directory: says it cannot open" said "unable to open"
    check "a directory: otaupd exits 1" exits 1 10 $D --db dir.db --listen 127.0.0.1:$PORT
    # garbage -wal and -shm beside a good registry: ignored, nothing lost
    cp r.db g.db
    head -c 10000 /dev/urandom >g.db-wal
    head -c 32768 /dev/urandom >g.db-shm
    check "garbage -wal/-shm: otaupctl lists both releases" bash -c "timeout 10 $C --db g.db releases | grep -c '^[12] ' | grep -qx 2"
    # a copy of the registry taken while it was written (main file + -wal, as after a crash)
    dstart || true
    mkterm c.flash CR1
    run_term c.flash
    cp r.db crash.db
    [ -e r.db-wal ] && cp r.db-wal crash.db-wal
    check "copy mid-write: its -wal replayed, the terminal known" bash -c "timeout 10 $C --db crash.db status CR1 | grep -q 'state upgraded'"
    check "copy mid-write: the upgrade it recorded" upgraded c.flash CR1
    if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
        # a registry in a directory its user cannot write (WAL needs its -shm there)
        mkdir ro && cp r.db ro/r.db && chmod 0755 ro && chmod 0644 ro/r.db
        rm -f ro/r.db-wal ro/r.db-shm
        NOB=(setpriv --reuid=65534 --regid=65534 --clear-groups)
        check "read-only dir: otaupctl releases (as nobody) exits 1" exits 1 15 "${NOB[@]}" $C --db ro/r.db releases
        check "read-only dir: says why" bash -c "grep -qi 'readonly\|read-only\|unable to open\|denied' '$DIR/out'"
        check "read-only dir: otaupd (as nobody) exits 1" exits 1 15 "${NOB[@]}" $D --db ro/r.db --key r.db.key --listen 127.0.0.1:$PORT
        check "read-only dir: registry unchanged" cmp -s r.db ro/r.db
    fi
    finish
fi

# ---- lock: another process holds the registry's write lock ---------------------------------
if want lock; then
    new_scen lock
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    dstart
    mkterm l1.flash LK1 --user-size 32768
    mkterm l2.flash LK2
    lock_for 20 || echo "  (lock not taken)"
    # the terminals first: their registry writes meet the lock (5 s busy timeout)
    run_term l1.flash --frame 128 --window 2 --reconnect 20 &
    P1=$!
    run_term l2.flash --reconnect 20 &
    P2=$!
    check "locked: otaupctl release add refused within 10 s" exits 1 10 $C release add --model M1 --version 3.0 --build-time 2026-03-01 "$V1" --allow-duplicate
    check "locked: says locked" said "locked"
    check "locked: otaupctl releases reads at once" exits 0 3 $C releases
    check "locked: otaupctl status reads at once" exits 1 3 $C status LK1 # its INFO waits for the lock
    check "locked: status says unknown, not locked" said "no terminal"
    wait $P1
    r1=$?
    wait $P2
    r2=$?
    wait $LPID 2>/dev/null
    check "terminal 1 upgraded after the lock (rc $r1)" test $r1 = 0
    check "terminal 1: flash, data, registry" upgraded l1.flash LK1
    check "terminal 2 upgraded after the lock (rc $r2)" test $r2 = 0
    check "terminal 2: flash, data, registry" upgraded l2.flash LK2
    check "daemon log names the lock" dlog "database is locked"
    check "release 3.0 not half-published" bash -c "! $C releases | grep -q ' 3.0 '"
    check "no backup left" no_backups
    finish
fi

# ---- store: the registry's stored deltas and images damaged at rest -------------------------
store_case() { # name damage expect(up|refused) [term options]
    local name=$1 dmg=$2 exp=$3; shift 3
    new_scen "store-$name"
    dstart
    mkterm s.flash S1
    run_term s.flash # known at 1.0 (up to date): the release below is precomputed for it
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    py_damage "$dmg"
    run_term s.flash "$@"
    rc=$?
    if [ "$exp" = up ]; then
        check "$dmg: terminal upgraded (rc $rc)" test $rc = 0
        check "$dmg: flash, data, registry" upgraded s.flash S1
    else
        check "$dmg: terminal refused (rc $rc)" test $rc = 1
        check "$dmg: flash untouched" unchanged s.flash
        check "$dmg: the log names the damaged release" dlog "copy of the target image (release 2) is damaged"
        check "$dmg: otaup-term says why" grep -q "OTAUP_E_HASH" s.flash.out
    fi
    check "$dmg: no backup left" no_backups
    finish
}
if want store; then
    store_case delta delta up
    check "delta: audit says planned again" bash -c "$C audit --terminal S1 | grep -q 'failed its check'"
    store_case deltacut deltacut up
    store_case target image:2 refused
    store_case source image:1 up
    check "source: audit says planned from the signature" bash -c "$C audit --terminal S1 | grep -q 'planned from the terminal'"
    # in place, cut off mid-transfer, the delta damaged meanwhile, the daemon restarted
    new_scen store-resume
    dstart
    mkterm r.flash RS1
    run_term r.flash
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    run_term r.flash --frame 128 --window 2 --cut-after 6
    rc=$?
    check "resume: power cut mid-transfer (rc $rc)" test $rc = 3
    dkill TERM
    py_damage delta
    dstart
    run_term r.flash
    rc=$?
    check "resume: terminal upgraded after the delta was damaged (rc $rc)" test $rc = 0
    check "resume: flash, data, registry" upgraded r.flash RS1
    check "no backup left" no_backups
    finish
    # the backup damaged while a session cut off mid-transfer waits: its
    # terminal's data are intact, the commit needs no restore from it
    new_scen store-backup
    dstart
    mkterm b.flash BK1
    run_term b.flash
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    run_term b.flash --frame 128 --window 2 --cut-after 6
    rc=$?
    check "backup: power cut mid-transfer (rc $rc)" test $rc = 3
    check "backup: held" bash -c "$C backups | grep -q '^1 backups held'"
    python3 -c "
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for t, r, b in c.execute('select terminal, region, sealed from backups').fetchall():
    b = bytearray(b); b[len(b) // 2] ^= 1
    c.execute('update backups set sealed=? where terminal=? and region=?', (bytes(b), t, r))
c.commit()" "$OTAUP_DB"
    run_term b.flash
    rc=$?
    check "backup: resumed and committed without it (rc $rc)" test $rc = 0
    check "backup: flash, data, registry" upgraded b.flash BK1
    check "no backup left" no_backups
    finish
fi

# ---- clock: build times out of range --------------------------------------------------------
if want clock; then
    new_scen clock
    check "build time in ms refused (usage 2)" exits 2 5 $C release add --model M1 --version 2.0 --build-time 1769904000000 "$V2"
    check "says milliseconds" said "milliseconds"
    check "build time 2^63-1 refused" exits 2 5 $C release add --model M1 --version 2.0 --build-time 9223372036854775807 "$V2"
    check "9999-12-31T23:59:59 taken" exits 0 5 $C release add --model M1 --version 2.0 --build-time 9999-12-31T23:59:59 "$V2"
    check "nothing published by the refusals" bash -c "[ \$($C releases | grep -c '^[0-9]') = 2 ]"
    # a build time stored by another program beyond what a date shows
    python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('update releases set build_time=9223372036854775807 where id=2'); c.commit()" "$OTAUP_DB"
    check "releases prints it as the number" bash -c "$C releases | grep -q '9223372036854775807 s'"
    check "releases twice the same (nothing uninitialised)" bash -c "[ \"\$($C releases)\" = \"\$($C releases)\" ]"
    dstart
    # a terminal built in the future, whose version says 1.0: its image hash decides
    $T --flash f.flash --init "$V1" --id FUT --model M1 --version 1.0 --build-time 4102444800 --quiet && cp f.flash f.flash.orig
    run_term f.flash
    rc=$?
    check "terminal built in 2100: upgraded (rc $rc)" test $rc = 0
    check "terminal built in 2100: flash, data, registry" upgraded f.flash FUT
    finish
fi

# ---- cli: ports, logs, peers that are not otaup -------------------------------------------
if want cli; then
    new_scen cli
    $C release add --model M1 --version 2.0 --build-time $BT2 "$V2" >/dev/null
    dstart
    check "port in use: second otaupd exits 1" exits 1 10 $D --db other.db --listen 127.0.0.1:$PORT
    check "port in use: says so" said "Address already in use"
    check "port in use: the first one alive" alive
    check "empty port: usage 2" exits 2 5 $D --db other.db --listen 127.0.0.1:
    check "port 99999: usage 2" exits 2 5 $D --db other.db --listen 127.0.0.1:99999
    check "address not on this host: exit 1" exits 1 10 $D --db other.db --listen 192.0.2.1:$PORT
    check "registry in a missing directory: exit 1" exits 1 10 $D --db nodir/r.db --listen 127.0.0.1:$PORT
    dkill TERM
    # port 0: the listen line names the port; a terminal upgraded through it
    $D --db "$OTAUP_DB" --listen 127.0.0.1:0 --auto-request >>z.log 2>&1 &
    DPID=$!
    zp=""
    for _ in $(seq 100); do
        zp=$(sed -n 's/.*event=listen addr=127\.0\.0\.1:\([0-9]*\) .*/\1/p' z.log | head -n 1)
        [ -n "$zp" ] && break
        sleep 0.05
    done
    check "port 0: listen line names a port ($zp)" test -n "$zp" -a "${zp:-0}" != 0
    mkterm z.flash Z1
    timeout 60 $T --flash z.flash --connect 127.0.0.1:${zp:-1} --timeout 40 --reconnect 2 --report z.flash.rep --quiet >z.out 2>&1
    check "port 0: terminal upgraded through it" upgraded z.flash Z1
    dkill TERM
    # the log on a full device, then on a closed descriptor
    free_port
    $D --db "$OTAUP_DB" --listen 127.0.0.1:$PORT --auto-request 2>/dev/full &
    DPID=$!
    sleep 0.5
    mkterm full.flash FULL1
    run_term full.flash
    check "log on /dev/full: terminal upgraded" upgraded full.flash FULL1
    check "log on /dev/full: daemon alive" alive
    dkill TERM
    free_port
    $D --db "$OTAUP_DB" --listen 127.0.0.1:$PORT --auto-request 2>&- &
    DPID=$!
    sleep 0.5
    mkterm cl.flash CL1
    run_term cl.flash
    check "log closed: terminal upgraded" upgraded cl.flash CL1
    check "log closed: daemon alive" alive
    dkill TERM
    check "registry intact after both" bash -c "timeout 10 $C terminals | grep -c upgraded | grep -qx 3"
    check "registry integrity_check ok" bash -c "python3 -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('pragma integrity_check').fetchone()[0])\" '$OTAUP_DB' | grep -qx ok"
    # otaupctl needs no daemon: a request recorded while it is down is served at its start
    mkterm dn.flash DN1
    free_port
    DAUTO="" dstart
    run_term dn.flash --timeout 5 --reconnect 0 # known at 1.0, waiting for a request
    dkill TERM
    check "daemon down: nothing upgraded without the request" unchanged dn.flash
    check "daemon down: otaupctl request works" exits 0 10 $C request DN1
    dstart
    run_term dn.flash
    check "daemon down: the request served after its start" upgraded dn.flash DN1
    dkill TERM
    # peers that are not otaup
    mkterm p.flash P1
    free_port
    python3 -m http.server $PORT --bind 127.0.0.1 >http.log 2>&1 &
    HP=$!
    for _ in $(seq 50); do ss -ltn | grep -q ":$PORT\b" && break; sleep 0.1; done
    check "HTTP server: otaup-term exits 1 within 60 s" exits 1 60 $T --flash p.flash --connect 127.0.0.1:$PORT --reconnect 1 --timeout 30 --quiet
    check "HTTP server: flash unchanged" unchanged p.flash
    kill $HP 2>/dev/null; wait $HP 2>/dev/null
    peer() { # mode: mute | close | random
        python3 - "$PORT" "$1" <<'EOF' &
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
s.settimeout(0.5)
held, end = [], time.time() + 45
while time.time() < end:
    try:
        c, _ = s.accept()
    except OSError:
        continue
    if sys.argv[2] == "close":
        c.close()
    elif sys.argv[2] == "random":
        try:
            c.settimeout(2)
            for _ in range(200):
                c.sendall(os.urandom(512))
                time.sleep(0.05)
        except OSError:
            pass
        c.close()
    else:
        held.append(c)
EOF
        PP=$!
        for _ in $(seq 50); do ss -ltn | grep -q ":$PORT\b" && break; sleep 0.1; done
    }
    for mode in mute close random; do
        free_port
        peer $mode
        check "$mode peer: otaup-term exits 1 within 40 s" exits 1 40 $T --flash p.flash --connect 127.0.0.1:$PORT --reconnect 1 --timeout 15 --quiet
        check "$mode peer: flash unchanged" unchanged p.flash
        kill $PP 2>/dev/null; wait $PP 2>/dev/null
    done
    check "nobody listening: otaup-term exits 1 within 10 s" exits 1 10 $T --flash p.flash --connect 127.0.0.1:$PORT --reconnect 0 --quiet
    DPID=""
    check "no sanitizer report" no_sanitizer
fi

echo "sys3: $CHECKS checks, $FAILS failed, $(($(date +%s) - T0)) s"
exit $((FAILS > 125 ? 125 : FAILS))
