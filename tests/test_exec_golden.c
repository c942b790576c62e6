/*
 * The executor's behaviour, frozen (and the journal's, and the protocol
 * applier's: see the end of this comment): a digest of everything it does on a
 * set of deltas, compared with the digests recorded in
 * tests/vectors/exec-golden.txt. Each scenario runs on a simulated flash
 * that logs every operation (read, program, erase: address, length,
 * result, torn) and digests, in order: that log, every return code of
 * init/start/feed/body/finish, the statistics, every progress and hook
 * call (with its arguments and bytes), and at the end the whole flash
 * (slots, scratch, journal area, user data) and the mounted journal's
 * state.
 *
 * Deltas: the product's planner (otaup_delta_create, what otaup delta
 * runs) on the test firmware pair and on generated pairs with in-place
 * cycles, in place and A/B, uniform and non-uniform sectors; the test
 * planner (tests/util/testplan.c) for every record kind (COPY, DIFF,
 * WRITE, FILL, deferred + BLOB, plain and in DATA, SYNC restart points).
 * Scenarios: clean runs (two chunkings, records through otaup_exec_feed
 * and otaup_exec_body), power cuts (plain and torn) at spread points with
 * resumes (one with a second cut), failed programs/erases, faulty reads
 * (failed, one wrong bit), hostile streams (bytes changed, truncated,
 * a hook failing) each followed by a clean resume.
 *
 * The journal alone: a sequence of every record kind over small sectors,
 * cut, failed or misread at every write. The protocol applier: whole
 * upgrades over the test server's link (tests/util/testlink.c), clean,
 * lossy and with disconnects, in place and A/B (every frame the terminal
 * sends, with the flash operations between them), and hostile frames in
 * the applier fuzz target's format (its corpus and generated inputs).
 *
 * A digest that differs names the case and scenario. When a change of
 * behaviour is intended, regenerate the file with
 *     OTAUP_GOLDEN_WRITE=tests/vectors/exec-golden.txt build/dev/tests/test_exec_golden
 * and say why in the commit. The delta bytes themselves are digested
 * first ("<case> delta"): a difference there is the planner's (or the
 * test planner's), not the executor's.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/delta.h"
#include "otaup/journal.h"
#include "otaup/record.h"
#include "otaup/simflash.h"
#include "util/testlink.h"
#include "util/testplan.h"

/* ---- digest (FNV-1a 64, independent of the library's hashes) ------------ */

typedef struct dig {
    uint64_t h;
} dig;

static void d_init(dig *d)
{
    d->h = 0xcbf29ce484222325ull;
}

static void d_bytes(dig *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        d->h = (d->h ^ b[i]) * 0x100000001b3ull;
    }
}

static void d_u64(dig *d, uint64_t v)
{
    uint8_t b[8];
    int i;
    for (i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    d_bytes(d, b, 8);
}

/* ---- golden file ------------------------------------------------------------ */

static FILE *g_write;
static char *g_text;
static int g_mismatch;

static void golden_open(void)
{
    const char *w = getenv("OTAUP_GOLDEN_WRITE");
    if (w != NULL && *w != '\0') {
        g_write = fopen(w, "w");
        ck_assert_ptr_nonnull(g_write);
        fprintf(g_write, "# test_exec_golden: case scenario digest (FNV-1a 64); see tests/test_exec_golden.c\n");
        return;
    }
    {
        char path[1024];
        const char *dir = getenv("OTAUP_VECTORS");
        FILE *f;
        long n;
        ck_assert_ptr_nonnull(dir);
        snprintf(path, sizeof path, "%s/exec-golden.txt", dir);
        f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "%s missing", path);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        g_text = calloc((size_t)n + 1, 1);
        ck_assert_uint_eq(fread(g_text, 1, (size_t)n, f), (size_t)n);
        fclose(f);
    }
}

static void golden_close(void)
{
    if (g_write != NULL) {
        fclose(g_write);
        g_write = NULL;
    }
    free(g_text);
    g_text = NULL;
}

static void golden(const char *cname, const char *scen, uint64_t h)
{
    char line[256];
    snprintf(line, sizeof line, "%s %s %016llx\n", cname, scen, (unsigned long long)h);
    if (g_write != NULL) {
        fputs(line, g_write);
        return;
    }
    if (strstr(g_text, line) == NULL) {
        if (g_mismatch < 20) {
            fprintf(stderr, "golden mismatch: %s", line);
        }
        g_mismatch++;
    }
}

/* ---- cases ----------------------------------------------------------------- */

typedef struct gcase {
    char name[48];
    otaup_geometry geo;
    th_layout L;
    uint8_t *flash0; /* whole device before the update */
    tp_stream s;
} gcase;

static void case_free(gcase *c)
{
    free(c->flash0);
    tp_stream_free(&c->s);
}

static uint8_t *load(const char *name, size_t *len)
{
    uint8_t *p = tp_load_vector(name, len);
    ck_assert_msg(p != NULL, "cannot read %s under $OTAUP_VECTORS", name);
    return p;
}

/* Lay out slot(s) of slot_len bytes from geo.base, then scratch (one
 * sector of scratch_len, in place only unless `ab_scratch`), journal (2
 * sectors of jsec), user data (one sector of jsec, random). */
static void layout(gcase *c, uint8_t lay, uint32_t slot_len, uint32_t scratch_len, uint32_t jsec, int ab_scratch)
{
    uint32_t at = c->geo.base + slot_len, size = otaup_geometry_size(&c->geo);
    c->L.layout = lay;
    c->L.slot[0].addr = c->geo.base;
    c->L.slot[0].len = slot_len;
    if (lay == OTAUP_LAYOUT_AB) {
        c->L.slot[1].addr = at;
        c->L.slot[1].len = slot_len;
        at += slot_len;
    }
    if (lay == OTAUP_LAYOUT_INPLACE || ab_scratch) {
        c->L.scratch.addr = at;
        c->L.scratch.len = scratch_len;
        at += scratch_len;
    }
    c->L.journal.addr = at;
    c->L.journal.len = 2 * jsec;
    at += 2 * jsec;
    c->L.user.addr = at;
    c->L.user.len = jsec;
    ck_assert_uint_le(at + jsec - c->geo.base, size);
    c->flash0 = malloc(size);
    memset(c->flash0, c->geo.erased, size);
    tp_fill_random(c->flash0 + (at - c->geo.base), jsec, 77);
}

