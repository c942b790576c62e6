#!/usr/bin/env bash
# bench/security/run.sh — what signing costs: patch bytes and terminal time.
#
#   bench/security/run.sh [--quick] [--reps N] [--data DIR] [--build DIR] [--out DIR]
#
# For every image pair of the delta benchmark (bench/delta/fetch.sh: real
# consecutive Debian releases and the example Cortex-M firmware; cached in
# DIR, default bench/data), in one run:
#
#   otaup delta --mode inplace --sector-size 4096 --ram 65536   (unsigned)
#   otaup sign --tag-len 16 (the default), 8 and 32             (signed)
#   the same with --restart-interval 1 (a restart point before every step)
#
# and reports the patch-size overhead (total, per step, in % of the
# unsigned patch), split into manifest and chain bytes. Then, on the host,
# bench/security's program applies the unsigned delta without and the
# signed delta with the terminal's verifier (signature, source hash, chain,
# target hash) through the real executor on a simulated flash, and times
# the pieces: SHA-256 of the image, one ECDSA P-256 verify. Peers in the
# same run: `sha256sum NEW` and a whole-file `openssl dgst -sha256 -verify`
# of the patch (what a payload-level signature costs, checkable only after
# the whole patch arrived). Medians of N runs (default 7).
#
# Output: a Markdown report on stdout and OUT/report.md (default
# bench/out/security). Progress on stderr. Exit 1 if anything fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
DATA="$SRC/bench/data"
BUILD="$SRC/build/bench-security"
OUT="$SRC/bench/out/security"
REPS=7
QUICK=0

die() { printf 'run.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'run.sh: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; REPS=3 ;;
        --reps) shift; [ $# -gt 0 ] || die "--reps needs a number"; REPS="$1" ;;
        --data) shift; [ $# -gt 0 ] || die "--data needs a directory"; DATA="$1" ;;
        --build) shift; [ $# -gt 0 ] || die "--build needs a directory"; BUILD="$1" ;;
        --out) shift; [ $# -gt 0 ] || die "--out needs a directory"; OUT="$1" ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
    shift
done
case "$REPS" in ''|*[!0-9]*|0) die "--reps needs a positive number" ;; esac
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"

say "building into $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOTAUP_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j2 --target otaup_cli otaup-bench-security >/dev/null
OTAUP="$BUILD/examples/otaup/otaup"
BENCH="$BUILD/bench/security/otaup-bench-security"

if [ "$QUICK" = 1 ]; then
    "$SRC/bench/delta/fetch.sh" --quick --data "$DATA" >&2 || say "fetch.sh reported a problem; using what is cached"
else
    "$SRC/bench/delta/fetch.sh" --data "$DATA" >&2 || say "fetch.sh reported a problem; using what is cached"
fi

mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/otaup-bench-sec.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
"$OTAUP" keygen -o "$WORK/key" >/dev/null

# median of the numbers on stdin
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0 } else if (NR % 2) { print v[(NR + 1) / 2] } else { print (v[NR / 2] + v[NR / 2 + 1]) / 2 } }'; }
now_us() { date +%s%6N; }
size_of() { stat -c %s "$1"; }
# field "chain bytes" etc. from otaup verify
chain_bytes() { "$OTAUP" verify --pub "$WORK/key.pub" "$1" | sed -n 's/.* \([0-9]*\) chain bytes.*/\1/p'; }
manifest_bytes() { "$OTAUP" verify --pub "$WORK/key.pub" "$1" | sed -n 's/^manifest: *\([0-9]*\) bytes.*/\1/p'; }

SIZES="$OUT/sizes.tsv"
TIMES="$OUT/times.tsv"
printf 'pair\tvariant\tsteps\tsegments\tunsigned\tsigned\toverhead\tmanifest\tchain\n' > "$SIZES"
printf 'pair\timage\tapply_us\tverified_us\tverify_us\tsha256_us\tecdsa_us\tratio\tsha256sum_us\topenssl_verify_us\n' > "$TIMES"
fail=0

