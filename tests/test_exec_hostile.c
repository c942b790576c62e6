/*
 * Hostile records: each is refused with its specific error and the flash
 * is untouched, proven by the simulated flash's operation log (no erase
 * or program after the session began). Also: reserved record types go to
 * the security hooks, a step_commit veto stops a step before any flash
 * change, and records without a session are refused.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define BASE 0x10000000u
#define S 4096u
/* slot: sectors 0..3, scratch 4, journal 5..6, user 7, updater 8 */
#define SLOT BASE
#define SCRATCH (BASE + 4 * S)
#define JOURNAL (BASE + 5 * S)
#define USER (BASE + 7 * S)
#define UPDATER (BASE + 8 * S)

typedef struct fix {
    otaup_simflash *sim;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win[2], prot[2];
    uint8_t work[OTAUP_EXEC_WORK_SIZE(4096, 16, 12)];
    size_t log0;
    int hook_calls, veto;
    uint8_t last_type;
} fix;

static fix F;

static int rec_hook(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    fix *f = ctx;
    (void)body;
    (void)len;
    (void)part;
    f->hook_calls++;
    f->last_type = type;
    return 0;
}

static int commit_hook(void *ctx, const otaup_exec_step *st)
{
    fix *f = ctx;
    (void)st;
    return f->veto ? OTAUP_E_CHAIN : 0;
}

static void setup_hooks(int hooks)
{
    otaup_simflash_options o;
    uint8_t img[4 * S];
    memset(&F, 0, sizeof F);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, BASE, S, 10, 8);
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &F.sim), 0);
    memset(img, 0x11, sizeof img);
    ck_assert_int_eq(otaup_simflash_load(F.sim, SLOT, img, sizeof img), 0);
    ck_assert_int_eq(otaup_journal_mount(&F.j, otaup_simflash_flash(F.sim), JOURNAL, 2 * S), 0);
    F.c.flash = otaup_simflash_flash(F.sim);
    F.c.journal = &F.j;
    F.c.layout = OTAUP_LAYOUT_INPLACE;
    F.c.window_bits = 12;
    F.win[0].addr = SLOT;
    F.win[0].len = 4 * S;
    F.c.windows = F.win;
    F.c.nwindows = 1;
    F.prot[0].addr = USER;
    F.prot[0].len = S;
    F.prot[1].addr = UPDATER;
    F.prot[1].len = S;
    F.c.protect = F.prot;
    F.c.nprotect = 2;
    F.c.scratch.addr = SCRATCH;
    F.c.scratch.len = S;
    F.c.running = F.win[0];
    F.c.work = F.work;
    F.c.work_size = sizeof F.work;
    F.c.staging_size = S;
    F.c.max_ops = 16;
    if (hooks) {
        F.c.hooks.ctx = &F;
        F.c.hooks.record = rec_hook;
        F.c.hooks.inner_record = rec_hook;
        F.c.hooks.step_commit = commit_hook;
    }
    ck_assert_int_eq(otaup_exec_init(&F.ex, &F.c), 0);
}

static void setup(void)
{
    setup_hooks(0);
}

static void start(void)
{
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0xABCDull, 0), 0);
    otaup_simflash_log(F.sim, &F.log0);
}

static void teardown(void)
{
    otaup_simflash_free(F.sim);
}

static size_t writes(void)
{
    return otaup_simflash_log_writes_since(F.sim, F.log0);
}

/* encode and feed one record */
static int feed(const otaup_record *r)
{
    uint8_t buf[8192];
    int n = otaup_record_encode(r, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    return otaup_exec_feed(&F.ex, buf, (size_t)n);
}

static int step(uint32_t index, uint32_t addr, uint32_t len)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.index = index;
    r.addr = addr;
    r.len = len;
    return feed(&r);
}

static int erase(uint32_t addr, uint32_t len)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_ERASE;
    r.addr = addr;
    r.len = len;
    return feed(&r);
}

static int end(uint32_t index)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    r.index = index;
    return feed(&r);
}

