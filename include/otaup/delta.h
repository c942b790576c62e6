/*
 * otaup — delta container: reader (both sides) and planner (server side).
 *
 * A delta file (docs/delta-format.md) is
 *
 *   header (OTAUP_DELTA_HEADER_BYTES(run count) bytes, little-endian)
 *   sections: TLV entries [tag u16][length u32][value], ended by tag 0
 *             (room for the signed manifest and its signature)
 *   body: the outer record stream (otaup/record.h): SYNC, DATA (raw
 *         deflate of the inner record stream: STEP, ERASE, the compact
 *         PIECE and CFILL, END; a reader also takes version 1's COPY,
 *         DIFF, WRITE, FILL and BLOB), and plain VERIFY/ERASE records.
 *
 * The header carries the body length and its XXH3-128 so that a damaged
 * file is refused before anything is written.
 *
 * Reader: lib/core, C99, no heap, bounded memory; it is fed bytes in any
 * chunking and reports events. Planner: lib/server, C11, allocates.
 */
#ifndef OTAUP_DELTA_H
#define OTAUP_DELTA_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"
#include "otaup/image.h"
#include "otaup/record.h"
#include "otaup/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Container header
 * ==================================================================== */

/* OTAUP_DELTA_FORMAT_VERSION (otaup/version.h) is the container format version. */
/** Size of the header of format version 2: it ends with the sector runs
 * (8 bytes each, 1..8 of them) and an 8-byte check hash. */
#define OTAUP_DELTA_HEADER_BYTES(nruns) (132u + 8u * (unsigned)(nruns))
/** Largest header (8 sector runs): a buffer this big holds any header. */
#define OTAUP_DELTA_HEADER_MAX OTAUP_DELTA_HEADER_BYTES(8)
/** Smallest header (one run of uniform sectors). */
#define OTAUP_DELTA_HEADER_MIN OTAUP_DELTA_HEADER_BYTES(1)
/** Bytes of the header that tell its size (its run count is at offset 25). */
#define OTAUP_DELTA_HEADER_PREFIX 28u
/** The 8 magic bytes at offset 0. */
#define OTAUP_DELTA_MAGIC "OTAUPDLT"

/** Layouts. */
#define OTAUP_LAYOUT_INPLACE 0u /**< rewrite the running slot in place */
#define OTAUP_LAYOUT_AB 1u      /**< read the source slot, write the other slot */

/** Header flags. Unknown flags are refused. */
#define OTAUP_DELTA_F_FROM_SIG 0x01u  /**< planned from a block signature (whole-block copies only) */
#define OTAUP_DELTA_F_STEP_HASH 0x02u /**< every STEP carries the hash of its window */
#define OTAUP_DELTA_F_KNOWN 0x03u

/** Section tags (the TLV area between header and body). */
#define OTAUP_SECTION_END 0u       /**< ends the section list (length 0) */
#define OTAUP_SECTION_MANIFEST 1u  /**< signed manifest (security.md) */
#define OTAUP_SECTION_SIGNATURE 2u /**< signature over the manifest */
#define OTAUP_SECTION_PAD 3u       /**< padding; ignored */
#define OTAUP_SECTION_INFO 4u      /**< planner notes, "key=value" lines (informative, unsigned) */
/** Largest value of one section, and most sections before END. */
#define OTAUP_SECTION_MAX_LEN 65536u
#define OTAUP_SECTION_MAX_COUNT 16u
/** Size of a section head: tag u16 + length u32. */
#define OTAUP_SECTION_HEAD_SIZE 6u

/** Limits the reader checks. */
#define OTAUP_DELTA_WBITS_MIN 9u
#define OTAUP_DELTA_WBITS_MAX 15u
#define OTAUP_DELTA_STAGING_MAX (1024u * 1024u)
/** Smallest staging buffer the planner plans for (the executor keeps a hash state in it). */
#define OTAUP_DELTA_STAGING_MIN 1024u
#define OTAUP_DELTA_MAX_OPS_LIMIT 4096u

