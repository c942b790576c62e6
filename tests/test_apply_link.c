/*
 * The applier on the wire: a whole upgrade (HELLO, INFO, BACKUP, START,
 * BATCH, COMMIT, RESULT) over a clean link, a lossy link (dropped,
 * corrupted, duplicated, reordered frames) and with disconnects in the
 * middle of the transfer. The upgrade completes, no command executes twice
 * (the flash sees exactly the operations of a clean run), retries stay
 * bounded; plus hostile frames refused with flash untouched, duplicates
 * answered without executing, and RESTORE_DATA.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/apply.h"
#include "otaup/simflash.h"
#include "util/testlink.h"
#include "util/testplan.h"

#define S 4096u
#define NSEC 5u
/* slot 0..4, scratch 5, journal 6..7, user region 8, updater 9 */
#define SLOT 0u
#define SCRATCH (5 * S)
#define JOURNAL (6 * S)
#define USER (8 * S)
#define UPDATER (9 * S)

typedef struct rig {
    otaup_simflash *sim;
    otaup_apply ap;
    otaup_apply_config cfg;
    uint8_t *work;
    uint8_t *old_flash, *new_img, *user;
    uint32_t img_len;
    tp_stream s;
} rig;

static void rig_make(rig *r, uint64_t seed)
{
    otaup_simflash_options o;
    otaup_geometry geo;
    tp_opts po;
    size_t wsz;
    memset(r, 0, sizeof *r);
    otaup_geometry_uniform(&geo, 0, S, 10, 8);
    otaup_simflash_options_init(&o);
    o.geo = geo;
    o.log_ops = 1;
    ck_assert_int_eq(otaup_simflash_new(&o, &r->sim), 0);
    r->old_flash = malloc(10 * S);
    memset(r->old_flash, 0xFF, 10 * S);
    r->img_len = NSEC * S - 900;
    tp_make_image(r->old_flash, r->img_len, seed);
    r->user = r->old_flash + USER;
    tp_fill_random(r->user, S, seed + 3);
    memset(r->old_flash + UPDATER, 0x5A, S);
    ck_assert_int_eq(otaup_simflash_load(r->sim, 0, r->old_flash, 10 * S), 0);
    r->new_img = malloc(NSEC * S);
    tp_make_new(r->old_flash, r->new_img, r->img_len, S, seed + 1);
    tp_opts_default(&po, &geo, SLOT, SLOT, r->img_len, S);
    po.sync_every = 2;
    po.wbits = 11;
    ck_assert_int_eq(tp_plan(&po, r->old_flash, r->new_img, &r->s), 0);
    memset(&r->cfg, 0, sizeof r->cfg);
    r->cfg.flash = otaup_simflash_flash(r->sim);
    r->cfg.layout = OTAUP_LAYOUT_INPLACE;
    r->cfg.window_bits = 11;
    r->cfg.max_ops = 64;
    r->cfg.slots[0].addr = SLOT;
    r->cfg.slots[0].len = NSEC * S;
    r->cfg.scratch.addr = SCRATCH;
    r->cfg.scratch.len = S;
    r->cfg.journal.addr = JOURNAL;
    r->cfg.journal.len = 2 * S;
    r->cfg.updater.addr = UPDATER;
    r->cfg.updater.len = S;
    r->cfg.regions[0].id = 1;
    r->cfg.regions[0].flags = OTAUP_REGION_PERSONAL;
    r->cfg.regions[0].addr = USER;
    r->cfg.regions[0].len = S;
    r->cfg.nregions = 1;
    r->cfg.staging_size = S;
    r->cfg.max_frame = 1024;
    r->cfg.max_msg = 4096;
    r->cfg.id.terminal_id = "T-0001";
    r->cfg.id.model = "demo-m4";
    r->cfg.id.sw_version = "1.0.0";
    r->cfg.id.build_time = 1767225600u;
    r->cfg.retransmit_ms = 400;
    wsz = otaup_apply_work_size(1024, 4096, S, 64, 11);
    ck_assert_uint_gt(wsz, 0);
    r->work = malloc(wsz);
    r->cfg.work = r->work;
    r->cfg.work_size = wsz;
}

static void rig_free(rig *r)
{
    otaup_simflash_free(r->sim);
    free(r->work);
    free(r->old_flash);
    free(r->new_img);
    tp_stream_free(&r->s);
}

