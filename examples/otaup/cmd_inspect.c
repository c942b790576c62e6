/*
 * otaup inspect — describe a delta (or a block signature): operations,
 * address ranges, sectors erased, payload bytes by kind, ratios.
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
            "usage: otaup inspect PATCH [--json] [--steps]\n"
            "       otaup inspect SIG [--json]\n"
            "\n"
            "Check a delta completely (header, sections, every record, every compressed\n"
            "stream, body hash) and describe it: layout and flash geometry, steps and the\n"
            "address ranges they rewrite, sectors erased of total, records and bytes by\n"
            "kind, payload sizes and ratios, RAM the terminal needs, in-place cycle cost.\n"
            "A damaged or foreign file is refused with exit code 1.\n"
            "\n"
            "  --json    one JSON object on stdout (machine-readable; same figures)\n"
            "  --steps   list every step (index, window, erase, records, restart point)\n"
            "\n"
            "exit codes: 0 success, 1 failure, 2 usage error (docs/cli.md)\n");
}

static void hex(FILE *o, const uint8_t *h, int n)
{
    int i;
    for (i = n - 1; i >= 0; i--) {
        fprintf(o, "%02x", h[i]);
    }
}

static int inspect_sig(const char *path, const uint8_t *buf, size_t len, int json)
{
    otaup_sig s;
    int rc = otaup_sig_parse(buf, len, &s);
    if (rc < 0) {
        fprintf(stderr, "otaup inspect: %s: damaged block signature: %s\n", path, otaup_strerror(rc));
        return OTAUP_EXIT_FAIL;
    }
    if (json) {
        printf("{\"kind\":\"signature\",\"format_version\":%u,\"image_size\":%u,\"block_size\":%u,"
               "\"blocks\":%u,\"version\":%u,\"build_time\":%llu,\"image_hash\":\"",
               OTAUP_SIG_FORMAT_VERSION, s.info.size, s.info.block_size, s.nblocks, s.info.version,
               (unsigned long long)s.info.build_time);
        hex(stdout, s.info.hash, 16);
        printf("\"}\n");
    } else {
        printf("%s: otaup block signature, format %u\n  image %u bytes, version %u, build time %llu\n"
               "  %u blocks of %u bytes\n  image XXH3-128 ",
               path, OTAUP_SIG_FORMAT_VERSION, s.info.size, s.info.version, (unsigned long long)s.info.build_time,
               s.nblocks, s.info.block_size);
        hex(stdout, s.info.hash, 16);
        printf("\n");
    }
    return OTAUP_EXIT_OK;
}

int otaup_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, steps = 0, i, rc;
    uint8_t *buf;
    size_t len;
    otaup_plan *p = NULL;
    const otaup_delta_header *h;
    const otaup_delta_stats *s;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--steps") == 0) {
            steps = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "otaup inspect: unknown option %s (see otaup inspect --help)\n", argv[i]);
            return OTAUP_EXIT_USAGE;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            fprintf(stderr, "otaup inspect: too many arguments\n");
            return OTAUP_EXIT_USAGE;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "otaup inspect: PATCH (or SIG) is missing\n");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    buf = dcli_read_file("inspect", path, &len);
    if (buf == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (len >= 8 && memcmp(buf, "OTAUPSIG", 8) == 0) {
        if (steps) {
            /* a block signature has no steps: say so rather than drop --steps */
            fprintf(stderr, "otaup inspect: %s is a block signature: --steps lists a delta's steps\n", path);
            free(buf);
            return OTAUP_EXIT_USAGE;
        }
        rc = inspect_sig(path, buf, len, json);
        free(buf);
        return rc;
    }
    rc = otaup_delta_decode(buf, len, &p);
    if (rc < 0) {
        fprintf(stderr, "otaup inspect: %s: not a valid otaup delta: %s (%s)\n", path, otaup_strerror(rc),
                otaup_errname(rc) ? otaup_errname(rc) : "?");
        free(buf);
        return OTAUP_EXIT_FAIL;
    }
    h = &p->hdr;
    s = &p->stats;
    if (json) {
        printf("{\"kind\":\"delta\",\"format_version\":%u,\"delta_bytes\":%zu,\"layout\":\"%s\","
               "\"from_sig\":%s,\"geometry\":{\"base\":%u,\"write_size\":%u,\"erased\":%u,\"runs\":[",
               h->format_version, len, h->layout == OTAUP_LAYOUT_AB ? "ab" : "inplace",
               (h->flags & OTAUP_DELTA_F_FROM_SIG) ? "true" : "false", h->geo.base, h->geo.write_size,
               h->geo.erased);
        for (i = 0; i < h->geo.nruns; i++) {
            printf("%s{\"count\":%u,\"size\":%u}", i ? "," : "", h->geo.runs[i].count, h->geo.runs[i].size);
        }
        /* the hashes the text form prints, in the same canonical form (cli.md) */
        printf("]},\"source_hash\":\"");
        hex(stdout, h->source_hash, 16);
        printf("\",\"target_hash\":\"");
        hex(stdout, h->target_hash, 16);
        printf("\",\"source_addr\":%u,\"source_size\":%u,\"target_addr\":%u,\"target_size\":%u,"
               "\"scratch_addr\":%u,\"scratch_size\":%u,\"staging_size\":%u,\"window_bits\":%u,\"max_ops\":%u,"
               "\"ram_needed\":%u,\"steps\":%u,\"restarts\":%u,\"sectors_total\":%u,\"sectors_erased\":%u,"
               "\"sectors_unchanged\":%u,\"self_read_steps\":%u,",
               h->source_addr, h->source_size, h->target_addr, h->target_size, h->scratch_addr, h->scratch_size,
               h->staging_size, h->window_bits, h->max_ops, s->ram_needed, s->steps, s->restarts,
               s->sectors_total, s->sectors_erased, s->sectors_unchanged, s->self_read_steps);
        printf("\"records\":{\"copy\":%u,\"diff\":%u,\"write\":%u,\"fill\":%u,\"erase\":%u},"
               "\"bytes\":{\"copy\":%llu,\"diff\":%llu,\"write\":%llu,\"fill\":%llu},"
               "\"payload\":{\"diff_stream\":%llu,\"literal_stream\":%llu,\"inner\":%llu,\"body\":%llu},"
               "\"cycle_edges\":%llu,\"cycle_cost_bytes\":%llu,\"cycle_cost_patch\":%lld,\"fallback\":%s,"
               "\"ratio_new\":%.6f",
               s->n_copy, s->n_diff, s->n_write, s->n_fill, s->n_erase, (unsigned long long)s->copy_bytes,
               (unsigned long long)s->diff_bytes, (unsigned long long)s->write_bytes,
               (unsigned long long)s->fill_bytes, (unsigned long long)s->diff_stream_bytes,
               (unsigned long long)s->literal_stream_bytes, (unsigned long long)s->inner_bytes,
               (unsigned long long)s->body_bytes, (unsigned long long)s->cycle_edges,
               (unsigned long long)s->cycle_cost_bytes, (long long)s->cycle_cost_patch,
               s->fallback ? "true" : "false", h->target_size ? (double)len / (double)h->target_size : 0.0);
        if (steps) {
            uint32_t k;
            printf(",\"step_list\":[");
            for (k = 0; k < p->nsteps; k++) {
                const otaup_plan_step *st = &p->steps[k];
                printf("%s{\"index\":%u,\"addr\":%u,\"len\":%u,\"records\":%u,\"sync\":%s,\"self_read\":%s}",
                       k ? "," : "", st->index, st->addr, st->len, st->nops, st->sync ? "true" : "false",
                       st->self_read ? "true" : "false");
            }
            printf("]");
        }
        printf("}\n");
    } else {
        printf("%s: otaup delta, format %u, %zu bytes (%.2f%% of NEW)\n", path, h->format_version, len,
               h->target_size ? 100.0 * (double)len / (double)h->target_size : 0.0);
        printf("  layout     %s%s; flash base 0x%x, sectors", h->layout == OTAUP_LAYOUT_AB ? "A/B" : "in place",
               (h->flags & OTAUP_DELTA_F_FROM_SIG) ? " (planned from a block signature)" : "", h->geo.base);
        for (i = 0; i < h->geo.nruns; i++) {
            printf("%s%ux%u", i ? "," : " ", h->geo.runs[i].count, h->geo.runs[i].size);
        }
        printf(", write size %u, erased 0x%02x\n", h->geo.write_size, h->geo.erased);
        printf("  source     0x%08x +%u  XXH3-128 ", h->source_addr, h->source_size);
        hex(stdout, h->source_hash, 16);
        printf("\n  target     0x%08x +%u  XXH3-128 ", h->target_addr, h->target_size);
        hex(stdout, h->target_hash, 16);
        printf("\n");
        if (h->scratch_size > 0) {
            printf("  scratch    0x%08x +%u\n", h->scratch_addr, h->scratch_size);
        }
        printf("  terminal   staging %u, inflate window 2^%u, %u deferred records/step: RAM %u bytes\n",
               h->staging_size, h->window_bits, h->max_ops, s->ram_needed);
        printf("  steps      %u (restart points %u, through scratch %u)\n", s->steps, s->restarts,
               s->self_read_steps);
        printf("  sectors    %u erased of %u", s->sectors_erased, s->sectors_total);
        if (h->layout == OTAUP_LAYOUT_INPLACE) {
            printf(" (%u untouched)", s->sectors_unchanged);
        }
        printf("\n  records    COPY %u (%llu B), DIFF %u (%llu B), WRITE %u (%llu B), FILL %u (%llu B), ERASE %u\n",
               s->n_copy, (unsigned long long)s->copy_bytes, s->n_diff, (unsigned long long)s->diff_bytes,
               s->n_write, (unsigned long long)s->write_bytes, s->n_fill, (unsigned long long)s->fill_bytes,
               s->n_erase);
        printf("  payload    differences %llu B, literals %llu B; inner stream %llu B -> body %llu B (%.1f:1)\n",
               (unsigned long long)s->diff_stream_bytes, (unsigned long long)s->literal_stream_bytes,
               (unsigned long long)s->inner_bytes, (unsigned long long)s->body_bytes,
               s->body_bytes ? (double)s->inner_bytes / (double)s->body_bytes : 0.0);
        printf("  cycles     %llu dependencies broken, %llu bytes re-encoded (~%lld patch bytes)%s\n",
               (unsigned long long)s->cycle_edges, (unsigned long long)s->cycle_cost_bytes,
               (long long)s->cycle_cost_patch, s->fallback ? "; literal fallback" : "");
        if (steps) {
            uint32_t k;
            for (k = 0; k < p->nsteps; k++) {
                const otaup_plan_step *st = &p->steps[k];
                uint32_t j, er = 0;
                for (j = 0; j < st->nops; j++) {
                    er |= p->ops[st->first_op + j].type == OTAUP_REC_ERASE;
                }
                printf("  step %5u  [0x%08x, 0x%08x)  %3u records%s%s%s\n", st->index, st->addr, st->addr + st->len,
                       st->nops - er, er ? "  erase" : "", st->sync ? "  restart" : "",
                       st->self_read ? "  via scratch" : "");
            }
        }
    }
    otaup_plan_free(p);
    free(buf);
    return OTAUP_EXIT_OK;
}
