/*
 * otaup — a simulated terminal: simulated NOR flash + the real applier +
 * an identity it keeps itself (otaup/simterm.h). Server side, C11.
 */
#include "otaup/simterm.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/image.h"
#include "otaup/journal.h"
#include "otaup/registry.h"
#include "otaup/sign.h"

#define VMAX 33

typedef struct ident {
    char id[64], model[64];
    int geo_valid;
    uint32_t layout, sector_size, slot_size, user_size, write_size;
    char version[VMAX];
    uint64_t build_time;
    uint32_t image_size;
    int valid;
    /* what the session in progress installs */
    char p_version[VMAX];
    uint64_t p_build_time;
    uint32_t p_image_size;
    uint8_t p_hash[16];
    int p_valid;
    /* the security counter of the installed image, and the one the pending update brings */
    uint32_t counter, p_counter;
} ident;

#define SIMTERM_MAX_KEYS 8

struct otaup_simterm {
    otaup_simterm_options o;
    char id[64], model[64];
    char *path, *meta;
    otaup_simflash *sim;
    uint32_t slot[2], slot_size, scratch, scratch_size, journal, user, user_size, updater, sectors;
    ident idn;
    char offer_version[VMAX];
    uint64_t offer_build;
    char notice[512];
    int damaged;
    uint32_t steps_total;
    otaup_apply ap;
    otaup_apply_config cfg;
    void *work;
    size_t work_size;
    /* the verifier (docs/security.md 5.1), with trusted keys */
    otaup_sec_key keys[SIMTERM_MAX_KEYS];
    size_t nkeys;
    otaup_crypto crypto;
    otaup_sec sec;
    uint8_t *start;        /* START's bytes, kept for the session (max_msg) */
    uint8_t image_sha[32]; /* reported in INFO */
    int refused;           /* the verifier's refusal of the last START */
    int verified;          /* the session's manifest verified */
    uint8_t signer[OTAUP_KEY_ID_LEN];
    uint8_t device_key[OTAUP_AES256_KEY_LEN]; /* sealed backups (have_key) */
    int have_key;
};

/* ---- identity file --------------------------------------------------------------- */

static void meta_write(otaup_simterm *t)
{
    FILE *f;
    char tmp[1100];
    unsigned i;
    if (t->meta == NULL) {
        return;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", t->meta);
    f = fopen(tmp, "w");
    if (f == NULL) {
        return;
    }
    fprintf(f, "terminal_id=%s\nmodel=%s\nversion=%s\nbuild_time=%" PRIu64 "\nimage_size=%u\n", t->id, t->model,
            t->idn.version, t->idn.build_time, t->idn.image_size);
    fprintf(f, "layout=%u\nsector_size=%u\nslot_size=%u\nuser_size=%u\nwrite_size=%u\n", t->o.layout,
            t->o.sector_size, t->slot_size, t->user_size, t->o.write_size);
    fprintf(f, "security_counter=%u\n", t->idn.counter);
    if (t->idn.p_valid) {
        fprintf(f, "pending_counter=%u\n", t->idn.p_counter);
        fprintf(f, "pending_version=%s\npending_build_time=%" PRIu64 "\npending_image_size=%u\npending_hash=",
                t->idn.p_version, t->idn.p_build_time, t->idn.p_image_size);
        for (i = 0; i < 16; i++) {
            fprintf(f, "%02x", t->idn.p_hash[i]);
        }
        fprintf(f, "\n");
    }
    if (fclose(f) == 0) {
        (void)rename(tmp, t->meta);
    }
}

static void meta_read(otaup_simterm *t)
{
    FILE *f;
    char line[256];
    memset(&t->idn, 0, sizeof t->idn);
    if (t->meta == NULL || (f = fopen(t->meta, "r")) == NULL) {
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *v = strchr(line, '=');
        size_t n;
        if (v == NULL) {
            continue;
        }
        *v++ = '\0';
        n = strcspn(v, "\r\n");
        v[n] = '\0';
        if (strcmp(line, "terminal_id") == 0 && n > 0 && n < sizeof t->idn.id) {
            memcpy(t->idn.id, v, n + 1);
        } else if (strcmp(line, "model") == 0 && n > 0 && n < sizeof t->idn.model) {
            memcpy(t->idn.model, v, n + 1);
        } else if (strcmp(line, "version") == 0 && n > 0 && n < VMAX) {
            memcpy(t->idn.version, v, n + 1);
            t->idn.valid = 1;
        } else if (strcmp(line, "layout") == 0) {
            t->idn.layout = (uint32_t)strtoul(v, NULL, 10);
            t->idn.geo_valid = 1;
        } else if (strcmp(line, "sector_size") == 0) {
            t->idn.sector_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "slot_size") == 0) {
            t->idn.slot_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "user_size") == 0) {
            t->idn.user_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "write_size") == 0) {
            t->idn.write_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "build_time") == 0) {
            t->idn.build_time = strtoull(v, NULL, 10);
        } else if (strcmp(line, "image_size") == 0) {
            t->idn.image_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "security_counter") == 0) {
            t->idn.counter = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "pending_counter") == 0) {
            t->idn.p_counter = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "pending_version") == 0 && n > 0 && n < VMAX) {
            memcpy(t->idn.p_version, v, n + 1);
            t->idn.p_valid = 1;
        } else if (strcmp(line, "pending_build_time") == 0) {
            t->idn.p_build_time = strtoull(v, NULL, 10);
        } else if (strcmp(line, "pending_image_size") == 0) {
            t->idn.p_image_size = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(line, "pending_hash") == 0 && n == 32) {
            unsigned i;
            for (i = 0; i < 16; i++) {
                unsigned b;
                if (sscanf(v + 2 * i, "%2x", &b) != 1) {
                    t->idn.p_valid = 0;
                    break;
                }
                t->idn.p_hash[i] = (uint8_t)b;
            }
        }
    }
    fclose(f);
}