/* The product planner (as otaup delta runs it). */
static void case_planner(gcase *c, const char *name, const otaup_geometry *geo, uint8_t lay, uint32_t slot_len,
                         uint32_t scratch_len, uint32_t jsec, const uint8_t *old, size_t old_len, const uint8_t *img,
                         size_t img_len, uint32_t ram)
{
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_delta_header h;
    const uint8_t *bytes;
    size_t blen;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->geo = *geo;
    layout(c, lay, slot_len, scratch_len, jsec, 0);
    memcpy(c->flash0, old, old_len);
    ck_assert_int_eq(otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION), 0);
    o.geo = c->geo;
    o.layout = lay;
    o.source_addr = c->L.slot[0].addr;
    o.target_addr = lay == OTAUP_LAYOUT_AB ? c->L.slot[1].addr : c->L.slot[0].addr;
    if (lay == OTAUP_LAYOUT_INPLACE) {
        o.scratch_addr = c->L.scratch.addr;
        o.scratch_size = c->L.scratch.len;
    }
    o.ram = ram;
    o.restart_interval = 2000;
    ck_assert_int_eq(otaup_delta_create(old, old_len, NULL, img, img_len, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &blen);
    ck_assert_int_eq(tp_from_container(bytes, blen, &c->s, &h), 0);
    c->L.staging = h.staging_size;
    c->L.max_ops = h.max_ops;
    c->L.wbits = h.window_bits;
    otaup_delta_free(d);
}

/* The test planner: every record kind. */
static void case_tp(gcase *c, const char *name, const otaup_geometry *geo, uint8_t lay, uint32_t slot_len,
                    uint32_t scratch_len, uint32_t jsec, uint32_t img_len, uint32_t staging, int compress,
                    int deferred, uint32_t sync_every, int no_hash, uint64_t seed)
{
    tp_opts o;
    uint8_t *img;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->geo = *geo;
    layout(c, lay, slot_len, scratch_len, jsec, 1);
    tp_make_image(c->flash0, img_len, seed);
    img = malloc(slot_len);
    tp_make_new(c->flash0, img, img_len, geo->runs[0].size, seed + 1);
    c->L.staging = staging;
    c->L.max_ops = 64;
    c->L.wbits = compress ? 12 : 0;
    tp_opts_default(&o, &c->geo, c->L.slot[lay == OTAUP_LAYOUT_AB ? 1 : 0].addr, c->geo.base, img_len, staging);
    o.compress = compress;
    o.wbits = 12;
    o.deferred = deferred;
    o.sync_every = sync_every;
    o.no_hash = no_hash;
    o.verify = 1;
    ck_assert_int_eq(tp_plan(&o, c->flash0, img, &c->s), 0);
    free(img);
}

/* Put ERASE records outside any step before the stream (sectors
 * [pre, pre+prelen)) and after it ([post, post+postlen)), as the
 * protocol's server sends them; restart points keep their place. */
static void case_erases(gcase *c, uint32_t pre, uint32_t prelen, uint32_t post, uint32_t postlen)
{
    uint8_t a[32], b[32];
    otaup_record r;
    int na = 0, nb = 0;
    uint8_t *p;
    size_t i;
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_ERASE;
    if (prelen != 0) {
        r.addr = pre;
        r.len = prelen;
        na = otaup_record_encode(&r, a, sizeof a);
        ck_assert_int_gt(na, 0);
    }
    if (postlen != 0) {
        r.addr = post;
        r.len = postlen;
        nb = otaup_record_encode(&r, b, sizeof b);
        ck_assert_int_gt(nb, 0);
    }
    p = malloc(c->s.len + (size_t)na + (size_t)nb);
    memcpy(p, a, (size_t)na);
    memcpy(p + na, c->s.bytes, c->s.len);
    memcpy(p + na + c->s.len, b, (size_t)nb);
    free(c->s.bytes);
    c->s.bytes = p;
    c->s.len += (size_t)na + (size_t)nb;
    for (i = 0; i < c->s.nrs; i++) {
        if (c->s.rs[i].offset != 0) {
            c->s.rs[i].offset += (size_t)na;
        }
    }
}

/* ---- one run ----------------------------------------------------------------- */

typedef struct runopt {
    size_t chunk;      /* bytes per otaup_exec_feed */
    int body;          /* feed whole records through otaup_exec_body */
    int hooks;         /* record every hook call */
    long hook_fail_at; /* the n-th hook call (1-based) returns OTAUP_E_CANCELED; 0: never */
    long progress_fail_at;
} runopt;

typedef struct hookctx {
    dig *d;
    long calls;
    long fail_at;
} hookctx;

static int h_record(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    hookctx *h = ctx;
    d_u64(h->d, 0x100u | type);
    d_u64(h->d, len);
    d_u64(h->d, part);
    if (body != NULL) {
        d_bytes(h->d, body, len);
    }
    return ++h->calls == h->fail_at ? OTAUP_E_CANCELED : 0;
}

static int h_inner(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    hookctx *h = ctx;
    d_u64(h->d, 0x200u | type);
    d_u64(h->d, len);
    d_u64(h->d, part);
    if (body != NULL) {
        d_bytes(h->d, body, len);
    }
    return ++h->calls == h->fail_at ? OTAUP_E_CANCELED : 0;
}

static int h_commit(void *ctx, const otaup_exec_step *st)
{
    hookctx *h = ctx;
    uint32_t i;
    d_u64(h->d, 0x300u);
    d_u64(h->d, st->index);
    d_u64(h->d, st->addr);
    d_u64(h->d, st->len);
    d_u64(h->d, st->hash);
    d_bytes(h->d, st->staged, st->len);
    for (i = 0; i < st->nerases; i++) {
        d_u64(h->d, st->erases[i].addr);
        d_u64(h->d, st->erases[i].len);
    }
    return ++h->calls == h->fail_at ? OTAUP_E_CANCELED : 0;
}

static int h_final(void *ctx)
{
    hookctx *h = ctx;
    d_u64(h->d, 0x400u);
    return ++h->calls == h->fail_at ? OTAUP_E_CANCELED : 0;
}

typedef struct progctx {
    dig *d;
    long calls;
    long fail_at;
} progctx;

static int h_progress(void *ctx, uint32_t done, uint32_t total)
{
    progctx *p = ctx;
    d_u64(p->d, 0x500u);
    d_u64(p->d, done);
    d_u64(p->d, total);
    return ++p->calls == p->fail_at ? OTAUP_E_CANCELED : 0;
}

static void digest_log(dig *d, otaup_simflash *sim)
{
    size_t n, i;
    const otaup_simflash_op *op = otaup_simflash_log(sim, &n);
    for (i = 0; i < n; i++) {
        d_u64(d, op[i].kind);
        d_u64(d, op[i].torn);
        d_u64(d, (uint64_t)(int64_t)op[i].result);
        d_u64(d, op[i].addr);
        d_u64(d, op[i].len);
        d_u64(d, op[i].seq);
    }
    otaup_simflash_log_clear(sim);
}

