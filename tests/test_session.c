/*
 * Session driver at the message level: a scripted terminal goes through
 * the whole flow against a real SQLite registry — info, policy,
 * notification, request, backup, transfer, verify, restore of damaged
 * user data, commit, irreversible deletion — and through a disconnect
 * with resume, lying INFOs, refusals and the terminal's consent.
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

#define SESSRIG_DIR "/tmp/otaup-sess-XXXXXX"
#include "util/sessrig.h"

/* a NOTIFY's text for the user is exactly `want` */
static int note_is(const otaup_sm *m, const char *want)
{
    return m->text != NULL && strcmp(m->text, want) == 0;
}

/* INFO (of make_info), the NOTIFY acknowledged, CONSENT, all at 0: the
 * first BACKUP_REQ the session then sends. */
static const otaup_sm *consented(otaup_session *s)
{
    ck_assert_int_eq(send_info(s, 0), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, 0), 0);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, 0), 0);
    return expect(s, OTAUP_SM_BACKUP_REQ, 0);
}

/* the terminal sends region `r` (id r+1) in chunks of 1000 bytes */
static void answer_backup(otaup_session *s, uint32_t r, const uint8_t *data, uint64_t now)
{
    const otaup_sm *q = expect(s, OTAUP_SM_BACKUP_REQ, now);
    uint32_t off, first = q->offset;
    ck_assert_uint_eq(q->region, r + 1);
    ck_assert_uint_eq(q->flags, 0);
    ack(s, q, now);
    for (off = first; off < sizeof userdata[0]; off += 1000) {
        size_t n = sizeof userdata[0] - off < 1000 ? sizeof userdata[0] - off : 1000;
        send_region_data(s, r + 1, off, data + off, n, data, sizeof userdata[0], now, 0);
    }
}

/* the terminal answers the hash requests with the hashes of r0, r1 */
static void answer_hashes(otaup_session *s, const uint8_t *r0, const uint8_t *r1, uint64_t now)
{
    int i;
    for (i = 0; i < 2; i++) {
        const otaup_sm *q = expect(s, OTAUP_SM_BACKUP_REQ, now);
        uint32_t id = q->region;
        ck_assert_uint_eq(q->flags, OTAUP_BACKUP_HASH_ONLY);
        ck_assert_uint_eq(q->offset, sizeof userdata[0]);
        ck_assert(id == 1 || id == 2);
        ack(s, q, now);
        send_region_data(s, id, (uint32_t)sizeof userdata[0], NULL, 0, id == 1 ? r0 : r1, sizeof userdata[0],
                         now, 0);
    }
}

static uint8_t received[200000];
static size_t received_len;

/* the terminal accepts BATCH frames in order and acknowledges each */
static void run_transfer(otaup_session *s, uint64_t *now, int stop_after)
{
    const otaup_sm *m;
    int got = 0;
    while (otaup_session_get_state(s) == OTAUP_SS_TRANSFER) {
        m = otaup_session_next_msg(s, *now);
        if (m == NULL) {
            *now += 10;
            ck_assert_int_eq(otaup_session_poll(s, *now), 0);
            continue;
        }
        ck_assert_int_eq(m->type, OTAUP_SM_BATCH);
        ck_assert_uint_le(m->len + 16, info.max_frame);
        memcpy(received + received_len, m->data, m->len);
        received_len += m->len;
        ack(s, m, *now);
        if (++got == stop_after) {
            return;
        }
    }
}

static void send_result(otaup_session *s, uint32_t session, uint64_t now)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_RESULT;
    m.session_id = session;
    ck_assert_int_eq(otaup_session_input_msg(s, &m, now), 0);
}

static int count_backups_cb(const otaup_reg_backup *b, void *p)
{
    (void)b;
    (*(int *)p)++;
    return 0;
}

static int count_backups(const char *id)
{
    int n = 0;
    ck_assert_int_eq(otaup_registry_backup_list(reg, id, count_backups_cb, &n), 0);
    return n;
}

static char events[4000];
static int audit_cb(const otaup_reg_audit *a, void *p)
{
    (void)p;
    strcat(events, a->event);
    strcat(events, " ");
    return 0;
}

/* region hashes, restore, commit, result, done — with region 2 damaged by the upgrade */
static void finish_with_restore(otaup_session *s, uint64_t now)
{
    uint8_t damaged[sizeof userdata[1]], restored[sizeof userdata[1]];
    const otaup_sm *m;
    uint32_t session;
    memcpy(damaged, userdata[1], sizeof damaged);
    memset(damaged + 100, 0xFF, 500);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    answer_hashes(s, userdata[0], damaged, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_RESTORE);
    memset(restored, 0, sizeof restored);
    while (otaup_session_get_state(s) == OTAUP_SS_RESTORE) {
        m = expect(s, OTAUP_SM_RESTORE, now);
        ck_assert_uint_eq(m->region, 2); /* region 1 is intact: not restored */
        ck_assert_uint_le(m->offset + m->len, sizeof restored);
        memcpy(restored + m->offset, m->data, m->len);
        if (m->offset + m->len == sizeof restored) {
            uint8_t h[8];
            hash64(userdata[1], sizeof userdata[1], h);
            ck_assert_uint_eq(m->flags, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH);
            ck_assert_int_eq(memcmp(m->hash, h, 8), 0);
        }
        ack(s, m, now);
    }
    ck_assert_int_eq(memcmp(restored, userdata[1], sizeof restored), 0);
    /* checked again after the restore */
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    answer_hashes(s, userdata[0], restored, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_COMMIT);
    m = expect(s, OTAUP_SM_COMMIT, now);
    ck_assert_int_eq(m->code, OTAUP_COMMIT_DONE);
    session = m->session_id;
    ack(s, m, now);
    ck_assert_int_eq(count_backups(info.id), 2); /* kept until the terminal confirms */
    send_result(s, session, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_DONE);
    expect(s, OTAUP_SM_DONE, now);
    ck_assert_int_eq(count_backups(info.id), 0);
}

