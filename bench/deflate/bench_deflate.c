/*
 * otaup-bench-deflate: size and speed of otaup's raw-deflate encoder
 * (lib/server/deflate_opt.c) against zlib levels 6 and 9, zlib level 9
 * with deflateTune() at its maxima, and libdeflate level 12 (32 KiB
 * window only; when it is installed), on three classes of input:
 *
 *   inner   the inner record streams the planner compresses: for every
 *           image pair, the delta of `otaup delta --mode ab --sector-size
 *           4096 --ram 65536` is made through the public planner API and
 *           each of its restart segments is inflated back; every segment
 *           is one independent stream, as in the delta;
 *   images  the new image of every pair, whole;
 *   text    the project's own documentation and C sources, concatenated.
 *
 * Each class runs with a 32 KiB window (2^15) and a 4 KiB one (2^12, a
 * small terminal). Every output is inflated with zlib at its window bits
 * and compared with the input before it counts. Sizes are totals over
 * the class; ratios are to zlib level 9 with the same window; speed is
 * input bytes per second of compression, measured as the process's CPU
 * time (the machine running it may be shared), best of up to three
 * rounds.
 *
 *   otaup-bench-deflate [--data DIR] [--src DIR] [--secs S] [--effort-max N] [--dump OUT]
 *
 * DIR (default: bench/data of this tree) holds pairs/<name>/{old,new}
 * (bench/delta/fetch.sh makes them);
 * --src is the source tree for the text class (default: this tree);
 * --dump writes every input of the three classes to files in OUT
 * (inner-<pair>#<segment>, image-<pair>, text) and exits.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#ifdef OTAUP_BENCH_LIBDEFLATE
#include <libdeflate.h>
#endif

#include "otaup/otaup.h"
#include "otaup/delta.h"
#include "otaup/record.h"
#include "server/deflate_opt.h"

#ifndef OTAUP_BENCH_SRC_DIR
#define OTAUP_BENCH_SRC_DIR "."
#endif

typedef struct blob {
    uint8_t *p;
    size_t len, cap;
} blob;

typedef struct input {
    char name[64];
    blob data;
} input;

typedef struct set {
    input *v;
    size_t n, cap;
} set;

static void die(const char *msg)
{
    fprintf(stderr, "bench_deflate: %s\n", msg);
    exit(2);
}

static void blob_reserve(blob *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->len + n) {
            c *= 2;
        }
        b->p = realloc(b->p, c);
        if (b->p == NULL) {
            die("out of memory");
        }
        b->cap = c;
    }
}

static void blob_put(blob *b, const void *p, size_t n)
{
    blob_reserve(b, n);
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
}

static int read_file(const char *path, blob *b)
{
    FILE *f = fopen(path, "rb");
    uint8_t tmp[65536];
    size_t n;
    if (f == NULL) {
        return -1;
    }
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) {
        blob_put(b, tmp, n);
    }
    fclose(f);
    return 0;
}

static void set_add(set *s, const char *name, blob data)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        if (s->v == NULL) {
            die("out of memory");
        }
    }
    snprintf(s->v[s->n].name, sizeof s->v[s->n].name, "%s", name);
    s->v[s->n].data = data;
    s->n++;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sorted entries of a directory (not starting with '.'), NULL-terminated */
static char **list_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **v = NULL;
    size_t n = 0;
    if (d == NULL) {
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        v = realloc(v, (n + 2) * sizeof *v);
        if (v == NULL) {
            die("out of memory");
        }
        v[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (v == NULL) {
        return NULL;
    }
    v[n] = NULL;
    qsort(v, n, sizeof *v, cmp_str);
    return v;
}

static void free_list(char **v)
{
    size_t i;
    for (i = 0; v != NULL && v[i] != NULL; i++) {
        free(v[i]);
    }
    free(v);
}

/* raw inflate of in[0..len) with the given window, appended to *out */
static int inflate_all(const uint8_t *in, size_t len, int wbits, blob *out)
{
    z_stream z;
    uint8_t tmp[65536];
    int r;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -wbits) != Z_OK) {
        return -1;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    do {
        z.next_out = tmp;
        z.avail_out = sizeof tmp;
        r = inflate(&z, Z_NO_FLUSH);
        blob_put(out, tmp, sizeof tmp - z.avail_out);
    } while (r == Z_OK);
    inflateEnd(&z);
    return r == Z_STREAM_END && z.avail_in == 0 ? 0 : -1;
}