START_TEST(test_no_session)
{
    otaup_record r;
    uint8_t buf[64];
    int n;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_ERASE;
    r.addr = SLOT;
    r.len = S;
    n = otaup_record_encode(&r, buf, sizeof buf);
    ck_assert_int_eq(otaup_exec_feed(&F.ex, buf, (size_t)n), OTAUP_E_NO_SESSION);
    ck_assert_int_eq(otaup_exec_body(&F.ex, OTAUP_REC_ERASE, buf + 2, (size_t)n - 2), OTAUP_E_NO_SESSION);
    ck_assert_uint_eq(otaup_simflash_log_writes_since(F.sim, 0), 0);
}
END_TEST

START_TEST(test_windows_and_protected)
{
    start();
    ck_assert_int_eq(step(0, UPDATER + S, S), OTAUP_E_WINDOW);   /* outside every window */
    ck_assert_int_eq(step(0, JOURNAL, S), OTAUP_E_PROTECTED);     /* the journal */
    ck_assert_int_eq(step(0, SCRATCH, S), OTAUP_E_PROTECTED);     /* the scratch area */
    ck_assert_int_eq(step(0, USER, S), OTAUP_E_PROTECTED);        /* user data */
    ck_assert_int_eq(step(0, UPDATER, S), OTAUP_E_PROTECTED);     /* the updater itself */
    ck_assert_int_eq(step(0, SLOT + 4 * S - 8, 16), OTAUP_E_PROTECTED); /* straddles into scratch */
    ck_assert_int_eq(erase(JOURNAL, S), OTAUP_E_PROTECTED);
    ck_assert_int_eq(erase(UPDATER, S), OTAUP_E_PROTECTED);
    ck_assert_int_eq(erase(BASE + 9 * S, S), OTAUP_E_WINDOW);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

START_TEST(test_alignment_and_staging)
{
    start();
    ck_assert_int_eq(step(0, SLOT + 4, 64), OTAUP_E_ALIGN);  /* window not on the write size */
    ck_assert_int_eq(step(0, SLOT, 60), OTAUP_E_ALIGN);
    ck_assert_int_eq(erase(SLOT + 512, S), OTAUP_E_ALIGN);   /* erase not on sectors */
    ck_assert_int_eq(step(0, SLOT, 2 * S), OTAUP_E_STAGING); /* window larger than staging */
    ck_assert_int_eq(step(5, SLOT, S), OTAUP_E_SEQ);         /* a step that skips steps */
    /* inside a step: an erase of a protected range, a put outside the window */
    ck_assert_int_eq(step(0, SLOT, S), 0);
    ck_assert_int_eq(erase(USER, S), OTAUP_E_PROTECTED);
    ck_assert_int_eq(step(0, SLOT, S), 0);
    {
        otaup_record r;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_FILL;
        r.addr = SLOT + S;
        r.len = 16;
        r.value = 1;
        ck_assert_int_eq(feed(&r), OTAUP_E_STAGING);
    }
    /* a COPY that reads the journal */
    ck_assert_int_eq(step(0, SLOT, S), 0);
    {
        otaup_record r;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_COPY;
        r.addr = SLOT;
        r.src = JOURNAL;
        r.len = 64;
        ck_assert_int_eq(feed(&r), OTAUP_E_PROTECTED);
    }
    /* a put outside any step */
    {
        otaup_record r;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_FILL;
        r.addr = SLOT;
        r.len = 16;
        ck_assert_int_eq(feed(&r), OTAUP_E_STATE);
    }
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

START_TEST(test_bad_hash)
{
    otaup_record r;
    uint64_t h;
    int i;
    uint8_t want[S];
    start();
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.index = 0;
    r.addr = SLOT;
    r.len = S;
    r.flags = OTAUP_STEP_HASH;
    r.hash_len = 8;
    memset(want, 0x22, sizeof want);
    h = XXH3_64bits(want, sizeof want) ^ 1u; /* wrong by one bit */
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h >> (8 * i));
    }
    ck_assert_int_eq(feed(&r), 0);
    ck_assert_int_eq(erase(SLOT, S), 0);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_FILL;
    r.addr = SLOT;
    r.len = S;
    r.value = 0x22;
    ck_assert_int_eq(feed(&r), 0);
    ck_assert_int_eq(end(0), OTAUP_E_HASH);
    ck_assert_uint_eq(writes(), 0);
    /* the right hash goes through, proving the test can see writes */
    ck_assert_int_eq(step(0, SLOT, S), 0);
    ck_assert_int_eq(erase(SLOT, S), 0);
    ck_assert_int_eq(feed(&r), 0);
    ck_assert_int_eq(end(0), 0);
    ck_assert_uint_gt(writes(), 0);
    ck_assert_uint_eq(otaup_simflash_data(F.sim)[0], 0x22);
}
END_TEST

