/*
 * otaup — power-safe journal in NOR flash. C99, no heap, no OS.
 * Layout and rules: include/otaup/journal.h, docs/porting.md.
 */
#include <string.h>

#include "otaup/error.h"
#include "otaup/journal.h"

/* record types: never 0x00 or 0xFF, so neither erased nor zeroed slots parse */
#define JR_HDR 0xA0u
#define JR_BEGIN 0xA1u
#define JR_DONE 0xA2u
#define JR_SWIN 0xA3u
#define JR_SSEC 0xA4u
#define JR_PONR 0xA5u
#define JR_SWITCH 0xA6u
#define JR_END 0xA7u
#define JR_STATE 0xA8u
#define JR_RESTORE 0xA9u

#define JR_MAGIC 0x4A54304Fu /* "O0TJ" little-endian, in the header's field a */
#define JR_SIZE 32u

/* One record, kept as it lies in its slot: 32 bytes, little-endian
 * fields, CRC-32 over bytes 0..27. Byte 0 type, 1 flags, 2..3 x, then
 * the fields a, b, c (offsets below), h (64 bits), d (always 0), CRC. */
#define R_A 4u
#define R_B 8u
#define R_C 12u
#define R_H 16u
#define R_CRC 28u

OTAUP_RAMFUNC static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

OTAUP_RAMFUNC static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* CRC-32 (IEEE 802.3, reflected) four bits at a time: a 64-byte table,
 * about twice as fast as bit by bit. The terminal's only CRC-32: the codec
 * checks frames with it too when built small (OTAUP_CONFIG_SMALL_CRC). */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