/* A/B: the planning options the session keeps for a terminal take its
 * other slot's address as given, also when that slot starts at address 0
 * (a terminal running slot 1 of a flash mapped from 0). */
START_TEST(test_ab_target_slot_at_zero)
{
    otaup_sm_info in;
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_delta_header h;
    uint8_t blob[256], *oldi = malloc(20000), *newi = malloc(20000);
    const uint8_t *bytes;
    size_t n, i;
    memset(&in, 0, sizeof in);
    otaup_geometry_uniform(&in.geo, 0, 4096, 16, 8);
    in.layout = OTAUP_LAYOUT_AB;
    in.slot_addr = 8 * 4096; /* running: slot 1 */
    in.slot_size = 8 * 4096;
    in.target_addr = 0;      /* the other slot: at 0 */
    in.ram = 65536;
    n = otaup_session_layout_encode(&in, blob, sizeof blob);
    ck_assert_uint_gt(n, 0);
    ck_assert_int_eq(otaup_session_layout_decode(blob, n, &o, NULL), 0);
    ck_assert_uint_eq(o.source_addr, 8 * 4096);
    ck_assert_uint_eq(o.target_addr, 0);
    for (i = 0; i < 20000; i++) {
        oldi[i] = (uint8_t)(i * 7u + (i >> 9));
        newi[i] = (uint8_t)(i % 5000 == 17 ? 0x55 : oldi[i]);
    }
    ck_assert_int_eq(otaup_delta_create(oldi, 20000, NULL, newi, 20000, &o, &d), 0);
    bytes = otaup_delta_bytes(d, &n);
    ck_assert_int_gt(otaup_delta_header_decode(bytes, n, &h), 0);
    ck_assert_uint_eq(h.source_addr, 8 * 4096);
    ck_assert_uint_eq(h.target_addr, 0);
    otaup_delta_free(d);
    free(oldi);
    free(newi);
}
END_TEST

START_TEST(test_whole_flow)
{
    otaup_session *s = new_session();
    otaup_reg_terminal t;
    otaup_reg_request q;
    const otaup_sm *m;
    uint64_t now = 1000;
    make_info("T1", v1);
    ck_assert_int_eq(send_info(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_WAIT_REQUEST);
    m = expect(s, OTAUP_SM_NOTIFY, now);
    ck_assert_ptr_nonnull(strstr(m->text, "2.0"));
    ck_assert_str_eq(m->version, "2.0");
    ack(s, m, now);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    ck_assert_str_eq(t.status, "notified");
    /* nothing until the user asks (customer centre) */
    now += 1500;
    ck_assert_int_eq(otaup_session_poll(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_WAIT_REQUEST);
    ck_assert_ptr_null(otaup_session_next_msg(s, now));
    memset(&q, 0, sizeof q);
    snprintf(q.terminal, sizeof q.terminal, "T1");
    snprintf(q.source, sizeof q.source, "ctl");
    ck_assert_int_eq(otaup_registry_request_put(reg, &q), 0);
    now += 1000;
    ck_assert_int_eq(otaup_session_poll(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_BACKUP);
    answer_backup(s, 0, userdata[0], now);
    answer_backup(s, 1, userdata[1], now);
    ck_assert_int_eq(count_backups("T1"), 2);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_START);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_uint_eq(m->len, 8); /* header + sections */
    ck_assert_uint_eq(m->step, 0);
    ck_assert_uint_eq(m->flags, 0);
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
    received_len = 0;
    run_transfer(s, &now, -1);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    /* the frames carried the whole stream (DATA may be cut differently) */
    ck_assert_uint_ge(received_len, body_len);
    finish_with_restore(s, now);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T1", &t), 0);
    ck_assert_str_eq(t.version, "2.0");
    ck_assert_str_eq(t.status, "upgraded");
    events[0] = '\0';
    ck_assert_int_eq(otaup_registry_audit_list(reg, "T1", 0, audit_cb, NULL), 0);
    ck_assert_ptr_nonnull(strstr(events, "info policy notified request-accepted session backup backup "
                                         "start verified restore backup-deleted upgraded"));
    ck_assert(otaup_session_finished(s));
    ck_assert_int_eq(otaup_session_result(s), 0);
    otaup_session_free(s);

    /* the next connection finds it up to date */
    s = new_session();
    make_info("T1", v2);
    snprintf(info.version, sizeof info.version, "2.0");
    ck_assert_int_eq(send_info(s, now), 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_IDLE);
    expect(s, OTAUP_SM_DONE, now);
    otaup_session_free(s);
}
END_TEST

START_TEST(test_disconnect_and_resume)
{
    otaup_session *s = new_session();
    otaup_reg_session rs;
    const otaup_sm *m;
    uint64_t now = 1000;
    size_t first_part;
    make_info("T2", v1);
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, now), now);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, now), 0); /* accepted on the phone */
    answer_backup(s, 0, userdata[0], now);
    answer_backup(s, 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    received_len = 0;
    run_transfer(s, &now, 12);
    first_part = received_len;
    {
        otaup_sm p;
        memset(&p, 0, sizeof p);
        p.type = OTAUP_SM_PROGRESS;
        p.step = 9;
        ck_assert_int_eq(otaup_session_input_msg(s, &p, now + 5000), 0);
    }
    otaup_session_closed(s, now + 5000);
    ck_assert(otaup_session_finished(s));
    otaup_session_free(s);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T2", &rs), 0);
    ck_assert_str_eq(rs.state, "transfer");
    ck_assert_uint_eq(rs.next_step, 9);

    /* reconnect: the terminal's journal says step 9 is next */
    s = new_session();
    make_info("T2", v1);
    info.active = 1;
    info.session_id = rs.session_id;
    info.next_step = 9;
    now += 10000;
    ck_assert_int_eq(send_info(s, now), 0);
    /* no new offer, no second backup: the terminal is told which version
     * it installs (an information NOTIFY: its offer may be gone with its
     * last connection), then START at SYNC 8 */
    m = expect(s, OTAUP_SM_NOTE, now);
    ck_assert_str_eq(m->version, "2.0");
    ck_assert_int_eq(m->build_time, 200);
    ck_assert(note_is(m, "Resuming the upgrade to 2.0."));
    ack(s, m, now);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_uint_eq(m->step, 8);
    ck_assert_uint_eq(m->flags, OTAUP_START_RESUME);
    ck_assert_uint_eq(m->session_id, rs.session_id);
    ack(s, m, now);
    received_len = 0;
    run_transfer(s, &now, -1);
    ck_assert_uint_lt(received_len, body_len / 2 + 200); /* only the rest was sent */
    ck_assert_uint_gt(first_part, 0);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    finish_with_restore(s, now);
    otaup_session_free(s);
}
END_TEST

