/*
 * The applier's INFO, written straight from its configuration (apply.c
 * build_info, no otaup_msg_info on the stack): it must be the very bytes
 * the codec's otaup_info_encode() gives for the same content, decode to
 * the configuration, and the largest one (identity strings at their
 * limits with multi-byte UTF-8, a geometry of 8 sector runs,
 * OTAUP_APPLY_MAX_REGIONS regions, every optional item) must fill
 * OTAUP_APPLY_TXMSG exactly. Also: otaup_apply_init refuses identity
 * strings INFO cannot carry and unknown region flags, before anything is
 * sent; and the BACKUP/SIGNATURE feature knobs show in the capabilities.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/apply.h"
#include "otaup/error.h"
#include "otaup/proto.h"
#include "otaup/simflash.h"

#define S 4096u

typedef struct cap {
    uint8_t frames[8][2048];
    size_t len[8];
    unsigned n;
} cap;

static int cap_send(void *ctx, const uint8_t *buf, size_t len)
{
    cap *c = ctx;
    if (c->n < 8 && len <= sizeof c->frames[0]) {
        memcpy(c->frames[c->n], buf, len);
        c->len[c->n] = len;
    }
    c->n++;
    return (int)len;
}

static uint32_t clock0(void *ctx)
{
    (void)ctx;
    return 0;
}

typedef struct rig {
    otaup_simflash *sim;
    otaup_apply ap;
    otaup_apply_config cfg;
    uint8_t *work;
    cap link;
} rig;

/* 8 runs of two 4 KiB sectors: slot 0..3, scratch 4, journal 5..6, updater 7, regions 8..11 */
static void rig_make(rig *r, uint8_t layout)
{
    otaup_simflash_options o;
    unsigned i;
    size_t wsz;
    memset(r, 0, sizeof *r);
    otaup_simflash_options_init(&o);
    o.geo.base = 0x08000000u;
    o.geo.write_size = 8;
    o.geo.erased = 0xFF;
    o.geo.nruns = OTAUP_MAX_SECTOR_RUNS;
    for (i = 0; i < OTAUP_MAX_SECTOR_RUNS; i++) {
        o.geo.runs[i].count = 2;
        o.geo.runs[i].size = S;
    }
    ck_assert_int_eq(otaup_simflash_new(&o, &r->sim), 0);
    r->cfg.flash = otaup_simflash_flash(r->sim);
    r->cfg.layout = layout;
    r->cfg.window_bits = 11;
    r->cfg.max_ops = 32;
    if (layout == OTAUP_LAYOUT_AB) {
        r->cfg.slots[0].addr = 0x08000000u;
        r->cfg.slots[0].len = 2 * S;
        r->cfg.slots[1].addr = 0x08000000u + 2 * S;
        r->cfg.slots[1].len = 2 * S;
    } else {
        r->cfg.slots[0].addr = 0x08000000u;
        r->cfg.slots[0].len = 4 * S;
        r->cfg.slots[1] = r->cfg.slots[0]; /* unused in place: INFO reports zeros */
    }
    r->cfg.scratch.addr = 0x08000000u + 4 * S;
    r->cfg.scratch.len = S;
    r->cfg.journal.addr = 0x08000000u + 5 * S;
    r->cfg.journal.len = 2 * S;
    r->cfg.updater.addr = 0x08000000u + 7 * S;
    r->cfg.updater.len = S;
    for (i = 0; i < OTAUP_APPLY_MAX_REGIONS; i++) {
        r->cfg.regions[i].id = (uint8_t)(10 + i);
        r->cfg.regions[i].flags = (i & 1u) ? 0u : OTAUP_REGION_PERSONAL;
        r->cfg.regions[i].addr = 0x08000000u + (8 + i) * S;
        r->cfg.regions[i].len = S;
    }
    r->cfg.nregions = OTAUP_APPLY_MAX_REGIONS;
    r->cfg.staging_size = S;
    r->cfg.max_frame = 1024;
    r->cfg.max_msg = 512;
    r->cfg.link.send = cap_send;
    r->cfg.link.ctx = &r->link;
    r->cfg.now_ms = clock0;
    /* 64 bytes with two-byte characters, 64, 32 */
    r->cfg.id.terminal_id = "\xc3\xa9t\xc3\xa9-0123456789012345678901234567890123456789012345678901234567";
    r->cfg.id.model = "model-78901234567890123456789012345678901234567890123456789-end!";
    r->cfg.id.sw_version = "2.10.3-rc1+build.0123456789abcde";
    r->cfg.id.build_time = 1767225600u;
    r->cfg.id.image_size = 3 * S + 17;
    r->cfg.id.sec_counter = 7;
    {
        static uint8_t sha[32];
        for (i = 0; i < 32; i++) {
            sha[i] = (uint8_t)(0xC0 + i);
        }
        r->cfg.id.image_sha256 = sha;
    }
    wsz = otaup_apply_work_size(r->cfg.max_frame, r->cfg.max_msg, r->cfg.staging_size, r->cfg.max_ops,
                                r->cfg.window_bits);
    ck_assert_uint_gt(wsz, 0);
    r->work = malloc(wsz);
    ck_assert_ptr_nonnull(r->work);
    r->cfg.work = r->work;
    r->cfg.work_size = wsz;
}

