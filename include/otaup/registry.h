/*
 * otaup — the registry: the server's "user database".
 *
 * A storage interface (an ops table) that the session driver, the daemon
 * and the operator tool use for everything they remember: terminals and
 * their software information, releases, the delta cache, encrypted
 * backups of the users' data, the notification outbox, the users'
 * upgrade requests, session state for resume, and the audit log.
 *
 * The embedded default backend is SQLite (otaup_registry_sqlite_open());
 * another database plugs in through otaup_registry_new() with its own
 * otaup_registry_ops. Backups are encrypted by this layer before they
 * reach a backend (AES-256-GCM under a per-terminal key that is itself
 * wrapped by the server's master key), so no backend ever sees personal
 * data in clear. See docs/server.md.
 *
 * Server side: C11 in the library, this header is C99. Functions return 0
 * (or a count where stated) or a negative otaup_error. Memory returned to
 * the caller (otaup_blob) is freed with otaup_blob_free().
 *
 * Thread-safety: a registry handle is used by one thread at a time.
 * Several handles (threads or processes) may open the same SQLite file;
 * writers wait for each other (busy timeout) and never corrupt it.
 */
#ifndef OTAUP_REGISTRY_H
#define OTAUP_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits and small types ------------------------------------------ */

#define OTAUP_REG_ID_MAX 64      /**< terminal id, model: at most 63 chars + NUL */
#define OTAUP_REG_VERSION_MAX 32 /**< version string: at most 31 chars + NUL */
#define OTAUP_REG_STATE_MAX 24   /**< state / status names */
#define OTAUP_REG_HASH_LEN 16    /**< image hashes: XXH3-128 (low64 LE, high64 LE) */
#define OTAUP_REG_KEY_LEN 32     /**< AES-256 keys */
#define OTAUP_REG_LAYOUT_MAX 256 /**< encoded planning parameters (geometry, layout, limits) */

/** Bytes allocated by the library; free with otaup_blob_free(). */
typedef struct otaup_blob {
    uint8_t *data;
    size_t len;
} otaup_blob;

/** Free the bytes of *b (if any) and zero it. Safe on a zeroed blob. */
OTAUP_API void otaup_blob_free(otaup_blob *b);

/* ---- records ------------------------------------------------------------ */

/**
 * A terminal and its software information as it last reported it.
 * `status` is a short word kept by the session driver: "new",
 * "up-to-date", "upgrade-due", "notified", "requested", "upgrading",
 * "upgraded", "failed".
 */
typedef struct otaup_reg_terminal {
    char id[OTAUP_REG_ID_MAX];
    char model[OTAUP_REG_ID_MAX];
    char version[OTAUP_REG_VERSION_MAX];
    int64_t build_time;                   /**< seconds since the epoch (the compile time) */
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint32_t image_size;
    char status[OTAUP_REG_STATE_MAX];
    /** The terminal's planning parameters (flash geometry, layout, limits)
     *  in the session driver's encoding, so deltas can be computed for it
     *  ahead of time when a release is published. */
    uint8_t layout[OTAUP_REG_LAYOUT_MAX];
    uint32_t layout_len;
    int64_t first_seen;                   /**< ms since the epoch; 0 = now */
    int64_t last_seen;                    /**< ms since the epoch; 0 = now */
} otaup_reg_terminal;

/** A published release: the image a model's terminals are upgraded to. */
typedef struct otaup_reg_release {
    int64_t id;                           /**< assigned by release_add */
    char model[OTAUP_REG_ID_MAX];
    char version[OTAUP_REG_VERSION_MAX];
    int64_t build_time;
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint32_t image_size;
    uint32_t security_counter;            /**< monotonic anti-rollback counter */
    int allow_downgrade;                  /**< 1: may replace a newer version */
    int64_t created;                      /**< ms since the epoch; 0 = now */
    /** ms since the epoch when the release was withdrawn (no longer offered
     *  by the policy; sessions already started to it still finish); 0 =
     *  offered. Ignored by release_add (a new release is offered). */
    int64_t withdrawn;
} otaup_reg_release;

