/*
 * otaup — the session driver's deltas: the default delta provider (the
 * registry's delta cache, filled when a release is published — the seed's
 * "analysis stored ahead of time" — else the planner, from the old image
 * when the registry knows it or from the terminal's block signature), the
 * precomputation at publication, and the in-memory cache that lets every
 * session sending the same delta share one copy. Server side, C11.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/session.h"
#include "server/session_core.h"

/* ---- planning parameters ---------------------------------------------------- */

#define LAYOUT_ENCODING 2u
#define OTAUP_SESSION_RESTART_INTERVAL 16384u

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

size_t otaup_session_layout_encode(const otaup_sm_info *in, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned i;
    if (cap < 48u + 8u * OTAUP_MAX_SECTOR_RUNS || in->geo.nruns > OTAUP_MAX_SECTOR_RUNS) {
        return 0;
    }
    out[n++] = LAYOUT_ENCODING;
    out[n++] = in->layout;
    out[n++] = in->geo.erased;
    out[n++] = in->geo.nruns;
    put32(out + n, in->geo.base), n += 4;
    put32(out + n, in->geo.write_size), n += 4;
    for (i = 0; i < in->geo.nruns; i++) {
        put32(out + n, in->geo.runs[i].count), n += 4;
        put32(out + n, in->geo.runs[i].size), n += 4;
    }
    put32(out + n, in->slot_addr), n += 4;
    put32(out + n, in->target_addr), n += 4;
    put32(out + n, in->scratch_addr), n += 4;
    put32(out + n, in->scratch_size), n += 4;
    put32(out + n, in->ram), n += 4;
    put32(out + n, in->staging), n += 4;
    out[n++] = in->window_bits;
    out[n++] = (uint8_t)in->max_ops;
    out[n++] = (uint8_t)(in->max_ops >> 8);
    out[n++] = 0;
    put32(out + n, in->slot_size), n += 4;
    return n;
}

int otaup_session_layout_decode(const uint8_t *p, size_t len, otaup_delta_options *o, uint32_t *slot_size)
{
    size_t n = 0;
    unsigned i;
    if (len < 4 || p[0] != LAYOUT_ENCODING || p[3] == 0 || p[3] > OTAUP_MAX_SECTOR_RUNS ||
        len != 4u + 8u + 8u * p[3] + 24u + 4u + 4u) {
        return OTAUP_E_INVAL;
    }
    if (otaup_delta_options_init(o, OTAUP_DELTA_OPTIONS_VERSION) != 0) {
        return OTAUP_E_INTERNAL;
    }
    o->layout = p[1];
    o->geo.erased = p[2];
    o->geo.nruns = p[3];
    n = 4;
    o->geo.base = get32(p + n), n += 4;
    o->geo.write_size = get32(p + n), n += 4;
    for (i = 0; i < o->geo.nruns; i++) {
        o->geo.runs[i].count = get32(p + n), n += 4;
        o->geo.runs[i].size = get32(p + n), n += 4;
    }
    o->source_addr = get32(p + n), n += 4;
    o->target_addr = get32(p + n), n += 4;
    o->scratch_addr = get32(p + n), n += 4;
    o->scratch_size = get32(p + n), n += 4;
    o->ram = get32(p + n), n += 4;
    o->staging_size = get32(p + n), n += 4;
    o->window_bits = p[n];
    o->max_ops = (uint16_t)(p[n + 1] | p[n + 2] << 8);
    n += 4;
    if (slot_size != NULL) {
        *slot_size = get32(p + n);
    }
    if (o->layout == OTAUP_LAYOUT_INPLACE) {
        o->target_addr = o->source_addr;
    } else {
        o->target_given = 1; /* the terminal's other slot, also when it is at 0 */
    }
    return otaup_geometry_check(&o->geo) == 0 ? 0 : OTAUP_E_GEOMETRY;
}

/* ---- planning --------------------------------------------------------------------- */

static void key_of(const otaup_reg_terminal *t, const uint8_t *src, const uint8_t *dst, otaup_reg_delta_key *k)
{
    memset(k, 0, sizeof *k);
    memcpy(k->src_hash, src, sizeof k->src_hash);
    memcpy(k->dst_hash, dst, sizeof k->dst_hash);
    memcpy(k->layout, t->layout, t->layout_len);
    k->layout_len = t->layout_len;
}

