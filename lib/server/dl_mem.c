/*
 * Large transient buffers of the planner (index, work data, simulation):
 * on Linux they ask for transparent huge pages, so that touching them
 * costs a few page faults instead of one per 4 KiB (each fault costs tens
 * of microseconds on a virtual machine; docs/delta-format.md, "Delta
 * engine"). Elsewhere they are plain malloc/calloc.
 */
#define _DEFAULT_SOURCE 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "server/dl_int.h"

#define HUGE_MIN ((size_t)256 << 10)
#define HUGE_PAGE ((uintptr_t)2 << 20)

void dl_mem_hint(void *p, size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p != NULL && n >= HUGE_MIN) {
        uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1u) & ~(HUGE_PAGE - 1u);
        uintptr_t e = ((uintptr_t)p + n) & ~(HUGE_PAGE - 1u);
        if (e > a) {
            (void)madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only: failure changes nothing */
        }
    }
#else
    (void)p;
    (void)n;
#endif
}

void *dl_malloc_big(size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (n >= HUGE_MIN && n <= SIZE_MAX - HUGE_PAGE) {
        /* whole huge pages: the rounding costs address space, not memory */
        void *p = NULL;
        size_t r = (n + HUGE_PAGE - 1u) & ~(size_t)(HUGE_PAGE - 1u);
        if (posix_memalign(&p, HUGE_PAGE, r) == 0) {
            dl_mem_hint(p, r);
            return p;
        }
    }
#endif
    return malloc(n);
}

void *dl_calloc_big(size_t n)
{
    void *p;
    if (n < HUGE_MIN) {
        return calloc(n, 1);
    }
    p = dl_malloc_big(n);
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}