/** The decoded fixed header. */
typedef struct otaup_delta_header {
    uint16_t format_version; /**< OTAUP_DELTA_FORMAT_VERSION */
    uint16_t header_size;    /**< OTAUP_DELTA_HEADER_BYTES(geo.nruns) */
    uint32_t flags;          /**< OTAUP_DELTA_F_* */
    otaup_geometry geo;      /**< target flash geometry */
    uint8_t layout;          /**< OTAUP_LAYOUT_* */
    uint8_t window_bits;     /**< raw deflate window of the DATA streams, 9..15 */
    uint16_t max_ops;        /**< most DEFERRED WRITE/DIFF records in one step */
    uint32_t source_addr;    /**< start of the old image */
    uint32_t target_addr;    /**< start of the new image (== source_addr in place) */
    uint32_t scratch_addr;   /**< scratch area (0 and size 0: none) */
    uint32_t scratch_size;
    uint32_t staging_size;   /**< bytes of the staging buffer: every STEP len is <= this */
    uint32_t step_count;     /**< steps in the inner stream, indices 0 .. step_count-1 */
    uint32_t sync_count;     /**< SYNC records (restart points) in the body */
    uint32_t source_size;    /**< old image size */
    uint32_t target_size;    /**< new image size */
    uint8_t source_hash[16]; /**< XXH3-128 of the old image */
    uint8_t target_hash[16]; /**< XXH3-128 of the new image */
    uint32_t body_len;       /**< bytes of the outer record stream */
    uint8_t body_hash[16];   /**< XXH3-128 of those bytes */
    uint32_t inner_len;      /**< total decompressed bytes of all DATA streams */
} otaup_delta_header;

/**
 * Encode *h into out[0..OTAUP_DELTA_HEADER_BYTES(h->geo.nruns)), including
 * the header check hash. Returns that size or OTAUP_E_BUFFER /
 * OTAUP_E_INVAL (a header that otaup_delta_header_decode would refuse).
 */
int otaup_delta_header_encode(const otaup_delta_header *h, uint8_t *out, size_t cap);

/**
 * Decode and check the header at in[0..len). Returns the header size
 * consumed, or OTAUP_E_DELTA_TRUNCATED (len too short), OTAUP_E_DELTA_MAGIC,
 * OTAUP_E_DELTA_VERSION, OTAUP_E_DELTA_CORRUPT (check hash, reserved bits,
 * inconsistent fields), OTAUP_E_GEOMETRY.
 */
int otaup_delta_header_decode(const uint8_t *in, size_t len, otaup_delta_header *h);

/** Bytes the planner counts for the inflate state, and per deferred record. */
#define OTAUP_DELTA_INFLATE_STATE 7168u
#define OTAUP_DELTA_OP_ENTRY 16u
/**
 * RAM the terminal needs to apply a delta with this header, as the
 * planner counts it: staging buffer + inflate window (2^window_bits,
 * window_bits above 15 counted as 15) + inflate state
 * (OTAUP_DELTA_INFLATE_STATE) + table of deferred records
 * (max_ops * OTAUP_DELTA_OP_ENTRY); 0xFFFFFFFF if the sum does not fit.
 */
uint32_t otaup_delta_ram_needed(uint32_t staging, uint32_t window_bits, uint32_t max_ops);

/* ======================================================================
 * Streaming reader (lib/core: no heap, bounded memory)
 * ==================================================================== */