START_TEST(test_verify)
{
    otaup_record r;
    uint8_t img[4 * S];
    XXH128_hash_t h;
    int i;
    start();
    memset(img, 0x11, sizeof img);
    h = XXH3_128bits(img, sizeof img);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_VERIFY;
    r.addr = SLOT;
    r.len = 4 * S;
    r.alg = OTAUP_HASH_XXH3_128;
    r.hash_len = 16;
    for (i = 0; i < 8; i++) {
        r.hash[i] = (uint8_t)(h.low64 >> (8 * i));
        r.hash[8 + i] = (uint8_t)(h.high64 >> (8 * i));
    }
    ck_assert_int_eq(feed(&r), 0);
    r.hash[3] ^= 0x10;
    ck_assert_int_eq(feed(&r), OTAUP_E_HASH);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), OTAUP_E_HASH); /* a failed VERIFY blocks the commit */
    r.addr = JOURNAL;                                          /* the journal is not a source */
    ck_assert_int_eq(feed(&r), OTAUP_E_PROTECTED);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

START_TEST(test_hooks)
{
    uint8_t rec[8] = { 0x2B, 3, 1, 2, 3 };
    teardown();
    setup_hooks(1);
    start();
    ck_assert_int_eq(otaup_exec_feed(&F.ex, rec, 5), 0);
    ck_assert_int_eq(F.last_type, 0x2B);
    F.veto = 1;
    ck_assert_int_eq(step(0, SLOT, S), 0);
    ck_assert_int_eq(erase(SLOT, S), 0);
    ck_assert_int_eq(end(0), OTAUP_E_CHAIN);
    ck_assert_uint_eq(writes(), 0);
    ck_assert_int_gt(F.hook_calls, 3);
}
END_TEST

START_TEST(test_reserved_without_hook)
{
    uint8_t rec[8] = { 0x2C, 1, 0 };
    start();
    ck_assert_int_eq(otaup_exec_feed(&F.ex, rec, 3), OTAUP_E_MSG_TYPE);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

/* ---- compact records (inner stream only) ------------------------------- */

typedef struct ibuf {
    uint8_t b[16384];
    size_t n;
} ibuf;

static void iput(ibuf *ib, const otaup_record *r)
{
    int n = otaup_record_encode(r, ib->b + ib->n, sizeof ib->b - ib->n);
    ck_assert_int_gt(n, 0);
    ib->n += (size_t)n;
}

/* PIECE with raw bytes after its fields */
static void ipiece(ibuf *ib, int32_t seek, uint32_t dlen, uint32_t llen, const uint8_t *bytes, size_t nbytes)
{
    otaup_record r;
    uint8_t tmp[4096];
    int n;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_PIECE;
    r.src = (uint32_t)seek;
    r.len = dlen;
    r.lit = llen;
    r.data = bytes;
    r.data_len = (uint32_t)nbytes;
    n = otaup_record_encode(&r, tmp, sizeof tmp);
    ck_assert_int_gt(n, 0);
    memcpy(ib->b + ib->n, tmp, (size_t)n);
    ib->n += (size_t)n;
}

/* Feed SYNC{0}, then the inner records as one raw-deflate DATA stream. */
static int feed_inner(const ibuf *ib)
{
    static uint8_t z[20000], outer[20100];
    z_stream zs;
    size_t zl, o = 0;
    int n;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)ib->b;
    zs.avail_in = (uInt)ib->n;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = sizeof z - zs.avail_out;
    deflateEnd(&zs);
    outer[o++] = OTAUP_REC_SYNC;
    outer[o++] = 1;
    outer[o++] = 0;
    outer[o++] = OTAUP_REC_DATA;
    n = otaup_varint_put((uint32_t)zl + 1u, outer + o, 5);
    o += (size_t)n;
    outer[o++] = OTAUP_DATA_RESET;
    memcpy(outer + o, z, zl);
    o += zl;
    return otaup_exec_feed(&F.ex, outer, o);
}

