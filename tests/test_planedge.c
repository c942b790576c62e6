/*
 * The planner and `otaup delta` on flashes that end exactly at 2^32: a
 * slot (in place) or a target (A/B) whose last sector is the last sector
 * of the address space is planned (the planner's checks of the plan
 * simulate it), and the delta applies through the
 * executor, cut after every flash operation (plain and torn) and resumed,
 * to NEW byte for byte with the user data around the slot kept.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/delta.h"
#include "util/testplan.h"
#include "util/runcmd.h"

static char dir[128], cli[512], out[16384];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 60, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static uint8_t *read_all(const char *name, size_t *n)
{
    char path[512];
    FILE *f;
    uint8_t *b;
    long sz;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    sz = ftell(f);
    ck_assert_int_ge(sz, 0);
    rewind(f);
    b = malloc((size_t)sz + 1);
    ck_assert_uint_eq(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-planedge-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* OLD and NEW: NEW = OLD edited in a few places and grown */
static void make_pair(uint8_t *old, uint32_t old_len, uint8_t *nw, uint32_t new_len, unsigned seed)
{
    uint32_t i;
    tp_make_image(old, old_len, seed);
    tp_make_image(nw, new_len, seed + 1);
    memcpy(nw, old, old_len < new_len ? old_len : new_len);
    for (i = 100; i < new_len; i += 977) {
        nw[i] ^= 0x5A;
    }
}

/* ---- the planner: slots whose sectors end at 2^32 -------------------------- */

static void plan_ok(const otaup_delta_options *o, const uint8_t *old, uint32_t old_len, const uint8_t *nw,
                    uint32_t new_len, const char *what)
{
    otaup_delta *d = NULL;
    const uint8_t *bytes;
    size_t blen;
    int rc = otaup_delta_create(old, old_len, NULL, nw, new_len, o, &d);
    (void)nw;
    ck_assert_msg(rc == 0, "%s: otaup_delta_create: %s", what, otaup_strerror(rc));
    bytes = otaup_delta_bytes(d, &blen);
    ck_assert_int_eq(otaup_delta_check(bytes, blen, NULL, NULL), 0);
    otaup_delta_free(d);
}

START_TEST(test_plan_at_top)
{
    /* 8 x 1 KiB and one 8 KiB sector from 0xFFFFC000: the 8 KiB sector
     * ends at 2^32 */
    enum { OLDN = 5001, NEWN = 6001 };
    static uint8_t old[OLDN], nw[NEWN];
    otaup_delta_options o;
    make_pair(old, OLDN, nw, NEWN, 11);
    otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION);
    o.geo.base = 0xFFFFC000u;
    o.geo.write_size = 4;
    o.geo.erased = 0xFF;
    o.geo.nruns = 2;
    o.geo.runs[0].count = 8;
    o.geo.runs[0].size = 1024;
    o.geo.runs[1].count = 1;
    o.geo.runs[1].size = 8192;
    o.ram = 32768;
    /* in place, the slot in the last sector, scratch below it */
    o.layout = OTAUP_LAYOUT_INPLACE;
    o.source_addr = 0xFFFFE000u;
    o.scratch_addr = 0xFFFFC000u;
    o.scratch_size = 0x2000u;
    plan_ok(&o, old, OLDN, nw, NEWN, "in place at the top");
    /* A/B: NEW into the last sector */
    o.layout = OTAUP_LAYOUT_AB;
    o.scratch_addr = o.scratch_size = 0;
    o.source_addr = 0xFFFFC000u;
    o.target_addr = 0xFFFFE000u;
    o.target_given = 1;
    o.ram = 24576;
    plan_ok(&o, nw, NEWN - 2000, nw, NEWN, "A/B to the top");
    /* A/B: OLD in the last sector, NEW below */
    o.source_addr = 0xFFFFE000u;
    o.target_addr = 0xFFFFC000u;
    plan_ok(&o, old, OLDN, nw, NEWN - 5, "A/B from the top");
}
END_TEST

START_TEST(test_plan_cycle_at_top)
{
    /* in place, the slot two 4 KiB sectors up to 2^32 whose contents
     * swap: OLD reads up to the top, the erase of the last sector ends
     * there, and the cycle between the two must be seen and broken (the
     * planner's order lost the erase range ending at 2^32 and failed its
     * own check with OTAUP_E_PLAN) */
    static uint8_t old[8192], nw[8192];
    otaup_delta_options o;
    tp_make_image(old, sizeof old, 41);
    memcpy(nw, old + 4096, 4096);
    memcpy(nw + 4096, old, 4096);
    nw[5] ^= 1;
    nw[5000] ^= 1;
    otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION);
    o.geo.base = 0xFFFFB000u;
    o.geo.write_size = 1;
    o.geo.erased = 0xFF;
    o.geo.nruns = 2;
    o.geo.runs[0].count = 4;
    o.geo.runs[0].size = 1024;
    o.geo.runs[1].count = 4;
    o.geo.runs[1].size = 4096;
    o.layout = OTAUP_LAYOUT_INPLACE;
    o.source_addr = 0xFFFFE000u;
    o.scratch_addr = 0xFFFFC000u;
    o.scratch_size = 0x2000u;
    o.ram = 16384;
    plan_ok(&o, old, sizeof old, nw, sizeof nw, "in-place cycle at the top");
}
END_TEST

