/*
 * Test helpers of the security suites (see sectest.h).
 */
#include "otaup/features.h"
#if OTAUP_HAVE_MBEDTLS
#include "util/sectest.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/image.h"
#include "otaup/record.h"

static int rf_read(const otaup_flash *fl, uint32_t addr, void *buf, uint32_t len)
{
    sectest_flash *f = (sectest_flash *)fl->context;
    if (addr < fl->geo.base || addr - fl->geo.base > f->size || len > f->size - (addr - fl->geo.base)) {
        return OTAUP_E_FLASH_READ;
    }
    f->reads++;
    memcpy(buf, f->mem + (addr - fl->geo.base), len);
    return 0;
}

static int rf_prog(const otaup_flash *fl, uint32_t addr, const void *buf, uint32_t len)
{
    sectest_flash *f = (sectest_flash *)fl->context;
    const uint8_t *b = buf;
    uint32_t i, off = addr - fl->geo.base;
    f->writes++;
    if (addr < fl->geo.base || off > f->size || len > f->size - off || addr % fl->geo.write_size != 0 ||
        len % fl->geo.write_size != 0) {
        return OTAUP_E_FLASH_PROG;
    }
    for (i = 0; i < len; i++) {
        if (f->mem[off + i] != 0xFF) {
            return OTAUP_E_NOT_ERASED;
        }
        f->mem[off + i] = b[i];
    }
    return 0;
}

static int rf_erase(const otaup_flash *fl, uint32_t addr, uint32_t len)
{
    sectest_flash *f = (sectest_flash *)fl->context;
    uint32_t off = addr - fl->geo.base;
    f->writes++;
    if (addr < fl->geo.base || off > f->size || len > f->size - off ||
        !otaup_geometry_is_sector_aligned(&fl->geo, addr, len)) {
        return OTAUP_E_FLASH_ERASE;
    }
    memset(f->mem + off, 0xFF, len);
    return 0;
}

void sectest_flash_init(sectest_flash *f, uint32_t base, uint32_t sector, uint32_t count, uint32_t write_size)
{
    memset(f, 0, sizeof *f);
    otaup_geometry_uniform(&f->flash.geo, base, sector, count, write_size);
    f->size = sector * count;
    f->mem = malloc(f->size);
    ck_assert_ptr_nonnull(f->mem);
    memset(f->mem, 0xFF, f->size);
    f->flash.context = f;
    f->flash.read = rf_read;
    f->flash.prog = rf_prog;
    f->flash.erase = rf_erase;
}

void sectest_flash_free(sectest_flash *f)
{
    free(f->mem);
    f->mem = NULL;
}

void sectest_flash_load(sectest_flash *f, uint32_t addr, const void *data, uint32_t len)
{
    ck_assert_uint_le((uint64_t)addr - f->flash.geo.base + len, f->size);
    memcpy(f->mem + (addr - f->flash.geo.base), data, len);
}

void sectest_fill(uint8_t *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    size_t i;
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x >> 7);
    }
}

const otaup_crypto *sectest_crypto(void)
{
    static otaup_crypto c; /* test helper only: filled once, never changed */
    if (c.sha256_init == NULL) {
        ck_assert_int_eq(otaup_crypto_mbedtls(&c), 0);
    }
    return &c;
}

uint8_t *sectest_sign(const uint8_t *mf, size_t len, const otaup_key *k, size_t *out_len)
{
    uint8_t *out = malloc(len + OTAUP_MANIFEST_SIG_ENTRY);
    uint8_t digest[32], pub[65], sig[64];
    otaup_manifest m;
    int n;
    ck_assert_ptr_nonnull(out);
    memcpy(out, mf, len);
    ck_assert_int_eq(otaup_manifest_parse(out, len, &m), 0);
    ck_assert_int_eq(otaup_manifest_digest(sectest_crypto(), out, &m, digest), 0);
    ck_assert_int_eq(otaup_key_sign(k, digest, sig), 0);
    ck_assert_int_eq(otaup_key_public(k, pub), 0);
    n = otaup_manifest_add_signature(sectest_crypto(), out, len, len + OTAUP_MANIFEST_SIG_ENTRY, pub, sig);
    ck_assert_int_eq(n, (int)(len + OTAUP_MANIFEST_SIG_ENTRY));
    *out_len = (size_t)n;
    return out;
}

uint8_t *sectest_manifest(const otaup_manifest *m, const otaup_key *k, size_t *out_len)
{
    uint8_t buf[4096];
    int n = otaup_manifest_encode(m, buf, sizeof buf);
    ck_assert_int_gt(n, 0);
    if (k == NULL) {
        uint8_t *out = malloc((size_t)n);
        memcpy(out, buf, (size_t)n);
        *out_len = (size_t)n;
        return out;
    }
    return sectest_sign(buf, (size_t)n, k, out_len);
}

