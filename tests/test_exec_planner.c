/*
 * Power cuts on deltas made by the product's planner (otaup_delta_create):
 * a real Cortex-M pair (the test firmware built as version 1 and 2,
 * tests/vectors/firmware/) and generated pairs with in-place cycles, in
 * place and A/B. Every flash operation is cut (plain and torn), the
 * device resumes, and ends with NEW byte for byte and user data intact.
 * OTAUP_EXHAUSTIVE=1 adds larger generated pairs and second cuts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/delta.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"
#include "util/testplan.h"

#define S 4096u

static int exhaustive(void)
{
    const char *e = getenv("OTAUP_EXHAUSTIVE");
    return e != NULL && *e != '\0' && *e != '0';
}

static uint8_t *load(const char *name, size_t *len)
{
    uint8_t *p = tp_load_vector(name, len);
    ck_assert_msg(p != NULL, "cannot read %s under $OTAUP_VECTORS", name);
    return p;
}

typedef struct pairw {
    otaup_geometry geo;
    th_layout L;
    uint8_t *flash0;      /* device before */
    const uint8_t *img;   /* NEW */
    uint32_t img_len;
    tp_stream s;
} pairw;

/* device: slot(s) of nslot sectors, scratch, journal (2), user data (1) */
static void pair_make(pairw *w, const uint8_t *old, size_t old_len, const uint8_t *img, size_t img_len,
                      uint8_t layout, uint32_t ram)
{
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_delta_header h;
    uint32_t nslot = (uint32_t)((old_len > img_len ? old_len : img_len) + S - 1) / S, at, size;
    const uint8_t *bytes;
    size_t blen;
    memset(w, 0, sizeof *w);
    otaup_geometry_uniform(&w->geo, 0, S, 2 * nslot + 4, 8);
    size = otaup_geometry_size(&w->geo);
    w->L.layout = layout;
    w->L.slot[0].addr = 0;
    w->L.slot[0].len = nslot * S;
    at = nslot * S;
    if (layout == OTAUP_LAYOUT_AB) {
        w->L.slot[1].addr = at;
        w->L.slot[1].len = nslot * S;
        at += nslot * S;
    } else {
        w->L.scratch.addr = at;
        w->L.scratch.len = S;
        at += S;
    }
    w->L.journal.addr = at;
    w->L.journal.len = 2 * S;
    at += 2 * S;
    w->L.user.addr = at;
    w->L.user.len = S;
    w->flash0 = malloc(size);
    memset(w->flash0, 0xFF, size);
    memcpy(w->flash0, old, old_len);
    tp_fill_random(w->flash0 + at, S, 77);
    w->img = img;
    w->img_len = (uint32_t)img_len;
    ck_assert_int_eq(otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION), 0);
    o.geo = w->geo;
    o.layout = layout;
    o.source_addr = 0;
    o.target_addr = layout == OTAUP_LAYOUT_AB ? w->L.slot[1].addr : 0;
    if (layout == OTAUP_LAYOUT_INPLACE) {
        o.scratch_addr = w->L.scratch.addr;
        o.scratch_size = S;
    }
    o.ram = ram;
    o.restart_interval = 2000;
    ck_assert_int_eq(otaup_delta_create(old, old_len, NULL, img, img_len, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &blen);
    ck_assert_int_eq(tp_from_container(bytes, blen, &w->s, &h), 0);
    w->L.staging = h.staging_size;
    w->L.max_ops = h.max_ops;
    w->L.wbits = h.window_bits;
    otaup_delta_free(d);
}

static otaup_simflash *dev(const pairw *w)
{
    otaup_simflash_options o;
    otaup_simflash *s = NULL;
    otaup_simflash_options_init(&o);
    o.geo = w->geo;
    ck_assert_int_eq(otaup_simflash_new(&o, &s), 0);
    ck_assert_int_eq(otaup_simflash_load(s, 0, w->flash0, otaup_geometry_size(&w->geo)), 0);
    return s;
}

static void check_end(otaup_simflash *s, const pairw *w)
{
    const uint8_t *d = otaup_simflash_data(s);
    uint32_t tgt = w->L.layout == OTAUP_LAYOUT_AB ? w->L.slot[1].addr : 0;
    ck_assert_mem_eq(d + tgt, w->img, w->img_len);
    ck_assert_mem_eq(d + w->L.user.addr, w->flash0 + w->L.user.addr, S);
    if (w->L.layout == OTAUP_LAYOUT_AB) {
        ck_assert_mem_eq(d, w->flash0, w->L.slot[0].len);
        ck_assert_int_eq(otaup_journal_boot_slot(otaup_simflash_flash(s), w->L.journal.addr, w->L.journal.len), 1);
    }
}

