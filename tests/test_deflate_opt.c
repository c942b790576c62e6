/*
 * otaup's raw-deflate encoder (lib/server/deflate_opt.c): every stream is
 * inflated back with zlib at its window bits and compared byte for byte.
 *
 * The window limit is checked exactly: the "strict" inflate asks zlib for
 * one output byte per call, so zlib copies every match from its window of
 * 2^w bytes and refuses any distance beyond min(bytes so far, 2^w)
 * ("invalid distance too far back"). Data repeating with a period of
 * exactly 2^w must compress (the encoder uses the whole window); with a
 * period of 2^w + 1 it must still inflate (no match reaches past it).
 *
 * Inputs: random, text-like, ELF (this test's own executable and
 * /usr/bin/ls), all-zero, highly repetitive, 0..5 bytes; every window
 * 9..15 and every effort 1..4; one-shot, fed in pieces, with BLOCK and
 * SYNC flushes, and with resets. OTAUP_DEFLATE_EXHAUSTIVE=1 adds larger
 * inputs (several chunks, every window and effort) and more ELF files.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/error.h"
#include "server/deflate_opt.h"

/* ---- inputs ---------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

static uint32_t g_seed;

static uint32_t rnd(void)
{
    g_seed = g_seed * 1103515245u + 12345u;
    return (g_seed >> 8) ^ (g_seed << 13);
}

static buf mk(size_t n)
{
    buf b;
    b.p = malloc(n ? n : 1u);
    ck_assert_ptr_nonnull(b.p);
    b.n = n;
    return b;
}

static buf gen_random(size_t n, uint32_t seed)
{
    buf b = mk(n);
    size_t i;
    g_seed = seed;
    for (i = 0; i < n; i++) {
        b.p[i] = (uint8_t)(rnd() >> 5);
    }
    return b;
}

/* words of a small vocabulary, skewed towards the first ones, with punctuation and lines */
static buf gen_text(size_t n, uint32_t seed)
{
    static const char *const words[] = { "the", "of", "flash", "sector", "erase", "write", "terminal", "update",
                                         "and", "a", "to", "is", "in", "delta", "record", "step", "journal",
                                         "power", "cut", "resume", "window", "inflate", "block", "stream",
                                         "server", "session", "image", "hash", "verify", "scratch" };
    buf b = mk(n);
    size_t i = 0, col = 0;
    g_seed = seed;
    while (i < n) {
        uint32_t r = rnd();
        const char *w = words[(r % 30u) * ((r >> 8) % 30u) / 30u];
        size_t k;
        for (k = 0; w[k] != '\0' && i < n; k++) {
            b.p[i++] = (uint8_t)w[k];
        }
        col += k + 1u;
        if (i < n) {
            b.p[i++] = (uint8_t)((r >> 20) % 11u == 0 ? ',' : col > 70u ? '\n' : ' ');
            if (b.p[i - 1u] == '\n') {
                col = 0;
            }
        }
    }
    return b;
}

static buf gen_zero(size_t n)
{
    buf b = mk(n);
    memset(b.p, 0, n);
    return b;
}

/* a few short patterns and runs, repeated with variations: very redundant */
static buf gen_repetitive(size_t n, uint32_t seed)
{
    static const char *const pats[] = { "abc", "abcd", "xyzzy", "\x00\x01", "q", "0000000000000000", "\xff\xfe" };
    buf b = mk(n);
    size_t i = 0;
    g_seed = seed;
    while (i < n) {
        const char *p = pats[rnd() % 7u];
        size_t k, l = strlen(p) ? strlen(p) : 2u;
        for (k = 0; k < l && i < n; k++) {
            b.p[i++] = (uint8_t)p[k];
        }
    }
    return b;
}

/* a random block of `period` bytes, repeated */
static buf gen_period(size_t n, size_t period, uint32_t seed)
{
    buf b = mk(n);
    size_t i;
    g_seed = seed;
    for (i = 0; i < n; i++) {
        b.p[i] = i < period ? (uint8_t)(rnd() >> 7) : b.p[i - period];
    }
    return b;
}

