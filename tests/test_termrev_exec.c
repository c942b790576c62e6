/*
 * Executor edge cases: ranges at the very end of the 32-bit address space
 * and ranges that wrap around it, zero-length ranges, a flash whose erased
 * value is 0x00, a step whose window ends inside a large sector of a
 * non-uniform map (cut at every flash operation), a driver error in the
 * middle of an erase followed by the same step again, and read faults
 * during a VERIFY. Each refusal is checked against the simulated flash's
 * operation log (no erase or program), each completed run against the
 * image byte for byte.
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

#define S 4096u

typedef struct fix {
    otaup_simflash *sim;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win[2], prot[2];
    uint8_t work[OTAUP_EXEC_WORK_SIZE(2 * 4096, 16, 0)];
    uint32_t jaddr, jlen;
    size_t log0;
} fix;

static fix F;
static int g_log_reads;

static void teardown(void)
{
    otaup_simflash_free(F.sim);
    F.sim = NULL;
}

static void new_sim(const otaup_geometry *geo)
{
    otaup_simflash_options o;
    memset(&F, 0, sizeof F);
    otaup_simflash_options_init(&o);
    o.geo = *geo;
    o.log_ops = 1;
    o.log_reads = g_log_reads;
    ck_assert_int_eq(otaup_simflash_new(&o, &F.sim), 0);
}

/* mount the journal and initialise the executor with F.c as it stands */
static int reinit(void)
{
    int rc = otaup_journal_mount(&F.j, otaup_simflash_flash(F.sim), F.jaddr, F.jlen);
    if (rc != 0) {
        return rc;
    }
    F.c.flash = otaup_simflash_flash(F.sim);
    F.c.journal = &F.j;
    F.c.work = F.work;
    F.c.work_size = sizeof F.work;
    if (F.c.staging_size == 0) {
        F.c.staging_size = S;
    }
    F.c.max_ops = 16;
    return otaup_exec_init(&F.ex, &F.c);
}

static void mark(void)
{
    otaup_simflash_log(F.sim, &F.log0);
}

static size_t writes(void)
{
    return otaup_simflash_log_writes_since(F.sim, F.log0);
}

static int feed(const otaup_record *r)
{
    uint8_t buf[9000];
    int n = otaup_record_encode(r, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    return otaup_exec_feed(&F.ex, buf, (size_t)n);
}

static int rec3(uint8_t type, uint32_t index, uint32_t addr, uint32_t len)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = type;
    r.index = index;
    r.addr = addr;
    r.len = len;
    return feed(&r);
}

static int step(uint32_t index, uint32_t addr, uint32_t len)
{
    return rec3(OTAUP_REC_STEP, index, addr, len);
}

static int erase(uint32_t addr, uint32_t len)
{
    return rec3(OTAUP_REC_ERASE, 0, addr, len);
}

static int end(uint32_t index)
{
    return rec3(OTAUP_REC_END, index, 0, 0);
}

static int fill(uint32_t addr, uint32_t len, uint8_t value)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_FILL;
    r.addr = addr;
    r.len = len;
    r.value = value;
    return feed(&r);
}

static int copy(uint32_t addr, uint32_t src, uint32_t len)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_COPY;
    r.addr = addr;
    r.src = src;
    r.len = len;
    return feed(&r);
}

static int verify64(uint32_t addr, uint32_t len, uint64_t h)
{
    otaup_record r;
    int i;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_VERIFY;
    r.addr = addr;
    r.len = len;
    r.alg = OTAUP_HASH_XXH3_64;
    r.hash_len = 8;
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h >> (8 * i));
    }
    return feed(&r);
}

/* START (or resume) and run the whole stream, then finish; an update the
 * journal already shows complete (START returns 2) needs nothing more */
static int run_all(uint64_t id, int (*stream)(void))
{
    int rc = otaup_exec_start(&F.ex, 1, id, 0);
    if (rc == 2) {
        return 0;
    }
    if (rc >= 0) {
        rc = stream();
    }
    return rc == 0 ? otaup_exec_finish(&F.ex) : rc;
}

