/*
 * otaup — security: crypto interface, signed manifests, the per-step hash
 * chain, the terminal's verifier, sealed backups, keys.
 *
 * docs/security.md is the specification (threat model, manifest bytes,
 * chain, rules). This header has four parts:
 *
 *   1. otaup_crypto: a struct of callbacks (SHA-256, ECDSA P-256 verify,
 *      AES-256-GCM, random) so that firmware can plug in a hardware
 *      engine; otaup_crypto_mbedtls() fills it with the default backend.
 *   2. Manifests: parse (terminal, no heap), encode and sign (server).
 *   3. otaup_sec: the terminal's verifier. It checks the manifest before
 *      any flash operation, then every step of the record stream against
 *      the chain before the step writes, then the target image hash before
 *      the commit. The executor calls it through its hooks.
 *   4. Sealed backups (terminal and server) and signing keys (server).
 *
 * Terminal-side functions (C99, no heap, no global state) are marked
 * [terminal]; server-side ones [server] (they may allocate and say so);
 * functions that need the mbedTLS backend are marked [mbedtls] and exist
 * only in builds with mbedTLS (otaup/features.h: OTAUP_HAVE_MBEDTLS).
 *
 * C99; safe to include alone.
 */
#ifndef OTAUP_SIGN_H
#define OTAUP_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "otaup/config.h"
#include "otaup/delta.h"
#include "otaup/exec.h"
#include "otaup/flash.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== */
/* 1. Crypto interface                                                    */
/* ===================================================================== */

#define OTAUP_SHA256_LEN 32u     /**< SHA-256 digest */
#define OTAUP_P256_PUB_LEN 65u   /**< uncompressed public key: 04 || X || Y */
#define OTAUP_P256_SIG_LEN 64u   /**< signature r || s, big-endian, 32 bytes each */
#define OTAUP_AES256_KEY_LEN 32u /**< AES-256 key */
#define OTAUP_GCM_NONCE_LEN 12u  /**< GCM nonce */
#define OTAUP_GCM_TAG_LEN 16u    /**< GCM tag */
#define OTAUP_KEY_ID_LEN 8u      /**< key id: SHA-256 of the public key, first 8 bytes */

/**
 * Bytes reserved for one SHA-256 state of the backend (mbedTLS needs 108
 * on 64-bit hosts). A hardware engine that needs more (or only a handle)
 * overrides it through OTAUP_CONFIG_FILE.
 */
#ifndef OTAUP_SHA256_STATE_MAX
#define OTAUP_SHA256_STATE_MAX 128u
#endif

/** One SHA-256 state: opaque bytes, aligned for any backend struct. */
typedef struct otaup_sha256_state {
    union {
        uint8_t bytes[OTAUP_SHA256_STATE_MAX];
        uint64_t align_u64;
        void *align_ptr;
    } u;
} otaup_sha256_state;

/**
 * Crypto callbacks. Each returns 0 on success or a negative error:
 * OTAUP_E_CRYPTO for a backend failure, or an integrator code
 * <= OTAUP_E_USER, passed through unchanged. `context` is the
 * integrator's; the library never touches it.
 *
 *  - sha256_init/update/final: one hash over a caller-held state (several
 *    states may be live at once).
 *  - p256_verify: ECDSA P-256 over a 32-byte digest. 0 if the signature
 *    is valid, OTAUP_E_SIGNATURE if not, OTAUP_E_KEY if pub is not a
 *    valid point.
 *  - gcm_seal: AES-256-GCM encrypt in[0..len) to out[0..len) (out may equal
 *    in) and write the 16-byte tag. gcm_open: decrypt and check the tag
 *    (out may equal in: the terminal's sealed restore decrypts in place);
 *    OTAUP_E_DECRYPT if it does not match (out is then unspecified: the
 *    caller must not use it).
 *  - random: fill out with unpredictable bytes. May be NULL on terminals
 *    (only signers and terminals that draw random backup salts need it).
 */
typedef struct otaup_crypto {
    void *context;
    int (*sha256_init)(const struct otaup_crypto *c, otaup_sha256_state *st);
    int (*sha256_update)(const struct otaup_crypto *c, otaup_sha256_state *st,
                         const void *data, size_t len);
    int (*sha256_final)(const struct otaup_crypto *c, otaup_sha256_state *st,
                        uint8_t out[OTAUP_SHA256_LEN]);
    int (*p256_verify)(const struct otaup_crypto *c, const uint8_t pub[OTAUP_P256_PUB_LEN],
                       const uint8_t digest[OTAUP_SHA256_LEN], const uint8_t sig[OTAUP_P256_SIG_LEN]);
    int (*gcm_seal)(const struct otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OTAUP_GCM_TAG_LEN]);
    int (*gcm_open)(const struct otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out,
                    const uint8_t tag[OTAUP_GCM_TAG_LEN]);
    int (*random)(const struct otaup_crypto *c, void *out, size_t len);
} otaup_crypto;

