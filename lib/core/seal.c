/*
 * otaup — sealed backups of user-data regions (docs/security.md §7):
 * AES-256-GCM per chunk under a per-backup key derived from the device
 * key. C99, no heap, no OS.
 */
#include <string.h>

#include "core/sec_util.h"
#include "otaup/error.h"
#include "otaup/sign.h"

static const char seal_label[] = "otaup-backup-v1";

OTAUP_RAMFUNC static int derive_key(otaup_seal *s, const uint8_t device_key[OTAUP_AES256_KEY_LEN], const uint8_t *salt)
{
    uint8_t info[sizeof seal_label - 1 + OTAUP_SEAL_SALT_LEN + 4];
    int rc;
    memcpy(info, seal_label, sizeof seal_label - 1);
    memcpy(info + sizeof seal_label - 1, salt, OTAUP_SEAL_SALT_LEN);
    sec_put32(info + sizeof seal_label - 1 + OTAUP_SEAL_SALT_LEN, s->region);
    rc = otaup_hmac_sha256(s->crypto, device_key, OTAUP_AES256_KEY_LEN, info, sizeof info, s->key);
    memset(info, 0, sizeof info);
    return rc;
}

OTAUP_RAMFUNC static uint32_t chunks_of(const otaup_seal *s)
{
    return s->total == 0u ? 1u : (uint32_t)(((uint64_t)s->total + s->chunk - 1u) / s->chunk);
}

/* plain length of the next chunk */
OTAUP_RAMFUNC static uint32_t next_plain(const otaup_seal *s)
{
    uint32_t left = s->total - s->done;
    return left < s->chunk ? left : s->chunk;
}

OTAUP_RAMFUNC static void chunk_params(const otaup_seal *s, uint8_t nonce[OTAUP_GCM_NONCE_LEN], uint8_t aad[OTAUP_SEAL_HEADER_LEN + 5])
{
    memset(nonce, 0, OTAUP_GCM_NONCE_LEN);
    sec_put32(nonce, s->index);
    memcpy(aad, s->header, OTAUP_SEAL_HEADER_LEN);
    sec_put32(aad + OTAUP_SEAL_HEADER_LEN, s->index);
    aad[OTAUP_SEAL_HEADER_LEN + 4] = (uint8_t)(s->index + 1u == chunks_of(s) ? 1u : 0u);
}

OTAUP_RAMFUNC int otaup_seal_begin(otaup_seal *s, const otaup_crypto *c, const uint8_t device_key[OTAUP_AES256_KEY_LEN],
                     uint32_t region, uint32_t total, uint32_t chunk,
                     const uint8_t salt[OTAUP_SEAL_SALT_LEN], uint8_t header_out[OTAUP_SEAL_HEADER_LEN])
{
    int rc;
    if (s == NULL || c == NULL || device_key == NULL || salt == NULL || header_out == NULL ||
        chunk < OTAUP_SEAL_CHUNK_MIN || chunk > OTAUP_SEAL_CHUNK_MAX) {
        return OTAUP_E_INVAL;
    }
    memset(s, 0, sizeof *s);
    s->crypto = c;
    s->region = region;
    s->total = total;
    s->chunk = chunk;
    memcpy(s->header, OTAUP_SEAL_MAGIC, 4);
    s->header[4] = OTAUP_SEAL_VERSION;
    s->header[5] = 0;
    sec_put16(s->header + 6, (uint16_t)(chunk == 32768u ? 0u : chunk)); /* 0 stands for 32768 */
    sec_put32(s->header + 8, region);
    sec_put32(s->header + 12, total);
    memcpy(s->header + 16, salt, OTAUP_SEAL_SALT_LEN);
    rc = derive_key(s, device_key, salt);
    if (rc != 0) {
        otaup_seal_wipe(s);
        return rc;
    }
    memcpy(header_out, s->header, OTAUP_SEAL_HEADER_LEN);
    return 0;
}

