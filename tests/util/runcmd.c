#include "util/runcmd.h"

#include <check.h>
#include <stdio.h>
#include <sys/wait.h>

int test_vrun(const char *dir, unsigned seconds, char *out, size_t cap, const char *fmt, va_list ap)
{
    char cmd[2048], full[2600];
    FILE *p;
    size_t n;
    int st;
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    snprintf(full, sizeof full, "cd '%s' && timeout %u %s 2>&1", dir, seconds, cmd);
    p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
