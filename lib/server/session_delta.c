/*
 * otaup — the session driver's default delta provider: the registry's
 * delta cache (filled when a release is published, the seed's "analysis
 * stored ahead of time"), else the planner. Server side, C11.
 */
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/session.h"

int otaup_session_default_delta(otaup_registry *reg, const otaup_reg_terminal *t,
                                const otaup_reg_release *r, const uint8_t *sig, size_t sig_len,
                                otaup_blob *delta, uint32_t *body_offset, void *payload)
{
    otaup_reg_delta_key k;
    otaup_delta_header h;
    int rc;
    (void)payload;
    (void)sig;
    (void)sig_len;
    if (reg == NULL || t == NULL || r == NULL || delta == NULL || body_offset == NULL ||
        t->layout_len > sizeof k.layout) {
        return OTAUP_E_INVAL;
    }
    memset(&k, 0, sizeof k);
    memcpy(k.src_hash, t->image_hash, sizeof k.src_hash);
    memcpy(k.dst_hash, r->image_hash, sizeof k.dst_hash);
    memcpy(k.layout, t->layout, t->layout_len);
    k.layout_len = t->layout_len;
    rc = otaup_registry_delta_get(reg, &k, delta);
    if (rc == OTAUP_E_NOT_FOUND) {
        /* planning on demand arrives with the planner (otaup_delta_create);
         * until then only deltas computed when the release was published */
        otaup_reg_release src;
        rc = otaup_registry_release_by_hash(reg, t->image_hash, &src, NULL);
        return rc == 0 ? OTAUP_E_UNSUPPORTED : OTAUP_E_SOURCE_MISMATCH;
    }
    if (rc < 0) {
        return rc;
    }
    rc = otaup_delta_check(delta->data, delta->len, &h, body_offset);
    if (rc < 0) {
        otaup_blob_free(delta);
        return rc;
    }
    if (memcmp(h.source_hash, t->image_hash, 16) != 0 || memcmp(h.target_hash, r->image_hash, 16) != 0) {
        otaup_blob_free(delta);
        return OTAUP_E_SOURCE_MISMATCH;
    }
    return 0;
}
