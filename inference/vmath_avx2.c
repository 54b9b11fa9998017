/* vmath_avx2.c - element-wise math, 8 lanes (sl_vmath.h): sl_expf's double
 * steps 4 at a time, RMSNorm's sums one token per lane.  Built with AVX2
 * and FMA, entered only after the CPU check; the AVX-512 levels use it too
 * (these steps are a small part of a token, and one copy is one to keep
 * exact). */
#include <immintrin.h>
#include <math.h>

#include "sl_vmath.h"

#define INLINE static inline __attribute__((always_inline))

INLINE __m256d exp_core(__m256d xd)
{
    const __m256d invln2n = _mm256_set1_pd(SL_EXPF_INVLN2N), shift = _mm256_set1_pd(SL_EXPF_SHIFT);
    __m256d kd = _mm256_fmadd_pd(invln2n, xd, shift);
    const __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    const __m256d r = _mm256_fmsub_pd(invln2n, xd, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)(const void *)sl_expf_tab,
                                       _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
    const __m256d z = _mm256_fmadd_pd(r, _mm256_set1_pd(SL_EXPF_C0), _mm256_set1_pd(SL_EXPF_C1));
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(r, _mm256_set1_pd(SL_EXPF_C2), _mm256_set1_pd(1.0));
    y = _mm256_fmadd_pd(z, r2, y);
    return _mm256_mul_pd(y, _mm256_castsi256_pd(t));
}

/* sl_expf of 8 lanes; lanes with |x| >= 88 or NaN (rare) take the scalar
 * function's special cases */
INLINE __m256 expf8(__m256 x)
{
    const __m128 lo = _mm256_cvtpd_ps(exp_core(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    const __m128 hi = _mm256_cvtpd_ps(exp_core(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    __m256 y = _mm256_set_m128(hi, lo);
    const __m256i abstop = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const __m256i special = _mm256_cmpgt_epi32(abstop, _mm256_set1_epi32(SL_EXPF_ABSTOP_MAX));
    unsigned lanes = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(special));
    if (lanes) { /* only those lanes: the others already have sl_expf's bits */
        float xs[8], ys[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(ys, y);
        for (; lanes; lanes &= lanes - 1)
            ys[__builtin_ctz(lanes)] = sl_expf(xs[__builtin_ctz(lanes)]);
        y = _mm256_loadu_ps(ys);
    }
    return y;
}

/* lanes below m of a tail: maskload reads nothing past them */
INLINE __m256i tail_mask(int m)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

void sl_swiglu_avx2(float *h, const float *h2, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(h + i);
        const __m256 g = _mm256_div_ps(one, _mm256_add_ps(one, expf8(_mm256_xor_ps(v, sign))));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_mul_ps(v, g), _mm256_loadu_ps(h2 + i)));
    }
    if (i < n) { /* the lanes past n compute on zeros and are not stored */
        const __m256i m = tail_mask(n - i);
        const __m256 v = _mm256_maskload_ps(h + i, m);
        const __m256 g = _mm256_div_ps(one, _mm256_add_ps(one, expf8(_mm256_xor_ps(v, sign))));
        _mm256_maskstore_ps(h + i, m, _mm256_mul_ps(_mm256_mul_ps(v, g), _mm256_maskload_ps(h2 + i, m)));
    }
}

void sl_exp_shift_avx2(float *a, int n, float shift)
{
    const __m256 s = _mm256_set1_ps(shift);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(a + i, expf8(_mm256_sub_ps(_mm256_loadu_ps(a + i), s)));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(a + i, m, expf8(_mm256_sub_ps(_mm256_maskload_ps(a + i, m), s)));
    }
}

void sl_rmsnorm_avx2(float *o, const float *x, const float *w, int n, int nt, float eps)
{
    for (int t0 = 0; t0 < nt; t0 += 8) {
        const int m = nt - t0 < 8 ? nt - t0 : 8;
        const float *xt = x + (size_t)t0 * (size_t)n;
        /* lane l sums token t0 + l (lanes past m repeat the last token) */
        int off[8];
        for (int l = 0; l < 8; l++)
            off[l] = (l < m ? l : m - 1) * n;
        const __m256i idx = _mm256_loadu_si256((const __m256i *)(const void *)off);
        __m256 ss = _mm256_setzero_ps();
        for (int j = 0; j < n; j++) {
            const __m256 v = _mm256_i32gather_ps(xt + j, idx, 4);
            ss = _mm256_add_ps(ss, _mm256_mul_ps(v, v));
        }
        ss = _mm256_div_ps(ss, _mm256_set1_ps((float)n));
        ss = _mm256_add_ps(ss, _mm256_set1_ps(eps));
        ss = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(ss));
        float inv[8];
        _mm256_storeu_ps(inv, ss);
        for (int l = 0; l < m; l++) {
            const float *xr = xt + (size_t)l * (size_t)n;
            float *orow = o + (size_t)(t0 + l) * (size_t)n;
            const __m256 s = _mm256_set1_ps(inv[l]);
            int j = 0;
            for (; j + 8 <= n; j += 8)
                _mm256_storeu_ps(orow + j, _mm256_mul_ps(_mm256_loadu_ps(w + j), _mm256_mul_ps(s, _mm256_loadu_ps(xr + j))));
            for (; j < n; j++)
                orow[j] = w[j] * (inv[l] * xr[j]);
        }
    }
}
