/*
 * otaup — operation records: varints, body and record encoding, decoding,
 * and the streaming record parser. C99, no heap, no OS.
 *
 * One body parser serves both the whole-buffer decoder and the streaming
 * parser: rec_fields() parses the fixed fields of a body from a prefix of
 * it and says whether the prefix is enough. Both decoders therefore accept
 * and reject exactly the same inputs, with the same error codes, whatever
 * the chunking of the input.
 */
#include "otaup/record.h"

#include <stddef.h>
#include <string.h>

#include "otaup/error.h"

/* Bodies larger than this are refused so that byte counts fit an int. */
#define REC_BODY_LIMIT 0x7FFFFFF0u

/* ---- varints ------------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_varint_put(uint32_t v, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (out == NULL) {
        return OTAUP_E_BUFFER;
    }
    do {
        uint8_t b = (uint8_t)(v & 0x7Fu);
        v >>= 7;
        if (v != 0) {
            b |= 0x80u;
        }
        if (n >= cap) {
            return OTAUP_E_BUFFER;
        }
        out[n++] = b;
    } while (v != 0);
    return (int)n;
}

OTAUP_RAMFUNC int otaup_varint_get(const uint8_t *in, size_t len, uint32_t *v)
{
    uint32_t acc = 0;
    size_t i;
    for (i = 0; i < 5u; i++) {
        uint8_t b;
        if (i >= len) {
            return OTAUP_E_DELTA_TRUNCATED;
        }
        b = in[i];
        if (i == 4u && (b & 0xF0u) != 0) {
            /* continuation on the 5th byte (overlong) or bits above 2^32 */
            return OTAUP_E_MSG_FIELD;
        }
        acc |= (uint32_t)(b & 0x7Fu) << (7u * i);
        if ((b & 0x80u) == 0) {
            if (i > 0 && b == 0) {
                return OTAUP_E_MSG_FIELD; /* not the shortest form */
            }
            if (v != NULL) {
                *v = acc;
            }
            return (int)(i + 1u);
        }
    }
    return OTAUP_E_MSG_FIELD; /* not reached: the 5th byte returns above */
}

