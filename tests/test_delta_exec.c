/*
 * Planner deltas through the terminal executor: each delta is applied by
 * otaup_exec on the simulated NOR flash (the code a terminal runs), in
 * place and A/B, and must leave NEW byte for byte; in-place plans with
 * cycles are also cut at every flash operation (torn), resumed from the
 * journal and finished.
 *
 * Knob: OTAUP_DELTA_EXEC_CASES (random pairs, default 40).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/otaup.h"
#include "otaup/simflash.h"

#define JOURNAL_SECTOR 4096u

static uint32_t rng_state;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

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
        } else {
            p[i++] = (uint8_t)rnd();
        }
    }
}

typedef struct device {
    otaup_simflash *sim;
    uint32_t journal_addr;
    otaup_delta_header h;
    uint32_t body_off;
    const uint8_t *delta;
    size_t delta_len;
} device;

/* The delta's geometry plus two journal sectors after it, OLD loaded. */
static void device_make(device *d, const uint8_t *delta, size_t len, const uint8_t *old, size_t old_len)
{
    otaup_simflash_options o;
    otaup_geometry g;
    memset(d, 0, sizeof *d);
    ck_assert_int_eq(otaup_delta_check(delta, len, &d->h, &d->body_off), 0);
    d->delta = delta;
    d->delta_len = len;
    g = d->h.geo;
    d->journal_addr = g.base + otaup_geometry_size(&g);
    ck_assert_uint_lt(g.nruns, OTAUP_MAX_SECTOR_RUNS);
    g.runs[g.nruns].count = 2;
    g.runs[g.nruns].size = JOURNAL_SECTOR;
    g.nruns++;
    otaup_simflash_options_init(&o);
    o.geo = g;
    ck_assert_int_eq(otaup_simflash_new(&o, &d->sim), 0);
    ck_assert_int_eq(otaup_simflash_load(d->sim, d->h.source_addr, old, (uint32_t)old_len), 0);
}

/* File offset of the last SYNC at or before step k. */
static size_t restart_offset(const device *d, uint32_t k)
{
    otaup_delta_reader r;
    size_t off = 0, best = d->body_off;
    otaup_delta_reader_init(&r);
    while (off < d->delta_len) {
        size_t used = 0;
        int ev = otaup_delta_reader_feed(&r, d->delta + off, d->delta_len - off, &used);
        off += used;
        if (ev < 0 || ev == OTAUP_DELTA_NEED_INPUT || ev == OTAUP_DELTA_END) {
            break;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_SYNC) {
            if (r.rec.index > k) {
                break;
            }
            best = r.rec_offset;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_DATA) {
            off += otaup_delta_reader_skip(&r);
        }
    }
    return best;
}

/* A terminal's executor: journal mounted, executor initialised. */
typedef struct terminal {
    otaup_journal j;
    otaup_exec ex;
    otaup_region win;
    void *work;
} terminal;

/* Boot: mount the journal and initialise the executor. */
static int term_open(device *d, terminal *t)
{
    const otaup_flash *f = otaup_simflash_flash(d->sim);
    const otaup_delta_header *h = &d->h;
    otaup_exec_config c;
    uint32_t end, start, size;
    size_t wsz;
    int rc;
    memset(t, 0, sizeof *t);
    rc = otaup_journal_mount(&t->j, f, d->journal_addr, 2u * JOURNAL_SECTOR);
    if (rc != 0) {
        return rc;
    }
    memset(&c, 0, sizeof c);
    c.flash = f;
    c.journal = &t->j;
    c.layout = h->layout;
    c.window_bits = h->window_bits;
    end = h->target_addr + h->target_size;
    if (h->layout == OTAUP_LAYOUT_INPLACE && h->source_addr + h->source_size > end) {
        end = h->source_addr + h->source_size;
    }
    if (end > h->target_addr && otaup_geometry_sector_at(&h->geo, end - 1u, &start, &size) >= 0) {
        end = start + size;
    }
    t->win.addr = h->target_addr;
    t->win.len = end > h->target_addr ? end - h->target_addr : h->geo.write_size;
    c.windows = &t->win;
    c.nwindows = 1;
    c.scratch.addr = h->scratch_addr;
    c.scratch.len = h->scratch_size;
    if (h->layout == OTAUP_LAYOUT_INPLACE) {
        c.running.addr = h->source_addr;
        c.running.len = h->source_size;
    }
    c.staging_size = h->staging_size;
    c.max_ops = h->max_ops;
    wsz = otaup_exec_work_size(c.staging_size, c.max_ops, c.window_bits);
    t->work = calloc(1, wsz ? wsz : 1);
    ck_assert_ptr_nonnull(t->work);
    c.work = t->work;
    c.work_size = wsz;
    return otaup_exec_init(&t->ex, &c);
}

