/*
 * otaup — command protocol: frames, the streaming and datagram decoders,
 * fragmentation. C99, no heap, no OS. docs/protocol.md is the
 * specification.
 */
#include "otaup/proto.h"

#include <string.h>

#include "core/proto_int.h"
#include "otaup/error.h"
#include "otaup/journal.h"

#if !OTAUP_CONFIG_SMALL_CRC
#include <zlib.h>
#endif

/* ---- message type table ---------------------------------------------------- */

#define T_FRAG 0x01u /* may span frames */
#define T_SEQ 0x02u  /* consumes a sequence number */
#define UNBOUNDED 0xFFu /* max_len: no bound but the frame's */

/* 4 bytes an entry (every fixed bound is below 255); the names are a
 * separate table, linked only where otaup_msg_type_name() is used. */
struct type_info {
    uint8_t type;
    uint8_t props;
    uint8_t min_len; /* payload bounds of an unfragmented frame */
    uint8_t max_len;
};

static const struct type_info type_table[] = {
    { OTAUP_MSG_HELLO, T_SEQ, OTAUP_HELLO_SIZE, OTAUP_HELLO_SIZE },
    { OTAUP_MSG_INFO, T_SEQ | T_FRAG, 0, UNBOUNDED },
    { OTAUP_MSG_NOTIFY, T_SEQ | T_FRAG, 14, UNBOUNDED },
    { OTAUP_MSG_CONSENT, T_SEQ, 5, 5 + OTAUP_PROTO_VERSION_STR_MAX },
    { OTAUP_MSG_START, T_SEQ | T_FRAG, 12, UNBOUNDED },
    { OTAUP_MSG_COMMIT, T_SEQ, 12, 12 },
    { OTAUP_MSG_ABORT, T_SEQ, 12, 12 },
    { OTAUP_MSG_RESULT, T_SEQ | T_FRAG, 14, 14 + OTAUP_HASH_MAX + OTAUP_PROTO_VERSION_STR_MAX },
    { OTAUP_MSG_PING, T_SEQ, 4, 4 },
    { OTAUP_MSG_PROGRESS, 0, 20, 20 },
    { OTAUP_MSG_ACK, 0, 16, 16 },
    { OTAUP_MSG_NACK, 0, 12, 12 },
    { OTAUP_MSG_BACKUP_REQ, T_SEQ, 12, 12 },
    { OTAUP_MSG_BACKUP_DATA, T_SEQ, 8, UNBOUNDED },
    { OTAUP_MSG_RESTORE_DATA, T_SEQ, 8, UNBOUNDED },
    { OTAUP_MSG_SIG_REQ, T_SEQ, OTAUP_SIG_REQ_SIZE, OTAUP_SIG_REQ_SIZE },
    { OTAUP_MSG_SIG_DATA, T_SEQ, 12, UNBOUNDED },
    { OTAUP_MSG_ERASE, T_SEQ, 2, 10 },
    { OTAUP_MSG_WRITE, T_SEQ, 3, UNBOUNDED }, /* DEFERRED: addr, len, enc */
    { OTAUP_MSG_COPY, T_SEQ, 3, 15 },
    { OTAUP_MSG_DIFF, T_SEQ, 4, UNBOUNDED },  /* DEFERRED: addr, zz, len, enc */
    { OTAUP_MSG_FILL, T_SEQ, 3, 11 },
    { OTAUP_MSG_VERIFY, T_SEQ, 11, 11 + OTAUP_HASH_MAX },
    { OTAUP_MSG_DATA, T_SEQ, 1, UNBOUNDED },
    { OTAUP_MSG_STEP, T_SEQ, 4, 24 },
    { OTAUP_MSG_END, T_SEQ, 1, 5 },
    { OTAUP_MSG_BLOB, T_SEQ, 0, UNBOUNDED },
    { OTAUP_MSG_SYNC, T_SEQ, 1, 5 },
    { OTAUP_MSG_BATCH, T_SEQ | T_FRAG, 1, UNBOUNDED },
};

