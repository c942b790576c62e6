/*
 * An integration of the terminal applier written from the integrator's
 * documents only (README.md, docs/porting.md, docs/api.md,
 * docs/protocol.md and the public headers), as a firmware engineer would
 * write it: no simulated flash or terminal of the library, no server
 * session of the library.
 *
 * - The board: a RAM array behind the integrator's own flash callbacks,
 *   a scaled-down STM32F4 map (porting.md §3: 4 x 16, 1 x 64, 7 x 128 KiB,
 *   here 4 x 1, 1 x 4, 7 x 8 KiB) with NOR semantics (erase to 0xFF,
 *   program only clears bits), checks of every documented promise
 *   (alignment, whole sectors, no unit programmed twice between erases,
 *   nothing written outside the slot being updated) and a power cut
 *   after N operations that tears the last one.
 * - The link: the integrator's send callback, event-driven input
 *   (otaup_apply_connect / otaup_apply_feed / otaup_apply_poll) and a
 *   small server written from protocol.md with the codec of proto.h:
 *   HELLO, INFO (reassembled), START with the delta's header and
 *   sections as its manifest, the body cut into BATCH frames with
 *   MORE/CONT, COMMIT, RESULT; after a reset, START with RESUME and the
 *   stream from the last SYNC at or before INFO's next_step (§5).
 * - The delta: the library's planner (otaup_delta_create) for the
 *   terminal's geometry, layout, staging, window bits and deferred
 *   records.
 * - Memory: one work area of OTAUP_APPLY_WORK_SIZE() bytes, checked
 *   against otaup_apply_work_size().
 *
 * Checked: one in-place and one A/B upgrade end to end, and each again
 * with a power cut (plain and torn) at every flash operation, resumed
 * after the "reboot" (otaup_apply_init over the flash as it is); the same
 * delta through the executor alone (porting.md §1's sequence), cut at
 * every operation; the new image byte for byte, the user-data regions,
 * the updater and the journal's end state; porting.md §3's configuration
 * as printed; INFO against the configuration (protocol.md 3.2); a backup
 * of a region before the update, found damaged after it and restored
 * (3.10, §5); a START above max_msg; the blocking mode
 * (otaup_apply_run over link.recv) in both layouts with a cut. The frame
 * that meets a cut is NACKed with the driver's own code (passed
 * through).
 * A START whose delta header needs more than the terminal has is refused
 * before anything is journaled.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/apply.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/journal.h"
#include "otaup/proto.h"
#include "otaup/record.h"

/* ---- the board ---------------------------------------------------------- */

#define KB 1024u
#define BASE 0x08000000u
#define FLASH_SIZE (4u * KB + 4u * KB + 7u * 8u * KB)
#define WS 4u

/* in place (porting.md §3, scaled by 1/16) */
#define UPDATER_ADDR BASE
#define UPDATER_LEN (1u * KB)
#define JOURNAL_ADDR (BASE + 1u * KB)
#define JOURNAL_LEN (2u * KB)
#define REGION1_ADDR (BASE + 3u * KB)
#define REGION1_LEN (1u * KB)
#define REGION2_ADDR (BASE + 4u * KB)
#define REGION2_LEN (4u * KB)
#define SLOT_ADDR (BASE + 8u * KB)
#define SLOT_LEN (6u * 8u * KB)
#define SCRATCH_ADDR (BASE + 56u * KB)
#define SCRATCH_LEN (8u * KB)
/* A/B: two slots of 3 x 8 KiB (the last 8 KiB sector unused) */
#define SLOTA_ADDR SLOT_ADDR
#define SLOTB_ADDR (SLOT_ADDR + 3u * 8u * KB)
#define SLOTAB_LEN (3u * 8u * KB)

#define CUT_ERROR (OTAUP_E_USER - 7) /* what the "dead" flash answers */

typedef struct board {
    otaup_flash f;
    uint8_t mem[FLASH_SIZE];
    otaup_region writable[3]; /* where an update may write: slot, scratch (and a restored region) */
    long ops;                 /* program and erase calls */
    long cut_at;              /* power cut at this operation (0: never) */
    int torn;                 /* the cut operation does half its work */
    int dead;
    unsigned violations;      /* a broken promise of porting.md §1 */
} board;

static board *board_of(const otaup_flash *f)
{
    return (board *)f->context;
}

static int inside(uint32_t addr, uint32_t len, uint32_t a, uint32_t l)
{
    return addr >= a && len <= l && addr - a <= l - len;
}

static int may_write(board *b, uint32_t addr, uint32_t len)
{
    unsigned i;
    /* the journal is the library's own area: it writes it too */
    if (inside(addr, len, JOURNAL_ADDR, JOURNAL_LEN))
        return 1;
    for (i = 0; i < 3; i++)
        if (b->writable[i].len && inside(addr, len, b->writable[i].addr, b->writable[i].len))
            return 1;
    return 0;
}

static int b_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    board *b = board_of(f);
    if (!inside(addr, len, BASE, FLASH_SIZE)) {
        b->violations++;
        return OTAUP_E_FLASH_READ;
    }
    memcpy(buf, b->mem + (addr - BASE), len);
    return 0;
}

static int b_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    board *b = board_of(f);
    const uint8_t *p = buf;
    uint32_t i, n = len;
    if (b->dead)
        return CUT_ERROR;
    if (addr % WS || len % WS || !inside(addr, len, BASE, FLASH_SIZE) || !may_write(b, addr, len)) {
        b->violations++;
        return OTAUP_E_FLASH_PROG;
    }
    if (++b->ops == b->cut_at) {
        b->dead = 1;
        if (!b->torn)
            return CUT_ERROR;
        n = len / 2u + (len >= 2u * WS ? WS / 2u : 0u); /* torn: ends inside a unit */
    }
    for (i = 0; i < n; i++) {
        uint8_t *m = &b->mem[addr - BASE + i];
        if (i % WS == 0) {
            uint32_t u, erased = 1;
            for (u = 0; u < WS; u++)
                erased &= m[u] == 0xFF;
            if (!erased && !b->dead)
                b->violations++; /* a unit programmed twice between erases */
        }
        *m &= p[i];
    }
    return b->dead ? CUT_ERROR : 0;
}

static int b_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    board *b = board_of(f);
    uint32_t n = len;
    if (b->dead)
        return CUT_ERROR;
    if (!otaup_geometry_is_sector_aligned(&f->geo, addr, len) || !inside(addr, len, BASE, FLASH_SIZE) ||
        !may_write(b, addr, len)) {
        b->violations++;
        return OTAUP_E_FLASH_ERASE;
    }
    if (++b->ops == b->cut_at) {
        b->dead = 1;
        if (!b->torn)
            return CUT_ERROR;
        n = len / 2u; /* a half-erased sector */
    }
    memset(b->mem + (addr - BASE), 0xFF, n);
    return b->dead ? CUT_ERROR : 0;
}

static void board_init(board *b)
{
    uint32_t i;
    memset(b, 0, sizeof *b);
    memset(b->mem, 0xFF, sizeof b->mem);
    b->f.context = b;
    b->f.read = b_read;
    b->f.prog = b_prog;
    b->f.erase = b_erase;
    b->f.sync = NULL;
    b->f.geo.base = BASE;
    b->f.geo.write_size = WS;
    b->f.geo.erased = 0xFF;
    b->f.geo.nruns = 3;
    b->f.geo.runs[0].count = 4;
    b->f.geo.runs[0].size = 1u * KB;
    b->f.geo.runs[1].count = 1;
    b->f.geo.runs[1].size = 4u * KB;
    b->f.geo.runs[2].count = 7;
    b->f.geo.runs[2].size = 8u * KB;
    ck_assert_int_eq(otaup_geometry_check(&b->f.geo), 0);
    ck_assert_uint_eq(otaup_geometry_size(&b->f.geo), FLASH_SIZE);
    /* the updater (a boot stub) and the user's data */
    for (i = 0; i < UPDATER_LEN; i++)
        b->mem[UPDATER_ADDR - BASE + i] = (uint8_t)(0xA5u ^ i);
    for (i = 0; i < REGION1_LEN; i++)
        b->mem[REGION1_ADDR - BASE + i] = (uint8_t)(i * 7u + 1u);
    for (i = 0; i < REGION2_LEN - 100u; i++) /* a log, its end erased */
        b->mem[REGION2_ADDR - BASE + i] = (uint8_t)(i * 13u + 5u);
}

