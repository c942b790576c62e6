/*
 * otaup — the session driver's message level (private).
 *
 * The state machine (session.c) works on decoded messages; the wire layer
 * (session_wire.c) turns frames of the command protocol into these and
 * back, numbers nothing itself (the session assigns every sequenced
 * outgoing message its sequence number, so that control messages and the
 * BATCH/RESTORE streams form one go-back-N sequence) and acknowledges the
 * terminal's sequenced frames. Tests drive the state machine at this level
 * with a scripted terminal. docs/server.md, "Session driver".
 */
#ifndef OTAUP_SERVER_SESSION_CORE_H
#define OTAUP_SERVER_SESSION_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/delta.h"
#include "otaup/flash.h"
#include "otaup/registry.h"
#include "otaup/session.h"

#define OTAUP_SM_MAX_REGIONS 8
#define OTAUP_SM_MAX_WINDOWS 8

/** Message types at the session level. */
enum otaup_sm_type {
    /* terminal -> server */
    OTAUP_SM_INFO = 1,     /**< who it is, what it runs, its flash, its resume state */
    OTAUP_SM_CONSENT,      /**< the user's decision on the terminal (code = OTAUP_CONSENT_*) */
    OTAUP_SM_BACKUP_DATA,  /**< region (id), offset, bytes, flags LAST/HASH, hash */
    OTAUP_SM_SIG_DATA,     /**< offset, total, bytes of its block signature */
    OTAUP_SM_ACK,          /**< seq = next sequence number it expects; window; code = status */
    OTAUP_SM_NACK,         /**< seq = next expected; ref_seq = the frame refused; code = why */
    OTAUP_SM_PROGRESS,     /**< step = next step to execute */
    OTAUP_SM_RESULT,       /**< session, code, image hash (hash_alg 0: none) */
    OTAUP_SM_PING,
    OTAUP_SM_ABORT,        /**< code */
    /* server -> terminal */
    OTAUP_SM_NOTIFY = 32,  /**< flags = kind, version, build_time, total = download size, text */
    OTAUP_SM_BACKUP_REQ,   /**< region (id), offset, flags OTAUP_BACKUP_HASH_ONLY, total = max chunk */
    OTAUP_SM_SIG_REQ,      /**< step = block size, offset, total = max chunk */
    OTAUP_SM_START,        /**< session id, flags OTAUP_START_RESUME, data = delta header + sections */
    OTAUP_SM_BATCH,        /**< seq, records */
    OTAUP_SM_RESTORE,      /**< seq, region (id), offset, bytes, flags LAST/HASH, hash */
    OTAUP_SM_COMMIT,       /**< session id, code = OTAUP_COMMIT_* */
    OTAUP_SM_ABORT_OUT,    /**< session id, code, text (logs only) */
    OTAUP_SM_PONG,         /**< (not sent: the ACK of a PING carries its nonce) */
    OTAUP_SM_DONE,         /**< session over (code, text): an information NOTIFY */
    OTAUP_SM_HELLO,        /**< the server's HELLO (seq 0) */
    OTAUP_SM_PING_OUT,     /**< keep-alive while waiting for the user */
    OTAUP_SM_NOTE          /**< an information NOTIFY that does not end the session: version,
                                build_time, text (a resumed session names what it installs) */
};

/** A user-data region as the terminal declares it. */
typedef struct otaup_sm_region {
    uint8_t id;       /**< the terminal's region id */
    uint8_t flags;    /**< OTAUP_REGION_* */
    uint8_t hash_alg; /**< 1: hash is the XXH3-64 of its current content; 0: not reported */
    uint32_t addr;
    uint32_t len;
    uint8_t hash[8];  /**< XXH3-64 LE */
} otaup_sm_region;

