/*
 * Test-side planner, pair generators and apply harness (see testplan.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/journal.h"
#include "otaup/record.h"
#include "util/testplan.h"

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (n == 0) {
        return; /* memcpy into a still-NULL buffer is undefined even for 0 bytes */
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            cap *= 2;
        }
        b->p = realloc(b->p, cap);
        if (b->p == NULL) {
            abort();
        }
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_rec(buf *b, const otaup_record *r)
{
    size_t cap = (size_t)r->data_len + 64u;
    uint8_t *tmp = malloc(cap);
    int n = otaup_record_encode(r, tmp, cap);
    if (n < 0) {
        abort();
    }
    put(b, tmp, (size_t)n);
    free(tmp);
}

void tp_opts_default(tp_opts *o, const otaup_geometry *geo, uint32_t dst, uint32_t src, uint32_t len,
                     uint32_t staging)
{
    memset(o, 0, sizeof *o);
    o->geo = *geo;
    o->dst = dst;
    o->src = src;
    o->len = len;
    o->staging = staging;
    o->compress = 1;
    o->wbits = 12;
    o->sync_every = 3;
    o->deferred = 1;
    o->data_chunk = 300;
    o->verify = 1;
}

void tp_stream_free(tp_stream *s)
{
    free(s->bytes);
    free(s->rs);
    memset(s, 0, sizeof *s);
}

static void add_restart(tp_stream *s, uint32_t index, size_t offset)
{
    s->rs = realloc(s->rs, (s->nrs + 1) * sizeof *s->rs);
    if (s->rs == NULL) {
        abort();
    }
    s->rs[s->nrs].index = index;
    s->rs[s->nrs].offset = offset;
    s->nrs++;
}

/* compress `in` as one raw-deflate stream into DATA records */
static void emit_segment(const tp_opts *o, buf *outer, const buf *in)
{
    z_stream z;
    uint8_t *cbuf;
    size_t cap = deflateBound(NULL, (uLong)in->len) + 1024u, clen, off;
    int first = 1;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, -o->wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
    }
    cbuf = malloc(cap);
    z.next_in = in->p;
    z.avail_in = (uInt)in->len;
    z.next_out = cbuf;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        abort();
    }
    clen = cap - z.avail_out;
    deflateEnd(&z);
    for (off = 0; off < clen || first; off += o->data_chunk) {
        otaup_record r;
        size_t n = clen - off < o->data_chunk ? clen - off : o->data_chunk;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_DATA;
        r.flags = first ? OTAUP_DATA_RESET : 0;
        r.data = cbuf + off;
        r.data_len = (uint32_t)n;
        put_rec(outer, &r);
        first = 0;
        if (n == 0) {
            break;
        }
    }
    free(cbuf);
}

/* a block of the new window and how to make it */
enum { K_NONE, K_COPY, K_DIFF, K_WRITE, K_FILL };

