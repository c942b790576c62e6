/*
 * otaup — command protocol codec: frames and messages.
 *
 * Pure bytes in, bytes out: no I/O, no heap, no OS, no global state. The
 * same frames travel over TCP, a serial line, datagrams or a broker. The
 * byte-level specification is docs/protocol.md; this header is its API.
 *
 * Frame (all multi-byte fields little-endian):
 *
 *   off size field
 *     0   2  magic   0x4F 0x55 ("OU")
 *     2   1  version OTAUP_PROTO_VERSION
 *     3   1  type    message type (OTAUP_MSG_*)
 *     4   1  flags   OTAUP_FLAG_*; other bits zero
 *     5   1  hcheck  CRC-8 (poly 0x07, init 0) over bytes 0..4 and 6..11
 *     6   2  length  payload length
 *     8   4  seq     sequence number of the sender
 *    12   n  payload
 *  12+n   4  crc     CRC-32 (zlib crc32()) over bytes 0 .. 12+n-1
 *
 * Overhead: 16 bytes. A frame never exceeds the receiver's advertised
 * maximum (64 .. 65536 bytes), so a payload is at most 65520 bytes.
 *
 * Usage: a receiver owns an otaup_decoder (streaming) or calls
 * otaup_frame_decode() (one datagram = one frame), hands fragmented
 * messages to an otaup_reasm, and decodes payloads with
 * otaup_msg_decode() or the per-message functions. A sender encodes a
 * message with otaup_msg_encode_frame() (payload written in place, then
 * the header and CRC) or otaup_frag_next() for messages larger than a
 * frame. Decoded messages point into the caller's buffers; nothing is
 * copied except where a function says so.
 *
 * Every function is reentrant: state lives only in the structures the
 * caller passes (otaup_decoder, otaup_reasm), each of which one thread
 * uses at a time. Arguments that are NULL where a buffer or structure is
 * needed give OTAUP_E_INVAL.
 */
#ifndef OTAUP_PROTO_H
#define OTAUP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"
#include "otaup/record.h"
#include "otaup/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- frame constants ------------------------------------------------------ */

#define OTAUP_FRAME_MAGIC0 0x4Fu
#define OTAUP_FRAME_MAGIC1 0x55u
#define OTAUP_FRAME_HEADER_SIZE 12u /**< bytes before the payload */
#define OTAUP_FRAME_TRAILER_SIZE 4u /**< the CRC-32 after the payload */
#define OTAUP_FRAME_OVERHEAD 16u    /**< header + trailer */
#define OTAUP_FRAME_MIN 64u         /**< smallest maximum a peer may advertise */
#define OTAUP_FRAME_MAX 65536u      /**< largest frame of the protocol */
#define OTAUP_PAYLOAD_MAX (OTAUP_FRAME_MAX - OTAUP_FRAME_OVERHEAD)
/** Payload that fits a frame of `max_frame` bytes. */
#define OTAUP_FRAME_PAYLOAD(max_frame) ((max_frame) - OTAUP_FRAME_OVERHEAD)

/** Frame flags. Every other bit must be zero (OTAUP_E_FRAME_FLAGS). */
#define OTAUP_FLAG_MORE 0x01u   /**< the message continues in the next frame */
#define OTAUP_FLAG_CONT 0x02u   /**< this frame continues a message begun earlier */
#define OTAUP_FLAG_ACKREQ 0x04u /**< the sender asks for an ACK as soon as executed */
#define OTAUP_FLAG_ALL 0x07u

/* ---- message types ---------------------------------------------------------- */

/** Message types (frame byte 3). 0x20..0x2A are the record types of record.h. */
typedef enum otaup_msg_type {
    OTAUP_MSG_HELLO = 0x01,
    OTAUP_MSG_INFO = 0x02,
    OTAUP_MSG_NOTIFY = 0x03,
    OTAUP_MSG_CONSENT = 0x04,
    OTAUP_MSG_START = 0x05,
    OTAUP_MSG_COMMIT = 0x06,
    OTAUP_MSG_ABORT = 0x07,
    OTAUP_MSG_RESULT = 0x08,
    OTAUP_MSG_PING = 0x09,
    OTAUP_MSG_PROGRESS = 0x0A,
    OTAUP_MSG_ACK = 0x0B,
    OTAUP_MSG_NACK = 0x0C,
    OTAUP_MSG_BACKUP_REQ = 0x10,
    OTAUP_MSG_BACKUP_DATA = 0x11,
    OTAUP_MSG_RESTORE_DATA = 0x12,
    OTAUP_MSG_SIG_REQ = 0x13,
    OTAUP_MSG_SIG_DATA = 0x14,
    OTAUP_MSG_ERASE = 0x20,
    OTAUP_MSG_WRITE = 0x21,
    OTAUP_MSG_COPY = 0x22,
    OTAUP_MSG_DIFF = 0x23,
    OTAUP_MSG_FILL = 0x24,
    OTAUP_MSG_VERIFY = 0x25,
    OTAUP_MSG_DATA = 0x26,
    OTAUP_MSG_STEP = 0x27,
    OTAUP_MSG_END = 0x28,
    OTAUP_MSG_BLOB = 0x29,
    OTAUP_MSG_SYNC = 0x2A,
    OTAUP_MSG_BATCH = 0x2F
} otaup_msg_type;

