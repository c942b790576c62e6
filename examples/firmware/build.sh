#!/bin/sh
# Build the otaup test firmware for a Cortex-M4 and print the footprint.
#
#   examples/firmware/build.sh OUTDIR ZLIB_SRC_DIR
#
# Environment: FW_VERSION (1 or 2; default 1) selects the application
# version, so that two builds form a real Cortex-M delta pair;
# STAGING, WBITS, MAX_OPS size the updater's buffers (default 4096, 11, 32);
# FW_CFLAGS adds compiler flags for every object, after the defaults (e.g.
# -O2: the delta benchmark's second firmware pair); CROSS (default
# arm-none-eabi-).
#
# Writes OUTDIR/firmware-vN.elf, .bin (raw image of the application slot)
# and .map, and prints: code of applier + codec (otaup objects) vs zlib
# inflate, their static RAM, the updater's buffers and total RAM to apply.
set -eu
out="${1:?usage: build.sh OUTDIR ZLIB_SRC_DIR}"
zsrc="${2:?usage: build.sh OUTDIR ZLIB_SRC_DIR}"
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
v="${FW_VERSION:-1}"
cross="${CROSS:-arm-none-eabi-}"
staging="${STAGING:-4096}"
wbits="${WBITS:-11}"
maxops="${MAX_OPS:-32}"
fwcflags="${FW_CFLAGS:-}"
cc="${cross}gcc"
command -v "$cc" >/dev/null || { echo "build.sh: $cc not found" >&2; exit 1; }
[ -f "$zsrc/inflate.c" ] || { echo "build.sh: no zlib source in $zsrc" >&2; exit 1; }
xxh="$(for d in /usr/include /usr/local/include; do [ -f "$d/xxhash.h" ] && echo "$d" && break; done)"
[ -n "$xxh" ] || { echo "build.sh: xxhash.h not found (libxxhash-dev)" >&2; exit 1; }

obj="$out/obj-v$v"
rm -rf "$obj" && mkdir -p "$obj/inc"
cp "$xxh/xxhash.h" "$obj/inc/"           # header only, XXH_INLINE_ALL; no host headers on the path
cat > "$obj/inc/features.h" <<EOT
#ifndef OTAUP_FEATURES_H
#define OTAUP_FEATURES_H
#define OTAUP_TERMINAL_ONLY_BUILD 1
#define OTAUP_HAVE_MBEDTLS 0
#define OTAUP_HAVE_SQLITE 0
#endif
EOT
mkdir -p "$obj/inc/otaup" && mv "$obj/inc/features.h" "$obj/inc/otaup/"

cpu="-mcpu=cortex-m4 -mthumb -mfloat-abi=soft"
common="$cpu -Os -ffunction-sections -fdata-sections -fno-common -ffreestanding $fwcflags"
otaupf="-std=c99 -Wall -Wextra -Werror -DOTAUP_CONFIG_RAM_RESIDENT=1 -DOTAUP_CONFIG_NO_ERROR_STRINGS \
        -I$src/include -I$src/lib -I$obj/inc -I$zsrc"
zf="-DZ_SOLO -DNO_GZIP -I$zsrc"

for f in exec journal record geometry; do
    "$cc" $common $otaupf -c "$src/lib/core/$f.c" -o "$obj/$f.o"
done
for f in inflate inftrees inffast zutil adler32; do
    "$cc" $common $zf -w -c "$zsrc/$f.c" -o "$obj/$f.o"
done
"$cc" $common $otaupf -DSTAGING="${staging}u" -DWBITS="${wbits}u" -DMAX_OPS="${maxops}u" \
    -c "$here/updater.c" -o "$obj/updater.o"
"$cc" $common -std=c99 -Wall -Wextra -Werror -DFW_VERSION="$v" -c "$here/app.c" -o "$obj/app.o"
for f in main startup memfuncs; do
    "$cc" $common -std=c99 -Wall -Wextra -Werror -c "$here/$f.c" -o "$obj/$f.o"
done

elf="$out/firmware-v$v.elf"
"$cc" $cpu -nostdlib -nostartfiles -Wl,--gc-sections -Wl,-T,"$here/fw.ld" -Wl,-Map,"$out/firmware-v$v.map" \
    -o "$elf" "$obj"/*.o -lgcc
"${cross}objcopy" -O binary "$elf" "$out/firmware-v$v.bin"

echo "firmware v$v: $elf, $out/firmware-v$v.bin ($(wc -c < "$out/firmware-v$v.bin") bytes)"
"${cross}size" "$elf"

# Per-group sizes from the link map (only what survived --gc-sections).
awk -v staging="$staging" -v wbits="$wbits" -v maxops="$maxops" '
function hex(s,   i, c, v) { v = 0; s = tolower(s); sub(/^0x/, "", s)
    for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
    return v }
function group(f) { sub(/.*\//, "", f)
    if (f ~ /^(exec|journal|record|geometry)\.o$/) return "otaup"
    if (f ~ /^(inflate|inftrees|inffast|zutil|adler32)\.o$/) return "zlib"
    if (f ~ /^(updater|memfuncs)\.o$/) return "glue"
    return "app" }
function add(sec, f, size,   g, k) { g = group(f)
    if (sec ~ /^\.(text|ramfunc|vectors)/) k = "code"; else if (sec ~ /^\.(data|bss)/) k = "ram"; else return
    tot[g, k] += size }
/^Linker script and memory map/ { go = 1; next }
!go { next }
/^\.[A-Za-z_]/ { out = $1; if (NF >= 3 && $3 ~ /^0x/) {} ; next }
/^ [^ ]/ {
    if ($1 == "*fill*") { pend = 0; next }
    if (NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/) { add(out, $4, hex($3)); pend = 0 }
    else if (NF == 1) pend = 1; else pend = 0
    next }
/^  +0x/ { if (pend && NF == 3 && $2 ~ /^0x/) add(out, $3, hex($2)); pend = 0; next }
END {
    printf "footprint (Cortex-M4, -Os, gc-sections; code includes constants):\n"
    printf "  applier + codec (exec, journal, record, geometry): code %6d B, static RAM %d B\n", tot["otaup","code"], tot["otaup","ram"]
    printf "  zlib inflate (inflate, inftrees, inffast, zutil, adler32): code %6d B, static RAM %d B\n", tot["zlib","code"], tot["zlib","ram"]
    printf "  updater glue (flash driver, link, memfuncs): code %6d B, static RAM %d B (buffers below)\n", tot["glue","code"], tot["glue","ram"]
    printf "  application: code %6d B, static RAM %d B\n", tot["app","code"], tot["app","ram"]
}' "$out/firmware-v$v.map"

# The updater's RAM: its static objects, by symbol size.
"${cross}nm" -S --size-sort "$elf" | awk '
function hex(s,   i, c, v) { v = 0; s = tolower(s)
    for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
    return v }
$4 == "g_work" { w = hex($2) } $4 == "g_exec" { e = hex($2) } $4 == "g_journal" { j = hex($2) } $4 == "g_flash" { f = hex($2) }
END {
    printf "updater RAM: work area %d B (staging + deferred table + inflate state and window), executor %d B, journal %d B, flash config %d B\n", w, e, j, f
    printf "  total static RAM to apply: %d B (+ stack, see docs/porting.md)\n", w + e + j + f
}'
ramfunc=$("${cross}size" -A "$elf" | awk '$1 == ".ramfunc" { print $2 }')
echo "RAM-resident code (.ramfunc, copied at start-up): ${ramfunc} B"