static void rig_free(rig *r)
{
    free(r->work);
    otaup_simflash_free(r->sim);
}

/* connect, acknowledge HELLO, return the INFO payload (one frame) */
static void get_info(rig *r, otaup_frame *fr)
{
    uint8_t ack[64];
    otaup_msg m;
    int n;
    ck_assert_int_eq(otaup_apply_init(&r->ap, &r->cfg), 0);
    ck_assert_int_eq(otaup_apply_connect(&r->ap), 0);
    ck_assert_uint_eq(r->link.n, 1);
    ck_assert_int_eq(otaup_frame_decode(r->link.frames[0], r->link.len[0], 65536, fr), 0);
    ck_assert_uint_eq(fr->type, OTAUP_MSG_HELLO);
    memset(&m, 0, sizeof m);
    m.type = OTAUP_MSG_ACK;
    m.u.ack.seq = 0;
    m.u.ack.window = 1;
    n = otaup_msg_encode_frame(&m, 0, 0, 65536, ack, sizeof ack);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(otaup_apply_feed(&r->ap, ack, (size_t)n), 0);
    ck_assert_uint_eq(r->link.n, 2);
    ck_assert_int_eq(otaup_frame_decode(r->link.frames[1], r->link.len[1], 65536, fr), 0);
    ck_assert_uint_eq(fr->type, OTAUP_MSG_INFO);
    ck_assert_uint_eq(fr->flags, 0);
}

static uint32_t hello_caps(rig *r)
{
    otaup_frame fr;
    otaup_msg_hello h;
    ck_assert_int_eq(otaup_frame_decode(r->link.frames[0], r->link.len[0], 65536, &fr), 0);
    ck_assert_int_eq(otaup_hello_decode(fr.payload, fr.payload_len, &h), 0);
    return h.caps;
}