static void check_new(rig *r)
{
    const uint8_t *d = otaup_simflash_data(r->sim);
    ck_assert_mem_eq(d, r->new_img, r->img_len);
    ck_assert_mem_eq(d + USER, r->user, S);
    ck_assert_uint_eq(d[UPDATER], 0x5A);
}

static size_t flash_writes(rig *r)
{
    return otaup_simflash_log_writes_since(r->sim, 0);
}

static size_t run_once(rig *r, const tl_faults *f, tl_report *rep)
{
    tl_ctx *t = tl_new(f);
    tl_bind(t, &r->cfg);
    ck_assert_int_eq(otaup_apply_init(&r->ap, &r->cfg), 0);
    (void)tl_run(t, &r->ap, &r->s, 0x1122334455667788ull, 1, rep);
    tl_free(t);
    return flash_writes(r);
}

START_TEST(test_clean_link)
{
    rig r;
    tl_faults f;
    tl_report rep;
    size_t w;
    memset(&f, 0, sizeof f);
    rig_make(&r, 1);
    w = run_once(&r, &f, &rep);
    ck_assert_msg(rep.result == 0, "result %d (%s)", rep.result, otaup_errname(rep.result));
    check_new(&r);
    ck_assert_uint_eq(rep.retransmits, 0);
    ck_assert_uint_eq(otaup_apply_exec(&r.ap)->stats.steps_done, r.s.nsteps);
    ck_assert_uint_gt(w, r.s.nsteps);
    /* the backup is the user region, byte for byte */
    ck_assert_uint_eq(rep.backup_len, S);
    ck_assert_mem_eq(rep.backup, r.user, S);
    rig_free(&r);
}
END_TEST

START_TEST(test_lossy_link)
{
    size_t clean_writes;
    unsigned seed;
    {
        rig r;
        tl_faults f;
        tl_report rep;
        memset(&f, 0, sizeof f);
        rig_make(&r, 2);
        clean_writes = run_once(&r, &f, &rep);
        ck_assert_int_eq(rep.result, 0);
        rig_free(&r);
    }
    for (seed = 1; seed <= 6; seed++) {
        rig r;
        tl_faults f;
        tl_report rep;
        size_t w;
        memset(&f, 0, sizeof f);
        f.drop_pct = 10;
        f.corrupt_pct = 5;
        f.dup_pct = 8;
        f.reorder_pct = 5;
        f.seed = seed;
        rig_make(&r, 2);
        w = run_once(&r, &f, &rep);
        ck_assert_msg(rep.result == 0, "seed %u: result %d (%s)", seed, rep.result, otaup_errname(rep.result));
        check_new(&r);
        /* no command executed twice: the flash saw exactly a clean run */
        ck_assert_uint_eq(w, clean_writes);
        ck_assert_uint_eq(otaup_apply_exec(&r.ap)->stats.steps_done, r.s.nsteps);
        ck_assert_uint_gt(rep.retransmits, 0);
        ck_assert_uint_le(rep.max_tries, 12);
        fprintf(stderr, "lossy link seed %u: %u frames, %u retransmissions (max %u for one frame), %u NACKs\n",
                seed, rep.server_frames, rep.retransmits, rep.max_tries, rep.nacks);
        rig_free(&r);
    }
}
END_TEST

START_TEST(test_disconnects)
{
    rig r;
    tl_faults f;
    tl_report rep;
    memset(&f, 0, sizeof f);
    f.disconnect_at = 7;
    f.disconnects = 4;
    f.drop_pct = 3;
    f.seed = 9;
    rig_make(&r, 3);
    (void)run_once(&r, &f, &rep);
    ck_assert_msg(rep.result == 0, "result %d (%s)", rep.result, otaup_errname(rep.result));
    check_new(&r);
    ck_assert_uint_ge(rep.connections, 3);
    ck_assert_uint_ge(rep.resumes, 1);
    rig_free(&r);
}
END_TEST

/* direct frames: hostile commands, duplicates, gaps, restore */
typedef struct sink {
    uint8_t buf[8192];
    size_t len;
} sink;

static int sink_send(void *ctx, const uint8_t *b, size_t n)
{
    sink *k = ctx;
    if (k->len + n <= sizeof k->buf) {
        memcpy(k->buf + k->len, b, n);
        k->len += n;
    }
    return (int)n;
}

