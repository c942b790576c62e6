/*
 * The application of the otaup test firmware: reads a sensor through an
 * ADC, filters it, drives a status LED and reports over the UART. Its
 * version is a build parameter (FW_VERSION=1 or 2): version 2 changes the
 * filter (longer, different coefficients, plus a median stage), the LED
 * patterns and the report format, as a real incremental release would, so
 * that the two builds form a realistic Cortex-M delta pair.
 */
#include <stdint.h>

#ifndef FW_VERSION
#define FW_VERSION 1
#endif

#define ADC_DR (*(volatile uint32_t *)0x4001204Cu)
#define GPIO_ODR (*(volatile uint32_t *)0x40020014u)
#define UART_SR (*(volatile uint32_t *)0x40011000u)
#define UART_DR (*(volatile uint32_t *)0x40011004u)

int updater_run(uint32_t session, uint64_t delta_id);
int app_main(void);

static const char banner[] =
#if FW_VERSION == 1
    "otaup demo sensor node v1.0.0 (build 2026-01-10)\r\n";
#else
    "otaup demo sensor node v2.0.0 (build 2026-03-02) - median filter\r\n";
#endif

#if FW_VERSION == 1
static const int16_t coef[8] = { 3, 9, 21, 31, 31, 21, 9, 3 };
#define NCOEF 8
#define SHIFT 7
#else
static const int16_t coef[12] = { -2, 1, 8, 19, 30, 36, 36, 30, 19, 8, 1, -2 };
#define NCOEF 12
#define SHIFT 8
#endif

static const uint8_t led_patterns[4][8] = {
#if FW_VERSION == 1
    { 1, 0, 1, 0, 1, 0, 1, 0 }, { 1, 1, 0, 0, 1, 1, 0, 0 }, { 1, 1, 1, 1, 0, 0, 0, 0 }, { 1, 0, 0, 0, 0, 0, 0, 0 },
#else
    { 1, 0, 0, 1, 0, 0, 1, 0 }, { 1, 1, 1, 0, 0, 0, 1, 0 }, { 1, 1, 1, 1, 1, 0, 0, 0 }, { 1, 0, 1, 0, 0, 0, 0, 0 },
#endif
};

static int16_t history[NCOEF];
static uint32_t ticks;

static void uart_put(char c)
{
    while (!(UART_SR & (1u << 7))) {
    }
    UART_DR = (uint32_t)(uint8_t)c;
}

static void uart_puts(const char *s)
{
    while (*s) {
        uart_put(*s++);
    }
}

static void uart_dec(int32_t v)
{
    char b[12];
    int i = 0;
    uint32_t u = v < 0 ? (uint32_t)-v : (uint32_t)v;
    if (v < 0) {
        uart_put('-');
    }
    do {
        b[i++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    while (i) {
        uart_put(b[--i]);
    }
}

#if FW_VERSION >= 2
static int16_t median3(int16_t a, int16_t b, int16_t c)
{
    if (a > b) {
        int16_t t = a;
        a = b;
        b = t;
    }
    if (b > c) {
        b = c;
    }
    return a > b ? a : b;
}
#endif

static int32_t filter(int16_t x)
{
    int32_t acc = 0;
    int i;
    for (i = NCOEF - 1; i > 0; i--) {
        history[i] = history[i - 1];
    }
#if FW_VERSION >= 2
    history[0] = median3(x, history[1], history[2]);
#else
    history[0] = x;
#endif
    for (i = 0; i < NCOEF; i++) {
        acc += (int32_t)coef[i] * history[i];
    }
    return acc >> SHIFT;
}

static void report(int32_t v)
{
#if FW_VERSION == 1
    uart_puts("T=");
    uart_dec(v);
    uart_puts("\r\n");
#else
    uart_puts("{\"t\":");
    uart_dec((int32_t)ticks);
    uart_puts(",\"v\":");
    uart_dec(v);
    uart_puts(",\"fw\":2}\r\n");
#endif
}

int app_main(void)
{
    uint32_t mode = 0;
    uart_puts(banner);
    for (;;) {
        int32_t v = filter((int16_t)(ADC_DR & 0xFFFu));
        ticks++;
        GPIO_ODR = led_patterns[mode & 3u][ticks & 7u];
        if ((ticks & 0x3FFu) == 0) {
            report(v);
        }
        if (UART_SR & (1u << 5)) {
            uint8_t cmd = (uint8_t)UART_DR;
            if (cmd == 'm') {
                mode++;
            } else if (cmd == 'u') {
                /* update request: the host then streams the delta body */
                uart_puts("updating\r\n");
                (void)updater_run(1u, 0u);
            }
        }
    }
}
