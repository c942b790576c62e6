/*
 * otaup — command protocol: message payload encoders and decoders.
 * C99, no heap, no OS. Layouts: docs/protocol.md, "Messages".
 *
 * Conventions: decoders check the payload length before any field
 * (OTAUP_E_MSG_LENGTH), reserved bytes and bits (OTAUP_E_FRAME_FLAGS), then
 * values (OTAUP_E_MSG_FIELD); pointers in the result point into the input.
 * Encoders refuse (OTAUP_E_INVAL) what the decoders would refuse.
 */
#define OTAUP_PROTO_INT_IMPL /* a terminal build's one copy of the reader and writer */
#include <string.h>

#include "core/proto_int.h"
#include "otaup/error.h"
#include "otaup/proto.h"

/* ---- shared field rules --------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_utf8_valid(const uint8_t *in, size_t len)
{
    size_t i = 0;
    if (in == NULL) {
        return len == 0;
    }
    while (i < len) {
        uint8_t c = in[i++];
        unsigned n;
        uint32_t cp, min;
        if (c < 0x80u) {
            continue;
        }
        /* leads C2..DF, E0..EF, F0..F4: 1, 2, 3 continuation bytes; anything
         * else (a continuation byte, C0, C1, F5..FF) cannot start a character */
        if (c < 0xC2u || c > 0xF4u) {
            return 0;
        }
        n = c >= 0xF0u ? 3u : c >= 0xE0u ? 2u : 1u;
        if (n > len - i) {
            return 0;
        }
        cp = c & (0x3Fu >> n);
        min = 1u << (5u * n + 1u); /* 0x800, 0x10000 (a 2-byte form is never overlong from C2) */
        while (n-- > 0) {
            uint8_t t = in[i++];
            if ((t & 0xC0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (t & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
            return 0;
        }
    }
    return 1;
}

static OTAUP_RAMFUNC unsigned hash_len_of(uint8_t alg)
{
    switch (alg) {
    case OTAUP_HASH_XXH3_64: return 8u;
    case OTAUP_HASH_XXH3_128: return 16u;
    case OTAUP_HASH_SHA256: return 32u;
    default: return 0u;
    }
}

static OTAUP_RAMFUNC int range_ok(uint32_t addr, uint32_t len)
{
    return addr == 0u || len <= (0xFFFFFFFFu - addr) + 1u;
}

/* A string field: length within [min, max], valid UTF-8. */
static OTAUP_RAMFUNC int str_ok(const otaup_bytes *s, uint32_t min, uint32_t max)
{
    if (s->len < min || s->len > max || (s->data == NULL && s->len != 0)) {
        return 0;
    }
    return otaup_utf8_valid(s->data, s->len);
}

static OTAUP_RAMFUNC int bytes_ok(const otaup_bytes *b)
{
    return b->data != NULL || b->len == 0;
}

/* hash: alg u8 then the bytes; alg 0 (none) only when allow_none. */
static OTAUP_RAMFUNC int hash_ok(const otaup_proto_hash *h, int allow_none)
{
    if (h->alg == 0) {
        return allow_none && h->len == 0;
    }
    return hash_len_of(h->alg) != 0 && h->len == hash_len_of(h->alg);
}

static OTAUP_RAMFUNC void wr_hash(otaup_wr *w, const otaup_proto_hash *h)
{
    otaup_wr_u8(w, h->alg);
    otaup_wr_bytes(w, h->bytes, h->len);
}

/* Read alg + hash; 0, or the error. */
static OTAUP_RAMFUNC int rd_hash(otaup_rd *r, otaup_proto_hash *h, int allow_none)
{
    const uint8_t *q;
    unsigned hl;
    memset(h, 0, sizeof *h);
    h->alg = otaup_rd_u8(r);
    if (r->err != 0) {
        return r->err;
    }
    if (h->alg == 0) {
        return allow_none ? 0 : OTAUP_E_MSG_FIELD;
    }
    hl = hash_len_of(h->alg);
    if (hl == 0) {
        return OTAUP_E_MSG_FIELD;
    }
    q = otaup_rd_take(r, hl);
    if (q == NULL) {
        return r->err;
    }
    memcpy(h->bytes, q, hl);
    h->len = (uint8_t)hl;
    return 0;
}

static OTAUP_RAMFUNC void rd_bytes(otaup_rd *r, otaup_bytes *b, size_t k)
{
    b->data = otaup_rd_take(r, k);
    b->len = b->data != NULL ? (uint32_t)k : 0u;
}

/* The rest of the payload. */
static OTAUP_RAMFUNC void rd_rest(otaup_rd *r, otaup_bytes *b)
{
    rd_bytes(r, b, otaup_rd_left(r));
}

static OTAUP_RAMFUNC int wr_done(const otaup_wr *w)
{
    return w->err != 0 ? w->err : (int)w->n;
}

#define CHECK_LEN(cond)                  \
    do {                                 \
        if (!(cond)) {                   \
            return OTAUP_E_MSG_LENGTH;   \
        }                                \
    } while (0)

#define ARGS_OK(m, in, len) ((m) != NULL && ((in) != NULL || (len) == 0))

/* The start of most decoders: the arguments, *m zeroed, then the payload
 * length in [min, max]. */
static OTAUP_RAMFUNC int dec_begin(const uint8_t *in, size_t len, void *m, size_t size, size_t min, size_t max)
{
    if (!ARGS_OK(m, in, len)) {
        return OTAUP_E_INVAL;
    }
    memset(m, 0, size);
    return len >= min && len <= max ? 0 : OTAUP_E_MSG_LENGTH;
}

#define LEN_OPEN ((size_t)-1)
#define DEC_BEGIN(min, max)                                          \
    do {                                                             \
        int rc_ = dec_begin(in, len, m, sizeof *m, (min), (max));    \
        if (rc_ != 0) {                                              \
            return rc_;                                              \
        }                                                            \
    } while (0)

/* ---- HELLO ------------------------------------------------------------------------ */

static OTAUP_RAMFUNC int hello_valid(const otaup_msg_hello *m)
{
    return (m->role == OTAUP_ROLE_SERVER || m->role == OTAUP_ROLE_TERMINAL) && m->proto_min >= 1u &&
           m->proto_min <= m->proto_max && m->max_frame >= OTAUP_FRAME_MIN &&
           m->max_frame <= OTAUP_FRAME_MAX && m->max_msg >= OTAUP_FRAME_PAYLOAD(OTAUP_FRAME_MIN) &&
           m->window >= 1u;
}

/* ---- INFO ---------------------------------------------------------------------------- */

#define INFO_REQUIRED \
    ((1u << OTAUP_INFO_TERMINAL_ID) | (1u << OTAUP_INFO_MODEL) | (1u << OTAUP_INFO_SW_VERSION) | \
     (1u << OTAUP_INFO_BUILD_TIME))
#define INFO_OPTIONAL \
    (OTAUP_INFO_HAVE_IMAGE_HASH | OTAUP_INFO_HAVE_IMAGE_SIZE | OTAUP_INFO_HAVE_GEOMETRY | \
     OTAUP_INFO_HAVE_LAYOUT | OTAUP_INFO_HAVE_SCRATCH | OTAUP_INFO_HAVE_CAPS |             \
     OTAUP_INFO_HAVE_MAX_FRAME | OTAUP_INFO_HAVE_MEMORY | OTAUP_INFO_HAVE_RESUME |         \
     OTAUP_INFO_HAVE_SEC_COUNTER | OTAUP_INFO_HAVE_LIMITS | OTAUP_INFO_HAVE_IMAGE_SHA256)

static OTAUP_RAMFUNC int region_valid(const otaup_proto_region *g)
{
    return (g->flags & (uint8_t)~OTAUP_REGION_PERSONAL) == 0 && g->len != 0 &&
           range_ok(g->addr, g->len) && hash_ok(&g->hash, 1);
}

static OTAUP_RAMFUNC int layout_valid(const otaup_msg_info *m)
{
    if (m->layout == OTAUP_LAYOUT_INPLACE) {
        return m->active_slot == 0 && range_ok(m->slots[0].addr, m->slots[0].len) &&
               m->slots[1].addr == 0 && m->slots[1].len == 0;
    }
    return m->layout == OTAUP_LAYOUT_AB && m->active_slot <= 1u &&
           range_ok(m->slots[0].addr, m->slots[0].len) &&
           range_ok(m->slots[1].addr, m->slots[1].len);
}

static OTAUP_RAMFUNC int resume_valid(const otaup_proto_resume *r)
{
    return r->phase <= OTAUP_PHASE_MAX && (r->flags & (uint8_t)~OTAUP_RESUME_IN_SCRATCH) == 0;
}

static OTAUP_RAMFUNC int limits_valid(const otaup_msg_info *m)
{
    return (m->window_bits == 0u || (m->window_bits >= 9u && m->window_bits <= 15u)) && m->max_ops != 0u;
}

static OTAUP_RAMFUNC int info_valid(const otaup_msg_info *m)
{
    unsigned i, j;
    if ((m->have & ~(uint32_t)INFO_OPTIONAL) != 0) {
        return 0;
    }
    if (!str_ok(&m->terminal_id, 1, OTAUP_PROTO_STR_MAX) || !str_ok(&m->model, 1, OTAUP_PROTO_STR_MAX) ||
        !str_ok(&m->sw_version, 1, OTAUP_PROTO_VERSION_STR_MAX)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_IMAGE_HASH) && !hash_ok(&m->image_hash, 0)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_GEOMETRY) && otaup_geometry_check(&m->geometry) != 0) {
        return 0;
    }
    if (m->nwindows > OTAUP_INFO_MAX_WINDOWS || m->nregions > OTAUP_INFO_MAX_REGIONS) {
        return 0;
    }
    for (i = 0; i < m->nwindows; i++) {
        if (m->windows[i].len == 0 || !range_ok(m->windows[i].addr, m->windows[i].len)) {
            return 0;
        }
    }
    for (i = 0; i < m->nregions; i++) {
        if (!region_valid(&m->regions[i])) {
            return 0;
        }
        for (j = 0; j < i; j++) {
            if (m->regions[j].id == m->regions[i].id) {
                return 0;
            }
        }
    }
    if ((m->have & OTAUP_INFO_HAVE_LAYOUT) && !layout_valid(m)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_SCRATCH) && !range_ok(m->scratch.addr, m->scratch.len)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_MAX_FRAME) &&
        (m->max_frame < OTAUP_FRAME_MIN || m->max_frame > OTAUP_FRAME_MAX)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_RESUME) && !resume_valid(&m->resume)) {
        return 0;
    }
    if ((m->have & OTAUP_INFO_HAVE_LIMITS) && !limits_valid(m)) {
        return 0;
    }
    return 1;
}