/* Cut after every flash operation of a run (torn when k is odd), then
 * power on and resume until the update is through, with a second cut
 * during the first recovery when asked: the end state is always `want`. */
typedef struct cut_run {
    void (*setup)(void);
    int (*stream)(void);
    uint64_t did;
    const uint8_t *want;
    size_t want_len;
    uint64_t total;       /* flash operations of the run without a cut */
    int rounds;           /* recoveries allowed */
    uint32_t second_mod;  /* 0: none; else a second cut 1 + k % second_mod operations in */
    uint64_t second_torn; /* that cut is torn when k & second_torn */
    void (*recovered)(uint64_t k); /* after each remount (NULL: nothing) */
    int ended;            /* the journal must say ENDED at the end */
} cut_run;

static void cut_everywhere(const cut_run *c)
{
    uint64_t k;
    for (k = 1; k <= c->total; k++) {
        int rounds = 0, rc;
        c->setup();
        otaup_simflash_cut_after(F.sim, k, (int)(k & 1u));
        rc = run_all(c->did, c->stream);
        while (rc != 0 && rounds++ < c->rounds) {
            ck_assert_msg(otaup_simflash_is_cut(F.sim), "cut after %llu, round %d: %d without a cut",
                          (unsigned long long)k, rounds, rc);
            otaup_simflash_power_on(F.sim);
            if (rounds == 1 && c->second_mod != 0) {
                otaup_simflash_cut_after(F.sim, 1 + k % c->second_mod, (int)(k & c->second_torn));
            }
            ck_assert_int_eq(reinit(), 0);
            if (c->recovered != NULL) {
                c->recovered(k);
            }
            rc = run_all(c->did, c->stream);
        }
        ck_assert_msg(rc == 0, "cut after %llu: %d", (unsigned long long)k, rc);
        ck_assert_msg(memcmp(otaup_simflash_data(F.sim), c->want, c->want_len) == 0, "cut after %llu: image differs",
                      (unsigned long long)k);
        if (c->ended) {
            ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ENDED);
        }
        teardown();
    }
}

/* ---- the top of the address space --------------------------------------- */

/* Ten 4 KiB sectors ending exactly at 2^32: slot 0..3, scratch 4, journal
 * 5..6, sectors 8..9 a second window whose last half-sector is protected
 * by a region that ends at 2^32 (the updater, say). */
#define TOP_BASE (0u - 10u * S)
#define TOP_SEC(i) (TOP_BASE + (uint32_t)(i) * S)

static void setup_top(void)
{
    otaup_geometry g;
    otaup_geometry_uniform(&g, TOP_BASE, S, 10, 8);
    new_sim(&g);
    F.jaddr = TOP_SEC(5);
    F.jlen = 2 * S;
    F.c.layout = OTAUP_LAYOUT_INPLACE;
    F.win[0].addr = TOP_SEC(0);
    F.win[0].len = 4 * S;
    F.win[1].addr = TOP_SEC(8);
    F.win[1].len = 2 * S - 8; /* a window may not end at 2^32 (exec_init) */
    F.c.windows = F.win;
    F.c.nwindows = 2;
    F.prot[0].addr = TOP_SEC(9) + S / 2;
    F.prot[0].len = S / 2; /* [.., 2^32) */
    F.c.protect = F.prot;
    F.c.nprotect = 1;
    F.c.scratch.addr = TOP_SEC(4);
    F.c.scratch.len = S;
    F.c.running = F.win[0];
    ck_assert_int_eq(reinit(), 0);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0x77ull, 0), 0);
    mark();
}