/** The terminal's INFO. */
typedef struct otaup_sm_info {
    char id[OTAUP_REG_ID_MAX];
    char model[OTAUP_REG_ID_MAX];
    char version[OTAUP_REG_VERSION_MAX];
    int64_t build_time;
    int have_image_hash;    /**< image_hash was reported (XXH3-128) */
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint32_t image_size;
    otaup_geometry geo;
    uint32_t max_frame;     /**< largest frame it accepts */
    uint32_t ram;           /**< RAM budget for applying */
    uint32_t staging;       /**< its staging buffer (0: not reported) */
    uint8_t window_bits;    /**< largest inflate window (0: not reported) */
    uint16_t max_ops;       /**< deferred records per step (0: not reported) */
    uint32_t caps;          /**< OTAUP_CAP_* (SIGNED: it executes signed updates only) */
    uint32_t sec_counter;   /**< security counter of its image (INFO SEC_COUNTER) */
    int have_image_sha256;  /**< image_sha256 was reported (INFO IMAGE_SHA256) */
    uint8_t image_sha256[32];
    uint8_t layout;         /**< 0 in place, 1 A/B */
    uint32_t slot_addr;     /**< running image */
    uint32_t slot_size;
    uint32_t target_addr;   /**< A/B: the other slot */
    uint32_t scratch_addr;
    uint32_t scratch_size;
    uint32_t nregions;
    otaup_sm_region regions[OTAUP_SM_MAX_REGIONS];
    uint32_t nwindows;
    struct {
        uint32_t addr, len;
    } windows[OTAUP_SM_MAX_WINDOWS];
    /* resume state */
    uint32_t session_id;    /**< 0: none */
    uint32_t next_step;     /**< first step not done */
    uint8_t active;         /**< a session was running when it reset / lost the link */
} otaup_sm_info;

/** One message. Pointers refer to memory owned by whoever built it. */
typedef struct otaup_sm {
    uint8_t type;
    uint8_t flags;
    uint8_t hash_alg;
    uint32_t seq;
    uint32_t ref_seq;    /**< NACK: the frame refused */
    uint32_t window;     /**< ACK: frames it accepts beyond seq - 1 */
    int32_t code;
    uint32_t region;
    uint32_t offset;
    uint32_t total;
    uint32_t step;
    uint32_t session_id;
    int64_t build_time;
    const uint8_t *data;
    size_t len;
    const otaup_sm_info *info;
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint8_t hash[32];    /**< BACKUP_DATA / RESTORE: region hash (hash_alg 1: 8 bytes; 3: 32) */
    uint8_t tag[16];     /**< BACKUP_DATA / RESTORE with flag TAG: the sealed chunk's tag */
    const char *text;
    const char *version;
} otaup_sm;

/** Feed one decoded message to the state machine. */
int otaup_session_input_msg(otaup_session *s, const otaup_sm *m, uint64_t now_ms);

/**
 * Take the next message to send (NULL when none). The message and its
 * data stay valid until the next call of any session function. Every
 * message but ABORT_OUT carries the sequence number it must be sent with;
 * a message of several frames (otaup_swire_frames) owns that many.
 */
const otaup_sm *otaup_session_next_msg(otaup_session *s, uint64_t now_ms);

/** Encode the planning parameters of an INFO (the registry's terminal layout). */
size_t otaup_session_layout_encode(const otaup_sm_info *info, uint8_t *out, size_t cap);
/** Decode planning parameters into planner options (and the slot size). */
int otaup_session_layout_decode(const uint8_t *p, size_t len, otaup_delta_options *o, uint32_t *slot_size);

/* ---- signed deltas (session_delta.c, session_sign.c) ---- */
/** Last byte of a delta key's planning parameters for the signed variant of a delta. */
#define OTAUP_SESSION_SIGNED_VARIANT 0x53u
/** The delta cache key of (t's layout, src -> dst), of the signed variant or not. */
void otaup_session_delta_key(const otaup_reg_terminal *t, const uint8_t *src, const uint8_t *dst, int signed_variant,
                             otaup_reg_delta_key *k);
