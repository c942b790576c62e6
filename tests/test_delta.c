/*
 * Planner round trips. Every delta made here is (1) checked by the core
 * reader, (2) decoded back into a plan from its bytes, and (3) executed by
 * the plan simulator on a model of the flash that holds OLD and fails on
 * any read of data an earlier step overwrote, on programming unerased
 * flash, on a step hash mismatch; the result must be NEW byte for byte.
 *
 * Knobs: OTAUP_DELTA_PROPERTY_CASES (default 300 seeded random cases, each
 * with several edits), OTAUP_DELTA_DAMAGE_FULL=1 (flip every bit of a
 * larger patch).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Code-like content: repeated opcodes with embedded "addresses". */
static void gen_image(uint8_t *p, size_t n, uint32_t seed)
{
    size_t i = 0;
    rng_state = seed * 2654435761u + 1u;
    while (i < n) {
        uint32_t kind = rnd() % 8;
        if (kind < 5 && i + 5 <= n) {
            uint32_t addr = 0x08001000u + (uint32_t)i * 3u;
            p[i++] = (uint8_t)(0xE8 + kind);
            p[i++] = (uint8_t)addr;
            p[i++] = (uint8_t)(addr >> 8);
            p[i++] = (uint8_t)(addr >> 16);
            p[i++] = (uint8_t)(addr >> 24);
        } else if (kind == 5) {
            size_t run = 1 + rnd() % 40;
            while (run-- > 0 && i < n) {
                p[i++] = 0;
            }
        } else {
            p[i++] = (uint8_t)rnd();
        }
    }
}

typedef struct result {
    size_t patch_len;
    otaup_delta_stats stats;
} result;

/* Make, check, decode and simulate a delta; fail the test on any problem. */
static void roundtrip(const uint8_t *old, size_t old_len, const uint8_t *nw, size_t new_len,
                      const otaup_delta_options *opt, result *res)
{
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    size_t len;
    uint8_t *out = malloc(new_len + 1);
    char err[200];
    uint64_t reads = 0;
    int rc;
    otaup_delta_header h;
    ck_assert_ptr_nonnull(out);
    rc = otaup_delta_create(old, old_len, NULL, nw, new_len, opt, &d);
    ck_assert_msg(rc == 0, "otaup_delta_create: %s", otaup_strerror(rc));
    bytes = otaup_delta_bytes(d, &len);
    ck_assert_int_eq(otaup_delta_check(bytes, len, &h, NULL), 0);
    ck_assert_uint_eq(h.target_size, new_len);
    rc = otaup_delta_decode(bytes, len, &p);
    ck_assert_msg(rc == 0, "decode: %s", otaup_strerror(rc));
    ck_assert_uint_eq(p->nsteps, otaup_delta_plan(d)->nsteps);
    ck_assert_uint_eq(p->nops, otaup_delta_plan(d)->nops);
    rc = otaup_plan_simulate(p, old, old_len, out, new_len, &reads, err, sizeof err);
    ck_assert_msg(rc == 0, "simulate: %s (%s)", err, otaup_strerror(rc));
    ck_assert_msg(memcmp(out, nw, new_len) == 0, "result differs from NEW");
    /* a wrong OLD is refused */
    if (old_len > 0) {
        uint8_t *bad = malloc(old_len);
        memcpy(bad, old, old_len);
        bad[old_len / 2] ^= 0x40;
        ck_assert_int_eq(otaup_plan_simulate(p, bad, old_len, out, new_len, NULL, NULL, 0), OTAUP_E_SOURCE_MISMATCH);
        free(bad);
    }
    if (res != NULL) {
        res->patch_len = len;
        res->stats = otaup_delta_plan(d)->stats;
    }
    otaup_plan_free(p);
    otaup_delta_free(d);
    free(out);
}

static void opts(otaup_delta_options *o, uint8_t layout, uint32_t sector, uint32_t write_size, uint32_t ram)
{
    otaup_delta_options_init(o, OTAUP_DELTA_OPTIONS_VERSION);
    otaup_geometry_uniform(&o->geo, 0x08000000u, sector, 4096u * 1024u / sector, write_size);
    o->layout = layout;
    o->ram = ram;
}

static const uint8_t layouts[2] = { OTAUP_LAYOUT_INPLACE, OTAUP_LAYOUT_AB };

