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

/* hsum8 of four vectors at once: the same pairs added in the same tree
 * (halves, then lanes 2-3 onto 0-1, then lane 1 onto 0), two vectors per
 * register, so each result has hsum8's bits. */
INLINE void hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d, float out[4])
{
    __m256 ab = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
    __m256 cd = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
    ab = _mm256_add_ps(ab, _mm256_permute_ps(ab, _MM_SHUFFLE(3, 2, 3, 2)));
    cd = _mm256_add_ps(cd, _mm256_permute_ps(cd, _MM_SHUFFLE(3, 2, 3, 2)));
    ab = _mm256_add_ps(ab, _mm256_movehdup_ps(ab));
    cd = _mm256_add_ps(cd, _mm256_movehdup_ps(cd));
    float t[16];
    _mm256_storeu_ps(t, ab);
    _mm256_storeu_ps(t + 8, cd);
    out[0] = t[0], out[1] = t[4], out[2] = t[8], out[3] = t[12];
}

/* Four rows against one or two tokens (decoding), each (row, token) with
 * FLOAT_TILE's operations in its order (hsum8x4 is hsum8 four times over),
 * so with its bits: each token's slices are loaded once for the four rows. */
#define FLOAT_TILE4(NAME, LOAD, ONE)                                                                                   \
    INLINE void NAME(const uint8_t *const *w, const float *const *x, const int nt, int k, float out[4][2])            \
    {                                                                                                                  \
        __m256 a0[4][2], a1[4][2];                                                                                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) for (int j = 0; j < nt; j++)                               \
            a0[r][j] = a1[r][j] = _mm256_setzero_ps();                                                                 \
        int i = 0;                                                                                                     \
        for (; i + 16 <= k; i += 16) {                                                                                 \
            __m256 x0[2], x1[2];                                                                                       \
            for (int j = 0; j < nt; j++)                                                                               \
                x0[j] = _mm256_loadu_ps(x[j] + i), x1[j] = _mm256_loadu_ps(x[j] + i + 8);                             \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                      \
                const __m256 w0 = LOAD(w[r], i), w1 = LOAD(w[r], i + 8);                                               \
                for (int j = 0; j < nt; j++) {                                                                         \
                    a0[r][j] = _mm256_fmadd_ps(w0, x0[j], a0[r][j]);                                                   \
                    a1[r][j] = _mm256_fmadd_ps(w1, x1[j], a1[r][j]);                                                   \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        if (i + 8 <= k) {                                                                                              \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                      \
                const __m256 w0 = LOAD(w[r], i);                                                                       \
                for (int j = 0; j < nt; j++)                                                                           \
                    a0[r][j] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[j] + i), a0[r][j]);                               \
            }                                                                                                          \
            i += 8;                                                                                                    \
        }                                                                                                              \
        for (int j = 0; j < nt; j++) {                                                                                 \
            float s[4];                                                                                                \
            hsum8x4(_mm256_add_ps(a0[0][j], a1[0][j]), _mm256_add_ps(a0[1][j], a1[1][j]),                              \
                    _mm256_add_ps(a0[2][j], a1[2][j]), _mm256_add_ps(a0[3][j], a1[3][j]), s);                          \
            for (int r = 0; r < 4; r++) {                                                                              \
                for (int ii = i; ii < k; ii++)                                                                         \
                    s[r] += ONE(w[r], ii) * x[j][ii];                                                                  \
                out[r][j] = s[r];                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

FLOAT_TILE4(tile4_f32, load_f32, one_f32)
FLOAT_TILE4(tile4_f16, load_f16, one_f16)
FLOAT_TILE4(tile4_bf16, load_bf16, one_bf16)

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

/* IQ4_NL: the nibbles through the code (a byte shuffle), then as Q8_0. */
INLINE void tile_iq4_nl(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_iq4_nl *b = (const sl_block_iq4_nl *)(const void *)w;
    const __m256i code = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)sl_iq4nl_values));
    __m256 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < k / 32; i++) {
        const __m256i wq = _mm256_shuffle_epi8(code, unpack_nibbles(b[i].qs));
        const float dw = _cvtsh_ss(b[i].d);
        UNROLL_MT for (int j = 0; j < nt; j++)
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * x[j][i].d), dot_i8(wq, load_q(x[j][i].qs)), acc[j]);
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]);
}

