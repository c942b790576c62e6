/*
 * otaup — simulated NOR flash. Server side (C11, allocates). See
 * include/otaup/simflash.h for the model.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/simflash.h"

struct otaup_simflash {
    otaup_flash flash;          /* first: callbacks get &flash, context = this */
    uint32_t size;
    uint32_t nsectors;
    uint32_t nunits;
    uint8_t *data;
    uint8_t *programmed;        /* per write unit: programmed since erase */
    uint8_t *changed;           /* per byte: changed since mark (bitmap) */
    uint32_t *wear;             /* per sector */
    otaup_simflash_options opts;
    char *path;
    FILE *file;
    /* power cut */
    uint64_t cut_left;          /* write ops still allowed; 0 = disarmed */
    int cut_torn;
    int cut;                    /* power is off */
    /* one failed operation (power stays on) */
    uint64_t fail_left;         /* write ops until the one that fails; 0 = disarmed */
    int fail_torn;
    /* one faulty read (power stays on) */
    uint64_t rfault_left;       /* reads until the faulty one; 0 = disarmed */
    int rfault_kind;            /* OTAUP_SIMFLASH_RFAULT_* */
    uint64_t rng;
    /* log and stats */
    otaup_simflash_op *log;
    size_t log_len, log_cap;
    otaup_simflash_stats st;
    uint64_t write_seq;
    int marked;
    uint64_t stale_reads;
};

void otaup_simflash_options_init(otaup_simflash_options *opts)
{
    const otaup_simflash_options init = OTAUP_SIMFLASH_OPTIONS_INIT;
    if (opts != NULL) {
        *opts = init;
    }
}