/** Events of otaup_delta_reader_feed(). */
typedef enum otaup_delta_event {
    OTAUP_DELTA_NEED_INPUT = 0,    /**< all input consumed; feed more (or finish) */
    OTAUP_DELTA_HEADER = 1,        /**< r->hdr is valid */
    OTAUP_DELTA_SECTION = 2,       /**< section r->sec_tag of r->sec_len bytes starts */
    OTAUP_DELTA_SECTION_BYTES = 3, /**< r->data[0..r->data_len) of the current section */
    OTAUP_DELTA_BODY = 4,          /**< sections done; body starts at file offset r->body_offset */
    OTAUP_DELTA_RECORD = 5,        /**< outer record in r->rec, starting at file offset r->rec_offset;
                                        a DATA record's bytes follow as RECORD_BYTES */
    OTAUP_DELTA_RECORD_BYTES = 6,  /**< r->data[0..r->data_len): next bytes of the DATA record */
    OTAUP_DELTA_END = 7            /**< body complete; r->body_checked says whether its hash was verified */
} otaup_delta_event;

/** Reader state: a plain struct, no heap. Fields are read-only for the caller. */
typedef struct otaup_delta_reader {
    otaup_delta_header hdr;
    uint8_t state;
    uint8_t body_checked;    /**< END: 1 if every body byte was hashed and matched */
    uint8_t hashing;         /**< 0 once bytes were skipped (resume) */
    uint8_t prev_type;       /**< previous outer record type (0 = none) */
    uint16_t sec_tag;        /**< current section tag */
    uint16_t sec_count;
    uint32_t sec_len;        /**< current section length */
    uint32_t left;           /**< bytes left in the current section value / DATA record */
    uint32_t body_offset;    /**< file offset of the body */
    uint32_t pos;            /**< file offset of the next byte to be fed */
    uint32_t rec_offset;     /**< file offset of the current outer record */
    uint32_t next_sync;      /**< smallest index allowed for the next SYNC */
    uint32_t last_sync;      /**< index of the last SYNC seen */
    uint32_t syncs_seen;     /**< SYNC records read */
    uint32_t data_bytes;     /**< DATA payload bytes since the last SYNC */
    uint32_t head_len;       /**< bytes collected in head[] */
    uint32_t need;           /**< bytes head[] must reach */
    otaup_record rec;        /**< current outer record */
    const uint8_t *data;     /**< SECTION_BYTES / RECORD_BYTES chunk (points into the input) */
    uint32_t data_len;
    uint8_t head[OTAUP_DELTA_HEADER_MAX]; /**< header / section head / record head assembly */
    union {
        uint64_t align;
        unsigned char space[OTAUP_XXH3_STATE_SPACE];
    } hash;                  /**< XXH3-128 state over the body */
} otaup_delta_reader;

/** Prepare a reader for a delta file from its first byte. */
void otaup_delta_reader_init(otaup_delta_reader *r);

/**
 * Advance over in[0..len): *consumed receives the bytes used. Returns an
 * event (>= 0) or a negative error: the header errors above,
 * OTAUP_E_DELTA_CORRUPT (bad section: a 17th, one longer than
 * OTAUP_SECTION_MAX_LEN, an END with a length; an outer record that is
 * not SYNC, DATA, VERIFY or ERASE, or that runs past the body; a first
 * record other than SYNC{0} when the header counts steps; DATA not preceded
 * by a SYNC or a DATA, VERIFY or ERASE right after a SYNC; a RESET flag
 * not right after a SYNC or missing there; SYNC indices out of order or
 * beyond step_count; at the end: a last record SYNC or a SYNC count other
 * than sync_count; bytes after the body), OTAUP_E_MSG_* (malformed record
 * body; MSG_FIELD also for a VERIFY or ERASE outside the geometry),
 * OTAUP_E_HASH (body hash mismatch, reported at the end), OTAUP_E_INVAL
 * (NULL arguments). Call again with the rest of the input until
 * NEED_INPUT. After an error the reader must be re-initialised (until
 * then it returns OTAUP_E_STATE). A body read from a resume point
 * starts at that point's SYNC: see otaup_delta_reader_seek().
 */
