/*
 * otaup keygen -o KEY: a new ECDSA P-256 signing key.
 * Writes KEY (PEM private key, mode 0600), KEY.pub (PEM public key) and
 * KEY.pub.c (the public key as a C array for firmware, with its key id).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"
#include "dcli.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/sign.h"
#include "sec_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: otaup keygen -o KEY [--force]\n\n"
               "Create an ECDSA P-256 key pair for signing deltas:\n"
               "  KEY        the private key (PEM, mode 0600): keep it offline\n"
               "  KEY.pub    the public key (PEM), for otaup verify / apply --pub\n"
               "  KEY.pub.c  the public key as a C array (otaup_sec_key) for firmware\n"
               "  --force    overwrite existing files\n"
               "\nexit codes: 0 created, 1 failure, 2 usage error (docs/cli.md)\n");
}

#if OTAUP_HAVE_MBEDTLS
static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static size_t c_array(char *out, size_t cap, const char *key_path, const uint8_t pub[65], const uint8_t id[8])
{
    char name[64];
    const char *base = strrchr(key_path, '/');
    size_t n = 0, i, k = 0;
    base = base != NULL ? base + 1 : key_path;
    for (i = 0; base[i] != 0 && k + 1 < sizeof name; i++) {
        name[k++] = isalnum((unsigned char)base[i]) ? (char)tolower((unsigned char)base[i]) : '_';
    }
    name[k] = 0;
    {
        /* otaup_key_NAME must not be one of the library's own otaup_key_
         * functions (otaup/sign.h): a key named `public` or `sign` made a
         * KEY.pub.c that does not compile next to the header it includes */
        static const char *const taken[] = { "free", "generate", "has_private", "id",
                                             "parse", "public", "sign", "write_pem" };
        for (i = 0; i < sizeof taken / sizeof taken[0]; i++) {
            if (strcmp(name, taken[i]) == 0 && k + 4 < sizeof name) {
                memcpy(name + k, "_key", 5);
                break;
            }
        }
    }
    n += (size_t)snprintf(out + n, cap - n,
                          "/* otaup public key (ECDSA P-256), made by `otaup keygen`.\n"
                          " * key id: ");
    for (i = 0; i < 8; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%02x", id[i]);
    }
    n += (size_t)snprintf(out + n, cap - n,
                          "\n * Give it to the terminal in otaup_sec_config.keys. */\n"
                          "#include \"otaup/sign.h\"\n\n"
                          "const otaup_sec_key otaup_key_%s = { {", name);
    for (i = 0; i < 65; i++) {
        n += (size_t)snprintf(out + n, cap - n, "%s0x%02x,", i % 12 == 0 ? "\n    " : " ", pub[i]);
    }
    n += (size_t)snprintf(out + n, cap - n, "\n} };\n");
    return n;
}
#endif

int otaup_cmd_keygen(int argc, char **argv)
{
    const char *out = NULL;
    int force = 0, i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(argv[i], "-o") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "otaup keygen: -o needs a value\n");
                return OTAUP_EXIT_USAGE;
            }
            out = argv[++i];
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else {
            fprintf(stderr, "otaup keygen: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        }
    }
    if (out == NULL) {
        fprintf(stderr, "otaup keygen: -o KEY is missing: the key's file\n");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
#if OTAUP_HAVE_MBEDTLS
    {
        otaup_crypto c;
        otaup_key *k = NULL;
        char pub_path[4096], c_path[4096], pem[2048], pub_pem[2048], carr[2048];
        uint8_t pub[65], id[8];
        int rc, n, m;
        size_t cl;
        if (snprintf(pub_path, sizeof pub_path, "%s.pub", out) >= (int)sizeof pub_path ||
            snprintf(c_path, sizeof c_path, "%s.pub.c", out) >= (int)sizeof c_path) {
            fprintf(stderr, "otaup keygen: %s: path too long\n", out);
            return OTAUP_EXIT_USAGE;
        }
        if (!force && (exists(out) || exists(pub_path) || exists(c_path))) {
            /* name the file that exists, whichever of the three it is */
            fprintf(stderr, "otaup keygen: %s exists (use --force to replace it)\n",
                    exists(out) ? out : exists(pub_path) ? pub_path : c_path);
            return OTAUP_EXIT_FAIL;
        }
        otaup_crypto_mbedtls(&c);
        rc = otaup_key_generate(&k);
        if (rc == 0) {
            rc = otaup_key_public(k, pub);
        }
        if (rc == 0) {
            rc = otaup_key_id(&c, pub, id);
        }
        if (rc != 0) {
            fprintf(stderr, "otaup keygen: %s (%s)\n", otaup_strerror(rc), otaup_errname(rc));
            otaup_key_free(k);
            return OTAUP_EXIT_FAIL;
        }
        n = otaup_key_write_pem(k, 1, pem, sizeof pem);
        m = otaup_key_write_pem(k, 0, pub_pem, sizeof pub_pem);
        otaup_key_free(k);
        cl = c_array(carr, sizeof carr, out, pub, id);
        if (n < 0 || m < 0) {
            memset(pem, 0, sizeof pem);
            fprintf(stderr, "otaup keygen: %s (%s)\n", otaup_strerror(n < 0 ? n : m), otaup_errname(n < 0 ? n : m));
            return OTAUP_EXIT_FAIL;
        }
        {
            /* the three files are one key: all written before any is
             * renamed, so a file that cannot be replaced leaves the old
             * set whole (and no temporary file) */
            dcli_out set[3];
            set[0].path = out;
            set[0].data = pem;
            set[0].len = (size_t)n;
            set[0].mode = 0600;
            set[1].path = pub_path;
            set[1].data = pub_pem;
            set[1].len = (size_t)m;
            set[1].mode = 0644;
            set[2].path = c_path;
            set[2].data = carr;
            set[2].len = cl;
            set[2].mode = 0644;
            rc = dcli_write_set("keygen", 3, set, 1);
            memset(pem, 0, sizeof pem);
            if (rc != 0) {
                fprintf(stderr, "otaup keygen: no key written; %s, %s and %s are as they were\n", out, pub_path,
                        c_path);
                return OTAUP_EXIT_FAIL;
            }
        }
        chmod(out, 0600);
        printf("private key: %s\npublic key:  %s\nC array:     %s\nkey id:      ", out, pub_path, c_path);
        sec_cli_print_hex(id, 8);
        printf("\n");
        return OTAUP_EXIT_OK;
    }
#else
    (void)force;
    fprintf(stderr, "otaup keygen: this build has no mbedTLS\n");
    return OTAUP_EXIT_FAIL;
#endif
}
