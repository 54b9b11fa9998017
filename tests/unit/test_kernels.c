/* test_kernels.c - every SIMD kernel against its scalar twin, the scalar
 * kernels against exact double arithmetic, and the invariance rule: a
 * (row, token) value does not depend on the other rows and tokens of the
 * call. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_kernels.h"
#include "sl_types.h"
#include "test_support.h"

static const uint32_t ggml_of[SL_W_COUNT] = {SL_TYPE_F32,  SL_TYPE_F16,  SL_TYPE_BF16, SL_TYPE_Q8_0,   SL_TYPE_Q4_0,
                                             SL_TYPE_Q4_1, SL_TYPE_Q4_K, SL_TYPE_Q6_K, SL_TYPE_IQ4_NL, SL_TYPE_NF4};

static uint64_t rng = 0x1234567;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

typedef struct prob {
    int wt, rows, k, nt;
    size_t row_bytes;
    uint8_t *w;
    float *wf;   /* dequantized weights */
    float *x;    /* activations as floats */
    double *xd;  /* activations as the kernels see them (dequantized q8 for quantized types) */
} prob;

static void make(prob *p, int wt, int rows, int k, int nt)
{
    memset(p, 0, sizeof *p);
    p->wt = wt, p->rows = rows, p->k = k, p->nt = nt;
    uint64_t rb;
    cr_assert_eq(sl_type_row_bytes(ggml_of[wt], (uint64_t)k, &rb, NULL), SL_OK);
    p->row_bytes = rb;
    p->w = malloc(rb * rows);
    p->wf = malloc(sizeof(float) * rows * k);
    float *tmp = malloc(sizeof(float) * k);
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < k; i++)
            tmp[i] = frand() * (r % 3 == 0 ? 100.0f : 1.0f); /* some rows with large values */
        cr_assert_eq(sl_quantize_row(ggml_of[wt], tmp, p->w + r * rb, (uint64_t)k, NULL), SL_OK);
        cr_assert_eq(sl_dequantize_row(ggml_of[wt], p->w + r * rb, p->wf + (size_t)r * k, (uint64_t)k, NULL), SL_OK);
    }
    free(tmp);
    p->x = malloc(sizeof(float) * nt * k);
    p->xd = malloc(sizeof(double) * nt * k);
    for (int i = 0; i < nt * k; i++)
        p->x[i] = frand();
    for (int t = 0; t < nt; t++) {
        for (int b = 0; b < k / 32 && sl_wtype_quantized(wt); b++) {
            sl_block_q8x q;
            sl_quantize_act(p->x + (size_t)t * k + 32 * b, &q, 32);
            for (int i = 0; i < 32; i++)
                p->xd[(size_t)t * k + 32 * b + i] = (double)q.d * q.qs[i];
        }
        if (!sl_wtype_quantized(wt))
            for (int i = 0; i < k; i++)
                p->xd[(size_t)t * k + i] = p->x[(size_t)t * k + i];
    }
}

/* The kernel's input for p: floats, or activations in ks's layout. */
static void *input(const sl_kernels *ks, const prob *p, size_t *stride)
{
    if (!sl_wtype_quantized(p->wt)) {
        *stride = sizeof(float) * p->k;
        return NULL;
    }
    *stride = ks->act_bytes(p->k);
    uint8_t *q = aligned_alloc(64, (*stride * p->nt + 63) & ~(size_t)63);
    for (int t = 0; t < p->nt; t++)
        ks->act_quant(p->x + (size_t)t * p->k, q + *stride * t, p->k);
    return q;
}

static void unmake(prob *p)
{
    free(p->w);
    free(p->wf);
    free(p->x);
    free(p->xd);
}

static float *run(const sl_kernels *ks, const prob *p)
{
    float *y = malloc(sizeof(float) * p->nt * p->rows);
    size_t stride;
    void *q = input(ks, p, &stride);
    ks->gemm[p->wt](p->w, p->row_bytes, 0, p->rows, q ? q : p->x, stride, p->nt, p->k, y, p->rows);
    free(q);
    return y;
}