START_TEST(test_lying_terminal)
{
    otaup_session *s;
    const otaup_sm *m;
    otaup_reg_terminal t;
    /* a user-data region beyond the end of its flash */
    s = new_session();
    make_info("T3", v1);
    info.regions[1].addr = 0x08000000 + 31 * 4096;
    info.regions[1].len = 8192;
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_GEOMETRY);
    m = expect(s, OTAUP_SM_ABORT_OUT, 0);
    ck_assert_int_eq(m->code, OTAUP_E_GEOMETRY);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T3", &t), OTAUP_E_NOT_FOUND);
    otaup_session_free(s);
    /* an image larger than its slot */
    s = new_session();
    make_info("T3", v1);
    info.image_size = info.slot_size + 1;
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_GEOMETRY);
    otaup_session_free(s);
    /* an invalid sector map */
    s = new_session();
    make_info("T3", v1);
    info.geo.write_size = 3;
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_GEOMETRY);
    otaup_session_free(s);
    /* a frame size outside the protocol's range */
    s = new_session();
    make_info("T3", v1);
    info.max_frame = 10;
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_PEER);
    otaup_session_free(s);
    /* anything but INFO first */
    s = new_session();
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, 5, 0), OTAUP_E_PEER);
    otaup_session_free(s);
    /* a known id with another model */
    s = new_session();
    make_info("T4", v1);
    ck_assert_int_eq(send_info(s, 0), 0);
    otaup_session_free(s);
    s = new_session();
    make_info("T4", v1);
    snprintf(info.model, sizeof info.model, "M9");
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_MODEL);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T4", &t), 0);
    ck_assert_str_eq(t.model, "M1"); /* the registry lost nothing */
    otaup_session_free(s);
}
END_TEST

START_TEST(test_bad_backup_and_peer_errors)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint8_t wrong[sizeof userdata[0]];
    int i;
    make_info("T5", v1);
    ck_assert_int_eq(send_info(s, 0), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, 0), 0);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, 0), 0);
    memcpy(wrong, userdata[0], sizeof wrong);
    wrong[7] ^= 1;
    /* data that does not match the reported hash: asked again, then refused */
    for (i = 0; i < 2; i++) {
        answer_backup(s, 0, wrong, 0);
    }
    ack(s, expect(s, OTAUP_SM_BACKUP_REQ, 0), 0);
    send_region_data(s, 1, 0, wrong, sizeof wrong, wrong, sizeof wrong, 0, OTAUP_E_BACKUP);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_FAILED);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_BACKUP);
    m = expect(s, OTAUP_SM_ABORT_OUT, 0);
    ck_assert_int_eq(m->code, OTAUP_E_BACKUP);
    ck_assert_int_eq(count_backups("T5"), 0);
    {
        /* a failure that speaks against the upgrade drops the request */
        otaup_reg_request q;
        otaup_reg_terminal t;
        ck_assert_int_eq(otaup_registry_request_get(reg, "T5", &q), OTAUP_E_NOT_FOUND);
        ck_assert_int_eq(otaup_registry_terminal_get(reg, "T5", &t), 0);
        ck_assert_str_eq(t.status, "failed");
    }
    otaup_session_free(s);
}
END_TEST

START_TEST(test_no_backup_capability)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    otaup_reg_terminal t;
    make_info("T7", v1);
    info.caps &= ~OTAUP_CAP_BACKUP;
    ck_assert_int_eq(send_info(s, 0), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, 0), 0);
    /* user data it cannot back up: refused before anything is sent */
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, 0), OTAUP_E_UNSUPPORTED);
    m = expect(s, OTAUP_SM_ABORT_OUT, 0);
    ck_assert_int_eq(m->code, OTAUP_E_UNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(m->text, "back"));
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_UNSUPPORTED);
    ck_assert_int_eq(count_backups("T7"), 0);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T7", &t), 0);
    ck_assert_str_eq(t.version, "1.0");
    ck_assert_str_eq(t.status, "failed");
    otaup_session_free(s);
    /* without user-data regions there is nothing to back up: it goes on */
    s = new_session();
    make_info("T8", v1);
    info.caps &= ~OTAUP_CAP_BACKUP;
    info.nregions = 0;
    ck_assert_int_eq(send_info(s, 0), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, 0), 0);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, 0), 0);
    expect(s, OTAUP_SM_START, 0);
    otaup_session_free(s);
}
END_TEST

