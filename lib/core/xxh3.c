/*
 * otaup — compact XXH3-64/128 (seed 0, default secret), written from the
 * XXH3 specification for small code on 32-bit cores: one scalar lane
 * loop, one streaming state, and both widths through the same routines
 * wherever the algorithm allows (the 17..240-byte classes, the merge of
 * long inputs, the 1..3-byte word, the end of the 4..8-byte mix); the
 * rest of the 4..16-byte mixes is per width.
 * C99, no heap. See core/xxh3.h.
 */
#include "core/xxh3.h"

#include <string.h>

#define STRIPE 64u
#define SECRET_SIZE 192u
#define BLOCK_STRIPES 16u       /* (SECRET_SIZE - STRIPE) / 8 */
#define LAST_STRIPE_SECRET 121u /* SECRET_SIZE - STRIPE - 7 */
#define MERGE_SECRET 11u
#define MID_MAX 240u

#define P32_1 0x9E3779B1u
#define P32_2 0x85EBCA77u
#define P32_3 0xC2B2AE3Du
#define P64_1 0x9E3779B185EBCA87u
#define P64_2 0xC2B2AE3D27D4EB4Fu
#define P64_3 0x165667B19E3779F9u
#define P64_4 0x85EBCA77C2B2AE63u
#define P64_5 0x27D4EB2F165667C5u
#define MX1 0x165667919E3779F9u
#define MX2 0x9FB21C651E98DF25u
/* The hashes of the empty input: fixed by the default secret. */
#define EMPTY64 0x2D06800538D394C2u
#define EMPTY128_LO 0x6001C324468D497Fu
#define EMPTY128_HI 0x99AA06D3014798D8u

/* The default secret of XXH3 (192 bytes). */
static const uint8_t ksecret[SECRET_SIZE] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

/*
 * Two builds of the same code. Compact (OTAUP_XXH3_COMPACT = 1, the
 * default of a terminal build and of -Os): helpers called from many places
 * stay out of line, and both widths run the same routines, told apart by
 * an argument w (0: XXH3-64, 1: XXH3-128). Fast (0, a host build): the
 * width-generic routines (WIDTH) are inlined into each API function, so
 * that w is a constant there and the compiler drops the other width's
 * work. tests/test_xxh3.c checks both.
 */
#ifndef OTAUP_XXH3_COMPACT
#if OTAUP_CONFIG_TERMINAL || defined(__OPTIMIZE_SIZE__)
#define OTAUP_XXH3_COMPACT 1
#else
#define OTAUP_XXH3_COMPACT 0
#endif
#endif
#if (defined(__GNUC__) || defined(__clang__)) && OTAUP_XXH3_COMPACT
#define NOINLINE __attribute__((noinline))
#define WIDTH
#elif defined(__GNUC__) || defined(__clang__)
#define NOINLINE
#define WIDTH __attribute__((always_inline)) inline
#else
#define NOINLINE
#define WIDTH
#endif

/* ---- primitives ---------------------------------------------------------- */

OTAUP_RAMFUNC static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

OTAUP_RAMFUNC static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

