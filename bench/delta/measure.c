/*
 * bench/delta/measure — run one command and report its wall time and peak
 * memory, for the delta benchmark (bench/delta/run.sh).
 *
 *   measure [-t SECONDS] -o FILE -- COMMAND [ARG...]
 *
 * Writes one line "MICROSECONDS PEAK_KIB" to FILE: the wall time from fork
 * to the command's exit (CLOCK_MONOTONIC) and the maximum resident set of
 * the command (wait4's ru_maxrss). The command's output is passed through.
 * Exit status: the command's, 124 if it ran longer than SECONDS (it and its
 * process group are killed), 125 on a usage or system error, 126/127 if the
 * command could not be run.
 *
 * Why not /usr/bin/time: its %e has a resolution of 10 ms, and the wrapper
 * processes' own start-up (time, timeout) costs more than that on a small
 * virtual machine, while many apply runs finish in a few milliseconds. Here
 * only the command's own exec is inside the measured interval.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: measure [-t SECONDS] -o FILE -- COMMAND [ARG...]\n");
    return 125;
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    const char *outfile = NULL;
    unsigned long limit = 0;
    int i = 1;
    while (i < argc && strcmp(argv[i], "--") != 0) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
            outfile = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            limit = strtoul(argv[i + 1], &end, 10);
            if (errno != 0 || end == argv[i + 1] || *end != '\0' || limit == 0 || limit > 86400) {
                fprintf(stderr, "measure: -t needs 1..86400 seconds\n");
                return 125;
            }
            i += 2;
        } else {
            return usage();
        }
    }
    if (outfile == NULL || i + 1 >= argc) {
        return usage();
    }
    char **cmd = argv + i + 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0) {
        perror("measure: sigaction");
        return 125;
    }

    long long t0 = now_us();
    pid_t pid = fork();
    if (pid < 0) {
        perror("measure: fork");
        return 125;
    }
    if (pid == 0) {
        setpgid(0, 0);
        execvp(cmd[0], cmd);
        int e = errno;
        fprintf(stderr, "measure: cannot run %s: %s\n", cmd[0], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    setpgid(pid, pid);
    if (limit > 0) {
        alarm((unsigned)limit);
    }

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    for (;;) {
        pid_t r = wait4(pid, &status, 0, &ru);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno == EINTR) {
            if (timed_out) {
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
            }
            continue;
        }
        perror("measure: wait4");
        return 125;
    }
    long long t1 = now_us();
    alarm(0);

    FILE *f = fopen(outfile, "w");
    if (f == NULL) {
        fprintf(stderr, "measure: cannot write %s: %s\n", outfile, strerror(errno));
        return 125;
    }
    fprintf(f, "%lld %ld\n", t1 - t0, (long)ru.ru_maxrss);
    if (fclose(f) != 0) {
        fprintf(stderr, "measure: cannot write %s\n", outfile);
        return 125;
    }

    if (timed_out) {
        fprintf(stderr, "measure: %s ran longer than %lu s: killed\n", cmd[0], limit);
        return 124;
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "measure: %s killed by signal %d\n", cmd[0], WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    return 125;
}
