/*
 * otaup — the SQLite registry backend (docs/server.md, "Registry").
 *
 * One database file, created and migrated on open (table schema_version).
 * WAL journal so that the daemon and the operator tool can use the file at
 * the same time; secure_delete=ON so that deleted rows are overwritten
 * with zeros; after a backup is deleted the WAL is checkpointed and
 * truncated so no frame with the old bytes survives in the -wal file.
 * Server side, C11.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "otaup/error.h"
#include "otaup/registry.h"

/* 1: the first tables; 2: releases.withdrawn (docs/server.md, "SQLite backend") */
#define SCHEMA_VERSION 2

typedef struct sqlreg {
    sqlite3 *db;
    char err[256];
    unsigned busy_ms; /* how long a statement waits for another writer's lock */
    unsigned waited;  /* ms this locking event has waited so far */
    int locked;       /* a statement waited busy_ms in vain; no write went through since */
} sqlreg;

/* While the write lock is known to be held elsewhere (a statement waited
 * busy_ms for it in vain and no write went through since), a statement
 * waits this long at most: a caller that runs many sessions in one loop
 * (otaupd) is held up once per lock, not busy_ms per write
 * (docs/server.md, "SQLite backend"). */
#define BUSY_FAST_MS 50u

static int busy_cb(void *p, int n)
{
    sqlreg *r = p;
    unsigned limit = r->locked && r->busy_ms > BUSY_FAST_MS ? BUSY_FAST_MS : r->busy_ms, d;
    if (n == 0) {
        r->waited = 0;
    }
    if (r->waited >= limit) {
        if (limit == r->busy_ms) {
            r->locked = 1;
        }
        return 0; /* SQLITE_BUSY */
    }
    d = n < 5 ? 1u << n : 20u;
    if (d > limit - r->waited) {
        d = limit - r->waited;
    }
    sqlite3_sleep((int)d);
    r->waited += d;
    return 1;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int dberr(sqlreg *r, int rc, const char *what)
{
    snprintf(r->err, sizeof r->err, "%s: %s (%d)%s", what, sqlite3_errmsg(r->db), rc,
             (rc & 0xff) == SQLITE_BUSY && r->locked
                 ? "; another process holds the write lock: writes wait 50 ms until one goes through"
                 : "");
    if (rc == SQLITE_CONSTRAINT) {
        return OTAUP_E_EXISTS;
    }
    return OTAUP_E_DB;
}

static int prep(sqlreg *r, sqlite3_stmt **st, const char *sql)
{
    int rc = sqlite3_prepare_v2(r->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? 0 : dberr(r, rc, "prepare");
}

static int exec(sqlreg *r, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        snprintf(r->err, sizeof r->err, "%s", msg != NULL ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return OTAUP_E_DB;
    }
    return 0;
}

/* Run a statement that returns no rows; finalizes it. */
static int run(sqlreg *r, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        r->locked = 0; /* a write went through: the next lock is waited for in full again */
        return 0;
    }
    return dberr(r, rc, what);
}

static void text_out(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static void bytes_out(uint8_t *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const void *b = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    memset(dst, 0, cap);
    if (b != NULL) {
        memcpy(dst, b, n < cap ? n : cap);
    }
}

static int blob_out(otaup_blob *out, sqlite3_stmt *st, int col)
{
    const void *b;
    size_t n;
    if (out == NULL) {
        return 0;
    }
    b = sqlite3_column_blob(st, col);
    n = (size_t)sqlite3_column_bytes(st, col);
    out->data = malloc(n ? n : 1);
    if (out->data == NULL) {
        out->len = 0;
        return OTAUP_E_NOMEM;
    }
    if (n) {
        memcpy(out->data, b, n);
    }
    out->len = n;
    return 0;
}

/* ---- schema ----------------------------------------------------------- */

static const char *const schema_v1 =
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
    "CREATE INDEX audit_terminal ON audit(terminal, id);";

/* Version 2: a release can be withdrawn (0 = offered; existing rows stay offered). */
static const char *const schema_v2 = "ALTER TABLE releases ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;";

static int schema_mark(sqlreg *r, int version)
{
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO schema_version VALUES(%d, %lld)", version, (long long)now_ms());
    return exec(r, sql);
}

static int schema_version(sqlreg *r, int *version)
{
    sqlite3_stmt *st;
    int rc, exists = 0;
    *version = 0;
    rc = prep(r, &st, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_version'");
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        exists = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    if (!exists) {
        return 0;
    }
    rc = prep(r, &st, "SELECT max(version) FROM schema_version");
    if (rc < 0) {
        return rc;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        *version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return 0;
}

static int migrate(sqlreg *r, int read_only)
{
    int v, rc;
    if (!read_only) {
        /* a registry of this schema needs nothing written: look first
         * under a read transaction, so that opening it does not wait for
         * (or fail behind) another process's write lock */
        rc = exec(r, "BEGIN");
        if (rc == 0) {
            rc = schema_version(r, &v);
            sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
            if (rc == 0 && v == SCHEMA_VERSION) {
                return 0;
            }
        }
    }
    rc = exec(r, read_only ? "BEGIN" : "BEGIN IMMEDIATE");
    if (rc < 0) {
        return rc;
    }
    rc = schema_version(r, &v);
    if (rc == 0 && v > SCHEMA_VERSION) {
        snprintf(r->err, sizeof r->err, "registry schema version %d is newer than this program (%d)",
                 v, SCHEMA_VERSION);
        rc = OTAUP_E_DB_SCHEMA;
    }
    if (rc == 0 && v == 0 && !read_only) {
        /* a file that has tables but no schema_version is not ours */
        sqlite3_stmt *st;
        int n = 0;
        rc = prep(r, &st, "SELECT count(*) FROM sqlite_master");
        if (rc == 0) {
            if (sqlite3_step(st) == SQLITE_ROW) {
                n = sqlite3_column_int(st, 0);
            }
            sqlite3_finalize(st);
            if (n != 0) {
                snprintf(r->err, sizeof r->err, "database has tables but no otaup schema");
                rc = OTAUP_E_DB_SCHEMA;
            }
        }
        if (rc == 0) {
            rc = exec(r, "CREATE TABLE schema_version(version INTEGER NOT NULL, applied INTEGER NOT NULL)");
        }
        if (rc == 0) {
            rc = exec(r, schema_v1);
        }
        if (rc == 0) {
            rc = schema_mark(r, 1);
        }
        if (rc == 0) {
            v = 1;
        }
    } else if (rc == 0 && v == 0 && read_only) {
        snprintf(r->err, sizeof r->err, "not an otaup registry");
        rc = OTAUP_E_DB_SCHEMA;
    }
    /* each later version in turn, in the same transaction: a file of any
     * earlier version opens (and is upgraded once) */
    if (rc == 0 && v == 1 && !read_only) {
        rc = exec(r, schema_v2);
        if (rc == 0) {
            rc = schema_mark(r, 2);
        }
        if (rc == 0) {
            v = 2;
        } else {
            char why[sizeof r->err];
            snprintf(why, sizeof why, "%s", r->err);
            snprintf(r->err, sizeof r->err, "upgrading the registry schema from 1 to 2: %.200s", why);
            rc = OTAUP_E_DB_SCHEMA;
        }
    } else if (rc == 0 && v == 1 && read_only) {
        /* read as is: no release of a version-1 file is withdrawn; the
         * temporary view shadows the table for this connection only */
        rc = exec(r, "CREATE TEMP VIEW releases AS SELECT *, 0 AS withdrawn FROM main.releases");
    }

    if (rc == 0) {
        rc = exec(r, "COMMIT");
    } else {
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

/* ---- ops ----------------------------------------------------------------- */

static void s_close(void *ctx)
{
    sqlreg *r = ctx;
    if (r != NULL) {
        sqlite3_close(r->db);
        free(r);
    }
}

static const char *s_errmsg(void *ctx)
{
    return ((sqlreg *)ctx)->err;
}

static int s_terminal_put(void *ctx, const otaup_reg_terminal *t)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int64_t now = now_ms();
    int rc = prep(r, &st,
                  "INSERT INTO terminals(id, model, version, build_time, image_hash, image_size, status,"
                  " first_seen, last_seen, layout) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)"
                  " ON CONFLICT(id) DO UPDATE SET model=?2, version=?3, build_time=?4, image_hash=?5,"
                  " image_size=?6, status=?7, last_seen=?9, layout=?10");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, t->id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, t->model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, t->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, t->build_time);
    sqlite3_bind_blob(st, 5, t->image_hash, OTAUP_REG_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 6, t->image_size);
    sqlite3_bind_text(st, 7, t->status[0] ? t->status : "new", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 8, t->first_seen ? t->first_seen : now);
    sqlite3_bind_int64(st, 9, t->last_seen ? t->last_seen : now);
    sqlite3_bind_blob(st, 10, t->layout, (int)t->layout_len, SQLITE_TRANSIENT);
    return run(r, st, "terminal_put");
}

static void terminal_row(sqlite3_stmt *st, otaup_reg_terminal *t)
{
    memset(t, 0, sizeof *t);
    text_out(t->id, sizeof t->id, st, 0);
    text_out(t->model, sizeof t->model, st, 1);
    text_out(t->version, sizeof t->version, st, 2);
    t->build_time = sqlite3_column_int64(st, 3);
    bytes_out(t->image_hash, sizeof t->image_hash, st, 4);
    t->image_size = (uint32_t)sqlite3_column_int64(st, 5);
    text_out(t->status, sizeof t->status, st, 6);
    t->first_seen = sqlite3_column_int64(st, 7);
    t->last_seen = sqlite3_column_int64(st, 8);
    bytes_out(t->layout, sizeof t->layout, st, 9);
    t->layout_len = (uint32_t)sqlite3_column_bytes(st, 9);
    if (t->layout_len > sizeof t->layout) {
        t->layout_len = 0;
    }
}

#define TERMINAL_COLS \
    "id, model, version, build_time, image_hash, image_size, status, first_seen, last_seen, layout"

static int s_terminal_get(void *ctx, const char *id, otaup_reg_terminal *out)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT " TERMINAL_COLS " FROM terminals WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        terminal_row(st, out);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "terminal_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_terminal_list(void *ctx, otaup_reg_terminal_cb cb, void *payload)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    otaup_reg_terminal t;
    int rc = prep(r, &st, "SELECT " TERMINAL_COLS " FROM terminals ORDER BY id");
    if (rc < 0) {
        return rc;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int stop;
        terminal_row(st, &t);
        stop = cb(&t, payload);
        if (stop != 0) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(r, rc, "terminal_list");
}

static int s_terminal_set_status(void *ctx, const char *id, const char *status)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "UPDATE terminals SET status=?2 WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
    rc = run(r, st, "terminal_set_status");
    if (rc == 0 && sqlite3_changes(r->db) == 0) {
        rc = OTAUP_E_NOT_FOUND;
    }
    return rc;
}

static int s_terminal_key_get(void *ctx, const char *id, otaup_blob *wrapped)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT wrapped_key FROM terminals WHERE id=?1 AND wrapped_key IS NOT NULL");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = blob_out(wrapped, st, 0);
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "terminal_key_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_terminal_key_put(void *ctx, const char *id, const uint8_t *wrapped, size_t len)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "UPDATE terminals SET wrapped_key=?2 WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    if (wrapped != NULL) {
        sqlite3_bind_blob(st, 2, wrapped, (int)len, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 2);
    }
    rc = run(r, st, "terminal_key_put");
    if (rc == 0 && sqlite3_changes(r->db) == 0) {
        rc = OTAUP_E_NOT_FOUND; /* keys belong to known terminals */
    }
    return rc;
}

#define RELEASE_COLS \
    "id, model, version, build_time, image_hash, image_size, security_counter, allow_downgrade, created," \
    " withdrawn"

static void release_row(sqlite3_stmt *st, otaup_reg_release *x)
{
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(st, 0);
    text_out(x->model, sizeof x->model, st, 1);
    text_out(x->version, sizeof x->version, st, 2);
    x->build_time = sqlite3_column_int64(st, 3);
    bytes_out(x->image_hash, sizeof x->image_hash, st, 4);
    x->image_size = (uint32_t)sqlite3_column_int64(st, 5);
    x->security_counter = (uint32_t)sqlite3_column_int64(st, 6);
    x->allow_downgrade = sqlite3_column_int(st, 7);
    x->created = sqlite3_column_int64(st, 8);
    x->withdrawn = sqlite3_column_int64(st, 9);
}

static int s_release_add(void *ctx, otaup_reg_release *x, const uint8_t *image, size_t len)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st,
                  "INSERT INTO releases(model, version, build_time, image_hash, image_size,"
                  " security_counter, allow_downgrade, created, image) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)");
    if (rc < 0) {
        return rc;
    }
    if (x->created == 0) {
        x->created = now_ms();
    }
    sqlite3_bind_text(st, 1, x->model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, x->version, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, x->build_time);
    sqlite3_bind_blob(st, 4, x->image_hash, OTAUP_REG_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, x->image_size);
    sqlite3_bind_int64(st, 6, x->security_counter);
    sqlite3_bind_int(st, 7, x->allow_downgrade ? 1 : 0);
    sqlite3_bind_int64(st, 8, x->created);
    sqlite3_bind_blob64(st, 9, image, len, SQLITE_STATIC);
    rc = run(r, st, "release_add");
    if (rc == 0) {
        x->id = sqlite3_last_insert_rowid(r->db);
    }
    return rc;
}