/*
 * The planner's inner streams for one pair: plan the delta, walk the
 * outer records and inflate the DATA of each restart segment.
 */
static void add_inner(set *s, const char *pair, const blob *old, const blob *nw)
{
    otaup_delta_options o;
    otaup_delta *d = NULL;
    otaup_delta_header h;
    const uint8_t *bytes;
    size_t len, off;
    uint32_t body;
    blob seg = { 0 };
    int nseg = 0, rc;
    size_t maxlen = old->len > nw->len ? old->len : nw->len;
    otaup_delta_options_init(&o, OTAUP_DELTA_OPTIONS_VERSION);
    /* as `otaup delta --sector-size 4096`: two slots and a scratch area */
    otaup_geometry_uniform(&o.geo, 0, 4096, (uint32_t)((maxlen + 4095u) / 4096u * 2u + 18u), 1);
    o.layout = OTAUP_LAYOUT_AB;
    o.ram = 65536;
    rc = otaup_delta_create(old->p, old->len, NULL, nw->p, nw->len, &o, &d);
    if (rc < 0) {
        fprintf(stderr, "bench_deflate: %s: planner: %s\n", pair, otaup_strerror(rc));
        return;
    }
    bytes = otaup_delta_bytes(d, &len);
    if (otaup_delta_check(bytes, len, &h, &body) < 0) {
        die("planner delta does not check");
    }
    off = body;
    while (off < len) {
        otaup_record r;
        int n = otaup_record_decode(bytes + off, len - off, &r);
        if (n <= 0) {
            die("cannot walk the delta body");
        }
        off += (size_t)n;
        if (r.type == OTAUP_REC_SYNC || r.type == OTAUP_REC_VERIFY) {
            if (seg.len > 0) {
                blob in = { 0 };
                char name[64];
                if (inflate_all(seg.p, seg.len, h.window_bits, &in) < 0) {
                    die("a planner segment does not inflate");
                }
                snprintf(name, sizeof name, "%s#%d", pair, nseg++);
                set_add(s, name, in);
                seg.len = 0;
            }
        } else if (r.type == OTAUP_REC_DATA) {
            blob_put(&seg, r.data, r.data_len);
        }
    }
    free(seg.p);
    otaup_delta_free(d);
}

static void add_text(set *s, const char *src)
{
    static const char *const dirs[] = { "docs", "include/otaup", "lib/core", "lib/server", "tests", NULL };
    blob all = { 0 };
    size_t i, j;
    for (i = 0; dirs[i] != NULL; i++) {
        char path[4096];
        char **names;
        snprintf(path, sizeof path, "%s/%s", src, dirs[i]);
        names = list_dir(path);
        for (j = 0; names != NULL && names[j] != NULL; j++) {
            size_t l = strlen(names[j]);
            if (l > 2 && (strcmp(names[j] + l - 2, ".c") == 0 || strcmp(names[j] + l - 2, ".h") == 0 ||
                          (l > 3 && strcmp(names[j] + l - 3, ".md") == 0))) {
                snprintf(path, sizeof path, "%s/%s/%s", src, dirs[i], names[j]);
                read_file(path, &all);
            }
        }
        free_list(names);
    }
    if (all.len == 0) {
        die("no text found under --src");
    }
    set_add(s, "sources+docs", all);
}

/* ---- compressors ---------------------------------------------------------------- */

typedef struct comp {
    const char *name;
    int kind;   /* 0 zlib, 1 zlib tuned, 2 libdeflate, 3 otaup */
    int level;  /* zlib / libdeflate level, otaup effort */
} comp;

static const comp k_comps[] = {
    { "zlib -6", 0, 6 },         { "zlib -9", 0, 9 },         { "zlib -9 tuned", 1, 9 },
    { "libdeflate -12", 2, 12 }, { "otaup effort 1", 3, 1 }, { "otaup effort 2", 3, 2 },
    { "otaup effort 3", 3, 3 },  { "otaup effort 4", 3, 4 },
};
#define NCOMP (sizeof k_comps / sizeof k_comps[0])