static OTAUP_RAMFUNC unsigned varint_size(uint32_t v)
{
    unsigned n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

static OTAUP_RAMFUNC uint32_t zz_encode(uint32_t src, uint32_t addr)
{
    uint32_t d = src - addr; /* modulo 2^32, read as two's complement */
    uint32_t sign = (d & 0x80000000u) != 0 ? 0xFFFFFFFFu : 0u;
    return (d << 1) ^ sign;
}

static OTAUP_RAMFUNC uint32_t zz_decode(uint32_t z, uint32_t addr)
{
    uint32_t d = (z >> 1) ^ (0u - (z & 1u));
    return addr + d;
}

/* ---- per-type facts ---------------------------------------------------- */

/* Fields of a record body in wire order (docs/delta-format.md): varints
 * into the record's uint32_t fields, then single bytes into its uint8_t
 * fields. A source varint is zigzag-coded relative to the address read
 * before it (0 for PIECE, which has none). */
enum { F_END = 0, F_INDEX, F_ADDR, F_SRC, F_LEN, F_LIT, F_ENC, F_VALUE, F_ALG, F_FLAGS };
#define F_LAST_VARINT F_LIT

static const uint8_t field_off[] = {
    0,
    (uint8_t)offsetof(otaup_record, index),
    (uint8_t)offsetof(otaup_record, addr),
    (uint8_t)offsetof(otaup_record, src),
    (uint8_t)offsetof(otaup_record, len),
    (uint8_t)offsetof(otaup_record, lit),
    (uint8_t)offsetof(otaup_record, enc),
    (uint8_t)offsetof(otaup_record, value),
    (uint8_t)offsetof(otaup_record, alg),
    (uint8_t)offsetof(otaup_record, flags),
};

#define K_BYTES 1u /* the body ends in a run of bytes (the rest are fixed-size) */
#define K_RANGE 2u /* [addr, addr+len) must stay inside 32 bits */
#define K_SRC 4u   /* and so must [src, src+len) */
#define FIELDS(a, b, c, d) ((uint16_t)((a) | ((b) << 4) | ((c) << 8) | ((d) << 12)))

struct rec_kind {
    uint16_t fields; /* up to four F_* codes, first in the low bits */
    uint8_t max;     /* largest body of a fixed-size type (varints at 5 bytes) */
    uint8_t flags;   /* K_* */
};

/* ERASE..SYNC (0x20..0x2A), then PIECE and CFILL (0x30, 0x31). */
static const struct rec_kind kinds[] = {
    {FIELDS(F_ADDR, F_LEN, 0, 0), 10u, K_RANGE},                     /* ERASE */
    {FIELDS(F_ADDR, F_LEN, F_ENC, 0), 0u, K_BYTES | K_RANGE},        /* WRITE */
    {FIELDS(F_ADDR, F_SRC, F_LEN, 0), 15u, K_RANGE | K_SRC},         /* COPY */
    {FIELDS(F_ADDR, F_SRC, F_LEN, F_ENC), 0u, K_BYTES | K_RANGE | K_SRC}, /* DIFF */
    {FIELDS(F_ADDR, F_LEN, F_VALUE, 0), 11u, K_RANGE},               /* FILL */
    {FIELDS(F_ADDR, F_LEN, F_ALG, 0), 11u + OTAUP_HASH_MAX, K_RANGE}, /* VERIFY */
    {FIELDS(F_FLAGS, 0, 0, 0), 0u, K_BYTES},                          /* DATA */
    {FIELDS(F_INDEX, F_ADDR, F_LEN, F_FLAGS), 16u + 8u, K_RANGE},     /* STEP */
    {FIELDS(F_INDEX, 0, 0, 0), 5u, 0u},                               /* END */
    {0u, 0u, K_BYTES},                                                /* BLOB */
    {FIELDS(F_INDEX, 0, 0, 0), 5u, 0u},                               /* SYNC */
    {FIELDS(F_SRC, F_LEN, F_LIT, 0), 0u, K_BYTES},                    /* PIECE */
    {FIELDS(F_LEN, F_VALUE, 0, 0), 6u, 0u},                           /* CFILL */
};

/* The facts of a record type, or NULL if the type is unknown. */
static OTAUP_RAMFUNC const struct rec_kind *kind_of(uint8_t type)
{
    unsigned i = (unsigned)type - OTAUP_REC_ERASE;
    if (i > (unsigned)(OTAUP_REC_SYNC - OTAUP_REC_ERASE)) {
        i = (unsigned)type - OTAUP_REC_PIECE;
        if (i > (unsigned)(OTAUP_REC_CFILL - OTAUP_REC_PIECE)) {
            return NULL;
        }
        i += (unsigned)(OTAUP_REC_SYNC - OTAUP_REC_ERASE) + 1u;
    }
    return &kinds[i];
}

static OTAUP_RAMFUNC int type_known(uint8_t type)
{
    return kind_of(type) != NULL;
}

/* Largest body of a record type: a fixed-size type's (varints at 5 bytes),
 * else REC_BODY_LIMIT. */
static OTAUP_RAMFUNC uint32_t body_max(const struct rec_kind *k)
{
    return (k->flags & K_BYTES) != 0 ? REC_BODY_LIMIT : k->max;
}

static OTAUP_RAMFUNC unsigned hash_size(uint8_t alg)
{
    switch (alg) {
    case OTAUP_HASH_XXH3_64: return 8u;
    case OTAUP_HASH_XXH3_128: return 16u;
    case OTAUP_HASH_SHA256: return 32u;
    default: return 0u;
    }
}

/* 1 if [a, a+n) stays inside the 32-bit address space. */
static OTAUP_RAMFUNC int range_ok(uint32_t a, uint32_t n)
{
    return a == 0u || n <= (0xFFFFFFFFu - a) + 1u;
}

/* ---- body field parser (shared by both decoders) ------------------------ */

struct rd {
    const uint8_t *p;
    uint32_t n;     /* bytes available */
    uint32_t pos;
    int final;      /* the n bytes are the whole body */
};

/* 1 = value read, 0 = need more bytes, < 0 error */
static OTAUP_RAMFUNC int rd_varint(struct rd *r, uint32_t *v)
{
    int k = otaup_varint_get(r->p + r->pos, r->n - r->pos, v);
    if (k == OTAUP_E_DELTA_TRUNCATED) {
        return r->final ? OTAUP_E_MSG_LENGTH : 0;
    }
    if (k < 0) {
        return k;
    }
    r->pos += (uint32_t)k;
    return 1;
}

static OTAUP_RAMFUNC int rd_byte(struct rd *r, uint8_t *v)
{
    if (r->pos >= r->n) {
        return r->final ? OTAUP_E_MSG_LENGTH : 0;
    }
    *v = r->p[r->pos++];
    return 1;
}

#define RD(call)             \
    do {                     \
        int rc_ = (call);    \
        if (rc_ <= 0) {      \
            return rc_;      \
        }                    \
    } while (0)

/*
 * Parse the fixed fields of a body of `type` from b[0..n), where n <=
 * body_len. For records with trailing bytes the fixed fields are a prefix
 * of the body; for the others the whole body is parsed once n == body_len.
 * Returns 1 with *fixed = the length of the fixed part and rec filled
 * (data = NULL, data_len = number of trailing bytes), 0 if more bytes are
 * needed, or a negative error.
 */
static OTAUP_RAMFUNC int rec_fields(uint8_t type, const uint8_t *b, uint32_t n, uint32_t body_len,
                                    otaup_record *rec, uint32_t *fixed)
{
    const struct rec_kind *k = kind_of(type);
    struct rd r;
    uint32_t v, rest;
    unsigned hl = 0, f;

    if (k == NULL) {
        return OTAUP_E_MSG_TYPE;
    }
    if (body_len > body_max(k)) {
        return OTAUP_E_MSG_LENGTH;
    }
    if ((k->flags & K_BYTES) == 0 && n < body_len) {
        return 0;
    }
    r.p = b;
    r.n = n;
    r.pos = 0;
    r.final = (n == body_len);
    memset(rec, 0, sizeof *rec);
    rec->type = type;

    for (f = k->fields; f != 0; f >>= 4) {
        unsigned code = f & 15u;
        uint8_t *dst = (uint8_t *)rec + field_off[code];
        if (code <= F_LAST_VARINT) {
            RD(rd_varint(&r, &v));
            if (code == F_SRC) {
                v = zz_decode(v, rec->addr);
            }
            memcpy(dst, &v, sizeof v);
        } else {
            RD(rd_byte(&r, dst));
        }
    }

    /* the checks of each type, once its fields are read */
    switch (type) {
    case OTAUP_REC_WRITE:
    case OTAUP_REC_DIFF:
        if (rec->enc != OTAUP_ENC_INLINE && rec->enc != OTAUP_ENC_DEFERRED) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    case OTAUP_REC_VERIFY:
        hl = hash_size(rec->alg);
        if (hl == 0) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    case OTAUP_REC_DATA:
        if ((rec->flags & (uint8_t)~OTAUP_DATA_RESET) != 0) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    case OTAUP_REC_STEP:
        if ((rec->flags & (uint8_t)~OTAUP_STEP_HASH) != 0) {
            return OTAUP_E_MSG_FIELD;
        }
        hl = (rec->flags & OTAUP_STEP_HASH) != 0 ? 8u : 0u;
        break;
    case OTAUP_REC_PIECE:
        if ((rec->len == 0 && rec->lit == 0) || rec->len > 0xFFFFFFFFu - rec->lit) {
            return OTAUP_E_MSG_FIELD; /* empty, or longer than 32 bits */
        }
        break;
    case OTAUP_REC_CFILL:
        if (rec->len == 0) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    default:
        break;
    }
    if (hl != 0) {
        /* VERIFY's hash, STEP's window hash: fixed-size, n is the whole body */
        if (r.n - r.pos < hl) {
            return OTAUP_E_MSG_LENGTH;
        }
        memcpy(rec->hash, r.p + r.pos, hl);
        rec->hash_len = (uint8_t)hl;
        r.pos += hl;
    }

    /* address ranges must stay inside 32 bits */
    if (((k->flags & K_SRC) != 0 && !range_ok(rec->src, rec->len)) ||
        ((k->flags & K_RANGE) != 0 && !range_ok(rec->addr, rec->len))) {
        return OTAUP_E_MSG_FIELD;
    }

    rest = body_len - r.pos;
    if ((k->flags & K_BYTES) == 0) {
        if (rest != 0) {
            return OTAUP_E_MSG_LENGTH; /* trailing bytes after the fields */
        }
    } else if (type == OTAUP_REC_WRITE || type == OTAUP_REC_DIFF) {
        if (rest != (rec->enc == OTAUP_ENC_INLINE ? rec->len : 0u)) {
            return OTAUP_E_MSG_LENGTH; /* inline byte count differs from len */
        }
    } else if (type == OTAUP_REC_PIECE) {
        if (rec->len == 0 ? rest != rec->lit : rest <= rec->lit) {
            return OTAUP_E_MSG_LENGTH; /* no room for the differences, or bytes without them */
        }
    }
    rec->data = NULL;
    rec->data_len = rest;
    *fixed = r.pos;
    return 1;
}

#undef RD

/* ---- decoding ---------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_record_decode_body(uint8_t type, const uint8_t *in, size_t len,
                                           otaup_record *rec)
{
    uint32_t fixed = 0;
    int rc;
    if (rec == NULL || (in == NULL && len != 0)) {
        return OTAUP_E_INVAL;
    }
    if (!type_known(type)) {
        return OTAUP_E_MSG_TYPE;
    }
    if (len > REC_BODY_LIMIT) {
        return OTAUP_E_MSG_LENGTH;
    }
    rc = rec_fields(type, in, (uint32_t)len, (uint32_t)len, rec, &fixed);
    if (rc < 0) {
        return rc;
    }
    if (rc == 0) {
        return OTAUP_E_INTERNAL; /* cannot happen: the whole body was given */
    }
    if (rec->data_len != 0) {
        rec->data = in + fixed;
    }
    return 0;
}