START_TEST(test_protected_region_ending_at_top)
{
    setup_top();
    /* a step inside the window whose range lies in the protected region */
    ck_assert_int_eq(step(0, TOP_SEC(9) + S / 2, 64), OTAUP_E_PROTECTED);
    ck_assert_int_eq(step(0, TOP_SEC(9) + S - 64, 56), OTAUP_E_PROTECTED);
    /* straddling into it from below */
    ck_assert_int_eq(step(0, TOP_SEC(9) + S / 2 - 8, 16), OTAUP_E_PROTECTED);
    ck_assert_uint_eq(writes(), 0);
    /* below it the window works: proof that the test sees writes */
    ck_assert_int_eq(step(0, TOP_SEC(9), 64), 0);
    ck_assert_int_eq(fill(TOP_SEC(9), 64, 0x5A), 0);
    ck_assert_int_eq(end(0), 0);
    ck_assert_uint_gt(writes(), 0);
    ck_assert_uint_eq(otaup_simflash_data(F.sim)[9 * S], 0x5A);
    ck_assert_uint_eq(otaup_simflash_data(F.sim)[9 * S + S / 2], 0xFF);
}
END_TEST

/* feed [type][len][varint fields...] as the wire carries it */
static int raw(uint8_t type, const uint32_t *v, unsigned n)
{
    uint8_t body[64], buf[72];
    int k = 0, m;
    unsigned i;
    for (i = 0; i < n; i++) {
        k += otaup_varint_put(v[i], body + k, 5);
    }
    buf[0] = type;
    m = otaup_varint_put((uint32_t)k, buf + 1, 5);
    memcpy(buf + 1 + m, body, (size_t)k);
    return otaup_exec_feed(&F.ex, buf, (size_t)(1 + m + k));
}

START_TEST(test_wrapping_ranges)
{
    otaup_record r;
    uint8_t tmp[64];
    setup_top();
    /* the encoder cannot express a range that wraps past 2^32 ... */
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_ERASE;
    r.addr = TOP_SEC(9);
    r.len = 2 * S;
    ck_assert_int_eq(otaup_record_encode(&r, tmp, sizeof tmp), OTAUP_E_INVAL);
    /* ... and the decoder refuses one that arrives on the wire */
    {
        const uint32_t e[2] = { TOP_SEC(9), 2 * S };
        const uint32_t st[4] = { 0, 0u - 64u, 128, 0 };
        ck_assert_int_eq(raw(OTAUP_REC_ERASE, e, 2), OTAUP_E_MSG_FIELD);
        ck_assert_int_eq(raw(OTAUP_REC_STEP, st, 4), OTAUP_E_MSG_FIELD);
    }
    /* ranges ending exactly at 2^32 decode, and are refused for what
     * they touch: the region protected up to 2^32 */
    ck_assert_int_eq(erase(TOP_SEC(9), S), OTAUP_E_PROTECTED);
    ck_assert_int_eq(step(0, 0u - 64u, 64), OTAUP_E_PROTECTED);
    ck_assert_int_eq(step(0, TOP_SEC(9), S), OTAUP_E_PROTECTED);
    ck_assert_uint_eq(writes(), 0);
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    /* a source past the end of the flash, a put past the end of the window */
    ck_assert_int_eq(copy(TOP_SEC(0), TOP_BASE - 64u, 64), OTAUP_E_RANGE);
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    ck_assert_int_eq(fill(TOP_SEC(0) + S - 8, 16, 1), OTAUP_E_STAGING);
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    ck_assert_int_eq(copy(TOP_SEC(0), TOP_SEC(9), S), 0); /* the last sector is a source like any */
    ck_assert_int_eq(end(0), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), otaup_simflash_data(F.sim) + 9 * S, S);
}
END_TEST

/* A window may end at 2^32: a step there writes the last bytes of the
 * address space, keeping the rest of its sector (a rebuild through
 * scratch), and an ERASE there erases the last sector. */