for dir in "$DATA"/pairs/*/; do
    name="$(basename "$dir")"
    if [ ! -f "$dir/old" ] || [ ! -f "$dir/new" ]; then
        say "$name: not available, skipped"
        continue
    fi
    if [ "$QUICK" = 1 ] && [ "$(size_of "$dir/new")" -gt 400000 ]; then
        continue
    fi
    say "$name"
    for ri in default 1; do
        extra=()
        [ "$ri" = 1 ] && extra=(--restart-interval 1)
        u="$WORK/$name-$ri.dlt"
        if ! "$OTAUP" delta "$dir/old" "$dir/new" -o "$u" --mode inplace --sector-size 4096 --ram 65536 -q "${extra[@]}"; then
            say "$name: otaup delta failed"; fail=1; continue
        fi
        steps="$("$OTAUP" inspect "$u" | sed -n 's/^ *steps *\([0-9]*\).*/\1/p')"
        segs="$("$OTAUP" inspect "$u" | sed -n 's/.*restart points \([0-9]*\).*/\1/p')"
        for t in 16 8 32; do
            s="$WORK/$name-$ri-$t.dlt"
            if ! "$OTAUP" sign --key "$WORK/key" --model bench --version 2 --counter 1 --old "$dir/old" \
                    --new "$dir/new" --tag-len "$t" "$u" -o "$s" >/dev/null ||
               ! "$OTAUP" verify --pub "$WORK/key.pub" --old "$dir/old" --new "$dir/new" --quiet "$s"; then
                say "$name: sign/verify failed (tag $t)"; fail=1; continue
            fi
            ub="$(size_of "$u")"; sb="$(size_of "$s")"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "ri=$ri tag=$t" "$steps" "$segs" "$ub" "$sb" \
                "$((sb - ub))" "$(manifest_bytes "$s")" "$(chain_bytes "$s")" >> "$SIZES"
        done
    done
    # timing: the default delta, 16-byte tags
    u="$WORK/$name-default.dlt"; s="$WORK/$name-default-16.dlt"
    [ -f "$s" ] || continue
    if ! line="$("$BENCH" "$dir/old" "$dir/new" "$u" "$s" "$WORK/key.pub" "$REPS")"; then
        say "$name: bench failed"; fail=1; continue
    fi
    # peers: sha256sum of the image, openssl whole-file signature check of the patch
    openssl dgst -sha256 -sign "$WORK/key" -out "$WORK/sig" "$u"
    : > "$WORK/t1"; : > "$WORK/t2"
    for _ in $(seq "$REPS"); do
        t0="$(now_us)"; sha256sum "$dir/new" >/dev/null; t1="$(now_us)"
        echo $((t1 - t0)) >> "$WORK/t1"
        t0="$(now_us)"; openssl dgst -sha256 -verify "$WORK/key.pub" -signature "$WORK/sig" "$u" >/dev/null; t1="$(now_us)"
        echo $((t1 - t0)) >> "$WORK/t2"
    done
    get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$(get image_bytes)" "$(get apply_us)" \
        "$(get apply_verified_us)" "$(get verify_us)" "$(get sha256_image_us)" "$(get ecdsa_us)" \
        "$(get ratio_verify_to_sha)" "$(median < "$WORK/t1")" "$(median < "$WORK/t2")" >> "$TIMES"
done

{
    echo "### Patch size: unsigned vs signed (otaup delta --mode inplace --sector-size 4096 --ram 65536)"
    echo
    echo "| pair | variant | steps | restart points | unsigned | signed | overhead | per step | % | manifest | chain (raw) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$SIZES" | awk -F'\t' '{ ps = $3 > 0 ? $7 / $3 : 0; pc = $5 > 0 ? 100 * $7 / $5 : 0;
        printf "| %s | %s | %d | %d | %d | %d | %d | %.1f | %.1f %% | %d | %d |\n", $1, $2, $3, $4, $5, $6, $7, ps, pc, $8, $9 }'
    echo
    echo "### Verification time on the host (medians of $REPS, microseconds)"
    echo
    echo "| pair | image bytes | apply unsigned | apply signed + verified | verification | SHA-256 of the image | ECDSA verify | verification / SHA-256 | sha256sum NEW | openssl verify of the whole patch |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    tail -n +2 "$TIMES" | awk -F'\t' '{ printf "| %s | %d | %d | %d | %d | %d | %d | %.2f | %d | %d |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
} | tee "$OUT/report.md"
exit "$fail"
