/*
 * otaup — the default crypto backend: mbedTLS 2.28 (Debian libmbedtls-dev).
 * SHA-256, ECDSA P-256 verify, AES-256-GCM, random bytes (CTR-DRBG seeded
 * from the platform entropy source on every call). Stateless: no global
 * state, no allocation besides what mbedTLS does for bignums.
 *
 * Firmware that builds this file against its own mbedTLS can define
 * OTAUP_MBEDTLS_NO_RANDOM to leave out `random` (and with it mbedTLS's
 * entropy and CTR-DRBG modules): terminals verify, they need no random bytes
 * unless they draw backup salts.
 */
#include <string.h>

#ifndef OTAUP_MBEDTLS_NO_RANDOM
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#endif
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/gcm.h>
#include <mbedtls/sha256.h>

#include "otaup/error.h"
#include "otaup/sign.h"

/* the state buffer must hold mbedTLS's SHA-256 context */
typedef char otaup_sha256_state_fits[sizeof(mbedtls_sha256_context) <= OTAUP_SHA256_STATE_MAX ? 1 : -1];

static mbedtls_sha256_context *hs(otaup_sha256_state *st)
{
    return (mbedtls_sha256_context *)(void *)st->u.bytes;
}

static int m_sha256_init(const otaup_crypto *c, otaup_sha256_state *st)
{
    (void)c;
    mbedtls_sha256_init(hs(st));
    return mbedtls_sha256_starts_ret(hs(st), 0) == 0 ? 0 : OTAUP_E_CRYPTO;
}

static int m_sha256_update(const otaup_crypto *c, otaup_sha256_state *st, const void *data, size_t len)
{
    (void)c;
    return mbedtls_sha256_update_ret(hs(st), data, len) == 0 ? 0 : OTAUP_E_CRYPTO;
}

static int m_sha256_final(const otaup_crypto *c, otaup_sha256_state *st, uint8_t out[OTAUP_SHA256_LEN])
{
    int rc;
    (void)c;
    rc = mbedtls_sha256_finish_ret(hs(st), out);
    mbedtls_sha256_free(hs(st));
    return rc == 0 ? 0 : OTAUP_E_CRYPTO;
}

static int m_p256_verify(const otaup_crypto *c, const uint8_t pub[OTAUP_P256_PUB_LEN],
                         const uint8_t digest[OTAUP_SHA256_LEN], const uint8_t sig[OTAUP_P256_SIG_LEN])
{
    mbedtls_ecp_group grp;
    mbedtls_ecp_point q;
    mbedtls_mpi r, s;
    int rc = OTAUP_E_CRYPTO;
    (void)c;
    mbedtls_ecp_group_init(&grp);
    mbedtls_ecp_point_init(&q);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    if (mbedtls_ecp_group_load(&grp, MBEDTLS_ECP_DP_SECP256R1) != 0) {
        goto out;
    }
    if (pub[0] != 0x04u || mbedtls_ecp_point_read_binary(&grp, &q, pub, OTAUP_P256_PUB_LEN) != 0 ||
        mbedtls_ecp_check_pubkey(&grp, &q) != 0) {
        rc = OTAUP_E_KEY;
        goto out;
    }
    if (mbedtls_mpi_read_binary(&r, sig, 32) != 0 || mbedtls_mpi_read_binary(&s, sig + 32, 32) != 0) {
        goto out;
    }
    rc = mbedtls_ecdsa_verify(&grp, digest, OTAUP_SHA256_LEN, &q, &r, &s) == 0 ? 0 : OTAUP_E_SIGNATURE;
out:
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    mbedtls_ecp_point_free(&q);
    mbedtls_ecp_group_free(&grp);
    return rc;
}

static int m_gcm_seal(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                      const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OTAUP_GCM_TAG_LEN])
{
    mbedtls_gcm_context g;
    int rc;
    (void)c;
    mbedtls_gcm_init(&g);
    rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0) {
        rc = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, len, nonce, OTAUP_GCM_NONCE_LEN, aad, aad_len,
                                       in, out, OTAUP_GCM_TAG_LEN, tag);
    }
    mbedtls_gcm_free(&g);
    return rc == 0 ? 0 : OTAUP_E_CRYPTO;
}

static int m_gcm_open(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                      const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                      const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[OTAUP_GCM_TAG_LEN])
{
    mbedtls_gcm_context g;
    int rc;
    (void)c;
    mbedtls_gcm_init(&g);
    rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc != 0) {
        mbedtls_gcm_free(&g);
        return OTAUP_E_CRYPTO;
    }
    rc = mbedtls_gcm_auth_decrypt(&g, len, nonce, OTAUP_GCM_NONCE_LEN, aad, aad_len, tag, OTAUP_GCM_TAG_LEN,
                                  in, out);
    mbedtls_gcm_free(&g);
    if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED) {
        return OTAUP_E_DECRYPT;
    }
    return rc == 0 ? 0 : OTAUP_E_CRYPTO;
}

#ifndef OTAUP_MBEDTLS_NO_RANDOM
static int m_random(const otaup_crypto *c, void *out, size_t len)
{
    static const unsigned char pers[] = "otaup random";
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    unsigned char *p = out;
    int rc;
    (void)c;
    mbedtls_entropy_init(&ent);
    mbedtls_ctr_drbg_init(&drbg);
    rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, pers, sizeof pers - 1);
    while (rc == 0 && len > 0) {
        size_t n = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        rc = mbedtls_ctr_drbg_random(&drbg, p, n);
        p += n;
        len -= n;
    }
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&ent);
    return rc == 0 ? 0 : OTAUP_E_CRYPTO;
}
#endif

int otaup_crypto_mbedtls(otaup_crypto *c)
{
    if (c == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(c, 0, sizeof *c);
    c->sha256_init = m_sha256_init;
    c->sha256_update = m_sha256_update;
    c->sha256_final = m_sha256_final;
    c->p256_verify = m_p256_verify;
    c->gcm_seal = m_gcm_seal;
    c->gcm_open = m_gcm_open;
#ifndef OTAUP_MBEDTLS_NO_RANDOM
    c->random = m_random;
#endif
    return 0;
}
