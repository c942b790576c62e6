/*
 * The applier's windowed backup upload at its edges (apply.h,
 * protocol.md §4): acknowledgements the server could not have sent (an
 * ACK or a NACK `expected` for a seq the terminal never sent), a window
 * that shrinks while chunks are in flight, sequence numbers that wrap
 * past 2^32 in the middle of a window, requests at an odd offset, with
 * max_chunk 1 or huge, a server HELLO in the middle of the stream, and a
 * flash read error in the middle of it (a CONSENT asked for then waits;
 * the stream is retried at the retransmission pace, within its bound).
 *
 * The applier runs against a hand-driven server (a sink for what the
 * terminal sends, frames fed to it one by one, a clock set by the test):
 * every frame it sends is decoded and checked.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/apply.h"
#include "otaup/simflash.h"
#include "util/testplan.h"

#define S 4096u
#define USER (8 * S) /* the user-data region of tp_apply_config_backup() */
#define USER_LEN (16 * S)
#define NSECT 24u
#define TERM_FRAME 256u
#define RTO 500u

typedef struct out_frame {
    uint8_t type;
    uint32_t seq;
    uint32_t offset, len;
    uint8_t flags;
    uint8_t data[TERM_FRAME];
    uint8_t hash[8];
    int32_t nack;
} out_frame;

typedef struct term {
    otaup_simflash *fl;
    otaup_apply ap;
    otaup_apply_config cfg;
    uint8_t *work;
    uint32_t clock;
    uint8_t sent[1u << 20]; /* what the terminal sent, not yet looked at */
    size_t sent_len;
    uint32_t srv_seq;       /* the server's next seq */
    out_frame f[64];        /* the frames of the last take() */
} term;

/* The simulated flash behind a wrapper whose reads fail while g_fail_reads
 * is set (a flash read error in the middle of a backup stream). */
static const otaup_flash *g_inner;
static otaup_flash g_wrap;
static int g_fail_reads;

static int w_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    (void)f;
    return g_fail_reads ? OTAUP_E_FLASH_READ : g_inner->read(g_inner, addr, buf, len);
}
static int w_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    (void)f;
    return g_inner->prog(g_inner, addr, buf, len);
}
static int w_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    (void)f;
    return g_inner->erase(g_inner, addr, len);
}

static int t_send(void *ctx, const uint8_t *p, size_t n)
{
    term *t = ctx;
    ck_assert_uint_le(t->sent_len + n, sizeof t->sent);
    memcpy(t->sent + t->sent_len, p, n);
    t->sent_len += n;
    return (int)n;
}

static uint32_t t_now(void *ctx)
{
    return ((term *)ctx)->clock;
}

static term *term_new_on(int wrap);

static term *term_new(void)
{
    return term_new_on(0);
}

static term *term_new_on(int wrap)
{
    term *t = calloc(1, sizeof *t);
    otaup_simflash_options o;
    uint8_t *img;
    size_t wsz;
    ck_assert_ptr_nonnull(t);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, S, NSECT, 8);
    ck_assert_int_eq(otaup_simflash_new(&o, &t->fl), 0);
    img = malloc(NSECT * S);
    ck_assert_ptr_nonnull(img);
    memset(img, 0xFF, NSECT * S);
    tp_fill_random(img, 3 * S, 7);
    tp_fill_random(img + USER, USER_LEN, 8);
    ck_assert_int_eq(otaup_simflash_load(t->fl, 0, img, NSECT * S), 0);
    free(img);
    t->cfg.flash = otaup_simflash_flash(t->fl);
    if (wrap) {
        g_inner = t->cfg.flash;
        g_wrap = *g_inner;
        g_wrap.context = NULL;
        g_wrap.read = w_read;
        g_wrap.prog = w_prog;
        g_wrap.erase = w_erase;
        g_wrap.sync = NULL;
        g_fail_reads = 0;
        t->cfg.flash = &g_wrap;
    }
    tp_apply_config_backup(&t->cfg, USER_LEN, TERM_FRAME, "T-EDGE");
    t->cfg.retransmit_ms = RTO;
    t->cfg.link.ctx = t;
    t->cfg.link.send = t_send;
    t->cfg.now_ms = t_now;
    t->cfg.clock_ctx = t;
    wsz = otaup_apply_work_size(TERM_FRAME, 512, S, 32, 11);
    ck_assert_uint_gt(wsz, 0);
    t->work = malloc(wsz);
    t->cfg.work = t->work;
    t->cfg.work_size = wsz;
    ck_assert_int_eq(otaup_apply_init(&t->ap, &t->cfg), 0);
    return t;
}