START_TEST(test_identical)
{
    static uint8_t img[50000];
    otaup_delta_options o;
    result r;
    int l;
    gen_image(img, sizeof img, 1);
    for (l = 0; l < 2; l++) {
        opts(&o, layouts[l], 4096, 4, 32768);
        roundtrip(img, sizeof img, img, sizeof img, &o, &r);
        if (layouts[l] == OTAUP_LAYOUT_INPLACE) {
            ck_assert_uint_eq(r.stats.steps, 0);
            ck_assert_uint_eq(r.stats.sectors_erased, 0);
            ck_assert_uint_eq(r.stats.sectors_unchanged, r.stats.sectors_total);
            ck_assert_uint_lt(r.patch_len, 400);
        } else {
            ck_assert_uint_eq(r.stats.sectors_erased, r.stats.sectors_total);
            ck_assert_uint_lt(r.patch_len, 1200);
        }
    }
}
END_TEST

/* otaup_delta_decode() refuses an INFO entry without its check line: an
 * empty one (length 0, which gives the reader no bytes to parse) too,
 * inserted before the END entry of a delta it otherwise decodes. */
START_TEST(test_empty_info)
{
    static uint8_t a[20000], b[20000];
    static const uint8_t empty_info[6] = { 4, 0, 0, 0, 0, 0 }; /* tag 4, length 0 */
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    uint8_t *copy;
    size_t len, h;
    gen_image(a, sizeof a, 3);
    memcpy(b, a, sizeof b);
    b[5000] ^= 0x5A;
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 32768);
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &len);
    h = (size_t)bytes[10] | (size_t)bytes[11] << 8; /* header size */
    ck_assert_uint_lt(h, len);
    copy = malloc(len + sizeof empty_info);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, h);
    memcpy(copy + h, empty_info, sizeof empty_info);
    memcpy(copy + h + sizeof empty_info, bytes + h, len - h);
    ck_assert_int_eq(otaup_delta_decode(bytes, len, &p), 0);
    otaup_plan_free(p);
    p = NULL;
    ck_assert_int_eq(otaup_delta_decode(copy, len + sizeof empty_info, &p), OTAUP_E_DELTA_CORRUPT);
    ck_assert_ptr_null(p);
    /* the same entry as PAD (tag 3) is taken: the refusal is INFO's */
    copy[h] = 3;
    ck_assert_int_eq(otaup_delta_decode(copy, len + sizeof empty_info, &p), 0);
    otaup_plan_free(p);
    free(copy);
    otaup_delta_free(d);
}
END_TEST

START_TEST(test_one_byte)
{
    static uint8_t a[100000], b[100000];
    otaup_delta_options o;
    result r;
    int l;
    gen_image(a, sizeof a, 2);
    memcpy(b, a, sizeof a);
    b[54321] ^= 0x5A;
    for (l = 0; l < 2; l++) {
        opts(&o, layouts[l], 4096, 1, 65536);
        roundtrip(a, sizeof a, b, sizeof b, &o, &r);
        if (layouts[l] == OTAUP_LAYOUT_INPLACE) {
            ck_assert_uint_eq(r.stats.sectors_erased, 1); /* only the sector that changed */
            ck_assert_uint_eq(r.stats.steps, 1);
        }
        ck_assert_uint_lt(r.patch_len, 2000);
    }
}
END_TEST

/* insertion shifting everything, deletion, both through several sizes */
START_TEST(test_insert_delete)
{
    static uint8_t a[120000], b[130000];
    static const size_t at[] = { 0, 17, 4096, 60001, 119999 };
    static const size_t ins[] = { 1, 7, 4096, 5000 };
    otaup_delta_options o;
    size_t i, j;
    int l;
    gen_image(a, sizeof a, 3);
    for (i = 0; i < sizeof at / sizeof at[0]; i++) {
        for (j = 0; j < sizeof ins / sizeof ins[0]; j++) {
            size_t k;
            memcpy(b, a, at[i]);
            for (k = 0; k < ins[j]; k++) {
                b[at[i] + k] = (uint8_t)(k * 13u + 1u);
            }
            memcpy(b + at[i] + ins[j], a + at[i], sizeof a - at[i]);
            for (l = 0; l < 2; l++) {
                result r;
                opts(&o, layouts[l], 4096, 4, 49152);
                roundtrip(a, sizeof a, b, sizeof a + ins[j], &o, &r); /* insertion */
                ck_assert_uint_lt(r.patch_len, 3000 + ins[j]);
                roundtrip(b, sizeof a + ins[j], a, sizeof a, &o, &r); /* deletion */
                ck_assert_uint_lt(r.patch_len, 3000);
            }
        }
    }
}
END_TEST

