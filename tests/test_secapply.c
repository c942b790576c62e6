/*
 * The terminal's security, end to end on the real executor and the
 * simulated NOR flash, proven on the flash's operation log:
 *  - manifest attacks (flipped bytes, truncated or foreign signature,
 *    unsigned, rollback, another model, another source image, another
 *    geometry, a slot outside the windows, another header): refused with
 *    zero flash operations;
 *  - a tampered step, first or later in the stream, even with its window
 *    hash fixed up: refused before that step writes anything (the writes
 *    equal those a genuine run made before that step), and the genuine
 *    stream then resumes and completes;
 *  - stream attacks (chain record dropped, steps swapped, a segment from
 *    another signing, an injected ERASE, skipping ahead, truncation);
 *  - the target hash before the A/B switch; power cuts with resume.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/otaup.h"
#include "otaup/exec.h"
#include "otaup/features.h"
#include "otaup/journal.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"

#if OTAUP_HAVE_MBEDTLS
#include "util/sectest.h"
#include "util/testlink.h"
#include "util/testplan.h"

#define S 4096u
#define BASE 0x08000000u
#define MODEL "meter-7"
#define MAXSTEPS 256

static otaup_key *key_a, *key_b;
static otaup_sec_key trusted[1];

/* the world: device layout, images, the unsigned container */
typedef struct world {
    otaup_geometry geo;
    th_layout L;
    uint32_t img_len;
    uint8_t *before;    /* whole device content before the update */
    uint8_t *old_img, *new_img;
    uint8_t *container; /* unsigned delta */
    size_t container_len;
    uint32_t nsteps;
} world;

static void keys(void)
{
    if (key_a == NULL) {
        ck_assert_int_eq(otaup_key_generate(&key_a), 0);
        ck_assert_int_eq(otaup_key_generate(&key_b), 0);
        ck_assert_int_eq(otaup_key_public(key_a, trusted[0].pub), 0);
    }
}

/* in place: 24-sector slot, scratch, journal, user data; A/B: two slots */
static void world_make(world *w, uint8_t layout, uint64_t seed, uint32_t sync_every)
{
    uint32_t nsec = 24, size, at;
    tp_opts o;
    tp_stream ts;
    sectest_container_spec cs;
    memset(w, 0, sizeof *w);
    otaup_geometry_uniform(&w->geo, BASE, S, 2 * nsec + 8, 8);
    size = otaup_geometry_size(&w->geo);
    w->L.layout = layout;
    w->L.slot[0].addr = BASE;
    w->L.slot[0].len = nsec * S;
    at = BASE + nsec * S;
    if (layout == OTAUP_LAYOUT_AB) {
        w->L.slot[1].addr = at;
        w->L.slot[1].len = nsec * S;
        at += nsec * S;
    }
    w->L.scratch.addr = at;
    w->L.scratch.len = 2 * S;
    at += 2 * S;
    w->L.journal.addr = at;
    w->L.journal.len = 2 * S;
    at += 2 * S;
    w->L.user.addr = at;
    w->L.user.len = S;
    w->L.staging = S;
    w->L.max_ops = 64;
    w->L.wbits = 12;
    w->img_len = nsec * S - 1000;
    w->before = malloc(size);
    memset(w->before, 0xFF, size);
    tp_make_image(w->before, w->img_len, seed);
    tp_fill_random(w->before + (w->L.user.addr - BASE), S, seed + 7);
    w->old_img = malloc(w->img_len);
    memcpy(w->old_img, w->before, w->img_len);
    w->new_img = malloc(w->img_len);
    tp_make_new(w->old_img, w->new_img, w->img_len, S, seed + 1);

    tp_opts_default(&o, &w->geo, layout == OTAUP_LAYOUT_AB ? w->L.slot[1].addr : BASE, BASE, w->img_len, S);
    o.compress = 1;
    o.wbits = 12;
    o.sync_every = sync_every;
    o.deferred = 1;
    o.data_chunk = 512;
    o.verify = 1;
    ck_assert_int_eq(tp_plan(&o, w->before, w->new_img, &ts), 0);
    w->nsteps = ts.nsteps;
    ck_assert_uint_le(w->nsteps, MAXSTEPS);

    memset(&cs, 0, sizeof cs);
    cs.geo = w->geo;
    cs.layout = layout;
    cs.wbits = 12;
    cs.src_addr = BASE;
    cs.dst_addr = o.dst;
    cs.old_img = w->old_img;
    cs.old_len = w->img_len;
    cs.new_img = w->new_img;
    cs.new_len = w->img_len;
    cs.scratch_addr = w->L.scratch.addr;
    cs.scratch_len = w->L.scratch.len;
    cs.staging = S;
    cs.max_ops = 64;
    cs.nsteps = ts.nsteps;
    cs.body = ts.bytes;
    cs.body_len = ts.len;
    w->container = sectest_container(&cs, &w->container_len);
    tp_stream_free(&ts);
}

static void world_free(world *w)
{
    free(w->before);
    free(w->old_img);
    free(w->new_img);
    free(w->container);
}

/* sign the world's delta; tweak lets a test change the options */
static uint8_t *sign_with(const world *w, const otaup_key *k, uint32_t version, uint32_t counter, uint32_t policy,
                          const uint8_t *target_hash, size_t *len)
{
    otaup_sign_options so;
    uint8_t *out = NULL;
    otaup_sign_options_init(&so, OTAUP_SIGN_OPTIONS_VERSION);
    so.model = (const uint8_t *)MODEL;
    so.model_len = strlen(MODEL);
    so.target_version = version;
    so.counter = counter;
    so.policy = policy;
    so.old_img = w->old_img;
    so.old_len = w->img_len;
    if (target_hash != NULL) {
        so.target_hash = target_hash;
    } else {
        so.new_img = w->new_img;
        so.new_len = w->img_len;
    }
    ck_assert_int_eq(otaup_delta_sign(sectest_crypto(), k, w->container, w->container_len, &so, &out, len), 0);
    return out;
}

static otaup_simflash *device(const world *w)
{
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    otaup_simflash_options_init(&o);
    o.geo = w->geo;
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &sim), 0);
    ck_assert_int_eq(otaup_simflash_load(sim, BASE, w->before, otaup_geometry_size(&w->geo)), 0);
    otaup_simflash_log_clear(sim);
    return sim;
}

/* offset of the body: header, then sections up to END (no hash checks) */
static size_t body_offset(const uint8_t *d, size_t len)
{
    size_t off = (size_t)(d[10] | (d[11] << 8)); /* the header's size field */
    for (;;) {
        uint16_t tag;
        uint32_t slen;
        ck_assert_uint_le(off + 6, len);
        tag = (uint16_t)(d[off] | (d[off + 1] << 8));
        slen = (uint32_t)d[off + 2] | ((uint32_t)d[off + 3] << 8) | ((uint32_t)d[off + 4] << 16) |
               ((uint32_t)d[off + 5] << 24);
        off += 6 + slen;
        if (tag == 0) {
            return off;
        }
    }
}

