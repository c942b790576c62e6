/*
 * `otaup apply`: OLD PATCH -o OUT reproduces NEW through the executor;
 * a wrong OLD or a damaged PATCH is refused before OUT exists; --flash
 * with --cut-after N [--torn] stops with exit code 3 at every N and a
 * second run resumes and leaves NEW in FLASH.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "otaup/otaup.h"
#include "util/testplan.h"
#include "util/runcmd.h"

static char dir[128], cli[512], out[16384];
static uint8_t *old_img, *new_img;
static uint32_t old_len, new_len;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = test_vrun(dir, 60, out, sizeof out, fmt, ap);
    va_end(ap);
    return rc;
}

static void put_file(const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}


/* the file holds exactly p[0..n) from offset `at` to its end */
static int file_equals_at(const char *name, unsigned long at, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;
    uint8_t *b = malloc(n + 1);
    size_t got = 0;
    int eq;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        free(b);
        return 0;
    }
    if (fseek(f, (long)at, SEEK_SET) == 0) {
        got = fread(b, 1, n + 1, f);
    }
    fclose(f);
    eq = got == n && memcmp(b, p, n) == 0;
    free(b);
    return eq;
}

static int file_equals(const char *name, const uint8_t *p, size_t n)
{
    return file_equals_at(name, 0, p, n);
}

/* The number after `key` in the output of the last run (--stats). */
static unsigned long stat_value(const char *key)
{
    const char *p = strstr(out, key);
    ck_assert_msg(p != NULL, "no \"%s\" in: %s", key, out);
    return strtoul(p + strlen(key), NULL, 10);
}

static int exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void setup(void)
{
    const char *bin = getenv("OTAUP_BIN_DIR");
    otaup_geometry geo;
    uint8_t *flash, *delta;
    size_t dlen;
    tp_opts o;
    tp_stream s;
    ck_assert_ptr_nonnull(bin);
    snprintf(dir, sizeof dir, "/tmp/otaup-apply-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(cli, sizeof cli, "%s/examples/otaup/otaup", bin);
    /* 8 x 4 KiB from 0: slot of 5 sectors, scratch at sector 5 */
    otaup_geometry_uniform(&geo, 0, 4096, 8, 8);
    old_len = 5 * 4096 - 1500;
    new_len = 5 * 4096 - 700;
    flash = malloc(8 * 4096);
    memset(flash, 0xFF, 8 * 4096);
    tp_make_image(flash, old_len, 31);
    old_img = malloc(old_len);
    memcpy(old_img, flash, old_len);
    new_img = malloc(5 * 4096);
    tp_make_new(flash, new_img, new_len, 4096, 32);
    tp_opts_default(&o, &geo, 0, 0, new_len, 4096);
    o.sync_every = 2;
    ck_assert_int_eq(tp_plan(&o, flash, new_img, &s), 0);
    ck_assert_int_eq(tp_container(&o, &s, 0, 5 * 4096, 4096, 64, old_img, old_len, new_img, &delta, &dlen), 0);
    ck_assert_int_eq(otaup_delta_check(delta, dlen, NULL, NULL), 0);
    put_file("old.bin", old_img, old_len);
    put_file("new.bin", new_img, new_len);
    put_file("patch.otd", delta, dlen);
    /* damaged copies */
    delta[dlen - 10] ^= 0x40;
    put_file("bad.otd", delta, dlen);
    put_file("short.otd", delta, dlen / 2);
    old_img[100] ^= 1;
    put_file("wrong.bin", old_img, old_len);
    old_img[100] ^= 1;
    free(delta);
    free(flash);
    tp_stream_free(&s);
}

static void teardown(void)
{
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
    free(old_img);
    free(new_img);
}

START_TEST(test_file_mode)
{
    ck_assert_int_eq(run("%s apply old.bin patch.otd -o out.bin --stats", cli), 0);
    ck_assert(file_equals("out.bin", new_img, new_len));
    ck_assert_ptr_nonnull(strstr(out, "flash operations:"));
    ck_assert_int_eq(run("%s apply wrong.bin patch.otd -o out2.bin", cli), 1);
    ck_assert_ptr_nonnull(strstr(out, "not the image"));
    ck_assert(!exists("out2.bin"));
    ck_assert_int_eq(run("%s apply old.bin bad.otd -o out3.bin", cli), 1);
    ck_assert_ptr_nonnull(strstr(out, "not a usable delta"));
    ck_assert(!exists("out3.bin"));
    ck_assert_int_eq(run("%s apply old.bin short.otd -o out4.bin", cli), 1);
    ck_assert(!exists("out4.bin"));
    ck_assert_int_eq(run("%s apply old.bin missing.otd -o out5.bin", cli), 1);
    ck_assert_int_eq(run("%s apply old.bin patch.otd", cli), 2);
    ck_assert_int_eq(run("%s apply --flash f.bin patch.otd --torn", cli), 2);
    /* option numbers: a leading 0 is decimal (01024 is 1024, not octal 532),
     * 0x is hex; signs, spaces and stray bytes are refused */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o d1.otd -q --sector-size 01024 --base 0x10000", cli), 0);
    ck_assert_int_eq(run("%s inspect d1.otd --json", cli), 0);
    ck_assert_ptr_nonnull(strstr(out, "1024"));
    ck_assert_ptr_nonnull(strstr(out, "65536"));
    ck_assert_int_eq(run("%s delta old.bin new.bin -o d2.otd -q --sector-size ' 1024'", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o d2.otd -q --sector-size +1024", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o d2.otd -q --sector-size 0x", cli), 2);
    ck_assert_int_eq(run("%s delta old.bin new.bin -o d2.otd -q --sector-size 1024x", cli), 2);
    ck_assert(!exists("d2.otd"));
}
END_TEST

START_TEST(test_flash_cut_every_op)
{
    unsigned long ops = 0, n, stride;
    int torn, cases = 0;
    put_file("flash.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --stats", cli), 0);
    ck_assert(file_equals("flash.bin", new_img, new_len));
    ops = stat_value("flash operations: ");
    ck_assert(ops > 10);
    /* again: already there */
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd", cli), 0);
    ck_assert(file_equals("flash.bin", new_img, new_len));
    {
        const char *e = getenv("OTAUP_EXHAUSTIVE");
        stride = e != NULL && *e != '\0' && *e != '0' ? 1 : 9; /* every op: test_exec; here the tool's plumbing */
    }
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1 + (unsigned long)torn * 4; n <= ops; n += stride) {
            int rc;
            put_file("flash.bin", old_img, old_len);
            rc = run("%s apply --flash flash.bin patch.otd --cut-after %lu%s", cli, n, torn ? " --torn" : "");
            ck_assert_msg(rc == 3 || (rc == 0 && n == ops), "cut %lu torn %d: exit %d: %s", n, torn, rc,
                          out);
            if (rc == 3) {
                ck_assert(exists("flash.bin.otaup-state"));
                rc = run("%s apply --flash flash.bin patch.otd", cli);
                ck_assert_msg(rc == 0, "resume after cut %lu torn %d: exit %d: %s", n, torn, rc, out);
            }
            ck_assert(!exists("flash.bin.otaup-state"));
            ck_assert_msg(file_equals("flash.bin", new_img, new_len), "cut %lu torn %d", n, torn);
            cases++;
        }
    }
    fprintf(stderr, "otaup apply --flash: %d cut cases (every %lu-th op, plain and torn)\n", cases, stride);
}
END_TEST