/* moved and swapped blocks: in-place cycles that must be broken */
START_TEST(test_swaps_cycles)
{
    static uint8_t a[65536], b[65536];
    otaup_delta_options o;
    result r;
    uint32_t sector;
    gen_image(a, sizeof a, 4);
    /* swap the halves: every sector reads the sector it will overwrite
     * and the one on the other side: a cycle across the whole image */
    memcpy(b, a + 32768, 32768);
    memcpy(b + 32768, a, 32768);
    for (sector = 1024; sector <= 8192; sector *= 2) {
        int l;
        for (l = 0; l < 2; l++) {
            opts(&o, layouts[l], sector, 1, 16384);
            o.staging_size = sector; /* one sector per step: maximum cross-step dependency */
            roundtrip(a, sizeof a, b, sizeof b, &o, &r);
            if (layouts[l] == OTAUP_LAYOUT_INPLACE) {
                ck_assert_uint_gt(r.stats.cycle_edges, 0);
                ck_assert_uint_gt(r.stats.cycle_cost_bytes, 0);
                /* breaking costs at most half: one side of each swap */
                ck_assert_uint_le(r.stats.cycle_cost_bytes, 32768 + sector);
            } else {
                ck_assert_uint_eq(r.stats.cycle_edges, 0);
                ck_assert_uint_lt(r.patch_len, 2000);
            }
        }
    }
    /* rotate four blocks */
    memcpy(b, a + 16384, 49152);
    memcpy(b + 49152, a, 16384);
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 16384);
    roundtrip(a, sizeof a, b, sizeof b, &o, &r);
    /* a move in one direction needs no cycle breaking */
    memcpy(b, a, sizeof a);
    memmove(b + 1000, a, 40000);
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 16384);
    roundtrip(a, sizeof a, b, sizeof b, &o, &r);
    ck_assert_uint_eq(r.stats.cycle_cost_bytes, 0);
}
END_TEST

START_TEST(test_growth_shrink)
{
    static uint8_t a[70000], b[90000];
    static const size_t sizes[] = { 4095, 4096, 4097, 8191, 12289, 65536, 69999 };
    otaup_delta_options o;
    size_t i, j;
    gen_image(a, sizeof a, 5);
    gen_image(b, sizeof b, 5); /* same prefix */
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            int l;
            for (l = 0; l < 2; l++) {
                opts(&o, layouts[l], 4096, 4, 32768);
                roundtrip(a, sizes[i], b, sizes[j] + 1000u, &o, NULL);
            }
        }
    }
}
END_TEST

/* STM32F4-like map: sectors larger than the staging buffer take several steps */
START_TEST(test_nonuniform)
{
    static uint8_t a[400000], b[410000];
    otaup_delta_options o;
    result r;
    int l;
    size_t k;
    gen_image(a, sizeof a, 6);
    memcpy(b, a, 100);
    for (k = 0; k < 300; k++) {
        b[100 + k] = (uint8_t)k;
    }
    memcpy(b + 400, a + 100, sizeof a - 100);
    memset(b + 300 + sizeof a, 0x11, sizeof b - 300 - sizeof a);
    for (l = 0; l < 2; l++) {
        otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION);
        o.geo.base = 0x08000000u;
        o.geo.write_size = 4;
        o.geo.erased = 0xFF;
        o.geo.nruns = 3;
        o.geo.runs[0].count = 4;
        o.geo.runs[0].size = 16384;
        o.geo.runs[1].count = 1;
        o.geo.runs[1].size = 65536;
        o.geo.runs[2].count = 7;
        o.geo.runs[2].size = 131072;
        o.layout = layouts[l];
        o.ram = 49152;
        if (layouts[l] == OTAUP_LAYOUT_AB) {
            o.target_addr = 0x08000000u + 4u * 16384u + 65536u + 3u * 131072u;
        } else {
            o.scratch_addr = 0x08000000u + 4u * 16384u + 65536u + 6u * 131072u;
            o.scratch_size = 131072u;
        }
        if (layouts[l] == OTAUP_LAYOUT_AB) {
            /* A/B: a 128 KiB target sector is written by one step, which
             * 48 KiB of RAM cannot stage */
            otaup_delta *d = NULL;
            ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_LIMIT);
            o.ram = 147456;
        }
        roundtrip(a, sizeof a, b, sizeof b, &o, &r);
        if (layouts[l] == OTAUP_LAYOUT_AB) {
            ck_assert_uint_le(r.stats.steps, r.stats.sectors_erased); /* one step per sector at most */
        } else {
            ck_assert_uint_gt(r.stats.steps, r.stats.sectors_erased); /* big sectors in several steps */
        }
    }
}
END_TEST

