/*
 * Byte offsets of the delta header's fields (docs/delta-format.md,
 * "Header", format version 2), private to the library: the header codec
 * (delta_read.c) and the protocol applier, which reads the header START
 * carries in its manifest field (apply.c). The sector runs and the check
 * hash follow at H_RUNS: their size depends on the run count.
 */
#ifndef OTAUP_CORE_DELTA_HDR_H
#define OTAUP_CORE_DELTA_HDR_H

enum {
    H_MAGIC = 0, H_VERSION = 8, H_SIZE = 10, H_FLAGS = 12, H_BASE = 16, H_WRITE = 20,
    H_ERASED = 24, H_NRUNS = 25, H_LAYOUT = 26, H_WBITS = 27, H_SOURCE_ADDR = 28,
    H_TARGET_ADDR = 32, H_SCRATCH_ADDR = 36, H_SCRATCH_SIZE = 40, H_STAGING = 44, H_MAX_OPS = 48,
    H_RESERVED = 50, H_STEPS = 52, H_SYNCS = 56, H_SOURCE_SIZE = 60, H_SOURCE_HASH = 64,
    H_TARGET_SIZE = 80, H_TARGET_HASH = 84, H_BODY_LEN = 100, H_BODY_HASH = 104, H_INNER_LEN = 120,
    H_RUNS = 124
};

#endif