START_TEST(test_silent_terminal_times_out)
{
    otaup_session *s = new_session();
    uint64_t d;
    make_info("T6", v1);
    consented(s);
    /* asked again on each timeout, then given up */
    d = otaup_session_deadline(s);
    ck_assert(d > 0 && d < 10000);
    ck_assert_int_eq(otaup_session_poll(s, d), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, d);
    ck_assert_int_eq(otaup_session_poll(s, 200000), OTAUP_E_TIMEOUT);
    ck_assert(otaup_session_finished(s));
    otaup_session_free(s);
    /* its silence counts as a disconnection: the next connection resumes
     * the backup without asking the user again */
    s = new_session();
    ck_assert_int_eq(send_info(s, 300000), 0);
    ack(s, expect(s, OTAUP_SM_NOTE, 300000), 300000);
    expect(s, OTAUP_SM_BACKUP_REQ, 300000);
    otaup_session_free(s);
}
END_TEST

/* The control queue's retransmission timeout doubles at each timeout and
 * comes back to its value without backoff once an ACK arrives: on a lossy
 * link every later loss would otherwise stall for up to 30 s (and the
 * backup's stall check, 4 timeouts plus 4 s, for two minutes). */
START_TEST(test_backoff_ends_on_ack)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t d0, d1, d2, t;
    uint32_t seq;
    make_info("T9", v1);
    m = consented(s);
    seq = m->seq;
    d0 = otaup_session_deadline(s);
    ck_assert_int_eq(otaup_session_poll(s, d0), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, d0);
    d1 = otaup_session_deadline(s);
    ck_assert_int_eq(otaup_session_poll(s, d1), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, d1);
    d2 = otaup_session_deadline(s);
    ck_assert_uint_eq(d1 - d0, 2 * d0); /* backed off: 1 s, 2 s, 4 s */
    ck_assert_uint_eq(d2 - d1, 4 * d0);
    /* the terminal acknowledges the request: the backoff ends, and the
     * backup's stall check waits 4 timeouts of 1 s plus 4 s, not of 4 s */
    t = d1 + 10;
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, seq + 1, t), 0);
    ck_assert_uint_le(otaup_session_deadline(s), 4 * d0 + 4000u + t);
    otaup_session_free(s);
}
END_TEST

/* Gaps between the retransmissions of an unanswered BACKUP_REQ, from the
 * first deadline on: gaps[k] is the (k+1)-th timeout's wait. */
static void backup_req_gaps(otaup_session *s, uint64_t *gaps, int n)
{
    uint64_t prev = 0, d;
    int k;
    consented(s);
    for (k = 0; k < n; k++) {
        d = otaup_session_deadline(s);
        gaps[k] = d - prev;
        prev = d;
        ck_assert_int_eq(otaup_session_poll(s, d), 0);
        expect(s, OTAUP_SM_BACKUP_REQ, d);
    }
}

/* A round-trip sample comes from the message an ACK names, not from an
 * older one the same ACK acknowledges as well (its own ACK was lost):
 * HELLO handed out at 0, NOTIFY at 550, one ACK of both at 650. The
 * round trip is 100 ms, so the next message's timeout is its base
 * (SRTT 100 + 4 x RTTVAR 50 = 300 ms); a sample of 650 ms from the
 * HELLO made it 2.1 s. */
START_TEST(test_rtt_sample_from_named_message)
{
    otaup_session_options o;
    otaup_session *s = NULL;
    const otaup_sm *m;
    otaup_session_options_init(&o);
    o.reg = reg;
    o.delta = test_delta;
    ck_assert_int_eq(otaup_session_new(&o, &s), 0);
    make_info("T30", v1);
    ck_assert_int_eq(send_info(s, 0), 0);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, 0, 0), 0); /* nothing acknowledged; a window of 8 */
    m = otaup_session_next_msg(s, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->type, OTAUP_SM_HELLO);
    m = otaup_session_next_msg(s, 550);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->type, OTAUP_SM_NOTIFY);
    ack(s, m, 650);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, 650), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, 650);
    ck_assert_uint_eq(otaup_session_deadline(s) - 650, 300);
    otaup_session_free(s);
}
END_TEST

/* rto_max_ms is the ceiling of the doubling, for the control queue and
 * for the record stream's window, and 8 times the timeout's base (at
 * least 2 s) while the terminal was heard within the last rto_max_ms;
 * options of version 3 (no such field) keep the 30 s ceiling. */
START_TEST(test_backoff_ceiling)
{
    otaup_session_options o;
    otaup_session *s = NULL;
    uint64_t gaps[8], now = 0, d, prev;
    const otaup_sm *m;
    int k, got, c;
    otaup_session_options_init(&o);
    ck_assert_uint_eq(o.version, 4);
    o.reg = reg;
    o.delta = test_delta;
    o.window_frames = 8;
    o.rto_max_ms = 3000;
    ck_assert_int_eq(otaup_session_new(&o, &s), 0);
    make_info("T10", v1);
    backup_req_gaps(s, gaps, 5);
    ck_assert_uint_eq(gaps[0], 1000);
    ck_assert_uint_eq(gaps[1], 2000);
    ck_assert_uint_eq(gaps[2], 3000);
    ck_assert_uint_eq(gaps[3], 3000);
    ck_assert_uint_eq(gaps[4], 3000);
    otaup_session_free(s);

    /* version 3: rto_max_ms is not read (here: garbage that would cap at
     * 1 s), the ceiling is 30 s; while the terminal was heard within the
     * last 30 s (its CONSENT at 0), 8 times the base: the timeouts at 1,
     * 3, 7, 15 and 23 s set 2 4 8 8 8; the one at 31 s, the terminal
     * silent for 30 s, doubles again: 16, then 30 */
    o.version = 3;
    o.rto_max_ms = 1;
    ck_assert_int_eq(otaup_session_new(&o, &s), 0);
    make_info("T11", v1);
    backup_req_gaps(s, gaps, 8);
    for (k = 0; k < 4; k++) {
        ck_assert_uint_eq(gaps[k], 1000u << k);
    }
    ck_assert_uint_eq(gaps[4], 8000);
    ck_assert_uint_eq(gaps[5], 8000);
    ck_assert_uint_eq(gaps[6], 16000);
    ck_assert_uint_eq(gaps[7], 30000);
    otaup_session_free(s);

    /* the record stream: BATCH frames never acknowledged, with a ceiling
     * of 2.5 s, then with the default (30 s; 8 s while the terminal was
     * heard within 30 s: its ACK of START at 0) */
    for (c = 0; c < 2; c++) {
        static const uint32_t want[2][7] = { { 1000, 2000, 2500, 2500, 2500, 2500, 2500 },
                                             { 1000, 2000, 4000, 8000, 8000, 8000, 16000 } };
        o.version = OTAUP_SESSION_OPTIONS_VERSION;
        o.rto_max_ms = c == 0 ? 2500 : 0;
        ck_assert_int_eq(otaup_session_new(&o, &s), 0);
        make_info(c == 0 ? "T12" : "T14", v1);
        now = 0;
        ck_assert_int_eq(send_info(s, now), 0);
        ack(s, expect(s, OTAUP_SM_NOTIFY, now), now);
        ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, now), 0);
        answer_backup(s, 0, userdata[0], now);
        answer_backup(s, 1, userdata[1], now);
        m = expect(s, OTAUP_SM_START, now);
        ack(s, m, now);
        ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_TRANSFER);
        prev = now;
        for (k = 0; k < 7; k++) {
            got = 0;
            while ((m = otaup_session_next_msg(s, now)) != NULL) {
                ck_assert_int_eq(m->type, OTAUP_SM_BATCH);
                got++;
            }
            ck_assert_int_gt(got, 0);
            d = otaup_session_deadline(s);
            ck_assert_uint_eq(d - prev, want[c][k]);
            prev = now = d;
            ck_assert_int_eq(otaup_session_poll(s, now), 0);
        }
        otaup_session_free(s);
    }
}
END_TEST