static int release_one(sqlreg *r, sqlite3_stmt *st, otaup_reg_release *out, otaup_blob *image)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        release_row(st, out);
        rc = blob_out(image, st, 10);
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "release_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_release_get(void *ctx, int64_t id, otaup_reg_release *out, otaup_blob *image)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, image != NULL ? "SELECT " RELEASE_COLS ", image FROM releases WHERE id=?1"
                                        : "SELECT " RELEASE_COLS " FROM releases WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    return release_one(r, st, out, image);
}

static int s_release_by_hash(void *ctx, const uint8_t hash[OTAUP_REG_HASH_LEN], otaup_reg_release *out,
                             otaup_blob *image)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st,
                  image != NULL ? "SELECT " RELEASE_COLS ", image FROM releases WHERE image_hash=?1 ORDER BY id LIMIT 1"
                                : "SELECT " RELEASE_COLS " FROM releases WHERE image_hash=?1 ORDER BY id LIMIT 1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_blob(st, 1, hash, OTAUP_REG_HASH_LEN, SQLITE_TRANSIENT);
    return release_one(r, st, out, image);
}

static int s_release_list(void *ctx, const char *model, otaup_reg_release_cb cb, void *payload)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    otaup_reg_release x;
    int rc = prep(r, &st, "SELECT " RELEASE_COLS " FROM releases WHERE ?1 IS NULL OR model=?1 ORDER BY id");
    if (rc < 0) {
        return rc;
    }
    if (model != NULL) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_TRANSIENT);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int stop;
        release_row(st, &x);
        stop = cb(&x, payload);
        if (stop != 0) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(r, rc, "release_list");
}

