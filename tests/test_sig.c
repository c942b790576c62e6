/*
 * Block signatures: server-side creation, the terminal's streaming
 * computation over flash callbacks (any chunk and buffer size), the
 * hardened parser on damaged input.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

static uint8_t flash_mem[65536];
static int reads_failing;

static int mem_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    if (reads_failing) {
        return OTAUP_E_FLASH_READ;
    }
    memcpy(buf, flash_mem + (addr - f->geo.base), len);
    return 0;
}

static void make_flash(otaup_flash *f)
{
    memset(f, 0, sizeof *f);
    otaup_geometry_uniform(&f->geo, 0x1000, 4096, 16, 4);
    f->read = mem_read;
}

static void fill(uint32_t seed)
{
    size_t i;
    for (i = 0; i < sizeof flash_mem; i++) {
        seed = seed * 1103515245u + 12345u;
        flash_mem[i] = (uint8_t)(seed >> 16);
    }
}

START_TEST(test_create_parse)
{
    uint8_t *sig = NULL;
    size_t len = 0;
    otaup_sig s;
    uint8_t h[16];
    fill(1);
    ck_assert_int_eq(otaup_sig_create(flash_mem, 10000, 0x01020304u, 1700000000u, 1024, &sig, &len), 0);
    ck_assert_uint_eq(len, OTAUP_SIG_SIZE(10000u, 1024u));
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), 0);
    ck_assert_uint_eq(s.info.version, 0x01020304u);
    ck_assert_uint_eq(s.info.build_time, 1700000000u);
    ck_assert_uint_eq(s.info.size, 10000);
    ck_assert_uint_eq(s.nblocks, 10);
    ck_assert(otaup_sig_block_hash(&s, 9) == otaup_sig_entry(flash_mem + 9216, 784));
    ck_assert(otaup_sig_block_hash(&s, 0) == otaup_sig_entry(flash_mem, 1024));
    /* the entry: rolling sum below, the XXH3-64 high half above */
    ck_assert_uint_eq((uint32_t)otaup_sig_block_hash(&s, 0), otaup_sig_roll(flash_mem, 1024));
    ck_assert_uint_eq(otaup_sig_block_hash(&s, 0) >> 32, otaup_hash64(flash_mem, 1024) >> 32);
    ck_assert(otaup_sig_block_hash(&s, 10) == 0);
    otaup_hash128(flash_mem, 10000, h);
    ck_assert_int_eq(memcmp(h, s.info.hash, 16), 0);
    free(sig);
    ck_assert_int_eq(otaup_sig_create(flash_mem, 100, 0, 0, 1000, &sig, &len), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_sig_create(flash_mem, 100, 0, 0, 32, &sig, &len), OTAUP_E_INVAL);
}
END_TEST

/* The rolling sum: golden values (the format), the definition as a sum of
 * powers, and the one-byte slide the server relies on. */
START_TEST(test_rolling_sum)
{
    static const uint8_t abc[3] = { 'a', 'b', 'c' };
    uint8_t seq[256];
    uint32_t i, k, len, mlen;
    for (i = 0; i < 256; i++) {
        seq[i] = (uint8_t)i;
    }
    ck_assert_uint_eq(otaup_sig_roll(abc, 3), 0x87B006E6u);
    ck_assert_uint_eq(otaup_sig_roll(seq, 256), 0x3B6ACF80u);
    ck_assert_uint_eq(otaup_sig_roll(seq, 0), 0);
    fill(11);
    for (len = 64; len <= 4096; len *= 4) {
        uint32_t r, ref = 0, pw = 1;
        /* r = sum b[i] * M^(len-1-i), the powers built from the last byte back */
        for (i = len; i-- > 0;) {
            ref += flash_mem[i] * pw;
            pw *= OTAUP_SIG_ROLL_MUL;
        }
        mlen = pw; /* M^len */
        r = otaup_sig_roll(flash_mem, len);
        ck_assert_uint_eq(r, ref);
        ck_assert_uint_eq((uint32_t)otaup_sig_entry(flash_mem, len), r);
        ck_assert_uint_eq(otaup_sig_entry(flash_mem, len) >> 32, otaup_hash64(flash_mem, len) >> 32);
        for (k = 0; k < 3000; k++) {
            r = r * OTAUP_SIG_ROLL_MUL - flash_mem[k] * mlen + flash_mem[k + len];
            ck_assert_uint_eq(r, otaup_sig_roll(flash_mem + k + 1, len));
        }
    }
}
END_TEST

/* A format version 1 signature (from a terminal built before the rolling
 * sum) is refused as unsupported, not as damaged. */