static void istep(ibuf *ib, uint32_t len, int erase_it, const uint8_t *want)
{
    otaup_record r;
    uint64_t h;
    int i;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.addr = SLOT;
    r.len = len;
    if (want != NULL) {
        r.flags = OTAUP_STEP_HASH;
        r.hash_len = 8;
        h = XXH3_64bits(want, len);
        for (i = 0; i < 8; i++) {
            r.hash[i] = (uint8_t)(h >> (8 * i));
        }
    }
    iput(ib, &r);
    if (erase_it) {
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_ERASE;
        r.addr = SLOT;
        r.len = S;
        iput(ib, &r);
    }
}

static void iend(ibuf *ib)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_END;
    iput(ib, &r);
}

START_TEST(test_compact_records)
{
    static ibuf ib;
    static uint8_t want[S];
    otaup_record r;
    uint8_t enc[64];
    size_t i;
    /* a valid step: CFILL, PIECE (differences then literals), erased tail */
    start();
    memset(want, 0xFF, sizeof want);
    memset(want, 0x33, 100);                  /* CFILL 100 x 0x33 */
    memset(want + 100, 0x11, 40);             /* PIECE: 40 bytes of OLD (0x11) ... */
    want[100 + 5] = 0x11 + 0x10;              /* ... two differences ... */
    want[100 + 6] = (uint8_t)(0x11 + 0xF0);
    want[140] = 0xAB;                         /* ... then 2 literals */
    want[141] = 0xCD;
    ib.n = 0;
    istep(&ib, S, 1, want);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_CFILL;
    r.len = 100;
    r.value = 0x33;
    iput(&ib, &r);
    i = 0;
    enc[i++] = 0x45; /* 5 zeros, 2 given */
    enc[i++] = 0x10;
    enc[i++] = 0xF0;
    enc[i++] = 0x1F; /* 31 + 2 zeros: the rest of 40 */
    enc[i++] = 0x02;
    enc[i++] = 0xAB;
    enc[i++] = 0xCD;
    ipiece(&ib, 0, 40, 2, enc, i); /* CFILL moved T only: the source cursor is still at SLOT */
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), 0);
    ck_assert_uint_gt(writes(), 0);
    ck_assert_mem_eq(otaup_simflash_data(F.sim), want, S);
}
END_TEST

START_TEST(test_compact_hostile)
{
    static ibuf ib;
    otaup_record r;
    static const uint8_t over[] = { 0x05, 0xAA };           /* 5 zeros of 4 */
    static const uint8_t more_lit[] = { 0x04, 0xAA, 0xBB }; /* 4 zeros, then 2 literals of 1 */
    static const uint8_t short_d[] = { 0x02, 0x01, 0x01 };  /* 4 of 10 covered, body ends */
    static const uint8_t ok[] = { 0x04, 0xAA };
    int rc;
    start();
    /* compact records outside the inner stream */
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_CFILL;
    r.len = 4;
    ck_assert_int_eq(step(0, SLOT, S), 0);
    ck_assert_int_eq(feed(&r), OTAUP_E_DELTA_CORRUPT);
    /* a group past the differences */
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    ipiece(&ib, 0, 4, 1, over, sizeof over);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_MSG_FIELD);
    /* more literal bytes than announced */
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    ipiece(&ib, 0, 4, 1, more_lit, sizeof more_lit);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_MSG_LENGTH);
    /* differences that do not cover dlen */
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    ipiece(&ib, 0, 10, 2, short_d, sizeof short_d);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_MSG_LENGTH);
    /* past the window: a piece, a fill */
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_CFILL;
    r.len = S - 4;
    iput(&ib, &r);
    ipiece(&ib, 0, 4, 1, ok, sizeof ok);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_STAGING);
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    r.len = S + 1;
    iput(&ib, &r);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_STAGING);
    /* a source in the journal, and one past the device */
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    ipiece(&ib, (int32_t)(JOURNAL - SLOT), 4, 1, ok, sizeof ok);
    iend(&ib);
    ck_assert_int_eq(feed_inner(&ib), OTAUP_E_PROTECTED);
    ib.n = 0;
    istep(&ib, S, 1, NULL);
    ipiece(&ib, -(int32_t)(SLOT - 16), 4, 1, ok, sizeof ok);
    iend(&ib);
    rc = feed_inner(&ib);
    ck_assert_int_eq(rc, OTAUP_E_RANGE);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

