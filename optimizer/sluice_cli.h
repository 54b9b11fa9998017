/* sluice_cli.h - subcommands of the `sluice` tool. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

/* Exit statuses shared by every subcommand. */
enum { SL_EXIT_OK = 0, SL_EXIT_FAIL = 1, SL_EXIT_ERROR = 2 };

int sl_cmd_inspect(int argc, char **argv);
int sl_cmd_convert(int argc, char **argv);
int sl_cmd_synth(int argc, char **argv);

#endif
