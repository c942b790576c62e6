/*
 * otaup — registry crypto (AES-256-GCM through mbedTLS when built with it).
 */
#include "server/regcrypt.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/features.h"

#if OTAUP_HAVE_MBEDTLS
#include <mbedtls/gcm.h>
#endif

int otaup_regcrypt_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return OTAUP_E_IO;
    }
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) {
            close(fd);
            return OTAUP_E_IO;
        }
        p += n;
        len -= (size_t)n;
    }
    close(fd);
    return 0;
}

void otaup_regcrypt_wipe(void *buf, size_t len)
{
    volatile uint8_t *p = buf;
    while (len-- > 0) {
        *p++ = 0;
    }
}

void otaup_regcrypt_hash128_bytes(uint64_t low, uint64_t high, uint8_t out[16])
{
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(low >> (8 * i));
        out[8 + i] = (uint8_t)(high >> (8 * i));
    }
}

/* associated data: a label, the terminal id, and (backups) the region */
static size_t make_aad(uint8_t *aad, size_t cap, const char *label, const char *terminal,
                       int with_region, uint32_t region)
{
    size_t n = 0, l = strlen(label) + 1, t = strlen(terminal) + 1;
    if (l + t + 4 > cap) {
        return 0;
    }
    memcpy(aad, label, l);
    n += l;
    memcpy(aad + n, terminal, t);
    n += t;
    if (with_region) {
        aad[n++] = (uint8_t)region;
        aad[n++] = (uint8_t)(region >> 8);
        aad[n++] = (uint8_t)(region >> 16);
        aad[n++] = (uint8_t)(region >> 24);
    }
    return n;
}

#if OTAUP_HAVE_MBEDTLS
static int gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                    size_t len, uint8_t *out)
{
    mbedtls_gcm_context g;
    int rc = otaup_regcrypt_random(out, OTAUP_REGCRYPT_NONCE);
    if (rc < 0) {
        return rc;
    }
    mbedtls_gcm_init(&g);
    rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc == 0) {
        rc = mbedtls_gcm_crypt_and_tag(&g, MBEDTLS_GCM_ENCRYPT, len, out, OTAUP_REGCRYPT_NONCE, aad,
                                       aad_len, plain, out + OTAUP_REGCRYPT_NONCE, OTAUP_REGCRYPT_TAG,
                                       out + OTAUP_REGCRYPT_NONCE + len);
    }
    mbedtls_gcm_free(&g);
    return rc == 0 ? 0 : OTAUP_E_CRYPTO;
}

static int gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *in,
                    size_t len, uint8_t *out)
{
    mbedtls_gcm_context g;
    size_t n;
    int rc;
    if (len < OTAUP_REGCRYPT_OVERHEAD) {
        return OTAUP_E_DECRYPT;
    }
    n = len - OTAUP_REGCRYPT_OVERHEAD;
    mbedtls_gcm_init(&g);
    rc = mbedtls_gcm_setkey(&g, MBEDTLS_CIPHER_ID_AES, key, 256);
    if (rc != 0) {
        mbedtls_gcm_free(&g);
        return OTAUP_E_CRYPTO;
    }
    rc = mbedtls_gcm_auth_decrypt(&g, n, in, OTAUP_REGCRYPT_NONCE, aad, aad_len,
                                  in + OTAUP_REGCRYPT_NONCE + n, OTAUP_REGCRYPT_TAG,
                                  in + OTAUP_REGCRYPT_NONCE, out);
    mbedtls_gcm_free(&g);
    if (rc != 0) {
        otaup_regcrypt_wipe(out, n);
        return OTAUP_E_DECRYPT;
    }
    return 0;
}
#else
static int gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *plain,
                    size_t len, uint8_t *out)
{
    (void)key, (void)aad, (void)aad_len, (void)plain, (void)len, (void)out;
    return OTAUP_E_UNSUPPORTED;
}
static int gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len, const uint8_t *in,
                    size_t len, uint8_t *out)
{
    (void)key, (void)aad, (void)aad_len, (void)in, (void)len, (void)out;
    return OTAUP_E_UNSUPPORTED;
}
#endif

int otaup_regcrypt_wrap(const uint8_t master[32], const char *terminal, const uint8_t key[32],
                        uint8_t *out)
{
    uint8_t aad[128];
    size_t n = make_aad(aad, sizeof aad, "otaup-terminal-key", terminal, 0, 0);
    return n == 0 ? OTAUP_E_INVAL : gcm_seal(master, aad, n, key, 32, out);
}

int otaup_regcrypt_unwrap(const uint8_t master[32], const char *terminal, const uint8_t *in,
                          size_t len, uint8_t key[32])
{
    uint8_t aad[128];
    size_t n = make_aad(aad, sizeof aad, "otaup-terminal-key", terminal, 0, 0);
    if (n == 0) {
        return OTAUP_E_INVAL;
    }
    if (len != OTAUP_REGCRYPT_WRAPPED_LEN) {
        return OTAUP_E_DECRYPT;
    }
    return gcm_open(master, aad, n, in, len, key);
}

int otaup_regcrypt_seal(const uint8_t key[32], const char *terminal, uint32_t region,
                        const uint8_t *plain, size_t len, uint8_t *out)
{
    uint8_t aad[128];
    size_t n = make_aad(aad, sizeof aad, "otaup-backup", terminal, 1, region);
    return n == 0 ? OTAUP_E_INVAL : gcm_seal(key, aad, n, plain, len, out);
}

int otaup_regcrypt_open(const uint8_t key[32], const char *terminal, uint32_t region,
                        const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t aad[128];
    size_t n = make_aad(aad, sizeof aad, "otaup-backup", terminal, 1, region);
    return n == 0 ? OTAUP_E_INVAL : gcm_open(key, aad, n, in, len, out);
}
