/*
 * otaup — operation records.
 *
 * A record is one flash operation or one piece of an update stream. The
 * same bytes are used in three places (docs/design.md, docs/protocol.md,
 * docs/delta-format.md):
 *   - as the payload of a protocol message whose type is the record type
 *     (ERASE, WRITE, COPY, ...), one record per frame;
 *   - inside a BATCH message and in a delta file, as a sequence of
 *     [type u8][body length varint][body];
 *   - inside the decompressed content of DATA records (a compressed
 *     record stream).
 *
 * Integers in bodies are unsigned LEB128 varints of at most 5 bytes
 * (values up to 2^32-1) in their shortest form; a longer encoding is
 * malformed. `src` is stored as zigzag(src - addr) so that nearby copies
 * cost one or two bytes. Hashes are raw bytes (XXH3-64 little-endian).
 *
 * The compact records PIECE and CFILL exist only in the inner stream,
 * inside a step: their target address is the step's cursor and their
 * source is relative to the end of the previous piece's source
 * (docs/delta-format.md, "Compact records").
 *
 * Encoder and decoder: C99, no heap, caller buffers, safe on hostile
 * input; every length is checked before use. Reentrant: no global state;
 * an otaup_recparser or otaup_sparse is used by one thread at a time.
 */
#ifndef OTAUP_RECORD_H
#define OTAUP_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Record types; equal to the protocol message types that carry them. */
typedef enum otaup_rec_type {
    OTAUP_REC_ERASE = 0x20,  /**< erase the sectors covering [addr, addr+len) */
    OTAUP_REC_WRITE = 0x21,  /**< put literal bytes at [addr, addr+len) */
    OTAUP_REC_COPY = 0x22,   /**< put flash bytes [src, src+len) at addr */
    OTAUP_REC_DIFF = 0x23,   /**< put (flash[src+i] + d[i]) mod 256 at addr+i */
    OTAUP_REC_FILL = 0x24,   /**< put `value` at [addr, addr+len) */
    OTAUP_REC_VERIFY = 0x25, /**< check the hash of flash [addr, addr+len) */
    OTAUP_REC_DATA = 0x26,   /**< compressed bytes of the inner record stream */
    OTAUP_REC_STEP = 0x27,   /**< begin step `index`: staging window and its hash */
    OTAUP_REC_END = 0x28,    /**< end step `index`: verify, erase, program, journal */
    OTAUP_REC_BLOB = 0x29,   /**< bytes for the step's deferred WRITE/DIFF records */
    OTAUP_REC_SYNC = 0x2A,   /**< restart point: the next step is `index` */
    /* 0x2B..0x2F: security records and the BATCH message type */
    OTAUP_REC_PIECE = 0x30,  /**< inner stream: bytes of OLD plus sparse differences, then literals */
    OTAUP_REC_CFILL = 0x31   /**< inner stream: a run of one value at the cursor */
} otaup_rec_type;

/** WRITE/DIFF: where the bytes come from. */
#define OTAUP_ENC_INLINE 0u   /**< the record body carries exactly len bytes */
#define OTAUP_ENC_DEFERRED 1u /**< bytes come from the step's BLOB records */

/** STEP flags. */
#define OTAUP_STEP_HASH 0x01u /**< the STEP carries the XXH3-64 of its window */

/** DATA flags. */
#define OTAUP_DATA_RESET 0x01u /**< reset the decompressor before these bytes */

/** Hash algorithms (VERIFY.alg); the value fixes the hash length. */
#define OTAUP_HASH_XXH3_64 1u  /**< 8 bytes, little-endian */
#define OTAUP_HASH_XXH3_128 2u /**< 16 bytes: low64 LE, then high64 LE */
#define OTAUP_HASH_SHA256 3u   /**< 32 bytes */
#define OTAUP_HASH_MAX 32u

/** Largest encoded record header (type + body length + fixed fields). */
#define OTAUP_RECORD_HEAD_MAX 64u

/**
 * A decoded record. Which fields are meaningful depends on `type`
 * (docs/design.md, "Records"). `data` points into the caller's input
 * buffer (never copied); it is valid as long as that buffer is.
 */