/* ---- layout --------------------------------------------------------------- */

void otaup_simterm_options_init(otaup_simterm_options *o)
{
    if (o != NULL) {
        otaup_simterm_options d = OTAUP_SIMTERM_OPTIONS_INIT;
        *o = d;
    }
}

/* The flash map of t->o (copied from the caller's options): the layout
 * stored in PATH.meta wins when flash_path names a terminal's file, then
 * the defaults, then the addresses of every area. t->meta is allocated
 * here (the caller frees it). 0, OTAUP_E_NOMEM, or OTAUP_E_GEOMETRY (a
 * sector the journal cannot use, or a map past 4 GiB from the base). */
static int plan_map(otaup_simterm *t, const char *flash_path)
{
    uint32_t ss;
    uint64_t a, slot, scratch, user;
    if (flash_path != NULL) {
        size_t n = strlen(flash_path) + 6;
        t->meta = malloc(n);
        if (t->meta == NULL) {
            return OTAUP_E_NOMEM;
        }
        snprintf(t->meta, n, "%s.meta", flash_path);
        meta_read(t);
        if (t->idn.geo_valid && t->idn.layout <= OTAUP_LAYOUT_AB && t->idn.sector_size != 0 &&
            t->idn.slot_size != 0 && t->idn.user_size != 0 && t->idn.write_size != 0) {
            /* the flash file's own layout wins */
            t->o.layout = (uint8_t)t->idn.layout;
            t->o.sector_size = t->idn.sector_size;
            t->o.slot_size = t->idn.slot_size;
            t->o.user_size = t->idn.user_size;
            t->o.write_size = t->idn.write_size;
        }
    }
#define DEF(f, v)      \
    if (t->o.f == 0) { \
        t->o.f = (v);  \
    }
    DEF(sector_size, 4096u);
    DEF(slot_size, 256u * 1024u);
    DEF(user_size, 8192u);
    DEF(write_size, 8u);
    DEF(max_frame, 1024u);
    DEF(max_msg, 2048u);
    DEF(window, 8u);
    /* a sector, and never less than the planner plans for (with 256- or
     * 512-byte sectors a sector-sized buffer made every delta OTAUP_E_LIMIT;
     * in place the scratch area below grows to match) */
    DEF(staging, t->o.sector_size > OTAUP_DELTA_STAGING_MIN ? t->o.sector_size : OTAUP_DELTA_STAGING_MIN);
    DEF(max_ops, 64u);
    DEF(window_bits, 12u);
    DEF(retransmit_ms, 1000u);
#undef DEF
    ss = t->o.sector_size;
    /* the journal's two sectors must each hold its least number of slots */
    if (t->o.write_size == 0 || ss % t->o.write_size != 0 || ss < OTAUP_JOURNAL_SECTOR_MIN(t->o.write_size)) {
        return OTAUP_E_GEOMETRY;
    }
    /* in 64 bits: sizes read from a damaged FILE.meta must not wrap */
    slot = ((uint64_t)t->o.slot_size + ss - 1u) / ss * ss;
    scratch = ((uint64_t)(t->o.staging > ss ? t->o.staging : ss) + ss - 1u) / ss * ss;
    user = ((uint64_t)t->o.user_size + ss - 1u) / ss * ss;
    a = slot * (t->o.layout == OTAUP_LAYOUT_AB ? 2u : 1u) + scratch + 2u * (uint64_t)ss + user + ss;
    if (a > 0xFFFFFFFFu - OTAUP_SIMTERM_BASE) {
        return OTAUP_E_GEOMETRY;
    }
    a = OTAUP_SIMTERM_BASE;
    t->slot_size = (uint32_t)slot;
    t->slot[0] = (uint32_t)a;
    a += slot;
    if (t->o.layout == OTAUP_LAYOUT_AB) {
        t->slot[1] = (uint32_t)a;
        a += slot;
    }
    t->scratch = (uint32_t)a;
    t->scratch_size = (uint32_t)scratch;
    a += scratch;
    t->journal = (uint32_t)a;
    a += 2u * ss;
    t->user = (uint32_t)a;
    t->user_size = (uint32_t)user;
    a += user;
    t->updater = (uint32_t)a;
    a += ss;
    t->sectors = (uint32_t)((a - OTAUP_SIMTERM_BASE) / ss);
    return 0;
}

