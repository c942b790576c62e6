/*
 * Journal: records fold into the expected state, compaction moves between
 * sectors, and a power cut at every flash operation of a long record
 * sequence (plain and torn, and a second cut while continuing) always
 * mounts to the state before or after the record being written.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define JADDR 0x0000u
static uint32_t g_sector = 512; /* journal sector size of the next mk() */
#define JLEN (3u * g_sector)

static otaup_simflash *mk(uint32_t ws)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, g_sector, 8, ws);
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    return s;
}

/* The script: record i of a long session history. */
#define NREC 120
static int do_rec(otaup_journal *j, int i)
{
    if (i == 0) {
        return otaup_journal_begin(j, 77, 0x1122334455667788ull, OTAUP_LAYOUT_INPLACE, 0);
    }
    if (i == 1) {
        return otaup_journal_ponr(j);
    }
    if (i == NREC - 3) {
        return otaup_journal_switch(j, 1);
    }
    if (i == NREC - 2) {
        return otaup_journal_restore(j, 2, OTAUP_JRESTORE_DONE);
    }
    if (i == NREC - 1) {
        return otaup_journal_end(j, 0);
    }
    if (i % 3 == 2) {
        return otaup_journal_scratch_window(j, (uint32_t)i, 0x1000u + (uint32_t)i, 64, (uint64_t)i * 31u);
    }
    return otaup_journal_step_done(j, (uint32_t)i);
}

/* Model state after the first n records. */
static void model(int n, otaup_journal_state *st)
{
    int i;
    memset(st, 0, sizeof *st);
    for (i = 0; i < n; i++) {
        if (i == 0) {
            st->session = OTAUP_JS_ACTIVE;
            st->session_id = 77;
            st->delta_id = 0x1122334455667788ull;
            st->layout = OTAUP_LAYOUT_INPLACE;
        } else if (i == 1) {
            st->ponr = 1;
        } else if (i == NREC - 3) {
            st->boot_slot = 1;
        } else if (i == NREC - 2) {
            st->restore = OTAUP_JRESTORE_DONE;
            st->restore_region = 2;
        } else if (i == NREC - 1) {
            st->session = OTAUP_JS_ENDED;
            st->scratch = 0;
        } else if (i % 3 == 2) {
            st->scratch = OTAUP_JSCRATCH_WINDOW;
            st->scratch_step = (uint32_t)i;
            st->scratch_addr = 0x1000u + (uint32_t)i;
            st->scratch_len = 64;
            st->scratch_hash = (uint64_t)i * 31u;
        } else {
            st->next_step = (uint32_t)i + 1u;
            st->scratch = 0;
        }
    }
}

static int same(const otaup_journal_state *a, const otaup_journal_state *b)
{
    return a->session == b->session && a->session_id == b->session_id && a->delta_id == b->delta_id &&
           a->layout == b->layout && a->ponr == b->ponr && a->boot_slot == b->boot_slot &&
           a->next_step == b->next_step && a->scratch == b->scratch &&
           (a->scratch == 0 || (a->scratch_step == b->scratch_step && a->scratch_hash == b->scratch_hash &&
                                a->scratch_addr == b->scratch_addr)) &&
           a->restore == b->restore && a->result == b->result;
}

START_TEST(test_fold_and_compact)
{
    otaup_simflash *s = mk(4);
    otaup_journal j, j2;
    otaup_journal_state m;
    int i;
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), JADDR, JLEN), 0);
    ck_assert_uint_eq(j.st.session, OTAUP_JS_NONE);
    for (i = 0; i < NREC; i++) {
        ck_assert_int_eq(do_rec(&j, i), 0);
        model(i + 1, &m);
        ck_assert(same(&j.st, &m));
        ck_assert_int_eq(otaup_journal_mount(&j2, otaup_simflash_flash(s), JADDR, JLEN), 0);
        ck_assert_msg(same(&j2.st, &m), "remount after record %d", i);
    }
    /* 120 records of 32 bytes in 512-byte sectors: compaction happened */
    ck_assert(j.st.seq > 3);
    ck_assert_int_eq(otaup_journal_boot_slot(otaup_simflash_flash(s), JADDR, JLEN), 1);
    /* bad areas */
    ck_assert_int_eq(otaup_journal_mount(&j2, otaup_simflash_flash(s), 0, 512), OTAUP_E_GEOMETRY);
    ck_assert_int_eq(otaup_journal_mount(&j2, otaup_simflash_flash(s), 100, 1024), OTAUP_E_GEOMETRY);
    otaup_simflash_free(s);
}
END_TEST

