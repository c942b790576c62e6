/*
 * Registry: the SQLite backend and the front end (encrypted backups,
 * irreversible deletion, policy, schema migration, key file).
 */
#include <check.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/registry.h"

static char dir[256];
static char dbpath[300];
static uint8_t master[OTAUP_REG_KEY_LEN];

static void setup(void)
{
    int i;
    snprintf(dir, sizeof dir, "/tmp/otaup-reg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/reg.db", dir);
    for (i = 0; i < OTAUP_REG_KEY_LEN; i++) {
        master[i] = (uint8_t)(i * 7 + 1);
    }
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static otaup_registry *open_reg(const uint8_t *key)
{
    otaup_registry_options o;
    otaup_registry *reg = NULL;
    otaup_registry_options_init(&o);
    o.master_key = key;
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), 0);
    return reg;
}

static void add_terminal(otaup_registry *reg, const char *id, const char *model, const char *ver)
{
    otaup_reg_terminal t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", id);
    snprintf(t.model, sizeof t.model, "%s", model);
    snprintf(t.version, sizeof t.version, "%s", ver);
    t.build_time = 1000;
    t.image_hash[0] = 0xAA;
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
}

static int64_t add_release(otaup_registry *reg, const char *model, const char *ver, int64_t bt,
                           uint8_t fill, int allow_down)
{
    otaup_reg_release r;
    uint8_t img[1000];
    memset(&r, 0, sizeof r);
    memset(img, fill, sizeof img);
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.version, sizeof r.version, "%s", ver);
    r.build_time = bt;
    r.allow_downgrade = allow_down;
    ck_assert_int_eq(otaup_registry_release_add(reg, &r, img, sizeof img), 0);
    ck_assert_int_gt(r.id, 0);
    return r.id;
}

START_TEST(test_terminals_and_reopen)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_terminal t;
    add_terminal(reg, "T1", "M1", "1.0");
    add_terminal(reg, "T2", "M2", "2.0");
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    ck_assert_str_eq(t.model, "M1");
    ck_assert_str_eq(t.status, "new");
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "notified"), 0);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "nope", "notified"), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "nope", &t), OTAUP_E_NOT_FOUND);
    otaup_registry_free(reg);
    /* persisted, and a second open does not migrate again */
    reg = open_reg(master);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    ck_assert_str_eq(t.status, "notified");
    ck_assert_str_eq(t.version, "1.0");
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_bad_input)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_terminal t;
    otaup_reg_release r;
    uint8_t b = 0;
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), OTAUP_E_INVAL); /* empty id */
    memset(t.id, 'x', sizeof t.id);                                          /* unterminated */
    snprintf(t.model, sizeof t.model, "M");
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), OTAUP_E_INVAL);
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M");
    snprintf(r.version, sizeof r.version, "1");
    ck_assert_int_eq(otaup_registry_release_add(reg, &r, &b, 0), OTAUP_E_RANGE);
    ck_assert_int_eq(otaup_registry_release_add(reg, NULL, &b, 1), OTAUP_E_INVAL);
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_schema)
{
    sqlite3 *db;
    otaup_registry *reg = open_reg(master);
    otaup_registry_options o;
    char err[200] = "";
    otaup_registry_free(reg);
    /* a newer schema is refused, with a reason */
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO schema_version VALUES(99, 0)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    otaup_registry_options_init(&o);
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    reg = NULL;
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), OTAUP_E_DB_SCHEMA);
    ck_assert_ptr_null(reg);
    ck_assert_ptr_nonnull(strstr(err, "newer"));
    /* a foreign SQLite file is refused and left alone */
    snprintf(dbpath, sizeof dbpath, "%s/other.db", dir);
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TABLE x(a); INSERT INTO x VALUES(1)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), OTAUP_E_DB_SCHEMA);
    /* a file that is not a database at all */
    snprintf(dbpath, sizeof dbpath, "%s/garbage.db", dir);
    {
        FILE *f = fopen(dbpath, "wb");
        ck_assert_ptr_nonnull(f);
        fputs("this is not a database, it is a text file of some length..........................."
              "..................................................................................",
              f);
        fclose(f);
    }
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), OTAUP_E_DB);
    /* missing directory */
    ck_assert_int_eq(otaup_registry_sqlite_open("/nonexistent/dir/reg.db", &o, &reg), OTAUP_E_IO);
}
END_TEST