int tp_plan(const tp_opts *o, const uint8_t *flash, const uint8_t *img, tp_stream *out)
{
    const otaup_geometry *g = &o->geo;
    uint32_t size = otaup_geometry_size(g), base = g->base, pos, start, ssize, k = 0;
    uint8_t *cur = malloc(size);
    buf outer = { 0 }, seg = { 0 }, blob_d = { 0 }, blob_w = { 0 };
    const uint32_t B = 64;
    memset(out, 0, sizeof *out);
    memcpy(cur, flash, size);
    for (pos = o->dst; pos < o->dst + o->len; pos = start + ssize) {
        uint32_t w;
        (void)otaup_geometry_sector_at(g, pos, &start, &ssize);
        /* skip a sector that is already right */
        {
            uint32_t lo = start, hi = start + ssize < o->dst + o->len ? start + ssize : o->dst + o->len;
            int same = memcmp(cur + (lo - base), img + (lo - o->dst), hi - lo) == 0;
            uint32_t i;
            for (i = hi; same && i < start + ssize; i++) {
                same = cur[i - base] == g->erased;
            }
            if (same) {
                continue;
            }
        }
        for (w = start; w < start + ssize && w < o->dst + o->len; w += o->staging) {
            uint32_t wl = o->staging, off;
            const uint8_t *nw;
            otaup_record r;
            uint64_t h;
            int kind_prev = K_NONE;
            otaup_record pend;
            if (w + wl > start + ssize) {
                wl = start + ssize - w;
            }
            nw = NULL;
            {
                /* new window content: image bytes, erased beyond the image */
                static uint8_t tmpw[1u << 20];
                memset(tmpw, g->erased, wl);
                if (w < o->dst + o->len) {
                    uint32_t n = o->dst + o->len - w < wl ? o->dst + o->len - w : wl;
                    memcpy(tmpw, img + (w - o->dst), n);
                }
                nw = tmpw;
            }
            if (o->compress && (o->sync_every == 0 ? k == 0 : k % o->sync_every == 0)) {
                if (seg.len > 0) {
                    out->inner_len += (uint32_t)seg.len;
                    emit_segment(o, &outer, &seg);
                    seg.len = 0;
                }
                add_restart(out, k, outer.len);
                out->nsync++;
                memset(&r, 0, sizeof r);
                r.type = OTAUP_REC_SYNC;
                r.index = k;
                put_rec(&outer, &r);
            }
            if (!o->compress) {
                add_restart(out, k, outer.len);
            }
            {
                buf *ib = o->compress ? &seg : &outer;
                h = XXH3_64bits(nw, wl);
                memset(&r, 0, sizeof r);
                r.type = OTAUP_REC_STEP;
                r.index = k;
                r.addr = w;
                r.len = wl;
                if (!o->no_hash) {
                    int i;
                    r.flags = OTAUP_STEP_HASH;
                    r.hash_len = 8;
                    for (i = 0; i < 8; i++) {
                        r.hash[i] = (uint8_t)(h >> (8 * i));
                    }
                }
                put_rec(ib, &r);
                if (w == start) {
                    memset(&r, 0, sizeof r);
                    r.type = OTAUP_REC_ERASE;
                    r.addr = start;
                    r.len = ssize;
                    put_rec(ib, &r);
                }
                blob_d.len = blob_w.len = 0;
                memset(&pend, 0, sizeof pend);
                for (off = 0; off < wl; off += B) {
                    uint32_t n = wl - off < B ? wl - off : B, a = w + off, i, ndiff = 0, s2;
                    const uint8_t *want = nw + off;
                    int kind = K_WRITE, constant = 1;
                    uint32_t src = 0;
                    for (i = 1; i < n; i++) {
                        constant = constant && want[i] == want[0];
                    }
                    if (constant && want[0] == g->erased) {
                        kind = K_NONE;
                    } else if (memcmp(cur + (a - base), want, n) == 0) {
                        kind = K_COPY;
                        src = a;
                    } else {
                        /* look for the block anywhere in the source slot */
                        for (s2 = o->src; s2 + n <= o->src + o->len; s2 += 16) {
                            if (w != start && s2 < w + wl && w < s2 + n) {
                                continue; /* never read the window a continuation step fills */
                            }
                            if (memcmp(cur + (s2 - base), want, n) == 0) {
                                kind = K_COPY;
                                src = s2;
                                break;
                            }
                        }
                    }
                    if (kind == K_WRITE) {
                        for (i = 0; i < n; i++) {
                            ndiff += cur[a - base + i] != want[i];
                        }
                        if (constant) {
                            kind = K_FILL;
                        } else if (ndiff < n / 3 && w == start) {
                            kind = K_DIFF;
                            src = a;
                        }
                    }
                    /* merge with the pending record when contiguous */
                    if (kind == kind_prev && kind == K_COPY && pend.addr + pend.len == a && pend.src + pend.len == src) {
                        pend.len += n;
                        continue;
                    }
                    if (kind_prev != K_NONE && kind_prev != K_WRITE && kind_prev != K_DIFF) {
                        put_rec(ib, &pend);
                    }
                    kind_prev = kind;
                    memset(&pend, 0, sizeof pend);
                    pend.addr = a;
                    pend.len = n;
                    if (kind == K_COPY) {
                        pend.type = OTAUP_REC_COPY;
                        pend.src = src;
                    } else if (kind == K_FILL) {
                        pend.type = OTAUP_REC_FILL;
                        pend.value = want[0];
                    } else if (kind == K_DIFF || kind == K_WRITE) {
                        uint8_t d[64];
                        otaup_record wr;
                        memset(&wr, 0, sizeof wr);
                        wr.type = kind == K_DIFF ? OTAUP_REC_DIFF : OTAUP_REC_WRITE;
                        wr.addr = a;
                        wr.len = n;
                        wr.src = a;
                        for (i = 0; i < n; i++) {
                            d[i] = kind == K_DIFF ? (uint8_t)(want[i] - cur[a - base + i]) : want[i];
                        }
                        if (o->deferred && (off / B) % 2 == 0) {
                            wr.enc = OTAUP_ENC_DEFERRED;
                            put(kind == K_DIFF ? &blob_d : &blob_w, d, n);
                        } else {
                            wr.enc = OTAUP_ENC_INLINE;
                            wr.data = d;
                            wr.data_len = n;
                        }
                        put_rec(ib, &wr);
                    }
                }
                if (kind_prev != K_NONE && kind_prev != K_WRITE && kind_prev != K_DIFF) {
                    put_rec(ib, &pend);
                }
                if (blob_d.len + blob_w.len > 0) {
                    buf all = { 0 };
                    size_t bo;
                    put(&all, blob_d.p, blob_d.len);
                    put(&all, blob_w.p, blob_w.len);
                    /* two BLOB records, split at an arbitrary point */
                    for (bo = 0; bo < all.len;) {
                        size_t n2 = bo == 0 && all.len > 7 ? all.len / 2 + 3 : all.len - bo;
                        memset(&r, 0, sizeof r);
                        r.type = OTAUP_REC_BLOB;
                        r.data = all.p + bo;
                        r.data_len = (uint32_t)n2;
                        put_rec(ib, &r);
                        bo += n2;
                    }
                    free(all.p);
                }
                memset(&r, 0, sizeof r);
                r.type = OTAUP_REC_END;
                r.index = k;
                put_rec(ib, &r);
            }
            /* apply to the simulated device */
            if (w == start) {
                memset(cur + (start - base), g->erased, ssize);
            }
            memcpy(cur + (w - base), nw, wl);
            k++;
        }
    }
    if (o->compress && seg.len > 0) {
        out->inner_len += (uint32_t)seg.len;
        emit_segment(o, &outer, &seg);
    }
    if (o->verify) {
        otaup_record r;
        XXH128_hash_t h = XXH3_128bits(img, o->len);
        int i;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_VERIFY;
        r.addr = o->dst;
        r.len = o->len;
        r.alg = OTAUP_HASH_XXH3_128;
        r.hash_len = 16;
        for (i = 0; i < 8; i++) {
            r.hash[i] = (uint8_t)(h.low64 >> (8 * i));
            r.hash[8 + i] = (uint8_t)(h.high64 >> (8 * i));
        }
        put_rec(&outer, &r);
    }
    out->bytes = outer.p;
    out->len = outer.len;
    out->nsteps = k;
    free(seg.p);
    free(blob_d.p);
    free(blob_w.p);
    free(cur);
    return 0;
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tp_fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    size_t i;
    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)rnd(&seed);
    }
}

