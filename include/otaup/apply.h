/*
 * otaup — the terminal applier: speaks the protocol (docs/protocol.md),
 * executes the update with the executor (otaup/exec.h), keeps the journal
 * (otaup/journal.h), backs up and restores user-data regions.
 *
 * Integration (docs/porting.md): fill an otaup_apply_config with the
 * flash callbacks and geometry, the regions (slots, scratch, journal,
 * user data, updater), the link callbacks, a clock, the terminal's
 * identity and one work area of otaup_apply_work_size() bytes (or the
 * compile-time OTAUP_APPLY_WORK_SIZE()). Then either
 *   - event-driven: otaup_apply_connect(), then otaup_apply_feed() with
 *     every received byte run and otaup_apply_poll() now and then; or
 *   - blocking: otaup_apply_run(), which calls link.recv with a timeout.
 * Nothing allocates; there is no global state; several appliers may
 * coexist (each with its own flash, link and work area). One applier is
 * used by one thread at a time, and not from inside its own callbacks
 * (flash, link, clock, hooks): feed, poll, run and consent call them.
 *
 * Behaviour on the wire: sequenced frames from the server execute strictly
 * in order, each answered by a cumulative ACK (window 1); a duplicate is
 * answered again without executing it; a gap gets one NACK(OTAUP_E_SEQ),
 * and one more each time the server goes back (docs/protocol.md §4);
 * a refused frame gets NACK(code) and flash is untouched by it. The
 * terminal's own sequenced messages (HELLO, INFO, BACKUP_DATA, RESULT,
 * CONSENT) go one at a time and are retransmitted until acknowledged, at
 * most OTAUP_APPLY_RETRIES times while the server is silent (4 times as
 * many while frames from it keep coming), except BACKUP_DATA: up to the server's
 * window (at most OTAUP_CONFIG_BACKUP_WINDOW) chunks are in flight, rebuilt
 * from flash when they must be resent (go-back-N from the oldest
 * unacknowledged chunk on a timeout or a NACK(OTAUP_E_SEQ)), so the window
 * costs no RAM. During long operations (sector erases, verifies) a
 * PROGRESS frame keeps the link alive.
 *
 * Terminal-side code: C99, no heap, no OS.
 */
#ifndef OTAUP_APPLY_H
#define OTAUP_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/exec.h"
#include "otaup/flash.h"
#include "otaup/image.h"
#include "otaup/journal.h"
#include "otaup/proto.h"
#if OTAUP_CONFIG_SEALED
#include "otaup/sign.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** User-data regions the applier backs up and restores. */
#ifndef OTAUP_APPLY_MAX_REGIONS
#define OTAUP_APPLY_MAX_REGIONS 4
#endif
/** Retransmissions of one frame before the applier gives up on the link
 *  while the server is silent (4 times as many while it is heard from). */
#ifndef OTAUP_APPLY_RETRIES
#define OTAUP_APPLY_RETRIES 8u
#endif
/**
 * Bytes of the outgoing message buffer: the largest INFO the applier
 * writes (three identity strings of 64, 64 and 32 bytes, a geometry of 8
 * sector runs, OTAUP_APPLY_MAX_REGIONS regions and the fixed items: 400
 * bytes with 4 regions, plus 34 for the image's SHA-256 when
 * OTAUP_CONFIG_SIGNATURE); it also bounds a BACKUP_DATA or SIG_DATA chunk.
 */
#define OTAUP_APPLY_TXMSG (348u + 13u * (OTAUP_APPLY_MAX_REGIONS) + 34u * (OTAUP_CONFIG_SIGNATURE))

/** A user-data region. */
typedef struct otaup_apply_region {
    uint8_t id;      /**< as reported in INFO */
    uint8_t flags;   /**< OTAUP_REGION_PERSONAL ... */
    uint32_t addr;   /**< whole sectors */
    uint32_t len;
} otaup_apply_region;

/** Link callbacks (mbedTLS BIO style). */
typedef struct otaup_apply_link {
    void *ctx;
    /** Send all of buf[0..len): returns len, or a negative error. */
    int (*send)(void *ctx, const uint8_t *buf, size_t len);
    /** Blocking receive (otaup_apply_run only): up to cap bytes within
     * timeout_ms; returns the count, 0 on timeout, OTAUP_E_CLOSED or
     * another negative error. May be NULL for event-driven use. */
    int (*recv)(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms);
} otaup_apply_link;

