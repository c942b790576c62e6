/*
 * Signed upgrades end to end (docs/security.md §5.1, docs/server.md
 * "Signed releases"), in one process on a simulated clock: the real
 * session driver and SQLite registry against real appliers on simulated
 * NOR flash (otaup_simterm) with the verifier installed and trusted keys
 * built in. Every refusal is proven on the simulated flash's operation
 * log: not one erase or program.
 *
 *  - a release signed at publication (otaup_session_sign_release, what
 *    `otaupctl release add --sign` runs), delivered by a server that holds
 *    no key, verified by the terminal, which takes over the release's
 *    security counter;
 *  - a terminal that trusts another key: refused before any flash
 *    operation, the session fails cleanly, the backup is kept, the audit
 *    log says why;
 *  - an older signed release replayed in a second session (a lower
 *    security counter, a new terminal object on the same flash file):
 *    refused (anti-rollback);
 *  - an unsigned release: the server says it cannot send one (and
 *    deletes the backup it took: nothing was written); a rogue
 *    server that sends it anyway is refused by the terminal itself;
 *  - an image the registry does not know (planned from the block
 *    signature): signed on demand with the daemon's key and the SHA-256
 *    the terminal reported; without a key, a clear refusal;
 *  - a power cut in the middle of a signed upgrade: it resumes under the
 *    same manifest and completes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"
#include "otaup/simterm.h"
#include "util/e2e.h"

#if OTAUP_HAVE_MBEDTLS

#define V1_LEN 64000u
#define SLOT (96u * 1024u)

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096];
static size_t v2_len;
static uint8_t h_v1[16], h_v2[16];
static otaup_key *key_a, *key_b;
static otaup_sec_key pub_a, pub_b;
static uint8_t id_a[OTAUP_KEY_ID_LEN];

static void setup(void)
{
    otaup_crypto c;
    snprintf(dir, sizeof dir, "/tmp/otaup-e2esec-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 31);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 32);
    ck_assert_uint_gt(v2_len, 0);
    otaup_hash128(v1, sizeof v1, h_v1);
    otaup_hash128(v2, v2_len, h_v2);
    ck_assert_int_eq(otaup_key_generate(&key_a), 0);
    ck_assert_int_eq(otaup_key_generate(&key_b), 0);
    ck_assert_int_eq(otaup_key_public(key_a, pub_a.pub), 0);
    ck_assert_int_eq(otaup_key_public(key_b, pub_b.pub), 0);
    ck_assert_int_eq(otaup_crypto_mbedtls(&c), 0);
    ck_assert_int_eq(otaup_key_id(&c, pub_a.pub, id_a), 0);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    otaup_key_free(key_a);
    otaup_key_free(key_b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int64_t release_flags(const char *version, int64_t build, const uint8_t *img, size_t len, uint32_t counter,
                             unsigned flags)
{
    otaup_reg_release r;
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "%s", version);
    r.build_time = build;
    r.security_counter = counter;
    ck_assert_int_eq(otaup_registry_release_publish(e2e_registry(w), &r, img, len, flags, NULL), 0);
    return r.id;
}

static int64_t release(const char *version, int64_t build, const uint8_t *img, size_t len, uint32_t counter)
{
    return release_flags(version, build, img, len, counter, 0);
}

/* A terminal that trusts `key` (NULL: no verifier), its flash in a file of dir. */
static otaup_simterm *terminal(const char *id, const otaup_sec_key *key, const uint8_t *img, size_t len,
                               const char *version, uint64_t build)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    char path[256];
    snprintf(path, sizeof path, "%s/%s.flash", dir, id);
    o.terminal_id = id;
    o.model = "M1";
    o.slot_size = SLOT;
    o.retransmit_ms = 400;
    o.max_frame = 512;
    o.flash_path = path;
    o.keys = key;
    o.nkeys = key != NULL ? 1 : 0;
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, img, len, version, build), 0);
    return t;
}

/* The same terminal after a power-off: a new object on the same flash file (identity from FILE.meta). */
static otaup_simterm *reopen(otaup_simterm *t, const char *id, const otaup_sec_key *key)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *n = NULL;
    char path[256];
    otaup_simterm_free(t);
    snprintf(path, sizeof path, "%s/%s.flash", dir, id);
    o.slot_size = SLOT;
    o.retransmit_ms = 400;
    o.max_frame = 512;
    o.flash_path = path;
    o.keys = key;
    o.nkeys = key != NULL ? 1 : 0;
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simterm_new(&o, &n), 0);
    ck_assert_int_eq(otaup_simterm_provisioned(n), 1);
    return n;
}

