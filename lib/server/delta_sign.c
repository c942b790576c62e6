/*
 * otaup — signing and offline verification of delta files
 * (docs/security.md §2, §4; docs/delta-format.md). Server side (C11).
 *
 * Signing rewrites the body: every DATA stream (one per restart point) is
 * decompressed, a CHAIN record is inserted before each END
 * (otaup_chain_build_segment), and the stream is recompressed with the
 * header's window. The header's body length, body hash and inner length
 * are updated; the manifest goes into a MANIFEST section.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/sec_int.h"
#include "core/sec_util.h"
#include "otaup/delta.h"
#include "otaup/error.h"
#include "otaup/features.h"
#include "otaup/image.h"
#include "otaup/record.h"
#include "otaup/sign.h"
#include "server/dl_deflate.h"

#define DATA_CHUNK 16384u

/* ---- growable buffer --------------------------------------------------- */

typedef struct gbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} gbuf;

static void gb_reserve(gbuf *b, size_t n)
{
    size_t nc;
    uint8_t *np;
    if (b->oom || b->cap - b->len >= n) {
        return;
    }
    nc = b->cap ? b->cap : 4096;
    while (nc - b->len < n) {
        if (nc > SIZE_MAX / 2) {
            b->oom = 1;
            return;
        }
        nc *= 2;
    }
    np = realloc(b->p, nc);
    if (np == NULL) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void gb_put(gbuf *b, const void *src, size_t n)
{
    gb_reserve(b, n);
    if (!b->oom && n > 0) {
        memcpy(b->p + b->len, src, n);
        b->len += n;
    }
}

/* ---- container pieces -------------------------------------------------- */

typedef struct container {
    otaup_delta_header hdr;
    size_t hdr_len;
    size_t sections;     /* offset of the section list */
    size_t body;         /* offset of the body */
    const uint8_t *mf;   /* MANIFEST section value or NULL */
    size_t mf_len;
} container;

static int split(const uint8_t *d, size_t len, container *ct)
{
    uint32_t body_off;
    int rc;
    memset(ct, 0, sizeof *ct);
    rc = otaup_delta_check(d, len, &ct->hdr, &body_off);
    if (rc != 0) {
        return rc;
    }
    ct->hdr_len = sec_le16(d + 10);
    ct->sections = ct->hdr_len;
    ct->body = body_off;
    rc = otaup_delta_find_manifest(d, body_off, &ct->mf, &ct->mf_len);
    if (rc == OTAUP_E_UNSIGNED) {
        ct->mf = NULL;
        rc = 0;
    }
    return rc;
}

/* ---- deflate streams --------------------------------------------------- */

static int inflate_all(const uint8_t *in, size_t len, unsigned wbits, gbuf *out)
{
    z_stream zs;
    int zr;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, -(int)wbits) != Z_OK) {
        return OTAUP_E_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    do {
        gb_reserve(out, 65536);
        if (out->oom) {
            inflateEnd(&zs);
            return OTAUP_E_NOMEM;
        }
        zs.next_out = out->p + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        zr = inflate(&zs, Z_NO_FLUSH);
        out->len = out->cap - zs.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            inflateEnd(&zs);
            return OTAUP_E_INFLATE;
        }
        if (zr == Z_BUF_ERROR && zs.avail_in == 0) {
            inflateEnd(&zs);
            return OTAUP_E_INFLATE; /* stream ends without its final block */
        }
    } while (zr != Z_STREAM_END);
    inflateEnd(&zs);
    return zs.avail_in == 0 ? 0 : OTAUP_E_INFLATE;
}

int otaup_sign_options_init(otaup_sign_options *o, unsigned version)
{
    if (o == NULL) {
        return OTAUP_E_INVAL;
    }
    if (version != OTAUP_SIGN_OPTIONS_VERSION) {
        return OTAUP_E_UNSUPPORTED;
    }
    memset(o, 0, sizeof *o);
    o->version = version;
    return 0;
}

