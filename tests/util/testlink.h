/*
 * Test-side server and lossy link for the applier tests: a small server
 * that speaks the protocol to an otaup_apply over an in-memory link that
 * drops, corrupts, duplicates and reorders frames and can disconnect;
 * stop-and-wait with bounded retransmissions; resumes from the INFO
 * RESUME state after a disconnect.
 */
#ifndef OTAUP_TEST_TESTLINK_H
#define OTAUP_TEST_TESTLINK_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/apply.h"
#include "util/testplan.h"

typedef struct tl_faults {
    unsigned drop_pct, corrupt_pct, dup_pct, reorder_pct; /* per frame, both directions */
    unsigned disconnect_at;  /* disconnect after this many server frames (0: never) */
    unsigned disconnects;    /* how many times */
    uint64_t seed;
} tl_faults;

typedef struct tl_report {
    int result;              /* the terminal's RESULT code (or a harness error) */
    unsigned server_frames;  /* sequenced frames the server sent (first transmissions) */
    unsigned retransmits;    /* server retransmissions */
    unsigned max_tries;      /* most retransmissions of one frame */
    unsigned nacks;          /* NACKs received by the server */
    unsigned connections;
    unsigned resumes;        /* STARTs with RESUME */
    uint64_t ticks;          /* simulated milliseconds */
    uint8_t backup[4096];    /* region 1 as backed up */
    uint32_t backup_len;
} tl_report;

/* Run one upgrade: ap must be initialised (its link.send and now_ms point
 * at tl_* functions through tl_bind()). body/restarts come from tp_plan. */
typedef struct tl_ctx tl_ctx;
tl_ctx *tl_new(const tl_faults *f);
void tl_free(tl_ctx *t);
/* fills the link and clock fields of cfg */
void tl_bind(tl_ctx *t, otaup_apply_config *cfg);
int tl_run(tl_ctx *t, otaup_apply *ap, const tp_stream *s, uint64_t session, int do_backup, tl_report *rep);
/* START carries these bytes as its manifest (default: none); they must outlive tl_run */
void tl_set_manifest(tl_ctx *t, const uint8_t *m, size_t len);

#endif