#define tlv_begin otaup_tlv_begin
#define tlv_end otaup_tlv_end

static OTAUP_RAMFUNC void tlv_bytes(otaup_wr *w, uint8_t tag, const otaup_bytes *b)
{
    size_t s = tlv_begin(w, tag);
    otaup_wr_bytes(w, b->data, b->len);
    tlv_end(w, s);
}

static OTAUP_RAMFUNC void tlv_u32(otaup_wr *w, uint8_t tag, uint32_t v)
{
    size_t s = tlv_begin(w, tag);
    otaup_wr_u32(w, v);
    tlv_end(w, s);
}

OTAUP_RAMFUNC int otaup_info_encode(const otaup_msg_info *m, uint8_t *out, size_t cap)
{
    otaup_wr w;
    size_t s;
    unsigned i;
    if (m == NULL || !info_valid(m)) {
        return OTAUP_E_INVAL;
    }
    otaup_wr_init(&w, out, cap);
    tlv_bytes(&w, OTAUP_INFO_TERMINAL_ID, &m->terminal_id);
    tlv_bytes(&w, OTAUP_INFO_MODEL, &m->model);
    tlv_bytes(&w, OTAUP_INFO_SW_VERSION, &m->sw_version);
    s = tlv_begin(&w, OTAUP_INFO_BUILD_TIME);
    otaup_wr_u64(&w, m->build_time);
    tlv_end(&w, s);
    if (m->have & OTAUP_INFO_HAVE_IMAGE_HASH) {
        s = tlv_begin(&w, OTAUP_INFO_IMAGE_HASH);
        wr_hash(&w, &m->image_hash);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_IMAGE_SIZE) {
        tlv_u32(&w, OTAUP_INFO_IMAGE_SIZE, m->image_size);
    }
    if (m->have & OTAUP_INFO_HAVE_GEOMETRY) {
        s = tlv_begin(&w, OTAUP_INFO_GEOMETRY);
        otaup_wr_u32(&w, m->geometry.base);
        otaup_wr_u32(&w, m->geometry.write_size);
        otaup_wr_u8(&w, m->geometry.erased);
        otaup_wr_u8(&w, m->geometry.nruns);
        for (i = 0; i < m->geometry.nruns; i++) {
            otaup_wr_u32(&w, m->geometry.runs[i].count);
            otaup_wr_u32(&w, m->geometry.runs[i].size);
        }
        tlv_end(&w, s);
    }
    for (i = 0; i < m->nwindows; i++) {
        s = tlv_begin(&w, OTAUP_INFO_WINDOW);
        otaup_wr_u32(&w, m->windows[i].addr);
        otaup_wr_u32(&w, m->windows[i].len);
        tlv_end(&w, s);
    }
    for (i = 0; i < m->nregions; i++) {
        const otaup_proto_region *g = &m->regions[i];
        s = tlv_begin(&w, OTAUP_INFO_REGION);
        otaup_wr_u8(&w, g->id);
        otaup_wr_u8(&w, g->flags);
        otaup_wr_u32(&w, g->addr);
        otaup_wr_u32(&w, g->len);
        wr_hash(&w, &g->hash);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_LAYOUT) {
        s = tlv_begin(&w, OTAUP_INFO_LAYOUT);
        otaup_wr_u8(&w, m->layout);
        otaup_wr_u8(&w, m->active_slot);
        for (i = 0; i < 2; i++) {
            otaup_wr_u32(&w, m->slots[i].addr);
            otaup_wr_u32(&w, m->slots[i].len);
        }
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_SCRATCH) {
        s = tlv_begin(&w, OTAUP_INFO_SCRATCH);
        otaup_wr_u32(&w, m->scratch.addr);
        otaup_wr_u32(&w, m->scratch.len);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_CAPS) {
        tlv_u32(&w, OTAUP_INFO_CAPS, m->caps);
    }
    if (m->have & OTAUP_INFO_HAVE_MAX_FRAME) {
        tlv_u32(&w, OTAUP_INFO_MAX_FRAME, m->max_frame);
    }
    if (m->have & OTAUP_INFO_HAVE_MEMORY) {
        s = tlv_begin(&w, OTAUP_INFO_MEMORY);
        otaup_wr_u32(&w, m->staging_size);
        otaup_wr_u32(&w, m->ram_budget);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_RESUME) {
        s = tlv_begin(&w, OTAUP_INFO_RESUME);
        otaup_wr_u64(&w, m->resume.session);
        otaup_wr_u32(&w, m->resume.next_step);
        otaup_wr_u8(&w, m->resume.phase);
        otaup_wr_u8(&w, m->resume.flags);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_SEC_COUNTER) {
        tlv_u32(&w, OTAUP_INFO_SEC_COUNTER, m->sec_counter);
    }
    if (m->have & OTAUP_INFO_HAVE_LIMITS) {
        s = tlv_begin(&w, OTAUP_INFO_LIMITS);
        otaup_wr_u8(&w, m->window_bits);
        otaup_wr_u8(&w, 0);
        otaup_wr_u16(&w, m->max_ops);
        tlv_end(&w, s);
    }
    if (m->have & OTAUP_INFO_HAVE_IMAGE_SHA256) {
        s = tlv_begin(&w, OTAUP_INFO_IMAGE_SHA256);
        otaup_wr_bytes(&w, m->image_sha256, sizeof m->image_sha256);
        tlv_end(&w, s);
    }
    return wr_done(&w);
}