#if OTAUP_HAVE_MBEDTLS /* everything below up to the matching #endif signs deltas */

static void gb_byte(gbuf *b, uint8_t v)
{
    gb_put(b, &v, 1);
}

static void gb_varint(gbuf *b, uint32_t v)
{
    uint8_t t[5];
    gb_put(b, t, (size_t)sec_varint_put(v, t));
}

static void gb_record(gbuf *b, uint8_t type, const uint8_t *f, size_t flen, const uint8_t *d, size_t dlen)
{
    gb_byte(b, type);
    gb_varint(b, (uint32_t)(flen + dlen));
    gb_put(b, f, flen);
    gb_put(b, d, dlen);
}

/* copy every section except END, MANIFEST and SIGNATURE */
static void keep_sections(gbuf *o, const uint8_t *d, const container *ct)
{
    size_t off = ct->sections;
    while (off + OTAUP_SECTION_HEAD_SIZE <= ct->body) {
        uint16_t tag = sec_le16(d + off);
        uint32_t slen = sec_le32(d + off + 2);
        if (tag == OTAUP_SECTION_END) {
            break;
        }
        if (tag != OTAUP_SECTION_MANIFEST && tag != OTAUP_SECTION_SIGNATURE) {
            gb_put(o, d + off, OTAUP_SECTION_HEAD_SIZE + slen);
        }
        off += OTAUP_SECTION_HEAD_SIZE + slen;
    }
}

static void put_section(gbuf *o, uint16_t tag, const uint8_t *v, size_t n)
{
    uint8_t h[OTAUP_SECTION_HEAD_SIZE];
    sec_put16(h, tag);
    sec_put32(h + 2, (uint32_t)n);
    gb_put(o, h, sizeof h);
    gb_put(o, v, n);
}

/* SYNC{step} then the stream as DATA records of at most DATA_CHUNK bytes */
static int deflate_segment(const uint8_t *in, size_t len, unsigned wbits, int level, uint32_t step, gbuf *body)
{
    uint8_t v[5], f = OTAUP_DATA_RESET, *buf = NULL;
    size_t got = 0, off;
    /* the planner's compressor; near-optimal parsing at any window, as the planner does */
    int rc = dl_deflate(in, len, wbits, level >= 9 ? DL_LEVEL_MAX : level, NULL, 0, &buf, &got);
    if (rc < 0) {
        return rc;
    }
    gb_record(body, OTAUP_REC_SYNC, v, (size_t)sec_varint_put(step, v), NULL, 0);
    for (off = 0; off < got; off += DATA_CHUNK) {
        gb_record(body, OTAUP_REC_DATA, &f, 1, buf + off, got - off < DATA_CHUNK ? got - off : DATA_CHUNK);
        f = 0;
    }
    free(buf);
    return body->oom ? OTAUP_E_NOMEM : 0;
}

/* ---- walking the body -------------------------------------------------- */

/* What the segment walk learns about the inner stream. */
typedef struct inner_info {
    int reads_old;            /* a COPY, DIFF or PIECE with difference bytes */
    int have_range;
    uint64_t lo, hi;          /* union of step windows and erases */
} inner_info;

static void widen(inner_info *ii, uint32_t addr, uint32_t len)
{
    if (!ii->have_range) {
        ii->lo = addr;
        ii->hi = (uint64_t)addr + len;
        ii->have_range = 1;
        return;
    }
    if (addr < ii->lo) {
        ii->lo = addr;
    }
    if ((uint64_t)addr + len > ii->hi) {
        ii->hi = (uint64_t)addr + len;
    }
}