/* Q4_K: a pair of sub-blocks shares 32 bytes (low nibbles, then high);
 * the offset term goes to a scalar sum per token, as in Q4_1. */
INLINE void tile_q4_k(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_q4_k *b = (const sl_block_q4_k *)(const void *)w;
    const __m256i lo = _mm256_set1_epi8(0x0f);
    __m256 acc[MT];
    float accm[MT];
    UNROLL_MT for (int j = 0; j < nt; j++) {
        acc[j] = _mm256_setzero_ps();
        accm[j] = 0.0f;
    }
    for (int i = 0; i < k / 256; i++) {
        const float d = _cvtsh_ss(b[i].d), dmin = _cvtsh_ss(b[i].dmin);
        for (int s = 0; s < 8; s++) {
            int sc, m;
            sl_q4k_scale_min(b[i].scales, s, &sc, &m);
            const __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(b[i].qs + 32 * (s / 2)));
            const __m256i wq = _mm256_and_si256(s & 1 ? _mm256_srli_epi16(raw, 4) : raw, lo);
            const float ds = d * (float)sc, ms = dmin * (float)m;
            UNROLL_MT for (int j = 0; j < nt; j++) {
                const sl_block_q8x *a = &x[j][8 * i + s];
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(ds * a->d), dot_u4(wq, load_q(a->qs)), acc[j]);
                accm[j] += ms * (a->d * (float)a->s);
            }
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]) - accm[j];
}

/* Q6_K: 32 signed 6-bit weights of activation block s (0..7) of a
 * super-block: four bits from ql, two from qh (ggml's runs of 32). */
INLINE __m256i q6_k_block(const sl_block_q6_k *b, int s)
{
    const int h = s / 4, r = s % 4;
    const __m256i ql = _mm256_loadu_si256((const __m256i *)(const void *)(b->ql + 64 * h + 32 * (r & 1)));
    const __m256i qh = _mm256_loadu_si256((const __m256i *)(const void *)(b->qh + 32 * h));
    const __m256i l4 = _mm256_and_si256(r >> 1 ? _mm256_srli_epi16(ql, 4) : ql, _mm256_set1_epi8(0x0f));
    const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * r), _mm256_set1_epi8(3));
    return _mm256_sub_epi8(_mm256_or_si256(l4, _mm256_slli_epi16(h2, 4)), _mm256_set1_epi8(32));
}

/* Q6_K: the eight int32 lanes of a block's products are four per
 * sub-block of 16, so the int8 scales multiply lanes before the float
 * conversion: exact integers, as the scalar kernel's. */
INLINE void tile_q6_k(const uint8_t *w, const sl_block_q8x *const *x, const int nt, int k, float *out)
{
    const sl_block_q6_k *b = (const sl_block_q6_k *)(const void *)w;
    __m256 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < k / 256; i++) {
        const float d = _cvtsh_ss(b[i].d);
        for (int s = 0; s < 8; s++) {
            const __m256i wq = q6_k_block(&b[i], s);
            const int sa = b[i].scales[2 * s], sb = b[i].scales[2 * s + 1];
            const __m256i sc = _mm256_setr_epi32(sa, sa, sa, sa, sb, sb, sb, sb);
            UNROLL_MT for (int j = 0; j < nt; j++) {
                const sl_block_q8x *a = &x[j][8 * i + s];
                const __m256i ax = _mm256_sign_epi8(wq, wq), sx = _mm256_sign_epi8(load_q(a->qs), wq);
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sx), _mm256_set1_epi16(1));
                acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(_mm256_mullo_epi32(p, sc)), acc[j]);
            }
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]);
}

/* NF4 on float activations: 8 codes at a time through a permute of the
 * 16-entry table (two 8-entry halves, picked by the index's bit 3). */
