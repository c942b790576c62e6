/*
 * Command protocol codec: golden vectors, every message round trip, the
 * specific error of every kind of bad frame, the streaming decoder at every
 * split point, resynchronisation, datagrams, fragmentation and BATCH.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/otaup.h"
#include "otaup/proto.h"

#define SEQ 7u
#define SESSION 0x0123456789ABCDEFull

/* ---- helpers -------------------------------------------------------------------- */

static uint8_t g_pat[256][64]; /* g_pat[start][i] = start + i */

static void init_pat(void)
{
    int s, i;
    for (s = 0; s < 256; s++) {
        for (i = 0; i < 64; i++) {
            g_pat[s][i] = (uint8_t)(s + i);
        }
    }
}

static const uint8_t *pat(unsigned start)
{
    return g_pat[start & 0xFF];
}

static otaup_bytes bs(const void *p, size_t n)
{
    otaup_bytes b;
    b.data = (const uint8_t *)p;
    b.len = (uint32_t)n;
    return b;
}

static otaup_bytes str(const char *s)
{
    return bs(s, strlen(s));
}

static otaup_proto_hash mkhash(uint8_t alg, unsigned start)
{
    otaup_proto_hash h;
    memset(&h, 0, sizeof h);
    h.alg = alg;
    h.len = (uint8_t)(alg == 1 ? 8 : alg == 2 ? 16 : alg == 3 ? 32 : 0);
    memcpy(h.bytes, pat(start), h.len);
    return h;
}

static size_t read_file(const char *name, uint8_t *buf, size_t cap)
{
    char path[1024];
    const char *dir = getenv("OTAUP_VECTORS");
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "%s/proto/%s.bin", dir != NULL ? dir : "tests/vectors", name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    n = fread(buf, 1, cap, f);
    fclose(f);
    ck_assert_uint_lt(n, cap);
    return n;
}

/* ---- the messages of the golden vectors (same values as make-vectors.py) ---- */

static void info_full(otaup_msg_info *m)
{
    memset(m, 0, sizeof *m);
    m->terminal_id = str("T-0001");
    m->model = str("OTA-M4");
    m->sw_version = str("1.2.3");
    m->build_time = 1700000000u;
    m->have = OTAUP_INFO_HAVE_IMAGE_HASH | OTAUP_INFO_HAVE_IMAGE_SIZE | OTAUP_INFO_HAVE_GEOMETRY |
              OTAUP_INFO_HAVE_LAYOUT | OTAUP_INFO_HAVE_SCRATCH | OTAUP_INFO_HAVE_CAPS |
              OTAUP_INFO_HAVE_MAX_FRAME | OTAUP_INFO_HAVE_MEMORY | OTAUP_INFO_HAVE_RESUME |
              OTAUP_INFO_HAVE_SEC_COUNTER;
    m->image_hash = mkhash(2, 0xA0);
    m->image_size = 196608;
    m->geometry.base = 0x08000000u;
    m->geometry.write_size = 4;
    m->geometry.erased = 0xFF;
    m->geometry.nruns = 3;
    m->geometry.runs[0].count = 4; m->geometry.runs[0].size = 16384;
    m->geometry.runs[1].count = 1; m->geometry.runs[1].size = 65536;
    m->geometry.runs[2].count = 7; m->geometry.runs[2].size = 131072;
    m->nwindows = 2;
    m->windows[0].addr = 0x08010000u; m->windows[0].len = 0xF0000u;
    m->windows[1].addr = 0x08008000u; m->windows[1].len = 0x4000u;
    m->nregions = 2;
    m->regions[0].id = 1; m->regions[0].flags = OTAUP_REGION_PERSONAL;
    m->regions[0].addr = 0x08004000u; m->regions[0].len = 0x4000u;
    m->regions[0].hash = mkhash(1, 0x30);
    m->regions[1].id = 2; m->regions[1].addr = 0x0800C000u; m->regions[1].len = 0x2000u;
    m->layout = OTAUP_LAYOUT_INPLACE;
    m->slots[0].addr = 0x08020000u; m->slots[0].len = 0xE0000u;
    m->scratch.addr = 0x0800E000u; m->scratch.len = 0x2000u;
    m->caps = 0x5B;
    m->max_frame = 256;
    m->staging_size = 16384;
    m->ram_budget = 32768;
    m->resume.session = 0x1122334455667788ull;
    m->resume.next_step = 5;
    m->resume.phase = OTAUP_PHASE_TRANSFER;
    m->resume.flags = OTAUP_RESUME_IN_SCRATCH;
    m->sec_counter = 3;
}

static const char g_text[] = "Mise \xC3\xA0 jour disponible \xE2\x80\x94 1.3.0";

static otaup_record mkrec(uint8_t type)
{
    otaup_record r;
    memset(&r, 0, sizeof r);
    r.type = type;
    return r;
}

