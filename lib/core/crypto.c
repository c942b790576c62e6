/*
 * otaup — helpers over the crypto interface: one-shot SHA-256, hashing
 * flash, HMAC-SHA-256, checked AES-256-GCM calls, key ids, the geometry
 * digest. C99, no heap, no OS.
 */
#include <string.h>

#include "core/sec_util.h"
#include "otaup/error.h"
#include "otaup/sign.h"

OTAUP_RAMFUNC static int crypto_has_hash(const otaup_crypto *c)
{
    return c != NULL && c->sha256_init != NULL && c->sha256_update != NULL && c->sha256_final != NULL;
}

OTAUP_RAMFUNC int otaup_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        d |= (uint8_t)(a[i] ^ b[i]);
    }
    return d == 0u;
}

OTAUP_RAMFUNC int otaup_sha256(const otaup_crypto *c, const void *data, size_t len, uint8_t out[OTAUP_SHA256_LEN])
{
    otaup_sha256_state st;
    int rc;
    if (!crypto_has_hash(c) || out == NULL || (data == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    rc = c->sha256_init(c, &st);
    if (rc == 0 && len > 0u) {
        rc = c->sha256_update(c, &st, data, len);
    }
    if (rc == 0) {
        rc = c->sha256_final(c, &st, out);
    }
    memset(&st, 0, sizeof st);
    return rc;
}

OTAUP_RAMFUNC int otaup_sha256_flash(const otaup_crypto *c, const otaup_flash *flash, uint32_t addr,
                                     uint32_t len, uint8_t *buf, size_t buf_len,
                                     uint8_t out[OTAUP_SHA256_LEN])
{
    uint8_t small[64];
    otaup_sha256_state st;
    int rc;
    if (!crypto_has_hash(c) || flash == NULL || flash->read == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    if (buf == NULL || buf_len == 0u) {
        buf = small;
        buf_len = sizeof small;
    }
    rc = c->sha256_init(c, &st);
    while (rc == 0 && len > 0u) {
        uint32_t n = len < buf_len ? len : (uint32_t)buf_len;
        rc = flash->read(flash, addr, buf, n);
        if (rc == 0) {
            rc = c->sha256_update(c, &st, buf, n);
        }
        addr += n;
        len -= n;
    }
    if (rc == 0) {
        rc = c->sha256_final(c, &st, out);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_hmac_sha256(const otaup_crypto *c, const uint8_t *key, size_t key_len, const void *data,
                      size_t len, uint8_t out[OTAUP_SHA256_LEN])
{
    uint8_t k[64], pad[64], inner[OTAUP_SHA256_LEN];
    otaup_sha256_state st;
    size_t i;
    int rc;
    if (!crypto_has_hash(c) || out == NULL || (key == NULL && key_len > 0u) || (data == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    memset(k, 0, sizeof k);
    if (key_len > sizeof k) {
        rc = otaup_sha256(c, key, key_len, k);
        if (rc != 0) {
            return rc;
        }
    } else if (key_len > 0u) {
        memcpy(k, key, key_len);
    }
    for (i = 0; i < sizeof pad; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x36u);
    }
    rc = c->sha256_init(c, &st);
    if (rc == 0) {
        rc = c->sha256_update(c, &st, pad, sizeof pad);
    }
    if (rc == 0 && len > 0u) {
        rc = c->sha256_update(c, &st, data, len);
    }
    if (rc == 0) {
        rc = c->sha256_final(c, &st, inner);
    }
    for (i = 0; i < sizeof pad; i++) {
        pad[i] = (uint8_t)(k[i] ^ 0x5Cu);
    }
    if (rc == 0) {
        rc = c->sha256_init(c, &st);
    }
    if (rc == 0) {
        rc = c->sha256_update(c, &st, pad, sizeof pad);
    }
    if (rc == 0) {
        rc = c->sha256_update(c, &st, inner, sizeof inner);
    }
    if (rc == 0) {
        rc = c->sha256_final(c, &st, out);
    }
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
    memset(inner, 0, sizeof inner);
    memset(&st, 0, sizeof st);
    return rc;
}

OTAUP_RAMFUNC int otaup_aead_seal(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OTAUP_GCM_TAG_LEN])
{
    if (c == NULL || c->gcm_seal == NULL || key == NULL || nonce == NULL || tag == NULL ||
        (aad == NULL && aad_len > 0u) || ((in == NULL || out == NULL) && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    return c->gcm_seal(c, key, nonce, aad, aad_len, in, len, out, tag);
}

OTAUP_RAMFUNC int otaup_aead_open(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[OTAUP_GCM_TAG_LEN])
{
    if (c == NULL || c->gcm_open == NULL || key == NULL || nonce == NULL || tag == NULL ||
        (aad == NULL && aad_len > 0u) || ((in == NULL || out == NULL) && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    return c->gcm_open(c, key, nonce, aad, aad_len, in, len, out, tag);
}

int otaup_key_id(const otaup_crypto *c, const uint8_t pub[OTAUP_P256_PUB_LEN], uint8_t id[OTAUP_KEY_ID_LEN])
{
    uint8_t d[OTAUP_SHA256_LEN];
    int rc;
    if (pub == NULL || id == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_sha256(c, pub, OTAUP_P256_PUB_LEN, d);
    if (rc == 0) {
        memcpy(id, d, OTAUP_KEY_ID_LEN);
    }
    return rc;
}

int otaup_geometry_digest(const otaup_crypto *c, const otaup_geometry *geo, uint8_t out[OTAUP_SHA256_LEN])
{
    uint8_t enc[10u + 8u * OTAUP_MAX_SECTOR_RUNS];
    size_t n = 0;
    unsigned i;
    if (geo == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    if (otaup_geometry_check(geo) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    sec_put32(enc, geo->base);
    sec_put32(enc + 4, geo->write_size);
    enc[8] = geo->erased;
    enc[9] = geo->nruns;
    n = 10;
    for (i = 0; i < geo->nruns; i++) {
        sec_put32(enc + n, geo->runs[i].count);
        sec_put32(enc + n + 4, geo->runs[i].size);
        n += 8;
    }
    return otaup_sha256(c, enc, n, out);
}
