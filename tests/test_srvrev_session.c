/*
 * Session driver review: the server's obligations of protocol.md §4-5
 * that the other suites do not pin, each at the message level with a
 * scripted terminal against a real SQLite registry (the rig of
 * test_session.c, kept small here).
 *
 * - A terminal that answers every frame with a transient NACK
 *   (OTAUP_E_AGAIN: its flash driver reports "busy" for good) makes no
 *   progress, so its session must end after the retransmission limit as a
 *   silent one does (OTAUP_E_RETRIES), for the control queue and for the
 *   record stream. Each NACK's go-back resend used to restart the
 *   timeout: with a round trip longer than the go-back guard (the SRTT,
 *   200 ms before a sample) the timeout never fired and the session went
 *   on for ever, resending, holding the terminal's claim.
 */
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

#define SESSRIG_DIR "/tmp/otaup-srvrev-XXXXXX"
#define SESSRIG_BACKUP_RIG
#include "util/sessrig.h"

/* Run the session, the terminal refusing every sequenced frame from
 * `from` on with NACK(code, expected = from), each NACK arriving `rtt_ms`
 * after the frame left, until the session ends or `limit_ms` of
 * simulated time pass. Returns the session's result (1: still running). */
static int refuse_all(otaup_session *s, uint32_t from, int32_t code, uint32_t rtt_ms, uint64_t *now,
                      uint64_t limit_ms, unsigned *resends)
{
    uint64_t end = *now + limit_ms, due[64];
    uint32_t ref[64];
    unsigned n = 0, i;
    long guard;
    *resends = 0;
    for (guard = 0; guard < 2000000 && *now < end; guard++) {
        const otaup_sm *m;
        int rc;
        if (otaup_session_finished(s)) {
            return otaup_session_result(s);
        }
        /* NACKs whose time has come */
        for (i = 0; i < n;) {
            if (due[i] <= *now) {
                rc = send_nack(s, ref[i], from, code, *now);
                if (rc < 0) {
                    return rc;
                }
                due[i] = due[n - 1];
                ref[i] = ref[n - 1];
                n--;
            } else {
                i++;
            }
        }
        if (otaup_session_finished(s)) {
            return otaup_session_result(s);
        }
        m = otaup_session_next_msg(s, *now);
        if (m != NULL) {
            if (m->type != OTAUP_SM_ABORT_OUT && m->seq >= from && n < 64) {
                (*resends)++;
                due[n] = *now + rtt_ms;
                ref[n] = m->seq;
                n++;
            }
            continue;
        }
        *now += 10;
        rc = otaup_session_poll(s, *now);
        if (rc < 0) {
            return rc;
        }
    }
    return otaup_session_finished(s) ? otaup_session_result(s) : 1;
}

/* The control queue: every BACKUP_REQ refused with NACK(OTAUP_E_AGAIN). */
START_TEST(test_transient_nack_bounded_control)
{
    otaup_session *s = new_session();
    const otaup_sm *q;
    uint64_t now = 1000;
    unsigned resends;
    int rc;
    make_info("R1", v1);
    q = consented(s, now);
    rc = send_nack(s, q->seq, q->seq, OTAUP_E_AGAIN, now);
    ck_assert_int_eq(rc, 0);
    rc = refuse_all(s, q->seq, OTAUP_E_AGAIN, 250, &now, 30u * 60u * 1000u, &resends);
    ck_assert_msg(rc == OTAUP_E_RETRIES, "session result %d after %u refused resends in %llu ms", rc, resends,
                  (unsigned long long)(now - 1000));
    /* within the timeouts a silent terminal gets (10, backed off to 8 s) */
    ck_assert_uint_lt(now - 1000, 120000u);
    otaup_session_free(s);
}
END_TEST

