/*
 * otaup — signed releases on the server side (docs/server.md, "Signed
 * releases"): signing the deltas of a release at publication
 * (otaup_session_sign_release, run by `otaupctl release add --sign`) so
 * that the daemon never holds the private key, and signing one delta on
 * demand (otaup_session_sign_delta) for a daemon that was given a key.
 * Signed deltas sit in the registry's delta cache next to the unsigned
 * ones, under the same key plus a variant byte. Server side, C11.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/session.h"
#include "otaup/sign.h"
#include "server/session_core.h"

int otaup_session_delta_signed(const uint8_t *d, size_t len)
{
    otaup_delta_header h;
    uint32_t body = 0;
    const uint8_t *mf;
    size_t mf_len;
    if (d == NULL || otaup_delta_check(d, len, &h, &body) < 0) {
        return 0;
    }
    return otaup_delta_find_manifest(d, body, &mf, &mf_len) == 0;
}

int otaup_session_key_id_hex(const uint8_t *d, size_t len, char out[17])
{
    otaup_delta_header h;
    otaup_manifest m;
    uint32_t body = 0;
    const uint8_t *mf;
    size_t mf_len;
    unsigned i;
    out[0] = '\0';
    if (d == NULL || otaup_delta_check(d, len, &h, &body) < 0 ||
        otaup_delta_find_manifest(d, body, &mf, &mf_len) != 0 || otaup_manifest_parse(mf, mf_len, &m) != 0 ||
        m.nsigs == 0) {
        return OTAUP_E_UNSIGNED;
    }
    for (i = 0; i < OTAUP_KEY_ID_LEN; i++) {
        snprintf(out + 2 * i, 3, "%02x", m.sigs[1 + i]); /* entry: alg, key id, r || s */
    }
    return 0;
}

int otaup_session_sign_delta(otaup_registry *reg, const struct otaup_key *key, const otaup_reg_terminal *t,
                             const otaup_reg_release *r, const uint8_t *source_sha256, const uint8_t *d, size_t len,
                             otaup_blob *out)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_crypto c;
    otaup_sign_options o;
    otaup_blob img = { NULL, 0 }, old = { NULL, 0 };
    otaup_reg_release rr, src;
    char note[OTAUP_REG_ID_MAX + OTAUP_REG_VERSION_MAX + 16];
    uint8_t *signed_d = NULL;
    size_t signed_len = 0;
    int rc;
    if (out != NULL) {
        out->data = NULL;
        out->len = 0;
    }
    if (reg == NULL || key == NULL || t == NULL || r == NULL || d == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_crypto_mbedtls(&c);
    if (rc < 0) {
        return rc;
    }
    rc = otaup_registry_release_get(reg, r->id, &rr, &img);
    if (rc < 0) {
        return rc;
    }
    otaup_sign_options_init(&o, OTAUP_SIGN_OPTIONS_VERSION);
    o.model = (const uint8_t *)rr.model;
    o.model_len = strlen(rr.model);
    o.target_version = otaup_version_pack(rr.version);
    o.build_time = rr.build_time < 0 ? 0u : (uint64_t)rr.build_time;
    o.counter = rr.security_counter;
    o.policy = rr.allow_downgrade ? OTAUP_POLICY_ALLOW_DOWNGRADE : 0u;
    o.new_img = img.data;
    o.new_len = img.len;
    snprintf(note, sizeof note, "%s %s", rr.model, rr.version);
    o.note = note;
    /* the source: the registry's own copy of the image (its SHA-256 is
     * computed here), else the SHA-256 the terminal reported */
    if (otaup_registry_release_by_hash(reg, t->image_hash, &src, &old) == 0) {
        o.old_img = old.data;
        o.old_len = old.len;
    } else if (source_sha256 != NULL) {
        o.source_hash = source_sha256;
    } else {
        otaup_blob_free(&img);
        return OTAUP_E_SOURCE_MISMATCH;
    }
    rc = otaup_delta_sign(&c, (const otaup_key *)key, d, len, &o, &signed_d, &signed_len);
    otaup_blob_free(&img);
    otaup_blob_free(&old);
    if (rc < 0) {
        return rc;
    }
    out->data = signed_d;
    out->len = signed_len;
    return 0;
#else
    (void)reg, (void)key, (void)t, (void)r, (void)source_sha256, (void)d, (void)len;
    if (out != NULL) {
        out->data = NULL;
        out->len = 0;
    }
    return OTAUP_E_UNSUPPORTED;
#endif
}