void tp_make_image(uint8_t *p, size_t n, uint64_t seed)
{
    size_t i = 0;
    while (i < n) {
        uint64_t r = rnd(&seed);
        size_t run = 16 + (size_t)(r % 200);
        size_t j;
        if (run > n - i) {
            run = n - i;
        }
        switch (r >> 60) {
        case 0: /* padding */
            memset(p + i, 0xFF, run);
            break;
        case 1:
        case 2: /* table */
            for (j = 0; j < run; j++) {
                p[i + j] = (uint8_t)(j * 4 + (r >> 8));
            }
            break;
        default: /* "code" */
            for (j = 0; j < run; j++) {
                p[i + j] = (uint8_t)rnd(&seed) & 0x7F;
            }
            break;
        }
        i += run;
    }
}

void tp_make_new(const uint8_t *old, uint8_t *out, size_t n, uint32_t sector, uint64_t seed)
{
    size_t nsec = n / sector, i;
    memcpy(out, old, n);
    if (nsec >= 3) {
        /* a 3-cycle of sectors: 0 <- 1 <- 2 <- 0 */
        memcpy(out, old + sector, sector);
        memcpy(out + sector, old + 2 * (size_t)sector, sector);
        memcpy(out + 2 * (size_t)sector, old, sector);
    }
    if (nsec >= 5) {
        /* a block moved by 100 bytes inside its own sector (self-overlap) */
        size_t s = 3 * (size_t)sector;
        memmove(out + s + 100, old + s, sector - 200);
    }
    /* byte patches */
    for (i = 0; i < n / 512 + 3; i++) {
        size_t at = (size_t)(rnd(&seed) % n);
        out[at] = (uint8_t)(out[at] + 1 + (rnd(&seed) & 3));
    }
    /* a changed tail */
    if (n > 300) {
        tp_fill_random(out + n - 300, 200, seed ^ 0x55);
    }
}

