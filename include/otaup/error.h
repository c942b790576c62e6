/*
 * otaup — error codes.
 *
 * One error space for the whole library: 0 is success, negative values are
 * errors, positive values are counts (bytes, frames, ...) where a function
 * documents them. Values are pinned: once published, a value never changes
 * meaning. New codes take the next free value inside their module's range.
 *
 * Ranges:
 *   -1 ..  -19   general
 *   -20 .. -39   command protocol codec
 *   -40 .. -59   delta format and planner
 *   -60 .. -89   flash, applier, journal
 *   -90 .. -109  security (manifest, signatures, keys)
 *   -110 .. -139 server side (session driver, registry)
 *   -1000 and below: reserved for integrator callbacks (OTAUP_E_USER)
 *
 * Callbacks supplied by the integrator (flash, link, crypto) return 0 or a
 * negative value; the library passes a negative value it does not know
 * through unchanged, so an integrator can use codes <= OTAUP_E_USER.
 *
 * C99; safe to include alone.
 */
#ifndef OTAUP_ERROR_H
#define OTAUP_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. Every value is pinned; see the file header. */
typedef enum otaup_error {
    OTAUP_OK = 0,

    /* general */
    OTAUP_E_INVAL = -1,        /**< invalid argument */
    OTAUP_E_NOMEM = -2,        /**< out of memory (server side only) */
    OTAUP_E_BUFFER = -3,       /**< caller buffer too small */
    OTAUP_E_RANGE = -4,        /**< value out of range */
    OTAUP_E_IO = -5,           /**< I/O error (files, sockets) */
    OTAUP_E_AGAIN = -6,        /**< would block: call again later */
    OTAUP_E_TIMEOUT = -7,      /**< timed out */
    OTAUP_E_UNSUPPORTED = -8,  /**< feature or version not supported */
    OTAUP_E_STATE = -9,        /**< call not valid in the current state */
    OTAUP_E_INTERNAL = -10,    /**< internal invariant violated (a bug) */
    OTAUP_E_NOT_FOUND = -11,   /**< no such object */
    OTAUP_E_EXISTS = -12,      /**< object already exists */
    OTAUP_E_CANCELED = -13,    /**< operation canceled or aborted */
    OTAUP_E_CLOSED = -14,      /**< link or stream closed by the peer */
    OTAUP_E_OVERFLOW = -15,    /**< arithmetic overflow in a size or address */

    /* command protocol codec */
    OTAUP_E_FRAME_MAGIC = -20,     /**< bytes are not a frame (bad magic) */
    OTAUP_E_FRAME_VERSION = -21,   /**< unsupported protocol version */
    OTAUP_E_FRAME_HEADER = -22,    /**< header check byte mismatch */
    OTAUP_E_FRAME_CRC = -23,       /**< frame CRC-32 mismatch */
    OTAUP_E_FRAME_TRUNCATED = -24, /**< frame shorter than its header says */
    OTAUP_E_FRAME_OVERSIZE = -25,  /**< frame larger than the agreed maximum */
    OTAUP_E_MSG_TYPE = -26,        /**< unknown message type */
    OTAUP_E_MSG_LENGTH = -27,      /**< payload length wrong for its type */
    OTAUP_E_MSG_FIELD = -28,       /**< malformed or out-of-range field */
    OTAUP_E_FRAME_FLAGS = -29,     /**< reserved flag or field not zero */
    OTAUP_E_FRAME_GARBAGE = -30,   /**< bytes skipped while resynchronising */
    OTAUP_E_SEQ = -31,             /**< sequence number out of order */
    OTAUP_E_DUPLICATE = -32,       /**< duplicate sequence number */
    OTAUP_E_FRAGMENT = -33,        /**< fragmented message out of order or too big */

    /* delta format and planner */
    OTAUP_E_DELTA_MAGIC = -40,     /**< not an otaup delta */
    OTAUP_E_DELTA_VERSION = -41,   /**< unsupported delta format version */
    OTAUP_E_DELTA_CORRUPT = -42,   /**< malformed delta record or header */
    OTAUP_E_DELTA_TRUNCATED = -43, /**< delta ends too early */
    OTAUP_E_SOURCE_MISMATCH = -44, /**< source image is not the one planned for */
    OTAUP_E_TARGET_MISMATCH = -45, /**< result differs from the planned target */
    OTAUP_E_GEOMETRY = -46,        /**< flash geometry invalid or not as planned */
    OTAUP_E_INFLATE = -47,         /**< compressed payload is corrupt */
    OTAUP_E_DATA_UNDERRUN = -48,   /**< operation needs payload not yet given */
    OTAUP_E_PLAN = -49,            /**< planner cannot produce a valid plan */
    OTAUP_E_HASH = -50,            /**< hash of a range differs from expected */
    OTAUP_E_SIG_FORMAT = -51,      /**< malformed block signature */
    OTAUP_E_LIMIT = -52,           /**< delta needs more resources than allowed */

    /* flash, applier, journal */
    OTAUP_E_FLASH_READ = -60,      /**< flash read failed */
    OTAUP_E_FLASH_PROG = -61,      /**< flash program failed */
    OTAUP_E_FLASH_ERASE = -62,     /**< flash erase failed */
    OTAUP_E_NOT_ERASED = -63,      /**< program into a cell that is not erased */
    OTAUP_E_ALIGN = -64,           /**< address or length misaligned */
    OTAUP_E_WINDOW = -65,          /**< address outside the writable windows */
    OTAUP_E_PROTECTED = -66,       /**< range overlaps journal, scratch or updater */
    OTAUP_E_JOURNAL = -67,         /**< journal unreadable or inconsistent */
    OTAUP_E_NO_SESSION = -68,      /**< command for a session not started */
    OTAUP_E_POWER_CUT = -69,       /**< simulated power cut (simulator only) */
    OTAUP_E_STAGING = -70,         /**< operation exceeds the staging buffer */
    OTAUP_E_VERIFY = -71,          /**< read-back after program differs */
    OTAUP_E_SCRATCH = -72,         /**< scratch area missing or too small */
    OTAUP_E_REGION = -73,          /**< unknown or invalid region */
    OTAUP_E_SESSION = -74,         /**< session id does not match */

    /* security */
    OTAUP_E_SIGNATURE = -90,       /**< signature does not verify */
    OTAUP_E_KEY = -91,             /**< key unknown, malformed or not trusted */
    OTAUP_E_MANIFEST = -92,        /**< malformed manifest */
    OTAUP_E_MODEL = -93,           /**< manifest for another model */
    OTAUP_E_ROLLBACK = -94,        /**< security counter lower than installed */
    OTAUP_E_CHAIN = -95,           /**< operation does not match the hash chain */
    OTAUP_E_CRYPTO = -96,          /**< crypto backend failure */
    OTAUP_E_UNSIGNED = -97,        /**< signature required but absent */
    OTAUP_E_DECRYPT = -98,         /**< authenticated decryption failed */
    OTAUP_E_OLDER = -99,           /**< target version older than installed, no signed downgrade policy */

    /* server side */
    OTAUP_E_DB = -110,             /**< registry database error */
    OTAUP_E_DB_SCHEMA = -111,      /**< registry schema too new or damaged */
    OTAUP_E_NO_RELEASE = -112,     /**< no release applies to this terminal */
    OTAUP_E_DOWNGRADE = -113,      /**< release would be a downgrade */
    OTAUP_E_CONSENT = -114,        /**< user has not requested the upgrade */
    OTAUP_E_BACKUP = -115,         /**< backup missing, damaged or incomplete */
    OTAUP_E_PEER = -116,           /**< peer violated the protocol */
    OTAUP_E_RETRIES = -117,        /**< retransmission limit reached */
    OTAUP_E_WITHDRAWN = -118,      /**< release withdrawn: no longer offered */
    OTAUP_E_IN_PROGRESS = -119,    /**< sessions in progress to this release */
    OTAUP_E_SAME_IMAGE = -120,     /**< image already published under another release */

    OTAUP_E_USER = -1000           /**< first value free for integrators */
} otaup_error;

/**
 * A short English description of an error code. Never returns NULL: a
 * value with no entry gives "integrator-defined error" at or below
 * OTAUP_E_USER, "success (count)" when positive and "unknown error"
 * otherwise. With OTAUP_CONFIG_NO_ERROR_STRINGS defined at
 * library build time it returns only "ok" (0 and counts) or "otaup error"
 * (negative values), and otaup_errname() always NULL (saves flash on tiny parts).
 */
const char *otaup_strerror(int err);

/** Name of the enum constant for a code ("OTAUP_E_FRAME_CRC"), or NULL.
 *  Both functions return static strings: thread-safe, never to be freed. */
const char *otaup_errname(int err);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_ERROR_H */
