/*
 * Matching NEW against OLD (docs/delta-format.md, "Delta engine").
 *
 * Index: the hash of the HASH_LEN bytes at every offset of OLD, in a
 * table of chains (the most recent offsets first). Scan: at an offset of
 * NEW, the candidates are the offset that continues the current
 * alignment (relocated code keeps its offset for long runs) and at most
 * CHAIN_DEPTH offsets of OLD with the same hash; each is confirmed and
 * measured by comparing bytes, the longest wins (ties: the current
 * alignment). Matches are then extended approximately in both directions
 * (keeping an alignment while at least half of the bytes agree), which
 * turns relocated code, whose embedded addresses shifted, into mostly-zero
 * differences. The result is a list of covers (dl_int.h); literal bytes
 * lie between them.
 *
 * The scan follows the classic approach of bsdiff (Colin Percival,
 * "Naive differences of executable code"): a new alignment is taken when
 * its exact match beats what the current alignment matches over the same
 * bytes by NEW_ALIGN_GAIN; the extension rules are bsdiff's. The index is
 * linear in time and memory where bsdiff sorts suffixes.
 */
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "server/dl_int.h"

int dl_covers_push(dl_covers *c, uint32_t npos, uint32_t opos, uint32_t len)
{
    if (len == 0) {
        return 0;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        dl_cover *v = realloc(c->v, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        c->v = v;
        c->cap = nc;
    }
    c->v[c->n].npos = npos;
    c->v[c->n].opos = opos;
    c->v[c->n].len = len;
    c->n++;
    return 0;
}

void dl_covers_free(dl_covers *c)
{
    free(c->v);
    memset(c, 0, sizeof *c);
}

/* Bytes hashed per index entry: the shortest match found at a new offset. */
#define HASH_LEN 8
/* Candidates examined per search besides the current alignment. */
#define CHAIN_DEPTH 24
/* A match this long ends the search early. */
#define GOOD_MATCH 4096
/* Offsets of OLD indexed: every INDEX_STEP-th (a match is found at most
 * INDEX_STEP - 1 bytes late; the backward extension recovers them). */
#define INDEX_STEP 2u
/* Work of the approximate extensions, per byte of NEW, before they are
 * bounded to EXT_BOUNDED bytes each (bsdiff's scan can go quadratic). */
#define EXT_BUDGET 64
#define EXT_BOUNDED 4096

typedef struct hidx {
    const uint8_t *old;
    int64_t olen;
    const uint8_t *nw;
    int64_t nlen;
    int32_t *head;   /* per hash: the most recent offset, -1 none */
    int32_t *chain;  /* per indexed offset (/ INDEX_STEP): the previous one with the same hash */
    unsigned hbits;
} hidx;

static uint32_t hkey(const uint8_t *p, unsigned hbits)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return (uint32_t)((v * 0x9E3779B97F4A7C15ull) >> (64u - hbits));
}

static int64_t matchlen(const uint8_t *a, int64_t alen, const uint8_t *b, int64_t blen)
{
    int64_t i, n = alen < blen ? alen : blen;
    /* 8 bytes at a time, then bytes */
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) {
            break;
        }
    }
    while (i < n && a[i] == b[i]) {
        i++;
    }
    return i;
}

/* Number of equal bytes in a[0..n) and b[0..n). */
static int64_t count_eq(const uint8_t *a, const uint8_t *b, int64_t n)
{
    int64_t i, diff = 0;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t x, y, t;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        t = x ^ y;
        /* the top bit of each byte: set when the byte is not zero */
        t = (((t & 0x7F7F7F7F7F7F7F7Full) + 0x7F7F7F7F7F7F7F7Full) | t) & 0x8080808080808080ull;
        diff += (int64_t)(((t >> 7) * 0x0101010101010101ull) >> 56); /* bytes that differ */
    }
    for (; i < n; i++) {
        diff += a[i] != b[i];
    }
    return n - diff;
}