/* terminal settings */
typedef struct term {
    const char *model;
    uint32_t version, counter;
    otaup_region window; /* len 0: the slot */
} term;

static const term term_default = { MODEL, 1, 5, { 0, 0 } };

/* instrumentation around the verifier's hooks */
typedef struct probe {
    otaup_sec *sec;
    otaup_simflash *sim;
    size_t writes_at_commit[MAXSTEPS]; /* write operations when step_commit(i) was called */
    int committed[MAXSTEPS];
    size_t writes_at_refusal;
    int refused;
} probe;

static void note_refusal(probe *p, int rc)
{
    if (rc != 0 && !p->refused) {
        p->refused = 1;
        p->writes_at_refusal = otaup_simflash_log_writes_since(p->sim, 0);
    }
}

static int p_record(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    probe *p = ctx;
    int rc = otaup_sec_hook_record(p->sec, type, body, len, part);
    note_refusal(p, rc);
    return rc;
}

static int p_inner(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    probe *p = ctx;
    int rc = otaup_sec_hook_inner(p->sec, type, body, len, part);
    note_refusal(p, rc);
    return rc;
}

static int p_step(void *ctx, const otaup_exec_step *st)
{
    probe *p = ctx;
    int rc;
    if (st->index < MAXSTEPS && !p->committed[st->index]) {
        p->writes_at_commit[st->index] = otaup_simflash_log_writes_since(p->sim, 0);
    }
    rc = otaup_sec_hook_step(p->sec, st);
    if (rc == 0 && st->index < MAXSTEPS) {
        p->committed[st->index] = 1;
    }
    note_refusal(p, rc);
    return rc;
}

static int p_final(void *ctx)
{
    probe *p = ctx;
    int rc = otaup_sec_hook_final(p->sec);
    note_refusal(p, rc);
    return rc;
}

/* what a run did */
typedef struct run {
    int rc;
    int stage;           /* 0: refused at START, 1: during the stream, 2: complete */
    int resumed;
    size_t writes;       /* write operations during the run */
    probe pr;
    otaup_sec sec;
} run;

/*
 * A terminal receives `delta` (header + sections = START, then the body):
 * verify the manifest, start or resume the session, feed the body from the
 * right restart point in chunks, finish.
 */
static void terminal(otaup_simflash *sim, const world *w, const term *t, const uint8_t *delta, size_t len,
                     size_t chunk, run *r)
{
    const otaup_flash *f = otaup_simflash_flash(sim);
    otaup_journal j;
    otaup_sec_config sc;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win, prot[1];
    size_t body = body_offset(delta, len), wsz, off, from;
    uint32_t idx[MAXSTEPS];
    size_t offs[MAXSTEPS], ns, i;
    void *work;
    uint8_t target = w->L.layout == OTAUP_LAYOUT_AB ? 1 : 0;
    int rc;

    memset(r, 0, sizeof *r);
    from = otaup_simflash_log_writes_since(sim, 0);
    ck_assert_int_eq(otaup_journal_mount(&j, f, w->L.journal.addr, w->L.journal.len), 0);
    win = w->L.slot[target];
    memset(&sc, 0, sizeof sc);
    sc.crypto = sectest_crypto();
    sc.flash = f;
    sc.keys = trusted;
    sc.nkeys = 1;
    sc.model = (const uint8_t *)t->model;
    sc.model_len = strlen(t->model);
    sc.installed_version = t->version;
    sc.installed_counter = t->counter;
    sc.windows = t->window.len != 0 ? &t->window : &win;
    sc.nwindows = 1;
    sc.journal = otaup_journal_get(&j);
    rc = otaup_sec_begin_delta(&r->sec, &sc, delta, body);
    if (rc != 0) {
        r->rc = rc;
        r->writes = otaup_simflash_log_writes_since(sim, from);
        return;
    }
    r->resumed = otaup_sec_resuming(&r->sec);

    memset(&c, 0, sizeof c);
    c.flash = f;
    c.journal = &j;
    c.layout = w->L.layout;
    c.window_bits = (uint8_t)w->L.wbits;
    c.windows = &win;
    c.nwindows = 1;
    prot[0] = w->L.user;
    c.protect = prot;
    c.nprotect = 1;
    c.scratch = w->L.scratch;
    if (w->L.layout == OTAUP_LAYOUT_INPLACE) {
        c.running = w->L.slot[0];
    }
    c.staging_size = w->L.staging;
    c.max_ops = w->L.max_ops;
    wsz = otaup_exec_work_size(w->L.staging, w->L.max_ops, w->L.wbits);
    work = malloc(wsz);
    c.work = work;
    c.work_size = wsz;
    r->pr.sec = &r->sec;
    r->pr.sim = sim;
    c.hooks.ctx = &r->pr;
    c.hooks.record = p_record;
    c.hooks.inner_record = p_inner;
    c.hooks.step_commit = p_step;
    c.hooks.final = p_final;
    r->stage = 1;
    rc = otaup_exec_init(&ex, &c);
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, otaup_sec_delta_id(&r->sec), target);
        ck_assert_int_eq(rc == 1, r->resumed);
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0) {
        uint32_t next = otaup_exec_next_step(&ex);
        ns = sectest_syncs(delta + body, len - body, idx, offs, MAXSTEPS);
        off = 0;
        for (i = 0; i < ns; i++) {
            if (idx[i] <= next) {
                off = offs[i];
            }
        }
        while (rc == 0 && off < len - body) {
            size_t n = len - body - off < chunk ? len - body - off : chunk;
            rc = otaup_exec_feed(&ex, delta + body + off, n);
            off += n;
        }
        if (rc == 0) {
            rc = otaup_exec_finish(&ex);
            if (rc == 0) {
                r->stage = 2;
            }
        }
    }
    free(work);
    r->rc = rc;
    r->writes = otaup_simflash_log_writes_since(sim, from);
}

static void assert_new_image(otaup_simflash *sim, const world *w)
{
    const uint8_t *d = otaup_simflash_data(sim);
    uint32_t at = w->L.layout == OTAUP_LAYOUT_AB ? w->L.slot[1].addr : BASE;
    ck_assert_mem_eq(d + (at - BASE), w->new_img, w->img_len);
    ck_assert_mem_eq(d + (w->L.user.addr - BASE), w->before + (w->L.user.addr - BASE), S);
}

/* ---- the genuine update -------------------------------------------------- */

