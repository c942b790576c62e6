/*
 * otaup — library version. C99, no heap, no OS.
 */
#include "otaup/version.h"

const char *otaup_version(void)
{
    return OTAUP_VERSION_STRING;
}

unsigned otaup_version_number(void)
{
    return (unsigned)OTAUP_VERSION_NUMBER;
}