typedef struct otaup_record {
    uint8_t type;      /**< otaup_rec_type */
    uint8_t enc;       /**< WRITE, DIFF: OTAUP_ENC_* */
    uint8_t flags;     /**< DATA: OTAUP_DATA_*; STEP: OTAUP_STEP_* */
    uint8_t value;     /**< FILL: the byte value */
    uint8_t alg;       /**< VERIFY: OTAUP_HASH_* */
    uint8_t hash_len;  /**< VERIFY: length of hash[] in use; STEP: 8 or 0 */
    uint32_t index;    /**< STEP, END, SYNC: step number */
    uint32_t addr;     /**< target address */
    uint32_t len;      /**< target length in bytes */
    uint32_t src;      /**< COPY, DIFF: source address (absolute); PIECE: the seek, a signed
                            offset from the source cursor (two's complement) */
    uint32_t lit;      /**< PIECE: literal bytes after the `len` difference bytes */
    uint8_t hash[OTAUP_HASH_MAX]; /**< VERIFY: expected hash; STEP: XXH3-64 LE of the window */
    const uint8_t *data;  /**< inline bytes: WRITE/DIFF (INLINE), DATA, BLOB; PIECE: the sparse
                               differences, then `lit` literal bytes */
    uint32_t data_len;    /**< number of bytes at data */
} otaup_record;

/**
 * Encode the body of *rec (no type byte, no length) into out[0..cap).
 * Returns the body length, OTAUP_E_BUFFER if cap is too small, or
 * OTAUP_E_INVAL if the record is inconsistent (e.g. an INLINE WRITE with
 * data_len != len, an unknown type or hash algorithm, a VERIFY whose
 * hash_len does not match its alg, a range past 2^32), OTAUP_E_RANGE if
 * the body would exceed 2^31 - 16 bytes. The encoding is canonical: a
 * decoded record re-encodes to the same bytes.
 */
int otaup_record_encode_body(const otaup_record *rec, uint8_t *out, size_t cap);

/**
 * Encode [type][body length varint][body] into out[0..cap). Returns the
 * number of bytes written or a negative error as above.
 */
int otaup_record_encode(const otaup_record *rec, uint8_t *out, size_t cap);

/**
 * Decode one body of the given type from in[0..len) (the whole body,
 * nothing more). Returns 0, or OTAUP_E_MSG_TYPE for an unknown type,
 * OTAUP_E_MSG_FIELD / OTAUP_E_MSG_LENGTH for malformed content,
 * OTAUP_E_INVAL (rec NULL, in NULL with len > 0). Types: 0x20..0x2A and
 * the inner stream's PIECE and CFILL. rec->data points into `in`.
 *
 * OTAUP_E_MSG_LENGTH: the body ends inside a field, has bytes after its
 * fields, is longer than its type allows, or an INLINE WRITE/DIFF carries
 * other than `len` bytes. OTAUP_E_MSG_FIELD: a varint that is overlong,
 * not shortest or above 2^32-1, an unknown enc/alg/flag bit, or a range
 * [addr, addr+len) or [src, src+len) that passes 2^32.
 */
int otaup_record_decode_body(uint8_t type, const uint8_t *in, size_t len, otaup_record *rec);

/**
 * Decode one [type][length][body] record from the start of in[0..len).
 * Returns the number of bytes consumed (> 0), OTAUP_E_DELTA_TRUNCATED if
 * `in` ends inside the record, or a decode error as above.
 */
int otaup_record_decode(const uint8_t *in, size_t len, otaup_record *rec);

/* ---- varints (exposed for the other parts' fixed-layout structures) ---- */

/** Encode v as LEB128 into out[0..cap). Returns bytes written (1..5) or OTAUP_E_BUFFER. */
int otaup_varint_put(uint32_t v, uint8_t *out, size_t cap);
/**
 * Decode a shortest-form LEB128 value of at most 5 bytes (<= 2^32-1).
 * Returns bytes consumed, OTAUP_E_DELTA_TRUNCATED if in[0..len) ends
 * first, OTAUP_E_MSG_FIELD if overlong, too large or not shortest form.
 */