int th_apply(otaup_simflash *sim, const th_layout *L, const tp_stream *s, size_t chunk, uint64_t delta_id,
             const otaup_exec_hooks *hooks, th_result *res)
{
    const otaup_flash *f = otaup_simflash_flash(sim);
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win, prot[1];
    size_t wsz, off = 0, i;
    void *work;
    int rc;
    uint8_t target = L->layout == OTAUP_LAYOUT_AB ? 1 : 0;
    if (res != NULL) {
        memset(res, 0, sizeof *res);
    }
    rc = otaup_journal_mount(&j, f, L->journal.addr, L->journal.len);
    if (rc != 0) {
        return rc;
    }
    memset(&c, 0, sizeof c);
    c.flash = f;
    c.journal = &j;
    c.layout = L->layout;
    c.window_bits = (uint8_t)L->wbits;
    win = L->slot[target];
    c.windows = &win;
    c.nwindows = 1;
    prot[0] = L->user;
    c.protect = prot;
    c.nprotect = L->user.len ? 1 : 0;
    c.scratch = L->scratch;
    if (L->layout == OTAUP_LAYOUT_INPLACE) {
        c.running = L->slot[0];
    }
    c.staging_size = L->staging;
    c.max_ops = L->max_ops;
    wsz = otaup_exec_work_size(L->staging, L->max_ops, L->wbits);
    work = malloc(wsz);
    c.work = work;
    c.work_size = wsz;
    if (hooks != NULL) {
        c.hooks = *hooks;
    }
    rc = otaup_exec_init(&ex, &c);
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, delta_id, target);
        if (rc == 2) {
            free(work);
            return 0;
        }
        if (res != NULL) {
            res->resumed = rc == 1;
        }
        if (rc >= 0) {
            uint32_t next;
            otaup_exec_set_step_count(&ex, s->nsteps);
            next = otaup_exec_next_step(&ex);
            rc = 0;
            for (i = 0; i < s->nrs; i++) {
                if (s->rs[i].index <= next) {
                    off = s->rs[i].offset;
                }
            }
            while (rc == 0 && off < s->len) {
                size_t n = s->len - off < chunk ? s->len - off : chunk;
                rc = otaup_exec_feed(&ex, s->bytes + off, n);
                off += n;
            }
            if (rc == 0) {
                rc = otaup_exec_finish(&ex);
            }
        }
    }
    if (res != NULL) {
        res->rc = rc;
        res->stats = ex.stats;
    }
    free(work);
    return rc;
}

static void put_hash128(uint8_t out[16], const uint8_t *p, size_t n)
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.low64 >> (8 * i));
        out[8 + i] = (uint8_t)(h.high64 >> (8 * i));
    }
}

