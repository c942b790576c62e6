/*
 * bench/security: what signature verification costs a terminal, on the host.
 *
 *   otaup-bench-security OLD NEW PATCH SIGNED_PATCH PUBKEY [REPS]
 *
 * Applies PATCH (unsigned) and SIGNED_PATCH (the same delta, signed) to OLD
 * on a simulated flash (zero timing model) through the terminal's
 * executor, REPS times each: the unsigned one without verification, the
 * signed one with the full verifier (manifest signature, source hash,
 * per-step chain, target hash), and times the pieces on their own:
 * SHA-256 of the new image, one ECDSA P-256 verify. Prints one line of
 * key=value figures (medians, microseconds) for run.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/exec.h"
#include "otaup/features.h"
#include "otaup/journal.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"

#define JSEC 4096u

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p;
    long n;
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: read error\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

typedef struct world {
    const unsigned char *delta, *plain;
    size_t len, plain_len;
    uint32_t body_off, plain_off;
    otaup_delta_header h, ph;
    const unsigned char *old;
    size_t old_len;
    otaup_geometry geo; /* the delta's geometry + 2 journal sectors */
    uint32_t journal;
    otaup_crypto c;
    otaup_sec_key key;
} world;

/* one apply on a fresh device; verify: with the terminal's security checks */
static int apply_once(const world *w, int verify, double *us)
{
    otaup_simflash_options so;
    otaup_simflash *sim = NULL;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win;
    otaup_sec sec;
    uint32_t end, s, z;
    void *work;
    size_t wsz;
    double t0;
    int rc;

    otaup_simflash_options_init(&so);
    so.geo = w->geo;
    so.erase_us_per_sector = so.erase_us_per_kib = so.prog_ns_per_byte = so.prog_us_per_op = 0;
    if (otaup_simflash_new(&so, &sim) != 0 ||
        otaup_simflash_load(sim, w->h.source_addr, w->old, (uint32_t)w->old_len) != 0) {
        return OTAUP_E_INTERNAL;
    }
    end = w->h.target_addr + w->h.target_size;
    if (w->h.layout == OTAUP_LAYOUT_INPLACE && w->h.source_addr + w->h.source_size > end) {
        end = w->h.source_addr + w->h.source_size;
    }
    otaup_geometry_sector_at(&w->h.geo, end - 1u, &s, &z);
    win.addr = w->h.target_addr;
    win.len = s + z - w->h.target_addr;
    wsz = otaup_exec_work_size(w->h.staging_size, w->h.max_ops, w->h.window_bits);
    work = malloc(wsz);

    t0 = now_us();
    rc = otaup_journal_mount(&j, otaup_simflash_flash(sim), w->journal, 2 * JSEC);
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.journal = &j;
    c.layout = w->h.layout;
    c.window_bits = w->h.window_bits;
    c.windows = &win;
    c.nwindows = 1;
    c.scratch.addr = w->h.scratch_addr;
    c.scratch.len = w->h.scratch_size;
    if (w->h.layout == OTAUP_LAYOUT_INPLACE) {
        c.running.addr = w->h.source_addr;
        c.running.len = w->h.source_size;
    }
    c.staging_size = w->h.staging_size;
    c.max_ops = w->h.max_ops;
    c.work = work;
    c.work_size = wsz;
    if (rc == 0 && verify) {
        otaup_sec_config sc;
        const uint8_t *mf;
        size_t ml;
        otaup_manifest m;
        memset(&sc, 0, sizeof sc);
        sc.crypto = &w->c;
        sc.flash = otaup_simflash_flash(sim);
        sc.geometry = &w->h.geo;
        sc.keys = &w->key;
        sc.nkeys = 1;
        if (otaup_delta_find_manifest(w->delta, w->body_off, &mf, &ml) == 0 && otaup_manifest_parse(mf, ml, &m) == 0) {
            sc.model = m.model;
            sc.model_len = m.model_len;
        }
        sc.windows = &win;
        sc.nwindows = 1;
        sc.journal = otaup_journal_get(&j);
        rc = otaup_sec_begin_delta(&sec, &sc, w->delta, w->body_off);
        otaup_sec_exec_hooks(&sec, &c.hooks);
    }
    if (rc == 0) {
        rc = otaup_exec_init(&ex, &c);
    }
    if (rc == 0) {
        rc = otaup_exec_start(&ex, 1, verify ? otaup_sec_delta_id(&sec) : 1u, w->h.layout == OTAUP_LAYOUT_AB);
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0) {
        rc = verify ? otaup_exec_feed(&ex, w->delta + w->body_off, w->len - w->body_off)
                    : otaup_exec_feed(&ex, w->plain + w->plain_off, w->plain_len - w->plain_off);
    }
    if (rc == 0) {
        rc = otaup_exec_finish(&ex);
    }
    *us = now_us() - t0;
    free(work);
    otaup_simflash_free(sim);
    return rc;
}

