/*
 * End-to-end harness (see e2e.h).
 */
#include "util/e2e.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/simflash.h"

typedef struct pkt {
    uint64_t at;
    size_t n;
    struct pkt *next;
    uint8_t p[];
} pkt;

typedef struct queue {
    pkt *head;
} queue;

struct e2e_world {
    char dbpath[300];
    uint8_t key[32];
    otaup_registry *reg;
    otaup_session_options so;
    otaup_session *s;
    otaup_simterm *t;
    queue to_t, to_s;
    uint64_t now;
    uint64_t rng;
    const e2e_faults *f;
    e2e_report *rep;
    int connected;
    int term_sent_any;    /* the terminal sent a sequenced frame on this connection */
    uint32_t term_seq_hi; /* the highest seq it sent on it */
    unsigned conn_frames, upgrade_frames;
    unsigned disconnects_left;
    int restarted, failed_now, open_seen; /* open_seen: the upgrade's session opened in this run */
    uint64_t reads_open; /* the flash's read counter when the upgrade's session opened */
    uint64_t clock0;     /* the simulated time when the run began */
    uint8_t *acc; /* server output not yet cut into frames */
    int trace, trace_state; /* E2E_TRACE set: every frame put on the link, and the session's states, on stderr */
    size_t acc_len, acc_cap;
};

static uint64_t rnd(e2e_world *w)
{
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void q_insert(queue *q, uint64_t at, const uint8_t *p, size_t n)
{
    pkt *k = malloc(sizeof *k + n), **pp;
    if (k == NULL) {
        abort();
    }
    k->at = at;
    k->n = n;
    memcpy(k->p, p, n);
    for (pp = &q->head; *pp != NULL && (*pp)->at <= at; pp = &(*pp)->next) {
    }
    k->next = *pp;
    *pp = k;
}

static void q_clear(queue *q)
{
    while (q->head != NULL) {
        pkt *k = q->head;
        q->head = k->next;
        free(k);
    }
}

/* Put one frame on the link, with the faults. */
static void transmit(e2e_world *w, queue *q, const uint8_t *p, size_t n)
{
    const e2e_faults *f = w->f;
    unsigned copies = 1, i;
    uint64_t lat = f->latency_ms ? f->latency_ms : 50;
    if (w->trace && n >= OTAUP_FRAME_HEADER_SIZE) {
        otaup_frame fr;
        char what[64] = "";
        if (otaup_frame_decode(p, n, 65536, &fr) == 0) {
            otaup_msg_ack a;
            otaup_msg_nack k;
            if (fr.type == OTAUP_MSG_ACK && otaup_ack_decode(fr.payload, fr.payload_len, &a) == 0) {
                snprintf(what, sizeof what, " ack %u", a.seq);
            } else if (fr.type == OTAUP_MSG_NACK && otaup_nack_decode(fr.payload, fr.payload_len, &k) == 0) {
                snprintf(what, sizeof what, " nack of %u: %d, expected %u", k.seq, (int)k.error, k.expected);
            }
        }
        fprintf(stderr, "e2e: %8llu ms %s type %3u seq %5u %4zu bytes%s\n",
                (unsigned long long)(w->now - w->clock0), q == &w->to_t ? "server->terminal" : "terminal->server",
                p[3], (unsigned)(p[8] | p[9] << 8 | (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24), n, what);
    }
    if (f->drop_pct && rnd(w) % 100 < f->drop_pct) {
        w->rep->frames_dropped++;
        if (w->trace) {
            fprintf(stderr, "e2e: %8s    (dropped)\n", "");
        }
        return;
    }
    if (f->dup_pct && rnd(w) % 100 < f->dup_pct) {
        copies = 2;
    }
    for (i = 0; i < copies; i++) {
        uint64_t at = w->now + lat;
        if (f->delay_pct && rnd(w) % 100 < f->delay_pct) {
            at += rnd(w) % 300;
        }
        if (f->corrupt_pct && rnd(w) % 100 < f->corrupt_pct) {
            uint8_t *c = malloc(n);
            memcpy(c, p, n);
            c[rnd(w) % n] ^= (uint8_t)(1u << (rnd(w) % 8));
            if (w->trace) {
                fprintf(stderr, "e2e: %8s    (corrupted)\n", "");
            }
            q_insert(q, at, c, n);
            free(c);
        } else {
            q_insert(q, at, p, n);
        }
    }
}

static int term_send(void *ctx, const uint8_t *buf, size_t len)
{
    e2e_world *w = ctx;
    if (!w->connected || otaup_simflash_is_cut(otaup_simterm_flash(w->t))) {
        return (int)len; /* no power or no link: the bytes go nowhere */
    }
    if (len >= OTAUP_FRAME_HEADER_SIZE && otaup_msg_type_sequenced(buf[3])) {
        uint32_t seq = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 | (uint32_t)buf[11] << 24;
        if (w->term_sent_any && (uint32_t)(w->term_seq_hi - seq) < 0x80000000u) {
            w->rep->term_resends++; /* not after the highest sent: sent again */
        } else {
            w->term_seq_hi = seq;
            w->term_sent_any = 1;
        }
    }
    transmit(w, &w->to_s, buf, len);
    return (int)len;
}

static uint32_t term_now(void *ctx)
{
    e2e_world *w = ctx;
    if (w->f != NULL && w->f->clock_base != 0) {
        return (uint32_t)(w->now - w->clock0) + w->f->clock_base;
    }
    return (uint32_t)w->now;
}

static int open_registry(e2e_world *w)
{
    otaup_registry_options o;
    otaup_registry_options_init(&o);
    o.master_key = w->key;
    return otaup_registry_sqlite_open(w->dbpath, &o, &w->reg);
}

e2e_world *e2e_new(const char *dir)
{
    e2e_world *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return NULL;
    }
    snprintf(w->dbpath, sizeof w->dbpath, "%s/e2e.db", dir);
    memset(w->key, 0x3C, sizeof w->key);
    if (open_registry(w) != 0) {
        free(w);
        return NULL;
    }
    otaup_session_options_init(&w->so);
    w->so.auto_request = 1;
    w->now = 1000;
    return w;
}

void e2e_free(e2e_world *w)
{
    if (w == NULL) {
        return;
    }
    otaup_session_free(w->s);
    q_clear(&w->to_t);
    q_clear(&w->to_s);
    otaup_registry_free(w->reg);
    free(w->acc);
    free(w);
}

otaup_registry *e2e_registry(e2e_world *w)
{
    return w->reg;
}

otaup_session_options *e2e_options(e2e_world *w)
{
    return &w->so;
}

int64_t e2e_release(e2e_world *w, const char *model, const char *version, int64_t build_time, const uint8_t *img,
                    size_t len)
{
    otaup_reg_release r;
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.version, sizeof r.version, "%s", version);
    r.build_time = build_time;
    if (otaup_registry_release_add(w->reg, &r, img, len) != 0) {
        return -1;
    }
    return r.id;
}

