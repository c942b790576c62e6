/*
 * otaup — library version and format versions.
 *
 * Two kinds of version are kept apart:
 *  - the library version (OTAUP_VERSION_*), which follows semantic
 *    versioning of the C API;
 *  - the wire and file format versions (OTAUP_PROTO_VERSION,
 *    OTAUP_DELTA_FORMAT_VERSION), which change only when bytes on the wire
 *    or in a delta file change meaning. See docs/protocol.md and
 *    docs/delta-format.md.
 */
#ifndef OTAUP_VERSION_H
#define OTAUP_VERSION_H

#define OTAUP_VERSION_MAJOR 0
#define OTAUP_VERSION_MINOR 1
#define OTAUP_VERSION_PATCH 0
/** Library version as one number: major * 10000 + minor * 100 + patch. */
#define OTAUP_VERSION_NUMBER \
    (OTAUP_VERSION_MAJOR * 10000 + OTAUP_VERSION_MINOR * 100 + OTAUP_VERSION_PATCH)
#define OTAUP_VERSION_STRING "0.1.0"

/** Command protocol version spoken on the wire (frame header byte 2). */
#define OTAUP_PROTO_VERSION 1
/** Delta container format version (delta header). */
#define OTAUP_DELTA_FORMAT_VERSION 2

#ifdef __cplusplus
extern "C" {
#endif

/** The library version string, e.g. "0.1.0". */
const char *otaup_version(void);
/** The library version as OTAUP_VERSION_NUMBER of the built library. */
unsigned otaup_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* OTAUP_VERSION_H */