/* One attempt of a booted terminal: start or resume, feed from the
 * restart point, finish. */
static int term_attempt(device *d, terminal *t)
{
    const otaup_delta_header *h = &d->h;
    uint64_t id = 0;
    size_t off;
    int rc, i;
    for (i = 0; i < 8; i++) {
        id |= (uint64_t)h->body_hash[i] << (8 * i);
    }
    rc = otaup_exec_start(&t->ex, 1, id, h->layout == OTAUP_LAYOUT_AB ? 1 : 0);
    if (rc == 2) {
        return 0;
    }
    if (rc >= 0) {
        off = rc == 1 ? restart_offset(d, otaup_exec_next_step(&t->ex)) : d->body_off;
        rc = otaup_exec_feed(&t->ex, d->delta + off, d->delta_len - off);
        if (rc == 0 && otaup_exec_next_step(&t->ex) != h->step_count) {
            rc = OTAUP_E_DELTA_TRUNCATED;
        }
        if (rc == 0) {
            rc = otaup_exec_finish(&t->ex);
        }
    }
    return rc;
}

/* One run of the executor (mount, start or resume, feed, finish). */
static int run(device *d)
{
    terminal t;
    int rc = term_open(d, &t);
    if (rc == 0) {
        rc = term_attempt(d, &t);
    }
    free(t.work);
    return rc;
}

static void check_result(device *d, const uint8_t *nw, size_t new_len)
{
    const uint8_t *img = otaup_simflash_data(d->sim) + (d->h.target_addr - d->h.geo.base);
    ck_assert_msg(memcmp(img, nw, new_len) == 0, "executor result differs from NEW");
}

static uint8_t *make(const uint8_t *a, size_t n, const uint8_t *b, size_t m, const otaup_delta_options *o,
                     size_t *len)
{
    otaup_delta *d = NULL;
    const uint8_t *bytes;
    uint8_t *copy;
    int rc = otaup_delta_create(a, n, NULL, b, m, o, &d);
    ck_assert_msg(rc == 0, "create: %s", otaup_strerror(rc));
    bytes = otaup_delta_bytes(d, len);
    copy = malloc(*len);
    memcpy(copy, bytes, *len);
    otaup_delta_free(d);
    return copy;
}

static void apply_ok(const uint8_t *a, size_t n, const uint8_t *b, size_t m, const otaup_delta_options *o)
{
    size_t len;
    uint8_t *delta = make(a, n, b, m, o, &len);
    device d;
    int rc;
    device_make(&d, delta, len, a, n);
    rc = run(&d);
    ck_assert_msg(rc == 0, "executor: %s (%zu -> %zu bytes, layout %u, write size %u, sector %u, staging %u, "
                  "scratch %u, window 2^%u)", otaup_strerror(rc), n, m, o->layout, o->geo.write_size,
                  o->geo.runs[0].size, d.h.staging_size, d.h.scratch_size, d.h.window_bits);
    check_result(&d, b, m);
    otaup_simflash_free(d.sim);
    free(delta);
}

static void opts(otaup_delta_options *o, uint8_t layout, uint32_t sector, uint32_t ws, uint32_t ram)
{
    otaup_delta_options_init(o, OTAUP_DELTA_OPTIONS_VERSION);
    otaup_geometry_uniform(&o->geo, 0x08000000u, sector, 1024u * 1024u / sector, ws);
    o->layout = layout;
    o->ram = ram;
}

