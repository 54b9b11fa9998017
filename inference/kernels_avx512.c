/* kernels_avx512.c - AVX-512 (F, BW, VL) kernels, with VNNI's dpbusd for
 * the int8 products.  Built with those flags and only called after
 * sl_kernels_for() has checked the CPU; on AVX-512 CPUs without VNNI the
 * quantized entries fall back to the AVX2 ones (kernels_dispatch.c). */
#include <immintrin.h>
#include <string.h>

#include "kernels_gemm.h"
#include "sl_kernels.h"
#include "sl_types.h"

#define INLINE static inline __attribute__((always_inline))

/* Fixed pairwise order: 16 -> 8 -> 4 -> 2 -> 1 lanes. */
INLINE float hsum16(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE __m512 load_f32(const uint8_t *w, int i, __mmask16 m)
{
    return _mm512_maskz_loadu_ps(m, (const float *)(const void *)w + i);
}
INLINE __m512 load_f16(const uint8_t *w, int i, __mmask16 m)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + 2 * i));
}
INLINE __m512 load_bf16(const uint8_t *w, int i, __mmask16 m)
{
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, w + 2 * i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
}

/* Float weights: two accumulators per token, 32 elements a step, then one
 * 16-wide step, then a masked tail (zeros add nothing). */
#define FLOAT_TILE(NAME, LOAD)                                                                                         \
    INLINE void NAME(const uint8_t *w, const float *const *x, const int nt, int k, float *out)                        \
    {                                                                                                                  \
        __m512 a0[MT], a1[MT];                                                                                         \
        UNROLL_MT for (int j = 0; j < nt; j++)                                                                                   \
            a0[j] = a1[j] = _mm512_setzero_ps();                                                                       \
        int i = 0;                                                                                                     \
        for (; i + 32 <= k; i += 32) {                                                                                 \
            __m512 w0 = LOAD(w, i, 0xffff), w1 = LOAD(w, i + 16, 0xffff);                                              \
            UNROLL_MT for (int j = 0; j < nt; j++) {                                                                             \
                a0[j] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[j] + i), a0[j]);                                         \
                a1[j] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[j] + i + 16), a1[j]);                                    \
            }                                                                                                          \
        }                                                                                                              \
        for (; i < k; i += 16) {                                                                                       \
            const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);                   \
            __m512 w0 = LOAD(w, i, m);                                                                                 \
            UNROLL_MT for (int j = 0; j < nt; j++)                                                                               \
                a0[j] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[j] + i), a0[j]);                                \
        }                                                                                                              \
        UNROLL_MT for (int j = 0; j < nt; j++)                                                                                   \
            out[j] = hsum16(_mm512_add_ps(a0[j], a1[j]));                                                              \
    }

FLOAT_TILE(tile_f32, load_f32)
FLOAT_TILE(tile_f16, load_f16)
FLOAT_TILE(tile_bf16, load_bf16)

/* Signed x signed through dpbusd (unsigned x signed): |a| times b with a's sign. */
INLINE __m256 dot_i8(__m256i a, __m256i b)
{
    const __m256i ax = _mm256_abs_epi8(a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sb));
}

INLINE __m256 dot_u4(__m256i u, __m256i b)
{
    return _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(_mm256_setzero_si256(), u, b));
}

#include "kernels_qtile.h"

GEMM(gemm_f32, tile_f32, float)
GEMM(gemm_f16, tile_f16, float)
GEMM(gemm_bf16, tile_bf16, float)
GEMM(gemm_q8_0, tile_q8_0, sl_block_q8x)
GEMM(gemm_q4_0, tile_q4_0, sl_block_q8x)
GEMM(gemm_q4_1, tile_q4_1, sl_block_q8x)

const sl_kernels sl_kernels_avx512 = {
    .isa = SL_ISA_AVX512,
    .name = "avx512",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1},
    .gemm_name = {"avx512 f32", "avx512 f16", "avx512 bf16", "avx512-vnni q8_0 x q8", "avx512-vnni q4_0 x q8",
                  "avx512-vnni q4_1 x q8"},
};