/* up to `max` bytes of a file from offset `off`; n = 0 if missing */
static buf read_file(const char *path, size_t off, size_t max)
{
    FILE *f = fopen(path, "rb");
    buf b = mk(max);
    b.n = 0;
    if (f == NULL) {
        return b;
    }
    if (fseek(f, (long)off, SEEK_SET) == 0) {
        b.n = fread(b.p, 1, max, f);
    }
    fclose(f);
    return b;
}

/* ---- checks ------------------------------------------------------------------- */

/*
 * Inflate z[0..zl) with a raw window of 2^w and compare with in[0..n).
 * strict: one output byte per call (every match is served from the
 * window, so a distance beyond the window fails). The stream must end
 * exactly at zl with its final block.
 */
static int inflate_cmp(const uint8_t *z, size_t zl, const uint8_t *in, size_t n, unsigned w, int strict)
{
    z_stream zs;
    uint8_t *out = malloc(n + 1u);
    size_t got = 0;
    int r, ok;
    ck_assert_ptr_nonnull(out);
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, -(int)w), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)z;
    zs.avail_in = (uInt)zl;
    do {
        zs.next_out = out + got;
        zs.avail_out = strict ? 1u : (uInt)(n + 1u - got);
        r = inflate(&zs, Z_NO_FLUSH);
        got = zs.total_out;
    } while (r == Z_OK && got <= n);
    ok = r == Z_STREAM_END && got == n && zs.avail_in == 0 && (n == 0 || memcmp(out, in, n) == 0);
    if (!ok) {
        fprintf(stderr, "inflate: r=%d (%s) got %zu of %zu, %u input bytes left\n", r, zs.msg ? zs.msg : "-",
                got, n, zs.avail_in);
    }
    inflateEnd(&zs);
    free(out);
    return ok;
}

static size_t zlib9(const uint8_t *in, size_t n, unsigned w)
{
    z_stream zs;
    uint8_t *out;
    size_t cap, got;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -(int)w, 9, Z_DEFAULT_STRATEGY), Z_OK);
    cap = deflateBound(&zs, n);
    out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    got = zs.total_out;
    deflateEnd(&zs);
    free(out);
    return got;
}

/* one-shot compress, check strictly, return the size */
static size_t round_trip(const buf *b, unsigned w, int effort, int strict)
{
    uint8_t *z = NULL;
    size_t zl = 0;
    ck_assert_int_eq(otaup_dfl_compress(b->p, b->n, w, effort, &z, &zl), 0);
    ck_assert_msg(zl <= otaup_dfl_bound(b->n), "%zu bytes over the bound %zu", zl, otaup_dfl_bound(b->n));
    ck_assert_msg(inflate_cmp(z, zl, b->p, b->n, w, strict), "window %u effort %d, %zu bytes: no round trip", w,
                  effort, b->n);
    free(z);
    return zl;
}

static int exhaustive(void)
{
    const char *e = getenv("OTAUP_DEFLATE_EXHAUSTIVE");
    return e != NULL && e[0] == '1';
}

/* ---- tests ---------------------------------------------------------------------- */

START_TEST(test_tiny_inputs)
{
    static const uint8_t data[6] = { 0x00, 0xFF, 0x41, 0x41, 0x41, 0x41 };
    unsigned w;
    int e;
    size_t n;
    for (w = 9; w <= 15; w++) {
        for (e = 1; e <= 4; e++) {
            for (n = 0; n <= 6; n++) {
                buf b;
                b.p = (uint8_t *)(uintptr_t)data;
                b.n = n;
                round_trip(&b, w, e, 1);
            }
        }
    }
    /* the empty stream is one empty final block, like zlib's */
    {
        uint8_t *z = NULL;
        size_t zl = 0;
        ck_assert_int_eq(otaup_dfl_compress(NULL, 0, 15, 4, &z, &zl), 0);
        ck_assert_uint_eq(zl, 2);
        ck_assert_uint_eq(z[0], 0x03);
        ck_assert_uint_eq(z[1], 0x00);
        free(z);
    }
}
END_TEST

