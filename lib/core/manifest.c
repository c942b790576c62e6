/*
 * otaup — manifest parser and signature check (docs/security.md §3).
 * C99, no heap, no OS; safe on hostile input: every length is checked
 * before use, nothing is copied out of the input except fixed fields.
 */
#include <string.h>

#include "core/sec_util.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/sign.h"

#define ENV_HEAD 8u /* magic, version, flags, body length */

static int fixed_len(uint8_t type, uint32_t *len)
{
    switch (type) {
    case OTAUP_MF_VERSION: *len = 12u; return 1;
    case OTAUP_MF_COUNTER: *len = 4u; return 1;
    case OTAUP_MF_POLICY: *len = 4u; return 1;
    case OTAUP_MF_SOURCE: *len = 40u; return 1;
    case OTAUP_MF_TARGET: *len = 40u; return 1;
    case OTAUP_MF_SLOT: *len = 8u; return 1;
    case OTAUP_MF_LAYOUT: *len = 33u; return 1;
    case OTAUP_MF_DELTA: *len = 32u; return 1;
    default: return 0;
    }
}

/* Parse the segment table: nseg entries of (varint first step, tag). */
static int parse_segments(otaup_manifest *m, const uint8_t *p, uint32_t len)
{
    uint32_t off = 0, i, prev = 0;
    for (i = 0; i < m->nseg; i++) {
        uint32_t first;
        int n = sec_varint_get(p + off, len - off, &first);
        if (n <= 0) {
            return OTAUP_E_MANIFEST;
        }
        off += (uint32_t)n;
        if (len - off < m->tag_len) {
            return OTAUP_E_MANIFEST;
        }
        off += m->tag_len;
        if (i == 0u ? first != 0u : first <= prev) {
            return OTAUP_E_MANIFEST; /* strictly increasing from step 0 */
        }
        if (first >= m->nsteps) {
            return OTAUP_E_MANIFEST; /* a segment holds at least one step */
        }
        prev = first;
    }
    return off == len ? 0 : OTAUP_E_MANIFEST;
}

static int parse_chain(otaup_manifest *m, const uint8_t *v, uint32_t len)
{
    uint32_t nseg;
    int n;
    if (len < 23u) {
        return OTAUP_E_MANIFEST;
    }
    m->chain_alg = v[0];
    m->tag_len = v[1];
    if (m->chain_alg != OTAUP_CHAIN_SHA256) {
        return OTAUP_E_MANIFEST;
    }
    if (m->tag_len < OTAUP_CHAIN_TAG_MIN || m->tag_len > OTAUP_CHAIN_TAG_MAX) {
        return OTAUP_E_MANIFEST;
    }
    memcpy(m->salt, v + 2, OTAUP_CHAIN_SALT_LEN);
    m->nsteps = sec_le32(v + 18);
    n = sec_varint_get(v + 22, len - 22u, &nseg);
    if (n <= 0) {
        return OTAUP_E_MANIFEST;
    }
    if (m->nsteps == 0u ? nseg != 0u : (nseg == 0u || nseg > m->nsteps)) {
        return OTAUP_E_MANIFEST;
    }
    m->nseg = nseg;
    m->seg_table = v + 22 + n;
    m->seg_table_len = len - 22u - (uint32_t)n;
    return parse_segments(m, m->seg_table, m->seg_table_len);
}

