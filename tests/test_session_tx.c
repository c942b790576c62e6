/*
 * Session transmitter: cutting a record stream into frame-sized BATCH
 * payloads, resume offsets, and the window over a simulated slow, long,
 * lossy link (simulated clock: deterministic and fast).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/record.h"
#include "server/session_tx.h"

/* ---- a synthetic outer record stream ----------------------------------- */

static uint8_t body[200000];
static size_t body_len;

static void put(const otaup_record *r)
{
    int n = otaup_record_encode(r, body + body_len, sizeof body - body_len);
    ck_assert_int_gt(n, 0);
    body_len += (size_t)n;
}

static void make_body(uint32_t seed)
{
    static uint8_t payload[60000];
    uint32_t i, s = seed;
    otaup_record r;
    body_len = 0;
    for (i = 0; i < sizeof payload; i++) {
        s = s * 1103515245u + 12345u;
        payload[i] = (uint8_t)(s >> 16);
    }
    for (i = 0; i < 6; i++) {
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_SYNC;
        r.index = i * 4;
        put(&r);
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_DATA;
        r.flags = OTAUP_DATA_RESET;
        r.data = payload + i * 1000;
        r.data_len = 3000 + i * 4111; /* from 3000 to 23555 bytes */
        put(&r);
        memset(&r, 0, sizeof r);
        r.type = OTAUP_REC_DATA; /* a second DATA in the same stream */
        r.data = payload + 7;
        r.data_len = 5 + i;
        put(&r);
    }
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_VERIFY;
    r.addr = 0x1000;
    r.len = 0x2000;
    r.alg = OTAUP_HASH_XXH3_64;
    r.hash_len = 8;
    put(&r);
}

/* Logical content of a stream: records with DATA runs merged between
 * non-DATA records (RESET starts a new run). */
static size_t logical(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t pos = 0, n = 0;
    while (pos < len) {
        otaup_record r;
        int k = otaup_record_decode(in + pos, len - pos, &r);
        ck_assert_int_gt(k, 0);
        if (r.type == OTAUP_REC_DATA) {
            if (r.flags & OTAUP_DATA_RESET) {
                ck_assert_uint_lt(n + 1, cap);
                out[n++] = 'R';
            }
            ck_assert_uint_le(n + r.data_len, cap);
            memcpy(out + n, r.data, r.data_len);
            n += r.data_len;
        } else {
            ck_assert_uint_le(n + (size_t)k + 1, cap);
            out[n++] = 'X';
            memcpy(out + n, in + pos, (size_t)k);
            n += (size_t)k;
        }
        pos += (size_t)k;
    }
    return n;
}

static uint8_t lg1[300000], lg2[300000], joined[300000];

static void check_cut(otaup_tx *tx, uint32_t start, uint32_t pmax)
{
    uint8_t unit[70000];
    size_t jl = 0, l1, l2;
    uint32_t i;
    int n = otaup_tx_cut(tx, start, pmax);
    ck_assert_int_gt(n, 0);
    for (i = 0; i < (uint32_t)n; i++) {
        int k = otaup_tx_encode(tx, i, unit, sizeof unit);
        ck_assert_int_gt(k, 0);
        ck_assert_msg((uint32_t)k <= pmax, "unit %u is %d bytes > %u", i, k, pmax);
        ck_assert_uint_eq((uint32_t)k, otaup_tx_unit_len(tx, i));
        /* every unit is a valid record sequence by itself */
        {
            size_t pos = 0;
            while (pos < (size_t)k) {
                otaup_record r;
                int m = otaup_record_decode(unit + pos, (size_t)k - pos, &r);
                ck_assert_int_gt(m, 0);
                pos += (size_t)m;
            }
        }
        memcpy(joined + jl, unit, (size_t)k);
        jl += (size_t)k;
    }
    l1 = logical(body + start, body_len - start, lg1, sizeof lg1);
    l2 = logical(joined, jl, lg2, sizeof lg2);
    ck_assert_uint_eq(l1, l2);
    ck_assert_int_eq(memcmp(lg1, lg2, l1), 0);
}

