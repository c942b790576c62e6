/*
 * Fuzz target: the signing-key parser (otaup_key_parse: PEM or DER private
 * keys, SEC1 or PKCS#8, public keys, raw 65-byte points), which otaupd,
 * otaupctl, otaup and otaup-term run on key files given to them. Any
 * input is refused with OTAUP_E_KEY (or OTAUP_E_NOMEM) or accepted; an
 * accepted key must give its public point, write itself as PEM, and parse
 * back from that PEM to the same point (with its private part, which must
 * then sign). Any violation aborts. Without mbedTLS the target does
 * nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/features.h"
#include "otaup/otaup.h"
#include "otaup/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)          \
    do {                  \
        if (!(c)) {       \
            abort();      \
        }                 \
    } while (0)

#if OTAUP_HAVE_MBEDTLS
/* `k` written as PEM (private part or not) parses back to the point `pub`. */
static void round_trip(const otaup_key *k, int private_part, const uint8_t pub[OTAUP_P256_PUB_LEN])
{
    static char pem[4096];
    uint8_t pub2[OTAUP_P256_PUB_LEN];
    otaup_key *k2 = NULL;
    int n = otaup_key_write_pem(k, private_part, pem, sizeof pem);
    CHECK(n > 0 && (size_t)n < sizeof pem && pem[n] == '\0');
    CHECK(otaup_key_parse((const uint8_t *)pem, (size_t)n, &k2) == 0);
    CHECK(otaup_key_has_private(k2) == private_part);
    CHECK(otaup_key_public(k2, pub2) == 0);
    CHECK(memcmp(pub, pub2, sizeof pub2) == 0);
    otaup_key_free(k2);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_key *k = NULL;
    uint8_t pub[OTAUP_P256_PUB_LEN];
    int rc = otaup_key_parse(data, size, &k);
    if (rc != 0) {
        CHECK(rc == OTAUP_E_KEY || rc == OTAUP_E_NOMEM);
        CHECK(k == NULL);
        return 0;
    }
    CHECK(k != NULL);
    CHECK(otaup_key_public(k, pub) == 0);
    CHECK(pub[0] == 0x04);
    round_trip(k, 0, pub);
    if (otaup_key_has_private(k)) {
        static const uint8_t digest[OTAUP_SHA256_LEN] = { 1, 2, 3 };
        uint8_t sig[OTAUP_P256_SIG_LEN];
        round_trip(k, 1, pub);
        CHECK(otaup_key_sign(k, digest, sig) == 0);
    } else {
        static char pem[4096];
        CHECK(otaup_key_write_pem(k, 1, pem, sizeof pem) == OTAUP_E_KEY);
    }
    otaup_key_free(k);
#else
    (void)data;
    (void)size;
#endif
    return 0;
}