START_TEST(test_write_sizes)
{
    static uint8_t a[30011], b[30011];
    static const uint32_t ws[] = { 1, 4, 8, 256 };
    otaup_delta_options o;
    size_t i;
    gen_image(a, sizeof a, 7);
    memcpy(b, a, sizeof a);
    for (i = 0; i < 20; i++) {
        b[i * 1499u] ^= 0xFF;
    }
    for (i = 0; i < sizeof ws / sizeof ws[0]; i++) {
        int l;
        for (l = 0; l < 2; l++) {
            opts(&o, layouts[l], 4096, ws[i], 40000);
            roundtrip(a, sizeof a, b, sizeof b - 3, &o, NULL);
        }
    }
}
END_TEST

START_TEST(test_tiny_images)
{
    static const size_t sizes[] = { 0, 1, 2, 3, 4095 };
    uint8_t a[4096], b[4096];
    otaup_delta_options o;
    size_t i, j;
    memset(a, 0x33, sizeof a);
    memset(b, 0x44, sizeof b);
    for (i = 0; i < 5; i++) {
        for (j = 0; j < 5; j++) {
            int l;
            for (l = 0; l < 2; l++) {
                opts(&o, layouts[l], 4096, 1, 20000);
                roundtrip(a, sizes[i], b, sizes[j], &o, NULL);
                roundtrip(a, sizes[i], a, sizes[j], &o, NULL);
            }
        }
    }
}
END_TEST

/* Seeded random edits: insert, delete, overwrite, move, copy, relocate-like +delta. */
static size_t mutate(const uint8_t *a, size_t n, uint8_t *b, size_t cap, int edits)
{
    size_t len = n;
    int e;
    memcpy(b, a, n);
    for (e = 0; e < edits; e++) {
        uint32_t kind = rnd() % 6;
        size_t pos = len ? rnd() % len : 0, cnt = 1 + rnd() % (1u + rnd() % 3000u), k;
        if (kind == 0 && len + cnt <= cap) { /* insert */
            memmove(b + pos + cnt, b + pos, len - pos);
            for (k = 0; k < cnt; k++) {
                b[pos + k] = (uint8_t)rnd();
            }
            len += cnt;
        } else if (kind == 1 && len > 0) { /* delete */
            if (cnt > len - pos) {
                cnt = len - pos;
            }
            memmove(b + pos, b + pos + cnt, len - pos - cnt);
            len -= cnt;
        } else if (kind == 2) { /* overwrite */
            for (k = 0; k < cnt && pos + k < len; k++) {
                b[pos + k] = (uint8_t)rnd();
            }
        } else if (kind == 3 && len > 0) { /* move a block */
            size_t to = rnd() % len;
            if (cnt > len - pos) {
                cnt = len - pos;
            }
            if (cnt > len - to) {
                cnt = len - to;
            }
            memmove(b + to, b + pos, cnt);
        } else if (kind == 4) { /* relocation: add a constant to every 4th byte */
            uint8_t dlt = (uint8_t)(1 + rnd() % 16);
            for (k = 0; k < cnt && pos + k < len; k += 4) {
                b[pos + k] = (uint8_t)(b[pos + k] + dlt);
            }
        } else if (kind == 5) { /* erased run */
            for (k = 0; k < cnt && pos + k < len; k++) {
                b[pos + k] = 0xFF;
            }
        }
    }
    return len;
}

