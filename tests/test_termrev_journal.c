/*
 * Journal edge cases: a restore record written outside any session (the
 * applier accepts RESTORE_DATA then) must survive the compaction that
 * writes it and every later one; a journal area that ends at the top of
 * the address space; a flash whose erased value is 0x00, cut at every
 * flash operation of a session that compacts several times.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define SEC 512u

static otaup_simflash *mk(uint32_t base, uint32_t count, uint8_t erased)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, base, SEC, count, 8);
    o.geo.erased = erased;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    return s;
}

/* RESTORE BUSY as the very first record of a fresh journal (no session
 * ever): RAM and a fresh mount agree, and they still agree after the
 * sector fills and compacts. */
START_TEST(test_restore_outside_session_survives)
{
    otaup_simflash *s = mk(0, 4, 0xFF);
    const otaup_flash *f = otaup_simflash_flash(s);
    otaup_journal j, m;
    int i;
    ck_assert_int_eq(otaup_journal_mount(&j, f, 0, 2 * SEC), 0);
    ck_assert_int_eq(otaup_journal_restore(&j, 3, OTAUP_JRESTORE_BUSY), 0);
    ck_assert_uint_eq(j.st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_int_eq(otaup_journal_mount(&m, f, 0, 2 * SEC), 0);
    ck_assert_uint_eq(m.st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_uint_eq(m.st.restore_region, 3);
    ck_assert_uint_eq(m.st.session, OTAUP_JS_NONE);
    /* a switch (no session either) until the sector compacts, twice */
    for (i = 0; i < 40; i++) {
        ck_assert_int_eq(otaup_journal_switch(&j, (uint8_t)(i & 1)), 0);
        ck_assert_int_eq(otaup_journal_mount(&m, f, 0, 2 * SEC), 0);
        ck_assert_uint_eq(m.st.restore, OTAUP_JRESTORE_BUSY);
        ck_assert_uint_eq(m.st.restore_region, 3);
        ck_assert_uint_eq(m.st.boot_slot, (uint8_t)(i & 1));
    }
    ck_assert_uint_gt(j.st.seq, 2);
    /* the restore ends; a session begins (which starts with no restore) */
    ck_assert_int_eq(otaup_journal_restore(&j, 3, OTAUP_JRESTORE_DONE), 0);
    ck_assert_int_eq(otaup_journal_mount(&m, f, 0, 2 * SEC), 0);
    ck_assert_uint_eq(m.st.restore, OTAUP_JRESTORE_DONE);
    ck_assert_int_eq(otaup_journal_begin(&j, 5, 6, OTAUP_LAYOUT_AB, 0), 0);
    ck_assert_int_eq(otaup_journal_mount(&m, f, 0, 2 * SEC), 0);
    ck_assert_uint_eq(m.st.restore, OTAUP_JRESTORE_NONE);
    ck_assert_uint_eq(m.st.session, OTAUP_JS_ACTIVE);
    otaup_simflash_free(s);
}
END_TEST

/* A journal in the last two sectors of a map that ends at 2^32: mounts,
 * appends, compacts (wrapping from the last sector to the first) and
 * mounts again to the same state. */
START_TEST(test_journal_at_top)
{
    const uint32_t base = 0u - 4u * SEC;
    otaup_simflash *s = mk(base, 4, 0xFF);
    const otaup_flash *f = otaup_simflash_flash(s);
    otaup_journal j, m;
    uint32_t i;
    ck_assert_int_eq(otaup_journal_mount(&j, f, base + 2 * SEC, 2 * SEC), 0);
    ck_assert_int_eq(otaup_journal_begin(&j, 9, 10, OTAUP_LAYOUT_INPLACE, 0), 0);
    for (i = 0; i < 60; i++) {
        ck_assert_int_eq(otaup_journal_step_done(&j, i), 0);
    }
    ck_assert_uint_gt(j.st.seq, 3); /* both sectors were used, more than once */
    ck_assert_int_eq(otaup_journal_mount(&m, f, base + 2 * SEC, 2 * SEC), 0);
    ck_assert_uint_eq(m.st.session, OTAUP_JS_ACTIVE);
    ck_assert_uint_eq(m.st.next_step, 60);
    ck_assert_uint_eq(m.st.seq, j.st.seq);
    ck_assert_int_eq(otaup_journal_boot_slot(f, base + 2 * SEC, 2 * SEC), 0);
    /* the two sectors below are untouched */
    for (i = 0; i < 2 * SEC; i++) {
        ck_assert_uint_eq(otaup_simflash_data(s)[i], 0xFF);
    }
    otaup_simflash_free(s);
}
END_TEST

/* Erased value 0x00: a session of 40 records over 512-byte sectors (a
 * compaction every 15 records), cut (plain and torn) at every flash
 * operation: the mount gives the state before or after the record being
 * written, and the session then completes. */
static int script(otaup_journal *j, int i)
{
    if (i == 0) {
        return otaup_journal_begin(j, 3, 0xABCDull, OTAUP_LAYOUT_INPLACE, 0);
    }
    if (i == 1) {
        return otaup_journal_ponr(j);
    }
    if (i == 39) {
        return otaup_journal_end(j, 0);
    }
    if (i % 4 == 0) {
        return otaup_journal_scratch_sector(j, (uint32_t)i, 0x4000u, SEC, (uint32_t)i * 7u);
    }
    if (i % 4 == 2) {
        return otaup_journal_restore(j, 1, (uint8_t)(i % 8 == 2 ? OTAUP_JRESTORE_BUSY : OTAUP_JRESTORE_DONE));
    }
    return otaup_journal_step_done(j, (uint32_t)i);
}

static int run(otaup_journal *j, int from)
{
    int i;
    for (i = from; i < 40; i++) {
        if (script(j, i) != 0) {
            return i;
        }
    }
    return 40;
}

static void state_after(int n, otaup_journal_state *st, const otaup_flash *f)
{
    otaup_simflash *s = mk(0, 4, 0x00);
    otaup_journal j;
    (void)f;
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), 0, 2 * SEC), 0);
    ck_assert_int_eq(run(&j, 0) >= 0, 1);
    otaup_simflash_free(s);
    /* replay just n records on a fresh journal */
    s = mk(0, 4, 0x00);
    ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), 0, 2 * SEC), 0);
    {
        int i;
        for (i = 0; i < n; i++) {
            ck_assert_int_eq(script(&j, i), 0);
        }
    }
    *st = j.st;
    otaup_simflash_free(s);
}

