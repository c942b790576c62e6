/*
 * The server programs facing bad input: otaupctl with missing files,
 * wrong models, unknown terminals, bad options; otaupd with a bad
 * address, an unreadable key, garbage on its socket, and a clean
 * shutdown on SIGTERM. Each must give a clear error and lose nothing.
 * Loopback only; every wait is bounded.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "otaup/registry.h"
#include "util/runcmd.h"

static char dir[128];
static char ctl[512], daemon_path[512], term_path[512];
static char out[8192];

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    snprintf(dir, sizeof dir, "/tmp/otaup-prog-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(bin);
    snprintf(ctl, sizeof ctl, "%s/examples/otaupctl/otaupctl", bin);
    snprintf(daemon_path, sizeof daemon_path, "%s/examples/otaupd/otaupd", bin);
    snprintf(term_path, sizeof term_path, "%s/examples/otaup-term/otaup-term", bin);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* run a shell command in dir, capture stdout+stderr; return exit code */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 20, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static void make_image(const char *name, size_t len, unsigned seed)
{
    char p[300];
    FILE *f;
    size_t i;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    f = fopen(p, "wb");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < len; i++) {
        fputc((int)((i * 7 + seed) & 0xFF), f);
    }
    fclose(f);
}

START_TEST(test_otaupctl_bad_input)
{
    make_image("v2.bin", 5000, 1);
    /* reading commands never create an empty registry */
    ck_assert_int_eq(run("%s --db r.db terminals", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "r.db"));
    ck_assert_int_ne(access("r.db", F_OK), 0);
    /* missing image */
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 5 nope.bin", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "nope.bin"));
    /* usage errors: exit 2 */
    ck_assert_int_eq(run("%s --db r.db release add --model M v2.bin", ctl), 2);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 2026-13-01 v2.bin", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "build-time"));
    /* milliseconds for seconds, or a time no date can show: refused, nothing published */
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 1769904000000 v2.bin", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "milliseconds"));
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 9223372036854775807 v2.bin", ctl),
                     2);
    ck_assert_int_ne(access("r.db", F_OK), 0);
    ck_assert_int_eq(run("%s --db r.db frobnicate", ctl), 2);
    ck_assert_int_eq(run("%s --bogus", ctl), 2);
    /* a good release, then the same again: refused, first one kept */
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 2026-11-20 v2.bin", ctl), 0);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2 --build-time 2026-11-20 v2.bin", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "already published"));
    ck_assert_int_eq(run("%s --db r.db releases", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "2026-11-20T00:00:00Z"));
    /* an older version published after a newer one: published, and said
     * to reach no terminal while the newer one is offered */
    make_image("v1.bin", 5000, 3);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1.9 --build-time 2026-11-21 v1.bin", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "note: release 1 (M 2, build time 2026-11-20T00:00:00Z) is newer"));
    make_image("v3.bin", 5000, 4);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2.1 --build-time 2026-11-19 v3.bin", ctl), 0);
    ck_assert_ptr_null(strstr(out, "newer"));
    /* unknown terminal */
    ck_assert_int_eq(run("%s --db r.db request T404", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "no terminal 'T404'"));
    ck_assert_int_eq(run("%s --db r.db status T404", ctl), 1);
    /* a file that is not a registry is left alone */
    make_image("notadb", 3000, 2);
    ck_assert_int_eq(run("cksum notadb"), 0);
    {
        char before[sizeof out];
        snprintf(before, sizeof before, "%s", out);
        ck_assert_int_eq(run("%s --db notadb terminals", ctl), 1);
        ck_assert_ptr_nonnull(strstr(out, "cannot open registry"));
        ck_assert_int_eq(run("cksum notadb"), 0);
        ck_assert_str_eq(out, before);
    }
    /* an empty file (a registry cut to nothing) is not taken for a new
     * registry by a command that reads: refused, left empty */
    ck_assert_int_eq(run("truncate -s 0 empty.db"), 0);
    ck_assert_int_eq(run("%s --db empty.db releases", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "empty (0 bytes)"));
    {
        struct stat st;
        char p[300];
        snprintf(p, sizeof p, "%s/empty.db", dir);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(st.st_size, 0);
    }
    /* the audit log kept the release */
    ck_assert_int_eq(run("%s --db r.db audit", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "release-added"));
    /* numbers are digits: nothing, blanks or a sign are usage errors (an
     * empty --limit was read as 0, no limit; a RELEASE too large for
     * release sign was read as the largest number, "no such release") */
    ck_assert_int_eq(run("%s --db r.db audit --limit ''", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "--limit"));
    ck_assert_int_eq(run("%s --db r.db audit --limit +3", ctl), 2);
    ck_assert_int_eq(run("%s --db r.db audit --limit 3", ctl), 0);
    ck_assert_int_eq(run("%s --db r.db release sign 99999999999999999999 --key none.key", ctl), 2);
    ck_assert_ptr_nonnull(strstr(out, "bad RELEASE"));
    ck_assert_int_eq(run("%s --db r.db release sign ' 1' --key none.key", ctl), 2);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 9.9.9 --build-time ' 7' v2.bin", ctl), 2);
    ck_assert_int_eq(
        run("%s --db r.db release add --model M --version 9.9.9 --build-time 7 --counter ' 7' v2.bin", ctl), 2);
    ck_assert_int_eq(run("%s --db r.db releases", ctl), 0);
    ck_assert_ptr_null(strstr(out, "9.9.9"));
}
END_TEST

