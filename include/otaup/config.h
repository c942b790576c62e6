/*
 * otaup — compile-time configuration.
 *
 * One place for every build-time knob. An integrator may define
 * OTAUP_CONFIG_FILE (e.g. -DOTAUP_CONFIG_FILE='"my_otaup_config.h"') to a
 * header that sets any of the macros below before the defaults apply.
 * Impossible combinations stop the build with #error.
 *
 * C99; safe to include alone.
 */
#ifndef OTAUP_CONFIG_H
#define OTAUP_CONFIG_H

#ifdef OTAUP_CONFIG_FILE
#include OTAUP_CONFIG_FILE
#endif

/* What this build of the library holds (generated with it: CMake writes
 * it; a firmware build without CMake writes the three lines itself, as
 * examples/firmware/build.sh does). Knobs that size a public structure
 * follow OTAUP_TERMINAL_ONLY_BUILD from here, never OTAUP_CONFIG_TERMINAL,
 * so that the library and every file including its headers agree. */
#include "otaup/features.h"

/* ---- knobs ----------------------------------------------------------- */

/** Define to drop the error strings (otaup_strerror returns a fixed text). */
/* #define OTAUP_CONFIG_NO_ERROR_STRINGS */

/**
 * OTAUP_CONFIG_TERMINAL: 1 for a terminal (device) build, 0 (default) for a
 * host. It only sets the defaults of the knobs below that trade speed for
 * code size; results are identical either way.
 */
#ifndef OTAUP_CONFIG_TERMINAL
#define OTAUP_CONFIG_TERMINAL 0
#endif

/**
 * OTAUP_CONFIG_SMALL_CRC: 1 checks frames with the library's small CRCs —
 * CRC-32 by otaup_journal_crc32() (a 16-entry table, shared with the
 * journal) instead of zlib's crc32() (about 1.2 KB of tables, but several
 * times faster), and the header's CRC-8 bit by bit instead of a 256-byte
 * table. Default: OTAUP_CONFIG_TERMINAL. The host keeps the fast ones
 * (bench/proto: frame decoding at > 1 GB/s).
 */
#ifndef OTAUP_CONFIG_SMALL_CRC
#define OTAUP_CONFIG_SMALL_CRC OTAUP_CONFIG_TERMINAL
#endif

/* ---- features of the terminal applier (otaup/apply.h) ------------------
 * Each defaults to 1; 0 drops its code (and its state in otaup_apply) from
 * a firmware. What a feature costs: docs/porting.md, "Footprint". */

/**
 * OTAUP_CONFIG_BACKUP: backup and restore of user-data regions
 * (BACKUP_REQ, RESTORE_DATA). With 0 the regions are still reported in INFO
 * and never written by an update, INFO and HELLO do not advertise
 * OTAUP_CAP_BACKUP, and both requests are refused (OTAUP_E_UNSUPPORTED):
 * for terminals whose user data needs no server-side backup.
 */
#ifndef OTAUP_CONFIG_BACKUP
#define OTAUP_CONFIG_BACKUP 1
#endif

/**
 * OTAUP_CONFIG_SIGNATURE: the block signature of the installed image
 * (SIG_REQ, SIG_DATA), with which a server plans a delta when it does not
 * hold the terminal's exact image. With 0, SIG_REQ is refused
 * (OTAUP_E_UNSUPPORTED, as for a terminal that reports no image size).
 */
#ifndef OTAUP_CONFIG_SIGNATURE
#define OTAUP_CONFIG_SIGNATURE 1
#endif

/**
 * OTAUP_CONFIG_SEALED: backups sealed on the terminal (docs/security.md §7):
 * with a device key and a crypto interface in otaup_apply_config, the
 * applier encrypts and authenticates each user-data region with
 * AES-256-GCM before it leaves the terminal, and opens and checks every
 * restored chunk before it writes it. Needs OTAUP_CONFIG_BACKUP. Default:
 * on for a host build, off for a terminal-only build (a firmware without
 * a device key pays nothing; one with a key defines it to 1 and links
 * lib/core/seal.c and crypto.c, plus its AES-GCM/SHA-256 backend).
 */