/* --fail-after N [--torn]: the N-th flash operation fails with power on;
 * the tool's executor starts again from its journal and finishes with NEW
 * in one run (exit 0), the failure named on stderr; with a power cut some
 * operations later, a second run finishes from the journal the first one
 * left. Usage errors: without --flash, N = 0. */
START_TEST(test_flash_fail_every_op)
{
    unsigned long ops, n;
    int torn, named = 0;
    put_file("flash.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --stats", cli), 0);
    ops = stat_value("flash operations: ");
    for (torn = 0; torn <= 1; torn++) {
        for (n = 1 + (unsigned long)torn; n <= ops; n += 5) {
            int rc;
            put_file("flash.bin", old_img, old_len);
            rc = run("%s apply --flash flash.bin patch.otd --fail-after %lu%s", cli, n, torn ? " --torn" : "");
            ck_assert_msg(rc == 0, "fail %lu torn %d: exit %d: %s", n, torn, rc, out);
            named += strstr(out, "failed; the executor starts again") != NULL;
            ck_assert(!exists("flash.bin.otaup-state"));
            ck_assert_msg(file_equals("flash.bin", new_img, new_len), "fail %lu torn %d", n, torn);
        }
    }
    ck_assert_int_gt(named, 2);
    /* a failure, more operations, then a power cut: the second run mounts
     * the journal the first one left and finishes */
    for (n = 1; n + 4 <= ops; n += n < 40 ? 1 : 7) {
        int rc;
        put_file("flash.bin", old_img, old_len);
        rc = run("%s apply --flash flash.bin patch.otd --fail-after %lu --cut-after %lu%s", cli, n, n + 4,
                 n & 1 ? " --torn" : "");
        ck_assert_msg(rc == 3, "fail %lu cut %lu: exit %d: %s", n, n + 4, rc, out);
        rc = run("%s apply --flash flash.bin patch.otd", cli);
        ck_assert_msg(rc == 0, "resume after fail %lu cut %lu: exit %d: %s", n, n + 4, rc, out);
        ck_assert_msg(file_equals("flash.bin", new_img, new_len), "fail %lu cut %lu", n, n + 4);
    }
    ck_assert_int_eq(run("%s apply old.bin patch.otd -o o.bin --fail-after 3", cli), 2);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --fail-after 0", cli), 2);
}
END_TEST