/* compress one input; returns the size (0: not applicable); the stream in *out */
static size_t compress_one(const comp *c, const blob *in, int wbits, blob *out)
{
    out->len = 0;
    if (c->kind <= 1) {
        z_stream z;
        size_t cap;
        memset(&z, 0, sizeof z);
        if (deflateInit2(&z, c->level, Z_DEFLATED, -wbits, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
            die("deflateInit2");
        }
        if (c->kind == 1) {
            deflateTune(&z, 258, 258, 258, 32768);
        }
        cap = deflateBound(&z, in->len);
        blob_reserve(out, cap);
        z.next_in = in->p;
        z.avail_in = (uInt)in->len;
        z.next_out = out->p;
        z.avail_out = (uInt)out->cap;
        if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
            die("deflate");
        }
        out->len = z.total_out;
        deflateEnd(&z);
    } else if (c->kind == 2) {
#ifdef OTAUP_BENCH_LIBDEFLATE
        struct libdeflate_compressor *lc;
        size_t cap;
        if (wbits != 15) {
            return 0; /* its window is always 32 KiB */
        }
        lc = libdeflate_alloc_compressor(c->level);
        if (lc == NULL) {
            die("libdeflate_alloc_compressor");
        }
        cap = libdeflate_deflate_compress_bound(lc, in->len);
        blob_reserve(out, cap);
        out->len = libdeflate_deflate_compress(lc, in->p, in->len, out->p, out->cap);
        libdeflate_free_compressor(lc);
#else
        return 0;
#endif
    } else {
        uint8_t *o;
        size_t n;
        if (otaup_dfl_compress(in->p, in->len, (unsigned)wbits, c->level, &o, &n) < 0) {
            die("otaup_dfl_compress");
        }
        blob_put(out, o, n);
        free(o);
    }
    return out->len;
}

#ifdef OTAUP_BENCH_LIBDEFLATE
static const int have_libdeflate = 1;
#else
static const int have_libdeflate = 0;
#endif

typedef struct result {
    size_t bytes;
    double secs;
    double mbps;
    int na;
} result;