/* The record stream: every BATCH refused with NACK(OTAUP_E_AGAIN). */
START_TEST(test_transient_nack_bounded_stream)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    unsigned resends;
    uint32_t first;
    int rc;
    make_info("R2", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    m = expect(s, OTAUP_SM_BATCH, now);
    first = m->seq;
    ck_assert_int_eq(send_nack(s, first, first, OTAUP_E_AGAIN, now), 0);
    rc = refuse_all(s, first, OTAUP_E_AGAIN, 250, &now, 30u * 60u * 1000u, &resends);
    ck_assert_msg(rc == OTAUP_E_RETRIES, "session result %d after %u refused resends in %llu ms", rc, resends,
                  (unsigned long long)(now - 1000));
    ck_assert_uint_lt(now - 1000, 120000u);
    otaup_session_free(s);
}
END_TEST

/* A terminal busy for a while (NACK(OTAUP_E_AGAIN) for 3 s), then taking
 * the frames: the session goes on, the bound above does not cut it. */
START_TEST(test_transient_nack_then_progress)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    unsigned resends;
    uint32_t first;
    make_info("R3", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    m = expect(s, OTAUP_SM_BATCH, now);
    first = m->seq;
    ck_assert_int_eq(refuse_all(s, first, OTAUP_E_AGAIN, 250, &now, 3000, &resends), 1);
    ck_assert_uint_gt(resends, 1);
    /* now it takes them, in order */
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 20;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ck_assert_int_eq(m->type, OTAUP_SM_BATCH);
        ack(s, m, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    otaup_session_free(s);
}
END_TEST

/* A region whose upload stalled twice (the server asked again each time)
 * and then arrived whole but not matching its hash (a read glitch on the
 * terminal) is asked again, as docs/server.md says ("asked again twice,
 * then OTAUP_E_BACKUP"): the stalls are not mismatches. The one count
 * served both, so the first mismatch after two stalls failed the session
 * at once. */
START_TEST(test_backup_mismatch_after_stalls)
{
    otaup_session *s = new_session();
    const otaup_sm *q;
    uint8_t glitch[sizeof userdata[0]];
    uint64_t now = 1000, d;
    uint32_t off;
    int k;
    make_info("R4", v1);
    q = consented(s, now);
    ack(s, q, now);
    for (k = 0; k < 2; k++) {
        d = otaup_session_deadline(s);
        ck_assert_int_eq(otaup_session_poll(s, d), 0);
        q = expect(s, OTAUP_SM_BACKUP_REQ, d);
        ck_assert_uint_eq(q->offset, 0);
        ack(s, q, d);
        now = d;
    }
    /* the whole region, one byte read wrong, the LAST hash of the real data */
    memcpy(glitch, userdata[0], sizeof glitch);
    glitch[1234] ^= 0x10;
    for (off = 0; off < sizeof glitch; off += 1000) {
        otaup_sm m;
        memset(&m, 0, sizeof m);
        m.type = OTAUP_SM_BACKUP_DATA;
        m.region = 1;
        m.offset = off;
        m.data = glitch + off;
        m.len = 1000;
        if (off + 1000 == sizeof glitch) {
            m.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
            m.hash_alg = OTAUP_HASH_XXH3_64;
            hash64(userdata[0], sizeof userdata[0], m.hash);
        }
        ck_assert_int_eq(otaup_session_input_msg(s, &m, now), 0);
    }
    ck_assert_msg(!otaup_session_finished(s), "session ended with %d at the first mismatch",
                  otaup_session_result(s));
    q = expect(s, OTAUP_SM_BACKUP_REQ, now);
    ck_assert_uint_eq(q->region, 1);
    ck_assert_uint_eq(q->offset, 0);
    /* and the good copy goes on to region 2 */
    answer_backup_req(s, q, 0, userdata[0], now);
    q = expect(s, OTAUP_SM_BACKUP_REQ, now);
    ck_assert_uint_eq(q->region, 2);
    otaup_session_free(s);
}
END_TEST

/* A region uploaded slowly: after each 100-byte chunk the terminal stalls
 * until the server asks again from the byte it has. That is progress
 * after every request, not max_retries stalls in a row (protocol.md §4):
 * the region completes. The stall count was never reset by the data, so
 * the eleventh stall of a region failed it (OTAUP_E_RETRIES) with most of
 * its bytes in hand. */
START_TEST(test_backup_stalls_with_progress)
{
    otaup_session *s = new_session();
    const otaup_sm *q;
    uint64_t now = 1000, d;
    uint32_t off = 0;
    make_info("R5", v1);
    q = consented(s, now);
    ack(s, q, now);
    while (off < sizeof userdata[0]) {
        uint32_t n = 100;
        send_region_data(s, 1, off, userdata[0] + off, n, userdata[0], sizeof userdata[0], now, 0);
        off += n;
        if (off == sizeof userdata[0]) {
            break;
        }
        d = otaup_session_deadline(s);
        ck_assert_int_eq(otaup_session_poll(s, d), 0);
        ck_assert_msg(!otaup_session_finished(s), "session ended with %d at offset %u", otaup_session_result(s),
                      off);
        q = expect(s, OTAUP_SM_BACKUP_REQ, d);
        ck_assert_uint_eq(q->offset, off);
        ack(s, q, d);
        now = d;
    }
    q = expect(s, OTAUP_SM_BACKUP_REQ, now);
    ck_assert_uint_eq(q->region, 2);
    otaup_session_free(s);
}
END_TEST

/* The terminal's answer to a BACKUP_REQ with HASH_ONLY (in order: the
 * request of region 1) when it does not know the flag: NACK(FRAME_FLAGS).
 * The server takes the number back and restores every region from it.
 * A second copy of that NACK (the link duplicated it, or the server's
 * timer resent the request before the first NACK arrived and the
 * terminal answered the copy the same way, protocol.md §4 rule 5) names
 * the number the restore now uses: it is the refusal already handled,
 * not a refusal of the restore. It failed the session ("terminal refused
 * the restore of region 0"), resumable, so that a terminal without
 * HASH_ONLY on a link that duplicates frames could fail every
 * connection. */
START_TEST(test_duplicate_refusal_of_hash_only)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t x;
    make_info("R6", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    m = expect(s, OTAUP_SM_BACKUP_REQ, now);
    ck_assert_uint_eq(m->flags, OTAUP_BACKUP_HASH_ONLY);
    x = m->seq;
    now += 100;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_FRAME_FLAGS, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_RESTORE);
    m = expect(s, OTAUP_SM_RESTORE, now);
    ck_assert_uint_eq(m->seq, x); /* the number taken back */
    /* the copy's NACK, a moment later */
    now += 5;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_FRAME_FLAGS, now), 0);
    ck_assert_msg(otaup_session_get_state(s) != OTAUP_SS_FAILED, "the copy of the refusal failed the session (%d)",
                  otaup_session_result(s));
    /* every region restored, then COMMIT */
    while (otaup_session_get_state(s) == OTAUP_SS_RESTORE) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ck_assert_int_eq(m->type, OTAUP_SM_RESTORE);
        ack(s, m, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_COMMIT);
    otaup_session_free(s);
}
END_TEST

