#!/usr/bin/env bash
# bench/faults/cut2.sh — power-cut campaign of the terminal side through
# `otaup apply --flash`, on what bench/faults/sweep.sh does not try:
#
#   pairs     real binaries built here (host ELF at -O0 and -O2, two
#             versions of one source at -O2, Cortex-M4 raw images of two
#             versions when arm-none-eabi-gcc is there) and the synthetic
#             kinds of cut2pairs.py (odd sizes, growth/shrink by several
#             sectors, prefixes, last/first byte only, one-byte shift,
#             reversed sectors, all-0xFF/all-0x00 to themselves and each
#             other, half-erased-looking data);
#   settings  write sizes 1..256 with erased 0x00, non-uniform maps with a
#             non-zero base, tiny sectors (256 B..1 KiB) under 30+ KiB
#             images, OLD away from the base, explicit scratch (before the
#             slot), A/B with the new slot before the old one;
#   cuts      every operation (plain and torn) when a delta has at most
#             EVERY operations; otherwise RAND sequences of two or three
#             cuts in a row at random points (each resume cut again, torn
#             at random); --fail-after with --cut-after; --read-fault with
#             and without --flip at READS points, some in a resume.
#
# Every end state is compared byte for byte (cmp) with NEW at the target;
# A/B: the old slot must still hold OLD after every cut; a finished run
# leaves no sidecar. Each failure prints one FAIL line with the commands
# that reproduce it (from a fresh FLASH). Exit 1 if any failed.
#
# Knobs: OTAUP (binary, default build/gcc/examples/otaup/otaup, else
# build/dev/...), OUT (default /tmp/otaup-cut2), SEED (1), SCALE (pair
# size factor, 1), EVERY (cut at every operation of deltas of at most this
# many operations, 16), RAND (multi-cut sequences per delta, 3), FAILS
# (fail+cut runs per delta, 1), READS (faulty-read runs per delta, 2),
# ALL (1: every pair in every setting, not each setting's own list),
# FILTER (grep pattern on "pair.setting"), TIMEOUT (s per command, 60).
# The default run makes about 3500 otaup runs over 12 settings and 20
# pairs (about 100 deltas): some 5 minutes on a free core, half an hour
# or more on a machine whose two cores are busy with builds;
# ALL=1 EVERY=40 RAND=6 FAILS=2 READS=4 takes hours.
#
#   bench/faults/cut2.sh
#   OTAUP=build/asan/examples/otaup/otaup FILTER='elf\|arm' bench/faults/cut2.sh
#   ALL=1 EVERY=40 RAND=6 SEED=7 bench/faults/cut2.sh
set -u
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OTAUP=${OTAUP:-}
if [ -z "$OTAUP" ]; then
    for b in gcc dev; do
        [ -x "$SRC/build/$b/examples/otaup/otaup" ] && { OTAUP="$SRC/build/$b/examples/otaup/otaup"; break; }
    done
fi
OUT=${OUT:-/tmp/otaup-cut2}
SEED=${SEED:-1}
SCALE=${SCALE:-1}
EVERY=${EVERY:-16}
RAND=${RAND:-3}
FAILS=${FAILS:-1}
READS=${READS:-2}
ALL=${ALL:-0}
FILTER=${FILTER:-}
TIMEOUT=${TIMEOUT:-60}
[ -n "$OTAUP" ] && [ -x "$OTAUP" ] || { echo "cut2.sh: otaup not built (set OTAUP)" >&2; exit 2; }
rm -rf "$OUT/w"
mkdir -p "$OUT/w" "$OUT/pairs"
cp "$OTAUP" "$OUT/otaup.bin" && OTAUP="$OUT/otaup.bin"
T0=$(date +%s)
NFAIL=0 NCASE=0 NREF=0 NRUN=0 NEVERY=0 NSEQ=0 NFC=0 NRD=0
FAILF="$OUT/fails.txt"
: >"$FAILF"
RANDOM=$SEED

fail() { NFAIL=$((NFAIL + 1)); echo "FAIL $*" | tee -a "$FAILF"; }
run() { NRUN=$((NRUN + 1)); timeout "$TIMEOUT" "$OTAUP" "$@"; }