/** The terminal's identity, reported in INFO. */
typedef struct otaup_apply_identity {
    const char *terminal_id; /**< 1..64 bytes of UTF-8 */
    const char *model;       /**< 1..64 bytes */
    const char *sw_version;  /**< 1..32 bytes */
    uint64_t build_time;     /**< unix seconds */
    uint32_t image_size;     /**< bytes of the installed image (0: not reported) */
    uint32_t sec_counter;    /**< security counter of the installed image (anti-rollback) */
    /** SHA-256 of the installed image (32 bytes; NULL: not reported). A
     * terminal that verifies signed updates reports it so that a server
     * can sign a delta it plans from the block signature (INFO
     * IMAGE_SHA256; only with OTAUP_CONFIG_SIGNATURE). The verifier
     * hashes the image itself before any flash operation, so a wrong
     * value only gets the update refused. */
    const uint8_t *image_sha256;
} otaup_apply_identity;

typedef struct otaup_apply_config {
    const otaup_flash *flash;     /**< callbacks and geometry */
    uint8_t layout;               /**< OTAUP_LAYOUT_INPLACE or OTAUP_LAYOUT_AB */
    uint8_t window_bits;          /**< largest inflate window accepted (9..15, 0: no DATA) */
    uint16_t max_ops;             /**< deferred records per step */
    otaup_region slots[2];        /**< in-place: slots[0] is the image; A/B: both */
    otaup_region scratch;         /**< in place: whole sectors, >= staging and >= the largest
                                       sector a step writes in part (porting.md); A/B:
                                       optional (len 0: none), the same rule; one that holds
                                       a whole target sector lets a server plan for a staging
                                       buffer smaller than the target sectors */
    otaup_region journal;         /**< >= 2 sectors */
    otaup_region updater;         /**< never written (this code, the boot stub) */
    otaup_apply_region regions[OTAUP_APPLY_MAX_REGIONS];
    uint8_t nregions;             /**< regions[].flags: OTAUP_REGION_* only */
    uint32_t staging_size;        /**< largest step window */
    uint32_t max_frame;           /**< largest frame received and sent (64..65536) */
    uint32_t max_msg;             /**< largest reassembled message (>= 48): START, i.e. 12 +
                                       the delta's header and sections; a larger START is
                                       NACKed OTAUP_E_FRAGMENT (porting.md, "Memory") */
    otaup_apply_link link;
    /** Milliseconds from any origin, wrapping. */
    uint32_t (*now_ms)(void *ctx);
    void *clock_ctx;
    otaup_apply_identity id;      /**< strings: UTF-8, 1..64 bytes (sw_version 1..32) */
    otaup_exec_hooks hooks;       /**< security hooks (exec.h); with a record hook the
                                       applier advertises OTAUP_CAP_SIGNED */
    /** START's manifest (security.md): non-zero refuses the session. May be NULL. */
    int (*manifest)(void *ctx, uint64_t session, const uint8_t *m, size_t len);
    /** Optional: the id journaled for the session's update, asked after
     * `manifest` accepted it. Signed updates return otaup_sec_delta_id()
     * of the verified manifest, so that a resume continues only that
     * update (security.md 5.1); INFO's resume state then reports the
     * journal's 32-bit session id. NULL: the delta header's check when
     * START's manifest field begins with a delta header (the reference
     * server sends it there), else the session id itself
     * (docs/protocol.md 3.5). */
    uint64_t (*delta_id)(void *ctx, uint64_t session);
    /** NOTIFY text for the user. May be NULL. */
    void (*notify)(void *ctx, const otaup_msg_notify *n);
    void *user_ctx;               /**< for manifest and notify */
    uint32_t retransmit_ms;       /**< resend an unacknowledged frame after this (0: 1000) */
    uint32_t progress_ms;         /**< least time between PROGRESS frames (0: 500) */
    /** Frames advertised in HELLO and ACKs beyond the last acknowledged one
     * (0: 1). A link that buffers whole frames for the applier (a TCP
     * socket, a UART FIFO of that size) may advertise more, so that the
     * server keeps a long link busy; frames still execute one by one. */
    uint16_t window;
    void *work;                   /**< the work area */
    size_t work_size;
#if OTAUP_CONFIG_SEALED
    /** Sealed backups (docs/security.md §7): the terminal's device key, 32
     * bytes that survive every update (OTP, a secure element's export, a
     * flash area outside every update window; it must stay readable while
     * the applier runs), and the crypto interface (otaup/sign.h: SHA-256,
     * AES-256-GCM, and `random` for the per-backup salt; without `random`
     * the salt is derived from the region's content, see security.md).
     * Both set: INFO and HELLO advertise OTAUP_CAP_SEALED, every backup
     * leaves the terminal sealed, the region hashes it reports are keyed,
     * and a RESTORE_DATA it cannot authenticate is refused
     * (OTAUP_E_DECRYPT) before anything of it is written. NULL: plain
     * backups, as without OTAUP_CONFIG_SEALED. With a key, max_frame must
     * hold a sealed chunk: at least 106 + OTAUP_SEAL_CHUNK_MIN + the write
     * size (otaup_apply_init: OTAUP_E_BUFFER). */
    const uint8_t *device_key;
    const struct otaup_crypto *crypto;
#endif
} otaup_apply_config;

