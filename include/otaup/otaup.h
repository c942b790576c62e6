/*
 * otaup — over-the-air software upgrade for terminals.
 *
 * Umbrella header: includes every public header of the parts that were
 * built. Terminal (firmware) code may include only the headers it needs:
 * otaup/error.h, otaup/proto.h, otaup/flash.h, otaup/apply.h.
 *
 * Conventions (docs/api.md):
 *  - every public symbol starts with otaup_ / OTAUP_;
 *  - functions return 0 on success, a negative otaup_error on failure, a
 *    positive count where documented;
 *  - the caller owns all memory; terminal-side code never allocates;
 *  - no global state: contexts are plain structs owned by the caller.
 */
#ifndef OTAUP_OTAUP_H
#define OTAUP_OTAUP_H

#include "otaup/config.h"
#include "otaup/error.h"
#include "otaup/version.h"

#if defined(__has_include)
#if __has_include("otaup/proto.h")
#include "otaup/proto.h"
#endif
#if __has_include("otaup/flash.h")
#include "otaup/flash.h"
#endif
#if __has_include("otaup/image.h")
#include "otaup/image.h"
#endif
#if __has_include("otaup/delta.h")
#include "otaup/delta.h"
#endif
#if __has_include("otaup/apply.h")
#include "otaup/apply.h"
#endif
#if __has_include("otaup/sign.h")
#include "otaup/sign.h"
#endif
#if __has_include("otaup/session.h")
#include "otaup/session.h"
#endif
#if __has_include("otaup/registry.h")
#include "otaup/registry.h"
#endif
#endif

#endif /* OTAUP_OTAUP_H */
