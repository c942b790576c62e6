/*
 * otaup apply — run a delta through the terminal's executor.
 *
 *   otaup apply OLD PATCH -o OUT [--stats]
 *   otaup apply --flash FLASH PATCH [--cut-after N] [--fail-after N] [--torn]
 *               [--read-fault N [--flip]] [--stats]
 *
 * Both forms drive the same executor as a terminal (lib/core/exec.c) over
 * a simulated NOR flash (lib/server/simflash.c) with the delta's own
 * geometry. The journal lives in two extra sectors next to the delta's
 * geometry, normally after it (journal_place(); one operation counter
 * covers everything).
 *
 * --flash: FLASH holds the device's flash from the geometry base up to
 * the end of the images (at first the old image; bytes beyond the file
 * read as erased). The complete simulated device -- scratch area and
 * journal included -- is kept in the sidecar FLASH.otaup-state while an
 * update is unfinished; FLASH is rewritten after every run. When the
 * update completes the sidecar is removed and FLASH ends with the new
 * image (cut after it when the rest reads erased). --cut-after N stops as if power were cut
 * after N flash operations (--torn: the N-th is left half done) and exits
 * with code 3; running again without it resumes and finishes. --fail-after
 * and --read-fault make one flash operation or read go wrong with power on;
 * the executor starts again from its journal, once, as a terminal that
 * keeps running does.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cmd.h"
#include "dcli.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"
#include "sec_apply.h"

/* the largest device the simulation takes (it is held in memory, and in
 * the sidecar while an update is unfinished): 1 GiB */
#define APPLY_MAX_FLASH (1u << 30)

/* journal sectors: 4 KiB, or the least the journal takes when that is
 * more (program units above 512 bytes) */
static uint32_t journal_sector(const otaup_geometry *g)
{
    uint32_t least = OTAUP_JOURNAL_SECTOR_MIN(g->write_size);
    return least > 4096u ? least : 4096u;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: otaup apply OLD PATCH -o OUT [--stats] [--pub PUB ...]\n"
               "       otaup apply --flash FLASH PATCH [--cut-after N] [--fail-after N] [--torn]\n"
               "                   [--read-fault N [--flip]] [--stats] [--pub PUB ...]\n"
               "\n"
               "Apply PATCH (an otaup delta) with the terminal's executor on a simulated\n"
               "NOR flash of the delta's geometry.\n"
               "  OLD PATCH -o OUT   reproduce the new image into OUT (OLD must be the\n"
               "                     image the delta was made for; nothing is written\n"
               "                     if OLD or PATCH is wrong)\n"
               "  --flash FLASH      FLASH is the device flash from the geometry base to the\n"
               "                     end of the images (initially the old image); while an\n"
               "                     update is unfinished the whole device (scratch area,\n"
               "                     journal) is kept in FLASH.otaup-state\n"
               "  --cut-after N      cut the power after N flash operations (exit code 3);\n"
               "                     run again without it to resume\n"
               "  --fail-after N     the N-th flash operation fails as a driver reports an\n"
               "                     error, power staying on; the same executor starts again\n"
               "                     from its journal, once, and finishes (with --cut-after\n"
               "                     too: both happen, each counted from the start)\n"
               "  --torn             the N-th operation (cut, or failed) is left half done\n"
               "  --read-fault N     the N-th flash read of the run fails as a driver reports\n"
               "                     an error (--flip: returns one wrong bit instead), power\n"
               "                     staying on; the executor starts again from its journal,\n"
               "                     once, and finishes\n"
               "  --stats            sectors erased, bytes programmed, flash operations,\n"
               "                     estimated flash time (erase 20 ms + 1 ms/KiB per sector,\n"
               "                     program 2 us/byte), flash reads, steps executed /\n"
               "                     replayed / already in place, scratch windows, rebuilds\n"
               "%s"
               "\nexit codes: 0 done, 1 failure, 2 usage, 3 stopped by the simulated power cut\n",
            sec_apply_usage);
}

/* Read a whole file (NULL after a message). With must == 0, a file that
 * does not exist is no error: NULL without a message, and *absent set.
 * Any other failure (a directory, no permission, an I/O error) is one. */
static uint8_t *read_file(const char *path, size_t *len, int must, int *absent)
{
    struct stat st;
    if (absent != NULL) {
        *absent = 0;
    }
    if (!must) {
        if (stat(path, &st) != 0 && errno == ENOENT) {
            if (absent != NULL) {
                *absent = 1;
            }
            return NULL;
        }
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            /* a FIFO would block the read: a sidecar is a file we wrote */
            fprintf(stderr, "otaup apply: %s: not a regular file\n", path);
            return NULL;
        }
    }
    return dcli_read_file("apply", path, len);
}

