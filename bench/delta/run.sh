#!/usr/bin/env bash
# bench/delta/run.sh — delta size and speed of otaup against peer tools.
#
#   bench/delta/run.sh [--quick] [--reps N] [--otaup PATH] [--build DIR]
#                      [--data DIR] [--out DIR] [--timeout SECS]
#
# For every image pair that bench/delta/fetch.sh provides (real consecutive
# Debian releases, and the example Cortex-M firmware at two versions), in
# one run:
#
#   otaup delta --mode inplace --sector-size 4096 --ram 65536   otaup apply
#   otaup delta --mode ab      --sector-size 4096 --ram 65536   otaup apply
#   bsdiff OLD NEW PATCH                               bspatch
#   xdelta3 -e -9 -S djw -s OLD NEW PATCH             xdelta3 -d
#   zstd --ultra -22 --long=27 --patch-from=OLD NEW   zstd -d --patch-from
#
# it measures the patch size, the creation and the apply time (wall clock,
# median of N runs) and peak memory (maximum resident set), measured by the
# helper bench/delta/measure.c (compiled on the fly), and checks that every applied output equals NEW byte for
# byte. A tool that fails or whose output differs is reported as FAILED or
# MISMATCH in the table, and the script then exits 1.
#
# The result is a Markdown report on stdout (also written to
# OUT/report.md; raw measurements in OUT/*.tsv). Progress goes to stderr.
#
#   --quick        a subset (small pairs, one run each): a smoke test
#   --reps N       timing runs per tool and pair (default 5; --quick: 1);
#                  fewer where the first round shows that N rounds would
#                  take more than 60 s (creation) or 20 s (apply) per pair
#   --otaup PATH   the otaup CLI to measure (default: build it from this
#                  tree into BUILD, Release)
#   --build DIR    build tree for otaup (default: build/bench-delta)
#   --data DIR     image cache (default: bench/data)
#   --out DIR      results (default: bench/out/delta)
#   --timeout S    limit for one command (default 300 s)
#   --ram BYTES    the terminal's RAM budget given to otaup delta (65536)
#   --level N      deflate level given to otaup delta (default: the
#                  CLI's own, 10; 9 compares with zlib -9)
#   --doc          also paste the report into docs/performance.md, between
#                  its "bench/delta results" markers
#
# Peer tools (bsdiff, xdelta3, zstd) are installed with apt-get when
# missing and the script runs as root. otaup columns show "n/a" while the
# CLI of this tree cannot make deltas yet.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
QUICK=0
REPS=""
OTAUP=""
BUILD="$SRC/build/bench-delta"
DATA="$SRC/bench/data"
OUT="$SRC/bench/out/delta"
TIMEOUT=300
SECTOR=4096
RAM=65536
LEVEL=""
DOC=0
ARGS=("$@")

die() { printf 'run.sh: %s\n' "$*" >&2; exit 2; }
say() { printf 'run.sh: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --reps) shift; REPS="${1:-}" ;;
        --otaup) shift; OTAUP="${1:-}" ;;
        --build) shift; BUILD="${1:-}" ;;
        --data) shift; DATA="${1:-}" ;;
        --out) shift; OUT="${1:-}" ;;
        --timeout) shift; TIMEOUT="${1:-}" ;;
        --ram) shift; RAM="${1:-}" ;;
        --level) shift; LEVEL="${1:-}" ;;
        --doc) DOC=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
[ -n "$REPS" ] || { [ "$QUICK" -eq 1 ] && REPS=1 || REPS=5; }
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps needs a positive number"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "--timeout needs a positive number of seconds"
[[ "$RAM" =~ ^[1-9][0-9]*$ ]] || die "--ram needs a positive number of bytes"
[ -z "$LEVEL" ] || [[ "$LEVEL" =~ ^([1-9]|1[0-2])$ ]] || die "--level needs 1..12"
LEVEL_ARGS=()
[ -z "$LEVEL" ] || LEVEL_ARGS=(--level "$LEVEL")
for d in BUILD DATA OUT; do [ -n "${!d}" ] || die "--${d,,} needs a directory"; done
mkdir -p "$BUILD" "$DATA" "$OUT"
BUILD="$(cd "$BUILD" && pwd)"; DATA="$(cd "$DATA" && pwd)"; OUT="$(cd "$OUT" && pwd)"
T0=$(date +%s)
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- tools ------------------------------------------------------------------
need=()
command -v bsdiff >/dev/null && command -v bspatch >/dev/null || need+=(bsdiff)
command -v xdelta3 >/dev/null || need+=(xdelta3)
command -v zstd >/dev/null || need+=(zstd)
command -v python3 >/dev/null || need+=(python3)
command -v cc >/dev/null || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing tools; as root run: apt-get install ${need[*]}"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; } ||
        die "could not install ${need[*]}"
