/*
 * The terminal's compact XXH3 (lib/core/xxh3.c) against the xxHash
 * library, as a differential test: XXH3-64 one-shot, XXH3-64 and
 * XXH3-128 streaming (default secret, seed 0) for
 *   - every length 0..4200 (the 0, 1-3, 4-8, 9-16, 17-128, 129-240 short
 *     classes, the stripes and the first four 1024-byte blocks, each
 *     boundary), for random, all-zero and all-0xFF bytes;
 *   - every split of a stream into two pieces for every length 0..700 and
 *     for lengths around the 256-byte buffer and the block boundaries,
 *     every split into three pieces for lengths around 64, 128, 240, 256
 *     and 320, every fixed piece size 1..520 over lengths that cross
 *     several blocks, byte by byte, random pieces with empty updates;
 *   - large inputs crossing stripe and block boundaries (up to 1 MiB);
 *   - digests taken in the middle of a stream (the state is unchanged).
 * Three builds of the source are checked: the library's (the host's
 * 128-bit multiply; the fast form, or the compact one with OTAUP_SMALL),
 * the terminal's compact form with the portable 64x64->128 multiply that
 * 32-bit targets use (OTAUP_XXH3_COMPACT, OTAUP_XXH3_NO_INT128; compiled
 * here) and the fast form with the portable multiply
 * (tests/util/xxh3_fast.c).
 *
 * OTAUP_EXHAUSTIVE=1 raises the random counts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/xxh3.h"

/* the terminal's form: compact, with the portable multiply of 32-bit targets */
void term_xxh3_reset(otaup_xxh3 *s);
void term_xxh3_update(otaup_xxh3 *s, const void *data, size_t len);
uint64_t term_xxh3_digest64(const otaup_xxh3 *s);
void term_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16]);
uint64_t term_xxh3_64(const void *data, size_t len);
#define OTAUP_XXH3_COMPACT 1
#define OTAUP_XXH3_NO_INT128 1
#define otaup_xxh3_reset term_xxh3_reset
#define otaup_xxh3_update term_xxh3_update
#define otaup_xxh3_digest64 term_xxh3_digest64
#define otaup_xxh3_digest128 term_xxh3_digest128
#define otaup_xxh3_64 term_xxh3_64
#include "core/xxh3.c"
#undef otaup_xxh3_reset
#undef otaup_xxh3_update
#undef otaup_xxh3_digest64
#undef otaup_xxh3_digest128
#undef otaup_xxh3_64

/* the fast (host) form with the portable multiply (tests/util/xxh3_fast.c) */
void fast_xxh3_reset(otaup_xxh3 *s);
void fast_xxh3_update(otaup_xxh3 *s, const void *data, size_t len);
uint64_t fast_xxh3_digest64(const otaup_xxh3 *s);
void fast_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16]);
uint64_t fast_xxh3_64(const void *data, size_t len);

typedef struct impl {
    const char *name;
    void (*reset)(otaup_xxh3 *);
    void (*update)(otaup_xxh3 *, const void *, size_t);
    uint64_t (*digest64)(const otaup_xxh3 *);
    void (*digest128)(const otaup_xxh3 *, uint8_t *);
    uint64_t (*one64)(const void *, size_t);
} impl;

#define NIMPL 3u
static const impl impls[NIMPL] = {
    { "library build", otaup_xxh3_reset, otaup_xxh3_update, otaup_xxh3_digest64, otaup_xxh3_digest128,
      otaup_xxh3_64 },
    { "compact form, portable multiply", term_xxh3_reset, term_xxh3_update, term_xxh3_digest64,
      term_xxh3_digest128, term_xxh3_64 },
    { "fast form, portable multiply", fast_xxh3_reset, fast_xxh3_update, fast_xxh3_digest64,
      fast_xxh3_digest128, fast_xxh3_64 },
};

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void fill(uint8_t *p, size_t n, int kind)
{
    size_t i;
    for (i = 0; i < n; i++) {
        p[i] = kind == 0 ? (uint8_t)next() : kind == 1 ? 0x00u : 0xFFu;
    }
}

static int exhaustive(void)
{
    const char *e = getenv("OTAUP_EXHAUSTIVE");
    return e != NULL && e[0] == '1';
}

