/*
 * Operator scenarios through the real programs over loopback (otaupd,
 * otaupctl, otaup-term, otaup): what people read must agree, and a small
 * terminal must be served.
 *
 * - Every XXH3-128 printed for people is xxHash's canonical form
 *   (XXH128_canonicalFromHash: the high 64 bits first, big-endian): `otaup
 *   sig`, `otaup inspect`, `otaupctl release add` / `releases` / `status`,
 *   otaupd's log, otaup-term's report. The server side printed the stored
 *   byte order (low half first, little-endian) instead.
 * - otaup-term --sector-size 512 and 256, in place and A/B, upgraded by
 *   otaupd (refused with OTAUP_E_LIMIT after the backup before).
 *
 * Every wait is bounded; the daemon is stopped by its pid.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/e2e.h"
#include "util/runcmd.h"

static char dir[128], ctl[512], dmn[512], term[512], cli[512];
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
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-scenp-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl --db r.db", bin);
    snprintf(dmn, sizeof dmn, "%s/examples/otaupd/otaupd", bin);
    snprintf(term, sizeof term, "%s/examples/otaup-term/otaup-term", bin);
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
    port = test_free_port();
    daemon_pid = 0;
    e2e_make_image(v1, sizeof v1, 41);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 42);
    ck_assert_uint_gt(v2_len, 0);
    test_write_file(dir, "v1.bin", v1, sizeof v1);
    test_write_file(dir, "v2.bin", v2, v2_len);
}

static void teardown(void)
{
    test_teardown_dir(dir, daemon_pid);
}

static void start_daemon(void)
{
    daemon_pid = test_start_otaupd(dir, dmn, port, "--auto-request");
}

static void stop_daemon(void)
{
    ck_assert_int_eq(test_stop_pid(daemon_pid, SIGTERM), 0);
    daemon_pid = 0;
}

/* the XXH3-128 of p as xxHash prints it (canonical), and in stored byte order */
static void hash_forms(const uint8_t *p, size_t n, char canon[33], char stored[33])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    XXH128_canonical_t c;
    int i;
    XXH128_canonicalFromHash(&c, h);
    for (i = 0; i < 16; i++) {
        sprintf(canon + 2 * i, "%02x", c.digest[i]);
        sprintf(stored + 2 * i, "%02x", c.digest[15 - i]);
    }
}

#define HAS(s) ck_assert_msg(strstr(out, (s)) != NULL, "'%s' not in: %s", (s), out)
#define HASNT(s) ck_assert_msg(strstr(out, (s)) == NULL, "'%s' in: %s", (s), out)

START_TEST(test_hashes_printed_canonically)
{
    char c1[33], s1[33], c2[33], s2[33];
    hash_forms(v1, sizeof v1, c1, s1);
    hash_forms(v2, v2_len, c2, s2);
    ck_assert_str_ne(c1, s1);
    /* the otaup tool */
    ck_assert_int_eq(run("%s sig v1.bin", cli), 0);
    HAS(c1);
    ck_assert_int_eq(run("%s delta v1.bin v2.bin -o p -q && %s inspect p", cli, cli), 0);
    HAS(c1);
    HAS(c2);
    /* --json: the same figures, hashes included, in the same form */
    ck_assert_int_eq(run("%s inspect p --json", cli), 0);
    {
        char want[64];
        snprintf(want, sizeof want, "\"source_hash\":\"%s\"", c1);
        HAS(want);
        snprintf(want, sizeof want, "\"target_hash\":\"%s\"", c2);
        HAS(want);
    }
    /* the operator tool */
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    HAS(c1);
    HASNT(s1);
    ck_assert_int_eq(run("%s releases", ctl), 0);
    HAS(c1);
    HASNT(s1);
    /* the daemon's log, the terminal's report, the terminal's status */
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id H1 --model M1 --version 1.0 --build-time 1000 --quiet",
                         term),
                     0);
    start_daemon();
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    HAS(c2);
    HASNT(s2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --report rep --timeout 30 --quiet", term, port),
                     0);
    ck_assert_int_eq(run("grep image_hash= rep"), 0);
    HAS(c2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --timeout 30 --quiet", term, port), 0);
    stop_daemon();
    ck_assert_int_eq(run("grep -o 'hash=[0-9a-f]*' daemon.log"), 0);
    HAS(c1);
    HAS(c2);
    HASNT(s1);
    HASNT(s2);
    ck_assert_int_eq(run("%s status H1", ctl), 0);
    HAS(c2);
    HASNT(s2);
    HASNT(s1);
}
END_TEST