/* Another process holds the registry's write lock for a second (otaupd
 * writing, a sqlite3 shell): otaupctl's writing commands wait for it
 * (busy_timeout_ms) and go on. `notify` used to write while it was
 * still reading the terminal list, which SQLite refuses at once
 * (SQLITE_BUSY without waiting): it failed with "database is locked" in
 * a few milliseconds whenever the daemon was writing. */
START_TEST(test_otaupctl_notify_waits_for_writer)
{
    char path[300];
    otaup_registry_options o;
    otaup_registry *reg;
    otaup_reg_terminal t;
    sqlite3 *db;
    pid_t pid;
    int st, i, done = 0;
    make_image("v1.bin", 5000, 1);
    make_image("v2.bin", 5000, 2);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1.0 --build-time 5 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2.0 --build-time 6 v2.bin", ctl), 0);
    snprintf(path, sizeof path, "%s/r.db", dir);
    otaup_registry_options_init(&o);
    ck_assert_int_eq(otaup_registry_sqlite_open(path, &o, &reg), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    snprintf(t.model, sizeof t.model, "M");
    snprintf(t.version, sizeof t.version, "1.0");
    t.build_time = 5;
    t.image_size = 5000;
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    otaup_registry_free(reg);
    /* the write lock, held by another connection */
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO audit(time, terminal, event, detail) "
                                      "VALUES(1, 'x', 'lock', 'held');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char cmd[1200];
        if (chdir(dir) != 0) {
            _exit(99);
        }
        snprintf(cmd, sizeof cmd, "exec %s --db r.db notify >notify.out 2>&1", ctl);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(98);
    }
    nanosleep(&(struct timespec){ 1, 0 }, NULL);
    /* still waiting for the lock, not failed at once */
    ck_assert_int_eq(waitpid(pid, &st, WNOHANG), 0);
    ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    for (i = 0; i < 200 && !done; i++) { /* up to 10 s */
        done = waitpid(pid, &st, WNOHANG) == pid;
        if (!done) {
            nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
        }
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    ck_assert(done);
    ck_assert_int_eq(run("cat notify.out"), 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "notify: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "sms to T1: New software 2.0"));
    ck_assert_ptr_nonnull(strstr(out, "notify: 1 queued, 1 sent"));
}
END_TEST

/* otaup-term pointed at a port where no server listens: --timeout bounds
 * the attempts to connect too (it used to try --reconnect times a second
 * apart whatever --timeout said: 20 s for --reconnect 20 --timeout 2), and
 * the closing line says it never connected instead of "link or stream
 * closed by the peer". A --reconnect beyond an int is refused (it was
 * read as -1: no reconnection at all). */
START_TEST(test_term_closed_port_bounded)
{
    int hold, port = test_refused_port(&hold); /* bound, never listening: refused */
    struct timespec t0, t1;
    double secs;
    make_image("v1.bin", 5000, 1);
    ck_assert_int_eq(run("%s --flash t.flash --init v1.bin --id T1 --model M --version 1.0 --build-time 5 --quiet",
                         term_path),
                     0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --reconnect 20 --timeout 2 --report rep.txt",
                         term_path, port),
                     1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(secs < 4.0, "otaup-term took %.1f s with --timeout 2", secs);
    ck_assert_ptr_nonnull(strstr(out, "cannot connect to 127.0.0.1:"));
    ck_assert_ptr_nonnull(strstr(out, "--timeout"));
    ck_assert_ptr_nonnull(strstr(out, "upgrade FAILED: could not connect to the server"));
    ck_assert_int_eq(run("cat rep.txt"), 0);
    ck_assert_ptr_nonnull(strstr(out, "result=-"));
    /* the default: three more attempts, a second apart */
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --quiet", term_path, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "could not connect"));
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --reconnect 4294967295 --timeout 2", term_path,
                         port),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--reconnect"));
    /* a report it could not write was found after the run, and not said */
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --timeout 1 --report nodir/r.txt", term_path, port),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--report nodir/r.txt: No such file or directory"));
    ck_assert_ptr_null(strstr(out, "cannot connect"));
    /* a directory is found before the run too (it passed as writable) */
    ck_assert_int_eq(run("mkdir rd && %s --flash t.flash --connect 127.0.0.1:%d --timeout 1 --report rd", term_path,
                         port),
                     2);
    ck_assert_ptr_nonnull(strstr(out, "--report rd: Is a directory"));
    ck_assert_ptr_null(strstr(out, "cannot connect"));
    /* one that fails only when written (a full device) is said after the run, exit 1 */
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --timeout 1 --report /dev/full", term_path, port),
                     1);
    ck_assert_ptr_nonnull(strstr(out, "--report /dev/full: cannot write it"));
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --timeout +2", term_path, port), 2);
    ck_assert_int_eq(run("%s --flash t.flash --connect 127.0.0.1:%d --drop ' 5'", term_path, port), 2);
    close(hold);
}
END_TEST

