/*
 * otaup — flash geometry and flash callbacks.
 *
 * Shared by the planner (server side, which plans for a target geometry),
 * the terminal applier (which drives a real or simulated flash) and the
 * simulated NOR flash. C99, no heap; safe to include alone.
 *
 * Geometry model: a flash device (or the part of it otaup may touch) is a
 * run of sectors starting at `base`. Sectors may differ in size
 * (e.g. 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB on a Cortex-M4): they are
 * given as runs of (count, size). Programming works in units of
 * `write_size` bytes at addresses aligned to `write_size`; an erased byte
 * reads as `erased` (0xFF on NOR flash). All addresses are absolute
 * 32-bit bus addresses.
 */
#ifndef OTAUP_FLASH_H
#define OTAUP_FLASH_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Maximum number of (count, size) runs in a sector map. */
#define OTAUP_MAX_SECTOR_RUNS 8

/** A run of `count` consecutive sectors of `size` bytes each. */
typedef struct otaup_sector_run {
    uint32_t count;
    uint32_t size;
} otaup_sector_run;

/** Flash geometry. A zeroed struct is invalid; see otaup_geometry_check(). */
typedef struct otaup_geometry {
    uint32_t base;       /**< address of the first sector */
    uint32_t write_size; /**< program unit and alignment: a power of two, 1 .. 4096 */
    uint8_t erased;      /**< value of an erased byte (0xFF for NOR flash) */
    uint8_t nruns;       /**< number of entries used in runs[] (1 .. OTAUP_MAX_SECTOR_RUNS) */
    otaup_sector_run runs[OTAUP_MAX_SECTOR_RUNS]; /**< sectors from base upwards */
} otaup_geometry;

/**
 * Fill *geo with a uniform geometry: `count` sectors of `sector_size`
 * bytes from `base`, program unit `write_size`, erased value 0xFF.
 */
void otaup_geometry_uniform(otaup_geometry *geo, uint32_t base, uint32_t sector_size,
                            uint32_t count, uint32_t write_size);

/**
 * Check every invariant: 1 .. OTAUP_MAX_SECTOR_RUNS runs, every count > 0,
 * every sector size a multiple of write_size, write_size a power of two in
 * 1 .. 4096, base aligned to write_size, the whole range inside 32 bits.
 * Returns 0 or OTAUP_E_GEOMETRY.
 */
int otaup_geometry_check(const otaup_geometry *geo);

/** Total size in bytes covered by the sector map (0 if invalid). */
uint32_t otaup_geometry_size(const otaup_geometry *geo);

/** Number of sectors (0 if invalid). */
uint32_t otaup_geometry_sector_count(const otaup_geometry *geo);

/**
 * Find the sector that contains `addr`. On success returns its index and
 * sets *start and *size (either may be NULL). Returns OTAUP_E_RANGE if
 * addr is outside the map.
 */
int32_t otaup_geometry_sector_at(const otaup_geometry *geo, uint32_t addr,
                                 uint32_t *start, uint32_t *size);

/**
 * Start address and size of sector number `index`. Returns 0 or
 * OTAUP_E_RANGE.
 */
int otaup_geometry_sector(const otaup_geometry *geo, uint32_t index,
                          uint32_t *start, uint32_t *size);

/**
 * 1 if [addr, addr+len) starts and ends on sector boundaries (len may be
 * 0), 0 otherwise.
 */
int otaup_geometry_is_sector_aligned(const otaup_geometry *geo, uint32_t addr, uint32_t len);

struct otaup_flash;

/**
 * Flash callbacks. Each returns 0 on success or a negative error code
 * (an otaup code such as OTAUP_E_FLASH_PROG, or an integrator code
 * <= OTAUP_E_USER, which is passed through unchanged).
 *
 *  - read:  any address and length inside the geometry.
 *  - prog:  addr and len are multiples of geo.write_size; every target
 *           unit is erased (the library never programs a unit twice
 *           between erases).
 *  - erase: addr and len cover whole sectors (possibly several).
 *  - sync:  optional (may be NULL); called after the journal is written
 *           and before a point of no return, for devices with write caches.
 *
 * `context` is the integrator's; the library never touches it.
 */
typedef struct otaup_flash {
    void *context;
    int (*read)(const struct otaup_flash *flash, uint32_t addr, void *buf, uint32_t len);
    int (*prog)(const struct otaup_flash *flash, uint32_t addr, const void *buf, uint32_t len);
    int (*erase)(const struct otaup_flash *flash, uint32_t addr, uint32_t len);
    int (*sync)(const struct otaup_flash *flash);
    otaup_geometry geo;
} otaup_flash;

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_FLASH_H */