static void check_info(uint8_t layout)
{
    rig r;
    otaup_frame fr;
    otaup_msg_info in;
    uint8_t again[1024];
    unsigned i;
    int n;
    rig_make(&r, layout);
    get_info(&r, &fr);
    /* the largest INFO fills the buffer exactly */
    ck_assert_uint_eq(fr.payload_len, OTAUP_APPLY_TXMSG);
    ck_assert_int_eq(otaup_info_decode(fr.payload, fr.payload_len, &in), 0);
    /* the codec writes the same bytes for the same content */
    n = otaup_info_encode(&in, again, sizeof again);
    ck_assert_int_eq(n, (int)fr.payload_len);
    ck_assert_mem_eq(again, fr.payload, fr.payload_len);
    /* and the content is the configuration */
    ck_assert_uint_eq(in.terminal_id.len, 64);
    ck_assert_mem_eq(in.terminal_id.data, r.cfg.id.terminal_id, 64);
    ck_assert_uint_eq(in.model.len, 64);
    ck_assert_uint_eq(in.sw_version.len, 32);
    ck_assert_mem_eq(in.sw_version.data, r.cfg.id.sw_version, 32);
    ck_assert_uint_eq(in.build_time, r.cfg.id.build_time);
    ck_assert_uint_eq(in.have & OTAUP_INFO_HAVE_IMAGE_HASH, 0);
    ck_assert_uint_eq(in.image_size, r.cfg.id.image_size);
    ck_assert_uint_eq(in.geometry.nruns, OTAUP_MAX_SECTOR_RUNS);
    ck_assert_uint_eq(in.geometry.base, 0x08000000u);
    ck_assert_uint_eq(in.geometry.write_size, 8);
    ck_assert_uint_eq(in.nwindows, 1);
    ck_assert_uint_eq(in.windows[0].addr, layout == OTAUP_LAYOUT_AB ? r.cfg.slots[1].addr : r.cfg.slots[0].addr);
    ck_assert_uint_eq(in.nregions, OTAUP_APPLY_MAX_REGIONS);
    for (i = 0; i < OTAUP_APPLY_MAX_REGIONS; i++) {
        ck_assert_uint_eq(in.regions[i].id, r.cfg.regions[i].id);
        ck_assert_uint_eq(in.regions[i].flags, r.cfg.regions[i].flags);
        ck_assert_uint_eq(in.regions[i].addr, r.cfg.regions[i].addr);
        ck_assert_uint_eq(in.regions[i].len, S);
        ck_assert_uint_eq(in.regions[i].hash.alg, 0);
    }
    ck_assert_uint_eq(in.layout, layout);
    ck_assert_uint_eq(in.slots[0].len, r.cfg.slots[0].len);
    ck_assert_uint_eq(in.slots[1].len, layout == OTAUP_LAYOUT_AB ? 2 * S : 0u);
    ck_assert_uint_eq(in.scratch.addr, r.cfg.scratch.addr);
    ck_assert_uint_eq(in.caps, hello_caps(&r));
    ck_assert_uint_eq(in.caps & OTAUP_CAP_BACKUP, OTAUP_CONFIG_BACKUP ? OTAUP_CAP_BACKUP : 0u);
    ck_assert_uint_eq(in.caps & (OTAUP_CAP_AB | OTAUP_CAP_INPLACE),
                      layout == OTAUP_LAYOUT_AB ? OTAUP_CAP_AB : OTAUP_CAP_INPLACE);
    ck_assert_uint_eq(in.max_frame, 1024);
    ck_assert_uint_eq(in.staging_size, S);
    ck_assert_uint_eq(in.ram_budget, r.cfg.work_size);
    ck_assert_uint_eq(in.resume.session, 0);
    ck_assert_uint_eq(in.sec_counter, 7);
    ck_assert_uint_eq(in.window_bits, 11);
    ck_assert_uint_eq(in.max_ops, 32);
    /* the image's SHA-256 goes with the block signature (SIG_REQ) */
    if (OTAUP_CONFIG_SIGNATURE) {
        ck_assert_uint_ne(in.have & OTAUP_INFO_HAVE_IMAGE_SHA256, 0);
        ck_assert_mem_eq(in.image_sha256, r.cfg.id.image_sha256, 32);
    } else {
        ck_assert_uint_eq(in.have & OTAUP_INFO_HAVE_IMAGE_SHA256, 0);
    }
    /* no security hooks: it does not claim to verify signed updates */
    ck_assert_uint_eq(in.caps & OTAUP_CAP_SIGNED, 0);
    rig_free(&r);
}

static int a_record_hook(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part)
{
    (void)ctx, (void)type, (void)body, (void)len, (void)part;
    return 0;
}

