/*
 * Delta container reader: header codec, sections, outer record stream,
 * body hash; truncation at every length and flipped bytes are refused.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/otaup.h"

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80u) {
        p[n++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Append [type][len][body] */
static size_t rec(uint8_t *out, uint8_t type, const uint8_t *body, size_t blen)
{
    size_t n = 0;
    out[n++] = type;
    n += put_varint(out + n, (uint32_t)blen);
    memcpy(out + n, body, blen);
    return n + blen;
}

/* Header size of base_header (one run of uniform sectors). */
#define HL ((size_t)OTAUP_DELTA_HEADER_BYTES(1))

static void base_header(otaup_delta_header *h)
{
    memset(h, 0, sizeof *h);
    otaup_geometry_uniform(&h->geo, 0x08000000u, 4096, 64, 4);
    h->flags = OTAUP_DELTA_F_STEP_HASH;
    h->layout = OTAUP_LAYOUT_INPLACE;
    h->window_bits = 12;
    h->max_ops = 16;
    h->source_addr = h->target_addr = 0x08000000u;
    h->scratch_addr = 0x08000000u + 60u * 4096u;
    h->scratch_size = 4096;
    h->staging_size = 4096;
    h->step_count = 3;
    h->sync_count = 2;
    h->source_size = 10000;
    h->target_size = 12000;
    h->inner_len = 77;
}

/* A container with two restart points and a final VERIFY. Returns its size. */
static size_t build(uint8_t *out, size_t cap, const uint8_t *sections, size_t sec_len)
{
    uint8_t body[512], b[64];
    size_t n = 0, k, i, hl;
    otaup_delta_header h;
    ck_assert_uint_ge(cap, 1024);
    base_header(&h);
    b[0] = 0;
    n += rec(body + n, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET;
    for (i = 1; i < 40; i++) {
        b[i] = (uint8_t)(i * 7);
    }
    n += rec(body + n, OTAUP_REC_DATA, b, 40);
    b[0] = 0;
    n += rec(body + n, OTAUP_REC_DATA, b, 20);
    b[0] = 2;
    n += rec(body + n, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET;
    n += rec(body + n, OTAUP_REC_DATA, b, 30);
    k = put_varint(b, 0x08000000u);
    k += put_varint(b + k, 12000);
    b[k++] = OTAUP_HASH_XXH3_128;
    memset(b + k, 0xA5, 16);
    k += 16;
    n += rec(body + n, OTAUP_REC_VERIFY, b, k);
    h.body_len = (uint32_t)n;
    otaup_hash128(body, n, h.body_hash);
    ck_assert_int_eq(otaup_delta_header_encode(&h, out, cap), (int)HL);
    hl = HL;
    memcpy(out + hl, sections, sec_len);
    hl += sec_len;
    memcpy(out + hl, body, n);
    return hl + n;
}

static const uint8_t no_sections[6] = { 0, 0, 0, 0, 0, 0 };

/* Feed in chunks of `chunk`; count events. Returns final status (END or error). */
static int feed_all(const uint8_t *in, size_t len, size_t chunk, int *nrec, int *nbytes, int *nsec)
{
    otaup_delta_reader r;
    size_t off = 0;
    int ev;
    otaup_delta_reader_init(&r);
    *nrec = *nbytes = *nsec = 0;
    while (off < len) {
        size_t n = len - off < chunk ? len - off : chunk, used = 0, u2;
        const uint8_t *p = in + off;
        for (;;) {
            ev = otaup_delta_reader_feed(&r, p + used, n - used, &u2);
            used += u2;
            if (ev < 0) {
                return ev;
            }
            if (ev == OTAUP_DELTA_RECORD) {
                (*nrec)++;
            } else if (ev == OTAUP_DELTA_RECORD_BYTES) {
                *nbytes += (int)r.data_len;
            } else if (ev == OTAUP_DELTA_SECTION) {
                (*nsec)++;
            } else if (ev == OTAUP_DELTA_END) {
                ck_assert_int_eq(r.body_checked, 1);
            }
            if (ev == OTAUP_DELTA_NEED_INPUT) {
                break;
            }
        }
        ck_assert_uint_eq(used, n);
        off += n;
    }
    return otaup_delta_reader_finish(&r);
}

START_TEST(test_header_roundtrip)
{
    otaup_delta_header h, d;
    uint8_t buf[OTAUP_DELTA_HEADER_MAX];
    base_header(&h);
    h.body_len = 5;
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), (int)HL);
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, HL - 1), OTAUP_E_BUFFER);
    ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), (int)HL);
    ck_assert_uint_eq(d.header_size, HL);
    ck_assert_int_eq(d.format_version, OTAUP_DELTA_FORMAT_VERSION);
    ck_assert_uint_eq(d.geo.base, h.geo.base);
    ck_assert_uint_eq(d.scratch_addr, h.scratch_addr);
    ck_assert_uint_eq(d.target_size, 12000);
    ck_assert_uint_eq(d.inner_len, 77);
    ck_assert_int_eq(otaup_delta_header_decode(buf, 100, &d), OTAUP_E_DELTA_TRUNCATED);
    ck_assert_int_eq(otaup_delta_header_decode(buf, HL - 1, &d), OTAUP_E_DELTA_TRUNCATED);
    buf[0] = 'X';
    ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_MAGIC);
    buf[0] = 'O';
    buf[8] = OTAUP_DELTA_FORMAT_VERSION + 1;
    ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_VERSION);
    buf[8] = OTAUP_DELTA_FORMAT_VERSION - 1; /* version 1: compact records unknown to it */
    ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_VERSION);
    buf[8] = OTAUP_DELTA_FORMAT_VERSION;
    buf[30] ^= 1;
    ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_CORRUPT);
    /* inconsistent fields are refused by the encoder too */
    h.layout = 7;
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), OTAUP_E_INVAL);
    base_header(&h);
    h.target_addr = 0x08000010u;
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), OTAUP_E_INVAL);
    base_header(&h);
    h.layout = OTAUP_LAYOUT_AB;
    h.target_addr = 0x08001000u; /* overlaps the source */
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), OTAUP_E_INVAL);
    base_header(&h);
    h.window_bits = 16;
    ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), OTAUP_E_INVAL);
    ck_assert_uint_eq(otaup_delta_ram_needed(4096, 12, 16), 4096u + 4096u + 7168u + 256u);
}
END_TEST

