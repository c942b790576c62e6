/*
 * otaup's raw-deflate encoder (RFC 1951). See deflate_opt.h and
 * docs/deflate.md.
 *
 * Layout of this file:
 *   1. symbols of RFC 1951 (length and distance codes)
 *   2. bit writer and output buffer
 *   3. Huffman codes: package-merge code lengths, canonical codes
 *   4. blocks: histograms, dynamic headers, exact sizes, emission
 *   5. block splitting by an entropy estimate
 *   6. lazy parsing over hash chains (effort 1, 2)
 *   7. binary-tree match finder (effort 3, 4)
 *   8. near-optimal parsing with an iterated cost model
 *   9. the stream: input buffer, window, chunks, flushes
 *
 * Positions are indices into the input buffer `buf`. Real data starts at
 * `bias` = window + 1, so that position 0 (used as "none" in every table)
 * is always farther back than the window and is rejected by the same
 * distance test as any stale entry.
 */
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "server/deflate_opt.h"

/* ---- 1. symbols --------------------------------------------------------------- */

#define MIN_MATCH 3u
#define MAX_MATCH 258u
#define NUM_LL 286u   /* literal/length symbols that may appear */
#define NUM_D 30u     /* distance symbols */
#define NUM_CL 19u    /* code-length symbols */
#define EOB 256u
#define MAX_BITS 15u
#define MAX_CL_BITS 7u
#define STORED_MAX 65535u