/* Feed s->bytes[off..end) record by record through otaup_exec_body. */
static int feed_body(otaup_exec *ex, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        uint32_t blen;
        int n;
        if (len - off < 2) {
            return otaup_exec_feed(ex, p + off, len - off);
        }
        n = otaup_varint_get(p + off + 1, len - off - 1, &blen);
        if (n < 0 || blen > len - off - 1 - (size_t)n) {
            return otaup_exec_feed(ex, p + off, len - off); /* a torn or hostile tail */
        }
        {
            int rc = otaup_exec_body(ex, p[off], p + off + 1 + n, blen);
            if (rc != 0) {
                return rc;
            }
        }
        off += 1 + (size_t)n + blen;
    }
    return 0;
}

/* One boot: mount, init, start/resume, feed from the restart point,
 * finish. Everything it does goes into d. Returns the result. */
static int run_once(dig *d, otaup_simflash *sim, const gcase *c, const uint8_t *bytes, size_t blen,
                    const runopt *ro)
{
    const otaup_flash *f = otaup_simflash_flash(sim);
    const th_layout *L = &c->L;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config cfg;
    otaup_region win, prot[1];
    hookctx hc;
    progctx pc;
    size_t wsz, off = 0, i;
    void *work;
    int rc;
    uint8_t target = L->layout == OTAUP_LAYOUT_AB ? 1 : 0;
    rc = otaup_journal_mount(&j, f, L->journal.addr, L->journal.len);
    d_u64(d, (uint64_t)(int64_t)rc);
    if (rc != 0) {
        digest_log(d, sim);
        return rc;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.flash = f;
    cfg.journal = &j;
    cfg.layout = L->layout;
    cfg.window_bits = (uint8_t)L->wbits;
    win = L->slot[target];
    cfg.windows = &win;
    cfg.nwindows = 1;
    prot[0] = L->user;
    cfg.protect = prot;
    cfg.nprotect = 1;
    cfg.scratch = L->scratch;
    if (L->layout == OTAUP_LAYOUT_INPLACE) {
        cfg.running = L->slot[0];
    }
    cfg.staging_size = L->staging;
    cfg.max_ops = L->max_ops;
    wsz = otaup_exec_work_size(L->staging, L->max_ops, L->wbits);
    work = malloc(wsz);
    cfg.work = work;
    cfg.work_size = wsz;
    hc.d = d;
    hc.calls = 0;
    hc.fail_at = ro->hook_fail_at;
    pc.d = d;
    pc.calls = 0;
    pc.fail_at = ro->progress_fail_at;
    if (ro->hooks) {
        cfg.hooks.ctx = &hc;
        cfg.hooks.record = h_record;
        cfg.hooks.inner_record = h_inner;
        cfg.hooks.step_commit = h_commit;
        cfg.hooks.final = h_final;
    }
    cfg.progress = h_progress;
    cfg.progress_ctx = &pc;
    rc = otaup_exec_init(&ex, &cfg);
    d_u64(d, (uint64_t)(int64_t)rc);
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, 42, target);
        d_u64(d, (uint64_t)(int64_t)rc);
        if (rc >= 0 && rc != 2) {
            uint32_t next;
            otaup_exec_set_step_count(&ex, c->s.nsteps);
            next = otaup_exec_next_step(&ex);
            d_u64(d, next);
            rc = 0;
            for (i = 0; i < c->s.nrs; i++) {
                if (c->s.rs[i].index <= next && c->s.rs[i].offset <= blen) {
                    off = c->s.rs[i].offset;
                }
            }
            if (ro->body) {
                rc = feed_body(&ex, bytes + off, blen - off);
                d_u64(d, (uint64_t)(int64_t)rc);
            } else {
                while (rc == 0 && off < blen) {
                    size_t n = blen - off < ro->chunk ? blen - off : ro->chunk;
                    rc = otaup_exec_feed(&ex, bytes + off, n);
                    d_u64(d, (uint64_t)(int64_t)rc);
                    d_u64(d, (uint64_t)otaup_exec_replaying(&ex));
                    off += n;
                }
            }
            if (rc == 0) {
                rc = otaup_exec_finish(&ex);
                if (rc == 0) {
                    uint8_t h[16];
                    int k;
                    for (k = 0; k < 3; k++) {
                        int hr = otaup_exec_hash_range(&ex, L->slot[target].addr + (uint32_t)k * 1000u,
                                                       L->slot[target].len - (uint32_t)k * 1000u,
                                                       k == 1 ? OTAUP_HASH_XXH3_64 : OTAUP_HASH_XXH3_128, h);
                        d_u64(d, (uint64_t)(int64_t)hr);
                        if (hr > 0) {
                            d_bytes(d, h, (size_t)hr);
                        }
                    }
                }
            } else if (rc != OTAUP_E_POWER_CUT) {
                d_u64(d, (uint64_t)(int64_t)otaup_exec_abort(&ex, rc));
            }
        } else if (rc == 2) {
            rc = 0;
        }
        {
            const otaup_exec_stats *st = otaup_exec_get_stats(&ex);
            d_u64(d, st->steps_done);
            d_u64(d, st->steps_replayed);
            d_u64(d, st->steps_skipped);
            d_u64(d, st->scratch_windows);
            d_u64(d, st->sector_rebuilds);
            d_u64(d, st->sectors_erased);
            d_u64(d, st->bytes_programmed);
            d_u64(d, st->verifies);
            d_u64(d, st->verifies_skipped);
        }
    }
    d_u64(d, (uint64_t)(int64_t)rc);
    digest_log(d, sim);
    free(work);
    return rc;
}

static otaup_simflash *device(const gcase *c)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    o.geo = c->geo;
    o.log_ops = 1;
    o.log_reads = 1;
    o.seed = 9;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    ck_assert_int_eq(otaup_simflash_load(s, c->geo.base, c->flash0, otaup_geometry_size(&c->geo)), 0);
    return s;
}

/* The end of a scenario: the whole device and the journal's state. */
static void digest_end(dig *d, otaup_simflash *sim, const gcase *c)
{
    otaup_journal j;
    int rc;
    otaup_simflash_power_on(sim);
    otaup_simflash_log_clear(sim);
    d_bytes(d, otaup_simflash_data(sim), otaup_simflash_size(sim));
    rc = otaup_journal_mount(&j, otaup_simflash_flash(sim), c->L.journal.addr, c->L.journal.len);
    d_u64(d, (uint64_t)(int64_t)rc);
    if (rc == 0) {
        d_u64(d, j.st.session);
        d_u64(d, j.st.layout);
        d_u64(d, j.st.target_slot);
        d_u64(d, j.st.boot_slot);
        d_u64(d, j.st.ponr);
        d_u64(d, j.st.scratch);
        d_u64(d, j.st.session_id);
        d_u64(d, j.st.delta_id);
        d_u64(d, j.st.next_step);
        d_u64(d, j.st.scratch_step);
        d_u64(d, j.st.scratch_addr);
        d_u64(d, j.st.scratch_len);
        d_u64(d, j.st.scratch_hash);
        d_u64(d, (uint64_t)(int64_t)j.st.result);
        d_u64(d, j.st.records);
        d_u64(d, j.st.seq);
        d_u64(d, j.pos);
        d_u64(d, j.sec_addr);
    }
}

