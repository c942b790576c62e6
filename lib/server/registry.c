/*
 * otaup — registry front end: wraps a backend's ops table, encrypts
 * backups before they reach the backend, implements the upgrade policy.
 * Server side, C11, allocates.
 */
#include "otaup/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "server/regcrypt.h"
#include "server/registry_live.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

struct otaup_registry {
    const otaup_registry_ops *ops;
    void *ctx;
    int have_key;
    uint8_t master[OTAUP_REG_KEY_LEN];
    /* terminals a live session of this handle drives (server/registry_live.h) */
    char (*live)[OTAUP_REG_ID_MAX];
    size_t nlive, caplive;
};

int otaup_registry_live_claim(otaup_registry *reg, const char *terminal)
{
    size_t i;
    if (reg == NULL || terminal == NULL || strlen(terminal) >= OTAUP_REG_ID_MAX) {
        return OTAUP_E_INVAL;
    }
    for (i = 0; i < reg->nlive; i++) {
        if (strcmp(reg->live[i], terminal) == 0) {
            return OTAUP_E_EXISTS;
        }
    }
    if (reg->nlive == reg->caplive) {
        size_t cap = reg->caplive ? reg->caplive * 2 : 16;
        char(*p)[OTAUP_REG_ID_MAX] = realloc(reg->live, cap * sizeof *p);
        if (p == NULL) {
            return OTAUP_E_NOMEM;
        }
        reg->live = p;
        reg->caplive = cap;
    }
    snprintf(reg->live[reg->nlive++], OTAUP_REG_ID_MAX, "%s", terminal);
    return 0;
}

void otaup_registry_live_release(otaup_registry *reg, const char *terminal)
{
    size_t i;
    if (reg == NULL || terminal == NULL) {
        return;
    }
    for (i = 0; i < reg->nlive; i++) {
        if (strcmp(reg->live[i], terminal) == 0) {
            memcpy(reg->live[i], reg->live[--reg->nlive], OTAUP_REG_ID_MAX);
            return;
        }
    }
}

void otaup_blob_free(otaup_blob *b)
{
    if (b != NULL) {
        free(b->data);
        b->data = NULL;
        b->len = 0;
    }
}

void otaup_registry_options_init(otaup_registry_options *opts)
{
    if (opts != NULL) {
        otaup_registry_options d = OTAUP_REGISTRY_OPTIONS_INIT;
        *opts = d;
    }
}

int otaup_registry_new(const otaup_registry_ops *ops, void *ctx, const otaup_registry_options *opts,
                       otaup_registry **out)
{
    otaup_registry *reg;
    if (ops == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    if (ops->version != OTAUP_REGISTRY_OPS_VERSION) {
        return OTAUP_E_UNSUPPORTED;
    }
    if (opts != NULL && (opts->version == 0 || opts->version > OTAUP_REGISTRY_OPTIONS_VERSION)) {
        return OTAUP_E_UNSUPPORTED;
    }
    reg = calloc(1, sizeof *reg);
    if (reg == NULL) {
        return OTAUP_E_NOMEM;
    }
    reg->ops = ops;
    reg->ctx = ctx;
    if (opts != NULL && opts->master_key != NULL) {
        memcpy(reg->master, opts->master_key, OTAUP_REG_KEY_LEN);
        reg->have_key = 1;
    }
    *out = reg;
    return 0;
}

void otaup_registry_free(otaup_registry *reg)
{
    if (reg == NULL) {
        return;
    }
    if (reg->ops->close != NULL) {
        reg->ops->close(reg->ctx);
    }
    otaup_regcrypt_wipe(reg->master, sizeof reg->master);
    free(reg->live);
    free(reg);
}

const otaup_registry_ops *otaup_registry_backend(const otaup_registry *reg, void **ctx)
{
    if (ctx != NULL) {
        *ctx = reg->ctx;
    }
    return reg->ops;
}

const char *otaup_registry_errmsg(const otaup_registry *reg)
{
    const char *m;
    if (reg == NULL) {
        return "no registry";
    }
    m = reg->ops->errmsg != NULL ? reg->ops->errmsg(reg->ctx) : NULL;
    return m != NULL ? m : "";
}

#if !OTAUP_HAVE_SQLITE
int otaup_registry_sqlite_open(const char *path, const otaup_registry_options *opts,
                               otaup_registry **out)
{
    (void)path;
    (void)opts;
    (void)out;
    return OTAUP_E_UNSUPPORTED;
}
#endif

/* ---- key file ---------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int otaup_registry_keyfile(const char *path, int create, uint8_t key[OTAUP_REG_KEY_LEN])
{
    char text[2 * OTAUP_REG_KEY_LEN + 2];
    struct stat st;
    ssize_t n;
    int fd, i;
    if (path == NULL || key == NULL) {
        return OTAUP_E_INVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        static const char digits[] = "0123456789abcdef";
        uint8_t fresh[OTAUP_REG_KEY_LEN];
        int rc = otaup_regcrypt_random(fresh, sizeof fresh);
        if (rc < 0) {
            return rc;
        }
        for (i = 0; i < OTAUP_REG_KEY_LEN; i++) {
            text[2 * i] = digits[fresh[i] >> 4];
            text[2 * i + 1] = digits[fresh[i] & 15];
        }
        text[2 * OTAUP_REG_KEY_LEN] = '\n';
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
            otaup_regcrypt_wipe(fresh, sizeof fresh);
            return OTAUP_E_IO;
        }
        n = write(fd, text, 2 * OTAUP_REG_KEY_LEN + 1);
        if (n != 2 * OTAUP_REG_KEY_LEN + 1 || fsync(fd) != 0) {
            close(fd);
            unlink(path);
            otaup_regcrypt_wipe(fresh, sizeof fresh);
            return OTAUP_E_IO;
        }
        close(fd);
        memcpy(key, fresh, OTAUP_REG_KEY_LEN);
        otaup_regcrypt_wipe(fresh, sizeof fresh);
        otaup_regcrypt_wipe(text, sizeof text);
        return 0;
    }
    if (fd < 0) {
        return OTAUP_E_IO;
    }
    if (fstat(fd, &st) != 0) {
        close(fd);
        return OTAUP_E_IO;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return OTAUP_E_KEY; /* readable or writable by others */
    }
    n = read(fd, text, sizeof text);
    close(fd);
    if (n < 2 * OTAUP_REG_KEY_LEN || (n > 2 * OTAUP_REG_KEY_LEN && text[2 * OTAUP_REG_KEY_LEN] != '\n')) {
        otaup_regcrypt_wipe(text, sizeof text);
        return OTAUP_E_KEY;
    }
    for (i = 0; i < OTAUP_REG_KEY_LEN; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            otaup_regcrypt_wipe(text, sizeof text);
            return OTAUP_E_KEY;
        }
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    otaup_regcrypt_wipe(text, sizeof text);
    return 0;
}

