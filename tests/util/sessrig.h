/*
 * The session driver's message-level rig, shared by test_session.c and
 * test_srvrev_session.c: a real SQLite registry in a temporary directory
 * (SESSRIG_DIR, a mkdtemp template the including file defines) holding
 * releases 1.0 and 2.0 of model M1, two user-data regions, a synthetic
 * record stream with restart points at steps 0, 4, 8 and 12, a delta
 * provider that serves it, the terminal's INFO, and the first messages
 * of a scripted terminal. Static functions: include it once, in one test
 * file.
 */
#ifndef OTAUP_TEST_SESSRIG_H
#define OTAUP_TEST_SESSRIG_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/record.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "server/session_core.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#ifndef SESSRIG_DIR
#error "define SESSRIG_DIR (a mkdtemp template) before including sessrig.h"
#endif

static char dir[128], dbpath[200];
static otaup_registry *reg;
static uint8_t v1[40000], v2[40000];
static uint8_t userdata[2][3000];
static uint8_t body[120000];
static size_t body_len;
static int64_t rel2;

static void hash128(const uint8_t *p, size_t n, uint8_t out[16])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h.low64 >> (8 * i));
        out[8 + i] = (uint8_t)(h.high64 >> (8 * i));
    }
}

static void hash64(const uint8_t *p, size_t n, uint8_t out[8])
{
    uint64_t h = XXH3_64bits(p, n);
    int i;
    for (i = 0; i < 8; i++) {
        out[i] = (uint8_t)(h >> (8 * i));
    }
}

static void put_rec(const otaup_record *r)
{
    int n = otaup_record_encode(r, body + body_len, sizeof body - body_len);
    ck_assert_int_gt(n, 0);
    body_len += (size_t)n;
}

static void setup(void)
{
    uint8_t key[32];
    otaup_registry_options o;
    otaup_reg_release r;
    size_t i;
    otaup_record rec;
    snprintf(dir, sizeof dir, "%s", SESSRIG_DIR);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/reg.db", dir);
    memset(key, 0x5C, sizeof key);
    otaup_registry_options_init(&o);
    o.master_key = key;
    ck_assert_int_eq(otaup_registry_sqlite_open(dbpath, &o, &reg), 0);
    for (i = 0; i < sizeof v1; i++) {
        v1[i] = (uint8_t)(i * 31 + (i >> 7));
        v2[i] = (uint8_t)(i * 31 + (i >> 7) + (i > 20000));
    }
    for (i = 0; i < sizeof userdata[0]; i++) {
        userdata[0][i] = (uint8_t)("Kim: +82 10 5555 0142;"[i % 22]);
        userdata[1][i] = (uint8_t)("photo of the cat, 2026;"[i % 23] ^ (uint8_t)i);
    }
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "1.0");
    r.build_time = 100;
    ck_assert_int_eq(otaup_registry_release_add(reg, &r, v1, sizeof v1), 0);
    snprintf(r.version, sizeof r.version, "2.0");
    r.build_time = 200;
    ck_assert_int_eq(otaup_registry_release_add(reg, &r, v2, sizeof v2), 0);
    rel2 = r.id;
    /* a synthetic record stream with restart points at steps 0, 4, 8, 12 */
    body_len = 0;
    for (i = 0; i < 4; i++) {
        memset(&rec, 0, sizeof rec);
        rec.type = OTAUP_REC_SYNC;
        rec.index = (uint32_t)(4 * i);
        put_rec(&rec);
        memset(&rec, 0, sizeof rec);
        rec.type = OTAUP_REC_DATA;
        rec.flags = OTAUP_DATA_RESET;
        rec.data = v2 + 5000 * i;
        rec.data_len = 5000;
        put_rec(&rec);
    }
}