/* --flash runs one at a time on a FLASH: the run holds an exclusive
 * flock(2) on FLASH from before it reads anything until it exits, and on
 * every new FLASH it writes (locked before it is renamed into place), so a
 * second run finds FLASH locked whichever file the name points to. The
 * descriptors stay open until the process exits. */
static int lock_fds[4];
static unsigned lock_n;

static int keep_locked(int fd)
{
    if (lock_n == sizeof lock_fds / sizeof lock_fds[0] || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        return -1;
    }
    lock_fds[lock_n++] = fd;
    return 0;
}

/* Lock FLASH for this run: 0, or -1 after a message (another run holds it). */
static int lock_flash(const char *path)
{
    int tries;
    for (tries = 0; tries < 8; tries++) {
        struct stat a, b;
        /* O_NONBLOCK: a FIFO's open would wait for a writer */
        int fd = open(path, O_RDONLY | O_NONBLOCK);
        if (fd < 0 && errno == ENOENT) {
            return 0; /* nothing to lock: the run resumes from the sidecar, or says FLASH is missing */
        }
        if (fd < 0) {
            fprintf(stderr, "otaup apply: %s: %s\n", path, strerror(errno));
            return -1;
        }
        if (fstat(fd, &a) != 0 || !S_ISREG(a.st_mode)) {
            /* FLASH is read whole and replaced by a file: a FIFO would
             * block, a device or a directory is no flash image */
            fprintf(stderr, "otaup apply: %s: %s\n", path,
                    S_ISDIR(a.st_mode) ? strerror(EISDIR) : "not a regular file");
            close(fd);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK) {
                fprintf(stderr, "otaup apply: %s is in use by another otaup apply --flash; wait for it to end\n",
                        path);
            } else {
                fprintf(stderr, "otaup apply: %s: cannot lock: %s\n", path, strerror(e));
            }
            return -1;
        }
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            lock_fds[lock_n++] = fd;
            return 0;
        }
        close(fd); /* replaced by a run that ended meanwhile: lock the new one */
    }
    fprintf(stderr, "otaup apply: %s keeps being replaced; is another otaup apply --flash running?\n", path);
    return -1;
}

/* Write FLASH (or its sidecar) through path.tmp and a rename; with lock,
 * the new file is locked (keep_locked) before its name replaces path. The
 * name is fixed: FLASH's lock keeps other runs out; whatever else stands
 * there (a link planted, a file left by a run killed) is removed, never
 * written through. */
