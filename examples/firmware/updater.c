/*
 * RAM-resident updater of the otaup test firmware: an STM32F4-style
 * flash driver (non-uniform sectors 4 x 16, 1 x 64, 7 x 128 KiB), a UART
 * link, and the otaup executor applying an update stream received over
 * the link to the application slot in place. Everything here and
 * everything it calls runs from RAM (fw.ld, OTAUP_RAMFUNC).
 *
 * Buffers are static and sized at compile time: OTAUP_EXEC_WORK_SIZE()
 * for staging STAGING bytes, MAX_OPS deferred records, window WBITS.
 */
#include <stdint.h>
#include <string.h>

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

/* ---- flash: STM32F4-style controller registers ----------------------- */
#define FLASH_R ((volatile uint32_t *)0x40023C00u)
#define F_KEYR 1
#define F_SR 3
#define F_CR 4
#define SR_BSY (1u << 16)
#define SR_ERR 0xF2u
#define CR_PG (1u << 0)
#define CR_SER (1u << 1)
#define CR_STRT (1u << 16)
#define CR_PSIZE32 (2u << 8)
#define CR_LOCK (1u << 31)

OTAUP_RAMFUNC static int f_wait(void)
{
    uint32_t n = 0;
    while (FLASH_R[F_SR] & SR_BSY) {
        if (++n == 0) {
            return OTAUP_E_TIMEOUT;
        }
    }
    if (FLASH_R[F_SR] & SR_ERR) {
        FLASH_R[F_SR] = SR_ERR;
        return OTAUP_E_FLASH_PROG;
    }
    return 0;
}

OTAUP_RAMFUNC static void f_unlock(void)
{
    if (FLASH_R[F_CR] & CR_LOCK) {
        FLASH_R[F_KEYR] = 0x45670123u;
        FLASH_R[F_KEYR] = 0xCDEF89ABu;
    }
}

OTAUP_RAMFUNC static int f_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    (void)f;
    memcpy(buf, (const void *)(uintptr_t)addr, len);
    return 0;
}

OTAUP_RAMFUNC static int f_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    const uint8_t *p = buf;
    uint32_t i;
    int rc = 0;
    (void)f;
    f_unlock();
    FLASH_R[F_CR] = CR_PG | CR_PSIZE32;
    for (i = 0; i < len && rc == 0; i += 4) {
        uint32_t w = (uint32_t)p[i] | ((uint32_t)p[i + 1] << 8) | ((uint32_t)p[i + 2] << 16) |
                     ((uint32_t)p[i + 3] << 24);
        *(volatile uint32_t *)(uintptr_t)(addr + i) = w;
        rc = f_wait();
    }
    FLASH_R[F_CR] = CR_LOCK;
    return rc;
}

OTAUP_RAMFUNC static int f_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    uint32_t pos = addr, start, size;
    int32_t snb;
    int rc = 0;
    f_unlock();
    while (rc == 0 && pos - addr < len) {
        snb = otaup_geometry_sector_at(&f->geo, pos, &start, &size);
        if (snb < 0) {
            rc = OTAUP_E_FLASH_ERASE;
            break;
        }
        FLASH_R[F_CR] = CR_SER | CR_PSIZE32 | ((uint32_t)snb << 3);
        FLASH_R[F_CR] |= CR_STRT;
        rc = f_wait();
        pos = start + size;
    }
    FLASH_R[F_CR] = CR_LOCK;
    return rc;
}

/* ---- link: a UART (USART1-style registers) ---------------------------- */
#define UART_R ((volatile uint32_t *)0x40011000u)
#define U_SR 0
#define U_DR 1
#define U_RXNE (1u << 5)

OTAUP_RAMFUNC static size_t link_recv(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    uint32_t idle = 0;
    while (n < cap && idle < 100000u) {
        if (UART_R[U_SR] & U_RXNE) {
            buf[n++] = (uint8_t)UART_R[U_DR];
            idle = 0;
        } else {
            idle++;
        }
    }
    return n;
}

OTAUP_RAMFUNC static int on_progress(void *ctx, uint32_t done, uint32_t total)
{
    (void)ctx;
    (void)done;
    (void)total;
    /* a real link would answer PING / send PROGRESS here */
    return 0;
}

/* ---- the updater ----------------------------------------------------- */
static otaup_flash g_flash;
static otaup_journal g_journal;
static otaup_exec g_exec;
static uint8_t g_work[OTAUP_EXEC_WORK_SIZE(STAGING, MAX_OPS, WBITS)] __attribute__((aligned(8)));
static const otaup_region g_windows[1] = { { 0x08020000u, 6u * 131072u } };
static const otaup_region g_protect[3] = {
    { 0x08000000u, 16384u },  /* boot stub */
    { 0x0800C000u, 16384u },  /* user data: settings */
    { 0x08010000u, 65536u },  /* user data: log */
};

OTAUP_RAMFUNC int updater_run(uint32_t session, uint64_t delta_id);

OTAUP_RAMFUNC int updater_run(uint32_t session, uint64_t delta_id)
{
    otaup_exec_config c;
    uint8_t rx[128];
    size_t n;
    int rc;
    memset(&g_flash, 0, sizeof g_flash);
    g_flash.read = f_read;
    g_flash.prog = f_prog;
    g_flash.erase = f_erase;
    g_flash.geo.base = 0x08000000u;
    g_flash.geo.write_size = 4;
    g_flash.geo.erased = 0xFF;
    g_flash.geo.nruns = 3;
    g_flash.geo.runs[0].count = 4;
    g_flash.geo.runs[0].size = 16384u;
    g_flash.geo.runs[1].count = 1;
    g_flash.geo.runs[1].size = 65536u;
    g_flash.geo.runs[2].count = 7;
    g_flash.geo.runs[2].size = 131072u;
    rc = otaup_journal_mount(&g_journal, &g_flash, 0x08004000u, 32768u);
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
    c.scratch.addr = 0x080E0000u;
    c.scratch.len = 131072u;
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
    if (rc < 0) {
        return rc;
    }
    if (rc == 2) {
        return 0;
    }
    /* the host restarts the stream at the last SYNC <= next step */
    for (;;) {
        n = link_recv(rx, sizeof rx);
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
