/*
 * Running a program under test through the shell, as a user would.
 */
#ifndef OTAUP_TEST_RUNCMD_H
#define OTAUP_TEST_RUNCMD_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/* Run the shell command made from fmt/ap in `dir`, bounded by `timeout(1)`
 * to `seconds`, with stdout and stderr captured into out[0..cap)
 * (NUL-terminated, truncated). Returns its exit code, -1 if it did not
 * exit. Fails the current test if the shell cannot be started. */
int test_vrun(const char *dir, unsigned seconds, char *out, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* Sleep for ms milliseconds. */
void test_msleep(long ms);

/* A loopback TCP port nobody listens on now (the kernel picks it). */
int test_free_port(void);
/* A loopback port that refuses every connection while *fd stays open: a
 * socket bound to it without listen() and without SO_REUSEADDR, so that no
 * other test's server can take it meanwhile (test_free_port's port can be
 * handed out again at once). Close *fd when done. */
int test_refused_port(int *fd);

/* Write p[0..n) to dir/name (fails the current test on error). */
void test_write_file(const char *dir, const char *name, const void *p, size_t n);

/* Send sig to pid and wait for it, at most 10 s (fails the current test
 * after that). Returns its exit code, -1 if it did not exit normally. */
int test_stop_pid(pid_t pid, int sig);

/* Start otaupd (the program at `otaupd`) in `dir` with `--db r.db --listen
 * 127.0.0.1:PORT ARGS` (args may be ""), its output appended to
 * dir/daemon.log, and wait (5 s at most) until that log shows one more
 * `event=listen` than before. Returns its pid; fails the current test if
 * it cannot be started or does not listen. */
pid_t test_start_otaupd(const char *dir, const char *otaupd, int port, const char *args);

/* Kill pid with SIGKILL and reap it (when pid > 0), then remove dir and
 * everything in it (fails the current test if that fails). */
void test_teardown_dir(const char *dir, pid_t pid);

#endif