/* Builds the message of vector `name` (single-frame vectors). Returns flags. */
static int build(const char *name, otaup_msg *m)
{
    memset(m, 0, sizeof *m);
    if (!strcmp(name, "01-hello")) {
        m->type = OTAUP_MSG_HELLO;
        m->u.hello.role = OTAUP_ROLE_TERMINAL;
        m->u.hello.proto_min = 1;
        m->u.hello.proto_max = 1;
        m->u.hello.max_frame = 256;
        m->u.hello.max_msg = 1024;
        m->u.hello.window = 4;
        m->u.hello.caps = 0x4B;
    } else if (!strcmp(name, "02-info")) {
        m->type = OTAUP_MSG_INFO;
        info_full(&m->u.info);
    } else if (!strcmp(name, "02-info-min")) {
        m->type = OTAUP_MSG_INFO;
        m->u.info.terminal_id = str("T\xC3\xA9rminal-\xC3\xBC");
        m->u.info.model = str("M");
        m->u.info.sw_version = str("0.9");
    } else if (!strcmp(name, "02-info-limits")) {
        m->type = OTAUP_MSG_INFO;
        m->u.info.terminal_id = str("T\xC3\xA9rminal-\xC3\xBC");
        m->u.info.model = str("M");
        m->u.info.sw_version = str("0.9");
        m->u.info.have = OTAUP_INFO_HAVE_LIMITS;
        m->u.info.window_bits = 12;
        m->u.info.max_ops = 32;
    } else if (!strcmp(name, "02-info-sha256")) {
        m->type = OTAUP_MSG_INFO;
        m->u.info.terminal_id = str("T\xC3\xA9rminal-\xC3\xBC");
        m->u.info.model = str("M");
        m->u.info.sw_version = str("0.9");
        m->u.info.have = OTAUP_INFO_HAVE_SEC_COUNTER | OTAUP_INFO_HAVE_IMAGE_SHA256;
        m->u.info.sec_counter = 2;
        memcpy(m->u.info.image_sha256, pat(0xE0), 32);
    } else if (!strcmp(name, "03-notify")) {
        m->type = OTAUP_MSG_NOTIFY;
        m->u.notify.kind = OTAUP_NOTIFY_OFFER;
        m->u.notify.version = str("1.3.0");
        m->u.notify.build_time = 1710000000u;
        m->u.notify.download_size = 12345;
        m->u.notify.text = str(g_text);
    } else if (!strcmp(name, "04-consent")) {
        m->type = OTAUP_MSG_CONSENT;
        m->u.consent.decision = OTAUP_CONSENT_ACCEPT;
        m->u.consent.version = str("1.3.0");
    } else if (!strcmp(name, "04-consent-postpone")) {
        m->type = OTAUP_MSG_CONSENT;
        m->u.consent.decision = OTAUP_CONSENT_POSTPONE;
        m->u.consent.postpone_min = 90;
    } else if (!strcmp(name, "05-start")) {
        m->type = OTAUP_MSG_START;
        m->u.start.session = SESSION;
        m->u.start.manifest = bs(pat(0), 40);
    } else if (!strcmp(name, "05-start-resume")) {
        m->type = OTAUP_MSG_START;
        m->u.start.session = SESSION;
        m->u.start.flags = OTAUP_START_RESUME;
    } else if (!strcmp(name, "06-commit")) {
        m->type = OTAUP_MSG_COMMIT;
        m->u.commit.session = SESSION;
        m->u.commit.action = OTAUP_COMMIT_DONE;
    } else if (!strcmp(name, "07-abort")) {
        m->type = OTAUP_MSG_ABORT;
        m->u.abort.session = SESSION;
        m->u.abort.reason = OTAUP_E_CANCELED;
    } else if (!strcmp(name, "08-result")) {
        m->type = OTAUP_MSG_RESULT;
        m->u.result.session = SESSION;
        m->u.result.hash = mkhash(2, 0xC0);
        m->u.result.version = str("1.3.0");
    } else if (!strcmp(name, "08-result-fail")) {
        m->type = OTAUP_MSG_RESULT;
        m->u.result.session = SESSION;
        m->u.result.code = OTAUP_E_HASH;
        m->u.result.version = str("1.2.3");
    } else if (!strcmp(name, "09-ping-ackreq")) {
        m->type = OTAUP_MSG_PING;
        m->u.ping.nonce = 0xDEADBEEFu;
        return OTAUP_FLAG_ACKREQ;
    } else if (!strcmp(name, "0a-progress")) {
        m->type = OTAUP_MSG_PROGRESS;
        m->u.progress.step = 3;
        m->u.progress.total_steps = 10;
        m->u.progress.bytes_done = 4096;
        m->u.progress.bytes_total = 40960;
        m->u.progress.phase = OTAUP_PHASE_TRANSFER;
    } else if (!strcmp(name, "0b-ack")) {
        m->type = OTAUP_MSG_ACK;
        m->u.ack.seq = 6;
        m->u.ack.window = 4;
        m->u.ack.echo = 0xDEADBEEFu;
    } else if (!strcmp(name, "0c-nack")) {
        m->type = OTAUP_MSG_NACK;
        m->u.nack.seq = 9;
        m->u.nack.error = OTAUP_E_SEQ;
        m->u.nack.expected = 8;
    } else if (!strcmp(name, "10-backup-req")) {
        m->type = OTAUP_MSG_BACKUP_REQ;
        m->u.backup_req.region = 1;
        m->u.backup_req.max_chunk = 200;
    } else if (!strcmp(name, "10-backup-req-hash")) {
        m->type = OTAUP_MSG_BACKUP_REQ;
        m->u.backup_req.region = 2;
        m->u.backup_req.flags = OTAUP_BACKUP_HASH_ONLY;
        m->u.backup_req.offset = 0x2000;
        m->u.backup_req.max_chunk = 1;
    } else if (!strcmp(name, "13-sig-req")) {
        m->type = OTAUP_MSG_SIG_REQ;
        m->u.sig_req.block_size = 1024;
        m->u.sig_req.max_chunk = 480;
    } else if (!strcmp(name, "14-sig-data")) {
        m->type = OTAUP_MSG_SIG_DATA;
        m->u.sig_data.flags = OTAUP_SDATA_LAST;
        m->u.sig_data.offset = 64;
        m->u.sig_data.total = 96;
        m->u.sig_data.data = bs(pat(0x33), 32);
    } else if (!strcmp(name, "11-backup-data")) {
        m->type = OTAUP_MSG_BACKUP_DATA;
        m->u.rdata.region = 1;
        m->u.rdata.flags = OTAUP_RDATA_LAST | OTAUP_RDATA_HASH | OTAUP_RDATA_TAG;
        m->u.rdata.offset = 0x3F00;
        m->u.rdata.hash = mkhash(1, 0xE0);
        memcpy(m->u.rdata.tag, pat(0xF0), 16);
        m->u.rdata.data = bs(pat(0x10), 32);
    } else if (!strcmp(name, "12-restore-data")) {
        m->type = OTAUP_MSG_RESTORE_DATA;
        m->u.rdata.region = 1;
        m->u.rdata.data = bs(pat(0x20), 40);
    } else if (!strncmp(name, "2", 1) && strcmp(name, "2f-batch") != 0) {
        otaup_record *r = &m->u.rec;
        if (!strcmp(name, "20-erase")) {
            *r = mkrec(OTAUP_REC_ERASE); r->addr = 0x08020000u; r->len = 0x20000u;
        } else if (!strcmp(name, "21-write")) {
            *r = mkrec(OTAUP_REC_WRITE); r->addr = 0x1000; r->len = 24;
            r->data = pat(0x40); r->data_len = 24;
        } else if (!strcmp(name, "21-write-deferred")) {
            *r = mkrec(OTAUP_REC_WRITE); r->addr = 0x80; r->len = 1u << 20; r->enc = OTAUP_ENC_DEFERRED;
        } else if (!strcmp(name, "22-copy")) {
            *r = mkrec(OTAUP_REC_COPY); r->addr = 0x08004000u; r->src = 0x08000000u; r->len = 16384;
        } else if (!strcmp(name, "23-diff")) {
            *r = mkrec(OTAUP_REC_DIFF); r->addr = 0x2000; r->src = 0x1FF0; r->len = 17;
            r->data = pat(7); r->data_len = 17;
        } else if (!strcmp(name, "24-fill")) {
            *r = mkrec(OTAUP_REC_FILL); r->addr = 0x3000; r->len = 0x0FFFFFFFu; r->value = 0xA5;
        } else if (!strcmp(name, "25-verify")) {
            *r = mkrec(OTAUP_REC_VERIFY); r->addr = 0x4000; r->len = 1024; r->alg = OTAUP_HASH_SHA256;
            r->hash_len = 32; memcpy(r->hash, pat(0x80), 32);
        } else if (!strcmp(name, "26-data")) {
            *r = mkrec(OTAUP_REC_DATA); r->flags = OTAUP_DATA_RESET; r->data = pat(0x11); r->data_len = 30;
        } else if (!strcmp(name, "27-step")) {
            *r = mkrec(OTAUP_REC_STEP); r->addr = 0x08000000u; r->len = 4096; r->flags = OTAUP_STEP_HASH;
            r->hash_len = 8; memcpy(r->hash, pat(0x50), 8);
        } else if (!strcmp(name, "28-end")) {
            *r = mkrec(OTAUP_REC_END); r->index = 12345;
        } else if (!strcmp(name, "29-blob")) {
            *r = mkrec(OTAUP_REC_BLOB); r->data = pat(0x90); r->data_len = 29;
        } else if (!strcmp(name, "2a-sync")) {
            *r = mkrec(OTAUP_REC_SYNC); r->index = 128;
        } else {
            ck_abort_msg("no builder for %s", name);
        }
        m->type = r->type;
    } else {
        ck_abort_msg("no builder for %s", name);
    }
    return 0;
}

static const char *const g_single[] = {
    "01-hello", "02-info", "02-info-min", "02-info-limits", "02-info-sha256", "03-notify", "04-consent", "04-consent-postpone",
    "05-start", "05-start-resume", "06-commit", "07-abort", "08-result", "08-result-fail",
    "09-ping-ackreq", "0a-progress", "0b-ack", "0c-nack", "10-backup-req", "10-backup-req-hash",
    "11-backup-data", "12-restore-data", "13-sig-req", "14-sig-data", "20-erase", "21-write", "21-write-deferred", "22-copy", "23-diff",
    "24-fill", "25-verify", "26-data", "27-step", "28-end", "29-blob", "2a-sync",
};
#define NSINGLE (sizeof g_single / sizeof g_single[0])

/* The BATCH record stream of the vectors. */
static size_t batch_stream(uint8_t *out, size_t cap)
{
    otaup_record r[4];
    size_t pos = 0, i;
    r[0] = mkrec(OTAUP_REC_STEP); r[0].index = 3; r[0].addr = 0x08003000u; r[0].len = 0x1000;
    r[0].flags = OTAUP_STEP_HASH; r[0].hash_len = 8; memcpy(r[0].hash, pat(0x60), 8);
    r[1] = mkrec(OTAUP_REC_COPY); r[1].addr = 0x08003000u; r[1].src = 0x08002000u; r[1].len = 0x800;
    r[2] = mkrec(OTAUP_REC_DIFF); r[2].addr = 0x08003800u; r[2].src = 0x08002800u; r[2].len = 20;
    r[2].data = pat(0x21); r[2].data_len = 20;
    r[3] = mkrec(OTAUP_REC_END); r[3].index = 3;
    for (i = 0; i < 4; i++) {
        int k = otaup_record_encode(&r[i], out + pos, cap - pos);
        ck_assert_int_gt(k, 0);
        pos += (size_t)k;
    }
    return pos;
}

/* ---- checksums ------------------------------------------------------------------------ */

START_TEST(test_check_values)
{
    static const uint8_t s[] = "123456789";
    ck_assert_uint_eq(otaup_crc8(0, s, 9), 0xF4);
    ck_assert_uint_eq(otaup_crc8(otaup_crc8(0, s, 4), s + 4, 5), 0xF4);
}
END_TEST

/* ---- golden vectors ---------------------------------------------------------------------- */

START_TEST(test_golden_single)
{
    static uint8_t want[70000], got[70000];
    size_t i;
    for (i = 0; i < NSINGLE; i++) {
        otaup_msg m, d;
        otaup_frame fr;
        size_t n = read_file(g_single[i], want, sizeof want);
        int flags = build(g_single[i], &m);
        int k = otaup_msg_encode_frame(&m, (uint8_t)flags, SEQ, OTAUP_FRAME_MAX, got, sizeof got);
        ck_assert_msg(k == (int)n, "%s: encoded %d bytes, vector has %u", g_single[i], k, (unsigned)n);
        ck_assert_msg(memcmp(got, want, n) == 0, "%s: bytes differ from the vector", g_single[i]);
        /* decode the vector: datagram mode, then the payload */
        ck_assert_int_eq(otaup_frame_decode(want, n, OTAUP_FRAME_MAX, &fr), 0);
        ck_assert_uint_eq(fr.type, m.type);
        ck_assert_uint_eq(fr.seq, SEQ);
        ck_assert_uint_eq(fr.flags, (unsigned)flags);
        ck_assert_uint_eq(fr.frame_len, n);
        ck_assert_ptr_eq(fr.payload, want + OTAUP_FRAME_HEADER_SIZE);
        ck_assert_msg(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d) == 0, "%s: decode",
                      g_single[i]);
        /* and re-encode what was decoded: the same frame */
        k = otaup_msg_encode_frame(&d, fr.flags, fr.seq, OTAUP_FRAME_MAX, got, sizeof got);
        ck_assert_int_eq(k, (int)n);
        ck_assert_mem_eq(got, want, n);
    }
}
END_TEST

