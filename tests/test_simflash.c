/*
 * Simulated NOR flash: erase/program rules, granularity, power cut and
 * torn operations, logs, wear, timing, file backing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otaup/otaup.h"
#include "otaup/simflash.h"

static otaup_simflash *mk(uint32_t sector, uint32_t count, uint32_t ws)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0x1000, sector, count, ws);
    o.log_ops = 1;
    o.log_reads = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    return s;
}

START_TEST(test_rules)
{
    otaup_simflash *s = mk(1024, 4, 4);
    const otaup_flash *f = otaup_simflash_flash(s);
    uint8_t buf[16], rd[16];
    memset(buf, 0x5A, sizeof buf);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 16), 0);
    ck_assert_uint_eq(rd[0], 0xFF);
    ck_assert_int_eq(f->prog(f, 0x1000, buf, 16), 0);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 16), 0);
    ck_assert_mem_eq(rd, buf, 16);
    /* never twice between erases, even with the same data */
    ck_assert_int_eq(f->prog(f, 0x1000, buf, 4), OTAUP_E_NOT_ERASED);
    /* granularity */
    ck_assert_int_eq(f->prog(f, 0x1012, buf, 4), OTAUP_E_ALIGN);
    ck_assert_int_eq(f->prog(f, 0x1010, buf, 3), OTAUP_E_ALIGN);
    /* range */
    ck_assert_int_eq(f->prog(f, 0x1000 + 4096, buf, 4), OTAUP_E_RANGE);
    ck_assert_int_eq(f->read(f, 0xFFC, rd, 8), OTAUP_E_RANGE);
    /* erase: whole sectors only */
    ck_assert_int_eq(f->erase(f, 0x1000, 512), OTAUP_E_ALIGN);
    ck_assert_int_eq(f->erase(f, 0x1400, 1024), 0);
    ck_assert_int_eq(f->erase(f, 0x1000, 2048), 0);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 16), 0);
    ck_assert_uint_eq(rd[5], 0xFF);
    ck_assert_int_eq(f->prog(f, 0x1000, buf, 16), 0);
    ck_assert_uint_eq(otaup_simflash_wear(s, 0), 1);
    ck_assert_uint_eq(otaup_simflash_wear(s, 1), 2);
    {
        otaup_simflash_stats st;
        otaup_simflash_stats_get(s, &st);
        ck_assert_uint_eq(st.sectors_erased, 3);
        ck_assert_uint_eq(st.prog_ops, 2);
        ck_assert_uint_eq(st.bytes_programmed, 32);
        ck_assert_uint_eq(st.ops, 4);
        ck_assert(st.time_us > 3000);
    }
    otaup_simflash_free(s);
}
END_TEST

/* After a torn 64-byte program of zeros at `addr`: a prefix programmed,
 * at most one unit partial, the rest erased. Returns the prefix length. */
static size_t torn_prefix(const otaup_flash *f, uint32_t addr)
{
    uint8_t rd[64];
    size_t i, n0 = 0;
    ck_assert_int_eq(f->read(f, addr, rd, 64), 0);
    for (i = 0; i < 64 && rd[i] == 0; i++) {
        n0++;
    }
    ck_assert(n0 < 64);
    for (i = n0 + 1; i < 64; i++) {
        ck_assert_uint_eq(rd[i], 0xFF);
    }
    return n0;
}

