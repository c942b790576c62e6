/*
 * Fuzz target: arbitrary bytes as an update's outer record stream, fed to
 * an executor over a simulated flash (cut into two feeds at a point taken
 * from the input, then finish). Whatever the input, every erase and
 * program must land inside the writable window, the scratch area or the
 * journal, and the user-data and updater regions must keep their bytes.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

#define S 1024u
#define NSEC 12u
/* slot 0..5, scratch 6..7, journal 8..9, user 10, updater 11 */

static int inside(uint32_t a, uint32_t n, uint32_t b, uint32_t m)
{
    return a >= b && n <= m && a - b <= m - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t work[OTAUP_EXEC_WORK_SIZE(2 * S, 8, 10)];
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win, prot[2];
    uint8_t img[NSEC * S];
    const otaup_simflash_op *log;
    size_t n, i, cut;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, S, NSEC, 4);
    o.log_ops = 1;
    if (otaup_simflash_new(&o, &sim) != 0) {
        abort();
    }
    for (i = 0; i < sizeof img; i++) {
        img[i] = (uint8_t)(i * 7 + (i >> 8));
    }
    memset(img + 6 * S, 0xFF, 4 * S); /* scratch and journal erased */
    (void)otaup_simflash_load(sim, 0, img, sizeof img);
    if (otaup_journal_mount(&j, otaup_simflash_flash(sim), 8 * S, 2 * S) != 0) {
        abort();
    }
    memset(&c, 0, sizeof c);
    c.flash = otaup_simflash_flash(sim);
    c.journal = &j;
    c.layout = OTAUP_LAYOUT_INPLACE;
    c.window_bits = 10;
    win.addr = 0;
    win.len = 6 * S;
    c.windows = &win;
    c.nwindows = 1;
    prot[0].addr = 10 * S;
    prot[0].len = S;
    prot[1].addr = 11 * S;
    prot[1].len = S;
    c.protect = prot;
    c.nprotect = 2;
    c.scratch.addr = 6 * S;
    c.scratch.len = 2 * S;
    c.running = win;
    c.work = work;
    c.work_size = sizeof work;
    c.staging_size = 2 * S;
    c.max_ops = 8;
    if (otaup_exec_init(&ex, &c) != 0 || otaup_exec_start(&ex, 1, 1, 0) != 0) {
        abort();
    }
    cut = size > 0 ? data[0] % (size + 1) : 0;
    if (otaup_exec_feed(&ex, data, cut) == 0) {
        if (otaup_exec_feed(&ex, data + cut, size - cut) == 0) {
            (void)otaup_exec_finish(&ex);
        }
    } else {
        /* after an error the stream may restart: try the rest */
        (void)otaup_exec_feed(&ex, data + cut, size - cut);
    }
    log = otaup_simflash_log(sim, &n);
    for (i = 0; i < n; i++) {
        if (log[i].kind == OTAUP_SIMFLASH_READ || log[i].result != 0) {
            continue;
        }
        if (!inside(log[i].addr, log[i].len, 0, 6 * S) && !inside(log[i].addr, log[i].len, 6 * S, 2 * S) &&
            !inside(log[i].addr, log[i].len, 8 * S, 2 * S)) {
            abort(); /* a write outside the window, scratch and journal */
        }
    }
    if (memcmp(otaup_simflash_data(sim) + 10 * S, img + 10 * S, 2 * S) != 0) {
        abort(); /* user data or updater changed */
    }
    otaup_simflash_free(sim);
    return 0;
}
