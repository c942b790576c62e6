/*
 * Delta container: header codec and the streaming reader of the section
 * list and the outer record stream (docs/delta-format.md). C99, no heap,
 * bounded memory: everything but DATA/section payloads is assembled in a
 * fixed buffer inside the reader; payloads are handed out as chunks that
 * point into the caller's input.
 */
#include <string.h>

#include "core/delta_hdr.h"
#include "core/dl_util.h"
#include "otaup/delta.h"
#include "otaup/error.h"

static const uint8_t delta_magic[8] = { 'O', 'T', 'A', 'U', 'P', 'D', 'L', 'T' };

/* Largest body of an outer record other than DATA: VERIFY with a SHA-256. */
#define OUTER_BODY_MAX 48u

uint32_t otaup_delta_ram_needed(uint32_t staging, uint32_t window_bits, uint32_t max_ops)
{
    uint64_t r = (uint64_t)staging + ((uint64_t)1 << (window_bits > 15u ? 15u : window_bits)) +
                 OTAUP_DELTA_INFLATE_STATE + (uint64_t)max_ops * OTAUP_DELTA_OP_ENTRY;
    return r > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)r;
}

static int range_in_geo(const otaup_geometry *g, uint32_t addr, uint32_t len)
{
    uint32_t size = otaup_geometry_size(g);
    if (addr < g->base) {
        return 0;
    }
    return (uint64_t)(addr - g->base) + len <= size;
}

static int overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return alen != 0 && blen != 0 && (uint64_t)a < (uint64_t)b + blen && (uint64_t)b < (uint64_t)a + alen;
}

