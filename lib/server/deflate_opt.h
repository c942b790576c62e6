/*
 * otaup's raw-deflate encoder (RFC 1951), server side.
 *
 * Produces standard raw deflate streams (no zlib or gzip wrapper) that any
 * inflate decodes, for a given window of 2^window_bits bytes (9..15): no
 * distance ever exceeds the window, so a terminal inflating with
 * inflateInit2(-window_bits) reads every stream. Two kinds of effort:
 *
 *   1, 2  lazy matching over hash chains (1: short chains, fast;
 *         2: long chains, about zlib level 9), block boundaries chosen by
 *         an entropy estimate;
 *   3, 4  near-optimal parsing: every match of every position from a
 *         binary-tree match finder, a shortest path through the costs of
 *         an iterated model of each block's Huffman codes, blocks split
 *         where the statistics change (4: deeper search, more passes,
 *         the split recomputed on the final parse).
 *
 * Every block is written as dynamic, fixed or stored, whichever is the
 * smallest; dynamic headers take the cheapest of the run-length
 * encodings of their code lengths. The design is in docs/deflate.md.
 *
 * Use as a stream: otaup_dfl_new(), otaup_dfl_write() any number of
 * times with a flush mode, take the bytes produced with otaup_dfl_output()
 * / otaup_dfl_consume(), otaup_dfl_free(). Matches reach back across
 * writes and flushes (within the window) until the stream is finished
 * or reset. Not thread-safe per object; objects are independent.
 */
#ifndef OTAUP_SERVER_DEFLATE_OPT_H
#define OTAUP_SERVER_DEFLATE_OPT_H

#include <stddef.h>
#include <stdint.h>

/** Effort levels. */
#define OTAUP_DFL_FAST 1
#define OTAUP_DFL_LAZY 2
#define OTAUP_DFL_OPT 3
#define OTAUP_DFL_BEST 4

/** Flush modes of otaup_dfl_write(). */
enum otaup_dfl_flush {
    /** Buffer the input; compress in large chunks as it accumulates. */
    OTAUP_DFL_NO_FLUSH = 0,
    /**
     * Compress everything given so far and end the current deflate block
     * there (like zlib's Z_BLOCK): the output holds every complete byte;
     * up to 7 bits stay pending until the next block. Not byte-aligned.
     */
    OTAUP_DFL_BLOCK = 1,
    /**
     * As BLOCK, then an empty stored block (00 00 FF FF, like
     * Z_SYNC_FLUSH): the output is byte-aligned and an inflate fed with
     * it has produced every input byte so far. Always written, even when
     * nothing new was given.
     */
    OTAUP_DFL_SYNC = 2,
    /**
     * Compress everything given so far and end the stream with a final
     * block (BFINAL). Further writes fail with OTAUP_E_STATE until
     * otaup_dfl_reset().
     */
    OTAUP_DFL_FINISH = 3
};

typedef struct otaup_dfl otaup_dfl;

/**
 * A new encoder for a raw deflate stream with a window of 2^window_bits
 * bytes (9..15) at the given effort (1..4). Returns NULL on a bad
 * argument or when out of memory.
 */
otaup_dfl *otaup_dfl_new(unsigned window_bits, int effort);

/** Free the encoder (NULL is fine). */
void otaup_dfl_free(otaup_dfl *s);

/** Start a new, independent stream with the same parameters; drops untaken output. */
void otaup_dfl_reset(otaup_dfl *s);

/**
 * Add `len` bytes of input (may be 0) and apply `flush`. Returns 0,
 * OTAUP_E_INVAL (bad flush mode or NULL input with len > 0),
 * OTAUP_E_STATE (stream already finished) or OTAUP_E_NOMEM (the stream
 * is then unusable until reset).
 */
int otaup_dfl_write(otaup_dfl *s, const void *in, size_t len, int flush);

/** The compressed bytes produced and not yet consumed (never NULL for a valid s); *len gets their count. */
const uint8_t *otaup_dfl_output(const otaup_dfl *s, size_t *len);

/** Drop the first n (at most the available) output bytes. */
void otaup_dfl_consume(otaup_dfl *s, size_t n);

/** Input bytes accepted and compressed bytes produced since the stream began. */
uint64_t otaup_dfl_total_in(const otaup_dfl *s);
uint64_t otaup_dfl_total_out(const otaup_dfl *s);

/**
 * The largest stream otaup_dfl_compress() can produce for `len` input
 * bytes (stored blocks plus framing), for sizing buffers.
 */
size_t otaup_dfl_bound(size_t len);

/**
 * One-shot: compress in[0..len) into a complete raw deflate stream (ends
 * with a final block) in a new buffer *out of *out_len bytes (free()).
 * Returns 0, OTAUP_E_INVAL or OTAUP_E_NOMEM.
 */
int otaup_dfl_compress(const void *in, size_t len, unsigned window_bits, int effort, uint8_t **out,
                       size_t *out_len);

#endif /* OTAUP_SERVER_DEFLATE_OPT_H */
