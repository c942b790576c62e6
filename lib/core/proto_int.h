/*
 * otaup — private helpers of the protocol codec: explicit little-endian
 * byte order, a bounds-checked reader and writer. C99, no heap.
 */
#ifndef OTAUP_CORE_PROTO_INT_H
#define OTAUP_CORE_PROTO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "otaup/config.h"
#include "otaup/error.h"
#include "otaup/proto.h"

static inline void otaup_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void otaup_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void otaup_put64(uint8_t *p, uint64_t v)
{
    otaup_put32(p, (uint32_t)v);
    otaup_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t otaup_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t otaup_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t otaup_get64(const uint8_t *p)
{
    return (uint64_t)otaup_get32(p) | ((uint64_t)otaup_get32(p + 4) << 32);
}

/*
 * Writer: appends while there is room; `err` remembers the first failure
 * (OTAUP_E_BUFFER) so that encoders check once at the end.
 */
typedef struct otaup_wr {
    uint8_t *p;
    size_t cap;
    size_t n;
    int err;
} otaup_wr;

/*
 * Reader over a payload: every get checks the remaining length first and
 * records OTAUP_E_MSG_LENGTH when the payload is too short.
 */
typedef struct otaup_rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
    int err;
} otaup_rd;

/*
 * The reader's and writer's steps. A host build inlines them in each
 * object; a terminal build (OTAUP_CONFIG_TERMINAL) keeps one out-of-line
 * copy, defined in proto_msg.c (OTAUP_PROTO_INT_IMPL), for small code.
 */
#if !OTAUP_CONFIG_TERMINAL
#define OTAUP_PI static inline
#define OTAUP_PI_BODIES 1
#else
#define OTAUP_PI OTAUP_RAMFUNC
#ifdef OTAUP_PROTO_INT_IMPL
#define OTAUP_PI_BODIES 1
#else
#define OTAUP_PI_BODIES 0
#endif
void otaup_wr_init(otaup_wr *w, uint8_t *p, size_t cap);
uint8_t *otaup_wr_room(otaup_wr *w, size_t k);
void otaup_wr_u8(otaup_wr *w, uint8_t v);
void otaup_wr_u16(otaup_wr *w, uint16_t v);
void otaup_wr_u32(otaup_wr *w, uint32_t v);
void otaup_wr_u64(otaup_wr *w, uint64_t v);
void otaup_wr_bytes(otaup_wr *w, const uint8_t *b, size_t k);
size_t otaup_tlv_begin(otaup_wr *w, uint8_t tag);
void otaup_tlv_end(otaup_wr *w, size_t start);
void otaup_rd_init(otaup_rd *r, const uint8_t *p, size_t len);
const uint8_t *otaup_rd_take(otaup_rd *r, size_t k);
uint8_t otaup_rd_u8(otaup_rd *r);
uint16_t otaup_rd_u16(otaup_rd *r);
uint32_t otaup_rd_u32(otaup_rd *r);
uint64_t otaup_rd_u64(otaup_rd *r);
size_t otaup_rd_left(const otaup_rd *r);
int otaup_rd_end(const otaup_rd *r);
#endif

#if OTAUP_PI_BODIES

OTAUP_PI void otaup_wr_init(otaup_wr *w, uint8_t *p, size_t cap)
{
    w->p = p;
    w->cap = p != NULL ? cap : 0;
    w->n = 0;
    w->err = 0;
}

OTAUP_PI uint8_t *otaup_wr_room(otaup_wr *w, size_t k)
{
    uint8_t *q;
    if (w->err != 0 || k > w->cap - w->n) {
        w->err = OTAUP_E_BUFFER;
        return NULL;
    }
    q = w->p + w->n;
    w->n += k;
    return q;
}

OTAUP_PI void otaup_wr_u8(otaup_wr *w, uint8_t v)
{
    uint8_t *q = otaup_wr_room(w, 1);
    if (q != NULL) {
        q[0] = v;
    }
}

OTAUP_PI void otaup_wr_u16(otaup_wr *w, uint16_t v)
{
    uint8_t *q = otaup_wr_room(w, 2);
    if (q != NULL) {
        otaup_put16(q, v);
    }
}

OTAUP_PI void otaup_wr_u32(otaup_wr *w, uint32_t v)
{
    uint8_t *q = otaup_wr_room(w, 4);
    if (q != NULL) {
        otaup_put32(q, v);
    }
}

OTAUP_PI void otaup_wr_u64(otaup_wr *w, uint64_t v)
{
    uint8_t *q = otaup_wr_room(w, 8);
    if (q != NULL) {
        otaup_put64(q, v);
    }
}

OTAUP_PI void otaup_wr_bytes(otaup_wr *w, const uint8_t *b, size_t k)
{
    uint8_t *q = otaup_wr_room(w, k);
    if (q != NULL && k != 0) {
        memcpy(q, b, k);
    }
}

/* TLV (INFO): tag, one length byte written by otaup_tlv_end (values are
 * shorter than 256 bytes). otaup_tlv_begin returns where the value starts. */
OTAUP_PI size_t otaup_tlv_begin(otaup_wr *w, uint8_t tag)
{
    otaup_wr_u8(w, tag);
    otaup_wr_u8(w, 0);
    return w->n;
}

OTAUP_PI void otaup_tlv_end(otaup_wr *w, size_t start)
{
    if (w->err == 0) {
        w->p[start - 1u] = (uint8_t)(w->n - start);
    }
}


OTAUP_PI void otaup_rd_init(otaup_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = p != NULL ? len : 0;
    r->pos = 0;
    r->err = 0;
}

OTAUP_PI const uint8_t *otaup_rd_take(otaup_rd *r, size_t k)
{
    const uint8_t *q;
    if (r->err != 0 || k > r->len - r->pos) {
        if (r->err == 0) {
            r->err = OTAUP_E_MSG_LENGTH;
        }
        return NULL;
    }
    q = r->p + r->pos;
    r->pos += k;
    return q;
}

OTAUP_PI uint8_t otaup_rd_u8(otaup_rd *r)
{
    const uint8_t *q = otaup_rd_take(r, 1);
    return q != NULL ? q[0] : 0u;
}

OTAUP_PI uint16_t otaup_rd_u16(otaup_rd *r)
{
    const uint8_t *q = otaup_rd_take(r, 2);
    return q != NULL ? otaup_get16(q) : 0u;
}

OTAUP_PI uint32_t otaup_rd_u32(otaup_rd *r)
{
    const uint8_t *q = otaup_rd_take(r, 4);
    return q != NULL ? otaup_get32(q) : 0u;
}

OTAUP_PI uint64_t otaup_rd_u64(otaup_rd *r)
{
    const uint8_t *q = otaup_rd_take(r, 8);
    return q != NULL ? otaup_get64(q) : 0u;
}

OTAUP_PI size_t otaup_rd_left(const otaup_rd *r)
{
    return r->len - r->pos;
}

/* First error of the reader, or MSG_LENGTH if bytes are left over. */
OTAUP_PI int otaup_rd_end(const otaup_rd *r)
{
    if (r->err != 0) {
        return r->err;
    }
    return r->pos == r->len ? 0 : OTAUP_E_MSG_LENGTH;
}

#endif /* OTAUP_PI_BODIES */

#endif /* OTAUP_CORE_PROTO_INT_H */
