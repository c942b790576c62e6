/*
 * Test-side server and lossy link (see testlink.h).
 */
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/record.h"
#include "util/testlink.h"

#define MAXF 1024u       /* frames on this link */
#define SLICE 200u       /* record-stream bytes per BATCH frame */
#define RTO 300u         /* server retransmission timeout, ms */
#define SERVER_RETRIES 12u

typedef struct qframe {
    uint8_t *p;
    size_t n;
} qframe;

typedef struct queue {
    qframe *f;
    size_t n, cap;
} queue;

enum { S_WAIT_INFO, S_BACKUP, S_START, S_BATCH, S_COMMIT, S_WAIT_RESULT, S_DONE, S_FAILED };

struct tl_ctx {
    tl_faults f;
    uint64_t rng;
    uint64_t clock;
    queue to_term, to_srv;
    /* server */
    otaup_decoder dec;
    uint8_t decbuf[MAXF];
    otaup_reasm reasm;
    uint8_t reasmbuf[4096];
    uint32_t rx_last;
    int rx_any;
    uint32_t tx_seq;
    uint8_t pend[MAXF];
    size_t pend_len;
    uint32_t pend_seq;
    uint64_t pend_time;
    unsigned tries;
    int state;
    unsigned frames_this_conn;
    unsigned disconnects_left;
    /* the update */
    const tp_stream *s;
    uint64_t session;
    int do_backup, backup_done;
    size_t off;                 /* next body byte to send */
    otaup_recparser rp;         /* tracks record boundaries for BATCH flags */
    otaup_proto_resume resume;
    tl_report *rep;
    const uint8_t *manifest;    /* START's manifest bytes (may be NULL) */
    size_t manifest_len;
};

static uint64_t rnd(tl_ctx *t)
{
    uint64_t z = (t->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void q_push(queue *q, const uint8_t *p, size_t n)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 64;
        q->f = realloc(q->f, q->cap * sizeof *q->f);
        if (q->f == NULL) {
            abort();
        }
    }
    q->f[q->n].p = malloc(n ? n : 1);
    memcpy(q->f[q->n].p, p, n);
    q->f[q->n].n = n;
    q->n++;
}

static void q_clear(queue *q)
{
    size_t i;
    for (i = 0; i < q->n; i++) {
        free(q->f[i].p);
    }
    q->n = 0;
}

/* send through the faulty link */
static void lossy(tl_ctx *t, queue *q, const uint8_t *p, size_t n)
{
    uint64_t r = rnd(t);
    if (r % 100 < t->f.drop_pct) {
        return;
    }
    q_push(q, p, n);
    if ((r >> 8) % 100 < t->f.corrupt_pct && n > 0) {
        q->f[q->n - 1].p[(r >> 16) % n] ^= (uint8_t)(1u << ((r >> 40) & 7));
    }
    if ((r >> 24) % 100 < t->f.dup_pct) {
        q_push(q, q->f[q->n - 1].p, n);
    }
    if ((r >> 32) % 100 < t->f.reorder_pct && q->n >= 2) {
        qframe tmp = q->f[q->n - 1];
        q->f[q->n - 1] = q->f[q->n - 2];
        q->f[q->n - 2] = tmp;
    }
}

static int term_send(void *ctx, const uint8_t *buf, size_t len)
{
    tl_ctx *t = ctx;
    lossy(t, &t->to_srv, buf, len);
    return (int)len;
}

static uint32_t term_now(void *ctx)
{
    return (uint32_t)((tl_ctx *)ctx)->clock;
}

tl_ctx *tl_new(const tl_faults *f)
{
    tl_ctx *t = calloc(1, sizeof *t);
    t->f = *f;
    t->rng = f->seed;
    return t;
}

void tl_free(tl_ctx *t)
{
    q_clear(&t->to_term);
    q_clear(&t->to_srv);
    free(t->to_term.f);
    free(t->to_srv.f);
    free(t);
}