/* --read-fault N [--flip]: the N-th flash read fails, or returns one wrong
 * bit, power on; the tool's executor starts again from its journal and
 * finishes with NEW in one run (exit 0). Every third read of the first
 * run, and of a resume after a cut (whose mount reads records). --stats
 * counts the reads. Usage errors: without --flash, --flip alone, N = 0. */
START_TEST(test_flash_read_fault_every_read)
{
    unsigned long reads, n, resume_reads, cut;
    int flip, rc;
    put_file("flash.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --stats", cli), 0);
    cut = 2u * stat_value("flash operations: ") / 3u; /* past the point of no return */
    reads = stat_value("flash reads:");
    ck_assert_uint_gt(reads, 10);
    for (flip = 0; flip <= 1; flip++) {
        for (n = 1 + (unsigned long)flip; n <= reads; n += 3) {
            put_file("flash.bin", old_img, old_len);
            rc = run("%s apply --flash flash.bin patch.otd --read-fault %lu%s", cli, n, flip ? " --flip" : "");
            ck_assert_msg(rc == 0, "read %lu of %lu%s: exit %d: %s", n, reads, flip ? " flipped" : " failed", rc,
                          out);
            ck_assert(!exists("flash.bin.otaup-state"));
            ck_assert_msg(file_equals("flash.bin", new_img, new_len), "read %lu%s", n, flip ? " flipped" : "");
        }
    }
    /* the resume after a cut: its mount finds records */
    put_file("flash.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --cut-after %lu", cli, cut), 3);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --stats", cli), 0);
    resume_reads = stat_value("flash reads:");
    for (flip = 0; flip <= 1; flip++) {
        for (n = 1 + (unsigned long)flip; n <= resume_reads; n += 3) {
            put_file("flash.bin", old_img, old_len);
            remove("flash.bin.otaup-state");
            ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --cut-after %lu", cli, cut), 3);
            rc = run("%s apply --flash flash.bin patch.otd --read-fault %lu%s", cli, n, flip ? " --flip" : "");
            ck_assert_msg(rc == 0, "resume, read %lu of %lu%s: exit %d: %s", n, resume_reads,
                          flip ? " flipped" : " failed", rc, out);
            ck_assert_msg(file_equals("flash.bin", new_img, new_len), "resume, read %lu%s", n,
                          flip ? " flipped" : "");
        }
    }
    /* a failed operation and a faulty read in one run: each makes the
     * executor start again (the second ended the run with exit 1) */
    for (n = reads / 4; n <= reads; n += reads / 4) {
        const char *p = out;
        int again = 0;
        put_file("flash.bin", old_img, old_len);
        remove("flash.bin.otaup-state");
        rc = run("%s apply --flash flash.bin patch.otd --fail-after 4 --read-fault %lu%s", cli, n,
                 n & 1 ? " --flip" : "");
        ck_assert_msg(rc == 0, "fail 4, read %lu: exit %d: %s", n, rc, out);
        ck_assert_msg(file_equals("flash.bin", new_img, new_len), "fail 4, read %lu", n);
        while ((p = strstr(p, " again")) != NULL) {
            again++;
            p++;
        }
        /* (a wrong bit may land where nothing depends on it) */
        ck_assert_msg(again == 2 || (n & 1), "fail 4, read %lu: %d restarts: %s", n, again, out);
    }
    ck_assert_int_eq(run("%s apply old.bin patch.otd -o o.bin --read-fault 3", cli), 2);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --flip", cli), 2);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --read-fault 0", cli), 2);
    ck_assert_int_eq(run("%s apply --flash flash.bin patch.otd --cut-after -3", cli), 2);
}
END_TEST

/* Sectors of 1 KiB: the delta's flash does not end on a 4 KiB boundary,
 * and the journal the tool adds after it must still find a place. */
START_TEST(test_small_sectors)
{
    int rc, k;
    ck_assert_int_eq(run("%s delta old.bin new.bin -o p1k.otd --sector-size 1024 --write-size 8 -q", cli), 0);
    ck_assert_int_eq(run("%s inspect p1k.otd", cli), 0);
    {
        /* the case this test is for: a flash size that is not a multiple of 4 KiB */
        const char *g = strstr(out, "sectors ");
        unsigned nsec = 0;
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(sscanf(g, "sectors %ux1024", &nsec), 1);
        ck_assert_uint_ne(nsec % 4u, 0);
    }
    ck_assert_int_eq(run("%s apply old.bin p1k.otd -o out1k.bin", cli), 0);
    ck_assert(file_equals("out1k.bin", new_img, new_len));
    put_file("flash1k.bin", old_img, old_len);
    /* cut twice (torn, then clean), then resume */
    for (k = 0; k < 2; k++) {
        rc = run("%s apply --flash flash1k.bin p1k.otd --cut-after %d %s", cli, 7 + 30 * k, k == 0 ? "--torn" : "");
        ck_assert_int_eq(rc, 3);
    }
    ck_assert_int_eq(run("%s apply --flash flash1k.bin p1k.otd", cli), 0);
    ck_assert(file_equals("flash1k.bin", new_img, new_len));
}
END_TEST