static int scan_inner(const uint8_t *p, size_t len, inner_info *ii)
{
    size_t off = 0;
    while (off < len) {
        otaup_record r;
        int n = otaup_record_decode(p + off, len - off, &r);
        if (n < 0) {
            return n == OTAUP_E_DELTA_TRUNCATED ? OTAUP_E_DELTA_CORRUPT : n;
        }
        if (r.type == OTAUP_REC_STEP || r.type == OTAUP_REC_ERASE) {
            widen(ii, r.addr, r.len);
        }
        if (r.type == OTAUP_REC_COPY || r.type == OTAUP_REC_DIFF || (r.type == OTAUP_REC_PIECE && r.len != 0)) {
            ii->reads_old = 1; /* a PIECE with difference bytes reads them from OLD */
        }
        off += (size_t)n;
    }
    return 0;
}

typedef struct segment {
    uint32_t first;
    uint8_t tag[OTAUP_CHAIN_TAG_MAX];
} segment;

/*
 * Rewrite the body with chain records. Fills segs (malloc) and counts.
 */
static int chain_body(const otaup_crypto *c, const uint8_t *d, const container *ct, const uint8_t *salt,
                      uint8_t tag_len, int level, gbuf *body, segment **segs_out, uint32_t *nseg_out,
                      uint32_t *nsteps_out, uint64_t *inner_len, inner_info *ii)
{
    const uint8_t *p = d + ct->body;
    size_t len = ct->hdr.body_len, off = 0;
    gbuf comp = { 0 }, inner = { 0 };
    segment *segs = NULL;
    uint32_t nseg = 0, nsteps = 0, cur = 0;
    int in_seg = 0, rc = 0;

    segs = calloc((size_t)ct->hdr.sync_count + 1u, sizeof *segs);
    if (segs == NULL) {
        return OTAUP_E_NOMEM;
    }
    for (;;) {
        otaup_record r;
        int n = 0, end = off >= len;
        if (!end) {
            n = otaup_record_decode(p + off, len - off, &r);
            if (n < 0) {
                rc = n;
                break;
            }
        }
        if (in_seg && (end || r.type != OTAUP_REC_DATA)) {
            uint8_t *chained = NULL;
            size_t clen = 0;
            uint32_t k = 0;
            inner.len = 0;
            rc = inflate_all(comp.p, comp.len, ct->hdr.window_bits, &inner);
            if (rc == 0) {
                rc = scan_inner(inner.p, inner.len, ii);
            }
            if (rc == 0) {
                rc = otaup_chain_build_segment(c, salt, tag_len, cur, inner.p, inner.len, &chained, &clen, &k,
                                               segs[nseg].tag);
            }
            if (rc == 0) {
                rc = deflate_segment(chained, clen, ct->hdr.window_bits, level, cur, body);
                *inner_len += clen;
            }
            free(chained);
            if (rc != 0) {
                break;
            }
            segs[nseg].first = cur;
            nseg++;
            nsteps += k;
            in_seg = 0;
            comp.len = 0;
        }
        if (end) {
            break;
        }
        switch (r.type) {
        case OTAUP_REC_SYNC:
            if (nseg > ct->hdr.sync_count || r.index != nsteps) {
                rc = OTAUP_E_DELTA_CORRUPT; /* restart points must fall between the steps */
                break;
            }
            cur = r.index;
            in_seg = 1;
            break;
        case OTAUP_REC_DATA:
            gb_put(&comp, r.data, r.data_len);
            break;
        case OTAUP_REC_VERIFY:
            gb_put(body, p + off, (size_t)n);
            break;
        default:
            rc = OTAUP_E_PLAN; /* an ERASE outside the steps: a terminal refuses it */
            break;
        }
        if (rc != 0) {
            break;
        }
        off += (size_t)n;
    }
    free(comp.p);
    free(inner.p);
    if (rc == 0 && (comp.oom || inner.oom || body->oom)) {
        rc = OTAUP_E_NOMEM;
    }
    if (rc == 0 && nsteps != ct->hdr.step_count) {
        rc = OTAUP_E_DELTA_CORRUPT;
    }
    if (rc != 0) {
        free(segs);
        return rc;
    }
    *segs_out = segs;
    *nseg_out = nseg;
    *nsteps_out = nsteps;
    return 0;
}

