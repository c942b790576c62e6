/*
 * otaup — software information and block signatures of an image.
 *
 * A terminal describes the software it runs with an otaup_image_info
 * (version, build time, size, whole-image XXH3-128) and, when the server
 * may not hold the exact old image, with a *block signature*: the image
 * cut into blocks of `block_size` bytes (the last one shorter), each with
 * a 64-bit entry: a rolling sum of the block and half of its XXH3-64. The
 * planner can build a delta from a signature alone (otaup/delta.h,
 * `otaup delta --from-sig`): the rolling sum lets it find every old block
 * at any offset of the new image in one pass, the XXH3 half confirms.
 *
 * Serialized signature, format version 2 (all integers little-endian):
 *
 *   off  size  field
 *     0     8  magic "OTAUPSIG"
 *     8     2  format version (OTAUP_SIG_FORMAT_VERSION)
 *    10     2  header size (OTAUP_SIG_HEADER_SIZE)
 *    12     4  flags (0; other values are refused)
 *    16     4  software version
 *    20     4  reserved (0)
 *    24     8  build time (seconds since 1970-01-01 UTC)
 *    32     4  image size in bytes
 *    36     4  block size (power of two, 64 .. 1 MiB)
 *    40    16  XXH3-128 of the whole image (low 64 bits LE, high 64 bits LE)
 *    56     8  XXH3-64 of bytes 0 .. 55
 *    64   8*n  the entry of each block, n = ceil(size / block_size):
 *              rolling sum (u32), then the high 32 bits of its XXH3-64 (u32)
 *  64+8n    8  XXH3-64 of the n*8 bytes of block entries
 * The rolling sum of bytes b[0..len) is r = sum b[i] * M^(len-1-i) mod 2^32
 * with M = OTAUP_SIG_ROLL_MUL: r = r * M + b[i], byte by byte from 0, so
 * that sliding a window of `len` bytes by one byte costs two
 * multiplications: r' = r * M - b[0] * M^len + b[len]. (Version 1 had the
 * full XXH3-64 of each block and no rolling sum; otaup_sig_parse refuses
 * it with OTAUP_E_UNSUPPORTED.) A block matches a window only if both
 * halves agree; docs/delta-format.md ("Deltas from a block signature")
 * gives the chance of a false match and how the terminal catches one.
 *
 * Computing a signature on the terminal (lib/core, C99, no heap) reads
 * the image through the flash callbacks into a caller buffer and hands
 * out the serialized bytes in chunks of any size, so that neither the
 * image nor the signature has to fit in RAM.
 */
#ifndef OTAUP_IMAGE_H
#define OTAUP_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of the serialized signature format. */
#define OTAUP_SIG_FORMAT_VERSION 2u
/** Multiplier of the rolling sum of a block (odd). */
#define OTAUP_SIG_ROLL_MUL 0x9E3779B1u
/** Size of the fixed signature header (format versions 1 and 2). */
#define OTAUP_SIG_HEADER_SIZE 64u
/** Smallest and largest block size of a signature. */
#define OTAUP_SIG_BLOCK_MIN 64u
#define OTAUP_SIG_BLOCK_MAX (1024u * 1024u)
/** Default block size. */
#define OTAUP_SIG_BLOCK_DEFAULT 4096u
/** Serialized size of a signature of `image_size` bytes in blocks of `block_size`. */
#define OTAUP_SIG_SIZE(image_size, block_size) \
    (OTAUP_SIG_HEADER_SIZE + 8u * (((image_size) + (block_size) - 1u) / (block_size)) + 8u)

/** What a terminal reports about the software it runs. */
typedef struct otaup_image_info {
    uint32_t version;    /**< software version (integrator's numbering, compared numerically) */
    uint64_t build_time; /**< build ("compile") time, seconds since 1970-01-01 UTC */
    uint32_t size;       /**< image size in bytes */
    uint32_t block_size; /**< signature block size */
    uint8_t hash[16];    /**< XXH3-128 of the image: low64 LE, then high64 LE */
} otaup_image_info;

/**
 * A parsed signature. `blocks` points at the nblocks * 8 bytes of block
 * hashes inside the buffer given to otaup_sig_parse() (never copied).
 */
typedef struct otaup_sig {
    otaup_image_info info;
    uint32_t nblocks;
    const uint8_t *blocks;
} otaup_sig;

/**
 * XXH3-128 of `len` bytes, stored as 16 bytes (low64 LE, high64 LE), the
 * byte form used in signatures, delta headers and VERIFY records.
 */
