/* GPTQ, AWQ's search and the block grids on synthetic matrices with known
 * answers: GPTQ never loses to RTN on the inputs it saw, reduces to RTN
 * when the inputs are uncorrelated, and its bytes dequantize to exactly the
 * values it decided. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_awq.h"
#include "sl_calib.h"
#include "sl_blas.h"
#include "sl_gptq.h"
#include "sl_grid.h"
#include "sl_types.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* X: n x k inputs with correlated columns and a few loud channels (what
 * makes GPTQ and AWQ matter); H = X^T X. */
static void make_inputs(int n, int k, float *X, float *H)
{
    for (int t = 0; t < n; t++) {
        float common = urand();
        for (int j = 0; j < k; j++) {
            float loud = j % 17 == 3 ? 8.0f : 1.0f;
            X[(size_t)t * k + j] = loud * (0.6f * common + urand());
        }
    }
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) {
            double s = 0;
            for (int t = 0; t < n; t++)
                s += (double)X[(size_t)t * k + a] * X[(size_t)t * k + b];
            H[(size_t)a * k + b] = (float)s;
        }
}

static void dequant_all(uint32_t type, const void *q, int rows, int k, float *out)
{
    uint64_t rb;
    sl_err err;
    cr_assert_eq(sl_type_row_bytes(type, (uint64_t)k, &rb, &err), SL_OK);
    for (int r = 0; r < rows; r++)
        cr_assert_eq(sl_dequantize_row(type, (const uint8_t *)q + (size_t)r * rb, out + (size_t)r * k, (uint64_t)k, &err),
                     SL_OK);
}

static void gptq_beats_rtn(uint32_t type, bool act_order)
{
    enum { R = 48, K = 256, N = 512 }; /* K: one super-block for the K types */
    static float W[R * K], W0[R * K], X[N * K], H[K * K], H0[K * K], Wq[R * K], Wr[R * K];
    static uint8_t q[R * K * 2];
    for (int i = 0; i < R * K; i++)
        W0[i] = 0.05f * urand() + (i % 29 == 0 ? 0.2f : 0.0f);
    make_inputs(N, K, X, H0);
    memcpy(W, W0, sizeof W);
    memcpy(H, H0, sizeof H);
    sl_gptq_opts o = {.act_order = act_order};
    sl_err err;
    cr_assert_eq(sl_gptq_quantize(type, W, R, K, H, &o, q, &err), SL_OK, "%s", err.msg);
    dequant_all(type, q, R, K, Wq);
    cr_assert_eq(sl_rtn_roundtrip(type, W0, R, K, Wr, &err), SL_OK);
    const double eg = sl_output_error(W0, Wq, R, K, H0), er = sl_output_error(W0, Wr, R, K, H0);
    cr_log_info("%s%s: output error GPTQ %.3g, RTN %.3g", sl_type_get(type)->name, act_order ? " act-order" : "", eg, er);
    cr_assert(eg < 0.8 * er, "%s: GPTQ %.4g is not clearly below RTN %.4g", sl_type_get(type)->name, eg, er);
}

Test(methods, gptq_beats_rtn_on_correlated_inputs)
{
    gptq_beats_rtn(SL_TYPE_Q4_0, false);
    gptq_beats_rtn(SL_TYPE_Q4_1, false);
    gptq_beats_rtn(SL_TYPE_Q8_0, false);
    gptq_beats_rtn(SL_TYPE_Q4_0, true);
    gptq_beats_rtn(SL_TYPE_Q4_K, false);
    gptq_beats_rtn(SL_TYPE_Q6_K, false);
    gptq_beats_rtn(SL_TYPE_IQ4_NL, false);
    gptq_beats_rtn(SL_TYPE_NF4, false);
    gptq_beats_rtn(SL_TYPE_Q4_K, true);
}