/* every input class at every window and effort */
START_TEST(test_classes_every_window)
{
    buf in[6];
    unsigned w;
    int e, k, nin = 0;
    in[nin++] = gen_random(12000, 1);
    in[nin++] = gen_text(40000, 2);
    in[nin++] = read_file("/proc/self/exe", 4096, 48000);
    in[nin++] = gen_zero(70000);
    in[nin++] = gen_repetitive(50000, 3);
    in[nin++] = read_file("/usr/bin/ls", 0, 30000);
    for (k = 0; k < nin; k++) {
        if (in[k].n == 0) {
            continue; /* a file that this system lacks */
        }
        for (w = 9; w <= 15; w++) {
            for (e = 1; e <= 4; e++) {
                size_t zl = round_trip(&in[k], w, e, 1);
                if (k == 0) {
                    /* random data: stored blocks, a few bytes of framing */
                    ck_assert_uint_le(zl, in[k].n + 16u);
                }
                if (k == 3) {
                    ck_assert_uint_lt(zl, in[k].n / 100u);
                }
            }
        }
    }
    for (k = 0; k < nin; k++) {
        free(in[k].p);
    }
}
END_TEST

/*
 * Repeats of every length 3..258, each exactly as long (the bytes around it
 * differ from the bytes around its source), at distances on both edges of
 * every distance code that the window allows, overlapping ones included:
 * an error in a single length or distance code (its base, its extra bits,
 * the symbol chosen) makes a stream that does not inflate back.
 */
static buf gen_every_code(unsigned w, uint32_t seed)
{
    /* RFC 1951, 3.2.5: first distance of each of the 30 distance codes, and the end */
    static const uint32_t dist_first[31] = { 1,    2,    3,    4,    5,    7,     9,     13,    17,    25,   33,
                                             49,   65,   97,   129,  193,  257,   385,   513,   769,   1025, 1537,
                                             2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577, 32769 };
    size_t cap = 2u * 256u * (258u + 64u) + 4096u, n = 0;
    buf b = mk(cap);
    uint32_t win = (uint32_t)1 << w;
    unsigned round, len, k = 0;
    g_seed = seed;
    for (round = 0; round < 2u; round++) {
        for (len = 3; len <= 258u; len++, k++) {
            unsigned code = k % 30u, fill = 1u + rnd() % 48u, i;
            uint32_t d = (k / 30u + round) % 2u ? dist_first[code + 1u] - 1u : dist_first[code];
            if (d > win) {
                d = 1u + rnd() % win; /* beyond this window: anywhere inside it */
            }
            for (i = 0; i < fill; i++) {
                b.p[n++] = (uint8_t)(rnd() >> 9);
            }
            if (d >= n) {
                continue; /* not enough history yet */
            }
            if (b.p[n - 1u] == b.p[n - 1u - d]) {
                b.p[n - 1u] ^= 0x5Au; /* the repeat cannot start earlier */
            }
            for (i = 0; i < len; i++, n++) {
                b.p[n] = b.p[n - d]; /* byte by byte: overlapping when d < len */
            }
            b.p[n] = (uint8_t)(b.p[n - d] ^ 0xA5u); /* nor go on longer */
            n++;
        }
    }
    ck_assert_uint_le(n, cap);
    b.n = n;
    return b;
}

START_TEST(test_every_length_and_distance)
{
    unsigned w;
    int e;
    for (w = 9; w <= 15; w++) {
        buf b = gen_every_code(w, 77u + w);
        for (e = 1; e <= 4; e++) {
            size_t zl = round_trip(&b, w, e, 1);
            /* the repeats were found: about half of the input is in them */
            ck_assert_msg(zl < b.n * 3u / 4u, "window %u effort %d: %zu of %zu bytes", w, e, zl, b.n);
        }
        free(b.p);
    }
}
END_TEST