START_TEST(test_window_ending_at_top)
{
    uint8_t keep[S];
    setup_top();
    F.win[1].len = 2 * S;
    F.c.nprotect = 0;
    memset(keep, 0x42, sizeof keep);
    ck_assert_int_eq(otaup_simflash_load(F.sim, TOP_SEC(9), keep, S), 0);
    ck_assert_int_eq(reinit(), 0);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0x77ull, 0), 1);
    ck_assert_int_eq(step(0, 0u - 64u, 64), 0);
    ck_assert_int_eq(fill(0u - 64u, 64, 0x17), 0);
    ck_assert_int_eq(end(0), 0);
    memset(keep + S - 64, 0x17, 64);
    ck_assert_mem_eq(otaup_simflash_data(F.sim) + 9 * S, keep, S);
    ck_assert_uint_gt(otaup_exec_get_stats(&F.ex)->sector_rebuilds, 0);
    ck_assert_int_eq(erase(TOP_SEC(8), 2 * S), 0);
    memset(keep, 0xFF, sizeof keep);
    ck_assert_mem_eq(otaup_simflash_data(F.sim) + 9 * S, keep, S);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
}
END_TEST

START_TEST(test_zero_length_ranges)
{
    setup_top();
    ck_assert_int_eq(step(0, TOP_SEC(0), 0), OTAUP_E_STAGING);
    ck_assert_int_eq(erase(TOP_SEC(0), 0), OTAUP_E_ALIGN);
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    ck_assert_int_eq(erase(TOP_SEC(1), 0), OTAUP_E_ALIGN); /* deferred erase */
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    ck_assert_int_eq(fill(TOP_SEC(0), 0, 1), OTAUP_E_STAGING);
    ck_assert_int_eq(step(0, TOP_SEC(0), S), 0);
    ck_assert_int_eq(copy(TOP_SEC(0), TOP_SEC(1), 0), OTAUP_E_STAGING);
    /* a VERIFY of nothing hashes nothing: no flash change either way */
    ck_assert_int_eq(verify64(TOP_SEC(0), 0, XXH3_64bits("", 0)), 0);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

/* ---- erased value 0x00, cut at every operation ---------------------------- */

#define Z_BASE 0x20000000u

static void setup_zero(void)
{
    otaup_geometry g;
    uint8_t img[4 * S];
    uint32_t i;
    otaup_geometry_uniform(&g, Z_BASE, S, 8, 16);
    g.erased = 0x00;
    new_sim(&g);
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7u + 1u);
    }
    ck_assert_int_eq(otaup_simflash_load(F.sim, Z_BASE, img, sizeof img), 0);
    F.jaddr = Z_BASE + 5 * S;
    F.jlen = 2 * S;
    F.c.layout = OTAUP_LAYOUT_INPLACE;
    F.win[0].addr = Z_BASE;
    F.win[0].len = 4 * S;
    F.c.windows = F.win;
    F.c.nwindows = 1;
    F.c.scratch.addr = Z_BASE + 4 * S;
    F.c.scratch.len = S;
    F.c.running = F.win[0];
    ck_assert_int_eq(reinit(), 0);
}

/* the update: step 0 rewrites sector 1 from sector 0 with a filled head,
 * step 1 fills half of sector 2 (the other half kept: a rebuild),
 * step 2 writes zeros (the erased value) over sector 3's first half */
static int zero_stream(uint32_t *steps)
{
    int rc;
#define TRY(x) \
    if ((rc = (x)) != 0) return rc
    TRY(step(0, Z_BASE + S, S));
    TRY(erase(Z_BASE + S, S));
    TRY(copy(Z_BASE + S, Z_BASE, S));
    TRY(fill(Z_BASE + S, 32, 0xC3));
    TRY(end(0));
    TRY(step(1, Z_BASE + 2 * S, S / 2));
    TRY(fill(Z_BASE + 2 * S, S / 2, 0x3C));
    TRY(end(1));
    TRY(step(2, Z_BASE + 3 * S, S / 2));
    TRY(erase(Z_BASE + 3 * S, S));
    TRY(fill(Z_BASE + 3 * S, S / 2, 0x00));
    TRY(end(2));
#undef TRY
    *steps = 3;
    return 0;
}

