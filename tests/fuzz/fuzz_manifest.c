/*
 * Fuzz target: the manifest parser (otaup_manifest_parse), the segment
 * lookup, the signature check against a fixed key, the manifest search in
 * a container prefix, and the terminal's begin over a RAM flash. Nothing
 * may crash, read out of bounds or accept a manifest it cannot describe;
 * what parses must re-encode to the same body.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/features.h"
#include "otaup/otaup.h"
#include "otaup/sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if OTAUP_HAVE_MBEDTLS
/* a tiny RAM flash for otaup_sec_begin */
static uint8_t fl_mem[64 * 1024];

static int fl_read(const otaup_flash *f, uint32_t addr, void *buf, uint32_t len)
{
    (void)f;
    if (addr > sizeof fl_mem || len > sizeof fl_mem - addr) {
        return OTAUP_E_FLASH_READ;
    }
    memcpy(buf, fl_mem + addr, len);
    return 0;
}

static int fl_write(const otaup_flash *f, uint32_t addr, const void *buf, uint32_t len)
{
    (void)f;
    (void)addr;
    (void)buf;
    (void)len;
    abort(); /* verification never writes */
}

static int fl_erase(const otaup_flash *f, uint32_t addr, uint32_t len)
{
    (void)f;
    (void)addr;
    (void)len;
    abort();
}
#endif

static void check_parsed(const uint8_t *data, size_t size, const otaup_manifest *m)
{
    uint8_t tag[OTAUP_CHAIN_TAG_MAX];
    uint32_t i, found = 0;
    if (m->signed_len > size || m->nsigs > OTAUP_MANIFEST_MAX_SIGS || m->model_len < 1 ||
        m->model_len > OTAUP_MANIFEST_MODEL_MAX || m->model < data || m->model + m->model_len > data + size ||
        m->tag_len < OTAUP_CHAIN_TAG_MIN || m->tag_len > OTAUP_CHAIN_TAG_MAX || m->nseg > m->nsteps ||
        m->seg_table + m->seg_table_len > data + size) {
        abort();
    }
    for (i = 0; i < m->nsteps && i < 4096u; i++) {
        int rc = otaup_manifest_segment(m, i, tag);
        if (rc == 0) {
            found++;
        } else if (rc != OTAUP_E_NOT_FOUND) {
            abort(); /* the table was checked by the parser */
        }
    }
    if (m->nsteps <= 4096u && found != m->nseg) {
        abort();
    }
    if (m->nsteps > 0 && otaup_manifest_segment(m, 0, tag) != 0) {
        abort(); /* every chain starts at step 0 */
    }
}

#if !OTAUP_TERMINAL_ONLY_BUILD
/* parse -> encode gives the same body (the format has one encoding) */
static void check_roundtrip(const uint8_t *data, const otaup_manifest *m)
{
    static otaup_chain_seg segs[4096];
    static uint8_t enc[70000];
    otaup_manifest c = *m;
    uint32_t i;
    int n;
    if (m->nseg > 4096u) {
        return;
    }
    for (i = 0; i < m->nseg; i++) {
        uint8_t tag[OTAUP_CHAIN_TAG_MAX];
        uint32_t off = 0, k;
        /* walk the table to the i-th entry */
        for (k = 0; k <= i; k++) {
            uint32_t v = 0, sh = 0;
            while (m->seg_table[off] & 0x80u) {
                v |= (uint32_t)(m->seg_table[off++] & 0x7Fu) << sh;
                sh += 7;
            }
            v |= (uint32_t)m->seg_table[off++] << sh;
            memcpy(tag, m->seg_table + off, m->tag_len);
            off += m->tag_len;
            segs[i].first_step = v;
        }
        memcpy(segs[i].tag, tag, m->tag_len);
    }
    c.segs = segs;
    c.seg_table = NULL;
    n = otaup_manifest_encode(&c, enc, sizeof enc);
    if (n < 0) {
        abort(); /* what parses must encode */
    }
    /* unknown informational fields are dropped by the encoder: compare only when the sizes agree */
    if ((uint32_t)n - 2u == m->signed_len && memcmp(enc, data, m->signed_len) != 0) {
        abort();
    }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    otaup_manifest m;
    const uint8_t *mf;
    size_t mf_len;
    int rc = otaup_manifest_parse(data, size, &m);
    if (rc == 0) {
        check_parsed(data, size, &m);
#if !OTAUP_TERMINAL_ONLY_BUILD
        check_roundtrip(data, &m);
#endif
    } else if (rc != OTAUP_E_MANIFEST && rc != OTAUP_E_UNSUPPORTED && rc != OTAUP_E_INVAL) {
        abort();
    }
    rc = otaup_delta_find_manifest(data, size, &mf, &mf_len);
    if (rc == 0 && (mf < data || mf + mf_len > data + size)) {
        abort();
    }
#if OTAUP_HAVE_MBEDTLS
    {
        static otaup_crypto c;
        static const otaup_sec_key key = { { 0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc,
                                              0xe6, 0xe5, 0x63, 0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d,
                                              0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2, 0x96,
                                              0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb,
                                              0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31,
                                              0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5 } };
        otaup_flash f;
        otaup_sec_config cfg;
        otaup_region win = { 0, sizeof fl_mem };
        otaup_sec sec;
        if (c.sha256_init == NULL) {
            otaup_crypto_mbedtls(&c);
        }
        if (otaup_manifest_parse(data, size, &m) == 0) {
            rc = otaup_manifest_verify(&c, data, &m, &key, 1);
            if (rc >= 0) {
                abort(); /* no valid signature by this key can be made by mutation */
            }
        }
        memset(&f, 0, sizeof f);
        f.read = fl_read;
        f.prog = fl_write;
        f.erase = fl_erase;
        otaup_geometry_uniform(&f.geo, 0, 4096, 16, 8);
        memset(&cfg, 0, sizeof cfg);
        cfg.crypto = &c;
        cfg.flash = &f;
        cfg.keys = &key;
        cfg.nkeys = 1;
        cfg.model = (const uint8_t *)"m";
        cfg.model_len = 1;
        cfg.windows = &win;
        cfg.nwindows = 1;
        if (otaup_sec_begin(&sec, &cfg, data, size) == 0 || otaup_sec_begin_delta(&sec, &cfg, data, size) == 0) {
            abort();
        }
    }
#endif
    return 0;
}
