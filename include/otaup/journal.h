/*
 * otaup — the applier's power-safe journal in flash.
 *
 * The journal is where the terminal remembers, across resets, how far an
 * update went: which session runs, the next step to execute, whether a
 * step's content waits in the scratch area, whether the point of no return
 * was passed, which A/B slot boots, how the last session ended.
 *
 * On-flash layout (docs/porting.md §4, "Behaviour under power loss"): an
 * area of at least two sectors. Each sector holds fixed-size slots of max(32, write_size)
 * bytes; slot 0 is the sector header {magic, sequence number}, written
 * LAST when the sector is (re)filled, so a sector counts only once it is
 * complete. Records are appended to the free slots in order, each in one
 * program operation, each with its own CRC-32: a torn record is simply
 * skipped. When the active sector is full, a snapshot of the state is
 * written to the next sector (erase, records, header with sequence + 1);
 * the old sector stays valid until the new header exists, so compaction is
 * itself power-safe. Nothing is ever programmed twice between erases.
 *
 * Terminal-side code: C99, no heap, no OS; a journal is used by one
 * thread at a time (its flash callbacks must not call back into it). A
 * bootloader needs only
 * otaup_journal_mount() and otaup_journal_get() (or
 * otaup_journal_boot_slot()).
 */
#ifndef OTAUP_JOURNAL_H
#define OTAUP_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest slot (= write_size when above 32) the journal supports; it costs
 *  that many bytes of stack. Default: 32 in a terminal-only build, 4096
 *  (the largest write size a geometry may declare) in a host build, whose
 *  tools and simulated terminals model any flash. */
#ifndef OTAUP_CONFIG_JOURNAL_SLOT_MAX
#if OTAUP_TERMINAL_ONLY_BUILD
#define OTAUP_CONFIG_JOURNAL_SLOT_MAX 32u
#else
#define OTAUP_CONFIG_JOURNAL_SLOT_MAX 4096u
#endif
#endif
#if OTAUP_CONFIG_JOURNAL_SLOT_MAX < 32u
#error "OTAUP_CONFIG_JOURNAL_SLOT_MAX must be at least 32"
#endif

/** Slots each journal sector must hold: the header, the largest state
 *  snapshot (6 records) and one free slot, so that appends go on between
 *  compactions. A slot is max(32, write_size) bytes. */
#define OTAUP_JOURNAL_MIN_SLOTS 8u
/** The smallest journal sector for flash programmed in units of `ws` bytes. */
#define OTAUP_JOURNAL_SECTOR_MIN(ws) (OTAUP_JOURNAL_MIN_SLOTS * ((ws) > 32u ? (uint32_t)(ws) : 32u))

/** Session states. */
#define OTAUP_JS_NONE 0u     /**< no session ever / journal empty */
#define OTAUP_JS_ACTIVE 1u   /**< a session is running (or was, before a reset) */
#define OTAUP_JS_ENDED 2u    /**< the last session ended; see `result` */

/* Layouts: the same values as otaup/delta.h (identical definitions). */
#define OTAUP_LAYOUT_INPLACE 0u /**< rewrite the running slot in place */
#define OTAUP_LAYOUT_AB 1u      /**< read the source slot, write the other slot */

/** What the scratch area holds for the next step. */
#define OTAUP_JSCRATCH_NONE 0u
#define OTAUP_JSCRATCH_WINDOW 1u  /**< step `scratch_step`'s staged window (hash) */
#define OTAUP_JSCRATCH_SECTOR 2u  /**< new content of sector scratch_addr (crc) */

/** Restore states of a user-data region. */
#define OTAUP_JRESTORE_NONE 0u
#define OTAUP_JRESTORE_BUSY 1u  /**< region erased/partly written: restore again */
#define OTAUP_JRESTORE_DONE 2u

/** The state folded from the journal's records. */
typedef struct otaup_journal_state {
    uint8_t session;       /**< OTAUP_JS_* */
    uint8_t layout;        /**< OTAUP_LAYOUT_* of the session */
    uint8_t target_slot;   /**< A/B: slot the session writes (0 or 1) */
    uint8_t boot_slot;     /**< A/B: slot that boots; survives sessions (0 = A) */
    uint8_t ponr;          /**< 1: point of no return passed (in-place) */
    uint8_t scratch;       /**< OTAUP_JSCRATCH_* */
    uint8_t restore;       /**< OTAUP_JRESTORE_* of restore_region */
    uint8_t restore_region;
    uint32_t session_id;
    uint64_t delta_id;     /**< identifies the delta / target of the session */
    uint32_t next_step;    /**< first step not yet done */
    uint32_t scratch_step;
    uint32_t scratch_addr; /**< WINDOW: window address; SECTOR: sector address */
    uint32_t scratch_len;
    uint64_t scratch_hash; /**< WINDOW: XXH3-64 of the window; SECTOR: CRC-32 */
    int32_t result;        /**< ENDED: 0 (new image complete) or the error */
    uint32_t records;      /**< valid records read or written in the active sector */
    uint32_t seq;          /**< sequence number of the active sector */
} otaup_journal_state;

