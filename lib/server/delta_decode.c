/*
 * Server-side decoder: a whole delta file back into an in-memory plan
 * (for `otaup inspect`, the tests and the simulator). Every DATA stream
 * is inflated and every inner record checked against the step rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/dl_util.h"
#include "otaup/error.h"
#include "server/dl_int.h"

typedef struct dec {
    otaup_plan *p;
    int in_step;
    uint32_t next_index;
    otaup_plan_step cur;
    uint32_t deferred;     /* deferred records of the current step */
    uint64_t deferred_len; /* their total bytes */
    uint64_t blob_len;     /* BLOB bytes received */
    dl_buf blob;
    uint64_t inner_total;
    uint32_t ct, cs;       /* compact records: target and source cursors */
    uint8_t *diff;         /* PIECE differences being decoded */
    size_t diff_cap;
} dec;

/* A compact record inside the current step: ops at the cursors. */
static int compact_record(dec *d, const otaup_record *r)
{
    otaup_plan *p = d->p;
    const otaup_delta_header *h = &p->hdr;
    otaup_plan_op op;
    uint64_t end = (uint64_t)d->ct + r->len + (r->type == OTAUP_REC_PIECE ? r->lit : 0u);
    int rc = 0;
    if (!d->in_step || d->blob_len > 0 || end > (uint64_t)d->cur.addr + d->cur.len) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    memset(&op, 0, sizeof op);
    op.addr = d->ct;
    if (r->type == OTAUP_REC_CFILL) {
        d->ct += r->len;
        if (r->value == h->geo.erased) {
            return 0; /* the staging buffer holds the erased value already */
        }
        op.type = OTAUP_REC_FILL;
        op.len = r->len;
        op.value = r->value;
        return dl_plan_add_op(p, &op);
    }
    if (r->len > 0) {
        otaup_sparse sp;
        uint32_t k;
        int used;
        op.src = d->cs + r->src;
        if (op.src < h->source_addr || (uint64_t)op.src + r->len > (uint64_t)h->source_addr + h->source_size) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        if (d->diff_cap < r->len) {
            uint8_t *nb = realloc(d->diff, r->len);
            if (nb == NULL) {
                return OTAUP_E_NOMEM;
            }
            d->diff = nb;
            d->diff_cap = r->len;
        }
        memset(d->diff, 0, r->len);
        otaup_sparse_init(&sp, r->len);
        used = otaup_sparse_feed(&sp, r->data, r->data_len, d->diff);
        if (used < 0 || !otaup_sparse_done(&sp) || r->data_len - (uint32_t)used != r->lit) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        for (k = 0; k < r->len && d->diff[k] == 0; k++) {
        }
        op.len = r->len;
        op.enc = OTAUP_ENC_INLINE;
        if (k == r->len) {
            op.type = OTAUP_REC_COPY; /* no differences */
            op.enc = 0;
        } else {
            op.type = OTAUP_REC_DIFF;
            rc = dl_plan_add_data(p, d->diff, r->len, &op.data_off);
        }
        if (rc == 0) {
            rc = dl_plan_add_op(p, &op);
        }
        d->cs = op.src + r->len;
    } else if (r->data_len != r->lit) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (rc == 0 && r->lit > 0) {
        memset(&op, 0, sizeof op);
        op.type = OTAUP_REC_WRITE;
        op.addr = d->ct + r->len;
        op.len = r->lit;
        op.enc = OTAUP_ENC_INLINE;
        rc = dl_plan_add_data(p, r->data + (r->data_len - r->lit), r->lit, &op.data_off);
        if (rc == 0) {
            rc = dl_plan_add_op(p, &op);
        }
    }
    d->ct = (uint32_t)end;
    return rc;
}

/* Assign the step's BLOB bytes to its deferred records: DIFFs first, then WRITEs. */
static int close_step(dec *d)
{
    otaup_plan *p = d->p;
    uint32_t i, pass;
    size_t pos = 0;
    if (d->blob_len != d->deferred_len) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    for (pass = 0; pass < 2; pass++) {
        uint8_t want = pass == 0 ? OTAUP_REC_DIFF : OTAUP_REC_WRITE;
        for (i = d->cur.first_op; i < p->nops; i++) {
            otaup_plan_op *op = &p->ops[i];
            if (op->type == want && op->enc == OTAUP_ENC_DEFERRED) {
                int rc = dl_plan_add_data(p, d->blob.p + pos, op->len, &op->data_off);
                if (rc < 0) {
                    return rc;
                }
                pos += op->len;
            }
        }
    }
    d->cur.nops = p->nops - d->cur.first_op;
    d->blob.len = 0;
    return dl_plan_add_step(p, &d->cur);
}

