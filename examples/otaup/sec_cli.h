/*
 * otaup command-line tool: helpers of the key, sign and verify commands.
 */
#ifndef OTAUP_CLI_SEC_H
#define OTAUP_CLI_SEC_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/sign.h"

/* Read a whole file (malloc; NUL-terminated for text). NULL and a message on failure. */
uint8_t *sec_cli_read(const char *cmd, const char *path, size_t *len);
/* Write a file (atomically: temp + rename); mode for a new file. 0 or -1 with a message. */
int sec_cli_write(const char *cmd, const char *path, const void *data, size_t len, int mode);
/* Load a key file (PEM private or public, or raw 65 bytes). NULL and a message on failure. */
otaup_key *sec_cli_load_key(const char *cmd, const char *path);
/* Parse 64 hex digits. 0 or -1. */
int sec_cli_hex32(const char *s, uint8_t out[32]);
/* Print bytes as hex. */
void sec_cli_print_hex(const uint8_t *p, size_t n);
/* Parse an unsigned number (decimal or 0x hex) up to max. 0 or -1. */
int sec_cli_u64(const char *s, uint64_t max, uint64_t *out);

#endif
