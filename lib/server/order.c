/*
 * In-place ordering. A window that erases sector S destroys the old
 * content of S; every other window that reads old S must run before it.
 * These read-after-write dependencies form a graph between windows
 * (windows of one big sector are one group, in address order). Each
 * strongly connected component is linearised with the order, among a few
 * candidates, whose backward dependencies read the fewest bytes; those
 * dependencies are given up, and the windows that had them are re-encoded
 * without the sources they lost (other sources or literals: the cost the
 * planner reports). Components follow each other in topological order,
 * lowest address first.
 */
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "server/dl_order.h"

typedef struct edge {
    uint32_t from, to; /* groups: `from` must precede `to` */
    uint64_t w;
} edge;

typedef struct erange {
    uint64_t a, b; /* absolute erase range (b may be 2^32: a flash up to the top) */
    uint32_t win;
} erange;

static int cmp_erange(const void *x, const void *y)
{
    const erange *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

static int cmp_edge(const void *x, const void *y)
{
    const edge *a = x, *b = y;
    if (a->from != b->from) {
        return a->from < b->from ? -1 : 1;
    }
    return a->to < b->to ? -1 : a->to > b->to;
}

static int cmp_range(const void *x, const void *y)
{
    const dl_range *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

/* First erase range ending after addr. */
static size_t er_find(const erange *er, size_t n, uint64_t addr)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (er[mid].b <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

typedef struct graph {
    uint32_t n;       /* groups */
    edge *e;
    size_t ne, cap;
    uint32_t *gof;    /* window -> group */
    uint32_t *gfirst; /* group -> first window */
} graph;

static int add_edge(graph *g, uint32_t from, uint32_t to, uint64_t w)
{
    if (g->ne == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 256;
        edge *v = realloc(g->e, nc * sizeof *v);
        if (v == NULL) {
            return OTAUP_E_NOMEM;
        }
        g->e = v;
        g->cap = nc;
    }
    g->e[g->ne].from = from;
    g->e[g->ne].to = to;
    g->e[g->ne].w = w;
    g->ne++;
    return 0;
}

/* Tarjan's SCC, iterative. comp[v] = component id (reverse topological numbering). */
static int scc(uint32_t n, const size_t *off, const edge *e, uint32_t *comp, uint32_t *ncomp)
{
    uint32_t *idx = malloc(n * sizeof *idx), *low = malloc(n * sizeof *low);
    uint32_t *stk = malloc(n * sizeof *stk), *cs = malloc(n * sizeof *cs);
    size_t *it = malloc(n * sizeof *it);
    uint8_t *on = calloc(n ? n : 1u, 1);
    uint32_t counter = 0, sp = 0, csp = 0, v, c = 0;
    if (idx == NULL || low == NULL || stk == NULL || cs == NULL || it == NULL || on == NULL) {
        free(idx); free(low); free(stk); free(cs); free(it); free(on);
        return OTAUP_E_NOMEM;
    }
    for (v = 0; v < n; v++) {
        idx[v] = 0xFFFFFFFFu;
    }
    for (v = 0; v < n; v++) {
        if (idx[v] != 0xFFFFFFFFu) {
            continue;
        }
        cs[csp++] = v;
        idx[v] = low[v] = counter++;
        it[v] = off[v];
        stk[sp++] = v;
        on[v] = 1;
        while (csp > 0) {
            uint32_t u = cs[csp - 1];
            if (it[u] < off[u + 1]) {
                uint32_t w = e[it[u]++].to;
                if (idx[w] == 0xFFFFFFFFu) {
                    idx[w] = low[w] = counter++;
                    it[w] = off[w];
                    stk[sp++] = w;
                    on[w] = 1;
                    cs[csp++] = w;
                } else if (on[w] && idx[w] < low[u]) {
                    low[u] = idx[w];
                }
            } else {
                csp--;
                if (csp > 0) {
                    uint32_t p = cs[csp - 1];
                    if (low[u] < low[p]) {
                        low[p] = low[u];
                    }
                }
                if (low[u] == idx[u]) {
                    uint32_t w;
                    do {
                        w = stk[--sp];
                        on[w] = 0;
                        comp[w] = c;
                    } while (w != u);
                    c++;
                }
            }
        }
    }
    *ncomp = c;
    free(idx); free(low); free(stk); free(cs); free(it); free(on);
    return 0;
}

/* Weight of edges that go backwards in `seq` (positions pos[]). */
static uint64_t back_weight(const graph *g, const uint32_t *members, uint32_t m, const uint32_t *pos,
                            const uint32_t *comp, uint32_t cid)
{
    uint64_t bw = 0;
    size_t i;
    (void)members;
    (void)m;
    for (i = 0; i < g->ne; i++) {
        const edge *e = &g->e[i];
        if (comp[e->from] == cid && comp[e->to] == cid && pos[e->from] > pos[e->to]) {
            bw += e->w;
        }
    }
    return bw;
}

/* Greedy (Eades-Lin-Smyth style) order of one component's members into out[]. */
static void els_order(const graph *g, const uint32_t *members, uint32_t m, const uint32_t *comp, uint32_t cid,
                      uint32_t *out, int64_t *delta, uint8_t *gone)
{
    uint32_t head = 0, tail = m, k, left = m;
    size_t i;
    for (k = 0; k < m; k++) {
        delta[members[k]] = 0;
        gone[members[k]] = 0;
    }
    for (i = 0; i < g->ne; i++) {
        const edge *e = &g->e[i];
        if (comp[e->from] == cid && comp[e->to] == cid && e->from != e->to) {
            delta[e->from] += (int64_t)e->w;
            delta[e->to] -= (int64_t)e->w;
        }
    }
    while (left > 0) {
        /* pick the member with the largest out-in weight; place it first */
        uint32_t best = 0xFFFFFFFFu;
        for (k = 0; k < m; k++) {
            uint32_t v = members[k];
            if (!gone[v] && (best == 0xFFFFFFFFu || delta[v] > delta[best])) {
                best = v;
            }
        }
        gone[best] = 1;
        out[head++] = best;
        left--;
        for (i = 0; i < g->ne; i++) {
            const edge *e = &g->e[i];
            if (comp[e->from] != cid || comp[e->to] != cid || e->from == e->to) {
                continue;
            }
            if (e->from == best && !gone[e->to]) {
                delta[e->to] += (int64_t)e->w;
            } else if (e->to == best && !gone[e->from]) {
                delta[e->from] -= (int64_t)e->w;
            }
        }
    }
    (void)tail;
}

int dl_order(const dl_order_in *in, uint32_t *order, dl_order_result *res)
{
    uint32_t n = in->nwins, i, k;
    graph g;
    erange *er = NULL;
    size_t ner = 0;
    uint32_t *comp = NULL, ncomp = 0, *pos = NULL, *members = NULL, *tmp = NULL, *corder = NULL;
    size_t *off = NULL;
    int64_t *delta = NULL;
    uint8_t *gone = NULL;
    uint32_t *wpos = NULL;
    int rc = OTAUP_E_NOMEM;

    memset(&g, 0, sizeof g);
    memset(res, 0, sizeof *res);
    res->forbid = calloc(n, sizeof *res->forbid);
    g.gof = malloc(n * sizeof *g.gof);
    g.gfirst = malloc(n * sizeof *g.gfirst);
    er = malloc(n * sizeof *er);
    if (res->forbid == NULL || g.gof == NULL || g.gfirst == NULL || er == NULL) {
        goto out;
    }
    /* groups: a window joins the group of its chain's first window */
    for (i = 0; i < n; i++) {
        const dl_win *w = &in->wins[i];
        if ((uint32_t)w->chain_first == i) {
            g.gfirst[g.n] = i;
            g.gof[i] = g.n++;
        } else {
            g.gof[i] = g.gof[w->chain_first];
        }
        if (w->erases) {
            er[ner].a = w->erase_addr;
            er[ner].b = (uint64_t)w->erase_addr + w->erase_len;
            er[ner].win = i;
            ner++;
        }
    }
    if (ner > 1) {
        qsort(er, ner, sizeof *er, cmp_erange);
    }
    /* dependencies */
    for (i = 0; i < n; i++) {
        const dl_win *w = &in->wins[i];
        for (k = 0; k < w->nops; k++) {
            const otaup_plan_op *op = &in->ops[w->first_op + k];
            size_t j;
            uint64_t a, b;
            if (op->type != OTAUP_REC_COPY && op->type != OTAUP_REC_DIFF) {
                continue;
            }
            a = op->src;
            b = (uint64_t)op->src + op->len;
            for (j = er_find(er, ner, a); j < ner && er[j].a < b; j++) {
                uint32_t e = er[j].win;
                uint64_t oa = a > er[j].a ? a : er[j].a, ob = b < er[j].b ? b : er[j].b;
                if (g.gof[e] == g.gof[i]) {
                    continue; /* inside the group: handled by the forbid pass */
                }
                rc = add_edge(&g, g.gof[i], g.gof[e], ob - oa);
                if (rc < 0) {
                    goto out;
                }
            }
        }
    }
    rc = OTAUP_E_NOMEM;
    /* merge parallel edges */
    if (g.ne > 1) {
        qsort(g.e, g.ne, sizeof *g.e, cmp_edge);
    }
    {
        size_t r, wi = 0;
        for (r = 0; r < g.ne; r++) {
            if (wi > 0 && g.e[wi - 1].from == g.e[r].from && g.e[wi - 1].to == g.e[r].to) {
                g.e[wi - 1].w += g.e[r].w;
            } else {
                g.e[wi++] = g.e[r];
            }
        }
        g.ne = wi;
    }
    off = calloc((size_t)g.n + 1u, sizeof *off);
    comp = malloc((g.n ? g.n : 1u) * sizeof *comp);
    pos = malloc((g.n ? g.n : 1u) * sizeof *pos);
    members = malloc((g.n ? g.n : 1u) * sizeof *members);
    tmp = malloc((g.n ? g.n : 1u) * sizeof *tmp);
    corder = malloc((g.n ? g.n : 1u) * sizeof *corder);
    delta = malloc((g.n ? g.n : 1u) * sizeof *delta);
    gone = malloc(g.n ? g.n : 1u);
    wpos = malloc((n ? n : 1u) * sizeof *wpos);
    if (off == NULL || comp == NULL || pos == NULL || members == NULL || tmp == NULL || corder == NULL ||
        delta == NULL || gone == NULL || wpos == NULL) {
        goto out;
    }
    {
        size_t r;
        for (r = 0; r < g.ne; r++) {
            off[g.e[r].from + 1]++;
        }
        for (i = 0; i < g.n; i++) {
            off[i + 1] += off[i];
        }
    }
    rc = scc(g.n, off, g.e, comp, &ncomp);
    if (rc < 0) {
        goto out;
    }
    rc = OTAUP_E_NOMEM;
    /*
     * Component order: Tarjan numbers components in reverse topological
     * order of the edges "from must precede to", so higher ids go first.
     * Among independent components keep address order: a Kahn pass over
     * the condensation with the smallest first group as priority.
     */
    {
        uint32_t *indeg = calloc(ncomp ? ncomp : 1u, sizeof *indeg);
        uint32_t *cmin = malloc((ncomp ? ncomp : 1u) * sizeof *cmin);
        uint8_t *done = calloc(ncomp ? ncomp : 1u, 1);
        uint32_t placed = 0, c;
        size_t r;
        if (indeg == NULL || cmin == NULL || done == NULL) {
            free(indeg); free(cmin); free(done);
            goto out;
        }
        for (c = 0; c < ncomp; c++) {
            cmin[c] = 0xFFFFFFFFu;
        }
        for (i = 0; i < g.n; i++) {
            if (i < cmin[comp[i]]) {
                cmin[comp[i]] = i;
            }
        }
        for (r = 0; r < g.ne; r++) {
            if (comp[g.e[r].from] != comp[g.e[r].to]) {
                indeg[comp[g.e[r].to]]++;
            }
        }
        /* O(ncomp^2) selection is fine for the few thousand steps of an image,
         * but use a simple bucket by cmin order to stay linear-ish */
        {
            uint32_t *byaddr = malloc((ncomp ? ncomp : 1u) * sizeof *byaddr), scan = 0;
            if (byaddr == NULL) {
                free(indeg); free(cmin); free(done);
                goto out;
            }
            /* groups are numbered in address order, so cmin order = first group order */
            for (i = 0, c = 0; i < g.n; i++) {
                if (cmin[comp[i]] == i) {
                    byaddr[c++] = comp[i];
                }
            }
            while (placed < ncomp) {
                uint32_t pick = 0xFFFFFFFFu, s;
                for (s = scan; s < ncomp; s++) {
                    if (!done[byaddr[s]] && indeg[byaddr[s]] == 0) {
                        pick = byaddr[s];
                        break;
                    }
                }
                if (pick == 0xFFFFFFFFu) {
                    free(byaddr); free(indeg); free(cmin); free(done);
                    rc = OTAUP_E_INTERNAL;
                    goto out;
                }
                done[pick] = 1;
                corder[placed++] = pick;
                while (scan < ncomp && done[byaddr[scan]]) {
                    scan++;
                }
                for (i = 0; i < g.n; i++) {
                    if (comp[i] != pick) {
                        continue;
                    }
                    for (r = off[i]; r < off[i + 1]; r++) {
                        if (comp[g.e[r].to] != pick) {
                            indeg[comp[g.e[r].to]]--;
                        }
                    }
                }
            }
            free(byaddr);
        }
        free(indeg);
        free(cmin);
        free(done);
    }
    /* members of each component, and the best linear order inside it */
    {
        uint32_t *start = calloc((size_t)ncomp + 1u, sizeof *start);
        uint32_t *fillp = malloc((ncomp ? ncomp : 1u) * sizeof *fillp);
        uint32_t c, outk = 0;
        if (start == NULL || fillp == NULL) {
            free(start); free(fillp);
            goto out;
        }
        for (i = 0; i < g.n; i++) {
            start[comp[i] + 1]++;
        }
        for (c = 0; c < ncomp; c++) {
            start[c + 1] += start[c];
            fillp[c] = start[c];
        }
        for (i = 0; i < g.n; i++) {
            members[fillp[comp[i]]++] = i; /* ascending group (address) order */
        }
        for (k = 0; k < ncomp; k++) {
            uint32_t cid = corder[k], m = start[cid + 1] - start[cid];
            uint32_t *mem = members + start[cid];
            if (m > 1) {
                uint64_t bw_best, bw;
                uint32_t j;
                /* candidate 1: ascending */
                for (j = 0; j < m; j++) {
                    pos[mem[j]] = j;
                }
                bw_best = back_weight(&g, mem, m, pos, comp, cid);
                memcpy(tmp, mem, m * sizeof *tmp);
                /* candidate 2: descending */
                for (j = 0; j < m; j++) {
                    pos[mem[j]] = m - 1u - j;
                }
                bw = back_weight(&g, mem, m, pos, comp, cid);
                if (bw < bw_best) {
                    bw_best = bw;
                    for (j = 0; j < m; j++) {
                        tmp[j] = mem[m - 1u - j];
                    }
                }
                /* candidate 3: greedy by weight balance */
                if (bw_best > 0 && m <= 4096u) {
                    uint32_t *alt = corder + ncomp; /* unused tail? use a fresh buffer */
                    (void)alt;
                    alt = malloc(m * sizeof *alt);
                    if (alt != NULL) {
                        els_order(&g, mem, m, comp, cid, alt, delta, gone);
                        for (j = 0; j < m; j++) {
                            pos[alt[j]] = j;
                        }
                        bw = back_weight(&g, mem, m, pos, comp, cid);
                        if (bw < bw_best) {
                            bw_best = bw;
                            memcpy(tmp, alt, m * sizeof *tmp);
                        }
                        free(alt);
                    }
                }
                memcpy(mem, tmp, m * sizeof *mem);
                for (j = 0; j < m; j++) {
                    pos[mem[j]] = j;
                }
                res->removed_weight += bw_best;
            } else {
                pos[mem[0]] = 0;
            }
            for (i = 0; i < m; i++) {
                uint32_t grp = mem[i], wv = g.gfirst[grp];
                /* expand the group: its windows are consecutive, chain first */
                do {
                    order[outk++] = wv;
                    wv++;
                } while (wv < n && in->wins[wv].chain_first == (int32_t)g.gfirst[grp] && wv != g.gfirst[grp]);
            }
        }
        free(start);
        free(fillp);
        if (outk != n) {
            rc = OTAUP_E_INTERNAL;
            goto out;
        }
    }
    /* count the dependencies given up */
    for (i = 0; i < n; i++) {
        wpos[order[i]] = i;
    }
    {
        size_t r;
        for (r = 0; r < g.ne; r++) {
            if (wpos[g.gfirst[g.e[r].from]] > wpos[g.gfirst[g.e[r].to]]) {
                res->removed_edges++;
            }
        }
    }
    /* what each window may not read: sectors erased before it (and its own
     * when there is no scratch, and its big sector when it is not the first) */
    for (i = 0; i < n; i++) {
        dl_win *w = &in->wins[i];
        dl_forbid *fb = &res->forbid[i];
        size_t cap = 0;
        w->needs_reencode = 0;
        for (k = 0; k < w->nops; k++) {
            const otaup_plan_op *op = &in->ops[w->first_op + k];
            size_t j;
            uint64_t a, b;
            if (op->type != OTAUP_REC_COPY && op->type != OTAUP_REC_DIFF) {
                continue;
            }
            a = op->src;
            b = (uint64_t)op->src + op->len;
            for (j = er_find(er, ner, a); j < ner && er[j].a < b; j++) {
                uint32_t e = er[j].win;
                int bad;
                if (e == i) {
                    bad = !in->scratch;
                } else if ((uint32_t)w->chain_first == e) {
                    bad = 1;
                } else {
                    bad = wpos[e] < wpos[i];
                }
                if (!bad) {
                    continue;
                }
                if (fb->n == cap) {
                    size_t nc = cap ? cap * 2 : 8;
                    dl_range *v = realloc(fb->v, nc * sizeof *v);
                    if (v == NULL) {
                        goto out;
                    }
                    fb->v = v;
                    cap = nc;
                }
                fb->v[fb->n].a = (uint64_t)er[j].a - in->source_addr;
                fb->v[fb->n].b = (uint64_t)er[j].b - in->source_addr;
                fb->n++;
                w->needs_reencode = 1;
            }
        }
        if (fb->n > 1) {
            size_t r, wi = 0;
            qsort(fb->v, fb->n, sizeof *fb->v, cmp_range);
            for (r = 0; r < fb->n; r++) {
                if (wi > 0 && fb->v[r].a <= fb->v[wi - 1].b) {
                    if (fb->v[r].b > fb->v[wi - 1].b) {
                        fb->v[wi - 1].b = fb->v[r].b;
                    }
                } else {
                    fb->v[wi++] = fb->v[r];
                }
            }
            fb->n = wi;
        }
    }
    rc = 0;
out:
    free(g.e);
    free(g.gof);
    free(g.gfirst);
    free(er);
    free(off);
    free(comp);
    free(pos);
    free(members);
    free(tmp);
    free(corder);
    free(delta);
    free(gone);
    free(wpos);
    if (rc < 0) {
        dl_order_free(res, n);
    }
    return rc;
}

void dl_order_free(dl_order_result *res, uint32_t nwins)
{
    uint32_t i;
    if (res->forbid != NULL) {
        for (i = 0; i < nwins; i++) {
            free(res->forbid[i].v);
        }
        free(res->forbid);
        res->forbid = NULL;
    }
}

void dl_mark_self_reads(dl_win *wins, uint32_t nwins, const otaup_plan_op *ops, const otaup_geometry *geo)
{
    uint32_t i, k;
    (void)geo;
    for (i = 0; i < nwins; i++) {
        dl_win *w = &wins[i];
        w->self_read = 0;
        if (!w->erases) {
            continue;
        }
        for (k = 0; k < w->nops && !w->self_read; k++) {
            const otaup_plan_op *op = &ops[w->first_op + k];
            if ((op->type == OTAUP_REC_COPY || op->type == OTAUP_REC_DIFF) &&
                (uint64_t)op->src < (uint64_t)w->erase_addr + w->erase_len &&
                (uint64_t)w->erase_addr < (uint64_t)op->src + op->len) {
                w->self_read = 1;
            }
        }
    }
}