START_TEST(test_genuine)
{
    static const size_t chunks[] = { 1, 7, 300, 1 << 20 };
    world w;
    size_t len, i;
    uint8_t *d;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 11, 4);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    for (i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        otaup_simflash *sim = device(&w);
        run r;
        terminal(sim, &w, &term_default, d, len, chunks[i], &r);
        ck_assert_msg(r.rc == 0, "chunk %zu: %s", chunks[i], otaup_errname(r.rc));
        ck_assert_int_eq(r.stage, 2);
        ck_assert_uint_eq(r.sec.committed, w.nsteps);
        ck_assert_uint_gt(r.writes, 0);
        assert_new_image(sim, &w);
        otaup_simflash_free(sim);
    }
    free(d);
    world_free(&w);
}
END_TEST

START_TEST(test_genuine_ab)
{
    world w;
    size_t len;
    uint8_t *d;
    otaup_simflash *sim;
    run r;
    keys();
    world_make(&w, OTAUP_LAYOUT_AB, 12, 3);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    sim = device(&w);
    terminal(sim, &w, &term_default, d, len, 512, &r);
    ck_assert_msg(r.rc == 0, "%s", otaup_errname(r.rc));
    assert_new_image(sim, &w);
    ck_assert_int_eq(otaup_journal_boot_slot(otaup_simflash_flash(sim), w.L.journal.addr, w.L.journal.len), 1);
    otaup_simflash_free(sim);
    free(d);
    world_free(&w);
}
END_TEST

/* ---- manifest attacks: zero flash operations ---------------------------- */

static void expect_refused(const world *w, const term *t, const uint8_t *d, size_t len, int want)
{
    otaup_simflash *sim = device(w);
    run r;
    terminal(sim, w, t, d, len, 4096, &r);
    ck_assert_msg(r.rc < 0, "accepted (want %s)", otaup_errname(want));
    if (want != 0) {
        ck_assert_msg(r.rc == want, "got %s, want %s", otaup_errname(r.rc), otaup_errname(want));
    }
    ck_assert_int_eq(r.stage, 0);
    ck_assert_uint_eq(r.writes, 0);
    ck_assert_mem_eq(otaup_simflash_data(sim), w->before, otaup_geometry_size(&w->geo));
    otaup_simflash_free(sim);
}

/* the MANIFEST section: offset and length of its value */
static void manifest_at(const uint8_t *d, size_t *off, size_t *len)
{
    const uint8_t *mf;
    size_t ml;
    ck_assert_int_eq(otaup_delta_find_manifest(d, body_offset(d, 1u << 30), &mf, &ml), 0);
    *off = (size_t)(mf - d);
    *len = ml;
}

START_TEST(test_manifest_every_flip)
{
    world w;
    size_t len, mo, ml, i;
    uint8_t *d, *x;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 21, 4);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    manifest_at(d, &mo, &ml);
    x = malloc(len);
    for (i = 0; i < ml; i++) {
        memcpy(x, d, len);
        x[mo + i] ^= (uint8_t)(1u << (i % 8));
        expect_refused(&w, &term_default, x, len, 0);
    }
    /* and the header the manifest names */
    for (i = 0; i < (size_t)(d[10] | (d[11] << 8)); i += 13) {
        memcpy(x, d, len);
        x[i] ^= 0x10;
        expect_refused(&w, &term_default, x, len, 0);
    }
    free(x);
    free(d);
    world_free(&w);
}
END_TEST

/* rebuild a delta with its MANIFEST section value replaced */
static uint8_t *replace_manifest(const uint8_t *d, size_t len, const uint8_t *mf, size_t ml, size_t *out_len)
{
    size_t mo, old_ml, n;
    uint8_t *x;
    manifest_at(d, &mo, &old_ml);
    n = len - old_ml + ml;
    x = malloc(n);
    memcpy(x, d, mo);
    x[mo - 4] = (uint8_t)ml;
    x[mo - 3] = (uint8_t)(ml >> 8);
    x[mo - 2] = (uint8_t)(ml >> 16);
    x[mo - 1] = (uint8_t)(ml >> 24);
    memcpy(x + mo, mf, ml);
    memcpy(x + mo + ml, d + mo + old_ml, len - mo - old_ml);
    *out_len = n;
    return x;
}

START_TEST(test_manifest_attacks)
{
    world w, w2;
    size_t len, l2, mo, ml, k;
    uint8_t *d, *x, *y;
    term t;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 31, 4);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    manifest_at(d, &mo, &ml);

    /* truncated signature: the section shortened, with and without the length fixed */
    for (k = 1; k < 73; k += k < 49 ? 24 : 23) {
        uint8_t mf[1024];
        memcpy(mf, d + mo, ml - k);
        x = replace_manifest(d, len, mf, ml - k, &l2);
        expect_refused(&w, &term_default, x, l2, OTAUP_E_MANIFEST);
        free(x);
        mf[ml - 73 - 2] = (uint8_t)(73 - k); /* signature area length */
        x = replace_manifest(d, len, mf, ml - k, &l2);
        expect_refused(&w, &term_default, x, l2, OTAUP_E_MANIFEST);
        free(x);
    }
    /* no signature at all */
    {
        uint8_t mf[1024];
        memcpy(mf, d + mo, ml - 73);
        mf[ml - 73 - 2] = 0;
        x = replace_manifest(d, len, mf, ml - 73, &l2);
        expect_refused(&w, &term_default, x, l2, OTAUP_E_UNSIGNED);
        free(x);
    }
    /* no manifest at all: the unsigned delta */
    expect_refused(&w, &term_default, w.container, w.container_len, OTAUP_E_UNSIGNED);

    /* a wrong key */
    x = sign_with(&w, key_b, 2, 5, 0, NULL, &l2);
    expect_refused(&w, &term_default, x, l2, OTAUP_E_KEY);
    free(x);

    /* a genuine manifest replayed to go back: an older security counter ... */
    x = sign_with(&w, key_a, 2, 4, 0, NULL, &l2);
    expect_refused(&w, &term_default, x, l2, OTAUP_E_ROLLBACK);
    free(x);
    /* ... which no policy overrides */
    x = sign_with(&w, key_a, 2, 4, OTAUP_POLICY_ALLOW_DOWNGRADE, NULL, &l2);
    expect_refused(&w, &term_default, x, l2, OTAUP_E_ROLLBACK);
    free(x);
    /* an older version with the same counter: refused unless the signed policy allows it */
    t = term_default;
    t.version = 3;
    expect_refused(&w, &t, d, len, OTAUP_E_OLDER);
    x = sign_with(&w, key_a, 2, 5, OTAUP_POLICY_ALLOW_DOWNGRADE, NULL, &l2);
    {
        otaup_simflash *sim = device(&w);
        run r;
        terminal(sim, &w, &t, x, l2, 4096, &r);
        ck_assert_msg(r.rc == 0, "%s", otaup_errname(r.rc));
        assert_new_image(sim, &w);
        otaup_simflash_free(sim);
    }
    free(x);

    /* another model */
    t = term_default;
    t.model = "meter-8";
    expect_refused(&w, &t, d, len, OTAUP_E_MODEL);
    t.model = "meter-77";
    expect_refused(&w, &t, d, len, OTAUP_E_MODEL);

    /* a slot outside the terminal's windows */
    t = term_default;
    t.window.addr = BASE;
    t.window.len = 8 * S;
    expect_refused(&w, &t, d, len, OTAUP_E_WINDOW);

    /* another source image installed */
    world_make(&w2, OTAUP_LAYOUT_INPLACE, 32, 4);
    expect_refused(&w2, &term_default, d, len, OTAUP_E_SOURCE_MISMATCH);

    /* another header under the genuine manifest */
    y = sign_with(&w2, key_a, 2, 5, 0, NULL, &l2);
    x = malloc(len);
    memcpy(x, d, len);
    ck_assert_uint_eq(y[10] | (y[11] << 8), d[10] | (d[11] << 8)); /* same header size */
    memcpy(x, y, (size_t)(y[10] | (y[11] << 8)));
    expect_refused(&w, &term_default, x, len, OTAUP_E_MANIFEST);
    free(x);
    free(y);
    world_free(&w2);

    /* another flash geometry (write size 4 instead of 8) */
    {
        world w3 = w;
        otaup_geometry_uniform(&w3.geo, BASE, S, 2 * 24 + 8, 4);
        expect_refused(&w3, &term_default, d, len, OTAUP_E_GEOMETRY);
    }
    free(d);
    world_free(&w);
}
END_TEST