/* The header ends with its sector runs: its size follows the run count. */
START_TEST(test_header_run_counts)
{
    otaup_delta_header h, d;
    uint8_t buf[OTAUP_DELTA_HEADER_MAX + 64];
    unsigned nr, i;
    ck_assert_uint_eq(OTAUP_DELTA_HEADER_MIN, 140);
    ck_assert_uint_eq(OTAUP_DELTA_HEADER_MAX, 196);
    for (nr = 1; nr <= OTAUP_MAX_SECTOR_RUNS; nr++) {
        size_t size = OTAUP_DELTA_HEADER_BYTES(nr), chunk;
        base_header(&h);
        h.geo.nruns = (uint8_t)nr;
        for (i = 0; i < nr; i++) {
            h.geo.runs[i].count = 8u + i;
            h.geo.runs[i].size = 4096u << (i % 3u);
        }
        h.source_size = h.target_size = 4096;
        h.scratch_addr = 0x08000000u + 4096u;
        memset(buf, 0xEE, sizeof buf);
        ck_assert_int_eq(otaup_delta_header_encode(&h, buf, sizeof buf), (int)size);
        ck_assert_uint_eq(buf[size], 0xEE); /* nothing written past the header */
        ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), (int)size);
        ck_assert_uint_eq(d.geo.nruns, nr);
        for (i = 0; i < nr; i++) {
            ck_assert_uint_eq(d.geo.runs[i].count, 8u + i);
            ck_assert_uint_eq(d.geo.runs[i].size, 4096u << (i % 3u));
        }
        ck_assert_int_eq(otaup_delta_header_decode(buf, size - 1u, &d), OTAUP_E_DELTA_TRUNCATED);
        /* the streaming reader reads it whole in any chunking */
        for (chunk = 1; chunk <= size; chunk += 9) {
            otaup_delta_reader r;
            size_t off = 0;
            int ev = OTAUP_DELTA_NEED_INPUT;
            otaup_delta_reader_init(&r);
            while (off < size && ev == OTAUP_DELTA_NEED_INPUT) {
                size_t n = size - off < chunk ? size - off : chunk, used = 0;
                ev = otaup_delta_reader_feed(&r, buf + off, n, &used);
                ck_assert(ev == OTAUP_DELTA_HEADER || used == n);
                off += used;
            }
            ck_assert_int_eq(ev, OTAUP_DELTA_HEADER);
            ck_assert_uint_eq(off, size);
            ck_assert_uint_eq(r.hdr.geo.nruns, nr);
        }
        /* a size field that disagrees with the run count, no run, too many runs */
        buf[10] ^= 8;
        ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_CORRUPT);
        buf[10] ^= 8;
        buf[25] = 0;
        ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_CORRUPT);
        buf[25] = 9;
        ck_assert_int_eq(otaup_delta_header_decode(buf, sizeof buf, &d), OTAUP_E_DELTA_CORRUPT);
    }
}
END_TEST

