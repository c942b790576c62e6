/*
 * The registry's stored data damaged at rest (a disk error, a file edited
 * by hand), end to end on the e2e harness: the real session driver and
 * SQLite registry against a real applier on simulated flash.
 *
 * - A precomputed delta whose bytes changed (a flipped bit, a cut) is
 *   planned again instead of failing every session to that release.
 * - A release image that is not the image published (its XXH3-128 was
 *   recorded at publication) is refused by the registry (OTAUP_E_HASH):
 *   as the target, the session fails before anything is written to the
 *   terminal and the log names the damaged release; as the source, the
 *   delta is planned from the terminal's block signature instead.
 * - A backup that no longer decrypts does not stop a resumed session
 *   whose terminal's user data is intact: it needs no restore.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simterm.h"
#include "server/session_core.h"
#include "util/e2e.h"

#define V1_LEN 64000u
#define SLOT (128u * 1024u)

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096];
static size_t v2_len;
static uint8_t h_v1[16], h_v2[16];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-regdmg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 21);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 22);
    ck_assert_uint_gt(v2_len, 0);
    otaup_hash128(v1, sizeof v1, h_v1);
    otaup_hash128(v2, v2_len, h_v2);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Publish img as M1 `version`, but store it with one bit flipped behind
 * the front end's back (the hash and size recorded are those of img). */
static int64_t publish_damaged(const char *version, int64_t build, const uint8_t *img, size_t len)
{
    void *ctx = NULL;
    const otaup_registry_ops *ops = otaup_registry_backend(e2e_registry(w), &ctx);
    otaup_reg_release r;
    uint8_t *bad = malloc(len);
    ck_assert_ptr_nonnull(bad);
    memcpy(bad, img, len);
    bad[len / 3] ^= 0x01;
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "%s", version);
    r.build_time = build;
    otaup_hash128(img, len, r.image_hash);
    r.image_size = (uint32_t)len;
    ck_assert_int_eq(ops->release_add(ctx, &r, bad, len), 0);
    free(bad);
    return r.id;
}

static otaup_simterm *terminal(const char *id)
{
    return e2e_terminal(id, OTAUP_LAYOUT_INPLACE, SLOT, v1, sizeof v1, "1.0", 1000);
}

/* the terminal still runs v1, its flash untouched by the failed session */
static void check_untouched(otaup_simterm *t, const char *id)
{
    uint8_t h[16];
    e2e_boot(t);
    otaup_simterm_image_hash(t, h);
    ck_assert_int_eq(memcmp(h, h_v1, 16), 0);
    ck_assert_str_eq(otaup_simterm_version(t), "1.0");
    ck_assert_int_eq(otaup_simterm_user_intact(t), 1);
    ck_assert_int_eq(e2e_backups(w, id), 0);
}

START_TEST(test_release_get_refuses_damaged_image)
{
    otaup_registry *reg = e2e_registry(w);
    otaup_reg_release r;
    otaup_blob img = { NULL, 0 };
    int64_t good = e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1);
    int64_t bad = publish_damaged("2.0", 2000, v2, v2_len);
    ck_assert_int_gt(good, 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, good, &r, &img), 0);
    ck_assert_uint_eq(img.len, sizeof v1);
    otaup_blob_free(&img);
    /* the record is fine, the bytes are not */
    ck_assert_int_eq(otaup_registry_release_get(reg, bad, &r, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, bad, &r, &img), OTAUP_E_HASH);
    ck_assert_ptr_null(img.data);
    ck_assert_int_eq(otaup_registry_release_by_hash(reg, h_v2, &r, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_by_hash(reg, h_v2, &r, &img), OTAUP_E_HASH);
    ck_assert_ptr_null(img.data);
    ck_assert_int_eq(r.id, bad); /* which release it is, for the message */
}
END_TEST