/* ---- images --------------------------------------------------------------- */

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Something firmware-like: runs of structured "code" with some noise. */
static void make_old(uint8_t *img, size_t len, uint32_t seed)
{
    size_t i;
    for (i = 0; i < len; i++) {
        uint32_t r = rnd(&seed);
        img[i] = (r & 7u) ? (uint8_t)((i >> 3) * 31u + (i & 7u)) : (uint8_t)(r >> 8);
    }
}

/* The next version: a block inserted near the start (everything after it
 * moves), some bytes changed here and there, a new tail. */
static size_t make_new(const uint8_t *old, size_t old_len, uint8_t *img, size_t cap, uint32_t seed)
{
    size_t ins = 300, at = 1000, n, i;
    ck_assert_uint_ge(cap, old_len + ins + 700);
    memcpy(img, old, at);
    for (i = 0; i < ins; i++)
        img[at + i] = (uint8_t)rnd(&seed);
    memcpy(img + at + ins, old + at, old_len - at);
    n = old_len + ins;
    for (i = 0; i < 40; i++)
        img[rnd(&seed) % n] ^= (uint8_t)(1u + (rnd(&seed) & 0x7Fu));
    for (i = 0; i < 700; i++)
        img[n + i] = (uint8_t)(i * 3u);
    return n + 700;
}

/* ---- the terminal ---------------------------------------------------------- */

#define MAX_FRAME 256u
#define MAX_MSG 512u /* porting.md §1 "Memory": the largest START manifest */
#define MAX_OPS 32u
#define WBITS 11u
#define STAGING_INPLACE 2048u
#define STAGING_AB (8u * KB) /* porting.md §3: A/B holds a target sector's part */

typedef struct wire {
    uint8_t buf[64u * KB]; /* terminal -> server bytes not yet read */
    size_t len;
} wire;

static int link_send(void *ctx, const uint8_t *buf, size_t len)
{
    wire *w = ctx;
    ck_assert_uint_le(w->len + len, sizeof w->buf);
    memcpy(w->buf + w->len, buf, len);
    w->len += len;
    return (int)len;
}

static uint32_t clock_now(void *ctx)
{
    return *(const uint32_t *)ctx;
}

/* The work area, sized by the documented macro for the larger of the two
 * configurations (static storage, as porting.md §1 shows). */
static uint8_t work[OTAUP_APPLY_WORK_SIZE(MAX_FRAME, MAX_MSG, STAGING_AB, MAX_OPS, WBITS)];

static void config_fill(otaup_apply_config *cfg, board *b, wire *w, uint32_t *clk, uint8_t layout)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->flash = &b->f;
    cfg->layout = layout;
    cfg->window_bits = WBITS;
    cfg->max_ops = MAX_OPS;
    if (layout == OTAUP_LAYOUT_INPLACE) {
        cfg->staging_size = STAGING_INPLACE;
        cfg->slots[0].addr = SLOT_ADDR;
        cfg->slots[0].len = SLOT_LEN;
        cfg->scratch.addr = SCRATCH_ADDR;
        cfg->scratch.len = SCRATCH_LEN;
    } else {
        cfg->staging_size = STAGING_AB;
        cfg->slots[0].addr = SLOTA_ADDR;
        cfg->slots[0].len = SLOTAB_LEN;
        cfg->slots[1].addr = SLOTB_ADDR;
        cfg->slots[1].len = SLOTAB_LEN;
        /* porting.md §1: "in A/B none is needed" */
    }
    cfg->journal.addr = JOURNAL_ADDR;
    cfg->journal.len = JOURNAL_LEN;
    cfg->updater.addr = UPDATER_ADDR;
    cfg->updater.len = UPDATER_LEN;
    cfg->regions[0].id = 1;
    cfg->regions[0].flags = OTAUP_REGION_PERSONAL;
    cfg->regions[0].addr = REGION1_ADDR;
    cfg->regions[0].len = REGION1_LEN;
    cfg->regions[1].id = 2;
    cfg->regions[1].flags = OTAUP_REGION_PERSONAL;
    cfg->regions[1].addr = REGION2_ADDR;
    cfg->regions[1].len = REGION2_LEN;
    cfg->nregions = 2;
    cfg->max_frame = MAX_FRAME;
    cfg->max_msg = MAX_MSG;
    cfg->link.ctx = w;
    cfg->link.send = link_send;
    cfg->link.recv = NULL; /* event-driven */
    cfg->now_ms = clock_now;
    cfg->clock_ctx = clk;
    cfg->id.terminal_id = "F4-0001";
    cfg->id.model = "F4-TERM";
    cfg->id.sw_version = "1.0";
    cfg->id.build_time = 1700000000u;
    cfg->work = work;
    cfg->work_size = otaup_apply_work_size(MAX_FRAME, MAX_MSG, cfg->staging_size, MAX_OPS, WBITS);
    ck_assert_uint_gt(cfg->work_size, 0);
    ck_assert_uint_le(cfg->work_size, sizeof work);
    /* the compile-time and the run-time forms agree */
    ck_assert_uint_eq(otaup_apply_work_size(MAX_FRAME, MAX_MSG, STAGING_AB, MAX_OPS, WBITS), sizeof work);
}

/* ---- the server (protocol.md, written with the codec only) ------------------ */

#define SRV_MAX_FRAME 4096u

typedef struct server {
    /* the update */
    const uint8_t *delta;
    uint32_t body_off, body_len;
    uint64_t session;
    uint8_t commit_action;
    /* per connection */
    otaup_decoder dec;
    uint8_t decbuf[SRV_MAX_FRAME];
    otaup_reasm ra;
    uint8_t rabuf[2048];
    uint32_t tx_seq;       /* next seq of ours */
    uint32_t outstanding;  /* seq of the frame waiting for its ACK */
    int waiting;           /* a frame of ours is unacknowledged */
    uint8_t txf[SRV_MAX_FRAME];
    size_t txf_len;
    int t_any;             /* a terminal frame was executed */
    uint32_t t_last;       /* the last one */
    uint32_t t_max_frame;
    int state;             /* 0 HELLO, 1 wait INFO, 2 START, 3 body, 4 COMMIT, 5 RESULT, 6 done */
    size_t start_off;      /* START fragments sent */
    int resume;
    uint32_t pos;          /* next body byte to send */
    /* what the terminal said */
    int got_info;
    otaup_proto_resume info_resume;
    int got_result;
    int32_t result_code;
    int nacks;
    int32_t last_nack;
    uint32_t expect_max_msg; /* the terminal's max_msg, as its HELLO must say */
    const otaup_apply_config *cfg; /* the terminal's, to check its INFO */
    /* backup and restore of region 1 (protocol.md 3.10, §5), when `backup` */
    int backup;
    uint8_t bk[REGION1_LEN];
    uint32_t bk_len;       /* bytes received */
    int bk_last;           /* the LAST chunk came */
    uint64_t bk_hash;      /* its XXH3-64 */
    int hash_only_got;
    uint64_t now_hash;     /* the HASH_ONLY answer */
    uint32_t rs_off;       /* restore: next offset */
    int restored;
    void (*damage)(void *ctx); /* the new software spoils the user's data */
    void *damage_ctx;
    int queue;             /* blocking mode: frames wait in to_term for link.recv */
    uint8_t to_term[8u * SRV_MAX_FRAME];
    size_t to_len;
} server;

