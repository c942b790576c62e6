/*
 * Operator scenarios, end to end on a simulated clock (tests/util/e2e.c:
 * the real session driver and SQLite registry against real appliers on
 * simulated flash): version chains on one terminal (in place and A/B), a
 * release skipped, a release published while a terminal is in the middle
 * of the previous one, sessions resumed after a reboot or a server
 * restart, the progress a session row reports over several connections,
 * and terminals whose reports contradict what the registry knows.
 *
 * Every upgrade is checked on the terminal: its flash holds the release
 * byte for byte (its hash), its identity names the release, its personal
 * data are intact and the registry holds no backup.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simterm.h"
#include "server/session_core.h"
#include "util/e2e.h"

#define V1_LEN 60000u
#define SLOT (128u * 1024u)

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096], v3[V1_LEN + 8192], other[V1_LEN + 3000];
static size_t v2_len, v3_len;
static uint8_t h_v1[16], h_v2[16], h_v3[16];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-scen-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 31);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 32);
    v3_len = e2e_make_next(v2, v2_len, v3, sizeof v3, 33);
    ck_assert_uint_gt(v2_len, 0);
    ck_assert_uint_gt(v3_len, 0);
    e2e_make_image(other, sizeof other, 34);
    otaup_hash128(v1, sizeof v1, h_v1);
    otaup_hash128(v2, v2_len, h_v2);
    otaup_hash128(v3, v3_len, h_v3);
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static otaup_simterm *terminal(const char *id, uint8_t layout, const uint8_t *img, size_t len, const char *version,
                               uint64_t build)
{
    return e2e_terminal(id, layout, SLOT, img, len, version, build);
}

static void check_runs(otaup_simterm *t, const char *id, const uint8_t want[16], const char *version)
{
    e2e_check_runs(w, t, id, want, version);
}

/* A delta provider with a restart point before every step (the default
 * places them every 16 KiB of compressed stream: a resume would start over) */
static int fine_delta(otaup_registry *reg, const otaup_reg_terminal *t, const otaup_reg_release *r,
                      const uint8_t *sig, size_t sig_len, otaup_blob *out, uint32_t *body_off, void *payload)
{
    otaup_reg_release src, dst;
    otaup_blob old = { NULL, 0 }, nw = { NULL, 0 };
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_delta_header h;
    const uint8_t *bytes;
    size_t n;
    (void)sig, (void)sig_len, (void)payload;
    ck_assert_int_eq(otaup_registry_release_by_hash(reg, t->image_hash, &src, &old), 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, r->id, &dst, &nw), 0);
    ck_assert_int_eq(otaup_session_layout_decode(t->layout, t->layout_len, &o, NULL), 0);
    o.restart_interval = 1;
    ck_assert_int_eq(otaup_delta_create(old.data, old.len, NULL, nw.data, nw.len, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &n);
    out->data = malloc(n);
    ck_assert_ptr_nonnull(out->data);
    memcpy(out->data, bytes, n);
    out->len = n;
    otaup_delta_free(d);
    otaup_blob_free(&old);
    otaup_blob_free(&nw);
    return otaup_delta_check(out->data, out->len, &h, body_off);
}

static const uint8_t layouts[2] = { OTAUP_LAYOUT_INPLACE, OTAUP_LAYOUT_AB };

/* v1 -> v2 -> v3 on one terminal, each release published after the last upgrade */
START_TEST(test_chain)
{
    char id[16];
    otaup_simterm *t;
    e2e_report rep;
    snprintf(id, sizeof id, "C%d", _i);
    t = terminal(id, layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v2, "2.0");
    ck_assert_int_gt(e2e_release(w, "M1", "3.0", 3000, v3, v3_len), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v3, "3.0");
    /* and then nothing more to do */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    check_runs(t, id, h_v3, "3.0");
    otaup_simterm_free(t);
}
END_TEST

/* a terminal that missed 2.0 goes from 1.0 straight to 3.0 */
START_TEST(test_skip_a_release)
{
    char id[16];
    otaup_simterm *t;
    e2e_report rep;
    snprintf(id, sizeof id, "S%d", _i);
    ck_assert_int_gt(e2e_release(w, "M1", "3.0", 3000, v3, v3_len), 0);
    t = terminal(id, layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v3, "3.0");
    otaup_simterm_free(t);
}
END_TEST

/* 3.0 is published while the terminal is in the middle of the transfer of
 * 2.0 (the server gave that session up): the session to 2.0 is resumed and
 * finished first, the next connection brings 3.0 */
