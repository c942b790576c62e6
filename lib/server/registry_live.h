/*
 * otaup — terminals a live session drives, per registry handle (docs/server.md,
 * "One session per terminal"). Private header.
 *
 * Every session of a process shares one registry handle per thread, and a
 * terminal has one session row: two connections claiming the same terminal
 * id at once (a cloned id, or a second connection while the first is still
 * open) would drive that row, its backup and its delta stream together. The
 * session claims its terminal when INFO arrives and gives it back when it is
 * closed or freed; a second claim is refused.
 */
#ifndef OTAUP_SERVER_REGISTRY_LIVE_H
#define OTAUP_SERVER_REGISTRY_LIVE_H

#include "otaup/registry.h"

/** Claim terminal for a live session: 0, OTAUP_E_EXISTS when a session of this handle already
 *  holds it, OTAUP_E_INVAL, OTAUP_E_NOMEM. */
int otaup_registry_live_claim(otaup_registry *reg, const char *terminal);
/** Give terminal back (nothing if it is not claimed). */
void otaup_registry_live_release(otaup_registry *reg, const char *terminal);

#endif
