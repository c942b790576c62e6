/*
 * Release withdrawal and duplicate publication (docs/server.md,
 * "Withdrawing a release", "Publishing: one image, one release").
 *
 * Registry level: the policy skips withdrawn releases (a terminal gets
 * the newest one left, or none; one on a withdrawn release is not moved
 * back), the mark is listed, withdrawal with sessions in progress is
 * refused unless forced, requests for the release are dropped, restore,
 * errors; an image already published for the model is refused; a
 * schema-1 database opens (read-only as is) and is upgraded.
 *
 * Session level, end to end (tests/util/e2e.c: the real session driver
 * and SQLite registry against real appliers on simulated flash): a
 * session to a release withdrawn in the middle of its transfer (in place:
 * the old image is gone) resumes and finishes; a terminal below a
 * withdrawn release gets the next one; an upgrade withdrawn before its
 * START went out ends without writing anything (live: at the backup and
 * at START; at a reconnection: the unstarted session dropped) and the
 * terminal then gets what the policy picks.
 */
#include <check.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simterm.h"
#include "util/e2e.h"

#define V1_LEN 60000u
#define SLOT (128u * 1024u)

static char dir[128];
static e2e_world *w;
static uint8_t v1[V1_LEN], v2[V1_LEN + 4096], v3[V1_LEN + 8192];
static size_t v2_len, v3_len;
static uint8_t h_v1[16], h_v2[16], h_v3[16];
static int64_t r1, r2;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/otaup-wd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    w = e2e_new(dir);
    ck_assert_ptr_nonnull(w);
    e2e_make_image(v1, sizeof v1, 41);
    v2_len = e2e_make_next(v1, sizeof v1, v2, sizeof v2, 42);
    v3_len = e2e_make_next(v2, v2_len, v3, sizeof v3, 43);
    ck_assert_uint_gt(v2_len, 0);
    ck_assert_uint_gt(v3_len, 0);
    otaup_hash128(v1, sizeof v1, h_v1);
    otaup_hash128(v2, v2_len, h_v2);
    otaup_hash128(v3, v3_len, h_v3);
    r1 = e2e_release(w, "M1", "1.0", 1000, v1, sizeof v1);
    r2 = e2e_release(w, "M1", "2.0", 2000, v2, v2_len);
    ck_assert_int_gt(r1, 0);
    ck_assert_int_gt(r2, 0);
}

static void teardown(void)
{
    char cmd[200];
    e2e_free(w);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static otaup_registry *reg(void)
{
    return e2e_registry(w);
}

static void term_record(otaup_reg_terminal *t, const char *id, const char *version, const uint8_t hash[16])
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->model, sizeof t->model, "M1");
    snprintf(t->version, sizeof t->version, "%s", version);
    memcpy(t->image_hash, hash, 16);
    snprintf(t->status, sizeof t->status, "new");
    ck_assert_int_eq(otaup_registry_terminal_put(reg(), t), 0);
}

static void session_row(const char *terminal, int64_t release, const char *state, uint64_t bytes_total)
{
    otaup_reg_session s;
    memset(&s, 0, sizeof s);
    snprintf(s.terminal, sizeof s.terminal, "%s", terminal);
    s.session_id = 0x1234u;
    s.release_id = release;
    snprintf(s.state, sizeof s.state, "%s", state);
    s.bytes_total = bytes_total;
    ck_assert_int_eq(otaup_registry_session_put(reg(), &s), 0);
}

static int count_release(const otaup_reg_release *r, void *payload)
{
    int *n = payload;
    (void)r;
    (*n)++;
    return 0;
}

static int64_t withdrawn_of(int64_t id)
{
    otaup_reg_release r;
    ck_assert_int_eq(otaup_registry_release_get(reg(), id, &r, NULL), 0);
    return r.withdrawn;
}

/* ---- registry ------------------------------------------------------------ */