/* The file holds p[0..n) at offset `at` (whatever follows). */
static int file_holds_at(const char *name, unsigned long at, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;
    uint8_t *b = malloc(n);
    size_t got = 0;
    int eq;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        free(b);
        return 0;
    }
    if (fseek(f, (long)at, SEEK_SET) == 0) {
        got = fread(b, 1, n, f);
    }
    fclose(f);
    eq = got == n && memcmp(b, p, n) == 0;
    free(b);
    return eq;
}

/* The uniform flash of `otaup delta` without --sector-map reaches where
 * --source, --target and --scratch place the slots and the scratch area:
 * it used to end two slots and 64 KiB after --base whatever they said, so
 * that an OLD at 0x40000, a target slot at 1 MiB or a scratch area there
 * were refused as not fitting the flash (and a --scratch address alone
 * still was, the map ending at it). Each delta is applied on a FLASH
 * holding OLD at its address, cut once (torn) and resumed. */
START_TEST(test_uniform_flash_reaches_addresses)
{
    static const struct {
        const char *opts;
        unsigned long src, tgt;
    } c[] = {
        {"--source 0x40000", 0x40000, 0x40000},
        {"--source 0x40000 --scratch 0 --scratch-size 0x10000", 0x40000, 0x40000},
        {"--scratch 0x100000 --scratch-size 0x10000", 0, 0},
        {"--scratch 0x100000", 0, 0}, /* an address alone: the map reached only up to it */
        {"--source 0x40000 --scratch 0x20000", 0x40000, 0x40000},
        {"--sector-size 256 --write-size 8 --source 0x30000", 0x30000, 0x30000},
        {"--mode ab --target 0x100000", 0, 0x100000},
        {"--mode ab --source 0x80000 --target 0", 0x80000, 0},
        {"--mode ab --base 0x08000000 --source 0x08020000 --target 0x08060000", 0x20000, 0x60000},
    };
    size_t i;
    for (i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint8_t *fl = malloc(c[i].src + old_len);
        memset(fl, 0xFF, c[i].src);
        memcpy(fl + c[i].src, old_img, old_len);
        put_file("far.bin", fl, c[i].src + old_len);
        free(fl);
        ck_assert_msg(run("%s delta old.bin new.bin -o far.otd -q %s", cli, c[i].opts) == 0, "%s: %s", c[i].opts, out);
        ck_assert_int_eq(run("%s apply old.bin far.otd -o far.out", cli), 0);
        ck_assert(file_equals("far.out", new_img, new_len));
        ck_assert_int_eq(run("%s apply --flash far.bin far.otd --cut-after 3 --torn", cli), 3);
        ck_assert_msg(run("%s apply --flash far.bin far.otd", cli) == 0, "%s: %s", c[i].opts, out);
        ck_assert_msg(file_holds_at("far.bin", c[i].tgt, new_img, new_len), "%s", c[i].opts);
        if (c[i].src != c[i].tgt) {
            ck_assert_msg(file_holds_at("far.bin", c[i].src, old_img, old_len), "%s", c[i].opts);
        }
    }
    /* a --sector-map is the flash as given: too small stays refused */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o far.otd --sector-map 16x4K --source 0x40000 -q", cli), 1);
    ck_assert_ptr_nonnull(strstr(out, "must fit the flash [0x0, 0x10000)"));
}
END_TEST

/* Program units of 1 and 4 KiB (flash with large pages), in place and A/B:
 * the tool's journal slots and bounce buffer follow the write size. */
START_TEST(test_large_write_size)
{
    static const char *const modes[] = { "inplace", "ab" };
    static const unsigned sizes[] = { 1024, 4096 };
    unsigned m, w, k;
    for (m = 0; m < 2; m++) {
        for (w = 0; w < 2; w++) {
            char flash[64];
            int rc, cuts = 0;
            ck_assert_int_eq(run("%s delta old.bin new.bin -o big.otd --write-size %u --mode %s -q", cli, sizes[w],
                                 modes[m]), 0);
            ck_assert_int_eq(run("%s apply old.bin big.otd -o outbig.bin", cli), 0);
            ck_assert_msg(file_equals("outbig.bin", new_img, new_len), "%s %u", modes[m], sizes[w]);
            snprintf(flash, sizeof flash, "fbig-%s-%u.bin", modes[m], sizes[w]);
            put_file(flash, old_img, old_len);
            /* cuts (torn and clean) at growing distances, each resumed by the next run */
            for (k = 0; k < 6; k++) {
                rc = run("%s apply --flash %s big.otd --cut-after %u %s", cli, flash, 1 + 4 * k, k & 1 ? "--torn" : "");
                ck_assert_msg(rc == 3 || rc == 0, "%s %u cut %u: exit %d: %s", modes[m], sizes[w], k, rc, out);
                cuts += rc == 3;
                if (rc == 0) {
                    break;
                }
            }
            ck_assert_int_gt(cuts, 0);
            ck_assert_msg(run("%s apply --flash %s big.otd", cli, flash) == 0, "%s %u: %s", modes[m], sizes[w], out);
            ck_assert(run("%s apply --flash %s big.otd --stats", cli, flash) == 0);
            {
                /* NEW sits at the delta's target address (A/B: the other slot) */
                unsigned long ta = 0;
                const char *t;
                ck_assert_int_eq(run("%s inspect --json big.otd", cli), 0);
                t = strstr(out, "\"target_addr\":");
                ck_assert_ptr_nonnull(t);
                ta = strtoul(t + strlen("\"target_addr\":"), NULL, 10);
                ck_assert(m == 0 ? ta == 0 : ta >= old_len);
                ck_assert_msg(file_equals_at(flash, ta, new_img, new_len), "%s %u", modes[m], sizes[w]);
            }
        }
    }
}
END_TEST