static const uint16_t k_len_base[29] = { 3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                         31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const uint8_t k_len_extra[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                         2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const uint16_t k_dist_base[30] = { 1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                          33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                          1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const uint8_t k_dist_extra[30] = { 0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                          6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };
/* order in which code-length code lengths are sent */
static const uint8_t k_cl_order[NUM_CL] = { 16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15 };

static inline unsigned ilog2(uint32_t x) /* x > 0 */
{
    return 31u - (unsigned)__builtin_clz(x);
}

/* length (3..258) -> symbol 257..285 */
static inline unsigned len_sym(unsigned l)
{
    unsigned x, nb;
    if (l == MAX_MATCH) {
        return 285u;
    }
    x = l - 3u;
    if (x < 8u) {
        return 257u + x;
    }
    nb = ilog2(x);
    return 257u + 4u * (nb - 1u) + ((x >> (nb - 2u)) & 3u);
}

/* distance (1..32768) -> slot 0..29 */
static inline unsigned dist_slot(uint32_t d)
{
    uint32_t x = d - 1u;
    unsigned nb;
    if (x < 4u) {
        return x;
    }
    nb = ilog2(x);
    return 2u * nb + ((x >> (nb - 1u)) & 1u);
}

/* items: a literal is its byte (< 65536); a match is (len << 16) | (dist - 1) */
#define ITEM_MATCH(len, dist) (((uint32_t)(len) << 16) | ((uint32_t)(dist) - 1u))
#define ITEM_LEN(it) ((it) >> 16)
#define ITEM_DIST(it) (((it) & 0xFFFFu) + 1u)
#define ITEM_SPAN(it) ((it) >> 16 ? (it) >> 16 : 1u)

/* ---- parameters ----------------------------------------------------------------- */

typedef struct dfl_params {
    uint32_t chunk;    /* input bytes compressed together (block splitting sees this far) */
    unsigned chain;    /* hash chains: candidates examined */
    unsigned good;     /* hash chains: examine a quarter when the previous match is this long */
    unsigned lazy;     /* hash chains: no lazy search after a match this long */
    unsigned nice;     /* stop searching at this length; binary tree: key length, and a
                          match this long is taken whole (positions inside it are not searched) */
    unsigned depth;    /* binary tree: nodes visited per position */
    unsigned passes;   /* optimal parsing: passes per block */
    unsigned rounds;   /* optimal parsing: further rounds of splitting the parse and parsing again */
    unsigned split_k;  /* block splitting: candidate boundaries per chunk */
} dfl_params;

/* Figures measured on the benchmark inputs (bench/deflate, docs/deflate.md). */
static const dfl_params k_params[4] = {
    { 1u << 18, 16, 8, 16, 64, 0, 0, 0, 24 },
    { 1u << 18, 1024, 32, 258, 258, 0, 0, 0, 96 },
    { 1u << 19, 0, 0, 0, 258, 16, 2, 0, 96 },
    { 1u << 19, 0, 0, 0, 258, 32, 3, 1, 160 },
};

/* bytes beyond a chunk kept before compressing it, so that its last
 * positions enter the match finder with their full key */
#define LOOKAHEAD (MAX_MATCH + 8u)

/* ---- the stream object ------------------------------------------------------------ */

typedef struct dfl_code {
    uint8_t ll_len[288];
    uint8_t d_len[32];
    uint16_t ll_code[288];
    uint16_t d_code[32];
    unsigned nlit, ndist;
    uint8_t cl_len[NUM_CL];
    uint16_t cl_code[NUM_CL];
    unsigned ncl;
    uint16_t rle[NUM_LL + NUM_D]; /* symbol | extra << 5 */
    unsigned nrle;
    uint64_t hdr_bits;  /* block header: 3 + 14 + code lengths */
    uint64_t data_bits; /* symbols, extra bits, EOB */
} dfl_code;

typedef struct dfl_hist {
    uint32_t ll[288];
    uint32_t d[32];
} dfl_hist;

typedef struct dfl_costs {
    uint32_t lit[256];
    uint32_t len[MAX_MATCH + 1];
    uint32_t dslot[32];
} dfl_costs;

#define FLOG_N 4096u

struct otaup_dfl {
    const dfl_params *par;
    int effort;
    unsigned wbits;
    uint32_t wsize, csize, cmask;
    /* input */
    uint8_t *buf;
    uint32_t cap, bias, pos, end;
    uint32_t ins;  /* positions < ins are in the hash chains / tree */
    uint32_t ins3; /* positions < ins3 are in head3 */
    uint32_t run_lo, run_hi; /* a run of equal bytes [run_lo, run_hi) */
    unsigned hbits, h3bits;
    uint32_t *head, *head3, *link;
    /* parse work areas (grown on demand) */
    uint32_t *items, *items2, *tmp, *alt;
    uint32_t *mc_idx, *mc, *cost, *from;
    size_t mc_cap, pos_cap;
    /* output */
    uint8_t *out;
    size_t olen, ocap, ooff;
    uint64_t bitbuf;
    unsigned nbits;
    uint64_t total_in, total_out;
    int finished, failed, final_done;
    float flog[FLOG_N]; /* f * log2(f) */
};

/* log2 without libm: exponent from the bits, mantissa (in [0.71, 1.42)) by
 * the series of 2 atanh((m-1)/(m+1)), |error| < 1e-7 */
static double dfl_log2(double x)
{
    uint64_t u;
    int e;
    double m, z, z2;
    if (x <= 0.0) {
        return 0.0;
    }
    memcpy(&u, &x, sizeof u);
    e = (int)((u >> 52) & 0x7FF) - 1023;
    u = (u & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    memcpy(&m, &u, sizeof m); /* 1 <= m < 2 */
    if (m > 1.4142135623730951) {
        m *= 0.5;
        e++;
    }
    z = (m - 1.0) / (m + 1.0);
    z2 = z * z;
    return (double)e + 2.8853900817779268 * z * (1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 / 9.0))));
}

static double flogf_(const otaup_dfl *s, uint32_t f)
{
    return f < FLOG_N ? (double)s->flog[f] : (double)f * dfl_log2((double)f);
}

/* ---- 2. bit writer and output --------------------------------------------------- */

static int out_reserve(otaup_dfl *s, size_t n)
{
    size_t need = s->olen + n + 16u, nc;
    uint8_t *p;
    if (s->failed) {
        return OTAUP_E_NOMEM;
    }
    if (s->ooff > 0 && s->ooff == s->olen) {
        s->ooff = s->olen = 0;
        need = n + 16u;
    }
    if (need <= s->ocap) {
        return 0;
    }
    if (s->ooff > 0 && s->ooff >= s->olen / 2u) {
        memmove(s->out, s->out + s->ooff, s->olen - s->ooff);
        s->olen -= s->ooff;
        s->ooff = 0;
        need = s->olen + n + 16u;
        if (need <= s->ocap) {
            return 0;
        }
    }
    nc = s->ocap ? s->ocap : 4096u;
    while (nc < need) {
        nc *= 2u;
    }
    p = realloc(s->out, nc);
    if (p == NULL) {
        s->failed = 1;
        return OTAUP_E_NOMEM;
    }
    s->out = p;
    s->ocap = nc;
    return 0;
}

/* callers reserve room first (out_reserve) */
static inline void bw_put(otaup_dfl *s, uint32_t v, unsigned n)
{
    s->bitbuf |= (uint64_t)v << s->nbits;
    s->nbits += n;
    if (s->nbits >= 32u) {
        uint8_t *o = s->out + s->olen;
        o[0] = (uint8_t)s->bitbuf;
        o[1] = (uint8_t)(s->bitbuf >> 8);
        o[2] = (uint8_t)(s->bitbuf >> 16);
        o[3] = (uint8_t)(s->bitbuf >> 24);
        s->olen += 4u;
        s->total_out += 4u;
        s->bitbuf >>= 32;
        s->nbits -= 32u;
    }
}

/* move every complete byte to the output; fewer than 8 bits stay */
static void bw_bytes(otaup_dfl *s)
{
    while (s->nbits >= 8u) {
        s->out[s->olen++] = (uint8_t)s->bitbuf;
        s->total_out++;
        s->bitbuf >>= 8;
        s->nbits -= 8u;
    }
}

/* pad with zero bits to a byte boundary */
static void bw_align(otaup_dfl *s)
{
    bw_bytes(s);
    if (s->nbits > 0u) {
        s->nbits = 8u;
        bw_bytes(s);
    }
}

/* ---- 3. Huffman codes ------------------------------------------------------------ */

/* ascending order of n distinct keys (n <= 288): bottom-up merge sort */
static void sort_keys(uint64_t *key, unsigned n)
{
    uint64_t tmp[288], *a = key, *b = tmp;
    unsigned width, i;
    /* runs of 4 by insertion */
    for (i = 0; i < n; i += 4u) {
        unsigned e = i + 4u < n ? i + 4u : n, x;
        for (x = i + 1u; x < e; x++) {
            uint64_t v = a[x];
            unsigned y = x;
            while (y > i && a[y - 1u] > v) {
                a[y] = a[y - 1u];
                y--;
            }
            a[y] = v;
        }
    }
    for (width = 4u; width < n; width *= 2u) {
        uint64_t *t;
        for (i = 0; i < n; i += 2u * width) {
            unsigned l = i, mid = i + width < n ? i + width : n, r = i + 2u * width < n ? i + 2u * width : n;
            unsigned x = l, y = mid, k = l;
            while (x < mid && y < r) {
                b[k++] = a[x] < a[y] ? a[x++] : a[y++];
            }
            while (x < mid) {
                b[k++] = a[x++];
            }
            while (y < r) {
                b[k++] = a[y++];
            }
        }
        t = a;
        a = b;
        b = t;
    }
    if (a != key) {
        memcpy(key, a, n * sizeof *key);
    }
}

/*
 * Optimal code lengths of at most maxbits for freq[0..n) (n <= 288) by
 * package-merge. List j holds the items of denomination 2^-(j+1) from the
 * deepest: leaves, merged with the pairs of list j-1. The 2m-2 cheapest
 * items of the last list are taken; a leaf's length is the number of
 * lists in which it is taken (the taken items of a list are a prefix,
 * whose leaves are the cheapest ones; its packages take twice as many
 * items of the list below). Symbols of zero frequency get length 0.
 */
static void pm_lengths(const uint32_t *freq, unsigned n, unsigned maxbits, uint8_t *len)
{
    uint64_t key[288];
    uint16_t sym[288];
    uint64_t w[2][576], lwt[288];
    uint8_t leaf[MAX_BITS][576];
    unsigned cnt[MAX_BITS], src[MAX_BITS];
    unsigned m = 0, i, j, take;
    int stable = 0;
    for (i = 0; i < n; i++) {
        len[i] = 0;
        if (freq[i] > 0) {
            key[m++] = ((uint64_t)freq[i] << 9) | i;
        }
    }
    if (m == 0) {
        return;
    }
    if (m == 1) {
        len[key[0] & 511u] = 1;
        return;
    }
    sort_keys(key, m);
    for (i = 0; i < m; i++) {
        sym[i] = (uint16_t)(key[i] & 511u);
        w[0][i] = lwt[i] = key[i] >> 9;
        leaf[0][i] = 1;
    }
    cnt[0] = m;
    src[0] = 0;
    for (j = 1; j < maxbits; j++) {
        const uint64_t *pw = w[(j - 1u) & 1u];
        uint64_t *cw = w[j & 1u];
        unsigned np = cnt[j - 1u] / 2u, a = 0, b = 0, k = 0, lim = 2u * m - 2u;
        if (stable) {
            /* list j - 1 equals list j - 2, so every list from here on equals it too */
            cnt[j] = cnt[j - 1u];
            src[j] = src[j - 1u];
            continue;
        }
        /* merge (a leaf first on equal weights), without branches on the comparison */
        while (k < lim && a < m && b < np) {
            uint64_t lw = lwt[a], pk = pw[2u * b] + pw[2u * b + 1u];
            unsigned tl = lw <= pk;
            cw[k] = tl ? lw : pk;
            leaf[j][k++] = (uint8_t)tl;
            a += tl;
            b += 1u - tl;
        }
        while (k < lim && a < m) {
            cw[k] = lwt[a++];
            leaf[j][k++] = 1;
        }
        while (k < lim && b < np) {
            cw[k] = pw[2u * b] + pw[2u * b + 1u];
            leaf[j][k++] = 0;
            b++;
        }
        cnt[j] = k;
        src[j] = j;
        /* a list is a function of the list below it alone: once two
         * neighbours are equal, the rest repeat them */
        stable = j >= 2u && k == cnt[j - 1u] && memcmp(leaf[j], leaf[j - 1u], k) == 0 &&
                 memcmp(cw, pw, k * sizeof *cw) == 0;
    }
    take = 2u * m - 2u;
    for (j = maxbits; j-- > 0;) {
        unsigned c = 0, k;
        const uint8_t *lf = leaf[src[j]];
        if (take > cnt[j]) {
            take = cnt[j];
        }
        for (k = 0; k < take; k++) {
            c += lf[k];
        }
        for (k = 0; k < c; k++) {
            len[sym[k]]++;
        }
        take = 2u * (take - c);
    }
}

/* canonical codes, bit-reversed for LSB-first output */
static void canon_codes(const uint8_t *len, unsigned n, uint16_t *code)
{
    unsigned count[MAX_BITS + 1] = { 0 }, next[MAX_BITS + 2], i, b;
    for (i = 0; i < n; i++) {
        count[len[i]]++;
    }
    count[0] = 0;
    next[1] = 0;
    for (b = 1; b <= MAX_BITS; b++) {
        next[b + 1] = (next[b] + count[b]) << 1;
    }
    for (i = 0; i < n; i++) {
        unsigned l = len[i], c, r = 0;
        if (l == 0) {
            code[i] = 0;
            continue;
        }
        c = next[l]++;
        for (b = 0; b < l; b++) {
            r = (r << 1) | ((c >> b) & 1u);
        }
        code[i] = (uint16_t)r;
    }
}

/* lengths for a code that must be complete: at least two symbols */
static void code_lengths(const uint32_t *freq, unsigned n, unsigned maxbits, uint8_t *len)
{
    uint32_t f[288];
    unsigned i, used = 0, first = n;
    for (i = 0; i < n; i++) {
        f[i] = freq[i];
        if (f[i]) {
            used++;
            if (first == n) {
                first = i;
            }
        }
    }
    if (used < 2u) {
        /* one or no symbol: pair it with another so that every decoder accepts the code */
        if (used == 0u) {
            f[0] = 1;
            first = 0;
        }
        f[first == 0 ? 1 : 0] = 1;
    }
    pm_lengths(f, n, maxbits, len);
}

/* ---- 4. blocks ---------------------------------------------------------------------- */

static void hist_items(const uint32_t *items, size_t n, dfl_hist *h)
{
    size_t i;
    memset(h, 0, sizeof *h);
    for (i = 0; i < n; i++) {
        uint32_t it = items[i];
        if (ITEM_LEN(it) == 0) {
            h->ll[it]++;
        } else {
            h->ll[len_sym(ITEM_LEN(it))]++;
            h->d[dist_slot(ITEM_DIST(it))]++;
        }
    }
    h->ll[EOB] = 1;
}

static uint64_t extra_bits(const dfl_hist *h)
{
    uint64_t b = 0;
    unsigned i;
    for (i = 0; i < 29u; i++) {
        b += (uint64_t)h->ll[257u + i] * k_len_extra[i];
    }
    for (i = 0; i < NUM_D; i++) {
        b += (uint64_t)h->d[i] * k_dist_extra[i];
    }
    return b;
}

#define RLE_16 1u
#define RLE_17 2u
#define RLE_18 4u

/* run-length code lens[0..n) with the repeat codes allowed by `use` */
static unsigned rle_lengths(const uint8_t *lens, unsigned n, unsigned use, uint16_t *out)
{
    unsigned i = 0, k = 0;
    while (i < n) {
        unsigned v = lens[i], run = 1;
        while (i + run < n && lens[i + run] == v) {
            run++;
        }
        i += run;
        if (v == 0u) {
            while (run >= 11u && (use & RLE_18)) {
                unsigned r = run > 138u ? 138u : run;
                if (run - r > 0u && run - r < 3u && r > 11u + 2u) {
                    r -= 3u - (run - r); /* leave a run that 17 can take */
                }
                out[k++] = (uint16_t)(18u | ((r - 11u) << 5));
                run -= r;
            }
            while (run >= 3u && (use & RLE_17)) {
                unsigned r = run > 10u ? 10u : run;
                out[k++] = (uint16_t)(17u | ((r - 3u) << 5));
                run -= r;
            }
            while (run > 0u) {
                out[k++] = 0;
                run--;
            }
        } else {
            out[k++] = (uint16_t)v;
            run--;
            while (run >= 3u && (use & RLE_16)) {
                unsigned r = run > 6u ? 6u : run;
                out[k++] = (uint16_t)(16u | ((r - 3u) << 5));
                run -= r;
            }
            while (run > 0u) {
                out[k++] = (uint16_t)v;
                run--;
            }
        }
    }
    return k;
}

static const uint8_t k_cl_extra[NUM_CL] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 3, 7 };

