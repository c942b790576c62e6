/*
 * otaupctl — the operator's and customer centre's tool (docs/server.md).
 *
 * It works on the same registry (the user database) as otaupd:
 *   otaupctl [--db PATH] release add --model M --version V --build-time T
 *                                    [--security-counter N | --counter N] [--allow-downgrade]
 *                                    [--sign KEY] [--allow-duplicate] IMAGE
 *   otaupctl [--db PATH] release sign RELEASE --key KEY
 *   otaupctl [--db PATH] release withdraw RELEASE [--force] [--reason TEXT]
 *   otaupctl [--db PATH] release restore RELEASE
 *   otaupctl [--db PATH] releases [--model M]
 *   otaupctl [--db PATH] terminals
 *   otaupctl [--db PATH] notify
 *   otaupctl [--db PATH] request TERMINAL
 *   otaupctl [--db PATH] status TERMINAL
 *   otaupctl [--db PATH] audit [--terminal T] [--limit N]
 *   otaupctl [--db PATH] backups
 * Exit codes: 0 success, 1 failure, 2 usage error, 3 refused by a safety
 * check that a flag overrides (withdraw --force, add --allow-duplicate).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/sign.h"

#if !OTAUP_HAVE_MBEDTLS
#define otaup_key_free(k) ((void)(k)) /* no keys without mbedTLS */
#endif

#define EXIT_USAGE 2
#define EXIT_REFUSED 3 /* a safety check an explicit flag overrides */

static const char *db_path = "otaup.db";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otaupctl [--db PATH] COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  release add --model M --version V --build-time T [--security-counter N]\n"
            "              [--allow-downgrade] [--sign KEY] [--allow-duplicate] IMAGE\n"
            "                                            publish a release (--sign: with its deltas\n"
            "                                            signed by the private key KEY; --counter N\n"
            "                                            is --security-counter N; an image already\n"
            "                                            published for the model is refused unless\n"
            "                                            --allow-duplicate)\n"
            "  release sign RELEASE --key KEY            sign the deltas to a published release\n"
            "                                            (for terminals seen since it was published)\n"
            "  release withdraw RELEASE [--force] [--reason TEXT]\n"
            "                                            stop offering a release; sessions already\n"
            "                                            started to it finish (with sessions in\n"
            "                                            progress: refused, exit 3, unless --force)\n"
            "  release restore RELEASE                   offer a withdrawn release again\n"
            "  releases [--model M]                      list releases\n"
            "  terminals                                 list terminals: model, version, state\n"
            "  notify                                    queue and send due notifications\n"
            "  request TERMINAL                          the user asks for the upgrade\n"
            "  status TERMINAL                           progress and history of a terminal\n"
            "  audit [--terminal T] [--limit N]          the audit log\n"
            "  backups                                   backups held (metadata only)\n"
            "\n"
            "--db PATH   the registry (default ./otaup.db, or $OTAUP_DB)\n"
            "--build-time accepts seconds since the epoch or YYYY-MM-DD[THH:MM[:SS]] (UTC)\n"
            "exit codes: 0 success, 1 failure, 2 usage error, 3 refused by a safety check\n"
            "            (release withdraw without --force, release add without --allow-duplicate)\n");
}

static int fail(int rc, const char *what, otaup_registry *reg)
{
    fprintf(stderr, "otaupctl: %s: %s (%s)%s%s\n", what, otaup_strerror(rc),
            otaup_errname(rc) ? otaup_errname(rc) : "?", reg && *otaup_registry_errmsg(reg) ? ": " : "",
            reg ? otaup_registry_errmsg(reg) : "");
    return EXIT_FAILURE;
}

static int open_db(otaup_registry **reg, int must_exist)
{
    otaup_registry_options o;
    char err[256] = "";
    struct stat st;
    int rc;
    if (must_exist && stat(db_path, &st) != 0) {
        fprintf(stderr, "otaupctl: registry %s: %s (create it with 'release add' or start otaupd)\n",
                db_path, strerror(errno));
        return -1;
    }
    if (stat(db_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* SQLite says only "unable to open database file" */
        fprintf(stderr, "otaupctl: registry %s: %s\n", db_path, strerror(EISDIR));
        return -1;
    }
    if (must_exist && S_ISREG(st.st_mode) && st.st_size == 0) {
        /* SQLite takes an empty file for a new database: a command that
         * reads would make an empty registry of it and show nothing */
        fprintf(stderr,
                "otaupctl: registry %s is empty (0 bytes): not a registry, left as it is (restore it from a "
                "backup, or remove it and publish again)\n",
                db_path);
        return -1;
    }
    otaup_registry_options_init(&o);
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    rc = otaup_registry_sqlite_open(db_path, &o, reg);
    if (rc < 0) {
        fprintf(stderr, "otaupctl: cannot open registry %s: %s%s%s\n", db_path, otaup_strerror(rc),
                err[0] ? ": " : "", err);
        return -1;
    }
    return 0;
}

/* An XXH3-128 for people: xxHash's canonical form (XXH128_canonicalFromHash:
 * the high 64 bits first, big-endian), as `otaup sig`, `otaup inspect` and
 * otaupd's log print it; the registry stores it low half first, little-endian. */
static void hash_hex(char *out, const uint8_t h[16])
{
    size_t i;
    for (i = 0; i < 16; i++) {
        sprintf(out + 2 * i, "%02x", h[15 - i]);
    }
}

/* The latest build time taken and printed as a date: 9999-12-31T23:59:59Z.
 * A larger number is most likely milliseconds given for seconds. */
#define BUILD_TIME_MAX 253402300799LL

static void fmt_time(char *out, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms == 0) {
        snprintf(out, cap, "-");
        return;
    }
    if (ms < 0 || ms / 1000 > BUILD_TIME_MAX || gmtime_r(&t, &tm) == NULL ||
        strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(out, cap, "%lld ms", (long long)ms); /* no date for it: the number as stored */
    }
}

