#!/usr/bin/env bash
# bench/load/run.sh — many terminals upgrading through one otaupd.
#
#   bench/load/run.sh [--terminals N] [--build DIR] [--limit S] [--quick]
#
# Builds otaupd, otaupctl and the load generator (Release, in
# build/bench-load unless --build), makes a 48 KiB image and its next
# version (otaup-load --make-images), publishes both in a new registry,
# starts otaupd on loopback with --auto-request, and runs otaup-load:
#
#   1. N terminals (default 1000) at once, 64 kbit/s each, 100 ms RTT:
#      concurrent sessions, memory per session, link utilisation
#   2. N terminals at once, 256 kbit/s each, 100 ms RTT: upgrades per
#      second and CPU per upgrade when the aggregate is 32x larger
#   3. 100 terminals at 256 kbit/s with the terminal's window 8 against
#      window 1 (stop-and-wait): what the window buys on a long link
#
# Each terminal is the real applier on its own simulated flash in RAM; each
# upgrade is checked (image equal to the target, personal data intact).
# Every run is bounded by --limit seconds (default 300). Loopback only.
# Exit 1 if any terminal failed.
set -euo pipefail
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$SRC/build/bench-load"
N=1000
LIMIT=300
while [ $# -gt 0 ]; do
    case "$1" in
        --terminals) N="$2"; shift 2 ;;
        --build) BUILD="$2"; shift 2 ;;
        --limit) LIMIT="$2"; shift 2 ;;
        --quick) N=100; shift ;;
        *) echo "usage: bench/load/run.sh [--terminals N] [--build DIR] [--limit S] [--quick]" >&2; exit 2 ;;
    esac
done
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOTAUP_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target otaupd otaupctl otaup-load >/dev/null
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
L="$BUILD/bench/load/otaup-load"
WORK="$(mktemp -d /tmp/otaup-load-XXXXXX)"
PORT=$((30000 + $$ % 20000))
DPID=""
trap '[ -n "$DPID" ] && kill "$DPID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
"$L" --make-images .
export OTAUP_DB="$WORK/r.db"
"$C" release add --model LOAD-M --version 1.0 --build-time 1000 v1.bin >/dev/null
"$C" release add --model LOAD-M --version 2.0 --build-time 2000 v2.bin >/dev/null
FAIL=0
run() { # title, then otaup-load arguments; a fresh otaupd each time (memory figures)
    local title="$1"; shift
    "$D" --db r.db --listen "127.0.0.1:$PORT" --auto-request --quiet >>daemon.log 2>&1 &
    DPID=$!
    sleep 0.5
    echo "### $title"
    echo '```'
    timeout $((LIMIT + 30)) "$L" --server "127.0.0.1:$PORT" --image v1.bin --target v2.bin --daemon-pid "$DPID" \
        --limit "$LIMIT" "$@" 2>/dev/null || FAIL=1
    echo '```'
    kill -TERM "$DPID"
    wait "$DPID" || FAIL=1
    DPID=""
}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "image: $(stat -c %s v1.bin) bytes -> $(stat -c %s v2.bin) bytes"
run "$N terminals at once, 64 kbit/s, 100 ms RTT" --terminals "$N" --rate 64 --rtt 100 --id-prefix A
run "$N terminals at once, 256 kbit/s, 100 ms RTT" --terminals "$N" --rate 256 --rtt 100 --id-prefix B
run "100 terminals, 256 kbit/s, 100 ms RTT, window 8" --terminals 100 --rate 256 --rtt 100 --window 8 --id-prefix C
run "100 terminals, 256 kbit/s, 100 ms RTT, stop-and-wait (window 1)" --terminals 100 --rate 256 --rtt 100 \
    --window 1 --id-prefix D
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$FAIL"