START_TEST(test_abort_rules)
{
    start();
    /* before the point of no return: abort is allowed */
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), 0);
    ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ENDED);
    /* past it: refused */
    ck_assert_int_eq(otaup_exec_start(&F.ex, 8, 0xBEEFull, 0), 0);
    ck_assert_int_eq(step(0, SLOT, S), 0);
    ck_assert_int_eq(erase(SLOT, S), 0);
    ck_assert_int_eq(end(0), 0);
    ck_assert_uint_eq(F.j.st.ponr, 1);
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), OTAUP_E_STATE);
    /* and another update cannot start over it, nor disturb the step under
     * way: the refused START leaves the stream where it stood */
    ck_assert_int_eq(step(1, SLOT + S, S), 0);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 9, 0xC0FFEEull, 0), OTAUP_E_SESSION);
    ck_assert_int_eq(erase(SLOT + S, S), 0);
    ck_assert_int_eq(end(1), 0);
    ck_assert_uint_eq(F.j.st.next_step, 2);
}
END_TEST

START_TEST(test_abort_refused_during_restore)
{
    /* A/B (no point of no return): a session restoring a user-data region
     * (journal restore BUSY) may not be abandoned nor replaced; once the
     * region is restored (DONE) it may */
    F.c.layout = OTAUP_LAYOUT_AB;
    ck_assert_int_eq(otaup_exec_init(&F.ex, &F.c), 0);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0xABull, 1), 0);
    ck_assert_int_eq(otaup_journal_restore(&F.j, 1, OTAUP_JRESTORE_BUSY), 0);
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), OTAUP_E_STATE);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 9, 0xC0FFEEull, 1), OTAUP_E_SESSION);
    ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ACTIVE);
    /* the same update resumes */
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0xABull, 1), 1);
    ck_assert_int_eq(otaup_journal_restore(&F.j, 1, OTAUP_JRESTORE_DONE), 0);
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), 0);
    ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ENDED);
}
END_TEST

START_TEST(test_abort_refused_after_switch)
{
    /* A/B, a reset between the COMMIT's switch record and the record that
     * ends the session: the new slot boots already, so the session may not
     * be abandoned (that would end it with the new image booting and
     * report it cancelled) nor replaced; the same update resumes and
     * finishes it, without a second switch */
    F.c.layout = OTAUP_LAYOUT_AB;
    ck_assert_int_eq(otaup_exec_init(&F.ex, &F.c), 0);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 7, 0xABull, 1), 0);
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), 0); /* before the switch: allowed */
    ck_assert_int_eq(otaup_exec_start(&F.ex, 8, 0xACull, 1), 0);
    ck_assert_int_eq(otaup_journal_switch(&F.j, 1), 0);
    ck_assert_int_eq(otaup_exec_init(&F.ex, &F.c), 0); /* the reset */
    ck_assert_int_eq(otaup_exec_abort(&F.ex, OTAUP_E_CANCELED), OTAUP_E_STATE);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 9, 0xC0FFEEull, 0), OTAUP_E_SESSION);
    ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ACTIVE);
    ck_assert_uint_eq(F.j.st.boot_slot, 1);
    ck_assert_int_eq(otaup_exec_start(&F.ex, 8, 0xACull, 1), 1);
    ck_assert_int_eq(otaup_exec_finish(&F.ex), 0);
    ck_assert_uint_eq(F.j.st.session, OTAUP_JS_ENDED);
    ck_assert_int_eq(F.j.st.result, 0);
    ck_assert_uint_eq(F.j.st.boot_slot, 1);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("exec_hostile");
    TCase *tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_session);
    tcase_add_test(tc, test_windows_and_protected);
    tcase_add_test(tc, test_alignment_and_staging);
    tcase_add_test(tc, test_bad_hash);
    tcase_add_test(tc, test_verify);
    tcase_add_test(tc, test_hooks);
    tcase_add_test(tc, test_reserved_without_hook);
    tcase_add_test(tc, test_abort_rules);
    tcase_add_test(tc, test_abort_refused_during_restore);
    tcase_add_test(tc, test_abort_refused_after_switch);
    tcase_add_test(tc, test_compact_records);
    tcase_add_test(tc, test_compact_hostile);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
