/*
 * Helpers shared by the delta commands of the otaup tool (delta, sig,
 * inspect): files, numbers with suffixes, progress on stderr.
 */
#ifndef OTAUP_CLI_DCLI_H
#define OTAUP_CLI_DCLI_H

#include <stddef.h>
#include <stdint.h>

/* Read a whole file of at most 4 GiB - 1 into malloc'ed memory, with a
 * NUL after its last byte (for text); NULL on error, message printed with
 * `cmd`. */
uint8_t *dcli_read_file(const char *cmd, const char *path, size_t *len);
/* Map a regular file read-only (read it into memory otherwise). *mapped
 * tells dcli_unmap_file how to release it. NULL on error (message printed). */
const uint8_t *dcli_map_file(const char *cmd, const char *path, size_t *len, int *mapped);
void dcli_unmap_file(const uint8_t *p, size_t len, int mapped);
/* The file a write to `path` replaces: the file a symbolic link points to
 * (resolved, into buf), so that the link stays a link; else path. */
const char *dcli_write_target(const char *path, char *buf, size_t cap);
/* Write a file atomically: a temporary file of this process's own beside
 * it (PATH.tmp.PID), then a rename. Returns 0 or -1 (message printed). */
int dcli_write_file(const char *cmd, const char *path, const void *data, size_t len);
/* The same with the mode of the new file (before the umask) and, with sync,
 * its data on disk (fsync) before the rename. */
int dcli_write_file_ex(const char *cmd, const char *path, const void *data, size_t len, int mode, int sync);
/* dcli_write_file_ex in two halves. dcli_write_tmp writes the temporary
 * file (its name into tmp; the file the rename replaces, a symbolic link
 * resolved, into target; both cap bytes): 0, or -1 (message printed,
 * nothing left). dcli_write_commit renames it over target: 0, or -1
 * (message printed, the temporary removed). */
int dcli_write_tmp(const char *cmd, const char *path, const void *data, size_t len, int mode, int sync, char *tmp,
                   char *target, size_t cap);
int dcli_write_commit(const char *cmd, const char *tmp, const char *target);
/* Outputs that are only meaningful together (a key's three files). */
typedef struct dcli_out {
    const char *path;
    const void *data;
    size_t len;
    int mode;
} dcli_out;
#define DCLI_SET_MAX 4
/* Replace the set outs[0..n) (n <= DCLI_SET_MAX) as one, as far as POSIX
 * allows: every temporary file is written (and, with sync, flushed to
 * disk) before the first rename, and a name a rename cannot replace (a
 * directory) is refused before it; a rename that fails all the same puts
 * back the old files renamed before it (kept meanwhile under a hard link,
 * NAME.old.PID) and removes the new ones. On -1 (message printed) the old
 * set is as it was and no temporary file is left. */
int dcli_write_set(const char *cmd, size_t n, const dcli_out *outs, int sync);
/* 1 when a and b name the same file (the same device and inode; the same
 * path when either does not exist), else 0. */
int dcli_same_file(const char *a, const char *b);
/* -1 after a message when `out` is one of inputs[0..n) (NULL entries
 * skipped; what[i] names inputs[i] in the message), else 0. An output
 * never replaces an input of its command (docs/cli.md). */
int dcli_output_clash(const char *cmd, const char *out, const char *const *inputs, const char *const *what,
                      size_t n);
/* A number as every option of the tool reads it: decimal digits, or 0x and
 * hex digits (no sign, no spaces, no octal). *end: the first byte after
 * it. 0, or -1 (not a number, or above 2^64 - 1). */
int dcli_parse_num(const char *s, unsigned long long *v, const char **end);
/* Parse "123", "0x1000", "64K", "1M", "4KiB". Returns 0 or -1. */
int dcli_parse_u32(const char *s, uint32_t *out);
/* Progress on stderr once an operation has run for more than a second. */
void dcli_progress_start(const char *cmd, int quiet);
void dcli_progress(const char *phase, uint64_t done, uint64_t total, void *payload);
void dcli_progress_end(void);

#endif