static void ref128(const uint8_t *p, size_t n, uint8_t out[16])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.low64 >> (8 * i));
        out[8 + i] = (uint8_t)(h.high64 >> (8 * i));
    }
}

/* The library's answers for p[0..n). */
typedef struct want {
    uint64_t h64;
    uint8_t h128[16];
} want;

static want ref(const uint8_t *p, size_t n)
{
    want w;
    w.h64 = XXH3_64bits(p, n);
    ref128(p, n, w.h128);
    return w;
}

/* Both digests of a state against the library's. */
static void check_digests(const impl *im, const otaup_xxh3 *s, const want *w, size_t n, const char *how)
{
    uint8_t h[16];
    ck_assert_msg(im->digest64(s) == w->h64, "%s: XXH3-64 streaming, %zu bytes, %s", im->name, n, how);
    im->digest128(s, h);
    ck_assert_msg(memcmp(h, w->h128, 16) == 0, "%s: XXH3-128 streaming, %zu bytes, %s", im->name, n, how);
}

/* Streaming over p[0..n) cut at cuts[0] <= cuts[1] <= ... (each <= n). */
static void check_cuts(const impl *im, const uint8_t *p, size_t n, const size_t *cuts, unsigned ncuts,
                       const want *w)
{
    otaup_xxh3 s;
    char how[64];
    size_t off = 0;
    unsigned i;
    im->reset(&s);
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        im->update(&s, p + off, end - off);
        off = end;
    }
    snprintf(how, sizeof how, "cut at %zu %zu", ncuts > 0 ? cuts[0] : n, ncuts > 1 ? cuts[1] : n);
    check_digests(im, &s, w, n, how);
}

/* Streaming over p[0..n) in pieces: split 0 = whole, 1 = byte by byte, 2 = random. */
static void check_stream(const impl *im, const uint8_t *p, size_t n, int split, const want *w)
{
    otaup_xxh3 s;
    size_t off = 0;
    im->reset(&s);
    while (off < n) {
        size_t k = split == 0 ? n - off : split == 1 ? 1u : (size_t)(next() % 700u);
        if (k > n - off) {
            k = n - off;
        }
        im->update(&s, p + off, k);
        off += k;
        if (split == 2 && (next() & 7u) == 0) {
            im->update(&s, p + off, 0); /* empty updates change nothing */
        }
    }
    check_digests(im, &s, w, n, split == 0 ? "whole" : split == 1 ? "byte by byte" : "random pieces");
}

static void check_all(const uint8_t *p, size_t n, int split)
{
    want w = ref(p, n);
    unsigned i;
    for (i = 0; i < NIMPL; i++) {
        ck_assert_msg(impls[i].one64(p, n) == w.h64, "%s: XXH3-64 one-shot, %zu bytes", impls[i].name, n);
        check_stream(&impls[i], p, n, split, &w);
    }
}

START_TEST(every_length_to_4200)
{
    static uint8_t buf[4200];
    size_t n;
    int kind;
    for (kind = 0; kind < 3; kind++) {
        fill(buf, sizeof buf, kind);
        for (n = 0; n <= sizeof buf; n++) {
            check_all(buf, n, 0);
            check_all(buf, n, 2);
        }
    }
}
END_TEST

/* every split into two pieces (0..n: the first or the last piece may be empty) */
static void two_pieces(const uint8_t *buf, size_t n)
{
    want w = ref(buf, n);
    size_t k;
    unsigned i;
    for (i = 0; i < NIMPL; i++) {
        for (k = 0; k <= n; k++) {
            check_cuts(&impls[i], buf, n, &k, 1, &w);
        }
    }
}

START_TEST(every_two_piece_split)
{
    /* around the 256-byte buffer, one block (1024), the stripes after it, four blocks */
    static const size_t around[] = { 1023, 1024, 1025, 1087, 1088, 1089, 1152, 1279, 1280, 1281,
                                     2047, 2048, 2049, 4095, 4096, 4097, 4160 };
    static uint8_t buf[4160];
    size_t n, i;
    fill(buf, sizeof buf, 0);
    for (n = 0; n <= 700; n++) {
        two_pieces(buf, n);
    }
    for (i = 0; i < sizeof around / sizeof around[0]; i++) {
        two_pieces(buf, around[i]);
    }
}
END_TEST

