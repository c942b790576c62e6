#!/usr/bin/env bash
# otaup demo: one over-the-air upgrade of a simulated terminal, end to end.
#
#   examples/demo.sh
#
# On a fresh Debian machine, as root, it installs what is missing
# (apt-get), builds otaup, then plays the seed's method with the real
# programs:
#
#   otaupd      the upgrade server, with a new SQLite registry (the user database)
#   otaupctl    the operator / customer centre: publishes 1.0 and 2.0, sends the
#               text message, takes the user's request, shows the audit log
#   otaup-term  a terminal running 1.0 of the example Cortex-M4 firmware on a
#               simulated NOR flash, with the user's personal data
#
# The upgrade is signed: the manufacturer makes a signing key (otaup
# keygen), 2.0 is published with its delta signed (otaupctl release add
# --sign), and the terminal trusts only that key (otaup-term --pub
# --require-signed): it verifies the signature before writing anything.
#
# It prints what the upgrade cost against rewriting the whole image, then
# checks: the terminal's image is now 2.0 byte for byte, the signature
# verified, its personal data are intact, the backup is gone from the
# registry, and a terminal trusting another key refuses the update with
# nothing written. It exits non-zero if any of that is not so.
#
# Environment: OTAUP_DEMO_BUILD (build directory, default build/demo),
# OTAUP_DEMO_PORT (default 7071), OTAUP_DEMO_BAUD (the slow link of the
# estimate, default 9600 bit/s), OTAUP_DEMO_FIRMWARE=build to rebuild the
# firmware pair with examples/firmware/build.sh (needs gcc-arm-none-eabi
# and a zlib source tree) instead of using the prebuilt pair in
# tests/vectors/firmware/ (the same build's output).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${OTAUP_DEMO_BUILD:-$SRC/build/demo}"
PORT="${OTAUP_DEMO_PORT:-7071}"
BAUD="${OTAUP_DEMO_BAUD:-9600}"
WORK="$(mktemp -d /tmp/otaup-demo-XXXXXX)"
DAEMON_PID=""
FAIL=0

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
cleanup() {
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# ---- 1. what is missing --------------------------------------------------------
PKGS=(build-essential cmake pkg-config zlib1g-dev libxxhash-dev libsqlite3-dev libmbedtls-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "run as root to install: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- 2. build ----------------------------------------------------------------------
say "building otaup ($BUILD)"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTAUP_BUILD_TESTS=OFF \
      -DOTAUP_BUILD_BENCH=OFF >/dev/null
cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target otaupd otaupctl otaup-term otaup_cli >/dev/null
D="$BUILD/examples/otaupd/otaupd"
C="$BUILD/examples/otaupctl/otaupctl"
T="$BUILD/examples/otaup-term/otaup-term"
O="$BUILD/examples/otaup/otaup"
T_START=$(date +%s)

# ---- 3. two versions of the example Cortex-M4 firmware ------------------------------
V1="$SRC/tests/vectors/firmware/fw-v1.bin"
V2="$SRC/tests/vectors/firmware/fw-v2.bin"
if [ "${OTAUP_DEMO_FIRMWARE:-}" = build ]; then
    say "building the firmware pair (examples/firmware/build.sh)"
    zsrc="$("$SRC/tests/fetch-zlib-source.sh" "$BUILD/zlib-src")"
    FW_VERSION=1 "$SRC/examples/firmware/build.sh" "$WORK/fw" "$zsrc" >/dev/null
    FW_VERSION=2 "$SRC/examples/firmware/build.sh" "$WORK/fw" "$zsrc" >/dev/null
    V1="$WORK/fw/firmware-v1.bin"
    V2="$WORK/fw/firmware-v2.bin"
fi
[ -s "$V1" ] && [ -s "$V2" ] || die "firmware images missing ($V1, $V2)"
S1=$(stat -c %s "$V1")
S2=$(stat -c %s "$V2")
echo "firmware 1.0: $S1 bytes, 2.0: $S2 bytes (Cortex-M4 application, same sources, version 1 and 2)"

cd "$WORK"
export OTAUP_DB="$WORK/registry.db"

# ---- 4. the server and the user database --------------------------------------------
say "otaupd: the upgrade server, with a new SQLite registry"
"$C" release add --model OTA-M4 --version 1.0 --build-time 2026-01-10 "$V1" | sed 's/^/  /'
"$D" --db "$OTAUP_DB" --listen "127.0.0.1:$PORT" >"$WORK/otaupd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 50); do
    grep -q "event=listen" "$WORK/otaupd.log" 2>/dev/null && break
    kill -0 "$DAEMON_PID" 2>/dev/null || {
        cat "$WORK/otaupd.log"
        die "otaupd did not start (port $PORT in use? OTAUP_DEMO_PORT chooses another)"
    }
    sleep 0.1
done
grep -q "event=listen" "$WORK/otaupd.log" 2>/dev/null || {
    cat "$WORK/otaupd.log"
    die "otaupd runs but did not say it listens within 5 s"
}
echo "  listening on 127.0.0.1:$PORT (log: $WORK/otaupd.log)"

say "the manufacturer's signing key (its public half is built into the terminals)"
"$O" keygen -o release.key >keygen.out
sed 's/^/  /' keygen.out
KEYID=$(sed -n 's/^key id: *//p' keygen.out)
echo "  the private key stays with the manufacturer: otaupd never gets it"

say "a terminal in the field: OTA-M4 'T-0001' runs 1.0, with its owner's personal data"
"$T" --flash t1.flash --init "$V1" --id T-0001 --model OTA-M4 --version 1.0 \
     --build-time "$(date -u -d 2026-01-10 +%s)" --slot-size 65536 | sed 's/^/  /'
echo "  it reports its software version and build time to the server:"
"$T" --flash t1.flash --connect "127.0.0.1:$PORT" --pub release.key.pub --require-signed --quiet | sed 's/^/  /'

say "the manufacturer publishes 2.0; the difference is analysed ahead of time and signed"
"$C" release add --model OTA-M4 --version 2.0 --build-time 2026-03-01 --sign release.key --counter 1 "$V2" |
    sed 's/^/  /'

say "the user is told by text message"
"$C" notify | sed 's/^/  /'

say "the terminal connects; the user calls the customer centre and asks for the upgrade"
"$T" --flash t1.flash --connect "127.0.0.1:$PORT" --report t1.report --damage-user-data \
     --pub release.key.pub --require-signed --timeout 60 >"$WORK/term.out" 2>"$WORK/term.err" &
TERM_PID=$!
for _ in $(seq 50); do
    grep -q "event=notify\|event=info.*T-0001" "$WORK/otaupd.log" && break
    sleep 0.1
done
sleep 0.5
"$C" request T-0001 | sed "s/^/  /"
wait "$TERM_PID" || FAIL=1
sed 's/^/  /' "$WORK/term.out"
echo "  (this demo's 2.0 'migrates' the user's data and damages it, so the server must restore it)"

say "what the server did (otaupd log)"
grep "terminal=T-0001" "$WORK/otaupd.log" | grep -v "event=accept\|event=close" |
    sed 's/^ts=[^ ]* level=[a-z]* terminal=T-0001 /  /' | tail -n 14

say "audit log and backups in the registry"
"$C" audit --terminal T-0001 | tail -n 10 | sed 's/^/  /'
"$C" backups | sed 's/^/  /'
T_END=$(date +%s)

# ---- 5. the figures and the checks ----------------------------------------------------
[ -f t1.report ] || die "the terminal wrote no report"
get() { sed -n "s/^$1=//p" t1.report; }
RX=$(( $(get bytes_rx) - $(get restore_rx) )); RESTORED=$(get restore_rx); SIZE=$(get image_size); ER=$(get sectors_erased); IS=$(get image_sectors)
SLOTS=$(get slot_sectors); FUS=$(get flash_us); FULLUS=$(get full_flash_us); INTACT=$(get user_intact)
say "result"
awk -v rx="$RX" -v rs="$RESTORED" -v size="$SIZE" -v er="$ER" -v is="$IS" -v slots="$SLOTS" -v fus="$FUS" \
    -v full="$FULLUS" -v baud="$BAUD" 'BEGIN {
    # a slow link: 10 bits per byte on the wire (serial framing)
    up = rx * 10 / baud + fus / 1e6
    rw = size * 10 / baud + full / 1e6
    printf "  bytes sent to the terminal : %8d  vs the full image %d bytes (%.1f %%, every message included)\n", rx, size, 100 * rx / size
    printf "                               + %d bytes: its own personal data, restored\n", rs
    printf "  sectors erased             : %8d  of the %d sectors the image occupies (%d in its slot)\n", er, is, slots
    printf "  time on a %d bit/s link   : %7.1f s  vs %.1f s to send and rewrite the whole image (%.1fx faster)\n", baud, up, rw, rw / up
}'
fail() { printf '  FAIL: %s\n' "$*"; FAIL=1; }
ok() { printf '  ok:   %s\n' "$*"; }
if cmp -s -n "$S2" t1.flash "$V2" && [ "$(get version)" = 2.0 ] && [ "$(get result)" = 0 ]; then
    ok "the terminal's image is now 2.0, byte for byte ($S2 bytes at the start of its flash)"
else
    fail "the terminal's image is not 2.0"
fi
if [ "$INTACT" = 1 ] && grep -aq "contact;Kim Min-jun" t1.flash; then
    ok "its personal data are intact (restored from the encrypted backup after the damage)"
else
    fail "its personal data are not intact"
fi
if "$C" backups | grep -q "T-0001"; then
    fail "the registry still holds a backup of T-0001"
elif "$C" audit --terminal T-0001 | grep -q "backup-deleted"; then
    ok "the backup is gone from the registry (deleted irreversibly; the audit log says so)"
else
    fail "no record of the backup's deletion"
fi
if grep -q "event=restore.*region=0" "$WORK/otaupd.log"; then
    ok "the damaged user data were restored"
else
    fail "no restore happened"
fi
if [ "$(get signed)" = 1 ] && [ -n "$KEYID" ] && [ "$(get signer)" = "$KEYID" ] && [ "$(get security_counter)" = 1 ]; then
    ok "the signature verified: 2.0 signed by key $KEYID, checked by the terminal before its first flash write"
else
    fail "the terminal did not verify the manufacturer's signature"
fi

say "a terminal that trusts another key refuses the update"
"$O" keygen -o other.key >/dev/null
"$T" --flash t2.flash --init "$V1" --id T-0002 --model OTA-M4 --version 1.0 \
     --build-time "$(date -u -d 2026-01-10 +%s)" --slot-size 65536 --quiet
cp t2.flash t2.before
RC2=0
"$T" --flash t2.flash --connect "127.0.0.1:$PORT" --accept --pub other.key.pub --require-signed \
     --report t2.report --timeout 60 >"$WORK/term2.out" 2>&1 || RC2=$?
grep "REFUSED" "$WORK/term2.out" | sed 's/^/  /' || true
if [ "$RC2" -ne 0 ] && [ "$(sed -n 's/^refused=//p' t2.report)" != 0 ] && cmp -s t2.flash t2.before &&
   "$C" audit --terminal T-0002 | grep -q "refused the update before any flash write"; then
    ok "T-0002 refused it: nothing written to its flash, the server logged the refusal"
else
    fail "a terminal trusting another key did not refuse the update cleanly"
fi
echo "  (demo ran $((T_END - T_START)) s after the build; files in $WORK)"
if [ "$FAIL" -ne 0 ]; then
    echo "demo: FAILED" >&2
    exit 1
fi
echo "demo: all checks passed"