/* Another process holds the write lock (a sqlite3 shell inside a
 * transaction): opening a registry of the current schema writes nothing,
 * so it neither waits for the lock nor fails behind it; reads work. */
START_TEST(test_open_while_write_locked)
{
    sqlite3 *db;
    otaup_registry *reg = open_reg(master);
    otaup_registry_options o;
    otaup_reg_terminal t;
    char err[200] = "";
    add_terminal(reg, "T1", "M1", "1.0");
    otaup_registry_free(reg);
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE; INSERT INTO audit(time, terminal, event, detail) "
                                      "VALUES(0, '-', 'x', 'held')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    otaup_registry_options_init(&o);
    o.master_key = master;
    o.busy_timeout_ms = 200;
    o.errbuf = err;
    o.errbuf_len = sizeof err;
    reg = NULL;
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), 0);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    /* a write waits busy_timeout_ms, then says why */
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "up-to-date"), OTAUP_E_DB);
    ck_assert_ptr_nonnull(strstr(otaup_registry_errmsg(reg), "locked"));
    ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(otaup_registry_terminal_set_status(reg, "T1", "up-to-date"), 0);
    otaup_registry_free(reg);
    sqlite3_close(db);
}
END_TEST

START_TEST(test_version_cmp)
{
    ck_assert_int_lt(otaup_version_cmp("1.9", "1.10"), 0);
    ck_assert_int_gt(otaup_version_cmp("2.0", "1.99"), 0);
    ck_assert_int_eq(otaup_version_cmp("1.02", "1.2"), 0);
    ck_assert_int_lt(otaup_version_cmp("1.0", "1.0.1"), 0);
    ck_assert_int_gt(otaup_version_cmp("v2", "v1"), 0);
    ck_assert_int_eq(otaup_version_cmp("", ""), 0);
}
END_TEST

START_TEST(test_releases_and_policy)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_terminal t;
    otaup_reg_release r;
    otaup_blob img = { NULL, 0 };
    int64_t r1, r2, r3;
    add_terminal(reg, "T1", "M1", "1.0");
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    ck_assert_int_eq(otaup_registry_policy(reg, &t, &r), OTAUP_E_NO_RELEASE);
    r1 = add_release(reg, "M1", "1.9", 10, 1, 0);
    r2 = add_release(reg, "M1", "1.10", 5, 2, 0);
    r3 = add_release(reg, "M2", "9.0", 10, 3, 0);
    (void)r3;
    ck_assert_int_ne(r1, r2);
    /* duplicate model+version+build time */
    {
        otaup_reg_release d;
        uint8_t x[4] = { 1, 2, 3, 4 };
        memset(&d, 0, sizeof d);
        snprintf(d.model, sizeof d.model, "M1");
        snprintf(d.version, sizeof d.version, "1.9");
        d.build_time = 10;
        ck_assert_int_eq(otaup_registry_release_add(reg, &d, x, 4), OTAUP_E_EXISTS);
    }
    ck_assert_int_eq(otaup_registry_policy(reg, &t, &r), 0);
    ck_assert_int_eq(r.id, r2); /* 1.10 > 1.9, and never another model's */
    ck_assert_int_eq(otaup_registry_release_get(reg, r2, &r, &img), 0);
    ck_assert_uint_eq(img.len, 1000);
    ck_assert_uint_eq(img.data[0], 2);
    ck_assert_int_eq(otaup_registry_release_by_hash(reg, r.image_hash, &r, NULL), 0);
    ck_assert_int_eq(r.id, r2);
    otaup_blob_free(&img);
    /* the terminal already runs the newest: nothing to do */
    memcpy(t.image_hash, r.image_hash, sizeof t.image_hash);
    snprintf(t.version, sizeof t.version, "1.10");
    ck_assert_int_eq(otaup_registry_policy(reg, &t, &r), OTAUP_E_NO_RELEASE);
    /* a terminal newer than every release: no downgrade... */
    snprintf(t.version, sizeof t.version, "3.0");
    t.image_hash[0] ^= 1;
    ck_assert_int_eq(otaup_registry_policy(reg, &t, &r), OTAUP_E_DOWNGRADE);
    /* ...unless the newest release is marked so */
    add_release(reg, "M1", "2.0", 1, 4, 1);
    ck_assert_int_eq(otaup_registry_policy(reg, &t, &r), 0);
    ck_assert_str_eq(r.version, "2.0");
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_delta_cache)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_delta_key k;
    otaup_blob d = { NULL, 0 };
    uint8_t bytes[300];
    memset(&k, 0, sizeof k);
    memset(bytes, 0x5A, sizeof bytes);
    k.src_hash[0] = 1;
    k.dst_hash[0] = 2;
    k.layout_len = 5;
    memcpy(k.layout, "inpl4", 5);
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_delta_put(reg, &k, bytes, sizeof bytes), 0);
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), 0);
    ck_assert_uint_eq(d.len, 300);
    ck_assert_int_eq(memcmp(d.data, bytes, 300), 0);
    otaup_blob_free(&d);
    k.layout[0] = 'a'; /* another geometry: another entry */
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), OTAUP_E_NOT_FOUND);
    k.layout_len = OTAUP_REG_LAYOUT_MAX + 1;
    ck_assert_int_eq(otaup_registry_delta_get(reg, &k, &d), OTAUP_E_INVAL);
    otaup_registry_free(reg);
}
END_TEST

