/*
 * Manifests: encode/parse round trip, signatures, every byte flip and every
 * truncation refused, malformed fields, segment table, golden bytes.
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

static otaup_key *key_a, *key_b;
static otaup_sec_key trusted_a, trusted_b;
static otaup_chain_seg segs[3];

static void setup(void)
{
    if (key_a == NULL) {
        ck_assert_int_eq(otaup_key_generate(&key_a), 0);
        ck_assert_int_eq(otaup_key_generate(&key_b), 0);
        ck_assert_int_eq(otaup_key_public(key_a, trusted_a.pub), 0);
        ck_assert_int_eq(otaup_key_public(key_b, trusted_b.pub), 0);
    }
}

static void base_manifest(otaup_manifest *m)
{
    unsigned i;
    memset(m, 0, sizeof *m);
    m->model = (const uint8_t *)"acme-meter-3";
    m->model_len = 12;
    m->version = 0x00020001;
    m->build_time = 1700000000ull;
    m->counter = 7;
    m->has_source = 1;
    m->source.addr = 0x08020000u;
    m->source.len = 100000;
    sectest_fill(m->source_hash, 32, 1);
    m->target.addr = 0x08020000u;
    m->target.len = 101234;
    sectest_fill(m->target_hash, 32, 2);
    m->slot.addr = 0x08020000u;
    m->slot.len = 0x20000u;
    m->layout = OTAUP_LAYOUT_INPLACE;
    sectest_fill(m->geometry_digest, 32, 3);
    m->chain_alg = OTAUP_CHAIN_SHA256;
    m->tag_len = 16;
    sectest_fill(m->salt, 16, 4);
    m->nsteps = 25;
    m->nseg = 3;
    for (i = 0; i < 3; i++) {
        segs[i].first_step = i * 10;
        sectest_fill(segs[i].tag, 32, 10 + i);
    }
    m->segs = segs;
}

START_TEST(test_roundtrip)
{
    otaup_manifest m, p;
    uint8_t tag[32];
    size_t len;
    uint8_t *buf;
    base_manifest(&m);
    m.policy = OTAUP_POLICY_ALLOW_DOWNGRADE;
    m.has_delta = 1;
    sectest_fill(m.delta_hash, 32, 5);
    m.note = (const uint8_t *)"release 2.1";
    m.note_len = 11;
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_uint_eq(p.model_len, 12);
    ck_assert_mem_eq(p.model, "acme-meter-3", 12);
    ck_assert_uint_eq(p.version, m.version);
    ck_assert_uint_eq(p.build_time, m.build_time);
    ck_assert_uint_eq(p.counter, 7);
    ck_assert_uint_eq(p.policy, OTAUP_POLICY_ALLOW_DOWNGRADE);
    ck_assert_uint_eq(p.has_source, 1);
    ck_assert_uint_eq(p.source.addr, m.source.addr);
    ck_assert_uint_eq(p.source.len, m.source.len);
    ck_assert_mem_eq(p.source_hash, m.source_hash, 32);
    ck_assert_uint_eq(p.target.len, m.target.len);
    ck_assert_mem_eq(p.target_hash, m.target_hash, 32);
    ck_assert_uint_eq(p.slot.len, m.slot.len);
    ck_assert_uint_eq(p.layout, OTAUP_LAYOUT_INPLACE);
    ck_assert_mem_eq(p.geometry_digest, m.geometry_digest, 32);
    ck_assert_uint_eq(p.has_delta, 1);
    ck_assert_mem_eq(p.delta_hash, m.delta_hash, 32);
    ck_assert_uint_eq(p.tag_len, 16);
    ck_assert_mem_eq(p.salt, m.salt, 16);
    ck_assert_uint_eq(p.nsteps, 25);
    ck_assert_uint_eq(p.nseg, 3);
    ck_assert_uint_eq(p.note_len, 11);
    ck_assert_uint_eq(p.nsigs, 0);
    /* segment lookup */
    ck_assert_int_eq(otaup_manifest_segment(&p, 10, tag), 0);
    ck_assert_mem_eq(tag, segs[1].tag, 16);
    ck_assert_int_eq(otaup_manifest_segment(&p, 20, tag), 0);
    ck_assert_mem_eq(tag, segs[2].tag, 16);
    ck_assert_int_eq(otaup_manifest_segment(&p, 5, tag), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_manifest_segment(&p, 30, tag), OTAUP_E_NOT_FOUND);
    free(buf);

    /* without the optional fields */
    base_manifest(&m);
    m.has_source = 0;
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_uint_eq(p.has_source, 0);
    ck_assert_uint_eq(p.has_delta, 0);
    ck_assert_uint_eq(p.policy, 0);
    ck_assert_ptr_null(p.note);
    free(buf);
}
END_TEST