static int s_release_set_withdrawn(void *ctx, int64_t id, int64_t when)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "UPDATE releases SET withdrawn=?2 WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, when);
    rc = run(r, st, "release_set_withdrawn");
    if (rc == 0 && sqlite3_changes(r->db) == 0) {
        rc = OTAUP_E_NOT_FOUND;
    }
    return rc;
}

static void bind_delta_key(sqlite3_stmt *st, const otaup_reg_delta_key *k)
{
    sqlite3_bind_blob(st, 1, k->src_hash, OTAUP_REG_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, k->dst_hash, OTAUP_REG_HASH_LEN, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 3, k->layout, (int)k->layout_len, SQLITE_TRANSIENT);
}

static int s_delta_get(void *ctx, const otaup_reg_delta_key *k, otaup_blob *delta)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT delta FROM deltas WHERE src_hash=?1 AND dst_hash=?2 AND layout=?3");
    if (rc < 0) {
        return rc;
    }
    bind_delta_key(st, k);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = blob_out(delta, st, 0);
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "delta_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_delta_put(void *ctx, const otaup_reg_delta_key *k, const uint8_t *delta, size_t len)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "INSERT OR REPLACE INTO deltas(src_hash, dst_hash, layout, created, delta)"
                          " VALUES(?1,?2,?3,?4,?5)");
    if (rc < 0) {
        return rc;
    }
    bind_delta_key(st, k);
    sqlite3_bind_int64(st, 4, now_ms());
    sqlite3_bind_blob64(st, 5, delta, len, SQLITE_STATIC);
    return run(r, st, "delta_put");
}