OTAUP_RAMFUNC int otaup_record_decode(const uint8_t *in, size_t len, otaup_record *rec)
{
    uint32_t body_len;
    const struct rec_kind *t;
    int k, rc;
    if (rec == NULL || (in == NULL && len != 0)) {
        return OTAUP_E_INVAL;
    }
    if (len == 0) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    t = kind_of(in[0]);
    if (t == NULL) {
        return OTAUP_E_MSG_TYPE;
    }
    k = otaup_varint_get(in + 1, len - 1u, &body_len);
    if (k < 0) {
        return k;
    }
    if (body_len > body_max(t)) {
        return OTAUP_E_MSG_LENGTH;
    }
    if (body_len > len - 1u - (size_t)k) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    rc = otaup_record_decode_body(in[0], in + 1 + k, body_len, rec);
    if (rc < 0) {
        return rc;
    }
    return 1 + k + (int)body_len;
}

/* ---- encoding ---------------------------------------------------------- */

static OTAUP_RAMFUNC unsigned put_v(uint8_t *p, uint32_t v)
{
    return (unsigned)otaup_varint_put(v, p, 5u);
}

/*
 * Encode the fixed fields of *rec into h[OTAUP_RECORD_HEAD_MAX], from the
 * same field list as rec_fields() reads; the trailing bytes (if any) are
 * data[0..data_len). Returns the fixed length, OTAUP_E_INVAL for what the
 * decoders refuse, or OTAUP_E_RANGE (a body too long).
 */
