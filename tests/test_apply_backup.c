/*
 * The applier's windowed backup upload (apply.h, protocol.md §4): a
 * user-data region goes up in BACKUP_DATA chunks, up to the server's
 * window in flight, each rebuilt from flash when it is resent.
 *
 * A small server on a simulated link with latency (deterministic clock)
 * asks for the region and receives it with the receiver rules of §4
 * (in-order execution, duplicates answered, one NACK(OTAUP_E_SEQ) per
 * gap); the link drops, duplicates, delays (reorders) and corrupts
 * frames. Every frame the terminal sends is checked as it leaves:
 *  - a retransmission is byte-identical to the first transmission of its
 *    seq (rebuilt from flash, not buffered);
 *  - a go-back resend starts at the oldest chunk not yet acknowledged (as
 *    the ACKs and NACKs delivered to the terminal say);
 *  - no chunk is sent beyond the advertised window;
 * and at the end the server holds the exact region bytes, in order, with
 * the terminal's hash.
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
#include "otaup/sign.h"
#include "util/testplan.h"

#define S 4096u
/* slot 0..3, scratch 4, journal 5..6, updater 7, user data 8..23 (64 KiB) */
#define USER (8 * S) /* the user-data region of tp_apply_config_backup() */
#define USER_LEN (16 * S)
#define NSECT 24u
#define TERM_FRAME 256u
#define SRV_RTO 300u
#define MAXSEQ 4096u

typedef struct flight {
    uint64_t at;
    int to_term;
    int corrupted;
    uint8_t *p;
    size_t n;
} flight;

typedef struct bk_faults {
    unsigned drop_pct, corrupt_pct, dup_pct, reorder_pct;
    unsigned latency_ms; /* one way */
    uint16_t window;     /* the server's advertised window */
    uint32_t max_chunk;
    uint32_t offset;     /* BACKUP_REQ offset */
    uint64_t seed;
    int sealed;          /* the terminal has a device key: a sealed stream */
} bk_faults;

typedef struct bk_result {
    int done;                 /* the server holds the region with a matching hash */
    uint64_t done_ms;         /* simulated time when the LAST chunk executed */
    unsigned chunks;          /* BACKUP_DATA executed by the server */
    unsigned sent, resent;    /* terminal BACKUP_DATA frames: first transmissions, retransmissions */
    unsigned max_out;         /* most chunks outstanding at a send */
    unsigned window_viol, ident_viol, goback_viol, order_viol;
    unsigned nacks;           /* NACK(SEQ) the server sent */
    int poll_err;             /* first error otaup_apply_poll returned */
} bk_result;

typedef struct sim {
    bk_faults f;
    uint64_t rng, clock;
    flight *q;
    size_t nq, capq;
    /* the terminal */
    otaup_simflash *fl;
    otaup_apply ap;
    otaup_apply_config cfg;
    uint8_t *work;
    uint8_t *user;
    /* what left the terminal */
    uint8_t *first[MAXSEQ];
    size_t first_len[MAXSEQ];
    uint32_t high;         /* one past the highest seq sent */
    uint32_t acked_next;   /* ACK/NACK delivered to the terminal: it knows every seq below is executed */
    uint32_t last_sent;
    uint16_t adv_window;   /* the window the terminal was last told */
    /* the server */
    otaup_decoder dec;
    uint8_t decbuf[1024];
    otaup_reasm ra;
    uint8_t rabuf[2048];
    uint32_t rx_last;
    int rx_any, gap_nacked;
    uint32_t tx_seq;
    uint8_t pend[128];
    size_t pend_len;
    uint32_t pend_seq;
    uint64_t pend_time;
    int info_in, req_sent;
    uint8_t got[USER_LEN];
    uint32_t got_len;
    bk_result *r;
#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
    /* a sealed stream: its header and each chunk's tag (the ciphertext in got) */
    otaup_crypto crypto;
    uint8_t key[32];
    uint8_t hdr[OTAUP_SEAL_HEADER_LEN];
    uint8_t tags[USER_LEN];
    unsigned ntags;
#endif
} sim;