/** Key of a cached delta: source and target image, and the target layout. */
typedef struct otaup_reg_delta_key {
    uint8_t src_hash[OTAUP_REG_HASH_LEN];
    uint8_t dst_hash[OTAUP_REG_HASH_LEN];
    uint8_t layout[OTAUP_REG_LAYOUT_MAX]; /**< geometry + layout + limits, caller's encoding */
    uint32_t layout_len;
} otaup_reg_delta_key;

/** A user-data region's backup, as stored (ciphertext only). */
typedef struct otaup_reg_backup {
    char terminal[OTAUP_REG_ID_MAX];
    uint32_t region;                      /**< region index on the terminal */
    uint32_t session_id;
    uint32_t addr;                        /**< region address and length on the terminal */
    uint32_t len;                         /**< bytes stored: the region's plaintext, or the sealed
                                               stream of a terminal that seals its backups (longer
                                               than the region: security.md §7) */
    uint8_t hash[8];                      /**< XXH3-64 LE of the plaintext, as the terminal reported;
                                               for a sealed backup the first 8 bytes of the
                                               terminal's keyed digest */
    int64_t created;
} otaup_reg_backup;

/** A notification waiting to be delivered (or delivered: sent != 0). */
typedef struct otaup_reg_notice {
    int64_t id;
    char terminal[OTAUP_REG_ID_MAX];
    int64_t release_id;
    char channel[16];                     /**< "sms" by default */
    char text[256];
    int64_t created;
    int64_t sent;                         /**< ms since the epoch it was delivered; 0 = not yet;
                                               negative: dropped undelivered at -sent, out of
                                               date (otaup_registry_notice_check) */
} otaup_reg_notice;

/** A user's request (consent) for an upgrade. */
typedef struct otaup_reg_request {
    char terminal[OTAUP_REG_ID_MAX];
    int64_t release_id;                   /**< 0: whatever the policy picks */
    char source[16];                      /**< "ctl", "terminal", ... */
    int64_t created;
} otaup_reg_request;

/** Session state kept for resume after a disconnect or a server restart. */
typedef struct otaup_reg_session {
    char terminal[OTAUP_REG_ID_MAX];
    uint32_t session_id;
    int64_t release_id;
    char state[OTAUP_REG_STATE_MAX];      /**< the driver's state name */
    uint32_t next_step;                   /**< terminal's resume point as last known */
    uint32_t steps_total;
    uint64_t bytes_sent;                  /**< record-stream bytes put on the link over all the session's
                                               connections (retransmissions and resends after a resume included) */
    uint64_t bytes_total;                 /**< size of the whole record stream (from step 0) */
    uint32_t retransmits;                 /**< over all the session's connections */
    uint32_t regions;                     /**< user-data regions backed up */
    int32_t result;                       /**< 0, or the error that ended it */
    int64_t started;
    int64_t updated;
} otaup_reg_session;

/** An audit log entry. */
typedef struct otaup_reg_audit {
    int64_t id;
    int64_t time;                         /**< ms since the epoch; 0 = now */
    char terminal[OTAUP_REG_ID_MAX];
    char event[32];                       /**< e.g. "info", "backup-deleted" */
    char detail[256];
} otaup_reg_audit;

/* ---- the backend interface -------------------------------------------- */

/** Listing callbacks return 0 to continue, non-zero to stop (passed back). */
typedef int (*otaup_reg_terminal_cb)(const otaup_reg_terminal *t, void *payload);
typedef int (*otaup_reg_release_cb)(const otaup_reg_release *r, void *payload);
typedef int (*otaup_reg_notice_cb)(const otaup_reg_notice *n, void *payload);
typedef int (*otaup_reg_audit_cb)(const otaup_reg_audit *a, void *payload);
typedef int (*otaup_reg_backup_cb)(const otaup_reg_backup *b, void *payload);
typedef int (*otaup_reg_session_cb)(const otaup_reg_session *s, void *payload);

/**
 * Version 2 added release_set_withdrawn and otaup_reg_release.withdrawn;
 * otaup_registry_new() refuses tables of another version (a backend
 * written for version 1 is rebuilt against this header: the new member
 * is last, so positional initialisers still compile).
 */
#define OTAUP_REGISTRY_OPS_VERSION 2

