/*
 * otaup — the session driver's wire layer: command-protocol frames
 * (docs/protocol.md, otaup/proto.h) to session messages and back
 * (docs/server.md, "Wire mapping"). Server side, C11, allocates.
 *
 * Receiving: one streaming decoder per connection; the terminal's
 * sequenced frames are executed strictly in order (each delivered to the
 * state machine), answered with a cumulative ACK (a duplicate with the ACK
 * it would get now, a gap with one NACK(OTAUP_E_SEQ) and one more per
 * round of resends, a frame that cannot
 * be decoded with NACK(code) naming it); INFO and RESULT are reassembled.
 * Frames past a gap, within the window the server advertises, are kept
 * (copied) and executed, in order, once the gap is filled: on a lossy
 * link the terminal's go-back-N resends then only have to bring the
 * frames that were lost, not every frame after the first loss.
 * Sending: every message is encoded with the sequence number the session
 * gave it (a fragmented START or NOTIFY takes consecutive numbers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/record.h"
#include "server/session_core.h"

/* bytes without one valid frame after which the peer is not a terminal
 * (unless a frame whose header checked out came: damaged, but ours) */
#define GARBAGE_MAX 256u

/* A frame received past a gap, kept until its turn: fr.payload is buf. */
struct held {
    otaup_frame fr;
    uint8_t *buf; /* NULL: slot free */
};

struct otaup_swire {
    otaup_decoder dec;
    otaup_reasm ra;
    uint8_t dbuf[OTAUP_SWIRE_RX_FRAME];
    uint8_t rbuf[OTAUP_SWIRE_RX_MSG];
    uint32_t rx_last;
    int rx_any;
    int gap_nacked;
    uint32_t gap_hi; /* the last frame seen past the gap */
    int ack_due;
    uint32_t echo;
    uint32_t next_seq; /* the server's next sequence number (for ACK/NACK frames) */
    uint32_t frames_in;
    uint32_t garbage;
    int ours_seen; /* a frame with a valid header came, whatever its CRC */
    otaup_swire_peer peer;
    otaup_sm_info info;
    char why[160];
    uint8_t *out;
    size_t out_len, out_cap;
    struct held held[OTAUP_SWIRE_RX_WINDOW]; /* the frame with seq k in slot k % WINDOW */
    unsigned nheld;
};

static void drop_held(otaup_swire *w)
{
    unsigned i;
    for (i = 0; i < OTAUP_SWIRE_RX_WINDOW && w->nheld > 0; i++) {
        if (w->held[i].buf != NULL) {
            free(w->held[i].buf);
            w->held[i].buf = NULL;
            w->nheld--;
        }
    }
}

int otaup_swire_new(otaup_swire **out)
{
    otaup_swire *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (otaup_decoder_init(&w->dec, w->dbuf, sizeof w->dbuf, OTAUP_SWIRE_RX_FRAME) != 0 ||
        otaup_reasm_init(&w->ra, w->rbuf, sizeof w->rbuf) != 0) {
        free(w);
        return OTAUP_E_INTERNAL;
    }
    *out = w;
    return 0;
}

void otaup_swire_free(otaup_swire *w)
{
    if (w != NULL) {
        drop_held(w);
        free(w->out);
        free(w);
    }
}

uint32_t otaup_swire_overhead(void)
{
    return OTAUP_FRAME_OVERHEAD;
}

const otaup_swire_peer *otaup_swire_peer_info(const otaup_swire *w)
{
    return &w->peer;
}

uint32_t otaup_swire_frames_in(const otaup_swire *w)
{
    return w->frames_in;
}

size_t otaup_swire_waiting(const otaup_swire *w)
{
    return w->out_len;
}

size_t otaup_swire_take(otaup_swire *w, uint8_t *out, size_t cap)
{
    size_t n = w->out_len < cap ? w->out_len : cap;
    memcpy(out, w->out, n);
    memmove(w->out, w->out + n, w->out_len - n);
    w->out_len -= n;
    return n;
}