/* Decode one known TLV value v[0..n) into *m. 0 or an error. */
static OTAUP_RAMFUNC int info_item(uint8_t tag, const uint8_t *v, size_t n, otaup_msg_info *m)
{
    otaup_rd r;
    unsigned i;
    otaup_rd_init(&r, v, n);
    switch (tag) {
    case OTAUP_INFO_TERMINAL_ID:
    case OTAUP_INFO_MODEL:
    case OTAUP_INFO_SW_VERSION: {
        otaup_bytes *b = tag == OTAUP_INFO_TERMINAL_ID ? &m->terminal_id
                         : tag == OTAUP_INFO_MODEL     ? &m->model
                                                       : &m->sw_version;
        uint32_t max = tag == OTAUP_INFO_SW_VERSION ? OTAUP_PROTO_VERSION_STR_MAX : OTAUP_PROTO_STR_MAX;
        b->data = v;
        b->len = (uint32_t)n;
        return str_ok(b, 1, max) ? 0 : OTAUP_E_MSG_FIELD;
    }
    case OTAUP_INFO_BUILD_TIME:
        m->build_time = otaup_rd_u64(&r);
        break;
    case OTAUP_INFO_IMAGE_HASH: {
        int rc = rd_hash(&r, &m->image_hash, 0);
        if (rc != 0) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    }
    case OTAUP_INFO_IMAGE_SIZE:
        m->image_size = otaup_rd_u32(&r);
        break;
    case OTAUP_INFO_GEOMETRY:
        memset(&m->geometry, 0, sizeof m->geometry);
        m->geometry.base = otaup_rd_u32(&r);
        m->geometry.write_size = otaup_rd_u32(&r);
        m->geometry.erased = otaup_rd_u8(&r);
        m->geometry.nruns = otaup_rd_u8(&r);
        if (r.err != 0 || m->geometry.nruns == 0 || m->geometry.nruns > OTAUP_MAX_SECTOR_RUNS) {
            return OTAUP_E_MSG_FIELD;
        }
        for (i = 0; i < m->geometry.nruns; i++) {
            m->geometry.runs[i].count = otaup_rd_u32(&r);
            m->geometry.runs[i].size = otaup_rd_u32(&r);
        }
        if (otaup_rd_end(&r) != 0 || otaup_geometry_check(&m->geometry) != 0) {
            return OTAUP_E_MSG_FIELD;
        }
        return 0;
    case OTAUP_INFO_WINDOW: {
        otaup_proto_range *w;
        if (m->nwindows >= OTAUP_INFO_MAX_WINDOWS) {
            return OTAUP_E_MSG_FIELD;
        }
        w = &m->windows[m->nwindows++];
        w->addr = otaup_rd_u32(&r);
        w->len = otaup_rd_u32(&r);
        if (otaup_rd_end(&r) != 0 || w->len == 0 || !range_ok(w->addr, w->len)) {
            return OTAUP_E_MSG_FIELD;
        }
        return 0;
    }
    case OTAUP_INFO_REGION: {
        otaup_proto_region *g;
        unsigned j;
        if (m->nregions >= OTAUP_INFO_MAX_REGIONS) {
            return OTAUP_E_MSG_FIELD;
        }
        g = &m->regions[m->nregions++];
        g->id = otaup_rd_u8(&r);
        g->flags = otaup_rd_u8(&r);
        g->addr = otaup_rd_u32(&r);
        g->len = otaup_rd_u32(&r);
        if (rd_hash(&r, &g->hash, 1) != 0 || otaup_rd_end(&r) != 0 || !region_valid(g)) {
            return OTAUP_E_MSG_FIELD;
        }
        for (j = 0; j + 1u < m->nregions; j++) {
            if (m->regions[j].id == g->id) {
                return OTAUP_E_MSG_FIELD;
            }
        }
        return 0;
    }
    case OTAUP_INFO_LAYOUT:
        m->layout = otaup_rd_u8(&r);
        m->active_slot = otaup_rd_u8(&r);
        for (i = 0; i < 2; i++) {
            m->slots[i].addr = otaup_rd_u32(&r);
            m->slots[i].len = otaup_rd_u32(&r);
        }
        if (otaup_rd_end(&r) != 0 || !layout_valid(m)) {
            return OTAUP_E_MSG_FIELD;
        }
        return 0;
    case OTAUP_INFO_SCRATCH:
        m->scratch.addr = otaup_rd_u32(&r);
        m->scratch.len = otaup_rd_u32(&r);
        if (otaup_rd_end(&r) != 0 || !range_ok(m->scratch.addr, m->scratch.len)) {
            return OTAUP_E_MSG_FIELD;
        }
        return 0;
    case OTAUP_INFO_CAPS:
        m->caps = otaup_rd_u32(&r);
        break;
    case OTAUP_INFO_MAX_FRAME:
        m->max_frame = otaup_rd_u32(&r);
        if (r.err == 0 && (m->max_frame < OTAUP_FRAME_MIN || m->max_frame > OTAUP_FRAME_MAX)) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    case OTAUP_INFO_MEMORY:
        m->staging_size = otaup_rd_u32(&r);
        m->ram_budget = otaup_rd_u32(&r);
        break;
    case OTAUP_INFO_RESUME:
        m->resume.session = otaup_rd_u64(&r);
        m->resume.next_step = otaup_rd_u32(&r);
        m->resume.phase = otaup_rd_u8(&r);
        m->resume.flags = otaup_rd_u8(&r);
        if (r.err == 0 && !resume_valid(&m->resume)) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    case OTAUP_INFO_SEC_COUNTER:
        m->sec_counter = otaup_rd_u32(&r);
        break;
    case OTAUP_INFO_LIMITS: {
        uint8_t rsv;
        m->window_bits = otaup_rd_u8(&r);
        rsv = otaup_rd_u8(&r);
        m->max_ops = otaup_rd_u16(&r);
        if (otaup_rd_end(&r) != 0 || !limits_valid(m)) {
            return OTAUP_E_MSG_FIELD;
        }
        return rsv != 0 ? OTAUP_E_FRAME_FLAGS : 0;
    }
    case OTAUP_INFO_IMAGE_SHA256:
        if (n != sizeof m->image_sha256) {
            return OTAUP_E_MSG_FIELD;
        }
        memcpy(m->image_sha256, v, n);
        return 0;
    default:
        return 0; /* not reached: unknown tags are skipped by the caller */
    }
    /* a fixed-size item with the wrong length */
    return otaup_rd_end(&r) != 0 ? OTAUP_E_MSG_FIELD : 0;
}