/* Worst-case float error of a k-term sum in a different order: k units of
 * 2^-24 relative to sum |terms|, doubled for the scale products of the
 * quantized kernels. */
static double bound(const prob *p, int r, int t, double *exact)
{
    double s = 0.0, a = 0.0;
    for (int i = 0; i < p->k; i++) {
        double v = (double)p->wf[(size_t)r * p->k + i] * p->xd[(size_t)t * p->k + i];
        s += v;
        a += fabs(v);
    }
    *exact = s;
    const double terms = sl_wtype_quantized(p->wt) ? 2.0 * (p->k / 32 + 16) : (double)p->k + 16;
    return terms * ldexp(1.0, -23) * a + 1e-30;
}

static void check_type(int wt)
{
    const int fk[] = {1, 7, 8, 15, 16, 31, 33, 64, 172, 261};
    /* odd block counts too, and 40 and 65 blocks: AMX transposes Q4
     * weights in chunks of 32 blocks, its accumulators crossing chunks
     * through y */
    const int qk[] = {32, 64, 96, 160, 256, 288, 1280, 2080};
    const int kk[] = {256, 512, 768, 1280, 2816}; /* super-block types: 1, 2, 3, 5, 11 super-blocks */
    const bool super = sl_type_get(ggml_of[wt])->block_elems == 256;
    const int *ks = super ? kk : sl_wtype_quantized(wt) ? qk : fk;
    const int nk = super ? 5 : sl_wtype_quantized(wt) ? 8 : 10;
    int checked_isa = 0;
    for (int ki = 0; ki < nk; ki++) {
        prob p;
        /* 40 tokens: two full 16-token tiles and a tail, and past the AMX
         * levels' thresholds (4 tokens for Q8_0, 32 for Q4_0 and Q4_1) */
        make(&p, wt, 37, ks[ki], 40);
        float *ref = run(&sl_kernels_scalar, &p);
        for (int r = 0; r < p.rows; r++)
            for (int t = 0; t < p.nt; t++) {
                double exact, b = bound(&p, r, t, &exact);
                cr_assert(fabs(ref[(size_t)t * p.rows + r] - exact) <= b,
                          "scalar %s k=%d r=%d t=%d: %.9g vs exact %.9g (bound %.3g)", sl_kernels_scalar.gemm_name[wt],
                          p.k, r, t, ref[(size_t)t * p.rows + r], exact, b);
            }
        for (int isa = SL_ISA_AVX2; isa < SL_ISA_COUNT; isa++) {
            const sl_kernels *k = sl_kernels_for((sl_isa)isa);
            if (!k)
                continue;
            checked_isa++;
            float *y = run(k, &p);
            for (int r = 0; r < p.rows; r++)
                for (int t = 0; t < p.nt; t++) {
                    double exact, b = bound(&p, r, t, &exact);
                    const float a = y[(size_t)t * p.rows + r], s = ref[(size_t)t * p.rows + r];
                    cr_assert(fabs((double)a - s) <= 2 * b, "%s vs scalar, k=%d r=%d t=%d: %.9g vs %.9g (bound %.3g)",
                              k->gemm_name[wt], p.k, r, t, a, s, 2 * b);
                }
            /* Invariance: each token alone, and rows in odd slices, give the
             * same bits (at "amx", alone runs the VNNI tile, the batch AMX). */
            size_t stride;
            uint8_t *q = input(k, &p, &stride);
            const uint8_t *xin = q ? q : (const uint8_t *)p.x;
            for (int t = 0; t < p.nt; t++) {
                float *y1 = malloc(sizeof(float) * p.rows);
                const uint8_t *xt = xin + (size_t)t * stride;
                for (int r0 = 0; r0 < p.rows; r0 += 5) {
                    int r1 = r0 + 5 < p.rows ? r0 + 5 : p.rows;
                    k->gemm[wt](p.w, p.row_bytes, r0, r1, xt, stride, 1, p.k, y1, p.rows);
                }
                cr_assert(memcmp(y1, y + (size_t)t * p.rows, sizeof(float) * p.rows) == 0,
                          "%s: token %d alone differs from the same token in a batch of %d (k=%d)", k->gemm_name[wt], t,
                          p.nt, p.k);
                free(y1);
            }
            /* batches of 7 and 12 (tiles padded to 8 and 16 at AVX-512)
             * give their tokens the bits of the batch of 40 */
            for (int nb = 7; nb <= 12; nb += 5) {
                float *yb = malloc(sizeof(float) * (size_t)nb * p.rows);
                k->gemm[wt](p.w, p.row_bytes, 0, p.rows, xin, stride, nb, p.k, yb, p.rows);
                cr_assert(memcmp(yb, y, sizeof(float) * (size_t)nb * p.rows) == 0,
                          "%s: a batch of %d differs from the first %d of a batch of %d (k=%d)", k->gemm_name[wt], nb,
                          nb, p.nt, p.k);
                free(yb);
            }
            /* the input prepared once (sl_kernels.xprep, as the engine does
             * per product) gives gemm's bits, in row slices too */
            const size_t xpb = k->gemm_xp[wt] ? k->xprep_bytes(p.nt, p.k) : 0;
            if (xpb) {
                void *xp = malloc(xpb);
                float *yx = malloc(sizeof(float) * (size_t)p.nt * p.rows);
                k->xprep(xin, stride, p.nt, p.k, xp);
                for (int r0 = 0; r0 < p.rows; r0 += 21) {
                    int r1 = r0 + 21 < p.rows ? r0 + 21 : p.rows;
                    k->gemm_xp[wt](p.w, p.row_bytes, r0, r1, xp, p.nt, p.k, yx, p.rows);
                }
                cr_assert(memcmp(yx, y, sizeof(float) * (size_t)p.nt * p.rows) == 0,
                          "%s: the prepared input's product differs from gemm's (k=%d)", k->gemm_name[wt], p.k);
                free(yx);
                free(xp);
            }
            free(q);
            free(y);
        }
        free(ref);
        unmake(&p);
    }
    if (!checked_isa)
        cr_log_warn("no SIMD level on this CPU: only the scalar kernels were checked");
}

