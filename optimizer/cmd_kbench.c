/* cmd_kbench.c - `sluice kbench`: the matrix kernels alone, at each ISA
 * level this CPU has, over an image's own weights.
 *
 * A pass multiplies every matrix a decoding step reads (each layer's
 * seven and the classifier) by T tokens' activations, on the calling
 * thread, in calls of --rows rows (the engine's tasks are such slices),
 * the int8 levels' input prepared as the engine prepares it.  The levels
 * take turns within each repetition, so a noisy minute spreads over all of
 * them, and each reports the median pass; the first level is the baseline
 * the others are compared with, in the same run. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_kernels.h"
#include "sl_model.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice kbench IMAGE [--tokens 1,16] [--isa LIST] [--rows R] [--reps R] [--json]\n"
               "  Times one pass over the image's matrices per ISA level (default: every\n"
               "  SIMD level this CPU has; the first is the baseline) and token count, on\n"
               "  one thread, in calls of R rows (default 0: whole matrices); medians of\n"
               "  R repetitions (default 5).\n");
}

enum { MAX_LEVELS = SL_ISA_COUNT, MAX_TOKENS = 8 };

/* One level's input for nt tokens: the activations for k = dim and k =
 * hidden in the level's layout (floats for float weights). */
typedef struct input {
    const sl_kernels *k;
    int nt;
    uint8_t *q[2];    /* quantized, per width */
    size_t stride[2]; /* bytes per token */
    float *f[2];      /* floats, per width */
    uint8_t *xp;      /* the prepared form (xprep), largest width */
} input;

static int width_index(const sl_model *m, int cols) { return cols == m->dim ? 0 : 1; }

static int input_make(input *in, const sl_kernels *k, const sl_model *m, int nt, uint64_t seed)
{
    memset(in, 0, sizeof *in);
    in->k = k;
    in->nt = nt;
    const int widths[2] = {m->dim, m->hidden};
    uint64_t r = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int w = 0; w < 2; w++) {
        const int kk = widths[w];
        in->stride[w] = k->act_bytes(kk);
        in->f[w] = malloc(sizeof(float) * (size_t)nt * (size_t)kk);
        in->q[w] = malloc(in->stride[w] * (size_t)nt);
        if (!in->f[w] || !in->q[w])
            return -1;
        for (size_t i = 0; i < (size_t)nt * (size_t)kk; i++) { /* xorshift: uniform in [-1, 1) */
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            in->f[w][i] = (float)(r >> 40) / 8388608.0f - 1.0f;
        }
        for (int t = 0; t < nt; t++)
            k->act_quant(in->f[w] + (size_t)t * kk, in->q[w] + (size_t)t * in->stride[w], kk);
    }
    const int kmax = m->dim > m->hidden ? m->dim : m->hidden;
    const size_t xpb = k->xprep_bytes ? k->xprep_bytes(nt, kmax) : 0;
    if (xpb && !(in->xp = malloc(xpb)))
        return -1;
    return 0;
}

static void input_free(input *in)
{
    for (int w = 0; w < 2; w++) {
        free(in->q[w]);
        free(in->f[w]);
    }
    free(in->xp);
}

/* y = W x for every row of w, in calls of `rows` rows (0: one call). */
static void product(const input *in, const sl_model *m, const sl_wmat *w, int rows, float *y)
{
    const sl_kernels *k = in->k;
    const int wi = width_index(m, w->cols), chunk = rows > 0 ? rows : w->rows;
    const int quant = sl_wtype_quantized(w->wt);
    const void *x = quant ? (const void *)in->q[wi] : (const void *)in->f[wi];
    const size_t stride = quant ? in->stride[wi] : (size_t)w->cols * sizeof(float);
    const int xp = quant && in->xp && k->gemm_xp[w->wt] && k->xprep_bytes(in->nt, w->cols) > 0;
    if (xp)
        k->xprep(x, stride, in->nt, w->cols, in->xp);
    for (int r0 = 0; r0 < w->rows; r0 += chunk) {
        const int r1 = r0 + chunk < w->rows ? r0 + chunk : w->rows;
        if (xp)
            k->gemm_xp[w->wt](w->data, w->row_bytes, r0, r1, in->xp, in->nt, w->cols, y, w->rows);
        else
            k->gemm[w->wt](w->data, w->row_bytes, r0, r1, x, stride, in->nt, w->cols, y, w->rows);
    }
}

