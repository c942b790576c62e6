/*
 * otaup — the session driver's state machine (docs/server.md).
 * Server side, C11, allocates. One struct per terminal, no global state.
 *
 * Output: every sequenced message takes the next sequence number. Control
 * messages (HELLO, NOTIFY, BACKUP_REQ, SIG_REQ, START, COMMIT, PING) wait
 * in a queue until acknowledged and go back N on a NACK or a timeout; the
 * BATCH and RESTORE streams (session_tx.c) are numbered in one block and
 * sent under the same window once the queue is empty. The two never
 * interleave, so the terminal always sees one gap-free sequence.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/proto.h"
#include "otaup/record.h"
#include "otaup/session.h"
#include "otaup/sign.h"
#include "server/regcrypt.h"
#include "server/registry_live.h"
#include "server/session_core.h"
#include "server/session_tx.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define CQ 16                /* control messages queued */
#define MAX_RESTORE_ROUNDS 2
#define BACKUP_RETRIES 3

enum { SIG_NONE = 0, SIG_ASKED, SIG_DONE, SIG_REFUSED };

struct ctlent {
    otaup_sm m;
    uint8_t *owned;  /* data */
    char *text, *version;
    uint32_t nframes, maxf;
    uint8_t sent;
    uint8_t resent;  /* sent more than once (no RTT sample) */
    uint64_t first_sent;
};

struct otaup_session {
    otaup_session_options o;
    otaup_session_state st;
    int result;
    int finished;
    otaup_swire *wire;
    uint64_t now, last_rx, last_tx, t_next;
    int clock_started;
    /* terminal */
    otaup_sm_info info;
    int have_info;
    otaup_reg_terminal term;
    otaup_reg_release rel;
    otaup_reg_session rs;
    uint64_t sent_base;   /* rs.bytes_sent and rs.retransmits of the session's */
    uint32_t retx_base;   /* earlier connections (a resumed session's row) */
    int src_known;   /* term.image_hash names the image it runs (reported or from its version) */
    int src_trusted; /* ... and that was checked (INFO hash, or its signature) */
    int resuming;
    uint32_t resume_step;
    int term_knows;  /* START of this session went out (now or in an earlier connection) */
    int claimed;     /* this session holds info.id in the registry's live set */
    char req_source[16]; /* who asked for this upgrade, when this connection took the request */
    /* the sequence */
    uint32_t seq_next;  /* next number to assign */
    uint32_t expected;  /* next number the terminal expects, as far as we know */
    uint32_t peer_window;
    struct ctlent cq[CQ];
    unsigned cqh, cqn;
    uint64_t cq_timer, cq_gb_time;
    /* the last acknowledgement that advanced, or the first transmission
     * with nothing outstanding: PROGRESS restarts the timers only within
     * idle_timeout_ms of it (on_progress) */
    uint64_t adv_at;
    /* the last refusal whose number was taken back (a SIG_REQ, a HASH_ONLY
     * request): a copy of its NACK within tb_rto names the frame that took
     * the number, not a refusal of it */
    int tb_valid;
    uint32_t tb_seq, tb_rto;
    int32_t tb_code;
    uint64_t tb_at;
    uint32_t cq_rto, cq_tries, srtt, rttvar;
    /* the message handed out last, and a pending ABORT */
    otaup_sm cur;
    uint8_t *cur_owned;
    int abort_pending;
    otaup_sm abort_m;
    char abort_text[240];
    /* backup */
    uint32_t bk_region;
    uint8_t *bk_buf;
    uint32_t bk_got;
    uint64_t bk_asked;
    uint32_t bk_tries;  /* requests for the region since its data last came (stalls in a row) */
    uint32_t bk_bad;    /* copies of the region that did not match its hash */
    /* a sealed backup (the terminal has CAP_SEALED): the stream as the
     * terminal sealed it, header || (ciphertext || tag)..., security.md §7 */
    size_t bk_slen;
    uint32_t bk_schunk; /* the stream's chunk size (0: no header yet) */
    /* signature */
    uint8_t *sig;
    uint32_t sig_len, sig_got;
    int sig_state;
    uint64_t sig_asked; /* when the last SIG_REQ was acknowledged or data last came */
    uint32_t sig_tries; /* SIG_REQs since its data last came (stalls in a row) */
    /* verify: the regions' hashes after the transfer */
    uint8_t vhash[OTAUP_SM_MAX_REGIONS][8];
    uint32_t vgot;
    int vhash_unsupported;
    /* delta and transfer */
    const uint8_t *delta;
    size_t delta_len;
    otaup_blob delta_own;
    void *dref;
    uint32_t body_off;
    otaup_tx tx;
    int tx_ready;
    uint32_t seq_base;
    uint64_t persist_at;
    /* restore */
    uint32_t rlist[OTAUP_SM_MAX_REGIONS];
    uint32_t rn, ri, rounds;
    otaup_blob rplain;
    uint8_t rhash[8];
    uint32_t rs_chunk;  /* a sealed backup being restored: its chunk size (0: plain) */
    otaup_tx rtx;
    int rtx_ready;
    int restore_sent;   /* a restore stream began (here, or maybe in an earlier connection): no ABORT any more */
    uint32_t rseq_base;
    /* bytes out */
    uint8_t *obuf;
    size_t ocap, olen, opos;
    otaup_session_stats stats;
    char why[400]; /* details of the last failure to get a delta */
};

static const char *const state_names[] = { "hello",   "idle",     "wait-request", "backup",
                                           "prepare", "start",    "transfer",     "verify",
                                           "restore", "commit",   "done",         "failed" };

const char *otaup_session_state_name(otaup_session_state st)
{
    return (unsigned)st < sizeof state_names / sizeof state_names[0] ? state_names[st] : "?";
}

void otaup_session_options_init(otaup_session_options *opts)
{
    if (opts != NULL) {
        otaup_session_options d = OTAUP_SESSION_OPTIONS_INIT;
        *opts = d;
    }
}

/* An XXH3-128 for people: xxHash's canonical form (XXH128_canonicalFromHash:
 * the high 64 bits first, big-endian), as `otaup sig` and `otaup inspect`
 * print it; the bytes are stored low half first, little-endian. */
static void hex16(const uint8_t *h, char *out)
{
    unsigned i;
    for (i = 0; i < 16; i++) {
        sprintf(out + 2 * i, "%02x", h[15 - i]);
    }
}

/* ---- logging, audit, persistence -------------------------------------- */

static void slog(otaup_session *s, int level, const char *event, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void slog(otaup_session *s, int level, const char *event, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    if (s->o.log == NULL) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->o.log(level, s->info.id, event, msg, s->o.log_payload);
}

static void set_state(otaup_session *s, otaup_session_state st)
{
    if (s->st != st) {
        slog(s, OTAUP_LOG_DEBUG, "state", "%s -> %s", otaup_session_state_name(s->st),
             otaup_session_state_name(st));
    }
    s->st = st;
}

static int persist(otaup_session *s)
{
    int rc;
    if (!s->have_info || s->rs.session_id == 0) {
        return 0;
    }
    snprintf(s->rs.state, sizeof s->rs.state, "%s", otaup_session_state_name(s->st));
    s->rs.updated = 0;
    /* cumulative over the session's connections: what earlier ones put on
     * the link (the row a resume found) plus this one's */
    s->rs.bytes_sent = s->sent_base + s->stats.stream_sent;
    s->rs.retransmits = s->retx_base + s->stats.retransmits + (s->tx_ready ? s->tx.retransmits : 0) +
                        (s->rtx_ready ? s->rtx.retransmits : 0);
    rc = otaup_registry_session_put(s->o.reg, &s->rs);
    s->persist_at = s->now;
    return rc;
}

static void set_status(otaup_session *s, const char *status)
{
    snprintf(s->term.status, sizeof s->term.status, "%s", status);
    otaup_registry_terminal_set_status(s->o.reg, s->info.id, status);
}

/* ---- the control queue -------------------------------------------------- */

static uint32_t maxf(const otaup_session *s)
{
    const otaup_swire_peer *p = otaup_swire_peer_info(s->wire);
    uint32_t f = s->o.frame_max;
    if (p->have && p->max_frame < f) {
        f = p->max_frame;
    }
    if (s->have_info && s->info.max_frame < f) {
        f = s->info.max_frame;
    }
    if (!p->have && !s->have_info) {
        f = OTAUP_FRAME_MIN;
    }
    return f < OTAUP_FRAME_MIN ? OTAUP_FRAME_MIN : f;
}

static uint32_t window(const otaup_session *s)
{
    const otaup_swire_peer *p = otaup_swire_peer_info(s->wire);
    if (s->peer_window != 0) {
        return s->peer_window;
    }
    return p->have && p->window > 0 ? p->window : 1u;
}

static char *dupstr(const char *t)
{
    char *c;
    size_t n;
    if (t == NULL) {
        return NULL;
    }
    n = strlen(t) + 1;
    c = malloc(n);
    if (c != NULL) {
        memcpy(c, t, n);
    }
    return c;
}

static void ent_free(struct ctlent *e)
{
    free(e->owned);
    free(e->text);
    free(e->version);
    memset(e, 0, sizeof *e);
}

static struct ctlent *cq_at(otaup_session *s, unsigned i)
{
    return &s->cq[(s->cqh + i) % CQ];
}

/* Queue a control message: it takes the next sequence number(s). */
static int cq_push(otaup_session *s, const otaup_sm *m, const void *data, size_t len)
{
    struct ctlent *e;
    int nf;
    if (s->cqn == CQ) {
        return OTAUP_E_BUFFER;
    }
    e = cq_at(s, s->cqn);
    memset(e, 0, sizeof *e);
    e->m = *m;
    if (len > 0) {
        e->owned = malloc(len);
        if (e->owned == NULL) {
            return OTAUP_E_NOMEM;
        }
        memcpy(e->owned, data, len);
    }
    e->m.data = e->owned;
    e->m.len = len;
    e->text = dupstr(m->text);
    e->version = dupstr(m->version);
    e->m.text = e->text;
    e->m.version = e->version;
    e->maxf = maxf(s);
    nf = otaup_swire_frames(&e->m, e->maxf);
    if (nf < 0) {
        ent_free(e);
        return nf;
    }
    e->nframes = (uint32_t)nf;
    e->m.seq = s->seq_next;
    s->seq_next += e->nframes;
    s->cqn++;
    return 0;
}

/* Forget entries from sequence number `seq` on (the terminal refused that frame). */
static void cq_truncate(otaup_session *s, uint32_t seq)
{
    while (s->cqn > 0) {
        struct ctlent *e = cq_at(s, s->cqn - 1);
        if (e->m.seq < seq) {
            break;
        }
        ent_free(e);
        s->cqn--;
    }
    s->seq_next = seq;
}

static void cq_clear(otaup_session *s)
{
    while (s->cqn > 0) {
        ent_free(cq_at(s, 0));
        s->cqh = (s->cqh + 1) % CQ;
        s->cqn--;
    }
}

/* The control queue's timeout without backoff: from the RTT samples, or
 * the initial one before the first. */
static uint32_t base_rto(const otaup_session *s)
{
    uint32_t r;
    if (s->srtt == 0) {
        return s->o.rto_initial_ms;
    }
    r = s->srtt + 4 * s->rttvar;
    r = r < 200 ? 200 : r;
    return r > s->o.rto_max_ms ? s->o.rto_max_ms : r;
}

/* The ceiling of a doubling timeout whose value without backoff is
 * `base`: rto_max_ms, but only 8 times the base (at least 2 s) while the
 * terminal was heard from within the last rto_max_ms. Doubling spares a
 * dead or congested link; a terminal that keeps talking is neither, and
 * on a link that loses frames at random, a message lost four or five
 * times in a row would otherwise wait half a minute. */
static uint32_t backoff_cap(const otaup_session *s, uint32_t base)
{
    uint64_t cap = 8u * (uint64_t)base;
    if (s->now - s->last_rx >= s->o.rto_max_ms) {
        return s->o.rto_max_ms;
    }
    cap = cap < 2000u ? 2000u : cap;
    return cap > s->o.rto_max_ms ? s->o.rto_max_ms : (uint32_t)cap;
}

static void rtt_sample(otaup_session *s, uint32_t r)
{
    if (s->srtt == 0) {
        s->srtt = r ? r : 1;
        s->rttvar = r / 2;
    } else {
        uint32_t d = s->srtt > r ? s->srtt - r : r - s->srtt;
        s->rttvar = (3 * s->rttvar + d) / 4;
        s->srtt = (7 * s->srtt + r) / 8;
    }
    s->cq_rto = base_rto(s);
}

static void send_simple(otaup_session *s, uint8_t type, int32_t code, const char *text)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.code = code;
    m.session_id = s->rs.session_id;
    m.text = text;
    cq_push(s, &m, NULL, 0);
}

/* a NOTIFY about the session's release: OTAUP_SM_NOTIFY (the offer) or
 * OTAUP_SM_NOTE (information) */
static int notify_release(otaup_session *s, uint8_t type, const char *text)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.text = text;
    m.version = s->rel.version;
    m.build_time = s->rel.build_time;
    return cq_push(s, &m, NULL, 0);
}

/* ---- ending ---------------------------------------------------------- */

/* Failures that say nothing against doing the upgrade: the server's own
 * (its registry, its memory) or a terminal gone quiet. */
static int worth_again(int err)
{
    return err == OTAUP_E_DB || err == OTAUP_E_NOMEM || err == OTAUP_E_IO || err == OTAUP_E_TIMEOUT ||
           err == OTAUP_E_RETRIES || err == OTAUP_E_AGAIN;
}

/* A session that failed before anything was written to the terminal, for a
 * transient reason: the user's request stands for the next connection
 * (server.md, "any error"). Otherwise the user would have to ask again for
 * what they already asked for. */
static int keep_request(otaup_session *s, int err)
{
    otaup_reg_request q;
    int rc;
    if (!worth_again(err) || s->o.auto_request || s->rel.id == 0) {
        return 0;
    }
    memset(&q, 0, sizeof q);
    snprintf(q.terminal, sizeof q.terminal, "%s", s->info.id);
    q.release_id = s->rel.id;
    snprintf(q.source, sizeof q.source, "%s", s->req_source[0] != '\0' ? s->req_source : "session");
    rc = otaup_registry_request_put(s->o.reg, &q);
    if (rc < 0) {
        slog(s, OTAUP_LOG_WARN, "request", "not kept: %s (%s): the user must ask again", otaup_strerror(rc),
             otaup_registry_errmsg(s->o.reg));
        return 0;
    }
    otaup_registry_audit(s->o.reg, s->info.id, "request-kept",
                         "by %s: the session failed before anything was written to the terminal (%s); the "
                         "upgrade to %s is tried again at its next connection",
                         q.source, otaup_errname(err) ? otaup_errname(err) : "?", s->rel.version);
    slog(s, OTAUP_LOG_INFO, "request", "kept (by %s): tried again at the next connection", q.source);
    return 1;
}