START_TEST(test_golden_fields)
{
    static uint8_t buf[4096];
    otaup_frame fr;
    otaup_msg d, m;
    size_t n;
    /* INFO: every item survives */
    n = read_file("02-info", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    info_full(&m.u.info);
    ck_assert_uint_eq(d.u.info.have, m.u.info.have);
    ck_assert_uint_eq(d.u.info.terminal_id.len, 6);
    ck_assert_mem_eq(d.u.info.terminal_id.data, "T-0001", 6);
    ck_assert(d.u.info.terminal_id.data > buf && d.u.info.terminal_id.data < buf + n);
    ck_assert_uint_eq(d.u.info.build_time, 1700000000u);
    ck_assert_uint_eq(d.u.info.image_hash.alg, 2);
    ck_assert_mem_eq(d.u.info.image_hash.bytes, pat(0xA0), 16);
    ck_assert_uint_eq(d.u.info.geometry.nruns, 3);
    ck_assert_uint_eq(d.u.info.geometry.runs[2].size, 131072);
    ck_assert_uint_eq(otaup_geometry_size(&d.u.info.geometry), 1024u * 1024u);
    ck_assert_uint_eq(d.u.info.nwindows, 2);
    ck_assert_uint_eq(d.u.info.windows[1].addr, 0x08008000u);
    ck_assert_uint_eq(d.u.info.nregions, 2);
    ck_assert_uint_eq(d.u.info.regions[0].flags, OTAUP_REGION_PERSONAL);
    ck_assert_uint_eq(d.u.info.regions[0].hash.len, 8);
    ck_assert_uint_eq(d.u.info.regions[1].hash.alg, 0);
    ck_assert_uint_eq(d.u.info.slots[0].len, 0xE0000u);
    ck_assert_uint_eq(d.u.info.scratch.addr, 0x0800E000u);
    ck_assert_uint_eq(d.u.info.staging_size, 16384);
    ck_assert_uint_eq(d.u.info.ram_budget, 32768);
    ck_assert(d.u.info.resume.session == 0x1122334455667788ull);
    ck_assert_uint_eq(d.u.info.resume.next_step, 5);
    ck_assert_uint_eq(d.u.info.resume.flags, OTAUP_RESUME_IN_SCRATCH);
    ck_assert_uint_eq(d.u.info.sec_counter, 3);
    ck_assert_uint_eq(d.u.info.max_frame, 256);
    /* NOTIFY text, ABORT reason, ACK echo, NACK fields */
    n = read_file("03-notify", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    ck_assert_uint_eq(d.u.notify.text.len, strlen(g_text));
    ck_assert_mem_eq(d.u.notify.text.data, g_text, strlen(g_text));
    ck_assert_uint_eq(d.u.notify.download_size, 12345);
    n = read_file("07-abort", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    ck_assert_int_eq(d.u.abort.reason, OTAUP_E_CANCELED);
    ck_assert(d.u.abort.session == SESSION);
    n = read_file("0c-nack", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    ck_assert_int_eq(d.u.nack.error, OTAUP_E_SEQ);
    ck_assert_uint_eq(d.u.nack.expected, 8);
    n = read_file("11-backup-data", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    ck_assert_mem_eq(d.u.rdata.tag, pat(0xF0), 16);
    ck_assert_uint_eq(d.u.rdata.data.len, 32);
    ck_assert_mem_eq(d.u.rdata.data.data, pat(0x10), 32);
    n = read_file("22-copy", buf, sizeof buf);
    ck_assert_int_eq(otaup_frame_decode(buf, n, OTAUP_FRAME_MAX, &fr), 0);
    ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    ck_assert_uint_eq(d.u.rec.src, 0x08000000u);
    ck_assert_uint_eq(d.u.rec.len, 16384);
}
END_TEST

/* INFO over 64-byte frames: fragments match the vector and reassemble. */
START_TEST(test_golden_fragmented_info)
{
    static uint8_t want[4096], got[4096], pay[1024], rbuf[1024], dbuf[64];
    otaup_msg m, d;
    size_t n = read_file("02-info-frag64", want, sizeof want), off = 0, gl = 0, pl;
    uint32_t seq = SEQ;
    int k, frames = 0, complete = 0;
    otaup_decoder dec;
    otaup_reasm ra;
    m.type = OTAUP_MSG_INFO;
    info_full(&m.u.info);
    k = otaup_msg_encode(&m, pay, sizeof pay);
    ck_assert_int_gt(k, 100);
    pl = (size_t)k;
    /* a whole frame does not fit 64 bytes */
    ck_assert_int_eq(otaup_msg_encode_frame(&m, 0, SEQ, 64, got, sizeof got), OTAUP_E_FRAME_OVERSIZE);
    while ((k = otaup_frag_next(OTAUP_MSG_INFO, 0, seq, pay, pl, &off, 64, got + gl, sizeof got - gl)) > 0) {
        ck_assert_int_le(k, 64);
        gl += (size_t)k;
        seq++;
        frames++;
    }
    ck_assert_int_eq(k, 0);
    ck_assert_int_eq(frames, (int)((pl + 47) / 48));
    ck_assert_uint_eq(gl, n);
    ck_assert_mem_eq(got, want, n);
    /* receive it through a 64-byte decoder and the reassembler */
    ck_assert_int_eq(otaup_decoder_init(&dec, dbuf, sizeof dbuf, 64), 0);
    ck_assert_int_eq(otaup_reasm_init(&ra, rbuf, sizeof rbuf), 0);
    off = 0;
    while (off < n) {
        otaup_frame fr;
        size_t used;
        int ev = otaup_decoder_feed(&dec, want + off, 5, &used, &fr); /* 5-byte reads */
        off += used;
        if (ev == OTAUP_DEC_FRAME) {
            const uint8_t *msg;
            size_t ml;
            int r = otaup_reasm_add(&ra, &fr, &msg, &ml);
            ck_assert_int_ge(r, 0);
            if (r == 1) {
                complete++;
                ck_assert_uint_eq(ml, pl);
                ck_assert_mem_eq(msg, pay, pl);
                ck_assert_int_eq(otaup_msg_decode(fr.type, msg, ml, &d), 0);
                ck_assert_uint_eq(d.u.info.nregions, 2);
            }
        } else {
            ck_assert_int_eq(ev, OTAUP_DEC_NEED_INPUT);
        }
    }
    ck_assert_int_eq(complete, 1);
}
END_TEST

START_TEST(test_golden_batch)
{
    static uint8_t want[4096], got[4096], st[256];
    size_t n, sl = batch_stream(st, sizeof st), pos = 0, gl = 0;
    otaup_frame fr;
    otaup_record r;
    int k, count = 0;
    otaup_msg m;
    /* whole BATCH */
    n = read_file("2f-batch", want, sizeof want);
    m.type = OTAUP_MSG_BATCH;
    m.u.batch = bs(st, sl);
    ck_assert_int_eq(otaup_msg_encode_frame(&m, 0, SEQ, OTAUP_FRAME_MAX, got, sizeof got), (int)n);
    ck_assert_mem_eq(got, want, n);
    ck_assert_int_eq(otaup_frame_decode(want, n, OTAUP_FRAME_MAX, &fr), 0);
    while ((k = otaup_batch_next(fr.payload, fr.payload_len, &pos, &r)) == 1) {
        count++;
    }
    ck_assert_int_eq(k, 0);
    ck_assert_int_eq(count, 4);
    ck_assert_uint_eq(r.type, OTAUP_REC_END);
    /* the same stream cut inside a record: MORE then CONT */
    n = read_file("2f-batch-split", want, sizeof want);
    memcpy(got + OTAUP_FRAME_HEADER_SIZE, st, 20);
    ck_assert_int_eq(otaup_frame_seal(got, sizeof got, OTAUP_MSG_BATCH, OTAUP_FLAG_MORE, SEQ, 20), 36);
    gl = 36;
    memcpy(got + gl + OTAUP_FRAME_HEADER_SIZE, st + 20, sl - 20);
    k = otaup_frame_seal(got + gl, sizeof got - gl, OTAUP_MSG_BATCH, OTAUP_FLAG_CONT, SEQ + 1, sl - 20);
    ck_assert_int_gt(k, 0);
    gl += (size_t)k;
    ck_assert_uint_eq(gl, n);
    ck_assert_mem_eq(got, want, n);
}
END_TEST

/* ---- every message: round trip and refusals --------------------------------------------- */

START_TEST(test_round_trip_all)
{
    static uint8_t a[70000], b[70000];
    size_t i;
    for (i = 0; i < NSINGLE; i++) {
        otaup_msg m, d;
        int na, nb;
        build(g_single[i], &m);
        na = otaup_msg_encode(&m, a, sizeof a);
        ck_assert_int_ge(na, 0);
        ck_assert_int_eq(otaup_msg_decode(m.type, a, (size_t)na, &d), 0);
        ck_assert_uint_eq(d.type, m.type);
        nb = otaup_msg_encode(&d, b, sizeof b);
        ck_assert_int_eq(na, nb);
        ck_assert_mem_eq(a, b, (size_t)na);
        /* every truncation of a payload is refused or, for payloads ending in
           free-length bytes, decodes to something shorter */
        for (int k = 0; k < na; k++) {
            int rc = otaup_msg_decode(m.type, a, (size_t)k, &d);
            if (rc == 0) {
                ck_assert_int_lt(otaup_msg_encode(&d, b, sizeof b), na);
            } else {
                ck_assert_msg(rc == OTAUP_E_MSG_LENGTH || rc == OTAUP_E_MSG_FIELD,
                              "%s cut at %d: %d", g_single[i], k, rc);
            }
        }
        /* every too small output buffer */
        for (int k = 0; k < na; k++) {
            ck_assert_int_eq(otaup_msg_encode(&m, b, (size_t)k), OTAUP_E_BUFFER);
        }
    }
}
END_TEST

START_TEST(test_field_errors)
{
    uint8_t p[128];
    otaup_msg m, d;
    int n;
    /* HELLO */
    build("01-hello", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[0] = 3; /* role */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 2; p[3] = 1; /* reserved */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    p[3] = 0; p[1] = 2; /* min > max */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[1] = 1; p[4] = 63; p[5] = 0; /* max_frame 63 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[4] = 0; p[5] = 0; p[6] = 1; /* 65536: fine */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), 0);
    p[4] = 1; /* 65537 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[4] = 0; p[12] = 0; p[13] = 0; /* window 0 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_HELLO, p, (size_t)n + 1, &d), OTAUP_E_MSG_LENGTH);
    m.u.hello.window = 0;
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* NOTIFY: bad kind, bad UTF-8 in text and version */
    build("03-notify", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[0] = 2;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_NOTIFY, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 1; p[n - 1] = 0xC0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_NOTIFY, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[n - 1] = '0'; p[1] = 33; /* version longer than 32 bytes */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_NOTIFY, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[1] = 200;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_NOTIFY, p, (size_t)n, &d), OTAUP_E_MSG_LENGTH);
    m.u.notify.text = bs("\xFF", 1);
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* CONSENT */
    build("04-consent", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[0] = 0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_CONSENT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 1; p[2] = 5; /* postpone without POSTPONE */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_CONSENT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[2] = 0; p[1] = 0x80;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_CONSENT, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    p[1] = 0; p[4] = 6; /* vlen lies */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_CONSENT, p, (size_t)n, &d), OTAUP_E_MSG_LENGTH);
    /* START: session 0, reserved flag */
    build("05-start", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[8] = 0x02;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_START, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    p[8] = 0; memset(p, 0, 8);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_START, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    /* COMMIT action, ABORT reason >= 0, RESULT code > 0, ACK status > 0, NACK error 0 */
    build("06-commit", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[8] = 4;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_COMMIT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    build("07-abort", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    memset(p + 8, 0, 4);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_ABORT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    build("08-result", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[8] = 1;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESULT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[8] = 0; p[12] = 9; /* hash alg */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESULT, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[12] = 1; /* alg 1 is 8 bytes: the rest no longer lines up */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESULT, p, (size_t)n, &d), OTAUP_E_MSG_LENGTH);
    build("0b-ack", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[4] = 1;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_ACK, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[4] = 0; p[10] = 1;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_ACK, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    build("0c-nack", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    memset(p + 4, 0, 4);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_NACK, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    /* PROGRESS phase, BACKUP_REQ chunk 0 */
    build("0a-progress", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[16] = 7;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_PROGRESS, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    build("10-backup-req", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    memset(p + 8, 0, 4);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BACKUP_REQ, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    /* BACKUP_REQ flags other than HASH_ONLY */
    build("10-backup-req-hash", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BACKUP_REQ, p, (size_t)n, &d), 0);
    ck_assert_uint_eq(d.u.backup_req.flags, OTAUP_BACKUP_HASH_ONLY);
    p[1] = 0x02;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BACKUP_REQ, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    m.u.backup_req.flags = 0x80;
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* SIG_REQ: block size a power of two in 64 .. 1 MiB, chunk >= 1 */
    build("13-sig-req", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[0] = 0x00; p[1] = 0x03; /* 768 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_REQ, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 0x20; p[1] = 0x00; /* 32 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_REQ, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 0x00; p[1] = 0x00; p[2] = 0x20; /* 2 MiB */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_REQ, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[2] = 0x10; /* 1 MiB */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_REQ, p, (size_t)n, &d), 0);
    memset(p + 8, 0, 4);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_REQ, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    m.u.sig_req.block_size = 100;
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* SIG_DATA: LAST exactly at the end, inside total, reserved bytes zero */
    build("14-sig-data", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[0] = 0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 1; p[8] = 97; /* total 97: LAST before the end */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[0] = 0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), 0);
    p[8] = 95; /* data past total */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    p[8] = 96; p[0] = 1; p[2] = 1;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    p[2] = 0; p[0] = 3;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    memset(p + 8, 0, 4); p[0] = 1; /* total 0 */
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_SIG_DATA, p, 12, &d), OTAUP_E_MSG_FIELD);
    m.u.sig_data.flags = 0;
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* RESTORE_DATA carries a sealed chunk's tag (its first 16 bytes after
     * the fixed fields) and no other flag; BACKUP_DATA hash alg 0 */
    build("12-restore-data", &m);
    n = otaup_msg_encode(&m, p, sizeof p);
    p[1] = OTAUP_RDATA_TAG;
    if (n >= 8 + 16) {
        ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESTORE_DATA, p, (size_t)n, &d), 0);
        ck_assert_uint_eq(d.u.rdata.data.len, (uint32_t)n - 8u - 16u);
        ck_assert_int_eq(memcmp(d.u.rdata.tag, p + 8, 16), 0);
    }
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESTORE_DATA, p, 8 + 15, &d), OTAUP_E_MSG_LENGTH);
    p[1] = 0x08;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_RESTORE_DATA, p, (size_t)n, &d), OTAUP_E_FRAME_FLAGS);
    p[1] = 0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BACKUP_DATA, p, (size_t)n, &d), 0);
    p[1] = OTAUP_RDATA_HASH; p[8] = 0;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BACKUP_DATA, p, (size_t)n, &d), OTAUP_E_MSG_FIELD);
    m.type = OTAUP_MSG_RESTORE_DATA;
    m.u.rdata.flags = 0x08;
    ck_assert_int_eq(otaup_msg_encode(&m, p, sizeof p), OTAUP_E_INVAL);
    /* records: reserved types and malformed bodies */
    ck_assert_int_eq(otaup_msg_decode(0x2B, p, 1, &d), OTAUP_E_MSG_TYPE);
    ck_assert_int_eq(otaup_msg_decode(0x2E, p, 1, &d), OTAUP_E_MSG_TYPE);
    ck_assert_int_eq(otaup_msg_decode(0x00, p, 1, &d), OTAUP_E_MSG_TYPE);
    ck_assert_int_eq(otaup_msg_decode(0x15, p, 1, &d), OTAUP_E_MSG_TYPE);
    p[0] = 0x80; p[1] = 0x00; p[2] = 0x01;
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_ERASE, p, 3, &d), OTAUP_E_MSG_FIELD);
    ck_assert_int_eq(otaup_msg_decode(OTAUP_MSG_BATCH, p, 0, &d), OTAUP_E_MSG_LENGTH);
}
END_TEST

