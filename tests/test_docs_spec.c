/*
 * The specification pages against the code: docs/protocol.md,
 * docs/delta-format.md and docs/api.md are read at run time (from
 * $OTAUP_SRC_DIR) and their tables and examples checked with the real
 * codecs, so that a page and the code cannot drift apart unnoticed.
 *
 *  - every hex example of the pages (a backquoted run of at least four
 *    "XX" bytes) is decoded by the frame, message or record codec and must
 *    decode to the description this file gives for it; an example the file
 *    does not know, or a description whose example left the pages, fails;
 *  - protocol.md's message type table: name, sequenced, fragmentable and
 *    the payload length bounds, probed with the frame decoder at each
 *    bound; every known type is in it;
 *  - protocol.md's INFO tags and capability bits against the header;
 *  - delta-format.md's header table: every offset and size read back from
 *    a header encoded by otaup_delta_header_encode(); the RAM formula;
 *  - delta-format.md's rule on where a body starts: SYNC{0} when read from
 *    the start (otaup_delta_check), a later SYNC only after a seek;
 *  - the error code of each payload rule protocol.md section 3 names;
 *  - api.md's error table and error.h's comments against otaup_errname()
 *    and otaup_strerror(), both ways; its header table names every
 *    public header; every function api.md, delta-format.md, design.md
 *    and README.md name as `otaup_x()` is declared in a public header;
 *  - every flag, enum value, limit and size of the headers that the pages
 *    give (MORE = 0x01, phases, consent decisions, section tags, ...) is
 *    written there with the header's value;
 *  - the CRC check values the protocol page states.
 */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "otaup/otaup.h"

/* ---- helpers -------------------------------------------------------------------- */

static char *load_doc(const char *rel)
{
    const char *dir = getenv("OTAUP_SRC_DIR");
    char path[1024];
    FILE *f;
    long n;
    char *buf;
    ck_assert_msg(dir != NULL, "OTAUP_SRC_DIR not set (run through ctest)");
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1u);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The part of `doc` from the line that starts with `from` up to the next
 * line that starts with `to` (or the end), as a new string. */
static char *doc_section(const char *doc, const char *from, const char *to)
{
    const char *a = doc, *b;
    char *s;
    size_t flen = strlen(from);
    for (;;) {
        if (strncmp(a, from, flen) == 0) {
            break;
        }
        a = strchr(a, '\n');
        ck_assert_msg(a != NULL, "section '%s' not found", from);
        a++;
    }
    b = strchr(a, '\n');
    while (b != NULL && strncmp(b + 1, to, strlen(to)) != 0) {
        b = strchr(b + 1, '\n');
    }
    if (b == NULL) {
        b = a + strlen(a);
    }
    s = malloc((size_t)(b - a) + 1u);
    ck_assert_ptr_nonnull(s);
    memcpy(s, a, (size_t)(b - a));
    s[b - a] = '\0';
    return s;
}

/* Next line of *p (NUL-terminated copy in line[]), or 0 at the end. */
static int next_line(const char **p, char *line, size_t cap)
{
    const char *e;
    size_t n;
    if (**p == '\0') {
        return 0;
    }
    e = strchr(*p, '\n');
    n = e != NULL ? (size_t)(e - *p) : strlen(*p);
    if (n >= cap) {
        n = cap - 1u;
    }
    memcpy(line, *p, n);
    line[n] = '\0';
    *p = e != NULL ? e + 1 : *p + strlen(*p);
    return 1;
}

/* Split a table row "| a | b | c |" into trimmed cells. Returns the count. */
static int row_cells(char *line, char **cell, int max)
{
    int n = 0;
    char *p = line, *bar;
    if (*p != '|') {
        return 0;
    }
    p++;
    while (n < max && (bar = strchr(p, '|')) != NULL) {
        char *s = p, *e = bar;
        while (*s == ' ') {
            s++;
        }
        while (e > s && e[-1] == ' ') {
            e--;
        }
        *e = '\0';
        cell[n++] = s;
        p = bar + 1;
    }
    return n;
}

static int is_hex2(const char *s)
{
    const char *d = "0123456789ABCDEF";
    return s[0] != '\0' && s[1] != '\0' && strchr(d, s[0]) != NULL && strchr(d, s[1]) != NULL;
}

/* ---- hex examples ------------------------------------------------------------------ */

struct example {
    const char *hex;  /* as the page writes it */
    const char *desc; /* what the codecs decode it to */
    int seen;
};

static struct example examples[] = {
    /* delta-format.md, "Compact records" */
    { "30 0A 80 01 14 02 43 10 FF 0F AA BB",
      "PIECE seek=64 dlen=20 llen=2 d[3]=10 d[4]=ff lit=aabb", 0 },
    /* protocol.md, "Examples" */
    { "4F 55 01 09 04 2A 04 00 07 00 00 00 78 56 34 12 33 76 99 01",
      "PING flags=04 seq=7: nonce=0x12345678", 0 },
    { "4F 55 01 0B 00 1B 10 00 03 00 00 00 07 00 00 00 00 00 00 00 01 00 00 00 78 56 34 12 DC 83 42 27",
      "ACK flags=00 seq=3: seq=7 status=0 window=1 echo=0x12345678", 0 },
    { "4F 55 01 0C 00 17 0C 00 03 00 00 00 09 00 00 00 E1 FF FF FF 08 00 00 00 22 EA 00 1E",
      "NACK flags=00 seq=3: seq=9 error=-31 expected=8", 0 },
    { "4F 55 01 22 00 35 07 00 08 00 00 00 80 80 04 FF 3F 80 02 5E A3 2E 1C",
      "COPY flags=00 seq=8: COPY addr=0x10000 src=0xf000 len=0x100", 0 },
    { "4F 55 01 2F 00 7A 17 00 09 00 00 00 20 05 80 80 04 80 20 24 06 80 80 04 80 01 FF 24 06 80 81 "
      "04 80 01 00 34 78 35 F5",
      "BATCH flags=00 seq=9: ERASE addr=0x10000 len=0x1000; FILL addr=0x10000 len=0x80 value=0xff; "
      "FILL addr=0x10080 len=0x80 value=0x00", 0 },
};

