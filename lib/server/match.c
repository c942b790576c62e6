/*
 * Matching NEW against OLD: a suffix array of OLD (libdivsufsort) finds
 * the longest exact match at any offset; matches are then extended
 * approximately in both directions (keeping an alignment while at least
 * half of the bytes agree), which is what turns relocated code, whose
 * embedded addresses shifted, into mostly-zero differences. The result is
 * a list of covers (dl_int.h); literal bytes lie between them.
 *
 * The scan follows the classic approach of bsdiff (Colin Percival,
 * "Naive differences of executable code"), with these changes: ties
 * between equally long exact matches are broken towards the current
 * alignment, and the current alignment is tried first at every position,
 * which skips the suffix-array search over most of a well-aligned image.
 */
#include <divsufsort.h>
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

typedef struct sa_ctx {
    const uint8_t *old;
    int64_t olen;
    const saidx_t *sa;
    const uint8_t *nw;
    int64_t nlen;
} sa_ctx;

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

/*
 * Longest match of nw[scan..] in old. Binary search over the suffix
 * array, keeping the longest common prefix seen; among the neighbours of
 * the final position, prefer the one whose offset equals `pref` (the
 * current alignment) when it is as long.
 */
static int64_t search(const sa_ctx *c, int64_t scan, int64_t pref_off, int64_t *pos)
{
    const uint8_t *key = c->nw + scan;
    int64_t klen = c->nlen - scan;
    int64_t lo = 0, hi = c->olen - 1, best = 0, bestpos = 0;
    int64_t llo = 0, lhi = 0; /* lcp with sa[lo], sa[hi] */
    if (c->olen == 0 || klen == 0) {
        *pos = 0;
        return 0;
    }
    llo = matchlen(c->old + c->sa[lo], c->olen - c->sa[lo], key, klen);
    lhi = matchlen(c->old + c->sa[hi], c->olen - c->sa[hi], key, klen);
    if (llo >= lhi) {
        best = llo;
        bestpos = c->sa[lo];
    } else {
        best = lhi;
        bestpos = c->sa[hi];
    }
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t m = llo < lhi ? llo : lhi; /* both bounds share m bytes with key */
        int64_t sp = c->sa[mid];
        int64_t l = m + matchlen(c->old + sp + m, c->olen - sp - m, key + m, klen - m);
        if (l > best || (l == best && sp - scan == pref_off)) {
            best = l;
            bestpos = sp;
        }
        if (l < klen && (sp + l == c->olen || c->old[sp + l] < key[l])) {
            lo = mid;
            llo = l;
        } else {
            hi = mid;
            lhi = l;
        }
    }
    /* the preferred alignment, if it is just as long */
    if (pref_off != INT64_MIN && scan + pref_off >= 0 && scan + pref_off < c->olen) {
        int64_t pp = scan + pref_off;
        int64_t l = matchlen(c->old + pp, c->olen - pp, key, klen);
        if (l >= best) {
            best = l;
            bestpos = pp;
        }
    }
    *pos = bestpos;
    return best;
}

/* A new alignment must match this many bytes more than the current one. */
#define NEW_ALIGN_GAIN 8
/* Exact continuation of the current alignment this long skips the search. */
#define FAST_CONTINUE 32