START_TEST(test_cut_every_size)
{
    otaup_tx tx;
    static const uint32_t sizes[] = { 16, 17, 31, 64, 100, 255, 256, 1000, 1024, 4096, 65000 };
    size_t i;
    make_body(1);
    ck_assert_int_eq(otaup_tx_init(&tx, body, body_len), 0);
    ck_assert_uint_eq(tx.nsyncs, 6);
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        check_cut(&tx, 0, sizes[i]);
        check_cut(&tx, tx.syncs[3].offset, sizes[i]);
    }
    ck_assert_int_eq(otaup_tx_cut(&tx, 0, 15), OTAUP_E_INVAL);
    otaup_tx_free(&tx);
}
END_TEST

START_TEST(test_resume_offset)
{
    otaup_tx tx;
    uint32_t idx;
    make_body(2);
    ck_assert_int_eq(otaup_tx_init(&tx, body, body_len), 0);
    ck_assert_uint_eq(otaup_tx_resume_offset(&tx, 0, &idx), 0);
    ck_assert_uint_eq(idx, 0);
    /* SYNCs at steps 0, 4, 8, ...: next step 9 resumes at SYNC 8 */
    ck_assert_uint_eq(otaup_tx_resume_offset(&tx, 9, &idx), tx.syncs[2].offset);
    ck_assert_uint_eq(idx, 8);
    ck_assert_uint_eq(otaup_tx_resume_offset(&tx, 8, &idx), tx.syncs[2].offset);
    ck_assert_uint_eq(otaup_tx_resume_offset(&tx, 1000, &idx), tx.syncs[5].offset);
    otaup_tx_free(&tx);
}
END_TEST

START_TEST(test_bad_stream)
{
    otaup_tx tx;
    uint8_t junk[40];
    otaup_record r;
    int n;
    memset(junk, 0xEE, sizeof junk);
    ck_assert_int_eq(otaup_tx_init(&tx, junk, sizeof junk), OTAUP_E_DELTA_CORRUPT);
    /* a STEP is an inner record, never in the outer stream */
    memset(&r, 0, sizeof r);
    r.type = OTAUP_REC_STEP;
    r.len = 16;
    n = otaup_record_encode(&r, junk, sizeof junk);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_tx_init(&tx, junk, (size_t)n), OTAUP_E_DELTA_CORRUPT);
    ck_assert_int_eq(otaup_tx_init(&tx, NULL, 0), OTAUP_E_INVAL);
}
END_TEST

/* ---- a simulated link --------------------------------------------------- */

struct msg {
    uint64_t at_us;
    uint32_t unit;    /* to terminal: unit index; to server: expected */
    int nack;
    int corrupt;
};

#define QMAX 20000
struct queue {
    struct msg m[QMAX];
    size_t n;
};

static void q_push(struct queue *q, struct msg m)
{
    ck_assert_uint_lt(q->n, QMAX);
    q->m[q->n++] = m;
}

/* pop the earliest message due at or before t (in order of arrival) */
static int q_pop(struct queue *q, uint64_t t, struct msg *out)
{
    size_t i, best = SIZE_MAX;
    for (i = 0; i < q->n; i++) {
        if (q->m[i].at_us <= t && (best == SIZE_MAX || q->m[i].at_us < q->m[best].at_us)) {
            best = i;
        }
    }
    if (best == SIZE_MAX) {
        return 0;
    }
    *out = q->m[best];
    q->m[best] = q->m[--q->n];
    return 1;
}

struct linkres {
    double utilisation;
    uint64_t time_us;
    uint32_t retransmits;
    int ok;
};

static uint32_t rnd_state;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 1664525u + 1013904223u;
    return rnd_state >> 8;
}

/*
 * Run a transfer over a link of `bps` bits per second and `rtt_ms` round
 * trip; loss/dup/corrupt in per-mille. Returns utilisation: the time the
 * link would need for the unique bytes, over the time the transfer took.
 */
