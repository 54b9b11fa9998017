/* kernels_avx2.c - AVX2 + FMA + F16C kernels.  Built with those flags and
 * only called after sl_kernels_for() has checked the CPU.
 *
 * Micro-tile: one weight row against up to 4 tokens.  Each token has its
 * own accumulators, fed in the same order for every tile width, so a pair's
 * result does not depend on its neighbours (sl_kernels.h). */
#include <immintrin.h>
#include <string.h>

#include "kernels_gemm.h"
#include "sl_kernels.h"
#include "sl_types.h"

#define INLINE static inline __attribute__((always_inline))

INLINE float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE __m256 load_f32(const uint8_t *w, int i) { return _mm256_loadu_ps((const float *)(const void *)w + i); }
INLINE __m256 load_f16(const uint8_t *w, int i) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i))); }
INLINE __m256 load_bf16(const uint8_t *w, int i)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(w + 2 * i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
INLINE float one_f32(const uint8_t *w, int i) { float f; memcpy(&f, w + 4 * i, 4); return f; }
INLINE float one_f16(const uint8_t *w, int i) { uint16_t h; memcpy(&h, w + 2 * i, 2); return _cvtsh_ss(h); }
INLINE float one_bf16(const uint8_t *w, int i) { uint16_t h; memcpy(&h, w + 2 * i, 2); return sl_bf16_to_fp32(h); }

/* Float weights: two accumulators per token (16 elements a step), then one
 * 8-wide step, then a scalar tail. */
#define FLOAT_TILE(NAME, LOAD, ONE)                                                                                    \
    INLINE void NAME(const uint8_t *w, const float *const *x, const int nt, int k, float *out)                        \
    {                                                                                                                  \
        __m256 a0[MT], a1[MT];                                                                                         \
        UNROLL_MT for (int j = 0; j < nt; j++)                                                                         \
            a0[j] = a1[j] = _mm256_setzero_ps();                                                                       \
        int i = 0;                                                                                                     \
        for (; i + 16 <= k; i += 16) {                                                                                 \
            __m256 w0 = LOAD(w, i), w1 = LOAD(w, i + 8);                                                               \
            UNROLL_MT for (int j = 0; j < nt; j++) {                                                                   \
                a0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), a0[j]);                                         \
                a1[j] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[j] + i + 8), a1[j]);                                     \
            }                                                                                                          \
        }                                                                                                              \
        if (i + 8 <= k) {                                                                                              \
            __m256 w0 = LOAD(w, i);                                                                                    \
            UNROLL_MT for (int j = 0; j < nt; j++)                                                                     \
                a0[j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), a0[j]);                                         \
            i += 8;                                                                                                    \
        }                                                                                                              \
        UNROLL_MT for (int j = 0; j < nt; j++) {                                                                       \
            float s = hsum8(_mm256_add_ps(a0[j], a1[j]));                                                              \
            for (int ii = i; ii < k; ii++)                                                                             \
                s += ONE(w, ii) * x[j][ii];                                                                            \
            out[j] = s;                                                                                                \
        }                                                                                                              \
    }

FLOAT_TILE(tile_f32, load_f32, one_f32)
FLOAT_TILE(tile_f16, load_f16, one_f16)
FLOAT_TILE(tile_bf16, load_bf16, one_bf16)

/* Sum of products of 32 signed bytes, as 8 float lanes (exact integers). */
INLINE __m256 dot_i8(__m256i a, __m256i b)
{
    const __m256i ax = _mm256_sign_epi8(a, a);
    const __m256i sb = _mm256_sign_epi8(b, a);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sb);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Unsigned 0..15 nibbles times signed bytes. */
INLINE __m256 dot_u4(__m256i u, __m256i b)
{
    const __m256i p16 = _mm256_maddubs_epi16(u, b);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

INLINE __m256i load_q(const int8_t *q) { return _mm256_loadu_si256((const __m256i *)(const void *)q); }

/* ggml's nibble order: low nibbles are elements 0..15, high ones 16..31. */
INLINE __m256i unpack_nibbles(const uint8_t *qs)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

INLINE void tile_q8_0(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_q8_0 *b = (const sl_block_q8_0 *)(const void *)w;
    __m256 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < k / 32; i++) {
        const __m256i wq = load_q(b[i].qs);
        const float dw = _cvtsh_ss(b[i].d);
        UNROLL_MT for (int j = 0; j < nt; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[j][i].d), dot_i8(wq, load_q(x[j][i].qs)), acc[j]);
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]);
}

