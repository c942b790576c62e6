/*
 * Fuzz target: arbitrary frames to a terminal applier over a simulated
 * flash. The input is a list of [type u8][flags u8][len u16 LE][payload]
 * that the harness wraps into valid frames (correct check values, the
 * next sequence number unless flags bit 0x80 asks for a stray one), after
 * a HELLO and a START; with the first byte odd, the rest is fed as raw
 * link bytes instead. Whatever the input: every erase and program lands
 * in the writable window, the scratch area, the journal or the user-data
 * region (RESTORE_DATA), and the updater's bytes never change. With the
 * first byte's bit 1 set (and sealed backups in the build), the terminal
 * has a device key: then nothing at all may be written to the user-data
 * region, since no input can carry a chunk sealed with that key (the
 * terminal authenticates every restored chunk before writing it:
 * security.md §7). Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/apply.h"
#include "otaup/simflash.h"
#if OTAUP_HAVE_MBEDTLS && OTAUP_CONFIG_SEALED
#include "otaup/sign.h"
#define FUZZ_SEALED 1
#else
#define FUZZ_SEALED 0
#endif

#define S 1024u
/* slot 0..5, scratch 6..7, journal 8..9, user 10, updater 11 */

static int inside(uint32_t a, uint32_t n, uint32_t b, uint32_t m)
{
    return a >= b && n <= m && a - b <= m - n;
}

static int sink(void *ctx, const uint8_t *b, size_t n)
{
    (void)ctx;
    (void)b;
    return (int)n;
}

static uint32_t clock_ms(void *ctx)
{
    return ++*(uint32_t *)ctx;
}

static void feed_frame(otaup_apply *ap, uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *p, size_t n)
{
    static uint8_t fr[600];
    int len = otaup_frame_encode(type, flags, seq, p, n, fr, sizeof fr);
    if (len > 0) {
        (void)otaup_apply_feed(ap, fr, (size_t)len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t work[OTAUP_APPLY_WORK_SIZE(512, 512, 2 * S, 8, 10)];
    static otaup_apply ap;
    otaup_apply_config c;
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    uint8_t img[12 * S], msg[32];
    const otaup_simflash_op *log;
    size_t n, i, pos;
    uint32_t seq = 0, clk = 0;
    otaup_msg m;
    int sealed = 0;
#if FUZZ_SEALED
    static otaup_crypto crypto;
    static const uint8_t key[32] = { 0x5e, 0xa1, 0xed };
#endif
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, S, 12, 4);
    o.log_ops = 1;
    if (otaup_simflash_new(&o, &sim) != 0) {
        abort();
    }
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    memset(img + 6 * S, 0xFF, 4 * S);
    (void)otaup_simflash_load(sim, 0, img, sizeof img);
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = 10;
    c.max_ops = 8;
    c.slots[0].addr = 0;
    c.slots[0].len = 6 * S;
    c.scratch.addr = 6 * S;
    c.scratch.len = 2 * S;
    c.journal.addr = 8 * S;
    c.journal.len = 2 * S;
    c.updater.addr = 11 * S;
    c.updater.len = S;
    c.regions[0].id = 1;
    c.regions[0].addr = 10 * S;
    c.regions[0].len = S;
    c.nregions = 1;
    c.staging_size = 2 * S;
    c.max_frame = 512;
    c.max_msg = 512;
    c.link.send = sink;
    c.now_ms = clock_ms;
    c.clock_ctx = &clk;
    c.id.terminal_id = "fuzz";
    c.id.model = "m";
    c.id.sw_version = "1";
    c.work = work;
    c.work_size = sizeof work;
#if FUZZ_SEALED
    if (size > 0 && (data[0] & 2) && otaup_crypto_mbedtls(&crypto) == 0) {
        c.device_key = key;
        c.crypto = &crypto;
        sealed = 1;
    }
#endif
    if (otaup_apply_init(&ap, &c) != 0 || otaup_apply_connect(&ap) != 0) {
        abort();
    }
    if (size > 0 && (data[0] & 1)) {
        (void)otaup_apply_feed(&ap, data + 1, size - 1);
    } else {
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_HELLO;
        m.u.hello.role = 1;
        m.u.hello.proto_min = 1;
        m.u.hello.proto_max = 1;
        m.u.hello.max_frame = 512;
        m.u.hello.max_msg = 512;
        m.u.hello.window = 1;
        feed_frame(&ap, OTAUP_MSG_HELLO, 0, seq++, msg, (size_t)otaup_msg_encode(&m, msg, sizeof msg));
        memset(&m, 0, sizeof m);
        m.type = OTAUP_MSG_START;
        m.u.start.session = 1;
        feed_frame(&ap, OTAUP_MSG_START, 0, seq++, msg, (size_t)otaup_msg_encode(&m, msg, sizeof msg));
        pos = size > 0 ? 1 : 0;
        while (pos + 4 <= size) {
            uint8_t type = data[pos], flags = data[pos + 1];
            size_t len = (size_t)data[pos + 2] | ((size_t)data[pos + 3] << 8);
            uint32_t s = seq;
            pos += 4;
            if (len > size - pos) {
                len = size - pos;
            }
            if (len > 496) {
                len = 496;
            }
            if (flags & 0x80) {
                s = seq + (uint32_t)(int8_t)type % 3u - 1u; /* a duplicate or a gap */
            } else {
                seq++;
            }
            feed_frame(&ap, type, flags & 0x07, s, data + pos, len);
            (void)otaup_apply_poll(&ap);
            pos += len;
        }
    }
    log = otaup_simflash_log(sim, &n);
    for (i = 0; i < n; i++) {
        if (log[i].kind == OTAUP_SIMFLASH_READ || log[i].result != 0) {
            continue;
        }
        if (!inside(log[i].addr, log[i].len, 0, 6 * S) && !inside(log[i].addr, log[i].len, 6 * S, 2 * S) &&
            !inside(log[i].addr, log[i].len, 8 * S, 2 * S) && !inside(log[i].addr, log[i].len, 10 * S, S)) {
            abort(); /* a write outside the window, scratch, journal and user data */
        }
        if (sealed && log[i].kind != OTAUP_SIMFLASH_READ && log[i].addr < 11 * S && log[i].addr + log[i].len > 10 * S) {
            abort(); /* a sealing terminal wrote restore data it could not have authenticated */
        }
    }
    if (memcmp(otaup_simflash_data(sim) + 11 * S, img + 11 * S, S) != 0) {
        abort(); /* the updater changed */
    }
    otaup_simflash_free(sim);
    return 0;
}