/**
 * [mbedtls] Fill *c with the mbedTLS 2.28 backend. Stateless: no
 * allocation, no global state; `random` seeds a CTR-DRBG from the
 * platform's entropy source on every call. Returns 0, or OTAUP_E_INVAL.
 */
int otaup_crypto_mbedtls(otaup_crypto *c);

/** [terminal] SHA-256 of one buffer through the interface. */
int otaup_sha256(const otaup_crypto *c, const void *data, size_t len, uint8_t out[OTAUP_SHA256_LEN]);

/**
 * [terminal] SHA-256 of flash [addr, addr+len) read through the flash
 * callbacks in pieces of buf_len bytes (buf may be NULL: a small stack
 * buffer is used). Returns 0 or the flash/crypto error.
 */
int otaup_sha256_flash(const otaup_crypto *c, const otaup_flash *flash, uint32_t addr, uint32_t len,
                       uint8_t *buf, size_t buf_len, uint8_t out[OTAUP_SHA256_LEN]);

/** [terminal] HMAC-SHA-256 (RFC 2104) through the interface. */
int otaup_hmac_sha256(const otaup_crypto *c, const uint8_t *key, size_t key_len, const void *data,
                      size_t len, uint8_t out[OTAUP_SHA256_LEN]);

/**
 * [terminal] AES-256-GCM wrappers that check their arguments (NULL
 * buffers with a non-zero length, a missing callback) before calling the
 * backend. Open returns OTAUP_E_DECRYPT on a wrong key, nonce, associated
 * data, ciphertext or tag. Sealed backups (otaup_seal_*) use them; the
 * registry encrypts at rest with mbedTLS's GCM directly.
 */
int otaup_aead_seal(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[OTAUP_GCM_TAG_LEN]);
int otaup_aead_open(const otaup_crypto *c, const uint8_t key[OTAUP_AES256_KEY_LEN],
                    const uint8_t nonce[OTAUP_GCM_NONCE_LEN], const uint8_t *aad, size_t aad_len,
                    const uint8_t *in, size_t len, uint8_t *out, const uint8_t tag[OTAUP_GCM_TAG_LEN]);

/** [terminal] Key id of a public key: first 8 bytes of its SHA-256. */
int otaup_key_id(const otaup_crypto *c, const uint8_t pub[OTAUP_P256_PUB_LEN], uint8_t id[OTAUP_KEY_ID_LEN]);

/**
 * [terminal] Geometry digest (security.md §3.4): SHA-256 of the canonical
 * encoding of *geo. Returns 0, OTAUP_E_GEOMETRY (geo invalid) or a crypto
 * error.
 */
int otaup_geometry_digest(const otaup_crypto *c, const otaup_geometry *geo, uint8_t out[OTAUP_SHA256_LEN]);

/** [terminal] 1 if a[0..n) equals b[0..n), in time independent of the content. */
int otaup_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* ===================================================================== */
/* 2. Manifests                                                           */
/* ===================================================================== */

#define OTAUP_MANIFEST_VERSION 1u   /**< envelope format version */
#define OTAUP_MANIFEST_MAGIC "OTMF" /**< first 4 bytes */
#define OTAUP_MANIFEST_MAX_SIGS 4u  /**< signature entries accepted */
#define OTAUP_MANIFEST_SIG_ENTRY 73u /**< alg + key id + r || s */
#define OTAUP_MANIFEST_MODEL_MAX 64u /**< longest MODEL */
#define OTAUP_MANIFEST_NOTE_MAX 255u /**< longest NOTE */

/** Body field types (security.md §3.2). */
#define OTAUP_MF_MODEL 0x01u
#define OTAUP_MF_VERSION 0x02u
#define OTAUP_MF_COUNTER 0x03u
#define OTAUP_MF_POLICY 0x04u
#define OTAUP_MF_SOURCE 0x05u
#define OTAUP_MF_TARGET 0x06u
#define OTAUP_MF_SLOT 0x07u
#define OTAUP_MF_LAYOUT 0x08u
#define OTAUP_MF_CHAIN 0x09u
#define OTAUP_MF_DELTA 0x0Au
#define OTAUP_MF_NOTE 0x80u

/** POLICY flags. */
#define OTAUP_POLICY_ALLOW_DOWNGRADE 0x01u

/** Signature algorithm of an entry. */
#define OTAUP_SIG_ECDSA_P256_SHA256 1u

