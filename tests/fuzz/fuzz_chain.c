/*
 * Fuzz target: the terminal's chain verifier (lib/core/chain.c) fed
 * arbitrary record pieces, SYNCs and step commits after a valid manifest.
 * Invariants: no crash or out-of-bounds access; commits only in order,
 * never more than the manifest's steps; once refused, refused for good.
 * Inputs starting with 0xFF replay the genuine stream cut into pieces at
 * the positions the input gives: that must always verify (the chain does
 * not depend on how records are cut).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sec_int.h"
#include "otaup/features.h"
#include "otaup/otaup.h"
#include "otaup/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if OTAUP_HAVE_MBEDTLS && !OTAUP_TERMINAL_ONLY_BUILD
static otaup_crypto crypto;
static uint8_t manifest[2048];
static size_t manifest_len;
static uint8_t *seg_stream[2];
static size_t seg_len[2];
static const uint32_t seg_first[2] = { 0, 2 };
#define NSTEPS 3u

static void put_rec(uint8_t *b, size_t *n, uint8_t type, const uint8_t *body, size_t len)
{
    b[(*n)++] = type;
    b[(*n)++] = (uint8_t)len; /* bodies here stay below 128 bytes */
    memcpy(b + *n, body, len);
    *n += len;
}

/* inner stream of steps [a, b): STEP{i, 0x1000*i, 0x100}, ERASE, WRITE 8 bytes, END */
static size_t make_inner(uint32_t a, uint32_t b, uint8_t *out)
{
    size_t n = 0;
    uint32_t i;
    for (i = a; i < b; i++) {
        uint8_t body[32];
        size_t k = 0;
        body[k++] = (uint8_t)i;
        body[k++] = 0x80;
        body[k++] = (uint8_t)(0x20 * i);
        body[k++] = 0x80;
        body[k++] = 0x02;
        body[k++] = 0; /* flags */
        put_rec(out, &n, 0x27, body, k);
        k = 0;
        body[k++] = 0x80;
        body[k++] = (uint8_t)(0x20 * i);
        body[k++] = 0x80;
        body[k++] = 0x20;
        put_rec(out, &n, 0x20, body, k);
        k = 0;
        body[k++] = 0x80;
        body[k++] = (uint8_t)(0x20 * i);
        body[k++] = 8;
        body[k++] = 0;
        memset(body + k, 0x40 + (int)i, 8);
        k += 8;
        put_rec(out, &n, 0x21, body, k);
        body[0] = (uint8_t)i;
        put_rec(out, &n, 0x28, body, 1);
    }
    return n;
}

static void setup(void)
{
    otaup_manifest m;
    otaup_chain_seg segs[2];
    uint8_t inner[512];
    size_t n, s;
    int len;
    otaup_crypto_mbedtls(&crypto);
    memset(&m, 0, sizeof m);
    m.model = (const uint8_t *)"fuzz";
    m.model_len = 4;
    m.target.len = 0x3000;
    m.slot.len = 0x10000;
    m.layout = OTAUP_LAYOUT_INPLACE;
    m.chain_alg = OTAUP_CHAIN_SHA256;
    m.tag_len = 16;
    memset(m.salt, 0x5A, sizeof m.salt);
    m.nsteps = NSTEPS;
    m.nseg = 2;
    for (s = 0; s < 2; s++) {
        uint32_t k;
        n = make_inner(seg_first[s], s == 0 ? 2u : NSTEPS, inner);
        if (otaup_chain_build_segment(&crypto, m.salt, 16, seg_first[s], inner, n, &seg_stream[s], &seg_len[s], &k,
                                      segs[s].tag) != 0) {
            abort();
        }
        segs[s].first_step = seg_first[s];
    }
    m.segs = segs;
    len = otaup_manifest_encode(&m, manifest, sizeof manifest);
    if (len < 0) {
        abort();
    }
    manifest_len = (size_t)len;
}