/** 1 if `type` is a message type of this protocol version. */
int otaup_msg_type_known(uint8_t type);
/** 1 if messages of `type` may span frames (MORE/CONT allowed). */
int otaup_msg_type_fragmentable(uint8_t type);
/**
 * 1 if frames of `type` consume a sequence number and are acknowledged
 * (all but ACK, NACK and PROGRESS; docs/protocol.md, "Sequence numbers").
 */
int otaup_msg_type_sequenced(uint8_t type);
/** Name of a message type ("HELLO", ...), or NULL if unknown. */
const char *otaup_msg_type_name(uint8_t type);

/**
 * Compare sequence numbers modulo 2^32 (serial number arithmetic,
 * docs/protocol.md section 4): > 0 if a is after b, < 0 if before, 0 if
 * equal. a is after b when (a - b) mod 2^32 lies in 1 .. 2^31 - 1; the
 * distance 2^31 itself counts as "before".
 */
int otaup_seq_cmp(uint32_t a, uint32_t b);

/* ---- frames ----------------------------------------------------------------- */

/** A decoded frame header plus a pointer to its payload. */
typedef struct otaup_frame {
    uint8_t version;
    uint8_t type;
    uint8_t flags;
    uint32_t seq;
    const uint8_t *payload; /**< into the input or the decoder buffer */
    uint32_t payload_len;
    uint32_t frame_len;     /**< payload_len + OTAUP_FRAME_OVERHEAD */
    uint32_t crc;           /**< the frame's CRC-32 trailer (checked): what tells a copy of it */
} otaup_frame;

/**
 * CRC-8 of the header check (poly 0x07, init 0x00, no reflection, no final
 * XOR) of p[0..n), continuing from `crc` (0 to start; the result of a
 * previous call to continue over a second piece).
 */
uint8_t otaup_crc8(uint8_t crc, const uint8_t *p, size_t n);

/**
 * Write the header and CRC of a frame whose payload is already at
 * out[OTAUP_FRAME_HEADER_SIZE .. +payload_len). Returns the frame length,
 * OTAUP_E_INVAL if out is NULL, OTAUP_E_BUFFER if cap is too small, OTAUP_E_FRAME_OVERSIZE if the frame
 * would exceed OTAUP_FRAME_MAX, OTAUP_E_FRAME_FLAGS for undefined flags or
 * MORE/CONT on a type that cannot be fragmented. The type itself is not
 * checked (tests build frames of unknown types with it).
 */
int otaup_frame_seal(uint8_t *out, size_t cap, uint8_t type, uint8_t flags, uint32_t seq,
                     size_t payload_len);

/**
 * Encode a frame: copies payload[0..len) (which may already be in place at
 * out + OTAUP_FRAME_HEADER_SIZE) and seals it. Returns the frame length or
 * an error as otaup_frame_seal().
 */
int otaup_frame_encode(uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *payload,
                       size_t len, uint8_t *out, size_t cap);

/**
 * Datagram mode: decode exactly one whole frame from in[0..len).
 * max_frame is the receiver's advertised maximum (64 ..
 * OTAUP_CONFIG_FRAME_MAX, else OTAUP_E_INVAL).
 * Returns 0 with *fr filled (payload points into `in`), or:
 *   OTAUP_E_FRAME_TRUNCATED  shorter than a header or than the header says
 *   OTAUP_E_FRAME_MAGIC      does not start with the magic
 *   OTAUP_E_FRAME_HEADER     header check mismatch
 *   OTAUP_E_FRAME_OVERSIZE   the header's length exceeds max_frame
 *   OTAUP_E_FRAME_CRC        CRC-32 mismatch
 *   OTAUP_E_MSG_LENGTH       bytes after the frame, or a payload length
 *                            impossible for the type
 *   OTAUP_E_FRAME_VERSION, OTAUP_E_FRAME_FLAGS, OTAUP_E_MSG_TYPE
 *                            intact frame that cannot be accepted
 * For the last group (and MSG_LENGTH of an intact frame) *fr is filled as
 * well, so the receiver can name the frame in a NACK.
 */
int otaup_frame_decode(const uint8_t *in, size_t len, uint32_t max_frame, otaup_frame *fr);

/* ---- streaming decoder -------------------------------------------------------- */

/** Events of otaup_decoder_feed() (errors are negative). */
#define OTAUP_DEC_NEED_INPUT 0 /**< all input consumed; feed more */
#define OTAUP_DEC_FRAME 1      /**< *fr holds a valid frame */