/**
 * What a backend provides. Every function receives the backend's `ctx`
 * first. "get" functions return OTAUP_E_NOT_FOUND when there is nothing.
 * Blobs returned through otaup_blob are allocated with malloc().
 */
typedef struct otaup_registry_ops {
    unsigned version; /**< OTAUP_REGISTRY_OPS_VERSION */
    void (*close)(void *ctx);
    /** The last error's message, for logs (may be NULL). */
    const char *(*errmsg)(void *ctx);

    int (*terminal_put)(void *ctx, const otaup_reg_terminal *t);
    int (*terminal_get)(void *ctx, const char *id, otaup_reg_terminal *out);
    int (*terminal_list)(void *ctx, otaup_reg_terminal_cb cb, void *payload);
    int (*terminal_set_status)(void *ctx, const char *id, const char *status);
    /** The terminal's wrapped backup key (absent: OTAUP_E_NOT_FOUND). */
    int (*terminal_key_get)(void *ctx, const char *id, otaup_blob *wrapped);
    /** Set (wrapped != NULL) or destroy (NULL) the terminal's wrapped key. */
    int (*terminal_key_put)(void *ctx, const char *id, const uint8_t *wrapped, size_t len);

    /** Insert; sets r->id. OTAUP_E_EXISTS for the same model+version+build time. */
    int (*release_add)(void *ctx, otaup_reg_release *r, const uint8_t *image, size_t len);
    int (*release_get)(void *ctx, int64_t id, otaup_reg_release *out, otaup_blob *image);
    int (*release_list)(void *ctx, const char *model, otaup_reg_release_cb cb, void *payload);
    /** Find a release by its image hash (any model): the "known images". */
    int (*release_by_hash)(void *ctx, const uint8_t hash[OTAUP_REG_HASH_LEN],
                           otaup_reg_release *out, otaup_blob *image);

    int (*delta_get)(void *ctx, const otaup_reg_delta_key *k, otaup_blob *delta);
    int (*delta_put)(void *ctx, const otaup_reg_delta_key *k, const uint8_t *delta, size_t len);

    int (*backup_put)(void *ctx, const otaup_reg_backup *b, const uint8_t *sealed, size_t len);
    int (*backup_get)(void *ctx, const char *terminal, uint32_t region, otaup_reg_backup *out,
                      otaup_blob *sealed);
    int (*backup_list)(void *ctx, const char *terminal, otaup_reg_backup_cb cb, void *payload);
    /** Delete irreversibly every backup of the terminal. Returns the count. */
    int (*backup_delete)(void *ctx, const char *terminal);

    int (*notice_add)(void *ctx, otaup_reg_notice *n);
    /** List notices; only_unsent=1 for those not delivered yet (sent == 0: not those
     *  dropped); terminal NULL = all. */
    int (*notice_list)(void *ctx, const char *terminal, int only_unsent, otaup_reg_notice_cb cb,
                       void *payload);
    /** Set `sent` to when (0: now); a negative when (a notice dropped) is stored as given. */
    int (*notice_mark_sent)(void *ctx, int64_t id, int64_t when);

    int (*request_put)(void *ctx, const otaup_reg_request *r);
    int (*request_get)(void *ctx, const char *terminal, otaup_reg_request *out);
    int (*request_delete)(void *ctx, const char *terminal);

    int (*session_put)(void *ctx, const otaup_reg_session *s);
    int (*session_get)(void *ctx, const char *terminal, otaup_reg_session *out);
    int (*session_delete)(void *ctx, const char *terminal);

    int (*audit_add)(void *ctx, const otaup_reg_audit *a);
    /** Newest last; terminal NULL = all; limit 0 = no limit (the newest `limit`). */
    int (*audit_list)(void *ctx, const char *terminal, unsigned limit, otaup_reg_audit_cb cb,
                      void *payload);

    /* ---- version 2 ---- */
    /** Mark release `id` withdrawn at `when` (ms since the epoch, > 0) or
     *  offered again (when = 0). OTAUP_E_NOT_FOUND for no such release.
     *  release_get, release_list and release_by_hash report the mark. */
    int (*release_set_withdrawn)(void *ctx, int64_t id, int64_t when);
} otaup_registry_ops;

