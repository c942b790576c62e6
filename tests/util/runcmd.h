/*
 * Running a program under test through the shell, as a user would.
 */
#ifndef OTAUP_TEST_RUNCMD_H
#define OTAUP_TEST_RUNCMD_H

#include <stdarg.h>
#include <stddef.h>

/* Run the shell command made from fmt/ap in `dir`, bounded by `timeout(1)`
 * to `seconds`, with stdout and stderr captured into out[0..cap)
 * (NUL-terminated, truncated). Returns its exit code, -1 if it did not
 * exit. Fails the current test if the shell cannot be started. */
int test_vrun(const char *dir, unsigned seconds, char *out, size_t cap, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

#endif