START_TEST(test_encode_refuses)
{
    otaup_manifest m;
    uint8_t buf[1024];
    base_manifest(&m);
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, 50), OTAUP_E_BUFFER);
    m.model_len = 0;
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
    base_manifest(&m);
    m.tag_len = 7;
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
    base_manifest(&m);
    m.layout = 3;
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
    base_manifest(&m);
    segs[1].first_step = 0; /* not increasing */
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
    base_manifest(&m);
    segs[2].first_step = 25; /* beyond the last step */
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
    base_manifest(&m);
    m.policy = 2;
    ck_assert_int_eq(otaup_manifest_encode(&m, buf, sizeof buf), OTAUP_E_INVAL);
}
END_TEST

START_TEST(test_signatures)
{
    const otaup_crypto *c = sectest_crypto();
    otaup_manifest m, p;
    otaup_sec_key both[2];
    size_t len, len2;
    uint8_t *buf, *two;
    setup();
    both[0] = trusted_b;
    both[1] = trusted_a;
    base_manifest(&m);
    buf = sectest_manifest(&m, key_a, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_uint_eq(p.nsigs, 1);
    ck_assert_int_eq(otaup_manifest_verify(c, buf, &p, &trusted_a, 1), 0);
    ck_assert_int_eq(otaup_manifest_verify(c, buf, &p, both, 2), 1);
    ck_assert_int_eq(otaup_manifest_verify(c, buf, &p, &trusted_b, 1), OTAUP_E_KEY);
    ck_assert_int_eq(otaup_manifest_verify(c, buf, &p, NULL, 0), OTAUP_E_KEY);
    /* a second signature by another key: either key alone accepts it */
    two = sectest_sign(buf, len, key_b, &len2);
    ck_assert_int_eq(otaup_manifest_parse(two, len2, &p), 0);
    ck_assert_uint_eq(p.nsigs, 2);
    ck_assert_int_eq(otaup_manifest_verify(c, two, &p, &trusted_b, 1), 0);
    ck_assert_int_eq(otaup_manifest_verify(c, two, &p, &trusted_a, 1), 0);
    /* a key id that names a trusted key but a signature made by another key */
    memcpy(two + len2 - 64, buf + len - 64, 64); /* b's entry now carries a's signature */
    ck_assert_int_eq(otaup_manifest_verify(c, two, &p, &trusted_b, 1), OTAUP_E_SIGNATURE);
    free(two);
    free(buf);
    /* unsigned */
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_int_eq(otaup_manifest_verify(c, buf, &p, &trusted_a, 1), OTAUP_E_UNSIGNED);
    free(buf);
}
END_TEST

/* every byte flip and every truncation of a signed manifest is refused */
START_TEST(test_every_flip_and_cut)
{
    const otaup_crypto *c = sectest_crypto();
    otaup_manifest m, p;
    size_t len, i;
    uint8_t *buf, *copy;
    setup();
    base_manifest(&m);
    buf = sectest_manifest(&m, key_a, &len);
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        int rc;
        memcpy(copy, buf, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        rc = otaup_manifest_parse(copy, len, &p);
        if (rc == 0) {
            rc = otaup_manifest_verify(c, copy, &p, &trusted_a, 1);
        }
        ck_assert_msg(rc < 0, "flip of byte %zu accepted", i);
    }
    for (i = 0; i < len; i++) {
        ck_assert_msg(otaup_manifest_parse(buf, i, &p) < 0, "cut at %zu accepted", i);
    }
    /* the same bytes plus one */
    memcpy(copy, buf, len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    free(copy);
    copy = malloc(len + 1);
    memcpy(copy, buf, len);
    copy[len] = 0;
    ck_assert_int_eq(otaup_manifest_parse(copy, len + 1, &p), OTAUP_E_MANIFEST);
    free(copy);
    free(buf);
}
END_TEST

/* build a body by hand: [type][len][value]... inside an envelope */
static size_t envelope(uint8_t *out, const uint8_t *body, size_t blen)
{
    memcpy(out, "OTMF\x01\x00", 6);
    out[6] = (uint8_t)blen;
    out[7] = (uint8_t)(blen >> 8);
    memcpy(out + 8, body, blen);
    out[8 + blen] = 0;
    out[9 + blen] = 0;
    return 10 + blen;
}

/* the encoded body of base_manifest, to edit */
static size_t base_body(uint8_t *body)
{
    otaup_manifest m;
    uint8_t buf[1024];
    int n;
    base_manifest(&m);
    n = otaup_manifest_encode(&m, buf, sizeof buf);
    ck_assert_int_gt(n, 10);
    memcpy(body, buf + 8, (size_t)n - 10);
    return (size_t)n - 10;
}

START_TEST(test_malformed)
{
    uint8_t body[1024], env[1100];
    otaup_manifest p;
    size_t bl, n;

    bl = base_body(body);
    n = envelope(env, body, bl);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), 0);

    env[4] = 2; /* newer version */
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_UNSUPPORTED);
    env[4] = 0;
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    env[4] = 1;
    env[5] = 1; /* flags */
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    env[5] = 0;
    env[0] = 'X';
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    env[0] = 'O';
    /* a signature area that is not whole entries */
    env[8 + bl] = 10;
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    env[8 + bl] = 0;

    /* unknown informational field at the end: accepted; critical: refused */
    memcpy(body + bl, "\x90\x02hi", 4);
    n = envelope(env, body, bl + 4);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), 0);
    memcpy(body + bl, "\x7f\x02hi", 4);
    n = envelope(env, body, bl + 4);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    /* a field out of order (MODEL again at the end) */
    memcpy(body + bl, "\x01\x02hi", 4);
    n = envelope(env, body, bl + 4);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    /* a length that runs past the body */
    memcpy(body + bl, "\x90\x09hi", 4);
    n = envelope(env, body, bl + 4);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    /* an overlong varint length */
    memcpy(body + bl, "\x90\x82\x00hi", 5);
    n = envelope(env, body, bl + 5);
    ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);

    /* a required field missing: drop MODEL (the first field) */
    {
        size_t skip = 2 + body[1];
        n = envelope(env, body + skip, bl - skip);
        ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
    }
    /* VERSION with a wrong length: body = MODEL, then VERSION 12 bytes -> say 11 */
    {
        size_t off = 2 + body[1];
        ck_assert_uint_eq(body[off], OTAUP_MF_VERSION);
        body[off + 1] = 11;
        n = envelope(env, body, bl);
        ck_assert_int_eq(otaup_manifest_parse(env, n, &p), OTAUP_E_MANIFEST);
        body[off + 1] = 12;
    }
    /* every single-byte change of the body either parses or gives a specific error */
    {
        size_t i;
        for (i = 0; i < bl; i++) {
            int rc;
            uint8_t save = body[i];
            body[i] = (uint8_t)(save + 0x41);
            n = envelope(env, body, bl);
            rc = otaup_manifest_parse(env, n, &p);
            ck_assert_msg(rc == 0 || rc == OTAUP_E_MANIFEST, "byte %zu gave %d", i, rc);
            body[i] = save;
        }
    }
}
END_TEST

