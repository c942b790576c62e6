/*
 * Executor: a step whose sector needs only erased units programmed (no
 * erase) while a COPY of the same step reads some of those units (erased
 * bytes the new image moves elsewhere). A cut while they are programmed,
 * or after, must not leave a step that cannot be redone: the staged
 * window has to come from scratch, since its sources are no longer the
 * old bytes. Cut plain and torn after every flash operation, then resumed
 * (and cut again once during the resume) until done: the window ends as
 * the step wants it.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define BASE 0x10000000u
#define S 4096u
/* slot: sectors 0..3, scratch 4, journal 5..6 */
#define SCRATCH (BASE + 4 * S)
#define JOURNAL (BASE + 5 * S)
#define W0 100u /* the window: [BASE + W0, BASE + S); before it erased */

static otaup_simflash *sim;
static otaup_journal jrn;
static otaup_exec ex;
static uint8_t work[OTAUP_EXEC_WORK_SIZE(S, 16, 0)];
static uint8_t stream[4096], want[S - W0];
static size_t stream_len;

static uint8_t pat(uint32_t i)
{
    return (uint8_t)(0x40u + (i * 7u) % 13u);
}

static void put(const otaup_record *r)
{
    int n = otaup_record_encode(r, stream + stream_len, sizeof stream - stream_len);
    ck_assert_int_gt(n, 0);
    stream_len += (size_t)n;
}

static void rec(uint8_t type, uint32_t addr, uint32_t src, uint32_t len, uint8_t value)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.addr = addr;
    r.src = src;
    r.len = len;
    r.value = value;
    put(&r);
}

/* old window: [W0, 1100) pattern, the rest erased. New: [W0, 1100) the
 * same (copied in place), [1100, 2100) 0x33 (programmed into erased
 * units), [2100, 3100) a copy of the old [1100, 2100) (erased bytes), the
 * rest erased */
static void make_stream(void)
{
    otaup_record r;
    uint64_t h;
    uint32_t i;
    for (i = 0; i < sizeof want; i++) {
        uint32_t a = W0 + i;
        want[i] = a < 1100u ? pat(a) : a < 2100u ? 0x33u : 0xFFu;
    }
    h = XXH3_64bits(want, sizeof want);
    stream_len = 0;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.addr = BASE + W0;
    r.len = sizeof want;
    r.flags = OTAUP_STEP_HASH;
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h >> (8 * i));
    }
    put(&r);
    rec(OTAUP_REC_COPY, BASE + W0, BASE + W0, 1100 - W0, 0);
    rec(OTAUP_REC_FILL, BASE + 1100, 0, 1000, 0x33);
    rec(OTAUP_REC_COPY, BASE + 2100, BASE + 1100, 1000, 0);
    rec(OTAUP_REC_FILL, BASE + 3100, 0, S - 3100, 0xFF);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    put(&r);
}

static void world_new(void)
{
    otaup_simflash_options o;
    uint8_t img[4 * S];
    uint32_t i;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, BASE, S, 8, 1);
    ck_assert_int_eq(otaup_simflash_new(&o, &sim), 0);
    memset(img, 0x11, sizeof img);
    memset(img, 0xFF, S);
    for (i = W0; i < 1100u; i++) {
        img[i] = pat(i);
    }
    ck_assert_int_eq(otaup_simflash_load(sim, BASE, img, sizeof img), 0);
}

/* mount, start or resume, feed the stream, finish: 0 or the first error */
static int run_once(void)
{
    otaup_exec_config c;
    otaup_region win;
    int rc = otaup_journal_mount(&jrn, otaup_simflash_flash(sim), JOURNAL, 2 * S);
    if (rc != 0) {
        return rc;
    }
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.journal = &jrn;
    c.layout = OTAUP_LAYOUT_INPLACE;
    win.addr = BASE;
    win.len = 4 * S;
    c.windows = &win;
    c.nwindows = 1;
    c.scratch.addr = SCRATCH;
    c.scratch.len = S;
    c.running = win;
    c.work = work;
    c.work_size = sizeof work;
    c.staging_size = S;
    c.max_ops = 16;
    rc = otaup_exec_init(&ex, &c);
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, 0x7711ull, 0);
    }
    if (rc == 2) {
        return 0; /* already complete */
    }
    if (rc >= 0) {
        rc = otaup_exec_feed(&ex, stream, stream_len);
    }
    if (rc == 0) {
        rc = otaup_exec_finish(&ex);
    }
    return rc;
}

START_TEST(test_fill_over_sources)
{
    otaup_simflash_stats st;
    uint64_t cut, ops;
    int torn;
    make_stream();
    world_new();
    ck_assert_int_eq(run_once(), 0);
    ck_assert_mem_eq(otaup_simflash_data(sim) + W0, want, sizeof want);
    otaup_simflash_stats_get(sim, &st);
    ops = st.ops;
    otaup_simflash_free(sim);
    for (cut = 1; cut <= ops; cut++) {
        for (torn = 0; torn < 2; torn++) {
            int rc, tries;
            world_new();
            otaup_simflash_cut_after(sim, cut, torn);
            rc = run_once();
            ck_assert_msg(rc == OTAUP_E_POWER_CUT || rc == 0, "cut %llu: %s", (unsigned long long)cut,
                          otaup_errname(rc));
            for (tries = 0; rc != 0 && tries < 3; tries++) {
                otaup_simflash_power_on(sim);
                if (tries == 0) {
                    otaup_simflash_cut_after(sim, cut / 2u + 1u, 1); /* cut again while recovering */
                }
                rc = run_once();
            }
            ck_assert_msg(rc == 0, "cut %llu%s: not finished: %s", (unsigned long long)cut, torn ? " torn" : "",
                          otaup_errname(rc));
            ck_assert_msg(memcmp(otaup_simflash_data(sim) + W0, want, sizeof want) == 0, "cut %llu%s: wrong window",
                          (unsigned long long)cut, torn ? " torn" : "");
            otaup_simflash_free(sim);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_fillsrc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fill_over_sources);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int nf;
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
