/*
 * Protocol updater of the otaup test firmware: the otaup applier
 * (otaup/apply.h) speaks the protocol with an otaup server over the UART
 * (HELLO/INFO, START, records and BATCH, BACKUP/RESTORE of the two
 * user-data regions, COMMIT/RESULT) and updates the application slot in
 * place. Everything here and everything it calls runs from RAM (fw.ld,
 * OTAUP_RAMFUNC).
 *
 * The work area is static and sized at compile time with
 * OTAUP_APPLY_WORK_SIZE(): frames of MAX_FRAME bytes, messages (the START
 * manifest) of MAX_MSG bytes, staging STAGING bytes, MAX_OPS deferred
 * records, inflate window WBITS.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "otaup/apply.h"
#include "otaup/error.h"

#ifndef STAGING
#define STAGING 4096u
#endif
#ifndef WBITS
#define WBITS 11u
#endif
#ifndef MAX_OPS
#define MAX_OPS 32u
#endif
#ifndef MAX_FRAME
#define MAX_FRAME 256u
#endif
#ifndef MAX_MSG
#define MAX_MSG 512u
#endif

/* DWT cycle counter of the Cortex-M4 at 168 MHz: a wrapping millisecond clock. */
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

OTAUP_RAMFUNC static uint32_t clock_ms(void *ctx)
{
    (void)ctx;
    return DWT_CYCCNT / 168000u;
}

OTAUP_RAMFUNC static int link_send(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    board_uart_send(buf, len);
    return (int)len;
}

OTAUP_RAMFUNC static int link_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    (void)ctx;
    return (int)board_uart_recv(buf, cap, timeout_ms * 1000u);
}

static otaup_flash g_flash;
static otaup_apply g_apply;
static uint8_t g_work[OTAUP_APPLY_WORK_SIZE(MAX_FRAME, MAX_MSG, STAGING, MAX_OPS, WBITS)]
    __attribute__((aligned(8)));

int updater_run(uint32_t session, uint64_t delta_id);

/* The configuration lives on the stack only while otaup_apply_init copies
 * it (noinline: not in updater_run's frame during the whole update). */
__attribute__((noinline)) OTAUP_RAMFUNC static int updater_init(void)
{
    otaup_apply_config c;
    board_flash(&g_flash);
    memset(&c, 0, sizeof c);
    c.flash = &g_flash;
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = WBITS;
    c.max_ops = MAX_OPS;
    c.slots[0].addr = FW_SLOT_ADDR;
    c.slots[0].len = FW_SLOT_LEN;
    c.scratch.addr = FW_SCRATCH_ADDR;
    c.scratch.len = FW_SCRATCH_LEN;
    c.journal.addr = FW_JOURNAL_ADDR;
    c.journal.len = FW_JOURNAL_LEN;
    c.updater.addr = FW_BOOT_ADDR;
    c.updater.len = FW_BOOT_LEN;
    c.regions[0].id = 1;
    c.regions[0].flags = OTAUP_REGION_PERSONAL;
    c.regions[0].addr = FW_USER1_ADDR;
    c.regions[0].len = FW_USER1_LEN;
    c.regions[1].id = 2;
    c.regions[1].flags = OTAUP_REGION_PERSONAL;
    c.regions[1].addr = FW_USER2_ADDR;
    c.regions[1].len = FW_USER2_LEN;
    c.nregions = 2;
    c.staging_size = STAGING;
    c.max_frame = MAX_FRAME;
    c.max_msg = MAX_MSG;
    c.link.send = link_send;
    c.link.recv = link_recv;
    c.now_ms = clock_ms;
    c.id.terminal_id = "F4-000001";
    c.id.model = "otaup-f4-demo";
    c.id.sw_version = "1.0.0";
    c.id.build_time = 1768003200u;
    c.id.image_size = FW_SLOT_LEN;
    c.work = g_work;
    c.work_size = sizeof g_work;
    return otaup_apply_init(&g_apply, &c);
}

OTAUP_RAMFUNC int updater_run(uint32_t session, uint64_t delta_id)
{
    int rc;
    (void)session; /* the server starts (or resumes) the session */
    (void)delta_id;
    rc = updater_init();
    if (rc != 0) {
        return rc;
    }
    return otaup_apply_run(&g_apply, 30000u);
}
