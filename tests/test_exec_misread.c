/*
 * Executor: one wrong bit returned by a flash read while a step decides
 * what to do with a sector (the reconcile of docs/porting.md §4) must not
 * reach flash. The step's window covers part of a sector; the rest of
 * that sector holds data the step keeps, all erased but for one bit. A
 * read that returns that bit as erased, in the plan or in the act phase,
 * or one that returns an erased bit as programmed, must neither lose the
 * kept data nor leave a step that cannot be finished after a power cut:
 * for every read of the step that covers the bit (flipped there), alone
 * and followed by a cut at every later flash operation, the step ends
 * with the window written and the kept data intact. The same for the
 * scratch copy of the sector, and for a sector an ERASE record erases
 * that is erased but for one bit (read as erased, it would be skipped).
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
#define KEEP 100u /* bytes of sector 0 before the window */

/* a flash that forwards to the simulated one and flips bit `bit` of the
 * byte at `addr` in the `nth` read that covers it (0: none) */
typedef struct flipper {
    otaup_flash f;
    const otaup_flash *real;
    uint32_t addr;
    unsigned nth, seen, bit;
} flipper;

static int fl_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    flipper *x = f->context;
    int rc = x->real->read(x->real, addr, buf, len);
    if (rc == 0 && x->nth != 0 && x->addr >= addr && x->addr - addr < len && ++x->seen == x->nth) {
        ((uint8_t *)buf)[x->addr - addr] ^= (uint8_t)(1u << x->bit);
    }
    return rc;
}

static int fl_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    const flipper *x = f->context;
    return x->real->prog(x->real, addr, buf, len);
}

static int fl_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    const flipper *x = f->context;
    return x->real->erase(x->real, addr, len);
}

typedef struct world {
    otaup_simflash *sim;
    flipper fl;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win;
    uint8_t work[OTAUP_EXEC_WORK_SIZE(S, 16, 0)];
} world;

static world W;
static uint8_t stream[8192];
static size_t stream_len;

static void put(const otaup_record *r)
{
    int n = otaup_record_encode(r, stream + stream_len, sizeof stream - stream_len);
    ck_assert_int_gt(n, 0);
    stream_len += (size_t)n;
}

/* one step: [BASE + KEEP, BASE + S) gets bytes of its own window moved
 * down (sources inside the sector the step changes) plus new bytes;
 * `keep_byte` sits at BASE + 50, the rest of [BASE, BASE + KEEP) erased */
static void make_stream(void)
{
    otaup_record r;
    uint64_t h;
    uint8_t want[S - KEEP];
    uint32_t i;
    stream_len = 0;
    for (i = 0; i < sizeof want; i++) {
        want[i] = (uint8_t)(i < 1000u ? 0x40u + (i * 7u) % 13u : 0x33u);
    }
    h = XXH3_64bits(want, sizeof want);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.index = 0;
    r.addr = BASE + KEEP;
    r.len = sizeof want;
    r.flags = OTAUP_STEP_HASH;
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h >> (8 * i));
    }
    put(&r);
    /* the first 1000 bytes come from old bytes 500 further on */
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_COPY;
    r.addr = BASE + KEEP;
    r.src = BASE + KEEP + 500;
    r.len = 1000;
    put(&r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_FILL;
    r.addr = BASE + KEEP + 1000;
    r.len = (uint32_t)sizeof want - 1000u;
    r.value = 0x33;
    put(&r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    r.index = 0;
    put(&r);
    /* then sector 2 is erased (a record between steps) */
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_ERASE;
    r.addr = BASE + 2 * S;
    r.len = S;
    put(&r);
}

/* W's executor reads W.sim through the flipper (flip in the nth read covering `at`) */
static void flipper_attach(uint32_t at, unsigned nth, unsigned bit)
{
    W.fl.real = otaup_simflash_flash(W.sim);
    W.fl.f = *W.fl.real;
    W.fl.f.context = &W.fl;
    W.fl.f.read = fl_read;
    W.fl.f.prog = fl_prog;
    W.fl.f.erase = fl_erase;
    W.fl.f.sync = NULL;
    W.fl.addr = at;
    W.fl.nth = nth;
    W.fl.bit = bit;
}

static void world_new(uint32_t at, unsigned nth, unsigned bit, uint8_t keep_byte)
{
    otaup_simflash_options o;
    uint8_t img[4 * S];
    uint32_t i;
    memset(&W, 0, sizeof W);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, BASE, S, 8, 1);
    ck_assert_int_eq(otaup_simflash_new(&o, &W.sim), 0);
    memset(img, 0x11, sizeof img);
    memset(img, 0xFF, KEEP);
    img[50] = keep_byte;
    memset(img + 2 * S, 0xFF, S); /* sector 2: erased but for one bit */
    img[2 * S + 50] = 0xFE;
    for (i = 0; i < 1000u; i++) {
        img[KEEP + 500 + i] = (uint8_t)(0x40u + (i * 7u) % 13u);
    }
    ck_assert_int_eq(otaup_simflash_load(W.sim, BASE, img, sizeof img), 0);
    flipper_attach(at, nth, bit);
}