static uint64_t rnd(sim *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put(sim *s, int to_term, const uint8_t *p, size_t n, uint64_t at, int corrupt)
{
    flight *f;
    if (s->nq == s->capq) {
        s->capq = s->capq ? 2 * s->capq : 256;
        s->q = realloc(s->q, s->capq * sizeof *s->q);
        ck_assert_ptr_nonnull(s->q);
    }
    f = &s->q[s->nq++];
    f->at = at;
    f->to_term = to_term;
    f->corrupted = 0;
    f->p = malloc(n);
    f->n = n;
    memcpy(f->p, p, n);
    if (corrupt) {
        uint64_t r = rnd(s);
        f->p[r % n] ^= (uint8_t)(1u << ((r >> 32) & 7));
        f->corrupted = 1;
    }
}

/* into the link, with its faults */
static void lossy(sim *s, int to_term, const uint8_t *p, size_t n)
{
    uint64_t r = rnd(s), at = s->clock + s->f.latency_ms;
    if (r % 100 < s->f.drop_pct) {
        return;
    }
    if ((r >> 24) % 100 < s->f.reorder_pct) {
        at += 1 + (r >> 40) % (s->f.latency_ms + 20); /* arrives after frames sent later */
    }
    put(s, to_term, p, n, at, (r >> 8) % 100 < s->f.corrupt_pct);
    if ((r >> 16) % 100 < s->f.dup_pct) {
        put(s, to_term, p, n, at + 1 + (r >> 48) % 5, 0);
    }
}

/* ---- the terminal's side of the link: every frame is checked as it leaves ---- */

static int term_send(void *ctx, const uint8_t *p, size_t n)
{
    sim *s = ctx;
    uint8_t type = p[3];
    uint32_t seq = le32(p + 8);
    if (type != OTAUP_MSG_ACK && type != OTAUP_MSG_NACK && type != OTAUP_MSG_PROGRESS) {
        ck_assert_uint_lt(seq, MAXSEQ);
        if (seq >= s->high) {
            ck_assert_uint_eq(seq, s->high); /* new frames go in order */
            s->first[seq] = malloc(n);
            memcpy(s->first[seq], p, n);
            s->first_len[seq] = n;
            s->high = seq + 1;
            if (type == OTAUP_MSG_BACKUP_DATA) {
                s->r->sent++;
            }
        } else {
            if (n != s->first_len[seq] || memcmp(p, s->first[seq], n) != 0) {
                s->r->ident_viol++;
            }
            /* a go-back run starts at the oldest frame not acknowledged */
            if (seq != s->last_sent + 1 && seq != s->acked_next) {
                s->r->goback_viol++;
            }
            if (type == OTAUP_MSG_BACKUP_DATA) {
                s->r->resent++;
            }
        }
        if (type == OTAUP_MSG_BACKUP_DATA) {
            uint32_t out = seq - s->acked_next + 1u;
            uint32_t w = s->adv_window < OTAUP_CONFIG_BACKUP_WINDOW ? s->adv_window : OTAUP_CONFIG_BACKUP_WINDOW;
            if (out > s->r->max_out) {
                s->r->max_out = out;
            }
            if (out > (w ? w : 1u)) {
                s->r->window_viol++;
            }
        }
        s->last_sent = seq;
    }
    lossy(s, 0, p, n);
    return (int)n;
}

static uint32_t term_now(void *ctx)
{
    return (uint32_t)((sim *)ctx)->clock;
}

/* what an intact ACK or NACK tells the terminal */
static void seen_by_term(sim *s, const uint8_t *p, size_t n)
{
    otaup_frame fr;
    otaup_msg m;
    uint32_t next;
    if (otaup_frame_decode(p, n, TERM_FRAME, &fr) != 0 || otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m) != 0) {
        return;
    }
    if (fr.type == OTAUP_MSG_ACK) {
        next = m.u.ack.seq + 1u;
        s->adv_window = m.u.ack.window;
    } else if (fr.type == OTAUP_MSG_NACK) {
        next = m.u.nack.expected;
    } else if (fr.type == OTAUP_MSG_HELLO) {
        s->adv_window = m.u.hello.window;
        return;
    } else {
        return;
    }
    if ((int32_t)(next - s->acked_next) > 0 && (int32_t)(next - s->high) <= 0) {
        s->acked_next = next;
    }
}

