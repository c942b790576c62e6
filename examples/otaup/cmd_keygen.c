/* otaup keygen — placeholder until the part that provides it lands. */
#include <stdio.h>

#include "cmd.h"

int otaup_cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "otaup keygen: not available in this build yet\n");
    return OTAUP_EXIT_FAIL;
}