START_TEST(test_version_1)
{
    uint8_t *sig = NULL;
    size_t len = 0;
    otaup_sig s;
    uint64_t h;
    int i;
    fill(5);
    ck_assert_int_eq(otaup_sig_create(flash_mem, 3000, 1, 2, 256, &sig, &len), 0);
    ck_assert_uint_eq(sig[8], OTAUP_SIG_FORMAT_VERSION);
    ck_assert_uint_eq(OTAUP_SIG_FORMAT_VERSION, 2);
    sig[8] = 1;
    h = otaup_hash64(sig, 56);
    for (i = 0; i < 8; i++) {
        sig[56 + i] = (uint8_t)(h >> (8 * i));
    }
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), OTAUP_E_UNSUPPORTED);
    sig[8] = 0;
    h = otaup_hash64(sig, 56);
    for (i = 0; i < 8; i++) {
        sig[56 + i] = (uint8_t)(h >> (8 * i));
    }
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), OTAUP_E_SIG_FORMAT);
    free(sig);
}
END_TEST

START_TEST(test_empty_image)
{
    uint8_t *sig = NULL;
    size_t len = 0;
    otaup_sig s;
    ck_assert_int_eq(otaup_sig_create(flash_mem, 0, 1, 2, 4096, &sig, &len), 0);
    ck_assert_uint_eq(len, OTAUP_SIG_HEADER_SIZE + 8u);
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), 0);
    ck_assert_uint_eq(s.nblocks, 0);
    free(sig);
}
END_TEST

/* The terminal's streaming computation gives the same bytes as the server's,
 * for every read buffer size and output chunk size tried. */
START_TEST(test_terminal_stream)
{
    static const uint32_t sizes[] = { 0, 1, 63, 64, 65, 4096, 10007, 65536 };
    static const uint32_t bufs[] = { 1, 7, 64, 1000, 4096 };
    static const size_t chunks[] = { 1, 3, 8, 64, 100000 };
    otaup_flash f;
    size_t si, bi, ci;
    make_flash(&f);
    fill(7);
    for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        uint8_t *ref = NULL;
        size_t ref_len = 0;
        uint32_t bs = sizes[si] > 5000 ? 1024 : 64;
        ck_assert_int_eq(otaup_sig_create(flash_mem, sizes[si], 5, 6, bs, &ref, &ref_len), 0);
        for (bi = 0; bi < sizeof bufs / sizeof bufs[0]; bi++) {
            for (ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
                otaup_sig_calc c;
                otaup_image_info info;
                uint8_t buf[4096], out[8192 + 1024];
                size_t got = 0;
                int n;
                memset(&info, 0, sizeof info);
                info.version = 5;
                info.build_time = 6;
                info.size = sizes[si];
                info.block_size = bs;
                ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x1000, &info, buf, bufs[bi]), 0);
                while ((n = otaup_sig_calc_read(&c, out + got, chunks[ci])) > 0) {
                    got += (size_t)n;
                    ck_assert_uint_le(got, sizeof out);
                }
                ck_assert_int_eq(n, 0);
                ck_assert_uint_eq(got, ref_len);
                ck_assert_int_eq(memcmp(out, ref, ref_len), 0);
            }
        }
        free(ref);
    }
}
END_TEST

START_TEST(test_terminal_errors)
{
    otaup_flash f;
    otaup_sig_calc c;
    otaup_image_info info;
    uint8_t buf[64], out[64];
    make_flash(&f);
    memset(&info, 0, sizeof info);
    info.size = 1000;
    info.block_size = 64;
    ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x1000 + 65536 - 999, &info, buf, 64), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x0FFF, &info, buf, 64), OTAUP_E_RANGE);
    info.block_size = 100;
    ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x1000, &info, buf, 64), OTAUP_E_INVAL);
    info.block_size = 64;
    reads_failing = 1;
    ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x1000, &info, buf, 64), OTAUP_E_FLASH_READ);
    reads_failing = 0;
    ck_assert_int_eq(otaup_sig_calc_begin(&c, &f, 0x1000, &info, buf, 64), 0);
    ck_assert_int_eq(otaup_sig_calc_read(&c, out, 64), 64);
    reads_failing = 1;
    ck_assert_int_eq(otaup_sig_calc_read(&c, out, 64), OTAUP_E_FLASH_READ);
    reads_failing = 0;
}
END_TEST

START_TEST(test_damage)
{
    uint8_t *sig = NULL;
    size_t len = 0, i;
    otaup_sig s;
    fill(3);
    ck_assert_int_eq(otaup_sig_create(flash_mem, 5000, 1, 2, 512, &sig, &len), 0);
    for (i = 0; i < len; i++) {
        ck_assert_int_lt(otaup_sig_parse(sig, i, &s), 0);
    }
    for (i = 0; i < len; i++) {
        int bit;
        for (bit = 0; bit < 8; bit++) {
            int rc;
            sig[i] ^= (uint8_t)(1u << bit);
            rc = otaup_sig_parse(sig, len, &s);
            ck_assert_msg(rc < 0, "flip at %zu bit %d accepted", i, bit);
            sig[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), 0);
    sig[8] = 9; /* newer format */
    ck_assert_int_eq(otaup_sig_parse(sig, len, &s), OTAUP_E_UNSUPPORTED);
    free(sig);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sig");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_create_parse);
    tcase_add_test(tc, test_rolling_sum);
    tcase_add_test(tc, test_version_1);
    tcase_add_test(tc, test_empty_image);
    tcase_add_test(tc, test_terminal_stream);
    tcase_add_test(tc, test_terminal_errors);
    tcase_add_test(tc, test_damage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