/* A/B there and back on a flash from address 0: the second update reads
 * the slot above and writes NEW into the slot at 0 (--target 0 was taken
 * for "the default" and NEW went above the source instead). A target slot
 * that overlaps the source is refused up front with a clear message. */
START_TEST(test_ab_back_to_slot0)
{
    unsigned long ta;
    const char *t;
    int rc;
    ck_assert_int_eq(run("%s delta old.bin new.bin -o there.otd --mode ab --sector-map 16x4K -q", cli), 0);
    put_file("fab.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash fab.bin there.otd", cli), 0);
    ck_assert(file_equals_at("fab.bin", 5 * 4096, new_img, new_len));
    /* again: A/B keeps OLD in its slot, and NEW is already in the other */
    ck_assert_int_eq(run("%s apply --flash fab.bin there.otd", cli), 0);
    ck_assert_ptr_nonnull(strstr(out, "already holds the new image"));
    /* back: the next image, from the slot above into the slot at 0 */
    {
        uint8_t *next = malloc(old_len);
        memcpy(next, old_img, old_len);
        next[10] ^= 0x55;
        next[9000] ^= 0x33;
        put_file("next.bin", next, old_len);
        free(next);
    }
    ck_assert_int_eq(run("%s delta new.bin next.bin -o back.otd --mode ab --sector-map 16x4K --source 0x5000 "
                         "--target 0 -q", cli), 0);
    ck_assert_int_eq(run("%s inspect --json back.otd", cli), 0);
    t = strstr(out, "\"target_addr\":");
    ck_assert_ptr_nonnull(t);
    ta = strtoul(t + strlen("\"target_addr\":"), NULL, 10);
    ck_assert_uint_eq(ta, 0);
    rc = run("%s apply --flash fab.bin back.otd --cut-after 3 --torn", cli);
    ck_assert_int_eq(rc, 3);
    ck_assert_int_eq(run("%s apply --flash fab.bin back.otd", cli), 0);
    {
        /* the slot at 0 holds the next image, the slot above is untouched */
        char path[512];
        uint8_t *b = malloc(5 * 4096 + new_len);
        FILE *f;
        snprintf(path, sizeof path, "%s/fab.bin", dir);
        f = fopen(path, "rb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fread(b, 1, 5 * 4096 + new_len, f), 5 * 4096 + new_len);
        fclose(f);
        ck_assert(memcmp(b, old_img, 10) == 0 && b[10] == (old_img[10] ^ 0x55));
        ck_assert(memcmp(b + 11, old_img + 11, 9000 - 11) == 0 && b[9000] == (old_img[9000] ^ 0x33));
        ck_assert(memcmp(b + 9001, old_img + 9001, old_len - 9001) == 0);
        ck_assert(memcmp(b + 5 * 4096, new_img, new_len) == 0);
        free(b);
    }
    /* overlapping slots: refused before planning, saying why */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o ovl.otd --mode ab --target 0x2000 -q", cli), 1);
    ck_assert_ptr_nonnull(strstr(out, "overlap the old image"));
    ck_assert(!exists("ovl.otd"));
    /* a flash too small for the images: exit 1, saying what must fit */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o small.otd --sector-map 2x4K -q", cli), 1);
    ck_assert_ptr_nonnull(strstr(out, "must fit the flash [0x0, 0x2000)"));
    ck_assert(!exists("small.otd"));
    /* a map past the 32-bit address space: a usage error that says so */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o huge.otd --sector-map 1048576x4096 -q", cli), 2);
    ck_assert_ptr_nonnull(strstr(out, "32-bit address space"));
}
END_TEST

/* Geometries with no room for the journal's own run after them: a sector
 * map with the most runs a map may have, and a flash that ends at the top
 * of the address space. otaup delta made these, and otaup apply refused
 * them ("cannot place a journal"); it now merges adjacent runs of one
 * size and puts the journal in two more sectors of the last run, or
 * before the base. */
