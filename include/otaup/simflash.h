/*
 * otaup — simulated NOR flash (host side: tests, examples, the CLI).
 *
 * A model of the NOR flash found on microcontrollers, strict enough to
 * catch every mistake an applier can make:
 *   - erase works on whole sectors and sets every byte to geo.erased;
 *   - program works in units of geo.write_size at aligned addresses, may
 *     only move bits away from geo.erased (clear them when it is 0xFF),
 *     and fails with OTAUP_E_NOT_ERASED on a unit that
 *     was programmed since its last erase or does not read as erased
 *     (a unit is never programmed twice between erases);
 *   - optional file backing: the content lives in a file, written through
 *     after every operation, so a simulated power cut leaves the file as
 *     the flash would be;
 *   - a timing model (per sector erase, per byte programmed) for
 *     upgrade-time estimates, wear counters per sector, statistics;
 *   - an operation log (to prove "flash untouched") and an optional read
 *     log that marks reads of bytes changed since a mark;
 *   - power cut: after N write operations (erase or program) the device
 *     loses power; the N-th operation may be torn (a program leaves a
 *     prefix programmed and one unit with random-looking bits, an erase
 *     leaves a sector half erased with random-looking bits). From then on
 *     every call returns OTAUP_E_POWER_CUT until otaup_simflash_power_on();
 *   - a failed operation with power on (otaup_simflash_fail_after): an
 *     erase or program the driver reports failed, done in part or not;
 *   - a faulty read with power on (otaup_simflash_read_fault): a read the
 *     driver reports failed, or one that returns a wrong bit.
 *
 * Server-side code (C11, allocates). It fills an otaup_flash so that the
 * terminal-side applier drives it exactly as it would drive real flash.
 */
#ifndef OTAUP_SIMFLASH_H
#define OTAUP_SIMFLASH_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/flash.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Version of otaup_simflash_options understood by this library. */
#define OTAUP_SIMFLASH_OPTIONS_VERSION 1

/** Options for otaup_simflash_new(). Initialise with OTAUP_SIMFLASH_OPTIONS_INIT. */
typedef struct otaup_simflash_options {
    unsigned version;          /**< OTAUP_SIMFLASH_OPTIONS_VERSION */
    otaup_geometry geo;        /**< geometry to simulate (checked) */
    /** Backing file, or NULL for RAM only. An existing file is loaded
     * (shorter files are padded with erased bytes, longer ones refused);
     * a missing file is created fully erased. */
    const char *path;
    uint32_t erase_us_per_sector; /**< fixed time of one sector erase (µs) */
    uint32_t erase_us_per_kib;    /**< plus this per KiB of the sector (µs) */
    uint32_t prog_ns_per_byte;    /**< time per byte programmed (ns) */
    uint32_t prog_us_per_op;      /**< fixed overhead per program call (µs) */
    int log_ops;               /**< non-zero: keep the operation log */
    int log_reads;             /**< non-zero: also log reads (implies log_ops) */
    uint64_t seed;             /**< seed of the torn-operation bit patterns */
} otaup_simflash_options;

/** Defaults: timing of a typical 40 nm MCU flash (0.3 ms/KiB erase, 10 ns/byte program). */
#define OTAUP_SIMFLASH_OPTIONS_INIT \
    { OTAUP_SIMFLASH_OPTIONS_VERSION, { 0, 0, 0, 0, { { 0, 0 } } }, NULL, 1000u, 300u, 10u, 10u, 0, 0, 1u }

/** Fill *opts with the defaults (same as OTAUP_SIMFLASH_OPTIONS_INIT). */
void otaup_simflash_options_init(otaup_simflash_options *opts);

/** One entry of the operation log. */
typedef enum otaup_simflash_op_kind {
    OTAUP_SIMFLASH_READ = 1,
    OTAUP_SIMFLASH_PROG = 2,
    OTAUP_SIMFLASH_ERASE = 3
} otaup_simflash_op_kind;

typedef struct otaup_simflash_op {
    uint8_t kind;      /**< otaup_simflash_op_kind */
    uint8_t torn;      /**< 1 if this operation was torn (power cut or failed operation), or a faulty read */
    uint8_t stale;     /**< READ: 1 if it read bytes changed since the last mark */
    int32_t result;    /**< what the call returned */
    uint32_t addr;
    uint32_t len;
    uint64_t seq;      /**< write-operation number (erase/prog), 1-based; 0 for reads */
} otaup_simflash_op;

/** Statistics since creation or the last otaup_simflash_stats_reset(). */
typedef struct otaup_simflash_stats {
    uint64_t ops;              /**< write operations (erase + program calls) */
    uint64_t erase_ops;        /**< erase calls */
    uint64_t sectors_erased;   /**< sectors erased (an erase call may cover several) */
    uint64_t bytes_erased;
    uint64_t prog_ops;         /**< program calls */
    uint64_t bytes_programmed;
    uint64_t read_ops;
    uint64_t bytes_read;
    uint64_t time_us;          /**< estimated flash busy time */
    uint64_t read_faults;      /**< reads made faulty by otaup_simflash_read_fault() */
} otaup_simflash_stats;

