/*
 * otaup delta — compute a delta from OLD (or its block signature) to NEW.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cmd.h"
#include "dcli.h"
#include "otaup/otaup.h"
#include "sec_cli.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: otaup delta OLD NEW -o PATCH [options]\n"
            "       otaup delta --from-sig SIG NEW -o PATCH [options]\n"
            "\n"
            "Plan the flash operations that turn OLD into NEW and write them as a delta\n"
            "file (docs/delta-format.md).\n"
            "\n"
            "flash and layout:\n"
            "  --sector-size N       uniform sectors of N bytes (default 4096)\n"
            "  --sector-map SPEC     non-uniform sectors from --base: COUNTxSIZE,... e.g. 4x16K,1x64K,7x128K\n"
            "  --write-size N        program unit in bytes, a power of two (default 1)\n"
            "  --erased V            value of an erased byte (default 0xFF)\n"
            "  --base ADDR           address of the first sector (default 0)\n"
            "  --mode inplace|ab     rewrite the running slot, or write the other slot (default inplace)\n"
            "  --source ADDR         where OLD lives (default --base)\n"
            "  --target ADDR         ab: where NEW goes (default: first sector after the larger image)\n"
            "  --scratch ADDR        inplace: scratch area (default: the sectors after the slot);\n"
            "                        ab: optional, with --scratch-size, for target sectors larger\n"
            "                        than the staging buffer\n"
            "  --scratch-size N      inplace: scratch size (default: enough sectors for the staging buffer)\n"
            "terminal resources:\n"
            "  --ram BYTES           RAM for applying: staging + inflate window + state (default 64K)\n"
            "  --staging N           staging buffer, at most 1M (default: the most --ram allows, at most 64K)\n"
            "  --window-bits N       inflate window 2^N, 9..15 (default: the most --ram allows)\n"
            "  --max-ops N           deferred records per step, 1..4096 (default 64; the planner\n"
            "                        writes compact records only: deltas declare 0)\n"
            "encoding:\n"
            "  --restart-interval N  compressed bytes between restart points (default 64K; 1 = every step)\n"
            "  --level N             1..9: zlib deflate; 10..12: near-optimal parsing (default 10;\n"
            "                        12: <=0.6%% smaller, 1.3x slower; 9: 3..5%% larger, 1.4x faster)\n"
            "  --no-step-hash        omit the per-step window hashes (not recommended)\n"
            "  -o, --output PATCH    the delta to write\n"
            "  -q, --quiet           no progress and no summary\n"
            "signing (docs/security.md; as otaup sign):\n"
            "  --sign KEY            sign the delta with the private key KEY\n"
            "%s"
            "\n"
            "exit codes: 0 success, 1 failure, 2 usage error (docs/cli.md)\n",
            sec_sign_usage);
}

static int parse_map(const char *spec, otaup_geometry *g)
{
    char buf[512], *tok, *save = NULL;
    if (strlen(spec) >= sizeof buf) {
        return -1;
    }
    strcpy(buf, spec);
    g->nruns = 0;
    /* every element is COUNTxSIZE (or SIZE): an empty one, as in "4x16K,"
     * or "4x16K,,1x64K", is a mistake, not nothing */
    if (buf[0] == ',' || (buf[0] != 0 && buf[strlen(buf) - 1u] == ',') || strstr(buf, ",,") != NULL) {
        return -1;
    }
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        /* the separator is the first 'x' after a count's own 0x: 0x10x4K is 16 x 4 KiB */
        int hex = tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X');
        char *x = strchr(tok + (hex ? 2 : 0), 'x');
        uint32_t count = 1, size;
        if (x == NULL) {
            x = strchr(tok, '*');
        }
        if (x != NULL) {
            *x = 0;
            if (dcli_parse_u32(tok, &count) < 0 || dcli_parse_u32(x + 1, &size) < 0) {
                return -1;
            }
        } else if (dcli_parse_u32(tok, &size) < 0) {
            return -1;
        }
        if (g->nruns == OTAUP_MAX_SECTOR_RUNS || count == 0 || size == 0) {
            return -1;
        }
        g->runs[g->nruns].count = count;
        g->runs[g->nruns].size = size;
        g->nruns++;
    }
    return g->nruns > 0 ? 0 : -1;
}