int otaup_simterm_map_size(const otaup_simterm_options *o, uint32_t *size)
{
    otaup_simterm *t;
    int rc;
    if (o == NULL || size == NULL || o->version < 1 || o->version > OTAUP_SIMTERM_OPTIONS_VERSION ||
        o->layout > OTAUP_LAYOUT_AB) {
        return OTAUP_E_INVAL;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return OTAUP_E_NOMEM;
    }
    /* the geometry is all in the options' first version */
    memcpy(&t->o, o, offsetof(otaup_simterm_options, keys));
    rc = plan_map(t, o->flash_path);
    if (rc == 0) {
        *size = t->sectors * t->o.sector_size;
    }
    free(t->meta);
    free(t);
    return rc;
}

int otaup_simterm_new(const otaup_simterm_options *o, otaup_simterm **out)
{
    otaup_simterm *t;
    otaup_simflash_options so;
    uint32_t ss;
    struct stat st;
    int rc;
    if (o == NULL || out == NULL || o->version < 1 || o->version > OTAUP_SIMTERM_OPTIONS_VERSION ||
        o->layout > OTAUP_LAYOUT_AB ||
        (o->terminal_id != NULL && (strlen(o->terminal_id) == 0 || strlen(o->terminal_id) > 63)) ||
        (o->model != NULL && (strlen(o->model) == 0 || strlen(o->model) > 63)) ||
        ((o->terminal_id == NULL || o->model == NULL) && o->flash_path == NULL)) {
        return OTAUP_E_INVAL;
    }
    if (o->version >= 2 && (o->nkeys > SIMTERM_MAX_KEYS || (o->nkeys > 0 && o->keys == NULL))) {
        return OTAUP_E_INVAL;
    }
#if !OTAUP_HAVE_MBEDTLS || !OTAUP_CONFIG_SEALED
    if (o->version >= 3 && o->device_key != NULL) {
        return OTAUP_E_UNSUPPORTED; /* no sealing without a crypto backend */
    }
#endif
#if !OTAUP_HAVE_MBEDTLS
    if (o->version >= 2 && o->nkeys > 0) {
        return OTAUP_E_UNSUPPORTED; /* no verifier without a crypto backend */
    }
#endif
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (o->version == 1) {
        memcpy(&t->o, o, offsetof(otaup_simterm_options, keys));
    } else if (o->version == 2) {
        memcpy(&t->o, o, offsetof(otaup_simterm_options, device_key));
        t->nkeys = o->nkeys;
        if (o->nkeys > 0) {
            memcpy(t->keys, o->keys, o->nkeys * sizeof o->keys[0]);
        }
    } else {
        t->o = *o;
        t->nkeys = o->nkeys;
        if (o->nkeys > 0) {
            memcpy(t->keys, o->keys, o->nkeys * sizeof o->keys[0]);
        }
    }
    if (o->version >= 3 && o->device_key != NULL) {
        memcpy(t->device_key, o->device_key, sizeof t->device_key);
        t->have_key = 1;
    }
    t->o.version = OTAUP_SIMTERM_OPTIONS_VERSION;
    t->o.keys = NULL;
    t->o.device_key = NULL;
#if OTAUP_HAVE_MBEDTLS
    if ((t->nkeys > 0 || t->have_key) && otaup_crypto_mbedtls(&t->crypto) != 0) {
        free(t);
        return OTAUP_E_CRYPTO;
    }
#endif
    rc = plan_map(t, o->flash_path);
    if (rc < 0) {
        free(t->meta);
        free(t);
        return rc;
    }
    ss = t->o.sector_size;
    if (t->idn.valid && t->idn.image_size > t->slot_size) {
        /* a FILE.meta whose image does not fit its slot (damaged): no
         * identity, rather than an image hashed past the end of the flash */
        t->idn.valid = 0;
    }
    if (o->flash_path != NULL && stat(o->flash_path, &st) == 0 &&
        (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != (uint64_t)t->sectors * ss)) {
        /* a terminal's flash file is its whole map: a shorter one (cut
         * short) or a longer one is not that terminal's flash. Refused
         * before it is opened for writing, so it stays as it is */
        free(t->meta);
        free(t);
        return OTAUP_E_GEOMETRY;
    }
    otaup_simflash_options_init(&so);
    otaup_geometry_uniform(&so.geo, OTAUP_SIMTERM_BASE, ss, t->sectors, t->o.write_size);
    so.path = o->flash_path;
    so.log_ops = t->o.log_ops;
    /* the identity given, else the one the flash file was made with */
    snprintf(t->id, sizeof t->id, "%s", o->terminal_id != NULL ? o->terminal_id : t->idn.id);
    snprintf(t->model, sizeof t->model, "%s", o->model != NULL ? o->model : t->idn.model);
    if (t->id[0] == '\0' || t->model[0] == '\0') {
        free(t->meta);
        free(t);
        return OTAUP_E_INVAL;
    }
    rc = otaup_simflash_new(&so, &t->sim);
    if (rc < 0) {
        free(t->meta);
        free(t);
        return rc;
    }
    t->work_size = otaup_apply_work_size(t->o.max_frame, t->o.max_msg, t->o.staging, t->o.max_ops, t->o.window_bits);
    t->work = t->work_size ? malloc(t->work_size) : NULL;
    t->start = t->nkeys > 0 ? malloc(t->o.max_msg) : NULL;
    if (t->work == NULL || (t->nkeys > 0 && t->start == NULL)) {
        int rc2 = t->work_size ? OTAUP_E_NOMEM : OTAUP_E_INVAL;
        otaup_simterm_free(t);
        return rc2;
    }
    *out = t;
    return 0;
}