START_TEST(test_policy_skips_withdrawn)
{
    otaup_reg_terminal t;
    otaup_reg_release r;
    int64_t r3 = e2e_release(w, "M1", "3.0", 3000, v3, v3_len);
    ck_assert_int_gt(r3, 0);
    term_record(&t, "T1", "1.0", h_v1);
    ck_assert_int_eq(otaup_registry_policy(reg(), &t, &r), 0);
    ck_assert_int_eq(r.id, r3);
    /* the newest is withdrawn: the next one down */
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r3, 0, "bad radio driver", NULL), 0);
    ck_assert_int_gt(withdrawn_of(r3), 0);
    ck_assert_int_eq(otaup_registry_policy(reg(), &t, &r), 0);
    ck_assert_int_eq(r.id, r2);
    /* both newer ones withdrawn: it runs the newest left */
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), 0);
    ck_assert_int_eq(otaup_registry_policy(reg(), &t, &r), OTAUP_E_NO_RELEASE);
    /* still listed and found by id and by image, with the mark */
    ck_assert_int_eq(otaup_registry_release_by_hash(reg(), h_v3, &r, NULL), 0);
    ck_assert_int_eq(r.id, r3);
    ck_assert_int_gt(r.withdrawn, 0);
    {
        int n = 0;
        ck_assert_int_eq(otaup_registry_release_list(reg(), "M1", count_release, &n), 0);
        ck_assert_int_eq(n, 3);
    }
    /* a terminal that runs the withdrawn 3.0 is not moved back to 1.0 */
    term_record(&t, "T3", "3.0", h_v3);
    ck_assert_int_eq(otaup_registry_policy(reg(), &t, &r), OTAUP_E_DOWNGRADE);
    ck_assert_int_eq(r.id, r1);
    /* restore: offered again */
    ck_assert_int_eq(otaup_registry_release_restore(reg(), r3), 0);
    ck_assert_int_eq(withdrawn_of(r3), 0);
    term_record(&t, "T1", "1.0", h_v1);
    ck_assert_int_eq(otaup_registry_policy(reg(), &t, &r), 0);
    ck_assert_int_eq(r.id, r3);
    /* errors: nothing changes */
    ck_assert_int_eq(otaup_registry_release_restore(reg(), r3), OTAUP_E_STATE);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), OTAUP_E_WITHDRAWN);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), 999, 0, NULL, NULL), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_release_restore(reg(), 999), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r3, 0x80, NULL, NULL), OTAUP_E_INVAL);
    ck_assert_int_eq(withdrawn_of(r3), 0);
    ck_assert_int_eq(otaup_registry_release_withdraw(NULL, r3, 0, NULL, NULL), OTAUP_E_INVAL);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, ""), "release-withdrawn:release 3 (M1 3.0): 0 session(s) in progress "
                                                    "still finish, 0 request(s) dropped; reason: bad radio driver"));
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, ""), "release-restored:release 3 (M1 3.0)"));
}
END_TEST

struct seen {
    char ids[8][OTAUP_REG_ID_MAX];
    int n;
};

static int seen_cb(const otaup_reg_session *s, void *payload)
{
    struct seen *x = payload;
    ck_assert_int_lt(x->n, 8);
    snprintf(x->ids[x->n++], sizeof x->ids[0], "%s", s->terminal);
    return 0;
}

