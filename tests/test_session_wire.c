/*
 * The session driver's wire layer (server/session_core.h): what it answers
 * and what it executes when the terminal's sequenced frames arrive out of
 * order, twice, or refused (docs/protocol.md §4; docs/server.md, "Wire
 * mapping"). Frames past a gap, within the advertised window, are kept
 * and executed in order once the gap is filled; nothing runs twice.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/proto.h"
#include "server/session_core.h"

static uint32_t got[64]; /* offsets of the BACKUP_DATA delivered, in order */
static unsigned ngot;

static int deliver(void *ctx, const otaup_sm *m)
{
    (void)ctx;
    if (m->type == OTAUP_SM_BACKUP_DATA && ngot < 64) {
        got[ngot++] = m->offset;
    }
    return 0;
}

static size_t hello_frame(uint8_t *out, size_t cap)
{
    otaup_msg m;
    int n;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = OTAUP_ROLE_TERMINAL;
    m.u.hello.proto_min = m.u.hello.proto_max = 1;
    m.u.hello.max_frame = 1024;
    m.u.hello.max_msg = 1024;
    m.u.hello.window = 8;
    m.u.hello.caps = OTAUP_CAP_BACKUP;
    n = otaup_msg_encode_frame(&m, 0, 0, 65536, out, cap);
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

/* BACKUP_DATA seq k carries 16 bytes at offset 16 * k (k >= 1). `refused`:
 * with a flag the wire itself refuses (TAG, sealed backups not negotiated). */
static size_t data_frame(uint32_t seq, int refused, uint8_t *out, size_t cap)
{
    static const uint8_t bytes[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
    otaup_msg m;
    int n;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_DATA;
    m.u.rdata.region = 0;
    m.u.rdata.offset = 16u * seq;
    m.u.rdata.data.data = bytes;
    m.u.rdata.data.len = sizeof bytes;
    if (refused) {
        m.u.rdata.flags = OTAUP_RDATA_TAG;
    }
    n = otaup_msg_encode_frame(&m, 0, seq, 65536, out, cap);
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

/* The answers waiting: the last ACK's seq (or -1), the NACKs' expected values. */
typedef struct answers {
    long last_ack;
    unsigned nnack;
    uint32_t nack_expected[4096];
    int32_t nack_error[4096];
} answers;

static void take_answers(otaup_swire *w, answers *a)
{
    uint8_t buf[4096];
    size_t n = otaup_swire_take(w, buf, sizeof buf), off = 0;
    memset(a, 0, sizeof *a);
    a->last_ack = -1;
    while (off < n) {
        otaup_frame fr;
        size_t fl;
        ck_assert_uint_ge(n - off, OTAUP_FRAME_OVERHEAD);
        fl = (size_t)(buf[off + 6] | buf[off + 7] << 8) + OTAUP_FRAME_OVERHEAD;
        ck_assert_uint_le(fl, n - off);
        ck_assert_int_eq(otaup_frame_decode(buf + off, fl, 65536, &fr), 0);
        if (fr.type == OTAUP_MSG_ACK) {
            otaup_msg_ack k;
            ck_assert_int_eq(otaup_ack_decode(fr.payload, fr.payload_len, &k), 0);
            a->last_ack = (long)k.seq;
        } else {
            otaup_msg_nack k;
            ck_assert_int_eq(fr.type, OTAUP_MSG_NACK);
            ck_assert_int_eq(otaup_nack_decode(fr.payload, fr.payload_len, &k), 0);
            ck_assert_uint_lt(a->nnack, 4096);
            a->nack_expected[a->nnack] = k.expected;
            a->nack_error[a->nnack++] = k.error;
        }
        off += fr.frame_len;
    }
}

static otaup_swire *w;

static void feed_seq(uint32_t seq, int refused)
{
    uint8_t f[256];
    size_t n = data_frame(seq, refused, f, sizeof f);
    ck_assert_int_eq(otaup_swire_feed(w, f, n, 100, deliver, NULL, NULL), 0);
}

static void setup_wire(void)
{
    uint8_t f[256];
    answers a;
    size_t n;
    ngot = 0;
    ck_assert_int_eq(otaup_swire_new(&w), 0);
    n = hello_frame(f, sizeof f);
    ck_assert_int_eq(otaup_swire_feed(w, f, n, 0, deliver, NULL, NULL), 0);
    take_answers(w, &a);
    ck_assert_int_eq(a.last_ack, 0);
}

static void check_got(const uint32_t *seqs, unsigned n)
{
    unsigned i;
    ck_assert_uint_eq(ngot, n);
    for (i = 0; i < n; i++) {
        ck_assert_uint_eq(got[i], 16u * seqs[i]);
    }
}

/* 3, 4, then 2 and 3 again arrive before 1: a NACK for the gap and one
 * for the round that went back, nothing executed; then 1 fills the gap
 * and all four run in order, answered by one ACK of 4. */
START_TEST(test_gap_filled_executes_kept)
{
    static const uint32_t order[] = { 1, 2, 3, 4, 5 };
    answers a;
    setup_wire();
    feed_seq(3, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 1);
    ck_assert_uint_eq(a.nack_expected[0], 1);
    ck_assert_int_eq(a.nack_error[0], OTAUP_E_SEQ);
    feed_seq(4, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 0); /* one NACK per gap and round of the sender */
    /* 2, not after 4: the terminal went back (its round lost 1 again) */
    feed_seq(2, 0);
    feed_seq(3, 0); /* sent again: kept once */
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 1);
    ck_assert_uint_eq(a.nack_expected[0], 1);
    ck_assert_int_eq(a.last_ack, -1);
    ck_assert_uint_eq(ngot, 0);
    feed_seq(1, 0);
    take_answers(w, &a);
    check_got(order, 4);
    ck_assert_int_eq(a.last_ack, 4);
    ck_assert_uint_eq(a.nnack, 0);
    /* the go-back-N resends that follow are duplicates: answered, not run */
    feed_seq(2, 0);
    feed_seq(3, 0);
    take_answers(w, &a);
    ck_assert_int_eq(a.last_ack, 4);
    ck_assert_uint_eq(ngot, 4);
    feed_seq(5, 0);
    take_answers(w, &a);
    ck_assert_int_eq(a.last_ack, 5);
    check_got(order, 5);
    otaup_swire_free(w);
}
END_TEST

/* 1 fills the first gap, 2 and 4 were kept: 1 and 2 run, and a NACK tells
 * the terminal to begin again at 3; 3 then runs 3 and 4. */
START_TEST(test_second_gap)
{
    static const uint32_t order[] = { 1, 2, 3, 4 };
    answers a;
    setup_wire();
    feed_seq(2, 0);
    feed_seq(4, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 1);
    feed_seq(1, 0);
    take_answers(w, &a);
    check_got(order, 2);
    ck_assert_uint_eq(a.nnack, 1);
    ck_assert_uint_eq(a.nack_expected[0], 3);
    ck_assert_int_eq(a.nack_error[0], OTAUP_E_SEQ);
    feed_seq(3, 0);
    take_answers(w, &a);
    check_got(order, 4);
    ck_assert_int_eq(a.last_ack, 4);
    otaup_swire_free(w);
}
END_TEST

/* A kept frame the wire refuses when its turn comes: NACK naming it, the
 * frames kept after it dropped (they must come again after it), and
 * nothing after it executed. */
START_TEST(test_kept_frame_refused)
{
    static const uint32_t order[] = { 1, 2, 3, 4 };
    answers a;
    setup_wire();
    feed_seq(3, 1); /* refused when executed */
    feed_seq(4, 0);
    feed_seq(2, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(ngot, 0);
    feed_seq(1, 0);
    take_answers(w, &a);
    check_got(order, 2);
    ck_assert_uint_eq(a.nnack, 1);
    ck_assert_uint_eq(a.nack_expected[0], 3);
    ck_assert_int_eq(a.nack_error[0], OTAUP_E_UNSUPPORTED);
    ck_assert_int_eq(a.last_ack, 2);
    /* 4 was dropped (a terminal may send another frame 3 after a refusal,
     * and what followed the refused one is then stale): 3 runs alone */
    feed_seq(3, 0);
    take_answers(w, &a);
    check_got(order, 3);
    ck_assert_int_eq(a.last_ack, 3);
    feed_seq(4, 0);
    take_answers(w, &a);
    check_got(order, 4);
    ck_assert_int_eq(a.last_ack, 4);
    otaup_swire_free(w);
}
END_TEST

/* Past the window: not kept (the sender may not have sent it yet by the
 * rules; the wire keeps only what its window allows). A new HELLO (the
 * terminal numbers from 0 again) forgets what was kept. */
START_TEST(test_window_and_hello)
{
    static const uint32_t order[] = { 1, 2 };
    uint8_t f[256];
    size_t n;
    answers a;
    setup_wire();
    feed_seq(1 + OTAUP_SWIRE_RX_WINDOW, 0); /* expected 1: seq 17 is outside 1..16 */
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 1); /* a gap all the same */
    feed_seq(2, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(a.nnack, 1); /* 2, not after 17: a new round */
    feed_seq(1, 0);
    take_answers(w, &a);
    check_got(order, 2);
    ck_assert_int_eq(a.last_ack, 2);
    ck_assert_uint_eq(a.nnack, 0); /* nothing left kept: no second gap */
    /* kept, then a new connection's HELLO: gone */
    feed_seq(4, 0);
    n = hello_frame(f, sizeof f);
    ck_assert_int_eq(otaup_swire_feed(w, f, n, 0, deliver, NULL, NULL), 0);
    take_answers(w, &a);
    ngot = 0;
    feed_seq(1, 0);
    feed_seq(2, 0);
    feed_seq(3, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(ngot, 3);
    ck_assert_int_eq(a.last_ack, 3);
    ck_assert_uint_eq(a.nnack, 0); /* 4 of the old numbering was not kept */
    feed_seq(5, 0);
    take_answers(w, &a);
    ck_assert_uint_eq(ngot, 3);
    ck_assert_uint_eq(a.nnack, 1);
    ck_assert_uint_eq(a.nack_expected[0], 4);
    otaup_swire_free(w);
}
END_TEST

/* Random orders of 1..12 with duplicates: every frame runs exactly once,
 * in order, and the last ACK names 12. */
START_TEST(test_random_orders)
{
    uint64_t r = 0x1234567u;
    int round;
    for (round = 0; round < 300; round++) {
        uint32_t want[12];
        unsigned i, sent = 0;
        answers a;
        setup_wire();
        for (i = 0; i < 12; i++) {
            want[i] = i + 1;
        }
        while (ngot < 12 && sent < 2000) {
            uint32_t next = 1u + ngot, seq;
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            seq = next + (uint32_t)((r >> 33) % 6u);
            if (seq > 12) {
                seq = next;
            }
            if ((r >> 20) % 7u == 0) {
                seq = next > 1 ? next - 1 : next; /* a duplicate of something run */
            }
            feed_seq(seq, 0);
            sent++;
        }
        take_answers(w, &a);
        check_got(want, 12);
        otaup_swire_free(w);
    }
}
END_TEST

/* A noisy link at the start of a connection: eight HELLOs whose CRC
 * fails (their headers check out: frames of this protocol, damaged) are
 * more than the bytes of garbage after which a peer is taken for another
 * protocol, yet the connection goes on and the next HELLO is answered.
 * The same bytes with their headers damaged too are garbage. */
START_TEST(test_damaged_frames_not_garbage)
{
    uint8_t f[256], all[2048];
    answers a;
    size_t n, len = 0;
    int k, hdr;
    for (hdr = 0; hdr < 2; hdr++) {
        len = 0;
        ck_assert_int_eq(otaup_swire_new(&w), 0);
        n = hello_frame(f, sizeof f);
        for (k = 0; k < 8; k++) {
            memcpy(all + len, f, n);
            all[len + n - 1] ^= 0x5A; /* the CRC fails */
            if (hdr) {
                all[len + 4] ^= 0x01; /* and the header check too */
            }
            len += n;
        }
        ck_assert_uint_gt(len, 256);
        if (hdr) {
            ck_assert_int_eq(otaup_swire_feed(w, all, len, 0, deliver, NULL, NULL), OTAUP_E_FRAME_GARBAGE);
        } else {
            ck_assert_int_eq(otaup_swire_feed(w, all, len, 0, deliver, NULL, NULL), 0);
            ck_assert_int_eq(otaup_swire_feed(w, f, n, 0, deliver, NULL, NULL), 0);
            take_answers(w, &a);
            ck_assert_int_eq(a.last_ack, 0);
        }
        otaup_swire_free(w);
        w = NULL;
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("session_wire");
    TCase *tc = tcase_create("wire");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, test_gap_filled_executes_kept);
    tcase_add_test(tc, test_second_gap);
    tcase_add_test(tc, test_kept_frame_refused);
    tcase_add_test(tc, test_window_and_hello);
    tcase_add_test(tc, test_random_orders);
    tcase_add_test(tc, test_damaged_frames_not_garbage);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