/* sector-aligned cover of [lo, hi) */
static int sector_cover(const otaup_geometry *g, uint64_t lo, uint64_t hi, otaup_region *out)
{
    uint32_t s0, z0, s1, z1;
    if (hi <= lo) {
        return OTAUP_E_INVAL;
    }
    if (otaup_geometry_sector_at(g, (uint32_t)lo, &s0, &z0) < 0 ||
        otaup_geometry_sector_at(g, (uint32_t)(hi - 1u), &s1, &z1) < 0) {
        return OTAUP_E_GEOMETRY;
    }
    out->addr = s0;
    out->len = (uint32_t)((uint64_t)s1 + z1 - s0);
    return 0;
}

static int sign_manifest(const otaup_crypto *c, const otaup_key *key, const uint8_t *mf, size_t len, gbuf *out)
{
    otaup_manifest m;
    uint8_t digest[OTAUP_SHA256_LEN], pub[OTAUP_P256_PUB_LEN], sig[OTAUP_P256_SIG_LEN];
    int rc = otaup_manifest_parse(mf, len, &m);
    if (rc == 0) {
        rc = otaup_manifest_digest(c, mf, &m, digest);
    }
    if (rc == 0) {
        rc = otaup_key_sign(key, digest, sig);
    }
    if (rc == 0) {
        rc = otaup_key_public(key, pub);
    }
    if (rc != 0) {
        return rc;
    }
    out->len = 0;
    gb_put(out, mf, len);
    gb_reserve(out, OTAUP_MANIFEST_SIG_ENTRY);
    if (out->oom) {
        return OTAUP_E_NOMEM;
    }
    rc = otaup_manifest_add_signature(c, out->p, len, out->cap, pub, sig);
    if (rc < 0) {
        return rc;
    }
    out->len = (size_t)rc;
    return 0;
}

static int image_hash(const otaup_crypto *c, const uint8_t *img, size_t len, uint32_t want_size,
                      const uint8_t want_xxh[16], const uint8_t *given, uint8_t out[OTAUP_SHA256_LEN], int err)
{
    if (img != NULL) {
        uint8_t h[16];
        if (len != want_size) {
            return err;
        }
        otaup_hash128(img, len, h);
        if (memcmp(h, want_xxh, 16) != 0) {
            return err;
        }
        return otaup_sha256(c, img, len, out);
    }
    if (given == NULL) {
        return OTAUP_E_INVAL;
    }
    memcpy(out, given, OTAUP_SHA256_LEN);
    return 0;
}