START_TEST(every_three_piece_split)
{
    static const size_t lens[] = { 63, 64, 65, 128, 129, 239, 240, 241, 255, 256, 257, 319, 320, 321 };
    static uint8_t buf[321];
    size_t c[2], i;
    unsigned m;
    fill(buf, sizeof buf, 0);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        want w = ref(buf, n);
        for (m = 0; m < NIMPL; m++) {
            for (c[0] = 0; c[0] <= n; c[0]++) {
                for (c[1] = c[0]; c[1] <= n; c[1]++) {
                    check_cuts(&impls[m], buf, n, c, 2, &w);
                }
            }
        }
    }
}
END_TEST

/* pieces of one size 1..520 (the last one shorter) over lengths across several blocks */
START_TEST(every_piece_size)
{
    static const size_t lens[] = { 1000, 1024 + 64 + 1, 3 * 1024 + 37, 4096 + 255 };
    static uint8_t buf[4096 + 255];
    otaup_xxh3 s;
    size_t i, size, off;
    unsigned m;
    fill(buf, sizeof buf, 0);
    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = lens[i];
        want w = ref(buf, n);
        for (m = 0; m < NIMPL; m++) {
            for (size = 1; size <= 520; size++) {
                char how[32];
                impls[m].reset(&s);
                for (off = 0; off < n; off += size) {
                    impls[m].update(&s, buf + off, n - off < size ? n - off : size);
                }
                snprintf(how, sizeof how, "pieces of %zu", size);
                check_digests(&impls[m], &s, &w, n, how);
            }
        }
    }
}
END_TEST

START_TEST(byte_by_byte)
{
    static uint8_t buf[1300];
    size_t n;
    fill(buf, sizeof buf, 0);
    for (n = 0; n <= 300; n++) {
        check_all(buf, n, 1);
    }
    /* around the buffer (256) and block (1024) boundaries */
    for (n = 1020; n <= 1300; n += 7) {
        check_all(buf, n, 1);
    }
}
END_TEST

START_TEST(large_inputs)
{
    static const size_t sizes[] = { 8191, 8192, 8193, 16384, 16385, 65536 + 63, 65536 + 64, 65536 + 65,
                                    100000, 1048576, 1048576 + 13 };
    uint8_t *buf = malloc(1048576 + 13);
    size_t i;
    ck_assert_ptr_nonnull(buf);
    fill(buf, 1048576 + 13, 0);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_all(buf, sizes[i], 0);
        check_all(buf, sizes[i], 2);
    }
    free(buf);
}
END_TEST

START_TEST(random_inputs)
{
    static uint8_t buf[5000];
    unsigned k, count = exhaustive() ? 100000u : 3000u;
    for (k = 0; k < count; k++) {
        size_t n = (size_t)(next() % (sizeof buf + 1u));
        fill(buf, n, 0);
        check_all(buf, n, 2);
    }
}
END_TEST

START_TEST(digest_mid_stream)
{
    static uint8_t buf[3000];
    otaup_xxh3 s;
    size_t n;
    unsigned i;
    fill(buf, sizeof buf, 0);
    for (i = 0; i < NIMPL; i++) {
        impls[i].reset(&s);
        for (n = 0; n < sizeof buf; n += 37) {
            want w = ref(buf, n);
            check_digests(&impls[i], &s, &w, n, "mid-stream");
            check_digests(&impls[i], &s, &w, n, "mid-stream, again");
            impls[i].update(&s, buf + n, sizeof buf - n < 37 ? sizeof buf - n : 37);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("xxh3");
    TCase *t = tcase_create("against xxHash");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, every_length_to_4200);
    tcase_add_test(t, every_two_piece_split);
    tcase_add_test(t, every_three_piece_split);
    tcase_add_test(t, every_piece_size);
    tcase_add_test(t, byte_by_byte);
    tcase_add_test(t, large_inputs);
    tcase_add_test(t, random_inputs);
    tcase_add_test(t, digest_mid_stream);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
