/*
 * otaup sign --key KEY [options] PATCH: sign a delta (chain + manifest),
 * or add one more signature to a signed delta. The manifest options are
 * shared with `otaup delta --sign`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dcli.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/sign.h"
#include "sec_cli.h"

const char sec_sign_usage[] =
    "  --model MODEL         model / compatibility id of the terminals (required)\n"
    "  --version N           target software version (default 0)\n"
    "  --build-time T        target build time, seconds since 1970 (default 0)\n"
    "  --counter N           security counter (anti-rollback, default 0)\n"
    "  --allow-downgrade     signed policy: terminals may install an older version\n"
    "  --source-sha256 HEX   SHA-256 of the source image when OLD is not at hand\n"
    "  --no-source           A/B full image that does not depend on the installed one\n"
    "  --target-sha256 HEX   SHA-256 of the target image when NEW is not at hand\n"
    "  --tag-len N           chain tag bytes, 8..32 (default 16)\n"
    "  --note TEXT           a note for people (release name)\n";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: otaup sign --key KEY --model MODEL [options] PATCH\n\n"
            "Sign a delta made by `otaup delta`: insert the per-step hash chain into its\n"
            "record stream and add a manifest signed with KEY (docs/security.md). A delta\n"
            "that is already signed gets one more signature by KEY (key change-over);\n"
            "a delta KEY has signed already is left unchanged. A delta not yet signed\n"
            "needs --model, a source (--old, --source-sha256 or --no-source) and a\n"
            "target (--new or --target-sha256).\n\n"
            "  --key KEY             private key (otaup keygen)\n"
            "  --old OLD             the source image (checked against the delta)\n"
            "  --new NEW             the target image (checked against the delta)\n"
            "%s"
            "  -o OUT                write OUT instead of replacing PATCH\n\n"
            "exit status: 0 signed, 1 failure, 2 usage error\n",
            sec_sign_usage);
}

/* Remember o as the manifest option given, unless one came before it. */
static void manifest_opt_seen(sec_sign_args *a, const char *o)
{
    if (a->manifest_opt == NULL) {
        a->manifest_opt = o;
    }
}

void sec_sign_args_init(sec_sign_args *a)
{
    memset(a, 0, sizeof *a);
    otaup_sign_options_init(&a->opt, OTAUP_SIGN_OPTIONS_VERSION);
}

int sec_sign_arg(sec_sign_args *a, const char *cmd, int argc, char **argv, int *i)
{
    const char *o = argv[*i], *val;
    uint64_t v;
    if (strcmp(o, "--allow-downgrade") == 0) {
        a->opt.policy |= OTAUP_POLICY_ALLOW_DOWNGRADE;
        manifest_opt_seen(a, o);
        return 1;
    }
    if (strcmp(o, "--no-source") == 0) {
        a->opt.no_source = 1;
        manifest_opt_seen(a, o);
        return 1;
    }
    if (strcmp(o, "--model") != 0 && strcmp(o, "--version") != 0 && strcmp(o, "--build-time") != 0 &&
        strcmp(o, "--counter") != 0 && strcmp(o, "--source-sha256") != 0 && strcmp(o, "--target-sha256") != 0 &&
        strcmp(o, "--tag-len") != 0 && strcmp(o, "--note") != 0) {
        return 0;
    }
    manifest_opt_seen(a, o);
    if (*i + 1 >= argc) {
        fprintf(stderr, "otaup %s: %s needs a value\n", cmd, o);
        return -1;
    }
    val = argv[++*i];
    if (strcmp(o, "--model") == 0) {
        if (strlen(val) == 0 || strlen(val) > OTAUP_MANIFEST_MODEL_MAX) {
            fprintf(stderr, "otaup %s: --model: 1 to %u bytes\n", cmd, OTAUP_MANIFEST_MODEL_MAX);
            return -1;
        }
        a->opt.model = (const uint8_t *)val;
        a->opt.model_len = strlen(val);
    } else if (strcmp(o, "--note") == 0) {
        if (strlen(val) > OTAUP_MANIFEST_NOTE_MAX) {
            fprintf(stderr, "otaup %s: --note: at most %u bytes\n", cmd, OTAUP_MANIFEST_NOTE_MAX);
            return -1;
        }
        a->opt.note = val;
    } else if (strcmp(o, "--source-sha256") == 0 || strcmp(o, "--target-sha256") == 0) {
        int src = o[2] == 's';
        if (sec_cli_hex32(val, src ? a->src_hash : a->dst_hash) != 0) {
            fprintf(stderr, "otaup %s: %s: 64 hex digits expected\n", cmd, o);
            return -1;
        }
        if (src) {
            a->opt.source_hash = a->src_hash;
        } else {
            a->opt.target_hash = a->dst_hash;
        }
    } else {
        int bt = strcmp(o, "--build-time") == 0, tl = strcmp(o, "--tag-len") == 0;
        uint64_t max = bt ? UINT64_MAX : tl ? OTAUP_CHAIN_TAG_MAX : 0xFFFFFFFFull;
        if (sec_cli_u64(val, max, &v) != 0 || (tl && v < OTAUP_CHAIN_TAG_MIN)) {
            fprintf(stderr, "otaup %s: %s: bad value '%s'\n", cmd, o, val);
            return -1;
        }
        if (bt) {
            a->opt.build_time = v;
        } else if (tl) {
            a->opt.tag_len = (uint8_t)v;
        } else if (strcmp(o, "--version") == 0) {
            a->opt.target_version = (uint32_t)v;
        } else {
            a->opt.counter = (uint32_t)v;
        }
    }
    return 1;
}