/* the cheapest header for the code lengths in c (ll_len, d_len, nlit, ndist set) */
static void build_header(dfl_code *c)
{
    uint8_t lens[NUM_LL + NUM_D];
    uint16_t rle[NUM_LL + NUM_D];
    unsigned use, n = c->nlit + c->ndist;
    uint64_t best = UINT64_MAX;
    memcpy(lens, c->ll_len, c->nlit);
    memcpy(lens + c->nlit, c->d_len, c->ndist);
    for (use = 0; use < 8u; use++) {
        uint32_t freq[NUM_CL] = { 0 };
        uint8_t cl[NUM_CL];
        unsigned k = rle_lengths(lens, n, use, rle), i, ncl;
        uint64_t bits;
        for (i = 0; i < k; i++) {
            freq[rle[i] & 31u]++;
        }
        code_lengths(freq, NUM_CL, MAX_CL_BITS, cl);
        ncl = NUM_CL;
        while (ncl > 4u && cl[k_cl_order[ncl - 1u]] == 0) {
            ncl--;
        }
        bits = 3u + 14u + 3u * (uint64_t)ncl;
        for (i = 0; i < NUM_CL; i++) {
            bits += (uint64_t)freq[i] * (cl[i] + k_cl_extra[i]);
        }
        if (bits < best) {
            best = bits;
            memcpy(c->cl_len, cl, sizeof cl);
            memcpy(c->rle, rle, k * sizeof rle[0]);
            c->nrle = k;
            c->ncl = ncl;
        }
    }
    c->hdr_bits = best;
    canon_codes(c->cl_len, NUM_CL, c->cl_code);
}

/*
 * Counts smoothed so that their code lengths repeat: stretches of
 * similar counts (outside runs that already run-length code well) are
 * replaced by their mean, so that the header codes the lengths with
 * repeat codes. Unused symbols inside a stretch may get a length.
 */
static void smooth_counts(const uint32_t *in, unsigned n, uint32_t *out)
{
    uint8_t keep[NUM_LL];
    unsigned i, j, len = n;
    memcpy(out, in, n * sizeof *out);
    while (len > 0 && in[len - 1u] == 0) {
        len--;
    }
    memset(keep, 0, sizeof keep);
    /* runs that repeat codes take as they are: 5+ zeros, 7+ equal counts */
    for (i = 0; i < len;) {
        unsigned r = 1;
        while (i + r < len && in[i + r] == in[i]) {
            r++;
        }
        if ((in[i] == 0 && r >= 5u) || (in[i] != 0 && r >= 7u)) {
            memset(keep + i, 1, r);
        }
        i += r;
    }
    for (i = 0; i < len;) {
        uint64_t sum = 0;
        uint32_t ref;
        if (keep[i]) {
            i++;
            continue;
        }
        /* a stretch: counts within 4 of the mean of its first four */
        ref = (uint32_t)(((uint64_t)in[i] + (i + 1u < len ? in[i + 1u] : in[i]) +
                          (i + 2u < len ? in[i + 2u] : in[i]) + (i + 3u < len ? in[i + 3u] : in[i]) + 2u) / 4u);
        for (j = i; j < len && !keep[j] && in[j] + 4u > ref && in[j] < ref + 4u; j++) {
            sum += in[j];
        }
        if (j - i >= 4u || (j - i >= 3u && sum == 0)) {
            uint32_t v = sum == 0 ? 0u : (uint32_t)((sum + (j - i) / 2u) / (j - i));
            unsigned k;
            if (sum > 0 && v == 0) {
                v = 1;
            }
            for (k = i; k < j; k++) {
                out[k] = v;
            }
            i = j;
        } else {
            i = j > i ? j : i + 1u;
        }
    }
}

static uint64_t code_data_bits(const dfl_hist *h, const dfl_code *c)
{
    uint64_t bits = extra_bits(h);
    unsigned i;
    for (i = 0; i < NUM_LL; i++) {
        bits += (uint64_t)h->ll[i] * c->ll_len[i];
    }
    for (i = 0; i < NUM_D; i++) {
        bits += (uint64_t)h->d[i] * c->d_len[i];
    }
    return bits;
}

static void set_counts(dfl_code *c)
{
    c->nlit = NUM_LL;
    while (c->nlit > 257u && c->ll_len[c->nlit - 1u] == 0) {
        c->nlit--;
    }
    c->ndist = NUM_D;
    while (c->ndist > 1u && c->d_len[c->ndist - 1u] == 0) {
        c->ndist--;
    }
}

/*
 * A dynamic code for histogram h, with its exact size: the code of the
 * counts, or of the smoothed counts when header plus data come out
 * smaller (`effort` >= 3 tries both).
 */
static void build_dynamic_e(const dfl_hist *h, dfl_code *c, int smooth)
{
    memset(c->ll_len, 0, sizeof c->ll_len);
    memset(c->d_len, 0, sizeof c->d_len);
    code_lengths(h->ll, NUM_LL, MAX_BITS, c->ll_len);
    code_lengths(h->d, NUM_D, MAX_BITS, c->d_len);
    set_counts(c);
    c->data_bits = code_data_bits(h, c);
    build_header(c);
    if (smooth) {
        dfl_code alt_code, *alt = &alt_code;
        dfl_hist sh;
        {
            memset(alt->ll_len, 0, sizeof alt->ll_len);
            memset(alt->d_len, 0, sizeof alt->d_len);
            smooth_counts(h->ll, NUM_LL, sh.ll);
            smooth_counts(h->d, NUM_D, sh.d);
            sh.ll[EOB] = sh.ll[EOB] ? sh.ll[EOB] : 1u;
            code_lengths(sh.ll, NUM_LL, MAX_BITS, alt->ll_len);
            code_lengths(sh.d, NUM_D, MAX_BITS, alt->d_len);
            set_counts(alt);
            alt->data_bits = code_data_bits(h, alt);
            if (alt->data_bits < c->hdr_bits + c->data_bits) {
                build_header(alt);
                if (alt->hdr_bits + alt->data_bits < c->hdr_bits + c->data_bits) {
                    *c = *alt;
                }
            }
        }
    }
    canon_codes(c->ll_len, 288, c->ll_code);
    canon_codes(c->d_len, 32, c->d_code);
}

static void fixed_code(dfl_code *c)
{
    unsigned i;
    for (i = 0; i < 288u; i++) {
        c->ll_len[i] = (uint8_t)(i < 144u ? 8 : i < 256u ? 9 : i < 280u ? 7 : 8);
    }
    for (i = 0; i < 32u; i++) {
        c->d_len[i] = 5;
    }
    canon_codes(c->ll_len, 288, c->ll_code);
    canon_codes(c->d_len, 32, c->d_code);
}

static uint64_t fixed_bits(const dfl_hist *h)
{
    uint64_t bits = 3u + extra_bits(h);
    unsigned i;
    for (i = 0; i < NUM_LL; i++) {
        bits += (uint64_t)h->ll[i] * (i < 144u ? 8u : i < 256u ? 9u : i < 280u ? 7u : 8u);
    }
    for (i = 0; i < NUM_D; i++) {
        bits += (uint64_t)h->d[i] * 5u;
    }
    return bits;
}

/* stored blocks for len bytes starting at bit offset `bitpos` (mod 8) */
static uint64_t stored_bits(size_t len, unsigned bitpos)
{
    uint64_t bits = 0;
    size_t left = len;
    unsigned bp = bitpos & 7u;
    do {
        size_t k = left > STORED_MAX ? STORED_MAX : left;
        bits += 3u;
        bits += (8u - ((bp + 3u) & 7u)) & 7u;
        bits += 32u + 8u * (uint64_t)k;
        bp = 0;
        left -= k;
    } while (left > 0);
    return bits;
}

static void put_items(otaup_dfl *s, const uint32_t *items, size_t n, const dfl_code *c)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t it = items[i];
        if (ITEM_LEN(it) == 0) {
            bw_put(s, c->ll_code[it], c->ll_len[it]);
        } else {
            unsigned l = ITEM_LEN(it), ls = len_sym(l) - 257u;
            uint32_t d = ITEM_DIST(it);
            unsigned ds = dist_slot(d);
            bw_put(s, c->ll_code[257u + ls], c->ll_len[257u + ls]);
            if (k_len_extra[ls]) {
                bw_put(s, l - k_len_base[ls], k_len_extra[ls]);
            }
            bw_put(s, c->d_code[ds], c->d_len[ds]);
            if (k_dist_extra[ds]) {
                bw_put(s, d - k_dist_base[ds], k_dist_extra[ds]);
            }
        }
    }
    bw_put(s, c->ll_code[EOB], c->ll_len[EOB]);
}

static void put_stored(otaup_dfl *s, const uint8_t *p, size_t len, int final)
{
    do {
        size_t k = len > STORED_MAX ? STORED_MAX : len;
        bw_put(s, (final && k == len) ? 1u : 0u, 3u); /* BTYPE 00 */
        bw_align(s);
        s->out[s->olen++] = (uint8_t)k;
        s->out[s->olen++] = (uint8_t)(k >> 8);
        s->out[s->olen++] = (uint8_t)~k;
        s->out[s->olen++] = (uint8_t)(~k >> 8);
        if (k > 0) {
            memcpy(s->out + s->olen, p, k);
        }
        s->olen += k;
        s->total_out += 4u + k;
        p += k;
        len -= k;
    } while (len > 0);
}

enum { BT_STORED = 0, BT_FIXED = 1, BT_DYNAMIC = 2 };

