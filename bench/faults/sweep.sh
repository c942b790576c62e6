#!/usr/bin/env bash
# bench/faults/sweep.sh — adversarial power-cut sweep of the terminal side,
# through the otaup CLI (otaup delta / inspect / apply).
#
# For every image pair x flash/terminal setting it:
#   1. plans a delta (otaup delta); a refusal must be exit code 1 with an
#      error message (anything else — crash, hang, other code — is a FAIL);
#   2. checks it with otaup inspect and inspect --json;
#   3. applies it to a file (otaup apply OLD PATCH -o OUT) and compares with
#      NEW; optionally through a signed delta (otaup apply --pub);
#   4. applies it to a flash file without cuts, counts the flash operations
#      (N) and checks NEW at the delta's target address;
#   5. for cut points k over 1..N (every one, or a stride so that about
#      CUTS points are tried), clean or torn: cut after k operations, in a
#      third of the cases cut again during the resume, then resume to the
#      end and check the target bytes;
#   6. for READS reads spread over the R reads of the clean run, failed or
#      one bit flipped (otaup apply --read-fault k [--flip]), every other
#      one in the resume after a cut at two thirds of N: the run must end
#      with exit 0 and the target bytes right.
# Every failure is printed as one line starting with FAIL plus the command
# that reproduces it; the summary counts cases. Exit code 1 if any FAIL.
#
# Knobs (environment):
#   OTAUP      the otaup binary (default build/dev/examples/otaup/otaup)
#   OUT        work directory (default /tmp/otaup-faults)
#   PAIRS      space-separated pair directories holding old and new
#              (default: generated pairs, see genpairs.py, plus the small
#              real pairs under FAULT_PAIRS_DIR if it exists)
#   FAULT_PAIRS_DIR  directory of real pairs (<name>/{old,new})
#   REAL       names of the real pairs to use (default "fw-app fw-o2 expat grub")
#   SETTINGS   "quick" (default, ~30 settings) or "full" (every setting)
#   CUTS       cut points per delta (default 24; 0 = every operation); the
#              last three operations are always cut too
#   SEED       seed of the generated pairs (default 1)
#   TORN       1: also torn cuts (default 1)
#   READS      faulty reads per delta (default 4; 0: none)
#   SIGN       1: also a signed round (keygen, --sign, apply --pub) (default 1)
#   TIMEOUT    seconds per command (default 120)
#   FILTER     only settings whose label matches this grep pattern
#
# Settings cover: in place and A/B; uniform sectors of 256 B..128 KiB and
# non-uniform maps (STM32F4-like 4x16K,1x64K,7x128K; 128 KiB sectors then
# 16 KiB ones; mixed); write sizes 1..4096; erased 0x00; non-zero bases;
# small RAM (12 KiB; 8 KiB, which must be refused); levels 1, 9, 10;
# restart interval 1; A/B back into the slot at address 0; deltas from
# block signatures of 64 B..64 KiB blocks. Pairs: edits, insertions,
# deletions, moved blocks, swapped halves (in-place cycles), growth,
# shrink, 0xFF/0x00 regions, all-0xFF/all-0x00 images, random data,
# identical images, images of 0/1/4095/4096/4097 bytes.
#
# Time (2 cores shared with other work; the cut loop dominates at ~50 ms
# per otaup apply run): SETTINGS=quick CUTS=4 with the four small real
# pairs, 37 settings x 27 pairs, about an hour; CUTS=3 on the generated
# pairs alone about half that; CUTS=0 (every operation) on a few pairs
# and settings (FILTER, PAIRS) about 2-3 minutes per setting and pair
# set of four. Not part of ctest.
#
#   bench/faults/sweep.sh                                   # quick sweep
#   FAULT_PAIRS_DIR=/path/to/pairs CUTS=4 bench/faults/sweep.sh
#   FILTER='bigsmall\|stm32' CUTS=0 PAIRS="p1 p2" bench/faults/sweep.sh
#   OTAUP=build/asan/examples/otaup/otaup CUTS=2 bench/faults/sweep.sh
set -u
# The whole script is one block, read before it runs: editing the file
# while a sweep runs does not change (or break) that sweep.
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OTAUP=${OTAUP:-$SRC/build/dev/examples/otaup/otaup}
OUT=${OUT:-/tmp/otaup-faults}
SETTINGS=${SETTINGS:-quick}
CUTS=${CUTS:-24}
TORN=${TORN:-1}
READS=${READS:-4}
SIGN=${SIGN:-1}
TIMEOUT=${TIMEOUT:-120}
FILTER=${FILTER:-}
FAULT_PAIRS_DIR=${FAULT_PAIRS_DIR:-}
REAL=${REAL:-"fw-app fw-o2 expat grub"}

