/*
 * Fuzz target: the block signature parser and the planner's matching
 * against a signature. Any input must be refused or accepted without a
 * crash; an accepted one must be self-consistent. Each input is parsed
 * once more with its check hashes recomputed, to reach the fields behind
 * them. Then the input is cut into OLD and a tail, NEW = tail + OLD (OLD's
 * blocks at an offset that is rarely a block multiple, the tail changing
 * them or not): a delta planned from OLD's signature alone must rebuild
 * NEW from OLD.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void parse(const uint8_t *data, size_t size)
{
    otaup_sig s;
    if (otaup_sig_parse(data, size, &s) == 0) {
        uint32_t i;
        uint64_t x = 0;
        if (size != OTAUP_SIG_SIZE((uint64_t)s.info.size, (uint64_t)s.info.block_size)) {
            abort();
        }
        for (i = 0; i < s.nblocks; i++) {
            x ^= otaup_sig_block_hash(&s, i);
        }
        (void)x;
    }
}

static void match(const uint8_t *data, size_t size)
{
    size_t cut = size > 0 ? (size_t)data[0] * size / 256u : 0;
    const uint8_t *old = data, *tail = data + cut;
    size_t old_len = cut, tail_len = size - cut, new_len = tail_len + old_len;
    uint8_t *nw = malloc(new_len + 1u), *out = malloc(new_len + 1u), *sig = NULL;
    size_t sig_len = 0, dlen;
    otaup_sig s;
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_plan *p = NULL;
    const uint8_t *bytes;
    char err[160];
    if (nw == NULL || out == NULL) {
        abort();
    }
    memcpy(nw, tail, tail_len);
    memcpy(nw + tail_len, old, old_len);
    if (otaup_sig_create(old, old_len, 1, 2, OTAUP_SIG_BLOCK_MIN, &sig, &sig_len) != 0 ||
        otaup_sig_parse(sig, sig_len, &s) != 0) {
        abort();
    }
    otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION);
    o.layout = (size & 1u) ? OTAUP_LAYOUT_INPLACE : OTAUP_LAYOUT_AB;
    if (otaup_delta_create(NULL, 0, &s, nw, new_len, &o, &d) != 0) {
        abort();
    }
    bytes = otaup_delta_bytes(d, &dlen);
    if (otaup_delta_decode(bytes, dlen, &p) != 0 ||
        otaup_plan_simulate(p, old, old_len, out, new_len, NULL, err, sizeof err) != 0 ||
        memcmp(out, nw, new_len) != 0) {
        abort();
    }
    otaup_plan_free(p);
    otaup_delta_free(d);
    free(sig);
    free(nw);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size);
    if (size >= OTAUP_SIG_HEADER_SIZE + 8u) {
        uint8_t *copy = malloc(size);
        if (copy == NULL) {
            abort();
        }
        memcpy(copy, data, size);
        put64(copy + 56, otaup_hash64(copy, 56));
        put64(copy + size - 8u, otaup_hash64(copy + OTAUP_SIG_HEADER_SIZE, size - 8u - OTAUP_SIG_HEADER_SIZE));
        parse(copy, size);
        free(copy);
    }
    if (size <= 65536u) {
        match(data, size);
    }
    return 0;
}
