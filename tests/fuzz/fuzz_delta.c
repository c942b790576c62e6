/*
 * Fuzz target: the delta container reader (header, sections, outer
 * records, body hash), fed whole and in chunks whose sizes come from the
 * input, and the server-side decoder of the whole plan. They must agree, and neither may crash or hang.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/features.h"
#include "otaup/otaup.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
    return 0;
}
