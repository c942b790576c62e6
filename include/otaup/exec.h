/*
 * otaup — the executor: runs an update's record stream against flash.
 *
 * The executor is the part of the terminal applier that touches flash.
 * It consumes the OUTER record stream (from a delta file or from the
 * link), inflates DATA records (raw deflate, memory from the caller's work
 * area), parses the INNER record stream, stages each step in RAM, checks
 * it, and only then changes flash: deferred erases, programs, read-back,
 * journal (docs/design.md "Steps"). It decides by itself when a step must
 * go through the scratch area, and after a reset it finds from the journal
 * where it stood: steps already done are replayed (parsed, not executed),
 * the interrupted one is redone from intact inputs.
 *
 * Power safety, step by step (docs/porting.md "Behaviour under power
 * loss"): every sector a step touches is reconciled against the staged
 * content — already right: nothing to do; erased where the step writes:
 * program; anything else: erase and program, or, for a sector that also
 * holds data the step does not rewrite, rebuild it through the scratch
 * area (new content to scratch, journal, erase, copy back). Units that
 * read as the erased value are never programmed.
 *
 * Refusals, each before any flash change of the step: target outside the
 * writable windows (OTAUP_E_WINDOW), overlapping the journal, scratch,
 * updater or another protected region (OTAUP_E_PROTECTED), misaligned
 * window or erase (OTAUP_E_ALIGN), a window larger than the staging
 * buffer (OTAUP_E_STAGING), a staged window that fails its hash
 * (OTAUP_E_HASH), a step that could not be made power-safe with the
 * scratch area configured (OTAUP_E_SCRATCH; e.g. a window straddling two
 * sectors that both keep data outside it: two rebuilds, one scratch
 * image), a security hook's veto.
 *
 * Terminal-side code: C99, no heap, no OS. Several executors may exist;
 * each is used by one thread at a time and not from inside its own flash
 * callbacks or hooks.
 */
#ifndef OTAUP_EXEC_H
#define OTAUP_EXEC_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"
#include "otaup/journal.h"
#include "otaup/record.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An address range [addr, addr+len). */
typedef struct otaup_region {
    uint32_t addr;
    uint32_t len;
} otaup_region;

/** Erase records one step may carry (contiguous ones are merged). */
#ifndef OTAUP_CONFIG_STEP_ERASES_MAX
#define OTAUP_CONFIG_STEP_ERASES_MAX 8u
#endif
/** Distinct COPY/DIFF source ranges tracked per step (more are merged). */
#ifndef OTAUP_CONFIG_STEP_SOURCES_MAX
#define OTAUP_CONFIG_STEP_SOURCES_MAX 8u
#endif
/** Bytes of the I/O bounce buffer (flash reads, reconcile); >= write_size.
 *  It sizes a member of otaup_exec: define it alike for the library and
 *  every file that includes this header (OTAUP_CONFIG_FILE). Default: 128
 *  in a terminal-only build, 4096 (the largest write size a geometry may
 *  declare) in a host build, whose tools model any flash. */
#ifndef OTAUP_CONFIG_IO_BUFFER
#if OTAUP_TERMINAL_ONLY_BUILD
#define OTAUP_CONFIG_IO_BUFFER 128u
#else
#define OTAUP_CONFIG_IO_BUFFER 4096u
#endif
#endif
/** Bytes of the inflate output buffer. */
#ifndef OTAUP_CONFIG_INFLATE_OUT
#define OTAUP_CONFIG_INFLATE_OUT 64u
#endif

/** Upper bound of zlib 1.2.x's struct inflate_state (7120 bytes on a
 * 32-bit Cortex-M, 7160 on x86-64). */
#define OTAUP_INFLATE_STATE_BYTES (7120u + 10u * (unsigned)sizeof(void *))
/** Bytes of the inflate arena for `wbits` (9..15), 0 for no DATA: the
 * state, the window and the z_stream (14 pointer-sized words), 8-aligned. */
#define OTAUP_INFLATE_ARENA(wbits) \
    ((wbits) ? OTAUP_INFLATE_STATE_BYTES + (1u << (wbits)) + 16u * (unsigned)sizeof(void *) + 16u : 0u)