/* ---- stream surgery ------------------------------------------------------ */

typedef struct segs {
    size_t n;
    uint32_t first[MAXSTEPS];
    size_t start[MAXSTEPS], end[MAXSTEPS]; /* body offsets: SYNC .. last DATA */
} segs;

static void find_segs(const uint8_t *body, size_t len, segs *sg)
{
    size_t off = 0;
    memset(sg, 0, sizeof *sg);
    while (off < len) {
        otaup_record r;
        int n = otaup_record_decode(body + off, len - off, &r);
        ck_assert_int_gt(n, 0);
        if (r.type == OTAUP_REC_SYNC) {
            sg->first[sg->n] = r.index;
            sg->start[sg->n] = off;
            sg->end[sg->n] = off + (size_t)n;
            sg->n++;
        } else if (r.type == OTAUP_REC_DATA) {
            sg->end[sg->n - 1] = off + (size_t)n;
        }
        off += (size_t)n;
    }
}

static uint8_t *inflate_seg(const uint8_t *body, size_t start, size_t end, size_t *out_len)
{
    size_t off = start, cap = 1 << 20;
    uint8_t *out = malloc(cap);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(inflateInit2(&zs, -12), Z_OK);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    while (off < end) {
        otaup_record r;
        int n = otaup_record_decode(body + off, end - off, &r);
        if (r.type == OTAUP_REC_DATA) {
            zs.next_in = (Bytef *)(uintptr_t)r.data;
            zs.avail_in = r.data_len;
            inflate(&zs, Z_NO_FLUSH);
        }
        off += (size_t)n;
    }
    *out_len = cap - zs.avail_out;
    inflateEnd(&zs);
    return out;
}

/* SYNC{first} + DATA records of `inner` */
static size_t deflate_seg(uint32_t first, const uint8_t *inner, size_t len, uint8_t *out)
{
    size_t pos = 0, cap = len + 1024, off;
    uint8_t *c = malloc(cap), v[5];
    z_stream zs;
    size_t vn = 0, clen;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, -12, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)inner;
    zs.avail_in = (uInt)len;
    zs.next_out = c;
    zs.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    clen = cap - zs.avail_out;
    deflateEnd(&zs);
    sectest_put_varint(v, &vn, first);
    sectest_put_record(out, &pos, OTAUP_REC_SYNC, v, vn);
    for (off = 0; off < clen; off += 500) {
        uint8_t tmp[501];
        size_t n = clen - off < 500 ? clen - off : 500;
        tmp[0] = off == 0 ? OTAUP_DATA_RESET : 0;
        memcpy(tmp + 1, c + off, n);
        sectest_put_record(out, &pos, OTAUP_REC_DATA, tmp, n + 1);
    }
    free(c);
    return pos;
}

/* the inner records of step s: [*a, *b) covers STEP{s} .. END{s} inclusive */
static void find_step(const uint8_t *inner, size_t len, uint32_t s, size_t *a, size_t *b)
{
    size_t off = 0;
    *a = *b = 0;
    while (off < len) {
        otaup_record r;
        int n;
        uint32_t bl;
        size_t k;
        if (inner[off] == OTAUP_REC_CHAIN) {
            k = 1;
            bl = inner[off + 1];
            off += 2 + bl;
            continue;
        }
        n = otaup_record_decode(inner + off, len - off, &r);
        ck_assert_int_gt(n, 0);
        (void)k;
        if (r.type == OTAUP_REC_STEP && r.index == s) {
            *a = off;
        }
        if (r.type == OTAUP_REC_END && r.index == s) {
            *b = off + (size_t)n;
            return;
        }
        off += (size_t)n;
    }
    ck_abort_msg("step %u not found", s);
}

typedef uint8_t *(*edit_fn)(const uint8_t *inner, size_t len, uint32_t s, size_t *out_len, const void *arg);

/* a delta whose segment holding step s was rewritten by fn (header and manifest untouched) */
static uint8_t *edit_step(const uint8_t *d, size_t len, uint32_t s, edit_fn fn, const void *arg, size_t *out_len)
{
    size_t body = body_offset(d, len), blen = len - body, il, nl, pos, i;
    segs sg;
    uint8_t *inner, *ni, *x;
    find_segs(d + body, blen, &sg);
    for (i = sg.n; i-- > 0;) {
        if (sg.first[i] <= s) {
            break;
        }
    }
    inner = inflate_seg(d + body, sg.start[i], sg.end[i], &il);
    ni = fn(inner, il, s, &nl, arg);
    x = malloc(len + nl + 4096);
    memcpy(x, d, body + sg.start[i]);
    pos = body + sg.start[i];
    pos += deflate_seg(sg.first[i], ni, nl, x + pos);
    memcpy(x + pos, d + body + sg.end[i], blen - sg.end[i]);
    pos += blen - sg.end[i];
    free(inner);
    free(ni);
    *out_len = pos;
    return x;
}

