/*
 * otaup — the terminal's verifier: manifest checks before any flash
 * operation, the per-step hash chain over the record stream, the target
 * hash before the commit (docs/security.md §4.5, §5).
 * C99, no heap, no OS, no global state.
 */
#include <string.h>

#include "core/sec_int.h"
#include "core/sec_util.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/sign.h"

/* record types used here (record.h owns the full list) */
#define REC_ERASE 0x20u
#define REC_VERIFY 0x25u
#define REC_DATA 0x26u
#define REC_STEP 0x27u
#define REC_END 0x28u
#define REC_SYNC 0x2Au

/* states */
#define S_NONE 0u       /* not begun */
#define S_UNIT 1u       /* reading a unit; `expect` holds its tag */
#define S_AFTER 2u      /* unit verified at its CHAIN: only END{unit} may follow */
#define S_SEG_DONE 3u   /* last unit of the segment done: only SYNC / the end */
#define S_FAILED 4u     /* sticky refusal */

/* flags */
#define F_STARTED 0x01u  /* the current unit's hash is open */
#define F_STEP 0x02u     /* the current unit had its STEP record */
#define F_VERIFIED 0x04u /* `verified` may be committed */
#define F_NEXT 0x08u     /* the verified unit's CHAIN named a next tag */

static const uint8_t chain_domain[8] = { 'O', 'T', 'A', 'U', 'P', 'C', 'H', '1' };

static OTAUP_RAMFUNC int fail(otaup_sec *sec, int rc)
{
    if (sec->state != S_FAILED) {
        sec->error = rc;
        sec->state = S_FAILED;
    }
    return sec->error;
}

int otaup_sec_error(const otaup_sec *sec)
{
    return sec == NULL ? OTAUP_E_INVAL : sec->error;
}

static OTAUP_RAMFUNC int in_windows(const otaup_sec_config *cfg, otaup_region r)
{
    size_t i;
    for (i = 0; i < cfg->nwindows; i++) {
        if (sec_inside(r.addr, r.len, cfg->windows[i].addr, cfg->windows[i].len)) {
            return 1;
        }
    }
    return 0;
}

static OTAUP_RAMFUNC uint64_t id_of(const uint8_t *digest)
{
    return sec_le64(digest);
}