/* mount, start (or resume) and feed the whole stream; returns the first error */
static int run_once(void)
{
    int rc;
    rc = otaup_journal_mount(&W.j, &W.fl.f, JOURNAL, 2 * S);
    if (rc != 0) {
        return rc;
    }
    memset(&W.c, 0, sizeof W.c);
    W.c.flash = &W.fl.f;
    W.c.journal = &W.j;
    W.c.layout = OTAUP_LAYOUT_INPLACE;
    W.win.addr = BASE;
    W.win.len = 4 * S;
    W.c.windows = &W.win;
    W.c.nwindows = 1;
    W.c.scratch.addr = SCRATCH;
    W.c.scratch.len = S;
    W.c.running = W.win;
    W.c.work = W.work;
    W.c.work_size = sizeof W.work;
    W.c.staging_size = S;
    W.c.max_ops = 16;
    rc = otaup_exec_init(&W.ex, &W.c);
    if (rc == 0) {
        rc = otaup_exec_start(&W.ex, 1, 0x5151ull, 0);
    }
    if (rc >= 0) {
        rc = otaup_exec_feed(&W.ex, stream, stream_len);
    }
    if (rc == 0) {
        rc = otaup_exec_finish(&W.ex);
    }
    return rc;
}

/* the first byte of [from, to) of flash that is not `want` as pattern
 * `kind` gives it (0 erased, 1 the moved bytes, 2 0x33), or `to` */
static uint32_t first_bad(const uint8_t *d, uint32_t from, uint32_t to, int kind)
{
    uint32_t i;
    for (i = from; i < to; i++) {
        uint8_t want = kind == 0 ? 0xFFu : kind == 1 ? (uint8_t)(0x40u + ((i - KEEP) * 7u) % 13u) : 0x33u;
        if (i != 50u && d[i] != want) {
            return i;
        }
    }
    return to;
}

static void check_end(unsigned nth, unsigned bit, int cut, uint8_t keep_byte)
{
    const uint8_t *d = otaup_simflash_data(W.sim);
    uint32_t bad;
    ck_assert_msg(d[50] == keep_byte, "flip in read %u (bit %u), cut after %d: kept byte 0x%02x became 0x%02x", nth,
                  bit, cut, keep_byte, d[50]);
    bad = first_bad(d, 0, KEEP, 0);
    if (bad == KEEP) {
        bad = first_bad(d, KEEP, KEEP + 1000u, 1);
    }
    if (bad == KEEP + 1000u) {
        bad = first_bad(d, KEEP + 1000u, S, 2);
    }
    if (bad == S) {
        bad = first_bad(d, 2 * S, 3 * S, 0);
    }
    ck_assert_msg(bad == 3 * S, "flip in read %u (bit %u), cut after %d: byte %u wrong", nth, bit, cut,
                  (unsigned)bad);
}

/* bit `bit` of the byte at `at` read wrong, in each read that covers it */
static void sweep(uint32_t at, uint8_t keep_byte, unsigned bit)
{
    unsigned nth, reads = 0;
    otaup_simflash_stats st;
    make_stream();
    /* how many reads cover the kept byte, and how many flash operations, without faults */
    world_new(at, 0, 0, keep_byte);
    ck_assert_int_eq(run_once(), 0);
    check_end(0, bit, 0, keep_byte);
    otaup_simflash_free(W.sim);
    world_new(at, 1000000, bit, keep_byte);
    ck_assert_int_eq(run_once(), 0);
    reads = W.fl.seen;
    otaup_simflash_stats_get(W.sim, &st);
    otaup_simflash_free(W.sim);
    ck_assert_uint_ge(reads, 1);
    for (nth = 0; nth <= reads; nth++) { /* 0: no flip, cuts only */
        uint64_t cut;
        for (cut = 0; cut <= st.ops + 2u; cut++) {
            int rc, tries;
            world_new(at, nth, bit, keep_byte);
            if (cut > 0) {
                otaup_simflash_cut_after(W.sim, cut, 1);
            }
            rc = run_once();
            /* the same executor starts again (power on) after an error,
             * a fresh one after a cut; both until done */
            for (tries = 0; rc != 0 && tries < 4; tries++) {
                if (rc == OTAUP_E_POWER_CUT) {
                    otaup_simflash_power_on(W.sim);
                }
                ck_assert_msg(rc == OTAUP_E_POWER_CUT || rc == OTAUP_E_VERIFY || rc == OTAUP_E_HASH ||
                                  rc == OTAUP_E_FLASH_READ,
                              "flip in read %u, cut %llu: %s", nth, (unsigned long long)cut, otaup_errname(rc));
                rc = run_once();
            }
            ck_assert_msg(rc == 0, "flip in read %u, cut %llu: not finished: %s", nth, (unsigned long long)cut,
                          otaup_errname(rc));
            check_end(nth, bit, (int)cut, keep_byte);
            otaup_simflash_free(W.sim);
        }
    }
}

