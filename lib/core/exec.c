/*
 * otaup — the executor: record stream -> staged steps -> flash.
 * C99, no heap, no OS. Model: docs/design.md; API: include/otaup/exec.h;
 * power-loss behaviour: docs/porting.md.
 */
#include <string.h>

#include <zlib.h>

#include "core/xxh3.h"
#include "otaup/error.h"
#include "otaup/exec.h"

#define RESERVED_LO 0x2Bu
#define RESERVED_HI 0x2Eu

/* sector actions of a step */
#define ACT_NONE 0u       /* nothing to do */
#define ACT_FILL 1u       /* program erased units that need data */
#define ACT_ERASE 2u      /* erase (then program the window part, if any) */
#define ACT_REBUILD 3u    /* build new content in scratch, erase, copy back */
#define ACT_FROMSCR 4u    /* new content already in scratch: erase, copy back */

/* ---- small helpers --------------------------------------------------------- */

/* Kept out of line where inlining would grow the deepest stack path. */
#if defined(__GNUC__) || defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* Ranges may end at 2^32 (b + blen == 0): compare offsets, not ends. */
OTAUP_RAMFUNC static int overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return alen != 0 && blen != 0 && (a >= b ? a - b < blen : b - a < alen);
}

/* The lower of two range ends, where 0 stands for 2^32 (a range that ends
 * at the top of the address space); a part [pa, pe) is empty when
 * pe - 1u < pa. */
#define END_MIN(x, y) ((uint32_t)((x) - 1u) < (uint32_t)((y) - 1u) ? (x) : (y))

OTAUP_RAMFUNC static int inside(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    return a >= b && alen <= blen && a - b <= blen - alen;
}

OTAUP_RAMFUNC static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

OTAUP_RAMFUNC static int all_erased(const uint8_t *p, uint32_t n, uint8_t e)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != e) {
            return 0;
        }
    }
    return 1;
}

OTAUP_RAMFUNC static int progress(otaup_exec *ex, uint32_t done, uint32_t total)
{
    if (ex->cfg.progress != NULL) {
        return ex->cfg.progress(ex->cfg.progress_ctx, done, total);
    }
    return 0;
}

/* ---- configuration ------------------------------------------------------- */

OTAUP_RAMFUNC size_t otaup_exec_work_size(uint32_t staging, uint32_t max_ops, unsigned wbits)
{
    uint64_t n;
    if (wbits != 0 && (wbits < 9 || wbits > 15)) {
        return 0;
    }
    n = (uint64_t)64u + ((staging + 7ull) & ~7ull) + (uint64_t)max_ops * OTAUP_EXEC_DEFERRED_ENTRY + 8u +
        OTAUP_INFLATE_ARENA(wbits);
    return n > (size_t)-1 ? 0 : (size_t)n;
}

OTAUP_RAMFUNC static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    otaup_exec *ex = opaque;
    size_t n = (size_t)items * size;
    uint8_t *p;
    if (size != 0 && n / size != items) {
        return Z_NULL;
    }
    n = (n + 7u) & ~(size_t)7u;
    if (n > ex->arena_size - ex->arena_used) {
        return Z_NULL;
    }
    p = ex->arena + ex->arena_used;
    ex->arena_used += n;
    return p;
}

OTAUP_RAMFUNC static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    (void)p; /* the arena is released as a whole */
}

