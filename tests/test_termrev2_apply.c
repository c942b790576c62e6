/*
 * The applier against docs/protocol.md, second round of probes: a START
 * the terminal refuses leaves the open session as it was (its COMMIT
 * check, and the step its record stream is in, included); a duplicate is
 * answered with the very ACK of the original (a PING's echo too); a
 * refused SIG_REQ leaves the signature stream it interrupts alone; a
 * sequenced frame between the fragments of a message is
 * OTAUP_E_FRAGMENT; an unsequenced frame is never NACKed; COMMIT and
 * ABORT in every phase; a power cut after every flash operation of a
 * session, in place and A/B, then INFO's resume state and boot slot and
 * the resume to the end; the event-driven input split at every byte; the
 * blocking form on a silent link; and restores of odd shapes. Frames are
 * fed directly; the simulated flash's content and the terminal's answers
 * are judged.
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

#include "util/aprig.h"

/* ---- helpers of this file ------------------------------------------------ */

/* A header's range: address and size (little-endian) at a_off and s_off,
 * and at h_off the XXH3-128 (low 64 bits, then high 64 bits) of `len`
 * bytes of `value`. */
static void put_range(uint8_t *h, int a_off, int s_off, int h_off, uint32_t addr, uint32_t len, uint8_t value)
{
    static uint8_t img[4 * S];
    XXH128_hash_t x;
    int b;
    memset(img, value, len);
    x = XXH3_128bits(img, len);
    for (b = 0; b < 4; b++) {
        h[a_off + b] = (uint8_t)(addr >> (8 * b));
        h[s_off + b] = (uint8_t)(len >> (8 * b));
    }
    for (b = 0; b < 8; b++) {
        h[h_off + b] = (uint8_t)(x.low64 >> (8 * b));
        h[h_off + 8 + b] = (uint8_t)(x.high64 >> (8 * b));
    }
}

/* A delta header as a server puts it in START's manifest field: magic,
 * size 140, target range [taddr, taddr + tlen) with the XXH3-128 of
 * `tvalue` bytes, the check in the last 8 bytes. */
static void make_header(uint8_t h[140], uint32_t taddr, uint32_t tlen, uint8_t tvalue, uint64_t check)
{
    int b;
    memset(h, 0, 140);
    memcpy(h, OTAUP_DELTA_MAGIC, 8);
    h[10] = 140;
    h[11] = 0;
    put_range(h, 32, 80, 84, taddr, tlen, tvalue);
    for (b = 0; b < 8; b++) {
        h[132 + b] = (uint8_t)(check >> (8 * b));
    }
}

static int32_t start_m(uint64_t session, uint8_t flags, const uint8_t *man, uint32_t mlen, int32_t *result)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = session;
    m.u.start.flags = flags;
    m.u.start.manifest.data = man;
    m.u.start.manifest.len = mlen;
    return send(&m, result);
}

static int32_t ping(uint32_t nonce)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_PING;
    m.u.ping.nonce = nonce;
    return send(&m, NULL);
}

static int32_t abort_(uint64_t session, int32_t reason, int32_t *result)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ABORT;
    m.u.abort.session = session;
    m.u.abort.reason = reason;
    return send(&m, result);
}

/* Every frame the terminal sent since the last reset of the sink, decoded
 * into out[] (at most cap); returns the count. Keeps the sink. */
typedef struct seen {
    uint8_t type;
    uint8_t flags;
    uint32_t seq;
    otaup_msg m;
} seen;

static int frames_sent(seen *out, int cap)
{
    otaup_decoder d;
    static uint8_t db[4096];
    size_t off = 0;
    int n = 0;
    otaup_decoder_init(&d, db, sizeof db, 4096);
    while (off < R.k.len && n < cap) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, R.k.buf + off, R.k.len - off, &used, &fr);
        off += used;
        if (ev == OTAUP_DEC_FRAME) {
            out[n].type = fr.type;
            out[n].flags = fr.flags;
            out[n].seq = fr.seq;
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &out[n].m), 0);
            n++;
        } else if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
    }
    return n;
}

static void feed_msg(const otaup_msg *m, uint8_t flags, uint32_t seq)
{
    uint8_t fr[4096];
    int n = otaup_msg_encode_frame(m, flags, seq, 2048, fr, sizeof fr);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
}

static void feed_ack(uint32_t seq)
{
    otaup_msg a;
    memset(&a, 0, sizeof a);
    a.type = OTAUP_MSG_ACK;
    a.u.ack.seq = seq;
    a.u.ack.window = 1;
    feed_msg(&a, 0, 0);
}

/* ---- 1. a refused START leaves the open session alone ---------------------- */

/* An unsigned session whose START carried a delta header commits only over
 * the image the header names (protocol.md 3.6). A second START the
 * terminal refuses (RESUME with another update id: OTAUP_E_SESSION) must
 * leave that check in place: before the fix it replaced the target with
 * the refused START's (here none), and the COMMIT that followed ended the
 * session over an image nothing had written. */
