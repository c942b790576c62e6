/*
 * otaup — terminal applier: protocol glue around the executor and the
 * journal. C99, no heap, no OS. API and wire behaviour: otaup/apply.h,
 * docs/protocol.md; integration: docs/porting.md.
 */
#include <stddef.h>
#include <string.h>

#include "core/delta_hdr.h"
#include "core/proto_int.h"
#include "otaup/apply.h"
#include "otaup/delta.h"
#include "otaup/error.h"

/* what the send side still has to produce */
#define Q_INFO 0x01u
#define Q_BACKUP 0x02u
#define Q_RESULT 0x04u
#define Q_CONSENT 0x08u
#define Q_SIG 0x10u

#define ROLE_TERMINAL 2u

/* Ranges may end at 2^32 (b + blen == 0): compare offsets, not ends. */
OTAUP_RAMFUNC static int overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return alen != 0 && blen != 0 && (a >= b ? a - b < blen : b - a < alen);
}

OTAUP_RAMFUNC static int seq_after(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;
    return d != 0 && d < 0x80000000u;
}

/*
 * The id the journal keeps for a session's update (docs/protocol.md 3.5):
 * the signed manifest's (cfg.delta_id); else, when START's manifest field
 * begins with a delta header (the reference server sends the delta's
 * header and sections there), the header's check, the XXH3-64 of a
 * header that holds the source, target and body hashes; else the session
 * itself. So a resume, and any START under a journaled session's id,
 * continues only the update that session began: another delta under the
 * same session id is another update, which a terminal past its point of
 * no return refuses instead of running its later steps over the first
 * one's half-written image.
 */
/* The size of the delta header START's manifest field begins with, or 0. */
OTAUP_RAMFUNC static uint32_t start_header(const otaup_msg_start *s)
{
    static const char magic[8] = OTAUP_DELTA_MAGIC; /* its 8 bytes, no terminator */
    const uint8_t *m = s->manifest.data;
    uint32_t hs;
    if (s->manifest.len >= OTAUP_DELTA_HEADER_MIN && memcmp(m, magic, sizeof magic) == 0) {
        hs = otaup_get16(m + H_SIZE);
        if (hs >= OTAUP_DELTA_HEADER_MIN && hs <= s->manifest.len) {
            return hs;
        }
    }
    return 0;
}

OTAUP_RAMFUNC static uint64_t update_id(const otaup_apply *ap, const otaup_msg_start *s)
{
    uint32_t hs;
    if (ap->cfg.delta_id != NULL) {
        return ap->cfg.delta_id(ap->cfg.user_ctx, s->session);
    }
    hs = start_header(s);
    return hs != 0 ? otaup_get64(s->manifest.data + hs - 8u) : s->session;
}

/* The session a journaled one goes by on the wire: the START's session
 * when the journal keeps that as its update id, else the journal's 32-bit
 * session id (update_id). */
OTAUP_RAMFUNC static uint64_t wire_session(const otaup_apply *ap)
{
    const otaup_journal_state *st = &ap->journal.st;
    if (ap->cfg.delta_id == NULL && (uint32_t)st->delta_id == st->session_id) {
        return st->delta_id;
    }
    return st->session_id;
}

#if OTAUP_CONFIG_SEALED
/* Backups are sealed with the device key (security.md §7). */
#define SEALING(ap) ((ap)->cfg.device_key != NULL && (ap)->cfg.crypto != NULL)
/* A sealed BACKUP_DATA frame's bytes besides its chunk: frame overhead,
 * fixed fields, a SHA-256-sized hash, tag, seal header */
#define SEAL_FRAME_EXTRA (16u + 8u + 34u + OTAUP_RDATA_TAG_SIZE + OTAUP_SEAL_HEADER_LEN)
#else
#define SEALING(ap) 0
#endif

/* Capabilities advertised in HELLO and INFO. */
OTAUP_RAMFUNC static uint32_t caps(const otaup_apply *ap)
{
    return OTAUP_CAP_BATCH | OTAUP_CAP_RESUME | (ap->cfg.window_bits ? OTAUP_CAP_DEFLATE : 0u) |
           (OTAUP_CONFIG_BACKUP && ap->cfg.nregions ? OTAUP_CAP_BACKUP : 0u) |
           (OTAUP_CONFIG_BACKUP && ap->cfg.nregions && SEALING(ap) ? OTAUP_CAP_SEALED : 0u) |
           (ap->cfg.layout == OTAUP_LAYOUT_AB ? OTAUP_CAP_AB : OTAUP_CAP_INPLACE) |
           (ap->cfg.hooks.record != NULL ? OTAUP_CAP_SIGNED : 0u);
}

OTAUP_RAMFUNC static uint32_t now(const otaup_apply *ap)
{
    return ap->cfg.now_ms != NULL ? ap->cfg.now_ms(ap->cfg.clock_ctx) : 0u;
}

OTAUP_RAMFUNC size_t otaup_apply_work_size(uint32_t max_frame, uint32_t max_msg, uint32_t staging, uint32_t max_ops,
                                           unsigned wbits)
{
    size_t x = otaup_exec_work_size(staging, max_ops, wbits);
    if (x == 0 || max_frame < 64u || max_frame > OTAUP_CONFIG_FRAME_MAX || max_msg < 48u) {
        return 0;
    }
    return 2u * (size_t)max_frame + max_msg + OTAUP_APPLY_TXMSG + 64u + x;
}

/* ---- sending ------------------------------------------------------------- */

OTAUP_RAMFUNC static int link_send(otaup_apply *ap, const uint8_t *p, size_t n)
{
    int rc = ap->cfg.link.send(ap->cfg.link.ctx, p, n);
    if (rc < 0) {
        ap->link_error = rc;
        return rc;
    }
    return 0;
}

/* Unsequenced control frame (ACK, NACK, PROGRESS): carries the next seq.
 * Small per-message structs keep the stack shallow on these paths. */
OTAUP_RAMFUNC static int send_ctl(otaup_apply *ap, uint8_t type, const uint8_t *payload, int n)
{
    if (n < 0) {
        return n;
    }
    n = otaup_frame_encode(type, 0, ap->tx_seq, payload, (size_t)n, ap->ctl, sizeof ap->ctl);
    if (n < 0) {
        return n;
    }
    return link_send(ap, ap->ctl, (size_t)n);
}

OTAUP_RAMFUNC static int send_ack(otaup_apply *ap)
{
    otaup_msg_ack a;
    uint8_t p[24];
    memset(&a, 0, sizeof a);
    a.seq = ap->rx_last;
    /* status 0: a refused frame gets a NACK, never an ACK */
    a.window = ap->cfg.window ? ap->cfg.window : 1u;
    a.echo = ap->rx_echo;
    return send_ctl(ap, OTAUP_MSG_ACK, p, otaup_ack_encode(&a, p, sizeof p));
}

OTAUP_RAMFUNC static int send_nack(otaup_apply *ap, uint32_t seq, int err, uint32_t expected)
{
    otaup_msg_nack k;
    uint8_t p[16];
    memset(&k, 0, sizeof k);
    k.seq = seq;
    k.error = err < 0 ? err : OTAUP_E_INTERNAL;
    k.expected = expected;
    return send_ctl(ap, OTAUP_MSG_NACK, p, otaup_nack_encode(&k, p, sizeof p));
}

/* A/B: the slot whose image the terminal reports (INFO's LAYOUT, its block
 * signature). While a session is open in its journal, that session's
 * source: after the COMMIT's switch record and before the record that
 * ends the session (a reset between the two), the boot slot already names
 * the target, and a server that took it for the source would plan another
 * delta that the terminal could not resume. */
OTAUP_RAMFUNC static uint8_t run_slot(const otaup_apply *ap)
{
    const otaup_journal_state *st = &ap->journal.st;
    if (ap->cfg.layout != OTAUP_LAYOUT_AB) {
        return 0;
    }
    return st->session == OTAUP_JS_ACTIVE ? (uint8_t)((st->target_slot & 1u) ^ 1u) : (uint8_t)(st->boot_slot & 1u);
}

OTAUP_RAMFUNC static int exec_progress(void *ctx, uint32_t done, uint32_t total)
{
    otaup_apply *ap = ctx;
    otaup_msg_progress g;
    uint8_t p[24];
    uint32_t t = now(ap), gap = ap->cfg.progress_ms ? ap->cfg.progress_ms : 500u;
    if (!ap->connected || (uint32_t)(t - ap->last_progress) < gap) {
        return 0;
    }
    ap->last_progress = t;
    memset(&g, 0, sizeof g);
    g.step = otaup_exec_next_step(&ap->exec);
    g.bytes_done = done;
    g.bytes_total = total;
    g.phase = ap->phase;
    (void)send_ctl(ap, OTAUP_MSG_PROGRESS, p, otaup_progress_encode(&g, p, sizeof p)); /* loss is harmless */
    return 0;
}

/* Put the sequenced frame txbuf[0..n) in flight, with seq tx_seq (n <= 0:
 * nothing, or the error). The timer runs for the oldest outstanding frame. */