int otaup_delta_reader_feed(otaup_delta_reader *r, const uint8_t *in, size_t len, size_t *consumed);

/**
 * Declare the end of the input. Returns OTAUP_DELTA_END if the body ended
 * exactly (and matched its hash when it was hashed), OTAUP_E_HASH or
 * OTAUP_E_DELTA_CORRUPT (the end-of-body checks of
 * otaup_delta_reader_feed()) when the body ended but is wrong,
 * OTAUP_E_DELTA_TRUNCATED if it did not end, OTAUP_E_STATE after an error,
 * OTAUP_E_INVAL for NULL.
 */
int otaup_delta_reader_finish(otaup_delta_reader *r);

/**
 * After a RECORD event for DATA, or a SECTION event, skip its bytes
 * instead of feeding them: returns how many bytes the caller must skip in
 * its source (the next byte fed is the one after them). The body hash can
 * then no longer be checked (END reports body_checked = 0). Returns 0
 * (nothing to skip) in any other state.
 */
uint32_t otaup_delta_reader_skip(otaup_delta_reader *r);

/**
 * Resume at a SYNC record found earlier (r->rec_offset of its RECORD
 * event): the reader must already have passed the header and sections
 * (state BODY or later). The next bytes fed are those at `offset`, which
 * must start a SYNC record (the first record after a seek must be a SYNC
 * when the header counts steps). The body hash is not checked. Returns 0,
 * OTAUP_E_INVAL, OTAUP_E_STATE (body not reached, or after an error), or
 * OTAUP_E_RANGE (offset outside the body).
 */
int otaup_delta_reader_seek(otaup_delta_reader *r, uint32_t offset);

/**
 * Convenience for a whole delta in memory: check header, sections, the
 * outer record stream and the body hash. Returns 0 or the first error
 * (the reader's, OTAUP_E_DELTA_CORRUPT for bytes after the body,
 * OTAUP_E_RANGE for len above 4 GiB, OTAUP_E_INVAL).
 * On success *hdr (if not NULL) holds the header and *body_offset (if
 * not NULL) the body's offset.
 */
int otaup_delta_check(const uint8_t *in, size_t len, otaup_delta_header *hdr, uint32_t *body_offset);

/* ======================================================================
 * Planner (server side: lib/server, allocates)
 * ==================================================================== */

#define OTAUP_DELTA_OPTIONS_VERSION 1u

/** Progress callback: `done` of `total` units of the current `phase` (a short name). */
typedef void (*otaup_delta_progress_cb)(const char *phase, uint64_t done, uint64_t total, void *payload);

/**
 * Planner options. Zero means "default" for every field except version
 * and geo, which must be set (otaup_geometry_uniform() helps).
 */
typedef struct otaup_delta_options {
    unsigned int version;     /**< OTAUP_DELTA_OPTIONS_VERSION */
    otaup_geometry geo;       /**< target flash geometry (nruns 0: a uniform 4 KiB map from 0 that fits) */
    uint8_t layout;           /**< OTAUP_LAYOUT_INPLACE (default) or OTAUP_LAYOUT_AB */
    uint32_t source_addr;     /**< old image start (default geo.base) */
    uint32_t target_addr;     /**< new image start (in place: = source_addr; A/B: default the
                                   first sector boundary after the larger image; see
                                   target_given). A/B target and source must not overlap
                                   (OTAUP_E_REGION) */
    uint32_t scratch_addr;    /**< in place: scratch area (default: the sectors after the slot); A/B: optional,
                                   used only for target sectors larger than the staging buffer */
    uint32_t scratch_size;    /**< default: enough whole sectors for the staging buffer */
    uint32_t ram;             /**< RAM budget for applying (default 65536), see otaup_delta_ram_needed() */
    uint32_t staging_size;    /**< 0: the largest the budget allows (at most 64 KiB) */
    uint8_t window_bits;      /**< 0: the largest (<= 15) the budget allows */
    uint16_t max_ops;         /**< deferred records per step (0: 64) */
    uint32_t restart_interval;/**< compressed bytes between restart points (0: default; 1: every step) */
    int level;                /**< 1..9: zlib deflate level; 10..12: near-optimal parsing at any
                                   window (docs/deflate.md; 10 faster, 12 smallest) (0: 10) */
    int no_step_hash;         /**< 1: STEPs without hashes (not recommended) */
    uint32_t sig_block_size;  /**< --from-sig: taken from the signature */
    otaup_delta_progress_cb progress; /**< optional */
    void *payload;            /**< for progress */
    /** A/B: 1 when target_addr is given even if it is 0 (a flash from
     * address 0 whose slot at 0 receives NEW, e.g. updating from the slot
     * above back into it); 0: target_addr 0 means the default. */
    uint8_t target_given;
} otaup_delta_options;

