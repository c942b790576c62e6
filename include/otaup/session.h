/*
 * otaup — the server-side session driver.
 *
 * One otaup_session per connected terminal: a state machine over the
 * whole upgrade flow of docs/server.md —
 *
 *   INFO → software information recorded → policy → notification →
 *   wait for the user's request → backup of the user-data regions →
 *   delta (cache, or planned) → START → transfer (window, retransmission,
 *   resume) → verify → restore (when needed) → commit → backup deleted →
 *   result and audit record.
 *
 * Transport-agnostic and non-blocking: the caller feeds the bytes the
 * terminal sent (otaup_session_feed), takes the bytes to send
 * (otaup_session_read), and calls otaup_session_poll() when
 * otaup_session_deadline() passes. Time is the caller's clock in
 * milliseconds (any monotonic origin). Nothing blocks except registry
 * calls and, when a delta is not in the cache, planning it.
 *
 * Thread-safety: a session is used by one thread at a time. Sessions
 * share nothing but the registry handle and the delta provider given in
 * the options, which must then also be used by that thread only; run one
 * registry handle per thread to spread sessions over threads. No global
 * state.
 *
 * Server side: C11 in the library, this header is C99; allocates.
 */
#ifndef OTAUP_SESSION_H
#define OTAUP_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

/** States of a session (otaup_session_state_name() gives the word). */
typedef enum otaup_session_state {
    OTAUP_SS_HELLO = 0,     /**< waiting for the terminal's INFO */
    OTAUP_SS_IDLE,          /**< nothing to do: up to date, or no release for it */
    OTAUP_SS_WAIT_REQUEST,  /**< notified; waiting for the user's request */
    OTAUP_SS_BACKUP,        /**< receiving the user-data regions */
    OTAUP_SS_PREPARE,       /**< getting the delta */
    OTAUP_SS_START,         /**< START sent, waiting for its acknowledgement */
    OTAUP_SS_TRANSFER,      /**< sending the record stream */
    OTAUP_SS_VERIFY,        /**< waiting for the terminal's result */
    OTAUP_SS_RESTORE,       /**< sending user data back */
    OTAUP_SS_COMMIT,        /**< COMMIT sent, waiting for its acknowledgement */
    OTAUP_SS_DONE,          /**< upgraded; backup deleted */
    OTAUP_SS_FAILED         /**< ended with an error (otaup_session_result) */
} otaup_session_state;

/**
 * Notifier: tell the user that an upgrade is ready. Called once per
 * (terminal, release). Return 0 or a negative error. The default
 * (notifier == NULL) is otaup_registry_notify(): an outbox row, a log
 * line and an audit record.
 */
typedef int (*otaup_session_notify_cb)(otaup_registry *reg, const otaup_reg_terminal *t,
                                       const otaup_reg_release *r, void *payload);

/** Log levels. */
#define OTAUP_LOG_ERROR 0
#define OTAUP_LOG_WARN 1
#define OTAUP_LOG_INFO 2
#define OTAUP_LOG_DEBUG 3

/** Log sink: one structured event (`event` is a short word, `msg` free text). */
typedef void (*otaup_session_log_cb)(int level, const char *terminal, const char *event,
                                     const char *msg, void *payload);

/**
 * Delta provider: the delta container that takes terminal `t` (its image
 * hash, and its planning parameters in t->layout) to release `r`. The
 * default (NULL) is otaup_session_default_delta(): the registry's delta
 * cache, else the planner from the old image when the registry knows it
 * (any release with that hash), else from the terminal's block signature
 * `sig` (NULL until the session asked for one). Returns 0 and fills
 * *delta (malloc'd) and *body_offset (where the outer record stream
 * starts), OTAUP_E_SOURCE_MISMATCH when the source is unknown and no
 * signature was given, or another negative error.
 */
typedef int (*otaup_session_delta_cb)(otaup_registry *reg, const otaup_reg_terminal *t,
                                      const otaup_reg_release *r, const uint8_t *sig, size_t sig_len,
                                      otaup_blob *delta, uint32_t *body_offset, void *payload);

/** The default delta provider (see otaup_session_delta_cb). */
OTAUP_API int otaup_session_default_delta(otaup_registry *reg, const otaup_reg_terminal *t,
                                          const otaup_reg_release *r, const uint8_t *sig,
                                          size_t sig_len, otaup_blob *delta, uint32_t *body_offset,
                                          void *payload);

/**
 * Shared delta cache: the deltas sessions are sending, held once in memory
 * and shared by every session that sends the same (source, target,
 * terminal layout), instead of one copy per session. Entries no session
 * uses are dropped, least recently used first, when the cache holds more
 * than `max_bytes`. Used by one thread (the sessions' thread).
 */
