/*
 * Executor: applies record streams (compressed or not, deferred bytes,
 * continuation steps, A/B), survives a power cut after every single flash
 * operation (plain and torn, plus a second cut during recovery), and
 * refuses hostile records with flash untouched (simflash operation log).
 *
 * OTAUP_EXHAUSTIVE=1 widens the power-cut sweep to larger pairs and more
 * layouts; the default still cuts at every operation of a small in-place
 * pair with a 3-sector cycle and a self-overlapping move.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"
#include "util/testplan.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

static int exhaustive(void)
{
    const char *e = getenv("OTAUP_EXHAUSTIVE");
    return e != NULL && *e != '\0' && *e != '0';
}

/* A world: geometry, layout, old and new images. */
typedef struct world {
    otaup_geometry geo;
    th_layout L;
    uint32_t img_len;
    uint8_t *old_flash; /* whole device before the update */
    uint8_t *new_img;
    uint8_t *user;      /* user-data content */
    tp_stream s;
} world;

static void world_free(world *w)
{
    free(w->old_flash);
    free(w->new_img);
    free(w->user);
    tp_stream_free(&w->s);
}

/* 4 KiB sectors: slot of `nsec` sectors at 0, scratch, journal, user data. */
static void world_uniform(world *w, uint32_t nsec, uint8_t layout, uint64_t seed, int compress)
{
    uint32_t S = 4096, size, slot_len = nsec * S, at;
    tp_opts o;
    memset(w, 0, sizeof *w);
    otaup_geometry_uniform(&w->geo, 0x08000000u, S, 2 * nsec + 8, 8);
    size = otaup_geometry_size(&w->geo);
    w->L.layout = layout;
    w->L.slot[0].addr = 0x08000000u;
    w->L.slot[0].len = slot_len;
    at = 0x08000000u + slot_len;
    if (layout == OTAUP_LAYOUT_AB) {
        w->L.slot[1].addr = at;
        w->L.slot[1].len = slot_len;
        at += slot_len;
    }
    w->L.scratch.addr = at;
    w->L.scratch.len = S;
    at += S;
    w->L.journal.addr = at;
    w->L.journal.len = 2 * S;
    at += 2 * S;
    w->L.user.addr = at;
    w->L.user.len = S;
    w->L.staging = S;
    w->L.max_ops = 64;
    w->L.wbits = compress ? 12 : 0;
    w->img_len = slot_len - 1000; /* last sector has an erased tail */
    w->old_flash = malloc(size);
    memset(w->old_flash, 0xFF, size);
    tp_make_image(w->old_flash, w->img_len, seed);
    w->user = malloc(S);
    tp_fill_random(w->user, S, seed + 7);
    memcpy(w->old_flash + (w->L.user.addr - 0x08000000u), w->user, S);
    w->new_img = malloc(slot_len);
    tp_make_new(w->old_flash, w->new_img, w->img_len, S, seed + 1);
    tp_opts_default(&o, &w->geo, w->L.slot[layout == OTAUP_LAYOUT_AB ? 1 : 0].addr, 0x08000000u, w->img_len, S);
    o.compress = compress;
    o.wbits = 12;
    ck_assert_int_eq(tp_plan(&o, w->old_flash, w->new_img, &w->s), 0);
}

/* Non-uniform: 4 x 4 KiB then 4 x 16 KiB sectors; staging 4 KiB so the
 * 16 KiB sectors are written by four steps each (continuation steps);
 * scratch is a 16 KiB sector. */
static void world_mixed(world *w, uint64_t seed)
{
    uint32_t size, at;
    tp_opts o;
    memset(w, 0, sizeof *w);
    w->geo.base = 0;
    w->geo.write_size = 4;
    w->geo.erased = 0xFF;
    w->geo.nruns = 3;
    w->geo.runs[0].count = 4;
    w->geo.runs[0].size = 4096;
    w->geo.runs[1].count = 4;
    w->geo.runs[1].size = 16384;
    w->geo.runs[2].count = 4;
    w->geo.runs[2].size = 4096;
    size = otaup_geometry_size(&w->geo);
    w->L.layout = OTAUP_LAYOUT_INPLACE;
    w->L.slot[0].addr = 0;
    w->L.slot[0].len = 16384 + 3 * 16384;      /* 4x4K + 3x16K */
    w->L.scratch.addr = 16384 + 3 * 16384;     /* the 4th 16K sector */
    w->L.scratch.len = 16384;
    at = 16384 + 4 * 16384;
    w->L.journal.addr = at;
    w->L.journal.len = 2 * 4096;
    w->L.user.addr = at + 2 * 4096;
    w->L.user.len = 4096;
    w->L.staging = 4096;
    w->L.max_ops = 64;
    w->L.wbits = 12;
    w->img_len = w->L.slot[0].len - 5000;
    w->old_flash = malloc(size);
    memset(w->old_flash, 0xFF, size);
    tp_make_image(w->old_flash, w->img_len, seed);
    w->user = malloc(4096);
    tp_fill_random(w->user, 4096, seed + 7);
    memcpy(w->old_flash + w->L.user.addr, w->user, 4096);
    w->new_img = malloc(w->L.slot[0].len);
    tp_make_new(w->old_flash, w->new_img, w->img_len, 4096, seed + 1);
    tp_opts_default(&o, &w->geo, 0, 0, w->img_len, 4096);
    o.sync_every = 2;
    ck_assert_int_eq(tp_plan(&o, w->old_flash, w->new_img, &w->s), 0);
}