#define OTAUP_DELTA_OPTIONS_INIT { OTAUP_DELTA_OPTIONS_VERSION }

/** Initialise *opt with defaults. Returns 0 or OTAUP_E_UNSUPPORTED for an unknown version. */
int otaup_delta_options_init(otaup_delta_options *opt, unsigned int version);

/** One record of a planned step (the in-memory plan). */
typedef struct otaup_plan_op {
    uint8_t type;      /**< OTAUP_REC_ERASE, WRITE, COPY, DIFF or FILL */
    uint8_t value;     /**< FILL */
    uint8_t enc;       /**< WRITE/DIFF: OTAUP_ENC_INLINE or DEFERRED */
    uint32_t addr;     /**< target address */
    uint32_t len;
    uint32_t src;      /**< COPY/DIFF: absolute source address */
    uint32_t data_off; /**< WRITE/DIFF: offset of the len bytes in otaup_plan.data */
} otaup_plan_op;

/** One step: a staging window and its records. */
typedef struct otaup_plan_step {
    uint32_t index;
    uint32_t addr;      /**< window start */
    uint32_t len;       /**< window length */
    uint32_t first_op;  /**< records ops[first_op .. first_op+nops) */
    uint32_t nops;
    uint64_t hash;      /**< XXH3-64 of the window after the step */
    uint8_t has_hash;
    uint8_t sync;       /**< a restart point (SYNC) precedes this step */
    uint8_t self_read;  /**< reads a range it erases: the executor goes through scratch */
} otaup_plan_step;

/** Statistics of a plan (what `otaup inspect` shows). */
typedef struct otaup_delta_stats {
    uint32_t steps;
    uint32_t sectors_total;      /**< sectors covering the target image */
    uint32_t sectors_erased;     /**< sectors erased by the plan */
    uint32_t sectors_unchanged;  /**< in place: sectors left untouched */
    uint32_t self_read_steps;    /**< steps the executor stages through scratch */
    uint32_t n_copy, n_diff, n_write, n_fill, n_erase;
    uint64_t copy_bytes, diff_bytes, write_bytes, fill_bytes, erased_bytes; /**< target bytes by kind;
                                                       erased_bytes: left at the erased value */
    uint64_t cycle_edges;        /**< in-place dependencies removed to break cycles */
    uint64_t cycle_cost_bytes;   /**< target bytes re-encoded to break cycles */
    int64_t cycle_cost_patch;    /**< patch bytes that cycle breaking cost (estimate) */
    uint32_t restarts;           /**< SYNC records */
    uint64_t control_bytes;      /**< uncompressed record bytes (not BLOB payload) */
    uint64_t diff_stream_bytes;  /**< uncompressed deferred DIFF bytes */
    uint64_t literal_stream_bytes; /**< uncompressed deferred WRITE bytes */
    uint64_t inner_bytes;        /**< uncompressed inner stream */
    uint64_t body_bytes;         /**< compressed body (outer records) */
    uint64_t delta_bytes;        /**< whole container */
    uint32_t ram_needed;         /**< otaup_delta_ram_needed() of the header */
    int fallback;                /**< 1: the whole delta fell back to literal writes */
} otaup_delta_stats;

