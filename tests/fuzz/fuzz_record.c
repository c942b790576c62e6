/*
 * Fuzz target: operation records.
 *
 * Input: byte 0 picks the chunk sizes for the streaming parser, the rest is
 * a record stream. Invariants checked:
 *  - the whole-buffer decoder never reads past the input, and every record
 *    it accepts re-encodes to exactly the bytes it came from (the encoding
 *    is canonical: shortest varints, no optional padding);
 *  - the streaming parser, fed in chunks, produces the same records, the
 *    same bytes and the same first error as the whole-buffer decoder.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/record.h"

#define CHECK(c)                  \
    do {                          \
        if (!(c)) {               \
            abort();              \
        }                         \
    } while (0)

#define MAXREC 4096

struct seen {
    otaup_record rec;
    size_t off;   /* offset of the trailing bytes in the input */
};

static struct seen g_recs[MAXREC];
static uint8_t g_enc[1u << 17];

static int same_fields(const otaup_record *a, const otaup_record *b)
{
    return a->type == b->type && a->enc == b->enc && a->flags == b->flags && a->value == b->value &&
           a->alg == b->alg && a->hash_len == b->hash_len && a->index == b->index &&
           a->addr == b->addr && a->len == b->len && a->src == b->src && a->lit == b->lit &&
           memcmp(a->hash, b->hash, a->hash_len) == 0;
}

/*
 * A PIECE's sparse differences: decoded whole and in chunks, the decoder
 * consumes the same bytes, stops at the same place, writes the same
 * differences and never past the covered range.
 */
static uint8_t g_out[2][4096 + 16];