[ -x "$OTAUP" ] || { echo "sweep.sh: $OTAUP not built" >&2; exit 2; }
mkdir -p "$OUT"
cp "$OTAUP" "$OUT/otaup.bin" && OTAUP="$OUT/otaup.bin"  # a rebuild during the sweep does not disturb it
T0=$(date +%s)
NFAIL=0 NDELTA=0 NREFUSED=0 NCUT=0 NAPPLY=0 NSET=0 NREAD=0
FAILS="$OUT/fails.txt"
: > "$FAILS"

fail() {
    NFAIL=$((NFAIL + 1))
    echo "FAIL $*" | tee -a "$FAILS"
}

run() { timeout "$TIMEOUT" "$OTAUP" "$@"; }

# json field (numbers only) from inspect --json
jfield() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }

if [ -z "${PAIRS:-}" ]; then
    python3 "$SRC/bench/faults/genpairs.py" "$OUT/pairs" "${SEED:-1}" || exit 2
    PAIRS=$(ls -d "$OUT"/pairs/*)
    if [ -n "$FAULT_PAIRS_DIR" ]; then
        for r in $REAL; do
            [ -f "$FAULT_PAIRS_DIR/$r/old" ] && PAIRS="$PAIRS $FAULT_PAIRS_DIR/$r"
        done
    fi
fi

# Settings: "label|otaup delta options". The quick set pairs each axis with
# a few others; the full set adds more combinations.
SET_QUICK=(
    "ip-default|"
    "ab-default|--mode ab"
    "ip-ws1-s256|--sector-size 256"
    "ab-ws4-s1k|--mode ab --sector-size 1024 --write-size 4"
    "ip-ws8-s1k-ram8k|--sector-size 1024 --write-size 8 --ram 8192"
    "ab-ws16-ram12k|--mode ab --write-size 16 --ram 12K"
    "ip-ws32-s4k|--write-size 32"
    "ip-ws64|--write-size 64 --restart-interval 1"
    "ab-ws128-s64k|--mode ab --write-size 128 --sector-size 64K --ram 96K"
    "ip-ws256-s4k|--write-size 256"
    "ip-ws512|--write-size 512"
    "ab-ws1024|--mode ab --write-size 1024"
    "ip-ws4096|--write-size 4096"
    "ab-ws4096-s64k|--mode ab --write-size 4096 --sector-size 64K --ram 160K"
    "ip-erased0|--erased 0x00 --write-size 8"
    "ab-erased0|--mode ab --erased 0 --write-size 2"
    "ip-base|--base 0x08000000 --write-size 4"
    "ab-base|--mode ab --base 0x90000000 --sector-size 4096 --write-size 256"
    "ip-stm32f4|--sector-map 4x16K,1x64K,7x128K --base 0x08000000 --write-size 4 --ram 160K"
    "ab-stm32f4|--mode ab --sector-map 4x16K,1x64K,7x128K --base 0x08000000 --write-size 16 --ram 320K"
    "ip-mixed|--sector-map 8x1K,4x4K,2x16K,4x64K --write-size 8"
    "ab-mixed|--mode ab --sector-map 3x4K,2x8K,1x32K,16x4K,2x64K --write-size 4"
    "ip-s128k|--sector-size 128K --ram 192K --write-size 32"
    "ab-s128k|--mode ab --sector-size 128K --ram 320K"
    "ip-level1-r1|--level 1 --restart-interval 1 --sector-size 1024"
    "ab-level9|--mode ab --level 9 --restart-interval 1 --write-size 8"
    "ip-ram12k-s256|--ram 12K --sector-size 256 --write-size 4"
    "ip-bigsmall|--sector-map 2x128K,8x16K --write-size 4"
    "ab-back-to-0|--mode ab --sector-map 64x4K --source 0x20000 --target 0 --write-size 8"
    "ab-back-base|--mode ab --base 0x08000000 --sector-map 4x16K,1x64K,3x128K --source 0x08020000 --target 0x08000000 --ram 200K"
    "ip-nohash|--no-step-hash --sector-size 1024"
    "ip-staging-small|--staging 1024 --sector-size 4096 --write-size 8"
    "ab-ws2-s256|--mode ab --sector-size 256 --write-size 2 --ram 12K"
    "sig64-ip|--sig-block 64 --write-size 4"
    "sig1k-ab|--sig-block 1024 --mode ab --write-size 8"
    "sig4k-ip-bigsmall|--sig-block 4096 --sector-map 2x128K,8x16K"
    "sig64k-ip-s1k|--sig-block 65536 --sector-size 1024 --write-size 16"
)
SET_FULL=(
    "ip-ws2|--write-size 2"
    "ab-ws8|--mode ab --write-size 8"
    "ab-ws32-s1k|--mode ab --write-size 32 --sector-size 1024"
    "ab-ws64|--mode ab --write-size 64"
    "ab-ws256|--mode ab --write-size 256"
    "ab-ws512-s64k|--mode ab --write-size 512 --sector-size 64K --ram 96K"
    "ip-ws1024-s64k|--write-size 1024 --sector-size 64K --ram 160K"
    "ip-ws2048|--write-size 2048"
    "ab-ws4096|--mode ab --write-size 4096"
    "ip-erased0-ws4096|--erased 0 --write-size 4096"
    "ab-erased0-s128k|--mode ab --erased 0 --sector-size 128K --ram 320K"
    "ip-base-ws512|--base 0x20000000 --write-size 512"
    "ip-s64k|--sector-size 64K --ram 96K"
    "ip-level10-ram8k|--ram 8192 --level 10 --restart-interval 1"
    "ip-level9-ws16|--level 9 --write-size 16"
    "ab-ram8k-s1k|--mode ab --ram 8192 --sector-size 1024"
    "ip-stm32f4-ws1|--sector-map 4x16K,1x64K,7x128K --ram 160K"
    "ab-stm32-small|--mode ab --sector-map 4x16K,1x64K,3x128K --ram 200K --write-size 8"
    "ip-window9|--window-bits 9 --write-size 4"
    "ip-staging-4k-ws4096|--staging 4096 --write-size 4096"
)
SETS=("${SET_QUICK[@]}")
[ "$SETTINGS" = full ] && SETS+=("${SET_FULL[@]}")

KEY=""
if [ "$SIGN" = 1 ]; then
    KEY="$OUT/key"
    [ -f "$KEY" ] || run keygen -o "$KEY" >/dev/null 2>&1 || { echo "sweep.sh: keygen failed" >&2; KEY=""; }
fi

# make_flash FLASH OLD SRCOFF ERASED: the device flash from the base, OLD at
# byte SRCOFF, erased before it
make_flash() {
    rm -f "$1" "$1.otaup-state"
    if [ "$3" -eq 0 ]; then
        cp "$2" "$1"
    else
        { head -c "$3" /dev/zero | tr '\0' "\\$(printf %o "$4")"; cat "$2"; } >"$1"
    fi
}

# check_target FLASH NEW OFF ERASED: NEW sits at byte OFF of FLASH (bytes
# beyond the file read as erased)
check_target() {
    local f=$1 new=$2 off=$3 er=${4:-255} n
    n=$(stat -c %s "$new")
    [ "$n" -eq 0 ] && return 0
    cmp -s <({ tail -c +$((off + 1)) "$f"; head -c "$n" /dev/zero | tr '\0' "\\$(printf %o "$er")"; } | head -c "$n") "$new"
}

one_delta() { # pair label opts...
    local pair=$1 label=$2
    shift 2
    local name w d rc ops off base soff er stride k k2 torn f
    name=$(basename "$pair")
    w="$OUT/w/$name.$label"
    mkdir -p "$w"
    d="$w/p.delta"
    rm -f "$d"
    if [ "${1:-}" = "--sig-block" ]; then
        # from a block signature of OLD (sweep option: --sig-block N first)
        local bs=$2
        shift 2
        run sig "$pair/old" -o "$w/old.sig" --block-size "$bs" >/dev/null 2>&1 ||
            { fail "$name $label: otaup sig --block-size $bs failed"; return; }
        run delta --from-sig "$w/old.sig" "$pair/new" -o "$d" -q "$@" >"$w/delta.out" 2>"$w/delta.err"
    else
        run delta "$pair/old" "$pair/new" -o "$d" -q "$@" >"$w/delta.out" 2>"$w/delta.err"
    fi
    rc=$?
    if [ $rc -ne 0 ]; then
        if [ $rc -eq 1 ] && [ -s "$w/delta.err" ]; then
            NREFUSED=$((NREFUSED + 1))
            echo "refused $name $label: $(head -c 200 "$w/delta.err" | head -1)" >>"$OUT/refusals.txt"
        else
            fail "$name $label: otaup delta exit $rc: $OTAUP delta $pair/old $pair/new -o $d $*"
        fi
        return
    fi
    NDELTA=$((NDELTA + 1))
    run inspect "$d" >"$w/inspect.out" 2>&1 || fail "$name $label: inspect exit $?: $OTAUP inspect $d"
    run inspect --json "$d" >"$w/inspect.json" 2>&1 || fail "$name $label: inspect --json exit $?: $OTAUP inspect --json $d"
    run apply "$pair/old" "$d" -o "$w/out" >"$w/apply.out" 2>&1
    rc=$?
    NAPPLY=$((NAPPLY + 1))
    if [ $rc -ne 0 ] || ! cmp -s "$w/out" "$pair/new"; then
        fail "$name $label: apply to file exit $rc or OUT != NEW: $OTAUP apply $pair/old $d -o $w/out  ($(tail -1 "$w/apply.out"))"
        return
    fi
    base=$(sed -n 's/.*"geometry":{"base":\([0-9]*\).*/\1/p' "$w/inspect.json")
    off=$(( $(jfield "$w/inspect.json" target_addr) - base ))
    soff=$(( $(jfield "$w/inspect.json" source_addr) - base ))
    er=$(sed -n 's/.*"erased":\([0-9]*\).*/\1/p' "$w/inspect.json")
    f="$w/F"
    make_flash "$f" "$pair/old" "$soff" "$er"
    run apply --flash "$f" "$d" --stats >"$w/flash.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! check_target "$f" "$pair/new" "$off" "$er"; then
        fail "$name $label: apply --flash exit $rc or target != NEW: cp $pair/old F; $OTAUP apply --flash F $d  ($(tail -1 "$w/flash.out"))"
        return
    fi
    ops=$(sed -n 's/^flash operations: \([0-9]*\).*/\1/p' "$w/flash.out")
    [ -n "$ops" ] || ops=0
    stride=1
    if [ "$CUTS" -gt 0 ] && [ "$ops" -gt "$CUTS" ]; then
        stride=$(( (ops + CUTS - 1) / CUTS ))
    fi
    local cuts
    cuts=$(seq 1 "$stride" "$ops"; [ "$stride" -gt 1 ] && seq $((ops > 2 ? ops - 2 : 1)) "$ops")
    for k in $cuts; do
        for torn in 0 1; do
            [ $torn = 1 ] && [ "$TORN" != 1 ] && continue
            local tflag=""
            [ $torn = 1 ] && tflag="--torn"
            make_flash "$f" "$pair/old" "$soff" "$er"
            NCUT=$((NCUT + 1))
            local repro="(flash: $pair/old at byte $soff) F; rm -f F.otaup-state; $OTAUP apply --flash F $d --cut-after $k $tflag"
            run apply --flash "$f" "$d" --cut-after "$k" $tflag >"$w/cut.out" 2>&1
            rc=$?
            if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
                fail "$name $label: cut run exit $rc: $repro  ($(tail -1 "$w/cut.out"))"
                continue
            fi
            if [ $rc -eq 3 ] && [ $(( (k / stride + torn) % 3 )) -eq 0 ]; then
                k2=$(( (k * 7 + 3) % (ops + 1) + 1 ))
                run apply --flash "$f" "$d" --cut-after "$k2" --torn >"$w/cut2.out" 2>&1
                rc=$?
                repro="$repro; $OTAUP apply --flash F $d --cut-after $k2 --torn"
                if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
                    fail "$name $label: second cut exit $rc: $repro  ($(tail -1 "$w/cut2.out"))"
                    continue
                fi
            fi
            run apply --flash "$f" "$d" >"$w/resume.out" 2>&1
            rc=$?
            if [ $rc -ne 0 ] || ! check_target "$f" "$pair/new" "$off" "$er" || [ -e "$f.otaup-state" ]; then
                fail "$name $label: resume exit $rc or target != NEW: $repro; $OTAUP apply --flash F $d  ($(tail -1 "$w/resume.out"))"
            fi
        done
    done
    # faulty reads (failed or one bit flipped), power on
    local reads i k cut flip repro
    reads=$(sed -n 's/^flash reads: *\([0-9]*\).*/\1/p' "$w/flash.out")
    [ -n "$reads" ] && [ "$READS" -gt 0 ] && [ "$ops" -gt 0 ] || return 0
    for i in $(seq 1 "$READS"); do
        k=$(( (reads * i + READS) / (READS + 1) ))
        [ "$k" -ge 1 ] || k=1
        flip=""
        [ $((i % 2)) = 0 ] && flip="--flip"
        make_flash "$f" "$pair/old" "$soff" "$er"
        NREAD=$((NREAD + 1))
        repro="(flash: $pair/old at byte $soff) F; rm -f F.otaup-state"
        if [ $((i % 4)) -ge 2 ] && [ "$ops" -gt 2 ]; then
            cut=$((2 * ops / 3))
            repro="$repro; $OTAUP apply --flash F $d --cut-after $cut"
            run apply --flash "$f" "$d" --cut-after "$cut" >"$w/rcut.out" 2>&1
            rc=$?
            if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
                fail "$name $label: cut before a faulty read: exit $rc: $repro  ($(tail -1 "$w/rcut.out"))"
                continue
            fi
        fi
        repro="$repro; $OTAUP apply --flash F $d --read-fault $k $flip"
        run apply --flash "$f" "$d" --read-fault "$k" $flip >"$w/read.out" 2>&1
        rc=$?
        if [ $rc -ne 0 ] || ! check_target "$f" "$pair/new" "$off" "$er" || [ -e "$f.otaup-state" ]; then
            fail "$name $label: faulty read: exit $rc or target != NEW: $repro  ($(tail -1 "$w/read.out"))"
        fi
    done
}