START_TEST(test_in_progress_refused_without_force)
{
    otaup_reg_terminal t;
    struct seen x;
    int i;
    static const char *const ids[] = { "S-xfer", "S-backup", "S-failed-late", "S-done", "S-failed-early",
                                       "S-other" };
    for (i = 0; i < 6; i++) {
        term_record(&t, ids[i], "1.0", h_v1);
    }
    session_row("S-xfer", r2, "transfer", 5000);        /* started */
    session_row("S-backup", r2, "backup", 0);           /* not started */
    session_row("S-failed-late", r2, "failed", 5000);   /* given up after START: may resume */
    session_row("S-done", r2, "done", 5000);            /* finished */
    session_row("S-failed-early", r2, "failed", 0);     /* failed before START */
    session_row("S-other", r1, "transfer", 5000);       /* another release */
    memset(&x, 0, sizeof x);
    ck_assert_int_eq(otaup_registry_release_sessions(reg(), r2, seen_cb, &x), 2);
    ck_assert_int_eq(x.n, 3);
    ck_assert_str_eq(x.ids[0], "S-backup");
    ck_assert_str_eq(x.ids[1], "S-failed-late");
    ck_assert_str_eq(x.ids[2], "S-xfer");
    /* refused: nothing changed */
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), OTAUP_E_IN_PROGRESS);
    ck_assert_int_eq(withdrawn_of(r2), 0);
    /* forced: withdrawn, two sessions still finish */
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, OTAUP_REG_WITHDRAW_FORCE, NULL, NULL), 2);
    ck_assert_int_gt(withdrawn_of(r2), 0);
    /* a release whose only session is unstarted withdraws without force */
    ck_assert_int_eq(otaup_registry_release_restore(reg(), r2), 0);
    session_row("S-xfer", r2, "done", 5000);
    session_row("S-failed-late", r1, "failed", 5000);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), 0);
}
END_TEST

START_TEST(test_requests_for_it_dropped)
{
    otaup_reg_terminal t;
    otaup_reg_request q;
    unsigned dropped = 99;
    term_record(&t, "Q1", "1.0", h_v1);
    term_record(&t, "Q2", "1.0", h_v1);
    term_record(&t, "Q3", "1.0", h_v1);
    memset(&q, 0, sizeof q);
    snprintf(q.source, sizeof q.source, "ctl");
    snprintf(q.terminal, sizeof q.terminal, "Q1");
    q.release_id = r2;
    ck_assert_int_eq(otaup_registry_request_put(reg(), &q), 0);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg(), "Q1", "requested"), 0);
    snprintf(q.terminal, sizeof q.terminal, "Q2");
    q.release_id = r1; /* another release: kept */
    ck_assert_int_eq(otaup_registry_request_put(reg(), &q), 0);
    snprintf(q.terminal, sizeof q.terminal, "Q3");
    q.release_id = 0; /* whatever the policy picks: kept */
    ck_assert_int_eq(otaup_registry_request_put(reg(), &q), 0);
    /* Q4 runs 0.9 and asked for 2.0: 1.0 is still due to it. Q5 runs 1.0
     * and was notified of 2.0: nothing is due any more. Q6, of another
     * model, is not looked at. */
    term_record(&t, "Q4", "0.9", h_v3);
    snprintf(q.terminal, sizeof q.terminal, "Q4");
    q.release_id = r2;
    ck_assert_int_eq(otaup_registry_request_put(reg(), &q), 0);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg(), "Q4", "requested"), 0);
    term_record(&t, "Q5", "1.0", h_v1);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg(), "Q5", "notified"), 0);
    term_record(&t, "Q6", "1.0", h_v1);
    snprintf(t.model, sizeof t.model, "M2");
    snprintf(t.status, sizeof t.status, "upgrade-due");
    ck_assert_int_eq(otaup_registry_terminal_put(reg(), &t), 0);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, &dropped), 0);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_int_eq(otaup_registry_request_get(reg(), "Q1", &q), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_terminal_get(reg(), "Q1", &t), 0);
    ck_assert_str_eq(t.status, "up-to-date"); /* it runs 1.0, the newest left */
    ck_assert_int_eq(otaup_registry_terminal_get(reg(), "Q4", &t), 0);
    ck_assert_str_eq(t.status, "upgrade-due");
    ck_assert_int_eq(otaup_registry_terminal_get(reg(), "Q5", &t), 0);
    ck_assert_str_eq(t.status, "up-to-date");
    ck_assert_int_eq(otaup_registry_terminal_get(reg(), "Q6", &t), 0);
    ck_assert_str_eq(t.status, "upgrade-due");
    ck_assert_int_eq(otaup_registry_request_get(reg(), "Q2", &q), 0);
    ck_assert_int_eq(otaup_registry_request_get(reg(), "Q3", &q), 0);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "Q1"), "request-dropped:"));
    /* a request for it recorded after the sweep (a CONSENT stored by a
     * daemon in the meantime, or a sweep cut short): withdrawing again
     * says so and finishes the sweep */
    snprintf(q.terminal, sizeof q.terminal, "Q1");
    q.release_id = r2;
    ck_assert_int_eq(otaup_registry_request_put(reg(), &q), 0);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg(), "Q1", "requested"), 0);
    dropped = 99;
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, &dropped), OTAUP_E_WITHDRAWN);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_int_eq(otaup_registry_request_get(reg(), "Q1", &q), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_terminal_get(reg(), "Q1", &t), 0);
    ck_assert_str_eq(t.status, "up-to-date");
    ck_assert_int_eq(otaup_registry_request_get(reg(), "Q2", &q), 0);
}
END_TEST

