/* kernels_avx512.c - AVX-512 (F, BW, VL) kernels, with VNNI's dpbusd for
 * the int8 products.  Built with those flags and only called after
 * sl_kernels_for() has checked the CPU; on AVX-512 CPUs without VNNI the
 * quantized entries fall back to the AVX2 ones (kernels_dispatch.c). */
#include <immintrin.h>
#include <string.h>

#define MT 8 /* 32 vector registers: 8 tokens x 2 accumulators fit */
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

/* hsum16 of four vectors at once: the same pairs added in the same tree,
 * so each result has hsum16's bits. */
INLINE void hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d, float out[4])
{
    const __m512 hab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m512 hcd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(1, 0, 1, 0)),
                                     _mm512_shuffle_f32x4(c, d, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(hab, hcd, _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(hab, hcd, _MM_SHUFFLE(3, 1, 3, 1)));
    s = _mm512_add_ps(s, _mm512_permute_ps(s, _MM_SHUFFLE(3, 2, 3, 2)));
    s = _mm512_add_ps(s, _mm512_movehdup_ps(s));
    float tmp[16];
    _mm512_storeu_ps(tmp, s);
    out[0] = tmp[0], out[1] = tmp[4], out[2] = tmp[8], out[3] = tmp[12];
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

/* ---- int8 kernels ----------------------------------------------------
 *
 * Activations come in pairs of blocks laid out for 512-bit work (act_pair):
 * the two blocks' 64 quants side by side, their scales spread over the 8
 * lanes each block's partial sums land in, and precomputed corrections, so
 * the per-token work for two blocks is one dpbusd, one conversion and two
 * multiply-adds:
 *   Q4_0: sum (w - 8) x = dpbusd(w, x) - 8 sum x   (c8 = -8 s in lane 0 / 8)
 *   Q8_0: sum w x = dpbusd(w ^ 0x80, x) - 128 sum x (c128)
 *   Q4_1: d_w d_x sum w x + m_w d_x sum x           (ds = d_x s in lane 0 / 8)
 * An odd last block is paired with a zero block (zero quants, zero scale). */
typedef struct act_pair {
    int8_t qs[64];
    float dx[16];
    int32_t c8[16];
    int32_t c128[16];
    float ds[16];
} act_pair;
SL_STATIC_ASSERT(sizeof(act_pair) == 320, "act_pair");

static size_t act_bytes(int k) { return (size_t)((k / 32 + 1) / 2) * sizeof(act_pair); }

/* round half away from zero of 8 floats, through double so that adding
 * 0.5 is exact: the same integers as sl_quantize_act's scalar rounding */
static inline __m256i round_away8(__m256 f)
{
    const __m512d a = _mm512_add_pd(_mm512_abs_pd(_mm512_cvtps_pd(f)), _mm512_set1_pd(0.5));
    const __m256i m = _mm512_cvttpd_epi32(a); /* only 8 lanes: 256-bit result */
    const __mmask8 neg = _mm256_cmp_ps_mask(f, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_mask_sub_epi32(m, neg, _mm256_setzero_si256(), m);
}

/* One block: sl_quantize_act's values (same amax, same float scale and
 * inverse, same rounding), 32 at a time. */
void sl_quantize_block_avx512(const float *x, int8_t *qs, float *d_out, int32_t *s_out)
{
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 f0 = _mm512_mul_ps(x0, _mm512_set1_ps(id)), f1 = _mm512_mul_ps(x1, _mm512_set1_ps(id));
    const __m256i q0 = round_away8(_mm512_castps512_ps256(f0)), q1 = round_away8(_mm512_extractf32x8_ps(f0, 1));
    const __m256i q2 = round_away8(_mm512_castps512_ps256(f1)), q3 = round_away8(_mm512_extractf32x8_ps(f1, 1));
    const __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    const __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(q2), q3, 1);
    _mm_storeu_si128((__m128i *)(void *)qs, _mm512_cvtepi32_epi8(lo));
    _mm_storeu_si128((__m128i *)(void *)(qs + 16), _mm512_cvtepi32_epi8(hi));
    *d_out = d;
    *s_out = _mm512_reduce_add_epi32(_mm512_add_epi32(lo, hi));
}

static void act_quant(const float *x, void *out, int k)
{
    act_pair *p = out;
    const int nb = k / 32;
    for (int b = 0; b < nb + (nb & 1); b++) {
        act_pair *a = &p[b / 2];
        const int h = b & 1;
        float d = 0.0f;
        int32_t sum = 0;
        if (b < nb)
            sl_quantize_block_avx512(x + 32 * b, a->qs + 32 * h, &d, &sum);
        else
            memset(a->qs + 32 * h, 0, 32);
        for (int l = 0; l < 8; l++) {
            a->dx[8 * h + l] = d;
            a->c8[8 * h + l] = l ? 0 : -8 * sum;
            a->c128[8 * h + l] = l ? 0 : -128 * sum;
            a->ds[8 * h + l] = l ? 0.0f : d * (float)sum;
        }
    }
}

/* Lanes 0-7 take a, lanes 8-15 take b. */
static inline __m512 spread2(float a, float b)
{
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* Two 16-byte nibble arrays as 64 unsigned values in ggml's order: block
 * a's low nibbles, its high nibbles, then block b's. */
INLINE __m512i nibbles2(const uint8_t *a, const uint8_t *b)
{
    const __m256i w = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)a)),
        _mm_loadu_si128((const __m128i *)(const void *)b), 1);
    const __m512i t = _mm512_inserti64x4(_mm512_castsi256_si512(w), _mm256_srli_epi16(w, 4), 1);
    /* [a, b, a>>4, b>>4] -> [a, a>>4, b, b>>4] */
    return _mm512_and_si512(_mm512_shuffle_i64x2(t, t, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0f));
}