START_TEST(test_shapes)
{
    static uint8_t a[90000], b[100000];
    otaup_delta_options o;
    int l;
    gen_image(a, sizeof a, 21);
    for (l = 0; l < 2; l++) {
        uint8_t lay = l ? OTAUP_LAYOUT_AB : OTAUP_LAYOUT_INPLACE;
        /* identical, one byte, insertion, deletion, swap of halves */
        opts(&o, lay, 4096, 4, 32768);
        apply_ok(a, sizeof a, a, sizeof a, &o);
        memcpy(b, a, sizeof a);
        b[40000] ^= 1;
        apply_ok(a, sizeof a, b, sizeof a, &o);
        memcpy(b, a, 5000);
        memset(b + 5000, 0x42, 777);
        memcpy(b + 5777, a + 5000, sizeof a - 5000);
        apply_ok(a, sizeof a, b, sizeof a + 777, &o);
        apply_ok(b, sizeof a + 777, a, sizeof a, &o);
        memcpy(b, a + 45000, 45000);
        memcpy(b + 45000, a, 45000);
        opts(&o, lay, 1024, 1, 16384);
        o.staging_size = 1024;
        apply_ok(a, sizeof a, b, sizeof a, &o);
        opts(&o, lay, 4096, 32, 40000); /* the journal takes write units up to 32 */
        apply_ok(a, 3001, b, 7777, &o);
        apply_ok(a, 1, b, 0, &o);
        apply_ok(a, 0, b, 1, &o);
    }
}
END_TEST

/* A/B on sectors larger than a small budget's staging buffer: every target
 * sector is written by one step (an A/B delta has no scratch to rebuild a
 * shared sector from), so the planner narrows the window to make room or
 * refuses; what it makes, the executor applies. */
START_TEST(test_ab_large_sectors)
{
    static uint8_t a[200000], b[210000];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    gen_image(a, sizeof a, 33);
    memcpy(b, a, 70000);
    memset(b + 70000, 0x5A, 10000);
    memcpy(b + 80000, a + 70000, sizeof a - 70000);
    /* 64 KiB sectors, 64 KiB of RAM: no room for a 64 KiB staging buffer */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 65536);
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_LIMIT);
    ck_assert_ptr_null(d);
    /* a staging size given that cannot hold a sector: refused too */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 200000);
    o.staging_size = 32768;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_LIMIT);
    /* room once the window is narrowed (80 KiB: 7 KiB state + 64 KiB + 2^13) */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 81920);
    apply_ok(a, sizeof a, b, sizeof b, &o);
    /* a non-uniform map of 16/64/128 KiB sectors */
    opts(&o, OTAUP_LAYOUT_AB, 16384, 4, 200000);
    o.geo.nruns = 3;
    o.geo.runs[0].count = 4;
    o.geo.runs[0].size = 16384;
    o.geo.runs[1].count = 1;
    o.geo.runs[1].size = 65536;
    o.geo.runs[2].count = 7;
    o.geo.runs[2].size = 131072;
    apply_ok(a, sizeof a, b, sizeof b, &o);
    /* in place, the same sectors go through scratch: no such need */
    opts(&o, OTAUP_LAYOUT_INPLACE, 65536, 4, 65536);
    apply_ok(a, sizeof a, b, sizeof b, &o);
}
END_TEST

/* A/B with a scratch area (a terminal that has one, INFO's SCRATCH): a
 * target sector larger than the staging buffer the RAM allows is written
 * by several steps and, after a power cut in a later one, rebuilt through
 * scratch, as in place; the delta names the scratch area only then. */