/** Chain algorithm and tag lengths. */
#define OTAUP_CHAIN_SHA256 1u
#define OTAUP_CHAIN_TAG_MIN 8u
#define OTAUP_CHAIN_TAG_MAX 32u
#define OTAUP_CHAIN_TAG_DEFAULT 16u
#define OTAUP_CHAIN_SALT_LEN 16u
/** Smallest tag a terminal accepts (security.md §4.2); overridable. */
#ifndef OTAUP_CONFIG_CHAIN_TAG_MIN
#define OTAUP_CONFIG_CHAIN_TAG_MIN 16u
#endif

/** Record type of the chain record in the inner stream (0x2B..0x2E are reserved for security records). */
#define OTAUP_REC_CHAIN 0x2Bu
/** The range the verifier refuses inside a unit, CHAIN excepted: the
 *  reserved 0x2C..0x2E and 0x2F (the protocol's BATCH, never a record). */
#define OTAUP_REC_SEC_FIRST 0x2Bu
#define OTAUP_REC_SEC_LAST 0x2Fu

/** One chain segment: its first step and that step's tag (encoding input). */
typedef struct otaup_chain_seg {
    uint32_t first_step;
    uint8_t tag[OTAUP_CHAIN_TAG_MAX];
} otaup_chain_seg;

/**
 * A manifest's fields. otaup_manifest_parse() fills it with pointers into
 * the input (model, note, seg_table, sigs: never copied);
 * otaup_manifest_encode() reads it (with `segs` instead of seg_table).
 */
typedef struct otaup_manifest {
    const uint8_t *model;      /**< MODEL bytes */
    uint32_t model_len;
    uint32_t version;          /**< VERSION: target software version */
    uint64_t build_time;       /**< VERSION: build time, seconds since 1970 */
    uint32_t counter;          /**< COUNTER: security counter */
    uint32_t policy;           /**< POLICY flags (0 when absent) */
    uint8_t has_source;        /**< 1 if SOURCE is present */
    uint8_t layout;            /**< LAYOUT: the delta header's OTAUP_LAYOUT_* (otaup/delta.h) */
    uint8_t has_delta;         /**< 1 if DELTA is present */
    uint8_t chain_alg;         /**< CHAIN: OTAUP_CHAIN_SHA256 */
    uint8_t tag_len;           /**< CHAIN: tag length 8..32 */
    otaup_region source;        /**< SOURCE range */
    uint8_t source_hash[OTAUP_SHA256_LEN];
    otaup_region target;        /**< TARGET range */
    uint8_t target_hash[OTAUP_SHA256_LEN];
    otaup_region slot;          /**< SLOT: every erase/program lies inside */
    uint8_t geometry_digest[OTAUP_SHA256_LEN];
    uint8_t delta_hash[OTAUP_SHA256_LEN]; /**< DELTA: SHA-256 of the container header */
    uint8_t salt[OTAUP_CHAIN_SALT_LEN];   /**< CHAIN salt */
    uint32_t nsteps;           /**< CHAIN: number of steps */
    uint32_t nseg;             /**< CHAIN: number of segments */
    const uint8_t *seg_table;  /**< parse: encoded segment entries */
    uint32_t seg_table_len;
    const otaup_chain_seg *segs; /**< encode: nseg segments (parse leaves NULL) */
    const uint8_t *note;       /**< NOTE text or NULL */
    uint32_t note_len;
    /* envelope (parse only) */
    uint32_t signed_len;       /**< bytes covered by the digest: 8 + body length */
    const uint8_t *sigs;       /**< signature entries */
    uint32_t nsigs;            /**< number of entries (0: unsigned) */
} otaup_manifest;

/**
 * [terminal] Parse a manifest in[0..len): envelope, every field, the
 * segment table and the signature entries' framing. No signature check.
 * Returns 0 or OTAUP_E_MANIFEST (malformed, truncated, unknown critical
 * field, trailing bytes), OTAUP_E_UNSUPPORTED (newer format version),
 * OTAUP_E_INVAL (NULL).
 */
int otaup_manifest_parse(const uint8_t *in, size_t len, otaup_manifest *m);

/** [terminal] The manifest digest: SHA-256 of the signed part. */
int otaup_manifest_digest(const otaup_crypto *c, const uint8_t *in, const otaup_manifest *m,
                          uint8_t digest[OTAUP_SHA256_LEN]);

/** A trusted public key (built into the firmware). */
typedef struct otaup_sec_key {
    uint8_t pub[OTAUP_P256_PUB_LEN];
} otaup_sec_key;

/**
 * [terminal] Check the signatures of a parsed manifest against the trusted
 * keys. Returns the index (>= 0) of the key that verified, or
 * OTAUP_E_UNSIGNED (no entries), OTAUP_E_KEY (no entry names a trusted
 * key), OTAUP_E_SIGNATURE (none verifies), or a crypto error.
 */