/* ---- unsequenced answers ------------------------------------------------ */

static int put_frame(otaup_swire *w, const otaup_msg *m)
{
    uint8_t f[64];
    int n = otaup_msg_encode_frame(m, 0, w->next_seq, sizeof f, f, sizeof f);
    if (n < 0) {
        return n;
    }
    if (w->out_len + (size_t)n > w->out_cap) {
        size_t cap = w->out_cap ? 2 * w->out_cap : 256;
        uint8_t *b;
        while (cap < w->out_len + (size_t)n) {
            cap *= 2;
        }
        b = realloc(w->out, cap);
        if (b == NULL) {
            return OTAUP_E_NOMEM;
        }
        w->out = b;
        w->out_cap = cap;
    }
    memcpy(w->out + w->out_len, f, (size_t)n);
    w->out_len += (size_t)n;
    return 0;
}

static int send_ack(otaup_swire *w)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = w->rx_last;
    m.u.ack.window = OTAUP_SWIRE_RX_WINDOW;
    m.u.ack.echo = w->echo;
    w->ack_due = 0;
    return put_frame(w, &m);
}

static int send_nack(otaup_swire *w, uint32_t seq, int err, uint32_t expected)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_NACK;
    m.u.nack.seq = seq;
    m.u.nack.error = err < 0 ? err : OTAUP_E_INTERNAL;
    m.u.nack.expected = expected;
    return put_frame(w, &m);
}

/* ---- terminal -> server: messages --------------------------------------- */

static int copy_str(char *dst, size_t cap, const otaup_bytes *b)
{
    if (b->len >= cap) {
        return -1;
    }
    memcpy(dst, b->data, b->len);
    dst[b->len] = '\0';
    return 0;
}

#define WHY(...) (snprintf(w->why, sizeof w->why, __VA_ARGS__), OTAUP_E_PEER)