static otaup_simflash *world_flash(const world *w, int log)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    o.geo = w->geo;
    o.log_ops = log;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    ck_assert_int_eq(otaup_simflash_load(s, w->geo.base, w->old_flash, otaup_geometry_size(&w->geo)), 0);
    return s;
}

static const uint8_t *at(otaup_simflash *s, const world *w, uint32_t addr)
{
    return otaup_simflash_data(s) + (addr - w->geo.base);
}

/* the device holds the new image (target slot), user data intact,
 * and for A/B the old slot untouched and the new slot booting */
static void check_new(otaup_simflash *s, const world *w)
{
    uint8_t tgt = w->L.layout == OTAUP_LAYOUT_AB ? 1 : 0;
    const uint8_t *slot = at(s, w, w->L.slot[tgt].addr);
    uint32_t i;
    ck_assert_mem_eq(slot, w->new_img, w->img_len);
    for (i = w->img_len; i < w->L.slot[tgt].len; i++) {
        ck_assert_uint_eq(slot[i], 0xFF);
    }
    ck_assert_mem_eq(at(s, w, w->L.user.addr), w->user, w->L.user.len);
    if (tgt == 1) {
        ck_assert_mem_eq(at(s, w, w->L.slot[0].addr), w->old_flash, w->L.slot[0].len);
        ck_assert_int_eq(otaup_journal_boot_slot(otaup_simflash_flash(s), w->L.journal.addr, w->L.journal.len), 1);
    }
}

/* at a cut: before the point of no return the old image is complete */
static void check_cut_state(otaup_simflash *s, const world *w)
{
    otaup_journal j;
    otaup_simflash_power_on(s);
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), w->L.journal.addr, w->L.journal.len), 0);
    if (w->L.layout == OTAUP_LAYOUT_INPLACE) {
        if (!j.st.ponr) {
            ck_assert_mem_eq(at(s, w, w->L.slot[0].addr), w->old_flash, w->L.slot[0].len);
        }
    } else {
        /* A/B: the old slot is untouched; the new one boots only when complete */
        ck_assert_mem_eq(at(s, w, w->L.slot[0].addr), w->old_flash, w->L.slot[0].len);
        if (j.st.boot_slot == 1) {
            ck_assert_mem_eq(at(s, w, w->L.slot[1].addr), w->new_img, w->img_len);
        }
    }
    ck_assert_mem_eq(at(s, w, w->L.user.addr), w->user, w->L.user.len);
}

static void apply_ok(const world *w, size_t chunk)
{
    otaup_simflash *s = world_flash(w, 0);
    th_result r;
    ck_assert_int_eq(th_apply(s, &w->L, &w->s, chunk, 42, NULL, &r), 0);
    ck_assert_uint_eq(r.stats.steps_done, w->s.nsteps);
    check_new(s, w);
    /* a second run finds the update complete and changes nothing */
    {
        otaup_simflash_stats a, b;
        otaup_simflash_stats_get(s, &a);
        ck_assert_int_eq(th_apply(s, &w->L, &w->s, chunk, 42, NULL, &r), 0);
        otaup_simflash_stats_get(s, &b);
        ck_assert_uint_eq(a.ops, b.ops);
    }
    otaup_simflash_free(s);
}

START_TEST(test_apply_inplace)
{
    world w;
    world_uniform(&w, 8, OTAUP_LAYOUT_INPLACE, 1, 1);
    apply_ok(&w, 4096);
    apply_ok(&w, 1);
    apply_ok(&w, 37);
    world_free(&w);
    world_uniform(&w, 8, OTAUP_LAYOUT_INPLACE, 2, 0);
    apply_ok(&w, 100);
    world_free(&w);
}
END_TEST