void otaup_simterm_free(otaup_simterm *t)
{
    if (t == NULL) {
        return;
    }
    otaup_simflash_free(t->sim);
    free(t->work);
    free(t->start);
    free(t->meta);
    memset(t->device_key, 0, sizeof t->device_key);
    free(t);
}

size_t otaup_simterm_user_sample(const otaup_simterm *t, uint8_t *out, size_t cap)
{
    static const char *const lines[] = {
        "contact;Kim Min-jun;+82 10 5555 0142;minjun.kim@example.org\n",
        "contact;Park Seo-yeon;+82 10 5555 0187;birthday 03-14\n",
        "sms;from +82 10 5555 0142;See you at 7 at the station?\n",
        "memo;door code 4711, do not share\n",
        "photo;IMG_0042.JPG;2026-05-01 Busan beach\n",
        "calendar;2026-12-02 09:30;dentist\n",
    };
    size_t n = 0, i = 0;
    char head[96];
    int k = snprintf(head, sizeof head, "owner of %s\n", t->id);
    while (n < t->user_size && n < cap) {
        const char *l = i == 0 ? head : lines[(i - 1) % (sizeof lines / sizeof lines[0])];
        size_t m = i == 0 ? (size_t)k : strlen(l);
        size_t take = m < cap - n ? m : cap - n;
        if (take > t->user_size - n) {
            take = t->user_size - n;
        }
        memcpy(out + n, l, take);
        n += take;
        i++;
    }
    return n;
}