/* Boots until the update ends well, at most `boots`; digests each. */
static int resume(dig *d, otaup_simflash *sim, const gcase *c, const runopt *ro, int boots)
{
    int rc = -1, b;
    for (b = 0; b < boots && rc != 0; b++) {
        otaup_simflash_power_on(sim);
        rc = run_once(d, sim, c, c->s.bytes, c->s.len, ro);
    }
    return rc;
}

static uint64_t total_writes(const gcase *c)
{
    otaup_simflash *s = device(c);
    otaup_simflash_stats st;
    runopt ro = { 512, 0, 0, 0, 0 };
    dig d;
    d_init(&d);
    ck_assert_int_eq(run_once(&d, s, c, c->s.bytes, c->s.len, &ro), 0);
    otaup_simflash_stats_get(s, &st);
    otaup_simflash_free(s);
    return st.ops;
}

static uint64_t total_reads(const gcase *c)
{
    otaup_simflash *s = device(c);
    otaup_simflash_stats st;
    runopt ro = { 512, 0, 0, 0, 0 };
    dig d;
    d_init(&d);
    ck_assert_int_eq(run_once(&d, s, c, c->s.bytes, c->s.len, &ro), 0);
    otaup_simflash_stats_get(s, &st);
    otaup_simflash_free(s);
    return st.read_ops;
}

static void scenarios(gcase *c)
{
    static const runopt plain = { 512, 0, 0, 0, 0 };
    static const runopt hooked = { 61, 0, 1, 0, 0 };
    static const runopt body = { 0, 1, 1, 0, 0 };
    uint64_t writes = total_writes(c), reads = total_reads(c), n;
    char scen[64];
    dig d;
    int k, rc;
    d_init(&d);
    d_bytes(&d, c->s.bytes, c->s.len);
    d_u64(&d, c->s.nsteps);
    golden(c->name, "delta", d.h);
    /* clean runs */
    {
        static const runopt *const ros[] = { &plain, &hooked, &body };
        static const char *const names[] = { "clean-512", "clean-61-hooks", "clean-body-hooks" };
        for (k = 0; k < 3; k++) {
            otaup_simflash *s = device(c);
            d_init(&d);
            rc = run_once(&d, s, c, c->s.bytes, c->s.len, ros[k]);
            ck_assert_msg(rc == 0, "%s %s: %d", c->name, names[k], rc);
            /* a second boot finds the update complete */
            rc = run_once(&d, s, c, c->s.bytes, c->s.len, ros[k]);
            digest_end(&d, s, c);
            golden(c->name, names[k], d.h);
            otaup_simflash_free(s);
        }
    }
    /* power cuts at spread points, plain and torn, then resumes */
    for (k = 0; k < 40; k++) {
        otaup_simflash *s = device(c);
        int torn = k & 1;
        n = 1 + (writes - 1) * (uint64_t)(k / 2) / 19u;
        d_init(&d);
        otaup_simflash_cut_after(s, n, torn);
        rc = run_once(&d, s, c, c->s.bytes, c->s.len, k % 4 == 2 ? &hooked : &plain);
        otaup_simflash_power_on(s);
        if (k % 3 == 0) {
            /* a second cut in the first resume */
            otaup_simflash_cut_after(s, 1 + n % 5, !torn);
            rc = run_once(&d, s, c, c->s.bytes, c->s.len, &plain);
        }
        rc = resume(&d, s, c, &plain, 3);
        ck_assert_msg(rc == 0, "%s cut %llu: %d", c->name, (unsigned long long)n, rc);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "cut-%d-%llu", torn, (unsigned long long)n);
        golden(c->name, scen, d.h);
        otaup_simflash_free(s);
    }
    /* failed program/erase, power on */
    for (k = 0; k < 4; k++) {
        otaup_simflash *s = device(c);
        n = 1 + (writes - 1) * (uint64_t)(2 * k + 1) / 8u;
        d_init(&d);
        otaup_simflash_fail_after(s, n, k & 1);
        rc = run_once(&d, s, c, c->s.bytes, c->s.len, &plain);
        rc = resume(&d, s, c, &plain, 3);
        ck_assert_msg(rc == 0, "%s fail %llu: %d", c->name, (unsigned long long)n, rc);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "fail-%d-%llu", k & 1, (unsigned long long)n);
        golden(c->name, scen, d.h);
        otaup_simflash_free(s);
    }
    /* faulty reads: a failed read and a wrong bit */
    for (k = 0; k < 120; k++) {
        otaup_simflash *s = device(c);
        int kind = k & 1 ? OTAUP_SIMFLASH_RFAULT_FLIP : OTAUP_SIMFLASH_RFAULT_FAIL;
        n = 1 + (reads - 1) * (uint64_t)(k / 2) / 59u;
        d_init(&d);
        otaup_simflash_read_fault(s, n, kind);
        rc = run_once(&d, s, c, c->s.bytes, c->s.len, &plain);
        rc = resume(&d, s, c, &plain, 3);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "read-%d-%llu", kind, (unsigned long long)n);
        golden(c->name, scen, d.h);
        otaup_simflash_free(s);
    }
    /* hostile: a byte changed, the stream cut short, a hook or the
     * progress callback failing; each followed by a clean resume */
    for (k = 0; k < 60; k++) {
        otaup_simflash *s = device(c);
        uint8_t *bad = malloc(c->s.len);
        size_t pos = (size_t)(((uint64_t)c->s.len * (uint64_t)(k * 37 % 60)) / 60u) + (size_t)k;
        memcpy(bad, c->s.bytes, c->s.len);
        if (pos >= c->s.len) {
            pos = c->s.len - 1;
        }
        bad[pos] ^= (uint8_t)(1u << (k % 8));
        if (k % 5 == 4) {
            bad[pos] = (uint8_t)(0x2B + k % 4); /* a reserved record type, or garbage */
        }
        d_init(&d);
        rc = run_once(&d, s, c, bad, c->s.len, k % 3 == 0 ? &hooked : (k % 3 == 1 ? &body : &plain));
        d_u64(&d, (uint64_t)(int64_t)rc);
        otaup_simflash_power_on(s);
        rc = resume(&d, s, c, &plain, 2);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "flip-%zu-%d", pos, k);
        golden(c->name, scen, d.h);
        free(bad);
        otaup_simflash_free(s);
    }
    for (k = 1; k <= 4; k++) {
        otaup_simflash *s = device(c);
        size_t cut = c->s.len * (size_t)k / 5u + 3u;
        d_init(&d);
        rc = run_once(&d, s, c, c->s.bytes, cut, k & 1 ? &plain : &body);
        rc = resume(&d, s, c, &plain, 2);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "trunc-%zu", cut);
        golden(c->name, scen, d.h);
        otaup_simflash_free(s);
    }
    for (k = 0; k < 6; k++) {
        otaup_simflash *s = device(c);
        runopt ro = hooked;
        if (k < 3) {
            ro.hook_fail_at = 1 + k * 40;
        } else {
            ro.progress_fail_at = 1 + (k - 3) * 5;
        }
        d_init(&d);
        rc = run_once(&d, s, c, c->s.bytes, c->s.len, &ro);
        rc = resume(&d, s, c, &plain, 2);
        digest_end(&d, s, c);
        snprintf(scen, sizeof scen, "cbfail-%d", k);
        golden(c->name, scen, d.h);
        otaup_simflash_free(s);
    }
}


