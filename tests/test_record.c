/*
 * Operation records: varints, zigzag sources, body and record encoding,
 * every truncation, overlong varints, length lies, reserved types, and the
 * streaming parser against the whole-buffer decoder at every split point.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"
#include "otaup/record.h"

/* ---- helpers ------------------------------------------------------------- */

static uint8_t g_bytes[4096];

static void fill_bytes(void)
{
    size_t i;
    uint32_t x = 0x12345678u;
    for (i = 0; i < sizeof g_bytes; i++) {
        x = x * 1103515245u + 12345u;
        g_bytes[i] = (uint8_t)(x >> 16);
    }
}

static otaup_record mk(uint8_t type)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = type;
    return r;
}

/* A sample of every record type, with values that exercise each varint size. */
static size_t samples(otaup_record *out)
{
    size_t n = 0;
    otaup_record r;
    fill_bytes();

    r = mk(OTAUP_REC_ERASE); r.addr = 0x08020000u; r.len = 0x20000u; out[n++] = r;
    r = mk(OTAUP_REC_ERASE); r.addr = 0; r.len = 0; out[n++] = r;
    r = mk(OTAUP_REC_ERASE); r.addr = 0xFFFFF000u; r.len = 0x1000u; out[n++] = r;
    r = mk(OTAUP_REC_WRITE); r.addr = 0x1000; r.len = 130; r.enc = OTAUP_ENC_INLINE;
    r.data = g_bytes; r.data_len = 130; out[n++] = r;
    r = mk(OTAUP_REC_WRITE); r.addr = 0x7F; r.len = 0; r.enc = OTAUP_ENC_INLINE; out[n++] = r;
    r = mk(OTAUP_REC_WRITE); r.addr = 0x80; r.len = 1u << 20; r.enc = OTAUP_ENC_DEFERRED; out[n++] = r;
    r = mk(OTAUP_REC_COPY); r.addr = 0x08004000u; r.src = 0x08000000u; r.len = 16384; out[n++] = r;
    r = mk(OTAUP_REC_COPY); r.addr = 0x08000000u; r.src = 0x08004000u; r.len = 1; out[n++] = r;
    r = mk(OTAUP_REC_COPY); r.addr = 0xFFFFFF00u; r.src = 0; r.len = 0x100; out[n++] = r;
    r = mk(OTAUP_REC_COPY); r.addr = 0; r.src = 0xFFFFFFFFu; r.len = 1; out[n++] = r;
    r = mk(OTAUP_REC_DIFF); r.addr = 0x2000; r.src = 0x1FF0; r.len = 17; r.enc = OTAUP_ENC_INLINE;
    r.data = g_bytes + 7; r.data_len = 17; out[n++] = r;
    r = mk(OTAUP_REC_DIFF); r.addr = 0x2000; r.src = 0x9000; r.len = 4096; r.enc = OTAUP_ENC_DEFERRED; out[n++] = r;
    r = mk(OTAUP_REC_FILL); r.addr = 0x3000; r.len = 0x0FFFFFFFu; r.value = 0xA5; out[n++] = r;
    r = mk(OTAUP_REC_VERIFY); r.addr = 0x4000; r.len = 1024; r.alg = OTAUP_HASH_XXH3_64;
    r.hash_len = 8; memcpy(r.hash, g_bytes + 100, 8); out[n++] = r;
    r = mk(OTAUP_REC_VERIFY); r.addr = 0x4000; r.len = 1024; r.alg = OTAUP_HASH_XXH3_128;
    r.hash_len = 16; memcpy(r.hash, g_bytes + 200, 16); out[n++] = r;
    r = mk(OTAUP_REC_VERIFY); r.addr = 0xFFFFFFFFu; r.len = 1; r.alg = OTAUP_HASH_SHA256;
    r.hash_len = 32; memcpy(r.hash, g_bytes + 300, 32); out[n++] = r;
    r = mk(OTAUP_REC_DATA); r.flags = OTAUP_DATA_RESET; r.data = g_bytes + 1000; r.data_len = 200; out[n++] = r;
    r = mk(OTAUP_REC_DATA); r.flags = 0; out[n++] = r;
    r = mk(OTAUP_REC_STEP); r.index = 0; r.addr = 0x08000000u; r.len = 4096; r.flags = OTAUP_STEP_HASH;
    r.hash_len = 8; memcpy(r.hash, g_bytes + 50, 8); out[n++] = r;
    r = mk(OTAUP_REC_STEP); r.index = 0xFFFFFFFFu; r.addr = 0x10; r.len = 0x20; r.flags = 0; out[n++] = r;
    r = mk(OTAUP_REC_END); r.index = 12345; out[n++] = r;
    r = mk(OTAUP_REC_BLOB); r.data = g_bytes + 2000; r.data_len = 129; out[n++] = r;
    r = mk(OTAUP_REC_BLOB); out[n++] = r;
    r = mk(OTAUP_REC_SYNC); r.index = 128; out[n++] = r;
    /* compact records: the example of docs/delta-format.md, then extremes */
    r = mk(OTAUP_REC_PIECE); r.src = 64; r.len = 20; r.lit = 2;
    r.data = (const uint8_t *)"\x43\x10\xFF\x0F\xAA\xBB"; r.data_len = 6; out[n++] = r;
    r = mk(OTAUP_REC_PIECE); r.src = (uint32_t)-5; r.len = 0; r.lit = 3; r.data = g_bytes; r.data_len = 3;
    out[n++] = r;
    r = mk(OTAUP_REC_PIECE); r.src = 0x80000000u; r.len = 0xFFFFFFFEu; r.lit = 1; r.data = g_bytes + 9;
    r.data_len = 200; out[n++] = r;
    r = mk(OTAUP_REC_CFILL); r.len = 1; r.value = 0xFF; out[n++] = r;
    r = mk(OTAUP_REC_CFILL); r.len = 0xFFFFFFFFu; r.value = 0; out[n++] = r;
    return n;
}