static size_t log_len(otaup_simterm *t)
{
    size_t n = 0;
    (void)otaup_simflash_log(otaup_simterm_flash(t), &n);
    return n;
}

static size_t writes_since(otaup_simterm *t, size_t from)
{
    return otaup_simflash_log_writes_since(otaup_simterm_flash(t), from);
}

static int n_backups(const char *id)
{
    int n = e2e_backups(w, id);
    ck_assert_int_ge(n, 0);
    return n;
}

static const char *audit; /* the last audit_of() */
static const char *audit_of(const char *id)
{
    audit = e2e_audit(w, id);
    ck_assert_ptr_nonnull(audit);
    return audit;
}

static void image_is(otaup_simterm *t, const uint8_t want[16], const char *version)
{
    uint8_t h[16];
    otaup_simterm_image_hash(t, h);
    ck_assert_str_eq(otaup_simterm_version(t), version);
    ck_assert_int_eq(memcmp(h, want, 16), 0);
    ck_assert_int_eq(otaup_simterm_user_intact(t), 1);
}

/* The terminal registers (up to date with 1.0), so that a release published next is signed for it. */
static void first_contact(otaup_simterm *t)
{
    e2e_report rep;
    ck_assert_int_eq(e2e_run(w, t, NULL, 20000, &rep), 0);
    ck_assert_int_eq(rep.server_state, OTAUP_SS_IDLE);
}

START_TEST(test_signed_upgrade)
{
    otaup_simterm *t;
    e2e_report rep;
    uint8_t kid[OTAUP_KEY_ID_LEN];
    int64_t r2;
    release("1.0", 1000, v1, sizeof v1, 1);
    t = terminal("S1", &pub_a, v1, sizeof v1, "1.0", 1000);
    first_contact(t);
    /* 2.0 is published and signed by the release manager; the server holds no key */
    r2 = release("2.0", 2000, v2, v2_len, 3);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 1);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 0); /* done already */
    ck_assert_ptr_null(e2e_options(w)->sign_key);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_int_eq(rep.server_state, OTAUP_SS_DONE);
    image_is(t, h_v2, "2.0");
    ck_assert_int_eq(n_backups("S1"), 0);
    /* the terminal verified it with key A and now holds the release's counter */
    ck_assert_int_eq(otaup_simterm_signed_by(t, kid), 1);
    ck_assert_mem_eq(kid, id_a, OTAUP_KEY_ID_LEN);
    ck_assert_uint_eq(otaup_simterm_counter(t), 3);
    ck_assert_ptr_nonnull(strstr(audit_of("S1"), "signed by key"));
    ck_assert_ptr_null(strstr(audit, "signed on demand"));
    /* ... and keeps it over a power-off */
    t = reopen(t, "S1", &pub_a);
    ck_assert_uint_eq(otaup_simterm_counter(t), 3);
    ck_assert_str_eq(otaup_simterm_version(t), "2.0");
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_wrong_key_refused_before_any_write)
{
    otaup_simterm *t;
    e2e_report rep;
    size_t mark;
    int64_t r2;
    release("1.0", 1000, v1, sizeof v1, 0);
    t = terminal("K1", &pub_b, v1, sizeof v1, "1.0", 1000); /* it trusts key B only */
    first_contact(t);
    r2 = release("2.0", 2000, v2, v2_len, 1);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 1);
    mark = log_len(t);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_KEY);
    /* the terminal refused START: not one erase or program */
    ck_assert_int_eq(otaup_simterm_refused(t), OTAUP_E_KEY);
    ck_assert_uint_eq(writes_since(t, mark), 0);
    ck_assert_int_eq(rep.server_state, OTAUP_SS_FAILED);
    image_is(t, h_v1, "1.0");
    ck_assert_uint_eq(otaup_simterm_counter(t), 0);
    /* the server failed the session cleanly: backup kept, audit says why */
    ck_assert_int_eq(n_backups("K1"), 1);
    audit_of("K1");
    ck_assert_ptr_nonnull(strstr(audit, "refused the update before any flash write"));
    ck_assert_ptr_nonnull(strstr(audit, "a key it does not trust"));
    ck_assert_ptr_null(strstr(audit, "backup-deleted"));
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_replayed_older_release_refused)
{
    otaup_simterm *t;
    e2e_report rep;
    size_t mark;
    int64_t r2, r3;
    release("1.0", 1000, v1, sizeof v1, 0);
    t = terminal("A1", &pub_a, v1, sizeof v1, "1.0", 1000);
    first_contact(t);
    r2 = release("2.0", 2000, v2, v2_len, 5);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 1);
    /* session 1: 2.0, security counter 5 */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    image_is(t, h_v2, "2.0");
    ck_assert_uint_eq(otaup_simterm_counter(t), 5);
    /* the terminal powers off; meanwhile the old 1.0 image comes back as
     * "2.1", genuinely signed, but with its old security counter 4 */
    t = reopen(t, "A1", &pub_a);
    r3 = release_flags("2.1", 3000, v1, sizeof v1, 4, OTAUP_REG_PUBLISH_SAME_IMAGE); /* 1.0's image again */
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r3, key_a, NULL, NULL), 1);
    mark = log_len(t);
    /* session 2: refused by the terminal, nothing written */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_ROLLBACK);
    ck_assert_int_eq(otaup_simterm_refused(t), OTAUP_E_ROLLBACK);
    ck_assert_uint_eq(writes_since(t, mark), 0);
    image_is(t, h_v2, "2.0");
    ck_assert_uint_eq(otaup_simterm_counter(t), 5);
    ck_assert_ptr_nonnull(strstr(audit_of("A1"), "security counter 4 is lower than its own 5 (anti-rollback)"));
    otaup_simterm_free(t);
}
END_TEST