static void term_free(term *t)
{
    free(t->work);
    otaup_simflash_free(t->fl);
    free(t);
}

static const uint8_t *region(term *t)
{
    return otaup_simflash_data(t->fl) + USER;
}

/* The frames the terminal sent since the last take (ACKs skipped). */
static unsigned take(term *t)
{
    otaup_decoder d;
    static uint8_t db[1024];
    size_t pos = 0;
    unsigned n = 0;
    otaup_decoder_init(&d, db, sizeof db, 1024);
    while (pos < t->sent_len) {
        otaup_frame fr;
        otaup_msg m;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, t->sent + pos, t->sent_len - pos, &used, &fr);
        pos += used;
        if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
        ck_assert_int_eq(ev, OTAUP_DEC_FRAME);
        if (fr.type == OTAUP_MSG_ACK || fr.type == OTAUP_MSG_PROGRESS) {
            continue;
        }
        ck_assert_uint_lt(n, sizeof t->f / sizeof t->f[0]);
        memset(&t->f[n], 0, sizeof t->f[n]);
        t->f[n].type = fr.type;
        t->f[n].seq = fr.seq;
        if (fr.type == OTAUP_MSG_BACKUP_DATA) {
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            t->f[n].offset = m.u.rdata.offset;
            t->f[n].len = m.u.rdata.data.len;
            t->f[n].flags = m.u.rdata.flags;
            memcpy(t->f[n].data, m.u.rdata.data.data, m.u.rdata.data.len);
            memcpy(t->f[n].hash, m.u.rdata.hash.bytes, 8);
        } else if (fr.type == OTAUP_MSG_NACK) {
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            t->f[n].nack = m.u.nack.error;
        }
        n++;
    }
    t->sent_len = 0;
    return n;
}

static void feed(term *t, const otaup_msg *m, uint32_t seq)
{
    uint8_t b[128];
    int n = otaup_msg_encode_frame(m, 0, seq, 1024, b, sizeof b);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&t->ap, b, (size_t)n), 0);
}

static void ack(term *t, uint32_t seq, uint16_t window)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = seq;
    m.u.ack.window = window;
    feed(t, &m, t->srv_seq);
}

static void nack(term *t, uint32_t seq, int32_t err, uint32_t expected)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_NACK;
    m.u.nack.seq = seq;
    m.u.nack.error = err;
    m.u.nack.expected = expected;
    feed(t, &m, t->srv_seq);
}

/* the server's HELLO with sequence number seq */
static void hello_at(term *t, uint16_t window, uint32_t seq)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 1024;
    m.u.hello.window = window;
    feed(t, &m, seq);
}

static void hello(term *t, uint16_t window)
{
    hello_at(t, window, t->srv_seq++);
}

/* Connected: HELLO both ways, INFO acknowledged fragment by fragment. The
 * terminal's next seq is then moved to `seq0` (as after 2^32 - x frames). */
static void connect_to(term *t, uint16_t window, uint32_t seq0)
{
    unsigned i;
    ck_assert_int_eq(otaup_apply_connect(&t->ap), 0);
    hello(t, window);
    for (i = 0; i < 16 && t->ap.tx_seq != t->ap.tx_pending; i++) {
        ack(t, t->ap.tx_seq - 1u, window);
    }
    ck_assert_uint_eq(t->ap.tx_seq, t->ap.tx_pending);
    t->ap.tx_seq = t->ap.tx_pending = seq0;
    (void)take(t);
}