/* ---- backups ---------------------------------------------------------- */

static void personal_data(uint8_t *p, size_t n)
{
    size_t i;
    const char *line = "Contact: Kim Min-jun, +82 10 5555 0142, kim@example.kr; ";
    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)line[i % strlen(line)];
    }
    /* and something unique so windows of it are unique */
    for (i = 0; i < n; i += 64) {
        p[i] = (uint8_t)(i / 64);
    }
}

static int file_contains(const char *path, const uint8_t *needle, size_t nlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long sz;
    size_t i;
    int found = 0;
    if (f == NULL) {
        return 0;
    }
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)sz + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    for (i = 0; i + nlen <= (size_t)sz && !found; i++) {
        if (buf[i] == needle[0] && memcmp(buf + i, needle, nlen) == 0) {
            found = 1;
        }
    }
    free(buf);
    return found;
}

/* Does any of the database's files hold these bytes? */
static int db_contains(const uint8_t *needle, size_t nlen)
{
    static const char *const sfx[] = { "", "-wal", "-journal", "-shm" };
    char p[320];
    size_t i;
    for (i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, sfx[i]);
        if (file_contains(p, needle, nlen)) {
            return 1;
        }
    }
    return 0;
}

static void sealed_bytes(const char *terminal, uint32_t region, uint8_t *out, size_t n, size_t off)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    char sql[200];
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "SELECT sealed FROM backups WHERE terminal='%s' AND region=%u", terminal,
             region);
    ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_ge(sqlite3_column_bytes(st, 0), (int)(off + n));
    memcpy(out, (const uint8_t *)sqlite3_column_blob(st, 0) + off, n);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void store(otaup_registry *reg, const char *terminal, uint32_t region, const uint8_t *p,
                  size_t n)
{
    otaup_reg_backup b;
    memset(&b, 0, sizeof b);
    snprintf(b.terminal, sizeof b.terminal, "%s", terminal);
    b.region = region;
    b.session_id = 7;
    b.addr = 0x80000;
    b.len = (uint32_t)n;
    b.hash[0] = 0x42;
    ck_assert_int_eq(otaup_registry_backup_store(reg, &b, p, n), 0);
}

