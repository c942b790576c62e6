/*
 * The plan simulator: executes a plan on a model of the flash exactly as
 * docs/design.md specifies (stage, check, deferred erase, program) and
 * fails on any read of flash that no longer holds OLD, any program into
 * flash that is not erased, any step that breaks the header's limits.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dl_util.h"
#include "otaup/error.h"
#include "server/dl_int.h"

#if defined(__GNUC__) || defined(__clang__)
static int sim_fail(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif

static int sim_fail(char *err, size_t err_len, const char *fmt, ...)
{
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return OTAUP_E_PLAN;
}

/* Flash state as two bitmaps over [lo, hi): erased since the start, and
 * programmed since. A byte still holds OLD when its sector was never
 * erased; a program must find its bytes erased and not programmed yet. */
static void bits_set(uint64_t *w, uint64_t a, uint64_t n)
{
    while (n > 0 && (a & 63u) != 0) {
        w[a >> 6] |= (uint64_t)1 << (a & 63u);
        a++;
        n--;
    }
    while (n >= 64u) {
        w[a >> 6] = ~(uint64_t)0;
        a += 64u;
        n -= 64u;
    }
    while (n > 0) {
        w[a >> 6] |= (uint64_t)1 << (a & 63u);
        a++;
        n--;
    }
}

/* Offset of the first bit in [a, a+n) equal to `v`, or n. */
static uint64_t bits_find(const uint64_t *w, uint64_t a, uint64_t n, int v)
{
    uint64_t i = 0;
    uint64_t flip = v ? 0 : ~(uint64_t)0;
    while (i < n) {
        uint64_t p = a + i, word = w[p >> 6] ^ flip;
        word >>= (p & 63u);
        if (word != 0) {
            uint64_t k = (uint64_t)__builtin_ctzll(word);
            return i + k < n ? i + k : n;
        }
        i += 64u - (p & 63u);
    }
    return n;
}