/* A registry file otaupd may not write: refused at start (exit 1, the
 * reason), not served. SQLite opened it read-only without a word and
 * every session failed at its first step ("attempt to write a readonly
 * database"). As root (who may write any file) the daemon runs as
 * nobody through setpriv, or the test has nothing to check. */
START_TEST(test_otaupd_read_only_registry)
{
    const char *as = "";
    make_image("v1.bin", 5000, 1);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1.0 --build-time 5 v1.bin", ctl), 0);
    ck_assert_int_eq(run("chmod 444 r.db && rm -f r.db.key"), 0);
    if (geteuid() == 0) {
        if (run("sh -c 'command -v setpriv'") != 0) {
            return;
        }
        as = "setpriv --reuid=65534 --regid=65534 --clear-groups ";
        ck_assert_int_eq(chmod(dir, 0777), 0);
    }
    ck_assert_int_eq(run("timeout 5 %s%s --db r.db --listen 127.0.0.1:0", as, daemon_path), 1);
    ck_assert_ptr_nonnull(strstr(out, "registry r.db"));
    ck_assert_ptr_nonnull(strstr(out, "needs to write it"));
    /* otaupctl still reads it */
    ck_assert_int_eq(run("%s%s --db r.db releases", as, ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "1.0"));
}
END_TEST

/* A registry with a table gone (a file edited by hand, a damaged
 * schema): otaupctl says what failed and exits 1. `status` printed "up to
 * date" when the policy could not read the releases, and `backups`
 * exited 1 without a word. */