START_TEST(test_chain_field_limits)
{
    otaup_manifest m, p;
    uint8_t *buf;
    size_t len;
    base_manifest(&m);
    m.nsteps = 0;
    m.nseg = 0;
    m.segs = NULL;
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_uint_eq(p.nsteps, 0);
    free(buf);
    base_manifest(&m);
    m.tag_len = 32;
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    ck_assert_uint_eq(p.tag_len, 32);
    free(buf);
    base_manifest(&m);
    m.tag_len = 8;
    buf = sectest_manifest(&m, NULL, &len);
    ck_assert_int_eq(otaup_manifest_parse(buf, len, &p), 0);
    free(buf);
}
END_TEST

/*
 * Golden bytes: a manifest signed with the fixed test key (deterministic
 * ECDSA) must equal tests/vectors/security/manifest-v1.bin byte for byte.
 */
START_TEST(test_golden)
{
    const char *dir = getenv("OTAUP_VECTORS");
    char path[1024];
    uint8_t pem[1024], want[1024];
    FILE *f;
    size_t pl, wl, len;
    otaup_key *k = NULL;
    otaup_manifest m, p;
    otaup_sec_key tk;
    uint8_t *buf;

    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/security/test-key.pem", dir);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "missing %s", path);
    pl = fread(pem, 1, sizeof pem, f);
    fclose(f);
    ck_assert_int_eq(otaup_key_parse(pem, pl, &k), 0);
    base_manifest(&m);
    buf = sectest_manifest(&m, k, &len);
    snprintf(path, sizeof path, "%s/security/manifest-v1.bin", dir);
    if (getenv("OTAUP_REGEN_VECTORS") != NULL) {
        f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(buf, 1, len, f);
        fclose(f);
    }
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "missing %s", path);
    wl = fread(want, 1, sizeof want, f);
    fclose(f);
    ck_assert_uint_eq(wl, len);
    ck_assert_mem_eq(want, buf, len);
    ck_assert_int_eq(otaup_manifest_parse(want, wl, &p), 0);
    ck_assert_int_eq(otaup_key_public(k, tk.pub), 0);
    ck_assert_int_eq(otaup_manifest_verify(sectest_crypto(), want, &p, &tk, 1), 0);
    free(buf);
    otaup_key_free(k);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("manifest");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_encode_refuses);
    tcase_add_test(tc, test_signatures);
    tcase_add_test(tc, test_every_flip_and_cut);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_chain_field_limits);
    tcase_add_test(tc, test_golden);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
