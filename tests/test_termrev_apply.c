/*
 * The applier on the wire, edge cases of a session's life: two A/B
 * updates one after the other on the same applier (no reset between
 * them), a START again after the session ended, a driver error in the
 * middle of an erase followed by the same frame again, an ABORT while a
 * user-data region is being restored, a restore outside a session or
 * cut short of its region's end, and a configuration whose updater ends
 * at the top of the address space. Frames are fed directly; the
 * simulated flash's operation log and content are the judges.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "otaup/otaup.h"
#include "otaup/apply.h"
#include "otaup/simflash.h"

#include "util/aprig.h"

/* PROGRESS frames in what the terminal sent since the last answer() */
static int count_progress(void)
{
    otaup_decoder d;
    uint8_t db[4096];
    size_t off = 0;
    int n = 0;
    otaup_decoder_init(&d, db, sizeof db, 4096);
    while (off < R.k.len) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, R.k.buf + off, R.k.len - off, &used, &fr);
        off += used;
        if (ev == OTAUP_DEC_FRAME && fr.type == OTAUP_MSG_PROGRESS) {
            n++;
        } else if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
    }
    return n;
}

/* Connect again without a reset, as after a dropped link, and return the
 * writable window and the boot slot the INFO reports. */
static void reconnect_info(otaup_msg_info *info)
{
    otaup_msg m;
    otaup_decoder d;
    uint8_t fr[256], db[4096];
    size_t off = 0;
    int n, i, seen = 0;
    R.k.len = 0;
    ck_assert_int_eq(otaup_apply_connect(&R.ap), 0);
    send_hello();
    for (i = 0; i < 3; i++) {
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_ACK;
        m.u.ack.seq = 0xFFFFu;
        m.u.ack.window = 1;
        n = otaup_msg_encode_frame(&m, 0, 0, 2048, fr, sizeof fr);
        ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
    }
    otaup_decoder_init(&d, db, sizeof db, 4096);
    while (off < R.k.len) {
        otaup_frame f;
        size_t used = 0;
        int ev = otaup_decoder_feed(&d, R.k.buf + off, R.k.len - off, &used, &f);
        off += used;
        if (ev == OTAUP_DEC_FRAME && f.type == OTAUP_MSG_INFO) {
            otaup_msg im;
            ck_assert_int_eq(otaup_msg_decode(f.type, f.payload, f.payload_len, &im), 0);
            *info = im.u.info;
            seen = 1;
        } else if (ev == OTAUP_DEC_NEED_INPUT) {
            break;
        }
    }
    ck_assert(seen);
    R.k.len = 0;
    R.seq = 1;
}

/* A/B, twice on the same applier: the second update must go to the slot
 * that does not boot now (A), never to the one the first update switched
 * to (B): a cut in the middle would leave the booting slot half written. */
START_TEST(test_ab_two_updates_without_reset)
{
    int32_t result = 1;
    rig_make(OTAUP_LAYOUT_AB);
    boot();
    ck_assert_int_eq(start(11, 0), 0);
    fill_step(0, SLOT_B, 0xB1);
    ck_assert_int_eq(commit(11, OTAUP_COMMIT_SWITCH, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 1);
    /* the link drops and comes back, no reset: INFO offers slot A */
    {
        otaup_msg_info info;
        reconnect_info(&info);
        ck_assert_uint_eq(info.active_slot, 1);
        ck_assert_uint_eq(info.nwindows, 1);
        ck_assert_uint_eq(info.windows[0].addr, SLOT_A);
    }
    /* the next update */
    ck_assert_int_eq(start(12, 0), 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.target_slot, 0);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_B, S, 0), OTAUP_E_WINDOW); /* the booting slot */
    fill_step(0, SLOT_A, 0xA2);
    result = 1;
    ck_assert_int_eq(commit(12, OTAUP_COMMIT_SWITCH, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 0);
    expect_sector(SLOT_A, 0xA2);
    expect_sector(SLOT_B, 0xB1);
    expect_sector(UPDATER, 0x5A);
    expect_sector(USER, 0x33);
    /* after a reset the applier agrees */
    boot();
    ck_assert_int_eq(start(13, 0), 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.target_slot, 1);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A, S, 0), OTAUP_E_WINDOW);
}
END_TEST

/* A/B: a cut between the SWITCH record and the END record. The resume
 * finds the session active with the switch done: the stream replays,
 * the commit ends it, the slot it wrote boots, and INFO's slot window
 * does not send a later update into the booting slot. */