/* Field checks shared by encode and decode. */
static int header_check(const otaup_delta_header *h)
{
    uint32_t i;
    if (h->flags & ~(uint32_t)OTAUP_DELTA_F_KNOWN) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (otaup_geometry_check(&h->geo) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    for (i = h->geo.nruns; i < OTAUP_MAX_SECTOR_RUNS; i++) {
        if (h->geo.runs[i].count != 0 || h->geo.runs[i].size != 0) {
            return OTAUP_E_DELTA_CORRUPT;
        }
    }
    if (h->layout != OTAUP_LAYOUT_INPLACE && h->layout != OTAUP_LAYOUT_AB) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (h->window_bits < OTAUP_DELTA_WBITS_MIN || h->window_bits > OTAUP_DELTA_WBITS_MAX) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (h->max_ops > OTAUP_DELTA_MAX_OPS_LIMIT || h->staging_size > OTAUP_DELTA_STAGING_MAX ||
        h->staging_size % h->geo.write_size != 0 || (h->step_count > 0 && h->staging_size == 0)) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (h->sync_count > h->step_count) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (!range_in_geo(&h->geo, h->source_addr, h->source_size) ||
        !range_in_geo(&h->geo, h->target_addr, h->target_size) ||
        !otaup_geometry_is_sector_aligned(&h->geo, h->target_addr, 0)) {
        return OTAUP_E_GEOMETRY;
    }
    if (h->layout == OTAUP_LAYOUT_INPLACE) {
        if (h->source_addr != h->target_addr) {
            return OTAUP_E_DELTA_CORRUPT;
        }
    } else if (overlap(h->source_addr, h->source_size, h->target_addr, h->target_size)) {
        return OTAUP_E_GEOMETRY;
    }
    if (h->scratch_size != 0) {
        if (!range_in_geo(&h->geo, h->scratch_addr, h->scratch_size) ||
            !otaup_geometry_is_sector_aligned(&h->geo, h->scratch_addr, h->scratch_size) ||
            overlap(h->scratch_addr, h->scratch_size, h->target_addr, h->target_size) ||
            overlap(h->scratch_addr, h->scratch_size, h->source_addr, h->source_size)) {
            return OTAUP_E_GEOMETRY;
        }
    } else if (h->scratch_addr != 0) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    return 0;
}

int otaup_delta_header_encode(const otaup_delta_header *h, uint8_t *out, size_t cap)
{
    uint32_t i, size, check;
    int rc;
    if (h == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = header_check(h);
    if (rc < 0) {
        return OTAUP_E_INVAL;
    }
    size = OTAUP_DELTA_HEADER_BYTES(h->geo.nruns);
    check = size - 8u;
    if (cap < size) {
        return OTAUP_E_BUFFER;
    }
    memset(out, 0, size);
    memcpy(out + H_MAGIC, delta_magic, 8);
    otaup_dl_put16(out + H_VERSION, OTAUP_DELTA_FORMAT_VERSION);
    otaup_dl_put16(out + H_SIZE, (uint16_t)size);
    otaup_dl_put32(out + H_FLAGS, h->flags);
    otaup_dl_put32(out + H_BASE, h->geo.base);
    otaup_dl_put32(out + H_WRITE, h->geo.write_size);
    out[H_ERASED] = h->geo.erased;
    out[H_NRUNS] = h->geo.nruns;
    out[H_LAYOUT] = h->layout;
    out[H_WBITS] = h->window_bits;
    otaup_dl_put32(out + H_SOURCE_ADDR, h->source_addr);
    otaup_dl_put32(out + H_TARGET_ADDR, h->target_addr);
    otaup_dl_put32(out + H_SCRATCH_ADDR, h->scratch_addr);
    otaup_dl_put32(out + H_SCRATCH_SIZE, h->scratch_size);
    otaup_dl_put32(out + H_STAGING, h->staging_size);
    otaup_dl_put16(out + H_MAX_OPS, h->max_ops);
    otaup_dl_put32(out + H_STEPS, h->step_count);
    otaup_dl_put32(out + H_SYNCS, h->sync_count);
    otaup_dl_put32(out + H_SOURCE_SIZE, h->source_size);
    memcpy(out + H_SOURCE_HASH, h->source_hash, 16);
    otaup_dl_put32(out + H_TARGET_SIZE, h->target_size);
    memcpy(out + H_TARGET_HASH, h->target_hash, 16);
    otaup_dl_put32(out + H_BODY_LEN, h->body_len);
    memcpy(out + H_BODY_HASH, h->body_hash, 16);
    otaup_dl_put32(out + H_INNER_LEN, h->inner_len);
    for (i = 0; i < h->geo.nruns; i++) {
        otaup_dl_put32(out + H_RUNS + 8u * i, h->geo.runs[i].count);
        otaup_dl_put32(out + H_RUNS + 8u * i + 4u, h->geo.runs[i].size);
    }
    otaup_dl_put64(out + check, XXH3_64bits(out, check));
    return (int)size;
}

int otaup_delta_header_decode(const uint8_t *in, size_t len, otaup_delta_header *h)
{
    uint32_t i, version, nruns, size;
    int rc;
    if (in == NULL || h == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(h, 0, sizeof *h);
    if (len < 10u) {
        if (memcmp(in, delta_magic, len < 8u ? len : 8u) != 0) {
            return OTAUP_E_DELTA_MAGIC;
        }
        return OTAUP_E_DELTA_TRUNCATED;
    }
    if (memcmp(in + H_MAGIC, delta_magic, 8) != 0) {
        return OTAUP_E_DELTA_MAGIC;
    }
    version = otaup_dl_get16(in + H_VERSION);
    if (version != OTAUP_DELTA_FORMAT_VERSION) {
        return OTAUP_E_DELTA_VERSION;
    }
    if (len < OTAUP_DELTA_HEADER_PREFIX) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    nruns = in[H_NRUNS];
    size = otaup_dl_get16(in + H_SIZE);
    if (nruns < 1u || nruns > OTAUP_MAX_SECTOR_RUNS || size != OTAUP_DELTA_HEADER_BYTES(nruns)) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (len < size) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    if (otaup_dl_get64(in + size - 8u) != XXH3_64bits(in, size - 8u) || otaup_dl_get16(in + H_RESERVED) != 0) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    h->format_version = (uint16_t)version;
    h->header_size = (uint16_t)size;
    h->flags = otaup_dl_get32(in + H_FLAGS);
    h->geo.base = otaup_dl_get32(in + H_BASE);
    h->geo.write_size = otaup_dl_get32(in + H_WRITE);
    h->geo.erased = in[H_ERASED];
    h->geo.nruns = (uint8_t)nruns;
    h->layout = in[H_LAYOUT];
    h->window_bits = in[H_WBITS];
    for (i = 0; i < nruns; i++) {
        h->geo.runs[i].count = otaup_dl_get32(in + H_RUNS + 8u * i);
        h->geo.runs[i].size = otaup_dl_get32(in + H_RUNS + 8u * i + 4u);
    }
    h->source_addr = otaup_dl_get32(in + H_SOURCE_ADDR);
    h->target_addr = otaup_dl_get32(in + H_TARGET_ADDR);
    h->scratch_addr = otaup_dl_get32(in + H_SCRATCH_ADDR);
    h->scratch_size = otaup_dl_get32(in + H_SCRATCH_SIZE);
    h->staging_size = otaup_dl_get32(in + H_STAGING);
    h->max_ops = (uint16_t)otaup_dl_get16(in + H_MAX_OPS);
    h->step_count = otaup_dl_get32(in + H_STEPS);
    h->sync_count = otaup_dl_get32(in + H_SYNCS);
    h->source_size = otaup_dl_get32(in + H_SOURCE_SIZE);
    memcpy(h->source_hash, in + H_SOURCE_HASH, 16);
    h->target_size = otaup_dl_get32(in + H_TARGET_SIZE);
    memcpy(h->target_hash, in + H_TARGET_HASH, 16);
    h->body_len = otaup_dl_get32(in + H_BODY_LEN);
    memcpy(h->body_hash, in + H_BODY_HASH, 16);
    h->inner_len = otaup_dl_get32(in + H_INNER_LEN);
    rc = header_check(h);
    if (rc < 0) {
        return rc;
    }
    return (int)size;
}

/* ---- streaming reader ----------------------------------------------------- */

enum { ST_HEADER = 0, ST_SEC_HEAD, ST_SEC_DATA, ST_REC_HEAD, ST_DATA, ST_DONE, ST_ERROR };

static XXH3_state_t *reader_hash(otaup_delta_reader *r)
{
    return otaup_dl_xxh3_state(r->hash.space);
}

void otaup_delta_reader_init(otaup_delta_reader *r)
{
    if (r == NULL) {
        return;
    }
    memset(r, 0, sizeof *r);
    r->state = ST_HEADER;
    r->need = OTAUP_DELTA_HEADER_PREFIX;
    r->hashing = 1;
}

static uint32_t body_end(const otaup_delta_reader *r)
{
    return r->body_offset + r->hdr.body_len;
}

static int fail(otaup_delta_reader *r, int err)
{
    r->state = ST_ERROR;
    return err;
}

/* Decode the assembled outer record head[0..head_len) into r->rec and
 * check its place in the stream. */
static int outer_record(otaup_delta_reader *r, uint32_t hdr_len, uint32_t body_len)
{
    const uint8_t *b = r->head + hdr_len;
    uint8_t type = r->head[0];
    uint32_t off = 0;
    int n;
    otaup_record *rec = &r->rec;
    memset(rec, 0, sizeof *rec);
    rec->type = type;
    switch (type) {
    case OTAUP_REC_SYNC:
        n = otaup_dl_varint_get(b, body_len, &rec->index);
        if (n <= 0) {
            return OTAUP_E_MSG_FIELD;
        }
        if ((uint32_t)n != body_len) {
            return OTAUP_E_MSG_LENGTH;
        }
        if (rec->index < r->next_sync || rec->index >= r->hdr.step_count) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        r->next_sync = rec->index + 1u;
        r->last_sync = rec->index;
        r->syncs_seen++;
        r->data_bytes = 0;
        break;
    case OTAUP_REC_DATA:
        rec->flags = b[0];
        if (rec->flags & ~(uint32_t)OTAUP_DATA_RESET) {
            return OTAUP_E_MSG_FIELD;
        }
        if (r->prev_type != OTAUP_REC_SYNC && r->prev_type != OTAUP_REC_DATA) {
            return OTAUP_E_DELTA_CORRUPT; /* DATA must follow a restart point */
        }
        if (((rec->flags & OTAUP_DATA_RESET) != 0) != (r->prev_type == OTAUP_REC_SYNC)) {
            return OTAUP_E_DELTA_CORRUPT; /* RESET exactly on the first DATA after SYNC */
        }
        rec->data_len = body_len - 1u;
        break;
    case OTAUP_REC_ERASE:
    case OTAUP_REC_VERIFY:
        if (r->prev_type == OTAUP_REC_SYNC) {
            return OTAUP_E_DELTA_CORRUPT; /* a SYNC is followed by its DATA */
        }
        n = otaup_dl_varint_get(b, body_len, &rec->addr);
        if (n <= 0) {
            return OTAUP_E_MSG_FIELD;
        }
        off = (uint32_t)n;
        n = otaup_dl_varint_get(b + off, body_len - off, &rec->len);
        if (n <= 0) {
            return OTAUP_E_MSG_FIELD;
        }
        off += (uint32_t)n;
        if (type == OTAUP_REC_VERIFY) {
            uint32_t hl;
            if (off >= body_len) {
                return OTAUP_E_MSG_LENGTH;
            }
            rec->alg = b[off++];
            hl = rec->alg == OTAUP_HASH_XXH3_64 ? 8u : rec->alg == OTAUP_HASH_XXH3_128 ? 16u
                 : rec->alg == OTAUP_HASH_SHA256 ? 32u : 0u;
            if (hl == 0) {
                return OTAUP_E_MSG_FIELD;
            }
            if (body_len - off != hl) {
                return OTAUP_E_MSG_LENGTH;
            }
            memcpy(rec->hash, b + off, hl);
            rec->hash_len = (uint8_t)hl;
            off += hl;
        }
        if (off != body_len) {
            return OTAUP_E_MSG_LENGTH;
        }
        if ((uint64_t)rec->addr + rec->len > (uint64_t)r->hdr.geo.base + otaup_geometry_size(&r->hdr.geo) ||
            rec->addr < r->hdr.geo.base) {
            return OTAUP_E_MSG_FIELD;
        }
        break;
    default:
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (r->prev_type == 0 && r->hdr.step_count > 0 &&
        (type != OTAUP_REC_SYNC || (r->hashing && rec->index != 0))) {
        /* the body opens with SYNC{0}; read from a later restart point
         * (otaup_delta_reader_seek: not hashing) with that SYNC */
        return OTAUP_E_DELTA_CORRUPT;
    }
    r->prev_type = type;
    return 0;
}

static int finish_body(otaup_delta_reader *r)
{
    r->state = ST_DONE;
    r->body_checked = 0;
    if (r->hashing) {
        XXH128_hash_t h = XXH3_128bits_digest(reader_hash(r));
        uint8_t got[16];
        otaup_dl_put64(got, h.low64);
        otaup_dl_put64(got + 8, h.high64);
        if (memcmp(got, r->hdr.body_hash, 16) != 0) {
            return fail(r, OTAUP_E_HASH);
        }
        if (r->syncs_seen != r->hdr.sync_count) {
            return fail(r, OTAUP_E_DELTA_CORRUPT);
        }
        r->body_checked = 1;
    }
    if (r->prev_type == OTAUP_REC_SYNC) {
        return fail(r, OTAUP_E_DELTA_CORRUPT);
    }
    return OTAUP_DELTA_END;
}

/* Copy up to `want` bytes from in into head[]; returns bytes taken. */
static size_t take(otaup_delta_reader *r, const uint8_t *in, size_t len, uint32_t want)
{
    size_t n = want - r->head_len;
    if (n > len) {
        n = len;
    }
    memcpy(r->head + r->head_len, in, n);
    r->head_len += (uint32_t)n;
    return n;
}

static void advance(otaup_delta_reader *r, const uint8_t *p, size_t n, int body)
{
    if (body && r->hashing && n > 0) {
        XXH3_128bits_update(reader_hash(r), p, n);
    }
    r->pos += (uint32_t)n;
}

int otaup_delta_reader_feed(otaup_delta_reader *r, const uint8_t *in, size_t len, size_t *consumed)
{
    size_t used = 0;
    int rc;
    if (r == NULL || consumed == NULL || (in == NULL && len > 0)) {
        return OTAUP_E_INVAL;
    }
    *consumed = 0;
    for (;;) {
        const uint8_t *p = in + used;
        size_t avail = len - used;
        size_t n;
        switch (r->state) {
        case ST_HEADER:
            n = take(r, p, avail, r->need);
            advance(r, p, n, 0);
            used += n;
            /* refuse a foreign file as early as possible */
            if (r->head_len > 0 &&
                memcmp(r->head, delta_magic, r->head_len < 8u ? r->head_len : 8u) != 0) {
                *consumed = used;
                return fail(r, OTAUP_E_DELTA_MAGIC);
            }
            if (r->head_len >= OTAUP_DELTA_HEADER_PREFIX && r->need == OTAUP_DELTA_HEADER_PREFIX) {
                /* the prefix tells the size (the run count); decode checks it */
                uint32_t nruns = r->head[H_NRUNS];
                if (otaup_dl_get16(r->head + H_VERSION) == OTAUP_DELTA_FORMAT_VERSION && nruns >= 1u &&
                    nruns <= OTAUP_MAX_SECTOR_RUNS) {
                    r->need = OTAUP_DELTA_HEADER_BYTES(nruns);
                    if (r->head_len < r->need && used < len) {
                        continue; /* the rest of the header from this input */
                    }
                }
            }
            if (r->head_len < r->need) {
                *consumed = used;
                return OTAUP_DELTA_NEED_INPUT;
            }
            rc = otaup_delta_header_decode(r->head, r->head_len, &r->hdr);
            *consumed = used;
            if (rc < 0) {
                return fail(r, rc);
            }
            r->head_len = 0;
            r->state = ST_SEC_HEAD;
            return OTAUP_DELTA_HEADER;
        case ST_SEC_HEAD:
            n = take(r, p, avail, OTAUP_SECTION_HEAD_SIZE);
            advance(r, p, n, 0);
            used += n;
            *consumed = used;
            if (r->head_len < OTAUP_SECTION_HEAD_SIZE) {
                return OTAUP_DELTA_NEED_INPUT;
            }
            r->head_len = 0;
            r->sec_tag = (uint16_t)otaup_dl_get16(r->head);
            r->sec_len = otaup_dl_get32(r->head + 2);
            if (r->sec_tag == OTAUP_SECTION_END) {
                if (r->sec_len != 0) {
                    return fail(r, OTAUP_E_DELTA_CORRUPT);
                }
                r->body_offset = r->pos;
                if ((uint64_t)r->body_offset + r->hdr.body_len > 0xFFFFFFFFu) {
                    return fail(r, OTAUP_E_DELTA_CORRUPT);
                }
                XXH3_128bits_reset(reader_hash(r));
                r->state = ST_REC_HEAD;
                return OTAUP_DELTA_BODY;
            }
            if (r->sec_len > OTAUP_SECTION_MAX_LEN || ++r->sec_count > OTAUP_SECTION_MAX_COUNT) {
                return fail(r, OTAUP_E_DELTA_CORRUPT);
            }
            r->left = r->sec_len;
            r->state = r->left > 0 ? ST_SEC_DATA : ST_SEC_HEAD;
            return OTAUP_DELTA_SECTION;
        case ST_SEC_DATA:
        case ST_DATA:
            if (avail == 0) {
                *consumed = used;
                return OTAUP_DELTA_NEED_INPUT;
            }
            n = avail < r->left ? avail : r->left;
            r->data = p;
            r->data_len = (uint32_t)n;
            advance(r, p, n, r->state == ST_DATA);
            used += n;
            r->left -= (uint32_t)n;
            *consumed = used;
            if (r->state == ST_DATA) {
                r->data_bytes += (uint32_t)n;
                if (r->left == 0) {
                    r->state = ST_REC_HEAD;
                }
                return OTAUP_DELTA_RECORD_BYTES;
            }
            if (r->left == 0) {
                r->state = ST_SEC_HEAD;
            }
            return OTAUP_DELTA_SECTION_BYTES;
        case ST_REC_HEAD: {
            uint32_t vlen, blen, hlen;
            int vn;
            if (r->head_len == 0 && r->pos == body_end(r)) {
                *consumed = used;
                return finish_body(r);
            }
            if (avail == 0) {
                *consumed = used;
                return OTAUP_DELTA_NEED_INPUT;
            }
            if (r->head_len == 0) {
                r->rec_offset = r->pos;
                r->need = 2; /* type + at least one length byte */
            }
            n = take(r, p, avail, r->need);
            if ((uint64_t)r->pos + n > body_end(r)) {
                *consumed = used;
                return fail(r, OTAUP_E_DELTA_CORRUPT); /* record runs past the body */
            }
            advance(r, p, n, 1);
            used += n;
            *consumed = used;
            if (r->head_len < r->need) {
                if (r->pos == body_end(r)) {
                    return fail(r, OTAUP_E_DELTA_CORRUPT);
                }
                return OTAUP_DELTA_NEED_INPUT;
            }
            vn = otaup_dl_varint_get(r->head + 1, r->head_len - 1u, &vlen);
            if (vn < 0) {
                return fail(r, OTAUP_E_MSG_FIELD);
            }
            if (vn == 0) {
                r->need = r->head_len + 1u;
                continue;
            }
            hlen = 1u + (uint32_t)vn;
            if (r->head[0] == OTAUP_REC_DATA) {
                if (vlen < 1u) {
                    return fail(r, OTAUP_E_MSG_LENGTH);
                }
                blen = 1u; /* the flags byte; the payload is streamed */
            } else {
                if (r->head[0] != OTAUP_REC_SYNC && r->head[0] != OTAUP_REC_ERASE &&
                    r->head[0] != OTAUP_REC_VERIFY) {
                    return fail(r, OTAUP_E_DELTA_CORRUPT);
                }
                if (vlen > OUTER_BODY_MAX) {
                    return fail(r, OTAUP_E_MSG_LENGTH);
                }
                blen = vlen;
            }
            if ((uint64_t)r->rec_offset + hlen + vlen > body_end(r)) {
                return fail(r, OTAUP_E_DELTA_CORRUPT);
            }
            if (r->head_len < hlen + blen) {
                r->need = hlen + blen;
                continue;
            }
            rc = outer_record(r, hlen, r->head[0] == OTAUP_REC_DATA ? vlen : blen);
            r->head_len = 0;
            if (rc < 0) {
                return fail(r, rc);
            }
            if (r->rec.type == OTAUP_REC_DATA) {
                r->left = r->rec.data_len;
                if (r->left > 0) {
                    r->state = ST_DATA;
                }
            }
            return OTAUP_DELTA_RECORD;
        }
        case ST_DONE:
            *consumed = used;
            if (avail > 0) {
                return fail(r, OTAUP_E_DELTA_CORRUPT); /* bytes after the body */
            }
            return OTAUP_DELTA_NEED_INPUT;
        default:
            *consumed = used;
            return OTAUP_E_STATE;
        }
    }
}

int otaup_delta_reader_finish(otaup_delta_reader *r)
{
    if (r == NULL) {
        return OTAUP_E_INVAL;
    }
    if (r->state == ST_DONE) {
        return OTAUP_DELTA_END;
    }
    if (r->state == ST_REC_HEAD && r->head_len == 0 && r->pos == body_end(r)) {
        return finish_body(r);
    }
    if (r->state == ST_ERROR) {
        return OTAUP_E_STATE;
    }
    return fail(r, OTAUP_E_DELTA_TRUNCATED);
}

uint32_t otaup_delta_reader_skip(otaup_delta_reader *r)
{
    uint32_t n;
    if (r == NULL || (r->state != ST_DATA && r->state != ST_SEC_DATA)) {
        return 0;
    }
    n = r->left;
    r->pos += n;
    r->left = 0;
    if (r->state == ST_DATA) {
        r->hashing = 0;
        r->data_bytes += n;
        r->state = ST_REC_HEAD;
    } else {
        r->state = ST_SEC_HEAD;
    }
    return n;
}

int otaup_delta_reader_seek(otaup_delta_reader *r, uint32_t offset)
{
    if (r == NULL) {
        return OTAUP_E_INVAL;
    }
    if (r->state != ST_REC_HEAD && r->state != ST_DATA && r->state != ST_DONE) {
        return OTAUP_E_STATE;
    }
    if (offset < r->body_offset || offset >= body_end(r)) {
        return OTAUP_E_RANGE;
    }
    r->state = ST_REC_HEAD;
    r->pos = offset;
    r->head_len = 0;
    r->left = 0;
    r->hashing = 0;
    r->prev_type = 0;
    r->next_sync = 0;
    return 0;
}

int otaup_delta_check(const uint8_t *in, size_t len, otaup_delta_header *hdr, uint32_t *body_offset)
{
    otaup_delta_reader r;
    size_t off = 0;
    if (in == NULL && len > 0) {
        return OTAUP_E_INVAL;
    }
    if (len > 0xFFFFFFFFu) {
        return OTAUP_E_RANGE;
    }
    otaup_delta_reader_init(&r);
    for (;;) {
        size_t used = 0;
        int ev = otaup_delta_reader_feed(&r, in + off, len - off, &used);
        off += used;
        if (ev < 0) {
            return ev;
        }
        if (ev == OTAUP_DELTA_END) {
            break;
        }
        if (ev == OTAUP_DELTA_NEED_INPUT) {
            int rc;
            if (off < len) {
                return OTAUP_E_INTERNAL;
            }
            rc = otaup_delta_reader_finish(&r);
            if (rc < 0) {
                return rc;
            }
            break;
        }
    }
    if (off != len) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (hdr != NULL) {
        *hdr = r.hdr;
    }
    if (body_offset != NULL) {
        *body_offset = r.body_offset;
    }
    return 0;
}
