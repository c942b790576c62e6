/*
 * Release withdrawal with the real programs over loopback TCP: otaupd,
 * otaupctl and otaup-term. A terminal whose in-place upgrade to 2.0 was
 * cut by a power failure in the middle of the transfer; `otaupctl release
 * withdraw 2` refused (exit 3, the terminal named), then forced; a fresh
 * terminal is no longer offered 2.0; the cut terminal resumes and
 * finishes 2.0; `release restore 2` and the fresh one gets it. otaupctl
 * alone: an image published twice (exit 3, the release named;
 * --allow-duplicate), notices of a withdrawn release held back, a
 * schema-1 registry upgraded by the tool, and bad arguments (exit 2).
 * Every wait is bounded.
 */
#include <check.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/e2e.h"
#include "util/runcmd.h"

static char dir[128];
static char ctl[512], dmn[512], term[512];
static char out[16384];
static int port;
static pid_t daemon_pid;

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-wdp-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl --db r.db", bin);
    snprintf(dmn, sizeof dmn, "%s/examples/otaupd/otaupd", bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    port = test_free_port();
    daemon_pid = 0;
}

static void teardown(void)
{
    test_teardown_dir(dir, daemon_pid);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 60, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static void start_daemon(void)
{
    daemon_pid = test_start_otaupd(dir, dmn, port, "");
}

/* v1.bin and v2.bin: 120 KB images, v2 shifts everything after 10 % (a large delta) */
static void images(void)
{
    static uint8_t v1[120000], v2[130000];
    size_t n2, i;
    e2e_make_image(v1, sizeof v1, 5);
    memcpy(v2, v1, 12000);
    e2e_make_image(v2 + 12000, 700, 6);
    memcpy(v2 + 12700, v1 + 12000, sizeof v1 - 12000);
    n2 = sizeof v1 + 700;
    for (i = 30000; i < n2; i += 997) {
        v2[i] ^= 0x21;
    }
    test_write_file(dir, "v1.bin", v1, sizeof v1);
    test_write_file(dir, "v2.bin", v2, n2);
}

static void make_terminal(const char *id)
{
    ck_assert_int_eq(run("%s --flash %s.flash --init v1.bin --id %s --model M1 --version 1.0 --build-time 1000 "
                         "--slot-size 196608 --quiet",
                         term, id, id),
                     0);
}

START_TEST(test_withdraw_mid_upgrade_over_tcp)
{
    images();
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    make_terminal("T1");
    make_terminal("T2");
    start_daemon();
    /* T1's power fails in the middle of its in-place transfer of 2.0 */
    ck_assert_int_eq(run("%s --flash T1.flash --connect 127.0.0.1:%d --accept --cut-after 9 --torn --quiet", term,
                         port),
                     3);
    ck_assert_ptr_nonnull(strstr(out, "POWER CUT"));
    ck_assert_int_ne(run("cmp -s -n 120000 T1.flash v1.bin"), 0); /* the old image is gone */
    /* refused: T1 would install it anyway */
    ck_assert_int_eq(run("%s release withdraw 2", ctl), 3);
    ck_assert_ptr_nonnull(strstr(out, "terminal T1: session"));
    ck_assert_ptr_nonnull(strstr(out, "--force"));
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_IN_PROGRESS"));
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_null(strstr(out, "withdrawn"));
    /* forced */
    ck_assert_int_eq(run("%s release withdraw 2 --force --reason 'radio driver crashes'", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "1 session(s) in progress still finish"));
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, " withdrawn "));
    ck_assert_int_eq(run("%s status T1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "(withdrawn: this session still finishes)"));
    ck_assert_int_eq(run("%s audit", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "reason: radio driver crashes"));
    /* a terminal on 1.0 is not offered it: up to date, its flash unchanged */
    ck_assert_int_eq(run("%s --flash T2.flash --connect 127.0.0.1:%d --accept --timeout 30 --quiet", term, port), 0);
    ck_assert_ptr_nonnull(strstr(out, "up to date"));
    ck_assert_int_eq(run("cmp -n 120000 T2.flash v1.bin"), 0);
    ck_assert_int_eq(run("%s request T2", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "up to date"));
    /* T1 resumes and finishes 2.0 */
    ck_assert_int_eq(run("%s --flash T1.flash --connect 127.0.0.1:%d --accept --report r1 --timeout 30 --quiet", term,
                         port),
                     0);
    ck_assert_int_eq(run("grep -q '^version=2.0$' r1 && grep -q '^user_intact=1$' r1"), 0);
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T1.flash v2.bin"), 0);
    ck_assert_int_eq(run("%s audit --terminal T1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "resume"));
    ck_assert_ptr_nonnull(strstr(out, "upgraded"));
    /* restored: T2 gets it */
    ck_assert_int_eq(run("%s release restore 2", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "offered again"));
    ck_assert_int_eq(run("%s --flash T2.flash --connect 127.0.0.1:%d --accept --timeout 30 --quiet", term, port), 0);
    ck_assert_ptr_nonnull(strstr(out, "upgraded 1.0 -> 2.0"));
    ck_assert_int_eq(run("cmp -n $(stat -c %%s v2.bin) T2.flash v2.bin"), 0);
    ck_assert_int_eq(test_stop_pid(daemon_pid, SIGTERM), 0);
    daemon_pid = 0;
}
END_TEST

START_TEST(test_duplicate_image_refused)
{
    images();
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 1.1 --build-time 1100 v1.bin", ctl), 3);
    ck_assert_ptr_nonnull(strstr(out, "already published as release 1 (M1 1.0"));
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_SAME_IMAGE"));
    ck_assert_ptr_nonnull(strstr(out, "--allow-duplicate"));
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_null(strstr(out, "1.1"));
    /* the very same release again: "already published", a failure */
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "OTAUP_E_EXISTS"));
    /* another model, or on purpose */
    ck_assert_int_eq(run("%s release add --model M2 --version 1.1 --build-time 1100 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 1.1 --build-time 1100 --allow-duplicate v1.bin", ctl),
                     0);
    ck_assert_int_eq(run("%s releases --model M1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "1.1"));
}
END_TEST

static void sql_exec(const char *sql)
{
    char path[300];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/r.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static int schema_version(void)
{
    char path[300];
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    snprintf(path, sizeof path, "%s/r.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

START_TEST(test_notices_held_back)
{
    images();
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    /* a notice queued for 2.0 and not delivered yet */
    sql_exec("INSERT INTO outbox(terminal, release_id, channel, text, created, sent)"
             " VALUES('N1', 2, 'sms', 'New software 2.0 for your M1', 1, 0)");
    ck_assert_int_eq(run("%s release withdraw 2", ctl), 0);
    ck_assert_int_eq(run("%s notify", ctl), 0);
    ck_assert_ptr_null(strstr(out, "sms to N1"));
    ck_assert_ptr_nonnull(strstr(out, "1 held back"));
    ck_assert_int_eq(run("%s release restore 2", ctl), 0);
    ck_assert_int_eq(run("%s notify", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "sms to N1: New software 2.0"));
    ck_assert_ptr_null(strstr(out, "held back"));
}
END_TEST

/* A registry written by the programs before withdrawal existed (schema 1):
 * the tool opens it, upgrades it, and withdraws in it. */
START_TEST(test_schema_1_registry)
{
    images();
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    /* back to the version-1 layout */
    sql_exec("ALTER TABLE releases DROP COLUMN withdrawn; DELETE FROM schema_version WHERE version > 1");
    ck_assert_int_eq(schema_version(), 1);
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "2.0"));
    ck_assert_ptr_null(strstr(out, "withdrawn"));
    ck_assert_int_eq(schema_version(), 2);
    ck_assert_int_eq(run("%s release withdraw 2", ctl), 0);
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, " withdrawn "));
}
END_TEST

START_TEST(test_bad_arguments)
{
    images();
    /* no registry yet: a failure, and none is created */
    ck_assert_int_eq(run("%s release withdraw 1", ctl), 1);
    ck_assert_int_eq(run("test -e r.db"), 1);
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    /* usage errors: 2, nothing changed */
    ck_assert_int_eq(run("%s release withdraw", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "needs RELEASE"));
    ck_assert_int_eq(run("%s release withdraw abc", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "bad RELEASE 'abc'"));
    ck_assert_int_eq(run("%s release withdraw 0", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 1x", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw ' 1'", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 99999999999999999999", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw -1", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 1 1", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 1 --frob", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 1 --reason", ctl), 2);
    ck_assert_int_eq(run("%s release withdraw 1 --reason \"$(head -c 201 /dev/zero | tr '\\0' x)\"", ctl), 2);
    ck_assert_int_eq(run("%s release restore", ctl), 2);
    ck_assert_int_eq(run("%s release restore 1 2", ctl), 2);
    ck_assert_int_eq(run("%s release restore --force", ctl), 2);
    ck_assert_int_eq(run("%s release restore x", ctl), 2);
    ck_assert_int_eq(run("%s release frob 1", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "'withdraw' or 'restore'"));
    ck_assert_int_eq(run("%s releases", ctl), 0);
    ck_assert_ptr_null(strstr(out, "withdrawn"));
    /* no such release: a failure */
    ck_assert_int_eq(run("%s release withdraw 7", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "no release 7"));
    ck_assert_int_eq(run("%s release restore 7", ctl), 1);
    /* twice, or restoring one that is offered: said, and success */
    ck_assert_int_eq(run("%s release withdraw 1", ctl), 0);
    ck_assert_int_eq(run("%s release withdraw 1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "already withdrawn"));
    ck_assert_int_eq(run("%s release restore 1", ctl), 0);
    ck_assert_int_eq(run("%s release restore 1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "not withdrawn: nothing to do"));
    /* the existing commands are as they were */
    ck_assert_int_eq(run("%s release", ctl), 2);
    ck_assert_int_eq(run("%s release sign", ctl), 2);
    ck_assert_int_eq(run("%s --help", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "release withdraw RELEASE [--force] [--reason TEXT]"));
    ck_assert_ptr_nonnull(strstr(out, "3 refused"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("withdraw_programs");
    TCase *tc = tcase_create("programs");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_withdraw_mid_upgrade_over_tcp);
    tcase_add_test(tc, test_duplicate_image_refused);
    tcase_add_test(tc, test_notices_held_back);
    tcase_add_test(tc, test_schema_1_registry);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