static int conv_info(otaup_swire *w, const otaup_msg_info *mi, otaup_sm_info *o)
{
    uint32_t i;
    memset(o, 0, sizeof *o);
    if (copy_str(o->id, sizeof o->id, &mi->terminal_id) != 0) {
        return WHY("terminal id longer than %u bytes", (unsigned)sizeof o->id - 1);
    }
    if (copy_str(o->model, sizeof o->model, &mi->model) != 0) {
        return WHY("model name longer than %u bytes", (unsigned)sizeof o->model - 1);
    }
    if (copy_str(o->version, sizeof o->version, &mi->sw_version) != 0) {
        return WHY("software version longer than %u bytes", (unsigned)sizeof o->version - 1);
    }
    if (mi->build_time > (uint64_t)INT64_MAX) {
        return WHY("build time out of range");
    }
    o->build_time = (int64_t)mi->build_time;
    if ((mi->have & OTAUP_INFO_HAVE_IMAGE_HASH) && mi->image_hash.alg == OTAUP_HASH_XXH3_128) {
        o->have_image_hash = 1;
        memcpy(o->image_hash, mi->image_hash.bytes, OTAUP_REG_HASH_LEN);
    }
    o->image_size = (mi->have & OTAUP_INFO_HAVE_IMAGE_SIZE) ? mi->image_size : 0;
    if (!(mi->have & OTAUP_INFO_HAVE_GEOMETRY)) {
        return WHY("INFO without flash geometry");
    }
    o->geo = mi->geometry;
    if (!(mi->have & OTAUP_INFO_HAVE_LAYOUT)) {
        return WHY("INFO without image slots (LAYOUT)");
    }
    o->max_frame = (mi->have & OTAUP_INFO_HAVE_MAX_FRAME) ? mi->max_frame
                   : w->peer.have                        ? w->peer.max_frame
                                                         : OTAUP_FRAME_MIN;
    if (w->peer.have && w->peer.max_frame < o->max_frame) {
        o->max_frame = w->peer.max_frame;
    }
    if (mi->have & OTAUP_INFO_HAVE_MEMORY) {
        o->staging = mi->staging_size;
        o->ram = mi->ram_budget;
    }
    if (mi->have & OTAUP_INFO_HAVE_LIMITS) {
        o->window_bits = mi->window_bits;
        o->max_ops = mi->max_ops;
    }
    o->caps = (mi->have & OTAUP_INFO_HAVE_CAPS) ? mi->caps : w->peer.caps;
    o->sec_counter = (mi->have & OTAUP_INFO_HAVE_SEC_COUNTER) ? mi->sec_counter : 0;
    if (mi->have & OTAUP_INFO_HAVE_IMAGE_SHA256) {
        o->have_image_sha256 = 1;
        memcpy(o->image_sha256, mi->image_sha256, sizeof o->image_sha256);
    }
    o->layout = mi->layout;
    if (mi->layout == OTAUP_LAYOUT_AB) {
        unsigned a = mi->active_slot ? 1u : 0u;
        o->slot_addr = mi->slots[a].addr;
        o->slot_size = mi->slots[a].len;
        o->target_addr = mi->slots[1u - a].addr;
        if (mi->slots[1u - a].len < mi->slots[a].len) {
            o->slot_size = mi->slots[1u - a].len; /* what fits both */
        }
    } else {
        o->slot_addr = mi->slots[0].addr;
        o->slot_size = mi->slots[0].len;
        o->target_addr = mi->slots[0].addr;
    }
    if (mi->have & OTAUP_INFO_HAVE_SCRATCH) {
        o->scratch_addr = mi->scratch.addr;
        o->scratch_size = mi->scratch.len;
    }
    o->nregions = mi->nregions;
    for (i = 0; i < mi->nregions; i++) {
        const otaup_proto_region *g = &mi->regions[i];
        otaup_sm_region *r = &o->regions[i];
        r->id = g->id;
        r->flags = g->flags;
        r->addr = g->addr;
        r->len = g->len;
        if (g->hash.alg == OTAUP_HASH_XXH3_64) {
            r->hash_alg = 1;
            memcpy(r->hash, g->hash.bytes, 8);
        }
    }
    o->nwindows = mi->nwindows;
    for (i = 0; i < mi->nwindows; i++) {
        o->windows[i].addr = mi->windows[i].addr;
        o->windows[i].len = mi->windows[i].len;
    }
    if ((mi->have & OTAUP_INFO_HAVE_RESUME) && mi->resume.session != 0) {
        o->active = 1;
        o->session_id = mi->resume.session <= UINT32_MAX ? (uint32_t)mi->resume.session : 0;
        o->next_step = mi->resume.next_step;
    }
    return 0;
}

/* Execute one whole message; returns 0, an error to NACK the frame with
 * (> -1000 and not from deliver) via *nack, or deliver()'s error. */