/* The same for a refused SIG_REQ (a terminal that cannot compute its
 * block signature: NACK(UNSUPPORTED)), whose number START takes: a copy
 * of that NACK is not the terminal refusing the update. It failed the
 * session before START with "terminal refused the update before any
 * flash write". */
START_TEST(test_duplicate_refusal_of_sig_req)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t x;
    make_info("R7", v1);
    info.have_image_hash = 0; /* its version names release 1.0: checked by its signature */
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_SIG_REQ, now);
    x = m->seq;
    now += 100;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_UNSUPPORTED, now), 0);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_uint_eq(m->seq, x);
    now += 5;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_UNSUPPORTED, now), 0);
    ck_assert_msg(otaup_session_get_state(s) != OTAUP_SS_FAILED, "the copy of the refusal failed the session (%d)",
                  otaup_session_result(s));
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    otaup_session_free(s);
}
END_TEST

/* A refusal of the frame that took the number, with the same code, once
 * that frame went out and a retransmission timeout passed: the terminal
 * refused it, and the session fails with its code (not left to wait). */
START_TEST(test_refusal_of_reused_number_later)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t x;
    make_info("R8", v1);
    info.have_image_hash = 0;
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_SIG_REQ, now);
    x = m->seq;
    now += 100;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_UNSUPPORTED, now), 0);
    m = expect(s, OTAUP_SM_START, now);
    now += 5000;
    ck_assert_int_eq(send_nack(s, x, x, OTAUP_E_UNSUPPORTED, now), OTAUP_E_UNSUPPORTED);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_UNSUPPORTED);
    otaup_session_free(s);
}
END_TEST