static const uint8_t zero16[16];

/* Weights stream from memory once per step: ask for them this far ahead
 * (past a row's end is the next row, which is read next). */
#define PREFETCH 12288

/* One pair of weight blocks, prepared once for all the tile's tokens. */
typedef struct wpair {
    __m512i q;   /* 64 unsigned quants */
    __m512 d, m; /* scales (and Q4_1 minimums) spread over each block's 8 lanes */
} wpair;

INLINE wpair prep_q4_0(const sl_block_q4_0 *b, int i, int two)
{
    return (wpair){nibbles2(b[i].qs, two ? b[i + 1].qs : zero16),
                   spread2(_cvtsh_ss(b[i].d), two ? _cvtsh_ss(b[i + 1].d) : 0.0f), _mm512_setzero_ps()};
}

INLINE wpair prep_q4_1(const sl_block_q4_1 *b, int i, int two)
{
    return (wpair){nibbles2(b[i].qs, two ? b[i + 1].qs : zero16),
                   spread2(_cvtsh_ss(b[i].d), two ? _cvtsh_ss(b[i + 1].d) : 0.0f),
                   spread2(_cvtsh_ss(b[i].m), two ? _cvtsh_ss(b[i + 1].m) : 0.0f)};
}

/* signed -> unsigned by flipping the sign bit (w + 128); c128 takes 128 sum x back */
INLINE wpair prep_q8_0(const sl_block_q8_0 *b, int i, int two)
{
    const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)b[i].qs);
    const __m256i w1 = two ? _mm256_loadu_si256((const __m256i *)(const void *)b[i + 1].qs) : _mm256_setzero_si256();
    return (wpair){_mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(w0), w1, 1), _mm512_set1_epi8(-128)),
                   spread2(_cvtsh_ss(b[i].d), two ? _cvtsh_ss(b[i + 1].d) : 0.0f), _mm512_setzero_ps()};
}