/*
 * Write one block: items[0..n) encode the input bytes in[0..in_len).
 * `dyn` (may be NULL) is the dynamic code already built for these items.
 * The smallest of dynamic, fixed and stored is written.
 */
static int emit_block(otaup_dfl *s, const uint32_t *items, size_t n, const uint8_t *in, size_t in_len, int final,
                      const dfl_code *dyn)
{
    dfl_hist h;
    dfl_code local;
    uint64_t bd, bf, bs;
    int type;
    hist_items(items, n, &h);
    if (dyn == NULL) {
        build_dynamic_e(&h, &local, s->effort >= OTAUP_DFL_LAZY);
        dyn = &local;
    }
    bd = dyn->hdr_bits + dyn->data_bits;
    bf = fixed_bits(&h);
    bs = stored_bits(in_len, s->nbits);
    type = BT_DYNAMIC;
    if (bf < bd) {
        type = BT_FIXED;
        bd = bf;
    }
    if (bs <= bd) {
        type = BT_STORED;
        bd = bs;
    }
    if (out_reserve(s, (size_t)(bd / 8u) + 64u) < 0) {
        return OTAUP_E_NOMEM;
    }
    if (type == BT_STORED) {
        put_stored(s, in, in_len, final);
    } else if (type == BT_FIXED) {
        fixed_code(&local);
        bw_put(s, final ? 3u : 2u, 3u); /* BFINAL, BTYPE 01 */
        put_items(s, items, n, &local);
    } else {
        unsigned i;
        bw_put(s, final ? 5u : 4u, 3u); /* BFINAL, BTYPE 10 */
        bw_put(s, dyn->nlit - 257u, 5u);
        bw_put(s, dyn->ndist - 1u, 5u);
        bw_put(s, dyn->ncl - 4u, 4u);
        for (i = 0; i < dyn->ncl; i++) {
            bw_put(s, dyn->cl_len[k_cl_order[i]], 3u);
        }
        for (i = 0; i < dyn->nrle; i++) {
            unsigned sym = dyn->rle[i] & 31u;
            bw_put(s, dyn->cl_code[sym], dyn->cl_len[sym]);
            if (k_cl_extra[sym]) {
                bw_put(s, (uint32_t)dyn->rle[i] >> 5, k_cl_extra[sym]);
            }
        }
        put_items(s, items, n, dyn);
    }
    bw_bytes(s);
    return 0;
}

/* the exact size of the best block type for items (dynamic code built into *c; the
 * items' histogram into *hout, if not NULL) */
static uint64_t block_bits_h(const otaup_dfl *s, const uint32_t *items, size_t n, size_t in_len, dfl_code *c,
                             dfl_hist *hout)
{
    dfl_hist hl, *hp = hout != NULL ? hout : &hl;
    uint64_t b, f, st;
    hist_items(items, n, hp);
    build_dynamic_e(hp, c, s->effort >= OTAUP_DFL_LAZY);
    b = c->hdr_bits + c->data_bits;
    f = fixed_bits(hp);
    st = stored_bits(in_len, s->nbits);
    if (f < b) {
        b = f;
    }
    return st < b ? st : b;
}

static uint64_t block_bits(const otaup_dfl *s, const uint32_t *items, size_t n, size_t in_len, dfl_code *c)
{
    return block_bits_h(s, items, n, in_len, c, NULL);
}

/* block_bits() for items whose dynamic code c (a function of the items alone) is already built */
static uint64_t block_bits_known(const otaup_dfl *s, const uint32_t *items, size_t n, size_t in_len,
                                 const dfl_code *c)
{
    dfl_hist h;
    uint64_t b, f, st;
    hist_items(items, n, &h);
    b = c->hdr_bits + c->data_bits;
    f = fixed_bits(&h);
    st = stored_bits(in_len, s->nbits);
    if (f < b) {
        b = f;
    }
    return st < b ? st : b;
}

/* ---- 5. block splitting ---------------------------------------------------------- */

#define NSYM (NUM_LL + NUM_D)

static const uint32_t k_zero[NSYM];

/*
 * Estimated bits of a block whose symbol counts are hi - lo: the entropy
 * of each alphabet, the extra bits, and a header of about 240 bits plus
 * 2.8 per symbol used (fitted on exact headers of real blocks).
 */
static double est_block(const otaup_dfl *s, const uint32_t *hi, const uint32_t *lo, uint64_t extra)
{
    uint64_t t = 1; /* end of block */
    double sum = 0.0, bits;
    unsigned i, used = 1;
    for (i = 0; i < NUM_LL; i++) {
        uint32_t f = hi[i] - lo[i];
        if (f) {
            t += f;
            sum += flogf_(s, f);
            used++;
        }
    }
    bits = (double)t * dfl_log2((double)t) - sum;
    t = 0;
    sum = 0.0;
    for (i = NUM_LL; i < NSYM; i++) {
        uint32_t f = hi[i] - lo[i];
        if (f) {
            t += f;
            sum += flogf_(s, f);
            used++;
        }
    }
    if (t > 0) {
        bits += (double)t * dfl_log2((double)t) - sum;
    }
    return bits + (double)extra + 240.0 + 2.8 * (double)used;
}

/* add (+1) or remove (-1) an item's symbols to counts; returns its extra bits */
static inline unsigned count_item(uint32_t *cnt, uint32_t it, int dir)
{
    if (ITEM_LEN(it) == 0) {
        cnt[it] += (uint32_t)dir;
        return 0;
    } else {
        unsigned ls = len_sym(ITEM_LEN(it)), ds = dist_slot(ITEM_DIST(it));
        cnt[ls] += (uint32_t)dir;
        cnt[NUM_LL + ds] += (uint32_t)dir;
        return k_len_extra[ls - 257u] + k_dist_extra[ds];
    }
}

/*
 * Move the boundary between items [l, x) and [x, r) to the best place
 * in (x - g, x + g), in steps of g / 16, by the estimate. Returns it.
 */
static uint32_t refine_boundary(const otaup_dfl *s, const uint32_t *items, uint32_t l, uint32_t x, uint32_t r,
                                uint32_t g, uint32_t *left, uint32_t *right)
{
    uint32_t lo = x > l + g ? x - g : l + 1u, hi = x + g < r ? x + g : r - 1u, step = g / 16u, i, y, best_x = x;
    uint64_t el = 0, er = 0;
    double best = -1.0;
    if (step == 0) {
        step = 1;
    }
    if (lo > hi) {
        return x;
    }
    memset(left, 0, NSYM * sizeof *left);
    memset(right, 0, NSYM * sizeof *right);
    for (i = l; i < lo; i++) {
        el += count_item(left, items[i], 1);
    }
    for (i = lo; i < r; i++) {
        er += count_item(right, items[i], 1);
    }
    for (y = lo; y <= hi; y += step) {
        double v = est_block(s, left, k_zero, el) + est_block(s, right, k_zero, er);
        if (best < 0.0 || v < best) {
            best = v;
            best_x = y;
        }
        for (i = y; i < y + step && i < r; i++) {
            unsigned e = count_item(left, items[i], 1);
            count_item(right, items[i], -1);
            el += e;
            er -= e;
        }
    }
    return best_x;
}

/*
 * Split items[0..n) into blocks: a shortest path over candidate
 * boundaries (every n/K items) where a block costs est_block(), then each
 * boundary moved to its best place nearby. Writes the item index of every
 * boundary into bnd (bnd[0] = 0, bnd[nb] = n) and returns nb, or 0 when
 * out of memory.
 */
static unsigned split_items(otaup_dfl *s, const uint32_t *items, size_t n, unsigned kmax, size_t min_items,
                            uint32_t *bnd)
{
    unsigned K, k, j, nb;
    uint32_t *pre, *prev;
    uint64_t *pext;
    double *best;
    size_t i, c;
    if (n <= min_items * 2u || kmax < 2u) {
        bnd[0] = 0;
        bnd[1] = (uint32_t)n;
        return 1;
    }
    K = (unsigned)(n / min_items);
    if (K > kmax) {
        K = kmax;
    }
    pre = calloc((size_t)(K + 1u) * NSYM, sizeof *pre);
    pext = calloc(K + 1u, sizeof *pext);
    best = malloc((K + 1u) * sizeof *best);
    prev = malloc((K + 1u) * sizeof *prev);
    if (pre == NULL || pext == NULL || best == NULL || prev == NULL) {
        free(pre);
        free(pext);
        free(best);
        free(prev);
        return 0;
    }
    /* row k: symbol counts of items [0, c_k), c_k = n * k / K */
    {
        uint32_t run[NSYM];
        uint64_t ext = 0;
        memset(run, 0, sizeof run);
        k = 1;
        c = n / K;
        for (i = 0; i < n; i++) {
            if (i == c && k < K) {
                memcpy(pre + (size_t)k * NSYM, run, sizeof run);
                pext[k] = ext;
                k++;
                c = n * k / K;
            }
            ext += count_item(run, items[i], 1);
        }
        memcpy(pre + (size_t)K * NSYM, run, sizeof run);
        pext[0] = 0;
        pext[K] = ext;
    }
    best[0] = 0.0;
    prev[0] = 0;
    for (k = 1; k <= K; k++) {
        best[k] = -1.0;
        for (j = 0; j < k; j++) {
            double v = best[j] + est_block(s, pre + (size_t)k * NSYM, pre + (size_t)j * NSYM, pext[k] - pext[j]);
            if (best[k] < 0.0 || v < best[k]) {
                best[k] = v;
                prev[k] = j;
            }
        }
    }
    nb = 0;
    for (k = K; k > 0; k = prev[k]) {
        nb++;
    }
    j = nb;
    bnd[j] = (uint32_t)n;
    for (k = K; k > 0; k = prev[k]) {
        bnd[--j] = (uint32_t)(n * prev[k] / K);
    }
    /* each inner boundary to its best place within a candidate interval */
    for (j = 1; j < nb; j++) {
        bnd[j] = refine_boundary(s, items, bnd[j - 1u], bnd[j], bnd[j + 1u], (uint32_t)(n / K), pre, pre + NSYM);
    }
    free(pre);
    free(pext);
    free(best);
    free(prev);
    return nb;
}