/* The backup's stall check (four timeouts plus 4 s without data) counts
 * from the BACKUP_REQ's acknowledgement: a request whose ACK came late,
 * after retransmissions, must not be asked again at once (the terminal
 * would then upload the region a second time after the first). */
START_TEST(test_backup_stall_from_ack)
{
    otaup_session *s = new_session();
    const otaup_sm *m;
    uint64_t d;
    uint32_t seq;
    make_info("T13", v1);
    m = consented(s);
    seq = m->seq;
    d = otaup_session_deadline(s); /* 1 s */
    ck_assert_int_eq(otaup_session_poll(s, d), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, d);
    d = otaup_session_deadline(s); /* 3 s */
    ck_assert_int_eq(otaup_session_poll(s, d), 0);
    expect(s, OTAUP_SM_BACKUP_REQ, d);
    /* acknowledged at 7.5 s; the terminal's data is on its way */
    ck_assert_int_eq(send_simple(s, OTAUP_SM_ACK, seq + 1, 7500), 0);
    ck_assert_uint_ge(otaup_session_deadline(s), 7500u + 4 * 1000u + 4000u);
    ck_assert_int_eq(otaup_session_poll(s, 8100), 0);
    ck_assert_ptr_null(otaup_session_next_msg(s, 8100));
    /* and it does ask again when the data does not come */
    d = otaup_session_deadline(s);
    ck_assert_int_eq(otaup_session_poll(s, d), 0);
    m = expect(s, OTAUP_SM_BACKUP_REQ, d);
    ck_assert_uint_eq(m->offset, 0);
    otaup_session_free(s);
}
END_TEST

/* A registry whose terminal_put fails as SQLite does on a full disk: the
 * session fails with OTAUP_E_DB, the log carries the backend's own words
 * (what an operator must fix), and the ABORT to the terminal does not. */
static int full_terminal_put(void *ctx, const otaup_reg_terminal *t)
{
    (void)ctx;
    (void)t;
    return OTAUP_E_DB;
}

static const char *full_errmsg(void *ctx)
{
    (void)ctx;
    return "terminal_put: database or disk is full (13)";
}

static char logged[2000];

static void log_cb(int level, const char *terminal, const char *event, const char *msg, void *payload)
{
    (void)payload;
    if (level == OTAUP_LOG_ERROR) {
        size_t n = strlen(logged);
        snprintf(logged + n, sizeof logged - n, "%s %s %s\n", terminal ? terminal : "-", event, msg);
    }
}

/* `reg`'s backend behind another handle (same master key), with the ops
 * the caller changed: a registry that fails where a test wants it to. */
static otaup_registry *faulty_registry(int (*terminal_put)(void *, const otaup_reg_terminal *),
                                       int (*backup_put)(void *, const otaup_reg_backup *, const uint8_t *, size_t),
                                       int (*backup_delete)(void *, const char *), const char *(*errmsg)(void *))
{
    static otaup_registry_ops ops; /* the handle keeps a pointer to it: one at a time */
    void *ctx = NULL;
    otaup_registry_options ro;
    otaup_registry *r = NULL;
    uint8_t key[32];
    ops = *otaup_registry_backend(reg, &ctx);
    ops.close = NULL; /* the real backend stays with `reg` */
    if (terminal_put != NULL) {
        ops.terminal_put = terminal_put;
    }
    if (backup_put != NULL) {
        ops.backup_put = backup_put;
    }
    if (backup_delete != NULL) {
        ops.backup_delete = backup_delete;
    }
    if (errmsg != NULL) {
        ops.errmsg = errmsg;
    }
    memset(key, 0x5C, sizeof key);
    otaup_registry_options_init(&ro);
    ro.master_key = key;
    ck_assert_int_eq(otaup_registry_new(&ops, ctx, &ro, &r), 0);
    return r;
}

/* A session on registry `r`, logging to `log` (may be NULL). */
static otaup_session *session_on(otaup_registry *r, otaup_session_log_cb log)
{
    otaup_session_options o;
    otaup_session *s = NULL;
    otaup_session_options_init(&o);
    o.reg = r;
    o.delta = test_delta;
    o.log = log;
    ck_assert_int_eq(otaup_session_new(&o, &s), 0);
    return s;
}