static int write_locked(const char *path, const uint8_t *p, size_t n, int lock)
{
    char tmp[4096], target[4096];
    int fd;
    path = dcli_write_target(path, target, sizeof target); /* a link stays a link */
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        fprintf(stderr, "otaup apply: %s: path too long\n", path);
        return -1;
    }
    if (unlink(tmp) != 0 && errno != ENOENT) {
        fprintf(stderr, "otaup apply: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
        fprintf(stderr, "otaup apply: %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    if (lock) {
        int lfd = dup(fd);
        if (lfd < 0 || keep_locked(lfd) != 0) {
            fprintf(stderr, "otaup apply: %s: cannot lock\n", tmp);
            if (lfd >= 0) {
                close(lfd);
            }
            close(fd);
            unlink(tmp);
            return -1;
        }
    }
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            fprintf(stderr, "otaup apply: %s: %s\n", tmp, w < 0 ? strerror(errno) : "write error");
            close(fd);
            unlink(tmp);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "otaup apply: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* A failed run's reason, once: a run that did no flash operation says it
 * was refused before any (the signature checks of --pub among them). */
static void print_failure(otaup_simflash *sim, int r)
{
    otaup_simflash_stats st;
    otaup_simflash_stats_get(sim, &st);
    fprintf(stderr, "otaup apply: %s%s (%s)\n", st.ops == 0 ? "refused before any flash operation: " : "",
            otaup_strerror(r), otaup_errname(r));
}

static int hash128_eq(const uint8_t *p, size_t n, const uint8_t want[16])
{
    XXH128_hash_t h = XXH3_128bits(p, n);
    int i;
    for (i = 0; i < 8; i++) {
        if (want[i] != (uint8_t)(h.low64 >> (8 * i)) || want[8 + i] != (uint8_t)(h.high64 >> (8 * i))) {
            return 0;
        }
    }
    return 1;
}

/* the device: the delta's geometry plus two journal sectors next to it */
typedef struct device {
    otaup_geometry geo;     /* extended */
    uint32_t dev_size;      /* bytes of the delta's geometry */
    uint32_t pre;           /* bytes of journal before the delta's geometry */
    uint32_t journal_addr;
    uint32_t journal_sector; /* bytes of each of the two journal sectors */
    otaup_simflash *sim;
} device;

/* Place the two journal sectors (adjacent runs of one size merged first):
 * a run of their own after the geometry;
 * or, when the geometry already has the most runs a map may have (or
 * ends at the top of the address space), two more sectors of its last
 * run -- or of its first, before it -- when those hold the journal's
 * least number of slots; or a run of their own before it. Returns 0 or -1. */
static int journal_place(const otaup_delta_header *h, device *d)
{
    const otaup_geometry *g = &d->geo;
    uint32_t i, k, js, least, last, first;
    uint64_t end;
    int room_run;
    /* adjacent runs of one sector size are one run (the same sectors):
     * frees room in a map written as e.g. 6x1K,2x1K */
    for (i = 1, k = 0; i < d->geo.nruns; i++) {
        if (d->geo.runs[i].size == d->geo.runs[k].size) {
            d->geo.runs[k].count += d->geo.runs[i].count;
        } else {
            d->geo.runs[++k] = d->geo.runs[i];
        }
    }
    d->geo.nruns = k + 1u;
    js = journal_sector(g);
    least = OTAUP_JOURNAL_SECTOR_MIN(g->write_size);
    last = g->runs[g->nruns - 1u].size;
    first = g->runs[0].size;
    end = (uint64_t)g->base + d->dev_size;
    room_run = g->nruns < OTAUP_MAX_SECTOR_RUNS;
    if (room_run && end + 2u * (uint64_t)js <= 0x100000000ull) {
        d->geo.runs[d->geo.nruns].count = 2;
        d->geo.runs[d->geo.nruns].size = js;
        d->geo.nruns++;
    } else if (last >= least && end + 2u * (uint64_t)last <= 0x100000000ull) {
        d->geo.runs[d->geo.nruns - 1u].count += 2;
        js = last;
    } else if (room_run && g->base >= 2u * js) {
        memmove(&d->geo.runs[1], &d->geo.runs[0], d->geo.nruns * sizeof d->geo.runs[0]);
        d->geo.runs[0].count = 2;
        d->geo.runs[0].size = js;
        d->geo.nruns++;
        d->pre = 2u * js;
    } else if (first >= least && g->base >= 2u * first) {
        d->geo.runs[0].count += 2;
        js = first;
        d->pre = 2u * first;
    } else {
        return -1;
    }
    d->geo.base = h->geo.base - d->pre;
    d->journal_addr = d->pre != 0 ? d->geo.base : (uint32_t)end;
    d->journal_sector = js;
    return 0;
}

static int device_make(const otaup_delta_header *h, device *d)
{
    otaup_simflash_options o;
    uint32_t size = otaup_geometry_size(&h->geo);
    memset(d, 0, sizeof *d);
    d->geo = h->geo;
    d->dev_size = size;
    if (size > APPLY_MAX_FLASH) {
        /* the simulation keeps the whole device in memory and in its sidecar */
        fprintf(stderr,
                "otaup apply: the delta's flash spans %u bytes (%u sector runs); the simulated flash holds at most "
                "%u bytes\n",
                size, h->geo.nruns, APPLY_MAX_FLASH);
        return -1;
    }
    if (h->geo.nruns == 0 || h->geo.write_size > OTAUP_CONFIG_JOURNAL_SLOT_MAX || journal_place(h, d) != 0) {
        fprintf(stderr, "otaup apply: cannot place a journal next to this geometry\n");
        return -1;
    }
    otaup_simflash_options_init(&o);
    o.geo = d->geo;
    o.erase_us_per_sector = 20000;
    o.erase_us_per_kib = 1000;
    o.prog_ns_per_byte = 2000;
    o.prog_us_per_op = 0;
    if (otaup_simflash_new(&o, &d->sim) != 0) {
        fprintf(stderr, "otaup apply: invalid geometry in the delta\n");
        return -1;
    }
    return 0;
}

/* window: the target's sectors (in place: also the old image's) */
static void target_window(const otaup_delta_header *h, otaup_region *w)
{
    uint32_t end = h->target_addr + h->target_size, start, size;
    if (h->layout == OTAUP_LAYOUT_INPLACE && h->source_addr + h->source_size > end) {
        end = h->source_addr + h->source_size;
    }
    if (end > h->target_addr && otaup_geometry_sector_at(&h->geo, end - 1u, &start, &size) >= 0) {
        end = start + size;
    }
    w->addr = h->target_addr;
    w->len = end - h->target_addr;
}

typedef struct runctx {
    const uint8_t *delta;
    size_t delta_len;
    uint32_t body_off;
    otaup_delta_header hdr;
    sec_apply *sec;       /* signature checks (--pub) */
} runctx;

/* file offset of the last SYNC at or before step k (body start if none) */
static size_t restart_offset(const runctx *rc, uint32_t k)
{
    otaup_delta_reader r;
    size_t off = 0, best = rc->body_off;
    otaup_delta_reader_init(&r);
    while (off < rc->delta_len) {
        size_t used = 0;
        int ev = otaup_delta_reader_feed(&r, rc->delta + off, rc->delta_len - off, &used);
        off += used;
        if (ev < 0 || ev == OTAUP_DELTA_NEED_INPUT || ev == OTAUP_DELTA_END) {
            break;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_SYNC) {
            if (r.rec.index > k) {
                break;
            }
            best = r.rec_offset;
        }
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_DATA) {
            off += otaup_delta_reader_skip(&r);
        }
    }
    return best;
}

static int is_flash_error(int r)
{
    return r == OTAUP_E_FLASH_PROG || r == OTAUP_E_FLASH_ERASE;
}

/* what a faulty read (--read-fault) makes the executor report: the read's
 * error, or (a wrong bit) the hash or read-back check that caught it */
static int is_read_error(int r)
{
    return r == OTAUP_E_FLASH_READ || r == OTAUP_E_HASH || r == OTAUP_E_VERIFY;
}

/* run the executor; returns 0, or an otaup error. After a flash error
 * (--fail-after), or with `reads` a read error or a check a wrong bit
 * failed (--read-fault), the same executor starts again from its journal,
 * as a terminal that keeps running does, up to `retries` times (and a
 * mount whose read failed is done again). `saved`: the device comes from
 * FLASH.otaup-state; unless its journal shows this delta's update (active,
 * or ended by a cut after its last operation), the source must be OLD as
 * for a fresh FLASH, or the run is refused before any flash operation
 * (OTAUP_E_SESSION: another delta's update is active, or this one's begun
 * without --pub where it is given now, or the other way round;
 * OTAUP_E_SOURCE_MISMATCH). */
static int run_exec(const runctx *rc, device *d, int *resumed, otaup_exec_stats *stats, int retries, int reads,
                    int saved)
{
    const otaup_delta_header *h = &rc->hdr;
    const otaup_flash *f = otaup_simflash_flash(d->sim);
    otaup_journal j;
    otaup_exec ex;
    otaup_exec_config c;
    otaup_region win;
    size_t wsz, off;
    void *work;
    uint64_t delta_id = 0;
    int rc2, i;
    for (i = 0; i < 8; i++) {
        delta_id |= (uint64_t)h->body_hash[i] << (8 * i);
    }
    rc2 = otaup_journal_mount(&j, f, d->journal_addr, 2u * d->journal_sector);
    if (rc2 == OTAUP_E_FLASH_READ && reads && retries-- > 0) {
        fprintf(stderr, "otaup apply: %s; the journal is mounted again (power on)\n", otaup_strerror(rc2));
        rc2 = otaup_journal_mount(&j, f, d->journal_addr, 2u * d->journal_sector);
    }
    if (rc2 != 0) {
        return rc2;
    }
    memset(&c, 0, sizeof c);
    c.flash = f;
    c.journal = &j;
    c.layout = h->layout;
    c.window_bits = h->window_bits;
    target_window(h, &win);
    c.windows = &win;
    c.nwindows = 1;
    c.scratch.addr = h->scratch_addr;
    c.scratch.len = h->scratch_size;
    if (h->layout == OTAUP_LAYOUT_INPLACE) {
        c.running.addr = h->source_addr;
        c.running.len = h->source_size;
    }
    c.staging_size = h->staging_size;
    c.max_ops = h->max_ops;
    if (saved && rc->sec->nkeys > 0 && otaup_journal_get(&j)->session == OTAUP_JS_ACTIVE &&
        otaup_journal_get(&j)->delta_id == delta_id && otaup_journal_get(&j)->ponr) {
        /* this delta's update, begun without --pub (known by its body), past the point of no return */
        return OTAUP_E_SESSION;
    }
    rc2 = sec_apply_begin(rc->sec, rc->delta, rc->body_off, f, &j, &win, &c.hooks, &delta_id);
    if (rc2 != 0) {
        return rc2;
    }
    if (saved) {
        const otaup_journal_state *st = otaup_journal_get(&j);
        const uint8_t *src = otaup_simflash_data(d->sim) + d->pre + (h->source_addr - h->geo.base);
        if (!(st->session != OTAUP_JS_NONE && st->delta_id == delta_id) &&
            !hash128_eq(src, h->source_size, h->source_hash)) {
            return st->session == OTAUP_JS_ACTIVE ? OTAUP_E_SESSION : OTAUP_E_SOURCE_MISMATCH;
        }
    }
    wsz = otaup_exec_work_size(c.staging_size, c.max_ops, c.window_bits);
    work = calloc(1, wsz ? wsz : 1);
    if (work == NULL) {
        return OTAUP_E_NOMEM;
    }
    c.work = work;
    c.work_size = wsz;
    rc2 = otaup_exec_init(&ex, &c);
    for (;;) {
        if (rc2 == 0) {
            rc2 = otaup_exec_start(&ex, 1, delta_id, h->layout == OTAUP_LAYOUT_AB ? 1 : 0);
        }
        if (rc2 == 2) {
            rc2 = 0; /* already complete */
            break;
        }
        if (rc2 >= 0) {
            *resumed = *resumed || rc2 == 1;
            otaup_exec_set_step_count(&ex, h->step_count);
            off = rc2 == 1 ? restart_offset(rc, otaup_exec_next_step(&ex)) : rc->body_off;
            if (rc2 == 1) {
                fprintf(stderr, "otaup apply: resuming at step %u of %u\n", otaup_exec_next_step(&ex),
                        h->step_count);
            }
            rc2 = otaup_exec_feed(&ex, rc->delta + off, rc->delta_len - off);
            if (rc2 == 0 && otaup_exec_next_step(&ex) != h->step_count) {
                rc2 = OTAUP_E_DELTA_TRUNCATED;
            }
            if (rc2 == 0) {
                rc2 = otaup_exec_finish(&ex);
            }
        }
        if (!(is_flash_error(rc2) || (reads && is_read_error(rc2))) || retries-- <= 0) {
            break;
        }
        fprintf(stderr, "otaup apply: %s; the executor starts again from its journal (power on)\n",
                otaup_strerror(rc2));
        rc2 = 0;
    }
    *stats = ex.stats;
    free(work);
    return rc2;
}

static void print_stats(device *d, const otaup_exec_stats *es)
{
    otaup_simflash_stats st;
    otaup_simflash_stats_get(d->sim, &st);
    printf("sectors erased:   %llu (%llu bytes)\n", (unsigned long long)st.sectors_erased,
           (unsigned long long)st.bytes_erased);
    printf("bytes programmed: %llu in %llu program operations\n", (unsigned long long)st.bytes_programmed,
           (unsigned long long)st.prog_ops);
    printf("flash operations: %llu (erase %llu, program %llu)\n", (unsigned long long)st.ops,
           (unsigned long long)st.erase_ops, (unsigned long long)st.prog_ops);
    printf("flash reads:      %llu (%llu bytes)\n", (unsigned long long)st.read_ops,
           (unsigned long long)st.bytes_read);
    printf("estimated flash time: %llu.%03llu s\n", (unsigned long long)(st.time_us / 1000000u),
           (unsigned long long)(st.time_us / 1000u % 1000u));
    printf("steps: %u executed, %u replayed, %u already in place; scratch: %u windows, %u sector rebuilds\n",
           es->steps_done, es->steps_replayed, es->steps_skipped, es->scratch_windows, es->sector_rebuilds);
}

static int cmd_file(const runctx *rc, const char *old_path, const char *out_path, int stats)
{
    const otaup_delta_header *h = &rc->hdr;
    device d;
    size_t old_len;
    uint8_t *old = read_file(old_path, &old_len, 1, NULL);
    otaup_exec_stats es;
    int resumed = 0, r;
    if (old == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    if (old_len != h->source_size || !hash128_eq(old, old_len, h->source_hash)) {
        fprintf(stderr, "otaup apply: %s is not the image this delta was made for (size %zu, expected %u)\n",
                old_path, old_len, h->source_size);
        free(old);
        return OTAUP_EXIT_FAIL;
    }
    if (device_make(h, &d) != 0) {
        free(old);
        return OTAUP_EXIT_FAIL;
    }
    if (otaup_simflash_load(d.sim, h->source_addr, old, (uint32_t)old_len) != 0) {
        fprintf(stderr, "otaup apply: OLD does not fit the delta's geometry\n");
        otaup_simflash_free(d.sim);
        free(old);
        return OTAUP_EXIT_FAIL;
    }
    free(old);
    r = run_exec(rc, &d, &resumed, &es, 0, 0, 0);
    if (r == 0) {
        const uint8_t *img = otaup_simflash_data(d.sim) + d.pre + (h->target_addr - h->geo.base);
        if (!hash128_eq(img, h->target_size, h->target_hash)) {
            r = OTAUP_E_TARGET_MISMATCH;
        } else if (dcli_write_file("apply", out_path, img, h->target_size) != 0) {
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
    }
    if (r != 0) {
        print_failure(d.sim, r);
        otaup_simflash_free(d.sim);
        return OTAUP_EXIT_FAIL;
    }
    if (stats) {
        print_stats(&d, &es);
    }
    otaup_simflash_free(d.sim);
    return OTAUP_EXIT_OK;
}

/* What cmd_flash() is to make go wrong (0: nothing). */
typedef struct faults {
    unsigned long long cut, fail, read; /* --cut-after, --fail-after, --read-fault */
    int torn, flip;
} faults;

static int cmd_flash(const runctx *rc, const char *flash_path, int stats, const faults *fx)
{
    const otaup_delta_header *h = &rc->hdr;
    char state_path[4096];
    device d;
    size_t flen = 0, slen = 0;
    uint8_t *fl, *state;
    otaup_exec_stats es;
    int resumed = 0, r, code, saved, absent = 0;
    struct stat sb;
    uint32_t total;
    memset(&es, 0, sizeof es);
    snprintf(state_path, sizeof state_path, "%s.otaup-state", flash_path);
    if (lock_flash(flash_path) != 0) {
        return OTAUP_EXIT_FAIL;
    }
    if (device_make(h, &d) != 0) {
        return OTAUP_EXIT_FAIL;
    }
    total = otaup_geometry_size(&d.geo);
    state = read_file(state_path, &slen, 0, &absent);
    if (state == NULL && !absent) {
        /* an unfinished update's device that cannot be read is not "no
         * update": going on from FLASH would throw its journal away */
        fprintf(stderr, "otaup apply: %s holds the state of an unfinished update and cannot be read; nothing done\n",
                state_path);
        otaup_simflash_free(d.sim);
        return OTAUP_EXIT_FAIL;
    }
    saved = state != NULL;
    if (saved) {
        if (slen != total) {
            /* its size says another flash geometry: whether it still holds
             * this delta's OLD cannot be told; removing it throws away an
             * unfinished update's scratch area and journal */
            fprintf(stderr,
                    "otaup apply: %s holds an unfinished update of another flash geometry: finish it with the "
                    "delta that began it (remove it only if FLASH still holds OLD)\n",
                    state_path);
            free(state);
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
        if (stat(flash_path, &sb) == 0 && (uint64_t)sb.st_size > d.dev_size) {
            /* grown since the run that began the update: rewriting FLASH
             * from the sidecar would cut the bytes past the device off */
            fprintf(stderr,
                    "otaup apply: %s is %lld bytes, larger than the delta's flash (%u bytes); nothing done\n",
                    flash_path, (long long)sb.st_size, d.dev_size);
            free(state);
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
        (void)otaup_simflash_load(d.sim, d.geo.base, state, (uint32_t)slen);
        free(state);
        /* FLASH's length as the first run found it (every run keeps at
         * least that much): what lies beyond the images stays in FLASH */
        if (stat(flash_path, &sb) == 0 && sb.st_size > 0) {
            flen = (size_t)sb.st_size;
        }
    } else {
        fl = read_file(flash_path, &flen, 1, NULL);
        if (fl == NULL) {
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
        if (flen > d.dev_size) {
            fprintf(stderr, "otaup apply: %s is %zu bytes, larger than the delta's flash (%u bytes); nothing done\n",
                    flash_path, flen, d.dev_size);
            free(fl);
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
        (void)otaup_simflash_load(d.sim, h->geo.base, fl, (uint32_t)flen);
        free(fl);
        {
            const uint8_t *dev = otaup_simflash_data(d.sim) + d.pre;
            /* done: NEW in place of OLD, or (A/B, where OLD stays) NEW in its slot */
            if (hash128_eq(dev + (h->target_addr - h->geo.base), h->target_size, h->target_hash) &&
                (h->layout == OTAUP_LAYOUT_AB ||
                 !hash128_eq(dev + (h->source_addr - h->geo.base), h->source_size, h->source_hash))) {
                /* with --pub, a delta the terminal would refuse is refused
                 * here too, not passed because FLASH holds its image */
                int v = sec_apply_check(rc->sec, rc->delta, rc->delta_len);
                otaup_simflash_free(d.sim);
                if (v != 0) {
                    fprintf(stderr, "otaup apply: refused: %s (%s); %s holds the new image already, nothing done\n",
                            otaup_strerror(v), otaup_errname(v), flash_path);
                    return OTAUP_EXIT_FAIL;
                }
                printf("otaup apply: %s already holds the new image\n", flash_path);
                return OTAUP_EXIT_OK;
            }
            if (!hash128_eq(dev + (h->source_addr - h->geo.base), h->source_size, h->source_hash)) {
                /* where OLD was looked for: FLASH starts at the geometry's base */
                fprintf(stderr,
                        "otaup apply: %s does not hold the image this delta was made for (OLD, %u bytes at "
                        "offset 0x%x of FLASH)\n",
                        flash_path, (unsigned)h->source_size, (unsigned)(h->source_addr - h->geo.base));
                otaup_simflash_free(d.sim);
                return OTAUP_EXIT_FAIL;
            }
        }
    }
    if (fx->cut > 0) {
        otaup_simflash_cut_after(d.sim, fx->cut, fx->torn);
    }
    if (fx->fail > 0) {
        otaup_simflash_fail_after(d.sim, fx->fail, fx->torn);
    }
    if (fx->read > 0) {
        otaup_simflash_read_fault(d.sim, fx->read, fx->flip ? OTAUP_SIMFLASH_RFAULT_FLIP : OTAUP_SIMFLASH_RFAULT_FAIL);
    }
    /* one start again for each fault: a failed operation, a faulty read */
    r = run_exec(rc, &d, &resumed, &es, (fx->fail > 0) + (fx->read > 0), fx->read > 0, saved);
    otaup_simflash_power_on(d.sim);
    {
        otaup_simflash_stats st0;
        otaup_simflash_stats_get(d.sim, &st0);
        if (st0.ops == 0 && r != 0 && r != OTAUP_E_POWER_CUT) {
            /* refused before any flash operation: leave the files as they were */
            if (saved && r == OTAUP_E_SESSION) {
                /* a signed delta's update is known by its manifest with --pub, by its body without */
                const uint8_t *mf;
                size_t mf_len;
                int sig = otaup_delta_find_manifest(rc->delta, rc->body_off, &mf, &mf_len) == 0;
                fprintf(stderr, "otaup apply: %s holds an unfinished update by another delta%s: finish it as it "
                                "began (OTAUP_E_SESSION)\n", state_path,
                        sig ? ", or by this one begun with --pub where it is not given now, or the other way round"
                            : "");
            } else if (saved && r == OTAUP_E_SOURCE_MISMATCH) {
                fprintf(stderr, "otaup apply: %s does not hold the image this delta was made for\n", state_path);
            } else {
                print_failure(d.sim, r);
            }
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
    }
    {
        const uint8_t *dev = otaup_simflash_data(d.sim) + d.pre;
        uint32_t send = h->source_addr - h->geo.base + h->source_size;
        uint32_t tend = h->target_addr - h->geo.base + h->target_size;
        size_t keep = send > tend ? send : tend;
        if (flen > keep) {
            keep = flen;
        }
        if (r == 0) {
            size_t i;
            int erased = 1;
            for (i = tend; i < keep && erased; i++) {
                erased = dev[i] == h->geo.erased;
            }
            if (erased) {
                keep = tend;
            }
        }
        /* the sidecar first: FLASH is rewritten only once the device it
         * belongs to is saved, so that a failed write leaves a pair that
         * still resumes (or the files as they were) */
        if ((r != 0 && write_locked(state_path, dev - d.pre, total, 0) != 0) ||
            write_locked(flash_path, dev, keep, 1) != 0) {
            otaup_simflash_free(d.sim);
            return OTAUP_EXIT_FAIL;
        }
        if (r == 0) {
            remove(state_path);
        }
    }
    if (stats) {
        print_stats(&d, &es);
    }
    if (r == OTAUP_E_POWER_CUT) {
        otaup_simflash_stats st;
        otaup_simflash_stats_get(d.sim, &st);
        fprintf(stderr, "otaup apply: power cut after %llu flash operations%s; run again to resume\n",
                (unsigned long long)st.ops, fx->torn ? " (last one torn)" : "");
        code = OTAUP_EXIT_POWER_CUT;
    } else if (r != 0) {
        fprintf(stderr, "otaup apply: %s (%s)\n", otaup_strerror(r), otaup_errname(r));
        code = OTAUP_EXIT_FAIL;
    } else {
        if (resumed) {
            fprintf(stderr, "otaup apply: resumed and finished\n");
        }
        code = OTAUP_EXIT_OK;
    }
    otaup_simflash_free(d.sim);
    return code;
}

/* the count --cut-after, --fail-after or --read-fault sets (NULL: another option) */
static unsigned long long *count_option(faults *fx, const char *a)
{
    return strcmp(a, "--cut-after") == 0    ? &fx->cut
           : strcmp(a, "--fail-after") == 0 ? &fx->fail
           : strcmp(a, "--read-fault") == 0 ? &fx->read
                                            : NULL;
}

int otaup_cmd_apply(int argc, char **argv)
{
    const char *flash = NULL, *out = NULL, *pos[2] = { NULL, NULL };
    faults fx;
    unsigned long long *count;
    int stats = 0, npos = 0, i, r, code;
    runctx rc;
    uint8_t *delta;
    size_t dlen = 0;
    static sec_apply sa;
    memset(&sa, 0, sizeof sa);
    memset(&fx, 0, sizeof fx);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int k = sec_apply_arg(&sa, argc, argv, &i);
        if (k != 0) {
            if (k < 0) {
                return k == -2 ? OTAUP_EXIT_FAIL : OTAUP_EXIT_USAGE;
            }
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return OTAUP_EXIT_OK;
        } else if ((count = count_option(&fx, a)) != NULL || strcmp(a, "--flash") == 0 || strcmp(a, "-o") == 0) {
            const char *end;
            if (i + 1 == argc) {
                fprintf(stderr, "otaup apply: %s needs a value\n", a);
                return OTAUP_EXIT_USAGE;
            }
            if (count == NULL) {
                *(a[1] == 'o' ? &out : &flash) = argv[++i];
            } else if (dcli_parse_num(argv[++i], count, &end) != 0 || *end != '\0' || *count == 0) {
                /* decimal or 0x hex as every number of the tool: no sign, no space, not 0 */
                fprintf(stderr, "otaup apply: %s needs a positive number, not '%s'\n", a, argv[i]);
                return OTAUP_EXIT_USAGE;
            }
        } else if (strcmp(a, "--torn") == 0) {
            fx.torn = 1;
        } else if (strcmp(a, "--flip") == 0) {
            fx.flip = 1;
        } else if (strcmp(a, "--stats") == 0) {
            stats = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "otaup apply: unknown option '%s'\n", a);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            fprintf(stderr, "otaup apply: unexpected argument '%s'\n", a);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        }
    }
    {
        /* what is wrong with the combination, said before the usage */
        const char *why = flash != NULL && out != NULL ? "--flash and -o exclude each other"
                          : flash == NULL && (fx.cut > 0 || fx.fail > 0 || fx.read > 0)
                              ? "--cut-after, --fail-after and --read-fault need --flash"
                          : fx.torn && fx.cut == 0 && fx.fail == 0 ? "--torn needs --cut-after or --fail-after"
                          : fx.flip && fx.read == 0                ? "--flip needs --read-fault"
                          : sa.nkeys == 0 && sa.given
                              ? "--model, --counter and --installed-version are checks of --pub: give --pub PUB"
                          : flash != NULL && npos != 1             ? "--flash FLASH takes one PATCH"
                          : flash == NULL && (npos != 2 || out == NULL) ? "give OLD PATCH -o OUT, or --flash FLASH PATCH"
                                                                   : NULL;
        if (why != NULL) {
            fprintf(stderr, "otaup apply: %s\n", why);
            usage(stderr);
            return OTAUP_EXIT_USAGE;
        }
    }
    {
        /* OUT replaces neither OLD nor PATCH; FLASH is no PATCH */
        const char *const in[2] = { flash != NULL ? NULL : pos[0], flash != NULL ? pos[0] : pos[1] };
        const char *const what[2] = { "OLD image", "PATCH" };
        if (dcli_output_clash("apply", flash != NULL ? flash : out, in, what, 2) != 0) {
            return OTAUP_EXIT_USAGE;
        }
    }
    delta = read_file(flash != NULL ? pos[0] : pos[1], &dlen, 1, NULL);
    if (delta == NULL) {
        return OTAUP_EXIT_FAIL;
    }
    memset(&rc, 0, sizeof rc);
    rc.delta = delta;
    rc.delta_len = dlen;
    rc.sec = &sa;
    r = otaup_delta_check(delta, dlen, &rc.hdr, &rc.body_off);
    if (r != 0) {
        fprintf(stderr, "otaup apply: %s: not a usable delta: %s (%s)\n", flash != NULL ? pos[0] : pos[1],
                otaup_strerror(r), otaup_errname(r));
        free(delta);
        return OTAUP_EXIT_FAIL;
    }
    code = flash != NULL ? cmd_flash(&rc, flash, stats, &fx) : cmd_file(&rc, pos[0], out, stats);
    free(delta);
    return code;
}
