/*
 * otaup apply: the terminal's security checks (--pub and friends).
 */
#ifndef OTAUP_CLI_SEC_APPLY_H
#define OTAUP_CLI_SEC_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/exec.h"
#include "otaup/journal.h"
#include "otaup/sign.h"

#define SEC_APPLY_MAX_KEYS 8

typedef struct sec_apply {
    otaup_crypto crypto;
    otaup_sec_key keys[SEC_APPLY_MAX_KEYS];
    size_t nkeys;
    const char *model;          /* NULL: the manifest's own */
    uint32_t counter;           /* installed security counter */
    uint32_t version;           /* installed software version */
    int given;                  /* --model, --counter or --installed-version given */
    otaup_sec sec;
} sec_apply;

/* Usage lines of the options. */
extern const char sec_apply_usage[];

/* Consume argv[*i] (and its value) if it is one of the security options:
 * 1 consumed, 0 not ours, -1 bad value, -2 a key file that cannot be
 * read (message printed). */
int sec_apply_arg(sec_apply *s, int argc, char **argv, int *i);

/*
 * Before the executor starts (after the journal is mounted): with keys,
 * verify the delta as the terminal does (nothing written on refusal) and
 * install the verifier's hooks and its delta id; without keys, a signed
 * delta gets hooks that only skip its chain records. Returns 0 or the
 * refusal (message printed).
 */
int sec_apply_begin(sec_apply *s, const uint8_t *delta, size_t body_off, const otaup_flash *flash,
                    const otaup_journal *j, const otaup_region *window, otaup_exec_hooks *hooks, uint64_t *delta_id);

/*
 * Without flash: with keys, the checks of sec_apply_begin() that do not
 * depend on what flash holds (a signed delta, its signature by a trusted
 * key, its manifest, chain and the terminal's model, counter and
 * version); 0 without keys. For a FLASH that holds the new image
 * already, so that --pub never lets a delta it would refuse pass.
 * Returns 0 or the refusal (nothing printed).
 */
int sec_apply_check(sec_apply *s, const uint8_t *delta, size_t len);

#endif