START_TEST(test_registry_error_logged)
{
    otaup_registry *full = faulty_registry(full_terminal_put, NULL, NULL, full_errmsg);
    otaup_session *s = session_on(full, log_cb);
    const otaup_sm *m;
    logged[0] = '\0';
    make_info("T7", v1);
    ck_assert_int_eq(send_info(s, 0), OTAUP_E_DB);
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_DB);
    ck_assert_msg(strstr(logged, "T7 failed registry: recording the terminal") != NULL, "log: %s", logged);
    ck_assert_msg(strstr(logged, "database or disk is full") != NULL, "log: %s", logged);
    m = expect(s, OTAUP_SM_ABORT_OUT, 0);
    ck_assert_int_eq(m->code, OTAUP_E_DB);
    ck_assert_ptr_nonnull(m->text);
    ck_assert_msg(strstr(m->text, "disk") == NULL, "ABORT text: %s", m->text);
    otaup_session_free(s);
    otaup_registry_free(full);
}
END_TEST

/* The registry fails while a connection closes (another process holds
 * its write lock past busy_timeout_ms, as when otaupd is stopped beside a
 * sqlite3 shell left in a transaction): the session says in the log that
 * its progress was not saved, and why, instead of "resumable" as if it
 * had been; it does not try the audit line too (each failed write waits
 * busy_timeout_ms in the daemon's one loop). The terminal's journal has
 * the progress: the next connection resumes at its step. */
static const otaup_registry_ops *real_ops;
static int writes_fail, audits_tried;

static int flaky_session_put(void *ctx, const otaup_reg_session *rs)
{
    return writes_fail ? OTAUP_E_DB : real_ops->session_put(ctx, rs);
}

static int flaky_audit_add(void *ctx, const otaup_reg_audit *a)
{
    if (writes_fail) {
        audits_tried++;
        return OTAUP_E_DB;
    }
    return real_ops->audit_add(ctx, a);
}

static const char *locked_errmsg(void *ctx)
{
    return writes_fail ? "session_put: database is locked (5)" : real_ops->errmsg(ctx);
}

static char logged_all[4000];

static void log_all_cb(int level, const char *terminal, const char *event, const char *msg, void *payload)
{
    size_t n = strlen(logged_all);
    (void)payload;
    snprintf(logged_all + n, sizeof logged_all - n, "%d %s %s %s\n", level, terminal ? terminal : "-", event, msg);
}

START_TEST(test_close_while_registry_fails)
{
    static otaup_registry_ops ops;
    void *ctx = NULL;
    otaup_registry_options ro;
    otaup_registry *flaky = NULL;
    otaup_session *s;
    otaup_reg_session rs;
    const otaup_sm *m;
    uint64_t now = 1000;
    uint8_t key[32];
    real_ops = otaup_registry_backend(reg, &ctx);
    ops = *real_ops;
    ops.close = NULL;
    ops.session_put = flaky_session_put;
    ops.audit_add = flaky_audit_add;
    ops.errmsg = locked_errmsg;
    memset(key, 0x5C, sizeof key);
    otaup_registry_options_init(&ro);
    ro.master_key = key;
    ck_assert_int_eq(otaup_registry_new(&ops, ctx, &ro, &flaky), 0);
    writes_fail = 0;
    audits_tried = 0;
    logged_all[0] = '\0';
    s = session_on(flaky, log_all_cb);
    make_info("T9", v1);
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, now), now);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, now), 0);
    answer_backup(s, 0, userdata[0], now);
    answer_backup(s, 1, userdata[1], now);
    m = expect(s, OTAUP_SM_START, now);
    ack(s, m, now);
    run_transfer(s, &now, 12);
    writes_fail = 1;
    otaup_session_closed(s, now + 5000);
    writes_fail = 0;
    ck_assert(otaup_session_finished(s));
    otaup_session_free(s);
    ck_assert_msg(strstr(logged_all, "1 T9 disconnected state=transfer resumable; its progress was not saved: "
                                     "registry database error (OTAUP_E_DB): session_put: database is locked") != NULL,
                  "log: %s", logged_all);
    ck_assert_int_eq(audits_tried, 0);
    /* the row kept what was saved before; the terminal's journal says step 9 */
    ck_assert_int_eq(otaup_registry_session_get(reg, "T9", &rs), 0);
    s = session_on(flaky, NULL);
    make_info("T9", v1);
    info.active = 1;
    info.session_id = rs.session_id;
    info.next_step = 9;
    now += 10000;
    ck_assert_int_eq(send_info(s, now), 0);
    m = expect(s, OTAUP_SM_NOTE, now);
    ck_assert(note_is(m, "Resuming the upgrade to 2.0."));
    ack(s, m, now);
    m = expect(s, OTAUP_SM_START, now);
    ck_assert_uint_eq(m->step, 8);
    ck_assert_uint_eq(m->flags, OTAUP_START_RESUME);
    ack(s, m, now);
    run_transfer(s, &now, -1);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_VERIFY);
    finish_with_restore(s, now);
    otaup_session_free(s);
    otaup_registry_free(flaky);
}
END_TEST

/* A backup store that fails as SQLite does on a full disk. */
static int full_backup_put(void *ctx, const otaup_reg_backup *b, const uint8_t *sealed, size_t len)
{
    (void)ctx;
    (void)b;
    (void)sealed;
    (void)len;
    return OTAUP_E_DB;
}

/* The server failed for its own reason before anything was written to the
 * terminal: the user's request stands, and the next connection goes
 * straight to the backup. A failure that speaks against the upgrade
 * (test_bad_backup_and_peer_errors) drops it. */