static void request(term *t, uint32_t offset, uint32_t max_chunk)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.offset = offset;
    m.u.backup_req.max_chunk = max_chunk;
    feed(t, &m, t->srv_seq++);
}

/* chunk frames i of the last take: offsets from `off` by `chunk`, seqs from `seq` */
static void check_run(term *t, unsigned n, uint32_t seq, uint32_t off, uint32_t chunk)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(t->f[i].type, OTAUP_MSG_BACKUP_DATA);
        ck_assert_uint_eq(t->f[i].seq, seq + i);
        ck_assert_uint_eq(t->f[i].offset, off + i * chunk);
        ck_assert_int_eq(memcmp(t->f[i].data, region(t) + t->f[i].offset, t->f[i].len), 0);
    }
}

/*
 * An in-order receiver until the LAST chunk: executes chunk `expected`,
 * answers a gap with one NACK(SEQ), acknowledges after each batch with
 * `window`. Checks the bytes and the hash against the flash. Every
 * `drop_every`-th chunk (0: none) is lost the first time it is sent.
 */
static void receive_all(term *t, uint32_t seq0, uint32_t offset, uint16_t window, unsigned drop_every,
                        unsigned limit)
{
    uint8_t *got = calloc(1, USER_LEN);
    uint32_t expected = seq0, have = offset;
    unsigned rounds, i, seen = 0;
    int last = 0, nacked = 0;
    uint8_t h[8];
    ck_assert_ptr_nonnull(got);
    for (rounds = 0; !last && rounds < limit; rounds++) {
        unsigned n = take(t);
        if (n == 0) {
            t->clock += RTO;
            ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
            continue;
        }
        for (i = 0; i < n && !last; i++) {
            const out_frame *f = &t->f[i];
            ck_assert_uint_eq(f->type, OTAUP_MSG_BACKUP_DATA);
            ck_assert_uint_le(f->seq - t->ap.tx_pending, (uint32_t)window - 1u); /* within the window */
            if (drop_every && ++seen % drop_every == 0) {
                continue;
            }
            if (f->seq != expected) {
                if (!nacked && f->seq - expected < 0x80000000u) {
                    nacked = 1;
                    nack(t, f->seq, OTAUP_E_SEQ, expected);
                }
                continue;
            }
            nacked = 0;
            ck_assert_uint_eq(f->offset, have);
            memcpy(got + have, f->data, f->len);
            have += f->len;
            expected++;
            if (f->flags & OTAUP_RDATA_LAST) {
                last = 1;
                memcpy(h, f->hash, 8);
            }
        }
        if (expected != seq0) {
            ack(t, expected - 1u, window);
        }
    }
    ck_assert_msg(last, "the stream did not end in %u rounds", limit);
    ck_assert_uint_eq(have, USER_LEN);
    ck_assert_int_eq(memcmp(got + offset, region(t) + offset, USER_LEN - offset), 0);
    {
        XXH64_hash_t x = XXH3_64bits(region(t), USER_LEN);
        uint8_t want[8];
        for (i = 0; i < 8; i++) {
            want[i] = (uint8_t)(x >> (8 * i));
        }
        ck_assert_int_eq(memcmp(h, want, 8), 0);
    }
    ck_assert_uint_eq(t->ap.tx_seq, t->ap.tx_pending); /* every chunk acknowledged */
    free(got);
}

/* An ACK for a seq the terminal never sent acknowledges nothing: the
 * chunks in flight stay outstanding (they go again at the timeout) and
 * no chunk beyond the window goes out. The same for a NACK whose
 * `expected` is past everything sent. */