/* ---- the server ------------------------------------------------------------- */

static void srv_ctl(sim *s, const otaup_msg *m)
{
    uint8_t b[64];
    int n = otaup_msg_encode_frame(m, 0, s->tx_seq, 1024, b, sizeof b);
    ck_assert_int_gt(n, 0);
    lossy(s, 1, b, (size_t)n);
}

static void srv_ack(sim *s)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = s->rx_last;
    m.u.ack.window = s->f.window;
    srv_ctl(s, &m);
}

static void srv_send(sim *s, const otaup_msg *m)
{
    int n = otaup_msg_encode_frame(m, 0, s->tx_seq, 1024, s->pend, sizeof s->pend);
    ck_assert_int_gt(n, 0);
    s->pend_len = (size_t)n;
    s->pend_seq = s->tx_seq++;
    s->pend_time = s->clock;
    lossy(s, 1, s->pend, s->pend_len);
}

static void srv_next(sim *s)
{
    otaup_msg m;
    if (s->pend_len != 0 || !s->info_in || s->req_sent) {
        return;
    }
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.offset = s->f.offset;
    m.u.backup_req.max_chunk = s->f.max_chunk;
    s->got_len = s->f.offset;
    memcpy(s->got, s->user, s->f.offset); /* what the server had before the request */
    s->req_sent = 1;
    srv_send(s, &m);
}

#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
/* BACKUP_DATA of a sealed stream: kept as it comes; at the end opened with
 * the device key (which the test knows), and done if the plain bytes are
 * the region's. */
static void srv_sealed(sim *s, const otaup_msg_region_data *d)
{
    const uint8_t *p = d->data.data;
    uint32_t n = d->data.len, chunk, k;
    otaup_seal seal;
    if (!(d->flags & OTAUP_RDATA_TAG) || d->offset != s->got_len) {
        s->r->order_viol++;
        return;
    }
    if (d->offset == 0) {
        ck_assert_uint_ge(n, OTAUP_SEAL_HEADER_LEN);
        memcpy(s->hdr, p, OTAUP_SEAL_HEADER_LEN);
        p += OTAUP_SEAL_HEADER_LEN;
        n -= OTAUP_SEAL_HEADER_LEN;
        s->ntags = 0;
    }
    if (d->offset + n > USER_LEN || s->ntags >= USER_LEN / 16u) {
        s->r->order_viol++;
        return;
    }
    memcpy(s->got + d->offset, p, n);
    memcpy(s->tags + 16u * s->ntags++, d->tag, 16);
    s->got_len += n;
    if (!(d->flags & OTAUP_RDATA_LAST) || s->got_len != USER_LEN || s->r->done) {
        return;
    }
    ck_assert_int_eq(otaup_seal_open_begin(&seal, &s->crypto, s->key, 1, s->hdr), 0);
    chunk = (uint32_t)s->hdr[6] | (uint32_t)s->hdr[7] << 8;
    for (k = 0; k < s->ntags; k++) {
        uint32_t len = USER_LEN - k * chunk < chunk ? USER_LEN - k * chunk : chunk;
        if (otaup_seal_open_detached(&seal, s->got + k * chunk, len, s->tags + 16u * k, s->got + k * chunk) < 0) {
            return;
        }
    }
    if (otaup_seal_complete(&seal)) {
        s->r->done = 1;
        s->r->done_ms = s->clock;
    }
}
#endif