/* Four consecutive blocks' scales (and minimums) in one load and a word
 * permute: the fp16 fields of blocks i..i+3 all lie in the first 64 bytes
 * for Q4_0 (18-byte blocks) and Q4_1 (20-byte blocks). */
INLINE __m512 spread_words(__m512i raw, int w0, int w1)
{
    const __m512i idx = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)w0)),
                                                       _mm_set1_epi16((short)w1), 1)),
        _mm256_setzero_si256(), 1);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, raw)));
}

INLINE void prep4_q4_0(const sl_block_q4_0 *b, int i, wpair *p0, wpair *p1)
{
    const __m512i raw = _mm512_loadu_si512(b + i);
    *p0 = (wpair){nibbles2(b[i].qs, b[i + 1].qs), spread_words(raw, 0, 9), _mm512_setzero_ps()};
    *p1 = (wpair){nibbles2(b[i + 2].qs, b[i + 3].qs), spread_words(raw, 18, 27), _mm512_setzero_ps()};
}

INLINE void prep4_q4_1(const sl_block_q4_1 *b, int i, wpair *p0, wpair *p1)
{
    const __m512i raw = _mm512_loadu_si512(b + i);
    *p0 = (wpair){nibbles2(b[i].qs, b[i + 1].qs), spread_words(raw, 0, 10), spread_words(raw, 1, 11)};
    *p1 = (wpair){nibbles2(b[i + 2].qs, b[i + 3].qs), spread_words(raw, 20, 30), spread_words(raw, 21, 31)};
}

INLINE void prep4_q8_0(const sl_block_q8_0 *b, int i, wpair *p0, wpair *p1)
{
    *p0 = prep_q8_0(b, i, 1);
    *p1 = prep_q8_0(b, i + 2, 1);
}

INLINE __m512 step_q4_0(wpair w, const act_pair *a, __m512 acc)
{
    const __m512i s = _mm512_dpbusd_epi32(_mm512_loadu_si512(a->c8), w.q, _mm512_loadu_si512(a->qs));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(w.d, _mm512_loadu_ps(a->dx)), acc);
}

INLINE __m512 step_q8_0(wpair w, const act_pair *a, __m512 acc)
{
    const __m512i s = _mm512_dpbusd_epi32(_mm512_loadu_si512(a->c128), w.q, _mm512_loadu_si512(a->qs));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(w.d, _mm512_loadu_ps(a->dx)), acc);
}

INLINE __m512 step_q4_1(wpair w, const act_pair *a, __m512 acc)
{
    const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.q, _mm512_loadu_si512(a->qs));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(w.d, _mm512_loadu_ps(a->dx)), acc);
    return _mm512_fmadd_ps(w.m, _mm512_loadu_ps(a->ds), acc);
}

/* R weight rows against up to MT tokens.  Every (row, token) has one
 * accumulator fed pair by pair in block order, whatever R and the tile
 * width, and is reduced by hsum16's tree (hsum16x4 for four rows), so a
 * value's bits never depend on the tile it fell in.  The tokens'
 * activations are loaded once for all R rows. */
