/*
 * bench/backup: how long the terminal applier takes to upload a user-data
 * region (BACKUP_REQ → BACKUP_DATA … LAST) over a link with latency, by the
 * window the server advertises. Deterministic: the real applier on a
 * simulated flash, a minimal server (in-order receiver, ACK per frame), a
 * simulated clock and link (one-way latency, optional rate that
 * serialises frames in each direction, optional loss). Window 1 is
 * stop-and-wait: one chunk per round trip, what the applier did before it
 * kept a window of chunks in flight (docs/performance.md, "Backup upload").
 *
 *   otaup-bench-backup [latency_ms_one_way [rate_bit_s [region_kib [frame [loss_pct]]]]]
 *
 * Defaults: 75 ms (150 ms round trip), 0 (no rate limit), 64 KiB, 256-byte
 * frames, no loss. Prints one line per window and the ratio to window 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/apply.h"
#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/simflash.h"

#define S 4096u
#define SRV_FRAME 1024u

typedef struct flight {
    uint64_t at; /* microseconds */
    int to_term;
    uint8_t *p;
    size_t n;
} flight;

typedef struct bench {
    uint64_t us, rng;
    unsigned latency_ms, loss_pct;
    uint64_t rate;
    uint64_t busy[2]; /* link busy until, per direction (0: to the server) */
    flight *q;
    size_t nq, capq;
    otaup_apply ap;
    /* server */
    uint16_t window;
    otaup_decoder dec;
    uint8_t decbuf[SRV_FRAME];
    otaup_reasm ra;
    uint8_t rabuf[2048];
    uint32_t rx_last, tx_seq, pend_seq, got, region_len;
    int rx_any, gap_nacked, info_in, req_sent, done;
    uint8_t pend[128];
    size_t pend_len;
    uint64_t pend_time, done_us, req_us;
    unsigned frames_up, resent;
} bench;