OTAUP_RAMFUNC static uint32_t swap32(uint32_t v)
{
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_bswap32(v);
#else
    return (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
#endif
}

OTAUP_RAMFUNC static uint64_t swap64(uint64_t v)
{
    return ((uint64_t)swap32((uint32_t)v) << 32) | swap32((uint32_t)(v >> 32));
}

/* Two neighbouring words of the secret, xored: the short inputs' keys. */
NOINLINE OTAUP_RAMFUNC static uint64_t kx(unsigned off)
{
    return rd64(ksecret + off) ^ rd64(ksecret + off + 8);
}

/* 64 x 64 -> 128 bits: *hi, returns the low half. */
NOINLINE OTAUP_RAMFUNC static uint64_t mul128(uint64_t a, uint64_t b, uint64_t *hi)
{
#if defined(__SIZEOF_INT128__) && !defined(OTAUP_XXH3_NO_INT128)
    unsigned __int128 r = (unsigned __int128)a * b;
    *hi = (uint64_t)(r >> 64);
    return (uint64_t)r;
#else
    uint64_t ll = (a & 0xFFFFFFFFu) * (b & 0xFFFFFFFFu);
    uint64_t hl = (a >> 32) * (b & 0xFFFFFFFFu);
    uint64_t lh = (a & 0xFFFFFFFFu) * (b >> 32);
    uint64_t mid = (ll >> 32) + (hl & 0xFFFFFFFFu) + lh;
    *hi = (a >> 32) * (b >> 32) + (hl >> 32) + (mid >> 32);
    return (mid << 32) | (ll & 0xFFFFFFFFu);
#endif
}

OTAUP_RAMFUNC static uint64_t fold(uint64_t a, uint64_t b)
{
    uint64_t hi, lo = mul128(a, b, &hi);
    return lo ^ hi;
}

/* XXH3's final mix. */
NOINLINE OTAUP_RAMFUNC static uint64_t avalanche3(uint64_t h)
{
    h ^= h >> 37;
    h *= MX1;
    return h ^ (h >> 32);
}

/* XXH64's final mix. */
NOINLINE OTAUP_RAMFUNC static uint64_t avalanche64(uint64_t h)
{
    h ^= h >> 33;
    h *= P64_2;
    h ^= h >> 29;
    h *= P64_3;
    return h ^ (h >> 32);
}

/* Two words keyed with 16 bytes of the secret, folded: the mix of short inputs and of the merge. */
NOINLINE OTAUP_RAMFUNC static uint64_t fold_keyed(uint64_t a, uint64_t b, const uint8_t *sec)
{
    return fold(a ^ rd64(sec), b ^ rd64(sec + 8));
}

OTAUP_RAMFUNC static uint64_t mix16(const uint8_t *in, const uint8_t *sec)
{
    return fold_keyed(rd64(in), rd64(in + 8), sec);
}

/*
 * Two 16-byte inputs a, b into the accumulators, for both widths. XXH3-128
 * (w = 1) mixes a into acc[0] and b into acc[1], each crossed with the sum
 * of the other's words; XXH3-64 (w = 0) adds both mixes to acc[0] and
 * leaves acc[1] alone.
 */
WIDTH OTAUP_RAMFUNC static void mix32(uint64_t acc[2], const uint8_t *a, const uint8_t *b, const uint8_t *sec,
                                unsigned w)
{
    const uint8_t *in[2];
    unsigned j;
    in[0] = a;
    in[1] = b;
    for (j = 0; j < 2; j++) {
        acc[j & w] += mix16(in[j], sec + 16 * j);
        if (w) {
            acc[j] ^= rd64(in[j ^ 1]) + rd64(in[j ^ 1] + 8);
        }
    }
}

/* ---- inputs of at most 240 bytes ---------------------------------------- */

/* 1..3 bytes: the combined word of both widths. */
OTAUP_RAMFUNC static uint32_t tiny(const uint8_t *in, size_t len)
{
    return ((uint32_t)in[0] << 16) | ((uint32_t)in[len >> 1] << 24) | (uint32_t)in[len - 1] |
           ((uint32_t)len << 8);
}

/*
 * 4..16 bytes: the input's first and last 4 (4..8 bytes) or 8 (9..16)
 * bytes, mixed per width; the two widths' 4..8-byte mixes end alike.
 */
WIDTH OTAUP_RAMFUNC static void small(const uint8_t *in, size_t len, unsigned w, uint64_t h[2])
{
    uint64_t first, last, lo, hi, t = 0; /* t: XXH3-64's length term */
    if (len <= 8) {
        first = rd32(in);
        last = rd32(in + len - 4);
        if (w) {
            lo = mul128((first + (last << 32)) ^ kx(16), P64_1 + ((uint64_t)len << 2), &hi);
            hi += lo << 1;
            lo ^= hi >> 3;
            h[1] = avalanche3(hi);
        } else {
            lo = (last + (first << 32)) ^ kx(8);
            lo ^= ((lo << 49) | (lo >> 15)) ^ ((lo << 24) | (lo >> 40));
            lo *= MX2;
            t = len;
        }
        lo ^= (lo >> 35) + t;
        lo *= MX2;
        h[0] = lo ^ (lo >> 28);
        return;
    }
    first = rd64(in);
    last = rd64(in + len - 8);
    if (w) {
        uint64_t m;
        lo = mul128(first ^ last ^ kx(32), P64_1, &m);
        lo += (uint64_t)(len - 1) << 54;
        last ^= kx(48);
        m += (last & 0xFFFFFFFF00000000u) + (uint64_t)(uint32_t)last * P32_2;
        lo = mul128(lo ^ swap64(m), P64_2, &hi);
        hi += m * P64_2;
        h[0] = avalanche3(lo);
        h[1] = avalanche3(hi);
    } else {
        lo = first ^ kx(24);
        hi = last ^ kx(40);
        h[0] = avalanche3(len + swap64(lo) + hi + fold(lo, hi));
    }
}

/*
 * An input of at most 240 bytes: h[0] (XXH3-64 for w = 0, the low half
 * of XXH3-128 for w = 1) and, for w = 1, h[1] (the high half). The 17..240
 * byte classes share one path: XXH3-64 is its acc[0], with acc[1] left 0.
 */
WIDTH OTAUP_RAMFUNC static void short_hash(const uint8_t *in, size_t len, unsigned w, uint64_t h[2])
{
    const uint8_t *k = ksecret;
    uint64_t acc[2];
    size_t i;
    if (len == 0) {
        h[0] = w ? EMPTY128_LO : EMPTY64; /* avalanche64(secret[56 + 8w..] ^ secret[64 + 8w..]) */
        h[1] = EMPTY128_HI;               /* avalanche64(secret[80..87] ^ secret[88..95]) */
        return;
    }
    if (len <= 3) {
        uint32_t c = tiny(in, len), r = swap32(c);
        uint64_t k0 = rd64(k), k1 = rd64(k + 8);
        h[0] = avalanche64((uint64_t)(c ^ (uint32_t)k0 ^ (uint32_t)(k0 >> 32)));
        if (w) {
            h[1] = avalanche64((uint64_t)(((r << 13) | (r >> 19)) ^ (uint32_t)k1 ^ (uint32_t)(k1 >> 32)));
        }
        return;
    }
    if (len <= 16) {
        small(in, len, w, h);
        return;
    }
    acc[0] = (uint64_t)len * P64_1;
    acc[1] = 0;
    if (len <= 128) {
        for (i = (len - 1) / 32 + 1; i-- > 0;) {
            mix32(acc, in + 16 * i, in + len - 16 * (i + 1), k + 32 * i, w);
        }
    } else {
        /* 32-byte pairs: four with the secret's start, the rest from offset 3 */
        for (i = 0; i < len / 32; i++) {
            mix32(acc, in + 32 * i, in + 32 * i + 16, k + 32 * i - (i < 4 ? 0 : 125), w);
            if (i == 3) {
                acc[0] = avalanche3(acc[0]);
                acc[1] = avalanche3(acc[1]); /* stays 0 for XXH3-64 */
            }
        }
        if (w) {
            mix32(acc, in + len - 16, in + len - 32, k + 136 - 17 - 16, 1);
        } else {
            if (len & 16) { /* XXH3-64 takes an odd 16-byte piece alone */
                acc[0] += mix16(in + (len & ~(size_t)31), k + (len & ~(size_t)31) - 125);
            }
            acc[0] += mix16(in + len - 16, k + 136 - 17);
        }
    }
    h[0] = avalanche3(acc[0] + acc[1]);
    h[1] = 0u - avalanche3(acc[0] * P64_1 + acc[1] * P64_4 + ((uint64_t)len * P64_2));
}

/* ---- long inputs: stripes of 64 bytes, blocks of 16 stripes ---------------- */

static const uint64_t lanes0[8] = { P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1 };

NOINLINE OTAUP_RAMFUNC static void lanes_init(otaup_xxh3_lanes *s)
{
    memcpy(s->acc, lanes0, sizeof s->acc);
    s->stripes = 0;
}

OTAUP_RAMFUNC static void stripe(uint64_t acc[8], const uint8_t *in, const uint8_t *sec)
{
    unsigned i;
    for (i = 0; i < 8; i++) {
        uint64_t v = rd64(in + 8 * i), key = v ^ rd64(sec + 8 * i);
        acc[i ^ 1u] += v;
        acc[i] += (uint64_t)(uint32_t)key * (uint32_t)(key >> 32);
    }
}

/* Accumulate n stripes; scramble the lanes after each 16th of a block. */
OTAUP_RAMFUNC static void consume(otaup_xxh3_lanes *s, const uint8_t *in, size_t n)
{
    unsigned i;
    for (; n > 0; n--, in += STRIPE) {
        stripe(s->acc, in, ksecret + 8u * s->stripes);
        if (++s->stripes == BLOCK_STRIPES) {
            for (i = 0; i < 8; i++) {
                uint64_t a = s->acc[i];
                a ^= a >> 47;
                a ^= rd64(ksecret + SECRET_SIZE - STRIPE + 8 * i);
                s->acc[i] = a * P32_1;
            }
            s->stripes = 0;
        }
    }
}

OTAUP_RAMFUNC static uint64_t merge(const uint64_t acc[8], const uint8_t *sec, uint64_t start)
{
    unsigned i;
    for (i = 0; i < 4; i++) {
        start += fold_keyed(acc[2 * i], acc[2 * i + 1], sec + 16 * i);
    }
    return avalanche3(start);
}

/* Lanes of a long input after its last stripe (`last`: its last 64 bytes). */
OTAUP_RAMFUNC static void finish(otaup_xxh3_lanes *s, const uint8_t *last)
{
    stripe(s->acc, last, ksecret + LAST_STRIPE_SECRET);
}

/* ---- API ---------------------------------------------------------------------- */

OTAUP_RAMFUNC void otaup_xxh3_reset(otaup_xxh3 *s)
{
    lanes_init(&s->l);
    s->total = 0;
    s->nbuf = 0;
}

OTAUP_RAMFUNC void otaup_xxh3_update(otaup_xxh3 *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    size_t room = sizeof s->buf - s->nbuf, n;
    s->total += len;
    if (len <= room) {
        /* keep everything: up to 240 bytes hash as a short input, and a
         * stripe is consumed only once more input follows it */
        if (len != 0) {
            memcpy(s->buf + s->nbuf, p, len);
        }
        s->nbuf += (uint32_t)len;
        return;
    }
    if (s->nbuf != 0) {
        memcpy(s->buf + s->nbuf, p, room);
        p += room;
        len -= room;
        consume(&s->l, s->buf, sizeof s->buf / STRIPE);
        s->nbuf = 0;
    }
    if (len > sizeof s->buf) {
        n = (len - 1u) / STRIPE; /* leave 1..64 bytes */
        consume(&s->l, p, n);
        p += n * STRIPE;
        len -= n * STRIPE;
        /* the digest may need the end of the last consumed stripe */
        memcpy(s->buf + sizeof s->buf - STRIPE, p - STRIPE, STRIPE);
    }
    memcpy(s->buf, p, len);
    s->nbuf = (uint32_t)len;
}

/* The lanes of a long input, finished; *s is unchanged. */
OTAUP_RAMFUNC static void long_lanes(const otaup_xxh3 *s, otaup_xxh3_lanes *t)
{
    uint8_t last[STRIPE];
    size_t keep;
    *t = s->l;
    if (s->nbuf >= STRIPE) {
        consume(t, s->buf, (s->nbuf - 1u) / STRIPE);
        finish(t, s->buf + s->nbuf - STRIPE);
    } else {
        keep = STRIPE - s->nbuf; /* bytes of the previous stripe */
        memcpy(last, s->buf + sizeof s->buf - keep, keep);
        memcpy(last + keep, s->buf, s->nbuf);
        finish(t, last);
    }
}

/* h[0] (and for w = 1, h[1]) of a long input from its finished lanes. */
WIDTH OTAUP_RAMFUNC static void long_hash(const uint64_t acc[8], uint64_t len, unsigned w, uint64_t h[2])
{
    h[0] = merge(acc, ksecret + MERGE_SECRET, len * P64_1);
    if (w) {
        h[1] = merge(acc, ksecret + SECRET_SIZE - 64u - MERGE_SECRET, ~(len * P64_2));
    }
}

/* h[0] (and for w = 1, h[1]) of everything fed; *s is unchanged. */
NOINLINE OTAUP_RAMFUNC static void long_digest(const otaup_xxh3 *s, unsigned w, uint64_t h[2])
{
    otaup_xxh3_lanes t;
    long_lanes(s, &t);
    long_hash(t.acc, s->total, w, h);
}

WIDTH OTAUP_RAMFUNC static void digest(const otaup_xxh3 *s, unsigned w, uint64_t h[2])
{
    if (s->total <= MID_MAX) {
        short_hash(s->buf, (size_t)s->total, w, h);
    } else {
        long_digest(s, w, h);
    }
}

OTAUP_RAMFUNC uint64_t otaup_xxh3_digest64(const otaup_xxh3 *s)
{
    uint64_t h[2];
    digest(s, 0, h);
    return h[0];
}

OTAUP_RAMFUNC void otaup_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16])
{
    uint64_t h[2];
    int i;
    digest(s, 1, h);
    for (i = 0; i < 16; i++) {
        out[i] = (uint8_t)(h[i >> 3] >> (8 * (i & 7)));
    }
}

OTAUP_RAMFUNC uint64_t otaup_xxh3_64(const void *data, size_t len)
{
    const uint8_t *p = data;
    otaup_xxh3_lanes t;
    uint64_t h[2];
    if (len <= MID_MAX) {
        short_hash(p, len, 0, h);
    } else {
        lanes_init(&t);
        consume(&t, p, (len - 1u) / STRIPE);
        finish(&t, p + len - STRIPE);
        long_hash(t.acc, len, 0, h);
    }
    return h[0];
}