/*
 * The attacker's step: its own bytes for the whole window, with a STEP hash
 * that matches them (the executor's staging check passes), the genuine
 * ERASE and CHAIN records kept.
 */
static uint8_t *forge_step(const uint8_t *inner, size_t len, uint32_t s, size_t *out_len, const void *arg)
{
    size_t a, b, off, pos = 0;
    uint8_t *out = malloc(len + 2 * S + 64), body[S + 32];
    otaup_record step;
    (void)arg;
    find_step(inner, len, s, &a, &b);
    memcpy(out, inner, a);
    pos = a;
    for (off = a; off < b;) {
        otaup_record r;
        int n;
        if (inner[off] == OTAUP_REC_CHAIN) {
            size_t k = 2u + inner[off + 1];
            memcpy(out + pos, inner + off, k);
            pos += k;
            off += k;
            continue;
        }
        n = otaup_record_decode(inner + off, b - off, &r);
        ck_assert_int_gt(n, 0);
        if (r.type == OTAUP_REC_STEP) {
            uint8_t evil[S];
            uint64_t h;
            int i, k;
            step = r;
            memset(evil, 0xE5, sizeof evil);
            memcpy(evil, "attacker code", 13);
            h = otaup_hash64(evil, r.len);
            step.flags = OTAUP_STEP_HASH;
            step.hash_len = 8;
            for (i = 0; i < 8; i++) {
                step.hash[i] = (uint8_t)(h >> (8 * i));
            }
            k = otaup_record_encode(&step, out + pos, 64);
            ck_assert_int_gt(k, 0);
            pos += (size_t)k;
            memset(&r, 0, sizeof r);
            r.type = OTAUP_REC_WRITE;
            r.addr = step.addr;
            r.len = step.len;
            r.enc = OTAUP_ENC_INLINE;
            r.data = evil;
            r.data_len = step.len;
            k = otaup_record_encode(&r, out + pos, S + 64);
            ck_assert_int_gt(k, 0);
            pos += (size_t)k;
        } else if (r.type == OTAUP_REC_ERASE || r.type == OTAUP_REC_END) {
            memcpy(out + pos, inner + off, (size_t)n);
            pos += (size_t)n;
        }
        off += (size_t)n;
    }
    (void)body;
    memcpy(out + pos, inner + b, len - b);
    pos += len - b;
    *out_len = pos;
    return out;
}

/* one byte of the step's last BLOB / WRITE / DIFF payload flipped (window hash not fixed) */
static uint8_t *flip_payload(const uint8_t *inner, size_t len, uint32_t s, size_t *out_len, const void *arg)
{
    size_t a, b, off, hit = 0;
    uint8_t *out = malloc(len);
    (void)arg;
    memcpy(out, inner, len);
    find_step(inner, len, s, &a, &b);
    for (off = a; off < b;) {
        otaup_record r;
        int n;
        if (inner[off] == OTAUP_REC_CHAIN) {
            off += 2u + inner[off + 1];
            continue;
        }
        n = otaup_record_decode(inner + off, b - off, &r);
        if (r.data_len > 0 && (r.type == OTAUP_REC_BLOB || r.type == OTAUP_REC_WRITE || r.type == OTAUP_REC_DIFF)) {
            hit = (size_t)(r.data - inner) + r.data_len / 2;
        }
        off += (size_t)n;
    }
    if (hit == 0) {
        /* a step made only of copies and fills: move a COPY/FILL by changing its length byte */
        hit = a + 3;
    }
    out[hit] ^= 0x01;
    *out_len = len;
    return out;
}

/* the CHAIN record of step s removed */
static uint8_t *drop_chain(const uint8_t *inner, size_t len, uint32_t s, size_t *out_len, const void *arg)
{
    size_t a, b, off, pos = 0;
    uint8_t *out = malloc(len);
    (void)arg;
    find_step(inner, len, s, &a, &b);
    memcpy(out, inner, a);
    pos = a;
    for (off = a; off < b;) {
        size_t k;
        if (inner[off] == OTAUP_REC_CHAIN) {
            off += 2u + inner[off + 1];
            continue;
        }
        {
            otaup_record r;
            int n = otaup_record_decode(inner + off, b - off, &r);
            k = (size_t)n;
        }
        memcpy(out + pos, inner + off, k);
        pos += k;
        off += k;
    }
    memcpy(out + pos, inner + b, len - b);
    pos += len - b;
    *out_len = pos;
    return out;
}

/* steps s and s+1 swapped */
static uint8_t *swap_steps(const uint8_t *inner, size_t len, uint32_t s, size_t *out_len, const void *arg)
{
    size_t a, b, c, e, pos;
    uint8_t *out = malloc(len);
    (void)arg;
    find_step(inner, len, s, &a, &b);
    find_step(inner, len, s + 1, &c, &e);
    ck_assert_uint_eq(b, c);
    memcpy(out, inner, a);
    pos = a;
    memcpy(out + pos, inner + c, e - c);
    pos += e - c;
    memcpy(out + pos, inner + a, b - a);
    pos += b - a;
    memcpy(out + pos, inner + e, len - e);
    *out_len = len;
    return out;
}

/*
 * A tampered stream is refused at step s before that step writes anything:
 * the writes equal those of a genuine run up to step s's commit point. The
 * genuine stream then resumes and completes.
 */
static void tamper_case(const world *w, const uint8_t *d, size_t len, const uint8_t *bad, size_t bad_len,
                        uint32_t s, const run *genuine)
{
    otaup_simflash *sim = device(w);
    run r;
    terminal(sim, w, &term_default, bad, bad_len, 333, &r);
    ck_assert_msg(r.rc == OTAUP_E_CHAIN, "step %u: tampered stream gave %s", s, otaup_errname(r.rc));
    ck_assert_int_eq(r.stage, 1);
    ck_assert_int_eq(r.pr.refused, 1);
    ck_assert_msg(r.pr.writes_at_refusal == genuine->pr.writes_at_commit[s],
                  "step %u: %zu writes at the refusal, genuine run had %zu before the step", s,
                  r.pr.writes_at_refusal, genuine->pr.writes_at_commit[s]);
    ck_assert_uint_eq(r.writes, r.pr.writes_at_refusal); /* nothing after the refusal either */
    ck_assert_int_eq(r.pr.committed[s], 0);
    /* the genuine stream resumes from here and completes */
    terminal(sim, w, &term_default, d, len, 333, &r);
    ck_assert_msg(r.rc == 0, "step %u: resume gave %s", s, otaup_errname(r.rc));
    ck_assert_int_eq(r.resumed, s > 0 || genuine->pr.writes_at_commit[0] > 0);
    assert_new_image(sim, w);
    otaup_simflash_free(sim);
}