/*
 * The approximate extensions track the score 2 * (equal bytes) - (bytes
 * visited) and keep the first place where it is highest. Over 8 byte
 * pairs whose equalities are the bits of m (bit t: the t-th pair
 * visited), for k = 1..8: rise is the highest 2 * equal - k, at the
 * first k that reaches it, eq the equal pairs among those k, pop all
 * equal pairs. A run of 8 then costs one table look-up instead of 8
 * steps, with the same result.
 */
typedef struct ext_tab {
    int8_t rise[256];
    uint8_t at[256], eq[256], pop[256];
    uint8_t rev[256]; /* bits reversed */
    int little;       /* the first byte in memory is the low byte of a word */
} ext_tab;

static void ext_tab_init(ext_tab *t)
{
    unsigned m, k;
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    t->little = first == 1;
    for (m = 0; m < 256u; m++) {
        unsigned r = 0;
        for (k = 0; k < 8u; k++) {
            r |= ((m >> k) & 1u) << (7u - k);
        }
        t->rev[m] = (uint8_t)r;
        int v = 0, best = -100;
        unsigned e = 0;
        for (k = 1; k <= 8u; k++) {
            if ((m >> (k - 1u)) & 1u) {
                e++;
                v++;
            } else {
                v--;
            }
            if (v > best) {
                best = v;
                t->at[m] = (uint8_t)k;
                t->eq[m] = (uint8_t)e;
            }
        }
        t->rise[m] = (int8_t)best;
        t->pop[m] = (uint8_t)e;
    }
}

/* bit j: byte j of the words x and y (low byte first) are equal */
static unsigned word_eq_mask(uint64_t x, uint64_t y)
{
    uint64_t t = x ^ y;
    /* the top bit of each byte: set when the byte is zero */
    t = ~(((t & 0x7F7F7F7F7F7F7F7Full) + 0x7F7F7F7F7F7F7F7Full) | t) & 0x8080808080808080ull;
    return (unsigned)(((t >> 7) * 0x0102040810204080ull) >> 56);
}

/* Equal bytes of nw[from..to) and old at offset `off` (bytes outside OLD do not count). */
static int64_t score_at(const uint8_t *old, int64_t olen, const uint8_t *nw, int64_t from, int64_t to, int64_t off)
{
    if (from < -off) {
        from = -off;
    }
    if (to > olen - off) {
        to = olen - off;
    }
    return to > from ? count_eq(old + from + off, nw + from, to - from) : 0;
}

static int hidx_build(hidx *h, const uint8_t *old, uint32_t old_len, const uint8_t *nw, uint32_t new_len)
{
    uint32_t i, n;
    memset(h, 0, sizeof *h);
    h->old = old;
    h->olen = old_len;
    h->nw = nw;
    h->nlen = new_len;
    h->hbits = 12;
    while (h->hbits < 22 && (1u << h->hbits) < old_len / INDEX_STEP) {
        h->hbits++;
    }
    h->head = dl_malloc_big(((size_t)1 << h->hbits) * sizeof *h->head);
    h->chain = dl_malloc_big(((size_t)old_len / INDEX_STEP + 1u) * sizeof *h->chain);
    if (h->head == NULL || h->chain == NULL) {
        return OTAUP_E_NOMEM;
    }
    memset(h->head, 0xFF, ((size_t)1 << h->hbits) * sizeof *h->head);
    n = old_len >= HASH_LEN ? old_len - HASH_LEN + 1u : 0;
    {
        /* each key is computed once, 16 positions ahead, its head
         * prefetched, and kept in a ring until its position comes */
        uint32_t ring[16];
        for (i = 0; i < 16u * INDEX_STEP && i < n; i += INDEX_STEP) {
            ring[(i / INDEX_STEP) & 15u] = hkey(old + i, h->hbits);
        }
        for (i = 0; i < n; i += INDEX_STEP) {
            uint32_t slot = (i / INDEX_STEP) & 15u, k = ring[slot];
            if (i + 16u * INDEX_STEP < n) {
                uint32_t ka = hkey(old + i + 16u * INDEX_STEP, h->hbits);
                ring[slot] = ka;
#if defined(__GNUC__)
                __builtin_prefetch(&h->head[ka], 1);
#endif
            }
            h->chain[i / INDEX_STEP] = h->head[k];
            h->head[k] = (int32_t)i;
        }
    }
    return 0;
}