void tl_bind(tl_ctx *t, otaup_apply_config *cfg)
{
    cfg->link.ctx = t;
    cfg->link.send = term_send;
    cfg->link.recv = NULL;
    cfg->now_ms = term_now;
    cfg->clock_ctx = t;
}

/* ---- server ---------------------------------------------------------------- */

static void srv_ctl(tl_ctx *t, const otaup_msg *m)
{
    uint8_t buf[64];
    int n = otaup_msg_encode_frame(m, 0, t->tx_seq, 65536, buf, sizeof buf);
    if (n > 0) {
        lossy(t, &t->to_term, buf, (size_t)n);
    }
}

static void srv_ack(tl_ctx *t)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = t->rx_last;
    m.u.ack.window = 4;
    srv_ctl(t, &m);
}

static void srv_send_frame(tl_ctx *t, const uint8_t *frame, size_t n)
{
    memcpy(t->pend, frame, n);
    t->pend_len = n;
    t->pend_seq = t->tx_seq++;
    t->pend_time = t->clock;
    t->tries = 0;
    t->rep->server_frames++;
    t->frames_this_conn++;
    lossy(t, &t->to_term, t->pend, t->pend_len);
}

static void srv_send_msg(tl_ctx *t, const otaup_msg *m)
{
    uint8_t buf[MAXF];
    int n = otaup_msg_encode_frame(m, 0, t->tx_seq, MAXF, buf, sizeof buf);
    if (n < 0) {
        t->state = S_FAILED;
        t->rep->result = n;
        return;
    }
    srv_send_frame(t, buf, (size_t)n);
}

/* the next BATCH slice: flags follow the record boundaries */
static void srv_batch(tl_ctx *t)
{
    uint8_t payload[SLICE], frame[MAXF];
    size_t n = t->s->len - t->off < SLICE ? t->s->len - t->off : SLICE, pos = 0;
    uint8_t flags = 0;
    int fr;
    if (!otaup_recparser_idle(&t->rp)) {
        flags |= 0x02; /* CONT */
    }
    while (pos < n) {
        size_t used = 0;
        int ev = otaup_recparser_feed(&t->rp, t->s->bytes + t->off + pos, n - pos, &used);
        pos += used;
        if (ev < 0) {
            t->state = S_FAILED;
            t->rep->result = ev;
            return;
        }
        if (ev == OTAUP_RECP_NEED_INPUT) {
            break;
        }
    }
    /* collect a pending DONE so that idle() is exact */
    {
        size_t used = 0;
        while (otaup_recparser_feed(&t->rp, NULL, 0, &used) > 0) {
        }
    }
    if (!otaup_recparser_idle(&t->rp)) {
        flags |= 0x01; /* MORE */
    }
    memcpy(payload, t->s->bytes + t->off, n);
    fr = otaup_frame_encode(OTAUP_MSG_BATCH, flags, t->tx_seq, payload, n, frame, sizeof frame);
    if (fr < 0) {
        t->state = S_FAILED;
        t->rep->result = fr;
        return;
    }
    t->off += n;
    srv_send_frame(t, frame, (size_t)fr);
}

static void srv_next(tl_ctx *t)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    switch (t->state) {
    case S_BACKUP:
        if (!t->backup_done) {
            m.type = OTAUP_MSG_BACKUP_REQ;
            m.u.backup_req.region = 1;
            m.u.backup_req.max_chunk = 300;
            t->rep->backup_len = 0;
            srv_send_msg(t, &m);
            t->state = S_START; /* START follows once the LAST chunk is in */
            return;
        }
        t->state = S_START;
        /* fall through */
    case S_START:
        if (t->do_backup && !t->backup_done) {
            return; /* waiting for BACKUP_DATA */
        }
        m.type = OTAUP_MSG_START;
        m.u.start.session = t->session;
        m.u.start.flags = t->resume.session == t->session ? OTAUP_START_RESUME : 0;
        m.u.start.manifest.data = t->manifest;
        m.u.start.manifest.len = (uint32_t)t->manifest_len;
        t->rep->resumes += m.u.start.flags ? 1u : 0u;
        {
            size_t i;
            t->off = 0;
            for (i = 0; i < t->s->nrs; i++) {
                if (m.u.start.flags && t->s->rs[i].index <= t->resume.next_step) {
                    t->off = t->s->rs[i].offset;
                }
            }
        }
        otaup_recparser_init(&t->rp);
        t->state = S_BATCH;
        srv_send_msg(t, &m);
        return;
    case S_BATCH:
        if (t->off < t->s->len) {
            srv_batch(t);
            return;
        }
        t->state = S_COMMIT;
        /* fall through */
    case S_COMMIT:
        m.type = OTAUP_MSG_COMMIT;
        m.u.commit.session = t->session;
        m.u.commit.action = OTAUP_COMMIT_DONE;
        t->state = S_WAIT_RESULT;
        srv_send_msg(t, &m);
        return;
    default:
        return;
    }
}