static int s_backup_put(void *ctx, const otaup_reg_backup *b, const uint8_t *sealed, size_t len)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "INSERT OR REPLACE INTO backups(terminal, region, session, addr, len, hash,"
                          " created, sealed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, b->terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, b->region);
    sqlite3_bind_int64(st, 3, b->session_id);
    sqlite3_bind_int64(st, 4, b->addr);
    sqlite3_bind_int64(st, 5, b->len);
    sqlite3_bind_blob(st, 6, b->hash, sizeof b->hash, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, b->created ? b->created : now_ms());
    sqlite3_bind_blob64(st, 8, sealed, len, SQLITE_STATIC);
    return run(r, st, "backup_put");
}

static void backup_row(sqlite3_stmt *st, otaup_reg_backup *b)
{
    memset(b, 0, sizeof *b);
    text_out(b->terminal, sizeof b->terminal, st, 0);
    b->region = (uint32_t)sqlite3_column_int64(st, 1);
    b->session_id = (uint32_t)sqlite3_column_int64(st, 2);
    b->addr = (uint32_t)sqlite3_column_int64(st, 3);
    b->len = (uint32_t)sqlite3_column_int64(st, 4);
    bytes_out(b->hash, sizeof b->hash, st, 5);
    b->created = sqlite3_column_int64(st, 6);
}