int dl_match(const uint8_t *old, uint32_t old_len, const uint8_t *nw, uint32_t new_len,
             const dl_match_opts *mo, dl_covers *out)
{
    sa_ctx c;
    saidx_t *sa = NULL;
    int64_t scan = 0, len = 0, pos = 0, lastscan = 0, lastpos = 0, lastoffset = 0;
    int64_t oldsize = old_len, newsize = new_len;
    int64_t next_report = 0;
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (old_len == 0 || new_len == 0) {
        return 0;
    }
    sa = malloc((size_t)old_len * sizeof *sa);
    if (sa == NULL) {
        return OTAUP_E_NOMEM;
    }
    if (mo != NULL && mo->progress != NULL) {
        mo->progress("index", 0, old_len, mo->payload);
    }
    if (divsufsort(old, sa, (saidx_t)old_len) != 0) {
        free(sa);
        return OTAUP_E_NOMEM;
    }
    c.old = old;
    c.olen = oldsize;
    c.sa = sa;
    c.nw = nw;
    c.nlen = newsize;

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
                    /* account those bytes to the old alignment and jump */
                    for (; scsc < scan + pl; scsc++) {
                        if (scsc + lastoffset >= 0 && scsc + lastoffset < oldsize &&
                            old[scsc + lastoffset] == nw[scsc]) {
                            oldscore++;
                        }
                    }
                    len = pl;
                    pos = scan + lastoffset;
                    break;
                }
            }
            len = search(&c, scan, lastoffset, &pos);
            for (; scsc < scan + len; scsc++) {
                if (scsc + lastoffset >= 0 && scsc + lastoffset < oldsize &&
                    old[scsc + lastoffset] == nw[scsc]) {
                    oldscore++;
                }
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
            for (i = 0; lastscan + i < scan && lastpos + i < oldsize;) {
                if (old[lastpos + i] == nw[lastscan + i]) {
                    s++;
                }
                i++;
                if (s * 2 - i > sf * 2 - lenf) {
                    sf = s;
                    lenf = i;
                }
            }
            if (scan < newsize) {
                int64_t sb = 0;
                s = 0;
                for (i = 1; scan >= lastscan + i && pos >= i; i++) {
                    if (old[pos - i] == nw[scan - i]) {
                        s++;
                    }
                    if (s * 2 - i > sb * 2 - lenb) {
                        sb = s;
                        lenb = i;
                    }
                }
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
    free(sa);
    if (rc < 0) {
        dl_covers_free(out);
    }
    return rc;
}

int dl_match_sig(const otaup_sig *sig, const uint8_t *nw, uint32_t new_len, dl_covers *out)
{
    /* Hash table of the old blocks (full blocks only), open addressing. */
    uint32_t bs = sig->info.block_size, nfull = sig->info.size / bs, cap = 16, i;
    uint32_t *tab;
    uint32_t pos = 0;
    int rc = 0;
    memset(out, 0, sizeof *out);
    while (cap < nfull * 2u + 16u) {
        cap <<= 1;
    }
    tab = malloc(cap * sizeof *tab);
    if (tab == NULL) {
        return OTAUP_E_NOMEM;
    }
    memset(tab, 0xFF, cap * sizeof *tab);
    for (i = 0; i < nfull; i++) {
        uint64_t h = otaup_sig_block_hash(sig, i);
        uint32_t k = (uint32_t)(h ^ (h >> 32)) & (cap - 1u);
        while (tab[k] != 0xFFFFFFFFu) {
            if (otaup_sig_block_hash(sig, tab[k]) == h) {
                break; /* keep the first block with this content */
            }
            k = (k + 1u) & (cap - 1u);
        }
        if (tab[k] == 0xFFFFFFFFu) {
            tab[k] = i;
        }
    }
    /* Only whole blocks at block boundaries of NEW are looked up: the
     * signature has no rolling hash, and hashing every offset would cost a
     * block's worth of hashing per byte. */
    while (pos + bs <= new_len && nfull > 0) {
        uint64_t h = otaup_hash64(nw + pos, bs);
        uint32_t k = (uint32_t)(h ^ (h >> 32)) & (cap - 1u);
        uint32_t hit = 0xFFFFFFFFu;
        while (tab[k] != 0xFFFFFFFFu) {
            if (otaup_sig_block_hash(sig, tab[k]) == h) {
                hit = tab[k];
                break;
            }
            k = (k + 1u) & (cap - 1u);
        }
        if (hit != 0xFFFFFFFFu) {
            if (out->n > 0 && out->v[out->n - 1].npos + out->v[out->n - 1].len == pos &&
                out->v[out->n - 1].opos + out->v[out->n - 1].len == hit * bs) {
                out->v[out->n - 1].len += bs;
            } else {
                rc = dl_covers_push(out, pos, hit * bs, bs);
                if (rc < 0) {
                    break;
                }
            }
        }
        pos += bs;
    }
    free(tab);
    if (rc < 0) {
        dl_covers_free(out);
    }
    return rc;
}