static const char *const type_names[] = {
    "HELLO", "INFO", "NOTIFY", "CONSENT", "START", "COMMIT",
    "ABORT", "RESULT", "PING", "PROGRESS", "ACK", "NACK",
    "BACKUP_REQ", "BACKUP_DATA", "RESTORE_DATA", "SIG_REQ", "SIG_DATA", "ERASE",
    "WRITE", "COPY", "DIFF", "FILL", "VERIFY", "DATA",
    "STEP", "END", "BLOB", "SYNC", "BATCH",
};

typedef char otaup_type_names_match[sizeof type_names / sizeof type_names[0] ==
                                            sizeof type_table / sizeof type_table[0] ? 1 : -1];

static OTAUP_RAMFUNC const struct type_info *type_find(uint8_t type)
{
    size_t i;
    for (i = 0; i < sizeof type_table / sizeof type_table[0]; i++) {
        if (type_table[i].type == type) {
            return &type_table[i];
        }
    }
    return NULL;
}

OTAUP_RAMFUNC int otaup_msg_type_known(uint8_t type)
{
    return type_find(type) != NULL;
}

OTAUP_RAMFUNC int otaup_msg_type_fragmentable(uint8_t type)
{
    const struct type_info *t = type_find(type);
    return t != NULL && (t->props & T_FRAG) != 0;
}

OTAUP_RAMFUNC int otaup_msg_type_sequenced(uint8_t type)
{
    const struct type_info *t = type_find(type);
    return t != NULL && (t->props & T_SEQ) != 0;
}

const char *otaup_msg_type_name(uint8_t type)
{
    const struct type_info *t = type_find(type);
    return t != NULL ? type_names[t - type_table] : NULL;
}

OTAUP_RAMFUNC int otaup_seq_cmp(uint32_t a, uint32_t b)
{
    uint32_t d = a - b;
    if (d == 0) {
        return 0;
    }
    return d < 0x80000000u ? 1 : -1;
}

/* ---- checksums ---------------------------------------------------------------- */

#if OTAUP_CONFIG_SMALL_CRC
OTAUP_RAMFUNC uint8_t otaup_crc8(uint8_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) {
            crc = (uint8_t)((crc & 0x80u) ? ((unsigned)crc << 1) ^ 0x07u : (unsigned)crc << 1);
        }
    }
    return crc;
}
#else
static const uint8_t crc8_table[256] = {
    0x00, 0x07, 0x0E, 0x09, 0x1C, 0x1B, 0x12, 0x15, 0x38, 0x3F, 0x36, 0x31, 0x24, 0x23, 0x2A, 0x2D,
    0x70, 0x77, 0x7E, 0x79, 0x6C, 0x6B, 0x62, 0x65, 0x48, 0x4F, 0x46, 0x41, 0x54, 0x53, 0x5A, 0x5D,
    0xE0, 0xE7, 0xEE, 0xE9, 0xFC, 0xFB, 0xF2, 0xF5, 0xD8, 0xDF, 0xD6, 0xD1, 0xC4, 0xC3, 0xCA, 0xCD,
    0x90, 0x97, 0x9E, 0x99, 0x8C, 0x8B, 0x82, 0x85, 0xA8, 0xAF, 0xA6, 0xA1, 0xB4, 0xB3, 0xBA, 0xBD,
    0xC7, 0xC0, 0xC9, 0xCE, 0xDB, 0xDC, 0xD5, 0xD2, 0xFF, 0xF8, 0xF1, 0xF6, 0xE3, 0xE4, 0xED, 0xEA,
    0xB7, 0xB0, 0xB9, 0xBE, 0xAB, 0xAC, 0xA5, 0xA2, 0x8F, 0x88, 0x81, 0x86, 0x93, 0x94, 0x9D, 0x9A,
    0x27, 0x20, 0x29, 0x2E, 0x3B, 0x3C, 0x35, 0x32, 0x1F, 0x18, 0x11, 0x16, 0x03, 0x04, 0x0D, 0x0A,
    0x57, 0x50, 0x59, 0x5E, 0x4B, 0x4C, 0x45, 0x42, 0x6F, 0x68, 0x61, 0x66, 0x73, 0x74, 0x7D, 0x7A,
    0x89, 0x8E, 0x87, 0x80, 0x95, 0x92, 0x9B, 0x9C, 0xB1, 0xB6, 0xBF, 0xB8, 0xAD, 0xAA, 0xA3, 0xA4,
    0xF9, 0xFE, 0xF7, 0xF0, 0xE5, 0xE2, 0xEB, 0xEC, 0xC1, 0xC6, 0xCF, 0xC8, 0xDD, 0xDA, 0xD3, 0xD4,
    0x69, 0x6E, 0x67, 0x60, 0x75, 0x72, 0x7B, 0x7C, 0x51, 0x56, 0x5F, 0x58, 0x4D, 0x4A, 0x43, 0x44,
    0x19, 0x1E, 0x17, 0x10, 0x05, 0x02, 0x0B, 0x0C, 0x21, 0x26, 0x2F, 0x28, 0x3D, 0x3A, 0x33, 0x34,
    0x4E, 0x49, 0x40, 0x47, 0x52, 0x55, 0x5C, 0x5B, 0x76, 0x71, 0x78, 0x7F, 0x6A, 0x6D, 0x64, 0x63,
    0x3E, 0x39, 0x30, 0x37, 0x22, 0x25, 0x2C, 0x2B, 0x06, 0x01, 0x08, 0x0F, 0x1A, 0x1D, 0x14, 0x13,
    0xAE, 0xA9, 0xA0, 0xA7, 0xB2, 0xB5, 0xBC, 0xBB, 0x96, 0x91, 0x98, 0x9F, 0x8A, 0x8D, 0x84, 0x83,
    0xDE, 0xD9, 0xD0, 0xD7, 0xC2, 0xC5, 0xCC, 0xCB, 0xE6, 0xE1, 0xE8, 0xEF, 0xFA, 0xFD, 0xF4, 0xF3,
};

