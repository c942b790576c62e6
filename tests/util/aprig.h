/*
 * The rig of the protocol applier's probe suites (test_termrev_apply,
 * test_termrev2_apply): an applier on a simulated flash of 4 KiB sectors
 * (A/B: slot A 0..3, slot B 4..7, journal 8..9, updater 10, user data 11;
 * in place slot B's first sector is the scratch area), its frames
 * collected in a sink, a clock the test moves, and the server's side
 * written by hand: HELLO, one message at a time with the answer it got,
 * records, restores. Definitions, not declarations: included once by each
 * of those test programs, which use all of it.
 */
#ifndef OTAUP_TEST_APRIG_H
#define OTAUP_TEST_APRIG_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/apply.h"
#include "otaup/simflash.h"

#define S 4096u
/* A/B: slot A 0..3, slot B 4..7, journal 8..9, updater 10, user data 11 */
#define SLOT_A 0u
#define SLOT_B (4 * S)
#define JOURNAL (8 * S)
#define UPDATER (10 * S)
#define USER (11 * S)

typedef struct sink {
    uint8_t buf[16384];
    size_t len;
} sink;

typedef struct rig {
    otaup_simflash *sim;
    otaup_apply ap;
    otaup_apply_config cfg;
    uint8_t *work;
    sink k;
    uint32_t seq; /* next server seq */
} rig;

static rig R;

static int sink_send(void *ctx, const uint8_t *b, size_t n)
{
    sink *k = ctx;
    if (k->len + n <= sizeof k->buf) {
        memcpy(k->buf + k->len, b, n);
        k->len += n;
    }
    return (int)n;
}

static uint32_t g_tick; /* ms added by each clock reading (0: a frozen clock) */
static uint32_t g_now;

static uint32_t clock_ms(void *ctx)
{
    (void)ctx;
    g_now += g_tick;
    return g_now;
}

static void rig_make(uint8_t layout)
{
    otaup_simflash_options o;
    uint8_t buf[S];
    size_t wsz;
    memset(&R, 0, sizeof R);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, S, 12, 8);
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &R.sim), 0);
    memset(buf, 0xA0, S);
    ck_assert_int_eq(otaup_simflash_load(R.sim, SLOT_A, buf, S), 0);
    memset(buf, 0x5A, S);
    ck_assert_int_eq(otaup_simflash_load(R.sim, UPDATER, buf, S), 0);
    memset(buf, 0x33, S);
    ck_assert_int_eq(otaup_simflash_load(R.sim, USER, buf, S), 0);
    R.cfg.flash = otaup_simflash_flash(R.sim);
    R.cfg.layout = layout;
    R.cfg.window_bits = 0;
    R.cfg.max_ops = 8;
    R.cfg.slots[0].addr = SLOT_A;
    R.cfg.slots[0].len = 4 * S;
    R.cfg.slots[1].addr = SLOT_B;
    R.cfg.slots[1].len = 4 * S;
    if (layout == OTAUP_LAYOUT_INPLACE) {
        R.cfg.slots[1].len = 0;
        R.cfg.scratch.addr = SLOT_B; /* unused slot B's first sector */
        R.cfg.scratch.len = S;
    }
    R.cfg.journal.addr = JOURNAL;
    R.cfg.journal.len = 2 * S;
    R.cfg.updater.addr = UPDATER;
    R.cfg.updater.len = S;
    R.cfg.regions[0].id = 1;
    R.cfg.regions[0].addr = USER;
    R.cfg.regions[0].len = S;
    R.cfg.nregions = 1;
    R.cfg.staging_size = S;
    R.cfg.max_frame = 2048;
    R.cfg.max_msg = 2048;
    R.cfg.id.terminal_id = "T-1";
    R.cfg.id.model = "m";
    R.cfg.id.sw_version = "1";
    R.cfg.link.ctx = &R.k;
    R.cfg.link.send = sink_send;
    R.cfg.now_ms = clock_ms;
    wsz = otaup_apply_work_size(2048, 2048, S, 8, 0);
    ck_assert_uint_gt(wsz, 0);
    R.work = malloc(wsz);
    R.cfg.work = R.work;
    R.cfg.work_size = wsz;
}

static void teardown(void)
{
    g_tick = 0;
    otaup_simflash_free(R.sim);
    free(R.work);
    R.sim = NULL;
    R.work = NULL;
}

/* the server's HELLO: frames and messages of 2 KiB, window 1 */
static void hello_msg(otaup_msg *m)
{
    memset(m, 0, sizeof *m);
    m->type = OTAUP_MSG_HELLO;
    m->u.hello.role = 1;
    m->u.hello.proto_min = 1;
    m->u.hello.proto_max = 1;
    m->u.hello.max_frame = 2048;
    m->u.hello.max_msg = 2048;
    m->u.hello.window = 1;
}

/* the server's HELLO, frame 0 */
static void send_hello(void)
{
    otaup_msg m;
    uint8_t fr[256];
    int n;
    hello_msg(&m);
    n = otaup_msg_encode_frame(&m, 0, 0, 2048, fr, sizeof fr);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
}

/* init (a reset: the applier forgets everything but flash) and connect;
 * the server's HELLO is frame 0 */
static void boot(void)
{
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
    ck_assert_int_eq(otaup_apply_connect(&R.ap), 0);
    send_hello();
    R.seq = 1;
    R.k.len = 0;
}