/* A faulty read during a mount, after every record of the history: a
 * failed read makes the mount (and the boot decision) fail with
 * OTAUP_E_FLASH_READ instead of folding a shorter state; one wrong bit
 * changes nothing (a slot that reads neither valid nor erased is read
 * again), whichever read it hits: a header, a record, the first erased
 * slot. */
START_TEST(test_mount_read_faults)
{
    otaup_simflash *s = mk(4);
    const otaup_flash *f = otaup_simflash_flash(s);
    otaup_journal j, j2;
    otaup_journal_state m;
    otaup_simflash_stats st;
    uint64_t k, reads;
    int i;
    ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
    for (i = 0; i < NREC; i++) {
        ck_assert_int_eq(do_rec(&j, i), 0);
        model(i + 1, &m);
        otaup_simflash_stats_reset(s);
        ck_assert_int_eq(otaup_journal_mount(&j2, f, JADDR, JLEN), 0);
        otaup_simflash_stats_get(s, &st);
        reads = st.read_ops;
        ck_assert_uint_ge(reads, 2);
        for (k = 1; k <= reads; k++) {
            otaup_simflash_read_fault(s, k, OTAUP_SIMFLASH_RFAULT_FAIL);
            ck_assert_msg(otaup_journal_mount(&j2, f, JADDR, JLEN) == OTAUP_E_FLASH_READ,
                          "record %d, read %llu of the mount failed", i, (unsigned long long)k);
            otaup_simflash_read_fault(s, k, OTAUP_SIMFLASH_RFAULT_FLIP);
            ck_assert_int_eq(otaup_journal_mount(&j2, f, JADDR, JLEN), 0);
            ck_assert_msg(same(&j2.st, &m), "record %d, read %llu of the mount flipped a bit", i,
                          (unsigned long long)k);
            otaup_simflash_read_fault(s, k, OTAUP_SIMFLASH_RFAULT_FAIL);
            ck_assert_int_eq(otaup_journal_boot_slot(f, JADDR, JLEN), OTAUP_E_FLASH_READ);
            otaup_simflash_read_fault(s, k, OTAUP_SIMFLASH_RFAULT_FLIP);
            ck_assert_int_eq(otaup_journal_boot_slot(f, JADDR, JLEN), m.boot_slot);
        }
    }
    otaup_simflash_read_fault(s, 0, 0);
    otaup_simflash_free(s);
}
END_TEST

/* Run the script from record `from` on a mounted journal until a cut. */
static int run_until_cut(otaup_journal *j, int from)
{
    int i;
    for (i = from; i < NREC; i++) {
        int rc = do_rec(j, i);
        if (rc == OTAUP_E_POWER_CUT) {
            return i;
        }
        ck_assert_int_eq(rc, 0);
    }
    return NREC;
}

/* Flash operations of the whole script, uninterrupted. */
static uint64_t script_ops(uint32_t ws)
{
    otaup_simflash_stats st;
    otaup_simflash *s = mk(ws);
    otaup_journal j;
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), JADDR, JLEN), 0);
    ck_assert_int_eq(run_until_cut(&j, 0), NREC);
    otaup_simflash_stats_get(s, &st);
    otaup_simflash_free(s);
    return st.ops;
}

static void cut_all(uint32_t ws)
{
    uint64_t total = script_ops(ws), n;
    int torn, cases = 0;
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1; n <= total; n++) {
            otaup_simflash *s = mk(ws);
            const otaup_flash *f = otaup_simflash_flash(s);
            otaup_journal j;
            otaup_journal_state lo, hi;
            int k, k2;
            ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
            otaup_simflash_cut_after(s, n, torn);
            k = run_until_cut(&j, 0);
            otaup_simflash_power_on(s);
            ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
            model(k, &lo);
            model(k + 1 <= NREC ? k + 1 : NREC, &hi);
            ck_assert_msg(same(&j.st, &lo) || same(&j.st, &hi), "cut %d/%d at op %llu, record %d", torn,
                          (int)ws, (unsigned long long)n, k);
            if (k >= NREC) {
                otaup_simflash_free(s);
                continue;
            }
            /* continue from where the journal stands, with a second cut */
            k = same(&j.st, &hi) ? k + 1 : k;
            otaup_simflash_cut_after(s, 1 + n % 7, (int)(n & 1));
            k2 = run_until_cut(&j, k);
            otaup_simflash_power_on(s);
            ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
            model(k2, &lo);
            model(k2 + 1 <= NREC ? k2 + 1 : NREC, &hi);
            ck_assert(same(&j.st, &lo) || same(&j.st, &hi));
            k2 = same(&j.st, &hi) ? k2 + 1 : k2;
            ck_assert_int_eq(run_until_cut(&j, k2), NREC);
            ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
            model(NREC, &hi);
            ck_assert(same(&j.st, &hi));
            cases++;
            otaup_simflash_free(s);
        }
    }
    ck_assert(cases > 200);
}

