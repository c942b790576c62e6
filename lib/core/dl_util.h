/*
 * Private helpers of the delta reader and the signature code: explicit
 * little-endian fields, varints, an aligned XXH3 state inside caller
 * storage. C99, header only.
 */
#ifndef OTAUP_CORE_DL_UTIL_H
#define OTAUP_CORE_DL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static inline void otaup_dl_put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void otaup_dl_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void otaup_dl_put64(uint8_t *p, uint64_t v)
{
    otaup_dl_put32(p, (uint32_t)v);
    otaup_dl_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t otaup_dl_get16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static inline uint32_t otaup_dl_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t otaup_dl_get64(const uint8_t *p)
{
    return (uint64_t)otaup_dl_get32(p) | ((uint64_t)otaup_dl_get32(p + 4) << 32);
}

/* An XXH3 state placed at the first 64-byte boundary of `space`
 * (OTAUP_XXH3_STATE_SPACE bytes). */
static inline XXH3_state_t *otaup_dl_xxh3_state(unsigned char *space)
{
    uintptr_t p = ((uintptr_t)space + 63u) & ~(uintptr_t)63u;
    return (XXH3_state_t *)(void *)p;
}

/* Unsigned LEB128, shortest form, at most 5 bytes (32-bit values).
 * Returns bytes consumed, 0 if in[0..len) ends first, -1 if malformed. */
static inline int otaup_dl_varint_get(const uint8_t *in, size_t len, uint32_t *v)
{
    uint32_t r = 0;
    size_t i;
    for (i = 0; i < 5; i++) {
        uint8_t b;
        if (i >= len) {
            return 0;
        }
        b = in[i];
        if (i == 4 && (b & 0xF0u) != 0) {
            return -1; /* more than 32 bits, or a continuation bit on the 5th byte */
        }
        r |= (uint32_t)(b & 0x7Fu) << (7u * i);
        if ((b & 0x80u) == 0) {
            if (b == 0 && i > 0) {
                return -1; /* not the shortest form */
            }
            *v = r;
            return (int)i + 1;
        }
    }
    return -1;
}

/* Returns bytes written (1..5); out must have room for 5. */
static inline int otaup_dl_varint_put(uint32_t v, uint8_t *out)
{
    int n = 0;
    while (v >= 0x80u) {
        out[n++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* zigzag(src - addr) on 32 bits (addresses wrap modulo 2^32). */
static inline uint32_t otaup_dl_zz_encode(uint32_t src, uint32_t addr)
{
    uint32_t d = src - addr;
    return (d << 1) ^ (0u - (d >> 31));
}

static inline uint32_t otaup_dl_zz_decode(uint32_t zz, uint32_t addr)
{
    uint32_t d = (zz >> 1) ^ (0u - (zz & 1u));
    return addr + d;
}

#endif /* OTAUP_CORE_DL_UTIL_H */
