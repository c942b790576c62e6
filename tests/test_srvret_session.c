/*
 * Session driver, retention and stalls: what the server keeps and how
 * long it waits, at the message level with a scripted terminal against a
 * real SQLite registry (the rig of test_session.c).
 *
 * - Retention of a failed session's backup (docs/server.md, "Retention
 *   of a failed session's backup"): a session the server gave up after
 *   its START went out keeps the user's backup for a restore. Once the
 *   terminal reports no session in its journal that restore never runs;
 *   the copy is deleted when it is provably no longer needed (nothing
 *   was written, an in-place terminal, every region reported with the
 *   backup's hash) and kept when the terminal's data may differ from it
 *   (an A/B terminal back on its old slot, its regions not reported or
 *   changed), or while its journal still holds the session.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/record.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "server/session_core.h"

#define SESSRIG_DIR "/tmp/otaup-srvret-XXXXXX"
#define SESSRIG_BACKUP_RIG
#include "util/sessrig.h"

static int count_backups_cb(const otaup_reg_backup *b, void *p)
{
    (void)b;
    (*(int *)p)++;
    return 0;
}

static int backups(const char *id)
{
    int n = 0;
    ck_assert_int_eq(otaup_registry_backup_list(reg, id, count_backups_cb, &n), 0);
    return n;
}

static char events[4000];
static int audit_cb(const otaup_reg_audit *a, void *p)
{
    (void)p;
    if (strlen(events) + strlen(a->event) + 2 < sizeof events) {
        strcat(events, a->event);
        strcat(events, " ");
    }
    return 0;
}

static const char *audit_of(const char *id)
{
    events[0] = '\0';
    ck_assert_int_ge(otaup_registry_audit_list(reg, id, 1000, audit_cb, NULL), 0);
    return events;
}

/* The INFO of an A/B terminal: slots of 10 sectors at 0 and 10, scratch at 20. */
static void make_info_ab(const char *id, const uint8_t *img)
{
    make_info(id, img);
    info.layout = 1;
    info.slot_size = 10 * 4096;
    info.target_addr = 0x08000000 + 10 * 4096;
    info.scratch_addr = 0x08000000 + 20 * 4096;
    info.caps = OTAUP_CAP_DEFLATE | OTAUP_CAP_BATCH | OTAUP_CAP_BACKUP | OTAUP_CAP_AB | OTAUP_CAP_RESUME;
}

/* Which INFO a test uses for its terminal (in place or A/B). */
static int use_ab;
static void term_info(const char *id, const uint8_t *img)
{
    if (use_ab) {
        make_info_ab(id, img);
    } else {
        make_info(id, img);
    }
}

/* A session backs both regions up, its START is taken, and the terminal
 * refuses the first BATCH (a code that ends it): the server gives the
 * session up after its START went out, the backup kept, the row failed. */
static void fail_after_start(const char *id, uint64_t *now)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    otaup_reg_session rs;
    term_info(id, v1);
    m = consented(s, *now);
    answer_backup_req(s, m, 0, userdata[0], *now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, *now), 1, userdata[1], *now);
    m = expect(s, OTAUP_SM_START, *now);
    ack(s, m, *now);
    m = expect(s, OTAUP_SM_BATCH, *now);
    ck_assert_int_eq(send_nack(s, m->seq, m->seq, OTAUP_E_WINDOW, *now), OTAUP_E_WINDOW);
    otaup_session_free(s);
    ck_assert_int_eq(backups(id), 2);
    ck_assert_int_eq(otaup_registry_session_get(reg, id, &rs), 0);
    ck_assert_str_eq(rs.state, "failed");
    ck_assert_uint_gt(rs.bytes_total, 0);
    *now += 60000;
}

/* The terminal reconnects with INFO as term_info() (and the caller's
 * changes) made it: the session goes to WAIT_REQUEST (an offer again). */
static void reconnect(void)
{
    otaup_session *s = new_session();
    ck_assert_int_eq(send_info(s, 100000000), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_WAIT_REQUEST);
    otaup_session_free(s);
}

/* In place, back on 1.0 with its journal closed (it took the ABORT
 * before touching its image): the backup is deleted at the connection,
 * also when the terminal reports no region hash. */