static void answer_hashes(otaup_session *s, const uint8_t *r0, const uint8_t *r1, uint64_t now)
{
    int i;
    for (i = 0; i < 2; i++) {
        const otaup_sm *q = expect(s, OTAUP_SM_BACKUP_REQ, now);
        uint32_t id = q->region;
        otaup_sm m;
        ck_assert_uint_eq(q->flags, OTAUP_BACKUP_HASH_ONLY);
        ack(s, q, now);
        memset(&m, 0, sizeof m);
        m.type = OTAUP_SM_BACKUP_DATA;
        m.region = id;
        m.offset = (uint32_t)sizeof userdata[0];
        m.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
        m.hash_alg = OTAUP_HASH_XXH3_64;
        hash64(id == 1 ? r0 : r1, sizeof userdata[0], m.hash);
        otaup_session_input_msg(s, &m, now);
    }
}

static char events[4000];
static int audit_cb(const otaup_reg_audit *a, void *p)
{
    (void)p;
    strcat(events, a->event);
    strcat(events, " ");
    return 0;
}

static int count_backups_cb(const otaup_reg_backup *b, void *p)
{
    (void)b;
    (*(int *)p)++;
    return 0;
}

/* A region that still differs from its backup after two restores ends the
 * session with OTAUP_E_BACKUP. The restore has begun by then: the
 * session must not send an ABORT (protocol.md 3.7, docs/server.md
 * "States"), or an A/B terminal, whose region is not BUSY any more
 * between two restores, would go back to its old slot and close its
 * journal with the region as it is, and the next session would back that
 * region up over the user's data. The session failed in VERIFY (the state
 * of the hash check between rounds) and fail() kept the ABORT back only
 * in RESTORE. */
START_TEST(test_no_abort_after_restore_began)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint8_t damaged[sizeof userdata[1]];
    otaup_reg_session rs;
    uint64_t now = 1000;
    int round, n = 0, aborted = 0;
    make_info("R9", v1);
    info.layout = OTAUP_LAYOUT_AB;
    info.slot_size = 12 * 4096;
    info.target_addr = 0x08000000 + 12 * 4096;
    info.scratch_addr = info.scratch_size = 0;
    info.caps = (info.caps & ~(uint32_t)OTAUP_CAP_INPLACE) | OTAUP_CAP_AB;
    memcpy(damaged, userdata[1], sizeof damaged);
    memset(damaged + 100, 0xFF, 500);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    for (round = 0; round < 3 && otaup_session_get_state(s) == OTAUP_SS_VERIFY; round++) {
        answer_hashes(s, userdata[0], damaged, now); /* the region keeps reading back damaged */
        while (otaup_session_get_state(s) == OTAUP_SS_RESTORE) {
            m = expect(s, OTAUP_SM_RESTORE, now);
            ack(s, m, now);
        }
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_BACKUP);
    while ((m = otaup_session_next_msg(s, now)) != NULL) {
        aborted |= m->type == OTAUP_SM_ABORT_OUT;
    }
    ck_assert_msg(!aborted, "ABORT sent after the restore began");
    /* the backup is kept, the session resumable */
    ck_assert_int_eq(otaup_registry_backup_list(reg, "R9", count_backups_cb, &n), 0);
    ck_assert_int_eq(n, 2);
    events[0] = '\0';
    ck_assert_int_eq(otaup_registry_audit_list(reg, "R9", 0, audit_cb, NULL), 0);
    ck_assert_ptr_nonnull(strstr(events, "failed resumable"));
    ck_assert_int_eq(otaup_registry_session_get(reg, "R9", &rs), 0);
    ck_assert_str_eq(rs.state, "failed");
    otaup_session_free(s);

    /* the next connection resumes it (its journal holds the session); the
     * link dies while the hashes are asked, before any restore of this
     * connection: no ABORT either, the restore began in the last one */
    s = new_session();
    info.active = 1;
    info.session_id = rs.session_id;
    info.next_step = 16;
    now += 10000;
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTE, now), now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    for (n = 0; n < 100000 && otaup_session_get_state(s) == OTAUP_SS_VERIFY; n++) {
        while ((m = otaup_session_next_msg(s, now)) != NULL) {
        }
        now += 100;
        otaup_session_poll(s, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_RETRIES);
    aborted = 0;
    while ((m = otaup_session_next_msg(s, now)) != NULL) {
        aborted |= m->type == OTAUP_SM_ABORT_OUT;
    }
    ck_assert_msg(!aborted, "ABORT sent in a resumed session whose restore began before");
    otaup_session_free(s);
}
END_TEST