INLINE void tile_q4_0(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_q4_0 *b = (const sl_block_q4_0 *)(const void *)w;
    __m256 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < k / 32; i++) {
        const __m256i wq = _mm256_sub_epi8(unpack_nibbles(b[i].qs), _mm256_set1_epi8(8));
        const float dw = _cvtsh_ss(b[i].d);
        UNROLL_MT for (int j = 0; j < nt; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[j][i].d), dot_i8(wq, load_q(x[j][i].qs)), acc[j]);
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]);
}

INLINE void tile_q4_1(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_q4_1 *b = (const sl_block_q4_1 *)(const void *)w;
    __m256 acc[MT];
    float accm[MT];
    UNROLL_MT for (int j = 0; j < nt; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = 0.0f;
    }
    for (int i = 0; i < k / 32; i++) {
        const __m256i wq = unpack_nibbles(b[i].qs);
        const float dw = _cvtsh_ss(b[i].d), mw = _cvtsh_ss(b[i].m);
        UNROLL_MT for (int j = 0; j < nt; j++) {
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[j][i].d), dot_u4(wq, load_q(x[j][i].qs)), acc[j]);
            accm[j] += mw * (x[j][i].d * (float)x[j][i].s);
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]) + accm[j];
}

GEMM(gemm_f32, tile_f32, float)
GEMM(gemm_f16, tile_f16, float)
GEMM(gemm_bf16, tile_bf16, float)
GEMM(gemm_q8_0, tile_q8_0, sl_block_q8x)
GEMM(gemm_q4_0, tile_q4_0, sl_block_q8x)
GEMM(gemm_q4_1, tile_q4_1, sl_block_q8x)

static void attn_scores(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out)
{
    for (int p = 0; p < n_pos; p++, k += stride) {
        __m256 a = _mm256_setzero_ps();
        int i = 0;
        for (; i + 8 <= hd; i += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a);
        float s = hsum8(a);
        for (; i < hd; i++)
            s += q[i] * k[i];
        out[p] = s / scale;
    }
}

/* Four 8-wide slices of o in registers across all positions: four
 * independent FMA chains, each slice's sums in the same order as alone. */
static void attn_accum(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd)
{
    int i = 0;
    for (; i + 32 <= hd; i += 32) {
        __m256 acc[4];
        for (int s = 0; s < 4; s++)
            acc[s] = _mm256_loadu_ps(o + i + 8 * s);
        for (int p = 0; p < n_pos; p++) {
            const __m256 a = _mm256_set1_ps(att[p]);
            const float *vp = v + (size_t)p * stride + i;
            for (int s = 0; s < 4; s++)
                acc[s] = _mm256_fmadd_ps(a, _mm256_loadu_ps(vp + 8 * s), acc[s]);
        }
        for (int s = 0; s < 4; s++)
            _mm256_storeu_ps(o + i + 8 * s, acc[s]);
    }
    for (; i + 8 <= hd; i += 8) {
        __m256 acc = _mm256_loadu_ps(o + i);
        for (int p = 0; p < n_pos; p++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(att[p]), _mm256_loadu_ps(v + (size_t)p * stride + i), acc);
        _mm256_storeu_ps(o + i, acc);
    }
    for (; i < hd; i++)
        for (int p = 0; p < n_pos; p++)
            o[i] += att[p] * v[(size_t)p * stride + i];
}

const sl_kernels sl_kernels_avx2 = {
    .isa = SL_ISA_AVX2,
    .name = "avx2",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1},
    .gemm_name = {"avx2 f32", "avx2 f16", "avx2 bf16", "avx2 q8_0 x q8", "avx2 q4_0 x q8", "avx2 q4_1 x q8"},
    .act_bytes = sl_act_bytes_blocks,
    .act_quant = sl_act_quant_blocks,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
};
