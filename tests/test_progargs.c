/*
 * otaup-term's and otaupctl's argument handling: every missing, malformed
 * or unusable value gets a message that names it and the documented exit
 * code (2 for usage), found before anything is done.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/runcmd.h"

static char dir[128];
static char term[512], ctl[512];
static char out[16384];

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    snprintf(dir, sizeof dir, "/tmp/otaup-progargs-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl", bin);
}

static void teardown(void)
{
    test_teardown_dir(dir, 0);
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 30, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

#define SAYS(text) ck_assert_msg(strstr(out, (text)) != NULL, "expected \"%s\" in: %s", (text), out)

static void make_terminal(void)
{
    static unsigned char img[5000];
    size_t i;
    for (i = 0; i < sizeof img; i++) {
        img[i] = (unsigned char)(i * 13 + 1);
    }
    test_write_file(dir, "v1.bin", img, sizeof img);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id T1 --model M --version 1.0 --build-time 5 --quiet",
                         term),
                     0);
    ck_assert_int_eq(run("cp t.flash t.copy && mkdir adir"), 0);
}

/* otaup-term: a --report that is a directory passed the check made
 * before the run (a directory is "writable") and the run failed at the
 * end, exit 1, after the upgrade it should have reported; a --connect
 * that is not ADDR:PORT was found only when connecting (after the flash
 * file was looked at: "no terminal there", exit 1), a port with a sign
 * taken; an --id, --model or --version too long was "invalid argument";
 * a sector size that is not a multiple of the program unit was said to
 * be below 256 bytes; a flash file in a directory that does not exist
 * was a bare "I/O error"; -h was an unknown option. */
START_TEST(test_term_args)
{
    make_terminal();
    /* --report: a directory, refused before the run */
    ck_assert_int_eq(run("%s --flash t.flash --report adir --connect 127.0.0.1:1 --reconnect 0 --timeout 1", term), 2);
    SAYS("otaup-term: --report adir: Is a directory");
    ck_assert_ptr_null(strstr(out, "cannot connect"));
    /* --connect: checked first, usage */
    ck_assert_int_eq(run("%s --flash nothing.flash --connect 127.0.0.1", term), 2);
    SAYS("--connect '127.0.0.1': expected IPv4ADDR:PORT");
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:+80", term), 2);
    SAYS("(port 1..65535, in digits)");
    ck_assert_int_eq(run("%s --flash t.flash --connect '127.0.0.1: 80'", term), 2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:65536", term), 2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:0", term), 2);
    ck_assert_int_eq(run("%s --flash t.flash --connect somehost:80", term), 2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:", term), 2);
    /* identity strings */
    ck_assert_int_eq(run("%s --flash n.flash --init v1.bin --id T --model M --build-time 1 "
                         "--version 12345678901234567890123456789012",
                         term),
                     2);
    SAYS("--version 1..31");
    ck_assert_int_eq(run("%s --flash n.flash --init v1.bin --id '' --model M --version 1 --build-time 1", term), 2);
    SAYS("--id and --model take 1..63 characters");
    ck_assert_int_eq(run("%s --flash n.flash --init v1.bin --id T --model "
                         "M123456789012345678901234567890123456789012345678901234567890123 --version 1 "
                         "--build-time 1",
                         term),
                     2);
    ck_assert_int_eq(run("test -e n.flash"), 1); /* nothing made */
    /* the sector size's real rule */
    ck_assert_int_eq(run("%s --flash n.flash --init v1.bin --id T --model M --version 1 --build-time 1 "
                         "--sector-size 4100",
                         term),
                     1);
    SAYS("--sector-size: a multiple of 8 bytes, at least 256");
    /* the system's reason for a flash file that cannot be made */
    ck_assert_int_eq(run("%s --flash nodir/n.flash --init v1.bin --id T --model M --version 1 --build-time 1", term),
                     1);
    SAYS("cannot make terminal T in nodir/n.flash: I/O error (files, sockets): No such file or directory");
    /* -h as --help */
    ck_assert_int_eq(run("%s -h", term), 0);
    SAYS("usage: otaup-term");
    /* a value missing at the end, keys that cannot be read */
    ck_assert_int_eq(run("%s --flash t.flash --timeout", term), 2);
    SAYS("unknown or incomplete option '--timeout'");
    ck_assert_int_eq(run("%s --flash t.flash --pub adir", term), 2);
    SAYS("adir: not a non-empty regular file");
    ck_assert_int_eq(run("%s --flash t.flash --device-key nokey", term), 2);
    SAYS("nokey: No such file or directory");
    /* none of it touched the terminal */
    ck_assert_int_eq(run("cmp t.flash t.copy"), 0);
}
END_TEST

/* otaupctl: a usage error printed the whole usage and nothing else for a
 * missing TERMINAL, an argument too many, an unknown option of audit or
 * no command at all (the reason now ends the output); an image that is a
 * directory was "read error"; a registry path that is a directory was
 * SQLite's "unable to open database file". */
START_TEST(test_ctl_args)
{
    ck_assert_int_eq(run("mkdir adir"), 0);
    ck_assert_int_eq(run("%s --db r.db", ctl), 2);
    SAYS("otaupctl: no command given");
    ck_assert_int_eq(run("%s --db r.db status", ctl), 2);
    SAYS("otaupctl: status needs one TERMINAL (its id)");
    ck_assert_int_eq(run("%s --db r.db status T1 T2", ctl), 2);
    SAYS("otaupctl: status needs one TERMINAL");
    ck_assert_int_eq(run("%s --db r.db request", ctl), 2);
    SAYS("otaupctl: request needs one TERMINAL (its id)");
    ck_assert_int_eq(run("%s --db r.db audit --bogus", ctl), 2);
    SAYS("otaupctl: audit: unknown or incomplete option '--bogus'");
    ck_assert_int_eq(run("%s --db r.db audit --terminal", ctl), 2);
    SAYS("otaupctl: audit: unknown or incomplete option '--terminal'");
    ck_assert_int_eq(run("%s --db r.db backups x", ctl), 2);
    SAYS("otaupctl: backups takes no arguments ('x')");
    ck_assert_int_eq(run("%s --db r.db terminals x", ctl), 2);
    SAYS("otaupctl: terminals takes no arguments ('x')");
    ck_assert_int_eq(run("%s --db r.db notify x", ctl), 2);
    SAYS("otaupctl: notify takes no arguments ('x')");
    ck_assert_int_eq(run("%s --db r.db releases x", ctl), 2);
    SAYS("otaupctl: releases takes no arguments but --model M ('x')");
    ck_assert_int_eq(run("%s --db", ctl), 2);
    SAYS("otaupctl: unknown or incomplete option '--db'");
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1 --build-time 5 adir", ctl), 1);
    SAYS("otaupctl: adir: Is a directory");
    ck_assert_int_eq(run("test -e r.db"), 1); /* no registry made by any of them */
    /* a registry path that is a directory: the reason, for reading and writing commands */
    ck_assert_int_eq(run("%s --db adir terminals", ctl), 1);
    SAYS("otaupctl: registry adir: Is a directory");
    ck_assert_int_eq(run("%s --db adir release add --model M --version 1 --build-time 5 adir", ctl), 1);
    ck_assert_int_eq(run("echo x > v1.bin && %s --db adir release add --model M --version 1 --build-time 5 v1.bin",
                         ctl),
                     1);
    SAYS("otaupctl: registry adir: Is a directory");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("progargs");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_term_args);
    tcase_add_test(tc, test_ctl_args);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