START_TEST(test_refused_start_keeps_commit_check)
{
    uint8_t h[140], other[140];
    int32_t result = 1;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    make_header(h, SLOT_A + S, S, 0x71, 0x1111222233334444ull);
    ck_assert_int_eq(start_m(31, 0, h, sizeof h, NULL), 0);
    /* another update under the same session, RESUME: refused */
    ck_assert_int_eq(start_m(31, OTAUP_START_RESUME, NULL, 0, NULL), OTAUP_E_SESSION);
    /* the same with a header naming what the flash holds now */
    make_header(other, SLOT_A, S, 0xA0, 0x5555666677778888ull);
    ck_assert_int_eq(start_m(31, OTAUP_START_RESUME, other, sizeof other, NULL), OTAUP_E_SESSION);
    /* nothing of the stream was executed: the COMMIT is refused */
    ck_assert_int_eq(commit(31, OTAUP_COMMIT_DONE, &result), OTAUP_E_TARGET_MISMATCH);
    ck_assert_int_eq(result, 1);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    /* the stream, then the COMMIT: done */
    fill_step(0, SLOT_A + S, 0x71);
    ck_assert_int_eq(commit(31, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
}
END_TEST

/* ---- 2. a duplicate is answered with the original's ACK -------------------- */

/* protocol.md 3.8/4: a PING is answered with an ACK whose seq is the
 * PING's and whose echo is its nonce; a duplicate of it gets the ACK the
 * receiver would send now, which is that one as long as the PING is still
 * the last frame executed. A refused frame after the PING does not change
 * `last`: the duplicate PING must still be echoed (before the fix the
 * refused frame had cleared the echo). */
START_TEST(test_duplicate_ping_after_refused_frame)
{
    otaup_msg m;
    seen f[8];
    int n;
    uint32_t pseq;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(ping(0xCAFEF00Du), 0);
    pseq = R.seq - 1u;
    /* refused in order: a COMMIT without a session */
    ck_assert_int_eq(commit(99, OTAUP_COMMIT_DONE, NULL), OTAUP_E_SESSION);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_PING;
    m.u.ping.nonce = 0xCAFEF00Du;
    R.k.len = 0;
    feed_msg(&m, 0, pseq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(f[0].type, OTAUP_MSG_ACK);
    ck_assert_uint_eq(f[0].m.u.ack.seq, pseq);
    ck_assert_uint_eq(f[0].m.u.ack.echo, 0xCAFEF00Du);
    /* a duplicate whose body differs is the same duplicate: same answer */
    m.u.ping.nonce = 1;
    R.k.len = 0;
    feed_msg(&m, 0, pseq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(f[0].m.u.ack.echo, 0xCAFEF00Du);
    /* a gap NACK in between changes nothing either */
    R.k.len = 0;
    feed_msg(&m, 0, pseq + 5u);
    feed_msg(&m, 0, pseq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(f[0].type, OTAUP_MSG_NACK);
    ck_assert_int_eq(f[0].m.u.nack.error, OTAUP_E_SEQ);
    ck_assert_uint_eq(f[1].m.u.ack.echo, 0xCAFEF00Du);
    R.k.len = 0;
}
END_TEST

/* ---- 3. a refused SIG_REQ leaves the stream it interrupts alone ------------ */

/* protocol.md 3.11: SIG_DATA chunks go in increasing offset order. A
 * SIG_REQ refused while a signature streams (an offset past the
 * signature's end: OTAUP_E_RANGE) must not restart that stream: before
 * the fix it had reset the computation, and the next chunk went from
 * offset 0 again. */
START_TEST(test_refused_sig_req_keeps_stream)
{
    otaup_msg m;
    seen f[8];
    uint32_t next, total;
    int n, i;
    rig_make(OTAUP_LAYOUT_INPLACE);
    R.cfg.id.image_size = 4 * S;
    boot();
    feed_ack(0xFFFFu); /* HELLO */
    feed_ack(0xFFFFu); /* INFO */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_SIG_REQ;
    m.u.sig_req.block_size = 1024;
    m.u.sig_req.offset = 0;
    m.u.sig_req.max_chunk = 40;
    R.k.len = 0;
    feed_msg(&m, 0, R.seq++);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(f[1].type, OTAUP_MSG_SIG_DATA);
    ck_assert_uint_eq(f[1].m.u.sig_data.offset, 0);
    next = f[1].m.u.sig_data.data.len;
    total = f[1].m.u.sig_data.total;
    ck_assert_uint_gt(total, 3u * 40u);
    /* the chunk acknowledged: the next one */
    R.k.len = 0;
    feed_ack(f[1].seq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(f[0].m.u.sig_data.offset, next);
    next += f[0].m.u.sig_data.data.len;
    /* a request past the signature: refused */
    m.u.sig_req.offset = total + 1u;
    R.k.len = 0;
    feed_msg(&m, 0, R.seq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(f[0].type, OTAUP_MSG_NACK);
    ck_assert_int_eq(f[0].m.u.nack.error, OTAUP_E_RANGE);
    /* and one far past any signature of the image */
    m.u.sig_req.block_size = 64;
    m.u.sig_req.offset = 0x7FFFFFFFu;
    R.k.len = 0;
    feed_msg(&m, 0, R.seq);
    n = frames_sent(f, 8);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(f[0].type, OTAUP_MSG_NACK);
    ck_assert_int_eq(f[0].m.u.nack.error, OTAUP_E_RANGE);
    /* the stream goes on where it stood, to its end */
    for (i = 0; i < 64; i++) {
        R.k.len = 0;
        feed_ack(0xFFFFu);
        n = frames_sent(f, 8);
        if (n == 0) {
            break;
        }
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(f[0].type, OTAUP_MSG_SIG_DATA);
        ck_assert_uint_eq(f[0].m.u.sig_data.offset, next);
        ck_assert_uint_eq(f[0].m.u.sig_data.total, total);
        next += f[0].m.u.sig_data.data.len;
    }
    ck_assert_uint_eq(next, total);
}
END_TEST

/* ABORT before any START (protocol.md 3.7): no session to end, so no
 * RESULT, but the backup or signature stream the terminal is sending
 * stops: the chunks already sent are still resent until acknowledged,
 * no new one goes. With no session open, the ABORT's session number
 * does not matter: the server numbers a session from its first request,
 * before its START. */
static int stream_chunks_after(uint8_t type, uint32_t last, uint32_t *rounds)
{
    seen f[8];
    int i, n, chunks = 0;
    for (i = 0; i < 64; i++) {
        int j;
        R.k.len = 0;
        feed_ack(last); /* exactly what was sent: a backup stream ignores more */
        n = frames_sent(f, 8);
        if (n == 0) {
            break;
        }
        for (j = 0; j < n; j++) {
            ck_assert_uint_ne(f[j].type, OTAUP_MSG_RESULT);
            if (f[j].type == type) {
                chunks++;
                last = f[j].seq;
            }
        }
    }
    *rounds = (uint32_t)i;
    return chunks;
}

static void abort_stream(uint8_t type, uint64_t abort_session)
{
    otaup_msg m;
    seen f[8];
    uint32_t rounds, last = 0;
    int n, i, got = 0, more;
    rig_make(OTAUP_LAYOUT_INPLACE);
    R.cfg.id.image_size = 4 * S;
    boot();
    feed_ack(0xFFFFu); /* HELLO */
    feed_ack(0xFFFFu); /* INFO */
    memset(&m, 0, sizeof m);
    m.type = type;
    if (type == OTAUP_MSG_SIG_REQ) {
        m.u.sig_req.block_size = 1024;
        m.u.sig_req.max_chunk = 40;
    } else {
        m.u.backup_req.region = 1;
        m.u.backup_req.max_chunk = 64;
    }
    R.k.len = 0;
    feed_msg(&m, 0, R.seq++);
    n = frames_sent(f, 8);
    for (i = 0; i < n; i++) {
        if (f[i].type == (type == OTAUP_MSG_SIG_REQ ? OTAUP_MSG_SIG_DATA : OTAUP_MSG_BACKUP_DATA)) {
            got++;
            last = f[i].seq;
        }
    }
    ck_assert_int_eq(got, 1);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ABORT;
    m.u.abort.session = abort_session;
    m.u.abort.reason = OTAUP_E_CANCELED;
    R.k.len = 0;
    feed_msg(&m, OTAUP_FLAG_ACKREQ, R.seq++);
    n = frames_sent(f, 8);
    for (i = 0; i < n; i++) {
        ck_assert_uint_ne(f[i].type, OTAUP_MSG_RESULT); /* no session: no RESULT */
        ck_assert_uint_ne(f[i].type, OTAUP_MSG_NACK);
    }
    more = stream_chunks_after(type == OTAUP_MSG_SIG_REQ ? OTAUP_MSG_SIG_DATA : OTAUP_MSG_BACKUP_DATA, last, &rounds);
    ck_assert_uint_lt(rounds, 64); /* the stream ends either way */
    ck_assert_int_eq(more, 0);
    teardown();
}

START_TEST(test_abort_stops_streams)
{
    abort_stream(OTAUP_MSG_SIG_REQ, 0);
    abort_stream(OTAUP_MSG_BACKUP_REQ, 0);
    abort_stream(OTAUP_MSG_SIG_REQ, 77);
    abort_stream(OTAUP_MSG_BACKUP_REQ, 77);
}
END_TEST

/* BACKUP_REQ's region and offset (protocol.md 3.10): a region the
 * terminal does not have is OTAUP_E_REGION, an offset past the region's
 * end OTAUP_E_RANGE with or without HASH_ONLY; an offset at its end gets
 * one LAST chunk, the hash and no data. */
static int32_t backup_req(uint8_t region, uint8_t flags, uint32_t offset, seen *chunk)
{
    otaup_msg m;
    seen f[8];
    int n, i, got = 0;
    int32_t code = 1;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = region;
    m.u.backup_req.flags = flags;
    m.u.backup_req.offset = offset;
    m.u.backup_req.max_chunk = 64;
    R.k.len = 0;
    feed_msg(&m, 0, R.seq);
    n = frames_sent(f, 8);
    for (i = 0; i < n; i++) {
        if (f[i].type == OTAUP_MSG_NACK) {
            code = f[i].m.u.nack.error;
        } else if (f[i].type == OTAUP_MSG_BACKUP_DATA) {
            *chunk = f[i];
            got++;
        }
    }
    if (code == 1) {
        R.seq++;
        ck_assert_int_eq(got, 1);
        feed_ack(chunk->seq);
        return 0;
    }
    ck_assert_int_eq(got, 0);
    return code;
}

START_TEST(test_backup_req_bounds)
{
    seen c;
    uint8_t flags;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    feed_ack(0xFFFFu); /* HELLO */
    feed_ack(0xFFFFu); /* INFO */
    for (flags = 0; flags <= OTAUP_BACKUP_HASH_ONLY; flags++) {
        ck_assert_int_eq(backup_req(9, flags, 0, &c), OTAUP_E_REGION);
        ck_assert_int_eq(backup_req(1, flags, S + 1u, &c), OTAUP_E_RANGE);
        ck_assert_int_eq(backup_req(1, flags, 0xFFFFFFFFu, &c), OTAUP_E_RANGE);
        ck_assert_int_eq(backup_req(1, flags, S, &c), 0);
        ck_assert_uint_eq(c.m.u.rdata.offset, S);
        ck_assert_uint_eq(c.m.u.rdata.data.len, 0);
        ck_assert_uint_eq(c.m.u.rdata.flags & (OTAUP_RDATA_LAST | OTAUP_RDATA_HASH),
                          OTAUP_RDATA_LAST | OTAUP_RDATA_HASH);
    }
    /* HASH_ONLY from offset 0: the same single chunk */
    ck_assert_int_eq(backup_req(1, OTAUP_BACKUP_HASH_ONLY, 0, &c), 0);
    ck_assert_uint_eq(c.m.u.rdata.offset, S);
    ck_assert_uint_eq(c.m.u.rdata.data.len, 0);
    ck_assert_uint_eq(writes(), 0);
}
END_TEST

/* An unsigned START that begins an update checks the source its delta
 * header names (protocol.md 3.5): what the flash holds there, or
 * OTAUP_E_SOURCE_MISMATCH with nothing journaled and nothing written. The
 * same update started again once complete is not checked again (its
 * source is gone): RESULT 0 as before. */
static void set_source(uint8_t h[140], uint32_t saddr, uint32_t slen, uint8_t svalue)
{
    put_range(h, 28, 60, 64, saddr, slen, svalue);
}

START_TEST(test_start_checks_source)
{
    uint8_t h[140];
    int32_t result = 1;
    size_t w;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    w = writes();
    /* slot A holds 0xA0 bytes: a header planned from 0xA1 bytes is refused */
    make_header(h, SLOT_A, S, 0x71, 0x0101010101010101ull);
    set_source(h, SLOT_A, S, 0xA1);
    ck_assert_int_eq(start_m(41, 0, h, sizeof h, NULL), OTAUP_E_SOURCE_MISMATCH);
    ck_assert_uint_eq(writes(), w);
    ck_assert_uint_ne(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    /* a source range off the flash: the range's code */
    set_source(h, 0xFFFFF000u, S, 0xA0);
    ck_assert_int_eq(start_m(41, 0, h, sizeof h, NULL), OTAUP_E_RANGE);
    ck_assert_uint_eq(writes(), w);
    /* the right source: accepted, and the update runs to its COMMIT */
    set_source(h, SLOT_A, S, 0xA0);
    ck_assert_int_eq(start_m(41, 0, h, sizeof h, NULL), 0);
    fill_step(0, SLOT_A, 0x71);
    ck_assert_int_eq(commit(41, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    /* its START again (a RESULT the server lost): the source is gone, the
     * update complete: RESULT 0, nothing written */
    w = writes();
    result = 1;
    ck_assert_int_eq(start_m(41, 0, h, sizeof h, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_eq(writes(), w);
    /* another update planned from the old image: refused */
    make_header(h, SLOT_A, S, 0x72, 0x0202020202020202ull);
    set_source(h, SLOT_A, S, 0xA0);
    ck_assert_int_eq(start_m(42, 0, h, sizeof h, NULL), OTAUP_E_SOURCE_MISMATCH);
    ck_assert_uint_eq(writes(), w);
}
END_TEST

/* ---- 4. a frame between the fragments of a message ------------------------- */

/* protocol.md 2: a frame without CONT while a message is in progress is
 * OTAUP_E_FRAGMENT, and the partial message is dropped. A PING (not
 * fragmentable) between two fragments of a START must not execute. */
START_TEST(test_frame_between_fragments)
{
    otaup_msg m;
    uint8_t man[600], fr[4096];
    seen f[8];
    size_t off = 0;
    int n, k;
    uint32_t s0;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    memset(man, 0x5C, sizeof man);
    /* START in fragments of 256-byte frames: 3 of them */
    {
        uint8_t p[700];
        otaup_msg_start st;
        memset(&st, 0, sizeof st);
        st.session = 44;
        st.manifest.data = man;
        st.manifest.len = sizeof man;
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_START;
        m.u.start = st;
        n = otaup_msg_encode(&m, p, sizeof p);
        ck_assert_int_gt(n, 0);
        s0 = R.seq;
        k = otaup_frag_next(OTAUP_MSG_START, 0, R.seq, p, (size_t)n, &off, 256, fr, sizeof fr);
        ck_assert_int_gt(k, 0);
        ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)k), 0);
        R.k.len = 0;
        /* a PING where the second fragment belongs */
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_PING;
        m.u.ping.nonce = 7;
        feed_msg(&m, 0, s0 + 1u);
        n = frames_sent(f, 8);
        ck_assert_int_eq(n, 1);
        ck_assert_uint_eq(f[0].type, OTAUP_MSG_NACK);
        ck_assert_int_eq(f[0].m.u.nack.error, OTAUP_E_FRAGMENT);
        ck_assert_uint_eq(f[0].m.u.nack.expected, s0 + 1u);
    }
    /* nothing of the START happened; a whole START then works */
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_NONE);
    R.seq = s0 + 1u;
    ck_assert_int_eq(start(45, 0), 0);
    ck_assert_int_eq(ping(9), 0);
}
END_TEST

/* ---- 5. unsequenced frames are never answered ------------------------------ */

/* protocol.md 4: ACK, NACK and PROGRESS are never acknowledged; a NACK
 * names a sequenced frame the receiver refused. An intact ACK of the
 * wrong length (a later version's, or a broken one) carries the server's
 * next seq: a NACK of that number would refuse a frame the server may
 * have in flight. It is dropped. */
START_TEST(test_bad_unsequenced_not_nacked)
{
    uint8_t p[32], fr[64];
    int n;
    static const uint8_t types[] = {OTAUP_MSG_ACK, OTAUP_MSG_NACK, OTAUP_MSG_PROGRESS};
    unsigned i;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    memset(p, 0, sizeof p);
    for (i = 0; i < sizeof types; i++) {
        R.k.len = 0;
        n = otaup_frame_encode(types[i], 0, R.seq, p, 7, fr, sizeof fr); /* length 7: fits none */
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
        ck_assert_uint_eq(R.k.len, 0);
    }
    /* a sequenced one of a bad length is NACKed */
    n = otaup_frame_encode(OTAUP_MSG_PING, 0, R.seq, p, 7, fr, sizeof fr);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
    {
        int32_t code = 0;
        ck_assert_int_eq(answer(&code, NULL), OTAUP_MSG_NACK);
        ck_assert_int_eq(code, OTAUP_E_MSG_LENGTH);
    }
    ck_assert_int_eq(ping(3), 0);
}
END_TEST

/* ---- 6. COMMIT and ABORT in every phase ------------------------------------ */

START_TEST(test_commit_abort_phases)
{
    int32_t result;
    size_t w;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    /* before any session */
    ck_assert_int_eq(commit(5, OTAUP_COMMIT_DONE, NULL), OTAUP_E_SESSION);
    result = 1;
    ck_assert_int_eq(abort_(0, OTAUP_E_CANCELED, &result), 0);
    ck_assert_int_eq(result, 1); /* nothing in progress: no RESULT */
    /* right after START: aborted, RESULT with the reason */
    ck_assert_int_eq(start(5, 0), 0);
    result = 1;
    ck_assert_int_eq(abort_(0, OTAUP_E_CANCELED, &result), 0);
    ck_assert_int_eq(result, OTAUP_E_CANCELED);
    ck_assert_int_eq(commit(5, OTAUP_COMMIT_DONE, &result), 0); /* the same RESULT again */
    ck_assert_int_eq(result, OTAUP_E_CANCELED);
    /* no record executes after it */
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A, S, 0), OTAUP_E_NO_SESSION);
    /* ABORT of another session: ignored */
    ck_assert_int_eq(start(6, 0), 0);
    result = 1;
    ck_assert_int_eq(abort_(77, OTAUP_E_CANCELED, &result), 0);
    ck_assert_int_eq(result, 1);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    /* inside a step (before its END): aborted before the point of no
     * return of the next step; the old image stays */
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A + S, S, 0), 0);
    result = 1;
    ck_assert_int_eq(abort_(6, OTAUP_E_CANCELED, &result), 0);
    ck_assert_int_eq(result, OTAUP_E_CANCELED);
    expect_sector(SLOT_A + S, 0xFF);
    /* COMMIT twice over a complete session: one commit, RESULT twice */
    ck_assert_int_eq(start(7, 0), 0);
    fill_step(0, SLOT_A + S, 0x72);
    result = 1;
    ck_assert_int_eq(commit(7, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    w = writes();
    result = 1;
    ck_assert_int_eq(commit(7, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    /* ABORT after the COMMIT: nothing to abort, the result stays */
    result = 1;
    ck_assert_int_eq(abort_(7, OTAUP_E_CANCELED, &result), 0);
    ck_assert_int_eq(result, 1);
    ck_assert_uint_eq(writes(), w);
    ck_assert_int_eq(otaup_apply_journal(&R.ap)->st.result, 0);
    /* COMMIT of an older session after another one committed: refused
     * (its RESULT is no longer the last one) */
    ck_assert_int_eq(commit(5, OTAUP_COMMIT_DONE, &result), OTAUP_E_SESSION);
}
END_TEST

/* ---- 7. a power cut after every flash operation of a session --------------- */

/* The terminal's INFO after a reset (init, connect, the server's HELLO,
 * ACKs): its resume state. */
static uint8_t g_active;   /* INFO's active slot, from boot_info */
static uint32_t g_window; /* INFO's writable window's address, from boot_info and reconnect_resume */

static void boot_info(otaup_proto_resume *rs)
{
    seen f[8];
    int n, i, got = 0;
    boot();
    feed_ack(0xFFFFu);
    n = frames_sent(f, 8);
    for (i = 0; i < n; i++) {
        if (f[i].type == OTAUP_MSG_INFO) {
            *rs = f[i].m.u.info.resume;
            g_active = f[i].m.u.info.active_slot;
            ck_assert_uint_eq(f[i].m.u.info.nwindows, 1);
            g_window = f[i].m.u.info.windows[0].addr;
            got = 1;
        }
    }
    ck_assert(got);
    feed_ack(0xFFFFu);
    R.k.len = 0;
}

static uint8_t g_user[S];
static uint32_t g_base; /* where the steps write: the slot the update writes */

/* The session's script from its START: three steps, a restore of the
 * user region, COMMIT. The first refusal, or 0; *result the RESULT. */
static int32_t session_script(uint8_t flags, int32_t *result)
{
    int32_t rc = start_m(77, flags, NULL, 0, result);
    uint32_t i;
    if (rc != 0 || *result != 1) {
        return rc;
    }
    for (i = 0; i < 3; i++) {
        rc = rec(OTAUP_REC_STEP, i, g_base + (i + 1u) * S, S, 0);
        rc = rc ? rc : rec(OTAUP_REC_ERASE, 0, g_base + (i + 1u) * S, S, 0);
        rc = rc ? rc : rec(OTAUP_REC_FILL, 0, g_base + (i + 1u) * S, S, (uint8_t)(0x71 + i));
        rc = rc ? rc : rec(OTAUP_REC_END, i, 0, 0, 0);
        if (rc != 0) {
            return rc;
        }
    }
    rc = restore_region(g_user);
    return rc ? rc : commit(77, g_base == SLOT_B ? OTAUP_COMMIT_SWITCH : OTAUP_COMMIT_DONE, result);
}

static void sweep(uint8_t layout, int torn)
{
    uint64_t cut;
    int complete = 0;
    for (cut = 1; cut < 200 && !complete; cut++) {
        otaup_proto_resume rs;
        const otaup_journal_state *st;
        int32_t result = 1, rc;
        uint32_t i;
        rig_make(layout);
        g_base = layout == OTAUP_LAYOUT_AB ? SLOT_B : SLOT_A;
        boot();
        otaup_simflash_cut_after(R.sim, cut, torn);
        (void)session_script(0, &result);
        complete = !otaup_simflash_is_cut(R.sim);
        if (complete) {
            ck_assert_int_eq(result, 0);
            teardown();
            break;
        }
        otaup_simflash_power_on(R.sim);
        otaup_simflash_cut_after(R.sim, 0, 0);
        boot_info(&rs);
        st = &otaup_apply_journal(&R.ap)->st;
        /* INFO says where the session stood, and which slot's image it
         * reports: the boot slot, or while a session is open that
         * session's source (after the COMMIT's switch record the target
         * boots already: protocol.md, INFO's LAYOUT) */
        ck_assert_uint_eq(g_active, layout != OTAUP_LAYOUT_AB              ? 0u
                                    : st->session == OTAUP_JS_ACTIVE ? (st->target_slot & 1u) ^ 1u
                                                                     : st->boot_slot);
        if (st->session == OTAUP_JS_ACTIVE) {
            ck_assert_uint_eq(rs.session, 77);
            ck_assert_uint_eq(rs.next_step, st->next_step);
            ck_assert_uint_eq(rs.phase, st->restore == OTAUP_JRESTORE_BUSY ? OTAUP_PHASE_RESTORE
                                                                             : OTAUP_PHASE_TRANSFER);
            /* every step before next_step is in flash */
            for (i = 0; i < rs.next_step; i++) {
                expect_sector(g_base + (i + 1u) * S, (uint8_t)(0x71 + i));
            }
        } else {
            ck_assert_uint_eq(rs.session, 0);
            ck_assert_uint_eq(rs.next_step, 0);
            ck_assert_uint_eq(rs.phase, 0);
        }
        /* the server's resume finishes */
        result = 1;
        rc = session_script(rs.session != 0 ? OTAUP_START_RESUME : 0, &result);
        ck_assert_msg(rc == 0, "cut %u torn %d: resume refused %d (%s)", (unsigned)cut, torn, rc,
                      otaup_errname(rc));
        ck_assert_int_eq(result, 0);
        for (i = 0; i < 3; i++) {
            expect_sector(g_base + (i + 1u) * S, (uint8_t)(0x71 + i));
        }
        expect_sector(SLOT_A, 0xA0);
        ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, layout == OTAUP_LAYOUT_AB ? 1u : 0u);
        if (layout == OTAUP_LAYOUT_AB) {
            /* after the switch, INFO names the new slot as the one that boots */
            boot_info(&rs);
            ck_assert_uint_eq(g_active, 1);
            ck_assert_uint_eq(rs.session, 0);
        }
        ck_assert_mem_eq(otaup_simflash_data(R.sim) + USER, g_user, S);
        ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ENDED);
        teardown();
    }
    ck_assert(complete);
    ck_assert_uint_gt(cut, 10);
    printf("power cut sweep, %s, %s: %u cut points, each resumed to RESULT 0\n",
           layout == OTAUP_LAYOUT_AB ? "A/B" : "in place", torn ? "torn" : "clean", (unsigned)cut - 1u);
}

START_TEST(test_power_cut_sweep)
{
    uint32_t i;
    for (i = 0; i < S; i++) {
        g_user[i] = (uint8_t)(i * 7u + 3u);
    }
    sweep(OTAUP_LAYOUT_INPLACE, 0);
    sweep(OTAUP_LAYOUT_INPLACE, 1);
    sweep(OTAUP_LAYOUT_AB, 0);
    sweep(OTAUP_LAYOUT_AB, 1);
    rig_make(OTAUP_LAYOUT_INPLACE); /* for the fixture's teardown */
}
END_TEST

/* ---- 8. the event-driven input split at every byte ------------------------ */

/* A whole session as the server's bytes: HELLO, ACKs, START, one step in
 * two BATCH frames (MORE, CONT), a PING, COMMIT, ACK. */
static size_t server_stream(uint8_t *out, size_t cap)
{
    uint8_t recs[256];
    size_t rn = 0, n = 0, half;
    otaup_record r;
    otaup_msg m;
    int k;
    static const uint8_t types[] = {OTAUP_REC_STEP, OTAUP_REC_ERASE, OTAUP_REC_FILL, OTAUP_REC_END};
    unsigned i;
    for (i = 0; i < sizeof types; i++) {
        memset(&r, 0, sizeof r);
        r.type = types[i];
        r.addr = types[i] == OTAUP_REC_END ? 0 : SLOT_A + S;
        r.len = types[i] == OTAUP_REC_END ? 0 : S;
        r.value = 0x66;
        k = otaup_record_encode(&r, recs + rn, sizeof recs - rn);
        ck_assert_int_gt(k, 0);
        rn += (size_t)k;
    }
    half = rn / 2; /* inside a record */
#define PUT(msg, flags, seq)                                                                       \
    do {                                                                                           \
        k = otaup_msg_encode_frame(msg, flags, seq, 2048, out + n, cap - n);                       \
        ck_assert_int_gt(k, 0);                                                                    \
        n += (size_t)k;                                                                            \
    } while (0)
    hello_msg(&m);
    PUT(&m, 0, 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = 0;
    m.u.ack.window = 1;
    PUT(&m, 0, 1); /* HELLO acknowledged: INFO goes */
    m.u.ack.seq = 1;
    PUT(&m, 0, 1); /* INFO acknowledged */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 12;
    PUT(&m, 0, 1);
    k = otaup_frame_encode(OTAUP_MSG_BATCH, OTAUP_FLAG_MORE, 2, recs, half, out + n, cap - n);
    ck_assert_int_gt(k, 0);
    n += (size_t)k;
    k = otaup_frame_encode(OTAUP_MSG_BATCH, OTAUP_FLAG_CONT, 3, recs + half, rn - half, out + n, cap - n);
    ck_assert_int_gt(k, 0);
    n += (size_t)k;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_PING;
    m.u.ping.nonce = 0xABCDu;
    PUT(&m, 0, 4);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_COMMIT;
    m.u.commit.session = 12;
    m.u.commit.action = OTAUP_COMMIT_DONE;
    PUT(&m, 0, 5);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = 2;
    m.u.ack.window = 1;
    PUT(&m, 0, 6); /* RESULT acknowledged */
#undef PUT
    return n;
}

static uint8_t g_ref[16384];
static size_t g_ref_len;

static void run_split(const uint8_t *b, size_t n, size_t cut1, size_t step)
{
    size_t off;
    rig_make(OTAUP_LAYOUT_INPLACE);
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
    ck_assert_int_eq(otaup_apply_connect(&R.ap), 0);
    if (step == 0) {
        ck_assert_int_eq(otaup_apply_feed(&R.ap, b, cut1), 0);
        ck_assert_int_eq(otaup_apply_feed(&R.ap, b + cut1, n - cut1), 0);
    } else {
        for (off = 0; off < n; off += step) {
            ck_assert_int_eq(otaup_apply_feed(&R.ap, b + off, n - off < step ? n - off : step), 0);
        }
    }
    ck_assert(otaup_apply_done(&R.ap));
    ck_assert_int_eq(otaup_apply_result(&R.ap), 0);
    expect_sector(SLOT_A + S, 0x66);
}

START_TEST(test_split_at_every_byte)
{
    static uint8_t b[4096];
    size_t n = server_stream(b, sizeof b), cut;
    seen f[32];
    int nf, i, pings = 0;
    /* coalesced: the reference */
    run_split(b, n, n, 0);
    memcpy(g_ref, R.k.buf, R.k.len);
    g_ref_len = R.k.len;
    nf = frames_sent(f, 32);
    for (i = 0; i < nf; i++) {
        ck_assert(f[i].type != OTAUP_MSG_NACK);
        if (f[i].type == OTAUP_MSG_ACK && f[i].m.u.ack.echo == 0xABCDu) {
            pings++;
            ck_assert_uint_eq(f[i].m.u.ack.seq, 4);
        }
    }
    ck_assert_int_eq(pings, 1);
    teardown();
    for (cut = 0; cut <= n; cut++) {
        run_split(b, n, cut, 0);
        ck_assert_uint_eq(R.k.len, g_ref_len);
        ck_assert_mem_eq(R.k.buf, g_ref, g_ref_len);
        teardown();
    }
    for (cut = 1; cut <= 7; cut++) {
        run_split(b, n, 0, cut);
        ck_assert_uint_eq(R.k.len, g_ref_len);
        ck_assert_mem_eq(R.k.buf, g_ref, g_ref_len);
        teardown();
    }
    rig_make(OTAUP_LAYOUT_INPLACE);
}
END_TEST

/* ---- 9. the blocking form on a silent link --------------------------------- */

static int g_recv_calls;

static int silent_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)cap;
    g_now += timeout_ms; /* the time a blocking receive waits */
    g_recv_calls++;
    return 0;
}

static int count_type(uint8_t type)
{
    seen f[64];
    int n = frames_sent(f, 64), i, c = 0;
    for (i = 0; i < n; i++) {
        c += f[i].type == type;
    }
    return c;
}

START_TEST(test_run_silent_link)
{
    rig_make(OTAUP_LAYOUT_INPLACE);
    R.cfg.link.recv = silent_recv;
    g_recv_calls = 0;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
    /* a short timeout: OTAUP_E_TIMEOUT after it, the HELLO resent each second */
    ck_assert_int_eq(otaup_apply_run(&R.ap, 3500), OTAUP_E_TIMEOUT);
    ck_assert_int_ge(count_type(OTAUP_MSG_HELLO), 3);
    ck_assert_int_le(count_type(OTAUP_MSG_HELLO), 5);
    ck_assert_int_lt(g_recv_calls, 200);
    /* a long one: the applier gives up after OTAUP_APPLY_RETRIES resends */
    R.k.len = 0;
    g_recv_calls = 0;
    ck_assert_int_eq(otaup_apply_run(&R.ap, 3600000u), OTAUP_E_RETRIES);
    ck_assert_int_eq(count_type(OTAUP_MSG_HELLO), 1 + (int)OTAUP_APPLY_RETRIES);
    ck_assert_int_lt(g_recv_calls, 1000);
}
END_TEST

/* ---- 10. restores of odd shapes -------------------------------------------- */

static int32_t restore_chunk(const uint8_t *data, uint32_t off, uint32_t len, uint8_t flags, uint8_t alg)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_RESTORE_DATA;
    m.u.rdata.region = 1;
    m.u.rdata.flags = flags;
    m.u.rdata.offset = off;
    m.u.rdata.data.data = data + off;
    m.u.rdata.data.len = len;
    if (flags & OTAUP_RDATA_HASH) {
        uint64_t h = XXH3_64bits(data, S);
        int b;
        m.u.rdata.hash.alg = alg;
        m.u.rdata.hash.len = alg == OTAUP_HASH_XXH3_64 ? 8 : 32;
        for (b = 0; b < 8; b++) {
            m.u.rdata.hash.bytes[b] = (uint8_t)(h >> (8 * b));
        }
    }
    return send(&m, NULL);
}

START_TEST(test_restore_shapes)
{
    static uint8_t d[S];
    uint32_t i;
    size_t w;
    for (i = 0; i < S; i++) {
        d[i] = (uint8_t)(i * 13u + 1u);
    }
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(3, 0), 0);
    /* an empty chunk at 0 begins the restore; an empty one after it is fine */
    ck_assert_int_eq(restore_chunk(d, 0, 0, 0, 0), 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_int_eq(restore_chunk(d, 0, 1000, 0, 0), 0);
    ck_assert_int_eq(ping(1), 0);
    /* an empty chunk continuing it; then offset 0 again starts over */
    w = writes();
    ck_assert_int_eq(restore_chunk(d, 1000, 0, 0, 0), 0);
    ck_assert_uint_eq(writes(), w);
    ck_assert_int_eq(restore_chunk(d, 0, 1000, 0, 0), 0);
    ck_assert_uint_gt(writes(), w);
    ck_assert_int_eq(restore_chunk(d, 1000, 1000, 0, 0), 0);
    /* the same chunk again (a new seq), one ahead, and a chunk of a length
     * not a multiple of the write size before the LAST: refused, nothing
     * written */
    w = writes();
    ck_assert_int_eq(restore_chunk(d, 1000, 1000, 0, 0), OTAUP_E_RANGE);
    ck_assert_int_eq(restore_chunk(d, 3000, 96, 0, 0), OTAUP_E_RANGE);
    ck_assert_int_eq(restore_chunk(d, 2000, 7, 0, 0), OTAUP_E_ALIGN);
    ck_assert_uint_eq(writes(), w);
    ck_assert_int_eq(ping(2), 0);
    /* LAST with a hash the terminal cannot compute (SHA-256): refused */
    ck_assert_int_eq(restore_chunk(d, 2000, 1048, 0, 0), 0);
    w = writes();
    ck_assert_int_eq(restore_chunk(d, 3048, 1048, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH, OTAUP_HASH_SHA256),
                     OTAUP_E_UNSUPPORTED);
    ck_assert_uint_eq(writes(), w); /* refused before anything of it is written */
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    /* the whole region again, the rest LAST with its hash */
    ck_assert_int_eq(restore_chunk(d, 0, 1000, 0, 0), 0);
    ck_assert_int_eq(restore_chunk(d, 1000, 1000, 0, 0), 0);
    ck_assert_int_eq(restore_chunk(d, 2000, 1048, 0, 0), 0);
    ck_assert_int_eq(restore_chunk(d, 3048, 1048, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH, OTAUP_HASH_XXH3_64), 0);
    ck_assert_mem_eq(otaup_simflash_data(R.sim) + USER, d, S);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_DONE);
    /* the LAST chunk again (a new seq): not the next offset */
    ck_assert_int_eq(restore_chunk(d, 3048, 1048, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH, OTAUP_HASH_XXH3_64),
                     OTAUP_E_RANGE);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_DONE);
}
END_TEST

/* ---- 11. a refused START in the middle of a step ---------------------------- */

/* In place past the point of no return, a START of another update is
 * refused (OTAUP_E_SESSION, protocol.md 3.5). The stream of the open
 * session then goes on: the rest of the step it was in executes, and the
 * session commits. */
START_TEST(test_refused_start_mid_step)
{
    int32_t result = 1;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(51, 0), 0);
    fill_step(0, SLOT_A, 0x51);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.ponr, 1);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 1, SLOT_A + S, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_ERASE, 0, SLOT_A + S, S, 0), 0);
    ck_assert_int_eq(start(52, 0), OTAUP_E_SESSION);
    ck_assert_int_eq(rec(OTAUP_REC_FILL, 0, SLOT_A + S, S, 0x52), 0);
    ck_assert_int_eq(rec(OTAUP_REC_END, 1, 0, 0, 0), 0);
    ck_assert_int_eq(commit(51, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    expect_sector(SLOT_A, 0x51);
    expect_sector(SLOT_A + S, 0x52);
}
END_TEST

/* ---- 12. a refused COMMIT, then INFO ---------------------------------------- */

/* The INFO of a new connection (no reset). */
static void reconnect_resume(otaup_proto_resume *rs)
{
    seen f[8];
    int n, i, got = 0;
    R.k.len = 0;
    ck_assert_int_eq(otaup_apply_connect(&R.ap), 0);
    send_hello();
    feed_ack(0xFFFFu);
    n = frames_sent(f, 8);
    for (i = 0; i < n; i++) {
        if (f[i].type == OTAUP_MSG_INFO) {
            *rs = f[i].m.u.info.resume;
            ck_assert_uint_eq(f[i].m.u.info.nwindows, 1);
            g_window = f[i].m.u.info.windows[0].addr;
            got = 1;
        }
    }
    ck_assert(got);
    feed_ack(0xFFFFu);
    R.k.len = 0;
    R.seq = 1;
}

/* A/B, a power cut between the COMMIT's switch record and the record that
 * ends the session: the target boots already, the session stays open.
 * A START for another update is refused there (the session must finish)
 * and, being refused, changes nothing: INFO's writable window still
 * names the open session's target, not the slot that stopped booting. */
START_TEST(test_refused_start_after_switch)
{
    otaup_proto_resume rs;
    const otaup_journal_state *st = NULL;
    int32_t result = 1;
    uint64_t cut;
    uint32_t i;
    int found = 0;
    for (cut = 1; cut < 200 && !found; cut++) {
        rig_make(OTAUP_LAYOUT_AB);
        g_base = SLOT_B;
        boot();
        otaup_simflash_cut_after(R.sim, cut, 0);
        (void)session_script(0, &result);
        ck_assert_msg(otaup_simflash_is_cut(R.sim), "no cut point between the switch and the end record");
        otaup_simflash_power_on(R.sim);
        otaup_simflash_cut_after(R.sim, 0, 0);
        boot_info(&rs);
        st = &otaup_apply_journal(&R.ap)->st;
        found = st->session == OTAUP_JS_ACTIVE && st->boot_slot == (st->target_slot & 1u);
        if (!found) {
            teardown();
        }
    }
    ck_assert(found);
    ck_assert_uint_eq(rs.session, 77);
    ck_assert_uint_eq(g_active, 0);       /* the open session's source */
    ck_assert_uint_eq(g_window, SLOT_B); /* the open session's target */
    ck_assert_int_eq(start(78, 0), OTAUP_E_SESSION);
    reconnect_resume(&rs);
    ck_assert_uint_eq(rs.session, 77);
    ck_assert_uint_eq(g_window, SLOT_B);
    /* the open session's resume still finishes */
    result = 1;
    ck_assert_int_eq(session_script(OTAUP_START_RESUME, &result), 0);
    ck_assert_int_eq(result, 0);
    for (i = 0; i < 3; i++) {
        expect_sector(SLOT_B + (i + 1u) * S, (uint8_t)(0x71 + i));
    }
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ENDED);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 1);
}
END_TEST