/* ---- wrapped calls ---------------------------------------------------- */

#define CHECK(reg, fn)                                  \
    do {                                                \
        if ((reg) == NULL || (reg)->ops->fn == NULL) { \
            return (reg) == NULL ? OTAUP_E_INVAL : OTAUP_E_UNSUPPORTED; \
        }                                               \
    } while (0)

static int str_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && memchr(s, '\0', max) != NULL;
}

int otaup_registry_terminal_put(otaup_registry *reg, const otaup_reg_terminal *t)
{
    CHECK(reg, terminal_put);
    if (t == NULL || !str_ok(t->id, sizeof t->id) || !str_ok(t->model, sizeof t->model) ||
        memchr(t->version, '\0', sizeof t->version) == NULL ||
        memchr(t->status, '\0', sizeof t->status) == NULL || t->layout_len > sizeof t->layout) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->terminal_put(reg->ctx, t);
}

int otaup_registry_terminal_get(otaup_registry *reg, const char *id, otaup_reg_terminal *out)
{
    CHECK(reg, terminal_get);
    if (id == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->terminal_get(reg->ctx, id, out);
}

int otaup_registry_terminal_list(otaup_registry *reg, otaup_reg_terminal_cb cb, void *payload)
{
    CHECK(reg, terminal_list);
    return cb == NULL ? OTAUP_E_INVAL : reg->ops->terminal_list(reg->ctx, cb, payload);
}

int otaup_registry_terminal_set_status(otaup_registry *reg, const char *id, const char *status)
{
    CHECK(reg, terminal_set_status);
    if (id == NULL || !str_ok(status, OTAUP_REG_STATE_MAX)) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->terminal_set_status(reg->ctx, id, status);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* a release of the model with the same image (the oldest), not the very
 * same release (model, version and build time: the backend's EXISTS) */
struct same_image {
    const otaup_reg_release *r;
    otaup_reg_release found;
    int hit;
};

static int same_image_cb(const otaup_reg_release *x, void *payload)
{
    struct same_image *c = payload;
    if (memcmp(x->image_hash, c->r->image_hash, OTAUP_REG_HASH_LEN) != 0 ||
        (strcmp(x->version, c->r->version) == 0 && x->build_time == c->r->build_time)) {
        return 0;
    }
    if (!c->hit || x->id < c->found.id) {
        c->found = *x;
        c->hit = 1;
    }
    return 0;
}

int otaup_registry_release_publish(otaup_registry *reg, otaup_reg_release *r, const uint8_t *image, size_t len,
                                   unsigned flags, otaup_reg_release *existing)
{
    XXH128_hash_t h;
    CHECK(reg, release_add);
    if (r == NULL || (image == NULL && len != 0) || !str_ok(r->model, sizeof r->model) ||
        !str_ok(r->version, sizeof r->version) || (flags & ~OTAUP_REG_PUBLISH_SAME_IMAGE) != 0) {
        return OTAUP_E_INVAL;
    }
    if (len == 0 || len > UINT32_MAX) {
        return OTAUP_E_RANGE;
    }
    h = XXH3_128bits(image, len);
    otaup_regcrypt_hash128_bytes(h.low64, h.high64, r->image_hash);
    r->image_size = (uint32_t)len;
    r->withdrawn = 0;
    if (!(flags & OTAUP_REG_PUBLISH_SAME_IMAGE)) {
        struct same_image c;
        int rc;
        memset(&c, 0, sizeof c);
        c.r = r;
        rc = otaup_registry_release_list(reg, r->model, same_image_cb, &c);
        if (rc < 0) {
            return rc;
        }
        if (c.hit) {
            if (existing != NULL) {
                *existing = c.found;
            }
            return OTAUP_E_SAME_IMAGE;
        }
    }
    return reg->ops->release_add(reg->ctx, r, image, len);
}

int otaup_registry_release_add(otaup_registry *reg, otaup_reg_release *r, const uint8_t *image,
                               size_t len)
{
    return otaup_registry_release_publish(reg, r, image, len, 0, NULL);
}

/* The image a backend hands back must be the one published: its size and
 * XXH3-128 were recorded then. A copy damaged at rest (a disk error, a
 * file edited by hand) is refused with OTAUP_E_HASH, so that nothing is
 * ever planned from it or to it (a delta to a damaged target would carry
 * its hash and pass the terminal's VERIFY). */
static int image_intact(int rc, const otaup_reg_release *r, otaup_blob *image)
{
    uint8_t h[OTAUP_REG_HASH_LEN];
    XXH128_hash_t x;
    if (rc < 0 || image == NULL) {
        return rc;
    }
    x = XXH3_128bits(image->data, image->len);
    otaup_regcrypt_hash128_bytes(x.low64, x.high64, h);
    if (image->len != r->image_size || memcmp(h, r->image_hash, sizeof h) != 0) {
        otaup_blob_free(image);
        return OTAUP_E_HASH;
    }
    return rc;
}

int otaup_registry_release_get(otaup_registry *reg, int64_t id, otaup_reg_release *out,
                               otaup_blob *image)
{
    CHECK(reg, release_get);
    return out == NULL ? OTAUP_E_INVAL : image_intact(reg->ops->release_get(reg->ctx, id, out, image), out, image);
}

int otaup_registry_release_list(otaup_registry *reg, const char *model, otaup_reg_release_cb cb,
                                void *payload)
{
    CHECK(reg, release_list);
    return cb == NULL ? OTAUP_E_INVAL : reg->ops->release_list(reg->ctx, model, cb, payload);
}

int otaup_registry_release_by_hash(otaup_registry *reg, const uint8_t hash[OTAUP_REG_HASH_LEN],
                                   otaup_reg_release *out, otaup_blob *image)
{
    CHECK(reg, release_by_hash);
    return hash == NULL || out == NULL ? OTAUP_E_INVAL
                                       : image_intact(reg->ops->release_by_hash(reg->ctx, hash, out, image), out,
                                                      image);
}

int otaup_registry_delta_get(otaup_registry *reg, const otaup_reg_delta_key *k, otaup_blob *delta)
{
    CHECK(reg, delta_get);
    if (k == NULL || delta == NULL || k->layout_len > OTAUP_REG_LAYOUT_MAX) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->delta_get(reg->ctx, k, delta);
}

int otaup_registry_delta_put(otaup_registry *reg, const otaup_reg_delta_key *k, const uint8_t *delta,
                             size_t len)
{
    CHECK(reg, delta_put);
    if (k == NULL || delta == NULL || len == 0 || k->layout_len > OTAUP_REG_LAYOUT_MAX) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->delta_put(reg->ctx, k, delta, len);
}

/* The terminal's data key: unwrap the stored one, or create and store one. */
static int terminal_key(otaup_registry *reg, const char *terminal, int create,
                        uint8_t key[OTAUP_REG_KEY_LEN])
{
    otaup_blob wrapped = { NULL, 0 };
    int rc;
    if (!reg->have_key) {
        return OTAUP_E_KEY;
    }
    if (reg->ops->terminal_key_get == NULL || reg->ops->terminal_key_put == NULL) {
        return OTAUP_E_UNSUPPORTED;
    }
    rc = reg->ops->terminal_key_get(reg->ctx, terminal, &wrapped);
    if (rc == 0) {
        rc = otaup_regcrypt_unwrap(reg->master, terminal, wrapped.data, wrapped.len, key);
        otaup_blob_free(&wrapped);
        return rc;
    }
    if (rc != OTAUP_E_NOT_FOUND || !create) {
        return rc;
    }
    {
        uint8_t w[OTAUP_REGCRYPT_WRAPPED_LEN];
        rc = otaup_regcrypt_random(key, OTAUP_REG_KEY_LEN);
        if (rc == 0) {
            rc = otaup_regcrypt_wrap(reg->master, terminal, key, w);
        }
        if (rc == 0) {
            rc = reg->ops->terminal_key_put(reg->ctx, terminal, w, sizeof w);
        }
        return rc;
    }
}

int otaup_registry_backup_store(otaup_registry *reg, const otaup_reg_backup *b, const uint8_t *plain,
                                size_t len)
{
    uint8_t key[OTAUP_REG_KEY_LEN];
    uint8_t *sealed;
    size_t sealed_len;
    int rc;
    CHECK(reg, backup_put);
    if (b == NULL || (plain == NULL && len != 0) || !str_ok(b->terminal, sizeof b->terminal) ||
        len != b->len) {
        return OTAUP_E_INVAL;
    }
    rc = terminal_key(reg, b->terminal, 1, key);
    if (rc < 0) {
        return rc;
    }
    sealed_len = len + OTAUP_REGCRYPT_OVERHEAD;
    sealed = malloc(sealed_len);
    if (sealed == NULL) {
        otaup_regcrypt_wipe(key, sizeof key);
        return OTAUP_E_NOMEM;
    }
    rc = otaup_regcrypt_seal(key, b->terminal, b->region, plain, len, sealed);
    otaup_regcrypt_wipe(key, sizeof key);
    if (rc == 0) {
        rc = reg->ops->backup_put(reg->ctx, b, sealed, sealed_len);
    }
    free(sealed);
    return rc;
}

int otaup_registry_backup_load(otaup_registry *reg, const char *terminal, uint32_t region,
                               otaup_reg_backup *meta, otaup_blob *plain)
{
    uint8_t key[OTAUP_REG_KEY_LEN];
    otaup_blob sealed = { NULL, 0 };
    otaup_reg_backup m;
    int rc;
    CHECK(reg, backup_get);
    if (terminal == NULL || plain == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = reg->ops->backup_get(reg->ctx, terminal, region, &m, &sealed);
    if (rc < 0) {
        return rc;
    }
    if (sealed.len < OTAUP_REGCRYPT_OVERHEAD || sealed.len - OTAUP_REGCRYPT_OVERHEAD != m.len) {
        otaup_blob_free(&sealed);
        return OTAUP_E_BACKUP;
    }
    rc = terminal_key(reg, terminal, 0, key);
    if (rc == OTAUP_E_NOT_FOUND) {
        rc = OTAUP_E_BACKUP;
    }
    if (rc == 0) {
        plain->len = m.len;
        plain->data = malloc(m.len ? m.len : 1);
        if (plain->data == NULL) {
            rc = OTAUP_E_NOMEM;
        } else {
            rc = otaup_regcrypt_open(key, terminal, region, sealed.data, sealed.len, plain->data);
            if (rc < 0) {
                otaup_blob_free(plain);
            }
        }
    }
    otaup_regcrypt_wipe(key, sizeof key);
    otaup_blob_free(&sealed);
    if (rc == 0 && meta != NULL) {
        *meta = m;
    }
    return rc;
}

int otaup_registry_backup_list(otaup_registry *reg, const char *terminal, otaup_reg_backup_cb cb,
                               void *payload)
{
    CHECK(reg, backup_list);
    return cb == NULL ? OTAUP_E_INVAL : reg->ops->backup_list(reg->ctx, terminal, cb, payload);
}

int otaup_registry_backup_delete(otaup_registry *reg, const char *terminal)
{
    int n, rc;
    CHECK(reg, backup_delete);
    if (terminal == NULL) {
        return OTAUP_E_INVAL;
    }
    n = reg->ops->backup_delete(reg->ctx, terminal);
    if (n < 0) {
        return n;
    }
    /* crypto-shredding: without the key no stray copy can be read again */
    if (reg->ops->terminal_key_put != NULL) {
        rc = reg->ops->terminal_key_put(reg->ctx, terminal, NULL, 0);
        if (rc < 0 && rc != OTAUP_E_NOT_FOUND) {
            return rc;
        }
    }
    return n;
}

int otaup_registry_notice_add(otaup_registry *reg, otaup_reg_notice *n)
{
    CHECK(reg, notice_add);
    if (n == NULL || !str_ok(n->terminal, sizeof n->terminal) ||
        memchr(n->text, '\0', sizeof n->text) == NULL ||
        memchr(n->channel, '\0', sizeof n->channel) == NULL) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->notice_add(reg->ctx, n);
}

int otaup_registry_notice_list(otaup_registry *reg, const char *terminal, int only_unsent,
                               otaup_reg_notice_cb cb, void *payload)
{
    CHECK(reg, notice_list);
    return cb == NULL ? OTAUP_E_INVAL
                      : reg->ops->notice_list(reg->ctx, terminal, only_unsent, cb, payload);
}

int otaup_registry_notice_mark_sent(otaup_registry *reg, int64_t id, int64_t when)
{
    CHECK(reg, notice_mark_sent);
    return reg->ops->notice_mark_sent(reg->ctx, id, when);
}

int otaup_registry_request_put(otaup_registry *reg, const otaup_reg_request *r)
{
    CHECK(reg, request_put);
    if (r == NULL || !str_ok(r->terminal, sizeof r->terminal) ||
        memchr(r->source, '\0', sizeof r->source) == NULL) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->request_put(reg->ctx, r);
}

int otaup_registry_request_get(otaup_registry *reg, const char *terminal, otaup_reg_request *out)
{
    CHECK(reg, request_get);
    return terminal == NULL || out == NULL ? OTAUP_E_INVAL
                                           : reg->ops->request_get(reg->ctx, terminal, out);
}

int otaup_registry_request_delete(otaup_registry *reg, const char *terminal)
{
    CHECK(reg, request_delete);
    return terminal == NULL ? OTAUP_E_INVAL : reg->ops->request_delete(reg->ctx, terminal);
}

int otaup_registry_session_put(otaup_registry *reg, const otaup_reg_session *s)
{
    CHECK(reg, session_put);
    if (s == NULL || !str_ok(s->terminal, sizeof s->terminal) ||
        memchr(s->state, '\0', sizeof s->state) == NULL) {
        return OTAUP_E_INVAL;
    }
    return reg->ops->session_put(reg->ctx, s);
}

int otaup_registry_session_get(otaup_registry *reg, const char *terminal, otaup_reg_session *out)
{
    CHECK(reg, session_get);
    return terminal == NULL || out == NULL ? OTAUP_E_INVAL
                                           : reg->ops->session_get(reg->ctx, terminal, out);
}

int otaup_registry_session_delete(otaup_registry *reg, const char *terminal)
{
    CHECK(reg, session_delete);
    return terminal == NULL ? OTAUP_E_INVAL : reg->ops->session_delete(reg->ctx, terminal);
}

int otaup_registry_audit(otaup_registry *reg, const char *terminal, const char *event,
                         const char *detail_fmt, ...)
{
    otaup_reg_audit a;
    va_list ap;
    CHECK(reg, audit_add);
    if (event == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(&a, 0, sizeof a);
    snprintf(a.terminal, sizeof a.terminal, "%s", terminal != NULL ? terminal : "");
    snprintf(a.event, sizeof a.event, "%s", event);
    if (detail_fmt != NULL) {
        va_start(ap, detail_fmt);
        vsnprintf(a.detail, sizeof a.detail, detail_fmt, ap);
        va_end(ap);
    }
    return reg->ops->audit_add(reg->ctx, &a);
}

int otaup_registry_audit_list(otaup_registry *reg, const char *terminal, unsigned limit,
                              otaup_reg_audit_cb cb, void *payload)
{
    CHECK(reg, audit_list);
    return cb == NULL ? OTAUP_E_INVAL : reg->ops->audit_list(reg->ctx, terminal, limit, cb, payload);
}

/* ---- withdrawal ------------------------------------------------------- */

int otaup_registry_session_started(const otaup_reg_session *s)
{
    static const char *const started[] = { "start", "transfer", "verify", "restore", "commit" };
    size_t i;
    if (s == NULL) {
        return 0;
    }
    for (i = 0; i < sizeof started / sizeof started[0]; i++) {
        if (strcmp(s->state, started[i]) == 0) {
            return 1;
        }
    }
    /* given up after START was built: the terminal's journal may hold it,
     * and then the session is resumed (docs/server.md, "Resume"); and a
     * resumed session passes through prepare (or backup) again with the
     * stream's size recorded by its first START */
    return (strcmp(s->state, "failed") == 0 || strcmp(s->state, "prepare") == 0 ||
            strcmp(s->state, "backup") == 0) &&
           s->bytes_total > 0;
}

/* the terminal ids, listed first: the callers change rows as they go */
struct id_list {
    char (*ids)[OTAUP_REG_ID_MAX];
    size_t n, cap;
    int err;
};

static int collect_id(const otaup_reg_terminal *t, void *payload)
{
    struct id_list *l = payload;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char(*p)[OTAUP_REG_ID_MAX] = realloc(l->ids, cap * sizeof *p);
        if (p == NULL) {
            l->err = OTAUP_E_NOMEM;
            return 1;
        }
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], OTAUP_REG_ID_MAX, "%s", t->id);
    return 0;
}

static int list_ids(otaup_registry *reg, struct id_list *l)
{
    int rc;
    memset(l, 0, sizeof *l);
    rc = otaup_registry_terminal_list(reg, collect_id, l);
    if (rc < 0 || l->err < 0) {
        free(l->ids);
        l->ids = NULL;
        return rc < 0 ? rc : l->err;
    }
    return 0;
}

int otaup_registry_key_check(otaup_registry *reg, char *terminal, size_t cap)
{
    struct id_list l;
    size_t i;
    int rc, held = 0, res = 0;
    if (terminal != NULL && cap > 0) {
        terminal[0] = '\0';
    }
    if (reg == NULL) {
        return OTAUP_E_INVAL;
    }
    if (!reg->have_key) {
        return OTAUP_E_KEY;
    }
    if (reg->ops->terminal_key_get == NULL) {
        return 0; /* a backend without keys: nothing to check against */
    }
    rc = list_ids(reg, &l);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < l.n; i++) {
        otaup_blob wrapped = { NULL, 0 };
        uint8_t key[OTAUP_REG_KEY_LEN];
        rc = reg->ops->terminal_key_get(reg->ctx, l.ids[i], &wrapped);
        if (rc == OTAUP_E_NOT_FOUND) {
            continue;
        }
        if (rc < 0) {
            res = rc;
            break;
        }
        rc = otaup_regcrypt_unwrap(reg->master, l.ids[i], wrapped.data, wrapped.len, key);
        otaup_blob_free(&wrapped);
        otaup_regcrypt_wipe(key, sizeof key);
        if (rc == 0) {
            res = 0; /* one key unwraps: this is the registry's master key */
            break;
        }
        if (rc != OTAUP_E_DECRYPT) {
            res = rc;
            break;
        }
        if (held++ == 0 && terminal != NULL && cap > 0) {
            snprintf(terminal, cap, "%s", l.ids[i]);
        }
        res = OTAUP_E_KEY;
    }
    free(l.ids);
    return res;
}

int otaup_registry_release_sessions(otaup_registry *reg, int64_t release_id, otaup_reg_session_cb cb,
                                    void *payload)
{
    struct id_list l;
    size_t i;
    int rc, started = 0;
    CHECK(reg, session_get);
    rc = list_ids(reg, &l);
    if (rc < 0) {
        return rc;
    }
    for (i = 0; i < l.n; i++) {
        otaup_reg_session s;
        int st;
        rc = otaup_registry_session_get(reg, l.ids[i], &s);
        if (rc == OTAUP_E_NOT_FOUND) {
            rc = 0;
            continue;
        }
        if (rc < 0) {
            break;
        }
        rc = 0;
        if (s.release_id != release_id) {
            continue;
        }
        st = otaup_registry_session_started(&s);
        if (!st && strcmp(s.state, "backup") != 0 && strcmp(s.state, "prepare") != 0) {
            continue; /* done, or failed before its START */
        }
        started += st;
        if (cb != NULL && (rc = cb(&s, payload)) != 0) {
            break;
        }
    }
    free(l.ids);
    return rc < 0 ? rc : started;
}

int otaup_registry_release_withdraw(otaup_registry *reg, int64_t id, unsigned flags, const char *reason,
                                    unsigned *requests_dropped)
{
    otaup_reg_release r;
    struct id_list l;
    unsigned dropped = 0;
    size_t i;
    int rc, n, n_due;
    CHECK(reg, release_set_withdrawn);
    if (requests_dropped != NULL) {
        *requests_dropped = 0;
    }
    if ((flags & ~OTAUP_REG_WITHDRAW_FORCE) != 0) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_registry_release_get(reg, id, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    n = 0;
    if (r.withdrawn == 0) {
        n = otaup_registry_release_sessions(reg, id, NULL, NULL);
        if (n < 0) {
            return n;
        }
        if (n > 0 && !(flags & OTAUP_REG_WITHDRAW_FORCE)) {
            return OTAUP_E_IN_PROGRESS;
        }
        rc = reg->ops->release_set_withdrawn(reg->ctx, id, wall_ms());
        if (rc < 0) {
            return rc;
        }
    }
    /* the users agreed to this version: their requests go with it. Run
     * again when the release is withdrawn already: a sweep cut short (an
     * error, a crash) or a request recorded meanwhile is finished then */
    rc = list_ids(reg, &l);
    for (i = 0; rc == 0 && i < l.n; i++) {
        otaup_reg_request q;
        otaup_reg_terminal t;
        otaup_reg_release next;
        rc = otaup_registry_request_get(reg, l.ids[i], &q);
        if (rc == 0 && q.release_id == id) {
            rc = otaup_registry_request_delete(reg, l.ids[i]);
            if (rc < 0) {
                break;
            }
            dropped++;
            otaup_registry_audit(reg, l.ids[i], "request-dropped",
                                 "by %s for release %lld (%s %s), which was withdrawn: a new request is needed",
                                 q.source, (long long)id, r.model, r.version);
        }
        rc = 0;
        /* a terminal waiting for an upgrade: what is due now that this
         * release is not (requested: its request is gone either way) */
        if (otaup_registry_terminal_get(reg, l.ids[i], &t) != 0 || strcmp(t.model, r.model) != 0 ||
            (strcmp(t.status, "requested") != 0 && strcmp(t.status, "upgrade-due") != 0 &&
             strcmp(t.status, "notified") != 0)) {
            continue;
        }
        n_due = otaup_registry_policy(reg, &t, &next);
        if (n_due == OTAUP_E_NO_RELEASE || n_due == OTAUP_E_DOWNGRADE) {
            rc = otaup_registry_terminal_set_status(reg, l.ids[i], "up-to-date");
        } else if (n_due == 0 && strcmp(t.status, "requested") == 0 &&
                   otaup_registry_request_get(reg, l.ids[i], &q) != 0) {
            rc = otaup_registry_terminal_set_status(reg, l.ids[i], "upgrade-due");
        }
    }
    free(l.ids);
    if (requests_dropped != NULL) {
        *requests_dropped = dropped;
    }
    if (r.withdrawn != 0) {
        return rc < 0 ? rc : OTAUP_E_WITHDRAWN;
    }
    otaup_registry_audit(reg, NULL, "release-withdrawn",
                         "release %lld (%s %s): %d session(s) in progress still finish, %u request(s) dropped%s%.200s",
                         (long long)id, r.model, r.version, n, dropped, reason != NULL ? "; reason: " : "",
                         reason != NULL ? reason : "");
    return rc < 0 ? rc : n;
}

int otaup_registry_release_restore(otaup_registry *reg, int64_t id)
{
    otaup_reg_release r;
    int rc;
    CHECK(reg, release_set_withdrawn);
    rc = otaup_registry_release_get(reg, id, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    if (r.withdrawn == 0) {
        return OTAUP_E_STATE;
    }
    rc = reg->ops->release_set_withdrawn(reg->ctx, id, 0);
    if (rc < 0) {
        return rc;
    }
    otaup_registry_audit(reg, NULL, "release-restored", "release %lld (%s %s) is offered again", (long long)id,
                         r.model, r.version);
    return 0;
}

/* ---- policy ------------------------------------------------------------ */

uint32_t otaup_version_pack(const char *v)
{
    /* the first three runs of digits, 8.8.16 bits; a run too large for its
     * field saturates the whole number, so the order is kept */
    static const uint32_t max[3] = { 0xFFu, 0xFFu, 0xFFFFu };
    static const unsigned shift[3] = { 24, 16, 0 };
    uint32_t n = 0;
    unsigned part = 0;
    if (v == NULL) {
        return 0;
    }
    while (*v != '\0' && part < 3) {
        uint64_t x = 0;
        if (*v < '0' || *v > '9') {
            v++;
            continue;
        }
        while (*v >= '0' && *v <= '9') {
            x = x * 10u + (uint64_t)(*v - '0');
            if (x > 0xFFFFFFFFu) {
                x = 0xFFFFFFFFu + 1ull;
            }
            v++;
        }
        if (x > max[part]) {
            return n | (0xFFFFFFFFu >> (part == 0 ? 0 : 8u * part));
        }
        n |= (uint32_t)x << shift[part];
        part++;
    }
    return n;
}

int otaup_version_cmp(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea = a, *eb = b;
            size_t la, lb;
            while (*a == '0' && a[1] >= '0' && a[1] <= '9') {
                a++;
            }
            while (*b == '0' && b[1] >= '0' && b[1] <= '9') {
                b++;
            }
            for (ea = a; *ea >= '0' && *ea <= '9'; ea++) {
            }
            for (eb = b; *eb >= '0' && *eb <= '9'; eb++) {
            }
            la = (size_t)(ea - a);
            lb = (size_t)(eb - b);
            if (la != lb) {
                return la < lb ? -1 : 1;
            }
            {
                int c = memcmp(a, b, la);
                if (c != 0) {
                    return c < 0 ? -1 : 1;
                }
            }
            a = ea;
            b = eb;
        } else {
            if (*a != *b) {
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            }
            a++;
            b++;
        }
    }
    if (*a == *b) {
        return 0;
    }
    return *a == '\0' ? -1 : 1;
}

static int release_newer(const otaup_reg_release *x, const otaup_reg_release *y)
{
    int c = otaup_version_cmp(x->version, y->version);
    if (c != 0) {
        return c > 0;
    }
    if (x->build_time != y->build_time) {
        return x->build_time > y->build_time;
    }
    return x->id > y->id;
}

struct newest_ctx {
    otaup_reg_release best;
    int found;
};

static int pick_newest(const otaup_reg_release *r, void *payload)
{
    struct newest_ctx *c = payload;
    if (r->withdrawn != 0) {
        return 0; /* no longer offered */
    }
    if (!c->found || release_newer(r, &c->best)) {
        c->best = *r;
        c->found = 1;
    }
    return 0;
}

int otaup_registry_policy(otaup_registry *reg, const otaup_reg_terminal *t, otaup_reg_release *out)
{
    struct newest_ctx c;
    int rc, cmp;
    if (reg == NULL || t == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(&c, 0, sizeof c);
    rc = otaup_registry_release_list(reg, t->model, pick_newest, &c);
    if (rc < 0) {
        return rc;
    }
    if (!c.found || memcmp(c.best.image_hash, t->image_hash, OTAUP_REG_HASH_LEN) == 0) {
        return OTAUP_E_NO_RELEASE;
    }
    cmp = otaup_version_cmp(c.best.version, t->version);
    if (cmp == 0 && c.best.build_time != t->build_time) {
        cmp = c.best.build_time > t->build_time ? 1 : -1;
    }
    *out = c.best;
    if (cmp < 0 && !c.best.allow_downgrade) {
        return OTAUP_E_DOWNGRADE;
    }
    return 0;
}

int otaup_registry_notice_text(char *buf, size_t cap, const otaup_reg_terminal *t,
                               const otaup_reg_release *r)
{
    int n;
    if (buf == NULL || cap == 0 || t == NULL || r == NULL) {
        return OTAUP_E_INVAL;
    }
    n = snprintf(buf, cap,
                 "New software %s for your %s is ready (you have %s). Call the customer centre "
                 "free of charge and press 1, or accept on your phone, to upgrade. Your personal "
                 "data is kept safe.",
                 r->version, t->model, t->version);
    if (n < 0) {
        return OTAUP_E_INTERNAL;
    }
    return (size_t)n >= cap ? (int)cap - 1 : n;
}

struct find_notice {
    int64_t release_id;
    otaup_reg_notice found;
    int hit;
};

static int find_notice_cb(const otaup_reg_notice *n, void *payload)
{
    struct find_notice *f = payload;
    /* a dropped notice (out of date once) is no notice: the release is due
     * again, and the user hears of it with a new text */
    if (n->release_id == f->release_id && n->sent >= 0) {
        f->found = *n;
        f->hit = 1;
        return 1;
    }
    return 0;
}

int otaup_registry_notify(otaup_registry *reg, const otaup_reg_terminal *t, const otaup_reg_release *r,
                          otaup_reg_notice *out)
{
    struct find_notice f;
    otaup_reg_notice n;
    int rc;
    if (reg == NULL || t == NULL || r == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(&f, 0, sizeof f);
    f.release_id = r->id;
    rc = otaup_registry_notice_list(reg, t->id, 0, find_notice_cb, &f);
    if (rc < 0) {
        return rc;
    }
    if (f.hit) {
        if (out != NULL) {
            *out = f.found;
        }
        return 0;
    }
    memset(&n, 0, sizeof n);
    snprintf(n.terminal, sizeof n.terminal, "%s", t->id);
    snprintf(n.channel, sizeof n.channel, "sms");
    n.release_id = r->id;
    otaup_registry_notice_text(n.text, sizeof n.text, t, r);
    rc = otaup_registry_notice_add(reg, &n);
    if (rc < 0) {
        return rc;
    }
    rc = otaup_registry_terminal_set_status(reg, t->id, "notified");
    if (rc < 0 && rc != OTAUP_E_NOT_FOUND) {
        return rc;
    }
    rc = otaup_registry_audit(reg, t->id, "notified", "release %lld (%s %s) notice %lld queued",
                              (long long)r->id, r->model, r->version, (long long)n.id);
    if (rc < 0) {
        return rc;
    }
    if (out != NULL) {
        *out = n;
    }
    return 1;
}

int otaup_registry_notice_check(otaup_registry *reg, const otaup_reg_notice *n)
{
    otaup_reg_release r, due;
    otaup_reg_terminal t;
    int rc;
    if (reg == NULL || n == NULL) {
        return OTAUP_E_INVAL;
    }
    rc = otaup_registry_release_get(reg, n->release_id, &r, NULL);
    if (rc == 0 && r.withdrawn != 0) {
        return OTAUP_REG_NOTICE_HELD; /* not sent, not dropped: a restore lets it go out */
    }
    if (rc == 0) {
        rc = otaup_registry_terminal_get(reg, n->terminal, &t);
        if (rc == OTAUP_E_NOT_FOUND) {
            /* a terminal the registry does not hold (queued by another
             * tool): nothing says the release is not due for it */
            return OTAUP_REG_NOTICE_DUE;
        }
    }
    if (rc == 0) {
        /* the release the terminal is due for now: it installed this one
         * (or a newer one) since the notice was queued, or a newer one is
         * due, with its own notice. This one's text would offer the user
         * what they have ("you have 1.0" to a terminal on 2.0), or what
         * they would no longer get */
        rc = otaup_registry_policy(reg, &t, &due);
        if (rc == 0 && due.id == n->release_id) {
            return OTAUP_REG_NOTICE_DUE;
        }
    }
    if (rc < 0 && rc != OTAUP_E_NOT_FOUND && rc != OTAUP_E_NO_RELEASE && rc != OTAUP_E_DOWNGRADE) {
        return rc;
    }
    rc = otaup_registry_notice_mark_sent(reg, n->id, -wall_ms());
    if (rc < 0) {
        return rc;
    }
    otaup_registry_audit(reg, n->terminal, "notice-dropped",
                         "notice %lld for release %lld out of date: not delivered", (long long)n->id,
                         (long long)n->release_id);
    return OTAUP_REG_NOTICE_STALE;
}