static int zero_stream0(void)
{
    uint32_t n;
    return zero_stream(&n);
}

static void zero_want(uint8_t *want)
{
    uint32_t i;
    for (i = 0; i < 4 * S; i++) {
        want[i] = (uint8_t)(i * 7u + 1u);
    }
    memcpy(want + S, want, S);
    memset(want + S, 0xC3, 32);
    memset(want + 2 * S, 0x3C, S / 2);
    memset(want + 3 * S, 0x00, S / 2);
    memset(want + 3 * S + S / 2, 0x00, S / 2); /* step 2 erased the whole sector */
}

START_TEST(test_erased_zero_cut_everywhere)
{
    uint8_t want[4 * S];
    uint32_t n;
    otaup_simflash_stats st;
    cut_run c;
    /* the whole run, to count its operations */
    setup_zero();
    zero_want(want);
    otaup_simflash_stats_reset(F.sim);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 1, 0x100ull, 0), 0);
    ck_assert_int_eq(zero_stream(&n), 0);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), want, sizeof want);
    otaup_simflash_stats_get(F.sim, &st);
    ck_assert_uint_gt(st.ops, 8);
    ck_assert_uint_gt(otaup_exec_get_stats(&F.ex)->sector_rebuilds, 0);
    teardown();
    memset(&c, 0, sizeof c);
    c.setup = setup_zero;
    c.stream = zero_stream0;
    c.did = 0x100ull;
    c.want = want;
    c.want_len = sizeof want;
    c.total = st.ops;
    c.rounds = 4;
    cut_everywhere(&c);
}
END_TEST

/* ---- non-uniform sectors: a window that ends inside a large sector ------- */

#define M_BASE 0x08000000u
/* 4 x 4 KiB (0..3), 1 x 16 KiB (4), 2 x 4 KiB (5..6: journal), 1 x 16 KiB (7: scratch) */
#define M_BIG (M_BASE + 4 * S)
#define M_END (M_BIG + 4 * S)

static void setup_mixed(void)
{
    otaup_geometry g;
    uint8_t img[8 * S];
    uint32_t i;
    memset(&g, 0, sizeof g);
    g.base = M_BASE;
    g.write_size = 8;
    g.erased = 0xFF;
    g.nruns = 4;
    g.runs[0].count = 4;
    g.runs[0].size = S;
    g.runs[1].count = 1;
    g.runs[1].size = 4 * S;
    g.runs[2].count = 2;
    g.runs[2].size = S;
    g.runs[3].count = 1;
    g.runs[3].size = 4 * S;
    new_sim(&g);
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i ^ (i >> 8) ^ 0x5Au);
    }
    ck_assert_int_eq(otaup_simflash_load(F.sim, M_BASE, img, sizeof img), 0);
    F.jaddr = M_END;
    F.jlen = 2 * S;
    F.c.layout = OTAUP_LAYOUT_INPLACE;
    F.win[0].addr = M_BASE;
    F.win[0].len = 8 * S;
    F.c.windows = F.win;
    F.c.nwindows = 1;
    F.c.scratch.addr = M_END + 2 * S;
    F.c.scratch.len = 4 * S;
    F.c.running = F.win[0];
    F.c.staging_size = 2 * S;
    ck_assert_int_eq(reinit(), 0);
}

/* step 0: the middle 8 KiB of the 16 KiB sector, from the 4 KiB sectors
 * (sources below it); step 1: sector 0 from the big sector's head */
static int mixed_stream(void)
{
    int rc;
#define TRY(x) \
    if ((rc = (x)) != 0) return rc
    TRY(step(0, M_BIG + S, 2 * S));
    TRY(copy(M_BIG + S, M_BASE + S, 2 * S));
    TRY(fill(M_BIG + S + 100 * 8, 64, 0x00));
    TRY(end(0));
    TRY(step(1, M_BASE, S));
    TRY(erase(M_BASE, S));
    TRY(copy(M_BASE, M_BIG, S));
    TRY(end(1));
#undef TRY
    return 0;
}