static void hidx_free(hidx *h)
{
    free(h->head);
    free(h->chain);
}

/*
 * Longest match of nw[scan..] in old among the candidates: the current
 * alignment (pref_off, INT64_MIN: none) first, then the hash chain. Ties go
 * to the current alignment.
 */
static int64_t search(const hidx *h, int64_t scan, int64_t pref_off, int64_t *pos)
{
    const uint8_t *key = h->nw + scan;
    int64_t klen = h->nlen - scan, best = 0, bestpos = 0, pp = -1;
    int32_t c;
    int depth;
    if (pref_off != INT64_MIN && scan + pref_off >= 0 && scan + pref_off < h->olen) {
        pp = scan + pref_off;
        best = matchlen(h->old + pp, h->olen - pp, key, klen);
        bestpos = pp;
    }
    if (klen >= HASH_LEN && best < GOOD_MATCH) {
        for (c = h->head[hkey(key, h->hbits)], depth = 0; c >= 0 && depth < CHAIN_DEPTH;
             c = h->chain[(uint32_t)c / INDEX_STEP], depth++) {
            int64_t l;
            if (c == pp || (best < klen && c + best < h->olen && h->old[c + best] != key[best])) {
                continue; /* cannot be longer */
            }
            l = matchlen(h->old + c, h->olen - c, key, klen);
            if (l > best) {
                best = l;
                bestpos = c;
                if (best >= GOOD_MATCH) {
                    break;
                }
            }
        }
    }
    *pos = bestpos;
    return best;
}

/* A new alignment must match this many bytes more than the current one. */
#define NEW_ALIGN_GAIN 5
/* Exact continuation of the current alignment this long skips the search. */
#define FAST_CONTINUE 32