# ---- pairs ----------------------------------------------------------------
python3 "$SRC/bench/faults/cut2pairs.py" "$OUT/pairs" "$SEED" "$SCALE" || exit 2
mkprog() { # FILE VERSION: a small C program whose code and tables depend on VERSION
    cat >"$1" <<CEOF
#include <stdio.h>
#include <string.h>
#define V $2
static const unsigned tab[] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9 * V, 3, 2, 3, 8, 4 + V };
struct item { const char *name; unsigned w; };
static const struct item items[] = { {"alpha", 1}, {"beta", 2 * V}, {"gamma", 3},
#if V > 1
    {"delta", 4}, {"epsilon", 5},
#endif
};
static unsigned mix(unsigned h, unsigned x) { h ^= x + 0x9e3779b9u + (h << 6) + (h >> 2); return h * (V + 1u); }
unsigned crc(const char *s) { unsigned c = ~0u; while (*s) { c ^= (unsigned char)*s++; for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & -(c & 1)); } return ~c; }
#if V > 1
static void sort(unsigned *a, int n) { for (int i = 1; i < n; i++) { unsigned x = a[i]; int j = i - 1; while (j >= 0 && a[j] > x) { a[j + 1] = a[j]; j--; } a[j + 1] = x; } }
#endif
int main(int argc, char **argv)
{
    unsigned h = 0, buf[32];
    (void)argv;
    for (unsigned i = 0; i < sizeof tab / sizeof tab[0]; i++) h = mix(h, tab[i]);
    for (unsigned i = 0; i < sizeof items / sizeof items[0]; i++) h = mix(h, crc(items[i].name) + items[i].w);
    for (int i = 0; i < 32; i++) buf[i] = mix(h, (unsigned)(i * argc));
#if V > 1
    sort(buf, 32);
#endif
    printf("%u %u %s\n", h, buf[5], V > 1 ? "v2" : "v1");
    return (int)(h & 1);
}
CEOF
}
P="$OUT/pairs"
mkprog "$OUT/prog1.c" 1
mkprog "$OUT/prog2.c" 2
if mkdir -p "$P/elf_o0_o2" "$P/elf_v1_v2" &&
    gcc -O0 -o "$P/elf_o0_o2/old" "$OUT/prog1.c" && gcc -O2 -o "$P/elf_o0_o2/new" "$OUT/prog1.c" &&
    gcc -O2 -o "$P/elf_v1_v2/old" "$OUT/prog1.c" && gcc -O2 -o "$P/elf_v1_v2/new" "$OUT/prog2.c"; then :; else
    echo "cut2.sh: host gcc failed; no ELF pairs" >&2
    rm -rf "$P/elf_o0_o2" "$P/elf_v1_v2"
fi
if command -v arm-none-eabi-gcc >/dev/null; then
    mkdir -p "$P/arm_v1_v2" "$P/arm_os_o2"
    A="arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb --specs=nosys.specs -Wl,--gc-sections"
    if $A -O2 -o "$OUT/a1.elf" "$OUT/prog1.c" && $A -O2 -o "$OUT/a2.elf" "$OUT/prog2.c" &&
        $A -Os -o "$OUT/a1s.elf" "$OUT/prog1.c"; then
        arm-none-eabi-objcopy -O binary "$OUT/a1.elf" "$P/arm_v1_v2/old"
        arm-none-eabi-objcopy -O binary "$OUT/a2.elf" "$P/arm_v1_v2/new"
        arm-none-eabi-objcopy -O binary "$OUT/a1s.elf" "$P/arm_os_o2/old"
        cp "$P/arm_v1_v2/old" "$P/arm_os_o2/new"
    else
        rm -rf "$P/arm_v1_v2" "$P/arm_os_o2"
    fi
fi

# ---- settings: "label|pairs (glob patterns)|otaup delta options" -------------
SETS=(
    "ip-ws1|elf* arm_v1_v2 odd* prefix* last_byte shift1 ff_ff zz_ff tiny*|"
    "ab-ws2-er0|elf_v1_v2 arm_os_o2 odd_grow3 prefix_new first_byte zz_zz ff_zz sparse tiny_grow|--mode ab --erased 0 --write-size 2"
    "ip-ws4-er0-s1k|elf_o0_o2 arm_v1_v2 odd_edit odd_shrink3 reverse1k zz_zz ff_zz zz_ff sparse|--erased 0x00 --write-size 4 --sector-size 1024"
    "ab-ws8-base|elf* arm* odd* prefix* shift1 sparse|--mode ab --base 0x08000000 --write-size 8 --sector-size 2048"
    "ip-ws16-map-base|elf* arm* odd* reverse1k last_byte tiny*|--sector-map 2x2K,2x4K,1x8K,6x16K --base 0x08000000 --write-size 16"
    "ip-ws32-s256|elf_v1_v2 arm_v1_v2 odd_grow3 reverse1k prefix_old|--sector-size 256 --write-size 32 --ram 12K"
    "ab-ws256-s1k-er0|elf* arm* odd_shrink3 zz_zz ff_zz zz_ff sparse|--mode ab --sector-size 1024 --write-size 256 --erased 0"
    "ip-s512-src|odd* shift1 last_byte first_byte prefix_new|--sector-size 512 --source 0x1000 --write-size 4"
    "ip-scratch-before|elf_v1_v2 odd_edit reverse1k shift1|--sector-size 1024 --source 0x2000 --scratch 0 --scratch-size 0x2000 --write-size 8"
    "ab-new-first|elf_v1_v2 arm_v1_v2 odd_grow3 tiny_shrink|--mode ab --sector-size 1024 --source 0x10000 --target 0 --write-size 4"
    "ip-map-er0-ws8|arm* sparse zz_zz ff_ff odd_shrink3|--sector-map 4x1K,2x8K,3x32K --erased 0 --write-size 8"
    "ip-maxops1-r1|elf_o0_o2 odd_edit|--max-ops 1 --restart-interval 1 --sector-size 1024"
)

