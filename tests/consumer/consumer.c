/*
 * Out-of-tree consumer of an installed otaup: built once through
 * pkg-config and once through CMake's find_package (tests/run.sh install).
 * Exits non-zero if the library it linked does not answer as expected.
 */
#include <stdio.h>
#include <string.h>

#include <otaup/otaup.h>

int main(void)
{
    const char *v = otaup_version();
    if (strcmp(v, OTAUP_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: header %s but library %s\n", OTAUP_VERSION_STRING, v);
        return 1;
    }
    if (strcmp(otaup_strerror(OTAUP_E_FRAME_CRC), "frame CRC-32 mismatch") != 0) {
        fprintf(stderr, "consumer: unexpected error text\n");
        return 1;
    }
    printf("consumer: linked otaup %s\n", v);
    return 0;
}