START_TEST(test_failed_inplace_backup_deleted)
{
    uint64_t now = 1000;
    use_ab = 0;
    fail_after_start("K1", &now);
    term_info("K1", v1);
    info.regions[0].hash_alg = info.regions[1].hash_alg = 0;
    reconnect();
    ck_assert_int_eq(backups("K1"), 0);
    ck_assert_ptr_nonnull(strstr(audit_of("K1"), "backup-deleted"));
}
END_TEST

/* A/B, back on its old slot, the regions not reported: the new software
 * may have changed its data after its VERIFY and nobody checked them;
 * the copy is kept. */
START_TEST(test_failed_ab_unreported_kept)
{
    uint64_t now = 1000;
    use_ab = 1;
    fail_after_start("K2", &now);
    term_info("K2", v1);
    info.regions[0].hash_alg = info.regions[1].hash_alg = 0;
    reconnect();
    ck_assert_int_eq(backups("K2"), 2);
    /* and with one region reported changed */
    term_info("K2", v1);
    info.regions[1].hash[0] ^= 1;
    reconnect();
    ck_assert_int_eq(backups("K2"), 2);
    ck_assert_ptr_null(strstr(audit_of("K2"), "backup-deleted"));
}
END_TEST

/* A/B, every region reported with its backup's hash: the terminal holds
 * what the copy holds; deleted. */
START_TEST(test_failed_ab_same_hashes_deleted)
{
    uint64_t now = 1000;
    use_ab = 1;
    fail_after_start("K3", &now);
    term_info("K3", v1);
    reconnect();
    ck_assert_int_eq(backups("K3"), 0);
    ck_assert_ptr_nonnull(strstr(audit_of("K3"), "backup-deleted"));
}
END_TEST

/* A/B, its START refused before it took it (a verifier's refusal):
 * nothing was written to the terminal, the row's bytes_total is 0; the
 * backup is deleted at the next connection whatever the regions say. */
START_TEST(test_failed_refused_start_backup_deleted)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000;
    use_ab = 1;
    term_info("K4", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_int_eq(send_nack(s, m->seq, m->seq, OTAUP_E_KEY, now), OTAUP_E_KEY);
    otaup_session_free(s);
    ck_assert_int_eq(backups("K4"), 2);
    term_info("K4", v1);
    info.regions[0].hash_alg = info.regions[1].hash_alg = 0;
    reconnect();
    ck_assert_int_eq(backups("K4"), 0);
}
END_TEST

/* Its journal still holds the failed session (A/B, active): the session
 * is resumed and the backup stays for its restore. */
START_TEST(test_failed_still_active_kept)
{
    otaup_session *s;
    otaup_reg_session rs;
    uint64_t now = 1000;
    use_ab = 1;
    fail_after_start("K5", &now);
    ck_assert_int_eq(otaup_registry_session_get(reg, "K5", &rs), 0);
    s = new_session();
    term_info("K5", v1);
    info.regions[0].hash_alg = info.regions[1].hash_alg = 0;
    info.active = 1;
    info.session_id = rs.session_id;
    info.next_step = 0;
    ck_assert_int_eq(send_info(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_START); /* resumed */
    otaup_session_free(s);
    ck_assert_int_eq(backups("K5"), 2);
}
END_TEST

/* A terminal whose image is unknown (no hash, a version the registry does
 * not hold) is asked its block signature. It sends one chunk and falls
 * silent (its frames lost, acknowledging what the server sends): the
 * server asks again from the byte it has, a bounded number of times in a
 * row, and then gives up (OTAUP_E_RETRIES), as for a stalled backup,
 * instead of waiting out the idle timeout with nothing asked. A chunk
 * that comes ends the row of stalls. */
static const otaup_sm *sig_req_within(otaup_session *s, uint64_t *now, uint64_t limit)
{
    uint64_t end = *now + limit;
    while (*now < end && !otaup_session_finished(s)) {
        const otaup_sm *m = otaup_session_next_msg(s, *now);
        if (m != NULL) {
            if (m->type == OTAUP_SM_SIG_REQ) {
                return m;
            }
            if (m->type != OTAUP_SM_ABORT_OUT) {
                ack(s, m, *now);
            }
            continue;
        }
        *now += 100;
        otaup_session_poll(s, *now);
    }
    return NULL;
}

static void send_sig_chunk(otaup_session *s, uint32_t off, uint32_t n, uint32_t total, uint64_t now)
{
    static uint8_t junk[256];
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_SIG_DATA;
    m.offset = off;
    m.total = total;
    m.data = junk;
    m.len = n;
    ck_assert_int_eq(otaup_session_input_msg(s, &m, now), 0);
}

START_TEST(test_sig_stall_asked_again_bounded)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t now = 1000, t0;
    uint32_t total, asks = 0;
    use_ab = 0;
    make_info("K6", v1);
    info.have_image_hash = 0;
    snprintf(info.version, sizeof info.version, "0.9");
    total = (uint32_t)OTAUP_SIG_SIZE((uint64_t)info.image_size, 1024u);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_SIG_REQ, now);
    ck_assert_uint_eq(m->offset, 0);
    ack(s, m, now);
    send_sig_chunk(s, 0, 64, total, now);
    t0 = now;
    /* silent: asked again from byte 64, well before the idle timeout */
    m = sig_req_within(s, &now, 30000);
    ck_assert_msg(m != NULL, "no SIG_REQ again within 30 s of the stall (state %s)",
                  otaup_session_state_name(otaup_session_get_state(s)));
    ck_assert_uint_eq(m->offset, 64);
    ack(s, m, now);
    /* a chunk comes: the row of stalls ends; then silence for good */
    send_sig_chunk(s, 64, 64, total, now);
    for (;;) {
        m = sig_req_within(s, &now, 30000);
        if (m == NULL) {
            break;
        }
        ck_assert_uint_eq(m->offset, 128);
        asks++;
        ack(s, m, now);
    }
    ck_assert(otaup_session_finished(s));
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_RETRIES);
    ck_assert_uint_ge(asks, 2);
    /* bounded by the re-asks, not by the idle timeout */
    ck_assert_uint_lt(now - t0, 120000);
    otaup_session_free(s);
}
END_TEST