fi

# The measuring helper (wall time in µs and peak RSS of one command).
mkdir -p "$OUT/bin"
MEASURE="$OUT/bin/measure"
if [ ! -x "$MEASURE" ] || [ "$HERE/measure.c" -nt "$MEASURE" ]; then
    cc -std=c11 -O2 -Wall -Wextra -o "$MEASURE" "$HERE/measure.c" || die "cannot compile $HERE/measure.c"
fi

# ---- otaup ------------------------------------------------------------------
OTAUP_OK=0
OTAUP_WHY=""
if [ -z "$OTAUP" ]; then
    say "building otaup (Release) in $BUILD"
    if cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DOTAUP_BUILD_TESTS=OFF \
            -DOTAUP_BUILD_BENCH=OFF >"$BUILD/bench-build.log" 2>&1 &&
        cmake --build "$BUILD" --target otaup_cli -j 2 >>"$BUILD/bench-build.log" 2>&1; then
        OTAUP="$BUILD/examples/otaup/otaup"; [ -x "$OTAUP" ] || OTAUP=""
        [ -n "$OTAUP" ] || OTAUP_WHY="the build produced no otaup binary"
    else
        OTAUP_WHY="the otaup build failed (log: $BUILD/bench-build.log)"
        OTAUP=""
    fi
fi
if [ -n "$OTAUP" ]; then
    [ -x "$OTAUP" ] || die "--otaup $OTAUP is not an executable"
    OTAUP="$(cd "$(dirname "$OTAUP")" && pwd)/$(basename "$OTAUP")"
    if "$OTAUP" delta --help >/dev/null 2>&1; then
        OTAUP_OK=1
    else
        OTAUP_WHY="'otaup delta' is not available in this tree yet"
    fi
fi
if [ "$OTAUP_OK" -eq 1 ]; then say "otaup: $OTAUP"; else say "otaup columns: n/a ($OTAUP_WHY)"; fi

# ---- pairs ------------------------------------------------------------------
fetch_args=(--data "$DATA")
[ "$QUICK" -eq 1 ] && fetch_args+=(--quick)
"$HERE/fetch.sh" "${fetch_args[@]}"
if [ "$QUICK" -eq 1 ]; then PAIRS=(expat grub fw-app); else PAIRS=(libxml2 nginx expat grub fw-app fw-o2); fi

