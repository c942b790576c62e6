#!/usr/bin/env bash
# bench/security/size-arm.sh — code size and RAM of the terminal's security
# part on a Cortex-M4 (arm-none-eabi-gcc -Os -mthumb, --gc-sections), with
# the mbedTLS it needs built from Debian's own mbedTLS source package.
#
#   bench/security/size-arm.sh [WORKDIR]
#
# Links a small program that uses everything a terminal needs: the
# verifier (manifest, signature, chain, executor hooks, target hash), the
# sealed backups and the mbedTLS backend (SHA-256, ECDSA P-256 verify,
# AES-256-GCM; no random source: OTAUP_MBEDTLS_NO_RANDOM), and reports
# per group what survived --gc-sections: otaup's security code, the rest
# of otaup it pulls in (delta header decode, geometry), the mbedTLS
# backend glue, mbedTLS itself. Also: sizeof(otaup_sec) and
# sizeof(otaup_seal) on the target, the largest stack frame of the security
# code (-fstack-usage), and the peak heap mbedTLS needs for one P-256
# verify (measured on the host with mbedTLS's buffer allocator, same
# configuration).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
WORK="${1:-$SRC/build/size-arm-security}"
CROSS="${CROSS:-arm-none-eabi-}"
CC="${CROSS}gcc"
command -v "$CC" >/dev/null || { echo "size-arm.sh: $CC not found (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)" >&2; exit 1; }
MSRC="$("$HERE/fetch-mbedtls-source.sh" "$SRC/build/mbedtls-src")"
XXH="$(for d in /usr/include /usr/local/include; do [ -f "$d/xxhash.h" ] && echo "$d" && break; done)"
[ -n "$XXH" ] || { echo "size-arm.sh: xxhash.h not found (libxxhash-dev)" >&2; exit 1; }

rm -rf "$WORK" && mkdir -p "$WORK/inc/otaup" "$WORK/obj" "$WORK/host"
cp "$XXH/xxhash.h" "$WORK/inc/"
cat > "$WORK/inc/otaup/features.h" <<'EOT'
#ifndef OTAUP_FEATURES_H
#define OTAUP_FEATURES_H
#define OTAUP_TERMINAL_ONLY_BUILD 1
#define OTAUP_HAVE_MBEDTLS 1
#define OTAUP_HAVE_SQLITE 0
#endif
EOT
# mbedTLS: only what a verifying terminal needs
cat > "$WORK/inc/otaup_mbedtls_config.h" <<'EOT'
#ifndef OTAUP_MBEDTLS_CONFIG_H
#define OTAUP_MBEDTLS_CONFIG_H
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECP_NO_INTERNAL_RNG /* verification handles public data only */
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA256_SMALLER
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#include "mbedtls/check_config.h"
#endif
EOT
MLIB=(sha256 ecdsa ecp ecp_curves bignum platform_util platform constant_time aes gcm cipher cipher_wrap
      asn1parse asn1write memory_buffer_alloc)
OURS=(chain manifest crypto seal)
PULLED=(delta_read geometry)

cpu=(-mcpu=cortex-m4 -mthumb -mfloat-abi=soft)
common=("${cpu[@]}" -Os -ffunction-sections -fdata-sections -fno-common)
minc=("-I$MSRC/include" "-I$WORK/inc" '-DMBEDTLS_CONFIG_FILE="otaup_mbedtls_config.h"')
otaupf=(-std=c99 -Wall -Wextra -Werror -DOTAUP_CONFIG_NO_ERROR_STRINGS "-I$SRC/include" "-I$SRC/lib" "-I$WORK/inc")

for f in "${MLIB[@]}"; do
    "$CC" "${common[@]}" "${minc[@]}" -w -c "$MSRC/library/$f.c" -o "$WORK/obj/m_$f.o"
done
for f in "${OURS[@]}" "${PULLED[@]}"; do
    "$CC" "${common[@]}" "${otaupf[@]}" -fstack-usage -c "$SRC/lib/core/$f.c" -o "$WORK/obj/o_$f.o"
done
"$CC" "${common[@]}" "${otaupf[@]}" "${minc[@]}" -DOTAUP_MBEDTLS_NO_RANDOM -c "$SRC/lib/mbedtls/crypto_mbedtls.c" -o "$WORK/obj/b_crypto_mbedtls.o"