static void srv_message(tl_ctx *t, uint8_t type, const uint8_t *p, size_t n)
{
    otaup_msg m;
    if (otaup_msg_decode(type, p, n, &m) != 0) {
        return;
    }
    if (type == OTAUP_MSG_INFO && t->state == S_WAIT_INFO) {
        t->resume = m.u.info.resume;
        t->state = t->do_backup && !t->backup_done ? S_BACKUP : S_START;
        if (t->pend_len == 0) {
            srv_next(t);
        }
    } else if (type == OTAUP_MSG_BACKUP_DATA) {
        if (m.u.rdata.offset + m.u.rdata.data.len <= sizeof t->rep->backup) {
            memcpy(t->rep->backup + m.u.rdata.offset, m.u.rdata.data.data, m.u.rdata.data.len);
            t->rep->backup_len = m.u.rdata.offset + m.u.rdata.data.len;
        }
        if (m.u.rdata.flags & OTAUP_RDATA_LAST) {
            t->backup_done = 1;
            if (t->pend_len == 0) {
                srv_next(t);
            }
        }
    } else if (type == OTAUP_MSG_RESULT) {
        t->rep->result = m.u.result.code;
        t->state = S_DONE;
    }
}

static void srv_frame(tl_ctx *t, const otaup_frame *fr)
{
    otaup_msg m;
    if (fr->type == OTAUP_MSG_ACK || fr->type == OTAUP_MSG_NACK || fr->type == OTAUP_MSG_PROGRESS) {
        if (otaup_msg_decode(fr->type, fr->payload, fr->payload_len, &m) != 0) {
            return;
        }
        if (fr->type == OTAUP_MSG_PROGRESS) {
            t->pend_time = t->clock;
        } else if (fr->type == OTAUP_MSG_ACK && t->pend_len && (int32_t)(m.u.ack.seq - t->pend_seq) >= 0) {
            t->pend_len = 0;
            srv_next(t);
        } else if (fr->type == OTAUP_MSG_NACK && t->pend_len && m.u.nack.seq == t->pend_seq) {
            t->rep->nacks++;
            if (m.u.nack.error == OTAUP_E_SEQ) {
                t->pend_time = t->clock - RTO; /* resend now */
            } else {
                t->state = S_FAILED;
                t->rep->result = m.u.nack.error;
            }
        } else if (fr->type == OTAUP_MSG_NACK) {
            t->rep->nacks++;
        }
        return;
    }
    if (fr->type == OTAUP_MSG_HELLO) {
        t->rx_any = 0;
        otaup_reasm_reset(&t->reasm);
    }
    if (t->rx_any && (int32_t)(fr->seq - t->rx_last) <= 0) {
        srv_ack(t);
        return;
    }
    if (fr->seq != (t->rx_any ? t->rx_last + 1u : 0u)) {
        return; /* gap: the terminal's timer resends */
    }
    t->rx_last = fr->seq;
    t->rx_any = 1;
    if (otaup_msg_type_fragmentable(fr->type)) {
        const uint8_t *msg;
        size_t len;
        if (otaup_reasm_add(&t->reasm, fr, &msg, &len) == 1) {
            srv_message(t, fr->type, msg, len);
        }
    } else {
        srv_message(t, fr->type, fr->payload, fr->payload_len);
    }
    srv_ack(t);
}

