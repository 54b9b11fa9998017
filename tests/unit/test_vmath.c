/* test_vmath.c - the element-wise math of the forward pass: sl_expf against
 * glibc's expf over a sweep of every float's bit patterns, the vector
 * versions against the scalar ones bit for bit, and RMSNorm against run.c's
 * loop.  SLUICE_EXHAUSTIVE=1 sweeps all 2^32 patterns instead of every
 * 61st (about a minute more). */
#include <gnu/libc-version.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_kernels.h"
#include "sl_vmath.h"
#include "test_support.h"

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* NaNs compare by being NaN (their payloads are libm's business) */
static int same(float a, float b) { return (isnan(a) && isnan(b)) || bits(a) == bits(b); }

static uint64_t sweep_stride(void)
{
    const char *s = getenv("SLUICE_EXHAUSTIVE");
    return s && *s == '1' ? 1 : 61;
}

/* Inputs at and around every special-case threshold and the table's edges. */
static const float edges[] = {
    0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, -88.0f, 0x1.62e42ep6f, 0x1.62e430p6f, -0x1.9fe368p6f,
    -0x1.9fe36ap6f, -0x1.9d1d9ep6f, -0x1.9d1da0p6f, -0x1.9d1d9cp6f, 0x1p-149f, -0x1p-149f, 0x1.fffffep127f,
    -0x1.fffffep127f, 1.0f, -1.0f, 0.5f, 1e-30f, 87.99999f, -103.5f,
};

Test(vmath, sl_expf_is_glibcs_expf)
{
    /* glibc 2.28+ on a CPU with AVX2 and FMA runs the FMA build of this very
     * algorithm; elsewhere libm's expf is another function. */
    int major = 0, minor = 0;
    if (sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 || major * 100 + minor < 228 ||
        !__builtin_cpu_supports("fma") || !__builtin_cpu_supports("avx2"))
        cr_skip_test("libm here is not glibc >= 2.28 on an FMA CPU (%s)", gnu_get_libc_version());
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        cr_assert(same(sl_expf(edges[i]), expf(edges[i])), "x = %a: %a vs expf's %a", (double)edges[i],
                  (double)sl_expf(edges[i]), (double)expf(edges[i]));
    const uint64_t stride = sweep_stride();
    uint64_t n = 0, bad = 0;
    uint32_t first_bad = 0;
    for (uint64_t u = 0; u < (1ull << 32); u += stride, n++) {
        const float x = from_bits((uint32_t)u);
        if (!same(sl_expf(x), expf(x)) && bad++ == 0)
            first_bad = (uint32_t)u;
    }
    cr_assert_eq(bad, 0, "%llu of %llu inputs differ from expf, the first %a", (unsigned long long)bad,
                 (unsigned long long)n, (double)from_bits(first_bad));
    cr_log_info("sl_expf == expf on %llu inputs", (unsigned long long)n);
}

/* The kernels' exp_shift and swiglu at every level against the scalar
 * functions, over the same sweep, with tails of every length. */
Test(vmath, vector_exp_and_swiglu_match_scalar_bit_for_bit)
{
    enum { CH = 4096 };
    static float in[CH], a[CH], b[CH], h2[CH];
    const uint64_t stride = sweep_stride();
    for (int isa = SL_ISA_AVX2; isa < SL_ISA_COUNT; isa++) {
        const sl_kernels *k = sl_kernels_for((sl_isa)isa);
        const sl_kernels *below = isa > SL_ISA_AVX2 ? sl_kernels_for((sl_isa)(isa - 1)) : NULL;
        if (!k || (below && below->exp_shift == k->exp_shift && below->swiglu == k->swiglu))
            continue; /* the level below's functions, tested there */
        uint64_t u = 0, n = 0;
        for (int c = 0; u < (1ull << 32); c++) {
            int m = 0;
            if (c == 0)
                for (; m < (int)(sizeof edges / sizeof edges[0]); m++)
                    in[m] = edges[m];
            for (; m < CH && u < (1ull << 32); m++, u += stride)
                in[m] = from_bits((uint32_t)u);
            const int len = m - c % 16; /* a tail of 0..15 after the 8- or 16-wide part */
            for (int i = 0; i < len; i++)
                h2[i] = from_bits(0x3f800000u + (uint32_t)i * 977u); /* 1 .. 2 */
            const float shift = (c & 1) ? 0.0f : 3.25f;
            memcpy(a, in, sizeof(float) * (size_t)len);
            memcpy(b, in, sizeof(float) * (size_t)len);
            k->exp_shift(a, len, shift);
            sl_exp_shift_scalar(b, len, shift);
            for (int i = 0; i < len; i++)
                cr_assert(same(a[i], b[i]), "%s exp_shift(%a - %g): %a vs %a", k->name, (double)in[i], (double)shift,
                          (double)a[i], (double)b[i]);
            memcpy(a, in, sizeof(float) * (size_t)len);
            memcpy(b, in, sizeof(float) * (size_t)len);
            k->swiglu(a, h2, len);
            sl_swiglu_scalar(b, h2, len);
            for (int i = 0; i < len; i++)
                cr_assert(same(a[i], b[i]), "%s swiglu(%a): %a vs %a", k->name, (double)in[i], (double)a[i],
                          (double)b[i]);
            n += (uint64_t)len;
        }
        cr_log_info("%s: %llu inputs", k->name, (unsigned long long)n);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* run.c's rmsnorm, as written there */
static void rmsnorm_runc(float *o, const float *x, const float *weight, int size)
{
    float ss = 0.0f;
    for (int j = 0; j < size; j++)
        ss += x[j] * x[j];
    ss /= size;
    ss += 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++)
        o[j] = weight[j] * (ss * x[j]);
}

Test(vmath, rmsnorm_is_run_c_at_every_level_and_token_count)
{
    const int sizes[] = {64, 172, 768, 2048};
    enum { MAXN = 2048, MAXT = 19 };
    static float x[MAXT * MAXN], w[MAXN], o[MAXT * MAXN], ref[MAXN];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int n = sizes[s];
        for (int i = 0; i < MAXT * n; i++)
            x[i] = frand() * (float)(1 + i % 7) * 3.0f;
        for (int j = 0; j < n; j++)
            w[j] = 0.5f + frand();
        for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
            const sl_kernels *k = sl_kernels_for((sl_isa)isa);
            if (!k)
                continue;
            for (int nt = 1; nt <= MAXT; nt++) {
                memset(o, 0, sizeof(float) * (size_t)(nt * n));
                k->rmsnorm(o, x, w, n, nt, 1e-5f);
                for (int t = 0; t < nt; t++) {
                    rmsnorm_runc(ref, x + (size_t)t * n, w, n);
                    cr_assert_arr_eq(o + (size_t)t * n, ref, sizeof(float) * (size_t)n,
                                     "%s: n %d, token %d of %d differs from run.c", k->name, n, t, nt);
                }
            }
        }
    }
}