static uint64_t rnd(bench *b)
{
    uint64_t z = (b->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void link_put(bench *b, int to_term, const uint8_t *p, size_t n)
{
    uint64_t start = b->us, at;
    flight *f;
    if (b->rate != 0) {
        if (b->busy[to_term] > start) {
            start = b->busy[to_term];
        }
        b->busy[to_term] = start + (uint64_t)n * 8u * 1000000u / b->rate;
        start = b->busy[to_term];
    }
    at = start + (uint64_t)b->latency_ms * 1000u;
    if (rnd(b) % 100 < b->loss_pct) {
        return;
    }
    if (b->nq == b->capq) {
        b->capq = b->capq ? 2 * b->capq : 256;
        b->q = realloc(b->q, b->capq * sizeof *b->q);
        if (b->q == NULL) {
            abort();
        }
    }
    f = &b->q[b->nq++];
    f->at = at;
    f->to_term = to_term;
    f->p = malloc(n);
    f->n = n;
    if (f->p == NULL) {
        abort();
    }
    memcpy(f->p, p, n);
}

static int term_send(void *ctx, const uint8_t *p, size_t n)
{
    bench *b = ctx;
    if (p[3] == OTAUP_MSG_BACKUP_DATA) {
        b->frames_up++;
    }
    link_put(b, 0, p, n);
    return (int)n;
}

static uint32_t term_now(void *ctx)
{
    return (uint32_t)(((bench *)ctx)->us / 1000u);
}

static void srv_msg(bench *b, const otaup_msg *m, int sequenced)
{
    uint8_t f[128];
    int n = otaup_msg_encode_frame(m, 0, b->tx_seq, SRV_FRAME, f, sizeof f);
    if (n < 0) {
        abort();
    }
    if (sequenced) {
        memcpy(b->pend, f, (size_t)n);
        b->pend_len = (size_t)n;
        b->pend_seq = b->tx_seq++;
        b->pend_time = b->us;
    }
    link_put(b, 1, f, (size_t)n);
}

static void srv_ack(bench *b)
{
    otaup_msg m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = b->rx_last;
    m.u.ack.window = b->window;
    srv_msg(b, &m, 0);
}

static void srv_next(bench *b)
{
    otaup_msg m;
    if (b->pend_len != 0 || !b->info_in || b->req_sent) {
        return;
    }
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_BACKUP_REQ;
    m.u.backup_req.region = 1;
    m.u.backup_req.max_chunk = 65536;
    b->req_sent = 1;
    b->req_us = b->us;
    srv_msg(b, &m, 1);
}

static void srv_frame(bench *b, const otaup_frame *fr)
{
    otaup_msg m;
    if (otaup_msg_decode(fr->type, fr->payload, fr->payload_len, &m) != 0 && fr->type != OTAUP_MSG_INFO) {
        return;
    }
    if (fr->type == OTAUP_MSG_ACK) {
        if (b->pend_len && (int32_t)(m.u.ack.seq - b->pend_seq) >= 0) {
            b->pend_len = 0;
            srv_next(b);
        }
        return;
    }
    if (fr->type == OTAUP_MSG_NACK || fr->type == OTAUP_MSG_PROGRESS) {
        return;
    }
    if (b->rx_any && (int32_t)(fr->seq - b->rx_last) <= 0) {
        srv_ack(b);
        return;
    }
    if (fr->seq != (b->rx_any ? b->rx_last + 1u : 0u)) {
        if (!b->gap_nacked) { /* one NACK(SEQ) per gap (protocol.md §4, rule 3) */
            memset(&m, 0, sizeof m);
            m.type = OTAUP_MSG_NACK;
            m.u.nack.seq = fr->seq;
            m.u.nack.error = OTAUP_E_SEQ;
            m.u.nack.expected = b->rx_any ? b->rx_last + 1u : 0u;
            b->gap_nacked = 1;
            srv_msg(b, &m, 0);
        }
        return;
    }
    b->gap_nacked = 0;
    b->rx_last = fr->seq;
    b->rx_any = 1;
    if (fr->type == OTAUP_MSG_INFO) {
        const uint8_t *msg;
        size_t len;
        if (otaup_reasm_add(&b->ra, fr, &msg, &len) == 1) {
            b->info_in = 1;
        }
    } else if (fr->type == OTAUP_MSG_BACKUP_DATA && m.u.rdata.offset == b->got) {
        b->got += m.u.rdata.data.len;
        if ((m.u.rdata.flags & OTAUP_RDATA_LAST) && b->got == b->region_len && !b->done) {
            b->done = 1;
            b->done_us = b->us;
        }
    }
    srv_ack(b);
    srv_next(b);
}

/* One upload; returns the simulated microseconds from BACKUP_REQ to the
 * last chunk executed (0: it did not complete). */
static uint64_t run(uint16_t window, unsigned latency_ms, uint64_t rate, uint32_t region, uint32_t frame,
                    unsigned loss, unsigned *frames, unsigned *retransmits)
{
    bench *b = calloc(1, sizeof *b);
    otaup_simflash_options o;
    otaup_simflash *fl = NULL;
    otaup_apply_config c;
    otaup_geometry geo;
    otaup_msg m;
    uint32_t nsect = 8u + region / S;
    size_t wsz, i;
    uint8_t *img, *work;
    uint64_t result = UINT64_MAX; /* incomplete */
    if (b == NULL) {
        abort();
    }
    b->latency_ms = latency_ms;
    b->rate = rate;
    b->loss_pct = loss;
    b->rng = 42;
    b->window = window;
    b->region_len = region;
    otaup_geometry_uniform(&geo, 0, S, nsect, 8);
    otaup_simflash_options_init(&o);
    o.geo = geo;
    if (otaup_simflash_new(&o, &fl) != 0) {
        abort();
    }
    img = malloc((size_t)nsect * S);
    for (i = 0; i < (size_t)nsect * S; i++) {
        img[i] = (uint8_t)(rnd(b) >> 17);
    }
    (void)otaup_simflash_load(fl, 0, img, nsect * S);
    free(img);
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(fl);
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = 11;
    c.max_ops = 32;
    c.slots[0].addr = 0;
    c.slots[0].len = 4 * S;
    c.scratch.addr = 4 * S;
    c.scratch.len = S;
    c.journal.addr = 5 * S;
    c.journal.len = 2 * S;
    c.updater.addr = 7 * S;
    c.updater.len = S;
    c.regions[0].id = 1;
    c.regions[0].addr = 8 * S;
    c.regions[0].len = region;
    c.nregions = 1;
    c.staging_size = S;
    c.max_frame = frame;
    c.max_msg = 512;
    c.id.terminal_id = "bench";
    c.id.model = "bench";
    c.id.sw_version = "1";
    c.id.build_time = 1;
    c.retransmit_ms = 2u * latency_ms + 500u;
    c.link.ctx = b;
    c.link.send = term_send;
    c.now_ms = term_now;
    c.clock_ctx = b;
    wsz = otaup_apply_work_size(frame, 512, S, 32, 11);
    work = malloc(wsz);
    c.work = work;
    c.work_size = wsz;
    if (otaup_apply_init(&b->ap, &c) != 0) {
        fprintf(stderr, "otaup-bench-backup: bad configuration (frame %u)\n", frame);
        exit(2);
    }
    otaup_decoder_init(&b->dec, b->decbuf, sizeof b->decbuf, SRV_FRAME);
    otaup_reasm_init(&b->ra, b->rabuf, sizeof b->rabuf);
    (void)otaup_apply_connect(&b->ap);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_HELLO;
    m.u.hello.role = 1;
    m.u.hello.proto_min = 1;
    m.u.hello.proto_max = 1;
    m.u.hello.max_frame = SRV_FRAME;
    m.u.hello.max_msg = 2048;
    m.u.hello.window = window;
    srv_msg(b, &m, 1);
    while (!b->done && b->us < 3600ull * 1000000u) {
        size_t best = (size_t)-1;
        for (i = 0; i < b->nq; i++) {
            if (b->q[i].at <= b->us && (best == (size_t)-1 || b->q[i].at < b->q[best].at)) {
                best = i;
            }
        }
        if (best != (size_t)-1) {
            flight f = b->q[best];
            memmove(b->q + best, b->q + best + 1, (b->nq - best - 1) * sizeof *b->q);
            b->nq--;
            if (f.to_term) {
                (void)otaup_apply_feed(&b->ap, f.p, f.n);
            } else {
                size_t off = 0;
                while (off < f.n) {
                    otaup_frame fr;
                    size_t used = 0;
                    int ev = otaup_decoder_feed(&b->dec, f.p + off, f.n - off, &used, &fr);
                    off += used;
                    if (ev == OTAUP_DEC_FRAME) {
                        srv_frame(b, &fr);
                    } else if (ev == OTAUP_DEC_NEED_INPUT) {
                        break;
                    }
                }
            }
            free(f.p);
            continue;
        }
        b->us += 1000u; /* 1 ms: polls and timers */
        if (otaup_apply_poll(&b->ap) == OTAUP_E_RETRIES) {
            break;
        }
        if (b->pend_len && b->us - b->pend_time >= 1000000u) {
            b->pend_time = b->us;
            link_put(b, 1, b->pend, b->pend_len);
        }
    }
    if (b->done) {
        result = b->done_us - b->req_us;
    }
    *frames = b->frames_up;
    *retransmits = b->frames_up > 0 ? b->frames_up - (region + frame - 34u) / (frame - 33u) : 0;
    for (i = 0; i < b->nq; i++) {
        free(b->q[i].p);
    }
    free(b->q);
    free(work);
    otaup_simflash_free(fl);
    free(b);
    return result;
}

int main(int argc, char **argv)
{
    unsigned latency = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 75u;
    uint64_t rate = argc > 2 ? strtoull(argv[2], NULL, 10) : 0u;
    uint32_t region = (argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 64u) * 1024u;
    uint32_t frame = argc > 4 ? (uint32_t)strtoul(argv[4], NULL, 10) : 256u;
    unsigned loss = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 0u;
    static const uint16_t windows[] = { 1, 2, 4, 8, 16, 32 };
    uint64_t base = 0;
    size_t i;
    if (region == 0 || region % S != 0 || frame < 64u || frame > 65536u || loss > 50) {
        fprintf(stderr, "usage: otaup-bench-backup [latency_ms [rate_bit_s [region_kib (multiple of 4) [frame "
                        "(64..65536) [loss_pct (0..50)]]]]]\n");
        return 2;
    }
    printf("backup upload of a %u KiB region, %u-byte terminal frames (%u-byte chunks), %u ms round trip, "
           "rate %llu bit/s (0: unlimited), loss %u%%; applier limit OTAUP_CONFIG_BACKUP_WINDOW = %u\n",
           (unsigned)(region / 1024u), frame, frame - 33u, 2u * latency, (unsigned long long)rate, loss,
           (unsigned)OTAUP_CONFIG_BACKUP_WINDOW);
    printf("%-34s %12s %10s %10s %12s\n", "server window", "time (s)", "frames", "resent", "vs window 1");
    for (i = 0; i < sizeof windows / sizeof windows[0]; i++) {
        unsigned frames = 0, resent = 0;
        uint64_t t = run(windows[i], latency, rate, region, frame, loss, &frames, &resent);
        char name[40];
        snprintf(name, sizeof name, "%u%s", windows[i], windows[i] == 1 ? " (stop-and-wait)" : "");
        if (t == UINT64_MAX) {
            printf("%-34s %12s %10u\n", name, "incomplete", frames);
            continue;
        }
        if (windows[i] == 1) {
            base = t;
        }
        printf("%-34s %12.2f %10u %10u %11.1fx\n", name, (double)t / 1e6, frames, resent,
               base && t ? (double)base / (double)t : 1.0);
    }
    return 0;
}
