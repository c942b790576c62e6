#!/usr/bin/env bash
# bench/delta/sectors.sh — what the flash's sector size costs in delta size.
#
#   bench/delta/sectors.sh [--otaup PATH] [--data DIR] [--build DIR] [--quick]
#
# For every pair of the delta benchmark (bench/delta/fetch.sh: real
# consecutive releases, and the example Cortex-M firmware), makes otaup's
# in-place and A/B deltas on four flashes and prints their sizes as a
# Markdown table, beside bsdiff's patch of the same pair (which knows no
# sectors: the reference for what the changes themselves cost):
#
#   4K      uniform 4 KiB sectors                       --sector-size 4096
#   64K     uniform 64 KiB sectors                      --sector-size 65536
#   F4      STM32F4-like 4x16K,1x64K,7x128K at 0x08000000, the slot at
#           0x08010000 (a 64 KiB sector, then 128 KiB ones)
#   F4+RAM  F4 with --ram 160K: a staging buffer that holds a whole
#           128 KiB sector
#   F4+scr  F4 with a scratch area in the last 128 KiB sector
#           (--scratch 0x080E0000 --scratch-size 128K): in A/B, steps
#           share a target sector instead of staging all of it
#
# Every delta is made with --ram 65536 (as bench/delta/run.sh) unless the
# column says otherwise. A cell says "does not fit" when the pair's images
# do not fit that flash (a 1 MiB F4 cannot hold two slots of a large
# binary), "needs more --ram" when the staging buffer cannot hold what the
# mode needs (A/B: the part of each target sector the new image occupies),
# "failed" when otaup refused for another reason (the table's footnote
# gives the message). The ratio in brackets is to the same mode's 4K
# delta. It exits 0 when the table is complete (whatever its cells say),
# 2 on a usage or build error.
#
# Why the sizes differ, and what to do about it: docs/porting.md §3.
#
# Options: --otaup PATH (else otaup is built, Release, in --build DIR,
# default build/bench-delta), --data DIR (the pairs' cache, default
# bench/data), --quick (the firmware pairs and the smallest Debian pair).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
OTAUP=""
DATA="$SRC/bench/data"
BUILD="$SRC/build/bench-delta"
QUICK=0
die() { printf 'sectors.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'sectors.sh: %s\n' "$*" >&2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --otaup) shift; OTAUP="${1:-}" ;;
        --data) shift; DATA="${1:-}" ;;
        --build) shift; BUILD="${1:-}" ;;
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
if [ -z "$DATA" ] || [ -z "$BUILD" ]; then die "--data and --build need a directory"; fi
mkdir -p "$DATA" "$BUILD"
if [ -z "$OTAUP" ]; then
    say "building otaup (Release) in $BUILD"
    if ! cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOTAUP_BUILD_TESTS=OFF -DOTAUP_BUILD_BENCH=OFF \
            >"$BUILD/sectors-build.log" 2>&1 ||
        ! cmake --build "$BUILD" --target otaup_cli -j 2 >>"$BUILD/sectors-build.log" 2>&1; then
        die "the otaup build failed (log: $BUILD/sectors-build.log)"
    fi
    OTAUP="$BUILD/examples/otaup/otaup"
fi
[ -x "$OTAUP" ] || die "no otaup executable at $OTAUP"
HAVE_BSDIFF=0
command -v bsdiff >/dev/null && HAVE_BSDIFF=1
[ "$HAVE_BSDIFF" -eq 1 ] || say "bsdiff not installed: its column says n/a (apt-get install bsdiff)"
fetch=(--data "$DATA")
[ "$QUICK" -eq 0 ] || fetch+=(--quick)
"$HERE/fetch.sh" "${fetch[@]}" >&2 || die "fetch.sh failed"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
F4="--sector-map 4x16K,1x64K,7x128K --base 0x08000000 --source 0x08010000"
GEOS=("4K|--sector-size 4096" "64K|--sector-size 65536" "F4|$F4" "F4+RAM|$F4 --ram 163840"
    "F4+scr|$F4 --scratch 0x080E0000 --scratch-size 128K")

# delta size of OLD NEW for MODE and the geometry's options, or a word
cell() { # MODE OPTIONS OLD NEW
    local out
    # shellcheck disable=SC2086
    if out="$(timeout 300 "$OTAUP" delta "$3" "$4" -o "$TMP/p" -q --ram 65536 --mode "$1" $2 2>&1)"; then
        stat -c %s "$TMP/p"
    elif printf '%s' "$out" | grep -q 'must fit the flash'; then
        echo "does not fit"
    elif printf '%s' "$out" | grep -q 'OTAUP_E_LIMIT'; then
        echo "needs more --ram"
    else
        printf -- '- failed: %s %s: %s\n' "$1" "$2" "${out%%$'\n'*}" >>"$TMP/notes"
        echo "failed"
    fi
}

ratio() { # SIZE BASE
    if [[ "$1" =~ ^[0-9]+$ ]] && [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ]; then
        awk -v a="$1" -v b="$2" 'BEGIN { printf " (%.1fx)", a / b }'
    fi
}

printf '| pair | new | bsdiff |'
for mode in inplace ab; do for g in "${GEOS[@]}"; do printf ' %s %s |' "${mode/inplace/in place}" "${g%%|*}"; done; done
printf '\n|---|---:|---:|'
for _ in "${GEOS[@]}" "${GEOS[@]}"; do printf -- '---:|'; done
printf '\n'
n=0
for d in "$DATA"/pairs/*/; do
    name="$(basename "$d")"
    if [ ! -f "$d/old" ] || [ ! -f "$d/new" ]; then continue; fi
    if [ "$QUICK" -eq 1 ] && [ "$(stat -c %s "$d/new")" -gt 300000 ]; then continue; fi
    bs="n/a"
    if [ "$HAVE_BSDIFF" -eq 1 ] && timeout 600 bsdiff "$d/old" "$d/new" "$TMP/b" 2>/dev/null; then
        bs="$(stat -c %s "$TMP/b")"
    fi
    printf '| %s | %s | %s |' "$name" "$(stat -c %s "$d/new")" "$bs"
    for mode in inplace ab; do
        base=""
        for g in "${GEOS[@]}"; do
            s="$(cell "$mode" "${g#*|}" "$d/old" "$d/new")"
            [ -n "$base" ] || base="$s"
            printf ' %s%s |' "$s" "$(ratio "$s" "$base")"
        done
    done
    printf '\n'
    n=$((n + 1))
done
[ "$n" -gt 0 ] || die "no pairs in $DATA/pairs"
[ ! -s "$TMP/notes" ] || { printf '\n'; cat "$TMP/notes"; }
printf '\nDeltas in bytes, --ram 65536 unless F4+RAM (--ram 163840); (Nx): to the same mode on 4 KiB sectors.\n'