START_TEST(test_backup_roundtrip_and_tamper)
{
    otaup_registry *reg = open_reg(master);
    otaup_blob out = { NULL, 0 };
    otaup_reg_backup m;
    uint8_t data[5000];
    uint8_t wrong[OTAUP_REG_KEY_LEN];
    sqlite3 *db;
    personal_data(data, sizeof data);
    add_terminal(reg, "T1", "M1", "1.0");
    store(reg, "T1", 0, data, sizeof data);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 0, &m, &out), 0);
    ck_assert_uint_eq(out.len, sizeof data);
    ck_assert_int_eq(memcmp(out.data, data, sizeof data), 0);
    ck_assert_uint_eq(m.addr, 0x80000);
    ck_assert_uint_eq(m.hash[0], 0x42);
    otaup_blob_free(&out);
    /* encrypted at rest: no 48-byte window of the plaintext is in the files */
    ck_assert(!db_contains(data + 100, 48));
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 1, &m, &out), OTAUP_E_NOT_FOUND);
    otaup_registry_free(reg);

    /* a wrong master key cannot open it */
    memcpy(wrong, master, sizeof wrong);
    wrong[0] ^= 1;
    reg = open_reg(wrong);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 0, &m, &out), OTAUP_E_DECRYPT);
    otaup_registry_free(reg);
    /* no master key: backups refused */
    reg = open_reg(NULL);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 0, &m, &out), OTAUP_E_KEY);
    otaup_registry_free(reg);

    /* a changed byte in the stored ciphertext is detected (the byte is
     * random: it becomes 0x00, or 0x01 where it was 0x00, so that it
     * always changes) */
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "UPDATE backups SET sealed = substr(sealed,1,100) ||"
                                  " CASE WHEN substr(sealed,101,1) = x'00' THEN x'01' ELSE x'00' END ||"
                                  " substr(sealed,102) WHERE terminal='T1'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    reg = open_reg(master);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 0, &m, &out), OTAUP_E_DECRYPT);
    ck_assert_ptr_null(out.data);
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_backup_moved_to_other_terminal_refused)
{
    otaup_registry *reg = open_reg(master);
    otaup_blob out = { NULL, 0 };
    uint8_t data[600];
    sqlite3 *db;
    personal_data(data, sizeof data);
    add_terminal(reg, "T1", "M1", "1.0");
    add_terminal(reg, "T2", "M1", "1.0");
    store(reg, "T1", 0, data, sizeof data);
    store(reg, "T2", 0, data, sizeof data); /* T2 gets a key */
    otaup_registry_free(reg);
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db,
                                  "UPDATE backups SET sealed=(SELECT sealed FROM backups WHERE terminal='T1')"
                                  " WHERE terminal='T2'",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    reg = open_reg(master);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T2", 0, NULL, &out), OTAUP_E_DECRYPT);
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_backup_deleted_irreversibly)
{
    otaup_registry *reg = open_reg(master);
    otaup_blob out = { NULL, 0 };
    uint8_t data[20000], ct[64], ct_end[64], other[64];
    int n;
    personal_data(data, sizeof data);
    add_terminal(reg, "T1", "M1", "1.0");
    add_terminal(reg, "T2", "M1", "1.0");
    store(reg, "T1", 0, data, 3000);
    store(reg, "T1", 1, data, sizeof data); /* spills into overflow pages */
    store(reg, "T2", 0, data, 3000);
    sealed_bytes("T1", 0, ct, sizeof ct, 500);
    sealed_bytes("T1", 1, ct_end, sizeof ct_end, 19000);
    sealed_bytes("T2", 0, other, sizeof other, 500);
    /* the test can fail: the bytes are there before */
    ck_assert(db_contains(ct, sizeof ct));
    ck_assert(db_contains(ct_end, sizeof ct_end));
    n = otaup_registry_backup_delete(reg, "T1");
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T1", 0, NULL, &out), OTAUP_E_NOT_FOUND);
    /* gone from the database file and from the WAL / journal */
    ck_assert(!db_contains(ct, sizeof ct));
    ck_assert(!db_contains(ct_end, sizeof ct_end));
    /* the other terminal's backup is untouched */
    ck_assert(db_contains(other, sizeof other));
    ck_assert_int_eq(otaup_registry_backup_load(reg, "T2", 0, NULL, &out), 0);
    otaup_blob_free(&out);
    /* the key is destroyed: a later backup of T1 gets a new key */
    {
        void *ctx;
        const otaup_registry_ops *ops = otaup_registry_backend(reg, &ctx);
        otaup_blob w = { NULL, 0 };
        ck_assert_int_eq(ops->terminal_key_get(ctx, "T1", &w), OTAUP_E_NOT_FOUND);
        ck_assert_int_eq(ops->terminal_key_get(ctx, "T2", &w), 0);
        otaup_blob_free(&w);
    }
    ck_assert_int_eq(otaup_registry_backup_delete(reg, "T1"), 0);
    otaup_registry_free(reg);
    ck_assert(!db_contains(ct, sizeof ct));
}
END_TEST