START_TEST(test_ab_cut_between_switch_and_end)
{
    int32_t result = 1;
    size_t w;
    rig_make(OTAUP_LAYOUT_AB);
    boot();
    ck_assert_int_eq(start(21, 0), 0);
    fill_step(0, SLOT_B, 0xB3);
    w = writes();
    otaup_simflash_cut_after(R.sim, 1, 0); /* the SWITCH record is written, the END is not */
    ck_assert_int_ne(commit(21, OTAUP_COMMIT_SWITCH, &result), 0);
    ck_assert_uint_eq(writes(), w + 1);
    otaup_simflash_power_on(R.sim);
    boot();
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 1);
    ck_assert_int_eq(start(21, OTAUP_START_RESUME), 0);
    fill_step(0, SLOT_B, 0xB3); /* replayed: nothing written */
    result = 1;
    ck_assert_int_eq(commit(21, OTAUP_COMMIT_SWITCH, &result), 0);
    ck_assert_int_eq(result, 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ENDED);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 1);
    expect_sector(SLOT_B, 0xB3);
    /* the next update writes slot A */
    ck_assert_int_eq(start(22, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_B, S, 0), OTAUP_E_WINDOW);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A, S, 0), 0);
}
END_TEST

/* START again after the session ended: the same session is answered with
 * its RESULT and nothing executes; a COMMIT again repeats the RESULT. */
START_TEST(test_start_after_done)
{
    int32_t result = 1;
    size_t w;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(31, 0), 0);
    fill_step(0, SLOT_A + S, 0x71);
    ck_assert_int_eq(commit(31, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    w = writes();
    result = 1;
    ck_assert_int_eq(commit(31, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    /* a reset, then the same START: done, nothing written */
    boot();
    result = 1;
    {
        otaup_msg m;
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_START;
        m.u.start.session = 31;
        m.u.start.flags = OTAUP_START_RESUME;
        ck_assert_int_eq(send(&m, &result), 0);
    }
    ck_assert_int_eq(result, 0);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A + S, S, 0), OTAUP_E_NO_SESSION);
    ck_assert_uint_eq(writes(), w);
    expect_sector(SLOT_A + S, 0x71);
}
END_TEST

/* A driver error in the middle of a step's erase: NACK with the driver's
 * error, and the same frame again (the server's retry) completes the
 * step; the duplicate after it executes nothing. */
START_TEST(test_failed_erase_then_retry)
{
    otaup_msg m;
    size_t w;
    int32_t rc;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(41, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A, 2 * S > S ? S : S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_ERASE, 0, SLOT_A, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_FILL, 0, SLOT_A, S, 0x44), 0);
    otaup_simflash_fail_after(R.sim, 2, 1); /* the point of no return, then a torn erase */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_REC_END;
    m.u.rec.type = OTAUP_REC_END;
    rc = send(&m, NULL);
    ck_assert_int_eq(rc, OTAUP_E_FLASH_ERASE);
    /* the step went with the failure: the server sends it again */
    ck_assert_int_eq(rec(OTAUP_REC_STEP, 0, SLOT_A, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_ERASE, 0, SLOT_A, S, 0), 0);
    ck_assert_int_eq(rec(OTAUP_REC_FILL, 0, SLOT_A, S, 0x44), 0);
    ck_assert_int_eq(send(&m, NULL), 0);
    expect_sector(SLOT_A, 0x44);
    w = writes();
    ck_assert_int_eq(send_at(&m, R.seq - 1u, NULL), 0); /* a duplicate: answered, not executed */
    ck_assert_uint_eq(writes(), w);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.next_step, 1);
}
END_TEST

/* ABORT while a user-data region is being restored (A/B): refused with
 * RESULT OTAUP_E_STATE, the journal keeps the session and the restore
 * BUSY; another session is refused; after a reset the restore resumes and
 * the session can be aborted once the region is whole again. */