Test(methods, gptq_is_rtn_when_inputs_are_uncorrelated)
{
    /* H = I: no column can absorb another's error, so every value is its
     * block grid's nearest (the grids' own RTN) */
    enum { R = 8, K = 512 };
    static float W[R * K], W0[R * K], H[K * K], Wq[R * K], Wr[R * K];
    static uint8_t q[R * K * 2];
    for (int i = 0; i < R * K; i++)
        W0[i] = urand() * ((i / 32) % 4 ? 1.0f : 0.1f); /* sub-blocks of two sizes */
    const uint32_t types[] = {SL_TYPE_Q4_0, SL_TYPE_Q4_1, SL_TYPE_Q8_0, SL_TYPE_Q4_K, SL_TYPE_Q6_K, SL_TYPE_IQ4_NL, SL_TYPE_NF4};
    for (int t = 0; t < 7; t++) {
        memcpy(W, W0, sizeof W);
        memset(H, 0, sizeof H);
        for (int j = 0; j < K; j++)
            H[j * K + j] = 1.0f;
        sl_err err;
        cr_assert_eq(sl_gptq_quantize(types[t], W, R, K, H, NULL, q, &err), SL_OK, "%s", err.msg);
        dequant_all(types[t], q, R, K, Wq);
        cr_assert_eq(sl_rtn_roundtrip(types[t], W0, R, K, Wr, &err), SL_OK);
        for (int i = 0; i < R * K; i++)
            cr_assert_eq(Wq[i], Wr[i], "%s: element %d: %.9g vs %.9g (from %.9g)", sl_type_get(types[t])->name, i,
                         Wq[i], Wr[i], W0[i]);
    }
}

Test(methods, dead_inputs_and_singular_hessians)
{
    enum { R = 4, K = 32 };
    static float W[R * K], H[K * K];
    static uint8_t q[R * 34];
    for (int i = 0; i < R * K; i++)
        W[i] = urand();
    sl_err err;
    /* all zero: every input dead, weights zeroed, still a valid image */
    memset(H, 0, sizeof H);
    cr_assert_eq(sl_gptq_quantize(SL_TYPE_Q8_0, W, R, K, H, NULL, q, &err), SL_OK, "%s", err.msg);
    float back[R * K];
    dequant_all(SL_TYPE_Q8_0, q, R, K, back);
    for (int i = 0; i < R * K; i++)
        cr_assert_eq(back[i], 0.0f);
    /* rank one (all inputs equal): damping makes it invertible */
    for (int i = 0; i < R * K; i++)
        W[i] = urand();
    for (int i = 0; i < K * K; i++)
        H[i] = 4.0f;
    cr_assert_eq(sl_gptq_quantize(SL_TYPE_Q4_0, W, R, K, H, NULL, q, &err), SL_OK, "%s", err.msg);
    /* types without a grid, rows that are not whole blocks */
    cr_assert_eq(sl_gptq_quantize(SL_TYPE_F16, W, R, K, H, NULL, q, &err), SL_EUNSUPPORTED);
    cr_assert_eq(sl_gptq_quantize(SL_TYPE_Q4_0, W, R, 31, H, NULL, q, &err), SL_EUNSUPPORTED);
}

Test(methods, weighted_grid_never_loses_to_rtn_on_its_own_measure)
{
    float v[32], h[32];
    for (int trial = 0; trial < 200; trial++) {
        for (int j = 0; j < 32; j++) {
            v[j] = urand() * (j == trial % 32 ? 6.0f : 1.0f); /* one outlier */
            h[j] = 0.1f + fabsf(urand()) * (j % 5 == 0 ? 10.0f : 1.0f);
        }
        const uint32_t types[] = {SL_TYPE_Q4_0, SL_TYPE_Q4_1, SL_TYPE_Q8_0, SL_TYPE_IQ4_NL};
        for (int t = 0; t < 4; t++) {
            sl_grid g0, g1;
            sl_err err;
            cr_assert_eq(sl_grid_make(types[t], v, NULL, &g0, &err), SL_OK);
            cr_assert_eq(sl_grid_make(types[t], v, h, &g1, &err), SL_OK);
            double e0 = 0, e1 = 0;
            for (int j = 0; j < 32; j++) {
                double d0 = v[j] - sl_grid_value(&g0, sl_grid_quant(&g0, v[j]));
                double d1 = v[j] - sl_grid_value(&g1, sl_grid_quant(&g1, v[j]));
                e0 += h[j] * d0 * d0;
                e1 += h[j] * d1 * d1;
            }
            cr_assert_leq(e1, e0, "trial %d %s", trial, sl_type_get(types[t])->name);
        }
    }
}