/* A build time (seconds since the epoch) for people; one stored by
 * another program beyond BUILD_TIME_MAX is printed as the number. */
static void fmt_build_time(char *out, size_t cap, int64_t s)
{
    if (s < 0 || s > BUILD_TIME_MAX) {
        snprintf(out, cap, "%lld s", (long long)s);
        return;
    }
    fmt_time(out, cap, s * 1000);
}

/* A number written as digits only: strtoul/strtoll would also take
 * blanks, a sign, or nothing at all (an empty --limit read as 0, "no
 * limit"). */
static int is_number(const char *s)
{
    return s[0] >= '0' && s[0] <= '9';
}

static int parse_time(const char *s, int64_t *out)
{
    char *end;
    long long v;
    struct tm tm;
    int n = 0;
    if (!is_number(s)) {
        return -1; /* a date begins with a digit too */
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end == '\0' && errno == 0 && v >= 0) {
        *out = v;
        return v > BUILD_TIME_MAX ? -1 : 0;
    }
    memset(&tm, 0, sizeof tm);
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) != 3) {
        return -1;
    }
    if (s[n] == 'T' || s[n] == ' ') {
        int m = 0;
        if (sscanf(s + n + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &m) != 2) {
            return -1;
        }
        n += 1 + m;
        if (s[n] == ':') {
            if (sscanf(s + n + 1, "%2d%n", &tm.tm_sec, &m) != 1) {
                return -1;
            }
            n += 1 + m;
        }
        if (s[n] == 'Z') {
            n++;
        }
    }
    if (s[n] != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    *out = (int64_t)timegm(&tm);
    return *out < 0 || *out > BUILD_TIME_MAX ? -1 : 0;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    long sz;
    if (f == NULL) {
        fprintf(stderr, "otaupctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a directory opens for reading; its reason, not "read error" */
        fprintf(stderr, "otaupctl: %s: %s\n", path, S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
        fclose(f);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "otaupctl: %s: not a regular file\n", path);
        fclose(f);
        return -1;
    }
    if (sz == 0) {
        fprintf(stderr, "otaupctl: %s: empty image\n", path);
        fclose(f);
        return -1;
    }
    *data = malloc((size_t)sz);
    if (*data == NULL || fread(*data, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "otaupctl: %s: read error\n", path);
        free(*data);
        fclose(f);
        return -1;
    }
    fclose(f);
    *len = (size_t)sz;
    return 0;
}

/* ---- release add / releases ------------------------------------------- */

static void precompute_log(int level, const char *terminal, const char *event, const char *msg, void *p)
{
    (void)level, (void)event, (void)p;
    printf("  delta for terminals like %s: %s\n", terminal, msg);
}

/* A private signing key from a file (PEM, as `otaup keygen` writes it). NULL and a message on failure. */
static otaup_key *load_sign_key(const char *path)
{
#if OTAUP_HAVE_MBEDTLS
    uint8_t *data = NULL;
    size_t len = 0;
    otaup_key *k = NULL;
    int rc;
    if (read_file(path, &data, &len) != 0) {
        return NULL;
    }
    rc = otaup_key_parse(data, len, &k);
    memset(data, 0, len);
    free(data);
    if (rc != 0) {
        fprintf(stderr, "otaupctl: %s: not an ECDSA P-256 key (%s)\n", path, otaup_strerror(rc));
        return NULL;
    }
    if (!otaup_key_has_private(k)) {
        fprintf(stderr, "otaupctl: %s is a public key: signing needs the private key (otaup keygen -o KEY "
                        "writes KEY)\n", path);
        otaup_key_free(k);
        return NULL;
    }
    return k;
#else
    fprintf(stderr, "otaupctl: %s: this build has no mbedTLS, so it cannot sign\n", path);
    return NULL;
#endif
}

static void sign_log(int level, const char *terminal, const char *event, const char *msg, void *p)
{
    (void)level, (void)p;
    if (strcmp(event, "sign") == 0) {
        printf("  signed delta for terminals like %s: %s\n", terminal, msg);
    } else {
        printf("  delta for terminals like %s: %s\n", terminal, msg);
    }
}

/* RELEASE: a release number as `releases` shows it. 0 and a message if malformed. */
static int64_t release_number(const char *cmd, const char *arg)
{
    char *end;
    long long id;
    errno = 0;
    id = strtoll(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || id <= 0) {
        fprintf(stderr, "otaupctl: release %s: bad RELEASE '%s' (a release number, see 'releases')\n", cmd, arg);
        return 0;
    }
    return (int64_t)id;
}

/* Publication-time signing of the deltas to release `id` (docs/server.md, "Signed releases"). */
static int sign_release(otaup_registry *reg, int64_t id, otaup_key *key)
{
    int rc = otaup_session_sign_release(reg, id, key, sign_log, NULL);
    if (rc < 0) {
        fprintf(stderr, "otaupctl: signing the deltas of release %lld: %s (%s)\n", (long long)id,
                otaup_strerror(rc), otaup_errname(rc) ? otaup_errname(rc) : "?");
        return EXIT_FAILURE;
    }
    otaup_registry_audit(reg, NULL, "release-signed", "release %lld: %d delta(s) signed", (long long)id, rc);
    printf("deltas signed: %d\n", rc);
    return EXIT_SUCCESS;
}

static int cmd_release_sign(int argc, char **argv)
{
    otaup_registry *reg;
    otaup_reg_release r;
    otaup_key *key;
    const char *key_path = NULL, *idarg = NULL;
    int64_t id;
    int i, rc;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
            key_path = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "otaupctl: release sign: unknown or incomplete option '%s'\n", argv[i]);
            return EXIT_USAGE;
        } else if (idarg == NULL) {
            idarg = argv[i];
        } else {
            fprintf(stderr, "otaupctl: release sign: one RELEASE only\n");
            return EXIT_USAGE;
        }
    }
    if (idarg == NULL || key_path == NULL) {
        fprintf(stderr, "otaupctl: release sign needs RELEASE (its number, see 'releases') and --key KEY\n");
        return EXIT_USAGE;
    }
    if ((id = release_number("sign", idarg)) == 0) {
        return EXIT_USAGE;
    }
    key = load_sign_key(key_path);
    if (key == NULL) {
        return EXIT_FAILURE;
    }
    if (open_db(&reg, 1) != 0) {
        otaup_key_free(key);
        return EXIT_FAILURE;
    }
    rc = otaup_registry_release_get(reg, (int64_t)id, &r, NULL);
    if (rc < 0) {
        rc = fail(rc, "release sign: no such release", reg);
    } else {
        rc = sign_release(reg, r.id, key);
    }
    otaup_key_free(key);
    otaup_registry_free(reg);
    return rc;
}