/** Decoder statistics (never reset by the decoder itself). */
typedef struct otaup_decoder_stats {
    uint32_t frames;        /**< valid frames delivered */
    uint32_t errors;        /**< error events (other than GARBAGE) */
    uint32_t garbage_bytes; /**< bytes skipped outside frames */
} otaup_decoder_stats;

/**
 * Streaming decoder state. Lives where the caller puts it; `buf` is the
 * caller's buffer of at least max_frame bytes (OTAUP_DECODER_BUF_SIZE).
 */
typedef struct otaup_decoder {
    uint8_t *buf;
    uint32_t cap;
    uint32_t max_frame;
    uint32_t have;     /**< bytes held in buf (a frame not yet complete) */
    uint32_t release;  /**< bytes of buf delivered by the last event */
    uint32_t garbage;  /**< skipped bytes not yet reported */
    uint32_t skipped;  /**< byte count of the last OTAUP_E_FRAME_GARBAGE event */
    otaup_decoder_stats stats;
} otaup_decoder;

/** Buffer an otaup_decoder needs for frames of up to max_frame bytes. */
#define OTAUP_DECODER_BUF_SIZE(max_frame) (max_frame)

/**
 * Initialise. max_frame: 64 .. OTAUP_CONFIG_FRAME_MAX; cap >= max_frame.
 * Returns 0 or OTAUP_E_INVAL.
 */
int otaup_decoder_init(otaup_decoder *d, uint8_t *buf, size_t cap, uint32_t max_frame);

/**
 * Advance over in[0..len); *consumed receives the bytes used (the decoder
 * keeps the bytes of an incomplete frame in its buffer). Returns one event:
 *
 *   OTAUP_DEC_FRAME       *fr is a valid frame (known type, plausible
 *                         length, flags allowed for the type). Its payload
 *                         points into `in` (whole frames are not copied)
 *                         or into the decoder buffer, valid until the next
 *                         call.
 *   OTAUP_DEC_NEED_INPUT  everything consumed, no event pending.
 *   OTAUP_E_FRAME_GARBAGE d->skipped bytes outside any frame were dropped
 *                         (reported just before the frame or error that
 *                         follows them).
 *   OTAUP_E_FRAME_HEADER, OTAUP_E_FRAME_OVERSIZE, OTAUP_E_FRAME_CRC
 *                         a frame start was bad; the decoder drops its
 *                         first byte and rescans the rest for a magic, so
 *                         a frame that begins inside it is not lost.
 *   OTAUP_E_FRAME_VERSION, OTAUP_E_FRAME_FLAGS, OTAUP_E_MSG_TYPE,
 *   OTAUP_E_MSG_LENGTH    an intact frame (CRC good) that cannot be
 *                         accepted: skipped whole, *fr describes it.
 *
 * Call again (with the remaining input) until it returns NEED_INPUT. The
 * sequence of events does not depend on how the input is split. Other
 * negative values: OTAUP_E_INVAL (bad arguments).
 */
int otaup_decoder_feed(otaup_decoder *d, const uint8_t *in, size_t len, size_t *consumed,
                       otaup_frame *fr);

/** Forget any partial frame and pending garbage (e.g. after a link reset). */
void otaup_decoder_reset(otaup_decoder *d);

/* ---- fragmentation -------------------------------------------------------------- */

/** Reassembly state for fragmented messages; buf is the caller's. */
typedef struct otaup_reasm {
    uint8_t *buf;
    uint32_t cap;
    uint32_t len;      /**< bytes gathered so far */
    uint32_t next_seq; /**< seq the next fragment must carry */
    uint8_t type;      /**< type of the message in progress */
    uint8_t active;    /**< 1 while a fragmented message is in progress */
} otaup_reasm;

/** Initialise with a buffer of `cap` bytes (the largest message accepted). Returns 0 or OTAUP_E_INVAL. */
int otaup_reasm_init(otaup_reasm *r, uint8_t *buf, size_t cap);

/**
 * Add a frame, in execution (sequence) order. Returns 1 when a message is
 * complete (*msg, *msg_len: the frame's own payload for an unfragmented
 * message, else the reassembly buffer), 0 when more fragments are needed,
 * or OTAUP_E_FRAGMENT: CONT without a message in progress, a new message
 * while one is in progress, a fragment of another type or a non-consecutive
 * seq, more bytes than the buffer holds, or MORE/CONT on a type that
 * cannot be fragmented. After an error the partial message is dropped (a
 * frame without CONT that caused the error starts a new message only when
 * passed again). BATCH frames are not reassembled: passing one gives
 * OTAUP_E_INVAL (see otaup_batch_check()).
 */
int otaup_reasm_add(otaup_reasm *r, const otaup_frame *fr, const uint8_t **msg, size_t *msg_len);

/** Drop a message in progress. */
void otaup_reasm_reset(otaup_reasm *r);

