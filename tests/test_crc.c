/*
 * The terminal's CRCs against references: otaup_journal_crc32() (the
 * 16-entry-table CRC-32 that journal records, sector images and, in small
 * builds, frames use) against zlib's crc32() for every length 0..1500,
 * random data and random chaining; otaup_crc8() (the frame header check,
 * a table on the host, bit by bit in small builds) against a bitwise
 * reference written here; and frames sealed and decoded by the codec
 * against a CRC-32 computed by zlib, whichever variant this build uses
 * (tests/run.sh builds both: gcc with the fast ones, clang with
 * OTAUP_SMALL=ON).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/error.h"
#include "otaup/journal.h"
#include "otaup/proto.h"

static uint64_t rng = 0x243F6A8885A308D3u;

static uint8_t next8(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint8_t)(rng >> 24);
}

static uint8_t ref_crc8(uint8_t crc, const uint8_t *p, size_t n)
{
    size_t i;
    int k;
    for (i = 0; i < n; i++) {
        crc ^= p[i];
        for (k = 0; k < 8; k++) {
            crc = (uint8_t)(crc & 0x80u ? (unsigned)(crc << 1) ^ 0x07u : (unsigned)(crc << 1));
        }
    }
    return crc;
}

START_TEST(crc32_check_value)
{
    ck_assert_uint_eq(otaup_journal_crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(otaup_journal_crc32(0, NULL, 0), 0u);
}
END_TEST

START_TEST(crc32_against_zlib)
{
    static uint8_t buf[1500];
    size_t n, i;
    for (i = 0; i < sizeof buf; i++) {
        buf[i] = next8();
    }
    for (n = 0; n <= sizeof buf; n++) {
        uint32_t want = (uint32_t)crc32(0uL, buf, (uInt)n);
        uint32_t c = 0;
        size_t off = 0;
        ck_assert_uint_eq(otaup_journal_crc32(0, buf, n), want);
        while (off < n) { /* continued in random pieces */
            size_t k = (size_t)next8() % 97u;
            if (k > n - off) {
                k = n - off;
            }
            c = otaup_journal_crc32(c, buf + off, k);
            off += k;
        }
        ck_assert_uint_eq(c, want);
    }
    memset(buf, 0xFF, sizeof buf);
    ck_assert_uint_eq(otaup_journal_crc32(0, buf, sizeof buf), (uint32_t)crc32(0uL, buf, sizeof buf));
}
END_TEST

START_TEST(crc8_against_reference)
{
    static uint8_t buf[300];
    size_t n, i;
    unsigned init;
    ck_assert_uint_eq(otaup_crc8(0, (const uint8_t *)"123456789", 9), 0xF4u);
    for (i = 0; i < sizeof buf; i++) {
        buf[i] = next8();
    }
    for (init = 0; init < 256; init += 51) {
        for (n = 0; n <= sizeof buf; n++) {
            ck_assert_uint_eq(otaup_crc8((uint8_t)init, buf, n), ref_crc8((uint8_t)init, buf, n));
        }
    }
}
END_TEST

START_TEST(frames_carry_zlib_crc32)
{
    static uint8_t payload[1024], frame[1024 + OTAUP_FRAME_OVERHEAD];
    otaup_frame fr;
    size_t n, i;
    for (i = 0; i < sizeof payload; i++) {
        payload[i] = next8();
    }
    for (n = 1; n <= sizeof payload; n += 37) {
        uint32_t crc;
        int len = otaup_frame_encode(OTAUP_MSG_BATCH, 0, (uint32_t)n, payload, n, frame, sizeof frame);
        ck_assert_int_eq(len, (int)(n + OTAUP_FRAME_OVERHEAD));
        crc = (uint32_t)crc32(0uL, frame, (uInt)(n + OTAUP_FRAME_HEADER_SIZE));
        ck_assert_uint_eq(frame[n + 12] | frame[n + 13] << 8 | frame[n + 14] << 16 | (uint32_t)frame[n + 15] << 24,
                          crc);
        ck_assert_uint_eq(frame[5], ref_crc8(ref_crc8(0, frame, 5), frame + 6, 6));
        ck_assert_int_eq(otaup_frame_decode(frame, (size_t)len, 65536, &fr), 0);
        /* a frame whose CRC zlib computed over other bytes is refused */
        frame[OTAUP_FRAME_HEADER_SIZE] ^= 0x01u;
        ck_assert_int_eq(otaup_frame_decode(frame, (size_t)len, 65536, &fr), OTAUP_E_FRAME_CRC);
        crc = (uint32_t)crc32(0uL, frame, (uInt)(n + OTAUP_FRAME_HEADER_SIZE));
        for (i = 0; i < 4; i++) {
            frame[n + 12 + i] = (uint8_t)(crc >> (8 * i));
        }
        ck_assert_int_eq(otaup_frame_decode(frame, (size_t)len, 65536, &fr), 0);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("crc");
    TCase *t = tcase_create("known answers");
    tcase_add_test(t, crc32_check_value);
    tcase_add_test(t, crc32_against_zlib);
    tcase_add_test(t, crc8_against_reference);
    tcase_add_test(t, frames_carry_zlib_crc32);
    suite_add_tcase(s, t);
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