int otaup_delta_sign(const otaup_crypto *c, const otaup_key *key, const uint8_t *delta, size_t len,
                     const otaup_sign_options *opt, uint8_t **out, size_t *out_len)
{
    container ct;
    gbuf body = { 0 }, o = { 0 }, sig = { 0 };
    segment *segs = NULL;
    otaup_chain_seg *msegs = NULL;
    uint32_t nseg = 0, nsteps = 0, i;
    uint64_t inner_len = 0;
    inner_info ii;
    otaup_manifest m;
    uint8_t salt[OTAUP_CHAIN_SALT_LEN], hdr[OTAUP_DELTA_HEADER_MAX], mfbuf[65536];
    uint8_t tag_len;
    int rc, mlen;

    if (c == NULL || key == NULL || delta == NULL || opt == NULL || out == NULL || out_len == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    if (opt->version != OTAUP_SIGN_OPTIONS_VERSION || opt->model == NULL || opt->model_len == 0 ||
        opt->model_len > OTAUP_MANIFEST_MODEL_MAX || (opt->policy & ~(uint32_t)OTAUP_POLICY_ALLOW_DOWNGRADE) != 0 ||
        c->random == NULL) {
        return OTAUP_E_INVAL;
    }
    if (!otaup_key_has_private(key)) {
        return OTAUP_E_KEY;
    }
    tag_len = opt->tag_len != 0 ? opt->tag_len : (uint8_t)OTAUP_CHAIN_TAG_DEFAULT;
    if (tag_len < OTAUP_CHAIN_TAG_MIN || tag_len > OTAUP_CHAIN_TAG_MAX) {
        return OTAUP_E_INVAL;
    }
    rc = split(delta, len, &ct);
    if (rc != 0) {
        return rc;
    }
    if (ct.mf != NULL) {
        return OTAUP_E_EXISTS;
    }

    memset(&m, 0, sizeof m);
    m.model = opt->model;
    m.model_len = (uint32_t)opt->model_len;
    m.version = opt->target_version;
    m.build_time = opt->build_time;
    m.counter = opt->counter;
    m.policy = opt->policy;
    m.layout = ct.hdr.layout;
    m.chain_alg = OTAUP_CHAIN_SHA256;
    m.tag_len = tag_len;
    m.target.addr = ct.hdr.target_addr;
    m.target.len = ct.hdr.target_size;
    rc = image_hash(c, opt->new_img, opt->new_len, ct.hdr.target_size, ct.hdr.target_hash, opt->target_hash,
                    m.target_hash, OTAUP_E_TARGET_MISMATCH);
    if (rc != 0) {
        return rc;
    }
    if (!opt->no_source) {
        m.has_source = 1;
        m.source.addr = ct.hdr.source_addr;
        m.source.len = ct.hdr.source_size;
        rc = image_hash(c, opt->old_img, opt->old_len, ct.hdr.source_size, ct.hdr.source_hash, opt->source_hash,
                        m.source_hash, OTAUP_E_SOURCE_MISMATCH);
        if (rc != 0) {
            return rc;
        }
    } else if (ct.hdr.layout == OTAUP_LAYOUT_INPLACE) {
        return OTAUP_E_PLAN; /* in place the result always depends on the installed image */
    }
    rc = otaup_geometry_digest(c, &ct.hdr.geo, m.geometry_digest);
    if (rc == 0) {
        rc = c->random(c, salt, sizeof salt);
    }
    if (rc != 0) {
        return rc;
    }
    memcpy(m.salt, salt, sizeof salt);

    memset(&ii, 0, sizeof ii);
    rc = chain_body(c, delta, &ct, salt, tag_len, opt->level > 0 ? opt->level : 9, &body, &segs, &nseg, &nsteps,
                    &inner_len, &ii);
    if (rc != 0) {
        goto done;
    }
    if (ii.reads_old && !m.has_source) {
        rc = OTAUP_E_PLAN; /* copies from old flash need the source binding */
        goto done;
    }
    /* SLOT: the sectors covering the target and every step window and erase */
    widen(&ii, ct.hdr.target_addr, ct.hdr.target_size > 0 ? ct.hdr.target_size : 1u);
    rc = sector_cover(&ct.hdr.geo, ii.lo, ii.hi, &m.slot);
    if (rc != 0) {
        goto done;
    }
    m.nsteps = nsteps;
    m.nseg = nseg;
    if (nseg > 0) {
        msegs = calloc(nseg, sizeof *msegs);
        if (msegs == NULL) {
            rc = OTAUP_E_NOMEM;
            goto done;
        }
        for (i = 0; i < nseg; i++) {
            msegs[i].first_step = segs[i].first;
            memcpy(msegs[i].tag, segs[i].tag, tag_len);
        }
    }
    m.segs = msegs;
    if (opt->note != NULL) {
        m.note = (const uint8_t *)opt->note;
        m.note_len = (uint32_t)strlen(opt->note);
    }

    /* the new header, which the manifest binds */
    ct.hdr.body_len = (uint32_t)body.len;
    ct.hdr.inner_len = inner_len > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)inner_len;
    otaup_hash128(body.p, body.len, ct.hdr.body_hash);
    if (body.len > 0xFFFFFFFFu || inner_len > 0xFFFFFFFFu) {
        rc = OTAUP_E_LIMIT;
        goto done;
    }
    rc = otaup_delta_header_encode(&ct.hdr, hdr, sizeof hdr);
    if (rc < 0) {
        goto done;
    }
    /* DELTA: everything before the MANIFEST section (header and the other sections) */
    gb_put(&o, hdr, (size_t)rc);
    keep_sections(&o, delta, &ct);
    if (o.oom) {
        rc = OTAUP_E_NOMEM;
        goto done;
    }
    m.has_delta = 1;
    rc = otaup_sha256(c, o.p, o.len, m.delta_hash);
    if (rc != 0) {
        goto done;
    }
    mlen = otaup_manifest_encode(&m, mfbuf, sizeof mfbuf);
    if (mlen < 0) {
        rc = mlen == OTAUP_E_BUFFER ? OTAUP_E_LIMIT : mlen;
        goto done;
    }
    rc = sign_manifest(c, key, mfbuf, (size_t)mlen, &sig);
    if (rc != 0) {
        goto done;
    }
    if (sig.len > OTAUP_SECTION_MAX_LEN) {
        rc = OTAUP_E_LIMIT;
        goto done;
    }

    put_section(&o, OTAUP_SECTION_MANIFEST, sig.p, sig.len);
    put_section(&o, OTAUP_SECTION_END, NULL, 0);
    gb_put(&o, body.p, body.len);
    if (o.oom) {
        rc = OTAUP_E_NOMEM;
        goto done;
    }
    rc = otaup_delta_check(o.p, o.len, NULL, NULL);
    if (rc != 0) {
        goto done;
    }
    *out = o.p;
    *out_len = o.len;
    o.p = NULL;
done:
    free(o.p);
    free(sig.p);
    free(body.p);
    free(segs);
    free(msegs);
    return rc;
}