/* ---- the registry handle ---------------------------------------------- */

typedef struct otaup_registry otaup_registry;

#define OTAUP_REGISTRY_OPTIONS_VERSION 1

/** Options for opening a registry. Zeroed fields take defaults. */
typedef struct otaup_registry_options {
    unsigned version;                    /**< OTAUP_REGISTRY_OPTIONS_VERSION */
    /** Master key that wraps the per-terminal backup keys. Without one,
     *  backups are refused (OTAUP_E_KEY). */
    const uint8_t *master_key;           /**< OTAUP_REG_KEY_LEN bytes, or NULL */
    unsigned busy_timeout_ms;            /**< SQLite: wait for other writers; default 5000 (in full once
                                              per lock held elsewhere: docs/server.md, "SQLite backend") */
    int read_only;                       /**< 1: open for reading only (no migration) */
    /** Where open copies the reason of a failure (may be NULL). */
    char *errbuf;
    size_t errbuf_len;
} otaup_registry_options;

#define OTAUP_REGISTRY_OPTIONS_INIT { OTAUP_REGISTRY_OPTIONS_VERSION, NULL, 0, 0, NULL, 0 }

/** Initialise *opts to the defaults. */
OTAUP_API void otaup_registry_options_init(otaup_registry_options *opts);

/**
 * Wrap a backend: the registry calls `ops` with `ctx` and calls
 * ops->close(ctx) from otaup_registry_free(). `ops` is not copied: it
 * must stay valid until then (a static table). Returns 0 and *out, or
 * OTAUP_E_INVAL / OTAUP_E_UNSUPPORTED (ops version) / OTAUP_E_NOMEM.
 */
OTAUP_API int otaup_registry_new(const otaup_registry_ops *ops, void *ctx,
                                 const otaup_registry_options *opts, otaup_registry **out);

/**
 * Open (creating and migrating if needed) the SQLite registry at `path`.
 * Returns OTAUP_E_UNSUPPORTED when the library was built without SQLite,
 * OTAUP_E_DB_SCHEMA when the file has a newer or damaged schema,
 * OTAUP_E_DB on other database errors.
 */
OTAUP_API int otaup_registry_sqlite_open(const char *path, const otaup_registry_options *opts,
                                         otaup_registry **out);

/** Close the registry and free it. NULL is ignored. */
OTAUP_API void otaup_registry_free(otaup_registry *reg);

/** The backend's ops and ctx (for calls this API does not wrap). */
OTAUP_API const otaup_registry_ops *otaup_registry_backend(const otaup_registry *reg, void **ctx);

/** The last backend error message, for logs (never NULL). */
OTAUP_API const char *otaup_registry_errmsg(const otaup_registry *reg);

/* ---- master key file --------------------------------------------------- */

/**
 * Load the 32-byte master key from `path` (64 hex characters, optionally
 * followed by a newline). With create=1, a missing file is created with a
 * fresh random key, mode 0600. Returns 0, OTAUP_E_IO, OTAUP_E_KEY
 * (malformed, or readable by others than its owner).
 */
OTAUP_API int otaup_registry_keyfile(const char *path, int create, uint8_t key[OTAUP_REG_KEY_LEN]);

/* ---- wrapped calls ----------------------------------------------------- */

/*
 * Each checks its arguments (OTAUP_E_INVAL; OTAUP_E_UNSUPPORTED when the
 * backend lacks the operation) and calls the otaup_registry_ops entry of
 * the same name: "get" functions return OTAUP_E_NOT_FOUND when there is
 * nothing, "list" functions call cb per record until it returns non-zero.
 */

OTAUP_API int otaup_registry_terminal_put(otaup_registry *reg, const otaup_reg_terminal *t);
OTAUP_API int otaup_registry_terminal_get(otaup_registry *reg, const char *id, otaup_reg_terminal *out);
OTAUP_API int otaup_registry_terminal_list(otaup_registry *reg, otaup_reg_terminal_cb cb, void *payload);
OTAUP_API int otaup_registry_terminal_set_status(otaup_registry *reg, const char *id, const char *status);