/* Every matrix a decoding step reads, in its order (each layer's seven,
 * then the classifier): a malloc'd array of *n, or NULL. */
static const sl_wmat **step_matrices(const sl_model *m, int *n)
{
    const sl_wmat **w = malloc(sizeof *w * ((size_t)m->n_layers * 7 + 1));
    *n = 0;
    if (!w)
        return NULL;
    for (int l = 0; l < m->n_layers; l++) {
        const sl_layer *L = &m->layers[l];
        const sl_wmat *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            w[(*n)++] = ws[i];
    }
    w[(*n)++] = &m->output;
    return w;
}

/* One pass over the matrices; seconds. */
static double pass(const input *in, const sl_model *m, const sl_wmat *const *w, int n, int rows, float *y)
{
    const double t0 = sl_cli_now_us();
    for (int i = 0; i < n; i++)
        product(in, m, w[i], rows, y);
    return (sl_cli_now_us() - t0) / 1e6;
}

int sl_cmd_kbench(int argc, char **argv)
{
    enum { O_TOKENS = 256, O_ISA, O_ROWS, O_REPS, O_JSON };
    static const struct option opts[] = {{"tokens", required_argument, 0, O_TOKENS},
                                         {"isa", required_argument, 0, O_ISA},
                                         {"rows", required_argument, 0, O_ROWS},
                                         {"reps", required_argument, 0, O_REPS},
                                         {"json", no_argument, 0, O_JSON},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int tokens[MAX_TOKENS] = {1, 16}, n_tokens = 2, isas[MAX_LEVELS], n_isas = 0, json = 0, c;
    long long rows = 0, reps = 5;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_TOKENS:
            if ((n_tokens = sl_cli_int_list("--tokens", optarg, 1, 512, tokens, MAX_TOKENS)) < 0)
                return SL_EXIT_ERROR;
            break;
        case O_ISA: {
            char *copy = strdup(optarg), *rest = copy, *tok;
            if (!copy)
                return SL_EXIT_ERROR;
            n_isas = 0;
            while ((tok = strsep(&rest, ","))) {
                if (n_isas == MAX_LEVELS || sl_cli_isa(tok, &isas[n_isas])) {
                    if (n_isas == MAX_LEVELS)
                        fprintf(stderr, "sluice: --isa: at most %d levels\n", MAX_LEVELS);
                    free(copy);
                    return SL_EXIT_ERROR;
                }
                n_isas++;
            }
            free(copy);
            break;
        }
        case O_ROWS: if (sl_cli_int("--rows", optarg, 0, 1 << 30, &rows)) return SL_EXIT_ERROR; break;
        case O_REPS: if (sl_cli_int("--reps", optarg, 1, 100, &reps)) return SL_EXIT_ERROR; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || n_tokens == 0) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    if (n_isas == 0) /* every SIMD level this CPU has */
        for (int i = SL_ISA_AVX2; i < SL_ISA_COUNT; i++)
            if (sl_kernels_for((sl_isa)i))
                isas[n_isas++] = i;
    if (n_isas == 0) {
        fprintf(stderr, "sluice: kbench: this CPU has no SIMD level; name --isa scalar to time the scalar kernels\n");
        return SL_EXIT_ERROR;
    }
    sl_model *m;
    sl_err err = {0};
    if (sl_model_open(argv[optind], 0, &m, &err)) {
        fprintf(stderr, "sluice: %s: %s\n", argv[optind], err.msg);
        return SL_EXIT_ERROR;
    }
    int n_mats;
    const sl_wmat **mats = step_matrices(m, &n_mats);
    double macs = 0; /* per token of a pass */
    for (int i = 0; mats && i < n_mats; i++) {
        macs += (double)mats[i]->rows * mats[i]->cols;
        if (mats[i]->wt == SL_W_W8A8) { /* its input is quantized per matrix, with its own scale */
            fprintf(stderr, "sluice: kbench: %s: W8A8 matrices are not timed alone; use `sluice bench`\n",
                    argv[optind]);
            free(mats);
            sl_model_close(m);
            return SL_EXIT_ERROR;
        }
    }
    const int n_cases = n_isas * n_tokens;
    input *in = calloc((size_t)n_cases, sizeof *in);
    double *t = calloc((size_t)n_cases * (size_t)reps, sizeof *t);
    int max_nt = 1;
    for (int j = 0; j < n_tokens; j++)
        max_nt = tokens[j] > max_nt ? tokens[j] : max_nt;
    int ymax = m->output.rows > m->hidden ? m->output.rows : m->hidden; /* the most rows of any matrix */
    ymax = ymax > m->dim ? ymax : m->dim;
    float *y = malloc(sizeof(float) * (size_t)max_nt * (size_t)ymax);
    int rc = SL_EXIT_OK;
    for (int i = 0; in && t && y && i < n_cases; i++)
        if (input_make(&in[i], sl_kernels_for((sl_isa)isas[i / n_tokens]), m, tokens[i % n_tokens], 1234 + (uint64_t)i)) {
            rc = SL_EXIT_ERROR;
            break;
        }
    if (!mats || !in || !t || !y || rc) {
        fprintf(stderr, "sluice: kbench: out of memory\n");
        rc = SL_EXIT_ERROR;
        goto out;
    }
    for (int i = 0; i < n_cases; i++) /* warm-up: page the weights in */
        pass(&in[i], m, mats, n_mats, (int)rows, y);
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n_cases; i++) /* the cases take turns */
            t[(size_t)i * (size_t)reps + (size_t)r] = pass(&in[i], m, mats, n_mats, (int)rows, y);
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(o, "image", json_object_new_string(argv[optind]));
    json_object_object_add(o, "weight_bytes", json_object_new_int64((int64_t)m->weight_bytes));
    json_object_object_add(o, "rows_per_call", json_object_new_int((int)rows));
    json_object_object_add(o, "reps", json_object_new_int((int)reps));
    json_object_object_add(o, "threads", json_object_new_int(1));
    json_object_object_add(o, "baseline", json_object_new_string(sl_isa_name((sl_isa)isas[0])));
    if (!json)
        printf("%s: %.1f MB of weights, %s; one thread, %s; medians of %lld passes\n%8s %7s %10s %10s %10s %9s\n",
               argv[optind], (double)m->weight_bytes / 1e6, sl_cpu_features(),
               rows ? "calls of --rows rows" : "whole matrices", reps, "isa", "tokens", "pass ms", "GB/s", "GMAC/s",
               "vs base");
    for (int i = 0; i < n_cases; i++) {
        const double s = sl_cli_median(t + (size_t)i * (size_t)reps, (int)reps);
        const double base = sl_cli_median(t + (size_t)(i % n_tokens) * (size_t)reps, (int)reps);
        const int nt = tokens[i % n_tokens];
        json_object *l = json_object_new_object();
        json_object_object_add(l, "isa", json_object_new_string(in[i].k->name));
        json_object_object_add(l, "tokens", json_object_new_int(nt));
        json_object_object_add(l, "pass_s", json_object_new_double(s));
        json_object_object_add(l, "weight_bytes_s", json_object_new_double((double)m->weight_bytes / s));
        json_object_object_add(l, "macs_s", json_object_new_double(macs * nt / s));
        json_object_object_add(l, "speedup_vs_baseline", json_object_new_double(base / s));
        json_object_array_add(arr, l);
        if (!json)
            printf("%8s %7d %10.3f %10.2f %10.1f %8.2fx\n", in[i].k->name, nt, s * 1e3, (double)m->weight_bytes / s / 1e9,
                   macs * nt / s / 1e9, base / s);
    }
    json_object_object_add(o, "levels", arr);
    if (json)
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    json_object_put(o);
out:
    for (int i = 0; in && i < n_cases; i++)
        input_free(&in[i]);
    free(in);
    free(t);
    free(y);
    free(mats);
    sl_model_close(m);
    return rc;
}