/* One inner record. */
static int inner_record(dec *d, const otaup_record *r)
{
    otaup_plan *p = d->p;
    const otaup_delta_header *h = &p->hdr;
    otaup_plan_op op;
    int rc;
    switch (r->type) {
    case OTAUP_REC_STEP:
        if (d->in_step || r->index != d->next_index || r->index >= h->step_count) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        if (r->len == 0 || r->len > h->staging_size || r->addr % h->geo.write_size != 0 ||
            r->len % h->geo.write_size != 0 || r->addr < h->geo.base ||
            (uint64_t)r->addr + r->len > (uint64_t)h->geo.base + otaup_geometry_size(&h->geo)) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        if (((h->flags & OTAUP_DELTA_F_STEP_HASH) != 0) != ((r->flags & OTAUP_STEP_HASH) != 0)) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        memset(&d->cur, 0, sizeof d->cur);
        d->cur.index = r->index;
        d->cur.addr = r->addr;
        d->cur.len = r->len;
        d->cur.first_op = p->nops;
        d->cur.has_hash = (r->flags & OTAUP_STEP_HASH) != 0;
        if (d->cur.has_hash) {
            d->cur.hash = otaup_dl_get64(r->hash);
        }
        d->in_step = 1;
        d->ct = d->cs = r->addr;
        d->deferred = 0;
        d->deferred_len = 0;
        d->blob_len = 0;
        d->blob.len = 0;
        return 0;
    case OTAUP_REC_END:
        if (!d->in_step || r->index != d->cur.index) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        rc = close_step(d);
        d->in_step = 0;
        d->next_index++;
        return rc;
    case OTAUP_REC_BLOB:
        if (!d->in_step) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        d->blob_len += r->data_len;
        if (d->blob_len > d->deferred_len) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        dl_buf_put(&d->blob, r->data, r->data_len);
        return d->blob.oom ? OTAUP_E_NOMEM : 0;
    case OTAUP_REC_ERASE:
    case OTAUP_REC_WRITE:
    case OTAUP_REC_COPY:
    case OTAUP_REC_DIFF:
    case OTAUP_REC_FILL:
        if (!d->in_step || d->blob_len > 0) {
            return OTAUP_E_DELTA_CORRUPT; /* records come before the step's BLOBs */
        }
        if (r->type == OTAUP_REC_ERASE) {
            if (!otaup_geometry_is_sector_aligned(&h->geo, r->addr, r->len) || r->len == 0 ||
                r->addr < h->geo.base ||
                (uint64_t)r->addr + r->len > (uint64_t)h->geo.base + otaup_geometry_size(&h->geo)) {
                return OTAUP_E_DELTA_CORRUPT;
            }
        } else if (r->addr < d->cur.addr || (uint64_t)r->addr + r->len > (uint64_t)d->cur.addr + d->cur.len) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        if ((r->type == OTAUP_REC_COPY || r->type == OTAUP_REC_DIFF) &&
            (r->src < h->source_addr || (uint64_t)r->src + r->len > (uint64_t)h->source_addr + h->source_size)) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        memset(&op, 0, sizeof op);
        op.type = r->type;
        op.addr = r->addr;
        op.len = r->len;
        op.src = r->src;
        op.value = r->value;
        op.enc = (r->type == OTAUP_REC_WRITE || r->type == OTAUP_REC_DIFF) ? r->enc : 0;
        if (op.enc == OTAUP_ENC_INLINE && (r->type == OTAUP_REC_WRITE || r->type == OTAUP_REC_DIFF)) {
            if (r->data_len != r->len) {
                return OTAUP_E_DELTA_CORRUPT;
            }
            rc = dl_plan_add_data(p, r->data, r->len, &op.data_off);
            if (rc < 0) {
                return rc;
            }
        } else if (op.enc == OTAUP_ENC_DEFERRED) {
            if (++d->deferred > h->max_ops) {
                return OTAUP_E_DELTA_CORRUPT;
            }
            d->deferred_len += r->len;
        }
        return dl_plan_add_op(p, &op);
    case OTAUP_REC_PIECE:
    case OTAUP_REC_CFILL:
        return compact_record(d, r);
    default:
        return OTAUP_E_DELTA_CORRUPT;
    }
}