/**
 * Sender side: encode the next frame of a message of `type` whose payload
 * is msg[0..len), starting at *off, into out (max_frame: the receiver's
 * maximum). Flags MORE/CONT are set as needed; `extra` may add ACKREQ.
 * A message that fits one frame gives one frame without MORE/CONT. Returns
 * the frame length and advances *off; 0 when *off == len after the last
 * frame (an empty message still gives one frame); or an error (BUFFER,
 * FRAGMENT if the message needs several frames and `type` cannot be
 * fragmented, INVAL: `extra` other than 0 or ACKREQ, max_frame outside
 * 64 .. OTAUP_CONFIG_FRAME_MAX, NULL pointers).
 */
int otaup_frag_next(uint8_t type, uint8_t extra, uint32_t seq, const uint8_t *msg, size_t len,
                    size_t *off, uint32_t max_frame, uint8_t *out, size_t cap);

/**
 * BATCH frames carry consecutive slices of one record stream; a record may
 * span frames (flag MORE on the frame where it starts, CONT on the next).
 * Call with when = 0 before feeding a BATCH payload to the otaup_recparser
 * and with when = 1 after it; `parser_idle` is otaup_recparser_idle().
 * Returns 0 or OTAUP_E_FRAGMENT if the flags disagree with the parser.
 */
int otaup_batch_check(uint8_t flags, int parser_idle, int when);

/* ---- message payloads ------------------------------------------------------------ */

/** A run of bytes inside a decoded payload (or given to an encoder). */
typedef struct otaup_bytes {
    const uint8_t *data;
    uint32_t len;
} otaup_bytes;

/** A hash: algorithm (OTAUP_HASH_* of record.h, 0 = none) and its bytes. */
typedef struct otaup_proto_hash {
    uint8_t alg;
    uint8_t len; /**< 0, 8, 16 or 32: fixed by alg */
    uint8_t bytes[OTAUP_HASH_MAX];
} otaup_proto_hash;

/** An address range [addr, addr+len), inside 32 bits. */
typedef struct otaup_proto_range {
    uint32_t addr;
    uint32_t len;
} otaup_proto_range;

/** Longest version string (NOTIFY, CONSENT, RESULT, INFO). */
#define OTAUP_PROTO_VERSION_STR_MAX 32u
/** Longest terminal id / model string in INFO. */
#define OTAUP_PROTO_STR_MAX 64u

/* HELLO ------------------------------------------------------------------- */

#define OTAUP_ROLE_SERVER 1u
#define OTAUP_ROLE_TERMINAL 2u

/** Capability bits (HELLO.caps, INFO): advisory; unknown bits are ignored. */
#define OTAUP_CAP_DEFLATE 0x00000001u  /**< inflates DATA records */
#define OTAUP_CAP_BATCH 0x00000002u    /**< accepts BATCH messages */
#define OTAUP_CAP_SIGNED 0x00000004u   /**< verifies signed manifests */
#define OTAUP_CAP_BACKUP 0x00000008u   /**< backs up and restores user-data regions */
#define OTAUP_CAP_INPLACE 0x00000010u  /**< in-place layout with a scratch sector */
#define OTAUP_CAP_AB 0x00000020u       /**< A/B layout */
#define OTAUP_CAP_RESUME 0x00000040u   /**< journal: resumes after reset */
#define OTAUP_CAP_SEALED 0x00000080u   /**< seals backup data (BACKUP_DATA tag) */

typedef struct otaup_msg_hello {
    uint8_t role;       /**< OTAUP_ROLE_* */
    uint8_t proto_min;  /**< lowest protocol version spoken, >= 1 */
    uint8_t proto_max;  /**< highest, >= proto_min */
    uint32_t max_frame; /**< largest frame it receives: 64 .. 65536 */
    uint32_t max_msg;   /**< largest reassembled message it receives, >= 48 */
    uint16_t window;    /**< unacknowledged frames it accepts, >= 1 */
    uint32_t caps;      /**< OTAUP_CAP_* */
} otaup_msg_hello;
#define OTAUP_HELLO_SIZE 20u

/* INFO -------------------------------------------------------------------- */

#define OTAUP_INFO_MAX_WINDOWS 8
#define OTAUP_INFO_MAX_REGIONS 8

/** INFO TLV tags (docs/protocol.md, "INFO"). */
#define OTAUP_INFO_TERMINAL_ID 0x01u
#define OTAUP_INFO_MODEL 0x02u
#define OTAUP_INFO_SW_VERSION 0x03u
#define OTAUP_INFO_BUILD_TIME 0x04u
#define OTAUP_INFO_IMAGE_HASH 0x05u
#define OTAUP_INFO_IMAGE_SIZE 0x06u
#define OTAUP_INFO_GEOMETRY 0x07u
#define OTAUP_INFO_WINDOW 0x08u
#define OTAUP_INFO_REGION 0x09u
#define OTAUP_INFO_LAYOUT 0x0Au
#define OTAUP_INFO_SCRATCH 0x0Bu
#define OTAUP_INFO_CAPS 0x0Cu
#define OTAUP_INFO_MAX_FRAME 0x0Du
#define OTAUP_INFO_MEMORY 0x0Eu
#define OTAUP_INFO_RESUME 0x0Fu
#define OTAUP_INFO_SEC_COUNTER 0x10u
#define OTAUP_INFO_LIMITS 0x11u
#define OTAUP_INFO_IMAGE_SHA256 0x12u /**< SHA-256 of the installed image (32 bytes) */