int otaup_varint_get(const uint8_t *in, size_t len, uint32_t *v);

/* ---- sparse differences (PIECE) ------------------------------------------- */

/**
 * Decoder of the sparse differences of a PIECE: groups of
 * [token u8: z = token & 31, n = token >> 5][varint: z += 31 + v, if z == 31]
 * [varint: n += 7 + v, if n == 7][n bytes], covering exactly `len` bytes
 * (docs/delta-format.md). Fixed size, no heap; any chunking.
 */
typedef struct otaup_sparse {
    uint32_t len;   /**< bytes the differences cover */
    uint32_t pos;   /**< bytes covered so far */
    uint32_t z, n;  /**< current group: zeros, then given bytes still to come */
    uint32_t acc;   /**< varint being read */
    uint8_t state;
    uint8_t shift;
} otaup_sparse;

/** Start decoding differences that cover `len` bytes. */
void otaup_sparse_init(otaup_sparse *s, uint32_t len);

/**
 * Decode from in[0..n). Each difference is added (mod 256) to out[i],
 * i counted from the start of the covered range (out may be NULL: parse
 * only). Stops after the group that completes `len`: returns the number
 * of bytes consumed (<= n), or OTAUP_E_MSG_FIELD (an empty group, a group
 * that passes `len`, a malformed varint). OTAUP_E_INVAL for bad arguments.
 */
int otaup_sparse_feed(otaup_sparse *s, const uint8_t *in, size_t n, uint8_t *out);

/** 1 once the differences cover their `len` bytes. */
int otaup_sparse_done(const otaup_sparse *s);

/* ---- streaming record parser -------------------------------------------- */

/**
 * Events of the streaming parser. A record whose body carries bytes
 * (INLINE WRITE/DIFF, DATA, BLOB) is delivered as HEAD (fields decoded,
 * rec.data_len = total bytes to come, rec.data = NULL), then one or more
 * BYTES events (rec.data/rec.data_len = the next chunk, pointing into the
 * caller's input), then DONE. Other records give HEAD then DONE at once.
 * Each call returns one event: DONE comes from the call after the HEAD or
 * the last BYTES, and consumes no input. At DONE, rec.data is NULL and
 * rec.data_len is again the record's total byte count.
 */
typedef enum otaup_recparser_event {
    OTAUP_RECP_NEED_INPUT = 0, /**< all input consumed; feed more */
    OTAUP_RECP_HEAD = 1,
    OTAUP_RECP_BYTES = 2,
    OTAUP_RECP_DONE = 3
} otaup_recparser_event;

/**
 * Streaming parser state: fixed size, no heap. Feeds of any size (down to
 * one byte at a time) give the same events as a single feed.
 */
typedef struct otaup_recparser {
    uint8_t head[OTAUP_RECORD_HEAD_MAX]; /**< partial header bytes */
    uint32_t head_len;
    uint32_t body_len;   /**< body length of the current record */
    uint32_t body_seen;  /**< body bytes consumed so far */
    uint32_t data_left;  /**< inline bytes still to deliver */
    uint8_t state;
    uint8_t pending_done;
    otaup_record rec;    /**< the current record */
} otaup_recparser;

/** Reset the parser to expect the start of a record. */
void otaup_recparser_init(otaup_recparser *p);

/**
 * Advance over in[0..len). *consumed receives how many bytes were used.
 * Returns an event (>= 0) with the record in p->rec, or a negative error
 * (OTAUP_E_MSG_TYPE, OTAUP_E_MSG_FIELD, OTAUP_E_MSG_LENGTH); after an
 * error the parser must be re-initialised (until then it returns
 * OTAUP_E_STATE). The parser checks fields as their bytes arrive, so it
 * may report an error before the record's last byte; for a complete
 * record it accepts and rejects exactly what otaup_record_decode() does. Call again with the remaining
 * input until it returns OTAUP_RECP_NEED_INPUT.
 */
int otaup_recparser_feed(otaup_recparser *p, const uint8_t *in, size_t len, size_t *consumed);

/** 1 if the parser is between records (clean end of a stream), else 0. */
int otaup_recparser_idle(const otaup_recparser *p);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_RECORD_H */