static void assert_rec_eq(const otaup_record *a, const otaup_record *b)
{
    ck_assert_uint_eq(a->type, b->type);
    ck_assert_uint_eq(a->enc, b->enc);
    ck_assert_uint_eq(a->flags, b->flags);
    ck_assert_uint_eq(a->value, b->value);
    ck_assert_uint_eq(a->alg, b->alg);
    ck_assert_uint_eq(a->hash_len, b->hash_len);
    ck_assert_uint_eq(a->index, b->index);
    ck_assert_uint_eq(a->addr, b->addr);
    ck_assert_uint_eq(a->len, b->len);
    ck_assert_uint_eq(a->src, b->src);
    ck_assert_uint_eq(a->lit, b->lit);
    ck_assert_mem_eq(a->hash, b->hash, a->hash_len);
    ck_assert_uint_eq(a->data_len, b->data_len);
    if (a->data_len != 0) {
        ck_assert_mem_eq(a->data, b->data, a->data_len);
    }
}

/* ---- varints ----------------------------------------------------------- */

START_TEST(test_varint_round_trip)
{
    static const uint32_t vals[] = { 0, 1, 127, 128, 255, 16383, 16384, (1u << 21) - 1, 1u << 21,
                                     (1u << 28) - 1, 1u << 28, 0x7FFFFFFFu, 0xFFFFFFFFu };
    static const int sizes[] = { 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 5 };
    size_t i;
    for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[8];
        uint32_t v = 0;
        int n = otaup_varint_put(vals[i], b, sizeof b);
        ck_assert_int_eq(n, sizes[i]);
        ck_assert_int_eq(otaup_varint_get(b, (size_t)n, &v), n);
        ck_assert_uint_eq(v, vals[i]);
        /* every shorter input is truncated */
        for (int k = 0; k < n; k++) {
            ck_assert_int_eq(otaup_varint_get(b, (size_t)k, &v), OTAUP_E_DELTA_TRUNCATED);
        }
        /* every too small buffer is refused */
        for (int k = 0; k < n; k++) {
            ck_assert_int_eq(otaup_varint_put(vals[i], b, (size_t)k), OTAUP_E_BUFFER);
        }
    }
}
END_TEST

START_TEST(test_varint_malformed)
{
    uint32_t v;
    static const uint8_t zero2[] = { 0x80, 0x00 };               /* 0 in two bytes */
    static const uint8_t one3[] = { 0x81, 0x80, 0x00 };          /* 1 in three bytes */
    static const uint8_t big[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x10 }; /* 2^32 */
    static const uint8_t six[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
    static const uint8_t max[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F };
    static const uint8_t pad5[] = { 0x81, 0x80, 0x80, 0x80, 0x00 };
    ck_assert_int_eq(otaup_varint_get(zero2, 2, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(one3, 3, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(big, 5, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(six, 6, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(six, 5, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(pad5, 5, &v), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_varint_get(max, 5, &v), 5);
    ck_assert_uint_eq(v, 0xFFFFFFFFu);
}
END_TEST

/* ---- round trips ------------------------------------------------------------ */

START_TEST(test_round_trip_every_type)
{
    otaup_record s[64], d;
    size_t n = samples(s), i;
    int seen[256] = { 0 };
    static uint8_t buf[8192];
    for (i = 0; i < n; i++) {
        int len = otaup_record_encode(&s[i], buf, sizeof buf);
        int blen;
        ck_assert_int_gt(len, 1);
        ck_assert_uint_eq(buf[0], s[i].type);
        memset(&d, 0xEE, sizeof d);
        ck_assert_int_eq(otaup_record_decode(buf, (size_t)len, &d), len);
        assert_rec_eq(&s[i], &d);
        if (d.data_len != 0) {
            /* data points into the input, never copied */
            ck_assert(d.data > buf && d.data + d.data_len == buf + len);
        }
        /* trailing bytes after a record are not consumed */
        buf[len] = 0xFF;
        ck_assert_int_eq(otaup_record_decode(buf, (size_t)len + 1, &d), len);
        /* body alone */
        blen = otaup_record_encode_body(&s[i], buf, sizeof buf);
        ck_assert_int_gt(blen, -1);
        ck_assert_int_eq(otaup_record_decode_body(s[i].type, buf, (size_t)blen, &d), 0);
        assert_rec_eq(&s[i], &d);
        seen[s[i].type] = 1;
    }
    for (i = OTAUP_REC_ERASE; i <= OTAUP_REC_SYNC; i++) {
        ck_assert_msg(seen[i], "type 0x%02x has no sample", (unsigned)i);
    }
    ck_assert(seen[OTAUP_REC_PIECE] && seen[OTAUP_REC_CFILL]);
}
END_TEST

/* The wire form of a few records, byte by byte (pins the format). */
START_TEST(test_known_bytes)
{
    uint8_t buf[64];
    otaup_record r = mk(OTAUP_REC_COPY);
    static const uint8_t copy_back[] = { 0x22, 0x08, 0x80, 0x80, 0x01, 0xFF, 0xFF, 0x01, 0x80, 0x01 };
    static const uint8_t erase[] = { 0x20, 0x06, 0x80, 0x80, 0x80, 0x40, 0x80, 0x20 };
    static const uint8_t step[] = { 0x27, 0x0C, 0x05, 0x10, 0x20, 0x01, 1, 2, 3, 4, 5, 6, 7, 8 };
    static const uint8_t write_i[] = { 0x21, 0x06, 0x10, 0x03, 0x00, 0xAA, 0xBB, 0xCC };
    static const uint8_t wdata[] = { 0xAA, 0xBB, 0xCC };
    static const uint8_t piece[] = { 0x30, 0x0A, 0x80, 0x01, 0x14, 0x02, 0x43, 0x10, 0xFF, 0x0F, 0xAA, 0xBB };
    static const uint8_t cfill[] = { 0x31, 0x03, 0x80, 0x01, 0xFF };
    r.addr = 0x4000; r.src = 0; r.len = 128; /* src - addr = -16384: zigzag 32767 */
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof copy_back);
    ck_assert_mem_eq(buf, copy_back, sizeof copy_back);
    r = mk(OTAUP_REC_ERASE); r.addr = 0x08000000u; r.len = 4096;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof erase);
    ck_assert_mem_eq(buf, erase, sizeof erase);
    r = mk(OTAUP_REC_STEP); r.index = 5; r.addr = 0x10; r.len = 0x20; r.flags = OTAUP_STEP_HASH;
    r.hash_len = 8; memcpy(r.hash, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof step);
    ck_assert_mem_eq(buf, step, sizeof step);
    r = mk(OTAUP_REC_WRITE); r.addr = 0x10; r.len = 3; r.data = wdata; r.data_len = 3;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof write_i);
    ck_assert_mem_eq(buf, write_i, sizeof write_i);
    /* the PIECE example of docs/delta-format.md */
    r = mk(OTAUP_REC_PIECE); r.src = 64; r.len = 20; r.lit = 2; r.data = piece + 6; r.data_len = 6;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof piece);
    ck_assert_mem_eq(buf, piece, sizeof piece);
    r = mk(OTAUP_REC_CFILL); r.len = 128; r.value = 0xFF;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), (int)sizeof cfill);
    ck_assert_mem_eq(buf, cfill, sizeof cfill);
}
END_TEST