OTAUP_RAMFUNC uint8_t otaup_crc8(uint8_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        crc = crc8_table[(uint8_t)(crc ^ p[i])];
    }
    return crc;
}
#endif

/* Header check: CRC-8 over bytes 0..4 and 6..11. */
static OTAUP_RAMFUNC uint8_t hcheck(const uint8_t *h)
{
    return otaup_crc8(otaup_crc8(0, h, 5), h + 6, 6);
}

static OTAUP_RAMFUNC uint32_t frame_crc(const uint8_t *p, size_t n)
{
#if OTAUP_CONFIG_SMALL_CRC
    return otaup_journal_crc32(0, p, n);
#else
    return (uint32_t)crc32(0uL, p, (uInt)n);
#endif
}

/* ---- encoding ------------------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_frame_seal(uint8_t *out, size_t cap, uint8_t type, uint8_t flags,
                                   uint32_t seq, size_t payload_len)
{
    uint32_t crc;
    if (out == NULL) {
        return OTAUP_E_INVAL;
    }
    if ((flags & (uint8_t)~OTAUP_FLAG_ALL) != 0 ||
        ((flags & (OTAUP_FLAG_MORE | OTAUP_FLAG_CONT)) != 0 && !otaup_msg_type_fragmentable(type))) {
        return OTAUP_E_FRAME_FLAGS;
    }
    if (payload_len > OTAUP_PAYLOAD_MAX) {
        return OTAUP_E_FRAME_OVERSIZE;
    }
    if (cap < payload_len + OTAUP_FRAME_OVERHEAD) {
        return OTAUP_E_BUFFER;
    }
    out[0] = OTAUP_FRAME_MAGIC0;
    out[1] = OTAUP_FRAME_MAGIC1;
    out[2] = OTAUP_PROTO_VERSION;
    out[3] = type;
    out[4] = flags;
    otaup_put16(out + 6, (uint16_t)payload_len);
    otaup_put32(out + 8, seq);
    out[5] = hcheck(out);
    crc = frame_crc(out, OTAUP_FRAME_HEADER_SIZE + payload_len);
    otaup_put32(out + OTAUP_FRAME_HEADER_SIZE + payload_len, crc);
    return (int)(payload_len + OTAUP_FRAME_OVERHEAD);
}

OTAUP_RAMFUNC int otaup_frame_encode(uint8_t type, uint8_t flags, uint32_t seq,
                                     const uint8_t *payload, size_t len, uint8_t *out, size_t cap)
{
    if (out == NULL || (payload == NULL && len != 0)) {
        return OTAUP_E_INVAL;
    }
    if (len > OTAUP_PAYLOAD_MAX) {
        return OTAUP_E_FRAME_OVERSIZE;
    }
    if (cap < len + OTAUP_FRAME_OVERHEAD) {
        return OTAUP_E_BUFFER;
    }
    if (len != 0 && payload != out + OTAUP_FRAME_HEADER_SIZE) {
        memmove(out + OTAUP_FRAME_HEADER_SIZE, payload, len);
    }
    return otaup_frame_seal(out, cap, type, flags, seq, len);
}

/* ---- frame examination (shared by both decoders) ------------------------------------ */

