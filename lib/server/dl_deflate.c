/*
 * The planner's compressor, raw streams: zlib's deflate for levels 1..9,
 * otaup's near-optimal encoder for 10..12. The one place that chooses the
 * encoder (docs/delta-format.md, "Delta engine"; docs/deflate.md).
 */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "otaup/error.h"
#include "server/deflate_opt.h"
#include "server/dl_deflate.h"

/*
 * Levels 10..12: otaup's near-optimal encoder (deflate_opt.c) at the
 * delta's window; 10 is effort 3, 11 and 12 effort 4. It chooses its
 * block boundaries itself from the statistics of the parse, so the cuts
 * are not imposed on it.
 */
static int near_optimal(const uint8_t *in, size_t n, unsigned wbits, int level, uint8_t **out, size_t *out_len)
{
    return otaup_dfl_compress(in, n, wbits, level >= 11 ? OTAUP_DFL_BEST : OTAUP_DFL_OPT, out, out_len);
}

int dl_deflate(const uint8_t *in, size_t n, unsigned wbits, int level, const size_t *cuts, size_t ncuts,
               uint8_t **out, size_t *out_len)
{
    z_stream zs;
    uint8_t *buf;
    size_t cap, pos = 0, k = 0;
    int zr;
    if (out == NULL || out_len == NULL || (in == NULL && n > 0) || wbits < 9 || wbits > 15 || level < 1 ||
        level > DL_LEVEL_MAX || n > 0x7FFFFFFFu) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    if (level > 9) {
        return near_optimal(in, n, wbits, level, out, out_len);
    }
    memset(&zs, 0, sizeof zs);
    /* zlib refuses a raw window of 2^8 and rounds 9 up; 9..15 are all fine */
    if (deflateInit2(&zs, level, Z_DEFLATED, -(int)wbits, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        return OTAUP_E_NOMEM;
    }
    cap = deflateBound(&zs, (uLong)n) + 16u + 8u * ncuts;
    buf = malloc(cap);
    if (buf == NULL) {
        deflateEnd(&zs);
        return OTAUP_E_NOMEM;
    }
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    /* feed up to each cut with Z_BLOCK (a block ends there), then finish */
    for (;;) {
        size_t end = n;
        int flush = Z_FINISH;
        while (k < ncuts && (cuts[k] <= pos || cuts[k] >= n)) {
            k++;
        }
        if (k < ncuts) {
            end = cuts[k];
            flush = Z_BLOCK;
        }
        zs.next_in = (Bytef *)(uintptr_t)(in + pos);
        zs.avail_in = (uInt)(end - pos);
        for (;;) {
            if (zs.avail_out < 64u) {
                size_t used = cap - zs.avail_out;
                uint8_t *nb = realloc(buf, cap * 2u);
                if (nb == NULL) {
                    free(buf);
                    deflateEnd(&zs);
                    return OTAUP_E_NOMEM;
                }
                buf = nb;
                zs.next_out = buf + used;
                zs.avail_out = (uInt)(cap * 2u - used);
                cap *= 2u;
            }
            zr = deflate(&zs, flush);
            if (zr == Z_STREAM_ERROR) {
                free(buf);
                deflateEnd(&zs);
                return OTAUP_E_INTERNAL;
            }
            /* done when the stream ended, or the block flush completed */
            if (flush == Z_FINISH ? zr == Z_STREAM_END : zs.avail_out != 0) {
                break;
            }
        }
        pos = end;
        if (flush == Z_FINISH) {
            break;
        }
    }
    *out_len = cap - zs.avail_out;
    *out = buf;
    deflateEnd(&zs);
    return 0;
}
