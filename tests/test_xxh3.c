/*
 * The terminal's compact XXH3 (lib/core/xxh3.c) against the xxHash
 * library: XXH3-64 one-shot, XXH3-64 and XXH3-128 streaming, for every
 * length 0..1100 (short inputs, the 129..240 mid range, the first blocks
 * and their boundaries), large inputs, thousands of random inputs, random
 * and byte-by-byte streaming splits, digests taken in the middle of a
 * stream. The same source is compiled a second time here with the
 * portable 64x64->128 multiply that 32-bit targets use
 * (OTAUP_XXH3_NO_INT128), so both paths are checked on the host.
 *
 * OTAUP_EXHAUSTIVE=1 raises the random counts.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/xxh3.h"

/* the portable multiply path, under other names */
void port_xxh3_reset(otaup_xxh3 *s);
void port_xxh3_update(otaup_xxh3 *s, const void *data, size_t len);
uint64_t port_xxh3_digest64(const otaup_xxh3 *s);
void port_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16]);
uint64_t port_xxh3_64(const void *data, size_t len);
#define OTAUP_XXH3_NO_INT128 1
#define otaup_xxh3_reset port_xxh3_reset
#define otaup_xxh3_update port_xxh3_update
#define otaup_xxh3_digest64 port_xxh3_digest64
#define otaup_xxh3_digest128 port_xxh3_digest128
#define otaup_xxh3_64 port_xxh3_64
#include "core/xxh3.c"
#undef otaup_xxh3_reset
#undef otaup_xxh3_update
#undef otaup_xxh3_digest64
#undef otaup_xxh3_digest128
#undef otaup_xxh3_64

typedef struct impl {
    const char *name;
    void (*reset)(otaup_xxh3 *);
    void (*update)(otaup_xxh3 *, const void *, size_t);
    uint64_t (*digest64)(const otaup_xxh3 *);
    void (*digest128)(const otaup_xxh3 *, uint8_t *);
    uint64_t (*one64)(const void *, size_t);
} impl;

static const impl impls[2] = {
    { "library build", otaup_xxh3_reset, otaup_xxh3_update, otaup_xxh3_digest64, otaup_xxh3_digest128,
      otaup_xxh3_64 },
    { "portable multiply", port_xxh3_reset, port_xxh3_update, port_xxh3_digest64, port_xxh3_digest128,
      port_xxh3_64 },
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

/* Streaming over p[0..n) in pieces: split 0 = whole, 1 = byte by byte, 2 = random. */
static void check_stream(const impl *im, const uint8_t *p, size_t n, int split)
{
    otaup_xxh3 s;
    uint8_t h[16], want[16];
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
    ck_assert_msg(im->digest64(&s) == XXH3_64bits(p, n), "%s: XXH3-64 streaming, %zu bytes, split %d",
                  im->name, n, split);
    im->digest128(&s, h);
    ref128(p, n, want);
    ck_assert_msg(memcmp(h, want, 16) == 0, "%s: XXH3-128 streaming, %zu bytes, split %d", im->name, n,
                  split);
}

static void check_all(const uint8_t *p, size_t n, int split)
{
    unsigned i;
    for (i = 0; i < 2; i++) {
        ck_assert_msg(impls[i].one64(p, n) == XXH3_64bits(p, n), "%s: XXH3-64 one-shot, %zu bytes",
                      impls[i].name, n);
        check_stream(&impls[i], p, n, split);
    }
}

START_TEST(every_length_to_1100)
{
    static uint8_t buf[1100];
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
    static const size_t sizes[] = { 4095, 4096, 4097, 16384, 16385, 65536 + 63, 100000, 1048576 + 13 };
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
    for (i = 0; i < 2; i++) {
        impls[i].reset(&s);
        for (n = 0; n < sizeof buf; n += 37) {
            uint8_t h[16], want[16];
            ck_assert_uint_eq(impls[i].digest64(&s), XXH3_64bits(buf, n));
            impls[i].digest128(&s, h);
            ref128(buf, n, want);
            ck_assert_mem_eq(h, want, 16);
            impls[i].update(&s, buf + n, sizeof buf - n < 37 ? sizeof buf - n : 37);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("xxh3");
    TCase *t = tcase_create("known answers");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, every_length_to_1100);
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
