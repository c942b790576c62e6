#include "util/runcmd.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int test_vrun(const char *dir, unsigned seconds, char *out, size_t cap, const char *fmt, va_list ap)
{
    char cmd[2048], full[2600];
    FILE *p;
    size_t n;
    int st;
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    snprintf(full, sizeof full, "cd '%s' && timeout %u %s 2>&1", dir, seconds, cmd);
    p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void test_msleep(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int test_free_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), p;
    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    p = ntohs(a.sin_port);
    close(fd);
    return p;
}

int test_refused_port(int *fd)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(*fd, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(*fd, (struct sockaddr *)&a, &n), 0);
    return ntohs(a.sin_port);
}

void test_write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[600];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

int test_stop_pid(pid_t pid, int sig)
{
    int st = -1, i;
    ck_assert_int_gt(pid, 0);
    kill(pid, sig);
    for (i = 0; i < 200; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        test_msleep(50);
    }
    ck_abort_msg("process %d did not stop", (int)pid);
    return -1;
}

/* occurrences of "event=listen" in dir/daemon.log (0 if it does not exist) */
static int listens(const char *dir)
{
    char path[1024], line[2048];
    FILE *f;
    int n = 0;
    snprintf(path, sizeof path, "%s/daemon.log", dir);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "event=listen") != NULL) {
            n++;
        }
    }
    fclose(f);
    return n;
}

pid_t test_start_otaupd(const char *dir, const char *otaupd, int port, const char *args)
{
    char cmd[2048];
    int i, before = listens(dir);
    pid_t pid;
    snprintf(cmd, sizeof cmd, "cd '%s' && exec %s --db r.db --listen 127.0.0.1:%d %s >>daemon.log 2>&1", dir,
             otaupd, port, args);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 100; i++) {
        if (listens(dir) > before) {
            return pid;
        }
        test_msleep(50);
    }
    ck_abort_msg("otaupd did not start listening on port %d (see %s/daemon.log)", port, dir);
    return pid;
}

void test_teardown_dir(const char *dir, pid_t pid)
{
    char cmd[1200];
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
