/* vmath.c - scalar element-wise math (sl_vmath.h). */
#include <emmintrin.h>
#include <math.h>
#include <string.h>

#include "sl_vmath.h"

const uint64_t sl_expf_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};

float sl_expf(float x)
{
    uint32_t ux;
    memcpy(&ux, &x, 4);
    const uint32_t abstop = (ux >> 20) & 0x7ff;
    if (abstop > SL_EXPF_ABSTOP_MAX) { /* expf's special cases, less errno */
        if (ux == 0xff800000u)
            return 0.0f;
        if (abstop >= 0x7f8)
            return x + x;
        if (x > 0x1.62e42ep6f) /* log(2^128) */
            return INFINITY;
        if (x < -0x1.9fe368p6f) /* log(2^-150) */
            return 0.0f;
        if (x < -0x1.9d1d9ep6f) /* log(2^-149): glibc's 0x1.4p-75f squared */
            return 0x1p-149f;
    }
    /* x * 32 / ln 2 = k + r, k rounded to even by the shift; fma() is the
     * fused operation on every machine (in hardware or in software). */
    const double xd = x;
    double kd = fma(SL_EXPF_INVLN2N, xd, SL_EXPF_SHIFT);
    uint64_t ki;
    memcpy(&ki, &kd, 8);
    kd -= SL_EXPF_SHIFT;
    const double r = fma(SL_EXPF_INVLN2N, xd, -kd);
    const uint64_t t = sl_expf_tab[ki % 32] + (ki << 47);
    double s;
    memcpy(&s, &t, 8);
    const double z = fma(r, SL_EXPF_C0, SL_EXPF_C1);
    const double r2 = r * r;
    double y = fma(r, SL_EXPF_C2, 1.0);
    y = fma(z, r2, y);
    return (float)(y * s);
}

void sl_rmsnorm_scalar(float *o, const float *x, const float *w, int n, int nt, float eps)
{
    for (int t = 0; t < nt; t++, o += n, x += n) {
        float ss = 0.0f;
        for (int j = 0; j < n; j++)
            ss += x[j] * x[j];
        ss /= (float)n;
        ss += eps;
        ss = 1.0f / sqrtf(ss);
        for (int j = 0; j < n; j++)
            o[j] = w[j] * (ss * x[j]);
    }
}

void sl_swiglu_scalar(float *h, const float *h2, int n)
{
    for (int i = 0; i < n; i++) {
        float val = h[i];
        val *= (1.0f / (1.0f + sl_expf(-val)));
        val *= h2[i];
        h[i] = val;
    }
}

void sl_exp_shift_scalar(float *a, int n, float shift)
{
    for (int i = 0; i < n; i++)
        a[i] = sl_expf(a[i] - shift);
}

float sl_max_f32(const float *x, int n)
{
    float m = x[0];
    if (n <= 1 || m != m)
        return m;
    __m128 v = _mm_set1_ps(m);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        v = _mm_max_ps(_mm_loadu_ps(x + i), v); /* a NaN in the first operand yields the second */
    float lanes[4];
    _mm_storeu_ps(lanes, v);
    for (int l = 0; l < 4; l++)
        m = lanes[l] > m ? lanes[l] : m;
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

void sl_div_f32(float *x, int n, float d)
{
    const __m128 v = _mm_set1_ps(d);
    int i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(x + i, _mm_div_ps(_mm_loadu_ps(x + i), v));
    for (; i < n; i++)
        x[i] /= d;
}

void sl_add_f32(float *x, const float *y, int n)
{
    int i = 0;
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(x + i, _mm_add_ps(_mm_loadu_ps(x + i), _mm_loadu_ps(y + i)));
    for (; i < n; i++)
        x[i] += y[i];
}