/* The terminal commits, but its RESULT never comes (a link gone silent
 * without closing: no FIN) and the server gives the session up after its
 * retransmissions of COMMIT (OTAUP_E_RETRIES): row failed, backup kept.
 * The terminal's next connection reports the target image and no session
 * (its journal closed on COMMIT). It committed: the session is finished
 * there (COMMIT again, the journal's RESULT, backup deleted, terminal
 * upgraded), as for a row left at commit. The failed row was not looked
 * at: the policy found it up to date and the encrypted copy of its
 * personal data stayed in the registry for good. */
START_TEST(test_committed_after_server_gave_up)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    otaup_reg_terminal t;
    otaup_reg_session rs;
    uint64_t now = 1000;
    uint32_t session;
    int n, k;
    make_info("R10", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    answer_hashes(s, userdata[0], userdata[1], now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_COMMIT);
    m = expect(s, OTAUP_SM_COMMIT, now);
    session = m->session_id;
    /* nothing comes back any more */
    for (k = 0; k < 100000 && otaup_session_get_state(s) == OTAUP_SS_COMMIT; k++) {
        while ((m = otaup_session_next_msg(s, now)) != NULL) {
        }
        now += 100;
        otaup_session_poll(s, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_RETRIES);
    otaup_session_free(s);
    n = 0;
    ck_assert_int_eq(otaup_registry_backup_list(reg, "R10", count_backups_cb, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(otaup_registry_session_get(reg, "R10", &rs), 0);
    ck_assert_str_eq(rs.state, "failed");

    /* it reconnects: running 2.0, no session in its journal */
    s = new_session();
    make_info("R10", v2);
    snprintf(info.version, sizeof info.version, "2.0");
    info.build_time = 200;
    now += 60000;
    ck_assert_int_eq(send_info(s, now), 0);
    m = expect(s, OTAUP_SM_NOTE, now);
    ack(s, m, now);
    m = expect(s, OTAUP_SM_COMMIT, now);
    ck_assert_uint_eq(m->session_id, session);
    ack(s, m, now);
    {
        otaup_sm r;
        memset(&r, 0, sizeof r);
        r.type = OTAUP_SM_RESULT;
        r.session_id = session;
        ck_assert_int_eq(otaup_session_input_msg(s, &r, now), 0);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_DONE);
    n = 0;
    ck_assert_int_eq(otaup_registry_backup_list(reg, "R10", count_backups_cb, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "R10", &t), 0);
    ck_assert_str_eq(t.status, "upgraded");
    otaup_session_free(s);
}
END_TEST

/* The same row, but the terminal reports its old image and no session
 * (the ABORT took it back, or it never took START): not resumed, nothing
 * to commit; the policy offers the upgrade again. */
START_TEST(test_failed_row_old_image_offered_again)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    make_info("R11", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    m = expect(s, OTAUP_SM_BATCH, now);
    ck_assert_int_eq(send_nack(s, m->seq, m->seq, OTAUP_E_WINDOW, now), OTAUP_E_WINDOW);
    otaup_session_free(s);
    s = new_session();
    make_info("R11", v1);
    now += 60000;
    ck_assert_int_eq(send_info(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_WAIT_REQUEST);
    m = expect(s, OTAUP_SM_NOTIFY, now);
    ck_assert_str_eq(m->version, "2.0");
    otaup_session_free(s);
}
END_TEST

/* A terminal whose flash programs 512-byte units and whose frames are 512
 * bytes: a RESTORE_DATA chunk holds at most 512 - 16 - 8 - 9 = 479 bytes,
 * less than one unit, and protocol.md 3.10 has the terminal refuse every
 * chunk but the last whose offset or length is not a multiple of its
 * write size (OTAUP_E_ALIGN). Such a terminal can never have its data
 * restored. The server cut its chunks at 479 bytes, found out only at
 * the restore, after the transfer (the session then failed there and
 * resumed into the same refusal at every connection, the user's data
 * left damaged). It is refused before anything is sent instead:
 * OTAUP_E_LIMIT, with the reason, before the backup. */
START_TEST(test_restore_chunk_below_write_size)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    int n = 0;
    make_info("R12", v1);
    otaup_geometry_uniform(&info.geo, 0x08000000, 4096, 32, 512);
    info.max_frame = 512;
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, now), now);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, now), OTAUP_E_LIMIT);
    m = expect(s, OTAUP_SM_ABORT_OUT, now);
    ck_assert_int_eq(m->code, OTAUP_E_LIMIT);
    ck_assert_ptr_nonnull(strstr(m->text, "write size"));
    ck_assert_int_eq(otaup_registry_backup_list(reg, "R12", count_backups_cb, &n), 0);
    ck_assert_int_eq(n, 0);
    otaup_session_free(s);
}
END_TEST