/* ---- the journal alone -------------------------------------------------------- */

/* Operation k of a fixed sequence that uses every record kind and fills
 * the small sectors several times over (compactions). */
static int jop(otaup_journal *j, int k)
{
    switch (k % 13) {
    case 0:
        return otaup_journal_begin(j, 100u + (uint32_t)k, 0x1122334455667788ull ^ (uint64_t)k, (uint8_t)(k & 1),
                                   (uint8_t)((k >> 1) & 1));
    case 1:
    case 2:
    case 4:
        return otaup_journal_step_done(j, (uint32_t)k);
    case 3:
        return otaup_journal_scratch_window(j, (uint32_t)k, 0x1000u * (uint32_t)k, 4096, 0xA5A5A5A55A5A5A5Aull + (uint64_t)k);
    case 5:
        return otaup_journal_ponr(j);
    case 6:
        return otaup_journal_scratch_sector(j, (uint32_t)k, 0x2000u, 0x4000u, 0xDEADBEEFu ^ (uint32_t)k);
    case 7:
        return otaup_journal_restore(j, (uint8_t)(k % 3), (uint8_t)(1 + k % 3));
    case 8:
        return otaup_journal_step_done(j, (uint32_t)k);
    case 9:
        return otaup_journal_switch(j, (uint8_t)(k & 1));
    case 10:
        return otaup_journal_restore(j, (uint8_t)(k % 3), 0);
    case 11:
        return otaup_journal_end(j, k & 2 ? 0 : -(int32_t)k);
    default:
        return otaup_journal_step_done(j, (uint32_t)k);
    }
}

static void d_journal(dig *d, const otaup_journal *j)
{
    d_u64(d, j->st.session);
    d_u64(d, j->st.layout);
    d_u64(d, j->st.target_slot);
    d_u64(d, j->st.boot_slot);
    d_u64(d, j->st.ponr);
    d_u64(d, j->st.scratch);
    d_u64(d, j->st.restore);
    d_u64(d, j->st.restore_region);
    d_u64(d, j->st.session_id);
    d_u64(d, j->st.delta_id);
    d_u64(d, j->st.next_step);
    d_u64(d, j->st.scratch_step);
    d_u64(d, j->st.scratch_addr);
    d_u64(d, j->st.scratch_len);
    d_u64(d, j->st.scratch_hash);
    d_u64(d, (uint64_t)(int64_t)j->st.result);
    d_u64(d, j->st.records);
    d_u64(d, j->st.seq);
    d_u64(d, j->pos);
    d_u64(d, j->sec_addr);
    d_u64(d, j->sec_len);
    d_u64(d, j->slot);
}

/* Mount, then run ops [from, nops) until one fails; digest everything.
 * Returns the index of the op that failed, or nops. */
static int jrun(dig *d, otaup_simflash *sim, uint32_t addr, uint32_t len, int from, int nops)
{
    otaup_journal j;
    int k, rc = otaup_journal_mount(&j, otaup_simflash_flash(sim), addr, len);
    d_u64(d, (uint64_t)(int64_t)rc);
    d_journal(d, &j);
    if (rc != 0) {
        digest_log(d, sim);
        return from;
    }
    d_u64(d, (uint64_t)otaup_journal_boot_slot(otaup_simflash_flash(sim), addr, len));
    for (k = from; k < nops; k++) {
        rc = jop(&j, k);
        d_u64(d, (uint64_t)(int64_t)rc);
        d_journal(d, &j);
        if (rc != 0) {
            break;
        }
    }
    digest_log(d, sim);
    return k;
}

static void journal_cases(void)
{
    static const struct {
        const char *name;
        uint32_t sector, count, ws, jsecs;
    } g[] = {
        { "journal-512-w8", 512, 4, 8, 2 }, { "journal-256-w4-3", 256, 5, 4, 3 }, { "journal-2k-w64", 2048, 3, 64, 2 },
    };
    const int nops = 150;
    size_t gi;
    for (gi = 0; gi < sizeof g / sizeof g[0]; gi++) {
        otaup_simflash_options o;
        otaup_geometry geo;
        uint32_t addr, len = g[gi].sector * g[gi].jsecs;
        uint64_t writes = 0, n;
        char scen[64];
        dig d;
        int mode;
        otaup_geometry_uniform(&geo, 0x10000u, g[gi].sector, g[gi].count, g[gi].ws);
        addr = 0x10000u + g[gi].sector;
        otaup_simflash_options_init(&o);
        o.geo = geo;
        o.log_ops = 1;
        o.log_reads = 1;
        o.seed = 5;
        /* clean; and the write count for the cuts */
        {
            otaup_simflash *s = NULL;
            otaup_simflash_stats st;
            ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
            d_init(&d);
            ck_assert_int_eq(jrun(&d, s, addr, len, 0, nops), nops);
            jrun(&d, s, addr, len, nops, nops); /* mounted again: the same state */
            d_bytes(&d, otaup_simflash_data(s), otaup_simflash_size(s));
            golden(g[gi].name, "clean", d.h);
            otaup_simflash_stats_get(s, &st);
            writes = st.ops;
            otaup_simflash_free(s);
        }
        /* every write cut (plain, torn), failed (plain, torn); a faulty
         * read at a spread of the mounts' reads; each then resumed */
        for (mode = 0; mode < 5; mode++) {
            dig all;
            d_init(&all);
            for (n = 1; n <= (mode < 4 ? writes : 60u); n++) {
                otaup_simflash *s = NULL;
                int k;
                ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
                d_init(&d);
                if (mode < 2) {
                    otaup_simflash_cut_after(s, n, mode & 1);
                } else if (mode < 4) {
                    otaup_simflash_fail_after(s, n, mode & 1);
                }
                k = jrun(&d, s, addr, len, 0, nops / 2);
                otaup_simflash_power_on(s);
                if (mode == 4) {
                    otaup_simflash_read_fault(s, n, n & 1 ? OTAUP_SIMFLASH_RFAULT_FLIP : OTAUP_SIMFLASH_RFAULT_FAIL);
                }
                k = jrun(&d, s, addr, len, k, nops);
                otaup_simflash_power_on(s);
                jrun(&d, s, addr, len, k, nops);
                d_bytes(&d, otaup_simflash_data(s), otaup_simflash_size(s));
                d_u64(&all, d.h);
                otaup_simflash_free(s);
            }
            snprintf(scen, sizeof scen, "mode-%d", mode);
            golden(g[gi].name, scen, all.h);
        }
    }
}