/** An in-memory plan (also what otaup_delta_decode() rebuilds from a file). */
typedef struct otaup_plan {
    otaup_delta_header hdr;
    otaup_plan_step *steps;
    uint32_t nsteps;
    otaup_plan_op *ops;
    uint32_t nops;
    uint8_t *data;      /**< WRITE literal and DIFF difference bytes */
    size_t data_len;
    otaup_delta_stats stats;
} otaup_plan;

/** A planned delta: plan + container bytes. */
typedef struct otaup_delta otaup_delta;

/**
 * Plan a delta from OLD to NEW. Give either the old image (old, old_len)
 * or only its block signature (old == NULL, sig != NULL). Returns 0 and
 * *out (free with otaup_delta_free), or OTAUP_E_INVAL (an argument or
 * option out of range), OTAUP_E_UNSUPPORTED (unknown options version),
 * OTAUP_E_GEOMETRY (invalid geometry, an image that does not fit the
 * flash, a target not on a sector boundary), OTAUP_E_REGION (A/B: target
 * sectors that hold bytes of the old image; a scratch area that is not
 * whole sectors of the flash outside the slot, or in A/B both slots),
 * OTAUP_E_SCRATCH (in place: the scratch area cannot hold a sector that
 * several steps write), OTAUP_E_LIMIT (the RAM budget leaves a staging
 * buffer below OTAUP_DELTA_STAGING_MIN or one write unit; A/B: it cannot
 * hold the part of a target sector NEW occupies, and no scratch area
 * holds that sector), OTAUP_E_RANGE,
 * OTAUP_E_NOMEM, OTAUP_E_PLAN (internal check failed: a bug).
 */
int otaup_delta_create(const uint8_t *old, size_t old_len, const otaup_sig *sig,
                       const uint8_t *new_img, size_t new_len,
                       const otaup_delta_options *opt, otaup_delta **out);

/** The container bytes (valid until otaup_delta_free). */
const uint8_t *otaup_delta_bytes(const otaup_delta *d, size_t *len);
/** The plan (valid until otaup_delta_free). */
const otaup_plan *otaup_delta_plan(const otaup_delta *d);
/** Free a planned delta (its bytes and plan). NULL is ignored. */
void otaup_delta_free(otaup_delta *d);

/**
 * Rebuild the plan from a delta file in memory (decompresses every DATA
 * stream, checks every record). Returns 0 and *out (free with
 * otaup_plan_free), or the reader's errors, OTAUP_E_INFLATE,
 * OTAUP_E_DELTA_CORRUPT (inner stream malformed or inconsistent).
 */
int otaup_delta_decode(const uint8_t *in, size_t len, otaup_plan **out);
/** Free a plan from otaup_delta_decode(). NULL is ignored. */
void otaup_plan_free(otaup_plan *p);

/**
 * The plan simulator: execute `plan` step by step on a model of the flash
 * (the geometry of its header) that holds `old` at source_addr, exactly
 * as design.md specifies, and fail on any read of flash that an earlier
 * step erased or programmed, on a program into unerased flash, on a step
 * hash mismatch or a window larger than the staging size. On success the
 * target image (target_size bytes) is written to out[0..out_cap).
 * `reads` (optional) counts the bytes read from flash. Returns 0,
 * OTAUP_E_PLAN (with a message in err[0..err_len) if err is not NULL),
 * OTAUP_E_SOURCE_MISMATCH, OTAUP_E_TARGET_MISMATCH, OTAUP_E_BUFFER.
 */
int otaup_plan_simulate(const otaup_plan *plan, const uint8_t *old, size_t old_len,
                        uint8_t *out, size_t out_cap, uint64_t *reads, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_DELTA_H */