static void srv_exec(sim *s, uint8_t type, const uint8_t *p, size_t n)
{
    otaup_msg m;
    ck_assert_int_eq(otaup_msg_decode(type, p, n, &m), 0);
    if (type == OTAUP_MSG_INFO) {
        s->info_in = 1;
        srv_next(s);
    } else if (type == OTAUP_MSG_BACKUP_DATA) {
        const otaup_msg_region_data *d = &m.u.rdata;
        s->r->chunks++;
#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
        if (s->f.sealed) {
            srv_sealed(s, d);
            return;
        }
#endif
        if (d->offset != s->got_len || d->offset + d->data.len > USER_LEN) {
            s->r->order_viol++;
            return;
        }
        memcpy(s->got + d->offset, d->data.data, d->data.len);
        s->got_len += d->data.len;
        if (d->flags & OTAUP_RDATA_LAST) {
            uint64_t h = XXH3_64bits(s->got, USER_LEN);
            uint8_t hb[8];
            int i;
            for (i = 0; i < 8; i++) {
                hb[i] = (uint8_t)(h >> (8 * i));
            }
            if (s->got_len == USER_LEN && (d->flags & OTAUP_RDATA_HASH) && memcmp(hb, d->hash.bytes, 8) == 0 &&
                !s->r->done) {
                s->r->done = 1;
                s->r->done_ms = s->clock;
            }
        }
    }
}

static void srv_frame(sim *s, const otaup_frame *fr)
{
    otaup_msg m;
    uint32_t expected;
    if (fr->type == OTAUP_MSG_ACK || fr->type == OTAUP_MSG_NACK) {
        ck_assert_int_eq(otaup_msg_decode(fr->type, fr->payload, fr->payload_len, &m), 0);
        if (fr->type == OTAUP_MSG_ACK && s->pend_len && (int32_t)(m.u.ack.seq - s->pend_seq) >= 0) {
            s->pend_len = 0;
            srv_next(s);
        }
        return;
    }
    if (fr->type == OTAUP_MSG_PROGRESS) {
        return;
    }
    expected = s->rx_any ? s->rx_last + 1u : 0u;
    if (s->rx_any && (int32_t)(fr->seq - s->rx_last) <= 0) {
        srv_ack(s); /* duplicate */
        return;
    }
    if (fr->seq != expected) {
        if (!s->gap_nacked) {
            memset(&m, 0, sizeof m);
            m.type = OTAUP_MSG_NACK;
            m.u.nack.seq = fr->seq;
            m.u.nack.error = OTAUP_E_SEQ;
            m.u.nack.expected = expected;
            s->gap_nacked = 1;
            s->r->nacks++;
            srv_ctl(s, &m);
        }
        return;
    }
    s->gap_nacked = 0;
    s->rx_last = fr->seq;
    s->rx_any = 1;
    if (otaup_msg_type_fragmentable(fr->type)) {
        const uint8_t *msg;
        size_t len;
        if (otaup_reasm_add(&s->ra, fr, &msg, &len) == 1) {
            srv_exec(s, fr->type, msg, len);
        }
    } else {
        srv_exec(s, fr->type, fr->payload, fr->payload_len);
    }
    srv_ack(s);
}

/* ---- the run ----------------------------------------------------------------- */

static void sim_make(sim *s, const bk_faults *f, bk_result *r)
{
    otaup_simflash_options o;
    otaup_geometry geo;
    size_t wsz;
    uint8_t *img;
    memset(s, 0, sizeof *s);
    memset(r, 0, sizeof *r);
    s->f = *f;
    s->r = r;
    s->rng = f->seed;
    s->adv_window = 1;
    otaup_geometry_uniform(&geo, 0, S, NSECT, 8);
    otaup_simflash_options_init(&o);
    o.geo = geo;
    ck_assert_int_eq(otaup_simflash_new(&o, &s->fl), 0);
    img = malloc(NSECT * S);
    memset(img, 0xFF, NSECT * S);
    tp_fill_random(img, 3 * S, f->seed + 1);
    tp_fill_random(img + USER, USER_LEN, f->seed + 2);
    ck_assert_int_eq(otaup_simflash_load(s->fl, 0, img, NSECT * S), 0);
    free(img);
    s->user = otaup_simflash_data(s->fl) + USER;
    s->cfg.flash = otaup_simflash_flash(s->fl);
    tp_apply_config_backup(&s->cfg, USER_LEN, TERM_FRAME, "T-BK");
    s->cfg.retransmit_ms = 2u * f->latency_ms + 200u;
#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
    if (f->sealed) {
        size_t i;
        ck_assert_int_eq(otaup_crypto_mbedtls(&s->crypto), 0);
        for (i = 0; i < sizeof s->key; i++) {
            s->key[i] = (uint8_t)(f->seed + 3u * i);
        }
        s->cfg.device_key = s->key;
        s->cfg.crypto = &s->crypto;
    }
#endif
    s->cfg.link.ctx = s;
    s->cfg.link.send = term_send;
    s->cfg.now_ms = term_now;
    s->cfg.clock_ctx = s;
    wsz = otaup_apply_work_size(TERM_FRAME, 512, S, 32, 11);
    ck_assert_uint_gt(wsz, 0);
    s->work = malloc(wsz);
    s->cfg.work = s->work;
    s->cfg.work_size = wsz;
    ck_assert_int_eq(otaup_apply_init(&s->ap, &s->cfg), 0);
    otaup_decoder_init(&s->dec, s->decbuf, sizeof s->decbuf, 1024);
    otaup_reasm_init(&s->ra, s->rabuf, sizeof s->rabuf);
}