START_TEST(test_cut)
{
    otaup_simflash *s = mk(1024, 4, 1);
    const otaup_flash *f = otaup_simflash_flash(s);
    uint8_t buf[64], rd[64];
    size_t i;
    memset(buf, 0, sizeof buf);
    otaup_simflash_cut_after(s, 2, 0);
    ck_assert_int_eq(f->prog(f, 0x1000, buf, 8), 0);
    ck_assert_int_eq(f->prog(f, 0x1008, buf, 8), 0); /* 2nd completes, power off after */
    ck_assert(otaup_simflash_is_cut(s));
    ck_assert_int_eq(f->prog(f, 0x1010, buf, 8), OTAUP_E_POWER_CUT);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 8), OTAUP_E_POWER_CUT);
    otaup_simflash_power_on(s);
    ck_assert_int_eq(f->read(f, 0x1010, rd, 8), 0);
    ck_assert_uint_eq(rd[0], 0xFF); /* third never happened */
    /* torn program: a prefix programmed, one unit partial, the rest erased */
    otaup_simflash_cut_after(s, 1, 1);
    ck_assert_int_eq(f->prog(f, 0x1400, buf, 64), OTAUP_E_POWER_CUT);
    otaup_simflash_power_on(s);
    (void)torn_prefix(f, 0x1400);
    /* torn erase: not fully erased afterwards (with overwhelming probability) */
    memset(buf, 0, sizeof buf);
    ck_assert_int_eq(f->erase(f, 0x1800, 1024), 0);
    for (i = 0; i < 1024; i += 64) {
        ck_assert_int_eq(f->prog(f, 0x1800 + (uint32_t)i, buf, 64), 0);
    }
    otaup_simflash_cut_after(s, 1, 1);
    ck_assert_int_eq(f->erase(f, 0x1800, 1024), OTAUP_E_POWER_CUT);
    otaup_simflash_power_on(s);
    {
        int zeros = 0, ones = 0;
        for (i = 0; i < 1024; i += 64) {
            ck_assert_int_eq(f->read(f, 0x1800 + (uint32_t)i, rd, 64), 0);
            zeros += rd[63] != 0xFF;
            ones += rd[0] == 0xFF;
        }
        ck_assert(zeros > 0);
        (void)ones;
    }
    /* log: every write is there, with the torn flags */
    {
        size_t n, k, torn = 0;
        const otaup_simflash_op *log = otaup_simflash_log(s, &n);
        for (k = 0; k < n; k++) {
            torn += log[k].torn;
        }
        ck_assert_uint_eq(torn, 2);
    }
    otaup_simflash_free(s);
}
END_TEST

/* One failed operation with power on: the failing call reports the
 * driver's code, changes nothing (or, torn, part of it), and the next
 * calls work. */
START_TEST(test_fail_once)
{
    otaup_simflash *s = mk(1024, 4, 1);
    const otaup_flash *f = otaup_simflash_flash(s);
    uint8_t buf[64], rd[64];
    size_t i, n, n0;
    const otaup_simflash_op *log;
    memset(buf, 0, sizeof buf);
    otaup_simflash_fail_after(s, 2, 0);
    ck_assert_int_eq(f->prog(f, 0x1000, buf, 8), 0);
    ck_assert_int_eq(f->prog(f, 0x1008, buf, 8), OTAUP_E_FLASH_PROG);
    ck_assert(!otaup_simflash_is_cut(s));
    ck_assert_int_eq(f->read(f, 0x1008, rd, 8), 0);
    for (i = 0; i < 8; i++) {
        ck_assert_uint_eq(rd[i], 0xFF); /* not done at all: can be programmed now */
    }
    ck_assert_int_eq(f->prog(f, 0x1008, buf, 8), 0);
    ck_assert_int_eq(f->prog(f, 0x1010, buf, 8), 0);
    /* an erase that fails leaves the sector as it was */
    otaup_simflash_fail_after(s, 1, 0);
    ck_assert_int_eq(f->erase(f, 0x1000, 1024), OTAUP_E_FLASH_ERASE);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 8), 0);
    ck_assert_uint_eq(rd[0], 0);
    ck_assert_int_eq(f->erase(f, 0x1000, 1024), 0);
    ck_assert_int_eq(f->read(f, 0x1000, rd, 8), 0);
    ck_assert_uint_eq(rd[0], 0xFF);
    /* torn: a prefix programmed, one unit partial, the rest erased */
    otaup_simflash_fail_after(s, 1, 1);
    ck_assert_int_eq(f->prog(f, 0x1400, buf, 64), OTAUP_E_FLASH_PROG);
    ck_assert(!otaup_simflash_is_cut(s));
    n0 = torn_prefix(f, 0x1400);
    /* a torn program consumed its units: programming them again is refused */
    ck_assert_int_eq(f->prog(f, 0x1400, buf, (uint32_t)n0 + 1u), OTAUP_E_NOT_ERASED);
    ck_assert_int_eq(f->erase(f, 0x1400, 1024), 0);
    ck_assert_int_eq(f->prog(f, 0x1400, buf, 64), 0);
    /* the log has both codes and the one torn operation */
    log = otaup_simflash_log(s, &n);
    {
        size_t torn = 0, fp = 0, fe = 0, k;
        for (k = 0; k < n; k++) {
            torn += log[k].torn;
            fp += log[k].kind == OTAUP_SIMFLASH_PROG && log[k].result == OTAUP_E_FLASH_PROG;
            fe += log[k].kind == OTAUP_SIMFLASH_ERASE && log[k].result == OTAUP_E_FLASH_ERASE;
        }
        ck_assert_uint_eq(torn, 1);
        ck_assert_uint_eq(fp, 2);
        ck_assert_uint_eq(fe, 1);
    }
    otaup_simflash_free(s);
}
END_TEST

