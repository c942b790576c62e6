/*
 * Sealed backups on the terminal (docs/security.md §7, protocol.md §3.10):
 * the real applier on simulated flash with a device key, driven frame by
 * frame by a small server written here from the protocol page.
 *
 *  - a backup leaves the terminal sealed: CAP_SEALED advertised, the
 *    stream's header in the first chunk, a tag on every chunk, no plain
 *    byte of the region on the wire, a keyed digest instead of a plain
 *    hash; the test opens the stream with the device key and finds the
 *    region byte for byte; sent back, it restores the region exactly;
 *  - a restore the terminal cannot authenticate is refused
 *    (OTAUP_E_DECRYPT) before anything of the refused chunk is written,
 *    and nothing more of the region is written afterwards: a changed
 *    chunk, tag or header, another terminal's backup, reordered,
 *    truncated or mixed chunks, a plain chunk; the simulated flash's
 *    operation log proves it;
 *  - without a random source the salt follows the content; the region
 *    digest is keyed; otaup_seal_seek() reseals a chunk identically.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/apply.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"
#include "util/testplan.h"

#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED

#define S 4096u
/* slot 0..3, scratch 4, journal 5..6, updater 7, user data 8..9 (8 KiB) */
#define USER (8 * S) /* the user-data region of tp_apply_config_backup() */
#define USER_LEN (2 * S)
#define NSECT 10u
#define FRAME 256u
#define MAXOUT 512u
#define MAXCH 128u
#define MARKER "door code 4711, do not share"
#define LASTCHUNK 0xFFFFu

/* A sealed backup as the server receives it: chunks in order. */
typedef struct sealed_chunk {
    uint32_t offset;
    uint8_t flags;
    uint8_t tag[16];
    uint8_t hash_alg;
    uint8_t hash[32];
    uint8_t *data;
    uint32_t len;
} sealed_chunk;

typedef struct backup {
    sealed_chunk c[MAXCH];
    unsigned n;
} backup;

typedef struct term {
    otaup_simflash *fl;
    otaup_apply ap;
    otaup_apply_config cfg;
    otaup_crypto crypto;
    uint8_t key[32];
    uint8_t *work;
    /* frames the terminal sent */
    uint8_t *out[MAXOUT];
    size_t out_len[MAXOUT];
    unsigned nout, seen;
    uint32_t srv_seq; /* next sequence number of the server */
    uint32_t caps;    /* from the terminal's HELLO */
    int last_code;    /* the terminal's answer to the last frame fed: 0 (ACK) or the NACK's code */
} term;

static int t_send(void *ctx, const uint8_t *p, size_t n)
{
    term *t = ctx;
    ck_assert_uint_lt(t->nout, MAXOUT);
    t->out[t->nout] = malloc(n);
    memcpy(t->out[t->nout], p, n);
    t->out_len[t->nout++] = n;
    return (int)n;
}

static uint32_t t_now(void *ctx)
{
    (void)ctx;
    return 0;
}

/* A sealing terminal (key_seed != 0) or a plain one; the region holds
 * `fill` (or personal data with the marker when fill < 0). */
