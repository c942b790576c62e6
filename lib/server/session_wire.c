/*
 * otaup — the session driver's wire layer: command-protocol frames
 * (docs/protocol.md) to session messages and back.
 *
 * The mapping (docs/server.md, "Wire") is implemented on the codec's
 * otaup/proto.h; until that header is part of the build this layer
 * reports OTAUP_E_UNSUPPORTED and the session driver is usable at the
 * message level only (session_core.h).
 */
#include <stdlib.h>

#include "otaup/error.h"
#include "server/session_core.h"

struct otaup_swire {
    int unused;
};

int otaup_swire_new(otaup_swire **out)
{
    *out = calloc(1, sizeof **out);
    return *out == NULL ? OTAUP_E_NOMEM : 0;
}

void otaup_swire_free(otaup_swire *w)
{
    free(w);
}

int otaup_swire_feed(otaup_swire *w, const uint8_t *in, size_t len,
                     int (*deliver)(void *ctx, const otaup_sm *m), void *ctx)
{
    (void)w, (void)in, (void)len, (void)deliver, (void)ctx;
    return OTAUP_E_UNSUPPORTED;
}

int otaup_swire_encode(otaup_swire *w, const otaup_sm *m, uint32_t max_frame, uint8_t *out, size_t cap)
{
    (void)w, (void)m, (void)max_frame, (void)out, (void)cap;
    return OTAUP_E_UNSUPPORTED;
}

uint32_t otaup_swire_overhead(void)
{
    return 16u + 16u; /* frame header + CRC, and a BATCH/RESTORE message head */
}
