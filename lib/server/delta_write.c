/*
 * Delta writer: inner record stream of each step, raw-deflate streams
 * with restart points, and the container (header, sections, body).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/dl_util.h"
#include "otaup/error.h"
#include "server/dl_deflate.h"
#include "server/dl_int.h"

/* ---- buffers ---------------------------------------------------------------- */

void dl_buf_free(dl_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

int dl_buf_reserve(dl_buf *b, size_t extra)
{
    size_t nc;
    uint8_t *p;
    if (b->oom) {
        return OTAUP_E_NOMEM;
    }
    if (b->len + extra <= b->cap) {
        return 0;
    }
    nc = b->cap ? b->cap : 4096;
    while (nc < b->len + extra) {
        nc *= 2;
    }
    p = realloc(b->p, nc);
    if (p == NULL) {
        b->oom = 1;
        return OTAUP_E_NOMEM;
    }
    b->p = p;
    b->cap = nc;
    return 0;
}

void dl_buf_put(dl_buf *b, const void *p, size_t n)
{
    if (n == 0 || dl_buf_reserve(b, n) < 0) {
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void dl_buf_byte(dl_buf *b, uint8_t v)
{
    dl_buf_put(b, &v, 1);
}

void dl_buf_varint(dl_buf *b, uint32_t v)
{
    uint8_t t[5];
    int n = otaup_dl_varint_put(v, t);
    dl_buf_put(b, t, (size_t)n);
}

/* ---- plan vectors ----------------------------------------------------------- */

int dl_plan_add_step(otaup_plan *p, const otaup_plan_step *st)
{
    if ((p->nsteps & (p->nsteps - 1u)) == 0) {
        size_t nc = p->nsteps ? (size_t)p->nsteps * 2u : 16u;
        otaup_plan_step *v = realloc(p->steps, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        p->steps = v;
    }
    p->steps[p->nsteps++] = *st;
    return 0;
}

int dl_plan_add_op(otaup_plan *p, const otaup_plan_op *op)
{
    if ((p->nops & (p->nops - 1u)) == 0) {
        size_t nc = p->nops ? (size_t)p->nops * 2u : 64u;
        otaup_plan_op *v = realloc(p->ops, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        p->ops = v;
    }
    p->ops[p->nops++] = *op;
    return 0;
}

int dl_plan_add_data(otaup_plan *p, const uint8_t *data, size_t len, uint32_t *off)
{
    /* data_len doubles as the used size; capacity tracked by powers of two */
    size_t need = p->data_len + len, cap = 4096;
    if (need > 0xFFFFFFFFu) {
        return OTAUP_E_RANGE;
    }
    while (cap < p->data_len) {
        cap *= 2;
    }
    if (p->data == NULL || need > cap) {
        uint8_t *v;
        while (cap < need) {
            cap *= 2;
        }
        v = realloc(p->data, cap);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        p->data = v;
    }
    if (len > 0) {
        memcpy(p->data + p->data_len, data, len);
    }
    *off = (uint32_t)p->data_len;
    p->data_len = need;
    return 0;
}

/* ---- inner records ---------------------------------------------------------- */

static void put_record(dl_buf *out, const otaup_record *rec, dl_enc_stats *es)
{
    uint8_t head[OTAUP_RECORD_HEAD_MAX + 16];
    int n = otaup_record_encode(rec, head, sizeof head);
    if (n < 0) {
        out->oom = 1;
        return;
    }
    dl_buf_put(out, head, (size_t)n);
    es->control += (uint64_t)n;
}

void dl_sparse_encode(dl_buf *out, const uint8_t *d, uint32_t len)
{
    uint32_t i = 0;
    while (i < len) {
        uint32_t z = 0, n = 0;
        uint8_t tok;
        /* runs measured 8 bytes at a time while they last that long */
        while (len - i - z >= 8u) {
            uint64_t v;
            memcpy(&v, d + i + z, 8);
            if (v != 0) {
                break;
            }
            z += 8u;
        }
        while (i + z < len && d[i + z] == 0) {
            z++;
        }
        while (len - i - z - n >= 8u) {
            uint64_t v;
            memcpy(&v, d + i + z + n, 8);
            /* a zero byte among the 8 (the classic test) */
            if (((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) != 0) {
                break;
            }
            n += 8u;
        }
        while (i + z + n < len && d[i + z + n] != 0) {
            n++;
        }
        tok = (uint8_t)((n < 7u ? n : 7u) << 5 | (z < 31u ? z : 31u));
        dl_buf_byte(out, tok);
        if (z >= 31u) {
            dl_buf_varint(out, z - 31u);
        }
        if (n >= 7u) {
            dl_buf_varint(out, n - 7u);
        }
        dl_buf_put(out, d + i + z, n);
        i += z + n;
    }
}

/* A PIECE: [type][body length][seek][dlen][llen][sparse differences][literals]. */
static void put_piece(dl_buf *out, uint32_t seek, const uint8_t *diff, uint32_t dlen, int copy,
                      const uint8_t *lit, uint32_t llen, dl_buf *tmp, dl_enc_stats *es)
{
    uint8_t f[16];
    size_t n = 0, body;
    tmp->len = 0;
    if (copy) {
        /* equal bytes: one group of zeros */
        dl_buf_byte(tmp, (uint8_t)(dlen < 31u ? dlen : 31u));
        if (dlen >= 31u) {
            dl_buf_varint(tmp, dlen - 31u);
        }
    } else {
        dl_sparse_encode(tmp, diff, dlen);
    }
    n += (size_t)otaup_dl_varint_put(seek, f + n);
    n += (size_t)otaup_dl_varint_put(dlen, f + n);
    n += (size_t)otaup_dl_varint_put(llen, f + n);
    body = n + tmp->len + llen;
    dl_buf_byte(out, OTAUP_REC_PIECE);
    dl_buf_varint(out, (uint32_t)body);
    dl_buf_put(out, f, n);
    dl_buf_put(out, tmp->p, tmp->len);
    dl_buf_put(out, lit, llen);
    es->control += 1u + (uint64_t)otaup_dl_varint_put((uint32_t)body, f) + n;
    es->diff += tmp->len;
    es->lit += llen;
    if (llen >= DL_LIT_RUN_CUT && es->cuts != NULL) {
        /* a long literal run: the encoder may give it a block of its own */
        size_t c[2];
        c[0] = out->len - llen;
        c[1] = out->len;
        dl_buf_put(es->cuts, c, sizeof c);
    }
}

static uint32_t zigzag(uint32_t d)
{
    return (d << 1) ^ ((d & 0x80000000u) != 0 ? 0xFFFFFFFFu : 0u);
}

int dl_encode_step(dl_buf *out, const otaup_plan *plan, const otaup_plan_step *st, dl_enc_stats *es)
{
    otaup_record rec;
    dl_buf tmp = { 0 };
    uint32_t i, t = st->addr, sc = st->addr;
    int rc = 0;
    memset(&rec, 0, sizeof rec);
    rec.type = OTAUP_REC_STEP;
    rec.index = st->index;
    rec.addr = st->addr;
    rec.len = st->len;
    if (st->has_hash) {
        rec.flags = OTAUP_STEP_HASH;
        rec.hash_len = 8;
        otaup_dl_put64(rec.hash, st->hash);
    }
    put_record(out, &rec, es);
    for (i = 0; i < st->nops && rc == 0; i++) {
        const otaup_plan_op *op = &plan->ops[st->first_op + i];
        if (op->type == OTAUP_REC_ERASE) {
            memset(&rec, 0, sizeof rec);
            rec.type = OTAUP_REC_ERASE;
            rec.addr = op->addr;
            rec.len = op->len;
            put_record(out, &rec, es);
            continue;
        }
        if (op->addr < t || op->len == 0) {
            rc = OTAUP_E_PLAN; /* records must follow each other */
            break;
        }
        if (op->addr > t) {
            /* a run the records do not write: the erased value */
            memset(&rec, 0, sizeof rec);
            rec.type = OTAUP_REC_CFILL;
            rec.len = op->addr - t;
            rec.value = plan->hdr.geo.erased;
            put_record(out, &rec, es);
        }
        switch (op->type) {
        case OTAUP_REC_FILL:
            memset(&rec, 0, sizeof rec);
            rec.type = OTAUP_REC_CFILL;
            rec.len = op->len;
            rec.value = op->value;
            put_record(out, &rec, es);
            t = op->addr + op->len;
            break;
        case OTAUP_REC_WRITE:
            put_piece(out, 0, NULL, 0, 0, plan->data + op->data_off, op->len, &tmp, es);
            t = op->addr + op->len;
            break;
        case OTAUP_REC_COPY:
        case OTAUP_REC_DIFF: {
            /* with the literal run that follows it, if any */
            const otaup_plan_op *w = i + 1 < st->nops ? &plan->ops[st->first_op + i + 1] : NULL;
            int with_lit = w != NULL && w->type == OTAUP_REC_WRITE && w->addr == op->addr + op->len;
            put_piece(out, zigzag(op->src - sc), op->type == OTAUP_REC_DIFF ? plan->data + op->data_off : NULL,
                      op->len, op->type == OTAUP_REC_COPY, with_lit ? plan->data + w->data_off : NULL,
                      with_lit ? w->len : 0, &tmp, es);
            sc = op->src + op->len;
            t = op->addr + op->len + (with_lit ? w->len : 0);
            i += with_lit ? 1u : 0u;
            break;
        }
        default:
            rc = OTAUP_E_PLAN;
            break;
        }
    }
    dl_buf_free(&tmp);
    if (rc == 0 && t > st->addr + st->len) {
        rc = OTAUP_E_PLAN;
    }
    memset(&rec, 0, sizeof rec);
    rec.type = OTAUP_REC_END;
    rec.index = st->index;
    put_record(out, &rec, es);
    if (rc == 0 && (out->oom || tmp.oom)) {
        rc = OTAUP_E_NOMEM;
    }
    return rc;
}

/* ---- container ---------------------------------------------------------------- */

#define DATA_CHUNK 16384u

static void put_outer(dl_buf *body, uint8_t type, const uint8_t *fields, size_t flen,
                      const uint8_t *data, size_t dlen)
{
    dl_buf_byte(body, type);
    dl_buf_varint(body, (uint32_t)(flen + dlen));
    dl_buf_put(body, fields, flen);
    dl_buf_put(body, data, dlen);
}

/* Compress one segment (inner bytes [from, to)) as a fresh raw-deflate stream
 * into SYNC{index} and DATA records. cuts: ascending inner offsets. */
static int emit_segment(const otaup_plan *plan, const dl_buf *inner, size_t from, size_t to, uint32_t index,
                        const size_t *cuts, size_t ncuts, int level, dl_buf *body)
{
    size_t got = 0, off, k, nc = 0;
    size_t *rel = malloc((ncuts + 1u) * sizeof *rel);
    uint8_t *z = NULL;
    int rc;
    if (rel == NULL) {
        return OTAUP_E_NOMEM;
    }
    for (k = 0; k < ncuts; k++) {
        if (cuts[k] > from && cuts[k] < to && (nc == 0 || cuts[k] - from > rel[nc - 1])) {
            rel[nc++] = cuts[k] - from;
        }
    }
    rc = dl_deflate(inner->p + from, to - from, plan->hdr.window_bits, level, rel, nc, &z, &got);
    free(rel);
    if (rc < 0) {
        return rc;
    }
    {
        uint8_t v[5];
        int n = otaup_dl_varint_put(index, v);
        put_outer(body, OTAUP_REC_SYNC, v, (size_t)n, NULL, 0);
    }
    for (off = 0; off < got; off += DATA_CHUNK) {
        uint8_t f[1];
        f[0] = off == 0 ? OTAUP_DATA_RESET : 0;
        put_outer(body, OTAUP_REC_DATA, f, 1, z + off, got - off < DATA_CHUNK ? got - off : DATA_CHUNK);
    }
    free(z);
    return body->oom ? OTAUP_E_NOMEM : 0;
}

int dl_write_container(otaup_plan *plan, uint32_t restart_interval, int level, dl_buf *out)
{
    dl_buf inner = { 0 }, body = { 0 }, cuts = { 0 };
    size_t *step_off, ncuts;
    uint32_t i, seg_start = 0, syncs = 0;
    dl_enc_stats es;
    int rc = 0;
    uint8_t hdr[OTAUP_DELTA_HEADER_MAX];
    size_t hdr_len;

    memset(&es, 0, sizeof es);
    es.cuts = &cuts;
    step_off = malloc(((size_t)plan->nsteps + 1u) * sizeof *step_off);
    if (step_off == NULL) {
        return OTAUP_E_NOMEM;
    }
    for (i = 0; i < plan->nsteps && rc == 0; i++) {
        step_off[i] = inner.len;
        plan->steps[i].sync = 0;
        rc = dl_encode_step(&inner, plan, &plan->steps[i], &es);
    }
    step_off[plan->nsteps] = inner.len;
    if (rc == 0 && (inner.oom || cuts.oom || inner.len > 0xFFFFFFFFu)) {
        rc = OTAUP_E_NOMEM;
    }
    if (rc < 0) {
        goto done;
    }
    ncuts = cuts.len / sizeof(size_t);
    plan->stats.control_bytes = es.control;
    plan->stats.diff_stream_bytes = es.diff;
    plan->stats.literal_stream_bytes = es.lit;
    plan->stats.inner_bytes = inner.len;

    /*
     * Restart points: a segment grows step by step while its compressed
     * size stays under the interval. The size of a candidate segment is
     * measured by compressing it; to keep this linear the estimate uses
     * the compressed size of the single-stream encoding of each step,
     * obtained from one pass with a flush after each step.
     */
    if (plan->nsteps > 0) {
        uint64_t *csz = calloc(plan->nsteps, sizeof *csz);
        z_stream zs;
        uint8_t sink[65536];
        uint64_t acc = 0;
        if (csz == NULL) {
            rc = OTAUP_E_NOMEM;
            goto done;
        }
        if (restart_interval > 1u && plan->nsteps > 1u) {
            memset(&zs, 0, sizeof zs);
            if (deflateInit2(&zs, 1, Z_DEFLATED, -(int)plan->hdr.window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
                free(csz);
                rc = OTAUP_E_NOMEM;
                goto done;
            }
            for (i = 0; i < plan->nsteps; i++) {
                uLong before = zs.total_out;
                zs.next_in = inner.p + step_off[i];
                zs.avail_in = (uInt)(step_off[i + 1] - step_off[i]);
                do {
                    zs.next_out = sink;
                    zs.avail_out = sizeof sink;
                    deflate(&zs, Z_NO_FLUSH);
                } while (zs.avail_out == 0);
                csz[i] = zs.total_out - before;
            }
            deflateEnd(&zs);
        }
        for (i = 0; i < plan->nsteps; i++) {
            int cut = i == 0 || restart_interval == 1u;
            if (!cut && restart_interval > 1u && acc >= restart_interval) {
                cut = 1;
            }
            if (cut) {
                if (i > 0) {
                    rc = emit_segment(plan, &inner, step_off[seg_start], step_off[i], plan->steps[seg_start].index,
                                      (const size_t *)(void *)cuts.p, ncuts, level, &body);
                    if (rc < 0) {
                        break;
                    }
                }
                seg_start = i;
                plan->steps[i].sync = 1;
                syncs++;
                acc = 0;
            }
            /* level-1 sizes run high; scale to what level 9 gives */
            acc += csz[i] * 3u / 4u;
        }
        free(csz);
        if (rc == 0) {
            rc = emit_segment(plan, &inner, step_off[seg_start], step_off[plan->nsteps],
                              plan->steps[seg_start].index, (const size_t *)(void *)cuts.p, ncuts, level, &body);
        }
        if (rc < 0) {
            goto done;
        }
    }
    /* final VERIFY of the whole target */
    {
        uint8_t f[5 + 5 + 1 + 16];
        size_t n = 0;
        n += (size_t)otaup_dl_varint_put(plan->hdr.target_addr, f + n);
        n += (size_t)otaup_dl_varint_put(plan->hdr.target_size, f + n);
        f[n++] = OTAUP_HASH_XXH3_128;
        memcpy(f + n, plan->hdr.target_hash, 16);
        n += 16;
        put_outer(&body, OTAUP_REC_VERIFY, f, n, NULL, 0);
    }
    if (body.oom || body.len > 0xFFFFFFFFu) {
        rc = OTAUP_E_NOMEM;
        goto done;
    }
    plan->hdr.sync_count = syncs;
    plan->hdr.body_len = (uint32_t)body.len;
    plan->hdr.inner_len = (uint32_t)inner.len;
    otaup_hash128(body.p, body.len, plan->hdr.body_hash);
    rc = otaup_delta_header_encode(&plan->hdr, hdr, sizeof hdr);
    if (rc < 0) {
        rc = OTAUP_E_PLAN;
        goto done;
    }
    hdr_len = (size_t)rc;
    rc = 0;
    out->len = 0;
    dl_buf_put(out, hdr, hdr_len);
    {
        static const uint8_t end_section[OTAUP_SECTION_HEAD_SIZE] = { 0, 0, 0, 0, 0, 0 };
        char info[320];
        uint8_t head[OTAUP_SECTION_HEAD_SIZE];
        /* planner notes only when there is something to note */
        int want = plan->stats.cycle_edges > 0 || plan->stats.cycle_cost_bytes > 0 || plan->stats.fallback;
        int n = !want ? 0 : snprintf(info, sizeof info,
                         "cycle_edges=%llu\ncycle_cost_bytes=%llu\ncycle_cost_patch=%lld\nfallback=%d\n",
                         (unsigned long long)plan->stats.cycle_edges,
                         (unsigned long long)plan->stats.cycle_cost_bytes,
                         (long long)plan->stats.cycle_cost_patch, plan->stats.fallback);
        /* the notes are not covered by the body hash: they carry their own check */
        if (want) {
            n += snprintf(info + n, sizeof info - (size_t)n, "check=%016llx\n",
                          (unsigned long long)XXH3_64bits(info, (size_t)n));
            otaup_dl_put16(head, OTAUP_SECTION_INFO);
            otaup_dl_put32(head + 2, (uint32_t)n);
            dl_buf_put(out, head, sizeof head);
            dl_buf_put(out, info, (size_t)n);
        }
        dl_buf_put(out, end_section, sizeof end_section);
    }
    dl_buf_put(out, body.p, body.len);
    if (out->oom) {
        rc = OTAUP_E_NOMEM;
    }
    plan->stats.restarts = syncs;
    plan->stats.body_bytes = body.len;
    plan->stats.delta_bytes = out->len;
done:
    free(step_off);
    dl_buf_free(&cuts);
    dl_buf_free(&inner);
    dl_buf_free(&body);
    return rc;
}