START_TEST(test_stream_any_chunking)
{
    uint8_t file[1024];
    size_t len = build(file, sizeof file, no_sections, sizeof no_sections), chunk;
    int nrec, nbytes, nsec;
    otaup_delta_header h;
    uint32_t body_off;
    const char *corpus = getenv("OTAUP_CORPUS_OUT"); /* seed corpus for fuzz_delta */
    if (corpus != NULL) {
        char path[1024];
        FILE *f;
        snprintf(path, sizeof path, "%s/handmade_container", corpus);
        f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(file, 1, len, f);
        fclose(f);
    }
    ck_assert_int_eq(otaup_delta_check(file, len, &h, &body_off), 0);
    ck_assert_uint_eq(body_off, HL + 6);
    for (chunk = 1; chunk <= len; chunk++) {
        ck_assert_int_eq(feed_all(file, len, chunk, &nrec, &nbytes, &nsec), OTAUP_DELTA_END);
        ck_assert_int_eq(nrec, 6);
        ck_assert_int_eq(nbytes, 39 + 19 + 29);
        ck_assert_int_eq(nsec, 0);
    }
}
END_TEST

START_TEST(test_sections)
{
    uint8_t file[1024], sec[64];
    size_t n = 0, len;
    int nrec, nbytes, nsec;
    /* MANIFEST of 5 bytes, an unknown tag of 0 bytes, SIGNATURE of 3, END */
    sec[n++] = 1; sec[n++] = 0; sec[n++] = 5; sec[n++] = 0; sec[n++] = 0; sec[n++] = 0;
    memcpy(sec + n, "abcde", 5); n += 5;
    sec[n++] = 9; sec[n++] = 0; sec[n++] = 0; sec[n++] = 0; sec[n++] = 0; sec[n++] = 0;
    sec[n++] = 2; sec[n++] = 0; sec[n++] = 3; sec[n++] = 0; sec[n++] = 0; sec[n++] = 0;
    memcpy(sec + n, "xyz", 3); n += 3;
    memset(sec + n, 0, 6); n += 6;
    len = build(file, sizeof file, sec, n);
    ck_assert_int_eq(feed_all(file, len, 7, &nrec, &nbytes, &nsec), OTAUP_DELTA_END);
    ck_assert_int_eq(nsec, 3);
    ck_assert_int_eq(otaup_delta_check(file, len, NULL, NULL), 0);
    /* a section longer than the limit */
    sec[4] = 2;
    len = build(file, sizeof file, sec, n);
    ck_assert_int_eq(otaup_delta_check(file, len, NULL, NULL), OTAUP_E_DELTA_CORRUPT);
    /* END with a length */
    memcpy(sec, "\0\0\1\0\0\0", 6);
    len = build(file, sizeof file, sec, 6);
    ck_assert_int_lt(otaup_delta_check(file, len, NULL, NULL), 0);
}
END_TEST

START_TEST(test_truncation_every_length)
{
    uint8_t file[1024];
    size_t len = build(file, sizeof file, no_sections, sizeof no_sections), cut;
    int nrec, nbytes, nsec;
    for (cut = 0; cut < len; cut++) {
        int rc = otaup_delta_check(file, cut, NULL, NULL);
        ck_assert_msg(rc < 0, "truncated at %zu accepted", cut);
        rc = feed_all(file, cut, 3, &nrec, &nbytes, &nsec);
        ck_assert_int_lt(rc, 0);
    }
    /* and one byte too many */
    file[len] = 0x2A;
    ck_assert_int_eq(otaup_delta_check(file, len + 1, NULL, NULL), OTAUP_E_DELTA_CORRUPT);
}
END_TEST