/*
 * Checks an intact frame (CRC good) against the rules of this protocol
 * version. 0 or the error to report.
 */
static OTAUP_RAMFUNC int frame_accept(const otaup_frame *fr)
{
    const struct type_info *t;
    if (fr->version != OTAUP_PROTO_VERSION) {
        return OTAUP_E_FRAME_VERSION;
    }
    if ((fr->flags & (uint8_t)~OTAUP_FLAG_ALL) != 0) {
        return OTAUP_E_FRAME_FLAGS;
    }
    t = type_find(fr->type);
    if (t == NULL) {
        return OTAUP_E_MSG_TYPE;
    }
    if ((fr->flags & (OTAUP_FLAG_MORE | OTAUP_FLAG_CONT)) != 0) {
        if ((t->props & T_FRAG) == 0) {
            return OTAUP_E_FRAME_FLAGS;
        }
        if (fr->payload_len == 0) {
            return OTAUP_E_MSG_LENGTH; /* an empty fragment */
        }
        return 0;
    }
    if (fr->payload_len < t->min_len || (t->max_len != UNBOUNDED && fr->payload_len > t->max_len)) {
        return OTAUP_E_MSG_LENGTH;
    }
    return 0;
}

enum { EX_NEED, EX_FRAME, EX_DROP, EX_INTACT };

/*
 * p[0..n) starts with the magic (n >= 2). Decides what the bytes are:
 * EX_NEED (*need = bytes required), EX_FRAME / EX_INTACT (*fr filled,
 * *err for INTACT), EX_DROP (*err; the start is bad).
 */
static OTAUP_RAMFUNC int examine(const uint8_t *p, size_t n, uint32_t max_frame, size_t *need,
                                 otaup_frame *fr, int *err)
{
    uint32_t plen, total;
    if (n < OTAUP_FRAME_HEADER_SIZE) {
        *need = OTAUP_FRAME_HEADER_SIZE;
        return EX_NEED;
    }
    if (hcheck(p) != p[5]) {
        *err = OTAUP_E_FRAME_HEADER;
        return EX_DROP;
    }
    plen = otaup_get16(p + 6);
    total = plen + OTAUP_FRAME_OVERHEAD;
    if (total > max_frame) {
        *err = OTAUP_E_FRAME_OVERSIZE;
        return EX_DROP;
    }
    if (n < total) {
        *need = total;
        return EX_NEED;
    }
    if (frame_crc(p, OTAUP_FRAME_HEADER_SIZE + plen) !=
        otaup_get32(p + OTAUP_FRAME_HEADER_SIZE + plen)) {
        *err = OTAUP_E_FRAME_CRC;
        return EX_DROP;
    }
    fr->version = p[2];
    fr->type = p[3];
    fr->flags = p[4];
    fr->seq = otaup_get32(p + 8);
    fr->payload = p + OTAUP_FRAME_HEADER_SIZE;
    fr->payload_len = plen;
    fr->frame_len = total;
    fr->crc = otaup_get32(p + OTAUP_FRAME_HEADER_SIZE + plen);
    *err = frame_accept(fr);
    return *err != 0 ? EX_INTACT : EX_FRAME;
}

