/*
 * End-to-end harness: the real session driver (with its SQLite registry)
 * and real terminal appliers (otaup_simterm: simulated NOR flash) joined by
 * a simulated link with latency and faults (drop, corrupt, duplicate,
 * delay, disconnect), on a simulated clock. Deterministic for a seed.
 * A terminal whose applier gives the link up (OTAUP_E_RETRIES) drops the
 * connection and connects again, as otaup-term does.
 *
 * Environment: E2E_VERBOSE prints a summary of each session's end;
 * E2E_TRACE every frame put on the link (time, direction, type, seq,
 * size, whether the faults dropped or corrupted it) and the session's
 * state changes.
 */
#ifndef OTAUP_TEST_E2E_H
#define OTAUP_TEST_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simterm.h"

typedef struct e2e_faults {
    unsigned drop_pct, corrupt_pct, dup_pct, delay_pct; /* per frame, both directions */
    unsigned latency_ms;       /* one way (default 50: a 100 ms round trip) */
    unsigned disconnect_every; /* drop the connection after this many server frames of the
                                  transfer (0: never) */
    unsigned disconnects;      /* at most this many times */
    unsigned restart_after;    /* restart the server (registry closed and reopened) after this many
                                  server frames of the transfer (0: never) */
    uint64_t cut_after;        /* power cut after this many flash writes of the upgrade (0: never) */
    int torn;                  /* the cut (or the failed operation) tears the operation */
    uint64_t seed;
    unsigned fail_after;       /* after this many server frames of the transfer the server gives the
                                  session up, as its retransmission limit would: the link drops and
                                  the session is recorded failed (OTAUP_E_RETRIES, returned); the
                                  terminal's journal keeps it (0: never) */
    int fail_in_restore;       /* the same, at the first frame of the restore (user data sent back) */
    int reboot_in_backup;      /* while the terminal sends its backup, the server restarts (registry
                                  closed and reopened) and the terminal reboots (no flash write lost):
                                  the next connection resumes the session without a new offer */
    uint64_t flash_fail_after; /* the terminal's flash reports this write of the upgrade failed
                                  (OTAUP_E_FLASH_PROG/ERASE), power staying on; the later ones
                                  work (0: never) */
    uint64_t read_fault_after; /* the terminal's flash gives this read of the upgrade wrong
                                  (0: never): OTAUP_E_FLASH_READ, or with read_flip one
                                  wrong bit, power staying on; the later ones work */
    int read_flip;
    uint32_t clock_base;       /* non-zero: the terminal's millisecond clock reads this plus the
                                  simulated time since the run began, modulo 2^32 (a clock that
                                  wraps during the run); 0: the simulated time */
} e2e_faults;

typedef struct e2e_report {
    int server_result;       /* result of the last session */
    int server_state;        /* its state */
    unsigned connections;
    unsigned reconnects;     /* link drops */
    unsigned power_cuts;
    unsigned restarts;
    uint64_t ms;             /* simulated time */
    uint64_t run_ms;         /* simulated time this run took */
    uint64_t frames_to_term, frames_dropped;
    otaup_session_stats stats; /* of the session that finished */
    uint64_t stream_sent_total; /* over every session of the run */
    uint64_t retransmits_total; /* server retransmissions over every session */
    uint64_t term_resends;      /* sequenced frames the terminal sent again (a seq it sent before
                                   on the same connection), over every connection */
    uint32_t slot_sectors_erased; /* sectors of the image slot(s) erased at least once */
    uint32_t slot_sectors;        /* sectors of the image slot(s) */
    uint64_t sectors_erased; /* flash statistics of the run (journal, scratch, user data included) */
    uint64_t bytes_programmed;
    uint64_t flash_ops, flash_ops0; /* write operations of the run; counter before it */
    uint64_t flash_reads;    /* read operations of the run from the opening of the upgrade's session */
    uint64_t read_faults;    /* reads of the run that the faults made wrong */
} e2e_report;

typedef struct e2e_world e2e_world;

/* A world with a fresh registry in `dir` (created by the caller). */
e2e_world *e2e_new(const char *dir);
void e2e_free(e2e_world *w);
otaup_registry *e2e_registry(e2e_world *w);
/* Session options used for the next sessions (reg is filled in). */
otaup_session_options *e2e_options(e2e_world *w);
/* Publish a release; returns its id. */
int64_t e2e_release(e2e_world *w, const char *model, const char *version, int64_t build_time, const uint8_t *img,
                    size_t len);

/* Run terminal t through one connection-level scenario until the server's
 * session ends well or badly (and reconnects/resumes as the faults say),
 * or `limit_ms` of simulated time pass. Returns 0 when a session ended
 * with result 0, else the last result (or OTAUP_E_TIMEOUT). */
int e2e_run(e2e_world *w, otaup_simterm *t, const e2e_faults *f, uint64_t limit_ms, e2e_report *rep);

/* Feed raw bytes as a terminal would (garbage, hand-made frames) to a new
 * session; returns the session's result after the bytes and a few polls,
 * and copies up to cap bytes of its answer to out (*out_len). */
int e2e_raw(e2e_world *w, const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

/* Backups the registry holds for terminal `id` (negative: registry error). */
int e2e_backups(e2e_world *w, const char *id);
/* Terminal `id`'s audit log, one "event:detail" line per record, oldest
 * first (a buffer of the world's, overwritten by the next call; records
 * that do not fit in 16000 bytes are left out; NULL on a registry error). */
const char *e2e_audit(e2e_world *w, const char *id);

/* Test images: a v1 of `len` bytes that looks like code, and v2 from it
 * (insertions that shift code, edits, an appended part). */
/* A simulated terminal `id` of model M1 with a slot of `slot` bytes in
 * `layout`, 256-byte frames (many: faults land in the middle), resends
 * every 400 ms, provisioned with img[0..len) as `version` built at
 * `build`. Fails the current test on error. */
otaup_simterm *e2e_terminal(const char *id, uint8_t layout, uint32_t slot, const uint8_t *img, size_t len,
                            const char *version, uint64_t build);

/* Reboot terminal `t` (its boot-time recovery, no link). Fails the
 * current test on error. */
void e2e_boot(otaup_simterm *t);

/* After a reboot, terminal `t` (registry id `id`) runs the image of hash
 * `want` as `version`, its user data intact, no backup kept, and the
 * registry says so. Fails the current test otherwise. */
void e2e_check_runs(e2e_world *w, otaup_simterm *t, const char *id, const uint8_t want[16], const char *version);

void e2e_make_image(uint8_t *img, size_t len, uint64_t seed);
size_t e2e_make_next(const uint8_t *v1, size_t len, uint8_t *v2, size_t cap, uint64_t seed);

#endif
