/*
 * otaup — a simulated terminal (host side: otaup-term, the end-to-end
 * tests and the load benchmark).
 *
 * One terminal = a simulated NOR flash (otaup/simflash.h, in RAM or in a
 * file) laid out like a small device, the real terminal applier
 * (otaup/apply.h) on top of it, an identity (model, version, build time)
 * that the terminal updates itself after a successful upgrade, and a
 * user-data region filled with sample personal data.
 *
 * Flash map, from 0x08000000, whole sectors: image slot 0 [, slot 1 for
 * A/B] | scratch | journal (2 sectors) | user data | updater (1 sector).
 *
 * The identity lives in PATH.meta next to a file-backed flash; the
 * version a session installs is noted there when the session starts and
 * taken over once the flash holds that image, so a power cut at any point
 * leaves a terminal that reports what it really runs.
 *
 * Server side of the library (C11, allocates), like simflash.
 */
#ifndef OTAUP_SIMTERM_H
#define OTAUP_SIMTERM_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/apply.h"
#include "otaup/config.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OTAUP_SIMTERM_OPTIONS_VERSION 3
/** Where the simulated flash starts. */
#define OTAUP_SIMTERM_BASE 0x08000000u

typedef struct otaup_simterm_options {
    unsigned version;          /**< OTAUP_SIMTERM_OPTIONS_VERSION */
    const char *terminal_id;   /**< 1..63 bytes (NULL: the one stored with the flash file) */
    const char *model;         /**< 1..63 bytes (NULL: the one stored with the flash file) */
    uint8_t layout;            /**< OTAUP_LAYOUT_INPLACE (default) or OTAUP_LAYOUT_AB */
    uint32_t sector_size;      /**< 0: 4096 */
    uint32_t slot_size;        /**< bytes of an image slot (0: 256 KiB), rounded up to sectors */
    uint32_t user_size;        /**< personal-data region (0: 8 KiB), rounded up to sectors */
    uint32_t write_size;       /**< program unit (0: 8) */
    uint32_t max_frame;        /**< 0: 1024 */
    uint32_t max_msg;          /**< 0: 2048 */
    uint16_t window;           /**< frames advertised (0: 8) */
    uint32_t staging;          /**< staging buffer (0: one sector, at least OTAUP_DELTA_STAGING_MIN) */
    uint16_t max_ops;          /**< deferred records per step (0: 64) */
    uint8_t window_bits;       /**< inflate window (0: 12) */
    uint32_t retransmit_ms;    /**< the applier's retransmission timeout (0: 1000) */
    const char *flash_path;    /**< NULL: flash in RAM; else in this file, identity in PATH.meta */
    /** 1: simulate an upgrade that damages the user data: right after a
     * VERIFY of the image passed, bytes of the user region are overwritten
     * (once per terminal). A VERIFY that failed (the image is not the new
     * one, and the session is given up or resumed) damages nothing. */
    int damage_user_data;
    /* version 2 */
    /**
     * Trusted public keys ("built into the firmware"; copied). With at
     * least one, the terminal verifies every update as docs/security.md
     * §5.1 says, before its first flash operation: it installs the
     * verifier's hooks on the applier (and so advertises
     * OTAUP_CAP_SIGNED), refuses START with the verifier's code (NACK,
     * nothing written) for an unsigned update, an unknown key, a bad
     * signature, another model, an older security counter (kept with the
     * flash, taken over after each successful upgrade) or version, and
     * reports the SHA-256 of its image in INFO. Needs mbedTLS.
     */
    const otaup_sec_key *keys;
    size_t nkeys;
    /** Non-zero: keep the simulated flash's operation log (tests). */
    int log_ops;
    /* version 3 */
    /**
     * The terminal's device key (32 bytes, copied; NULL: none). With one,
     * its backups are sealed on the terminal (docs/security.md §7): it
     * advertises OTAUP_CAP_SEALED, sends its user data AES-256-GCM sealed
     * and opens and authenticates every restored chunk before writing it.
     * Needs mbedTLS (OTAUP_E_UNSUPPORTED without).
     */
    const uint8_t *device_key;
} otaup_simterm_options;

#define OTAUP_SIMTERM_OPTIONS_INIT \
    { OTAUP_SIMTERM_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, NULL, 0, 0, NULL }

/** Fill *o with the defaults (OTAUP_SIMTERM_OPTIONS_INIT). */
void otaup_simterm_options_init(otaup_simterm_options *o);

typedef struct otaup_simterm otaup_simterm;

/** Create (loads an existing flash file and identity). OTAUP_E_INVAL,
 *  OTAUP_E_GEOMETRY (a sector smaller than the journal's 8 slots of
 *  max(32, write size) bytes, or not a multiple of the write size; a map
 *  past the end of the 32-bit address space; an existing flash file that
 *  is not a regular file of exactly the map's size, see
 *  otaup_simterm_map_size(): refused before it is written to),
 *  OTAUP_E_IO, OTAUP_E_NOMEM. A flash file that does not exist is made,
 *  erased. */