/* ---- otaup delta + apply --flash, cut after every operation ------------------ */

/* FLASH: user data from the base, OLD at `soff`; apply with a cut after
 * each operation, resume, check NEW at `toff` and the user data */
static void cut_everywhere(const char *delta_opts, uint32_t soff, uint32_t toff, uint32_t flash_len,
                           uint32_t keep_a, uint32_t keep_b)
{
    enum { OLDN = 3000, NEWN = 4100 };
    static uint8_t old[OLDN], nw[NEWN];
    uint8_t *flash0 = malloc(flash_len), *f;
    size_t n;
    unsigned long ops, k;
    int torn;
    const char *p;
    make_pair(old, OLDN, nw, NEWN, 21);
    tp_fill_random(flash0, flash_len, 5);
    memcpy(flash0 + soff, old, OLDN);
    test_write_file(dir, "old", old, OLDN);
    test_write_file(dir, "new", nw, NEWN);
    test_write_file(dir, "F0", flash0, flash_len);
    ck_assert_msg(run("'%s' delta old new -o p.otd -q %s", cli, delta_opts) == 0, "otaup delta %s: %s",
                  delta_opts, out);
    ck_assert_msg(run("'%s' apply old p.otd -o out && cmp out new", cli) == 0, "%s", out);
    ck_assert_int_eq(run("cp F0 F && '%s' apply --flash F p.otd --stats", cli), 0);
    p = strstr(out, "flash operations:");
    ck_assert_ptr_nonnull(p);
    ops = strtoul(p + strlen("flash operations:"), NULL, 10);
    ck_assert_uint_gt(ops, 0);
    ck_assert_uint_lt(ops, 400);
    for (k = 1; k <= ops; k++) {
        for (torn = 0; torn < 2; torn++) {
            int rc = run("rm -f F.otaup-state; cp F0 F && '%s' apply --flash F p.otd --cut-after %lu %s", cli, k,
                         torn ? "--torn" : "");
            ck_assert_msg(rc == 3 || rc == 0, "cut %lu%s: exit %d: %s", k, torn ? " torn" : "", rc, out);
            rc = run("'%s' apply --flash F p.otd", cli);
            ck_assert_msg(rc == 0, "resume after cut %lu%s: exit %d: %s", k, torn ? " torn" : "", rc, out);
            f = read_all("F", &n);
            ck_assert_uint_ge(n, (size_t)toff + NEWN);
            ck_assert_msg(memcmp(f + toff, nw, NEWN) == 0, "cut %lu%s: target != NEW", k, torn ? " torn" : "");
            ck_assert_msg(memcmp(f, flash0, keep_a) == 0 && memcmp(f + keep_b, flash0 + keep_b, flash_len - keep_b) == 0,
                          "cut %lu%s: user data changed", k, torn ? " torn" : "");
            free(f);
        }
    }
    free(flash0);
}

START_TEST(test_cli_ab_to_top_uniform)
{
    /* uniform 1 KiB sectors from 0xFFFFE000: eight of them, the last
     * ending at 2^32 (otaup delta used to give seven); NEW (5 sectors)
     * at 0xFFFFEC00 fills the flash up to the top; OLD (3000 bytes) and
     * the rest of its last sector stay */
    cut_everywhere("--mode ab --base 0xFFFFE000 --sector-size 1024 --target 0xFFFFEC00 --write-size 4", 0, 0xC00,
                   0x2000, 0xC00, 0x2000);
}
END_TEST

START_TEST(test_cli_inplace_at_top)
{
    /* 4 x 1 KiB of user data, an 8 KiB sector of scratch, the slot in
     * one 8 KiB sector ending at 2^32 */
    cut_everywhere("--sector-map 4x1K,2x8K --base 0xFFFFB000 --source 0xFFFFE000 --scratch 0xFFFFC000 "
                   "--scratch-size 0x2000 --write-size 8",
                   0x3000, 0x3000, 0x5000, 0x1000, 0x5000);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("planedge");
    TCase *tc = tcase_create("top");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_plan_at_top);
    tcase_add_test(tc, test_plan_cycle_at_top);
    tcase_add_test(tc, test_cli_ab_to_top_uniform);
    tcase_add_test(tc, test_cli_inplace_at_top);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
