/*
 * otaup apply: the terminal's security checks (--pub and friends).
 */
#include "sec_apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "sec_cli.h"

const char sec_apply_usage[] =
    "  --pub PUB          verify the signed delta as the terminal does before writing\n"
    "                     (repeatable: any trusted key); refusals write nothing\n"
    "  --model MODEL      with --pub: the terminal's model (default: accept the manifest's)\n"
    "  --counter N        with --pub: the terminal's installed security counter (default 0)\n"
    "  --installed-version N  with --pub: the terminal's software version (default 0)\n";

int sec_apply_arg(sec_apply *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    uint64_t v;
    if (strcmp(a, "--pub") != 0 && strcmp(a, "--model") != 0 && strcmp(a, "--counter") != 0 &&
        strcmp(a, "--installed-version") != 0) {
        return 0;
    }
    if (*i + 1 >= argc) {
        fprintf(stderr, "otaup apply: %s needs a value\n", a);
        return -1;
    }
    (*i)++;
    s->given |= strcmp(a, "--pub") != 0;
    if (strcmp(a, "--model") == 0) {
        s->model = argv[*i];
        return 1;
    }
    if (strcmp(a, "--pub") == 0) {
#if OTAUP_HAVE_MBEDTLS
        otaup_key *k;
        if (s->nkeys == SEC_APPLY_MAX_KEYS) {
            fprintf(stderr, "otaup apply: at most %d keys\n", SEC_APPLY_MAX_KEYS);
            return -1;
        }
        k = sec_cli_load_key("apply", argv[*i]);
        if (k == NULL) {
            return -2; /* a failure, as for otaup verify --pub (exit 1) */
        }
        otaup_key_public(k, s->keys[s->nkeys++].pub);
        otaup_key_free(k);
        return 1;
#else
        fprintf(stderr, "otaup apply: --pub: this build has no mbedTLS\n");
        return -1;
#endif
    }
    if (sec_cli_u64(argv[*i], 0xFFFFFFFFull, &v) != 0) {
        fprintf(stderr, "otaup apply: %s: bad value '%s'\n", a, argv[*i]);
        return -1;
    }
    if (strcmp(a, "--counter") == 0) {
        s->counter = (uint32_t)v;
    } else {
        s->version = (uint32_t)v;
    }
    return 1;
}

int sec_apply_check(sec_apply *s, const uint8_t *delta, size_t len)
{
    if (s->nkeys == 0) {
        return 0;
    }
#if OTAUP_HAVE_MBEDTLS
    {
        otaup_verify_report rep;
        const otaup_manifest *m = &rep.manifest;
        int rc;
        otaup_crypto_mbedtls(&s->crypto);
        rc = otaup_delta_verify(&s->crypto, delta, len, s->keys, s->nkeys, &rep);
        if (rc != 0) {
            return rc;
        }
        if (s->model != NULL && (m->model_len != strlen(s->model) || memcmp(m->model, s->model, m->model_len) != 0)) {
            return OTAUP_E_MODEL;
        }
        if (m->counter < s->counter) {
            return OTAUP_E_ROLLBACK;
        }
        if (m->version < s->version && (m->policy & OTAUP_POLICY_ALLOW_DOWNGRADE) == 0u) {
            return OTAUP_E_OLDER;
        }
        return 0;
    }
#else
    (void)delta;
    (void)len;
    return OTAUP_E_UNSUPPORTED;
#endif
}

static int skip_part(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    (void)ctx;
    (void)type;
    (void)body;
    (void)len;
    (void)part;
    return 0;
}

int sec_apply_begin(sec_apply *s, const uint8_t *delta, size_t body_off, const otaup_flash *flash,
                    const otaup_journal *j, const otaup_region *window, otaup_exec_hooks *hooks, uint64_t *delta_id)
{
    const uint8_t *mf;
    size_t mf_len;
    int signed_delta = otaup_delta_find_manifest(delta, body_off, &mf, &mf_len) == 0;
    if (s->nkeys == 0) {
        if (signed_delta) {
            fprintf(stderr, "otaup apply: note: signed delta applied without --pub: signature not checked\n");
            hooks->ctx = NULL;
            hooks->record = skip_part;
            hooks->inner_record = skip_part;
        }
        return 0;
    }
#if OTAUP_HAVE_MBEDTLS
    {
        otaup_sec_config cfg;
        otaup_manifest m;
        otaup_delta_header h;
        int rc;
        otaup_crypto_mbedtls(&s->crypto);
        memset(&cfg, 0, sizeof cfg);
        cfg.crypto = &s->crypto;
        cfg.flash = flash;
        /* the simulated device is the delta's geometry with the journal's
         * sectors appended: the terminal reports the former */
        if (otaup_delta_header_decode(delta, body_off, &h) >= 0) {
            cfg.geometry = &h.geo;
        }
        cfg.keys = s->keys;
        cfg.nkeys = s->nkeys;
        if (s->model != NULL) {
            cfg.model = (const uint8_t *)s->model;
            cfg.model_len = strlen(s->model);
        } else if (signed_delta && otaup_manifest_parse(mf, mf_len, &m) == 0) {
            cfg.model = m.model; /* no terminal identity given: take the manifest's */
            cfg.model_len = m.model_len;
        }
        cfg.installed_counter = s->counter;
        cfg.installed_version = s->version;
        cfg.windows = window;
        cfg.nwindows = 1;
        cfg.journal = otaup_journal_get(j);
        rc = otaup_sec_begin_delta(&s->sec, &cfg, delta, body_off);
        if (rc != 0) {
            return rc; /* the caller says why, once */
        }
        otaup_sec_exec_hooks(&s->sec, hooks);
        *delta_id = otaup_sec_delta_id(&s->sec);
        return 0;
    }
#else
    (void)flash;
    (void)j;
    (void)window;
    (void)delta_id;
    return OTAUP_E_UNSUPPORTED;
#endif
}
