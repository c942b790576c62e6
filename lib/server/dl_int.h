/*
 * Private interfaces of the planner (server side): growable buffers,
 * matching, record encoding, container writing.
 */
#ifndef OTAUP_SERVER_DL_INT_H
#define OTAUP_SERVER_DL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/delta.h"

/* ---- large transient buffers (dl_mem.c) ----------------------------------- */

/* malloc/calloc that ask for huge pages when the buffer is large (free with free()). */
void *dl_malloc_big(size_t n);
void *dl_calloc_big(size_t n);
/* The same advice for a buffer that is not touched yet. */
void dl_mem_hint(void *p, size_t n);

/* ---- growable byte buffer ------------------------------------------------ */

typedef struct dl_buf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} dl_buf;

void dl_buf_free(dl_buf *b);
int dl_buf_reserve(dl_buf *b, size_t extra);
void dl_buf_put(dl_buf *b, const void *p, size_t n);
void dl_buf_byte(dl_buf *b, uint8_t v);
void dl_buf_varint(dl_buf *b, uint32_t v);

/* ---- matching --------------------------------------------------------------- */

/*
 * A cover: new[npos .. npos+len) is encoded against old[opos .. opos+len)
 * (byte-wise difference; equal bytes give zero). Covers are sorted by
 * npos and do not overlap; bytes of NEW outside every cover are literal.
 */
typedef struct dl_cover {
    uint32_t npos, opos, len;
} dl_cover;

typedef struct dl_covers {
    dl_cover *v;
    size_t n, cap;
} dl_covers;

typedef struct dl_match_opts {
    otaup_delta_progress_cb progress;
    void *payload;
} dl_match_opts;

/* Find covers of NEW against OLD (suffix array + approximate extension). */
int dl_match(const uint8_t *old, uint32_t old_len, const uint8_t *new_img, uint32_t new_len,
             const dl_match_opts *mo, dl_covers *out);

/* Covers from a block signature: whole blocks of NEW whose hash equals an OLD block's. */
int dl_match_sig(const otaup_sig *sig, const uint8_t *new_img, uint32_t new_len, dl_covers *out);

int dl_covers_push(dl_covers *c, uint32_t npos, uint32_t opos, uint32_t len);
void dl_covers_free(dl_covers *c);

/* ---- inner record encoding ----------------------------------------------- */

/* A literal run this long is marked as a place where the compressor may start a block. */
#define DL_LIT_RUN_CUT 2048u

typedef struct dl_enc_stats {
    uint64_t control; /* record bytes, without sparse differences and literals */
    uint64_t diff;    /* sparse difference bytes */
    uint64_t lit;     /* literal bytes */
    dl_buf *cuts;     /* (may be NULL) offsets in the stream, as size_t values */
} dl_enc_stats;

/* Append the inner records of one step (STEP, ERASE, PIECE/CFILL..., END)
 * to `out`. The step's put records must follow each other by address.
 * Returns 0, OTAUP_E_PLAN or OTAUP_E_NOMEM. */
int dl_encode_step(dl_buf *out, const otaup_plan *plan, const otaup_plan_step *st, dl_enc_stats *es);

/* Sparse differences of a PIECE (docs/delta-format.md), appended to out. */
void dl_sparse_encode(dl_buf *out, const uint8_t *d, uint32_t len);

/* ---- plan helpers ---------------------------------------------------------- */

int dl_plan_add_step(otaup_plan *p, const otaup_plan_step *st);
int dl_plan_add_op(otaup_plan *p, const otaup_plan_op *op);
int dl_plan_add_data(otaup_plan *p, const uint8_t *data, size_t len, uint32_t *off);

/* Write the container for plan->hdr + steps into *out (compresses). */
int dl_write_container(otaup_plan *plan, uint32_t restart_interval, int level, dl_buf *out);

#endif /* OTAUP_SERVER_DL_INT_H */