/** A mounted journal. Plain struct: put it anywhere; no heap. */
typedef struct otaup_journal {
    const otaup_flash *flash;
    uint32_t addr;       /**< journal area (whole sectors) */
    uint32_t len;
    uint32_t slot;       /**< slot size */
    uint32_t sec_addr;   /**< active sector (valid when sec_len != 0) */
    uint32_t sec_len;
    uint32_t pos;        /**< offset of the next free slot in the active sector */
    otaup_journal_state st;
} otaup_journal;

/**
 * Mount the journal in [addr, addr+len) of `flash`: whole sectors, at
 * least two. Reads only (a fresh or damaged journal reads as empty; the
 * first record written starts it). A slot that reads neither as a valid
 * record nor as erased is read a second time, so that one misread bit is
 * not taken for a torn record or header. Returns 0, OTAUP_E_GEOMETRY (area not
 * sector-aligned, fewer than two sectors, write_size above
 * OTAUP_CONFIG_JOURNAL_SLOT_MAX, a sector too small for 8 slots: a
 * header, the largest state snapshot of 6 records and a free slot) or a
 * flash read error.
 */
int otaup_journal_mount(otaup_journal *j, const otaup_flash *flash, uint32_t addr, uint32_t len);

/** The current state (valid after a successful mount). */
const otaup_journal_state *otaup_journal_get(const otaup_journal *j);

/**
 * Boot decision for a bootloader: the A/B slot to boot (0 or 1) from the
 * journal in [addr, addr+len); 0 if the journal is empty. A negative error
 * code (that of otaup_journal_mount: OTAUP_E_FLASH_READ when the flash
 * reported a failed read) when the journal could not be read: then no slot
 * is known to be whole, so boot nothing on a guess; read again, or stay in
 * the updater.
 */
int otaup_journal_boot_slot(const otaup_flash *flash, uint32_t addr, uint32_t len);

/* ---- records (each returns 0 or a flash error; state changes only when
 *      the record is durable) ---------------------------------------------- */

/** A session begins: resets progress (next_step 0, no scratch, no ponr). */
int otaup_journal_begin(otaup_journal *j, uint32_t session_id, uint64_t delta_id,
                        uint8_t layout, uint8_t target_slot);
/** Step `index` is complete (next_step = index + 1; scratch released). */
int otaup_journal_step_done(otaup_journal *j, uint32_t index);
/** Step `index`'s staged window is in scratch, verified (hash = XXH3-64).
 *  Scratch belongs to an active session: outside one (and in a journal
 *  read back) a scratch record changes no state, as a compaction's
 *  snapshot would not keep it. Likewise otaup_journal_scratch_sector. */
int otaup_journal_scratch_window(otaup_journal *j, uint32_t index, uint32_t addr, uint32_t len,
                                 uint64_t hash);
/** The new content of sector [addr, addr+len) for step `index` is in scratch (CRC-32). */
int otaup_journal_scratch_sector(otaup_journal *j, uint32_t index, uint32_t addr, uint32_t len,
                                 uint32_t crc);
/** Point of no return: the running image is about to change. */
int otaup_journal_ponr(otaup_journal *j);
/** A/B switch: `slot` boots from now on (one atomic record). */
int otaup_journal_switch(otaup_journal *j, uint8_t slot);
/** The session ends with `result` (0: new image complete; else why not). */
int otaup_journal_end(otaup_journal *j, int32_t result);
/** Restore of user-data region `region` changes state (OTAUP_JRESTORE_*).
 *  Also outside a session (the applier accepts RESTORE_DATA then): the
 *  state, and every compaction's snapshot, keep it until a BEGIN. */
int otaup_journal_restore(otaup_journal *j, uint8_t region, uint8_t state);

/** CRC-32 (IEEE 802.3, reflected), continuing from `crc` (start with 0). */
uint32_t otaup_journal_crc32(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_JOURNAL_H */
