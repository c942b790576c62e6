/*
 * Flash geometry: invariants, uniform and non-uniform maps, lookups.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

/* STM32F4-like: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB at 0x08000000 */
static void f4(otaup_geometry *g)
{
    memset(g, 0, sizeof *g);
    g->base = 0x08000000u;
    g->write_size = 4;
    g->erased = 0xFF;
    g->nruns = 3;
    g->runs[0].count = 4;  g->runs[0].size = 16384;
    g->runs[1].count = 1;  g->runs[1].size = 65536;
    g->runs[2].count = 7;  g->runs[2].size = 131072;
}

START_TEST(test_uniform)
{
    otaup_geometry g;
    uint32_t s, z;
    otaup_geometry_uniform(&g, 0x1000, 4096, 16, 8);
    ck_assert_int_eq(otaup_geometry_check(&g), 0);
    ck_assert_uint_eq(otaup_geometry_size(&g), 65536);
    ck_assert_uint_eq(otaup_geometry_sector_count(&g), 16);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0x1000 + 4096 * 3 + 7, &s, &z), 3);
    ck_assert_uint_eq(s, 0x1000 + 4096 * 3);
    ck_assert_uint_eq(z, 4096);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0xFFF, &s, &z), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0x1000 + 65536, &s, &z), OTAUP_E_RANGE);
}
END_TEST

START_TEST(test_nonuniform)
{
    otaup_geometry g;
    uint32_t s, z;
    f4(&g);
    ck_assert_int_eq(otaup_geometry_check(&g), 0);
    ck_assert_uint_eq(otaup_geometry_size(&g), 1024u * 1024u);
    ck_assert_uint_eq(otaup_geometry_sector_count(&g), 12);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0x08010000u, &s, &z), 4);
    ck_assert_uint_eq(z, 65536);
    ck_assert_int_eq(otaup_geometry_sector_at(&g, 0x08020000u + 131072u * 2 + 5, &s, &z), 7);
    ck_assert_uint_eq(s, 0x08020000u + 131072u * 2);
    ck_assert_int_eq(otaup_geometry_sector(&g, 11, &s, &z), 0);
    ck_assert_uint_eq(s + z, 0x08100000u);
    ck_assert_int_eq(otaup_geometry_sector(&g, 12, &s, &z), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, 0x08000000u, 0x10000u), 1);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, 0x08000000u, 0x10001u), 0);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, 0x08010000u, 0xF0000u), 1);
    ck_assert_int_eq(otaup_geometry_is_sector_aligned(&g, 0x08004000u, 0x2000u), 0);
}
END_TEST

START_TEST(test_invalid)
{
    otaup_geometry g;
    f4(&g);
    g.write_size = 3;
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    f4(&g);
    g.write_size = 8192;
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    f4(&g);
    g.nruns = 0;
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    f4(&g);
    g.nruns = OTAUP_MAX_SECTOR_RUNS + 1;
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    f4(&g);
    g.runs[1].size = 65534; /* not a multiple of 4 */
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    f4(&g);
    g.base = 0xFFFF0000u; /* runs past 4 GiB */
    ck_assert_int_eq(otaup_geometry_check(&g), OTAUP_E_GEOMETRY);
    ck_assert_uint_eq(otaup_geometry_size(&g), 0);
    ck_assert_int_eq(otaup_geometry_check(NULL), OTAUP_E_GEOMETRY);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("geometry");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, test_uniform);
    tcase_add_test(tc, test_nonuniform);
    tcase_add_test(tc, test_invalid);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