static void term_new(term *t, unsigned key_seed, int with_random, int fill)
{
    otaup_simflash_options o;
    otaup_geometry geo;
    uint8_t *img;
    size_t wsz, i;
    memset(t, 0, sizeof *t);
    otaup_geometry_uniform(&geo, 0, S, NSECT, 8);
    otaup_simflash_options_init(&o);
    o.geo = geo;
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &t->fl), 0);
    img = malloc(NSECT * S);
    memset(img, 0xFF, NSECT * S);
    for (i = 0; i < USER_LEN; i++) {
        img[USER + i] = fill >= 0 ? (uint8_t)fill : (uint8_t)MARKER[i % (sizeof MARKER - 1)];
    }
    if (fill < 0) {
        for (i = 0; i < USER_LEN; i += 97) {
            img[USER + i] = (uint8_t)(i * 131u >> 3); /* not only the marker */
        }
    }
    ck_assert_int_eq(otaup_simflash_load(t->fl, 0, img, NSECT * S), 0);
    free(img);
    ck_assert_int_eq(otaup_crypto_mbedtls(&t->crypto), 0);
    if (!with_random) {
        t->crypto.random = NULL; /* a terminal without a random source */
    }
    for (i = 0; i < sizeof t->key; i++) {
        t->key[i] = (uint8_t)(key_seed * 37u + i);
    }
    t->cfg.flash = otaup_simflash_flash(t->fl);
    tp_apply_config_backup(&t->cfg, USER_LEN, FRAME, "T-SEAL");
    t->cfg.link.ctx = t;
    t->cfg.link.send = t_send;
    t->cfg.now_ms = t_now;
    t->cfg.clock_ctx = t;
    if (key_seed != 0) {
        t->cfg.device_key = t->key;
        t->cfg.crypto = &t->crypto;
    }
    wsz = otaup_apply_work_size(FRAME, 512, S, 32, 11);
    t->work = malloc(wsz);
    t->cfg.work = t->work;
    t->cfg.work_size = wsz;
    ck_assert_int_eq(otaup_apply_init(&t->ap, &t->cfg), 0);
}

static void term_free(term *t)
{
    unsigned i;
    for (i = 0; i < t->nout; i++) {
        free(t->out[i]);
    }
    free(t->work);
    otaup_simflash_free(t->fl);
}

static void backup_free(backup *b)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        free(b->c[i].data);
    }
    b->n = 0;
}

static void feed_msg(term *t, const otaup_msg *m, uint32_t seq)
{
    uint8_t f[FRAME + 64];
    int n = otaup_msg_encode_frame(m, 0, seq, FRAME, f, sizeof f);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&t->ap, f, (size_t)n), 0);
}

static void ack_term(term *t, uint32_t seq)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = seq;
    m.u.ack.window = 64;
    feed_msg(t, &m, t->srv_seq);
}

/*
 * Take what the terminal sent: answers to the server's frames set
 * last_code; every sequenced frame of the terminal is acknowledged at once
 * (which makes it send the next), BACKUP_DATA is collected into *b.
 */
static void drain(term *t, backup *b)
{
    while (t->seen < t->nout) {
        const uint8_t *p = t->out[t->seen];
        size_t n = t->out_len[t->seen++];
        otaup_frame fr;
        otaup_msg m;
        ck_assert_int_eq(otaup_frame_decode(p, n, FRAME, &fr), 0);
        if (fr.type == OTAUP_MSG_PROGRESS) {
            continue;
        }
        if (fr.type == OTAUP_MSG_ACK) {
            t->last_code = 0;
            continue;
        }
        if (fr.type == OTAUP_MSG_NACK) {
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            t->last_code = m.u.nack.error;
            continue;
        }
        if (fr.type == OTAUP_MSG_HELLO) {
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            t->caps = m.u.hello.caps;
        }
        if (fr.type == OTAUP_MSG_BACKUP_DATA && b != NULL) {
            sealed_chunk *c;
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            ck_assert_uint_lt(b->n, MAXCH);
            c = &b->c[b->n++];
            c->offset = m.u.rdata.offset;
            c->flags = m.u.rdata.flags;
            memcpy(c->tag, m.u.rdata.tag, 16);
            c->hash_alg = m.u.rdata.hash.alg;
            memcpy(c->hash, m.u.rdata.hash.bytes, m.u.rdata.hash.len);
            c->len = m.u.rdata.data.len;
            c->data = malloc(c->len ? c->len : 1);
            memcpy(c->data, m.u.rdata.data.data, c->len);
        }
        ack_term(t, fr.seq);
    }
}

/* A sequenced frame from the server; returns the terminal's answer (0: ACK). */
static int server_send(term *t, const otaup_msg *m, backup *b)
{
    uint32_t seq = t->srv_seq;
    t->last_code = 1;
    feed_msg(t, m, seq);
    drain(t, b);
    ck_assert_int_ne(t->last_code, 1);
    if (t->last_code == 0) {
        t->srv_seq++; /* executed; a refused frame leaves `expected` where it was */
    }
    return t->last_code;
}

