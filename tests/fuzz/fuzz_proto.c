/*
 * Fuzz target: the command protocol codec.
 *
 * Input: byte 0 selects the receiver's maximum frame (bits 0..1) and the
 * read sizes of the streaming decoder (bits 2..7); byte 1, bit 0, asks for
 * the header checks and CRCs of every frame-like run to be recomputed
 * before decoding (so that mutations of lengths, types, flags and payloads
 * reach the message decoders instead of dying at the CRC); the rest is the
 * byte stream. Invariants checked:
 *  - the streaming decoder consumes every byte, never delivers a frame
 *    longer than the maximum, and produces the same events whether the
 *    stream is fed in the chosen reads or one byte at a time;
 *  - every delivered frame, copied out as a datagram, decodes the same;
 *  - every message that decodes re-encodes to a frame that decodes again
 *    to the same payload bytes (the same bytes as received, except INFO
 *    whose items are re-ordered canonically);
 *  - reassembled messages and BATCH record streams are decoded without
 *    reading outside their buffers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "otaup/error.h"
#include "otaup/proto.h"

#define CHECK(c)                  \
    do {                          \
        if (!(c)) {               \
            fprintf(stderr, "fuzz_proto: check failed at line %d\n", __LINE__); \
            abort();              \
        }                         \
    } while (0)

static uint8_t g_dbuf[OTAUP_FRAME_MAX];
static uint8_t g_rbuf[4096];
static uint8_t g_enc[OTAUP_FRAME_MAX];
static uint8_t g_enc2[OTAUP_FRAME_MAX];
static uint8_t g_fixed[1u << 20];

/* Make every "OU" that starts a header-sized run a well-checked frame. */
static void repair(uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i + OTAUP_FRAME_HEADER_SIZE <= n; i++) {
        size_t plen;
        uLong c;
        if (p[i] != OTAUP_FRAME_MAGIC0 || p[i + 1] != OTAUP_FRAME_MAGIC1) {
            continue;
        }
        p[i + 5] = otaup_crc8(otaup_crc8(0, p + i, 5), p + i + 6, 6);
        plen = (size_t)p[i + 6] | ((size_t)p[i + 7] << 8);
        if (i + OTAUP_FRAME_OVERHEAD + plen <= n) {
            c = crc32(0uL, p + i, (uInt)(OTAUP_FRAME_HEADER_SIZE + plen));
            p[i + 12 + plen] = (uint8_t)c;
            p[i + 13 + plen] = (uint8_t)(c >> 8);
            p[i + 14 + plen] = (uint8_t)(c >> 16);
            p[i + 15 + plen] = (uint8_t)(c >> 24);
        }
    }
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x100000001B3ull;
    return h;
}

static uint64_t mix_bytes(uint64_t h, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        h = mix(h, p[i]);
    }
    return h;
}

/* Decode a whole message payload and check the re-encoding invariants. */
static void check_message(uint8_t type, const uint8_t *p, size_t n)
{
    otaup_msg m, m2;
    int k, k2;
    if (otaup_msg_decode(type, p, n, &m) != 0) {
        return;
    }
    k = otaup_msg_encode_frame(&m, OTAUP_FLAG_ACKREQ, 0x12345678u, OTAUP_FRAME_MAX, g_enc, sizeof g_enc);
    if (k == OTAUP_E_FRAME_OVERSIZE) {
        return; /* a reassembled message larger than one frame */
    }
    CHECK(k > 0);
    {
        otaup_frame fr;
        CHECK(otaup_frame_decode(g_enc, (size_t)k, OTAUP_FRAME_MAX, &fr) == 0);
        CHECK(fr.type == type && fr.seq == 0x12345678u && fr.flags == OTAUP_FLAG_ACKREQ);
        if (type != OTAUP_MSG_INFO) {
            CHECK(fr.payload_len == n);
            CHECK(n == 0 || memcmp(fr.payload, p, n) == 0);
        }
        CHECK(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m2) == 0);
        k2 = otaup_msg_encode(&m2, g_enc2, sizeof g_enc2);
        CHECK(k2 == (int)fr.payload_len);
        CHECK(memcmp(g_enc2, fr.payload, (size_t)k2) == 0);
    }
    if (type == OTAUP_MSG_BATCH) {
        size_t pos = 0;
        otaup_record r;
        int rc;
        while ((rc = otaup_batch_next(p, n, &pos, &r)) == 1) {
            CHECK(pos <= n);
            if (r.data_len != 0) {
                CHECK(r.data >= p && r.data + r.data_len <= p + n);
            }
        }
    }
}

struct run {
    uint64_t hash;
    size_t frames;
};