START_TEST(test_journal_placement)
{
    static const char *const geos[] = {
        "--sector-map 1x4K,1x8K,1x4K,1x8K,1x4K,1x8K,1x4K,6x4K",          /* 8 runs */
        "--sector-map 1x4K,1x8K,1x4K,1x8K,1x4K,1x8K,1x4K,24x1K --base 0x20000", /* 8 runs, small last */
        "--base 0xFFFF0000 --sector-map 16x4K",                          /* ends at 2^32 */
        /* 8 runs, end sectors too small for 8 slots of 1 KiB: the first two merge */
        "--sector-map 1x1K,1x1K,2x4K,1x8K,1x4K,1x8K,2x4K,40x1K --write-size 1024",
    };
    static const char *const modes[] = { "inplace", "ab" };
    unsigned gi, m;
    for (gi = 0; gi < sizeof geos / sizeof geos[0]; gi++) {
        for (m = 0; m < 2; m++) {
            unsigned long ta = 0, base = 0;
            const char *t;
            int rc;
            ck_assert_msg(run("%s delta old.bin new.bin -o jp.otd --mode %s --write-size 8 -q %s", cli, modes[m],
                              geos[gi]) == 0, "%s %s: %s", modes[m], geos[gi], out);
            rc = run("%s apply old.bin jp.otd -o jp.bin", cli);
            ck_assert_msg(rc == 0, "%s %s: exit %d: %s", modes[m], geos[gi], rc, out);
            ck_assert(file_equals("jp.bin", new_img, new_len));
            ck_assert_int_eq(run("%s inspect --json jp.otd", cli), 0);
            t = strstr(out, "\"target_addr\":");
            ck_assert_ptr_nonnull(t);
            ta = strtoul(t + strlen("\"target_addr\":"), NULL, 10);
            t = strstr(out, "\"base\":");
            ck_assert_ptr_nonnull(t);
            base = strtoul(t + strlen("\"base\":"), NULL, 10);
            put_file("jp-flash.bin", old_img, old_len);
            ck_assert_int_eq(run("%s apply --flash jp-flash.bin jp.otd --cut-after 4 --torn", cli), 3);
            ck_assert_int_eq(run("%s apply --flash jp-flash.bin jp.otd --cut-after 9", cli), 3);
            ck_assert_msg(run("%s apply --flash jp-flash.bin jp.otd", cli) == 0, "%s %s: %s", modes[m], geos[gi], out);
            ck_assert(!exists("jp-flash.bin.otaup-state"));
            ck_assert_msg(file_equals_at("jp-flash.bin", ta - base, new_img, new_len), "%s %s", modes[m], geos[gi]);
        }
    }
}
END_TEST