START_TEST(test_zigzag_extremes)
{
    static const uint32_t pts[] = { 0, 1, 2, 0x7FFFFFFFu, 0x80000000u, 0x80000001u, 0xFFFFFFFEu, 0xFFFFFFFFu };
    uint8_t buf[64];
    size_t i, j;
    for (i = 0; i < 8; i++) {
        for (j = 0; j < 8; j++) {
            otaup_record r = mk(OTAUP_REC_COPY), d;
            int n;
            r.addr = pts[i];
            r.src = pts[j];
            r.len = 0;
            n = otaup_record_encode(&r, buf, sizeof buf);
            ck_assert_int_gt(n, 0);
            ck_assert_int_le(n, 1 + 1 + 5 + 5 + 1);
            ck_assert_int_eq(otaup_record_decode(buf, (size_t)n, &d), n);
            ck_assert_uint_eq(d.src, pts[j]);
            ck_assert_uint_eq(d.addr, pts[i]);
        }
    }
}
END_TEST

/* ---- malformed input ------------------------------------------------------- */

START_TEST(test_every_truncation)
{
    otaup_record s[64], d;
    size_t n = samples(s), i;
    static uint8_t buf[8192];
    for (i = 0; i < n; i++) {
        int len = otaup_record_encode(&s[i], buf, sizeof buf);
        int hlen = 1 + (buf[1] & 0x80 ? (buf[2] & 0x80 ? 3 : 2) : 1);
        for (int k = 0; k < len; k++) {
            ck_assert_msg(otaup_record_decode(buf, (size_t)k, &d) == OTAUP_E_DELTA_TRUNCATED,
                          "type 0x%02x cut at %d of %d", s[i].type, k, len);
        }
        /* a body cut short is malformed, except for the byte runs of DATA/BLOB */
        for (int k = 0; k < len - hlen; k++) {
            int rc = otaup_record_decode_body(s[i].type, buf + hlen, (size_t)k, &d);
            int fixed = len - hlen - (int)s[i].data_len;
            if (s[i].type == OTAUP_REC_BLOB || (s[i].type == OTAUP_REC_DATA && k >= 1)) {
                ck_assert_int_eq(rc, 0);
                ck_assert_uint_eq(d.data_len, (uint32_t)k - (s[i].type == OTAUP_REC_DATA));
            } else if (s[i].type == OTAUP_REC_PIECE && s[i].len > 0 && k - fixed > (int)s[i].lit) {
                /* the codec cannot see where the differences end: the executor does */
                ck_assert_int_eq(rc, 0);
            } else {
                ck_assert_msg(rc == OTAUP_E_MSG_LENGTH, "type 0x%02x body cut at %d: %d",
                              s[i].type, k, rc);
            }
        }
    }
}
END_TEST

