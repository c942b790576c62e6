/*
 * Release withdrawal at the edges (docs/server.md, "Withdrawing a
 * release"): what counts as a session in progress.
 *
 * A session resumed after its START went out passes through `prepare`
 * again (the row says so while the server plans the rest of the stream)
 * with the whole stream's size already recorded: it has started, and a
 * withdrawal in that moment must be refused without force, as for any
 * session in progress. A START the terminal refused (its verifier did
 * not trust the key: nothing written, its journal holds no session) is
 * not: a withdrawal then goes through without force. The real session
 * driver and SQLite registry against a real applier on simulated flash
 * (tests/util/e2e.c).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/image.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/sign.h"
#include "otaup/simterm.h"
#include "util/e2e.h"

#define V1_LEN 60000u
#define SLOT (128u * 1024u)

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096];
static size_t v2_len;
static uint8_t h_v2[16];
static int64_t r2;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-wde-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 51);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 52);
    ck_assert_uint_gt(v2_len, 0);
    otaup_hash128(v2, v2_len, h_v2);
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    r2 = e2e_release(w, "M1", "2.0", 2000, v2, v2_len);
    ck_assert_int_gt(r2, 0);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static otaup_simterm *terminal(const char *id)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    o.terminal_id = id;
    o.model = "M1";
    o.layout = OTAUP_LAYOUT_INPLACE;
    o.slot_size = SLOT;
    o.retransmit_ms = 400;
    o.max_frame = 256;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, v1, sizeof v1, "1.0", 1000), 0);
    return t;
}

/* what an operator sees while the server plans a resumed session */
struct seen {
    int calls;
    int withdraw_rc;
    int sessions;
    char state[32];
    uint64_t bytes_total;
};

static int withdraw_in_prepare(otaup_registry *r, const otaup_reg_terminal *t, const otaup_reg_release *rel,
                               const uint8_t *sig, size_t sig_len, otaup_blob *delta, uint32_t *body_off,
                               void *payload)
{
    struct seen *c = payload;
    otaup_reg_session rs;
    if (c->calls++ == 0) {
        ck_assert_int_eq(otaup_registry_session_get(r, t->id, &rs), 0);
        snprintf(c->state, sizeof c->state, "%s", rs.state);
        c->bytes_total = rs.bytes_total;
        c->sessions = otaup_registry_release_sessions(r, rel->id, NULL, NULL);
        c->withdraw_rc = otaup_registry_release_withdraw(r, rel->id, 0, "while it resumes", NULL);
    }
    return otaup_session_default_delta(r, t, rel, sig, sig_len, delta, body_off, NULL);
}

/* In place, given up half way (the old image is gone), then resumed: while
 * the resumed session is planned (row `prepare`) the operator withdraws
 * 2.0 without force. It must be refused (the terminal will install it),
 * and the terminal still finishes 2.0. */
START_TEST(test_resumed_prepare_is_in_progress)
{
    otaup_simterm *t;
    e2e_report rep;
    e2e_faults f;
    struct seen c;
    otaup_reg_release rr;
    uint8_t h[16];
    memset(&f, 0, sizeof f);
    memset(&c, 0, sizeof c);
    f.fail_after = 10;
    t = terminal("P1");
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    e2e_options(w)->delta = withdraw_in_prepare;
    e2e_options(w)->delta_payload = &c;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_int_ge(c.calls, 1);
    ck_assert_str_eq(c.state, "prepare");
    ck_assert_uint_gt(c.bytes_total, 0);
    ck_assert_int_eq(c.sessions, 1);
    ck_assert_int_eq(c.withdraw_rc, OTAUP_E_IN_PROGRESS);
    ck_assert_int_eq(otaup_registry_release_get(e2e_registry(w), r2, &rr, NULL), 0);
    ck_assert_int_eq(rr.withdrawn, 0); /* refused: nothing changed */
    e2e_boot(t);
    otaup_simterm_image_hash(t, h);
    ck_assert_int_eq(memcmp(h, h_v2, 16), 0);
    ck_assert_int_eq(otaup_simterm_user_intact(t), 1);
    otaup_simterm_free(t);
}
END_TEST

/* The row alone: `prepare` or `backup` with a stream size recorded is a
 * session whose START went out; without one it is not. */
START_TEST(test_started_by_row)
{
    otaup_reg_session s;
    memset(&s, 0, sizeof s);
    snprintf(s.state, sizeof s.state, "prepare");
    ck_assert_int_eq(otaup_registry_session_started(&s), 0);
    s.bytes_total = 4096;
    ck_assert_int_eq(otaup_registry_session_started(&s), 1);
    snprintf(s.state, sizeof s.state, "backup");
    ck_assert_int_eq(otaup_registry_session_started(&s), 1);
    s.bytes_total = 0;
    ck_assert_int_eq(otaup_registry_session_started(&s), 0);
    snprintf(s.state, sizeof s.state, "done");
    s.bytes_total = 4096;
    ck_assert_int_eq(otaup_registry_session_started(&s), 0);
}
END_TEST

#if OTAUP_HAVE_MBEDTLS
/* A terminal that trusts key B only is sent 2.0 signed with key A: it
 * refuses START before any flash write. That session did not start on it,
 * and withdrawing 2.0 (the likely next step of an operator who signed with
 * the wrong key) needs no force. */
START_TEST(test_refused_start_not_in_progress)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    otaup_key *key_a = NULL, *key_b = NULL;
    otaup_sec_key pub_b;
    otaup_reg_session rs;
    e2e_report rep;
    uint8_t h[16], h1[16];
    memset(&pub_b, 0, sizeof pub_b);
    ck_assert_int_eq(otaup_key_generate(&key_a), 0);
    ck_assert_int_eq(otaup_key_generate(&key_b), 0);
    ck_assert_int_eq(otaup_key_public(key_b, pub_b.pub), 0);
    o.terminal_id = "K1";
    o.model = "M1";
    o.layout = OTAUP_LAYOUT_INPLACE;
    o.slot_size = SLOT;
    o.retransmit_ms = 400;
    o.max_frame = 256;
    o.keys = &pub_b;
    o.nkeys = 1;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, v1, sizeof v1, "1.0", 1000), 0);
    /* first contact: 2.0 is unsigned, the server does not start it */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_UNSIGNED);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 1);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_KEY);
    ck_assert_int_eq(otaup_simterm_refused(t), OTAUP_E_KEY);
    ck_assert_int_eq(otaup_registry_session_get(e2e_registry(w), "K1", &rs), 0);
    ck_assert_str_eq(rs.state, "failed");
    ck_assert_int_eq(otaup_registry_session_started(&rs), 0);
    ck_assert_int_eq(otaup_registry_release_sessions(e2e_registry(w), r2, NULL, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_withdraw(e2e_registry(w), r2, 0, "signed with the wrong key", NULL), 0);
    /* nothing was written: it runs 1.0 and is up to date now */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    e2e_boot(t);
    otaup_simterm_image_hash(t, h);
    otaup_hash128(v1, sizeof v1, h1);
    ck_assert_int_eq(memcmp(h, h1, 16), 0);
    otaup_simterm_free(t);
    otaup_key_free(key_a);
    otaup_key_free(key_b);
}
END_TEST
#endif

static Suite *suite(void)
{
    Suite *s = suite_create("withdraw_edge");
    TCase *tc = tcase_create("in-progress");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resumed_prepare_is_in_progress);
    tcase_add_test(tc, test_started_by_row);
#if OTAUP_HAVE_MBEDTLS
    tcase_add_test(tc, test_refused_start_not_in_progress);
#endif
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