#ifndef OTAUP_CONFIG_SEALED
#if defined(OTAUP_TERMINAL_ONLY_BUILD) && OTAUP_TERMINAL_ONLY_BUILD
#define OTAUP_CONFIG_SEALED 0
#else
#define OTAUP_CONFIG_SEALED 1
#endif
#endif

/**
 * OTAUP_CONFIG_BACKUP_WINDOW: BACKUP_DATA frames the terminal applier keeps
 * outstanding at most (1..65535), within the window the server advertises
 * (HELLO, every ACK). Default 16. They cost no RAM: a chunk to resend is
 * rebuilt from flash (the region does not change while it is backed up).
 * 1 is stop-and-wait, one round trip per chunk.
 */
#ifndef OTAUP_CONFIG_BACKUP_WINDOW
#define OTAUP_CONFIG_BACKUP_WINDOW 16u
#endif

/**
 * OTAUP_RAMFUNC: placed on every function of the terminal-side path
 * (codec, applier, journal, inflate glue) so that an in-place update never
 * executes code from the flash it rewrites. Default: a ".ramfunc.N"
 * section per function (N from __COUNTER__, so that --gc-sections still
 * drops the functions a firmware does not call) that the integrator's
 * linker script, matching `*(.ramfunc .ramfunc.*)`, copies to RAM at
 * start-up (GCC and clang). Put it on definitions only: on a separate
 * declaration it would name a different section. Define it empty to keep
 * code in flash (bootloader integration, or A/B updates that never touch
 * the running slot). See docs/porting.md.
 */
#define OTAUP_STR_(x) #x
#define OTAUP_STR(x) OTAUP_STR_(x)
#ifndef OTAUP_RAMFUNC
#if defined(OTAUP_CONFIG_RAM_RESIDENT) && (defined(__GNUC__) || defined(__clang__))
#define OTAUP_RAMFUNC __attribute__((section(".ramfunc." OTAUP_STR(__COUNTER__))))
#else
#define OTAUP_RAMFUNC
#endif
#endif

/** Assertion hook for internal invariants; defaults to nothing. */
#ifndef OTAUP_ASSERT
#define OTAUP_ASSERT(cond) ((void)0)
#endif

/** Maximum frame size in bytes the library will ever encode or accept. */
#ifndef OTAUP_CONFIG_FRAME_MAX
#define OTAUP_CONFIG_FRAME_MAX 65536u
#endif

/* ---- checks ------------------------------------------------------------ */

#if (OTAUP_CONFIG_TERMINAL != 0 && OTAUP_CONFIG_TERMINAL != 1) || \
    (OTAUP_CONFIG_SMALL_CRC != 0 && OTAUP_CONFIG_SMALL_CRC != 1) || \
    (OTAUP_CONFIG_BACKUP != 0 && OTAUP_CONFIG_BACKUP != 1) || \
    (OTAUP_CONFIG_SIGNATURE != 0 && OTAUP_CONFIG_SIGNATURE != 1) || \
    (OTAUP_CONFIG_SEALED != 0 && OTAUP_CONFIG_SEALED != 1)
#error "OTAUP_CONFIG_TERMINAL, _SMALL_CRC, _BACKUP, _SIGNATURE and _SEALED are 0 or 1"
#endif

#if OTAUP_CONFIG_SEALED && !OTAUP_CONFIG_BACKUP
#error "OTAUP_CONFIG_SEALED needs OTAUP_CONFIG_BACKUP"
#endif

#if OTAUP_CONFIG_BACKUP_WINDOW < 1 || OTAUP_CONFIG_BACKUP_WINDOW > 65535
#error "OTAUP_CONFIG_BACKUP_WINDOW must be within 1 .. 65535"
#endif

#if OTAUP_CONFIG_FRAME_MAX < 64u || OTAUP_CONFIG_FRAME_MAX > 65536u
#error "OTAUP_CONFIG_FRAME_MAX must be within 64 .. 65536"
#endif

/* ---- export macro ------------------------------------------------------ */

/** Marks public functions; static library, so only visibility matters. */
#ifndef OTAUP_API
#if defined(__GNUC__) && __GNUC__ >= 4
#define OTAUP_API __attribute__((visibility("default")))
#else
#define OTAUP_API
#endif
#endif

#endif /* OTAUP_CONFIG_H */
