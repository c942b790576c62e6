/*
 * Fuzz target: the power-loss journal as a parser of flash content.
 *
 * After a power cut in the middle of an erase, a torn program or plain bit
 * rot, the journal area can hold anything; mounting it is parsing it. The
 * input builds a flash and a history:
 *
 *   byte 0      geometry: bits 0-1 sector size (256, 512, 1024, 2048),
 *               bits 2-4 write size (1, 2, 4, 8, 16, 32, 64, 1); a
 *               combination whose sector is too small for the journal
 *               must be refused by mount with OTAUP_E_GEOMETRY
 *   byte 1      bits 0-5: number of records of script A (written on a
 *               fresh journal); bit 6: start from raw content instead
 *   byte 2      number of patches (bits 0-4)
 *   byte 3      number of records of script B (bits 0-5)
 *   then        script A (4 bytes a record), the patches (4 bytes each:
 *               offset low, offset high, kind, value; kind % 3: XOR,
 *               AND (bits programmed), OR (bits half erased)), script B
 *               (4 bytes a record), and the rest: raw content laid on the
 *               journal area first when byte 1 bit 6 is set
 *
 * A record: byte 0 bits 0-2 the kind (begin, step done, scratch window,
 * scratch sector, point of no return, switch, end, restore), bits 3-4 a
 * power cut during it in script B (1: cut, 2: cut and tear, 3: the flash
 * fails it, power on), bits 5-7 the write operations before the cut;
 * bytes 1-3 the arguments.
 *
 * Checked, whatever the input:
 *   - no erase or program outside the journal area (operation log);
 *   - mount succeeds on any content of a valid area (a damaged journal reads
 *     as empty or as its last good state, never as an error);
 *   - after a record that returned 0, a fresh mount reads the state the
 *     journal holds in RAM;
 *   - a record that failed leaves the RAM state as it was;
 *   - after a power cut in a record (script B), a fresh mount reads either
 *     the state before the record or the state after it, which a second run
 *     of the same input without that cut computes;
 *   - otaup_journal_boot_slot gives 0, 1 or an error, and the slot a fresh
 *     mount reads.
 * Any violation aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otaup/error.h"
#include "otaup/journal.h"
#include "otaup/simflash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)          \
    do {                  \
        if (!(c)) {       \
            abort();      \
        }                 \
    } while (0)

#define NSEC 6u     /* sector 0 and 5 guard; 1..4 the journal (4 sectors) */
#define JFIRST 1u
#define JSECS 4u
#define MAXREC 63u
#define MAXCUTS 6u  /* script B records replayed with their cut, at most */

typedef struct {
    const uint8_t *a, *patch, *b, *raw;
    size_t na, npatch, nb, nraw;
    uint32_t sector, ws;
    int raw_first;
} script;

static int parse(const uint8_t *d, size_t n, script *s)
{
    static const uint32_t sectors[4] = { 256u, 512u, 1024u, 2048u };
    static const uint32_t wss[8] = { 1u, 2u, 4u, 8u, 16u, 32u, 64u, 1u };
    size_t need;
    if (n < 4u) {
        return -1;
    }
    s->sector = sectors[d[0] & 3u];
    s->ws = wss[(d[0] >> 2) & 7u];
    s->na = d[1] & 63u;
    s->raw_first = (d[1] >> 6) & 1;
    s->npatch = d[2] & 31u;
    s->nb = d[3] & 63u;
    need = 4u + 4u * (s->na + s->npatch + s->nb);
    if (n < need) {
        return -1;
    }
    s->a = d + 4;
    s->patch = s->a + 4u * s->na;
    s->b = s->patch + 4u * s->npatch;
    s->raw = s->b + 4u * s->nb;
    s->nraw = n - need;
    return 0;
}

/* Equal as far as a journal keeps them: without a session, only the boot
 * slot (a compaction's snapshot writes nothing else; other fields there
 * come only from records forged with a matching CRC, which the fuzzer
 * can make). */