OTAUP_RAMFUNC static int send_seq(otaup_apply *ap, int n)
{
    if (n <= 0) {
        return n;
    }
    if (ap->tx_seq == ap->tx_pending) {
        ap->tx_time = now(ap);
        ap->tx_tries = 0;
        ap->rx_heard = 0;
    }
    ap->tx_seq++;
    return link_send(ap, ap->txbuf, (size_t)n);
}

/* Put the next fragment of txmsg in flight (nothing pending). */
OTAUP_RAMFUNC static int send_fragment(otaup_apply *ap)
{
    return send_seq(ap, otaup_frag_next(ap->tx_type, 0, ap->tx_seq, ap->txmsg, ap->txmsg_len, &ap->txmsg_off,
                                        ap->cfg.max_frame, ap->txbuf, ap->cfg.max_frame));
}

/* txmsg[0..n) is the next message to send, of `type` (n < 0: the error). */
OTAUP_RAMFUNC static int queue_msg(otaup_apply *ap, uint8_t type, int n)
{
    if (n < 0) {
        return n;
    }
    ap->tx_type = type;
    ap->txmsg_len = (size_t)n;
    ap->txmsg_off = 0;
    return 0;
}

/* A TLV of n 32-bit values. */
OTAUP_RAMFUNC static void tlv_u32s(otaup_wr *w, uint8_t tag, const uint32_t *v, unsigned n)
{
    size_t t = otaup_tlv_begin(w, tag);
    unsigned i;
    for (i = 0; i < n; i++) {
        otaup_wr_u32(w, v[i]);
    }
    otaup_tlv_end(w, t);
}

OTAUP_RAMFUNC static void tlv_str(otaup_wr *w, uint8_t tag, const char *str)
{
    size_t t = otaup_tlv_begin(w, tag);
    otaup_wr_bytes(w, (const uint8_t *)str, strlen(str));
    otaup_tlv_end(w, t);
}

/*
 * INFO (docs/protocol.md), written straight from the configuration into
 * txmsg: the same bytes as otaup_info_encode() of the equivalent
 * otaup_msg_info (tests/test_apply_link.c checks it), without that
 * struct's 600 bytes of stack. Every field was checked by
 * otaup_apply_init(); OTAUP_APPLY_TXMSG bounds the largest INFO.
 */
OTAUP_RAMFUNC static int build_info(otaup_apply *ap)
{
    const otaup_apply_config *c = &ap->cfg;
    const otaup_geometry *g = &c->flash->geo;
    otaup_proto_resume rs;
    otaup_wr w;
    uint32_t v[4];
    size_t t;
    unsigned i, ab = c->layout == OTAUP_LAYOUT_AB;
    otaup_wr_init(&w, ap->txmsg, OTAUP_APPLY_TXMSG);
    tlv_str(&w, OTAUP_INFO_TERMINAL_ID, c->id.terminal_id);
    tlv_str(&w, OTAUP_INFO_MODEL, c->id.model);
    tlv_str(&w, OTAUP_INFO_SW_VERSION, c->id.sw_version);
    t = otaup_tlv_begin(&w, OTAUP_INFO_BUILD_TIME);
    otaup_wr_u64(&w, c->id.build_time);
    otaup_tlv_end(&w, t);
    if (c->id.image_size != 0) {
        tlv_u32s(&w, OTAUP_INFO_IMAGE_SIZE, &c->id.image_size, 1);
    }
    t = otaup_tlv_begin(&w, OTAUP_INFO_GEOMETRY);
    otaup_wr_u32(&w, g->base);
    otaup_wr_u32(&w, g->write_size);
    otaup_wr_u8(&w, g->erased);
    otaup_wr_u8(&w, g->nruns);
    for (i = 0; i < g->nruns; i++) {
        otaup_wr_u32(&w, g->runs[i].count);
        otaup_wr_u32(&w, g->runs[i].size);
    }
    otaup_tlv_end(&w, t);
    v[0] = ap->windows[0].addr;
    v[1] = ap->windows[0].len;
    tlv_u32s(&w, OTAUP_INFO_WINDOW, v, 2);
    for (i = 0; i < c->nregions; i++) {
        t = otaup_tlv_begin(&w, OTAUP_INFO_REGION);
        otaup_wr_u8(&w, c->regions[i].id);
        otaup_wr_u8(&w, c->regions[i].flags);
        otaup_wr_u32(&w, c->regions[i].addr);
        otaup_wr_u32(&w, c->regions[i].len);
        otaup_wr_u8(&w, 0); /* no hash */
        otaup_tlv_end(&w, t);
    }
    t = otaup_tlv_begin(&w, OTAUP_INFO_LAYOUT);
    otaup_wr_u8(&w, c->layout);
    otaup_wr_u8(&w, run_slot(ap));
    for (i = 0; i < 2; i++) {
        otaup_wr_u32(&w, i == 0 || ab ? c->slots[i].addr : 0u);
        otaup_wr_u32(&w, i == 0 || ab ? c->slots[i].len : 0u);
    }
    otaup_tlv_end(&w, t);
    if (c->scratch.len != 0) {
        v[0] = c->scratch.addr;
        v[1] = c->scratch.len;
        tlv_u32s(&w, OTAUP_INFO_SCRATCH, v, 2);
    }
    v[0] = caps(ap);
    tlv_u32s(&w, OTAUP_INFO_CAPS, v, 1);
    tlv_u32s(&w, OTAUP_INFO_MAX_FRAME, &c->max_frame, 1);
    v[0] = c->staging_size;
    v[1] = (uint32_t)c->work_size;
    tlv_u32s(&w, OTAUP_INFO_MEMORY, v, 2);
    otaup_apply_resume_state(ap, &rs);
    t = otaup_tlv_begin(&w, OTAUP_INFO_RESUME);
    otaup_wr_u64(&w, rs.session);
    otaup_wr_u32(&w, rs.next_step);
    otaup_wr_u8(&w, rs.phase);
    otaup_wr_u8(&w, rs.flags);
    otaup_tlv_end(&w, t);
    tlv_u32s(&w, OTAUP_INFO_SEC_COUNTER, &c->id.sec_counter, 1);
    if (c->max_ops != 0) {
        t = otaup_tlv_begin(&w, OTAUP_INFO_LIMITS);
        otaup_wr_u8(&w, c->window_bits);
        otaup_wr_u8(&w, 0);
        otaup_wr_u16(&w, c->max_ops);
        otaup_tlv_end(&w, t);
    }
#if OTAUP_CONFIG_SIGNATURE
    if (c->id.image_sha256 != NULL) {
        t = otaup_tlv_begin(&w, OTAUP_INFO_IMAGE_SHA256);
        otaup_wr_bytes(&w, c->id.image_sha256, 32u);
        otaup_tlv_end(&w, t);
    }
#endif
    return queue_msg(ap, OTAUP_MSG_INFO, w.err != 0 ? w.err : (int)w.n);
}

#if OTAUP_CONFIG_BACKUP
/*
 * The frame of chunk k of the backup stream, into txbuf: the region's bytes
 * from bk_start + k * bk_chunk, read from flash, with seq bk_seq0 + k. A
 * chunk is rebuilt this way each time it is sent: the bytes are identical
 * as long as the region is not written during the backup (nothing of the
 * applier writes it then; porting.md). *last: this is the stream's last
 * chunk (LAST, with the hash of the whole region taken with the request:
 * a resend may come while a step of the update runs, when the executor
 * cannot hash).
 */
OTAUP_RAMFUNC static int build_chunk(otaup_apply *ap, uint32_t k, int *last)
{
    const otaup_apply_region *r = &ap->cfg.regions[ap->bk_region];
    otaup_msg_region_data m;
    uint32_t off = ap->bk_start + k * ap->bk_chunk, left = r->len - off, n = left < ap->bk_chunk ? left : ap->bk_chunk;
    uint8_t *data = ap->txbuf; /* read here, encoded into txmsg, framed back here */
    uint32_t h = 0;            /* sealed chunk 0: the stream's header first */
    int rc;
#if OTAUP_CONFIG_SEALED
    if (ap->bk_sealed && off == 0) {
        h = OTAUP_SEAL_HEADER_LEN;
    }
#endif
    memset(&m, 0, sizeof m);
    m.region = r->id;
    m.offset = off;
    rc = n > 0 ? ap->cfg.flash->read(ap->cfg.flash, r->addr + off, data + h, n) : 0;
    if (rc != 0) {
        return rc;
    }
    m.data.data = data;
    m.data.len = n;
    *last = n == left;
    if (n == left) {
        m.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
        m.hash.alg = OTAUP_HASH_XXH3_64;
        m.hash.len = 8;
        memcpy(m.hash.bytes, ap->bk_hash, 8);
    }
#if OTAUP_CONFIG_SEALED
    if (SEALING(ap) && n == left) {
        m.hash.alg = OTAUP_HASH_SHA256; /* the keyed digest (security.md §7) */
        m.hash.len = 32;
        memcpy(m.hash.bytes, ap->bk_digest, 32);
    }
    if (ap->bk_sealed && n > 0) {
        /* chunk k of the sealed stream, sealed again from the plain bytes:
         * the same bytes each time (one salt per backup, chunk k = seal
         * chunk off / bk_chunk, region unchanged); chunk 0 begins with the
         * stream's header */
        rc = otaup_seal_seek(&ap->seal, off / ap->bk_chunk);
        if (rc == 0) {
            rc = otaup_seal_chunk(&ap->seal, data + h, n, data + h); /* ciphertext, then the tag */
        }
        if (rc < 0) {
            return rc;
        }
        memcpy(m.tag, data + h + n, OTAUP_RDATA_TAG_SIZE);
        memcpy(data, ap->seal.header, h);
        m.flags |= OTAUP_RDATA_TAG;
        m.data.len = h + n;
    }
#endif
    rc = otaup_region_data_encode(OTAUP_MSG_BACKUP_DATA, &m, ap->txmsg, OTAUP_APPLY_TXMSG);
    if (rc < 0) {
        return rc;
    }
    return otaup_frame_encode(OTAUP_MSG_BACKUP_DATA, 0, ap->bk_seq0 + k, ap->txmsg, (size_t)rc, ap->txbuf,
                              ap->cfg.max_frame);
}

