/*
 * otaup — a compact, portable XXH3 (64- and 128-bit, seed 0, default
 * secret) for the terminal side. Private to the library.
 *
 * The values are bit-identical to xxHash 0.8's XXH3_64bits() and
 * XXH3_128bits() (the formats pin them: STEP and journal window hashes,
 * VERIFY, region and signature hashes); tests/test_xxh3.c compares both
 * against the library for every length 0..4200, large inputs, every split
 * of a stream into two pieces (three for short ones) and every piece size
 * up to 520. Why not the library on the terminal: its inlined
 * XXH3 (vector paths, 64- and 128-bit one-shot and streaming variants)
 * costs about 5 KB of Cortex-M code and a 576-byte state; this one is a
 * fraction of that (docs/porting.md, "Footprint"), at scalar speed.
 *
 * C99, no heap; a state is a plain struct (344 bytes) put anywhere.
 */
#ifndef OTAUP_CORE_XXH3_H
#define OTAUP_CORE_XXH3_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"

/** The accumulator lanes of a long input. */
typedef struct otaup_xxh3_lanes {
    uint64_t acc[8];
    uint32_t stripes; /* stripes accumulated in the current block (0..15) */
} otaup_xxh3_lanes;

/** Streaming state: lanes, input kept back. */
typedef struct otaup_xxh3 {
    otaup_xxh3_lanes l;
    uint64_t total;   /* bytes fed */
    uint32_t nbuf;    /* bytes in buf */
    uint8_t buf[256]; /* unprocessed input; its tail keeps the last stripe consumed */
} otaup_xxh3;

void otaup_xxh3_reset(otaup_xxh3 *s);
void otaup_xxh3_update(otaup_xxh3 *s, const void *data, size_t len);
/** XXH3-64 of everything fed since the reset (the state is unchanged). */
uint64_t otaup_xxh3_digest64(const otaup_xxh3 *s);
/** XXH3-128 of everything fed: out = low64 little-endian, then high64 (VERIFY's order). */
void otaup_xxh3_digest128(const otaup_xxh3 *s, uint8_t out[16]);
/** One-shot XXH3-64 (no state, shallow stack). */
uint64_t otaup_xxh3_64(const void *data, size_t len);

#endif /* OTAUP_CORE_XXH3_H */