int otaup_manifest_verify(const otaup_crypto *c, const uint8_t *in, const otaup_manifest *m,
                          const otaup_sec_key *keys, size_t nkeys);

/**
 * [terminal] Segment lookup: find the entry whose first step is `step`.
 * Returns 0 and copies its tag (m->tag_len bytes), or OTAUP_E_NOT_FOUND.
 */
int otaup_manifest_segment(const otaup_manifest *m, uint32_t step, uint8_t *tag);

/**
 * [server] Encode the envelope with an empty signature area into
 * out[0..cap). Returns the length or OTAUP_E_BUFFER / OTAUP_E_INVAL
 * (missing or out-of-range fields: model 1..64 bytes, tag length 8..32,
 * segments strictly increasing from step 0, layout 0 or 1, ...).
 */
int otaup_manifest_encode(const otaup_manifest *m, uint8_t *out, size_t cap);

/**
 * [server] Append one signature entry to an encoded manifest buf[0..len)
 * (capacity cap): the signature by `pub`'s private key over the manifest
 * digest. Returns the new length, OTAUP_E_INVAL, OTAUP_E_BUFFER, or
 * OTAUP_E_MANIFEST (malformed, or already OTAUP_MANIFEST_MAX_SIGS
 * signatures; a key that signed already is not refused). The signature
 * itself comes from otaup_key_sign().
 */
int otaup_manifest_add_signature(const otaup_crypto *c, uint8_t *buf, size_t len, size_t cap,
                                 const uint8_t pub[OTAUP_P256_PUB_LEN],
                                 const uint8_t sig[OTAUP_P256_SIG_LEN]);

/* ===================================================================== */
/* 3. The terminal's verifier                                             */
/* ===================================================================== */

/** Terminal configuration for otaup_sec_begin(). */
typedef struct otaup_sec_config {
    const otaup_crypto *crypto;     /**< crypto backend */
    const otaup_flash *flash;       /**< to hash SOURCE and TARGET */
    /** The geometry this terminal reports (INFO) and updates are planned
     * for, checked against the manifest's geometry digest; NULL: flash->geo. */
    const otaup_geometry *geometry;
    const otaup_sec_key *keys;      /**< trusted public keys */
    size_t nkeys;
    const uint8_t *model;           /**< this terminal's model / compatibility id */
    size_t model_len;
    uint32_t installed_version;     /**< running software version */
    uint32_t installed_counter;     /**< security counter from tamper-resistant storage */
    uint8_t layouts;                /**< bit (1 << OTAUP_LAYOUT_*) per layout this terminal applies; 0: any */
    const otaup_region *windows;     /**< writable windows (as the applier's) */
    size_t nwindows;
    uint8_t *buf;                   /**< optional read buffer for hashing flash (e.g. the staging buffer) */
    size_t buf_len;
    uint8_t min_tag_len;            /**< 0: OTAUP_CONFIG_CHAIN_TAG_MIN */
    /**
     * The applier's journal state (NULL: none). When it shows an active
     * session whose delta_id is this manifest's (otaup_sec_delta_id), the
     * session resumes at its next_step: the source image, already partly
     * rewritten, is not hashed again (security.md §5).
     */
    const otaup_journal_state *journal;
} otaup_sec_config;

/**
 * The verifier's state: a plain struct (static storage or stack), no heap.
 * All fields are private except `manifest` (read-only after begin).
 */
typedef struct otaup_sec {
    otaup_manifest manifest;        /**< the verified manifest (read-only) */
    uint8_t digest[OTAUP_SHA256_LEN]; /**< its digest (journal it when the session begins) */
    const otaup_crypto *crypto;
    const otaup_flash *flash;
    const uint8_t *mf;              /* the manifest bytes (re-hashed at every SYNC) */
    uint8_t *buf;
    size_t buf_len;
    otaup_sha256_state hs;          /* running unit hash */
    uint8_t expect[OTAUP_CHAIN_TAG_MAX]; /* tag of the unit being read */
    uint8_t rec_head[OTAUP_CHAIN_TAG_MAX]; /* first body bytes of the current record */
    uint32_t rec_type;              /* current record: type, body bytes seen */
    uint32_t rec_seen;
    uint32_t unit;                  /* index of the unit being read */
    uint32_t next_commit;           /* next step that may be committed */
    uint32_t verified;              /* index of the last verified unit (when flag set) */
    uint32_t committed;             /* number of steps committed this session */
    uint8_t state;
    uint8_t flags;
    uint8_t in_rec;
    uint8_t resuming;
    int error;                      /* sticky: the first refusal */
} otaup_sec;