/**
 * Publish a release. `r->image_hash` and `r->image_size` are computed here
 * from the image (XXH3-128); r->id is set; r->withdrawn is cleared.
 * OTAUP_E_EXISTS if the same model, version and build time are already
 * published; OTAUP_E_SAME_IMAGE if the same image is already published for
 * the model (under another version or build time, withdrawn or not).
 * Equivalent to otaup_registry_release_publish(reg, r, image, len, 0, NULL).
 */
OTAUP_API int otaup_registry_release_add(otaup_registry *reg, otaup_reg_release *r,
                                         const uint8_t *image, size_t len);

/** otaup_registry_release_publish() flag: publish even if a release of the
 *  model already has this image. */
#define OTAUP_REG_PUBLISH_SAME_IMAGE 0x1u

/**
 * otaup_registry_release_add() with `flags` (OTAUP_REG_PUBLISH_*; other
 * bits: OTAUP_E_INVAL). When it returns OTAUP_E_SAME_IMAGE and `existing`
 * is not NULL, *existing is the release of the model that holds the image
 * (the oldest one), so the caller can name it. Nothing is stored then.
 */
OTAUP_API int otaup_registry_release_publish(otaup_registry *reg, otaup_reg_release *r,
                                             const uint8_t *image, size_t len, unsigned flags,
                                             otaup_reg_release *existing);

/**
 * The sessions to release `release_id` that are in progress and will be
 * finished if the terminal comes back: state start, transfer, verify,
 * restore or commit, or failed after its START went out (the terminal's
 * journal may hold it), and backup or prepare (a session that did not
 * reach START yet; dropped if the release is withdrawn). cb (may be NULL)
 * is called for each; returns the number of them that started (START went
 * out), or a negative error. Walks every terminal: for operator tools,
 * not for the session path.
 */
OTAUP_API int otaup_registry_release_sessions(otaup_registry *reg, int64_t release_id,
                                              otaup_reg_session_cb cb, void *payload);

/** Return nonzero when session row `s` has sent its START (it must be finished). */
OTAUP_API int otaup_registry_session_started(const otaup_reg_session *s);

/** otaup_registry_release_withdraw() flag: withdraw even with sessions in progress. */
#define OTAUP_REG_WITHDRAW_FORCE 0x1u

/**
 * Withdraw release `id` (docs/server.md, "Withdrawing a release"): the
 * policy no longer offers it; sessions that already sent their START to
 * it still finish. Requests recorded for it are deleted, and the status
 * of the model's terminals waiting for an upgrade ("requested",
 * "upgrade-due", "notified") follows the policy again ("up-to-date" when
 * nothing is due; "upgrade-due" for a "requested" one whose request was
 * dropped while another release is due); the withdrawal is
 * audited with `reason` (may be NULL). Returns the number of started
 * sessions that will still finish to it (>= 0), OTAUP_E_NOT_FOUND,
 * OTAUP_E_WITHDRAWN (already withdrawn: only requests recorded for it
 * since, or left by a sweep that was cut short, are deleted),
 * OTAUP_E_IN_PROGRESS (sessions started to it and no
 * OTAUP_REG_WITHDRAW_FORCE: nothing changed), OTAUP_E_INVAL (unknown
 * flag bits). *requests_dropped (may be NULL) receives how many requests
 * were deleted.
 */
OTAUP_API int otaup_registry_release_withdraw(otaup_registry *reg, int64_t id, unsigned flags,
                                              const char *reason, unsigned *requests_dropped);

/**
 * Offer a withdrawn release again. Returns 0, OTAUP_E_NOT_FOUND, or
 * OTAUP_E_STATE when it is not withdrawn (nothing changed). Audited.
 */
OTAUP_API int otaup_registry_release_restore(otaup_registry *reg, int64_t id);
/** image may be NULL when the bytes are not wanted. With image, the bytes
 *  read back are checked against the size and XXH3-128 recorded at
 *  publication: a copy damaged at rest gives OTAUP_E_HASH (and no bytes).
 *  The same holds for otaup_registry_release_by_hash(). */
OTAUP_API int otaup_registry_release_get(otaup_registry *reg, int64_t id, otaup_reg_release *out,
                                         otaup_blob *image);