void sectest_put_varint(uint8_t *body, size_t *pos, uint32_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7F);
        v >>= 7;
        body[(*pos)++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
}

void sectest_put_record(uint8_t *buf, size_t *pos, uint8_t type, const uint8_t *body, size_t len)
{
    buf[(*pos)++] = type;
    sectest_put_varint(buf, pos, (uint32_t)len);
    if (len > 0) {
        memcpy(buf + *pos, body, len);
    }
    *pos += len;
}

/* decompressed size of every DATA stream of an outer stream */
static uint32_t inner_total(const uint8_t *body, size_t len, unsigned wbits)
{
    size_t off = 0;
    uint64_t total = 0;
    z_stream zs;
    int open = 0;
    uint8_t sink[4096];
    memset(&zs, 0, sizeof zs);
    while (off < len) {
        otaup_record r;
        int n = otaup_record_decode(body + off, len - off, &r);
        ck_assert_int_gt(n, 0);
        if (r.type == OTAUP_REC_DATA) {
            if (r.flags & OTAUP_DATA_RESET) {
                if (open) {
                    inflateEnd(&zs);
                }
                memset(&zs, 0, sizeof zs);
                ck_assert_int_eq(inflateInit2(&zs, -(int)wbits), Z_OK);
                open = 1;
            }
            zs.next_in = (Bytef *)(uintptr_t)r.data;
            zs.avail_in = r.data_len;
            do {
                int zr;
                zs.next_out = sink;
                zs.avail_out = sizeof sink;
                zr = inflate(&zs, Z_NO_FLUSH);
                ck_assert(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
                total += sizeof sink - zs.avail_out;
            } while (zs.avail_out == 0);
        }
        off += (size_t)n;
    }
    if (open) {
        inflateEnd(&zs);
    }
    return (uint32_t)total;
}

uint8_t *sectest_container(const sectest_container_spec *c, size_t *out_len)
{
    otaup_delta_header h;
    uint8_t *out;
    size_t n;
    uint32_t syncs = 0;
    {
        uint32_t idx[4096];
        size_t offs[4096];
        syncs = (uint32_t)sectest_syncs(c->body, c->body_len, idx, offs, 4096);
    }
    memset(&h, 0, sizeof h);
    h.format_version = OTAUP_DELTA_FORMAT_VERSION;
    h.header_size = (uint16_t)OTAUP_DELTA_HEADER_BYTES(c->geo.nruns);
    h.flags = OTAUP_DELTA_F_STEP_HASH;
    h.geo = c->geo;
    h.layout = c->layout;
    h.window_bits = (uint8_t)c->wbits;
    h.max_ops = (uint16_t)c->max_ops;
    h.source_addr = c->src_addr;
    h.target_addr = c->dst_addr;
    h.scratch_addr = c->scratch_addr;
    h.scratch_size = c->scratch_len;
    h.staging_size = c->staging;
    h.step_count = c->nsteps;
    h.sync_count = syncs;
    h.source_size = c->old_len;
    otaup_hash128(c->old_img, c->old_len, h.source_hash);
    h.target_size = c->new_len;
    otaup_hash128(c->new_img, c->new_len, h.target_hash);
    h.body_len = (uint32_t)c->body_len;
    otaup_hash128(c->body, c->body_len, h.body_hash);
    h.inner_len = inner_total(c->body, c->body_len, c->wbits);
    n = h.header_size + OTAUP_SECTION_HEAD_SIZE + c->body_len;
    out = malloc(n);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(otaup_delta_header_encode(&h, out, h.header_size), (int)h.header_size);
    memset(out + h.header_size, 0, OTAUP_SECTION_HEAD_SIZE);
    memcpy(out + h.header_size + OTAUP_SECTION_HEAD_SIZE, c->body, c->body_len);
    ck_assert_int_eq(otaup_delta_check(out, n, NULL, NULL), 0);
    *out_len = n;
    return out;
}

size_t sectest_syncs(const uint8_t *body, size_t len, uint32_t *index, size_t *offset, size_t max)
{
    size_t off = 0, k = 0;
    while (off < len) {
        otaup_record r;
        int n = otaup_record_decode(body + off, len - off, &r);
        ck_assert_int_gt(n, 0);
        if (r.type == OTAUP_REC_SYNC && k < max) {
            index[k] = r.index;
            offset[k] = off;
            k++;
        }
        off += (size_t)n;
    }
    return k;
}
#endif /* OTAUP_HAVE_MBEDTLS */