static OTAUP_RAMFUNC int max_frame_ok(uint32_t max_frame)
{
    return max_frame >= OTAUP_FRAME_MIN && max_frame <= OTAUP_CONFIG_FRAME_MAX;
}

OTAUP_RAMFUNC int otaup_frame_decode(const uint8_t *in, size_t len, uint32_t max_frame,
                                     otaup_frame *fr)
{
    size_t need = 0;
    int err = 0, ex;
    if (fr == NULL || (in == NULL && len != 0) || !max_frame_ok(max_frame)) {
        return OTAUP_E_INVAL;
    }
    if ((len >= 1 && in[0] != OTAUP_FRAME_MAGIC0) || (len >= 2 && in[1] != OTAUP_FRAME_MAGIC1)) {
        return OTAUP_E_FRAME_MAGIC;
    }
    if (len < 2) {
        return OTAUP_E_FRAME_TRUNCATED;
    }
    ex = examine(in, len, max_frame, &need, fr, &err);
    switch (ex) {
    case EX_NEED:
        return OTAUP_E_FRAME_TRUNCATED;
    case EX_DROP:
        return err;
    default:
        break;
    }
    if (len > fr->frame_len) {
        return OTAUP_E_MSG_LENGTH; /* bytes after the frame */
    }
    return ex == EX_FRAME ? 0 : err;
}

/* ---- streaming decoder ----------------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_decoder_init(otaup_decoder *d, uint8_t *buf, size_t cap, uint32_t max_frame)
{
    if (d == NULL || buf == NULL || !max_frame_ok(max_frame) || cap < max_frame) {
        return OTAUP_E_INVAL;
    }
    memset(d, 0, sizeof *d);
    d->buf = buf;
    d->cap = cap > OTAUP_FRAME_MAX ? OTAUP_FRAME_MAX : (uint32_t)cap;
    d->max_frame = max_frame;
    return 0;
}

OTAUP_RAMFUNC void otaup_decoder_reset(otaup_decoder *d)
{
    if (d != NULL) {
        d->have = 0;
        d->release = 0;
        d->garbage = 0;
        d->skipped = 0;
    }
}

/*
 * Drop buffered bytes up to the first magic pair at or after `from` (a
 * lone magic byte at the very end is kept: it may start a frame). Bytes
 * from `from` on count as garbage; bytes before it were a bad frame start.
 */
static OTAUP_RAMFUNC void buf_scan(otaup_decoder *d, uint32_t from)
{
    uint32_t k = from;
    while (k < d->have) {
        if (d->buf[k] == OTAUP_FRAME_MAGIC0 &&
            (k + 1u == d->have || d->buf[k + 1u] == OTAUP_FRAME_MAGIC1)) {
            break;
        }
        k++;
    }
    if (k > from) {
        d->garbage += k - from;
    }
    if (k > 0) {
        memmove(d->buf, d->buf + k, d->have - k);
        d->have -= k;
    }
}

static OTAUP_RAMFUNC int emit_garbage(otaup_decoder *d)
{
    d->skipped = d->garbage;
    d->stats.garbage_bytes += d->garbage;
    d->garbage = 0;
    return OTAUP_E_FRAME_GARBAGE;
}

static OTAUP_RAMFUNC int emit_error(otaup_decoder *d, int err)
{
    d->stats.errors++;
    return err;
}