static int s_backup_get(void *ctx, const char *terminal, uint32_t region, otaup_reg_backup *out,
                        otaup_blob *sealed)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT terminal, region, session, addr, len, hash, created, sealed FROM backups"
                          " WHERE terminal=?1 AND region=?2");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, region);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        backup_row(st, out);
        rc = blob_out(sealed, st, 7);
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "backup_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_backup_list(void *ctx, const char *terminal, otaup_reg_backup_cb cb, void *payload)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    otaup_reg_backup b;
    int rc = prep(r, &st, "SELECT terminal, region, session, addr, len, hash, created FROM backups"
                          " WHERE ?1 IS NULL OR terminal=?1 ORDER BY terminal, region");
    if (rc < 0) {
        return rc;
    }
    if (terminal != NULL) {
        sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int stop;
        backup_row(st, &b);
        stop = cb(&b, payload);
        if (stop != 0) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(r, rc, "backup_list");
}

static int s_backup_delete(void *ctx, const char *terminal)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc, n, i;
    rc = prep(r, &st, "DELETE FROM backups WHERE terminal=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    rc = run(r, st, "backup_delete");
    if (rc < 0) {
        return rc;
    }
    n = sqlite3_changes(r->db);
    /* secure_delete zeroed the pages; now move them into the main file and
     * truncate the WAL so no earlier frame keeps the old bytes. A reader
     * that holds an old snapshot can delay this: retry a few times. */
    for (i = 0; i < 50; i++) {
        int log = 0, ckpt = 0;
        rc = sqlite3_wal_checkpoint_v2(r->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &ckpt);
        if (rc == SQLITE_OK) {
            break;
        }
        sqlite3_sleep(20);
    }
    if (rc != SQLITE_OK) {
        return dberr(r, rc, "backup_delete: WAL checkpoint (backup rows deleted, old frames remain)");
    }
    return n;
}