/* ---- the protocol applier -------------------------------------------------------- */

/* The applier over the test server and its lossy link (tests/util/testlink.c):
 * every frame the terminal sends is digested with the flash's operations. */
typedef struct asend {
    int (*send)(void *ctx, const uint8_t *buf, size_t len);
    void *ctx;
    dig *d;
    otaup_simflash *sim;
} asend;

static int a_send(void *ctx, const uint8_t *buf, size_t len)
{
    asend *a = ctx;
    digest_log(a->d, a->sim); /* the flash operations before this frame */
    d_u64(a->d, 0x600u);
    d_u64(a->d, len);
    d_bytes(a->d, buf, len);
    return a->send(a->ctx, buf, len);
}

static void apply_cases(void)
{
    static const struct {
        const char *name;
        unsigned drop, corrupt, dup, reorder, disc_at, discs;
        uint64_t seed;
        int backup, ab;
    } sc[] = {
        { "clean", 0, 0, 0, 0, 0, 0, 1, 1, 0 },      { "clean-nobackup", 0, 0, 0, 0, 0, 0, 1, 0, 0 },
        { "clean-ab", 0, 0, 0, 0, 0, 0, 1, 1, 1 },   { "lossy-1", 10, 5, 8, 5, 0, 0, 1, 1, 0 },
        { "lossy-2", 10, 5, 8, 5, 0, 0, 2, 1, 0 },   { "lossy-3", 20, 10, 10, 10, 0, 0, 3, 1, 0 },
        { "lossy-4", 5, 20, 5, 0, 0, 0, 4, 0, 0 },   { "lossy-ab", 10, 5, 8, 5, 0, 0, 5, 1, 1 },
        { "disc-7", 0, 0, 0, 0, 7, 3, 1, 1, 0 },     { "disc-23", 0, 0, 0, 0, 23, 2, 2, 1, 0 },
        { "disc-lossy", 10, 5, 5, 5, 11, 4, 6, 1, 0 }, { "disc-ab", 0, 0, 0, 0, 9, 3, 7, 1, 1 },
    };
    const uint32_t S = 4096u;
    size_t k;
    for (k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        otaup_simflash_options o;
        otaup_simflash *sim = NULL;
        otaup_geometry geo;
        otaup_apply ap;
        otaup_apply_config cfg;
        uint8_t *flash0, *img, *work;
        uint32_t img_len = 5 * S - 900, tgt = sc[k].ab ? 5 * S : 0;
        tp_opts po;
        tp_stream st;
        tl_faults f;
        tl_report rep;
        tl_ctx *t;
        asend as;
        size_t wsz;
        dig d;
        int rc;
        /* slot 0..4 (A/B: slot B 5..9), scratch, journal (2), user data, updater */
        uint32_t at = sc[k].ab ? 10 * S : 5 * S;
        otaup_geometry_uniform(&geo, 0, S, 16, 8);
        otaup_simflash_options_init(&o);
        o.geo = geo;
        o.log_ops = 1;
        o.log_reads = 1;
        ck_assert_int_eq(otaup_simflash_new(&o, &sim), 0);
        flash0 = malloc(16 * S);
        memset(flash0, 0xFF, 16 * S);
        tp_make_image(flash0, img_len, 1 + k);
        tp_fill_random(flash0 + at + 3 * S, S, 4 + k);
        memset(flash0 + at + 4 * S, 0x5A, S);
        ck_assert_int_eq(otaup_simflash_load(sim, 0, flash0, 16 * S), 0);
        img = malloc(5 * S);
        tp_make_new(flash0, img, img_len, S, 2 + k);
        tp_opts_default(&po, &geo, tgt, 0, img_len, S);
        po.sync_every = 2;
        po.wbits = 11;
        po.compress = 1;
        po.deferred = (int)(k & 1);
        ck_assert_int_eq(tp_plan(&po, flash0, img, &st), 0);
        memset(&cfg, 0, sizeof cfg);
        cfg.flash = otaup_simflash_flash(sim);
        cfg.layout = sc[k].ab ? OTAUP_LAYOUT_AB : OTAUP_LAYOUT_INPLACE;
        cfg.window_bits = 11;
        cfg.max_ops = 64;
        cfg.slots[0].addr = 0;
        cfg.slots[0].len = 5 * S;
        if (sc[k].ab) {
            cfg.slots[1].addr = 5 * S;
            cfg.slots[1].len = 5 * S;
        }
        cfg.scratch.addr = at;
        cfg.scratch.len = S;
        cfg.journal.addr = at + S;
        cfg.journal.len = 2 * S;
        cfg.regions[0].id = 1;
        cfg.regions[0].flags = OTAUP_REGION_PERSONAL;
        cfg.regions[0].addr = at + 3 * S;
        cfg.regions[0].len = S;
        cfg.nregions = 1;
        cfg.updater.addr = at + 4 * S;
        cfg.updater.len = S;
        cfg.staging_size = S;
        cfg.max_frame = 1024;
        cfg.max_msg = 4096;
        cfg.id.terminal_id = "T-0001";
        cfg.id.model = "demo-m4";
        cfg.id.sw_version = "1.0.0";
        cfg.id.build_time = 1767225600u;
        cfg.retransmit_ms = 400;
        wsz = otaup_apply_work_size(1024, 4096, S, 64, 11);
        work = malloc(wsz);
        cfg.work = work;
        cfg.work_size = wsz;
        memset(&f, 0, sizeof f);
        f.drop_pct = sc[k].drop;
        f.corrupt_pct = sc[k].corrupt;
        f.dup_pct = sc[k].dup;
        f.reorder_pct = sc[k].reorder;
        f.disconnect_at = sc[k].disc_at;
        f.disconnects = sc[k].discs;
        f.seed = sc[k].seed;
        d_init(&d);
        t = tl_new(&f);
        tl_bind(t, &cfg);
        as.send = cfg.link.send;
        as.ctx = cfg.link.ctx;
        as.d = &d;
        as.sim = sim;
        cfg.link.send = a_send;
        cfg.link.ctx = &as;
        rc = otaup_apply_init(&ap, &cfg);
        d_u64(&d, (uint64_t)(int64_t)rc);
        ck_assert_int_eq(rc, 0);
        rc = tl_run(t, &ap, &st, 0x1122334455667788ull + k, sc[k].backup, &rep);
        d_u64(&d, (uint64_t)(int64_t)rc);
        d_u64(&d, (uint64_t)(int64_t)rep.result);
        d_u64(&d, rep.server_frames);
        d_u64(&d, rep.retransmits);
        d_u64(&d, rep.max_tries);
        d_u64(&d, rep.nacks);
        d_u64(&d, rep.connections);
        d_u64(&d, rep.resumes);
        d_u64(&d, rep.ticks);
        d_u64(&d, rep.backup_len);
        d_bytes(&d, rep.backup, rep.backup_len);
        d_u64(&d, otaup_apply_exec(&ap)->stats.steps_done);
        d_u64(&d, otaup_apply_exec(&ap)->stats.steps_replayed);
        digest_log(&d, sim);
        d_bytes(&d, otaup_simflash_data(sim), 16 * S);
        ck_assert_msg(rep.result == 0, "apply %s: %d", sc[k].name, rep.result);
        ck_assert_mem_eq(otaup_simflash_data(sim) + tgt, img, img_len);
        golden("apply", sc[k].name, d.h);
        tl_free(t);
        tp_stream_free(&st);
        otaup_simflash_free(sim);
        free(flash0);
        free(img);
        free(work);
    }
}


