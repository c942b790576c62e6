/*
 * Test-side helpers for the applier tests:
 *  - a small planner that turns (flash before, new image) into an otaup
 *    record stream, simulating the device as it goes, so that in-place
 *    ordering is always right whatever the pair (it is not the product's
 *    planner; it only has to produce valid streams exercising every record
 *    kind: ERASE, COPY, DIFF, WRITE, FILL, deferred + BLOB, DATA/SYNC,
 *    continuation steps in sectors larger than the staging buffer);
 *  - pair generators with in-place cycles and self-overlapping moves;
 *  - a harness that mounts the journal, runs the executor on a simulated
 *    flash and resumes from the right restart point.
 */
#ifndef OTAUP_TEST_TESTPLAN_H
#define OTAUP_TEST_TESTPLAN_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/apply.h"
#include "otaup/exec.h"
#include "otaup/simflash.h"

typedef struct tp_opts {
    otaup_geometry geo;
    uint32_t dst;        /* target slot address */
    uint32_t src;        /* source slot address (== dst for in-place) */
    uint32_t len;        /* image length (multiple of write size) */
    uint32_t staging;    /* window size */
    int compress;        /* inner stream in DATA records */
    int wbits;           /* raw deflate window bits */
    uint32_t sync_every; /* steps between SYNC restart points (0: one) */
    int deferred;        /* WRITE/DIFF bytes via BLOB */
    uint32_t data_chunk; /* bytes per DATA record */
    int verify;          /* VERIFY of the whole target at the end */
    int no_hash;         /* STEP without HASH flag */
} tp_opts;

void tp_opts_default(tp_opts *o, const otaup_geometry *geo, uint32_t dst, uint32_t src, uint32_t len,
                     uint32_t staging);

/* A restart point: outer stream offset where step `index` may restart. */
typedef struct tp_restart {
    uint32_t index;
    size_t offset;
} tp_restart;

typedef struct tp_stream {
    uint8_t *bytes;
    size_t len;
    tp_restart *rs;
    size_t nrs;
    uint32_t nsteps;
    uint32_t nsync;      /* SYNC records */
    uint32_t inner_len;  /* decompressed bytes of all DATA streams */
} tp_stream;

/* Plan: `flash` is the whole device content before the update (geo size);
 * `img` the new image of o->len bytes for o->dst. Returns 0. */
int tp_plan(const tp_opts *o, const uint8_t *flash, const uint8_t *img, tp_stream *out);
void tp_stream_free(tp_stream *s);

/* A delta container (docs/delta-format.md) around a planned stream:
 * header + END section + body. `old`/`img` give sizes and hashes. The
 * buffer is malloc'ed. */
int tp_container(const tp_opts *o, const tp_stream *s, uint8_t layout, uint32_t scratch_addr,
                 uint32_t scratch_size, uint16_t max_ops, const uint8_t *old, uint32_t old_len,
                 const uint8_t *img, uint8_t **out, size_t *out_len);

/* A stream from a delta container: the body, its SYNC restart points and
 * the header (for the executor's limits). Returns 0 or the reader's error. */
struct otaup_delta_header;
int tp_from_container(const uint8_t *delta, size_t len, tp_stream *out, struct otaup_delta_header *hdr);

/* The whole file `name` under $OTAUP_VECTORS (malloc; the caller frees),
 * its size in *len; NULL if it cannot be read. */
uint8_t *tp_load_vector(const char *name, size_t *len);

/* Deterministic pseudo-random bytes. */
void tp_fill_random(uint8_t *p, size_t n, uint64_t seed);
/* A "firmware-like" image: code-like runs, tables, padding. */
void tp_make_image(uint8_t *p, size_t n, uint64_t seed);
/* A new version of `old`: sector swaps (cycles), a moved block that
 * overlaps itself, byte patches, an appended tail. `sector` drives the
 * granularity of the swaps. */
void tp_make_new(const uint8_t *old, uint8_t *out, size_t n, uint32_t sector, uint64_t seed);

/* The device layout used by the harness. */
typedef struct th_layout {
    uint8_t layout;            /* OTAUP_LAYOUT_* */
    otaup_region slot[2];      /* in-place uses slot[0] */
    otaup_region scratch;
    otaup_region journal;
    otaup_region user;         /* a user-data region that must stay intact */
    uint32_t staging;
    uint32_t max_ops;
    unsigned wbits;
} th_layout;

/* Counters over runs (for reports). */
typedef struct th_result {
    int rc;
    int resumed;
    otaup_exec_stats stats;
} th_result;

/* Mount, init, start/resume, feed from the right restart point in chunks
 * of `chunk` bytes, finish. Returns the executor's result (e.g.
 * OTAUP_E_POWER_CUT). `hooks` may be NULL. */
int th_apply(otaup_simflash *sim, const th_layout *L, const tp_stream *s, size_t chunk, uint64_t delta_id,
             const otaup_exec_hooks *hooks, th_result *res);

/* The backup tests' terminal (4 KiB sectors, in place): slot at 0 (4
 * sectors), scratch at 4 sectors, journal at 5 (2 sectors), updater at 7,
 * user-data region 1 (personal) at 8 sectors of user_len bytes; 4 KiB
 * staging, window bits 11, 32 deferred records, messages of 512 bytes,
 * frames of max_frame; identity `terminal_id`, model demo-m4, 1.0.0.
 * Flash, link, clock, work area and timers are left to the caller. */
void tp_apply_config_backup(otaup_apply_config *c, uint32_t user_len, uint32_t max_frame, const char *terminal_id);

#endif