static int same(const otaup_journal_state *a, const otaup_journal_state *b)
{
    return a->session == b->session && a->session_id == b->session_id && a->delta_id == b->delta_id &&
           a->ponr == b->ponr && a->next_step == b->next_step && a->scratch == b->scratch &&
           (a->scratch == 0 || (a->scratch_step == b->scratch_step && a->scratch_hash == b->scratch_hash &&
                                a->scratch_addr == b->scratch_addr && a->scratch_len == b->scratch_len)) &&
           a->restore == b->restore && a->restore_region == b->restore_region && a->result == b->result &&
           a->boot_slot == b->boot_slot;
}

START_TEST(test_erased_zero_cut_everywhere)
{
    otaup_simflash_stats sst;
    otaup_journal_state want[41];
    uint64_t total, n;
    int torn, k;
    {
        otaup_simflash *s = mk(0, 4, 0x00);
        otaup_journal j;
        ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(s), 0, 2 * SEC), 0);
        ck_assert_int_eq(run(&j, 0), 40);
        otaup_simflash_stats_get(s, &sst);
        total = sst.ops;
        ck_assert_uint_gt(j.st.seq, 2);
        otaup_simflash_free(s);
    }
    for (k = 0; k <= 40; k++) {
        state_after(k, &want[k], NULL);
    }
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1; n <= total; n++) {
            otaup_simflash *s = mk(0, 4, 0x00);
            const otaup_flash *f = otaup_simflash_flash(s);
            otaup_journal j;
            ck_assert_int_eq(otaup_journal_mount(&j, f, 0, 2 * SEC), 0);
            otaup_simflash_cut_after(s, n, torn);
            k = run(&j, 0);
            otaup_simflash_power_on(s);
            ck_assert_int_eq(otaup_journal_mount(&j, f, 0, 2 * SEC), 0);
            ck_assert_msg(same(&j.st, &want[k]) || (k < 40 && same(&j.st, &want[k + 1])),
                          "cut %d at op %llu, record %d", torn, (unsigned long long)n, k);
            if (k < 40) {
                k = same(&j.st, &want[k + 1]) ? k + 1 : k;
                ck_assert_int_eq(run(&j, k), 40);
                ck_assert_int_eq(otaup_journal_mount(&j, f, 0, 2 * SEC), 0);
                ck_assert(same(&j.st, &want[40]));
            }
            otaup_simflash_free(s);
        }
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("termrev_journal");
    TCase *tc = tcase_create("journal");
    tcase_add_test(tc, test_restore_outside_session_survives);
    tcase_add_test(tc, test_journal_at_top);
    tcase_add_test(tc, test_erased_zero_cut_everywhere);
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