OTAUP_RAMFUNC uint32_t otaup_journal_crc32(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t i;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

/* Build record `type` in r[0..31]; `fx` is its flags byte and, above
 * it, its x field. */
OTAUP_RAMFUNC static void mk(uint8_t *r, uint8_t type, uint32_t fx, uint32_t a, uint32_t b, uint32_t c, uint64_t h)
{
    memset(r, 0, JR_SIZE);
    r[0] = type;
    r[1] = (uint8_t)fx;
    r[2] = (uint8_t)(fx >> 8);
    r[3] = (uint8_t)(fx >> 16);
    put32(r + R_A, a);
    put32(r + R_B, b);
    put32(r + R_C, c);
    put32(r + R_H, (uint32_t)h);
    put32(r + R_H + 4u, (uint32_t)(h >> 32));
    put32(r + R_CRC, otaup_journal_crc32(0, r, R_CRC));
}

OTAUP_RAMFUNC static uint64_t get_h(const uint8_t *r)
{
    return (uint64_t)get32(r + R_H) | ((uint64_t)get32(r + R_H + 4u) << 32);
}

/* Fold one record into a state. */
OTAUP_RAMFUNC static void fold(otaup_journal_state *st, const uint8_t *r)
{
    uint32_t a = get32(r + R_A);
    switch (r[0]) {
    case JR_BEGIN:
        st->session = OTAUP_JS_ACTIVE;
        st->session_id = a;
        st->delta_id = get_h(r);
        st->layout = r[1];
        st->target_slot = r[2];
        st->next_step = 0;
        st->ponr = 0;
        st->scratch = OTAUP_JSCRATCH_NONE;
        st->result = 0;
        st->restore = OTAUP_JRESTORE_NONE;
        st->restore_region = 0;
        break;
    case JR_DONE:
        st->next_step = a + 1u;
        st->scratch = OTAUP_JSCRATCH_NONE;
        break;
    case JR_SWIN:
    case JR_SSEC:
        if (st->session != OTAUP_JS_ACTIVE) {
            break; /* scratch belongs to an active session: END clears it, a snapshot keeps none */
        }
        st->scratch = r[0] == JR_SWIN ? OTAUP_JSCRATCH_WINDOW : OTAUP_JSCRATCH_SECTOR;
        st->scratch_step = a;
        st->scratch_addr = get32(r + R_B);
        st->scratch_len = get32(r + R_C);
        st->scratch_hash = get_h(r);
        break;
    case JR_PONR:
        st->ponr = 1;
        break;
    case JR_SWITCH:
        st->boot_slot = (uint8_t)(a & 1u);
        break;
    case JR_END:
        st->session = OTAUP_JS_ENDED;
        st->result = (int32_t)a;
        st->scratch = OTAUP_JSCRATCH_NONE;
        break;
    case JR_STATE:
        st->next_step = a;
        st->ponr = (uint8_t)(r[1] & 1u);
        break;
    case JR_RESTORE:
        st->restore_region = r[2];
        st->restore = r[1];
        break;
    default:
        break;
    }
}

OTAUP_RAMFUNC static int slot_erased(const otaup_journal *j, const uint8_t *p)
{
    uint32_t i;
    for (i = 0; i < j->slot; i++) {
        if (p[i] != j->flash->geo.erased) {
            return 0;
        }
    }
    return 1;
}

/* Check the area: whole sectors, at least two, each holding
 * OTAUP_JOURNAL_MIN_SLOTS slots (the largest snapshot: switch, begin,
 * state, scratch, restore, end). */
OTAUP_RAMFUNC static int check_area(const otaup_flash *flash, uint32_t addr, uint32_t len, uint32_t slot)
{
    uint32_t pos = addr, start, size, n = 0;
    if (len == 0 || len - 1u > 0xFFFFFFFFu - addr || !otaup_geometry_is_sector_aligned(&flash->geo, addr, len)) {
        return OTAUP_E_GEOMETRY;
    }
    while (pos - addr < len) {
        if (otaup_geometry_sector_at(&flash->geo, pos, &start, &size) < 0 || size < OTAUP_JOURNAL_MIN_SLOTS * slot) {
            return OTAUP_E_GEOMETRY;
        }
        n++;
        pos = start + size;
        if (pos == 0) {
            break;
        }
    }
    return n >= 2 ? 0 : OTAUP_E_GEOMETRY;
}

/* Read the slot at `addr` into buf: 1 a valid record (a good CRC, any
 * type; buf[0..31] holds it), 0 erased, 2 neither (torn, or never a journal), or a read error. A
 * slot that reads as neither is read once more: a transient misread (one
 * wrong bit) must not pass for a torn slot, since a header taken for torn
 * would make the next append format the area over the real journal, and a
 * record taken for torn would hide the progress after it. */
OTAUP_RAMFUNC static int read_slot(const otaup_journal *j, uint32_t addr, uint8_t *buf)
{
    int k, rc;
    for (k = 0; k < 2; k++) {
        rc = j->flash->read(j->flash, addr, buf, j->slot);
        if (rc != 0) {
            return rc;
        }
        if (get32(buf + R_CRC) == otaup_journal_crc32(0, buf, R_CRC)) {
            return 1;
        }
        if (slot_erased(j, buf)) {
            return 0;
        }
    }
    return 2;
}

OTAUP_RAMFUNC int otaup_journal_mount(otaup_journal *j, const otaup_flash *flash, uint32_t addr, uint32_t len)
{
    uint8_t buf[OTAUP_CONFIG_JOURNAL_SLOT_MAX];
    uint32_t pos, start, size, best_seq = 0, best_addr = 0, best_len = 0, off;
    int rc, found = 0;
    if (j == NULL || flash == NULL || flash->read == NULL) {
        return OTAUP_E_INVAL;
    }
    memset(j, 0, sizeof *j);
    if (otaup_geometry_check(&flash->geo) != 0 || flash->geo.write_size > OTAUP_CONFIG_JOURNAL_SLOT_MAX) {
        return OTAUP_E_GEOMETRY;
    }
    j->flash = flash;
    j->addr = addr;
    j->len = len;
    j->slot = flash->geo.write_size > JR_SIZE ? flash->geo.write_size : JR_SIZE;
    rc = check_area(flash, addr, len, j->slot);
    if (rc != 0) {
        return rc;
    }
    /* the active sector: the valid header with the highest sequence */
    for (pos = addr; pos - addr < len; pos = start + size) {
        (void)otaup_geometry_sector_at(&flash->geo, pos, &start, &size);
        rc = read_slot(j, start, buf);
        if (rc < 0) {
            return rc;
        }
        if (rc == 1 && buf[0] == JR_HDR && get32(buf + R_A) == JR_MAGIC && get32(buf + R_C) == j->slot &&
            get32(buf + R_H) == size) {
            uint32_t seq = get32(buf + R_B);
            if (!found || (int32_t)(seq - best_seq) > 0) {
                found = 1;
                best_seq = seq;
                best_addr = start;
                best_len = size;
            }
        }
        if (start + size == 0) {
            break;
        }
    }
    if (!found) {
        return 0; /* empty journal: state all zero */
    }
    j->sec_addr = best_addr;
    j->sec_len = best_len;
    j->st.seq = best_seq;
    /* fold the records up to the first erased slot; torn slots are skipped */
    for (off = j->slot; off + j->slot <= best_len; off += j->slot) {
        rc = read_slot(j, best_addr + off, buf);
        if (rc <= 0) {
            if (rc == 0) {
                break;
            }
            return rc;
        }
        if (rc == 1 && buf[0] >= JR_BEGIN && buf[0] <= JR_RESTORE) {
            fold(&j->st, buf);
            j->st.records++;
        }
    }
    j->pos = off;
    return 0;
}

const otaup_journal_state *otaup_journal_get(const otaup_journal *j)
{
    return j != NULL ? &j->st : NULL;
}

OTAUP_RAMFUNC int otaup_journal_boot_slot(const otaup_flash *flash, uint32_t addr, uint32_t len)
{
    otaup_journal j;
    int rc = otaup_journal_mount(&j, flash, addr, len);
    return rc != 0 ? rc : j.st.boot_slot;
}

/* Program one record into slot `off` of sector `sec`. */
OTAUP_RAMFUNC static int put_slot(const otaup_journal *j, uint32_t sec, uint32_t off, const uint8_t *r)
{
    uint8_t buf[OTAUP_CONFIG_JOURNAL_SLOT_MAX];
    memset(buf, j->flash->geo.erased, sizeof buf);
    memcpy(buf, r, JR_SIZE);
    return j->flash->prog(j->flash, sec + off, buf, j->slot);
}

/* Write the state `st` as records into slots of sector `sec` from slot 1,
 * in this order: switch, begin, state, scratch, restore, end (each only
 * if the state has it: without a session, switch and restore; a restore
 * may run outside one); returns the offset after the last one, or a
 * negative error. */
OTAUP_RAMFUNC static int32_t put_snapshot(const otaup_journal *j, uint32_t sec, const otaup_journal_state *st)
{
    uint8_t r[JR_SIZE];
    uint32_t off = j->slot;
    unsigned k;
    int rc;
    for (k = 0; k < 6u; k++) {
        uint8_t type;
        uint32_t fx = 0, a = 0, b = 0, c = 0;
        uint64_t h = 0;
        switch (k) {
        case 0:
            type = st->boot_slot != 0 ? JR_SWITCH : 0u;
            a = st->boot_slot;
            break;
        case 1:
            type = JR_BEGIN;
            a = st->session_id;
            h = st->delta_id;
            fx = st->layout | ((uint32_t)st->target_slot << 8);
            break;
        case 2:
            type = JR_STATE;
            a = st->next_step;
            fx = st->ponr;
            break;
        case 3:
            type = st->scratch == OTAUP_JSCRATCH_NONE     ? 0u
                   : st->scratch == OTAUP_JSCRATCH_WINDOW ? JR_SWIN
                                                          : JR_SSEC;
            a = st->scratch_step;
            b = st->scratch_addr;
            c = st->scratch_len;
            h = st->scratch_hash;
            break;
        case 4:
            type = st->restore != OTAUP_JRESTORE_NONE ? JR_RESTORE : 0u;
            fx = st->restore | ((uint32_t)st->restore_region << 8);
            break;
        default:
            type = st->session == OTAUP_JS_ENDED ? JR_END : 0u;
            a = (uint32_t)st->result;
            break;
        }
        if (type == 0 || (k - 1u < 3u && st->session == OTAUP_JS_NONE)) {
            continue; /* not part of this state; without a session: boot slot and restore only */
        }
        mk(r, type, fx, a, b, c, h);
        if ((rc = put_slot(j, sec, off, r)) != 0) {
            return rc;
        }
        off += j->slot;
    }
    return (int32_t)off;
}

/* Move to the next sector with a snapshot of `st` (which already includes
 * the record being appended). The new sector counts only once its header
 * is programmed, which happens last. */
OTAUP_RAMFUNC static int compact(otaup_journal *j, const otaup_journal_state *st)
{
    uint32_t next = j->sec_len != 0 ? j->sec_addr + j->sec_len : j->addr;
    uint32_t start, size, seq = j->st.seq + 1u;
    int32_t end;
    uint8_t h[JR_SIZE];
    int rc;
    if (next - j->addr >= j->len) {
        next = j->addr;
    }
    (void)otaup_geometry_sector_at(&j->flash->geo, next, &start, &size);
    rc = j->flash->erase(j->flash, start, size);
    if (rc != 0) {
        return rc;
    }
    end = put_snapshot(j, start, st);
    if (end < 0) {
        return (int)end;
    }
    mk(h, JR_HDR, 0, JR_MAGIC, seq, j->slot, size);
    rc = put_slot(j, start, 0, h);
    if (rc != 0) {
        return rc;
    }
    j->sec_addr = start;
    j->sec_len = size;
    j->pos = (uint32_t)end;
    j->st = *st;
    j->st.seq = seq;
    j->st.records = (uint32_t)end / j->slot - 1u;
    return 0;
}

OTAUP_RAMFUNC static int append(otaup_journal *j, const uint8_t *r)
{
    int rc;
    if (j == NULL || j->flash == NULL) {
        return OTAUP_E_INVAL;
    }
    if (j->sec_len == 0 || j->pos + j->slot > j->sec_len) {
        otaup_journal_state st = j->st;
        fold(&st, r);
        rc = compact(j, &st);
    } else {
        rc = put_slot(j, j->sec_addr, j->pos, r);
        if (rc == 0) {
            j->pos += j->slot;
            fold(&j->st, r);
            j->st.records++;
        } else {
            /* A failed program left the slot erased, torn or (the driver
             * may be wrong) whole: mount stops at the first slot that is
             * not a valid record, so nothing may follow it in this sector.
             * The next append moves to the other sector (compaction), whose
             * snapshot carries the state as it stands in RAM. */
            j->pos = j->sec_len;
        }
    }
    if (rc == 0 && j->flash->sync != NULL) {
        rc = j->flash->sync(j->flash);
    }
    return rc;
}

/* Append one record (see mk()). */
OTAUP_RAMFUNC static int log_full(otaup_journal *j, uint8_t type, uint32_t fx, uint32_t a, uint32_t b, uint32_t c,
                                  uint64_t h)
{
    uint8_t r[JR_SIZE];
    mk(r, type, fx, a, b, c, h);
    return append(j, r);
}

/* Append a record of fields fx and a only. */
OTAUP_RAMFUNC static int log_rec(otaup_journal *j, uint8_t type, uint32_t fx, uint32_t a)
{
    return log_full(j, type, fx, a, 0, 0, 0);
}

OTAUP_RAMFUNC int otaup_journal_begin(otaup_journal *j, uint32_t session_id, uint64_t delta_id, uint8_t layout,
                        uint8_t target_slot)
{
    return log_full(j, JR_BEGIN, layout | ((uint32_t)target_slot << 8), session_id, 0, 0, delta_id);
}

OTAUP_RAMFUNC int otaup_journal_step_done(otaup_journal *j, uint32_t index)
{
    return log_rec(j, JR_DONE, 0, index);
}

OTAUP_RAMFUNC int otaup_journal_scratch_window(otaup_journal *j, uint32_t index, uint32_t addr, uint32_t len,
                                               uint64_t hash)
{
    return log_full(j, JR_SWIN, 0, index, addr, len, hash);
}

OTAUP_RAMFUNC int otaup_journal_scratch_sector(otaup_journal *j, uint32_t index, uint32_t addr, uint32_t len,
                                               uint32_t crc)
{
    return log_full(j, JR_SSEC, 0, index, addr, len, crc);
}

OTAUP_RAMFUNC int otaup_journal_ponr(otaup_journal *j)
{
    return log_rec(j, JR_PONR, 0, 0);
}

OTAUP_RAMFUNC int otaup_journal_switch(otaup_journal *j, uint8_t slot)
{
    return log_rec(j, JR_SWITCH, 0, slot & 1u);
}

OTAUP_RAMFUNC int otaup_journal_end(otaup_journal *j, int32_t result)
{
    return log_rec(j, JR_END, 0, (uint32_t)result);
}

OTAUP_RAMFUNC int otaup_journal_restore(otaup_journal *j, uint8_t region, uint8_t state)
{
    return log_rec(j, JR_RESTORE, state | ((uint32_t)region << 8), 0);
}