static int execute(otaup_swire *w, uint8_t type, const uint8_t *p, size_t n,
                   int (*deliver)(void *ctx, const otaup_sm *m), void *ctx, int *nack)
{
    otaup_msg m;
    otaup_sm s;
    int rc = otaup_msg_decode(type, p, n, &m);
    *nack = 0;
    if (rc != 0) {
        *nack = rc;
        return 0;
    }
    memset(&s, 0, sizeof s);
    switch (type) {
    case OTAUP_MSG_HELLO:
        if (m.u.hello.role != OTAUP_ROLE_TERMINAL) {
            snprintf(w->why, sizeof w->why, "peer says it is not a terminal (role %u)", m.u.hello.role);
            return OTAUP_E_PEER;
        }
        if (m.u.hello.proto_min > OTAUP_PROTO_VERSION || m.u.hello.proto_max < OTAUP_PROTO_VERSION) {
            snprintf(w->why, sizeof w->why, "terminal speaks protocol %u..%u, server %u", m.u.hello.proto_min,
                     m.u.hello.proto_max, OTAUP_PROTO_VERSION);
            return OTAUP_E_UNSUPPORTED;
        }
        w->peer.have = 1;
        w->peer.max_frame = m.u.hello.max_frame;
        w->peer.max_msg = m.u.hello.max_msg;
        w->peer.window = m.u.hello.window;
        w->peer.caps = m.u.hello.caps;
        return 0;
    case OTAUP_MSG_INFO:
        s.type = OTAUP_SM_INFO;
        rc = conv_info(w, &m.u.info, &w->info);
        if (rc < 0) {
            s.code = rc;
            s.text = w->why;
        } else {
            s.info = &w->info;
        }
        break;
    case OTAUP_MSG_CONSENT:
        s.type = OTAUP_SM_CONSENT;
        s.code = m.u.consent.decision;
        s.total = m.u.consent.postpone_min;
        break;
    case OTAUP_MSG_BACKUP_DATA:
        if ((m.u.rdata.flags & OTAUP_RDATA_TAG) &&
            !((w->info.caps | w->peer.caps) & OTAUP_CAP_SEALED)) {
            *nack = OTAUP_E_UNSUPPORTED; /* sealed backups: not negotiated */
            return 0;
        }
        memcpy(s.tag, m.u.rdata.tag, sizeof s.tag);
        s.type = OTAUP_SM_BACKUP_DATA;
        s.region = m.u.rdata.region;
        s.flags = m.u.rdata.flags;
        s.offset = m.u.rdata.offset;
        s.data = m.u.rdata.data.data;
        s.len = m.u.rdata.data.len;
        if (m.u.rdata.flags & OTAUP_RDATA_HASH) {
            s.hash_alg = m.u.rdata.hash.alg;
            memcpy(s.hash, m.u.rdata.hash.bytes, m.u.rdata.hash.len < sizeof s.hash ? m.u.rdata.hash.len : sizeof s.hash);
        }
        break;
    case OTAUP_MSG_SIG_DATA:
        s.type = OTAUP_SM_SIG_DATA;
        s.flags = m.u.sig_data.flags;
        s.offset = m.u.sig_data.offset;
        s.total = m.u.sig_data.total;
        s.data = m.u.sig_data.data.data;
        s.len = m.u.sig_data.data.len;
        break;
    case OTAUP_MSG_RESULT:
        s.type = OTAUP_SM_RESULT;
        s.session_id = m.u.result.session <= UINT32_MAX ? (uint32_t)m.u.result.session : 0;
        s.code = m.u.result.code;
        if (m.u.result.hash.alg == OTAUP_HASH_XXH3_128) {
            s.hash_alg = OTAUP_HASH_XXH3_128;
            memcpy(s.image_hash, m.u.result.hash.bytes, OTAUP_REG_HASH_LEN);
        }
        break;
    case OTAUP_MSG_PING:
        s.type = OTAUP_SM_PING;
        w->echo = m.u.ping.nonce;
        break;
    case OTAUP_MSG_ABORT:
        s.type = OTAUP_SM_ABORT;
        s.session_id = (uint32_t)m.u.abort.session;
        s.code = m.u.abort.reason;
        break;
    default:
        *nack = OTAUP_E_MSG_TYPE; /* a message a server does not receive */
        return 0;
    }
    return deliver(ctx, &s);
}

static int on_unsequenced(const otaup_frame *fr, int (*deliver)(void *ctx, const otaup_sm *m), void *ctx)
{
    otaup_msg m;
    otaup_sm s;
    if (otaup_msg_decode(fr->type, fr->payload, fr->payload_len, &m) != 0) {
        return 0; /* a damaged answer is as good as a lost one */
    }
    memset(&s, 0, sizeof s);
    switch (fr->type) {
    case OTAUP_MSG_ACK:
        s.type = OTAUP_SM_ACK;
        s.seq = m.u.ack.seq + 1u;
        s.code = m.u.ack.status;
        s.window = m.u.ack.window;
        break;
    case OTAUP_MSG_NACK:
        s.type = OTAUP_SM_NACK;
        s.seq = m.u.nack.expected;
        s.ref_seq = m.u.nack.seq;
        s.code = m.u.nack.error;
        break;
    default:
        s.type = OTAUP_SM_PROGRESS;
        s.step = m.u.progress.step;
        s.code = m.u.progress.phase;
        break;
    }
    return deliver(ctx, &s);
}

