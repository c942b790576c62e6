/*
 * Software information and block signatures: hashing helpers, the
 * hardened signature parser and the streaming computation on the terminal
 * (C99, no heap; reads flash through the integrator's callbacks).
 */
#include <string.h>

#include "core/dl_util.h"
#include "core/xxh3.h"
#include "otaup/error.h"
#include "otaup/image.h"

static const uint8_t sig_magic[8] = { 'O', 'T', 'A', 'U', 'P', 'S', 'I', 'G' };

OTAUP_RAMFUNC void otaup_hash128(const void *data, size_t len, uint8_t out[16])
{
    XXH128_hash_t h = XXH3_128bits(data, len);
    otaup_dl_put64(out, h.low64);
    otaup_dl_put64(out + 8, h.high64);
}

OTAUP_RAMFUNC uint64_t otaup_hash64(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

static int block_size_ok(uint32_t bs)
{
    return bs >= OTAUP_SIG_BLOCK_MIN && bs <= OTAUP_SIG_BLOCK_MAX && (bs & (bs - 1u)) == 0;
}

static uint32_t block_count(uint32_t size, uint32_t bs)
{
    return size / bs + (size % bs != 0 ? 1u : 0u);
}

int otaup_sig_header_encode(const otaup_image_info *info, uint8_t *out, size_t cap)
{
    if (info == NULL || out == NULL || !block_size_ok(info->block_size)) {
        return OTAUP_E_INVAL;
    }
    if (cap < OTAUP_SIG_HEADER_SIZE) {
        return OTAUP_E_BUFFER;
    }
    memcpy(out, sig_magic, 8);
    otaup_dl_put16(out + 8, OTAUP_SIG_FORMAT_VERSION);
    otaup_dl_put16(out + 10, OTAUP_SIG_HEADER_SIZE);
    otaup_dl_put32(out + 12, 0);
    otaup_dl_put32(out + 16, info->version);
    otaup_dl_put32(out + 20, 0);
    otaup_dl_put64(out + 24, info->build_time);
    otaup_dl_put32(out + 32, info->size);
    otaup_dl_put32(out + 36, info->block_size);
    memcpy(out + 40, info->hash, 16);
    otaup_dl_put64(out + 56, otaup_xxh3_64(out, 56));
    return (int)OTAUP_SIG_HEADER_SIZE;
}

int otaup_sig_parse(const uint8_t *in, size_t len, otaup_sig *sig)
{
    uint32_t n, size, bs;
    uint64_t need;
    if (in == NULL || sig == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(sig, 0, sizeof *sig);
    if (len < OTAUP_SIG_HEADER_SIZE + 8u || memcmp(in, sig_magic, 8) != 0) {
        return OTAUP_E_SIG_FORMAT;
    }
    if (otaup_dl_get16(in + 8) != OTAUP_SIG_FORMAT_VERSION) {
        /* version 1 (whole XXH3-64 per block, no rolling sum) and newer
         * versions are well-formed signatures this code cannot use */
        return otaup_dl_get16(in + 8) != 0 ? OTAUP_E_UNSUPPORTED : OTAUP_E_SIG_FORMAT;
    }
    if (otaup_dl_get16(in + 10) != OTAUP_SIG_HEADER_SIZE || otaup_dl_get32(in + 12) != 0 ||
        otaup_dl_get32(in + 20) != 0 || otaup_dl_get64(in + 56) != otaup_xxh3_64(in, 56)) {
        return OTAUP_E_SIG_FORMAT;
    }
    size = otaup_dl_get32(in + 32);
    bs = otaup_dl_get32(in + 36);
    if (!block_size_ok(bs)) {
        return OTAUP_E_SIG_FORMAT;
    }
    n = block_count(size, bs);
    need = (uint64_t)OTAUP_SIG_HEADER_SIZE + 8u * (uint64_t)n + 8u;
    if ((uint64_t)len != need) {
        return OTAUP_E_SIG_FORMAT;
    }
    if (otaup_dl_get64(in + OTAUP_SIG_HEADER_SIZE + 8u * (size_t)n) !=
        otaup_xxh3_64(in + OTAUP_SIG_HEADER_SIZE, 8u * (size_t)n)) {
        return OTAUP_E_SIG_FORMAT;
    }
    sig->info.version = otaup_dl_get32(in + 16);
    sig->info.build_time = otaup_dl_get64(in + 24);
    sig->info.size = size;
    sig->info.block_size = bs;
    memcpy(sig->info.hash, in + 40, 16);
    sig->nblocks = n;
    sig->blocks = in + OTAUP_SIG_HEADER_SIZE;
    return 0;
}

uint64_t otaup_sig_block_hash(const otaup_sig *sig, uint32_t i)
{
    if (sig == NULL || sig->blocks == NULL || i >= sig->nblocks) {
        return 0;
    }
    return otaup_dl_get64(sig->blocks + 8u * (size_t)i);
}

/* r = r * M + b for each byte */
static uint32_t roll_update(uint32_t r, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        r = r * OTAUP_SIG_ROLL_MUL + p[i];
    }
    return r;
}

static uint64_t make_entry(uint32_t roll, uint64_t h64)
{
    return (uint64_t)roll | (h64 & 0xFFFFFFFF00000000ull);
}

uint32_t otaup_sig_roll(const void *data, size_t len)
{
    return data != NULL ? roll_update(0, data, len) : 0;
}

uint64_t otaup_sig_entry(const void *data, size_t len)
{
    if (data == NULL && len > 0) {
        return 0;
    }
    return make_entry(roll_update(0, data, len), otaup_xxh3_64(data, len));
}

/* ---- streaming computation on the terminal ------------------------------ */

/* The compact XXH3 (core/xxh3.h) states: the current block, the block-hash array. */
typedef char otaup_sig_state_fits[sizeof(otaup_xxh3) <= OTAUP_SIG_STATE_SPACE ? 1 : -1];

static otaup_xxh3 *calc_state(otaup_sig_calc *c, int i)
{
    return (otaup_xxh3 *)(void *)c->state[i].space;
}

static int range_ok(const otaup_flash *flash, uint32_t addr, uint32_t size)
{
    uint32_t gsize = otaup_geometry_size(&flash->geo);
    if (gsize == 0 || addr < flash->geo.base) {
        return 0;
    }
    return (uint64_t)addr - flash->geo.base + size <= gsize;
}

int otaup_sig_calc_begin(otaup_sig_calc *c, const otaup_flash *flash, uint32_t addr,
                         otaup_image_info *info, uint8_t *buf, uint32_t buf_len)
{
    otaup_xxh3 *st;
    uint32_t off = 0;
    if (c == NULL || flash == NULL || flash->read == NULL || info == NULL || buf == NULL ||
        buf_len == 0 || !block_size_ok(info->block_size)) {
        return OTAUP_E_INVAL;
    }
    if (!range_ok(flash, addr, info->size)) {
        return OTAUP_E_RANGE;
    }
    memset(c, 0, sizeof *c);
    c->flash = flash;
    c->addr = addr;
    c->buf = buf;
    c->buf_len = buf_len;
    st = calc_state(c, 0);
    otaup_xxh3_reset(st);
    while (off < info->size) {
        uint32_t n = info->size - off < buf_len ? info->size - off : buf_len;
        int rc = flash->read(flash, addr + off, buf, n);
        if (rc < 0) {
            return rc;
        }
        otaup_xxh3_update(st, buf, n);
        off += n;
    }
    otaup_xxh3_digest128(st, info->hash);
    c->info = *info;
    c->nblocks = block_count(info->size, info->block_size);
    c->total = OTAUP_SIG_HEADER_SIZE + 8u * c->nblocks + 8u;
    otaup_xxh3_reset(calc_state(c, 1));
    return 0;
}

/* Hash block c->block into c->pending. */
static int calc_block(otaup_sig_calc *c)
{
    otaup_xxh3 *st = calc_state(c, 0);
    uint32_t start = c->block * c->info.block_size;
    uint32_t end = c->info.size - start < c->info.block_size ? c->info.size : start + c->info.block_size;
    uint32_t off = start, roll = 0;
    otaup_xxh3_reset(st);
    while (off < end) {
        uint32_t n = end - off < c->buf_len ? end - off : c->buf_len;
        int rc = c->flash->read(c->flash, c->addr + off, c->buf, n);
        if (rc < 0) {
            return rc;
        }
        otaup_xxh3_update(st, c->buf, n);
        roll = roll_update(roll, c->buf, n);
        off += n;
    }
    otaup_dl_put64(c->pending, make_entry(roll, otaup_xxh3_digest64(st)));
    otaup_xxh3_update(calc_state(c, 1), c->pending, 8);
    c->pending_len = 8;
    c->pending_off = 0;
    c->block++;
    return 0;
}

int otaup_sig_calc_read(otaup_sig_calc *c, uint8_t *out, size_t cap)
{
    size_t done = 0;
    if (c == NULL || out == NULL || cap == 0 || c->flash == NULL) {
        return OTAUP_E_INVAL;
    }
    if (cap > 0x7FFFFFFFu) {
        cap = 0x7FFFFFFFu;
    }
    while (done < cap && c->pos < c->total) {
        if (c->pos < OTAUP_SIG_HEADER_SIZE) {
            uint8_t hdr[OTAUP_SIG_HEADER_SIZE];
            uint32_t n = OTAUP_SIG_HEADER_SIZE - c->pos;
            otaup_sig_header_encode(&c->info, hdr, sizeof hdr);
            if (n > cap - done) {
                n = (uint32_t)(cap - done);
            }
            memcpy(out + done, hdr + c->pos, n);
            c->pos += n;
            done += n;
            continue;
        }
        if (c->pending_off == c->pending_len) {
            if (c->block < c->nblocks) {
                int rc = calc_block(c);
                if (rc < 0) {
                    return rc;
                }
            } else {
                otaup_dl_put64(c->pending, otaup_xxh3_digest64(calc_state(c, 1)));
                c->pending_len = 8;
                c->pending_off = 0;
            }
        }
        while (done < cap && c->pending_off < c->pending_len) {
            out[done++] = c->pending[c->pending_off++];
            c->pos++;
        }
    }
    return (int)done;
}