START_TEST(test_same_image_refused)
{
    otaup_reg_release r, ex;
    int n = 0;
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "2.1");
    r.build_time = 2100;
    memset(&ex, 0, sizeof ex);
    /* 2.0's image again as 2.1: refused, the holder named, nothing stored */
    ck_assert_int_eq(otaup_registry_release_publish(reg(), &r, v2, v2_len, 0, &ex), OTAUP_E_SAME_IMAGE);
    ck_assert_int_eq(ex.id, r2);
    ck_assert_str_eq(ex.version, "2.0");
    ck_assert_int_eq(otaup_registry_release_add(reg(), &r, v2, v2_len), OTAUP_E_SAME_IMAGE);
    ck_assert_int_eq(otaup_registry_release_list(reg(), "M1", count_release, &n), 0);
    ck_assert_int_eq(n, 2);
    /* the same release again is still "exists", not "same image" */
    snprintf(r.version, sizeof r.version, "2.0");
    r.build_time = 2000;
    ck_assert_int_eq(otaup_registry_release_add(reg(), &r, v2, v2_len), OTAUP_E_EXISTS);
    /* a withdrawn holder still counts: publishing the bad image again is refused */
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), 0);
    snprintf(r.version, sizeof r.version, "2.2");
    r.build_time = 2200;
    ck_assert_int_eq(otaup_registry_release_publish(reg(), &r, v2, v2_len, 0, &ex), OTAUP_E_SAME_IMAGE);
    ck_assert_int_eq(ex.id, r2);
    ck_assert_int_gt(ex.withdrawn, 0);
    /* another model may have it */
    snprintf(r.model, sizeof r.model, "M2");
    ck_assert_int_eq(otaup_registry_release_add(reg(), &r, v2, v2_len), 0);
    /* and with the flag, the same model too (republishing 1.0's image as 2.1) */
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "2.1");
    r.build_time = 2100;
    ck_assert_int_eq(otaup_registry_release_publish(reg(), &r, v1, sizeof v1, OTAUP_REG_PUBLISH_SAME_IMAGE, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_publish(reg(), &r, v3, v3_len, 0x40, NULL), OTAUP_E_INVAL);
    {
        /* the policy offers it to a terminal on 1.0? it runs that image already */
        otaup_reg_terminal t;
        otaup_reg_release p;
        term_record(&t, "D1", "1.0", h_v1);
        ck_assert_int_eq(otaup_registry_policy(reg(), &t, &p), OTAUP_E_NO_RELEASE);
    }
}
END_TEST