typedef struct otaup_simflash otaup_simflash;

/**
 * Create a simulated flash. Returns 0 and sets *out, or OTAUP_E_GEOMETRY,
 * OTAUP_E_INVAL (bad options version), OTAUP_E_IO (file), OTAUP_E_NOMEM.
 */
int otaup_simflash_new(const otaup_simflash_options *opts, otaup_simflash **out);

/** Free the flash (flushes and closes the backing file). NULL is fine. */
void otaup_simflash_free(otaup_simflash *sim);

/** The flash callbacks and geometry that drive this simulator. */
const otaup_flash *otaup_simflash_flash(otaup_simflash *sim);

/** Direct access to the content: device offset 0 is geo.base. */
uint8_t *otaup_simflash_data(otaup_simflash *sim);
/** Size of the device in bytes. */
uint32_t otaup_simflash_size(const otaup_simflash *sim);

/**
 * Set content outside the operation model (no log, no timing, no power
 * cut): used to lay down an initial image. Bytes equal to the erased value
 * leave their unit erasable. Returns 0 or OTAUP_E_RANGE.
 */
int otaup_simflash_load(otaup_simflash *sim, uint32_t addr, const void *buf, uint32_t len);

/** Write the content to the backing file now (no-op without one). */
int otaup_simflash_flush(otaup_simflash *sim);

/**
 * Arm a power cut: the next `after_ops` write operations (erase or
 * program calls) are performed, the last of them torn if `torn` is set
 * (it then returns OTAUP_E_POWER_CUT); every call after them returns
 * OTAUP_E_POWER_CUT. after_ops = 0 disarms.
 */
void otaup_simflash_cut_after(otaup_simflash *sim, uint64_t after_ops, int torn);

/**
 * Arm one failed operation, power staying on: the `after_ops`-th write
 * operation from now (erase or program call) fails with
 * OTAUP_E_FLASH_ERASE or OTAUP_E_FLASH_PROG, as a driver reports a
 * failed erase or program. Without `torn` it changes nothing; with it, it
 * is done in part exactly as a torn operation of a power cut. The
 * operations after it work. after_ops = 0 disarms.
 */
void otaup_simflash_fail_after(otaup_simflash *sim, uint64_t after_ops, int torn);

/** What otaup_simflash_read_fault() does to the read it picks. */
#define OTAUP_SIMFLASH_RFAULT_FAIL 1 /**< returns OTAUP_E_FLASH_READ; the buffer holds random-looking bytes */
#define OTAUP_SIMFLASH_RFAULT_FLIP 2 /**< returns 0, but one random bit of the data read is inverted */

/**
 * Arm one faulty read, power staying on: the `after_reads`-th read call
 * from now (counted as stats read_ops counts them) fails or returns a
 * flipped bit, as `kind` says (OTAUP_SIMFLASH_RFAULT_*). The flash content
 * does not change; the reads after it work. after_reads = 0 disarms.
 */
void otaup_simflash_read_fault(otaup_simflash *sim, uint64_t after_reads, int kind);

/** 1 if the simulated power is off (a cut happened). */
int otaup_simflash_is_cut(const otaup_simflash *sim);

/** Restore power (after a cut): content stays as the cut left it. */
void otaup_simflash_power_on(otaup_simflash *sim);

/** Statistics (time estimate, counters). */
void otaup_simflash_stats_get(const otaup_simflash *sim, otaup_simflash_stats *st);
/** Zero the statistics (the wear counts and the operation log stay). */
void otaup_simflash_stats_reset(otaup_simflash *sim);

/** Erase count of sector `index` (geometry order), 0 if out of range. */
uint32_t otaup_simflash_wear(const otaup_simflash *sim, uint32_t index);

/**
 * The operation log: *count receives the number of entries. The pointer
 * is valid until the next flash operation.
 */
const otaup_simflash_op *otaup_simflash_log(const otaup_simflash *sim, size_t *count);
/** Empty the log. */
void otaup_simflash_log_clear(otaup_simflash *sim);
/** Number of logged write operations (erase/prog, torn or not, failed or not) since index `from`. */
size_t otaup_simflash_log_writes_since(const otaup_simflash *sim, size_t from);

/**
 * Mark: from now on, reads of bytes that an erase or program changes
 * after this call are flagged `stale` in the read log and counted.
 */
void otaup_simflash_mark(otaup_simflash *sim);
/** Number of reads since the mark that touched bytes changed after it. */
uint64_t otaup_simflash_stale_reads(const otaup_simflash *sim);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_SIMFLASH_H */