OTAUP_API int otaup_registry_release_list(otaup_registry *reg, const char *model,
                                          otaup_reg_release_cb cb, void *payload);
OTAUP_API int otaup_registry_release_by_hash(otaup_registry *reg,
                                             const uint8_t hash[OTAUP_REG_HASH_LEN],
                                             otaup_reg_release *out, otaup_blob *image);

OTAUP_API int otaup_registry_delta_get(otaup_registry *reg, const otaup_reg_delta_key *k,
                                       otaup_blob *delta);
OTAUP_API int otaup_registry_delta_put(otaup_registry *reg, const otaup_reg_delta_key *k,
                                       const uint8_t *delta, size_t len);

/**
 * Store the plaintext of a user-data region, encrypted: AES-256-GCM under
 * the terminal's key (created and wrapped on first use), a fresh random
 * nonce, and the terminal id and region as associated data.
 * Replaces an earlier backup of the same region. OTAUP_E_KEY without a
 * master key, OTAUP_E_UNSUPPORTED without mbedTLS.
 */
OTAUP_API int otaup_registry_backup_store(otaup_registry *reg, const otaup_reg_backup *b,
                                          const uint8_t *plain, size_t len);
/**
 * Load and decrypt a backup. OTAUP_E_NOT_FOUND, OTAUP_E_DECRYPT (tampered
 * or wrong key), OTAUP_E_BACKUP (length differs from the record).
 */
OTAUP_API int otaup_registry_backup_load(otaup_registry *reg, const char *terminal, uint32_t region,
                                         otaup_reg_backup *meta, otaup_blob *plain);
OTAUP_API int otaup_registry_backup_list(otaup_registry *reg, const char *terminal,
                                         otaup_reg_backup_cb cb, void *payload);
/**
 * Irreversibly delete every backup of the terminal: the rows are deleted
 * with the backend's secure deletion, and the terminal's backup key is
 * destroyed, so that no copy of the ciphertext anywhere can be decrypted
 * again. Returns the number of regions deleted (0 when there were none).
 */
OTAUP_API int otaup_registry_backup_delete(otaup_registry *reg, const char *terminal);
/**
 * Check the master key against the registry: the terminal keys it holds
 * (one per terminal with a backup) were wrapped by a master key; if some
 * are held and the handle's master key unwraps none of them, it is
 * another master key (a key file that is not this registry's, a new one
 * created by mistake) and every backup would fail to decrypt. Returns 0
 * (one unwraps, or none is held), OTAUP_E_KEY (none unwraps; `terminal`,
 * if not NULL, receives the id of the first one tried) or a registry
 * error. Reads only; one unwrap per terminal until one succeeds.
 */
OTAUP_API int otaup_registry_key_check(otaup_registry *reg, char *terminal, size_t cap);

OTAUP_API int otaup_registry_notice_add(otaup_registry *reg, otaup_reg_notice *n);
OTAUP_API int otaup_registry_notice_list(otaup_registry *reg, const char *terminal, int only_unsent,
                                         otaup_reg_notice_cb cb, void *payload);
OTAUP_API int otaup_registry_notice_mark_sent(otaup_registry *reg, int64_t id, int64_t when);

/** What otaup_registry_notice_check() found a notice of the outbox to be. */
#define OTAUP_REG_NOTICE_DUE 1   /**< still due: deliver it, then mark it sent */
#define OTAUP_REG_NOTICE_HELD 2  /**< its release is withdrawn: left in the outbox, unsent */
#define OTAUP_REG_NOTICE_STALE 3 /**< offers what is no longer due: dropped, never delivered */

/**
 * Before a notice taken from the outbox is delivered: is what it offers
 * still due? A notice offers one release to one terminal; it is out of
 * date when the policy no longer picks that release for the terminal as
 * it is now: a newer release was published (it gets its own notice), the
 * terminal reports that it runs the release or a newer one, or the
 * release is gone (a notice for a terminal the registry does not hold
 * stays due: nothing says otherwise). An out-of-date notice is dropped: marked
 * with a negative `sent` (-now), so that it leaves the unsent list, is
 * never delivered, and a later notice for the same release (due again
 * after the newer one was withdrawn) is queued afresh by
 * otaup_registry_notify() with a text for the terminal as it is then.
 * A notice of a withdrawn release is held: left unsent, a restore lets it
 * go out if it is still due then. Returns OTAUP_REG_NOTICE_DUE, _HELD,
 * _STALE, or a negative error (nothing marked).
 */