/* ---- 6. lazy parsing over hash chains ------------------------------------------- */

static inline uint32_t hash3(const uint8_t *p, unsigned bits)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
    return (v * 0x9E3779B1u) >> (32u - bits);
}

static inline uint32_t hash4(const uint8_t *p, unsigned bits)
{
    uint32_t v = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    return (v * 0x9E3779B1u) >> (32u - bits);
}

/* length of the common prefix of a and b, from `start`, at most lim */
static inline uint32_t match_len(const uint8_t *a, const uint8_t *b, uint32_t start, uint32_t lim)
{
    uint32_t l = start;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (l + 8u <= lim) {
        uint64_t x, y;
        memcpy(&x, a + l, 8);
        memcpy(&y, b + l, 8);
        if (x != y) {
            return l + ((unsigned)__builtin_ctzll(x ^ y) >> 3);
        }
        l += 8u;
    }
#endif
    while (l < lim && a[l] == b[l]) {
        l++;
    }
    return l;
}

/* hash chains: insert every position < p that has its three bytes */
static void hc_insert_upto(otaup_dfl *s, uint32_t p)
{
    uint32_t i = s->ins, e = s->end >= 3u ? s->end - 2u : 0u;
    if (e > p) {
        e = p;
    }
    for (; i < e; i++) {
        uint32_t h = hash3(s->buf + i, s->hbits);
        s->link[i & s->cmask] = s->head[h];
        s->head[h] = i;
    }
    if (i > s->ins) {
        s->ins = i;
    }
}

/* longest match at p of at most lim bytes, longer than `min`; 0 if none */
static uint32_t hc_longest(const otaup_dfl *s, uint32_t p, uint32_t lim, unsigned chain, uint32_t min,
                           uint32_t *dist)
{
    const uint8_t *b = s->buf;
    uint32_t best = min, cand, nice = s->par->nice < lim ? s->par->nice : lim;
    if (lim < MIN_MATCH || s->end - p < MIN_MATCH || best >= lim) {
        return 0;
    }
    cand = s->head[hash3(b + p, s->hbits)];
    while (chain-- > 0 && p - cand <= s->wsize) {
        if (b[cand + best] == b[p + best] && b[cand] == b[p] && b[cand + 1u] == b[p + 1u]) {
            uint32_t l = match_len(b + cand, b + p, 0, lim);
            if (l > best) {
                best = l;
                *dist = p - cand;
                if (l >= nice) {
                    break;
                }
            }
        }
        cand = s->link[cand & s->cmask];
    }
    return best > min ? best : 0;
}

/* lazy matching of [a, b) into items; returns the count */
static size_t hc_parse(otaup_dfl *s, uint32_t a, uint32_t b, uint32_t *items)
{
    const dfl_params *par = s->par;
    const uint8_t *buf = s->buf;
    size_t n = 0;
    uint32_t p = a, prev_len = 0, prev_dist = 0;
    while (p < b) {
        uint32_t lim = b - p < MAX_MATCH ? b - p : MAX_MATCH, len = 0, dist = 0;
        hc_insert_upto(s, p);
        if (prev_len == 0 || prev_len < par->lazy) {
            unsigned chain = par->chain;
            if (prev_len >= par->good) {
                chain >>= 2;
            }
            len = hc_longest(s, p, lim, chain, prev_len > 2u ? prev_len : 2u, &dist);
            if (len == MIN_MATCH && dist > 4096u) {
                len = 0; /* a far 3-byte match rarely pays */
            }
        }
        if (prev_len > 0) {
            if (len > prev_len) {
                items[n++] = buf[p - 1u];
                prev_len = len;
                prev_dist = dist;
                p++;
            } else {
                items[n++] = ITEM_MATCH(prev_len, prev_dist);
                p = p - 1u + prev_len;
                prev_len = 0;
            }
        } else if (len > 0) {
            if (len >= par->lazy) {
                items[n++] = ITEM_MATCH(len, dist);
                p += len;
            } else {
                prev_len = len;
                prev_dist = dist;
                p++;
            }
        } else {
            items[n++] = buf[p];
            p++;
        }
    }
    if (prev_len > 0) {
        items[n++] = ITEM_MATCH(prev_len, prev_dist);
    }
    return n;
}

/* ---- 7. binary-tree match finder ---------------------------------------------- */

/*
 * The tree of each 4-byte hash holds earlier positions ordered by their
 * next `nice` bytes, the newest at the root, so the search path for p
 * meets, for each length, the nearest position with that common prefix
 * first. A position is inserted only when `nice` bytes follow it in the
 * buffer, so that every ordering decision in the tree rests on bytes
 * that exist; positions near the end of the data are searched without
 * insertion and inserted when more input arrives. Children of position
 * q are link[2 * (q & cmask)] (smaller) and link[2 * (q & cmask) + 1]
 * (greater); the cycle of 2 * window slots keeps every position of the
 * window in its own slot.
 *
 * Reports (len << 16 | dist - 1) for each new longest match (> best),
 * capped at lim, into m; returns the count.
 */
/* the number of bytes equal to buf[p] from p on (at least 1), within the data */
static uint32_t run_from(otaup_dfl *s, uint32_t p)
{
    const uint8_t c = s->buf[p];
    if (p < s->run_lo || p >= s->run_hi || s->buf[s->run_lo] != c) {
        s->run_lo = p;
        s->run_hi = p + 1u;
    }
    while (s->run_hi < s->end && s->buf[s->run_hi] == c) {
        s->run_hi++; /* also extends a run that reached the end of the data earlier */
    }
    return s->run_hi - p;
}

static unsigned bt_walk(otaup_dfl *s, uint32_t p, int insert, uint32_t lim, uint32_t best, uint32_t *m)
{
    const uint8_t *b = s->buf;
    uint32_t *link = s->link;
    const uint32_t nice = s->par->nice, wsize = s->wsize, cmask = s->cmask;
    uint32_t tlim = insert ? nice : (s->end - p < nice ? s->end - p : nice);
    uint32_t h, node, lenl = 0, lenr = 0;
    uint32_t *pl = NULL, *pr = NULL;
    unsigned depth = s->par->depth, n = 0;
    if (b[p] == b[p + 1u] && b[p] == b[p + 2u] && b[p] == b[p + 3u]) {
        /*
         * Inside a run of one byte value, the key is the value and the
         * length left: a tree then holds the positions with exactly that
         * much of the run left, ordered by what follows the run (keyed by
         * their first bytes, runs would chain every position of every run
         * in one degenerate tree). With `nice` or more left, the nearest
         * position (hash3, distance 1) already gives the longest match.
         */
        uint32_t k = run_from(s, p);
        if (k >= nice) {
            return 0;
        }
        h = ((((uint32_t)b[p] << 9) | k) * 0x9E3779B1u + 0x7F4A7C15u) >> (32u - s->hbits);
    } else {
        h = hash4(b + p, s->hbits);
    }
    node = s->head[h];
    if (insert) {
        s->head[h] = p;
        pl = &link[2u * (p & cmask)];
        pr = pl + 1;
    }
    for (;;) {
        uint32_t len;
        if (p - node > wsize || depth-- == 0) {
            if (insert) {
                *pl = 0;
                *pr = 0;
            }
            break;
        }
        len = match_len(b + node, b + p, lenl < lenr ? lenl : lenr, tlim);
        if (m != NULL && len > best) {
            uint32_t rl = len;
            if (rl == tlim && rl < lim) {
                rl = match_len(b + node, b + p, rl, lim); /* past the key: compared directly */
            }
            if (rl > lim) {
                rl = lim;
            }
            if (rl > best) {
                best = rl;
                m[n++] = ITEM_MATCH(rl, p - node);
            }
        }
        if (len >= tlim) {
            if (insert) {
                *pl = link[2u * (node & cmask)];
                *pr = link[2u * (node & cmask) + 1u];
            }
            break;
        }
        if (b[node + len] < b[p + len]) {
            if (insert) {
                *pl = node;
                pl = &link[2u * (node & cmask) + 1u];
            }
            node = link[2u * (node & cmask) + 1u];
            lenl = len;
        } else {
            if (insert) {
                *pr = node;
                pr = &link[2u * (node & cmask)];
            }
            node = link[2u * (node & cmask)];
            lenr = len;
        }
    }
    return n;
}

static void h3_upto(otaup_dfl *s, uint32_t p)
{
    uint32_t i = s->ins3, e = s->end >= 3u ? s->end - 2u : 0u;
    if (e > p) {
        e = p;
    }
    for (; i < e; i++) {
        s->head3[hash3(s->buf + i, s->h3bits)] = i;
    }
    if (i > s->ins3) {
        s->ins3 = i;
    }
}