/* the version-1 schema, as the first released programs created it */
static const char *const schema_v1 =
    "CREATE TABLE schema_version(version INTEGER NOT NULL, applied INTEGER NOT NULL);"
    "CREATE TABLE terminals("
    " id TEXT PRIMARY KEY, model TEXT NOT NULL, version TEXT NOT NULL,"
    " build_time INTEGER NOT NULL, image_hash BLOB, image_size INTEGER NOT NULL DEFAULT 0,"
    " status TEXT NOT NULL DEFAULT 'new', layout BLOB, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
    " wrapped_key BLOB);"
    "CREATE TABLE releases("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL, version TEXT NOT NULL,"
    " build_time INTEGER NOT NULL, image_hash BLOB NOT NULL, image_size INTEGER NOT NULL,"
    " security_counter INTEGER NOT NULL DEFAULT 0, allow_downgrade INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, image BLOB NOT NULL, UNIQUE(model, version, build_time));"
    "CREATE INDEX releases_hash ON releases(image_hash);"
    "CREATE TABLE deltas("
    " src_hash BLOB NOT NULL, dst_hash BLOB NOT NULL, layout BLOB NOT NULL,"
    " created INTEGER NOT NULL, delta BLOB NOT NULL, PRIMARY KEY(src_hash, dst_hash, layout));"
    "CREATE TABLE backups("
    " terminal TEXT NOT NULL, region INTEGER NOT NULL, session INTEGER NOT NULL,"
    " addr INTEGER NOT NULL, len INTEGER NOT NULL, hash BLOB NOT NULL, created INTEGER NOT NULL,"
    " sealed BLOB NOT NULL, PRIMARY KEY(terminal, region));"
    "CREATE TABLE outbox("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, terminal TEXT NOT NULL, release_id INTEGER NOT NULL,"
    " channel TEXT NOT NULL, text TEXT NOT NULL, created INTEGER NOT NULL,"
    " sent INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE requests("
    " terminal TEXT PRIMARY KEY, release_id INTEGER NOT NULL, source TEXT NOT NULL,"
    " created INTEGER NOT NULL);"
    "CREATE TABLE sessions("
    " terminal TEXT PRIMARY KEY, session_id INTEGER NOT NULL, release_id INTEGER NOT NULL,"
    " state TEXT NOT NULL, next_step INTEGER NOT NULL, steps_total INTEGER NOT NULL,"
    " bytes_sent INTEGER NOT NULL, bytes_total INTEGER NOT NULL, retransmits INTEGER NOT NULL,"
    " regions INTEGER NOT NULL, result INTEGER NOT NULL, started INTEGER NOT NULL,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE audit("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, terminal TEXT NOT NULL,"
    " event TEXT NOT NULL, detail TEXT NOT NULL);"
    "CREATE INDEX audit_terminal ON audit(terminal, id);"
    "INSERT INTO schema_version VALUES(1, 1);"
    /* two releases of M1 (images of 3 bytes: 'aaa', 'bbb'; hashes as stored) and a terminal */
    "INSERT INTO releases(model, version, build_time, image_hash, image_size, created, image)"
    " VALUES('M1', '1.0', 1000, x'0101', 3, 5, x'616161');"
    "INSERT INTO releases(model, version, build_time, image_hash, image_size, created, image)"
    " VALUES('M1', '2.0', 2000, x'0202', 3, 6, x'626262');"
    "INSERT INTO terminals(id, model, version, build_time, image_hash, image_size, first_seen, last_seen)"
    " VALUES('OLD1', 'M1', '1.0', 1000, x'0101', 3, 7, 7);";

static int schema_of(const char *path)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int v = -1;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static otaup_registry *open_path(const char *path, int read_only)
{
    otaup_registry_options o;
    otaup_registry *r = NULL;
    char err[256] = "";
    int rc;
    otaup_registry_options_init(&o);
    o.read_only = read_only;
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    rc = otaup_registry_sqlite_open(path, &o, &r);
    ck_assert_msg(rc == 0, "open %s: %d %s", path, rc, err);
    return r;
}