START_TEST(test_tampered_steps)
{
    world w;
    size_t len, bl;
    uint8_t *d, *bad;
    otaup_simflash *sim;
    run genuine;
    uint32_t picks[5], i;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 41, 5);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    sim = device(&w);
    terminal(sim, &w, &term_default, d, len, 333, &genuine);
    ck_assert_int_eq(genuine.rc, 0);
    otaup_simflash_free(sim);
    ck_assert_uint_ge(w.nsteps, 12);
    picks[0] = 0;
    picks[1] = 1;
    picks[2] = 5; /* first step of the second segment */
    picks[3] = w.nsteps / 2;
    picks[4] = w.nsteps - 1;
    for (i = 0; i < 5; i++) {
        bad = edit_step(d, len, picks[i], forge_step, NULL, &bl);
        tamper_case(&w, d, len, bad, bl, picks[i], &genuine);
        free(bad);
        bad = edit_step(d, len, picks[i], flip_payload, NULL, &bl);
        tamper_case(&w, d, len, bad, bl, picks[i], &genuine);
        free(bad);
        bad = edit_step(d, len, picks[i], drop_chain, NULL, &bl);
        tamper_case(&w, d, len, bad, bl, picks[i], &genuine);
        free(bad);
    }
    /* two steps swapped inside a segment: refused at the first of them */
    bad = edit_step(d, len, 1, swap_steps, NULL, &bl);
    tamper_case(&w, d, len, bad, bl, 1, &genuine);
    free(bad);
    free(d);
    world_free(&w);
}
END_TEST

START_TEST(test_stream_attacks)
{
    world w;
    size_t len, len2, body, body2, bl, pos;
    uint8_t *d, *d2, *bad;
    otaup_simflash *sim;
    run genuine, r;
    segs sg, sg2;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 51, 4);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    d2 = sign_with(&w, key_a, 2, 5, 0, NULL, &len2); /* the same update signed again: another salt */
    sim = device(&w);
    terminal(sim, &w, &term_default, d, len, 333, &genuine);
    ck_assert_int_eq(genuine.rc, 0);
    otaup_simflash_free(sim);
    body = body_offset(d, len);
    body2 = body_offset(d2, len2);
    find_segs(d + body, len - body, &sg);
    find_segs(d2 + body2, len2 - body2, &sg2);
    ck_assert_uint_ge(sg.n, 3);

    /* segment 1 taken from the other signing: same records, other tags */
    bad = malloc(len + len2);
    memcpy(bad, d, body + sg.start[1]);
    pos = body + sg.start[1];
    memcpy(bad + pos, d2 + body2 + sg2.start[1], sg2.end[1] - sg2.start[1]);
    pos += sg2.end[1] - sg2.start[1];
    memcpy(bad + pos, d + body + sg.end[1], len - body - sg.end[1]);
    pos += len - body - sg.end[1];
    tamper_case(&w, d, len, bad, pos, sg.first[1], &genuine);
    free(bad);

    /* an ERASE injected after a SYNC: refused before it erases */
    bad = malloc(len + 32);
    pos = body + sg.start[2];
    memcpy(bad, d, pos);
    {
        uint8_t f[10];
        size_t fn = 0;
        sectest_put_varint(f, &fn, BASE);
        sectest_put_varint(f, &fn, S);
        sectest_put_record(bad, &pos, OTAUP_REC_ERASE, f, fn);
    }
    memcpy(bad + pos, d + body + sg.start[2], len - body - sg.start[2]);
    bl = pos + len - body - sg.start[2];
    tamper_case(&w, d, len, bad, bl, sg.first[2], &genuine);
    free(bad);

    /* a whole segment left out: the stream skips ahead */
    bad = malloc(len);
    memcpy(bad, d, body + sg.start[1]);
    pos = body + sg.start[1];
    memcpy(bad + pos, d + body + sg.end[1], len - body - sg.end[1]);
    pos += len - body - sg.end[1];
    tamper_case(&w, d, len, bad, pos, sg.first[1], &genuine);
    free(bad);

    /* the stream cut after segment 1: every step done runs, no commit */
    sim = device(&w);
    terminal(sim, &w, &term_default, d, body + sg.end[1], 333, &r);
    ck_assert_int_lt(r.rc, 0);
    ck_assert_int_ne(r.stage, 2);
    {
        otaup_journal j;
        ck_assert_int_eq(otaup_journal_mount(&j, otaup_simflash_flash(sim), w.L.journal.addr, w.L.journal.len), 0);
        ck_assert_uint_eq(otaup_journal_get(&j)->session, OTAUP_JS_ACTIVE);
        ck_assert_uint_eq(otaup_journal_get(&j)->next_step, sg.first[2]);
    }
    terminal(sim, &w, &term_default, d, len, 333, &r);
    ck_assert_int_eq(r.rc, 0);
    assert_new_image(sim, &w);
    otaup_simflash_free(sim);
    free(d2);
    free(d);
    world_free(&w);
}
END_TEST

/* ---- the target hash before the switch ------------------------------------ */

START_TEST(test_target_hash_before_switch)
{
    world w;
    size_t len;
    uint8_t *d, wrong[32];
    otaup_simflash *sim;
    run r;
    keys();
    world_make(&w, OTAUP_LAYOUT_AB, 61, 4);
    /* a manifest that signs another target: every step verifies, the image does not */
    memset(wrong, 0x5A, sizeof wrong);
    d = sign_with(&w, key_a, 2, 5, 0, wrong, &len);
    sim = device(&w);
    terminal(sim, &w, &term_default, d, len, 4096, &r);
    ck_assert_int_eq(r.rc, OTAUP_E_TARGET_MISMATCH);
    ck_assert_uint_eq(r.sec.committed, w.nsteps);
    ck_assert_int_eq(otaup_journal_boot_slot(otaup_simflash_flash(sim), w.L.journal.addr, w.L.journal.len), 0);
    otaup_simflash_free(sim);
    free(d);
    world_free(&w);
}
END_TEST

/* ---- power cuts: a resumed session skips the source check, nothing else ---- */

START_TEST(test_power_cuts)
{
    world w;
    size_t len, total, cut, cuts = 0;
    uint8_t *d;
    otaup_simflash *sim;
    run r;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 71, 3);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    sim = device(&w);
    terminal(sim, &w, &term_default, d, len, 4096, &r);
    ck_assert_int_eq(r.rc, 0);
    total = r.writes;
    otaup_simflash_free(sim);
    for (cut = 1; cut < total; cut += total / 23 + 1) {
        int torn = (int)(cut & 1);
        sim = device(&w);
        otaup_simflash_cut_after(sim, cut, torn);
        terminal(sim, &w, &term_default, d, len, 4096, &r);
        ck_assert_int_eq(r.rc, OTAUP_E_POWER_CUT);
        otaup_simflash_power_on(sim);
        terminal(sim, &w, &term_default, d, len, 4096, &r);
        ck_assert_msg(r.rc == 0, "cut %zu: %s", cut, otaup_errname(r.rc));
        assert_new_image(sim, &w);
        otaup_simflash_free(sim);
        cuts++;
    }
    ck_assert_uint_ge(cuts, 20);
    free(d);
    world_free(&w);
}
END_TEST

