/*
 * otaup — the session driver's transmitter: cuts a delta's outer record
 * stream into BATCH payloads that fit the terminal's frame size, keeps a
 * window of them in flight, and goes back N on a NACK or a timeout.
 * Private to lib/server; see docs/server.md, "Session driver", "Transfer".
 *
 * Units: the body (from a restart point on) is cut into units, each the
 * payload of one BATCH message: whole records, except that a DATA record
 * too large for the room left is split into several DATA records (only
 * the first keeps the RESET flag), so every unit is a valid record
 * sequence and the concatenated inner bytes are unchanged. Units are
 * described by offsets into the body (no copy); a unit is re-encoded on
 * every (re)transmission.
 */
#ifndef OTAUP_SERVER_SESSION_TX_H
#define OTAUP_SERVER_SESSION_TX_H

#include <stddef.h>
#include <stdint.h>

/** One BATCH payload: [lead DATA piece] [whole records] [tail DATA piece]. */
typedef struct otaup_tx_unit {
    uint32_t lead_off, lead_len; /**< continuation of a split DATA record (bytes) */
    uint32_t off, len;           /**< whole records: body[off .. off+len) */
    uint32_t tail_off, tail_len; /**< start of a DATA record split here (bytes) */
    uint8_t lead_flags, tail_flags;
    uint8_t has_lead, has_tail;
} otaup_tx_unit;

/** A restart point found in the body. */
typedef struct otaup_tx_sync {
    uint32_t index;  /**< the step that follows */
    uint32_t offset; /**< body offset of the SYNC record */
} otaup_tx_sync;

typedef struct otaup_tx {
    const uint8_t *body;
    size_t body_len;
    otaup_tx_sync *syncs;
    uint32_t nsyncs;
    otaup_tx_unit *units;
    uint32_t nunits;
    uint32_t cap_units;
    uint32_t payload_max;   /**< largest BATCH payload */
    /* window */
    uint32_t base;          /**< first unit not acknowledged */
    uint32_t next;          /**< next unit to (re)send */
    uint32_t high;          /**< highest unit sent + 1 (for retransmission counting) */
    uint32_t window_units;
    uint32_t window_bytes;
    uint64_t timer_start;   /**< when the oldest unacknowledged unit was (re)sent */
    uint32_t rto_ms;        /**< current retransmission timeout (backed off after timeouts) */
    uint32_t rto_base_ms;   /**< the timeout without backoff: set with rto_ms by the owner, then
                                 from the RTT samples; an ACK that advances brings rto_ms back
                                 to it */
    uint32_t rto_min_ms, rto_max_ms;
    uint32_t srtt_ms, rttvar_ms; /**< smoothed RTT (RFC 6298), 0 = no sample yet */
    uint32_t rtt_unit;      /**< unit timed for an RTT sample, UINT32_MAX = none */
    uint64_t rtt_sent;
    uint32_t retries;       /**< consecutive timeouts without progress */
    uint32_t max_retries;
    uint32_t gb_base;       /**< base of the last go-back (NACK damping) */
    uint64_t gb_time;
    int gb_valid;
    /* statistics */
    uint64_t bytes_sent;    /**< payload bytes handed out, retransmissions included */
    uint64_t bytes_unique;  /**< payload bytes of distinct units */
    uint32_t retransmits;   /**< units sent again */
    uint32_t timeouts;
} otaup_tx;

/**
 * Index the restart points of body[0..len) and check that it is a valid
 * outer record stream. Returns 0, OTAUP_E_DELTA_CORRUPT, OTAUP_E_NOMEM.
 */
int otaup_tx_init(otaup_tx *tx, const uint8_t *body, size_t len);
void otaup_tx_free(otaup_tx *tx);

/**
 * Raw mode (user data going back to the terminal): units are consecutive
 * slices of buf[0..len) of at most `chunk` bytes (unit.off/unit.len);
 * the caller sends the bytes itself. Window as above. Returns the unit
 * count or OTAUP_E_INVAL / OTAUP_E_NOMEM.
 */
int otaup_tx_init_raw(otaup_tx *tx, const uint8_t *buf, size_t len, uint32_t chunk);

/**
 * The body offset where a terminal whose next step is `next_step` resumes:
 * the last SYNC with index <= next_step (0 when there is none).
 */
uint32_t otaup_tx_resume_offset(const otaup_tx *tx, uint32_t next_step, uint32_t *sync_index);

/**
 * Cut the body from `start` into units of at most payload_max bytes
 * (payload_max >= 16). Resets the window. Returns the unit count or
 * OTAUP_E_NOMEM / OTAUP_E_INVAL.
 */
int otaup_tx_cut(otaup_tx *tx, uint32_t start, uint32_t payload_max);

/** Encode unit i into out[0..cap): returns its length or OTAUP_E_BUFFER. */
int otaup_tx_encode(const otaup_tx *tx, uint32_t i, uint8_t *out, size_t cap);

/** Encoded length of unit i. */
uint32_t otaup_tx_unit_len(const otaup_tx *tx, uint32_t i);

/**
 * The next unit to send now, or -1 when the window is full or everything
 * was sent. The caller sends it, then calls otaup_tx_sent().
 */
int64_t otaup_tx_next(const otaup_tx *tx);
/** Unit i went out at now_ms. Returns 1 when nothing was in flight before
 *  it (the wait for an acknowledgement starts now), else 0. */
int otaup_tx_sent(otaup_tx *tx, uint32_t i, uint64_t now_ms);

/**
 * The terminal expects unit `expected` next (it has everything before).
 * nack != 0: it saw a gap or a damaged frame: go back to `expected` now.
 * Returns 1 when all units are acknowledged, 0 otherwise.
 */
int otaup_tx_ack(otaup_tx *tx, uint32_t expected, int nack, uint64_t now_ms);

/**
 * Timer: returns 0, or OTAUP_E_RETRIES when max_retries timeouts in a row
 * passed without progress. On a timeout the window goes back to `base`.
 */
int otaup_tx_poll(otaup_tx *tx, uint64_t now_ms);

/** Absolute time (ms) of the next timeout, or UINT64_MAX when idle. */
uint64_t otaup_tx_deadline(const otaup_tx *tx);

/** 1 when every unit is acknowledged. */
int otaup_tx_done(const otaup_tx *tx);

#endif