/* The whole of a file in a buffer the caller frees (NULL if it is missing). */
static uint8_t *slurp(const char *name, size_t *n)
{
    char path[512];
    FILE *f;
    uint8_t *b;
    long len;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    ck_assert(fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0);
    b = malloc((size_t)len + 1u);
    ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* dir/name holds p[0..n) exactly (p NULL: name does not exist) */
static int same_file(const char *name, const uint8_t *p, size_t n)
{
    size_t len = 0;
    uint8_t *b = slurp(name, &len);
    int eq = b == NULL ? p == NULL : p != NULL && len == n && memcmp(b, p, n) == 0;
    free(b);
    return eq;
}

/* The sidecar FLASH.otaup-state across runs that go wrong around it:
 * - FLASH with bytes of its own after the images (a region the update
 *   never touches) keeps them when the update is resumed after a cut, as
 *   when it runs in one go (the resume wrote FLASH up to the images only);
 * - a sidecar that cannot be written leaves FLASH as it was, so that the
 *   next run starts again (FLASH was rewritten half updated first, and no
 *   run could finish it: "does not hold the image");
 * - a sidecar left by another delta's update is refused before any flash
 *   operation, saying so (A/B: the run erased and programmed the target
 *   slot, then failed on a hash; in place: "session id does not match"),
 *   and the first delta still finishes. */
START_TEST(test_flash_sidecar)
{
    static const uint32_t user_at = 0xB000, user_len = 0x900;
    uint8_t *img, *f0, *s0;
    size_t flen = user_at + user_len, n0, ns0;
    unsigned k, ops;
    /* 1. bytes after the images: A/B, NEW in [0x5000, 0xA000) */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o ab.otd --mode ab --sector-map 16x4K -q", cli), 0);
    img = malloc(flen);
    memset(img, 0xFF, flen);
    memcpy(img, old_img, old_len);
    for (k = 0; k < user_len; k++) {
        img[user_at + k] = (uint8_t)(k * 7u + 1u);
    }
    for (k = 0; k < 2; k++) {
        int rc;
        put_file("fu.bin", img, flen);
        if (k == 1) {
            ck_assert_int_eq(run("%s apply --flash fu.bin ab.otd --cut-after 5 --torn", cli), 3);
        }
        rc = run("%s apply --flash fu.bin ab.otd", cli);
        ck_assert_msg(rc == 0, "%s: exit %d: %s", k ? "resumed" : "one go", rc, out);
        ck_assert_msg(file_equals_at("fu.bin", user_at, img + user_at, user_len), "%s: bytes after the images lost",
                      k ? "resumed" : "one go");
        {
            size_t n = 0;
            uint8_t *b = slurp("fu.bin", &n);
            ck_assert_ptr_nonnull(b);
            ck_assert_uint_eq(n, flen);
            ck_assert(memcmp(b, old_img, old_len) == 0 && memcmp(b + 0x5000, new_img, new_len) == 0);
            free(b);
        }
    }
    free(img);

    /* 2. the sidecar cannot be written (its temporary name is taken by a directory) */
    put_file("fs.bin", old_img, old_len);
    {
        char path[512];
        snprintf(path, sizeof path, "%s/fs.bin.otaup-state.tmp", dir);
        ck_assert_int_eq(mkdir(path, 0700), 0);
        ck_assert_int_eq(run("%s apply --flash fs.bin patch.otd --cut-after 12", cli), 1);
        ck_assert_int_eq(rmdir(path), 0);
    }
    ck_assert_msg(same_file("fs.bin", old_img, old_len), "FLASH changed without its sidecar");
    ck_assert(!exists("fs.bin.otaup-state"));
    ck_assert_msg(run("%s apply --flash fs.bin patch.otd", cli) == 0, "%s", out);
    ck_assert(file_equals("fs.bin", new_img, new_len));

    /* 3. another delta's sidecar. A/B: the other delta's OLD is NEW */
    ck_assert_int_eq(run("%s delta new.bin old.bin -o ab2.otd --mode ab --sector-map 16x4K -q", cli), 0);
    put_file("fo.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash fo.bin ab.otd --cut-after 9", cli), 3);
    f0 = slurp("fo.bin", &n0);
    s0 = slurp("fo.bin.otaup-state", &ns0);
    ck_assert(f0 != NULL && s0 != NULL);
    ck_assert_int_eq(run("%s apply --flash fo.bin ab2.otd --stats", cli), 1);
    ck_assert_msg(strstr(out, "fo.bin.otaup-state") != NULL && strstr(out, "flash operations:") == NULL, "%s", out);
    ck_assert_msg(same_file("fo.bin", f0, n0) && same_file("fo.bin.otaup-state", s0, ns0), "files changed: %s", out);
    free(f0);
    free(s0);
    ck_assert_msg(run("%s apply --flash fo.bin ab.otd", cli) == 0, "%s", out);
    ck_assert(file_equals_at("fo.bin", 0x5000, new_img, new_len));
    /* in place, past the point of no return: NEW -> OLD on the same flash */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o ip.otd --sector-map 16x4K -q", cli), 0);
    ck_assert_int_eq(run("%s delta new.bin old.bin -o ip2.otd --sector-map 16x4K -q", cli), 0);
    put_file("fi.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash fi.bin ip.otd --stats", cli), 0);
    ops = (unsigned)stat_value("flash operations: ");
    k = 2u * ops / 3u;
    put_file("fi.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash fi.bin ip.otd --cut-after %u", cli, k), 3);
    f0 = slurp("fi.bin", &n0);
    s0 = slurp("fi.bin.otaup-state", &ns0);
    ck_assert(f0 != NULL && s0 != NULL);
    ck_assert_int_eq(run("%s apply --flash fi.bin ip2.otd", cli), 1);
    ck_assert_msg(strstr(out, "unfinished update by another delta") != NULL, "%s", out);
    ck_assert(same_file("fi.bin", f0, n0) && same_file("fi.bin.otaup-state", s0, ns0));
    free(f0);
    free(s0);
    ck_assert_msg(run("%s apply --flash fi.bin ip.otd", cli) == 0, "%s", out);
    ck_assert(file_equals("fi.bin", new_img, new_len));
    /* a cut after the last operation: the sidecar's journal shows this
     * update ended, and OLD is gone; the run after it finds it done */
    put_file("fi.bin", old_img, old_len);
    ck_assert_int_eq(run("%s apply --flash fi.bin ip.otd --cut-after %u", cli, ops), 3);
    ck_assert_msg(run("%s apply --flash fi.bin ip.otd", cli) == 0, "%s", out);
    ck_assert(file_equals("fi.bin", new_img, new_len) && !exists("fi.bin.otaup-state"));
}
END_TEST

/* One run at a time on a FLASH: while another process holds FLASH locked
 * (as a running otaup apply --flash does), a run is refused with exit 1
 * and a message, and neither FLASH nor a sidecar is touched; once the
 * lock goes, the same command runs. */
