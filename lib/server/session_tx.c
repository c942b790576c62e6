/*
 * otaup — session transmitter: cut, window, go-back-N (session_tx.h).
 * Server side, C11, allocates.
 */
#include "server/session_tx.h"

#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/record.h"

#define NONE UINT32_MAX

static uint32_t varint_len(uint32_t v)
{
    uint32_t n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

/* bytes of a DATA record carrying n payload bytes */
static uint32_t data_rec_len(uint32_t n)
{
    return 1u + varint_len(n + 1u) + 1u + n;
}

static int push_unit(otaup_tx *tx, const otaup_tx_unit *u);

int otaup_tx_init(otaup_tx *tx, const uint8_t *body, size_t len)
{
    size_t pos = 0;
    uint32_t cap = 0;
    memset(tx, 0, sizeof *tx);
    if (body == NULL || len == 0 || len > UINT32_MAX) {
        return OTAUP_E_INVAL;
    }
    tx->body = body;
    tx->body_len = len;
    while (pos < len) {
        otaup_record rec;
        int n = otaup_record_decode(body + pos, len - pos, &rec);
        if (n <= 0) {
            otaup_tx_free(tx);
            return OTAUP_E_DELTA_CORRUPT;
        }
        if (rec.type == OTAUP_REC_SYNC) {
            if (tx->nsyncs == cap) {
                otaup_tx_sync *s;
                cap = cap ? 2 * cap : 16;
                s = realloc(tx->syncs, cap * sizeof *s);
                if (s == NULL) {
                    otaup_tx_free(tx);
                    return OTAUP_E_NOMEM;
                }
                tx->syncs = s;
            }
            tx->syncs[tx->nsyncs].index = rec.index;
            tx->syncs[tx->nsyncs].offset = (uint32_t)pos;
            tx->nsyncs++;
        } else if (rec.type != OTAUP_REC_DATA && rec.type != OTAUP_REC_VERIFY &&
                   rec.type != OTAUP_REC_ERASE) {
            otaup_tx_free(tx);
            return OTAUP_E_DELTA_CORRUPT;
        }
        pos += (size_t)n;
    }
    tx->rto_ms = 1000;
    tx->rto_base_ms = 1000;
    tx->rto_min_ms = 200;
    tx->rto_max_ms = 30000;
    tx->max_retries = 10;
    tx->window_units = 64;
    tx->window_bytes = 256u * 1024u;
    tx->rtt_unit = NONE;
    return 0;
}

int otaup_tx_init_raw(otaup_tx *tx, const uint8_t *buf, size_t len, uint32_t chunk)
{
    uint32_t off = 0;
    int rc;
    memset(tx, 0, sizeof *tx);
    if (buf == NULL || len == 0 || len > UINT32_MAX || chunk == 0) {
        return OTAUP_E_INVAL;
    }
    tx->body = buf;
    tx->body_len = len;
    while (off < len) {
        otaup_tx_unit u;
        memset(&u, 0, sizeof u);
        u.off = off;
        u.len = (uint32_t)(len - off < chunk ? len - off : chunk);
        rc = push_unit(tx, &u);
        if (rc < 0) {
            otaup_tx_free(tx);
            return rc;
        }
        off += u.len;
    }
    tx->payload_max = chunk;
    tx->rto_ms = 1000;
    tx->rto_base_ms = 1000;
    tx->rto_min_ms = 200;
    tx->rto_max_ms = 30000;
    tx->max_retries = 10;
    tx->window_units = 64;
    tx->window_bytes = 256u * 1024u;
    tx->rtt_unit = NONE;
    return (int)tx->nunits;
}

void otaup_tx_free(otaup_tx *tx)
{
    free(tx->syncs);
    free(tx->units);
    tx->syncs = NULL;
    tx->units = NULL;
    tx->nsyncs = tx->nunits = tx->cap_units = 0;
}

uint32_t otaup_tx_resume_offset(const otaup_tx *tx, uint32_t next_step, uint32_t *sync_index)
{
    uint32_t i, off = 0, idx = 0;
    for (i = 0; i < tx->nsyncs; i++) {
        if (tx->syncs[i].index <= next_step) {
            off = tx->syncs[i].offset;
            idx = tx->syncs[i].index;
        }
    }
    if (sync_index != NULL) {
        *sync_index = idx;
    }
    return off;
}

static int push_unit(otaup_tx *tx, const otaup_tx_unit *u)
{
    if (tx->nunits == tx->cap_units) {
        uint32_t cap = tx->cap_units ? 2 * tx->cap_units : 64;
        otaup_tx_unit *n = realloc(tx->units, cap * sizeof *n);
        if (n == NULL) {
            return OTAUP_E_NOMEM;
        }
        tx->units = n;
        tx->cap_units = cap;
    }
    tx->units[tx->nunits++] = *u;
    return 0;
}

uint32_t otaup_tx_unit_len(const otaup_tx *tx, uint32_t i)
{
    const otaup_tx_unit *u = &tx->units[i];
    return (u->has_lead ? data_rec_len(u->lead_len) : 0) + u->len +
           (u->has_tail ? data_rec_len(u->tail_len) : 0);
}

int otaup_tx_cut(otaup_tx *tx, uint32_t start, uint32_t payload_max)
{
    otaup_tx_unit u;
    uint32_t pos = start, room;
    uint32_t split_off = 0, split_left = 0;
    int splitting = 0, rc;
    if (payload_max < 16 || start > tx->body_len) {
        return OTAUP_E_INVAL;
    }
    tx->nunits = 0;
    tx->payload_max = payload_max;
    memset(&u, 0, sizeof u);
    room = payload_max;
    while (splitting || pos < tx->body_len) {
        if (splitting) {
            /* a fresh unit begins with the rest of the split DATA record */
            uint32_t hdr = 2u + varint_len(room);
            uint32_t n = split_left < room - hdr ? split_left : room - hdr;
            u.has_lead = 1;
            u.lead_off = split_off;
            u.lead_len = n;
            u.lead_flags = 0;
            room -= data_rec_len(n);
            split_off += n;
            split_left -= n;
            if (split_left > 0) {
                rc = push_unit(tx, &u);
                if (rc < 0) {
                    return rc;
                }
                memset(&u, 0, sizeof u);
                room = payload_max;
                continue;
            }
            splitting = 0;
            u.off = pos;
            continue;
        }
        {
            otaup_record rec;
            int n = otaup_record_decode(tx->body + pos, tx->body_len - pos, &rec);
            uint32_t rl;
            if (n <= 0) {
                return OTAUP_E_DELTA_CORRUPT;
            }
            rl = (uint32_t)n;
            if (rl <= room) {
                if (u.len == 0) {
                    u.off = pos;
                }
                u.len += rl;
                room -= rl;
                pos += rl;
                continue;
            }
            if (rec.type == OTAUP_REC_DATA && room >= 2u + varint_len(room) + 8u) {
                /* split: the first part ends this unit */
                uint32_t data_off = (uint32_t)(rec.data - tx->body);
                uint32_t take = room - (2u + varint_len(room));
                u.has_tail = 1;
                u.tail_off = data_off;
                u.tail_len = take;
                u.tail_flags = rec.flags;
                split_off = data_off + take;
                split_left = rec.data_len - take;
                splitting = 1;
                pos += rl;
            } else if (u.len == 0 && !u.has_lead) {
                if (rec.type != OTAUP_REC_DATA) {
                    return OTAUP_E_LIMIT; /* a control record larger than a frame */
                }
                /* room is payload_max here, so the test above passed: unreachable */
                return OTAUP_E_INTERNAL;
            }
            rc = push_unit(tx, &u);
            if (rc < 0) {
                return rc;
            }
            memset(&u, 0, sizeof u);
            room = payload_max;
        }
    }
    if (u.len > 0 || u.has_lead || u.has_tail) {
        rc = push_unit(tx, &u);
        if (rc < 0) {
            return rc;
        }
    }
    tx->base = tx->next = tx->high = 0;
    tx->retries = 0;
    tx->rtt_unit = NONE;
    return (int)tx->nunits;
}

static int put_data(uint8_t *out, size_t cap, const uint8_t *bytes, uint32_t n, uint8_t flags)
{
    otaup_record rec;
    memset(&rec, 0, sizeof rec);
    rec.type = OTAUP_REC_DATA;
    rec.flags = flags;
    rec.data = bytes;
    rec.data_len = n;
    return otaup_record_encode(&rec, out, cap);
}

int otaup_tx_encode(const otaup_tx *tx, uint32_t i, uint8_t *out, size_t cap)
{
    const otaup_tx_unit *u;
    size_t n = 0;
    int rc;
    if (i >= tx->nunits) {
        return OTAUP_E_RANGE;
    }
    u = &tx->units[i];
    if (u->has_lead) {
        rc = put_data(out, cap, tx->body + u->lead_off, u->lead_len, u->lead_flags);
        if (rc < 0) {
            return rc;
        }
        n += (size_t)rc;
    }
    if (u->len > cap - n) {
        return OTAUP_E_BUFFER;
    }
    memcpy(out + n, tx->body + u->off, u->len);
    n += u->len;
    if (u->has_tail) {
        rc = put_data(out + n, cap - n, tx->body + u->tail_off, u->tail_len, u->tail_flags);
        if (rc < 0) {
            return rc;
        }
        n += (size_t)rc;
    }
    return (int)n;
}

/* ---- window ------------------------------------------------------------ */

int64_t otaup_tx_next(const otaup_tx *tx)
{
    uint32_t i, inflight = 0;
    if (tx->next >= tx->nunits) {
        return -1;
    }
    if (tx->next - tx->base >= tx->window_units) {
        return -1;
    }
    for (i = tx->base; i < tx->next; i++) {
        inflight += otaup_tx_unit_len(tx, i);
    }
    if (tx->next > tx->base && inflight + otaup_tx_unit_len(tx, tx->next) > tx->window_bytes) {
        return -1;
    }
    return tx->next;
}

int otaup_tx_sent(otaup_tx *tx, uint32_t i, uint64_t now_ms)
{
    uint32_t len = otaup_tx_unit_len(tx, i);
    int idle = i == tx->base && i >= tx->high;
    if (idle) {
        /* nothing was in flight: the timer starts. A resend (after a
         * timeout, which restarted it, or a NACK's go-back) leaves it
         * running: a terminal that refuses every frame with a transient
         * NACK makes no progress, and its NACKs must not keep the
         * retransmission limit from being reached */
        tx->timer_start = now_ms;
    }
    if (i >= tx->high) {
        tx->high = i + 1;
        tx->bytes_unique += len;
        if (tx->rtt_unit == NONE) {
            tx->rtt_unit = i;
            tx->rtt_sent = now_ms;
        }
    } else {
        tx->retransmits++;
        if (tx->rtt_unit != NONE && i <= tx->rtt_unit) {
            tx->rtt_unit = NONE; /* Karn: no sample from a retransmitted unit */
        }
    }
    tx->bytes_sent += len;
    tx->next = i + 1;
    return idle;
}

static void rtt_sample(otaup_tx *tx, uint32_t r)
{
    if (tx->srtt_ms == 0) {
        tx->srtt_ms = r ? r : 1;
        tx->rttvar_ms = r / 2;
    } else {
        uint32_t d = tx->srtt_ms > r ? tx->srtt_ms - r : r - tx->srtt_ms;
        tx->rttvar_ms = (3 * tx->rttvar_ms + d) / 4;
        tx->srtt_ms = (7 * tx->srtt_ms + r) / 8;
        if (tx->srtt_ms == 0) {
            tx->srtt_ms = 1;
        }
    }
    tx->rto_ms = tx->srtt_ms + 4 * tx->rttvar_ms;
    if (tx->rto_ms < tx->rto_min_ms) {
        tx->rto_ms = tx->rto_min_ms;
    }
    if (tx->rto_ms > tx->rto_max_ms) {
        tx->rto_ms = tx->rto_max_ms;
    }
    tx->rto_base_ms = tx->rto_ms;
}

int otaup_tx_ack(otaup_tx *tx, uint32_t expected, int nack, uint64_t now_ms)
{
    if (expected > tx->high) {
        return OTAUP_E_PEER; /* acknowledges a unit never sent */
    }
    if (expected > tx->base) {
        if (tx->rtt_unit != NONE && expected > tx->rtt_unit) {
            rtt_sample(tx, (uint32_t)(now_ms - tx->rtt_sent));
            tx->rtt_unit = NONE;
        }
        tx->base = expected;
        tx->retries = 0;
        tx->timer_start = now_ms;
        /* the link delivers again: the backoff ends (a lossy link loses
         * frames at random; a timeout kept at its backed-off value after
         * an ACK would stall every later loss for up to rto_max_ms) */
        if (tx->rto_base_ms != 0) {
            tx->rto_ms = tx->rto_base_ms;
        }
        if (tx->next < tx->base) {
            tx->next = tx->base;
        }
    }
    if (nack && tx->next > tx->base) {
        /* one go-back per gap and round trip: later NACKs for the same gap
         * come from frames that were already in flight */
        uint32_t guard = tx->srtt_ms ? tx->srtt_ms : tx->rto_min_ms;
        if (tx->gb_base != tx->base || tx->gb_valid == 0 || now_ms - tx->gb_time >= guard) {
            tx->next = tx->base;
            tx->gb_base = tx->base;
            tx->gb_time = now_ms;
            tx->gb_valid = 1;
            tx->rtt_unit = NONE; /* the timer runs on: see otaup_tx_sent */
        }
    }
    return tx->base >= tx->nunits ? 1 : 0;
}

int otaup_tx_poll(otaup_tx *tx, uint64_t now_ms)
{
    if (tx->base >= tx->high || tx->base >= tx->nunits) {
        return 0;
    }
    if (now_ms - tx->timer_start < tx->rto_ms) {
        return 0;
    }
    tx->timeouts++;
    tx->retries++;
    if (tx->retries > tx->max_retries) {
        return OTAUP_E_RETRIES;
    }
    tx->next = tx->base;
    tx->timer_start = now_ms;
    tx->rtt_unit = NONE;
    tx->rto_ms = tx->rto_ms * 2 > tx->rto_max_ms ? tx->rto_max_ms : tx->rto_ms * 2;
    return 0;
}

uint64_t otaup_tx_deadline(const otaup_tx *tx)
{
    if (tx->base >= tx->high || tx->base >= tx->nunits) {
        return UINT64_MAX;
    }
    return tx->timer_start + tx->rto_ms;
}

int otaup_tx_done(const otaup_tx *tx)
{
    return tx->base >= tx->nunits;
}