static void srv_connect(tl_ctx *t, otaup_apply *ap)
{
    otaup_msg m;
    q_clear(&t->to_term);
    q_clear(&t->to_srv);
    otaup_decoder_init(&t->dec, t->decbuf, sizeof t->decbuf, MAXF);
    otaup_reasm_init(&t->reasm, t->reasmbuf, sizeof t->reasmbuf);
    t->rx_any = 0;
    t->tx_seq = 0;
    t->pend_len = 0;
    t->frames_this_conn = 0;
    t->state = S_WAIT_INFO;
    memset(&t->resume, 0, sizeof t->resume);
    t->rep->connections++;
    (void)otaup_apply_connect(ap);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = MAXF;
    m.u.hello.max_msg = 4096;
    m.u.hello.window = 4;
    srv_send_msg(t, &m);
}

int tl_run(tl_ctx *t, otaup_apply *ap, const tp_stream *s, uint64_t session, int do_backup, tl_report *rep)
{
    memset(rep, 0, sizeof *rep);
    t->rep = rep;
    t->s = s;
    t->session = session;
    t->do_backup = do_backup;
    t->backup_done = 0;
    t->disconnects_left = t->f.disconnects;
    rep->result = OTAUP_E_TIMEOUT;
    srv_connect(t, ap);
    while (t->clock < 3600u * 1000u) {
        size_t i;
        /* deliver what is in flight, one frame at a time, alternately */
        while (t->to_term.n > 0 || t->to_srv.n > 0) {
            queue q;
            if (t->to_term.n > 0) {
                q = t->to_term;
                t->to_term.f = NULL;
                t->to_term.n = t->to_term.cap = 0;
                for (i = 0; i < q.n; i++) {
                    (void)otaup_apply_feed(ap, q.f[i].p, q.f[i].n);
                }
                q_clear(&q);
                free(q.f);
            }
            if (t->to_srv.n > 0) {
                q = t->to_srv;
                t->to_srv.f = NULL;
                t->to_srv.n = t->to_srv.cap = 0;
                for (i = 0; i < q.n; i++) {
                    size_t off = 0;
                    while (off < q.f[i].n) {
                        otaup_frame fr;
                        size_t used = 0;
                        int ev = otaup_decoder_feed(&t->dec, q.f[i].p + off, q.f[i].n - off, &used, &fr);
                        off += used;
                        if (ev == OTAUP_DEC_FRAME) {
                            srv_frame(t, &fr);
                        } else if (ev == OTAUP_DEC_NEED_INPUT) {
                            break;
                        }
                    }
                }
                q_clear(&q);
                free(q.f);
            }
            if (t->state == S_FAILED) {
                return rep->result;
            }
            if (t->disconnects_left > 0 && t->f.disconnect_at && t->frames_this_conn >= t->f.disconnect_at &&
                t->state != S_DONE) {
                t->disconnects_left--;
                srv_connect(t, ap); /* the link drops: both sides start over */
            }
        }
        if (t->state == S_DONE && otaup_apply_done(ap)) {
            rep->ticks = t->clock;
            return rep->result;
        }
        t->clock += 10;
        (void)otaup_apply_poll(ap);
        if (t->pend_len && t->clock - t->pend_time >= RTO) {
            if (t->tries >= SERVER_RETRIES) {
                rep->result = OTAUP_E_RETRIES;
                return rep->result;
            }
            t->tries++;
            rep->retransmits++;
            if (t->tries > rep->max_tries) {
                rep->max_tries = t->tries;
            }
            t->pend_time = t->clock;
            lossy(t, &t->to_term, t->pend, t->pend_len);
        }
    }
    return OTAUP_E_TIMEOUT;
}

void tl_set_manifest(tl_ctx *t, const uint8_t *m, size_t len)
{
    t->manifest = m;
    t->manifest_len = len;
}
