/*
 * Crypto interface and mbedTLS backend (known-answer vectors), signing
 * keys, and sealed backup streams.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/sign.h"

#if OTAUP_HAVE_MBEDTLS
#include "util/sectest.h"

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    size_t i;
    for (i = 0; i + m <= n; i++) {
        if (memcmp(hay + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

static void unhex(const char *h, uint8_t *out)
{
    size_t i, n = strlen(h) / 2;
    for (i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(h + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void assert_hex(const uint8_t *got, const char *want)
{
    uint8_t w[64];
    size_t n = strlen(want) / 2;
    unhex(want, w);
    ck_assert_mem_eq(got, w, n);
}

START_TEST(test_sha256_vectors)
{
    const otaup_crypto *c = sectest_crypto();
    uint8_t d[32];
    otaup_sha256_state st;
    ck_assert_int_eq(otaup_sha256(c, "", 0, d), 0);
    assert_hex(d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(otaup_sha256(c, "abc", 3, d), 0);
    assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* the same through init/update/final in pieces */
    ck_assert_int_eq(c->sha256_init(c, &st), 0);
    ck_assert_int_eq(c->sha256_update(c, &st, "a", 1), 0);
    ck_assert_int_eq(c->sha256_update(c, &st, "bc", 2), 0);
    ck_assert_int_eq(c->sha256_final(c, &st, d), 0);
    assert_hex(d, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(otaup_sha256(NULL, "abc", 3, d), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_sha256(c, NULL, 3, d), OTAUP_E_INVAL);
}
END_TEST

START_TEST(test_hmac_vectors)
{
    const otaup_crypto *c = sectest_crypto();
    uint8_t d[32], key[131];
    static const char data6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    /* RFC 4231 test cases 2 and 6 */
    ck_assert_int_eq(otaup_hmac_sha256(c, (const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, d), 0);
    assert_hex(d, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof key);
    ck_assert_int_eq(otaup_hmac_sha256(c, key, sizeof key, data6, strlen(data6), d), 0);
    assert_hex(d, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}
END_TEST

START_TEST(test_gcm_vectors)
{
    const otaup_crypto *c = sectest_crypto();
    uint8_t key[32] = { 0 }, nonce[12] = { 0 }, p[16] = { 0 }, ct[16], tag[16], back[16];
    /* GCM specification, test cases 13 and 14 (AES-256, zero key and IV) */
    ck_assert_int_eq(otaup_aead_seal(c, key, nonce, NULL, 0, NULL, 0, NULL, tag), 0);
    assert_hex(tag, "530f8afbc74536b9a963b4f1c4cb738b");
    ck_assert_int_eq(otaup_aead_seal(c, key, nonce, NULL, 0, p, 16, ct, tag), 0);
    assert_hex(ct, "cea7403d4d606b6e074ec5d3baf39d18");
    assert_hex(tag, "d0d1c8a799996bf0265b98b5d48ab919");
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, NULL, 0, ct, 16, back, tag), 0);
    ck_assert_mem_eq(back, p, 16);
    /* every kind of change is refused */
    ct[3] ^= 1;
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, NULL, 0, ct, 16, back, tag), OTAUP_E_DECRYPT);
    ct[3] ^= 1;
    tag[15] ^= 0x80;
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, NULL, 0, ct, 16, back, tag), OTAUP_E_DECRYPT);
    tag[15] ^= 0x80;
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, (const uint8_t *)"x", 1, ct, 16, back, tag), OTAUP_E_DECRYPT);
    key[0] = 1;
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, NULL, 0, ct, 16, back, tag), OTAUP_E_DECRYPT);
    ck_assert_int_eq(otaup_aead_open(c, key, nonce, NULL, 0, NULL, 16, back, tag), OTAUP_E_INVAL);
}
END_TEST

START_TEST(test_random)
{
    const otaup_crypto *c = sectest_crypto();
    uint8_t a[64], b[64];
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    ck_assert_int_eq(c->random(c, a, sizeof a), 0);
    ck_assert_int_eq(c->random(c, b, sizeof b), 0);
    ck_assert_mem_ne(a, b, sizeof a);
}
END_TEST