static void mixed_want(uint8_t *want)
{
    uint32_t i;
    for (i = 0; i < 8 * S; i++) {
        want[i] = (uint8_t)(i ^ (i >> 8) ^ 0x5Au);
    }
    memcpy(want + 5 * S, want + S, 2 * S);
    memset(want + 5 * S + 800, 0x00, 64);
    memcpy(want, want + 4 * S, S);
}

START_TEST(test_mixed_window_mid_sector_cut_everywhere)
{
    uint8_t want[8 * S];
    otaup_simflash_stats st;
    cut_run c;
    setup_mixed();
    mixed_want(want);
    otaup_simflash_stats_reset(F.sim);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 1, 0x200ull, 0), 0);
    ck_assert_int_eq(mixed_stream(), 0);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), want, sizeof want);
    ck_assert_uint_gt(otaup_exec_get_stats(&F.ex)->sector_rebuilds, 0);
    otaup_simflash_stats_get(F.sim, &st);
    ck_assert_uint_gt(st.ops, 8);
    teardown();
    memset(&c, 0, sizeof c);
    c.setup = setup_mixed;
    c.stream = mixed_stream;
    c.did = 0x200ull;
    c.want = want;
    c.want_len = sizeof want;
    c.total = st.ops;
    c.rounds = 4;
    c.second_mod = 3; /* a second cut during the recovery, a few operations in, torn */
    c.second_torn = ~0ull;
    cut_everywhere(&c);
}
END_TEST

/* ---- a driver error in the middle of an erase ---------------------------- */

START_TEST(test_failed_erase_then_same_step)
{
    uint8_t want[8 * S];
    uint64_t k;
    for (k = 1; k <= 12; k++) {
        int rc, tries = 0;
        setup_mixed();
        mixed_want(want);
        otaup_simflash_fail_after(F.sim, k, (int)(k & 1u));
        /* the server sends START and the whole stream again after each
         * refusal, as it does after a NACK with a flash error: steps
         * journaled as done are replayed, the failed one is done again */
        do {
            rc = otaup_exec_start(&F.ex, 1, 0x200ull, 0);
            if (rc >= 0) {
                rc = mixed_stream();
            }
            ck_assert_int_le(rc, 0);
        } while (rc != 0 && tries++ < 3);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
        ck_assert_msg(memcmp(otaup_simflash_data(F.sim), want, sizeof want) == 0, "fail at %llu: image differs",
                      (unsigned long long)k);
        teardown();
    }
}
END_TEST

/* ---- read faults during VERIFY ------------------------------------------- */

START_TEST(test_verify_read_faults)
{
    uint8_t want[8 * S];
    uint64_t h;
    otaup_simflash_stats st;
    setup_mixed();
    mixed_want(want);
    h = XXH3_64bits(want, sizeof want);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 1, 0x200ull, 0), 0);
    ck_assert_int_eq(mixed_stream(), 0);
    mark();
    /* a failed read: the driver's error, not a hash mismatch */
    otaup_simflash_read_fault(F.sim, 3, OTAUP_SIMFLASH_RFAULT_FAIL);
    ck_assert_int_eq(verify64(M_BASE, 8 * S, h), OTAUP_E_FLASH_READ);
    /* the VERIFY again, read right: it passes and the commit goes through */
    ck_assert_int_eq(verify64(M_BASE, 8 * S, h), 0);
    ck_assert_int_eq(verify64(M_BASE, 8 * S, h ^ 1u), OTAUP_E_HASH);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), OTAUP_E_HASH); /* a real mismatch blocks it */
    otaup_simflash_stats_get(F.sim, &st);
    ck_assert_uint_eq(writes(), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), want, sizeof want);
}
END_TEST