static int new_session(e2e_world *w)
{
    w->so.reg = w->reg;
    w->acc_len = 0;
    w->conn_frames = 0;
    w->rep->connections++;
    return otaup_session_new(&w->so, &w->s);
}

static void end_session(e2e_world *w)
{
    if (w->s != NULL) {
        otaup_session_stats st;
        otaup_session_closed(w->s, w->now);
        otaup_session_get_stats(w->s, &st);
        w->rep->stream_sent_total += st.stream_sent;
        w->rep->retransmits_total += st.retransmits;
        w->rep->server_result = otaup_session_result(w->s);
        w->rep->server_state = otaup_session_get_state(w->s);
        w->rep->stats = st;
        otaup_session_free(w->s);
        w->s = NULL;
    }
    q_clear(&w->to_t);
    q_clear(&w->to_s);
    w->connected = 0;
}

/* Cut the server's output into frames and put them on the link. */
static void drain_server(e2e_world *w)
{
    uint8_t buf[8192];
    int n;
    while ((n = otaup_session_read(w->s, buf, sizeof buf, w->now)) > 0) {
        size_t off = 0;
        if (w->acc_len + (size_t)n > w->acc_cap) {
            w->acc_cap = (w->acc_len + (size_t)n) * 2;
            w->acc = realloc(w->acc, w->acc_cap);
        }
        memcpy(w->acc + w->acc_len, buf, (size_t)n);
        w->acc_len += (size_t)n;
        while (w->acc_len - off >= OTAUP_FRAME_HEADER_SIZE) {
            size_t fl = (size_t)(w->acc[off + 6] | w->acc[off + 7] << 8) + OTAUP_FRAME_OVERHEAD;
            if (w->acc_len - off < fl) {
                break;
            }
            transmit(w, &w->to_t, w->acc + off, fl);
            w->rep->frames_to_term++;
            if (otaup_session_get_state(w->s) == OTAUP_SS_TRANSFER) {
                w->conn_frames++;
                w->upgrade_frames++;
            }
            off += fl;
        }
        memmove(w->acc, w->acc + off, w->acc_len - off);
        w->acc_len -= off;
    }
}