START_TEST(test_schema_1_upgraded)
{
    char path[300];
    sqlite3 *db;
    otaup_registry *old;
    otaup_reg_release r;
    otaup_reg_terminal t;
    int n = 0;
    snprintf(path, sizeof path, "%s/v1.db", dir);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    /* read-only: read as is, nothing withdrawn, the file untouched */
    old = open_path(path, 1);
    ck_assert_int_eq(otaup_registry_release_get(old, 2, &r, NULL), 0);
    ck_assert_str_eq(r.version, "2.0");
    ck_assert_int_eq(r.withdrawn, 0);
    ck_assert_int_eq(otaup_registry_release_list(old, "M1", count_release, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(otaup_registry_terminal_get(old, "OLD1", &t), 0);
    ck_assert_int_eq(otaup_registry_policy(old, &t, &r), 0);
    ck_assert_int_eq(r.id, 2);
    otaup_registry_free(old);
    ck_assert_int_eq(schema_of(path), 1);
    /* read-write: upgraded to 2, every release still offered */
    old = open_path(path, 0);
    ck_assert_int_eq(schema_of(path), 2);
    ck_assert_int_eq(otaup_registry_release_get(old, 2, &r, NULL), 0);
    ck_assert_int_eq(r.withdrawn, 0);
    ck_assert_int_eq(otaup_registry_terminal_get(old, "OLD1", &t), 0);
    ck_assert_int_eq(otaup_registry_policy(old, &t, &r), 0);
    ck_assert_int_eq(r.id, 2);
    ck_assert_int_eq(otaup_registry_release_withdraw(old, 2, 0, NULL, NULL), 0);
    ck_assert_int_eq(otaup_registry_policy(old, &t, &r), OTAUP_E_NO_RELEASE);
    otaup_registry_free(old);
    /* persisted, and not migrated twice */
    old = open_path(path, 0);
    ck_assert_int_eq(schema_of(path), 2);
    ck_assert_int_eq(otaup_registry_release_get(old, 2, &r, NULL), 0);
    ck_assert_int_gt(r.withdrawn, 0);
    otaup_registry_free(old);
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    {
        sqlite3_stmt *st;
        ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM schema_version", -1, &st, NULL), SQLITE_OK);
        ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
        ck_assert_int_eq(sqlite3_column_int(st, 0), 2); /* rows 1 and 2 */
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}
END_TEST

static int nop_close_count;
static void nop_close(void *ctx)
{
    (void)ctx;
    nop_close_count++;
}

START_TEST(test_ops_version)
{
    otaup_registry_ops ops;
    otaup_registry *r = NULL;
    memset(&ops, 0, sizeof ops);
    ops.close = nop_close;
    ops.version = 1; /* before release_set_withdrawn */
    ck_assert_int_eq(otaup_registry_new(&ops, NULL, NULL, &r), OTAUP_E_UNSUPPORTED);
    ops.version = OTAUP_REGISTRY_OPS_VERSION;
    ck_assert_int_eq(otaup_registry_new(&ops, NULL, NULL, &r), 0);
    /* a backend without the operation says so */
    ck_assert_int_eq(otaup_registry_release_withdraw(r, 1, 0, NULL, NULL), OTAUP_E_UNSUPPORTED);
    ck_assert_int_eq(otaup_registry_release_restore(r, 1), OTAUP_E_UNSUPPORTED);
    otaup_registry_free(r);
    ck_assert_int_eq(nop_close_count, 1);
}
END_TEST

/* ---- sessions, end to end ---------------------------------------------- */

static otaup_simterm *terminal(const char *id, uint8_t layout, const uint8_t *img, size_t len, const char *version,
                               uint64_t build)
{
    return e2e_terminal(id, layout, SLOT, img, len, version, build);
}

static void check_runs(otaup_simterm *t, const char *id, const uint8_t want[16], const char *version)
{
    e2e_check_runs(w, t, id, want, version);
}

static const uint8_t layouts[2] = { OTAUP_LAYOUT_INPLACE, OTAUP_LAYOUT_AB };

/* 2.0 is withdrawn while a terminal is in the middle of its transfer (the
 * server gave the session up; in place the old image is already partly
 * overwritten): withdrawal is refused without force, forced it stops the
 * offer to everyone else, and the terminal resumes and finishes 2.0. It is
 * then left on 2.0 (no move back to 1.0). */
START_TEST(test_started_session_finishes)
{
    char id[16];
    otaup_simterm *t, *fresh;
    otaup_reg_session rs;
    e2e_report rep;
    e2e_faults f;
    uint8_t h[16];
    memset(&f, 0, sizeof f);
    f.fail_after = 10; /* of about 14 frames: the transfer is half done */
    snprintf(id, sizeof id, "W%d", _i);
    t = terminal(id, layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, &f, 600000, &rep), OTAUP_E_RETRIES);
    ck_assert_int_eq(otaup_registry_session_get(reg(), id, &rs), 0);
    ck_assert_int_eq(otaup_registry_session_started(&rs), 1);
    if (layouts[_i] == OTAUP_LAYOUT_INPLACE) {
        /* past the point of no return: the slot is neither 1.0 nor 2.0 */
        e2e_boot(t);
        otaup_simterm_image_hash(t, h);
        ck_assert_int_ne(memcmp(h, h_v1, 16), 0);
        ck_assert_int_ne(memcmp(h, h_v2, 16), 0);
    }
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), OTAUP_E_IN_PROGRESS);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, OTAUP_REG_WITHDRAW_FORCE, "field reports", NULL),
                     1);
    /* a terminal on 1.0 is not offered 2.0 any more */
    fresh = terminal("F1", layouts[_i], v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, fresh, NULL, 600000, &rep), 0);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    check_runs(fresh, "F1", h_v1, "1.0");
    otaup_simterm_free(fresh);
    /* the one in the middle finishes */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v2, "2.0");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "resume:"));
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "upgraded:"));
    /* and stays there */
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    check_runs(t, id, h_v2, "2.0");
    otaup_simterm_free(t);
}
END_TEST

