/*
 * otaup — manifest encoder and signature entries (docs/security.md §3).
 * Server side (C11).
 */
#include <string.h>

#include "core/sec_util.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/sign.h"

typedef struct wbuf {
    uint8_t *p;
    size_t cap;
    size_t len;
    int err;
} wbuf;

static void put(wbuf *w, const void *src, size_t n)
{
    if (w->err != 0) {
        return;
    }
    if (w->cap - w->len < n) {
        w->err = OTAUP_E_BUFFER;
        return;
    }
    if (n > 0) {
        memcpy(w->p + w->len, src, n);
    }
    w->len += n;
}

static void put_u8(wbuf *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_varint(wbuf *w, uint32_t v)
{
    uint8_t b[5];
    put(w, b, (size_t)sec_varint_put(v, b));
}

static void field_head(wbuf *w, uint8_t type, uint32_t len)
{
    put_u8(w, type);
    put_varint(w, len);
}

static void put_range_hash(wbuf *w, uint8_t type, otaup_region r, const uint8_t *hash)
{
    uint8_t b[8];
    field_head(w, type, hash != NULL ? 40u : 8u);
    sec_put32(b, r.addr);
    sec_put32(b + 4, r.len);
    put(w, b, 8);
    if (hash != NULL) {
        put(w, hash, OTAUP_SHA256_LEN);
    }
}

static int range_ok(otaup_region r)
{
    return (uint64_t)r.addr + r.len <= 0x100000000ull;
}

static int check_fields(const otaup_manifest *m)
{
    uint32_t i;
    if (m->model == NULL || m->model_len < 1 || m->model_len > OTAUP_MANIFEST_MODEL_MAX) {
        return OTAUP_E_INVAL;
    }
    if ((m->policy & ~(uint32_t)OTAUP_POLICY_ALLOW_DOWNGRADE) != 0) {
        return OTAUP_E_INVAL;
    }
    if (m->layout != OTAUP_LAYOUT_INPLACE && m->layout != OTAUP_LAYOUT_AB) {
        return OTAUP_E_INVAL;
    }
    if (!range_ok(m->target) || !range_ok(m->slot) || m->slot.len == 0 ||
        (m->has_source && !range_ok(m->source))) {
        return OTAUP_E_INVAL;
    }
    if (m->chain_alg != OTAUP_CHAIN_SHA256 || m->tag_len < OTAUP_CHAIN_TAG_MIN ||
        m->tag_len > OTAUP_CHAIN_TAG_MAX) {
        return OTAUP_E_INVAL;
    }
    if (m->nsteps == 0 ? m->nseg != 0 : (m->nseg == 0 || m->nseg > m->nsteps || m->segs == NULL)) {
        return OTAUP_E_INVAL;
    }
    for (i = 0; i < m->nseg; i++) {
        uint32_t f = m->segs[i].first_step;
        if ((i == 0 ? f != 0 : f <= m->segs[i - 1].first_step) || f >= m->nsteps) {
            return OTAUP_E_INVAL;
        }
    }
    if (m->note != NULL && m->note_len > OTAUP_MANIFEST_NOTE_MAX) {
        return OTAUP_E_INVAL;
    }
    return 0;
}

int otaup_manifest_encode(const otaup_manifest *m, uint8_t *out, size_t cap)
{
    wbuf w = { out, cap, 0, 0 };
    uint8_t b[12];
    uint32_t i, chain_len;
    size_t body_start;
    int rc;

    if (m == NULL || (out == NULL && cap > 0)) {
        return OTAUP_E_INVAL;
    }
    rc = check_fields(m);
    if (rc != 0) {
        return rc;
    }
    put(&w, OTAUP_MANIFEST_MAGIC, 4);
    put_u8(&w, OTAUP_MANIFEST_VERSION);
    put_u8(&w, 0);
    put(&w, "\0\0", 2); /* body length, patched below */
    body_start = w.len;

    field_head(&w, OTAUP_MF_MODEL, m->model_len);
    put(&w, m->model, m->model_len);

    field_head(&w, OTAUP_MF_VERSION, 12);
    sec_put32(b, m->version);
    sec_put64(b + 4, m->build_time);
    put(&w, b, 12);

    field_head(&w, OTAUP_MF_COUNTER, 4);
    sec_put32(b, m->counter);
    put(&w, b, 4);

    if (m->policy != 0) {
        field_head(&w, OTAUP_MF_POLICY, 4);
        sec_put32(b, m->policy);
        put(&w, b, 4);
    }
    if (m->has_source) {
        put_range_hash(&w, OTAUP_MF_SOURCE, m->source, m->source_hash);
    }
    put_range_hash(&w, OTAUP_MF_TARGET, m->target, m->target_hash);
    put_range_hash(&w, OTAUP_MF_SLOT, m->slot, NULL);

    field_head(&w, OTAUP_MF_LAYOUT, 33);
    put_u8(&w, m->layout);
    put(&w, m->geometry_digest, OTAUP_SHA256_LEN);

    {
        uint8_t vb[5];
        chain_len = 22u + (uint32_t)sec_varint_put(m->nseg, vb);
        for (i = 0; i < m->nseg; i++) {
            chain_len += (uint32_t)sec_varint_put(m->segs[i].first_step, vb) + m->tag_len;
        }
    }
    field_head(&w, OTAUP_MF_CHAIN, chain_len);
    put_u8(&w, m->chain_alg);
    put_u8(&w, m->tag_len);
    put(&w, m->salt, OTAUP_CHAIN_SALT_LEN);
    sec_put32(b, m->nsteps);
    put(&w, b, 4);
    put_varint(&w, m->nseg);
    for (i = 0; i < m->nseg; i++) {
        put_varint(&w, m->segs[i].first_step);
        put(&w, m->segs[i].tag, m->tag_len);
    }

    if (m->has_delta) {
        field_head(&w, OTAUP_MF_DELTA, 32);
        put(&w, m->delta_hash, OTAUP_SHA256_LEN);
    }
    if (m->note != NULL) {
        field_head(&w, OTAUP_MF_NOTE, m->note_len);
        put(&w, m->note, m->note_len);
    }
    if (w.err != 0) {
        return w.err;
    }
    if (w.len - body_start > 0xFFFFu) {
        return OTAUP_E_INVAL; /* too many segments for one manifest */
    }
    sec_put16(out + 6, (uint16_t)(w.len - body_start));
    put(&w, "\0\0", 2); /* empty signature area */
    if (w.err != 0) {
        return w.err;
    }
    return (int)w.len;
}

int otaup_manifest_add_signature(const otaup_crypto *c, uint8_t *buf, size_t len, size_t cap,
                                 const uint8_t pub[OTAUP_P256_PUB_LEN],
                                 const uint8_t sig[OTAUP_P256_SIG_LEN])
{
    otaup_manifest m;
    uint8_t *e;
    uint32_t sig_len;
    int rc;
    if (buf == NULL || pub == NULL || sig == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_manifest_parse(buf, len, &m);
    if (rc != 0) {
        return rc;
    }
    if (m.nsigs >= OTAUP_MANIFEST_MAX_SIGS) {
        return OTAUP_E_MANIFEST;
    }
    if (cap - len < OTAUP_MANIFEST_SIG_ENTRY) {
        return OTAUP_E_BUFFER;
    }
    e = buf + len;
    e[0] = OTAUP_SIG_ECDSA_P256_SHA256;
    rc = otaup_key_id(c, pub, e + 1);
    if (rc != 0) {
        return rc;
    }
    memcpy(e + 1 + OTAUP_KEY_ID_LEN, sig, OTAUP_P256_SIG_LEN);
    sig_len = (m.nsigs + 1u) * OTAUP_MANIFEST_SIG_ENTRY;
    sec_put16(buf + m.signed_len, (uint16_t)sig_len);
    return (int)(len + OTAUP_MANIFEST_SIG_ENTRY);
}
