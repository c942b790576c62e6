/*
 * otaup — registry crypto: AES-256-GCM sealing of backups and wrapping of
 * per-terminal keys (docs/server.md, "Key handling"). Private header.
 */
#ifndef OTAUP_SERVER_REGCRYPT_H
#define OTAUP_SERVER_REGCRYPT_H

#include <stddef.h>
#include <stdint.h>

#define OTAUP_REGCRYPT_NONCE 12
#define OTAUP_REGCRYPT_TAG 16
/** sealed = nonce || ciphertext || tag */
#define OTAUP_REGCRYPT_OVERHEAD (OTAUP_REGCRYPT_NONCE + OTAUP_REGCRYPT_TAG)
/** a wrapped 32-byte key */
#define OTAUP_REGCRYPT_WRAPPED_LEN (32 + OTAUP_REGCRYPT_OVERHEAD)

/** Fill buf with random bytes from the OS. 0 or OTAUP_E_IO. */
int otaup_regcrypt_random(void *buf, size_t len);
/** Zero memory in a way the compiler keeps. */
void otaup_regcrypt_wipe(void *buf, size_t len);
/** XXH3-128 halves to 16 bytes: low64 LE then high64 LE. */
void otaup_regcrypt_hash128_bytes(uint64_t low, uint64_t high, uint8_t out[16]);

/** Wrap a terminal key under the master key; out has OTAUP_REGCRYPT_WRAPPED_LEN bytes. */
int otaup_regcrypt_wrap(const uint8_t master[32], const char *terminal, const uint8_t key[32],
                        uint8_t *out);
/** Unwrap; OTAUP_E_DECRYPT if the master key is wrong or the bytes were changed. */
int otaup_regcrypt_unwrap(const uint8_t master[32], const char *terminal, const uint8_t *in,
                          size_t len, uint8_t key[32]);
/** Seal len bytes; out has len + OTAUP_REGCRYPT_OVERHEAD bytes. */
int otaup_regcrypt_seal(const uint8_t key[32], const char *terminal, uint32_t region,
                        const uint8_t *plain, size_t len, uint8_t *out);
/** Open; out has len - OTAUP_REGCRYPT_OVERHEAD bytes. OTAUP_E_DECRYPT on failure. */
int otaup_regcrypt_open(const uint8_t key[32], const char *terminal, uint32_t region,
                        const uint8_t *in, size_t len, uint8_t *out);

#endif
