/* otaup apply — placeholder until the part that provides it lands. */
#include <stdio.h>

#include "cmd.h"

int otaup_cmd_apply(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "otaup apply: not available in this build yet\n");
    return OTAUP_EXIT_FAIL;
}