/** otaup_msg_info.have: which optional items are present. */
#define OTAUP_INFO_HAVE_IMAGE_HASH (1u << OTAUP_INFO_IMAGE_HASH)
#define OTAUP_INFO_HAVE_IMAGE_SIZE (1u << OTAUP_INFO_IMAGE_SIZE)
#define OTAUP_INFO_HAVE_GEOMETRY (1u << OTAUP_INFO_GEOMETRY)
#define OTAUP_INFO_HAVE_LAYOUT (1u << OTAUP_INFO_LAYOUT)
#define OTAUP_INFO_HAVE_SCRATCH (1u << OTAUP_INFO_SCRATCH)
#define OTAUP_INFO_HAVE_CAPS (1u << OTAUP_INFO_CAPS)
#define OTAUP_INFO_HAVE_MAX_FRAME (1u << OTAUP_INFO_MAX_FRAME)
#define OTAUP_INFO_HAVE_MEMORY (1u << OTAUP_INFO_MEMORY)
#define OTAUP_INFO_HAVE_RESUME (1u << OTAUP_INFO_RESUME)
#define OTAUP_INFO_HAVE_SEC_COUNTER (1u << OTAUP_INFO_SEC_COUNTER)
#define OTAUP_INFO_HAVE_LIMITS (1u << OTAUP_INFO_LIMITS)
#define OTAUP_INFO_HAVE_IMAGE_SHA256 (1u << OTAUP_INFO_IMAGE_SHA256)

/** Flash layouts (INFO LAYOUT); the same values as delta.h and journal.h. */
#define OTAUP_LAYOUT_INPLACE 0u /**< rewrite the running slot in place */
#define OTAUP_LAYOUT_AB 1u      /**< read the source slot, write the other slot */

/** User-data region flags. */
#define OTAUP_REGION_PERSONAL 0x01u /**< personal data: backed up sealed, deleted after */

typedef struct otaup_proto_region {
    uint8_t id;
    uint8_t flags;          /**< OTAUP_REGION_* */
    uint32_t addr;
    uint32_t len;
    otaup_proto_hash hash;  /**< alg 0 if not reported */
} otaup_proto_region;

/** Session phases (INFO RESUME, PROGRESS). */
#define OTAUP_PHASE_IDLE 0u
#define OTAUP_PHASE_BACKUP 1u
#define OTAUP_PHASE_TRANSFER 2u /**< records being executed */
#define OTAUP_PHASE_VERIFY 3u
#define OTAUP_PHASE_RESTORE 4u
#define OTAUP_PHASE_COMMIT 5u
#define OTAUP_PHASE_DONE 6u
#define OTAUP_PHASE_MAX 6u

/** Resume flags. */
#define OTAUP_RESUME_IN_SCRATCH 0x01u /**< step next_step is held in scratch */

typedef struct otaup_proto_resume {
    uint64_t session;   /**< 0: no session in progress */
    uint32_t next_step; /**< first step not yet journaled as done */
    uint8_t phase;      /**< OTAUP_PHASE_* */
    uint8_t flags;      /**< OTAUP_RESUME_* */
} otaup_proto_resume;

/**
 * INFO: what the terminal is. terminal_id, model, sw_version and
 * build_time are required; the rest is present when its `have` bit is set
 * (windows/regions: when their count is non-zero).
 */
typedef struct otaup_msg_info {
    uint32_t have;            /**< OTAUP_INFO_HAVE_* */
    otaup_bytes terminal_id;  /**< UTF-8, 1 .. 64 bytes */
    otaup_bytes model;        /**< UTF-8, 1 .. 64 bytes */
    otaup_bytes sw_version;   /**< UTF-8, 1 .. 32 bytes */
    uint64_t build_time;      /**< unix seconds */
    otaup_proto_hash image_hash;
    uint32_t image_size;
    otaup_geometry geometry;  /**< must pass otaup_geometry_check() */
    uint8_t nwindows;
    otaup_proto_range windows[OTAUP_INFO_MAX_WINDOWS]; /**< writable address windows */
    uint8_t nregions;
    otaup_proto_region regions[OTAUP_INFO_MAX_REGIONS]; /**< user-data regions */
    uint8_t layout;           /**< OTAUP_LAYOUT_* */
    uint8_t active_slot;      /**< 0 or 1 */
    otaup_proto_range slots[2]; /**< A/B: both slots; in-place: slots[0] = the image */
    otaup_proto_range scratch;
    uint32_t caps;            /**< OTAUP_CAP_* */
    uint32_t max_frame;
    uint32_t staging_size;    /**< staging buffer in bytes */
    uint32_t ram_budget;      /**< RAM the updater may use, bytes */
    otaup_proto_resume resume;
    uint32_t sec_counter;     /**< anti-rollback counter of the installed image */
    uint8_t window_bits;      /**< LIMITS: largest inflate window, 9..15 (0: no DATA) */
    uint16_t max_ops;         /**< LIMITS: deferred WRITE/DIFF records per step, >= 1 */
    /** IMAGE_SHA256: SHA-256 of the installed image (IMAGE_SIZE bytes from
     *  the start of the running slot), for a server that signs an update
     *  planned from the block signature (docs/security.md). */
    uint8_t image_sha256[32];
} otaup_msg_info;