START_TEST(test_abort_mid_restore)
{
    otaup_msg m;
    uint8_t data[S];
    int32_t result = 1;
    uint64_t h;
    int i;
    rig_make(OTAUP_LAYOUT_AB);
    boot();
    ck_assert_int_eq(start(51, 0), 0);
    memset(data, 0x66, sizeof data);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_RESTORE_DATA;
    m.u.rdata.region = 1;
    m.u.rdata.offset = 0;
    m.u.rdata.data.data = data;
    m.u.rdata.data.len = 1024;
    ck_assert_int_eq(send(&m, NULL), 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ABORT;
    m.u.abort.session = 51;
    m.u.abort.reason = OTAUP_E_CANCELED;
    ck_assert_int_eq(send(&m, &result), 0);
    ck_assert_int_eq(result, OTAUP_E_STATE);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_int_eq(start(52, 0), OTAUP_E_SESSION);
    /* a reset: the journal still says BUSY; the session resumes */
    boot();
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_int_eq(start(52, 0), OTAUP_E_SESSION);
    ck_assert_int_eq(start(51, OTAUP_START_RESUME), 0);
    h = XXH3_64bits(data, S);
    for (i = 0; i < 4; i++) {
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_RESTORE_DATA;
        m.u.rdata.region = 1;
        m.u.rdata.offset = (uint32_t)i * 1024u;
        m.u.rdata.data.data = data + i * 1024;
        m.u.rdata.data.len = 1024;
        if (i == 3) {
            int b;
            m.u.rdata.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
            m.u.rdata.hash.alg = OTAUP_HASH_XXH3_64;
            m.u.rdata.hash.len = 8;
            for (b = 0; b < 8; b++) {
                m.u.rdata.hash.bytes[b] = (uint8_t)(h >> (8 * b));
            }
        }
        ck_assert_int_eq(send(&m, NULL), 0);
    }
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_DONE);
    expect_sector(USER, 0x66);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ABORT;
    m.u.abort.session = 51;
    m.u.abort.reason = OTAUP_E_CANCELED;
    result = 1;
    ck_assert_int_eq(send(&m, &result), 0);
    ck_assert_int_eq(result, OTAUP_E_CANCELED);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ENDED);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.boot_slot, 0);
    expect_sector(SLOT_A, 0xA0);
}
END_TEST

/* A restore outside an update session (none begun, or one already ended
 * with its RESULT) would write an old backup over the user's data: it is
 * refused with OTAUP_E_NO_SESSION and writes nothing; inside a session the
 * same chunks restore the region. */
START_TEST(test_restore_needs_session)
{
    uint8_t data[S];
    int32_t result = 1;
    size_t w;
    memset(data, 0x66, sizeof data);
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    w = writes();
    ck_assert_int_eq(restore_region(data), OTAUP_E_NO_SESSION);
    ck_assert_uint_eq(writes(), w);
    expect_sector(USER, 0x33);
    /* a session, ended by its COMMIT: the restore comes too late */
    ck_assert_int_eq(start(61, 0), 0);
    ck_assert_int_eq(commit(61, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    w = writes();
    ck_assert_int_eq(restore(data, 0, 1024, 0, 0), OTAUP_E_NO_SESSION);
    ck_assert_int_eq(restore_region(data), OTAUP_E_NO_SESSION);
    ck_assert_uint_eq(writes(), w);
    expect_sector(USER, 0x33);
    /* and after a reset, before the server's START */
    boot();
    ck_assert_int_eq(restore_region(data), OTAUP_E_NO_SESSION);
    ck_assert_uint_eq(writes(), w);
    /* inside a session: restored */
    ck_assert_int_eq(start(62, 0), 0);
    ck_assert_int_eq(restore_region(data), 0);
    expect_sector(USER, 0x66);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_DONE);
}
END_TEST

/* A backup is the whole region: a LAST chunk that ends before the
 * region's end (its hash over the bytes sent) is refused with
 * OTAUP_E_RANGE before anything of it is written; the restore stays BUSY
 * in the journal, and a whole restore from offset 0 then completes. A LAST
 * chunk of the right length without a hash, or with a hash of fewer
 * bytes, is OTAUP_E_HASH. */
START_TEST(test_restore_truncated)
{
    uint8_t data[S];
    size_t w;
    uint32_t off;
    memset(data, 0x66, sizeof data);
    data[S - 1] = 0x67;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(63, 0), 0);
    ck_assert_int_eq(restore(data, 0, 1024, 0, 0), 0);
    ck_assert_int_eq(restore(data, 1024, 1024, 0, 0), 0);
    w = writes();
    ck_assert_int_eq(restore(data, 2048, 1024, 1, 3072), OTAUP_E_RANGE);
    ck_assert_uint_eq(writes(), w);
    ck_assert_int_eq(restore(data, 2048, 8, 1, 2056), OTAUP_E_RANGE);
    ck_assert_int_eq(restore(data, 0, 1024, 1, 1024), OTAUP_E_RANGE);
    ck_assert_uint_eq(writes(), w);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    /* the region's end, but nothing to check it against */
    ck_assert_int_eq(restore(data, 2048, 1024, 0, 0), 0);
    w = writes();
    ck_assert_int_eq(restore(data, 3072, 1024, 2, 0), OTAUP_E_HASH);
    ck_assert_uint_eq(writes(), w);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    /* the server's next attempt, from offset 0, the whole region */
    for (off = 0; off < S; off += 1024) {
        int last = off + 1024 == S;
        ck_assert_int_eq(restore(data, off, 1024, last, last ? S - 1 : 0), last ? OTAUP_E_HASH : 0);
    }
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_BUSY);
    ck_assert_int_eq(restore_region(data), 0);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.restore, OTAUP_JRESTORE_DONE);
    ck_assert_mem_eq(otaup_simflash_data(R.sim) + USER, data, S);
}
END_TEST