static void stream(const uint8_t *in, size_t len, uint32_t max_frame, size_t step, int deep,
                   struct run *out)
{
    otaup_decoder d;
    otaup_reasm ra;
    otaup_recparser rp;
    size_t pos = 0;
    uint64_t h = 0xCBF29CE484222325ull;
    CHECK(otaup_decoder_init(&d, g_dbuf, max_frame, max_frame) == 0);
    CHECK(otaup_reasm_init(&ra, g_rbuf, sizeof g_rbuf) == 0);
    otaup_recparser_init(&rp);
    out->frames = 0;
    while (pos < len) {
        size_t piece = step < len - pos ? step : len - pos;
        size_t off = 0;
        int guard = 0;
        for (;;) {
            otaup_frame fr;
            size_t used = 0;
            int ev = otaup_decoder_feed(&d, in + pos + off, piece - off, &used, &fr);
            CHECK(used <= piece - off);
            off += used;
            CHECK(++guard < 100000);
            if (ev == OTAUP_DEC_NEED_INPUT) {
                CHECK(off == piece);
                break;
            }
            h = mix(h, (uint64_t)(int64_t)ev);
            if (ev == OTAUP_E_FRAME_GARBAGE) {
                CHECK(d.skipped > 0);
                h = mix(h, d.skipped);
                continue;
            }
            if (ev != OTAUP_DEC_FRAME) {
                CHECK(ev == OTAUP_E_FRAME_HEADER || ev == OTAUP_E_FRAME_OVERSIZE ||
                      ev == OTAUP_E_FRAME_CRC || ev == OTAUP_E_FRAME_VERSION ||
                      ev == OTAUP_E_FRAME_FLAGS || ev == OTAUP_E_MSG_TYPE || ev == OTAUP_E_MSG_LENGTH);
                continue;
            }
            out->frames++;
            CHECK(fr.frame_len <= max_frame);
            CHECK(fr.payload_len + OTAUP_FRAME_OVERHEAD == fr.frame_len);
            CHECK((fr.payload >= in && fr.payload + fr.payload_len <= in + len) ||
                  (fr.payload >= g_dbuf && fr.payload + fr.payload_len <= g_dbuf + max_frame));
            h = mix(h, fr.type);
            h = mix(h, fr.flags);
            h = mix(h, fr.seq);
            h = mix_bytes(h, fr.payload, fr.payload_len);
            if (!deep) {
                continue;
            }
            /* the same frame as a datagram */
            {
                otaup_frame f2;
                const uint8_t *start = fr.payload - OTAUP_FRAME_HEADER_SIZE;
                CHECK(otaup_frame_decode(start, fr.frame_len, max_frame, &f2) == 0);
                CHECK(f2.type == fr.type && f2.seq == fr.seq && f2.payload_len == fr.payload_len);
            }
            if (fr.type == OTAUP_MSG_BATCH) {
                size_t c = 0;
                int bad = otaup_batch_check(fr.flags, otaup_recparser_idle(&rp), 0) != 0;
                if (fr.flags == 0) {
                    check_message(fr.type, fr.payload, fr.payload_len);
                }
                while (!bad) {
                    size_t used2 = 0;
                    int e = otaup_recparser_feed(&rp, fr.payload + c, fr.payload_len - c, &used2);
                    CHECK(used2 <= fr.payload_len - c);
                    c += used2;
                    if (e < 0) {
                        bad = 1;
                    } else if (e == OTAUP_RECP_NEED_INPUT) {
                        break;
                    } else if (e == OTAUP_RECP_BYTES) {
                        CHECK(rp.rec.data >= fr.payload && rp.rec.data + rp.rec.data_len <= fr.payload + fr.payload_len);
                    }
                }
                if (bad) {
                    otaup_recparser_init(&rp);
                }
                continue;
            }
            {
                const uint8_t *msg;
                size_t ml;
                int r = otaup_reasm_add(&ra, &fr, &msg, &ml);
                if (r == 1) {
                    CHECK(ml <= sizeof g_rbuf || msg == fr.payload);
                    check_message(fr.type, msg, ml);
                }
            }
        }
        pos += piece;
    }
    out->hash = h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t maxes[4] = { 64, 256, 1024, OTAUP_FRAME_MAX };
    struct run a, b;
    uint32_t max_frame;
    size_t step, len;
    const uint8_t *in;
    if (size < 2) {
        return 0;
    }
    max_frame = maxes[data[0] & 3u];
    step = (size_t)(data[0] >> 2) * 37u + 1u;
    in = data + 2;
    len = size - 2;
    if ((data[1] & 1u) != 0 && len <= sizeof g_fixed) {
        memcpy(g_fixed, in, len);
        repair(g_fixed, len);
        in = g_fixed;
    }
    stream(in, len, max_frame, step, 1, &a);
    stream(in, len, max_frame, 1, 0, &b);
    CHECK(a.hash == b.hash && a.frames == b.frames);
    /* datagram mode on the whole input never crashes and agrees on valid frames */
    {
        otaup_frame fr;
        int rc = otaup_frame_decode(in, len, max_frame, &fr);
        if (rc == 0) {
            CHECK(fr.frame_len == len && fr.frame_len <= max_frame);
            check_message(fr.type, fr.payload, fr.payload_len);
        }
    }
    return 0;
}