static void bt_upto(otaup_dfl *s, uint32_t p)
{
    while (s->ins < p && s->end - s->ins >= s->par->nice) {
        bt_walk(s, s->ins, 1, 0, 0, NULL);
        s->ins++;
    }
}

/*
 * Every useful match at p: for each length, the nearest position, as a
 * list of increasing lengths and distances, capped at lim. Returns the
 * count (at most MAX_MATCH - 2).
 */
static unsigned find_matches(otaup_dfl *s, uint32_t p, uint32_t lim, uint32_t *m)
{
    const uint8_t *b = s->buf;
    unsigned n = 0, i, k;
    uint32_t best = 2;
    h3_upto(s, p);
    bt_upto(s, p);
    if (lim >= MIN_MATCH && s->end - p >= MIN_MATCH) {
        uint32_t c = s->head3[hash3(b + p, s->h3bits)];
        if (p - c <= s->wsize) {
            uint32_t l = match_len(b + c, b + p, 0, lim);
            if (l >= MIN_MATCH) {
                m[n++] = ITEM_MATCH(l, p - c);
                best = l;
            }
        }
    }
    if (s->end - p >= 4u) {
        int insert = s->ins == p && s->end - p >= s->par->nice;
        n += bt_walk(s, p, insert, lim, best, m + n);
        if (insert) {
            s->ins++;
        }
    }
    if (n > 1u) {
        /* drop entries that a longer one at no greater distance dominates */
        uint32_t mind = UINT32_MAX;
        for (i = n; i-- > 0;) {
            uint32_t d = ITEM_DIST(m[i]);
            if (d >= mind) {
                m[i] = 0;
            } else {
                mind = d;
            }
        }
        for (i = 0, k = 0; i < n; i++) {
            if (m[i] != 0) {
                m[k++] = m[i];
            }
        }
        n = k;
    }
    return n;
}

/* ---- 8. near-optimal parsing ------------------------------------------------------ */

#define COST_SCALE 16.0

/* costs (in 1/16 bit) of every literal, length and distance slot from a histogram */
static void costs_from_hist(const dfl_hist *h, dfl_costs *cm)
{
    double ll[NUM_LL], dd[NUM_D], lt, dt;
    uint64_t t = 0, td = 0;
    unsigned i, l;
    for (i = 0; i < NUM_LL; i++) {
        t += h->ll[i];
    }
    for (i = 0; i < NUM_D; i++) {
        td += h->d[i];
    }
    lt = dfl_log2((double)(t ? t : 1u));
    dt = dfl_log2((double)(td ? td : 1u));
    /* information content, at least 1 bit; unseen symbols 2 bits above a single occurrence */
    for (i = 0; i < NUM_LL; i++) {
        double c = h->ll[i] ? lt - dfl_log2((double)h->ll[i]) : lt + 2.0;
        ll[i] = c < 1.0 ? 1.0 : c > 18.0 ? 18.0 : c;
    }
    for (i = 0; i < NUM_D; i++) {
        double c = td == 0 ? 5.0 : h->d[i] ? dt - dfl_log2((double)h->d[i]) : dt + 2.0;
        dd[i] = c < 1.0 ? 1.0 : c > 18.0 ? 18.0 : c;
    }
    for (i = 0; i < 256u; i++) {
        cm->lit[i] = (uint32_t)(ll[i] * COST_SCALE + 0.5);
    }
    cm->len[0] = cm->len[1] = cm->len[2] = 0;
    for (l = MIN_MATCH; l <= MAX_MATCH; l++) {
        unsigned sy = len_sym(l);
        cm->len[l] = (uint32_t)((ll[sy] + k_len_extra[sy - 257u]) * COST_SCALE + 0.5);
    }
    for (i = 0; i < NUM_D; i++) {
        cm->dslot[i] = (uint32_t)((dd[i] + k_dist_extra[i]) * COST_SCALE + 0.5);
    }
    cm->dslot[30] = cm->dslot[31] = 0;
}

static void costs_fixed(dfl_costs *cm)
{
    unsigned i, l;
    for (i = 0; i < 256u; i++) {
        cm->lit[i] = (uint32_t)((i < 144u ? 8u : 9u) * (unsigned)COST_SCALE);
    }
    cm->len[0] = cm->len[1] = cm->len[2] = 0;
    for (l = MIN_MATCH; l <= MAX_MATCH; l++) {
        unsigned sy = len_sym(l);
        cm->len[l] = (uint32_t)(((sy < 280u ? 7u : 8u) + k_len_extra[sy - 257u]) * (unsigned)COST_SCALE);
    }
    for (i = 0; i < 32u; i++) {
        cm->dslot[i] = (uint32_t)((5u + (i < NUM_D ? k_dist_extra[i] : 0u)) * (unsigned)COST_SCALE);
    }
}

/* shortest path through [lo, hi) under cm, using the matches cached for the chunk at a */
static size_t dp_parse(otaup_dfl *s, uint32_t a, uint32_t lo, uint32_t hi, const dfl_costs *cm, uint32_t *out)
{
    const uint8_t *in = s->buf + lo;
    const uint32_t *mi = s->mc_idx + (lo - a);
    uint32_t *cost = s->cost, *from = s->from;
    uint32_t N = hi - lo, i;
    size_t n = 0, x, y;
    cost[0] = 0;
    for (i = 1; i <= N; i++) {
        cost[i] = UINT32_MAX;
    }
    for (i = 0; i < N; i++) {
        uint32_t c = cost[i], v, k, e, l = MIN_MATCH, lmax = N - i;
        v = c + cm->lit[in[i]];
        if (v < cost[i + 1u]) {
            cost[i + 1u] = v;
            from[i + 1u] = in[i];
        }
        for (k = mi[i], e = mi[i + 1u]; k < e && l <= lmax; k++) {
            uint32_t m = s->mc[k], ml = ITEM_LEN(m), dc;
            if (ml > lmax) {
                ml = lmax;
            }
            if (ml < l) {
                continue;
            }
            dc = c + cm->dslot[dist_slot(ITEM_DIST(m))];
            for (; l <= ml; l++) {
                v = dc + cm->len[l];
                if (v < cost[i + l]) {
                    cost[i + l] = v;
                    from[i + l] = (m & 0xFFFFu) | (l << 16);
                }
            }
        }
    }
    for (i = N; i > 0; i -= ITEM_SPAN(from[i])) {
        out[n++] = from[i];
    }
    for (x = 0, y = n; x + 1u < y; x++, y--) {
        uint32_t t = out[x];
        out[x] = out[y - 1u];
        out[y - 1u] = t;
    }
    return n;
}

/*
 * Near-optimal parse of the block [lo, hi): passes of the shortest path,
 * each under the costs of the code the previous pass would get, from
 * the statistics h0. Writes the cheapest parse to out and its exact
 * size (best block type) to *bits; returns its item count.
 */
static size_t opt_block(otaup_dfl *s, uint32_t a, uint32_t lo, uint32_t hi, const dfl_hist *h0, uint32_t *out,
                        uint64_t *bits, dfl_code *best_code)
{
    dfl_costs cm;
    dfl_hist h = *h0;
    dfl_code code;
    uint64_t best = UINT64_MAX;
    size_t bestn = 0;
    unsigned pass, stale = 0;
    for (pass = 0; pass < s->par->passes + 1u; pass++) {
        size_t nn;
        uint64_t b;
        if (pass < s->par->passes) {
            costs_from_hist(&h, &cm);
        } else if (hi - lo <= 8192u) {
            costs_fixed(&cm); /* small blocks: try the parse for the fixed code */
        } else {
            break;
        }
        nn = dp_parse(s, a, lo, hi, &cm, s->tmp);
        b = block_bits_h(s, s->tmp, nn, hi - lo, &code, &h); /* h: the next pass's statistics */
        if (b < best) {
            best = b;
            bestn = nn;
            memcpy(out, s->tmp, nn * sizeof *out);
            *best_code = code;
            stale = 0;
        } else if (++stale >= 2u && pass < s->par->passes) {
            pass = s->par->passes - 1u; /* converged: go to the fixed-code pass */
        }
    }
    *bits = best;
    return bestn;
}

/* ---- 9. the stream ------------------------------------------------------------------ */

static int grow_work(otaup_dfl *s, size_t n)
{
    if (n + 1u > s->pos_cap) {
        size_t c = n + 1u;
        uint32_t *a = realloc(s->items, c * sizeof *a);
        if (a == NULL) {
            return OTAUP_E_NOMEM;
        }
        s->items = a;
        a = realloc(s->items2, c * sizeof *a);
        if (a == NULL) {
            return OTAUP_E_NOMEM;
        }
        s->items2 = a;
        a = realloc(s->tmp, c * sizeof *a);
        if (a == NULL) {
            return OTAUP_E_NOMEM;
        }
        s->tmp = a;
        if (s->effort >= OTAUP_DFL_OPT) {
            a = realloc(s->mc_idx, c * sizeof *a);
            if (a == NULL) {
                return OTAUP_E_NOMEM;
            }
            s->mc_idx = a;
            a = realloc(s->cost, c * sizeof *a);
            if (a == NULL) {
                return OTAUP_E_NOMEM;
            }
            s->cost = a;
            a = realloc(s->from, c * sizeof *a);
            if (a == NULL) {
                return OTAUP_E_NOMEM;
            }
            s->from = a;
            a = realloc(s->alt, c * sizeof *a);
            if (a == NULL) {
                return OTAUP_E_NOMEM;
            }
            s->alt = a;
        }
        s->pos_cap = c;
    }
    return 0;
}