START_TEST(test_verify_flipped_bit)
{
    uint8_t want[8 * S];
    uint64_t h;
    setup_mixed();
    mixed_want(want);
    h = XXH3_64bits(want, sizeof want);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 1, 0x200ull, 0), 0);
    ck_assert_int_eq(mixed_stream(), 0);
    mark();
    /* one wrong bit returned by a read of the VERIFY: the image is whole,
     * so the VERIFY must not fail the update (it reads again) */
    otaup_simflash_read_fault(F.sim, 5, OTAUP_SIMFLASH_RFAULT_FLIP);
    ck_assert_int_eq(verify64(M_BASE, 8 * S, h), 0);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
    ck_assert_uint_eq(otaup_journal_get(&F.j)->session, OTAUP_JS_ENDED);
    ck_assert_int_eq(otaup_journal_get(&F.j)->result, 0);
}
END_TEST

/* ---- a journal that compacts every few records, cut everywhere --------- */

#define T_BASE 0x30000000u
/* 4 x 4 KiB slot (0..3), 4 KiB scratch (4), 2 x 256 B journal: 8 slots
 * per sector, a compaction every few records of the session */
#define T_JOURNAL (T_BASE + 5 * S)

static void setup_tight(void)
{
    otaup_geometry g;
    uint8_t img[4 * S];
    uint32_t i;
    memset(&g, 0, sizeof g);
    g.base = T_BASE;
    g.write_size = 8;
    g.erased = 0xFF;
    g.nruns = 2;
    g.runs[0].count = 5;
    g.runs[0].size = S;
    g.runs[1].count = 2;
    g.runs[1].size = 256;
    new_sim(&g);
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 13u + (i >> 9));
    }
    ck_assert_int_eq(otaup_simflash_load(F.sim, T_BASE, img, sizeof img), 0);
    F.jaddr = T_JOURNAL;
    F.jlen = 512;
    F.c.layout = OTAUP_LAYOUT_INPLACE;
    F.win[0].addr = T_BASE;
    F.win[0].len = 4 * S;
    F.c.windows = F.win;
    F.c.nwindows = 1;
    F.c.scratch.addr = T_BASE + 4 * S;
    F.c.scratch.len = S;
    F.c.running = F.win[0];
    ck_assert_int_eq(reinit(), 0);
}

/* eight steps over half sectors, each keeping the other half: every step
 * goes through scratch (records SSEC and DONE), the journal compacts
 * every three steps or so */
static int tight_stream(void)
{
    uint32_t i;
    int rc;
    for (i = 0; i < 8; i++) {
        uint32_t a = T_BASE + (i / 2) * S + (i & 1u) * (S / 2);
        if ((rc = step(i, a, S / 2)) != 0 || (rc = fill(a, S / 2, (uint8_t)(0x10 + i))) != 0 ||
            (rc = end(i)) != 0) {
            return rc;
        }
    }
    return 0;
}

/* before the point of no return the old image is whole */
static void tight_old_whole(uint64_t k)
{
    uint8_t old[4 * S];
    uint32_t i;
    if (F.j.st.ponr) {
        return;
    }
    for (i = 0; i < sizeof old; i++) {
        old[i] = (uint8_t)(i * 13u + (i >> 9));
    }
    ck_assert_msg(memcmp(otaup_simflash_data(F.sim), old, sizeof old) == 0,
                  "cut after %llu: old image changed before the point of no return", (unsigned long long)k);
}

START_TEST(test_tight_journal_cut_everywhere)
{
    uint8_t want[4 * S];
    uint32_t i;
    otaup_simflash_stats st;
    cut_run c;
    setup_tight();
    for (i = 0; i < 8; i++) {
        memset(want + i * (S / 2), 0x10 + (int)i, S / 2);
    }
    otaup_simflash_stats_reset(F.sim);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 1, 0x300ull, 0), 0);
    ck_assert_int_eq(tight_stream(), 0);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), want, sizeof want);
    ck_assert_uint_ge(F.j.st.seq, 4); /* it compacted several times */
    otaup_simflash_stats_get(F.sim, &st);
    ck_assert_uint_gt(st.ops, 8);
    teardown();
    memset(&c, 0, sizeof c);
    c.setup = setup_tight;
    c.stream = tight_stream;
    c.did = 0x300ull;
    c.want = want;
    c.want_len = sizeof want;
    c.total = st.ops;
    c.rounds = 6;
    c.second_mod = 5;
    c.second_torn = 2u;
    c.recovered = tight_old_whole;
    c.ended = 1;
    cut_everywhere(&c);
}
END_TEST