/* A frame to the terminal: fed at once (event-driven), or queued for its
 * link.recv (blocking). */
static void srv_out(server *s, otaup_apply *ap, const uint8_t *f, size_t n)
{
    if (s->queue) {
        ck_assert_uint_le(s->to_len + n, sizeof s->to_term);
        memcpy(s->to_term + s->to_len, f, n);
        s->to_len += n;
        return;
    }
    /* a refused frame (a flash callback that failed: the power cut) is
     * answered with a NACK, not returned (apply.h) */
    ck_assert_int_eq(otaup_apply_feed(ap, f, n), 0);
}

/* Offset of the record that holds body byte `at`'s record start, walking
 * [type][len varint][body] records (protocol.md 3.12); 1 if `at` starts a
 * record (or is the end), else 0. */
static int record_starts_at(const uint8_t *body, uint32_t len, uint32_t at)
{
    uint32_t p = 0;
    while (p < len && p < at) {
        uint32_t blen;
        int n = otaup_varint_get(body + p + 1, len - p - 1, &blen);
        ck_assert_int_gt(n, 0);
        p += 1u + (uint32_t)n + blen;
    }
    return p == at;
}

/* Body offset of the last SYNC whose index is at most `step` (protocol.md
 * §5: where the record stream restarts on a resume). */
static uint32_t sync_offset(const uint8_t *body, uint32_t len, uint32_t step)
{
    uint32_t p = 0, best = 0;
    int found = 0;
    while (p < len) {
        uint32_t blen, idx;
        int n = otaup_varint_get(body + p + 1, len - p - 1, &blen);
        ck_assert_int_gt(n, 0);
        if (body[p] == OTAUP_MSG_SYNC) {
            ck_assert_int_gt(otaup_varint_get(body + p + 1 + n, blen, &idx), 0);
            if (idx <= step) {
                best = p;
                found = 1;
            }
        }
        p += 1u + (uint32_t)n + blen;
    }
    ck_assert_uint_eq(p, len);
    ck_assert(found);
    return best;
}

static void srv_connect(server *s)
{
    ck_assert_int_eq(otaup_decoder_init(&s->dec, s->decbuf, sizeof s->decbuf, SRV_MAX_FRAME), 0);
    ck_assert_int_eq(otaup_reasm_init(&s->ra, s->rabuf, sizeof s->rabuf), 0);
    s->tx_seq = 0;
    s->waiting = 0;
    s->t_any = 0;
    s->t_max_frame = 64;
    s->state = 0;
    s->start_off = 0;
    s->resume = 0;
    s->pos = 0;
    s->got_info = 0;
    s->got_result = 0;
    s->nacks = 0;
    s->to_len = 0;
}

static void srv_ack(server *s, otaup_apply *ap)
{
    otaup_msg m;
    uint8_t f[64];
    int n;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = s->t_last;
    m.u.ack.status = 0;
    m.u.ack.window = 1;
    n = otaup_msg_encode_frame(&m, 0, s->tx_seq, s->t_max_frame, f, sizeof f);
    ck_assert_int_gt(n, 0);
    srv_out(s, ap, f, (size_t)n);
}

/* INFO as protocol.md 3.2 describes it, against the terminal's
 * configuration (what a server plans from). */
static void info_check(const server *s, const otaup_msg_info *in)
{
    const otaup_apply_config *c = s->cfg;
    unsigned i;
    ck_assert_uint_eq(in->terminal_id.len, strlen(c->id.terminal_id));
    ck_assert_mem_eq(in->terminal_id.data, c->id.terminal_id, in->terminal_id.len);
    ck_assert_uint_eq(in->sw_version.len, strlen(c->id.sw_version));
    ck_assert_uint_eq(in->build_time, c->id.build_time);
    ck_assert(in->have & OTAUP_INFO_HAVE_GEOMETRY);
    ck_assert_mem_eq(&in->geometry, &c->flash->geo, sizeof in->geometry);
    ck_assert(in->have & OTAUP_INFO_HAVE_LAYOUT);
    ck_assert_uint_eq(in->layout, c->layout);
    ck_assert_uint_eq(in->slots[0].addr, c->slots[0].addr);
    ck_assert_uint_eq(in->slots[0].len, c->slots[0].len);
    ck_assert_uint_eq(in->slots[1].len, c->layout == OTAUP_LAYOUT_AB ? c->slots[1].len : 0u);
    ck_assert_uint_eq(in->active_slot, 0); /* the image that runs: slot A, or the in-place slot */
    /* the writable window: the running slot in place, the other one in A/B */
    ck_assert_uint_eq(in->nwindows, 1);
    ck_assert_uint_eq(in->windows[0].addr, c->slots[c->layout == OTAUP_LAYOUT_AB ? 1 : 0].addr);
    ck_assert_uint_eq(in->windows[0].len, c->slots[c->layout == OTAUP_LAYOUT_AB ? 1 : 0].len);
    if (c->scratch.len) {
        ck_assert(in->have & OTAUP_INFO_HAVE_SCRATCH);
        ck_assert_uint_eq(in->scratch.addr, c->scratch.addr);
        ck_assert_uint_eq(in->scratch.len, c->scratch.len);
    }
    ck_assert(in->have & OTAUP_INFO_HAVE_MEMORY);
    ck_assert_uint_eq(in->staging_size, c->staging_size);
    ck_assert(in->have & OTAUP_INFO_HAVE_LIMITS);
    ck_assert_uint_eq(in->window_bits, c->window_bits);
    ck_assert_uint_eq(in->max_ops, c->max_ops);
    ck_assert(in->have & OTAUP_INFO_HAVE_MAX_FRAME);
    ck_assert_uint_eq(in->max_frame, c->max_frame);
    ck_assert(in->have & OTAUP_INFO_HAVE_CAPS);
    ck_assert(in->caps & OTAUP_CAP_RESUME);
    ck_assert(in->caps & (c->layout == OTAUP_LAYOUT_AB ? OTAUP_CAP_AB : OTAUP_CAP_INPLACE));
    ck_assert_uint_eq(in->nregions, c->nregions);
    for (i = 0; i < c->nregions; i++) {
        ck_assert_uint_eq(in->regions[i].id, c->regions[i].id);
        ck_assert_uint_eq(in->regions[i].flags, c->regions[i].flags);
        ck_assert_uint_eq(in->regions[i].addr, c->regions[i].addr);
        ck_assert_uint_eq(in->regions[i].len, c->regions[i].len);
    }
}