START_TEST(test_ack_never_sent)
{
    term *t = term_new();
    uint32_t a;
    connect_to(t, 4, 100);
    request(t, 0, 100);
    ck_assert_uint_eq(take(t), 4);
    a = t->f[0].seq;
    check_run(t, 4, a, 0, 100);
    ack(t, a + 100u, 4); /* never sent */
    ck_assert_uint_eq(take(t), 0);
    ck_assert_uint_eq(t->ap.tx_pending, a);
    nack(t, a + 50u, OTAUP_E_SEQ, a + 60u); /* never sent either */
    ck_assert_uint_eq(take(t), 0);
    ck_assert_uint_eq(t->ap.tx_pending, a);
    ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
    ck_assert_uint_eq(take(t), 0); /* no early resend */
    t->clock += RTO;
    ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
    ck_assert_uint_eq(take(t), 4); /* go-back from the oldest, the same chunks */
    check_run(t, 4, a, 0, 100);
    ack(t, a + 1u, 4); /* two acknowledged: two more */
    ck_assert_uint_eq(take(t), 2);
    check_run(t, 2, a + 4u, 400, 100);
    receive_all(t, a + 2u, 200, 4, 0, 4000);
    term_free(t);
}
END_TEST

/* The window shrinks (an ACK says 1) with 3 chunks in flight: nothing new
 * goes out, and the go-back resend stays within the new window. */
START_TEST(test_window_shrinks)
{
    term *t = term_new();
    uint32_t a;
    connect_to(t, 4, 0);
    request(t, 0, 100);
    ck_assert_uint_eq(take(t), 4);
    a = t->f[0].seq;
    ack(t, a, 1);
    ck_assert_uint_eq(take(t), 0);
    t->clock += RTO;
    ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
    ck_assert_uint_eq(take(t), 1);
    check_run(t, 1, a + 1u, 100, 100);
    /* it grows again: up to 4 in flight */
    ack(t, a + 1u, 4);
    ck_assert_uint_eq(take(t), 2);
    check_run(t, 2, a + 4u, 400, 100);
    receive_all(t, a + 2u, 200, 4, 0, 4000);
    term_free(t);
}
END_TEST

/* The seq wraps past 2^32 in the middle of the window, with losses (go-back
 * across the wrap): the region arrives whole, in order. */
START_TEST(test_seq_wrap)
{
    term *t = term_new();
    connect_to(t, 16, 0xFFFFFFF9u);
    request(t, 0, 4096);
    receive_all(t, 0xFFFFFFF9u, 0, 16, 5, 20000);
    term_free(t);
}
END_TEST

/* An offset that is no multiple of the chunk, the smallest chunk and one
 * larger than any frame: whole and in order every time. */
START_TEST(test_odd_requests)
{
    static const uint32_t offs[] = { 1, 4095, USER_LEN - 1u, 777 };
    static const uint32_t chunks[] = { 1, 0xFFFFFFFFu, 3, 100 };
    term *t = term_new();
    uint32_t seq0;
    connect_to(t, 16, 0);
    seq0 = t->ap.tx_seq;
    request(t, offs[_i], chunks[_i]);
    receive_all(t, seq0, offs[_i], 16, _i == 3 ? 7 : 0, 200000);
    term_free(t);
}
END_TEST

/* The server's HELLO again while chunks are in flight (sent again within
 * the connection): a duplicate, answered without effect (the numbering
 * and the window it gave stay), and the stream goes on to its end. */
START_TEST(test_hello_mid_stream)
{
    term *t = term_new();
    uint32_t a, srv;
    connect_to(t, 4, 0);
    request(t, 0, 200);
    ck_assert_uint_eq(take(t), 4);
    a = t->f[0].seq;
    srv = t->srv_seq;
    hello_at(t, 2, 0);
    ck_assert_uint_eq(take(t), 0); /* its ACK only */
    ck_assert_uint_eq(t->ap.tx_pending, a);
    ck_assert_uint_eq(t->ap.rx_last, srv - 1u);
    t->clock += RTO;
    ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
    ck_assert_uint_eq(take(t), 4); /* the same window, sent again */
    check_run(t, 4, a, 0, 200);
    ack(t, a + 1u, 4);
    ck_assert_uint_eq(take(t), 2); /* a + 4 and a + 5 */
    check_run(t, 2, a + 4u, 800, 200);
    ack(t, a + 5u, 4);
    receive_all(t, a + 6u, 1200, 4, 0, 4000);
    term_free(t);
}
END_TEST