int otaup_simterm_provision(otaup_simterm *t, const uint8_t *image, size_t len, const char *version,
                            uint64_t build_time)
{
    uint32_t size = otaup_simflash_size(t->sim);
    uint8_t *buf;
    int rc;
    if (image == NULL || version == NULL || strlen(version) == 0 || strlen(version) >= VMAX) {
        return OTAUP_E_INVAL;
    }
    if (len > t->slot_size) {
        return OTAUP_E_RANGE;
    }
    buf = malloc(size);
    if (buf == NULL) {
        return OTAUP_E_NOMEM;
    }
    memset(buf, 0xFF, size);
    memcpy(buf + (t->slot[0] - OTAUP_SIMTERM_BASE), image, len);
    otaup_simterm_user_sample(t, buf + (t->user - OTAUP_SIMTERM_BASE), t->user_size);
    rc = otaup_simflash_load(t->sim, OTAUP_SIMTERM_BASE, buf, size);
    free(buf);
    if (rc < 0) {
        return rc;
    }
    memset(&t->idn, 0, sizeof t->idn);
    snprintf(t->idn.version, sizeof t->idn.version, "%s", version);
    t->idn.build_time = build_time;
    t->idn.image_size = (uint32_t)len;
    t->idn.valid = 1;
    meta_write(t);
    return otaup_simflash_flush(t->sim);
}

int otaup_simterm_provisioned(const otaup_simterm *t)
{
    return t->idn.valid;
}

/* ---- applier callbacks ---------------------------------------------------------- */

static void on_notify(void *ctx, const otaup_msg_notify *n)
{
    otaup_simterm *t = ctx;
    size_t k = n->text.len < sizeof t->notice - 1 ? n->text.len : sizeof t->notice - 1;
    memcpy(t->notice, n->text.data, k);
    t->notice[k] = '\0';
    /* an offer, or the information that a resumed session installs it */
    if (n->version.len > 0 && n->version.len < VMAX) {
        memcpy(t->offer_version, n->version.data, n->version.len);
        t->offer_version[n->version.len] = '\0';
        t->offer_build = n->build_time;
    }
}

/*
 * START with trusted keys: the verifier of docs/security.md 5.1, before
 * any flash operation. START's bytes are copied first (the applier reuses
 * its receive buffers; the verifier reads the restart points from them for
 * the whole session). The applier's journal, as mounted, says whether
 * this very update is being resumed (then the source, already partly
 * rewritten, is not hashed again). A refusal is the NACK's code.
 */
static int verify_start(otaup_simterm *t, const uint8_t *m, size_t len)
{
    otaup_sec_config sc;
    size_t i;
    int rc;
    t->verified = 0;
    if (len > t->o.max_msg) {
        return t->refused = OTAUP_E_LIMIT;
    }
    memcpy(t->start, m, len);
    memset(&sc, 0, sizeof sc);
    sc.crypto = &t->crypto;
    sc.flash = otaup_simflash_flash(t->sim);
    sc.keys = t->keys;
    sc.nkeys = t->nkeys;
    sc.model = (const uint8_t *)t->model;
    sc.model_len = strlen(t->model);
    sc.installed_version = otaup_version_pack(t->idn.version);
    sc.installed_counter = t->idn.counter;
    sc.layouts = (uint8_t)(1u << t->o.layout);
    sc.windows = t->ap.windows; /* the applier's writable window: the slot it updates */
    sc.nwindows = 1;
    sc.journal = otaup_journal_get(otaup_apply_journal(&t->ap));
    rc = otaup_sec_begin_delta(&t->sec, &sc, t->start, len);
    if (rc != 0) {
        return t->refused = rc;
    }
    t->refused = 0;
    /* which trusted key's signature verified (for the report) */
    for (i = 0; i < t->nkeys; i++) {
        if (otaup_manifest_verify(&t->crypto, t->sec.mf, &t->sec.manifest, &t->keys[i], 1) >= 0) {
            otaup_key_id(&t->crypto, t->keys[i].pub, t->signer);
            t->verified = 1;
            break;
        }
    }
    return 0;
}