/** Work area: frame buffers, reassembly, outgoing message, executor work. */
#define OTAUP_APPLY_WORK_SIZE(max_frame, max_msg, staging, max_ops, wbits) \
    (2u * (max_frame) + (max_msg) + OTAUP_APPLY_TXMSG + 64u + OTAUP_EXEC_WORK_SIZE(staging, max_ops, wbits))

/** Run-time form of OTAUP_APPLY_WORK_SIZE (0 if the parameters are invalid). */
size_t otaup_apply_work_size(uint32_t max_frame, uint32_t max_msg, uint32_t staging, uint32_t max_ops,
                             unsigned wbits);

/** Applier state (plain struct; fields are private). */
typedef struct otaup_apply {
    otaup_apply_config cfg;
    otaup_journal journal;
    otaup_exec exec;
    otaup_region windows[1];
    otaup_region protect[OTAUP_APPLY_MAX_REGIONS + 1];
    otaup_decoder dec;
    otaup_reasm reasm;
    uint8_t *txbuf;        /* the frame being (re)sent */
    uint8_t *txmsg;        /* payload of a message being sent in fragments */
    uint8_t ctl[64];       /* ACK / NACK / PROGRESS */
    /* receive side */
    uint32_t rx_last;      /* last executed seq */
    uint32_t rx_echo;
    uint32_t rx_gap_hi;    /* the last frame seen past a gap (rx_gap_nacked) */
    uint32_t rx_ref_crc;   /* the frame refused last (rx_ref): its CRC, seq and code */
    uint32_t rx_ref_seq;
    int32_t rx_ref_err;
    /* send side: frames tx_pending .. tx_seq - 1 are outstanding, either one
     * frame held in txbuf or a run of backup chunks (tx_bk) */
    uint32_t tx_seq;       /* next seq to use */
    uint32_t tx_pending;   /* oldest unacknowledged seq (tx_seq: none) */
    uint32_t tx_time;      /* last (re)transmission or acknowledgement */
    uint32_t tx_tries;
    size_t txmsg_len, txmsg_off;
    uint16_t peer_window;  /* frames the server accepts beyond its last ACK */
    uint8_t rx_any;        /* rx_last valid */
    uint8_t rx_gap_nacked;
    uint8_t rx_ref;        /* rx_ref_* valid: a copy of that frame gets the same NACK */
    uint8_t tx_what;       /* what to send after the outstanding frames */
    uint8_t tx_type;
    uint8_t connected;
    uint8_t phase;
    uint8_t rx_heard;      /* a frame came in since the last retransmission */
    /* backup stream: chunk k is the region's bytes from bk_start + k * bk_chunk,
     * sent with seq bk_seq0 + k; nothing else is kept to resend it */
    uint8_t tx_bk;         /* the outstanding frames are backup chunks */
    uint8_t bk_region;
    uint16_t bk_chunk;     /* 0: HASH_ONLY */
    uint32_t bk_start;
    uint32_t bk_seq0;
    uint8_t bk_hash[8];    /* XXH3-64 of the region, for the last chunk */
    /* restore */
    uint32_t rs_next;
    uint8_t rs_region;
#if OTAUP_CONFIG_SEALED
    uint8_t bk_sealed;     /* the backup stream is sealed (seal below) */
    uint8_t rs_sealed;     /* the region being restored is opened with seal */
    uint8_t bk_digest[32]; /* keyed digest of the region, for the last chunk */
    otaup_seal seal;       /* the sealed stream being sent or restored */
#endif
    /* session */
    uint8_t session_open;
    uint8_t resumed;
    uint8_t result_valid;
    uint8_t target_known;  /* START carried a delta header without a delta_id hook */
    uint64_t session;
    uint64_t result_session;
    uint32_t target_addr;  /* the header's new image: checked before COMMIT ends the session */
    uint32_t target_len;
    uint8_t target_hash[16]; /* XXH3-128 */
    int32_t result_code;
    uint32_t last_progress;
    int32_t link_error;    /* a link failure to report */
#if OTAUP_CONFIG_SIGNATURE
    /* block signature of the installed image (SIG_REQ) */
    otaup_sig_calc sig;    /* reads through exec.io */
    uint32_t sig_chunk;
#endif
} otaup_apply;