int otaup_delta_add_signature(const otaup_crypto *c, const otaup_key *key, const uint8_t *delta, size_t len,
                              uint8_t **out, size_t *out_len)
{
    container ct;
    gbuf o = { 0 }, sig = { 0 };
    otaup_manifest m;
    int rc;
    if (c == NULL || key == NULL || delta == NULL || out == NULL || out_len == NULL) {
        return OTAUP_E_INVAL;
    }
    *out = NULL;
    *out_len = 0;
    rc = split(delta, len, &ct);
    if (rc != 0) {
        return rc;
    }
    if (ct.mf == NULL) {
        return OTAUP_E_UNSIGNED;
    }
    rc = otaup_manifest_parse(ct.mf, ct.mf_len, &m);
    if (rc != 0) {
        return rc;
    }
    /* strip the signature area and sign again with the existing entries kept */
    gb_put(&sig, ct.mf, ct.mf_len);
    {
        uint8_t digest[OTAUP_SHA256_LEN], pub[OTAUP_P256_PUB_LEN], s[OTAUP_P256_SIG_LEN];
        rc = otaup_manifest_digest(c, ct.mf, &m, digest);
        if (rc == 0) {
            rc = otaup_key_sign(key, digest, s);
        }
        if (rc == 0) {
            rc = otaup_key_public(key, pub);
        }
        gb_reserve(&sig, OTAUP_MANIFEST_SIG_ENTRY);
        if (rc == 0 && sig.oom) {
            rc = OTAUP_E_NOMEM;
        }
        if (rc == 0) {
            rc = otaup_manifest_add_signature(c, sig.p, sig.len, sig.cap, pub, s);
            if (rc > 0) {
                sig.len = (size_t)rc;
                rc = 0;
            }
        }
    }
    if (rc == 0) {
        /* the bytes before the MANIFEST section stay exactly as they are (DELTA binds them) */
        size_t mf_head = (size_t)(ct.mf - delta) - OTAUP_SECTION_HEAD_SIZE;
        gb_put(&o, delta, mf_head);
        put_section(&o, OTAUP_SECTION_MANIFEST, sig.p, sig.len);
        gb_put(&o, ct.mf + ct.mf_len, len - (size_t)(ct.mf + ct.mf_len - delta));
        rc = o.oom ? OTAUP_E_NOMEM : 0;
    }
    free(sig.p);
    if (rc != 0) {
        free(o.p);
        return rc;
    }
    *out = o.p;
    *out_len = o.len;
    return 0;
}
#endif /* OTAUP_HAVE_MBEDTLS */