int otaup_simterm_new(const otaup_simterm_options *o, otaup_simterm **out);

/** The size in bytes of the flash map that otaup_simterm_new() would
 *  make of *o (the layout stored in PATH.meta winning, as there): what a
 *  terminal's flash file holds. 0, OTAUP_E_INVAL, OTAUP_E_GEOMETRY,
 *  OTAUP_E_NOMEM. */
int otaup_simterm_map_size(const otaup_simterm_options *o, uint32_t *size);
/** Free the terminal (its flash file is flushed and closed). NULL is ignored. */
void otaup_simterm_free(otaup_simterm *t);

/**
 * Make it a terminal running `image` (version, build time): the flash is
 * erased, the image written to slot 0, the user region filled with sample
 * personal data, the journal cleared. Returns 0, OTAUP_E_RANGE (image
 * larger than a slot), OTAUP_E_IO.
 */
int otaup_simterm_provision(otaup_simterm *t, const uint8_t *image, size_t len, const char *version,
                            uint64_t build_time);

/** 1 if the flash holds a provisioned terminal (identity known). */
int otaup_simterm_provisioned(const otaup_simterm *t);

/**
 * Power on (after a cut too) and start the applier from what the flash
 * holds: journal, identity. The link and clock callbacks are the
 * applier's (otaup/apply.h). Returns 0, the flash's error when the journal
 * cannot be read (OTAUP_E_FLASH_READ from a faulty read: it boots nothing
 * on a guess; boot again), or the applier's init error.
 */
int otaup_simterm_boot(otaup_simterm *t, int (*send)(void *ctx, const uint8_t *buf, size_t len), void *send_ctx,
                       uint32_t (*now_ms)(void *ctx), void *clock_ctx);

/** Its applier (valid after otaup_simterm_boot()) and its simulated flash. */
otaup_apply *otaup_simterm_apply(otaup_simterm *t);
otaup_simflash *otaup_simterm_flash(otaup_simterm *t);

/**
 * Call after every otaup_apply_feed()/poll(): takes over a new identity
 * after a successful upgrade, simulates damage when asked to.
 */
void otaup_simterm_step(otaup_simterm *t);

/** What it reports: version, build time, image size. */
const char *otaup_simterm_version(const otaup_simterm *t);
uint64_t otaup_simterm_build_time(const otaup_simterm *t);
/** XXH3-128 of the image in the boot slot (reported size). Returns its size. */
uint32_t otaup_simterm_image_hash(otaup_simterm *t, uint8_t hash[16]);
/** 1 if the user region holds exactly the sample personal data. */
int otaup_simterm_user_intact(otaup_simterm *t);
/** The sample personal data (user_size bytes) into out; returns the size. */
size_t otaup_simterm_user_sample(const otaup_simterm *t, uint8_t *out, size_t cap);
/** Steps done of the session in progress (and their total, from its delta header). */
uint32_t otaup_simterm_steps(const otaup_simterm *t, uint32_t *total);
/** Its terminal id and model. */
const char *otaup_simterm_id(const otaup_simterm *t);
const char *otaup_simterm_model(const otaup_simterm *t);
/** The last NOTIFY text ("" if none). */
const char *otaup_simterm_notice(const otaup_simterm *t);
/** The security counter of the installed image (0 until a signed update raised it). */
uint32_t otaup_simterm_counter(const otaup_simterm *t);
/**
 * 0, or the code with which the terminal refused the last update it was
 * offered since boot (its verifier's verdict on START: OTAUP_E_UNSIGNED,
 * _KEY, _SIGNATURE, _ROLLBACK, ...): nothing was written for it.
 */
int otaup_simterm_refused(const otaup_simterm *t);
/**
 * 1 if the update of the session since boot is a signed one whose
 * manifest verified: id receives the key id (OTAUP_KEY_ID_LEN bytes) of
 * the trusted key whose signature verified. The rest of the update (every
 * step, then the target hash before the commit) is verified as it runs:
 * a successful result means all of it verified. 0 otherwise.
 */
int otaup_simterm_signed_by(const otaup_simterm *t, uint8_t id[OTAUP_KEY_ID_LEN]);
/** Flash map: image slot (`slot` 0/1), user region. */
uint32_t otaup_simterm_slot_addr(const otaup_simterm *t, unsigned slot);
uint32_t otaup_simterm_slot_size(const otaup_simterm *t);
uint32_t otaup_simterm_sectors(const otaup_simterm *t);
uint32_t otaup_simterm_user_addr(const otaup_simterm *t);
uint32_t otaup_simterm_user_size(const otaup_simterm *t);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_SIMTERM_H */