START_TEST(test_request_kept_after_server_error)
{
    otaup_registry *full = faulty_registry(NULL, full_backup_put, NULL, NULL);
    otaup_session *s = session_on(full, NULL);
    otaup_reg_request q;
    otaup_reg_terminal t;
    const otaup_sm *m;
    uint32_t off;
    int rc = 0;
    make_info("T8", v1);
    m = consented(s);
    ck_assert_uint_eq(m->region, 1);
    ack(s, m, 0);
    for (off = 0; off < sizeof userdata[0] && rc == 0; off += 1000) {
        size_t n = sizeof userdata[0] - off < 1000 ? sizeof userdata[0] - off : 1000;
        int last = off + n == sizeof userdata[0];
        send_region_data(s, 1, off, userdata[0] + off, n, userdata[0], sizeof userdata[0], 0,
                         last ? OTAUP_E_DB : 0);
        rc = last ? OTAUP_E_DB : 0;
    }
    ck_assert_int_eq(otaup_session_result(s), OTAUP_E_DB);
    ck_assert_int_eq(expect(s, OTAUP_SM_ABORT_OUT, 0)->code, OTAUP_E_DB);
    otaup_session_free(s);
    otaup_registry_free(full);
    ck_assert_int_eq(otaup_registry_request_get(reg, "T8", &q), 0);
    ck_assert_int_eq(q.release_id, rel2);
    ck_assert_str_eq(q.source, "terminal");
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T8", &t), 0);
    ck_assert_str_eq(t.status, "requested");
    /* the operator made room: the next connection needs no new consent */
    s = new_session();
    ck_assert_int_eq(send_info(s, 1000), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, 1000), 1000);
    answer_backup(s, 0, userdata[0], 1000);
    ck_assert_int_eq(otaup_registry_request_get(reg, "T8", &q), OTAUP_E_NOT_FOUND);
    otaup_session_free(s);
}
END_TEST

/* Terminal `id` (running 1.0) through the whole flow, on its user's
 * consent, up to the COMMIT it acknowledged; returns the session id. */
static uint32_t committed(otaup_session *s, const char *id, uint64_t *now)
{
    const otaup_sm *m;
    uint32_t session;
    make_info(id, v1);
    ck_assert_int_eq(send_info(s, *now), 0);
    ack(s, expect(s, OTAUP_SM_NOTIFY, *now), *now);
    ck_assert_int_eq(send_simple(s, OTAUP_SM_CONSENT, 0, *now), 0);
    answer_backup(s, 0, userdata[0], *now);
    answer_backup(s, 1, userdata[1], *now);
    m = expect(s, OTAUP_SM_START, *now);
    session = m->session_id;
    ack(s, m, *now);
    received_len = 0;
    run_transfer(s, now, -1);
    answer_hashes(s, userdata[0], userdata[1], *now);
    ack(s, expect(s, OTAUP_SM_COMMIT, *now), *now);
    return session;
}

/* The terminal committed the session, but the server's row still says
 * "transfer" (the writes that followed were lost: a full disk, a registry
 * restored from a copy). At the next connection the terminal, idle on the
 * new image, answers the START of that session with its RESULT: the
 * session ended well, which a terminal does only on COMMIT, sent after the
 * user-data check. The server must finish it then (backup deleted,
 * terminal upgraded, row done): a terminal whose update is over does not
 * wait for more, so asking for region hashes and COMMIT again would leave
 * the backup held and the session open after it hung up. */
START_TEST(test_committed_on_stale_row)
{
    otaup_session *s = new_session();
    otaup_reg_session rs;
    otaup_reg_terminal t;
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t session;
    int order;
    session = committed(s, "T9", &now);
    /* committed on the terminal; its RESULT never reached the server */
    otaup_session_closed(s, now);
    otaup_session_free(s);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T9", &rs), 0);
    ck_assert_str_eq(rs.state, "commit");
    snprintf(rs.state, sizeof rs.state, "transfer"); /* the later writes were lost */
    ck_assert_int_eq(otaup_registry_session_put(reg, &rs), 0);
    ck_assert_int_eq(count_backups("T9"), 2);

    for (order = 0; order < 2; order++) {
        /* the terminal runs 2.0, no session in its journal; it answers the
         * START with its RESULT before (0) or after (1) the ACK */
        s = new_session();
        make_info("T9", v2);
        snprintf(info.version, sizeof info.version, "2.0");
        info.build_time = 200;
        info.have_image_hash = 0; /* as otaup-term: its version and size only */
        now += 10000;
        ck_assert_int_eq(send_info(s, now), 0);
        ack(s, expect(s, OTAUP_SM_NOTE, now), now);
        m = expect(s, OTAUP_SM_START, now);
        ck_assert_uint_eq(m->session_id, session);
        if (order == 1) {
            ack(s, m, now);
        }
        send_result(s, session, now);
        if (order == 0) {
            ack(s, m, now);
        }
        ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_DONE);
        ack(s, expect(s, OTAUP_SM_DONE, now), now);
        ck_assert(otaup_session_finished(s));
        ck_assert_int_eq(otaup_session_result(s), 0);
        otaup_session_free(s);
        ck_assert_int_eq(count_backups("T9"), 0);
        ck_assert_int_eq(otaup_registry_session_get(reg, "T9", &rs), 0);
        ck_assert_str_eq(rs.state, "done");
        ck_assert_int_eq(otaup_registry_terminal_get(reg, "T9", &t), 0);
        ck_assert_str_eq(t.status, "upgraded");
        ck_assert_str_eq(t.version, "2.0");
        /* the same loss once more, the other order */
        snprintf(rs.state, sizeof rs.state, "transfer");
        ck_assert_int_eq(otaup_registry_session_put(reg, &rs), 0);
    }
}
END_TEST