int tp_container(const tp_opts *o, const tp_stream *s, uint8_t layout, uint32_t scratch_addr,
                 uint32_t scratch_size, uint16_t max_ops, const uint8_t *old, uint32_t old_len,
                 const uint8_t *img, uint8_t **out, size_t *out_len)
{
    otaup_delta_header h;
    uint8_t *p;
    int n;
    memset(&h, 0, sizeof h);
    h.format_version = OTAUP_DELTA_FORMAT_VERSION;
    h.header_size = (uint16_t)OTAUP_DELTA_HEADER_BYTES(o->geo.nruns);
    h.flags = o->no_hash ? 0 : OTAUP_DELTA_F_STEP_HASH;
    h.geo = o->geo;
    h.layout = layout;
    h.window_bits = (uint8_t)o->wbits;
    h.max_ops = max_ops;
    h.source_addr = o->src;
    h.target_addr = o->dst;
    h.scratch_addr = scratch_addr;
    h.scratch_size = scratch_size;
    h.staging_size = o->staging;
    h.step_count = s->nsteps;
    h.sync_count = s->nsync;
    h.source_size = old_len;
    put_hash128(h.source_hash, old, old_len);
    h.target_size = o->len;
    put_hash128(h.target_hash, img, o->len);
    h.body_len = (uint32_t)s->len;
    put_hash128(h.body_hash, s->bytes, s->len);
    h.inner_len = s->inner_len;
    p = malloc(OTAUP_DELTA_HEADER_MAX + 6u + s->len);
    n = otaup_delta_header_encode(&h, p, OTAUP_DELTA_HEADER_MAX);
    if (n < 0) {
        free(p);
        return n;
    }
    memset(p + n, 0, 6);
    memcpy(p + n + 6, s->bytes, s->len);
    *out = p;
    *out_len = (size_t)n + 6u + s->len;
    return 0;
}

int tp_from_container(const uint8_t *delta, size_t len, tp_stream *out, struct otaup_delta_header *hdr)
{
    otaup_delta_reader r;
    uint32_t body;
    size_t off = 0;
    int rc = otaup_delta_check(delta, len, hdr, &body);
    memset(out, 0, sizeof *out);
    if (rc != 0) {
        return rc;
    }
    out->len = len - body;
    out->bytes = malloc(out->len ? out->len : 1);
    memcpy(out->bytes, delta + body, out->len);
    out->nsteps = hdr->step_count;
    out->nsync = hdr->sync_count;
    out->inner_len = hdr->inner_len;
    otaup_delta_reader_init(&r);
    while (off < len) {
        size_t used = 0;
        int ev = otaup_delta_reader_feed(&r, delta + off, len - off, &used);
        off += used;
        if (ev < 0 || ev == OTAUP_DELTA_NEED_INPUT || ev == OTAUP_DELTA_END) {
            break;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_SYNC) {
            add_restart(out, r.rec.index, r.rec_offset - body);
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_DATA) {
            off += otaup_delta_reader_skip(&r);
        }
    }
    return 0;
}

void tp_apply_config_backup(otaup_apply_config *c, uint32_t user_len, uint32_t max_frame, const char *terminal_id)
{
    const uint32_t sz = 4096u;
    c->layout = OTAUP_LAYOUT_INPLACE;
    c->window_bits = 11;
    c->max_ops = 32;
    c->slots[0].addr = 0;
    c->slots[0].len = 4 * sz;
    c->scratch.addr = 4 * sz;
    c->scratch.len = sz;
    c->journal.addr = 5 * sz;
    c->journal.len = 2 * sz;
    c->updater.addr = 7 * sz;
    c->updater.len = sz;
    c->regions[0].id = 1;
    c->regions[0].flags = OTAUP_REGION_PERSONAL;
    c->regions[0].addr = 8 * sz;
    c->regions[0].len = user_len;
    c->nregions = 1;
    c->staging_size = sz;
    c->max_frame = max_frame;
    c->max_msg = 512;
    c->id.terminal_id = terminal_id;
    c->id.model = "demo-m4";
    c->id.sw_version = "1.0.0";
    c->id.build_time = 1767225600u;
}

uint8_t *tp_load_vector(const char *name, size_t *len)
{
    char path[1024];
    const char *dir = getenv("OTAUP_VECTORS");
    FILE *f;
    uint8_t *p = NULL;
    long n;
    if (dir == NULL || (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
        (f = fopen(path, "rb")) == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc(n > 0 ? (size_t)n : 1u)) != NULL && fread(p, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}