static void say(otaup_session_log_cb log, void *payload, int level, const char *terminal, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static void say(otaup_session_log_cb log, void *payload, int level, const char *terminal, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    if (log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log(level, terminal, "sign", msg, payload);
}

int otaup_session_sign_release(otaup_registry *reg, int64_t release_id, const struct otaup_key *key,
                               otaup_session_log_cb log, void *payload)
{
    otaup_reg_release r;
    otaup_reg_terminal *list = NULL;
    size_t n, i;
    int rc, done = 0;
    if (reg == NULL || key == NULL) {
        return OTAUP_E_INVAL;
    }
#if OTAUP_HAVE_MBEDTLS
    if (!otaup_key_has_private((const otaup_key *)key)) {
        return OTAUP_E_KEY;
    }
#else
    return OTAUP_E_UNSUPPORTED; /* no signatures without mbedTLS */
#endif
    rc = otaup_session_precompute(reg, release_id, log, payload); /* the unsigned analysis first */
    if (rc < 0) {
        return rc;
    }
    rc = otaup_registry_release_get(reg, release_id, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    n = otaup_session_sources(reg, &r, &list);
    for (i = 0; i < n; i++) {
        const otaup_reg_terminal *t = &list[i];
        otaup_reg_delta_key ku, ks;
        otaup_reg_release src;
        otaup_blob have = { NULL, 0 }, sd = { NULL, 0 };
        char kid[2 * OTAUP_KEY_ID_LEN + 1];
        otaup_session_delta_key(t, t->image_hash, r.image_hash, 1, &ks);
        if (otaup_registry_delta_get(reg, &ks, &have) == 0) {
            otaup_blob_free(&have);
            continue; /* signed already */
        }
        if (otaup_registry_release_by_hash(reg, t->image_hash, &src, NULL) != 0) {
            say(log, payload, OTAUP_LOG_WARN, t->id,
                "its image is not in the registry: a delta for it can only be signed when it connects "
                "(otaupd --sign-key)");
            continue;
        }
        otaup_session_delta_key(t, t->image_hash, r.image_hash, 0, &ku);
        if (otaup_registry_delta_get(reg, &ku, &have) != 0) {
            continue; /* it could not be planned (the precomputation said why) */
        }
        rc = otaup_session_sign_delta(reg, key, t, &r, NULL, have.data, have.len, &sd);
        if (rc == 0) {
            rc = otaup_registry_delta_put(reg, &ks, sd.data, sd.len);
        }
        if (rc < 0) {
            say(log, payload, OTAUP_LOG_WARN, t->id, "from=%s to=%s signing failed: %s", src.version, r.version,
                otaup_strerror(rc));
            otaup_blob_free(&have);
            otaup_blob_free(&sd);
            if (rc == OTAUP_E_KEY || rc == OTAUP_E_UNSUPPORTED || rc == OTAUP_E_NOMEM || rc == OTAUP_E_DB) {
                break; /* no point in trying the others */
            }
            rc = 0;
            continue;
        }
        otaup_session_key_id_hex(sd.data, sd.len, kid);
        say(log, payload, OTAUP_LOG_INFO, t->id, "from=%s to=%s bytes=%zu (unsigned %zu) counter=%u signed by %s",
            src.version, r.version, sd.len, have.len, r.security_counter, kid);
        otaup_blob_free(&have);
        otaup_blob_free(&sd);
        done++;
    }
    free(list);
    return rc < 0 ? rc : done;
}
