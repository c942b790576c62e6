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

static void put_record(dl_buf *out, const otaup_record *rec, uint64_t *control)
{
    uint8_t head[OTAUP_RECORD_HEAD_MAX + 16];
    int n;
    if (rec->data_len > 0 && (rec->type == OTAUP_REC_BLOB ||
                              ((rec->type == OTAUP_REC_WRITE || rec->type == OTAUP_REC_DIFF) &&
                               rec->enc == OTAUP_ENC_INLINE))) {
        /* encode the header part by hand: [type][body len][fields], then bytes */
        otaup_record r2 = *rec;
        uint8_t body[OTAUP_RECORD_HEAD_MAX];
        int bl;
        r2.data = NULL;
        r2.data_len = 0;
        if (rec->type == OTAUP_REC_BLOB) {
            bl = 0;
        } else {
            r2.enc = OTAUP_ENC_DEFERRED; /* same fields, no bytes */
            bl = otaup_record_encode_body(&r2, body, sizeof body);
            if (bl < 0) {
                out->oom = 1;
                return;
            }
            body[bl - 1] = OTAUP_ENC_INLINE;
        }
        head[0] = rec->type;
        n = 1 + otaup_dl_varint_put((uint32_t)bl + rec->data_len, head + 1);
        dl_buf_put(out, head, (size_t)n);
        dl_buf_put(out, body, (size_t)bl);
        dl_buf_put(out, rec->data, rec->data_len);
        *control += (uint64_t)n + (uint64_t)bl;
        return;
    }
    n = otaup_record_encode(rec, head, sizeof head);
    if (n < 0) {
        out->oom = 1;
        return;
    }
    dl_buf_put(out, head, (size_t)n);
    *control += (uint64_t)n;
}

