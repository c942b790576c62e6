/*
 * The planner: options, flash layout, steps (staging windows), per-step
 * record selection, in-place ordering with cycle breaking, the container,
 * and the proof by simulation (docs/delta-format.md, "The planner's
 * guarantees").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/dl_util.h"
#include "otaup/error.h"
#include "server/dl_int.h"
#include "server/dl_order.h"

struct otaup_delta {
    otaup_plan plan;
    dl_buf bytes;
};

/* Tuning constants (docs/delta-format.md, "Delta engine"). */
#define FILL_MIN 24u         /* a literal run of one value this long becomes FILL */
#define ERASED_MIN 8u        /* a literal run of the erased value this long becomes a gap */
#define MATCH_MIN 24u        /* shorter cover pieces become literal */
/* Estimated patch bits, to decide whether a cover piece pays for its record
 * (measured on the benchmark pairs with compact records: a PIECE costs
 * 3..4 bytes compressed, and it splits the literal run it sits in). */
#define COST_RECORD 60u
#define COST_NONZERO 9u
#define COST_ZERO 3u         /* per 16 equal bytes */
#define COST_LITERAL 7u
#define DEFAULT_LEVEL 10     /* near-optimal deflate (docs/deflate.md); 1..9: zlib (dl_deflate.h) */
#define DEFAULT_RAM 65536u
#define DEFAULT_MAX_OPS 64u
#define DEFAULT_RESTART 65536u
#define STAGING_CAP 65536u

int otaup_delta_options_init(otaup_delta_options *opt, unsigned int version)
{
    if (opt == NULL) {
        return OTAUP_E_INVAL;
    }
    if (version != OTAUP_DELTA_OPTIONS_VERSION) {
        return OTAUP_E_UNSUPPORTED;
    }
    memset(opt, 0, sizeof *opt);
    opt->version = version;
    return 0;
}

/* ---- layout ----------------------------------------------------------------- */

static uint32_t sector_ceil(const otaup_geometry *g, uint32_t addr)
{
    uint32_t start, size;
    if (otaup_geometry_sector_at(g, addr, &start, &size) < 0) {
        return addr;
    }
    return start == addr ? addr : start + size;
}

static uint32_t round_up(uint32_t v, uint32_t a)
{
    return (uint32_t)(((uint64_t)v + a - 1u) / a * a);
}

/* Walk the sectors NEW occupies at `target`: *part is the largest part of
 * one sector it occupies (A/B: each such part must be written by a single
 * step); *shared the largest sector whose part exceeds `staging` (0 if
 * none). In place, several steps write such a sector, and a power cut in a
 * later one can only be recovered by rebuilding the whole sector through
 * the scratch area (the executor refuses the step, with OTAUP_E_SCRATCH,
 * when the scratch area cannot hold the sector). */
static void sector_parts(const otaup_geometry *g, uint32_t target, uint32_t new_len, uint32_t staging,
                         uint32_t *part, uint32_t *shared)
{
    uint64_t pos = target, end = (uint64_t)target + new_len;
    *part = *shared = 0;
    while (pos < end) {
        uint32_t start, size;
        uint64_t e;
        if (otaup_geometry_sector_at(g, (uint32_t)pos, &start, &size) < 0) {
            break; /* outside the flash: geometry checks refuse it later */
        }
        e = (uint64_t)start + size < end ? (uint64_t)start + size : end;
        if (e - pos > *part) {
            *part = (uint32_t)(e - pos);
        }
        if (e - pos > staging && size > *shared) {
            *shared = size;
        }
        pos = e;
    }
}

/* Bytes of the whole sectors from `addr` that cover `n` bytes; 0 if they
 * run off the flash. */
static uint32_t sectors_span(const otaup_geometry *g, uint32_t addr, uint32_t n)
{
    uint64_t pos = addr;
    while (pos - addr < n) {
        uint32_t start, size;
        if (pos > 0xFFFFFFFFu || otaup_geometry_sector_at(g, (uint32_t)pos, &start, &size) < 0) {
            return 0;
        }
        pos = (uint64_t)start + size;
    }
    return (uint32_t)(pos - addr);
}