/* The newest release of a model that is offered (not withdrawn), other
 * than `skip`: the one the policy picks (version, then build time). */
struct newer_ctx {
    int64_t skip;
    int found;
    otaup_reg_release best;
};

static int newer_cb(const otaup_reg_release *r, void *payload)
{
    struct newer_ctx *c = payload;
    int cmp;
    if (r->id == c->skip || r->withdrawn != 0) {
        return 0;
    }
    cmp = c->found ? otaup_version_cmp(r->version, c->best.version) : 1;
    if (cmp > 0 || (cmp == 0 && r->build_time > c->best.build_time)) {
        c->best = *r;
        c->found = 1;
    }
    return 0;
}

static int cmd_release_add(int argc, char **argv)
{
    otaup_reg_release r;
    otaup_registry *reg;
    const char *model = NULL, *version = NULL, *bt = NULL, *image = NULL, *sign = NULL;
    otaup_reg_release dup;
    unsigned flags = 0;
    otaup_key *key = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    char h[40];
    int i, rc;
    memset(&r, 0, sizeof r);
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model = argv[++i];
        } else if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
            version = argv[++i];
        } else if (strcmp(argv[i], "--build-time") == 0 && i + 1 < argc) {
            bt = argv[++i];
        } else if (strcmp(argv[i], "--sign") == 0 && i + 1 < argc) {
            sign = argv[++i];
        } else if ((strcmp(argv[i], "--security-counter") == 0 || strcmp(argv[i], "--counter") == 0) &&
                   i + 1 < argc) {
            char *end;
            unsigned long v;
            errno = 0;
            v = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || !is_number(argv[i]) || errno != 0 || v > UINT32_MAX) {
                fprintf(stderr, "otaupctl: bad %s '%s'\n", argv[i - 1], argv[i]);
                return EXIT_USAGE;
            }
            r.security_counter = (uint32_t)v;
        } else if (strcmp(argv[i], "--allow-downgrade") == 0) {
            r.allow_downgrade = 1;
        } else if (strcmp(argv[i], "--allow-duplicate") == 0) {
            flags |= OTAUP_REG_PUBLISH_SAME_IMAGE;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "otaupctl: release add: unknown or incomplete option '%s'\n", argv[i]);
            return EXIT_USAGE;
        } else if (image == NULL) {
            image = argv[i];
        } else {
            fprintf(stderr, "otaupctl: release add: one IMAGE only\n");
            return EXIT_USAGE;
        }
    }
    if (model == NULL || version == NULL || bt == NULL || image == NULL) {
        fprintf(stderr, "otaupctl: release add needs --model, --version, --build-time and IMAGE\n");
        return EXIT_USAGE;
    }
    if (strlen(model) == 0 || strlen(model) >= sizeof r.model || strlen(version) == 0 ||
        strlen(version) >= sizeof r.version) {
        fprintf(stderr, "otaupctl: model (1..%zu chars) or version (1..%zu chars) out of range\n",
                sizeof r.model - 1, sizeof r.version - 1);
        return EXIT_USAGE;
    }
    if (parse_time(bt, &r.build_time) != 0) {
        fprintf(stderr,
                "otaupctl: bad --build-time '%s' (seconds since 1970, or YYYY-MM-DD[THH:MM[:SS]], up to "
                "9999-12-31T23:59:59: milliseconds are not seconds)\n",
                bt);
        return EXIT_USAGE;
    }
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.version, sizeof r.version, "%s", version);
    if (sign != NULL && (key = load_sign_key(sign)) == NULL) {
        return EXIT_FAILURE; /* before anything is published */
    }
    if (read_file(image, &data, &len) != 0) {
        otaup_key_free(key);
        return EXIT_FAILURE;
    }
    if (open_db(&reg, 0) != 0) {
        free(data);
        otaup_key_free(key);
        return EXIT_FAILURE;
    }
    rc = otaup_registry_release_publish(reg, &r, data, len, flags, &dup);
    free(data);
    if (rc == OTAUP_E_SAME_IMAGE) {
        char bts[32];
        hash_hex(h, dup.image_hash);
        fmt_build_time(bts, sizeof bts, dup.build_time);
        fprintf(stderr,
                "otaupctl: release add: this image (hash %s) is already published as release %lld (%s %s, "
                "build time %s%s); nothing was published (%s). Publish it anyway with --allow-duplicate%s\n",
                h, (long long)dup.id, dup.model, dup.version, bts, dup.withdrawn ? ", withdrawn" : "",
                otaup_errname(rc), dup.withdrawn ? ", or offer it again with 'release restore'" : "");
        otaup_registry_free(reg);
        otaup_key_free(key);
        return EXIT_REFUSED;
    }
    if (rc < 0) {
        rc = fail(rc, rc == OTAUP_E_EXISTS ? "release add: this model, version and build time are "
                                             "already published"
                                           : "release add",
                  reg);
        otaup_registry_free(reg);
        otaup_key_free(key);
        return rc;
    }
    hash_hex(h, r.image_hash);
    otaup_registry_audit(reg, NULL, "release-added", "release %lld: %s %s, %zu bytes, hash %s",
                         (long long)r.id, r.model, r.version, len, h);
    printf("release %lld: model %s version %s build-time %lld size %zu hash %s%s\n", (long long)r.id,
           r.model, r.version, (long long)r.build_time, len, h,
           r.allow_downgrade ? " (downgrade allowed)" : "");
    {
        /* published, but the policy offers the newest release of the
         * model: an older one reaches no terminal while that one stays */
        struct newer_ctx nc;
        int cmp;
        memset(&nc, 0, sizeof nc);
        nc.skip = r.id;
        if (otaup_registry_release_list(reg, r.model, newer_cb, &nc) >= 0 && nc.found &&
            ((cmp = otaup_version_cmp(nc.best.version, r.version)) > 0 ||
             (cmp == 0 && nc.best.build_time > r.build_time))) {
            char bts[32];
            fmt_build_time(bts, sizeof bts, nc.best.build_time);
            fprintf(stderr,
                    "otaupctl: release add: note: release %lld (%s %s, build time %s) is newer and offered: "
                    "this one is offered to no terminal while it is (withdraw it to offer this one)\n",
                    (long long)nc.best.id, nc.best.model, nc.best.version, bts);
        }
    }
    if (key != NULL) {
        /* the unsigned analysis, then each delta signed: the daemon never needs the key */
        printf("security counter %u\n", r.security_counter);
        rc = sign_release(reg, r.id, key);
        otaup_key_free(key);
        otaup_registry_free(reg);
        return rc;
    }
    /* the seed's analysis stored ahead of time: deltas from what the
     * known terminals of this model run */
    rc = otaup_session_precompute(reg, r.id, precompute_log, NULL);
    if (rc < 0) {
        fprintf(stderr, "otaupctl: precomputing deltas: %s (they will be computed on demand)\n",
                otaup_strerror(rc));
    } else {
        printf("deltas computed ahead of time: %d\n", rc);
    }
    otaup_registry_free(reg);
    return EXIT_SUCCESS;
}

