/*
 * Fuzz target: otaup's raw-deflate encoder (lib/server/deflate_opt.c).
 *
 * Input: byte 0 = window bits (9 + b % 7) and effort (1 + (b / 7) % 4);
 * byte 1 = how to feed: bit 7 set: one call (FINISH); otherwise pieces
 * whose sizes and flush modes (none, BLOCK, SYNC) come from a generator
 * seeded with bytes 1..3; the rest is the data. Invariants:
 *  - the stream inflates with zlib at the same window bits, one output
 *    byte per call (so any distance beyond the window is refused), to
 *    exactly the data, ends with its final block and nothing after it;
 *  - after each SYNC, an inflater fed the output so far has produced
 *    every byte written so far, and the output ends with 00 00 FF FF;
 *  - the one-shot size is within otaup_dfl_bound().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/error.h"
#include "server/deflate_opt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)      \
    do {              \
        if (!(c)) {   \
            abort();  \
        }             \
    } while (0)

/* strict inflate of z[0..zl): one output byte per call */
static void check_inflate(const uint8_t *z, size_t zl, const uint8_t *in, size_t n, unsigned w)
{
    z_stream zs;
    uint8_t *out = malloc(n + 1u);
    size_t got = 0;
    int r;
    CHECK(out != NULL);
    memset(&zs, 0, sizeof zs);
    CHECK(inflateInit2(&zs, -(int)w) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)z;
    zs.avail_in = (uInt)zl;
    do {
        zs.next_out = out + got;
        zs.avail_out = 1;
        r = inflate(&zs, Z_NO_FLUSH);
        got = zs.total_out;
    } while (r == Z_OK && got <= n);
    CHECK(r == Z_STREAM_END);
    CHECK(got == n);
    CHECK(zs.avail_in == 0);
    CHECK(n == 0 || memcmp(out, in, n) == 0);
    inflateEnd(&zs);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned w;
    int effort;
    const uint8_t *in;
    size_t n;
    if (size < 4) {
        return 0;
    }
    w = 9u + data[0] % 7u;
    effort = 1 + (data[0] / 7) % 4;
    in = data + 4;
    n = size - 4;
    if (data[1] & 0x80u) {
        uint8_t *z = NULL;
        size_t zl = 0;
        CHECK(otaup_dfl_compress(in, n, w, effort, &z, &zl) == 0);
        CHECK(zl <= otaup_dfl_bound(n));
        check_inflate(z, zl, in, n, w);
        free(z);
    } else {
        otaup_dfl *s = otaup_dfl_new(w, effort);
        uint32_t g = (uint32_t)data[1] | ((uint32_t)data[2] << 8) | ((uint32_t)data[3] << 16);
        uint8_t *acc = malloc(otaup_dfl_bound(n) * 2u + 64u * (n + 1u));
        uint8_t *dec = malloc(n + 1u);
        size_t al = 0, pos = 0, got;
        z_stream zs;
        CHECK(s != NULL && acc != NULL && dec != NULL);
        memset(&zs, 0, sizeof zs);
        CHECK(inflateInit2(&zs, -(int)w) == Z_OK);
        while (pos < n) {
            size_t k;
            int fl;
            const uint8_t *o;
            g = g * 1103515245u + 12345u;
            k = 1u + (g >> 16) % (1u + (g >> 4) % 600u);
            fl = (int)((g >> 9) % 3u);
            if (k > n - pos) {
                k = n - pos;
            }
            CHECK(otaup_dfl_write(s, in + pos, k, fl) == 0);
            pos += k;
            o = otaup_dfl_output(s, &got);
            memcpy(acc + al, o, got);
            zs.next_in = acc + al;
            zs.avail_in = (uInt)got;
            al += got;
            otaup_dfl_consume(s, got);
            zs.next_out = dec + zs.total_out;
            zs.avail_out = (uInt)(n + 1u - zs.total_out);
            {
                int r = inflate(&zs, Z_SYNC_FLUSH);
                CHECK(r == Z_OK || r == Z_BUF_ERROR);
            }
            CHECK(zs.total_out <= pos);
            if (fl == OTAUP_DFL_SYNC) {
                CHECK(zs.total_out == pos);
                CHECK(memcmp(dec, in, pos) == 0);
                CHECK(al >= 4 && memcmp(acc + al - 4, "\x00\x00\xff\xff", 4) == 0);
            }
        }
        CHECK(otaup_dfl_write(s, NULL, 0, OTAUP_DFL_FINISH) == 0);
        {
            const uint8_t *o = otaup_dfl_output(s, &got);
            memcpy(acc + al, o, got);
            al += got;
        }
        CHECK(otaup_dfl_write(s, in, n, OTAUP_DFL_NO_FLUSH) == OTAUP_E_STATE);
        check_inflate(acc, al, in, n, w);
        inflateEnd(&zs);
        otaup_dfl_free(s);
        free(acc);
        free(dec);
    }
    return 0;
}
