/*
 * Sealed backups end to end (docs/security.md §7, server.md "Sealed
 * backups"): the real session driver and SQLite registry against real
 * terminal appliers on simulated flash (otaup_simterm) with a device key,
 * on the e2e harness's simulated clock and link.
 *
 *  - the registry holds the sealed stream only: neither its rows (the raw
 *    database bytes) nor the blob the server itself decrypts from its
 *    at-rest encryption contain the personal data; a plain terminal's
 *    blob does (the check can fail);
 *  - a damaged region is restored byte for byte from the sealed stream;
 *    an intact one is not restored (the keyed digests agree);
 *  - over a lossy link (drops, corruption, duplicates) with the windowed
 *    upload, the sealed upgrade completes and restores;
 *  - a stored stream changed at rest is refused by the terminal
 *    (OTAUP_E_DECRYPT) and its data are not overwritten.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"
#include "otaup/simterm.h"
#include "util/e2e.h"

#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED

#define V1_LEN 96000u
#define SLOT (128u * 1024u)
#define MARKER "door code 4711"

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096];
static size_t v2_len;
static uint8_t h_v2[16];
static const uint8_t key1[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-e2es-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 1);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 2);
    ck_assert_uint_gt(v2_len, 0);
    otaup_hash128(v2, v2_len, h_v2);
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static otaup_simterm *terminal(const char *id, const uint8_t *key, int damage)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    o.terminal_id = id;
    o.model = "M1";
    o.slot_size = SLOT;
    o.retransmit_ms = 400;
    o.max_frame = 256;
    o.damage_user_data = damage;
    o.device_key = key;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, v1, sizeof v1, "1.0", 1000), 0);
    return t;
}

static int contains(const uint8_t *h, size_t hn, const char *needle)
{
    size_t n = strlen(needle), i;
    for (i = 0; i + n <= hn; i++) {
        if (memcmp(h + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 if any file of the registry's directory (database, WAL) holds the marker. */
static int db_has_marker(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int hit = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL && !hit) {
        char path[400];
        FILE *f;
        uint8_t *buf;
        long n;
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        f = fopen(path, "rb");
        if (f == NULL) {
            continue;
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (n > 0 && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            hit = contains(buf, (size_t)n, MARKER);
        }
        free(buf);
        fclose(f);
    }
    closedir(d);
    return hit;
}

/* What the server itself reads back from its registry for region 0. */
static otaup_blob stored(const char *id, otaup_reg_backup *meta)
{
    otaup_blob b = { NULL, 0 };
    ck_assert_int_eq(otaup_registry_backup_load(e2e_registry(w), id, 0, meta, &b), 0);
    return b;
}

static void check_upgraded(otaup_simterm *t, const char *id)
{
    uint8_t h[16];
    otaup_simterm_image_hash(t, h);
    ck_assert_int_eq(memcmp(h, h_v2, 16), 0);
    ck_assert_int_eq(otaup_simterm_user_intact(t), 1);
    ck_assert_int_eq(e2e_backups(w, id), 0);
}