/* A server that skips every check: HELLO, then START with this prefix, to the terminal's applier. */
static int rogue_start(otaup_simterm *t, const uint8_t *prefix, size_t len)
{
    otaup_msg m;
    otaup_apply *ap = otaup_simterm_apply(t);
    uint8_t buf[4096];
    unsigned i;
    int n;
    ck_assert_int_eq(otaup_apply_connect(ap), 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = OTAUP_ROLE_SERVER;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 4096;
    m.u.hello.max_msg = 4096;
    m.u.hello.window = 16;
    n = otaup_msg_encode_frame(&m, 0, 0, 4096, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    (void)otaup_apply_feed(ap, buf, (size_t)n);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 0x5EC0BADull;
    m.u.start.manifest.data = prefix;
    m.u.start.manifest.len = (uint32_t)len;
    n = otaup_msg_encode_frame(&m, 0, 1, 4096, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    (void)otaup_apply_feed(ap, buf, (size_t)n);
    for (i = 0; i < 4; i++) {
        otaup_simterm_step(t);
    }
    return otaup_simterm_refused(t);
}

static int sent_frames;
static int count_send(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx, (void)b;
    sent_frames++;
    return (int)n;
}

static uint32_t clock0(void *ctx)
{
    (void)ctx;
    return 0;
}

START_TEST(test_unsigned_release_refused)
{
    otaup_simterm *t;
    e2e_report rep;
    otaup_reg_terminal rt;
    otaup_reg_release rel;
    otaup_blob d = { NULL, 0 };
    uint32_t body = 0;
    size_t mark;
    int64_t r2;
    release("1.0", 1000, v1, sizeof v1, 0);
    t = terminal("U1", &pub_a, v1, sizeof v1, "1.0", 1000);
    first_contact(t);
    r2 = release("2.0", 2000, v2, v2_len, 1); /* published unsigned */
    ck_assert_int_eq(otaup_session_precompute(e2e_registry(w), r2, NULL, NULL), 1);
    mark = log_len(t);
    /* a server without the key: it cannot give this terminal a signed delta, and says so */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_UNSIGNED);
    ck_assert_uint_eq(writes_since(t, mark), 0);
    image_is(t, h_v1, "1.0");
    ck_assert_ptr_nonnull(strstr(audit_of("U1"), "takes signed updates only"));
    ck_assert_ptr_nonnull(strstr(audit, "otaupctl release sign"));
    /* it failed before START: the backup taken for it is not kept */
    ck_assert_int_eq(n_backups("U1"), 0);
    ck_assert_ptr_nonnull(strstr(audit, "failed before anything was written"));
    /* a rogue server sends the unsigned delta anyway: the terminal refuses START itself */
    ck_assert_int_eq(otaup_registry_terminal_get(e2e_registry(w), "U1", &rt), 0);
    ck_assert_int_eq(otaup_registry_release_get(e2e_registry(w), r2, &rel, NULL), 0);
    ck_assert_int_eq(otaup_session_default_delta(e2e_registry(w), &rt, &rel, NULL, 0, &d, &body, NULL), 0);
    ck_assert_int_eq(otaup_simterm_boot(t, count_send, NULL, clock0, NULL), 0);
    mark = log_len(t);
    ck_assert_int_eq(rogue_start(t, d.data, body), OTAUP_E_UNSIGNED);
    ck_assert_uint_eq(writes_since(t, mark), 0);
    image_is(t, h_v1, "1.0");
    otaup_blob_free(&d);
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_unknown_image_signed_on_demand)
{
    /* a field-patched 1.0 the registry never saw: planned from its block
     * signature, signed with the daemon's key and the SHA-256 it reported */
    static uint8_t custom[V1_LEN];
    otaup_simterm *t;
    e2e_report rep;
    uint8_t kid[OTAUP_KEY_ID_LEN];
    size_t mark;
    memcpy(custom, v1, sizeof custom);
    memset(custom + 5000, 0x5A, 700);
    release("1.0", 1000, v1, sizeof v1, 0);
    release("2.0", 2000, v2, v2_len, 2);
    t = terminal("N1", &pub_a, custom, sizeof custom, "1.0-field", 1500);
    /* no key on the server: refused with the reason, nothing written */
    mark = log_len(t);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), OTAUP_E_UNSIGNED);
    ck_assert_uint_eq(writes_since(t, mark), 0);
    ck_assert_ptr_nonnull(strstr(audit_of("N1"), "planning from its block signature"));
    ck_assert_int_eq(n_backups("N1"), 0);
    /* with the key */
    e2e_options(w)->sign_key = key_a;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    image_is(t, h_v2, "2.0");
    ck_assert_int_eq(otaup_simterm_signed_by(t, kid), 1);
    ck_assert_mem_eq(kid, id_a, OTAUP_KEY_ID_LEN);
    ck_assert_uint_eq(otaup_simterm_counter(t), 2);
    ck_assert_ptr_nonnull(strstr(audit_of("N1"), "signed on demand"));
    e2e_options(w)->sign_key = NULL;
    otaup_simterm_free(t);
}
END_TEST