static int parse_field(otaup_manifest *m, uint8_t type, const uint8_t *v, uint32_t len)
{
    uint32_t want;
    if (fixed_len(type, &want) && len != want) {
        return OTAUP_E_MANIFEST;
    }
    switch (type) {
    case OTAUP_MF_MODEL:
        if (len < 1u || len > OTAUP_MANIFEST_MODEL_MAX) {
            return OTAUP_E_MANIFEST;
        }
        m->model = v;
        m->model_len = len;
        return 0;
    case OTAUP_MF_VERSION:
        m->version = sec_le32(v);
        m->build_time = sec_le64(v + 4);
        return 0;
    case OTAUP_MF_COUNTER:
        m->counter = sec_le32(v);
        return 0;
    case OTAUP_MF_POLICY:
        m->policy = sec_le32(v);
        return (m->policy & ~(uint32_t)OTAUP_POLICY_ALLOW_DOWNGRADE) != 0u ? OTAUP_E_MANIFEST : 0;
    case OTAUP_MF_SOURCE:
    case OTAUP_MF_TARGET: {
        otaup_region *r = type == OTAUP_MF_SOURCE ? &m->source : &m->target;
        r->addr = sec_le32(v);
        r->len = sec_le32(v + 4);
        if ((uint64_t)r->addr + r->len > 0x100000000ull) {
            return OTAUP_E_MANIFEST;
        }
        memcpy(type == OTAUP_MF_SOURCE ? m->source_hash : m->target_hash, v + 8, OTAUP_SHA256_LEN);
        if (type == OTAUP_MF_SOURCE) {
            m->has_source = 1;
        }
        return 0;
    }
    case OTAUP_MF_SLOT:
        m->slot.addr = sec_le32(v);
        m->slot.len = sec_le32(v + 4);
        if (m->slot.len == 0u || (uint64_t)m->slot.addr + m->slot.len > 0x100000000ull) {
            return OTAUP_E_MANIFEST;
        }
        return 0;
    case OTAUP_MF_LAYOUT:
        m->layout = v[0];
        if (m->layout != OTAUP_LAYOUT_INPLACE && m->layout != OTAUP_LAYOUT_AB) {
            return OTAUP_E_MANIFEST;
        }
        memcpy(m->geometry_digest, v + 1, OTAUP_SHA256_LEN);
        return 0;
    case OTAUP_MF_CHAIN:
        return parse_chain(m, v, len);
    case OTAUP_MF_DELTA:
        memcpy(m->delta_hash, v, OTAUP_SHA256_LEN);
        m->has_delta = 1;
        return 0;
    case OTAUP_MF_NOTE:
        if (len > OTAUP_MANIFEST_NOTE_MAX) {
            return OTAUP_E_MANIFEST;
        }
        m->note = v;
        m->note_len = len;
        return 0;
    default:
        /* unknown: critical below 0x80, informational above */
        return type < 0x80u ? OTAUP_E_MANIFEST : 0;
    }
}