/* otaup_exec_hash_range (the applier hashes user-data regions with it)
 * refuses a range outside the flash map before any read: a driver is
 * only ever asked for addresses inside the geometry. */
START_TEST(test_hash_range_outside_map)
{
    uint8_t h[16];
    const otaup_simflash_op *log;
    size_t n, i;
    g_log_reads = 1;
    setup_mixed();
    g_log_reads = 0;
    otaup_simflash_log_clear(F.sim);
    ck_assert_int_eq(otaup_exec_hash_range(&F.ex, M_BASE - 16u, 64, OTAUP_HASH_XXH3_64, h), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_exec_hash_range(&F.ex, M_END + 2 * S, 5 * S, OTAUP_HASH_XXH3_64, h), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_exec_hash_range(&F.ex, 0xFFFFFF00u, 0x200u, OTAUP_HASH_XXH3_128, h), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_exec_hash_range(&F.ex, M_END, 64, OTAUP_HASH_XXH3_64, h), OTAUP_E_PROTECTED); /* journal */
    log = otaup_simflash_log(F.sim, &n);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(log[i].result, 0);
    }
    ck_assert_uint_eq(n, 0);
    /* inside it works (and reads) */
    ck_assert_int_eq(otaup_exec_hash_range(&F.ex, M_BASE, 8 * S, OTAUP_HASH_XXH3_64, h), 8);
    log = otaup_simflash_log(F.sim, &n);
    ck_assert_uint_gt(n, 0);
}
END_TEST

/* ---- geometry edge cases ---------------------------------------------- */

START_TEST(test_geometry_edges)
{
    otaup_geometry g;
    /* write size larger than the sector */
    otaup_geometry_uniform(&g, 0, 256, 4, 512);
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    /* a map that ends exactly at 2^32 is valid; one byte more is not */
    otaup_geometry_uniform(&g, TOP_BASE, S, 10, 8);
    ck_assert_int_eq(otaup_geometry_check(&g), 0);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0xFFFFFFFFu, NULL, NULL), 9);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, TOP_SEC(8), S), 1);
    otaup_geometry_uniform(&g, TOP_BASE + S, S, 10, 8);
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    /* non-uniform: an end inside a large sector is not aligned */
    memset(&g, 0, sizeof g);
    g.base = M_BASE;
    g.write_size = 8;
    g.nruns = 2;
    g.runs[0].count = 2;
    g.runs[0].size = S;
    g.runs[1].count = 1;
    g.runs[1].size = 4 * S;
    ck_assert_int_eq(otaup_geometry_check(&g), 0);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, M_BASE, 3 * S), 0);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, M_BASE + S, 5 * S), 1);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, M_BASE + S, 6 * S), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("termrev_exec");
    TCase *tc = tcase_create("edges");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_protected_region_ending_at_top);
    tcase_add_test(tc, test_wrapping_ranges);
    tcase_add_test(tc, test_window_ending_at_top);
    tcase_add_test(tc, test_zero_length_ranges);
    tcase_add_test(tc, test_erased_zero_cut_everywhere);
    tcase_add_test(tc, test_mixed_window_mid_sector_cut_everywhere);
    tcase_add_test(tc, test_failed_erase_then_same_step);
    tcase_add_test(tc, test_verify_read_faults);
    tcase_add_test(tc, test_verify_flipped_bit);
    tcase_add_test(tc, test_tight_journal_cut_everywhere);
    tcase_add_test(tc, test_hash_range_outside_map);
    tcase_add_test(tc, test_geometry_edges);
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