/** Bytes of one deferred-record table entry. */
#define OTAUP_EXEC_DEFERRED_ENTRY 12u
/**
 * Bytes of the work area an executor needs: staging buffer of `staging`
 * bytes, a table of `max_ops` deferred records per step and the inflate
 * arena for window bits `wbits` (0 when the stream carries no DATA).
 * Compile-time form of otaup_exec_work_size().
 */
#define OTAUP_EXEC_WORK_SIZE(staging, max_ops, wbits)                                       \
    (64u + (((staging) + 7u) & ~7u) + (max_ops) * OTAUP_EXEC_DEFERRED_ENTRY + 8u + \
     OTAUP_INFLATE_ARENA(wbits))

/** Run-time form of OTAUP_EXEC_WORK_SIZE (0 on overflow or bad wbits). */
size_t otaup_exec_work_size(uint32_t staging, uint32_t max_ops, unsigned wbits);

/* ---- security hooks ----------------------------------------------------- */

/** `part` flags of the record hooks: a record body may come in pieces. */
#define OTAUP_PART_FIRST 0x01u /**< first piece of this record's body */
#define OTAUP_PART_LAST 0x02u  /**< last piece of this record's body */

/** What step_commit sees: the step about to change flash. */
typedef struct otaup_exec_step {
    uint32_t index;
    uint32_t addr;             /**< staging window */
    uint32_t len;
    const uint8_t *staged;     /**< the window's new content (len bytes) */
    uint64_t hash;             /**< XXH3-64 of staged */
    const otaup_region *erases;/**< the step's deferred erases */
    uint32_t nerases;
} otaup_exec_step;

/**
 * Optional callbacks for the security layer (all may be NULL). A non-zero
 * return stops the executor with that value (use a negative otaup_error,
 * e.g. OTAUP_E_CHAIN); flash is not touched by the refused step.
 *  - record:      every OUTER record as received, body in pieces (DATA
 *                 bodies may be cut differently by different transports:
 *                 hash the bytes, never rely on the cuts);
 *  - inner_record:every INNER record (decompressed), body in pieces; also
 *                 called while replaying (otaup_exec_replaying() tells);
 *  - step_commit: after the staging hash check, before any flash change
 *                 of the step;
 *  - final:       before the commit (A/B switch, session end).
 * Record types 0x2B..0x2E are reserved for the security layer (0x2F is the
 * protocol's BATCH message type): with the
 * matching record hook installed they are passed to it and otherwise
 * ignored; without one they are OTAUP_E_MSG_TYPE.
 */
typedef struct otaup_exec_hooks {
    void *ctx;
    int (*record)(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part);
    int (*inner_record)(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part);
    int (*step_commit)(void *ctx, const otaup_exec_step *step);
    int (*final)(void *ctx);
} otaup_exec_hooks;

/* ---- configuration -------------------------------------------------------- */

typedef struct otaup_exec_config {
    const otaup_flash *flash;
    otaup_journal *journal;      /**< mounted; its area is protected */
    uint8_t layout;              /**< OTAUP_LAYOUT_INPLACE or OTAUP_LAYOUT_AB */
    uint8_t window_bits;         /**< inflate window bits 9..15; 0: no DATA */
    uint16_t reserved;
    const otaup_region *windows; /**< writable windows (steps, ERASE) */
    uint32_t nwindows;
    const otaup_region *protect; /**< never written: updater, user data, ... */
    uint32_t nprotect;
    otaup_region scratch;        /**< scratch area (whole sectors), len 0: none */
    /** In-place: the running image; the first change inside it is the
     * point of no return (journaled before). len 0: none (A/B). */
    otaup_region running;
    void *work;                  /**< work area (see OTAUP_EXEC_WORK_SIZE) */
    size_t work_size;
    uint32_t staging_size;       /**< largest step window */
    uint32_t max_ops;            /**< deferred WRITE/DIFF records per step */
    otaup_exec_hooks hooks;
    /** Called between sector erases and long operations so the caller can
     * service its link (PING, PROGRESS). `done`/`total` are bytes of the
     * current operation. Non-zero return aborts with that value. May be NULL. */
    int (*progress)(void *ctx, uint32_t done, uint32_t total);
    void *progress_ctx;
} otaup_exec_config;