static uint64_t on_delta_id(void *ctx, uint64_t session)
{
    otaup_simterm *t = ctx;
    (void)session;
    return otaup_sec_delta_id(&t->sec);
}

/* START: note what this session installs (target size and hash from the delta header). */
static int on_manifest(void *ctx, uint64_t session, const uint8_t *m, size_t len)
{
    otaup_simterm *t = ctx;
    otaup_delta_header h;
    (void)session;
    if (t->nkeys > 0) {
        int rc = verify_start(t, m, len);
        if (rc != 0) {
            return rc; /* refused: nothing noted, nothing written */
        }
    }
    if (otaup_delta_header_decode(m, len, &h) < 0) {
        return 0; /* not a delta header: nothing to note */
    }
    if (t->idn.p_valid && memcmp(t->idn.p_hash, h.target_hash, 16) == 0) {
        t->steps_total = h.step_count;
        return 0; /* a resumed session: already noted */
    }
    if (t->offer_version[0] != '\0') {
        snprintf(t->idn.p_version, sizeof t->idn.p_version, "%s", t->offer_version);
        t->idn.p_build_time = t->offer_build;
    } else {
        snprintf(t->idn.p_version, sizeof t->idn.p_version, "unknown");
        t->idn.p_build_time = 0;
    }
    t->idn.p_image_size = h.target_size;
    memcpy(t->idn.p_hash, h.target_hash, 16);
    t->idn.p_counter = t->nkeys > 0 ? t->sec.manifest.counter : t->idn.counter;
    t->steps_total = h.step_count;
    t->idn.p_valid = 1;
    meta_write(t);
    return 0;
}

/* Reads of the simulated flash's bytes as they are, past the faults that
 * its driver injects (otaup_simflash_read_fault, a cut): the simulator's
 * own bookkeeping must not consume or suffer them. */
static int raw_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    otaup_simterm *t = f->context;
    memcpy(buf, otaup_simflash_data(t->sim) + (addr - OTAUP_SIMTERM_BASE), len);
    return 0;
}

/* The slot whose image the terminal runs, as its applier reports it: A/B,
 * the boot slot, or while its journal holds a session that session's
 * source (after the COMMIT's switch record, before the session's end, the
 * boot slot names the target already, and the identity is still the
 * source's). */
static uint32_t run_slot_addr(otaup_simterm *t)
{
    otaup_flash raw = *otaup_simflash_flash(t->sim);
    const otaup_journal_state *st;
    otaup_journal j;
    if (t->o.layout != OTAUP_LAYOUT_AB) {
        return t->slot[0];
    }
    raw.context = t;
    raw.read = raw_read;
    if (otaup_journal_mount(&j, &raw, t->journal, 2u * t->o.sector_size) != 0) {
        return t->slot[0];
    }
    st = otaup_journal_get(&j);
    if (st->session == OTAUP_JS_ACTIVE) {
        return t->slot[(st->target_slot & 1u) ^ 1u];
    }
    return t->slot[st->boot_slot & 1u];
}

static void hash_at(otaup_simterm *t, uint32_t addr, uint32_t size, uint8_t out[16])
{
    const uint8_t *d = otaup_simflash_data(t->sim) + (addr - OTAUP_SIMTERM_BASE);
    otaup_hash128(d, size, out);
}