START_TEST(test_ab_scratch)
{
    static uint8_t a[200000], b[210000];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    const uint32_t base = 0x08000000u;
    size_t len;
    uint8_t *delta;
    otaup_delta_header h;
    uint32_t body;
    gen_image(a, sizeof a, 33);
    memcpy(b, a, 70000);
    memset(b + 70000, 0x5A, 10000);
    memcpy(b + 80000, a + 70000, sizeof a - 70000);
    /* 64 KiB sectors, 64 KiB of RAM (refused without scratch, above), the
     * last sector as scratch */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 65536);
    o.scratch_addr = base + 15u * 65536u;
    o.scratch_size = 65536;
    apply_ok(a, sizeof a, b, sizeof b, &o);
    delta = make(a, sizeof a, b, sizeof b, &o, &len);
    ck_assert_int_eq(otaup_delta_check(delta, len, &h, &body), 0);
    ck_assert_uint_eq(h.scratch_addr, o.scratch_addr);
    ck_assert_uint_eq(h.scratch_size, 65536);
    ck_assert_uint_lt(h.staging_size, 65536);
    free(delta);
    /* a staging size given below the sector: the same */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 200000);
    o.staging_size = 16384;
    o.scratch_addr = base + 15u * 65536u;
    o.scratch_size = 65536;
    apply_ok(a, sizeof a, b, sizeof b, &o);
    /* RAM that holds a sector: no scratch needed, none named */
    opts(&o, OTAUP_LAYOUT_AB, 16384, 4, 65536);
    o.scratch_addr = base + 63u * 16384u;
    o.scratch_size = 16384;
    delta = make(a, sizeof a, b, sizeof b, &o, &len);
    ck_assert_int_eq(otaup_delta_check(delta, len, &h, &body), 0);
    ck_assert_uint_eq(h.scratch_size, 0);
    ck_assert_uint_eq(h.scratch_addr, 0);
    free(delta);
    /* a scratch area smaller than a target sector: refused as without one */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 65536);
    o.geo.nruns = 2;
    o.geo.runs[0].count = 15;
    o.geo.runs[1].count = 4;
    o.geo.runs[1].size = 16384;
    o.scratch_addr = base + 15u * 65536u;
    o.scratch_size = 32768;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_LIMIT);
    ck_assert_ptr_null(d);
    /* a scratch area over the target slot, over the source, or off the flash */
    opts(&o, OTAUP_LAYOUT_AB, 65536, 4, 65536);
    o.target_addr = base + 4u * 65536u;
    o.scratch_addr = base + 5u * 65536u;
    o.scratch_size = 65536;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_REGION);
    o.scratch_addr = base + 65536u;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_REGION);
    o.scratch_addr = base + 16u * 65536u;
    ck_assert_int_lt(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), 0);
    ck_assert_ptr_null(d);
}
END_TEST

/* A/B through scratch: a cut after every flash operation (torn every
 * other one), the target slot holding other bytes at first, a second cut
 * during every third recovery; every run ends with NEW in the target and
 * OLD untouched. */
START_TEST(test_ab_scratch_power_cuts)
{
    static uint8_t a[40000], b[42000], junk[49152];
    otaup_delta_options o;
    uint8_t *delta;
    size_t len;
    uint64_t cut, total_ops;
    otaup_simflash_stats st;
    const otaup_exec_stats *es;
    unsigned rebuilds = 0;
    device d;
    size_t k;
    gen_image(a, sizeof a, 51);
    memcpy(b, a, 9000);
    memset(b + 9000, 0xC3, 2000);
    memcpy(b + 11000, a + 9000, sizeof a - 9000);
    for (k = 0; k < 30; k++) {
        b[k * 1399u + 5u] ^= 0x3Cu;
    }
    gen_image(junk, sizeof junk, 52);
    opts(&o, OTAUP_LAYOUT_AB, 16384, 4, 65536);
    o.staging_size = 4096;
    o.restart_interval = 3000;
    o.target_addr = 0x08000000u + 3u * 16384u;
    o.scratch_addr = 0x08000000u + 6u * 16384u;
    o.scratch_size = 16384;
    delta = make(a, sizeof a, b, sizeof b, &o, &len);
    device_make(&d, delta, len, a, sizeof a);
    ck_assert_uint_eq(d.h.scratch_size, 16384);
    ck_assert_int_eq(otaup_simflash_load(d.sim, o.target_addr, junk, sizeof junk), 0);
    ck_assert_int_eq(run(&d), 0);
    check_result(&d, b, sizeof b);
    otaup_simflash_stats_get(d.sim, &st);
    total_ops = st.ops;
    otaup_simflash_free(d.sim);
    ck_assert_uint_gt(total_ops, 20);
    for (cut = 1; cut < total_ops; cut++) {
        terminal t;
        int rc, tries = 0;
        device_make(&d, delta, len, a, sizeof a);
        ck_assert_int_eq(otaup_simflash_load(d.sim, o.target_addr, junk, sizeof junk), 0);
        otaup_simflash_cut_after(d.sim, cut, (int)(cut & 1u));
        rc = run(&d);
        ck_assert_int_ne(rc, 0);
        otaup_simflash_power_on(d.sim);
        if (cut % 3u == 0) {
            otaup_simflash_cut_after(d.sim, 1u + cut % 23u, 1);
            (void)run(&d);
            otaup_simflash_power_on(d.sim);
        }
        otaup_simflash_cut_after(d.sim, 0, 0);
        do {
            rc = term_open(&d, &t);
            if (rc == 0) {
                rc = term_attempt(&d, &t);
                es = otaup_exec_get_stats(&t.ex);
                rebuilds += es->sector_rebuilds;
            }
            free(t.work);
        } while (rc != 0 && ++tries < 2);
        ck_assert_msg(rc == 0, "cut %llu: resume failed: %s", (unsigned long long)cut, otaup_strerror(rc));
        check_result(&d, b, sizeof b);
        ck_assert_mem_eq(otaup_simflash_data(d.sim), a, sizeof a);
        otaup_simflash_free(d.sim);
    }
    ck_assert_uint_gt(rebuilds, 0); /* the scratch area was needed */
    printf("A/B through scratch: %llu cut points, %u sector rebuilds on resume\n", (unsigned long long)total_ops - 1u,
           rebuilds);
    free(delta);
}
END_TEST