static struct linkres run_link(uint32_t pmax, uint32_t window, uint32_t bps, uint32_t rtt_ms,
                               unsigned loss, unsigned dup, unsigned corrupt, unsigned reorder)
{
    static struct queue down, up;
    otaup_tx tx;
    struct linkres res;
    uint64_t t = 0, link_free = 0, one_way = (uint64_t)rtt_ms * 500;
    uint64_t unique_us = 0, limit_us = 600ull * 1000000ull;
    uint32_t expected = 0, i;
    int done = 0, rc;
    memset(&res, 0, sizeof res);
    down.n = up.n = 0;
    rnd_state = 12345;
    ck_assert_int_eq(otaup_tx_init(&tx, body, body_len), 0);
    ck_assert_int_gt(otaup_tx_cut(&tx, 0, pmax), 0);
    tx.window_units = window;
    tx.window_bytes = UINT32_MAX;
    for (i = 0; i < tx.nunits; i++) {
        unique_us += (uint64_t)(otaup_tx_unit_len(&tx, i) + 16) * 8 * 1000000 / bps;
    }
    while (!done && t < limit_us) {
        struct msg m;
        int64_t nx;
        /* server: acks */
        while (q_pop(&up, t, &m)) {
            rc = otaup_tx_ack(&tx, m.unit, m.nack, t / 1000);
            ck_assert_int_ge(rc, 0);
            if (rc == 1) {
                done = 1;
            }
        }
        ck_assert_int_eq(otaup_tx_poll(&tx, t / 1000), 0);
        /* server: send while the link is free */
        while (!done && link_free <= t && (nx = otaup_tx_next(&tx)) >= 0) {
            uint32_t len = otaup_tx_unit_len(&tx, (uint32_t)nx) + 16; /* + frame overhead */
            uint64_t ser = (uint64_t)len * 8 * 1000000 / bps;
            otaup_tx_sent(&tx, (uint32_t)nx, t / 1000);
            link_free = (link_free > t ? link_free : t) + ser;
            if (rnd() % 1000 < loss) {
                continue;
            }
            m.at_us = link_free + one_way + (rnd() % 1000 < reorder ? 3000 : 0);
            m.unit = (uint32_t)nx;
            m.nack = 0;
            m.corrupt = rnd() % 1000 < corrupt;
            q_push(&down, m);
            if (rnd() % 1000 < dup) {
                m.at_us += 700;
                q_push(&down, m);
            }
        }
        /* terminal */
        while (q_pop(&down, t, &m)) {
            struct msg a;
            a.at_us = t + one_way;
            a.corrupt = 0;
            if (m.corrupt) {
                a.unit = expected;
                a.nack = 1; /* a CRC error: NACK with what it expects */
            } else if (m.unit == expected) {
                expected++;
                a.unit = expected;
                a.nack = 0;
            } else if (m.unit > expected) {
                a.unit = expected;
                a.nack = 1;
            } else {
                a.unit = expected; /* duplicate: repeat the answer */
                a.nack = 0;
            }
            if (rnd() % 1000 >= loss) {
                q_push(&up, a);
            }
        }
        /* next event time: step in 100 us */
        t += 100;
    }
    res.ok = done && expected == tx.nunits;
    res.time_us = t;
    res.utilisation = (double)unique_us / (double)t;
    res.retransmits = tx.retransmits;
    otaup_tx_free(&tx);
    return res;
}

START_TEST(test_window_keeps_slow_long_link_busy)
{
    struct linkres w, s;
    make_body(3);
    /* 256 kbit/s, 100 ms RTT, 1 KiB frames */
    w = run_link(1024, 64, 256000, 100, 0, 0, 0, 0);
    s = run_link(1024, 1, 256000, 100, 0, 0, 0, 0);
    ck_assert(w.ok);
    ck_assert(s.ok);
    printf("window 64: utilisation %.1f %% (%.2f s); stop-and-wait: %.1f %% (%.2f s)\n",
           100 * w.utilisation, w.time_us / 1e6, 100 * s.utilisation, s.time_us / 1e6);
    ck_assert_msg(w.utilisation >= 0.90, "windowed utilisation %.3f < 0.90", w.utilisation);
    ck_assert_msg(s.utilisation < 0.5, "stop-and-wait cannot fill a long link (%.3f)", s.utilisation);
    ck_assert_uint_eq(w.retransmits, 0);
}
END_TEST