/* Plan (old image or signature) -> release r for layout t->layout; store it in the registry. */
static int plan_store(otaup_registry *reg, const otaup_reg_terminal *t, const otaup_reg_release *r,
                      const uint8_t *old, size_t old_len, const otaup_sig *sig, const uint8_t *src_hash,
                      otaup_blob *out)
{
    otaup_delta_options o;
    otaup_blob img = { NULL, 0 };
    otaup_reg_release rr;
    otaup_reg_delta_key k;
    otaup_delta *d = NULL;
    const uint8_t *bytes;
    uint32_t slot_size = 0;
    size_t n;
    int rc = otaup_session_layout_decode(t->layout, t->layout_len, &o, &slot_size);
    if (rc < 0) {
        return rc == OTAUP_E_INVAL ? OTAUP_E_GEOMETRY : rc;
    }
    rc = otaup_registry_release_get(reg, r->id, &rr, &img);
    if (rc < 0) {
        return rc;
    }
    if (slot_size != 0 && img.len > slot_size) {
        otaup_blob_free(&img);
        return OTAUP_E_GEOMETRY; /* the new image does not fit the terminal's slot */
    }
    if (sig != NULL) {
        o.sig_block_size = sig->info.block_size;
    }
    /* restart points every 16 KiB of compressed stream: after a power cut
     * or a lost link at most that much is sent again */
    o.restart_interval = OTAUP_SESSION_RESTART_INTERVAL;
    rc = otaup_delta_create(old, old_len, old != NULL ? NULL : sig, img.data, img.len, &o, &d);
    otaup_blob_free(&img);
    if (rc < 0) {
        return rc;
    }
    bytes = otaup_delta_bytes(d, &n);
    key_of(t, src_hash, r->image_hash, &k);
    rc = otaup_registry_delta_put(reg, &k, bytes, n);
    if (rc == 0 && out != NULL) {
        out->data = malloc(n);
        if (out->data == NULL) {
            rc = OTAUP_E_NOMEM;
        } else {
            memcpy(out->data, bytes, n);
            out->len = n;
        }
    }
    otaup_delta_free(d);
    return rc;
}

static int check_delta(otaup_blob *delta, const uint8_t *src, const uint8_t *dst, uint32_t *body_offset)
{
    otaup_delta_header h;
    int rc = otaup_delta_check(delta->data, delta->len, &h, body_offset);
    if (rc == 0 && (memcmp(h.source_hash, src, 16) != 0 || memcmp(h.target_hash, dst, 16) != 0)) {
        rc = OTAUP_E_SOURCE_MISMATCH;
    }
    if (rc < 0) {
        otaup_blob_free(delta);
    }
    return rc;
}

int otaup_session_default_delta(otaup_registry *reg, const otaup_reg_terminal *t,
                                const otaup_reg_release *r, const uint8_t *sig, size_t sig_len,
                                otaup_blob *delta, uint32_t *body_offset, void *payload)
{
    otaup_reg_delta_key k;
    otaup_reg_release src;
    otaup_blob old = { NULL, 0 };
    int rc;
    (void)payload;
    if (reg == NULL || t == NULL || r == NULL || delta == NULL || body_offset == NULL ||
        t->layout_len > sizeof k.layout) {
        return OTAUP_E_INVAL;
    }
    delta->data = NULL;
    delta->len = 0;
    key_of(t, t->image_hash, r->image_hash, &k);
    rc = otaup_registry_delta_get(reg, &k, delta);
    if (rc == 0) {
        rc = check_delta(delta, t->image_hash, r->image_hash, body_offset);
        if (rc == 0) {
            return 0;
        }
        /* the stored copy is damaged (or is not what its key says): plan it
         * again, which replaces it. The planner is deterministic, so a
         * terminal that began the stored delta resumes the new one. */
        otaup_registry_audit(reg, t->id, "delta",
                             "the stored delta %s -> %s failed its check (%s): planned again", t->version, r->version,
                             otaup_strerror(rc));
    } else if (rc != OTAUP_E_NOT_FOUND) {
        return rc;
    }
    /* not computed ahead of time: plan now, from the old image if known */
    rc = otaup_registry_release_by_hash(reg, t->image_hash, &src, &old);
    if (rc == OTAUP_E_HASH && sig != NULL) {
        /* the registry's copy of the old image is damaged: the terminal's
         * block signature describes it as well */
        otaup_registry_audit(reg, t->id, "delta",
                             "the registry's copy of image %s (release %lld) is damaged: planned from the "
                             "terminal's block signature",
                             src.version, (long long)src.id);
        rc = OTAUP_E_NOT_FOUND;
    }
    if (rc == 0) {
        rc = plan_store(reg, t, r, old.data, old.len, NULL, t->image_hash, delta);
        otaup_blob_free(&old);
    } else if (rc == OTAUP_E_NOT_FOUND && sig != NULL) {
        otaup_sig sg;
        rc = otaup_sig_parse(sig, sig_len, &sg);
        if (rc == 0 && memcmp(sg.info.hash, t->image_hash, 16) != 0) {
            rc = OTAUP_E_SOURCE_MISMATCH;
        }
        if (rc == 0) {
            rc = plan_store(reg, t, r, NULL, 0, &sg, t->image_hash, delta);
        }
    } else if (rc == OTAUP_E_NOT_FOUND) {
        rc = OTAUP_E_SOURCE_MISMATCH;
    }
    if (rc < 0) {
        return rc;
    }
    return check_delta(delta, t->image_hash, r->image_hash, body_offset);
}