/** Counters for reports and tests. */
typedef struct otaup_exec_stats {
    uint32_t steps_done;        /**< steps executed and journaled */
    uint32_t steps_replayed;    /**< steps parsed without executing */
    uint32_t steps_skipped;     /**< executed steps whose flash was already right */
    uint32_t scratch_windows;   /**< steps that went through scratch */
    uint32_t sector_rebuilds;   /**< sectors rebuilt through scratch */
    uint32_t sectors_erased;
    uint32_t bytes_programmed;
    uint32_t verifies;          /**< VERIFY records checked */
    uint32_t verifies_skipped;  /**< VERIFY records skipped (replay, unknown state) */
} otaup_exec_stats;

/* Internal parts of the executor (fields are private). */
typedef struct otaup_exec_deferred {
    uint32_t off;   /* offset in the window */
    uint32_t len;
    uint8_t type;   /* OTAUP_REC_WRITE or OTAUP_REC_DIFF */
} otaup_exec_deferred;

/** Executor state. Plain struct, no heap; fields are private. */
typedef struct otaup_exec {
    otaup_exec_config cfg;
    otaup_exec_stats stats;
    /* work area carve-up */
    uint8_t *staging;
    otaup_exec_deferred *deferred;
    uint8_t *arena;
    size_t arena_size, arena_used;
    void *zs;                    /* z_stream inside the arena */
    /* stream position */
    uint32_t expected;           /* index of the next STEP in the stream */
    uint32_t jnext;              /* journal's next step at (re)start */
    uint8_t started;             /* a session is open */
    uint8_t in_step;
    uint8_t replay;              /* current step is replayed */
    uint8_t from_scratch;        /* current step's window comes from scratch */
    uint8_t dirty_unknown;       /* flash state between steps not known */
    uint8_t inflating;           /* inflate initialised */
    uint8_t zend;                /* inflate stream ended */
    uint8_t need_reset;          /* after SYNC: next DATA must RESET */
    uint8_t verify_failed;
    uint8_t finished;
    uint8_t step_flags;
    uint8_t pad;
    /* current step */
    uint32_t s_index, s_addr, s_len;
    uint8_t s_hash[8];
    uint32_t ndeferred, ndiff, blob_entry, blob_off;
    uint8_t blob_started;
    uint8_t cur_type;            /* inner record in progress with bytes */
    uint8_t cur_enc;
    uint32_t cur_off, cur_left;  /* INLINE WRITE/DIFF target cursor; PIECE: literals to come */
    uint32_t ct, cs;             /* compact records: target and source cursors */
    otaup_sparse sp;             /* PIECE: its sparse differences */
    otaup_region erases[OTAUP_CONFIG_STEP_ERASES_MAX];
    uint32_t nerases;
    otaup_region sources[OTAUP_CONFIG_STEP_SOURCES_MAX];
    uint32_t nsources;
    uint32_t src_w_mask, src_r_mask; /* per window sector: sources in window part / rest */
    /* opaque (reserved-type) record skipping: [type][len varint][body] */
    uint8_t op_hdr[2][6];
    uint8_t op_hlen[2];          /* 0: none; header bytes collected */
    uint8_t op_body[2];          /* 1: in the body */
    uint8_t op_first[2];
    uint32_t op_left[2];
    /* parsers */
    otaup_recparser outer;
    otaup_recparser inner;
    uint8_t outer_data;          /* outer record in progress is DATA */
    /* plan of the step being committed */
    uint8_t p_scratch, p_rebuild, p_running, p_conflict;
    uint32_t scr_off;            /* window offset inside the scratch image */
    uint32_t p_rebuild_max, p_changes;
    uint8_t io[OTAUP_CONFIG_IO_BUFFER];
    uint8_t zout[OTAUP_CONFIG_INFLATE_OUT];
} otaup_exec;

/**
 * Check the configuration and carve the work area (any alignment: the
 * parts are aligned inside it). Reads the journal's
 * state (the journal must be mounted: OTAUP_E_JOURNAL otherwise). Returns
 * 0, OTAUP_E_INVAL (NULL flash, callback, journal or work; an unknown
 * layout; window_bits other than 0 or 9..15), OTAUP_E_BUFFER (work area
 * too small), OTAUP_E_GEOMETRY
 * (also a write size above OTAUP_CONFIG_IO_BUFFER), OTAUP_E_STAGING
 * (staging size 0, not a multiple of the write size, or smaller than the
 * executor's hash state, a few hundred bytes: the planner never plans
 * below OTAUP_DELTA_STAGING_MIN), OTAUP_E_SCRATCH
 * (scratch smaller than the staging buffer, not whole sectors, or
 * overlapping the journal), OTAUP_E_REGION (a window overlaps the journal
 * or scratch).
 */