static OTAUP_RAMFUNC int rec_fixed(const otaup_record *rec, uint8_t *h, const uint8_t **data,
                                   uint32_t *data_len)
{
    const struct rec_kind *k = kind_of(rec->type);
    unsigned n = 0, hl = 0, f;
    *data = NULL;
    *data_len = 0;
    if (k == NULL) {
        return OTAUP_E_INVAL;
    }
    /* the checks of each type, as rec_fields() makes them */
    if (((k->flags & K_RANGE) != 0 && !range_ok(rec->addr, rec->len)) ||
        ((k->flags & K_SRC) != 0 && !range_ok(rec->src, rec->len))) {
        return OTAUP_E_INVAL;
    }
    switch (rec->type) {
    case OTAUP_REC_WRITE:
    case OTAUP_REC_DIFF:
        if (rec->enc == OTAUP_ENC_INLINE) {
            if (rec->data_len != rec->len || (rec->data == NULL && rec->len != 0)) {
                return OTAUP_E_INVAL;
            }
            *data = rec->data;
            *data_len = rec->len;
        } else if (rec->enc != OTAUP_ENC_DEFERRED) {
            return OTAUP_E_INVAL;
        }
        break;
    case OTAUP_REC_VERIFY:
        hl = hash_size(rec->alg);
        if (hl == 0 || rec->hash_len != hl) {
            return OTAUP_E_INVAL;
        }
        break;
    case OTAUP_REC_STEP:
        if ((rec->flags & (uint8_t)~OTAUP_STEP_HASH) != 0) {
            return OTAUP_E_INVAL;
        }
        hl = (rec->flags & OTAUP_STEP_HASH) != 0 ? 8u : 0u;
        break;
    case OTAUP_REC_CFILL:
        if (rec->len == 0) {
            return OTAUP_E_INVAL;
        }
        break;
    case OTAUP_REC_PIECE:
        if ((rec->len == 0 && rec->lit == 0) || rec->len > 0xFFFFFFFFu - rec->lit ||
            (rec->len == 0 ? rec->data_len != rec->lit : rec->data_len <= rec->lit)) {
            return OTAUP_E_INVAL;
        }
        /* fall through */
    case OTAUP_REC_DATA:
    case OTAUP_REC_BLOB:
        if ((rec->type == OTAUP_REC_DATA && (rec->flags & (uint8_t)~OTAUP_DATA_RESET) != 0) ||
            (rec->data == NULL && rec->data_len != 0)) {
            return OTAUP_E_INVAL;
        }
        *data = rec->data;
        *data_len = rec->data_len;
        break;
    default:
        break;
    }
    for (f = k->fields; f != 0; f >>= 4) {
        unsigned code = f & 15u;
        const uint8_t *src = (const uint8_t *)rec + field_off[code];
        if (code <= F_LAST_VARINT) {
            uint32_t v;
            memcpy(&v, src, sizeof v);
            if (code == F_SRC) {
                /* relative to the address (COPY, DIFF), to 0 (PIECE) */
                v = zz_encode(v, (k->flags & K_SRC) != 0 ? rec->addr : 0u);
            }
            n += put_v(h + n, v);
        } else {
            h[n++] = *src;
        }
    }
    memcpy(h + n, rec->hash, hl);
    n += hl;
    if (*data_len > REC_BODY_LIMIT - n) {
        return OTAUP_E_RANGE;
    }
    return (int)n;
}