static size_t tlv(uint8_t *p, uint8_t tag, const void *v, uint8_t n)
{
    p[0] = tag;
    p[1] = n;
    memcpy(p + 2, v, n);
    return 2u + n;
}

START_TEST(test_info_tlv_rules)
{
    uint8_t p[1024], bt[8] = { 1, 0, 0, 0, 0, 0, 0, 0 }, w[8] = { 0, 0, 0, 8, 0, 1, 0, 0 };
    otaup_msg_info d;
    size_t n = 0, base, i;
    n += tlv(p + n, 0x01, "id", 2);
    n += tlv(p + n, 0x02, "model", 5);
    n += tlv(p + n, 0x03, "1.0", 3);
    n += tlv(p + n, 0x04, bt, 8);
    base = n;
    ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
    ck_assert_uint_eq(d.have, 0);
    ck_assert(d.build_time == 1);
    /* unknown tags are skipped, in both ranges */
    n = base + tlv(p + base, 0x13, "xyz", 3);
    n += tlv(p + n, 0xF0, "", 0);
    ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
    /* IMAGE_SHA256: exactly 32 bytes, once */
    {
        uint8_t sha[33];
        for (i = 0; i < sizeof sha; i++) {
            sha[i] = (uint8_t)(0x50 + i);
        }
        n = base + tlv(p + base, 0x12, sha, 32);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
        ck_assert_uint_eq(d.have, OTAUP_INFO_HAVE_IMAGE_SHA256);
        ck_assert_mem_eq(d.image_sha256, sha, 32);
        n = base + tlv(p + base, 0x12, sha, 31);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        n = base + tlv(p + base, 0x12, sha, 33);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        n = base + tlv(p + base, 0x12, sha, 32);
        n += tlv(p + n, 0x12, sha, 32);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    }
    /* tag 0 */
    n = base + tlv(p + base, 0x00, "", 0);
    ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    /* an item past the end */
    n = base + tlv(p + base, 0x13, "xyz", 3);
    ck_assert_int_eq(otaup_info_decode(p, n - 1, &d), OTAUP_E_MSG_LENGTH);
    /* LIMITS: window bits 0 or 9..15, max_ops >= 1, reserved byte zero */
    {
        uint8_t lim[4] = { 15, 0, 1, 0 };
        n = base + tlv(p + base, 0x11, lim, 4);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
        ck_assert_uint_eq(d.have, OTAUP_INFO_HAVE_LIMITS);
        ck_assert_uint_eq(d.window_bits, 15);
        ck_assert_uint_eq(d.max_ops, 1);
        lim[0] = 8;
        n = base + tlv(p + base, 0x11, lim, 4);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        lim[0] = 0; lim[2] = 0;
        n = base + tlv(p + base, 0x11, lim, 4);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        lim[2] = 4; lim[1] = 1;
        n = base + tlv(p + base, 0x11, lim, 4);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_FRAME_FLAGS);
        n = base + tlv(p + base, 0x11, lim, 3);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    }
    ck_assert_int_eq(otaup_info_decode(p, base + 1, &d), OTAUP_E_MSG_LENGTH);
    /* a single item twice */
    n = base + tlv(p + base, 0x02, "again", 5);
    ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    /* a missing required item: drop BUILD_TIME */
    ck_assert_int_eq(otaup_info_decode(p, base - 10, &d), OTAUP_E_MSG_FIELD);
    /* a fixed-size item with the wrong length */
    n = base + tlv(p + base, 0x06, "abc", 3);
    ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    /* eight windows are fine, nine are not */
    n = base;
    for (i = 0; i < 8; i++) {
        n += tlv(p + n, 0x08, w, 8);
    }
    ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
    ck_assert_uint_eq(d.nwindows, 8);
    n += tlv(p + n, 0x08, w, 8);
    ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    /* an empty window, a window past 4 GiB */
    {
        uint8_t e[8] = { 0, 0, 0, 8, 0, 0, 0, 0 }, f[8] = { 0, 0, 0, 0xFF, 0, 0, 0, 2 };
        n = base + tlv(p + base, 0x08, e, 8);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        n = base + tlv(p + base, 0x08, f, 8);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    }
    /* regions with the same id */
    {
        uint8_t r1[11] = { 5, 0, 0, 0, 0, 8, 0, 1, 0, 0, 0 };
        n = base + tlv(p + base, 0x09, r1, 11);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
        ck_assert_uint_eq(d.regions[0].id, 5);
        n += tlv(p + n, 0x09, r1, 11);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    }
    /* an invalid geometry: write size 3 */
    {
        uint8_t g[18] = { 0, 0, 0, 8, 3, 0, 0, 0, 0xFF, 1, 4, 0, 0, 0, 0, 0x10, 0, 0 };
        n = base + tlv(p + base, 0x07, g, 18);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
        g[4] = 4;
        n = base + tlv(p + base, 0x07, g, 18);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), 0);
        ck_assert_uint_eq(d.geometry.runs[0].count, 4);
        g[9] = 2; /* nruns says 2, one given */
        n = base + tlv(p + base, 0x07, g, 18);
        ck_assert_int_eq(otaup_info_decode(p, n, &d), OTAUP_E_MSG_FIELD);
    }
    /* an id that is not UTF-8 */
    p[2] = 0xFF;
    ck_assert_int_eq(otaup_info_decode(p, base, &d), OTAUP_E_MSG_FIELD);
}
END_TEST

