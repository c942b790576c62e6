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


/* Options shared by `otaup sign` and `otaup delta --sign`. */
typedef struct sec_sign_args {
    const char *key;
    otaup_sign_options opt;
    uint8_t src_hash[32], dst_hash[32];
    const char *manifest_opt; /* the first manifest option given (--model, --old ...), or NULL */
    int quiet;                /* print nothing on success */
} sec_sign_args;

extern const char sec_sign_usage[];
void sec_sign_args_init(sec_sign_args *a);
/* Consume argv[*i] (and its value) if it is a manifest option: 1 consumed,
 * 0 not ours, -1 bad value (message printed). */
int sec_sign_arg(sec_sign_args *a, const char *cmd, int argc, char **argv, int *i);
/* Sign in_path (or add a signature when already signed) into out_path: exit code. */
int sec_sign_file(const char *cmd, const sec_sign_args *a, const char *in_path, const char *out_path);
/* The same for a delta in memory (named `name` in messages; the caller
 * keeps it); `copy`: write it to out_path even when it is left unchanged. */
int sec_sign_bytes(const char *cmd, const sec_sign_args *a, const char *name, const uint8_t *delta, size_t len,
                   const char *out_path, int copy);

#endif
