#!/usr/bin/env bash
# bench/faults/realpairs.sh — the diff engine and the applier end to end on
# real upgrade pairs that the other campaigns and tests do not use:
#
#   fw_*      the project's example Cortex-M4 firmware
#             (examples/firmware/build.sh, default -Os, FW_VERSION=1) built
#             at FW_COMMITS of this repository's history (git archive; zlib
#             from Debian's source package, tests/fetch-zlib-source.sh):
#             each release to the next, three to a later one, the first
#             to the last, and the newest commit's version 1 to version 2;
#   deb_*     Debian shared objects in two versions (the two newest that
#             `apt-cache madison` lists, `apt-get download PKG=VER`):
#             libssl.so.3, OpenSSL's legacy.so module, libcurl.so.4,
#             liblzma.so.5, libpng16.so.16; a package with one version is
#             skipped, saying so;
#   zlib_o2o3 zlib's source built here as a shared object at -O2 and -O3;
#   edge_*    shapes cut from those images: sizes no multiple of any sector
#             or program unit, growth 28 K -> 219 K and shrink 219 K -> 28 K,
#             exactly one sector (256 B, 4 KiB, 16 KiB), an image to itself
#             (odd size and sector multiple), one byte to one byte.
#
# Each pair in place and A/B on four flashes, each with a user-data
# region of random bytes before the slot that no step may touch:
#
#   u4k     uniform 4 KiB sectors, slot at 0x2000
#   f4      STM32F4-like 4x16K,1x64K,7x128K at 0x08000000, slot at
#           0x08010000 (the 16 KiB sectors are user data); A/B with
#           --ram 160K (its staging holds a whole 128 KiB target sector)
#   f4s     A/B only: the f4 map with --ram 64K and a scratch area in the
#           last 128 KiB sector: several steps share a target sector,
#           rebuilt through scratch after a cut
#   s256    256 B sectors, slot at 0x400, write size 8 (in place) or 16 (A/B)
#   u4k-sig u4k, the delta planned from OLD's block signature (otaup sig
#           --block-size 1024, otaup delta --from-sig)
#
# For each: `otaup delta`, `otaup apply OLD PATCH -o OUT` and cmp with NEW;
# `otaup apply --flash` without faults, then CUTS sequences of one to three
# `--cut-after N` at random operations (torn at random) each followed by a
# run that resumes; deltas of at most EVERY flash operations are also cut
# at every operation, plain and torn. Every end state: NEW at the target
# (in place: the first len(NEW) bytes), the user data unchanged, no
# sidecar left; after every cut the user data unchanged and, A/B, OLD in
# its slot. A delta refused with exit 1 and a message (a slot that does not
# fit the map, A/B staging under 128 KiB sectors) counts as refused, not
# as a failure.
#
# Sizes: otaup's delta (level 10, 4 KiB sectors, in place and A/B) against
# bsdiff, xdelta3 -9 and zstd -19 --patch-from; a pair where otaup's delta
# is more than 1.5x the best of them is flagged (sizes.txt).
#
# Knobs: OTAUP (binary, default build/gcc/examples/otaup/otaup, else
# build/dev/...), OUT (/tmp/otaup-realpairs: pairs and builds are cached
# there), SEED (1), CUTS (cut sequences per delta, 4), EVERY (12), FILTER
# (grep pattern on "pair.layout.flash"), TIMEOUT (s per command, 120),
# BUDGET (s: no new pair starts after it, 7200), FW_COMMITS (default
# "3f91eb7 c24d70b 1347e62 ac24f1c ac60302 HEAD"). Needs dpkg-deb,
# apt-get, arm-none-eabi-gcc and libxxhash-dev for the firmware, bsdiff,
# xdelta3 and zstd for the sizes (a missing one is left out of them).
# Measured (CUTS=3 EVERY=8 SEED=1): a run stopped by BUDGET=2700 after 16
# pairs, and FILTER='^edge_\|^zlib_' beside it for the rest: 25 pairs, 198
# deltas (2 refused), 3591 otaup runs, 0 failures, 45 + 31 min on a
# two-core machine busy with other builds (the time goes to process starts
# and file copies, not to otaup). The defaults (CUTS=4, EVERY=12) cost
# about a third more. A FILTER leaves the sizes out.
#
#   bench/faults/realpairs.sh
#   CUTS=3 EVERY=8 FILTER='^fw_' SEED=2 bench/faults/realpairs.sh
set -u
{
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OTAUP=${OTAUP:-}
if [ -z "$OTAUP" ]; then
    for b in gcc dev; do
        [ -x "$SRC/build/$b/examples/otaup/otaup" ] && { OTAUP="$SRC/build/$b/examples/otaup/otaup"; break; }
    done
fi
OUT=${OUT:-/tmp/otaup-realpairs}
SEED=${SEED:-1}
CUTS=${CUTS:-4}
EVERY=${EVERY:-12}
FILTER=${FILTER:-}
TIMEOUT=${TIMEOUT:-120}
BUDGET=${BUDGET:-7200}
FW_COMMITS=${FW_COMMITS:-"3f91eb7 c24d70b 1347e62 ac24f1c ac60302 HEAD"}
[ -n "$OTAUP" ] && [ -x "$OTAUP" ] || { echo "realpairs.sh: otaup not built (set OTAUP)" >&2; exit 2; }
mkdir -p "$OUT/w" "$OUT/pairs" "$OUT/cache"
OUT="$(cd "$OUT" && pwd)"
rm -rf "$OUT/w" && mkdir -p "$OUT/w"
cp "$OTAUP" "$OUT/otaup.bin" && OTAUP="$OUT/otaup.bin"
T0=$(date +%s)
NFAIL=0 NCASE=0 NREF=0 NRUN=0 NSEQ=0 NEVERY=0 NPAIR=0 NFLAG=0
FAILF="$OUT/fails.txt" SIZES="$OUT/sizes.txt"
: >"$FAILF"
: >"$OUT/refused.txt"
: >"$OUT/skipped.txt"
RANDOM=$SEED

say() { echo "realpairs: $*" >&2; }
skip() { echo "$*" >>"$OUT/skipped.txt"; say "skipped: $*"; }
fail() { NFAIL=$((NFAIL + 1)); echo "FAIL $*" | tee -a "$FAILF"; }
run() { NRUN=$((NRUN + 1)); timeout "$TIMEOUT" "$OTAUP" "$@"; }
# pair NAME OLD NEW
pair() {
    mkdir -p "$OUT/pairs/$1" && cp "$2" "$OUT/pairs/$1/old" && cp "$3" "$OUT/pairs/$1/new"
}

# ---- firmware release series ---------------------------------------------
FW="$OUT/cache/fw"
fwimg=()
if command -v arm-none-eabi-gcc >/dev/null && git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
    zsrc=$("$SRC/tests/fetch-zlib-source.sh" "$OUT/cache/zlib-src" 2>>"$OUT/cache/zlib.log") || zsrc=""
    for c in $FW_COMMITS; do
        id=$(git -C "$SRC" rev-parse --short=7 "$c^{commit}" 2>/dev/null) || { skip "fw: no commit $c"; continue; }
        if [ ! -s "$FW/$id/firmware-v1.bin" ] && [ -n "$zsrc" ]; then
            rm -rf "$FW/src-$id" "$FW/$id" && mkdir -p "$FW/src-$id"
            git -C "$SRC" archive "$id" | tar -x -C "$FW/src-$id" &&
                sh "$FW/src-$id/examples/firmware/build.sh" "$FW/$id" "$zsrc" >"$FW/$id.log" 2>&1 &&
                if [ "$c" = "$(echo "$FW_COMMITS" | awk '{print $NF}')" ]; then
                    FW_VERSION=2 sh "$FW/src-$id/examples/firmware/build.sh" "$FW/$id" "$zsrc" >>"$FW/$id.log" 2>&1
                fi
            rm -rf "$FW/src-$id"
        fi
        if [ -s "$FW/$id/firmware-v1.bin" ]; then fwimg+=("$id"); else skip "fw: build at $id failed ($FW/$id.log)"; fi
    done
else
    skip "fw: no arm-none-eabi-gcc or no git history"
fi
n=${#fwimg[@]}
for ((i = 0; i + 1 < n; i++)); do
    pair "fw_${fwimg[i]}_${fwimg[i + 1]}" "$FW/${fwimg[i]}/firmware-v1.bin" "$FW/${fwimg[i + 1]}/firmware-v1.bin"
done
if [ "$n" -ge 4 ]; then
    pair "fw_${fwimg[0]}_${fwimg[2]}" "$FW/${fwimg[0]}/firmware-v1.bin" "$FW/${fwimg[2]}/firmware-v1.bin"
    pair "fw_${fwimg[1]}_${fwimg[n - 2]}" "$FW/${fwimg[1]}/firmware-v1.bin" "$FW/${fwimg[n - 2]}/firmware-v1.bin"
    pair "fw_${fwimg[0]}_${fwimg[n - 1]}" "$FW/${fwimg[0]}/firmware-v1.bin" "$FW/${fwimg[n - 1]}/firmware-v1.bin"
fi
if [ "$n" -ge 1 ] && [ -s "$FW/${fwimg[n - 1]}/firmware-v2.bin" ]; then
    pair "fw_${fwimg[n - 1]}_v1v2" "$FW/${fwimg[n - 1]}/firmware-v1.bin" "$FW/${fwimg[n - 1]}/firmware-v2.bin"
fi

# ---- Debian packages -----------------------------------------------------
DEB="$OUT/cache/deb"
mkdir -p "$DEB"
# NAME PKG PATH-IN-PACKAGE
debpair() {
    local name=$1 pkg=$2 path=$3 v vers=() k
    if [ ! -s "$DEB/$name/new" ]; then
        mapfile -t vers < <(apt-cache madison "$pkg" 2>/dev/null | awk -F'|' '$3 ~ /Packages/ {gsub(/ /, "", $2); print $2}' |
            sort -u | sort -V -r | head -2)
        [ "${#vers[@]}" -eq 2 ] || { skip "$name: $pkg has ${#vers[@]} version(s) in the index"; return; }
        rm -rf "$DEB/$name" && mkdir -p "$DEB/$name"
        for k in 1 0; do
            v=${vers[k]}
            (cd "$DEB/$name" && rm -f ./*.deb && apt-get download -q "$pkg=$v" >/dev/null 2>&1) &&
                dpkg-deb -x "$DEB/$name"/*.deb "$DEB/$name/x$k" ||
                { skip "$name: $pkg=$v not downloaded"; return; }
        done
        [ -f "$DEB/$name/x1/$path" ] && [ -f "$DEB/$name/x0/$path" ] || { skip "$name: no $path"; return; }
        cp "$DEB/$name/x1/$path" "$DEB/$name/old" && cp "$DEB/$name/x0/$path" "$DEB/$name/new" &&
            echo "$pkg ${vers[1]} -> ${vers[0]} $path" >"$DEB/$name/info"
        rm -rf "$DEB/$name"/x? "$DEB/$name"/*.deb
    fi
    pair "$name" "$DEB/$name/old" "$DEB/$name/new"
}
if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    debpair deb_libssl libssl3 usr/lib/x86_64-linux-gnu/libssl.so.3
    debpair deb_legacy libssl3 usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so
    debpair deb_libcurl libcurl4 usr/lib/x86_64-linux-gnu/libcurl.so.4.8.0
    debpair deb_liblzma liblzma5 lib/x86_64-linux-gnu/liblzma.so.5.4.1
    debpair deb_libpng libpng16-16 usr/lib/x86_64-linux-gnu/libpng16.so.16.39.0
else
    skip "deb: no apt-get/dpkg-deb"
fi

# ---- zlib at two optimisation levels ---------------------------------------
zs=$(find "$OUT/cache/zlib-src" -maxdepth 2 -name zlib.h -path '*zlib-*' 2>/dev/null | head -1)
if [ -n "$zs" ]; then
    zs=$(dirname "$zs")
    for o in 2 3; do
        [ -s "$OUT/cache/libz-O$o.so" ] ||
            (cd "$zs" && gcc -O$o -fPIC -shared -o "$OUT/cache/libz-O$o.so" adler32.c crc32.c deflate.c infback.c \
                inffast.c inflate.c inftrees.c trees.c zutil.c compress.c uncompr.c gzclose.c gzlib.c gzread.c \
                gzwrite.c 2>>"$OUT/cache/zlib.log")
    done
    [ -s "$OUT/cache/libz-O3.so" ] && pair zlib_o2o3 "$OUT/cache/libz-O2.so" "$OUT/cache/libz-O3.so"
fi

# ---- edge shapes cut from the real images ----------------------------------
A="" B="" Lg=""
[ "$n" -ge 2 ] && A="$FW/${fwimg[0]}/firmware-v1.bin" B="$FW/${fwimg[n - 1]}/firmware-v1.bin"
[ -s "$OUT/pairs/deb_libpng/new" ] && Lg="$OUT/pairs/deb_libpng/new"
[ -z "$A" ] && [ -s "$OUT/pairs/zlib_o2o3/old" ] && A="$OUT/pairs/zlib_o2o3/old" B="$OUT/pairs/zlib_o2o3/new"
if [ -n "$A" ]; then
    E="$OUT/cache/edge"
    mkdir -p "$E"
    cutimg() { head -c "$2" "$1" >"$E/$3"; }
    cutimg "$A" 25001 a25001 && cutimg "$B" 23457 b23457 && pair edge_odd "$E/a25001" "$E/b23457"
    cutimg "$A" 7777 a7777 && cutimg "$B" 19999 b19999 && pair edge_odd_grow "$E/a7777" "$E/b19999"
    cutimg "$A" 256 a256 && cutimg "$B" 256 b256 && pair edge_one256 "$E/a256" "$E/b256"
    cutimg "$A" 4096 a4096 && cutimg "$B" 4096 b4096 && pair edge_one4k "$E/a4096" "$E/b4096"
    cutimg "$A" 16384 a16k && cutimg "$B" 16384 b16k && pair edge_one16k "$E/a16k" "$E/b16k"
    pair edge_same_odd "$B" "$B"
    pair edge_same_4k "$E/b4096" "$E/b4096"
    cutimg "$A" 1 a1 && tail -c 1 "$B" >"$E/b1" && pair edge_byte "$E/a1" "$E/b1"
    if [ -n "$Lg" ]; then
        pair edge_grow "$B" "$Lg"
        pair edge_shrink "$Lg" "$A"
    fi
fi

# ---- flashes: "label|otaup delta options|user-data bytes" ------------------
FLASHES=(
    "u4k|--sector-size 4096 --source 0x2000|8192"
    "f4|--sector-map 4x16K,1x64K,7x128K --base 0x08000000 --source 0x08010000|65536"
    "f4s|--sector-map 4x16K,1x64K,7x128K --base 0x08000000 --source 0x08010000 --ram 64K --scratch 0x080E0000 --scratch-size 128K|65536"
    "s256|--sector-size 256 --source 0x400|1024"
    "u4k-sig|--sector-size 4096 --source 0x2000|8192"
)
base_of() { sed -n 's/.*"geometry":{"base":\([0-9]*\).*/\1/p' "$1"; }
jf() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$1"; }
# region_is F FILE OFF ERASED [LEN]: LEN (default all) bytes of FILE at OFF of F (beyond F: erased)
region_is() {
    local n=${5:-$(stat -c %s "$2")}
    [ "$n" -eq 0 ] && return 0
    cmp -s <({ tail -c +$(($3 + 1)) "$1"; head -c "$n" /dev/zero | tr '\0' "\\$(printf %o "$4")"; } | head -c "$n") \
        <(head -c "$n" "$2")
}

one() { # PAIRDIR LAYOUT FLASH-LABEL USERBYTES OPTS...
    local pair=$1 layout=$2 label=$3 ub=$4
    shift 4
    local name w d f u rc ops off soff er ab nlen k i j nc torn rep mk
    name=$(basename "$pair")
    w="$OUT/w/$name.$layout.$label"
    mkdir -p "$w"
    d="$w/p.delta" f="$w/F" u="$w/user"
    if [ "${label%-sig}" != "$label" ]; then
        run sig "$pair/old" -o "$w/old.sig" -q --block-size 1024 &&
            run delta --from-sig "$w/old.sig" "$pair/new" -o "$d" -q --mode "$layout" "$@" >"$w/delta.out" 2>&1
    else
        run delta "$pair/old" "$pair/new" -o "$d" -q --mode "$layout" "$@" >"$w/delta.out" 2>&1
    fi
    rc=$?
    if [ $rc -ne 0 ]; then
        if [ $rc -eq 1 ] && [ -s "$w/delta.out" ]; then
            NREF=$((NREF + 1))
            echo "$name $layout $label: $(head -1 "$w/delta.out")" >>"$OUT/refused.txt"
        else
            fail "$name $layout $label: delta exit $rc: $OTAUP delta $pair/old $pair/new -o $d --mode $layout $*"
        fi
        return
    fi
    NCASE=$((NCASE + 1))
    run apply "$pair/old" "$d" -o "$w/out" >"$w/file.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || ! cmp -s "$w/out" "$pair/new"; then
        fail "$name $layout $label: apply to file exit $rc or OUT != NEW: $OTAUP apply $pair/old $d -o OUT"
        return
    fi
    run inspect --json "$d" >"$w/i.json" 2>&1 || { fail "$name $layout $label: inspect: $OTAUP inspect --json $d"; return; }
    local base
    base=$(base_of "$w/i.json")
    off=$(($(jf "$w/i.json" target_addr) - base))
    soff=$(($(jf "$w/i.json" source_addr) - base))
    er=$(sed -n 's/.*"erased":\([0-9]*\).*/\1/p' "$w/i.json")
    nlen=$(stat -c %s "$pair/new")
    ab=0
    [ "$layout" = ab ] && ab=1
    [ "$soff" -eq "$ub" ] || { fail "$name $layout $label: source offset $soff, not $ub"; return; }
    head -c "$ub" /dev/urandom >"$u"
    mk="cp $u F; cat $pair/old >> F; rm -f F.otaup-state"
    make_flash() { rm -f "$f" "$f.otaup-state"; cat "$u" "$pair/old" >"$f"; }
    # intact REPRO WHEN: user data unchanged; A/B: OLD in its slot
    intact() {
        if ! region_is "$f" "$u" 0 "$er"; then
            fail "$name $layout $label: user data changed $2: $1"
            return 1
        fi
        if [ $ab = 1 ] && ! region_is "$f" "$pair/old" "$soff" "$er"; then
            fail "$name $layout $label: A/B old slot changed $2: $1"
            return 1
        fi
    }
    # done_ok REPRO OUTFILE: NEW at the target, no sidecar, intact
    done_ok() {
        if [ $rc -ne 0 ] || ! region_is "$f" "$pair/new" "$off" "$er" "$nlen" || [ -e "$f.otaup-state" ]; then
            fail "$name $layout $label: exit $rc or target != NEW: $1  ($(tail -1 "$2"))"
            return 1
        fi
        intact "$1" "at the end"
    }
    make_flash
    run apply --flash "$f" "$d" --stats >"$w/clean.out" 2>&1
    rc=$?
    done_ok "$mk; $OTAUP apply --flash F $d" "$w/clean.out" || return
    ops=$(sed -n 's/^flash operations: \([0-9]*\).*/\1/p' "$w/clean.out")
    [ -n "$ops" ] && [ "$ops" -gt 0 ] || return 0
    # cut_seq REPRO K [TORN] ...: cuts in a row, then a resume
    cut_seq() {
        local r=$1
        shift
        make_flash
        while [ $# -gt 0 ]; do
            r="$r; $OTAUP apply --flash F $d --cut-after $1 $2"
            run apply --flash "$f" "$d" --cut-after "$1" $2 >"$w/cut.out" 2>&1
            rc=$?
            if [ $rc -ne 3 ] && [ $rc -ne 0 ]; then
                fail "$name $layout $label: cut run exit $rc: $r  ($(tail -1 "$w/cut.out"))"
                return 1
            fi
            intact "$r" "by a cut" || return 1
            shift 2
        done
        r="$r; $OTAUP apply --flash F $d"
        run apply --flash "$f" "$d" >"$w/resume.out" 2>&1
        rc=$?
        done_ok "$r" "$w/resume.out"
    }
    if [ "$ops" -le "$EVERY" ]; then
        for k in $(seq 1 "$ops"); do
            for torn in "" "--torn"; do
                NEVERY=$((NEVERY + 1))
                cut_seq "$mk" "$k" "$torn" || true
            done
        done
    fi
    for i in $(seq 1 "$CUTS"); do
        NSEQ=$((NSEQ + 1))
        local args=()
        nc=$((1 + RANDOM % 3))
        for j in $(seq 1 "$nc"); do
            k=$((1 + (RANDOM * 32768 + RANDOM) % (ops + 2)))
            torn=""
            [ $((RANDOM % 2)) = 1 ] && torn="--torn"
            args+=("$k" "$torn")
        done
        cut_seq "$mk" "${args[@]}" || true
    done
}

# ---- sizes against bsdiff, xdelta3 -9, zstd -19 --patch-from ---------------
printf '%-28s %9s %9s %9s %9s %9s %9s %9s  %s\n' pair old new otaup-ip otaup-ab bsdiff xdelta3 zstd ip/ab:best >"$SIZES"
sizes() { # PAIRDIR
    local p=$1 name ip ab bs xd zs best r flag=""
    name=$(basename "$p")
    ip=$(run delta "$p/old" "$p/new" -o "$OUT/w/s.ip" -q --sector-size 4096 >/dev/null 2>&1 && stat -c %s "$OUT/w/s.ip" || echo -)
    ab=$(run delta "$p/old" "$p/new" -o "$OUT/w/s.ab" -q --sector-size 4096 --mode ab >/dev/null 2>&1 &&
        stat -c %s "$OUT/w/s.ab" || echo -)
    bs=- xd=- zs=-
    command -v bsdiff >/dev/null && timeout "$TIMEOUT" bsdiff "$p/old" "$p/new" "$OUT/w/s.bs" 2>/dev/null &&
        bs=$(stat -c %s "$OUT/w/s.bs")
    command -v xdelta3 >/dev/null && timeout "$TIMEOUT" xdelta3 -9 -e -f -s "$p/old" "$p/new" "$OUT/w/s.xd" 2>/dev/null &&
        xd=$(stat -c %s "$OUT/w/s.xd")
    command -v zstd >/dev/null && timeout "$TIMEOUT" zstd -q -f -19 --patch-from="$p/old" "$p/new" -o "$OUT/w/s.zs" 2>/dev/null &&
        zs=$(stat -c %s "$OUT/w/s.zs")
    best=$(printf '%s\n' "$bs" "$xd" "$zs" | grep -v -- - | sort -n | head -1)
    r=-
    if [ -n "$best" ] && [ "$best" -gt 0 ] && [ "$ip" != - ] && [ "$ab" != - ]; then
        local m=$((ip > ab ? ip : ab))
        r=$(awk -v a="$ip" -v c="$ab" -v b="$best" 'BEGIN { printf "%.2f/%.2f", a / b, c / b }')
        if [ $((2 * m)) -gt $((3 * best)) ]; then
            flag="  FLAG >1.5x best peer (+$((m - best)) B)"
            NFLAG=$((NFLAG + 1))
        fi
    fi
    printf '%-28s %9s %9s %9s %9s %9s %9s %9s  %s%s\n' "$name" "$(stat -c %s "$p/old")" "$(stat -c %s "$p/new")" \
        "$ip" "$ab" "$bs" "$xd" "$zs" "$r" "$flag" >>"$SIZES"
}

# firmware first, the edges last (BUDGET cuts the end off)
for p in "$OUT/pairs"/fw_* "$OUT/pairs"/deb_* "$OUT/pairs"/zlib_* "$OUT/pairs"/edge_*; do
    [ -f "$p/new" ] || continue
    name=$(basename "$p")
    if [ $(($(date +%s) - T0)) -ge "$BUDGET" ]; then
        skip "$name: time budget ($BUDGET s) spent"
        continue
    fi
    n0=$((NCASE + NREF))
    [ -z "$FILTER" ] && sizes "$p"
    for layout in inplace ab; do
        for s in "${FLASHES[@]}"; do
            label=${s%%|*}
            rest=${s#*|}
            opts=${rest%%|*}
            ub=${rest#*|}
            if [ -n "$FILTER" ] && ! echo "$name.$layout.$label" | grep -q -- "$FILTER"; then
                continue
            fi
            if [ "$label" = s256 ]; then
                if [ "$layout" = ab ]; then opts="$opts --write-size 16"; else opts="$opts --write-size 8"; fi
            fi
            # A/B on 128 KiB sectors: staging for a whole target sector
            [ "$label" = f4 ] && [ "$layout" = ab ] && opts="$opts --ram 160K"
            [ "$label" = f4s ] && [ "$layout" = inplace ] && continue
            # shellcheck disable=SC2086
            one "$p" "$layout" "$label" "$ub" $opts
        done
    done
    [ $((NCASE + NREF)) -gt "$n0" ] || continue
    NPAIR=$((NPAIR + 1))
    echo "[$(($(date +%s) - T0))s] $name: deltas $NCASE refused $NREF runs $NRUN fails $NFAIL"
done
cat "$SIZES"
echo "realpairs: $NPAIR pairs, $NCASE deltas ($NREF refused), $NEVERY every-op cuts, $NSEQ cut sequences;" \
    "$NRUN otaup runs, $NFAIL failures, $NFLAG pairs over 1.5x the best peer, in $(($(date +%s) - T0))s" \
    "(details: $OUT/fails.txt, sizes.txt, refused.txt, skipped.txt)"
[ "$NFAIL" -eq 0 ]
exit
}