/* Parse inner records from buf[0..len); returns bytes consumed (whole records only). */
static int parse_inner(dec *d, const uint8_t *buf, size_t len, size_t *used)
{
    size_t off = 0;
    while (off < len) {
        otaup_record r;
        int n;
        if (buf[off] >= 0x2Bu && buf[off] <= 0x2Fu) {
            /* a security record (security.md: the CHAIN of a signed delta): skip it */
            uint32_t blen;
            int k = otaup_varint_get(buf + off + 1, len - off - 1, &blen);
            if (k == OTAUP_E_DELTA_TRUNCATED || (k > 0 && len - off - 1 - (size_t)k < blen)) {
                break;
            }
            if (k < 0) {
                return OTAUP_E_DELTA_CORRUPT;
            }
            off += 1 + (size_t)k + blen;
            continue;
        }
        n = otaup_record_decode(buf + off, len - off, &r);
        if (n == OTAUP_E_DELTA_TRUNCATED) {
            break;
        }
        if (n < 0) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        n = inner_record(d, &r) < 0 ? -1 : n;
        if (n < 0) {
            return OTAUP_E_DELTA_CORRUPT;
        }
        off += (size_t)n;
    }
    *used = off;
    return 0;
}

static void decoded_stats(otaup_plan *p, size_t file_len)
{
    otaup_delta_stats *s = &p->stats;
    const otaup_delta_header *h = &p->hdr;
    uint32_t i;
    uint64_t written = 0;
    s->steps = p->nsteps;
    for (i = 0; i < p->nops; i++) {
        const otaup_plan_op *op = &p->ops[i];
        switch (op->type) {
        case OTAUP_REC_COPY: s->n_copy++; s->copy_bytes += op->len; break;
        case OTAUP_REC_DIFF: s->n_diff++; s->diff_bytes += op->len; break;
        case OTAUP_REC_WRITE: s->n_write++; s->write_bytes += op->len; break;
        case OTAUP_REC_FILL: s->n_fill++; s->fill_bytes += op->len; break;
        case OTAUP_REC_ERASE: {
            uint32_t a = op->addr;
            s->n_erase++;
            while (a < op->addr + op->len) {
                uint32_t st, sz;
                if (otaup_geometry_sector_at(&h->geo, a, &st, &sz) < 0) {
                    break;
                }
                s->sectors_erased++;
                a = st + sz;
            }
            break;
        }
        default: break;
        }
        if (op->type == OTAUP_REC_WRITE) {
            s->literal_stream_bytes += op->len;
        } else if (op->type == OTAUP_REC_DIFF) {
            s->diff_stream_bytes += op->len;
        }
    }
    for (i = 0; i < p->nsteps; i++) {
        uint32_t k;
        const otaup_plan_step *st = &p->steps[i];
        for (k = 0; k < st->nops; k++) {
            const otaup_plan_op *op = &p->ops[st->first_op + k];
            if ((op->type == OTAUP_REC_COPY || op->type == OTAUP_REC_DIFF) && h->layout == OTAUP_LAYOUT_INPLACE) {
                uint32_t j;
                for (j = 0; j < st->nops; j++) {
                    const otaup_plan_op *e = &p->ops[st->first_op + j];
                    if (e->type == OTAUP_REC_ERASE && (uint64_t)op->src < (uint64_t)e->addr + e->len &&
                        (uint64_t)e->addr < (uint64_t)op->src + op->len) {
                        p->steps[i].self_read = 1;
                    }
                }
            }
        }
        s->self_read_steps += p->steps[i].self_read;
    }
    {
        uint32_t a = h->target_addr;
        while (a < h->target_addr + h->target_size) {
            uint32_t st, sz;
            if (otaup_geometry_sector_at(&h->geo, a, &st, &sz) < 0) {
                break;
            }
            s->sectors_total++;
            a = st + sz;
        }
    }
    s->sectors_unchanged = h->layout == OTAUP_LAYOUT_INPLACE && s->sectors_total > s->sectors_erased
                               ? s->sectors_total - s->sectors_erased
                               : 0;
    written = s->copy_bytes + s->diff_bytes + s->write_bytes + s->fill_bytes;
    s->erased_bytes = 0;
    (void)written;
    s->restarts = h->sync_count;
    s->inner_bytes = h->inner_len;
    s->body_bytes = h->body_len;
    s->delta_bytes = file_len;
    s->ram_needed = otaup_delta_ram_needed(h->staging_size, h->window_bits, h->max_ops);
}

