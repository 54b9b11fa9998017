/* vmath_avx512.c - sl_expf's SwiGLU and softmax numerators, 16 lanes
 * (sl_vmath.h): the AVX2 file's double steps 8 at a time, and its table
 * read by two permutes of registers instead of a gather from memory.  The
 * operations are the same, operand for operand, so the bits are too.
 * Built with AVX-512, entered only after the CPU check. */
#include <immintrin.h>

#include "sl_vmath.h"

#define INLINE static inline __attribute__((always_inline))

/* sl_expf_tab in four registers: entries 0-7, 8-15, 16-23, 24-31 */
typedef struct exp_tab {
    __m512i t[4];
} exp_tab;

INLINE exp_tab tab_load(void)
{
    exp_tab e;
    for (int i = 0; i < 4; i++)
        e.t[i] = _mm512_loadu_si512((const void *)(sl_expf_tab + 8 * i));
    return e;
}

INLINE __m512d exp_core(__m512d xd, const exp_tab *e)
{
    const __m512d invln2n = _mm512_set1_pd(SL_EXPF_INVLN2N), shift = _mm512_set1_pd(SL_EXPF_SHIFT);
    __m512d kd = _mm512_fmadd_pd(invln2n, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, shift);
    const __m512d r = _mm512_fmsub_pd(invln2n, xd, kd);
    /* entry ki & 31: bits 0-3 pick within a pair of registers, bit 4 the pair */
    const __m512i lo = _mm512_permutex2var_epi64(e->t[0], ki, e->t[1]);
    const __m512i hi = _mm512_permutex2var_epi64(e->t[2], ki, e->t[3]);
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), lo, hi);
    t = _mm512_add_epi64(t, _mm512_slli_epi64(ki, 47));
    const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(SL_EXPF_C0), _mm512_set1_pd(SL_EXPF_C1));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(SL_EXPF_C2), _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_mul_pd(y, _mm512_castsi512_pd(t));
}

/* sl_expf of 16 lanes; lanes with |x| >= 88 or NaN (rare) take the scalar
 * function's special cases */
INLINE __m512 expf16(__m512 x, const exp_tab *e)
{
    const __m256 lo = _mm512_cvtpd_ps(exp_core(_mm512_cvtps_pd(_mm512_castps512_ps256(x)), e));
    const __m256 hi = _mm512_cvtpd_ps(exp_core(_mm512_cvtps_pd(_mm512_extractf32x8_ps(x, 1)), e));
    __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    const __m512i abstop = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(x), 20), _mm512_set1_epi32(0x7ff));
    unsigned lanes = _mm512_cmpgt_epi32_mask(abstop, _mm512_set1_epi32(SL_EXPF_ABSTOP_MAX));
    if (lanes) { /* only those lanes: the others already have sl_expf's bits */
        float xs[16], ys[16];
        _mm512_storeu_ps(xs, x);
        _mm512_storeu_ps(ys, y);
        for (; lanes; lanes &= lanes - 1)
            ys[__builtin_ctz(lanes)] = sl_expf(xs[__builtin_ctz(lanes)]);
        y = _mm512_loadu_ps(ys);
    }
    return y;
}

INLINE __m512 swiglu16(__m512 v, __m512 h2, const exp_tab *e)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 g = _mm512_div_ps(one, _mm512_add_ps(one, expf16(_mm512_xor_ps(v, _mm512_set1_ps(-0.0f)), e)));
    return _mm512_mul_ps(_mm512_mul_ps(v, g), h2);
}

void sl_swiglu_avx512(float *h, const float *h2, int n)
{
    const exp_tab e = tab_load();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(h + i, swiglu16(_mm512_loadu_ps(h + i), _mm512_loadu_ps(h2 + i), &e));
    if (i < n) { /* the lanes past n compute on zeros and are not stored */
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(h + i, m, swiglu16(_mm512_maskz_loadu_ps(m, h + i), _mm512_maskz_loadu_ps(m, h2 + i), &e));
    }
}

void sl_exp_shift_avx512(float *a, int n, float shift)
{
    const exp_tab e = tab_load();
    const __m512 s = _mm512_set1_ps(shift);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(a + i, expf16(_mm512_sub_ps(_mm512_loadu_ps(a + i), s), &e));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(a + i, m, expf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), s), &e));
    }
}