static uint64_t rng_next(otaup_simflash *s)
{
    /* splitmix64: good enough for "random-looking" bits, reproducible */
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static otaup_simflash *self(const otaup_flash *f)
{
    return (otaup_simflash *)f->context;
}

static void log_add(otaup_simflash *s, uint8_t kind, uint32_t addr, uint32_t len, int result,
                    int torn, int stale)
{
    otaup_simflash_op *e;
    if (!s->opts.log_ops && !s->opts.log_reads) {
        return;
    }
    if (kind == OTAUP_SIMFLASH_READ && !s->opts.log_reads) {
        return;
    }
    if (s->log_len == s->log_cap) {
        size_t cap = s->log_cap ? s->log_cap * 2 : 256;
        otaup_simflash_op *n = realloc(s->log, cap * sizeof *n);
        if (n == NULL) {
            return; /* the log is best effort; counters stay exact */
        }
        s->log = n;
        s->log_cap = cap;
    }
    e = &s->log[s->log_len++];
    e->kind = kind;
    e->torn = (uint8_t)torn;
    e->stale = (uint8_t)stale;
    e->result = result;
    e->addr = addr;
    e->len = len;
    e->seq = kind == OTAUP_SIMFLASH_READ ? 0 : s->write_seq;
}

static int in_range(const otaup_simflash *s, uint32_t addr, uint32_t len)
{
    uint32_t base = s->flash.geo.base;
    return addr >= base && addr - base <= s->size && len <= s->size - (addr - base);
}

static void mark_changed(otaup_simflash *s, uint32_t off, uint32_t len)
{
    uint32_t i;
    if (!s->marked) {
        return;
    }
    for (i = off; i < off + len; i++) {
        s->changed[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
}

static int any_changed(const otaup_simflash *s, uint32_t off, uint32_t len)
{
    uint32_t i;
    for (i = off; i < off + len; i++) {
        if (s->changed[i >> 3] & (1u << (i & 7))) {
            return 1;
        }
    }
    return 0;
}

static void persist(otaup_simflash *s, uint32_t off, uint32_t len)
{
    if (s->file == NULL || len == 0) {
        return;
    }
    if (fseek(s->file, (long)off, SEEK_SET) == 0) {
        (void)fwrite(s->data + off, 1, len, s->file);
        (void)fflush(s->file);
    }
}

/* What begin_write() decides for a write operation (>= 0). */
#define W_GO 0        /* perform it */
#define W_CUT_TORN 1  /* perform it torn; power goes off */
#define W_FAIL 2      /* report it failed, change nothing */
#define W_FAIL_TORN 3 /* perform it torn, report it failed */

/* The decision for a write operation: W_* or OTAUP_E_POWER_CUT. */
static int gate(otaup_simflash *s)
{
    if (s->cut) {
        return OTAUP_E_POWER_CUT;
    }
    s->write_seq++;
    s->st.ops++;
    if (s->cut_left > 0) {
        s->cut_left--;
        if (s->cut_left == 0) {
            s->cut = 1; /* this is the last operation before the cut */
            return s->cut_torn ? W_CUT_TORN : W_GO;
        }
    }
    if (s->fail_left > 0) {
        s->fail_left--;
        if (s->fail_left == 0) {
            return s->fail_torn ? W_FAIL_TORN : W_FAIL;
        }
    }
    return W_GO;
}

/* A write operation of `kind` is about to start: W_GO, W_CUT_TORN or
 * W_FAIL_TORN to go ahead, or the code it returns without doing anything
 * (logged): OTAUP_E_POWER_CUT, or `fail` for a failed operation. */
static int begin_write(otaup_simflash *s, uint8_t kind, uint32_t addr, uint32_t len, int fail)
{
    int w = gate(s);
    if (w < 0 || w == W_FAIL) {
        int rc = w < 0 ? w : fail;
        log_add(s, kind, addr, len, rc, 0, 0);
        return rc;
    }
    return w;
}

/* The code a write operation returns for decision `w` (fail: its own). */
static int write_result(int w, int fail)
{
    return w == W_CUT_TORN ? OTAUP_E_POWER_CUT : w >= W_FAIL ? fail : 0;
}

static int sim_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    otaup_simflash *s = self(f);
    int stale = 0;
    if (s->cut) {
        log_add(s, OTAUP_SIMFLASH_READ, addr, len, OTAUP_E_POWER_CUT, 0, 0);
        return OTAUP_E_POWER_CUT;
    }
    if (buf == NULL || !in_range(s, addr, len)) {
        log_add(s, OTAUP_SIMFLASH_READ, addr, len, OTAUP_E_RANGE, 0, 0);
        return OTAUP_E_RANGE;
    }
    memcpy(buf, s->data + (addr - f->geo.base), len);
    s->st.read_ops++;
    s->st.bytes_read += len;
    if (s->rfault_left > 0 && --s->rfault_left == 0) {
        uint8_t *p = buf;
        uint32_t i;
        s->st.read_faults++;
        if (s->rfault_kind == OTAUP_SIMFLASH_RFAULT_FAIL) {
            /* a driver that gives up mid-transfer: the buffer is not the data */
            for (i = 0; i < len; i++) {
                p[i] = (uint8_t)rng_next(s);
            }
            log_add(s, OTAUP_SIMFLASH_READ, addr, len, OTAUP_E_FLASH_READ, 1, 0);
            return OTAUP_E_FLASH_READ;
        }
        if (len > 0) {
            uint64_t r = rng_next(s);
            p[(uint32_t)(r >> 3) % len] ^= (uint8_t)(1u << (r & 7u));
        }
    }
    if (s->marked && any_changed(s, addr - f->geo.base, len)) {
        stale = 1;
        s->stale_reads++;
    }
    log_add(s, OTAUP_SIMFLASH_READ, addr, len, 0, 0, stale);
    return 0;
}

static int unit_erased(const otaup_simflash *s, uint32_t unit)
{
    uint32_t ws = s->flash.geo.write_size, i;
    const uint8_t *p = s->data + (size_t)unit * ws;
    for (i = 0; i < ws; i++) {
        if (p[i] != s->flash.geo.erased) {
            return 0;
        }
    }
    return 1;
}

static int sim_prog(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    otaup_simflash *s = self(f);
    uint32_t ws = f->geo.write_size, off, u, nu, i, tear_unit = 0;
    const uint8_t *src = buf;
    const uint8_t g_erased = f->geo.erased;
    int torn, w, rc;
    if (s->cut) {
        log_add(s, OTAUP_SIMFLASH_PROG, addr, len, OTAUP_E_POWER_CUT, 0, 0);
        return OTAUP_E_POWER_CUT;
    }
    if (buf == NULL || !in_range(s, addr, len)) {
        log_add(s, OTAUP_SIMFLASH_PROG, addr, len, OTAUP_E_RANGE, 0, 0);
        return OTAUP_E_RANGE;
    }
    if ((addr - f->geo.base) % ws != 0 || len % ws != 0) {
        log_add(s, OTAUP_SIMFLASH_PROG, addr, len, OTAUP_E_ALIGN, 0, 0);
        return OTAUP_E_ALIGN;
    }
    off = addr - f->geo.base;
    nu = len / ws;
    for (u = 0; u < nu; u++) {
        uint32_t unit = off / ws + u;
        if (s->programmed[unit] || !unit_erased(s, unit)) {
            log_add(s, OTAUP_SIMFLASH_PROG, addr, len, OTAUP_E_NOT_ERASED, 0, 0);
            return OTAUP_E_NOT_ERASED;
        }
    }
    w = begin_write(s, OTAUP_SIMFLASH_PROG, addr, len, OTAUP_E_FLASH_PROG);
    if (w < 0) {
        return w;
    }
    torn = w == W_CUT_TORN || w == W_FAIL_TORN;
    if (torn) {
        tear_unit = nu > 0 ? (uint32_t)(rng_next(s) % nu) : 0;
    }
    for (u = 0; u < nu; u++) {
        uint32_t unit = off / ws + u;
        uint8_t *dst = s->data + (size_t)unit * ws;
        const uint8_t *in = src + (size_t)u * ws;
        if (torn && u > tear_unit) {
            break;
        }
        if (torn && u == tear_unit) {
            /* half-programmed: a random subset of the bits to change is changed */
            int changed = 0;
            for (i = 0; i < ws; i++) {
                uint8_t flip = (uint8_t)(~(dst[i] ^ g_erased) & (dst[i] ^ in[i]));
                uint8_t keep = (uint8_t)(flip & (uint8_t)rng_next(s));
                uint8_t v = (uint8_t)(dst[i] ^ (flip & ~keep));
                if (v != dst[i]) {
                    changed = 1;
                }
                dst[i] = v;
            }
            if (changed) {
                s->programmed[unit] = 1;
            }
            break;
        }
        for (i = 0; i < ws; i++) {
            /* program only moves bits away from the erased value (on NOR,
             * erased 0xFF: it only clears them) */
            uint8_t m = (uint8_t)~(dst[i] ^ g_erased);
            dst[i] = (uint8_t)((dst[i] & ~m) | (in[i] & m));
        }
        s->programmed[unit] = 1;
    }
    mark_changed(s, off, len);
    s->st.prog_ops++;
    s->st.bytes_programmed += len;
    s->st.time_us += s->opts.prog_us_per_op + ((uint64_t)len * s->opts.prog_ns_per_byte + 999u) / 1000u;
    persist(s, off, len);
    rc = write_result(w, OTAUP_E_FLASH_PROG);
    log_add(s, OTAUP_SIMFLASH_PROG, addr, len, rc, torn, 0);
    return rc;
}

static int sim_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    otaup_simflash *s = self(f);
    const otaup_geometry *g = &f->geo;
    uint32_t pos, start, size, ws = g->write_size;
    int32_t idx;
    int torn, w, rc;
    if (s->cut) {
        log_add(s, OTAUP_SIMFLASH_ERASE, addr, len, OTAUP_E_POWER_CUT, 0, 0);
        return OTAUP_E_POWER_CUT;
    }
    if (len == 0 || !in_range(s, addr, len)) {
        log_add(s, OTAUP_SIMFLASH_ERASE, addr, len, OTAUP_E_RANGE, 0, 0);
        return OTAUP_E_RANGE;
    }
    if (!otaup_geometry_is_sector_aligned(g, addr, len)) {
        log_add(s, OTAUP_SIMFLASH_ERASE, addr, len, OTAUP_E_ALIGN, 0, 0);
        return OTAUP_E_ALIGN;
    }
    w = begin_write(s, OTAUP_SIMFLASH_ERASE, addr, len, OTAUP_E_FLASH_ERASE);
    if (w < 0) {
        return w;
    }
    torn = w == W_CUT_TORN || w == W_FAIL_TORN;
    /* sectors before the tear are erased, the torn one is half erased,
     * the ones after are untouched */
    {
        uint32_t nsec = 0, tear_sec = 0, k = 0;
        pos = addr;
        while (pos - addr < len) {
            (void)otaup_geometry_sector_at(g, pos, &start, &size);
            nsec++;
            pos = start + size;
            if (pos == 0) {
                break;
            }
        }
        if (torn) {
            tear_sec = (uint32_t)(rng_next(s) % nsec);
        }
        pos = addr;
        while (k < nsec) {
            uint32_t off, i;
            idx = otaup_geometry_sector_at(g, pos, &start, &size);
            off = start - g->base;
            if (torn && k == tear_sec) {
                /* half erased: a prefix is erased, the rest gets random bits set */
                uint32_t done = (uint32_t)(rng_next(s) % size);
                uint32_t u;
                memset(s->data + off, g->erased, done);
                for (i = done; i < size; i++) {
                    uint8_t r = (uint8_t)rng_next(s);
                    s->data[off + i] = g->erased == 0xFFu ? (uint8_t)(s->data[off + i] | r)
                                                          : (uint8_t)(s->data[off + i] & ~r);
                }
                for (u = off / ws; u < (off + size) / ws; u++) {
                    s->programmed[u] = !unit_erased(s, u);
                }
                s->wear[idx]++;
                mark_changed(s, off, size);
                persist(s, off, size);
                s->st.time_us += s->opts.erase_us_per_sector / 2u;
                break;
            }
            memset(s->data + off, g->erased, size);
            memset(s->programmed + off / ws, 0, size / ws);
            s->wear[idx]++;
            s->st.sectors_erased++;
            s->st.bytes_erased += size;
            s->st.time_us += s->opts.erase_us_per_sector + (uint64_t)s->opts.erase_us_per_kib * size / 1024u;
            mark_changed(s, off, size);
            persist(s, off, size);
            pos = start + size;
            k++;
        }
    }
    s->st.erase_ops++;
    rc = write_result(w, OTAUP_E_FLASH_ERASE);
    log_add(s, OTAUP_SIMFLASH_ERASE, addr, len, rc, torn, 0);
    return rc;
}

static int sim_sync(const otaup_flash *f)
{
    otaup_simflash *s = self(f);
    if (s->cut) {
        return OTAUP_E_POWER_CUT;
    }
    if (s->file != NULL && fflush(s->file) != 0) {
        return OTAUP_E_IO;
    }
    return 0;
}

int otaup_simflash_new(const otaup_simflash_options *opts, otaup_simflash **out)
{
    otaup_simflash *s;
    uint32_t size, ws, u;
    if (out == NULL || opts == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    if (opts->version != OTAUP_SIMFLASH_OPTIONS_VERSION) {
        return OTAUP_E_INVAL;
    }
    if (otaup_geometry_check(&opts->geo) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    size = otaup_geometry_size(&opts->geo);
    ws = opts->geo.write_size;
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return OTAUP_E_NOMEM;
    }
    s->opts = *opts;
    s->size = size;
    s->nsectors = otaup_geometry_sector_count(&opts->geo);
    s->nunits = size / ws;
    s->data = malloc(size);
    s->programmed = calloc(s->nunits, 1);
    s->changed = calloc((size_t)size / 8u + 1u, 1);
    s->wear = calloc(s->nsectors, sizeof *s->wear);
    if (s->data == NULL || s->programmed == NULL || s->changed == NULL || s->wear == NULL) {
        otaup_simflash_free(s);
        return OTAUP_E_NOMEM;
    }
    memset(s->data, opts->geo.erased, size);
    s->rng = opts->seed;
    s->flash.context = s;
    s->flash.read = sim_read;
    s->flash.prog = sim_prog;
    s->flash.erase = sim_erase;
    s->flash.sync = sim_sync;
    s->flash.geo = opts->geo;
    if (opts->path != NULL) {
        FILE *f = fopen(opts->path, "r+b");
        s->path = strdup(opts->path);
        if (s->path == NULL) {
            if (f != NULL) {
                fclose(f);
            }
            otaup_simflash_free(s);
            return OTAUP_E_NOMEM;
        }
        if (f != NULL) {
            long n;
            if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || (unsigned long)n > size ||
                fseek(f, 0, SEEK_SET) != 0 || fread(s->data, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                otaup_simflash_free(s);
                return OTAUP_E_IO;
            }
            s->file = f;
        } else {
            s->file = fopen(opts->path, "w+b");
            if (s->file == NULL) {
                otaup_simflash_free(s);
                return OTAUP_E_IO;
            }
        }
        persist(s, 0, size);
    }
    /* units that do not read erased count as programmed */
    for (u = 0; u < s->nunits; u++) {
        s->programmed[u] = !unit_erased(s, u);
    }
    *out = s;
    return 0;
}

void otaup_simflash_free(otaup_simflash *s)
{
    if (s == NULL) {
        return;
    }
    if (s->file != NULL) {
        fflush(s->file);
        fclose(s->file);
    }
    free(s->path);
    free(s->data);
    free(s->programmed);
    free(s->changed);
    free(s->wear);
    free(s->log);
    free(s);
}

const otaup_flash *otaup_simflash_flash(otaup_simflash *s)
{
    return s != NULL ? &s->flash : NULL;
}

uint8_t *otaup_simflash_data(otaup_simflash *s)
{
    return s != NULL ? s->data : NULL;
}

uint32_t otaup_simflash_size(const otaup_simflash *s)
{
    return s != NULL ? s->size : 0;
}

int otaup_simflash_load(otaup_simflash *s, uint32_t addr, const void *buf, uint32_t len)
{
    uint32_t off, u, ws;
    if (s == NULL || (buf == NULL && len > 0) || !in_range(s, addr, len)) {
        return OTAUP_E_RANGE;
    }
    if (len == 0) {
        return 0;
    }
    off = addr - s->flash.geo.base;
    ws = s->flash.geo.write_size;
    memcpy(s->data + off, buf, len);
    for (u = off / ws; u <= (off + len - 1u) / ws; u++) {
        s->programmed[u] = !unit_erased(s, u);
    }
    persist(s, off, len);
    return 0;
}

int otaup_simflash_flush(otaup_simflash *s)
{
    if (s == NULL || s->file == NULL) {
        return 0;
    }
    persist(s, 0, s->size);
    return fflush(s->file) == 0 ? 0 : OTAUP_E_IO;
}

void otaup_simflash_cut_after(otaup_simflash *s, uint64_t after_ops, int torn)
{
    if (s == NULL) {
        return;
    }
    s->cut_left = after_ops;
    s->cut_torn = torn;
}

void otaup_simflash_fail_after(otaup_simflash *s, uint64_t after_ops, int torn)
{
    if (s == NULL) {
        return;
    }
    s->fail_left = after_ops;
    s->fail_torn = torn;
}

void otaup_simflash_read_fault(otaup_simflash *s, uint64_t after_reads, int kind)
{
    if (s == NULL) {
        return;
    }
    s->rfault_left = kind == OTAUP_SIMFLASH_RFAULT_FAIL || kind == OTAUP_SIMFLASH_RFAULT_FLIP ? after_reads : 0;
    s->rfault_kind = kind;
}

int otaup_simflash_is_cut(const otaup_simflash *s)
{
    return s != NULL && s->cut;
}

void otaup_simflash_power_on(otaup_simflash *s)
{
    if (s != NULL) {
        s->cut = 0;
        s->cut_left = 0;
    }
}

void otaup_simflash_stats_get(const otaup_simflash *s, otaup_simflash_stats *st)
{
    if (s != NULL && st != NULL) {
        *st = s->st;
    }
}

void otaup_simflash_stats_reset(otaup_simflash *s)
{
    if (s != NULL) {
        memset(&s->st, 0, sizeof s->st);
    }
}

uint32_t otaup_simflash_wear(const otaup_simflash *s, uint32_t index)
{
    if (s == NULL || index >= s->nsectors) {
        return 0;
    }
    return s->wear[index];
}

const otaup_simflash_op *otaup_simflash_log(const otaup_simflash *s, size_t *count)
{
    if (count != NULL) {
        *count = s != NULL ? s->log_len : 0;
    }
    return s != NULL ? s->log : NULL;
}

void otaup_simflash_log_clear(otaup_simflash *s)
{
    if (s != NULL) {
        s->log_len = 0;
    }
}

size_t otaup_simflash_log_writes_since(const otaup_simflash *s, size_t from)
{
    size_t i, n = 0;
    if (s == NULL) {
        return 0;
    }
    for (i = from; i < s->log_len; i++) {
        if (s->log[i].kind != OTAUP_SIMFLASH_READ) {
            n++;
        }
    }
    return n;
}

void otaup_simflash_mark(otaup_simflash *s)
{
    if (s == NULL) {
        return;
    }
    memset(s->changed, 0, (size_t)s->size / 8u + 1u);
    s->marked = 1;
    s->stale_reads = 0;
}

uint64_t otaup_simflash_stale_reads(const otaup_simflash *s)
{
    return s != NULL ? s->stale_reads : 0;
}