static int s_notice_add(void *ctx, otaup_reg_notice *n)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "INSERT INTO outbox(terminal, release_id, channel, text, created, sent)"
                          " VALUES(?1,?2,?3,?4,?5,?6)");
    if (rc < 0) {
        return rc;
    }
    if (n->created == 0) {
        n->created = now_ms();
    }
    sqlite3_bind_text(st, 1, n->terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, n->release_id);
    sqlite3_bind_text(st, 3, n->channel[0] ? n->channel : "sms", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, n->text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, n->created);
    sqlite3_bind_int64(st, 6, n->sent);
    rc = run(r, st, "notice_add");
    if (rc == 0) {
        n->id = sqlite3_last_insert_rowid(r->db);
    }
    return rc;
}

static int s_notice_list(void *ctx, const char *terminal, int only_unsent, otaup_reg_notice_cb cb,
                         void *payload)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    otaup_reg_notice n;
    int rc = prep(r, &st, "SELECT id, terminal, release_id, channel, text, created, sent FROM outbox"
                          " WHERE (?1 IS NULL OR terminal=?1) AND (?2 = 0 OR sent = 0) ORDER BY id");
    if (rc < 0) {
        return rc;
    }
    if (terminal != NULL) {
        sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int(st, 2, only_unsent ? 1 : 0);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int stop;
        memset(&n, 0, sizeof n);
        n.id = sqlite3_column_int64(st, 0);
        text_out(n.terminal, sizeof n.terminal, st, 1);
        n.release_id = sqlite3_column_int64(st, 2);
        text_out(n.channel, sizeof n.channel, st, 3);
        text_out(n.text, sizeof n.text, st, 4);
        n.created = sqlite3_column_int64(st, 5);
        n.sent = sqlite3_column_int64(st, 6);
        stop = cb(&n, payload);
        if (stop != 0) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(r, rc, "notice_list");
}

static int s_notice_mark_sent(void *ctx, int64_t id, int64_t when)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "UPDATE outbox SET sent=?2 WHERE id=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, when ? when : now_ms());
    rc = run(r, st, "notice_mark_sent");
    if (rc == 0 && sqlite3_changes(r->db) == 0) {
        rc = OTAUP_E_NOT_FOUND;
    }
    return rc;
}

static int s_request_put(void *ctx, const otaup_reg_request *q)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "INSERT OR REPLACE INTO requests(terminal, release_id, source, created)"
                          " VALUES(?1,?2,?3,?4)");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, q->terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, q->release_id);
    sqlite3_bind_text(st, 3, q->source[0] ? q->source : "ctl", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, q->created ? q->created : now_ms());
    return run(r, st, "request_put");
}

static int s_request_get(void *ctx, const char *terminal, otaup_reg_request *out)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT terminal, release_id, source, created FROM requests WHERE terminal=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        text_out(out->terminal, sizeof out->terminal, st, 0);
        out->release_id = sqlite3_column_int64(st, 1);
        text_out(out->source, sizeof out->source, st, 2);
        out->created = sqlite3_column_int64(st, 3);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "request_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int delete_by_terminal(sqlreg *r, const char *sql, const char *terminal)
{
    sqlite3_stmt *st;
    int rc = prep(r, &st, sql);
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    rc = run(r, st, "delete");
    return rc < 0 ? rc : sqlite3_changes(r->db);
}