static void sim_free(sim *s)
{
    size_t i;
    for (i = 0; i < s->nq; i++) {
        free(s->q[i].p);
    }
    free(s->q);
    for (i = 0; i < MAXSEQ; i++) {
        free(s->first[i]);
    }
    free(s->work);
    otaup_simflash_free(s->fl);
}

/* Run until the server holds the region (and the link is quiet) or limit_ms. */
static void sim_run(sim *s, uint64_t limit_ms)
{
    otaup_msg m;
    uint64_t quiet_since = 0;
    ck_assert_int_eq(otaup_apply_connect(&s->ap), 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 2048;
    m.u.hello.window = s->f.window;
    srv_send(s, &m);
    while (s->clock < limit_ms) {
        size_t i, best = (size_t)-1;
        for (i = 0; i < s->nq; i++) {
            if (s->q[i].at <= s->clock && (best == (size_t)-1 || s->q[i].at < s->q[best].at)) {
                best = i;
            }
        }
        if (best != (size_t)-1) {
            flight f = s->q[best];
            memmove(s->q + best, s->q + best + 1, (s->nq - best - 1) * sizeof *s->q);
            s->nq--;
            if (f.to_term) {
                if (!f.corrupted) {
                    seen_by_term(s, f.p, f.n);
                }
                (void)otaup_apply_feed(&s->ap, f.p, f.n);
            } else {
                size_t off = 0;
                while (off < f.n) {
                    otaup_frame fr;
                    size_t used = 0;
                    int ev = otaup_decoder_feed(&s->dec, f.p + off, f.n - off, &used, &fr);
                    off += used;
                    if (ev == OTAUP_DEC_FRAME) {
                        srv_frame(s, &fr);
                    } else if (ev == OTAUP_DEC_NEED_INPUT) {
                        break;
                    }
                }
            }
            free(f.p);
            continue;
        }
        if (s->r->done && s->nq == 0) {
            if (quiet_since == 0) {
                quiet_since = s->clock;
            } else if (s->clock - quiet_since > 4u * s->cfg.retransmit_ms) {
                return;
            }
        } else {
            quiet_since = 0;
        }
        s->clock++;
        {
            int rc = otaup_apply_poll(&s->ap);
            if (rc != 0 && s->r->poll_err == 0) {
                s->r->poll_err = rc;
            }
        }
        if (s->pend_len && s->clock - s->pend_time >= SRV_RTO) {
            s->pend_time = s->clock;
            lossy(s, 1, s->pend, s->pend_len);
        }
    }
}

static void check_clean(const sim *s, const bk_result *r, const char *what)
{
    ck_assert_msg(r->done, "%s: the server does not hold the region (%u chunks, poll %d)", what, r->chunks,
                  r->poll_err);
    ck_assert_mem_eq(s->got, s->user, USER_LEN);
    ck_assert_int_eq(r->poll_err, 0);
    ck_assert_msg(r->ident_viol == 0, "%s: %u retransmissions differ from their first transmission", what,
                  r->ident_viol);
    ck_assert_msg(r->goback_viol == 0, "%s: %u resends did not start at the oldest unacknowledged frame", what,
                  r->goback_viol);
    ck_assert_msg(r->window_viol == 0, "%s: %u chunks sent beyond the window", what, r->window_viol);
    ck_assert_uint_eq(r->order_viol, 0);
}

static void faults(bk_faults *f, uint16_t window, unsigned latency)
{
    memset(f, 0, sizeof *f);
    f->window = window;
    f->latency_ms = latency;
    f->max_chunk = 4096;
}

/* A clean link: the window fills, nothing is resent, and a long link is
 * far faster than one chunk per round trip. */
START_TEST(test_clean_window)
{
    sim *s = malloc(sizeof *s);
    bk_faults f;
    bk_result r1, r8, r16;
    unsigned chunk = TERM_FRAME - 16u - 8u - 9u;
    unsigned nchunks = (USER_LEN + chunk - 1) / chunk;
    faults(&f, 1, 75);
    sim_make(s, &f, &r1);
    sim_run(s, 600000);
    check_clean(s, &r1, "window 1");
    ck_assert_uint_eq(r1.max_out, 1);
    ck_assert_uint_eq(r1.resent, 0);
    ck_assert_uint_eq(r1.sent, nchunks);
    sim_free(s);
    faults(&f, 8, 75);
    sim_make(s, &f, &r8);
    sim_run(s, 600000);
    check_clean(s, &r8, "window 8");
    ck_assert_uint_eq(r8.max_out, 8);
    ck_assert_uint_eq(r8.resent, 0);
    ck_assert_uint_eq(r8.sent, nchunks);
    sim_free(s);
    faults(&f, 64, 75); /* more than the applier's limit */
    sim_make(s, &f, &r16);
    sim_run(s, 600000);
    check_clean(s, &r16, "window 64");
    ck_assert_uint_eq(r16.max_out, OTAUP_CONFIG_BACKUP_WINDOW);
    ck_assert_uint_eq(r16.resent, 0);
    sim_free(s);
    /* one round trip per chunk against one per window: the simulated time */
    ck_assert_uint_gt(r1.done_ms, 150u * (nchunks - 1));
    ck_assert_uint_lt(r8.done_ms * 6, r1.done_ms);
    fprintf(stderr,
            "backup of %u bytes, %u chunks, 150 ms round trip (simulated): window 1 %llu ms, 8 %llu ms, %u %llu ms\n",
            USER_LEN, nchunks, (unsigned long long)r1.done_ms, (unsigned long long)r8.done_ms,
            (unsigned)OTAUP_CONFIG_BACKUP_WINDOW, (unsigned long long)r16.done_ms);
    free(s);
}
END_TEST

/* Drops, duplicates, reordering and corruption both ways: the exact bytes
 * arrive, every resend is the same frame, rebuilt, from the right chunk. */
START_TEST(test_lossy_link)
{
    sim *s = malloc(sizeof *s);
    unsigned seed, resent = 0, nacks = 0;
    for (seed = 1; seed <= 12; seed++) {
        bk_faults f;
        bk_result r;
        faults(&f, (uint16_t)(seed % 3 == 0 ? 4 : 16), 20 + 10 * (seed % 4));
        f.drop_pct = 8;
        f.dup_pct = 5;
        f.reorder_pct = 5;
        f.corrupt_pct = 4;
        f.seed = seed;
        f.offset = seed % 4 == 1 ? 5u * 223u : 0u; /* a request that resumes at an offset */
        sim_make(s, &f, &r);
        sim_run(s, 3600000);
        check_clean(s, &r, "lossy");
        ck_assert_uint_gt(r.resent, 0);
        resent += r.resent;
        nacks += r.nacks;
        sim_free(s);
    }
    ck_assert_uint_gt(nacks, 0); /* gaps went through the NACK path too */
    fprintf(stderr, "lossy links, 12 seeds: %u chunks resent, %u NACK(SEQ)\n", resent, nacks);
    free(s);
}
END_TEST

#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
/* A sealed stream over the same lossy links: every resent chunk, sealed
 * again from flash (otaup_seal_seek), is byte for byte its first
 * transmission (same salt, same index, same plain bytes), the window is
 * respected, and the stream the server holds opens to the region. */
START_TEST(test_sealed_lossy_link)
{
    sim *s = malloc(sizeof *s);
    unsigned seed, resent = 0;
    bk_faults f;
    bk_result r;
    faults(&f, 8, 75);
    f.sealed = 1;
    f.seed = 99;
    sim_make(s, &f, &r);
    sim_run(s, 600000);
    check_clean(s, &r, "sealed, clean");
    ck_assert_uint_eq(r.max_out, 8);
    ck_assert_uint_eq(r.resent, 0);
    sim_free(s);
    for (seed = 1; seed <= 6; seed++) {
        faults(&f, (uint16_t)(seed % 3 == 0 ? 4 : 16), 20 + 10 * (seed % 4));
        f.drop_pct = 8;
        f.dup_pct = 5;
        f.reorder_pct = 5;
        f.corrupt_pct = 4;
        f.seed = seed;
        f.sealed = 1;
        sim_make(s, &f, &r);
        sim_run(s, 3600000);
        check_clean(s, &r, "sealed, lossy");
        ck_assert_uint_gt(r.resent, 0);
        resent += r.resent;
        sim_free(s);
    }
    fprintf(stderr, "sealed backups over lossy links, 6 seeds: %u chunks resent, each identical\n", resent);
    free(s);
}
END_TEST
#endif

/* Heavy loss: bounded retries either get the region up or stop with
 * OTAUP_E_RETRIES, never with wrong bytes or a frame beyond the window. */
START_TEST(test_heavy_loss_bounded)
{
    sim *s = malloc(sizeof *s);
    unsigned seed, done = 0;
    for (seed = 20; seed < 26; seed++) {
        bk_faults f;
        bk_result r;
        faults(&f, 16, 30);
        f.drop_pct = 35;
        f.dup_pct = 10;
        f.reorder_pct = 10;
        f.seed = seed;
        sim_make(s, &f, &r);
        sim_run(s, 600000);
        ck_assert_uint_eq(r.ident_viol, 0);
        ck_assert_uint_eq(r.goback_viol, 0);
        ck_assert_uint_eq(r.window_viol, 0);
        ck_assert_uint_eq(r.order_viol, 0);
        if (r.done) {
            ck_assert_mem_eq(s->got, s->user, USER_LEN);
            done++;
        } else {
            ck_assert_int_eq(r.poll_err, OTAUP_E_RETRIES);
        }
        sim_free(s);
    }
    fprintf(stderr, "35%% loss: %u of 6 backups complete\n", done);
    free(s);
}
END_TEST

/* The HASH_ONLY form and a request at the region's end: one chunk, no data. */
START_TEST(test_hash_only)
{
    sim *s = malloc(sizeof *s);
    bk_faults f;
    bk_result r;
    faults(&f, 16, 20);
    f.offset = USER_LEN;
    sim_make(s, &f, &r);
    sim_run(s, 60000);
    check_clean(s, &r, "offset at the end");
    ck_assert_uint_eq(r.sent, 1);
    sim_free(s);
    free(s);
}
END_TEST

/* A second BACKUP_REQ while chunks of the first are unacknowledged is
 * refused with NACK(OTAUP_E_AGAIN) (they must stay rebuildable) and stops
 * the first stream; once they are acknowledged it is accepted and its
 * chunks start at its offset. */
typedef struct sink {
    uint8_t buf[65536];
    size_t len;
} sink;

static int sink_send(void *ctx, const uint8_t *b, size_t n)
{
    sink *k = ctx;
    ck_assert_uint_le(k->len + n, sizeof k->buf);
    memcpy(k->buf + k->len, b, n);
    k->len += n;
    return (int)n;
}

static void feed_msg(sim *s, const otaup_msg *m, uint32_t seq)
{
    uint8_t b[128];
    int n = otaup_msg_encode_frame(m, 0, seq, 1024, b, sizeof b);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&s->ap, b, (size_t)n), 0);
}

