/*
 * The SQLite registry while another process holds its write lock
 * (docs/server.md, "SQLite backend"): a write waits busy_timeout_ms for
 * it once; while no write has gone through since, the next ones wait
 * 50 ms at most, so that a caller running many sessions in one loop
 * (otaupd) is held up once per lock instead of busy_timeout_ms per
 * write (measured: a 30 s lock held otaupd's loop 28 s, every session's
 * INFO costing three 5 s waits). Once a write goes through, the next
 * lock is waited for in full again.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/registry.h"

static char dir[128], dbpath[200];
static otaup_registry *reg;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void setup(void)
{
    uint8_t key[32];
    otaup_registry_options o;
    otaup_reg_terminal t;
    snprintf(dir, sizeof dir, "/tmp/otaup-reglock-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/reg.db", dir);
    memset(key, 0x3A, sizeof key);
    otaup_registry_options_init(&o);
    o.master_key = key;
    o.busy_timeout_ms = 1000;
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), 0);
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "T1");
    snprintf(t.model, sizeof t.model, "M1");
    snprintf(t.version, sizeof t.version, "1.0");
    snprintf(t.status, sizeof t.status, "new");
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
}

static void teardown(void)
{
    char cmd[200];
    otaup_registry_free(reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* A child process takes the write lock, says so on the pipe, holds it
 * hold_ms and releases it. Returns its pid once the lock is held. */
static pid_t hold_lock(unsigned hold_ms)
{
    int fd[2];
    char c;
    pid_t pid;
    ck_assert_int_eq(pipe(fd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        sqlite3 *db;
        close(fd[0]);
        if (sqlite3_open(dbpath, &db) != SQLITE_OK ||
            sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO audit(time, terminal, event, detail) "
                             "VALUES(0, '-', 'lock', 'held by the test')",
                         NULL, NULL, NULL) != SQLITE_OK) {
            _exit(1);
        }
        if (write(fd[1], "L", 1) != 1) {
            _exit(1);
        }
        {
            struct timespec ts;
            ts.tv_sec = (time_t)(hold_ms / 1000u);
            ts.tv_nsec = (long)(hold_ms % 1000u) * 1000000L;
            nanosleep(&ts, NULL);
        }
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        _exit(0);
    }
    close(fd[1]);
    ck_assert_int_eq(read(fd[0], &c, 1), 1);
    close(fd[0]);
    return pid;
}

static void reap(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A lock held for longer than the busy timeout: the first write waits
 * it out, the next nine fail within 50 ms each (they used to wait the
 * full second each), the reason in the message; released, the next
 * write goes through and a short lock after it is waited for again. */
START_TEST(test_held_lock_waited_once)
{
    pid_t pid = hold_lock(4000);
    uint64_t t0, t1, t2;
    int i, rc;
    t0 = mono_ms();
    rc = otaup_registry_terminal_set_status(reg, "T1", "a");
    t1 = mono_ms();
    ck_assert_int_eq(rc, OTAUP_E_DB);
    ck_assert_uint_ge(t1 - t0, 900);
    ck_assert_ptr_nonnull(strstr(otaup_registry_errmsg(reg), "database is locked"));
    for (i = 0; i < 9; i++) {
        ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "b"), OTAUP_E_DB);
    }
    t2 = mono_ms();
    ck_assert_msg(t2 - t1 < 1000, "9 writes under a known-held lock took %llu ms",
                  (unsigned long long)(t2 - t1));
    ck_assert_ptr_nonnull(strstr(otaup_registry_errmsg(reg), "another process holds the write lock"));
    reap(pid);
    /* released: the next write goes through at once */
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "c"), 0);
    /* and a lock shorter than the busy timeout is waited for, as before */
    pid = hold_lock(300);
    t0 = mono_ms();
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "d"), 0);
    ck_assert_uint_ge(mono_ms() - t0, 150);
    reap(pid);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("registry_lock");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_held_lock_waited_once);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