static void srv_frame(server *s, otaup_apply *ap, const otaup_frame *fr)
{
    otaup_msg m;
    if (!otaup_msg_type_sequenced(fr->type)) {
        if (fr->type == OTAUP_MSG_ACK) {
            ck_assert_int_eq(otaup_ack_decode(fr->payload, fr->payload_len, &m.u.ack), 0);
            if (s->waiting && otaup_seq_cmp(m.u.ack.seq, s->outstanding) >= 0)
                s->waiting = 0;
        } else if (fr->type == OTAUP_MSG_NACK) {
            ck_assert_int_eq(otaup_nack_decode(fr->payload, fr->payload_len, &m.u.nack), 0);
            s->nacks++;
            s->last_nack = m.u.nack.error;
        }
        return; /* PROGRESS: keeps the link alive */
    }
    if (s->t_any && otaup_seq_cmp(fr->seq, s->t_last) <= 0) {
        srv_ack(s, ap); /* a copy: answered, not executed (§4 rule 2) */
        return;
    }
    ck_assert_uint_eq(fr->seq, s->t_any ? s->t_last + 1u : 0u);
    s->t_any = 1;
    s->t_last = fr->seq;
    switch (fr->type) {
    case OTAUP_MSG_HELLO:
        ck_assert_int_eq(otaup_hello_decode(fr->payload, fr->payload_len, &m.u.hello), 0);
        ck_assert_uint_eq(m.u.hello.role, OTAUP_ROLE_TERMINAL);
        ck_assert_uint_eq(m.u.hello.max_frame, MAX_FRAME);
        ck_assert_uint_eq(m.u.hello.max_msg, s->expect_max_msg);
        s->t_max_frame = m.u.hello.max_frame;
        break;
    case OTAUP_MSG_INFO: {
        const uint8_t *msg;
        size_t mlen;
        int rc = otaup_reasm_add(&s->ra, fr, &msg, &mlen);
        ck_assert_int_ge(rc, 0);
        if (rc == 1) {
            ck_assert_int_eq(otaup_info_decode(msg, mlen, &m.u.info), 0);
            info_check(s, &m.u.info);
            s->info_resume = m.u.info.resume;
            s->got_info = 1;
        }
        break;
    }
    case OTAUP_MSG_BACKUP_DATA: {
        const otaup_msg_region_data *d = &m.u.rdata;
        ck_assert_int_eq(otaup_region_data_decode(OTAUP_MSG_BACKUP_DATA, fr->payload, fr->payload_len, &m.u.rdata), 0);
        ck_assert(s->backup);
        ck_assert_uint_eq(d->region, 1);
        ck_assert_uint_eq(d->flags & OTAUP_RDATA_TAG, 0); /* no device key: plain */
        if (d->flags & OTAUP_RDATA_HASH) {
            ck_assert(d->flags & OTAUP_RDATA_LAST);
            ck_assert_uint_eq(d->hash.alg, OTAUP_HASH_XXH3_64);
            ck_assert_uint_eq(d->hash.len, 8);
        }
        if (s->state == 13) { /* HASH_ONLY: one chunk at the region's end */
            uint64_t h = 0;
            int k;
            ck_assert_uint_eq(d->flags, OTAUP_RDATA_LAST | OTAUP_RDATA_HASH);
            ck_assert_uint_eq(d->offset, REGION1_LEN);
            ck_assert_uint_eq(d->data.len, 0);
            for (k = 7; k >= 0; k--)
                h = h << 8 | d->hash.bytes[k];
            s->now_hash = h;
            s->hash_only_got = 1;
            break;
        }
        ck_assert_uint_eq(d->offset, s->bk_len);
        ck_assert_uint_le(d->data.len, 256u);
        ck_assert_uint_le(s->bk_len + d->data.len, sizeof s->bk);
        memcpy(s->bk + s->bk_len, d->data.data, d->data.len);
        s->bk_len += d->data.len;
        if (d->flags & OTAUP_RDATA_LAST) {
            uint64_t h = 0;
            int k;
            ck_assert(d->flags & OTAUP_RDATA_HASH);
            ck_assert_uint_eq(s->bk_len, REGION1_LEN);
            for (k = 7; k >= 0; k--)
                h = h << 8 | d->hash.bytes[k];
            ck_assert(h == otaup_hash64(s->bk, s->bk_len));
            s->bk_hash = h;
            s->bk_last = 1;
        }
        break;
    }
    case OTAUP_MSG_RESULT:
        ck_assert_int_eq(otaup_result_decode(fr->payload, fr->payload_len, &m.u.result), 0);
        ck_assert_uint_eq(m.u.result.session, s->session);
        s->result_code = m.u.result.code;
        s->got_result = 1;
        break;
    default:
        ck_abort_msg("unexpected frame type 0x%02x from the terminal", fr->type);
    }
    srv_ack(s, ap);
}

static void srv_read(server *s, otaup_apply *ap, wire *w)
{
    size_t off = 0;
    while (off < w->len) {
        size_t used = 0;
        otaup_frame fr;
        int ev = otaup_decoder_feed(&s->dec, w->buf + off, w->len - off, &used, &fr);
        off += used;
        if (ev == OTAUP_DEC_NEED_INPUT)
            break;
        ck_assert_int_eq(ev, OTAUP_DEC_FRAME);
        srv_frame(s, ap, &fr);
    }
    /* the frames srv_frame's answers provoked are read on the next call */
    memmove(w->buf, w->buf + off, w->len - off);
    w->len -= off;
}

