/*
 * otaup command-line tool: sub-command entry points and shared helpers.
 * Exit codes (docs/cli.md): 0 success, 1 failure, 2 usage error,
 * 3 stopped by a simulated power cut (--cut-after).
 */
#ifndef OTAUP_CLI_CMD_H
#define OTAUP_CLI_CMD_H

#define OTAUP_EXIT_OK 0
#define OTAUP_EXIT_FAIL 1
#define OTAUP_EXIT_USAGE 2
#define OTAUP_EXIT_POWER_CUT 3

struct otaup_cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the sub-command name */
};

int otaup_cmd_delta(int argc, char **argv);
int otaup_cmd_apply(int argc, char **argv);
int otaup_cmd_inspect(int argc, char **argv);
int otaup_cmd_sig(int argc, char **argv);
int otaup_cmd_keygen(int argc, char **argv);
int otaup_cmd_sign(int argc, char **argv);
int otaup_cmd_verify(int argc, char **argv);

#endif