/* In place on sectors larger than the staging buffer followed by smaller
 * ones (an STM32F4-like bank: the slot in 128 KiB sectors, then 16 KiB
 * sectors): several steps write one big sector, and after a power cut in a
 * later one only a rebuild through scratch recovers it, so the executor
 * needs a scratch area that holds a whole big sector. The planner's
 * default scratch area grows to it (a scratch of the staging size was too
 * small: the executor refused the second step, after the first had
 * written); a given scratch area that cannot hold it is refused up front. */
START_TEST(test_inplace_shared_sectors)
{
    static uint8_t a[200000], b[200000];
    otaup_delta_options o;
    otaup_delta *d = NULL;
    int k;
    gen_image(a, sizeof a, 41);
    memcpy(b, a, sizeof a);
    for (k = 0; k < 40; k++) {
        b[(size_t)k * 4999u + 17u] ^= 0x5Au;
    }
    opts(&o, OTAUP_LAYOUT_INPLACE, 16384, 4, 65536);
    o.geo.nruns = 2;
    o.geo.runs[0].count = 2;
    o.geo.runs[0].size = 131072;
    o.geo.runs[1].count = 8;
    o.geo.runs[1].size = 16384;
    apply_ok(a, sizeof a, b, sizeof b, &o);
    /* only 7 small sectors after the slot: no room for 128 KiB of scratch */
    o.geo.runs[1].count = 7;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_SCRATCH);
    ck_assert_ptr_null(d);
    /* a given scratch area of 32 KiB: refused too */
    o.geo.runs[1].count = 8;
    o.scratch_addr = 0x08000000u + 2u * 131072u;
    o.scratch_size = 32768;
    ck_assert_int_eq(otaup_delta_create(a, sizeof a, NULL, b, sizeof b, &o, &d), OTAUP_E_SCRATCH);
    /* a staging buffer that holds a whole big sector needs no such scratch */
    o.scratch_addr = 0;
    o.scratch_size = 0;
    o.geo.runs[1].count = 7;
    o.ram = 300000;
    o.staging_size = 131072;
    apply_ok(a, sizeof a, b, sizeof b, &o);
}
END_TEST