START_TEST(test_flash_locked)
{
    char path[512];
    int fd;
    put_file("fl.bin", old_img, old_len);
    snprintf(path, sizeof path, "%s/fl.bin", dir);
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    ck_assert_int_eq(run("%s apply --flash fl.bin patch.otd --cut-after 4", cli), 1);
    ck_assert_msg(strstr(out, "in use by another otaup apply") != NULL, "%s", out);
    ck_assert(same_file("fl.bin", old_img, old_len) && !exists("fl.bin.otaup-state"));
    close(fd);
    ck_assert_int_eq(run("%s apply --flash fl.bin patch.otd --cut-after 4", cli), 3);
    /* a run that resumes locks FLASH too */
    fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
    ck_assert_int_eq(run("%s apply --flash fl.bin patch.otd", cli), 1);
    ck_assert_msg(strstr(out, "in use by another otaup apply") != NULL, "%s", out);
    ck_assert(exists("fl.bin.otaup-state"));
    close(fd);
    ck_assert_msg(run("%s apply --flash fl.bin patch.otd", cli) == 0, "%s", out);
    ck_assert(file_equals("fl.bin", new_img, new_len) && !exists("fl.bin.otaup-state"));
}
END_TEST

/* Options without their value, and counts that are not positive numbers:
 * exit 2 with a message that names the option ("unknown option
 * '--flash'" was printed for a missing value; " -3" and a number above
 * 2^64 - 1 were taken, as 2^64 - 3 and 2^64 - 1). */
START_TEST(test_apply_options)
{
    static const char *const bad[] = { "--flash", "--flash f.bin patch.otd --cut-after",
                                       "old.bin patch.otd -o", "--flash f.bin patch.otd --read-fault" };
    static const char *const nums[] = { "' -3'", "' 3'", "+3", "99999999999999999999", "3x", "0", "0x" };
    unsigned k;
    put_file("f.bin", old_img, old_len);
    for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        ck_assert_int_eq(run("%s apply %s", cli, bad[k]), 2);
        ck_assert_msg(strstr(out, "needs a value") != NULL, "%s: %s", bad[k], out);
    }
    for (k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        ck_assert_msg(run("%s apply --flash f.bin patch.otd --cut-after %s", cli, nums[k]) == 2, "%s: %s", nums[k],
                      out);
        ck_assert_msg(strstr(out, "needs a positive number") != NULL, "%s: %s", nums[k], out);
    }
    /* combinations that do not go together: the usage, after what is wrong */
    {
        static const char *const combo[][2] = {
            { "--flash f.bin patch.otd -o o.bin", "--flash and -o exclude each other" },
            { "old.bin patch.otd -o o.bin --cut-after 3", "need --flash" },
            { "--flash f.bin patch.otd --torn", "--torn needs --cut-after or --fail-after" },
            { "--flash f.bin patch.otd --flip", "--flip needs --read-fault" },
            { "--flash f.bin", "--flash FLASH takes one PATCH" },
            { "old.bin patch.otd", "give OLD PATCH -o OUT" },
            { "old.bin patch.otd x.bin -o o.bin", "unexpected argument 'x.bin'" },
        };
        for (k = 0; k < sizeof combo / sizeof combo[0]; k++) {
            ck_assert_int_eq(run("%s apply %s", cli, combo[k][0]), 2);
            ck_assert_msg(strstr(out, combo[k][1]) != NULL && strstr(out, "usage:") != NULL, "%s: %s", combo[k][0],
                          out);
        }
    }
    ck_assert(same_file("f.bin", old_img, old_len) && !exists("f.bin.otaup-state") && !exists("o.bin"));
    /* a delta whose flash is larger than the simulation takes (3 sectors
     * of 1 GiB): refused before anything is allocated or written */
    ck_assert_int_eq(run("%s delta old.bin new.bin -o huge.otd --sector-size 0x40000000 -q", cli), 0);
    ck_assert_int_eq(run("%s apply --flash f.bin huge.otd", cli), 1);
    ck_assert_msg(strstr(out, "the simulated flash holds at most") != NULL, "%s", out);
    ck_assert(same_file("f.bin", old_img, old_len) && !exists("f.bin.otaup-state"));
    /* hex as every number of the tool */
    ck_assert_int_eq(run("%s apply --flash f.bin patch.otd --cut-after 0x10", cli), 3);
}
END_TEST

int main(void)
{
    int failed;
    SRunner *sr;
    Suite *s = suite_create("cli_apply");
    TCase *tc = tcase_create("cli");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_file_mode);
    tcase_add_test(tc, test_flash_cut_every_op);
    tcase_add_test(tc, test_flash_fail_every_op);
    tcase_add_test(tc, test_flash_read_fault_every_read);
    tcase_add_test(tc, test_small_sectors);
    tcase_add_test(tc, test_large_write_size);
    tcase_add_test(tc, test_ab_back_to_slot0);
    tcase_add_test(tc, test_uniform_flash_reaches_addresses);
    tcase_add_test(tc, test_journal_placement);
    tcase_add_test(tc, test_flash_sidecar);
    tcase_add_test(tc, test_apply_options);
    tcase_add_test(tc, test_flash_locked);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