int otaup_plan_simulate(const otaup_plan *plan, const uint8_t *old, size_t old_len,
                        uint8_t *out, size_t out_cap, uint64_t *reads, char *err, size_t err_len)
{
    const otaup_delta_header *h;
    uint64_t lo, hi, total_reads = 0, src0, tgt0;
    uint64_t *erased = NULL, *progd = NULL;
    uint8_t *stage = NULL;
    uint32_t k;
    int rc = 0;
    uint8_t hash[16];
    if (plan == NULL || (old == NULL && old_len > 0) || (out == NULL && out_cap > 0)) {
        return OTAUP_E_INVAL;
    }
    h = &plan->hdr;
    if (err != NULL && err_len > 0) {
        err[0] = 0;
    }
    if (old_len != h->source_size) {
        return OTAUP_E_SOURCE_MISMATCH;
    }
    otaup_hash128(old, old_len, hash);
    if (!(h->flags & OTAUP_DELTA_F_FROM_SIG) && memcmp(hash, h->source_hash, 16) != 0) {
        return OTAUP_E_SOURCE_MISMATCH;
    }
    if (out_cap < h->target_size) {
        return OTAUP_E_BUFFER;
    }
    /* model the span holding source, target and scratch */
    lo = h->source_addr < h->target_addr ? h->source_addr : h->target_addr;
    hi = (uint64_t)h->source_addr + h->source_size;
    {
        uint32_t start, size;
        uint64_t tend = (uint64_t)h->target_addr + h->target_size;
        /* whole target sectors */
        if (h->target_size > 0 && otaup_geometry_sector_at(&h->geo, (uint32_t)(tend - 1u), &start, &size) >= 0) {
            tend = (uint64_t)start + size;
        }
        if (tend > hi) {
            hi = tend;
        }
    }
    for (k = 0; k < plan->nsteps; k++) {
        uint64_t e = (uint64_t)plan->steps[k].addr + plan->steps[k].len;
        if (plan->steps[k].addr < lo) {
            lo = plan->steps[k].addr;
        }
        if (e > hi) {
            hi = e;
        }
    }
    for (k = 0; k < plan->nops; k++) {
        const otaup_plan_op *op = &plan->ops[k];
        uint64_t e = (uint64_t)op->addr + op->len;
        if (op->addr < lo) {
            lo = op->addr;
        }
        if (e > hi) {
            hi = e;
        }
    }
    if (hi - lo > (uint64_t)1 << 31) {
        return sim_fail(err, err_len, "plan spans more than 2 GiB");
    }
    erased = dl_calloc_big(((size_t)((hi - lo + 63u) / 64u) + 1u) * sizeof *erased);
    progd = dl_calloc_big(((size_t)((hi - lo + 63u) / 64u) + 1u) * sizeof *progd);
    stage = malloc(h->staging_size + 1u);
    if (erased == NULL || progd == NULL || stage == NULL) {
        rc = OTAUP_E_NOMEM;
        goto done;
    }
    src0 = h->source_addr - lo;
    tgt0 = h->target_addr - lo;

    for (k = 0; k < plan->nsteps && rc == 0; k++) {
        const otaup_plan_step *s = &plan->steps[k];
        uint32_t i, deferred = 0;
        uint32_t er_a[4], er_n[4], ner = 0;
        uint64_t w0, j;
        if (s->index != k) {
            rc = sim_fail(err, err_len, "step %u has index %u", k, s->index);
            break;
        }
        if (s->len == 0 || s->len > h->staging_size || s->addr % h->geo.write_size != 0 ||
            s->len % h->geo.write_size != 0 || s->addr < lo || (uint64_t)s->addr + s->len > hi) {
            rc = sim_fail(err, err_len, "step %u: window [0x%x,+%u) breaks staging/alignment", k, s->addr, s->len);
            break;
        }
        memset(stage, h->geo.erased, s->len);
        for (i = 0; i < s->nops && rc == 0; i++) {
            const otaup_plan_op *op = &plan->ops[s->first_op + i];
            if (op->type == OTAUP_REC_ERASE) {
                if (!otaup_geometry_is_sector_aligned(&h->geo, op->addr, op->len) || ner == 4 ||
                    op->addr < lo || (uint64_t)op->addr + op->len > hi) {
                    rc = sim_fail(err, err_len, "step %u: bad ERASE [0x%x,+%u)", k, op->addr, op->len);
                    break;
                }
                er_a[ner] = op->addr;
                er_n[ner++] = op->len;
                continue;
            }
            if (op->addr < s->addr || (uint64_t)op->addr + op->len > (uint64_t)s->addr + s->len) {
                rc = sim_fail(err, err_len, "step %u: record [0x%x,+%u) outside the window", k, op->addr, op->len);
                break;
            }
            if ((op->type == OTAUP_REC_WRITE || op->type == OTAUP_REC_DIFF) && op->enc == OTAUP_ENC_DEFERRED) {
                deferred++;
            }
            if ((op->type == OTAUP_REC_WRITE || op->type == OTAUP_REC_DIFF) &&
                (uint64_t)op->data_off + op->len > plan->data_len) {
                rc = sim_fail(err, err_len, "step %u: record data out of range", k);
                break;
            }
            if (op->type == OTAUP_REC_COPY || op->type == OTAUP_REC_DIFF) {
                uint64_t sa = op->src;
                if (sa < h->source_addr || sa + op->len > (uint64_t)h->source_addr + h->source_size) {
                    rc = sim_fail(err, err_len, "step %u: source [0x%x,+%u) outside OLD", k, op->src, op->len);
                    break;
                }
                j = bits_find(erased, sa - lo, op->len, 1);
                if (j < op->len) {
                    rc = sim_fail(err, err_len, "step %u: reads 0x%x, which an earlier step already overwrote", k,
                                  (unsigned)(sa + j));
                    break;
                }
                total_reads += op->len;
            }
            switch (op->type) {
            case OTAUP_REC_WRITE:
                memcpy(stage + (op->addr - s->addr), plan->data + op->data_off, op->len);
                break;
            case OTAUP_REC_COPY:
                memcpy(stage + (op->addr - s->addr), old + (op->src - h->source_addr), op->len);
                break;
            case OTAUP_REC_DIFF: {
                const uint8_t *o = old + (op->src - h->source_addr), *d = plan->data + op->data_off;
                uint8_t *t = stage + (op->addr - s->addr);
                const uint32_t n = op->len; /* a local: the stores cannot change it */
                for (j = 0; j < n; j++) {
                    t[j] = (uint8_t)(o[j] + d[j]);
                }
                break;
            }
            case OTAUP_REC_FILL:
                memset(stage + (op->addr - s->addr), op->value, op->len);
                break;
            default:
                rc = sim_fail(err, err_len, "step %u: record type 0x%02x not allowed in a step", k, op->type);
                break;
            }
        }
        if (rc != 0) {
            break;
        }
        if (deferred > h->max_ops) {
            rc = sim_fail(err, err_len, "step %u: %u deferred records, limit %u", k, deferred, h->max_ops);
            break;
        }
        if (s->has_hash && XXH3_64bits(stage, s->len) != s->hash) {
            rc = sim_fail(err, err_len, "step %u: window hash mismatch", k);
            break;
        }
        /* END: deferred erases, then program the window */
        for (i = 0; i < ner; i++) {
            bits_set(erased, er_a[i] - lo, er_n[i]);
            /* an erase undoes earlier programs: those bytes read erased again */
            {
                uint64_t a = er_a[i] - lo, n = er_n[i];
                while (n > 0 && (a & 63u) != 0) {
                    progd[a >> 6] &= ~((uint64_t)1 << (a & 63u));
                    a++;
                    n--;
                }
                for (; n >= 64u; a += 64u, n -= 64u) {
                    progd[a >> 6] = 0;
                }
                for (; n > 0; a++, n--) {
                    progd[a >> 6] &= ~((uint64_t)1 << (a & 63u));
                }
            }
        }
        w0 = s->addr - lo;
        j = bits_find(erased, w0, s->len, 0);
        if (j == s->len) {
            j = bits_find(progd, w0, s->len, 1);
        }
        if (j < s->len) {
            rc = sim_fail(err, err_len, "step %u: programs 0x%x, which is not erased", k, (unsigned)(s->addr + j));
            break;
        }
        bits_set(progd, w0, s->len);
        /* the window's bytes that belong to the target image */
        if (w0 < tgt0 + h->target_size && w0 + s->len > tgt0) {
            uint64_t a = w0 > tgt0 ? w0 : tgt0;
            uint64_t e = w0 + s->len < tgt0 + h->target_size ? w0 + s->len : tgt0 + h->target_size;
            memcpy(out + (a - tgt0), stage + (a - w0), (size_t)(e - a));
        }
    }
    if (rc == 0) {
        /* target bytes no step programmed: erased, or OLD where no step erased */
        uint64_t a = 0;
        while (a < h->target_size && rc == 0) {
            uint64_t p = tgt0 + a, n;
            int pr = (progd[p >> 6] >> (p & 63u)) & 1u;
            n = bits_find(progd, p, h->target_size - a, !pr);
            if (!pr) {
                uint64_t m = 0;
                while (m < n && rc == 0) {
                    int er = (erased[(p + m) >> 6] >> ((p + m) & 63u)) & 1u;
                    uint64_t r = bits_find(erased, p + m, n - m, !er);
                    if (er) {
                        memset(out + a + m, h->geo.erased, (size_t)r);
                    } else if (p + m >= src0 && p + m + r <= src0 + h->source_size) {
                        memcpy(out + a + m, old + (p + m - src0), (size_t)r);
                    } else {
                        rc = sim_fail(err, err_len, "target byte 0x%x is never written",
                                      (unsigned)(h->target_addr + a + m));
                    }
                    m += r;
                }
            }
            a += n;
        }
    }
    if (rc == 0) {
        otaup_hash128(out, h->target_size, hash);
        if (memcmp(hash, h->target_hash, 16) != 0) {
            rc = OTAUP_E_TARGET_MISMATCH;
            sim_fail(err, err_len, "result differs from the target hash");
        }
    }
    if (reads != NULL) {
        *reads = total_reads;
    }
done:
    free(erased);
    free(progd);
    free(stage);
    return rc;
}
