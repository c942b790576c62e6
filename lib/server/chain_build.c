/*
 * otaup — building the per-step hash chain of one segment of the record
 * stream (docs/security.md §4.4). Server side (C11, allocates).
 */
#include <stdlib.h>
#include <string.h>

#include "core/sec_util.h"
#include "otaup/error.h"
#include "otaup/sign.h"

#define REC_VERIFY 0x25u
#define REC_DATA 0x26u
#define REC_STEP 0x27u
#define REC_END 0x28u
#define REC_SYNC 0x2Au

typedef struct unit {
    size_t start; /* first record of the unit */
    size_t end;   /* offset of its END record */
    size_t end_len;
    uint32_t index;
} unit;

static const uint8_t chain_domain[8] = { 'O', 'T', 'A', 'U', 'P', 'C', 'H', '1' };

/* Read one record head at in[off..len). */
static int rec_at(const uint8_t *in, size_t len, size_t off, uint8_t *type, size_t *total,
                  size_t *body_off, uint32_t *body_len)
{
    uint32_t bl;
    int n;
    if (off >= len) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    *type = in[off];
    n = sec_varint_get(in + off + 1, len - off - 1, &bl);
    if (n == 0) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    if (n < 0) {
        return OTAUP_E_MSG_FIELD;
    }
    if (len - off - 1 - (size_t)n < bl) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    *body_off = off + 1 + (size_t)n;
    *body_len = bl;
    *total = 1 + (size_t)n + bl;
    return 0;
}

/* hash one record as the verifier does: type || body || le32(body length) */
static int hash_record(const otaup_crypto *c, otaup_sha256_state *st, uint8_t type, const uint8_t *body,
                       uint32_t len)
{
    uint8_t l[4];
    int rc = c->sha256_update(c, st, &type, 1);
    if (rc == 0 && len > 0) {
        rc = c->sha256_update(c, st, body, len);
    }
    sec_put32(l, len);
    if (rc == 0) {
        rc = c->sha256_update(c, st, l, 4);
    }
    return rc;
}

static int unit_tag(const otaup_crypto *c, const uint8_t salt[OTAUP_CHAIN_SALT_LEN], uint8_t tag_len,
                    const uint8_t *in, const unit *u, const uint8_t *next, uint8_t *tag)
{
    otaup_sha256_state st;
    uint8_t idx[4], d[OTAUP_SHA256_LEN];
    size_t off = u->start;
    int rc;
    sec_put32(idx, u->index);
    rc = c->sha256_init(c, &st);
    if (rc == 0) {
        rc = c->sha256_update(c, &st, chain_domain, sizeof chain_domain);
    }
    if (rc == 0) {
        rc = c->sha256_update(c, &st, salt, OTAUP_CHAIN_SALT_LEN);
    }
    if (rc == 0) {
        rc = c->sha256_update(c, &st, idx, 4);
    }
    while (rc == 0 && off < u->end) {
        uint8_t type;
        size_t total, body_off;
        uint32_t body_len;
        rc = rec_at(in, u->end, off, &type, &total, &body_off, &body_len);
        if (rc == 0) {
            rc = hash_record(c, &st, type, in + body_off, body_len);
        }
        off += total;
    }
    if (rc == 0) {
        rc = hash_record(c, &st, OTAUP_REC_CHAIN, next, next != NULL ? tag_len : 0);
    }
    if (rc == 0) {
        rc = c->sha256_final(c, &st, d);
    }
    if (rc == 0) {
        memcpy(tag, d, tag_len);
    }
    return rc;
}