/* NOTIFY, CONSENT ------------------------------------------------------------ */

#define OTAUP_NOTIFY_INFO 0u  /**< information only */
#define OTAUP_NOTIFY_OFFER 1u /**< an upgrade is offered; a CONSENT is awaited */

typedef struct otaup_msg_notify {
    uint8_t kind;           /**< OTAUP_NOTIFY_* */
    otaup_bytes version;    /**< offered version, UTF-8, 0 .. 32 bytes */
    uint64_t build_time;    /**< of the offered version, unix seconds (0: unknown) */
    uint32_t download_size; /**< bytes to transfer (0: unknown) */
    otaup_bytes text;       /**< for the user, UTF-8 */
} otaup_msg_notify;

#define OTAUP_CONSENT_ACCEPT 1u   /**< the user accepts the offered upgrade */
#define OTAUP_CONSENT_DECLINE 2u  /**< the user declines it */
#define OTAUP_CONSENT_REQUEST 3u  /**< the user asks for an upgrade (no offer needed) */
#define OTAUP_CONSENT_POSTPONE 4u /**< ask again after `postpone_min` minutes */

typedef struct otaup_msg_consent {
    uint8_t decision;      /**< OTAUP_CONSENT_* */
    uint16_t postpone_min; /**< POSTPONE only; else 0 */
    otaup_bytes version;   /**< the version consented to (may be empty) */
} otaup_msg_consent;

/* START, COMMIT, ABORT, RESULT ------------------------------------------------- */

#define OTAUP_START_RESUME 0x01u /**< continue the session from the terminal's journal */

typedef struct otaup_msg_start {
    uint64_t session;     /**< non-zero */
    uint8_t flags;        /**< OTAUP_START_* */
    otaup_bytes manifest; /**< manifest bytes (security.md) */
} otaup_msg_start;

#define OTAUP_COMMIT_SWITCH 1u  /**< A/B: boot the other slot */
#define OTAUP_COMMIT_DONE 2u    /**< in-place: mark the update complete */
#define OTAUP_COMMIT_CONFIRM 3u /**< running the new image: make it permanent */

typedef struct otaup_msg_commit {
    uint64_t session;
    uint8_t action; /**< OTAUP_COMMIT_* */
} otaup_msg_commit;

typedef struct otaup_msg_abort {
    uint64_t session; /**< 0: whatever is in progress */
    int32_t reason;   /**< negative otaup code (OTAUP_E_CANCELED: by the user) */
} otaup_msg_abort;

typedef struct otaup_msg_result {
    uint64_t session;
    int32_t code;          /**< 0 success, else a negative otaup code */
    otaup_proto_hash hash; /**< hash of the image now installed (alg 0: none) */
    otaup_bytes version;   /**< version now installed, UTF-8, 0 .. 32 bytes */
} otaup_msg_result;

/* PING, PROGRESS, ACK, NACK -------------------------------------------------------- */

typedef struct otaup_msg_ping {
    uint32_t nonce; /**< echoed by the ACK that answers it */
} otaup_msg_ping;

typedef struct otaup_msg_progress {
    uint32_t step;
    uint32_t total_steps;
    uint32_t bytes_done;
    uint32_t bytes_total;
    uint8_t phase; /**< OTAUP_PHASE_* */
} otaup_msg_progress;

typedef struct otaup_msg_ack {
    uint32_t seq;    /**< highest sequence number executed in order */
    int32_t status;  /**< outcome of frame `seq`: 0, or a negative code */
    uint16_t window; /**< frames the sender may send after `seq` */
    uint32_t echo;   /**< nonce of the PING `seq`, else 0 */
} otaup_msg_ack;

typedef struct otaup_msg_nack {
    uint32_t seq;      /**< the frame refused */
    int32_t error;     /**< negative otaup code */
    uint32_t expected; /**< the next sequence number the receiver will execute */
} otaup_msg_nack;

/* BACKUP / RESTORE ------------------------------------------------------------------ */

#define OTAUP_BACKUP_HASH_ONLY 0x01u /**< send no data: one BACKUP_DATA (LAST, HASH) at offset = region length */