/* Send our next frame, if the last one was acknowledged. */
static void srv_send(server *s, otaup_apply *ap)
{
    otaup_msg m;
    int n = 0;
    if (s->waiting)
        return;
    memset(&m, 0, sizeof m);
    switch (s->state) {
    case 0: /* HELLO */
        m.type = OTAUP_MSG_HELLO;
        m.u.hello.role = OTAUP_ROLE_SERVER;
        m.u.hello.proto_min = 1;
        m.u.hello.proto_max = 1;
        m.u.hello.max_frame = SRV_MAX_FRAME;
        m.u.hello.max_msg = sizeof s->rabuf;
        m.u.hello.window = 1;
        m.u.hello.caps = OTAUP_CAP_DEFLATE | OTAUP_CAP_BATCH | OTAUP_CAP_INPLACE | OTAUP_CAP_AB |
                         OTAUP_CAP_RESUME;
        n = otaup_msg_encode_frame(&m, 0, s->tx_seq, s->t_max_frame, s->txf, sizeof s->txf);
        s->state = 1;
        break;
    case 10: { /* back up region 1 before the update */
        m.type = OTAUP_MSG_BACKUP_REQ;
        m.u.backup_req.region = 1;
        m.u.backup_req.offset = 0;
        m.u.backup_req.max_chunk = 256;
        n = otaup_msg_encode_frame(&m, 0, s->tx_seq, s->t_max_frame, s->txf, sizeof s->txf);
        s->state = 11;
        break;
    }
    case 11:
        if (!s->bk_last)
            return;
        s->state = 2;
        srv_send(s, ap);
        return;
    case 12: /* after the stream: is the user's data intact? */
        if (s->damage != NULL)
            s->damage(s->damage_ctx);
        m.type = OTAUP_MSG_BACKUP_REQ;
        m.u.backup_req.region = 1;
        m.u.backup_req.flags = OTAUP_BACKUP_HASH_ONLY;
        m.u.backup_req.max_chunk = 256;
        n = otaup_msg_encode_frame(&m, 0, s->tx_seq, s->t_max_frame, s->txf, sizeof s->txf);
        s->state = 13;
        break;
    case 13:
        if (!s->hash_only_got)
            return;
        s->state = s->now_hash == s->bk_hash ? 4 : 14;
        srv_send(s, ap);
        return;
    case 14: { /* restore region 1 from the backup, its hash on the LAST chunk */
        uint8_t payload[512];
        otaup_msg_region_data d;
        /* a frame of the terminal's max_frame holds 16 + 8 + 9 (the LAST
         * chunk's hash) + data; every chunk but the last a multiple of the
         * write size (OTAUP_E_ALIGN otherwise) */
        uint32_t room = (s->t_max_frame - OTAUP_FRAME_OVERHEAD - 8u - 9u) & ~(WS - 1u);
        uint32_t len = s->bk_len - s->rs_off < room ? s->bk_len - s->rs_off : room;
        int k;
        memset(&d, 0, sizeof d);
        d.region = 1;
        d.offset = s->rs_off;
        d.data.data = s->bk + s->rs_off;
        d.data.len = len;
        if (s->rs_off + len == s->bk_len) {
            d.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
            d.hash.alg = OTAUP_HASH_XXH3_64;
            d.hash.len = 8;
            for (k = 0; k < 8; k++)
                d.hash.bytes[k] = (uint8_t)(s->bk_hash >> (8 * k));
        }
        n = otaup_region_data_encode(OTAUP_MSG_RESTORE_DATA, &d, payload, sizeof payload);
        ck_assert_int_gt(n, 0);
        n = otaup_frame_encode(OTAUP_MSG_RESTORE_DATA, 0, s->tx_seq, payload, (size_t)n, s->txf, sizeof s->txf);
        s->rs_off += len;
        if (s->rs_off == s->bk_len) {
            s->restored = 1;
            s->state = 4;
        }
        break;
    }
    case 1: /* wait for INFO */
        if (!s->got_info)
            return;
        if (s->backup && !s->bk_last) {
            s->state = 10;
            srv_send(s, ap);
            return;
        }
        if (s->info_resume.session != 0) {
            ck_assert_uint_eq(s->info_resume.session, s->session);
            s->resume = 1;
            s->pos = sync_offset(s->delta + s->body_off, s->body_len, s->info_resume.next_step);
        }
        s->state = 2;
        /* fall through */
    case 2: { /* START, fragmented to the terminal's frames */
        uint8_t payload[2048];
        m.type = OTAUP_MSG_START;
        m.u.start.session = s->session;
        m.u.start.flags = s->resume ? OTAUP_START_RESUME : 0;
        m.u.start.manifest.data = s->delta;
        m.u.start.manifest.len = s->body_off;
        n = otaup_start_encode(&m.u.start, payload, sizeof payload);
        ck_assert_int_gt(n, 0);
        n = otaup_frag_next(OTAUP_MSG_START, 0, s->tx_seq, payload, (size_t)n, &s->start_off,
                            s->t_max_frame, s->txf, sizeof s->txf);
        ck_assert_int_gt(n, 0);
        if (s->start_off == 12u + s->body_off)
            s->state = 3;
        break;
    }
    case 3: { /* the body in BATCH frames */
        const uint8_t *body = s->delta + s->body_off;
        uint32_t len = s->body_len - s->pos, cap = s->t_max_frame - OTAUP_FRAME_OVERHEAD;
        uint8_t flags = 0;
        if (len > cap)
            len = cap;
        if (!record_starts_at(body, s->body_len, s->pos))
            flags |= OTAUP_FLAG_CONT;
        if (!record_starts_at(body, s->body_len, s->pos + len))
            flags |= OTAUP_FLAG_MORE;
        n = otaup_frame_encode(OTAUP_MSG_BATCH, flags, s->tx_seq, body + s->pos, len, s->txf, sizeof s->txf);
        s->pos += len;
        if (s->pos == s->body_len)
            s->state = s->backup ? 12 : 4;
        break;
    }
    case 4:
        m.type = OTAUP_MSG_COMMIT;
        m.u.commit.session = s->session;
        m.u.commit.action = s->commit_action;
        n = otaup_msg_encode_frame(&m, 0, s->tx_seq, s->t_max_frame, s->txf, sizeof s->txf);
        s->state = 5;
        break;
    default:
        return;
    }
    ck_assert_int_gt(n, 0);
    s->txf_len = (size_t)n;
    s->outstanding = s->tx_seq++;
    s->waiting = 1;
    srv_out(s, ap, s->txf, s->txf_len);
}

/* ---- one upgrade --------------------------------------------------------- */

typedef struct rig {
    board b;
    wire w;
    uint32_t clk;
    otaup_apply_config cfg;
    otaup_apply ap;
    server s;
    otaup_delta *d;
    uint8_t old_img[48u * KB], new_img[48u * KB];
    size_t old_len, new_len;
    uint32_t src, dst;
    uint32_t plan_staging;  /* 0: the terminal's (what INFO reports) */
    uint8_t plan_wbits;     /* 0: the terminal's */
    int stop_at_nack;       /* a NACK ends the run instead of failing it */
} rig;

static void rig_plan(rig *r, uint8_t layout)
{
    otaup_delta_options opt;
    otaup_delta_header hdr;
    size_t dlen;
    const uint8_t *bytes;
    uint32_t body_off;

    ck_assert_int_eq(otaup_delta_options_init(&opt, OTAUP_DELTA_OPTIONS_VERSION), 0);
    opt.geo = r->b.f.geo;
    opt.layout = layout;
    opt.source_addr = r->src;
    opt.target_addr = r->dst;
    if (layout == OTAUP_LAYOUT_INPLACE) {
        opt.scratch_addr = SCRATCH_ADDR;
        opt.scratch_size = SCRATCH_LEN;
    }
    /* the terminal's means (INFO MEMORY and LIMITS) */
    opt.staging_size = r->plan_staging ? r->plan_staging : r->cfg.staging_size;
    opt.window_bits = r->plan_wbits ? r->plan_wbits : WBITS;
    opt.max_ops = MAX_OPS;
    ck_assert_int_eq(otaup_delta_create(r->old_img, r->old_len, NULL, r->new_img, r->new_len, &opt, &r->d), 0);
    bytes = otaup_delta_bytes(r->d, &dlen);
    ck_assert_int_eq(otaup_delta_check(bytes, dlen, &hdr, &body_off), 0);
    ck_assert_uint_eq(hdr.geo.nruns, 3);
    r->s.delta = bytes;
    r->s.body_off = body_off;
    r->s.body_len = hdr.body_len;
    ck_assert_uint_eq(body_off + hdr.body_len, dlen);
    /* the manifest (header and sections) must fit the terminal's max_msg */
    ck_assert_msg(body_off + 12u <= MAX_MSG, "START of %u bytes > max_msg %u", body_off + 12u, MAX_MSG);
}

static void rig_init2(rig *r, uint8_t layout, uint32_t seed, uint32_t plan_staging, uint8_t plan_wbits)
{
    size_t cap;
    memset(r, 0, sizeof *r);
    r->plan_staging = plan_staging;
    r->plan_wbits = plan_wbits;
    board_init(&r->b);
    if (layout == OTAUP_LAYOUT_INPLACE) {
        r->old_len = 40u * KB + 123u;
        r->src = r->dst = SLOT_ADDR;
        r->b.writable[0].addr = SLOT_ADDR;
        r->b.writable[0].len = SLOT_LEN;
        r->b.writable[1].addr = SCRATCH_ADDR;
        r->b.writable[1].len = SCRATCH_LEN;
        cap = SLOT_LEN;
    } else {
        r->old_len = 20u * KB + 77u;
        r->src = SLOTA_ADDR;
        r->dst = SLOTB_ADDR;
        r->b.writable[0].addr = SLOTB_ADDR;
        r->b.writable[0].len = SLOTAB_LEN;
        cap = SLOTAB_LEN;
    }
    make_old(r->old_img, r->old_len, seed);
    r->new_len = make_new(r->old_img, r->old_len, r->new_img, cap, seed * 3u + 1u);
    ck_assert_uint_le(r->new_len, cap);
    memcpy(r->b.mem + (r->src - BASE), r->old_img, r->old_len);
    config_fill(&r->cfg, &r->b, &r->w, &r->clk, layout);
    rig_plan(r, layout);
    r->s.session = 4242;
    r->s.commit_action = layout == OTAUP_LAYOUT_AB ? OTAUP_COMMIT_SWITCH : OTAUP_COMMIT_DONE;
}

static void rig_init(rig *r, uint8_t layout, uint32_t seed)
{
    rig_init2(r, layout, seed, 0, 0);
}

/* Power on (or a reset): mount, connect, run until done or the power
 * goes. Returns 1 when the session ended with an acknowledged RESULT. */