START_TEST(test_apply_scratch_used)
{
    world w;
    otaup_simflash *s;
    th_result r;
    world_uniform(&w, 8, OTAUP_LAYOUT_INPLACE, 3, 1);
    s = world_flash(&w, 0);
    ck_assert_int_eq(th_apply(s, &w.L, &w.s, 512, 42, NULL, &r), 0);
    /* the self-overlapping move and same-place COPY/DIFF need scratch */
    ck_assert(r.stats.scratch_windows > 0);
    check_new(s, &w);
    otaup_simflash_free(s);
    world_free(&w);
}
END_TEST

START_TEST(test_apply_ab)
{
    world w;
    world_uniform(&w, 6, OTAUP_LAYOUT_AB, 4, 1);
    apply_ok(&w, 999);
    world_free(&w);
}
END_TEST

START_TEST(test_apply_mixed)
{
    world w;
    world_mixed(&w, 5);
    apply_ok(&w, 333);
    world_free(&w);
}
END_TEST

/* One run of a raw (uncompressed) record stream on `s`: 4 KiB sectors,
 * window [0, 32K), scratch the 4 KiB sector at 16K, journal at 24K. */
static int raw_run(otaup_simflash *s, const uint8_t *stream, size_t n)
{
    static uint8_t work[16384];
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win = { 0, 16384 };
    int rc = otaup_journal_mount(&j, otaup_simflash_flash(s), 24576, 8192);
    if (rc != 0) {
        return rc;
    }
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(s);
    c.journal = &j;
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.windows = &win;
    c.nwindows = 1;
    c.scratch.addr = 16384;
    c.scratch.len = 4096;
    c.running = win;
    c.work = work;
    c.work_size = sizeof work;
    c.staging_size = 4096;
    c.max_ops = 4;
    rc = otaup_exec_init(&ex, &c);
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, 0x5EED, 0);
    }
    if (rc == 2) {
        return 0;
    }
    if (rc >= 0) {
        rc = otaup_exec_feed(&ex, stream, n);
    }
    if (rc == 0) {
        rc = otaup_exec_finish(&ex);
    }
    return rc;
}

/* Append the encoding of `r` to stream[n..cap); returns the new length. */
static size_t put_record(uint8_t *stream, size_t n, size_t cap, const otaup_record *r)
{
    int rc = otaup_record_encode(r, stream + n, cap - n);
    ck_assert_int_gt(rc, 0);
    return n + (size_t)rc;
}

/* A step whose window straddles two sectors that both keep data outside
 * it needs two rebuilds through the one scratch area; the second
 * overwrites the first's image while the journal still names it, so a
 * cut there left the step unrecoverable (OTAUP_E_JOURNAL on every later
 * run). The executor refuses such a step before touching flash. */
START_TEST(test_two_rebuilds_refused)
{
    static uint8_t stream[8192], flash0[32768], neu[4096];
    otaup_record r;
    otaup_simflash_options o;
    otaup_simflash *s;
    size_t n = 0;
    uint64_t h;
    int i, rc;
    for (i = 0; i < 4096; i++) {
        neu[i] = (uint8_t)(i * 7 + 3);
    }
    memset(flash0, 0xFF, sizeof flash0);
    tp_fill_random(flash0, 8192, 77); /* sectors 0 and 1 hold data */
    h = XXH3_64bits(neu, sizeof neu);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.index = 0;
    r.addr = 2048;
    r.len = 4096;
    r.flags = OTAUP_STEP_HASH;
    r.hash_len = 8;
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h >> (8 * i));
    }
    n = put_record(stream, n, sizeof stream, &r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_WRITE;
    r.addr = 2048;
    r.len = 4096;
    r.enc = OTAUP_ENC_INLINE;
    r.data = neu;
    r.data_len = 4096;
    n = put_record(stream, n, sizeof stream, &r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    r.index = 0;
    n = put_record(stream, n, sizeof stream, &r);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, 4096, 8, 4);
    o.log_ops = 0;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    ck_assert_int_eq(otaup_simflash_load(s, 0, flash0, sizeof flash0), 0);
    rc = raw_run(s, stream, n);
    ck_assert_int_eq(rc, OTAUP_E_SCRATCH);
    /* refused before any change of the slot (the journal has its session) */
    ck_assert_mem_eq(otaup_simflash_data(s), flash0, 16384);
    otaup_simflash_free(s);
}
END_TEST

/* Cut after every flash operation (plain, torn), check the state at the
 * cut, optionally cut again during recovery, then finish and check. */