START_TEST(test_property)
{
    static uint8_t a[80000], b[120000];
    const char *env = getenv("OTAUP_DELTA_PROPERTY_CASES");
    long cases = env != NULL ? strtol(env, NULL, 10) : 300;
    long c;
    long edits = 0;
    for (c = 0; c < cases; c++) {
        otaup_delta_options o;
        uint32_t seed = (uint32_t)c + 1000u;
        size_t n, m;
        static const uint32_t sectors[] = { 256, 512, 1024, 4096 };
        static const uint32_t wsz[] = { 1, 4, 8, 16 };
        int ed;
        rng_state = seed;
        n = 1 + rnd() % (sizeof a - 1);
        gen_image(a, n, seed);
        rng_state = seed * 7u + 3u;
        ed = 1 + (int)(rnd() % 16);
        m = mutate(a, n, b, sizeof b, ed);
        edits += ed;
        opts(&o, (rnd() & 1u) ? OTAUP_LAYOUT_AB : OTAUP_LAYOUT_INPLACE, sectors[rnd() % 4], wsz[rnd() % 4],
             12288u + rnd() % 60000u);
        o.staging_size = (rnd() & 1u) ? 0 : o.geo.runs[0].size * (1u + rnd() % 3u);
        if (o.staging_size != 0 && o.staging_size < OTAUP_DELTA_STAGING_MIN) {
            o.staging_size = OTAUP_DELTA_STAGING_MIN; /* several small sectors per step */
        }
        o.max_ops = (uint16_t)((rnd() & 3u) == 0 ? 1 + rnd() % 4 : 0);
        o.restart_interval = (rnd() & 3u) == 0 ? 1 : 0;
        roundtrip(a, n, b, m, &o, NULL);
    }
    fprintf(stderr, "property: %ld cases, %ld random edits\n", cases, edits);
}
END_TEST

START_TEST(test_from_sig)
{
    static uint8_t a[200000], b[200000];
    uint8_t *sig = NULL, *out = malloc(sizeof b);
    size_t sig_len = 0, len;
    otaup_sig s;
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    char err[200];
    int l;
    gen_image(a, sizeof a, 9);
    memcpy(b, a, sizeof a);
    memset(b + 70000, 0x12, 3000);       /* change inside */
    memmove(b + 100000, a + 140000, 8192); /* whole blocks moved (block aligned) */
    ck_assert_int_eq(otaup_sig_create(a, sizeof a, 1, 2, 4096, &sig, &sig_len), 0);
    ck_assert_int_eq(otaup_sig_parse(sig, sig_len, &s), 0);
    for (l = 0; l < 2; l++) {
        opts(&o, layouts[l], 4096, 4, 32768);
        ck_assert_int_eq(otaup_delta_create(NULL, 0, &s, b, sizeof b, &o, &d), 0);
        bytes = otaup_delta_bytes(d, &len);
        ck_assert_uint_lt(len, sizeof b / 2);
        ck_assert_int_eq(otaup_delta_decode(bytes, len, &p), 0);
        ck_assert(p->hdr.flags & OTAUP_DELTA_F_FROM_SIG);
        ck_assert_int_eq(otaup_plan_simulate(p, a, sizeof a, out, sizeof b, NULL, err, sizeof err), 0);
        ck_assert_int_eq(memcmp(out, b, sizeof b), 0);
        otaup_plan_free(p);
        otaup_delta_free(d);
    }
    free(sig);
    free(out);
}
END_TEST

/* Bytes a plan copies from OLD. */
static uint64_t copied_bytes(const otaup_plan *p)
{
    uint64_t n = 0;
    uint32_t i;
    for (i = 0; i < p->nops; i++) {
        if (p->ops[i].type == OTAUP_REC_COPY) {
            n += p->ops[i].len;
        }
    }
    return n;
}

/* Plan NEW from the signature sig[0..sig_len); apply it to OLD on the
 * simulated flash (NEW must come out) and return the patch size and the
 * bytes copied from OLD. */
