/* sluice_cli.h - subcommands of the `sluice` tool, and the option parsing
 * they share. */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdint.h>

#include "sl_engine.h"
#include "sl_eval.h"

/* Exit statuses shared by every subcommand. */
enum { SL_EXIT_OK = 0, SL_EXIT_FAIL = 1, SL_EXIT_ERROR = 2 };

int sl_cmd_inspect(int argc, char **argv);
int sl_cmd_convert(int argc, char **argv);
int sl_cmd_synth(int argc, char **argv);
int sl_cmd_generate(int argc, char **argv);
int sl_cmd_eval(int argc, char **argv);
int sl_cmd_bench(int argc, char **argv);
int sl_cmd_kbench(int argc, char **argv);
int sl_cmd_validate(int argc, char **argv);
int sl_cmd_quantize(int argc, char **argv);

/* Whole-string numbers within [lo, hi]; on failure print
 * "sluice: OPT: ..." and return -1. */
int sl_cli_int(const char *opt, const char *s, long long lo, long long hi, long long *out);
int sl_cli_float(const char *opt, const char *s, double lo, double hi, double *out);
/* A comma-separated list of at most max integers within [lo, hi] into out:
 * how many, or -1 after printing what is wrong. */
int sl_cli_int_list(const char *opt, const char *s, long long lo, long long hi, int *out, int max);
/* --isa value: scalar, avx2, avx512, amx. */
int sl_cli_isa(const char *s, int *out);

/* Opens an image and an engine on it (errors printed); SL_EXIT_OK or
 * SL_EXIT_ERROR. */
int sl_cli_open(const char *path, const sl_engine_cfg *cfg, sl_model **m, sl_engine **e);
/* An engine on an image already open (path names it in errors). */
int sl_cli_engine(const char *path, const sl_model *m, const sl_engine_cfg *cfg, sl_engine **e);

/* The sequences `eval` and `validate` score: --text or --tokens (one of
 * the paths), cut by --split SEP (C escapes, unescaped in place) and
 * --max-pieces, else into ctx-token windows.  Errors printed; SL_EXIT_OK
 * or SL_EXIT_ERROR.  *seqs and *store are malloc'd. */
int sl_cli_eval_data(const sl_model *m, const char *text_path, const char *tok_path, char *split, int max_pieces,
                     int ctx, sl_eval_seq **seqs, int32_t **store, int *n_seqs);

/* Microseconds on the monotonic clock; peak resident set in bytes. */
double sl_cli_now_us(void);
/* The median of n values (sorts them). */
double sl_cli_median(double *v, int n);
uint64_t sl_cli_peak_rss(void);

#endif