OTAUP_RAMFUNC int otaup_decoder_feed(otaup_decoder *d, const uint8_t *in, size_t len,
                                     size_t *consumed, otaup_frame *fr)
{
    size_t used = 0;
    if (consumed != NULL) {
        *consumed = 0;
    }
    if (d == NULL || d->buf == NULL || consumed == NULL || fr == NULL || (in == NULL && len != 0)) {
        return OTAUP_E_INVAL;
    }
    if (d->release != 0) {
        /* the previous event delivered buf[0..release): drop it */
        memmove(d->buf, d->buf + d->release, d->have - d->release);
        d->have -= d->release;
        d->release = 0;
        buf_scan(d, 0);
    }
    for (;;) {
        size_t need = 0;
        int err = 0, ex;
        if (d->have > 0) {
            /* a frame start is buffered: buf[0] is MAGIC0, buf[1] MAGIC1 if present */
            if (d->have == 1u) {
                if (used == len) {
                    *consumed = used;
                    return OTAUP_DEC_NEED_INPUT;
                }
                d->buf[d->have++] = in[used++];
                if (d->buf[1] != OTAUP_FRAME_MAGIC1) {
                    buf_scan(d, 0); /* the lone magic byte was garbage too */
                    continue;
                }
            }
            if (d->garbage != 0) {
                *consumed = used;
                return emit_garbage(d);
            }
            ex = examine(d->buf, d->have, d->max_frame, &need, fr, &err);
            if (ex == EX_NEED) {
                size_t take = need - d->have;
                if (take > len - used) {
                    take = len - used;
                }
                memcpy(d->buf + d->have, in + used, take);
                d->have += (uint32_t)take;
                used += take;
                if (d->have < need) {
                    *consumed = used;
                    return OTAUP_DEC_NEED_INPUT;
                }
                continue;
            }
            *consumed = used;
            if (ex == EX_DROP) {
                buf_scan(d, 1);
                return emit_error(d, err);
            }
            d->release = fr->frame_len;
            if (ex == EX_INTACT) {
                return emit_error(d, err);
            }
            d->stats.frames++;
            return OTAUP_DEC_FRAME;
        }

        /* nothing buffered: work on the caller's bytes directly */
        {
            size_t i = used;
            for (;;) {
                const uint8_t *m;
                if (i >= len) {
                    d->garbage += (uint32_t)(len - used);
                    *consumed = len;
                    return OTAUP_DEC_NEED_INPUT;
                }
                m = (const uint8_t *)memchr(in + i, OTAUP_FRAME_MAGIC0, len - i);
                if (m == NULL) {
                    i = len;
                    continue;
                }
                i = (size_t)(m - in);
                if (i + 1u == len) {
                    /* a lone magic byte at the end: keep it */
                    d->garbage += (uint32_t)(i - used);
                    d->buf[0] = OTAUP_FRAME_MAGIC0;
                    d->have = 1;
                    *consumed = len;
                    return OTAUP_DEC_NEED_INPUT;
                }
                if (in[i + 1u] == OTAUP_FRAME_MAGIC1) {
                    break;
                }
                i++;
            }
            d->garbage += (uint32_t)(i - used);
            used = i;
        }
        if (d->garbage != 0) {
            *consumed = used;
            return emit_garbage(d);
        }
        ex = examine(in + used, len - used, d->max_frame, &need, fr, &err);
        if (ex == EX_NEED) {
            /* an incomplete frame: keep its bytes (fewer than max_frame) */
            memcpy(d->buf, in + used, len - used);
            d->have = (uint32_t)(len - used);
            *consumed = len;
            return OTAUP_DEC_NEED_INPUT;
        }
        if (ex == EX_DROP) {
            *consumed = used + 1u;
            return emit_error(d, err);
        }
        *consumed = used + fr->frame_len;
        if (ex == EX_INTACT) {
            return emit_error(d, err);
        }
        d->stats.frames++;
        return OTAUP_DEC_FRAME;
    }
}