base_of() { sed -n 's/.*"geometry":{"base":\([0-9]*\).*/\1/p' "$1"; }
jf() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }
# make_flash F OLD SOFF ERASED
make_flash() {
    rm -f "$1" "$1.otaup-state"
    { [ "$3" -gt 0 ] && head -c "$3" /dev/zero | tr '\0' "\\$(printf %o "$4")"; cat "$2"; } >"$1"
}
# region_is F FILE OFF ERASED: FILE's bytes sit at OFF of F (beyond F: erased)
region_is() {
    local n
    n=$(stat -c %s "$2")
    [ "$n" -eq 0 ] && return 0
    cmp -s <({ tail -c +$(($3 + 1)) "$1"; head -c "$n" /dev/zero | tr '\0' "\\$(printf %o "$4")"; } | head -c "$n") "$2"
}

one() { # pair label opts...
    local pair=$1 label=$2
    shift 2
    local name w d rc ops reads off soff er ab overl f k i j n seq torn out rep
    name=$(basename "$pair")
    w="$OUT/w/$name.$label"
    mkdir -p "$w"
    d="$w/p.delta"
    f="$w/F"
    run delta "$pair/old" "$pair/new" -o "$d" -q "$@" >"$w/delta.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        if [ $rc -eq 1 ] && [ -s "$w/delta.out" ]; then
            NREF=$((NREF + 1))
            echo "refused $name $label: $(head -1 "$w/delta.out")" >>"$OUT/refused.txt"
        else
            fail "$name $label: delta exit $rc: $OTAUP delta $pair/old $pair/new -o $d $*"
        fi
        return
    fi
    NCASE=$((NCASE + 1))
    run inspect --json "$d" >"$w/i.json" 2>&1 || { fail "$name $label: inspect: $OTAUP inspect --json $d"; return; }
    local base
    base=$(base_of "$w/i.json")
    off=$(($(jf "$w/i.json" target_addr) - base))
    soff=$(($(jf "$w/i.json" source_addr) - base))
    er=$(sed -n 's/.*"erased":\([0-9]*\).*/\1/p' "$w/i.json")
    ab=0
    grep -q '"layout":"ab"' "$w/i.json" && ab=1
    local mk="head -c $soff /dev/zero | tr '\\\\0' '\\\\$(printf %o "$er")' > F; cat $pair/old >> F; rm -f F.otaup-state"
    [ "$soff" -eq 0 ] && mk="cp $pair/old F; rm -f F.otaup-state"
    make_flash "$f" "$pair/old" "$soff" "$er"
    run apply --flash "$f" "$d" --stats >"$w/clean.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! region_is "$f" "$pair/new" "$off" "$er" || [ -e "$f.otaup-state" ]; then
        fail "$name $label: clean run exit $rc or target != NEW: $mk; $OTAUP apply --flash F $d"
        return
    fi
    ops=$(sed -n 's/^flash operations: \([0-9]*\).*/\1/p' "$w/clean.out")
    reads=$(sed -n 's/^flash reads: *\([0-9]*\).*/\1/p' "$w/clean.out")
    [ -n "$ops" ] && [ "$ops" -gt 0 ] || return 0
    # check_end REPRO: resume to the end, then NEW at the target, no sidecar
    check_end() {
        run apply --flash "$f" "$d" >"$w/resume.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ] || ! region_is "$f" "$pair/new" "$off" "$er" || [ -e "$f.otaup-state" ]; then
            fail "$name $label: end exit $rc or target != NEW: $1; $OTAUP apply --flash F $d  ($(tail -1 "$w/resume.out"))"
            return 1
        fi
        if [ $ab = 1 ] && ! region_is "$f" "$pair/old" "$soff" "$er"; then
            fail "$name $label: A/B old slot changed: $1; $OTAUP apply --flash F $d"
            return 1
        fi
    }
    # cut_run REPRO ARGS...: one run that may be cut; exit 0 or 3, A/B old slot intact
    cut_run() {
        local r=$1
        shift
        run apply --flash "$f" "$d" "$@" >"$w/cut.out" 2>&1
        rc=$?
        if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
            fail "$name $label: cut run exit $rc: $r  ($(tail -1 "$w/cut.out"))"
            return 1
        fi
        if [ $ab = 1 ] && ! region_is "$f" "$pair/old" "$soff" "$er"; then
            fail "$name $label: A/B old slot changed by a cut: $r"
            return 1
        fi
    }
    if [ "$ops" -le "$EVERY" ]; then
        for k in $(seq 1 "$ops"); do
            for torn in "" "--torn"; do
                NEVERY=$((NEVERY + 1))
                make_flash "$f" "$pair/old" "$soff" "$er"
                rep="$mk; $OTAUP apply --flash F $d --cut-after $k $torn"
                cut_run "$rep" --cut-after "$k" $torn && check_end "$rep"
            done
        done
    fi
    for i in $(seq 1 "$RAND"); do
        NSEQ=$((NSEQ + 1))
        make_flash "$f" "$pair/old" "$soff" "$er"
        rep="$mk"
        n=$((2 + RANDOM % 2))
        for j in $(seq 1 "$n"); do
            k=$((1 + RANDOM % (ops + 2)))
            torn=""
            [ $((RANDOM % 2)) = 1 ] && torn="--torn"
            rep="$rep; $OTAUP apply --flash F $d --cut-after $k $torn"
            cut_run "$rep" --cut-after "$k" $torn || continue 2
        done
        check_end "$rep"
    done
    for i in $(seq 1 "$FAILS"); do
        NFC=$((NFC + 1))
        make_flash "$f" "$pair/old" "$soff" "$er"
        k=$((1 + RANDOM % ops))
        j=$((k + 1 + RANDOM % (ops + 1)))
        torn=""
        [ $((i % 2)) = 0 ] && torn="--torn"
        rep="$mk; $OTAUP apply --flash F $d --fail-after $k --cut-after $j $torn"
        cut_run "$rep" --fail-after "$k" --cut-after "$j" $torn && check_end "$rep"
    done
    [ -n "$reads" ] && [ "$reads" -gt 0 ] || return 0
    for i in $(seq 1 "$READS"); do
        NRD=$((NRD + 1))
        make_flash "$f" "$pair/old" "$soff" "$er"
        rep="$mk"
        if [ $((i % 2)) = 0 ]; then
            k=$((1 + RANDOM % ops))
            rep="$rep; $OTAUP apply --flash F $d --cut-after $k --torn"
            cut_run "$rep" --cut-after "$k" --torn || continue
        fi
        k=$((1 + RANDOM % reads))
        out=""
        [ $((RANDOM % 2)) = 1 ] && out="--flip"
        rep="$rep; $OTAUP apply --flash F $d --read-fault $k $out"
        run apply --flash "$f" "$d" --read-fault "$k" $out >"$w/read.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ] || ! region_is "$f" "$pair/new" "$off" "$er" || [ -e "$f.otaup-state" ]; then
            fail "$name $label: faulty read: exit $rc or target != NEW: $rep  ($(tail -1 "$w/read.out"))"
        fi
    done
}

for s in "${SETS[@]}"; do
    label=${s%%|*}
    rest=${s#*|}
    globs=${rest%%|*}
    [ "$ALL" = 1 ] && globs="*"
    opts=${rest#*|}
    for p in "$P"/*; do
        nm=$(basename "$p")
        hit=0
        set -f
        for g in $globs; do
            # shellcheck disable=SC2053
            [[ $nm == $g ]] && hit=1
        done
        set +f
        [ $hit = 1 ] || continue
        if [ -n "$FILTER" ] && ! echo "$nm.$label" | grep -q -- "$FILTER"; then
            continue
        fi
        # shellcheck disable=SC2086
        one "$p" "$label" $opts
    done
    echo "[$(($(date +%s) - T0))s] $label: deltas $NCASE refused $NREF runs $NRUN fails $NFAIL"
done
echo "cut2: $NCASE deltas ($NREF refused), $NEVERY every-op cuts, $NSEQ multi-cut sequences," \
    "$NFC fail+cut runs, $NRD faulty-read runs; $NRUN otaup runs, $NFAIL failures" \
    "in $(($(date +%s) - T0))s (details: $FAILF)"
[ "$NFAIL" -eq 0 ]
exit
}