/* ---- outbox, requests, sessions, audit ---------------------------------- */

static int count_cb(const otaup_reg_notice *n, void *payload)
{
    (void)n;
    (*(int *)payload)++;
    return 0;
}

static int audit_cb(const otaup_reg_audit *a, void *payload)
{
    char *s = payload;
    strcat(s, a->event);
    strcat(s, ";");
    return 0;
}

START_TEST(test_outbox_requests_sessions_audit)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_notice n;
    otaup_reg_request q, q2;
    otaup_reg_session s, s2;
    char events[200] = "";
    int count = 0;
    memset(&n, 0, sizeof n);
    snprintf(n.terminal, sizeof n.terminal, "T1");
    snprintf(n.text, sizeof n.text, "New software is ready");
    ck_assert_int_eq(otaup_registry_notice_add(reg, &n), 0);
    ck_assert_int_gt(n.id, 0);
    ck_assert_int_eq(otaup_registry_notice_list(reg, NULL, 1, count_cb, &count), 0);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(otaup_registry_notice_mark_sent(reg, n.id, 5), 0);
    count = 0;
    ck_assert_int_eq(otaup_registry_notice_list(reg, NULL, 1, count_cb, &count), 0);
    ck_assert_int_eq(count, 0);
    count = 0;
    ck_assert_int_eq(otaup_registry_notice_list(reg, "T1", 0, count_cb, &count), 0);
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(otaup_registry_notice_mark_sent(reg, 999, 5), OTAUP_E_NOT_FOUND);

    memset(&q, 0, sizeof q);
    snprintf(q.terminal, sizeof q.terminal, "T1");
    snprintf(q.source, sizeof q.source, "ctl");
    q.release_id = 3;
    ck_assert_int_eq(otaup_registry_request_get(reg, "T1", &q2), OTAUP_E_NOT_FOUND);
    ck_assert_int_eq(otaup_registry_request_put(reg, &q), 0);
    ck_assert_int_eq(otaup_registry_request_get(reg, "T1", &q2), 0);
    ck_assert_int_eq(q2.release_id, 3);
    ck_assert_int_eq(otaup_registry_request_delete(reg, "T1"), 1);
    ck_assert_int_eq(otaup_registry_request_get(reg, "T1", &q2), OTAUP_E_NOT_FOUND);

    memset(&s, 0, sizeof s);
    snprintf(s.terminal, sizeof s.terminal, "T1");
    snprintf(s.state, sizeof s.state, "transfer");
    s.session_id = 0xDEADBEEF;
    s.bytes_sent = 5000000000ull;
    s.next_step = 17;
    s.result = OTAUP_E_TIMEOUT;
    ck_assert_int_eq(otaup_registry_session_put(reg, &s), 0);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T1", &s2), 0);
    ck_assert_uint_eq(s2.session_id, 0xDEADBEEF);
    ck_assert(s2.bytes_sent == 5000000000ull);
    ck_assert_uint_eq(s2.next_step, 17);
    ck_assert_int_eq(s2.result, OTAUP_E_TIMEOUT);
    ck_assert_str_eq(s2.state, "transfer");
    ck_assert_int_eq(otaup_registry_session_delete(reg, "T1"), 1);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T1", &s2), OTAUP_E_NOT_FOUND);

    ck_assert_int_eq(otaup_registry_audit(reg, "T1", "info", "version %s", "1.0"), 0);
    ck_assert_int_eq(otaup_registry_audit(reg, "T2", "other", NULL), 0);
    ck_assert_int_eq(otaup_registry_audit(reg, "T1", "backup", "%d regions", 2), 0);
    ck_assert_int_eq(otaup_registry_audit_list(reg, "T1", 0, audit_cb, events), 0);
    ck_assert_str_eq(events, "info;backup;");
    events[0] = '\0';
    ck_assert_int_eq(otaup_registry_audit_list(reg, NULL, 2, audit_cb, events), 0);
    ck_assert_str_eq(events, "other;backup;");
    otaup_registry_free(reg);
}
END_TEST