void dl_encode_step(dl_buf *out, const otaup_plan *plan, const otaup_plan_step *st,
                    uint64_t *control, uint64_t *diff_bytes, uint64_t *lit_bytes, size_t marks[3])
{
    otaup_record rec;
    uint32_t i, pass;
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
    put_record(out, &rec, control);
    for (i = 0; i < st->nops; i++) {
        const otaup_plan_op *op = &plan->ops[st->first_op + i];
        memset(&rec, 0, sizeof rec);
        rec.type = op->type;
        rec.addr = op->addr;
        rec.len = op->len;
        rec.src = op->src;
        rec.value = op->value;
        rec.enc = op->enc;
        if ((op->type == OTAUP_REC_WRITE || op->type == OTAUP_REC_DIFF) && op->enc == OTAUP_ENC_INLINE) {
            rec.data = plan->data + op->data_off;
            rec.data_len = op->len;
            if (op->type == OTAUP_REC_DIFF) {
                *diff_bytes += op->len;
            } else {
                *lit_bytes += op->len;
            }
        }
        put_record(out, &rec, control);
    }
    /* one BLOB: the deferred DIFF bytes, then the deferred WRITE bytes */
    {
        dl_buf blob = { 0 };
        uint64_t nd = 0, nl = 0;
        for (pass = 0; pass < 2; pass++) {
            uint8_t want = pass == 0 ? OTAUP_REC_DIFF : OTAUP_REC_WRITE;
            for (i = 0; i < st->nops; i++) {
                const otaup_plan_op *op = &plan->ops[st->first_op + i];
                if (op->type == want && op->enc == OTAUP_ENC_DEFERRED) {
                    dl_buf_put(&blob, plan->data + op->data_off, op->len);
                    if (pass == 0) {
                        nd += op->len;
                    } else {
                        nl += op->len;
                    }
                }
            }
        }
        if (blob.oom) {
            out->oom = 1;
        }
        if (blob.len > 0) {
            memset(&rec, 0, sizeof rec);
            rec.type = OTAUP_REC_BLOB;
            rec.data = blob.p;
            rec.data_len = (uint32_t)blob.len;
            put_record(out, &rec, control);
        }
        if (marks != NULL) {
            marks[2] = out->len;
            marks[1] = out->len - nl;
            marks[0] = out->len - nl - nd;
        }
        *diff_bytes += nd;
        *lit_bytes += nl;
        dl_buf_free(&blob);
    }
    memset(&rec, 0, sizeof rec);
    rec.type = OTAUP_REC_END;
    rec.index = st->index;
    put_record(out, &rec, control);
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

/* Sections (records / differences / literals) at least this long (input
 * bytes) end their deflate block, so that each block's Huffman codes fit
 * one kind of data. */
#define BLOCK_SPLIT_MIN 16384u

/* Compress one segment (steps [a, b)) as a fresh raw-deflate stream into DATA records. */
static int emit_segment(otaup_plan *plan, const dl_buf *inner, const size_t *step_off, const size_t *marks,
                        uint32_t a, uint32_t b, int level, dl_buf *body)
{
    size_t base = step_off[a], last_cut = base, ncuts = 0, got = 0, off;
    size_t *cuts = malloc(((size_t)(b - a) * 3u + 1u) * sizeof *cuts);
    uint8_t *z = NULL;
    uint32_t i;
    int rc;
    if (cuts == NULL) {
        return OTAUP_E_NOMEM;
    }
    /* block boundaries where a long run of records, difference bytes or
     * literal bytes ends */
    for (i = a; i < b; i++) {
        const size_t *m = marks + 3u * i;
        int j;
        for (j = 0; j < 3; j++) {
            size_t next = j < 2 ? m[j + 1] : step_off[i + 1];
            if (m[j] - last_cut >= BLOCK_SPLIT_MIN && next - m[j] >= BLOCK_SPLIT_MIN / 4u) {
                cuts[ncuts++] = m[j] - base;
                last_cut = m[j];
            }
        }
    }
    rc = dl_deflate(inner->p + base, step_off[b] - base, plan->hdr.window_bits, level, cuts, ncuts, &z, &got);
    free(cuts);
    if (rc < 0) {
        return rc;
    }
    {
        uint8_t v[5];
        int n = otaup_dl_varint_put(plan->steps[a].index, v);
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
    dl_buf inner = { 0 }, body = { 0 };
    size_t *step_off, *marks;
    uint32_t i, seg_start = 0, syncs = 0;
    uint64_t control = 0, dbytes = 0, lbytes = 0;
    int rc = 0;
    uint8_t hdr[OTAUP_DELTA_HEADER_SIZE];

    step_off = malloc(((size_t)plan->nsteps + 1u) * sizeof *step_off);
    marks = malloc(((size_t)plan->nsteps * 3u + 1u) * sizeof *marks);
    if (step_off == NULL || marks == NULL) {
        free(step_off);
        free(marks);
        return OTAUP_E_NOMEM;
    }
    for (i = 0; i < plan->nsteps; i++) {
        step_off[i] = inner.len;
        plan->steps[i].sync = 0;
        dl_encode_step(&inner, plan, &plan->steps[i], &control, &dbytes, &lbytes, marks + 3u * i);
    }
    step_off[plan->nsteps] = inner.len;
    if (inner.oom || inner.len > 0xFFFFFFFFu) {
        rc = OTAUP_E_NOMEM;
        goto done;
    }
    plan->stats.control_bytes = control;
    plan->stats.diff_stream_bytes = dbytes;
    plan->stats.literal_stream_bytes = lbytes;
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
                    rc = emit_segment(plan, &inner, step_off, marks, seg_start, i, level, &body);
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
            rc = emit_segment(plan, &inner, step_off, marks, seg_start, plan->nsteps, level, &body);
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
    rc = 0;
    out->len = 0;
    dl_buf_put(out, hdr, sizeof hdr);
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
    free(marks);
    dl_buf_free(&inner);
    dl_buf_free(&body);
    return rc;
}