/* A COMMIT refused (the stream did not write the image its START's
 * header names: OTAUP_E_TARGET_MISMATCH; or the stream stopped inside a
 * step) keeps the session open for a resume; INFO on the next connection
 * says it stands in the transfer, not in the commit. */
START_TEST(test_refused_commit_phase)
{
    otaup_proto_resume rs;
    uint8_t h[140];
    int32_t result = 1;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    make_header(h, SLOT_A + S, S, 0x71, 0x0123456789ABCDEFull);
    ck_assert_int_eq(start_m(61, 0, h, sizeof h, NULL), 0);
    ck_assert_int_eq(commit(61, OTAUP_COMMIT_DONE, &result), OTAUP_E_TARGET_MISMATCH);
    reconnect_resume(&rs);
    ck_assert_uint_eq(rs.session, 61);
    ck_assert_uint_eq(rs.phase, OTAUP_PHASE_TRANSFER);
    ck_assert_int_eq(start_m(61, OTAUP_START_RESUME, h, sizeof h, NULL), 0);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A + S, S, 0), 0);
    ck_assert_int_eq(commit(61, OTAUP_COMMIT_DONE, &result), OTAUP_E_STATE); /* inside the step */
    reconnect_resume(&rs);
    ck_assert_uint_eq(rs.phase, OTAUP_PHASE_TRANSFER);
    ck_assert_int_eq(start_m(61, OTAUP_START_RESUME, h, sizeof h, NULL), 0);
    fill_step(0, SLOT_A + S, 0x71);
    ck_assert_int_eq(commit(61, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
}
END_TEST

/* ---- 13. the blocking form around a long erase ------------------------------ */

/* A flash whose erases take 35 s each (the simulated one, slowed down on
 * the test's clock). */
static otaup_flash g_slow;
static const otaup_flash *g_fast;

static int slow_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    (void)f;
    g_now += 35000u;
    return g_fast->erase(g_fast, addr, len);
}

