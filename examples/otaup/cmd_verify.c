/*
 * otaup verify --pub PUB PATCH: check a signed delta as a terminal would
 * (signature, manifest against the header, every step against the chain)
 * and print its manifest.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/sign.h"
#include "sec_cli.h"

#define MAX_PUBS 8

static void usage(FILE *f)
{
    fprintf(f,
            "usage: otaup verify --pub PUB [--pub PUB...] [options] PATCH\n\n"
            "Check a signed delta the way a terminal does before it writes anything:\n"
            "the signature by one of the trusted public keys, the manifest against the\n"
            "delta's header, and every step of the record stream against the hash chain.\n\n"
            "  --pub PUB        trusted public key (PEM, or the private key file)\n"
            "  --old OLD        also check that OLD is the signed source image\n"
            "  --new NEW        also check that NEW is the signed target image\n"
            "  --model MODEL    also check the model, as a terminal of that model would\n"
            "  --counter N      also refuse a security counter lower than N\n"
            "  -q, --quiet      print nothing on success\n\n"
            "exit status: 0 valid, 1 refused (the reason on stderr), 2 usage error\n");
}

#if OTAUP_HAVE_MBEDTLS
static int image_check(const otaup_crypto *c, const char *path, const uint8_t *want, uint32_t size, const char *what)
{
    size_t len;
    uint8_t *img = sec_cli_read("verify", path, &len), d[32];
    int ok;
    if (img == NULL) {
        return -1;
    }
    ok = len == size && otaup_sha256(c, img, len, d) == 0 && memcmp(d, want, 32) == 0;
    free(img);
    if (!ok) {
        fprintf(stderr, "otaup verify: %s is not the signed %s image\n", path, what);
        return -1;
    }
    return 0;
}

static void print_manifest(const otaup_verify_report *r, const char *key_path)
{
    const otaup_manifest *m = &r->manifest;
    printf("signature:   valid, key %s\n", key_path);
    printf("model:       %.*s\n", (int)m->model_len, (const char *)m->model);
    printf("version:     %u (build time %llu)\n", m->version, (unsigned long long)m->build_time);
    printf("counter:     %u%s\n", m->counter,
           (m->policy & OTAUP_POLICY_ALLOW_DOWNGRADE) ? " (policy: downgrade allowed)" : "");
    printf("layout:      %s\n", m->layout == OTAUP_LAYOUT_AB ? "A/B" : "in place");
    if (m->has_source) {
        printf("source:      0x%08x +%u sha256 ", m->source.addr, m->source.len);
        sec_cli_print_hex(m->source_hash, 32);
        printf("\n");
    } else {
        printf("source:      any (full image)\n");
    }
    printf("target:      0x%08x +%u sha256 ", m->target.addr, m->target.len);
    sec_cli_print_hex(m->target_hash, 32);
    printf("\nslot:        0x%08x +%u\n", m->slot.addr, m->slot.len);
    printf("chain:       %u steps verified, %u segments, %u-byte tags, %llu chain bytes in %llu inner bytes\n",
           r->steps, m->nseg, m->tag_len, (unsigned long long)r->chain_bytes, (unsigned long long)r->inner_bytes);
    printf("manifest:    %zu bytes, %u signature(s)\n", r->manifest_len, m->nsigs);
    if (m->note != NULL) {
        printf("note:        %.*s\n", (int)m->note_len, (const char *)m->note);
    }
}
#endif

int otaup_cmd_verify(int argc, char **argv)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_crypto c;
    otaup_sec_key keys[MAX_PUBS];
    const char *key_paths[MAX_PUBS];
    const char *patch = NULL, *old_path = NULL, *new_path = NULL, *model = NULL;
    size_t nkeys = 0, len;
    uint64_t counter = 0;
    int i, rc, quiet = 0, have_counter = 0;
    uint8_t *delta;
    otaup_verify_report rep;

    otaup_crypto_mbedtls(&c);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if ((strcmp(a, "--pub") == 0 || strcmp(a, "--old") == 0 || strcmp(a, "--new") == 0 ||
                    strcmp(a, "--model") == 0 || strcmp(a, "--counter") == 0) &&
                   i + 1 >= argc) {
            fprintf(stderr, "otaup verify: %s needs a value\n", a);
            return OTAUP_EXIT_USAGE;
        } else if (strcmp(a, "--pub") == 0) {
            otaup_key *k;
            if (nkeys == MAX_PUBS) {
                fprintf(stderr, "otaup verify: at most %d keys\n", MAX_PUBS);
                return OTAUP_EXIT_USAGE;
            }
            k = sec_cli_load_key("verify", argv[++i]);
            if (k == NULL) {
                return OTAUP_EXIT_FAIL;
            }
            otaup_key_public(k, keys[nkeys].pub);
            otaup_key_free(k);
            key_paths[nkeys++] = argv[i];
        } else if (strcmp(a, "--old") == 0) {
            old_path = argv[++i];
        } else if (strcmp(a, "--new") == 0) {
            new_path = argv[++i];
        } else if (strcmp(a, "--model") == 0) {
            model = argv[++i];
        } else if (strcmp(a, "--counter") == 0) {
            if (sec_cli_u64(argv[++i], 0xFFFFFFFFull, &counter) != 0) {
                fprintf(stderr, "otaup verify: --counter: bad value '%s'\n", argv[i]);
                return OTAUP_EXIT_USAGE;
            }
            have_counter = 1;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "otaup verify: unknown option '%s'\n", a);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        } else if (patch == NULL) {
            patch = a;
        } else {
            fprintf(stderr, "otaup verify: unexpected argument '%s'\n", a);
            return OTAUP_EXIT_USAGE;
        }
    }
    if (patch == NULL || nkeys == 0) {
        fprintf(stderr, "otaup verify: %s is missing\n", nkeys == 0 ? "--pub PUB" : "PATCH");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    delta = sec_cli_read("verify", patch, &len);
    if (delta == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    rc = otaup_delta_verify(&c, delta, len, keys, nkeys, &rep);
    if (rc != 0) {
        fprintf(stderr, "otaup verify: %s: %s: %s (%s)\n", patch, rep.what != NULL ? rep.what : "refused",
                otaup_strerror(rc), otaup_errname(rc));
        free(delta);
        return OTAUP_EXIT_FAIL;
    }
    rc = OTAUP_EXIT_OK;
    if (model != NULL &&
        (strlen(model) != rep.manifest.model_len || memcmp(model, rep.manifest.model, rep.manifest.model_len) != 0)) {
        fprintf(stderr, "otaup verify: %s: %s (%s)\n", patch, otaup_strerror(OTAUP_E_MODEL), otaup_errname(OTAUP_E_MODEL));
        rc = OTAUP_EXIT_FAIL;
    } else if (have_counter && rep.manifest.counter < counter) {
        fprintf(stderr, "otaup verify: %s: %s (%s)\n", patch, otaup_strerror(OTAUP_E_ROLLBACK),
                otaup_errname(OTAUP_E_ROLLBACK));
        rc = OTAUP_EXIT_FAIL;
    } else if (old_path != NULL && (!rep.manifest.has_source || image_check(&c, old_path, rep.manifest.source_hash,
                                                                         rep.manifest.source.len, "source") != 0)) {
        if (!rep.manifest.has_source) {
            fprintf(stderr, "otaup verify: %s: the manifest binds no source image\n", patch);
        }
        rc = OTAUP_EXIT_FAIL;
    } else if (new_path != NULL &&
               image_check(&c, new_path, rep.manifest.target_hash, rep.manifest.target.len, "target") != 0) {
        rc = OTAUP_EXIT_FAIL;
    }
    if (rc == OTAUP_EXIT_OK && !quiet) {
        print_manifest(&rep, key_paths[rep.key_index]);
    }
    free(delta);
    return rc;
#else
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        }
    }
    fprintf(stderr, "otaup verify: this build has no mbedTLS\n");
    return OTAUP_EXIT_FAIL;
#endif
}
