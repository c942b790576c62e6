/*
 * Block signature of an image in memory (server side).
 */
#include <stdlib.h>
#include <string.h>

#include "core/dl_util.h"
#include "otaup/error.h"
#include "otaup/image.h"

int otaup_sig_create(const uint8_t *img, size_t len, uint32_t version, uint64_t build_time,
                     uint32_t block_size, uint8_t **out, size_t *out_len)
{
    otaup_image_info info;
    uint32_t n, i;
    size_t total;
    uint8_t *buf;
    if ((img == NULL && len > 0) || out == NULL || out_len == NULL || len > 0xFFFFFFFFu ||
        block_size < OTAUP_SIG_BLOCK_MIN || block_size > OTAUP_SIG_BLOCK_MAX ||
        (block_size & (block_size - 1u)) != 0) {
        return OTAUP_E_INVAL;
    }
    memset(&info, 0, sizeof info);
    info.version = version;
    info.build_time = build_time;
    info.size = (uint32_t)len;
    info.block_size = block_size;
    otaup_hash128(img, len, info.hash);
    n = (uint32_t)((len + block_size - 1u) / block_size);
    total = OTAUP_SIG_HEADER_SIZE + 8u * (size_t)n + 8u;
    buf = malloc(total);
    if (buf == NULL) {
        return OTAUP_E_NOMEM;
    }
    otaup_sig_header_encode(&info, buf, total);
    for (i = 0; i < n; i++) {
        size_t off = (size_t)i * block_size;
        size_t bl = len - off < block_size ? len - off : block_size;
        otaup_dl_put64(buf + OTAUP_SIG_HEADER_SIZE + 8u * (size_t)i, otaup_sig_entry(img + off, bl));
    }
    otaup_dl_put64(buf + OTAUP_SIG_HEADER_SIZE + 8u * (size_t)n,
                   XXH3_64bits(buf + OTAUP_SIG_HEADER_SIZE, 8u * (size_t)n));
    *out = buf;
    *out_len = total;
    return 0;
}