/* One faulty read with power on: a failed read reports
 * OTAUP_E_FLASH_READ and leaves the buffer not holding the data; a flipped
 * read returns one wrong bit; the flash keeps its content and the next
 * reads are right. */
START_TEST(test_read_fault)
{
    otaup_simflash *s = mk(1024, 4, 1);
    const otaup_flash *f = otaup_simflash_flash(s);
    uint8_t buf[64], rd[64];
    size_t i, diff = 0, n, k, failed = 0;
    const otaup_simflash_op *log;
    otaup_simflash_stats st;
    for (i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)(i * 7u + 1u);
    }
    ck_assert_int_eq(f->prog(f, 0x1000, buf, sizeof buf), 0);
    otaup_simflash_read_fault(s, 2, OTAUP_SIMFLASH_RFAULT_FAIL);
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), 0);
    ck_assert_mem_eq(rd, buf, sizeof buf);
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), OTAUP_E_FLASH_READ);
    ck_assert(memcmp(rd, buf, sizeof buf) != 0);
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), 0);
    ck_assert_mem_eq(rd, buf, sizeof buf);
    /* a flip: exactly one bit differs, once */
    otaup_simflash_read_fault(s, 1, OTAUP_SIMFLASH_RFAULT_FLIP);
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), 0);
    for (i = 0; i < sizeof buf; i++) {
        uint8_t x = (uint8_t)(rd[i] ^ buf[i]);
        while (x != 0) {
            diff += x & 1u;
            x >>= 1;
        }
    }
    ck_assert_uint_eq(diff, 1);
    ck_assert_mem_eq(otaup_simflash_data(s), buf, sizeof buf); /* device offset 0 is 0x1000 */
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), 0);
    ck_assert_mem_eq(rd, buf, sizeof buf);
    /* disarmed: nothing happens */
    otaup_simflash_read_fault(s, 1, OTAUP_SIMFLASH_RFAULT_FAIL);
    otaup_simflash_read_fault(s, 0, OTAUP_SIMFLASH_RFAULT_FAIL);
    ck_assert_int_eq(f->read(f, 0x1000, rd, sizeof rd), 0);
    ck_assert_mem_eq(rd, buf, sizeof buf);
    otaup_simflash_stats_get(s, &st);
    ck_assert_uint_eq(st.read_ops, 6);
    log = otaup_simflash_log(s, &n);
    for (k = 0; k < n; k++) {
        failed += log[k].kind == OTAUP_SIMFLASH_READ && log[k].result == OTAUP_E_FLASH_READ && log[k].torn;
    }
    ck_assert_uint_eq(failed, 1);
    otaup_simflash_free(s);
}
END_TEST