/**
 * Check the configuration, mount the journal and prepare the executor.
 * Returns 0, OTAUP_E_INVAL (a NULL flash, flash callback, link.send or
 * work; max_frame outside 64 .. OTAUP_CONFIG_FRAME_MAX, max_msg below 48,
 * window_bits other than 0 or 9..15, nregions above
 * OTAUP_APPLY_MAX_REGIONS, an unknown layout; also an identity string
 * INFO cannot carry), OTAUP_E_BUFFER (work area smaller than
 * otaup_apply_work_size(); with a device key, frames too small for a
 * sealed chunk), OTAUP_E_GEOMETRY (flash geometry, also a write size above
 * OTAUP_CONFIG_IO_BUFFER, or journal area), OTAUP_E_REGION (a user-data
 * region not whole sectors, empty, with unknown flags or a duplicate id,
 * or overlapping another region, a slot, the journal, the scratch area or
 * the updater; a slot overlapping the other slot, the journal, the
 * scratch area or the updater), OTAUP_E_STAGING, OTAUP_E_SCRATCH
 * (otaup_exec_init), or the flash read error of the journal's mount. The
 * work area needs no alignment.
 */
int otaup_apply_init(otaup_apply *ap, const otaup_apply_config *cfg);

/** A new connection: forget the link state and send HELLO. Returns 0,
 *  OTAUP_E_INVAL or the error of link.send. */
int otaup_apply_connect(otaup_apply *ap);

/**
 * Event-driven input: bytes received from the link, any split. Returns 0,
 * OTAUP_E_INVAL, or the error of a link.send that failed (connect again).
 * Frames it refuses are answered with a NACK, not returned.
 */
int otaup_apply_feed(otaup_apply *ap, const uint8_t *bytes, size_t len);

/**
 * Timers: retransmissions, and a backup stream whose next chunk could not
 * be read or sent (tried again at the same pace). Call every few tens of
 * milliseconds. Returns 0, the error of a resend, or OTAUP_E_RETRIES
 * (disconnected) after OTAUP_APPLY_RETRIES tries without progress while
 * the server is silent, 4 * OTAUP_APPLY_RETRIES while frames from it
 * keep coming. Disconnected, it sends no message of its own until
 * otaup_apply_connect (it still answers frames fed to it): close the
 * link and connect again (docs/porting.md).
 */
int otaup_apply_poll(otaup_apply *ap);

/**
 * Blocking mode: connect, then receive (link.recv) and execute until the
 * session ends with a RESULT that the server acknowledged, the link
 * closes, or `timeout_ms` pass without any byte (counted from the end of
 * the work the last bytes received made it do: a long erase is not the
 * link's silence). Returns the session's result code (0 success),
 * OTAUP_E_CLOSED, OTAUP_E_TIMEOUT or an error.
 */
int otaup_apply_run(otaup_apply *ap, uint32_t timeout_ms);

/** Send the user's decision (CONSENT). OTAUP_E_AGAIN while a frame of the
 *  terminal is unacknowledged or a backup upload is running: call again. */
int otaup_apply_consent(otaup_apply *ap, uint8_t decision, uint16_t postpone_min);

/** Resume state as reported in INFO. */
void otaup_apply_resume_state(const otaup_apply *ap, otaup_proto_resume *out);

/** 1 once a RESULT was sent and acknowledged for the current connection.
 *  The applier's RESULT carries the session and its code only: no image
 *  hash (alg 0) and an empty version, as protocol.md 3.7 allows; the
 *  terminal reports what it runs in its next INFO (after the reset that
 *  boots the new image, porting.md). */
int otaup_apply_done(const otaup_apply *ap);

/** Last session result (valid when otaup_apply_done()). */
int otaup_apply_result(const otaup_apply *ap);

/** The executor and journal, for statistics and tests (read-only views,
 *  valid as long as *ap; NULL for a NULL ap). */
const otaup_exec *otaup_apply_exec(const otaup_apply *ap);
const otaup_journal *otaup_apply_journal(const otaup_apply *ap);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_APPLY_H */