static OTAUP_RAMFUNC int check_manifest(otaup_sec *sec, const otaup_sec_config *cfg, const uint8_t *in)
{
    const otaup_manifest *m = &sec->manifest;
    uint8_t digest[OTAUP_SHA256_LEN];
    uint32_t dev_size = otaup_geometry_size(&cfg->flash->geo);
    unsigned min_tag = cfg->min_tag_len != 0u ? cfg->min_tag_len : OTAUP_CONFIG_CHAIN_TAG_MIN;
    int rc;

    rc = otaup_manifest_verify(cfg->crypto, in, m, cfg->keys, cfg->nkeys);
    if (rc < 0) {
        return rc;
    }
    if (cfg->model == NULL || m->model_len != cfg->model_len ||
        memcmp(m->model, cfg->model, cfg->model_len) != 0) {
        return OTAUP_E_MODEL;
    }
    if (m->counter < cfg->installed_counter) {
        return OTAUP_E_ROLLBACK;
    }
    if (m->version < cfg->installed_version && (m->policy & OTAUP_POLICY_ALLOW_DOWNGRADE) == 0u) {
        return OTAUP_E_OLDER;
    }
    if (cfg->layouts != 0u && (m->layout > 7u || (cfg->layouts & (1u << m->layout)) == 0u)) {
        return OTAUP_E_GEOMETRY;
    }
    rc = otaup_geometry_digest(cfg->crypto, cfg->geometry != NULL ? cfg->geometry : &cfg->flash->geo, digest);
    if (rc != 0) {
        return rc;
    }
    if (memcmp(digest, m->geometry_digest, OTAUP_SHA256_LEN) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    if (!in_windows(cfg, m->slot) || !sec_inside(m->target.addr, m->target.len, m->slot.addr, m->slot.len)) {
        return OTAUP_E_WINDOW;
    }
    if (m->has_source && !sec_inside(m->source.addr, m->source.len, cfg->flash->geo.base, dev_size)) {
        return OTAUP_E_WINDOW;
    }
    if (m->tag_len < min_tag) {
        return OTAUP_E_CHAIN;
    }
    rc = otaup_manifest_digest(cfg->crypto, in, m, sec->digest);
    if (rc != 0) {
        return rc;
    }
    if (cfg->journal != NULL && cfg->journal->session == OTAUP_JS_ACTIVE && cfg->journal->delta_id == id_of(sec->digest)) {
        /* this very update is in progress: its source was checked when it began */
        if (cfg->journal->next_step > m->nsteps) {
            return OTAUP_E_JOURNAL;
        }
        sec->resuming = 1;
        sec->next_commit = cfg->journal->next_step;
    } else if (m->has_source) {
        rc = otaup_sha256_flash(cfg->crypto, cfg->flash, m->source.addr, m->source.len, cfg->buf,
                                cfg->buf_len, digest);
        if (rc != 0) {
            return rc;
        }
        if (!otaup_ct_equal(digest, m->source_hash, OTAUP_SHA256_LEN)) {
            return OTAUP_E_SOURCE_MISMATCH;
        }
    }
    return 0;
}

OTAUP_RAMFUNC int otaup_sec_begin(otaup_sec *sec, const otaup_sec_config *cfg, const uint8_t *in, size_t len)
{
    int rc;
    if (sec == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(sec, 0, sizeof *sec);
    sec->state = S_NONE;
    if (cfg == NULL || cfg->crypto == NULL || cfg->flash == NULL || in == NULL ||
        (cfg->keys == NULL && cfg->nkeys > 0u) || (cfg->windows == NULL && cfg->nwindows > 0u)) {
        sec->error = OTAUP_E_INVAL;
        return OTAUP_E_INVAL;
    }
    rc = otaup_manifest_parse(in, len, &sec->manifest);
    if (rc == 0) {
        rc = check_manifest(sec, cfg, in);
    }
    if (rc != 0) {
        sec->error = rc;
        sec->state = S_FAILED;
        return rc;
    }
    sec->crypto = cfg->crypto;
    sec->flash = cfg->flash;
    sec->mf = in;
    sec->buf = cfg->buf;
    sec->buf_len = cfg->buf_len;
    sec->unit = 0;
    if (sec->manifest.nsteps == 0u) {
        sec->state = S_SEG_DONE;
    } else {
        rc = otaup_manifest_segment(&sec->manifest, 0, sec->expect);
        if (rc != 0) {
            return fail(sec, OTAUP_E_MANIFEST);
        }
        sec->state = S_UNIT;
    }
    return 0;
}

OTAUP_RAMFUNC int otaup_sec_begin_delta(otaup_sec *sec, const otaup_sec_config *cfg, const uint8_t *prefix,
                                        size_t len)
{
    const uint8_t *mf = NULL;
    size_t mf_len = 0;
    otaup_delta_header h;
    const otaup_manifest *m;
    uint8_t d[OTAUP_SHA256_LEN];
    int rc;
    if (sec == NULL) {
        return OTAUP_E_INVAL;
    }
    if (cfg == NULL || cfg->crypto == NULL || prefix == NULL) {
        memset(sec, 0, sizeof *sec);
        sec->state = S_FAILED;
        sec->error = OTAUP_E_INVAL;
        return OTAUP_E_INVAL;
    }
    rc = otaup_delta_header_decode(prefix, len, &h);
    if (rc >= 0) {
        rc = otaup_delta_find_manifest(prefix, len, &mf, &mf_len);
    }
    if (rc != 0) {
        memset(sec, 0, sizeof *sec);
        sec->state = S_FAILED;
        sec->error = rc;
        return rc;
    }
    /* signature and the terminal's rules first; then the header it names */
    rc = otaup_sec_begin(sec, cfg, mf, mf_len);
    if (rc != 0) {
        return rc;
    }
    m = &sec->manifest;
    if (m->has_delta) {
        /* the header and every section before the MANIFEST section */
        rc = otaup_sha256(cfg->crypto, prefix, (size_t)(mf - prefix) - OTAUP_SECTION_HEAD_SIZE, d);
        if (rc != 0) {
            return fail(sec, rc);
        }
        if (!otaup_ct_equal(d, m->delta_hash, OTAUP_SHA256_LEN)) {
            return fail(sec, OTAUP_E_MANIFEST); /* a header other than the signed one */
        }
    }
    rc = otaup_geometry_digest(cfg->crypto, &h.geo, d);
    if (rc != 0) {
        return fail(sec, rc);
    }
    if (h.layout != m->layout || !otaup_ct_equal(d, m->geometry_digest, OTAUP_SHA256_LEN)) {
        return fail(sec, OTAUP_E_GEOMETRY);
    }
    if (h.step_count != m->nsteps || h.target_addr != m->target.addr || h.target_size != m->target.len) {
        return fail(sec, OTAUP_E_MANIFEST);
    }
    return 0;
}

uint64_t otaup_sec_delta_id(const otaup_sec *sec)
{
    return sec == NULL ? 0u : id_of(sec->digest);
}

int otaup_sec_resuming(const otaup_sec *sec)
{
    return sec != NULL && sec->resuming;
}

int otaup_sec_begin_offline(otaup_sec *sec, const otaup_crypto *c, const uint8_t *in, size_t len)
{
    int rc;
    if (sec == NULL || c == NULL || in == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(sec, 0, sizeof *sec);
    rc = otaup_manifest_parse(in, len, &sec->manifest);
    if (rc == 0) {
        rc = otaup_manifest_digest(c, in, &sec->manifest, sec->digest);
    }
    if (rc != 0) {
        sec->error = rc;
        sec->state = S_FAILED;
        return rc;
    }
    sec->crypto = c;
    sec->mf = in;
    if (sec->manifest.nsteps == 0u) {
        sec->state = S_SEG_DONE;
    } else if (otaup_manifest_segment(&sec->manifest, 0, sec->expect) != 0) {
        return fail(sec, OTAUP_E_MANIFEST);
    } else {
        sec->state = S_UNIT;
    }
    return 0;
}

uint32_t otaup_sec_next_commit(const otaup_sec *sec)
{
    return sec->next_commit;
}

/* ---- records ------------------------------------------------------------ */

static OTAUP_RAMFUNC int hash(otaup_sec *sec, const void *p, size_t n)
{
    int rc = sec->crypto->sha256_update(sec->crypto, &sec->hs, p, n);
    return rc != 0 ? fail(sec, rc) : 0;
}

static OTAUP_RAMFUNC int sync_to(otaup_sec *sec, uint32_t step)
{
    if (!(sec->state == S_SEG_DONE || (sec->state == S_UNIT && (sec->flags & F_STARTED) == 0u))) {
        return fail(sec, OTAUP_E_CHAIN); /* a SYNC inside a unit */
    }
    if (step > sec->next_commit || step >= sec->manifest.nsteps) {
        return fail(sec, OTAUP_E_CHAIN); /* skipping steps that were never done */
    }
    {
        /* the restart points come from the manifest bytes: they must be the
         * ones verified at the start (a reused buffer would let the stream
         * choose the tags) */
        uint8_t d[OTAUP_SHA256_LEN];
        int rc = otaup_sha256(sec->crypto, sec->mf, sec->manifest.signed_len, d);
        if (rc != 0) {
            return fail(sec, rc);
        }
        if (!otaup_ct_equal(d, sec->digest, OTAUP_SHA256_LEN)) {
            return fail(sec, OTAUP_E_MANIFEST);
        }
    }
    if (otaup_manifest_segment(&sec->manifest, step, sec->expect) != 0) {
        return fail(sec, OTAUP_E_CHAIN); /* not a restart point of this delta */
    }
    sec->unit = step;
    sec->flags = 0;
    sec->state = S_UNIT;
    return 0;
}

/* first piece of a record: the state machine's rules, open the unit hash */
static OTAUP_RAMFUNC int rec_first(otaup_sec *sec, uint8_t type)
{
    if (sec->in_rec) {
        return fail(sec, OTAUP_E_CHAIN); /* previous record not finished */
    }
    sec->rec_type = type;
    sec->rec_seen = 0;
    if (type == REC_DATA || type == REC_SYNC) {
        return fail(sec, OTAUP_E_CHAIN); /* not valid inside the chained stream */
    }
    switch (sec->state) {
    case S_AFTER:
        if (type != REC_END) {
            return fail(sec, OTAUP_E_CHAIN); /* only END may follow CHAIN */
        }
        sec->in_rec = 1;
        return 0;
    case S_SEG_DONE:
        if (type != REC_VERIFY) {
            return fail(sec, OTAUP_E_CHAIN); /* a step without a chain tag */
        }
        sec->in_rec = 1;
        return 0;
    default:
        break;
    }
    /* S_UNIT */
    if (type >= OTAUP_REC_SEC_FIRST && type <= OTAUP_REC_SEC_LAST && type != OTAUP_REC_CHAIN) {
        return fail(sec, OTAUP_E_CHAIN);
    }
    if ((sec->flags & F_STEP) == 0u) {
        /* before the STEP only read-only records may come */
        if (type != REC_STEP && type != REC_VERIFY) {
            return fail(sec, OTAUP_E_CHAIN);
        }
    } else if (type == REC_STEP) {
        return fail(sec, OTAUP_E_CHAIN); /* two steps in one unit */
    }
    if (type == REC_END) {
        return fail(sec, OTAUP_E_CHAIN); /* END before the step's chain tag */
    }
    if ((sec->flags & F_STARTED) == 0u) {
        uint8_t idx[4];
        int rc = sec->crypto->sha256_init(sec->crypto, &sec->hs);
        if (rc != 0) {
            return fail(sec, rc);
        }
        sec_put32(idx, sec->unit);
        if (hash(sec, chain_domain, sizeof chain_domain) != 0 ||
            hash(sec, sec->manifest.salt, OTAUP_CHAIN_SALT_LEN) != 0 || hash(sec, idx, 4) != 0) {
            return sec->error;
        }
        sec->flags = (uint8_t)((sec->flags & ~F_VERIFIED) | F_STARTED);
    }
    if (hash(sec, &type, 1) != 0) {
        return sec->error;
    }
    sec->in_rec = 1;
    return 0;
}

/* index varint at the start of a STEP or END body */
static OTAUP_RAMFUNC int body_index(const otaup_sec *sec, uint32_t *index)
{
    uint32_t n = sec->rec_seen < sizeof sec->rec_head ? sec->rec_seen : (uint32_t)sizeof sec->rec_head;
    return sec_varint_get(sec->rec_head, n, index) > 0 ? 0 : -1;
}

/* last piece: the record is complete */
static OTAUP_RAMFUNC int rec_last(otaup_sec *sec)
{
    uint32_t index;
    sec->in_rec = 0;
    if (sec->state == S_SEG_DONE) {
        return 0; /* VERIFY */
    }
    if (sec->state == S_AFTER) { /* END{unit} */
        if (body_index(sec, &index) != 0 || index != sec->verified) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        if ((sec->flags & F_NEXT) != 0u) {
            sec->unit = sec->verified + 1u;
            if (sec->unit >= sec->manifest.nsteps) {
                return fail(sec, OTAUP_E_CHAIN);
            }
            sec->state = S_UNIT;
        } else {
            sec->state = S_SEG_DONE;
        }
        sec->flags &= (uint8_t)F_VERIFIED; /* keep only "may be committed" */
        return 0;
    }
    /* S_UNIT: the record ends with its body length */
    {
        uint8_t l[4];
        sec_put32(l, sec->rec_seen);
        if (hash(sec, l, 4) != 0) {
            return sec->error;
        }
    }
    if (sec->rec_type == REC_STEP) {
        if (body_index(sec, &index) != 0 || index != sec->unit) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        sec->flags |= F_STEP;
    } else if (sec->rec_type == OTAUP_REC_CHAIN) {
        uint8_t d[OTAUP_SHA256_LEN];
        int rc;
        if ((sec->flags & F_STEP) == 0u || (sec->rec_seen != 0u && sec->rec_seen != sec->manifest.tag_len)) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        rc = sec->crypto->sha256_final(sec->crypto, &sec->hs, d);
        if (rc != 0) {
            return fail(sec, rc);
        }
        if (!otaup_ct_equal(d, sec->expect, sec->manifest.tag_len)) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        /* verified: the body is the next unit's tag, or empty at the segment's end */
        sec->verified = sec->unit;
        sec->flags = F_VERIFIED;
        if (sec->rec_seen != 0u) {
            memcpy(sec->expect, sec->rec_head, sec->manifest.tag_len);
            sec->flags |= F_NEXT;
        }
        sec->state = S_AFTER;
    }
    return 0;
}

OTAUP_RAMFUNC int otaup_sec_inner(otaup_sec *sec, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    int rc;
    if (sec == NULL || (body == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (sec->state == S_FAILED || sec->state == S_NONE) {
        return sec->state == S_NONE ? OTAUP_E_STATE : sec->error;
    }
    if ((part & OTAUP_SEC_PART_FIRST) != 0u) {
        rc = rec_first(sec, type);
        if (rc != 0) {
            return rc;
        }
    } else if (!sec->in_rec || type != sec->rec_type) {
        return fail(sec, OTAUP_E_CHAIN); /* a piece of a record that never began */
    }
    if (len > 0u) {
        if (len > 0xFFFFFFFFu - sec->rec_seen) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        if (sec->rec_seen < sizeof sec->rec_head) {
            size_t k = sizeof sec->rec_head - sec->rec_seen;
            memcpy(sec->rec_head + sec->rec_seen, body, k < len ? k : len);
        }
        if (sec->state == S_UNIT && hash(sec, body, len) != 0) {
            return sec->error;
        }
        sec->rec_seen += (uint32_t)len;
    }
    return (part & OTAUP_SEC_PART_LAST) != 0u ? rec_last(sec) : 0;
}

OTAUP_RAMFUNC int otaup_sec_inner_record(otaup_sec *sec, uint8_t type, const uint8_t *body, uint32_t len)
{
    return otaup_sec_inner(sec, type, body, len, OTAUP_SEC_PART_FIRST | OTAUP_SEC_PART_LAST);
}

OTAUP_RAMFUNC int otaup_sec_outer(otaup_sec *sec, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    if (sec == NULL || (body == NULL && len > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (sec->state == S_FAILED || sec->state == S_NONE) {
        return sec->state == S_NONE ? OTAUP_E_STATE : sec->error;
    }
    if (type == REC_DATA) {
        return 0; /* transport: its content comes through the inner calls */
    }
    if (type == REC_SYNC) {
        /* fixed-size: the executor hands it in one piece */
        uint32_t step = 0;
        if (sec->in_rec || part != (OTAUP_SEC_PART_FIRST | OTAUP_SEC_PART_LAST) || len == 0u ||
            sec_varint_get(body, len, &step) != (int)len) {
            return fail(sec, OTAUP_E_CHAIN);
        }
        return sync_to(sec, step);
    }
    return otaup_sec_inner(sec, type, body, len, part);
}

OTAUP_RAMFUNC int otaup_sec_record(otaup_sec *sec, uint8_t type, const uint8_t *body, uint32_t len)
{
    return otaup_sec_outer(sec, type, body, len, OTAUP_SEC_PART_FIRST | OTAUP_SEC_PART_LAST);
}

/* ---- commit and final ---------------------------------------------------- */

OTAUP_RAMFUNC int otaup_sec_step_commit(otaup_sec *sec, uint32_t index, uint32_t addr, uint32_t len,
                                        const otaup_region *erases, size_t nerases)
{
    const otaup_region *slot;
    size_t i;
    if (sec == NULL || (erases == NULL && nerases > 0u)) {
        return OTAUP_E_INVAL;
    }
    if (sec->state == S_FAILED || sec->state == S_NONE) {
        return sec->state == S_NONE ? OTAUP_E_STATE : sec->error;
    }
    if ((sec->flags & F_VERIFIED) == 0u || sec->verified != index || index != sec->next_commit) {
        return fail(sec, OTAUP_E_CHAIN);
    }
    slot = &sec->manifest.slot;
    if (!sec_inside(addr, len, slot->addr, slot->len)) {
        return fail(sec, OTAUP_E_WINDOW);
    }
    for (i = 0; i < nerases; i++) {
        if (!sec_inside(erases[i].addr, erases[i].len, slot->addr, slot->len)) {
            return fail(sec, OTAUP_E_WINDOW);
        }
    }
    sec->flags &= (uint8_t)~F_VERIFIED;
    sec->next_commit = index + 1u;
    sec->committed++;
    return 0;
}

OTAUP_RAMFUNC int otaup_sec_final(otaup_sec *sec)
{
    uint8_t d[OTAUP_SHA256_LEN];
    int rc;
    if (sec == NULL) {
        return OTAUP_E_INVAL;
    }
    if (sec->state == S_FAILED || sec->state == S_NONE) {
        return sec->state == S_NONE ? OTAUP_E_STATE : sec->error;
    }
    if (sec->flash == NULL) {
        return OTAUP_E_STATE; /* offline verifier */
    }
    if (sec->in_rec || sec->state == S_AFTER || (sec->state == S_UNIT && (sec->flags & F_STARTED) != 0u)) {
        return fail(sec, OTAUP_E_CHAIN); /* a unit left open */
    }
    if (sec->next_commit != sec->manifest.nsteps) {
        return fail(sec, OTAUP_E_CHAIN); /* steps missing */
    }
    rc = otaup_sha256_flash(sec->crypto, sec->flash, sec->manifest.target.addr, sec->manifest.target.len,
                            sec->buf, sec->buf_len, d);
    if (rc != 0) {
        return fail(sec, rc);
    }
    if (!otaup_ct_equal(d, sec->manifest.target_hash, OTAUP_SHA256_LEN)) {
        return fail(sec, OTAUP_E_TARGET_MISMATCH);
    }
    return 0;
}

/* ---- executor hooks ------------------------------------------------------- */

OTAUP_RAMFUNC int otaup_sec_hook_record(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    return otaup_sec_outer((otaup_sec *)ctx, type, body, len, part);
}

OTAUP_RAMFUNC int otaup_sec_hook_inner(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    return otaup_sec_inner((otaup_sec *)ctx, type, body, len, part);
}

OTAUP_RAMFUNC int otaup_sec_hook_step(void *ctx, const otaup_exec_step *step)
{
    if (step == NULL) {
        return OTAUP_E_INVAL;
    }
    return otaup_sec_step_commit((otaup_sec *)ctx, step->index, step->addr, step->len, step->erases, step->nerases);
}

OTAUP_RAMFUNC int otaup_sec_hook_final(void *ctx)
{
    return otaup_sec_final((otaup_sec *)ctx);
}

void otaup_sec_exec_hooks(otaup_sec *sec, otaup_exec_hooks *hooks)
{
    if (hooks == NULL) {
        return;
    }
    hooks->ctx = sec;
    hooks->record = otaup_sec_hook_record;
    hooks->inner_record = otaup_sec_hook_inner;
    hooks->step_commit = otaup_sec_hook_step;
    hooks->final = otaup_sec_hook_final;
}