START_TEST(test_utf8)
{
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"abc", 3), 1);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xC3\xA9", 2), 1);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xF0\x9F\x98\x80", 4), 1);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xF4\x8F\xBF\xBF", 4), 1);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xC3", 1), 0);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xC0\x80", 2), 0);     /* overlong NUL */
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xE0\x80\x80", 3), 0); /* overlong */
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xED\xA0\x80", 3), 0); /* surrogate */
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\xF4\x90\x80\x80", 4), 0); /* > U+10FFFF */
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"\x80", 1), 0);
    ck_assert_int_eq(otaup_utf8_valid((const uint8_t *)"a\xE2\x82", 3), 0);
    ck_assert_int_eq(otaup_utf8_valid(NULL, 0), 1);
}
END_TEST

/* ---- bad frames: one specific error each -------------------------------------------------- */

static size_t good_frame(uint8_t *out, size_t cap)
{
    otaup_msg m;
    build("0a-progress", &m);
    return (size_t)otaup_msg_encode_frame(&m, 0, 42, OTAUP_FRAME_MAX, out, cap);
}

/* Recompute hcheck and CRC after editing a frame. */
static void reseal(uint8_t *f)
{
    size_t plen = (size_t)(f[6] | (f[7] << 8));
    uint32_t c;
    f[5] = otaup_crc8(otaup_crc8(0, f, 5), f + 6, 6);
    c = (uint32_t)crc32(0, f, (unsigned)(12 + plen));
    f[12 + plen] = (uint8_t)c;
    f[13 + plen] = (uint8_t)(c >> 8);
    f[14 + plen] = (uint8_t)(c >> 16);
    f[15 + plen] = (uint8_t)(c >> 24);
}

/* Streaming decode of one buffer; returns the first event that is not NEED_INPUT/GARBAGE. */
static int stream_first(const uint8_t *in, size_t len, uint32_t max_frame, otaup_frame *fr)
{
    static uint8_t buf[OTAUP_FRAME_MAX];
    otaup_decoder d;
    size_t off = 0;
    ck_assert_int_eq(otaup_decoder_init(&d, buf, sizeof buf, max_frame), 0);
    for (;;) {
        size_t used;
        int ev = otaup_decoder_feed(&d, in + off, len - off, &used, fr);
        off += used;
        if (ev == OTAUP_E_FRAME_GARBAGE) {
            continue;
        }
        if (ev != OTAUP_DEC_NEED_INPUT || off == len) {
            return ev;
        }
    }
}

START_TEST(test_bad_frames)
{
    uint8_t f[128], g[128];
    otaup_frame fr;
    size_t n = good_frame(f, sizeof f), i;
    ck_assert_uint_eq(n, 36);
    ck_assert_int_eq(otaup_frame_decode(f, n, 64, &fr), 0);
    ck_assert_int_eq(stream_first(f, n, 64, &fr), OTAUP_DEC_FRAME);
    ck_assert_uint_eq(fr.seq, 42);

    /* truncated: every prefix */
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(otaup_frame_decode(f, i, 64, &fr), OTAUP_E_FRAME_TRUNCATED);
        ck_assert_int_eq(stream_first(f, i, 64, &fr), OTAUP_DEC_NEED_INPUT);
    }
    /* bad magic (datagram) */
    memcpy(g, f, n); g[1] = 0x56;
    ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_MAGIC);
    /* bad header check: any single bit flip in the header */
    for (i = 0; i < 12 * 8; i++) {
        int rc;
        memcpy(g, f, n);
        g[i / 8] ^= (uint8_t)(1u << (i % 8));
        rc = otaup_frame_decode(g, n, 64, &fr);
        if (i / 8 < 2) {
            ck_assert_int_eq(rc, OTAUP_E_FRAME_MAGIC);
        } else {
            ck_assert_msg(rc == OTAUP_E_FRAME_HEADER, "header bit %u: %d", (unsigned)i, rc);
            ck_assert_int_eq(stream_first(g, n, 64, &fr), OTAUP_E_FRAME_HEADER);
        }
    }
    /* bad CRC: any single bit flip in payload or CRC */
    for (i = 12 * 8; i < n * 8; i++) {
        memcpy(g, f, n);
        g[i / 8] ^= (uint8_t)(1u << (i % 8));
        ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_CRC);
        ck_assert_int_eq(stream_first(g, n, 64, &fr), OTAUP_E_FRAME_CRC);
    }
    /* oversize: a 49-byte payload for a 64-byte receiver */
    {
        static uint8_t big[256];
        otaup_record r = mkrec(OTAUP_REC_BLOB);
        otaup_msg m;
        int k;
        r.data = pat(0); r.data_len = 49;
        m.type = OTAUP_MSG_BLOB; m.u.rec = r;
        k = otaup_msg_encode_frame(&m, 0, 1, 256, big, sizeof big);
        ck_assert_int_eq(k, 65);
        ck_assert_int_eq(otaup_msg_encode_frame(&m, 0, 1, 64, big, sizeof big), OTAUP_E_FRAME_OVERSIZE);
        ck_assert_int_eq(otaup_frame_decode(big, 65, 64, &fr), OTAUP_E_FRAME_OVERSIZE);
        ck_assert_int_eq(otaup_frame_decode(big, 65, 65, &fr), 0);
        ck_assert_int_eq(stream_first(big, 65, 64, &fr), OTAUP_E_FRAME_OVERSIZE);
        /* the oversize error comes from the header alone */
        ck_assert_int_eq(stream_first(big, 12, 64, &fr), OTAUP_E_FRAME_OVERSIZE);
        ck_assert_int_eq(otaup_frame_decode(big, 12, 64, &fr), OTAUP_E_FRAME_OVERSIZE);
    }
    /* wrong version (intact frame: reported with its header) */
    memcpy(g, f, n); g[2] = 2; reseal(g);
    ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_VERSION);
    ck_assert_uint_eq(fr.seq, 42);
    ck_assert_int_eq(stream_first(g, n, 64, &fr), OTAUP_E_FRAME_VERSION);
    ck_assert_uint_eq(fr.version, 2);
    /* reserved flags */
    for (i = 3; i < 8; i++) {
        memcpy(g, f, n); g[4] = (uint8_t)(1u << i); reseal(g);
        ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_FLAGS);
        ck_assert_int_eq(stream_first(g, n, 64, &fr), OTAUP_E_FRAME_FLAGS);
    }
    /* MORE on a type that cannot be fragmented */
    memcpy(g, f, n); g[4] = OTAUP_FLAG_MORE; reseal(g);
    ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_FLAGS);
    memcpy(g, f, n); g[4] = OTAUP_FLAG_ACKREQ; reseal(g);
    ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), 0);
    /* unknown type */
    for (i = 0; i < 256; i++) {
        int rc;
        memcpy(g, f, n); g[3] = (uint8_t)i; reseal(g);
        rc = otaup_frame_decode(g, n, 64, &fr);
        if (otaup_msg_type_known((uint8_t)i)) {
            ck_assert_int_ne(rc, OTAUP_E_MSG_TYPE);
        } else {
            ck_assert_int_eq(rc, OTAUP_E_MSG_TYPE);
            ck_assert_int_eq(stream_first(g, n, 64, &fr), OTAUP_E_MSG_TYPE);
            ck_assert_uint_eq(fr.type, i);
        }
    }
    /* length lies: PROGRESS with 19 and 21 payload bytes, CRC good */
    {
        size_t k;
        for (k = 19; k <= 21; k += 2) {
            memset(g, 0, sizeof g);
            memcpy(g, f, 12 + 19);
            g[6] = (uint8_t)k;
            reseal(g);
            ck_assert_int_eq(otaup_frame_decode(g, k + 16, 64, &fr), OTAUP_E_MSG_LENGTH);
            ck_assert_int_eq(stream_first(g, k + 16, 64, &fr), OTAUP_E_MSG_LENGTH);
        }
    }
    /* a datagram with a byte after the frame */
    memcpy(g, f, n); g[n] = 0;
    ck_assert_int_eq(otaup_frame_decode(g, n + 1, 64, &fr), OTAUP_E_MSG_LENGTH);
    /* a length field that claims more than the datagram */
    memcpy(g, f, n); g[6] = 30; reseal(g);
    ck_assert_int_eq(otaup_frame_decode(g, n, 64, &fr), OTAUP_E_FRAME_TRUNCATED);
    /* bad arguments */
    ck_assert_int_eq(otaup_frame_decode(f, n, 63, &fr), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_frame_decode(f, n, 65537, &fr), OTAUP_E_INVAL);
}
END_TEST

