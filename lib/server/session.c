/*
 * otaup — the session driver's state machine (docs/server.md).
 * Server side, C11, allocates. One struct per terminal, no global state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/record.h"
#include "otaup/session.h"
#include "server/regcrypt.h"
#include "server/session_core.h"
#include "server/session_tx.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define OUTQ 8
#define MAX_RESTORE_ROUNDS 2

struct outmsg {
    otaup_sm m;
    uint8_t *owned;
};

struct otaup_session {
    otaup_session_options o;
    otaup_session_state st;
    int result;
    int finished;
    otaup_swire *wire;
    uint64_t now, last_rx, t_next;
    int clock_started;
    /* terminal */
    otaup_sm_info info;
    int have_info;
    otaup_reg_terminal term;
    otaup_reg_release rel;
    otaup_reg_session rs;
    int resuming;
    uint32_t resume_step;
    /* outgoing one-shot messages */
    struct outmsg q[OUTQ];
    unsigned qh, qn;
    struct outmsg cur; /* the message handed out last */
    /* reliable control message (START, COMMIT) */
    otaup_sm ctl;
    uint8_t *ctl_data;
    int ctl_active, ctl_due;
    uint64_t ctl_sent;
    uint32_t ctl_tries, ctl_rto;
    uint32_t seq_next;
    /* backup */
    uint32_t bk_region;
    uint8_t *bk_buf;
    uint32_t bk_got;
    uint64_t bk_asked;
    uint32_t bk_tries;
    /* signature */
    uint8_t *sig;
    uint32_t sig_len, sig_got;
    int sig_asked;
    uint64_t sig_at;
    /* delta and transfer */
    otaup_blob delta;
    uint32_t body_off;
    otaup_tx tx;
    int tx_ready;
    uint32_t seq_base;
    uint64_t persist_at;
    /* restore */
    uint32_t rlist[OTAUP_SM_MAX_REGIONS];
    uint32_t rn, ri, rounds;
    otaup_blob rplain;
    otaup_tx rtx;
    int rtx_ready;
    uint32_t rseq_base;
    /* bytes out */
    uint8_t *obuf;
    size_t ocap, olen, opos;
    otaup_session_stats stats;
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
    if (s->tx_ready) {
        s->rs.bytes_sent = s->stats.stream_sent;
        s->rs.retransmits = s->tx.retransmits;
    }
    rc = otaup_registry_session_put(s->o.reg, &s->rs);
    s->persist_at = s->now;
    return rc;
}

static void set_status(otaup_session *s, const char *status)
{
    snprintf(s->term.status, sizeof s->term.status, "%s", status);
    otaup_registry_terminal_set_status(s->o.reg, s->info.id, status);
}

/* ---- output ------------------------------------------------------------ */

static int enqueue(otaup_session *s, const otaup_sm *m, const uint8_t *data, size_t len)
{
    struct outmsg *e;
    if (s->qn == OUTQ) {
        return OTAUP_E_BUFFER;
    }
    e = &s->q[(s->qh + s->qn) % OUTQ];
    e->m = *m;
    e->owned = NULL;
    if (len > 0) {
        e->owned = malloc(len);
        if (e->owned == NULL) {
            return OTAUP_E_NOMEM;
        }
        memcpy(e->owned, data, len);
    }
    e->m.data = e->owned;
    e->m.len = len;
    s->qn++;
    return 0;
}

static void send_simple(otaup_session *s, uint8_t type, int32_t code, const char *text)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.code = code;
    m.session_id = s->rs.session_id;
    m.text = NULL;
    if (text != NULL) {
        enqueue(s, &m, (const uint8_t *)text, strlen(text) + 1);
    } else {
        enqueue(s, &m, NULL, 0);
    }
}

/* the reliable control message: one at a time, retransmitted on timeout */
static int ctl_send(otaup_session *s, const otaup_sm *m, const uint8_t *data, size_t len)
{
    free(s->ctl_data);
    s->ctl_data = NULL;
    if (len > 0) {
        s->ctl_data = malloc(len);
        if (s->ctl_data == NULL) {
            return OTAUP_E_NOMEM;
        }
        memcpy(s->ctl_data, data, len);
    }
    s->ctl = *m;
    s->ctl.data = s->ctl_data;
    s->ctl.len = len;
    s->ctl.seq = s->seq_next++;
    s->ctl_active = 1;
    s->ctl_due = 1;
    s->ctl_tries = 0;
    s->ctl_rto = s->o.rto_initial_ms;
    return 0;
}

/* ---- ending ---------------------------------------------------------- */