START_TEST(test_random_pairs)
{
    static uint8_t a[60000], b[90000];
    const char *env = getenv("OTAUP_DELTA_EXEC_CASES");
    long cases = env != NULL ? strtol(env, NULL, 10) : 40, c;
    for (c = 0; c < cases; c++) {
        otaup_delta_options o;
        size_t n, m, k;
        static const uint32_t sectors[] = { 512, 1024, 4096 };
        static const uint32_t wsz[] = { 1, 4, 8 };
        rng_state = (uint32_t)c * 977u + 5u;
        n = 1 + rnd() % (sizeof a - 1);
        gen_image(a, n, (uint32_t)c + 77u);
        rng_state = (uint32_t)c * 31u + 9u;
        m = n;
        memcpy(b, a, n);
        for (k = 0; k < 6; k++) { /* moves, overwrites, inserts */
            size_t pos = rnd() % m, cnt = 1 + rnd() % 4000, to = rnd() % m;
            if (rnd() & 1u) {
                if (cnt > m - pos) cnt = m - pos;
                if (cnt > m - to) cnt = m - to;
                memmove(b + to, b + pos, cnt);
            } else if (m + cnt <= sizeof b) {
                memmove(b + pos + cnt, b + pos, m - pos);
                memset(b + pos, (int)(rnd() & 0xFF), cnt);
                m += cnt;
            }
        }
        opts(&o, (rnd() & 1u) ? OTAUP_LAYOUT_AB : OTAUP_LAYOUT_INPLACE, sectors[rnd() % 3], wsz[rnd() % 3],
             16384u + rnd() % 50000u);
        o.restart_interval = (rnd() & 1u) ? 1 : 0;
        apply_ok(a, n, b, m, &o);
    }
}
END_TEST

/* In place with cycles: cut power after every flash operation (torn), resume, finish. */
START_TEST(test_power_cuts)
{
    static uint8_t a[24576], b[24576];
    otaup_delta_options o;
    uint8_t *delta;
    size_t len;
    uint64_t cut, total_ops = 0;
    otaup_simflash_stats st;
    device d;
    gen_image(a, sizeof a, 33);
    memcpy(b, a + 12288, 12288); /* swap halves: cycles */
    memcpy(b + 12288, a, 12288);
    b[100] ^= 0x77;
    opts(&o, OTAUP_LAYOUT_INPLACE, 2048, 4, 16384);
    o.staging_size = 4096;
    o.restart_interval = 2000;
    delta = make(a, sizeof a, b, sizeof b, &o, &len);
    device_make(&d, delta, len, a, sizeof a);
    ck_assert_int_eq(run(&d), 0);
    check_result(&d, b, sizeof b);
    otaup_simflash_stats_get(d.sim, &st);
    total_ops = st.ops;
    otaup_simflash_free(d.sim);
    ck_assert_uint_gt(total_ops, 10);
    for (cut = 1; cut < total_ops; cut++) {
        int rc, tries = 0;
        device_make(&d, delta, len, a, sizeof a);
        otaup_simflash_cut_after(d.sim, cut, (int)(cut & 1u));
        rc = run(&d);
        ck_assert_int_ne(rc, 0); /* the cut stopped it */
        otaup_simflash_power_on(d.sim);
        otaup_simflash_cut_after(d.sim, 0, 0);
        do {
            rc = run(&d);
        } while (rc != 0 && ++tries < 2);
        ck_assert_msg(rc == 0, "cut %llu: resume failed: %s", (unsigned long long)cut, otaup_strerror(rc));
        check_result(&d, b, sizeof b);
        otaup_simflash_free(d.sim);
    }
    free(delta);
}
END_TEST

/* What a reboot now would find: the session ended well. */
static void check_journal_ended(device *d, const char *what, unsigned long long k)
{
    otaup_journal j2;
    ck_assert_int_eq(otaup_journal_mount(&j2, otaup_simflash_flash(d->sim), d->journal_addr, 2u * JOURNAL_SECTOR),
                     0);
    ck_assert_msg(j2.st.session == OTAUP_JS_ENDED && j2.st.result == 0,
                  "%s %llu: the journal on flash says session %u result %d", what, k, j2.st.session,
                  (int)j2.st.result);
}

/* A flash operation that fails without a reset (a program or erase the
 * driver reports as failed, done in part or not at all): the terminal
 * keeps running, the same executor starts again from the journal as it
 * stands in RAM, and the update still ends with NEW byte for byte. Every
 * operation fails once, torn or not, in three plans: in place with
 * cycles (halves swapped), in place with many small steps (the journal
 * fills and is compacted), and A/B. */