/* ---- fragmentation -------------------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_reasm_init(otaup_reasm *r, uint8_t *buf, size_t cap)
{
    if (r == NULL || (buf == NULL && cap != 0)) {
        return OTAUP_E_INVAL;
    }
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->cap = cap > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)cap;
    return 0;
}

OTAUP_RAMFUNC void otaup_reasm_reset(otaup_reasm *r)
{
    if (r != NULL) {
        r->len = 0;
        r->active = 0;
    }
}

static OTAUP_RAMFUNC int reasm_fail(otaup_reasm *r)
{
    otaup_reasm_reset(r);
    return OTAUP_E_FRAGMENT;
}

OTAUP_RAMFUNC int otaup_reasm_add(otaup_reasm *r, const otaup_frame *fr, const uint8_t **msg,
                                  size_t *msg_len)
{
    int more, cont;
    if (r == NULL || fr == NULL || msg == NULL || msg_len == NULL ||
        (fr->payload == NULL && fr->payload_len != 0) || fr->type == OTAUP_MSG_BATCH) {
        return OTAUP_E_INVAL;
    }
    more = (fr->flags & OTAUP_FLAG_MORE) != 0;
    cont = (fr->flags & OTAUP_FLAG_CONT) != 0;
    if ((more || cont) && !otaup_msg_type_fragmentable(fr->type)) {
        return reasm_fail(r);
    }
    if (!cont) {
        if (r->active) {
            return reasm_fail(r); /* the previous message never finished */
        }
        if (!more) {
            *msg = fr->payload;
            *msg_len = fr->payload_len;
            return 1;
        }
        /* the first fragment: gathered as the continuations are */
        r->len = 0;
        r->type = fr->type;
        r->next_seq = fr->seq;
        r->active = 1;
    }
    if (!r->active || fr->type != r->type || fr->seq != r->next_seq ||
        fr->payload_len > r->cap - r->len) {
        return reasm_fail(r);
    }
    if (fr->payload_len != 0) {
        memcpy(r->buf + r->len, fr->payload, fr->payload_len);
    }
    r->len += fr->payload_len;
    r->next_seq++;
    if (more) {
        return 0;
    }
    r->active = 0;
    *msg = r->buf;
    *msg_len = r->len;
    return 1;
}

OTAUP_RAMFUNC int otaup_frag_next(uint8_t type, uint8_t extra, uint32_t seq, const uint8_t *msg,
                                  size_t len, size_t *off, uint32_t max_frame, uint8_t *out,
                                  size_t cap)
{
    size_t room, chunk;
    uint8_t flags = 0;
    if (off == NULL || out == NULL || (msg == NULL && len != 0) || !max_frame_ok(max_frame) ||
        (extra & (uint8_t)~OTAUP_FLAG_ACKREQ) != 0) {
        return OTAUP_E_INVAL;
    }
    if (*off > len || (*off == len && len != 0)) {
        return 0; /* done */
    }
    room = OTAUP_FRAME_PAYLOAD(max_frame);
    if (cap < OTAUP_FRAME_OVERHEAD + (len != 0 ? 1u : 0u)) {
        return OTAUP_E_BUFFER; /* an empty message is one frame of OVERHEAD bytes */
    }
    if (room > cap - OTAUP_FRAME_OVERHEAD) {
        room = cap - OTAUP_FRAME_OVERHEAD;
    }
    chunk = len - *off;
    if (chunk > room) {
        chunk = room;
    }
    if (*off != 0) {
        flags |= OTAUP_FLAG_CONT;
    }
    if (*off + chunk < len) {
        flags |= OTAUP_FLAG_MORE;
    }
    if (flags != 0 && !otaup_msg_type_fragmentable(type)) {
        return OTAUP_E_FRAGMENT;
    }
    {
        int n = otaup_frame_encode(type, (uint8_t)(flags | extra), seq, msg + *off, chunk, out, cap);
        if (n < 0) {
            return n;
        }
        *off += chunk;
        if (len == 0) {
            *off = 1; /* the one empty frame is out */
        }
        return n;
    }
}

OTAUP_RAMFUNC int otaup_batch_check(uint8_t flags, int parser_idle, int when)
{
    int bit = when == 0 ? (flags & OTAUP_FLAG_CONT) != 0 : (flags & OTAUP_FLAG_MORE) != 0;
    /* before: idle unless the frame continues a record; after: idle unless MORE */
    return (parser_idle != 0) == !bit ? 0 : OTAUP_E_FRAGMENT;
}
