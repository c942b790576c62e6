/*
 * otaup — ECDSA P-256 signing keys through mbedTLS: generate, parse and
 * write PEM, sign digests deterministically (RFC 6979). Server side: keys
 * are allocated and wiped when freed.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

#include "otaup/error.h"
#include "otaup/sign.h"

struct otaup_key {
    mbedtls_pk_context pk;
    int has_private;
};

typedef struct rng {
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
} rng;

static int rng_init(rng *r)
{
    static const unsigned char pers[] = "otaup key";
    mbedtls_entropy_init(&r->ent);
    mbedtls_ctr_drbg_init(&r->drbg);
    return mbedtls_ctr_drbg_seed(&r->drbg, mbedtls_entropy_func, &r->ent, pers, sizeof pers - 1) == 0
               ? 0
               : OTAUP_E_CRYPTO;
}

static void rng_free(rng *r)
{
    mbedtls_ctr_drbg_free(&r->drbg);
    mbedtls_entropy_free(&r->ent);
}

static otaup_key *key_new(void)
{
    otaup_key *k = calloc(1, sizeof *k);
    if (k != NULL) {
        mbedtls_pk_init(&k->pk);
    }
    return k;
}

void otaup_key_free(otaup_key *k)
{
    if (k != NULL) {
        mbedtls_pk_free(&k->pk); /* zeroizes the key material */
        free(k);
    }
}

static int is_p256(const mbedtls_pk_context *pk)
{
    return mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY &&
           mbedtls_pk_ec(*pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1;
}

int otaup_key_generate(otaup_key **out)
{
    otaup_key *k;
    rng r;
    int rc;
    if (out == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    k = key_new();
    if (k == NULL) {
        return OTAUP_E_NOMEM;
    }
    rc = rng_init(&r);
    if (rc == 0 && mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
        rc = OTAUP_E_CRYPTO;
    }
    if (rc == 0 && mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(k->pk), mbedtls_ctr_drbg_random,
                                       &r.drbg) != 0) {
        rc = OTAUP_E_CRYPTO;
    }
    rng_free(&r);
    if (rc != 0) {
        otaup_key_free(k);
        return rc;
    }
    k->has_private = 1;
    *out = k;
    return 0;
}

int otaup_key_parse(const uint8_t *in, size_t len, otaup_key **out)
{
    otaup_key *k;
    unsigned char *copy;
    int rc;
    if (out == NULL || in == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    k = key_new();
    if (k == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (len == OTAUP_P256_PUB_LEN && in[0] == 0x04u) {
        /* raw uncompressed point */
        mbedtls_ecp_keypair *ec;
        if (mbedtls_pk_setup(&k->pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0) {
            otaup_key_free(k);
            return OTAUP_E_CRYPTO;
        }
        ec = mbedtls_pk_ec(k->pk);
        if (mbedtls_ecp_group_load(&ec->grp, MBEDTLS_ECP_DP_SECP256R1) != 0 ||
            mbedtls_ecp_point_read_binary(&ec->grp, &ec->Q, in, len) != 0 ||
            mbedtls_ecp_check_pubkey(&ec->grp, &ec->Q) != 0) {
            otaup_key_free(k);
            return OTAUP_E_KEY;
        }
        *out = k;
        return 0;
    }
    /* mbedTLS wants PEM text NUL-terminated and counted with the NUL */
    copy = malloc(len + 1);
    if (copy == NULL) {
        otaup_key_free(k);
        return OTAUP_E_NOMEM;
    }
    memcpy(copy, in, len);
    copy[len] = 0;
    {
        size_t n = (len > 0 && memchr(in, '-', len) != NULL) ? len + 1 : len;
        rc = mbedtls_pk_parse_key(&k->pk, copy, n, NULL, 0);
        if (rc == 0) {
            k->has_private = 1;
        } else {
            mbedtls_pk_free(&k->pk);
            mbedtls_pk_init(&k->pk);
            rc = mbedtls_pk_parse_public_key(&k->pk, copy, n);
        }
    }
    memset(copy, 0, len + 1);
    free(copy);
    if (rc != 0 || !is_p256(&k->pk)) {
        otaup_key_free(k);
        return OTAUP_E_KEY;
    }
    *out = k;
    return 0;
}

int otaup_key_has_private(const otaup_key *k)
{
    return k != NULL && k->has_private;
}

int otaup_key_public(const otaup_key *k, uint8_t pub[OTAUP_P256_PUB_LEN])
{
    size_t olen = 0;
    mbedtls_ecp_keypair *ec;
    if (k == NULL || pub == NULL) {
        return OTAUP_E_INVAL;
    }
    ec = mbedtls_pk_ec(k->pk);
    if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &olen, pub,
                                       OTAUP_P256_PUB_LEN) != 0 ||
        olen != OTAUP_P256_PUB_LEN) {
        return OTAUP_E_KEY;
    }
    return 0;
}

int otaup_key_write_pem(const otaup_key *k, int private_part, char *out, size_t cap)
{
    int rc;
    if (k == NULL || out == NULL || cap == 0) {
        return OTAUP_E_INVAL;
    }
    if (private_part && !k->has_private) {
        return OTAUP_E_KEY;
    }
    /* mbedtls_pk_write_*_pem writes the NUL; it needs the full capacity */
    rc = private_part ? mbedtls_pk_write_key_pem((mbedtls_pk_context *)&k->pk, (unsigned char *)out, cap)
                      : mbedtls_pk_write_pubkey_pem((mbedtls_pk_context *)&k->pk, (unsigned char *)out, cap);
    if (rc != 0) {
        return OTAUP_E_BUFFER;
    }
    return (int)strlen(out);
}

int otaup_key_sign(const otaup_key *k, const uint8_t digest[OTAUP_SHA256_LEN], uint8_t sig[OTAUP_P256_SIG_LEN])
{
    mbedtls_ecp_keypair *ec;
    mbedtls_mpi r, s;
    rng g;
    int rc;
    if (k == NULL || digest == NULL || sig == NULL) {
        return OTAUP_E_INVAL;
    }
    if (!k->has_private) {
        return OTAUP_E_KEY;
    }
    ec = mbedtls_pk_ec(k->pk);
    mbedtls_mpi_init(&r);
    mbedtls_mpi_init(&s);
    rc = rng_init(&g);
    if (rc == 0 && mbedtls_ecdsa_sign_det_ext(&ec->grp, &r, &s, &ec->d, digest, OTAUP_SHA256_LEN,
                                              MBEDTLS_MD_SHA256, mbedtls_ctr_drbg_random, &g.drbg) != 0) {
        rc = OTAUP_E_CRYPTO;
    }
    if (rc == 0 && (mbedtls_mpi_write_binary(&r, sig, 32) != 0 || mbedtls_mpi_write_binary(&s, sig + 32, 32) != 0)) {
        rc = OTAUP_E_CRYPTO;
    }
    rng_free(&g);
    mbedtls_mpi_free(&s);
    mbedtls_mpi_free(&r);
    return rc;
}