static void flash_errors_case(const uint8_t *a, size_t n, const uint8_t *b, size_t m, const otaup_delta_options *o,
                              int unused, uint64_t unused_stride)
{
    uint8_t *delta;
    size_t len;
    uint64_t k, total_ops;
    otaup_simflash_stats st;
    device d;
    (void)unused;
    (void)unused_stride;
    delta = make(a, n, b, m, o, &len);
    device_make(&d, delta, len, a, n);
    ck_assert_int_eq(run(&d), 0);
    otaup_simflash_stats_get(d.sim, &st);
    total_ops = st.ops;
    otaup_simflash_free(d.sim);
    ck_assert_uint_gt(total_ops, 20);

    for (k = 1; k < total_ops; k++) {
        terminal t;
        int rc, tries = 0;
        device_make(&d, delta, len, a, n);
        ck_assert_int_eq(term_open(&d, &t), 0);
        otaup_simflash_fail_after(d.sim, k, (int)(k & 1u));
        rc = term_attempt(&d, &t);
        ck_assert_msg(rc == OTAUP_E_FLASH_PROG || rc == OTAUP_E_FLASH_ERASE, "operation %llu: %s",
                      (unsigned long long)k, otaup_strerror(rc));
        /* the failure was transient: the next operations work */
        do {
            rc = term_attempt(&d, &t);
        } while (rc != 0 && ++tries < 3);
        ck_assert_msg(rc == 0, "layout %u, operation %llu of %llu failed%s: retry without reset: %s", o->layout,
                      (unsigned long long)k, (unsigned long long)total_ops, (k & 1u) ? " torn" : "",
                      otaup_strerror(rc));
        check_result(&d, b, m);
        check_journal_ended(&d, "failed operation", (unsigned long long)k);
        free(t.work);
        otaup_simflash_free(d.sim);
    }
    free(delta);
}

/* One faulty read, power on (a read the driver reports failed, or one
 * that returns a wrong bit), at the reads of a run: mounting the
 * journal, reading the source, the scratch copy, verifying. The run is the
 * first one, or (cut > 0) the resume after a power cut after `cut` flash
 * operations, whose mount finds records. A failed read stops the run with
 * OTAUP_E_FLASH_READ; a wrong bit is caught by a hash or goes unseen where
 * it cannot matter. Either way the terminal opens again (a new executor,
 * the journal as flash has it) and the update ends with NEW byte for
 * byte: never a wrong image reported as done. */
static void read_faults_run(const uint8_t *delta, size_t len, const uint8_t *a, size_t n, const uint8_t *b, size_t m,
                            int kind, uint64_t cut, uint64_t stride, uint64_t first)
{
    uint64_t k, total_reads = 0;
    otaup_simflash_stats st;
    device d;
    for (k = 0; k <= total_reads; k = k == 0 ? first : k + stride) {
        int rc, tries = 0;
        device_make(&d, delta, len, a, n);
        if (cut > 0) {
            otaup_simflash_cut_after(d.sim, cut, 0);
            ck_assert_int_ne(run(&d), 0);
            otaup_simflash_power_on(d.sim);
        }
        otaup_simflash_stats_reset(d.sim);
        otaup_simflash_read_fault(d.sim, k, kind); /* k = 0: the run without a fault, to count its reads */
        rc = run(&d);
        if (k == 0) {
            ck_assert_int_eq(rc, 0);
            otaup_simflash_stats_get(d.sim, &st);
            total_reads = st.read_ops;
            ck_assert_uint_gt(total_reads, 10);
        }
        if (k > 0 && kind == OTAUP_SIMFLASH_RFAULT_FAIL) {
            ck_assert_msg(rc == OTAUP_E_FLASH_READ, "layout %u, cut %llu, read %llu of %llu failed, the run says: %s",
                          d.h.layout, (unsigned long long)cut, (unsigned long long)k,
                          (unsigned long long)total_reads, otaup_strerror(rc));
        }
        if (rc == 0) {
            /* done at the first try: then it must really be done */
            check_result(&d, b, m);
        }
        while (rc != 0 && ++tries < 3) {
            rc = run(&d);
        }
        ck_assert_msg(rc == 0, "layout %u, cut %llu, read %llu of %llu %s: the next runs: %s", d.h.layout,
                      (unsigned long long)cut, (unsigned long long)k, (unsigned long long)total_reads,
                      kind == OTAUP_SIMFLASH_RFAULT_FAIL ? "failed" : "flipped a bit", otaup_strerror(rc));
        check_result(&d, b, m);
        check_journal_ended(&d, "read", (unsigned long long)k);
        otaup_simflash_free(d.sim);
    }
}