/* a terminal below a withdrawn release gets the newest one left */
START_TEST(test_below_gets_next_release)
{
    otaup_simterm *t;
    e2e_report rep;
    int64_t r15 = e2e_release(w, "M1", "1.5", 1500, v3, v3_len);
    int64_t r3;
    uint8_t v4[V1_LEN + 12288];
    size_t v4_len = e2e_make_next(v3, v3_len, v4, sizeof v4, 44);
    ck_assert_uint_gt(v4_len, 0);
    r3 = e2e_release(w, "M1", "3.0", 3000, v4, v4_len);
    ck_assert_int_gt(r15, 0);
    ck_assert_int_gt(r3, 0);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r3, 0, NULL, NULL), 0);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), 0);
    t = terminal("B1", OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, "B1", h_v3, "1.5");
    /* 3.0 restored: the next connection brings it */
    ck_assert_int_eq(otaup_registry_release_restore(reg(), r3), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    {
        uint8_t h4[16];
        otaup_hash128(v4, v4_len, h4);
        check_runs(t, "B1", h4, "3.0");
    }
    otaup_simterm_free(t);
}
END_TEST

/* A notifier that withdraws the release it is told about (as an operator
 * would while the terminal is connected and has been offered it). */
static int withdraw_on_notify(otaup_registry *r, const otaup_reg_terminal *t, const otaup_reg_release *rel,
                              void *payload)
{
    int *calls = payload;
    (*calls)++;
    (void)t;
    ck_assert_int_eq(otaup_registry_release_withdraw(r, rel->id, 0, "while offered", NULL), 0);
    return 1;
}

/* A delta provider that withdraws the release after the backup, before START. */
static int withdraw_on_delta(otaup_registry *r, const otaup_reg_terminal *t, const otaup_reg_release *rel,
                             const uint8_t *sig, size_t sig_len, otaup_blob *delta, uint32_t *body_off,
                             void *payload)
{
    int *calls = payload;
    (*calls)++;
    ck_assert_int_eq(otaup_registry_release_withdraw(r, rel->id, 0, "during the backup", NULL), 0);
    return otaup_session_default_delta(r, t, rel, sig, sig_len, delta, body_off, NULL);
}

/* Withdrawn while the terminal is connected, before any START: the
 * session ends (DONE, not a failure), nothing is written, the backup is
 * deleted; the next connection brings what the policy picks (1.5). */