# a program that uses all of it (never run: only linked and measured)
cat > "$WORK/main.c" <<'EOT'
#include <string.h>
#include "mbedtls/memory_buffer_alloc.h"
#include "otaup/sign.h"
static unsigned char heap[4096];
static otaup_sec sec;
static otaup_seal seal;
static otaup_crypto crypto;
static otaup_exec_hooks hooks;
volatile const unsigned char *in;
volatile size_t in_len;
volatile const otaup_flash *flash;
volatile const otaup_exec_step *step;
int main(void)
{
    otaup_sec_config cfg;
    unsigned char key[32], hdr[32], buf[64];
    mbedtls_memory_buffer_alloc_init(heap, sizeof heap);
    otaup_crypto_mbedtls(&crypto);
    memset(&cfg, 0, sizeof cfg);
    cfg.crypto = &crypto;
    cfg.flash = (const otaup_flash *)flash;
    if (otaup_sec_begin_delta(&sec, &cfg, (const unsigned char *)in, in_len) != 0) {
        return 1;
    }
    otaup_sec_exec_hooks(&sec, &hooks);
    hooks.record(hooks.ctx, 0x26, (const unsigned char *)in, in_len, 3);
    hooks.inner_record(hooks.ctx, 0x27, (const unsigned char *)in, in_len, 3);
    hooks.step_commit(hooks.ctx, (const otaup_exec_step *)step);
    hooks.final(hooks.ctx);
    memcpy(key, (const void *)in, sizeof key);
    otaup_seal_begin(&seal, &crypto, key, 1, 100, 64, key, hdr);
    otaup_seal_chunk(&seal, buf, 64, buf);
    otaup_seal_open_begin(&seal, &crypto, key, 1, hdr);
    otaup_seal_open_chunk(&seal, buf, 64, buf);
    otaup_seal_wipe(&seal);
    return otaup_sec_error(&sec);
}
EOT
"$CC" "${common[@]}" "${otaupf[@]}" "${minc[@]}" -c "$WORK/main.c" -o "$WORK/obj/main.o"
"$CC" "${cpu[@]}" -Wl,--gc-sections --specs=nano.specs --specs=nosys.specs -Wl,-Map,"$WORK/sec.map" \
    -o "$WORK/sec.elf" "$WORK"/obj/*.o -lc -lgcc
"${CROSS}size" "$WORK/sec.elf"

# per group, from the link map: sizes of the input sections that were kept
awk '
function hex(s,   i, c, v) { v = 0; s = tolower(s); sub(/^0x/, "", s)
    for (i = 1; i <= length(s); i++) { c = index("0123456789abcdef", substr(s, i, 1)) - 1; v = v * 16 + c }
    return v }
function group(f) { sub(/.*\//, "", f); sub(/\)$/, "", f)
    if (f ~ /^o_(chain|manifest|crypto|seal)\.o$/) return "otaup security (chain, manifest, crypto, seal)"
    if (f ~ /^o_/) return "otaup, pulled in (delta header decode, geometry)"
    if (f ~ /^b_/) return "mbedTLS backend glue (crypto_mbedtls.c)"
    if (f ~ /^m_/) return "mbedTLS (SHA-256, ECDSA P-256 verify, AES-GCM, bignum, ASN.1, allocator)"
    if (f ~ /main\.o$/) return ""
    return "C library (memcpy, calloc, ...)" }
/^Discarded input sections/ { skip = 1 } /^Memory Configuration/ { skip = 1 } /^Linker script and memory map/ { skip = 0; next }
skip { next }
/^ \.(text|rodata|data|bss)/ {
    name = $1; addr = $2; size = $3; file = $4
    if (NF == 1) { getline; addr = $1; size = $2; file = $3 }
    if (file == "" || hex(size) == 0) next
    g = group(file); if (g == "") next
    kind = (name ~ /^\.(data|bss)/) ? "ram" : "flash"
    if (name ~ /^\.data/) { tot[g, "flash"] += hex(size) }
    tot[g, kind] += hex(size); groups[g] = 1
    f = file; sub(/.*\//, "", f); if (f ~ /^o_/) { sub(/^o_/, "", f); per[f] += hex(size) } }
END { for (f in per) printf "    %-74s %8d\n", "lib/core/" f, per[f] > "/dev/stderr"
    for (g in groups) printf "%-78s %8d %8d\n", g, tot[g, "flash"], tot[g, "ram"] }' "$WORK/sec.map" 2>"$WORK/per.txt" | sort > "$WORK/groups.txt"
printf '%-78s %8s %8s\n' "group (what survived --gc-sections)" "flash B" "RAM B"
cat "$WORK/groups.txt"
echo "  of which, per otaup object (flash B):"
sort "$WORK/per.txt"

# struct sizes on the target
cat > "$WORK/sizes.c" <<'EOT'
#include "otaup/sign.h"
char size_otaup_sec[sizeof(otaup_sec)];
char size_otaup_seal[sizeof(otaup_seal)];
char size_otaup_manifest[sizeof(otaup_manifest)];
EOT
"$CC" "${common[@]}" "${otaupf[@]}" -c "$WORK/sizes.c" -o "$WORK/sizes.o"
"${CROSS}nm" -S "$WORK/sizes.o" | while read -r _ sz _ name; do
    echo "sizeof(${name#size_}) on Cortex-M4: $((16#$sz)) bytes"
done
echo "largest stack frames of the security code (-fstack-usage, bytes):"
cat "$WORK"/obj/o_chain.su "$WORK"/obj/o_manifest.su "$WORK"/obj/o_crypto.su "$WORK"/obj/o_seal.su 2>/dev/null |
    sort -t$'\t' -k2 -n -r | head -5 | awk -F'\t' '{ n = split($1, p, ":"); printf "  %6d  %s\n", $2, p[n] }'

# peak heap of one P-256 verify (and one AES-GCM chunk) with this mbedTLS configuration, on the host
cat > "$WORK/host/heap.c" <<'EOT'
#include <stdio.h>
#include <string.h>
#include "mbedtls/ecdsa.h"
#include "mbedtls/gcm.h"
#include "mbedtls/memory_buffer_alloc.h"
/* public key, digest and signature of RFC 6979 A.2.5 (P-256, SHA-256, "sample") */
static const char *qx = "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6";
static const char *qy = "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299";
static const char *rr = "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716";
static const char *ss = "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8";
static const char *hh = "AF2BDBE1AA9B6EC1E2ADE1D694F41FC71A831D0268E9891562113D8A62ADD1BF";
int main(void)
{
    static unsigned char pool[65536];
    unsigned char h[32], key[32] = { 0 }, iv[12] = { 0 }, buf[64] = { 0 }, tag[16];
    size_t peak_ecdsa, peak_gcm, blocks;
    mbedtls_ecp_group g; mbedtls_ecp_point q; mbedtls_mpi r, s, t;
    int rc, i;
    mbedtls_memory_buffer_alloc_init(pool, sizeof pool);
    mbedtls_ecp_group_init(&g); mbedtls_ecp_point_init(&q); mbedtls_mpi_init(&r); mbedtls_mpi_init(&s); mbedtls_mpi_init(&t);
    mbedtls_mpi_read_string(&t, 16, hh);
    mbedtls_mpi_write_binary(&t, h, 32);
    mbedtls_ecp_group_load(&g, MBEDTLS_ECP_DP_SECP256R1);
    mbedtls_ecp_point_read_string(&q, 16, qx, qy);
    mbedtls_mpi_read_string(&r, 16, rr);
    mbedtls_mpi_read_string(&s, 16, ss);
    rc = mbedtls_ecdsa_verify(&g, h, 32, &q, &r, &s);
    mbedtls_memory_buffer_alloc_max_get(&peak_ecdsa, &blocks);
    mbedtls_ecp_group_free(&g); mbedtls_ecp_point_free(&q); mbedtls_mpi_free(&r); mbedtls_mpi_free(&s); mbedtls_mpi_free(&t);
    mbedtls_memory_buffer_alloc_max_reset();
    {
        mbedtls_gcm_context c;
        mbedtls_gcm_init(&c);
        mbedtls_gcm_setkey(&c, MBEDTLS_CIPHER_ID_AES, key, 256);
        mbedtls_gcm_crypt_and_tag(&c, MBEDTLS_GCM_ENCRYPT, sizeof buf, iv, 12, NULL, 0, buf, buf, 16, tag);
        mbedtls_gcm_free(&c);
    }
    mbedtls_memory_buffer_alloc_max_get(&peak_gcm, &blocks);
    (void)i;
    printf("mbedTLS heap peak (host, same configuration): P-256 verify %zu bytes (verify %s), AES-256-GCM %zu bytes\n",
           peak_ecdsa, rc == 0 ? "ok" : "FAILED", peak_gcm);
    return rc != 0;
}
EOT
hostobjs=()
for f in "${MLIB[@]}"; do
    cc -O2 "${minc[@]}" -DMBEDTLS_MEMORY_DEBUG -w -c "$MSRC/library/$f.c" -o "$WORK/host/$f.o"
    hostobjs+=("$WORK/host/$f.o")
done
cc -O2 "${minc[@]}" -DMBEDTLS_MEMORY_DEBUG -c "$WORK/host/heap.c" -o "$WORK/host/heap.o"
cc -o "$WORK/host/heap" "$WORK/host/heap.o" "${hostobjs[@]}"
"$WORK/host/heap"