static int connect_all(e2e_world *w)
{
    int rc = new_session(w);
    if (rc < 0) {
        return rc;
    }
    w->connected = 1;
    w->term_sent_any = 0;
    return otaup_apply_connect(otaup_simterm_apply(w->t));
}

/* The link drops; the terminal connects again 200 ms later. */
static int reconnect(e2e_world *w)
{
    w->rep->reconnects++;
    end_session(w);
    w->now += 200;
    return connect_all(w);
}

int e2e_run(e2e_world *w, otaup_simterm *t, const e2e_faults *f, uint64_t limit_ms, e2e_report *rep)
{
    static const e2e_faults none;
    otaup_simflash_stats fs0, fs1;
    uint64_t end = w->now + limit_ms;
    uint32_t wear0[1024], nsec = otaup_simterm_sectors(t), i;
    int rc;
    memset(rep, 0, sizeof *rep);
    w->f = f != NULL ? f : &none;
    w->rep = rep;
    w->t = t;
    w->rng = w->f->seed * 7919u + 17u;
    w->trace = getenv("E2E_TRACE") != NULL;
    w->trace_state = -1;
    w->disconnects_left = w->f->disconnects;
    w->restarted = 0;
    w->failed_now = 0;
    w->upgrade_frames = 0;
    w->open_seen = 0;
    w->clock0 = w->now;
    otaup_simflash_stats_get(otaup_simterm_flash(t), &fs0);
    rep->flash_ops0 = fs0.ops;
    for (i = 0; i < nsec && i < 1024; i++) {
        wear0[i] = otaup_simflash_wear(otaup_simterm_flash(t), i);
    }
    rc = otaup_simterm_boot(t, term_send, w, term_now, w);
    if (rc == 0) {
        rc = connect_all(w);
    }
    if (rc < 0) {
        return rc;
    }
    while (w->now < end) {
        otaup_apply *ap = otaup_simterm_apply(t);
        uint64_t next;
        /* the link */
        while (w->to_t.head != NULL && w->to_t.head->at <= w->now) {
            pkt *k = w->to_t.head;
            w->to_t.head = k->next;
            if (!w->open_seen && otaup_simterm_apply(t)->session_open) {
                /* count reads and arm the faults from the start of the upgrade's flash work */
                otaup_simflash_stats st;
                otaup_simflash_stats_get(otaup_simterm_flash(t), &st);
                w->reads_open = st.read_ops;
                w->open_seen = 1;
                if (w->f->cut_after != 0) {
                    otaup_simflash_cut_after(otaup_simterm_flash(t), w->f->cut_after, w->f->torn);
                }
                if (w->f->flash_fail_after != 0) {
                    otaup_simflash_fail_after(otaup_simterm_flash(t), w->f->flash_fail_after, w->f->torn);
                }
                if (w->f->read_fault_after != 0) {
                    otaup_simflash_read_fault(otaup_simterm_flash(t), w->f->read_fault_after,
                                              w->f->read_flip ? OTAUP_SIMFLASH_RFAULT_FLIP
                                                              : OTAUP_SIMFLASH_RFAULT_FAIL);
                }
            }
            (void)otaup_apply_feed(ap, k->p, k->n);
            otaup_simterm_step(t);
            free(k);
            if (otaup_simflash_is_cut(otaup_simterm_flash(t))) {
                break;
            }
        }
        if (otaup_simflash_is_cut(otaup_simterm_flash(t))) {
            /* power cut: the server sees the link drop; the terminal reboots */
            rep->power_cuts++;
            end_session(w);
            w->now += 500;
            rc = otaup_simterm_boot(t, term_send, w, term_now, w);
            if (rc == 0) {
                rc = connect_all(w);
            }
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        while (w->s != NULL && w->to_s.head != NULL && w->to_s.head->at <= w->now) {
            pkt *k = w->to_s.head;
            w->to_s.head = k->next;
            (void)otaup_session_feed(w->s, k->p, k->n, w->now);
            free(k);
        }
        if (otaup_apply_poll(ap) == OTAUP_E_RETRIES && w->s != NULL) {
            /* the terminal gave the link up (no answer to its frame
             * through every retransmission): as a device does (and
             * otaup-term), it drops the connection and connects again */
            rc = reconnect(w);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        otaup_simterm_step(t);
        if (w->s != NULL && otaup_session_deadline(w->s) <= w->now) {
            (void)otaup_session_poll(w->s, w->now);
        }
        if (w->s != NULL) {
            drain_server(w);
        }
        if (w->trace && w->s != NULL && (int)otaup_session_get_state(w->s) != w->trace_state) {
            w->trace_state = (int)otaup_session_get_state(w->s);
            fprintf(stderr, "e2e: %8llu ms session state %d\n", (unsigned long long)(w->now - w->clock0),
                    w->trace_state);
        }
        if (w->s != NULL && otaup_session_finished(w->s) && w->acc_len == 0) {
            int res = otaup_session_result(w->s);
            /* let the last frames arrive, then close */
            uint64_t stop = w->now + 2 * (w->f->latency_ms ? w->f->latency_ms : 50) + 10;
            while (w->to_t.head != NULL && w->now <= stop) {
                pkt *k = w->to_t.head;
                w->to_t.head = k->next;
                if (k->at > w->now) {
                    w->now = k->at;
                }
                (void)otaup_apply_feed(ap, k->p, k->n);
                otaup_simterm_step(t);
                free(k);
            }
            end_session(w);
            rep->ms = w->now;
            rep->run_ms = w->now - w->clock0;
            otaup_simflash_stats_get(otaup_simterm_flash(t), &fs1);
            rep->sectors_erased = fs1.sectors_erased - fs0.sectors_erased;
            rep->flash_ops = fs1.ops - fs0.ops;
            rep->flash_reads = fs1.read_ops - (w->open_seen ? w->reads_open : fs0.read_ops);
            rep->read_faults = fs1.read_faults - fs0.read_faults;
            {
                /* sectors of the image slot(s), from the start of the flash */
                uint32_t ss = otaup_simflash_flash(otaup_simterm_flash(t))->geo.runs[0].size, k;
                rep->slot_sectors = (otaup_simterm_slot_addr(t, 1) ? 2u : 1u) * (otaup_simterm_slot_size(t) / ss);
                rep->slot_sectors_erased = 0;
                for (k = 0; k < rep->slot_sectors && k < 1024; k++) {
                    if (otaup_simflash_wear(otaup_simterm_flash(t), k) != wear0[k]) {
                        rep->slot_sectors_erased++;
                    }
                }
            }
            if (getenv("E2E_VERBOSE") != NULL) {
                fprintf(stderr,
                        "e2e: result %d state %d conns %u reconnects %u cuts %u restarts %u t=%llums "
                        "stream %llu/%llu sent-total %llu retrans %llu dropped %llu resumed-from %u "
                        "slot sectors %u/%u erased (all %llu) restore %u\n",
                        res, rep->server_state, rep->connections, rep->reconnects, rep->power_cuts, rep->restarts,
                        (unsigned long long)w->now, (unsigned long long)rep->stats.stream_sent,
                        (unsigned long long)rep->stats.stream_bytes, (unsigned long long)rep->stream_sent_total,
                        (unsigned long long)rep->retransmits_total, (unsigned long long)rep->frames_dropped,
                        rep->stats.resumed_from_step, rep->slot_sectors_erased, rep->slot_sectors,
                        (unsigned long long)rep->sectors_erased, rep->stats.restore_bytes);
            }
            if (res == OTAUP_E_TIMEOUT || res == OTAUP_E_CLOSED || res == OTAUP_E_RETRIES) {
                /* the terminal tries again, as a device would */
                w->now += 1000;
                rc = connect_all(w);
                if (rc < 0) {
                    return rc;
                }
                continue;
            }
            return res;
        }
        /* scripted link drops and server restarts */
        if (w->s != NULL && w->disconnects_left > 0 && w->f->disconnect_every &&
            w->conn_frames >= w->f->disconnect_every) {
            w->disconnects_left--;
            rc = reconnect(w);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (w->s != NULL && !w->failed_now &&
            ((w->f->fail_after && w->upgrade_frames >= w->f->fail_after) ||
             (w->f->fail_in_restore && otaup_session_get_state(w->s) == OTAUP_SS_RESTORE))) {
            otaup_reg_session rs;
            w->failed_now = 1;
            end_session(w);
            if (otaup_registry_session_get(w->reg, otaup_simterm_id(t), &rs) != 0) {
                return OTAUP_E_NOT_FOUND;
            }
            snprintf(rs.state, sizeof rs.state, "failed");
            rs.result = OTAUP_E_RETRIES;
            if (otaup_registry_session_put(w->reg, &rs) != 0) {
                return OTAUP_E_DB;
            }
            rep->ms = w->now;
            rep->run_ms = w->now - w->clock0;
            return OTAUP_E_RETRIES;
        }
        if (w->s != NULL && w->f->reboot_in_backup && !w->restarted &&
            otaup_session_get_state(w->s) == OTAUP_SS_BACKUP) {
            w->restarted = 1;
            rep->restarts++;
            end_session(w);
            otaup_registry_free(w->reg);
            w->reg = NULL;
            if (open_registry(w) != 0) {
                return OTAUP_E_DB;
            }
            w->now += 1000;
            rc = otaup_simterm_boot(t, term_send, w, term_now, w);
            if (rc == 0) {
                rc = connect_all(w);
            }
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        if (w->s != NULL && w->f->restart_after && !w->restarted && w->upgrade_frames >= w->f->restart_after) {
            w->restarted = 1;
            rep->restarts++;
            end_session(w);
            otaup_registry_free(w->reg);
            w->reg = NULL;
            if (open_registry(w) != 0) {
                return OTAUP_E_DB;
            }
            w->now += 1000;
            rc = connect_all(w);
            if (rc < 0) {
                return rc;
            }
            continue;
        }
        /* time */
        next = w->now + 10;
        if (w->to_t.head != NULL && w->to_t.head->at < next) {
            next = w->to_t.head->at;
        }
        if (w->to_s.head != NULL && w->to_s.head->at < next) {
            next = w->to_s.head->at;
        }
        if (w->s != NULL && otaup_session_deadline(w->s) < next) {
            next = otaup_session_deadline(w->s);
        }
        w->now = next > w->now ? next : w->now + 1;
    }
    end_session(w);
    rep->ms = w->now;
    rep->run_ms = w->now - w->clock0;
    return OTAUP_E_TIMEOUT;
}

int e2e_raw(e2e_world *w, const uint8_t *in, size_t len, uint8_t *out, size_t cap, size_t *out_len)
{
    otaup_session *s;
    int rc, i, n;
    size_t got = 0;
    w->so.reg = w->reg;
    rc = otaup_session_new(&w->so, &s);
    if (rc < 0) {
        return rc;
    }
    rc = otaup_session_feed(s, in, len, w->now);
    for (i = 0; i < 3 && rc == 0; i++) {
        w->now += 100;
        rc = otaup_session_poll(s, w->now);
    }
    while ((n = otaup_session_read(s, out + got, cap - got, w->now)) > 0) {
        got += (size_t)n;
    }
    if (out_len != NULL) {
        *out_len = got;
    }
    rc = otaup_session_result(s);
    otaup_session_free(s);
    return rc;
}

/* ---- images ------------------------------------------------------------------------ */

static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void e2e_make_image(uint8_t *img, size_t len, uint64_t seed)
{
    /* "functions": runs of 4-byte instructions drawn from a small set, with
     * literal pools and padding, like Thumb code */
    static const uint8_t ops[][4] = { { 0x00, 0xBF, 0x70, 0x47 }, { 0x2D, 0xE9, 0xF0, 0x41 },
                                      { 0xBD, 0xE8, 0xF0, 0x81 }, { 0x4F, 0xF0, 0x00, 0x03 },
                                      { 0x13, 0x44, 0x18, 0x46 }, { 0x08, 0x68, 0x01, 0x30 },
                                      { 0xFF, 0xF7, 0x00, 0xF8 }, { 0x10, 0xB5, 0x04, 0x46 } };
    uint64_t s = seed;
    size_t i = 0;
    while (i < len) {
        uint64_t r = mix(&s);
        if (r % 16 == 0) { /* a literal word */
            uint32_t v = (uint32_t)(mix(&s) & 0x0003FFFFu) | 0x08000000u;
            size_t k;
            for (k = 0; k < 4 && i < len; k++) {
                img[i++] = (uint8_t)(v >> (8 * k));
            }
        } else {
            const uint8_t *o = ops[r % 8];
            size_t k;
            for (k = 0; k < 4 && i < len; k++) {
                img[i++] = k == 1 ? (uint8_t)(o[k] ^ (uint8_t)((r >> 8) & 0x7)) : o[k];
            }
        }
    }
}

size_t e2e_make_next(const uint8_t *v1, size_t len, uint8_t *v2, size_t cap, uint64_t seed)
{
    /* v1 with 300 new bytes at 30 % (everything after shifts), 2 KiB edited
     * at 60 %, 1 KiB appended */
    size_t ins = len * 3 / 10, edit = len * 6 / 10, n = 0, i;
    uint8_t extra[2048];
    e2e_make_image(extra, sizeof extra, seed ^ 0xABCDEFu);
    if (cap < len + 300 + 1024) {
        return 0;
    }
    memcpy(v2, v1, ins);
    n = ins;
    memcpy(v2 + n, extra, 300);
    n += 300;
    memcpy(v2 + n, v1 + ins, len - ins);
    for (i = 0; i < 2048 && edit + 300 + i < len + 300; i++) {
        v2[edit + 300 + i] ^= (uint8_t)((i * 7) | 1);
    }
    n += len - ins;
    memcpy(v2 + n, extra + 300, 1024);
    n += 1024;
    return n;
}

/* ---- registry queries the tests assert on ---------------------------- */

static int count_backup_cb(const otaup_reg_backup *b, void *p)
{
    (void)b;
    (*(int *)p)++;
    return 0;
}

int e2e_backups(e2e_world *w, const char *id)
{
    int n = 0, rc = otaup_registry_backup_list(e2e_registry(w), id, count_backup_cb, &n);
    return rc < 0 ? rc : n;
}

struct audit_text {
    char buf[16000];
    size_t len;
};

static int audit_line_cb(const otaup_reg_audit *a, void *p)
{
    struct audit_text *t = p;
    size_t need = strlen(a->event) + strlen(a->detail) + 2;
    if (t->len + need < sizeof t->buf) {
        t->len += (size_t)snprintf(t->buf + t->len, sizeof t->buf - t->len, "%s:%s\n", a->event, a->detail);
    }
    return 0;
}

const char *e2e_audit(e2e_world *w, const char *id)
{
    static struct audit_text t; /* one test process, one thread */
    t.len = 0;
    t.buf[0] = '\0';
    return otaup_registry_audit_list(e2e_registry(w), id, 0, audit_line_cb, &t) < 0 ? NULL : t.buf;
}

otaup_simterm *e2e_terminal(const char *id, uint8_t layout, uint32_t slot, const uint8_t *img, size_t len,
                            const char *version, uint64_t build)
{
    otaup_simterm_options o = OTAUP_SIMTERM_OPTIONS_INIT;
    otaup_simterm *t = NULL;
    o.terminal_id = id;
    o.model = "M1";
    o.layout = layout;
    o.slot_size = slot;
    o.retransmit_ms = 400;
    o.max_frame = 256;
    ck_assert_int_eq(otaup_simterm_new(&o, &t), 0);
    ck_assert_int_eq(otaup_simterm_provision(t, img, len, version, build), 0);
    return t;
}

static int nosend(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx, (void)b;
    return (int)n;
}

static uint32_t noclock(void *ctx)
{
    (void)ctx;
    return 0;
}

void e2e_boot(otaup_simterm *t)
{
    ck_assert_int_eq(otaup_simterm_boot(t, nosend, NULL, noclock, NULL), 0);
}

void e2e_check_runs(e2e_world *w, otaup_simterm *t, const char *id, const uint8_t want[16], const char *version)
{
    uint8_t h[16];
    otaup_reg_terminal rt;
    e2e_boot(t);
    otaup_simterm_image_hash(t, h);
    ck_assert_int_eq(memcmp(h, want, 16), 0);
    ck_assert_str_eq(otaup_simterm_version(t), version);
    ck_assert_int_eq(otaup_simterm_user_intact(t), 1);
    ck_assert_int_eq(e2e_backups(w, id), 0);
    ck_assert_int_eq(otaup_registry_terminal_get(e2e_registry(w), id, &rt), 0);
    ck_assert_str_eq(rt.version, version);
    ck_assert_int_eq(memcmp(rt.image_hash, want, 16), 0);
}