int main(int argc, char **argv)
{
    world w;
    size_t new_len, pub_len;
    unsigned char *new_img, *pub;
    otaup_key *k = NULL;
    int reps = argc > 6 ? atoi(argv[6]) : 5, i, rc;
    double *t_plain, *t_sec, *t_sha, *t_ecdsa;
    uint8_t d[32], sig[64];

    if (argc < 6 || reps < 1) {
        fprintf(stderr, "usage: otaup-bench-security OLD NEW PATCH SIGNED_PATCH PUBKEY [REPS]\n");
        return 2;
    }
#if !OTAUP_HAVE_MBEDTLS
    fprintf(stderr, "otaup-bench-security: built without mbedTLS\n");
    return 2;
#else
    memset(&w, 0, sizeof w);
    w.old = slurp(argv[1], &w.old_len);
    new_img = slurp(argv[2], &new_len);
    w.plain = slurp(argv[3], &w.plain_len);
    w.delta = slurp(argv[4], &w.len);
    pub = slurp(argv[5], &pub_len);
    otaup_crypto_mbedtls(&w.c);
    if (otaup_key_parse(pub, pub_len, &k) != 0 || otaup_key_public(k, w.key.pub) != 0) {
        fprintf(stderr, "%s: not a key\n", argv[5]);
        return 2;
    }
    rc = otaup_delta_check(w.delta, w.len, &w.h, &w.body_off);
    if (rc == 0) {
        rc = otaup_delta_check(w.plain, w.plain_len, &w.ph, &w.plain_off);
    }
    if (rc != 0) {
        fprintf(stderr, "%s/%s: %s\n", argv[3], argv[4], otaup_strerror(rc));
        return 2;
    }
    w.geo = w.h.geo;
    w.journal = w.geo.base + otaup_geometry_size(&w.geo);
    w.geo.runs[w.geo.nruns].count = 2;
    w.geo.runs[w.geo.nruns].size = JSEC;
    w.geo.nruns++;

    t_plain = calloc((size_t)reps, sizeof(double));
    t_sec = calloc((size_t)reps, sizeof(double));
    t_sha = calloc((size_t)reps, sizeof(double));
    t_ecdsa = calloc((size_t)reps, sizeof(double));
    for (i = 0; i < reps; i++) {
        double t0;
        rc = apply_once(&w, 0, &t_plain[i]);
        if (rc != 0) {
            fprintf(stderr, "apply: %s\n", otaup_errname(rc));
            return 1;
        }
        rc = apply_once(&w, 1, &t_sec[i]);
        if (rc != 0) {
            fprintf(stderr, "apply --pub: %s\n", otaup_errname(rc));
            return 1;
        }
        t0 = now_us();
        otaup_sha256(&w.c, new_img, new_len, d);
        t_sha[i] = now_us() - t0;
        t0 = now_us();
        {
            /* one ECDSA verify of the manifest's own signature */
            const uint8_t *mf;
            size_t ml;
            otaup_manifest m;
            otaup_delta_find_manifest(w.delta, w.body_off, &mf, &ml);
            otaup_manifest_parse(mf, ml, &m);
            otaup_manifest_digest(&w.c, mf, &m, d);
            memcpy(sig, m.sigs + 1 + OTAUP_KEY_ID_LEN, 64);
            t0 = now_us();
            if (w.c.p256_verify(&w.c, w.key.pub, d, sig) != 0) {
                return 1;
            }
        }
        t_ecdsa[i] = now_us() - t0;
    }
    {
        double plain = median(t_plain, reps), sec = median(t_sec, reps), sha = median(t_sha, reps);
        double ecdsa = median(t_ecdsa, reps);
        printf("image_bytes=%zu apply_us=%.0f apply_verified_us=%.0f verify_us=%.0f sha256_image_us=%.0f "
               "ecdsa_us=%.0f ratio_verify_to_sha=%.2f chain_us=%.0f\n",
               new_len, plain, sec, sec - plain, sha, ecdsa, (sec - plain) / sha,
               (sec - plain) - ecdsa - sha * (double)(w.old_len + new_len) / (double)new_len);
    }
    otaup_key_free(k);
    return 0;
#endif
}
