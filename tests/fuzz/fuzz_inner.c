/*
 * Fuzz target: the executor's inner record stream (the decompressed
 * content of DATA records: STEP, ERASE, PIECE, CFILL, absolute puts, BLOB,
 * END), where the compact records and their sparse differences are parsed.
 * Input: byte 0 picks the layout (bit 0: A/B) and the size of the DATA
 * records (bits 1..4); the rest is the inner stream, which the harness compresses (raw deflate,
 * window 2^10) into SYNC{0} + DATA records and feeds to an executor on a
 * simulated flash. Whatever the input: no erase or program outside the
 * writable window, the scratch area and the journal, and the protected
 * region never changes. Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define S 1024u
/* slot 0..3, other slot 4..7 (A/B), scratch 8, journal 9..10, protected 11 */

static int inside(uint32_t a, uint32_t n, uint32_t b, uint32_t m)
{
    return a >= b && n <= m && a - b <= m - n;
}

/* SYNC{0} then in[0..n) as raw deflate in DATA records of `chunk` bytes */
static size_t wrap(const uint8_t *in, size_t n, size_t chunk, uint8_t *out, size_t cap)
{
    static uint8_t z[70000];
    z_stream zs;
    size_t zl, o = 0, off;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, 1, Z_DEFLATED, -10, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        abort();
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)n;
    zs.next_out = z;
    zs.avail_out = sizeof z;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        abort();
    }
    zl = sizeof z - zs.avail_out;
    deflateEnd(&zs);
    out[o++] = 0x2A; /* SYNC{0} */
    out[o++] = 1;
    out[o++] = 0;
    for (off = 0; off < zl || off == 0; off += chunk) {
        size_t k = zl - off < chunk ? zl - off : chunk;
        int v = otaup_varint_put((uint32_t)k + 1u, out + o + 1, 5);
        if (o + 7 + k > cap) {
            abort();
        }
        out[o] = 0x26; /* DATA */
        o += 1u + (size_t)v;
        out[o++] = off == 0 ? OTAUP_DATA_RESET : 0;
        memcpy(out + o, z + off, k);
        o += k;
        if (zl == 0) {
            break;
        }
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t work[OTAUP_EXEC_WORK_SIZE(2 * S, 8, 10)];
    static uint8_t outer[80000];
    static otaup_exec ex;
    otaup_exec_config c;
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    otaup_journal j;
    otaup_region win[1], prot[1];
    uint8_t img[12 * S];
    const otaup_simflash_op *log;
    size_t n, i, olen;
    int ab;
    if (size < 1 || size > 60000) {
        return 0;
    }
    ab = data[0] & 1;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, S, 12, 4);
    o.log_ops = 1;
    if (otaup_simflash_new(&o, &sim) != 0) {
        abort();
    }
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    memset(img + 8 * S, 0xFF, 3 * S);
    (void)otaup_simflash_load(sim, 0, img, sizeof img);
    if (otaup_journal_mount(&j, otaup_simflash_flash(sim), 9 * S, 2 * S) != 0) {
        abort();
    }
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.journal = &j;
    c.layout = ab ? OTAUP_LAYOUT_AB : OTAUP_LAYOUT_INPLACE;
    c.window_bits = 10;
    win[0].addr = ab ? 4 * S : 0;
    win[0].len = 4 * S;
    c.windows = win;
    c.nwindows = 1;
    prot[0].addr = 11 * S;
    prot[0].len = S;
    c.protect = prot;
    c.nprotect = 1;
    c.scratch.addr = 8 * S;
    c.scratch.len = ab ? 0 : S;
    if (!ab) {
        c.running = win[0];
    }
    c.work = work;
    c.work_size = sizeof work;
    c.staging_size = S;
    c.max_ops = 8;
    if (otaup_exec_init(&ex, &c) != 0 || otaup_exec_start(&ex, 1, 2, ab ? 1 : 0) != 0) {
        abort();
    }
    olen = wrap(data + 1, size - 1, 16u + 64u * ((data[0] >> 1) & 15u), outer, sizeof outer);
    if (otaup_exec_feed(&ex, outer, olen) == 0) {
        (void)otaup_exec_finish(&ex);
    }
    log = otaup_simflash_log(sim, &n);
    for (i = 0; i < n; i++) {
        if (log[i].kind == OTAUP_SIMFLASH_READ || log[i].result != 0) {
            continue;
        }
        if (!inside(log[i].addr, log[i].len, win[0].addr, win[0].len) &&
            !inside(log[i].addr, log[i].len, 8 * S, S) && !inside(log[i].addr, log[i].len, 9 * S, 2 * S)) {
            abort(); /* a write outside the window, scratch and journal */
        }
    }
    if (memcmp(otaup_simflash_data(sim) + 11 * S, img + 11 * S, S) != 0) {
        abort(); /* the protected region changed */
    }
    otaup_simflash_free(sim);
    return 0;
}