static size_t sig_plan(const uint8_t *sig, size_t sig_len, const uint8_t *old, size_t old_len,
                       const uint8_t *nw, size_t new_len, uint8_t layout, uint64_t *copied)
{
    otaup_sig s;
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    uint8_t *out = malloc(new_len + 1u);
    char err[200];
    size_t len;
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(otaup_sig_parse(sig, sig_len, &s), 0);
    opts(&o, layout, 4096, 4, 32768);
    ck_assert_int_eq(otaup_delta_create(NULL, 0, &s, nw, new_len, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &len);
    ck_assert_int_eq(otaup_delta_decode(bytes, len, &p), 0);
    ck_assert(p->hdr.flags & OTAUP_DELTA_F_FROM_SIG);
    ck_assert_msg(otaup_plan_simulate(p, old, old_len, out, new_len, NULL, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(memcmp(out, nw, new_len), 0);
    *copied = copied_bytes(p);
    otaup_plan_free(p);
    otaup_delta_free(d);
    free(out);
    return len;
}

/* An insertion at an offset that is not a multiple of the block size
 * shifts every later block of OLD: the rolling sum finds them all, the
 * short last block of OLD included. */
START_TEST(test_from_sig_shifted)
{
    static uint8_t a[200000], b[200000 + 123], u[200000];
    static const uint32_t bss[] = { 4096, 1024 };
    uint8_t *sig = NULL, *usig = NULL;
    size_t sig_len = 0, usig_len = 0, lit, len;
    uint64_t copied;
    int l, k;
    gen_image(a, sizeof a, 21);
    gen_image(u, sizeof u, 22);
    memcpy(b, a, 50001);
    memset(b + 50001, 0x5A, 123);
    memcpy(b + 50001 + 123, a + 50001, sizeof a - 50001);
    b[150000] ^= 0xFF; /* and one byte changed further on */
    for (k = 0; k < 2; k++) {
        uint32_t bs = bss[k];
        ck_assert_uint_ne(sizeof a % bs, 0); /* OLD ends with a short block */
        ck_assert_int_eq(otaup_sig_create(a, sizeof a, 1, 2, bs, &sig, &sig_len), 0);
        ck_assert_int_eq(otaup_sig_create(u, sizeof u, 1, 2, bs, &usig, &usig_len), 0);
        for (l = 0; l < 2; l++) {
            /* what writing NEW costs: a signature that shares nothing */
            lit = sig_plan(usig, usig_len, u, sizeof u, b, sizeof b, layouts[l], &copied);
            ck_assert_uint_eq(copied, 0);
            len = sig_plan(sig, sig_len, a, sizeof a, b, sizeof b, layouts[l], &copied);
            /* lost: the block holding the insertion, the one holding the
             * changed byte; in place the unchanged sectors before the
             * insertion are not even rewritten */
            ck_assert_uint_ge(copied, sizeof b - 123 - 2u * bs - (layouts[l] == OTAUP_LAYOUT_INPLACE ? 50001u : 0u));
            ck_assert_msg(len * 10u < lit, "bs %u layout %d: %zu bytes, writing NEW %zu", bs, l, len, lit);
        }
        free(sig);
        free(usig);
    }
}
END_TEST

/* A window whose rolling sum matches a block but whose XXH3 half does not
 * is not a match. */
START_TEST(test_from_sig_confirm)
{
    static uint8_t a[60000];
    uint8_t *sig = NULL;
    size_t sig_len = 0, i, n;
    uint64_t copied;
    gen_image(a, sizeof a, 23);
    ck_assert_int_eq(otaup_sig_create(a, sizeof a, 1, 2, 1024, &sig, &sig_len), 0);
    sig_plan(sig, sig_len, a, sizeof a, a, sizeof a, OTAUP_LAYOUT_AB, &copied);
    ck_assert_uint_eq(copied, sizeof a);
    /* keep every rolling sum, change every XXH3 half, fix the check hash */
    n = (sig_len - OTAUP_SIG_HEADER_SIZE - 8u) / 8u;
    for (i = 0; i < n; i++) {
        sig[OTAUP_SIG_HEADER_SIZE + 8u * i + 5u] ^= 0x40;
    }
    {
        uint64_t h = otaup_hash64(sig + OTAUP_SIG_HEADER_SIZE, 8u * n);
        for (i = 0; i < 8; i++) {
            sig[OTAUP_SIG_HEADER_SIZE + 8u * n + i] = (uint8_t)(h >> (8u * i));
        }
    }
    sig_plan(sig, sig_len, a, sizeof a, a, sizeof a, OTAUP_LAYOUT_AB, &copied);
    ck_assert_uint_eq(copied, 0);
    free(sig);
}
END_TEST

START_TEST(test_restart_points)
{
    static uint8_t a[100000], b[100000];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    size_t len, every, dflt;
    uint32_t k;
    gen_image(a, sizeof a, 10);
    gen_image(b, sizeof b, 11);
    opts(&o, OTAUP_LAYOUT_AB, 4096, 1, 20000);
    o.restart_interval = 1;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &every);
    ck_assert_int_eq(otaup_delta_decode(bytes, every, &p), 0);
    ck_assert_uint_eq(p->hdr.sync_count, p->nsteps);
    for (k = 0; k < p->nsteps; k++) {
        ck_assert(p->steps[k].sync);
    }
    otaup_plan_free(p);
    otaup_delta_free(d);
    o.restart_interval = 0;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &dflt);
    ck_assert_int_eq(otaup_delta_decode(bytes, dflt, &p), 0);
    ck_assert_uint_lt(p->hdr.sync_count, p->nsteps);
    ck_assert(p->steps[0].sync);
    ck_assert_uint_le(dflt, every);
    (void)len;
    otaup_plan_free(p);
    otaup_delta_free(d);
}
END_TEST

START_TEST(test_bad_options)
{
    uint8_t a[100] = { 0 }, b[100] = { 1 };
    otaup_delta_options o;
    otaup_delta *d = NULL;
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
    o.version = 99;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_INVAL);
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 7000);
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_LIMIT);
    {
        /* in place, images larger than the flash: OTAUP_E_GEOMETRY, also
         * when its sectors are larger than the staging buffer (it was
         * OTAUP_E_SCRATCH: no room for a scratch area after the slot) */
        static uint8_t huge[400000];
        static const uint32_t sizes[] = { 65536, 131072, 131072 };
        uint32_t k;
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.geo.nruns = 3;
        for (k = 0; k < 3; k++) {
            o.geo.runs[k].size = sizes[k];
            o.geo.runs[k].count = 1;
        }
        ck_assert_int_eq(otaup_delta_create(huge, sizeof huge, NULL, huge, sizeof huge, &o, &d), OTAUP_E_GEOMETRY);
        ck_assert_int_eq(otaup_delta_create(huge, 200000, NULL, huge, 200000, &o, &d), OTAUP_E_SCRATCH);
    }
    opts(&o, OTAUP_LAYOUT_AB, 4096, 4, 65536);
    o.target_addr = 0x08000000u + 10u; /* not a sector boundary */
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_GEOMETRY);
    /* A/B slots that overlap; an in-place scratch area inside the slot or
     * not whole sectors: refused before planning */
    opts(&o, OTAUP_LAYOUT_AB, 4096, 4, 65536);
    {
        static uint8_t big[20000];
        o.target_addr = 0x08000000u + 4096u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.scratch_addr = 0x08000000u + 16384u;
        o.scratch_size = 8192;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        o.scratch_addr = 0x08000000u + 20480u + 100u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        /* each of address and size has its own default (delta.h): an
         * address alone gets enough whole sectors for the staging buffer
         * there, a size alone the sectors after the slot (both were
         * planned without a scratch area: OTAUP_E_PLAN, or placed at 0,
         * off this flash: OTAUP_E_REGION) */
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.scratch_addr = 0x08000000u + 65536u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.scratch_addr, 0x08000000u + 65536u);
        ck_assert_uint_ge(otaup_delta_plan(d)->hdr.scratch_size, otaup_delta_plan(d)->hdr.staging_size);
        otaup_delta_free(d);
        d = NULL;
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.scratch_size = 8192;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.scratch_addr, 0x08000000u + 20480u);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.scratch_size, 8192u);
        otaup_delta_free(d);
        d = NULL;
        /* an address alone inside the slot, or off the flash: refused */
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.scratch_addr = 0x08000000u + 4096u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        o.scratch_addr = 0x09000000u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        /* a flash from 0 with the slot above: a size alone at 0 stays at 0 */
        opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
        o.geo.base = 0;
        o.source_addr = 32768;
        o.scratch_size = 8192;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.scratch_addr, 0);
        otaup_delta_free(d);
        d = NULL;
        /* a flash from 0: target_given makes 0 the target (not the default) */
        opts(&o, OTAUP_LAYOUT_AB, 4096, 4, 65536);
        o.geo.base = 0;
        o.source_addr = 32768;
        o.target_given = 1;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.target_addr, 0);
        otaup_delta_free(d);
        d = NULL;
        o.target_given = 0;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        ck_assert_uint_eq(otaup_delta_plan(d)->hdr.target_addr, 32768u + 20480u);
        otaup_delta_free(d);
        d = NULL;
        /* an unaligned source whose head lies in the target's last sector
         * (erased whole by the target's step): refused (the executor
         * refused the step for want of a scratch area, after journaling) */
        o.target_given = 1;
        o.source_addr = 20000u + 256u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_REGION);
        o.source_addr = 20480u;
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), 0);
        otaup_delta_free(d);
        d = NULL;
    }
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 4, 65536);
    o.geo.runs[0].count = 1;
    o.scratch_size = 0;
    {
        static uint8_t big[8192];
        ck_assert_int_eq(otaup_delta_create(big, sizeof big, NULL, big, sizeof big, &o, &d), OTAUP_E_GEOMETRY);
    }
    ck_assert_ptr_null(d);
}
END_TEST