OTAUP_RAMFUNC int otaup_record_encode_body(const otaup_record *rec, uint8_t *out, size_t cap)
{
    uint8_t h[OTAUP_RECORD_HEAD_MAX];
    const uint8_t *data;
    uint32_t data_len;
    int n;
    if (rec == NULL) {
        return OTAUP_E_INVAL;
    }
    n = rec_fixed(rec, h, &data, &data_len);
    if (n < 0) {
        return n;
    }
    if (out == NULL || cap < (size_t)n + data_len) {
        return OTAUP_E_BUFFER;
    }
    memcpy(out, h, (size_t)n);
    if (data_len != 0) {
        memcpy(out + n, data, data_len);
    }
    return n + (int)data_len;
}

OTAUP_RAMFUNC int otaup_record_encode(const otaup_record *rec, uint8_t *out, size_t cap)
{
    uint8_t h[OTAUP_RECORD_HEAD_MAX];
    const uint8_t *data;
    uint32_t data_len, body_len;
    size_t total;
    unsigned lv;
    int n;
    if (rec == NULL) {
        return OTAUP_E_INVAL;
    }
    n = rec_fixed(rec, h, &data, &data_len);
    if (n < 0) {
        return n;
    }
    body_len = (uint32_t)n + data_len;
    lv = varint_size(body_len);
    total = 1u + lv + (size_t)body_len;
    if (out == NULL || cap < total) {
        return OTAUP_E_BUFFER;
    }
    out[0] = rec->type;
    (void)put_v(out + 1, body_len);
    memcpy(out + 1 + lv, h, (size_t)n);
    if (data_len != 0) {
        memcpy(out + 1 + lv + n, data, data_len);
    }
    return (int)total;
}

