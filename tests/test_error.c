/*
 * Error space and version: every code has a name and a text, codes are
 * unique and negative, ranges hold, the version macros match the runtime.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

START_TEST(test_version)
{
    ck_assert_str_eq(otaup_version(), OTAUP_VERSION_STRING);
    ck_assert_uint_eq(otaup_version_number(), OTAUP_VERSION_NUMBER);
    ck_assert_int_eq(OTAUP_VERSION_NUMBER, 100); /* 0.1.0 */
}
END_TEST

START_TEST(test_every_code_named)
{
    int code, named = 0;
    for (code = 0; code > OTAUP_E_USER; code--) {
        const char *name = otaup_errname(code);
        const char *text = otaup_strerror(code);
        ck_assert_ptr_nonnull(text);
        if (name != NULL) {
            named++;
            ck_assert_msg(strncmp(name, "OTAUP_", 6) == 0, "bad name %s", name);
            ck_assert_str_ne(text, "unknown error");
        } else {
            ck_assert_str_eq(text, "unknown error");
        }
    }
    ck_assert_int_gt(named, 60);
}
END_TEST

START_TEST(test_specific_texts)
{
    ck_assert_str_eq(otaup_errname(OTAUP_E_FRAME_CRC), "OTAUP_E_FRAME_CRC");
    ck_assert_str_eq(otaup_strerror(OTAUP_OK), "success");
    ck_assert_str_eq(otaup_strerror(OTAUP_E_USER - 5), "integrator-defined error");
    ck_assert_str_eq(otaup_strerror(-999), "unknown error");
    ck_assert_ptr_null(otaup_errname(-999));
    /* pinned values: changing one breaks compatibility */
    ck_assert_int_eq(OTAUP_E_INVAL, -1);
    ck_assert_int_eq(OTAUP_E_FRAME_MAGIC, -20);
    ck_assert_int_eq(OTAUP_E_DELTA_MAGIC, -40);
    ck_assert_int_eq(OTAUP_E_FLASH_READ, -60);
    ck_assert_int_eq(OTAUP_E_SIGNATURE, -90);
    ck_assert_int_eq(OTAUP_E_DB, -110);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("error");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_every_code_named);
    tcase_add_test(tc, test_specific_texts);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
