/*
 * otaup — flash geometry helpers. C99, no heap, no OS.
 */
#include "otaup/error.h"
#include "otaup/flash.h"

OTAUP_RAMFUNC void otaup_geometry_uniform(otaup_geometry *geo, uint32_t base, uint32_t sector_size,
                            uint32_t count, uint32_t write_size)
{
    uint32_t i;
    if (geo == NULL) {
        return;
    }
    geo->base = base;
    geo->write_size = write_size;
    geo->erased = 0xFFu;
    geo->nruns = 1;
    for (i = 0; i < OTAUP_MAX_SECTOR_RUNS; i++) {
        geo->runs[i].count = 0;
        geo->runs[i].size = 0;
    }
    geo->runs[0].count = count;
    geo->runs[0].size = sector_size;
}

OTAUP_RAMFUNC int otaup_geometry_check(const otaup_geometry *geo)
{
    uint64_t total = 0;
    uint32_t i;
    if (geo == NULL || geo->nruns == 0 || geo->nruns > OTAUP_MAX_SECTOR_RUNS) {
        return OTAUP_E_GEOMETRY;
    }
    if (geo->write_size == 0 || geo->write_size > 4096u ||
        (geo->write_size & (geo->write_size - 1u)) != 0) {
        return OTAUP_E_GEOMETRY;
    }
    if (geo->base % geo->write_size != 0) {
        return OTAUP_E_GEOMETRY;
    }
    for (i = 0; i < geo->nruns; i++) {
        const otaup_sector_run *r = &geo->runs[i];
        if (r->count == 0 || r->size == 0 || r->size % geo->write_size != 0) {
            return OTAUP_E_GEOMETRY;
        }
        total += (uint64_t)r->count * r->size;
        if (total > 0xFFFFFFFFull) {
            return OTAUP_E_GEOMETRY;
        }
    }
    if ((uint64_t)geo->base + total > 0x100000000ull) {
        return OTAUP_E_GEOMETRY;
    }
    return OTAUP_OK;
}

OTAUP_RAMFUNC uint32_t otaup_geometry_size(const otaup_geometry *geo)
{
    uint32_t i, total = 0;
    if (otaup_geometry_check(geo) != OTAUP_OK) {
        return 0;
    }
    for (i = 0; i < geo->nruns; i++) {
        total += geo->runs[i].count * geo->runs[i].size;
    }
    return total;
}

OTAUP_RAMFUNC uint32_t otaup_geometry_sector_count(const otaup_geometry *geo)
{
    uint32_t i, n = 0;
    if (otaup_geometry_check(geo) != OTAUP_OK) {
        return 0;
    }
    for (i = 0; i < geo->nruns; i++) {
        n += geo->runs[i].count;
    }
    return n;
}

OTAUP_RAMFUNC int32_t otaup_geometry_sector_at(const otaup_geometry *geo, uint32_t addr,
                                 uint32_t *start, uint32_t *size)
{
    uint32_t i, index = 0, pos;
    if (otaup_geometry_check(geo) != OTAUP_OK) {
        return OTAUP_E_GEOMETRY;
    }
    if (addr < geo->base) {
        return OTAUP_E_RANGE;
    }
    pos = geo->base;
    for (i = 0; i < geo->nruns; i++) {
        const otaup_sector_run *r = &geo->runs[i];
        uint32_t off = addr - pos;
        uint32_t span = r->count * r->size;
        if (off < span) {
            uint32_t k = off / r->size;
            if (start != NULL) {
                *start = pos + k * r->size;
            }
            if (size != NULL) {
                *size = r->size;
            }
            return (int32_t)(index + k);
        }
        index += r->count;
        if (span > 0xFFFFFFFFu - pos) {
            break;
        }
        pos += span;
    }
    return OTAUP_E_RANGE;
}

OTAUP_RAMFUNC int otaup_geometry_sector(const otaup_geometry *geo, uint32_t index,
                          uint32_t *start, uint32_t *size)
{
    uint32_t i, pos;
    if (otaup_geometry_check(geo) != OTAUP_OK) {
        return OTAUP_E_GEOMETRY;
    }
    pos = geo->base;
    for (i = 0; i < geo->nruns; i++) {
        const otaup_sector_run *r = &geo->runs[i];
        if (index < r->count) {
            if (start != NULL) {
                *start = pos + index * r->size;
            }
            if (size != NULL) {
                *size = r->size;
            }
            return OTAUP_OK;
        }
        index -= r->count;
        pos += r->count * r->size;
    }
    return OTAUP_E_RANGE;
}

OTAUP_RAMFUNC int otaup_geometry_is_sector_aligned(const otaup_geometry *geo, uint32_t addr, uint32_t len)
{
    uint32_t start, end_start;
    if (otaup_geometry_sector_at(geo, addr, &start, NULL) < 0 || start != addr) {
        return 0;
    }
    if (len == 0) {
        return 1;
    }
    if (len - 1u > 0xFFFFFFFFu - addr) {
        return 0; /* past 2^32 */
    }
    /* the end is aligned if it is the end of the map (which may be 2^32,
     * where both sums are 0) or a sector start */
    if (addr + len == geo->base + otaup_geometry_size(geo)) {
        return 1;
    }
    if (otaup_geometry_sector_at(geo, addr + len, &end_start, NULL) < 0) {
        return 0;
    }
    return end_start == addr + len;
}