/* The flash holds the pending image: it is what the terminal runs now. */
static void take_pending(otaup_simterm *t)
{
    uint8_t h[16];
    if (!t->idn.p_valid || t->idn.p_image_size > t->slot_size) {
        return;
    }
    hash_at(t, run_slot_addr(t), t->idn.p_image_size, h);
    if (memcmp(h, t->idn.p_hash, 16) != 0) {
        return;
    }
    snprintf(t->idn.version, sizeof t->idn.version, "%s", t->idn.p_version);
    t->idn.build_time = t->idn.p_build_time;
    t->idn.image_size = t->idn.p_image_size;
    if (t->idn.p_counter > t->idn.counter) {
        t->idn.counter = t->idn.p_counter; /* anti-rollback: only after the commit, never down */
    }
    t->idn.p_valid = 0;
    meta_write(t);
}

int otaup_simterm_boot(otaup_simterm *t, int (*send)(void *ctx, const uint8_t *buf, size_t len), void *send_ctx,
                       uint32_t (*now_ms)(void *ctx), void *clock_ctx)
{
    otaup_apply_config *c = &t->cfg;
    if (!t->idn.valid) {
        return OTAUP_E_STATE;
    }
    otaup_simflash_power_on(t->sim);
    otaup_simflash_cut_after(t->sim, 0, 0);
    /* a completed session whose identity was not taken over before a reset
     * (a journal the boot cannot read: it boots nothing on a guess and
     * reports the error, as porting.md asks of a bootloader) */
    {
        const otaup_journal_state *st;
        otaup_journal j;
        int rc = otaup_journal_mount(&j, otaup_simflash_flash(t->sim), t->journal, 2u * t->o.sector_size);
        if (rc < 0) {
            return rc;
        }
        st = otaup_journal_get(&j);
        if (st->session != OTAUP_JS_ACTIVE) {
            take_pending(t);
        }
    }
    memset(c, 0, sizeof *c);
    c->flash = otaup_simflash_flash(t->sim);
    c->layout = t->o.layout;
    c->window_bits = t->o.window_bits;
    c->max_ops = t->o.max_ops;
    c->slots[0].addr = t->slot[0];
    c->slots[0].len = t->slot_size;
    if (t->o.layout == OTAUP_LAYOUT_AB) {
        c->slots[1].addr = t->slot[1];
        c->slots[1].len = t->slot_size;
    }
    c->scratch.addr = t->scratch;
    c->scratch.len = t->scratch_size;
    c->journal.addr = t->journal;
    c->journal.len = 2u * t->o.sector_size;
    c->updater.addr = t->updater;
    c->updater.len = t->o.sector_size;
    c->regions[0].id = 1;
    c->regions[0].flags = OTAUP_REGION_PERSONAL;
    c->regions[0].addr = t->user;
    c->regions[0].len = t->user_size;
    c->nregions = 1;
    c->staging_size = t->o.staging;
    c->max_frame = t->o.max_frame;
    c->max_msg = t->o.max_msg;
    c->link.ctx = send_ctx;
    c->link.send = send;
    c->now_ms = now_ms;
    c->clock_ctx = clock_ctx;
    c->id.terminal_id = t->id;
    c->id.model = t->model;
    c->id.sw_version = t->idn.version;
    c->id.build_time = t->idn.build_time;
    c->id.image_size = t->idn.image_size;
    c->id.sec_counter = t->idn.counter;
    c->notify = on_notify;
    c->manifest = on_manifest;
    c->user_ctx = t;
    t->refused = 0;
    t->verified = 0;
    if (t->nkeys > 0) {
        /* the verifier on the real applier (security.md 5.1): hooks, the
         * journaled id, and the image's SHA-256 for the server */
        otaup_sec_exec_hooks(&t->sec, &c->hooks);
        c->delta_id = on_delta_id;
        if (t->idn.image_size <= t->slot_size &&
            otaup_sha256(&t->crypto, otaup_simflash_data(t->sim) + (run_slot_addr(t) - OTAUP_SIMTERM_BASE),
                         t->idn.image_size, t->image_sha) == 0) {
            c->id.image_sha256 = t->image_sha;
        }
    }
#if OTAUP_CONFIG_SEALED
    if (t->have_key) {
        c->device_key = t->device_key; /* sealed backups (security.md §7) */
        c->crypto = &t->crypto;
    }
#endif
    c->retransmit_ms = t->o.retransmit_ms;
    c->window = t->o.window;
    c->work = t->work;
    c->work_size = t->work_size;
    t->damaged = 0;
    t->offer_version[0] = '\0';
    return otaup_apply_init(&t->ap, c);
}