static int seq_after(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;
    return d != 0 && d < 0x80000000u;
}

/* Execute the frame that is next in order. Returns < 0 (the session
 * ends), 0 (executed: rx_last advanced) or 1 (refused with a NACK naming
 * it; the frames kept past it are dropped: the sender resends from it,
 * and what followed a refused frame may then be sent differently). */
static int take(otaup_swire *w, const otaup_frame *fr, int (*deliver)(void *ctx, const otaup_sm *m), void *ctx)
{
    int rc, nack = 0;
    w->gap_nacked = 0;
    w->echo = 0;
    if (otaup_msg_type_fragmentable(fr->type) && fr->type != OTAUP_MSG_BATCH) {
        const uint8_t *msg;
        size_t len;
        rc = otaup_reasm_add(&w->ra, fr, &msg, &len);
        if (rc < 0) {
            nack = rc;
        } else if (rc == 1) {
            rc = execute(w, fr->type, msg, len, deliver, ctx, &nack);
            if (rc < 0) {
                return rc;
            }
        }
    } else {
        rc = execute(w, fr->type, fr->payload, fr->payload_len, deliver, ctx, &nack);
        if (rc < 0) {
            return rc;
        }
    }
    if (nack < 0) {
        drop_held(w);
        rc = send_nack(w, fr->seq, nack, fr->seq);
        return rc < 0 ? rc : 1;
    }
    w->rx_last = fr->seq;
    w->rx_any = 1;
    w->ack_due = 1;
    return 0;
}

/* Keep a frame that arrived past a gap, within the window (a copy: the
 * decoder reuses its buffer). The window holds fewer seqs than there are
 * slots, so an occupied slot holds this very frame. One already kept, or
 * no memory: dropped, as a receiver that keeps nothing would (the sender
 * resends it). */
static void hold(otaup_swire *w, const otaup_frame *fr)
{
    struct held *h = &w->held[fr->seq % OTAUP_SWIRE_RX_WINDOW];
    if (h->buf != NULL) {
        return;
    }
    h->buf = malloc(fr->payload_len ? fr->payload_len : 1u);
    if (h->buf == NULL) {
        return;
    }
    memcpy(h->buf, fr->payload, fr->payload_len);
    h->fr = *fr;
    h->fr.payload = h->buf;
    w->nheld++;
}

/* The frames kept that are next in order, executed; the others stay. */
static int take_held(otaup_swire *w, int (*deliver)(void *ctx, const otaup_sm *m), void *ctx)
{
    while (w->nheld > 0) {
        uint32_t next = w->rx_last + 1u;
        struct held *h = &w->held[next % OTAUP_SWIRE_RX_WINDOW];
        otaup_frame fr;
        uint8_t *buf;
        int rc;
        if (h->buf == NULL || h->fr.seq != next) {
            /* another gap: the sender is told where it now begins; the
             * last frame seen past it is the furthest kept */
            unsigned i;
            w->gap_hi = next;
            for (i = 0; i < OTAUP_SWIRE_RX_WINDOW; i++) {
                if (w->held[i].buf != NULL && seq_after(w->held[i].fr.seq, w->gap_hi)) {
                    w->gap_hi = w->held[i].fr.seq;
                }
            }
            w->gap_nacked = 1;
            return send_nack(w, next, OTAUP_E_SEQ, next);
        }
        fr = h->fr; /* out of its slot first: a refusal drops the others */
        buf = h->buf;
        h->buf = NULL;
        w->nheld--;
        rc = take(w, &fr, deliver, ctx);
        free(buf);
        if (rc != 0) {
            return rc < 0 ? rc : 0;
        }
    }
    return 0;
}