/* An updater that ends at 2^32 and a slot that runs into it: refused at
 * init (the overlap test used to compare end addresses, and 2^32 is 0). */
START_TEST(test_updater_at_top_overlaps_slot)
{
    otaup_simflash_options o;
    const uint32_t base = 0u - 12u * S;
    size_t wsz;
    memset(&R, 0, sizeof R);
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, base, S, 12, 8);
    ck_assert_int_eq(otaup_simflash_new(&o, &R.sim), 0);
    R.cfg.flash = otaup_simflash_flash(R.sim);
    R.cfg.layout = OTAUP_LAYOUT_INPLACE;
    R.cfg.max_ops = 8;
    R.cfg.journal.addr = base;
    R.cfg.journal.len = 2 * S;
    R.cfg.scratch.addr = base + 2 * S;
    R.cfg.scratch.len = S;
    R.cfg.slots[0].addr = base + 3 * S;
    R.cfg.slots[0].len = 9 * S - 8; /* into the last sector */
    R.cfg.updater.addr = base + 11 * S;
    R.cfg.updater.len = S; /* up to 2^32 */
    R.cfg.staging_size = S;
    R.cfg.max_frame = 2048;
    R.cfg.max_msg = 2048;
    R.cfg.id.terminal_id = "T-1";
    R.cfg.id.model = "m";
    R.cfg.id.sw_version = "1";
    R.cfg.link.ctx = &R.k;
    R.cfg.link.send = sink_send;
    R.cfg.now_ms = clock_ms;
    wsz = otaup_apply_work_size(2048, 2048, S, 8, 0);
    R.work = malloc(wsz);
    R.cfg.work = R.work;
    R.cfg.work_size = wsz;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.slots[0].len = 8 * S; /* up to the updater: fine */
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
}
END_TEST

/* In place past the point of no return: another session's START is
 * refused (OTAUP_E_SESSION, nothing written), an ABORT is answered with
 * RESULT OTAUP_E_STATE, and both hold after a reset; a frame the server
 * numbered in the connection before the reset is a gap in the new one
 * (NACK OTAUP_E_SEQ), not executed; the session itself resumes. */
START_TEST(test_other_session_past_ponr)
{
    otaup_msg m;
    int32_t result = 1;
    size_t w;
    uint32_t old_seq;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(71, 0), 0);
    fill_step(0, SLOT_A + S, 0x71);
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.ponr, 1);
    w = writes();
    ck_assert_int_eq(start(72, 0), OTAUP_E_SESSION);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ABORT;
    m.u.abort.session = 0;
    m.u.abort.reason = OTAUP_E_CANCELED;
    ck_assert_int_eq(send(&m, &result), 0);
    ck_assert_int_eq(result, OTAUP_E_STATE);
    ck_assert_uint_eq(writes(), w);
    old_seq = R.seq;
    boot();
    ck_assert_uint_eq(otaup_apply_journal(&R.ap)->st.session, OTAUP_JS_ACTIVE);
    ck_assert_int_eq(start(72, 0), OTAUP_E_SESSION);
    /* the old connection's next frame number, well past this one's */
    memset(&m, 0, sizeof m);
    m.type = OTAUP_REC_ERASE;
    m.u.rec.type = OTAUP_REC_ERASE;
    m.u.rec.addr = SLOT_A + 2 * S;
    m.u.rec.len = S;
    ck_assert_uint_gt(old_seq, R.seq + 1u);
    ck_assert_int_eq(send_at(&m, old_seq, NULL), OTAUP_E_SEQ);
    ck_assert_uint_eq(writes(), w);
    ck_assert_int_eq(start(71, OTAUP_START_RESUME), 0);
    fill_step(0, SLOT_A + S, 0x71); /* replayed */
    ck_assert_uint_eq(writes(), w);
    fill_step(1, SLOT_A + 2 * S, 0x72);
    result = 1;
    ck_assert_int_eq(commit(71, OTAUP_COMMIT_DONE, &result), 0);
    ck_assert_int_eq(result, 0);
    expect_sector(SLOT_A, 0xA0);
    expect_sector(SLOT_A + S, 0x71);
    expect_sector(SLOT_A + 2 * S, 0x72);
    expect_sector(USER, 0x33);
    expect_sector(UPDATER, 0x5A);
}
END_TEST