OTAUP_RAMFUNC int otaup_manifest_parse(const uint8_t *in, size_t len, otaup_manifest *m)
{
    uint32_t body_len, sig_len, off, seen_last = 0;
    const uint32_t required = (1u << OTAUP_MF_MODEL) | (1u << OTAUP_MF_VERSION) |
                              (1u << OTAUP_MF_COUNTER) | (1u << OTAUP_MF_TARGET) |
                              (1u << OTAUP_MF_SLOT) | (1u << OTAUP_MF_LAYOUT) |
                              (1u << OTAUP_MF_CHAIN);
    uint32_t seen = 0;
    const uint8_t *body;
    int first = 1;

    if (m == NULL || (in == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    memset(m, 0, sizeof *m);
    if (len < ENV_HEAD + 2u || memcmp(in, OTAUP_MANIFEST_MAGIC, 4) != 0) {
        return OTAUP_E_MANIFEST;
    }
    if (in[4] != OTAUP_MANIFEST_VERSION) {
        return in[4] > OTAUP_MANIFEST_VERSION ? OTAUP_E_UNSUPPORTED : OTAUP_E_MANIFEST;
    }
    if (in[5] != 0u) {
        return OTAUP_E_MANIFEST;
    }
    body_len = sec_le16(in + 6);
    if (len - ENV_HEAD - 2u < body_len) {
        return OTAUP_E_MANIFEST;
    }
    sig_len = sec_le16(in + ENV_HEAD + body_len);
    if (len != (size_t)ENV_HEAD + body_len + 2u + sig_len) {
        return OTAUP_E_MANIFEST;
    }
    if (sig_len % OTAUP_MANIFEST_SIG_ENTRY != 0u ||
        sig_len / OTAUP_MANIFEST_SIG_ENTRY > OTAUP_MANIFEST_MAX_SIGS) {
        return OTAUP_E_MANIFEST;
    }
    m->signed_len = ENV_HEAD + body_len;
    m->nsigs = sig_len / OTAUP_MANIFEST_SIG_ENTRY;
    m->sigs = m->nsigs > 0u ? in + ENV_HEAD + body_len + 2u : NULL;

    body = in + ENV_HEAD;
    off = 0;
    while (off < body_len) {
        uint8_t type = body[off];
        uint32_t flen;
        int n, rc;
        off++;
        n = sec_varint_get(body + off, body_len - off, &flen);
        if (n <= 0) {
            return OTAUP_E_MANIFEST;
        }
        off += (uint32_t)n;
        if (body_len - off < flen) {
            return OTAUP_E_MANIFEST;
        }
        if (!first && type <= seen_last) {
            return OTAUP_E_MANIFEST; /* order, duplicates */
        }
        first = 0;
        seen_last = type;
        rc = parse_field(m, type, body + off, flen);
        if (rc != 0) {
            return rc;
        }
        if (type < 32u) {
            seen |= 1u << type;
        }
        off += flen;
    }
    if ((seen & required) != required) {
        return OTAUP_E_MANIFEST;
    }
    return 0;
}

OTAUP_RAMFUNC int otaup_manifest_digest(const otaup_crypto *c, const uint8_t *in, const otaup_manifest *m,
                                        uint8_t digest[OTAUP_SHA256_LEN])
{
    if (in == NULL || m == NULL || m->signed_len < ENV_HEAD) {
        return OTAUP_E_INVAL;
    }
    return otaup_sha256(c, in, m->signed_len, digest);
}

OTAUP_RAMFUNC int otaup_manifest_verify(const otaup_crypto *c, const uint8_t *in, const otaup_manifest *m,
                                        const otaup_sec_key *keys, size_t nkeys)
{
    uint8_t digest[OTAUP_SHA256_LEN];
    uint32_t i;
    size_t k;
    int rc, named = 0;

    if (c == NULL || c->p256_verify == NULL || in == NULL || m == NULL || (keys == NULL && nkeys > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (m->nsigs == 0u) {
        return OTAUP_E_UNSIGNED;
    }
    rc = otaup_manifest_digest(c, in, m, digest);
    if (rc != 0) {
        return rc;
    }
    for (i = 0; i < m->nsigs; i++) {
        const uint8_t *e = m->sigs + (size_t)i * OTAUP_MANIFEST_SIG_ENTRY;
        if (e[0] != OTAUP_SIG_ECDSA_P256_SHA256) {
            continue;
        }
        for (k = 0; k < nkeys; k++) {
            uint8_t id[OTAUP_KEY_ID_LEN];
            rc = otaup_key_id(c, keys[k].pub, id);
            if (rc != 0) {
                return rc;
            }
            if (memcmp(id, e + 1, OTAUP_KEY_ID_LEN) != 0) {
                continue;
            }
            named = 1;
            rc = c->p256_verify(c, keys[k].pub, digest, e + 1 + OTAUP_KEY_ID_LEN);
            if (rc == 0) {
                return (int)k;
            }
            if (rc != OTAUP_E_SIGNATURE && rc != OTAUP_E_KEY) {
                return rc; /* backend failure: do not mask it */
            }
        }
    }
    return named ? OTAUP_E_SIGNATURE : OTAUP_E_KEY;
}

OTAUP_RAMFUNC int otaup_manifest_segment(const otaup_manifest *m, uint32_t step, uint8_t *tag)
{
    uint32_t off = 0, i;
    if (m == NULL || tag == NULL) {
        return OTAUP_E_INVAL;
    }
    for (i = 0; i < m->nseg; i++) {
        uint32_t first;
        int n = sec_varint_get(m->seg_table + off, m->seg_table_len - off, &first);
        if (n <= 0 || m->seg_table_len - off - (uint32_t)n < m->tag_len) {
            return OTAUP_E_MANIFEST;
        }
        off += (uint32_t)n;
        if (first == step) {
            memcpy(tag, m->seg_table + off, m->tag_len);
            return 0;
        }
        if (first > step) {
            break;
        }
        off += m->tag_len;
    }
    return OTAUP_E_NOT_FOUND;
}

OTAUP_RAMFUNC int otaup_delta_find_manifest(const uint8_t *in, size_t len, const uint8_t **mf, size_t *mf_len)
{
    size_t off;
    unsigned n;
    if (in == NULL || mf == NULL || mf_len == NULL) {
        return OTAUP_E_INVAL;
    }
    if (len < 12u) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    if (memcmp(in, OTAUP_DELTA_MAGIC, 8) != 0) {
        return OTAUP_E_DELTA_MAGIC;
    }
    off = sec_le16(in + 10);
    if (off < 12u) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    for (n = 0; n <= OTAUP_SECTION_MAX_COUNT; n++) {
        uint16_t tag;
        uint32_t slen;
        if (len < off || len - off < OTAUP_SECTION_HEAD_SIZE) {
            return OTAUP_E_DELTA_TRUNCATED;
        }
        tag = sec_le16(in + off);
        slen = sec_le32(in + off + 2);
        off += OTAUP_SECTION_HEAD_SIZE;
        if (tag == OTAUP_SECTION_END) {
            return slen == 0u ? OTAUP_E_UNSIGNED : OTAUP_E_DELTA_CORRUPT;
        }
        if (slen > OTAUP_SECTION_MAX_LEN) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        if (len - off < slen) {
            return OTAUP_E_DELTA_TRUNCATED;
        }
        if (tag == OTAUP_SECTION_MANIFEST) {
            *mf = in + off;
            *mf_len = slen;
            return 0;
        }
        off += slen;
    }
    return OTAUP_E_DELTA_CORRUPT; /* more sections than allowed */
}