/* the genuine stream, every record cut at the input's positions: must verify */
static void genuine(const uint8_t *cuts, size_t ncuts)
{
    otaup_sec sec;
    size_t s, ci = 0;
    if (otaup_sec_begin_offline(&sec, &crypto, manifest, manifest_len) != 0) {
        abort();
    }
    for (s = 0; s < 2; s++) {
        const uint8_t *p = seg_stream[s];
        size_t off = 0;
        uint8_t sync = (uint8_t)seg_first[s];
        if (otaup_sec_record(&sec, 0x2A, &sync, 1) != 0) {
            abort();
        }
        while (off < seg_len[s]) {
            uint8_t type = p[off];
            size_t len = p[off + 1], done = 0;
            const uint8_t *body = p + off + 2;
            int first = 1;
            do {
                size_t piece = len - done;
                unsigned part = first ? OTAUP_SEC_PART_FIRST : 0u;
                first = 0;
                if (ci < ncuts && piece > 0) {
                    piece = cuts[ci++] % (piece + 1u);
                }
                if (done + piece == len) {
                    part |= OTAUP_SEC_PART_LAST;
                }
                if (otaup_sec_inner(&sec, type, body + done, piece, part) != 0) {
                    abort();
                }
                done += piece;
            } while (done < len);
            if (type == 0x28 && otaup_sec_step_commit(&sec, body[0], 0x1000u * body[0], 0x100, NULL, 0) != 0) {
                abort();
            }
            off += 2 + len;
        }
    }
    if (otaup_sec_next_commit(&sec) != NSTEPS) {
        abort();
    }
}

/* arbitrary calls: the verifier must stay consistent */
static void hostile(const uint8_t *d, size_t n)
{
    otaup_sec sec;
    size_t i = 0;
    uint32_t last = 0;
    int refused = 0, err = 0;
    if (otaup_sec_begin_offline(&sec, &crypto, manifest, manifest_len) != 0) {
        abort();
    }
    while (i + 3 <= n) {
        uint8_t op = d[i], type = d[i + 1], len = d[i + 2];
        const uint8_t *body = d + i + 3;
        int rc;
        i += 3;
        if (len > n - i) {
            len = (uint8_t)(n - i);
        }
        i += len;
        switch (op % 8u) {
        case 0: case 1: case 2: case 3:
            rc = otaup_sec_inner(&sec, type, body, len, op & 3u);
            break;
        case 4:
            rc = otaup_sec_outer(&sec, type, body, len, OTAUP_SEC_PART_FIRST | OTAUP_SEC_PART_LAST);
            break;
        case 5: {
            otaup_region e = { (uint32_t)type << 12, (uint32_t)len << 8 };
            uint32_t before = otaup_sec_next_commit(&sec);
            rc = otaup_sec_step_commit(&sec, type, (uint32_t)type << 12, 0x100, &e, op & 8u ? 1u : 0u);
            if (rc == 0 && (type != before || otaup_sec_next_commit(&sec) != before + 1u || type >= NSTEPS)) {
                abort(); /* a commit out of order or beyond the manifest */
            }
            if (rc == 0) {
                last = type;
            }
            break;
        }
        default: {
            /* a genuine unit of segment 0 or 1 */
            size_t s = op & 1u;
            size_t off = 0;
            rc = 0;
            while (rc == 0 && off < seg_len[s]) {
                rc = otaup_sec_inner(&sec, seg_stream[s][off], seg_stream[s] + off + 2, seg_stream[s][off + 1],
                                     OTAUP_SEC_PART_FIRST | OTAUP_SEC_PART_LAST);
                off += 2u + seg_stream[s][off + 1];
            }
            break;
        }
        }
        if (refused && rc != err) {
            abort(); /* a refusal is final and keeps its code */
        }
        if (rc != 0 && !refused) {
            refused = 1;
            err = rc;
            if (otaup_sec_error(&sec) != rc) {
                abort();
            }
        }
    }
    (void)last;
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
#if OTAUP_HAVE_MBEDTLS && !OTAUP_TERMINAL_ONLY_BUILD
    if (manifest_len == 0) {
        setup();
    }
    if (size > 0 && data[0] == 0xFF) {
        genuine(data + 1, size - 1);
    } else {
        hostile(data, size);
    }
#else
    (void)data;
    (void)size;
#endif
    return 0;
}