static int fail(otaup_session *s, int err, const char *why)
{
    char text[240];
    if (s->finished) {
        return s->result ? s->result : err;
    }
    snprintf(text, sizeof text, "%s: %s", why, otaup_strerror(err));
    if (err == OTAUP_E_DB && s->o.reg != NULL && otaup_registry_errmsg(s->o.reg)[0] != '\0') {
        /* the backend's own words ("database or disk is full") tell the
         * operator what to fix; they stay in the log and out of the ABORT */
        slog(s, OTAUP_LOG_ERROR, "failed", "%s (%s): %s", text, otaup_errname(err) ? otaup_errname(err) : "?",
             otaup_registry_errmsg(s->o.reg));
    } else {
        slog(s, OTAUP_LOG_ERROR, "failed", "%s (%s)", text, otaup_errname(err) ? otaup_errname(err) : "?");
    }
    /* Once the restore has begun, the terminal's user data may hold
     * neither what it held nor the backup: its session must be resumed,
     * with this backup, not abandoned. No ABORT then: the terminal keeps
     * the session in its journal and the next connection resumes it
     * (verify, restore, commit), as after a lost link. Abandoning it (A/B:
     * back to the old slot) would let the next session back up the
     * damaged region over the user's data. That holds in VERIFY too once
     * a restore went out: the regions' hashes are asked again between two
     * rounds, and a region still different after the last one (or a
     * link lost then) fails the session there. (In COMMIT every region
     * has been restored and checked: an ABORT is safe again.) */
    int resume_only = s->have_info && s->rs.session_id != 0 &&
                      (s->st == OTAUP_SS_RESTORE || (s->st == OTAUP_SS_VERIFY && s->restore_sent));
    if (s->have_info) {
        int kept = 0;
        otaup_registry_audit(s->o.reg, s->info.id, "failed", "%s", text);
        if ((s->st == OTAUP_SS_BACKUP || s->st == OTAUP_SS_PREPARE) && !s->term_knows && !s->info.active) {
            /* no START of this session ever went out and the terminal is
             * in no session: nothing was written to it and its user data
             * is where it was, so the copy taken for this session is
             * personal data kept for nothing */
            int n = otaup_registry_backup_delete(s->o.reg, s->info.id);
            if (n > 0) {
                otaup_registry_audit(s->o.reg, s->info.id, "backup-deleted",
                                     "%d region(s) deleted irreversibly (secure delete, key destroyed): the session "
                                     "failed before anything was written to the terminal",
                                     n);
            }
            kept = keep_request(s, err);
        }
        if (s->rs.session_id != 0) {
            s->rs.result = err;
            set_state(s, OTAUP_SS_FAILED);
            persist(s);
        }
        set_status(s, kept ? "requested" : "failed");
    }
    cq_clear(s);
    if (resume_only) {
        otaup_registry_audit(s->o.reg, s->info.id, "resumable",
                             "no ABORT: the session stays open on the terminal and resumes at its next "
                             "connection with the backup kept");
        set_state(s, OTAUP_SS_FAILED);
        s->result = err;
        s->finished = 1;
        return err;
    }
    /* ABORT goes out at once with the number the terminal expects next */
    memset(&s->abort_m, 0, sizeof s->abort_m);
    s->abort_m.type = OTAUP_SM_ABORT_OUT;
    s->abort_m.code = err;
    s->abort_m.session_id = s->rs.session_id;
    s->abort_m.seq = s->expected;
    snprintf(s->abort_text, sizeof s->abort_text, "%s", text);
    s->abort_m.text = s->abort_text;
    s->abort_pending = 1;
    set_state(s, OTAUP_SS_FAILED);
    s->result = err;
    s->finished = 1;
    return err;
}

/* ---- INFO ---------------------------------------------------------------- */

static int inside(const otaup_geometry *g, uint32_t addr, uint32_t len)
{
    uint32_t size = otaup_geometry_size(g);
    return addr >= g->base && len <= size && addr - g->base <= size - len;
}

int otaup_session_info_check(const otaup_sm_info *in, char *why, size_t why_len)
{
    uint32_t i;
#define BAD(code, ...)                              \
    do {                                            \
        snprintf(why, why_len, __VA_ARGS__);        \
        return code;                                \
    } while (0)
    if (in->id[0] == '\0' || memchr(in->id, '\0', sizeof in->id) == NULL) {
        BAD(OTAUP_E_PEER, "terminal id missing");
    }
    if (in->model[0] == '\0' || memchr(in->model, '\0', sizeof in->model) == NULL ||
        memchr(in->version, '\0', sizeof in->version) == NULL) {
        BAD(OTAUP_E_PEER, "model or version missing");
    }
    if (otaup_geometry_check(&in->geo) != 0) {
        BAD(OTAUP_E_GEOMETRY, "flash geometry is invalid");
    }
    if (in->max_frame < 64 || in->max_frame > 65536) {
        BAD(OTAUP_E_PEER, "max frame %u outside 64..65536", in->max_frame);
    }
    if (in->layout > 1) {
        BAD(OTAUP_E_PEER, "unknown layout %u", in->layout);
    }
    if (in->slot_size == 0 || !inside(&in->geo, in->slot_addr, in->slot_size)) {
        BAD(OTAUP_E_GEOMETRY, "image slot 0x%08x+%u is outside its flash", in->slot_addr, in->slot_size);
    }
    if (in->image_size > in->slot_size) {
        BAD(OTAUP_E_GEOMETRY, "image of %u bytes does not fit its %u-byte slot", in->image_size,
            in->slot_size);
    }
    if (in->layout == 1 && !inside(&in->geo, in->target_addr, in->slot_size)) {
        BAD(OTAUP_E_GEOMETRY, "second slot is outside its flash");
    }
    if (in->layout == 1 && in->target_addr < in->slot_addr + in->slot_size &&
        in->slot_addr < in->target_addr + in->slot_size) {
        BAD(OTAUP_E_GEOMETRY, "the two image slots overlap");
    }
    if (in->scratch_size != 0 && !inside(&in->geo, in->scratch_addr, in->scratch_size)) {
        BAD(OTAUP_E_GEOMETRY, "scratch area is outside its flash");
    }
    if (in->nregions > OTAUP_SM_MAX_REGIONS || in->nwindows > OTAUP_SM_MAX_WINDOWS) {
        BAD(OTAUP_E_PEER, "too many regions or windows");
    }
    for (i = 0; i < in->nregions; i++) {
        const otaup_sm_region *r = &in->regions[i];
        uint32_t k;
        if (r->len == 0 || !inside(&in->geo, r->addr, r->len)) {
            BAD(OTAUP_E_GEOMETRY, "user-data region %u (0x%08x+%u) is outside its flash", i, r->addr,
                r->len);
        }
        if (r->addr < in->slot_addr + in->slot_size && in->slot_addr < r->addr + r->len) {
            BAD(OTAUP_E_GEOMETRY, "user-data region %u overlaps the image slot", i);
        }
        if (in->layout == 1 && r->addr < in->target_addr + in->slot_size && in->target_addr < r->addr + r->len) {
            BAD(OTAUP_E_GEOMETRY, "user-data region %u overlaps the second slot", i);
        }
        if (r->len > 64u * 1024u * 1024u) {
            BAD(OTAUP_E_PEER, "user-data region %u is too large", i);
        }
        if (in->scratch_size != 0 && r->addr < (uint64_t)in->scratch_addr + in->scratch_size &&
            in->scratch_addr < (uint64_t)r->addr + r->len) {
            /* erased and written by the steps: the transfer would destroy it */
            BAD(OTAUP_E_GEOMETRY, "user-data region %u overlaps the scratch area", i);
        }
        for (k = 0; k < i; k++) {
            const otaup_sm_region *q = &in->regions[k];
            if (q->id == r->id) {
                BAD(OTAUP_E_PEER, "two user-data regions with id %u", r->id);
            }
            if (r->addr < (uint64_t)q->addr + q->len && q->addr < (uint64_t)r->addr + r->len) {
                /* restoring one would damage the other */
                BAD(OTAUP_E_GEOMETRY, "user-data regions %u and %u overlap", k, i);
            }
        }
    }
    return 0;
#undef BAD
}