/* A long erase and a long VERIFY send PROGRESS frames while they run
 * (the clock moves 600 ms per reading, the default gap is 500 ms), and the
 * ACK follows them. */
START_TEST(test_progress_during_long_operations)
{
    otaup_msg m;
    uint8_t fr[256];
    int n, progress;
    int32_t code = 1;
    uint8_t img[4 * S];
    uint64_t h;
    int i;
    rig_make(OTAUP_LAYOUT_INPLACE);
    boot();
    ck_assert_int_eq(start(61, 0), 0);
    g_tick = 600;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_REC_ERASE;
    m.u.rec.type = OTAUP_REC_ERASE;
    m.u.rec.addr = SLOT_A + S;
    m.u.rec.len = 3 * S;
    n = otaup_msg_encode_frame(&m, 0, R.seq, 2048, fr, sizeof fr);
    ck_assert_int_eq(otaup_apply_feed(&R.ap, fr, (size_t)n), 0);
    progress = count_progress();
    ck_assert_int_eq(answer(&code, NULL), OTAUP_MSG_ACK);
    R.seq++;
    ck_assert_int_ge(progress, 2);
    expect_sector(SLOT_A + 3 * S, 0xFF);
    /* a VERIFY of the slot: flash as it is now */
    memcpy(img, otaup_simflash_data(R.sim) + SLOT_A, sizeof img);
    h = XXH3_64bits(img, sizeof img);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_REC_VERIFY;
    m.u.rec.type = OTAUP_REC_VERIFY;
    m.u.rec.addr = SLOT_A;
    m.u.rec.len = 4 * S;
    m.u.rec.alg = OTAUP_HASH_XXH3_64;
    m.u.rec.hash_len = 8;
    for (i = 0; i < 8; i++) {
        m.u.rec.hash[i] = (uint8_t)(h >> (8 * i));
    }
    ck_assert_int_eq(send(&m, NULL), 0);
    g_tick = 0;
}
END_TEST

/* A/B: each slot is checked against the journal, the scratch area and
 * the updater at init, not only the one the first session would write
 * (after a switch, the other one is written). */
START_TEST(test_ab_slots_checked_both)
{
    rig_make(OTAUP_LAYOUT_AB);
    R.cfg.journal.addr = SLOT_A + 2 * S; /* the journal inside slot A; slot B is written first */
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.journal.addr = JOURNAL;
    R.cfg.scratch.addr = SLOT_A + 3 * S; /* scratch inside slot A */
    R.cfg.scratch.len = S;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.scratch.len = 0;
    R.cfg.updater.addr = SLOT_A + 3 * S; /* the updater inside slot A */
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.updater.addr = UPDATER;
    /* a user-data region inside either slot, or across the end of one */
    R.cfg.regions[0].addr = SLOT_B + S;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.regions[0].addr = SLOT_A;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.regions[0].addr = SLOT_B + 3 * S;
    R.cfg.regions[0].len = 2 * S;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), OTAUP_E_REGION);
    R.cfg.regions[0].addr = USER;
    R.cfg.regions[0].len = S;
    ck_assert_int_eq(otaup_apply_init(&R.ap, &R.cfg), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("termrev_apply");
    TCase *tc = tcase_create("session");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_ab_two_updates_without_reset);
    tcase_add_test(tc, test_ab_cut_between_switch_and_end);
    tcase_add_test(tc, test_start_after_done);
    tcase_add_test(tc, test_failed_erase_then_retry);
    tcase_add_test(tc, test_abort_mid_restore);
    tcase_add_test(tc, test_updater_at_top_overlaps_slot);
    tcase_add_test(tc, test_progress_during_long_operations);
    tcase_add_test(tc, test_other_session_past_ponr);
    tcase_add_test(tc, test_ab_slots_checked_both);
    tcase_add_test(tc, test_restore_needs_session);
    tcase_add_test(tc, test_restore_truncated);
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