/* ---- streaming: event logs at every split point ----------------------------------------- */

struct evlog {
    uint8_t b[1 << 17];
    size_t n;
};

static void ev_put(struct evlog *l, const void *p, size_t n)
{
    ck_assert_uint_le(l->n + n, sizeof l->b);
    if (n != 0) {
        memcpy(l->b + l->n, p, n);
    }
    l->n += n;
}

static void ev_record(struct evlog *l, int ev, const otaup_decoder *d, const otaup_frame *fr)
{
    ev_put(l, &ev, sizeof ev);
    if (ev == OTAUP_E_FRAME_GARBAGE) {
        ev_put(l, &d->skipped, sizeof d->skipped);
    } else if (ev == OTAUP_DEC_FRAME || ev == OTAUP_E_FRAME_VERSION || ev == OTAUP_E_FRAME_FLAGS ||
               ev == OTAUP_E_MSG_TYPE || ev == OTAUP_E_MSG_LENGTH) {
        ev_put(l, &fr->type, 1);
        ev_put(l, &fr->flags, 1);
        ev_put(l, &fr->seq, 4);
        ev_put(l, &fr->payload_len, 4);
        ev_put(l, fr->payload, fr->payload_len);
    }
}

static uint8_t g_dbuf[OTAUP_FRAME_MAX];

/* Feed `in` in pieces from cuts[] (cyclic); log every event. */
static void run_stream(struct evlog *l, const uint8_t *in, size_t len, const size_t *cuts,
                       size_t ncuts, uint32_t max_frame, otaup_decoder_stats *st)
{
    otaup_decoder d;
    size_t pos = 0, ci = 0;
    l->n = 0;
    ck_assert_int_eq(otaup_decoder_init(&d, g_dbuf, max_frame, max_frame), 0);
    while (pos < len) {
        size_t piece = cuts[ci++ % ncuts], off = 0;
        if (piece > len - pos) {
            piece = len - pos;
        }
        for (;;) {
            otaup_frame fr;
            size_t used = 0;
            int ev = otaup_decoder_feed(&d, in + pos + off, piece - off, &used, &fr);
            ck_assert_uint_le(used, piece - off);
            off += used;
            if (ev == OTAUP_DEC_NEED_INPUT) {
                ck_assert_uint_eq(off, piece);
                break;
            }
            if (ev == OTAUP_DEC_FRAME) {
                ck_assert_uint_le(fr.frame_len, max_frame);
                ck_assert_uint_eq(fr.frame_len, fr.payload_len + 16);
            }
            ev_record(l, ev, &d, &fr);
        }
        pos += piece;
    }
    if (st != NULL) {
        *st = d.stats;
    }
}

/*
 * A stream of every vector, with garbage, fake magics, a corrupted frame,
 * an oversize header, a frame hidden inside a corrupted one, an intact frame
 * of unknown type.
 */
static size_t build_mixed_stream(uint8_t *s, size_t cap, size_t *nframes)
{
    static uint8_t v[70000];
    size_t n = 0, i, k;
    *nframes = 0;
    for (i = 0; i < NSINGLE; i++) {
        k = read_file(g_single[i], v, sizeof v);
        ck_assert_uint_lt(n + k + 64, cap);
        memcpy(s + n, v, k);
        n += k;
        (*nframes)++;
        switch (i % 6) {
        case 0: /* garbage with lone magic bytes and a false "OU" */
            memcpy(s + n, "\x00\x4F\x4F\x55\x4F\x01\x02\x4F", 8);
            n += 8;
            break;
        case 1: /* a copy of the frame with a corrupted CRC */
            memcpy(s + n, v, k);
            s[n + k - 1] ^= 0x40;
            n += k;
            break;
        case 2: /* a corrupted header (bad hcheck) */
            memcpy(s + n, v, 12);
            s[n + 7] ^= 0x01;
            n += 12;
            break;
        case 3: { /* an intact frame of unknown type, then random-ish bytes */
            uint8_t u[32];
            int m = otaup_frame_encode(0x7E, 0, 99, pat(3), 4, u, sizeof u);
            memcpy(s + n, u, (size_t)m);
            n += (size_t)m;
            memcpy(s + n, pat(0x99), 5);
            n += 5;
            break;
        }
        default:
            break;
        }
    }
    /* a frame hidden inside a frame whose CRC is bad: the inner one survives */
    {
        uint8_t inner[64], outer[128];
        int ki = otaup_frame_encode(OTAUP_MSG_PING, 0, 500, pat(1), 4, inner, sizeof inner);
        int ko = otaup_frame_encode(OTAUP_MSG_BLOB, 0, 501, inner, (size_t)ki, outer, sizeof outer);
        outer[ko - 2] ^= 1;
        memcpy(s + n, outer, (size_t)ko);
        n += (size_t)ko;
        (*nframes)++; /* the inner PING */
    }
    /* a header claiming a 40000-byte payload (oversize for small receivers) */
    {
        uint8_t h[16];
        memcpy(h, "\x4F\x55\x01\x29\x00\x00\x40\x9C\x01\x00\x00\x00", 12);
        h[5] = otaup_crc8(otaup_crc8(0, h, 5), h + 6, 6);
        memcpy(s + n, h, 12);
        n += 12;
    }
    /* a final valid frame and trailing garbage */
    k = read_file("0b-ack", v, sizeof v);
    memcpy(s + n, v, k);
    n += k;
    (*nframes)++;
    memcpy(s + n, "\x11\x22\x4F", 3);
    n += 3;
    return n;
}

static struct evlog g_want, g_got;
static uint8_t g_stream[1 << 16];

START_TEST(test_stream_every_split)
{
    otaup_decoder_stats st;
    size_t nframes, one = 1, cut, len = build_mixed_stream(g_stream, sizeof g_stream, &nframes);
    uint32_t maxf = (uint32_t)_i; /* loop test: 1024 and 65536 */
    run_stream(&g_want, g_stream, len, &len, 1, maxf, &st);
    /* a 65536-byte receiver waits for the 40000-byte payload: the last frame is swallowed */
    ck_assert_uint_eq(st.frames, maxf == 65536u ? nframes - 1u : nframes);
    ck_assert_uint_gt(st.errors, 10);
    ck_assert_uint_gt(st.garbage_bytes, 20);
    run_stream(&g_got, g_stream, len, &one, 1, maxf, NULL);
    ck_assert_uint_eq(g_got.n, g_want.n);
    ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
    /* every split point for the small receiver; every 5th for the large one */
    for (cut = 1; cut < len; cut += (maxf == 1024u ? 1u : 5u)) {
        size_t cuts[2];
        cuts[0] = cut;
        cuts[1] = len - cut;
        run_stream(&g_got, g_stream, len, cuts, 2, maxf, NULL);
        ck_assert_msg(g_got.n == g_want.n && memcmp(g_got.b, g_want.b, g_want.n) == 0,
                      "split at %u of %u differs", (unsigned)cut, (unsigned)len);
    }
    {
        static const size_t odd[] = { 7, 1, 13, 2, 31, 64, 3, 5 };
        run_stream(&g_got, g_stream, len, odd, 8, maxf, NULL);
        ck_assert_uint_eq(g_got.n, g_want.n);
        ck_assert_mem_eq(g_got.b, g_want.b, g_want.n);
    }
}
END_TEST