static void session_open(term *t)
{
    otaup_msg m;
    ck_assert_int_eq(otaup_apply_connect(&t->ap), 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 2048;
    m.u.hello.window = 64;
    ck_assert_int_eq(server_send(t, &m, NULL), 0);
}

static int take_backup(term *t, backup *b, uint32_t flags)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.flags = (uint8_t)flags;
    m.u.backup_req.offset = flags ? USER_LEN : 0;
    m.u.backup_req.max_chunk = 4096;
    return server_send(t, &m, b);
}

/* A restore comes inside an update session (protocol.md 5): open one
 * when the terminal has none. */
static void ensure_session(term *t)
{
    otaup_msg m;
    if (t->ap.session_open) {
        return;
    }
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 0x5EA1u;
    ck_assert_int_eq(server_send(t, &m, NULL), 0);
    ck_assert(t->ap.session_open);
}

/* Send chunk c back as RESTORE_DATA (offset and flags as given). */
static int restore_chunk(term *t, const sealed_chunk *c, uint32_t offset, uint8_t flags)
{
    otaup_msg m;
    ensure_session(t);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_RESTORE_DATA;
    m.u.rdata.region = 1;
    m.u.rdata.offset = offset;
    m.u.rdata.flags = flags;
    memcpy(m.u.rdata.tag, c->tag, 16);
    m.u.rdata.data.data = c->data;
    m.u.rdata.data.len = c->len;
    return server_send(t, &m, NULL);
}

/* Write operations into the user region from log index `from`: erases and
 * programs (lo 0), or the programs at or after user offset lo. */
static size_t region_writes(const term *t, size_t from, uint32_t lo)
{
    size_t n, i, k = 0;
    const otaup_simflash_op *op = otaup_simflash_log(t->fl, &n);
    for (i = from; i < n; i++) {
        if ((op[i].kind == OTAUP_SIMFLASH_PROG || (lo == 0 && op[i].kind == OTAUP_SIMFLASH_ERASE)) &&
            op[i].addr + op[i].len > USER + lo && op[i].addr < USER + USER_LEN) {
            k++;
        }
    }
    return k;
}

static size_t log_len(const term *t)
{
    size_t n;
    (void)otaup_simflash_log(t->fl, &n);
    return n;
}

/* Open the sealed stream with the device key: the region's plain bytes. */
static int open_stream(const uint8_t key[32], const backup *b, uint8_t *plain)
{
    otaup_crypto c;
    otaup_seal s;
    unsigned i;
    uint32_t at = 0;
    int rc;
    ck_assert_int_eq(otaup_crypto_mbedtls(&c), 0);
    ck_assert_uint_ge(b->c[0].len, OTAUP_SEAL_HEADER_LEN);
    rc = otaup_seal_open_begin(&s, &c, key, 1, b->c[0].data);
    for (i = 0; rc == 0 && i < b->n; i++) {
        const uint8_t *d = b->c[i].data + (i == 0 ? OTAUP_SEAL_HEADER_LEN : 0);
        uint32_t n = b->c[i].len - (i == 0 ? OTAUP_SEAL_HEADER_LEN : 0);
        rc = otaup_seal_open_detached(&s, d, n, b->c[i].tag, plain + at);
        at += n;
        rc = rc < 0 ? rc : 0;
    }
    return rc != 0 ? rc : otaup_seal_complete(&s) && at == USER_LEN ? 0 : OTAUP_E_DECRYPT;
}