OTAUP_RAMFUNC int otaup_seal_chunk(otaup_seal *s, const uint8_t *in, uint32_t len, uint8_t *out)
{
    uint8_t nonce[OTAUP_GCM_NONCE_LEN], aad[OTAUP_SEAL_HEADER_LEN + 5];
    int rc;
    if (s == NULL || s->crypto == NULL || s->opening || out == NULL || (in == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (s->index >= chunks_of(s) || len != next_plain(s)) {
        return OTAUP_E_INVAL;
    }
    chunk_params(s, nonce, aad);
    rc = otaup_aead_seal(s->crypto, s->key, nonce, aad, sizeof aad, in, len, out, out + len);
    if (rc != 0) {
        return rc;
    }
    s->index++;
    s->done += len;
    return (int)(len + OTAUP_GCM_TAG_LEN);
}

OTAUP_RAMFUNC int otaup_seal_open_begin(otaup_seal *s, const otaup_crypto *c, const uint8_t device_key[OTAUP_AES256_KEY_LEN],
                          uint32_t region, const uint8_t header[OTAUP_SEAL_HEADER_LEN])
{
    uint32_t chunk;
    int rc;
    if (s == NULL || c == NULL || device_key == NULL || header == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(s, 0, sizeof *s);
    if (memcmp(header, OTAUP_SEAL_MAGIC, 4) != 0 || header[4] != OTAUP_SEAL_VERSION || header[5] != 0u) {
        return OTAUP_E_DECRYPT;
    }
    chunk = sec_le16(header + 6);
    if (chunk == 0u) {
        chunk = 32768u;
    }
    if (chunk < OTAUP_SEAL_CHUNK_MIN) {
        return OTAUP_E_DECRYPT;
    }
    if (sec_le32(header + 8) != region) {
        return OTAUP_E_REGION;
    }
    s->crypto = c;
    s->region = region;
    s->total = sec_le32(header + 12);
    s->chunk = chunk;
    s->opening = 1;
    memcpy(s->header, header, OTAUP_SEAL_HEADER_LEN);
    rc = derive_key(s, device_key, header + 16);
    if (rc != 0) {
        otaup_seal_wipe(s);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_seal_open_detached(otaup_seal *s, const uint8_t *in, uint32_t len,
                                           const uint8_t tag[OTAUP_GCM_TAG_LEN], uint8_t *out)
{
    uint8_t nonce[OTAUP_GCM_NONCE_LEN], aad[OTAUP_SEAL_HEADER_LEN + 5];
    uint32_t plain;
    int rc;
    if (s == NULL || s->crypto == NULL || !s->opening || tag == NULL || ((in == NULL || out == NULL) && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (s->index >= chunks_of(s)) {
        return OTAUP_E_DECRYPT; /* more chunks than the header announced */
    }
    plain = next_plain(s);
    if (len != plain) {
        return OTAUP_E_DECRYPT;
    }
    chunk_params(s, nonce, aad);
    rc = otaup_aead_open(s->crypto, s->key, nonce, aad, sizeof aad, in, plain, out, tag);
    if (rc != 0) {
        return rc;
    }
    s->index++;
    s->done += plain;
    return (int)plain;
}

OTAUP_RAMFUNC int otaup_seal_open_chunk(otaup_seal *s, const uint8_t *in, uint32_t len, uint8_t *out)
{
    if (s == NULL || s->crypto == NULL || !s->opening || in == NULL || (out == NULL && len > OTAUP_GCM_TAG_LEN)) {
        return OTAUP_E_INVAL;
    }
    if (len < OTAUP_GCM_TAG_LEN) {
        return OTAUP_E_DECRYPT;
    }
    return otaup_seal_open_detached(s, in, len - OTAUP_GCM_TAG_LEN, in + len - OTAUP_GCM_TAG_LEN, out);
}

OTAUP_RAMFUNC int otaup_seal_seek(otaup_seal *s, uint32_t index)
{
    if (s == NULL || s->crypto == NULL || s->opening || index >= chunks_of(s)) {
        return OTAUP_E_INVAL;
    }
    s->index = index;
    s->done = index * s->chunk; /* < total: index is not past the last chunk */
    return 0;
}

OTAUP_RAMFUNC int otaup_seal_complete(const otaup_seal *s)
{
    return s != NULL && s->crypto != NULL && s->index == chunks_of(s);
}

OTAUP_RAMFUNC uint32_t otaup_seal_next_len(const otaup_seal *s)
{
    if (s == NULL || s->crypto == NULL || s->index >= chunks_of(s)) {
        return 0;
    }
    return next_plain(s) + OTAUP_GCM_TAG_LEN;
}

OTAUP_RAMFUNC void otaup_seal_wipe(otaup_seal *s)
{
    if (s != NULL) {
        volatile uint8_t *p = s->key;
        size_t i;
        for (i = 0; i < sizeof s->key; i++) {
            p[i] = 0;
        }
    }
}
