/*
 * otaup — private helpers of the security module: explicit little-endian
 * loads and stores and LEB128 varints. C99, no heap.
 */
#ifndef OTAUP_CORE_SEC_UTIL_H
#define OTAUP_CORE_SEC_UTIL_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t sec_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint16_t sec_le16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

static inline uint64_t sec_le64(const uint8_t *p)
{
    return (uint64_t)sec_le32(p) | ((uint64_t)sec_le32(p + 4) << 32);
}

static inline void sec_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void sec_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sec_put64(uint8_t *p, uint64_t v)
{
    sec_put32(p, (uint32_t)v);
    sec_put32(p + 4, (uint32_t)(v >> 32));
}

/*
 * Shortest-form LEB128 of at most 5 bytes (values up to 2^32-1), as in
 * design.md. Returns bytes consumed, 0 if in[0..len) ends first, -1 if
 * the encoding is overlong, too large or not the shortest form.
 */
static inline int sec_varint_get(const uint8_t *in, size_t len, uint32_t *v)
{
    uint32_t r = 0;
    size_t i;
    for (i = 0; i < 5u; i++) {
        uint8_t b;
        if (i >= len) {
            return 0;
        }
        b = in[i];
        if (i == 4u && (b & 0xF0u) != 0u) {
            return -1; /* beyond 32 bits, or a continuation in the 5th byte */
        }
        r |= (uint32_t)(b & 0x7Fu) << (7u * i);
        if ((b & 0x80u) == 0u) {
            if (i > 0u && b == 0u) {
                return -1; /* not the shortest form */
            }
            *v = r;
            return (int)i + 1;
        }
    }
    return -1;
}

/* Encode v; out needs 5 bytes. Returns the length. */
static inline int sec_varint_put(uint32_t v, uint8_t *out)
{
    int n = 0;
    do {
        uint8_t b = (uint8_t)(v & 0x7Fu);
        v >>= 7;
        if (v != 0u) {
            b |= 0x80u;
        }
        out[n++] = b;
    } while (v != 0u);
    return n;
}

/* 1 if [a, a+al) lies inside [b, b+bl) (64-bit arithmetic, no overflow). */
static inline int sec_inside(uint32_t a, uint32_t al, uint32_t b, uint32_t bl)
{
    return (uint64_t)a >= (uint64_t)b && (uint64_t)a + al <= (uint64_t)b + bl;
}

#endif