/* Hostile frames, as the applier's fuzz target builds them (its corpus,
 * then generated inputs): [type][flags][len u16 LE][payload] wrapped into
 * valid frames after a HELLO and a START, or raw link bytes when the first
 * byte is odd. Digests every frame the terminal sends, the flash's
 * operations and the flash. */
static int h_sink(void *ctx, const uint8_t *b, size_t n)
{
    dig *d = ctx;
    d_u64(d, 0x700u);
    d_u64(d, n);
    d_bytes(d, b, n);
    return (int)n;
}

static uint32_t h_clock(void *ctx)
{
    return ++*(uint32_t *)ctx;
}

static void h_frame(dig *d, otaup_apply *ap, uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *p, size_t n)
{
    static uint8_t fr[600];
    int len = otaup_frame_encode(type, flags, seq, p, n, fr, sizeof fr);
    if (len > 0) {
        d_u64(d, (uint64_t)(int64_t)otaup_apply_feed(ap, fr, (size_t)len));
    }
}

static uint64_t hostile_frames(const uint8_t *data, size_t size)
{
    enum { HS = 1024 };
    static uint8_t work[OTAUP_APPLY_WORK_SIZE(512, 512, 2 * HS, 8, 10)];
    static otaup_apply ap;
    otaup_apply_config c;
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    uint8_t img[12 * HS], msg[32];
    size_t i, pos;
    uint32_t seq = 0, clk = 0;
    otaup_msg m;
    dig d;
    d_init(&d);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, HS, 12, 4);
    o.log_ops = 1;
    o.log_reads = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &sim), 0);
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    memset(img + 6 * HS, 0xFF, 4 * HS);
    (void)otaup_simflash_load(sim, 0, img, sizeof img);
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = 10;
    c.max_ops = 8;
    c.slots[0].addr = 0;
    c.slots[0].len = 6 * HS;
    c.scratch.addr = 6 * HS;
    c.scratch.len = 2 * HS;
    c.journal.addr = 8 * HS;
    c.journal.len = 2 * HS;
    c.updater.addr = 11 * HS;
    c.updater.len = HS;
    c.regions[0].id = 1;
    c.regions[0].addr = 10 * HS;
    c.regions[0].len = HS;
    c.nregions = 1;
    c.staging_size = 2 * HS;
    c.max_frame = 512;
    c.max_msg = 512;
    c.link.send = h_sink;
    c.link.ctx = &d;
    c.now_ms = h_clock;
    c.clock_ctx = &clk;
    c.id.terminal_id = "fuzz";
    c.id.model = "m";
    c.id.sw_version = "1";
    c.work = work;
    c.work_size = sizeof work;
    d_u64(&d, (uint64_t)(int64_t)otaup_apply_init(&ap, &c));
    d_u64(&d, (uint64_t)(int64_t)otaup_apply_connect(&ap));
    if (size > 0 && (data[0] & 1)) {
        d_u64(&d, (uint64_t)(int64_t)otaup_apply_feed(&ap, data + 1, size - 1));
    } else {
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_HELLO;
        m.u.hello.role = 1;
        m.u.hello.proto_min = 1;
        m.u.hello.proto_max = 1;
        m.u.hello.max_frame = 512;
        m.u.hello.max_msg = 512;
        m.u.hello.window = 1;
        h_frame(&d, &ap, OTAUP_MSG_HELLO, 0, seq++, msg, (size_t)otaup_msg_encode(&m, msg, sizeof msg));
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_START;
        m.u.start.session = 1;
        h_frame(&d, &ap, OTAUP_MSG_START, 0, seq++, msg, (size_t)otaup_msg_encode(&m, msg, sizeof msg));
        pos = size > 0 ? 1 : 0;
        while (pos + 4 <= size) {
            uint8_t type = data[pos], flags = data[pos + 1];
            size_t len = (size_t)data[pos + 2] | ((size_t)data[pos + 3] << 8);
            uint32_t sq = seq;
            pos += 4;
            if (len > size - pos) {
                len = size - pos;
            }
            if (len > 496) {
                len = 496;
            }
            if (flags & 0x80) {
                sq = seq + (uint32_t)(int8_t)type % 3u - 1u;
            } else {
                seq++;
            }
            h_frame(&d, &ap, type, flags & 0x07, sq, data + pos, len);
            d_u64(&d, (uint64_t)(int64_t)otaup_apply_poll(&ap));
            pos += len;
        }
    }
    for (i = 0; i < 3; i++) {
        clk += 5000;
        d_u64(&d, (uint64_t)(int64_t)otaup_apply_poll(&ap));
    }
    digest_log(&d, sim);
    d_bytes(&d, otaup_simflash_data(sim), 12 * HS);
    otaup_simflash_free(sim);
    return d.h;
}

static void hostile_cases(void)
{
    static const char *const corpus[] = { "batch0", "batch1", "batch2", "batch3", "plain-restore-tag", "raw0" };
    static const uint8_t types[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
                                     0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
                                     0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2F, 0x30, 0x7F };
    size_t i;
    char name[64];
    for (i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        size_t n;
        uint8_t *data;
        snprintf(name, sizeof name, "../fuzz/corpus/applier/%s", corpus[i]);
        data = load(name, &n);
        golden("frames", corpus[i], hostile_frames(data, n));
        free(data);
    }
    for (i = 0; i < 64; i++) {
        uint8_t data[2048];
        size_t n = 1, f;
        uint64_t r = 0x9E3779B97F4A7C15ull * (i + 1);
        data[0] = (uint8_t)(i % 16 == 15 ? 1 : 0);
        for (f = 0; f < 24 && n + 4 + 64 <= sizeof data; f++) {
            size_t len, b;
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            len = (size_t)(r >> 40) % (f % 5 == 0 ? 64u : 24u);
            data[n] = types[(r >> 8) % sizeof types];
            data[n + 1] = (uint8_t)(((r >> 16) % 16 == 0 ? 0x80 : 0) | ((r >> 20) & 3u));
            data[n + 2] = (uint8_t)len;
            data[n + 3] = 0;
            n += 4;
            for (b = 0; b < len; b++) {
                r ^= r << 13;
                r ^= r >> 7;
                r ^= r << 17;
                data[n + b] = (uint8_t)(b < 8 && (r & 3u) ? (r >> 24) & 0x1Fu : r >> 32);
            }
            n += len;
        }
        snprintf(name, sizeof name, "gen-%zu", i);
        golden("frames", name, hostile_frames(data, n));
    }
}