static int is_active_state(const char *st)
{
    static const char *const act[] = { "backup", "prepare", "start", "transfer",
                                       "verify", "restore", "commit" };
    size_t i;
    for (i = 0; i < sizeof act / sizeof act[0]; i++) {
        if (strcmp(st, act[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int enter_wait_request(otaup_session *s);
static int enter_backup(otaup_session *s);
static int enter_prepare(otaup_session *s);
static int enter_verify(otaup_session *s);
static int send_commit(otaup_session *s);
static int enter_restore_or_commit(otaup_session *s, int decide);
static int take_request(otaup_session *s, const char *source);
static int finish_current(otaup_session *s);
static void release_claim(otaup_session *s);

struct find_rel {
    const char *version;
    int64_t build_time;
    uint32_t image_size; /* what the terminal reports: a release of another size is not what it runs */
    otaup_reg_release r;
    int hit;
};

static int find_rel_cb(const otaup_reg_release *r, void *payload)
{
    struct find_rel *f = payload;
    if (strcmp(r->version, f->version) == 0 && r->build_time == f->build_time &&
        (f->image_size == 0 || r->image_size == f->image_size)) {
        f->r = *r;
        f->hit = 1;
        return 1;
    }
    return 0;
}

/* What the terminal runs: the hash it reported, else the release its
 * version and build time name (the seed's "software version and compile
 * time"), else what it ran when last seen with the same version. */
static void resolve_source(otaup_session *s, const otaup_sm_info *in, const otaup_reg_terminal *prev, int known)
{
    struct find_rel f;
    static const uint8_t zero[OTAUP_REG_HASH_LEN];
    s->src_known = s->src_trusted = 0;
    if (in->have_image_hash) {
        memcpy(s->term.image_hash, in->image_hash, OTAUP_REG_HASH_LEN);
        s->src_known = s->src_trusted = 1;
        return;
    }
    memset(&f, 0, sizeof f);
    f.version = in->version;
    f.build_time = in->build_time;
    f.image_size = in->image_size;
    if (otaup_registry_release_list(s->o.reg, in->model, find_rel_cb, &f) >= 0 && f.hit) {
        memcpy(s->term.image_hash, f.r.image_hash, OTAUP_REG_HASH_LEN);
        s->src_known = 1;
        return;
    }
    if (known && strcmp(prev->version, in->version) == 0 && prev->build_time == in->build_time &&
        (in->image_size == 0 || prev->image_size == in->image_size) &&
        memcmp(prev->image_hash, zero, sizeof zero) != 0) {
        memcpy(s->term.image_hash, prev->image_hash, OTAUP_REG_HASH_LEN);
        s->src_known = 1;
        return;
    }
    memset(s->term.image_hash, 0, OTAUP_REG_HASH_LEN);
}

/* The session's release was withdrawn (docs/server.md, "Withdrawing a
 * release"). A session whose START never went out, with the terminal in
 * no session, wrote nothing to it: it is dropped (its backup deleted, its
 * row removed) and 1 returned. A started one must be finished: 0. */
static int drop_unstarted(otaup_session *s)
{
    int n;
    if (strcmp(s->rs.state, "backup") != 0 && strcmp(s->rs.state, "prepare") != 0) {
        if (s->st != OTAUP_SS_BACKUP && s->st != OTAUP_SS_PREPARE && s->st != OTAUP_SS_WAIT_REQUEST) {
            return 0;
        }
    }
    if (s->term_knows || s->info.active) {
        return 0;
    }
    n = otaup_registry_backup_delete(s->o.reg, s->info.id);
    if (n > 0) {
        otaup_registry_audit(s->o.reg, s->info.id, "backup-deleted",
                             "%d region(s) deleted irreversibly (secure delete, key destroyed): the upgrade "
                             "was withdrawn before anything was written to the terminal",
                             n);
    }
    if (s->rs.session_id != 0) {
        otaup_registry_session_delete(s->o.reg, s->info.id);
    }
    otaup_registry_audit(s->o.reg, s->info.id, "withdrawn",
                         "release %lld (%s) was withdrawn; session %08x had not started on the terminal: dropped",
                         (long long)s->rel.id, s->rel.version, s->rs.session_id);
    slog(s, OTAUP_LOG_INFO, "withdrawn", "release=%lld version=%s session=%08x not started: dropped",
         (long long)s->rel.id, s->rel.version, s->rs.session_id);
    memset(&s->rs, 0, sizeof s->rs);
    return 1;
}

/* Before a fresh session takes a backup or sends its START: the release
 * read again (an operator may have withdrawn it since the offer). 1 when
 * the session ended for it (DONE sent, not a failure). */
static int withdrawn_now(otaup_session *s)
{
    otaup_reg_release r;
    char text[160];
    if (s->term_knows || s->info.active || s->resuming ||
        otaup_registry_release_get(s->o.reg, s->rel.id, &r, NULL) != 0 || r.withdrawn == 0) {
        return 0;
    }
    s->rel.withdrawn = r.withdrawn;
    if (!drop_unstarted(s)) {
        return 0;
    }
    set_status(s, "upgrade-due");
    snprintf(text, sizeof text, "The upgrade to %s was withdrawn. Nothing was changed on your terminal.",
             s->rel.version);
    send_simple(s, OTAUP_SM_DONE, 0, text);
    set_state(s, OTAUP_SS_IDLE);
    s->finished = 1;
    return 1;
}

/* The session row (s->rs) was given up (failed) after its START went out
 * and the terminal took it (bytes_total > 0), and the terminal now runs
 * that session's target with no session in its journal: it committed
 * (a journal closes on the target only on COMMIT, sent after the
 * user-data check) and the server gave up before its RESULT came (a link
 * gone silent: the COMMIT's retransmissions ran out). */
static int failed_but_committed(otaup_session *s, const otaup_sm_info *in)
{
    otaup_reg_release r;
    return strcmp(s->rs.state, "failed") == 0 && !in->active && s->rs.bytes_total > 0 && in->have_image_hash &&
           otaup_registry_release_get(s->o.reg, s->rs.release_id, &r, NULL) == 0 &&
           memcmp(in->image_hash, r.image_hash, OTAUP_REG_HASH_LEN) == 0;
}

/* ---- retention of a failed session's backup ---------------------------- */

struct kept_backup {
    const otaup_sm_info *in;
    uint32_t session;
    int n, same, other;
};

static int kept_backup_cb(const otaup_reg_backup *b, void *payload)
{
    struct kept_backup *k = payload;
    const otaup_sm_region *r = b->region < k->in->nregions ? &k->in->regions[b->region] : NULL;
    k->n++;
    if (b->session_id != k->session) {
        k->other++;
    }
    /* a plain backup (the region's plaintext: its length is the region's)
     * whose recorded XXH3-64 is what the terminal reports for that region now */
    if (r != NULL && !(k->in->caps & OTAUP_CAP_SEALED) && r->hash_alg == 1 && r->addr == b->addr &&
        r->len == b->len && memcmp(r->hash, b->hash, 8) == 0) {
        k->same++;
    }
    return 0;
}

/* The terminal's INFO came and the session row `rs` is a session the
 * server gave up (failed) that is not resumed: the terminal's journal
 * holds no session (not `active`), so no restore of that session will
 * ever run. Its backup, kept for such a restore, is deleted when it is
 * provably no longer needed (docs/server.md, "Retention of a failed
 * session's backup"):
 *  - that session wrote nothing to the terminal: its START never went out
 *    or the terminal refused it before taking it (bytes_total 0);
 *  - the terminal runs in place (now, and with the flash map it had when
 *    last seen): an in-place terminal closes its journal only on COMMIT,
 *    sent after the user-data check, or on an ABORT taken before its
 *    point of no return (it refuses one after), before any byte of its
 *    image was rewritten, so the new software never ran on its data;
 *  - every region of the backup is reported in INFO with the hash
 *    recorded with it: the terminal holds exactly what the copy holds.
 * Kept otherwise (an A/B terminal back on its old slot after an ABORT that
 * may have come after its VERIFY: the new software may have changed its
 * data, which nobody checked, and the copy is what they held before). */
static void retire_failed_backup(otaup_session *s, const otaup_sm_info *in, const otaup_reg_terminal *prev)
{
    otaup_reg_session rs;
    struct kept_backup k;
    const char *why;
    int n;
    if (in->active || otaup_registry_session_get(s->o.reg, in->id, &rs) != 0 || strcmp(rs.state, "failed") != 0) {
        return;
    }
    memset(&k, 0, sizeof k);
    k.in = in;
    k.session = rs.session_id;
    if (otaup_registry_backup_list(s->o.reg, in->id, kept_backup_cb, &k) < 0 || k.n == 0) {
        return;
    }
    if (rs.bytes_total == 0) {
        why = "its START never reached the terminal: nothing was written to it";
    } else if (in->layout == 0 && prev != NULL && prev->layout_len == s->term.layout_len &&
               memcmp(prev->layout, s->term.layout, s->term.layout_len) == 0) {
        why = "the terminal runs in place and its journal is closed: it took the COMMIT after the user-data "
              "check, or the ABORT before its image was touched";
    } else if (k.same == k.n) {
        why = "the terminal reports every region with the hash of its backup";
    } else {
        slog(s, OTAUP_LOG_INFO, "backup",
             "kept: session=%08x failed, the terminal's journal is closed and its data may differ from the copy "
             "(regions=%d reported-same=%d)",
             rs.session_id, k.n, k.same);
        return;
    }
    n = otaup_registry_backup_delete(s->o.reg, in->id);
    if (n < 0) {
        slog(s, OTAUP_LOG_WARN, "backup", "not deleted: %s (%s)", otaup_strerror(n), otaup_registry_errmsg(s->o.reg));
        return;
    }
    otaup_registry_audit(s->o.reg, in->id, "backup-deleted",
                         "%d region(s) deleted irreversibly (secure delete, key destroyed): session %08x failed "
                         "and is over on the terminal; %s",
                         n, rs.session_id, why);
    slog(s, OTAUP_LOG_INFO, "backup", "deleted regions=%d session=%08x failed and over on the terminal: %s", n,
         rs.session_id, why);
}

static int on_info(otaup_session *s, const otaup_sm_info *in)
{
    char why[300], h[33];
    otaup_reg_terminal prev;
    int rc, known, finishing;
    if (s->st != OTAUP_SS_HELLO) {
        return 0; /* a repeated INFO: ignore */
    }
    rc = otaup_session_info_check(in, why, sizeof why);
    if (rc < 0) {
        s->info = *in;
        s->info.id[sizeof s->info.id - 1] = '\0';
        if (in->id[0] != '\0' && memchr(in->id, '\0', sizeof in->id) != NULL) {
            otaup_registry_audit(s->o.reg, in->id, "bad-info", "%s", why);
        }
        return fail(s, rc, why);
    }
    /* one live session per terminal: a second connection under the same id
     * (a cloned id, or the same terminal while its first connection is still
     * open) must not drive the first one's session row, backup and stream */
    rc = otaup_registry_live_claim(s->o.reg, in->id);
    if (rc < 0) {
        s->info = *in;
        if (rc == OTAUP_E_EXISTS) {
            snprintf(why, sizeof why, "terminal %s is already connected: another session drives its upgrade", in->id);
            otaup_registry_audit(s->o.reg, in->id, "refused", "%s; this connection is closed", why);
        } else {
            snprintf(why, sizeof why, "terminal %s: live session table", in->id);
        }
        return fail(s, rc, why);
    }
    s->claimed = 1;
    s->info = *in;
    s->have_info = 1;
    known = otaup_registry_terminal_get(s->o.reg, in->id, &prev) == 0;
    memset(&s->term, 0, sizeof s->term);
    if (known) {
        s->term = prev;
        if (strcmp(prev.model, in->model) != 0) {
            /* a different model under a known id: refuse, lose nothing */
            snprintf(why, sizeof why, "terminal %s was registered as model %s, now says %s", in->id,
                     prev.model, in->model);
            s->have_info = 0;
            otaup_registry_audit(s->o.reg, in->id, "bad-info", "%s", why);
            return fail(s, OTAUP_E_MODEL, why);
        }
    } else {
        snprintf(s->term.status, sizeof s->term.status, "new");
    }
    snprintf(s->term.id, sizeof s->term.id, "%s", in->id);
    snprintf(s->term.model, sizeof s->term.model, "%s", in->model);
    snprintf(s->term.version, sizeof s->term.version, "%s", in->version);
    s->term.build_time = in->build_time;
    s->term.image_size = in->image_size;
    s->term.layout_len = (uint32_t)otaup_session_layout_encode(in, s->term.layout, sizeof s->term.layout);
    s->term.last_seen = 0;

    /* an unfinished session of ours? Also one we gave up (failed: the
     * retransmission limit, a lost link at the wrong moment) while the
     * terminal's journal still holds it: in place its image may be half
     * written, it takes no other session, so that one must be finished */
    if (otaup_registry_session_get(s->o.reg, in->id, &s->rs) == 0 &&
        (is_active_state(s->rs.state) ||
         (strcmp(s->rs.state, "failed") == 0 && in->active && in->session_id == s->rs.session_id) ||
         failed_but_committed(s, in)) &&
        otaup_registry_release_get(s->o.reg, s->rs.release_id, &s->rel, NULL) == 0 &&
        !(s->rel.withdrawn != 0 && !in->active && drop_unstarted(s))) {
        /* the source is what the session was planned from */
        s->src_known = s->src_trusted = known;
        s->term_knows = strcmp(s->rs.state, "backup") != 0 && strcmp(s->rs.state, "prepare") != 0;
        /* a restore may have begun in an earlier connection (the row at
         * restore, or failed there without an ABORT): no ABORT in VERIFY */
        s->restore_sent = strcmp(s->rs.state, "restore") == 0 || strcmp(s->rs.state, "failed") == 0;
        s->rs.result = 0;
        s->sent_base = s->rs.bytes_sent;
        s->retx_base = s->rs.retransmits;
        if (!known) {
            resolve_source(s, in, &prev, 0);
        }
        rc = otaup_registry_terminal_put(s->o.reg, &s->term);
        if (rc < 0) {
            return fail(s, rc, "registry: recording the terminal");
        }
        otaup_registry_audit(s->o.reg, in->id, "resume", "session %08x was in %s; terminal %s at step %u",
                             s->rs.session_id, s->rs.state, in->active ? "active" : "idle", in->next_step);
        slog(s, OTAUP_LOG_INFO, "resume", "session=%08x state=%s terminal_step=%u active=%d", s->rs.session_id,
             s->rs.state, in->next_step, in->active);
        set_status(s, "upgrading");
        /* the terminal's journal is closed and nothing of the image is sent
         * again: only the check, the restore or the COMMIT is left */
        finishing = !in->active && strcmp(s->rs.state, "backup") != 0 &&
                    (strcmp(s->rs.state, "verify") == 0 || strcmp(s->rs.state, "restore") == 0 ||
                     strcmp(s->rs.state, "commit") == 0 ||
                     (in->have_image_hash && memcmp(in->image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) == 0));
        {
            /* no new offer, but the terminal is told what it installs: the
             * offer it had may be gone with its last connection (a terminal
             * learns the version only from NOTIFY; START does not carry it) */
            char text[96];
            snprintf(text, sizeof text, "%s the upgrade to %s.", finishing ? "Finishing" : "Resuming",
                     s->rel.version);
            rc = notify_release(s, OTAUP_SM_NOTE, text);
            if (rc < 0) {
                return fail(s, rc, "notify");
            }
        }
        if (strcmp(s->rs.state, "backup") == 0 && !in->active) {
            return enter_backup(s);
        }
        if (finishing && s->term_knows) {
            /* The terminal was sent this session's START and its journal
             * is closed now: a terminal closes it only on COMMIT, sent
             * after the user-data check passed, or on ABORT, which never
             * goes out once the restore began. So it committed (or was
             * aborted), and its journal gives the same RESULT again.
             * Checking the regions again would restore the backup over
             * what the user has stored since the commit. The row may say
             * commit, or still transfer, verify or restore: the writes
             * that followed (the state, the backup's deletion) failed (a
             * full disk, a file-size limit, a registry gone read-only).
             * The COMMIT answers what the journal recorded: the RESULT of
             * the commit (then the backup is deleted), or the ABORT's code
             * or a refusal (OTAUP_E_SESSION: its journal holds no such
             * session), which fail the session with the backup kept and
             * nothing written. */
            return send_commit(s);
        }
        if (finishing) {
            return enter_verify(s); /* the stream was complete, or the image is already the target */
        }
        s->resuming = in->active && in->session_id == s->rs.session_id;
        s->resume_step = s->resuming ? in->next_step : 0;
        return enter_prepare(s);
    }
    retire_failed_backup(s, in, known ? &prev : NULL);
    memset(&s->rs, 0, sizeof s->rs);

    resolve_source(s, in, &prev, known);
    rc = otaup_registry_terminal_put(s->o.reg, &s->term);
    if (rc < 0) {
        return fail(s, rc, "registry: recording the terminal");
    }
    hex16(s->term.image_hash, h);
    otaup_registry_audit(s->o.reg, in->id, "info", "model %s version %s build %lld image %u bytes %s%s",
                         in->model, in->version, (long long)in->build_time, in->image_size,
                         s->src_known ? h : "unknown", in->active ? " (session active)" : "");
    slog(s, OTAUP_LOG_INFO, "info", "model=%s version=%s build=%lld image=%u hash=%s resume=%s", in->model,
         in->version, (long long)in->build_time, in->image_size, s->src_known ? h : "unknown",
         in->active ? "yes" : "no");

    /* the policy */
    rc = otaup_registry_policy(s->o.reg, &s->term, &s->rel);
    if (rc == OTAUP_E_NO_RELEASE || rc == OTAUP_E_DOWNGRADE) {
        if (rc == OTAUP_E_DOWNGRADE) {
            otaup_registry_audit(s->o.reg, in->id, "policy",
                                 "newest release %s is older than %s: no downgrade", s->rel.version,
                                 in->version);
        }
        if (strcmp(s->term.status, "upgraded") != 0 || rc == OTAUP_E_DOWNGRADE) {
            set_status(s, "up-to-date");
        }
        slog(s, OTAUP_LOG_INFO, "policy", "nothing to do (%s)", otaup_errname(rc));
        send_simple(s, OTAUP_SM_DONE, 0, "Your software is up to date.");
        set_state(s, OTAUP_SS_IDLE);
        s->finished = 1;
        return 0;
    }
    if (rc < 0) {
        return fail(s, rc, "registry: policy");
    }
    otaup_registry_audit(s->o.reg, in->id, "policy", "upgrade due: %s -> %s (release %lld)", in->version,
                         s->rel.version, (long long)s->rel.id);
    if (in->active && s->src_known) {
        /* Its journal holds a session this server has no record of (given
         * up and then forgotten: a registry restored from an older copy).
         * In place its image may be half written and it takes no other
         * update, so that session must be continued: planned again from
         * the image it ran before (what its identity names; its block
         * signature would describe the half-written slot), the planner is
         * deterministic, so the delta is the same and the terminal goes on
         * with it. The user asked for it when it began: no new request. */
        s->src_trusted = 1;
        /* START without RESUME, the stream from step 0: a terminal whose
         * journal holds this very delta resumes it all the same (the steps
         * it did are replayed, not executed), and one that holds another
         * (A/B, or in place before its point of no return) begins this one
         * instead of refusing a resume at every connection */
        if (in->session_id != 0) {
            /* and under its own session id, which START must name */
            memset(&s->rs, 0, sizeof s->rs);
            snprintf(s->rs.terminal, sizeof s->rs.terminal, "%s", in->id);
            s->rs.session_id = in->session_id;
            s->rs.release_id = s->rel.id;
        }
        otaup_registry_audit(s->o.reg, in->id, "orphan",
                             "terminal in an unknown session %08x at step %u: continuing it to %s, planned from "
                             "%s",
                             in->session_id, in->next_step, s->rel.version, in->version);
        slog(s, OTAUP_LOG_WARN, "resume", "unknown session=%08x terminal_step=%u: planned again from %s",
             in->session_id, in->next_step, in->version);
        take_request(s, "journal");
        {
            /* no offer, but the terminal is told what it installs (it
             * learns the version only from NOTIFY), as on a known resume */
            char text[96];
            snprintf(text, sizeof text, "Resuming the upgrade to %s.", s->rel.version);
            rc = notify_release(s, OTAUP_SM_NOTE, text);
            if (rc < 0) {
                return fail(s, rc, "notify");
            }
        }
        return enter_backup(s);
    }
    return enter_wait_request(s);
}

/* ---- notification and request ------------------------------------------ */

static int take_request(otaup_session *s, const char *source)
{
    otaup_reg_request q;
    int rc = 0;
    if (source == NULL) {
        rc = otaup_registry_request_get(s->o.reg, s->info.id, &q);
        if (rc == OTAUP_E_NOT_FOUND) {
            return 0;
        }
        if (rc < 0) {
            return rc;
        }
        if (q.release_id != 0 && q.release_id != s->rel.id) {
            /* asked for another release: the policy's choice stands, note it */
            otaup_registry_audit(s->o.reg, s->info.id, "request",
                                 "request named release %lld, upgrading to %lld", (long long)q.release_id,
                                 (long long)s->rel.id);
        }
        source = q.source;
    }
    snprintf(s->req_source, sizeof s->req_source, "%s", source);
    otaup_registry_request_delete(s->o.reg, s->info.id);
    otaup_registry_audit(s->o.reg, s->info.id, "request-accepted", "by %s; upgrade to %s begins", source,
                         s->rel.version);
    slog(s, OTAUP_LOG_INFO, "request", "accepted (by %s)", source);
    return 1;
}

static int enter_wait_request(otaup_session *s)
{
    int rc;
    char text[256];
    set_state(s, OTAUP_SS_WAIT_REQUEST);
    if (strcmp(s->term.status, "requested") != 0) {
        if (s->o.notify != NULL) {
            rc = s->o.notify(s->o.reg, &s->term, &s->rel, s->o.notify_payload);
        } else {
            otaup_reg_notice n;
            rc = otaup_registry_notify(s->o.reg, &s->term, &s->rel, &n);
            if (rc == 1) {
                slog(s, OTAUP_LOG_INFO, "notify", "outbox %lld: \"%s\"", (long long)n.id, n.text);
            }
        }
        if (rc < 0) {
            return fail(s, rc, "notification");
        }
    }
    otaup_registry_notice_text(text, sizeof text, &s->term, &s->rel);
    rc = notify_release(s, OTAUP_SM_NOTIFY, text);
    if (rc < 0) {
        return fail(s, rc, "notify");
    }
    if (s->o.auto_request) {
        take_request(s, "policy");
        return enter_backup(s);
    }
    rc = take_request(s, NULL);
    if (rc < 0) {
        return fail(s, rc, "registry: request");
    }
    if (rc == 1) {
        return enter_backup(s);
    }
    s->t_next = s->now + s->o.request_poll_ms;
    return 0;
}

static int on_consent(otaup_session *s, const otaup_sm *m)
{
    if (s->st != OTAUP_SS_WAIT_REQUEST) {
        return 0;
    }
    if (m->code == OTAUP_CONSENT_ACCEPT || m->code == OTAUP_CONSENT_REQUEST || m->code == 0) {
        take_request(s, "terminal");
        return enter_backup(s);
    }
    otaup_registry_audit(s->o.reg, s->info.id, "declined", "the user %s the upgrade to %s on the terminal",
                         m->code == OTAUP_CONSENT_POSTPONE ? "postponed" : "declined", s->rel.version);
    slog(s, OTAUP_LOG_INFO, "request", "%s by the user", m->code == OTAUP_CONSENT_POSTPONE ? "postponed" : "declined");
    send_simple(s, OTAUP_SM_DONE, 0, "The upgrade was not started.");
    set_state(s, OTAUP_SS_IDLE);
    s->finished = 1;
    return 0;
}

/* ---- backup -------------------------------------------------------------- */

static uint32_t chunk_room(const otaup_session *s, uint32_t head)
{
    uint32_t f = OTAUP_SWIRE_RX_FRAME;
    (void)s;
    return f - OTAUP_FRAME_OVERHEAD - head;
}

static int ask_backup(otaup_session *s)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_BACKUP_REQ;
    m.region = s->info.regions[s->bk_region].id;
    m.offset = s->bk_got;
    m.total = chunk_room(s, 8u + 33u + 16u);
    m.session_id = s->rs.session_id;
    s->bk_asked = s->now;
    s->bk_tries++;
    return cq_push(s, &m, NULL, 0);
}

struct have_backup {
    uint32_t region, session;
    int hit;
};

static int have_backup_cb(const otaup_reg_backup *b, void *payload)
{
    struct have_backup *h = payload;
    if (b->region == h->region && b->session_id == h->session) {
        h->hit = 1;
        return 1;
    }
    return 0;
}

static int next_backup(otaup_session *s)
{
    int rc;
    while (s->bk_region < s->info.nregions) {
        struct have_backup h;
        h.region = s->bk_region;
        h.session = s->rs.session_id;
        h.hit = 0;
        otaup_registry_backup_list(s->o.reg, s->info.id, have_backup_cb, &h);
        if (!h.hit) {
            break; /* a backup made in this session is never overwritten */
        }
        s->bk_region++;
    }
    if (s->bk_region >= s->info.nregions) {
        s->rs.regions = s->info.nregions;
        free(s->bk_buf); /* wiped already */
        s->bk_buf = NULL;
        return enter_prepare(s);
    }
    free(s->bk_buf);
    s->bk_buf = malloc(s->info.regions[s->bk_region].len);
    if (s->bk_buf == NULL) {
        return fail(s, OTAUP_E_NOMEM, "backup buffer");
    }
    s->bk_got = 0;
    s->bk_tries = 0;
    s->bk_bad = 0;
    s->bk_slen = 0;
    s->bk_schunk = 0;
    rc = ask_backup(s);
    return rc < 0 ? fail(s, rc, "backup request") : 0;
}

static uint32_t payload_max(const otaup_session *s);

/* The data bytes of a plain RESTORE_DATA chunk: what the terminal's frame
 * holds after the header and the hash (8 + 9 bytes), cut to a multiple
 * of its flash's write size, as it programs every chunk but the last
 * whole (protocol.md 3.10: else OTAUP_E_ALIGN). 0: not one write unit. */
static uint32_t restore_chunk(const otaup_session *s)
{
    uint32_t ws = s->info.geo.write_size, chunk = payload_max(s) - 8u - 9u;
    if (ws > 1) {
        chunk -= chunk % ws;
    }
    return chunk;
}

static int enter_backup(otaup_session *s)
{
    if (s->info.nregions > 0 && !(s->info.caps & OTAUP_CAP_BACKUP)) {
        /* its personal data could not be restored if the upgrade harmed
         * them: nothing is started (docs/server.md, "Session driver", "Backup") */
        return fail(s, OTAUP_E_UNSUPPORTED, "the terminal declares user-data regions but cannot back them up "
                                            "(no BACKUP capability): not upgrading it");
    }
    if (s->info.nregions > 0 && !(s->info.caps & OTAUP_CAP_SEALED) && restore_chunk(s) == 0 && !s->term_knows &&
        !s->info.active) {
        /* the same: a restore chunk smaller than one write unit would be
         * refused (OTAUP_E_ALIGN), found out after the transfer */
        char why[200];
        snprintf(why, sizeof why,
                 "the terminal's %u-byte frames cannot carry a restore chunk of its flash's %u-byte write size: "
                 "its user data could not be restored: not upgrading it",
                 maxf(s), s->info.geo.write_size);
        return fail(s, OTAUP_E_LIMIT, why);
    }
    if (s->rs.session_id == 0 && withdrawn_now(s)) {
        return 0;
    }
    if (s->rs.session_id == 0) {
        memset(&s->rs, 0, sizeof s->rs);
        snprintf(s->rs.terminal, sizeof s->rs.terminal, "%s", s->info.id);
        while (s->rs.session_id == 0) {
            otaup_regcrypt_random(&s->rs.session_id, sizeof s->rs.session_id);
        }
        s->rs.release_id = s->rel.id;
        s->rs.started = 0;
    }
    set_state(s, OTAUP_SS_BACKUP);
    set_status(s, "upgrading");
    persist(s);
    otaup_registry_audit(s->o.reg, s->info.id, "session", "session %08x: upgrade to %s (release %lld)",
                         s->rs.session_id, s->rel.version, (long long)s->rel.id);
    s->bk_region = 0;
    return next_backup(s);
}

static int region_index(const otaup_session *s, uint32_t id)
{
    uint32_t i;
    for (i = 0; i < s->info.nregions; i++) {
        if (s->info.regions[i].id == id) {
            return (int)i;
        }
    }
    return -1;
}

static int on_verify_hash(otaup_session *s, const otaup_sm *m);

static uint32_t le32_at(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The chunk size of a sealed stream's header (0: not a header for this region). */
static uint32_t seal_header_chunk(const uint8_t *h, size_t len, uint32_t region, uint32_t region_len)
{
    uint32_t chunk;
    if (len < OTAUP_SEAL_HEADER_LEN || memcmp(h, OTAUP_SEAL_MAGIC, 4) != 0 || h[4] != OTAUP_SEAL_VERSION ||
        h[5] != 0 || le32_at(h + 8) != region || le32_at(h + 12) != region_len) {
        return 0;
    }
    chunk = (uint32_t)h[6] | (uint32_t)h[7] << 8;
    chunk = chunk == 0 ? OTAUP_SEAL_CHUNK_MAX : chunk;
    return chunk >= OTAUP_SEAL_CHUNK_MIN ? chunk : 0;
}

/*
 * BACKUP_DATA of a terminal that seals its backups (docs/server.md,
 * "Sealed backups"): each chunk is one chunk of the sealed stream, its tag
 * in the TAG field, the first one preceded by the stream's header. The
 * server cannot read or check the content: it checks the stream's shape
 * (header for this region and length, every chunk of the header's size)
 * and stores the stream as it came, with the first 8 bytes of the
 * terminal's keyed digest for the restore decision.
 */
/* Store the backup of region s->bk_region (`len` bytes of s->bk_buf and
 * its 8-byte hash) in the registry. */
static int store_backup(otaup_session *s, const otaup_sm_region *r, size_t len, const uint8_t hash[8])
{
    otaup_reg_backup b;
    memset(&b, 0, sizeof b);
    snprintf(b.terminal, sizeof b.terminal, "%s", s->info.id);
    b.region = s->bk_region;
    b.session_id = s->rs.session_id;
    b.addr = r->addr;
    b.len = (uint32_t)len;
    memcpy(b.hash, hash, 8);
    return otaup_registry_backup_store(s->o.reg, &b, s->bk_buf, len);
}

/* Region s->bk_region is backed up: on to the next one. */
static int next_region(otaup_session *s)
{
    s->bk_region++;
    s->rs.regions = s->bk_region;
    persist(s);
    return next_backup(s);
}

static int on_sealed_data(otaup_session *s, const otaup_sm *m, const otaup_sm_region *r)
{
    const uint8_t *ct = m->data;
    size_t n = m->len;
    uint32_t want;
    int rc;
    if (!(m->flags & OTAUP_RDATA_TAG)) {
        return fail(s, OTAUP_E_PEER, "plain backup data from a terminal that seals its backups");
    }
    if (m->offset == 0) {
        uint32_t chunk = seal_header_chunk(ct, n, r->id, r->len);
        if (chunk == 0) {
            return fail(s, OTAUP_E_PEER, "sealed backup: no stream header for this region");
        }
        free(s->bk_buf);
        s->bk_buf = malloc(OTAUP_SEAL_SIZE((size_t)r->len, (size_t)chunk));
        if (s->bk_buf == NULL) {
            return fail(s, OTAUP_E_NOMEM, "backup buffer");
        }
        memcpy(s->bk_buf, ct, OTAUP_SEAL_HEADER_LEN);
        s->bk_slen = OTAUP_SEAL_HEADER_LEN;
        s->bk_schunk = chunk;
        ct += OTAUP_SEAL_HEADER_LEN;
        n -= OTAUP_SEAL_HEADER_LEN;
    } else if (s->bk_schunk == 0) {
        return 0; /* no header yet: the timer asks again from offset 0 */
    }
    want = r->len - s->bk_got < s->bk_schunk ? r->len - s->bk_got : s->bk_schunk;
    if (n != want) {
        return fail(s, OTAUP_E_PEER, "sealed backup: a chunk differs from the stream's chunk size");
    }
    memcpy(s->bk_buf + s->bk_slen, ct, n);
    memcpy(s->bk_buf + s->bk_slen + n, m->tag, OTAUP_GCM_TAG_LEN);
    s->bk_slen += n + OTAUP_GCM_TAG_LEN;
    s->bk_got += (uint32_t)n;
    s->stats.backup_bytes += (uint32_t)n;
    s->bk_asked = s->now;
    s->bk_tries = 0; /* data came: the stalls counted are no longer in a row */
    if (s->bk_got < r->len) {
        if (m->flags & OTAUP_RDATA_LAST) {
            return fail(s, OTAUP_E_PEER, "backup ended before the end of its region");
        }
        return 0;
    }
    if (!(m->flags & OTAUP_RDATA_LAST) || !(m->flags & OTAUP_RDATA_HASH) || m->hash_alg != OTAUP_HASH_SHA256) {
        return fail(s, OTAUP_E_PEER, "sealed backup: the last chunk lacks the region's keyed digest");
    }
    /* the stream: longer than the region (registry.h); its digest keyed:
     * equal only for equal content */
    rc = store_backup(s, r, s->bk_slen, m->hash);
    if (rc < 0) {
        return fail(s, rc, "registry: storing the backup");
    }
    otaup_registry_audit(s->o.reg, s->info.id, "backup",
                         "region %u (0x%08x, %u bytes) sealed by the terminal (%zu bytes, unreadable here), "
                         "stored encrypted (AES-256-GCM)",
                         s->bk_region, r->addr, r->len, s->bk_slen);
    slog(s, OTAUP_LOG_INFO, "backup", "region=%u addr=0x%08x bytes=%u sealed=%zu", s->bk_region, r->addr, r->len,
         s->bk_slen);
    return next_region(s);
}

static int on_backup_data(otaup_session *s, const otaup_sm *m)
{
    const otaup_sm_region *r;
    uint64_t h;
    uint8_t hb[8];
    int rc, i, ri = region_index(s, m->region);
    if (s->st == OTAUP_SS_VERIFY) {
        return on_verify_hash(s, m);
    }
    if (s->st != OTAUP_SS_BACKUP || ri != (int)s->bk_region) {
        return 0; /* late duplicate */
    }
    r = &s->info.regions[s->bk_region];
    if (m->offset != s->bk_got) {
        return 0; /* out of order: the timer asks again from bk_got */
    }
    if (s->info.caps & OTAUP_CAP_SEALED) {
        return on_sealed_data(s, m, r);
    }
    if (m->len > r->len - s->bk_got) {
        return fail(s, OTAUP_E_PEER, "backup data beyond its region");
    }
    memcpy(s->bk_buf + s->bk_got, m->data, m->len);
    s->bk_got += (uint32_t)m->len;
    s->stats.backup_bytes += (uint32_t)m->len;
    s->bk_asked = s->now;
    s->bk_tries = 0; /* data came: the stalls counted are no longer in a row */
    if (s->bk_got < r->len) {
        if (m->flags & OTAUP_RDATA_LAST) {
            return fail(s, OTAUP_E_PEER, "backup ended before the end of its region");
        }
        return 0;
    }
    h = XXH3_64bits(s->bk_buf, r->len);
    for (i = 0; i < 8; i++) {
        hb[i] = (uint8_t)(h >> (8 * i));
    }
    /* the data must match what the terminal says it holds */
    if ((r->hash_alg == 1 && memcmp(hb, r->hash, 8) != 0) ||
        ((m->flags & OTAUP_RDATA_HASH) && m->hash_alg == OTAUP_HASH_XXH3_64 && memcmp(hb, m->hash, 8) != 0)) {
        /* counted apart from the stalls: two stalls do not use up the
         * copies asked again for a mismatch */
        if (++s->bk_bad < BACKUP_RETRIES) {
            slog(s, OTAUP_LOG_WARN, "backup", "region %u hash mismatch: asking again", s->bk_region);
            s->bk_got = 0;
            rc = ask_backup(s);
            return rc < 0 ? fail(s, rc, "backup request") : 0;
        }
        return fail(s, OTAUP_E_BACKUP, "backup does not match the region's hash");
    }
    rc = store_backup(s, r, r->len, hb);
    otaup_regcrypt_wipe(s->bk_buf, r->len);
    if (rc < 0) {
        return fail(s, rc, "registry: storing the backup");
    }
    otaup_registry_audit(s->o.reg, s->info.id, "backup", "region %u (0x%08x, %u bytes) stored encrypted (AES-256-GCM)",
                         s->bk_region, r->addr, r->len);
    slog(s, OTAUP_LOG_INFO, "backup", "region=%u addr=0x%08x bytes=%u encrypted", s->bk_region, r->addr, r->len);
    return next_region(s);
}

/* ---- prepare: the source image and the delta -------------------------------- */

static uint32_t payload_max(const otaup_session *s)
{
    uint32_t f = maxf(s), ov = otaup_swire_overhead();
    return f > ov + 16 ? f - ov : 16;
}

static void drop_delta(otaup_session *s)
{
    if (s->dref != NULL) {
        otaup_delta_cache_release(s->o.cache, s->dref);
        s->dref = NULL;
    }
    otaup_blob_free(&s->delta_own);
    s->delta = NULL;
    s->delta_len = 0;
}

/* A terminal that verifies signatures gets the release's signed delta:
 * signed at publication (the registry's signed variant), else signed now
 * with the daemon's key, else a clear refusal before anything is sent. */
static int sign_now(otaup_session *s, const otaup_reg_delta_key *ks, otaup_blob *b, uint32_t *off)
{
    otaup_blob sd = { NULL, 0 };
    otaup_delta_header h;
    char kid[17];
    int rc;
    if (s->o.sign_key == NULL) {
        snprintf(s->why, sizeof s->why,
                 "the terminal takes signed updates only and release %s has no signed delta from %s for its "
                 "flash layout: run otaupctl release sign %lld --key KEY (or give otaupd --sign-key)",
                 s->rel.version, s->term.version, (long long)s->rel.id);
        otaup_blob_free(b);
        return OTAUP_E_UNSIGNED;
    }
    rc = otaup_session_sign_delta(s->o.reg, s->o.sign_key, &s->term, &s->rel,
                                  s->info.have_image_sha256 ? s->info.image_sha256 : NULL, b->data, b->len, &sd);
    otaup_blob_free(b);
    if (rc == OTAUP_E_SOURCE_MISMATCH) {
        snprintf(s->why, sizeof s->why,
                 "cannot sign a delta for this terminal: its image is not in the registry and it reports no "
                 "SHA-256 of it");
        return OTAUP_E_UNSIGNED;
    }
    if (rc < 0) {
        snprintf(s->why, sizeof s->why, "signing the delta %s -> %s", s->term.version, s->rel.version);
        return rc;
    }
    *b = sd;
    rc = otaup_delta_check(b->data, b->len, &h, off);
    if (rc < 0) {
        otaup_blob_free(b);
        return rc;
    }
    if (s->o.delta == NULL) {
        (void)otaup_registry_delta_put(s->o.reg, ks, b->data, b->len); /* the next terminal like it gets it */
    }
    otaup_session_key_id_hex(b->data, b->len, kid);
    otaup_registry_audit(s->o.reg, s->info.id, "delta", "delta %s -> %s signed on demand by key %s (counter %u)",
                         s->term.version, s->rel.version, kid, s->rel.security_counter);
    slog(s, OTAUP_LOG_INFO, "delta", "signed on demand: key=%s counter=%u bytes=%zu", kid, s->rel.security_counter,
         b->len);
    return 0;
}

/* The delta for (terminal's image -> release): shared cache, else the provider. */
static int get_delta(otaup_session *s)
{
    otaup_reg_delta_key k;
    otaup_session_delta_cb cb = s->o.delta != NULL ? s->o.delta : otaup_session_default_delta;
    otaup_blob b = { NULL, 0 };
    uint32_t off = 0;
    int rc, want_signed = (s->info.caps & OTAUP_CAP_SIGNED) != 0, have = 0;
    s->why[0] = '\0';
    otaup_session_delta_key(&s->term, s->term.image_hash, s->rel.image_hash, want_signed, &k);
    if (s->o.cache != NULL && s->o.delta == NULL) {
        s->dref = otaup_delta_cache_get(s->o.cache, &k, &s->delta, &s->delta_len, &s->body_off);
        if (s->dref != NULL) {
            return 0;
        }
    }
    if (want_signed && s->o.delta == NULL && otaup_registry_delta_get(s->o.reg, &k, &b) == 0) {
        otaup_delta_header h;
        /* signed at publication; it must be what it claims to be */
        if (otaup_delta_check(b.data, b.len, &h, &off) == 0 &&
            memcmp(h.source_hash, s->term.image_hash, OTAUP_REG_HASH_LEN) == 0 &&
            memcmp(h.target_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) == 0 &&
            otaup_session_delta_signed(b.data, b.len)) {
            have = 1;
        } else {
            otaup_blob_free(&b);
        }
    }
    if (!have) {
        rc = cb(s->o.reg, &s->term, &s->rel, s->sig, s->sig_len, &b, &off, s->o.delta_payload);
        if (rc < 0) {
            return rc;
        }
        if (want_signed && !otaup_session_delta_signed(b.data, b.len)) {
            rc = sign_now(s, &k, &b, &off);
            if (rc < 0) {
                return rc;
            }
        }
    }
    if (off >= b.len) {
        otaup_blob_free(&b);
        return OTAUP_E_DELTA_CORRUPT;
    }
    s->body_off = off;
    if (s->o.cache != NULL && s->o.delta == NULL) {
        const uint8_t *d = b.data;
        size_t n = b.len;
        s->dref = otaup_delta_cache_put(s->o.cache, &k, &b, off);
        if (s->dref != NULL) {
            s->delta = d;
            s->delta_len = n;
            return 0;
        }
    }
    s->delta_own = b;
    s->delta = b.data;
    s->delta_len = b.len;
    return 0;
}

static int start_transfer(otaup_session *s)
{
    otaup_sm m;
    uint32_t start, sync_index = 0, i;
    int rc;
    if (withdrawn_now(s)) {
        return 0;
    }
    rc = otaup_tx_init(&s->tx, s->delta + s->body_off, s->delta_len - s->body_off);
    if (rc < 0) {
        return fail(s, rc, "delta body");
    }
    s->tx_ready = 1;
    start = s->resuming ? otaup_tx_resume_offset(&s->tx, s->resume_step, &sync_index) : 0;
    rc = otaup_tx_cut(&s->tx, start, payload_max(s));
    if (rc < 0) {
        return fail(s, rc, "cutting the record stream");
    }
    s->tx.window_units = s->o.window_frames;
    s->tx.window_bytes = s->o.window_bytes;
    s->tx.rto_ms = s->tx.rto_base_ms = base_rto(s);
    s->tx.rto_max_ms = s->o.rto_max_ms;
    s->tx.max_retries = s->o.max_retries;
    s->stats.stream_bytes = 0;
    for (i = 0; i < s->tx.nunits; i++) {
        s->stats.stream_bytes += otaup_tx_unit_len(&s->tx, i);
    }
    s->stats.resumed_from_step = s->resuming ? sync_index : 0;
    /* the whole stream, also when this connection sends only its rest */
    s->rs.bytes_total = (uint64_t)start + s->stats.stream_bytes;
    {
        const otaup_swire_peer *p = otaup_swire_peer_info(s->wire);
        if (p->have && p->max_msg < 12u + s->body_off) {
            char why[120];
            snprintf(why, sizeof why, "the terminal takes messages of %u bytes, START needs %u", p->max_msg,
                     12u + s->body_off);
            return fail(s, OTAUP_E_LIMIT, why);
        }
    }
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_START;
    m.session_id = s->rs.session_id;
    m.flags = s->resuming ? OTAUP_START_RESUME : 0;
    m.step = sync_index;
    m.total = s->tx.nunits;
    m.version = s->rel.version;
    memcpy(m.image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN);
    rc = cq_push(s, &m, s->delta, s->body_off);
    if (rc < 0) {
        return fail(s, rc, "START");
    }
    s->term_knows = 1;
    set_state(s, OTAUP_SS_START);
    persist(s);
    {
        char kid[17] = "";
        otaup_session_key_id_hex(s->delta, s->delta_len, kid);
        otaup_registry_audit(s->o.reg, s->info.id, "start", "session %08x: %zu-byte delta, %u frames%s%s%s",
                             s->rs.session_id, s->delta_len, s->tx.nunits, kid[0] ? ", signed by key " : ", unsigned",
                             kid, s->resuming ? " (resumed)" : "");
        slog(s, OTAUP_LOG_INFO, "start", "session=%08x delta=%zu image=%u frames=%u resume_sync=%u signed=%s",
             s->rs.session_id, s->delta_len, s->rel.image_size, s->tx.nunits, sync_index, kid[0] ? kid : "no");
    }
    return 0;
}

static uint32_t sig_block(const otaup_session *s)
{
    uint32_t size = s->info.image_size;
    return size <= (1u << 20) ? 1024u : size <= (16u << 20) ? 4096u : 65536u;
}

static int ask_signature(otaup_session *s)
{
    otaup_sm m;
    int rc;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_SIG_REQ;
    m.step = sig_block(s);
    m.offset = s->sig_got;
    m.total = chunk_room(s, 12u);
    rc = cq_push(s, &m, NULL, 0);
    if (rc < 0) {
        return fail(s, rc, "signature request");
    }
    s->sig_state = SIG_ASKED;
    s->sig_asked = s->now;
    s->sig_tries++;
    return 0;
}

static int enter_prepare(otaup_session *s)
{
    int rc;
    set_state(s, OTAUP_SS_PREPARE);
    persist(s);
    if (s->delta == NULL) {
        if (!s->src_trusted && s->sig_state == SIG_NONE) {
            /* check what it runs (or learn it) from its block signature */
            otaup_registry_audit(s->o.reg, s->info.id, "delta", "%s: asking its block signature",
                                 s->src_known ? "checking its image" : "image unknown");
            slog(s, OTAUP_LOG_INFO, "delta", "%s: signature requested",
                 s->src_known ? "checking the source image" : "source image unknown");
            return ask_signature(s);
        }
        if (!s->src_known) {
            return fail(s, OTAUP_E_SOURCE_MISMATCH,
                        "the terminal's image is unknown and it cannot report its block signature");
        }
        rc = get_delta(s);
        if (rc < 0) {
            char why[200];
            snprintf(why, sizeof why, "delta %s -> %s", s->term.version, s->rel.version);
            if (rc == OTAUP_E_LIMIT && s->why[0] == '\0') {
                /* which of its resources: the planner's least staging buffer
                 * (in place capped by the scratch area), else its RAM */
                uint32_t st = s->info.staging;
                if (s->info.layout == OTAUP_LAYOUT_INPLACE && s->info.scratch_size > 0 && st > s->info.scratch_size) {
                    st = s->info.scratch_size;
                }
                if (st > 0 && st < OTAUP_DELTA_STAGING_MIN) {
                    snprintf(why, sizeof why,
                             "delta %s -> %s: the terminal's staging buffer%s is %u bytes, the planner needs at "
                             "least %u",
                             s->term.version, s->rel.version,
                             st < s->info.staging ? " (capped by its scratch area)" : "", st,
                             OTAUP_DELTA_STAGING_MIN);
                } else {
                    snprintf(why, sizeof why,
                             "delta %s -> %s for the terminal's resources (RAM %u bytes, staging %u, scratch %u, "
                             "inflate window 2^%u, %u deferred records)",
                             s->term.version, s->rel.version, s->info.ram, s->info.staging, s->info.scratch_size,
                             s->info.window_bits, s->info.max_ops);
                }
            }
            if (rc == OTAUP_E_HASH && s->why[0] == '\0' && s->o.delta == NULL) {
                /* a release image the registry holds is not the one published
                 * (damaged at rest): say which, so that it is published again */
                otaup_reg_release x;
                otaup_blob img = { NULL, 0 };
                const char *which = NULL;
                if (otaup_registry_release_get(s->o.reg, s->rel.id, &x, &img) == OTAUP_E_HASH) {
                    which = "target";
                } else if (otaup_registry_release_by_hash(s->o.reg, s->term.image_hash, &x, &img) == OTAUP_E_HASH) {
                    which = "source";
                }
                otaup_blob_free(&img);
                if (which != NULL) {
                    snprintf(why, sizeof why,
                             "delta %s -> %s: the registry's copy of the %s image (release %lld) is damaged (not "
                             "the image published)",
                             s->term.version, s->rel.version, which, (long long)x.id);
                }
            }
            if (rc == OTAUP_E_UNSIGNED) {
                /* fail() clears the queue; the user is told why after the ABORT, which
                 * a terminal ignores outside a session */
                char text[200];
                rc = fail(s, rc, s->why[0] != '\0' ? s->why : why);
                snprintf(text, sizeof text,
                         "Software %s cannot be installed yet: this terminal takes signed updates only and "
                         "none is available for it.",
                         s->rel.version);
                s->seq_next = s->expected + 1u; /* right after the ABORT's number */
                send_simple(s, OTAUP_SM_DONE, OTAUP_E_UNSIGNED, text);
                return rc;
            }
            return fail(s, rc, s->why[0] != '\0' ? s->why : why);
        }
        s->stats.delta_bytes = s->delta_len;
        s->stats.image_size = s->rel.image_size;
        free(s->sig); /* planned: the signature is no longer needed */
        s->sig = NULL;
        {
            otaup_delta_header h;
            if (otaup_delta_header_decode(s->delta, s->delta_len, &h) > 0) {
                s->rs.steps_total = h.step_count;
            }
        }
    }
    return start_transfer(s);
}

static int on_sig_data(otaup_session *s, const otaup_sm *m)
{
    otaup_sig sg;
    char h[33];
    int rc;
    if (s->st != OTAUP_SS_PREPARE || s->sig_state != SIG_ASKED) {
        return 0;
    }
    if (m->total == 0 || m->total > 64u * 1024u * 1024u ||
        m->total != OTAUP_SIG_SIZE((uint64_t)s->info.image_size, sig_block(s))) {
        return fail(s, OTAUP_E_SIG_FORMAT, "signature size does not match the image");
    }
    if (s->sig == NULL) {
        s->sig = malloc(m->total);
        if (s->sig == NULL) {
            return fail(s, OTAUP_E_NOMEM, "signature");
        }
        s->sig_len = m->total;
        s->sig_got = 0;
    }
    if (m->total != s->sig_len || m->offset != s->sig_got || m->len > s->sig_len - s->sig_got) {
        return 0;
    }
    memcpy(s->sig + s->sig_got, m->data, m->len);
    s->sig_got += (uint32_t)m->len;
    if (m->len > 0) {
        s->sig_asked = s->now;
        s->sig_tries = 0; /* data came: the stalls counted are no longer in a row */
    }
    if (s->sig_got < s->sig_len) {
        return 0;
    }
    s->sig_state = SIG_DONE;
    rc = otaup_sig_parse(s->sig, s->sig_len, &sg);
    if (rc < 0) {
        return fail(s, rc == OTAUP_E_UNSUPPORTED ? rc : OTAUP_E_SIG_FORMAT, "block signature");
    }
    if (sg.info.size != s->info.image_size) {
        return fail(s, OTAUP_E_SIG_FORMAT, "signature of another image size");
    }
    hex16(sg.info.hash, h);
    if (memcmp(sg.info.hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) == 0) {
        /* it already runs the target (the last session ended before we heard) */
        memcpy(s->term.image_hash, sg.info.hash, OTAUP_REG_HASH_LEN);
        otaup_registry_terminal_put(s->o.reg, &s->term);
        otaup_registry_audit(s->o.reg, s->info.id, "verified", "image already equals release %s", s->rel.version);
        if (!s->term_knows && !s->info.active) {
            /* no START of this session ever went out, so the terminal has
             * nothing to commit (a COMMIT would be refused: session id does
             * not match): it runs the target, whatever its version says */
            return finish_current(s);
        }
        return enter_verify(s);
    }
    if (!s->src_known || memcmp(sg.info.hash, s->term.image_hash, OTAUP_REG_HASH_LEN) != 0) {
        otaup_reg_release kr;
        int k = otaup_registry_release_by_hash(s->o.reg, sg.info.hash, &kr, NULL) == 0;
        otaup_registry_audit(s->o.reg, s->info.id, "delta", "its image %s is %s%s%s", h,
                             k ? "release " : "unknown: planning from its block signature",
                             k ? kr.version : "", s->src_known ? " (not what its version says)" : "");
        slog(s, OTAUP_LOG_WARN, "delta", "image=%s %s", h, k ? "known release" : "unknown: planning from signature");
        memcpy(s->term.image_hash, sg.info.hash, OTAUP_REG_HASH_LEN);
        otaup_registry_terminal_put(s->o.reg, &s->term);
    }
    s->src_known = s->src_trusted = 1;
    return enter_prepare(s);
}

/* ---- verify, restore, commit ---------------------------------------------- */

static int send_commit(otaup_session *s)
{
    otaup_sm m;
    int rc;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_COMMIT;
    m.session_id = s->rs.session_id;
    m.code = s->info.layout == OTAUP_LAYOUT_AB ? OTAUP_COMMIT_SWITCH : OTAUP_COMMIT_DONE;
    set_state(s, OTAUP_SS_COMMIT);
    persist(s);
    rc = cq_push(s, &m, NULL, 0);
    return rc < 0 ? fail(s, rc, "COMMIT") : 0;
}

/* After the stream: ask each region's hash (BACKUP_REQ HASH_ONLY). */
static int enter_verify(otaup_session *s)
{
    uint32_t i;
    int rc;
    if (s->tx_ready) {
        otaup_tx_free(&s->tx);
        s->tx_ready = 0;
    }
    set_state(s, OTAUP_SS_VERIFY);
    persist(s);
    s->vgot = 0;
    if (s->info.nregions == 0) {
        return send_commit(s);
    }
    if (s->vhash_unsupported) {
        return enter_restore_or_commit(s, 1);
    }
    for (i = 0; i < s->info.nregions; i++) {
        otaup_sm m;
        memset(&m, 0, sizeof m);
        m.type = OTAUP_SM_BACKUP_REQ;
        m.region = s->info.regions[i].id;
        m.flags = OTAUP_BACKUP_HASH_ONLY;
        m.offset = s->info.regions[i].len;
        m.total = 1;
        rc = cq_push(s, &m, NULL, 0);
        if (rc < 0) {
            return fail(s, rc, "region hash request");
        }
    }
    return 0;
}

static int on_verify_hash(otaup_session *s, const otaup_sm *m)
{
    int ri = region_index(s, m->region);
    /* a sealing terminal reports its keyed digest (SHA-256 sized) */
    uint8_t alg = (s->info.caps & OTAUP_CAP_SEALED) ? OTAUP_HASH_SHA256 : OTAUP_HASH_XXH3_64;
    if (ri < 0 || !(m->flags & OTAUP_RDATA_LAST) || !(m->flags & OTAUP_RDATA_HASH) || m->hash_alg != alg ||
        m->len != 0) {
        return 0; /* not an answer to a hash request */
    }
    memcpy(s->vhash[ri], m->hash, 8);
    s->vgot |= 1u << ri;
    if (s->vgot == (1u << s->info.nregions) - 1u) {
        return enter_restore_or_commit(s, 1);
    }
    return 0;
}

static int start_restore(otaup_session *s)
{
    otaup_reg_backup meta;
    uint32_t i = s->rlist[s->ri], chunk;
    uint64_t h;
    int rc, k;
    rc = otaup_registry_backup_load(s->o.reg, s->info.id, i, &meta, &s->rplain);
    if (rc == OTAUP_E_DECRYPT) {
        char why[120];
        snprintf(why, sizeof why,
                 "loading the backup of region %u: it does not decrypt (damaged at rest, or another master key)", i);
        return fail(s, rc, why);
    }
    if (rc < 0) {
        return fail(s, rc == OTAUP_E_NOT_FOUND ? OTAUP_E_BACKUP : rc, "loading the backup");
    }
    s->rs_chunk = 0;
    if (s->rplain.len != s->info.regions[i].len) {
        /* sealed by the terminal: sent back chunk by chunk as it came, each
         * RESTORE_DATA one sealed chunk (its tag in TAG, the header before
         * the first); the terminal authenticates each before writing it */
        const otaup_sm_region *r = &s->info.regions[i];
        uint32_t sc = seal_header_chunk(s->rplain.data, s->rplain.len, r->id, r->len);
        if (sc == 0 || s->rplain.len != OTAUP_SEAL_SIZE((size_t)r->len, (size_t)sc)) {
            return fail(s, OTAUP_E_BACKUP, "sealed backup: stored stream damaged");
        }
        if (8u + OTAUP_RDATA_TAG_SIZE + OTAUP_SEAL_HEADER_LEN + sc > payload_max(s)) {
            return fail(s, OTAUP_E_BACKUP, "sealed backup: its chunks no longer fit the terminal's frames");
        }
        s->rs_chunk = sc;
        rc = otaup_tx_init_raw(&s->rtx, s->rplain.data + OTAUP_SEAL_HEADER_LEN,
                               s->rplain.len - OTAUP_SEAL_HEADER_LEN, sc + OTAUP_GCM_TAG_LEN);
    } else {
        h = XXH3_64bits(s->rplain.data, s->rplain.len);
        for (k = 0; k < 8; k++) {
            s->rhash[k] = (uint8_t)(h >> (8 * k));
        }
        chunk = restore_chunk(s);
        if (chunk == 0) {
            return fail(s, OTAUP_E_LIMIT, "restore: the terminal's frames cannot carry one write unit of its flash");
        }
        rc = otaup_tx_init_raw(&s->rtx, s->rplain.data, s->rplain.len, chunk);
    }
    if (rc < 0) {
        return fail(s, rc, "restore");
    }
    s->rtx_ready = 1;
    s->rtx.window_units = s->o.window_frames;
    s->rtx.window_bytes = s->o.window_bytes;
    s->rtx.max_retries = s->o.max_retries;
    s->rtx.rto_ms = s->rtx.rto_base_ms = base_rto(s);
    s->rtx.rto_max_ms = s->o.rto_max_ms;
    s->rseq_base = s->seq_next;
    s->seq_next += s->rtx.nunits;
    s->restore_sent = 1;
    s->stats.restore_bytes += (uint32_t)s->rplain.len;
    set_state(s, OTAUP_SS_RESTORE);
    persist(s);
    slog(s, OTAUP_LOG_INFO, "restore", "region=%u bytes=%zu", i, s->rplain.len);
    return 0;
}

/* The backups' hashes, region by region (metadata: nothing decrypted). */
struct backup_hashes {
    uint32_t have; /* bit per region */
    uint8_t hash[OTAUP_SM_MAX_REGIONS][8];
};

static int backup_hash_cb(const otaup_reg_backup *b, void *payload)
{
    struct backup_hashes *h = payload;
    if (b->region < OTAUP_SM_MAX_REGIONS) {
        memcpy(h->hash[b->region], b->hash, 8);
        h->have |= 1u << b->region;
    }
    return 0;
}

/* decide != 0: choose the regions to restore from s->vhash (all when the
 * terminal cannot report hashes); 0: go on with the list. */
static int enter_restore_or_commit(otaup_session *s, int decide)
{
    int rc;
    if (decide) {
        uint32_t i;
        struct backup_hashes bh;
        s->rn = s->ri = 0;
        /* compared with the hashes the backups were taken with: a backup
         * is decrypted only when a region must be restored from it, so
         * one damaged at rest does not stop a commit that needs none */
        memset(&bh, 0, sizeof bh);
        rc = otaup_registry_backup_list(s->o.reg, s->info.id, backup_hash_cb, &bh);
        if (rc < 0) {
            return fail(s, rc, "backup for restore");
        }
        for (i = 0; i < s->info.nregions; i++) {
            int intact;
            if (!(bh.have & (1u << i))) {
                return fail(s, OTAUP_E_BACKUP, "backup for restore");
            }
            intact = !s->vhash_unsupported && memcmp(s->vhash[i], bh.hash[i], 8) == 0;
            if (!intact || (s->o.restore_always && s->rounds == 0)) {
                s->rlist[s->rn++] = i;
            }
        }
        if (s->rn == 0) {
            if (s->rounds == 0) {
                otaup_registry_audit(s->o.reg, s->info.id, "restore", "skipped: all %u user-data regions intact",
                                     s->info.nregions);
                slog(s, OTAUP_LOG_INFO, "restore", "skipped: user data intact");
            }
            return send_commit(s);
        }
        if (s->rounds >= MAX_RESTORE_ROUNDS) {
            return fail(s, OTAUP_E_BACKUP, "user data still differs after restore");
        }
        if (s->vhash_unsupported && s->rounds > 0) {
            return send_commit(s); /* restored; the terminal checked each region's hash */
        }
        s->rounds++;
        slog(s, OTAUP_LOG_INFO, "restore", "%u region(s) to restore%s", s->rn,
             s->vhash_unsupported ? " (terminal reports no hashes)" : "");
    }
    if (s->ri < s->rn) {
        return start_restore(s);
    }
    /* every listed region restored: check again */
    return enter_verify(s);
}

static int finish(otaup_session *s)
{
    int n;
    n = otaup_registry_backup_delete(s->o.reg, s->info.id);
    if (n < 0) {
        /* The terminal has committed: it is upgraded, and an ABORT now
         * would tell its user the upgrade failed. The backup stays, and so
         * does the session row at commit: the terminal's next connection
         * sends COMMIT again, its journal gives the same RESULT, and the
         * backup is deleted then. */
        slog(s, OTAUP_LOG_WARN, "backup", "could not delete the backup (%s: %s): kept until the terminal's "
             "next connection", otaup_errname(n) ? otaup_errname(n) : "?", otaup_registry_errmsg(s->o.reg));
        otaup_registry_audit(s->o.reg, s->info.id, "backup-kept",
                             "session %08x committed but its backup could not be deleted (%s); deleted at the "
                             "terminal's next connection",
                             s->rs.session_id, otaup_strerror(n));
    } else {
        otaup_registry_audit(s->o.reg, s->info.id, "backup-deleted",
                             "%d region(s) deleted irreversibly (secure delete, key destroyed)", n);
    }
    snprintf(s->term.version, sizeof s->term.version, "%s", s->rel.version);
    s->term.build_time = s->rel.build_time;
    memcpy(s->term.image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN);
    s->term.image_size = s->rel.image_size;
    snprintf(s->term.status, sizeof s->term.status, "upgraded");
    otaup_registry_terminal_put(s->o.reg, &s->term);
    s->rs.next_step = s->rs.steps_total; /* every step is in place */
    s->rs.result = 0;
    if (n < 0) {
        persist(s); /* still at commit: its bytes and retransmissions */
    }
    set_state(s, OTAUP_SS_DONE);
    if (n >= 0) {
        persist(s);
    }
    /* over all the session's connections, as the session row (persist()) */
    otaup_registry_audit(s->o.reg, s->info.id, "upgraded",
                         "session %08x: now %s; %llu stream bytes sent for a %u-byte image, %u retransmits",
                         s->rs.session_id, s->rel.version, (unsigned long long)s->rs.bytes_sent,
                         s->rel.image_size, s->rs.retransmits);
    slog(s, OTAUP_LOG_INFO, "done", "version=%s sent=%llu image=%u retransmits=%u", s->rel.version,
         (unsigned long long)s->stats.stream_sent, s->rel.image_size, s->stats.retransmits);
    send_simple(s, OTAUP_SM_DONE, 0, "Upgrade complete. Your personal data was kept.");
    s->finished = 1;
    return 0;
}

/* The terminal already runs the release and is in no session: nothing was
 * written to it, so there is nothing to verify or commit. The backup taken
 * for this session is deleted and the registry records what it runs. */
static int finish_current(otaup_session *s)
{
    int n = otaup_registry_backup_delete(s->o.reg, s->info.id);
    if (n < 0) {
        return fail(s, n, "deleting the backup");
    }
    if (n > 0) {
        otaup_registry_audit(s->o.reg, s->info.id, "backup-deleted",
                             "%d region(s) deleted irreversibly (secure delete, key destroyed)", n);
    }
    /* what it runs is the release (its version and build time, not the
     * older ones it reported) */
    snprintf(s->term.version, sizeof s->term.version, "%s", s->rel.version);
    s->term.build_time = s->rel.build_time;
    memcpy(s->term.image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN);
    s->term.image_size = s->rel.image_size;
    snprintf(s->term.status, sizeof s->term.status, "up-to-date");
    otaup_registry_terminal_put(s->o.reg, &s->term);
    s->rs.result = 0;
    set_state(s, OTAUP_SS_DONE);
    persist(s);
    otaup_registry_audit(s->o.reg, s->info.id, "up-to-date",
                         "session %08x: its image is release %s already (it reports version %s); nothing sent",
                         s->rs.session_id, s->rel.version, s->info.version);
    slog(s, OTAUP_LOG_INFO, "done", "version=%s image already the release (reported %s): nothing to do",
         s->rel.version, s->info.version);
    send_simple(s, OTAUP_SM_DONE, 0, "Your software is up to date.");
    s->finished = 1;
    return 0;
}

static int on_result(otaup_session *s, const otaup_sm *m)
{
    if (s->st == OTAUP_SS_DONE || s->st == OTAUP_SS_IDLE) {
        return 0;
    }
    if (m->code != 0) {
        char why[96];
        snprintf(why, sizeof why, "terminal reports %s", otaup_errname(m->code) ? otaup_errname(m->code) : "an error");
        return fail(s, m->code < 0 ? m->code : OTAUP_E_PEER, why);
    }
    if (m->session_id != 0 && s->rs.session_id != 0 && m->session_id != s->rs.session_id) {
        return 0; /* the result of an older session */
    }
    if (m->hash_alg == OTAUP_HASH_XXH3_128 && memcmp(m->image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) != 0 &&
        (s->st == OTAUP_SS_COMMIT || s->st == OTAUP_SS_VERIFY || s->st == OTAUP_SS_START ||
         s->st == OTAUP_SS_TRANSFER)) {
        return fail(s, OTAUP_E_TARGET_MISMATCH, "result");
    }
    if (s->st == OTAUP_SS_COMMIT) {
        return finish(s);
    }
    if ((s->st == OTAUP_SS_START || s->st == OTAUP_SS_TRANSFER) && m->session_id == s->rs.session_id) {
        /* Its journal says this session already ended well (the RESULT
         * names it: one that names no session, 0, is no such word; no
         * COMMIT went out in this connection to be answered): a terminal
         * ends a session well only on our COMMIT, sent after the user-data
         * check, so it was committed (our row lags behind: the writes that
         * followed were lost). Finish it now: a terminal whose update is
         * over does not wait for region hashes and a second COMMIT, and
         * the backup would stay held after it hung up. */
        otaup_registry_audit(s->o.reg, s->info.id, "verified",
                             "terminal reports the session committed already");
        return finish(s);
    }
    return 0;
}

/* ---- acknowledgements ------------------------------------------------------ */

static int transient(int code)
{
    return code == 0 || code == OTAUP_E_SEQ || code == OTAUP_E_AGAIN || code == OTAUP_E_DUPLICATE ||
           (code <= OTAUP_E_FRAME_MAGIC && code >= OTAUP_E_FRAME_OVERSIZE) || code == OTAUP_E_FRAME_GARBAGE;
}

static int on_start_acked(otaup_session *s)
{
    s->seq_base = s->seq_next;
    s->seq_next += s->tx.nunits;
    set_state(s, OTAUP_SS_TRANSFER);
    persist(s);
    if (s->tx.nunits == 0) {
        return enter_verify(s);
    }
    return 0;
}

/* Why a terminal refused START: its verifier's verdict (docs/security.md §5). */
static void start_refusal(const otaup_session *s, int code, char *out, size_t cap)
{
    char kid[17] = "";
    const char *what;
    if (s->delta != NULL) {
        otaup_session_key_id_hex(s->delta, s->delta_len, kid);
    }
    switch (code) {
    case OTAUP_E_UNSIGNED:
        what = "the update is not signed and it takes signed updates only";
        break;
    case OTAUP_E_KEY:
        what = "the update is signed by a key it does not trust";
        break;
    case OTAUP_E_SIGNATURE:
        what = "the update's signature does not verify";
        break;
    case OTAUP_E_ROLLBACK:
        snprintf(out, cap,
                 "terminal refused the update before any flash write: security counter %u is lower than its "
                 "own %u (anti-rollback)",
                 s->rel.security_counter, s->info.sec_counter);
        return;
    case OTAUP_E_OLDER:
        what = "the update is older than what it runs and no signed policy allows a downgrade";
        break;
    case OTAUP_E_MODEL:
        what = "the update is signed for another model";
        break;
    case OTAUP_E_SOURCE_MISMATCH:
        what = "the update was made for another installed image";
        break;
    default:
        what = otaup_strerror(code);
        break;
    }
    snprintf(out, cap, "terminal refused the update before any flash write: %s%s%s%s", what,
             kid[0] ? " (manifest signed by key " : "", kid, kid[0] ? ")" : "");
}

/* The refusal of frame `seq` with `code` was handled by taking its number
 * back for what follows. The terminal answers a copy of the refused frame
 * with the same NACK (protocol.md §4, rule 5): a copy the server's timer
 * sent before the first NACK arrived, or a NACK the link duplicated. */
static void taken_back(otaup_session *s, uint32_t seq, int32_t code)
{
    s->tb_valid = 1;
    s->tb_seq = seq;
    s->tb_code = code;
    s->tb_at = s->now;
    s->tb_rto = s->cq_rto; /* the timeout of the moment, backoff included */
}

/* 1 if NACK m is a copy of the refusal taken back: the same frame, the
 * same code, within one retransmission timeout of the first. A copy comes
 * within that time (its frame went out at most one timeout after the
 * refused one). Should the frame that took the number be refused with
 * the same code this early, the timer resends it and the terminal's
 * answer to that copy, later, fails the session with the code. */
static int refusal_copy(const otaup_session *s, const otaup_sm *m)
{
    return s->tb_valid && m->ref_seq == s->tb_seq && m->code == s->tb_code && s->now - s->tb_at < s->tb_rto;
}

/* A frame the terminal refused (not transient). */
static int on_refused(otaup_session *s, const otaup_sm *m)
{
    unsigned i;
    char why[120];
    if (refusal_copy(s, m)) {
        slog(s, OTAUP_LOG_DEBUG, "state", "NACK of %u (%s) again: the answer to a copy of the frame refused",
             m->ref_seq, otaup_errname(m->code) ? otaup_errname(m->code) : "?");
        return 0;
    }
    for (i = 0; i < s->cqn; i++) {
        struct ctlent *e = cq_at(s, i);
        if (m->ref_seq >= e->m.seq && m->ref_seq < e->m.seq + e->nframes) {
            uint8_t type = e->m.type, flags = e->m.flags;
            if (type == OTAUP_SM_SIG_REQ) {
                taken_back(s, e->m.seq, m->code);
                cq_truncate(s, e->m.seq);
                s->sig_state = SIG_REFUSED;
                slog(s, OTAUP_LOG_WARN, "delta", "terminal cannot send its block signature (%s)",
                     otaup_errname(m->code) ? otaup_errname(m->code) : "?");
                return enter_prepare(s);
            }
            if (type == OTAUP_SM_BACKUP_REQ && (flags & OTAUP_BACKUP_HASH_ONLY)) {
                taken_back(s, e->m.seq, m->code);
                cq_truncate(s, e->m.seq);
                s->vhash_unsupported = 1;
                return enter_restore_or_commit(s, 1);
            }
            if (type == OTAUP_SM_START) {
                char text[240];
                start_refusal(s, m->code, text, sizeof text);
                if (!s->resuming) {
                    /* refused before the terminal took it (nothing written, its
                     * journal does not hold it): the row must not count as a
                     * session that started (otaup_registry_session_started) */
                    s->rs.bytes_total = 0;
                }
                return fail(s, m->code, text);
            }
            snprintf(why, sizeof why, "terminal refused message %u", type);
            return fail(s, m->code, why);
        }
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready && m->ref_seq - s->rseq_base < s->rtx.nunits) {
        snprintf(why, sizeof why, "terminal refused the restore of region %u%s", s->rlist[s->ri],
                 m->code == OTAUP_E_DECRYPT || m->code == OTAUP_E_REGION
                     ? " (a sealed chunk failed its authentication: nothing more of it was written)"
                     : "");
        return fail(s, m->code, why);
    }
    return fail(s, m->code, "terminal refused a command");
}

static int on_ack(otaup_session *s, const otaup_sm *m, int nack)
{
    uint32_t exp = m->seq;
    int rc, progress = 0;
    if (exp > s->seq_next) {
        return fail(s, OTAUP_E_PEER, "acknowledgement of a frame never sent");
    }
    if (nack && !transient(m->code)) {
        if (exp > s->expected) {
            s->expected = exp;
        }
        return on_refused(s, m);
    }
    if (!nack && m->code < 0 && s->st >= OTAUP_SS_START && s->st <= OTAUP_SS_COMMIT) {
        return fail(s, m->code, "terminal reports an error");
    }
    if (!nack && m->window > 0) {
        s->peer_window = m->window;
    }
    if (exp > s->expected) {
        s->expected = exp;
        s->adv_at = s->now;
        progress = 1;
    }
    /* control messages acknowledged */
    while (s->cqn > 0) {
        struct ctlent *e = cq_at(s, 0);
        uint8_t type;
        if (e->m.seq + e->nframes > s->expected) {
            break;
        }
        if (e->sent && !e->resent && e->m.seq + e->nframes == exp) {
            /* a round-trip sample from the message this acknowledgement
             * names, never from an older one it acknowledges as well: that
             * one's own ACK was lost, and its time since sending is not a
             * round trip (one such sample of 650 ms against 100 ms kept the
             * timeout at 2 s and its backoff ceiling at 17 s) */
            rtt_sample(s, (uint32_t)(s->now - e->first_sent));
        }
        type = e->m.type;
        ent_free(e);
        s->cqh = (s->cqh + 1) % CQ;
        s->cqn--;
        s->cq_tries = 0;
        s->cq_timer = s->now;
        s->cq_rto = base_rto(s); /* acknowledged: the backoff ends */
        if (type == OTAUP_SM_BACKUP_REQ && s->st == OTAUP_SS_BACKUP) {
            /* the terminal has the request now: the stall check counts
             * from here, not from when it was first sent (on a lossy
             * link, asking again as soon as a late ACK arrives makes the
             * terminal upload the region a second time) */
            s->bk_asked = s->now;
        }
        if (type == OTAUP_SM_SIG_REQ && s->st == OTAUP_SS_PREPARE) {
            s->sig_asked = s->now; /* the same for the signature's stall check */
        }
        if (type == OTAUP_SM_START && s->st == OTAUP_SS_START) {
            rc = on_start_acked(s);
            if (rc < 0) {
                return rc;
            }
        }
    }
    if (nack && s->cqn > 0) {
        /* go back to the first frame it lacks, once per round trip */
        uint32_t guard = s->srtt ? s->srtt : 200;
        if (s->now - s->cq_gb_time >= guard || progress) {
            unsigned i;
            for (i = 0; i < s->cqn; i++) {
                struct ctlent *e = cq_at(s, i);
                if (e->m.seq + e->nframes > exp && e->sent) {
                    e->sent = 0;
                    e->resent = 1;
                }
            }
            s->cq_gb_time = s->now;
        }
    }
    if (s->st == OTAUP_SS_TRANSFER && s->tx_ready && exp >= s->seq_base) {
        s->tx.window_units = s->o.window_frames < window(s) ? s->o.window_frames : window(s);
        rc = otaup_tx_ack(&s->tx, exp - s->seq_base, nack, s->now);
        if (rc < 0) {
            return fail(s, rc, "acknowledgement of a frame never sent");
        }
        if (rc == 1) {
            slog(s, OTAUP_LOG_INFO, "transfer", "complete: %llu bytes sent for %llu, %u retransmits",
                 (unsigned long long)s->stats.stream_sent, (unsigned long long)s->stats.stream_bytes,
                 s->tx.retransmits);
            s->stats.retransmits += s->tx.retransmits;
            s->stats.timeouts += s->tx.timeouts;
            s->stats.srtt_ms = s->tx.srtt_ms;
            otaup_registry_audit(s->o.reg, s->info.id, "verified",
                                 "record stream executed and its final VERIFY passed (%llu bytes)",
                                 (unsigned long long)s->stats.stream_bytes);
            return enter_verify(s);
        }
    } else if (s->st == OTAUP_SS_RESTORE && s->rtx_ready && exp >= s->rseq_base) {
        s->rtx.window_units = s->o.window_frames < window(s) ? s->o.window_frames : window(s);
        rc = otaup_tx_ack(&s->rtx, exp - s->rseq_base, nack, s->now);
        if (rc < 0) {
            return fail(s, rc, "acknowledgement of a frame never sent");
        }
        if (rc == 1) {
            otaup_registry_audit(s->o.reg, s->info.id, "restore", "region %u restored (%zu bytes)",
                                 s->rlist[s->ri], s->rplain.len);
            s->stats.retransmits += s->rtx.retransmits;
            otaup_tx_free(&s->rtx);
            s->rtx_ready = 0;
            otaup_regcrypt_wipe(s->rplain.data, s->rplain.len);
            otaup_blob_free(&s->rplain);
            s->ri++;
            return enter_restore_or_commit(s, 0);
        }
    }
    return 0;
}

static int on_progress(otaup_session *s, const otaup_sm *m)
{
    /* a long operation on the terminal: it is alive; restart the timers.
     * Not for ever: past idle_timeout_ms without an acknowledgement that
     * advances, the terminal is busy with nothing that ends (a loop that
     * still reports), and the timeouts count towards max_retries. */
    if (s->now - s->adv_at >= s->o.idle_timeout_ms) {
        if (s->st == OTAUP_SS_TRANSFER || s->st == OTAUP_SS_START) {
            s->rs.next_step = m->step;
        }
        return 0;
    }
    s->cq_timer = s->now;
    if (s->tx_ready) {
        s->tx.timer_start = s->now;
    }
    if (s->rtx_ready) {
        s->rtx.timer_start = s->now;
    }
    if (s->st == OTAUP_SS_TRANSFER || s->st == OTAUP_SS_START) {
        s->rs.next_step = m->step;
        if (s->now - s->persist_at >= 1000) {
            persist(s);
        }
    }
    return 0;
}

/* ---- input ------------------------------------------------------------ */

int otaup_session_input_msg(otaup_session *s, const otaup_sm *m, uint64_t now_ms)
{
    s->now = now_ms;
    s->last_rx = now_ms;
    s->clock_started = 1;
    if (s->finished) {
        return s->result;
    }
    if (!s->have_info && m->type != OTAUP_SM_INFO && m->type != OTAUP_SM_PING && m->type != OTAUP_SM_ACK &&
        m->type != OTAUP_SM_NACK && m->type != OTAUP_SM_PROGRESS && m->type != OTAUP_SM_ABORT) {
        return fail(s, OTAUP_E_PEER, "first message is not INFO");
    }
    switch (m->type) {
    case OTAUP_SM_INFO:
        if (m->info == NULL) {
            return fail(s, m->code < 0 ? m->code : OTAUP_E_PEER, m->text != NULL ? m->text : "empty INFO");
        }
        return on_info(s, m->info);
    case OTAUP_SM_CONSENT:
        return on_consent(s, m);
    case OTAUP_SM_BACKUP_DATA:
        return on_backup_data(s, m);
    case OTAUP_SM_SIG_DATA:
        return on_sig_data(s, m);
    case OTAUP_SM_ACK:
        return on_ack(s, m, 0);
    case OTAUP_SM_NACK:
        return on_ack(s, m, 1);
    case OTAUP_SM_PROGRESS:
        return on_progress(s, m);
    case OTAUP_SM_RESULT:
        return on_result(s, m);
    case OTAUP_SM_PING:
        return 0; /* the wire's ACK answers it */
    case OTAUP_SM_ABORT:
        return fail(s, m->code < 0 ? m->code : OTAUP_E_CANCELED, "terminal aborted");
    default:
        return fail(s, OTAUP_E_PEER, "unexpected message");
    }
}

/* ---- timers ---------------------------------------------------------------- */

static uint32_t keepalive_ms(const otaup_session *s)
{
    return s->o.idle_timeout_ms / 4u;
}

int otaup_session_poll(otaup_session *s, uint64_t now_ms)
{
    int rc;
    s->now = now_ms;
    if (!s->clock_started) {
        s->clock_started = 1;
        s->last_rx = s->last_tx = now_ms; /* the idle timer starts with the session */
    }
    if (s->finished) {
        return s->result;
    }
    if (now_ms - s->last_rx >= s->o.idle_timeout_ms) {
        slog(s, OTAUP_LOG_WARN, "timeout", "terminal silent for %u ms", s->o.idle_timeout_ms);
        otaup_session_closed(s, now_ms);
        s->result = OTAUP_E_TIMEOUT;
        return s->result;
    }
    if (s->st == OTAUP_SS_WAIT_REQUEST && now_ms >= s->t_next) {
        rc = take_request(s, NULL);
        if (rc < 0) {
            return fail(s, rc, "registry: request");
        }
        if (rc == 1) {
            return enter_backup(s);
        }
        s->t_next = now_ms + s->o.request_poll_ms;
    }
    if (s->st == OTAUP_SS_WAIT_REQUEST && s->cqn == 0 && now_ms - s->last_tx >= keepalive_ms(s)) {
        otaup_sm m;
        memset(&m, 0, sizeof m);
        m.type = OTAUP_SM_PING_OUT;
        cq_push(s, &m, NULL, 0);
        s->last_tx = now_ms;
    }
    if (s->st == OTAUP_SS_BACKUP && s->cqn == 0 && now_ms - s->bk_asked >= 4 * s->cq_rto + 4000) {
        /* the terminal stopped sending its data: ask again from what we have */
        if (s->bk_tries > s->o.max_retries) {
            return fail(s, OTAUP_E_RETRIES, "backup");
        }
        rc = ask_backup(s);
        if (rc < 0) {
            return fail(s, rc, "backup request");
        }
    }
    if (s->st == OTAUP_SS_PREPARE && s->sig_state == SIG_ASKED && s->cqn == 0 &&
        now_ms - s->sig_asked >= 4 * s->cq_rto + 4000) {
        /* the terminal stopped sending its block signature: ask again from
         * what we have, as for a backup, a bounded number of times in a row */
        if (s->sig_tries > s->o.max_retries) {
            return fail(s, OTAUP_E_RETRIES, "block signature");
        }
        slog(s, OTAUP_LOG_WARN, "delta", "block signature stalled at %u of %u bytes: asked again", s->sig_got,
             s->sig_len);
        rc = ask_signature(s);
        if (rc < 0) {
            return rc;
        }
    }
    if (s->cqn > 0 && cq_at(s, 0)->sent && now_ms - s->cq_timer >= s->cq_rto) {
        unsigned i;
        if (++s->cq_tries > s->o.max_retries) {
            return fail(s, OTAUP_E_RETRIES, "no answer");
        }
        for (i = 0; i < s->cqn; i++) {
            struct ctlent *e = cq_at(s, i);
            if (e->sent) {
                e->sent = 0;
                e->resent = 1;
            }
        }
        {
            uint32_t cap = backoff_cap(s, base_rto(s));
            s->cq_rto = s->cq_rto * 2 > cap ? cap : s->cq_rto * 2;
        }
        s->cq_timer = now_ms;
        s->stats.retransmits++;
        s->stats.timeouts++;
    }
    if (s->st == OTAUP_SS_TRANSFER && s->tx_ready) {
        s->tx.rto_max_ms = backoff_cap(s, s->tx.rto_base_ms);
        rc = otaup_tx_poll(&s->tx, now_ms);
        if (rc < 0) {
            return fail(s, rc, "transfer");
        }
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready) {
        s->rtx.rto_max_ms = backoff_cap(s, s->rtx.rto_base_ms);
        rc = otaup_tx_poll(&s->rtx, now_ms);
        if (rc < 0) {
            return fail(s, rc, "restore");
        }
    }
    if (s->st == OTAUP_SS_TRANSFER && now_ms - s->persist_at >= 2000) {
        persist(s);
    }
    return 0;
}

uint64_t otaup_session_deadline(const otaup_session *s)
{
    uint64_t d = s->last_rx + s->o.idle_timeout_ms, t;
    if (s->finished) {
        return UINT64_MAX;
    }
    if (!s->clock_started) {
        return 0; /* poll once to start the clock */
    }
    if (s->st == OTAUP_SS_WAIT_REQUEST) {
        if (s->t_next < d) {
            d = s->t_next;
        }
        if (s->cqn == 0 && s->last_tx + keepalive_ms(s) < d) {
            d = s->last_tx + keepalive_ms(s);
        }
    }
    if (s->st == OTAUP_SS_BACKUP && s->cqn == 0 && s->bk_asked + 4 * s->cq_rto + 4000 < d) {
        d = s->bk_asked + 4 * s->cq_rto + 4000;
    }
    if (s->st == OTAUP_SS_PREPARE && s->sig_state == SIG_ASKED && s->cqn == 0 &&
        s->sig_asked + 4 * s->cq_rto + 4000 < d) {
        d = s->sig_asked + 4 * s->cq_rto + 4000;
    }
    if (s->cqn > 0 && s->cq[s->cqh].sent && s->cq_timer + s->cq_rto < d) {
        d = s->cq_timer + s->cq_rto;
    }
    if (s->st == OTAUP_SS_TRANSFER && s->tx_ready && (t = otaup_tx_deadline(&s->tx)) < d) {
        d = t;
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready && (t = otaup_tx_deadline(&s->rtx)) < d) {
        d = t;
    }
    return d;
}

/* ---- output -------------------------------------------------------------- */

const otaup_sm *otaup_session_next_msg(otaup_session *s, uint64_t now_ms)
{
    int64_t nx;
    unsigned i;
    s->now = now_ms;
    free(s->cur_owned);
    s->cur_owned = NULL;
    if (s->abort_pending) {
        s->abort_pending = 0;
        s->cur = s->abort_m;
        return &s->cur;
    }
    for (i = 0; i < s->cqn; i++) {
        struct ctlent *e = cq_at(s, i);
        if (e->sent) {
            continue;
        }
        if (e->m.seq + e->nframes > s->expected + window(s) && !(i == 0 && e->nframes > window(s)) &&
            !s->finished) {
            return NULL; /* the window is full */
        }
        if (i == 0 && !e->resent) {
            s->adv_at = now_ms; /* nothing older outstanding: the wait starts */
            /* the timer starts with the head's first transmission; a
             * resend leaves it running (a timeout restarted it already,
             * and a NACK's go-back is no progress: a terminal that
             * refuses every frame with a transient NACK must reach the
             * retransmission limit as a silent one does) */
            s->cq_timer = now_ms;
        }
        e->sent = 1;
        if (e->first_sent == 0 || !e->resent) {
            e->first_sent = now_ms;
        }
        s->last_tx = now_ms;
        s->cur = e->m;
        return &s->cur;
    }
    if (s->cqn > 0) {
        return NULL; /* streams wait for the control messages before them */
    }
    if (s->st == OTAUP_SS_TRANSFER && s->tx_ready) {
        s->tx.window_units = s->o.window_frames < window(s) ? s->o.window_frames : window(s);
        if ((nx = otaup_tx_next(&s->tx)) >= 0) {
            uint32_t len = otaup_tx_unit_len(&s->tx, (uint32_t)nx);
            uint8_t *buf = malloc(len ? len : 1);
            int n;
            if (buf == NULL) {
                return NULL;
            }
            n = otaup_tx_encode(&s->tx, (uint32_t)nx, buf, len);
            if (n < 0) {
                free(buf);
                return NULL;
            }
            if (otaup_tx_sent(&s->tx, (uint32_t)nx, now_ms)) {
                s->adv_at = now_ms; /* nothing outstanding: the wait starts */
            }
            s->stats.stream_sent += (uint64_t)n;
            s->last_tx = now_ms;
            memset(&s->cur, 0, sizeof s->cur);
            s->cur_owned = buf;
            s->cur.type = OTAUP_SM_BATCH;
            s->cur.seq = s->seq_base + (uint32_t)nx;
            s->cur.session_id = s->rs.session_id;
            s->cur.data = buf;
            s->cur.len = (size_t)n;
            return &s->cur;
        }
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready) {
        s->rtx.window_units = s->o.window_frames < window(s) ? s->o.window_frames : window(s);
        if ((nx = otaup_tx_next(&s->rtx)) >= 0) {
            const otaup_tx_unit *u = &s->rtx.units[nx];
            if (otaup_tx_sent(&s->rtx, (uint32_t)nx, now_ms)) {
                s->adv_at = now_ms; /* nothing outstanding: the wait starts */
            }
            s->last_tx = now_ms;
            memset(&s->cur, 0, sizeof s->cur);
            s->cur.type = OTAUP_SM_RESTORE;
            s->cur.seq = s->rseq_base + (uint32_t)nx;
            s->cur.session_id = s->rs.session_id;
            s->cur.region = s->info.regions[s->rlist[s->ri]].id;
            s->cur.offset = u->off;
            s->cur.total = (uint32_t)s->rplain.len;
            s->cur.data = s->rplain.data + u->off;
            s->cur.len = u->len;
            if (s->rs_chunk != 0) {
                /* unit k: sealed chunk k (ciphertext || tag) after the header */
                const uint8_t *c = s->rplain.data + OTAUP_SEAL_HEADER_LEN + u->off;
                size_t ct = u->len - OTAUP_GCM_TAG_LEN;
                s->cur.offset = u->off / (s->rs_chunk + OTAUP_GCM_TAG_LEN) * s->rs_chunk;
                s->cur.total = (uint32_t)(s->rplain.len - OTAUP_SEAL_HEADER_LEN);
                s->cur.data = u->off == 0 ? s->rplain.data : c;
                s->cur.len = u->off == 0 ? OTAUP_SEAL_HEADER_LEN + ct : ct;
                memcpy(s->cur.tag, c + ct, OTAUP_GCM_TAG_LEN);
                s->cur.flags = OTAUP_RDATA_TAG;
                if (OTAUP_SEAL_HEADER_LEN + u->off + u->len == s->rplain.len) {
                    s->cur.flags |= OTAUP_RDATA_LAST; /* no hash: the seal authenticates */
                }
                return &s->cur;
            }
            if (u->off + u->len == s->rplain.len) {
                s->cur.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH;
                s->cur.hash_alg = OTAUP_HASH_XXH3_64;
                memcpy(s->cur.hash, s->rhash, 8);
            }
            return &s->cur;
        }
    }
    return NULL;
}

/* ---- public byte-level API ----------------------------------------------- */

int otaup_session_new(const otaup_session_options *opts, otaup_session **out)
{
    otaup_session *s;
    otaup_sm m;
    int rc;
    if (opts == NULL || out == NULL || opts->reg == NULL) {
        return OTAUP_E_INVAL;
    }
    if (opts->version == 0 || opts->version > OTAUP_SESSION_OPTIONS_VERSION) {
        return OTAUP_E_UNSUPPORTED;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (opts->version == 1) {
        memcpy(&s->o, opts, offsetof(otaup_session_options, cache));
    } else if (opts->version == 2) {
        memcpy(&s->o, opts, offsetof(otaup_session_options, sign_key));
    } else if (opts->version == 3) {
        memcpy(&s->o, opts, offsetof(otaup_session_options, rto_max_ms));
    } else {
        s->o = *opts;
    }
#define DEF(f, v)      \
    if (s->o.f == 0) { \
        s->o.f = (v);  \
    }
    DEF(window_frames, 64);
    DEF(window_bytes, 256u * 1024u);
    DEF(rto_initial_ms, 1000);
    DEF(max_retries, 10);
    DEF(request_poll_ms, 1000);
    DEF(idle_timeout_ms, 120000);
    DEF(frame_max, 65536);
    DEF(rto_max_ms, 30000);
#undef DEF
    if (s->o.rto_max_ms < s->o.rto_initial_ms) {
        s->o.rto_max_ms = s->o.rto_initial_ms;
    }
    rc = otaup_swire_new(&s->wire);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->st = OTAUP_SS_HELLO;
    s->cq_rto = s->o.rto_initial_ms;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_HELLO;
    rc = cq_push(s, &m, NULL, 0); /* sequence number 0 */
    if (rc < 0) {
        otaup_session_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void otaup_session_free(otaup_session *s)
{
    if (s == NULL) {
        return;
    }
    release_claim(s);
    cq_clear(s);
    free(s->cur_owned);
    if (s->bk_buf != NULL && s->have_info && s->bk_region < s->info.nregions) {
        otaup_regcrypt_wipe(s->bk_buf, s->info.regions[s->bk_region].len);
    }
    free(s->bk_buf);
    free(s->sig);
    drop_delta(s);
    if (s->tx_ready) {
        otaup_tx_free(&s->tx);
    }
    if (s->rtx_ready) {
        otaup_tx_free(&s->rtx);
    }
    if (s->rplain.data != NULL) {
        otaup_regcrypt_wipe(s->rplain.data, s->rplain.len);
    }
    otaup_blob_free(&s->rplain);
    free(s->obuf);
    otaup_swire_free(s->wire);
    free(s);
}

static int deliver(void *ctx, const otaup_sm *m)
{
    otaup_session *s = ctx;
    return otaup_session_input_msg(s, m, s->now);
}

int otaup_session_feed(otaup_session *s, const uint8_t *in, size_t len, uint64_t now_ms)
{
    const char *why = NULL;
    int rc;
    s->now = now_ms;
    if (!s->clock_started) {
        s->clock_started = 1;
        s->last_rx = s->last_tx = now_ms;
    }
    s->stats.bytes_in += len;
    rc = otaup_swire_feed(s->wire, in, len, s->seq_next, deliver, s, &why);
    s->stats.frames_in = otaup_swire_frames_in(s->wire);
    if (rc < 0 && !s->finished) {
        return fail(s, rc, why != NULL && why[0] ? why : "protocol");
    }
    return rc < 0 ? rc : (s->finished ? s->result : 0);
}

int otaup_session_read(otaup_session *s, uint8_t *out, size_t cap, uint64_t now_ms)
{
    size_t n = 0;
    while (n < cap) {
        if (s->opos < s->olen) {
            size_t k = s->olen - s->opos < cap - n ? s->olen - s->opos : cap - n;
            memcpy(out + n, s->obuf + s->opos, k);
            s->opos += k;
            n += k;
            continue;
        }
        if (otaup_swire_waiting(s->wire) > 0) {
            n += otaup_swire_take(s->wire, out + n, cap - n);
            continue;
        }
        {
            const otaup_sm *m = otaup_session_next_msg(s, now_ms);
            uint32_t f = maxf(s);
            size_t need;
            int k;
            if (m == NULL) {
                break;
            }
            if (m->type == OTAUP_SM_PONG) {
                continue;
            }
            need = otaup_swire_bound(m, f) + 64;
            if (s->ocap < need) {
                uint8_t *b = realloc(s->obuf, need);
                if (b == NULL) {
                    return OTAUP_E_NOMEM;
                }
                s->obuf = b;
                s->ocap = need;
            }
            k = otaup_swire_encode(s->wire, m, f, s->obuf, s->ocap);
            if (k < 0) {
                if (!s->finished) {
                    fail(s, k, "encoding a frame");
                }
                return k;
            }
            s->olen = (size_t)k;
            s->opos = 0;
            s->stats.frames_out++;
        }
    }
    s->stats.bytes_out += n;
    return (int)n;
}

int otaup_session_want_write(const otaup_session *s)
{
    unsigned i;
    if (s->opos < s->olen || otaup_swire_waiting(s->wire) > 0 || s->abort_pending) {
        return 1;
    }
    for (i = 0; i < s->cqn; i++) {
        const struct ctlent *e = &s->cq[(s->cqh + i) % CQ];
        if (!e->sent) {
            return e->m.seq + e->nframes <= s->expected + window(s) || (i == 0 && e->nframes > window(s)) ||
                   s->finished;
        }
    }
    if (s->cqn > 0) {
        return 0;
    }
    if (s->st == OTAUP_SS_TRANSFER && s->tx_ready && otaup_tx_next(&s->tx) >= 0) {
        return 1;
    }
    return s->st == OTAUP_SS_RESTORE && s->rtx_ready && otaup_tx_next(&s->rtx) >= 0;
}

static void release_claim(otaup_session *s)
{
    if (s->claimed) {
        otaup_registry_live_release(s->o.reg, s->info.id);
        s->claimed = 0;
    }
}

void otaup_session_closed(otaup_session *s, uint64_t now_ms)
{
    s->now = now_ms;
    release_claim(s);
    if (s->finished) {
        return;
    }
    if (s->have_info && s->rs.session_id != 0) {
        int rc = persist(s);
        if (rc < 0) {
            /* the row keeps the progress saved last: the terminal's journal
             * has the rest and its next INFO says where it is. No audit line
             * either: the registry just failed (a write lock held elsewhere
             * makes each write wait busy_timeout_ms; a shutdown must not
             * wait twice per session for nothing) */
            slog(s, OTAUP_LOG_WARN, "disconnected",
                 "state=%s resumable; its progress was not saved: %s (%s)%s%s", otaup_session_state_name(s->st),
                 otaup_strerror(rc), otaup_errname(rc) ? otaup_errname(rc) : "?",
                 *otaup_registry_errmsg(s->o.reg) ? ": " : "", otaup_registry_errmsg(s->o.reg));
        } else {
            otaup_registry_audit(s->o.reg, s->info.id, "disconnected",
                                 "session %08x in %s; resumable at the next connection", s->rs.session_id,
                                 otaup_session_state_name(s->st));
            slog(s, OTAUP_LOG_INFO, "disconnected", "state=%s resumable", otaup_session_state_name(s->st));
        }
    }
    s->finished = 1;
    if (s->result == 0 && s->st != OTAUP_SS_DONE && s->st != OTAUP_SS_IDLE) {
        s->result = OTAUP_E_CLOSED;
    }
}

int otaup_session_finished(const otaup_session *s)
{
    unsigned i;
    if (!s->finished || s->opos < s->olen || otaup_swire_waiting(s->wire) > 0 || s->abort_pending) {
        return 0;
    }
    for (i = 0; i < s->cqn; i++) {
        if (!s->cq[(s->cqh + i) % CQ].sent) {
            return 0;
        }
    }
    return 1;
}

otaup_session_state otaup_session_get_state(const otaup_session *s)
{
    return s->st;
}

int otaup_session_result(const otaup_session *s)
{
    return s->result;
}

const char *otaup_session_terminal(const otaup_session *s)
{
    return s->have_info ? s->info.id : "";
}

void otaup_session_get_stats(const otaup_session *s, otaup_session_stats *st)
{
    *st = s->stats;
    if (s->tx_ready) {
        st->retransmits += s->tx.retransmits;
        st->timeouts += s->tx.timeouts;
        st->srtt_ms = s->tx.srtt_ms;
    }
    if (st->srtt_ms == 0) {
        st->srtt_ms = s->srtt;
    }
}