START_TEST(test_keys)
{
    const otaup_crypto *c = sectest_crypto();
    otaup_key *k = NULL, *k2 = NULL, *pubk = NULL, *raw = NULL;
    uint8_t pub[65], pub2[65], d[32], sig[64], sig2[64];
    char pem[1024];
    int n;

    ck_assert_int_eq(otaup_key_generate(&k), 0);
    ck_assert_int_eq(otaup_key_has_private(k), 1);
    ck_assert_int_eq(otaup_key_public(k, pub), 0);
    ck_assert_uint_eq(pub[0], 0x04);
    ck_assert_int_eq(otaup_sha256(c, "message", 7, d), 0);
    ck_assert_int_eq(otaup_key_sign(k, d, sig), 0);
    ck_assert_int_eq(c->p256_verify(c, pub, d, sig), 0);
    /* deterministic (RFC 6979) */
    ck_assert_int_eq(otaup_key_sign(k, d, sig2), 0);
    ck_assert_mem_eq(sig, sig2, 64);
    /* a changed digest, signature or key does not verify */
    d[0] ^= 1;
    ck_assert_int_eq(c->p256_verify(c, pub, d, sig), OTAUP_E_SIGNATURE);
    d[0] ^= 1;
    sig[40] ^= 4;
    ck_assert_int_eq(c->p256_verify(c, pub, d, sig), OTAUP_E_SIGNATURE);
    sig[40] ^= 4;
    memset(sig2, 0, 64);
    ck_assert_int_eq(c->p256_verify(c, pub, d, sig2), OTAUP_E_SIGNATURE);
    memcpy(pub2, pub, 65);
    pub2[64] ^= 1; /* no longer on the curve */
    ck_assert_int_eq(c->p256_verify(c, pub2, d, sig), OTAUP_E_KEY);
    pub2[0] = 0x02;
    ck_assert_int_eq(c->p256_verify(c, pub2, d, sig), OTAUP_E_KEY);

    /* PEM round trips */
    n = otaup_key_write_pem(k, 1, pem, sizeof pem);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(pem, "PRIVATE KEY"));
    ck_assert_int_eq(otaup_key_parse((const uint8_t *)pem, (size_t)n, &k2), 0);
    ck_assert_int_eq(otaup_key_has_private(k2), 1);
    ck_assert_int_eq(otaup_key_public(k2, pub2), 0);
    ck_assert_mem_eq(pub, pub2, 65);
    n = otaup_key_write_pem(k, 0, pem, sizeof pem);
    ck_assert_int_gt(n, 0);
    ck_assert_ptr_nonnull(strstr(pem, "PUBLIC KEY"));
    ck_assert_int_eq(otaup_key_parse((const uint8_t *)pem, (size_t)n, &pubk), 0);
    ck_assert_int_eq(otaup_key_has_private(pubk), 0);
    ck_assert_int_eq(otaup_key_sign(pubk, d, sig2), OTAUP_E_KEY);
    ck_assert_int_eq(otaup_key_write_pem(pubk, 1, pem, sizeof pem), OTAUP_E_KEY);
    ck_assert_int_eq(otaup_key_write_pem(k, 1, pem, 10), OTAUP_E_BUFFER);
    ck_assert_int_eq(otaup_key_parse(pub, 65, &raw), 0);
    ck_assert_int_eq(otaup_key_public(raw, pub2), 0);
    ck_assert_mem_eq(pub, pub2, 65);
    /* garbage is not a key */
    {
        otaup_key *bad = (otaup_key *)1;
        ck_assert_int_eq(otaup_key_parse((const uint8_t *)"-----BEGIN nonsense", 19, &bad), OTAUP_E_KEY);
        ck_assert_ptr_null(bad);
        pub2[64] ^= 1;
        ck_assert_int_eq(otaup_key_parse(pub2, 65, &bad), OTAUP_E_KEY);
    }
    otaup_key_free(raw);
    otaup_key_free(pubk);
    otaup_key_free(k2);
    otaup_key_free(k);
    otaup_key_free(NULL);
}
END_TEST

START_TEST(test_geometry_digest)
{
    const otaup_crypto *c = sectest_crypto();
    otaup_geometry g;
    uint8_t a[32], b[32];
    otaup_geometry_uniform(&g, 0x08000000u, 4096, 256, 8);
    ck_assert_int_eq(otaup_geometry_digest(c, &g, a), 0);
    g.write_size = 4;
    ck_assert_int_eq(otaup_geometry_digest(c, &g, b), 0);
    ck_assert_mem_ne(a, b, 32);
    g.nruns = 0;
    ck_assert_int_eq(otaup_geometry_digest(c, &g, b), OTAUP_E_GEOMETRY);
}
END_TEST

/* ---- sealed backups ------------------------------------------------------ */

static size_t seal_all(const uint8_t *dk, uint32_t region, const uint8_t *plain, uint32_t len, uint32_t chunk,
                       uint32_t salt_seed, uint8_t *out)
{
    otaup_seal s;
    uint8_t salt[16];
    size_t pos = OTAUP_SEAL_HEADER_LEN;
    uint32_t done = 0;
    sectest_fill(salt, sizeof salt, salt_seed);
    ck_assert_int_eq(otaup_seal_begin(&s, sectest_crypto(), dk, region, len, chunk, salt, out), 0);
    do {
        uint32_t n = len - done < chunk ? len - done : chunk;
        int w = otaup_seal_chunk(&s, plain + done, n, out + pos);
        ck_assert_int_eq(w, (int)n + 16);
        pos += (size_t)w;
        done += n;
    } while (done < len);
    ck_assert_int_eq(otaup_seal_complete(&s), 1);
    ck_assert_int_eq(otaup_seal_chunk(&s, plain, 0, out + pos), OTAUP_E_INVAL);
    otaup_seal_wipe(&s);
    ck_assert_uint_eq(pos, OTAUP_SEAL_SIZE(len, chunk));
    return pos;
}