OTAUP_RAMFUNC int otaup_info_decode(const uint8_t *in, size_t len, otaup_msg_info *m)
{
    size_t pos = 0;
    uint32_t seen = 0;
    if (!ARGS_OK(m, in, len)) {
        return OTAUP_E_INVAL;
    }
    memset(m, 0, sizeof *m);
    while (pos < len) {
        uint8_t tag, n;
        int rc;
        if (len - pos < 2u) {
            return OTAUP_E_MSG_LENGTH;
        }
        tag = in[pos];
        n = in[pos + 1u];
        if ((size_t)n > len - pos - 2u) {
            return OTAUP_E_MSG_LENGTH;
        }
        if (tag == 0) {
            return OTAUP_E_MSG_FIELD;
        }
        if (tag <= OTAUP_INFO_IMAGE_SHA256) {
            if (tag != OTAUP_INFO_WINDOW && tag != OTAUP_INFO_REGION) {
                if (seen & (1u << tag)) {
                    return OTAUP_E_MSG_FIELD; /* a single item given twice */
                }
                seen |= 1u << tag;
            }
            rc = info_item(tag, in + pos + 2u, n, m);
            if (rc != 0) {
                return rc;
            }
        }
        pos += 2u + n;
    }
    if ((seen & INFO_REQUIRED) != INFO_REQUIRED) {
        return OTAUP_E_MSG_FIELD;
    }
    m->have = seen & INFO_OPTIONAL;
    return 0;
}

/* ---- NOTIFY, CONSENT ---------------------------------------------------------------- */

static OTAUP_RAMFUNC int notify_valid(const otaup_msg_notify *m)
{
    return m->kind <= OTAUP_NOTIFY_OFFER && str_ok(&m->version, 0, OTAUP_PROTO_VERSION_STR_MAX) &&
           str_ok(&m->text, 0, 0xFFFFFFFFu);
}

OTAUP_RAMFUNC int otaup_notify_encode(const otaup_msg_notify *m, uint8_t *out, size_t cap)
{
    otaup_wr w;
    if (m == NULL || !notify_valid(m)) {
        return OTAUP_E_INVAL;
    }
    otaup_wr_init(&w, out, cap);
    otaup_wr_u8(&w, m->kind);
    otaup_wr_u8(&w, (uint8_t)m->version.len);
    otaup_wr_bytes(&w, m->version.data, m->version.len);
    otaup_wr_u64(&w, m->build_time);
    otaup_wr_u32(&w, m->download_size);
    otaup_wr_bytes(&w, m->text.data, m->text.len);
    return wr_done(&w);
}

OTAUP_RAMFUNC int otaup_notify_decode(const uint8_t *in, size_t len, otaup_msg_notify *m)
{
    otaup_rd r;
    uint8_t vlen;
    DEC_BEGIN(14u, LEN_OPEN);
    otaup_rd_init(&r, in, len);
    m->kind = otaup_rd_u8(&r);
    vlen = otaup_rd_u8(&r);
    rd_bytes(&r, &m->version, vlen);
    m->build_time = otaup_rd_u64(&r);
    m->download_size = otaup_rd_u32(&r);
    if (r.err != 0) {
        return r.err;
    }
    rd_rest(&r, &m->text);
    return notify_valid(m) ? 0 : OTAUP_E_MSG_FIELD;
}

static OTAUP_RAMFUNC int consent_valid(const otaup_msg_consent *m)
{
    return m->decision >= OTAUP_CONSENT_ACCEPT && m->decision <= OTAUP_CONSENT_POSTPONE &&
           (m->postpone_min == 0 || m->decision == OTAUP_CONSENT_POSTPONE) &&
           str_ok(&m->version, 0, OTAUP_PROTO_VERSION_STR_MAX);
}

OTAUP_RAMFUNC int otaup_consent_encode(const otaup_msg_consent *m, uint8_t *out, size_t cap)
{
    otaup_wr w;
    if (m == NULL || !consent_valid(m)) {
        return OTAUP_E_INVAL;
    }
    otaup_wr_init(&w, out, cap);
    otaup_wr_u8(&w, m->decision);
    otaup_wr_u8(&w, 0);
    otaup_wr_u16(&w, m->postpone_min);
    otaup_wr_u8(&w, (uint8_t)m->version.len);
    otaup_wr_bytes(&w, m->version.data, m->version.len);
    return wr_done(&w);
}

OTAUP_RAMFUNC int otaup_consent_decode(const uint8_t *in, size_t len, otaup_msg_consent *m)
{
    DEC_BEGIN(5u, LEN_OPEN);
    CHECK_LEN(len == 5u + in[4]);
    if (in[1] != 0) {
        return OTAUP_E_FRAME_FLAGS;
    }
    m->decision = in[0];
    m->postpone_min = otaup_get16(in + 2);
    m->version.data = len > 5u ? in + 5 : NULL;
    m->version.len = in[4];
    return consent_valid(m) ? 0 : OTAUP_E_MSG_FIELD;
}

/* ---- RESULT --------------------------------------------------------------------------------- */

static OTAUP_RAMFUNC int result_valid(const otaup_msg_result *m)
{
    return m->code <= 0 && hash_ok(&m->hash, 1) &&
           str_ok(&m->version, 0, OTAUP_PROTO_VERSION_STR_MAX);
}

OTAUP_RAMFUNC int otaup_result_encode(const otaup_msg_result *m, uint8_t *out, size_t cap)
{
    otaup_wr w;
    if (m == NULL || !result_valid(m)) {
        return OTAUP_E_INVAL;
    }
    otaup_wr_init(&w, out, cap);
    otaup_wr_u64(&w, m->session);
    otaup_wr_u32(&w, (uint32_t)m->code);
    wr_hash(&w, &m->hash);
    otaup_wr_u8(&w, (uint8_t)m->version.len);
    otaup_wr_bytes(&w, m->version.data, m->version.len);
    return wr_done(&w);
}