static int rig_boot_and_run(rig *r)
{
    unsigned i;
    int rc;
    memset(&r->ap, 0, sizeof r->ap);
    r->w.len = 0;
    rc = otaup_apply_init(&r->ap, &r->cfg);
    ck_assert_msg(rc == 0, "otaup_apply_init: %s", otaup_strerror(rc));
    srv_connect(&r->s);
    r->s.expect_max_msg = r->cfg.max_msg;
    r->s.cfg = &r->cfg;
    ck_assert_int_eq(otaup_apply_connect(&r->ap), 0);
    for (i = 0; i < 200000u; i++) {
        srv_read(&r->s, &r->ap, &r->w);
        if (r->b.dead) {
            /* the frame that met the cut was refused with the driver's own
             * code, passed through (porting.md §1; <= OTAUP_E_USER) */
            ck_assert_int_eq(r->s.nacks, 1);
            ck_assert_int_eq(r->s.last_nack, CUT_ERROR);
            return 0;
        }
        if (r->s.got_result && !r->s.waiting) {
            srv_read(&r->s, &r->ap, &r->w);
            break;
        }
        if (r->s.nacks && r->stop_at_nack)
            return 0;
        if (r->s.nacks) {
            ck_assert_msg(0, "NACK %s (%d) in state %d", otaup_strerror(r->s.last_nack), r->s.last_nack,
                          r->s.state);
        }
        srv_send(&r->s, &r->ap);
        if (r->b.dead)
            continue; /* its NACK is read at the top */
        r->clk += 5;
        rc = otaup_apply_poll(&r->ap);
        if (r->b.dead)
            continue;
        ck_assert_int_eq(rc, 0);
    }
    ck_assert_msg(r->s.got_result, "no RESULT after %u rounds (server state %d)", i, r->s.state);
    ck_assert_int_eq(r->s.result_code, 0);
    ck_assert_int_eq(otaup_apply_done(&r->ap), 1);
    ck_assert_int_eq(otaup_apply_result(&r->ap), 0);
    return 1;
}

static void rig_check(rig *r, uint8_t layout)
{
    uint32_t i;
    otaup_journal j;
    ck_assert_uint_eq(r->b.violations, 0);
    ck_assert_mem_eq(r->b.mem + (r->dst - BASE), r->new_img, r->new_len);
    for (i = 0; i < UPDATER_LEN; i++)
        ck_assert_uint_eq(r->b.mem[UPDATER_ADDR - BASE + i], (uint8_t)(0xA5u ^ i));
    for (i = 0; i < REGION1_LEN; i++)
        ck_assert_uint_eq(r->b.mem[REGION1_ADDR - BASE + i], (uint8_t)(i * 7u + 1u));
    for (i = 0; i < REGION2_LEN; i++)
        ck_assert_uint_eq(r->b.mem[REGION2_ADDR - BASE + i],
                          i < REGION2_LEN - 100u ? (uint8_t)(i * 13u + 5u) : 0xFFu);
    if (layout == OTAUP_LAYOUT_AB)
        ck_assert_mem_eq(r->b.mem + (r->src - BASE), r->old_img, r->old_len);
    /* porting.md §2, the boot decision */
    ck_assert_int_eq(otaup_journal_mount(&j, &r->b.f, JOURNAL_ADDR, JOURNAL_LEN), 0);
    ck_assert_uint_eq(j.st.session, OTAUP_JS_ENDED);
    ck_assert_int_eq(j.st.result, 0);
    ck_assert_int_eq(otaup_journal_boot_slot(&r->b.f, JOURNAL_ADDR, JOURNAL_LEN),
                     layout == OTAUP_LAYOUT_AB ? 1 : 0);
}

static void rig_free(rig *r)
{
    otaup_delta_free(r->d);
}

static rig R; /* large: static storage */

START_TEST(inplace_end_to_end)
{
    rig_init(&R, OTAUP_LAYOUT_INPLACE, 11);
    ck_assert_int_eq(rig_boot_and_run(&R), 1);
    rig_check(&R, OTAUP_LAYOUT_INPLACE);
    rig_free(&R);
}
END_TEST

START_TEST(ab_end_to_end)
{
    rig_init(&R, OTAUP_LAYOUT_AB, 23);
    ck_assert_int_eq(rig_boot_and_run(&R), 1);
    rig_check(&R, OTAUP_LAYOUT_AB);
    rig_free(&R);
}
END_TEST

/* An upgrade with a power cut at every flash operation, plain and torn,
 * then a reboot (otaup_apply_init over the flash as the cut left it) and
 * the server's resume (protocol.md §5). */
static void power_cut_sweep(uint8_t layout, uint32_t seed)
{
    long total, cut;
    int torn;
    unsigned rebuilds = 0, resumes = 0;
    rig_init(&R, layout, seed);
    ck_assert_int_eq(rig_boot_and_run(&R), 1);
    total = R.b.ops;
    rig_free(&R);
    ck_assert_int_gt(total, 10);
    for (torn = 0; torn < 2; torn++) {
        for (cut = 1; cut <= total; cut++) {
            int boots = 0, ok = 0;
            rig_init(&R, layout, seed);
            R.b.cut_at = cut;
            R.b.torn = torn;
            while (!ok) {
                ck_assert_msg(++boots <= 2, "cut %ld%s: not done after %d boots", cut, torn ? " torn" : "",
                              boots - 1);
                ok = rig_boot_and_run(&R);
                if (!ok) {
                    /* the power comes back */
                    R.b.dead = 0;
                    R.b.cut_at = 0;
                }
            }
            ck_assert_int_eq(boots, 2);
            rebuilds += otaup_apply_exec(&R.ap)->stats.sector_rebuilds;
            resumes += R.s.resume;
            rig_check(&R, layout);
            rig_free(&R);
        }
    }
    if (getenv("PORTREV_DEBUG"))
        fprintf(stderr, "layout %u: %ld operations, %u resumes, %u sector rebuilds\n", layout, total, resumes,
                rebuilds);
    ck_assert_uint_gt(resumes, (unsigned)total);
    if (layout == OTAUP_LAYOUT_INPLACE)
        ck_assert_uint_gt(rebuilds, 0); /* a torn step inside an 8 KiB sector */
}

START_TEST(inplace_power_cut_resume)
{
    power_cut_sweep(OTAUP_LAYOUT_INPLACE, 11);
}
END_TEST

START_TEST(ab_power_cut_resume)
{
    power_cut_sweep(OTAUP_LAYOUT_AB, 23);
}
END_TEST

/* protocol.md §5 with the user's data: region 1 backed up before the
 * update, found damaged after it (the new software spoiled it: here the
 * test writes into the board), restored from the backup (RESTORE_DATA,
 * its XXH3-64 on the LAST chunk), then COMMIT. */
static void spoil_region1(void *ctx)
{
    board *b = ctx;
    memset(b->mem + (REGION1_ADDR - BASE) + 100, 0x00, 200);
}

START_TEST(backup_and_restore)
{
    uint8_t layout;
    for (layout = 0; layout < 2; layout++) {
        rig_init(&R, layout, 41);
        R.s.backup = 1;
        R.s.damage = spoil_region1;
        R.s.damage_ctx = &R.b;
        R.b.writable[2].addr = REGION1_ADDR; /* a restore writes it */
        R.b.writable[2].len = REGION1_LEN;
        ck_assert_int_eq(rig_boot_and_run(&R), 1);
        ck_assert(R.s.bk_last);
        ck_assert(R.s.hash_only_got);
        ck_assert(R.s.now_hash != R.s.bk_hash);
        ck_assert(R.s.restored);
        rig_check(&R, layout); /* region 1 as it was */
        rig_free(&R);
    }
}
END_TEST