START_TEST(test_otaupctl_registry_errors_said)
{
    char path[300];
    otaup_registry_options o;
    otaup_registry *reg;
    otaup_reg_terminal t;
    sqlite3 *db;
    make_image("v1.bin", 5000, 1);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1.0 --build-time 5 v1.bin", ctl), 0);
    snprintf(path, sizeof path, "%s/r.db", dir);
    otaup_registry_options_init(&o);
    ck_assert_int_eq(otaup_registry_sqlite_open(path, &o, &reg), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    snprintf(t.model, sizeof t.model, "M");
    snprintf(t.version, sizeof t.version, "0.9");
    t.build_time = 4;
    t.image_size = 5000;
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    otaup_registry_free(reg);
    ck_assert_int_eq(run("%s --db r.db status T1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "upgrade due: release 1"));
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "DROP TABLE releases; DROP TABLE backups", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(run("%s --db r.db status T1", ctl), 1);
    ck_assert_ptr_null(strstr(out, "up to date"));
    ck_assert_ptr_nonnull(strstr(out, "status: the policy"));
    ck_assert_ptr_nonnull(strstr(out, "no such table: releases"));
    ck_assert_ptr_nonnull(strstr(out, "status: the backups"));
    ck_assert_int_eq(run("%s --db r.db backups", ctl), 1);
    ck_assert_ptr_nonnull(strstr(out, "otaupctl: backups: registry database error"));
    ck_assert_ptr_nonnull(strstr(out, "no such table: backups"));
}
END_TEST

/* A notice queued for 2.0 while T1 ran 1.0 and not delivered before T1
 * installed 2.0 (otaupd upgraded it on the user's CONSENT): notify used to
 * send it all the same ("New software 2.0 ... (you have 1.0)" to a user
 * who has 2.0). It is not sent, and it is dropped from the outbox (it
 * stayed there, unsent, counted again by every later notify); a release
 * due later gets its own notice. */
START_TEST(test_otaupctl_notify_skips_stale_notices)
{
    char path[300];
    otaup_registry_options o;
    otaup_registry *reg;
    otaup_reg_terminal t;
    otaup_reg_release r1, r2;
    make_image("v1.bin", 5000, 1);
    make_image("v2.bin", 5000, 2);
    make_image("v3.bin", 5000, 3);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 1.0 --build-time 5 v1.bin", ctl), 0);
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 2.0 --build-time 6 v2.bin", ctl), 0);
    snprintf(path, sizeof path, "%s/r.db", dir);
    otaup_registry_options_init(&o);
    ck_assert_int_eq(otaup_registry_sqlite_open(path, &o, &reg), 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, 1, &r1, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, 2, &r2, NULL), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    snprintf(t.model, sizeof t.model, "M");
    snprintf(t.version, sizeof t.version, "1.0");
    t.build_time = 5;
    t.image_size = r1.image_size;
    memcpy(t.image_hash, r1.image_hash, sizeof t.image_hash);
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    ck_assert_int_eq(otaup_registry_notify(reg, &t, &r2, NULL), 1); /* queued as otaupd does */
    /* then T1 installs 2.0 before anyone ran notify */
    snprintf(t.version, sizeof t.version, "2.0");
    t.build_time = 6;
    t.image_size = r2.image_size;
    memcpy(t.image_hash, r2.image_hash, sizeof t.image_hash);
    snprintf(t.status, sizeof t.status, "upgraded");
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    otaup_registry_free(reg);
    ck_assert_int_eq(run("%s --db r.db notify", ctl), 0);
    ck_assert_msg(strstr(out, "sms to T1") == NULL, "notify: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "notify: 0 queued, 0 sent, 1 out of date dropped"));
    /* 3.0: its own notice goes out; the one for 2.0 is gone from the outbox */
    ck_assert_int_eq(run("%s --db r.db release add --model M --version 3.0 --build-time 7 v3.bin", ctl), 0);
    ck_assert_int_eq(run("%s --db r.db notify", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "sms to T1: New software 3.0"));
    ck_assert_ptr_null(strstr(out, "New software 2.0"));
    ck_assert_ptr_nonnull(strstr(out, "notify: 1 queued, 1 sent\n"));
    ck_assert_int_eq(run("%s --db r.db audit --terminal T1", ctl), 0);
    ck_assert_ptr_nonnull(strstr(out, "notice-dropped"));
}
END_TEST

static pid_t start_daemon_with(const char *prefix, const char *args)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char cmd[1200];
        if (chdir(dir) != 0) {
            _exit(99);
        }
        snprintf(cmd, sizeof cmd, "%sexec %s %s 2>daemon.log", prefix, daemon_path, args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(98);
    }
    return pid;
}

static pid_t start_daemon(const char *args)
{
    return start_daemon_with("", args);
}

static int connect_to(int port)
{
    struct sockaddr_in a;
    int i, fd;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (i = 0; i < 100; i++) { /* up to 5 s for the daemon to listen */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            return fd;
        }
        close(fd);
        nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
    }
    return -1;
}

static int wait_exit(pid_t pid, int secs)
{
    int st, i;
    for (i = 0; i < secs * 20; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

START_TEST(test_otaupd_bad_input_and_shutdown)
{
    int port = 20000 + (int)(getpid() % 20000);
    char args[200];
    pid_t pid;
    int fd, i;
    char buf[256];
    ssize_t r;
    /* bad listen address, bad option: usage exit 2 */
    ck_assert_int_eq(run("%s --listen nowhere", daemon_path), 2);
    ck_assert_ptr_nonnull(strstr(out, "--listen"));
    ck_assert_int_eq(run("%s --frob", daemon_path), 2);
    /* a port left out is not port 0 */
    ck_assert_int_eq(run("%s --listen 127.0.0.1:", daemon_path), 2);
    ck_assert_int_eq(run("%s --listen 127.0.0.1:+80", daemon_path), 2);
    /* numbers that are not: refused, not read as 0 (no window, every connection refused) */
    ck_assert_int_eq(run("%s --max-conns many", daemon_path), 2);
    ck_assert_ptr_nonnull(strstr(out, "--max-conns"));
    ck_assert_int_eq(run("%s --max-conns 0", daemon_path), 2);
    ck_assert_int_eq(run("%s --window 8x", daemon_path), 2);
    ck_assert_int_eq(run("%s --window -1", daemon_path), 2);
    /* a ceiling below the first timeout, or none */
    ck_assert_int_eq(run("%s --rto-max 999", daemon_path), 2);
    ck_assert_ptr_nonnull(strstr(out, "1000..600000"));
    ck_assert_int_eq(run("%s --rto-max", daemon_path), 2);
    /* a key file readable by others is refused */
    ck_assert_int_eq(run("sh -c 'printf %%064d 0 > k.key; chmod 644 k.key'"), 0);
    ck_assert_int_eq(run("%s --db r.db --key k.key --listen 127.0.0.1:%d", daemon_path, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "master key"));
    /* a registry in a missing directory */
    ck_assert_int_eq(run("%s --db nodir/r.db --key k2.key --listen 127.0.0.1:%d", daemon_path, port), 1);
    /* without --db: $OTAUP_DB, as otaupctl */
    ck_assert_int_eq(run("env OTAUP_DB=envdir/e.db %s --listen 127.0.0.1:%d", daemon_path, port), 1);
    ck_assert_ptr_nonnull(strstr(out, "envdir/e.db"));

    snprintf(args, sizeof args, "--db r.db --listen 127.0.0.1:%d", port);
    pid = start_daemon(args);
    /* garbage on the socket: that connection is closed, the daemon lives on */
    for (i = 0; i < 3; i++) {
        fd = connect_to(port);
        ck_assert_int_ge(fd, 0);
        memset(buf, 0xA5 + i, sizeof buf);
        ck_assert_int_eq(send(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
        {
            struct timeval tv = { 5, 0 };
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        }
        do {
            r = recv(fd, buf, sizeof buf, 0);
        } while (r > 0);
        ck_assert_int_eq(r, 0); /* closed by the server, not timed out */
        close(fd);
    }
    /* and it still accepts */
    fd = connect_to(port);
    ck_assert_int_ge(fd, 0);
    close(fd);
    /* SIGTERM: clean exit 0 */
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(wait_exit(pid, 10), 0);
    ck_assert_int_eq(run("cat daemon.log"), 0);
    ck_assert_ptr_nonnull(strstr(out, "event=listen"));
    ck_assert_ptr_nonnull(strstr(out, "event=close"));
    ck_assert_ptr_nonnull(strstr(out, "event=stopped"));
    /* the registry it created is valid and its key private */
    ck_assert_int_eq(run("%s --db r.db terminals", ctl), 0);
    {
        struct stat st;
        char kp[300];
        snprintf(kp, sizeof kp, "%s/r.db.key", dir);
        ck_assert_int_eq(stat(kp, &st), 0);
        ck_assert_int_eq(st.st_mode & 077, 0);
    }
}
END_TEST

/* --listen ADDR:0 takes any free port and says which in its listen line */
START_TEST(test_otaupd_port_zero)
{
    pid_t pid = start_daemon("--db r.db --listen 127.0.0.1:0");
    unsigned port = 0;
    int i, fd = -1;
    for (i = 0; i < 100 && port == 0; i++) { /* up to 5 s */
        const char *p;
        nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
        if (run("cat daemon.log") == 0 && (p = strstr(out, "event=listen addr=127.0.0.1:")) != NULL) {
            port = (unsigned)strtoul(p + strlen("event=listen addr=127.0.0.1:"), NULL, 10);
        }
    }
    ck_assert_uint_gt(port, 0);
    fd = connect_to((int)port);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(wait_exit(pid, 10), 0);
}
END_TEST

/* CPU seconds (user + system) process pid has used, from /proc */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* after the command name: state is field 3, utime 14, stime 15 */
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* More connections than its open-file limit allows (64 here): otaupd
 * keeps max_conns below the limit (logged), refuses the connections
 * beyond it one by one, does not spin on a listening socket it cannot
 * accept from (it used to: accept() failing with EMFILE left the socket
 * readable, a busy loop), and accepts again once they are gone. */
START_TEST(test_otaupd_fd_limit)
{
    int port = 20000 + (int)((getpid() + 7919) % 20000), fds[60], i, fd;
    char args[200];
    double c0, c1;
    pid_t pid;
    snprintf(args, sizeof args, "--db r.db --listen 127.0.0.1:%d --max-conns 1000", port);
    pid = start_daemon_with("ulimit -n 64; ", args);
    for (i = 0; i < 60; i++) {
        fds[i] = connect_to(port);
        ck_assert_int_ge(fds[i], 0);
    }
    nanosleep(&(struct timespec){ 0, 300000000 }, NULL);
    c0 = cpu_seconds(pid);
    nanosleep(&(struct timespec){ 1, 0 }, NULL);
    c1 = cpu_seconds(pid);
    ck_assert_msg(c1 - c0 < 0.25, "otaupd used %.2f s of CPU in 1 s with its connections full", c1 - c0);
    for (i = 0; i < 60; i++) {
        close(fds[i]);
    }
    nanosleep(&(struct timespec){ 0, 500000000 }, NULL);
    ck_assert_int_eq(run("grep -c 'event=accept ' daemon.log"), 0);
    i = atoi(out);
    fd = connect_to(port);
    ck_assert_int_ge(fd, 0);
    nanosleep(&(struct timespec){ 0, 300000000 }, NULL);
    ck_assert_int_eq(run("grep -c 'event=accept ' daemon.log"), 0);
    ck_assert_int_eq(atoi(out), i + 1); /* accepted again */
    close(fd);
    /* SIGHUP (its terminal closed) stops it as SIGTERM does: sessions
     * saved, exit 0 (it was killed by the signal) */
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    ck_assert_int_eq(wait_exit(pid, 10), 0);
    ck_assert_int_eq(run("grep -c 'event=stopped' daemon.log"), 0);
    ck_assert_int_eq(run("cat daemon.log"), 0);
    ck_assert_ptr_nonnull(strstr(out, "event=limit max_conns=32 instead of 1000"));
    ck_assert_ptr_nonnull(strstr(out, "reason=max-conns"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("programs");
    TCase *tc = tcase_create("bad-input");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_otaupctl_bad_input);
    tcase_add_test(tc, test_otaupd_bad_input_and_shutdown);
    tcase_add_test(tc, test_otaupd_fd_limit);
    tcase_add_test(tc, test_otaupd_port_zero);
    tcase_add_test(tc, test_otaupctl_notify_waits_for_writer);
    tcase_add_test(tc, test_term_closed_port_bounded);
    tcase_add_test(tc, test_otaupd_read_only_registry);
    tcase_add_test(tc, test_otaupctl_registry_errors_said);
    tcase_add_test(tc, test_otaupctl_notify_skips_stale_notices);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