static int print_release(const otaup_reg_release *r, void *payload)
{
    char h[40], t[32];
    (void)payload;
    hash_hex(h, r->image_hash);
    fmt_build_time(t, sizeof t, r->build_time);
    printf("%-5lld %-16s %-12s %-20s %9u %s%s", (long long)r->id, r->model, r->version, t,
           r->image_size, h, r->allow_downgrade ? " downgrade-ok" : "");
    if (r->withdrawn != 0) {
        fmt_time(t, sizeof t, r->withdrawn);
        printf(" withdrawn %s", t);
    }
    printf("\n");
    return 0;
}

/* ---- release withdraw / restore ----------------------------------------- */

static int print_session(const otaup_reg_session *s, void *payload)
{
    int started = otaup_registry_session_started(s);
    (void)payload;
    printf("  terminal %s: session %08x in %s, step %u/%u: %s\n", s->terminal, s->session_id, s->state,
           s->next_step, s->steps_total,
           started ? "started, it will finish to this release"
                   : "not started on the terminal: dropped at its next step");
    return 0;
}

static int cmd_release_withdraw(int argc, char **argv)
{
    otaup_registry *reg;
    otaup_reg_release r;
    const char *idarg = NULL, *reason = NULL;
    unsigned flags = 0, dropped = 0;
    int64_t id;
    char t[32];
    int i, rc;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0) {
            flags |= OTAUP_REG_WITHDRAW_FORCE;
        } else if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
            reason = argv[++i];
            if (strlen(reason) > 200) {
                fprintf(stderr, "otaupctl: release withdraw: --reason is at most 200 characters\n");
                return EXIT_USAGE;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "otaupctl: release withdraw: unknown or incomplete option '%s'\n", argv[i]);
            return EXIT_USAGE;
        } else if (idarg == NULL) {
            idarg = argv[i];
        } else {
            fprintf(stderr, "otaupctl: release withdraw: one RELEASE only\n");
            return EXIT_USAGE;
        }
    }
    if (idarg == NULL) {
        fprintf(stderr, "otaupctl: release withdraw needs RELEASE (its number, see 'releases')\n");
        return EXIT_USAGE;
    }
    if ((id = release_number("withdraw", idarg)) == 0) {
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_release_get(reg, id, &r, NULL);
    if (rc == OTAUP_E_NOT_FOUND) {
        fprintf(stderr, "otaupctl: release withdraw: no release %lld (see 'releases')\n", (long long)id);
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    if (rc == 0 && r.withdrawn != 0) {
        /* again: finishes a sweep of its requests that was cut short */
        rc = otaup_registry_release_withdraw(reg, id, flags, reason, &dropped);
        if (rc != OTAUP_E_WITHDRAWN) {
            rc = fail(rc < 0 ? rc : OTAUP_E_STATE, "release withdraw", reg);
            otaup_registry_free(reg);
            return rc;
        }
        fmt_time(t, sizeof t, r.withdrawn);
        if (dropped != 0) {
            printf("release %lld (%s %s) was already withdrawn on %s; %u request(s) for it recorded since were "
                   "dropped\n",
                   (long long)id, r.model, r.version, t, dropped);
        } else {
            printf("release %lld (%s %s) was already withdrawn on %s: nothing to do\n", (long long)id, r.model,
                   r.version, t);
        }
        otaup_registry_free(reg);
        return EXIT_SUCCESS;
    }
    if (rc == 0) {
        rc = otaup_registry_release_sessions(reg, id, NULL, NULL);
    }
    if (rc > 0 && !(flags & OTAUP_REG_WITHDRAW_FORCE)) {
        fprintf(stderr,
                "otaupctl: release withdraw: %d terminal(s) are in the middle of the upgrade to release %lld "
                "(%s %s) and will finish it even if it is withdrawn (%s):\n",
                rc, (long long)id, r.model, r.version, otaup_errname(OTAUP_E_IN_PROGRESS));
        otaup_registry_release_sessions(reg, id, print_session, NULL);
        fprintf(stderr, "otaupctl: nothing was changed; withdraw it for every other terminal with --force\n");
        otaup_registry_free(reg);
        return EXIT_REFUSED;
    }
    if (rc >= 0) {
        otaup_registry_release_sessions(reg, id, print_session, NULL);
        rc = otaup_registry_release_withdraw(reg, id, flags, reason, &dropped);
    }
    if (rc == OTAUP_E_IN_PROGRESS) {
        /* a session started between the count and the withdrawal */
        fprintf(stderr, "otaupctl: release withdraw: a session to release %lld has just started; nothing was "
                        "changed: run it again (--force to withdraw it all the same)\n",
                (long long)id);
        otaup_registry_free(reg);
        return EXIT_REFUSED;
    }
    if (rc < 0) {
        rc = fail(rc, "release withdraw", reg);
        otaup_registry_free(reg);
        return rc;
    }
    printf("release %lld (%s %s) withdrawn: no longer offered; %d session(s) in progress still finish to it, "
           "%u request(s) for it dropped\n",
           (long long)id, r.model, r.version, rc, dropped);
    otaup_registry_free(reg);
    return EXIT_SUCCESS;
}

static int cmd_release_restore(int argc, char **argv)
{
    otaup_registry *reg;
    otaup_reg_release r;
    int64_t id;
    int rc;
    if (argc != 1 || (argv[0][0] == '-' && argv[0][1] != '\0')) {
        fprintf(stderr, "otaupctl: release restore needs RELEASE (its number, see 'releases') and nothing else\n");
        return EXIT_USAGE;
    }
    if ((id = release_number("restore", argv[0])) == 0) {
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_release_get(reg, id, &r, NULL);
    if (rc == 0) {
        rc = otaup_registry_release_restore(reg, id);
    }
    if (rc == OTAUP_E_NOT_FOUND) {
        fprintf(stderr, "otaupctl: release restore: no release %lld (see 'releases')\n", (long long)id);
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    if (rc == OTAUP_E_STATE) {
        printf("release %lld (%s %s) is not withdrawn: nothing to do\n", (long long)id, r.model, r.version);
        otaup_registry_free(reg);
        return EXIT_SUCCESS;
    }
    if (rc < 0) {
        rc = fail(rc, "release restore", reg);
        otaup_registry_free(reg);
        return rc;
    }
    printf("release %lld (%s %s) restored: offered again\n", (long long)id, r.model, r.version);
    otaup_registry_free(reg);
    return EXIT_SUCCESS;
}

static int cmd_releases(int argc, char **argv)
{
    otaup_registry *reg;
    const char *model = NULL;
    int rc;
    if (argc == 2 && strcmp(argv[0], "--model") == 0) {
        model = argv[1];
    } else if (argc != 0) {
        usage(stderr);
        fprintf(stderr, "otaupctl: releases takes no arguments but --model M ('%s')\n", argv[0]);
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    printf("%-5s %-16s %-12s %-20s %9s %s\n", "id", "model", "version", "build-time", "size", "hash");
    rc = otaup_registry_release_list(reg, model, print_release, NULL);
    if (rc < 0) {
        rc = fail(rc, "releases", reg);
    }
    otaup_registry_free(reg);
    return rc < 0 ? EXIT_FAILURE : rc;
}

/* ---- terminals ---------------------------------------------------------- */

static int print_terminal(const otaup_reg_terminal *t, void *payload)
{
    char seen[32];
    otaup_registry *reg = payload;
    otaup_reg_session s;
    char progress[48] = "";
    fmt_time(seen, sizeof seen, t->last_seen);
    if (otaup_registry_session_get(reg, t->id, &s) == 0 && s.bytes_total > 0 &&
        strcmp(t->status, "upgrading") == 0) {
        snprintf(progress, sizeof progress, " step %u/%u", s.next_step, s.steps_total);
    }
    printf("%-20s %-16s %-12s %-12s %s%s\n", t->id, t->model, t->version, t->status, seen, progress);
    return 0;
}

static int cmd_terminals(int argc, char **argv)
{
    otaup_registry *reg;
    int rc;
    if (argc != 0) {
        usage(stderr);
        fprintf(stderr, "otaupctl: terminals takes no arguments ('%s')\n", argv[0]);
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    printf("%-20s %-16s %-12s %-12s %s\n", "terminal", "model", "version", "state", "last-seen");
    rc = otaup_registry_terminal_list(reg, print_terminal, reg);
    if (rc < 0) {
        rc = fail(rc, "terminals", reg);
    }
    otaup_registry_free(reg);
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- notify ------------------------------------------------------------- */

/* notify reads two lists and writes for their rows. It copies each list
 * first and writes after the read is over: a write made while a list's
 * statement is still open would turn that read transaction into a write
 * one, which SQLite refuses at once (SQLITE_BUSY, no busy wait) whenever
 * another process (otaupd, a sqlite3 shell) is writing or wrote since
 * the read began, so `notify` failed beside a busy daemon instead of
 * waiting its turn as the other writing commands do. */
struct notify_ctx {
    otaup_registry *reg;
    int queued, sent, held, stale, err;
    otaup_reg_terminal *terms;
    otaup_reg_notice *notices;
    size_t n, cap;
};

static int grow(void **v, size_t *cap, size_t n, size_t size)
{
    void *p;
    size_t c = *cap ? *cap * 2 : 16;
    if (n < *cap) {
        return 0;
    }
    p = realloc(*v, c * size);
    if (p == NULL) {
        return -1;
    }
    *v = p;
    *cap = c;
    return 0;
}

static int copy_terminal(const otaup_reg_terminal *t, void *payload)
{
    struct notify_ctx *c = payload;
    if (grow((void **)&c->terms, &c->cap, c->n, sizeof *c->terms) != 0) {
        c->err = OTAUP_E_NOMEM;
        return 1;
    }
    c->terms[c->n++] = *t;
    return 0;
}

static int copy_notice(const otaup_reg_notice *n, void *payload)
{
    struct notify_ctx *c = payload;
    if (grow((void **)&c->notices, &c->cap, c->n, sizeof *c->notices) != 0) {
        c->err = OTAUP_E_NOMEM;
        return 1;
    }
    c->notices[c->n++] = *n;
    return 0;
}

static int queue_due(struct notify_ctx *c, const otaup_reg_terminal *t)
{
    otaup_reg_release r;
    int rc;
    if (strcmp(t->status, "upgrading") == 0 || strcmp(t->status, "requested") == 0) {
        return 0;
    }
    rc = otaup_registry_policy(c->reg, t, &r);
    if (rc == OTAUP_E_NO_RELEASE || rc == OTAUP_E_DOWNGRADE) {
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    rc = otaup_registry_notify(c->reg, t, &r, NULL);
    if (rc < 0) {
        return rc;
    }
    c->queued += rc;
    return 0;
}

static int send_notice(struct notify_ctx *c, const otaup_reg_notice *n)
{
    int rc = otaup_registry_notice_check(c->reg, n);
    if (rc == OTAUP_REG_NOTICE_HELD) {
        c->held++; /* not for a withdrawn release; a restore lets it go out */
        return 0;
    }
    if (rc == OTAUP_REG_NOTICE_STALE) {
        /* no longer due (the terminal runs that release or a newer one,
         * or another is due now, queued above with its own notice):
         * dropped from the outbox, never sent */
        c->stale++;
        return 0;
    }
    if (rc < 0) {
        return rc;
    }
    /* the delivery channel of this reference tool is standard output */
    printf("%s to %s: %s\n", n->channel[0] ? n->channel : "sms", n->terminal, n->text);
    rc = otaup_registry_notice_mark_sent(c->reg, n->id, 0);
    if (rc < 0) {
        return rc;
    }
    otaup_registry_audit(c->reg, n->terminal, "notice-sent", "notice %lld by %s", (long long)n->id,
                         n->channel);
    c->sent++;
    return 0;
}

static int cmd_notify(int argc, char **argv)
{
    struct notify_ctx c;
    size_t i;
    int rc;
    if (argc != 0) {
        usage(stderr);
        fprintf(stderr, "otaupctl: notify takes no arguments ('%s')\n", argv[0]);
        return EXIT_USAGE;
    }
    memset(&c, 0, sizeof c);
    if (open_db(&c.reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_terminal_list(c.reg, copy_terminal, &c);
    for (i = 0; rc >= 0 && c.err == 0 && i < c.n; i++) {
        rc = queue_due(&c, &c.terms[i]);
    }
    if (rc >= 0 && c.err == 0) {
        c.n = c.cap = 0;
        rc = otaup_registry_notice_list(c.reg, NULL, 1, copy_notice, &c);
    }
    for (i = 0; rc >= 0 && c.err == 0 && i < c.n; i++) {
        rc = send_notice(&c, &c.notices[i]);
    }
    free(c.terms);
    free(c.notices);
    if (rc < 0 || c.err < 0) {
        rc = fail(rc < 0 ? rc : c.err, "notify", c.reg);
        otaup_registry_free(c.reg);
        return rc;
    }
    printf("notify: %d queued, %d sent", c.queued, c.sent);
    if (c.held > 0) {
        printf(", %d held back (their release is withdrawn)", c.held);
    }
    if (c.stale > 0) {
        printf(", %d out of date dropped (the terminal runs that release or a newer one, or another is due)",
               c.stale);
    }
    printf("\n");
    otaup_registry_free(c.reg);
    return EXIT_SUCCESS;
}

/* ---- request ------------------------------------------------------------ */

static int cmd_request(int argc, char **argv)
{
    otaup_registry *reg;
    otaup_reg_terminal t;
    otaup_reg_release r;
    otaup_reg_request q;
    int rc;
    if (argc != 1) {
        usage(stderr);
        fprintf(stderr, "otaupctl: request needs one TERMINAL (its id)\n");
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_terminal_get(reg, argv[0], &t);
    if (rc == OTAUP_E_NOT_FOUND) {
        fprintf(stderr, "otaupctl: request: no terminal '%s' in the registry (it must connect once)\n",
                argv[0]);
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    if (rc == 0) {
        rc = otaup_registry_policy(reg, &t, &r);
    }
    if (rc == OTAUP_E_NO_RELEASE) {
        fprintf(stderr, "otaupctl: request: %s (%s %s) is up to date: no release to upgrade to\n",
                t.id, t.model, t.version);
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    if (rc == OTAUP_E_DOWNGRADE) {
        fprintf(stderr, "otaupctl: request: the newest %s release (%s) is older than %s's %s and not "
                        "marked --allow-downgrade\n",
                t.model, r.version, t.id, t.version);
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    if (rc < 0) {
        rc = fail(rc, "request", reg);
        otaup_registry_free(reg);
        return rc;
    }
    memset(&q, 0, sizeof q);
    snprintf(q.terminal, sizeof q.terminal, "%s", t.id);
    snprintf(q.source, sizeof q.source, "ctl");
    q.release_id = r.id;
    rc = otaup_registry_request_put(reg, &q);
    if (rc == 0 && strcmp(t.status, "upgrading") != 0) {
        rc = otaup_registry_terminal_set_status(reg, t.id, "requested");
    }
    if (rc == 0) {
        rc = otaup_registry_audit(reg, t.id, "requested", "by customer centre: release %lld (%s %s)",
                                  (long long)r.id, r.model, r.version);
    }
    if (rc < 0) {
        rc = fail(rc, "request", reg);
        otaup_registry_free(reg);
        return rc;
    }
    printf("request: %s will be upgraded from %s to %s at its next connection\n", t.id, t.version,
           r.version);
    otaup_registry_free(reg);
    return EXIT_SUCCESS;
}

/* ---- status, audit, backups ---------------------------------------------- */

static int print_audit(const otaup_reg_audit *a, void *payload)
{
    char t[32];
    (void)payload;
    fmt_time(t, sizeof t, a->time);
    printf("%s %-16s %-18s %s\n", t, a->terminal[0] ? a->terminal : "-", a->event, a->detail);
    return 0;
}

static int print_backup(const otaup_reg_backup *b, void *payload)
{
    char t[32];
    (void)payload;
    fmt_time(t, sizeof t, b->created);
    printf("  backup region %u: 0x%08x +%u bytes, session %08x, %s (encrypted)\n", b->region, b->addr,
           b->len, b->session_id, t);
    return 0;
}

static int cmd_status(int argc, char **argv)
{
    otaup_registry *reg;
    otaup_reg_terminal t;
    otaup_reg_session s;
    otaup_reg_request q;
    otaup_reg_release r;
    char h[40], seen[32];
    int rc, failed = EXIT_SUCCESS;
    if (argc != 1) {
        usage(stderr);
        fprintf(stderr, "otaupctl: status needs one TERMINAL (its id)\n");
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_terminal_get(reg, argv[0], &t);
    if (rc < 0) {
        if (rc == OTAUP_E_NOT_FOUND) {
            fprintf(stderr, "otaupctl: status: no terminal '%s' in the registry\n", argv[0]);
        } else {
            fail(rc, "status", reg);
        }
        otaup_registry_free(reg);
        return EXIT_FAILURE;
    }
    hash_hex(h, t.image_hash);
    fmt_time(seen, sizeof seen, t.last_seen);
    printf("terminal %s\n  model %s, version %s, build time %lld, image %u bytes, hash %s\n"
           "  state %s, last seen %s\n",
           t.id, t.model, t.version, (long long)t.build_time, t.image_size, h, t.status, seen);
    rc = otaup_registry_policy(reg, &t, &r);
    if (rc == 0) {
        printf("  upgrade due: release %lld, version %s\n", (long long)r.id, r.version);
    } else if (rc == OTAUP_E_DOWNGRADE) {
        printf("  newest release %s is older: no downgrade\n", r.version);
    } else if (rc == OTAUP_E_NO_RELEASE) {
        printf("  up to date\n");
    } else {
        /* not "up to date": the registry could not tell */
        printf("  upgrade due: unknown (the registry failed, see below)\n");
        failed = fail(rc, "status: the policy", reg);
    }
    if (otaup_registry_request_get(reg, t.id, &q) == 0) {
        printf("  upgrade requested (by %s) for release %lld\n", q.source, (long long)q.release_id);
    }
    if (otaup_registry_session_get(reg, t.id, &s) == 0) {
        /* bytes and retransmits add up over the session's connections
         * (resends after a resume included): progress is the step */
        otaup_reg_release sr;
        printf("  session %08x: %s, release %lld%s, step %u/%u, %llu bytes sent in all for a %llu-byte stream, "
               "%u retransmits, %u regions backed up, result %s\n",
               s.session_id, s.state, (long long)s.release_id,
               otaup_registry_release_get(reg, s.release_id, &sr, NULL) == 0 && sr.withdrawn != 0
                   ? (otaup_registry_session_started(&s) && strcmp(s.state, "failed") != 0
                          ? " (withdrawn: this session still finishes)"
                          : " (withdrawn)")
                   : "",
               s.next_step, s.steps_total,
               (unsigned long long)s.bytes_sent, (unsigned long long)s.bytes_total, s.retransmits,
               s.regions, s.result == 0 ? "ok" : otaup_errname(s.result) ? otaup_errname(s.result) : "?");
    }
    rc = otaup_registry_backup_list(reg, t.id, print_backup, NULL);
    if (rc < 0) {
        failed = fail(rc, "status: the backups", reg);
    }
    printf("history:\n");
    rc = otaup_registry_audit_list(reg, t.id, 50, print_audit, NULL);
    if (rc < 0) {
        failed = fail(rc, "status: the audit log", reg);
    }
    otaup_registry_free(reg);
    return failed;
}

static int cmd_audit(int argc, char **argv)
{
    otaup_registry *reg;
    const char *terminal = NULL;
    unsigned long limit = 0;
    int i, rc;
    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--terminal") == 0 && i + 1 < argc) {
            terminal = argv[++i];
        } else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end;
            errno = 0;
            limit = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || !is_number(argv[i]) || errno != 0 || limit > 1000000) {
                fprintf(stderr, "otaupctl: bad --limit '%s'\n", argv[i]);
                return EXIT_USAGE;
            }
        } else {
            usage(stderr);
            fprintf(stderr, "otaupctl: audit: unknown or incomplete option '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_audit_list(reg, terminal, (unsigned)limit, print_audit, NULL);
    if (rc < 0) {
        rc = fail(rc, "audit", reg);
    }
    otaup_registry_free(reg);
    return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int count_backup(const otaup_reg_backup *b, void *payload)
{
    print_backup(b, NULL);
    printf("    of terminal %s\n", b->terminal);
    (*(int *)payload)++;
    return 0;
}

static int cmd_backups(int argc, char **argv)
{
    otaup_registry *reg;
    int n = 0, rc;
    if (argc != 0) {
        usage(stderr);
        fprintf(stderr, "otaupctl: backups takes no arguments ('%s')\n", argv[0]);
        return EXIT_USAGE;
    }
    if (open_db(&reg, 1) != 0) {
        return EXIT_FAILURE;
    }
    rc = otaup_registry_backup_list(reg, NULL, count_backup, &n);
    if (rc < 0) {
        rc = fail(rc, "backups", reg);
        otaup_registry_free(reg);
        return rc;
    }
    otaup_registry_free(reg);
    printf("%d backups held\n", n);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    int i = 1;
    const char *env = getenv("OTAUP_DB");
    if (env != NULL && env[0] != '\0') {
        db_path = env;
    }
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "--db") == 0 && i + 1 < argc) {
            db_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return EXIT_SUCCESS;
        } else {
            usage(stderr);
            fprintf(stderr, "otaupctl: unknown or incomplete option '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        fprintf(stderr, "otaupctl: no command given\n");
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "release") == 0) {
        if (i + 1 < argc && strcmp(argv[i + 1], "add") == 0) {
            return cmd_release_add(argc - i - 2, argv + i + 2);
        }
        if (i + 1 < argc && strcmp(argv[i + 1], "sign") == 0) {
            return cmd_release_sign(argc - i - 2, argv + i + 2);
        }
        if (i + 1 < argc && strcmp(argv[i + 1], "withdraw") == 0) {
            return cmd_release_withdraw(argc - i - 2, argv + i + 2);
        }
        if (i + 1 < argc && strcmp(argv[i + 1], "restore") == 0) {
            return cmd_release_restore(argc - i - 2, argv + i + 2);
        }
        fprintf(stderr, "otaupctl: release: expected 'add', 'sign', 'withdraw' or 'restore'\n");
        return EXIT_USAGE;
    }
    if (strcmp(argv[i], "releases") == 0) {
        return cmd_releases(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "terminals") == 0) {
        return cmd_terminals(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "notify") == 0) {
        return cmd_notify(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "request") == 0) {
        return cmd_request(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "status") == 0) {
        return cmd_status(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "audit") == 0) {
        return cmd_audit(argc - i - 1, argv + i + 1);
    }
    if (strcmp(argv[i], "backups") == 0) {
        return cmd_backups(argc - i - 1, argv + i + 1);
    }
    usage(stderr);
    fprintf(stderr, "otaupctl: unknown command '%s'\n", argv[i]);
    return EXIT_USAGE;
}