signed_round() { # pair label opts...: sign at planning, apply with --pub
    local pair=$1 label=$2
    shift 2
    local name w d rc
    name=$(basename "$pair")
    w="$OUT/w/$name.$label.signed"
    mkdir -p "$w"
    d="$w/p.delta"
    run delta "$pair/old" "$pair/new" -o "$d" -q --sign "$KEY" --model fx-1 --version 2 "$@" >"$w/delta.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        grep -q "cannot plan" "$w/delta.out" || fail "$name $label signed: delta exit $rc: $(tail -1 "$w/delta.out")"
        return
    fi
    run apply "$pair/old" "$d" -o "$w/out" --pub "$KEY.pub" --model fx-1 >"$w/apply.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! cmp -s "$w/out" "$pair/new"; then
        fail "$name $label signed: apply --pub exit $rc: $OTAUP apply $pair/old $d -o OUT --pub $KEY.pub --model fx-1 ($(tail -1 "$w/apply.out"))"
        return
    fi
    run inspect --json "$d" >"$w/inspect.json" 2>&1
    make_flash "$w/F" "$pair/old" \
        $(( $(jfield "$w/inspect.json" source_addr) - $(sed -n 's/.*"geometry":{"base":\([0-9]*\).*/\1/p' "$w/inspect.json") )) \
        "$(sed -n 's/.*"erased":\([0-9]*\).*/\1/p' "$w/inspect.json")"
    run apply --flash "$w/F" "$d" --pub "$KEY.pub" --model fx-1 --cut-after 5 --torn >/dev/null 2>&1
    rc=$?
    run apply --flash "$w/F" "$d" --pub "$KEY.pub" --model fx-1 >"$w/resume.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] || fail "$name $label signed: resume with --pub exit $rc ($(tail -1 "$w/resume.out"))"
}

for s in "${SETS[@]}"; do
    label=${s%%|*}
    opts=${s#*|}
    if [ -n "$FILTER" ] && ! echo "$label" | grep -q -- "$FILTER"; then
        continue
    fi
    NSET=$((NSET + 1))
    for p in $PAIRS; do
        # shellcheck disable=SC2086
        one_delta "$p" "$label" $opts
    done
    if [ -n "$KEY" ]; then
        for p in $PAIRS; do
            case $(basename "$p") in edits | grow | fw-app) ;; *) continue ;; esac
            case $label in sig*) continue ;; esac
            # shellcheck disable=SC2086
            signed_round "$p" "$label" $opts
        done
    fi
    echo "[$(( $(date +%s) - T0 ))s] $label: deltas $NDELTA refused $NREFUSED cuts $NCUT reads $NREAD fails $NFAIL"
done

echo "sweep: $(echo "$PAIRS" | wc -w) pairs x $NSET settings: $NDELTA deltas planned, $NREFUSED refused," \
     "$NAPPLY file applies, $NCUT cut runs, $NREAD faulty-read runs, $NFAIL failures in $(( $(date +%s) - T0 ))s (details: $FAILS)"
[ "$NFAIL" -eq 0 ]
exit
}