/* Sectors of `sector` bytes from `base` to the end of [addr, addr + len)
 * (an address below base counts from base). */
static uint64_t sectors_to(uint64_t base, uint64_t addr, uint64_t len, uint64_t sector)
{
    return ((addr > base ? addr - base : 0) + len + sector - 1u) / sector;
}

int otaup_cmd_delta(int argc, char **argv)
{
    const char *paths[2] = { NULL, NULL }, *outp = NULL, *sigp = NULL, *map = NULL;
    uint32_t sector = 4096, write_size = 1, erased = 0xFF, base = 0, v;
    int npaths = 0, i, quiet = 0, have_source = 0, have_sector = 0, rc;
    otaup_delta_options opt;
    const uint8_t *old = NULL, *nw = NULL;
    uint8_t *sigbuf = NULL;
    int old_mapped = 0, new_mapped = 0;
    size_t old_len = 0, new_len = 0, sig_len = 0;
    otaup_sig sig;
    otaup_delta *d = NULL;
    int status = OTAUP_EXIT_FAIL;

#if defined(__GLIBC__)
    /* The planner's phases allocate and free several buffers of a few
     * MB in turn (index, encoder work areas, the proof's image). Kept in
     * the heap instead of being unmapped on free, a later phase reuses
     * pages an earlier one already faulted in: about a third fewer page
     * faults, which cost tens of microseconds each on a virtual machine
     * (docs/delta-format.md, "Delta engine"). A short-lived process:
     * the memory returns to the system at exit. */
    (void)mallopt(M_MMAP_THRESHOLD, 32 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif

    sec_sign_args sa;
    otaup_delta_options_init(&opt, OTAUP_DELTA_OPTIONS_VERSION);
    sec_sign_args_init(&sa);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        rc = sec_sign_arg(&sa, "delta", argc, argv, &i);
        if (rc != 0) {
            if (rc < 0) {
                return OTAUP_EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(a, "--sign") == 0) {
            if (val == NULL) {
                fprintf(stderr, "otaup delta: --sign needs a KEY (a private key from otaup keygen)\n");
                return OTAUP_EXIT_USAGE;
            }
            sa.key = argv[++i];
            continue;
        }
#define NEED_U32(dst)                                                                   \
    do {                                                                                \
        if (val == NULL || dcli_parse_u32(val, &v) < 0) {                               \
            fprintf(stderr, "otaup delta: %s needs a number\n", a);                      \
            return OTAUP_EXIT_USAGE;                                                    \
        }                                                                               \
        dst = v;                                                                        \
        i++;                                                                            \
    } while (0)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (val == NULL) {
                fprintf(stderr, "otaup delta: -o needs a file\n");
                return OTAUP_EXIT_USAGE;
            }
            outp = val;
            i++;
        } else if (strcmp(a, "--from-sig") == 0) {
            if (val == NULL) {
                fprintf(stderr, "otaup delta: --from-sig needs a file\n");
                return OTAUP_EXIT_USAGE;
            }
            sigp = val;
            i++;
        } else if (strcmp(a, "--sector-size") == 0) {
            NEED_U32(sector);
            have_sector = 1;
        } else if (strcmp(a, "--sector-map") == 0) {
            if (val == NULL) {
                fprintf(stderr, "otaup delta: --sector-map needs a SPEC\n");
                return OTAUP_EXIT_USAGE;
            }
            map = val;
            i++;
        } else if (strcmp(a, "--write-size") == 0) {
            NEED_U32(write_size);
        } else if (strcmp(a, "--erased") == 0) {
            NEED_U32(erased);
        } else if (strcmp(a, "--base") == 0) {
            NEED_U32(base);
        } else if (strcmp(a, "--mode") == 0) {
            if (val != NULL && strcmp(val, "inplace") == 0) {
                opt.layout = OTAUP_LAYOUT_INPLACE;
            } else if (val != NULL && strcmp(val, "ab") == 0) {
                opt.layout = OTAUP_LAYOUT_AB;
            } else {
                fprintf(stderr, "otaup delta: --mode is inplace or ab\n");
                return OTAUP_EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--source") == 0) {
            NEED_U32(opt.source_addr);
            have_source = 1;
        } else if (strcmp(a, "--target") == 0) {
            NEED_U32(opt.target_addr);
            opt.target_given = 1;
        } else if (strcmp(a, "--scratch") == 0) {
            NEED_U32(opt.scratch_addr);
        } else if (strcmp(a, "--scratch-size") == 0) {
            NEED_U32(opt.scratch_size);
        } else if (strcmp(a, "--ram") == 0) {
            NEED_U32(opt.ram);
        } else if (strcmp(a, "--staging") == 0) {
            NEED_U32(opt.staging_size);
            if (opt.staging_size > OTAUP_DELTA_STAGING_MAX) {
                /* the planner would plan for 1 MiB instead, without a word */
                fprintf(stderr, "otaup delta: --staging is at most %u (1M)\n", (unsigned)OTAUP_DELTA_STAGING_MAX);
                return OTAUP_EXIT_USAGE;
            }
        } else if (strcmp(a, "--window-bits") == 0) {
            NEED_U32(v);
            if (v < 9 || v > 15) {
                fprintf(stderr, "otaup delta: --window-bits is 9..15\n");
                return OTAUP_EXIT_USAGE;
            }
            opt.window_bits = (uint8_t)v;
        } else if (strcmp(a, "--max-ops") == 0) {
            NEED_U32(v);
            if (v == 0 || v > OTAUP_DELTA_MAX_OPS_LIMIT) {
                fprintf(stderr, "otaup delta: --max-ops is 1..%u\n", OTAUP_DELTA_MAX_OPS_LIMIT);
                return OTAUP_EXIT_USAGE;
            }
            opt.max_ops = (uint16_t)v;
        } else if (strcmp(a, "--restart-interval") == 0) {
            NEED_U32(opt.restart_interval);
        } else if (strcmp(a, "--level") == 0) {
            NEED_U32(v);
            if (v < 1 || v > 12) {
                fprintf(stderr, "otaup delta: --level is 1..12\n");
                return OTAUP_EXIT_USAGE;
            }
            opt.level = (int)v;
        } else if (strcmp(a, "--no-step-hash") == 0) {
            opt.no_step_hash = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "otaup delta: unknown option %s (see otaup delta --help)\n", a);
            return OTAUP_EXIT_USAGE;
        } else if (npaths < 2) {
            paths[npaths++] = a;
        } else {
            fprintf(stderr, "otaup delta: too many arguments (see otaup delta --help)\n");
            return OTAUP_EXIT_USAGE;
        }
#undef NEED_U32
    }
    if (outp == NULL || (sigp == NULL && npaths != 2) || (sigp != NULL && npaths != 1)) {
        /* what is missing first, then the usage */
        fprintf(stderr, "otaup delta: %s\n",
                sigp != NULL && npaths == 2 ? "--from-sig SIG stands for OLD: give SIG and NEW, not OLD too"
                : sigp != NULL && npaths == 0 ? "NEW is missing (--from-sig SIG NEW -o PATCH)"
                : sigp == NULL && npaths == 0 ? "OLD and NEW are missing (OLD NEW -o PATCH)"
                : sigp == NULL && npaths == 1 ? "NEW is missing (OLD NEW -o PATCH)"
                                              : "-o PATCH is missing: the delta's file");
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    {
        /* options the chosen layout or flash has no use for were dropped
         * without a word: say so instead */
        const char *why =
            map != NULL && have_sector ? "--sector-size and --sector-map exclude each other"
            : opt.layout == OTAUP_LAYOUT_AB && ((opt.scratch_addr != 0) != (opt.scratch_size != 0))
                ? "--mode ab: a scratch area takes both --scratch and --scratch-size"
            : opt.layout == OTAUP_LAYOUT_INPLACE && opt.target_given &&
                    opt.target_addr != (have_source ? opt.source_addr : base)
                ? "--target is for --mode ab (in place, NEW goes where OLD is: --source)"
                : NULL;
        if (why != NULL) {
            fprintf(stderr, "otaup delta: %s\n", why);
            return OTAUP_EXIT_USAGE;
        }
        if (sa.manifest_opt != NULL && sa.key == NULL) {
            fprintf(stderr, "otaup delta: %s goes into a signed delta's manifest: give --sign KEY\n",
                    sa.manifest_opt);
            return OTAUP_EXIT_USAGE;
        }
    }
    if (sa.key != NULL && sigp != NULL && sa.opt.source_hash == NULL && !sa.opt.no_source) {
        /* the manifest names OLD by its SHA-256, which a block signature lacks */
        fprintf(stderr, "otaup delta: --from-sig with --sign: the block signature does not give OLD's SHA-256; "
                        "give --source-sha256 HEX (the SHA-256 of OLD) or --no-source\n");
        return OTAUP_EXIT_USAGE;
    }
    if (sa.key != NULL && sa.opt.model == NULL) {
        /* a usage error, found before planning and before PATCH is touched:
         * found after, it cost the planning and removed a PATCH left by an
         * earlier run */
        fprintf(stderr, "otaup delta: --sign needs --model MODEL (the terminals' model)\n");
        return OTAUP_EXIT_USAGE;
    }
    {
        /* PATCH replaces none of the inputs (and never the private key) */
        const char *const in[4] = { sigp != NULL ? NULL : paths[0], paths[npaths - 1], sigp, sa.key };
        const char *const what[4] = { "OLD", "NEW", "block signature", "signing key" };
        if (dcli_output_clash("delta", outp, in, what, 4) != 0) {
            return OTAUP_EXIT_USAGE;
        }
    }
    if (erased > 0xFF || write_size == 0 || (write_size & (write_size - 1u)) != 0 || write_size > 4096) {
        fprintf(stderr, "otaup delta: --write-size must be a power of two up to 4096, --erased a byte\n");
        return OTAUP_EXIT_USAGE;
    }

    if (sigp != NULL) {
        sigbuf = dcli_read_file("delta", sigp, &sig_len);
        if (sigbuf == NULL) {
            goto done;
        }
        rc = otaup_sig_parse(sigbuf, sig_len, &sig);
        if (rc == OTAUP_E_UNSUPPORTED) {
            fprintf(stderr, "otaup delta: %s: block signature format version %u, this otaup reads version %u "
                    "(compute it again with otaup sig)\n", sigp, (unsigned)(sigbuf[8] | sigbuf[9] << 8),
                    (unsigned)OTAUP_SIG_FORMAT_VERSION);
            goto done;
        }
        if (rc < 0) {
            fprintf(stderr, "otaup delta: %s: not a valid block signature: %s\n", sigp, otaup_strerror(rc));
            goto done;
        }
        old_len = sig.info.size;
    } else {
        old = dcli_map_file("delta", paths[0], &old_len, &old_mapped);
        if (old == NULL) {
            goto done;
        }
    }
    nw = dcli_map_file("delta", paths[npaths - 1], &new_len, &new_mapped);
    if (nw == NULL) {
        goto done;
    }

    /* geometry */
    memset(&opt.geo, 0, sizeof opt.geo);
    opt.geo.base = base;
    opt.geo.write_size = write_size;
    opt.geo.erased = (uint8_t)erased;
    if (map != NULL) {
        if (parse_map(map, &opt.geo) < 0) {
            fprintf(stderr, "otaup delta: bad --sector-map '%s' (COUNTxSIZE,... e.g. 4x16K,1x64K,7x128K)\n", map);
            status = OTAUP_EXIT_USAGE;
            goto done;
        }
    } else {
        uint64_t maxlen = old_len > new_len ? old_len : new_len;
        uint64_t slots = (maxlen + sector - 1u) / (sector ? sector : 1u);
        uint64_t count;
        if (sector == 0) {
            fprintf(stderr, "otaup delta: --sector-size must be > 0\n");
            status = OTAUP_EXIT_USAGE;
            goto done;
        }
        /* two slots plus a scratch area of 64 KiB or more */
        count = slots * 2u + (65536u + sector - 1u) / sector + 2u;
        {
            /* and as far as --source, --target and --scratch place them:
             * the slot at --source (in place: with the default scratch
             * after it; A/B: with the default target after it), NEW at
             * --target, the scratch area given */
            uint64_t need = sectors_to(base, have_source ? opt.source_addr : base, maxlen, sector), end;
            if (opt.layout == OTAUP_LAYOUT_AB) {
                end = opt.target_given || opt.target_addr != 0 ? sectors_to(base, opt.target_addr, new_len, sector)
                                                               : need + sectors_to(base, base, new_len, sector);
                if (opt.scratch_size != 0) {
                    uint64_t send = sectors_to(base, opt.scratch_addr, opt.scratch_size, sector);
                    end = send > end ? send : end;
                }
            } else if (opt.scratch_size == 0 && opt.scratch_addr == 0) {
                end = need + sectors_to(base, base, 65536u, sector);
            } else {
                /* the scratch area given; an address alone, or a size
                 * alone (after the slot), with the default's 64 KiB room */
                uint64_t slen = opt.scratch_size != 0 ? opt.scratch_size : 65536u;
                end = opt.scratch_addr != 0 ? sectors_to(base, opt.scratch_addr, slen, sector)
                                            : need + sectors_to(base, base, slen, sector);
            }
            need = end > need ? end : need;
            count = need > count ? need : count;
        }
        {
            /* as many as fit: the flash may end at 2^32, its size stays
             * below 2^32 (otaup_geometry_check) */
            uint64_t room = 0x100000000ull - base < 0xFFFFFFFFull ? 0x100000000ull - base : 0xFFFFFFFFull;
            if (count * sector > room) {
                count = room / sector;
            }
        }
        opt.geo.nruns = 1;
        opt.geo.runs[0].count = (uint32_t)count;
        opt.geo.runs[0].size = sector;
    }
    if (otaup_geometry_check(&opt.geo) < 0) {
        fprintf(stderr, "otaup delta: invalid flash geometry (sector sizes must be multiples of --write-size,"
                        " --base aligned to it, and the flash must end within the 32-bit address space)\n");
        status = OTAUP_EXIT_USAGE;
        goto done;
    }
    if (!have_source) {
        opt.source_addr = base;
    }
    opt.progress = dcli_progress;
    dcli_progress_start("delta", quiet);
    rc = otaup_delta_create(old, old != NULL ? old_len : 0, sigp != NULL ? &sig : NULL, nw, new_len, &opt, &d);
    dcli_progress_end();
    if (rc < 0) {
        fprintf(stderr, "otaup delta: cannot plan: %s (%s)\n", otaup_strerror(rc),
                otaup_errname(rc) ? otaup_errname(rc) : "?");
        if (rc == OTAUP_E_LIMIT) {
            fprintf(stderr, "otaup delta: --ram must hold the inflate state (%u bytes), the inflate window and the "
                            "staging buffer%s; give more --ram (see docs/cli.md)\n",
                    (unsigned)OTAUP_DELTA_INFLATE_STATE,
                    opt.layout == OTAUP_LAYOUT_AB ? ", which in --mode ab must hold the part of each target sector "
                                                    "the new image occupies, unless a scratch area "
                                                    "(--scratch, --scratch-size) holds a whole target sector"
                                                  : "");
        }
        if (rc == OTAUP_E_GEOMETRY) {
            uint64_t fend = (uint64_t)opt.geo.base + otaup_geometry_size(&opt.geo);
            fprintf(stderr, "otaup delta: OLD (%zu bytes at 0x%x) and NEW (%zu bytes at the target) must fit the "
                            "flash [0x%x, 0x%llx)%s; give more or larger sectors (--sector-size, --sector-map)\n",
                    old_len, have_source ? (unsigned)opt.source_addr : (unsigned)base, new_len, (unsigned)base,
                    (unsigned long long)fend,
                    opt.layout == OTAUP_LAYOUT_AB ? ", with the target on a sector boundary" : "");
        }
        if (rc == OTAUP_E_REGION) {
            fprintf(stderr, "otaup delta: %s\n",
                    opt.layout == OTAUP_LAYOUT_AB
                        ? "--mode ab: the sectors of the target slot (--target) overlap the old image (--source), "
                          "or the scratch area is not whole sectors of the flash apart from both slots"
                        : "in place: the scratch area (--scratch, --scratch-size) must be whole sectors of the "
                          "flash outside the slot");
        }
        if (rc == OTAUP_E_SCRATCH) {
            fprintf(stderr, "otaup delta: in place, a sector larger than the staging buffer is written by several "
                            "steps and must be rebuilt through the scratch area after a power cut: the scratch "
                            "area must hold the largest such sector; give --scratch/--scratch-size, or more --ram "
                            "(see docs/cli.md)\n");
        }
        goto done;
    }
    {
        size_t plen;
        const uint8_t *bytes = otaup_delta_bytes(d, &plen);
        const otaup_plan *p = otaup_delta_plan(d);
        if (sa.key != NULL) {
            /* signed before anything is written: a delta that cannot be
             * signed leaves no PATCH, and an existing one as it was */
            sa.opt.old_img = old;
            sa.opt.old_len = old != NULL ? old_len : 0;
            sa.opt.new_img = nw;
            sa.opt.new_len = new_len;
            sa.quiet = quiet;
            status = sec_sign_bytes("delta", &sa, outp, bytes, plen, outp, 1);
            if (status != OTAUP_EXIT_OK) {
                fprintf(stderr, "otaup delta: %s not written\n", outp);
                goto done;
            }
        } else if (dcli_write_file("delta", outp, bytes, plen) < 0) {
            goto done;
        }
        if (new_len == 0) {
            /* planned as asked (an update to nothing), but most likely the
             * wrong file: say so even with -q */
            fprintf(stderr, "otaup delta: note: NEW (%s) is empty: the delta writes no image%s\n",
                    paths[npaths - 1],
                    p->hdr.layout == OTAUP_LAYOUT_INPLACE ? " and OLD's bytes stay in the slot" : "");
        } else if (p->stats.steps == 0) {
            fprintf(stderr, "otaup delta: note: OLD holds NEW already where it goes: the delta changes nothing\n");
        }
        if (!quiet) {
            fprintf(stderr,
                    "otaup delta: %s: %zu bytes (%.2f%% of NEW), %u steps, %u of %u sectors erased,"
                    " %s, staging %u, window 2^%u, RAM %u%s\n",
                    outp, plen, new_len ? 100.0 * (double)plen / (double)new_len : 0.0, p->stats.steps,
                    p->stats.sectors_erased, p->stats.sectors_total,
                    p->hdr.layout == OTAUP_LAYOUT_AB ? "ab" : "inplace", p->hdr.staging_size,
                    p->hdr.window_bits, p->stats.ram_needed, p->stats.fallback ? ", literal fallback" : "");
            if (p->stats.cycle_edges > 0) {
                fprintf(stderr, "otaup delta: in-place cycles: %llu dependencies broken, %llu bytes re-encoded"
                                " (~%lld patch bytes)\n",
                        (unsigned long long)p->stats.cycle_edges, (unsigned long long)p->stats.cycle_cost_bytes,
                        (long long)p->stats.cycle_cost_patch);
            }
        }
    }
    status = OTAUP_EXIT_OK;
done:
    otaup_delta_free(d);
    if (old != NULL) {
        dcli_unmap_file(old, old_len, old_mapped);
    }
    if (nw != NULL) {
        dcli_unmap_file(nw, new_len, new_mapped);
    }
    free(sigbuf);
    return status;
}