/* Restore the whole backup; returns the first refusal (0: every chunk taken). */
static int restore_all(term *t, const backup *b)
{
    unsigned i;
    for (i = 0; i < b->n; i++) {
        int rc = restore_chunk(t, &b->c[i], b->c[i].offset,
                               (uint8_t)(OTAUP_RDATA_TAG | (i + 1 == b->n ? OTAUP_RDATA_LAST : 0u)));
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static uint8_t *user(term *t)
{
    return otaup_simflash_data(t->fl) + USER;
}

static void damage(term *t)
{
    memset(user(t) + 100, 0x00, 3000);
}

static int contains(const uint8_t *h, size_t hn, const char *needle)
{
    size_t n = strlen(needle), i;
    for (i = 0; i + n <= hn; i++) {
        if (memcmp(h + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

START_TEST(test_sealed_backup_and_restore)
{
    term t;
    backup b;
    uint8_t orig[USER_LEN], plain[USER_LEN];
    unsigned i;
    uint64_t xh;
    uint8_t xb[8];
    term_new(&t, 1, 1, -1);
    memcpy(orig, user(&t), USER_LEN);
    session_open(&t);
    ck_assert_uint_ne(t.caps & OTAUP_CAP_SEALED, 0);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(take_backup(&t, &b, 0), 0);
    ck_assert_uint_gt(b.n, 2);
    /* the stream on the wire: header first, a tag on every chunk, the
     * region's length in all, no plain text; a keyed digest at the end */
    ck_assert_int_eq(memcmp(b.c[0].data, "OTBK", 4), 0);
    xh = XXH3_64bits(orig, USER_LEN);
    for (i = 0; i < b.n; i++) {
        ck_assert_uint_ne(b.c[i].flags & OTAUP_RDATA_TAG, 0);
        ck_assert_int_eq(contains(b.c[i].data, b.c[i].len, "door code"), 0);
        ck_assert_uint_eq(b.c[i].len - (i == 0 ? 32u : 0u), i + 1 < b.n ? b.c[1].len : b.c[i].len);
        ck_assert_uint_eq(b.c[i].len % 8u, 0); /* whole program units */
    }
    ck_assert_uint_eq(b.c[b.n - 1].flags & (OTAUP_RDATA_LAST | OTAUP_RDATA_HASH), OTAUP_RDATA_LAST | OTAUP_RDATA_HASH);
    ck_assert_uint_eq(b.c[b.n - 1].hash_alg, OTAUP_HASH_SHA256);
    for (i = 0; i < 8; i++) {
        xb[i] = (uint8_t)(xh >> (8 * i));
    }
    ck_assert_int_ne(memcmp(b.c[b.n - 1].hash, xb, 8), 0); /* not the plain hash */
    /* the owner of the key reads it back exactly */
    ck_assert_int_eq(open_stream(t.key, &b, plain), 0);
    ck_assert_mem_eq(plain, orig, USER_LEN);
    /* the upgrade damaged the region: the sealed stream restores it */
    damage(&t);
    ck_assert_int_ne(memcmp(user(&t), orig, USER_LEN), 0);
    ck_assert_int_eq(restore_all(&t, &b), 0);
    ck_assert_mem_eq(user(&t), orig, USER_LEN);
    backup_free(&b);
    term_free(&t);
}
END_TEST

/* The keyed digest: HASH_ONLY reports the same digest as the backup's
 * LAST chunk while the region is unchanged, another after a change, and
 * another terminal (another key) reports another one for the same bytes. */
START_TEST(test_sealed_region_digest)
{
    term t, u;
    backup b, h;
    term_new(&t, 1, 1, -1);
    term_new(&u, 2, 1, -1);
    session_open(&t);
    session_open(&u);
    memset(&b, 0, sizeof b);
    memset(&h, 0, sizeof h);
    ck_assert_int_eq(take_backup(&t, &b, 0), 0);
    ck_assert_int_eq(take_backup(&t, &h, OTAUP_BACKUP_HASH_ONLY), 0);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_uint_eq(h.c[0].len, 0);
    ck_assert_uint_eq(h.c[0].flags & OTAUP_RDATA_TAG, 0);
    ck_assert_uint_eq(h.c[0].hash_alg, OTAUP_HASH_SHA256);
    ck_assert_mem_eq(h.c[0].hash, b.c[b.n - 1].hash, 32);
    damage(&t);
    ck_assert_int_eq(take_backup(&t, &h, OTAUP_BACKUP_HASH_ONLY), 0);
    ck_assert_int_ne(memcmp(h.c[1].hash, b.c[b.n - 1].hash, 32), 0);
    ck_assert_int_eq(take_backup(&u, &h, OTAUP_BACKUP_HASH_ONLY), 0);
    ck_assert_int_ne(memcmp(h.c[2].hash, b.c[b.n - 1].hash, 32), 0);
    backup_free(&b);
    backup_free(&h);
    term_free(&t);
    term_free(&u);
}
END_TEST

/* A changed byte anywhere in chunk k (ciphertext, tag, or for k = 0 the
 * header): refused with OTAUP_E_DECRYPT, nothing of chunk k or after it
 * written, and the rest of the stream refused as well. */
static void tampered(unsigned k, int where)
{
    term t;
    backup b;
    uint8_t orig[USER_LEN], damaged[USER_LEN];
    unsigned i;
    size_t mark;
    uint32_t chunk;
    sealed_chunk genuine;
    term_new(&t, 1, 1, -1);
    memcpy(orig, user(&t), USER_LEN);
    session_open(&t);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(take_backup(&t, &b, 0), 0);
    chunk = b.c[1].len;
    if (k == LASTCHUNK) {
        k = b.n - 1;
    }
    ck_assert_uint_lt(k, b.n);
    genuine = b.c[k];
    genuine.data = malloc(genuine.len);
    memcpy(genuine.data, b.c[k].data, genuine.len);
    if (where == 0) {
        b.c[k].data[b.c[k].len - 1] ^= 0x01; /* ciphertext */
    } else if (where == 1) {
        b.c[k].tag[5] ^= 0x80; /* tag */
    } else {
        b.c[k].data[20] ^= 0x01; /* header: the salt */
    }
    damage(&t);
    memcpy(damaged, user(&t), USER_LEN);
    mark = log_len(&t);
    for (i = 0; i < k; i++) {
        ck_assert_int_eq(restore_chunk(&t, &b.c[i], b.c[i].offset, OTAUP_RDATA_TAG), 0);
    }
    ck_assert_int_eq(region_writes(&t, mark, k * chunk), 0); /* nothing at or after chunk k yet */
    if (k == 0) {
        ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    }
    mark = log_len(&t);
    ck_assert_int_eq(restore_chunk(&t, &b.c[k], b.c[k].offset, (uint8_t)(OTAUP_RDATA_TAG | (k + 1 == b.n ? OTAUP_RDATA_LAST : 0))),
                     OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    /* the whole restore is refused: not even the genuine chunk k is taken now */
    if (k > 0) {
        ck_assert_int_lt(restore_chunk(&t, &genuine, genuine.offset,
                                       (uint8_t)(OTAUP_RDATA_TAG | (k + 1 == b.n ? OTAUP_RDATA_LAST : 0))),
                         0);
    }
    free(genuine.data);
    /* the server goes on: every further chunk of the stream is refused too */
    for (i = k + 1; i < b.n; i++) {
        ck_assert_int_lt(restore_chunk(&t, &b.c[i], b.c[i].offset,
                                       (uint8_t)(OTAUP_RDATA_TAG | (i + 1 == b.n ? OTAUP_RDATA_LAST : 0))),
                         0);
    }
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    if (k == 0) {
        ck_assert_mem_eq(user(&t), damaged, USER_LEN); /* untouched */
    }
    backup_free(&b);
    term_free(&t);
}

START_TEST(test_sealed_tampered_first_chunk)
{
    tampered(0, 0);
}
END_TEST

START_TEST(test_sealed_tampered_tag)
{
    tampered(3, 1);
}
END_TEST

START_TEST(test_sealed_tampered_middle_chunk)
{
    tampered(5, 0);
}
END_TEST

START_TEST(test_sealed_tampered_header)
{
    tampered(0, 2);
}
END_TEST

START_TEST(test_sealed_tampered_last_chunk)
{
    tampered(LASTCHUNK, 1);
}
END_TEST

/* Another terminal's backup: the same region id, another device key. */
START_TEST(test_sealed_other_terminal)
{
    term a, o;
    backup b;
    uint8_t before[USER_LEN];
    size_t mark;
    term_new(&a, 1, 1, -1);
    term_new(&o, 2, 1, 0x33);
    session_open(&a);
    session_open(&o);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(take_backup(&a, &b, 0), 0);
    memcpy(before, user(&o), USER_LEN);
    mark = log_len(&o);
    ck_assert_int_eq(restore_all(&o, &b), OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&o, mark, 0), 0);
    ck_assert_mem_eq(user(&o), before, USER_LEN);
    backup_free(&b);
    term_free(&a);
    term_free(&o);
}
END_TEST

/* Reordered, truncated and mixed streams, a plain chunk. */
START_TEST(test_sealed_reorder_truncate_mix)
{
    term t;
    backup b, b2;
    size_t mark;
    uint32_t chunk;
    term_new(&t, 1, 1, -1);
    session_open(&t);
    memset(&b, 0, sizeof b);
    memset(&b2, 0, sizeof b2);
    ck_assert_int_eq(take_backup(&t, &b, 0), 0);
    user(&t)[USER_LEN - 1] ^= 1; /* the content changes: the next backup gets another salt */
    ck_assert_int_eq(take_backup(&t, &b2, 0), 0);
    user(&t)[USER_LEN - 1] ^= 1;
    ck_assert_int_ne(memcmp(b.c[0].data + 16, b2.c[0].data + 16, 16), 0);
    chunk = b.c[1].len;
    damage(&t);
    /* reordered: chunk 2 where chunk 1 belongs */
    ck_assert_int_eq(restore_chunk(&t, &b.c[0], 0, OTAUP_RDATA_TAG), 0);
    mark = log_len(&t);
    ck_assert_int_eq(restore_chunk(&t, &b.c[2], chunk, OTAUP_RDATA_TAG), OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    /* mixed: chunk 1 of the other backup of the same region */
    ck_assert_int_eq(restore_chunk(&t, &b.c[0], 0, OTAUP_RDATA_TAG), 0);
    mark = log_len(&t);
    ck_assert_int_eq(restore_chunk(&t, &b2.c[1], chunk, OTAUP_RDATA_TAG), OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    /* truncated: LAST on a chunk that does not end the stream */
    ck_assert_int_eq(restore_chunk(&t, &b.c[0], 0, OTAUP_RDATA_TAG), 0);
    mark = log_len(&t);
    ck_assert_int_eq(restore_chunk(&t, &b.c[1], chunk, OTAUP_RDATA_TAG | OTAUP_RDATA_LAST), OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    /* and the last chunk without LAST */
    ck_assert_int_eq(restore_chunk(&t, &b.c[0], 0, OTAUP_RDATA_TAG), 0);
    {
        unsigned i;
        for (i = 1; i + 1 < b.n; i++) {
            ck_assert_int_eq(restore_chunk(&t, &b.c[i], b.c[i].offset, OTAUP_RDATA_TAG), 0);
        }
        mark = log_len(&t);
        ck_assert_int_eq(restore_chunk(&t, &b.c[b.n - 1], b.c[b.n - 1].offset, OTAUP_RDATA_TAG), OTAUP_E_DECRYPT);
        ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    }
    /* a plain chunk: nothing to authenticate */
    mark = log_len(&t);
    ck_assert_int_eq(restore_chunk(&t, &b.c[1], 0, OTAUP_RDATA_LAST), OTAUP_E_DECRYPT);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    /* after all that, the genuine stream still restores */
    ck_assert_int_eq(restore_all(&t, &b), 0);
    {
        uint8_t plain[USER_LEN];
        ck_assert_int_eq(open_stream(t.key, &b, plain), 0);
        ck_assert_mem_eq(user(&t), plain, USER_LEN);
    }
    backup_free(&b);
    backup_free(&b2);
    term_free(&t);
}
END_TEST

/* Two uploads of one region: the same sealed stream, chunk for chunk. */
static void same_stream(const backup *a, const backup *b)
{
    unsigned i;
    ck_assert_uint_eq(a->n, b->n);
    for (i = 0; i < a->n; i++) {
        ck_assert_uint_eq(a->c[i].len, b->c[i].len);
        ck_assert_mem_eq(a->c[i].data, b->c[i].data, a->c[i].len);
        ck_assert_mem_eq(a->c[i].tag, b->c[i].tag, 16);
    }
}

/* The server asks again (from 0, or from a chunk boundary) over the same
 * content: the same stream, byte for byte, so chunks of the two requests
 * cannot be mixed into a stream that does not open; once the content
 * changed, a continuation is refused (it would reuse nonces over other
 * bytes) and a new request from 0 draws another salt. */
START_TEST(test_sealed_request_again)
{
    term t;
    backup b1, b2, b3;
    unsigned i;
    otaup_msg m;
    term_new(&t, 1, 1, -1);
    session_open(&t);
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    memset(&b3, 0, sizeof b3);
    ck_assert_int_eq(take_backup(&t, &b1, 0), 0);
    ck_assert_int_eq(take_backup(&t, &b2, 0), 0);
    same_stream(&b1, &b2);
    /* from a chunk boundary: the rest of the same stream */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.offset = b1.c[3].offset;
    m.u.backup_req.max_chunk = 4096;
    ck_assert_int_eq(server_send(&t, &m, &b3), 0);
    ck_assert_uint_eq(b3.n, b1.n - 3);
    for (i = 0; i < b3.n; i++) {
        ck_assert_mem_eq(b3.c[i].data, b1.c[i + 3].data, b1.c[i + 3].len);
        ck_assert_mem_eq(b3.c[i].tag, b1.c[i + 3].tag, 16);
    }
    backup_free(&b3);
    /* not from inside a chunk, and not once the content changed */
    m.u.backup_req.offset = b1.c[3].offset + 8;
    ck_assert_int_eq(server_send(&t, &m, &b3), OTAUP_E_RANGE);
    user(&t)[5] ^= 0x10;
    m.u.backup_req.offset = b1.c[3].offset;
    ck_assert_int_eq(server_send(&t, &m, &b3), OTAUP_E_RANGE);
    ck_assert_uint_eq(b3.n, 0);
    ck_assert_int_eq(take_backup(&t, &b3, 0), 0);
    ck_assert_int_ne(memcmp(b1.c[0].data + 16, b3.c[0].data + 16, 16), 0);
    backup_free(&b1);
    backup_free(&b2);
    backup_free(&b3);
    term_free(&t);
}
END_TEST

/* A terminal without a key: no CAP_SEALED, plain chunks, TAG refused. */
START_TEST(test_plain_terminal_unchanged)
{
    term t;
    backup b;
    size_t mark;
    term_new(&t, 0, 1, -1);
    session_open(&t);
    ck_assert_uint_eq(t.caps & OTAUP_CAP_SEALED, 0);
    ck_assert_uint_ne(t.caps & OTAUP_CAP_BACKUP, 0);
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(take_backup(&t, &b, 0), 0);
    ck_assert_uint_eq(b.c[0].flags & OTAUP_RDATA_TAG, 0);
    ck_assert_int_eq(contains(b.c[0].data, b.c[0].len, "door code"), 1);
    ck_assert_uint_eq(b.c[b.n - 1].hash_alg, OTAUP_HASH_XXH3_64);
    mark = log_len(&t);
    b.c[0].len = 64; /* room for the tag in a frame */
    ck_assert_int_eq(restore_chunk(&t, &b.c[0], 0, OTAUP_RDATA_TAG), OTAUP_E_UNSUPPORTED);
    ck_assert_int_eq(region_writes(&t, mark, 0), 0);
    backup_free(&b);
    term_free(&t);
}
END_TEST

START_TEST(test_sealed_frame_too_small)
{
    /* a device key with frames that cannot carry a sealed chunk: refused
     * at init, not at the first backup of the first upgrade (it was NACKed
     * OTAUP_E_BUFFER there, after the user had asked for the upgrade) */
    term t;
    otaup_apply ap;
    otaup_apply_config c;
    uint8_t *work;
    size_t wsz;
    uint32_t least = 16u + 8u + 34u + OTAUP_RDATA_TAG_SIZE + OTAUP_SEAL_HEADER_LEN + OTAUP_SEAL_CHUNK_MIN + 8u;
    term_new(&t, 5, 1, 0x42);
    c = t.cfg;
    wsz = otaup_apply_work_size(least, 512, S, 32, 11);
    c.max_frame = least - 1u;
    work = malloc(wsz);
    c.work = work;
    c.work_size = wsz;
    ck_assert_int_eq(otaup_apply_init(&ap, &c), OTAUP_E_BUFFER);
    c.max_frame = least;
    ck_assert_int_eq(otaup_apply_init(&ap, &c), 0);
    c.device_key = NULL; /* plain: any frame size the codec takes */
    c.max_frame = least - 1u;
    ck_assert_int_eq(otaup_apply_init(&ap, &c), 0);
    free(work);
    term_free(&t);
}
END_TEST

/* No random source: the salt follows the content (equal content, equal
 * stream; other content, other salt), and the stream still opens. */
START_TEST(test_sealed_salt_without_random)
{
    term t;
    backup b1, b2, b3;
    uint8_t plain[USER_LEN];
    term_new(&t, 1, 0, -1);
    session_open(&t);
    memset(&b1, 0, sizeof b1);
    memset(&b2, 0, sizeof b2);
    memset(&b3, 0, sizeof b3);
    ck_assert_int_eq(take_backup(&t, &b1, 0), 0);
    ck_assert_int_eq(take_backup(&t, &b2, 0), 0);
    same_stream(&b1, &b2);
    user(&t)[7] ^= 0x40;
    ck_assert_int_eq(take_backup(&t, &b3, 0), 0);
    ck_assert_int_ne(memcmp(b1.c[0].data + 16, b3.c[0].data + 16, 16), 0); /* another salt */
    ck_assert_int_eq(open_stream(t.key, &b3, plain), 0);
    ck_assert_mem_eq(plain, user(&t), USER_LEN);
    backup_free(&b1);
    backup_free(&b2);
    backup_free(&b3);
    term_free(&t);
}
END_TEST

/* otaup_seal_seek: chunk n sealed again is byte for byte the first one. */
START_TEST(test_seal_seek_reseals_identically)
{
    otaup_crypto c;
    otaup_seal s;
    uint8_t key[32], salt[16], hdr[32], in[100], out[5][116], again[116];
    unsigned i;
    ck_assert_int_eq(otaup_crypto_mbedtls(&c), 0);
    memset(key, 7, sizeof key);
    memset(salt, 9, sizeof salt);
    for (i = 0; i < sizeof in; i++) {
        in[i] = (uint8_t)(i * 3);
    }
    ck_assert_int_eq(otaup_seal_begin(&s, &c, key, 1, 5 * 20, 20, salt, hdr), 0);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(otaup_seal_chunk(&s, in + 20 * i, 20, out[i]), 36);
    }
    ck_assert_int_eq(otaup_seal_complete(&s), 1);
    ck_assert_int_eq(otaup_seal_seek(&s, 5), OTAUP_E_INVAL);
    for (i = 5; i-- > 0;) {
        ck_assert_int_eq(otaup_seal_seek(&s, i), 0);
        ck_assert_int_eq(otaup_seal_chunk(&s, in + 20 * i, 20, again), 36);
        ck_assert_mem_eq(again, out[i], 36);
    }
    ck_assert_int_eq(otaup_seal_open_begin(&s, &c, key, 1, hdr), 0);
    ck_assert_int_eq(otaup_seal_seek(&s, 0), OTAUP_E_INVAL); /* opening: no seeking */
    otaup_seal_wipe(&s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apply_sealed");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_sealed_backup_and_restore);
    tcase_add_test(tc, test_sealed_region_digest);
    tcase_add_test(tc, test_sealed_tampered_first_chunk);
    tcase_add_test(tc, test_sealed_tampered_tag);
    tcase_add_test(tc, test_sealed_tampered_middle_chunk);
    tcase_add_test(tc, test_sealed_tampered_header);
    tcase_add_test(tc, test_sealed_tampered_last_chunk);
    tcase_add_test(tc, test_sealed_other_terminal);
    tcase_add_test(tc, test_sealed_reorder_truncate_mix);
    tcase_add_test(tc, test_sealed_request_again);
    tcase_add_test(tc, test_plain_terminal_unchanged);
    tcase_add_test(tc, test_sealed_frame_too_small);
    tcase_add_test(tc, test_sealed_salt_without_random);
    tcase_add_test(tc, test_seal_seek_reseals_identically);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else

int main(void)
{
    puts("test_apply_sealed: sealed backups need mbedTLS and OTAUP_CONFIG_SEALED: nothing to test in this build");
    return 0;
}

#endif