int otaup_chain_build_segment(const otaup_crypto *c, const uint8_t salt[OTAUP_CHAIN_SALT_LEN],
                              uint8_t tag_len, uint32_t first_step, const uint8_t *in, size_t len,
                              uint8_t **out, size_t *out_len, uint32_t *nsteps, uint8_t *first_tag)
{
    unit *units = NULL;
    uint8_t *tags = NULL, *o = NULL;
    size_t nunits = 0, cap_units = 0, off = 0, start = 0, olen = 0, i;
    int in_step = 0, rc = 0;
    uint32_t step_index = 0;

    if (c == NULL || c->sha256_init == NULL || salt == NULL || out == NULL || out_len == NULL ||
        nsteps == NULL || first_tag == NULL || (in == NULL && len > 0)) {
        return OTAUP_E_INVAL;
    }
    if (tag_len < OTAUP_CHAIN_TAG_MIN || tag_len > OTAUP_CHAIN_TAG_MAX) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    *nsteps = 0;

    /* pass 1: cut the stream into units, check its shape */
    while (off < len) {
        uint8_t type;
        size_t total, body_off;
        uint32_t body_len, idx = 0;
        rc = rec_at(in, len, off, &type, &total, &body_off, &body_len);
        if (rc != 0) {
            goto out;
        }
        if ((type >= OTAUP_REC_SEC_FIRST && type <= OTAUP_REC_SEC_LAST) || type == REC_DATA ||
            type == REC_SYNC) {
            rc = OTAUP_E_PLAN; /* already chained, or not an inner stream */
            goto out;
        }
        if (type == REC_STEP || type == REC_END) {
            if (sec_varint_get(in + body_off, body_len, &idx) <= 0) {
                rc = OTAUP_E_MSG_FIELD;
                goto out;
            }
            if (idx != first_step + (uint32_t)nunits) {
                rc = OTAUP_E_PLAN; /* steps out of order */
                goto out;
            }
        }
        if (type == REC_STEP) {
            if (in_step) {
                rc = OTAUP_E_PLAN;
                goto out;
            }
            in_step = 1;
            step_index = idx;
        } else if (type == REC_END) {
            if (!in_step) {
                rc = OTAUP_E_PLAN;
                goto out;
            }
            if (nunits == cap_units) {
                size_t nc = cap_units ? cap_units * 2 : 64;
                unit *nu = realloc(units, nc * sizeof *nu);
                if (nu == NULL) {
                    rc = OTAUP_E_NOMEM;
                    goto out;
                }
                units = nu;
                cap_units = nc;
            }
            units[nunits].start = start;
            units[nunits].end = off;
            units[nunits].end_len = total;
            units[nunits].index = step_index;
            nunits++;
            in_step = 0;
            start = off + total;
        } else if (!in_step && type != REC_VERIFY) {
            rc = OTAUP_E_PLAN; /* only VERIFY may stand outside a step */
            goto out;
        }
        off += total;
    }
    if (in_step || start != len || nunits == 0 || nunits > UINT32_MAX - first_step) {
        rc = OTAUP_E_PLAN; /* a step without END, trailing records, or no step at all */
        goto out;
    }

    /* pass 2: tags, backwards */
    tags = malloc(nunits * tag_len);
    if (tags == NULL) {
        rc = OTAUP_E_NOMEM;
        goto out;
    }
    for (i = nunits; i-- > 0;) {
        rc = unit_tag(c, salt, tag_len, in, &units[i], i + 1 < nunits ? tags + (i + 1) * tag_len : NULL,
                      tags + i * tag_len);
        if (rc != 0) {
            goto out;
        }
    }

    /* pass 3: the stream with a CHAIN record before every END */
    o = malloc(len + nunits * (2u + tag_len));
    if (o == NULL) {
        rc = OTAUP_E_NOMEM;
        goto out;
    }
    for (i = 0; i < nunits; i++) {
        int has_next = i + 1 < nunits;
        memcpy(o + olen, in + units[i].start, units[i].end - units[i].start);
        olen += units[i].end - units[i].start;
        o[olen++] = OTAUP_REC_CHAIN;
        o[olen++] = has_next ? tag_len : 0;
        if (has_next) {
            memcpy(o + olen, tags + (i + 1) * tag_len, tag_len);
            olen += tag_len;
        }
        memcpy(o + olen, in + units[i].end, units[i].end_len);
        olen += units[i].end_len;
    }
    memcpy(first_tag, tags, tag_len);
    *out = o;
    *out_len = olen;
    *nsteps = (uint32_t)nunits;
    o = NULL;
    rc = 0;
out:
    free(o);
    free(tags);
    free(units);
    return rc;
}
