/*
 * Executor-only updater of the otaup test firmware: the otaup executor
 * applies an update stream received over the UART (a delta body, as
 * written by `otaup delta`) to the application slot in place. Everything
 * here and everything it calls runs from RAM (fw.ld, OTAUP_RAMFUNC).
 *
 * Buffers are static and sized at compile time: OTAUP_EXEC_WORK_SIZE()
 * for staging STAGING bytes, MAX_OPS deferred records, window WBITS.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "otaup/error.h"
#include "otaup/exec.h"
#include "otaup/journal.h"

#ifndef STAGING
#define STAGING 4096u
#endif
#ifndef WBITS
#define WBITS 11u
#endif
#ifndef MAX_OPS
#define MAX_OPS 32u
#endif

OTAUP_RAMFUNC static int on_progress(void *ctx, uint32_t done, uint32_t total)
{
    (void)ctx;
    (void)done;
    (void)total;
    /* a real link would answer PING / send PROGRESS here */
    return 0;
}

static otaup_flash g_flash;
static otaup_journal g_journal;
static otaup_exec g_exec;
static uint8_t g_work[OTAUP_EXEC_WORK_SIZE(STAGING, MAX_OPS, WBITS)] __attribute__((aligned(8)));
static const otaup_region g_windows[1] = { { FW_SLOT_ADDR, FW_SLOT_LEN } };
static const otaup_region g_protect[3] = {
    { FW_BOOT_ADDR, FW_BOOT_LEN },
    { FW_USER1_ADDR, FW_USER1_LEN },
    { FW_USER2_ADDR, FW_USER2_LEN },
};

int updater_run(uint32_t session, uint64_t delta_id);

/* The configuration lives on the stack only while otaup_exec_init copies
 * it (noinline: not in updater_run's frame during the whole update). */
__attribute__((noinline)) OTAUP_RAMFUNC static int updater_init(uint32_t session, uint64_t delta_id)
{
    otaup_exec_config c;
    int rc;
    board_flash(&g_flash);
    rc = otaup_journal_mount(&g_journal, &g_flash, FW_JOURNAL_ADDR, FW_JOURNAL_LEN);
    if (rc != 0) {
        return rc;
    }
    memset(&c, 0, sizeof c);
    c.flash = &g_flash;
    c.journal = &g_journal;
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = WBITS;
    c.windows = g_windows;
    c.nwindows = 1;
    c.protect = g_protect;
    c.nprotect = 3;
    c.scratch.addr = FW_SCRATCH_ADDR;
    c.scratch.len = FW_SCRATCH_LEN;
    c.running = g_windows[0];
    c.work = g_work;
    c.work_size = sizeof g_work;
    c.staging_size = STAGING;
    c.max_ops = MAX_OPS;
    c.progress = on_progress;
    rc = otaup_exec_init(&g_exec, &c);
    if (rc == 0) {
        rc = otaup_exec_start(&g_exec, session, delta_id, 0);
    }
    return rc;
}

OTAUP_RAMFUNC int updater_run(uint32_t session, uint64_t delta_id)
{
    uint8_t rx[128];
    size_t n;
    int rc = updater_init(session, delta_id);
    if (rc < 0) {
        return rc;
    }
    if (rc == 2) {
        return 0;
    }
    /* the host restarts the stream at the last SYNC <= next step */
    for (;;) {
        n = board_uart_recv(rx, sizeof rx, 100000u);
        if (n == 0) {
            break;
        }
        rc = otaup_exec_feed(&g_exec, rx, n);
        if (rc != 0) {
            return rc;
        }
    }
    return otaup_exec_finish(&g_exec);
}