int otaup_exec_init(otaup_exec *ex, const otaup_exec_config *cfg);

/**
 * Check an update's declared needs (from the delta header) before it
 * starts: OTAUP_E_STAGING, OTAUP_E_LIMIT (max_ops), OTAUP_E_UNSUPPORTED
 * (window bits above the configured ones).
 */
int otaup_exec_check_limits(const otaup_exec *ex, uint32_t staging, uint32_t max_ops, unsigned wbits);

/**
 * Open the session `session_id` for the update identified by `delta_id`
 * (target slot for A/B). `delta_id` must be the same at every attempt of
 * one update and differ between updates: a signed update's
 * otaup_sec_delta_id(); for an unsigned delta file the protocol applier
 * takes the header's check, its last 8 bytes (docs/protocol.md 3.5). If
 * the journal shows this same update active, it resumes: returns 1 and
 * otaup_exec_next_step() is where the reader
 * must restart (at the last SYNC at or before it). If the journal shows
 * this update ended complete under the same session id, it returns 2
 * (nothing to do). Otherwise it journals a new session and returns 0.
 * OTAUP_E_SESSION: another update is active
 * and must be finished first: past its point of no return (in place), or
 * in the middle of restoring a user-data region (the journal's restore
 * state BUSY: the region holds neither the user's data nor the backup).
 */
int otaup_exec_start(otaup_exec *ex, uint32_t session_id, uint64_t delta_id, uint8_t target_slot);

/**
 * Tell the executor how many steps the update has (the delta header's
 * step_count), when known. After a reset a VERIFY is normally skipped until
 * a step completes, because the interrupted step may have touched its
 * range; when every step is already done there is no such step and the
 * VERIFY runs.
 */
void otaup_exec_set_step_count(otaup_exec *ex, uint32_t count);

/** First step not yet done (the resume point). */
uint32_t otaup_exec_next_step(const otaup_exec *ex);

/** Feed bytes of the OUTER record stream, any split. Returns 0 or an error. */
int otaup_exec_feed(otaup_exec *ex, const uint8_t *bytes, size_t len);

/**
 * Execute one OUTER record given as its type and raw body (e.g. the
 * payload of a single-operation protocol message). Same as feeding
 * [type][length][body]; reserved types 0x2B..0x2E go to the record hook.
 * OTAUP_E_STATE if fed bytes stopped inside a record.
 */
int otaup_exec_body(otaup_exec *ex, uint8_t type, const uint8_t *body, size_t len);

/**
 * The stream is complete: checks that it ended between records and steps
 * and that no VERIFY failed, calls the final hook, switches the boot slot
 * (A/B) and journals the end of the session. Returns 0 or an error.
 */
int otaup_exec_finish(otaup_exec *ex);

/**
 * Abandon the session with `reason` (negative). Refused with
 * OTAUP_E_STATE past the point of no return of an in-place update, and
 * while a user-data region is being restored (journal restore BUSY), in
 * either layout: the session stays active for the resume.
 */
int otaup_exec_abort(otaup_exec *ex, int reason);

/** 1 when the outer stream stands between records (BATCH flag checks). */
int otaup_exec_idle(const otaup_exec *ex);

/**
 * Hash flash [addr, addr+len) with `alg` (OTAUP_HASH_XXH3_64 or _128) into
 * out (8 or 16 bytes, little-endian as in VERIFY). Uses the staging buffer:
 * only between steps. Returns the hash length or an error (OTAUP_E_STATE
 * inside a step, OTAUP_E_UNSUPPORTED, OTAUP_E_RANGE for a range outside
 * the flash map and OTAUP_E_PROTECTED for one touching the journal or the
 * scratch area, as for a VERIFY, before any read; a flash error).
 */
int otaup_exec_hash_range(otaup_exec *ex, uint32_t addr, uint32_t len, uint8_t alg, uint8_t *out);

/** 1 while the current step is being replayed (for the inner_record hook). */
int otaup_exec_replaying(const otaup_exec *ex);

/** Counters. */
const otaup_exec_stats *otaup_exec_get_stats(const otaup_exec *ex);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_EXEC_H */