OTAUP_RAMFUNC int otaup_result_decode(const uint8_t *in, size_t len, otaup_msg_result *m)
{
    otaup_rd r;
    int rc;
    uint8_t vlen;
    DEC_BEGIN(14u, LEN_OPEN);
    otaup_rd_init(&r, in, len);
    m->session = otaup_rd_u64(&r);
    m->code = (int32_t)otaup_rd_u32(&r);
    rc = rd_hash(&r, &m->hash, 1);
    if (rc != 0) {
        return rc;
    }
    vlen = otaup_rd_u8(&r);
    rd_bytes(&r, &m->version, vlen);
    rc = otaup_rd_end(&r);
    if (rc != 0) {
        return rc;
    }
    return result_valid(m) ? 0 : OTAUP_E_MSG_FIELD;
}

/* ---- fixed-layout messages ------------------------------------------------------------------ */

/*
 * HELLO, START, COMMIT, ABORT, PING, PROGRESS, ACK, NACK, BACKUP_REQ,
 * SIG_REQ and SIG_DATA are a row of fixed-size fields (START and SIG_DATA
 * end in the rest of the payload): one table entry each, read and written
 * by fx_decode() and fx_encode(). A field is a kind byte (its size in the
 * low bits) and the offset of its member in the message's structure.
 * The rules on values are fx_valid()'s, the same both ways: the decoder
 * answers OTAUP_E_MSG_FIELD where the encoder answers OTAUP_E_INVAL.
 */
#define K_U8 0x01u
#define K_U16 0x02u
#define K_U32 0x04u  /* uint32_t or int32_t member */
#define K_U64 0x08u
#define K_ZERO 0x11u  /* a reserved byte: zero (no member) */
#define K_FLAGS 0x21u /* a uint8_t of flags: bits outside the entry's mask are reserved */
#define K_REST 0x40u  /* the rest of the payload (otaup_bytes); data NULL when empty */
#define K_REST_P 0x80u /* the same, data pointing past the fixed part even when empty */
#define K_SIZE(k) ((k) & 0x0Fu)
#define FLD(kind, type, member) (kind), (uint8_t)offsetof(type, member)
#define RSV K_ZERO, 0u

enum { FX_HELLO, FX_START, FX_COMMIT, FX_ABORT, FX_PING, FX_PROGRESS, FX_ACK, FX_NACK, FX_BACKUP_REQ,
       FX_SIG_REQ, FX_SIG_DATA, FX_RDATA };

/* the field lists, one after the other, each ended by a 0 */
static const uint8_t fx_fields[] = {
#define FX_HELLO_AT 0u
    FLD(K_U8, otaup_msg_hello, role), FLD(K_U8, otaup_msg_hello, proto_min),
    FLD(K_U8, otaup_msg_hello, proto_max), RSV, FLD(K_U32, otaup_msg_hello, max_frame),
    FLD(K_U32, otaup_msg_hello, max_msg), FLD(K_U16, otaup_msg_hello, window), RSV, RSV,
    FLD(K_U32, otaup_msg_hello, caps), 0,
#define FX_START_AT (FX_HELLO_AT + 21u)
    FLD(K_U64, otaup_msg_start, session), FLD(K_FLAGS, otaup_msg_start, flags), RSV, RSV, RSV,
    FLD(K_REST, otaup_msg_start, manifest), 0,
#define FX_COMMIT_AT (FX_START_AT + 13u)
    FLD(K_U64, otaup_msg_commit, session), FLD(K_U8, otaup_msg_commit, action), RSV, RSV, RSV, 0,
#define FX_ABORT_AT (FX_COMMIT_AT + 11u)
    FLD(K_U64, otaup_msg_abort, session), FLD(K_U32, otaup_msg_abort, reason), 0,
#define FX_PING_AT (FX_ABORT_AT + 5u)
    FLD(K_U32, otaup_msg_ping, nonce), 0,
#define FX_PROGRESS_AT (FX_PING_AT + 3u)
    FLD(K_U32, otaup_msg_progress, step), FLD(K_U32, otaup_msg_progress, total_steps),
    FLD(K_U32, otaup_msg_progress, bytes_done), FLD(K_U32, otaup_msg_progress, bytes_total),
    FLD(K_U8, otaup_msg_progress, phase), RSV, RSV, RSV, 0,
#define FX_ACK_AT (FX_PROGRESS_AT + 17u)
    FLD(K_U32, otaup_msg_ack, seq), FLD(K_U32, otaup_msg_ack, status), FLD(K_U16, otaup_msg_ack, window),
    RSV, RSV, FLD(K_U32, otaup_msg_ack, echo), 0,
#define FX_NACK_AT (FX_ACK_AT + 13u)
    FLD(K_U32, otaup_msg_nack, seq), FLD(K_U32, otaup_msg_nack, error), FLD(K_U32, otaup_msg_nack, expected), 0,
#define FX_BACKUP_REQ_AT (FX_NACK_AT + 7u)
    FLD(K_U8, otaup_msg_backup_req, region), FLD(K_FLAGS, otaup_msg_backup_req, flags), RSV, RSV,
    FLD(K_U32, otaup_msg_backup_req, offset), FLD(K_U32, otaup_msg_backup_req, max_chunk), 0,
#define FX_SIG_REQ_AT (FX_BACKUP_REQ_AT + 13u)
    FLD(K_U32, otaup_msg_sig_req, block_size), FLD(K_U32, otaup_msg_sig_req, offset),
    FLD(K_U32, otaup_msg_sig_req, max_chunk), 0,
#define FX_SIG_DATA_AT (FX_SIG_REQ_AT + 7u)
    FLD(K_FLAGS, otaup_msg_sig_data, flags), RSV, RSV, RSV, FLD(K_U32, otaup_msg_sig_data, offset),
    FLD(K_U32, otaup_msg_sig_data, total), FLD(K_REST_P, otaup_msg_sig_data, data), 0,
#define FX_RDATA_AT (FX_SIG_DATA_AT + 15u)
    /* BACKUP_DATA, RESTORE_DATA: the head; the rest is read by otaup_region_data_decode() */
    FLD(K_U8, otaup_msg_region_data, region), FLD(K_FLAGS, otaup_msg_region_data, flags), RSV, RSV,
    FLD(K_U32, otaup_msg_region_data, offset), FLD(K_REST_P, otaup_msg_region_data, data), 0,
#define FX_END_AT (FX_RDATA_AT + 13u)
};

typedef char otaup_fx_fields_size[sizeof fx_fields == FX_END_AT ? 1 : -1];

/* per FX_*: where its fields start, the bits its K_FLAGS byte may set, the
 * size of its fixed part (FX_OPEN: more bytes may follow), the size of its
 * structure */
struct fx {
    uint8_t at;
    uint8_t mask;
    uint8_t fixed;
    uint8_t msize;
};

