/*
 * otaup sign --key KEY [options] PATCH: sign a delta (chain + manifest),
 * or add one more signature to a signed delta.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/sign.h"
#include "sec_cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: otaup sign --key KEY --model MODEL [options] PATCH\n\n"
            "Sign a delta made by `otaup delta`: insert the per-step hash chain into its\n"
            "record stream and add a manifest signed with KEY (docs/security.md). A delta\n"
            "that is already signed gets one more signature by KEY (key change-over).\n\n"
            "  --key KEY              private key (otaup keygen)\n"
            "  --model MODEL          model / compatibility id of the terminals (required)\n"
            "  --version N            target software version (default 0)\n"
            "  --build-time T         target build time, seconds since 1970 (default 0)\n"
            "  --counter N            security counter (anti-rollback, default 0)\n"
            "  --allow-downgrade      signed policy: terminals may install an older version\n"
            "  --old OLD              the source image (checked against the delta), or\n"
            "  --source-sha256 HEX    its SHA-256, or\n"
            "  --no-source            A/B full image that does not depend on the installed one\n"
            "  --new NEW              the target image (checked against the delta), or\n"
            "  --target-sha256 HEX    its SHA-256\n"
            "  --tag-len N            chain tag bytes, 8..32 (default 16)\n"
            "  --note TEXT            a note for people (release name)\n"
            "  -o OUT                 write OUT instead of replacing PATCH\n");
}

#if OTAUP_HAVE_MBEDTLS
int otaup_cli_sign_run(const char *cmd, const char *key_path, const otaup_sign_options *opt, const char *in_path,
                       const char *out_path);

/* Shared with `otaup delta --sign`: sign in_path (or add a signature) into out_path. */
int otaup_cli_sign_run(const char *cmd, const char *key_path, const otaup_sign_options *opt, const char *in_path,
                       const char *out_path)
{
    otaup_crypto c;
    otaup_key *k;
    uint8_t *delta, *out = NULL;
    size_t len, out_len = 0;
    const uint8_t *mf;
    size_t mf_len;
    int rc, added = 0;

    otaup_crypto_mbedtls(&c);
    k = sec_cli_load_key(cmd, key_path);
    if (k == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (!otaup_key_has_private(k)) {
        fprintf(stderr, "otaup %s: %s: a public key cannot sign\n", cmd, key_path);
        otaup_key_free(k);
        return OTAUP_EXIT_FAIL;
    }
    delta = sec_cli_read(cmd, in_path, &len);
    if (delta == NULL) {
        otaup_key_free(k);
        return OTAUP_EXIT_FAIL;
    }
    if (otaup_delta_find_manifest(delta, len, &mf, &mf_len) == 0) {
        rc = otaup_delta_add_signature(&c, k, delta, len, &out, &out_len);
        added = 1;
    } else {
        if (opt->model == NULL) {
            fprintf(stderr, "otaup %s: --model is required\n", cmd);
            free(delta);
            otaup_key_free(k);
            return OTAUP_EXIT_USAGE;
        }
        rc = otaup_delta_sign(&c, k, delta, len, opt, &out, &out_len);
    }
    otaup_key_free(k);
    if (rc != 0) {
        const char *why = "";
        if (rc == OTAUP_E_SOURCE_MISMATCH) {
            why = ": OLD is not the delta's source image";
        } else if (rc == OTAUP_E_TARGET_MISMATCH) {
            why = ": NEW is not the delta's target image";
        } else if (rc == OTAUP_E_INVAL) {
            why = ": give --old or --source-sha256, and --new or --target-sha256";
        } else if (rc == OTAUP_E_PLAN) {
            why = ": a terminal would refuse this delta (an in-place or copying delta needs its source)";
        } else if (rc == OTAUP_E_MANIFEST) {
            why = ": the manifest already holds the most signatures";
        }
        fprintf(stderr, "otaup %s: %s: %s (%s)%s\n", cmd, in_path, otaup_strerror(rc), otaup_errname(rc), why);
        free(delta);
        return OTAUP_EXIT_FAIL;
    }
    if (sec_cli_write(cmd, out_path, out, out_len, 0644) != 0) {
        free(out);
        free(delta);
        return OTAUP_EXIT_FAIL;
    }
    if (added) {
        printf("%s: signature added (%zu bytes)\n", out_path, out_len);
    } else {
        printf("%s: signed, %zu -> %zu bytes (+%zu: manifest and chain)\n", out_path, len, out_len, out_len - len);
    }
    free(out);
    free(delta);
    return OTAUP_EXIT_OK;
}
#endif

int otaup_cmd_sign(int argc, char **argv)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_sign_options opt;
    const char *key = NULL, *out = NULL, *patch = NULL, *old_path = NULL, *new_path = NULL;
    uint8_t src_hash[32], dst_hash[32];
    uint8_t *old_img = NULL, *new_img = NULL;
    int i, rc;
    uint64_t v;

    otaup_sign_options_init(&opt, OTAUP_SIGN_OPTIONS_VERSION);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(a, "--allow-downgrade") == 0) {
            opt.policy |= OTAUP_POLICY_ALLOW_DOWNGRADE;
        } else if (strcmp(a, "--no-source") == 0) {
            opt.no_source = 1;
        } else if (a[0] == '-' && a[1] != 0 && val == NULL) {
            fprintf(stderr, "otaup sign: %s needs a value\n", a);
            return OTAUP_EXIT_USAGE;
        } else if (strcmp(a, "--key") == 0) {
            key = argv[++i];
        } else if (strcmp(a, "-o") == 0) {
            out = argv[++i];
        } else if (strcmp(a, "--model") == 0) {
            opt.model = (const uint8_t *)val;
            opt.model_len = strlen(val);
            i++;
            if (opt.model_len == 0 || opt.model_len > OTAUP_MANIFEST_MODEL_MAX) {
                fprintf(stderr, "otaup sign: --model: 1 to %u bytes\n", OTAUP_MANIFEST_MODEL_MAX);
                return OTAUP_EXIT_USAGE;
            }
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "--counter") == 0 || strcmp(a, "--build-time") == 0 ||
                   strcmp(a, "--tag-len") == 0) {
            uint64_t max = strcmp(a, "--build-time") == 0 ? UINT64_MAX
                           : strcmp(a, "--tag-len") == 0  ? OTAUP_CHAIN_TAG_MAX
                                                          : 0xFFFFFFFFull;
            if (sec_cli_u64(val, max, &v) != 0 || (strcmp(a, "--tag-len") == 0 && v < OTAUP_CHAIN_TAG_MIN)) {
                fprintf(stderr, "otaup sign: %s: bad value '%s'\n", a, val);
                return OTAUP_EXIT_USAGE;
            }
            if (strcmp(a, "--version") == 0) {
                opt.target_version = (uint32_t)v;
            } else if (strcmp(a, "--counter") == 0) {
                opt.counter = (uint32_t)v;
            } else if (strcmp(a, "--build-time") == 0) {
                opt.build_time = v;
            } else {
                opt.tag_len = (uint8_t)v;
            }
            i++;
        } else if (strcmp(a, "--old") == 0) {
            old_path = argv[++i];
        } else if (strcmp(a, "--new") == 0) {
            new_path = argv[++i];
        } else if (strcmp(a, "--source-sha256") == 0 || strcmp(a, "--target-sha256") == 0) {
            uint8_t *h = a[2] == 's' ? src_hash : dst_hash;
            if (sec_cli_hex32(val, h) != 0) {
                fprintf(stderr, "otaup sign: %s: 64 hex digits expected\n", a);
                return OTAUP_EXIT_USAGE;
            }
            if (a[2] == 's') {
                opt.source_hash = src_hash;
            } else {
                opt.target_hash = dst_hash;
            }
            i++;
        } else if (strcmp(a, "--note") == 0) {
            opt.note = argv[++i];
            if (strlen(opt.note) > OTAUP_MANIFEST_NOTE_MAX) {
                fprintf(stderr, "otaup sign: --note: at most %u bytes\n", OTAUP_MANIFEST_NOTE_MAX);
                return OTAUP_EXIT_USAGE;
            }
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "otaup sign: unknown option '%s'\n", a);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        } else if (patch == NULL) {
            patch = a;
        } else {
            fprintf(stderr, "otaup sign: unexpected argument '%s'\n", a);
            return OTAUP_EXIT_USAGE;
        }
    }
    if (key == NULL || patch == NULL) {
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    if (old_path != NULL && (old_img = sec_cli_read("sign", old_path, &opt.old_len)) == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (new_path != NULL && (new_img = sec_cli_read("sign", new_path, &opt.new_len)) == NULL) {
        free(old_img);
        return OTAUP_EXIT_FAIL;
    }
    opt.old_img = old_img;
    opt.new_img = new_img;
    rc = otaup_cli_sign_run("sign", key, &opt, patch, out != NULL ? out : patch);
    free(old_img);
    free(new_img);
    return rc;
#else
    (void)argc;
    (void)argv;
    usage(stderr);
    fprintf(stderr, "otaup sign: this build has no mbedTLS\n");
    return OTAUP_EXIT_FAIL;
#endif
}