static void teardown(void)
{
    char cmd[200];
    otaup_registry_free(reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* delta provider: "HDRHDRHD" + the synthetic body */
static int test_delta(otaup_registry *r, const otaup_reg_terminal *t, const otaup_reg_release *rel,
                      const uint8_t *sig, size_t sig_len, otaup_blob *d, uint32_t *off, void *payload)
{
    (void)r, (void)t, (void)rel, (void)sig, (void)sig_len, (void)payload;
    d->len = 8 + body_len;
    d->data = malloc(d->len);
    memcpy(d->data, "HDRHDRHD", 8);
    memcpy(d->data + 8, body, body_len);
    *off = 8;
    return 0;
}

static otaup_sm_info info;

static void make_info(const char *id, const uint8_t *img)
{
    memset(&info, 0, sizeof info);
    snprintf(info.id, sizeof info.id, "%s", id);
    snprintf(info.model, sizeof info.model, "M1");
    snprintf(info.version, sizeof info.version, "1.0");
    info.build_time = 100;
    info.have_image_hash = 1;
    hash128(img, sizeof v1, info.image_hash);
    info.image_size = sizeof v1;
    otaup_geometry_uniform(&info.geo, 0x08000000, 4096, 32, 8);
    info.max_frame = 1024;
    info.ram = 32768;
    info.layout = 0;
    info.slot_addr = 0x08000000;
    info.slot_size = 24 * 4096;
    info.target_addr = 0x08000000;
    info.scratch_addr = 0x08000000 + 24 * 4096;
    info.scratch_size = 4096;
    info.caps = OTAUP_CAP_DEFLATE | OTAUP_CAP_BATCH | OTAUP_CAP_BACKUP | OTAUP_CAP_INPLACE | OTAUP_CAP_RESUME;
    info.nregions = 2;
    info.regions[0].id = 1;
    info.regions[0].addr = 0x08000000 + 26 * 4096;
    info.regions[0].len = sizeof userdata[0];
    info.regions[0].hash_alg = 1;
    hash64(userdata[0], sizeof userdata[0], info.regions[0].hash);
    info.regions[1].id = 2;
    info.regions[1].addr = 0x08000000 + 28 * 4096;
    info.regions[1].len = sizeof userdata[1];
    info.regions[1].hash_alg = 1;
    hash64(userdata[1], sizeof userdata[1], info.regions[1].hash);
}

static otaup_session *new_session(void)
{
    otaup_session_options o;
    otaup_session *s = NULL;
    otaup_session_options_init(&o);
    o.reg = reg;
    o.delta = test_delta;
    o.window_frames = 8;
    ck_assert_int_eq(otaup_session_new(&o, &s), 0);
    return s;
}

static int send_info(otaup_session *s, uint64_t now)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_INFO;
    m.info = &info;
    return otaup_session_input_msg(s, &m, now);
}

static int send_simple(otaup_session *s, uint8_t type, uint32_t seq, uint64_t now)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.seq = seq;
    m.window = 8;
    return otaup_session_input_msg(s, &m, now);
}

/* the scripted terminal acknowledges message m (cumulatively) */
static void ack(otaup_session *s, const otaup_sm *m, uint64_t now)
{
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, m->seq + 1, now), 0);
}

/* the next message out must be of `type` (HELLO and keep-alive PINGs are
 * acknowledged on the way) */
static const otaup_sm *expect(otaup_session *s, uint8_t type, uint64_t now)
{
    for (;;) {
        const otaup_sm *m = otaup_session_next_msg(s, now);
        ck_assert_msg(m != NULL, "expected message %u, got none (state %s)", type,
                      otaup_session_state_name(otaup_session_get_state(s)));
        if ((m->type == OTAUP_SM_HELLO || m->type == OTAUP_SM_PING_OUT) && type != m->type) {
            ack(s, m, now);
            continue;
        }
        ck_assert_msg(m->type == type, "expected message %u, got %u", type, m->type);
        return m;
    }
}

/* BACKUP_DATA for region `id`: bytes [off, off + n) of `whole`, the last
 * chunk with the whole region's XXH3-64; the session must answer expect_rc */
static void send_region_data(otaup_session *s, uint32_t id, uint32_t off, const uint8_t *d, size_t n,
                             const uint8_t *whole, size_t whole_len, uint64_t now, int expect_rc)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_BACKUP_DATA;
    m.region = id;
    m.offset = off;
    m.data = d;
    m.len = n;
    if (off + n == whole_len) {
        m.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
        m.hash_alg = OTAUP_HASH_XXH3_64;
        hash64(whole, whole_len, m.hash);
    }
    ck_assert_int_eq(otaup_session_input_msg(s, &m, now), expect_rc);
}

/* the scripted terminal's side of a consented upgrade with a backup of the
 * two userdata regions (define SESSRIG_BACKUP_RIG before the include) */
#ifdef SESSRIG_BACKUP_RIG
/* the terminal refuses frame `ref` with `code`, expecting `exp` next */
static int send_nack(otaup_session *s, uint32_t ref, uint32_t exp, int32_t code, uint64_t now)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_NACK;
    m.seq = exp;
    m.ref_seq = ref;
    m.code = code;
    return otaup_session_input_msg(s, &m, now);
}

static const otaup_sm *consented(otaup_session *s, uint64_t now)
{
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, now), now);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, now), 0);
    return expect(s, OTAUP_SM_BACKUP_REQ, now);
}

/* region r (id r + 1) sent whole in chunks of 1000 bytes, its request q acknowledged */
static void answer_backup_req(otaup_session *s, const otaup_sm *q, uint32_t r, const uint8_t *data, uint64_t now)
{
    uint32_t off;
    ck_assert_uint_eq(q->region, r + 1);
    ack(s, q, now);
    for (off = q->offset; off < sizeof userdata[0]; off += 1000) {
        size_t n = sizeof userdata[0] - off < 1000 ? sizeof userdata[0] - off : 1000;
        send_region_data(s, r + 1, off, data + off, n, data, sizeof userdata[0], now, 0);
    }
}
#endif

#endif