/* Resolve defaults into *o. */
static int resolve(const otaup_delta_options *in, uint32_t old_len, uint32_t new_len, otaup_delta_options *o)
{
    uint32_t w, rem = 0, after_slot, maxlen = old_len > new_len ? old_len : new_len;
    uint64_t fixed;
    *o = *in;
    if (o->layout != OTAUP_LAYOUT_INPLACE && o->layout != OTAUP_LAYOUT_AB) {
        return OTAUP_E_INVAL;
    }
    if (o->ram == 0) {
        o->ram = DEFAULT_RAM;
    }
    if (o->max_ops == 0) {
        o->max_ops = DEFAULT_MAX_OPS;
    }
    if (o->max_ops > OTAUP_DELTA_MAX_OPS_LIMIT) {
        return OTAUP_E_INVAL;
    }
    if (o->level == 0) {
        o->level = DEFAULT_LEVEL;
    }
    if (o->level < 1 || o->level > 12) {
        return OTAUP_E_INVAL;
    }
    if (o->restart_interval == 0) {
        o->restart_interval = DEFAULT_RESTART;
    }
    if (o->geo.nruns == 0) {
        /* a uniform 4 KiB map from 0 holding the slot(s) and a scratch area */
        uint32_t slot = round_up(maxlen ? maxlen : 1u, 4096u);
        otaup_geometry_uniform(&o->geo, 0, 4096, (slot / 4096u) * 2u + 16u, o->geo.write_size ? o->geo.write_size : 1u);
    }
    if (otaup_geometry_check(&o->geo) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    if (o->source_addr == 0) {
        o->source_addr = o->geo.base;
    }
    if (o->layout == OTAUP_LAYOUT_INPLACE) {
        o->target_addr = o->source_addr;
    } else if (o->target_addr == 0 && !o->target_given) {
        o->target_addr = sector_ceil(&o->geo, o->source_addr + maxlen);
        if (o->target_addr == o->source_addr) {
            o->target_addr = sector_ceil(&o->geo, o->source_addr + 1u);
        }
    }
    /* staging and window from the RAM budget */
    fixed = (uint64_t)OTAUP_DELTA_INFLATE_STATE; /* compact records: no deferred-record table */
    if (o->window_bits == 0) {
        /* keep a staging buffer of at least one small sector (or 4 KiB),
         * give the inflate window the largest power of two of the rest */
        uint32_t i, smin = 0xFFFFFFFFu;
        uint64_t avail, want;
        for (i = 0; i < o->geo.nruns; i++) {
            if (o->geo.runs[i].size < smin) {
                smin = o->geo.runs[i].size;
            }
        }
        want = o->staging_size ? o->staging_size : 4096u;
        if (!o->staging_size && o->ram >= 49152u) {
            /* a large staging buffer gains more than a large window: the
             * inner stream has few long-distance repeats (window 2^14
             * against 2^15: +0.1 %), while every step costs records */
            want = o->ram / 2u + o->ram / 4u - (uint32_t)fixed;
        }
        avail = (uint64_t)o->ram > fixed + want ? (uint64_t)o->ram - fixed - want : 0;
        for (w = 15; w > 9; w--) {
            if (((uint64_t)1 << w) <= avail) {
                break;
            }
        }
        o->window_bits = (uint8_t)w;
    }
    if (o->window_bits < 9 || o->window_bits > 15) {
        return OTAUP_E_INVAL;
    }
    if ((uint64_t)o->ram > fixed + ((uint64_t)1 << o->window_bits)) {
        rem = (uint32_t)((uint64_t)o->ram - fixed - ((uint64_t)1 << o->window_bits));
    }
    if (o->staging_size == 0) {
        uint32_t i, smin = 0xFFFFFFFFu;
        o->staging_size = rem < STAGING_CAP ? rem : STAGING_CAP;
        for (i = 0; i < o->geo.nruns; i++) {
            if (o->geo.runs[i].size < smin) {
                smin = o->geo.runs[i].size;
            }
        }
        /* whole small sectors per step when they fit */
        if (smin <= o->staging_size) {
            o->staging_size -= o->staging_size % smin;
        }
    }
    /* the default scratch address: the first sector boundary after the slot */
    after_slot = sector_ceil(&o->geo, o->source_addr + (maxlen ? maxlen : 1u));
    if (o->layout == OTAUP_LAYOUT_INPLACE && o->scratch_addr == 0 && o->scratch_size != 0 &&
        (o->geo.base > 0 || o->source_addr < o->scratch_size)) {
        /* a size alone: address 0 is not on the flash, or would put the
         * scratch area over the slot; the default address (after the slot)
         * is meant, as for an address alone the default size */
        o->scratch_addr = after_slot;
    }
    if (o->layout == OTAUP_LAYOUT_INPLACE && o->scratch_size == 0) {
        /* default scratch: whole sectors from the given address, or after
         * the slot, at least the staging size */
        uint32_t a = o->scratch_addr != 0 ? o->scratch_addr : after_slot;
        uint32_t e = a;
        while ((uint64_t)e - a < o->staging_size) {
            uint32_t start, size;
            if (otaup_geometry_sector_at(&o->geo, e, &start, &size) < 0) {
                break;
            }
            e = start + size;
        }
        if ((uint64_t)e - a >= o->staging_size && o->staging_size > 0) {
            o->scratch_addr = a;
            o->scratch_size = e - a;
        }
    }
    if (o->layout == OTAUP_LAYOUT_INPLACE && o->scratch_size > 0 && o->staging_size > o->scratch_size) {
        o->staging_size = o->scratch_size; /* the executor stages a window in scratch */
    }
    o->staging_size -= o->staging_size % o->geo.write_size;
    if (o->staging_size > OTAUP_DELTA_STAGING_MAX) {
        o->staging_size = OTAUP_DELTA_STAGING_MAX - OTAUP_DELTA_STAGING_MAX % o->geo.write_size;
    }
    if (o->staging_size < o->geo.write_size || o->staging_size < OTAUP_DELTA_STAGING_MIN) {
        return OTAUP_E_LIMIT;
    }
    if (o->layout == OTAUP_LAYOUT_INPLACE) {
        /* a sector larger than the staging buffer is written by several
         * steps: the scratch area must hold it (the default scratch grows
         * to the sectors it needs, a given one is refused) */
        uint32_t part, big, span;
        sector_parts(&o->geo, o->target_addr, new_len, o->staging_size, &part, &big);
        if (big > 0) {
            if (in->scratch_size == 0) {
                uint32_t a = o->scratch_addr != 0 ? o->scratch_addr : after_slot;
                span = sectors_span(&o->geo, a, big);
                if (span > o->scratch_size) {
                    o->scratch_addr = a;
                    o->scratch_size = span;
                }
            }
            span = o->scratch_size != 0 ? sectors_span(&o->geo, o->scratch_addr, big) : 0;
            if (span == 0 || span > o->scratch_size) {
                /* images that do not fit the flash leave no room for a
                 * scratch area either: say what is wrong first */
                uint64_t fend = (uint64_t)o->geo.base + otaup_geometry_size(&o->geo);
                return (uint64_t)o->source_addr + old_len > fend || (uint64_t)o->target_addr + new_len > fend
                           ? OTAUP_E_GEOMETRY
                           : OTAUP_E_SCRATCH;
            }
        }
    }
    if (o->layout == OTAUP_LAYOUT_AB) {
        /* A target sector that several steps share must be rebuilt through
         * scratch after a power cut in a later step: with a scratch area
         * that holds the largest such sector, steps share it as in place
         * (and the delta names the scratch area, only then); without one
         * the staging buffer must hold the part of every target sector NEW
         * occupies. Make room by narrowing the inflate window if neither
         * was given, else refuse. */
        uint32_t part, big, need, span;
        sector_parts(&o->geo, o->target_addr, new_len, o->staging_size, &part, &big);
        need = round_up(part, o->geo.write_size);
        span = o->scratch_size != 0 && big > 0 ? sectors_span(&o->geo, o->scratch_addr, big) : 0;
        if (need <= o->staging_size || span == 0 || span > o->scratch_size) {
            o->scratch_addr = 0; /* not needed, or too small: the delta names none */
            o->scratch_size = 0;
        }
        if (need > o->staging_size && o->scratch_size == 0) {
            if (in->staging_size != 0 || need > OTAUP_DELTA_STAGING_MAX) {
                return OTAUP_E_LIMIT;
            }
            while (in->window_bits == 0 && o->window_bits > 9 &&
                   (uint64_t)o->ram < fixed + ((uint64_t)1 << o->window_bits) + need) {
                o->window_bits--;
            }
            if ((uint64_t)o->ram < fixed + ((uint64_t)1 << o->window_bits) + need) {
                return OTAUP_E_LIMIT;
            }
            o->staging_size = need;
        }
    }
    return 0;
}

/* ---- planning context ---------------------------------------------------------- */

typedef struct sec {
    uint32_t addr, size;
    uint8_t changed;
    int32_t eraser; /* window that erases it, -1 */
} sec;

typedef struct ctx {
    const uint8_t *old;
    uint32_t old_len;
    const uint8_t *nw;
    uint32_t new_len;
    int from_sig;
    const otaup_sig *sig;
    otaup_delta_options o;
    dl_covers cov;
    sec *secs;
    uint32_t nsecs;
    uint64_t span_end;     /* end of the target sectors that hold NEW (2^32 at the top) */
    dl_win *wins;
    uint32_t nwins;
    otaup_plan work;       /* scratch plan: ops/data of every window encoding */
    size_t work_cap;       /* bytes allocated at work.data */
    uint8_t *tmp;          /* window-sized scratch for diff bytes */
    dl_buf *lost;          /* NEW bytes that lost their source to cycle breaking */
} ctx;

static size_t cover_at(const dl_covers *cv, uint32_t npos);

/* Target sectors covering [target_addr, target_addr + new_len). */
static int layout_sectors(ctx *c)
{
    /* 64-bit ends: the last sector may end at 2^32 (a flash up to the top) */
    uint64_t a = c->o.target_addr, end = (uint64_t)c->o.target_addr + c->new_len;
    size_t cap = 64;
    c->secs = malloc(cap * sizeof *c->secs);
    if (c->secs == NULL) {
        return OTAUP_E_NOMEM;
    }
    while (a < end) {
        uint32_t start, size;
        if (a > 0xFFFFFFFFu || otaup_geometry_sector_at(&c->o.geo, (uint32_t)a, &start, &size) < 0) {
            return OTAUP_E_GEOMETRY;
        }
        if (c->nsecs == cap) {
            sec *v = realloc(c->secs, cap * 2 * sizeof *v);
            if (v == NULL) {
                return OTAUP_E_NOMEM;
            }
            c->secs = v;
            cap *= 2;
        }
        c->secs[c->nsecs].addr = start;
        c->secs[c->nsecs].size = size;
        c->secs[c->nsecs].eraser = -1;
        c->secs[c->nsecs].changed = 1;
        if (c->o.layout == OTAUP_LAYOUT_INPLACE && !c->from_sig) {
            uint32_t off = start - c->o.target_addr;
            uint32_t n = c->new_len - off < size ? c->new_len - off : size;
            if ((uint64_t)off + n <= c->old_len && memcmp(c->old + off, c->nw + off, n) == 0) {
                c->secs[c->nsecs].changed = 0;
            }
        } else if (c->o.layout == OTAUP_LAYOUT_INPLACE && c->from_sig) {
            /* from a signature: unchanged when identity covers (same block,
             * same place, equal hashes) hold the whole sector */
            uint32_t off = start - c->o.target_addr, p = off;
            uint32_t n = c->new_len - off < size ? c->new_len - off : size;
            size_t ci;
            for (ci = cover_at(&c->cov, off); ci < c->cov.n && p < off + n; ci++) {
                const dl_cover *cv = &c->cov.v[ci];
                if (cv->npos > p || cv->opos != cv->npos) {
                    break;
                }
                p = cv->npos + cv->len;
            }
            if (p >= off + n && (uint64_t)off + n <= c->old_len) {
                c->secs[c->nsecs].changed = 0;
            }
        }
        c->nsecs++;
        a = (uint64_t)start + size;
    }
    c->span_end = a;
    return 0;
}

static int push_win(ctx *c, const dl_win *w)
{
    if ((c->nwins & (c->nwins - 1u)) == 0) {
        size_t nc = c->nwins ? (size_t)c->nwins * 2u : 16u;
        dl_win *v = realloc(c->wins, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        c->wins = v;
    }
    c->wins[c->nwins++] = *w;
    return 0;
}

/* Cut the changed sectors into staging windows. */
static int layout_windows(ctx *c)
{
    uint32_t i = 0, st = c->o.staging_size;
    uint64_t img_end = (uint64_t)c->o.target_addr + round_up(c->new_len, c->o.geo.write_size);
    int rc;
    while (i < c->nsecs) {
        dl_win w;
        sec *s = &c->secs[i];
        if (!s->changed) {
            i++;
            continue;
        }
        memset(&w, 0, sizeof w);
        if (s->size > st) {
            /* a big sector: several windows, the first erases */
            uint64_t off, end = (uint64_t)s->addr + s->size < img_end ? (uint64_t)s->addr + s->size : img_end;
            int32_t first = (int32_t)c->nwins;
            for (off = s->addr; off < end; off += st) {
                memset(&w, 0, sizeof w);
                w.addr = (uint32_t)off;
                w.len = (uint32_t)(end - off < st ? end - off : st);
                w.sec_first = i;
                w.sec_end = i + 1;
                w.chain_first = first;
                w.erases = off == s->addr;
                if (w.erases) {
                    w.erase_addr = s->addr;
                    w.erase_len = s->size;
                }
                if ((rc = push_win(c, &w)) < 0) {
                    return rc;
                }
            }
            s->eraser = first;
            i++;
            continue;
        }
        /* consecutive changed small sectors while they fit */
        w.addr = s->addr;
        w.sec_first = i;
        w.chain_first = (int32_t)c->nwins;
        w.erases = 1;
        w.erase_addr = s->addr;
        {
            uint32_t total = 0;
            while (i < c->nsecs && c->secs[i].changed && c->secs[i].size <= st &&
                   total + c->secs[i].size <= st) {
                total += c->secs[i].size;
                c->secs[i].eraser = (int32_t)c->nwins;
                i++;
            }
            w.sec_end = i;
            w.erase_len = total;
            w.len = (uint32_t)(((uint64_t)w.addr + total < img_end ? (uint64_t)w.addr + total : img_end) - w.addr);
            if (w.len == 0) {
                w.len = c->o.geo.write_size; /* cannot happen: sectors hold NEW bytes */
            }
        }
        if ((rc = push_win(c, &w)) < 0) {
            return rc;
        }
    }
    return 0;
}

/* ---- per-window record selection ---------------------------------------------- */

typedef struct seg {
    uint32_t npos, len;
    int64_t opos; /* -1: literal */
} seg;

typedef struct segv {
    seg *v;
    size_t n, cap;
} segv;

static int seg_push(segv *s, uint32_t npos, uint32_t len, int64_t opos)
{
    if (len == 0) {
        return 0;
    }
    if (s->n > 0) {
        seg *l = &s->v[s->n - 1];
        if (l->npos + l->len == npos &&
            ((l->opos < 0 && opos < 0) || (l->opos >= 0 && opos >= 0 && l->opos + l->len == opos))) {
            l->len += len;
            return 0;
        }
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        seg *v = realloc(s->v, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        s->v = v;
        s->cap = nc;
    }
    s->v[s->n].npos = npos;
    s->v[s->n].len = len;
    s->v[s->n].opos = opos;
    s->n++;
    return 0;
}

/* First cover that ends after npos. */
static size_t cover_at(const dl_covers *cv, uint32_t npos)
{
    size_t lo = 0, hi = cv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cv->v[mid].npos + cv->v[mid].len <= npos) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Is the old byte range [o, o+n) readable for this window? (forbidden list sorted) */
static uint32_t allowed_prefix(const dl_forbid *fb, uint64_t o, uint32_t n, int *allowed)
{
    /* returns the length of the prefix that has one status, and that status */
    size_t i;
    uint64_t end = o + n;
    for (i = 0; i < fb->n; i++) {
        uint64_t a = fb->v[i].a, b = fb->v[i].b;
        if (b <= o) {
            continue;
        }
        if (a <= o) {
            *allowed = 0;
            return (uint32_t)((b < end ? b : end) - o);
        }
        if (a < end) {
            *allowed = 1;
            return (uint32_t)(a - o);
        }
        break;
    }
    *allowed = 1;
    return n;
}

static int add_op(ctx *c, uint8_t type, uint32_t addr, uint32_t len, uint32_t src, uint8_t value,
                  const uint8_t *data)
{
    otaup_plan_op op;
    memset(&op, 0, sizeof op);
    op.type = type;
    op.addr = addr;
    op.len = len;
    op.src = src;
    op.value = value;
    op.enc = OTAUP_ENC_DEFERRED;
    if (data != NULL) {
        if (c->work.data_len + len > c->work_cap || c->work.data == NULL) {
            /* room for the whole image once more: re-encodings and fallbacks rarely need more */
            size_t nc = c->work_cap + c->new_len + len + 65536u;
            uint8_t *v = c->work.data == NULL ? dl_malloc_big(nc) : realloc(c->work.data, nc);
            if (v == NULL) {
                return OTAUP_E_NOMEM;
            }
            c->work.data = v;
            c->work_cap = nc;
        }
        if (c->work.data_len + len > 0xFFFFFFFFu) {
            return OTAUP_E_RANGE;
        }
        memcpy(c->work.data + c->work.data_len, data, len);
        op.data_off = (uint32_t)c->work.data_len;
        c->work.data_len += len;
    }
    return dl_plan_add_op(&c->work, &op);
}

/* Emit a literal run new[npos .. npos+len): gaps for erased runs, FILL for constant runs, WRITE. */
static int emit_literal(ctx *c, uint32_t npos, uint32_t len)
{
    const uint8_t *p = c->nw + npos;
    uint32_t i = 0, lit_start = 0;
    uint32_t base = c->o.target_addr;
    int rc;
    while (i < len) {
        uint32_t j = i + 1;
        while (j < len && p[j] == p[i]) {
            j++;
        }
        if (j - i >= FILL_MIN || (p[i] == c->o.geo.erased && j - i >= ERASED_MIN)) {
            if (i > lit_start && (rc = add_op(c, OTAUP_REC_WRITE, base + npos + lit_start, i - lit_start, 0, 0,
                                              p + lit_start)) < 0) {
                return rc;
            }
            if (p[i] != c->o.geo.erased &&
                (rc = add_op(c, OTAUP_REC_FILL, base + npos + i, j - i, 0, p[i], NULL)) < 0) {
                return rc;
            }
            lit_start = j;
        }
        i = j;
    }
    if (len > lit_start) {
        return add_op(c, OTAUP_REC_WRITE, base + npos + lit_start, len - lit_start, 0, 0, p + lit_start);
    }
    return 0;
}

/* Emit a cover piece: new[npos..+len) against old[opos..+len): one DIFF (its
 * sparse encoding makes equal runs cheap), or a COPY when every byte is equal. */
static int emit_match(ctx *c, uint32_t npos, uint32_t len, uint32_t opos)
{
    const uint8_t *n = c->nw + npos, *o;
    uint32_t base = c->o.target_addr, sbase = c->o.source_addr, k;
    if (c->from_sig || memcmp(n, c->old + opos, len) == 0) {
        return add_op(c, OTAUP_REC_COPY, base + npos, len, sbase + opos, 0, NULL);
    }
    o = c->old + opos;
    {
        uint8_t *t = c->tmp; /* a local: the stores cannot change it, and the loop vectorises */
        for (k = 0; k < len; k++) {
            t[k] = (uint8_t)(n[k] - o[k]);
        }
    }
    return add_op(c, OTAUP_REC_DIFF, base + npos, len, sbase + opos, 0, c->tmp);
}

/* Estimated patch cost (bits) of what ops[first..] encode, for the per-step fallback. */
static uint64_t est_cost(const ctx *c, uint32_t first)
{
    uint64_t bits = 0;
    uint32_t i;
    for (i = first; i < c->work.nops; i++) {
        const otaup_plan_op *op = &c->work.ops[i];
        bits += 40; /* record header and fields */
        if (op->type == OTAUP_REC_WRITE) {
            bits += (uint64_t)op->len * 6u;
        } else if (op->type == OTAUP_REC_DIFF) {
            uint32_t k, nz = 0;
            for (k = 0; k < op->len; k++) {
                nz += c->work.data[op->data_off + k] != 0;
            }
            bits += (uint64_t)nz * 6u + op->len / 16u;
        }
    }
    return bits;
}

/* Compact records carry their bytes inline: no deferred records. */
static void limit_deferred(ctx *c, const dl_win *w)
{
    uint32_t k;
    for (k = w->first_op; k < w->first_op + w->nops; k++) {
        otaup_plan_op *op = &c->work.ops[k];
        op->enc = op->type == OTAUP_REC_WRITE || op->type == OTAUP_REC_DIFF ? OTAUP_ENC_INLINE : 0;
    }
}

/* Encode window w (records go to c->work; w->first_op/nops set). */
/* Length of the prefix of [o, o+n) that is inside the sorted ranges `in` (*inside = 1) or outside (0). */
static uint32_t inside_prefix(const dl_forbid *in, uint64_t o, uint32_t n, int *inside)
{
    size_t i;
    uint64_t end = o + n;
    for (i = 0; i < in->n; i++) {
        if (in->v[i].b <= o) {
            continue;
        }
        if (in->v[i].a <= o) {
            *inside = 1;
            return (uint32_t)((in->v[i].b < end ? in->v[i].b : end) - o);
        }
        *inside = 0;
        return (uint32_t)((in->v[i].a < end ? in->v[i].a : end) - o);
    }
    *inside = 0;
    return n;
}

/*
 * Encode window w (records go to c->work; w->first_op/nops set). A
 * re-encoding after ordering (fb != NULL) may not read the ranges fb
 * forbids, and reads nothing its first encoding did not read (`reads`,
 * the old-image ranges that encoding read): the order was proven for
 * those reads only.
 */
static int encode_window_in(ctx *c, dl_win *w, const dl_forbid *fb, const dl_forbid *reads)
{
    segv sv = { 0 };
    uint32_t wstart = w->addr - c->o.target_addr;
    uint32_t wend = wstart + w->len < c->new_len ? wstart + w->len : c->new_len;
    uint32_t p = wstart, i;
    size_t ci;
    int rc = 0;
    w->first_op = c->work.nops;
    w->cost_bytes = 0;
    if (wend <= wstart) {
        w->nops = 0;
        return 0;
    }
    /* segments: cover pieces (restricted to allowed sources) and literal gaps */
    for (ci = cover_at(&c->cov, wstart); ci < c->cov.n && c->cov.v[ci].npos < wend && rc == 0; ci++) {
        const dl_cover *cv = &c->cov.v[ci];
        uint32_t a = cv->npos > wstart ? cv->npos : wstart;
        uint32_t b = cv->npos + cv->len < wend ? cv->npos + cv->len : wend;
        if (a > p) {
            rc = seg_push(&sv, p, a - p, -1);
        }
        while (a < b && rc == 0) {
            int ok = 1;
            uint64_t o = (uint64_t)cv->opos + (a - cv->npos);
            uint32_t n = fb != NULL ? allowed_prefix(fb, o, b - a, &ok) : b - a;
            if (!ok) {
                w->cost_bytes += n;
                if (c->lost != NULL) {
                    dl_buf_put(c->lost, c->nw + a, n); /* for the cost estimate */
                }
            } else if (reads != NULL) {
                n = inside_prefix(reads, o, n, &ok); /* read before: allowed */
            }
            rc = seg_push(&sv, a, n, ok ? (int64_t)o : -1);
            a += n;
        }
        p = b;
    }
    if (rc == 0 && wend > p) {
        rc = seg_push(&sv, p, wend - p, -1);
    }
    /* tidy: pieces of one alignment merge */
    if (rc == 0 && !c->from_sig) {
        size_t r, wi = 0;
        for (r = 0; r < sv.n; r++) {
            seg *s = &sv.v[r];
            if (wi > 0) {
                seg *x = &sv.v[wi - 1];
                if (x->opos >= 0 && s->opos >= 0 && x->opos + x->len == s->opos) {
                    x->len += s->len;
                    continue;
                }
            }
            sv.v[wi++] = *s;
        }
        sv.n = wi;
    }
    /* a cover piece must pay for its record: otherwise its bytes are literal */
    for (i = 0; rc == 0 && i < sv.n && !c->from_sig; i++) {
        seg *s = &sv.v[i];
        if (s->opos >= 0) {
            uint32_t k, nz = 0;
            uint64_t as_match, as_lit;
            int lit_before = i > 0 && sv.v[i - 1].opos < 0, lit_after = i + 1 < sv.n && sv.v[i + 1].opos < 0;
            if (s->len < MATCH_MIN) {
                s->opos = -1;
                continue;
            }
            if (s->len > 4096u) {
                continue;
            }
            for (k = 0; k < s->len; k++) {
                nz += c->nw[s->npos + k] != c->old[s->opos + k];
            }
            as_match = COST_RECORD + (uint64_t)nz * COST_NONZERO + (uint64_t)(s->len - nz) * COST_ZERO / 16u;
            as_lit = (uint64_t)s->len * COST_LITERAL;
            if (lit_before && lit_after) {
                as_match += COST_RECORD; /* it splits a literal run in two records */
            } else if (!lit_before && !lit_after) {
                as_lit += COST_RECORD; /* as literal it needs a record of its own */
            }
            if (as_lit < as_match) {
                s->opos = -1;
            }
        }
    }
    for (i = 0; rc == 0 && i < sv.n; i++) {
        seg *s = &sv.v[i];
        /* merge adjacent literals created above */
        if (s->opos < 0) {
            uint32_t len = s->len;
            while (i + 1 < sv.n && sv.v[i + 1].opos < 0) {
                len += sv.v[i + 1].len;
                i++;
            }
            rc = emit_literal(c, s->npos, len);
        } else {
            rc = emit_match(c, s->npos, s->len, (uint32_t)s->opos);
        }
    }
    free(sv.v);
    if (rc < 0) {
        return rc;
    }
    /* per-step fallback: never more than the literal window */
    if (!c->from_sig && c->work.nops > w->first_op + 1u) {
        uint64_t cost = est_cost(c, w->first_op);
        if (cost > (uint64_t)(wend - wstart) * 6u + 40u) {
            c->work.nops = w->first_op;
            rc = emit_literal(c, wstart, wend - wstart);
            if (rc < 0) {
                return rc;
            }
        }
    }
    w->nops = c->work.nops - w->first_op;
    limit_deferred(c, w);
    return 0;
}

static int cmp_range64(const void *a, const void *b)
{
    const dl_range *x = a, *y = b;
    return x->a < y->a ? -1 : x->a > y->a;
}

/* Encode window w; with fb, re-encode it restricted to what its current encoding reads. */
static int encode_window(ctx *c, dl_win *w, const dl_forbid *fb)
{
    dl_forbid reads = { 0 };
    uint32_t k;
    size_t r, wi = 0;
    int rc;
    if (fb == NULL) {
        return encode_window_in(c, w, NULL, NULL);
    }
    reads.v = malloc(((size_t)w->nops + 1u) * sizeof *reads.v);
    if (reads.v == NULL) {
        return OTAUP_E_NOMEM;
    }
    for (k = w->first_op; k < w->first_op + w->nops; k++) {
        const otaup_plan_op *op = &c->work.ops[k];
        if (op->type == OTAUP_REC_COPY || op->type == OTAUP_REC_DIFF) {
            reads.v[reads.n].a = (uint64_t)op->src - c->o.source_addr;
            reads.v[reads.n].b = reads.v[reads.n].a + op->len;
            reads.n++;
        }
    }
    if (reads.n > 1) {
        qsort(reads.v, reads.n, sizeof *reads.v, cmp_range64);
    }
    for (r = 0; r < reads.n; r++) {
        if (wi > 0 && reads.v[r].a <= reads.v[wi - 1].b) {
            if (reads.v[r].b > reads.v[wi - 1].b) {
                reads.v[wi - 1].b = reads.v[r].b;
            }
        } else {
            reads.v[wi++] = reads.v[r];
        }
    }
    reads.n = wi;
    rc = encode_window_in(c, w, fb, &reads);
    free(reads.v);
    return rc;
}

/* ---- building the plan -------------------------------------------------------- */

static uint64_t window_hash(const ctx *c, const dl_win *w)
{
    uint32_t off = w->addr - c->o.target_addr;
    uint32_t n = c->new_len > off ? c->new_len - off : 0;
    if (n >= w->len) {
        return XXH3_64bits(c->nw + off, w->len);
    }
    memcpy(c->tmp, c->nw + off, n);
    memset(c->tmp + n, c->o.geo.erased, w->len - n);
    return XXH3_64bits(c->tmp, w->len);
}

static int assemble(ctx *c, const uint32_t *order, otaup_plan *p)
{
    uint32_t k, i;
    int rc;
    for (k = 0; k < c->nwins; k++) {
        dl_win *w = &c->wins[order[k]];
        otaup_plan_step st;
        memset(&st, 0, sizeof st);
        st.index = k;
        st.addr = w->addr;
        st.len = w->len;
        st.first_op = p->nops;
        st.has_hash = c->o.no_step_hash ? 0 : 1;
        st.hash = window_hash(c, w);
        st.self_read = w->self_read;
        if (w->erases) {
            otaup_plan_op op;
            memset(&op, 0, sizeof op);
            op.type = OTAUP_REC_ERASE;
            op.addr = w->erase_addr;
            op.len = w->erase_len;
            if ((rc = dl_plan_add_op(p, &op)) < 0) {
                return rc;
            }
        }
        for (i = 0; i < w->nops; i++) {
            /* the bytes stay where the work plan put them (its buffer moves below) */
            if ((rc = dl_plan_add_op(p, &c->work.ops[w->first_op + i])) < 0) {
                return rc;
            }
        }
        st.nops = p->nops - st.first_op;
        if ((rc = dl_plan_add_step(p, &st)) < 0) {
            return rc;
        }
    }
    free(p->data);
    p->data = c->work.data;
    p->data_len = c->work.data_len;
    c->work.data = NULL;
    c->work.data_len = 0;
    c->work_cap = 0;
    return 0;
}

static void fill_stats(const ctx *c, otaup_plan *p)
{
    otaup_delta_stats *s = &p->stats;
    uint32_t i;
    s->steps = p->nsteps;
    s->sectors_total = c->nsecs;
    for (i = 0; i < c->nsecs; i++) {
        if (c->secs[i].eraser >= 0) {
            s->sectors_erased++;
        } else {
            s->sectors_unchanged++;
        }
    }
    for (i = 0; i < p->nsteps; i++) {
        s->self_read_steps += p->steps[i].self_read;
    }
    for (i = 0; i < p->nops; i++) {
        const otaup_plan_op *op = &p->ops[i];
        switch (op->type) {
        case OTAUP_REC_COPY: s->n_copy++; s->copy_bytes += op->len; break;
        case OTAUP_REC_DIFF: s->n_diff++; s->diff_bytes += op->len; break;
        case OTAUP_REC_WRITE: s->n_write++; s->write_bytes += op->len; break;
        case OTAUP_REC_FILL: s->n_fill++; s->fill_bytes += op->len; break;
        case OTAUP_REC_ERASE: s->n_erase++; break;
        default: break;
        }
    }
    {
        uint64_t written = s->copy_bytes + s->diff_bytes + s->write_bytes + s->fill_bytes;
        s->erased_bytes = c->new_len > written ? c->new_len - written : 0;
        /* unchanged sectors hold NEW already */
        for (i = 0; i < c->nsecs; i++) {
            if (c->secs[i].eraser < 0) {
                uint32_t off = c->secs[i].addr - c->o.target_addr;
                uint32_t n = c->new_len - off < c->secs[i].size ? c->new_len - off : c->secs[i].size;
                s->erased_bytes = s->erased_bytes > n ? s->erased_bytes - n : 0;
            }
        }
    }
    s->ram_needed = otaup_delta_ram_needed(p->hdr.staging_size, p->hdr.window_bits, p->hdr.max_ops);
}

static void header_from(const ctx *c, otaup_plan *p)
{
    otaup_delta_header *h = &p->hdr;
    memset(h, 0, sizeof *h);
    h->format_version = OTAUP_DELTA_FORMAT_VERSION;
    h->header_size = (uint16_t)OTAUP_DELTA_HEADER_BYTES(c->o.geo.nruns);
    h->flags = (c->from_sig ? OTAUP_DELTA_F_FROM_SIG : 0u) | (c->o.no_step_hash ? 0u : OTAUP_DELTA_F_STEP_HASH);
    h->geo = c->o.geo;
    h->layout = c->o.layout;
    h->window_bits = c->o.window_bits;
    h->max_ops = 0; /* compact records only: nothing deferred */
    h->source_addr = c->o.source_addr;
    h->target_addr = c->o.target_addr;
    h->scratch_addr = c->o.scratch_addr; /* A/B: only when target sectors are shared by steps */
    h->scratch_size = c->o.scratch_size;
    h->staging_size = c->o.staging_size;
    h->step_count = c->nwins;
    h->source_size = c->old_len;
    h->target_size = c->new_len;
    otaup_hash128(c->nw, c->new_len, h->target_hash);
    if (c->from_sig) {
        memcpy(h->source_hash, c->sig->info.hash, 16);
    } else {
        otaup_hash128(c->old, c->old_len, h->source_hash);
    }
}

static void plan_clear(otaup_plan *p)
{
    free(p->steps);
    free(p->ops);
    free(p->data);
    memset(p, 0, sizeof *p);
}

void otaup_plan_free(otaup_plan *p)
{
    if (p != NULL) {
        plan_clear(p);
        free(p);
    }
}

void otaup_delta_free(otaup_delta *d)
{
    if (d != NULL) {
        plan_clear(&d->plan);
        dl_buf_free(&d->bytes);
        free(d);
    }
}

const uint8_t *otaup_delta_bytes(const otaup_delta *d, size_t *len)
{
    if (d == NULL) {
        return NULL;
    }
    if (len != NULL) {
        *len = d->bytes.len;
    }
    return d->bytes.p;
}

const otaup_plan *otaup_delta_plan(const otaup_delta *d)
{
    return d != NULL ? &d->plan : NULL;
}

static void ctx_free(ctx *c)
{
    dl_covers_free(&c->cov);
    free(c->secs);
    free(c->wins);
    plan_clear(&c->work);
    c->work_cap = 0;
    free(c->tmp);
}

/* Plan, order, assemble and write; `literal_only` gives the fallback plan. */
static int build(ctx *c, int literal_only, otaup_delta *d)
{
    uint32_t *order = NULL, k;
    int rc;
    dl_order_result ores;
    memset(&ores, 0, sizeof ores);
    plan_clear(&c->work);
    c->work_cap = 0;
    for (k = 0; k < c->nwins; k++) {
        c->wins[k].restricted = 0;
        c->wins[k].self_read = 0;
        if (literal_only) {
            c->wins[k].first_op = c->work.nops;
            rc = emit_literal(c, c->wins[k].addr - c->o.target_addr,
                              (c->wins[k].addr - c->o.target_addr + c->wins[k].len <= c->new_len
                                   ? c->wins[k].len
                                   : c->new_len - (c->wins[k].addr - c->o.target_addr)));
            c->wins[k].nops = c->work.nops - c->wins[k].first_op;
            c->wins[k].cost_bytes = 0;
            limit_deferred(c, &c->wins[k]);
        } else {
            rc = encode_window(c, &c->wins[k], NULL);
        }
        if (rc < 0) {
            return rc;
        }
        if (c->o.progress != NULL && (k & 63u) == 0) {
            c->o.progress("encode", k, c->nwins, c->o.payload);
        }
    }
    order = malloc(((size_t)c->nwins + 1u) * sizeof *order);
    if (order == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (c->o.layout == OTAUP_LAYOUT_INPLACE && c->nwins > 0) {
        dl_order_in oi;
        memset(&oi, 0, sizeof oi);
        oi.wins = c->wins;
        oi.nwins = c->nwins;
        oi.ops = c->work.ops;
        oi.geo = &c->o.geo;
        oi.source_addr = c->o.source_addr;
        oi.scratch = c->o.scratch_size >= c->o.staging_size;
        rc = dl_order(&oi, order, &ores);
        if (rc < 0) {
            free(order);
            return rc;
        }
        /* re-encode the windows that lost sources */
        dl_buf lost = { 0 };
        c->lost = &lost;
        for (k = 0; k < c->nwins; k++) {
            dl_win *w = &c->wins[k];
            if (ores.forbid[k].n > 0 && w->needs_reencode) {
                w->restricted = 1;
                rc = encode_window(c, w, &ores.forbid[k]);
                if (rc < 0) {
                    break;
                }
                d->plan.stats.cycle_cost_bytes += w->cost_bytes;
            }
        }
        c->lost = NULL;
        if (lost.len > 0 && !lost.oom) {
            /* what those bytes cost as literals, compressed */
            uLongf zlen = compressBound((uLong)lost.len);
            uint8_t *z = malloc(zlen);
            if (z != NULL && compress2(z, &zlen, lost.p, (uLong)lost.len, 6) == Z_OK) {
                d->plan.stats.cycle_cost_patch = (int64_t)zlen;
            }
            free(z);
        }
        dl_buf_free(&lost);
        d->plan.stats.cycle_edges = ores.removed_edges;
        dl_order_free(&ores, c->nwins);
        if (rc < 0) {
            free(order);
            return rc;
        }
        /* self reads after re-encoding */
        dl_mark_self_reads(c->wins, c->nwins, c->work.ops, &c->o.geo);
    } else {
        for (k = 0; k < c->nwins; k++) {
            order[k] = k;
        }
    }
    header_from(c, &d->plan);
    rc = assemble(c, order, &d->plan);
    free(order);
    if (rc < 0) {
        return rc;
    }
    fill_stats(c, &d->plan);
    return dl_write_container(&d->plan, c->o.restart_interval, c->o.level, &d->bytes);
}

int otaup_delta_create(const uint8_t *old, size_t old_len, const otaup_sig *sig,
                       const uint8_t *new_img, size_t new_len,
                       const otaup_delta_options *opt, otaup_delta **out)
{
    ctx c;
    otaup_delta *d = NULL;
    int rc;
    char err[160];
    if (out == NULL || opt == NULL || opt->version != OTAUP_DELTA_OPTIONS_VERSION ||
        (new_img == NULL && new_len > 0) || (old == NULL && sig == NULL) ||
        (old == NULL && old_len > 0) || old_len > 0xFFFFFFFFu || new_len > 0xFFFFFFFFu) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    memset(&c, 0, sizeof c);
    c.old = old;
    c.old_len = old != NULL ? (uint32_t)old_len : sig->info.size;
    c.nw = new_img;
    c.new_len = (uint32_t)new_len;
    c.from_sig = old == NULL;
    c.sig = sig;
    rc = resolve(opt, c.old_len, c.new_len, &c.o);
    if (rc < 0) {
        return rc;
    }
    if ((uint64_t)c.o.source_addr + c.old_len > (uint64_t)c.o.geo.base + otaup_geometry_size(&c.o.geo) ||
        (uint64_t)c.o.target_addr + c.new_len > (uint64_t)c.o.geo.base + otaup_geometry_size(&c.o.geo) ||
        c.o.source_addr < c.o.geo.base || c.o.target_addr < c.o.geo.base ||
        !otaup_geometry_is_sector_aligned(&c.o.geo, c.o.target_addr, 0)) {
        return OTAUP_E_GEOMETRY;
    }
    /* ranges that cannot work, refused before planning (the delta's own
     * header check would refuse them at the end, less clearly) */
    if (c.o.layout == OTAUP_LAYOUT_AB && c.new_len > 0 && c.old_len > 0 &&
        (uint64_t)c.o.target_addr < (uint64_t)c.o.source_addr + c.old_len &&
        (uint64_t)c.o.source_addr < (uint64_t)c.o.target_addr + sectors_span(&c.o.geo, c.o.target_addr, c.new_len)) {
        /* A/B: the target's sectors (each erased whole) hold bytes of the
         * source: an unaligned source whose head shares the target's last
         * sector, or overlapping slots */
        return OTAUP_E_REGION;
    }
    if (c.o.layout == OTAUP_LAYOUT_INPLACE && c.o.scratch_addr != 0 && c.o.scratch_size == 0) {
        /* off the flash, or too near its end for the staging buffer */
        return otaup_geometry_sector_at(&c.o.geo, c.o.scratch_addr, NULL, NULL) < 0 ? OTAUP_E_REGION : OTAUP_E_SCRATCH;
    }
    if (c.o.layout == OTAUP_LAYOUT_INPLACE && c.o.scratch_size != 0) {
        uint32_t maxlen = c.old_len > c.new_len ? c.old_len : c.new_len;
        if (!otaup_geometry_is_sector_aligned(&c.o.geo, c.o.scratch_addr, c.o.scratch_size) ||
            (uint64_t)c.o.scratch_addr + c.o.scratch_size > (uint64_t)c.o.geo.base + otaup_geometry_size(&c.o.geo) ||
            ((uint64_t)c.o.scratch_addr < (uint64_t)c.o.source_addr + maxlen &&
             (uint64_t)c.o.source_addr < (uint64_t)c.o.scratch_addr + c.o.scratch_size)) {
            return OTAUP_E_REGION; /* scratch: not whole sectors, off the flash, or inside the slot */
        }
    }
    if (c.o.layout == OTAUP_LAYOUT_AB && c.o.scratch_size != 0) {
        /* the scratch area that rebuilds a target sector shared by steps:
         * whole sectors of the flash, apart from both slots */
        uint64_t sa = c.o.scratch_addr, se = sa + c.o.scratch_size;
        uint64_t te = (uint64_t)c.o.target_addr + sectors_span(&c.o.geo, c.o.target_addr, c.new_len);
        if (!otaup_geometry_is_sector_aligned(&c.o.geo, c.o.scratch_addr, c.o.scratch_size) ||
            se > (uint64_t)c.o.geo.base + otaup_geometry_size(&c.o.geo) ||
            (sa < (uint64_t)c.o.source_addr + c.old_len && c.o.source_addr < se) ||
            (sa < te && c.o.target_addr < se)) {
            return OTAUP_E_REGION;
        }
    }
    c.tmp = malloc(c.o.staging_size > 65536u ? c.o.staging_size : 65536u);
    d = calloc(1, sizeof *d);
    if (c.tmp == NULL || d == NULL) {
        rc = OTAUP_E_NOMEM;
        goto fail;
    }
    if (c.from_sig) {
        rc = dl_match_sig(sig, new_img, c.new_len, &c.cov);
    } else {
        dl_match_opts mo;
        mo.progress = c.o.progress;
        mo.payload = c.o.payload;
        rc = dl_match(old, c.old_len, new_img, c.new_len, &mo, &c.cov);
    }
    if (rc < 0) {
        goto fail;
    }
    if ((rc = layout_sectors(&c)) < 0 || (rc = layout_windows(&c)) < 0) {
        goto fail;
    }
    rc = build(&c, 0, d);
    if (rc < 0) {
        goto fail;
    }
    /* whole-delta fallback: compare with writing everything when it could matter */
    if (d->bytes.len > (size_t)c.new_len / 4u + 1024u) {
        otaup_delta *lit = calloc(1, sizeof *lit);
        if (lit == NULL) {
            rc = OTAUP_E_NOMEM;
            goto fail;
        }
        rc = build(&c, 1, lit);
        if (rc == 0 && lit->bytes.len < d->bytes.len) {
            otaup_delta_free(d);
            d = lit;
            d->plan.stats.fallback = 1;
        } else {
            otaup_delta_free(lit);
        }
        if (rc < 0) {
            goto fail;
        }
    }
    if (c.o.progress != NULL) {
        c.o.progress("verify", 0, 1, c.o.payload);
    }
    /* the proof: run the plan on the flash model (from a signature: on an
     * OLD made of the NEW blocks the signature says it holds) */
    {
        uint8_t *res = dl_malloc_big(c.new_len ? c.new_len : 1u);
        uint8_t *synth = NULL;
        const uint8_t *sold = old;
        if (res == NULL) {
            rc = OTAUP_E_NOMEM;
            goto fail;
        }
        if (c.from_sig) {
            size_t ci;
            synth = calloc(c.old_len ? c.old_len : 1u, 1);
            if (synth == NULL) {
                free(res);
                rc = OTAUP_E_NOMEM;
                goto fail;
            }
            for (ci = 0; ci < c.cov.n; ci++) {
                memcpy(synth + c.cov.v[ci].opos, new_img + c.cov.v[ci].npos, c.cov.v[ci].len);
            }
            sold = synth;
        }
        rc = otaup_plan_simulate(&d->plan, sold, c.old_len, res, c.new_len, NULL, err, sizeof err);
        free(synth);
            if (rc == 0 && memcmp(res, new_img, c.new_len) != 0) {
            rc = OTAUP_E_PLAN;
        }
        free(res);
        if (rc < 0) {
            rc = OTAUP_E_PLAN;
            goto fail;
        }
    }
    ctx_free(&c);
    *out = d;
    return 0;
fail:
    ctx_free(&c);
    otaup_delta_free(d);
    return rc;
}