#if defined(__GNUC__)
static void cat(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#endif
static void cat(char *out, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
}

static void describe_record(const otaup_record *r, char *out, size_t cap)
{
    const char *name = r->type == OTAUP_REC_PIECE   ? "PIECE"
                       : r->type == OTAUP_REC_CFILL ? "CFILL"
                                                    : otaup_msg_type_name(r->type);
    cat(out, cap, "%s", name != NULL ? name : "?");
    switch (r->type) {
    case OTAUP_REC_ERASE:
        cat(out, cap, " addr=0x%x len=0x%x", (unsigned)r->addr, (unsigned)r->len);
        break;
    case OTAUP_REC_FILL:
        cat(out, cap, " addr=0x%x len=0x%x value=0x%02x", (unsigned)r->addr, (unsigned)r->len, r->value);
        break;
    case OTAUP_REC_COPY:
        cat(out, cap, " addr=0x%x src=0x%x len=0x%x", (unsigned)r->addr, (unsigned)r->src, (unsigned)r->len);
        break;
    case OTAUP_REC_PIECE: {
        uint8_t d[256];
        otaup_sparse sp;
        uint32_t i;
        int k;
        ck_assert_uint_le(r->len, sizeof d);
        memset(d, 0, sizeof d);
        otaup_sparse_init(&sp, r->len);
        k = otaup_sparse_feed(&sp, r->data, r->data_len - r->lit, d);
        ck_assert_int_eq(k, (int)(r->data_len - r->lit)); /* the sparse part ends where llen begins */
        ck_assert(otaup_sparse_done(&sp));
        cat(out, cap, " seek=%d dlen=%u llen=%u", (int)(int32_t)r->src, (unsigned)r->len, (unsigned)r->lit);
        for (i = 0; i < r->len; i++) {
            if (d[i] != 0) {
                cat(out, cap, " d[%u]=%02x", (unsigned)i, d[i]);
            }
        }
        cat(out, cap, " lit=");
        for (i = 0; i < r->lit; i++) {
            cat(out, cap, "%02x", r->data[r->data_len - r->lit + i]);
        }
        break;
    }
    default:
        cat(out, cap, " (no description)");
        break;
    }
}

static void describe_frame(const uint8_t *b, size_t n, char *out, size_t cap)
{
    otaup_frame fr;
    otaup_msg m;
    int rc = otaup_frame_decode(b, n, OTAUP_FRAME_MAX, &fr);
    ck_assert_msg(rc == 0, "frame example refused: %s", otaup_errname(rc));
    cat(out, cap, "%s flags=%02x seq=%u:", otaup_msg_type_name(fr.type), fr.flags, (unsigned)fr.seq);
    if (fr.type == OTAUP_MSG_BATCH) {
        size_t pos = 0;
        otaup_record r;
        const char *sep = " ";
        while ((rc = otaup_batch_next(fr.payload, fr.payload_len, &pos, &r)) == 1) {
            cat(out, cap, "%s", sep);
            describe_record(&r, out, cap);
            sep = "; ";
        }
        ck_assert_int_eq(rc, 0);
        return;
    }
    rc = otaup_msg_decode(fr.type, fr.payload, fr.payload_len, &m);
    ck_assert_msg(rc == 0, "message example refused: %s", otaup_errname(rc));
    switch (fr.type) {
    case OTAUP_MSG_PING:
        cat(out, cap, " nonce=0x%08x", (unsigned)m.u.ping.nonce);
        break;
    case OTAUP_MSG_ACK:
        cat(out, cap, " seq=%u status=%d window=%u echo=0x%08x", (unsigned)m.u.ack.seq,
            (int)m.u.ack.status, (unsigned)m.u.ack.window, (unsigned)m.u.ack.echo);
        break;
    case OTAUP_MSG_NACK:
        cat(out, cap, " seq=%u error=%d expected=%u", (unsigned)m.u.nack.seq, (int)m.u.nack.error,
            (unsigned)m.u.nack.expected);
        break;
    default:
        if (fr.type >= OTAUP_MSG_ERASE && fr.type <= OTAUP_MSG_SYNC) {
            cat(out, cap, " ");
            describe_record(&m.u.rec, out, cap);
        } else {
            cat(out, cap, " (no description)");
        }
        break;
    }
}

/* Decode the hex text of an example; the description of what it holds. */
static void describe_hex(const char *hex, char *out, size_t cap)
{
    uint8_t b[512];
    size_t n = 0;
    const char *p = hex;
    out[0] = '\0';
    while (*p != '\0') {
        unsigned v;
        ck_assert(is_hex2(p));
        ck_assert_int_eq(sscanf(p, "%2x", &v), 1);
        ck_assert_uint_lt(n, sizeof b);
        b[n++] = (uint8_t)v;
        p += 2;
        if (*p == ' ') {
            p++;
        }
    }
    if (n >= 2 && b[0] == OTAUP_FRAME_MAGIC0 && b[1] == OTAUP_FRAME_MAGIC1) {
        describe_frame(b, n, out, cap);
    } else {
        otaup_record r;
        int k = otaup_record_decode(b, n, &r);
        ck_assert_msg(k == (int)n, "record example: %d of %u bytes", k, (unsigned)n);
        describe_record(&r, out, cap);
    }
}

/* Number of "XX" bytes if s[0..n) is nothing but hex bytes separated by
 * single spaces, else 0. */
static int hex_run(const char *s, size_t n)
{
    size_t i = 0;
    int bytes = 0;
    while (i < n) {
        if (i + 2 > n || !is_hex2(s + i) || (i + 2 < n && s[i + 2] != ' ')) {
            return 0;
        }
        bytes++;
        i += 3;
    }
    return bytes;
}

/*
 * The examples of a page: every line that is nothing but one backquoted
 * hex run is decoded and must be one of examples[]. Hex runs quoted inside
 * the prose (parts of an example, explained) must each appear in one of
 * the page's examples.
 */
static void check_examples_in(const char *rel)
{
    char *doc = load_doc(rel);
    char *flat = malloc(strlen(doc) + 1u);
    char *ex[32];
    int nex = 0, fence = 0, k;
    const char *p = doc;
    char line[4096], *q, *f;
    ck_assert_ptr_nonnull(flat);
    /* the standalone examples; the prose without fenced blocks, as one line */
    f = flat;
    while (next_line(&p, line, sizeof line)) {
        size_t n = strlen(line);
        if (strncmp(line, "```", 3) == 0) {
            fence = !fence;
            continue;
        }
        if (fence) {
            continue;
        }
        if (n > 2 && line[0] == '`' && line[n - 1] == '`' && hex_run(line + 1, n - 2) >= 4) {
            char got[1024];
            size_t i;
            int known = 0;
            line[n - 1] = '\0';
            ck_assert_int_lt(nex, 32);
            ex[nex++] = strdup(line + 1);
            describe_hex(line + 1, got, sizeof got);
            for (i = 0; i < sizeof examples / sizeof examples[0]; i++) {
                if (strcmp(examples[i].hex, line + 1) == 0) {
                    ck_assert_str_eq(got, examples[i].desc);
                    examples[i].seen++;
                    known = 1;
                }
            }
            ck_assert_msg(known, "%s: example `%s` (%s) unknown to tests/test_docs_spec.c", rel, line + 1,
                          got);
            continue;
        }
        memcpy(f, line, n);
        f += n;
        *f++ = ' ';
    }
    *f = '\0';
    /* hex quoted in the prose: a part of an example */
    q = flat;
    while ((q = strchr(q, '`')) != NULL) {
        char *e = strchr(q + 1, '`');
        if (e == NULL) {
            break;
        }
        if (hex_run(q + 1, (size_t)(e - q - 1)) >= 2) {
            int found = 0;
            *e = '\0';
            for (k = 0; k < nex; k++) {
                found |= strstr(ex[k], q + 1) != NULL;
            }
            ck_assert_msg(found, "%s: `%s` is in no example of the page", rel, q + 1);
        }
        q = e + 1;
    }
    for (k = 0; k < nex; k++) {
        free(ex[k]);
    }
    free(flat);
    free(doc);
}

START_TEST(test_hex_examples)
{
    size_t i;
    for (i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        examples[i].seen = 0;
    }
    check_examples_in("docs/protocol.md");
    check_examples_in("docs/delta-format.md");
    check_examples_in("docs/api.md");
    for (i = 0; i < sizeof examples / sizeof examples[0]; i++) {
        ck_assert_msg(examples[i].seen == 1, "example `%s` found %d times in the pages", examples[i].hex,
                      examples[i].seen);
    }
}
END_TEST

/* ---- protocol.md, section 3: the error of each payload rule the page names ---------- */

#define INFO_REQ "01 01 61 02 01 62 03 01 63 04 08 00 00 00 00 00 00 00 00"

static const struct rule {
    const char *what;
    uint8_t type;
    const char *hex;
    int rc;
} rules[] = {
    { "HELLO", OTAUP_MSG_HELLO, "01 01 01 00 40 00 00 00 30 00 00 00 01 00 00 00 00 00 00 00", 0 },
    { "HELLO unknown caps", OTAUP_MSG_HELLO, "01 01 01 00 40 00 00 00 30 00 00 00 01 00 00 00 00 01 00 80", 0 },
    { "HELLO role 0", OTAUP_MSG_HELLO, "00 01 01 00 40 00 00 00 30 00 00 00 01 00 00 00 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "HELLO role 0, reserved", OTAUP_MSG_HELLO, "00 01 01 01 40 00 00 00 30 00 00 00 01 00 00 00 00 00 00 00",
      OTAUP_E_FRAME_FLAGS },
    { "HELLO max_msg 47", OTAUP_MSG_HELLO, "01 01 01 00 40 00 00 00 2F 00 00 00 01 00 00 00 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "HELLO window 0", OTAUP_MSG_HELLO, "01 01 01 00 40 00 00 00 30 00 00 00 00 00 00 00 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "INFO required items", OTAUP_MSG_INFO, INFO_REQ, 0 },
    { "INFO empty", OTAUP_MSG_INFO, "", OTAUP_E_MSG_FIELD },
    { "INFO without MODEL", OTAUP_MSG_INFO, "01 01 61 03 01 63 04 08 00 00 00 00 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "INFO tag 0", OTAUP_MSG_INFO, INFO_REQ " 00 00", OTAUP_E_MSG_FIELD },
    { "INFO unknown tag, twice", OTAUP_MSG_INFO, INFO_REQ " 13 01 FF 13 00", 0 },
    { "INFO item past the end", OTAUP_MSG_INFO, INFO_REQ " 0C 05 00 00 00 00", OTAUP_E_MSG_LENGTH },
    { "INFO CAPS of 3 bytes", OTAUP_MSG_INFO, INFO_REQ " 0C 03 00 00 00", OTAUP_E_MSG_FIELD },
    { "INFO CAPS twice", OTAUP_MSG_INFO, INFO_REQ " 0C 04 00 00 00 00 0C 04 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "INFO GEOMETRY count 0", OTAUP_MSG_INFO,
      INFO_REQ " 07 12 00 00 00 00 04 00 00 00 FF 01 00 00 00 00 00 10 00 00", OTAUP_E_MSG_FIELD },
    { "INFO WINDOW len 0", OTAUP_MSG_INFO, INFO_REQ " 08 08 00 10 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "INFO SCRATCH len 0", OTAUP_MSG_INFO, INFO_REQ " 0B 08 00 10 00 00 00 00 00 00", 0 },
    { "INFO REGION flag 0x02", OTAUP_MSG_INFO, INFO_REQ " 09 0B 01 02 00 00 00 00 10 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "INFO REGION no hash", OTAUP_MSG_INFO, INFO_REQ " 09 0B 01 01 00 00 00 00 10 00 00 00 00", 0 },
    { "INFO RESUME flag 0x02", OTAUP_MSG_INFO,
      INFO_REQ " 0F 0E 00 00 00 00 00 00 00 00 00 00 00 00 00 02", OTAUP_E_MSG_FIELD },
    { "INFO RESUME phase 7", OTAUP_MSG_INFO, INFO_REQ " 0F 0E 00 00 00 00 00 00 00 00 00 00 00 00 07 00",
      OTAUP_E_MSG_FIELD },
    { "INFO LIMITS reserved", OTAUP_MSG_INFO, INFO_REQ " 11 04 0F 01 01 00", OTAUP_E_FRAME_FLAGS },
    { "INFO LIMITS reserved, bits 8", OTAUP_MSG_INFO, INFO_REQ " 11 04 08 01 01 00", OTAUP_E_MSG_FIELD },
    { "NOTIFY kind 2", OTAUP_MSG_NOTIFY, "02 00 00 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "NOTIFY version of 33", OTAUP_MSG_NOTIFY,
      "00 21 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 41 "
      "41 00 00 00 00 00 00 00 00 00 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "NOTIFY text not UTF-8", OTAUP_MSG_NOTIFY, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 C0 80",
      OTAUP_E_MSG_FIELD },
    { "CONSENT byte after", OTAUP_MSG_CONSENT, "01 00 00 00 00 41", OTAUP_E_MSG_LENGTH },
    { "CONSENT decision 5", OTAUP_MSG_CONSENT, "05 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "CONSENT postpone, accept", OTAUP_MSG_CONSENT, "01 00 05 00 00", OTAUP_E_MSG_FIELD },
    { "CONSENT reserved", OTAUP_MSG_CONSENT, "01 01 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "START session 0", OTAUP_MSG_START, "00 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "START flag 0x02", OTAUP_MSG_START, "01 00 00 00 00 00 00 00 02 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "START reserved", OTAUP_MSG_START, "01 00 00 00 00 00 00 00 00 01 00 00", OTAUP_E_FRAME_FLAGS },
    { "COMMIT session 0", OTAUP_MSG_COMMIT, "00 00 00 00 00 00 00 00 01 00 00 00", OTAUP_E_MSG_FIELD },
    { "COMMIT action 4", OTAUP_MSG_COMMIT, "01 00 00 00 00 00 00 00 04 00 00 00", OTAUP_E_MSG_FIELD },
    { "ABORT session 0", OTAUP_MSG_ABORT, "00 00 00 00 00 00 00 00 F3 FF FF FF", 0 },
    { "ABORT reason 0", OTAUP_MSG_ABORT, "00 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "RESULT session 0, code 0", OTAUP_MSG_RESULT, "00 00 00 00 00 00 00 00 00 00 00 00 00 00", 0 },
    { "RESULT code 1", OTAUP_MSG_RESULT, "01 00 00 00 00 00 00 00 01 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "RESULT byte after", OTAUP_MSG_RESULT, "01 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
      OTAUP_E_MSG_LENGTH },
    { "PROGRESS phase 7", OTAUP_MSG_PROGRESS, "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 00 00 00",
      OTAUP_E_MSG_FIELD },
    { "ACK status 1", OTAUP_MSG_ACK, "07 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "ACK window 0", OTAUP_MSG_ACK, "07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00", 0 },
    { "ACK reserved", OTAUP_MSG_ACK, "07 00 00 00 00 00 00 00 00 00 01 00 00 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "NACK error 0", OTAUP_MSG_NACK, "07 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "BACKUP_REQ flag 0x02", OTAUP_MSG_BACKUP_REQ, "01 02 00 00 00 00 00 00 01 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "BACKUP_REQ max_chunk 0", OTAUP_MSG_BACKUP_REQ, "01 00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "BACKUP_DATA flag 0x08", OTAUP_MSG_BACKUP_DATA, "01 08 00 00 00 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "BACKUP_DATA hash alg 0", OTAUP_MSG_BACKUP_DATA, "01 02 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
    { "BACKUP_DATA hash cut", OTAUP_MSG_BACKUP_DATA, "01 02 00 00 00 00 00 00 01 00", OTAUP_E_MSG_LENGTH },
    { "RESTORE_DATA tag cut", OTAUP_MSG_RESTORE_DATA, "01 04 00 00 00 00 00 00 00", OTAUP_E_MSG_LENGTH },
    { "BACKUP_DATA past 2^32", OTAUP_MSG_BACKUP_DATA, "01 00 00 00 FF FF FF FF 00 00", OTAUP_E_MSG_FIELD },
    { "SIG_REQ block 63", OTAUP_MSG_SIG_REQ, "3F 00 00 00 00 00 00 00 01 00 00 00", OTAUP_E_MSG_FIELD },
    { "SIG_DATA flag 0x02", OTAUP_MSG_SIG_DATA, "02 00 00 00 00 00 00 00 01 00 00 00", OTAUP_E_FRAME_FLAGS },
    { "SIG_DATA LAST missing", OTAUP_MSG_SIG_DATA, "00 00 00 00 00 00 00 00 01 00 00 00 41", OTAUP_E_MSG_FIELD },
    { "ERASE byte after", OTAUP_MSG_ERASE, "00 00 00", OTAUP_E_MSG_LENGTH },
    { "ERASE varint not shortest", OTAUP_MSG_ERASE, "80 00 00", OTAUP_E_MSG_FIELD },
    { "ERASE past 2^32", OTAUP_MSG_ERASE, "FF FF FF FF 0F 02", OTAUP_E_MSG_FIELD },
    { "WRITE enc 2", OTAUP_MSG_WRITE, "00 01 02", OTAUP_E_MSG_FIELD },
    { "WRITE inline short", OTAUP_MSG_WRITE, "00 02 00 41", OTAUP_E_MSG_LENGTH },
    { "DATA flag 0x02", OTAUP_MSG_DATA, "02", OTAUP_E_MSG_FIELD },
    { "STEP flag 0x02", OTAUP_MSG_STEP, "00 00 00 02", OTAUP_E_MSG_FIELD },
    { "VERIFY alg 0", OTAUP_MSG_VERIFY, "00 00 00 00 00 00 00 00 00 00 00", OTAUP_E_MSG_FIELD },
};

START_TEST(test_payload_rules)
{
    size_t i;
    for (i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        uint8_t b[256];
        size_t n = 0;
        const char *p = rules[i].hex;
        otaup_msg m;
        int rc;
        while (*p != '\0') {
            unsigned v;
            ck_assert(is_hex2(p) && sscanf(p, "%2x", &v) == 1 && n < sizeof b);
            b[n++] = (uint8_t)v;
            p += 2;
            p += *p == ' ';
        }
        rc = otaup_msg_decode(rules[i].type, n != 0 ? b : NULL, n, &m);
        ck_assert_msg(rc == rules[i].rc, "%s: %s, the page says %s", rules[i].what,
                      rc != 0 ? otaup_errname(rc) : "accepted", rules[i].rc != 0 ? otaup_errname(rules[i].rc) : "accepted");
    }
}
END_TEST

/* ---- protocol.md: message types --------------------------------------------------- */

/* 0 if a frame of `type` (no flags) with a payload of `len` bytes is accepted. */
static int frame_len_rc(uint8_t type, uint32_t len)
{
    static uint8_t frame[OTAUP_FRAME_MAX];
    static const uint8_t zero[OTAUP_PAYLOAD_MAX];
    otaup_frame fr;
    int n = otaup_frame_encode(type, 0, 1, zero, len, frame, sizeof frame);
    ck_assert_int_eq(n, (int)(len + OTAUP_FRAME_OVERHEAD));
    return otaup_frame_decode(frame, (size_t)n, OTAUP_FRAME_MAX, &fr);
}

START_TEST(test_message_table)
{
    char *doc = load_doc("docs/protocol.md");
    char *sec = doc_section(doc, "## 3. Messages", "Types 0x2B");
    const char *p = sec;
    char line[512];
    int rows = 0, known = 0;
    unsigned t;
    while (next_line(&p, line, sizeof line)) {
        char *c[8];
        unsigned type;
        uint32_t lo, hi;
        if (row_cells(line, c, 8) != 6 || sscanf(c[0], "0x%2x", &type) != 1) {
            continue;
        }
        rows++;
        ck_assert_msg(otaup_msg_type_known((uint8_t)type), "0x%02X: unknown to the code", type);
        ck_assert_str_eq(c[1], otaup_msg_type_name((uint8_t)type));
        ck_assert_int_eq(otaup_msg_type_sequenced((uint8_t)type), strcmp(c[3], "yes") == 0);
        ck_assert_int_eq(otaup_msg_type_fragmentable((uint8_t)type), strcmp(c[4], "yes") == 0);
        if (strncmp(c[5], "\xE2\x89\xA5 ", 4) == 0) { /* "≥ n" */
            lo = (uint32_t)strtoul(c[5] + 4, NULL, 10);
            hi = OTAUP_PAYLOAD_MAX;
        } else if (strstr(c[5], " .. ") != NULL) {
            ck_assert_int_eq(sscanf(c[5], "%u .. %u", &lo, &hi), 2);
        } else {
            ck_assert_int_eq(sscanf(c[5], "%u", &lo), 1);
            hi = lo;
        }
        if (lo > 0) {
            ck_assert_int_eq(frame_len_rc((uint8_t)type, lo - 1u), OTAUP_E_MSG_LENGTH);
        }
        ck_assert_int_eq(frame_len_rc((uint8_t)type, lo), 0);
        ck_assert_int_eq(frame_len_rc((uint8_t)type, hi), 0);
        if (hi < OTAUP_PAYLOAD_MAX) {
            ck_assert_int_eq(frame_len_rc((uint8_t)type, hi + 1u), OTAUP_E_MSG_LENGTH);
        }
    }
    for (t = 0; t < 256; t++) {
        known += otaup_msg_type_known((uint8_t)t);
    }
    ck_assert_int_eq(rows, known);
    for (t = 0x2B; t <= 0x2E; t++) {
        ck_assert(!otaup_msg_type_known((uint8_t)t)); /* reserved */
    }
    free(sec);
    free(doc);
}
END_TEST

START_TEST(test_info_tags_and_caps)
{
    static const struct {
        unsigned tag;
        const char *name;
    } tags[] = {
        { OTAUP_INFO_TERMINAL_ID, "TERMINAL_ID" }, { OTAUP_INFO_MODEL, "MODEL" },
        { OTAUP_INFO_SW_VERSION, "SW_VERSION" },   { OTAUP_INFO_BUILD_TIME, "BUILD_TIME" },
        { OTAUP_INFO_IMAGE_HASH, "IMAGE_HASH" },   { OTAUP_INFO_IMAGE_SIZE, "IMAGE_SIZE" },
        { OTAUP_INFO_GEOMETRY, "GEOMETRY" },       { OTAUP_INFO_WINDOW, "WINDOW" },
        { OTAUP_INFO_REGION, "REGION" },           { OTAUP_INFO_LAYOUT, "LAYOUT" },
        { OTAUP_INFO_SCRATCH, "SCRATCH" },         { OTAUP_INFO_CAPS, "CAPS" },
        { OTAUP_INFO_MAX_FRAME, "MAX_FRAME" },     { OTAUP_INFO_MEMORY, "MEMORY" },
        { OTAUP_INFO_RESUME, "RESUME" },           { OTAUP_INFO_SEC_COUNTER, "SEC_COUNTER" },
        { OTAUP_INFO_LIMITS, "LIMITS" },           { OTAUP_INFO_IMAGE_SHA256, "IMAGE_SHA256" },
    };
    static const struct {
        uint32_t bit;
        const char *text;
    } caps[] = {
        { OTAUP_CAP_DEFLATE, "0x01 DEFLATE" }, { OTAUP_CAP_BATCH, "0x02 BATCH" },
        { OTAUP_CAP_SIGNED, "0x04 SIGNED" },   { OTAUP_CAP_BACKUP, "0x08 BACKUP" },
        { OTAUP_CAP_INPLACE, "0x10 INPLACE" }, { OTAUP_CAP_AB, "0x20 AB" },
        { OTAUP_CAP_RESUME, "0x40 RESUME" },   { OTAUP_CAP_SEALED, "0x80 SEALED" },
    };
    char *doc = load_doc("docs/protocol.md");
    char *sec = doc_section(doc, "### 3.2 INFO", "### 3.3");
    char *hello = doc_section(doc, "### 3.1 HELLO", "### 3.2");
    const char *p = sec;
    char line[2048], *q;
    size_t i, rows = 0;
    uint32_t all = 0;
    for (q = hello; *q != '\0'; q++) {
        if (*q == '\n') {
            *q = ' '; /* the list is wrapped text */
        }
    }
    while (next_line(&p, line, sizeof line)) {
        char *c[8];
        unsigned tag;
        if (row_cells(line, c, 8) < 4 || sscanf(c[0], "0x%2x", &tag) != 1) {
            continue;
        }
        ck_assert_uint_lt(rows, sizeof tags / sizeof tags[0]);
        ck_assert_uint_eq(tag, tags[rows].tag);
        ck_assert_str_eq(c[1], tags[rows].name);
        rows++;
    }
    ck_assert_uint_eq(rows, sizeof tags / sizeof tags[0]);
    ck_assert_msg(strstr(sec, "Tags 0x13..0x7F are reserved") != NULL, "first free INFO tag moved");
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        ck_assert_msg(strstr(hello, caps[i].text) != NULL, "capability '%s' not in protocol.md 3.1",
                      caps[i].text);
        all |= caps[i].bit;
    }
    ck_assert_uint_eq(all, 0xFFu);
    free(hello);
    free(sec);
    free(doc);
}
END_TEST

START_TEST(test_check_values)
{
    static const uint8_t s[] = "123456789";
    char *doc = load_doc("docs/protocol.md");
    ck_assert_uint_eq(otaup_crc8(0, s, 9), 0xF4u);
    ck_assert_uint_eq(crc32(0uL, s, 9), 0xCBF43926uL);
    ck_assert(strstr(doc, "`123456789` is 0xF4") != NULL);
    ck_assert(strstr(doc, "`123456789`: 0xCBF43926") != NULL);
    free(doc);
}
END_TEST

/* ---- delta-format.md: the header ----------------------------------------------- */

START_TEST(test_delta_header_table)
{
    otaup_delta_header h;
    uint8_t b[OTAUP_DELTA_HEADER_MAX];
    char *doc = load_doc("docs/delta-format.md");
    char *sec = doc_section(doc, "## Header", "## Sections");
    const char *p = sec;
    char line[1024];
    int n, rows = 0, i;
    const unsigned nruns = 2;

    memset(&h, 0, sizeof h);
    h.flags = OTAUP_DELTA_F_STEP_HASH;
    otaup_geometry_uniform(&h.geo, 0x08000000u, 0x1000u, 64u, 8u);
    h.geo.nruns = (uint8_t)nruns;
    h.geo.runs[1].count = 4;
    h.geo.runs[1].size = 0x4000u;
    h.geo.erased = 0xFF;
    h.layout = OTAUP_LAYOUT_AB;
    h.window_bits = 12;
    h.source_addr = 0x08000000u;
    h.source_size = 0x11111u;
    h.target_addr = 0x08020000u;
    h.target_size = 0x12345u;
    h.staging_size = 0x2000u;
    h.max_ops = 7;
    h.step_count = 9;
    h.sync_count = 3;
    h.body_len = 0xABCDu;
    h.inner_len = 0x54321u;
    for (i = 0; i < 16; i++) {
        h.source_hash[i] = (uint8_t)(0x10 + i);
        h.target_hash[i] = (uint8_t)(0x40 + i);
        h.body_hash[i] = (uint8_t)(0x80 + i);
    }
    n = otaup_delta_header_encode(&h, b, sizeof b);
    ck_assert_int_eq(n, (int)OTAUP_DELTA_HEADER_BYTES(nruns));
    ck_assert_uint_eq(OTAUP_DELTA_HEADER_MIN, 140u);
    ck_assert_uint_eq(OTAUP_DELTA_HEADER_MAX, 196u);
    ck_assert(strstr(sec, "132 + 8 \xC3\x97 run count (140 .. 196)") != NULL);

    while (next_line(&p, line, sizeof line)) {
        char *c[6];
        unsigned off, size, k;
        uint64_t v = 0, want = 0;
        const char *f;
        if (row_cells(line, c, 6) != 4 || c[0][0] < '0' || c[0][0] > '9') {
            continue;
        }
        rows++;
        f = c[2];
        if (strcmp(c[0], "124 + 8n") == 0) {
            ck_assert_str_eq(f, "header check");
            ck_assert_str_eq(c[1], "8");
            off = 124u + 8u * nruns;
            for (k = 0; k < 8; k++) {
                v |= (uint64_t)b[off + k] << (8 * k);
            }
            ck_assert_uint_eq(off + 8u, (unsigned)n);
            /* the check covers every byte before it: any change is refused */
            b[0x40] ^= 1;
            ck_assert_int_eq(otaup_delta_header_decode(b, (size_t)n, &h), OTAUP_E_DELTA_CORRUPT);
            b[0x40] ^= 1;
            ck_assert_int_eq(otaup_delta_header_decode(b, (size_t)n, &h), n);
            continue;
        }
        ck_assert_int_eq(sscanf(c[0], "%u", &off), 1);
        if (strcmp(f, "sector runs") == 0) {
            ck_assert_uint_eq(off, 124u);
            ck_assert_str_eq(c[1], "8 \xC3\x97 n");
            for (k = 0; k < nruns; k++) {
                ck_assert_uint_eq(b[off + 8 * k] | (b[off + 8 * k + 1] << 8) | (b[off + 8 * k + 2] << 16) |
                                      ((uint32_t)b[off + 8 * k + 3] << 24),
                                  h.geo.runs[k].count);
                ck_assert_uint_eq(b[off + 8 * k + 4] | (b[off + 8 * k + 5] << 8) |
                                      (b[off + 8 * k + 6] << 16) | ((uint32_t)b[off + 8 * k + 7] << 24),
                                  h.geo.runs[k].size);
            }
            continue;
        }
        ck_assert_int_eq(sscanf(c[1], "%u", &size), 1);
        if (size == 16) {
            const uint8_t *hv = strcmp(f, "source hash") == 0   ? h.source_hash
                                : strcmp(f, "target hash") == 0 ? h.target_hash
                                : strcmp(f, "body hash") == 0   ? h.body_hash
                                                                : NULL;
            ck_assert_msg(hv != NULL, "unexpected 16-byte field '%s'", f);
            ck_assert_mem_eq(b + off, hv, 16);
            continue;
        }
        if (strcmp(f, "magic") == 0) {
            ck_assert_uint_eq(size, 8);
            ck_assert_mem_eq(b + off, OTAUP_DELTA_MAGIC, 8);
            continue;
        }
        ck_assert_uint_le(size, 4);
        for (k = 0; k < size; k++) {
            v |= (uint64_t)b[off + k] << (8 * k);
        }
        if (strcmp(f, "format version") == 0) {
            want = OTAUP_DELTA_FORMAT_VERSION;
        } else if (strcmp(f, "header size") == 0) {
            want = (unsigned)n;
        } else if (strcmp(f, "flags") == 0) {
            want = h.flags;
        } else if (strcmp(f, "geometry base") == 0) {
            want = h.geo.base;
        } else if (strcmp(f, "write size") == 0) {
            want = h.geo.write_size;
        } else if (strcmp(f, "erased value") == 0) {
            want = h.geo.erased;
        } else if (strcmp(f, "run count") == 0) {
            want = h.geo.nruns;
        } else if (strcmp(f, "layout") == 0) {
            want = h.layout;
        } else if (strcmp(f, "window bits") == 0) {
            want = h.window_bits;
        } else if (strcmp(f, "source address") == 0) {
            want = h.source_addr;
        } else if (strcmp(f, "target address") == 0) {
            want = h.target_addr;
        } else if (strcmp(f, "scratch address") == 0) {
            want = h.scratch_addr;
        } else if (strcmp(f, "scratch size") == 0) {
            want = h.scratch_size;
        } else if (strcmp(f, "staging size") == 0) {
            want = h.staging_size;
        } else if (strcmp(f, "max ops") == 0) {
            want = h.max_ops;
        } else if (strcmp(f, "reserved") == 0) {
            want = 0;
        } else if (strcmp(f, "step count") == 0) {
            want = h.step_count;
        } else if (strcmp(f, "sync count") == 0) {
            want = h.sync_count;
        } else if (strcmp(f, "source size") == 0) {
            want = h.source_size;
        } else if (strcmp(f, "target size") == 0) {
            want = h.target_size;
        } else if (strcmp(f, "body length") == 0) {
            want = h.body_len;
        } else if (strcmp(f, "inner length") == 0) {
            want = h.inner_len;
        } else {
            ck_abort_msg("delta-format.md: unknown header field '%s'", f);
        }
        ck_assert_msg(v == want, "header field '%s' at %u: %llx, want %llx", f, off, (unsigned long long)v,
                      (unsigned long long)want);
    }
    ck_assert_int_eq(rows, 28);
    /* the first 28 bytes tell the size: the run count at offset 25 */
    ck_assert_uint_eq(OTAUP_DELTA_HEADER_PREFIX, 28u);
    /* the planner's RAM accounting as the page writes it */
    ck_assert(strstr(doc, "ram = staging size + 2^window bits + 7168 (inflate state) + 16 \xC3\x97 max ops") !=
              NULL);
    ck_assert_uint_eq(otaup_delta_ram_needed(0x2000u, 12u, 7u), 0x2000u + 4096u + 7168u + 16u * 7u);
    free(sec);
    free(doc);
}
END_TEST

/* ---- api.md and error.h: the error codes ------------------------------------------- */

START_TEST(test_error_table)
{
    char *doc = load_doc("docs/api.md");
    char *hdr = load_doc("include/otaup/error.h");
    const char *p = doc;
    char line[512];
    int rows = 0, named = 0, code, hrows = 0;
    while (next_line(&p, line, sizeof line)) {
        char *c[5];
        char name[64];
        int v;
        if (row_cells(line, c, 5) != 3 || sscanf(c[0], "%d", &v) != 1 || c[1][0] != '`') {
            continue;
        }
        rows++;
        ck_assert_uint_lt(strlen(c[1]), sizeof name);
        strcpy(name, c[1] + 1);
        ck_assert(name[0] != '\0' && name[strlen(name) - 1] == '`');
        name[strlen(name) - 1] = '\0';
        ck_assert_msg(otaup_errname(v) != NULL, "api.md: %d has no name in the code", v);
        ck_assert_str_eq(otaup_errname(v), name);
        ck_assert_str_eq(otaup_strerror(v), c[2]);
    }
    for (code = 0; code >= OTAUP_E_USER; code--) {
        named += otaup_errname(code) != NULL;
    }
    ck_assert_int_eq(rows, named);
    /* error.h: "OTAUP_E_X = -n, ... / **< text * /" */
    p = hdr;
    while (next_line(&p, line, sizeof line)) {
        char name[64], *t, *e;
        int v;
        if (sscanf(line, " %63[A-Z_0-9] = %d", name, &v) != 2 || strncmp(name, "OTAUP_", 6) != 0) {
            continue;
        }
        hrows++;
        ck_assert_str_eq(otaup_errname(v), name);
        t = strstr(line, "/**< ");
        if (t == NULL) {
            ck_assert_str_eq(name, "OTAUP_OK");
            continue;
        }
        t += 5;
        e = strstr(t, " */");
        ck_assert_ptr_nonnull(e);
        *e = '\0';
        ck_assert_str_eq(otaup_strerror(v), t);
    }
    ck_assert_int_eq(hrows, named);
    free(hdr);
    free(doc);
}
END_TEST

START_TEST(test_api_headers)
{
    char *doc = load_doc("docs/api.md");
    char *sec = doc_section(doc, "## Headers", "## Error codes");
    char path[1024];
    const char *dir = getenv("OTAUP_SRC_DIR");
    DIR *d;
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(dir);
    snprintf(path, sizeof path, "%s/include/otaup", dir);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        char want[300];
        size_t l = strlen(e->d_name);
        if (l < 3 || strcmp(e->d_name + l - 2, ".h") != 0) {
            continue;
        }
        snprintf(want, sizeof want, "| `otaup/%s` |", e->d_name);
        ck_assert_msg(strstr(sec, want) != NULL, "api.md, Headers: %s is missing", e->d_name);
        n++;
    }
    closedir(d);
    ck_assert_int_gt(n, 10);
    ck_assert(strstr(sec, "| `otaup/features.h` |") != NULL); /* generated */
    free(sec);
    free(doc);
}
END_TEST

/* ---- the constants of the headers, where the pages give them ------------------- */

/* The text of a page with every run of blanks and newlines made one space. */
static char *flat_doc(const char *rel)
{
    char *doc = load_doc(rel), *r, *w;
    for (r = w = doc; *r != '\0'; r++) {
        char c = *r == '\n' || *r == '\t' ? ' ' : *r;
        if (c == ' ' && w > doc && w[-1] == ' ') {
            continue;
        }
        *w++ = c;
    }
    *w = '\0';
    return doc;
}

#define NEED_TEXT(doc, rel, text) \
    ck_assert_msg(strstr((doc), (text)) != NULL, "%s does not say \"%s\"", (rel), (text))
/* the page says `fmt` with the constant's value */
#define need(doc, rel, fmt, v)                      \
    do {                                            \
        char t_[256];                               \
        snprintf(t_, sizeof t_, fmt, (unsigned)(v)); \
        NEED_TEXT(doc, rel, t_);                     \
    } while (0)

START_TEST(test_constants)
{
    char *p = flat_doc("docs/protocol.md");
    char *d = flat_doc("docs/delta-format.md");
    const char *pr = "docs/protocol.md", *dr = "docs/delta-format.md";
    /* frames */
    need(p, pr, "0x%02X ('O')", OTAUP_FRAME_MAGIC0);
    need(p, pr, "0x%02X ('U')", OTAUP_FRAME_MAGIC1);
    need(p, pr, "The overhead is %u bytes per frame", OTAUP_FRAME_OVERHEAD);
    need(p, pr, "(`max_frame`, %u to", OTAUP_FRAME_MIN);
    NEED_TEXT(p, pr, "to 65536 bytes, in HELLO and INFO)");
    ck_assert_uint_eq(OTAUP_FRAME_MAX, 65536u);
    need(p, pr, "at most %u, and", OTAUP_PAYLOAD_MAX);
    need(p, pr, "| 0x%02X | MORE |", OTAUP_FLAG_MORE);
    need(p, pr, "| 0x%02X | CONT |", OTAUP_FLAG_CONT);
    need(p, pr, "| 0x%02X | ACKREQ |", OTAUP_FLAG_ACKREQ);
    need(p, pr, "| 0x%02X | — | reserved, zero |", 0xFFu & ~OTAUP_FLAG_ALL);
    need(p, pr, "version of this page is `OTAUP_PROTO_VERSION` = %u", OTAUP_PROTO_VERSION);
    /* shared forms */
    need(p, pr, "alg %u = XXH3-64 (8 bytes", OTAUP_HASH_XXH3_64);
    need(p, pr, "%u = XXH3-128 (16 bytes", OTAUP_HASH_XXH3_128);
    need(p, pr, "%u = SHA-256 (32 bytes)", OTAUP_HASH_SHA256);
    need(p, pr, "`len u8` (0..%u)", OTAUP_PROTO_VERSION_STR_MAX);
    /* HELLO, INFO */
    need(p, pr, "role %u = server", OTAUP_ROLE_SERVER);
    need(p, pr, ", %u = terminal", OTAUP_ROLE_TERMINAL);
    need(p, pr, "required; 1..%u bytes |", OTAUP_PROTO_STR_MAX);
    need(p, pr, "| UTF-8 | required; 1..%u bytes |", OTAUP_PROTO_VERSION_STR_MAX);
    need(p, pr, "repeatable, ≤ %u; writable", OTAUP_INFO_MAX_WINDOWS);
    need(p, pr, "repeatable, ≤ %u; user-data", OTAUP_INFO_MAX_REGIONS);
    need(p, pr, "flags: 0x%02X PERSONAL", OTAUP_REGION_PERSONAL);
    need(p, pr, "layout %u = in-place", OTAUP_LAYOUT_INPLACE);
    need(p, pr, "%u = A/B (active 0 or 1)", OTAUP_LAYOUT_AB);
    need(p, pr, "flags 0x%02X IN_SCRATCH", OTAUP_RESUME_IN_SCRATCH);
    need(p, pr, "1..%u runs", OTAUP_MAX_SECTOR_RUNS);
    /* NOTIFY, CONSENT, START, COMMIT */
    need(p, pr, "kind u8 %u = information", OTAUP_NOTIFY_INFO);
    need(p, pr, "%u = offer", OTAUP_NOTIFY_OFFER);
    need(p, pr, "decision %u accept", OTAUP_CONSENT_ACCEPT);
    need(p, pr, "%u decline", OTAUP_CONSENT_DECLINE);
    need(p, pr, "%u request (the user asks", OTAUP_CONSENT_REQUEST);
    need(p, pr, "%u postpone", OTAUP_CONSENT_POSTPONE);
    need(p, pr, "flags 0x%02X RESUME: continue", OTAUP_START_RESUME);
    need(p, pr, "action %u switch", OTAUP_COMMIT_SWITCH);
    need(p, pr, "%u done (in-place", OTAUP_COMMIT_DONE);
    need(p, pr, "%u confirm (running", OTAUP_COMMIT_CONFIRM);
    /* PROGRESS phases */
    need(p, pr, "Phases: %u idle", OTAUP_PHASE_IDLE);
    need(p, pr, "%u backup, 2 transfer", OTAUP_PHASE_BACKUP);
    need(p, pr, "%u transfer (records", OTAUP_PHASE_TRANSFER);
    need(p, pr, "%u verify, 4 restore", OTAUP_PHASE_VERIFY);
    need(p, pr, "%u restore, 5 commit", OTAUP_PHASE_RESTORE);
    need(p, pr, "%u commit, 6 done", OTAUP_PHASE_COMMIT);
    need(p, pr, "%u done; others `OTAUP_E_MSG_FIELD`", OTAUP_PHASE_DONE);
    ck_assert_uint_eq(OTAUP_PHASE_MAX, OTAUP_PHASE_DONE);
    /* BACKUP / RESTORE / SIG */
    need(p, pr, "Flag 0x%02X HASH_ONLY", OTAUP_BACKUP_HASH_ONLY);
    need(p, pr, "flags 0x%02X LAST (the region's last chunk)", OTAUP_RDATA_LAST);
    need(p, pr, "0x%02X HASH, 0x04 TAG", OTAUP_RDATA_HASH);
    need(p, pr, "0x%02X TAG (a sealed chunk)", OTAUP_RDATA_TAG);
    need(p, pr, "if TAG: %u bytes, the seal tag", OTAUP_RDATA_TAG_SIZE);
    need(p, pr, "flags 0x%02X LAST (this chunk ends the signature)", OTAUP_SDATA_LAST);
    need(p, pr, "SIG_REQ, %u bytes", OTAUP_SIG_REQ_SIZE);
    need(p, pr, "HELLO (0x01), %u bytes", OTAUP_HELLO_SIZE);
    /* records */
    need(p, pr, "enc u8 (%u inline, 1 deferred)", OTAUP_ENC_INLINE);
    need(p, pr, "(0 inline, %u deferred)", OTAUP_ENC_DEFERRED);
    need(p, pr, "flags u8 (0x%02X RESET)", OTAUP_DATA_RESET);
    need(p, pr, "flags u8 (0x%02X HASH)", OTAUP_STEP_HASH);
    /* capabilities: test_info_tags_and_caps */

    /* delta-format.md */
    need(d, dr, "(`OTAUP_DELTA_FORMAT_VERSION`, now %u)", OTAUP_DELTA_FORMAT_VERSION);
    need(d, dr, "| 8 | 2 | format version | %u |", OTAUP_DELTA_FORMAT_VERSION);
    NEED_TEXT(d, dr, "bit 0 `FROM_SIG`");
    ck_assert_uint_eq(OTAUP_DELTA_F_FROM_SIG, 1u << 0);
    NEED_TEXT(d, dr, "bit 1 `STEP_HASH`");
    ck_assert_uint_eq(OTAUP_DELTA_F_STEP_HASH, 1u << 1);
    ck_assert_uint_eq(OTAUP_DELTA_F_KNOWN, OTAUP_DELTA_F_FROM_SIG | OTAUP_DELTA_F_STEP_HASH);
    NEED_TEXT(d, dr, "| 0 | 8 | magic | `" OTAUP_DELTA_MAGIC "` |");
    need(d, dr, "| %u | END | none (length 0) |", OTAUP_SECTION_END);
    need(d, dr, "| %u | MANIFEST |", OTAUP_SECTION_MANIFEST);
    need(d, dr, "| %u | SIGNATURE |", OTAUP_SECTION_SIGNATURE);
    need(d, dr, "| %u | PAD |", OTAUP_SECTION_PAD);
    need(d, dr, "| %u | INFO |", OTAUP_SECTION_INFO);
    need(d, dr, "at most %u of them (`OTAUP_SECTION_MAX_COUNT`)", OTAUP_SECTION_MAX_COUNT);
    need(d, dr, "each value at most %u KiB (`OTAUP_SECTION_MAX_LEN`)", OTAUP_SECTION_MAX_LEN / 1024u);
    need(d, dr, "| 0x%02X | PIECE |", OTAUP_REC_PIECE);
    need(d, dr, "| 0x%02X | CFILL |", OTAUP_REC_CFILL);
    need(d, dr, "flag `RESET` (0x%02X)", OTAUP_DATA_RESET);
    need(d, dr, "window bits %u..15, staging", OTAUP_DELTA_WBITS_MIN);
    need(d, dr, "9..%u, staging size", OTAUP_DELTA_WBITS_MAX);
    need(d, dr, "staging size ≤ %u MiB", OTAUP_DELTA_STAGING_MAX >> 20);
    need(d, dr, "max ops ≤ %u, sync", OTAUP_DELTA_MAX_OPS_LIMIT);
    need(d, dr, "| 25 | 1 | run count | n, 1..%u sector runs |", OTAUP_MAX_SECTOR_RUNS);
    need(d, dr, "layout %u or 1", OTAUP_LAYOUT_INPLACE);
    need(d, dr, "| 26 | 1 | layout | 0 in place, %u A/B |", OTAUP_LAYOUT_AB);
    free(d);
    free(p);
}
END_TEST

/* ---- delta-format.md: where a body may start ------------------------------------ */

/* A delta file of header, END section and body[0..n) with `syncs` SYNC records. */
static size_t small_delta(const uint8_t *body, size_t n, uint32_t syncs, uint8_t *out, size_t cap)
{
    otaup_delta_header h;
    int hl;
    memset(&h, 0, sizeof h);
    otaup_geometry_uniform(&h.geo, 0u, 4096u, 16u, 1u);
    h.geo.erased = 0xFF;
    h.layout = OTAUP_LAYOUT_INPLACE;
    h.window_bits = 12;
    h.source_size = h.target_size = 4096u;
    h.staging_size = 4096u;
    h.step_count = 2;
    h.sync_count = syncs;
    h.body_len = (uint32_t)n;
    otaup_hash128(body, n, h.body_hash);
    hl = otaup_delta_header_encode(&h, out, cap);
    ck_assert_int_gt(hl, 0);
    ck_assert_uint_le((size_t)hl + OTAUP_SECTION_HEAD_SIZE + n, cap);
    memset(out + hl, 0, OTAUP_SECTION_HEAD_SIZE); /* the END entry */
    memcpy(out + hl + OTAUP_SECTION_HEAD_SIZE, body, n);
    return (size_t)hl + OTAUP_SECTION_HEAD_SIZE + n;
}

START_TEST(test_body_start)
{
    /* SYNC{0} DATA{RESET} SYNC{1} DATA{RESET}; the reader does not inflate */
    static const uint8_t two[] = { 0x2A, 0x01, 0x00, 0x26, 0x02, 0x01, 0x03,
                                   0x2A, 0x01, 0x01, 0x26, 0x02, 0x01, 0x03 };
    uint8_t f[512];
    size_t n, off = 0;
    uint32_t body_off = 0;
    otaup_delta_reader r;
    int ev, syncs = 0;
    char *d = flat_doc("docs/delta-format.md");
    NEED_TEXT(d, "docs/delta-format.md",
              "A body read from its start (`otaup_delta_reader_feed`, `otaup_delta_check`) that opens with "
              "another record, or with a later SYNC, is `OTAUP_E_DELTA_CORRUPT`; only a reader that has "
              "seeked to a restart point (`otaup_delta_reader_seek`");
    free(d);
    n = small_delta(two, sizeof two, 2, f, sizeof f);
    ck_assert_int_eq(otaup_delta_check(f, n, NULL, &body_off), 0);
    /* the same body from its second restart point, read from the start: refused */
    n = small_delta(two + 7, 7, 1, f, sizeof f);
    ck_assert_int_eq(otaup_delta_check(f, n, NULL, NULL), OTAUP_E_DELTA_CORRUPT);
    /* a reader seeked to that restart point starts there */
    n = small_delta(two, sizeof two, 2, f, sizeof f);
    otaup_delta_reader_init(&r);
    do {
        size_t used = 0;
        ev = otaup_delta_reader_feed(&r, f + off, n - off, &used);
        off += used;
        ck_assert_int_ge(ev, 0);
    } while (ev != OTAUP_DELTA_BODY);
    ck_assert_uint_eq(off, body_off);
    ck_assert_int_eq(otaup_delta_reader_seek(&r, body_off + 7u), 0);
    off = body_off + 7u;
    for (;;) {
        size_t used = 0;
        ev = otaup_delta_reader_feed(&r, f + off, n - off, &used);
        off += used;
        ck_assert_int_ge(ev, 0);
        if (ev == OTAUP_DELTA_RECORD && r.rec.type == OTAUP_REC_SYNC) {
            ck_assert_uint_eq(r.rec.index, 1u);
            syncs++;
        }
        if (ev == OTAUP_DELTA_NEED_INPUT) {
            ev = otaup_delta_reader_finish(&r);
        }
        if (ev == OTAUP_DELTA_END) {
            break;
        }
    }
    ck_assert_int_eq(syncs, 1);
}
END_TEST

/* ---- api.md and README.md: every function they name is declared ------------------- */

/* 1 if a public header declares `name` (a line outside comments with "name("). */
static int declared(const char *name)
{
    char path[1024], want[128];
    const char *dir = getenv("OTAUP_SRC_DIR");
    DIR *d;
    struct dirent *e;
    int found = 0;
    snprintf(path, sizeof path, "%s/include/otaup", dir);
    snprintf(want, sizeof want, "%s(", name);
    d = opendir(path);
    ck_assert_ptr_nonnull(d);
    while (!found && (e = readdir(d)) != NULL) {
        char rel[300], line[1024];
        char *text;
        const char *p;
        size_t l = strlen(e->d_name);
        if (l < 3 || strcmp(e->d_name + l - 2, ".h") != 0) {
            continue;
        }
        snprintf(rel, sizeof rel, "include/otaup/%s", e->d_name);
        text = load_doc(rel);
        p = text;
        while (!found && next_line(&p, line, sizeof line)) {
            const char *t = line, *h;
            while (*t == ' ') {
                t++;
            }
            if (*t == '*' || strncmp(t, "/*", 2) == 0 || (h = strstr(t, want)) == NULL) {
                continue;
            }
            found = h == t || h[-1] == ' ' || h[-1] == '*';
        }
        free(text);
    }
    closedir(d);
    return found;
}

static int check_named_functions(const char *rel)
{
    char *doc = load_doc(rel);
    const char *p = doc;
    int n = 0;
    while ((p = strstr(p, "`otaup_")) != NULL) {
        char name[96];
        size_t k = 0;
        p++;
        while (k + 1 < sizeof name && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            name[k++] = *p++;
        }
        name[k] = '\0';
        if (strncmp(p, "()`", 3) != 0) {
            continue; /* a type or a file, not a call */
        }
        ck_assert_msg(declared(name), "%s names %s(), which no public header declares", rel, name);
        n++;
    }
    free(doc);
    return n;
}

START_TEST(test_named_functions)
{
    ck_assert_int_gt(check_named_functions("docs/api.md"), 60);
    ck_assert_int_gt(check_named_functions("docs/delta-format.md"), 3);
    ck_assert_int_gt(check_named_functions("docs/design.md") + check_named_functions("README.md"), 0);
    ck_assert(!declared("otaup_no_such_function"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("docs_spec");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;
    tcase_add_test(tc, test_hex_examples);
    tcase_add_test(tc, test_message_table);
    tcase_add_test(tc, test_payload_rules);
    tcase_add_test(tc, test_info_tags_and_caps);
    tcase_add_test(tc, test_check_values);
    tcase_add_test(tc, test_delta_header_table);
    tcase_add_test(tc, test_body_start);
    tcase_add_test(tc, test_error_table);
    tcase_add_test(tc, test_api_headers);
    tcase_add_test(tc, test_named_functions);
    tcase_add_test(tc, test_constants);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
