/*
 * Board support of the otaup test firmware, shared by both updaters: the
 * STM32F4-style flash driver (sectors 4 x 16, 1 x 64, 7 x 128 KiB), a
 * polled UART and the watchdog reload their wait loops call. Everything runs from RAM (fw.ld, OTAUP_RAMFUNC).
 */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/flash.h"

/* Flash layout (fw.ld). */
#define FW_BOOT_ADDR 0x08000000u     /* boot stub + updater, never written */
#define FW_BOOT_LEN 16384u
#define FW_JOURNAL_ADDR 0x08004000u  /* 2 x 16 KiB */
#define FW_JOURNAL_LEN 32768u
#define FW_USER1_ADDR 0x0800C000u    /* user data: settings */
#define FW_USER1_LEN 16384u
#define FW_USER2_ADDR 0x08010000u    /* user data: log */
#define FW_USER2_LEN 65536u
#define FW_SLOT_ADDR 0x08020000u     /* application slot, updated in place */
#define FW_SLOT_LEN (6u * 131072u)
#define FW_SCRATCH_ADDR 0x080E0000u  /* one sector as large as the largest slot sector */
#define FW_SCRATCH_LEN 131072u

/** Fill *f with the flash callbacks and geometry. */
void board_flash(otaup_flash *f);
/** Up to cap bytes from the UART; returns early after ~`idle` empty polls. */
size_t board_uart_recv(uint8_t *buf, size_t cap, uint32_t idle);
/** Send n bytes on the UART. */
void board_uart_send(const uint8_t *buf, size_t n);
/** Reload the independent watchdog (called in every wait loop above). */
void board_watchdog_kick(void);

#endif