/* The same flash with 1 KiB frames: chunks of 512 bytes (a multiple of
 * the write size), the last one the rest. */
START_TEST(test_restore_chunks_aligned)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint8_t damaged[sizeof userdata[1]];
    uint64_t now = 1000;
    make_info("R13", v1);
    otaup_geometry_uniform(&info.geo, 0x08000000, 4096, 32, 512);
    memcpy(damaged, userdata[1], sizeof damaged);
    damaged[7] ^= 1;
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    answer_hashes(s, userdata[0], damaged, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_RESTORE);
    while (otaup_session_get_state(s) == OTAUP_SS_RESTORE) {
        m = expect(s, OTAUP_SM_RESTORE, now);
        ck_assert_uint_eq(m->offset % 512, 0);
        ck_assert(m->len % 512 == 0 || m->offset + m->len == sizeof userdata[1]);
        ack(s, m, now);
    }
    otaup_session_free(s);
}
END_TEST

/* PROGRESS, a terminal's "busy, alive" during a long operation, restarts
 * the retransmission timers (protocol.md §4). A terminal that sends it
 * for ever and never acknowledges anything (an erase that never ends, a
 * firmware stuck in a loop that still reports) kept the session for
 * ever: the timers never fired and the idle timer saw a talking
 * terminal. PROGRESS now extends the wait only up to idle_timeout_ms
 * (120 s) without an acknowledgement that advances; then the timeouts
 * count and the session ends with OTAUP_E_RETRIES. */
START_TEST(test_progress_without_ack_bounded)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000, t0;
    long k;
    make_info("R14", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    t0 = now;
    for (k = 0; k < 400000 && otaup_session_get_state(s) == OTAUP_SS_TRANSFER && now - t0 < 1800000u; k++) {
        while ((m = otaup_session_next_msg(s, now)) != NULL) {
        }
        now += 10;
        if (now % 500 == 0) {
            otaup_sm p;
            memset(&p, 0, sizeof p);
            p.type = OTAUP_SM_PROGRESS;
            p.step = 1;
            otaup_session_input_msg(s, &p, now);
        }
        otaup_session_poll(s, now);
    }
    ck_assert_msg(otaup_session_get_state(s) == OTAUP_SS_FAILED, "still in %s after %llu ms",
                  otaup_session_state_name(otaup_session_get_state(s)), (unsigned long long)(now - t0));
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_RETRIES);
    ck_assert_uint_lt(now - t0, 120000u + 120000u);
    otaup_session_free(s);
}
END_TEST

/* A long operation that does end: PROGRESS for 60 s, then the ACK. The
 * session goes on (the bound above is not a limit on one operation of
 * up to idle_timeout_ms). */