/* What the terminal answered since the last call: the last ACK/NACK
 * (returns its type, *code its status or error) and the last RESULT's
 * code in *result (left alone if none). */
static int answer(int32_t *code, int32_t *result)
{
    otaup_decoder d;
    uint8_t db[4096];
    size_t off = 0;
    int type = 0;
    otaup_decoder_init(&d, db, sizeof db, 4096);
    while (off < R.k.len) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, R.k.buf + off, R.k.len - off, &used, &fr);
        off += used;
        if (ev == OTAUP_DEC_FRAME) {
            otaup_msg m;
            if (fr.type == OTAUP_MSG_ACK || fr.type == OTAUP_MSG_NACK) {
                ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
                type = fr.type;
                *code = fr.type == OTAUP_MSG_ACK ? m.u.ack.status : m.u.nack.error;
            } else if (fr.type == OTAUP_MSG_RESULT && result != NULL) {
                ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
                *result = m.u.result.code;
            }
        } else if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
    }
    R.k.len = 0;
    return type;
}

/* send one message with the next seq (or `again`: the previous seq) and
 * return the error of the NACK it got (0 for an ACK) */
static int32_t send_at(const otaup_msg *m, uint32_t seq, int32_t *result)
{
    uint8_t fr[4096];
    int32_t code = 0;
    int n = otaup_msg_encode_frame(m, 0, seq, 2048, fr, sizeof fr), i;
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
    /* acknowledge whatever the terminal sends of its own (HELLO, INFO,
     * RESULT), one frame at a time as it sends them */
    for (i = 0; i < 4; i++) {
        otaup_msg a;
        uint8_t af[64];
        int al;
        memset(&a, 0, sizeof a);
        a.type = OTAUP_MSG_ACK;
        a.u.ack.seq = 0xFFFFu;
        a.u.ack.window = 1;
        al = otaup_msg_encode_frame(&a, 0, 0, 2048, af, sizeof af);
        ck_assert_int_gt(al, 0);
        ck_assert_int_eq(otaup_apply_feed(&R.ap, af, (size_t)al), 0);
    }
    n = answer(&code, result);
    ck_assert_int_ne(n, 0);
    if (n == OTAUP_MSG_ACK) {
        ck_assert_uint_eq((uint32_t)code, 0);
        R.seq = seq + 1u;
        return 0;
    }
    return code;
}

static int32_t send(const otaup_msg *m, int32_t *result)
{
    return send_at(m, R.seq, result);
}

static int32_t start(uint64_t session, uint8_t flags)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = session;
    m.u.start.flags = flags;
    return send(&m, NULL);
}

/* an operation record sent on its own */
static void rec_msg(otaup_msg *m, uint8_t type, uint32_t index, uint32_t addr, uint32_t len, uint8_t value)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->u.rec.type = type;
    m->u.rec.index = index;
    m->u.rec.addr = addr;
    m->u.rec.len = len;
    m->u.rec.value = value;
}

static int32_t rec(uint8_t type, uint32_t index, uint32_t addr, uint32_t len, uint8_t value)
{
    otaup_msg m;
    rec_msg(&m, type, index, addr, len, value);
    return send(&m, NULL);
}

/* one step: sector `addr` erased and filled with `value` */
static void fill_step(uint32_t index, uint32_t addr, uint8_t value)
{
    ck_assert_int_eq(rec(OTAUP_REC_STEP, index, addr, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_ERASE, 0, addr, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_FILL, 0, addr, S, value), 0);
    ck_assert_int_eq(rec(OTAUP_REC_END, index, 0, 0, 0), 0);
}

static int32_t commit(uint64_t session, uint8_t action, int32_t *result)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_COMMIT;
    m.u.commit.session = session;
    m.u.commit.action = action;
    return send(&m, result);
}

static size_t writes(void)
{
    return otaup_simflash_log_writes_since(R.sim, 0);
}

static void expect_sector(uint32_t addr, uint8_t value)
{
    uint8_t want[S];
    memset(want, value, S);
    ck_assert_mem_eq(otaup_simflash_data(R.sim) + addr, want, S);
}

/* RESTORE_DATA of user region 1: `len` bytes of `data` at `off`; with
 * `last` 1, LAST and HASH over the `hashed` bytes from the region's start;
 * with `last` 2, LAST alone. */
static int32_t restore(const uint8_t *data, uint32_t off, uint32_t len, int last, uint32_t hashed)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_RESTORE_DATA;
    m.u.rdata.region = 1;
    m.u.rdata.offset = off;
    m.u.rdata.data.data = data + off;
    m.u.rdata.data.len = len;
    if (last == 2) {
        m.u.rdata.flags = OTAUP_RDATA_LAST;
    } else if (last) {
        uint64_t h = XXH3_64bits(data, hashed);
        int b;
        m.u.rdata.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
        m.u.rdata.hash.alg = OTAUP_HASH_XXH3_64;
        m.u.rdata.hash.len = 8;
        for (b = 0; b < 8; b++) {
            m.u.rdata.hash.bytes[b] = (uint8_t)(h >> (8 * b));
        }
    }
    return send(&m, NULL);
}

/* The whole region in chunks of 1 KiB; the first refusal, or 0. */
static int32_t restore_region(const uint8_t *data)
{
    uint32_t off;
    for (off = 0; off < S; off += 1024) {
        int32_t rc = restore(data, off, 1024, off + 1024 == S, S);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

#endif