START_TEST(test_damaged_stored_delta_planned_again)
{
    otaup_registry *reg = e2e_registry(w);
    otaup_simterm *a, *b;
    otaup_reg_terminal ta;
    otaup_reg_delta_key k;
    otaup_blob d = { NULL, 0 };
    e2e_report rep;
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
    /* A's upgrade plans 1.0 -> 2.0 for this flash map and stores it */
    a = terminal("A1");
    ck_assert_int_eq(e2e_run(w, a, NULL, 600000, &rep), 0);
    e2e_check_runs(w, a, "A1", h_v2, "2.0");
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "A1", &ta), 0);
    otaup_session_delta_key(&ta, h_v1, h_v2, 0, &k);
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), 0);
    /* a bit of its body flips at rest */
    d.data[d.len - d.len / 4] ^= 0x10;
    ck_assert_int_eq(otaup_registry_delta_put(reg, &k, d.data, d.len), 0);
    otaup_blob_free(&d);
    /* B, the same model and flash map on 1.0, is upgraded all the same */
    b = terminal("B1");
    ck_assert_int_eq(e2e_run(w, b, NULL, 600000, &rep), 0);
    e2e_check_runs(w, b, "B1", h_v2, "2.0");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "B1"), "failed its check"));
    /* and the registry holds a good copy again */
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), 0);
    {
        otaup_delta_header h;
        uint32_t off;
        ck_assert_int_eq(otaup_delta_check(d.data, d.len, &h, &off), 0);
    }
    otaup_blob_free(&d);
    /* a stored delta cut short, the same */
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), 0);
    ck_assert_int_eq(otaup_registry_delta_put(reg, &k, d.data, d.len / 2), 0);
    otaup_blob_free(&d);
    otaup_simterm_free(b);
    b = terminal("B2");
    ck_assert_int_eq(e2e_run(w, b, NULL, 600000, &rep), 0);
    e2e_check_runs(w, b, "B2", h_v2, "2.0");
    otaup_simterm_free(a);
    otaup_simterm_free(b);
}
END_TEST

START_TEST(test_damaged_target_image_refused)
{
    otaup_simterm *t;
    e2e_report rep;
    const char *au;
    int64_t bad;
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    bad = publish_damaged("2.0", 2000, v2, v2_len);
    t = terminal("T1");
    /* nothing planned to the damaged image: it would carry that image's
     * hash and pass the terminal's VERIFY */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_HASH);
    check_untouched(t, "T1");
    au = e2e_audit(w, "T1");
    ck_assert_ptr_nonnull(au);
    {
        char want[80];
        snprintf(want, sizeof want, "copy of the target image (release %lld) is damaged", (long long)bad);
        ck_assert_ptr_nonnull(strstr(au, want));
    }
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_damaged_source_image_planned_from_signature)
{
    otaup_simterm *t;
    e2e_report rep;
    ck_assert_int_gt(publish_damaged("1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
    t = terminal("S1");
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    e2e_check_runs(w, t, "S1", h_v2, "2.0");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S1"), "planned from the terminal's block signature"));
    otaup_simterm_free(t);
}
END_TEST

/* A session the server gave up mid-transfer keeps its backup; the backup
 * is damaged at rest meanwhile. The resumed session finds the terminal's
 * user data intact (region hashes equal the backup's): it needs no
 * restore and commits, without decrypting the damaged copy. */
START_TEST(test_damaged_backup_not_needed)
{
    otaup_registry *reg = e2e_registry(w);
    void *ctx = NULL;
    const otaup_registry_ops *ops = otaup_registry_backend(reg, &ctx);
    otaup_simterm *t;
    otaup_reg_backup b;
    otaup_blob sealed = { NULL, 0 };
    e2e_faults f;
    e2e_report rep;
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
    t = terminal("K1");
    memset(&f, 0, sizeof f);
    f.fail_after = 5;
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    ck_assert_int_eq(e2e_backups(w, "K1"), 1);
    ck_assert_int_eq(ops->backup_get(ctx, "K1", 0, &b, &sealed), 0);
    sealed.data[sealed.len / 2] ^= 0x01;
    ck_assert_int_eq(ops->backup_put(ctx, &b, sealed.data, sealed.len), 0);
    otaup_blob_free(&sealed);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    e2e_check_runs(w, t, "K1", h_v2, "2.0");
    otaup_simterm_free(t);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("regdamage");
    TCase *tc = tcase_create("damaged");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_release_get_refuses_damaged_image);
    tcase_add_test(tc, test_damaged_stored_delta_planned_again);
    tcase_add_test(tc, test_damaged_target_image_refused);
    tcase_add_test(tc, test_damaged_source_image_planned_from_signature);
    tcase_add_test(tc, test_damaged_backup_not_needed);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