static int slow_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    (void)f;
    return g_fast->read(g_fast, addr, buf, len);
}

static int slow_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    (void)f;
    return g_fast->prog(g_fast, addr, buf, len);
}

static int slow_sync(const otaup_flash *f)
{
    (void)f;
    return g_fast->sync != NULL ? g_fast->sync(g_fast) : 0;
}

static uint8_t g_script[2][1024];
static size_t g_script_len[2];
static int g_script_call;

/* The server: HELLO, ACKs and START (the terminal erases a journal sector
 * as it begins the session: 35 s), then, after one empty wait (its round
 * trip), a step, the COMMIT and the ACK of the RESULT. */
static int script_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    static size_t off;
    (void)ctx;
    if (g_script_call == 0) {
        off = 0;
        g_script_call = 1;
    }
    if (g_script_call == 2) { /* the server's round trip: one empty wait */
        g_script_call = 3;
        off = 0;
    } else if (g_script_call == 1 || g_script_call == 3) {
        int part = g_script_call == 1 ? 0 : 1;
        size_t n = g_script_len[part] - off < cap ? g_script_len[part] - off : cap;
        memcpy(buf, g_script[part] + off, n);
        off += n;
        if (off == g_script_len[part]) {
            g_script_call = part == 0 ? 2 : 4;
        }
        g_now += 5u;
        return (int)n;
    }
    g_now += timeout_ms;
    return 0;
}