/* Softmax's largest score and its division, and the residual add, 4 lanes
 * at a time, against the loops they replace: every length to 41, NaNs and
 * signed zeros anywhere. */
Test(vmath, max_div_and_add_are_the_loops)
{
    float x[41], y[41], z[41];
    const float odd[] = {NAN, -0.0f, 0.0f, INFINITY, -INFINITY, 3.5f};
    for (int round = 0; round < 400; round++)
        for (int n = 1; n <= 41; n++) {
            for (int i = 0; i < n; i++) {
                const float r = frand();
                x[i] = (rng >> 59) == 0 ? odd[(rng >> 20) % 6] : r * 8.0f; /* 1 in 32 */
            }
            float m = x[0];
            for (int i = 1; i < n; i++)
                if (x[i] > m)
                    m = x[i];
            const float got = sl_max_f32(x, n);
            /* where zeros tie for the largest, either sign: x - max is then
             * the same but for a zero's sign, which exp does not see */
            cr_assert(same(got, m) || (got == 0.0f && m == 0.0f), "max of %d (round %d): %a, the loop %a", n, round,
                      (double)got, (double)m);
            const float d = round % 7 == 0 ? odd[round % 6] : frand() + 0.5f;
            memcpy(y, x, sizeof(float) * (size_t)n);
            sl_div_f32(y, n, d);
            for (int i = 0; i < n; i++)
                cr_assert(same(y[i], x[i] / d), "%a / %a: %a, not %a", (double)x[i], (double)d, (double)y[i],
                          (double)(x[i] / d));
            for (int i = 0; i < n; i++) /* the quotients, and every fifth -x[i] (a sum of exactly zero) */
                z[i] = i % 5 == 0 ? -x[i] : y[i];
            memcpy(y, x, sizeof(float) * (size_t)n);
            sl_add_f32(y, z, n);
            for (int i = 0; i < n; i++)
                cr_assert(same(y[i], x[i] + z[i]), "%a + %a: %a, not %a", (double)x[i], (double)z[i], (double)y[i],
                          (double)(x[i] + z[i]));
        }
}