Test(kernels, f32) { check_type(SL_W_F32); }
Test(kernels, f16) { check_type(SL_W_F16); }
Test(kernels, bf16) { check_type(SL_W_BF16); }
Test(kernels, q8_0) { check_type(SL_W_Q8_0); }
Test(kernels, q4_0) { check_type(SL_W_Q4_0); }
Test(kernels, q4_1) { check_type(SL_W_Q4_1); }
Test(kernels, q4_k) { check_type(SL_W_Q4_K); }
Test(kernels, q6_k) { check_type(SL_W_Q6_K); }
Test(kernels, iq4_nl) { check_type(SL_W_IQ4_NL); }
Test(kernels, nf4) { check_type(SL_W_NF4); }

Test(kernels, activation_quantizer)
{
    float x[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i - 20) * 0.5f;
    x[40] = 0.0f;
    sl_block_q8x q[2];
    sl_quantize_act(x, q, 64);
    /* block 0: amax 10 at i=0 -> d = 10/127, x=-10 -> -127 */
    cr_assert_float_eq(q[0].d, 10.0f / 127.0f, 0.0f);
    cr_assert_eq(q[0].qs[0], -127);
    int32_t s = 0;
    for (int i = 0; i < 32; i++) {
        cr_assert_leq(abs(q[0].qs[i]), 127);
        cr_assert(fabsf(q[0].qs[i] * q[0].d - x[i]) <= q[0].d / 2 * 1.0001f, "element %d off by more than half a step", i);
        s += q[0].qs[i];
    }
    cr_assert_eq(q[0].s, s);
    /* an all-zero block has scale 0 and zero quants */
    float z[32] = {0};
    sl_quantize_act(z, q, 32);
    cr_assert_eq(q[0].d, 0.0f);
    cr_assert_eq(q[0].s, 0);
}