/* ---- blocking mode: otaup_apply_run over link.recv ------------------------ */

static int blk_send(void *ctx, const uint8_t *buf, size_t len)
{
    return link_send(&((rig *)ctx)->w, buf, len);
}

/* apply.h: up to cap bytes within timeout_ms; 0 on timeout, OTAUP_E_CLOSED
 * when the link is gone (here: the board lost its power). The server runs
 * here, between the applier's reads. */
static int blk_recv(void *ctx, uint8_t *buf, size_t cap, uint32_t timeout_ms)
{
    rig *r = ctx;
    size_t n;
    if (r->b.dead)
        return OTAUP_E_CLOSED;
    if (r->s.to_len == 0) {
        srv_read(&r->s, &r->ap, &r->w);
        ck_assert_int_eq(r->s.nacks, 0);
        srv_send(&r->s, &r->ap);
    }
    if (r->s.to_len == 0) {
        r->clk += timeout_ms;
        ck_assert_uint_lt(r->clk, 3600000u); /* bounded */
        return 0;
    }
    n = r->s.to_len < cap ? r->s.to_len : cap;
    memcpy(buf, r->s.to_term, n);
    memmove(r->s.to_term, r->s.to_term + n, r->s.to_len - n);
    r->s.to_len -= n;
    return (int)n;
}

static int blk_boot_and_run(rig *r)
{
    int rc;
    memset(&r->ap, 0, sizeof r->ap);
    r->w.len = 0;
    r->cfg.link.ctx = r;
    r->cfg.link.send = blk_send;
    r->cfg.link.recv = blk_recv;
    ck_assert_int_eq(otaup_apply_init(&r->ap, &r->cfg), 0);
    srv_connect(&r->s);
    r->s.queue = 1;
    r->s.expect_max_msg = r->cfg.max_msg;
    r->s.cfg = &r->cfg;
    rc = otaup_apply_run(&r->ap, 30000u); /* it connects (HELLO) itself */
    if (r->b.dead) {
        ck_assert_int_eq(rc, OTAUP_E_CLOSED);
        return 0;
    }
    ck_assert_msg(rc == 0, "otaup_apply_run: %s", otaup_strerror(rc));
    ck_assert(r->s.got_result);
    ck_assert_int_eq(otaup_apply_done(&r->ap), 1);
    return 1;
}

/* Both layouts through otaup_apply_run, with a power cut in the middle. */
START_TEST(blocking_run_with_cut)
{
    uint8_t layout;
    for (layout = 0; layout < 2; layout++) {
        long total;
        int boots = 0;
        rig_init(&R, layout, 31);
        ck_assert_int_eq(blk_boot_and_run(&R), 1);
        total = R.b.ops;
        rig_check(&R, layout);
        rig_free(&R);
        rig_init(&R, layout, 31);
        R.b.cut_at = total / 2;
        R.b.torn = 1;
        while (!blk_boot_and_run(&R)) {
            ck_assert_int_le(++boots, 1);
            R.b.dead = 0;
            R.b.cut_at = 0;
        }
        ck_assert_int_eq(boots, 1);
        ck_assert(R.s.resume);
        rig_check(&R, layout);
        rig_free(&R);
    }
}
END_TEST

/* ---- the executor alone (a delta the terminal got by its own means) ----- */

/* api.md "Entry points", in that order: mount the journal, size and
 * initialise the executor, check the delta's needs, start (or resume) the
 * session, feed the body, finish. Returns 1 when the update ended, 0 when
 * the power went. */
static uint8_t exwork[OTAUP_EXEC_WORK_SIZE(STAGING_INPLACE, MAX_OPS, WBITS)];

static int exec_only_boot(rig *r)
{
    static otaup_journal j;
    static otaup_exec ex;
    otaup_exec_config c;
    otaup_region win = { SLOT_ADDR, SLOT_LEN };
    otaup_region protect[3] = { { UPDATER_ADDR, UPDATER_LEN }, { REGION1_ADDR, REGION1_LEN },
                                { REGION2_ADDR, REGION2_LEN } };
    otaup_delta_header h;
    const uint8_t *body = r->s.delta + r->s.body_off;
    uint32_t pos = 0;
    uint64_t delta_id = 0;
    int rc, i;

    ck_assert_int_eq(otaup_journal_mount(&j, &r->b.f, JOURNAL_ADDR, JOURNAL_LEN), 0);
    memset(&c, 0, sizeof c);
    c.flash = &r->b.f;
    c.journal = &j;
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = WBITS;
    c.windows = &win;
    c.nwindows = 1;
    c.protect = protect;
    c.nprotect = 3;
    c.scratch.addr = SCRATCH_ADDR;
    c.scratch.len = SCRATCH_LEN;
    c.running = win;
    c.work = exwork;
    c.work_size = otaup_exec_work_size(STAGING_INPLACE, MAX_OPS, WBITS);
    ck_assert_uint_eq(c.work_size, sizeof exwork);
    c.staging_size = STAGING_INPLACE;
    c.max_ops = MAX_OPS;
    ck_assert_int_eq(otaup_exec_init(&ex, &c), 0);
    ck_assert_int_gt(otaup_delta_header_decode(r->s.delta, r->s.body_off, &h), 0);
    ck_assert_int_eq(otaup_exec_check_limits(&ex, h.staging_size, h.max_ops, h.window_bits), 0);
    /* the update's id: the header's check, its last 8 bytes, as the
     * protocol applier takes it (protocol.md 3.5) */
    for (i = 0; i < 8; i++)
        delta_id |= (uint64_t)r->s.delta[h.header_size - 8u + (unsigned)i] << (8 * i);
    rc = otaup_exec_start(&ex, 7, delta_id, 0);
    if (r->b.dead)
        return 0;
    ck_assert_int_ge(rc, 0);
    if (rc == 2)
        return 1;
    otaup_exec_set_step_count(&ex, h.step_count);
    if (rc == 1) /* exec.h: restart at the last SYNC at or before the next step */
        pos = sync_offset(body, r->s.body_len, otaup_exec_next_step(&ex));
    while (pos < r->s.body_len) {
        uint32_t n = r->s.body_len - pos < 100u ? r->s.body_len - pos : 100u;
        rc = otaup_exec_feed(&ex, body + pos, n);
        if (r->b.dead) {
            ck_assert_int_eq(rc, CUT_ERROR);
            return 0;
        }
        ck_assert_msg(rc == 0, "otaup_exec_feed: %s", otaup_strerror(rc));
        pos += n;
    }
    rc = otaup_exec_finish(&ex);
    if (r->b.dead)
        return 0;
    ck_assert_msg(rc == 0, "otaup_exec_finish: %s", otaup_strerror(rc));
    return 1;
}

START_TEST(exec_only_power_cut_resume)
{
    long total, cut;
    rig_init(&R, OTAUP_LAYOUT_INPLACE, 11);
    ck_assert_int_eq(exec_only_boot(&R), 1);
    total = R.b.ops;
    rig_check(&R, OTAUP_LAYOUT_INPLACE);
    rig_free(&R);
    for (cut = 1; cut <= total; cut++) {
        int boots = 0, ok = 0;
        rig_init(&R, OTAUP_LAYOUT_INPLACE, 11);
        R.b.cut_at = cut;
        R.b.torn = (int)(cut & 1);
        while (!ok) {
            ck_assert_int_le(++boots, 2);
            ok = exec_only_boot(&R);
            R.b.dead = 0;
            R.b.cut_at = 0;
        }
        rig_check(&R, OTAUP_LAYOUT_INPLACE);
        rig_free(&R);
    }
}
END_TEST

/* porting.md "Memory": a START (12 + the delta's header and sections)
 * one byte above max_msg is refused with NACK(OTAUP_E_FRAGMENT) before
 * anything is journaled; at max_msg exactly it is taken. */