/* Backup chunks in flight at most: the server's window, within the knob
 * (an advertised 0 counts as 1: the oldest chunk's timer asks again). */
OTAUP_RAMFUNC static uint32_t bk_window(const otaup_apply *ap)
{
    uint32_t w = ap->peer_window ? ap->peer_window : 1u;
    return w < OTAUP_CONFIG_BACKUP_WINDOW ? w : OTAUP_CONFIG_BACKUP_WINDOW;
}

/* Send the stream's next chunk. */
OTAUP_RAMFUNC static int send_chunk(otaup_apply *ap)
{
    int last = 0, n = build_chunk(ap, ap->tx_seq - ap->bk_seq0, &last);
    if (n > 0 && last) {
        ap->tx_what &= (uint8_t)~Q_BACKUP;
    }
    return send_seq(ap, n);
}

/* Go-back-N: the outstanding chunks again, from the oldest, rebuilt; no
 * more than the window allows now (it may have shrunk since they went). */
OTAUP_RAMFUNC static int resend_chunks(otaup_apply *ap)
{
    uint32_t seq, w = bk_window(ap);
    for (seq = ap->tx_pending; seq != ap->tx_seq && seq - ap->tx_pending < w; seq++) {
        int last, n = build_chunk(ap, seq - ap->bk_seq0, &last);
        if (n < 0) {
            return n;
        }
        n = link_send(ap, ap->txbuf, (size_t)n);
        if (n != 0) {
            return n;
        }
    }
    return 0;
}

#endif

OTAUP_RAMFUNC static int build_result(otaup_apply *ap)
{
    otaup_msg_result m;
    memset(&m, 0, sizeof m);
    m.session = ap->result_session;
    m.code = ap->result_code;
    return queue_msg(ap, OTAUP_MSG_RESULT, otaup_result_encode(&m, ap->txmsg, OTAUP_APPLY_TXMSG));
}

#if OTAUP_CONFIG_SIGNATURE
/* The next chunk of the installed image's block signature (SIG_REQ). */
OTAUP_RAMFUNC static int build_sig(otaup_apply *ap)
{
    otaup_msg_sig_data m;
    uint32_t left = ap->sig.total - ap->sig.pos, n = left < ap->sig_chunk ? left : ap->sig_chunk;
    int rc;
    memset(&m, 0, sizeof m);
    m.offset = ap->sig.pos;
    m.total = ap->sig.total;
    rc = otaup_sig_calc_read(&ap->sig, ap->txbuf, n); /* txbuf: nothing is in flight while building */
    if (rc < 0) {
        return rc;
    }
    m.data.data = ap->txbuf;
    m.data.len = (uint32_t)rc;
    m.flags = m.offset + m.data.len == m.total ? OTAUP_SDATA_LAST : 0u;
    return queue_msg(ap, OTAUP_MSG_SIG_DATA, otaup_sig_data_encode(&m, ap->txmsg, OTAUP_APPLY_TXMSG));
}

#endif

/* Keep the send side going: one sequenced frame in flight at a time, or a
 * window of backup chunks. */