Test(kernels, dispatch)
{
    cr_assert_not_null(sl_kernels_for(SL_ISA_SCALAR));
    cr_assert_eq(sl_isa_parse("avx2"), SL_ISA_AVX2);
    cr_assert_eq(sl_isa_parse("sse9"), -1);
    setenv("SLUICE_ISA", "scalar", 1);
    cr_assert_eq(sl_isa_select(), SL_ISA_SCALAR);
    unsetenv("SLUICE_ISA");
    sl_isa best = sl_isa_select();
    cr_assert_not_null(sl_kernels_for(best));
    cr_assert_eq(sl_wtype_from_ggml(SL_TYPE_Q4_1), SL_W_Q4_1);
    cr_assert_eq(sl_wtype_from_ggml(SL_TYPE_Q4_K), SL_W_Q4_K);
    cr_assert_eq(sl_wtype_from_ggml(SL_TYPE_Q5_K), -1);
}

Test(kernels, attention_scores_and_accumulation)
{
    enum { STRIDE = 150, NP = 16 };
    static float q[130], k[NP * STRIDE], att[NP], o[130], o2[130];
    for (int i = 0; i < NP * STRIDE; i++)
        k[i] = frand() * 3;
    for (int n = 1; n <= 130; n += 7) {
        for (int i = 0; i < n; i++)
            q[i] = frand();
        for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
            const sl_kernels *ks = sl_kernels_for((sl_isa)isa);
            if (!ks)
                continue;
            ks->attn_scores(q, k, STRIDE, NP, n, 2.0f, att);
            for (int p = 0; p < NP; p++) {
                double exact = 0, mag = 0;
                for (int i = 0; i < n; i++) {
                    exact += (double)q[i] * k[p * STRIDE + i];
                    mag += fabs((double)q[i] * k[p * STRIDE + i]);
                }
                cr_assert(fabs(att[p] - exact / 2) <= (n + 16) * ldexp(1.0, -23) * mag, "%s scores hd=%d p=%d: %.9g vs %.9g",
                          ks->name, n, p, att[p], exact / 2);
            }
            for (int i = 0; i < n; i++)
                o[i] = o2[i] = q[i];
            ks->attn_accum(o, att, k, STRIDE, NP, n);
            for (int i = 0; i < n; i++) {
                double mag = fabs(o2[i]);
                for (int p = 0; p < NP; p++) {
                    o2[i] += att[p] * k[p * STRIDE + i];
                    mag += fabs(att[p] * k[p * STRIDE + i]);
                }
                cr_assert(fabs(o[i] - o2[i]) <= (NP + 4) * ldexp(1.0, -23) * mag, "%s accum hd=%d i=%d: %.9g vs %.9g",
                          ks->name, n, i, o[i], o2[i]);
            }
        }
    }
}

Test(kernels, avx512_activation_quantizer_is_exact)
{
    if (!sl_kernels_for(SL_ISA_AVX512))
        cr_skip_test("no AVX-512 on this CPU");
    for (int r = 0; r < 2000; r++) {
        float x[32];
        for (int i = 0; i < 32; i++)
            x[i] = frand() * (r % 7 == 0 ? 1e-30f : r % 5 == 0 ? 1e4f : 1.0f);
        if (r % 3 == 0) /* exact ties: amax 127 gives d = 1, so x + 0.5 lands on .5 */
            for (int i = 0; i < 32; i++)
                x[i] = i == 0 ? 127.0f : (float)((int)(frand() * 120)) + 0.5f;
        if (r % 3 == 1 && r % 7 && r % 5) /* a float step either side of a tie, either sign (d = 1 again):
                                           * rounding x + 0.5 to nearest in float gets the one below wrong */
            for (int i = 0; i < 32; i++) {
                const float tie = (float)((int)(frand() * 120)) + 0.5f;
                x[i] = i == 0 ? -127.0f : nextafterf(tie, i % 2 ? 0.0f : 200.0f) * (i % 4 < 2 ? 1.0f : -1.0f);
            }
        if (r == 1)
            memset(x, 0, sizeof x);
        sl_block_q8x ref;
        sl_quantize_act(x, &ref, 32);
        int8_t qs[32];
        float d;
        int32_t s;
        sl_quantize_block_avx512(x, qs, &d, &s);
        cr_assert(memcmp(qs, ref.qs, 32) == 0 && d == ref.d && s == ref.s, "block %d differs from sl_quantize_act", r);
    }
}

