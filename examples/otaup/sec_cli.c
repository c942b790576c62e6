/*
 * otaup command-line tool: helpers of the key, sign and verify commands.
 */
#include "sec_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcli.h"
#include "otaup/error.h"

uint8_t *sec_cli_read(const char *cmd, const char *path, size_t *len)
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
        if (cap - n < 65536) {
            size_t nc = cap ? cap * 2 : 65536;
            uint8_t *nb;
            if (nc > ((size_t)1 << 31)) {
                fprintf(stderr, "otaup %s: %s: file too large\n", cmd, path);
                free(buf);
                fclose(f);
                return NULL;
            }
            nb = realloc(buf, nc + 1);
            if (nb == NULL) {
                fprintf(stderr, "otaup %s: out of memory\n", cmd);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
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
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, path, err != 0 ? strerror(err) : "read error");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

int sec_cli_write(const char *cmd, const char *path, const void *data, size_t len, int mode)
{
    char tmp[4096], target[4096];
    int fd;
    const uint8_t *p = data;
    path = dcli_write_target(path, target, sizeof target); /* a link stays a link */
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "otaup %s: %s: path too long\n", cmd, path);
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
        return -1;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0) {
            fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "otaup %s: %s: %s\n", cmd, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

otaup_key *sec_cli_load_key(const char *cmd, const char *path)
{
    size_t len;
    uint8_t *buf = sec_cli_read(cmd, path, &len);
    otaup_key *k = NULL;
    int rc;
    if (buf == NULL) {
        return NULL;
    }
    rc = otaup_key_parse(buf, len, &k);
    memset(buf, 0, len);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "otaup %s: %s: not an ECDSA P-256 key (%s)\n", cmd, path, otaup_strerror(rc));
        return NULL;
    }
    return k;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int sec_cli_hex32(const char *s, uint8_t out[32])
{
    size_t i;
    if (strlen(s) != 64) {
        return -1;
    }
    for (i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return 0;
}

void sec_cli_print_hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
}

int sec_cli_u64(const char *s, uint64_t max, uint64_t *out)
{
    const char *end;
    unsigned long long v;
    if (dcli_parse_num(s, &v, &end) != 0 || *end != 0 || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}