/* the last ACK or NACK the terminal sent: returns type, fills status */
static int last_answer(sink *k, int32_t *code, uint32_t *seq)
{
    otaup_decoder d;
    uint8_t db[2048];
    size_t off = 0;
    int type = 0;
    otaup_decoder_init(&d, db, sizeof db, 2048);
    while (off < k->len) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, k->buf + off, k->len - off, &used, &fr);
        off += used;
        if (ev == OTAUP_DEC_FRAME && (fr.type == OTAUP_MSG_ACK || fr.type == OTAUP_MSG_NACK)) {
            otaup_msg m;
            ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m), 0);
            type = fr.type;
            *code = fr.type == OTAUP_MSG_ACK ? m.u.ack.status : m.u.nack.error;
            *seq = fr.type == OTAUP_MSG_ACK ? m.u.ack.seq : m.u.nack.seq;
        } else if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
    }
    k->len = 0;
    return type;
}

static void send_msg(otaup_apply *ap, const otaup_msg *m, uint32_t seq)
{
    uint8_t fr[2048];
    int n = otaup_msg_encode_frame(m, 0, seq, 1024, fr, sizeof fr);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(ap, fr, (size_t)n), 0);
}

static void send_rec(otaup_apply *ap, const otaup_record *rec, uint32_t seq)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = rec->type;
    m.u.rec = *rec;
    send_msg(ap, &m, seq);
}

/* the server's HELLO (seq 0), acknowledged */
static void send_hello(otaup_apply *ap, sink *k)
{
    otaup_msg m;
    int32_t code;
    uint32_t seq;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 1024;
    m.u.hello.window = 1;
    send_msg(ap, &m, 0);
    ck_assert_int_eq(last_answer(k, &code, &seq), OTAUP_MSG_ACK);
}

