/* cli_util.c - option parsing and set-up shared by the subcommands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sluice_cli.h"

int sl_cli_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "sluice: %s: '%s' is not an integer in %lld..%lld\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int sl_cli_float(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "sluice: %s: '%s' is not a number in %g..%g\n", opt, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int sl_cli_isa(const char *s, int *out)
{
    int v = sl_isa_parse(s);
    if (v < 0) {
        fprintf(stderr, "sluice: --isa: '%s' is not one of scalar, avx2, avx512, amx\n", s);
        return -1;
    }
    if (!sl_kernels_for((sl_isa)v)) {
        fprintf(stderr, "sluice: --isa %s: this CPU lacks those instructions\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

int sl_cli_engine(const char *path, const sl_model *m, const sl_engine_cfg *cfg, sl_engine **e)
{
    sl_err err = {0};
    if (sl_engine_create(m, cfg, e, &err)) {
        fprintf(stderr, "sluice: %s: %s\n", path, err.msg);
        return SL_EXIT_ERROR;
    }
    return SL_EXIT_OK;
}

int sl_cli_open(const char *path, const sl_engine_cfg *cfg, sl_model **m, sl_engine **e)
{
    sl_err err = {0};
    *e = NULL;
    if (sl_model_open(path, 0, m, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    if (sl_cli_engine(path, *m, cfg, e)) {
        sl_model_close(*m);
        *m = NULL;
        return SL_EXIT_ERROR;
    }
    return SL_EXIT_OK;
}

int sl_cli_int_list(const char *opt, const char *s, long long lo, long long hi, int *out, int max)
{
    char *copy = strdup(s), *rest = copy, *tok;
    if (!copy) {
        fprintf(stderr, "sluice: %s: out of memory\n", opt);
        return -1;
    }
    int n = 0;
    while ((tok = strsep(&rest, ","))) {
        long long v;
        if (n == max) {
            fprintf(stderr, "sluice: %s: more than %d values\n", opt, max);
            n = -1;
            break;
        }
        if (sl_cli_int(opt, tok, lo, hi, &v)) {
            n = -1;
            break;
        }
        out[n++] = (int)v;
    }
    free(copy);
    return n;
}

static int cmp_d(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sl_cli_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double sl_cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

uint64_t sl_cli_peak_rss(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024u : 0;
}