/**
 * [terminal] Start a signed session with manifest bytes in[0..len), which
 * must stay valid and unchanged until the session ends (the verifier
 * hashes them again at every SYNC and refuses the stream with
 * OTAUP_E_MANIFEST if they changed: a buffer that was reused fails safe). Before any flash
 * operation: parse, signature, model, counter and version, layout and
 * geometry, windows, tag length and (unless the journal shows this session
 * active) the source image hash (security.md §5, in that order). Returns
 * 0 or the refusal's code (OTAUP_E_MANIFEST, _UNSIGNED, _KEY, _SIGNATURE,
 * _MODEL, _ROLLBACK, _OLDER, _GEOMETRY, _WINDOW, _CHAIN,
 * _SOURCE_MISMATCH, _JOURNAL when resuming at a step past the manifest's
 * last, a flash or crypto error). Flash is only read.
 */
int otaup_sec_begin(otaup_sec *sec, const otaup_sec_config *cfg, const uint8_t *in, size_t len);

/**
 * [terminal] The same, given the bytes of a delta container before its
 * body (header and sections: what a delta file starts with and what START
 * carries). They too must stay valid for the session: the verifier looks
 * the restart points up in them on every SYNC, so a terminal copies
 * START's bytes out of its receive buffers (which the applier reuses) into
 * a buffer of its own (at most the max_msg it advertises) before calling
 * this. Finds the MANIFEST section, and also checks that the header
 * is the one the manifest names (DELTA digest) and agrees with it (layout,
 * geometry, step count, target range). Returns as otaup_sec_begin, plus
 * the container errors and OTAUP_E_UNSIGNED without a manifest.
 */
int otaup_sec_begin_delta(otaup_sec *sec, const otaup_sec_config *cfg, const uint8_t *prefix, size_t len);

/**
 * [terminal] The id under which the applier journals this session
 * (otaup_exec_start's delta_id): the manifest digest's first 8 bytes,
 * little-endian. A journal that shows this id active means "resume".
 */
uint64_t otaup_sec_delta_id(const otaup_sec *sec);

/** [terminal] 1 if otaup_sec_begin found the session active in the journal (resuming). */
int otaup_sec_resuming(const otaup_sec *sec);

/**
 * [terminal] Fill the executor's hooks (otaup/exec.h) so that it calls
 * this verifier: record, inner_record, step_commit and final, ctx = sec.
 */
void otaup_sec_exec_hooks(otaup_sec *sec, otaup_exec_hooks *hooks);

/** Piece flags of the record calls (equal to the executor's OTAUP_PART_*). */
#define OTAUP_SEC_PART_FIRST 0x01u /**< first piece of this record's body */
#define OTAUP_SEC_PART_LAST 0x02u  /**< last piece of this record's body */

/**
 * [terminal] A piece of an outer record's body (as read from the file or
 * the link, before the executor acts on it): `part` says whether it is the
 * first and/or the last piece; a body may be cut anywhere, an empty body
 * is one call with both flags. DATA is ignored (its content arrives through
 * otaup_sec_inner); SYNC re-anchors the chain; VERIFY passes; every other
 * record is treated as part of the chained stream. Returns 0, or a
 * negative code: the executor must then stop without acting on the record.
 * After a refusal every later call refuses too.
 */
int otaup_sec_outer(otaup_sec *sec, uint8_t type, const uint8_t *body, size_t len, unsigned part);

/** [terminal] A piece of an inner (decompressed) record's body; as otaup_sec_outer. */
int otaup_sec_inner(otaup_sec *sec, uint8_t type, const uint8_t *body, size_t len, unsigned part);

/** [terminal] A whole outer record (one piece). */
int otaup_sec_record(otaup_sec *sec, uint8_t type, const uint8_t *body, uint32_t len);

/** [terminal] A whole inner record (one piece). */
int otaup_sec_inner_record(otaup_sec *sec, uint8_t type, const uint8_t *body, uint32_t len);

/**
 * [terminal] Step commit hook: called after staging and before any flash
 * change of step `index`, whose window is [addr, addr+len) and which will
 * erase the given ranges. 0 allows the step; a negative code refuses it
 * (OTAUP_E_CHAIN: not verified, out of order, repeated; OTAUP_E_WINDOW:
 * outside SLOT).
 */
int otaup_sec_step_commit(otaup_sec *sec, uint32_t index, uint32_t addr, uint32_t len,
                          const otaup_region *erases, size_t nerases);

/** [terminal] The executor hooks' functions (otaup_sec_exec_hooks installs them). */
int otaup_sec_hook_record(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part);
int otaup_sec_hook_inner(void *ctx, uint8_t type, const uint8_t *body, size_t len, unsigned part);
int otaup_sec_hook_step(void *ctx, const otaup_exec_step *step);
int otaup_sec_hook_final(void *ctx);