/* the whole window is used, and never more */
START_TEST(test_window_edge)
{
    unsigned w;
    int e;
    for (w = 9; w <= 15; w++) {
        size_t win = (size_t)1 << w;
        buf at = gen_period(win * 5u, win, w), past = gen_period(win * 5u, win + 1u, w + 100u);
        for (e = 1; e <= 4; e++) {
            size_t z_at = round_trip(&at, w, e, 1);
            size_t z_past = round_trip(&past, w, e, 1);
            /* a period of exactly the window: everything after the first period is one match */
            ck_assert_msg(z_at < win + win / 4u, "window %u effort %d: period 2^w gives %zu bytes", w, e, z_at);
            /* one byte more: out of reach, only chance matches (a match at 2^w + 1
             * would make it as small as z_at, and the strict inflate would refuse it) */
            ck_assert_uint_gt(z_past, past.n / 2u);
        }
        free(at.p);
        free(past.p);
    }
}
END_TEST

/* larger inputs: several chunks (the buffer slides, matches cross chunks) */
START_TEST(test_large_inputs)
{
    buf z = gen_zero(2500000), t = gen_text(1400000, 9), r = gen_repetitive(1100000, 10);
    round_trip(&z, 9, 1, 0);
    round_trip(&z, 15, 4, 0);
    round_trip(&t, 15, 1, 0);
    round_trip(&t, 12, 3, 0);
    round_trip(&r, 10, 2, 0);
    round_trip(&r, 15, 3, 1);
    if (exhaustive()) {
        unsigned w;
        int e;
        for (w = 9; w <= 15; w++) {
            for (e = 1; e <= 4; e++) {
                round_trip(&t, w, e, 1);
                round_trip(&r, w, e, 1);
            }
        }
    }
    free(z.p);
    free(t.p);
    free(r.p);
}
END_TEST

/* near-optimal parsing is at least as small as zlib level 9 on real data */
START_TEST(test_smaller_than_zlib9)
{
    buf in[3];
    int k;
    unsigned w;
    in[0] = gen_text(200000, 4);
    in[1] = read_file("/proc/self/exe", 0, 200000);
    in[2] = gen_repetitive(150000, 5);
    for (k = 0; k < 3; k++) {
        for (w = 10; w <= 15; w += 5) {
            size_t ref = zlib9(in[k].p, in[k].n, w);
            size_t e3 = round_trip(&in[k], w, 3, 0), e4 = round_trip(&in[k], w, 4, 0);
            ck_assert_msg(e4 <= ref && e3 <= ref, "input %d window %u: zlib -9 %zu, effort 3 %zu, effort 4 %zu", k,
                          w, ref, e3, e4);
        }
    }
    for (k = 0; k < 3; k++) {
        free(in[k].p);
    }
}
END_TEST

/* fed in pieces without flushing: the same bytes as one-shot */
START_TEST(test_pieces_same_as_oneshot)
{
    buf t = gen_text(700000, 6);
    int e;
    for (e = 1; e <= 4; e += (e == 1 ? 2 : 1)) {
        uint8_t *ref = NULL;
        size_t rl = 0, pos = 0, got;
        const uint8_t *o;
        otaup_dfl *s = otaup_dfl_new(13, e);
        uint8_t *acc = malloc(t.n + 1024u);
        size_t al = 0;
        ck_assert_ptr_nonnull(s);
        ck_assert_int_eq(otaup_dfl_compress(t.p, t.n, 13, e, &ref, &rl), 0);
        g_seed = 77u + (uint32_t)e;
        while (pos < t.n) {
            size_t k = rnd() % 3u == 0 ? rnd() % 17u : rnd() % 90000u;
            if (k > t.n - pos) {
                k = t.n - pos;
            }
            ck_assert_int_eq(otaup_dfl_write(s, t.p + pos, k, OTAUP_DFL_NO_FLUSH), 0);
            pos += k;
            o = otaup_dfl_output(s, &got);
            memcpy(acc + al, o, got);
            al += got;
            otaup_dfl_consume(s, got);
        }
        ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_FINISH), 0);
        o = otaup_dfl_output(s, &got);
        memcpy(acc + al, o, got);
        al += got;
        ck_assert_uint_eq(al, rl);
        ck_assert_mem_eq(acc, ref, rl);
        ck_assert_uint_eq(otaup_dfl_total_in(s), t.n);
        ck_assert_uint_eq(otaup_dfl_total_out(s), rl);
        otaup_dfl_free(s);
        free(ref);
        free(acc);
    }
    free(t.p);
}
END_TEST