/* ---- offline verification ---------------------------------------------- */

static int vfail(otaup_verify_report *rep, int rc, const char *what)
{
    if (rep->what == NULL) {
        rep->what = what;
    }
    return rc;
}

/* feed one segment's inner stream through the verifier, committing each step */
static int verify_inner(otaup_sec *sec, const uint8_t *p, size_t len, otaup_verify_report *rep)
{
    otaup_region erases[8];
    size_t nerase = 0, off = 0;
    uint32_t waddr = 0, wlen = 0;
    int rc;
    while (off < len) {
        otaup_record r;
        uint32_t blen;
        int n = otaup_record_decode(p + off, len - off, &r);
        int k;
        if (n < 0 && n != OTAUP_E_MSG_TYPE) {
            return vfail(rep, OTAUP_E_DELTA_CORRUPT, "malformed record in the inner stream");
        }
        k = sec_varint_get(p + off + 1, len - off - 1, &blen);
        if (k <= 0 || len - off - 1 - (size_t)k < blen) {
            return vfail(rep, OTAUP_E_DELTA_CORRUPT, "malformed record in the inner stream");
        }
        if (p[off] == OTAUP_REC_CHAIN) {
            rep->chain_bytes += 1u + (size_t)k + blen;
        } else if (n < 0) {
            return vfail(rep, OTAUP_E_CHAIN, "unknown record in the inner stream");
        }
        rc = otaup_sec_inner_record(sec, p[off], p + off + 1 + k, blen);
        if (rc != 0) {
            return vfail(rep, rc, "a step does not match the chain");
        }
        if (p[off] == OTAUP_REC_STEP) {
            waddr = r.addr;
            wlen = r.len;
            nerase = 0;
        } else if (p[off] == OTAUP_REC_ERASE && nerase < sizeof erases / sizeof erases[0]) {
            erases[nerase].addr = r.addr;
            erases[nerase].len = r.len;
            nerase++;
        } else if (p[off] == OTAUP_REC_END) {
            rc = otaup_sec_step_commit(sec, r.index, waddr, wlen, erases, nerase);
            if (rc != 0) {
                return vfail(rep, rc, rc == OTAUP_E_WINDOW ? "a step writes outside SLOT" : "step out of order");
            }
            rep->steps++;
        }
        off += 1u + (size_t)k + blen;
    }
    rep->inner_bytes += len;
    return 0;
}

