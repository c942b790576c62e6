#!/bin/sh
# Build the otaup test firmware for a Cortex-M4 and print its footprint.
#
#   examples/firmware/build.sh OUTDIR ZLIB_SRC_DIR
#
# Environment: FW_VERSION (1 or 2; default 1) selects the application
# version, so that two builds form a real Cortex-M delta pair;
# STAGING, WBITS, MAX_OPS size the updater's buffers (default 4096, 11, 32),
# MAX_FRAME, MAX_MSG the protocol applier's (default 256, 512);
# FW_CFLAGS adds compiler flags for every object, after the defaults (e.g.
# -O2: the delta benchmark's second firmware pair; -flto with FW_LDFLAGS=-flto
# reaches the application's objects only: the RAM-resident ones are always
# built -fno-lto); FW_LDFLAGS adds flags to the link; FW_LD names another
# linker script (default fw.ld beside this script); OTAUP_LIB links that
# otaup archive instead of compiling lib/core (residency check only, no
# footprint); OTAUP_CFLAGS adds flags
# for otaup's objects only (e.g. -DOTAUP_CONFIG_FILE=...); CROSS (default
# arm-none-eabi-); FOOTPRINT_VERBOSE=1 prints the deepest stack path and
# the code per object.
#
# Links the same application twice:
#   firmware-vN.elf, .bin, .map    with the executor-only updater (updater.c:
#                                  a delta stream over the UART); the .bin is
#                                  the raw image of the application slot
#   firmware-proto-vN.elf, .map    with the full protocol applier
#                                  (updater_proto.c: otaup_apply over the UART)
# checks that nothing in .ramfunc calls or loads from flash
# (check_resident.py; the build fails otherwise), and prints per
# configuration: code of applier + codec (otaup objects), of which xxHash and CRC, zlib inflate, the glue; static RAM; the RAM to apply
# (static buffers and contexts by symbol size, deepest stack from
# -fcallgraph-info) — footprint.py.
set -eu
out="${1:?usage: build.sh OUTDIR ZLIB_SRC_DIR}"
mkdir -p "$out" && out="$(cd "$out" && pwd)"
zsrc="${2:?usage: build.sh OUTDIR ZLIB_SRC_DIR}"
zsrc="$(cd "$zsrc" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
v="${FW_VERSION:-1}"
cross="${CROSS:-arm-none-eabi-}"
staging="${STAGING:-4096}"
wbits="${WBITS:-11}"
maxops="${MAX_OPS:-32}"
maxframe="${MAX_FRAME:-256}"
maxmsg="${MAX_MSG:-512}"
fwcflags="${FW_CFLAGS:-}"
fwldflags="${FW_LDFLAGS:-}"
otaupcflags="${OTAUP_CFLAGS:-}"
ldscript="${FW_LD:-$here/fw.ld}"
cc="${cross}gcc"
command -v "$cc" >/dev/null || { echo "build.sh: $cc not found" >&2; exit 1; }
[ -f "$zsrc/inflate.c" ] || { echo "build.sh: no zlib source in $zsrc" >&2; exit 1; }
xxh="$(for d in /usr/include /usr/local/include; do [ -f "$d/xxhash.h" ] && echo "$d" && break; done)"
[ -n "$xxh" ] || { echo "build.sh: xxhash.h not found (libxxhash-dev)" >&2; exit 1; }

obj="$out/obj-v$v"
rm -rf "$obj" && mkdir -p "$obj/inc/otaup"
cp "$xxh/xxhash.h" "$obj/inc/"           # header only; no host headers on the path
cat > "$obj/inc/otaup/features.h" <<EOT
#ifndef OTAUP_FEATURES_H
#define OTAUP_FEATURES_H
#define OTAUP_TERMINAL_ONLY_BUILD 1
#define OTAUP_HAVE_MBEDTLS 0
#define OTAUP_HAVE_SQLITE 0
#endif
EOT

cpu="-mcpu=cortex-m4 -mthumb -mfloat-abi=soft"
common="$cpu -Os -ffunction-sections -fdata-sections -fno-common -ffreestanding $fwcflags"
# the RAM-resident objects are never link-time optimised: fw.ld places them in
# .ramfunc by object file name, which LTO's partitions no longer carry (it
# would leave inflate, constants and out-of-line helpers in flash)
resident="$common -fno-lto"
su="-fstack-usage -fcallgraph-info=su"
otaupf="-std=c99 -Wall -Wextra -Werror -DOTAUP_CONFIG_TERMINAL=1 -DOTAUP_CONFIG_RAM_RESIDENT=1 -DOTAUP_CONFIG_NO_ERROR_STRINGS \
        -I$src/include -I$src/lib -I$obj/inc -I$zsrc $otaupcflags"
zf="-DZ_SOLO -DNO_GZIP -I$zsrc"
sizes="-DSTAGING=${staging}u -DWBITS=${wbits}u -DMAX_OPS=${maxops}u -DMAX_FRAME=${maxframe}u -DMAX_MSG=${maxmsg}u"

