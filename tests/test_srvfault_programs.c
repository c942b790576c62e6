/*
 * Server-side faults through the real programs (otaupd, otaupctl,
 * otaup-term over loopback) that the other program suites do not place:
 *
 *   - otaupd under a file-size limit (RLIMIT_FSIZE, `ulimit -f`) that its
 *     registry's write-ahead log reaches during a backup: a clear registry
 *     error in the log, the daemon still serving, the terminal on its old
 *     image with its personal data, and the upgrade done once the daemon
 *     runs without the limit;
 *   - a second otaupd started on a registry that one already serves (by
 *     another path to the same file): refused with the reason, the first
 *     one serving on; after the first is killed (SIGKILL) a new one starts
 *     at once;
 *   - a terminal refused as already connected while its id's session is
 *     live on another connection: otaup-term tries again until it ends;
 *   - otaupd started with a master key that is not its registry's while a
 *     backup is held: refused before it serves.
 *
 * Every wait is bounded; every process started is stopped by its pid.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/runcmd.h"

static char dir[128];
static char ctl[512], daemon_path[512], term_path[512];
static char fw1[512], fw2[512];
static char out[16384];
static pid_t dpid = -1;

/* otaup-term's flash map with --user-size 32768 and the default 256 KiB
 * slot and 4 KiB sectors: slot, scratch (1 sector), journal (2 sectors),
 * then the personal data (docs/server.md, otaup-term) */
#define USER_OFF 0x43000u
#define USER_LEN 32768u

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    const char *vec = getenv("OTAUP_VECTORS");
    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(vec);
    snprintf(dir, sizeof dir, "/tmp/otaup-srvfault-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl", bin);
    snprintf(daemon_path, sizeof daemon_path, "%s/examples/otaupd/otaupd", bin);
    snprintf(term_path, sizeof term_path, "%s/examples/otaup-term/otaup-term", bin);
    snprintf(fw1, sizeof fw1, "%s/firmware/fw-v1.bin", vec);
    snprintf(fw2, sizeof fw2, "%s/firmware/fw-v2.bin", vec);
    dpid = -1;
}

static void teardown(void)
{
    test_teardown_dir(dir, dpid);
    dpid = -1;
}

static int run(unsigned seconds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(unsigned seconds, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, seconds, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static long file_size(const char *name)
{
    char p[300];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    ck_assert_int_eq(stat(p, &st), 0);
    return (long)st.st_size;
}

static int daemon_alive(void)
{
    return dpid > 0 && waitpid(dpid, NULL, WNOHANG) == 0;
}

static int log_has(const char *what)
{
    char p[300], line[4096];
    FILE *f;
    int found = 0;
    snprintf(p, sizeof p, "%s/daemon.log", dir);
    f = fopen(p, "r");
    if (f == NULL) {
        return 0;
    }
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = strstr(line, what) != NULL;
    }
    fclose(f);
    return found;
}

/* 1.0 published, a terminal T1 on it with 32 KiB of personal data
 * (t.flash, a copy in t.orig), 2.0 published */
static void fleet_of_one(void)
{
    ck_assert_int_eq(run(30, "%s --db r.db release add --model M1 --version 1.0 --build-time 1000 %s", ctl, fw1), 0);
    ck_assert_int_eq(run(30,
                         "%s --flash t.flash --init %s --id T1 --model M1 --version 1.0 --build-time 1000 "
                         "--user-size %u --quiet && cp t.flash t.orig",
                         term_path, fw1, USER_LEN),
                     0);
    ck_assert_int_eq(run(30, "%s --db r.db release add --model M1 --version 2.0 --build-time 2000 %s", ctl, fw2), 0);
}

static int term_run(int port)
{
    return run(90, "%s --flash t.flash --connect 127.0.0.1:%d --timeout 30 --reconnect 2 --quiet", term_path, port);
}

/* the boot slot holds IMAGE byte for byte, the personal data are those
 * --init wrote */
static void flash_is(const char *image)
{
    ck_assert_int_eq(run(10, "cmp -s -n $(stat -c %%s %s) t.flash %s", image, image), 0);
    ck_assert_int_eq(run(10, "cmp -s -i %u:%u -n %u t.flash t.orig", USER_OFF, USER_OFF, USER_LEN), 0);
}

/* otaupd started with RLIMIT_FSIZE at `limit` bytes (`ulimit -f`), as
 * test_start_otaupd does otherwise */
static pid_t start_otaupd_fsize(int port, rlim_t limit)
{
    char cmd[2048];
    int i;
    pid_t pid;
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec %s --db r.db --listen 127.0.0.1:%d --auto-request >>daemon.log 2>&1", dir,
             daemon_path, port);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = limit;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
            _exit(126);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100 && !log_has("event=listen"); i++) {
        test_msleep(50);
    }
    ck_assert_msg(log_has("event=listen"), "otaupd did not start (see %s/daemon.log)", dir);
    return pid;
}