static long sweep(const pairw *w, int second, const char *name)
{
    otaup_simflash_stats st;
    uint64_t total, n;
    long cases = 0;
    int torn;
    th_result r;
    {
        otaup_simflash *s = dev(w);
        ck_assert_int_eq(th_apply(s, &w->L, &w->s, 512, 5, NULL, &r), 0);
        check_end(s, w);
        otaup_simflash_stats_get(s, &st);
        total = st.ops;
        otaup_simflash_free(s);
    }
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1; n <= total; n++) {
            otaup_simflash *s = dev(w);
            int rc;
            otaup_simflash_cut_after(s, n, torn);
            rc = th_apply(s, &w->L, &w->s, 512, 5, NULL, NULL);
            otaup_simflash_power_on(s);
            if (rc != 0) {
                ck_assert_msg(rc == OTAUP_E_POWER_CUT, "%s: cut %llu: %s", name, (unsigned long long)n,
                              otaup_errname(rc));
                if (second) {
                    otaup_simflash_cut_after(s, 1 + n % 11, (int)(n & 1));
                    rc = th_apply(s, &w->L, &w->s, 512, 5, NULL, NULL);
                    otaup_simflash_power_on(s);
                    ck_assert(rc == 0 || rc == OTAUP_E_POWER_CUT);
                }
                rc = th_apply(s, &w->L, &w->s, 512, 5, NULL, NULL);
                ck_assert_msg(rc == 0, "%s: resume after cut %llu torn %d: %s", name, (unsigned long long)n, torn,
                              otaup_errname(rc));
            }
            check_end(s, w);
            cases++;
            otaup_simflash_free(s);
        }
    }
    fprintf(stderr, "power-cut (planner delta) %s: %llu operations, %ld cut cases\n", name,
            (unsigned long long)total, cases);
    return cases;
}

START_TEST(test_firmware_pair_inplace)
{
    size_t l1, l2;
    uint8_t *v1 = load("firmware/fw-v1.bin", &l1), *v2 = load("firmware/fw-v2.bin", &l2);
    pairw w;
    pair_make(&w, v1, l1, v2, l2, OTAUP_LAYOUT_INPLACE, 16384);
    ck_assert_int_gt(sweep(&w, exhaustive(), "firmware v1->v2 in place"), 50);
    free(w.flash0);
    tp_stream_free(&w.s);
    free(v1);
    free(v2);
}
END_TEST

START_TEST(test_firmware_pair_ab)
{
    size_t l1, l2;
    uint8_t *v1 = load("firmware/fw-v1.bin", &l1), *v2 = load("firmware/fw-v2.bin", &l2);
    pairw w;
    pair_make(&w, v1, l1, v2, l2, OTAUP_LAYOUT_AB, 16384);
    ck_assert_int_gt(sweep(&w, 0, "firmware v1->v2 A/B"), 20);
    free(w.flash0);
    tp_stream_free(&w.s);
    free(v1);
    free(v2);
}
END_TEST

START_TEST(test_generated_cycles)
{
    uint64_t seed;
    int rounds = exhaustive() ? 4 : 1;
    for (seed = 40; seed < 40u + (uint64_t)rounds; seed++) {
        uint32_t len = (exhaustive() ? 10 : 5) * S - 700;
        uint8_t *old = malloc(len), *img = malloc(len);
        pairw w;
        char name[64];
        tp_make_image(old, len, seed);
        tp_make_new(old, img, len, S, seed + 1);
        pair_make(&w, old, len, img, len, OTAUP_LAYOUT_INPLACE, 16384);
        snprintf(name, sizeof name, "generated cycle pair %llu", (unsigned long long)seed);
        ck_assert_int_gt(sweep(&w, 1, name), 20);
        free(w.flash0);
        tp_stream_free(&w.s);
        free(old);
        free(img);
    }
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("exec_planner");
    TCase *tc = tcase_create("planner");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, test_firmware_pair_inplace);
    tcase_add_test(tc, test_firmware_pair_ab);
    tcase_add_test(tc, test_generated_cycles);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