/*
 * A stream cut by BLOCK and SYNC flushes, inflated as it comes: after a
 * SYNC the inflater has produced every byte so far and the output is
 * byte-aligned; after FINISH all of it, with the final block.
 */
static void stream_case(const buf *b, unsigned w, int e, uint32_t seed, size_t maxpiece)
{
    otaup_dfl *s = otaup_dfl_new(w, e);
    z_stream zs;
    uint8_t *dec = malloc(b->n + 1u);
    size_t pos = 0, got, syncs = 0;
    const uint8_t *o;
    int r;
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(dec);
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, -(int)w), Z_OK);
    g_seed = seed;
    while (pos < b->n) {
        size_t k = rnd() % maxpiece;
        int fl = (int)(rnd() % 4u);
        if (k > b->n - pos) {
            k = b->n - pos;
        }
        if (fl == OTAUP_DFL_FINISH) {
            fl = OTAUP_DFL_NO_FLUSH;
        }
        ck_assert_int_eq(otaup_dfl_write(s, b->p + pos, k, fl), 0);
        pos += k;
        o = otaup_dfl_output(s, &got);
        zs.next_in = (Bytef *)(uintptr_t)o;
        zs.avail_in = (uInt)got;
        zs.next_out = dec + zs.total_out;
        zs.avail_out = (uInt)(b->n + 1u - zs.total_out);
        r = inflate(&zs, Z_SYNC_FLUSH);
        ck_assert_msg(r == Z_OK || r == Z_BUF_ERROR, "inflate %d (%s)", r, zs.msg ? zs.msg : "-");
        ck_assert_uint_eq(zs.avail_in, 0);
        otaup_dfl_consume(s, got);
        if (fl == OTAUP_DFL_SYNC) {
            ck_assert_uint_eq(zs.total_out, pos);
            ck_assert_int_eq(memcmp(dec, b->p, pos), 0);
            ck_assert_uint_ge(got, 4);
            ck_assert_int_eq(memcmp(o + got - 4u, "\x00\x00\xff\xff", 4), 0);
            syncs++;
        } else {
            ck_assert_uint_le(zs.total_out, pos);
        }
    }
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_FINISH), 0);
    o = otaup_dfl_output(s, &got);
    zs.next_in = (Bytef *)(uintptr_t)o;
    zs.avail_in = (uInt)got;
    zs.next_out = dec + zs.total_out;
    zs.avail_out = (uInt)(b->n + 1u - zs.total_out);
    r = inflate(&zs, Z_FINISH);
    ck_assert_int_eq(r, Z_STREAM_END);
    ck_assert_uint_eq(zs.avail_in, 0);
    ck_assert_uint_eq(zs.total_out, b->n);
    ck_assert_int_eq(memcmp(dec, b->p, b->n), 0);
    /* a finished stream takes nothing more until reset */
    ck_assert_int_eq(otaup_dfl_write(s, b->p, 1, OTAUP_DFL_NO_FLUSH), OTAUP_E_STATE);
    otaup_dfl_consume(s, got);
    inflateEnd(&zs);
    /* reset: a new, independent stream from the same object */
    otaup_dfl_reset(s);
    ck_assert_int_eq(otaup_dfl_write(s, b->p, b->n / 3u, OTAUP_DFL_FINISH), 0);
    o = otaup_dfl_output(s, &got);
    ck_assert(inflate_cmp(o, got, b->p, b->n / 3u, w, 0));
    otaup_dfl_free(s);
    free(dec);
    (void)syncs;
}

START_TEST(test_stream_flushes)
{
    buf in[3];
    unsigned w;
    int e, k;
    in[0] = gen_text(90000, 11);
    in[1] = read_file("/proc/self/exe", 8192, 90000);
    in[2] = gen_repetitive(90000, 12);
    for (k = 0; k < 3; k++) {
        for (w = 9; w <= 15; w += 3) {
            for (e = 1; e <= 4; e++) {
                stream_case(&in[k], w, e, 100u * (uint32_t)k + w + (uint32_t)e, k == 2 ? 300u : 9000u);
            }
        }
    }
    /* byte by byte with a SYNC after each: every position near a flush point */
    {
        buf small = gen_text(3000, 13);
        for (e = 1; e <= 4; e++) {
            stream_case(&small, 9, e, 5u, 2u);
        }
        free(small.p);
    }
    for (k = 0; k < 3; k++) {
        free(in[k].p);
    }
}
END_TEST