/* the frames in k: count of BACKUP_DATA, the last NACK's code, the last
 * BACKUP_DATA's offset and seq */
static unsigned scan(sink *k, int32_t *nack, uint32_t *off, uint32_t *seq)
{
    otaup_decoder d;
    uint8_t db[1024];
    size_t pos = 0;
    unsigned nb = 0;
    otaup_decoder_init(&d, db, sizeof db, 1024);
    while (pos < k->len) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, k->buf + pos, k->len - pos, &used, &fr);
        otaup_msg m;
        pos += used;
        if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
        if (ev != OTAUP_DEC_FRAME) {
            continue;
        }
        ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
        if (fr.type == OTAUP_MSG_NACK) {
            *nack = m.u.nack.error;
        } else if (fr.type == OTAUP_MSG_BACKUP_DATA) {
            nb++;
            *off = m.u.rdata.offset;
            *seq = fr.seq;
        }
    }
    k->len = 0;
    return nb;
}

START_TEST(test_second_request)
{
    sim *s = malloc(sizeof *s);
    sink *k = calloc(1, sizeof *k);
    bk_faults f;
    bk_result r;
    otaup_msg m;
    int32_t nack = 0;
    uint32_t off = 0, seq = 0, first_seq;
    unsigned i;
    faults(&f, 4, 20);
    sim_make(s, &f, &r);
    s->ap.cfg.link.ctx = k;
    s->ap.cfg.link.send = sink_send;
    ck_assert_int_eq(otaup_apply_connect(&s->ap), 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 1024;
    m.u.hello.window = 4;
    feed_msg(s, &m, 0);
    /* acknowledge HELLO and the INFO fragments, one at a time */
    for (i = 0; i < 8; i++) {
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_ACK;
        m.u.ack.seq = i;
        m.u.ack.window = 4;
        feed_msg(s, &m, 1);
    }
    k->len = 0;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.max_chunk = 100;
    feed_msg(s, &m, 1);
    ck_assert_uint_eq(scan(k, &nack, &off, &seq), 4); /* the window */
    ck_assert_uint_eq(off, 300);
    first_seq = seq - 3;
    /* a second request at offset 1000 while 4 are outstanding */
    m.u.backup_req.offset = 1000;
    feed_msg(s, &m, 2);
    nack = 0;
    ck_assert_uint_eq(scan(k, &nack, &off, &seq), 0);
    ck_assert_int_eq(nack, OTAUP_E_AGAIN);
    /* the outstanding chunks go again at the next poll (rebuilt) */
    ck_assert_int_eq(otaup_apply_poll(&s->ap), 0);
    ck_assert_uint_eq(scan(k, &nack, &off, &seq), 4);
    ck_assert_uint_eq(off, 300);
    ck_assert_uint_eq(seq, first_seq + 3);
    /* acknowledged: the request is accepted, chunks from 1000 follow */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = first_seq + 3;
    m.u.ack.window = 2;
    feed_msg(s, &m, 2);
    ck_assert_uint_eq(scan(k, &nack, &off, &seq), 0); /* the first stream stopped */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.max_chunk = 100;
    m.u.backup_req.offset = 1000;
    feed_msg(s, &m, 2);
    ck_assert_uint_eq(scan(k, &nack, &off, &seq), 2); /* the window shrank to 2 */
    ck_assert_uint_eq(off, 1100);
    ck_assert_uint_eq(seq, first_seq + 5);
    sim_free(s);
    free(k);
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *su = suite_create("apply_backup");
    TCase *tc = tcase_create("backup");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_clean_window);
    tcase_add_test(tc, test_lossy_link);
#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
    tcase_add_test(tc, test_sealed_lossy_link);
#endif
    tcase_add_test(tc, test_heavy_loss_bounded);
    tcase_add_test(tc, test_hash_only);
    tcase_add_test(tc, test_second_request);
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