#define FX_OPEN 0x80u
#define FX(name, mask, fixed, type) {FX_##name##_AT, (mask), (fixed), (uint8_t)sizeof(type)}
static const struct fx fx_tab[] = {
    FX(HELLO, 0, OTAUP_HELLO_SIZE, otaup_msg_hello),
    FX(START, OTAUP_START_RESUME, FX_OPEN | 12u, otaup_msg_start),
    FX(COMMIT, 0, 12u, otaup_msg_commit),
    FX(ABORT, 0, 12u, otaup_msg_abort),
    FX(PING, 0, 4u, otaup_msg_ping),
    FX(PROGRESS, 0, 20u, otaup_msg_progress),
    FX(ACK, 0, 16u, otaup_msg_ack),
    FX(NACK, 0, 12u, otaup_msg_nack),
    FX(BACKUP_REQ, OTAUP_BACKUP_HASH_ONLY, 12u, otaup_msg_backup_req),
    FX(SIG_REQ, 0, OTAUP_SIG_REQ_SIZE, otaup_msg_sig_req),
    FX(SIG_DATA, OTAUP_SDATA_LAST, FX_OPEN | 12u, otaup_msg_sig_data),
    /* TAG: a sealed chunk, both ways (protocol.md §3.10) */
    FX(RDATA, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH | OTAUP_RDATA_TAG, FX_OPEN | 8u, otaup_msg_region_data),
};

static OTAUP_RAMFUNC int sig_block_ok(uint32_t b)
{
    return b >= 64u && b <= (1024u * 1024u) && (b & (b - 1u)) == 0;
}

static OTAUP_RAMFUNC int sig_data_valid(const otaup_msg_sig_data *m)
{
    uint32_t end;
    if (m->total == 0 || m->offset > m->total || m->data.len > m->total - m->offset) {
        return 0;
    }
    end = m->offset + m->data.len;
    return ((m->flags & OTAUP_SDATA_LAST) != 0) == (end == m->total);
}

/* The rules on the values of message `fx` at p (its reserved bits aside). */
static OTAUP_RAMFUNC int fx_valid(unsigned fx, const void *p)
{
    switch (fx) {
    case FX_HELLO: return hello_valid(p);
    case FX_START: return ((const otaup_msg_start *)p)->session != 0;
    case FX_COMMIT: {
        const otaup_msg_commit *m = p;
        return m->session != 0 && m->action >= OTAUP_COMMIT_SWITCH && m->action <= OTAUP_COMMIT_CONFIRM;
    }
    case FX_ABORT: return ((const otaup_msg_abort *)p)->reason < 0;
    case FX_PROGRESS: return ((const otaup_msg_progress *)p)->phase <= OTAUP_PHASE_MAX;
    case FX_ACK: return ((const otaup_msg_ack *)p)->status <= 0;
    case FX_NACK: return ((const otaup_msg_nack *)p)->error < 0;
    case FX_BACKUP_REQ: return ((const otaup_msg_backup_req *)p)->max_chunk != 0;
    case FX_SIG_REQ: {
        const otaup_msg_sig_req *m = p;
        return m->max_chunk != 0 && sig_block_ok(m->block_size);
    }
    case FX_SIG_DATA: return sig_data_valid(p);
    default: return 1; /* PING; the head of BACKUP_DATA, RESTORE_DATA */
    }
}

/* Decode: the payload length (OTAUP_E_MSG_LENGTH), the fields with their
 * reserved bytes and bits (OTAUP_E_FRAME_FLAGS), the values (OTAUP_E_MSG_FIELD).
 * (The message comes last in fx_decode() and fx_encode(): each public
 * function only adds it to its own arguments.) */
static OTAUP_RAMFUNC int fx_decode(const uint8_t *in, size_t len, void *m, unsigned fx)
{
    const struct fx *t = &fx_tab[fx];
    const uint8_t *f;
    size_t fixed = t->fixed & (uint8_t)~FX_OPEN;
    if (!ARGS_OK(m, in, len)) {
        return OTAUP_E_INVAL;
    }
    memset(m, 0, t->msize);
    if (len < fixed || (len > fixed && (t->fixed & FX_OPEN) == 0)) {
        return OTAUP_E_MSG_LENGTH;
    }
    for (f = fx_fields + t->at; *f != 0; f += 2) {
        void *dst = (uint8_t *)m + f[1];
        unsigned k = K_SIZE(*f), i;
        uint32_t v = 0, hi = 0; /* the field, little-endian: bits 0..31, 32..63 */
        for (i = k; i-- > 0;) {
            hi = (hi << 8) | (v >> 24);
            v = (v << 8) | in[i];
        }
        in += k;
        if ((*f == K_ZERO || *f == K_FLAGS) && (v & (uint8_t)~(*f == K_FLAGS ? t->mask : 0u)) != 0) {
            return OTAUP_E_FRAME_FLAGS;
        }
        if (k == 0) {
            otaup_bytes *b = dst;
            b->data = *f == K_REST && len == fixed ? NULL : in;
            b->len = (uint32_t)(len - fixed);
        } else if (k == 8u) {
            *(uint64_t *)dst = ((uint64_t)hi << 32) | v;
        } else if (k == 4u) {
            *(uint32_t *)dst = v;
        } else if (k == 2u) {
            *(uint16_t *)dst = (uint16_t)v;
        } else if (*f != K_ZERO) {
            *(uint8_t *)dst = (uint8_t)v;
        }
    }
    return fx_valid(fx, m) ? 0 : OTAUP_E_MSG_FIELD;
}

/* Encode: OTAUP_E_INVAL for what the decoder refuses, OTAUP_E_BUFFER. */
static OTAUP_RAMFUNC int fx_encode(const void *m, uint8_t *out, size_t cap, unsigned fx)
{
    const struct fx *t = &fx_tab[fx];
    const uint8_t *f;
    const otaup_bytes *b = NULL;
    size_t total = t->fixed & (uint8_t)~FX_OPEN;
    if (m == NULL) {
        return OTAUP_E_INVAL;
    }
    for (f = fx_fields + t->at; *f != 0; f += 2) {
        const uint8_t *src = (const uint8_t *)m + f[1];
        if (*f == K_FLAGS && (*src & (uint8_t)~t->mask) != 0) {
            return OTAUP_E_INVAL;
        }
        if (K_SIZE(*f) == 0) {
            b = (const otaup_bytes *)(const void *)src;
            if (!bytes_ok(b)) {
                return OTAUP_E_INVAL;
            }
            total += b->len;
        }
    }
    if (!fx_valid(fx, m)) {
        return OTAUP_E_INVAL;
    }
    if (out == NULL || cap < total) {
        return OTAUP_E_BUFFER;
    }
    for (f = fx_fields + t->at; *f != 0; f += 2) {
        const void *src = (const uint8_t *)m + f[1];
        unsigned k = K_SIZE(*f), i;
        uint32_t v = 0, hi = 0;
        if (k == 8u) {
            uint64_t x = *(const uint64_t *)src;
            v = (uint32_t)x;
            hi = (uint32_t)(x >> 32);
        } else if (k == 4u) {
            v = *(const uint32_t *)src;
        } else if (k == 2u) {
            v = *(const uint16_t *)src;
        } else if (*f != K_ZERO) {
            v = *(const uint8_t *)src;
        }
        for (i = 0; i < k; i++) {
            if (i == 4u) {
                v = hi;
            }
            *out++ = (uint8_t)v;
            v >>= 8;
        }
    }
    if (b != NULL && b->len != 0) {
        memcpy(out, b->data, b->len);
    }
    return (int)total;
}