START_TEST(test_release_published_mid_upgrade)
{
    char id[16];
    otaup_simterm *t;
    e2e_report rep;
    e2e_faults f;
    memset(&f, 0, sizeof f);
    f.fail_after = 6;
    snprintf(id, sizeof id, "P%d", _i);
    t = terminal(id, layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    ck_assert_int_gt(e2e_release(w, "M1", "3.0", 3000, v3, v3_len), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v2, "2.0");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "resume:"));
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v3, "3.0");
    otaup_simterm_free(t);
}
END_TEST

/* The session row's bytes and retransmissions add up over the session's
 * connections (otaupctl status showed the last connection's only, e.g.
 * 0/642 after a resume, and 0 once the transfer was over), and its total
 * is the whole record stream. */
START_TEST(test_status_counts_every_connection)
{
    otaup_simterm *t;
    e2e_report ref, rep;
    e2e_faults f;
    otaup_reg_session rs;
    e2e_options(w)->delta = fine_delta;
    t = terminal("B-ref", OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &ref), 0);
    ck_assert_int_eq(otaup_registry_session_get(e2e_registry(w), "B-ref", &rs), 0);
    ck_assert_uint_eq(rs.bytes_total, ref.stats.stream_bytes);
    ck_assert_uint_eq(rs.bytes_sent, ref.stream_sent_total); /* not 0 after the transfer */
    otaup_simterm_free(t);

    memset(&f, 0, sizeof f);
    f.disconnect_every = 9;
    f.disconnects = 2;
    f.seed = 5;
    t = terminal("B1", OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), 0);
    check_runs(t, "B1", h_v2, "2.0");
    ck_assert_uint_eq(rep.reconnects, 2);
    ck_assert_int_eq(otaup_registry_session_get(e2e_registry(w), "B1", &rs), 0);
    ck_assert_str_eq(rs.state, "done");
    /* every connection's bytes, more than the last one sent */
    ck_assert_uint_eq(rs.bytes_sent, rep.stream_sent_total);
    ck_assert_uint_gt(rs.bytes_sent, rep.stats.stream_sent);
    ck_assert_uint_ge(rs.retransmits, rep.retransmits_total);
    {
        /* the audit's last word says the same */
        char want[64];
        snprintf(want, sizeof want, "now 2.0; %llu stream bytes sent", (unsigned long long)rs.bytes_sent);
        ck_assert_ptr_nonnull(strstr(e2e_audit(w, "B1"), want));
    }
    /* the whole stream, not the rest the last connection sent (the same
     * delta as the reference's, give or take the records a restart point
     * splits differently) */
    ck_assert_uint_gt(rep.stats.resumed_from_step, 0);
    ck_assert_uint_gt(rs.bytes_total, rep.stats.stream_bytes);
    ck_assert_uint_ge(rs.bytes_total + 64, ref.stats.stream_bytes);
    ck_assert_uint_le(rs.bytes_total, ref.stats.stream_bytes + 64);
    e2e_options(w)->delta = NULL;
    otaup_simterm_free(t);
}
END_TEST

/* The server restarts and the terminal reboots while the backup is sent:
 * the next connection resumes the session with no new offer. The terminal
 * must still learn which version it installs (it recorded "unknown" and
 * kept reporting it). */
START_TEST(test_resume_before_start_names_the_version)
{
    char id[16];
    otaup_simterm *t;
    e2e_report rep;
    e2e_faults f;
    memset(&f, 0, sizeof f);
    f.reboot_in_backup = 1;
    snprintf(id, sizeof id, "N%d", _i);
    t = terminal(id, layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), 0);
    ck_assert_uint_eq(rep.restarts, 1);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "resume:"));
    check_runs(t, id, h_v2, "2.0");
    /* and what it reports next is taken as such */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v2, "2.0");
    otaup_simterm_free(t);
}
END_TEST

/* A terminal claims the newest release (version and build time) but
 * reports an image of another size: it does not run that release. The
 * registry recorded the release's hash for it (next to the terminal's own
 * size) and called it up to date; its image is now checked (block
 * signature) and it is given the release it claims. */
START_TEST(test_claim_contradicted_by_size)
{
    otaup_simterm *t = terminal("Z1", OTAUP_LAYOUT_INPLACE, other, sizeof other, "2.0", 2000);
    e2e_report rep;
    ck_assert_uint_ne(sizeof other, v2_len);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "Z1"), "asking its block signature"));
    check_runs(t, "Z1", h_v2, "2.0");
    /* a new release: upgraded from there */
    ck_assert_int_gt(e2e_release(w, "M1", "3.0", 3000, v3, v3_len), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, "Z1", h_v3, "3.0");
    otaup_simterm_free(t);
}
END_TEST

/* A terminal that runs 2.0 but reports 1.0: up to date, and the registry
 * records the release it runs, version included (it kept 1.0 next to 2.0's
 * build time and hash). */