START_TEST(test_live_unstarted_ends)
{
    otaup_simterm *t;
    e2e_report rep;
    otaup_reg_session rs;
    int calls = 0;
    char id[8];
    int64_t r15 = e2e_release(w, "M1", "1.5", 1500, v3, v3_len);
    ck_assert_int_gt(r15, 0);
    snprintf(id, sizeof id, "L%d", _i);
    if (_i == 0) {
        e2e_options(w)->notify = withdraw_on_notify;
        e2e_options(w)->notify_payload = &calls;
    } else {
        e2e_options(w)->delta = withdraw_on_delta;
        e2e_options(w)->delta_payload = &calls;
    }
    t = terminal(id, OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    ck_assert_int_eq(calls, 1);
    ck_assert_uint_eq(rep.stats.stream_sent, 0);
    ck_assert_uint_eq(rep.flash_ops, 0); /* nothing written to the terminal */
    check_runs(t, id, h_v1, "1.0");
    ck_assert_int_eq(otaup_registry_session_get(reg(), id, &rs), OTAUP_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "withdrawn:release 2 (2.0) was withdrawn"));
    if (_i == 1) {
        ck_assert_ptr_nonnull(strstr(e2e_audit(w, id), "backup-deleted:"));
    }
    e2e_options(w)->notify = NULL;
    e2e_options(w)->delta = NULL;
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, id, h_v3, "1.5");
    otaup_simterm_free(t);
}
END_TEST

/* The registry holds a session to 2.0 that had not sent its START (the
 * server stopped during the backup) and 2.0 is withdrawn meanwhile: at the
 * terminal's next connection the session is dropped (its backup deleted)
 * and the terminal gets 1.5 instead. */
START_TEST(test_unstarted_session_dropped_on_reconnect)
{
    otaup_simterm *t;
    e2e_report rep;
    otaup_reg_terminal rt;
    otaup_reg_backup b;
    uint8_t data[64];
    int64_t r15 = e2e_release(w, "M1", "1.5", 1500, v3, v3_len);
    ck_assert_int_gt(r15, 0);
    /* a first connection records the terminal (no request: it waits) */
    t = terminal("U1", OTAUP_LAYOUT_INPLACE, v1, sizeof v1, "1.0", 1000);
    term_record(&rt, "U1", "1.0", h_v1);
    session_row("U1", r2, "backup", 0);
    memset(&b, 0, sizeof b);
    snprintf(b.terminal, sizeof b.terminal, "U1");
    b.session_id = 0x1234u;
    b.len = sizeof data;
    memset(data, 0x5A, sizeof data);
    ck_assert_int_eq(otaup_registry_backup_store(reg(), &b, data, sizeof data), 0);
    ck_assert_int_eq(e2e_backups(w, "U1"), 1);
    ck_assert_int_eq(otaup_registry_release_withdraw(reg(), r2, 0, NULL, NULL), 0);
    ck_assert_int_eq(e2e_run(w, t, NULL, 600000, &rep), 0);
    check_runs(t, "U1", h_v3, "1.5");
    ck_assert_ptr_nonnull(strstr(e2e_audit(w, "U1"), "had not started on the terminal: dropped"));
    ck_assert_ptr_null(strstr(e2e_audit(w, "U1"), "resume:"));
    otaup_simterm_free(t);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("withdraw");
    TCase *tc = tcase_create("registry");
    TCase *te = tcase_create("sessions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_policy_skips_withdrawn);
    tcase_add_test(tc, test_in_progress_refused_without_force);
    tcase_add_test(tc, test_requests_for_it_dropped);
    tcase_add_test(tc, test_same_image_refused);
    tcase_add_test(tc, test_schema_1_upgraded);
    tcase_add_test(tc, test_ops_version);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(te, setup, teardown);
    tcase_set_timeout(te, 120);
    tcase_add_loop_test(te, test_started_session_finishes, 0, 2);
    tcase_add_test(te, test_below_gets_next_release);
    tcase_add_loop_test(te, test_live_unstarted_ends, 0, 2);
    tcase_add_test(te, test_unstarted_session_dropped_on_reconnect);
    suite_add_tcase(s, te);
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
