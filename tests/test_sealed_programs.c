/*
 * Sealed backups through the real programs over loopback: otaup-term
 * --device-key against otaupd (nothing new on the daemon's command line).
 * The terminal's personal data are damaged by the upgrade and restored
 * from the sealed stream; the audit log says the backup was sealed by the
 * terminal, the database never holds the personal data, a bad key file is
 * a usage error. Every wait is bounded; the daemon is stopped by its pid.
 */
#include <check.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "otaup/config.h"
#include "util/e2e.h"
#include "util/runcmd.h"

#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED

static char dir[128], ctl[512], dmn[512], term[512];
static char out[16384];
static int port;
static pid_t daemon_pid;
static uint8_t v1[50000], v2[52000];
static size_t v2_len;

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

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    static const char key[] = "00112233445566778899aabbccddeeff0123456789abcdef0123456789abcdef\n";
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-sealp-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl --db r.db", bin);
    snprintf(dmn, sizeof dmn, "%s/examples/otaupd/otaupd", bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    port = test_free_port();
    daemon_pid = 0;
    e2e_make_image(v1, sizeof v1, 51);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 52);
    ck_assert_uint_gt(v2_len, 0);
    test_write_file(dir, "v1.bin", v1, sizeof v1);
    test_write_file(dir, "v2.bin", v2, v2_len);
    test_write_file(dir, "device.key", (const uint8_t *)key, sizeof key - 1);
    test_write_file(dir, "short.key", (const uint8_t *)key, 40);
}

static void teardown(void)
{
    test_teardown_dir(dir, daemon_pid);
}

static void start_daemon(void)
{
    daemon_pid = test_start_otaupd(dir, dmn, port, "--auto-request");
}

#define HAS(s) ck_assert_msg(strstr(out, (s)) != NULL, "'%s' not in: %s", (s), out)

START_TEST(test_sealed_backup_over_otaupd)
{
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id K1 --model M1 --version 1.0 --build-time 1000 --quiet",
                         term),
                     0);
    /* a key file that is not 32 bytes: a usage error, nothing sent */
    ck_assert_int_eq(run("%s --flash t.flash --device-key short.key --quiet", term), 2);
    HAS("--device-key");
    start_daemon();
    ck_assert_int_eq(run("%s --flash t.flash --device-key device.key --connect 127.0.0.1:%d --report rep "
                         "--damage-user-data --timeout 30 --reconnect 0 --quiet",
                         term, port),
                     0);
    ck_assert_int_eq(run("grep -c -e '^version=2.0$' -e '^user_intact=1$' -e '^result=0$' -e '^sealed=1$' rep"), 0);
    ck_assert_int_eq(atoi(out), 4);
    ck_assert_int_eq(test_stop_pid(daemon_pid, SIGTERM), 0);
    daemon_pid = 0;
    /* the server held a sealed stream, restored it, then deleted it */
    ck_assert_int_eq(run("%s audit --terminal K1", ctl), 0);
    HAS("sealed by the terminal");
    HAS("restored");
    ck_assert_int_eq(run("grep -c 'sealed=' daemon.log"), 0);
    ck_assert_int_eq(run("%s backups", ctl), 0);
    HAS("0 backups held");
    /* the personal data never reached the database (rows, journal, WAL) */
    ck_assert_int_eq(run("cat r.db* | grep -a -c 'door code 4711'"), 1);
    ck_assert_int_eq(atoi(out), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sealed_programs");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sealed_backup_over_otaupd);
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
    puts("test_sealed_programs: sealed backups need mbedTLS and OTAUP_CONFIG_SEALED: nothing to test in this build");
    return 0;
}

#endif