Test(methods, grid_bytes_are_ggml_blocks)
{
    /* a block worked out by hand: q4_0 of 0, 1, ..., 15 and -16 .. -1:
     * extreme -16 -> d = 2, q = round(v / 2) + 8 */
    float v[32];
    for (int j = 0; j < 16; j++)
        v[j] = (float)j, v[16 + j] = (float)(j - 16);
    sl_grid g;
    sl_err err;
    cr_assert_eq(sl_grid_make(SL_TYPE_Q4_0, v, NULL, &g, &err), SL_OK);
    cr_assert_eq(g.d, 2.0f);
    int8_t q[32];
    for (int j = 0; j < 32; j++)
        q[j] = (int8_t)sl_grid_quant(&g, v[j]);
    sl_block_q4_0 b;
    sl_grid_pack(SL_TYPE_Q4_0, &g, q, &b);
    cr_assert_eq(b.d, 0x4000, "half 2.0");
    /* element 0 (q 8) low nibble, element 16 (-16 -> q 0) high nibble */
    cr_assert_eq(b.qs[0], 0x08);
    /* element 15: 15 / 2 + 8 = 15.5 -> 16, clamped to 15; element 31:
     * -1 / 2 + 8 = 7.5 -> 8 (as ggml's (int)(x / d + 8.5)) */
    cr_assert_eq(b.qs[15], 0x8f);
    float back[32];
    cr_assert_eq(sl_dequantize_row(SL_TYPE_Q4_0, &b, back, 32, &err), SL_OK);
    for (int j = 0; j < 32; j++)
        cr_assert_eq(back[j], sl_grid_value(&g, q[j]), "element %d", j);
}

Test(methods, awq_search_finds_the_loud_channels)
{
    /* loud input channels: the chosen scales grow with their activation */
    enum { R = 32, K = 64, N = 256 };
    static float W[R * K], X[N * K], H[K * K];
    for (int i = 0; i < R * K; i++)
        W[i] = 0.05f * urand();
    make_inputs(N, K, X, H);
    sl_calib_slot slot = {.k = K, .H = H, .n = N, .sample = X, .n_sample = N};
    double sums[K] = {0};
    for (int t = 0; t < N; t++)
        for (int j = 0; j < K; j++)
            sums[j] += fabs(X[t * K + j]);
    slot.abs_sum = sums;
    float s[K], alpha;
    double e, e0;
    const float *Wp[1] = {W};
    int rows[1] = {R};
    sl_err err;
    cr_assert_eq(sl_awq_search(SL_TYPE_Q4_0, Wp, rows, 1, K, &slot, s, &alpha, &e, &e0, &err), SL_OK, "%s", err.msg);
    cr_log_info("AWQ alpha %.2f, error %.4g (RTN %.4g)", alpha, e, e0);
    cr_assert_leq(e, e0, "the search includes alpha 0 (plain RTN)");
    cr_assert_gt(alpha, 0.0f, "loud channels should pull alpha above 0");
    cr_assert_gt(s[3], s[4], "channel 3 is loud, 4 is not");
}

static int maps_has(const char *lib)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f))
        found |= strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

/* OpenBLAS's threads spin on the engine's cores for a while after it
 * loads: nothing but an optimizer method may load it (sl_blas.h). */
Test(methods, blas_loads_only_when_a_method_needs_it)
{
    cr_assert(!maps_has("libopenblas"), "OpenBLAS is mapped before any method ran");
    sl_err err = {0};
    const sl_blas_fns *b = sl_blas(&err);
    cr_assert_not_null(b, "%s", err.msg);
    cr_assert(maps_has("libopenblas"));
    float a[4] = {2, 1, 1, 3}, x[2] = {1, 1}, y[2] = {0, 0}; /* [2 1; 1 3] [1 1]^T = [3 4]^T */
    b->sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2, 1, 2, 1.0f, a, 2, x, 1, 0.0f, y, 1);
    cr_assert(y[0] == 3.0f && y[1] == 4.0f, "%g %g", (double)y[0], (double)y[1]);
}