START_TEST(test_sealed_registry_holds_no_plaintext)
{
    otaup_simterm *t = terminal("S1", key1, 1), *p;
    e2e_faults f;
    e2e_report rep;
    otaup_reg_backup meta;
    otaup_blob b;
    uint32_t len = otaup_simterm_user_size(t);
    /* the server gives up as it starts the restore: the backup stays */
    memset(&f, 0, sizeof f);
    f.fail_in_restore = 1;
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    ck_assert_int_eq(e2e_backups(w, "S1"), 1);
    b = stored("S1", &meta);
    ck_assert_uint_gt(b.len, len + OTAUP_SEAL_HEADER_LEN);
    ck_assert_uint_eq(meta.len, b.len);
    ck_assert_int_eq(memcmp(b.data, "OTBK", 4), 0);
    ck_assert_int_eq(contains(b.data, b.len, MARKER), 0);
    otaup_blob_free(&b);
    ck_assert_int_eq(db_has_marker(), 0);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S1"), "sealed by the terminal"));
    /* the next connection resumes and restores the region byte for byte */
    ck_assert_int_eq(otaup_simterm_user_intact(t), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_upgraded(t, "S1");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S1"), "restore:region 0 restored"));
    otaup_simterm_free(t);
    /* the same run for a terminal without a key: the server can read it */
    p = terminal("P1", NULL, 1);
    ck_assert_int_eq(e2e_run(w, p, &f, 600000, &rep), OTAUP_E_RETRIES);
    b = stored("P1", &meta);
    ck_assert_uint_eq(b.len, len);
    ck_assert_int_eq(contains(b.data, b.len, MARKER), 1);
    otaup_blob_free(&b);
    otaup_simterm_free(p);
}
END_TEST

START_TEST(test_sealed_intact_not_restored)
{
    otaup_simterm *t = terminal("S2", key1, 0);
    e2e_report rep;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_upgraded(t, "S2");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S2"), "restore:skipped"));
    ck_assert_uint_eq(rep.stats.restore_bytes, 0);
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_sealed_lossy_link)
{
    otaup_simterm *t = terminal("S3", key1, 1);
    e2e_faults f;
    e2e_report rep;
    memset(&f, 0, sizeof f);
    f.drop_pct = 5;
    f.corrupt_pct = 3;
    f.dup_pct = 3;
    f.delay_pct = 5;
    f.seed = 42;
    ck_assert_int_eq(e2e_run(w, t, &f, 1200000, &rep), 0);
    check_upgraded(t, "S3");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S3"), "restore:region 0 restored"));
    ck_assert_uint_gt(rep.stats.backup_bytes, 0);
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_sealed_changed_at_rest_refused)
{
    otaup_simterm *t = terminal("S4", key1, 1);
    e2e_faults f;
    e2e_report rep;
    otaup_reg_backup meta;
    otaup_blob b;
    uint32_t ua = otaup_simterm_user_addr(t), ul = otaup_simterm_user_size(t);
    uint8_t *before;
    memset(&f, 0, sizeof f);
    f.fail_in_restore = 1;
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    /* someone with the database changes one byte of the stored stream */
    b = stored("S4", &meta);
    b.data[OTAUP_SEAL_HEADER_LEN + 5] ^= 0x20;
    ck_assert_int_eq(otaup_registry_backup_store(e2e_registry(w), &meta, b.data, b.len), 0);
    otaup_blob_free(&b);
    before = malloc(ul);
    memcpy(before, otaup_simflash_data(otaup_simterm_flash(t)) + (ua - OTAUP_SIMTERM_BASE), ul);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_DECRYPT);
    /* the terminal refused it before writing: its region is as it was */
    ck_assert_mem_eq(otaup_simflash_data(otaup_simterm_flash(t)) + (ua - OTAUP_SIMTERM_BASE), before, ul);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "S4"), "failed its authentication"));
    free(before);
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_sealed_flash_error)
{
    /* a sealing terminal whose flash reports the n-th write of the upgrade
     * failed (torn or not, power on), n spread over the upgrade: the data
     * it sealed come back whole, through the next connection if the
     * server gave the session up */
    char id[16];
    otaup_simterm *t = terminal("SF-ref", key1, 1);
    e2e_faults f;
    e2e_report rep;
    uint64_t total;
    int rc;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    total = rep.flash_ops;
    otaup_simterm_free(t);
    memset(&f, 0, sizeof f);
    f.flash_fail_after = 1 + total * (uint64_t)_i / 8;
    f.torn = _i % 2;
    f.seed = 500 + (uint64_t)_i;
    snprintf(id, sizeof id, "SF%d", _i);
    t = terminal(id, key1, 1);
    rc = e2e_run(w, t, &f, 600000, &rep);
    ck_assert_msg(rc == 0 || rc == OTAUP_E_FLASH_PROG || rc == OTAUP_E_FLASH_ERASE, "%s", otaup_strerror(rc));
    if (rc != 0) {
        ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    }
    e2e_boot(t);
    check_upgraded(t, id);
    otaup_simterm_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("e2e_sealed");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_sealed_registry_holds_no_plaintext);
    tcase_add_test(tc, test_sealed_intact_not_restored);
    tcase_add_test(tc, test_sealed_lossy_link);
    tcase_add_test(tc, test_sealed_changed_at_rest_refused);
    tcase_add_loop_test(tc, test_sealed_flash_error, 0, 8);
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

#else

int main(void)
{
    puts("test_e2e_sealed: sealed backups need mbedTLS and OTAUP_CONFIG_SEALED: nothing to test in this build");
    return 0;
}

#endif