/* The registry's write-ahead log reaches the process's file-size limit while
 * the 32 KiB backup is stored. Without SIGXFSZ ignored, the kernel killed
 * otaupd at that write (exit by signal 25, no log line, no session saved);
 * now the write fails, the session fails with the registry's reason and the
 * daemon goes on. */
START_TEST(test_fsize_limit)
{
    int port = test_free_port(), rc;
    fleet_of_one();
    /* the registry file as otaupctl left it, plus 8 KiB: the backup does not fit */
    dpid = start_otaupd_fsize(port, (rlim_t)file_size("r.db") + 8192);
    rc = term_run(port);
    ck_assert_msg(rc == 1, "otaup-term exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "still runs 1.0, personal data intact"));
    ck_assert_msg(daemon_alive(), "otaupd died at the file-size limit (see %s/daemon.log)", dir);
    ck_assert(log_has("level=error terminal=T1 event=failed"));
    ck_assert(log_has("registry database error (OTAUP_E_DB)"));
    flash_is(fw1);
    ck_assert_int_eq(test_stop_pid(dpid, SIGTERM), 0);
    dpid = -1;
    /* the registry still opens; without the limit the upgrade ends */
    ck_assert_int_eq(run(30, "%s --db r.db status T1", ctl), 0);
    dpid = test_start_otaupd(dir, daemon_path, port, "--auto-request");
    rc = term_run(port);
    ck_assert_msg(rc == 0, "otaup-term exit %d: %s", rc, out);
    flash_is(fw2);
    ck_assert_int_eq(run(30, "%s --db r.db backups", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 backups held"));
    ck_assert_int_eq(run(30, "sqlite3 r.db 'PRAGMA integrity_check' 2>/dev/null || echo ok"), 0);
    ck_assert_ptr_nonnull(strstr(out, "ok"));
}
END_TEST

/* Two daemons on one registry would each claim terminals in their own
 * memory only: the second one is refused, whatever path names the file. */
START_TEST(test_second_daemon_refused)
{
    int port = test_free_port(), port2 = test_free_port(), rc;
    fleet_of_one();
    dpid = test_start_otaupd(dir, daemon_path, port, "--auto-request");
    rc = run(10, "ln -s r.db alias.db && timeout 5 %s --db \"$PWD/alias.db\" --listen 127.0.0.1:%d --auto-request",
             daemon_path, port2);
    ck_assert_msg(rc == 1, "second otaupd exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "is served by another otaupd already"));
    ck_assert_int_ne(run(5, "test -e alias.db.key"), 0); /* no key file made for it */
    rc = run(10, "timeout 5 %s --db r.db --listen 127.0.0.1:%d", daemon_path, port2);
    ck_assert_msg(rc == 1, "second otaupd exit %d: %s", rc, out);
    /* the first one serves on */
    ck_assert(daemon_alive());
    rc = term_run(port);
    ck_assert_msg(rc == 0, "otaup-term exit %d: %s", rc, out);
    flash_is(fw2);
    /* killed, it leaves no lock behind: the next one starts at once */
    kill(dpid, SIGKILL);
    waitpid(dpid, NULL, 0);
    dpid = test_start_otaupd(dir, daemon_path, port2, "");
    ck_assert(daemon_alive());
    ck_assert_int_eq(test_stop_pid(dpid, SIGTERM), 0);
    dpid = -1;
}
END_TEST

static pid_t spawn(const char *cmdline)
{
    char cmd[2048];
    pid_t pid;
    snprintf(cmd, sizeof cmd, "cd '%s' && exec %s", dir, cmdline);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* exit code of pid, waiting at most `seconds` (then killed: -1) */
static int reap(pid_t pid, unsigned seconds)
{
    unsigned i;
    int st;
    for (i = 0; i < seconds * 20u; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        test_msleep(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A terminal refused as already connected (its id's session is live on
 * another connection: here a copy of its flash on a slow link, as a first
 * link that went silent would keep it) tries again until that session
 * ends, within --timeout: its three reconnections a second apart were all
 * refused, and it failed with OTAUP_E_EXISTS. */
START_TEST(test_refused_while_connected)
{
    int port = test_free_port(), rc, i;
    char cmd[1024];
    pid_t first;
    fleet_of_one();
    ck_assert_int_eq(run(10, "cp t.flash c.flash && cp t.flash.meta c.flash.meta"), 0);
    dpid = test_start_otaupd(dir, daemon_path, port, "--auto-request");
    snprintf(cmd, sizeof cmd,
             "%s --flash c.flash --connect 127.0.0.1:%d --timeout 60 --frame 128 --window 2 --rtt 50 "
             "--damage-user-data --quiet "
             ">first.out 2>&1",
             term_path, port);
    first = spawn(cmd);
    for (i = 0; i < 200 && !log_has("terminal=T1 event=info"); i++) {
        test_msleep(50);
    }
    ck_assert(log_has("terminal=T1 event=info"));
    rc = run(90, "%s --flash t.flash --connect 127.0.0.1:%d --timeout 60 --reconnect 3", term_path, port);
    ck_assert_msg(log_has("terminal=T1 event=failed terminal T1 is already connected"),
                  "the second connection was not refused: the test did not overlap the sessions");
    ck_assert_msg(rc == 0, "otaup-term exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "trying again in 2 s"));
    flash_is(fw2);
    ck_assert_int_eq(reap(first, 60), 0);
    ck_assert_int_eq(run(30, "%s --db r.db backups", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 backups held"));
}
END_TEST

/* otaupd started with a master key that is not its registry's (another
 * --key; by default a key file is made new beside the path it is given)
 * while a backup is held: it served, and the resumed session failed its
 * restore with OTAUP_E_DECRYPT. It is refused now, the key file it would
 * have made is not left behind, and the right key finishes the upgrade. */
START_TEST(test_wrong_master_key)
{
    int port = test_free_port(), rc;
    fleet_of_one();
    dpid = test_start_otaupd(dir, daemon_path, port, "--auto-request");
    /* a power cut in the transfer: the backup is held */
    rc = run(60, "%s --flash t.flash --connect 127.0.0.1:%d --timeout 30 --cut-after 2 --quiet", term_path, port);
    ck_assert_msg(rc == 3, "otaup-term exit %d: %s", rc, out);
    ck_assert_int_eq(test_stop_pid(dpid, SIGTERM), 0);
    dpid = -1;
    ck_assert_int_eq(run(30, "%s --db r.db backups", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "1 backups held"));
    rc = run(10, "timeout 5 %s --db r.db --key other.key --listen 127.0.0.1:%d", daemon_path, port);
    ck_assert_msg(rc == 1, "otaupd with another key: exit %d: %s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "is not the key of registry r.db"));
    ck_assert_ptr_nonnull(strstr(out, "terminal T1"));
    ck_assert_int_ne(run(5, "test -e other.key"), 0);
    /* the same through a symbolic link: its default key file is another one */
    rc = run(10, "ln -s r.db alias.db && timeout 5 %s --db alias.db --listen 127.0.0.1:%d", daemon_path, port);
    ck_assert_msg(rc == 1, "otaupd through a link: exit %d: %s", rc, out);
    ck_assert_int_ne(run(5, "test -e alias.db.key"), 0);
    /* the registry's own key: resumed, upgraded, the backup deleted */
    dpid = test_start_otaupd(dir, daemon_path, port, "--auto-request");
    rc = term_run(port);
    ck_assert_msg(rc == 0, "otaup-term exit %d: %s", rc, out);
    flash_is(fw2);
    ck_assert_int_eq(run(30, "%s --db r.db backups", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "0 backups held"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srvfault_programs");
    TCase *tc = tcase_create("srvfault");
    SRunner *sr;
    int failed;
    signal(SIGPIPE, SIG_IGN);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_fsize_limit);
    tcase_add_test(tc, test_second_daemon_refused);
    tcase_add_test(tc, test_refused_while_connected);
    tcase_add_test(tc, test_wrong_master_key);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