/* Planner notes (OTAUP_SECTION_INFO): "key=value" lines ending with their own check. */
static int parse_info(otaup_plan *p, const char *text, uint32_t n, uint32_t sec_len)
{
    char line[80];
    uint32_t i, k = 0, start = 0;
    int checked = 0;
    if (n != sec_len || n > 1024) {
        return OTAUP_E_DELTA_CORRUPT; /* whole section in one piece, as the decoder feeds it */
    }
    for (i = 0; i < n; i++) {
        char ch = text[i];
        if (ch == '\n') {
            unsigned long long v = 0;
            long long sv = 0;
            line[k] = 0;
            if (strncmp(line, "check=", 6) == 0) {
                if (sscanf(line, "check=%llx", &v) != 1 || v != (unsigned long long)XXH3_64bits(text, start) ||
                    i + 1 != n) {
                    return OTAUP_E_DELTA_CORRUPT;
                }
                checked = 1;
            } else if (sscanf(line, "cycle_edges=%llu", &v) == 1) {
                p->stats.cycle_edges = v;
            } else if (sscanf(line, "cycle_cost_bytes=%llu", &v) == 1) {
                p->stats.cycle_cost_bytes = v;
            } else if (sscanf(line, "cycle_cost_patch=%lld", &sv) == 1) {
                p->stats.cycle_cost_patch = sv;
            } else if (sscanf(line, "fallback=%llu", &v) == 1) {
                p->stats.fallback = v != 0;
            }
            k = 0;
            start = i + 1;
        } else if (k + 1 < sizeof line) {
            line[k++] = ch;
        } else {
            return OTAUP_E_DELTA_CORRUPT;
        }
    }
    return checked ? 0 : OTAUP_E_DELTA_CORRUPT;
}

