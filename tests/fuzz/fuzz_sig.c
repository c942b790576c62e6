/*
 * Fuzz target: the block signature parser. Any input must be refused or
 * accepted without a crash; an accepted one must be self-consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
    return 0;
}