/* flushes with no new input, and a stream of only flushes */
START_TEST(test_empty_flushes)
{
    otaup_dfl *s = otaup_dfl_new(15, 4);
    const uint8_t *o;
    size_t got;
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_BLOCK), 0);
    o = otaup_dfl_output(s, &got);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_SYNC), 0);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_SYNC), 0);
    ck_assert_int_eq(otaup_dfl_write(s, "x", 1, OTAUP_DFL_BLOCK), 0);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_FINISH), 0);
    o = otaup_dfl_output(s, &got);
    ck_assert(inflate_cmp(o, got, (const uint8_t *)"x", 1, 15, 1));
    otaup_dfl_free(s);
}
END_TEST

START_TEST(test_bad_arguments)
{
    otaup_dfl *s;
    uint8_t *z = (uint8_t *)1;
    size_t zl = 7;
    ck_assert_ptr_null(otaup_dfl_new(8, 1));
    ck_assert_ptr_null(otaup_dfl_new(16, 1));
    ck_assert_ptr_null(otaup_dfl_new(15, 0));
    ck_assert_ptr_null(otaup_dfl_new(15, 5));
    ck_assert_int_eq(otaup_dfl_compress("a", 1, 8, 1, &z, &zl), OTAUP_E_INVAL);
    ck_assert_ptr_null(z);
    ck_assert_uint_eq(zl, 0);
    ck_assert_int_eq(otaup_dfl_compress("a", 1, 15, 9, &z, &zl), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_compress(NULL, 1, 15, 1, &z, &zl), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_compress("a", 1, 15, 1, NULL, &zl), OTAUP_E_INVAL);
    s = otaup_dfl_new(9, 2);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(otaup_dfl_write(NULL, "a", 1, OTAUP_DFL_NO_FLUSH), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 1, OTAUP_DFL_NO_FLUSH), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_write(s, "a", 1, 4), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_write(s, "a", 1, -1), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_dfl_write(s, "a", 1, OTAUP_DFL_FINISH), 0);
    ck_assert_int_eq(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_FINISH), OTAUP_E_STATE);
    otaup_dfl_consume(s, 1000); /* more than there is */
    (void)otaup_dfl_output(s, &zl);
    ck_assert_uint_eq(zl, 0);
    otaup_dfl_free(s);
    otaup_dfl_free(NULL);
    otaup_dfl_reset(NULL);
}
END_TEST

/* ELF files: more of them, every window and effort */
START_TEST(test_elf_files)
{
    static const char *const files[] = { "/usr/bin/ls", "/usr/bin/cp", "/usr/bin/bash", "/usr/bin/gzip",
                                         "/usr/bin/tar", "/usr/bin/find", NULL };
    int k, e, nfiles = exhaustive() ? 6 : 2;
    for (k = 0; k < nfiles && files[k] != NULL; k++) {
        buf b = read_file(files[k], 0, exhaustive() ? 1500000u : 120000u);
        unsigned w;
        if (b.n > 0) {
            for (w = 9; w <= 15; w += exhaustive() ? 1u : 6u) {
                for (e = 1; e <= 4; e++) {
                    round_trip(&b, w, e, exhaustive());
                }
            }
        }
        free(b.p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deflate_opt");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_tiny_inputs);
    tcase_add_test(tc, test_classes_every_window);
    tcase_add_test(tc, test_window_edge);
    tcase_add_test(tc, test_every_length_and_distance);
    tcase_add_test(tc, test_large_inputs);
    tcase_add_test(tc, test_smaller_than_zlib9);
    tcase_add_test(tc, test_pieces_same_as_oneshot);
    tcase_add_test(tc, test_stream_flushes);
    tcase_add_test(tc, test_empty_flushes);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_elf_files);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
