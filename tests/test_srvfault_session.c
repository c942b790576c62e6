/*
 * Server-side faults on the end-to-end harness (the real session driver and
 * SQLite registry against a real applier on simulated flash): the registry
 * stops taking writes at the end of an upgrade, after the user-data check.
 *
 * The registry file reaches the process's file-size limit (RLIMIT_FSIZE,
 * as `ulimit -f` or a full disk would stop it) just as the session enters
 * VERIFY, or just as it sends COMMIT: the session row keeps `transfer` or
 * `verify`, the terminal commits, the backup cannot be deleted (kept, as
 * documented). The user then stores new personal data on the upgraded
 * terminal. At its next connection the server must not check the regions
 * again and restore the old backup over those data: the terminal's
 * journal is closed, so the session was committed; COMMIT brings the same
 * RESULT back and the backup is deleted.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simflash.h"
#include "otaup/simterm.h"
#include "util/e2e.h"

#define V1_LEN 60000u
#define SLOT (128u * 1024u)

static char dir[128], wal[200];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096];
static size_t v2_len;
static uint8_t h_v2[16];
static const char *arm_at; /* the state change at which writes stop */
static int armed;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-srvfault-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(wal, sizeof wal, "%s/e2e.db-wal", dir);
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 41);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 42);
    ck_assert_uint_gt(v2_len, 0);
    otaup_hash128(v2, v2_len, h_v2);
    ck_assert_int_gt(e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1), 0);
    ck_assert_int_gt(e2e_release(w, "M1", "2.0", 2000, v2, v2_len), 0);
    armed = 0;
}

static void teardown(void)
{
    char cmd[200];
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* From the state change `arm_at` on, no registry file may grow: every
 * write past the write-ahead log's end (and into the main file, larger)
 * fails with EFBIG, which SQLite reports as a disk I/O error. Reads go on. */
static void log_cb(int level, const char *terminal, const char *event, const char *msg, void *payload)
{
    struct stat st;
    struct rlimit rl;
    (void)level;
    (void)terminal;
    (void)payload;
    if (armed || arm_at == NULL || strcmp(event, "state") != 0 || strstr(msg, arm_at) == NULL) {
        return;
    }
    ck_assert_int_eq(stat(wal, &st), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = (rlim_t)st.st_size;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    armed = 1;
}

static void lift_limit(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static const char *const arm_points[] = { "-> verify", "-> commit" };
static const char *const stuck_rows[] = { "transfer", "verify" };

START_TEST(test_committed_then_user_data_changed)
{
    otaup_simterm *t;
    e2e_report rep;
    otaup_reg_session rs;
    uint8_t *user;
    uint8_t edit[64];
    uint32_t off;
    int rc;
    signal(SIGXFSZ, SIG_IGN);
    e2e_options(w)->log = log_cb;
    arm_at = arm_points[_i];
    t = e2e_terminal("T1", OTAUP_LAYOUT_INPLACE, SLOT, v1, sizeof v1, "1.0", 1000);
    memset(&rep, 0, sizeof rep);
    rc = e2e_run(w, t, NULL, 600000, &rep);
    lift_limit();
    ck_assert_msg(armed, "the session never reached %s", arm_at);
    /* the terminal committed; the server could record neither the rest of
     * the session nor the deletion of the backup */
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(otaup_registry_session_get(e2e_registry(w), "T1", &rs), 0);
    ck_assert_str_eq(rs.state, stuck_rows[_i]);
    ck_assert_int_eq(e2e_backups(w, "T1"), 1); /* (its audit line could not be written either) */

    /* the user stores new personal data on the upgraded terminal */
    off = otaup_simterm_user_addr(t) - otaup_simterm_slot_addr(t, 0);
    user = otaup_simflash_data(otaup_simterm_flash(t)) + off;
    memset(edit, 0, sizeof edit);
    snprintf((char *)edit, sizeof edit, "new contact stored after the upgrade: +1 555 0100");
    memcpy(user + 128, edit, sizeof edit);
    ck_assert(!otaup_simterm_user_intact(t));

    /* next connection: the backup is deleted, nothing restored over it */
    armed = 0;
    arm_at = NULL;
    memset(&rep, 0, sizeof rep);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_msg(memcmp(user + 128, edit, sizeof edit) == 0,
                  "the old backup was restored over the user's new data (%s)", e2e_audit(w, "T1"));
    ck_assert_int_eq(e2e_backups(w, "T1"), 0);
    ck_assert_int_eq(otaup_registry_session_get(e2e_registry(w), "T1", &rs), 0);
    ck_assert_str_eq(rs.state, "done");
    {
        uint8_t h[16];
        otaup_simterm_image_hash(t, h);
        ck_assert_mem_eq(h, h_v2, 16);
    }
    otaup_simterm_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("srvfault_session");
    TCase *tc = tcase_create("srvfault");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_committed_then_user_data_changed, 0, 2);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