OTAUP_RAMFUNC int otaup_hello_encode(const otaup_msg_hello *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_HELLO);
}

OTAUP_RAMFUNC int otaup_hello_decode(const uint8_t *in, size_t len, otaup_msg_hello *m)
{
    return fx_decode(in, len, m, FX_HELLO);
}

OTAUP_RAMFUNC int otaup_start_encode(const otaup_msg_start *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_START);
}

OTAUP_RAMFUNC int otaup_start_decode(const uint8_t *in, size_t len, otaup_msg_start *m)
{
    return fx_decode(in, len, m, FX_START);
}

OTAUP_RAMFUNC int otaup_commit_encode(const otaup_msg_commit *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_COMMIT);
}

OTAUP_RAMFUNC int otaup_commit_decode(const uint8_t *in, size_t len, otaup_msg_commit *m)
{
    return fx_decode(in, len, m, FX_COMMIT);
}

OTAUP_RAMFUNC int otaup_abort_encode(const otaup_msg_abort *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_ABORT);
}

OTAUP_RAMFUNC int otaup_abort_decode(const uint8_t *in, size_t len, otaup_msg_abort *m)
{
    return fx_decode(in, len, m, FX_ABORT);
}

OTAUP_RAMFUNC int otaup_ping_encode(const otaup_msg_ping *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_PING);
}

OTAUP_RAMFUNC int otaup_ping_decode(const uint8_t *in, size_t len, otaup_msg_ping *m)
{
    return fx_decode(in, len, m, FX_PING);
}

OTAUP_RAMFUNC int otaup_progress_encode(const otaup_msg_progress *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_PROGRESS);
}

OTAUP_RAMFUNC int otaup_progress_decode(const uint8_t *in, size_t len, otaup_msg_progress *m)
{
    return fx_decode(in, len, m, FX_PROGRESS);
}

OTAUP_RAMFUNC int otaup_ack_encode(const otaup_msg_ack *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_ACK);
}

OTAUP_RAMFUNC int otaup_ack_decode(const uint8_t *in, size_t len, otaup_msg_ack *m)
{
    return fx_decode(in, len, m, FX_ACK);
}

OTAUP_RAMFUNC int otaup_nack_encode(const otaup_msg_nack *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_NACK);
}

OTAUP_RAMFUNC int otaup_nack_decode(const uint8_t *in, size_t len, otaup_msg_nack *m)
{
    return fx_decode(in, len, m, FX_NACK);
}

OTAUP_RAMFUNC int otaup_backup_req_encode(const otaup_msg_backup_req *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_BACKUP_REQ);
}

OTAUP_RAMFUNC int otaup_backup_req_decode(const uint8_t *in, size_t len, otaup_msg_backup_req *m)
{
    return fx_decode(in, len, m, FX_BACKUP_REQ);
}

OTAUP_RAMFUNC int otaup_sig_req_encode(const otaup_msg_sig_req *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_SIG_REQ);
}

OTAUP_RAMFUNC int otaup_sig_req_decode(const uint8_t *in, size_t len, otaup_msg_sig_req *m)
{
    return fx_decode(in, len, m, FX_SIG_REQ);
}

OTAUP_RAMFUNC int otaup_sig_data_encode(const otaup_msg_sig_data *m, uint8_t *out, size_t cap)
{
    return fx_encode(m, out, cap, FX_SIG_DATA);
}

OTAUP_RAMFUNC int otaup_sig_data_decode(const uint8_t *in, size_t len, otaup_msg_sig_data *m)
{
    return fx_decode(in, len, m, FX_SIG_DATA);
}

/* ---- BACKUP / RESTORE ---------------------------------------------------------------------------- */

static OTAUP_RAMFUNC uint8_t rdata_flags_allowed(uint8_t type)
{
    (void)type; /* TAG: a sealed chunk, both ways (protocol.md §3.10) */
    return (uint8_t)(OTAUP_RDATA_LAST | OTAUP_RDATA_HASH | OTAUP_RDATA_TAG);
}

OTAUP_RAMFUNC int otaup_region_data_encode(uint8_t type, const otaup_msg_region_data *m,
                                           uint8_t *out, size_t cap)
{
    otaup_wr w;
    if (m == NULL || (type != OTAUP_MSG_BACKUP_DATA && type != OTAUP_MSG_RESTORE_DATA) ||
        (m->flags & (uint8_t)~rdata_flags_allowed(type)) != 0 || !bytes_ok(&m->data) ||
        !range_ok(m->offset, m->data.len) ||
        ((m->flags & OTAUP_RDATA_HASH) != 0 && !hash_ok(&m->hash, 0))) {
        return OTAUP_E_INVAL;
    }
    otaup_wr_init(&w, out, cap);
    otaup_wr_u8(&w, m->region);
    otaup_wr_u8(&w, m->flags);
    otaup_wr_u16(&w, 0);
    otaup_wr_u32(&w, m->offset);
    if (m->flags & OTAUP_RDATA_HASH) {
        wr_hash(&w, &m->hash);
    }
    if (m->flags & OTAUP_RDATA_TAG) {
        otaup_wr_bytes(&w, m->tag, OTAUP_RDATA_TAG_SIZE);
    }
    otaup_wr_bytes(&w, m->data.data, m->data.len);
    return wr_done(&w);
}

OTAUP_RAMFUNC int otaup_region_data_decode(uint8_t type, const uint8_t *in, size_t len,
                                           otaup_msg_region_data *m)
{
    otaup_rd r;
    int rc;
    if (!ARGS_OK(m, in, len)) {
        return OTAUP_E_INVAL;
    }
    if (type != OTAUP_MSG_BACKUP_DATA && type != OTAUP_MSG_RESTORE_DATA) {
        return OTAUP_E_MSG_TYPE;
    }
    rc = fx_decode(in, len, m, FX_RDATA); /* region, flags, offset */
    if (rc != 0) {
        return rc;
    }
    otaup_rd_init(&r, in + 8, len - 8u);
    if (m->flags & OTAUP_RDATA_HASH) {
        rc = rd_hash(&r, &m->hash, 0);
        if (rc != 0) {
            return rc;
        }
    }
    if (m->flags & OTAUP_RDATA_TAG) {
        const uint8_t *q = otaup_rd_take(&r, OTAUP_RDATA_TAG_SIZE);
        if (q == NULL) {
            return r.err;
        }
        memcpy(m->tag, q, OTAUP_RDATA_TAG_SIZE);
    }
    rd_rest(&r, &m->data);
    return range_ok(m->offset, m->data.len) ? 0 : OTAUP_E_MSG_FIELD;
}

/* ---- BATCH ------------------------------------------------------------------------------------------ */