/* input position after each block boundary: walks the items */
static void bounds_to_pos(const uint32_t *items, const uint32_t *bnd, unsigned nb, uint32_t a, uint32_t *pos)
{
    unsigned j;
    uint32_t p = a, i = 0;
    pos[0] = a;
    for (j = 1; j <= nb; j++) {
        for (; i < bnd[j]; i++) {
            p += ITEM_SPAN(items[i]);
        }
        pos[j] = p;
    }
}

/*
 * Write the chunk's blocks; when stored blocks for the whole chunk are
 * no larger than the blocks chosen (each the smallest of its three
 * types), write those instead, so that no chunk grows by more than the
 * framing of stored blocks (otaup_dfl_bound()).
 */
static int emit_blocks(otaup_dfl *s, const uint32_t *items, const uint32_t *bnd, const uint32_t *bpos, unsigned nb,
                       int final, const dfl_code *codes)
{
    unsigned j;
    uint64_t total = 0;
    dfl_code code;
    if (nb > 1u) {
        for (j = 0; j < nb; j++) {
            total += codes != NULL ? block_bits_known(s, items + bnd[j], bnd[j + 1u] - bnd[j],
                                                      bpos[j + 1u] - bpos[j], &codes[j])
                                   : block_bits(s, items + bnd[j], bnd[j + 1u] - bnd[j], bpos[j + 1u] - bpos[j], &code);
        }
        if (stored_bits(bpos[nb] - bpos[0], s->nbits) <= total) {
            if (out_reserve(s, (size_t)(bpos[nb] - bpos[0]) + 5u * ((bpos[nb] - bpos[0]) / STORED_MAX + 1u) + 16u) <
                0) {
                return OTAUP_E_NOMEM;
            }
            put_stored(s, s->buf + bpos[0], bpos[nb] - bpos[0], final);
            bw_bytes(s);
            if (final) {
                s->final_done = 1;
            }
            return 0;
        }
    }
    for (j = 0; j < nb; j++) {
        int last = final && j + 1u == nb;
        int rc = emit_block(s, items + bnd[j], bnd[j + 1u] - bnd[j], s->buf + bpos[j], bpos[j + 1u] - bpos[j],
                            last, codes != NULL ? &codes[j] : NULL);
        if (rc < 0) {
            return rc;
        }
        if (last) {
            s->final_done = 1;
        }
    }
    return 0;
}

/* effort 1, 2: compress [pos, b) */
static int lazy_chunk(otaup_dfl *s, uint32_t b, int final)
{
    uint32_t a = s->pos, *bnd, *bpos;
    size_t n;
    unsigned nb;
    int rc;
    if (grow_work(s, b - a) < 0) {
        return OTAUP_E_NOMEM;
    }
    n = hc_parse(s, a, b, s->items);
    bnd = malloc((s->par->split_k + 2u) * 2u * sizeof *bnd);
    if (bnd == NULL) {
        return OTAUP_E_NOMEM;
    }
    bpos = bnd + s->par->split_k + 2u;
    nb = split_items(s, s->items, n, s->par->split_k, 1024u, bnd);
    if (nb == 0) {
        free(bnd);
        return OTAUP_E_NOMEM;
    }
    bounds_to_pos(s->items, bnd, nb, a, bpos);
    rc = emit_blocks(s, s->items, bnd, bpos, nb, final, NULL);
    free(bnd);
    s->pos = b;
    return rc;
}

/* near-optimal parse of blocks [bpos[j], bpos[j+1]) with starting statistics from `init` items */
static int opt_blocks(otaup_dfl *s, uint32_t a, const uint32_t *init, const uint32_t *bnd, const uint32_t *bpos,
                      unsigned nb, uint32_t *out, uint32_t *obnd, uint64_t *total, dfl_code *codes)
{
    unsigned j;
    size_t n = 0;
    *total = 0;
    obnd[0] = 0;
    for (j = 0; j < nb; j++) {
        dfl_hist h0;
        uint64_t bits;
        hist_items(init + bnd[j], bnd[j + 1u] - bnd[j], &h0);
        n += opt_block(s, a, bpos[j], bpos[j + 1u], &h0, out + n, &bits, &codes[j]);
        obnd[j + 1u] = (uint32_t)n;
        *total += bits;
    }
    return 0;
}

/* effort 3, 4: compress [pos, b) (or less, when the match cache is full) */
static int opt_chunk(otaup_dfl *s, uint32_t b, int final)
{
    const dfl_params *par = s->par;
    uint32_t a = s->pos, want = b, p, skip_to = a, *bnd, *bpos, *obnd, *bnd2, *bpos2, *obnd2;
    dfl_code *code_mem, *codes, *codes2;
    size_t mcn = 0, n, cap_limit;
    unsigned nb, nb2, j, round;
    uint64_t total, total2;
    int rc;
    if (grow_work(s, b - a) < 0) {
        return OTAUP_E_NOMEM;
    }
    /* 1. every match of every position (at most 12 per position on average) */
    cap_limit = (size_t)(b - a) * 12u + 4096u;
    for (p = a; p < b; p++) {
        unsigned cnt;
        uint32_t lim;
        s->mc_idx[p - a] = (uint32_t)mcn;
        if (p < skip_to) {
            continue;
        }
        if (mcn + MAX_MATCH > s->mc_cap) {
            size_t nc = s->mc_cap ? s->mc_cap * 2u : (size_t)(b - a) * 4u + 1024u;
            uint32_t *v = NULL;
            if (nc > cap_limit) {
                nc = cap_limit;
            }
            if (nc >= mcn + MAX_MATCH) {
                v = realloc(s->mc, nc * sizeof *v);
            }
            if (v == NULL) {
                if (p == a) {
                    return OTAUP_E_NOMEM;
                }
                b = p; /* the cache is full: end the chunk here */
                break;
            }
            s->mc = v;
            s->mc_cap = nc;
        }
        lim = b - p < MAX_MATCH ? b - p : MAX_MATCH;
        cnt = find_matches(s, p, lim, s->mc + mcn);
        if (cnt > 0) {
            uint32_t longest = ITEM_LEN(s->mc[mcn + cnt - 1u]);
            if (longest >= par->nice) {
                skip_to = p + longest; /* inside a long match, only insert */
            }
        }
        mcn += cnt;
    }
    s->mc_idx[b - a] = (uint32_t)mcn;
    if (b < want) {
        final = 0; /* the rest follows in the next chunk */
    }
    /* 2. a greedy parse for first statistics and the block split */
    n = 0;
    for (p = a; p < b;) {
        uint32_t k = s->mc_idx[p - a], e = s->mc_idx[p - a + 1u];
        if (e > k) {
            uint32_t m = s->mc[e - 1u], l = ITEM_LEN(m);
            if (l > b - p) {
                l = b - p;
            }
            if (l >= 4u || (l == MIN_MATCH && ITEM_DIST(m) <= 4096u)) {
                s->items[n++] = (m & 0xFFFFu) | (l << 16);
                p += l;
                continue;
            }
        }
        s->items[n++] = s->buf[p++];
    }
    bnd = malloc((par->split_k + 2u) * 6u * sizeof *bnd);
    code_mem = malloc((par->split_k + 2u) * 2u * sizeof *code_mem);
    if (bnd == NULL || code_mem == NULL) {
        free(bnd);
        free(code_mem);
        return OTAUP_E_NOMEM;
    }
    codes = code_mem;
    codes2 = code_mem + (par->split_k + 2u);
    bpos = bnd + (par->split_k + 2u);
    obnd = bpos + (par->split_k + 2u);
    bnd2 = obnd + (par->split_k + 2u);
    bpos2 = bnd2 + (par->split_k + 2u);
    obnd2 = bpos2 + (par->split_k + 2u);
    /*
     * Rounds: split the current parse into blocks, parse each block
     * near-optimally from the current parse's statistics; keep the round
     * if it is smaller. The first round starts from the greedy parse.
     */
    nb = 0;
    total = UINT64_MAX;
    for (round = 0; round <= par->rounds; round++) {
        const uint32_t *cur = round == 0 ? s->items : s->items2;
        size_t ncur = round == 0 ? n : obnd[nb];
        int same = 1;
        nb2 = split_items(s, cur, ncur, par->split_k, 256u, bnd2);
        if (nb2 == 0) {
            free(bnd);
            free(code_mem);
            return OTAUP_E_NOMEM;
        }
        bounds_to_pos(cur, bnd2, nb2, a, bpos2);
        if (round == 0 || nb2 != nb) {
            same = 0;
        }
        for (j = 0; same && j <= nb; j++) {
            same = bpos2[j] == bpos[j];
        }
        if (same) {
            break;
        }
        opt_blocks(s, a, cur, bnd2, bpos2, nb2, s->alt, obnd2, &total2, codes2);
        if (total2 >= total) {
            break;
        }
        {
            uint32_t *t = s->items2;
            dfl_code *tc = codes;
            s->items2 = s->alt;
            s->alt = t;
            codes = codes2; /* the codes of the kept blocks, for emit_blocks */
            codes2 = tc;
        }
        total = total2;
        nb = nb2;
        memcpy(obnd, obnd2, (nb + 1u) * sizeof *obnd);
        memcpy(bpos, bpos2, (nb + 1u) * sizeof *bpos);
    }
    rc = emit_blocks(s, s->items2, obnd, bpos, nb, final, codes);
    free(bnd);
    free(code_mem);
    s->pos = b;
    return rc;
}