/* otaup-term with 512- and 256-byte sectors, in place and A/B */
START_TEST(test_small_sectors_served)
{
    static const char *const layouts[2] = { "inplace", "ab" };
    static const unsigned sizes[2] = { 512, 256 };
    const char *layout = layouts[_i % 2];
    unsigned ss = sizes[_i / 2];
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id SS --model M1 --version 1.0 --build-time 1000 "
                         "--layout %s --sector-size %u --slot-size 65536 --quiet",
                         term, layout, ss),
                     0);
    start_daemon();
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --report rep --damage-user-data --timeout 30 "
                         "--reconnect 0",
                         term, port),
                     0);
    ck_assert_int_eq(run("grep -c -e '^version=2.0$' -e '^user_intact=1$' -e '^result=0$' rep"), 0);
    ck_assert_int_eq(atoi(out), 3);
    stop_daemon();
    ck_assert_int_eq(run("%s backups", ctl), 0);
    HAS("0 backups held");
    ck_assert_int_eq(run("grep -c level=error daemon.log"), 1); /* none */
}
END_TEST

/* Hostile peers that send garbage and hang up at once: every close the
 * daemon logs names its cause (it said only "write failed" when its ABORT
 * met the closed socket). */
START_TEST(test_close_reasons_named)
{
    uint8_t junk[3000];
    int i;
    for (i = 0; i < (int)sizeof junk; i++) {
        junk[i] = (uint8_t)(i * 131 + 7);
    }
    start_daemon();
    for (i = 0; i < 4; i++) {
        struct sockaddr_in a;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_ge(fd, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        test_msleep(50); /* its HELLO arrives and stays unread: the close resets */
        ck_assert_int_eq(send(fd, junk, sizeof junk, MSG_NOSIGNAL), (ssize_t)sizeof junk);
        close(fd);
    }
    test_msleep(300);
    stop_daemon();
    ck_assert_int_eq(run("grep -c event=close daemon.log"), 0);
    ck_assert_int_eq(atoi(out), 4);
    ck_assert_int_eq(run("grep event=close daemon.log"), 0);
    HASNT("reason=\"write failed\"");
    HASNT("reason=\"timer\"");
}
END_TEST

/* otaup-term --build-time takes the dates otaupctl takes (it took seconds
 * only: an operator copying otaupctl's command line got a usage error) */
START_TEST(test_term_build_time_date)
{
    ck_assert_int_eq(run("%s --flash a.flash --init v1.bin --id A --model M1 --version 1.0 --build-time 2026-01-10 "
                         "--quiet && grep build_time= a.flash.meta",
                         term),
                     0);
    HAS("build_time=1768003200");
    ck_assert_int_eq(run("%s --flash b.flash --init v1.bin --id B --model M1 --version 1.0 "
                         "--build-time 2026-01-10T12:30:05Z --quiet && grep build_time= b.flash.meta",
                         term),
                     0);
    HAS("build_time=1768048205");
    ck_assert_int_eq(run("%s --flash c.flash --init v1.bin --id C --model M1 --version 1.0 --build-time 2026-13-10",
                         term),
                     2);
    HAS("--build-time");
}
END_TEST

/* What otaup-term says: a terminal whose image was not the release its
 * version names is upgraded under the same version (it said "up to date"
 * with the server's "Upgrade complete" notice); an id registered with
 * another model is the server's refusal (it said "manifest for another
 * model", the terminal-side text of OTAUP_E_MODEL). */
START_TEST(test_term_says_what_happened)
{
    static uint8_t other[40000];
    e2e_make_image(other, sizeof other, 43);
    test_write_file(dir, "other.bin", other, sizeof other);
    ck_assert_int_eq(run("%s release add --model M1 --version 1.0 --build-time 1000 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s release add --model M1 --version 2.0 --build-time 2000 v2.bin", ctl), 0);
    ck_assert_int_eq(run("%s --flash a.flash --init other.bin --id A1 --model M1 --version 2.0 --build-time 2000 "
                         "--quiet",
                         term),
                     0);
    start_daemon();
    ck_assert_int_eq(run("%s --flash a.flash --connect 127.0.0.1:%d --timeout 30", term, port), 0);
    HAS("A1 upgraded 2.0 -> 2.0");
    ck_assert_int_eq(run("%s --flash b.flash --init v1.bin --id A1 --model M9 --version 1.0 --build-time 1000 --quiet",
                         term),
                     0);
    ck_assert_int_eq(run("%s --flash b.flash --connect 127.0.0.1:%d --timeout 30 --reconnect 0", term, port), 1);
    HAS("upgrade FAILED: this terminal id is registered with another model (OTAUP_E_MODEL)");
    stop_daemon();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scen_programs");
    TCase *tc = tcase_create("programs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_hashes_printed_canonically);
    tcase_add_loop_test(tc, test_small_sectors_served, 0, 4);
    tcase_add_test(tc, test_close_reasons_named);
    tcase_add_test(tc, test_term_build_time_date);
    tcase_add_test(tc, test_term_says_what_happened);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    int failed;
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