/* a different signed update while one is half done: not a resume, refused */
START_TEST(test_other_update_mid_session)
{
    world w, w2;
    size_t len, len2;
    uint8_t *d, *d2;
    otaup_simflash *sim;
    run r;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 81, 4);
    world_make(&w2, OTAUP_LAYOUT_INPLACE, 81, 4);
    tp_make_new(w2.old_img, w2.new_img, w2.img_len, S, 999); /* another target from the same source */
    free(w2.container);
    {
        tp_opts o;
        tp_stream ts;
        sectest_container_spec cs;
        tp_opts_default(&o, &w2.geo, BASE, BASE, w2.img_len, S);
        o.compress = 1;
        o.wbits = 12;
        o.sync_every = 4;
        o.deferred = 1;
        o.data_chunk = 512;
        ck_assert_int_eq(tp_plan(&o, w2.before, w2.new_img, &ts), 0);
        memset(&cs, 0, sizeof cs);
        cs.geo = w2.geo;
        cs.layout = OTAUP_LAYOUT_INPLACE;
        cs.wbits = 12;
        cs.src_addr = BASE;
        cs.dst_addr = BASE;
        cs.old_img = w2.old_img;
        cs.old_len = w2.img_len;
        cs.new_img = w2.new_img;
        cs.new_len = w2.img_len;
        cs.scratch_addr = w2.L.scratch.addr;
        cs.scratch_len = w2.L.scratch.len;
        cs.staging = S;
        cs.max_ops = 64;
        cs.nsteps = ts.nsteps;
        cs.body = ts.bytes;
        cs.body_len = ts.len;
        w2.container = sectest_container(&cs, &w2.container_len);
        tp_stream_free(&ts);
    }
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    d2 = sign_with(&w2, key_a, 2, 5, 0, NULL, &len2);
    sim = device(&w);
    otaup_simflash_cut_after(sim, 40, 0);
    terminal(sim, &w, &term_default, d, len, 4096, &r);
    ck_assert_int_eq(r.rc, OTAUP_E_POWER_CUT);
    otaup_simflash_power_on(sim);
    /* the other update's source no longer matches the half-rewritten slot */
    terminal(sim, &w, &term_default, d2, len2, 4096, &r);
    ck_assert_int_eq(r.rc, OTAUP_E_SOURCE_MISMATCH);
    ck_assert_uint_eq(r.writes, 0);
    terminal(sim, &w, &term_default, d, len, 4096, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(r.resumed, 1);
    assert_new_image(sim, &w);
    otaup_simflash_free(sim);
    free(d);
    free(d2);
    world_free(&w);
    world_free(&w2);
}
END_TEST

/* the manifest buffer changed after START (e.g. reused for frames): the next SYNC refuses */
START_TEST(test_manifest_buffer_reused)
{
    world w;
    size_t len, body, mo, ml;
    uint8_t *d;
    otaup_simflash *sim;
    otaup_sec sec;
    otaup_sec_config sc;
    otaup_region win;
    segs sg;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 95, 3);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    body = body_offset(d, len);
    manifest_at(d, &mo, &ml);
    sim = device(&w);
    win = w.L.slot[0];
    memset(&sc, 0, sizeof sc);
    sc.crypto = sectest_crypto();
    sc.flash = otaup_simflash_flash(sim);
    sc.keys = trusted;
    sc.nkeys = 1;
    sc.model = (const uint8_t *)MODEL;
    sc.model_len = strlen(MODEL);
    sc.windows = &win;
    sc.nwindows = 1;
    ck_assert_int_eq(otaup_sec_begin_delta(&sec, &sc, d, body), 0);
    find_segs(d + body, len - body, &sg);
    ck_assert_uint_ge(sg.n, 2);
    /* the first SYNC passes; then a byte of the manifest changes under the verifier */
    {
        uint8_t v = (uint8_t)sg.first[0];
        ck_assert_int_eq(otaup_sec_record(&sec, OTAUP_REC_SYNC, &v, 1), 0);
    }
    d[mo + ml - 80] ^= 0x01; /* inside the signed part */
    {
        uint8_t v = (uint8_t)sg.first[0];
        ck_assert_int_eq(otaup_sec_record(&sec, OTAUP_REC_SYNC, &v, 1), OTAUP_E_MANIFEST);
        ck_assert_int_eq(otaup_sec_record(&sec, OTAUP_REC_SYNC, &v, 1), OTAUP_E_MANIFEST); /* for good */
    }
    ck_assert_uint_eq(otaup_simflash_log_writes_since(sim, 0), 0);
    otaup_simflash_free(sim);
    free(d);
    world_free(&w);
}
END_TEST

/* ---- over the protocol: the applier with the verifier in its callbacks ---- */

typedef struct link_term {
    const world *w;
    otaup_simflash *sim;
    otaup_apply ap;
    otaup_apply_config cfg;
    otaup_sec sec;
    uint8_t *work;
    uint8_t start[4096]; /* START's bytes, kept for the session (the applier reuses its buffers) */
    int begins, resumed;
} link_term;

static int lt_manifest(void *ctx, uint64_t session, const uint8_t *m, size_t len)
{
    link_term *lt = ctx;
    otaup_journal j;
    otaup_sec_config sc;
    otaup_region win = lt->w->L.slot[0];
    (void)session;
    /* the journal as it stands (read only) decides "resume" */
    ck_assert_int_eq(otaup_journal_mount(&j, lt->cfg.flash, lt->cfg.journal.addr, lt->cfg.journal.len), 0);
    memset(&sc, 0, sizeof sc);
    sc.crypto = sectest_crypto();
    sc.flash = lt->cfg.flash;
    sc.keys = trusted;
    sc.nkeys = 1;
    sc.model = (const uint8_t *)MODEL;
    sc.model_len = strlen(MODEL);
    sc.installed_version = 1;
    sc.installed_counter = 5;
    sc.windows = &win;
    sc.nwindows = 1;
    sc.journal = otaup_journal_get(&j);
    lt->begins++;
    if (len > sizeof lt->start) {
        return OTAUP_E_LIMIT;
    }
    memcpy(lt->start, m, len);
    if (otaup_sec_begin_delta(&lt->sec, &sc, lt->start, len) != 0) {
        return otaup_sec_error(&lt->sec);
    }
    lt->resumed = otaup_sec_resuming(&lt->sec);
    return 0;
}