int dl_match(const uint8_t *old, uint32_t old_len, const uint8_t *nw, uint32_t new_len,
             const dl_match_opts *mo, dl_covers *out)
{
    hidx c;
    ext_tab et;
    int64_t scan = 0, len = 0, pos = 0, lastscan = 0, lastpos = 0, lastoffset = 0;
    int64_t oldsize = old_len, newsize = new_len;
    int64_t next_report = 0, budget = EXT_BUDGET * ((int64_t)new_len + 1);
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (old_len == 0 || new_len == 0) {
        return 0;
    }
    if (mo != NULL && mo->progress != NULL) {
        mo->progress("index", 0, old_len, mo->payload);
    }
    ext_tab_init(&et);
    rc = hidx_build(&c, old, old_len, nw, new_len);
    if (rc < 0) {
        hidx_free(&c);
        return rc;
    }

    while (scan < newsize) {
        int64_t oldscore = 0, scsc;
        if (mo != NULL && mo->progress != NULL && scan >= next_report) {
            mo->progress("match", (uint64_t)scan, (uint64_t)newsize, mo->payload);
            next_report = scan + (1 << 18);
        }
        for (scsc = scan += len; scan < newsize; scan++) {
            /* Fast path: the current alignment continues exactly for a while. */
            if (scan + lastoffset >= 0 && scan + lastoffset < oldsize) {
                int64_t pl = matchlen(old + scan + lastoffset, oldsize - scan - lastoffset, nw + scan,
                                      newsize - scan);
                if (pl >= FAST_CONTINUE) {
                    /* account those bytes (all equal) to the old alignment and jump */
                    if (scsc < scan) { /* a byte before scan that did not match */
                        oldscore += score_at(old, oldsize, nw, scsc, scan, lastoffset);
                        scsc = scan;
                    }
                    if (scsc < scan + pl) {
                        oldscore += scan + pl - scsc;
                        scsc = scan + pl;
                    }
                    len = pl;
                    pos = scan + lastoffset;
                    break;
                }
            }
            len = search(&c, scan, lastoffset, &pos);
            if (scsc < scan + len) {
                oldscore += score_at(old, oldsize, nw, scsc, scan + len, lastoffset);
                scsc = scan + len;
            }
            if ((len == oldscore && len != 0) || len > oldscore + NEW_ALIGN_GAIN) {
                break;
            }
            if (scan + lastoffset >= 0 && scan + lastoffset < oldsize &&
                old[scan + lastoffset] == nw[scan]) {
                oldscore--;
            }
        }
        if (len != oldscore || scan == newsize) {
            int64_t s = 0, sf = 0, lenf = 0, i, lenb = 0;
            int64_t ext = budget > 0 ? INT64_MAX : EXT_BOUNDED;
            for (i = 0; lastscan + i < scan && lastpos + i < oldsize && i < ext;) {
                /* 8 bytes at a time (ext_tab) */
                if (lastscan + i + 8 <= scan && lastpos + i + 8 <= oldsize && i + 8 <= ext) {
                    uint64_t x, y;
                    unsigned m;
                    memcpy(&x, old + lastpos + i, 8);
                    memcpy(&y, nw + lastscan + i, 8);
                    m = word_eq_mask(x, y); /* bit t: the t-th pair visited */
                    if (!et.little) {
                        m = et.rev[m];
                    }
                    if (s * 2 - i + et.rise[m] > sf * 2 - lenf) {
                        sf = s + et.eq[m];
                        lenf = i + et.at[m];
                    }
                    s += et.pop[m];
                    i += 8;
                    continue;
                }
                if (old[lastpos + i] == nw[lastscan + i]) {
                    s++;
                }
                i++;
                if (s * 2 - i > sf * 2 - lenf) {
                    sf = s;
                    lenf = i;
                }
            }
            budget -= i;
            if (scan < newsize) {
                int64_t sb = 0;
                s = 0;
                for (i = 1; scan >= lastscan + i && pos >= i && i <= ext; i++) {
                    /* bytes i .. i+7 before scan, as in the forward extension */
                    if (scan >= lastscan + i + 7 && pos >= i + 7 && i + 7 <= ext) {
                        uint64_t x, y;
                        unsigned m;
                        memcpy(&x, old + pos - i - 7, 8);
                        memcpy(&y, nw + scan - i - 7, 8);
                        m = word_eq_mask(x, y); /* visited from the last byte down */
                        if (et.little) {
                            m = et.rev[m];
                        }
                        /* i - 1 bytes visited so far */
                        if (s * 2 - (i - 1) + et.rise[m] > sb * 2 - lenb) {
                            sb = s + et.eq[m];
                            lenb = i - 1 + et.at[m];
                        }
                        s += et.pop[m];
                        i += 7;
                        continue;
                    }
                    if (old[pos - i] == nw[scan - i]) {
                        s++;
                    }
                    if (s * 2 - i > sb * 2 - lenb) {
                        sb = s;
                        lenb = i;
                    }
                }
                budget -= i;
            }
            if (lastscan + lenf > scan - lenb) {
                int64_t overlap = (lastscan + lenf) - (scan - lenb), ss = 0, lens = 0;
                s = 0;
                for (i = 0; i < overlap; i++) {
                    if (nw[lastscan + lenf - overlap + i] == old[lastpos + lenf - overlap + i]) {
                        s++;
                    }
                    if (nw[scan - lenb + i] == old[pos - lenb + i]) {
                        s--;
                    }
                    if (s > ss) {
                        ss = s;
                        lens = i + 1;
                    }
                }
                lenf += lens - overlap;
                lenb -= lens;
            }
            rc = dl_covers_push(out, (uint32_t)lastscan, (uint32_t)lastpos, (uint32_t)lenf);
            if (rc < 0) {
                break;
            }
            lastscan = scan - lenb;
            lastpos = pos - lenb;
            lastoffset = pos - scan;
        }
    }
    hidx_free(&c);
    if (rc < 0) {
        dl_covers_free(out);
    }
    return rc;
}