int otaup_delta_verify(const otaup_crypto *c, const uint8_t *delta, size_t len, const otaup_sec_key *keys,
                       size_t nkeys, otaup_verify_report *rep)
{
    container ct;
    otaup_sec *sec;
    gbuf comp = { 0 }, inner = { 0 };
    const otaup_manifest *m;
    uint8_t d[OTAUP_SHA256_LEN];
    size_t off = 0;
    int rc, in_seg = 0;

    if (c == NULL || delta == NULL || rep == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(rep, 0, sizeof *rep);
    rep->key_index = -1;
    rc = split(delta, len, &ct);
    if (rc != 0) {
        return vfail(rep, rc, "not a valid delta container");
    }
    if (ct.mf == NULL) {
        return vfail(rep, OTAUP_E_UNSIGNED, "the delta carries no manifest");
    }
    rep->manifest_bytes = ct.mf;
    rep->manifest_len = ct.mf_len;
    rc = otaup_manifest_parse(ct.mf, ct.mf_len, &rep->manifest);
    if (rc != 0) {
        return vfail(rep, rc, "malformed manifest");
    }
    m = &rep->manifest;
    rc = otaup_manifest_verify(c, ct.mf, m, keys, nkeys);
    if (rc < 0) {
        return vfail(rep, rc, rc == OTAUP_E_KEY ? "no signature by a trusted key" : "signature does not verify");
    }
    rep->key_index = rc;

    /* the manifest's claims against the header */
    if (m->has_delta) {
        rc = otaup_sha256(c, delta, (size_t)(ct.mf - delta) - OTAUP_SECTION_HEAD_SIZE, d);
        if (rc != 0) {
            return vfail(rep, rc, "hash");
        }
        if (memcmp(d, m->delta_hash, OTAUP_SHA256_LEN) != 0) {
            return vfail(rep, OTAUP_E_MANIFEST, "the manifest names another delta header or sections");
        }
    }
    rc = otaup_geometry_digest(c, &ct.hdr.geo, d);
    if (rc != 0 || memcmp(d, m->geometry_digest, OTAUP_SHA256_LEN) != 0 || m->layout != ct.hdr.layout) {
        return vfail(rep, OTAUP_E_GEOMETRY, "the manifest names another geometry or layout");
    }
    if (m->nsteps != ct.hdr.step_count || m->target.addr != ct.hdr.target_addr ||
        m->target.len != ct.hdr.target_size ||
        (m->has_source && (m->source.addr != ct.hdr.source_addr || m->source.len != ct.hdr.source_size))) {
        return vfail(rep, OTAUP_E_MANIFEST, "the manifest's steps or image ranges differ from the header");
    }

    sec = malloc(sizeof *sec);
    if (sec == NULL) {
        return OTAUP_E_NOMEM;
    }
    rc = otaup_sec_begin_offline(sec, c, ct.mf, ct.mf_len);
    while (rc == 0) {
        const uint8_t *p = delta + ct.body;
        otaup_record r;
        int n = 0, end = off >= ct.hdr.body_len;
        if (!end) {
            n = otaup_record_decode(p + off, ct.hdr.body_len - off, &r);
            if (n < 0) {
                rc = vfail(rep, n, "malformed outer record");
                break;
            }
        }
        if (in_seg && (end || r.type != OTAUP_REC_DATA)) {
            inner.len = 0;
            rc = inflate_all(comp.p, comp.len, ct.hdr.window_bits, &inner);
            if (rc != 0) {
                rc = vfail(rep, rc, "a DATA stream does not decompress");
                break;
            }
            rc = verify_inner(sec, inner.p, inner.len, rep);
            if (rc != 0) {
                break;
            }
            comp.len = 0;
            in_seg = 0;
        }
        if (end) {
            break;
        }
        if (r.type == OTAUP_REC_DATA) {
            gb_put(&comp, r.data, r.data_len);
            if (comp.oom) {
                rc = OTAUP_E_NOMEM;
            }
        } else {
            uint32_t blen = 0;
            int k = sec_varint_get(p + off + 1, ct.hdr.body_len - off - 1, &blen);
            if (r.type == OTAUP_REC_SYNC) {
                rep->segments++;
                in_seg = 1;
            }
            rc = otaup_sec_record(sec, r.type, p + off + 1 + k, blen);
            if (rc != 0) {
                rc = vfail(rep, rc,
                           r.type == OTAUP_REC_SYNC ? "a restart point the manifest does not name"
                                                    : "a record outside the steps that a terminal refuses");
            }
        }
        if (rc != 0) {
            break;
        }
        off += (size_t)n;
    }
    if (rc == 0 && otaup_sec_next_commit(sec) != m->nsteps) {
        rc = vfail(rep, OTAUP_E_CHAIN, "steps missing");
    }
    free(sec);
    free(comp.p);
    free(inner.p);
    return rc;
}