#define INT8_TILE_R(NAME, R, BT, PREP, PREP4, STEP, PF)                                                                \
    INLINE void NAME(const uint8_t *const *w, const act_pair *const *x, const int nt, int k, float out[][MT])         \
    {                                                                                                                  \
        const int nb = k / 32;                                                                                         \
        __m512 a[R][MT];                                                                                               \
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)                                                            \
            UNROLL_MT for (int j = 0; j < nt; j++) a[r][j] = _mm512_setzero_ps();                                      \
        int i = 0;                                                                                                     \
        for (; i + 4 <= nb; i += 4) {                                                                                  \
            wpair p0[R], p1[R];                                                                                        \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                                      \
                const BT *b = (const BT *)(const void *)w[r];                                                          \
                for (int l = 0; l < PF; l += 64)                                                                       \
                    _mm_prefetch((const char *)(b + i) + PREFETCH + l, _MM_HINT_T0);                                   \
                PREP4(b, i, &p0[r], &p1[r]);                                                                           \
            }                                                                                                          \
            UNROLL_MT for (int j = 0; j < nt; j++)                                                                     \
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                                  \
                    a[r][j] = STEP(p0[r], &x[j][i / 2], a[r][j]);                                                      \
                    a[r][j] = STEP(p1[r], &x[j][i / 2 + 1], a[r][j]);                                                  \
                }                                                                                                      \
        }                                                                                                              \
        for (; i < nb; i += 2)                                                                                         \
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {                                                      \
                const wpair p0 = PREP((const BT *)(const void *)w[r], i, i + 1 < nb);                                  \
                UNROLL_MT for (int j = 0; j < nt; j++) a[r][j] = STEP(p0, &x[j][i / 2], a[r][j]);                      \
            }                                                                                                          \
        UNROLL_MT for (int j = 0; j < nt; j++) {                                                                       \
            if (R == 4) {                                                                                              \
                float o[4];                                                                                            \
                hsum16x4(a[0][j], a[R > 1 ? 1 : 0][j], a[R > 2 ? 2 : 0][j], a[R > 3 ? 3 : 0][j], o);                   \
                for (int r = 0; r < R; r++)                                                                            \
                    out[r][j] = o[r];                                                                                  \
            } else                                                                                                     \
                for (int r = 0; r < R; r++)                                                                            \
                    out[r][j] = hsum16(a[r][j]);                                                                       \
        }                                                                                                              \
    }

