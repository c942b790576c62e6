/*
 * otaup — the session driver's message level (private).
 *
 * The state machine (session.c) works on decoded messages; the wire layer
 * (session_wire.c) turns frames of the command protocol into these and
 * back. Tests drive the state machine at this level with a scripted
 * terminal. docs/server.md, "Session state machine".
 */
#ifndef OTAUP_SERVER_SESSION_CORE_H
#define OTAUP_SERVER_SESSION_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/flash.h"
#include "otaup/registry.h"
#include "otaup/session.h"

#define OTAUP_SM_MAX_REGIONS 8
#define OTAUP_SM_MAX_WINDOWS 8

/** Message types at the session level. */
enum otaup_sm_type {
    /* terminal -> server */
    OTAUP_SM_INFO = 1,     /**< who it is, what it runs, its flash, its resume state */
    OTAUP_SM_CONSENT,      /**< the user accepted on the terminal */
    OTAUP_SM_BACKUP_DATA,  /**< region, offset, bytes (reply to BACKUP_REQ) */
    OTAUP_SM_SIG_DATA,     /**< offset, total, bytes of its block signature */
    OTAUP_SM_ACK,          /**< seq = next sequence number it expects */
    OTAUP_SM_NACK,         /**< seq = next expected; code = why */
    OTAUP_SM_PROGRESS,     /**< step = next step to execute */
    OTAUP_SM_RESULT,       /**< code, image hash, region hashes */
    OTAUP_SM_PING,
    OTAUP_SM_ABORT,        /**< code */
    /* server -> terminal */
    OTAUP_SM_NOTIFY = 32,  /**< text */
    OTAUP_SM_BACKUP_REQ,   /**< region */
    OTAUP_SM_SIG_REQ,
    OTAUP_SM_START,        /**< session id, release version, delta header + sections, resume step */
    OTAUP_SM_BATCH,        /**< seq, records */
    OTAUP_SM_RESTORE,      /**< seq, region, offset, bytes */
    OTAUP_SM_COMMIT,       /**< seq: finish (restore done); answer RESULT */
    OTAUP_SM_ABORT_OUT,    /**< code, text */
    OTAUP_SM_PONG,
    OTAUP_SM_DONE          /**< nothing to do / session over (code) */
};

/** A user-data region as the terminal declares it. */
typedef struct otaup_sm_region {
    uint32_t addr;
    uint32_t len;
    uint8_t hash[8]; /**< XXH3-64 LE of its current content */
} otaup_sm_region;

/** The terminal's INFO. */
typedef struct otaup_sm_info {
    char id[OTAUP_REG_ID_MAX];
    char model[OTAUP_REG_ID_MAX];
    char version[OTAUP_REG_VERSION_MAX];
    int64_t build_time;
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint32_t image_size;
    otaup_geometry geo;
    uint32_t max_frame;     /**< largest frame it accepts */
    uint32_t ram;           /**< RAM budget for applying */
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
    uint32_t seq;
    int32_t code;
    uint32_t region;
    uint32_t offset;
    uint32_t total;
    uint32_t step;
    uint32_t session_id;
    const uint8_t *data;
    size_t len;
    const otaup_sm_info *info;
    uint8_t image_hash[OTAUP_REG_HASH_LEN];
    uint32_t nregions;
    uint8_t region_hash[OTAUP_SM_MAX_REGIONS][8];
    const char *text;
} otaup_sm;

/** Feed one decoded message to the state machine. */
int otaup_session_input_msg(otaup_session *s, const otaup_sm *m, uint64_t now_ms);

/**
 * Take the next message to send (NULL when none). The message and its
 * data stay valid until the next call of any session function.
 */
const otaup_sm *otaup_session_next_msg(otaup_session *s, uint64_t now_ms);

/** Encode the planning parameters of an INFO (the registry's terminal layout). */
size_t otaup_session_layout_encode(const otaup_sm_info *info, uint8_t *out, size_t cap);
/** Check an INFO for consistency (the terminal may lie). 0 or OTAUP_E_GEOMETRY / OTAUP_E_PEER. */
int otaup_session_info_check(const otaup_sm_info *info, char *why, size_t why_len);

/* wire layer (session_wire.c) */
typedef struct otaup_swire otaup_swire;
int otaup_swire_new(otaup_swire **out);
void otaup_swire_free(otaup_swire *w);
/**
 * Decode bytes: calls deliver() for every complete message. Damaged
 * frames give deliver() a NACK-worthy message of type 0 with code set.
 */
int otaup_swire_feed(otaup_swire *w, const uint8_t *in, size_t len,
                     int (*deliver)(void *ctx, const otaup_sm *m), void *ctx);
/** Encode a message into out[0..cap) as one frame: length or negative. */
int otaup_swire_encode(otaup_swire *w, const otaup_sm *m, uint32_t max_frame, uint8_t *out, size_t cap);
/** Bytes of framing around a payload (for sizing BATCH units). */
uint32_t otaup_swire_overhead(void);

#endif