static int on_frame(otaup_swire *w, const otaup_frame *fr, int (*deliver)(void *ctx, const otaup_sm *m),
                    void *ctx)
{
    uint32_t expected;
    int rc;
    w->frames_in++;
    if (!otaup_msg_type_sequenced(fr->type)) {
        return on_unsequenced(fr, deliver, ctx);
    }
    if (fr->type == OTAUP_MSG_HELLO && fr->seq == 0) {
        w->rx_any = 0; /* the terminal numbers from 0 again */
        w->gap_nacked = 0;
        otaup_reasm_reset(&w->ra);
        drop_held(w);
    }
    expected = w->rx_any ? w->rx_last + 1u : 0u;
    if (w->rx_any && !seq_after(fr->seq, w->rx_last)) {
        w->ack_due = 1; /* a duplicate: answer again, do not execute */
        return 0;
    }
    if (fr->seq != expected) {
        /* one NACK for the gap, and one more each time the terminal went
         * back (a frame not after the last one seen past the gap) */
        int again = !w->gap_nacked || !seq_after(fr->seq, w->gap_hi);
        w->gap_hi = fr->seq;
        if (w->rx_any && fr->seq - expected < OTAUP_SWIRE_RX_WINDOW) {
            hold(w, fr);
        }
        if (again) {
            w->gap_nacked = 1;
            return send_nack(w, fr->seq, OTAUP_E_SEQ, expected);
        }
        return 0;
    }
    rc = take(w, fr, deliver, ctx);
    if (rc != 0) {
        return rc < 0 ? rc : 0;
    }
    return take_held(w, deliver, ctx);
}

int otaup_swire_feed(otaup_swire *w, const uint8_t *in, size_t len, uint32_t next_seq,
                     int (*deliver)(void *ctx, const otaup_sm *m), void *ctx, const char **why)
{
    int rc = 0;
    w->next_seq = next_seq;
    w->why[0] = '\0';
    if (why != NULL) {
        *why = w->why;
    }
    while (len > 0 || w->dec.have > 0) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&w->dec, in, len, &used, &fr);
        in += used;
        len -= used;
        if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
        if (ev == OTAUP_DEC_FRAME) {
            rc = on_frame(w, &fr, deliver, ctx);
            if (rc < 0) {
                break;
            }
            continue;
        }
        if (ev == OTAUP_E_FRAME_VERSION || ev == OTAUP_E_FRAME_FLAGS || ev == OTAUP_E_MSG_TYPE ||
            ev == OTAUP_E_MSG_LENGTH) {
            /* an intact frame that cannot be accepted: name it if it is next */
            uint32_t expected = w->rx_any ? w->rx_last + 1u : 0u;
            w->frames_in++;
            if (otaup_msg_type_sequenced(fr.type) && fr.seq == expected) {
                rc = send_nack(w, fr.seq, ev, expected);
                if (rc < 0) {
                    break;
                }
            }
            continue;
        }
        if (ev == OTAUP_E_INVAL) {
            rc = OTAUP_E_INTERNAL;
            break;
        }
        /* garbage, damaged frames: dropped; the terminal's timer recovers */
        if (ev == OTAUP_E_FRAME_CRC) {
            w->ours_seen = 1; /* its header checked out: a damaged frame of this protocol */
        }
        if (w->frames_in == 0) {
            w->garbage += ev == OTAUP_E_FRAME_GARBAGE ? w->dec.skipped : 1u;
        }
    }
    /* a peer that is not speaking this protocol at all */
    if (rc == 0 && w->frames_in == 0 && !w->ours_seen && w->garbage + w->dec.garbage >= GARBAGE_MAX) {
        snprintf(w->why, sizeof w->why, "not the otaup protocol: %u bytes without a frame",
                 w->garbage + w->dec.garbage);
        rc = OTAUP_E_FRAME_GARBAGE;
    }
    if (rc == 0 && w->ack_due) {
        rc = send_ack(w);
    }
    return rc;
}

/* ---- server -> terminal ---------------------------------------------------- */