typedef struct otaup_delta_cache otaup_delta_cache;

/** Create a cache (max_bytes 0: 64 MiB). Returns 0, OTAUP_E_NOMEM. */
OTAUP_API int otaup_delta_cache_new(size_t max_bytes, otaup_delta_cache **out);
/** Free the cache; every session using it must be freed first. NULL is fine. */
OTAUP_API void otaup_delta_cache_free(otaup_delta_cache *c);
/** Deltas held, their bytes, lookups answered from memory, and misses. */
OTAUP_API void otaup_delta_cache_stats(const otaup_delta_cache *c, size_t *entries, size_t *bytes,
                                       uint64_t *hits, uint64_t *misses);

/**
 * Compute ahead of time, and store in the registry's delta cache, the
 * deltas to release `release_id` from every source image that terminals
 * of its model are known to run (the seed's "analysis stored ahead of
 * time"), for each of their flash layouts. Returns the number of deltas
 * computed (those already cached are not counted) or a negative error.
 * `log` (may be NULL) reports each one.
 */
OTAUP_API int otaup_session_precompute(otaup_registry *reg, int64_t release_id, otaup_session_log_cb log,
                                       void *payload);

/** A signing key (otaup/sign.h: otaup_key_parse). */
struct otaup_key;

/**
 * Sign, with `key`, the deltas to release `release_id` for every source
 * image and flash layout that terminals of its model are known to run
 * (computing the unsigned ones first, as otaup_session_precompute), and
 * store them in the registry's delta cache next to the unsigned ones.
 * This is publication-time signing (otaupctl release add --sign): the
 * server that sends them never needs the private key. The manifest says:
 * the release's model, version (otaup_version_pack), build time,
 * security counter and downgrade flag; the source and target SHA-256 from
 * the images in the registry (docs/security.md, docs/server.md "Signed
 * releases"). Sources the registry holds no image of (terminals planned
 * from their block signature) are skipped and logged. Returns the number
 * of deltas signed now (those already signed are not counted), or a
 * negative error: OTAUP_E_UNSUPPORTED without mbedTLS, OTAUP_E_KEY
 * without the private part.
 */
OTAUP_API int otaup_session_sign_release(otaup_registry *reg, int64_t release_id, const struct otaup_key *key,
                                         otaup_session_log_cb log, void *payload);

/**
 * Sign one unsigned delta container d[0..len) that takes terminal `t`
 * (its image hash and planning parameters) to release `r`, with the
 * manifest fields of otaup_session_sign_release(). The source image's
 * SHA-256 comes from the registry's release with t's image hash, else
 * from `source_sha256` (the SHA-256 the terminal reported, INFO
 * IMAGE_SHA256; may be NULL). *out (malloc'd) receives the signed delta.
 * Returns 0, OTAUP_E_SOURCE_MISMATCH when the source's SHA-256 is unknown,
 * or otaup_delta_sign()'s errors.
 */
OTAUP_API int otaup_session_sign_delta(otaup_registry *reg, const struct otaup_key *key,
                                       const otaup_reg_terminal *t, const otaup_reg_release *r,
                                       const uint8_t *source_sha256, const uint8_t *d, size_t len,
                                       otaup_blob *out);

#define OTAUP_SESSION_OPTIONS_VERSION 4

typedef struct otaup_session_options {
    unsigned version;               /**< OTAUP_SESSION_OPTIONS_VERSION */
    otaup_registry *reg;            /**< required */
    uint32_t window_frames;         /**< BATCH frames in flight (default 64) */
    uint32_t window_bytes;          /**< bytes in flight (default 256 KiB) */
    uint32_t rto_initial_ms;        /**< first retransmission timeout (default 1000) */
    uint32_t max_retries;           /**< timeouts in a row before giving up (default 10) */
    uint32_t request_poll_ms;       /**< how often to look for the user's request (default 1000) */
    uint32_t idle_timeout_ms;       /**< silence from the terminal that ends the session (default 120000) */
    uint32_t frame_max;             /**< server's own frame limit (default 65536; the terminal's is honoured) */
    int restore_always;             /**< 1: restore user data even when intact */
    int auto_request;               /**< 1: no user request needed (fleet policy) */
    otaup_session_notify_cb notify; /**< NULL: default notifier */
    void *notify_payload;
    otaup_session_delta_cb delta;   /**< NULL: default provider */
    void *delta_payload;
    otaup_session_log_cb log;       /**< NULL: no logging */
    void *log_payload;
    /* version 2 */
    otaup_delta_cache *cache;       /**< NULL: each session holds its own copy of its delta */
    /* version 3 */
    /**
     * Key that signs, on demand, a delta a terminal needs signed
     * (OTAUP_CAP_SIGNED) when none was signed at publication (a terminal
     * or layout seen after it, an image planned from the block
     * signature). NULL: such a session fails with OTAUP_E_UNSIGNED
     * before START, and the audit log says how to sign it. The key then
     * lives on the server: docs/server.md, "Signed releases".
     */
    const struct otaup_key *sign_key;
    /* version 4 */
    /**
     * Ceiling of the retransmission timeout, which doubles at each
     * timeout in a row (default 30000), reached only while the terminal
     * has been silent for that long: while it was heard within the last
     * rto_max_ms, the ceiling is 8 times the timeout without backoff (at
     * least 2 s). Doubling spares a dead or congested link (a TCP
     * connection over a slow cellular network) duplicates it would only
     * queue; on a link that loses frames without being congested (a radio
     * or serial line bridged to the server) a lower ceiling, a few times
     * the round trip, keeps a message lost several times in a row from
     * stalling the session. At least rto_initial_ms.
     */
    uint32_t rto_max_ms;
} otaup_session_options;

