/*
 * otaup — private interface between the terminal verifier and the
 * server-side tools that check a delta file offline (lib/server).
 */
#ifndef OTAUP_CORE_SEC_INT_H
#define OTAUP_CORE_SEC_INT_H

#include "otaup/sign.h"

/*
 * Start the chain verifier from manifest bytes in[0..len) without the
 * terminal's checks (signature, model, counter, flash): for offline tools
 * that verified the signature themselves and walk a whole delta file.
 * otaup_sec_final() cannot be used (no flash).
 */
int otaup_sec_begin_offline(otaup_sec *sec, const otaup_crypto *c, const uint8_t *in, size_t len);

/* Next step the verifier would allow to commit (== steps committed so far). */
uint32_t otaup_sec_next_commit(const otaup_sec *sec);

#endif