START_TEST(test_runs_release_reports_older)
{
    otaup_simterm *t = terminal("O1", OTAUP_LAYOUT_INPLACE, v2, v2_len, "1.0", 1000);
    e2e_report rep;
    otaup_reg_terminal rt;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_int_eq(otaup_registry_terminal_get(e2e_registry(w), "O1", &rt), 0);
    ck_assert_str_eq(rt.status, "up-to-date");
    ck_assert_str_eq(rt.version, "2.0");
    ck_assert_int_eq(rt.build_time, 2000);
    ck_assert_int_eq(memcmp(rt.image_hash, h_v2, 16), 0);
    otaup_simterm_free(t);
}
END_TEST

/* The same terminal id comes back with another flash map (A/B instead of
 * in place) while the registry still holds its unfinished in-place session
 * (the flash was replaced): it is upgraded for the map it reports. */
START_TEST(test_same_id_new_flash_map)
{
    otaup_simterm *t;
    e2e_report rep;
    e2e_faults f;
    memset(&f, 0, sizeof f);
    f.fail_after = 6;
    t = terminal("M-1", OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    otaup_simterm_free(t);
    t = terminal("M-1", OTAUP_LAYOUT_AB, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, "M-1", h_v2, "2.0");
    otaup_simterm_free(t);
}
END_TEST

/* A downgrade is never offered: a terminal on 2.0 when the newest
 * published is 1.5 (older) stays on 2.0. */
START_TEST(test_no_downgrade)
{
    otaup_simterm *t = terminal("D1", OTAUP_LAYOUT_INPLACE, v2, v2_len, "2.0", 2000);
    e2e_report rep;
    otaup_reg_terminal rt;
    ck_assert_int_gt(e2e_release(w, "M1", "1.5", 1500, v3, v3_len), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    ck_assert_int_eq(otaup_registry_terminal_get(e2e_registry(w), "D1", &rt), 0);
    ck_assert_str_eq(rt.version, "2.0");
    ck_assert_int_eq(memcmp(rt.image_hash, h_v2, 16), 0);
    ck_assert_int_eq(e2e_backups(w, "D1"), 0);
    otaup_simterm_free(t);
}
END_TEST

/* Small sectors (otaup-term --sector-size 512, 256): the simulated
 * terminal's staging buffer was one sector, below the least the planner
 * plans for, and every delta failed with OTAUP_E_LIMIT after the backup.
 * Now they upgrade, in place (a scratch area of several sectors) and A/B. */
START_TEST(test_small_sectors)
{
    static const uint32_t sizes[2] = { 512, 256 };
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    e2e_report rep;
    char id[16];
    snprintf(id, sizeof id, "SS%d", _i);
    o.terminal_id = id;
    o.model = "M1";
    o.layout = layouts[_i % 2];
    o.slot_size = SLOT;
    o.sector_size = sizes[_i / 2];
    o.write_size = 8;
    o.max_frame = 512;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, v1, sizeof v1, "1.0", 1000), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v2, "2.0");
    otaup_simterm_free(t);
}
END_TEST

/* A terminal whose staging buffer is below the planner's least: the
 * session fails before anything is sent and says which resource (it said
 * only "delta needs more resources than allowed"). */
START_TEST(test_staging_too_small_named)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    e2e_report rep;
    o.terminal_id = "ST1";
    o.model = "M1";
    o.slot_size = SLOT;
    o.sector_size = 512;
    o.staging = 512;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, v1, sizeof v1, "1.0", 1000), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_LIMIT);
    ck_assert_uint_eq(rep.stream_sent_total, 0);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "ST1"), "staging buffer is 512 bytes, the planner needs at least 1024"));
    otaup_simterm_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("scen");
    TCase *tc = tcase_create("scenarios");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_chain, 0, 2);
    tcase_add_loop_test(tc, test_skip_a_release, 0, 2);
    tcase_add_loop_test(tc, test_release_published_mid_upgrade, 0, 2);
    tcase_add_test(tc, test_status_counts_every_connection);
    tcase_add_loop_test(tc, test_resume_before_start_names_the_version, 0, 2);
    tcase_add_test(tc, test_claim_contradicted_by_size);
    tcase_add_test(tc, test_runs_release_reports_older);
    tcase_add_test(tc, test_same_id_new_flash_map);
    tcase_add_test(tc, test_no_downgrade);
    tcase_add_loop_test(tc, test_small_sectors, 0, 4);
    tcase_add_test(tc, test_staging_too_small_named);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *r = srunner_create(suite());
    int failed;
    srunner_run_all(r, CK_NORMAL);
    failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