#define OTAUP_SESSION_OPTIONS_INIT \
    { OTAUP_SESSION_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0 }

/** Initialise *opts with the defaults. */
OTAUP_API void otaup_session_options_init(otaup_session_options *opts);

typedef struct otaup_session otaup_session;

/** Statistics of a session. */
typedef struct otaup_session_stats {
    uint64_t bytes_in;          /**< bytes fed */
    uint64_t bytes_out;         /**< bytes handed out */
    uint64_t stream_bytes;      /**< record-stream payload bytes to send (after resume) */
    uint64_t stream_sent;       /**< record-stream payload bytes sent, retransmissions included */
    uint32_t frames_out;
    uint32_t retransmits;
    uint32_t timeouts;
    uint32_t srtt_ms;           /**< smoothed round-trip time */
    uint32_t backup_bytes;      /**< user data received */
    uint32_t restore_bytes;     /**< user data sent back */
    uint32_t resumed_from_step; /**< 0, or the step a resumed transfer restarted at */
    uint64_t delta_bytes;       /**< size of the delta container */
    uint32_t image_size;        /**< size of the target image */
    uint32_t frames_in;         /**< valid frames received */
} otaup_session_stats;

/** Create a session for a new connection. Returns 0, OTAUP_E_INVAL, OTAUP_E_UNSUPPORTED, OTAUP_E_NOMEM. */
OTAUP_API int otaup_session_new(const otaup_session_options *opts, otaup_session **out);
/** Free a session (call otaup_session_closed() first to save its state for resume). NULL is ignored. */
OTAUP_API void otaup_session_free(otaup_session *s);

/**
 * Bytes received from the terminal, in any chunking. Returns 0, or a
 * negative error when the session ended (protocol violation, registry
 * failure); damaged frames are not errors (they are answered).
 */
OTAUP_API int otaup_session_feed(otaup_session *s, const uint8_t *in, size_t len, uint64_t now_ms);

/**
 * Bytes to send to the terminal: copies up to cap bytes into out and
 * returns the count (0: nothing to send now). Call until it returns 0.
 */
OTAUP_API int otaup_session_read(otaup_session *s, uint8_t *out, size_t cap, uint64_t now_ms);

/** 1 if otaup_session_read() has bytes. */
OTAUP_API int otaup_session_want_write(const otaup_session *s);

/** Timers (retransmission, request polling, idle timeout). Returns 0 or the error that ended it. */
OTAUP_API int otaup_session_poll(otaup_session *s, uint64_t now_ms);

/** When otaup_session_poll() must be called next (ms, the caller's clock). */
OTAUP_API uint64_t otaup_session_deadline(const otaup_session *s);

/**
 * The link is gone (peer closed, reset, or the server shuts down): the
 * session state is saved so a reconnect resumes; the session is then
 * finished and must be freed.
 */
OTAUP_API void otaup_session_closed(otaup_session *s, uint64_t now_ms);

/** 1 when the session has ended (DONE, FAILED, or IDLE with nothing left to do). */
OTAUP_API int otaup_session_finished(const otaup_session *s);

/** The current state, and its name for logs ("?" for an unknown value). */
OTAUP_API otaup_session_state otaup_session_get_state(const otaup_session *s);
OTAUP_API const char *otaup_session_state_name(otaup_session_state st);
/** 0, or the error that ended the session. */
OTAUP_API int otaup_session_result(const otaup_session *s);
/** The terminal's id once its INFO arrived ("" before). */
OTAUP_API const char *otaup_session_terminal(const otaup_session *s);
/** Statistics of the session so far (retransmissions of both streams included). */
OTAUP_API void otaup_session_get_stats(const otaup_session *s, otaup_session_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_SESSION_H */