START_TEST(test_overlong_varints)
{
    otaup_record d;
    /* ERASE with addr 1 written as 0x81 0x00 */
    static const uint8_t a[] = { 0x20, 0x03, 0x81, 0x00, 0x05 };
    /* body length 2 written as 0x82 0x00 */
    static const uint8_t b[] = { 0x20, 0x82, 0x00, 0x01, 0x05 };
    /* len varint with six bytes */
    static const uint8_t c[] = { 0x20, 0x07, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 };
    /* index of 2^32 */
    static const uint8_t e[] = { 0x28, 0x05, 0x80, 0x80, 0x80, 0x80, 0x10 };
    /* body length of 2^32 */
    static const uint8_t f[] = { 0x29, 0x80, 0x80, 0x80, 0x80, 0x10 };
    ck_assert_int_eq(otaup_record_decode(a, sizeof a, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(b, sizeof b, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(c, sizeof c, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode_body(0x20, c + 2, 7, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(e, sizeof e, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(f, sizeof f, &d), OTAUP_E_MSG_FIELD);
}
END_TEST

START_TEST(test_length_lies)
{
    otaup_record d;
    uint8_t buf[64];
    /* ERASE claims a body longer than any ERASE can be */
    static const uint8_t a[] = { 0x20, 0x0B, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    /* ERASE with a trailing byte inside its body */
    static const uint8_t b[] = { 0x20, 0x03, 0x01, 0x02, 0x00 };
    /* INLINE WRITE of len 3 with 2 bytes / with 4 bytes */
    static const uint8_t c[] = { 0x21, 0x05, 0x10, 0x03, 0x00, 0xAA, 0xBB };
    static const uint8_t e[] = { 0x21, 0x07, 0x10, 0x03, 0x00, 0xAA, 0xBB, 0xCC, 0xDD };
    /* DEFERRED WRITE with bytes after it */
    static const uint8_t f[] = { 0x21, 0x04, 0x10, 0x03, 0x01, 0xAA };
    /* VERIFY xxh3-64 with 7 hash bytes / 9 hash bytes */
    static const uint8_t g[] = { 0x25, 0x0A, 0x00, 0x10, 0x01, 1, 2, 3, 4, 5, 6, 7 };
    static const uint8_t h[] = { 0x25, 0x0C, 0x00, 0x10, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    /* STEP with HASH flag but no hash / without flag but with a hash */
    static const uint8_t i[] = { 0x27, 0x04, 0x00, 0x00, 0x10, 0x01 };
    static const uint8_t j[] = { 0x27, 0x0C, 0x00, 0x00, 0x10, 0x00, 1, 2, 3, 4, 5, 6, 7, 8 };
    /* END with body length 0; SYNC with a 6-byte body */
    static const uint8_t k[] = { 0x28, 0x00 };
    static const uint8_t l[] = { 0x2A, 0x06, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00 };
    /* a body length that runs past the input is truncation, not a lie */
    static const uint8_t m[] = { 0x29, 0x10, 0x01 };
    ck_assert_int_eq(otaup_record_decode(a, sizeof a, &d), OTAUP_E_MSG_LENGTH);
    /* the lie is caught before waiting for the body */
    ck_assert_int_eq(otaup_record_decode(a, 2, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(b, sizeof b, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(c, sizeof c, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(e, sizeof e, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(f, sizeof f, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(g, sizeof g, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(h, sizeof h, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(i, sizeof i, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(j, sizeof j, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(k, sizeof k, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(l, sizeof l, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(m, sizeof m, &d), OTAUP_E_DELTA_TRUNCATED);
    (void)buf;
}
END_TEST

START_TEST(test_bad_fields)
{
    otaup_record d;
    static const uint8_t enc2[] = { 0x21, 0x03, 0x10, 0x00, 0x02 };
    static const uint8_t alg0[] = { 0x25, 0x03, 0x00, 0x10, 0x00 };
    static const uint8_t alg4[] = { 0x25, 0x03, 0x00, 0x10, 0x04 };
    static const uint8_t dflag[] = { 0x26, 0x01, 0x02 };
    static const uint8_t sflag[] = { 0x27, 0x04, 0x00, 0x00, 0x10, 0x80 };
    /* ranges past 2^32 */
    static const uint8_t wrap[] = { 0x20, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x02 };
    static const uint8_t edge[] = { 0x20, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01 };
    /* COPY from 0xFFFFFFFF (zigzag of -1 relative to 0 is 1) with len 2 */
    static const uint8_t cwrap[] = { 0x22, 0x03, 0x00, 0x01, 0x02 };
    ck_assert_int_eq(otaup_record_decode(enc2, sizeof enc2, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(alg0, sizeof alg0, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(alg4, sizeof alg4, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(dflag, sizeof dflag, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(sflag, sizeof sflag, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(wrap, sizeof wrap, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(edge, sizeof edge, &d), (int)sizeof edge);
    ck_assert_int_eq(otaup_record_decode(cwrap, sizeof cwrap, &d), OTAUP_E_MSG_FIELD);
}
END_TEST

START_TEST(test_reserved_types)
{
    otaup_record d;
    otaup_recparser p;
    size_t used;
    int t;
    for (t = 0; t < 256; t++) {
        uint8_t b[3] = { (uint8_t)t, 0x01, 0x00 };
        int known = (t >= 0x20 && t <= 0x2A) || t == OTAUP_REC_PIECE || t == OTAUP_REC_CFILL;
        if (known) {
            continue;
        }
        ck_assert_int_eq(otaup_record_decode(b, sizeof b, &d), OTAUP_E_MSG_TYPE);
        ck_assert_int_eq(otaup_record_decode(b, 1, &d), OTAUP_E_MSG_TYPE);
        ck_assert_int_eq(otaup_record_decode_body((uint8_t)t, b + 2, 1, &d), OTAUP_E_MSG_TYPE);
        otaup_recparser_init(&p);
        ck_assert_int_eq(otaup_recparser_feed(&p, b, sizeof b, &used), OTAUP_E_MSG_TYPE);
        ck_assert_uint_eq(used, 1);
        /* after an error the parser stays failed until re-initialised */
        ck_assert_int_eq(otaup_recparser_feed(&p, b, sizeof b, &used), OTAUP_E_STATE);
    }
    /* the security part's reserved range */
    for (t = 0x2B; t <= 0x2F; t++) {
        ck_assert_int_eq(otaup_record_decode_body((uint8_t)t, NULL, 0, &d), OTAUP_E_MSG_TYPE);
    }
}
END_TEST

START_TEST(test_encode_errors)
{
    otaup_record r = mk(OTAUP_REC_WRITE);
    otaup_record s[64];
    static uint8_t buf[8192];
    size_t n, i;
    r.addr = 0; r.len = 4; r.data = g_bytes; r.data_len = 3;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.data_len = 4; r.enc = 2;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.enc = OTAUP_ENC_INLINE; r.data = NULL;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(OTAUP_REC_VERIFY); r.alg = 9; r.hash_len = 8;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.alg = OTAUP_HASH_SHA256; /* hash_len 8 does not fit SHA-256 */
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(OTAUP_REC_ERASE); r.addr = 0xFFFFFFFFu; r.len = 2;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(0x2B);
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(OTAUP_REC_DATA); r.flags = 0x80;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(OTAUP_REC_STEP); r.flags = 0x02;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    /* every capacity short of the need gives OTAUP_E_BUFFER */
    n = samples(s);
    for (i = 0; i < n; i++) {
        int len = otaup_record_encode(&s[i], buf, sizeof buf);
        int blen = otaup_record_encode_body(&s[i], buf, sizeof buf);
        for (int k = 0; k < len; k++) {
            ck_assert_int_eq(otaup_record_encode(&s[i], buf, (size_t)k), OTAUP_E_BUFFER);
        }
        for (int k = 0; k < blen; k++) {
            ck_assert_int_eq(otaup_record_encode_body(&s[i], buf, (size_t)k), OTAUP_E_BUFFER);
        }
    }
}
END_TEST

/* ---- streaming parser ---------------------------------------------------- */

/*
 * An event log that does not depend on chunking: HEAD writes the fields,
 * BYTES accumulate, DONE writes the byte count and the bytes, an error
 * writes its code and the position where it happened.
 */
struct log {
    uint8_t b[65536];
    size_t n;
    uint8_t acc[16384];
    size_t nacc;
};

static void log_put(struct log *l, const void *p, size_t n)
{
    ck_assert_uint_le(l->n + n, sizeof l->b);
    if (n != 0) {
        memcpy(l->b + l->n, p, n);
    }
    l->n += n;
}

static void log_head(struct log *l, const otaup_record *r)
{
    uint8_t t = 'H';
    log_put(l, &t, 1);
    log_put(l, &r->type, 1); log_put(l, &r->enc, 1); log_put(l, &r->flags, 1);
    log_put(l, &r->value, 1); log_put(l, &r->alg, 1); log_put(l, &r->hash_len, 1);
    log_put(l, &r->index, 4); log_put(l, &r->addr, 4); log_put(l, &r->len, 4);
    log_put(l, &r->src, 4); log_put(l, r->hash, r->hash_len);
}

static void log_done(struct log *l, uint32_t total)
{
    uint8_t t = 'D';
    uint32_t n = (uint32_t)l->nacc;
    ck_assert_uint_eq(total, n);
    log_put(l, &t, 1);
    log_put(l, &n, 4);
    log_put(l, l->acc, l->nacc);
    l->nacc = 0;
}

static void log_err(struct log *l, int err, size_t pos)
{
    uint8_t t = 'E';
    uint32_t p = (uint32_t)pos;
    log_put(l, &t, 1);
    log_put(l, &err, sizeof err);
    log_put(l, &p, 4);
}

/* Expected log: the whole-buffer decoder walked over the stream. */
static void log_by_decoder(struct log *l, const uint8_t *in, size_t len)
{
    size_t pos = 0;
    l->n = 0;
    l->nacc = 0;
    while (pos < len) {
        otaup_record r;
        int k = otaup_record_decode(in + pos, len - pos, &r);
        if (k == OTAUP_E_DELTA_TRUNCATED) {
            return; /* a stream cut inside a record: the parser is not idle */
        }
        if (k < 0) {
            log_err(l, k, 0);
            return;
        }
        log_head(l, &r);
        if (r.data_len != 0) {
            memcpy(l->acc, r.data, r.data_len);
        }
        l->nacc = r.data_len;
        log_done(l, r.data_len);
        pos += (size_t)k;
    }
}

/* Feed in[0..len) in pieces whose sizes come from cuts[] (cyclic). */
static int log_by_parser(struct log *l, const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts)
{
    otaup_recparser p;
    size_t pos = 0, ci = 0;
    otaup_recparser_init(&p);
    l->n = 0;
    l->nacc = 0;
    while (pos < len) {
        size_t piece = cuts[ci % ncuts];
        size_t off = 0;
        ci++;
        if (piece > len - pos) {
            piece = len - pos;
        }
        for (;;) {
            size_t used = 0;
            int ev = otaup_recparser_feed(&p, in + pos + off, piece - off, &used);
            ck_assert_uint_le(used, piece - off);
            off += used;
            if (ev < 0) {
                log_err(l, ev, 0);
                return ev;
            }
            if (ev == OTAUP_RECP_NEED_INPUT) {
                ck_assert_uint_eq(off, piece);
                break;
            }
            if (ev == OTAUP_RECP_HEAD) {
                ck_assert_ptr_null(p.rec.data);
                log_head(l, &p.rec);
            } else if (ev == OTAUP_RECP_BYTES) {
                ck_assert_uint_gt(p.rec.data_len, 0);
                ck_assert(p.rec.data >= in && p.rec.data + p.rec.data_len <= in + len);
                memcpy(l->acc + l->nacc, p.rec.data, p.rec.data_len);
                l->nacc += p.rec.data_len;
            } else {
                ck_assert_int_eq(ev, OTAUP_RECP_DONE);
                log_done(l, p.rec.data_len);
            }
        }
        pos += piece;
    }
    /* drain a pending DONE */
    for (;;) {
        size_t used = 0;
        int ev = otaup_recparser_feed(&p, NULL, 0, &used);
        if (ev == OTAUP_RECP_NEED_INPUT) {
            break;
        }
        ck_assert_int_eq(ev, OTAUP_RECP_DONE);
        log_done(l, p.rec.data_len);
    }
    return otaup_recparser_idle(&p);
}

static size_t build_stream(uint8_t *out, size_t cap)
{
    otaup_record s[64];
    size_t n = samples(s), i, pos = 0;
    for (i = 0; i < n; i++) {
        int k = otaup_record_encode(&s[i], out + pos, cap - pos);
        ck_assert_int_gt(k, 0);
        pos += (size_t)k;
    }
    return pos;
}

static struct log g_want, g_got;

/* ---- compact records and sparse differences ------------------------------- */

START_TEST(test_compact_rules)
{
    otaup_record d, r;
    uint8_t buf[64];
    /* PIECE without target bytes; longer than 32 bits; CFILL of nothing */
    static const uint8_t empty[] = { 0x30, 0x03, 0x00, 0x00, 0x00 };
    static const uint8_t wide[] = { 0x30, 0x08, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0xAA };
    static const uint8_t cf0[] = { 0x31, 0x02, 0x00, 0xFF };
    /* differences announced but no byte for them (only the literals) */
    static const uint8_t nodiff[] = { 0x30, 0x05, 0x00, 0x04, 0x02, 0xAA, 0xBB };
    /* no differences announced, but more bytes than the literals / fewer */
    static const uint8_t extra[] = { 0x30, 0x06, 0x00, 0x00, 0x02, 0xAA, 0xBB, 0xCC };
    static const uint8_t fewer[] = { 0x30, 0x04, 0x00, 0x00, 0x02, 0xAA };
    ck_assert_int_eq(otaup_record_decode(empty, sizeof empty, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(wide, sizeof wide, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(cf0, sizeof cf0, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_record_decode(nodiff, sizeof nodiff, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(extra, sizeof extra, &d), OTAUP_E_MSG_LENGTH);
    ck_assert_int_eq(otaup_record_decode(fewer, sizeof fewer, &d), OTAUP_E_MSG_LENGTH);
    /* the encoder refuses what the decoder refuses */
    r = mk(OTAUP_REC_PIECE);
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.len = 4; r.lit = 2; r.data = g_bytes; r.data_len = 2;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.len = 0; r.data_len = 3;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r.len = 0xFFFFFFFFu; r.lit = 1; r.data_len = 3;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    r = mk(OTAUP_REC_CFILL);
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), OTAUP_E_INVAL);
    /* the seek is signed: -1 is zigzag 1 */
    r = mk(OTAUP_REC_PIECE); r.src = 0xFFFFFFFFu; r.len = 0; r.lit = 1; r.data = g_bytes; r.data_len = 1;
    ck_assert_int_eq(otaup_record_encode(&r, buf, sizeof buf), 6);
    ck_assert_uint_eq(buf[2], 0x01);
}
END_TEST

/* A test encoder of sparse differences that splits groups at random and
 * uses every escape (not the planner's encoder). */
static size_t sparse_enc(const uint8_t *d, uint32_t len, uint8_t *out, uint32_t *rng)
{
    size_t o = 0;
    uint32_t i = 0;
    while (i < len) {
        uint32_t z = 0, n = 0, k;
        while (i + z < len && d[i + z] == 0) {
            z++;
        }
        *rng = *rng * 1103515245u + 12345u;
        if (z > 0 && (*rng >> 16) % 3u == 0) {
            z = 1 + (*rng >> 8) % z; /* fewer zeros here: the rest as given bytes or another group */
        }
        while (i + z + n < len && (d[i + z + n] != 0 || (*rng & 1u))) {
            n++;
            if (n > 40u) {
                break;
            }
        }
        if (z + n == 0) {
            n = 1;
        }
        out[o++] = (uint8_t)((n < 7u ? n : 7u) << 5 | (z < 31u ? z : 31u));
        if (z >= 31u) {
            o += (size_t)otaup_varint_put(z - 31u, out + o, 5);
        }
        if (n >= 7u) {
            o += (size_t)otaup_varint_put(n - 7u, out + o, 5);
        }
        for (k = 0; k < n; k++) {
            out[o++] = d[i + z + k];
        }
        i += z + n;
    }
    return o;
}

START_TEST(test_sparse_round_trip)
{
    static uint8_t d[3000], enc[8000], got[3000];
    uint32_t rng = 7, len, trial;
    for (trial = 0; trial < 300; trial++) {
        size_t n, split, off;
        uint32_t i;
        otaup_sparse sp;
        len = 1 + trial * 10;
        for (i = 0; i < len; i++) {
            rng = rng * 1103515245u + 12345u;
            d[i] = (rng >> 16) % (1u + trial % 7u) == 0 ? (uint8_t)(rng >> 24) : 0;
        }
        n = sparse_enc(d, len, enc, &rng);
        enc[n] = 0x5A; /* a literal byte after the differences is not consumed */
        for (split = 0; split <= n; split += 1u + n / 17u) {
            memset(got, 0, len);
            otaup_sparse_init(&sp, len);
            ck_assert(!otaup_sparse_done(&sp));
            ck_assert_int_eq(otaup_sparse_feed(&sp, enc, split, got), (int)split);
            for (off = split; off < n + 1u && !otaup_sparse_done(&sp); off++) {
                ck_assert_int_eq(otaup_sparse_feed(&sp, enc + off, 1, got), 1); /* byte by byte */
            }
            ck_assert(otaup_sparse_done(&sp));
            ck_assert_uint_eq(off, n);
            ck_assert_int_eq(otaup_sparse_feed(&sp, enc + n, 1, got), 0);
            ck_assert_mem_eq(got, d, len);
        }
        /* whole, with the trailing byte: stops at the end of the differences */
        memset(got, 1, len);
        otaup_sparse_init(&sp, len);
        ck_assert_int_eq(otaup_sparse_feed(&sp, enc, n + 1u, got), (int)n);
        for (i = 0; i < len; i++) {
            ck_assert_uint_eq(got[i], (uint8_t)(1u + d[i])); /* differences add */
        }
        /* parse only */
        otaup_sparse_init(&sp, len);
        ck_assert_int_eq(otaup_sparse_feed(&sp, enc, n, NULL), (int)n);
        /* every cut is incomplete */
        for (split = 0; split < n; split++) {
            otaup_sparse_init(&sp, len);
            ck_assert_int_eq(otaup_sparse_feed(&sp, enc, split, NULL), (int)split);
            ck_assert(!otaup_sparse_done(&sp));
        }
    }
}
END_TEST

START_TEST(test_sparse_malformed)
{
    static const struct {
        uint32_t len;
        uint8_t b[8];
        size_t n;
    } bad[] = {
        { 4, { 0x00 }, 1 },                         /* empty group */
        { 4, { 0x05 }, 1 },                         /* 5 zeros of 4 */
        { 4, { 0x62, 1, 2, 3 }, 4 },                /* 2 zeros + 3 bytes of 4 */
        { 100, { 0x1F, 0x80, 0x00 }, 3 },           /* extension not in shortest form */
        { 100, { 0x1F, 0x80, 0x80, 0x80, 0x80, 0x10 }, 6 }, /* extension past 32 bits */
        { 100, { 0x1F, 0x46 }, 2 },                 /* 31 + 70 zeros of 100 */
        { 0xFFFFFFF0u, { 0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F }, 6 }, /* 31 + 2^32-1: no wrap */
        { 20, { 0xE0, 0x0E }, 2 },                  /* 7 + 14 bytes of 20 */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        otaup_sparse sp;
        otaup_sparse_init(&sp, bad[i].len);
        ck_assert_msg(otaup_sparse_feed(&sp, bad[i].b, bad[i].n, NULL) == OTAUP_E_MSG_FIELD, "case %zu", i);
    }
    {
        otaup_sparse sp;
        otaup_sparse_init(&sp, 4);
        ck_assert_int_eq(otaup_sparse_feed(NULL, bad[0].b, 1, NULL), OTAUP_E_INVAL);
        ck_assert_int_eq(otaup_sparse_feed(&sp, NULL, 1, NULL), OTAUP_E_INVAL);
        /* a zero length is covered at once */
        otaup_sparse_init(&sp, 0);
        ck_assert(otaup_sparse_done(&sp));
        ck_assert_int_eq(otaup_sparse_feed(&sp, bad[0].b, 1, NULL), 0);
    }
}
END_TEST

START_TEST(test_stream_every_split)
{
    static uint8_t st[8192];
    size_t len = build_stream(st, sizeof st), cut;
    size_t one = 1;
    log_by_decoder(&g_want, st, len);
    ck_assert_uint_gt(g_want.n, 100);
    /* whole */
    ck_assert_int_eq(log_by_parser(&g_got, st, len, &len, 1), 1);
    ck_assert_uint_eq(g_got.n, g_want.n);
    ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
    /* one byte at a time */
    ck_assert_int_eq(log_by_parser(&g_got, st, len, &one, 1), 1);
    ck_assert_uint_eq(g_got.n, g_want.n);
    ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
    /* two pieces, at every split point */
    for (cut = 1; cut < len; cut++) {
        size_t cuts[2];
        cuts[0] = cut;
        cuts[1] = len - cut;
        ck_assert_int_eq(log_by_parser(&g_got, st, len, cuts, 2), 1);
        ck_assert_msg(g_got.n == g_want.n && memcmp(g_got.b, g_want.b, g_want.n) == 0,
                      "split at %u differs", (unsigned)cut);
    }
    /* irregular chunk sizes */
    {
        static const size_t odd[] = { 3, 1, 7, 2, 64, 5, 13 };
        ck_assert_int_eq(log_by_parser(&g_got, st, len, odd, 7), 1);
        ck_assert_uint_eq(g_got.n, g_want.n);
        ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
    }
}
END_TEST

/* A stream with a bad record in the middle: the same error at every split. */
START_TEST(test_stream_errors_every_split)
{
    static uint8_t st[8192];
    static const uint8_t bad[][8] = {
        { 0x2C, 0x00 },                         /* reserved type */
        { 0x20, 0x81, 0x00 },                   /* overlong body length */
        { 0x20, 0x0B },                         /* ERASE body too long */
        { 0x21, 0x05, 0x10, 0x03, 0x00, 0xAA, 0xBB }, /* inline bytes short by one */
        { 0x21, 0x03, 0x10, 0x00, 0x07 },       /* bad enc */
        { 0x24, 0x02, 0x01, 0x02 },             /* FILL without its value */
        { 0x2A, 0x02, 0x80, 0x00 },             /* SYNC index not shortest */
    };
    static const size_t badlen[] = { 2, 3, 2, 7, 5, 4, 4 };
    size_t b;
    for (b = 0; b < sizeof badlen / sizeof badlen[0]; b++) {
        size_t len = build_stream(st, sizeof st) / 2, cut, one = 1;
        size_t total;
        /* a clean record boundary near the middle */
        size_t pos = 0;
        while (pos < len) {
            otaup_record r;
            pos += (size_t)otaup_record_decode(st + pos, sizeof st - pos, &r);
        }
        memcpy(st + pos, bad[b], badlen[b]);
        total = pos + badlen[b];
        /* and a valid record after it, which must never be seen */
        st[total++] = 0x28;
        st[total++] = 0x01;
        st[total++] = 0x07;
        log_by_decoder(&g_want, st, total);
        ck_assert_uint_eq(g_want.b[g_want.n - 9], 'E');
        ck_assert_int_lt(log_by_parser(&g_got, st, total, &one, 1), 0);
        ck_assert_uint_eq(g_got.n, g_want.n);
        ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
        for (cut = 1; cut < total; cut += 3) {
            size_t cuts[2];
            cuts[0] = cut;
            cuts[1] = total - cut;
            ck_assert_int_lt(log_by_parser(&g_got, st, total, cuts, 2), 0);
            ck_assert_msg(g_got.n == g_want.n && memcmp(g_got.b, g_want.b, g_want.n) == 0,
                          "bad record %u, split at %u differs", (unsigned)b, (unsigned)cut);
        }
    }
}
END_TEST

START_TEST(test_stream_events_and_idle)
{
    otaup_recparser p;
    uint8_t buf[64];
    size_t used;
    otaup_record r = mk(OTAUP_REC_BLOB);
    int n;
    static const uint8_t blob[5] = { 1, 2, 3, 4, 5 };
    r.data = blob;
    r.data_len = 5;
    n = otaup_record_encode(&r, buf, sizeof buf);
    ck_assert_int_eq(n, 7);
    otaup_recparser_init(&p);
    ck_assert_int_eq(otaup_recparser_idle(&p), 1);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf, 4, &used), OTAUP_RECP_HEAD);
    ck_assert_uint_eq(used, 2);
    ck_assert_uint_eq(p.rec.data_len, 5);
    ck_assert_int_eq(otaup_recparser_idle(&p), 0);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf + 2, 2, &used), OTAUP_RECP_BYTES);
    ck_assert_uint_eq(used, 2);
    ck_assert_ptr_eq(p.rec.data, buf + 2);
    ck_assert_uint_eq(p.rec.data_len, 2);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf + 4, 0, &used), OTAUP_RECP_NEED_INPUT);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf + 4, 10, &used), OTAUP_RECP_BYTES);
    ck_assert_uint_eq(used, 3);
    ck_assert_uint_eq(p.rec.data_len, 3);
    ck_assert_int_eq(otaup_recparser_idle(&p), 0);
    ck_assert_int_eq(otaup_recparser_feed(&p, NULL, 0, &used), OTAUP_RECP_DONE);
    ck_assert_uint_eq(used, 0);
    ck_assert_uint_eq(p.rec.data_len, 5);
    ck_assert_int_eq(otaup_recparser_idle(&p), 1);
    ck_assert_int_eq(otaup_recparser_feed(&p, NULL, 0, &used), OTAUP_RECP_NEED_INPUT);
    /* a record without bytes: HEAD, then DONE without consuming */
    r = mk(OTAUP_REC_END);
    r.index = 3;
    n = otaup_record_encode(&r, buf, sizeof buf);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf, (size_t)n, &used), OTAUP_RECP_HEAD);
    ck_assert_uint_eq(used, (size_t)n);
    ck_assert_uint_eq(p.rec.index, 3);
    ck_assert_int_eq(otaup_recparser_feed(&p, buf, 0, &used), OTAUP_RECP_DONE);
    ck_assert_int_eq(otaup_recparser_idle(&p), 1);
    /* idle is false in the middle of a head */
    ck_assert_int_eq(otaup_recparser_feed(&p, buf, 1, &used), OTAUP_RECP_NEED_INPUT);
    ck_assert_int_eq(otaup_recparser_idle(&p), 0);
    ck_assert_int_eq(otaup_recparser_feed(NULL, buf, 1, &used), OTAUP_E_INVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_varint_round_trip);
    tcase_add_test(tc, test_varint_malformed);
    tcase_add_test(tc, test_round_trip_every_type);
    tcase_add_test(tc, test_known_bytes);
    tcase_add_test(tc, test_zigzag_extremes);
    tcase_add_test(tc, test_every_truncation);
    tcase_add_test(tc, test_overlong_varints);
    tcase_add_test(tc, test_length_lies);
    tcase_add_test(tc, test_bad_fields);
    tcase_add_test(tc, test_reserved_types);
    tcase_add_test(tc, test_encode_errors);
    tcase_add_test(tc, test_compact_rules);
    tcase_add_test(tc, test_sparse_round_trip);
    tcase_add_test(tc, test_sparse_malformed);
    tcase_add_test(tc, test_stream_every_split);
    tcase_add_test(tc, test_stream_errors_every_split);
    tcase_add_test(tc, test_stream_events_and_idle);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