/* The terminal committed, its RESULT never reached the server (which went
 * down), and the user went on using the terminal: its personal data
 * changed. At the next connection (no session in its journal, the row at
 * "commit") the server must not compare the regions with the backup again
 * and restore it over the user's new data: the check passed before that
 * COMMIT went out. It sends COMMIT again, the terminal answers with the
 * same RESULT from its journal, and the session ends (backup deleted). */
START_TEST(test_committed_then_data_changed)
{
    otaup_session *s = new_session();
    otaup_reg_session rs;
    otaup_reg_terminal t;
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t session;
    uint8_t newdata[sizeof userdata[1]];
    session = committed(s, "T10", &now);
    otaup_session_closed(s, now); /* committed; the RESULT was lost with the server */
    otaup_session_free(s);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T10", &rs), 0);
    ck_assert_str_eq(rs.state, "commit");

    /* days later: new contacts in region 2 */
    memcpy(newdata, userdata[1], sizeof newdata);
    memset(newdata + 50, 0x42, 300);
    s = new_session();
    make_info("T10", v2);
    snprintf(info.version, sizeof info.version, "2.0");
    info.build_time = 200;
    info.have_image_hash = 0;
    hash64(newdata, sizeof newdata, info.regions[1].hash);
    now += 86400000;
    ck_assert_int_eq(send_info(s, now), 0);
    m = expect(s, OTAUP_SM_NOTE, now); /* nothing of the image is sent again */
    ck_assert(note_is(m, "Finishing the upgrade to 2.0."));
    ack(s, m, now);
    m = expect(s, OTAUP_SM_COMMIT, now); /* no region check, no restore */
    ck_assert_uint_eq(m->session_id, session);
    ack(s, m, now);
    send_result(s, session, now);
    ck_assert_int_eq(otaup_session_get_state(s), OTAUP_SS_DONE);
    ack(s, expect(s, OTAUP_SM_DONE, now), now);
    ck_assert(otaup_session_finished(s));
    ck_assert_int_eq(otaup_session_result(s), 0);
    otaup_session_free(s);
    ck_assert_int_eq(count_backups("T10"), 0);
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T10", &t), 0);
    ck_assert_str_eq(t.status, "upgraded");
}
END_TEST

/* A backup store whose deletion fails as SQLite does on a full disk. */
static int full_backup_delete(void *ctx, const char *terminal)
{
    (void)ctx;
    (void)terminal;
    return OTAUP_E_DB;
}

/* The terminal committed and its RESULT came, but the backup cannot be
 * deleted (a full disk): the terminal is upgraded, so it gets DONE, not
 * an ABORT that would tell its user the upgrade failed; the backup and
 * the row at "commit" stay, and its next connection sends COMMIT again,
 * gets the same RESULT from its journal and deletes the backup. */
START_TEST(test_backup_delete_fails_after_commit)
{
    otaup_registry *full = faulty_registry(NULL, NULL, full_backup_delete, NULL);
    otaup_session *s = session_on(full, NULL);
    otaup_reg_session rs;
    otaup_reg_terminal t;
    const otaup_sm *m;
    uint64_t now = 1000;
    uint32_t session;
    session = committed(s, "T11", &now);
    send_result(s, session, now);
    m = expect(s, OTAUP_SM_DONE, now);
    ck_assert_ptr_nonnull(m->text);
    ck_assert_msg(strstr(m->text, "complete") != NULL, "%s", m->text);
    ack(s, m, now);
    ck_assert_int_eq(otaup_session_result(s), 0);
    otaup_session_free(s);
    otaup_registry_free(full);
    ck_assert_int_eq(count_backups("T11"), 2);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T11", &rs), 0);
    ck_assert_str_eq(rs.state, "commit");
    ck_assert_int_eq(otaup_registry_terminal_get(reg, "T11", &t), 0);
    ck_assert_str_eq(t.status, "upgraded");
    ck_assert_str_eq(t.version, "2.0");

    /* room again: the next connection deletes it */
    s = new_session();
    make_info("T11", v2);
    snprintf(info.version, sizeof info.version, "2.0");
    info.build_time = 200;
    now += 60000;
    ck_assert_int_eq(send_info(s, now), 0);
    ack(s, expect(s, OTAUP_SM_NOTE, now), now);
    m = expect(s, OTAUP_SM_COMMIT, now);
    ck_assert_uint_eq(m->session_id, session);
    ack(s, m, now);
    send_result(s, session, now);
    ack(s, expect(s, OTAUP_SM_DONE, now), now);
    ck_assert_int_eq(otaup_session_result(s), 0);
    otaup_session_free(s);
    ck_assert_int_eq(count_backups("T11"), 0);
    ck_assert_int_eq(otaup_registry_session_get(reg, "T11", &rs), 0);
    ck_assert_str_eq(rs.state, "done");
}
END_TEST

int main(void)
{
    Suite *su = suite_create("session");
    TCase *tc = tcase_create("flow");
    SRunner *sr;
    int failed;
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_whole_flow);
    tcase_add_test(tc, test_ab_target_slot_at_zero);
    tcase_add_test(tc, test_disconnect_and_resume);
    tcase_add_test(tc, test_close_while_registry_fails);
    tcase_add_test(tc, test_lying_terminal);
    tcase_add_test(tc, test_bad_backup_and_peer_errors);
    tcase_add_test(tc, test_no_backup_capability);
    tcase_add_test(tc, test_backoff_ends_on_ack);
    tcase_add_test(tc, test_backoff_ceiling);
    tcase_add_test(tc, test_rtt_sample_from_named_message);
    tcase_add_test(tc, test_backup_stall_from_ack);
    tcase_add_test(tc, test_silent_terminal_times_out);
    tcase_add_test(tc, test_registry_error_logged);
    tcase_add_test(tc, test_request_kept_after_server_error);
    tcase_add_test(tc, test_committed_on_stale_row);
    tcase_add_test(tc, test_committed_then_data_changed);
    tcase_add_test(tc, test_backup_delete_fails_after_commit);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
