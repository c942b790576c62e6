/*
 * otaup — error strings. C99, no heap, no OS.
 */
#include "otaup/error.h"

#include <stddef.h>

#ifndef OTAUP_CONFIG_NO_ERROR_STRINGS
struct otaup_err_entry {
    int code;
    const char *name;
    const char *text;
};

static const struct otaup_err_entry otaup_err_table[] = {
    { OTAUP_OK, "OTAUP_OK", "success" },
    { OTAUP_E_INVAL, "OTAUP_E_INVAL", "invalid argument" },
    { OTAUP_E_NOMEM, "OTAUP_E_NOMEM", "out of memory (server side only)" },
    { OTAUP_E_BUFFER, "OTAUP_E_BUFFER", "caller buffer too small" },
    { OTAUP_E_RANGE, "OTAUP_E_RANGE", "value out of range" },
    { OTAUP_E_IO, "OTAUP_E_IO", "I/O error (files, sockets)" },
    { OTAUP_E_AGAIN, "OTAUP_E_AGAIN", "would block: call again later" },
    { OTAUP_E_TIMEOUT, "OTAUP_E_TIMEOUT", "timed out" },
    { OTAUP_E_UNSUPPORTED, "OTAUP_E_UNSUPPORTED", "feature or version not supported" },
    { OTAUP_E_STATE, "OTAUP_E_STATE", "call not valid in the current state" },
    { OTAUP_E_INTERNAL, "OTAUP_E_INTERNAL", "internal invariant violated (a bug)" },
    { OTAUP_E_NOT_FOUND, "OTAUP_E_NOT_FOUND", "no such object" },
    { OTAUP_E_EXISTS, "OTAUP_E_EXISTS", "object already exists" },
    { OTAUP_E_CANCELED, "OTAUP_E_CANCELED", "operation canceled or aborted" },
    { OTAUP_E_CLOSED, "OTAUP_E_CLOSED", "link or stream closed by the peer" },
    { OTAUP_E_OVERFLOW, "OTAUP_E_OVERFLOW", "arithmetic overflow in a size or address" },
    { OTAUP_E_FRAME_MAGIC, "OTAUP_E_FRAME_MAGIC", "bytes are not a frame (bad magic)" },
    { OTAUP_E_FRAME_VERSION, "OTAUP_E_FRAME_VERSION", "unsupported protocol version" },
    { OTAUP_E_FRAME_HEADER, "OTAUP_E_FRAME_HEADER", "header check byte mismatch" },
    { OTAUP_E_FRAME_CRC, "OTAUP_E_FRAME_CRC", "frame CRC-32 mismatch" },
    { OTAUP_E_FRAME_TRUNCATED, "OTAUP_E_FRAME_TRUNCATED", "frame shorter than its header says" },
    { OTAUP_E_FRAME_OVERSIZE, "OTAUP_E_FRAME_OVERSIZE", "frame larger than the agreed maximum" },
    { OTAUP_E_MSG_TYPE, "OTAUP_E_MSG_TYPE", "unknown message type" },
    { OTAUP_E_MSG_LENGTH, "OTAUP_E_MSG_LENGTH", "payload length wrong for its type" },
    { OTAUP_E_MSG_FIELD, "OTAUP_E_MSG_FIELD", "malformed or out-of-range field" },
    { OTAUP_E_FRAME_FLAGS, "OTAUP_E_FRAME_FLAGS", "reserved flag or field not zero" },
    { OTAUP_E_FRAME_GARBAGE, "OTAUP_E_FRAME_GARBAGE", "bytes skipped while resynchronising" },
    { OTAUP_E_SEQ, "OTAUP_E_SEQ", "sequence number out of order" },
    { OTAUP_E_DUPLICATE, "OTAUP_E_DUPLICATE", "duplicate sequence number" },
    { OTAUP_E_FRAGMENT, "OTAUP_E_FRAGMENT", "fragmented message out of order or too big" },
    { OTAUP_E_DELTA_MAGIC, "OTAUP_E_DELTA_MAGIC", "not an otaup delta" },
    { OTAUP_E_DELTA_VERSION, "OTAUP_E_DELTA_VERSION", "unsupported delta format version" },
    { OTAUP_E_DELTA_CORRUPT, "OTAUP_E_DELTA_CORRUPT", "malformed delta record or header" },
    { OTAUP_E_DELTA_TRUNCATED, "OTAUP_E_DELTA_TRUNCATED", "delta ends too early" },
    { OTAUP_E_SOURCE_MISMATCH, "OTAUP_E_SOURCE_MISMATCH", "source image is not the one planned for" },
    { OTAUP_E_TARGET_MISMATCH, "OTAUP_E_TARGET_MISMATCH", "result differs from the planned target" },
    { OTAUP_E_GEOMETRY, "OTAUP_E_GEOMETRY", "flash geometry invalid or not as planned" },
    { OTAUP_E_INFLATE, "OTAUP_E_INFLATE", "compressed payload is corrupt" },
    { OTAUP_E_DATA_UNDERRUN, "OTAUP_E_DATA_UNDERRUN", "operation needs payload not yet given" },
    { OTAUP_E_PLAN, "OTAUP_E_PLAN", "planner cannot produce a valid plan" },
    { OTAUP_E_HASH, "OTAUP_E_HASH", "hash of a range differs from expected" },
    { OTAUP_E_SIG_FORMAT, "OTAUP_E_SIG_FORMAT", "malformed block signature" },
    { OTAUP_E_LIMIT, "OTAUP_E_LIMIT", "delta needs more resources than allowed" },
    { OTAUP_E_FLASH_READ, "OTAUP_E_FLASH_READ", "flash read failed" },
    { OTAUP_E_FLASH_PROG, "OTAUP_E_FLASH_PROG", "flash program failed" },
    { OTAUP_E_FLASH_ERASE, "OTAUP_E_FLASH_ERASE", "flash erase failed" },
    { OTAUP_E_NOT_ERASED, "OTAUP_E_NOT_ERASED", "program into a cell that is not erased" },
    { OTAUP_E_ALIGN, "OTAUP_E_ALIGN", "address or length misaligned" },
    { OTAUP_E_WINDOW, "OTAUP_E_WINDOW", "address outside the writable windows" },
    { OTAUP_E_PROTECTED, "OTAUP_E_PROTECTED", "range overlaps journal, scratch or updater" },
    { OTAUP_E_JOURNAL, "OTAUP_E_JOURNAL", "journal unreadable or inconsistent" },
    { OTAUP_E_NO_SESSION, "OTAUP_E_NO_SESSION", "command for a session not started" },
    { OTAUP_E_POWER_CUT, "OTAUP_E_POWER_CUT", "simulated power cut (simulator only)" },
    { OTAUP_E_STAGING, "OTAUP_E_STAGING", "operation exceeds the staging buffer" },
    { OTAUP_E_VERIFY, "OTAUP_E_VERIFY", "read-back after program differs" },
    { OTAUP_E_SCRATCH, "OTAUP_E_SCRATCH", "scratch area missing or too small" },
    { OTAUP_E_REGION, "OTAUP_E_REGION", "unknown or invalid region" },
    { OTAUP_E_SESSION, "OTAUP_E_SESSION", "session id does not match" },
    { OTAUP_E_SIGNATURE, "OTAUP_E_SIGNATURE", "signature does not verify" },
    { OTAUP_E_KEY, "OTAUP_E_KEY", "key unknown, malformed or not trusted" },
    { OTAUP_E_MANIFEST, "OTAUP_E_MANIFEST", "malformed manifest" },
    { OTAUP_E_MODEL, "OTAUP_E_MODEL", "manifest for another model" },
    { OTAUP_E_ROLLBACK, "OTAUP_E_ROLLBACK", "security counter lower than installed" },
    { OTAUP_E_CHAIN, "OTAUP_E_CHAIN", "operation does not match the hash chain" },
    { OTAUP_E_CRYPTO, "OTAUP_E_CRYPTO", "crypto backend failure" },
    { OTAUP_E_UNSIGNED, "OTAUP_E_UNSIGNED", "signature required but absent" },
    { OTAUP_E_DECRYPT, "OTAUP_E_DECRYPT", "authenticated decryption failed" },
    { OTAUP_E_OLDER, "OTAUP_E_OLDER", "target version older than installed, no signed downgrade policy" },
    { OTAUP_E_DB, "OTAUP_E_DB", "registry database error" },
    { OTAUP_E_DB_SCHEMA, "OTAUP_E_DB_SCHEMA", "registry schema too new or damaged" },
    { OTAUP_E_NO_RELEASE, "OTAUP_E_NO_RELEASE", "no release applies to this terminal" },
    { OTAUP_E_DOWNGRADE, "OTAUP_E_DOWNGRADE", "release would be a downgrade" },
    { OTAUP_E_CONSENT, "OTAUP_E_CONSENT", "user has not requested the upgrade" },
    { OTAUP_E_BACKUP, "OTAUP_E_BACKUP", "backup missing, damaged or incomplete" },
    { OTAUP_E_PEER, "OTAUP_E_PEER", "peer violated the protocol" },
    { OTAUP_E_RETRIES, "OTAUP_E_RETRIES", "retransmission limit reached" },
    { OTAUP_E_WITHDRAWN, "OTAUP_E_WITHDRAWN", "release withdrawn: no longer offered" },
    { OTAUP_E_IN_PROGRESS, "OTAUP_E_IN_PROGRESS", "sessions in progress to this release" },
    { OTAUP_E_SAME_IMAGE, "OTAUP_E_SAME_IMAGE", "image already published under another release" },
    { OTAUP_E_USER, "OTAUP_E_USER", "first value free for integrators" },};

static const struct otaup_err_entry *otaup_err_find(int err)
{
    size_t i;
    for (i = 0; i < sizeof(otaup_err_table) / sizeof(otaup_err_table[0]); i++) {
        if (otaup_err_table[i].code == err) {
            return &otaup_err_table[i];
        }
    }
    return NULL;
}

const char *otaup_strerror(int err)
{
    const struct otaup_err_entry *e = otaup_err_find(err);
    if (e != NULL) {
        return e->text;
    }
    if (err <= OTAUP_E_USER) {
        return "integrator-defined error";
    }
    return err > 0 ? "success (count)" : "unknown error";
}

const char *otaup_errname(int err)
{
    const struct otaup_err_entry *e = otaup_err_find(err);
    return e != NULL ? e->name : NULL;
}
#else
const char *otaup_strerror(int err)
{
    return err >= 0 ? "ok" : "otaup error";
}

const char *otaup_errname(int err)
{
    (void)err;
    return NULL;
}
#endif