static uint64_t lt_delta_id(void *ctx, uint64_t session)
{
    link_term *lt = ctx;
    (void)session;
    return otaup_sec_delta_id(&lt->sec);
}

/* boot: the applier over the device's flash, the verifier in its callbacks */
static void lt_boot(link_term *lt, tl_ctx *t)
{
    const world *w = lt->w;
    otaup_apply_config *c = &lt->cfg;
    size_t wsz = otaup_apply_work_size(1024, 4096, S, 64, 12);
    memset(c, 0, sizeof *c);
    c->flash = otaup_simflash_flash(lt->sim);
    c->layout = OTAUP_LAYOUT_INPLACE;
    c->window_bits = 12;
    c->max_ops = 64;
    c->slots[0] = w->L.slot[0];
    c->scratch = w->L.scratch;
    c->journal = w->L.journal;
    c->updater.addr = w->L.user.addr + S;
    c->updater.len = S;
    c->regions[0].id = 1;
    c->regions[0].flags = OTAUP_REGION_PERSONAL;
    c->regions[0].addr = w->L.user.addr;
    c->regions[0].len = S;
    c->nregions = 1;
    c->staging_size = S;
    c->max_frame = 1024;
    c->max_msg = 4096;
    c->id.terminal_id = "T-7";
    c->id.model = MODEL;
    c->id.sw_version = "1";
    c->retransmit_ms = 400;
    c->manifest = lt_manifest;
    c->delta_id = lt_delta_id;
    c->user_ctx = lt;
    otaup_sec_exec_hooks(&lt->sec, &c->hooks);
    if (lt->work == NULL) {
        lt->work = malloc(wsz);
    }
    c->work = lt->work;
    c->work_size = wsz;
    tl_bind(t, c);
    ck_assert_int_eq(otaup_apply_init(&lt->ap, c), 0);
}

/* the signed delta as the test server's stream: body and restart points */
static void lt_stream(const uint8_t *d, size_t len, tp_stream *s, size_t *prefix)
{
    size_t body = body_offset(d, len), i;
    uint32_t idx[MAXSTEPS];
    size_t offs[MAXSTEPS];
    memset(s, 0, sizeof *s);
    s->bytes = malloc(len - body);
    memcpy(s->bytes, d + body, len - body);
    s->len = len - body;
    s->nrs = sectest_syncs(s->bytes, s->len, idx, offs, MAXSTEPS);
    s->rs = calloc(s->nrs, sizeof *s->rs);
    for (i = 0; i < s->nrs; i++) {
        s->rs[i].index = idx[i];
        s->rs[i].offset = offs[i];
    }
    *prefix = body;
}

START_TEST(test_link_resume)
{
    world w;
    size_t len, len2, prefix, prefix2;
    uint8_t *d, *d2;
    tp_stream s, s2;
    link_term lt;
    tl_faults f;
    tl_report rep;
    tl_ctx *t;
    size_t before;
    const uint32_t session = 0x51C0FFEEu;
    keys();
    world_make(&w, OTAUP_LAYOUT_INPLACE, 91, 4);
    d = sign_with(&w, key_a, 2, 5, 0, NULL, &len);
    d2 = sign_with(&w, key_a, 3, 5, 0, NULL, &len2); /* another genuine manifest, same source */
    lt_stream(d, len, &s, &prefix);
    lt_stream(d2, len2, &s2, &prefix2);

    /* a link that drops twice: resumes, verifies, completes */
    memset(&lt, 0, sizeof lt);
    lt.w = &w;
    lt.sim = device(&w);
    memset(&f, 0, sizeof f);
    f.disconnect_at = 25;
    f.disconnects = 2;
    f.seed = 3;
    t = tl_new(&f);
    tl_set_manifest(t, d, prefix);
    lt_boot(&lt, t);
    ck_assert_int_eq(tl_run(t, &lt.ap, &s, session, 0, &rep), 0);
    ck_assert_int_eq(rep.result, 0);
    ck_assert_uint_ge(rep.resumes, 1);
    assert_new_image(lt.sim, &w);
    tl_free(t);
    otaup_simflash_free(lt.sim);

    /* a power cut: after the reboot the same update resumes, source check skipped */
    lt.sim = device(&w);
    lt.begins = 0;
    otaup_simflash_cut_after(lt.sim, 60, 1);
    memset(&f, 0, sizeof f);
    t = tl_new(&f);
    tl_set_manifest(t, d, prefix);
    lt_boot(&lt, t);
    (void)tl_run(t, &lt.ap, &s, session, 0, &rep);
    tl_free(t);
    ck_assert_int_eq(otaup_simflash_is_cut(lt.sim), 1);
    otaup_simflash_power_on(lt.sim);

    /* ... but a server that resumes it with another signed manifest is refused, nothing written */
    before = otaup_simflash_log_writes_since(lt.sim, 0);
    t = tl_new(&f);
    tl_set_manifest(t, d2, prefix2);
    lt_boot(&lt, t);
    (void)tl_run(t, &lt.ap, &s2, session, 0, &rep);
    ck_assert_int_eq(rep.result, OTAUP_E_SOURCE_MISMATCH);
    ck_assert_uint_eq(otaup_simflash_log_writes_since(lt.sim, 0), before);
    tl_free(t);

    t = tl_new(&f);
    tl_set_manifest(t, d, prefix);
    lt_boot(&lt, t);
    ck_assert_int_eq(tl_run(t, &lt.ap, &s, session, 0, &rep), 0);
    ck_assert_int_eq(rep.result, 0);
    ck_assert_int_eq(lt.resumed, 1);
    ck_assert_uint_eq(rep.resumes, 1);
    assert_new_image(lt.sim, &w);
    tl_free(t);

    otaup_simflash_free(lt.sim);
    free(lt.work);
    tp_stream_free(&s);
    tp_stream_free(&s2);
    free(d);
    free(d2);
    world_free(&w);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("secapply");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 600);
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_genuine);
    tcase_add_test(tc, test_genuine_ab);
    tcase_add_test(tc, test_manifest_every_flip);
    tcase_add_test(tc, test_manifest_attacks);
    tcase_add_test(tc, test_tampered_steps);
    tcase_add_test(tc, test_stream_attacks);
    tcase_add_test(tc, test_target_hash_before_switch);
    tcase_add_test(tc, test_power_cuts);
    tcase_add_test(tc, test_other_update_mid_session);
    tcase_add_test(tc, test_link_resume);
    tcase_add_test(tc, test_manifest_buffer_reused);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