/* The simulator itself must catch a plan that reads overwritten flash. */
START_TEST(test_simulator_catches_bad_order)
{
    static uint8_t a[16384], b[16384];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    size_t len;
    uint8_t *out = malloc(sizeof b);
    char err[200];
    uint32_t k, found = 0;
    gen_image(a, sizeof a, 12);
    /* NEW sector 1 = OLD sector 0 (shifted): written in descending order */
    memcpy(b, a, sizeof a);
    memcpy(b + 4096, a, 4096);
    memcpy(b + 8192, a + 4096, 4096);
    opts(&o, OTAUP_LAYOUT_INPLACE, 4096, 1, 16384);
    o.staging_size = 4096;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &len);
    ck_assert_int_eq(otaup_delta_decode(bytes, len, &p), 0);
    ck_assert_int_eq(otaup_plan_simulate(p, a, sizeof a, out, sizeof b, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(p->nsteps, 2);
    ck_assert_uint_gt(p->steps[0].addr, p->steps[1].addr); /* 0x2000 first, then 0x1000 */
    /* swap the two steps: now sector 1 is rewritten before sector 2 reads it */
    {
        otaup_plan_step t = p->steps[0];
        p->steps[0] = p->steps[1];
        p->steps[1] = t;
        p->steps[0].index = 0;
        p->steps[1].index = 1;
    }
    ck_assert_int_eq(otaup_plan_simulate(p, a, sizeof a, out, sizeof b, NULL, err, sizeof err), OTAUP_E_PLAN);
    ck_assert_msg(strstr(err, "overwrote") != NULL, "message: %s", err);
    for (k = 0; k < p->nops; k++) {
        found += p->ops[k].type == OTAUP_REC_COPY || p->ops[k].type == OTAUP_REC_DIFF;
    }
    ck_assert_uint_gt(found, 0);
    otaup_plan_free(p);
    otaup_delta_free(d);
    free(out);
}
END_TEST

/* Damaged patches: every truncation, every flipped byte: refused, no crash. */
START_TEST(test_damage)
{
    static uint8_t a[20000], b[20000];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    const uint8_t *bytes;
    uint8_t *copy;
    size_t len, i;
    int full = getenv("OTAUP_DELTA_DAMAGE_FULL") != NULL;
    gen_image(a, sizeof a, 13);
    memcpy(b, a, sizeof a);
    memmove(b + 5000, a + 5100, 8000);
    b[100] ^= 1;
    opts(&o, OTAUP_LAYOUT_INPLACE, 1024, 4, 16384);
    o.restart_interval = 1;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &len);
    copy = malloc(len);
    memcpy(copy, bytes, len);
    for (i = 0; i < len; i++) {
        otaup_plan *p = NULL;
        ck_assert_msg(otaup_delta_check(copy, i, NULL, NULL) < 0, "truncation at %zu accepted", i);
        ck_assert_msg(otaup_delta_decode(copy, i, &p) < 0, "truncation at %zu decoded", i);
    }
    for (i = 0; i < len; i++) {
        int bit;
        for (bit = 0; bit < 8; bit += full ? 1 : 7) {
            otaup_plan *p = NULL;
            copy[i] ^= (uint8_t)(1u << bit);
            ck_assert_msg(otaup_delta_decode(copy, len, &p) < 0, "flip at %zu bit %d accepted", i, bit);
            copy[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(copy);
    otaup_delta_free(d);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("delta");
    TCase *tc = tcase_create("planner");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_identical);
    tcase_add_test(tc, test_one_byte);
    tcase_add_test(tc, test_empty_info);
    tcase_add_test(tc, test_insert_delete);
    tcase_add_test(tc, test_swaps_cycles);
    tcase_add_test(tc, test_growth_shrink);
    tcase_add_test(tc, test_nonuniform);
    tcase_add_test(tc, test_write_sizes);
    tcase_add_test(tc, test_tiny_images);
    tcase_add_test(tc, test_property);
    tcase_add_test(tc, test_from_sig);
    tcase_add_test(tc, test_from_sig_shifted);
    tcase_add_test(tc, test_from_sig_confirm);
    tcase_add_test(tc, test_restart_points);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_simulator_catches_bad_order);
    tcase_add_test(tc, test_damage);
    suite_add_tcase(s, tc);
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
