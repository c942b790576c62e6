/*
 * In-place ordering (private): windows, read-after-write dependencies,
 * cycle breaking.
 */
#ifndef OTAUP_SERVER_DL_ORDER_H
#define OTAUP_SERVER_DL_ORDER_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/delta.h"

/* A staging window of the plan (one step once ordered). */
typedef struct dl_win {
    uint32_t addr, len;           /* window */
    uint32_t erase_addr, erase_len;
    uint8_t erases;               /* carries the ERASE of its sectors */
    uint8_t restricted;           /* re-encoded with forbidden sources */
    uint8_t self_read;            /* reads what it erases (scratch) */
    uint8_t needs_reencode;
    uint32_t sec_first, sec_end;  /* target sectors [first, end) */
    int32_t chain_first;          /* first window of its big sector (itself otherwise) */
    uint32_t first_op, nops;      /* records in the work plan */
    uint64_t cost_bytes;          /* bytes turned literal by restrictions */
} dl_win;

/* Old-image offsets [a, b) a window may not read. Sorted, disjoint. */
typedef struct dl_range {
    uint64_t a, b;
} dl_range;

typedef struct dl_forbid {
    dl_range *v;
    size_t n;
} dl_forbid;

typedef struct dl_order_in {
    dl_win *wins;
    uint32_t nwins;
    const otaup_plan_op *ops;
    const otaup_geometry *geo;
    uint32_t source_addr;
    int scratch; /* the executor may stage a self-reading step in scratch */
} dl_order_in;

typedef struct dl_order_result {
    dl_forbid *forbid;       /* per window */
    uint64_t removed_edges;  /* dependencies given up */
    uint64_t removed_weight; /* bytes they read */
} dl_order_result;

/* Order the windows (order[k] = window executed k-th) and compute what each may not read. */
int dl_order(const dl_order_in *in, uint32_t *order, dl_order_result *res);
void dl_order_free(dl_order_result *res, uint32_t nwins);
void dl_mark_self_reads(dl_win *wins, uint32_t nwins, const otaup_plan_op *ops, const otaup_geometry *geo);

#endif