static int fail(otaup_session *s, int err, const char *why)
{
    char text[200];
    snprintf(text, sizeof text, "%s: %s", why, otaup_strerror(err));
    slog(s, OTAUP_LOG_ERROR, "failed", "%s (%s)", text, otaup_errname(err) ? otaup_errname(err) : "?");
    if (s->have_info) {
        otaup_registry_audit(s->o.reg, s->info.id, "failed", "%s", text);
        if (s->rs.session_id != 0) {
            s->rs.result = err;
            set_state(s, OTAUP_SS_FAILED);
            persist(s);
        }
        set_status(s, "failed");
    }
    send_simple(s, OTAUP_SM_ABORT_OUT, err, text);
    set_state(s, OTAUP_SS_FAILED);
    s->result = err;
    s->finished = 1;
    return err;
}

/* ---- INFO ---------------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

size_t otaup_session_layout_encode(const otaup_sm_info *in, uint8_t *out, size_t cap)
{
    size_t n = 0;
    unsigned i;
    if (cap < 40u + 8u * OTAUP_MAX_SECTOR_RUNS) {
        return 0;
    }
    out[n++] = 1; /* encoding version */
    out[n++] = in->layout;
    out[n++] = in->geo.erased;
    out[n++] = in->geo.nruns;
    put32(out + n, in->geo.base), n += 4;
    put32(out + n, in->geo.write_size), n += 4;
    for (i = 0; i < in->geo.nruns && i < OTAUP_MAX_SECTOR_RUNS; i++) {
        put32(out + n, in->geo.runs[i].count), n += 4;
        put32(out + n, in->geo.runs[i].size), n += 4;
    }
    put32(out + n, in->slot_addr), n += 4;
    put32(out + n, in->target_addr), n += 4;
    put32(out + n, in->scratch_addr), n += 4;
    put32(out + n, in->scratch_size), n += 4;
    put32(out + n, in->ram), n += 4;
    return n;
}

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
    if (in->scratch_size != 0 && !inside(&in->geo, in->scratch_addr, in->scratch_size)) {
        BAD(OTAUP_E_GEOMETRY, "scratch area is outside its flash");
    }
    if (in->nregions > OTAUP_SM_MAX_REGIONS || in->nwindows > OTAUP_SM_MAX_WINDOWS) {
        BAD(OTAUP_E_PEER, "too many regions or windows");
    }
    for (i = 0; i < in->nregions; i++) {
        const otaup_sm_region *r = &in->regions[i];
        if (r->len == 0 || !inside(&in->geo, r->addr, r->len)) {
            BAD(OTAUP_E_GEOMETRY, "user-data region %u (0x%08x+%u) is outside its flash", i, r->addr,
                r->len);
        }
        if (r->addr < in->slot_addr + in->slot_size && in->slot_addr < r->addr + r->len) {
            BAD(OTAUP_E_GEOMETRY, "user-data region %u overlaps the image slot", i);
        }
        if (r->len > 64u * 1024u * 1024u) {
            BAD(OTAUP_E_PEER, "user-data region %u is too large", i);
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
static int enter_restore_or_commit(otaup_session *s, const uint8_t (*hashes)[8], uint32_t n);

static int on_info(otaup_session *s, const otaup_sm_info *in)
{
    char why[300];
    otaup_reg_terminal prev;
    int rc, known;
    if (s->st != OTAUP_SS_HELLO) {
        return 0; /* a repeated INFO (retransmission): ignore */
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
    memcpy(s->term.image_hash, in->image_hash, sizeof s->term.image_hash);
    s->term.image_size = in->image_size;
    s->term.layout_len = (uint32_t)otaup_session_layout_encode(in, s->term.layout, sizeof s->term.layout);
    s->term.last_seen = 0;
    rc = otaup_registry_terminal_put(s->o.reg, &s->term);
    if (rc < 0) {
        return fail(s, rc, "registry: recording the terminal");
    }
    {
        char h[33];
        unsigned i;
        for (i = 0; i < 16; i++) {
            sprintf(h + 2 * i, "%02x", in->image_hash[i]);
        }
        otaup_registry_audit(s->o.reg, in->id, "info", "model %s version %s build %lld image %u bytes %s%s",
                             in->model, in->version, (long long)in->build_time, in->image_size, h,
                             in->active ? " (session active)" : "");
        slog(s, OTAUP_LOG_INFO, "info", "model=%s version=%s build=%lld image=%u hash=%s resume=%s",
             in->model, in->version, (long long)in->build_time, in->image_size, h,
             in->active ? "yes" : "no");
    }

    /* an unfinished session of ours? */
    if (otaup_registry_session_get(s->o.reg, in->id, &s->rs) == 0 && is_active_state(s->rs.state)) {
        rc = otaup_registry_release_get(s->o.reg, s->rs.release_id, &s->rel, NULL);
        if (rc == 0) {
            otaup_registry_audit(s->o.reg, in->id, "resume",
                                 "session %08x was in %s; terminal %s at step %u", s->rs.session_id,
                                 s->rs.state, in->active ? "active" : "idle", in->next_step);
            slog(s, OTAUP_LOG_INFO, "resume", "session=%08x state=%s terminal_step=%u active=%d",
                 s->rs.session_id, s->rs.state, in->next_step, in->active);
            set_status(s, "upgrading");
            if (memcmp(in->image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) == 0 && !in->active) {
                /* the image is already the target: finish with restore/commit */
                uint8_t hs[OTAUP_SM_MAX_REGIONS][8];
                uint32_t i;
                for (i = 0; i < in->nregions; i++) {
                    memcpy(hs[i], in->regions[i].hash, 8);
                }
                return enter_restore_or_commit(s, (const uint8_t(*)[8])hs, in->nregions);
            }
            if (strcmp(s->rs.state, "backup") == 0) {
                return enter_backup(s);
            }
            s->resuming = in->active && in->session_id == s->rs.session_id;
            s->resume_step = s->resuming ? in->next_step : 0;
            return enter_prepare(s);
        }
        memset(&s->rs, 0, sizeof s->rs);
    } else {
        memset(&s->rs, 0, sizeof s->rs);
    }

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
        send_simple(s, OTAUP_SM_DONE, 0, "up to date");
        set_state(s, OTAUP_SS_IDLE);
        s->finished = 1;
        return 0;
    }
    if (rc < 0) {
        return fail(s, rc, "registry: policy");
    }
    otaup_registry_audit(s->o.reg, in->id, "policy", "upgrade due: %s -> %s (release %lld)",
                         in->version, s->rel.version, (long long)s->rel.id);
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
    otaup_registry_request_delete(s->o.reg, s->info.id);
    otaup_registry_audit(s->o.reg, s->info.id, "request-accepted", "by %s; upgrade to %s begins",
                         source, s->rel.version);
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
    send_simple(s, OTAUP_SM_NOTIFY, 0, text);
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

/* ---- backup -------------------------------------------------------------- */

static void ask_backup(otaup_session *s)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_BACKUP_REQ;
    m.region = s->bk_region;
    m.offset = s->bk_got;
    m.session_id = s->rs.session_id;
    enqueue(s, &m, NULL, 0);
    s->bk_asked = s->now;
    s->bk_tries++;
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
        return enter_prepare(s);
    }
    free(s->bk_buf);
    s->bk_buf = malloc(s->info.regions[s->bk_region].len);
    if (s->bk_buf == NULL) {
        return fail(s, OTAUP_E_NOMEM, "backup buffer");
    }
    s->bk_got = 0;
    s->bk_tries = 0;
    ask_backup(s);
    return 0;
}

static int enter_backup(otaup_session *s)
{
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

static int on_backup_data(otaup_session *s, const otaup_sm *m)
{
    const otaup_sm_region *r;
    uint64_t h;
    uint8_t hb[8];
    otaup_reg_backup b;
    int rc, i;
    if (s->st != OTAUP_SS_BACKUP || m->region != s->bk_region) {
        return 0; /* late duplicate */
    }
    r = &s->info.regions[s->bk_region];
    if (m->offset != s->bk_got) {
        return 0; /* out of order: the timer asks again from bk_got */
    }
    if (m->len > r->len - s->bk_got) {
        return fail(s, OTAUP_E_PEER, "backup data beyond its region");
    }
    memcpy(s->bk_buf + s->bk_got, m->data, m->len);
    s->bk_got += (uint32_t)m->len;
    s->stats.backup_bytes += (uint32_t)m->len;
    s->bk_asked = s->now;
    if (s->bk_got < r->len) {
        return 0;
    }
    h = XXH3_64bits(s->bk_buf, r->len);
    for (i = 0; i < 8; i++) {
        hb[i] = (uint8_t)(h >> (8 * i));
    }
    if (memcmp(hb, r->hash, 8) != 0) {
        if (s->bk_tries < 3) {
            slog(s, OTAUP_LOG_WARN, "backup", "region %u hash mismatch: asking again", s->bk_region);
            s->bk_got = 0;
            ask_backup(s);
            return 0;
        }
        return fail(s, OTAUP_E_BACKUP, "backup does not match the region's hash");
    }
    memset(&b, 0, sizeof b);
    snprintf(b.terminal, sizeof b.terminal, "%s", s->info.id);
    b.region = s->bk_region;
    b.session_id = s->rs.session_id;
    b.addr = r->addr;
    b.len = r->len;
    memcpy(b.hash, r->hash, 8);
    rc = otaup_registry_backup_store(s->o.reg, &b, s->bk_buf, r->len);
    otaup_regcrypt_wipe(s->bk_buf, r->len);
    if (rc < 0) {
        return fail(s, rc, "registry: storing the backup");
    }
    otaup_registry_audit(s->o.reg, s->info.id, "backup",
                         "region %u (0x%08x, %u bytes) stored encrypted (AES-256-GCM)", s->bk_region,
                         r->addr, r->len);
    slog(s, OTAUP_LOG_INFO, "backup", "region=%u addr=0x%08x bytes=%u encrypted", s->bk_region, r->addr,
         r->len);
    s->bk_region++;
    s->rs.regions = s->bk_region;
    persist(s);
    return next_backup(s);
}

/* ---- prepare: the delta -------------------------------------------------- */

static uint32_t payload_max(const otaup_session *s)
{
    uint32_t f = s->info.max_frame < s->o.frame_max ? s->info.max_frame : s->o.frame_max;
    uint32_t ov = otaup_swire_overhead();
    return f > ov + 16 ? f - ov : 16;
}

static int start_transfer(otaup_session *s)
{
    otaup_sm m;
    uint32_t start, sync_index = 0;
    int rc;
    rc = otaup_tx_init(&s->tx, s->delta.data + s->body_off, s->delta.len - s->body_off);
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
    s->tx.rto_ms = s->o.rto_initial_ms;
    s->tx.max_retries = s->o.max_retries;
    s->stats.stream_bytes = 0;
    {
        uint32_t i;
        for (i = 0; i < s->tx.nunits; i++) {
            s->stats.stream_bytes += otaup_tx_unit_len(&s->tx, i);
        }
    }
    s->stats.resumed_from_step = s->resuming ? sync_index : 0;
    s->rs.bytes_total = s->stats.stream_bytes;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_START;
    m.session_id = s->rs.session_id;
    m.step = sync_index;
    m.total = s->tx.nunits;
    m.text = s->rel.version;
    memcpy(m.image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN);
    rc = ctl_send(s, &m, s->delta.data, s->body_off);
    if (rc < 0) {
        return fail(s, rc, "START");
    }
    set_state(s, OTAUP_SS_START);
    persist(s);
    otaup_registry_audit(s->o.reg, s->info.id, "start",
                         "session %08x: %zu-byte delta, %u frames%s", s->rs.session_id, s->delta.len,
                         s->tx.nunits, s->resuming ? " (resumed)" : "");
    slog(s, OTAUP_LOG_INFO, "start", "session=%08x delta=%zu frames=%u resume_sync=%u", s->rs.session_id,
         s->delta.len, s->tx.nunits, sync_index);
    return 0;
}

static int enter_prepare(otaup_session *s)
{
    int rc;
    set_state(s, OTAUP_SS_PREPARE);
    persist(s);
    if (s->delta.data == NULL) {
        otaup_session_delta_cb cb = s->o.delta != NULL ? s->o.delta : otaup_session_default_delta;
        rc = cb(s->o.reg, &s->term, &s->rel, s->sig, s->sig_len, &s->delta, &s->body_off,
                s->o.delta_payload);
        if (rc == OTAUP_E_SOURCE_MISMATCH && s->sig == NULL && !s->sig_asked) {
            /* the exact old image is unknown: plan from its block signature */
            otaup_sm m;
            memset(&m, 0, sizeof m);
            m.type = OTAUP_SM_SIG_REQ;
            enqueue(s, &m, NULL, 0);
            s->sig_asked = 1;
            s->sig_at = s->now;
            otaup_registry_audit(s->o.reg, s->info.id, "delta", "image unknown: asking its block signature");
            slog(s, OTAUP_LOG_INFO, "delta", "source image unknown: signature requested");
            return 0;
        }
        if (rc < 0) {
            return fail(s, rc, "delta");
        }
        if (s->body_off >= s->delta.len) {
            return fail(s, OTAUP_E_DELTA_CORRUPT, "delta");
        }
        s->stats.delta_bytes = s->delta.len;
        s->stats.image_size = s->rel.image_size;
    }
    return start_transfer(s);
}

static int on_sig_data(otaup_session *s, const otaup_sm *m)
{
    if (s->st != OTAUP_SS_PREPARE || !s->sig_asked) {
        return 0;
    }
    if (m->total == 0 || m->total > 64u * 1024u * 1024u) {
        return fail(s, OTAUP_E_SIG_FORMAT, "signature size");
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
    s->sig_at = s->now;
    if (s->sig_got < s->sig_len) {
        return 0;
    }
    return enter_prepare(s);
}

/* ---- transfer -------------------------------------------------------- */

static int on_ack(otaup_session *s, const otaup_sm *m, int nack)
{
    int rc;
    if (s->ctl_active && m->seq > s->ctl.seq) {
        s->ctl_active = 0;
        if (s->st == OTAUP_SS_START) {
            s->seq_base = s->seq_next;
            s->seq_next += s->tx.nunits;
            set_state(s, OTAUP_SS_TRANSFER);
            persist(s);
            if (s->tx.nunits == 0) {
                set_state(s, OTAUP_SS_VERIFY);
            }
        }
    }
    if (s->st == OTAUP_SS_TRANSFER && m->seq >= s->seq_base) {
        rc = otaup_tx_ack(&s->tx, m->seq - s->seq_base, nack, s->now);
        if (rc < 0) {
            return fail(s, rc, "acknowledgement of a frame never sent");
        }
        if (rc == 1) {
            set_state(s, OTAUP_SS_VERIFY);
            persist(s);
            slog(s, OTAUP_LOG_INFO, "transfer", "complete: %llu bytes sent for %llu, %u retransmits",
                 (unsigned long long)s->stats.stream_sent, (unsigned long long)s->stats.stream_bytes,
                 s->tx.retransmits);
        }
    } else if (s->st == OTAUP_SS_RESTORE && s->rtx_ready && m->seq >= s->rseq_base) {
        rc = otaup_tx_ack(&s->rtx, m->seq - s->rseq_base, nack, s->now);
        if (rc < 0) {
            return fail(s, rc, "acknowledgement of a frame never sent");
        }
        if (rc == 1) {
            otaup_registry_audit(s->o.reg, s->info.id, "restore", "region %u restored (%zu bytes)",
                                 s->rlist[s->ri], s->rplain.len);
            otaup_tx_free(&s->rtx);
            s->rtx_ready = 0;
            otaup_regcrypt_wipe(s->rplain.data, s->rplain.len);
            otaup_blob_free(&s->rplain);
            s->ri++;
            return enter_restore_or_commit(s, NULL, 0);
        }
    }
    return 0;
}

static int on_progress(otaup_session *s, const otaup_sm *m)
{
    s->rs.next_step = m->step;
    if (s->now - s->persist_at >= 1000) {
        persist(s);
    }
    return 0;
}

/* ---- verify, restore, commit ---------------------------------------------- */

static int send_commit(otaup_session *s)
{
    otaup_sm m;
    memset(&m, 0, sizeof m);
    m.type = OTAUP_SM_COMMIT;
    m.session_id = s->rs.session_id;
    set_state(s, OTAUP_SS_COMMIT);
    persist(s);
    return ctl_send(s, &m, NULL, 0);
}

/* hashes != NULL: decide which regions to restore; NULL: continue the list */
static int enter_restore_or_commit(otaup_session *s, const uint8_t (*hashes)[8], uint32_t n)
{
    otaup_reg_backup meta;
    int rc;
    if (hashes != NULL) {
        uint32_t i;
        s->rn = s->ri = 0;
        for (i = 0; i < s->info.nregions; i++) {
            otaup_blob none = { NULL, 0 };
            int intact;
            rc = s->o.reg != NULL ? otaup_registry_backup_load(s->o.reg, s->info.id, i, &meta, &none) : 0;
            if (rc < 0) {
                return fail(s, rc == OTAUP_E_NOT_FOUND ? OTAUP_E_BACKUP : rc, "backup for restore");
            }
            otaup_regcrypt_wipe(none.data, none.len);
            otaup_blob_free(&none);
            intact = i < n && memcmp(hashes[i], meta.hash, 8) == 0;
            if (!intact || s->o.restore_always) {
                s->rlist[s->rn++] = i;
            }
        }
        if (s->rn == 0) {
            otaup_registry_audit(s->o.reg, s->info.id, "restore",
                                 "skipped: all %u user-data regions intact", s->info.nregions);
            slog(s, OTAUP_LOG_INFO, "restore", "skipped: user data intact");
        } else {
            slog(s, OTAUP_LOG_INFO, "restore", "%u region(s) to restore", s->rn);
        }
    }
    if (s->ri < s->rn) {
        uint32_t i = s->rlist[s->ri];
        rc = otaup_registry_backup_load(s->o.reg, s->info.id, i, &meta, &s->rplain);
        if (rc < 0) {
            return fail(s, rc, "loading the backup");
        }
        rc = otaup_tx_init_raw(&s->rtx, s->rplain.data, s->rplain.len, payload_max(s) - 16);
        if (rc < 0) {
            return fail(s, rc, "restore");
        }
        s->rtx_ready = 1;
        s->rtx.window_units = s->o.window_frames;
        s->rtx.window_bytes = s->o.window_bytes;
        s->rtx.max_retries = s->o.max_retries;
        s->rseq_base = s->seq_next;
        s->seq_next += s->rtx.nunits;
        s->stats.restore_bytes += (uint32_t)s->rplain.len;
        set_state(s, OTAUP_SS_RESTORE);
        persist(s);
        return 0;
    }
    return send_commit(s);
}

static int finish(otaup_session *s)
{
    int n;
    n = otaup_registry_backup_delete(s->o.reg, s->info.id);
    if (n < 0) {
        return fail(s, n, "deleting the backup");
    }
    otaup_registry_audit(s->o.reg, s->info.id, "backup-deleted",
                         "%d region(s) deleted irreversibly (secure delete, key destroyed)", n);
    snprintf(s->term.version, sizeof s->term.version, "%s", s->rel.version);
    s->term.build_time = s->rel.build_time;
    memcpy(s->term.image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN);
    s->term.image_size = s->rel.image_size;
    snprintf(s->term.status, sizeof s->term.status, "upgraded");
    otaup_registry_terminal_put(s->o.reg, &s->term);
    s->rs.result = 0;
    set_state(s, OTAUP_SS_DONE);
    persist(s);
    otaup_registry_audit(s->o.reg, s->info.id, "upgraded",
                         "session %08x: now %s; %llu stream bytes sent for a %u-byte image, %u retransmits",
                         s->rs.session_id, s->rel.version, (unsigned long long)s->stats.stream_sent,
                         s->rel.image_size, s->stats.retransmits);
    slog(s, OTAUP_LOG_INFO, "done", "version=%s sent=%llu image=%u retransmits=%u", s->rel.version,
         (unsigned long long)s->stats.stream_sent, s->rel.image_size, s->stats.retransmits);
    send_simple(s, OTAUP_SM_DONE, 0, "upgraded");
    s->finished = 1;
    return 0;
}

static int on_result(otaup_session *s, const otaup_sm *m)
{
    if (m->code != 0) {
        char why[96];
        snprintf(why, sizeof why, "terminal reports %s", otaup_errname(m->code) ? otaup_errname(m->code) : "an error");
        return fail(s, m->code < 0 ? m->code : OTAUP_E_PEER, why);
    }
    if (s->st == OTAUP_SS_VERIFY || (s->st == OTAUP_SS_START && s->resuming)) {
        if (memcmp(m->image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) != 0) {
            return fail(s, OTAUP_E_TARGET_MISMATCH, "verify");
        }
        s->ctl_active = 0;
        otaup_registry_audit(s->o.reg, s->info.id, "verified", "image equals release %s", s->rel.version);
        return enter_restore_or_commit(s, (const uint8_t(*)[8])m->region_hash, m->nregions);
    }
    if (s->st == OTAUP_SS_COMMIT) {
        /* the terminal's final word: its image and every region as backed up */
        uint32_t i;
        s->ctl_active = 0;
        if (memcmp(m->image_hash, s->rel.image_hash, OTAUP_REG_HASH_LEN) != 0) {
            return fail(s, OTAUP_E_TARGET_MISMATCH, "commit");
        }
        for (i = 0; i < s->info.nregions; i++) {
            otaup_reg_backup meta;
            otaup_blob p = { NULL, 0 };
            int rc = otaup_registry_backup_load(s->o.reg, s->info.id, i, &meta, &p);
            otaup_blob_free(&p);
            if (rc < 0) {
                return fail(s, rc, "backup check");
            }
            if (i >= m->nregions || memcmp(meta.hash, m->region_hash[i], 8) != 0) {
                if (++s->rounds > MAX_RESTORE_ROUNDS) {
                    return fail(s, OTAUP_E_BACKUP, "user data still differs after restore");
                }
                slog(s, OTAUP_LOG_WARN, "restore", "region %u differs after commit: restoring again", i);
                return enter_restore_or_commit(s, (const uint8_t(*)[8])m->region_hash, m->nregions);
            }
        }
        return finish(s);
    }
    return 0;
}

/* ---- input ------------------------------------------------------------ */

int otaup_session_input_msg(otaup_session *s, const otaup_sm *m, uint64_t now_ms)
{
    s->now = now_ms;
    s->last_rx = now_ms;
    s->clock_started = 1;
    if (s->finished && m->type != OTAUP_SM_PING) {
        return s->result;
    }
    if (!s->have_info && m->type != OTAUP_SM_INFO && m->type != OTAUP_SM_PING) {
        return fail(s, OTAUP_E_PEER, "first message is not INFO");
    }
    switch (m->type) {
    case OTAUP_SM_INFO:
        return m->info != NULL ? on_info(s, m->info) : fail(s, OTAUP_E_PEER, "empty INFO");
    case OTAUP_SM_CONSENT:
        if (s->st == OTAUP_SS_WAIT_REQUEST) {
            take_request(s, "terminal");
            return enter_backup(s);
        }
        return 0;
    case OTAUP_SM_BACKUP_DATA:
        return on_backup_data(s, m);
    case OTAUP_SM_SIG_DATA:
        return on_sig_data(s, m);
    case OTAUP_SM_ACK:
        return on_ack(s, m, 0);
    case OTAUP_SM_NACK:
        if (m->code != 0 && m->code != OTAUP_E_FRAME_CRC && m->code != OTAUP_E_SEQ &&
            m->code != OTAUP_E_FRAME_TRUNCATED && m->code != OTAUP_E_DUPLICATE &&
            (s->st == OTAUP_SS_TRANSFER || s->st == OTAUP_SS_START || s->st == OTAUP_SS_RESTORE ||
             s->st == OTAUP_SS_COMMIT)) {
            /* the terminal refused a command: that is final */
            return fail(s, m->code, "terminal refused");
        }
        return on_ack(s, m, 1);
    case OTAUP_SM_PROGRESS:
        return on_progress(s, m);
    case OTAUP_SM_RESULT:
        return on_result(s, m);
    case OTAUP_SM_PING: {
        otaup_sm p;
        memset(&p, 0, sizeof p);
        p.type = OTAUP_SM_PONG;
        return enqueue(s, &p, NULL, 0);
    }
    case OTAUP_SM_ABORT:
        return fail(s, m->code < 0 ? m->code : OTAUP_E_CANCELED, "terminal aborted");
    default:
        return fail(s, OTAUP_E_PEER, "unexpected message");
    }
}

/* ---- timers ---------------------------------------------------------------- */

int otaup_session_poll(otaup_session *s, uint64_t now_ms)
{
    int rc;
    s->now = now_ms;
    if (!s->clock_started) {
        s->clock_started = 1;
        s->last_rx = now_ms; /* the idle timer starts with the session */
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
    if (s->st == OTAUP_SS_BACKUP && now_ms - s->bk_asked >= 4 * s->o.rto_initial_ms) {
        if (s->bk_tries > s->o.max_retries) {
            return fail(s, OTAUP_E_RETRIES, "backup");
        }
        ask_backup(s);
    }
    if (s->ctl_active && !s->ctl_due && now_ms - s->ctl_sent >= s->ctl_rto) {
        if (++s->ctl_tries > s->o.max_retries) {
            return fail(s, OTAUP_E_RETRIES, "no answer");
        }
        s->ctl_rto = s->ctl_rto * 2 > 30000 ? 30000 : s->ctl_rto * 2;
        s->ctl_due = 1;
        s->stats.retransmits++;
    }
    if (s->st == OTAUP_SS_TRANSFER) {
        rc = otaup_tx_poll(&s->tx, now_ms);
        if (rc < 0) {
            return fail(s, rc, "transfer");
        }
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready) {
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
    if (s->st == OTAUP_SS_WAIT_REQUEST && s->t_next < d) {
        d = s->t_next;
    }
    if (s->st == OTAUP_SS_BACKUP && s->bk_asked + 4 * s->o.rto_initial_ms < d) {
        d = s->bk_asked + 4 * s->o.rto_initial_ms;
    }
    if (s->ctl_active && !s->ctl_due && s->ctl_sent + s->ctl_rto < d) {
        d = s->ctl_sent + s->ctl_rto;
    }
    if (s->st == OTAUP_SS_TRANSFER && (t = otaup_tx_deadline(&s->tx)) < d) {
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
    s->now = now_ms;
    free(s->cur.owned);
    s->cur.owned = NULL;
    if (s->qn > 0) {
        s->cur = s->q[s->qh];
        s->qh = (s->qh + 1) % OUTQ;
        s->qn--;
        if (s->cur.m.type == OTAUP_SM_NOTIFY || s->cur.m.type == OTAUP_SM_ABORT_OUT ||
            s->cur.m.type == OTAUP_SM_DONE) {
            s->cur.m.text = (const char *)s->cur.owned;
        }
        return &s->cur.m;
    }
    if (s->ctl_active && s->ctl_due) {
        s->ctl_due = 0;
        s->ctl_sent = now_ms;
        return &s->ctl;
    }
    if (s->st == OTAUP_SS_TRANSFER && (nx = otaup_tx_next(&s->tx)) >= 0) {
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
        otaup_tx_sent(&s->tx, (uint32_t)nx, now_ms);
        s->stats.stream_sent += (uint64_t)n;
        memset(&s->cur.m, 0, sizeof s->cur.m);
        s->cur.owned = buf;
        s->cur.m.type = OTAUP_SM_BATCH;
        s->cur.m.seq = s->seq_base + (uint32_t)nx;
        s->cur.m.session_id = s->rs.session_id;
        s->cur.m.data = buf;
        s->cur.m.len = (size_t)n;
        return &s->cur.m;
    }
    if (s->st == OTAUP_SS_RESTORE && s->rtx_ready && (nx = otaup_tx_next(&s->rtx)) >= 0) {
        const otaup_tx_unit *u = &s->rtx.units[nx];
        otaup_tx_sent(&s->rtx, (uint32_t)nx, now_ms);
        memset(&s->cur.m, 0, sizeof s->cur.m);
        s->cur.m.type = OTAUP_SM_RESTORE;
        s->cur.m.seq = s->rseq_base + (uint32_t)nx;
        s->cur.m.session_id = s->rs.session_id;
        s->cur.m.region = s->rlist[s->ri];
        s->cur.m.offset = u->off;
        s->cur.m.total = (uint32_t)s->rplain.len;
        s->cur.m.data = s->rplain.data + u->off;
        s->cur.m.len = u->len;
        return &s->cur.m;
    }
    return NULL;
}

/* ---- public byte-level API ----------------------------------------------- */

int otaup_session_new(const otaup_session_options *opts, otaup_session **out)
{
    otaup_session *s;
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
    s->o = *opts;
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
#undef DEF
    rc = otaup_swire_new(&s->wire);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->seq_next = 1;
    s->st = OTAUP_SS_HELLO;
    *out = s;
    return 0;
}

void otaup_session_free(otaup_session *s)
{
    if (s == NULL) {
        return;
    }
    while (s->qn > 0) {
        free(s->q[s->qh].owned);
        s->qh = (s->qh + 1) % OUTQ;
        s->qn--;
    }
    free(s->cur.owned);
    free(s->ctl_data);
    if (s->bk_buf != NULL && s->have_info && s->bk_region < s->info.nregions) {
        otaup_regcrypt_wipe(s->bk_buf, s->info.regions[s->bk_region].len);
    }
    free(s->bk_buf);
    free(s->sig);
    otaup_blob_free(&s->delta);
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
    if (m->type == 0) {
        return 0; /* damaged frame: the terminal's sender retransmits */
    }
    return otaup_session_input_msg(s, m, s->now);
}

int otaup_session_feed(otaup_session *s, const uint8_t *in, size_t len, uint64_t now_ms)
{
    int rc;
    s->now = now_ms;
    if (!s->clock_started) {
        s->clock_started = 1;
        s->last_rx = now_ms;
    }
    s->stats.bytes_in += len;
    rc = otaup_swire_feed(s->wire, in, len, deliver, s);
    if (rc < 0 && !s->finished) {
        return fail(s, rc, "protocol");
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
        {
            const otaup_sm *m = otaup_session_next_msg(s, now_ms);
            size_t need;
            int k;
            if (m == NULL) {
                break;
            }
            need = m->len + 512 + otaup_swire_overhead();
            if (s->ocap < need) {
                uint8_t *b = realloc(s->obuf, need);
                if (b == NULL) {
                    return OTAUP_E_NOMEM;
                }
                s->obuf = b;
                s->ocap = need;
            }
            k = otaup_swire_encode(s->wire, m, s->have_info ? s->info.max_frame : 65536, s->obuf,
                                   s->ocap);
            if (k < 0) {
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
    if (s->opos < s->olen || s->qn > 0 || (s->ctl_active && s->ctl_due)) {
        return 1;
    }
    if (s->st == OTAUP_SS_TRANSFER && otaup_tx_next(&s->tx) >= 0) {
        return 1;
    }
    return s->st == OTAUP_SS_RESTORE && s->rtx_ready && otaup_tx_next(&s->rtx) >= 0;
}

void otaup_session_closed(otaup_session *s, uint64_t now_ms)
{
    s->now = now_ms;
    if (s->finished) {
        return;
    }
    if (s->have_info && s->rs.session_id != 0) {
        persist(s);
        otaup_registry_audit(s->o.reg, s->info.id, "disconnected",
                             "session %08x in %s; resumable at the next connection", s->rs.session_id,
                             otaup_session_state_name(s->st));
        slog(s, OTAUP_LOG_INFO, "disconnected", "state=%s resumable", otaup_session_state_name(s->st));
    }
    s->finished = 1;
    if (s->result == 0 && s->st != OTAUP_SS_DONE && s->st != OTAUP_SS_IDLE) {
        s->result = OTAUP_E_CLOSED;
    }
}

int otaup_session_finished(const otaup_session *s)
{
    return s->finished && s->opos >= s->olen && s->qn == 0;
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
}