static void check_sparse(const otaup_record *r, uint8_t mode)
{
    otaup_sparse a, b;
    int ka, kb = 0, done_a;
    size_t off = 0, chunk = (size_t)(mode >> 4) + 1u;
    uint32_t cover = r->len <= 4096u ? r->len : 0;
    memset(g_out, 0, sizeof g_out);
    otaup_sparse_init(&a, r->len);
    ka = otaup_sparse_feed(&a, r->data, r->data_len, cover ? g_out[0] : NULL);
    CHECK(ka == OTAUP_E_MSG_FIELD || (ka >= 0 && (uint32_t)ka <= r->data_len));
    done_a = otaup_sparse_done(&a);
    CHECK(ka < 0 || done_a || (uint32_t)ka == r->data_len);
    otaup_sparse_init(&b, r->len);
    while (off < r->data_len) {
        size_t n = r->data_len - off < chunk ? r->data_len - off : chunk;
        int k = otaup_sparse_feed(&b, r->data + off, n, cover ? g_out[1] : NULL);
        if (k < 0) {
            kb = k;
            break;
        }
        CHECK((size_t)k <= n);
        off += (size_t)k;
        if ((size_t)k < n) {
            CHECK(otaup_sparse_done(&b));
            break;
        }
    }
    if (ka < 0) {
        CHECK(kb == ka);
        return;
    }
    CHECK(kb == 0 && off == (size_t)ka && otaup_sparse_done(&b) == done_a);
    if (cover) {
        CHECK(memcmp(g_out[0], g_out[1], sizeof g_out[0]) == 0);
        CHECK(g_out[0][cover] == 0 && g_out[1][cover] == 0); /* nothing past the range */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *in;
    size_t len, pos = 0, nrec = 0, i;
    int first_err = 0;
    uint8_t mode;
    otaup_recparser p;
    size_t ri = 0, got_bytes = 0;
    int pend_err = 0;
    int truncated = 0; /* the input ends inside a record */

    if (size < 1) {
        return 0;
    }
    mode = data[0];
    in = data + 1;
    len = size - 1;

    /* whole-buffer decoder */
    while (pos < len && nrec < MAXREC) {
        otaup_record r;
        int k = otaup_record_decode(in + pos, len - pos, &r);
        if (k == OTAUP_E_DELTA_TRUNCATED) {
            truncated = 1;
            break;
        }
        if (k < 0) {
            CHECK(k == OTAUP_E_MSG_TYPE || k == OTAUP_E_MSG_FIELD || k == OTAUP_E_MSG_LENGTH);
            first_err = k;
            break;
        }
        CHECK((size_t)k <= len - pos);
        if (r.data_len != 0) {
            CHECK(r.data >= in + pos && r.data + r.data_len <= in + pos + (size_t)k);
        }
        /* canonical: re-encoding gives the same bytes */
        if ((size_t)k <= sizeof g_enc) {
            int e = otaup_record_encode(&r, g_enc, sizeof g_enc);
            CHECK(e == k);
            CHECK(memcmp(g_enc, in + pos, (size_t)k) == 0);
        }
        if (r.type == OTAUP_REC_PIECE) {
            check_sparse(&r, mode);
        }
        g_recs[nrec].rec = r;
        g_recs[nrec].off = r.data_len != 0 ? (size_t)(r.data - in) : 0;
        nrec++;
        pos += (size_t)k;
    }
    if (nrec == MAXREC) {
        return 0;
    }

    /* streaming parser in chunks chosen by `mode` */
    otaup_recparser_init(&p);
    pos = 0;
    while (pos < len) {
        size_t chunk = (size_t)(mode & 0x0F) + 1u;
        size_t off = 0;
        if (mode & 0x80) {
            chunk = (size_t)((pos * 7u + mode) % 29u) + 1u;
        }
        if (chunk > len - pos) {
            chunk = len - pos;
        }
        for (;;) {
            size_t used = 0;
            int ev = otaup_recparser_feed(&p, in + pos + off, chunk - off, &used);
            CHECK(used <= chunk - off);
            off += used;
            if (ev < 0) {
                pend_err = ev;
                break;
            }
            if (ev == OTAUP_RECP_NEED_INPUT) {
                CHECK(off == chunk);
                break;
            }
            if (ri == nrec) {
                /* events of the record the input ends in: no DONE possible */
                CHECK(truncated && ev != OTAUP_RECP_DONE);
                continue;
            }
            if (ev == OTAUP_RECP_HEAD) {
                CHECK(same_fields(&p.rec, &g_recs[ri].rec));
                CHECK(p.rec.data_len == g_recs[ri].rec.data_len);
                got_bytes = 0;
            } else if (ev == OTAUP_RECP_BYTES) {
                CHECK(ri < nrec);
                CHECK(p.rec.data_len > 0);
                CHECK(got_bytes + p.rec.data_len <= g_recs[ri].rec.data_len);
                /* the bytes are the input's own bytes at the right place */
                CHECK(p.rec.data == in + g_recs[ri].off + got_bytes);
                got_bytes += p.rec.data_len;
            } else {
                CHECK(ev == OTAUP_RECP_DONE);
                CHECK(ri < nrec);
                CHECK(got_bytes == g_recs[ri].rec.data_len);
                CHECK(p.rec.data_len == g_recs[ri].rec.data_len);
                ri++;
            }
        }
        if (pend_err != 0) {
            break;
        }
        pos += chunk;
    }
    if (pend_err == 0) {
        size_t used;
        int ev;
        while ((ev = otaup_recparser_feed(&p, NULL, 0, &used)) == OTAUP_RECP_DONE) {
            CHECK(ri < nrec && got_bytes == g_recs[ri].rec.data_len);
            ri++;
        }
        CHECK(ev == OTAUP_RECP_NEED_INPUT);
    }
    /*
     * The parser checks fields as they arrive, so inside a record the input
     * ends in it may fail where the decoder only saw a truncation.
     */
    CHECK(pend_err == first_err || (truncated && first_err == 0 && ri == nrec));
    CHECK(ri == nrec);
    if (truncated) {
        CHECK(pend_err != 0 || !otaup_recparser_idle(&p));
        return 0;
    }
    if (first_err == 0) {
        /* idle exactly when the decoder consumed everything */
        size_t consumed = 0;
        for (i = 0; i < nrec; i++) {
            otaup_record r;
            int k = otaup_record_decode(in + consumed, len - consumed, &r);
            CHECK(k > 0);
            consumed += (size_t)k;
        }
        CHECK(otaup_recparser_idle(&p) == (consumed == len));
    }
    return 0;
}