OTAUP_RAMFUNC static int pump(otaup_apply *ap)
{
    int rc;
    while (ap->connected) {
        uint32_t out = ap->tx_seq - ap->tx_pending;
#if OTAUP_CONFIG_BACKUP
        if (ap->tx_bk) {
            if (ap->tx_what & Q_BACKUP) {
                if (out >= bk_window(ap)) {
                    return 0;
                }
                rc = send_chunk(ap);
                if (rc != 0) {
                    return rc;
                }
                continue;
            }
            if (out != 0) {
                return 0;
            }
            ap->tx_bk = 0; /* every chunk acknowledged */
        }
#endif
        if (out != 0) {
            return 0;
        }
        if (ap->txmsg_off < ap->txmsg_len) {
            return send_fragment(ap);
        }
        ap->txmsg_len = ap->txmsg_off = 0;
        if (ap->tx_what & Q_INFO) {
            ap->tx_what &= (uint8_t)~Q_INFO;
            rc = build_info(ap);
#if OTAUP_CONFIG_BACKUP
        } else if (ap->tx_what & Q_BACKUP) {
            ap->tx_bk = 1; /* the stream begins: chunk k goes with seq bk_seq0 + k */
            ap->bk_seq0 = ap->tx_seq;
            rc = 0;
#endif
#if OTAUP_CONFIG_SIGNATURE
        } else if (ap->tx_what & Q_SIG) {
            rc = build_sig(ap);
            if (ap->sig.pos >= ap->sig.total) {
                ap->tx_what &= (uint8_t)~Q_SIG;
            }
#endif
        } else if (ap->tx_what & Q_RESULT) {
            ap->tx_what &= (uint8_t)~Q_RESULT;
            rc = build_result(ap);
        } else {
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- configuration -------------------------------------------------------- */

/* A/B: the slot an update with id `did` writes: the journaled session's
 * target when it continues that session, else the slot that does not boot
 * now (after a switch, the one that booted before it). */
OTAUP_RAMFUNC static uint8_t ab_target(const otaup_apply *ap, uint64_t did)
{
    const otaup_journal_state *st = &ap->journal.st;
    return st->session == OTAUP_JS_ACTIVE && st->delta_id == did ? (uint8_t)(st->target_slot & 1u)
                                                                 : (uint8_t)(st->boot_slot ? 0u : 1u);
}

/* An identity string INFO can carry: 1..max bytes of UTF-8. */
OTAUP_RAMFUNC static int id_ok(const char *str, size_t max)
{
    size_t n = str != NULL ? strlen(str) : 0;
    return n >= 1 && n <= max && otaup_utf8_valid((const uint8_t *)str, n);
}

/* The areas a user-data region must not touch. */
static const uint16_t areas[] = {
    (uint16_t)offsetof(otaup_apply_config, slots[0]), (uint16_t)offsetof(otaup_apply_config, slots[1]),
    (uint16_t)offsetof(otaup_apply_config, journal), (uint16_t)offsetof(otaup_apply_config, scratch),
    (uint16_t)offsetof(otaup_apply_config, updater),
};

OTAUP_RAMFUNC int otaup_apply_init(otaup_apply *ap, const otaup_apply_config *cfg)
{
    otaup_exec_config x; /* the executor keeps its own copy */
    uint8_t *w;
    size_t need, xw;
    uint32_t i, k;
    int rc;
    if (ap == NULL || cfg == NULL || cfg->flash == NULL || cfg->link.send == NULL || cfg->work == NULL ||
        !id_ok(cfg->id.terminal_id, OTAUP_PROTO_STR_MAX) || !id_ok(cfg->id.model, OTAUP_PROTO_STR_MAX) ||
        !id_ok(cfg->id.sw_version, OTAUP_PROTO_VERSION_STR_MAX) || cfg->nregions > OTAUP_APPLY_MAX_REGIONS) {
        return OTAUP_E_INVAL;
    }
    memset(ap, 0, sizeof *ap);
    ap->cfg = *cfg;
    need = otaup_apply_work_size(cfg->max_frame, cfg->max_msg, cfg->staging_size, cfg->max_ops, cfg->window_bits);
    if (need == 0) {
        return OTAUP_E_INVAL;
    }
    if (cfg->work_size < need) {
        return OTAUP_E_BUFFER;
    }
#if OTAUP_CONFIG_SEALED
    if (SEALING(ap) && cfg->max_frame < SEAL_FRAME_EXTRA + OTAUP_SEAL_CHUNK_MIN + cfg->flash->geo.write_size) {
        /* frames too small for a sealed backup chunk: said here, not at
         * the first backup of the first upgrade the user asked for */
        return OTAUP_E_BUFFER;
    }
#endif
    /* regions must not overlap each other */
    for (i = 0; i < cfg->nregions; i++) {
        const otaup_apply_region *r = &cfg->regions[i];
        if (!otaup_geometry_is_sector_aligned(&cfg->flash->geo, r->addr, r->len) || r->len == 0 ||
            (r->flags & (uint8_t)~OTAUP_REGION_PERSONAL) != 0) {
            return OTAUP_E_REGION;
        }
        for (k = 0; k < sizeof areas / sizeof areas[0]; k++) {
            const otaup_region *a = (const otaup_region *)(const void *)((const uint8_t *)cfg + areas[k]);
            if (overlap(r->addr, r->len, a->addr, a->len)) {
                return OTAUP_E_REGION;
            }
        }
        for (k = 0; k < i; k++) {
            if (overlap(r->addr, r->len, cfg->regions[k].addr, cfg->regions[k].len) || r->id == cfg->regions[k].id) {
                return OTAUP_E_REGION;
            }
        }
    }
    /* a slot the update may write (in A/B either, whichever boots) must not
     * touch the other slot, the journal, the scratch area or the updater */
    for (i = 0; i < (cfg->layout == OTAUP_LAYOUT_AB ? 2u : 1u); i++) {
        for (k = cfg->layout == OTAUP_LAYOUT_AB && i == 0 ? 1u : 2u; k < sizeof areas / sizeof areas[0]; k++) {
            const otaup_region *a = (const otaup_region *)(const void *)((const uint8_t *)cfg + areas[k]);
            if (overlap(cfg->slots[i].addr, cfg->slots[i].len, a->addr, a->len)) {
                return OTAUP_E_REGION;
            }
        }
    }
    rc = otaup_journal_mount(&ap->journal, cfg->flash, cfg->journal.addr, cfg->journal.len);
    if (rc != 0) {
        return rc;
    }
    /* carve: rx buffer, tx frame, reassembly, tx message, executor work */
    w = (uint8_t *)cfg->work;
    rc = otaup_decoder_init(&ap->dec, w, cfg->max_frame, cfg->max_frame);
    if (rc != 0) {
        return rc;
    }
    w += cfg->max_frame;
    ap->txbuf = w;
    w += cfg->max_frame;
    rc = otaup_reasm_init(&ap->reasm, w, cfg->max_msg);
    if (rc != 0) {
        return rc;
    }
    w += cfg->max_msg;
    ap->txmsg = w;
    w += OTAUP_APPLY_TXMSG;
    xw = cfg->work_size - (size_t)(w - (uint8_t *)cfg->work);
    /* writable window: the running slot in place; in A/B the active
     * session's target slot, else the slot that does not boot (set again
     * by each START and after the COMMIT's switch) */
    ap->windows[0] = cfg->slots[cfg->layout == OTAUP_LAYOUT_AB ? ab_target(ap, ap->journal.st.delta_id) : 0u];
    for (i = 0; i < cfg->nregions; i++) {
        ap->protect[i].addr = cfg->regions[i].addr;
        ap->protect[i].len = cfg->regions[i].len;
    }
    ap->protect[cfg->nregions] = cfg->updater;
    memset(&x, 0, sizeof x);
    x.flash = cfg->flash;
    x.journal = &ap->journal;
    x.layout = cfg->layout;
    x.window_bits = cfg->window_bits;
    x.windows = ap->windows;
    x.nwindows = 1;
    x.protect = ap->protect;
    x.nprotect = (uint32_t)cfg->nregions + 1u;
    x.scratch = cfg->scratch;
    if (cfg->layout == OTAUP_LAYOUT_INPLACE) {
        x.running = cfg->slots[0];
    }
    x.work = w;
    x.work_size = xw;
    x.staging_size = cfg->staging_size;
    x.max_ops = cfg->max_ops;
    x.hooks = cfg->hooks;
    x.progress = exec_progress;
    x.progress_ctx = ap;
    rc = otaup_exec_init(&ap->exec, &x);
    if (rc != 0) {
        return rc;
    }
    if (ap->journal.st.session == OTAUP_JS_ENDED) {
        ap->result_valid = 1;
        ap->result_code = ap->journal.st.result;
        ap->result_session = wire_session(ap);
    }
    return 0;
}

OTAUP_RAMFUNC void otaup_apply_resume_state(const otaup_apply *ap, otaup_proto_resume *out)
{
    const otaup_journal_state *st = &ap->journal.st;
    memset(out, 0, sizeof *out);
    if (st->session == OTAUP_JS_ACTIVE) {
        out->session = wire_session(ap);
        out->next_step = st->next_step;
        /* a region half restored (journaled BUSY) is where it stands, also
         * after a reset, when nothing else of the phase is known */
        out->phase = st->restore == OTAUP_JRESTORE_BUSY ? OTAUP_PHASE_RESTORE
                     : ap->phase != OTAUP_PHASE_IDLE   ? ap->phase
                                                       : OTAUP_PHASE_TRANSFER;
        if (st->scratch != OTAUP_JSCRATCH_NONE && st->scratch_step == st->next_step) {
            out->flags = OTAUP_RESUME_IN_SCRATCH;
        }
    }
}

OTAUP_RAMFUNC int otaup_apply_connect(otaup_apply *ap)
{
    otaup_msg_hello m;
    uint8_t p[OTAUP_HELLO_SIZE];
    int n;
    if (ap == NULL) {
        return OTAUP_E_INVAL;
    }
    otaup_decoder_reset(&ap->dec);
    otaup_reasm_reset(&ap->reasm);
    ap->rx_any = 0;
    ap->rx_gap_nacked = 0;
    ap->rx_ref = 0;
    ap->tx_seq = 0;
    ap->tx_pending = 0;
    ap->tx_bk = 0;
    ap->peer_window = 1;
    ap->tx_what = 0;
    ap->txmsg_len = ap->txmsg_off = 0;
    ap->link_error = 0;
    ap->connected = 1;
    ap->result_valid = ap->result_valid && ap->journal.st.session == OTAUP_JS_ENDED;
    memset(&m, 0, sizeof m);
    m.role = ROLE_TERMINAL;
    m.proto_min = OTAUP_PROTO_VERSION;
    m.proto_max = OTAUP_PROTO_VERSION;
    m.max_frame = ap->cfg.max_frame;
    m.max_msg = ap->cfg.max_msg;
    m.window = ap->cfg.window ? ap->cfg.window : 1u;
    m.caps = caps(ap);
    n = otaup_hello_encode(&m, p, sizeof p);
    if (n >= 0) {
        n = otaup_frame_encode(OTAUP_MSG_HELLO, 0, ap->tx_seq, p, (size_t)n, ap->txbuf, ap->cfg.max_frame);
    }
    if (n < 0) {
        return n;
    }
    ap->tx_what = Q_INFO;
    return send_seq(ap, n);
}

/* ---- executing received messages --------------------------------------- */

#if OTAUP_CONFIG_BACKUP
OTAUP_RAMFUNC static int find_region(const otaup_apply *ap, uint8_t id)
{
    uint32_t i;
    for (i = 0; i < ap->cfg.nregions; i++) {
        if (ap->cfg.regions[i].id == id) {
            return (int)i;
        }
    }
    return OTAUP_E_REGION;
}

#endif

OTAUP_RAMFUNC static void set_result(otaup_apply *ap, uint64_t session, int code)
{
    ap->result_valid = 1;
    ap->result_session = session;
    ap->result_code = code;
    ap->tx_what |= Q_RESULT;
    ap->session_open = 0;
    ap->phase = OTAUP_PHASE_DONE;
}

OTAUP_RAMFUNC static int do_start(otaup_apply *ap, const otaup_msg_start *s)
{
    const otaup_journal_state *st = &ap->journal.st;
    uint8_t target = 0;
    uint64_t did;
    uint32_t hs;
    int rc;
    if (s->session == 0) {
        return OTAUP_E_MSG_FIELD;
    }
    if (ap->cfg.manifest != NULL) {
        rc = ap->cfg.manifest(ap->cfg.user_ctx, s->session, s->manifest.data, s->manifest.len);
        if (rc != 0) {
            return rc;
        }
    }
    /* a delta header: its needs against the terminal's means before
     * anything is journaled (delta-format.md, Header); refused later, at
     * the step that exceeds them, an in-place update past its point of no
     * return could neither finish nor be replaced */
    hs = start_header(s);
    if (hs != 0) {
        rc = otaup_exec_check_limits(&ap->exec, otaup_get32(s->manifest.data + H_STAGING),
                                     otaup_get16(s->manifest.data + H_MAX_OPS), s->manifest.data[H_WBITS]);
        if (rc != 0) {
            return rc;
        }
    }
    did = update_id(ap, s);
    if ((s->flags & OTAUP_START_RESUME) &&
        !(st->session == OTAUP_JS_ACTIVE && st->delta_id == did) &&
        !(st->session == OTAUP_JS_ENDED && st->delta_id == did)) {
        return OTAUP_E_SESSION; /* nothing of this session to resume */
    }
    /* an unsigned update that begins (no open session, not the last one
     * again): its header's source must be what the flash holds, or its
     * first steps would rewrite an image it was not planned from before a
     * later one is refused (a signed one: the manifest hook binds the
     * source) */
    if (hs != 0 && ap->cfg.delta_id == NULL && st->session != OTAUP_JS_ACTIVE && st->delta_id != did &&
        otaup_get32(s->manifest.data + H_SOURCE_SIZE) != 0) {
        uint8_t h[16];
        rc = otaup_exec_hash_range(&ap->exec, otaup_get32(s->manifest.data + H_SOURCE_ADDR),
                                   otaup_get32(s->manifest.data + H_SOURCE_SIZE), OTAUP_HASH_XXH3_128, h);
        if (rc < 0) {
            return rc;
        }
        if (memcmp(h, s->manifest.data + H_SOURCE_HASH, sizeof h) != 0) {
            return OTAUP_E_SOURCE_MISMATCH;
        }
    }
    if (ap->cfg.layout == OTAUP_LAYOUT_AB) {
        target = ab_target(ap, did);
    }
    rc = otaup_exec_start(&ap->exec, (uint32_t)s->session, did, target);
    if (rc < 0) {
        return rc; /* refused: the writable window stays (tests/test_termrev2_apply.c) */
    }
    ap->windows[0] = ap->cfg.slots[target];
    /* an unsigned update with its header: COMMIT ends the session only over
     * the new image it names (a signed one: the final hook's SHA-256). Set
     * only now: a START refused above leaves the open session's check as
     * it was (tests/test_termrev2_apply.c) */
    ap->target_known = ap->cfg.delta_id == NULL && hs != 0;
    if (ap->target_known) {
        ap->target_addr = otaup_get32(s->manifest.data + H_TARGET_ADDR);
        ap->target_len = otaup_get32(s->manifest.data + H_TARGET_SIZE);
        memcpy(ap->target_hash, s->manifest.data + H_TARGET_HASH, sizeof ap->target_hash);
    }
    ap->session = s->session;
    ap->resumed = rc == 1;
    ap->session_open = rc != 2;
    ap->phase = rc == 2 ? OTAUP_PHASE_DONE : OTAUP_PHASE_TRANSFER;
    if (rc == 2) {
        set_result(ap, s->session, 0);
    }
    return 0;
}

#if OTAUP_CONFIG_SEALED
/* HMAC-SHA-256(device key, label || le32(region id) [|| extra[0..32)]). */
OTAUP_RAMFUNC static int seal_derive(const otaup_apply *ap, const char *label, size_t llen, uint8_t region,
                                     const uint8_t *extra, uint8_t out[OTAUP_SHA256_LEN])
{
    uint8_t in[16u + 4u + OTAUP_SHA256_LEN];
    size_t n = llen;
    memcpy(in, label, llen);
    in[n++] = region;
    in[n++] = 0;
    in[n++] = 0;
    in[n++] = 0;
    if (extra != NULL) {
        memcpy(in + n, extra, OTAUP_SHA256_LEN);
        n += OTAUP_SHA256_LEN;
    }
    return otaup_hmac_sha256(ap->cfg.crypto, ap->cfg.device_key, OTAUP_AES256_KEY_LEN, in, n, out);
}

/*
 * A BACKUP_REQ on a sealing terminal (security.md §7): the keyed digest of
 * the region (what the server compares instead of a plain hash) and, for a
 * data request from offset 0, a new sealed stream: one salt for the whole
 * backup, seal chunk = BACKUP_DATA chunk, a multiple of the write size.
 * A request from another offset continues the stream begun for the same
 * region (same salt, header and chunk size), from a chunk boundary; so
 * does one from offset 0 while the region's keyed digest is unchanged:
 * every request over the same content then yields the same stream, byte
 * for byte, and chunks of two requests can never be mixed into a stream
 * that does not open (a server that asked again while chunks of its first
 * request were still on their way).
 */
OTAUP_RAMFUNC static int seal_backup(otaup_apply *ap, int ri, const otaup_msg_backup_req *q)
{
    static const char dlabel[] = "otaup-region-v1", slabel[] = "otaup-salt-v1";
    const otaup_apply_region *r = &ap->cfg.regions[ri];
    uint8_t sha[OTAUP_SHA256_LEN], k[OTAUP_SHA256_LEN], hdr[OTAUP_SEAL_HEADER_LEN];
    int same;
    uint32_t room = ap->cfg.max_frame, ws = ap->cfg.flash->geo.write_size, chunk;
    int rc;
    room = room > SEAL_FRAME_EXTRA ? room - SEAL_FRAME_EXTRA : 0u;
    if (room > OTAUP_APPLY_TXMSG - (SEAL_FRAME_EXTRA - 16u)) {
        room = OTAUP_APPLY_TXMSG - (SEAL_FRAME_EXTRA - 16u); /* the message, without the frame's overhead */
    }
    chunk = q->max_chunk < room ? q->max_chunk : room;
    if (ws > 1u && chunk >= ws) {
        chunk -= chunk % ws; /* a restored chunk is programmed whole */
    }
    rc = otaup_sha256_flash(ap->cfg.crypto, ap->cfg.flash, r->addr, r->len, ap->exec.io, sizeof ap->exec.io, sha);
    if (rc == 0) {
        rc = seal_derive(ap, dlabel, sizeof dlabel - 1u, r->id, NULL, k);
    }
    if (rc == 0) {
        rc = otaup_hmac_sha256(ap->cfg.crypto, k, sizeof k, sha, sizeof sha, hdr);
    }
    memset(k, 0, sizeof k);
    if (rc != 0) {
        return rc;
    }
    /* the stream begun for this region, over the same content */
    same = ap->bk_sealed && !ap->seal.opening && ap->seal.region == r->id && chunk >= ap->seal.chunk &&
           memcmp(hdr, ap->bk_digest, OTAUP_SHA256_LEN) == 0;
    memcpy(ap->bk_digest, hdr, OTAUP_SHA256_LEN);
    if (!same) {
        ap->bk_sealed = 0; /* no stream over this content: never continue one (a GCM nonce reused) */
    }
    if (q->flags & OTAUP_BACKUP_HASH_ONLY) {
        return 0;
    }
    if (q->offset != 0 || same) {
        if (!same || q->offset % ap->seal.chunk != 0) {
            return OTAUP_E_RANGE; /* no stream to continue: ask from offset 0 */
        }
        ap->bk_chunk = (uint16_t)ap->seal.chunk;
        return 0;
    }
    ap->bk_sealed = 0;
    if ((ws > 1u && chunk % ws != 0) || chunk < OTAUP_SEAL_CHUNK_MIN) {
        return OTAUP_E_BUFFER; /* frames too small for a sealed chunk */
    }
    if (ap->cfg.crypto->random != NULL) {
        rc = ap->cfg.crypto->random(ap->cfg.crypto, k, OTAUP_SEAL_SALT_LEN);
    } else {
        /* no random source: a salt bound to the content (equal contents,
         * equal backups; different contents, different keys) */
        rc = seal_derive(ap, slabel, sizeof slabel - 1u, r->id, sha, k);
    }
    if (rc == 0) {
        rc = otaup_seal_begin(&ap->seal, ap->cfg.crypto, ap->cfg.device_key, r->id, r->len, chunk, k, hdr);
    }
    memset(k, 0, sizeof k);
    if (rc != 0) {
        return rc;
    }
    ap->bk_sealed = 1;
    ap->bk_chunk = (uint16_t)chunk;
    return 0;
}

/*
 * RESTORE_DATA on a sealing terminal: authenticate and decrypt the chunk
 * in place (in the received message) before anything of it is written.
 * Chunk 0 begins with the stream's header. The plain bytes end up at the
 * start of d->data (*n of them).
 */
OTAUP_RAMFUNC static int seal_restore(otaup_apply *ap, const otaup_apply_region *r, const otaup_msg_region_data *d,
                                      uint32_t *n)
{
    uint8_t *data = (uint8_t *)(uintptr_t)d->data.data; /* the receive buffer: ours to reuse */
    uint32_t len = d->data.len;
    int rc;
    if (!(d->flags & OTAUP_RDATA_TAG) || (d->flags & OTAUP_RDATA_HASH)) {
        return OTAUP_E_DECRYPT; /* a plain chunk cannot be authenticated */
    }
    if (d->offset == 0) {
        ap->rs_sealed = 0;
        if (len < OTAUP_SEAL_HEADER_LEN) {
            return OTAUP_E_DECRYPT;
        }
        rc = otaup_seal_open_begin(&ap->seal, ap->cfg.crypto, ap->cfg.device_key, r->id, data);
        if (rc != 0) {
            return rc;
        }
        if (ap->seal.total != r->len) {
            return OTAUP_E_DECRYPT;
        }
        data += OTAUP_SEAL_HEADER_LEN;
        len -= OTAUP_SEAL_HEADER_LEN;
    } else if (!ap->rs_sealed || ap->rs_region != d->region || ap->rs_next != d->offset ||
               ap->seal.done != d->offset) {
        return OTAUP_E_RANGE; /* restart the region from offset 0 */
    }
    rc = otaup_seal_open_detached(&ap->seal, data, len, d->tag, data);
    if (rc < 0) {
        return rc;
    }
    if (((d->flags & OTAUP_RDATA_LAST) != 0) != (otaup_seal_complete(&ap->seal) != 0)) {
        return OTAUP_E_DECRYPT; /* LAST must end the sealed stream, and only it */
    }
    memmove((uint8_t *)(uintptr_t)d->data.data, data, len); /* after the header: to the start */
    *n = len;
    return 0;
}

#endif

#if OTAUP_CONFIG_BACKUP
OTAUP_RAMFUNC static int do_backup_req(otaup_apply *ap, const otaup_msg_backup_req *q)
{
    int ri = find_region(ap, q->region), rc;
    uint32_t room = ap->cfg.max_frame - 16u - 8u - 9u;
    if (ri < 0) {
        return ri;
    }
    if (q->offset > ap->cfg.regions[ri].len) {
        return OTAUP_E_RANGE;
    }
    if (ap->tx_bk && ap->tx_seq != ap->tx_pending) {
        /* chunks of the previous request are unacknowledged and must stay
         * rebuildable: that stream stops, its outstanding chunks go again
         * now, and this request is to be sent again (it is accepted once
         * they are acknowledged) */
        ap->tx_what &= (uint8_t)~Q_BACKUP;
        ap->tx_time = now(ap) - (ap->cfg.retransmit_ms ? ap->cfg.retransmit_ms : 1000u);
        return OTAUP_E_AGAIN;
    }
    if (room > OTAUP_APPLY_TXMSG - 32u) {
        room = OTAUP_APPLY_TXMSG - 32u;
    }
#if OTAUP_CONFIG_SEALED
    if (SEALING(ap)) {
        rc = seal_backup(ap, ri, q);
        if (rc != 0) {
            return rc;
        }
    } else
#endif
    {
        rc = otaup_exec_hash_range(&ap->exec, ap->cfg.regions[ri].addr, ap->cfg.regions[ri].len,
                                   OTAUP_HASH_XXH3_64, ap->bk_hash);
        if (rc < 0) {
            return rc;
        }
        ap->bk_chunk = (uint16_t)(q->max_chunk < room ? q->max_chunk : room);
    }
    ap->tx_bk = 0;
    ap->bk_region = (uint8_t)ri;
    ap->bk_start = q->offset;
    if (q->flags & OTAUP_BACKUP_HASH_ONLY) {
        ap->bk_chunk = 0; /* only the hash of the region's current content */
        ap->bk_start = ap->cfg.regions[ri].len;
    }
    ap->phase = OTAUP_PHASE_BACKUP;
    ap->tx_what |= Q_BACKUP;
    return 0;
}

OTAUP_RAMFUNC static int do_restore(otaup_apply *ap, const otaup_msg_region_data *d)
{
    const otaup_flash *f = ap->cfg.flash;
    const otaup_apply_region *r;
    uint32_t ws = f->geo.write_size, n = d->data.len, body, pos;
    int ri = find_region(ap, d->region), rc;
    if (!ap->session_open) {
        /* user data are restored inside the session whose backup they are
         * (protocol.md 5): after its RESULT, a restore would write an old
         * backup over what the user stored since */
        return OTAUP_E_NO_SESSION;
    }
    if (ri < 0) {
        return ri;
    }
    r = &ap->cfg.regions[ri];
#if OTAUP_CONFIG_SEALED
    if (SEALING(ap)) {
        rc = seal_restore(ap, r, d, &n);
        if (rc != 0) {
            /* the whole restore of this region is refused: nothing more of
             * it is written until the server sends it again from offset 0 */
            ap->rs_sealed = 0;
            ap->rs_next = 0xFFFFFFFFu;
            otaup_seal_wipe(&ap->seal);
            return rc;
        }
    } else
#endif
    if (d->flags & OTAUP_RDATA_TAG) {
        return OTAUP_E_UNSUPPORTED; /* a sealed backup, and no key to open it */
    } else if ((d->flags & (OTAUP_RDATA_LAST | OTAUP_RDATA_HASH)) == OTAUP_RDATA_LAST) {
        return OTAUP_E_HASH; /* a plain restore ends with the region's hash, or not at all */
    } else if ((d->flags & OTAUP_RDATA_LAST) && d->hash.alg != OTAUP_HASH_XXH3_64 &&
               d->hash.alg != OTAUP_HASH_XXH3_128) {
        return OTAUP_E_UNSUPPORTED; /* a hash it cannot compute: refused before writing, not after */
    }
    if (d->offset > r->len || n > r->len - d->offset ||
        ((d->flags & OTAUP_RDATA_LAST) && d->offset + n != r->len)) {
        return OTAUP_E_RANGE; /* a backup is the whole region: LAST ends it */
    }
    if (d->offset % ws != 0 || (n % ws != 0 && !(d->flags & OTAUP_RDATA_LAST))) {
        return OTAUP_E_ALIGN;
    }
    if (d->offset == 0) {
        uint32_t start, size;
        ap->phase = OTAUP_PHASE_RESTORE;
        rc = otaup_journal_restore(&ap->journal, d->region, OTAUP_JRESTORE_BUSY);
        for (pos = r->addr; rc == 0 && pos - r->addr < r->len; pos = start + size) {
            (void)otaup_geometry_sector_at(&f->geo, pos, &start, &size);
            rc = f->erase(f, start, size);
            if (rc == 0) {
                (void)exec_progress(ap, start + size - r->addr, r->len);
            }
        }
        if (rc != 0) {
            return rc;
        }
        ap->rs_region = d->region;
        ap->rs_next = 0;
#if OTAUP_CONFIG_SEALED
        ap->rs_sealed = (uint8_t)SEALING(ap);
#endif
    } else if (ap->rs_region != d->region || ap->rs_next != d->offset) {
        return OTAUP_E_RANGE; /* restart the region from offset 0 */
    }
    body = n - n % ws;
    if (body > 0) {
        rc = f->prog(f, r->addr + d->offset, d->data.data, body);
        if (rc != 0) {
            return rc;
        }
    }
    if (body < n) {
        uint8_t *tail = ap->exec.io; /* the executor's bounce buffer: free between its calls */
        memset(tail, f->geo.erased, ws);
        memcpy(tail, d->data.data + body, n - body);
        rc = f->prog(f, r->addr + d->offset + body, tail, ws);
        if (rc != 0) {
            return rc;
        }
    }
    ap->rs_next = d->offset + n;
    if (d->flags & OTAUP_RDATA_LAST) {
        if (d->flags & OTAUP_RDATA_HASH) {
            uint8_t h[16];
            rc = otaup_exec_hash_range(&ap->exec, r->addr, ap->rs_next, d->hash.alg, h);
            if (rc < 0) {
                return rc;
            }
            if ((uint32_t)rc != d->hash.len || memcmp(h, d->hash.bytes, (size_t)rc) != 0) {
                return OTAUP_E_HASH;
            }
        }
        rc = otaup_journal_restore(&ap->journal, d->region, OTAUP_JRESTORE_DONE);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

#endif

#if OTAUP_CONFIG_SIGNATURE
/* SIG_REQ: the block signature of the installed image, streamed in SIG_DATA. */
OTAUP_RAMFUNC static int do_sig_req(otaup_apply *ap, const otaup_msg_sig_req *q)
{
    const otaup_apply_config *c = &ap->cfg;
    otaup_image_info info;
    uint32_t room = c->max_frame - 16u - 12u, addr;
    int rc;
    if (c->id.image_size == 0 || ap->session_open) {
        return OTAUP_E_UNSUPPORTED; /* size unknown, or the image is being rewritten */
    }
    if (q->offset > OTAUP_SIG_HEADER_SIZE + 8u * (c->id.image_size / q->block_size +
                                                   (c->id.image_size % q->block_size != 0u)) + 8u) {
        return OTAUP_E_RANGE; /* past the signature: refused before a stream going on is touched */
    }
    addr = c->slots[run_slot(ap)].addr;
    memset(&info, 0, sizeof info);
    info.build_time = c->id.build_time;
    info.size = c->id.image_size;
    info.block_size = q->block_size;
    /* reads go through the executor's bounce buffer: free between its calls,
     * and the signature is computed only while no session is open */
    /* from here a stream still going (an earlier SIG_REQ's) is replaced:
     * one that fails now (a flash read error) ends it, and the server
     * asks again */
    ap->tx_what &= (uint8_t)~Q_SIG;
    rc = otaup_sig_calc_begin(&ap->sig, c->flash, addr, &info, ap->exec.io, sizeof ap->exec.io);
    if (rc != 0) {
        return rc;
    }
    while (ap->sig.pos < q->offset) { /* skip what the server has (into the read buffer: discarded) */
        uint32_t k = q->offset - ap->sig.pos;
        rc = otaup_sig_calc_read(&ap->sig, ap->exec.io, k < sizeof ap->exec.io ? k : sizeof ap->exec.io);
        if (rc <= 0) {
            return rc < 0 ? rc : OTAUP_E_INTERNAL;
        }
    }
    if (room > OTAUP_APPLY_TXMSG - 16u) {
        room = OTAUP_APPLY_TXMSG - 16u;
    }
    ap->sig_chunk = q->max_chunk < room ? q->max_chunk : room;
    ap->tx_what |= Q_SIG;
    return 0;
}

#endif

/*
 * A whole message from the server. Only what a server sends a terminal is
 * decoded (each by its own decoder, into a union of those few types: a
 * shallow stack); anything else is OTAUP_E_MSG_TYPE.
 */
OTAUP_RAMFUNC static int do_message(otaup_apply *ap, uint8_t type, const uint8_t *p, size_t n)
{
    union {
        otaup_msg_hello hello;
        otaup_msg_notify notify;
        otaup_msg_start start;
        otaup_msg_commit commit;
        otaup_msg_abort abort;
        otaup_msg_ping ping;
        otaup_msg_backup_req backup_req;
        otaup_msg_region_data rdata;
        otaup_msg_sig_req sig_req;
    } m;
    int rc;
    uint8_t was;
    switch (type) {
    case OTAUP_MSG_HELLO:
        rc = otaup_hello_decode(p, n, &m.hello);
        if (rc == 0 && (m.hello.proto_min > OTAUP_PROTO_VERSION || m.hello.proto_max < OTAUP_PROTO_VERSION)) {
            rc = OTAUP_E_UNSUPPORTED;
        }
        if (rc == 0) {
            ap->peer_window = m.hello.window;
        }
        return rc;
    case OTAUP_MSG_NOTIFY:
        rc = otaup_notify_decode(p, n, &m.notify);
        if (rc == 0 && ap->cfg.notify != NULL) {
            ap->cfg.notify(ap->cfg.user_ctx, &m.notify);
        }
        return rc;
    case OTAUP_MSG_START:
        rc = otaup_start_decode(p, n, &m.start);
        return rc != 0 ? rc : do_start(ap, &m.start);
    case OTAUP_MSG_COMMIT:
        rc = otaup_commit_decode(p, n, &m.commit);
        if (rc != 0) {
            return rc;
        }
        if (ap->result_valid && ap->result_session == m.commit.session) {
            ap->tx_what |= Q_RESULT; /* already committed: the same RESULT again */
            return 0;
        }
        if (!ap->session_open || m.commit.session != ap->session) {
            return OTAUP_E_SESSION;
        }
        was = ap->phase;
        ap->phase = OTAUP_PHASE_COMMIT; /* in PROGRESS while the target is hashed */
        rc = 0;
        if (ap->target_known && ap->target_len != 0) {
            /* a COMMIT before the stream ended (a server's error, a lost
             * state) must not switch to, or leave booting, a half-written
             * image: the session stays open, to be resumed */
            uint8_t h[16];
            rc = otaup_exec_hash_range(&ap->exec, ap->target_addr, ap->target_len, OTAUP_HASH_XXH3_128, h);
            if (rc >= 0) {
                rc = memcmp(h, ap->target_hash, sizeof h) != 0 ? OTAUP_E_TARGET_MISMATCH : 0;
            }
        }
        if (rc == 0) {
            rc = otaup_exec_finish(&ap->exec);
        }
        if (rc != 0) {
            ap->phase = was; /* refused: the session stands where it stood (INFO's RESUME) */
            return rc;
        }
        if (ap->cfg.layout == OTAUP_LAYOUT_AB) {
            ap->windows[0] = ap->cfg.slots[ab_target(ap, 0)]; /* switched: INFO offers the other slot now */
        }
        set_result(ap, ap->session, 0);
        return 0;
    case OTAUP_MSG_ABORT:
        rc = otaup_abort_decode(p, n, &m.abort);
        if (rc == 0 && (!ap->session_open || m.abort.session == 0 || m.abort.session == ap->session)) {
            /* the backup or signature stream stops (its chunks in flight
             * are still resent until acknowledged); no session open: no
             * RESULT (protocol.md 3.7) */
            ap->tx_what &= (uint8_t)~(Q_BACKUP | Q_SIG);
            if (ap->session_open) {
                int r = otaup_exec_abort(&ap->exec, m.abort.reason);
                set_result(ap, ap->session, r == 0 ? m.abort.reason : r);
            }
        }
        return rc;
    case OTAUP_MSG_PING:
        rc = otaup_ping_decode(p, n, &m.ping);
        if (rc == 0) {
            ap->rx_echo = m.ping.nonce;
        }
        return rc;
    case OTAUP_MSG_BACKUP_REQ:
        rc = otaup_backup_req_decode(p, n, &m.backup_req);
#if OTAUP_CONFIG_BACKUP
        return rc != 0 ? rc : do_backup_req(ap, &m.backup_req);
#else
        return rc != 0 ? rc : OTAUP_E_UNSUPPORTED;
#endif
    case OTAUP_MSG_RESTORE_DATA:
        rc = otaup_region_data_decode(type, p, n, &m.rdata);
#if OTAUP_CONFIG_BACKUP
        return rc != 0 ? rc : do_restore(ap, &m.rdata);
#else
        return rc != 0 ? rc : OTAUP_E_UNSUPPORTED;
#endif
    case OTAUP_MSG_SIG_REQ:
        rc = otaup_sig_req_decode(p, n, &m.sig_req);
#if OTAUP_CONFIG_SIGNATURE
        return rc != 0 ? rc : do_sig_req(ap, &m.sig_req);
#else
        return rc != 0 ? rc : OTAUP_E_UNSUPPORTED;
#endif
    default:
        if (type >= OTAUP_REC_ERASE && type <= OTAUP_REC_SYNC) {
            if (!ap->session_open) {
                return OTAUP_E_NO_SESSION;
            }
            return otaup_exec_body(&ap->exec, type, p, n);
        }
        return OTAUP_E_MSG_TYPE; /* a message a terminal does not receive */
    }
}

/* BATCH: slices of the record stream, fed to the executor as they come. */
OTAUP_RAMFUNC static int do_batch(otaup_apply *ap, const otaup_frame *fr)
{
    int rc;
    if (!ap->session_open) {
        return OTAUP_E_NO_SESSION;
    }
    rc = otaup_batch_check(fr->flags, otaup_exec_idle(&ap->exec), 0);
    if (rc == 0) {
        rc = otaup_exec_feed(&ap->exec, fr->payload, fr->payload_len);
    }
    if (rc == 0) {
        rc = otaup_batch_check(fr->flags, otaup_exec_idle(&ap->exec), 1);
    }
    return rc;
}

/* The server executed every frame before `next`: acknowledge the
 * outstanding ones before it. A number past the last frame sent
 * acknowledges the one frame in flight, as an earlier applier took it,
 * but never a run of backup chunks: chunks the server does not have
 * would count as delivered and the stream would go on without them.
 * Returns 1 when that advanced. */
OTAUP_RAMFUNC static int acked(otaup_apply *ap, uint32_t next)
{
    uint32_t out = ap->tx_seq - ap->tx_pending, n = next - ap->tx_pending;
    if (n == 0 || out == 0 || n >= 0x80000000u || (n > out && ap->tx_bk)) {
        return 0; /* nothing new, or chunks never sent */
    }
    ap->tx_pending = n > out ? ap->tx_seq : next;
    ap->tx_tries = 0;
    return 1;
}

OTAUP_RAMFUNC static int on_frame(otaup_apply *ap, const otaup_frame *fr)
{
    uint32_t expected, echo;
    int rc;
    ap->rx_heard = 1;
    /* unsequenced */
    if (fr->type == OTAUP_MSG_ACK) {
        otaup_msg_ack a;
        if (otaup_ack_decode(fr->payload, fr->payload_len, &a) != 0) {
            return 0;
        }
        ap->peer_window = a.window;
        if (acked(ap, a.seq + 1u)) {
            ap->tx_time = now(ap); /* progress: the timer restarts for the oldest left */
        }
        return pump(ap);
    }
    if (fr->type == OTAUP_MSG_NACK) {
        otaup_msg_nack k;
        /* every frame before `expected` was executed; a gap or a transient
         * refusal sends the outstanding frames again from there (go-back-N) */
        if (otaup_nack_decode(fr->payload, fr->payload_len, &k) == 0 &&
            (k.expected == ap->tx_pending || acked(ap, k.expected)) && ap->tx_seq != ap->tx_pending &&
            (k.error == OTAUP_E_SEQ || k.error == OTAUP_E_AGAIN)) {
            ap->tx_time = now(ap) - (ap->cfg.retransmit_ms ? ap->cfg.retransmit_ms : 1000u);
        }
        return pump(ap);
    }
    if (fr->type == OTAUP_MSG_PROGRESS) {
        return 0;
    }
    /* a HELLO numbers from 0 only as the first frame of a connection
     * (otaup_apply_connect): one later in it is the server's HELLO sent
     * again, a duplicate like any other (rule 2 below) */
    expected = ap->rx_any ? ap->rx_last + 1u : 0u;
    if (ap->rx_any && !seq_after(fr->seq, ap->rx_last)) {
        return send_ack(ap); /* duplicate: answer again, do not execute */
    }
    if (fr->seq != expected) {
        /* one NACK for the gap, and one more each time the sender went
         * back (a frame not after the last one seen past the gap): on a
         * lossy link its resent frames are lost too, and without it only
         * its backed-off timer would recover */
        int again = !ap->rx_gap_nacked || !seq_after(fr->seq, ap->rx_gap_hi);
        ap->rx_gap_hi = fr->seq;
        if (again) {
            ap->rx_gap_nacked = 1;
            return send_nack(ap, fr->seq, OTAUP_E_SEQ, expected);
        }
        return 0;
    }
    ap->rx_gap_nacked = 0;
    if (ap->rx_ref && fr->seq == ap->rx_ref_seq && fr->crc == ap->rx_ref_crc) {
        /* a copy of the frame just refused (the link duplicated it, or the
         * sender resent it before the NACK reached it): the same answer,
         * not a second execution that could succeed where the first failed
         * (a transient read error) after the sender acted on the NACK */
        return send_nack(ap, fr->seq, ap->rx_ref_err, fr->seq);
    }
    echo = ap->rx_echo; /* the echo of frame `last`, kept if this one is refused */
    ap->rx_echo = 0;
    if (ap->reasm.active && (fr->type == OTAUP_MSG_BATCH || !otaup_msg_type_fragmentable(fr->type))) {
        /* a frame of another kind while a message is in progress
         * (protocol.md 2; the others are otaup_reasm_add's to judge):
         * refused, the partial message dropped, nothing executed */
        otaup_reasm_reset(&ap->reasm);
        rc = OTAUP_E_FRAGMENT;
    } else if (fr->type == OTAUP_MSG_BATCH) {
        rc = do_batch(ap, fr);
    } else if (otaup_msg_type_fragmentable(fr->type)) {
        const uint8_t *msg;
        size_t len;
        rc = otaup_reasm_add(&ap->reasm, fr, &msg, &len);
        if (rc == 1) {
            rc = do_message(ap, fr->type, msg, len);
        }
    } else {
        rc = do_message(ap, fr->type, fr->payload, fr->payload_len);
    }
    if (rc < 0) {
        ap->rx_echo = echo;
        /* remembered unless the sender may resend it unchanged (rule 5) */
        ap->rx_ref = rc != OTAUP_E_AGAIN;
        ap->rx_ref_seq = fr->seq;
        ap->rx_ref_crc = fr->crc;
        ap->rx_ref_err = rc;
        return send_nack(ap, fr->seq, rc, fr->seq);
    }
    ap->rx_ref = 0;
    ap->rx_last = fr->seq;
    ap->rx_any = 1;
    rc = send_ack(ap);
    if (rc == 0) {
        rc = pump(ap);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_apply_feed(otaup_apply *ap, const uint8_t *bytes, size_t len)
{
    if (ap == NULL || (bytes == NULL && len > 0)) {
        return OTAUP_E_INVAL;
    }
    while (len > 0 || ap->dec.have > 0) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&ap->dec, bytes, len, &used, &fr);
        bytes += used;
        len -= used;
        if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
        if (ev == OTAUP_DEC_FRAME) {
            int rc = on_frame(ap, &fr);
            if (rc != 0 && ap->link_error != 0) {
                return rc;
            }
        } else if (ev == OTAUP_E_FRAME_VERSION || ev == OTAUP_E_FRAME_FLAGS || ev == OTAUP_E_MSG_TYPE ||
                   ev == OTAUP_E_MSG_LENGTH) {
            /* an intact frame we cannot accept: name it in a NACK if it is the next one */
            uint32_t expected = ap->rx_any ? ap->rx_last + 1u : 0u;
            /* not an unsequenced one (ACK, NACK, PROGRESS): it carries the
             * sender's next seq without consuming it, and a NACK of that
             * number would refuse a frame the sender may have in flight */
            if (fr.seq == expected && fr.type != OTAUP_MSG_ACK && fr.type != OTAUP_MSG_NACK &&
                fr.type != OTAUP_MSG_PROGRESS) {
                (void)send_nack(ap, fr.seq, ev, expected);
            }
        } else if (ev == OTAUP_E_INVAL) {
            return ev;
        }
        /* corrupted frames and garbage: dropped; the sender's timer recovers */
    }
    return ap->link_error;
}

OTAUP_RAMFUNC int otaup_apply_poll(otaup_apply *ap)
{
    uint32_t t, rto;
    int stalled = 0;
    if (ap == NULL) {
        return OTAUP_E_INVAL;
    }
#if OTAUP_CONFIG_BACKUP
    /* a backup stream with nothing in flight and chunks to go: building or
     * sending its next chunk failed (a flash read error); try again at the
     * retransmission pace, within the same retry bound */
    stalled = ap->tx_bk && (ap->tx_what & Q_BACKUP);
#endif
    if (!ap->connected || (ap->tx_seq == ap->tx_pending && !stalled)) {
        return 0;
    }
    t = now(ap);
    rto = ap->cfg.retransmit_ms ? ap->cfg.retransmit_ms : 1000u;
    if ((uint32_t)(t - ap->tx_time) < rto) {
        return 0;
    }
    /* a retransmission counts 4 while the server is silent (8 of them end
     * the link: it is dead), and 1 while its frames keep coming (32: it
     * is alive and our frame or its ACK is lost again and again) */
    if (ap->tx_tries >= 4u * OTAUP_APPLY_RETRIES) {
        ap->connected = 0;
        return OTAUP_E_RETRIES;
    }
    ap->tx_tries += ap->rx_heard ? 1u : 4u;
    ap->rx_heard = 0;
    ap->tx_time = t;
#if OTAUP_CONFIG_BACKUP
    if (ap->tx_bk) {
        return ap->tx_seq == ap->tx_pending ? pump(ap) : resend_chunks(ap);
    }
#endif
    /* the frame in txbuf: its length from its header */
    return link_send(ap, ap->txbuf, OTAUP_FRAME_OVERHEAD + (ap->txbuf[6] | (size_t)ap->txbuf[7] << 8));
}

OTAUP_RAMFUNC int otaup_apply_done(const otaup_apply *ap)
{
    return ap != NULL && ap->result_valid && !(ap->tx_what & Q_RESULT) && ap->tx_seq == ap->tx_pending &&
           ap->txmsg_off >= ap->txmsg_len && ap->phase == OTAUP_PHASE_DONE;
}

OTAUP_RAMFUNC int otaup_apply_result(const otaup_apply *ap)
{
    return ap != NULL && ap->result_valid ? ap->result_code : OTAUP_E_STATE;
}

OTAUP_RAMFUNC int otaup_apply_run(otaup_apply *ap, uint32_t timeout_ms)
{
    uint8_t buf[128];
    uint32_t idle_since;
    int rc;
    if (ap == NULL || ap->cfg.link.recv == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_apply_connect(ap);
    if (rc != 0) {
        return rc;
    }
    idle_since = now(ap);
    for (;;) {
        int n = ap->cfg.link.recv(ap->cfg.link.ctx, buf, sizeof buf, 50u);
        if (n < 0) {
            return n;
        }
        if (n > 0) {
            rc = otaup_apply_feed(ap, buf, (size_t)n);
            if (rc != 0) {
                return rc;
            }
            /* from the end of what those bytes made the terminal do: the
             * time of a long erase is not the link's silence */
            idle_since = now(ap);
        } else if ((uint32_t)(now(ap) - idle_since) >= timeout_ms) {
            return OTAUP_E_TIMEOUT;
        }
        rc = otaup_apply_poll(ap);
        if (rc != 0) {
            return rc;
        }
        if (otaup_apply_done(ap)) {
            return ap->result_code;
        }
    }
}

OTAUP_RAMFUNC int otaup_apply_consent(otaup_apply *ap, uint8_t decision, uint16_t postpone_min)
{
    otaup_msg_consent m;
    int n;
    if (ap == NULL || !ap->connected) {
        return OTAUP_E_STATE;
    }
    if (ap->tx_seq != ap->tx_pending || ap->txmsg_off < ap->txmsg_len) {
        return OTAUP_E_AGAIN; /* one message at a time */
    }
#if OTAUP_CONFIG_BACKUP
    if (ap->tx_bk) {
        return OTAUP_E_AGAIN; /* a backup stream builds its chunks in txmsg */
    }
#endif
    memset(&m, 0, sizeof m);
    m.decision = decision;
    m.postpone_min = postpone_min;
    n = queue_msg(ap, OTAUP_MSG_CONSENT, otaup_consent_encode(&m, ap->txmsg, OTAUP_APPLY_TXMSG));
    return n != 0 ? n : pump(ap);
}

const otaup_exec *otaup_apply_exec(const otaup_apply *ap)
{
    return ap != NULL ? &ap->exec : NULL;
}

const otaup_journal *otaup_apply_journal(const otaup_apply *ap)
{
    return ap != NULL ? &ap->journal : NULL;
}