START_TEST(test_direct_frames)
{
    rig r;
    sink k;
    otaup_msg m;
    otaup_record rec;
    int32_t code;
    uint32_t seq;
    size_t w0;
    memset(&k, 0, sizeof k);
    rig_make(&r, 4);
    r.cfg.link.ctx = &k;
    r.cfg.link.send = sink_send;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    ck_assert_int_eq(otaup_apply_connect(&r.ap), 0);
    k.len = 0;
    send_hello(&r.ap, &k);
    /* a record before START: no session */
    memset(&rec, 0, sizeof rec);
    rec.type = OTAUP_REC_ERASE;
    rec.addr = SLOT;
    rec.len = S;
    w0 = flash_writes(&r);
    send_rec(&r.ap, &rec, 1);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
    ck_assert_int_eq(code, OTAUP_E_NO_SESSION);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 77;
    send_msg(&r.ap, &m, 1);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
    w0 = flash_writes(&r); /* the journal's BEGIN */
    /* hostile: outside the windows, the journal, the updater, user data, misaligned */
    rec.addr = UPDATER;
    send_rec(&r.ap, &rec, 2);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
    ck_assert_int_eq(code, OTAUP_E_PROTECTED);
    rec.addr = JOURNAL;
    send_rec(&r.ap, &rec, 2);
    last_answer(&k, &code, &seq);
    ck_assert_int_eq(code, OTAUP_E_PROTECTED);
    rec.addr = USER;
    send_rec(&r.ap, &rec, 2);
    last_answer(&k, &code, &seq);
    ck_assert_int_eq(code, OTAUP_E_PROTECTED);
    rec.addr = 100;
    send_rec(&r.ap, &rec, 2);
    last_answer(&k, &code, &seq);
    ck_assert_int_eq(code, OTAUP_E_ALIGN);
    ck_assert_uint_eq(flash_writes(&r), w0);
    /* a gap: NACK(SEQ) */
    rec.addr = SLOT;
    send_rec(&r.ap, &rec, 5);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
    ck_assert_int_eq(code, OTAUP_E_SEQ);
    /* the rest of the sender's round: silent; the sender going back (a
     * frame not after the last seen past the gap): one NACK more */
    send_rec(&r.ap, &rec, 6);
    ck_assert_int_eq(last_answer(&k, &code, &seq), 0);
    send_rec(&r.ap, &rec, 4);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
    ck_assert_int_eq(code, OTAUP_E_SEQ);
    send_rec(&r.ap, &rec, 5);
    send_rec(&r.ap, &rec, 6);
    ck_assert_int_eq(last_answer(&k, &code, &seq), 0);
    ck_assert_uint_eq(flash_writes(&r), w0);
    /* in order: executes once; the duplicate is answered without executing */
    send_rec(&r.ap, &rec, 2);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
    ck_assert_uint_eq(seq, 2);
    ck_assert_uint_eq(flash_writes(&r), w0 + 2); /* the point of no return, one erase */
    send_rec(&r.ap, &rec, 2);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
    ck_assert_uint_eq(flash_writes(&r), w0 + 2);
    /* BACKUP_REQ HASH_ONLY: one BACKUP_DATA, no data, LAST and HASH of the region */
    {
        uint64_t h = XXH3_64bits(r.user, S);
        uint8_t want[8];
        int i, seen = 0;
        otaup_decoder d;
        uint8_t db[2048];
        size_t off = 0;
        for (i = 0; i < 8; i++) {
            want[i] = (uint8_t)(h >> (8 * i));
        }
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_BACKUP_REQ;
        m.u.backup_req.region = 1;
        m.u.backup_req.flags = OTAUP_BACKUP_HASH_ONLY;
        m.u.backup_req.max_chunk = 100;
        send_msg(&r.ap, &m, 3);
        for (i = 0; i < 3; i++) {
            /* acknowledge the terminal's own frames (HELLO, INFO): it sends one at a time */
            otaup_msg a;
            uint8_t fr[64];
            int fl;
            memset(&a, 0, sizeof a);
            a.type = OTAUP_MSG_ACK;
            a.u.ack.seq = 100;
            a.u.ack.window = 1;
            fl = otaup_msg_encode_frame(&a, 0, 4, 1024, fr, sizeof fr);
            ck_assert_int_gt(fl, 0);
            ck_assert_int_eq(otaup_apply_feed(&r.ap, fr, (size_t)fl), 0);
        }
        otaup_decoder_init(&d, db, sizeof db, 2048);
        while (off < k.len) {
            otaup_frame fr;
            size_t used = 0;
            int ev = otaup_decoder_feed(&d, k.buf + off, k.len - off, &used, &fr);
            off += used;
            if (ev == OTAUP_DEC_FRAME && fr.type == OTAUP_MSG_BACKUP_DATA) {
                otaup_msg bm;
                ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &bm), 0);
                ck_assert_uint_eq(bm.u.rdata.flags & (OTAUP_RDATA_LAST | OTAUP_RDATA_HASH),
                                  OTAUP_RDATA_LAST | OTAUP_RDATA_HASH);
                ck_assert_uint_eq(bm.u.rdata.offset, S);
                ck_assert_uint_eq(bm.u.rdata.data.len, 0);
                ck_assert_mem_eq(bm.u.rdata.hash.bytes, want, 8);
                seen = 1;
            } else if (ev == OTAUP_DEC_NEED_INPUT) {
                break;
            }
        }
        ck_assert(seen);
        k.len = 0;
    }
    /* PING is answered with its nonce */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_PING;
    m.u.ping.nonce = 0xCAFE;
    send_msg(&r.ap, &m, 4);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
    /* RESTORE_DATA: chunks of 512 bytes, the last with the region's hash */
    {
        uint8_t data[S];
        uint64_t h;
        uint32_t off, sq = 5;
        int i, pass;
        tp_fill_random(data, S, 99);
        h = XXH3_64bits(data, S);
        for (pass = 0; pass < 2; pass++) {
            for (off = 0; off < S; off += 512) {
                memset(&m, 0, sizeof m);
                m.type = OTAUP_MSG_RESTORE_DATA;
                m.u.rdata.region = 1;
                m.u.rdata.offset = off;
                m.u.rdata.data.data = data + off;
                m.u.rdata.data.len = 512;
                if (off + 512 == S) {
                    uint64_t hh = pass == 0 ? h ^ 1u : h; /* a wrong hash first */
                    m.u.rdata.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
                    m.u.rdata.hash.alg = OTAUP_HASH_XXH3_64;
                    m.u.rdata.hash.len = 8;
                    for (i = 0; i < 8; i++) {
                        m.u.rdata.hash.bytes[i] = (uint8_t)(hh >> (8 * i));
                    }
                }
                send_msg(&r.ap, &m, sq);
                if (pass == 0 && off + 512 == S) {
                    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
                    ck_assert_int_eq(code, OTAUP_E_HASH);
                    ck_assert_uint_eq(otaup_apply_journal(&r.ap)->st.restore, OTAUP_JRESTORE_BUSY);
                } else {
                    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
                    sq++;
                }
            }
        }
        ck_assert_mem_eq(otaup_simflash_data(r.sim) + USER, data, S);
        ck_assert_uint_eq(otaup_apply_journal(&r.ap)->st.restore, OTAUP_JRESTORE_DONE);
    }
    rig_free(&r);
}
END_TEST

