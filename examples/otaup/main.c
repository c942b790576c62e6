/*
 * otaup — command-line tool: dispatch to sub-commands.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "otaup/otaup.h"

static const struct otaup_cli_cmd commands[] = {
    { "delta", "compute a delta from OLD (or its signature) to NEW", otaup_cmd_delta },
    { "apply", "apply a delta to a file or to a simulated flash", otaup_cmd_apply },
    { "inspect", "describe a delta: operations, ranges, sizes", otaup_cmd_inspect },
    { "sig", "compute the block signature of an image", otaup_cmd_sig },
    { "keygen", "create a signing key pair", otaup_cmd_keygen },
    { "sign", "sign a delta's manifest", otaup_cmd_sign },
    { "verify", "verify a delta's signature", otaup_cmd_verify },
};

static void usage(FILE *out)
{
    size_t i;
    fprintf(out, "usage: otaup COMMAND [ARGS...]\n       otaup COMMAND --help (or otaup help COMMAND)\n"
                 "       otaup --version\n\ncommands:\n");
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\nexit codes: 0 success, 1 failure, 2 usage error, 3 simulated power cut\n");
}

int main(int argc, char **argv)
{
    size_t i;
    if (argc < 2) {
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "help") == 0 && argc > 2) {
        /* otaup help COMMAND: that command's --help */
        static char help_opt[] = "--help";
        char *sub_argv[3];
        for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
            if (strcmp(argv[2], commands[i].name) == 0) {
                sub_argv[0] = argv[2];
                sub_argv[1] = help_opt;
                sub_argv[2] = NULL;
                return commands[i].run(2, sub_argv);
            }
        }
        fprintf(stderr, "otaup: unknown command '%s'\n", argv[2]);
        usage(stderr);
        return OTAUP_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return OTAUP_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("otaup %s\n", otaup_version());
        return OTAUP_EXIT_OK;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "otaup: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return OTAUP_EXIT_USAGE;
}