typedef struct otaup_msg_backup_req {
    uint8_t region;     /**< region id from INFO */
    uint8_t flags;      /**< OTAUP_BACKUP_HASH_ONLY; other bits zero */
    uint32_t offset;    /**< first byte wanted, relative to the region */
    uint32_t max_chunk; /**< largest data run per BACKUP_DATA, >= 1 */
} otaup_msg_backup_req;

#define OTAUP_RDATA_LAST 0x01u /**< the last chunk of the region */
#define OTAUP_RDATA_HASH 0x02u /**< carries the hash of the whole region */
#define OTAUP_RDATA_TAG 0x04u  /**< carries a 16-byte seal tag (a sealed chunk: security.md §7) */
#define OTAUP_RDATA_TAG_SIZE 16u

/** BACKUP_DATA and RESTORE_DATA. */
typedef struct otaup_msg_region_data {
    uint8_t region;
    uint8_t flags;           /**< OTAUP_RDATA_* */
    uint32_t offset;         /**< of data[0], relative to the region */
    otaup_proto_hash hash;   /**< flag HASH */
    uint8_t tag[OTAUP_RDATA_TAG_SIZE]; /**< flag TAG */
    otaup_bytes data;
} otaup_msg_region_data;

/* SIG_REQ / SIG_DATA: the installed image's block signature (otaup/image.h) ---- */

/** SIG_REQ payload size. */
#define OTAUP_SIG_REQ_SIZE 12u

typedef struct otaup_msg_sig_req {
    uint32_t block_size; /**< power of two, 64 .. 1 MiB (OTAUP_SIG_BLOCK_MIN .. MAX) */
    uint32_t offset;     /**< first byte wanted of the serialized signature */
    uint32_t max_chunk;  /**< largest data run per SIG_DATA, >= 1 */
} otaup_msg_sig_req;

#define OTAUP_SDATA_LAST 0x01u /**< the signature's last chunk (offset + length = total) */

typedef struct otaup_msg_sig_data {
    uint8_t flags;     /**< OTAUP_SDATA_LAST */
    uint32_t offset;   /**< of data[0] in the serialized signature */
    uint32_t total;    /**< bytes of the whole serialized signature, >= 1 */
    otaup_bytes data;  /**< offset + data.len <= total */
} otaup_msg_sig_data;

/* ---- one type for every message ---------------------------------------------------- */

/** Any message: `type` selects the member of `u`. */
typedef struct otaup_msg {
    uint8_t type; /**< otaup_msg_type */
    union {
        otaup_msg_hello hello;
        otaup_msg_info info;
        otaup_msg_notify notify;
        otaup_msg_consent consent;
        otaup_msg_start start;
        otaup_msg_commit commit;
        otaup_msg_abort abort;
        otaup_msg_result result;
        otaup_msg_ping ping;
        otaup_msg_progress progress;
        otaup_msg_ack ack;
        otaup_msg_nack nack;
        otaup_msg_backup_req backup_req;
        otaup_msg_region_data rdata; /**< BACKUP_DATA, RESTORE_DATA */
        otaup_msg_sig_req sig_req;
        otaup_msg_sig_data sig_data;
        otaup_record rec;            /**< 0x20 .. 0x2A */
        otaup_bytes batch;           /**< BATCH: the record stream slice */
    } u;
} otaup_msg;

/**
 * Decode the (whole, reassembled) payload of a message of `type`. Pointers
 * in *m point into `in` (valid as long as it is). BATCH: m->u.batch is the
 * payload itself (records: otaup_batch_next()). Returns 0, or
 * OTAUP_E_INVAL (m NULL, in NULL with len > 0), OTAUP_E_MSG_TYPE, OTAUP_E_MSG_LENGTH
 * (payload too short/long for its fields), OTAUP_E_MSG_FIELD (a value out
 * of range, bad UTF-8, a TLV that breaks a rule), OTAUP_E_FRAME_FLAGS (a
 * reserved bit or byte not zero).
 */
int otaup_msg_decode(uint8_t type, const uint8_t *in, size_t len, otaup_msg *m);

/**
 * Encode the payload of *m into out[0..cap). Returns the payload length,
 * OTAUP_E_BUFFER, or OTAUP_E_INVAL if *m breaks a rule the decoder checks
 * (encoders never produce what decoders refuse).
 */
int otaup_msg_encode(const otaup_msg *m, uint8_t *out, size_t cap);

/**
 * Encode *m as one whole frame (payload written in place, no copy).
 * Returns the frame length, OTAUP_E_BUFFER, OTAUP_E_INVAL, or
 * OTAUP_E_FRAME_OVERSIZE if it does not fit max_frame (use
 * otaup_frag_next() for fragmentable types).
 */
int otaup_msg_encode_frame(const otaup_msg *m, uint8_t flags, uint32_t seq, uint32_t max_frame,
                           uint8_t *out, size_t cap);