/* the kept byte 0xFE: its programmed bit read as erased, in the sector
 * and in the scratch copy of the sector */
START_TEST(test_kept_bit_read_erased)
{
    sweep(BASE + 50, 0xFE, 0);
    sweep(SCRATCH + 50, 0xFE, 0);
    sweep(BASE + 2 * S + 50, 0xFE, 0); /* the sector an ERASE record erases */
}
END_TEST

/* the kept byte erased too (nothing to keep): an erased bit read as
 * programmed, in the sector and in scratch */
START_TEST(test_erased_bit_read_programmed)
{
    sweep(BASE + 50, 0xFF, 3);
    sweep(SCRATCH + 50, 0xFF, 3);
}
END_TEST

/* A step refused for power safety stays refused whatever one read
 * returns. Its window spans the end of sector 0 and the start of sector 1
 * (both window parts erased: filled in place); each sector keeps data
 * outside the window, so each may need a rebuild after a tear, and one
 * scratch sector cannot hold two: OTAUP_E_SCRATCH before any change.
 * Sector 0's kept data are erased but for one bit: read once as erased,
 * the sector would look safe and the step would go ahead, leaving a torn
 * fill that no resume can finish. The verdict must need a second read
 * that agrees. */
#define WIN_AT (BASE + S - 2000u) /* the window: [WIN_AT, WIN_AT + WIN_LEN) */
#define WIN_LEN 4000u
static void refuse_world(unsigned nth)
{
    otaup_simflash_options o;
    otaup_record r;
    uint8_t img[4 * S];
    memset(&W, 0, sizeof W);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, BASE, S, 8, 1);
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &W.sim), 0);
    memset(img, 0xFF, sizeof img);
    img[50] = 0xFE;
    memset(img + (WIN_AT - BASE) + WIN_LEN, 0x11, 2 * S - (WIN_AT - BASE) - WIN_LEN);
    ck_assert_int_eq(otaup_simflash_load(W.sim, BASE, img, sizeof img), 0);
    flipper_attach(BASE + 50, nth, 0);
    stream_len = 0;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.addr = WIN_AT;
    r.len = WIN_LEN;
    put(&r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_FILL;
    r.addr = WIN_AT;
    r.len = WIN_LEN;
    r.value = 0x33;
    put(&r);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    put(&r);
}

/* erase or program calls outside the journal since the flash was made */
static size_t slot_writes(void)
{
    size_t n, i, w = 0;
    const otaup_simflash_op *op = otaup_simflash_log(W.sim, &n);
    for (i = 0; i < n; i++) {
        if ((op[i].kind == OTAUP_SIMFLASH_PROG || op[i].kind == OTAUP_SIMFLASH_ERASE) && op[i].addr < JOURNAL) {
            w++;
        }
    }
    return w;
}

START_TEST(test_refusal_stands)
{
    unsigned nth, reads;
    int rc;
    refuse_world(1000000);
    ck_assert_int_eq(run_once(), OTAUP_E_SCRATCH);
    ck_assert_uint_eq(slot_writes(), 0);
    reads = W.fl.seen;
    otaup_simflash_free(W.sim);
    ck_assert_uint_ge(reads, 2);
    for (nth = 1; nth <= reads; nth++) {
        refuse_world(nth);
        rc = run_once();
        ck_assert_msg(rc == OTAUP_E_SCRATCH || rc == OTAUP_E_VERIFY, "flip in read %u of %u: %s", nth, reads,
                      otaup_errname(rc));
        ck_assert_msg(slot_writes() == 0, "flip in read %u of %u: the step changed flash", nth, reads);
        ck_assert_int_eq(run_once(), OTAUP_E_SCRATCH); /* read again: refused */
        ck_assert_uint_eq(slot_writes(), 0);
        otaup_simflash_free(W.sim);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_misread");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kept_bit_read_erased);
    tcase_add_test(tc, test_erased_bit_read_programmed);
    tcase_add_test(tc, test_refusal_stands);
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