/* PF: bytes of weights per four blocks, rounded up to whole cache lines */
#define INT8_TILES(T, BT, PF)                                                                                          \
    INT8_TILE_R(tile1_##T, 1, BT, prep_##T, prep4_##T, step_##T, PF)                                                   \
    INT8_TILE_R(tile2_##T, 2, BT, prep_##T, prep4_##T, step_##T, PF)                                                   \
    INT8_TILE_R(tile4_##T, 4, BT, prep_##T, prep4_##T, step_##T, PF)

INT8_TILES(q4_0, sl_block_q4_0, 72)
INT8_TILES(q4_1, sl_block_q4_1, 80)
INT8_TILES(q8_0, sl_block_q8_0, 136)

/* The int8 GEMM: four rows a tile for one or two tokens (decoding), else
 * two rows against tiles of up to MT tokens inside L2/L1-sized blocks
 * (kernels_gemm.h); a leftover row goes alone. */
#define INT8_GEMM(T)                                                                                                   \
    static void gemm_##T(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,  \
                         int k, float *y, int ldy)                                                                     \
    {                                                                                                                  \
        const int rgroup = nt <= 2 ? 4 : 2;                                                                            \
        const int rb = gemm_block(W_BLOCK, row_bytes, 4) / 4 * 4, tb = gemm_block(X_BLOCK, x_stride, MT) / MT * MT;    \
        for (int R = r0; R < r1; R += rb) {                                                                            \
            const int Re = R + rb < r1 ? R + rb : r1;                                                                  \
            for (int T = 0; T < nt; T += tb) {                                                                         \
                const int Te = T + tb < nt ? T + tb : nt;                                                              \
                for (int r = R; r < Re;) {                                                                             \
                    const int nr = Re - r >= rgroup ? rgroup : 1;                                                      \
                    const uint8_t *rows[4];                                                                            \
                    for (int i = 0; i < nr; i++)                                                                       \
                        rows[i] = w + (size_t)(r + i) * row_bytes;                                                     \
                    for (int t = T; t < Te; t += MT) {                                                                 \
                        const act_pair *xs[MT];                                                                        \
                        float out[4][MT];                                                                              \
                        const int n = Te - t < MT ? Te - t : MT;                                                       \
                        for (int j = 0; j < n; j++)                                                                    \
                            xs[j] = (const act_pair *)(const void *)((const uint8_t *)x + (size_t)(t + j) * x_stride); \
                        if (nr == 4) {                                                                                 \
                            if (n == 2)                                                                                \
                                tile4_##T(rows, xs, 2, k, out);                                                        \
                            else                                                                                       \
                                tile4_##T(rows, xs, 1, k, out);                                                        \
                        } else if (nr == 2) {                                                                          \
                            switch (n) {                                                                               \
                            case 8: tile2_##T(rows, xs, 8, k, out); break;                                             \
                            case 7: tile2_##T(rows, xs, 7, k, out); break;                                             \
                            case 6: tile2_##T(rows, xs, 6, k, out); break;                                             \
                            case 5: tile2_##T(rows, xs, 5, k, out); break;                                             \
                            case 4: tile2_##T(rows, xs, 4, k, out); break;                                             \
                            case 3: tile2_##T(rows, xs, 3, k, out); break;                                             \
                            case 2: tile2_##T(rows, xs, 2, k, out); break;                                             \
                            default: tile2_##T(rows, xs, 1, k, out); break;                                            \
                            }                                                                                          \
                        } else {                                                                                       \
                            switch (n) {                                                                               \
                            case 8: tile1_##T(rows, xs, 8, k, out); break;                                             \
                            case 7: tile1_##T(rows, xs, 7, k, out); break;                                             \
                            case 6: tile1_##T(rows, xs, 6, k, out); break;                                             \
                            case 5: tile1_##T(rows, xs, 5, k, out); break;                                             \
                            case 4: tile1_##T(rows, xs, 4, k, out); break;                                             \
                            case 3: tile1_##T(rows, xs, 3, k, out); break;                                             \
                            case 2: tile1_##T(rows, xs, 2, k, out); break;                                             \
                            default: tile1_##T(rows, xs, 1, k, out); break;                                            \
                            }                                                                                          \
                        }                                                                                              \
                        for (int i = 0; i < nr; i++)                                                                   \
                            for (int j = 0; j < n; j++)                                                                \
                                y[(size_t)(t + j) * ldy + r + i] = out[i][j];                                          \
                    }                                                                                                  \
                    r += nr;                                                                                           \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

INT8_GEMM(q4_0)
INT8_GEMM(q4_1)
INT8_GEMM(q8_0)

GEMM(gemm_f32, tile_f32, float)
GEMM(gemm_f16, tile_f16, float)
GEMM(gemm_bf16, tile_bf16, float)

static inline __mmask16 tail16(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

static void attn_scores(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out)
{
    for (int p = 0; p < n_pos; p++, k += stride) {
        __m512 a = _mm512_setzero_ps();
        for (int i = 0; i < hd; i += 16)
            a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail16(hd - i), q + i), _mm512_maskz_loadu_ps(tail16(hd - i), k + i), a);
        out[p] = hsum16(a) / scale;
    }
}

static void attn_accum(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd)
{
    for (int i = 0; i < hd; i += 16) { /* one 16-wide slice of o in a register across all positions */
        const __mmask16 m = tail16(hd - i);
        __m512 acc = _mm512_maskz_loadu_ps(m, o + i);
        for (int p = 0; p < n_pos; p++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(att[p]), _mm512_maskz_loadu_ps(m, v + (size_t)p * stride + i), acc);
        _mm512_mask_storeu_ps(o + i, m, acc);
    }
}

const sl_kernels sl_kernels_avx512 = {
    .isa = SL_ISA_AVX512,
    .name = "avx512",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1},
    .gemm_name = {"avx512 f32", "avx512 f16", "avx512 bf16", "avx512-vnni q8_0 x q8", "avx512-vnni q4_0 x q8",
                  "avx512-vnni q4_1 x q8"},
    .act_bytes = act_bytes,
    .act_quant = act_quant,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
};
