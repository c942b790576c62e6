/*
 * otaup — over-the-air software upgrade for terminals.
 *
 * Umbrella header: includes every public header. Which parts a given
 * build of the library holds is in otaup/features.h (a terminal-only
 * build has no server-side functions). Terminal (firmware) code usually
 * includes only the headers it needs: otaup/error.h, otaup/proto.h,
 * otaup/flash.h, otaup/apply.h.
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

/* terminal side (lib/core: C99, no heap) */
#include "otaup/record.h"
#include "otaup/proto.h"
#include "otaup/flash.h"
#include "otaup/image.h"
#include "otaup/journal.h"
#include "otaup/exec.h"
#include "otaup/apply.h"
/* server side (built unless OTAUP_TERMINAL_ONLY; otaup/features.h says
 * which optional backends a build has) */
#include "otaup/delta.h"
#include "otaup/sign.h"
#include "otaup/simflash.h"
#include "otaup/registry.h"
#include "otaup/session.h"
#include "otaup/simterm.h"

#endif /* OTAUP_OTAUP_H */