/**
 * [terminal] Final hook, before the commit record / slot switch: all steps
 * committed and the SHA-256 of TARGET read from flash equal to the signed
 * hash. Returns 0, OTAUP_E_CHAIN (steps missing, unit left open) or
 * OTAUP_E_TARGET_MISMATCH.
 */
int otaup_sec_final(otaup_sec *sec);

/** [terminal] The first refusal of this session (0 if none). */
int otaup_sec_error(const otaup_sec *sec);

/* ===================================================================== */
/* 4. Sealed backups                                                      */
/* ===================================================================== */

#define OTAUP_SEAL_MAGIC "OTBK"
#define OTAUP_SEAL_VERSION 1u
#define OTAUP_SEAL_HEADER_LEN 32u  /**< stream header */
#define OTAUP_SEAL_SALT_LEN 16u
#define OTAUP_SEAL_CHUNK_MIN 16u
#define OTAUP_SEAL_CHUNK_MAX 32768u
/** Sealed size of a region of `len` bytes in chunks of `chunk` bytes. */
#define OTAUP_SEAL_SIZE(len, chunk) \
    (OTAUP_SEAL_HEADER_LEN + (len) + OTAUP_GCM_TAG_LEN * (((len) + (chunk) - 1u) / (chunk) + ((len) == 0u)))

/**
 * State of one sealed backup stream (seal or open). The terminal seals a
 * user-data region chunk by chunk with its device key; the server stores
 * the sealed bytes; on restore the terminal opens them chunk by chunk and
 * writes each chunk only after it verified (security.md §7).
 */
typedef struct otaup_seal {
    const otaup_crypto *crypto;
    uint8_t key[OTAUP_AES256_KEY_LEN]; /* per-backup key */
    uint8_t header[OTAUP_SEAL_HEADER_LEN];
    uint32_t region;
    uint32_t total;
    uint32_t chunk;
    uint32_t index;   /* next chunk */
    uint32_t done;    /* plain bytes processed */
    uint8_t opening;
} otaup_seal;

/**
 * [terminal] Begin sealing `total` bytes of region `region` with the
 * device key, in chunks of `chunk` bytes (16 .. 32768), with a 16-byte salt
 * that is unique for this device key (random, or a persistent counter).
 * Writes the 32-byte header to header_out.
 */
int otaup_seal_begin(otaup_seal *s, const otaup_crypto *c, const uint8_t device_key[OTAUP_AES256_KEY_LEN],
                     uint32_t region, uint32_t total, uint32_t chunk,
                     const uint8_t salt[OTAUP_SEAL_SALT_LEN], uint8_t header_out[OTAUP_SEAL_HEADER_LEN]);

/**
 * [terminal] Seal the next chunk: in[0..len) where len is the chunk size
 * (or the rest, for the last chunk). Writes len + 16 bytes to out. Returns
 * the number of bytes written, OTAUP_E_INVAL (wrong length, stream done).
 */
int otaup_seal_chunk(otaup_seal *s, const uint8_t *in, uint32_t len, uint8_t *out);

/**
 * [terminal] Begin opening a sealed stream whose header is header[0..32):
 * checks the header and derives the key. Returns 0, OTAUP_E_DECRYPT
 * (malformed header) or OTAUP_E_REGION if region != the header's region.
 */
int otaup_seal_open_begin(otaup_seal *s, const otaup_crypto *c,
                          const uint8_t device_key[OTAUP_AES256_KEY_LEN], uint32_t region,
                          const uint8_t header[OTAUP_SEAL_HEADER_LEN]);

/**
 * [terminal] Open the next sealed chunk in[0..len) (chunk bytes + 16).
 * Writes len - 16 plain bytes to out and returns their number, or
 * OTAUP_E_DECRYPT (changed, reordered, truncated or foreign chunk).
 */
int otaup_seal_open_chunk(otaup_seal *s, const uint8_t *in, uint32_t len, uint8_t *out);

/**
 * [terminal] otaup_seal_open_chunk() with the tag apart: the chunk's
 * ciphertext in[0..len) (len: the chunk's plain length) and its 16-byte
 * tag, as BACKUP_DATA and RESTORE_DATA carry them (protocol.md §3.10).
 * out may equal in (decryption in place); on a refusal out holds nothing
 * to use. Returns len, or OTAUP_E_DECRYPT.
 */
int otaup_seal_open_detached(otaup_seal *s, const uint8_t *in, uint32_t len,
                             const uint8_t tag[OTAUP_GCM_TAG_LEN], uint8_t *out);