/* ---- sparse differences -------------------------------------------------- */

enum { SP_TOKEN = 0, SP_ZEXT, SP_NEXT, SP_BYTES };

OTAUP_RAMFUNC void otaup_sparse_init(otaup_sparse *s, uint32_t len)
{
    if (s != NULL) {
        memset(s, 0, sizeof *s);
        s->len = len;
    }
}

OTAUP_RAMFUNC int otaup_sparse_done(const otaup_sparse *s)
{
    return s != NULL && s->state == SP_TOKEN && s->pos == s->len;
}

/* The group's counts are known: check them, skip the zeros. */
static OTAUP_RAMFUNC int sp_group(otaup_sparse *s)
{
    uint32_t left = s->len - s->pos;
    if ((s->z == 0 && s->n == 0) || s->z > left || s->n > left - s->z) {
        return OTAUP_E_MSG_FIELD;
    }
    s->pos += s->z;
    s->state = s->n > 0 ? SP_BYTES : SP_TOKEN;
    return 0;
}

OTAUP_RAMFUNC int otaup_sparse_feed(otaup_sparse *s, const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0;
    if (s == NULL || (in == NULL && n != 0) || n > 0x7FFFFFFFu) {
        return OTAUP_E_INVAL;
    }
    while (i < n && !otaup_sparse_done(s)) {
        uint8_t b = in[i];
        if (s->state == SP_BYTES) {
            uint32_t k, take = s->n < n - i ? s->n : (uint32_t)(n - i);
            if (out != NULL) {
                for (k = 0; k < take; k++) {
                    out[s->pos + k] = (uint8_t)(out[s->pos + k] + in[i + k]);
                }
            }
            s->pos += take;
            s->n -= take;
            i += take;
            if (s->n == 0) {
                s->state = SP_TOKEN;
            }
            continue;
        }
        i++;
        if (s->state == SP_TOKEN) {
            s->z = b & 0x1Fu;
            s->n = (uint32_t)b >> 5;
            s->acc = 0;
            s->shift = 0;
            s->state = s->z == 31u ? SP_ZEXT : s->n == 7u ? SP_NEXT : SP_BYTES;
        } else {
            /* an extension varint (LEB128, shortest form, at most 32 bits) */
            if ((s->shift == 28u && (b & 0xF0u) != 0) || (s->shift > 0 && b == 0)) {
                return OTAUP_E_MSG_FIELD;
            }
            s->acc |= (uint32_t)(b & 0x7Fu) << s->shift;
            s->shift = (uint8_t)(s->shift + 7u);
            if ((b & 0x80u) != 0) {
                continue;
            }
            /* no count beyond what is left (so no sum wraps) */
            if (s->acc > s->len - s->pos || s->len - s->pos - s->acc < (s->state == SP_ZEXT ? 31u : 7u)) {
                return OTAUP_E_MSG_FIELD;
            }
            if (s->state == SP_ZEXT) {
                s->z = 31u + s->acc;
            } else {
                s->n = 7u + s->acc;
            }
            s->acc = 0;
            s->shift = 0;
            s->state = s->state == SP_ZEXT && s->n == 7u ? SP_NEXT : SP_BYTES;
        }
        if (s->state == SP_BYTES) {
            int rc = sp_group(s);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return (int)i;
}

/* ---- streaming parser ---------------------------------------------------- */

enum {
    RP_IDLE = 0, /* expecting a type byte (head_len == 0) */
    RP_LEN,      /* collecting the body length varint */
    RP_FIELDS,   /* collecting the fixed fields of the body */
    RP_BYTES,    /* delivering trailing bytes */
    RP_ERROR     /* an error was returned; re-initialise */
};

OTAUP_RAMFUNC void otaup_recparser_init(otaup_recparser *p)
{
    if (p != NULL) {
        memset(p, 0, sizeof *p);
        p->state = RP_IDLE;
    }
}

OTAUP_RAMFUNC int otaup_recparser_idle(const otaup_recparser *p)
{
    return p != NULL && p->state == RP_IDLE && p->head_len == 0 && !p->pending_done;
}

static OTAUP_RAMFUNC int rp_fail(otaup_recparser *p, int err)
{
    p->state = RP_ERROR;
    return err;
}

/* The head is complete: switch to delivering bytes (or to DONE). */
static OTAUP_RAMFUNC int rp_head(otaup_recparser *p)
{
    p->body_seen = p->body_len - p->rec.data_len;
    p->data_left = p->rec.data_len;
    p->rec.data = NULL;
    if (p->data_left == 0) {
        p->pending_done = 1;
        p->state = RP_IDLE;
    } else {
        p->state = RP_BYTES;
    }
    return OTAUP_RECP_HEAD;
}

OTAUP_RAMFUNC int otaup_recparser_feed(otaup_recparser *p, const uint8_t *in, size_t len,
                                       size_t *consumed)
{
    size_t used = 0;
    int rc;
    if (consumed != NULL) {
        *consumed = 0;
    }
    if (p == NULL || consumed == NULL || (in == NULL && len != 0)) {
        return OTAUP_E_INVAL;
    }
    if (p->state == RP_ERROR) {
        return OTAUP_E_STATE;
    }
    if (p->pending_done) {
        /* DONE of the previous record; restore its total byte count */
        p->pending_done = 0;
        p->state = RP_IDLE;
        p->rec.data = NULL;
        p->rec.data_len = p->body_len - (p->head_len - 1u - varint_size(p->body_len));
        p->head_len = 0;
        return OTAUP_RECP_DONE;
    }
    if (p->state == RP_BYTES) {
        uint32_t take;
        if (len == 0) {
            return OTAUP_RECP_NEED_INPUT;
        }
        take = p->data_left;
        if ((size_t)take > len) {
            take = (uint32_t)len;
        }
        p->rec.data = in;
        p->rec.data_len = take;
        p->data_left -= take;
        p->body_seen += take;
        *consumed = take;
        if (p->data_left == 0) {
            p->pending_done = 1;
        }
        return OTAUP_RECP_BYTES;
    }
    rc = 0;
    while (rc == 0 && used < len) {
        uint8_t b = in[used++];
        if (p->head_len >= OTAUP_RECORD_HEAD_MAX) {
            used = 0; /* cannot happen: nothing is reported consumed */
            rc = OTAUP_E_INTERNAL;
            break;
        }
        p->head[p->head_len++] = b;
        if (p->state == RP_IDLE) {
            if (!type_known(b)) {
                rc = OTAUP_E_MSG_TYPE;
            }
            p->state = RP_LEN;
            continue;
        }
        if (p->state == RP_LEN) {
            rc = otaup_varint_get(p->head + 1, p->head_len - 1u, &p->body_len);
            if (rc == OTAUP_E_DELTA_TRUNCATED) {
                rc = 0;
                continue;
            }
            if (rc < 0) {
                break;
            }
            p->body_seen = 0;
            p->state = RP_FIELDS; /* rec_fields() checks the length against the type */
        } else {
            p->body_seen++;
        }
        /* RP_FIELDS: try to complete the fixed fields with what we have */
        {
            uint32_t fixed = 0;
            uint32_t off = 1u + varint_size(p->body_len); /* body offset in head[] */
            rc = rec_fields(p->head[0], p->head + off, p->body_seen, p->body_len, &p->rec, &fixed);
        }
    }
    *consumed = used;
    if (rc < 0) {
        return rp_fail(p, rc);
    }
    return rc > 0 ? rp_head(p) : OTAUP_RECP_NEED_INPUT;
}
