/*
 * The planner's compressor (private, server side): every raw-deflate
 * stream that goes into a delta is made by dl_deflate(), so that the
 * encoder behind it can change in one place.
 */
#ifndef OTAUP_SERVER_DL_DEFLATE_H
#define OTAUP_SERVER_DL_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

/* Levels: 1..9 zlib's; 10..12 near-optimal parsing (deflate_opt.h:
 * 10 effort 3, 11 and 12 effort 4), at any window. */
#define DL_LEVEL_MAX 12

/*
 * Compress in[0..n) into one complete raw-deflate stream (no zlib
 * header, ends with a final block) that inflates with a window of
 * 2^wbits bytes (9..15). cuts[0..ncuts) (ascending input offsets, may be
 * NULL) are places where the content changes kind: the encoder may start
 * a new block there. On success *out (malloc'ed, caller frees) holds
 * *out_len bytes. Returns 0, OTAUP_E_INVAL or OTAUP_E_NOMEM.
 */
int dl_deflate(const uint8_t *in, size_t n, unsigned wbits, int level, const size_t *cuts, size_t ncuts,
               uint8_t **out, size_t *out_len);

#endif /* OTAUP_SERVER_DL_DEFLATE_H */