START_TEST(test_flip_every_byte)
{
    uint8_t file[1024];
    size_t len = build(file, sizeof file, no_sections, sizeof no_sections), i;
    int bit;
    for (i = 0; i < len; i++) {
        for (bit = 0; bit < 8; bit += 3) {
            int rc;
            file[i] ^= (uint8_t)(1u << bit);
            rc = otaup_delta_check(file, len, NULL, NULL);
            ck_assert_msg(rc < 0, "flip at %zu bit %d accepted", i, bit);
            file[i] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_int_eq(otaup_delta_check(file, len, NULL, NULL), 0);
}
END_TEST

/* Structure rules hold even when the body hash matches. */
static int check_body(const uint8_t *body, size_t n, uint32_t steps, uint32_t syncs)
{
    uint8_t file[1024];
    otaup_delta_header h;
    base_header(&h);
    h.step_count = steps;
    h.sync_count = syncs;
    h.body_len = (uint32_t)n;
    otaup_hash128(body, n, h.body_hash);
    ck_assert_int_eq(otaup_delta_header_encode(&h, file, sizeof file), (int)HL);
    memset(file + HL, 0, 6);
    memcpy(file + HL + 6, body, n);
    return otaup_delta_check(file, HL + 6 + n, NULL, NULL);
}

START_TEST(test_structure_rules)
{
    uint8_t body[128], b[8];
    size_t n;
    /* DATA without SYNC */
    b[0] = OTAUP_DATA_RESET; b[1] = 1;
    n = rec(body, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 1, 0), OTAUP_E_DELTA_CORRUPT);
    /* SYNC then DATA without RESET */
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = 0; b[1] = 1;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 1, 1), OTAUP_E_DELTA_CORRUPT);
    /* second DATA with RESET */
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET; b[1] = 1;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 1, 1), 0);
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 1, 1), OTAUP_E_DELTA_CORRUPT);
    /* SYNC index beyond step count, and going backwards */
    b[0] = 3;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    ck_assert_int_eq(check_body(body, n, 3, 1), OTAUP_E_DELTA_CORRUPT);
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    b[0] = 0;
    n += rec(body + n, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 3, 2), OTAUP_E_DELTA_CORRUPT);
    /* a body that opens with a later restart point: steps before it
     * would never be seen (read from the start; a seek to a later SYNC
     * is test_skip_and_seek) */
    b[0] = 1;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET; b[1] = 1;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 2, 1), OTAUP_E_DELTA_CORRUPT);
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET; b[1] = 1;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 2, 1), 0);
    /* inner record types are not allowed outside DATA */
    b[0] = 0; b[1] = 0;
    n = rec(body, OTAUP_REC_END, b, 1);
    ck_assert_int_eq(check_body(body, n, 0, 0), OTAUP_E_DELTA_CORRUPT);
    /* overlong varint, sync count mismatch, unknown DATA flag */
    b[0] = 0x80; b[1] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 2);
    ck_assert_int_eq(check_body(body, n, 2, 1), OTAUP_E_MSG_FIELD);
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = OTAUP_DATA_RESET;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 2, 2), OTAUP_E_DELTA_CORRUPT);
    b[0] = 0;
    n = rec(body, OTAUP_REC_SYNC, b, 1);
    b[0] = 0x81;
    n += rec(body + n, OTAUP_REC_DATA, b, 2);
    ck_assert_int_eq(check_body(body, n, 2, 1), OTAUP_E_MSG_FIELD);
    /* empty body: fine when there are no steps */
    ck_assert_int_eq(check_body(body, 0, 0, 0), 0);
}
END_TEST

START_TEST(test_skip_and_seek)
{
    uint8_t file[1024];
    size_t len = build(file, sizeof file, no_sections, sizeof no_sections), off = 0, used;
    otaup_delta_reader r;
    uint32_t sync_off[4];
    int nsync = 0, ev, ndata = 0;
    /* pass 1: walk record heads only, skipping payloads, note SYNC offsets */
    otaup_delta_reader_init(&r);
    for (;;) {
        ev = otaup_delta_reader_feed(&r, file + off, len - off, &used);
        off += used;
        ck_assert_int_ge(ev, 0);
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_SYNC) {
            sync_off[nsync++] = r.rec_offset;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_DATA) {
            off += otaup_delta_reader_skip(&r);
            ndata++;
        }
        if (ev == OTAUP_DELTA_END) {
            break;
        }
        ck_assert_int_ne(ev, OTAUP_DELTA_NEED_INPUT);
    }
    ck_assert_int_eq(r.body_checked, 0);
    ck_assert_int_eq(nsync, 2);
    ck_assert_int_eq(ndata, 3);
    /* pass 2: resume at the second SYNC */
    ck_assert_int_eq(otaup_delta_reader_seek(&r, sync_off[1]), 0);
    off = sync_off[1];
    ev = otaup_delta_reader_feed(&r, file + off, len - off, &used);
    ck_assert_int_eq(ev, OTAUP_DELTA_RECORD);
    ck_assert_int_eq(r.rec.type, OTAUP_REC_SYNC);
    ck_assert_uint_eq(r.rec.index, 2);
    /* seeking to the middle of a record gives an error, not a crash */
    ck_assert_int_eq(otaup_delta_reader_seek(&r, sync_off[1] + 1), 0);
    off = sync_off[1] + 1;
    ev = otaup_delta_reader_feed(&r, file + off, len - off, &used);
    ck_assert_int_lt(ev, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("delta_read");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_header_roundtrip);
    tcase_add_test(tc, test_header_run_counts);
    tcase_add_test(tc, test_stream_any_chunking);
    tcase_add_test(tc, test_sections);
    tcase_add_test(tc, test_truncation_every_length);
    tcase_add_test(tc, test_flip_every_byte);
    tcase_add_test(tc, test_structure_rules);
    tcase_add_test(tc, test_skip_and_seek);
    suite_add_tcase(s, tc);
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