int otaup_delta_decode(const uint8_t *in, size_t len, otaup_plan **out)
{
    otaup_delta_reader r;
    otaup_plan *p;
    dec d;
    z_stream zs;
    int zinit = 0, rc = 0, stream_done = 1;
    size_t off = 0;
    dl_buf pend = { 0 }; /* inflated bytes not yet parsed */
    uint8_t zout[16384];
    if (in == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    rc = otaup_delta_check(in, len, NULL, NULL);
    if (rc < 0) {
        return rc;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        return OTAUP_E_NOMEM;
    }
    memset(&d, 0, sizeof d);
    d.p = p;
    memset(&zs, 0, sizeof zs);
    otaup_delta_reader_init(&r);
    for (;;) {
        size_t used = 0;
        int ev = otaup_delta_reader_feed(&r, in + off, len - off, &used);
        off += used;
        if (ev < 0) {
            rc = ev;
            break;
        }
        if (ev == OTAUP_DELTA_SECTION_BYTES && r.sec_tag == OTAUP_SECTION_INFO) {
            rc = parse_info(p, (const char *)r.data, r.data_len, r.sec_len);
            if (rc < 0) {
                break;
            }
        } else if (ev == OTAUP_DELTA_SECTION && r.sec_tag == OTAUP_SECTION_INFO && r.sec_len == 0) {
            rc = OTAUP_E_DELTA_CORRUPT; /* an empty INFO has no check line: no bytes reach parse_info */
            break;
        } else if (ev == OTAUP_DELTA_SECTION && r.sec_tag != OTAUP_SECTION_MANIFEST &&
                   r.sec_tag != OTAUP_SECTION_SIGNATURE && r.sec_tag != OTAUP_SECTION_PAD &&
                   r.sec_tag != OTAUP_SECTION_INFO) {
            rc = OTAUP_E_DELTA_CORRUPT; /* this decoder knows every tag of format 1 */
            break;
        } else if (ev == OTAUP_DELTA_HEADER) {
            p->hdr = r.hdr;
            if ((uint64_t)r.hdr.inner_len > (uint64_t)r.hdr.body_len * 1040u + 1024u) {
                rc = OTAUP_E_DELTA_CORRUPT; /* implausible expansion */
                break;
            }
        } else if (ev == OTAUP_DELTA_RECORD) {
            if (r.rec.type == OTAUP_REC_SYNC) {
                if (!stream_done || d.in_step || pend.len > 0 || r.rec.index != d.next_index) {
                    rc = OTAUP_E_DELTA_CORRUPT;
                    break;
                }
            } else if (r.rec.type == OTAUP_REC_DATA && (r.rec.flags & OTAUP_DATA_RESET)) {
                if (zinit) {
                    inflateEnd(&zs);
                }
                memset(&zs, 0, sizeof zs);
                if (inflateInit2(&zs, -(int)p->hdr.window_bits) != Z_OK) {
                    rc = OTAUP_E_NOMEM;
                    break;
                }
                zinit = 1;
                stream_done = 0;
            } else if (r.rec.type == OTAUP_REC_DATA && stream_done) {
                rc = OTAUP_E_DELTA_CORRUPT; /* data after the end of the stream */
                break;
            } else if (r.rec.type != OTAUP_REC_DATA) {
                if (!stream_done || d.in_step) {
                    rc = OTAUP_E_DELTA_CORRUPT;
                    break;
                }
            }
        } else if (ev == OTAUP_DELTA_RECORD_BYTES) {
            int zr = Z_OK;
            if (stream_done) {
                rc = OTAUP_E_DELTA_CORRUPT;
                break;
            }
            zs.next_in = (Bytef *)(uintptr_t)r.data;
            zs.avail_in = r.data_len;
            while (zs.avail_in > 0 && zr != Z_STREAM_END) {
                size_t used2 = 0, got;
                zs.next_out = zout;
                zs.avail_out = sizeof zout;
                zr = inflate(&zs, Z_NO_FLUSH);
                if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
                    rc = OTAUP_E_INFLATE;
                    break;
                }
                got = sizeof zout - zs.avail_out;
                d.inner_total += got;
                if (d.inner_total > p->hdr.inner_len) {
                    rc = OTAUP_E_DELTA_CORRUPT;
                    break;
                }
                dl_buf_put(&pend, zout, got);
                rc = parse_inner(&d, pend.p, pend.len, &used2);
                if (rc < 0) {
                    break;
                }
                if (used2 > 0) { /* pend.p is NULL until the first output */
                    memmove(pend.p, pend.p + used2, pend.len - used2);
                    pend.len -= used2;
                }
                if (zr == Z_BUF_ERROR && got == 0) {
                    break;
                }
            }
            if (rc < 0) {
                break;
            }
            /* output may remain buffered in zlib */
            while (zr == Z_OK && zs.avail_in == 0) {
                size_t used2 = 0, got;
                zs.next_out = zout;
                zs.avail_out = sizeof zout;
                zr = inflate(&zs, Z_NO_FLUSH);
                got = sizeof zout - zs.avail_out;
                if (got == 0) {
                    break;
                }
                d.inner_total += got;
                if (d.inner_total > p->hdr.inner_len) {
                    rc = OTAUP_E_DELTA_CORRUPT;
                    break;
                }
                dl_buf_put(&pend, zout, got);
                rc = parse_inner(&d, pend.p, pend.len, &used2);
                if (rc < 0) {
                    break;
                }
                if (used2 > 0) { /* pend.p is NULL until the first output */
                    memmove(pend.p, pend.p + used2, pend.len - used2);
                    pend.len -= used2;
                }
            }
            if (rc < 0) {
                break;
            }
            if (zr == Z_STREAM_END) {
                if (zs.avail_in > 0 || r.left > 0 || pend.len > 0 || d.in_step) {
                    rc = OTAUP_E_DELTA_CORRUPT; /* a stream ends with whole steps, then nothing */
                    break;
                }
                stream_done = 1;
            } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                rc = OTAUP_E_INFLATE;
                break;
            }
        } else if (ev == OTAUP_DELTA_END) {
            break;
        } else if (ev == OTAUP_DELTA_NEED_INPUT) {
            rc = otaup_delta_reader_finish(&r);
            rc = rc == OTAUP_DELTA_END ? 0 : rc;
            break;
        }
        if (pend.oom) {
            rc = OTAUP_E_NOMEM;
            break;
        }
    }
    if (rc == 0 && (!stream_done || d.in_step || d.next_index != p->hdr.step_count ||
                    d.inner_total != p->hdr.inner_len)) {
        rc = OTAUP_E_DELTA_CORRUPT;
    }
    if (zinit) {
        inflateEnd(&zs);
    }
    dl_buf_free(&pend);
    dl_buf_free(&d.blob);
    free(d.diff);
    if (rc < 0) {
        otaup_plan_free(p);
        return rc;
    }
    /* SYNC positions: mark the steps */
    {
        otaup_delta_reader r2;
        size_t o2 = 0;
        otaup_delta_reader_init(&r2);
        for (;;) {
            size_t u = 0;
            int ev = otaup_delta_reader_feed(&r2, in + o2, len - o2, &u);
            o2 += u;
            if (ev < 0 || ev == OTAUP_DELTA_END || ev == OTAUP_DELTA_NEED_INPUT) {
                break;
            }
            if (ev == OTAUP_DELTA_RECORD && r2.rec.type == OTAUP_REC_SYNC && r2.rec.index < p->nsteps) {
                p->steps[r2.rec.index].sync = 1;
            }
            if (ev == OTAUP_DELTA_RECORD && r2.rec.type == OTAUP_REC_DATA) {
                o2 += otaup_delta_reader_skip(&r2);
            }
        }
    }
    decoded_stats(p, len);
    *out = p;
    return 0;
}