OTAUP_RAMFUNC int otaup_batch_next(const uint8_t *payload, size_t len, size_t *pos, otaup_record *rec)
{
    int k;
    if (pos == NULL || rec == NULL || (payload == NULL && len != 0) || *pos > len) {
        return OTAUP_E_INVAL;
    }
    if (*pos == len) {
        return 0;
    }
    k = otaup_record_decode(payload + *pos, len - *pos, rec);
    if (k == OTAUP_E_DELTA_TRUNCATED) {
        return OTAUP_E_MSG_LENGTH;
    }
    if (k < 0) {
        return k;
    }
    *pos += (size_t)k;
    return 1;
}

/* ---- dispatch ------------------------------------------------------------------------------------------ */

OTAUP_RAMFUNC int otaup_msg_decode(uint8_t type, const uint8_t *in, size_t len, otaup_msg *m)
{
    int rc;
    if (!ARGS_OK(m, in, len)) {
        return OTAUP_E_INVAL;
    }
    m->type = type;
    switch (type) {
    case OTAUP_MSG_HELLO: return otaup_hello_decode(in, len, &m->u.hello);
    case OTAUP_MSG_INFO: return otaup_info_decode(in, len, &m->u.info);
    case OTAUP_MSG_NOTIFY: return otaup_notify_decode(in, len, &m->u.notify);
    case OTAUP_MSG_CONSENT: return otaup_consent_decode(in, len, &m->u.consent);
    case OTAUP_MSG_START: return otaup_start_decode(in, len, &m->u.start);
    case OTAUP_MSG_COMMIT: return otaup_commit_decode(in, len, &m->u.commit);
    case OTAUP_MSG_ABORT: return otaup_abort_decode(in, len, &m->u.abort);
    case OTAUP_MSG_RESULT: return otaup_result_decode(in, len, &m->u.result);
    case OTAUP_MSG_PING: return otaup_ping_decode(in, len, &m->u.ping);
    case OTAUP_MSG_PROGRESS: return otaup_progress_decode(in, len, &m->u.progress);
    case OTAUP_MSG_ACK: return otaup_ack_decode(in, len, &m->u.ack);
    case OTAUP_MSG_NACK: return otaup_nack_decode(in, len, &m->u.nack);
    case OTAUP_MSG_BACKUP_REQ: return otaup_backup_req_decode(in, len, &m->u.backup_req);
    case OTAUP_MSG_BACKUP_DATA:
    case OTAUP_MSG_RESTORE_DATA: return otaup_region_data_decode(type, in, len, &m->u.rdata);
    case OTAUP_MSG_SIG_REQ: return otaup_sig_req_decode(in, len, &m->u.sig_req);
    case OTAUP_MSG_SIG_DATA: return otaup_sig_data_decode(in, len, &m->u.sig_data);
    case OTAUP_MSG_BATCH:
        CHECK_LEN(len >= 1u);
        m->u.batch.data = in;
        m->u.batch.len = (uint32_t)len;
        return 0;
    default:
        if (type >= OTAUP_MSG_ERASE && type <= OTAUP_MSG_SYNC) {
            rc = otaup_record_decode_body(type, in, len, &m->u.rec);
            return rc;
        }
        return OTAUP_E_MSG_TYPE;
    }
}

OTAUP_RAMFUNC int otaup_msg_encode(const otaup_msg *m, uint8_t *out, size_t cap)
{
    if (m == NULL) {
        return OTAUP_E_INVAL;
    }
    switch (m->type) {
    case OTAUP_MSG_HELLO: return otaup_hello_encode(&m->u.hello, out, cap);
    case OTAUP_MSG_INFO: return otaup_info_encode(&m->u.info, out, cap);
    case OTAUP_MSG_NOTIFY: return otaup_notify_encode(&m->u.notify, out, cap);
    case OTAUP_MSG_CONSENT: return otaup_consent_encode(&m->u.consent, out, cap);
    case OTAUP_MSG_START: return otaup_start_encode(&m->u.start, out, cap);
    case OTAUP_MSG_COMMIT: return otaup_commit_encode(&m->u.commit, out, cap);
    case OTAUP_MSG_ABORT: return otaup_abort_encode(&m->u.abort, out, cap);
    case OTAUP_MSG_RESULT: return otaup_result_encode(&m->u.result, out, cap);
    case OTAUP_MSG_PING: return otaup_ping_encode(&m->u.ping, out, cap);
    case OTAUP_MSG_PROGRESS: return otaup_progress_encode(&m->u.progress, out, cap);
    case OTAUP_MSG_ACK: return otaup_ack_encode(&m->u.ack, out, cap);
    case OTAUP_MSG_NACK: return otaup_nack_encode(&m->u.nack, out, cap);
    case OTAUP_MSG_BACKUP_REQ: return otaup_backup_req_encode(&m->u.backup_req, out, cap);
    case OTAUP_MSG_BACKUP_DATA:
    case OTAUP_MSG_RESTORE_DATA: return otaup_region_data_encode(m->type, &m->u.rdata, out, cap);
    case OTAUP_MSG_SIG_REQ: return otaup_sig_req_encode(&m->u.sig_req, out, cap);
    case OTAUP_MSG_SIG_DATA: return otaup_sig_data_encode(&m->u.sig_data, out, cap);
    case OTAUP_MSG_BATCH:
        if (m->u.batch.len == 0 || m->u.batch.data == NULL) {
            return OTAUP_E_INVAL;
        }
        if (out == NULL || cap < m->u.batch.len) {
            return OTAUP_E_BUFFER;
        }
        memmove(out, m->u.batch.data, m->u.batch.len);
        return (int)m->u.batch.len;
    default:
        if (m->type >= OTAUP_MSG_ERASE && m->type <= OTAUP_MSG_SYNC) {
            if (m->u.rec.type != m->type) {
                return OTAUP_E_INVAL;
            }
            return otaup_record_encode_body(&m->u.rec, out, cap);
        }
        return OTAUP_E_INVAL;
    }
}

OTAUP_RAMFUNC int otaup_msg_encode_frame(const otaup_msg *m, uint8_t flags, uint32_t seq,
                                         uint32_t max_frame, uint8_t *out, size_t cap)
{
    size_t room;
    int n;
    if (m == NULL || out == NULL || max_frame < OTAUP_FRAME_MIN || max_frame > OTAUP_FRAME_MAX ||
        (flags & (uint8_t)~OTAUP_FLAG_ACKREQ) != 0) {
        return OTAUP_E_INVAL;
    }
    if (cap < OTAUP_FRAME_OVERHEAD) {
        return OTAUP_E_BUFFER;
    }
    room = cap - OTAUP_FRAME_OVERHEAD;
    n = otaup_msg_encode(m, out + OTAUP_FRAME_HEADER_SIZE, room);
    if (n < 0) {
        return n;
    }
    if ((uint32_t)n > OTAUP_FRAME_PAYLOAD(max_frame)) {
        return OTAUP_E_FRAME_OVERSIZE;
    }
    return otaup_frame_seal(out, cap, m->type, flags, seq, (size_t)n);
}