START_TEST(test_progress_long_operation)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000, t0;
    uint32_t first;
    make_info("R15", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    m = expect(s, OTAUP_SM_BATCH, now);
    first = m->seq;
    t0 = now;
    while (now - t0 < 60000u) {
        otaup_sm p;
        while (otaup_session_next_msg(s, now) != NULL) {
        }
        now += 500;
        memset(&p, 0, sizeof p);
        p.type = OTAUP_SM_PROGRESS;
        p.step = 1;
        ck_assert_int_eq(otaup_session_input_msg(s, &p, now), 0);
        ck_assert_int_eq(otaup_session_poll(s, now), 0);
    }
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, first + 1, now), 0);
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, now);
        if (m == NULL) {
            now += 10;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
            continue;
        }
        ack(s, m, now);
    }
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    otaup_session_free(s);
}
END_TEST

/* A RESULT(0) that names no session (0: the field is free on the wire,
 * protocol.md §3) arriving while the stream is being sent. The shortcut
 * for "its journal says this session ended well" (a terminal that
 * committed while the server's row lagged) took it as this session's
 * commit: the backup deleted irreversibly and the terminal recorded
 * upgraded before a byte of the new image was acknowledged. Only a
 * RESULT naming this session is taken so; this one is ignored. */
START_TEST(test_result_without_session_in_transfer)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    otaup_reg_terminal t;
    otaup_sm r;
    uint64_t now = 1000;
    int n = 0;
    make_info("R16", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    memset(&r, 0, sizeof r);
    r.type = OTAUP_SM_RESULT;
    r.session_id = 0;
    ck_assert_int_eq(otaup_session_input_msg(s, &r, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    ck_assert_int_eq(otaup_registry_backup_list(reg, "R16", count_backups_cb, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "R16", &t), 0);
    ck_assert_str_ne(t.status, "upgraded");
    otaup_session_free(s);
}
END_TEST

/* INFO is checked before anything is stored (docs/server.md): user-data
 * regions that overlap each other (a restore of one would damage the
 * other, whose hash then never matches: restored twice, then the session
 * fails after the transfer) or the scratch area (erased and written by
 * the in-place steps: the user's data destroyed by the transfer itself)
 * are a terminal that lies about its flash, refused like a region over
 * the image slot. They were accepted. */
START_TEST(test_info_regions_overlap)
{
    otaup_session *s;
    make_info("R17", v1);
    info.regions[1].addr = info.regions[0].addr + 1024; /* 3000-byte regions: overlapping */
    s = new_session();
    ck_assert_int_eq(send_info(s, 1000), OTAUP_E_GEOMETRY);
    otaup_session_free(s);
    make_info("R17", v1);
    info.regions[0].addr = info.scratch_addr + 2048; /* across the scratch area's end */
    s = new_session();
    ck_assert_int_eq(send_info(s, 1000), OTAUP_E_GEOMETRY);
    otaup_session_free(s);
    /* as declared by make_info: accepted */
    make_info("R17", v1);
    s = new_session();
    ck_assert_int_eq(send_info(s, 1000), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_WAIT_REQUEST);
    otaup_session_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("srvrev_session");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_transient_nack_bounded_control);
    tcase_add_test(tc, test_transient_nack_bounded_stream);
    tcase_add_test(tc, test_transient_nack_then_progress);
    tcase_add_test(tc, test_backup_mismatch_after_stalls);
    tcase_add_test(tc, test_backup_stalls_with_progress);
    tcase_add_test(tc, test_duplicate_refusal_of_hash_only);
    tcase_add_test(tc, test_duplicate_refusal_of_sig_req);
    tcase_add_test(tc, test_refusal_of_reused_number_later);
    tcase_add_test(tc, test_no_abort_after_restore_began);
    tcase_add_test(tc, test_committed_after_server_gave_up);
    tcase_add_test(tc, test_failed_row_old_image_offered_again);
    tcase_add_test(tc, test_restore_chunk_below_write_size);
    tcase_add_test(tc, test_restore_chunks_aligned);
    tcase_add_test(tc, test_progress_without_ack_bounded);
    tcase_add_test(tc, test_progress_long_operation);
    tcase_add_test(tc, test_result_without_session_in_transfer);
    tcase_add_test(tc, test_info_regions_overlap);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