/* Requests the applier refuses: an offset past the region, an unknown
 * region, max_chunk 0 (the decoder's OTAUP_E_MSG_FIELD). Each gets its
 * NACK and no chunk; a good request after them works. A region of
 * length 0 is refused at init. */
START_TEST(test_bad_requests)
{
    term *t = term_new();
    otaup_msg m;
    otaup_apply probe;
    otaup_apply_config c;
    unsigned n;
    uint32_t seq0;
    connect_to(t, 4, 0);
    request(t, USER_LEN + 1u, 100);
    ck_assert_uint_eq(take(t), 1);
    ck_assert_uint_eq(t->f[0].type, OTAUP_MSG_NACK);
    ck_assert_int_eq(t->f[0].nack, OTAUP_E_RANGE);
    t->srv_seq--; /* refused: not executed, the next frame reuses its number */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 9;
    m.u.backup_req.max_chunk = 100;
    feed(t, &m, t->srv_seq);
    ck_assert_uint_eq(take(t), 1);
    ck_assert_int_eq(t->f[0].nack, OTAUP_E_REGION);
    {
        /* max_chunk 0 cannot be encoded by the codec: the frame is made by hand */
        uint8_t p[12] = { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, fr[64];
        int k = otaup_frame_encode(OTAUP_MSG_BACKUP_REQ, 0, t->srv_seq, p, sizeof p, fr, sizeof fr);
        ck_assert_int_gt(k, 0);
        ck_assert_int_eq(otaup_apply_feed(&t->ap, fr, (size_t)k), 0);
        n = take(t);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(t->f[0].nack, OTAUP_E_MSG_FIELD);
    }
    seq0 = t->ap.tx_seq;
    ck_assert_uint_eq(seq0, t->ap.tx_pending);
    request(t, USER_LEN - 300u, 100);
    receive_all(t, seq0, USER_LEN - 300u, 4, 0, 100);
    c = t->cfg;
    c.regions[0].len = 0;
    ck_assert_int_eq(otaup_apply_init(&probe, &c), OTAUP_E_REGION);
    term_free(t);
}
END_TEST

/* A flash read that fails in the middle of the stream leaves no chunk in
 * flight while the stream still runs: a CONSENT the integrator asks for
 * then must wait (OTAUP_E_AGAIN), not be queued in the message buffer the
 * next chunk is built in (it would go out later with chunk bytes in it).
 * Once the stream has ended, the CONSENT goes out intact. */
START_TEST(test_consent_during_stream)
{
    term *t = term_new_on(1);
    otaup_msg m;
    uint8_t b[128];
    unsigned n, i, rounds;
    int k, last = 0, consent = 0;
    uint32_t seq0;
    connect_to(t, 2, 0);
    seq0 = t->ap.tx_seq;
    request(t, 0, 200);
    n = take(t);
    ck_assert_uint_eq(n, 2);
    check_run(t, n, seq0, 0, 200);
    /* both acknowledged while reads fail: the next chunk cannot be built */
    g_fail_reads = 1;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = seq0 + 1u;
    m.u.ack.window = 2;
    k = otaup_msg_encode_frame(&m, 0, t->srv_seq, 1024, b, sizeof b);
    ck_assert_int_gt(k, 0);
    (void)otaup_apply_feed(&t->ap, b, (size_t)k); /* the read error goes to the caller or waits for the timer */
    ck_assert_uint_eq(t->ap.tx_seq, t->ap.tx_pending); /* nothing in flight */
    ck_assert_uint_eq(take(t), 0);
    ck_assert_int_eq(otaup_apply_consent(&t->ap, 1, 0), OTAUP_E_AGAIN);
    /* the flash recovers: the stream goes on from chunk 2 and ends */
    g_fail_reads = 0;
    for (rounds = 0; rounds < 400 && !consent; rounds++) {
        if (last && otaup_apply_consent(&t->ap, 1, 0) == 0) {
            consent = 1;
            break;
        }
        t->clock += RTO;
        ck_assert_int_eq(otaup_apply_poll(&t->ap), 0);
        n = take(t);
        for (i = 0; i < n; i++) {
            ck_assert_uint_eq(t->f[i].type, OTAUP_MSG_BACKUP_DATA);
            ck_assert_uint_eq(t->f[i].offset, (t->f[i].seq - seq0) * 200u);
            ck_assert_int_eq(memcmp(t->f[i].data, region(t) + t->f[i].offset, t->f[i].len), 0);
            if (t->f[i].flags & OTAUP_RDATA_LAST) {
                last = 1;
            }
        }
        if (n > 0) {
            ack(t, t->f[n - 1].seq, 2);
        }
    }
    ck_assert_msg(consent, "the CONSENT was never accepted after the stream (last %d, rounds %u, tx_bk %d)", last, rounds, (int)t->ap.tx_bk);
    /* the CONSENT frame itself */
    {
        otaup_decoder d;
        static uint8_t db[1024];
        otaup_frame fr;
        size_t used = 0;
        otaup_decoder_init(&d, db, sizeof db, 1024);
        ck_assert_int_eq(otaup_decoder_feed(&d, t->sent, t->sent_len, &used, &fr), OTAUP_DEC_FRAME);
        ck_assert_uint_eq(fr.type, OTAUP_MSG_CONSENT);
        ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
        ck_assert_uint_eq(m.u.consent.decision, 1);
    }
    term_free(t);
}
END_TEST

/* A flash that stays unreadable: the stalled stream is retried at the
 * retransmission pace and given up after OTAUP_APPLY_RETRIES tries
 * (OTAUP_E_RETRIES, disconnected), like a frame never acknowledged. */
START_TEST(test_stream_read_error_bounded)
{
    term *t = term_new_on(1);
    otaup_msg m;
    uint8_t b[128];
    unsigned rounds;
    int k, rc = 0;
    uint32_t seq0;
    connect_to(t, 2, 0);
    seq0 = t->ap.tx_seq;
    request(t, 0, 200);
    ck_assert_uint_eq(take(t), 2);
    g_fail_reads = 1;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = seq0 + 1u;
    m.u.ack.window = 2;
    k = otaup_msg_encode_frame(&m, 0, t->srv_seq, 1024, b, sizeof b);
    ck_assert_int_gt(k, 0);
    (void)otaup_apply_feed(&t->ap, b, (size_t)k);
    for (rounds = 0; rounds < 3u * OTAUP_APPLY_RETRIES && rc != OTAUP_E_RETRIES; rounds++) {
        t->clock += RTO;
        rc = otaup_apply_poll(&t->ap);
        ck_assert(rc == OTAUP_E_FLASH_READ || rc == OTAUP_E_RETRIES);
    }
    ck_assert_int_eq(rc, OTAUP_E_RETRIES);
    /* the ACK above was heard before the first try: that one counts less */
    ck_assert_uint_le(rounds, OTAUP_APPLY_RETRIES + 2u);
    ck_assert_uint_eq(take(t), 0); /* nothing was sent */
    term_free(t);
}
END_TEST

/* The link gives up on a frame never acknowledged after
 * OTAUP_APPLY_RETRIES retransmissions while the server is silent, but
 * only after 4 times as many while frames from it keep coming (the link
 * is alive: the frame or its ACK is lost again and again, as on a very
 * lossy link; it used to give up after 8 there too, and reconnect). */
START_TEST(test_retries_while_heard)
{
    unsigned heard, rounds, sent;
    for (heard = 0; heard < 2; heard++) {
        term *t = term_new();
        int rc = 0;
        connect_to(t, 1, 10);
        request(t, 0, 200);
        ck_assert_uint_eq(take(t), 1); /* chunk seq 10, the window is 1 */
        for (rounds = 0, sent = 0; rounds < 8u * OTAUP_APPLY_RETRIES && rc != OTAUP_E_RETRIES; rounds++) {
            if (heard) {
                ack(t, 9, 1); /* nothing new acknowledged, but the server is there */
            }
            t->clock += RTO;
            rc = otaup_apply_poll(&t->ap);
            ck_assert(rc == 0 || rc == OTAUP_E_RETRIES);
            if (rc == 0) {
                ck_assert_uint_eq(take(t), 1);
                ck_assert_uint_eq(t->f[0].seq, 10);
                sent++;
            }
        }
        ck_assert_int_eq(rc, OTAUP_E_RETRIES);
        ck_assert_uint_eq(sent, heard ? 4u * OTAUP_APPLY_RETRIES : OTAUP_APPLY_RETRIES);
        term_free(t);
    }
}
END_TEST

/* The server's HELLO sent again (its ACK was lost, its timer fired)
 * reaches the terminal after the frames that followed it were executed
 * (on a lossy link the server sends HELLO, NOTIFY and BACKUP_REQ at once
 * and resends them all). Within a connection it is a duplicate, answered
 * and not executed: the terminal keeps its numbering, so the BACKUP_REQ
 * sent again with it is a duplicate too (an ACK, not a refusal
 * NACK(AGAIN) of a request it takes for new while its own stream is in
 * flight), and the stream goes on. It used to start the numbering over:
 * the server, whose BACKUP_REQ had been acknowledged, never sent it
 * again, and the next frame met a gap the server could not fill. */
START_TEST(test_hello_again_is_duplicate)
{
    term *t = term_new();
    otaup_msg m;
    uint32_t req_seq;
    unsigned n, i;
    connect_to(t, 2, 10);
    req_seq = t->srv_seq;
    request(t, 0, 200);
    ck_assert_uint_eq(take(t), 2); /* chunks 10 and 11 (window 2) */
    hello_at(t, 2, 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.offset = 0;
    m.u.backup_req.max_chunk = 200;
    feed(t, &m, req_seq);
    n = take(t);
    for (i = 0; i < n; i++) {
        ck_assert_msg(t->f[i].type != OTAUP_MSG_NACK, "frame %u: NACK %d", i, (int)t->f[i].nack);
    }
    /* the next frame of the server executes in order: no gap */
    ack(t, 11, 2);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_PING;
    feed(t, &m, t->srv_seq++);
    n = take(t);
    for (i = 0; i < n; i++) {
        ck_assert_msg(t->f[i].type != OTAUP_MSG_NACK, "after: frame %u: NACK %d", i, (int)t->f[i].nack);
    }
    ck_assert_uint_eq(t->ap.rx_last, t->srv_seq - 1u);
    /* and the stream went on past the two first chunks */
    ck_assert_uint_gt(t->ap.tx_seq, 12);
    term_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *su = suite_create("apply_backup_edge");
    TCase *tc = tcase_create("edge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ack_never_sent);
    tcase_add_test(tc, test_window_shrinks);
    tcase_add_test(tc, test_seq_wrap);
    tcase_add_loop_test(tc, test_odd_requests, 0, 4);
    tcase_add_test(tc, test_hello_mid_stream);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_consent_during_stream);
    tcase_add_test(tc, test_stream_read_error_bounded);
    tcase_add_test(tc, test_retries_while_heard);
    tcase_add_test(tc, test_hello_again_is_duplicate);
    suite_add_tcase(su, tc);
    return su;
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