/*
 * Per-message functions (what otaup_msg_* dispatch to); same conventions.
 * _encode: returns the payload length written to out[0..cap),
 * OTAUP_E_BUFFER, or OTAUP_E_INVAL (m NULL, or a value its decoder refuses).
 * _decode: *m zeroed, then filled; returns 0, OTAUP_E_INVAL (NULL
 * arguments), OTAUP_E_MSG_LENGTH, OTAUP_E_FRAME_FLAGS or OTAUP_E_MSG_FIELD
 * (docs/protocol.md section 3 names the code of each rule); pointers in
 * *m point into `in`. otaup_region_data_decode() also gives
 * OTAUP_E_MSG_TYPE for a type other than BACKUP_DATA and RESTORE_DATA.
 */
int otaup_hello_encode(const otaup_msg_hello *m, uint8_t *out, size_t cap);
int otaup_hello_decode(const uint8_t *in, size_t len, otaup_msg_hello *m);
int otaup_info_encode(const otaup_msg_info *m, uint8_t *out, size_t cap);
int otaup_info_decode(const uint8_t *in, size_t len, otaup_msg_info *m);
int otaup_notify_encode(const otaup_msg_notify *m, uint8_t *out, size_t cap);
int otaup_notify_decode(const uint8_t *in, size_t len, otaup_msg_notify *m);
int otaup_consent_encode(const otaup_msg_consent *m, uint8_t *out, size_t cap);
int otaup_consent_decode(const uint8_t *in, size_t len, otaup_msg_consent *m);
int otaup_start_encode(const otaup_msg_start *m, uint8_t *out, size_t cap);
int otaup_start_decode(const uint8_t *in, size_t len, otaup_msg_start *m);
int otaup_commit_encode(const otaup_msg_commit *m, uint8_t *out, size_t cap);
int otaup_commit_decode(const uint8_t *in, size_t len, otaup_msg_commit *m);
int otaup_abort_encode(const otaup_msg_abort *m, uint8_t *out, size_t cap);
int otaup_abort_decode(const uint8_t *in, size_t len, otaup_msg_abort *m);
int otaup_result_encode(const otaup_msg_result *m, uint8_t *out, size_t cap);
int otaup_result_decode(const uint8_t *in, size_t len, otaup_msg_result *m);
int otaup_ping_encode(const otaup_msg_ping *m, uint8_t *out, size_t cap);
int otaup_ping_decode(const uint8_t *in, size_t len, otaup_msg_ping *m);
int otaup_progress_encode(const otaup_msg_progress *m, uint8_t *out, size_t cap);
int otaup_progress_decode(const uint8_t *in, size_t len, otaup_msg_progress *m);
int otaup_ack_encode(const otaup_msg_ack *m, uint8_t *out, size_t cap);
int otaup_ack_decode(const uint8_t *in, size_t len, otaup_msg_ack *m);
int otaup_nack_encode(const otaup_msg_nack *m, uint8_t *out, size_t cap);
int otaup_nack_decode(const uint8_t *in, size_t len, otaup_msg_nack *m);
int otaup_backup_req_encode(const otaup_msg_backup_req *m, uint8_t *out, size_t cap);
int otaup_backup_req_decode(const uint8_t *in, size_t len, otaup_msg_backup_req *m);
/** `type`: OTAUP_MSG_BACKUP_DATA or OTAUP_MSG_RESTORE_DATA (TAG on either: a sealed chunk). */
int otaup_region_data_encode(uint8_t type, const otaup_msg_region_data *m, uint8_t *out, size_t cap);
int otaup_region_data_decode(uint8_t type, const uint8_t *in, size_t len, otaup_msg_region_data *m);
int otaup_sig_req_encode(const otaup_msg_sig_req *m, uint8_t *out, size_t cap);
int otaup_sig_req_decode(const uint8_t *in, size_t len, otaup_msg_sig_req *m);
int otaup_sig_data_encode(const otaup_msg_sig_data *m, uint8_t *out, size_t cap);
int otaup_sig_data_decode(const uint8_t *in, size_t len, otaup_msg_sig_data *m);

/**
 * Iterate over the records of a BATCH payload that holds whole records
 * (flags without MORE/CONT). *pos starts at 0. Returns 1 with *rec
 * decoded, 0 at the end, or a negative error: OTAUP_E_MSG_LENGTH for a
 * record cut at the end of the payload, else otaup_record_decode()'s
 * (OTAUP_E_MSG_TYPE, OTAUP_E_MSG_FIELD, OTAUP_E_MSG_LENGTH), or
 * OTAUP_E_INVAL (NULL arguments, *pos > len). rec->data points into
 * `payload`. BATCH frames whose records span frames go through an
 * otaup_recparser instead.
 */
int otaup_batch_next(const uint8_t *payload, size_t len, size_t *pos, otaup_record *rec);

/** 1 if in[0..len) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int otaup_utf8_valid(const uint8_t *in, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_PROTO_H */
