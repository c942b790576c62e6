/*
 * Helpers shared by the delta commands of the otaup tool.
 */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define DCLI_MMAP 1
#endif

#include "dcli.h"

const uint8_t *dcli_map_file(const char *cmd, const char *path, size_t *len, int *mapped)
{
    *mapped = 0;
#ifdef DCLI_MMAP
    {
        /* a regular file is mapped: no copy, and its pages come from the page cache */
        struct stat st;
        int fd = open(path, O_RDONLY);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
            (uint64_t)st.st_size <= 0xFFFFFFFFu) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
            close(fd);
            if (p != MAP_FAILED) {
                *len = (size_t)st.st_size;
                *mapped = 1;
                return p;
            }
        } else if (fd >= 0) {
            close(fd);
        }
    }
#endif
    return dcli_read_file(cmd, path, len);
}

void dcli_unmap_file(const uint8_t *p, size_t len, int mapped)
{
#ifdef DCLI_MMAP
    if (mapped) {
        munmap((void *)(uintptr_t)p, len);
        return;
    }
#endif
    (void)len;
    (void)mapped;
    free((void *)(uintptr_t)p);
}

uint8_t *dcli_read_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int err = 0;
    if (f == NULL) {
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            /* grown before it is full, so that buf[n] = 0 always fits */
            size_t nc = cap ? cap * 2 : (size_t)1 << 16;
            uint8_t *v;
            if (n > 0xFFFFFFFFu || nc < cap) {
                fprintf(stderr, "otaup %s: %s: larger than 4 GiB\n", cmd, path);
                free(buf);
                fclose(f);
                return NULL;
            }
            v = realloc(buf, nc);
            if (v == NULL) {
                fprintf(stderr, "otaup %s: %s: out of memory\n", cmd, path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = v;
            cap = nc;
        }
        errno = 0;
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            err = errno;
            break;
        }
    }
    if (ferror(f)) {
        /* the reason (a directory: "Is a directory"), not a bare "read error" */
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, path, err != 0 ? strerror(err) : "read error");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    if (n > 0xFFFFFFFFu) {
        fprintf(stderr, "otaup %s: %s: larger than 4 GiB\n", cmd, path);
        free(buf);
        return NULL;
    }
    buf[n] = 0; /* n < cap: the loop ends on a read with room left */
    *len = n;
    return buf;
}

const char *dcli_write_target(const char *path, char *buf, size_t cap)
{
#ifdef DCLI_MMAP
    struct stat st;
    char *real;
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && (real = realpath(path, NULL)) != NULL) {
        int fits = strlen(real) < cap;
        if (fits) {
            strcpy(buf, real);
        }
        free(real);
        return fits ? buf : path;
    }
#else
    (void)buf;
    (void)cap;
#endif
    return path;
}

int dcli_write_tmp(const char *cmd, const char *path, const void *data, size_t len, int mode, int sync, char *tmp,
                   char *target, size_t cap)
{
    const char *t = dcli_write_target(path, target, cap); /* a link stays a link */
    if (t != target) {
        if (strlen(t) >= cap) {
            fprintf(stderr, "otaup %s: %s: path too long\n", cmd, path);
            return -1;
        }
        memmove(target, t, strlen(t) + 1);
    }
    path = target;
#ifdef DCLI_MMAP
    {
        /* a name of this process's own: two runs writing the same output
         * never write one temporary file; the last rename wins whole */
        const uint8_t *p = data;
        int fd;
        if (snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid()) >= (int)cap) {
            fprintf(stderr, "otaup %s: %s: path too long\n", cmd, path);
            return -1;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0 && errno == EEXIST && unlink(tmp) == 0) {
            /* left by an earlier process of the same number, killed before its rename */
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        }
        if (fd < 0) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
            return -1;
        }
        while (len > 0) {
            ssize_t w = write(fd, p, len);
            if (w <= 0) {
                fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, w < 0 ? strerror(errno) : "write error");
                close(fd);
                unlink(tmp);
                return -1;
            }
            p += w;
            len -= (size_t)w;
        }
        if ((sync && fsync(fd) != 0) || close(fd) != 0) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
            unlink(tmp);
            return -1;
        }
    }
#else
    {
        FILE *f;
        (void)mode;
        (void)sync;
        if (snprintf(tmp, cap, "%s.tmp", path) >= (int)cap) {
            fprintf(stderr, "otaup %s: %s: path too long\n", cmd, path);
            return -1;
        }
        f = fopen(tmp, "wb");
        if (f == NULL) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
            return -1;
        }
        if ((len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
            fprintf(stderr, "otaup %s: %s: write error\n", cmd, tmp);
            remove(tmp);
            return -1;
        }
    }
#endif
    return 0;
}