/**
 * [terminal] Set a sealing stream back (or forward) to chunk `index`, so
 * that the next otaup_seal_chunk() seals chunk `index` again: the same
 * key, header, nonce and associated data, hence byte for byte the same
 * output for the same plain bytes. The applier's windowed backup upload
 * rebuilds a chunk it must resend this way (security.md §7). Sealing
 * other plain bytes under an index already used reuses a GCM nonce: the
 * caller must not (the region is not written during its backup).
 * Returns 0, or OTAUP_E_INVAL (not sealing, index past the last chunk).
 */
int otaup_seal_seek(otaup_seal *s, uint32_t index);

/** [terminal] 1 once every chunk of the stream was sealed or opened. */
int otaup_seal_complete(const otaup_seal *s);

/** [terminal] Size of the next sealed chunk to feed to otaup_seal_open_chunk (0 when complete). */
uint32_t otaup_seal_next_len(const otaup_seal *s);

/** [terminal] Forget the per-backup key. */
void otaup_seal_wipe(otaup_seal *s);

/* ===================================================================== */
/* 5. Signing keys [server][mbedtls]                                      */
/* ===================================================================== */

/** An ECDSA P-256 key pair or public key (opaque; allocated). */
typedef struct otaup_key otaup_key;

/** Generate a new P-256 key pair. Returns 0, OTAUP_E_NOMEM or OTAUP_E_CRYPTO. */
int otaup_key_generate(otaup_key **out);

/**
 * Parse a PEM (or DER) private key (SEC1 or PKCS#8, unencrypted) or public
 * key (SubjectPublicKeyInfo), or a raw 65-byte uncompressed public key.
 * Returns 0, OTAUP_E_KEY (not a P-256 key, malformed) or OTAUP_E_NOMEM.
 */
int otaup_key_parse(const uint8_t *in, size_t len, otaup_key **out);

/** 1 if the key holds the private part. */
int otaup_key_has_private(const otaup_key *k);

/** The 65-byte uncompressed public key. */
int otaup_key_public(const otaup_key *k, uint8_t pub[OTAUP_P256_PUB_LEN]);

/**
 * PEM text of the private key (private_part != 0) or the public key into
 * out[0..cap) with a terminating NUL. Returns the length without the NUL,
 * OTAUP_E_BUFFER or OTAUP_E_KEY (no private part).
 */
int otaup_key_write_pem(const otaup_key *k, int private_part, char *out, size_t cap);

/** Sign a 32-byte digest: sig = r || s. OTAUP_E_KEY without a private part. */
int otaup_key_sign(const otaup_key *k, const uint8_t digest[OTAUP_SHA256_LEN], uint8_t sig[OTAUP_P256_SIG_LEN]);

/** Free a key (NULL is fine); the private part is wiped. */
void otaup_key_free(otaup_key *k);

/* ===================================================================== */
/* 6. Building the chain [server]                                         */
/* ===================================================================== */

/**
 * Insert CHAIN records into the decompressed record stream of one segment
 * in[0..len) (records from the segment's first STEP to its last END) and
 * compute the tags backwards (security.md §4.4). `first_step` is the
 * segment's first step index. On success *out (malloc; the caller frees)
 * holds the new stream, *out_len its length, *nsteps the number of steps
 * and first_tag the tag of the first step (tag_len bytes).
 * Returns 0, OTAUP_E_INVAL (bad tag length), OTAUP_E_MSG_* / OTAUP_E_PLAN
 * (stream not made of whole steps, index out of order, records already
 * chained), OTAUP_E_NOMEM, or a crypto error.
 */
int otaup_chain_build_segment(const otaup_crypto *c, const uint8_t salt[OTAUP_CHAIN_SALT_LEN],
                              uint8_t tag_len, uint32_t first_step, const uint8_t *in, size_t len,
                              uint8_t **out, size_t *out_len, uint32_t *nsteps, uint8_t *first_tag);

/* ===================================================================== */
/* 7. Signed delta files                                                  */
/* ===================================================================== */

/**
 * [terminal] Find the manifest in the bytes of a delta container that
 * precede its body (header and sections, as a file starts and as START
 * carries them): in[0..len). Returns 0 and sets *mf, *mf_len (pointing
 * into in), OTAUP_E_UNSIGNED if the sections end without a MANIFEST
 * section, OTAUP_E_DELTA_MAGIC / OTAUP_E_DELTA_CORRUPT /
 * OTAUP_E_DELTA_TRUNCATED for a malformed container.
 */
int otaup_delta_find_manifest(const uint8_t *in, size_t len, const uint8_t **mf, size_t *mf_len);

#define OTAUP_SIGN_OPTIONS_VERSION 1u