/* ---- the cases ----------------------------------------------------------------- */


/* 4 x 4 KiB, 4 x 16 KiB, 4 x 4 KiB from 0, write size 4 */
static void mixed_geometry(otaup_geometry *g)
{
    memset(g, 0, sizeof *g);
    g->write_size = 4;
    g->erased = 0xFF;
    g->nruns = 3;
    g->runs[0].count = 4;
    g->runs[0].size = 4096;
    g->runs[1].count = 4;
    g->runs[1].size = 16384;
    g->runs[2].count = 4;
    g->runs[2].size = 4096;
}

static void planner_cases(void)
{
    size_t l1, l2;
    uint8_t *v1, *v2, *old, *img;
    otaup_geometry g;
    gcase c;
    uint32_t len;
    v1 = load("firmware/fw-v1.bin", &l1);
    v2 = load("firmware/fw-v2.bin", &l2);
    {
        uint32_t nslot = (uint32_t)((l1 > l2 ? l1 : l2) + 4095) / 4096;
        otaup_geometry_uniform(&g, 0, 4096, 2 * nslot + 4, 8);
        case_planner(&c, "fw-inplace", &g, OTAUP_LAYOUT_INPLACE, nslot * 4096, 4096, 4096, v1, l1, v2, l2, 16384);
        scenarios(&c);
        case_free(&c);
        case_planner(&c, "fw-ab", &g, OTAUP_LAYOUT_AB, nslot * 4096, 4096, 4096, v1, l1, v2, l2, 16384);
        scenarios(&c);
        case_free(&c);
        case_planner(&c, "fw-inplace-lowram", &g, OTAUP_LAYOUT_INPLACE, nslot * 4096, 4096, 4096, v1, l1, v2, l2,
                     12288);
        scenarios(&c);
        case_free(&c);
    }
    /* generated pair with in-place cycles */
    len = 6 * 4096 - 700;
    old = malloc(len);
    img = malloc(len);
    tp_make_image(old, len, 40);
    tp_make_new(old, img, len, 4096, 41);
    otaup_geometry_uniform(&g, 0x08000000u, 4096, 16, 4);
    case_planner(&c, "cycles-inplace", &g, OTAUP_LAYOUT_INPLACE, 6 * 4096, 4096, 4096, old, len, img, len, 16384);
    scenarios(&c);
    case_free(&c);
    /* non-uniform: 4 x 4 KiB, 4 x 16 KiB, 4 x 4 KiB; sectors larger than
     * the staging buffer (rebuilds through a 16 KiB scratch sector) */
    mixed_geometry(&g);
    free(old);
    free(img);
    len = 16384 + 2 * 16384 + 3000;
    old = malloc(len);
    img = malloc(len);
    tp_make_image(old, len, 50);
    tp_make_new(old, img, len, 4096, 51);
    case_planner(&c, "mixed-inplace", &g, OTAUP_LAYOUT_INPLACE, 16384 + 3 * 16384, 16384, 4096, old, len, img, len,
                 12288);
    scenarios(&c);
    case_free(&c);
    free(old);
    free(img);
    free(v1);
    free(v2);
}

static void record_kinds(void)
{
    otaup_geometry g;
    gcase c;
    otaup_geometry_uniform(&g, 0x08000000u, 4096, 2 * 5 + 8, 8);
    case_tp(&c, "tp-plain", &g, OTAUP_LAYOUT_INPLACE, 5 * 4096, 4096, 4096, 5 * 4096 - 1000, 4096, 0, 0, 0, 0, 1);
    scenarios(&c);
    case_free(&c);
    case_tp(&c, "tp-zdefer", &g, OTAUP_LAYOUT_INPLACE, 5 * 4096, 4096, 4096, 5 * 4096 - 1000, 4096, 1, 1, 2, 0, 3);
    scenarios(&c);
    case_free(&c);
    case_tp(&c, "tp-ab-z", &g, OTAUP_LAYOUT_AB, 5 * 4096, 4096, 4096, 5 * 4096 - 1000, 4096, 1, 0, 1, 1, 5);
    scenarios(&c);
    case_free(&c);
    /* ERASE records outside steps: an erased sector (skipped after two
     * reads) and a programmed one (erased), before and after the steps */
    case_tp(&c, "tp-ab-erase", &g, OTAUP_LAYOUT_AB, 5 * 4096, 4096, 4096, 5 * 4096 - 1000, 4096, 0, 0, 1, 0, 11);
    tp_fill_random(c.flash0 + 5 * 4096 + 2 * 4096, 300, 3);
    case_erases(&c, 0x08000000u + 5 * 4096, 5 * 4096, 0, 0);
    scenarios(&c);
    case_free(&c);
    case_tp(&c, "tp-erase-tail", &g, OTAUP_LAYOUT_INPLACE, 6 * 4096, 4096, 4096, 5 * 4096 - 1000, 4096, 1, 0, 2, 0,
            13);
    tp_fill_random(c.flash0 + 5 * 4096 + 100, 200, 4);
    case_erases(&c, 0x08000000u + 5 * 4096, 4096, 0x08000000u + 5 * 4096, 4096);
    scenarios(&c);
    case_free(&c);
    case_tp(&c, "tp-defer", &g, OTAUP_LAYOUT_INPLACE, 5 * 4096, 4096, 4096, 5 * 4096 - 2000, 4096, 0, 1, 3, 1, 7);
    scenarios(&c);
    case_free(&c);
    mixed_geometry(&g);
    case_tp(&c, "tp-mixed", &g, OTAUP_LAYOUT_INPLACE, 16384 + 3 * 16384, 16384, 4096, 16384 + 3 * 16384 - 5000, 4096,
            1, 0, 2, 0, 9);
    scenarios(&c);
    case_free(&c);
}

START_TEST(test_golden)
{
    golden_open();
    apply_cases();
    hostile_cases();
    journal_cases();
    planner_cases();
    record_kinds();
    golden_close();
    ck_assert_msg(g_mismatch == 0, "%d golden digests differ", g_mismatch);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("exec_golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_golden);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