#if OTAUP_HAVE_MBEDTLS
/* The index of the manifest's signature entry by the key whose id is id, or -1. */
static int signed_by(const uint8_t *mf, size_t mf_len, const uint8_t id[OTAUP_KEY_ID_LEN])
{
    otaup_manifest m;
    uint32_t i;
    if (otaup_manifest_parse(mf, mf_len, &m) != 0) {
        return -1;
    }
    for (i = 0; i < m.nsigs; i++) {
        const uint8_t *e = m.sigs + (size_t)i * OTAUP_MANIFEST_SIG_ENTRY;
        if (memcmp(e + 1, id, OTAUP_KEY_ID_LEN) == 0) {
            return (int)i;
        }
    }
    return -1;
}
#endif

/* Sign the delta delta[0..len) (named `name` in messages) into out_path;
 * delta stays the caller's. `copy`: out_path is not where the delta came
 * from, so a delta left unchanged is written there too. */
int sec_sign_bytes(const char *cmd, const sec_sign_args *a, const char *name, const uint8_t *delta, size_t len,
                   const char *out_path, int copy)
{
#if OTAUP_HAVE_MBEDTLS
    otaup_crypto c;
    otaup_key *k;
    uint8_t *out = NULL;
    size_t out_len = 0;
    const uint8_t *mf;
    size_t mf_len;
    int rc, added = 0;

    otaup_crypto_mbedtls(&c);
    k = sec_cli_load_key(cmd, a->key);
    if (k == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (!otaup_key_has_private(k)) {
        fprintf(stderr, "otaup %s: %s: a public key cannot sign\n", cmd, a->key);
        otaup_key_free(k);
        return OTAUP_EXIT_FAIL;
    }
    if (otaup_delta_find_manifest(delta, len, &mf, &mf_len) == 0) {
        uint8_t pub[OTAUP_P256_PUB_LEN], id[OTAUP_KEY_ID_LEN];
        int i;
        if (a->manifest_opt != NULL) {
            /* signed already: its manifest is fixed, a manifest option
             * would be dropped without a word (docs/cli.md: refused) */
            fprintf(stderr,
                    "otaup %s: %s is signed already: its manifest cannot change; add a signature with --key "
                    "(and -o) alone, without %s\n",
                    cmd, name, a->manifest_opt);
            otaup_key_free(k);
            return OTAUP_EXIT_USAGE;
        }
        i = otaup_key_public(k, pub) == 0 && otaup_key_id(&c, pub, id) == 0 ? signed_by(mf, mf_len, id) : -1;
        if (i >= 0) {
            /* signed by KEY already: a second entry of the same key would
             * add nothing; the delta stays as it is */
            otaup_key_free(k);
            rc = copy ? sec_cli_write(cmd, out_path, delta, len, 0644) : 0;
            if (rc != 0) {
                return OTAUP_EXIT_FAIL;
            }
            if (!a->quiet) {
                printf("%s: already signed by key ", out_path);
                sec_cli_print_hex(id, OTAUP_KEY_ID_LEN);
                printf(" (signature %d); unchanged\n", i + 1);
            }
            return OTAUP_EXIT_OK;
        }
        rc = otaup_delta_add_signature(&c, k, delta, len, &out, &out_len);
        added = 1;
    } else if (a->opt.model == NULL) {
        fprintf(stderr, "otaup %s: --model is required to sign\n", cmd);
        otaup_key_free(k);
        return OTAUP_EXIT_USAGE;
    } else if ((a->opt.old_img == NULL && a->opt.source_hash == NULL && !a->opt.no_source) ||
               (a->opt.new_img == NULL && a->opt.target_hash == NULL)) {
        /* the manifest names both images by their SHA-256: a missing
         * argument, a usage error (docs/cli.md) */
        fprintf(stderr, "otaup %s: give the source (--old OLD, --source-sha256 HEX or --no-source) and the "
                        "target (--new NEW or --target-sha256 HEX)\n",
                cmd);
        otaup_key_free(k);
        return OTAUP_EXIT_USAGE;
    } else {
        rc = otaup_delta_sign(&c, k, delta, len, &a->opt, &out, &out_len);
    }
    otaup_key_free(k);
    if (rc != 0) {
        const char *why = "";
        if (rc == OTAUP_E_SOURCE_MISMATCH) {
            why = ": OLD is not the delta's source image";
        } else if (rc == OTAUP_E_TARGET_MISMATCH) {
            why = ": NEW is not the delta's target image";
        } else if (rc == OTAUP_E_INVAL) {
            why = ": give the images (or --source-sha256 / --no-source, --target-sha256)";
        } else if (rc == OTAUP_E_PLAN) {
            why = ": a terminal would refuse it (an in-place or copying delta needs its source)";
        } else if (rc == OTAUP_E_MANIFEST) {
            why = ": the manifest already holds the most signatures";
        }
        fprintf(stderr, "otaup %s: %s: %s (%s)%s\n", cmd, name, otaup_strerror(rc), otaup_errname(rc), why);
        return OTAUP_EXIT_FAIL;
    }
    rc = sec_cli_write(cmd, out_path, out, out_len, 0644);
    if (rc == 0 && a->quiet) {
        /* -q: nothing on success */
    } else if (rc == 0 && added) {
        printf("%s: signature added (%zu bytes)\n", out_path, out_len);
    } else if (rc == 0) {
        printf("%s: signed, %zu -> %zu bytes (+%zu: manifest and chain)\n", out_path, len, out_len, out_len - len);
    }
    free(out);
    return rc == 0 ? OTAUP_EXIT_OK : OTAUP_EXIT_FAIL;
#else
    (void)a;
    (void)name;
    (void)delta;
    (void)len;
    (void)out_path;
    (void)copy;
    fprintf(stderr, "otaup %s: this build has no mbedTLS\n", cmd);
    return OTAUP_EXIT_FAIL;
#endif
}

int sec_sign_file(const char *cmd, const sec_sign_args *a, const char *in_path, const char *out_path)
{
    size_t len;
    uint8_t *delta = sec_cli_read(cmd, in_path, &len);
    int rc;
    if (delta == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    rc = sec_sign_bytes(cmd, a, in_path, delta, len, out_path, strcmp(out_path, in_path) != 0);
    free(delta);
    return rc;
}

int otaup_cmd_sign(int argc, char **argv)
{
    sec_sign_args a;
    const char *out = NULL, *patch = NULL, *old_path = NULL, *new_path = NULL;
    uint8_t *old_img = NULL, *new_img = NULL;
    int i, rc;

    sec_sign_args_init(&a);
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        int k;
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        }
        k = sec_sign_arg(&a, "sign", argc, argv, &i);
        if (k < 0) {
            return OTAUP_EXIT_USAGE;
        }
        if (k > 0) {
            continue;
        }
        if ((strcmp(o, "--key") == 0 || strcmp(o, "-o") == 0 || strcmp(o, "--old") == 0 || strcmp(o, "--new") == 0) &&
            i + 1 >= argc) {
            fprintf(stderr, "otaup sign: %s needs a value\n", o);
            return OTAUP_EXIT_USAGE;
        }
        if (strcmp(o, "--key") == 0) {
            a.key = argv[++i];
        } else if (strcmp(o, "-o") == 0) {
            out = argv[++i];
        } else if (strcmp(o, "--old") == 0) {
            old_path = argv[++i];
            manifest_opt_seen(&a, o);
        } else if (strcmp(o, "--new") == 0) {
            new_path = argv[++i];
            manifest_opt_seen(&a, o);
        } else if (o[0] == '-' && o[1] != 0) {
            fprintf(stderr, "otaup sign: unknown option '%s'\n", o);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        } else if (patch == NULL) {
            patch = o;
        } else {
            fprintf(stderr, "otaup sign: unexpected argument '%s'\n", o);
            return OTAUP_EXIT_USAGE;
        }
    }
    if (a.key == NULL || patch == NULL) {
        fprintf(stderr, "otaup sign: %s is missing\n", a.key == NULL ? "--key KEY" : "PATCH");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    {
        /* OUT replaces PATCH (the default) and nothing else: not an image, not the key */
        const char *const in[3] = { old_path, new_path, a.key };
        const char *const what[3] = { "OLD image", "NEW image", "signing key" };
        if (dcli_output_clash("sign", out, in, what, 3) != 0) {
            return OTAUP_EXIT_USAGE;
        }
    }
    if (old_path != NULL && (old_img = sec_cli_read("sign", old_path, &a.opt.old_len)) == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (new_path != NULL && (new_img = sec_cli_read("sign", new_path, &a.opt.new_len)) == NULL) {
        free(old_img);
        return OTAUP_EXIT_FAIL;
    }
    a.opt.old_img = old_img;
    a.opt.new_img = new_img;
    rc = sec_sign_file("sign", &a, patch, out != NULL ? out : patch);
    free(old_img);
    free(new_img);
    return rc;
}