/**
 * [server] What otaup_delta_sign() puts into the manifest beyond what the
 * delta's header says. Versioned: initialise with OTAUP_SIGN_OPTIONS_INIT
 * or otaup_sign_options_init().
 */
typedef struct otaup_sign_options {
    unsigned version;            /**< OTAUP_SIGN_OPTIONS_VERSION */
    const uint8_t *model;        /**< compatibility id (required) */
    size_t model_len;
    uint32_t target_version;     /**< software version of the target */
    uint64_t build_time;         /**< its build time (seconds since 1970) */
    uint32_t counter;            /**< security counter */
    uint32_t policy;             /**< OTAUP_POLICY_* */
    const uint8_t *old_img;      /**< the source image (its XXH3-128 must match the header) ... */
    size_t old_len;
    const uint8_t *source_hash;  /**< ... or its SHA-256 (e.g. as a terminal reported it) */
    int no_source;               /**< 1: no SOURCE field; refused for in-place deltas and for deltas that copy */
    const uint8_t *new_img;      /**< the target image (its XXH3-128 must match the header) ... */
    size_t new_len;
    const uint8_t *target_hash;  /**< ... or its SHA-256 */
    uint8_t tag_len;             /**< chain tag length (0: OTAUP_CHAIN_TAG_DEFAULT) */
    int level;                   /**< deflate of the re-compressed streams: 1..8 zlib's level; 0 and
                                      9..12 the near-optimal encoder at its highest effort
                                      (as otaup delta --level 12; docs/deflate.md) */
    const char *note;            /**< optional NOTE text */
} otaup_sign_options;

#define OTAUP_SIGN_OPTIONS_INIT { OTAUP_SIGN_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, NULL, 0, NULL, 0, NULL, 0, NULL, 0, 0, NULL }

/** [server] Initialise *o with defaults; OTAUP_E_UNSUPPORTED for an unknown version. */
int otaup_sign_options_init(otaup_sign_options *o, unsigned version);

/**
 * [server][mbedtls] Sign an unsigned delta: insert a CHAIN record into
 * every step of the inner stream (each DATA stream is decompressed and
 * recompressed, restart points unchanged), update the header's body length,
 * body hash and inner length, and add a MANIFEST section carrying the
 * signed manifest (security.md §2). *out (malloc; the caller frees) holds
 * the signed delta. Returns 0, or OTAUP_E_INVAL (options), OTAUP_E_EXISTS
 * (already signed: use otaup_delta_add_signature), OTAUP_E_SOURCE_MISMATCH /
 * OTAUP_E_TARGET_MISMATCH (images not those of the header), OTAUP_E_PLAN
 * (a delta the terminal would refuse: outer ERASE, missing SOURCE), the
 * container reader's errors, OTAUP_E_INFLATE, OTAUP_E_NOMEM, OTAUP_E_KEY.
 */
int otaup_delta_sign(const otaup_crypto *c, const otaup_key *key, const uint8_t *delta, size_t len,
                     const otaup_sign_options *opt, uint8_t **out, size_t *out_len);

/**
 * [server][mbedtls] Add one more signature (another key, e.g. during a key
 * change-over) to a signed delta. Same result conventions.
 */
int otaup_delta_add_signature(const otaup_crypto *c, const otaup_key *key, const uint8_t *delta, size_t len,
                              uint8_t **out, size_t *out_len);

/** [server] What otaup_delta_verify() found. */
typedef struct otaup_verify_report {
    otaup_manifest manifest;  /**< the manifest (pointers into the delta) */
    const uint8_t *manifest_bytes;
    size_t manifest_len;
    int key_index;            /**< trusted key that verified (-1: none) */
    uint32_t steps;           /**< steps verified against the chain */
    uint32_t segments;        /**< restart points seen */
    uint64_t inner_bytes;     /**< decompressed record stream hashed */
    uint64_t chain_bytes;     /**< bytes of CHAIN records in the inner stream */
    const char *what;         /**< on failure: what was wrong, for people */
} otaup_verify_report;

/**
 * [server] Verify a signed delta file as a terminal would, without flash:
 * container, signature by one of the keys, the manifest's claims against
 * the header (layout, geometry, step count, restart points, source and
 * target ranges, header digest) and the whole chain (every DATA stream is
 * decompressed and every step checked, including that it stays in SLOT).
 * The images are not checked (compare manifest.source_hash /
 * target_hash with otaup_sha256 of them). Returns 0 or the first refusal
 * (rep->what says more).
 */
int otaup_delta_verify(const otaup_crypto *c, const uint8_t *delta, size_t len, const otaup_sec_key *keys,
                       size_t nkeys, otaup_verify_report *rep);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_SIGN_H */