static int s_request_delete(void *ctx, const char *terminal)
{
    return delete_by_terminal(ctx, "DELETE FROM requests WHERE terminal=?1", terminal);
}

static int s_session_put(void *ctx, const otaup_reg_session *s)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int64_t now = now_ms();
    int rc = prep(r, &st, "INSERT OR REPLACE INTO sessions(terminal, session_id, release_id, state,"
                          " next_step, steps_total, bytes_sent, bytes_total, retransmits, regions, result,"
                          " started, updated) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, s->terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, s->session_id);
    sqlite3_bind_int64(st, 3, s->release_id);
    sqlite3_bind_text(st, 4, s->state, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, s->next_step);
    sqlite3_bind_int64(st, 6, s->steps_total);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)s->bytes_sent);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)s->bytes_total);
    sqlite3_bind_int64(st, 9, s->retransmits);
    sqlite3_bind_int64(st, 10, s->regions);
    sqlite3_bind_int64(st, 11, s->result);
    sqlite3_bind_int64(st, 12, s->started ? s->started : now);
    sqlite3_bind_int64(st, 13, s->updated ? s->updated : now);
    return run(r, st, "session_put");
}

static int s_session_get(void *ctx, const char *terminal, otaup_reg_session *out)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "SELECT terminal, session_id, release_id, state, next_step, steps_total,"
                          " bytes_sent, bytes_total, retransmits, regions, result, started, updated"
                          " FROM sessions WHERE terminal=?1");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        text_out(out->terminal, sizeof out->terminal, st, 0);
        out->session_id = (uint32_t)sqlite3_column_int64(st, 1);
        out->release_id = sqlite3_column_int64(st, 2);
        text_out(out->state, sizeof out->state, st, 3);
        out->next_step = (uint32_t)sqlite3_column_int64(st, 4);
        out->steps_total = (uint32_t)sqlite3_column_int64(st, 5);
        out->bytes_sent = (uint64_t)sqlite3_column_int64(st, 6);
        out->bytes_total = (uint64_t)sqlite3_column_int64(st, 7);
        out->retransmits = (uint32_t)sqlite3_column_int64(st, 8);
        out->regions = (uint32_t)sqlite3_column_int64(st, 9);
        out->result = (int32_t)sqlite3_column_int64(st, 10);
        out->started = sqlite3_column_int64(st, 11);
        out->updated = sqlite3_column_int64(st, 12);
        rc = 0;
    } else {
        rc = rc == SQLITE_DONE ? OTAUP_E_NOT_FOUND : dberr(r, rc, "session_get");
    }
    sqlite3_finalize(st);
    return rc;
}

static int s_session_delete(void *ctx, const char *terminal)
{
    return delete_by_terminal(ctx, "DELETE FROM sessions WHERE terminal=?1", terminal);
}

static int s_audit_add(void *ctx, const otaup_reg_audit *a)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    int rc = prep(r, &st, "INSERT INTO audit(time, terminal, event, detail) VALUES(?1,?2,?3,?4)");
    if (rc < 0) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, a->time ? a->time : now_ms());
    sqlite3_bind_text(st, 2, a->terminal, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, a->event, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, a->detail, -1, SQLITE_TRANSIENT);
    return run(r, st, "audit_add");
}