/* The exact sequence of events on a small crafted stream. */
START_TEST(test_stream_events)
{
    static uint8_t s[512], buf[128];
    uint8_t f[64], inner[64];
    otaup_decoder d;
    otaup_frame fr;
    size_t n = 0, off = 0, used;
    int k = (int)good_frame(f, sizeof f), ki;
    ck_assert_int_eq(otaup_decoder_init(&d, buf, sizeof buf, 128), 0);
    memcpy(s + n, "abc", 3); n += 3;              /* 3 bytes of garbage */
    memcpy(s + n, f, (size_t)k); n += (size_t)k;  /* frame */
    memcpy(s + n, f, (size_t)k); s[n + 20] ^= 1; n += (size_t)k; /* bad CRC */
    ki = otaup_frame_encode(OTAUP_MSG_PING, 0, 77, pat(9), 4, inner, sizeof inner);
    memcpy(s + n, inner, (size_t)ki); n += (size_t)ki;
#define NEXT(expect)                                                              \
    do {                                                                          \
        int ev_ = otaup_decoder_feed(&d, s + off, n - off, &used, &fr);           \
        off += used;                                                              \
        ck_assert_int_eq(ev_, (expect));                                          \
    } while (0)
    NEXT(OTAUP_E_FRAME_GARBAGE);
    ck_assert_uint_eq(d.skipped, 3);
    ck_assert_uint_eq(off, 3);
    NEXT(OTAUP_DEC_FRAME);
    ck_assert_ptr_eq(fr.payload, s + 3 + 12); /* whole frame in the input: not copied */
    ck_assert_uint_eq(fr.seq, 42);
    NEXT(OTAUP_E_FRAME_CRC);
    NEXT(OTAUP_E_FRAME_GARBAGE);
    ck_assert_uint_eq(d.skipped, (unsigned)k - 1);
    NEXT(OTAUP_DEC_FRAME);
    ck_assert_uint_eq(fr.seq, 77);
    NEXT(OTAUP_DEC_NEED_INPUT);
    ck_assert_uint_eq(off, n);
    ck_assert_uint_eq(d.stats.frames, 2);
    ck_assert_uint_eq(d.stats.errors, 1);
    ck_assert_uint_eq(d.stats.garbage_bytes, 3u + (unsigned)k - 1u);
    /* a frame split over two feeds is delivered from the decoder's buffer */
    off = 0;
    memcpy(s, f, (size_t)k);
    ck_assert_int_eq(otaup_decoder_feed(&d, s, 10, &used, &fr), OTAUP_DEC_NEED_INPUT);
    ck_assert_uint_eq(used, 10);
    ck_assert_int_eq(otaup_decoder_feed(&d, s + 10, (size_t)k - 10, &used, &fr), OTAUP_DEC_FRAME);
    ck_assert_ptr_eq(fr.payload, buf + 12);
    ck_assert_mem_eq(fr.payload, f + 12, fr.payload_len);
    ck_assert_int_eq(otaup_decoder_feed(&d, NULL, 0, &used, &fr), OTAUP_DEC_NEED_INPUT);
    ck_assert_uint_eq(d.have, 0);
    /* reset drops a partial frame */
    ck_assert_int_eq(otaup_decoder_feed(&d, s, 10, &used, &fr), OTAUP_DEC_NEED_INPUT);
    otaup_decoder_reset(&d);
    ck_assert_int_eq(otaup_decoder_feed(&d, s, (size_t)k, &used, &fr), OTAUP_DEC_FRAME);
    /* argument checks */
    ck_assert_int_eq(otaup_decoder_init(&d, buf, 63, 64), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_decoder_init(&d, buf, 128, 63), OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_decoder_feed(NULL, s, 1, &used, &fr), OTAUP_E_INVAL);
#undef NEXT
}
END_TEST

/* ---- fragmentation ---------------------------------------------------------------------------- */

static otaup_frame mkframe(uint8_t type, uint8_t flags, uint32_t seq, const uint8_t *p, uint32_t n)
{
    otaup_frame f;
    memset(&f, 0, sizeof f);
    f.version = 1;
    f.type = type;
    f.flags = flags;
    f.seq = seq;
    f.payload = p;
    f.payload_len = n;
    f.frame_len = n + 16;
    return f;
}

START_TEST(test_reassembly)
{
    uint8_t buf[16];
    otaup_reasm r;
    const uint8_t *msg;
    size_t ml;
    otaup_frame f;
    ck_assert_int_eq(otaup_reasm_init(&r, buf, sizeof buf), 0);
    /* unfragmented: passed through without a copy */
    f = mkframe(OTAUP_MSG_PING, 0, 1, pat(0), 4);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 1);
    ck_assert_ptr_eq(msg, pat(0));
    /* three fragments */
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 2, pat(0), 5);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE | OTAUP_FLAG_CONT, 3, pat(5), 5);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_CONT, 4, pat(10), 6);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 1);
    ck_assert_ptr_eq(msg, buf);
    ck_assert_uint_eq(ml, 16);
    ck_assert_mem_eq(msg, pat(0), 16);
    /* CONT without a message in progress */
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_CONT, 5, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    /* a new message while one is in progress */
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 6, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_PING, 0, 7, pat(0), 4);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 1); /* passed again: accepted */
    /* another type, a seq gap */
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 8, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_START, OTAUP_FLAG_CONT, 9, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 10, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_CONT, 12, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    /* too big for the buffer: at the first fragment and later */
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 13, pat(0), 17);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_MORE, 14, pat(0), 16);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), 0);
    f = mkframe(OTAUP_MSG_NOTIFY, OTAUP_FLAG_CONT, 15, pat(0), 1);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    /* MORE on a type that cannot be fragmented; BATCH is not for the reassembler */
    f = mkframe(OTAUP_MSG_PING, OTAUP_FLAG_MORE, 16, pat(0), 4);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_FRAGMENT);
    f = mkframe(OTAUP_MSG_BATCH, 0, 17, pat(0), 4);
    ck_assert_int_eq(otaup_reasm_add(&r, &f, &msg, &ml), OTAUP_E_INVAL);
}
END_TEST

START_TEST(test_frag_next)
{
    uint8_t out[256];
    size_t off = 0;
    int k;
    /* an empty message gives one empty frame */
    k = otaup_frag_next(OTAUP_MSG_INFO, 0, 1, NULL, 0, &off, 64, out, sizeof out);
    ck_assert_int_eq(k, 16);
    ck_assert_uint_eq(out[4], 0);
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_INFO, 0, 2, NULL, 0, &off, 64, out, sizeof out), 0);
    /* ... which fits a buffer of exactly its 16 bytes, as otaup_frame_encode
     * writes it; one byte less does not, nor does a non-empty message */
    off = 0;
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_INFO, 0, 1, NULL, 0, &off, 64, out, 16), 16);
    off = 0;
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_INFO, 0, 1, NULL, 0, &off, 64, out, 15), OTAUP_E_BUFFER);
    off = 0;
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_INFO, 0, 1, pat(0), 1, &off, 64, out, 16), OTAUP_E_BUFFER);
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_INFO, 0, 1, pat(0), 1, &off, 64, out, 17), 17);
    /* exactly one full frame */
    off = 0;
    k = otaup_frag_next(OTAUP_MSG_START, OTAUP_FLAG_ACKREQ, 1, pat(0), 48, &off, 64, out, sizeof out);
    ck_assert_int_eq(k, 64);
    ck_assert_uint_eq(out[4], OTAUP_FLAG_ACKREQ);
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_START, 0, 2, pat(0), 48, &off, 64, out, sizeof out), 0);
    /* one byte more: two frames */
    off = 0;
    k = otaup_frag_next(OTAUP_MSG_START, 0, 1, pat(0), 49, &off, 64, out, sizeof out);
    ck_assert_int_eq(k, 64);
    ck_assert_uint_eq(out[4], OTAUP_FLAG_MORE);
    k = otaup_frag_next(OTAUP_MSG_START, 0, 2, pat(0), 49, &off, 64, out, sizeof out);
    ck_assert_int_eq(k, 17);
    ck_assert_uint_eq(out[4], OTAUP_FLAG_CONT);
    /* a type that cannot be fragmented */
    off = 0;
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_BLOB, 0, 1, pat(0), 49, &off, 64, out, sizeof out),
                     OTAUP_E_FRAGMENT);
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_BLOB, 0, 1, pat(0), 48, &off, 64, out, sizeof out), 64);
    /* the sealer refuses what a receiver would refuse */
    ck_assert_int_eq(otaup_frame_seal(out, sizeof out, OTAUP_MSG_PING, OTAUP_FLAG_MORE, 1, 4), OTAUP_E_FRAME_FLAGS);
    ck_assert_int_eq(otaup_frame_seal(out, sizeof out, OTAUP_MSG_PING, 0x08, 1, 4), OTAUP_E_FRAME_FLAGS);
    ck_assert_int_eq(otaup_frame_seal(out, sizeof out, OTAUP_MSG_NOTIFY, OTAUP_FLAG_CONT, 1, 4), 20);
    ck_assert_int_eq(otaup_frame_seal(out, 19, OTAUP_MSG_PING, 0, 1, 4), OTAUP_E_BUFFER);
    ck_assert_int_eq(otaup_frame_seal(out, 70000, OTAUP_MSG_BLOB, 0, 1, 65521), OTAUP_E_FRAME_OVERSIZE);
    /* bad extra flags, bad max_frame */
    off = 0;
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_START, OTAUP_FLAG_MORE, 1, pat(0), 4, &off, 64, out, sizeof out),
                     OTAUP_E_INVAL);
    ck_assert_int_eq(otaup_frag_next(OTAUP_MSG_START, 0, 1, pat(0), 4, &off, 32, out, sizeof out),
                     OTAUP_E_INVAL);
}
END_TEST