WORK="$OUT/work"
rm -rf "$WORK" && mkdir -p "$WORK"
rm -f "$OUT"/*.json "$OUT"/*.tsv "$OUT/report.md"
TIMES="$OUT/times.tsv"     # pair tool phase rep us kb
RESULTS="$OUT/results.tsv" # pair tool size create apply  (status: ok, FAILED: why, MISMATCH)
PAIRS_TSV="$OUT/pairs.tsv" # pair status label old_size new_size
printf 'pair\ttool\tphase\trep\tus\tpeak_kb\n' > "$TIMES"
printf 'pair\ttool\tpatch_bytes\tcreate\tapply\n' > "$RESULTS"
printf 'pair\tstatus\tlabel\told_bytes\tnew_bytes\n' > "$PAIRS_TSV"

TOOLS=(otaup-inplace otaup-ab bsdiff xdelta3 zstd)

create_cmd() { # tool old new patch -> CMD array
    case "$1" in
        otaup-inplace) CMD=("$OTAUP" delta "$2" "$3" -o "$4" --mode inplace --sector-size "$SECTOR" --ram "$RAM" "${LEVEL_ARGS[@]}") ;;
        otaup-ab) CMD=("$OTAUP" delta "$2" "$3" -o "$4" --mode ab --sector-size "$SECTOR" --ram "$RAM" "${LEVEL_ARGS[@]}") ;;
        bsdiff) CMD=(bsdiff "$2" "$3" "$4") ;;
        xdelta3) CMD=(xdelta3 -f -e -9 -S djw -s "$2" "$3" "$4") ;;
        zstd) CMD=(zstd -q -f --ultra -22 --long=27 "--patch-from=$2" "$3" -o "$4") ;;
    esac
}
apply_cmd() { # tool old patch out -> CMD array
    case "$1" in
        otaup-*) CMD=("$OTAUP" apply "$2" "$3" -o "$4") ;;
        bsdiff) CMD=(bspatch "$2" "$4" "$3") ;;
        xdelta3) CMD=(xdelta3 -f -d -s "$2" "$3" "$4") ;;
        zstd) CMD=(zstd -q -f -d --long=27 "--patch-from=$2" "$3" -o "$4") ;;
    esac
}

# measure PAIR TOOL PHASE REP CMD... : run once, append the wall time (µs)
# and peak RSS (KiB) to TIMES; return the command's status.
measure() {
    local pair="$1" tool="$2" phase="$3" rep="$4"; shift 4
    local rc=0 us kb
    rm -f "$WORK/mem"
    "$MEASURE" -t "$TIMEOUT" -o "$WORK/mem" -- "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        if [ "$rc" -eq 124 ]; then echo "timed out after ${TIMEOUT}s" > "$WORK/why"
        else { printf 'exit %s: ' "$rc"; tail -1 "$WORK/cmd.err" | tr '\t\n' '  '; } > "$WORK/why"; fi
        return 1
    fi
    read -r us kb < "$WORK/mem"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$pair" "$tool" "$phase" "$rep" "$us" "$kb" >> "$TIMES"
}

# Bounded runtime: after the first round of a phase, run at most as many
# rounds as fit in the phase's budget per pair (at least one).
CREATE_BUDGET=60 # seconds per pair for all creation runs
APPLY_BUDGET=20  # seconds per pair for all apply runs
rep_cap() { # reps t_start_ns budget_s pair phase -> reps to do
    local want="$1" el cap
    el=$(( ($(date +%s%N) - $2) / 1000000 ))
    [ "$el" -gt 0 ] || el=1
    cap=$(( $3 * 1000 / el ))
    [ "$cap" -ge 1 ] || cap=1
    if [ "$cap" -lt "$want" ]; then
        say "$4: one round of $5 took ${el} ms: $cap run(s) instead of $want to stay within ${3}s"
        want="$cap"
    fi
    echo "$want"
}

FAIL=0
run_pair() {
    local pair="$1" d="$DATA/pairs/$1"
    if [ -f "$d/skip" ]; then
        printf '%s\tskip\t%s\t\t\n' "$pair" "$(cat "$d/skip")" >> "$PAIRS_TSV"
        return 0
    fi
    if [ ! -f "$d/old" ] || [ ! -f "$d/new" ]; then
        printf '%s\tskip\t%s\t\t\n' "$pair" "not fetched" >> "$PAIRS_TSV"
        return 0
    fi
    local old="$d/old" new="$d/new" label
    label="$(sed -n 's/^label=//p' "$d/info")"
    printf '%s\tok\t%s\t%s\t%s\n' "$pair" "$label" "$(stat -c %s "$old")" "$(stat -c %s "$new")" >> "$PAIRS_TSV"
    say "$pair: $label"
    local tool rep patch outf size
    declare -A CST=() AST=() SIZE=()
    for tool in "${TOOLS[@]}"; do
        CST[$tool]=ok; AST[$tool]=ok; SIZE[$tool]=""
        if [[ "$tool" == otaup-* ]] && [ "$OTAUP_OK" -ne 1 ]; then
            CST[$tool]="n/a"; AST[$tool]="n/a"
        fi
    done
    local reps="$REPS" t_rep
    for ((rep = 1; rep <= reps; rep++)); do
        t_rep=$(date +%s%N)
        for tool in "${TOOLS[@]}"; do
            [ "${CST[$tool]}" = ok ] || continue
            patch="$WORK/$pair.$tool.patch"
            rm -f "$patch"
            create_cmd "$tool" "$old" "$new" "$patch"
            if ! measure "$pair" "$tool" create "$rep" "${CMD[@]}"; then
                CST[$tool]="FAILED: $(cat "$WORK/why")"; AST[$tool]="-"; FAIL=1
                say "$pair/$tool: creation FAILED: $(cat "$WORK/why")"
                continue
            fi
            size="$(stat -c %s "$patch")"
            if [ -n "${SIZE[$tool]}" ] && [ "${SIZE[$tool]}" != "$size" ]; then
                say "$pair/$tool: note: patch size differs between runs (${SIZE[$tool]} vs $size)"
            fi
            SIZE[$tool]="$size"
        done
        [ "$rep" -eq 1 ] && reps="$(rep_cap "$REPS" "$t_rep" "$CREATE_BUDGET" "$pair" creation)"
    done
    for tool in "${TOOLS[@]}"; do
        [ "${CST[$tool]}" = ok ] || continue
        patch="$WORK/$pair.$tool.patch"
        if [[ "$tool" == otaup-* ]]; then
            "$OTAUP" inspect "$patch" --json > "$WORK/$pair.$tool.json" 2>"$WORK/$pair.$tool.inspect.err" ||
                say "$pair/$tool: otaup inspect --json failed: $(tail -1 "$WORK/$pair.$tool.inspect.err")"
            cp "$WORK/$pair.$tool.json" "$OUT/$pair.$tool.json" 2>/dev/null || true
        fi
    done
    reps="$REPS"
    for ((rep = 1; rep <= reps; rep++)); do
        t_rep=$(date +%s%N)
        for tool in "${TOOLS[@]}"; do
            [ "${AST[$tool]}" = ok ] || continue
            patch="$WORK/$pair.$tool.patch"
            outf="$WORK/$pair.$tool.out"
            rm -f "$outf"
            apply_cmd "$tool" "$old" "$patch" "$outf"
            if ! measure "$pair" "$tool" apply "$rep" "${CMD[@]}"; then
                AST[$tool]="FAILED: $(cat "$WORK/why")"; FAIL=1
                say "$pair/$tool: apply FAILED: $(cat "$WORK/why")"
                continue
            fi
            if ! cmp -s "$outf" "$new"; then
                AST[$tool]="MISMATCH"; FAIL=1
                say "$pair/$tool: MISMATCH: the applied output differs from NEW ($(cmp "$outf" "$new" 2>&1 | head -1))"
            fi
            rm -f "$outf"
        done
        [ "$rep" -eq 1 ] && reps="$(rep_cap "$REPS" "$t_rep" "$APPLY_BUDGET" "$pair" apply)"
    done
    for tool in "${TOOLS[@]}"; do
        printf '%s\t%s\t%s\t%s\t%s\n' "$pair" "$tool" "${SIZE[$tool]}" "${CST[$tool]}" "${AST[$tool]}" >> "$RESULTS"
        rm -f "$WORK/$pair.$tool.patch"
    done
}

for p in "${PAIRS[@]}"; do run_pair "$p"; done

# What starting a process costs here (it is inside every time above).
spawn=()
for _ in 1 2 3 4 5; do
    "$MEASURE" -o "$WORK/mem" -- true && read -r us _ < "$WORK/mem" && spawn+=("$us")
done
SPAWN_US="$(printf '%s\n' "${spawn[@]}" | sort -n | sed -n 3p)"

# ---- machine and report -----------------------------------------------------
{
    printf 'cpu\t%s\n' "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
    printf 'cores\t%s\n' "$(nproc)"
    printf 'memory\t%s\n' "$(awk '/^MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
    printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)"
    printf 'load\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'load0\t%s\n' "$LOAD0"
    shown=()
    for a in "${ARGS[@]+"${ARGS[@]}"}"; do [ "$a" = --doc ] || shown+=("$a"); done
    printf 'command\t%s\n' "bench/delta/run.sh${shown[*]:+ ${shown[*]}}"
    printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf 'reps\t%s\n' "$REPS"
    printf 'spawn_us\t%s\n' "$SPAWN_US"
    printf 'sector\t%s\n' "$SECTOR"
    printf 'ram\t%s\n' "$RAM"
    printf 'elapsed\t%s\n' "$(( $(date +%s) - T0 ))"
    printf 'quick\t%s\n' "$QUICK"
    printf 'otaup\t%s\n' "$([ "$OTAUP_OK" -eq 1 ] && "$OTAUP" --version 2>/dev/null | head -1 || echo "otaup n/a: $OTAUP_WHY")"
    printf 'commit\t%s\n' "$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)"
    for p in bsdiff xdelta3 zstd; do
        printf 'ver_%s\t%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '?')"
    done
} > "$OUT/machine.tsv"
python3 "$HERE/report.py" "$OUT" | tee "$OUT/report.md"
say "done in $(( $(date +%s) - T0 )) s; report: $OUT/report.md"
if [ "$DOC" -eq 1 ]; then
    python3 - "$SRC/docs/performance.md" "$OUT/report.md" <<'PYEOF' || die "could not update docs/performance.md"
import sys
doc_path, rep_path = sys.argv[1], sys.argv[2]
begin, end = "<!-- bench/delta results: begin -->", "<!-- bench/delta results: end -->"
doc = open(doc_path).read()
if begin not in doc or end not in doc:
    sys.exit("docs/performance.md has no bench/delta results markers")
a, b = doc.index(begin) + len(begin), doc.index(end)
open(doc_path, "w").write(doc[:a] + "\n" + open(rep_path).read().strip() + "\n" + doc[b:])
PYEOF
    say "pasted the report into docs/performance.md"
fi
if [ "$FAIL" -ne 0 ]; then
    say "FAILURE: a tool failed or its output did not equal NEW (see the table)"
    exit 1
fi
