/*
 * Board support of the otaup test firmware: an STM32F4-style flash
 * controller (non-uniform sectors 4 x 16, 1 x 64, 7 x 128 KiB) and a
 * USART1-style polled UART. Runs from RAM (fw.ld routes this object into
 * .ramfunc), so that an in-place update never executes the flash it
 * rewrites.
 */
#include <string.h>

#include "board.h"
#include "otaup/error.h"

/* ---- flash: STM32F4-style controller registers ----------------------- */
#define FLASH_R ((volatile uint32_t *)0x40023C00u)
#define F_ACR 0
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
#define ACR_DCEN (1u << 10)
#define ACR_DCRST (1u << 12)

/* ---- watchdog: an STM32-style independent watchdog (IWDG) ------------ */
#define IWDG_KR (*(volatile uint32_t *)0x40003000u)

/* Reload the watchdog. otaup has no watchdog call of its own: the long
 * waits are in these callbacks (a 128 KiB sector erase takes seconds), so
 * each wait loop reloads it (docs/porting.md, "Watchdog"). Harmless while
 * the watchdog is not started. */
OTAUP_RAMFUNC void board_watchdog_kick(void)
{
    IWDG_KR = 0xAAAAu;
}

OTAUP_RAMFUNC static int f_wait(void)
{
    uint32_t n = 0;
    while (FLASH_R[F_SR] & SR_BSY) {
        board_watchdog_kick();
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

/* The flash accelerator's data cache may still hold what a range held
 * before an erase or program: reset it (it can be reset only while
 * disabled), so that f_read returns what the flash holds now. */
OTAUP_RAMFUNC static void f_flush_dcache(void)
{
    uint32_t acr = FLASH_R[F_ACR];
    if (acr & ACR_DCEN) {
        FLASH_R[F_ACR] = acr & ~ACR_DCEN;
        FLASH_R[F_ACR] = (acr & ~ACR_DCEN) | ACR_DCRST;
        FLASH_R[F_ACR] = acr & ~ACR_DCEN;
        FLASH_R[F_ACR] = acr;
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
    f_flush_dcache();
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
    f_flush_dcache();
    return rc;
}

OTAUP_RAMFUNC void board_flash(otaup_flash *f)
{
    memset(f, 0, sizeof *f);
    f->read = f_read;
    f->prog = f_prog;
    f->erase = f_erase;
    f->geo.base = 0x08000000u;
    f->geo.write_size = 4;
    f->geo.erased = 0xFF;
    f->geo.nruns = 3;
    f->geo.runs[0].count = 4;
    f->geo.runs[0].size = 16384u;
    f->geo.runs[1].count = 1;
    f->geo.runs[1].size = 65536u;
    f->geo.runs[2].count = 7;
    f->geo.runs[2].size = 131072u;
}

/* ---- link: a UART (USART1-style registers) ---------------------------- */
#define UART_R ((volatile uint32_t *)0x40011000u)
#define U_SR 0
#define U_DR 1
#define U_RXNE (1u << 5)
#define U_TXE (1u << 7)

OTAUP_RAMFUNC size_t board_uart_recv(uint8_t *buf, size_t cap, uint32_t idle)
{
    size_t n = 0;
    uint32_t k = 0;
    while (n < cap && k < idle) {
        board_watchdog_kick();
        if (UART_R[U_SR] & U_RXNE) {
            buf[n++] = (uint8_t)UART_R[U_DR];
            k = 0;
        } else {
            k++;
        }
    }
    return n;
}

OTAUP_RAMFUNC void board_uart_send(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        while (!(UART_R[U_SR] & U_TXE)) {
            board_watchdog_kick();
        }
        UART_R[U_DR] = buf[i];
    }
}