static size_t put_frame(uint8_t *out, size_t off, const otaup_msg *m, uint32_t seq)
{
    int k = otaup_msg_encode_frame(m, 0, seq, 2048, out + off, 1024 - off);
    ck_assert_int_gt(k, 0);
    return off + (size_t)k;
}

static size_t put_rec(uint8_t *out, size_t off, uint8_t type, uint32_t index, uint32_t addr, uint32_t len,
                      uint8_t value, uint32_t seq)
{
    otaup_msg m;
    rec_msg(&m, type, index, addr, len, value);
    return put_frame(out, off, &m, seq);
}

/* otaup_apply_run's timeout is for a silent link: 35 s spent erasing (the
 * terminal busy, not the server silent) must not count as silence.
 * Before the fix the 50 ms the server took to answer the START's ACK
 * ended the run with OTAUP_E_TIMEOUT. */
START_TEST(test_run_long_erase_not_silence)
{
    otaup_msg m;
    size_t n = 0;
    uint8_t *b = g_script[0];
    rig_make(OTAUP_LAYOUT_INPLACE);
    g_fast = R.cfg.flash;
    g_slow = *g_fast;
    g_slow.read = slow_read;
    g_slow.prog = slow_prog;
    g_slow.erase = slow_erase;
    g_slow.sync = slow_sync;
    R.cfg.flash = &g_slow;
    R.cfg.link.recv = script_recv;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 2048;
    m.u.hello.max_msg = 2048;
    m.u.hello.window = 1;
    n = put_frame(b, n, &m, 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = 0xFFFFu;
    m.u.ack.window = 1;
    n = put_frame(b, n, &m, 1); /* HELLO */
    n = put_frame(b, n, &m, 1); /* INFO */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 14;
    n = put_frame(b, n, &m, 1);
    g_script_len[0] = n;
    b = g_script[1];
    n = put_rec(b, 0, OTAUP_REC_STEP, 0, SLOT_A + S, S, 0, 2);
    n = put_rec(b, n, OTAUP_REC_ERASE, 0, SLOT_A + S, S, 0, 3);
    n = put_rec(b, n, OTAUP_REC_FILL, 0, SLOT_A + S, S, 0x3C, 4);
    n = put_rec(b, n, OTAUP_REC_END, 0, 0, 0, 0, 5);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_COMMIT;
    m.u.commit.session = 14;
    m.u.commit.action = OTAUP_COMMIT_DONE;
    n = put_frame(b, n, &m, 6);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = 0xFFFFu;
    m.u.ack.window = 1;
    n = put_frame(b, n, &m, 7); /* RESULT */
    g_script_len[1] = n;
    g_script_call = 0;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
    ck_assert_int_eq(otaup_apply_run(&R.ap, 30000u), 0);
    expect_sector(SLOT_A + S, 0x3C);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("termrev2_apply");
    TCase *tc = tcase_create("probes");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_refused_start_keeps_commit_check);
    tcase_add_test(tc, test_duplicate_ping_after_refused_frame);
    tcase_add_test(tc, test_refused_sig_req_keeps_stream);
    tcase_add_test(tc, test_frame_between_fragments);
    tcase_add_test(tc, test_bad_unsequenced_not_nacked);
    tcase_add_test(tc, test_commit_abort_phases);
    tcase_add_test(tc, test_power_cut_sweep);
    tcase_add_test(tc, test_split_at_every_byte);
    tcase_add_test(tc, test_run_silent_link);
    tcase_add_test(tc, test_restore_shapes);
    tcase_add_test(tc, test_refused_start_mid_step);
    tcase_add_test(tc, test_refused_commit_phase);
    tcase_add_test(tc, test_refused_start_after_switch);
    tcase_add_test(tc, test_abort_stops_streams);
    tcase_add_test(tc, test_backup_req_bounds);
    tcase_add_test(tc, test_start_checks_source);
    tcase_add_test(tc, test_run_long_erase_not_silence);
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