START_TEST(test_faulty_link_completes)
{
    struct linkres r;
    make_body(4);
    /* 5 % loss both ways, 2 % duplicates, 2 % corrupt, 2 % reordered */
    r = run_link(512, 32, 512000, 100, 50, 20, 20, 20);
    ck_assert(r.ok);
    ck_assert_uint_gt(r.retransmits, 0);
    printf("lossy link: %.2f s, %u retransmits, utilisation %.1f %%\n", r.time_us / 1e6, r.retransmits,
           100 * r.utilisation);
}
END_TEST

START_TEST(test_gives_up_on_dead_link)
{
    otaup_tx tx;
    uint64_t now = 0;
    int rc = 0, rounds = 0;
    make_body(5);
    ck_assert_int_eq(otaup_tx_init(&tx, body, body_len), 0);
    ck_assert_int_gt(otaup_tx_cut(&tx, 0, 1024), 0);
    tx.max_retries = 4;
    while (rc == 0 && rounds < 1000) {
        int64_t nx;
        while ((nx = otaup_tx_next(&tx)) >= 0) {
            otaup_tx_sent(&tx, (uint32_t)nx, now);
        }
        now = otaup_tx_deadline(&tx);
        ck_assert(now != UINT64_MAX);
        rc = otaup_tx_poll(&tx, now);
        if (rc == 0) {
            /* a timeout goes back to the oldest unacknowledged unit */
            ck_assert_int_eq(otaup_tx_next(&tx), (int64_t)tx.base);
        }
        rounds++;
    }
    ck_assert_int_eq(rc, OTAUP_E_RETRIES);
    ck_assert_int_eq(rounds, 5);
    /* an ack for a unit never sent is a protocol violation */
    ck_assert_int_eq(otaup_tx_ack(&tx, tx.high + 1, 0, now), OTAUP_E_PEER);
    otaup_tx_free(&tx);
}
END_TEST

/* Timeouts back the retransmission timeout off (doubling); an ACK that
 * advances brings it back to its value without backoff, and one that
 * does not (a duplicate, a NACK for the same gap) keeps it. */
START_TEST(test_backoff_ends_on_ack)
{
    otaup_tx tx;
    uint64_t now = 0;
    int64_t nx;
    int k;
    make_body(5);
    ck_assert_int_eq(otaup_tx_init(&tx, body, body_len), 0);
    ck_assert_int_gt(otaup_tx_cut(&tx, 0, 256), 3);
    tx.rto_ms = tx.rto_base_ms = 500;
    for (k = 0; k < 4; k++) {
        while ((nx = otaup_tx_next(&tx)) >= 0) {
            otaup_tx_sent(&tx, (uint32_t)nx, now);
        }
        now = otaup_tx_deadline(&tx);
        ck_assert_int_eq(otaup_tx_poll(&tx, now), 0);
    }
    ck_assert_uint_eq(tx.rto_ms, 500u << 4);
    while ((nx = otaup_tx_next(&tx)) >= 0) {
        otaup_tx_sent(&tx, (uint32_t)nx, now);
    }
    ck_assert_int_eq(otaup_tx_ack(&tx, tx.base, 1, now + 5), 0); /* no progress */
    ck_assert_uint_eq(tx.rto_ms, 500u << 4);
    ck_assert_int_eq(otaup_tx_ack(&tx, tx.base + 1, 0, now + 10), 0);
    ck_assert_uint_eq(tx.rto_ms, 500);
    ck_assert_uint_eq(otaup_tx_deadline(&tx), now + 10 + 500);
    otaup_tx_free(&tx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("session_tx");
    TCase *tc = tcase_create("tx");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cut_every_size);
    tcase_add_test(tc, test_resume_offset);
    tcase_add_test(tc, test_bad_stream);
    tcase_add_test(tc, test_window_keeps_slow_long_link_busy);
    tcase_add_test(tc, test_faulty_link_completes);
    tcase_add_test(tc, test_gives_up_on_dead_link);
    tcase_add_test(tc, test_backoff_ends_on_ack);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
