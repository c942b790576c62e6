/*
 * Fuzz target: the delta container reader (header, sections, outer
 * records, body hash), fed whole and in chunks whose sizes come from the
 * input, and the server-side decoder of the whole plan; each input also
 * once more with its hashes recomputed, to reach the inner layers. They must agree, and neither may crash or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/features.h"
#include "otaup/otaup.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int chunked(const uint8_t *data, size_t size)
{
    otaup_delta_reader r;
    size_t off = 0, step = 1 + (size > 0 ? data[size - 1] % 17u : 0u);
    otaup_delta_reader_init(&r);
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        for (;;) {
            size_t u = 0;
            int ev = otaup_delta_reader_feed(&r, data + off + used, n - used, &u);
            used += u;
            if (used > n) {
                abort();
            }
            if (ev < 0) {
                return ev;
            }
            if (ev == OTAUP_DELTA_NEED_INPUT) {
                break;
            }
            if ((ev == OTAUP_DELTA_RECORD_BYTES || ev == OTAUP_DELTA_SECTION_BYTES) &&
                (r.data < data || r.data + r.data_len > data + size)) {
                abort();
            }
        }
        off += n;
    }
    {
        int rc = otaup_delta_reader_finish(&r);
        return rc == OTAUP_DELTA_END ? 0 : rc;
    }
}

/* Rewrite body length, body hash and header check so that mutations of the
 * body reach the record and inflate layers instead of the hash check. */
static uint8_t *fix_hashes(const uint8_t *data, size_t size, size_t *out_len)
{
    uint8_t *c;
    size_t hsz = size >= 12u ? (size_t)(data[10] | (data[11] << 8)) : 0; /* header size field */
    size_t off = hsz;
    unsigned n = 0;
    XXH128_hash_t h;
    if (size < OTAUP_DELTA_HEADER_MIN + 6u || hsz < OTAUP_DELTA_HEADER_MIN || hsz > OTAUP_DELTA_HEADER_MAX ||
        memcmp(data, "OTAUPDLT", 8) != 0 || size > 0xFFFFFFFFu) {
        return NULL;
    }
    while (off + 6u <= size && n++ < 20u) { /* walk the sections */
        uint32_t tag = (uint32_t)data[off] | ((uint32_t)data[off + 1] << 8);
        uint32_t len = (uint32_t)data[off + 2] | ((uint32_t)data[off + 3] << 8) |
                       ((uint32_t)data[off + 4] << 16) | ((uint32_t)data[off + 5] << 24);
        off += 6u;
        if (tag == 0) {
            break;
        }
        if (len > size - off) {
            return NULL;
        }
        off += len;
    }
    if (off > size) {
        return NULL;
    }
    c = malloc(size);
    if (c == NULL) {
        return NULL;
    }
    memcpy(c, data, size);
    {
        /* format 2: body length at 100, body hash at 104, check hash in the last 8 header bytes */
        uint32_t bl = (uint32_t)(size - off);
        c[100] = (uint8_t)bl;
        c[101] = (uint8_t)(bl >> 8);
        c[102] = (uint8_t)(bl >> 16);
        c[103] = (uint8_t)(bl >> 24);
    }
    h = XXH3_128bits(c + off, size - off);
    for (n = 0; n < 8; n++) {
        c[104 + n] = (uint8_t)(h.low64 >> (8 * n));
        c[112 + n] = (uint8_t)(h.high64 >> (8 * n));
    }
    {
        uint64_t hc = XXH3_64bits(c, hsz - 8u);
        for (n = 0; n < 8; n++) {
            c[hsz - 8u + n] = (uint8_t)(hc >> (8 * n));
        }
    }
    *out_len = size;
    return c;
}

static void run_all(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t fl = 0;
    uint8_t *fixed = fix_hashes(data, size, &fl);
    run_all(data, size);
    if (fixed != NULL) {
        run_all(fixed, fl);
        free(fixed);
    }
    return 0;
}

static void run_all(const uint8_t *data, size_t size)
{
    int whole = otaup_delta_check(data, size, NULL, NULL);
    int parts = chunked(data, size);
    if ((whole == 0) != (parts == 0)) {
        abort();
    }
#if !OTAUP_TERMINAL_ONLY_BUILD
    {
        /* the server-side decoder inflates and checks every inner record */
        otaup_plan *p = NULL;
        if (otaup_delta_decode(data, size, &p) == 0) {
            if (whole != 0) {
                abort();
            }
            otaup_plan_free(p);
        }
    }
#endif
}