/* A record stream cut into BATCH frames at every byte goes through one record parser. */
START_TEST(test_batch_stream_split)
{
    uint8_t st[256], frames[1024];
    size_t sl = batch_stream(st, sizeof st), cut;
    for (cut = 1; cut < sl; cut++) {
        otaup_recparser rp;
        size_t fl = 0, pos = 0;
        int k, nrec = 0, flags[2];
        /* two BATCH frames, cut at `cut` */
        size_t lens[2];
        lens[0] = cut;
        lens[1] = sl - cut;
        otaup_recparser_init(&rp);
        for (int i = 0; i < 2; i++) {
            size_t consumed_total = 0;
            uint8_t fflags = 0;
            otaup_frame fr;
            /* the sender knows whether a record is cut: parse to find out */
            {
                otaup_recparser probe = rp;
                size_t used;
                const uint8_t *q = st + pos;
                size_t left = lens[i];
                while (left > 0) {
                    int ev = otaup_recparser_feed(&probe, q, left, &used);
                    ck_assert_int_ge(ev, 0);
                    q += used;
                    left -= used;
                    if (ev == OTAUP_RECP_NEED_INPUT) {
                        break;
                    }
                }
                if (!otaup_recparser_idle(&probe) && !(probe.pending_done)) {
                    fflags |= OTAUP_FLAG_MORE;
                }
                if (!otaup_recparser_idle(&rp)) {
                    fflags |= OTAUP_FLAG_CONT;
                }
            }
            flags[i] = fflags;
            k = otaup_frame_encode(OTAUP_MSG_BATCH, fflags, (uint32_t)i, st + pos, lens[i], frames + fl,
                                   sizeof frames - fl);
            ck_assert_int_gt(k, 0);
            ck_assert_int_eq(otaup_frame_decode(frames + fl, (size_t)k, 256, &fr), 0);
            fl += (size_t)k;
            ck_assert_int_eq(otaup_batch_check(fr.flags, otaup_recparser_idle(&rp), 0), 0);
            while (consumed_total < fr.payload_len || rp.pending_done) {
                size_t used;
                int ev = otaup_recparser_feed(&rp, fr.payload + consumed_total,
                                              fr.payload_len - consumed_total, &used);
                ck_assert_int_ge(ev, 0);
                consumed_total += used;
                if (ev == OTAUP_RECP_DONE) {
                    nrec++;
                }
                if (ev == OTAUP_RECP_NEED_INPUT) {
                    break;
                }
            }
            ck_assert_int_eq(otaup_batch_check(fr.flags, otaup_recparser_idle(&rp), 1), 0);
            /* the wrong flags are caught */
            ck_assert_int_eq(otaup_batch_check((uint8_t)(fr.flags ^ OTAUP_FLAG_MORE),
                                               otaup_recparser_idle(&rp), 1),
                             OTAUP_E_FRAGMENT);
            pos += lens[i];
        }
        ck_assert_int_eq(nrec, 4);
        ck_assert_int_eq(flags[1] & OTAUP_FLAG_MORE, 0);
        ck_assert_int_eq(!!(flags[0] & OTAUP_FLAG_MORE), !!(flags[1] & OTAUP_FLAG_CONT));
    }
}
END_TEST

/* The shortest body of every operation record travels as its own message:
 * the frame decoder's length bounds (protocol.md §3) must admit what the
 * record codec accepts (§3.12), e.g. a DEFERRED WRITE of addr 0, len 1 is
 * 3 bytes. Each frame is the encoder's, so "encoders never produce what
 * decoders refuse" holds for frames too. */
START_TEST(test_shortest_records)
{
    static const struct {
        uint8_t type;
        uint8_t body[8];
        uint8_t len;
    } recs[] = {
        { OTAUP_MSG_ERASE, { 0, 0 }, 2 },
        { OTAUP_MSG_WRITE, { 0, 1, OTAUP_ENC_DEFERRED }, 3 },
        { OTAUP_MSG_WRITE, { 0, 1, OTAUP_ENC_INLINE, 0xAB }, 4 },
        { OTAUP_MSG_COPY, { 0, 0, 1 }, 3 },
        { OTAUP_MSG_DIFF, { 0, 0, 1, OTAUP_ENC_DEFERRED }, 4 },
        { OTAUP_MSG_DIFF, { 0, 0, 1, OTAUP_ENC_INLINE, 0x01 }, 5 },
        { OTAUP_MSG_FILL, { 0, 1, 0xFF }, 3 },
        { OTAUP_MSG_DATA, { 0 }, 1 },
        { OTAUP_MSG_STEP, { 0, 0, 1, 0 }, 4 },
        { OTAUP_MSG_END, { 0 }, 1 },
        { OTAUP_MSG_BLOB, { 0 }, 0 },
        { OTAUP_MSG_SYNC, { 0 }, 1 },
    };
    size_t i;
    for (i = 0; i < sizeof recs / sizeof recs[0]; i++) {
        otaup_msg m, d;
        otaup_frame fr;
        uint8_t f[64];
        int n;
        memset(&m, 0, sizeof m);
        m.type = recs[i].type;
        ck_assert_int_eq(otaup_msg_decode(recs[i].type, recs[i].body, recs[i].len, &m), 0);
        n = otaup_msg_encode_frame(&m, 0, 7, 64, f, sizeof f);
        ck_assert_int_eq(n, (int)recs[i].len + 16);
        ck_assert_msg(otaup_frame_decode(f, (size_t)n, 64, &fr) == 0, "type 0x%02x, %u-byte body: frame refused",
                      recs[i].type, recs[i].len);
        ck_assert_int_eq(stream_first(f, (size_t)n, 64, &fr), OTAUP_DEC_FRAME);
        ck_assert_int_eq(otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &d), 0);
    }
}
END_TEST

START_TEST(test_type_table)
{
    int t, known = 0;
    for (t = 0; t < 256; t++) {
        if (otaup_msg_type_known((uint8_t)t)) {
            known++;
            ck_assert_ptr_nonnull(otaup_msg_type_name((uint8_t)t));
        } else {
            ck_assert_ptr_null(otaup_msg_type_name((uint8_t)t));
            ck_assert_int_eq(otaup_msg_type_fragmentable((uint8_t)t), 0);
        }
    }
    ck_assert_int_eq(known, 17 + 11 + 1);
    ck_assert_int_eq(otaup_msg_type_sequenced(OTAUP_MSG_ACK), 0);
    ck_assert_int_eq(otaup_msg_type_sequenced(OTAUP_MSG_NACK), 0);
    ck_assert_int_eq(otaup_msg_type_sequenced(OTAUP_MSG_PROGRESS), 0);
    ck_assert_int_eq(otaup_msg_type_sequenced(OTAUP_MSG_PING), 1);
    ck_assert_int_eq(otaup_msg_type_fragmentable(OTAUP_MSG_BATCH), 1);
    ck_assert_int_eq(otaup_msg_type_fragmentable(OTAUP_MSG_WRITE), 0);
    for (t = 0x2B; t <= 0x2E; t++) {
        ck_assert_int_eq(otaup_msg_type_known((uint8_t)t), 0);
    }
    ck_assert_str_eq(otaup_msg_type_name(OTAUP_MSG_RESTORE_DATA), "RESTORE_DATA");
    /* serial number arithmetic */
    ck_assert_int_eq(otaup_seq_cmp(5, 5), 0);
    ck_assert_int_gt(otaup_seq_cmp(6, 5), 0);
    ck_assert_int_lt(otaup_seq_cmp(5, 6), 0);
    ck_assert_int_gt(otaup_seq_cmp(0, 0xFFFFFFFFu), 0);
    ck_assert_int_lt(otaup_seq_cmp(0xFFFFFFFFu, 0), 0);
    ck_assert_int_gt(otaup_seq_cmp(0x7FFFFFFFu, 0), 0);
    ck_assert_int_lt(otaup_seq_cmp(0x80000000u, 0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    init_pat();
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_check_values);
    tcase_add_test(tc, test_golden_single);
    tcase_add_test(tc, test_golden_fields);
    tcase_add_test(tc, test_golden_fragmented_info);
    tcase_add_test(tc, test_golden_batch);
    tcase_add_test(tc, test_round_trip_all);
    tcase_add_test(tc, test_field_errors);
    tcase_add_test(tc, test_info_tlv_rules);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_bad_frames);
    tcase_add_test(tc, test_shortest_records);
    tcase_add_loop_test(tc, test_stream_every_split, 1024, 1025);
    tcase_add_loop_test(tc, test_stream_every_split, 65536, 65537);
    tcase_add_test(tc, test_stream_events);
    tcase_add_test(tc, test_reassembly);
    tcase_add_test(tc, test_frag_next);
    tcase_add_test(tc, test_batch_stream_split);
    tcase_add_test(tc, test_type_table);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