/*
 * Matching NEW against a block signature of OLD (format 2, otaup/image.h):
 * OLD is known only as blocks of `bs` bytes, each with a rolling sum and
 * half of its XXH3-64. A window of `bs` bytes slides over NEW one byte at
 * a time, its rolling sum updated in O(1); the sum is looked up in a hash
 * table of the old blocks' sums, and a hit is confirmed by the XXH3 half
 * of the window. A confirmed block becomes (or extends) a cover and the
 * scan jumps past it; at the end of a cover the block that followed in
 * OLD is tried first (code that moved keeps its blocks in order), the
 * short last block of OLD included.
 *
 * A confirmation is probable, not certain: two different windows pass it
 * only if both their rolling sums and their XXH3 halves agree. The XXH3
 * half alone leaves 2^-32 per confirmation that runs on different
 * content, and confirmations of windows whose content does not match
 * (sum hits that the XXH3 half refutes) are bounded by SIG_FALSE_BUDGET,
 * so the chance of any false match in a plan is at most about
 * SIG_FALSE_BUDGET(n) * 2^-32; on ordinary data, where a sum hit between
 * different contents happens with probability about 2^-32 per pair, it
 * is about (positions of NEW) * (blocks of OLD) * 2^-64. A false match is
 * not caught by the planner's proof (it simulates on an OLD rebuilt from
 * the covers) but by the terminal: the step that holds it fails its step
 * hash before it writes anything (docs/delta-format.md, "Deltas from a
 * block signature").
 *
 * Work: one multiply-add pair per byte of NEW, one table probe per
 * position, one XXH3 of `bs` bytes per confirmed block (which the scan
 * then skips) and per sum hit, the latter bounded as above: O(n).
 */

/* Sum hits whose XXH3 half differs, before the scan stops confirming hits
 * away from a block boundary of NEW: a few per block of NEW, at least 1024. */
#define SIG_FALSE_BUDGET(new_len, bs) (1024u + 4u * ((new_len) / (bs)))

#define NO_BLOCK 0xFFFFFFFFu

static uint32_t roll_slot(uint32_t r, uint32_t mask)
{
    /* the low bits of a rolling sum depend only on the low bits of the
     * bytes: mix before masking */
    r ^= r >> 16;
    r *= 0x85EBCA6Bu;
    r ^= r >> 13;
    r *= 0xC2B2AE35u;
    r ^= r >> 16;
    return r & mask;
}

/* M^n mod 2^32 */
static uint32_t roll_pow(uint32_t n)
{
    uint32_t r = 1u, b = OTAUP_SIG_ROLL_MUL;
    while (n != 0) {
        if (n & 1u) {
            r *= b;
        }
        b *= b;
        n >>= 1;
    }
    return r;
}

typedef struct sigm {
    const otaup_sig *sig;
    const uint8_t *nw;
    uint32_t new_len, bs, nfull, tail;
    uint32_t *tab, mask;
    uint32_t false_left;    /* SIG_FALSE_BUDGET still available */
} sigm;

/* Is nw[pos..pos+len) old block b? (`roll`: its rolling sum, known) */
static int sig_confirm(sigm *m, uint32_t b, uint32_t pos, uint32_t len, uint32_t roll)
{
    uint64_t e = otaup_sig_block_hash(m->sig, b);
    if ((uint32_t)e != roll) {
        return 0;
    }
    if (otaup_sig_entry(m->nw + pos, len) == e) {
        return 1;
    }
    if (m->false_left > 0) {
        m->false_left--;
    }
    return 0;
}

/* A full old block whose entry is that of nw[pos..pos+bs) (rolling sum
 * `roll`), or NO_BLOCK. The XXH3 of the window is computed once. */