int dcli_write_commit(const char *cmd, const char *tmp, const char *target)
{
    if (rename(tmp, target) != 0) {
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, target, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

int dcli_write_file_ex(const char *cmd, const char *path, const void *data, size_t len, int mode, int sync)
{
    char tmp[4096], target[4096];
    if (dcli_write_tmp(cmd, path, data, len, mode, sync, tmp, target, sizeof target) != 0) {
        return -1;
    }
    return dcli_write_commit(cmd, tmp, target);
}

int dcli_write_set(const char *cmd, size_t n, const dcli_out *outs, int sync)
{
    static char tmp[DCLI_SET_MAX][4096], target[DCLI_SET_MAX][4096], old[DCLI_SET_MAX][4096];
    int existed[DCLI_SET_MAX], kept[DCLI_SET_MAX];
    size_t i, j, written = 0, renamed = 0;
    int ok = n <= DCLI_SET_MAX;
    if (!ok) {
        fprintf(stderr, "otaup %s: too many files in one set\n", cmd);
        return -1;
    }
    memset(kept, 0, sizeof kept);
    /* every new file whole, beside its old one, before any is renamed */
    for (i = 0; ok && i < n; i++) {
        ok = dcli_write_tmp(cmd, outs[i].path, outs[i].data, outs[i].len, outs[i].mode, sync, tmp[i], target[i],
                            sizeof target[i]) == 0;
        written += ok;
    }
#ifdef DCLI_MMAP
    /* a name that a rename cannot replace (a directory, ...) is found now,
     * while the old set is whole */
    for (i = 0; ok && i < n; i++) {
        struct stat st;
        existed[i] = lstat(target[i], &st) == 0;
        if (existed[i] && !S_ISREG(st.st_mode)) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, target[i],
                    S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
            ok = 0;
        }
    }
    /* the old files kept under a second name (a hard link) until every
     * rename is done, so that a rename that fails can put them back */
    for (i = 0; ok && i < n; i++) {
        if (existed[i] && snprintf(old[i], sizeof old[i], "%s.old.%ld", target[i], (long)getpid()) <
                              (int)sizeof old[i]) {
            (void)unlink(old[i]);
            kept[i] = link(target[i], old[i]) == 0;
        }
    }
#else
    memset(existed, 0, sizeof existed);
#endif
    for (i = 0; ok && i < n; i++) {
        if (rename(tmp[i], target[i]) != 0) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, target[i], strerror(errno));
            ok = 0;
        } else {
            renamed++;
        }
    }
    if (!ok) {
        /* the set as it was: the old files back, the new ones gone */
        for (j = 0; j < renamed; j++) {
            if (kept[j]) {
                (void)rename(old[j], target[j]);
                kept[j] = 0;
            } else if (!existed[j]) {
                (void)remove(target[j]);
            }
        }
        for (j = renamed; j < written; j++) {
            (void)remove(tmp[j]);
        }
    }
    for (j = 0; j < n; j++) {
        if (kept[j]) {
            (void)remove(old[j]);
        }
    }
    return ok ? 0 : -1;
}

int dcli_write_file(const char *cmd, const char *path, const void *data, size_t len)
{
    return dcli_write_file_ex(cmd, path, data, len, 0666, 0);
}

int dcli_same_file(const char *a, const char *b)
{
#ifdef DCLI_MMAP
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) {
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    }
#endif
    return strcmp(a, b) == 0;
}

int dcli_output_clash(const char *cmd, const char *out, const char *const *inputs, const char *const *what,
                      size_t n)
{
    size_t i;
    for (i = 0; out != NULL && i < n; i++) {
        if (inputs[i] != NULL && dcli_same_file(out, inputs[i])) {
            fprintf(stderr, "otaup %s: the output %s is the %s (%s): give another output file\n", cmd, out, what[i],
                    inputs[i]);
            return -1;
        }
    }
    return 0;
}

int dcli_parse_num(const char *s, unsigned long long *v, const char **end)
{
    int base = 10;
    const char *p = s;
    char *e = NULL;
    if (s == NULL) {
        return -1;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    /* strtoull alone would also take spaces, signs and (base 0) octal */
    if (!(base == 16 ? isxdigit((unsigned char)*p) : isdigit((unsigned char)*p))) {
        return -1;
    }
    errno = 0;
    *v = strtoull(p, &e, base);
    if (errno != 0) {
        return -1;
    }
    *end = e;
    return 0;
}

int dcli_parse_u32(const char *s, uint32_t *out)
{
    const char *end = NULL;
    unsigned long long v;
    unsigned long long mul = 1;
    if (dcli_parse_num(s, &v, &end) != 0) {
        return -1;
    }
    if (*end == 'k' || *end == 'K') {
        mul = 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mul = 1024 * 1024;
        end++;
    } else if (*end == 'g' || *end == 'G') {
        mul = 1024ull * 1024 * 1024;
        end++;
    }
    if (mul > 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) {
        end += strlen(end);
    }
    if (*end != 0 || v > 0xFFFFFFFFull / mul) {
        return -1;
    }
    *out = (uint32_t)(v * mul);
    return 0;
}

static struct {
    const char *cmd;
    int quiet, shown;
    struct timespec t0;
    char last_phase[32];
} prog;

static double since_start(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - prog.t0.tv_sec) + (double)(t.tv_nsec - prog.t0.tv_nsec) / 1e9;
}

void dcli_progress_start(const char *cmd, int quiet)
{
    prog.cmd = cmd;
    prog.quiet = quiet;
    prog.shown = 0;
    prog.last_phase[0] = 0;
    clock_gettime(CLOCK_MONOTONIC, &prog.t0);
}

void dcli_progress(const char *phase, uint64_t done, uint64_t total, void *payload)
{
    (void)payload;
    if (prog.quiet || since_start() < 1.0) {
        return;
    }
    if (total > 0) {
        fprintf(stderr, "\rotaup %s: %-8s %3u%%", prog.cmd, phase, (unsigned)(done * 100u / total));
    } else {
        fprintf(stderr, "\rotaup %s: %-8s     ", prog.cmd, phase);
    }
    fflush(stderr);
    prog.shown = 1;
}

void dcli_progress_end(void)
{
    if (prog.shown) {
        fprintf(stderr, "\r%60s\r", "");
        fflush(stderr);
        prog.shown = 0;
    }
}