/* W8A8: every level gives the exact integer dot product (so the same bits
 * at every level, alone or in a batch), for row lengths with and without a
 * SIMD tail. */
Test(kernels, w8a8_products_are_exact_integers)
{
    const int ks[] = {1, 7, 31, 32, 33, 64, 100, 172, 1000, 4097};
    enum { R = 21, T = 19 };
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        const int k = ks[ki];
        int8_t *w = malloc((size_t)R * k);
        const size_t stride = sl_w8a8_act_bytes(k);
        uint8_t *x = aligned_alloc(64, stride * T);
        float *xf = malloc(sizeof(float) * k), *y = malloc(sizeof(float) * R * T), *y1 = malloc(sizeof(float) * R);
        for (int i = 0; i < R * k; i++)
            w[i] = (int8_t)(frand() * 127.0f); /* -127..127 */
        for (int t = 0; t < T; t++) {
            for (int i = 0; i < k; i++)
                xf[i] = frand() * (t + 1);
            sl_w8a8_act_quant(xf, x + stride * t, k, t % 2 ? 0.0f : 0.05f); /* dynamic and static */
        }
        for (int isa = SL_ISA_SCALAR; isa < SL_ISA_COUNT; isa++) {
            const sl_kernels *kk = sl_kernels_for((sl_isa)isa);
            if (!kk)
                continue;
            kk->gemm[SL_W_W8A8]((const uint8_t *)w, (size_t)k, 0, R, x, stride, T, k, y, R);
            for (int t = 0; t < T; t++) {
                const int8_t *xq = (const int8_t *)(x + stride * t + sizeof(sl_w8a8_act));
                for (int r = 0; r < R; r++) {
                    int64_t s = 0;
                    for (int i = 0; i < k; i++)
                        s += w[(size_t)r * k + i] * xq[i];
                    cr_assert_eq(y[t * R + r], (float)s, "%s k=%d r=%d t=%d: %.1f vs %lld", kk->gemm_name[SL_W_W8A8],
                                 k, r, t, (double)y[t * R + r], (long long)s);
                }
                kk->gemm[SL_W_W8A8]((const uint8_t *)w, (size_t)k, 3, R, x + stride * t, stride, 1, k, y1, R);
                cr_assert(memcmp(y1 + 3, y + t * R + 3, sizeof(float) * (R - 3)) == 0, "%s: alone differs",
                          kk->gemm_name[SL_W_W8A8]);
            }
        }
        free(w);
        free(x);
        free(xf);
        free(y);
        free(y1);
    }
}

Test(kernels, w8a8_activation_scales)
{
    float x[40];
    for (int i = 0; i < 40; i++)
        x[i] = (float)(i - 20) / 4.0f; /* -5 .. 4.75 */
    _Alignas(64) uint8_t buf[sizeof(sl_w8a8_act) + 64];
    const sl_w8a8_act *h = (const sl_w8a8_act *)buf;
    const int8_t *q = (const int8_t *)(buf + sizeof(sl_w8a8_act));
    sl_w8a8_act_quant(x, buf, 40, 0.0f); /* dynamic: amax 5 -> 127 */
    cr_assert_eq(h->s, 5.0f / 127.0f);
    cr_assert_eq(q[0], -127);
    cr_assert_eq(q[20], 0);
    int32_t s = 0;
    for (int i = 0; i < 40; i++)
        s += q[i];
    cr_assert_eq(h->sum, s);
    for (int i = 40; i < 64; i++)
        cr_assert_eq(q[i], 0, "padding must be zero");
    sl_w8a8_act_quant(x, buf, 40, 0.02f); /* static: 1/0.02 = 50 per unit, clipped at 127 */
    cr_assert_eq(h->s, 0.02f);
    cr_assert_eq(q[0], -127, "-5 / 0.02 = -250 clips");
    cr_assert_eq(q[21], 13, "0.25 / 0.02 = 12.5 rounds away from zero");
    cr_assert_eq(q[39], 127);
}