static uint32_t sig_lookup(sigm *m, uint32_t pos, uint32_t roll)
{
    uint32_t k = roll_slot(roll, m->mask), b;
    uint64_t e = 0;
    int have = 0;
    while ((b = m->tab[k]) != NO_BLOCK) {
        uint64_t be = otaup_sig_block_hash(m->sig, b);
        if ((uint32_t)be == roll) {
            if (!have) {
                e = otaup_sig_entry(m->nw + pos, m->bs);
                have = 1;
            }
            if (be == e) {
                return b;
            }
        }
        k = (k + 1u) & m->mask;
    }
    if (have && m->false_left > 0) {
        m->false_left--;
    }
    return NO_BLOCK;
}

int dl_match_sig(const otaup_sig *sig, const uint8_t *nw, uint32_t new_len, dl_covers *out)
{
    sigm m;
    uint32_t cap = 16, i, pos = 0, roll = 0, mbs, next = NO_BLOCK;
    int rc = 0, rolled = 0;
    memset(out, 0, sizeof *out);
    memset(&m, 0, sizeof m);
    m.sig = sig;
    m.nw = nw;
    m.new_len = new_len;
    m.bs = sig->info.block_size;
    m.nfull = sig->info.size / m.bs;
    m.tail = sig->info.size % m.bs;
    m.false_left = SIG_FALSE_BUDGET(new_len, m.bs);
    if (m.nfull == 0 || new_len < m.bs) {
        return 0;
    }
    /* open addressing on the rolling sum; identical blocks kept once */
    while (cap < m.nfull * 2u + 16u) {
        cap <<= 1;
    }
    m.tab = malloc(cap * sizeof *m.tab);
    if (m.tab == NULL) {
        return OTAUP_E_NOMEM;
    }
    m.mask = cap - 1u;
    memset(m.tab, 0xFF, cap * sizeof *m.tab);
    for (i = 0; i < m.nfull; i++) {
        uint64_t e = otaup_sig_block_hash(sig, i);
        uint32_t k = roll_slot((uint32_t)e, m.mask);
        while (m.tab[k] != NO_BLOCK && otaup_sig_block_hash(sig, m.tab[k]) != e) {
            k = (k + 1u) & m.mask;
        }
        if (m.tab[k] == NO_BLOCK) {
            m.tab[k] = i;
        }
    }
    mbs = roll_pow(m.bs);
    while (pos < new_len) {
        uint32_t b = NO_BLOCK, len = m.bs;
        /* the block that followed the previous one in OLD, the short last one included */
        if (next != NO_BLOCK) {
            len = next < m.nfull ? m.bs : m.tail;
            if (len > 0 && new_len - pos >= len &&
                sig_confirm(&m, next, pos, len, otaup_sig_roll(nw + pos, len))) {
                b = next;
            } else {
                len = m.bs;
            }
            next = NO_BLOCK;
            rolled = 0;
        }
        if (b == NO_BLOCK) {
            if (new_len - pos < m.bs) {
                break;
            }
            if (!rolled) {
                roll = otaup_sig_roll(nw + pos, m.bs);
                rolled = 1;
            }
            /* out of budget: confirm only at block boundaries of NEW */
            if (m.false_left > 0 || pos % m.bs == 0) {
                b = sig_lookup(&m, pos, roll);
            }
        }
        if (b == NO_BLOCK) {
            /* slide by one byte */
            if (new_len - pos <= m.bs) {
                break;
            }
            roll = roll * OTAUP_SIG_ROLL_MUL - (uint32_t)nw[pos] * mbs + (uint32_t)nw[pos + m.bs];
            pos++;
            continue;
        }
        if (out->n > 0 && out->v[out->n - 1].npos + out->v[out->n - 1].len == pos &&
            out->v[out->n - 1].opos + out->v[out->n - 1].len == b * m.bs) {
            out->v[out->n - 1].len += len;
        } else if ((rc = dl_covers_push(out, pos, b * m.bs, len)) < 0) {
            break;
        }
        pos += len;
        next = b + 1u < m.nfull || (b + 1u == m.nfull && m.tail > 0) ? b + 1u : NO_BLOCK;
        rolled = 0;
    }
    free(m.tab);
    if (rc < 0) {
        dl_covers_free(out);
    }
    return rc;
}