START_TEST(start_above_max_msg)
{
    otaup_journal j;
    uint32_t start_len;
    rig_init(&R, OTAUP_LAYOUT_INPLACE, 11);
    start_len = 12u + R.s.body_off;
    R.cfg.max_msg = start_len - 1u;
    R.cfg.work_size = otaup_apply_work_size(MAX_FRAME, R.cfg.max_msg, R.cfg.staging_size, MAX_OPS, WBITS);
    R.stop_at_nack = 1;
    ck_assert_int_eq(rig_boot_and_run(&R), 0);
    ck_assert_int_eq(R.s.nacks, 1);
    ck_assert_int_eq(R.s.last_nack, OTAUP_E_FRAGMENT);
    ck_assert_uint_eq(R.b.ops, 0);
    ck_assert_int_eq(otaup_journal_mount(&j, &R.b.f, JOURNAL_ADDR, JOURNAL_LEN), 0);
    ck_assert_uint_eq(j.st.session, OTAUP_JS_NONE);
    rig_free(&R);

    rig_init(&R, OTAUP_LAYOUT_INPLACE, 11);
    R.cfg.max_msg = start_len;
    R.cfg.work_size = otaup_apply_work_size(MAX_FRAME, R.cfg.max_msg, R.cfg.staging_size, MAX_OPS, WBITS);
    ck_assert_int_eq(rig_boot_and_run(&R), 1);
    rig_check(&R, OTAUP_LAYOUT_INPLACE);
    rig_free(&R);
}
END_TEST

/* porting.md §3's configuration as printed (the F4 map at full size),
 * completed with what its comment leaves out, initialises and says
 * HELLO. */
#define F4_SIZE (1024u * KB)
static uint8_t f4_mem[F4_SIZE];

static int f4_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    (void)f;
    ck_assert(inside(addr, len, BASE, F4_SIZE));
    memcpy(buf, f4_mem + (addr - BASE), len);
    return 0;
}

static int f4_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    uint32_t i;
    (void)f;
    ck_assert(inside(addr, len, BASE, F4_SIZE));
    for (i = 0; i < len; i++)
        f4_mem[addr - BASE + i] &= ((const uint8_t *)buf)[i];
    return 0;
}

static int f4_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    (void)f;
    ck_assert(inside(addr, len, BASE, F4_SIZE));
    memset(f4_mem + (addr - BASE), 0xFF, len);
    return 0;
}

static const otaup_flash f4_flash = {
    NULL, f4_read, f4_prog, f4_erase, NULL,
    { 0x08000000, 4, 0xFF, 3, { { 4, 16384 }, { 1, 65536 }, { 7, 131072 } } },
};

static uint8_t f4_work[OTAUP_APPLY_WORK_SIZE(256u, 512u, 4096u, 32u, 11u)];

START_TEST(porting_f4_example)
{
    static const otaup_apply_config example = {
        .flash = &f4_flash, /* geo: base 0x08000000, write_size 4,
                               runs {4,16K}, {1,64K}, {7,128K} */
        .layout = OTAUP_LAYOUT_INPLACE,
        .window_bits = 11, .max_ops = 32, .staging_size = 4096,
        .slots = { { 0x08020000, 6 * 131072 } },
        .scratch = { 0x080E0000, 131072 },
        .journal = { 0x08004000, 2 * 16384 },
        .updater = { 0x08000000, 16384 },
        .regions = { { 1, OTAUP_REGION_PERSONAL, 0x0800C000, 16384 },
                     { 2, OTAUP_REGION_PERSONAL, 0x08010000, 65536 } },
        .nregions = 2,
        .max_frame = 256, .max_msg = 512,
        /* link, now_ms, id, work, work_size ... */
    };
    otaup_apply_config cfg = example;
    static otaup_apply ap;
    static wire w;
    uint32_t clk = 0;
    memset(f4_mem, 0xFF, sizeof f4_mem);
    ck_assert_int_eq(otaup_geometry_check(&f4_flash.geo), 0);
    cfg.link.ctx = &w;
    cfg.link.send = link_send;
    cfg.now_ms = clock_now;
    cfg.clock_ctx = &clk;
    cfg.id.terminal_id = "F4-0002";
    cfg.id.model = "F4-TERM";
    cfg.id.sw_version = "1.0";
    cfg.id.build_time = 1700000000u;
    cfg.work = f4_work;
    cfg.work_size = sizeof f4_work;
    ck_assert_uint_eq(otaup_apply_work_size(256u, 512u, 4096u, 32u, 11u), sizeof f4_work);
    ck_assert_int_eq(otaup_apply_init(&ap, &cfg), 0);
    w.len = 0;
    ck_assert_int_eq(otaup_apply_connect(&ap), 0);
    ck_assert_uint_eq(w.len, OTAUP_FRAME_OVERHEAD + OTAUP_HELLO_SIZE);
    /* one byte of work less is refused */
    cfg.work_size--;
    ck_assert_int_eq(otaup_apply_init(&ap, &cfg), OTAUP_E_BUFFER);
}
END_TEST

/*
 * delta-format.md: "The terminal additionally refuses a delta whose needs
 * exceed its means (otaup_exec_check_limits())". The protocol applier
 * checks the delta header that START's manifest begins with (protocol.md
 * 3.5) before it journals anything: START is refused with the code of
 * otaup_exec_check_limits(), the slot untouched. (Accepted, the stream
 * would be refused at the step that exceeds the means, in place past the
 * point of no return: the terminal could then neither finish, nor take a
 * corrected delta, nor abort.)
 */
static void over_limit(uint32_t plan_staging, uint8_t plan_wbits, int code)
{
    otaup_journal j;
    rig_init2(&R, OTAUP_LAYOUT_INPLACE, 11, plan_staging, plan_wbits);
    R.stop_at_nack = 1;
    ck_assert_int_eq(rig_boot_and_run(&R), 0);
    ck_assert_int_eq(R.s.nacks, 1);
    ck_assert_msg(R.s.last_nack == code, "NACK %s, expected %s", otaup_strerror(R.s.last_nack),
                  otaup_strerror(code));
    ck_assert_msg(R.s.state == 3 && R.s.pos == 0, "refused in the body (server state %d, body byte %u)",
                  R.s.state, R.s.pos);
    ck_assert_mem_eq(R.b.mem + (SLOT_ADDR - BASE), R.old_img, R.old_len);
    ck_assert_int_eq(otaup_journal_mount(&j, &R.b.f, JOURNAL_ADDR, JOURNAL_LEN), 0);
    ck_assert_uint_eq(j.st.ponr, 0);
    rig_free(&R);
}

START_TEST(start_staging_over_limit)
{
    over_limit(2u * STAGING_INPLACE, 0, OTAUP_E_STAGING);
}
END_TEST

START_TEST(start_window_over_limit)
{
    over_limit(0, WBITS + 1u, OTAUP_E_UNSUPPORTED);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("portrev_integrate");
    TCase *t = tcase_create("integrate");
    tcase_set_timeout(t, 300);
    tcase_add_test(t, inplace_end_to_end);
    tcase_add_test(t, ab_end_to_end);
    tcase_add_test(t, inplace_power_cut_resume);
    tcase_add_test(t, ab_power_cut_resume);
    tcase_add_test(t, porting_f4_example);
    tcase_add_test(t, start_above_max_msg);
    tcase_add_test(t, blocking_run_with_cut);
    tcase_add_test(t, backup_and_restore);
    tcase_add_test(t, exec_only_power_cut_resume);
    tcase_add_test(t, start_staging_over_limit);
    tcase_add_test(t, start_window_over_limit);
    suite_add_tcase(s, t);
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