# each object: compiled in $obj, stack usage and call graph (.su, .ci) beside it
ccobj() { # NAME SOURCE FLAGS...
    n="$1"; s="$2"; shift 2
    "$cc" "$@" -c "$s" -o "$obj/$n.o"
}
# otaup's terminal objects: the executor's and the applier's (whatever lib/core has of them)
exec_objs=""
apply_objs=""
otauplib="${OTAUP_LIB:-}"
if [ -n "$otauplib" ]; then
    # link an otaup archive built elsewhere (e.g. CMake with
    # cmake/arm-none-eabi.cmake and -DOTAUP_RAM_RESIDENT=ON) instead of
    # compiling lib/core here: the residency check then proves that fw.ld's
    # rules catch its members, whatever they are named
    [ -f "$otauplib" ] || { echo "build.sh: no archive $otauplib" >&2; exit 1; }
    exec_objs="$(cd "$(dirname "$otauplib")" && pwd)/$(basename "$otauplib")"
fi
for f in exec journal record geometry xxh3 crc32; do
    [ -z "$otauplib" ] || break
    [ -f "$src/lib/core/$f.c" ] || continue
    ccobj "$f" "$src/lib/core/$f.c" $resident $su $otaupf
    exec_objs="$exec_objs $obj/$f.o"
done
for f in apply proto proto_msg image seal crypto; do  # seal, crypto: only with OTAUP_CONFIG_SEALED (else dropped by --gc-sections)
    [ -z "$otauplib" ] || break
    ccobj "$f" "$src/lib/core/$f.c" $resident $su $otaupf
    apply_objs="$apply_objs $obj/$f.o"
done
zobjs=""
for f in inflate inftrees inffast zutil adler32 crc32; do
    n="$f"; [ "$f" = crc32 ] && n=zcrc32
    ccobj "$n" "$zsrc/$f.c" $resident $su $zf -w
    zobjs="$zobjs $obj/$n.o"
done
ccobj board "$here/board.c" $resident $su $otaupf
ccobj updater "$here/updater.c" $resident $su $otaupf $sizes
ccobj updater_proto "$here/updater_proto.c" $resident $su $otaupf $sizes
ccobj app "$here/app.c" $common -std=c99 -Wall -Wextra -Werror -DFW_VERSION="$v"
for f in main startup; do
    ccobj "$f" "$here/$f.c" $common $su -std=c99 -Wall -Wextra -Werror
done
# never link-time optimised: the link keeps memcpy and memset for the calls
# the compiler itself makes
ccobj memfuncs "$here/memfuncs.c" $resident $su -std=c99 -Wall -Wextra -Werror
base="$obj/app.o $obj/main.o $obj/startup.o $obj/memfuncs.o $obj/board.o"

link() { # ELF MAP OBJECTS...
    e="$1"; m="$2"; shift 2
    "$cc" $cpu -Os $fwldflags -nostdlib -nostartfiles -Wl,--gc-sections -Wl,--emit-relocs -Wl,-T,"$ldscript" -Wl,-Map,"$m" -o "$e" "$@" -lgcc
}
elf="$out/firmware-v$v.elf"
pelf="$out/firmware-proto-v$v.elf"
# shellcheck disable=SC2086
link "$elf" "$out/firmware-v$v.map" $base "$obj/updater.o" $exec_objs $zobjs
# shellcheck disable=SC2086
link "$pelf" "$out/firmware-proto-v$v.map" $base "$obj/updater_proto.o" $exec_objs $apply_objs $zobjs
"${cross}objcopy" -O binary "$elf" "$out/firmware-v$v.bin"

echo "firmware v$v: $elf, $out/firmware-v$v.bin ($(wc -c < "$out/firmware-v$v.bin") bytes); with the protocol applier: $pelf"
"${cross}size" "$elf" "$pelf"
for e in "$elf" "$pelf"; do
    echo "RAM-resident code of $(basename "$e") (.ramfunc, copied at start-up): $("${cross}size" -A "$e" | awk '$1 == ".ramfunc" { print $2 }') B"
done

# nothing in .ramfunc may call or load from flash (relocations kept by --emit-relocs)
python3 "$here/check_resident.py" --readelf "${cross}readelf" "$elf" "$pelf"

if [ -n "$otauplib" ]; then
    echo "footprint: not reported for an archive built elsewhere (OTAUP_LIB): its flags are not these"
    exit 0
fi

verbose=""
[ "${FOOTPRINT_VERBOSE:-0}" = 1 ] && verbose="--verbose"
python3 "$here/footprint.py" --nm "${cross}nm" --ci "$obj" \
    --staging "$staging" --wbits "$wbits" --max-ops "$maxops" --max-frame "$maxframe" --max-msg "$maxmsg" \
    --config "executor-only updater:$out/firmware-v$v.map:$elf:updater_run:updater_proto.ci" \
    --config "full protocol applier:$out/firmware-proto-v$v.map:$pelf:updater_run:updater.ci" $verbose