START_TEST(test_keyfile)
{
    char p[320];
    uint8_t k1[32], k2[32];
    FILE *f;
    snprintf(p, sizeof p, "%s/master.key", dir);
    ck_assert_int_eq(otaup_registry_keyfile(p, 0, k1), OTAUP_E_IO);
    ck_assert_int_eq(otaup_registry_keyfile(p, 1, k1), 0);
    ck_assert_int_eq(otaup_registry_keyfile(p, 0, k2), 0);
    ck_assert_int_eq(memcmp(k1, k2, 32), 0);
    ck_assert_int_eq(chmod(p, 0644), 0);
    ck_assert_int_eq(otaup_registry_keyfile(p, 0, k2), OTAUP_E_KEY);
    f = fopen(p, "w");
    fputs("zz not hex", f);
    fclose(f);
    ck_assert_int_eq(chmod(p, 0600), 0);
    ck_assert_int_eq(otaup_registry_keyfile(p, 0, k2), OTAUP_E_KEY);
}
END_TEST

/* The unsent notices of a terminal, in order: their release ids. */
struct unsent {
    int64_t ids[8];
    int n;
};

static int unsent_cb(const otaup_reg_notice *n, void *payload)
{
    struct unsent *u = payload;
    if (u->n < 8) {
        u->ids[u->n] = n->release_id;
    }
    u->n++;
    return 0;
}

static int unsent_count(otaup_registry *reg, const char *term, struct unsent *u)
{
    memset(u, 0, sizeof *u);
    ck_assert_int_eq(otaup_registry_notice_list(reg, term, 1, unsent_cb, u), 0);
    return u->n;
}

/* What otaup_registry_notify() queues (or finds) for (term, release). */
static void notice_for(otaup_registry *reg, const char *term, int64_t release, otaup_reg_notice *out)
{
    otaup_reg_terminal t;
    otaup_reg_release r;
    ck_assert_int_eq(otaup_registry_terminal_get(reg, term, &t), 0);
    ck_assert_int_eq(otaup_registry_release_get(reg, release, &r, NULL), 0);
    ck_assert_int_ge(otaup_registry_notify(reg, &t, &r, out), 0);
}

/* A notice offering release R stayed in the outbox, unsent, once R was no
 * longer due (a newer release published, the terminal on R or newer): the
 * reference tool skipped it at every run, any other deliverer sent it,
 * and when R was due again (the newer one withdrawn) the old notice, with
 * the text of the terminal as it was, went out instead of a new one.
 * otaup_registry_notice_check() drops it (sent < 0: out of the unsent
 * list, never delivered), holds one whose release is withdrawn, and
 * otaup_registry_notify() queues R afresh when R is due again. */