INLINE __m256 nf4_values8(const uint8_t *q4, int shift, __m256 t0, __m256 t1)
{
    const __m256i idx = _mm256_and_si256(_mm256_srli_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)q4)), shift),
                                         _mm256_set1_epi32(15));
    const __m256 a = _mm256_permutevar8x32_ps(t0, idx), c = _mm256_permutevar8x32_ps(t1, idx);
    return _mm256_blendv_ps(a, c, _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

INLINE void tile_nf4(const uint8_t *w, const float *const *x, const int nt, int k, float *out)
{
    const sl_block_nf4 *b = (const sl_block_nf4 *)(const void *)w;
    const __m256 t0 = _mm256_loadu_ps(sl_nf4_values), t1 = _mm256_loadu_ps(sl_nf4_values + 8);
    __m256 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_ps();
    for (int i = 0; i < k / 256; i++) {
        const float D = _cvtsh_ss(b[i].d);
        for (int s = 0; s < 4; s++) {
            __m256 part[MT];
            UNROLL_MT for (int j = 0; j < nt; j++)
                part[j] = _mm256_setzero_ps();
            const uint8_t *q = b[i].qs + 32 * s;
            for (int l = 0; l < 32; l += 8) {
                const __m256 lo = nf4_values8(q + l, 0, t0, t1), hi = nf4_values8(q + l, 4, t0, t1);
                UNROLL_MT for (int j = 0; j < nt; j++) {
                    const float *xs = x[j] + 256 * i + 64 * s + l;
                    part[j] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(xs), part[j]);
                    part[j] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(xs + 32), part[j]);
                }
            }
            const __m256 sc = _mm256_set1_ps(D * (float)b[i].code[s]);
            UNROLL_MT for (int j = 0; j < nt; j++)
                acc[j] = _mm256_fmadd_ps(sc, part[j], acc[j]);
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++)
        out[j] = hsum8(acc[j]);
}

/* W8A8: 32 products a step into int32 lanes (exact), a scalar tail. */
INLINE void tile_w8a8(const uint8_t *w, const sl_w8a8_act *const *x, const int nt, int k, float *out)
{
    const int8_t *wq = (const int8_t *)(const void *)w;
    __m256i acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++)
        acc[j] = _mm256_setzero_si256();
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        const __m256i a = load_q(wq + i), ax = _mm256_sign_epi8(a, a);
        UNROLL_MT for (int j = 0; j < nt; j++) {
            const __m256i b = load_q((const int8_t *)(x[j] + 1) + i);
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(b, a)), _mm256_set1_epi16(1));
            acc[j] = _mm256_add_epi32(acc[j], p);
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc[j]), _mm256_extracti128_si256(acc[j], 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        int32_t v = _mm_cvtsi128_si32(s);
        const int8_t *b = (const int8_t *)(x[j] + 1);
        for (int ii = i; ii < k; ii++)
            v += wq[ii] * b[ii];
        out[j] = (float)v;
    }
}

GEMM4(gemm_f32, tile_f32, tile4_f32, float)
GEMM4(gemm_f16, tile_f16, tile4_f16, float)
GEMM4(gemm_bf16, tile_bf16, tile4_bf16, float)
GEMM(gemm_q8_0, tile_q8_0, sl_block_q8x)
GEMM(gemm_q4_0, tile_q4_0, sl_block_q8x)
GEMM(gemm_q4_1, tile_q4_1, sl_block_q8x)
GEMM(gemm_q4_k, tile_q4_k, sl_block_q8x)
GEMM(gemm_q6_k, tile_q6_k, sl_block_q8x)
GEMM(gemm_iq4_nl, tile_iq4_nl, sl_block_q8x)
GEMM(gemm_nf4, tile_nf4, float)
GEMM(gemm_w8a8, tile_w8a8, sl_w8a8_act)

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
        out[p] = s;
    }
    sl_div_f32(out, n_pos, scale); /* the same quotients, 4 at a time */
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
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1, gemm_q4_k, gemm_q6_k, gemm_iq4_nl, gemm_nf4,
             gemm_w8a8},
    .gemm_name = {"avx2 f32", "avx2 f16", "avx2 bf16", "avx2 q8_0 x q8", "avx2 q4_0 x q8", "avx2 q4_1 x q8",
                  "avx2 q4_K x q8", "avx2 q6_K x q8", "avx2 iq4_nl x q8", "avx2 nf4 x f32", "avx2 w8a8 x i8"},
    .act_bytes = sl_act_bytes_blocks,
    .act_quant = sl_act_quant_blocks,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
    .rmsnorm = sl_rmsnorm_avx2,
    .swiglu = sl_swiglu_avx2,
    .exp_shift = sl_exp_shift_avx2,
};