static size_t slen(const char *s, size_t max)
{
    size_t n = 0;
    while (s != NULL && n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* Build the protocol message for m; text/version point into m. */
static int build(const otaup_sm *m, otaup_msg *o)
{
    memset(o, 0, sizeof *o);
    switch (m->type) {
    case OTAUP_SM_HELLO:
        o->type = OTAUP_MSG_HELLO;
        o->u.hello.role = OTAUP_ROLE_SERVER;
        o->u.hello.proto_min = OTAUP_PROTO_VERSION;
        o->u.hello.proto_max = OTAUP_PROTO_VERSION;
        o->u.hello.max_frame = OTAUP_SWIRE_RX_FRAME;
        o->u.hello.max_msg = OTAUP_SWIRE_RX_MSG;
        o->u.hello.window = OTAUP_SWIRE_RX_WINDOW;
        o->u.hello.caps = OTAUP_CAP_DEFLATE | OTAUP_CAP_BATCH | OTAUP_CAP_BACKUP | OTAUP_CAP_INPLACE |
                          OTAUP_CAP_AB | OTAUP_CAP_RESUME;
        return 0;
    case OTAUP_SM_NOTIFY:
    case OTAUP_SM_NOTE:
    case OTAUP_SM_DONE:
        o->type = OTAUP_MSG_NOTIFY;
        o->u.notify.kind = m->type == OTAUP_SM_NOTIFY ? OTAUP_NOTIFY_OFFER : OTAUP_NOTIFY_INFO;
        if (m->type == OTAUP_SM_NOTIFY || m->type == OTAUP_SM_NOTE) {
            o->u.notify.version.data = (const uint8_t *)m->version;
            o->u.notify.version.len = (uint32_t)slen(m->version, OTAUP_PROTO_VERSION_STR_MAX);
            o->u.notify.build_time = m->build_time > 0 ? (uint64_t)m->build_time : 0u;
            o->u.notify.download_size = m->total;
        }
        o->u.notify.text.data = (const uint8_t *)m->text;
        o->u.notify.text.len = (uint32_t)slen(m->text, 1024);
        if (!otaup_utf8_valid(o->u.notify.text.data, o->u.notify.text.len)) {
            o->u.notify.text.len = 0;
        }
        return 0;
    case OTAUP_SM_BACKUP_REQ:
        o->type = OTAUP_MSG_BACKUP_REQ;
        o->u.backup_req.region = (uint8_t)m->region;
        o->u.backup_req.flags = m->flags;
        o->u.backup_req.offset = m->offset;
        o->u.backup_req.max_chunk = m->total ? m->total : 1u;
        return 0;
    case OTAUP_SM_SIG_REQ:
        o->type = OTAUP_MSG_SIG_REQ;
        o->u.sig_req.block_size = m->step;
        o->u.sig_req.offset = m->offset;
        o->u.sig_req.max_chunk = m->total ? m->total : 1u;
        return 0;
    case OTAUP_SM_START:
        o->type = OTAUP_MSG_START;
        o->u.start.session = m->session_id;
        o->u.start.flags = m->flags;
        o->u.start.manifest.data = m->data;
        o->u.start.manifest.len = (uint32_t)m->len;
        return 0;
    case OTAUP_SM_BATCH:
        o->type = OTAUP_MSG_BATCH;
        o->u.batch.data = m->data;
        o->u.batch.len = (uint32_t)m->len;
        return 0;
    case OTAUP_SM_RESTORE:
        o->type = OTAUP_MSG_RESTORE_DATA;
        o->u.rdata.region = (uint8_t)m->region;
        o->u.rdata.flags = m->flags;
        o->u.rdata.offset = m->offset;
        o->u.rdata.data.data = m->data;
        o->u.rdata.data.len = (uint32_t)m->len;
        if (m->flags & OTAUP_RDATA_HASH) {
            o->u.rdata.hash.alg = OTAUP_HASH_XXH3_64;
            o->u.rdata.hash.len = 8;
            memcpy(o->u.rdata.hash.bytes, m->hash, 8);
        }
        if (m->flags & OTAUP_RDATA_TAG) {
            memcpy(o->u.rdata.tag, m->tag, OTAUP_RDATA_TAG_SIZE);
        }
        return 0;
    case OTAUP_SM_COMMIT:
        o->type = OTAUP_MSG_COMMIT;
        o->u.commit.session = m->session_id;
        o->u.commit.action = (uint8_t)m->code;
        return 0;
    case OTAUP_SM_ABORT_OUT:
        o->type = OTAUP_MSG_ABORT;
        o->u.abort.session = m->session_id;
        o->u.abort.reason = m->code < 0 ? m->code : OTAUP_E_CANCELED;
        return 0;
    case OTAUP_SM_PING_OUT:
        o->type = OTAUP_MSG_PING;
        o->u.ping.nonce = m->seq;
        return 0;
    default:
        return OTAUP_E_INVAL;
    }
}

static size_t payload_bound(const otaup_msg *o)
{
    switch (o->type) {
    case OTAUP_MSG_NOTIFY:
        return 14u + o->u.notify.version.len + o->u.notify.text.len;
    case OTAUP_MSG_START:
        return 12u + o->u.start.manifest.len;
    case OTAUP_MSG_BATCH:
        return o->u.batch.len;
    case OTAUP_MSG_RESTORE_DATA:
        return 8u + 33u + o->u.rdata.data.len;
    default:
        return 64u;
    }
}

size_t otaup_swire_bound(const otaup_sm *m, uint32_t max_frame)
{
    otaup_msg o;
    size_t p, room;
    if (build(m, &o) != 0 || max_frame <= OTAUP_FRAME_OVERHEAD) {
        return 0;
    }
    p = payload_bound(&o);
    room = max_frame - OTAUP_FRAME_OVERHEAD;
    return p + OTAUP_FRAME_OVERHEAD * (p / room + 1u);
}

int otaup_swire_frames(const otaup_sm *m, uint32_t max_frame)
{
    otaup_msg o;
    size_t room;
    uint8_t *tmp;
    int n;
    if (build(m, &o) != 0 || max_frame <= OTAUP_FRAME_OVERHEAD) {
        return OTAUP_E_INVAL;
    }
    if (!otaup_msg_type_fragmentable(o.type) || o.type == OTAUP_MSG_BATCH) {
        return 1;
    }
    tmp = malloc(payload_bound(&o));
    if (tmp == NULL) {
        return OTAUP_E_NOMEM;
    }
    n = otaup_msg_encode(&o, tmp, payload_bound(&o));
    free(tmp);
    if (n < 0) {
        return n;
    }
    room = max_frame - OTAUP_FRAME_OVERHEAD;
    return n == 0 ? 1 : (int)(((size_t)n + room - 1u) / room);
}

int otaup_swire_encode(otaup_swire *w, const otaup_sm *m, uint32_t max_frame, uint8_t *out, size_t cap)
{
    otaup_msg o;
    int rc;
    (void)w;
    rc = build(m, &o);
    if (rc != 0) {
        return rc;
    }
    if (otaup_msg_type_fragmentable(o.type) && o.type != OTAUP_MSG_BATCH) {
        size_t pb = payload_bound(&o), off = 0, total = 0;
        uint8_t *tmp = malloc(pb);
        uint32_t seq = m->seq;
        int n;
        if (tmp == NULL) {
            return OTAUP_E_NOMEM;
        }
        n = otaup_msg_encode(&o, tmp, pb);
        if (n < 0) {
            free(tmp);
            return n;
        }
        for (;;) {
            int k = otaup_frag_next(o.type, 0, seq++, tmp, (size_t)n, &off, max_frame, out + total, cap - total);
            if (k < 0) {
                free(tmp);
                return k;
            }
            if (k == 0) {
                break;
            }
            total += (size_t)k;
        }
        free(tmp);
        return (int)total;
    }
    return otaup_msg_encode_frame(&o, 0, m->seq, max_frame, out, cap);
}
