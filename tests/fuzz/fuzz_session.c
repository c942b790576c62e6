/*
 * Fuzz target: the server's session driver facing a hostile terminal.
 *
 * Input: byte 0 selects the read size (bits 0..5, 1..64 bytes) and the
 * options (bit 6: auto request, bit 7: restore always); the rest is the
 * byte stream from the "terminal", fed in reads of that size with the
 * clock advancing 250 ms between reads and the session's output drained
 * and polled each time. A registry (SQLite file in a temporary directory,
 * two releases of model M1) lives for the whole process. Invariants: no
 * crash, no hang; every byte the session sends is a valid frame of the
 * protocol (decoded by a fresh streaming decoder: no damaged frame, no
 * garbage); the session never sends more than its retransmission budget.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/registry.h"
#include "otaup/session.h"

#define CHECK(c)                                                                 \
    do {                                                                         \
        if (!(c)) {                                                              \
            fprintf(stderr, "fuzz_session: check failed at line %d\n", __LINE__); \
            abort();                                                             \
        }                                                                        \
    } while (0)

static otaup_registry *g_reg;
static uint8_t g_dbuf[OTAUP_FRAME_MAX];

static void init_registry(void)
{
    static char dir[64];
    char path[128];
    uint8_t key[32], img[4096];
    otaup_registry_options o;
    otaup_reg_release r;
    size_t i;
    snprintf(dir, sizeof dir, "/tmp/otaup-fuzz-session-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/r.db", dir);
    memset(key, 7, sizeof key);
    otaup_registry_options_init(&o);
    o.master_key = key;
    CHECK(otaup_registry_sqlite_open(path, &o, &g_reg) == 0);
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 13 + (i >> 5));
    }
    memset(&r, 0, sizeof r);
    snprintf(r.model, sizeof r.model, "M1");
    snprintf(r.version, sizeof r.version, "1.0");
    r.build_time = 1000;
    CHECK(otaup_registry_release_add(g_reg, &r, img, sizeof img) == 0);
    img[100] ^= 0xFF;
    snprintf(r.version, sizeof r.version, "2.0");
    r.build_time = 2000;
    CHECK(otaup_registry_release_add(g_reg, &r, img, sizeof img) == 0);
}

/* Everything the session wrote must be whole, valid frames. */
static void check_output(otaup_decoder *d, const uint8_t *p, size_t n)
{
    while (n > 0) {
        otaup_frame fr;
        size_t used = 0;
        int ev = otaup_decoder_feed(d, p, n, &used, &fr);
        p += used;
        n -= used;
        if (ev == OTAUP_DEC_NEED_INPUT) {
            CHECK(n == 0);
            break;
        }
        CHECK(ev == OTAUP_DEC_FRAME);
        if (fr.type != OTAUP_MSG_BATCH) {
            otaup_msg m;
            if (!(fr.flags & (OTAUP_FLAG_MORE | OTAUP_FLAG_CONT))) {
                CHECK(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m) == 0);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otaup_session_options o;
    otaup_session *s = NULL;
    otaup_decoder dec;
    uint8_t out[8192];
    uint64_t now = 1000;
    size_t chunk, pos = 1, sent = 0;
    int n, i;
    if (size < 1) {
        return 0;
    }
    if (g_reg == NULL) {
        init_registry();
    }
    chunk = (size_t)(data[0] & 0x3F) + 1u;
    otaup_session_options_init(&o);
    o.reg = g_reg;
    o.auto_request = (data[0] & 0x40) != 0;
    o.restore_always = (data[0] & 0x80) != 0;
    o.rto_initial_ms = 300;
    o.max_retries = 3;
    o.idle_timeout_ms = 5000;
    CHECK(otaup_session_new(&o, &s) == 0);
    CHECK(otaup_decoder_init(&dec, g_dbuf, sizeof g_dbuf, OTAUP_FRAME_MAX) == 0);
    for (i = 0; pos < size || i < 4; i++) {
        size_t k = size - pos < chunk ? size - pos : chunk;
        if (k > 0) {
            (void)otaup_session_feed(s, data + pos, k, now);
            pos += k;
        }
        while ((n = otaup_session_read(s, out, sizeof out, now)) > 0) {
            check_output(&dec, out, (size_t)n);
            sent += (size_t)n;
        }
        CHECK(n == 0 || n < 0);
        if (otaup_session_finished(s)) {
            break;
        }
        now += 250;
        (void)otaup_session_poll(s, now);
        CHECK(i < 100000);
    }
    /* bounded: the session answers, it does not flood */
    CHECK(sent <= 64u * 1024u + 64u * size);
    otaup_session_closed(s, now);
    otaup_session_free(s);
    return 0;
}