OTAUP_API int otaup_registry_notice_check(otaup_registry *reg, const otaup_reg_notice *n);

OTAUP_API int otaup_registry_request_put(otaup_registry *reg, const otaup_reg_request *r);
OTAUP_API int otaup_registry_request_get(otaup_registry *reg, const char *terminal,
                                         otaup_reg_request *out);
OTAUP_API int otaup_registry_request_delete(otaup_registry *reg, const char *terminal);

OTAUP_API int otaup_registry_session_put(otaup_registry *reg, const otaup_reg_session *s);
OTAUP_API int otaup_registry_session_get(otaup_registry *reg, const char *terminal,
                                         otaup_reg_session *out);
OTAUP_API int otaup_registry_session_delete(otaup_registry *reg, const char *terminal);

/** Append an audit record (event and detail are truncated to fit). */
OTAUP_API int otaup_registry_audit(otaup_registry *reg, const char *terminal, const char *event,
                                   const char *detail_fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
OTAUP_API int otaup_registry_audit_list(otaup_registry *reg, const char *terminal, unsigned limit,
                                        otaup_reg_audit_cb cb, void *payload);

/* ---- policy helpers ----------------------------------------------------- */

/**
 * Compare two version strings: runs of digits compare as numbers, other
 * characters byte by byte ("1.10" > "1.9", "2.0" > "2.0-rc1" is NOT
 * assumed: "2.0-rc1" > "2.0" as a longer string). Returns <0, 0, >0.
 */
OTAUP_API int otaup_version_cmp(const char *a, const char *b);

/**
 * The 32-bit version number a signed manifest carries for a version
 * string (docs/security.md §3.2, VERSION): its first three runs of digits
 * as major (8 bits), minor (8 bits) and patch (16 bits): "2.10.3-rc1" is
 * 0x020A0003, "1.0" 0x01000000, a string without digits 0. A run too large
 * for its field saturates the rest ("300.1" is 0xFFFFFFFF, "1.300" is
 * 0x01FFFFFF), so the order of otaup_version_cmp() is kept for versions
 * of up to three numbers (later runs and suffixes are ignored: "2.0-rc1"
 * and "2.0" give the same number). Terminals compare their installed
 * version with it (OTAUP_E_OLDER).
 */
OTAUP_API uint32_t otaup_version_pack(const char *version);

/**
 * The upgrade policy: the release a terminal should run. Picks the newest
 * release of the terminal's model that is not withdrawn (by version, then
 * build time); returns
 * OTAUP_E_NO_RELEASE when there is none or the terminal already runs it
 * (same image hash), OTAUP_E_DOWNGRADE when the newest release is older
 * than what the terminal runs and is not marked allow_downgrade.
 */
OTAUP_API int otaup_registry_policy(otaup_registry *reg, const otaup_reg_terminal *t,
                                    otaup_reg_release *out);

/**
 * Write the default notification text for an upgrade, like the seed's
 * text message: "New software 2.0 for your M1 is ready. Call the customer
 * centre free of charge (or accept on the phone) to upgrade; your personal
 * data is kept safe." Returns the length (truncated to cap-1).
 */
OTAUP_API int otaup_registry_notice_text(char *buf, size_t cap, const otaup_reg_terminal *t,
                                         const otaup_reg_release *r);

/**
 * The default notifier: queue a notice in the outbox for (terminal,
 * release) unless one exists already (sent or not; a dropped one does not
 * count), set the terminal's status to
 * "notified" and add an audit record. Returns 1 when a notice was queued,
 * 0 when one existed, or a negative error. *out (may be NULL) receives it.
 */
OTAUP_API int otaup_registry_notify(otaup_registry *reg, const otaup_reg_terminal *t,
                                    const otaup_reg_release *r, otaup_reg_notice *out);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_REGISTRY_H */