static int same(const otaup_journal_state *x, const otaup_journal_state *y)
{
    if (x->session != y->session || x->boot_slot != y->boot_slot) {
        return 0;
    }
    if (x->session == OTAUP_JS_NONE) {
        return 1;
    }
    if (x->restore != y->restore ||
        (x->restore != OTAUP_JRESTORE_NONE && x->restore_region != y->restore_region)) {
        return 0;
    }
    if (x->session_id != y->session_id || x->delta_id != y->delta_id || x->layout != y->layout ||
        x->target_slot != y->target_slot || x->ponr != y->ponr || x->next_step != y->next_step ||
        x->scratch != y->scratch) {
        return 0;
    }
    if (x->session == OTAUP_JS_ENDED && x->result != y->result) {
        return 0;
    }
    if (x->scratch != OTAUP_JSCRATCH_NONE &&
        (x->scratch_step != y->scratch_step || x->scratch_addr != y->scratch_addr ||
         x->scratch_len != y->scratch_len || x->scratch_hash != y->scratch_hash)) {
        return 0;
    }
    return 1;
}

/* Write record r, as the executor may: progress, scratch, the point of no
 * return and the end only in an active session, a restore state only once
 * a session exists (snapshots keep neither otherwise). Returns 1 when the
 * record is not one to write now. */
static int record(otaup_journal *j, const uint8_t *r)
{
    uint32_t a16 = (uint32_t)r[1] | ((uint32_t)r[2] << 8);
    unsigned kind = r[0] & 7u;
    if ((kind == 1u || kind == 2u || kind == 3u || kind == 4u || kind == 6u) && j->st.session != OTAUP_JS_ACTIVE) {
        return 1;
    }
    if (kind == 7u && j->st.session == OTAUP_JS_NONE) {
        return 1;
    }
    switch (kind) {
    case 0:
        return otaup_journal_begin(j, a16 ^ ((uint32_t)r[3] << 16), (uint64_t)r[3] * 0x0101010101010101ull,
                                   (uint8_t)(r[1] & 1u), (uint8_t)(r[2] & 1u));
    case 1:
        return otaup_journal_step_done(j, a16);
    case 2:
        return otaup_journal_scratch_window(j, a16, (uint32_t)r[3] << 12, 64u + r[1],
                                            (uint64_t)a16 * 0x9E3779B97F4A7C15ull);
    case 3:
        return otaup_journal_scratch_sector(j, a16, (uint32_t)r[3] << 12, 4096u, a16 * 2654435761u);
    case 4:
        return otaup_journal_ponr(j);
    case 5:
        return otaup_journal_switch(j, (uint8_t)(r[1] & 1u));
    case 6:
        return otaup_journal_end(j, -(int32_t)r[1]);
    default:
        return otaup_journal_restore(j, (uint8_t)(r[1] & 7u), (uint8_t)(r[2] % 3u));
    }
}

/* No write operation outside the journal area since log entry `from`. */
static void check_log(otaup_simflash *sim, uint32_t jaddr, uint32_t jlen)
{
    size_t n, i;
    const otaup_simflash_op *op = otaup_simflash_log(sim, &n);
    for (i = 0; i < n; i++) {
        if (op[i].kind == OTAUP_SIMFLASH_PROG || op[i].kind == OTAUP_SIMFLASH_ERASE) {
            CHECK(op[i].addr >= jaddr && op[i].len <= jlen && op[i].addr - jaddr <= jlen - op[i].len);
        }
    }
    otaup_simflash_log_clear(sim);
}

/* No cut or failure pending (one the record did not reach), power on. */
static void disarm(otaup_simflash *sim)
{
    otaup_simflash_cut_after(sim, 0, 0);
    otaup_simflash_fail_after(sim, 0, 0);
    otaup_simflash_power_on(sim);
}

static void mount_fresh(otaup_simflash *sim, uint32_t jaddr, uint32_t jlen, otaup_journal *out)
{
    int rc = otaup_journal_mount(out, otaup_simflash_flash(sim), jaddr, jlen);
    int slot = otaup_journal_boot_slot(otaup_simflash_flash(sim), jaddr, jlen);
    CHECK(rc == 0);
    CHECK(slot == (int)out->st.boot_slot);
    CHECK(out->st.boot_slot <= 1u);
}

/*
 * Run the input. `cut_at`: the script B record that gets its power cut
 * (SIZE_MAX: none). `before`/`after` (script B, per record): filled when
 * cut_at is SIZE_MAX, checked against otherwise; `ok` likewise: whether
 * the record returned 0 in the run without a cut.
 */
