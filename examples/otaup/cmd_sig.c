/*
 * otaup sig — compute the block signature of an image.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "dcli.h"
#include "otaup/otaup.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otaup sig IMAGE [-o SIG] [--block-size N] [--version V] [--build-time T]\n"
            "\n"
            "Compute the block signature of IMAGE (what a terminal reports when the server\n"
            "may not hold its exact image): size, XXH3-128 of the image, and per block a\n"
            "rolling sum and half of its XXH3-64. With -o the signature is written to SIG\n"
            "(for otaup delta --from-sig) and the summary goes to stderr; without -o the\n"
            "summary is printed on stdout.\n"
            "\n"
            "  --block-size N   block size, a power of two 64..1M (default 4096)\n"
            "  --version V      software version to record (default 0)\n"
            "  --build-time T   build time, seconds since 1970 (default 0)\n"
            "  -q, --quiet      print nothing on success\n"
            "\n"
            "exit codes: 0 success, 1 failure, 2 usage error (docs/cli.md)\n");
}

int otaup_cmd_sig(int argc, char **argv)
{
    const char *img = NULL, *outp = NULL;
    uint32_t bs = OTAUP_SIG_BLOCK_DEFAULT, version = 0;
    unsigned long long bt = 0;
    int i, quiet = 0, rc;
    uint8_t *buf, *sig = NULL;
    size_t len, sig_len;
    otaup_sig s;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t *dst = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (val == NULL) {
                fprintf(stderr, "otaup sig: -o needs a file\n");
                return OTAUP_EXIT_USAGE;
            }
            outp = val;
            i++;
            continue;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        } else if (strcmp(a, "--block-size") == 0) {
            dst = &bs;
        } else if (strcmp(a, "--version") == 0) {
            dst = &version;
        } else if (strcmp(a, "--build-time") == 0) {
            /* seconds since 1970, 64 bits as the signature holds it (and as
             * otaup sign reads it): decimal or 0x hex, no suffix */
            const char *end = NULL;
            if (val == NULL || dcli_parse_num(val, &bt, &end) != 0 || *end != 0) {
                fprintf(stderr, "otaup sig: %s needs a number\n", a);
                return OTAUP_EXIT_USAGE;
            }
            i++;
            continue;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "otaup sig: unknown option %s (see otaup sig --help)\n", a);
            return OTAUP_EXIT_USAGE;
        } else if (img == NULL) {
            img = a;
            continue;
        } else {
            fprintf(stderr, "otaup sig: too many arguments\n");
            return OTAUP_EXIT_USAGE;
        }
        if (val == NULL || dcli_parse_u32(val, dst) < 0) {
            fprintf(stderr, "otaup sig: %s needs a number\n", a);
            return OTAUP_EXIT_USAGE;
        }
        i++;
    }
    if (img == NULL) {
        fprintf(stderr, "otaup sig: IMAGE is missing\n");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    if (bs < OTAUP_SIG_BLOCK_MIN || bs > OTAUP_SIG_BLOCK_MAX || (bs & (bs - 1u)) != 0) {
        fprintf(stderr, "otaup sig: --block-size must be a power of two in 64..1M\n");
        return OTAUP_EXIT_USAGE;
    }
    {
        const char *const in[1] = { img };
        const char *const what[1] = { "IMAGE" };
        if (dcli_output_clash("sig", outp, in, what, 1) != 0) {
            return OTAUP_EXIT_USAGE;
        }
    }
    buf = dcli_read_file("sig", img, &len);
    if (buf == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    rc = otaup_sig_create(buf, len, version, (uint64_t)bt, bs, &sig, &sig_len);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "otaup sig: %s\n", otaup_strerror(rc));
        return OTAUP_EXIT_FAIL;
    }
    if (outp != NULL && dcli_write_file("sig", outp, sig, sig_len) < 0) {
        free(sig);
        return OTAUP_EXIT_FAIL;
    }
    otaup_sig_parse(sig, sig_len, &s);
    if (!quiet) {
        FILE *o = outp != NULL ? stderr : stdout;
        fprintf(o, "%s: %u bytes, version %u, build time %llu, %u blocks of %u, XXH3-128 ", img, s.info.size,
                s.info.version, (unsigned long long)s.info.build_time, s.nblocks, s.info.block_size);
        for (i = 15; i >= 0; i--) {
            fprintf(o, "%02x", s.info.hash[i]);
        }
        fprintf(o, "%s%s\n", outp != NULL ? " -> " : "", outp != NULL ? outp : "");
    }
    free(sig);
    return OTAUP_EXIT_OK;
}