static void run_class(const char *title, const set *s, int wbits, double secs, int effort_max, result *res)
{
    blob out = { 0 }, chk = { 0 };
    size_t ci, i, total_in = 0;
    for (i = 0; i < s->n; i++) {
        total_in += s->v[i].data.len;
    }
    for (ci = 0; ci < NCOMP; ci++) {
        const comp *c = &k_comps[ci];
        double best = 1e30, t0, t;
        int rounds = 0;
        res[ci].bytes = 0;
        res[ci].na = 0;
        if ((c->kind == 3 && c->level > effort_max) || (c->kind == 2 && (wbits != 15 || !have_libdeflate))) {
            res[ci].na = 1;
            continue;
        }
        /* sizes and the check */
        for (i = 0; i < s->n; i++) {
            size_t n = compress_one(c, &s->v[i].data, wbits, &out);
            chk.len = 0;
            if (inflate_all(out.p, n, wbits, &chk) < 0 || chk.len != s->v[i].data.len ||
                memcmp(chk.p, s->v[i].data.p, chk.len) != 0) {
                fprintf(stderr, "bench_deflate: %s: %s (window 2^%d) does not inflate back\n", c->name,
                        s->v[i].name, wbits);
                exit(1);
            }
            res[ci].bytes += n;
        }
        /* time: whole class per round, best of the rounds within the budget */
        do {
            t0 = now();
            for (i = 0; i < s->n; i++) {
                compress_one(c, &s->v[i].data, wbits, &out);
            }
            t = now() - t0;
            if (t < best) {
                best = t;
            }
            rounds++;
        } while (rounds < 3 && best * (rounds + 1) < secs);
        res[ci].secs = best;
        res[ci].mbps = (double)total_in / best / 1e6;
    }
    printf("\n#### %s, window 2^%d (%zu input%s, %zu bytes)\n\n", title, wbits, s->n, s->n == 1 ? "" : "s",
           total_in);
    printf("| encoder | bytes | ratio to zlib -9 | MB/s |\n|---|---:|---:|---:|\n");
    for (ci = 0; ci < NCOMP; ci++) {
        if (res[ci].na) {
            printf("| %s | n/a | | |\n", k_comps[ci].name);
            continue;
        }
        printf("| %s | %zu | %.4f | %.1f |\n", k_comps[ci].name, res[ci].bytes,
               (double)res[ci].bytes / (double)res[1].bytes, (double)total_in / res[ci].secs / 1e6);
    }
    fflush(stdout);
    free(out.p);
    free(chk.p);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *src = OTAUP_BENCH_SRC_DIR, *dump = NULL;
    double secs = 2.0;
    int effort_max = 4, i, w;
    set inner = { 0 }, images = { 0 }, text = { 0 };
    char path[4096], defdata[4096];
    char **pairs;
    size_t k, ci;
    result res[6][NCOMP];
    static const char *const cols[6] = { "inner 2^15", "images 2^15", "text 2^15",
                                         "inner 2^12", "images 2^12", "text 2^12" };
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strcmp(argv[i], "--src") == 0 && i + 1 < argc) {
            src = argv[++i];
        } else if (strcmp(argv[i], "--secs") == 0 && i + 1 < argc) {
            secs = atof(argv[++i]);
        } else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) {
            dump = argv[++i];
        } else if (strcmp(argv[i], "--effort-max") == 0 && i + 1 < argc) {
            effort_max = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--data DIR] [--src DIR] [--secs S] [--effort-max N] [--dump OUT]\n", argv[0]);
            return 2;
        }
    }
    if (data == NULL) {
        if (snprintf(defdata, sizeof defdata, "%s/bench/data", src) >= (int)sizeof defdata) {
            die("--src path too long");
        }
        data = defdata;
    }
    if (snprintf(path, sizeof path, "%s/pairs", data) >= (int)sizeof path) {
        die("--data path too long");
    }
    pairs = list_dir(path);
    if (pairs == NULL) {
        die("no pairs under DIR/pairs (run bench/delta/fetch.sh, or give --data DIR)");
    }
    for (k = 0; pairs[k] != NULL; k++) {
        blob old = { 0 }, nw = { 0 };
        if (snprintf(path, sizeof path, "%s/pairs/%s/old", data, pairs[k]) >= (int)sizeof path ||
            read_file(path, &old) < 0) {
            continue;
        }
        if (snprintf(path, sizeof path, "%s/pairs/%s/new", data, pairs[k]) >= (int)sizeof path ||
            read_file(path, &nw) < 0) {
            free(old.p);
            continue;
        }
        fprintf(stderr, "bench_deflate: planning %s\n", pairs[k]);
        add_inner(&inner, pairs[k], &old, &nw);
        free(old.p);
        set_add(&images, pairs[k], nw);
    }
    free_list(pairs);
    add_text(&text, src);
    if (dump != NULL) {
        const set *sets[3] = { &inner, &images, &text };
        static const char *const pre[3] = { "inner-", "image-", "" };
        int c;
        for (c = 0; c < 3; c++) {
            for (k = 0; k < sets[c]->n; k++) {
                FILE *f;
                snprintf(path, sizeof path, "%s/%s%s", dump, pre[c], c == 2 ? "text" : sets[c]->v[k].name);
                f = fopen(path, "wb");
                if (f == NULL || fwrite(sets[c]->v[k].data.p, 1, sets[c]->v[k].data.len, f) != sets[c]->v[k].data.len) {
                    die("cannot write --dump files");
                }
                fclose(f);
            }
        }
        return 0;
    }
    printf("`otaup-bench-deflate`: sizes are totals per class, ratio to zlib -9 with the same window; "
           "speed is MB of input per CPU second.\n");
    for (w = 15; w >= 12; w -= 3) {
        int c = w == 15 ? 0 : 3;
        run_class("Inner streams of the planner", &inner, w, secs, effort_max, res[c]);
        run_class("New images", &images, w, secs, effort_max, res[c + 1]);
        run_class("Text (the project's docs and C sources)", &text, w, secs, effort_max, res[c + 2]);
    }
    /* summary: ratio to zlib -9 (speed) per class and window */
    printf("\n#### Summary: size ratio to zlib -9 (MB/s)\n\n| encoder |");
    for (w = 0; w < 6; w++) {
        printf(" %s |", cols[w]);
    }
    printf("\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (ci = 0; ci < NCOMP; ci++) {
        printf("| %s |", k_comps[ci].name);
        for (w = 0; w < 6; w++) {
            if (res[w][ci].na) {
                printf(" n/a |");
            } else {
                printf(" %.3f (%.1f) |", (double)res[w][ci].bytes / (double)res[w][1].bytes,
                       (double)res[w][ci].bytes > 0 ? res[w][ci].mbps : 0.0);
            }
        }
        printf("\n");
    }
    for (k = 0; k < inner.n; k++) {
        free(inner.v[k].data.p);
    }
    for (k = 0; k < images.n; k++) {
        free(images.v[k].data.p);
    }
    free(inner.v);
    free(images.v);
    free(text.v[0].data.p);
    free(text.v);
    return 0;
}