/* The delta header of r's update (what a server puts in START's manifest
 * field), malloc'ed; *hs its size. */
static uint8_t *rig_header(rig *r, size_t *hs)
{
    otaup_geometry geo;
    tp_opts po;
    uint8_t *delta = NULL;
    size_t dlen = 0;
    otaup_geometry_uniform(&geo, 0, S, 10, 8);
    tp_opts_default(&po, &geo, SLOT, SLOT, r->img_len, S);
    po.sync_every = 2;
    po.wbits = 11;
    ck_assert_int_eq(tp_container(&po, &r->s, OTAUP_LAYOUT_INPLACE, SCRATCH, S, 64, r->old_flash, r->img_len,
                                  r->new_img, &delta, &dlen),
                     0);
    *hs = (size_t)delta[10] | (size_t)delta[11] << 8;
    ck_assert_uint_le(*hs, dlen);
    return delta;
}

/* An unsigned START with the delta's header: COMMIT ends the session only
 * over the new image the header names. A COMMIT before the stream (a
 * server's error, a state it lost) is refused, the session kept; so is one
 * after a whole stream that did not write the image of the header. */
START_TEST(test_commit_checks_target)
{
    rig r;
    sink k;
    otaup_msg m;
    int32_t code;
    uint32_t seq;
    size_t hs, w0;
    uint8_t *hdr;
    tl_faults f;
    tl_report rep;
    tl_ctx *t;
    /* 1. COMMIT right after START */
    memset(&k, 0, sizeof k);
    rig_make(&r, 6);
    hdr = rig_header(&r, &hs);
    r.cfg.link.ctx = &k;
    r.cfg.link.send = sink_send;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    ck_assert_int_eq(otaup_apply_connect(&r.ap), 0);
    send_hello(&r.ap, &k);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 91;
    m.u.start.manifest.data = hdr;
    m.u.start.manifest.len = (uint32_t)hs;
    send_msg(&r.ap, &m, 1);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_ACK);
    w0 = flash_writes(&r);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_COMMIT;
    m.u.commit.session = 91;
    m.u.commit.action = OTAUP_COMMIT_DONE;
    send_msg(&r.ap, &m, 2);
    ck_assert_int_eq(last_answer(&k, &code, &seq), OTAUP_MSG_NACK);
    ck_assert_int_eq(code, OTAUP_E_TARGET_MISMATCH);
    ck_assert_uint_eq(flash_writes(&r), w0);
    ck_assert_uint_eq(otaup_apply_journal(&r.ap)->st.session, OTAUP_JS_ACTIVE);
    free(hdr);
    rig_free(&r);

    /* 2. the whole stream under its header: committed */
    memset(&f, 0, sizeof f);
    rig_make(&r, 6);
    hdr = rig_header(&r, &hs);
    t = tl_new(&f);
    tl_bind(t, &r.cfg);
    tl_set_manifest(t, hdr, hs);
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    (void)tl_run(t, &r.ap, &r.s, 0x1122334455667788ull, 1, &rep);
    tl_free(t);
    ck_assert_msg(rep.result == 0, "result %d (%s)", rep.result, otaup_errname(rep.result));
    check_new(&r);
    free(hdr);
    rig_free(&r);

    /* 3. the whole stream, but the header names another new image */
    rig_make(&r, 6);
    hdr = rig_header(&r, &hs);
    hdr[84] ^= 1u; /* target hash */
    t = tl_new(&f);
    tl_bind(t, &r.cfg);
    tl_set_manifest(t, hdr, hs);
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    (void)tl_run(t, &r.ap, &r.s, 0x1122334455667788ull, 1, &rep);
    tl_free(t);
    ck_assert_msg(rep.result != 0, "committed an image its header does not name");
    ck_assert_uint_eq(otaup_apply_journal(&r.ap)->st.session, OTAUP_JS_ACTIVE);
    free(hdr);
    rig_free(&r);
}
END_TEST

/* blocking mode: otaup_apply_run() pulls the server's bytes through link.recv */
typedef struct script {
    uint8_t *p;
    size_t len, pos;
    uint32_t clock;
    sink out;
} script;

