/*
 * Test helpers of the security suites: a RAM flash with an operation
 * counter, manifests signed with throw-away keys, a tiny record encoder.
 */
#ifndef OTAUP_TESTS_SECTEST_H
#define OTAUP_TESTS_SECTEST_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/flash.h"
#include "otaup/sign.h"

/* RAM flash: erase to 0xFF, program only into erased units, counts writes */
typedef struct sectest_flash {
    otaup_flash flash;
    uint8_t *mem;
    uint32_t size;
    unsigned writes;  /* erase + program calls */
    unsigned reads;
} sectest_flash;

void sectest_flash_init(sectest_flash *f, uint32_t base, uint32_t sector, uint32_t count, uint32_t write_size);
void sectest_flash_free(sectest_flash *f);
void sectest_flash_load(sectest_flash *f, uint32_t addr, const void *data, uint32_t len);

/* a deterministic pseudo-random buffer */
void sectest_fill(uint8_t *buf, size_t len, uint32_t seed);

/* the mbedTLS backend (fails the test if absent) */
const otaup_crypto *sectest_crypto(void);

/* sign an encoded manifest (malloc'd, *len updated) with key k */
uint8_t *sectest_sign(const uint8_t *unsigned_mf, size_t len, const otaup_key *k, size_t *out_len);

/* encode + sign m with k: returns malloc'd bytes */
uint8_t *sectest_manifest(const otaup_manifest *m, const otaup_key *k, size_t *out_len);

/* append one record [type][varint len][body] to buf at *pos (buf large enough) */
void sectest_put_record(uint8_t *buf, size_t *pos, uint8_t type, const uint8_t *body, size_t len);
/* append a varint to body at *pos */
void sectest_put_varint(uint8_t *body, size_t *pos, uint32_t v);


/* What a test delta container is made of. */
typedef struct sectest_container_spec {
    otaup_geometry geo;
    uint8_t layout;
    unsigned wbits;
    uint32_t src_addr, dst_addr;
    const uint8_t *old_img;
    uint32_t old_len;
    const uint8_t *new_img;
    uint32_t new_len;
    uint32_t scratch_addr, scratch_len;
    uint32_t staging, max_ops;
    uint32_t nsteps;
    const uint8_t *body; /* outer record stream */
    size_t body_len;
} sectest_container_spec;

/* Wrap an outer record stream into a delta container (malloc'd). */
uint8_t *sectest_container(const sectest_container_spec *c, size_t *out_len);

/* Offsets of the SYNC records in a body: out[i] = (index, offset); returns the count. */
size_t sectest_syncs(const uint8_t *body, size_t len, uint32_t *index, size_t *offset, size_t max);

#endif