/* open everything; returns 0 or the first error; *complete tells if all chunks came */
static int open_all(const uint8_t *dk, uint32_t region, const uint8_t *sealed, size_t len, uint8_t *plain,
                    int *complete)
{
    otaup_seal s;
    size_t pos = OTAUP_SEAL_HEADER_LEN, out = 0;
    int rc = otaup_seal_open_begin(&s, sectest_crypto(), dk, region, sealed);
    *complete = 0;
    if (rc != 0) {
        return rc;
    }
    while (pos < len) {
        uint32_t n = otaup_seal_next_len(&s);
        if (n == 0 || n > len - pos) {
            return OTAUP_E_DECRYPT;
        }
        rc = otaup_seal_open_chunk(&s, sealed + pos, n, plain + out);
        if (rc < 0) {
            return rc;
        }
        out += (size_t)rc;
        pos += n;
    }
    *complete = otaup_seal_complete(&s);
    otaup_seal_wipe(&s);
    return 0;
}

START_TEST(test_seal_roundtrip)
{
    static const uint32_t sizes[] = { 0, 1, 15, 16, 64, 1000, 4096 };
    static const uint32_t chunks[] = { 16, 64, 100, 32768 };
    uint8_t dk[32], plain[4096], back[4096], sealed[16384];
    size_t i, j;
    sectest_fill(dk, sizeof dk, 7);
    sectest_fill(plain, sizeof plain, 8);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (j = 0; j < sizeof chunks / sizeof chunks[0]; j++) {
            int complete;
            size_t n = seal_all(dk, 3, plain, sizes[i], chunks[j], 9, sealed);
            memset(back, 0, sizeof back);
            ck_assert_msg(open_all(dk, 3, sealed, n, back, &complete) == 0, "size %u chunk %u", sizes[i], chunks[j]);
            ck_assert_int_eq(complete, 1);
            ck_assert_mem_eq(back, plain, sizes[i]);
            /* the plain text does not appear in the sealed bytes */
            if (sizes[i] >= 64) {
                ck_assert_int_eq(contains(sealed, n, plain + 20, 16), 0);
            }
        }
    }
}
END_TEST

START_TEST(test_seal_tamper)
{
    uint8_t dk[32], dk2[32], plain[300], back[300], sealed[1024], copy[1024];
    size_t n, i;
    int complete;
    sectest_fill(dk, sizeof dk, 1);
    sectest_fill(dk2, sizeof dk2, 2);
    sectest_fill(plain, sizeof plain, 3);
    n = seal_all(dk, 5, plain, sizeof plain, 64, 4, sealed);
    /* every single byte flip is refused */
    for (i = 0; i < n; i++) {
        int rc;
        memcpy(copy, sealed, n);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        rc = open_all(dk, 5, copy, n, back, &complete);
        ck_assert_msg(rc == OTAUP_E_DECRYPT || rc == OTAUP_E_REGION, "flip at %zu gave %d", i, rc);
    }
    /* swapped chunks */
    memcpy(copy, sealed, n);
    memcpy(copy + 32, sealed + 32 + 80, 80);
    memcpy(copy + 32 + 80, sealed + 32, 80);
    ck_assert_int_eq(open_all(dk, 5, copy, n, back, &complete), OTAUP_E_DECRYPT);
    /* truncation: never complete */
    ck_assert_int_eq(open_all(dk, 5, sealed, n - 30, back, &complete), OTAUP_E_DECRYPT);
    ck_assert_int_eq(open_all(dk, 5, sealed, 32 + 80, back, &complete), 0);
    ck_assert_int_eq(complete, 0);
    /* wrong key, wrong region */
    ck_assert_int_eq(open_all(dk2, 5, sealed, n, back, &complete), OTAUP_E_DECRYPT);
    ck_assert_int_eq(open_all(dk, 6, sealed, n, back, &complete), OTAUP_E_REGION);
    /* a chunk of another backup of the same region (other salt) is refused */
    {
        uint8_t other[1024];
        size_t m = seal_all(dk, 5, plain, sizeof plain, 64, 99, other);
        ck_assert_uint_eq(m, n);
        ck_assert_mem_ne(other + 32, sealed + 32, 80);
        memcpy(copy, sealed, n);
        memcpy(copy + 32 + 80, other + 32 + 80, 80);
        ck_assert_int_eq(open_all(dk, 5, copy, n, back, &complete), OTAUP_E_DECRYPT);
    }
    /* bad arguments */
    {
        otaup_seal s;
        uint8_t salt[16] = { 0 }, hdr[32];
        ck_assert_int_eq(otaup_seal_begin(&s, sectest_crypto(), dk, 1, 10, 8, salt, hdr), OTAUP_E_INVAL);
        ck_assert_int_eq(otaup_seal_begin(&s, sectest_crypto(), dk, 1, 10, 16, salt, hdr), 0);
        ck_assert_int_eq(otaup_seal_chunk(&s, plain, 11, copy), OTAUP_E_INVAL);
    }
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("sign");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_sha256_vectors);
    tcase_add_test(tc, test_hmac_vectors);
    tcase_add_test(tc, test_gcm_vectors);
    tcase_add_test(tc, test_random);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_geometry_digest);
    tcase_add_test(tc, test_seal_roundtrip);
    tcase_add_test(tc, test_seal_tamper);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