/* With the security layer's record hook installed, HELLO and INFO say SIGNED. */
START_TEST(info_signed_cap)
{
    rig r;
    otaup_frame fr;
    otaup_msg_info in;
    rig_make(&r, OTAUP_LAYOUT_INPLACE);
    r.cfg.hooks.record = a_record_hook;
    get_info(&r, &fr);
    ck_assert_int_eq(otaup_info_decode(fr.payload, fr.payload_len, &in), 0);
    ck_assert_uint_eq(in.caps & OTAUP_CAP_SIGNED, OTAUP_CAP_SIGNED);
    ck_assert_uint_eq(hello_caps(&r) & OTAUP_CAP_SIGNED, OTAUP_CAP_SIGNED);
    rig_free(&r);
}
END_TEST

START_TEST(info_inplace)
{
    check_info(OTAUP_LAYOUT_INPLACE);
}
END_TEST

START_TEST(info_ab)
{
    check_info(OTAUP_LAYOUT_AB);
}
END_TEST

/* The smallest INFO: no image size, no scratch, no limits, no regions. */
START_TEST(info_minimal)
{
    rig r;
    otaup_frame fr;
    otaup_msg_info in;
    uint8_t again[1024];
    int n;
    rig_make(&r, OTAUP_LAYOUT_AB);
    r.cfg.id.terminal_id = "t";
    r.cfg.id.model = "m";
    r.cfg.id.sw_version = "1";
    r.cfg.id.image_size = 0;
    r.cfg.id.image_sha256 = NULL;
    r.cfg.scratch.len = 0;
    r.cfg.max_ops = 0;
    r.cfg.nregions = 0;
    get_info(&r, &fr);
    ck_assert_int_eq(otaup_info_decode(fr.payload, fr.payload_len, &in), 0);
    ck_assert_uint_eq(in.have & (OTAUP_INFO_HAVE_IMAGE_SIZE | OTAUP_INFO_HAVE_SCRATCH | OTAUP_INFO_HAVE_LIMITS |
                                 OTAUP_INFO_HAVE_IMAGE_SHA256),
                      0);
    ck_assert_uint_eq(in.nregions, 0);
    ck_assert_uint_eq(in.caps & OTAUP_CAP_BACKUP, 0);
    n = otaup_info_encode(&in, again, sizeof again);
    ck_assert_int_eq(n, (int)fr.payload_len);
    ck_assert_mem_eq(again, fr.payload, fr.payload_len);
    rig_free(&r);
}
END_TEST

START_TEST(init_refuses_what_info_cannot_carry)
{
    static const char long65[] = "01234567890123456789012345678901234567890123456789012345678901234";
    static const char bad_utf8[] = "ab\xc3";
    rig r;
    rig_make(&r, OTAUP_LAYOUT_INPLACE);
    r.cfg.id.terminal_id = long65;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), OTAUP_E_INVAL);
    r.cfg.id.terminal_id = "";
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), OTAUP_E_INVAL);
    r.cfg.id.terminal_id = "ok";
    r.cfg.id.model = bad_utf8;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), OTAUP_E_INVAL);
    r.cfg.id.model = "ok";
    r.cfg.id.sw_version = long65 + 32; /* 33 bytes */
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), OTAUP_E_INVAL);
    r.cfg.id.sw_version = long65 + 33; /* 32 bytes: fine */
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), 0);
    r.cfg.regions[2].flags = 0x80;
    ck_assert_int_eq(otaup_apply_init(&r.ap, &r.cfg), OTAUP_E_REGION);
    ck_assert_uint_eq(r.link.n, 0);
    rig_free(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("apply_info");
    TCase *t = tcase_create("info");
    tcase_add_test(t, info_inplace);
    tcase_add_test(t, info_ab);
    tcase_add_test(t, info_minimal);
    tcase_add_test(t, info_signed_cap);
    tcase_add_test(t, init_refuses_what_info_cannot_carry);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