/* A refused ABORT: an in-place terminal past its point of no return
 * reports a flash write that failed (NACK of a BATCH with
 * OTAUP_E_FLASH_PROG); the server gives the session up and sends its ABORT,
 * which the terminal refuses (its half-written image must be finished).
 * The server's session is over in RAM and its row says failed, while
 * the terminal's journal holds the session: the two are reconciled at
 * the terminal's next connection, which reports that session active and
 * resumes it (START with RESUME), the backup kept for its restore. */
START_TEST(test_refused_abort_resumed)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    otaup_reg_session rs;
    uint64_t now = 1000;
    uint32_t session;
    use_ab = 0;
    term_info("K7", v1);
    m = consented(s, now);
    answer_backup_req(s, m, 0, userdata[0], now);
    answer_backup_req(s, expect(s, OTAUP_SM_BACKUP_REQ, now), 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    session = m->session_id;
    ack(s, m, now);
    m = expect(s, OTAUP_SM_BATCH, now);
    ck_assert_int_eq(send_nack(s, m->seq, m->seq, OTAUP_E_FLASH_PROG, now), OTAUP_E_FLASH_PROG);
    m = expect(s, OTAUP_SM_ABORT_OUT, now);
    ck_assert_uint_eq(m->session_id, session);
    /* refused: the session stays open on the terminal */
    ck_assert_int_eq(send_nack(s, m->seq, m->seq, OTAUP_E_STATE, now), OTAUP_E_FLASH_PROG);
    ck_assert(otaup_session_finished(s));
    otaup_session_free(s);
    ck_assert_int_eq(otaup_registry_session_get(reg, "K7", &rs), 0);
    ck_assert_str_eq(rs.state, "failed");
    ck_assert_int_eq(backups("K7"), 2);
    /* the next connection: its journal holds the session at step 4 */
    s = new_session();
    term_info("K7", v1);
    info.active = 1;
    info.session_id = session;
    info.next_step = 4;
    now += 5000;
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTE, now), now);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_uint_eq(m->session_id, session);
    ck_assert_uint_eq(m->flags & OTAUP_START_RESUME, OTAUP_START_RESUME);
    ck_assert_int_eq(otaup_registry_session_get(reg, "K7", &rs), 0);
    ck_assert_str_ne(rs.state, "failed");
    ck_assert_int_eq(backups("K7"), 2);
    otaup_session_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("srvret_session");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_failed_inplace_backup_deleted);
    tcase_add_test(tc, test_failed_ab_unreported_kept);
    tcase_add_test(tc, test_failed_ab_same_hashes_deleted);
    tcase_add_test(tc, test_failed_refused_start_backup_deleted);
    tcase_add_test(tc, test_failed_still_active_kept);
    tcase_add_test(tc, test_sig_stall_asked_again_bounded);
    tcase_add_test(tc, test_refused_abort_resumed);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