/* ---- precomputation at publication -------------------------------------------------- */

struct pre {
    otaup_registry *reg;
    const otaup_reg_release *r;
    otaup_reg_terminal *list;
    size_t n, cap;
};

static int collect_cb(const otaup_reg_terminal *t, void *payload)
{
    struct pre *p = payload;
    size_t i;
    static const uint8_t zero[OTAUP_REG_HASH_LEN];
    if (strcmp(t->model, p->r->model) != 0 || t->layout_len == 0 ||
        memcmp(t->image_hash, zero, sizeof zero) == 0 ||
        memcmp(t->image_hash, p->r->image_hash, OTAUP_REG_HASH_LEN) == 0) {
        return 0;
    }
    for (i = 0; i < p->n; i++) { /* one per (source, layout) */
        if (memcmp(p->list[i].image_hash, t->image_hash, OTAUP_REG_HASH_LEN) == 0 &&
            p->list[i].layout_len == t->layout_len &&
            memcmp(p->list[i].layout, t->layout, t->layout_len) == 0) {
            return 0;
        }
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        otaup_reg_terminal *l = realloc(p->list, cap * sizeof *l);
        if (l == NULL) {
            return OTAUP_E_NOMEM;
        }
        p->list = l;
        p->cap = cap;
    }
    p->list[p->n++] = *t;
    return 0;
}