START_TEST(test_power_cut_in_signed_upgrade)
{
    otaup_simterm *t;
    e2e_report rep;
    e2e_faults f;
    int64_t r2;
    release("1.0", 1000, v1, sizeof v1, 0);
    t = terminal("C1", &pub_a, v1, sizeof v1, "1.0", 1000);
    first_contact(t);
    r2 = release("2.0", 2000, v2, v2_len, 7);
    ck_assert_int_eq(otaup_session_sign_release(e2e_registry(w), r2, key_a, NULL, NULL), 1);
    memset(&f, 0, sizeof f);
    f.cut_after = 6 + (uint64_t)_i * 5;
    f.torn = 1;
    f.seed = 77;
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), 0);
    ck_assert_uint_eq(rep.power_cuts, 1);
    image_is(t, h_v2, "2.0");
    ck_assert_uint_eq(otaup_simterm_counter(t), 7);
    ck_assert_ptr_nonnull(strstr(audit_of("C1"), "resume:"));
    otaup_simterm_free(t);
}
END_TEST

#endif /* OTAUP_HAVE_MBEDTLS */

int main(void)
{
    Suite *s = suite_create("e2esec");
    TCase *tc = tcase_create("signed");
    SRunner *sr;
    int failed;
#if OTAUP_HAVE_MBEDTLS
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_signed_upgrade);
    tcase_add_test(tc, test_wrong_key_refused_before_any_write);
    tcase_add_test(tc, test_replayed_older_release_refused);
    tcase_add_test(tc, test_unsigned_release_refused);
    tcase_add_test(tc, test_unknown_image_signed_on_demand);
    tcase_add_loop_test(tc, test_power_cut_in_signed_upgrade, 0, 3);
#endif
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