otaup_apply *otaup_simterm_apply(otaup_simterm *t)
{
    return &t->ap;
}

otaup_simflash *otaup_simterm_flash(otaup_simterm *t)
{
    return t->sim;
}

void otaup_simterm_step(otaup_simterm *t)
{
    const otaup_exec *ex = otaup_apply_exec(&t->ap);
    if (t->o.damage_user_data && !t->damaged && ex != NULL && otaup_exec_get_stats(ex)->verifies > 0 &&
        !ex->verify_failed) {
        /* the new image is in place: the new software "migrates" the
         * user's data and gets it wrong */
        uint8_t *d = otaup_simflash_data(t->sim) + (t->user - OTAUP_SIMTERM_BASE);
        uint32_t i;
        for (i = 0; i < 64 && i < t->user_size; i++) {
            d[t->user_size / 3 + i] ^= 0x5A;
        }
        otaup_simflash_flush(t->sim);
        t->damaged = 1;
    }
    if (t->idn.p_valid && otaup_apply_done(&t->ap) && otaup_apply_result(&t->ap) == 0) {
        take_pending(t);
        t->cfg.id.sw_version = t->idn.version;
        t->cfg.id.build_time = t->idn.build_time;
        t->cfg.id.image_size = t->idn.image_size;
        t->cfg.id.sec_counter = t->idn.counter;
        t->ap.cfg.id = t->cfg.id;
    }
}

const char *otaup_simterm_version(const otaup_simterm *t)
{
    return t->idn.version;
}

uint64_t otaup_simterm_build_time(const otaup_simterm *t)
{
    return t->idn.build_time;
}

uint32_t otaup_simterm_image_hash(otaup_simterm *t, uint8_t hash[16])
{
    hash_at(t, run_slot_addr(t), t->idn.image_size, hash);
    return t->idn.image_size;
}

int otaup_simterm_user_intact(otaup_simterm *t)
{
    uint8_t *want = malloc(t->user_size);
    int ok;
    if (want == NULL) {
        return 0;
    }
    otaup_simterm_user_sample(t, want, t->user_size);
    ok = memcmp(want, otaup_simflash_data(t->sim) + (t->user - OTAUP_SIMTERM_BASE), t->user_size) == 0;
    free(want);
    return ok;
}

uint32_t otaup_simterm_steps(const otaup_simterm *t, uint32_t *total)
{
    if (total != NULL) {
        *total = t->steps_total;
    }
    return t->ap.session_open ? otaup_exec_next_step(&t->ap.exec) : 0;
}

const char *otaup_simterm_id(const otaup_simterm *t)
{
    return t->id;
}

const char *otaup_simterm_model(const otaup_simterm *t)
{
    return t->model;
}

const char *otaup_simterm_notice(const otaup_simterm *t)
{
    return t->notice;
}

uint32_t otaup_simterm_counter(const otaup_simterm *t)
{
    return t->idn.counter;
}

int otaup_simterm_refused(const otaup_simterm *t)
{
    return t->refused;
}

int otaup_simterm_signed_by(const otaup_simterm *t, uint8_t id[OTAUP_KEY_ID_LEN])
{
    if (!t->verified) {
        return 0;
    }
    if (id != NULL) {
        memcpy(id, t->signer, OTAUP_KEY_ID_LEN);
    }
    return 1;
}

uint32_t otaup_simterm_slot_addr(const otaup_simterm *t, unsigned slot)
{
    return t->slot[slot ? 1 : 0];
}

uint32_t otaup_simterm_slot_size(const otaup_simterm *t)
{
    return t->slot_size;
}

uint32_t otaup_simterm_sectors(const otaup_simterm *t)
{
    return t->sectors;
}

uint32_t otaup_simterm_user_addr(const otaup_simterm *t)
{
    return t->user;
}

uint32_t otaup_simterm_user_size(const otaup_simterm *t)
{
    return t->user_size;
}