void otaup_hash128(const void *data, size_t len, uint8_t out[16]);

/** XXH3-64 of `len` bytes (the step and block hash). */
uint64_t otaup_hash64(const void *data, size_t len);

/**
 * Parse and check a serialized signature in[0..len) without copying:
 * magic, version, header size, flags, block size, block count against
 * the image size, both check hashes and the exact total length.
 * Returns 0, or OTAUP_E_SIG_FORMAT (malformed, damaged or truncated),
 * OTAUP_E_UNSUPPORTED (format version 1, from a terminal built before the
 * rolling sum, or a newer version), OTAUP_E_INVAL (NULL).
 */
int otaup_sig_parse(const uint8_t *in, size_t len, otaup_sig *sig);

/** Entry of block i: rolling sum in the low 32 bits, XXH3-64 high half in
 * the high 32 bits (0 if i is out of range). */
uint64_t otaup_sig_block_hash(const otaup_sig *sig, uint32_t i);

/** The signature entry of `len` bytes (what otaup_sig_block_hash gives for a block holding them). */
uint64_t otaup_sig_entry(const void *data, size_t len);

/** The rolling sum of `len` bytes (the low half of their entry). */
uint32_t otaup_sig_roll(const void *data, size_t len);

/**
 * Serialize the 64-byte signature header for *info and `nblocks` blocks
 * into out[0..OTAUP_SIG_HEADER_SIZE). Returns OTAUP_SIG_HEADER_SIZE,
 * OTAUP_E_INVAL (NULL, or a block size not a power of two in range) or
 * OTAUP_E_BUFFER (cap below OTAUP_SIG_HEADER_SIZE).
 */
int otaup_sig_header_encode(const otaup_image_info *info, uint8_t *out, size_t cap);

/**
 * Server side (lib/server): the serialized signature of an image in
 * memory. *out is malloc'd (release with free()) and holds *out_len bytes.
 * Returns 0, OTAUP_E_INVAL (block size not a power of two in range, image
 * larger than 4 GiB - 1) or OTAUP_E_NOMEM.
 */
int otaup_sig_create(const uint8_t *img, size_t len, uint32_t version, uint64_t build_time,
                     uint32_t block_size, uint8_t **out, size_t *out_len);

/* ---- computing a signature on the terminal ------------------------------ */

/** Opaque space for one streaming XXH3 state of the library plus alignment slack. */
#define OTAUP_XXH3_STATE_SPACE 640u
/** Opaque space for one streaming state of the terminal's compact XXH3. */
#define OTAUP_SIG_STATE_SPACE 344u

/**
 * Workspace of the streaming signature computation. Put it anywhere
 * (static storage, stack); no heap is used. All fields are private.
 */
typedef struct otaup_sig_calc {
    const otaup_flash *flash;
    uint32_t addr;
    uint8_t *buf;          /* caller's read buffer */
    uint32_t buf_len;
    otaup_image_info info;
    uint32_t nblocks;
    uint32_t pos;          /* serialized bytes handed out so far */
    uint32_t total;        /* serialized size */
    uint32_t block;        /* next block to hash */
    uint8_t pending[16];   /* serialized bytes computed but not yet handed out */
    uint8_t pending_len;
    uint8_t pending_off;
    union {
        uint64_t align;
        unsigned char space[OTAUP_SIG_STATE_SPACE];
    } state[2];            /* XXH3 states: current block, block-hash array */
} otaup_sig_calc;

/**
 * Start computing the signature of the image at flash [addr, addr+info->size),
 * reading through buf[0..buf_len) (any size >= 1; larger is faster).
 * info->version, build_time, size and block_size are inputs; this call
 * reads the whole image once and fills info->hash (XXH3-128).
 * Returns 0 or OTAUP_E_INVAL, OTAUP_E_RANGE (outside the geometry) or
 * the flash read error.
 */
int otaup_sig_calc_begin(otaup_sig_calc *c, const otaup_flash *flash, uint32_t addr,
                         otaup_image_info *info, uint8_t *buf, uint32_t buf_len);

/**
 * Hand out the next serialized signature bytes into out[0..cap) (cap >= 1),
 * reading blocks as needed. Returns the number of bytes written, 0 when the
 * whole signature (OTAUP_SIG_SIZE bytes) has been handed out, OTAUP_E_INVAL,
 * or a flash read error.
 */
int otaup_sig_calc_read(otaup_sig_calc *c, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_IMAGE_H */