static long cut_sweep(const world *w, uint64_t stride, int second)
{
    otaup_simflash_stats st;
    uint64_t total, n;
    int torn;
    long cases = 0;
    {
        otaup_simflash *s = world_flash(w, 0);
        ck_assert_int_eq(th_apply(s, &w->L, &w->s, 256, 9, NULL, NULL), 0);
        otaup_simflash_stats_get(s, &st);
        total = st.ops;
        otaup_simflash_free(s);
    }
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1; n <= total; n += stride) {
            otaup_simflash *s = world_flash(w, 0);
            int rc;
            otaup_simflash_cut_after(s, n, torn);
            rc = th_apply(s, &w->L, &w->s, 256, 9, NULL, NULL);
            if (rc == 0) {
                /* the cut fell on the last operation */
                otaup_simflash_power_on(s);
            } else {
                ck_assert_msg(rc == OTAUP_E_POWER_CUT, "cut %llu torn %d: rc %d (%s)", (unsigned long long)n,
                              torn, rc, otaup_errname(rc));
                check_cut_state(s, w);
                if (second) {
                    /* a second cut while recovering */
                    otaup_simflash_cut_after(s, 1 + (n * 7) % 13, (int)(n & 1));
                    rc = th_apply(s, &w->L, &w->s, 256, 9, NULL, NULL);
                    ck_assert(rc == 0 || rc == OTAUP_E_POWER_CUT);
                    if (rc != 0) {
                        check_cut_state(s, w);
                    }
                    otaup_simflash_power_on(s);
                }
                rc = th_apply(s, &w->L, &w->s, 256, 9, NULL, NULL);
                ck_assert_msg(rc == 0, "resume after cut %llu torn %d: rc %d (%s)", (unsigned long long)n, torn,
                              rc, otaup_errname(rc));
            }
            check_new(s, w);
            cases++;
            otaup_simflash_free(s);
        }
    }
    return cases;
}

START_TEST(test_cut_every_op_inplace)
{
    world w;
    long cases;
    /* 5 sectors: a 3-cycle, a self-overlapping move, patches, a new tail */
    world_uniform(&w, 5, OTAUP_LAYOUT_INPLACE, 11, 1);
    cases = cut_sweep(&w, 1, 1);
    if (exhaustive()) {
        cases += cut_sweep(&w, 1, 0);
    }
    fprintf(stderr, "power-cut: in-place 5x4K: %ld cut cases (every op, plain+torn, second cut while recovering)\n",
            cases);
    ck_assert(cases > 60);
    world_free(&w);
}
END_TEST

START_TEST(test_cut_every_op_mixed)
{
    world w;
    long cases;
    world_mixed(&w, 12);
    cases = cut_sweep(&w, exhaustive() ? 1 : 5, 1);
    fprintf(stderr, "power-cut: in-place mixed 4K/16K sectors: %ld cut cases\n", cases);
    world_free(&w);
}
END_TEST

START_TEST(test_cut_every_op_ab)
{
    world w;
    long cases;
    world_uniform(&w, 4, OTAUP_LAYOUT_AB, 13, 1);
    cases = cut_sweep(&w, exhaustive() ? 1 : 3, 1);
    fprintf(stderr, "power-cut: A/B 4x4K: %ld cut cases\n", cases);
    world_free(&w);
}
END_TEST

START_TEST(test_cut_exhaustive_more)
{
    uint64_t seed;
    long cases = 0;
    if (!exhaustive()) {
        return;
    }
    for (seed = 20; seed < 24; seed++) {
        world w;
        world_uniform(&w, 12, OTAUP_LAYOUT_INPLACE, seed, seed & 1);
        cases += cut_sweep(&w, 1, 1);
        world_free(&w);
        world_uniform(&w, 8, OTAUP_LAYOUT_AB, seed, 1);
        cases += cut_sweep(&w, 1, 1);
        world_free(&w);
    }
    fprintf(stderr, "power-cut: exhaustive extra pairs: %ld cut cases\n", cases);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("apply");
    TCase *tcut = tcase_create("powercut");
    tcase_add_test(tc, test_apply_inplace);
    tcase_add_test(tc, test_apply_scratch_used);
    tcase_add_test(tc, test_apply_ab);
    tcase_add_test(tc, test_apply_mixed);
    tcase_add_test(tc, test_two_rebuilds_refused);
    suite_add_tcase(s, tc);
    tcase_set_timeout(tcut, 600);
    tcase_add_test(tcut, test_cut_every_op_inplace);
    tcase_add_test(tcut, test_cut_every_op_mixed);
    tcase_add_test(tcut, test_cut_every_op_ab);
    tcase_add_test(tcut, test_cut_exhaustive_more);
    suite_add_tcase(s, tcut);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