/* The first run, and resumes after cuts at a third and two thirds; every
 * read, or (OTAUP_EXHAUSTIVE unset) every `stride`-th read from a first
 * one that moves with the run. */
static void read_faults_case(const uint8_t *a, size_t n, const uint8_t *b, size_t m, const otaup_delta_options *o,
                             int kind, uint64_t stride)
{
    const char *e = getenv("OTAUP_EXHAUSTIVE");
    uint8_t *delta;
    size_t len;
    otaup_simflash_stats st;
    device d;
    delta = make(a, n, b, m, o, &len);
    device_make(&d, delta, len, a, n);
    ck_assert_int_eq(run(&d), 0);
    otaup_simflash_stats_get(d.sim, &st);
    otaup_simflash_free(d.sim);
    ck_assert_uint_gt(st.ops, 6);
    if (e != NULL && e[0] != '\0' && e[0] != '0') {
        stride = 1;
    }
    read_faults_run(delta, len, a, n, b, m, kind, 0, stride, 1);
    read_faults_run(delta, len, a, n, b, m, kind, st.ops / 3u, stride, 1 + 1 % stride);
    read_faults_run(delta, len, a, n, b, m, kind, 2u * st.ops / 3u, stride, 1 + 2 % stride);
    free(delta);
}

typedef void (*plan_case)(const uint8_t *a, size_t n, const uint8_t *b, size_t m, const otaup_delta_options *o,
                          int kind, uint64_t stride);

/* Three plans: in place with cycles (halves swapped), in place with many
 * small steps (the journal fills and is compacted; `stride` for the
 * faulty-read sweep, whose runs are many), and A/B. */
static void three_plans(plan_case fn, int kind)
{
    static uint8_t a[65536], b[65536];
    otaup_delta_options o;
    size_t i;
    gen_image(a, 24576, 34);
    memcpy(b, a + 12288, 12288);
    memcpy(b + 12288, a, 12288);
    b[200] ^= 0x55;
    opts(&o, OTAUP_LAYOUT_INPLACE, 2048, 4, 16384);
    o.staging_size = 4096;
    o.restart_interval = 2000;
    fn(a, 24576, b, 24576, &o, kind, 1);
    /* many steps of one 1 KiB sector each: journal compaction */
    gen_image(a, sizeof a, 35);
    memcpy(b, a, sizeof a);
    for (i = 300; i < sizeof b; i += 1024) {
        b[i] ^= 0xA5;
    }
    opts(&o, OTAUP_LAYOUT_INPLACE, 1024, 1, 16384);
    o.staging_size = 1024;
    o.restart_interval = 1;
    fn(a, sizeof a, b, sizeof b, &o, kind, 5);
    opts(&o, OTAUP_LAYOUT_AB, 4096, 8, 16384);
    fn(a, 32768, b, 32768, &o, kind, 1);
}

START_TEST(test_flash_errors_without_reset)
{
    three_plans(flash_errors_case, 0);
}
END_TEST

START_TEST(test_read_errors)
{
    three_plans(read_faults_case, OTAUP_SIMFLASH_RFAULT_FAIL);
}
END_TEST

START_TEST(test_read_bit_flips)
{
    three_plans(read_faults_case, OTAUP_SIMFLASH_RFAULT_FLIP);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("delta_exec");
    TCase *tc = tcase_create("executor");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_shapes);
    tcase_add_test(tc, test_ab_large_sectors);
    tcase_add_test(tc, test_ab_scratch);
    tcase_add_test(tc, test_ab_scratch_power_cuts);
    tcase_add_test(tc, test_inplace_shared_sectors);
    tcase_add_test(tc, test_random_pairs);
    tcase_add_test(tc, test_power_cuts);
    tcase_add_test(tc, test_flash_errors_without_reset);
    tcase_add_test(tc, test_read_errors);
    tcase_add_test(tc, test_read_bit_flips);
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