START_TEST(test_stale_and_file)
{
    char path[] = "/tmp/otaup-simflash-XXXXXX";
    int fd = mkstemp(path);
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    const otaup_flash *f;
    uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, rd[8];
    ck_assert(fd >= 0);
    close(fd);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, 512, 4, 4);
    o.path = path;
    o.log_reads = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    f = otaup_simflash_flash(s);
    otaup_simflash_mark(s);
    ck_assert_int_eq(f->read(f, 0, rd, 8), 0);
    ck_assert_uint_eq(otaup_simflash_stale_reads(s), 0);
    ck_assert_int_eq(f->prog(f, 0, buf, 8), 0);
    ck_assert_int_eq(f->read(f, 4, rd, 4), 0);
    ck_assert_uint_eq(otaup_simflash_stale_reads(s), 1);
    otaup_simflash_cut_after(s, 1, 0);
    ck_assert_int_eq(f->prog(f, 512, buf, 8), 0);
    otaup_simflash_free(s);
    /* reopen: content survived, programmed units are not programmable */
    s = NULL;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    f = otaup_simflash_flash(s);
    ck_assert_int_eq(f->read(f, 512, rd, 8), 0);
    ck_assert_mem_eq(rd, buf, 8);
    ck_assert_int_eq(f->prog(f, 512, buf, 4), OTAUP_E_NOT_ERASED);
    ck_assert_int_eq(f->prog(f, 520, buf, 4), 0);
    otaup_simflash_free(s);
    unlink(path);
}
END_TEST

/* A flash whose erased value is 0x00: programming sets bits, and a torn
 * program only ever sets bits that the data sets. */
START_TEST(test_erased_zero)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    const otaup_flash *f;
    uint8_t buf[64], rd[64];
    uint32_t i, k;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, 1024, 4, 8);
    o.geo.erased = 0x00;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    f = otaup_simflash_flash(s);
    for (i = 0; i < sizeof buf; i++) {
        buf[i] = (uint8_t)(i * 37u + 0x5Au);
    }
    ck_assert_int_eq(f->read(f, 0, rd, 8), 0);
    ck_assert_uint_eq(rd[3], 0x00);
    ck_assert_int_eq(f->prog(f, 0, buf, sizeof buf), 0);
    ck_assert_int_eq(f->read(f, 0, rd, sizeof rd), 0);
    ck_assert_mem_eq(rd, buf, sizeof buf);
    ck_assert_int_eq(f->prog(f, 0, buf, 8), OTAUP_E_NOT_ERASED);
    ck_assert_int_eq(f->erase(f, 0, 1024), 0);
    ck_assert_int_eq(f->read(f, 0, rd, sizeof rd), 0);
    for (i = 0; i < sizeof rd; i++) {
        ck_assert_uint_eq(rd[i], 0x00);
    }
    /* torn: a subset of the data's bits, never others */
    for (k = 0; k < 8; k++) {
        ck_assert_int_eq(f->erase(f, 1024, 1024), 0);
        otaup_simflash_cut_after(s, 1, 1);
        ck_assert_int_eq(f->prog(f, 1024, buf, sizeof buf), OTAUP_E_POWER_CUT);
        otaup_simflash_power_on(s);
        ck_assert_int_eq(f->read(f, 1024, rd, sizeof rd), 0);
        for (i = 0; i < sizeof rd; i++) {
            ck_assert_uint_eq(rd[i] & (uint8_t)~buf[i], 0);
        }
    }
    otaup_simflash_free(s);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("simflash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rules);
    tcase_add_test(tc, test_cut);
    tcase_add_test(tc, test_fail_once);
    tcase_add_test(tc, test_read_fault);
    tcase_add_test(tc, test_stale_and_file);
    tcase_add_test(tc, test_erased_zero);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