static void play(const script *s, size_t cut_at, otaup_journal_state *before, otaup_journal_state *after,
                 uint8_t *ok)
{
    otaup_simflash_options o;
    otaup_simflash *sim = NULL;
    otaup_journal j, m;
    uint32_t jaddr = JFIRST * s->sector, jlen = JSECS * s->sector;
    size_t i;
    int rc;
    otaup_simflash_options_init(&o);
    otaup_geometry_uniform(&o.geo, 0, s->sector, NSEC, s->ws);
    o.log_ops = 1;
    CHECK(otaup_simflash_new(&o, &sim) == 0);

    if (s->raw_first && s->nraw > 0) {
        CHECK(otaup_simflash_load(sim, jaddr, s->raw, (uint32_t)(s->nraw < jlen ? s->nraw : jlen)) == 0);
    }
    rc = otaup_journal_mount(&j, otaup_simflash_flash(sim), jaddr, jlen);
    if (s->sector < OTAUP_JOURNAL_SECTOR_MIN(s->ws)) {
        CHECK(rc == OTAUP_E_GEOMETRY);
        otaup_simflash_free(sim);
        return;
    }
    CHECK(rc == 0);
    for (i = 0; i < s->na; i++) {
        otaup_journal_state was = j.st;
        rc = record(&j, s->a + 4u * i);
        if (rc == 1) {
            continue;
        }
        if (rc != 0) {
            CHECK(rc < 0);
            CHECK(same(&j.st, &was));
            mount_fresh(sim, jaddr, jlen, &j); /* the flash now decides */
            continue;
        }
        mount_fresh(sim, jaddr, jlen, &m);
        CHECK(same(&m.st, &j.st));
    }
    check_log(sim, jaddr, jlen);

    /* damage what the history wrote, then mount what is left */
    for (i = 0; i < s->npatch; i++) {
        const uint8_t *p = s->patch + 4u * i;
        uint32_t off = ((uint32_t)p[0] | ((uint32_t)p[1] << 8)) % jlen;
        uint8_t *b = otaup_simflash_data(sim) + jaddr + off;
        switch (p[2] % 3u) {
        case 0: *b ^= p[3]; break;
        case 1: *b &= p[3]; break;
        default: *b |= p[3]; break;
        }
    }
    mount_fresh(sim, jaddr, jlen, &j);

    for (i = 0; i < s->nb; i++) {
        const uint8_t *r = s->b + 4u * i;
        unsigned cut = (r[0] >> 3) & 3u;
        otaup_journal_state was = j.st;
        if (i == cut_at) {
            uint64_t k = (uint64_t)((r[0] >> 5) & 7u);
            if (cut == 3u) {
                otaup_simflash_fail_after(sim, k + 1u, 1);
            } else {
                otaup_simflash_cut_after(sim, k + 1u, cut == 2u);
            }
        }
        rc = record(&j, r);
        if (rc == 1) {
            if (cut_at == SIZE_MAX) {
                before[i] = after[i] = was;
                ok[i] = 1;
            }
            if (i == cut_at) {
                disarm(sim); /* the cut armed for nothing */
            }
            continue;
        }
        if (i == cut_at) {
            disarm(sim);
            mount_fresh(sim, jaddr, jlen, &m);
            /* atomic: the state before the record or the state after it */
            CHECK(same(&m.st, &before[i]) || (ok[i] && same(&m.st, &after[i])));
            if (rc == 0) {
                CHECK(ok[i] && same(&m.st, &after[i]));
            }
            j = m;
            continue;
        }
        if (cut_at == SIZE_MAX) {
            before[i] = was;
            ok[i] = rc == 0;
        }
        if (rc != 0) {
            CHECK(rc < 0);
            CHECK(same(&j.st, &was));
            mount_fresh(sim, jaddr, jlen, &j);
        } else {
            mount_fresh(sim, jaddr, jlen, &m);
            CHECK(same(&m.st, &j.st));
        }
        if (cut_at == SIZE_MAX) {
            after[i] = j.st;
        }
        if (cut_at != SIZE_MAX && i > cut_at) {
            break; /* the histories differ from here on */
        }
    }
    check_log(sim, jaddr, jlen);
    otaup_simflash_free(sim);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static otaup_journal_state before[MAXREC], after[MAXREC];
    static uint8_t ok[MAXREC];
    script s;
    size_t i, cuts = 0;
    if (parse(data, size, &s) != 0) {
        return 0;
    }
    memset(ok, 0, sizeof ok);
    play(&s, SIZE_MAX, before, after, ok);
    for (i = 0; i < s.nb && cuts < MAXCUTS; i++) {
        if (((s.b[4u * i] >> 3) & 3u) != 0u) {
            play(&s, i, before, after, ok);
            cuts++;
        }
    }
    return 0;
}
