/*
 * otaup command-line tool: helpers of the key, sign and verify commands.
 */
#include "sec_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcli.h"
#include "otaup/error.h"
#include "otaup/features.h"

uint8_t *sec_cli_read(const char *cmd, const char *path, size_t *len)
{
    return dcli_read_file(cmd, path, len);
}

int sec_cli_write(const char *cmd, const char *path, const void *data, size_t len, int mode)
{
    return dcli_write_file_ex(cmd, path, data, len, mode, 1);
}

#if OTAUP_HAVE_MBEDTLS /* the key parser is the mbedTLS back end's */
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
#endif

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