int otaup_session_precompute(otaup_registry *reg, int64_t release_id, otaup_session_log_cb log, void *payload)
{
    otaup_reg_release r;
    struct pre p;
    size_t i;
    int rc, done = 0;
    if (reg == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_registry_release_get(reg, release_id, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    memset(&p, 0, sizeof p);
    p.reg = reg;
    p.r = &r;
    rc = otaup_registry_terminal_list(reg, collect_cb, &p);
    for (i = 0; rc >= 0 && i < p.n; i++) {
        const otaup_reg_terminal *t = &p.list[i];
        otaup_reg_delta_key k;
        otaup_reg_release src;
        otaup_blob old = { NULL, 0 }, have = { NULL, 0 };
        char msg[200];
        key_of(t, t->image_hash, r.image_hash, &k);
        if (otaup_registry_delta_get(reg, &k, &have) == 0) {
            otaup_blob_free(&have);
            continue;
        }
        if (otaup_registry_release_by_hash(reg, t->image_hash, &src, &old) != 0) {
            continue; /* an image the registry does not hold: planned from its signature later */
        }
        rc = plan_store(reg, t, &r, old.data, old.len, NULL, t->image_hash, &have);
        otaup_blob_free(&old);
        if (rc < 0) {
            if (log != NULL) {
                snprintf(msg, sizeof msg, "from=%s to=%s failed: %s", src.version, r.version, otaup_strerror(rc));
                log(OTAUP_LOG_WARN, t->id, "delta", msg, payload);
            }
            rc = 0; /* one layout that cannot be planned does not stop the others */
            continue;
        }
        if (log != NULL) {
            snprintf(msg, sizeof msg, "from=%s to=%s bytes=%zu image=%u (precomputed)", src.version, r.version,
                     have.len, r.image_size);
            log(OTAUP_LOG_INFO, t->id, "delta", msg, payload);
        }
        otaup_blob_free(&have);
        done++;
    }
    free(p.list);
    return rc < 0 ? rc : done;
}

void otaup_session_delta_key(const otaup_reg_terminal *t, const uint8_t *src, const uint8_t *dst, int signed_variant,
                             otaup_reg_delta_key *k)
{
    key_of(t, src, dst, k);
    if (signed_variant && k->layout_len < sizeof k->layout) {
        k->layout[k->layout_len++] = OTAUP_SESSION_SIGNED_VARIANT;
    }
}

size_t otaup_session_sources(otaup_registry *reg, const otaup_reg_release *r, otaup_reg_terminal **out)
{
    struct pre p;
    memset(&p, 0, sizeof p);
    p.reg = reg;
    p.r = r;
    if (otaup_registry_terminal_list(reg, collect_cb, &p) < 0) {
        free(p.list);
        *out = NULL;
        return 0;
    }
    *out = p.list;
    return p.n;
}

/* ---- the shared in-memory cache ------------------------------------------------------- */

struct cache_entry {
    otaup_reg_delta_key key;
    otaup_blob blob;
    uint32_t body_off;
    unsigned refs;
    uint64_t used;
    struct cache_entry *next;
};

struct otaup_delta_cache {
    size_t max_bytes, bytes, entries;
    uint64_t clock, hits, misses;
    struct cache_entry *head;
};

int otaup_delta_cache_new(size_t max_bytes, otaup_delta_cache **out)
{
    otaup_delta_cache *c;
    if (out == NULL) {
        return OTAUP_E_INVAL;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return OTAUP_E_NOMEM;
    }
    c->max_bytes = max_bytes ? max_bytes : (size_t)64 << 20;
    *out = c;
    return 0;
}

void otaup_delta_cache_free(otaup_delta_cache *c)
{
    struct cache_entry *e, *nx;
    if (c == NULL) {
        return;
    }
    for (e = c->head; e != NULL; e = nx) {
        nx = e->next;
        otaup_blob_free(&e->blob);
        free(e);
    }
    free(c);
}

void otaup_delta_cache_stats(const otaup_delta_cache *c, size_t *entries, size_t *bytes, uint64_t *hits,
                             uint64_t *misses)
{
    if (entries != NULL) {
        *entries = c->entries;
    }
    if (bytes != NULL) {
        *bytes = c->bytes;
    }
    if (hits != NULL) {
        *hits = c->hits;
    }
    if (misses != NULL) {
        *misses = c->misses;
    }
}

static int key_eq(const otaup_reg_delta_key *a, const otaup_reg_delta_key *b)
{
    return memcmp(a->src_hash, b->src_hash, sizeof a->src_hash) == 0 &&
           memcmp(a->dst_hash, b->dst_hash, sizeof a->dst_hash) == 0 && a->layout_len == b->layout_len &&
           memcmp(a->layout, b->layout, a->layout_len) == 0;
}

static void evict(otaup_delta_cache *c)
{
    while (c->bytes > c->max_bytes) {
        struct cache_entry **pp, **victim = NULL, *e;
        for (pp = &c->head; *pp != NULL; pp = &(*pp)->next) {
            if ((*pp)->refs == 0 && (victim == NULL || (*pp)->used < (*victim)->used)) {
                victim = pp;
            }
        }
        if (victim == NULL) {
            return; /* everything is in use */
        }
        e = *victim;
        *victim = e->next;
        c->bytes -= e->blob.len;
        c->entries--;
        otaup_blob_free(&e->blob);
        free(e);
    }
}

void *otaup_delta_cache_get(otaup_delta_cache *c, const otaup_reg_delta_key *k, const uint8_t **data,
                            size_t *len, uint32_t *body_off)
{
    struct cache_entry *e;
    for (e = c->head; e != NULL; e = e->next) {
        if (key_eq(&e->key, k)) {
            e->refs++;
            e->used = ++c->clock;
            c->hits++;
            *data = e->blob.data;
            *len = e->blob.len;
            *body_off = e->body_off;
            return e;
        }
    }
    c->misses++;
    return NULL;
}

void *otaup_delta_cache_put(otaup_delta_cache *c, const otaup_reg_delta_key *k, otaup_blob *blob,
                            uint32_t body_off)
{
    struct cache_entry *e = calloc(1, sizeof *e);
    if (e == NULL) {
        return NULL;
    }
    e->key = *k;
    e->blob = *blob;
    blob->data = NULL;
    blob->len = 0;
    e->body_off = body_off;
    e->refs = 1;
    e->used = ++c->clock;
    e->next = c->head;
    c->head = e;
    c->bytes += e->blob.len;
    c->entries++;
    evict(c);
    return e;
}

void otaup_delta_cache_release(otaup_delta_cache *c, void *ref)
{
    struct cache_entry *e = ref;
    if (c == NULL || e == NULL) {
        return;
    }
    if (e->refs > 0) {
        e->refs--;
    }
    evict(c);
}