OTAUP_RAMFUNC int otaup_exec_init(otaup_exec *ex, const otaup_exec_config *cfg)
{
    uintptr_t w;
    size_t need, used;
    uint32_t i;
    const otaup_journal *j;
    if (ex == NULL || cfg == NULL || cfg->flash == NULL || cfg->journal == NULL || cfg->work == NULL ||
        cfg->flash->read == NULL || cfg->flash->prog == NULL || cfg->flash->erase == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(ex, 0, sizeof *ex);
    if (otaup_geometry_check(&cfg->flash->geo) != 0 || cfg->flash->geo.write_size > OTAUP_CONFIG_IO_BUFFER) {
        return OTAUP_E_GEOMETRY;
    }
    if (cfg->layout != OTAUP_LAYOUT_INPLACE && cfg->layout != OTAUP_LAYOUT_AB) {
        return OTAUP_E_INVAL;
    }
    if (cfg->staging_size == 0 || cfg->staging_size % cfg->flash->geo.write_size != 0 ||
        cfg->staging_size < sizeof(otaup_xxh3)) {
        return OTAUP_E_STAGING;
    }
    need = otaup_exec_work_size(cfg->staging_size, cfg->max_ops, cfg->window_bits);
    if (need == 0) {
        return OTAUP_E_INVAL;
    }
    if (cfg->work_size < need) {
        return OTAUP_E_BUFFER;
    }
    j = cfg->journal;
    if (j->flash == NULL) {
        return OTAUP_E_JOURNAL;
    }
    if (cfg->scratch.len != 0 &&
        (!otaup_geometry_is_sector_aligned(&cfg->flash->geo, cfg->scratch.addr, cfg->scratch.len) ||
         cfg->scratch.len < cfg->staging_size || overlap(cfg->scratch.addr, cfg->scratch.len, j->addr, j->len))) {
        return OTAUP_E_SCRATCH;
    }
    for (i = 0; i < cfg->nwindows; i++) {
        const otaup_region *r = &cfg->windows[i];
        if ((r->len != 0 && r->len - 1u > 0xFFFFFFFFu - r->addr) || overlap(r->addr, r->len, j->addr, j->len) ||
            overlap(r->addr, r->len, cfg->scratch.addr, cfg->scratch.len)) {
            return OTAUP_E_REGION;
        }
    }
    ex->cfg = *cfg;
    /* carve the work area: staging (64-aligned), deferred table, arena */
    w = (uintptr_t)cfg->work;
    used = (size_t)((64u - (w & 63u)) & 63u);
    ex->staging = (uint8_t *)cfg->work + used;
    used += ((size_t)cfg->staging_size + 7u) & ~(size_t)7u;
    ex->deferred = (otaup_exec_deferred *)(void *)((uint8_t *)cfg->work + used);
    used += (size_t)cfg->max_ops * OTAUP_EXEC_DEFERRED_ENTRY;
    used += (size_t)((8u - ((w + used) & 7u)) & 7u); /* the arena's address, not its offset, 8-aligned */
    ex->arena = (uint8_t *)cfg->work + used;
    ex->arena_size = cfg->work_size - used;
    otaup_recparser_init(&ex->outer);
    otaup_recparser_init(&ex->inner);
    ex->jnext = j->st.session == OTAUP_JS_ACTIVE ? j->st.next_step : 0;
    return 0;
}

OTAUP_RAMFUNC int otaup_exec_check_limits(const otaup_exec *ex, uint32_t staging, uint32_t max_ops, unsigned wbits)
{
    if (ex == NULL) {
        return OTAUP_E_INVAL;
    }
    if (staging > ex->cfg.staging_size) {
        return OTAUP_E_STAGING;
    }
    if (max_ops > ex->cfg.max_ops) {
        return OTAUP_E_LIMIT;
    }
    if (wbits > ex->cfg.window_bits) {
        return OTAUP_E_UNSUPPORTED;
    }
    return 0;
}

/* ---- session ------------------------------------------------------------ */

/* The active session must be finished, not dropped: past the point of no
 * return of an in-place update (the old image is gone), or while a
 * user-data region is being restored (it holds neither the user's data
 * nor the backup: only finishing the restore gives them back). */
OTAUP_RAMFUNC static int must_finish(const otaup_exec *ex)
{
    const otaup_journal_state *st = &ex->cfg.journal->st;
    /* A/B past the COMMIT's switch record (a reset before the record
     * that ends the session): the new slot boots already */
    return st->session == OTAUP_JS_ACTIVE &&
           ((st->ponr && ex->cfg.layout == OTAUP_LAYOUT_INPLACE) || st->restore == OTAUP_JRESTORE_BUSY ||
            (ex->cfg.layout == OTAUP_LAYOUT_AB && st->boot_slot == st->target_slot));
}

OTAUP_RAMFUNC int otaup_exec_start(otaup_exec *ex, uint32_t session_id, uint64_t delta_id, uint8_t target_slot)
{
    const otaup_journal_state *st;
    int rc;
    if (ex == NULL) {
        return OTAUP_E_INVAL;
    }
    st = &ex->cfg.journal->st;
    if (st->session == OTAUP_JS_ACTIVE && st->delta_id == delta_id) {
        rc = 1;
    } else if (must_finish(ex)) {
        return OTAUP_E_SESSION; /* refused: the session going on, its open step included, stays as it was */
    } else if (st->session == OTAUP_JS_ENDED && st->delta_id == delta_id && st->result == 0 &&
               st->session_id == session_id) {
        rc = 2; /* this update is already complete */
    } else {
        rc = otaup_journal_begin(ex->cfg.journal, session_id, delta_id, ex->cfg.layout, target_slot);
        if (rc != 0) {
            return rc;
        }
    }
    /* the stream starts (again) from its beginning */
    ex->expected = 0;
    ex->in_step = 0;
    ex->verify_failed = 0;
    ex->need_reset = 0;
    ex->zend = 0;
    otaup_recparser_init(&ex->outer);
    otaup_recparser_init(&ex->inner);
    ex->started = rc != 2;
    ex->finished = rc == 2;
    if (rc != 2) {
        ex->jnext = rc == 1 ? st->next_step : 0u;
        ex->dirty_unknown = rc == 1; /* resumed: a step may have been cut half way */
    }
    return rc;
}

OTAUP_RAMFUNC void otaup_exec_set_step_count(otaup_exec *ex, uint32_t count)
{
    if (ex != NULL && ex->jnext >= count) {
        ex->dirty_unknown = 0; /* no step is left that could be half done */
    }
}

OTAUP_RAMFUNC uint32_t otaup_exec_next_step(const otaup_exec *ex)
{
    return ex != NULL ? ex->jnext : 0;
}

OTAUP_RAMFUNC int otaup_exec_replaying(const otaup_exec *ex)
{
    return ex != NULL && ex->in_step && (ex->replay || ex->from_scratch);
}

const otaup_exec_stats *otaup_exec_get_stats(const otaup_exec *ex)
{
    return ex != NULL ? &ex->stats : NULL;
}

/* ---- range checks ------------------------------------------------------- */

/* 1 if [addr, addr+len) touches the journal or the scratch area. */
OTAUP_RAMFUNC static int reserved(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    const otaup_journal *j = ex->cfg.journal;
    return overlap(addr, len, j->addr, j->len) || overlap(addr, len, ex->cfg.scratch.addr, ex->cfg.scratch.len);
}

OTAUP_RAMFUNC static int check_protected(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    uint32_t i;
    if (reserved(ex, addr, len)) {
        return OTAUP_E_PROTECTED;
    }
    for (i = 0; i < ex->cfg.nprotect; i++) {
        if (overlap(addr, len, ex->cfg.protect[i].addr, ex->cfg.protect[i].len)) {
            return OTAUP_E_PROTECTED;
        }
    }
    return 0;
}

/* A range the update may change: not protected, inside one window. */
OTAUP_RAMFUNC static int check_target(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    uint32_t i;
    int rc;
    if (len == 0 || len - 1u > 0xFFFFFFFFu - addr) {
        return OTAUP_E_RANGE; /* empty, or past 2^32 (ending at 2^32 is fine) */
    }
    rc = check_protected(ex, addr, len);
    if (rc != 0) {
        return rc;
    }
    for (i = 0; i < ex->cfg.nwindows; i++) {
        if (inside(addr, len, ex->cfg.windows[i].addr, ex->cfg.windows[i].len)) {
            return 0;
        }
    }
    return OTAUP_E_WINDOW;
}

/* A range the update may read: in the device, not journal or scratch
 * (their content depends on the device's history, not on the update). */
OTAUP_RAMFUNC static int check_source(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    const otaup_geometry *g = &ex->cfg.flash->geo;
    if (len == 0) {
        return 0;
    }
    if (!inside(addr, len, g->base, otaup_geometry_size(g))) {
        return OTAUP_E_RANGE;
    }
    if (reserved(ex, addr, len)) {
        return OTAUP_E_PROTECTED;
    }
    return 0;
}

/* Inside the current step's window. */
OTAUP_RAMFUNC static int check_in_window(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    if (len == 0 || !inside(addr, len, ex->s_addr, ex->s_len)) {
        return OTAUP_E_STAGING;
    }
    return 0;
}

/* ---- flash primitives ------------------------------------------------- */

OTAUP_RAMFUNC static int fread_(otaup_exec *ex, uint32_t addr, void *buf, uint32_t len)
{
    int rc = ex->cfg.flash->read(ex->cfg.flash, addr, buf, len);
    return rc == 0 ? 0 : rc;
}

/* Read the next piece of [addr + off, addr + len) that fits the bounce
 * buffer into ex->io; *c gets its length. */
OTAUP_RAMFUNC static int io_read(otaup_exec *ex, uint32_t addr, uint32_t off, uint32_t len, uint32_t *c)
{
    *c = len - off > sizeof ex->io ? (uint32_t)sizeof ex->io : len - off;
    return fread_(ex, addr + off, ex->io, *c);
}

/* Erase one or more whole sectors, one sector per call, servicing the
 * link between them. */
OTAUP_RAMFUNC static int erase_range(otaup_exec *ex, uint32_t addr, uint32_t len)
{
    uint32_t pos = addr, start, size;
    int rc;
    while (pos - addr < len) {
        if (otaup_geometry_sector_at(&ex->cfg.flash->geo, pos, &start, &size) < 0) {
            return OTAUP_E_RANGE;
        }
        rc = ex->cfg.flash->erase(ex->cfg.flash, start, size);
        if (rc != 0) {
            return rc;
        }
        ex->stats.sectors_erased++;
        pos = start + size;
        rc = progress(ex, pos - addr, len);
        if (rc != 0) {
            return rc;
        }
        if (pos == 0) {
            break;
        }
    }
    return 0;
}

/* Read the piece of sector [s, s+z) at `off` into ex->io with the staged
 * window laid over it (*c gets its length). */
OTAUP_RAMFUNC static int image_read(otaup_exec *ex, uint32_t s, uint32_t off, uint32_t z, uint32_t *c)
{
    uint32_t a = s + off;
    int rc = io_read(ex, s, off, z, c);
    if (rc == 0 && overlap(a, *c, ex->s_addr, ex->s_len)) {
        uint32_t lo = a > ex->s_addr ? a : ex->s_addr;
        uint32_t hi = END_MIN(a + *c, ex->s_addr + ex->s_len);
        memcpy(ex->io + (lo - a), ex->staging + (lo - ex->s_addr), hi - lo);
    }
    return rc;
}

/* What scan() does with flash [addr, addr+len), read piece by piece. */
#define SCAN_ERASED 0 /* returns 1 if it reads erased, 0 if not */
#define SCAN_CMP 1    /* returns 0 if it holds ram[0..len), else OTAUP_E_VERIFY */
#define SCAN_CRC 2    /* *crc gets its CRC-32; returns 0 */
#define SCAN_IMAGE 3  /* the same, of the sector image (image_read: the staged window laid over) */

/* One pass over flash [addr, addr+len) as `mode` says; <0 on a read error. */
OTAUP_RAMFUNC static int scan(otaup_exec *ex, uint32_t addr, uint32_t len, int mode, const uint8_t *ram,
                              uint32_t *crc)
{
    uint32_t off, c, h = 0;
    int rc;
    for (off = 0; off < len; off += c) {
        rc = mode == SCAN_IMAGE ? image_read(ex, addr, off, len, &c) : io_read(ex, addr, off, len, &c);
        if (rc != 0) {
            return rc;
        }
        if (mode == SCAN_ERASED) {
            if (!all_erased(ex->io, c, ex->cfg.flash->geo.erased)) {
                return 0;
            }
        } else if (mode == SCAN_CMP) {
            if (memcmp(ex->io, ram + off, c) != 0) {
                return OTAUP_E_VERIFY;
            }
        } else {
            h = otaup_journal_crc32(h, ex->io, c);
        }
    }
    if (crc != NULL) {
        *crc = h;
    }
    return mode == SCAN_ERASED;
}

/* 1 if [addr, addr+len) reads erased, 0 if not, <0 on error. */
OTAUP_RAMFUNC static int is_erased(otaup_exec *ex, uint32_t addr, uint32_t len)
{
    return scan(ex, addr, len, SCAN_ERASED, NULL, NULL);
}

/* CRC-32 of flash [addr, addr+z). */
OTAUP_RAMFUNC static int flash_crc(otaup_exec *ex, uint32_t addr, uint32_t z, uint32_t *crc)
{
    return scan(ex, addr, z, SCAN_CRC, NULL, crc);
}

/* 0 if flash [addr, addr+len) holds ram[0..len), else OTAUP_E_VERIFY or a read error. */
OTAUP_RAMFUNC static int cmp_flash(otaup_exec *ex, uint32_t addr, const uint8_t *ram, uint32_t len)
{
    return scan(ex, addr, len, SCAN_CMP, ram, NULL);
}

/* Program `len` bytes from RAM at `dst`, skipping units that are all
 * erased value (they are erased already and must stay programmable). */
OTAUP_RAMFUNC static int prog_skip(otaup_exec *ex, uint32_t dst, const uint8_t *src, uint32_t len)
{
    uint32_t ws = ex->cfg.flash->geo.write_size, u = 0, run = 0;
    uint8_t e = ex->cfg.flash->geo.erased;
    int rc;
    while (u <= len) {
        int flush = u == len || all_erased(src + u, ws, e) || run >= 4096u;
        if (flush && run > 0) {
            rc = ex->cfg.flash->prog(ex->cfg.flash, dst + u - run, src + u - run, run);
            if (rc != 0) {
                return rc;
            }
            ex->stats.bytes_programmed += run;
            run = 0;
        }
        if (u == len) {
            break;
        }
        if (!all_erased(src + u, ws, e)) {
            run += ws;
        }
        u += ws;
    }
    return 0;
}

/* ---- inflate ------------------------------------------------------------ */

OTAUP_RAMFUNC static int z_reset(otaup_exec *ex)
{
    z_stream *zs;
    if (ex->cfg.window_bits == 0) {
        return OTAUP_E_UNSUPPORTED;
    }
    if (!ex->inflating) {
        ex->arena_used = 0;
        zs = z_alloc(ex, 1, sizeof(z_stream));
        if (zs == NULL) {
            return OTAUP_E_BUFFER;
        }
        memset(zs, 0, sizeof *zs);
        zs->zalloc = z_alloc;
        zs->zfree = z_free;
        zs->opaque = ex;
        if (inflateInit2(zs, -(int)ex->cfg.window_bits) != Z_OK) {
            return OTAUP_E_BUFFER;
        }
        ex->zs = zs;
        ex->inflating = 1;
    } else if (inflateReset((z_stream *)ex->zs) != Z_OK) {
        return OTAUP_E_INFLATE;
    }
    ex->zend = 0;
    otaup_recparser_init(&ex->inner);
    ex->op_hlen[0] = 0;
    ex->op_body[0] = 0;
    return 0;
}

static int inner_feed(otaup_exec *ex, const uint8_t *in, size_t len);

OTAUP_RAMFUNC static int z_feed(otaup_exec *ex, const uint8_t *in, size_t len)
{
    z_stream *zs = ex->zs;
    int zr, rc;
    if (!ex->inflating || ex->need_reset) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (len == 0) {
        return 0;
    }
    if (ex->zend) {
        return OTAUP_E_INFLATE; /* bytes after the end of the stream */
    }
    zs->next_in = (Bytef *)(uintptr_t)in;
    zs->avail_in = (uInt)len;
    for (;;) {
        zs->next_out = ex->zout;
        zs->avail_out = sizeof ex->zout;
        zr = inflate(zs, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            return zr == Z_MEM_ERROR ? OTAUP_E_BUFFER : OTAUP_E_INFLATE;
        }
        if (zs->avail_out < sizeof ex->zout) {
            rc = inner_feed(ex, ex->zout, sizeof ex->zout - zs->avail_out);
            if (rc != 0) {
                return rc;
            }
        }
        if (zr == Z_STREAM_END) {
            ex->zend = 1;
            return zs->avail_in == 0 ? 0 : OTAUP_E_INFLATE;
        }
        if (zs->avail_in == 0 && zs->avail_out != 0) {
            return 0;
        }
        if (zr == Z_BUF_ERROR && zs->avail_in == 0) {
            return 0;
        }
    }
}

/* ---- steps ---------------------------------------------------------------- */

OTAUP_RAMFUNC static void add_source(otaup_exec *ex, uint32_t src, uint32_t len)
{
    uint32_t i, best = 0, best_gap = 0xFFFFFFFFu;
    if (len == 0) {
        return;
    }
    if (ex->nsources < OTAUP_CONFIG_STEP_SOURCES_MAX) {
        ex->sources[ex->nsources].addr = src;
        ex->sources[ex->nsources].len = len;
        ex->nsources++;
        return;
    }
    /* full: widen the entry nearest to the new range (conservative) */
    for (i = 0; i < ex->nsources; i++) {
        const otaup_region *r = &ex->sources[i];
        uint32_t gap = src >= r->addr ? src - r->addr : r->addr - src;
        if (gap < best_gap) {
            best_gap = gap;
            best = i;
        }
    }
    {
        otaup_region *r = &ex->sources[best];
        uint64_t lo = r->addr < src ? r->addr : src;
        uint64_t hi = (uint64_t)r->addr + r->len > (uint64_t)src + len ? (uint64_t)r->addr + r->len
                                                                        : (uint64_t)src + len;
        r->addr = (uint32_t)lo;
        r->len = (uint32_t)(hi - lo);
    }
}

OTAUP_RAMFUNC static int step_begin(otaup_exec *ex, const otaup_record *rec)
{
    const otaup_journal_state *st = &ex->cfg.journal->st;
    int rc;
    if (ex->in_step) {
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (rec->index != ex->expected && rec->index > ex->jnext) {
        return OTAUP_E_SEQ;
    }
    ex->expected = rec->index;
    ex->s_index = rec->index;
    ex->s_addr = rec->addr;
    ex->s_len = rec->len;
    ex->step_flags = rec->flags;
    memcpy(ex->s_hash, rec->hash, 8);
    ex->replay = rec->index < ex->jnext;
    ex->from_scratch = 0;
    ex->ndeferred = ex->ndiff = ex->blob_entry = ex->blob_off = 0;
    ex->blob_started = 0;
    ex->nerases = 0;
    ex->nsources = 0;
    ex->src_w_mask = ex->src_r_mask = 0;
    ex->cur_type = 0;
    ex->ct = ex->cs = rec->addr; /* compact records start at the window */
    if (!ex->replay) {
        /* a step to execute: its window, then where its content comes from */
        if (rec->len == 0 || rec->len > ex->cfg.staging_size) {
            return OTAUP_E_STAGING;
        }
        if ((rec->addr - ex->cfg.flash->geo.base) % ex->cfg.flash->geo.write_size != 0 ||
            rec->len % ex->cfg.flash->geo.write_size != 0) {
            return OTAUP_E_ALIGN;
        }
        rc = check_target(ex, rec->addr, rec->len);
        if (rc != 0) {
            return rc;
        }
        ex->scr_off = 0;
        if (st->session == OTAUP_JS_ACTIVE && st->scratch_step == rec->index) {
            if (st->scratch == OTAUP_JSCRATCH_WINDOW) {
                ex->from_scratch = 1;
            } else if (st->scratch == OTAUP_JSCRATCH_SECTOR &&
                       inside(rec->addr, rec->len, st->scratch_addr, st->scratch_len)) {
                ex->from_scratch = 2; /* the window is inside the sector image */
                ex->scr_off = rec->addr - st->scratch_addr;
            }
        }
        memset(ex->staging, ex->cfg.flash->geo.erased, rec->len);
    }
    ex->in_step = 1;
    return 0;
}

/* An ERASE range: whole sectors the update may change. */
OTAUP_RAMFUNC static int check_erase(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    if (!otaup_geometry_is_sector_aligned(&ex->cfg.flash->geo, addr, len) || len == 0) {
        return OTAUP_E_ALIGN;
    }
    return check_target(ex, addr, len);
}

OTAUP_RAMFUNC static int add_erase(otaup_exec *ex, uint32_t addr, uint32_t len)
{
    int rc;
    otaup_region *last;
    rc = check_erase(ex, addr, len);
    if (rc != 0) {
        return rc;
    }
    last = ex->nerases ? &ex->erases[ex->nerases - 1u] : NULL;
    if (last != NULL && last->addr + last->len == addr) {
        last->len += len;
        return 0;
    }
    if (ex->nerases >= OTAUP_CONFIG_STEP_ERASES_MAX) {
        return OTAUP_E_LIMIT;
    }
    ex->erases[ex->nerases].addr = addr;
    ex->erases[ex->nerases].len = len;
    ex->nerases++;
    return 0;
}

OTAUP_RAMFUNC static int in_erases(const otaup_exec *ex, uint32_t addr, uint32_t len)
{
    uint32_t i;
    for (i = 0; i < ex->nerases; i++) {
        if (inside(addr, len, ex->erases[i].addr, ex->erases[i].len)) {
            return 1;
        }
    }
    return 0;
}

/* WRITE or DIFF bytes into the staging: copied, or added byte-wise. */
OTAUP_RAMFUNC static void put_bytes(uint8_t *t, const uint8_t *p, uint32_t n, uint8_t type)
{
    uint32_t k;
    if (type == OTAUP_REC_DIFF) {
        for (k = 0; k < n; k++) {
            t[k] = (uint8_t)(t[k] + p[k]);
        }
    } else {
        memcpy(t, p, n);
    }
}

/* BLOB bytes: first every deferred DIFF (record order), then every deferred WRITE. */
OTAUP_RAMFUNC static int blob_bytes(otaup_exec *ex, const uint8_t *p, uint32_t n)
{
    ex->blob_started = 1;
    while (n > 0) {
        uint32_t i, seen = 0, want, take, pass;
        otaup_exec_deferred *d = NULL;
        /* the blob_entry-th entry in DIFF-then-WRITE order */
        for (pass = 0; pass < 2u && d == NULL; pass++) {
            for (i = 0; i < ex->ndeferred && d == NULL; i++) {
                if (ex->deferred[i].type == (pass == 0 ? OTAUP_REC_DIFF : OTAUP_REC_WRITE) &&
                    seen++ == ex->blob_entry) {
                    d = &ex->deferred[i];
                }
            }
        }
        if (d == NULL) {
            return OTAUP_E_DELTA_CORRUPT; /* more BLOB bytes than deferred records need */
        }
        want = d->len - ex->blob_off;
        take = want < n ? want : n;
        if (!ex->replay && !ex->from_scratch) {
            put_bytes(ex->staging + d->off + ex->blob_off, p, take, d->type);
        }
        p += take;
        n -= take;
        ex->blob_off += take;
        if (ex->blob_off == d->len) {
            ex->blob_entry++;
            ex->blob_off = 0;
        }
    }
    return 0;
}

/* Note which window sectors a source touches: inside the window part or
 * in the rest of the sector (precise; the range table may widen). */
OTAUP_RAMFUNC static void mark_source(otaup_exec *ex, uint32_t from, uint32_t len)
{
    uint32_t pos = ex->s_addr, start, size, idx = 0, wend = ex->s_addr + ex->s_len;
    while (pos - ex->s_addr < ex->s_len) {
        uint32_t pa, pe, bit;
        if (otaup_geometry_sector_at(&ex->cfg.flash->geo, pos, &start, &size) < 0) {
            return;
        }
        bit = idx < 31u ? (1u << idx) : 0x80000000u; /* beyond 31: shared, conservative */
        pa = ex->s_addr > start ? ex->s_addr : start;
        pe = END_MIN(wend, start + size);
        if (overlap(from, len, pa, pe - pa)) {
            ex->src_w_mask |= bit;
        }
        if ((pa > start && overlap(from, len, start, pa - start)) ||
            (pe != start + size && overlap(from, len, pe, start + size - pe))) {
            ex->src_r_mask |= bit;
        }
        pos = start + size;
        idx++;
        if (pos == 0) {
            break;
        }
    }
}

/* Copy [from, from+len) of flash to `dst` (RAM) */
OTAUP_RAMFUNC static int read_source(otaup_exec *ex, uint8_t *dst, uint32_t from, uint32_t len)
{
    int rc = check_source(ex, from, len);
    if (rc != 0) {
        return rc;
    }
    add_source(ex, from, len);
    mark_source(ex, from, len);
    return fread_(ex, from, dst, len);
}

/* ---- END: check, then change flash ------------------------------------- */

/* Compare the window part [a, a+n) of flash with staging, unit by unit.
 * fill = 0: returns 1 if every unit is equal or erased (*equal: all of
 * them equal), 0 at the first unit that is neither.
 * fill = 1: programs the erased units that the staging wants otherwise
 * (each run of them within a piece read, by one prog_skip()); returns 0.
 * Or a flash error. */
OTAUP_RAMFUNC static int part_pass(otaup_exec *ex, uint32_t a, uint32_t n, int fill, int *equal)
{
    uint32_t ws = ex->cfg.flash->geo.write_size, off, u, c, run;
    int rc;
    *equal = 1;
    for (off = 0; off < n; off += c) {
        const uint8_t *want = ex->staging + (a - ex->s_addr) + off;
        rc = io_read(ex, a, off, n, &c);
        if (rc != 0) {
            return rc;
        }
        for (u = 0, run = 0; u <= c; u += ws) {
            if (u < c && memcmp(ex->io + u, want + u, ws) != 0) {
                *equal = 0;
                if (all_erased(ex->io + u, ws, ex->cfg.flash->geo.erased)) {
                    run += fill ? ws : 0u;
                    continue;
                }
                if (!fill) {
                    return 0;
                }
            }
            if (run > 0) {
                rc = prog_skip(ex, a + off + u - run, want + u - run, run);
                if (rc != 0) {
                    return rc;
                }
                run = 0;
            }
        }
    }
    return !fill;
}

static int sector_visit(otaup_exec *ex, uint32_t s, uint32_t z, int phase);

/* Sectors of the step's footprint, in address order: sector_visit() for each. */
OTAUP_RAMFUNC static int for_each_sector(otaup_exec *ex, int phase)
{
    /* footprint = window + erase ranges; visit each sector once, ascending */
    uint32_t cur = 0, lo, i, start, size, best;
    int have = 0, found, rc;
    for (;;) {
        /* next sector start above cur within any range */
        found = 0;
        best = 0;
        for (i = 0; i <= ex->nerases; i++) {
            uint32_t ra = i < ex->nerases ? ex->erases[i].addr : ex->s_addr;
            uint32_t rl = i < ex->nerases ? ex->erases[i].len : ex->s_len;
            uint32_t cand;
            lo = ra;
            if (have && cur >= lo && cur - lo >= rl) { /* cur past the range (hi may be 2^32: 0) */
                continue;
            }
            cand = (!have || cur < lo) ? lo : cur;
            if (otaup_geometry_sector_at(&ex->cfg.flash->geo, cand, &start, &size) < 0) {
                return OTAUP_E_RANGE;
            }
            if (!found || cand < best) {
                best = start;
                found = 1;
            }
        }
        if (!found) {
            return 0;
        }
        (void)otaup_geometry_sector_at(&ex->cfg.flash->geo, best, &start, &size);
        rc = sector_visit(ex, start, size, phase);
        if (rc != 0) {
            return rc;
        }
        cur = start + size;
        have = 1;
        if (cur == 0) {
            return 0;
        }
    }
}

#define PHASE_PLAN 0
#define PHASE_ACT 1

/* The step's current action for sector [s, s+z). */
OTAUP_RAMFUNC static int sector_action(otaup_exec *ex, uint32_t s, uint32_t z, int *maybe_rebuild)
{
    const otaup_journal_state *st = &ex->cfg.journal->st;
    uint32_t pa, pe;
    int inE = in_erases(ex, s, z), equal = 0, rc, rest;
    *maybe_rebuild = 0;
    pa = ex->s_addr > s ? ex->s_addr : s;
    pe = END_MIN(ex->s_addr + ex->s_len, s + z);
    if (st->session == OTAUP_JS_ACTIVE && st->scratch == OTAUP_JSCRATCH_SECTOR &&
        st->scratch_step == ex->s_index && st->scratch_addr == s) {
        return ACT_FROMSCR;
    }
    if (pe - 1u < pa) {
        /* no window part: an erase-only sector */
        rc = is_erased(ex, s, z);
        if (rc < 0) {
            return rc;
        }
        return rc ? ACT_NONE : ACT_ERASE;
    }
    /* the part of the sector outside the window: before it, after it
     * (is_erased() reads nothing for an empty part) */
    rest = is_erased(ex, s, pa - s);
    if (rest < 0) {
        return rest;
    }
    rc = is_erased(ex, pe, s + z - pe);
    if (rc < 0) {
        return rc;
    }
    rest = rest && rc;
    if (!inE && !rest) {
        *maybe_rebuild = 1; /* holds data the step does not rewrite */
    }
    rc = part_pass(ex, pa, pe - pa, 0, &equal);
    if (rc < 0) {
        return rc;
    }
    if (rc == 1 && (!inE || rest)) {
        return equal ? ACT_NONE : ACT_FILL;
    }
    if (inE || rest) {
        return ACT_ERASE;
    }
    return ACT_REBUILD;
}

/* Scratch sectors covering n bytes from the scratch start. */
OTAUP_RAMFUNC static uint32_t scratch_span(const otaup_exec *ex, uint32_t n)
{
    uint32_t pos = ex->cfg.scratch.addr, start, size;
    while (pos - ex->cfg.scratch.addr < n) {
        if (otaup_geometry_sector_at(&ex->cfg.flash->geo, pos, &start, &size) < 0) {
            return 0;
        }
        pos = start + size;
    }
    return pos - ex->cfg.scratch.addr;
}

/* 0 if flash [addr, addr+z) (with `mode` SCAN_IMAGE: the sector image)
 * has CRC-32 `crc`, else OTAUP_E_VERIFY or a read error. */
OTAUP_RAMFUNC static int crc_is(otaup_exec *ex, uint32_t addr, uint32_t z, int mode, uint32_t crc)
{
    uint32_t c;
    int rc = scan(ex, addr, z, mode, NULL, &c);
    if (rc != 0) {
        return rc;
    }
    return c == crc ? 0 : OTAUP_E_VERIFY;
}

/* Erase the scratch sectors that cover n bytes from its start. */
OTAUP_RAMFUNC static int scratch_erase(otaup_exec *ex, uint32_t n)
{
    uint32_t span = scratch_span(ex, n);
    if (ex->cfg.scratch.len == 0 || span == 0 || span > ex->cfg.scratch.len) {
        return OTAUP_E_SCRATCH;
    }
    return erase_range(ex, ex->cfg.scratch.addr, span);
}

/* Program flash [to, to+z) (erased) with flash [from, from+z), or with the
 * sector image of [from, from+z) if `image`, piece by piece; *crc gets the
 * CRC-32 of what was programmed. */
OTAUP_RAMFUNC static int copy_flash(otaup_exec *ex, uint32_t from, uint32_t to, uint32_t z, int image, uint32_t *crc)
{
    uint32_t off, c;
    int rc;
    *crc = 0;
    for (off = 0; off < z; off += c) {
        rc = image ? image_read(ex, from, off, z, &c) : io_read(ex, from, off, z, &c);
        if (rc != 0) {
            return rc;
        }
        *crc = otaup_journal_crc32(*crc, ex->io, c);
        rc = prog_skip(ex, to + off, ex->io, c);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Build the new content of sector [s, s+z) in scratch; returns the CRC. */
OTAUP_RAMFUNC static int rebuild_to_scratch(otaup_exec *ex, uint32_t s, uint32_t z, uint32_t *crc_out)
{
    uint32_t crc;
    int rc = scratch_erase(ex, z);
    if (rc == 0) {
        rc = copy_flash(ex, s, ex->cfg.scratch.addr, z, 1, &crc);
    }
    if (rc == 0) {
        rc = crc_is(ex, ex->cfg.scratch.addr, z, SCAN_CRC, crc);
    }
    /* the sector read a second time gives the same image: a wrong bit in
     * the first read would otherwise go to scratch with its own CRC and
     * replace the data the step keeps */
    if (rc == 0) {
        rc = crc_is(ex, s, z, SCAN_IMAGE, crc);
    }
    if (rc == 0) {
        *crc_out = crc;
    }
    return rc;
}

/* Erase sector [s, s+z) and copy its new content back from scratch; the
 * sector must then read with `crc` (the image's CRC-32): a wrong bit read
 * from scratch would otherwise land in the data the step keeps, which no
 * later check reads. */
OTAUP_RAMFUNC static int copy_from_scratch(otaup_exec *ex, uint32_t s, uint32_t z, uint32_t crc)
{
    uint32_t c;
    int rc = erase_range(ex, s, z);
    if (rc == 0) {
        rc = copy_flash(ex, ex->cfg.scratch.addr, s, z, 0, &c);
    }
    return rc != 0 ? rc : crc_is(ex, s, z, SCAN_CRC, crc);
}

OTAUP_RAMFUNC static int ensure_ponr(otaup_exec *ex, uint32_t addr, uint32_t len)
{
    if (ex->cfg.layout == OTAUP_LAYOUT_INPLACE && !ex->cfg.journal->st.ponr &&
        overlap(addr, len, ex->cfg.running.addr, ex->cfg.running.len)) {
        return otaup_journal_ponr(ex->cfg.journal);
    }
    return 0;
}

OTAUP_RAMFUNC static int sector_visit(otaup_exec *ex, uint32_t s, uint32_t z, int phase)
{
    int maybe, maybe2, act, i, rc;
    uint32_t crc;
    /* the window part of the sector: [pa, pe), empty if pa >= pe */
    uint32_t pa = s > ex->s_addr ? s : ex->s_addr;
    uint32_t pe = END_MIN(s + z, ex->s_addr + ex->s_len);
    act = sector_action(ex, s, z, &maybe);
    if (act < 0) {
        return act;
    }
    /* A read that returns a wrong bit must not decide what happens to a
     * sector: data outside the window read as erased would be erased, and
     * a plan that differs from the action would leave the window's sources
     * unprotected. The verdict stands only if a second read gives it too
     * (in the plan and in the action); otherwise the step fails before
     * this sector changes and is redone. */
    if (act != ACT_FROMSCR) {
        rc = sector_action(ex, s, z, &maybe2);
        if (rc < 0) {
            return rc;
        }
        if (rc != act || maybe2 != maybe) {
            return OTAUP_E_VERIFY;
        }
    }
    if (phase == PHASE_PLAN) {
        if (maybe) {
            /* sectors that may need a rebuild (now, or after a tear) */
            if (ex->p_rebuild < 255u) {
                ex->p_rebuild++;
            }
            if (z > ex->p_rebuild_max) {
                ex->p_rebuild_max = z;
            }
        }
        if (act != ACT_NONE) {
            ex->p_changes++;
            if (overlap(s, z, ex->cfg.running.addr, ex->cfg.running.len)) {
                ex->p_running = 1;
            }
        }
        /* sources inside a sector this step erases (now, or after a tear):
         * the staged window must survive in scratch. A rebuild carries the
         * window in its sector image when the window lies in that sector. */
        {
            int w_in_s = inside(ex->s_addr, ex->s_len, s, z);
            int erases = act == ACT_ERASE || in_erases(ex, s, z); /* the step erases it */
            if (pe - 1u >= pa) {
                /* a window sector: precise flags */
                uint32_t idx = 0, pos = ex->s_addr, st0, sz0, bit;
                while (pos < s && otaup_geometry_sector_at(&ex->cfg.flash->geo, pos, &st0, &sz0) >= 0) {
                    pos = st0 + sz0;
                    idx++;
                }
                bit = idx < 31u ? (1u << idx) : 0x80000000u;
                if ((ex->src_w_mask | ex->src_r_mask) & bit) {
                    if (act == ACT_REBUILD || act == ACT_FROMSCR) {
                        if (!w_in_s) {
                            ex->p_conflict = 1;
                        }
                    } else if (erases) {
                        ex->p_scratch = 1;
                    } else if (maybe && ((ex->src_w_mask & bit) || !w_in_s)) {
                        ex->p_conflict = 1;
                    } else if (act == ACT_FILL && (ex->src_w_mask & bit)) {
                        /* the erased units it programs may be sources: a
                         * cut would leave them neither old nor new */
                        ex->p_scratch = 1;
                    }
                }
            } else if (erases) {
                /* an erase-only sector: the (conservative) range table */
                for (i = 0; i < (int)ex->nsources; i++) {
                    if (overlap(ex->sources[i].addr, ex->sources[i].len, s, z)) {
                        ex->p_scratch = 1;
                    }
                }
            }
        }
        return 0;
    }
    /* PHASE_ACT */
    switch (act) {
    case ACT_NONE:
        return 0;
    case ACT_FILL:
        return part_pass(ex, pa, pe - pa, 1, &i);
    case ACT_ERASE:
        rc = erase_range(ex, s, z);
        if (rc == 0 && pe - 1u >= pa) {
            rc = prog_skip(ex, pa, ex->staging + (pa - ex->s_addr), pe - pa);
        }
        return rc;
    case ACT_REBUILD:
        if (ex->from_scratch == 1 || z > ex->cfg.scratch.len) {
            return OTAUP_E_SCRATCH;
        }
        rc = rebuild_to_scratch(ex, s, z, &crc);
        if (rc != 0) {
            return rc;
        }
        rc = otaup_journal_scratch_sector(ex->cfg.journal, ex->s_index, s, z, crc);
        if (rc != 0) {
            return rc;
        }
        ex->stats.sector_rebuilds++;
        return copy_from_scratch(ex, s, z, crc);
    case ACT_FROMSCR: {
        const otaup_journal_state *st = &ex->cfg.journal->st;
        if (st->scratch_len != z) {
            return OTAUP_E_JOURNAL;
        }
        /* read twice if need be: a wrong bit is not a wrong image */
        for (i = 0; i < 2; i++) {
            rc = flash_crc(ex, ex->cfg.scratch.addr, z, &crc);
            if (rc != 0) {
                return rc;
            }
            if ((uint64_t)crc == st->scratch_hash) {
                return copy_from_scratch(ex, s, z, crc);
            }
        }
        return OTAUP_E_JOURNAL;
    }
    default:
        return OTAUP_E_INTERNAL;
    }
}

/* Scratch two-phase: the staged window goes to scratch first. */
OTAUP_RAMFUNC static int window_to_scratch(otaup_exec *ex, uint64_t hash)
{
    int rc = scratch_erase(ex, ex->s_len);
    if (rc != 0) {
        return rc;
    }
    rc = prog_skip(ex, ex->cfg.scratch.addr, ex->staging, ex->s_len);
    if (rc == 0) {
        rc = cmp_flash(ex, ex->cfg.scratch.addr, ex->staging, ex->s_len);
    }
    if (rc != 0) {
        return rc;
    }
    ex->stats.scratch_windows++;
    return otaup_journal_scratch_window(ex->cfg.journal, ex->s_index, ex->s_addr, ex->s_len, hash);
}

OTAUP_RAMFUNC static int step_end(otaup_exec *ex, const otaup_record *rec)
{
    const otaup_journal_state *st = &ex->cfg.journal->st;
    uint64_t hash;
    int rc;
    if (!ex->in_step) {
        return OTAUP_E_STATE;
    }
    if (rec->index != ex->s_index) {
        return OTAUP_E_SEQ;
    }
    if (ex->blob_entry != ex->ndeferred || ex->blob_off != 0) { /* every deferred record got its bytes */
        return OTAUP_E_DATA_UNDERRUN;
    }
    ex->in_step = 0;
    if (ex->replay) {
        ex->expected = ex->s_index + 1u;
        ex->stats.steps_replayed++;
        return 0;
    }
    if (ex->from_scratch) {
        /* staged content waits in scratch: load and check it */
        rc = fread_(ex, ex->cfg.scratch.addr + ex->scr_off, ex->staging, ex->s_len);
        if (rc != 0) {
            return rc;
        }
        if (ex->from_scratch == 1 && (st->scratch_addr != ex->s_addr || st->scratch_len != ex->s_len)) {
            return OTAUP_E_JOURNAL;
        }
    }
    hash = otaup_xxh3_64(ex->staging, ex->s_len);
    if ((ex->step_flags & OTAUP_STEP_HASH) && hash != get64le(ex->s_hash)) {
        return OTAUP_E_HASH;
    }
    if (ex->from_scratch == 1 && hash != st->scratch_hash) {
        return OTAUP_E_JOURNAL;
    }
    if (ex->cfg.hooks.step_commit != NULL) {
        otaup_exec_step info;
        info.index = ex->s_index;
        info.addr = ex->s_addr;
        info.len = ex->s_len;
        info.staged = ex->staging;
        info.hash = hash;
        info.erases = ex->erases;
        info.nerases = ex->nerases;
        rc = ex->cfg.hooks.step_commit(ex->cfg.hooks.ctx, &info);
        if (rc != 0) {
            return rc;
        }
    }
    /* plan: reads only */
    ex->p_scratch = ex->p_rebuild = ex->p_running = ex->p_conflict = 0;
    ex->p_rebuild_max = ex->p_changes = 0;
    rc = for_each_sector(ex, PHASE_PLAN);
    if (rc != 0) {
        return rc;
    }
    if (ex->from_scratch) {
        ex->p_scratch = 0; /* already there */
    }
    /* power safety first: refuse what a tear could not be recovered from */
    if (ex->p_conflict || (ex->p_rebuild && ex->from_scratch == 1)) {
        return OTAUP_E_SCRATCH;
    }
    /* one sector image fits the scratch area at a time, and the journal
     * names the sector it holds until the step is done: a second rebuild
     * would overwrite the first's image while the journal still names it */
    if (ex->p_rebuild > 1u ||
        (ex->p_rebuild && (ex->p_scratch || ex->p_rebuild_max > ex->cfg.scratch.len ||
                           scratch_span(ex, ex->p_rebuild_max) == 0))) {
        return OTAUP_E_SCRATCH;
    }
    if (ex->p_scratch && (ex->cfg.scratch.len == 0 || scratch_span(ex, ex->s_len) == 0)) {
        return OTAUP_E_SCRATCH;
    }
    if (ex->p_changes > 0 || ex->p_scratch) {
        if (ex->p_running) {
            rc = ensure_ponr(ex, ex->cfg.running.addr, ex->cfg.running.len);
            if (rc != 0) {
                return rc;
            }
        }
        if (ex->p_scratch) {
            rc = window_to_scratch(ex, hash);
            if (rc != 0) {
                return rc;
            }
        }
        rc = for_each_sector(ex, PHASE_ACT);
        if (rc != 0) {
            return rc;
        }
    } else {
        ex->stats.steps_skipped++;
    }
    rc = cmp_flash(ex, ex->s_addr, ex->staging, ex->s_len);
    if (rc != 0) {
        return rc;
    }
    rc = otaup_journal_step_done(ex->cfg.journal, ex->s_index);
    if (rc != 0) {
        return rc;
    }
    ex->stats.steps_done++;
    ex->expected = ex->s_index + 1u;
    ex->jnext = ex->expected;
    ex->dirty_unknown = 0;
    return 0;
}

/* ---- records outside a step ------------------------------------------------ */

OTAUP_RAMFUNC static int at_resume_point(const otaup_exec *ex)
{
    return ex->expected >= ex->jnext;
}

OTAUP_RAMFUNC static int do_erase(otaup_exec *ex, const otaup_record *rec)
{
    uint32_t pos, start, size;
    int rc = check_erase(ex, rec->addr, rec->len);
    if (rc != 0 || !at_resume_point(ex)) {
        return rc; /* before the resume point: already done */
    }
    for (pos = rec->addr; pos - rec->addr < rec->len; pos = start + size) {
        (void)otaup_geometry_sector_at(&ex->cfg.flash->geo, pos, &start, &size);
        rc = is_erased(ex, start, size);
        if (rc == 1) {
            /* skipped only if a second read agrees: one programmed bit
             * read as erased would stay, and the VERIFY after the last
             * step (never this erase again) would fail at every resume */
            rc = is_erased(ex, start, size);
        }
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            rc = ensure_ponr(ex, start, size);
            if (rc == 0) {
                rc = erase_range(ex, start, size);
            }
            if (rc != 0) {
                return rc;
            }
        }
        rc = progress(ex, start + size - rec->addr, rec->len);
        if (rc != 0) {
            return rc;
        }
        if (start + size == 0) {
            break;
        }
    }
    return 0;
}

/* Hash flash [addr, addr+len) with alg (XXH3-64 or -128) into out (LE, as
 * in VERIFY); the state lives in the staging buffer (free between steps).
 * `report`: call the progress callback every 64 KiB. Returns the hash
 * length or an error. */
OTAUP_RAMFUNC static int hash_range(otaup_exec *ex, uint32_t addr, uint32_t len, uint8_t alg, uint8_t *out,
                                    int report)
{
    otaup_xxh3 *xs = (otaup_xxh3 *)(void *)ex->staging;
    uint32_t off, c;
    uint64_t h;
    int rc, i;
    otaup_xxh3_reset(xs);
    for (off = 0; off < len; off += c) {
        rc = io_read(ex, addr, off, len, &c);
        if (rc != 0) {
            return rc;
        }
        otaup_xxh3_update(xs, ex->io, c);
        if (report && (off & 0xFFFFu) == 0 && (rc = progress(ex, off, len)) != 0) {
            return rc;
        }
    }
    if (alg == OTAUP_HASH_XXH3_128) {
        otaup_xxh3_digest128(xs, out);
        return 16;
    }
    h = otaup_xxh3_digest64(xs);
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h >> (8 * i));
    }
    return 8;
}

OTAUP_RAMFUNC static int do_verify(otaup_exec *ex, const otaup_record *rec)
{
    uint8_t h[16];
    int rc, i;
    if (rec->alg != OTAUP_HASH_XXH3_64 && rec->alg != OTAUP_HASH_XXH3_128) {
        return OTAUP_E_UNSUPPORTED;
    }
    rc = check_source(ex, rec->addr, rec->len);
    if (rc != 0) {
        return rc;
    }
    if (!at_resume_point(ex) || ex->dirty_unknown) {
        ex->stats.verifies_skipped++;
        return 0;
    }
    /* a mismatch is read a second time: one wrong bit read must not fail
     * a whole image (and block its commit) */
    for (i = 0; i < 2; i++) {
        rc = hash_range(ex, rec->addr, rec->len, rec->alg, h, 1);
        if (rc < 0) {
            return rc;
        }
        if (memcmp(h, rec->hash, (size_t)rc) == 0) {
            break;
        }
    }
    ex->stats.verifies++;
    if (i == 2) {
        ex->verify_failed = 1;
        return OTAUP_E_HASH;
    }
    return 0;
}

/* ---- record events (inner stream, and non-DATA outer records) -------- */

/* A record that puts bytes in the staged window (WRITE, COPY, DIFF, FILL,
 * PIECE, CFILL), inside a step. Out of line: the stack of the deepest
 * path (VERIFY's hash, also in rec_head) stays as it is. */
NOINLINE OTAUP_RAMFUNC static int put_head(otaup_exec *ex, const otaup_record *rec)
{
    uint32_t t = rec->addr, src = rec->src, n = rec->len;
    int rc;
    int live = !ex->replay && !ex->from_scratch;
    if (rec->type >= OTAUP_REC_PIECE) {
        /* PIECE / CFILL at the cursors (docs/delta-format.md, "Compact records") */
        t = ex->ct;
        src += ex->cs;
        if (rec->type == OTAUP_REC_PIECE) {
            n += rec->lit;
            ex->cs = src + rec->len;
            otaup_sparse_init(&ex->sp, rec->len);
            ex->cur_type = OTAUP_REC_PIECE;
            ex->cur_off = t - ex->s_addr;
            ex->cur_left = rec->lit;
        }
        ex->ct = t + n;
    }
    if (live) {
        rc = check_in_window(ex, t, n);
        if (rc != 0) {
            return rc;
        }
        if (rec->type == OTAUP_REC_FILL || rec->type == OTAUP_REC_CFILL) {
            memset(ex->staging + (t - ex->s_addr), rec->value, n);
        } else if (rec->type != OTAUP_REC_WRITE && rec->len > 0) {
            /* COPY, DIFF, PIECE: their source first */
            rc = read_source(ex, ex->staging + (t - ex->s_addr), src, rec->len);
            if (rc != 0) {
                return rc;
            }
        }
    }
    if (rec->type != OTAUP_REC_WRITE && rec->type != OTAUP_REC_DIFF) {
        return 0;
    }
    /* WRITE or DIFF */
    if (rec->enc == OTAUP_ENC_DEFERRED) {
        if (ex->blob_started) {
            return OTAUP_E_DELTA_CORRUPT; /* deferred record after its BLOB bytes */
        }
        if (ex->ndeferred >= ex->cfg.max_ops) {
            return OTAUP_E_LIMIT;
        }
        ex->deferred[ex->ndeferred].off = rec->addr - ex->s_addr;
        ex->deferred[ex->ndeferred].len = rec->len;
        ex->deferred[ex->ndeferred].type = rec->type;
        ex->ndeferred++;
        return 0;
    }
    ex->cur_type = rec->type;
    ex->cur_off = rec->addr - ex->s_addr;
    return 0;
}

OTAUP_RAMFUNC static int rec_head(otaup_exec *ex, const otaup_record *rec)
{
    ex->cur_type = 0;
    switch (rec->type) {
    case OTAUP_REC_STEP:
        return step_begin(ex, rec);
    case OTAUP_REC_END:
        return step_end(ex, rec);
    case OTAUP_REC_VERIFY:
    case OTAUP_REC_SYNC:
        if (ex->in_step) {
            return OTAUP_E_DELTA_CORRUPT; /* between steps only */
        }
        if (rec->type == OTAUP_REC_VERIFY) {
            return do_verify(ex, rec);
        }
        if (rec->index > ex->jnext) {
            return OTAUP_E_SEQ; /* restarting there would skip steps */
        }
        ex->expected = rec->index;
        ex->need_reset = ex->cfg.window_bits != 0;
        return 0;
    case OTAUP_REC_ERASE:
        if (!ex->in_step) {
            return do_erase(ex, rec);
        }
        return ex->replay ? 0 : add_erase(ex, rec->addr, rec->len);
    case OTAUP_REC_WRITE:
    case OTAUP_REC_COPY:
    case OTAUP_REC_DIFF:
    case OTAUP_REC_FILL:
    case OTAUP_REC_BLOB:
    case OTAUP_REC_PIECE:
    case OTAUP_REC_CFILL:
        break;
    case OTAUP_REC_DATA:
    default:
        return OTAUP_E_DELTA_CORRUPT;
    }
    if (!ex->in_step) {
        return OTAUP_E_STATE; /* a put outside a step */
    }
    if (rec->type == OTAUP_REC_BLOB) {
        ex->cur_type = OTAUP_REC_BLOB;
        return 0;
    }
    return put_head(ex, rec);
}

OTAUP_RAMFUNC static int rec_bytes(otaup_exec *ex, const uint8_t *p, uint32_t n)
{
    int live = ex->in_step && !ex->replay && !ex->from_scratch;
    if (ex->cur_type == OTAUP_REC_BLOB) {
        return blob_bytes(ex, p, n);
    }
    if (ex->cur_type == OTAUP_REC_PIECE) {
        /* sparse differences, then the literal bytes */
        int used = otaup_sparse_feed(&ex->sp, p, n, live ? ex->staging + ex->cur_off : NULL);
        if (used < 0) {
            return used;
        }
        n -= (uint32_t)used;
        if (n > ex->cur_left) {
            return OTAUP_E_MSG_LENGTH;
        }
        if (live && n > 0) {
            /* the literals end where the piece ends: at the cursor */
            memcpy(ex->staging + (ex->ct - ex->s_addr) - ex->cur_left, p + used, n);
        }
        ex->cur_left -= n;
        return 0;
    }
    if (live && (ex->cur_type == OTAUP_REC_WRITE || ex->cur_type == OTAUP_REC_DIFF)) {
        put_bytes(ex->staging + ex->cur_off, p, n, ex->cur_type);
    }
    ex->cur_off += n;
    return 0;
}

/* Body bytes of the record's fixed fields, from the parser's raw header. */
OTAUP_RAMFUNC static int hook_head(const otaup_recparser *p,
                                   int (*hook)(void *, uint8_t, const uint8_t *, size_t, unsigned), void *ctx)
{
    uint32_t blen;
    int n = otaup_varint_get(p->head + 1, p->head_len - 1u, &blen);
    if (n < 0) {
        return OTAUP_E_INTERNAL;
    }
    return hook(ctx, p->head[0], p->head + 1 + n, p->head_len - 1u - (uint32_t)n,
                OTAUP_PART_FIRST | (p->rec.data_len == 0 ? OTAUP_PART_LAST : 0u));
}

/* Reserved record types: skipped by the executor, given to the hook. */
OTAUP_RAMFUNC static int opaque_feed(otaup_exec *ex, int w, const uint8_t **in, size_t *len,
                                     int (*hook)(void *, uint8_t, const uint8_t *, size_t, unsigned))
{
    uint8_t *hdr = ex->op_hdr[w], *hlen = &ex->op_hlen[w], *body = &ex->op_body[w], *first = &ex->op_first[w];
    uint32_t *left = &ex->op_left[w];
    int rc;
    while (*len > 0 && !*body) {
        uint32_t v;
        int n;
        hdr[(*hlen)++] = **in;
        (*in)++;
        (*len)--;
        if (*hlen == 1) {
            continue;
        }
        n = otaup_varint_get(hdr + 1, *hlen - 1u, &v);
        if (n == OTAUP_E_DELTA_TRUNCATED && *hlen < 6) {
            continue;
        }
        if (n < 0) {
            return OTAUP_E_MSG_FIELD;
        }
        *left = v;
        *body = 1;
        *first = 1;
        if (v == 0) {
            break; /* an empty body: one call, first and last */
        }
    }
    if (*body && (*len > 0 || *left == 0)) {
        uint32_t take = *left < *len ? *left : (uint32_t)*len;
        unsigned part = (*first ? OTAUP_PART_FIRST : 0u) | (take == *left ? OTAUP_PART_LAST : 0u);
        rc = hook(ex->cfg.hooks.ctx, hdr[0], take != 0 ? *in : NULL, take, part);
        *first = 0;
        *in += take;
        *len -= take;
        *left -= take;
        if (*left == 0) {
            *hlen = 0;
            *body = 0;
        }
        return rc;
    }
    return 0;
}

/* The next event of stream w (0: inner, 1: outer), given to the stream's
 * hook first: reserved record types go to the hook whole and are skipped.
 * Returns OTAUP_RECP_HEAD, _BYTES or _DONE, OTAUP_RECP_NEED_INPUT once the
 * input is used up, or an error. */
OTAUP_RAMFUNC static int next_event(otaup_exec *ex, int w, const uint8_t **in, size_t *len)
{
    otaup_recparser *p = w ? &ex->outer : &ex->inner;
    int (*hook)(void *, uint8_t, const uint8_t *, size_t, unsigned) =
        w ? ex->cfg.hooks.record : ex->cfg.hooks.inner_record;
    for (;;) {
        size_t used = 0;
        int ev, rc;
        if (ex->op_hlen[w] != 0 ||
            (*len > 0 && hook != NULL && otaup_recparser_idle(p) && **in >= RESERVED_LO && **in <= RESERVED_HI)) {
            rc = opaque_feed(ex, w, in, len, hook);
            if (rc != 0) {
                return rc;
            }
            if (ex->op_hlen[w] != 0) {
                return OTAUP_RECP_NEED_INPUT; /* the input ended inside the record */
            }
            continue;
        }
        ev = otaup_recparser_feed(p, *in, *len, &used);
        *in += used;
        *len -= used;
        rc = 0;
        if (hook != NULL && ev == OTAUP_RECP_HEAD) {
            rc = hook_head(p, hook, ex->cfg.hooks.ctx);
        } else if (hook != NULL && ev == OTAUP_RECP_BYTES) {
            rc = hook(ex->cfg.hooks.ctx, p->head[0], p->rec.data, p->rec.data_len,
                      p->data_left == 0 ? OTAUP_PART_LAST : 0u);
        }
        return rc != 0 ? rc : ev;
    }
}

OTAUP_RAMFUNC static int inner_feed(otaup_exec *ex, const uint8_t *in, size_t len)
{
    otaup_recparser *p = &ex->inner;
    for (;;) {
        int ev = next_event(ex, 0, &in, &len), rc;
        if (ev <= 0) {
            return ev;
        }
        if (ev == OTAUP_RECP_HEAD) {
            rc = rec_head(ex, &p->rec);
        } else if (ev == OTAUP_RECP_BYTES) {
            rc = rec_bytes(ex, p->rec.data, p->rec.data_len);
        } else {
            /* DONE: a PIECE's differences and literals fill its body exactly */
            rc = ex->cur_type == OTAUP_REC_PIECE && (!otaup_sparse_done(&ex->sp) || ex->cur_left != 0)
                     ? OTAUP_E_MSG_LENGTH
                     : 0;
            ex->cur_type = 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
}

/* ---- the outer stream ------------------------------------------------------ */

OTAUP_RAMFUNC static void drop_stream(otaup_exec *ex)
{
    /* after an error the stream restarts at a SYNC or a STEP */
    otaup_recparser_init(&ex->outer);
    otaup_recparser_init(&ex->inner);
    ex->op_hlen[0] = ex->op_hlen[1] = 0;
    ex->op_body[0] = ex->op_body[1] = 0;
    ex->in_step = 0;
    ex->outer_data = 0;
    if (ex->inflating) {
        ex->need_reset = 1;
    }
}

OTAUP_RAMFUNC static int outer_feed(otaup_exec *ex, const uint8_t *in, size_t len)
{
    otaup_recparser *p = &ex->outer;
    for (;;) {
        int ev = next_event(ex, 1, &in, &len), rc = 0;
        if (ev <= 0) {
            return ev;
        }
        if (ev == OTAUP_RECP_HEAD) {
            ex->outer_data = p->rec.type == OTAUP_REC_DATA;
            if (ex->outer_data) {
                if (p->rec.flags & OTAUP_DATA_RESET) {
                    ex->need_reset = 0;
                    rc = z_reset(ex);
                } else if (!ex->inflating || ex->need_reset) {
                    rc = OTAUP_E_DELTA_CORRUPT;
                }
            } else if (p->rec.type >= OTAUP_REC_PIECE) {
                rc = OTAUP_E_DELTA_CORRUPT; /* compact records live in the inner stream only */
            } else {
                rc = rec_head(ex, &p->rec);
            }
        } else if (ev == OTAUP_RECP_BYTES) {
            rc = ex->outer_data ? z_feed(ex, p->rec.data, p->rec.data_len)
                                : rec_bytes(ex, p->rec.data, p->rec.data_len);
        } else {
            ex->outer_data = 0;
        }
        if (rc != 0) {
            return rc;
        }
    }
}

OTAUP_RAMFUNC int otaup_exec_feed(otaup_exec *ex, const uint8_t *bytes, size_t len)
{
    int rc;
    if (ex == NULL || (bytes == NULL && len > 0)) {
        return OTAUP_E_INVAL;
    }
    if (!ex->started) {
        return OTAUP_E_NO_SESSION;
    }
    rc = outer_feed(ex, bytes, len);
    if (rc != 0) {
        drop_stream(ex);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_exec_body(otaup_exec *ex, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t hdr[6];
    int n, rc;
    if (ex == NULL || (body == NULL && len > 0) || len > 0xFFFFFFFFu) {
        return OTAUP_E_INVAL;
    }
    if (!ex->started) {
        return OTAUP_E_NO_SESSION;
    }
    if (!otaup_recparser_idle(&ex->outer) || ex->op_hlen[1] != 0) {
        return OTAUP_E_STATE;
    }
    hdr[0] = type;
    n = otaup_varint_put((uint32_t)len, hdr + 1, sizeof hdr - 1u);
    if (n < 0) {
        return n;
    }
    rc = outer_feed(ex, hdr, (size_t)n + 1u);
    if (rc == 0) {
        rc = outer_feed(ex, body, len);
    }
    if (rc == 0 && (!otaup_recparser_idle(&ex->outer) || ex->op_hlen[1] != 0)) {
        rc = OTAUP_E_MSG_LENGTH;
    }
    if (rc != 0) {
        drop_stream(ex);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_exec_finish(otaup_exec *ex)
{
    const otaup_journal_state *st;
    int rc;
    if (ex == NULL) {
        return OTAUP_E_INVAL;
    }
    if (!ex->started) {
        return ex->finished ? 0 : OTAUP_E_NO_SESSION;
    }
    if (ex->in_step || !otaup_recparser_idle(&ex->outer) || !otaup_recparser_idle(&ex->inner) ||
        ex->op_hlen[0] != 0 || ex->op_hlen[1] != 0) {
        return OTAUP_E_DELTA_TRUNCATED;
    }
    if (ex->verify_failed) {
        return OTAUP_E_HASH;
    }
    if (ex->expected < ex->jnext) {
        return OTAUP_E_DELTA_TRUNCATED; /* the stream stopped before the resume point */
    }
    if (ex->cfg.hooks.final != NULL) {
        rc = ex->cfg.hooks.final(ex->cfg.hooks.ctx);
        if (rc != 0) {
            return rc;
        }
    }
    st = &ex->cfg.journal->st;
    if (ex->cfg.layout == OTAUP_LAYOUT_AB && st->boot_slot != st->target_slot) {
        rc = otaup_journal_switch(ex->cfg.journal, st->target_slot);
        if (rc != 0) {
            return rc;
        }
    }
    rc = otaup_journal_end(ex->cfg.journal, 0);
    if (rc != 0) {
        return rc;
    }
    ex->started = 0;
    ex->finished = 1;
    return 0;
}

OTAUP_RAMFUNC int otaup_exec_abort(otaup_exec *ex, int reason)
{
    const otaup_journal_state *st;
    int rc;
    if (ex == NULL) {
        return OTAUP_E_INVAL;
    }
    st = &ex->cfg.journal->st;
    if (st->session != OTAUP_JS_ACTIVE) {
        return OTAUP_E_NO_SESSION;
    }
    if (must_finish(ex)) {
        return OTAUP_E_STATE;
    }
    rc = otaup_journal_end(ex->cfg.journal, reason < 0 ? reason : OTAUP_E_CANCELED);
    if (rc == 0) {
        ex->started = 0;
        drop_stream(ex);
    }
    return rc;
}

OTAUP_RAMFUNC int otaup_exec_idle(const otaup_exec *ex)
{
    return ex != NULL && otaup_recparser_idle(&ex->outer) && ex->op_hlen[1] == 0;
}

OTAUP_RAMFUNC int otaup_exec_hash_range(otaup_exec *ex, uint32_t addr, uint32_t len, uint8_t alg, uint8_t *out)
{
    int rc;
    if (ex == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    if (ex->in_step) {
        return OTAUP_E_STATE;
    }
    if (alg != OTAUP_HASH_XXH3_64 && alg != OTAUP_HASH_XXH3_128) {
        return OTAUP_E_UNSUPPORTED;
    }
    rc = check_source(ex, addr, len); /* the driver reads only inside the geometry */
    return rc != 0 ? rc : hash_range(ex, addr, len, alg, out, 0);
}
