/*
 * For tests/test_xxh3.c: the compact XXH3 compiled in its fast (host) form
 * with the portable 64x64->128 multiply, under its own names; the test
 * compiles the compact (terminal) form itself and links the library's.
 */
#define OTAUP_XXH3_COMPACT 0
#define OTAUP_XXH3_NO_INT128 1
#define otaup_xxh3_reset fast_xxh3_reset
#define otaup_xxh3_update fast_xxh3_update
#define otaup_xxh3_digest64 fast_xxh3_digest64
#define otaup_xxh3_digest128 fast_xxh3_digest128
#define otaup_xxh3_64 fast_xxh3_64
#include "core/xxh3.h"

void fast_xxh3_reset(otaup_xxh3 *s);
void fast_xxh3_update(otaup_xxh3 *s, const void *data, size_t len);
uint64_t fast_xxh3_digest64(const otaup_xxh3 *s);
void fast_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16]);
uint64_t fast_xxh3_64(const void *data, size_t len);

#include "core/xxh3.c"
