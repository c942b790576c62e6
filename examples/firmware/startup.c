/*
 * Start-up of the otaup test firmware (Cortex-M4): vector table, copy of
 * .data and of the RAM-resident updater (.ramfunc) from flash to RAM,
 * zeroing of .bss, then main().
 */
#include <stdint.h>

extern uint32_t _stack_top, _data_start, _data_end, _data_load, _bss_start, _bss_end;
extern uint32_t _ramfunc_start, _ramfunc_end, _ramfunc_load;

int main(void);
void reset_handler(void);
void default_handler(void);

void default_handler(void)
{
    for (;;) {
    }
}

void reset_handler(void)
{
    uint32_t *src, *dst;
    for (src = &_data_load, dst = &_data_start; dst < &_data_end;) {
        *dst++ = *src++;
    }
    for (src = &_ramfunc_load, dst = &_ramfunc_start; dst < &_ramfunc_end;) {
        *dst++ = *src++;
    }
    for (dst = &_bss_start; dst < &_bss_end;) {
        *dst++ = 0;
    }
    (void)main();
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)&_stack_top,
    reset_handler,
    default_handler, /* NMI */
    default_handler, /* HardFault */
    default_handler, default_handler, default_handler, 0, 0, 0, 0,
    default_handler, /* SVC */
    default_handler, 0,
    default_handler, /* PendSV */
    default_handler, /* SysTick */
};