START_TEST(test_outbox_out_of_date_notices)
{
    otaup_registry *reg = open_reg(master);
    otaup_reg_notice n2, n3, n2b;
    otaup_reg_terminal t;
    struct unsent u;
    int64_t r2, r3;
    char events[4000] = "";
    add_release(reg, "M", "1.0", 1000, 1, 0);
    r2 = add_release(reg, "M", "2.0", 2000, 2, 0);
    add_terminal(reg, "T1", "M", "1.0");
    /* due: 2.0 for T1 on 1.0 */
    notice_for(reg, "T1", r2, &n2);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2), OTAUP_REG_NOTICE_DUE);
    /* withdrawn: held, still unsent; restored: due again */
    ck_assert_int_ge(otaup_registry_release_withdraw(reg, r2, 0, "test", NULL), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2), OTAUP_REG_NOTICE_HELD);
    ck_assert_int_eq(unsent_count(reg, "T1", &u), 1);
    ck_assert_int_eq(otaup_registry_release_restore(reg, r2), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2), OTAUP_REG_NOTICE_DUE);
    /* a newer release published: 2.0's notice is out of date, dropped */
    r3 = add_release(reg, "M", "3.0", 3000, 3, 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2), OTAUP_REG_NOTICE_STALE);
    ck_assert_int_eq(unsent_count(reg, "T1", &u), 0); /* gone from the unsent list */
    notice_for(reg, "T1", r3, &n3);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n3), OTAUP_REG_NOTICE_DUE);
    /* 3.0 withdrawn while T1 reports 1.5: 2.0 is due again and gets a new
     * notice for the terminal as it is (the dropped one does not count) */
    ck_assert_int_ge(otaup_registry_release_withdraw(reg, r3, 0, "test", NULL), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n3), OTAUP_REG_NOTICE_HELD);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    snprintf(t.version, sizeof t.version, "1.5");
    t.build_time = 1500;
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    notice_for(reg, "T1", r2, &n2b);
    ck_assert_int_ne(n2b.id, n2.id);
    ck_assert_ptr_nonnull(strstr(n2b.text, "(you have 1.5)"));
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2b), OTAUP_REG_NOTICE_DUE);
    ck_assert_int_eq(unsent_count(reg, "T1", &u), 2); /* 3.0's (held) and 2.0's new one */
    ck_assert_int_eq(u.ids[0], r3);
    ck_assert_int_eq(u.ids[1], r2);
    /* the terminal reports 2.0 (its image): its notice is out of date */
    {
        otaup_reg_release r;
        ck_assert_int_eq(otaup_registry_release_get(reg, r2, &r, NULL), 0);
        memcpy(t.image_hash, r.image_hash, sizeof t.image_hash);
        t.image_size = r.image_size;
    }
    snprintf(t.version, sizeof t.version, "2.0");
    t.build_time = 2000;
    ck_assert_int_eq(otaup_registry_terminal_put(reg, &t), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n2b), OTAUP_REG_NOTICE_STALE);
    ck_assert_int_eq(unsent_count(reg, "T1", &u), 1); /* 3.0's, held */
    /* a terminal the registry does not hold: nothing says it is not due */
    memset(&n3, 0, sizeof n3);
    snprintf(n3.terminal, sizeof n3.terminal, "T9");
    n3.release_id = r2;
    ck_assert_int_eq(otaup_registry_notice_add(reg, &n3), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n3), OTAUP_REG_NOTICE_DUE);
    /* a release the registry does not hold: dropped */
    n3.release_id = 999;
    ck_assert_int_eq(otaup_registry_notice_add(reg, &n3), 0);
    ck_assert_int_eq(otaup_registry_notice_check(reg, &n3), OTAUP_REG_NOTICE_STALE);
    ck_assert_int_eq(unsent_count(reg, "T9", &u), 1);
    ck_assert_int_eq(u.ids[0], r2);
    ck_assert_int_eq(otaup_registry_notice_check(reg, NULL), OTAUP_E_INVAL);
    ck_assert_int_ge(otaup_registry_audit_list(reg, "T1", 100, audit_cb, events), 0);
    ck_assert_ptr_nonnull(strstr(events, "notice-dropped"));
    otaup_registry_free(reg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("sqlite");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_terminals_and_reopen);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_schema);
    tcase_add_test(tc, test_open_while_write_locked);
    tcase_add_test(tc, test_version_cmp);
    tcase_add_test(tc, test_releases_and_policy);
    tcase_add_test(tc, test_delta_cache);
    tcase_add_test(tc, test_backup_roundtrip_and_tamper);
    tcase_add_test(tc, test_backup_moved_to_other_terminal_refused);
    tcase_add_test(tc, test_backup_deleted_irreversibly);
    tcase_add_test(tc, test_outbox_requests_sessions_audit);
    tcase_add_test(tc, test_outbox_out_of_date_notices);
    tcase_add_test(tc, test_keyfile);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