static int compress_to(otaup_dfl *s, uint32_t b, int final)
{
    int rc;
    if (s->effort >= OTAUP_DFL_OPT) {
        rc = opt_chunk(s, b, final);
    } else {
        rc = lazy_chunk(s, b, final);
    }
    if (rc < 0) {
        s->failed = 1;
    }
    return rc;
}

/* drop history older than the window, keeping positions congruent mod csize */
static void slide(otaup_dfl *s)
{
    uint32_t keep = s->pos > s->bias + s->wsize ? s->pos - s->wsize : s->bias;
    uint32_t delta = (keep - s->bias) / s->csize * s->csize, lo, i;
    size_t nh, nl;
    if (delta == 0) {
        return;
    }
    memmove(s->buf + s->bias, s->buf + s->bias + delta, s->end - s->bias - delta);
    s->pos -= delta;
    s->end -= delta;
    s->run_lo = s->run_hi = 0;
    lo = s->bias + delta;
    s->ins = (s->ins > lo ? s->ins : lo) - delta;
    s->ins3 = (s->ins3 > lo ? s->ins3 : lo) - delta;
    nh = (size_t)1 << s->hbits;
    for (i = 0; i < nh; i++) {
        s->head[i] = s->head[i] >= lo ? s->head[i] - delta : 0;
    }
    if (s->head3 != NULL) {
        nh = (size_t)1 << s->h3bits;
        for (i = 0; i < nh; i++) {
            s->head3[i] = s->head3[i] >= lo ? s->head3[i] - delta : 0;
        }
    }
    nl = s->effort >= OTAUP_DFL_OPT ? 2u * (size_t)s->csize : s->csize;
    for (i = 0; i < nl; i++) {
        s->link[i] = s->link[i] >= lo ? s->link[i] - delta : 0;
    }
}

void otaup_dfl_reset(otaup_dfl *s)
{
    if (s == NULL) {
        return;
    }
    s->pos = s->end = s->ins = s->ins3 = s->bias;
    s->run_lo = s->run_hi = 0;
    memset(s->head, 0, ((size_t)1 << s->hbits) * sizeof *s->head);
    if (s->head3 != NULL) {
        memset(s->head3, 0, ((size_t)1 << s->h3bits) * sizeof *s->head3);
    }
    s->olen = s->ooff = 0;
    s->bitbuf = 0;
    s->nbits = 0;
    s->total_in = s->total_out = 0;
    s->finished = s->final_done = 0;
    s->failed = s->buf == NULL;
}

otaup_dfl *otaup_dfl_new(unsigned window_bits, int effort)
{
    otaup_dfl *s;
    size_t nl;
    unsigned i;
    if (window_bits < 9u || window_bits > 15u || effort < 1 || effort > 4) {
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL) {
        return NULL;
    }
    s->effort = effort;
    s->par = &k_params[effort - 1];
    s->wbits = window_bits;
    s->wsize = (uint32_t)1 << window_bits;
    s->csize = 2u * s->wsize;
    s->cmask = s->csize - 1u;
    s->bias = s->wsize + 1u;
    s->cap = s->bias + s->wsize + s->csize + s->par->chunk + LOOKAHEAD + 16u;
    s->buf = malloc(s->cap);
    /* hash tables of about twice the window's positions, at most 2^16 */
    if (effort >= OTAUP_DFL_OPT) {
        s->hbits = window_bits + 1u;
        s->h3bits = window_bits;
        s->head3 = calloc((size_t)1 << s->h3bits, sizeof *s->head3);
        nl = 2u * (size_t)s->csize;
    } else {
        s->hbits = effort == OTAUP_DFL_FAST ? (window_bits < 14u ? window_bits : 14u) : window_bits;
        nl = s->csize;
    }
    s->head = calloc((size_t)1 << s->hbits, sizeof *s->head);
    s->link = calloc(nl, sizeof *s->link);
    if (s->buf == NULL || s->head == NULL || s->link == NULL || (effort >= OTAUP_DFL_OPT && s->head3 == NULL)) {
        otaup_dfl_free(s);
        return NULL;
    }
    s->flog[0] = 0.0f;
    for (i = 1; i < FLOG_N; i++) {
        s->flog[i] = (float)((double)i * dfl_log2((double)i));
    }
    otaup_dfl_reset(s);
    if (out_reserve(s, 4096u) < 0) {
        otaup_dfl_free(s);
        return NULL;
    }
    return s;
}

void otaup_dfl_free(otaup_dfl *s)
{
    if (s == NULL) {
        return;
    }
    free(s->buf);
    free(s->head);
    free(s->head3);
    free(s->link);
    free(s->items);
    free(s->items2);
    free(s->alt);
    free(s->tmp);
    free(s->mc_idx);
    free(s->mc);
    free(s->cost);
    free(s->from);
    free(s->out);
    free(s);
}

int otaup_dfl_write(otaup_dfl *s, const void *in, size_t len, int flush)
{
    const uint8_t *p = in;
    const uint32_t full = s != NULL ? s->par->chunk + LOOKAHEAD : 0;
    int rc;
    if (s == NULL || (in == NULL && len > 0) || flush < OTAUP_DFL_NO_FLUSH || flush > OTAUP_DFL_FINISH) {
        return OTAUP_E_INVAL;
    }
    if (s->failed) {
        return OTAUP_E_NOMEM;
    }
    if (s->finished) {
        return OTAUP_E_STATE;
    }
    while (len > 0) {
        uint32_t pend = s->end - s->pos, k;
        if (pend >= full) {
            if ((rc = compress_to(s, s->pos + s->par->chunk, 0)) < 0) {
                return rc;
            }
            continue;
        }
        if (s->cap - s->end < full - pend) {
            slide(s);
        }
        k = full - pend;
        if (k > s->cap - s->end) {
            k = s->cap - s->end;
        }
        if (k > len) {
            k = (uint32_t)len;
        }
        memcpy(s->buf + s->end, p, k);
        s->end += k;
        p += k;
        len -= k;
        s->total_in += k;
    }
    while (s->end - s->pos >= full) {
        if ((rc = compress_to(s, s->pos + s->par->chunk, 0)) < 0) {
            return rc;
        }
    }
    if (flush == OTAUP_DFL_NO_FLUSH) {
        return 0;
    }
    while (s->pos < s->end) {
        uint32_t b = s->end - s->pos > s->par->chunk ? s->pos + s->par->chunk : s->end;
        if ((rc = compress_to(s, b, flush == OTAUP_DFL_FINISH && b == s->end)) < 0) {
            return rc;
        }
    }
    if (out_reserve(s, 16u) < 0) {
        return OTAUP_E_NOMEM;
    }
    if (flush == OTAUP_DFL_FINISH) {
        if (!s->final_done) {
            bw_put(s, 3u, 3u); /* an empty final block: fixed code, end of block */
            bw_put(s, 0u, 7u);
        }
        bw_align(s);
        s->finished = 1;
    } else if (flush == OTAUP_DFL_SYNC) {
        bw_put(s, 0u, 3u);
        bw_align(s);
        s->out[s->olen++] = 0x00;
        s->out[s->olen++] = 0x00;
        s->out[s->olen++] = 0xFF;
        s->out[s->olen++] = 0xFF;
        s->total_out += 4u;
    } else {
        bw_bytes(s);
    }
    return 0;
}

const uint8_t *otaup_dfl_output(const otaup_dfl *s, size_t *len)
{
    if (s == NULL) {
        *len = 0;
        return NULL;
    }
    *len = s->olen - s->ooff;
    return s->out + s->ooff;
}

void otaup_dfl_consume(otaup_dfl *s, size_t n)
{
    if (s == NULL) {
        return;
    }
    if (n > s->olen - s->ooff) {
        n = s->olen - s->ooff;
    }
    s->ooff += n;
    if (s->ooff == s->olen) {
        s->ooff = s->olen = 0;
    }
}

uint64_t otaup_dfl_total_in(const otaup_dfl *s)
{
    return s != NULL ? s->total_in : 0;
}

uint64_t otaup_dfl_total_out(const otaup_dfl *s)
{
    return s != NULL ? s->total_out : 0;
}

size_t otaup_dfl_bound(size_t len)
{
    /* stored blocks: 5 bytes per 65535, plus a final empty block and slack */
    return len + 5u * (len / STORED_MAX + 1u) + 16u;
}

int otaup_dfl_compress(const void *in, size_t len, unsigned window_bits, int effort, uint8_t **out,
                       size_t *out_len)
{
    otaup_dfl *s;
    const uint8_t *o;
    size_t n;
    int rc;
    if (out == NULL || out_len == NULL || (in == NULL && len > 0)) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    s = otaup_dfl_new(window_bits, effort);
    if (s == NULL) {
        return window_bits < 9u || window_bits > 15u || effort < 1 || effort > 4 ? OTAUP_E_INVAL : OTAUP_E_NOMEM;
    }
    rc = otaup_dfl_write(s, in, len, OTAUP_DFL_FINISH);
    if (rc == 0) {
        o = otaup_dfl_output(s, &n);
        *out = malloc(n ? n : 1u);
        if (*out == NULL) {
            rc = OTAUP_E_NOMEM;
        } else {
            memcpy(*out, o, n);
            *out_len = n;
        }
    }
    otaup_dfl_free(s);
    return rc;
}