static int s_audit_list(void *ctx, const char *terminal, unsigned limit, otaup_reg_audit_cb cb,
                        void *payload)
{
    sqlreg *r = ctx;
    sqlite3_stmt *st;
    otaup_reg_audit a;
    int rc = prep(r, &st, "SELECT id, time, terminal, event, detail FROM ("
                          " SELECT * FROM audit WHERE ?1 IS NULL OR terminal=?1 ORDER BY id DESC LIMIT ?2)"
                          " ORDER BY id");
    if (rc < 0) {
        return rc;
    }
    if (terminal != NULL) {
        sqlite3_bind_text(st, 1, terminal, -1, SQLITE_TRANSIENT);
    }
    sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int stop;
        memset(&a, 0, sizeof a);
        a.id = sqlite3_column_int64(st, 0);
        a.time = sqlite3_column_int64(st, 1);
        text_out(a.terminal, sizeof a.terminal, st, 2);
        text_out(a.event, sizeof a.event, st, 3);
        text_out(a.detail, sizeof a.detail, st, 4);
        stop = cb(&a, payload);
        if (stop != 0) {
            sqlite3_finalize(st);
            return stop;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : dberr(r, rc, "audit_list");
}

static const otaup_registry_ops sqlite_ops = {
    OTAUP_REGISTRY_OPS_VERSION,
    s_close,
    s_errmsg,
    s_terminal_put,
    s_terminal_get,
    s_terminal_list,
    s_terminal_set_status,
    s_terminal_key_get,
    s_terminal_key_put,
    s_release_add,
    s_release_get,
    s_release_list,
    s_release_by_hash,
    s_delta_get,
    s_delta_put,
    s_backup_put,
    s_backup_get,
    s_backup_list,
    s_backup_delete,
    s_notice_add,
    s_notice_list,
    s_notice_mark_sent,
    s_request_put,
    s_request_get,
    s_request_delete,
    s_session_put,
    s_session_get,
    s_session_delete,
    s_audit_add,
    s_audit_list,
    s_release_set_withdrawn,
};

int otaup_registry_sqlite_open(const char *path, const otaup_registry_options *opts,
                               otaup_registry **out)
{
    sqlreg *r;
    int rc, flags;
    unsigned busy = 5000;
    int ro = 0;
    if (path == NULL || out == NULL) {
        return OTAUP_E_INVAL;
    }
    if (opts != NULL) {
        if (opts->version == 0 || opts->version > OTAUP_REGISTRY_OPTIONS_VERSION) {
            return OTAUP_E_UNSUPPORTED;
        }
        if (opts->busy_timeout_ms) {
            busy = opts->busy_timeout_ms;
        }
        ro = opts->read_only;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return OTAUP_E_NOMEM;
    }
    flags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    rc = sqlite3_open_v2(path, &r->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        if (opts != NULL && opts->errbuf != NULL && opts->errbuf_len > 0) {
            snprintf(opts->errbuf, opts->errbuf_len, "%s: %s", path,
                     r->db != NULL ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
        }
        if (r->db != NULL) {
            sqlite3_close(r->db);
        }
        free(r);
        return rc == SQLITE_CANTOPEN ? OTAUP_E_IO : OTAUP_E_DB;
    }
    r->busy_ms = busy;
    sqlite3_busy_handler(r->db, busy_cb, r);
    /* secure_delete first: it applies to every later deletion */
    rc = exec(r, "PRAGMA secure_delete=ON; PRAGMA foreign_keys=ON");
    if (rc == 0 && !ro) {
        rc = exec(r, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL");
    }
    if (rc == 0) {
        rc = migrate(r, ro);
    }
    if (rc == 0 && sqlite3_db_readonly(r->db, "main") == 0) {
        /* check it is really on (a build could have it compiled out) */
        sqlite3_stmt *st;
        rc = prep(r, &st, "PRAGMA secure_delete");
        if (rc == 0) {
            if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 1) {
                snprintf(r->err, sizeof r->err, "secure_delete is not available");
                rc = OTAUP_E_UNSUPPORTED;
            }
            sqlite3_finalize(st);
        }
    }
    if (rc < 0) {
        /* SQLITE_NOTADB etc. surface as OTAUP_E_DB with the message in errbuf */
        if (opts != NULL && opts->errbuf != NULL && opts->errbuf_len > 0) {
            snprintf(opts->errbuf, opts->errbuf_len, "%s", r->err);
        }
        s_close(r);
        return rc;
    }
    rc = otaup_registry_new(&sqlite_ops, r, opts, out);
    if (rc < 0) {
        s_close(r);
    }
    return rc;
}