/** One terminal per (source image, layout) of r's model that does not run r (malloc'd list; its length). */
size_t otaup_session_sources(otaup_registry *reg, const otaup_reg_release *r, otaup_reg_terminal **out);
/** 1 if the delta container carries a manifest. */
int otaup_session_delta_signed(const uint8_t *d, size_t len);
/** Key id (hex) of the first signature of a signed delta; OTAUP_E_UNSIGNED if none. */
int otaup_session_key_id_hex(const uint8_t *d, size_t len, char out[17]);

/* ---- shared delta cache (session_delta.c) ---- */
/** Look up k: a reference (release with otaup_delta_cache_release) and the bytes, or NULL. */
void *otaup_delta_cache_get(otaup_delta_cache *c, const otaup_reg_delta_key *k, const uint8_t **data,
                            size_t *len, uint32_t *body_off);
/** Insert (takes the blob) and return a reference, or NULL (out of memory; blob untouched). */
void *otaup_delta_cache_put(otaup_delta_cache *c, const otaup_reg_delta_key *k, otaup_blob *blob,
                            uint32_t body_off);
void otaup_delta_cache_release(otaup_delta_cache *c, void *ref);

/** Check an INFO for consistency (the terminal may lie). 0 or OTAUP_E_GEOMETRY / OTAUP_E_PEER. */
int otaup_session_info_check(const otaup_sm_info *info, char *why, size_t why_len);

/* ---- wire layer (session_wire.c) -------------------------------------- */

/** What the terminal's HELLO said. */
typedef struct otaup_swire_peer {
    int have;           /**< a HELLO arrived */
    uint32_t max_frame;
    uint32_t max_msg;
    uint32_t window;
    uint32_t caps;
} otaup_swire_peer;

/** Largest frame the server receives (advertised in its HELLO). */
#define OTAUP_SWIRE_RX_FRAME 2048u
/** Largest reassembled message it receives (INFO, RESULT). */
#define OTAUP_SWIRE_RX_MSG 2048u
/** Frames the server accepts beyond the last acknowledged one. */
#define OTAUP_SWIRE_RX_WINDOW 16u

typedef struct otaup_swire otaup_swire;
int otaup_swire_new(otaup_swire **out);
void otaup_swire_free(otaup_swire *w);
/**
 * Decode bytes: calls deliver() for every message executed in order,
 * answers the terminal's sequenced frames (ACK, NACK; bytes waiting in
 * otaup_swire_take) with `next_seq` as the server's next sequence number.
 * Returns 0, the first negative value deliver() returned, or an error that
 * ends the connection (protocol version, garbage instead of frames);
 * *why (may be NULL) then names the reason.
 */
int otaup_swire_feed(otaup_swire *w, const uint8_t *in, size_t len, uint32_t next_seq,
                     int (*deliver)(void *ctx, const otaup_sm *m), void *ctx, const char **why);
/**
 * Encode a message into out[0..cap) as its frame(s), the first with m->seq.
 * max_frame: the terminal's. Returns the byte count or a negative error.
 */
int otaup_swire_encode(otaup_swire *w, const otaup_sm *m, uint32_t max_frame, uint8_t *out, size_t cap);
/** Frames message m takes with frames of max_frame bytes (>= 1), or a negative error. */
int otaup_swire_frames(const otaup_sm *m, uint32_t max_frame);
/** Bytes the encoding of m takes at most (for buffers). */
size_t otaup_swire_bound(const otaup_sm *m, uint32_t max_frame);
/** Copy up to cap bytes of waiting ACK/NACK frames into out; returns the count. */
size_t otaup_swire_take(otaup_swire *w, uint8_t *out, size_t cap);
/** Bytes of ACK/NACK frames waiting. */
size_t otaup_swire_waiting(const otaup_swire *w);
/** The terminal's HELLO parameters. */
const otaup_swire_peer *otaup_swire_peer_info(const otaup_swire *w);
/** Valid frames received so far. */
uint32_t otaup_swire_frames_in(const otaup_swire *w);
/** Bytes of framing around a BATCH payload (for sizing units). */
uint32_t otaup_swire_overhead(void);

#endif