START_TEST(test_cut_everywhere_ws4) { cut_all(4); }
END_TEST
START_TEST(test_cut_everywhere_ws16) { cut_all(16); }
END_TEST
START_TEST(test_cut_everywhere_ws64) { cut_all(64 > OTAUP_CONFIG_JOURNAL_SLOT_MAX ? 32 : 64); }
END_TEST

/* One failed flash operation, power staying on, at every operation of the
 * script (erase or program, torn or not): the caller gets the driver's
 * error and writes the record again, and from then on the journal in RAM
 * and a fresh mount of the flash agree with the model after every record.
 * (A failed append must not leave a hole that a later mount takes for the
 * end of the log, hiding the records written after it.) */
static void fail_all(uint32_t ws)
{
    uint64_t total = script_ops(ws), n;
    int torn;
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1; n <= total; n++) {
            otaup_simflash *s = mk(ws);
            const otaup_flash *f = otaup_simflash_flash(s);
            otaup_journal j, j2;
            otaup_journal_state m, m1;
            int i, failures = 0;
            ck_assert_int_eq(otaup_journal_mount(&j, f, JADDR, JLEN), 0);
            otaup_simflash_fail_after(s, n, torn);
            for (i = 0; i < NREC; i++) {
                int rc = do_rec(&j, i);
                if (rc != 0) {
                    ck_assert_msg(rc == OTAUP_E_FLASH_PROG || rc == OTAUP_E_FLASH_ERASE, "%s", otaup_strerror(rc));
                    failures++;
                    model(i, &m);
                    model(i + 1, &m1);
                    ck_assert(same(&j.st, &m));
                    ck_assert_int_eq(otaup_journal_mount(&j2, f, JADDR, JLEN), 0);
                    ck_assert_msg(same(&j2.st, &m) || same(&j2.st, &m1), "fail %d/%d at op %llu, record %d", torn,
                                  (int)ws, (unsigned long long)n, i);
                    rc = do_rec(&j, i);
                    ck_assert_msg(rc == 0, "record %d again: %s", i, otaup_strerror(rc));
                }
                model(i + 1, &m);
                ck_assert(same(&j.st, &m));
                ck_assert_int_eq(otaup_journal_mount(&j2, f, JADDR, JLEN), 0);
                ck_assert_msg(same(&j2.st, &m), "fail %d/%d at op %llu: remount after record %d", torn, (int)ws,
                              (unsigned long long)n, i);
            }
            ck_assert_int_eq(failures, 1);
            otaup_simflash_free(s);
        }
    }
}

START_TEST(test_failed_op_everywhere_ws4) { fail_all(4); }
END_TEST
START_TEST(test_failed_op_everywhere_ws16) { fail_all(16); }
END_TEST

/* Program units above 32 bytes: a slot is one unit, and a sector must hold
 * the header, the largest snapshot (6 records) and a free slot. Fewer than
 * 8 slots is refused at mount (a compaction would overflow into the next
 * sector); exactly 8 runs the whole script through every cut. */
START_TEST(test_large_units)
{
    otaup_simflash *s;
    otaup_journal j;
    uint32_t ws = 256 > OTAUP_CONFIG_JOURNAL_SLOT_MAX ? OTAUP_CONFIG_JOURNAL_SLOT_MAX : 256;
    g_sector = 4u * ws; /* 4 slots */
    s = mk(ws);
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), JADDR, JLEN), OTAUP_E_GEOMETRY);
    otaup_simflash_free(s);
    g_sector = 7u * ws; /* 7 slots (not a power of two: any sector size) */
    s = mk(ws);
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), JADDR, JLEN), OTAUP_E_GEOMETRY);
    otaup_simflash_free(s);
    g_sector = 8u * ws;
    cut_all(ws);
    g_sector = 512;
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_fold_and_compact);
    tcase_add_test(tc, test_mount_read_faults);
    tcase_add_test(tc, test_cut_everywhere_ws4);
    tcase_add_test(tc, test_cut_everywhere_ws16);
    tcase_add_test(tc, test_cut_everywhere_ws64);
    tcase_add_test(tc, test_failed_op_everywhere_ws4);
    tcase_add_test(tc, test_failed_op_everywhere_ws16);
    tcase_add_test(tc, test_large_units);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