static void script_put(script *sc, const uint8_t *b, size_t n)
{
    sc->p = realloc(sc->p, sc->len + n);
    memcpy(sc->p + sc->len, b, n);
    sc->len += n;
}

static void script_msg(script *sc, const otaup_msg *m, uint32_t seq)
{
    uint8_t fr[2048], ack[64];
    otaup_msg a;
    int n = otaup_msg_encode_frame(m, 0, seq, 1024, fr, sizeof fr), k;
    ck_assert_int_gt(n, 0);
    script_put(sc, fr, (size_t)n);
    /* acknowledge whatever the terminal has sent so far (it sends one frame at a time) */
    memset(&a, 0, sizeof a);
    a.type = OTAUP_MSG_ACK;
    a.u.ack.seq = 1000;
    a.u.ack.window = 1;
    k = otaup_msg_encode_frame(&a, 0, seq + 1, 1024, ack, sizeof ack);
    script_put(sc, ack, (size_t)k);
}

static int script_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    script *sc = ctx;
    size_t n = sc->len - sc->pos < 37 ? sc->len - sc->pos : 37;
    (void)timeout_ms;
    if (n > cap) {
        n = cap;
    }
    if (n > 0) {
        memcpy(buf, sc->p + sc->pos, n);
    }
    sc->pos += n;
    sc->clock += n == 0 ? timeout_ms : 1u;
    return (int)n;
}

static int script_send(void *ctx, const uint8_t *b, size_t n)
{
    return sink_send(&((script *)ctx)->out, b, n);
}

static uint32_t script_now(void *ctx)
{
    return ((script *)ctx)->clock;
}

START_TEST(test_blocking_run)
{
    rig r;
    script sc;
    otaup_msg m;
    uint32_t seq = 0;
    size_t off;
    memset(&sc, 0, sizeof sc);
    rig_make(&r, 5);
    r.cfg.link.ctx = &sc;
    r.cfg.link.send = script_send;
    r.cfg.link.recv = script_recv;
    r.cfg.now_ms = script_now;
    r.cfg.clock_ctx = &sc;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 1024;
    m.u.hello.window = 1;
    script_msg(&sc, &m, seq++);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_START;
    m.u.start.session = 99;
    script_msg(&sc, &m, seq++);
    /* the record stream as single-record BATCH frames' worth: slices on record boundaries */
    for (off = 0; off < r.s.len;) {
        otaup_record rec;
        int n = otaup_record_decode(r.s.bytes + off, r.s.len - off, &rec);
        ck_assert_int_gt(n, 0);
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_BATCH;
        m.u.batch.data = r.s.bytes + off;
        m.u.batch.len = (uint32_t)n;
        script_msg(&sc, &m, seq++);
        off += (size_t)n;
    }
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_COMMIT;
    m.u.commit.session = 99;
    m.u.commit.action = OTAUP_COMMIT_DONE;
    script_msg(&sc, &m, seq++);
    {
        uint8_t ack[64];
        otaup_msg a;
        int k;
        memset(&a, 0, sizeof a);
        a.type = OTAUP_MSG_ACK;
        a.u.ack.seq = 1000;
        a.u.ack.window = 1;
        k = otaup_msg_encode_frame(&a, 0, seq, 1024, ack, sizeof ack);
        script_put(&sc, ack, (size_t)k); /* acknowledges the RESULT */
    }
    ck_assert_int_eq(otaup_apply_run(&r.ap, 5000), 0);
    ck_assert_int_eq(otaup_apply_result(&r.ap), 0);
    check_new(&r);
    /* a silent link times out */
    {
        script empty;
        memset(&empty, 0, sizeof empty);
        r.cfg.link.ctx = &empty;
        r.cfg.clock_ctx = &empty;
        ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
        ck_assert_int_eq(otaup_apply_run(&r.ap, 2000), OTAUP_E_TIMEOUT);
        free(empty.p);
    }
    free(sc.p);
    rig_free(&r);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("apply_link");
    TCase *tc = tcase_create("link");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_clean_link);
    tcase_add_test(tc, test_lossy_link);
    tcase_add_test(tc, test_disconnects);
    tcase_add_test(tc, test_direct_frames);
    tcase_add_test(tc, test_commit_checks_target);
    tcase_add_test(tc, test_blocking_run);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
