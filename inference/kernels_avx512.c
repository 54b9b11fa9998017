/* kernels_avx512.c - AVX-512 (F, BW, VL) kernels, with VNNI's dpbusd for
 * the int8 products.  Built with those flags and only called after
 * sl_kernels_for() has checked the CPU; on AVX-512 CPUs without VNNI the
 * quantized entries fall back to the AVX2 ones (kernels_dispatch.c). */
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MT 8 /* tokens per tile: 32 vector registers hold 8 accumulators (two each for floats) and a block */
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
        UNROLL_MT for (int j = 0; j < nt; j++)                                                                         \
            a0[j] = a1[j] = _mm512_setzero_ps();                                                                       \
        int i = 0;                                                                                                     \
        for (; i + 32 <= k; i += 32) {                                                                                 \
            __m512 w0 = LOAD(w, i, 0xffff), w1 = LOAD(w, i + 16, 0xffff);                                              \
            UNROLL_MT for (int j = 0; j < nt; j++) {                                                                   \
                a0[j] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x[j] + i), a0[j]);                                         \
                a1[j] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[j] + i + 16), a1[j]);                                    \
            }                                                                                                          \
        }                                                                                                              \
        for (; i < k; i += 16) {                                                                                       \
            const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);                   \
            __m512 w0 = LOAD(w, i, m);                                                                                 \
            UNROLL_MT for (int j = 0; j < nt; j++)                                                                     \
                a0[j] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(m, x[j] + i), a0[j]);                                \
        }                                                                                                              \
        UNROLL_MT for (int j = 0; j < nt; j++)                                                                         \
            out[j] = hsum16(_mm512_add_ps(a0[j], a1[j]));                                                              \
    }

FLOAT_TILE(tile_f32, load_f32)
FLOAT_TILE(tile_f16, load_f16)
FLOAT_TILE(tile_bf16, load_bf16)

/* Four rows against one or two tokens (decoding), each (row, token) with
 * FLOAT_TILE's accumulators fed in its order and reduced by the same tree
 * (hsum16x4 is hsum16 four times over), so with its bits: each token's
 * slices are loaded once for the four rows, and one reduction serves them. */
#define FLOAT_TILE4(NAME, LOAD)                                                                                        \
    INLINE void NAME(const uint8_t *const *w, const float *const *x, const int nt, int k, float out[4][2])            \
    {                                                                                                                  \
        __m512 a0[4][2], a1[4][2];                                                                                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) for (int j = 0; j < nt; j++)                               \
            a0[r][j] = a1[r][j] = _mm512_setzero_ps();                                                                 \
        int i = 0;                                                                                                     \
        for (; i + 32 <= k; i += 32) {                                                                                 \
            __m512 x0[2], x1[2];                                                                                       \
            for (int j = 0; j < nt; j++)                                                                               \
                x0[j] = _mm512_loadu_ps(x[j] + i), x1[j] = _mm512_loadu_ps(x[j] + i + 16);                            \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                      \
                const __m512 w0 = LOAD(w[r], i, 0xffff), w1 = LOAD(w[r], i + 16, 0xffff);                             \
                for (int j = 0; j < nt; j++) {                                                                         \
                    a0[r][j] = _mm512_fmadd_ps(w0, x0[j], a0[r][j]);                                                   \
                    a1[r][j] = _mm512_fmadd_ps(w1, x1[j], a1[r][j]);                                                   \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (; i < k; i += 16) {                                                                                       \
            const __mmask16 m = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);                   \
            __m512 xm[2];                                                                                              \
            for (int j = 0; j < nt; j++)                                                                               \
                xm[j] = _mm512_maskz_loadu_ps(m, x[j] + i);                                                            \
            _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {                                                      \
                const __m512 w0 = LOAD(w[r], i, m);                                                                    \
                for (int j = 0; j < nt; j++)                                                                           \
                    a0[r][j] = _mm512_fmadd_ps(w0, xm[j], a0[r][j]);                                                   \
            }                                                                                                          \
        }                                                                                                              \
        for (int j = 0; j < nt; j++) {                                                                                 \
            float s[4];                                                                                                \
            hsum16x4(_mm512_add_ps(a0[0][j], a1[0][j]), _mm512_add_ps(a0[1][j], a1[1][j]),                             \
                     _mm512_add_ps(a0[2][j], a1[2][j]), _mm512_add_ps(a0[3][j], a1[3][j]), s);                         \
            for (int r = 0; r < 4; r++)                                                                                \
                out[r][j] = s[r];                                                                                      \
        }                                                                                                              \
    }

FLOAT_TILE4(tile4_f32, load_f32)
FLOAT_TILE4(tile4_f16, load_f16)
FLOAT_TILE4(tile4_bf16, load_bf16)

/* ---- int8 kernels ----------------------------------------------------
 *
 * Lanes are output rows: a tile is 16 weight rows against up to 8 tokens,
 * and each 512-bit accumulator holds one token's 16 row results, so there
 * is no horizontal sum and a scale multiplies 16 rows at once.  Per block
 * the 16 rows' quants are transposed into 8 vectors of 4-element groups
 * (lane r = row r) once for all the tile's tokens; each token then costs 8
 * vpdpbusd with its own quants broadcast from memory, one conversion and
 * one multiply-add:
 *
 *   isum = c + sum_k w[r][k] x[k]            exact int32 (c: see below)
 *   acc  = fma((float)isum, d_w[r] * d_x, acc)        block by block
 *   Q4_1 adds acc = fma(m_w[r], d_x * sum x, acc)
 *
 * Q4_0 uses the unsigned nibbles with c = -8 sum x; Q8_0 makes its weights
 * unsigned by flipping the sign bit with c = -128 sum x, IQ4_NL its code
 * by adding 128.  Q4_K takes each sub-block's scale d*sc and offset
 * dmin*m per row; Q6_K sums the two 16-element halves of a block apart
 * (c = -32 sum of the half) and weighs them with their int8 scales.  A (row, token)
 * value depends only on that row and token: tails of fewer than 16 rows
 * run the same lanes masked, so tiles, batches and thread counts never
 * change a bit. */
typedef struct act_blk {
    int8_t qs[32];
    float dx;      /* the block's scale */
    int32_t c8;    /* -8 * sum of quants */
    int32_t c128;  /* -128 * sum of quants */
    float ds;      /* dx * sum of quants */
    int32_t c32[2]; /* -32 * sum of each half's quants (Q6_K) */
    int32_t pad_[2];
} act_blk;
SL_STATIC_ASSERT(sizeof(act_blk) == 64, "act_blk: one cache line");

static size_t act_bytes(int k) { return (size_t)(k / 32) * sizeof(act_blk); }

/* round half away from zero of 16 floats: f + copysign(0.5, f) rounded
 * toward zero, then truncated.  Rounding toward zero never carries the sum
 * past an integer (integers are floats), so the truncation is that of the
 * exact sum: the integers (double)f + 0.5 gives in sl_quantize_act. */
static inline __m512i round_away16(__m512 f)
{
    const __m512 h = _mm512_or_ps(_mm512_set1_ps(0.5f), _mm512_and_ps(f, _mm512_set1_ps(-0.0f)));
    return _mm512_cvttps_epi32(_mm512_add_round_ps(f, h, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC));
}

/* One block: sl_quantize_act's values (same amax, same float scale and
 * inverse, same rounding), 16 at a time; s[0], s[1]: the sums of the
 * first and last 16 quants. */
INLINE void quant_block(const float *x, int8_t *qs, float *d_out, int32_t s[2])
{
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512i lo = round_away16(_mm512_mul_ps(x0, _mm512_set1_ps(id)));
    const __m512i hi = round_away16(_mm512_mul_ps(x1, _mm512_set1_ps(id)));
    _mm_storeu_si128((__m128i *)(void *)qs, _mm512_cvtepi32_epi8(lo));
    _mm_storeu_si128((__m128i *)(void *)(qs + 16), _mm512_cvtepi32_epi8(hi));
    *d_out = d;
    /* both sums in one reduction: lanes 0-7 lo's partial sums, 8-15 hi's */
    __m512i p = _mm512_add_epi32(_mm512_shuffle_i64x2(lo, hi, 0x44), _mm512_shuffle_i64x2(lo, hi, 0xee));
    p = _mm512_add_epi32(p, _mm512_shuffle_epi32(p, _MM_PERM_BADC));
    p = _mm512_add_epi32(p, _mm512_shuffle_epi32(p, _MM_PERM_CDAB));
    p = _mm512_add_epi32(p, _mm512_shuffle_i64x2(p, p, 0xb1)); /* 128-bit lanes 0<->1, 2<->3 */
    s[0] = _mm_cvtsi128_si32(_mm512_castsi512_si128(p));
    s[1] = _mm_cvtsi128_si32(_mm512_extracti32x4_epi32(p, 2));
}

void sl_quantize_block_avx512(const float *x, int8_t *qs, float *d_out, int32_t *s_out)
{
    int32_t s[2];
    quant_block(x, qs, d_out, s);
    *s_out = s[0] + s[1];
}

static void act_quant(const float *x, void *out, int k)
{
    act_blk *a = out;
    for (int b = 0; b < k / 32; b++) {
        int32_t s[2];
        quant_block(x + 32 * b, a[b].qs, &a[b].dx, s);
        const int32_t st = s[0] + s[1];
        a[b].c8 = -8 * st;
        a[b].c128 = -128 * st;
        a[b].ds = a[b].dx * (float)st;
        a[b].c32[0] = -32 * s[0];
        a[b].c32[1] = -32 * s[1];
        a[b].pad_[0] = a[b].pad_[1] = 0;
    }
}

/* 16 x 16 bytes (one 16-byte piece per row, at rows[r] + off) transposed
 * into 4 vectors: v[g] lane r = bytes 4g..4g+3 of row r's piece. */
INLINE void transpose16x4(const uint8_t *const *rows, size_t off, __m512i v[4])
{
    __m512i z[4];
    _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) { /* z[q] 128-bit lane L = row 4L + q */
        __m512i t = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(const void *)(rows[q] + off)));
        t = _mm512_inserti32x4(t, _mm_loadu_si128((const __m128i *)(const void *)(rows[4 + q] + off)), 1);
        t = _mm512_inserti32x4(t, _mm_loadu_si128((const __m128i *)(const void *)(rows[8 + q] + off)), 2);
        z[q] = _mm512_inserti32x4(t, _mm_loadu_si128((const __m128i *)(const void *)(rows[12 + q] + off)), 3);
    }
    const __m512i t0 = _mm512_unpacklo_epi32(z[0], z[1]), t1 = _mm512_unpackhi_epi32(z[0], z[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(z[2], z[3]), t3 = _mm512_unpackhi_epi32(z[2], z[3]);
    v[0] = _mm512_unpacklo_epi64(t0, t2);
    v[1] = _mm512_unpackhi_epi64(t0, t2);
    v[2] = _mm512_unpacklo_epi64(t1, t3);
    v[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* 32 bytes at p, or only the bytes of mask m (the others zero, never read) */
INLINE __m256i load32(const uint8_t *p, __mmask32 m)
{
    return m == (__mmask32)~0u ? _mm256_loadu_si256((const __m256i *)(const void *)p) : _mm256_maskz_loadu_epi8(m, p);
}

/* 16 x 32 bytes (at rows[r] + off, the bytes of m) transposed into 8
 * vectors: v[g] lane r = bytes 4g..4g+3 of row r's piece.  Two rows per
 * load pair, then an 8 x 8 dword transpose in each 256-bit half and a
 * 128-bit lane merge. */
INLINE void transpose16x8m(const uint8_t *const *rows, size_t off, __m512i v[8], __mmask32 m)
{
    __m512i z[8], t[8], u[8];
    _Pragma("GCC unroll 8") for (int q = 0; q < 8; q++) /* rows q and q + 8 */
        z[q] = _mm512_inserti64x4(_mm512_castsi256_si512(load32(rows[q] + off, m)), load32(rows[q + 8] + off, m), 1);
    _Pragma("GCC unroll 4") for (int q = 0; q < 8; q += 2) {
        t[q] = _mm512_unpacklo_epi32(z[q], z[q + 1]);
        t[q + 1] = _mm512_unpackhi_epi32(z[q], z[q + 1]);
    }
    _Pragma("GCC unroll 2") for (int h = 0; h < 8; h += 4) { /* rows h..h+3 (and h+8..h+11) */
        u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);     /* dwords 0 | 4 */
        u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]); /* 1 | 5 */
        u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]); /* 2 | 6 */
        u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]); /* 3 | 7 */
    }
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13), hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    _Pragma("GCC unroll 4") for (int g = 0; g < 4; g++) {
        v[g] = _mm512_permutex2var_epi64(u[g], lo, u[4 + g]);
        v[4 + g] = _mm512_permutex2var_epi64(u[g], hi, u[4 + g]);
    }
}

INLINE void transpose16x8(const uint8_t *const *rows, size_t off, __m512i v[8])
{
    transpose16x8m(rows, off, v, (__mmask32)~0u);
}

/* A block of 16 rows, ready for every token of the tile: g[i] holds
 * elements 4i..4i+3 of each row (unsigned), d / m the rows' scales. */
typedef struct wblk {
    __m512i g[8];
    __m512 d, m;
} wblk;

/* the fp16 pair at rows[r] + off (d in the low half, m in the high half) */
INLINE __m512i gather_dw(__m512i vidx, const uint8_t *base, size_t off)
{
    return _mm512_i32gather_epi32(vidx, (const void *)(base + off), 1);
}

INLINE __m512 halves_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
INLINE __m512 halves_hi(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

INLINE void prep_q4_0(const uint8_t *const *rows, __m512i vidx, int b, wblk *w)
{
    const size_t off = (size_t)b * sizeof(sl_block_q4_0);
    __m512i v[4];
    transpose16x4(rows, off + 2, v);
    const __m512i lo = _mm512_set1_epi8(0x0f);
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) { /* ggml: low nibbles are elements 0..15, high ones 16..31 */
        w->g[i] = _mm512_and_si512(v[i], lo);
        w->g[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v[i], 4), lo);
    }
    w->d = halves_lo(gather_dw(vidx, rows[0], off));
}

INLINE void prep_q4_1(const uint8_t *const *rows, __m512i vidx, int b, wblk *w)
{
    const size_t off = (size_t)b * sizeof(sl_block_q4_1);
    __m512i v[4];
    transpose16x4(rows, off + 4, v);
    const __m512i lo = _mm512_set1_epi8(0x0f);
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
        w->g[i] = _mm512_and_si512(v[i], lo);
        w->g[4 + i] = _mm512_and_si512(_mm512_srli_epi16(v[i], 4), lo);
    }
    const __m512i dm = gather_dw(vidx, rows[0], off);
    w->d = halves_lo(dm);
    w->m = halves_hi(dm);
}

INLINE void prep_q8_0(const uint8_t *const *rows, __m512i vidx, int b, wblk *w)
{
    const size_t off = (size_t)b * sizeof(sl_block_q8_0);
    const __m512i flip = _mm512_set1_epi8(-128); /* w + 128: unsigned for dpbusd */
    transpose16x8(rows, off + 2, w->g);
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
        w->g[i] = _mm512_xor_si512(w->g[i], flip);
    w->d = halves_lo(gather_dw(vidx, rows[0], off));
}

INLINE void prep_iq4_nl(const uint8_t *const *rows, __m512i vidx, int b, wblk *w)
{
    const size_t off = (size_t)b * sizeof(sl_block_iq4_nl);
    const __m512i code = _mm512_broadcast_i32x4(
        _mm_add_epi8(_mm_loadu_si128((const __m128i *)(const void *)sl_iq4nl_values), _mm_set1_epi8(-128)));
    __m512i v[4];
    transpose16x4(rows, off + 2, v);
    const __m512i lo = _mm512_set1_epi8(0x0f);
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) { /* nibbles as Q4_0's, through the code (+128) */
        w->g[i] = _mm512_shuffle_epi8(code, _mm512_and_si512(v[i], lo));
        w->g[4 + i] = _mm512_shuffle_epi8(code, _mm512_and_si512(_mm512_srli_epi16(v[i], 4), lo));
    }
    w->d = halves_lo(gather_dw(vidx, rows[0], off));
}

/* Byte n (0..3) of each dword lane. */
INLINE __m512i byte_of(__m512i v, int n) { return _mm512_and_si512(_mm512_srl_epi32(v, _mm_cvtsi32_si128(8 * n)), _mm512_set1_epi32(0xff)); }

/* Q4_K, activation block b = sub-block b % 8 of super-block b / 8. */
INLINE void prep_q4_k(const uint8_t *const *rows, __m512i vidx, int b, wblk *w)
{
    const int s = b % 8;
    const size_t off = (size_t)(b / 8) * sizeof(sl_block_q4_k);
    transpose16x8(rows, off + 16 + 32 * (size_t)(s / 2), w->g);
    const __m512i lo = _mm512_set1_epi8(0x0f);
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
        w->g[i] = _mm512_and_si512(s & 1 ? _mm512_srli_epi16(w->g[i], 4) : w->g[i], lo);
    const __m512i dm = gather_dw(vidx, rows[0], off);
    const __m512i s0 = gather_dw(vidx, rows[0], off + 4), s1 = gather_dw(vidx, rows[0], off + 8);
    __m512i sc, m; /* ggml's get_scale_min_k4, 16 rows at once */
    if (s < 4) {
        sc = _mm512_and_si512(byte_of(s0, s), _mm512_set1_epi32(63));
        m = _mm512_and_si512(byte_of(s1, s), _mm512_set1_epi32(63));
    } else {
        const __m512i s2 = gather_dw(vidx, rows[0], off + 12);
        const __m512i hi = byte_of(s2, s - 4);
        sc = _mm512_or_si512(_mm512_and_si512(hi, _mm512_set1_epi32(0xf)),
                             _mm512_slli_epi32(_mm512_srli_epi32(byte_of(s0, s - 4), 6), 4));
        m = _mm512_or_si512(_mm512_srli_epi32(hi, 4), _mm512_slli_epi32(_mm512_srli_epi32(byte_of(s1, s - 4), 6), 4));
    }
    w->d = _mm512_mul_ps(halves_lo(dm), _mm512_cvtepi32_ps(sc));
    w->m = _mm512_mul_ps(halves_hi(dm), _mm512_cvtepi32_ps(m));
}

/* Q6_K, activation block b: 6-bit values 0..63 (unsigned), the two int8
 * scales of its halves in g's companion vectors sa / sb (as wblk.d / m's
 * bits), and d. */
typedef struct wblk6 {
    wblk w;
    __m512i sa, sb;
} wblk6;

INLINE void prep_q6_k(const uint8_t *const *rows, __m512i vidx, int b, wblk6 *w6)
{
    const int s = b % 8, h = s / 4, r = s % 4;
    const size_t off = (size_t)(b / 8) * sizeof(sl_block_q6_k);
    __m512i qh[8];
    transpose16x8(rows, off + 64 * (size_t)h + 32 * (size_t)(r & 1), w6->w.g);
    transpose16x8(rows, off + 128 + 32 * (size_t)h, qh);
    const __m512i lo = _mm512_set1_epi8(0x0f), three = _mm512_set1_epi8(3);
    const __m128i sh = _mm_cvtsi32_si128(2 * r);
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
        const __m512i l4 = _mm512_and_si512(r >> 1 ? _mm512_srli_epi16(w6->w.g[i], 4) : w6->w.g[i], lo);
        const __m512i h2 = _mm512_and_si512(_mm512_srl_epi16(qh[i], sh), three);
        w6->w.g[i] = _mm512_or_si512(l4, _mm512_slli_epi16(h2, 4));
    }
    const __m512i sc = gather_dw(vidx, rows[0], off + 192 + 2 * (size_t)s); /* scales 2s, 2s + 1 */
    w6->sa = _mm512_srai_epi32(_mm512_slli_epi32(sc, 24), 24);
    w6->sb = _mm512_srai_epi32(_mm512_slli_epi32(sc, 16), 24);
    w6->w.d = halves_hi(gather_dw(vidx, rows[0], off + 206)); /* d is the block's last two bytes */
}

/* One token, one block: the int32 sums of 16 rows, from the correction c
 * (integer sums are exact in any order).  In a tile of few tokens, four
 * independent dpbusd chains, so that one token's block is not eight
 * dpbusd latencies long; in one of 8 or 16 the tokens' chains overlap
 * already, and one chain a token saves the adds and the zeroed starts. */
INLINE __m512i isum16(const wblk *w, const act_blk *a, int32_t c, const int n)
{
    const int32_t *q = (const int32_t *)(const void *)a->qs;
    if (n >= 8) {
        __m512i s = _mm512_set1_epi32(c);
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
            s = _mm512_dpbusd_epi32(s, w->g[i], _mm512_set1_epi32(q[i]));
        return s;
    }
    __m512i s0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(c), w->g[0], _mm512_set1_epi32(q[0]));
    __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->g[1], _mm512_set1_epi32(q[1]));
    __m512i s2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->g[2], _mm512_set1_epi32(q[2]));
    __m512i s3 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->g[3], _mm512_set1_epi32(q[3]));
    s0 = _mm512_dpbusd_epi32(s0, w->g[4], _mm512_set1_epi32(q[4]));
    s1 = _mm512_dpbusd_epi32(s1, w->g[5], _mm512_set1_epi32(q[5]));
    s2 = _mm512_dpbusd_epi32(s2, w->g[6], _mm512_set1_epi32(q[6]));
    s3 = _mm512_dpbusd_epi32(s3, w->g[7], _mm512_set1_epi32(q[7]));
    return _mm512_add_epi32(_mm512_add_epi32(s0, s1), _mm512_add_epi32(s2, s3));
}

INLINE __m512 step_q4_0(const wblk *w, const act_blk *a, __m512 acc, const int n)
{
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum16(w, a, a->c8, n)), _mm512_mul_ps(w->d, _mm512_set1_ps(a->dx)), acc);
}

INLINE __m512 step_q8_0(const wblk *w, const act_blk *a, __m512 acc, const int n)
{
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum16(w, a, a->c128, n)), _mm512_mul_ps(w->d, _mm512_set1_ps(a->dx)), acc);
}

INLINE __m512 step_iq4_nl(const wblk *w, const act_blk *a, __m512 acc, const int n) { return step_q8_0(w, a, acc, n); }

INLINE __m512 step_q4_k(const wblk *w, const act_blk *a, __m512 acc, const int n)
{
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum16(w, a, 0, n)), _mm512_mul_ps(w->d, _mm512_set1_ps(a->dx)), acc);
    return _mm512_fnmadd_ps(w->m, _mm512_set1_ps(a->ds), acc);
}

/* The halves apart (4 dpbusd each), weighed by their scales in int32. */
INLINE __m512 step_q6_k(const wblk6 *w6, const act_blk *a, __m512 acc, const int n)
{
    (void)n;
    const int32_t *q = (const int32_t *)(const void *)a->qs;
    const wblk *w = &w6->w;
    __m512i s0 = _mm512_dpbusd_epi32(_mm512_set1_epi32(a->c32[0]), w->g[0], _mm512_set1_epi32(q[0]));
    __m512i s1 = _mm512_dpbusd_epi32(_mm512_set1_epi32(a->c32[1]), w->g[4], _mm512_set1_epi32(q[4]));
    __m512i t0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->g[1], _mm512_set1_epi32(q[1]));
    __m512i t1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w->g[5], _mm512_set1_epi32(q[5]));
    s0 = _mm512_dpbusd_epi32(s0, w->g[2], _mm512_set1_epi32(q[2]));
    s1 = _mm512_dpbusd_epi32(s1, w->g[6], _mm512_set1_epi32(q[6]));
    t0 = _mm512_dpbusd_epi32(t0, w->g[3], _mm512_set1_epi32(q[3]));
    t1 = _mm512_dpbusd_epi32(t1, w->g[7], _mm512_set1_epi32(q[7]));
    const __m512i isum = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_add_epi32(s0, t0), w6->sa),
                                          _mm512_mullo_epi32(_mm512_add_epi32(s1, t1), w6->sb));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(w->d, _mm512_set1_ps(a->dx)), acc);
}

INLINE __m512 step_q4_1(const wblk *w, const act_blk *a, __m512 acc, const int n)
{
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum16(w, a, 0, n)), _mm512_mul_ps(w->d, _mm512_set1_ps(a->dx)), acc);
    return _mm512_fmadd_ps(w->m, _mm512_set1_ps(a->ds), acc);
}

/* A group of 16 rows from row R (nr of them real): each row's address and
 * the byte offsets the scale gathers use.  Rows past the end repeat the
 * last one: read, computed, never stored. */
INLINE __m512i row_group(const uint8_t *w, size_t row_bytes, int R, int nr, const uint8_t **rows)
{
    int32_t idx[16];
    for (int r = 0; r < 16; r++) {
        const int rr = r < nr ? r : nr - 1;
        if (rows)
            rows[r] = w + (size_t)(R + rr) * row_bytes;
        idx[r] = (int32_t)((size_t)rr * row_bytes);
    }
    return _mm512_loadu_si512(idx);
}

/* The 16 rows' bytes at offset off into L2 (an integer address: a
 * prefetch never faults, past the tensor too). */
INLINE void prefetch16_l2(const uint8_t *const *rows, size_t off)
{
    _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++)
        _mm_prefetch((const char *)((uintptr_t)rows[r] + off), _MM_HINT_T1);
}

/* ---- Q4_0, one token: no scale gather -------------------------------
 *
 * Gathering the 16 rows' scales is the costliest step of the tile on
 * some CPUs (on a Zen 5 the tile ran 1.5x as fast without it, wrong
 * results and all).  For one token each row's 32 bytes from the block's
 * start are transposed as they lie instead: the scale, the 16 quant
 * bytes, then the next block's scale and quants.  The scale is the low
 * half of the first 4-byte group; the token's quants are laid out to
 * match, five groups against the low nibbles and five against the high
 * ones, zero against the scale bytes and nothing past the block.
 * Two more dpbusd a block, the same exact integer sums and the same float
 * chain as the tile: the same bits. */
typedef struct act_q4x {
    int32_t q[10]; /* 4-byte groups: 0-4 against the low nibbles, 5-9 the high */
    float dx;
    int32_t c8;
    int32_t pad_[4];
} act_q4x;
SL_STATIC_ASSERT(sizeof(act_q4x) == 64, "act_q4x: one cache line");

#define Q4X_MAX_BLOCKS 1024 /* k <= 32768; longer rows take the tile */
static _Thread_local _Alignas(64) act_q4x q4x_act[Q4X_MAX_BLOCKS]; /* a line each, as asserted */

INLINE __m512i q4x_isum(const __m512i v[8], const act_q4x *a)
{
    const __m512i lo = _mm512_set1_epi8(0x0f);
    __m512i s[4] = {_mm512_set1_epi32(a->c8), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    _Pragma("GCC unroll 10") for (int i = 0; i < 10; i++) {
        const __m512i g = i < 5 ? v[i] : _mm512_srli_epi16(v[i - 5], 4);
        s[i % 4] = _mm512_dpbusd_epi32(s[i % 4], _mm512_and_si512(g, lo), _mm512_set1_epi32(a->q[i]));
    }
    return _mm512_add_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_add_epi32(s[2], s[3]));
}

/* y[r0..r1) for one token; 0 (nothing done) where k is over the limit.
 * A function of its own at a pinned 64-byte boundary: inlined, its loop
 * moved with the code around it, and its placement alone moved its speed
 * by 15-20%. */
__attribute__((noinline, aligned(64))) static int one_q4_0(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, int k, float *y)
{
    const int nb = k / 32;
    if (nb > Q4X_MAX_BLOCKS)
        return 0;
    const act_blk *a = x;
    act_q4x *ax = q4x_act;
    for (int b = 0; b < nb; b++) {
        int8_t g[40] = {0}; /* per half: 2 zero bytes, the 16 quants, 2 zero bytes */
        memcpy(g + 2, a[b].qs, 16);
        memcpy(g + 22, a[b].qs + 16, 16);
        memcpy(ax[b].q, g, sizeof g);
        ax[b].dx = a[b].dx;
        ax[b].c8 = a[b].c8;
        ax[b].pad_[0] = ax[b].pad_[1] = ax[b].pad_[2] = ax[b].pad_[3] = 0;
    }
    const size_t next = 16 * row_bytes; /* as the tile: the next 16 rows into L2 */
    for (int R = r0; R < r1; R += 16) {
        const int nr = r1 - R < 16 ? r1 - R : 16;
        const uint8_t *rows[16];
        (void)row_group(w, row_bytes, R, nr, rows);
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            if ((b & 1) == 0)
                prefetch16_l2(rows, next + (size_t)b * sizeof(sl_block_q4_0));
            __m512i v[8];
            /* a row's last block: its own 18 bytes only, nothing past the tensor */
            transpose16x8m(rows, (size_t)b * sizeof(sl_block_q4_0), v, b + 1 < nb ? (__mmask32)~0u : (__mmask32)0x3ffff);
            const __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v[0]));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q4x_isum(v, &ax[b])), _mm512_mul_ps(d, _mm512_set1_ps(ax[b].dx)), acc);
        }
        _mm512_mask_storeu_ps(y + R, (__mmask16)((1u << nr) - 1), acc);
    }
    return 1;
}

/* The other types have no one-token path of their own. */
INLINE int one_none(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, int k, float *y)
{
    (void)w, (void)row_bytes, (void)r0, (void)r1, (void)x, (void)k, (void)y;
    return 0;
}

/* Tokens per int8 tile: 16 accumulators, 8 quant vectors, the scales and
 * a temporary fit the 32 registers; the transposed block then serves 16
 * tokens. */
#define IMT 16
#define UNROLL_IMT _Pragma("GCC unroll 16")

/* Per-thread scratch buffers (one per use, so that a caller's and its
 * fallback's never meet), kept for the next call and freed when the
 * thread ends. */
enum { SCRATCH_TILE, SCRATCH_AMX, SCRATCH_N };
static pthread_key_t scratch_key[SCRATCH_N];
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static int scratch_ok;

static void scratch_make(void)
{
    scratch_ok = 1;
    for (int i = 0; i < SCRATCH_N; i++)
        if (pthread_key_create(&scratch_key[i], free) != 0)
            scratch_ok = 0;
}

/* At least `bytes` (64-byte aligned), or NULL when out of memory. */
static uint8_t *thread_scratch(int slot, size_t bytes)
{
    if (pthread_once(&scratch_once, scratch_make) != 0 || !scratch_ok)
        return NULL;
    size_t *s = pthread_getspecific(scratch_key[slot]);
    if (!s || s[0] < bytes) {
        size_t *n = aligned_alloc(64, 64 + (bytes + 63) / 64 * 64);
        if (!n || pthread_setspecific(scratch_key[slot], n) != 0) {
            free(n);
            return NULL;
        }
        free(s);
        n[0] = bytes;
        s = n;
    }
    return (uint8_t *)s + 64;
}

/* ---- The tile's input: its tokens side by side ----------------------
 *
 * A tile of n tokens reads block b of each in turn.  Token by token those
 * blocks lie act_bytes(k) apart: 16 lines one stride apart, which at
 * k = 2048 (4 KiB) all fall in one set of a 12-way L1, and 16 addresses
 * to keep.  Interleaved, a tile's blocks b lie side by side, [b][token],
 * reached from one pointer.  Tiles of IMT tokens, the last one tile_width(n)
 * wide with its tokens past n repeating the last (computed, never stored).
 * One token's blocks are already such a tile. */
INLINE int tile_width(int n) { return n <= 4 ? n : n <= 8 ? 8 : 16; }

static size_t il_bytes(int nt, int k)
{
    const size_t tile = (size_t)(k / 32) * sizeof(act_blk); /* one token's */
    return (size_t)(nt / IMT) * IMT * tile + (nt % IMT ? (size_t)tile_width(nt % IMT) * tile : 0);
}

static void il_prep(const void *x, size_t x_stride, int nt, int k, void *out)
{
    const int nb = k / 32;
    act_blk *o = out;
    for (int t = 0; t < nt; t += IMT) {
        const int n = nt - t < IMT ? nt - t : IMT, wd = tile_width(n);
        for (int b = 0; b < nb; b++)
            for (int j = 0; j < wd; j++)
                *o++ = *(const act_blk *)(const void *)((const uint8_t *)x + (size_t)(t + (j < n ? j : n - 1)) * x_stride +
                                                         (size_t)b * sizeof(act_blk));
    }
}

/* The engine's form (sl_kernels.xprep): none for one token. */
static size_t il_xprep_bytes(int nt, int k) { return nt > 1 ? il_bytes(nt, k) : 0; }

/* 16 rows (masked below 16) against the n (1-4, 8 or 16; a constant once
 * inlined) tokens side by side at xb. */
#define INT8_TILE(T, BT, WB, PER, ONE)                                                                                 \
    INLINE void tile_##T(const uint8_t *const *rows, __m512i vidx, const act_blk *xb, const int n, int ns, int nb,    \
                         float *y, int ldy, __mmask16 m, size_t next)                                                  \
    {                                                                                                                  \
        __m512 acc[IMT];                                                                                               \
        UNROLL_IMT for (int j = 0; j < n; j++) acc[j] = _mm512_setzero_ps();                                           \
        for (int b = 0; b < nb; b++) {                                                                                 \
            /* the next 16 rows, as far along, into L2 (into L1 they crowd out                                         \
             * the rows being read), past the call's last row too (most often                                          \
             * this core's next task).  Every second block, or every block                                             \
             * where two are over a line (Q8_0), so that no line is left to                                            \
             * come on demand */                                                                                       \
            if (next && ((b & 1) == 0 || 2 * sizeof(BT) / (PER) > 64))                                                 \
                prefetch16_l2(rows, next + (size_t)b * sizeof(BT) / (PER));                                            \
            WB w;                                                                                                      \
            prep_##T(rows, vidx, b, &w);                                                                               \
            const act_blk *xr = xb + (size_t)b * (size_t)n;                                                            \
            UNROLL_IMT for (int j = 0; j < n; j++) acc[j] = step_##T(&w, &xr[j], acc[j], n);                           \
        }                                                                                                              \
        UNROLL_IMT for (int j = 0; j < n; j++) if (j < ns) _mm512_mask_storeu_ps(y + (size_t)j * ldy, m, acc[j]);     \
    }                                                                                                                  \
    /* from il_prep's layout (one token: its act_quant blocks) */                                                      \
    static void gemm_xp_##T(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *xp, int nt, int k,        \
                            float *y, int ldy)                                                                         \
    {                                                                                                                  \
        if (nt == 1 && ONE(w, row_bytes, r0, r1, xp, k, y))                                                           \
            return;                                                                                                    \
        const int nb = k / 32;                                                                                         \
        /* tokens in blocks of about 1 MiB of activations, which stay in L2                                           \
         * while every 16-row group passes them */                                                                    \
        const int tb = gemm_block(1u << 20, (size_t)nb * sizeof(act_blk), IMT) / IMT * IMT;                           \
        for (int T0 = 0; T0 < nt; T0 += tb) {                                                                          \
            const int T1 = T0 + tb < nt ? T0 + tb : nt;                                                                \
            for (int R = r0; R < r1; R += 16) {                                                                        \
                const int nr = r1 - R < 16 ? r1 - R : 16;                                                              \
                const __mmask16 m = (__mmask16)((1u << nr) - 1);                                                       \
                const uint8_t *rows[16];                                                                               \
                const __m512i vidx = row_group(w, row_bytes, R, nr, rows);                                             \
                const size_t next = 16 * row_bytes; /* past r1 too: most often this core's next task */                \
                for (int t = T0; t < T1; t += IMT) {                                                                   \
                    /* widths 1-4 exact, else 8 or 16 (a third of the code of                                          \
                     * one tile per width, the same bits) */                                                          \
                    const int n = T1 - t < IMT ? T1 - t : IMT;                                                         \
                    const act_blk *xb = (const act_blk *)xp + (size_t)t * (size_t)nb;                                 \
                    float *yt = y + (size_t)t * ldy + R;                                                               \
                    const size_t pf = t == T0 ? next : 0;                                                              \
                    switch (tile_width(n)) {                                                                           \
                    case 16: tile_##T(rows, vidx, xb, 16, n, nb, yt, ldy, m, pf); break;                               \
                    case 8: tile_##T(rows, vidx, xb, 8, n, nb, yt, ldy, m, pf); break;                                 \
                    case 4: tile_##T(rows, vidx, xb, 4, n, nb, yt, ldy, m, pf); break;                                 \
                    case 3: tile_##T(rows, vidx, xb, 3, n, nb, yt, ldy, m, pf); break;                                 \
                    case 2: tile_##T(rows, vidx, xb, 2, n, nb, yt, ldy, m, pf); break;                                 \
                    default: tile_##T(rows, vidx, xb, 1, n, nb, yt, ldy, m, pf); break;                                \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
    /* Several tokens are laid side by side first (the engine does that once                                           \
     * per product and calls gemm_xp instead) */                                                                       \
    static void gemm_##T(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,  \
                         int k, float *y, int ldy)                                                                     \
    {                                                                                                                  \
        uint8_t *xp = nt > 1 ? thread_scratch(SCRATCH_TILE, il_bytes(nt, k)) : NULL;                                   \
        if (xp) {                                                                                                      \
            il_prep(x, x_stride, nt, k, xp);                                                                           \
            gemm_xp_##T(w, row_bytes, r0, r1, xp, nt, k, y, ldy);                                                      \
            return;                                                                                                    \
        }                                                                                                              \
        for (int t = 0; t < nt; t++) /* one token, or no memory: a token at a time, the same bits */                   \
            gemm_xp_##T(w, row_bytes, r0, r1, (const uint8_t *)x + (size_t)t * x_stride, 1, k, y + (size_t)t * ldy,   \
                        ldy);                                                                                          \
    }

INT8_TILE(q4_0, sl_block_q4_0, wblk, 1, one_q4_0)
INT8_TILE(q4_1, sl_block_q4_1, wblk, 1, one_none)
INT8_TILE(q8_0, sl_block_q8_0, wblk, 1, one_none)
INT8_TILE(iq4_nl, sl_block_iq4_nl, wblk, 1, one_none)
INT8_TILE(q4_k, sl_block_q4_k, wblk, 8, one_none)
INT8_TILE(q6_k, sl_block_q6_k, wblk6, 8, one_none)

/* ---- NF4 and W8A8: one row against up to MT tokens ------------------
 *
 * The per-token accumulators are fed in the same order for every tile
 * width, so every tile gives a (row, token) pair the same bits. */
/* NF4 on float activations: 16 codes a step through one permute of the
 * 16-entry table. */
INLINE __m512 nf4_values16(const uint8_t *q16, int shift, __m512 table)
{
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)q16));
    return _mm512_permutexvar_ps(_mm512_srli_epi32(idx, shift), table); /* only the low 4 bits index */
}

INLINE void tile_nf4(const uint8_t *w, const float *const *x, const int nt, int k, float *out)
{
    const sl_block_nf4 *b = (const sl_block_nf4 *)(const void *)w;
    const __m512 table = _mm512_loadu_ps(sl_nf4_values);
    __m512 acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++) acc[j] = _mm512_setzero_ps();
    for (int i = 0; i < k / 256; i++) {
        const float D = _cvtsh_ss(b[i].d);
        for (int s = 0; s < 4; s++) {
            const uint8_t *q = b[i].qs + 32 * s;
            const __m512 w0 = nf4_values16(q, 0, table), w1 = nf4_values16(q + 16, 0, table);
            const __m512 w2 = nf4_values16(q, 4, table), w3 = nf4_values16(q + 16, 4, table);
            const __m512 sc = _mm512_set1_ps(D * (float)b[i].code[s]);
            UNROLL_MT for (int j = 0; j < nt; j++) {
                const float *xs = x[j] + 256 * i + 64 * s;
                __m512 p = _mm512_mul_ps(w0, _mm512_loadu_ps(xs));
                p = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xs + 16), p);
                p = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xs + 32), p);
                p = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xs + 48), p);
                acc[j] = _mm512_fmadd_ps(sc, p, acc[j]);
            }
        }
    }
    UNROLL_MT for (int j = 0; j < nt; j++) out[j] = hsum16(acc[j]);
}

/* W8A8: weights made unsigned (+128) for dpbusd, 64 a step, the rest
 * masked; the +128 comes back as -128 x the token's sum.  Exact integers. */
INLINE void tile_w8a8(const uint8_t *w, const sl_w8a8_act *const *x, const int nt, int k, float *out)
{
    __m512i acc[MT];
    UNROLL_MT for (int j = 0; j < nt; j++) acc[j] = _mm512_setzero_si512();
    const __m512i flip = _mm512_set1_epi8(-128);
    for (int i = 0; i < k; i += 64) {
        const __mmask64 m = k - i >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (k - i)) - 1);
        /* masked-off weight bytes are 0 + 128; their activations are the zero padding */
        const __m512i a = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, w + i), flip);
        UNROLL_MT for (int j = 0; j < nt; j++) acc[j] = _mm512_dpbusd_epi32(
            acc[j], a, _mm512_loadu_si512((const void *)((const int8_t *)(x[j] + 1) + i)));
    }
    UNROLL_MT for (int j = 0; j < nt; j++) out[j] = (float)(_mm512_reduce_add_epi32(acc[j]) - 128 * x[j]->sum);
}

GEMM(gemm_w8a8, tile_w8a8, sl_w8a8_act)
GEMM(gemm_nf4, tile_nf4, float)

GEMM4(gemm_f32, tile_f32, tile4_f32, float)
GEMM4(gemm_f16, tile_f16, tile4_f16, float)
GEMM4(gemm_bf16, tile_bf16, tile4_bf16, float)

static inline __mmask16 tail16(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

INLINE __m512 qk16(const float *q, const float *k, int hd)
{
    __m512 a = _mm512_setzero_ps();
    for (int i = 0; i < hd; i += 16)
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail16(hd - i), q + i), _mm512_maskz_loadu_ps(tail16(hd - i), k + i), a);
    return a;
}

/* Four positions reduce together (hsum16x4 adds as hsum16 does), so a
 * score has the same bits whether its block is full or not; the sums are
 * then divided by the scale 16 at a time (each quotient the scalar's). */
INLINE void scores_impl(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out)
{
    int p = 0;
    for (; p + 4 <= n_pos; p += 4)
        hsum16x4(qk16(q, k + (size_t)p * stride, hd), qk16(q, k + (size_t)(p + 1) * stride, hd),
                 qk16(q, k + (size_t)(p + 2) * stride, hd), qk16(q, k + (size_t)(p + 3) * stride, hd), out + p);
    for (; p < n_pos; p++)
        out[p] = hsum16(qk16(q, k + (size_t)p * stride, hd));
    for (p = 0; p < n_pos; p += 16) {
        const __mmask16 m = tail16(n_pos - p);
        _mm512_mask_storeu_ps(out + p, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, out + p), _mm512_set1_ps(scale)));
    }
}

/* Up to four 16-wide slices of o stay in registers across all positions:
 * four independent FMA chains instead of one (a slice's sums keep their
 * order, so the bits are those of one slice at a time). */
INLINE void accum_impl(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd)
{
    for (int i = 0; i < hd; i += 64) {
        __m512 acc[4];
        __mmask16 m[4];
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++) {
            m[s] = i + 16 * s < hd ? tail16(hd - i - 16 * s) : 0;
            acc[s] = _mm512_maskz_loadu_ps(m[s], o + i + 16 * s);
        }
        for (int p = 0; p < n_pos; p++) {
            const __m512 a = _mm512_set1_ps(att[p]);
            const float *vp = v + (size_t)p * stride + i;
            _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++)
                acc[s] = _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m[s], vp + 16 * s), acc[s]);
        }
        _Pragma("GCC unroll 4") for (int s = 0; s < 4; s++)
            _mm512_mask_storeu_ps(o + i + 16 * s, m[s], acc[s]);
    }
}

/* The common head sizes get their own copies, with the masks and loop
 * bounds folded to constants; the arithmetic is the generic one's. */
static void attn_scores(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out)
{
    if (hd == 64)
        scores_impl(q, k, stride, n_pos, 64, scale, out);
    else if (hd == 128)
        scores_impl(q, k, stride, n_pos, 128, scale, out);
    else
        scores_impl(q, k, stride, n_pos, hd, scale, out);
}

static void attn_accum(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd)
{
    if (hd == 64)
        accum_impl(o, att, v, stride, n_pos, 64);
    else if (hd == 128)
        accum_impl(o, att, v, stride, n_pos, 128);
    else
        accum_impl(o, att, v, stride, n_pos, hd);
}

/* ---- AMX int8 ---------------------------------------------------------
 *
 * The same products through AMX's tile unit, for calls of several tokens.
 * Per block, C[token][row] = A . B in one tile instruction: A holds the
 * tokens' 32 activation quants (read in place, one token per tile row), B
 * the 16 weight rows transposed as above (tile row i = the g[i] vector).
 * The int32 sums are exact, so isum = c + C equals isum16's, and every
 * (row, token) value then takes the very float operations of the VNNI
 * tile: AMX and VNNI results have the same bits, and the choice between
 * them (by token count) cannot break batch invariance.
 *
 * A 16-row group's blocks are transposed once into a chunk buffer and
 * serve every token tile; accumulators cross chunk boundaries through y
 * (a float stored and reloaded keeps its bits). */








#define AMX_CH 32       /* blocks per chunk: 20 KiB of transposed weights, in L1 */
#define AMX_MIN_TOKENS 4 /* Q8_0: below this the VNNI tile is cheaper */
/* Q4_0, Q4_1: transposing a group's nibbles pays only over many tokens
 * (sluice kbench: AMX level with VNNI at 16-24 tokens, ahead from 32) */
#define AMX_Q4_MIN_TOKENS 32
#define AMX_PF_ROWS 32   /* Q8_0 prefetches the rows two groups ahead into L2: measured best from DRAM */

typedef struct amx_chunk {
    __m512i g[AMX_CH][8]; /* B tiles: 8 rows of 64 bytes */
    float d[AMX_CH][16], m[AMX_CH][16];
} amx_chunk;

typedef struct amx_cfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_cfg;

/* The tile shapes for n rows of A and C (tokens, or Q8_0's weight rows),
 * loaded only when n changes (the configuration is per thread and
 * survives context switches). */
static _Thread_local int amx_rows;

static void amx_configure(int n)
{
    if (amx_rows == n)
        return;
    amx_cfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 4; i++) /* C tiles 0-3: n x 16 int32 */
        c.colsb[i] = 64, c.rows[i] = (uint8_t)n;
    for (int i = 4; i < 6; i++) /* A tiles 4, 5: n x 32 quants */
        c.colsb[i] = 32, c.rows[i] = (uint8_t)n;
    for (int i = 6; i < 8; i++) /* B tiles 6, 7: 8 groups x 16 x 4 quants */
        c.colsb[i] = 64, c.rows[i] = 8;
    /* GCC does not model ldtilecfg's 64-byte read and drops the stores
     * to rows[] as dead; the empty asm makes them visible. */
    __asm__ volatile("" : : "m"(c) : "memory");
    _tile_loadconfig(&c);
    amx_rows = n;
}

/* Block b0 + c's product into C tile CT (tile numbers are immediates):
 * signed activations x unsigned nibbles. */
#define AMX_ISSUE(CT, AT, BT, c)                                                                                       \
    do {                                                                                                               \
        _tile_loadd(BT, ch.g[c], 64);                                                                                  \
        _tile_loadd(AT, xt + (size_t)(b0 + (c)) * sizeof(act_blk), (long)x_stride);                                    \
        _tile_zero(CT);                                                                                                \
        _tile_dpbsud(CT, AT, BT);                                                                                      \
    } while (0)

/* Block b0 + c's int32 sums (in CB) into the 16 tokens' accumulators,
 * with the VNNI tile's float operations. */
#define AMX_SCALE(C, HAS_M, c, CB)                                                                                     \
    do {                                                                                                               \
        const int b_ = b0 + (c);                                                                                       \
        const __m512 d = _mm512_load_ps(ch.d[c]);                                                                      \
        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {                                                        \
            const act_blk *a = &xs[j][b_];                                                                             \
            __m512i is = _mm512_add_epi32(_mm512_load_si512(CB[j]), _mm512_set1_epi32(C)); /* 0 folds away */          \
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(d, _mm512_set1_ps(a->dx)), acc[j]);         \
            if (HAS_M)                                                                                                 \
                acc[j] = _mm512_fmadd_ps(_mm512_load_ps(ch.m[c]), _mm512_set1_ps(a->ds), acc[j]);                      \
        }                                                                                                              \
    } while (0)

/* T: type (prep_T prepares its blocks); C: the correction
 * (an act_blk field, or 0); HAS_M: Q4_1's offset term. */
#define AMX_GEMM(T, BT, C, HAS_M)                                                                                      \
    static void gemm_amx_##T(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride,      \
                             int nt, int k, float *y, int ldy)                                                         \
    {                                                                                                                  \
        if (nt < AMX_Q4_MIN_TOKENS) {                                                                                  \
            gemm_##T(w, row_bytes, r0, r1, x, x_stride, nt, k, y, ldy);                                                \
            return;                                                                                                    \
        }                                                                                                              \
        const int nb = k / 32;                                                                                         \
        amx_chunk ch;                                                                                                  \
        _Alignas(64) int32_t cb[2][16][16] = {{{0}}};                                                                  \
        const int tb = gemm_block(1u << 20, x_stride, IMT) / IMT * IMT;                                                \
        for (int T0 = 0; T0 < nt; T0 += tb) {                                                                          \
            const int T1 = T0 + tb < nt ? T0 + tb : nt;                                                                \
            for (int R = r0; R < r1; R += 16) {                                                                        \
                const int nr = r1 - R < 16 ? r1 - R : 16;                                                              \
                const __mmask16 m = (__mmask16)((1u << nr) - 1);                                                       \
                const uint8_t *rows[16];                                                                               \
                const __m512i vidx = row_group(w, row_bytes, R, nr, rows);                                             \
                const size_t next = T0 == 0 && R + 32 <= r1 ? 16 * row_bytes : 0;                                     \
                for (int b0 = 0; b0 < nb; b0 += AMX_CH) {                                                              \
                    const int nc = nb - b0 < AMX_CH ? nb - b0 : AMX_CH;                                                \
                    for (int c = 0; c < nc; c++) {                                                                     \
                        if (next && (c & 1) == 0) /* the next 16 rows' same blocks, from DRAM */                  \
                            _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++)                                      \
                                _mm_prefetch((const char *)rows[r] + next + (size_t)(b0 + c) * sizeof(BT), _MM_HINT_T0); \
                        wblk wv;                                                                                       \
                        prep_##T(rows, vidx, b0 + c, &wv);                                                             \
                        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)                                            \
                            _mm512_store_si512(&ch.g[c][i], wv.g[i]);                                                   \
                        _mm512_store_ps(ch.d[c], wv.d);                                                                \
                        if (HAS_M)                                                                                     \
                            _mm512_store_ps(ch.m[c], wv.m);                                                            \
                    }                                                                                                  \
                    for (int t = T0; t < T1; t += 16) {                                                                \
                        const int n = T1 - t < 16 ? T1 - t : 16;                                                       \
                        amx_configure(n);                                                                              \
                        const uint8_t *xt = (const uint8_t *)x + (size_t)t * x_stride;                                 \
                        const act_blk *xs[16]; /* tokens past n repeat the last: computed, never stored */            \
                        for (int j = 0; j < 16; j++)                                                                   \
                            xs[j] = (const act_blk *)(const void *)(xt + (size_t)(j < n ? j : n - 1) * x_stride);      \
                        float *yt = y + (size_t)t * ldy + R;                                                           \
                        __m512 acc[16];                                                                                \
                        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++)                                          \
                            acc[j] = b0 == 0 || j >= n ? _mm512_setzero_ps()                                           \
                                                       : _mm512_maskz_loadu_ps(m, yt + (size_t)j * ldy);               \
                        /* two blocks in flight: block c + 1's product runs while block c's sums   \
                         * are scaled (C tiles 0 and 1, A tiles 4 and 5, B tiles 6 and 7) */          \
                        AMX_ISSUE(0, 4, 6, 0);                                                                 \
                        for (int c = 0; c < nc; c += 2) {                                                      \
                            if (c + 1 < nc)                                                                    \
                                AMX_ISSUE(1, 5, 7, c + 1);                                                     \
                            _tile_stored(0, cb[0], 64);                                                        \
                            AMX_SCALE(C, HAS_M, c, cb[0]);                                                     \
                            if (c + 1 < nc) {                                                                  \
                                if (c + 2 < nc)                                                                \
                                    AMX_ISSUE(0, 4, 6, c + 2);                                                 \
                                _tile_stored(1, cb[1], 64);                                                    \
                                AMX_SCALE(C, HAS_M, c + 1, cb[1]);                                             \
                            }                                                                                  \
                        }                                                                                      \
                        _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) if (j < n)                               \
                            _mm512_mask_storeu_ps(yt + (size_t)j * ldy, m, acc[j]);                                    \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

/* Q8_0 turns the product around: weights need no transposing, since a
 * tile row can be any row of memory, so A is 16 weight rows' quants read
 * in place (stride: the row size) and B the tokens' quants, transposed
 * once per call into a per-thread buffer.  C is then [row][token], and
 * row r's accumulator holds the 16 tokens in its lanes:
 *   acc_r = fma((float)C[r], d_w[r] * d_x, acc_r)
 * the same float operations, operand for operand, as the VNNI tile's
 * (a product of two floats is the same either way round). */
/* v[i] lane j <- v[j] lane i: pairs of rows interleaved, then pairs of
 * pairs, then the 128-bit lanes twice. */
INLINE void transpose16x16_ps(__m512 v[16])
{
    __m512 t[16];
    _Pragma("GCC unroll 8") for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(v[i], v[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(v[i], v[i + 1]);
    }
    _Pragma("GCC unroll 4") for (int i = 0; i < 16; i += 4) { /* v[i + m] lane 4L + q: column 4L + m, row i + q */
        v[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        v[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        v[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        v[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    _Pragma("GCC unroll 4") for (int m = 0; m < 4; m++) {
        const __m512 a = _mm512_shuffle_f32x4(v[m], v[4 + m], 0x88), b = _mm512_shuffle_f32x4(v[m], v[4 + m], 0xdd);
        const __m512 c = _mm512_shuffle_f32x4(v[8 + m], v[12 + m], 0x88);
        const __m512 d = _mm512_shuffle_f32x4(v[8 + m], v[12 + m], 0xdd);
        t[m] = _mm512_shuffle_f32x4(a, c, 0x88);
        t[8 + m] = _mm512_shuffle_f32x4(a, c, 0xdd);
        t[4 + m] = _mm512_shuffle_f32x4(b, d, 0x88);
        t[12 + m] = _mm512_shuffle_f32x4(b, d, 0xdd);
    }
    _Pragma("GCC unroll 16") for (int i = 0; i < 16; i++) v[i] = t[i];
}

/* The next product in issue order (block ib of the group at iwq) into
 * C tile CT, with A tile AT (weights) and B tile BT (tokens).  The rows'
 * lines two blocks on are asked from L2 into L1 first, so that a tile
 * load finds most of its 16 rows there.  Integer addresses: past a tail
 * group's rows they may lie outside the matrix (never faulting). */
#define AMXQ_ISSUE(CT, AT, BT)                                                                                         \
    do {                                                                                                               \
        _Pragma("GCC unroll 16") for (int r_ = 0; r_ < 16; r_++)                                                       \
            _mm_prefetch((const char *)((uintptr_t)iwq + (size_t)r_ * row_bytes +                                      \
                                        (size_t)(ib + 2) * sizeof(sl_block_q8_0) + 33),                               \
                         _MM_HINT_T0);                                                                                 \
        _tile_loadd(AT, iwq + (size_t)ib * sizeof(sl_block_q8_0), (long)row_bytes);                                    \
        _tile_loadd(BT, pk + (size_t)ib * 512, 64);                                                                    \
        _tile_zero(CT);                                                                                                \
        _tile_dpbssd(CT, AT, BT);                                                                                      \
        if (++ib == nb) {                                                                                              \
            ib = 0;                                                                                                    \
            iwq += 16 * row_bytes;                                                                                     \
        }                                                                                                              \
    } while (0)

/* Block sb of the group at srow, whose sums are in CB, into the rows'
 * accumulators. */
#define AMXQ_SCALE(CB)                                                                                                 \
    do {                                                                                                               \
        _Alignas(64) float dw[16];                                                                                     \
        _mm512_store_ps(dw, halves_lo(gather_dw(vidx, srow, (size_t)sb * sizeof(sl_block_q8_0))));                     \
        /* reloaded: each row's scale is then a broadcast from memory (a load \
         * port) instead of two shuffles on the port the arithmetic needs */   \
        __asm__ volatile("" : : "m"(dw) : "memory");                                                                   \
        const __m512 dx = _mm512_loadu_ps((const float *)(const void *)(pdx + (size_t)sb * 64));                       \
        _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++)                                                          \
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(CB[r])),                                     \
                                     _mm512_mul_ps(_mm512_set1_ps(dw[r]), dx), acc[r]);                                \
    } while (0)

/* Block sb's sums, stored in CB a step before, into the accumulators; a
 * group's last block writes its rows out and clears them. */
#define AMXQ_FINISH(CB)                                                                                                \
    do {                                                                                                               \
        AMXQ_SCALE(CB);                                                                                                \
        if (++sb == nb) {                                                                                              \
            transpose16x16_ps(acc); /* [row][token] -> [token][row] */                                                 \
            _Pragma("GCC unroll 16") for (int j = 0; j < 16; j++) {                                                    \
                if (j < n)                                                                                             \
                    _mm512_mask_storeu_ps(y + (size_t)j * ldy + R, rm, acc[j]);                                        \
                acc[j] = _mm512_setzero_ps();                                                                          \
            }                                                                                                          \
            sb = 0;                                                                                                    \
            srow += 16 * row_bytes;                                                                                    \
            R += 16;                                                                                                   \
        }                                                                                                              \
    } while (0)

/* A product, in flight since three steps before, has its sums stored from
 * C tile CS; the product three ahead is issued into C tile CI; the sums
 * stored a step before are scaled (a step later than their own store, so
 * the loads never wait on it). */
#define AMXQ_STEP(CS, CI, AI, BI)                                                                                      \
    do {                                                                                                               \
        _tile_stored(CS, cb[CS], 64);                                                                                  \
        if (issued < total) {                                                                                          \
            AMXQ_ISSUE(CI, AI, BI);                                                                                    \
            issued++;                                                                                                  \
        }                                                                                                              \
        if (pend)                                                                                                      \
            AMXQ_FINISH(pend);                                                                                         \
        pend = cb[CS];                                                                                                 \
    } while (0)

/* ng groups of nr rows from row R (nr < 16 only for a single tail
 * group) times n tokens, whose B tiles and scales are in pk.  The
 * products run as one stream over every group's blocks: a group's first
 * products are issued while the previous group's last ones are scaled,
 * so the tile loads of a new group never start cold. */
INLINE void amx_q8_groups(const uint8_t *w, size_t row_bytes, int R, int ng, int nr, const uint8_t *pk,
                          int nb, int n, float *y, int ldy, bool pf)
{
    amx_configure(nr); /* tail groups load only their rows */
    const uint8_t *pdx = pk + (size_t)nb * 512;
    const __m512i vidx = row_group(w, row_bytes, R, nr, NULL);
    const __mmask16 rm = (__mmask16)((1u << nr) - 1);
    _Alignas(64) int32_t cb[4][16][16];
    const long total = (long)ng * nb;
    long issued = 0;
    const uint8_t *iwq = w + (size_t)R * row_bytes + 2, *srow = w + (size_t)R * row_bytes;
    int ib = 0, sb = 0;
    __m512 acc[16];
    _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
    /* four products in flight (C tiles 0-3): one's latency, from loading
     * its tiles to storing its sums, is far longer than the scaling of one */
    if (total == 0)
        return;
    AMXQ_ISSUE(0, 4, 6);
    if (total > 1)
        AMXQ_ISSUE(1, 5, 7);
    if (total > 2)
        AMXQ_ISSUE(2, 4, 6);
    issued = total < 3 ? total : 3;
    int32_t(*pend)[16] = NULL;
    for (long i = 0; i < total; i += 4) {
        /* Past the call's last row too: a task's last groups then find
         * their rows in L2 like the others (and the rows after a task are
         * most often the next task's).  A prefetch never faults, so the
         * address is formed as an integer, not as a pointer past the matrix. */
        if (pf)
            _Pragma("GCC unroll 16") for (int r = 0; r < 16; r++) {
                const uintptr_t p = (uintptr_t)srow + (AMX_PF_ROWS + (size_t)r) * row_bytes +
                                    (size_t)sb * sizeof(sl_block_q8_0);
                _mm_prefetch((const char *)p, _MM_HINT_T1);
                _mm_prefetch((const char *)(p + 2 * sizeof(sl_block_q8_0)), _MM_HINT_T1);
            }
        AMXQ_STEP(0, 3, 5, 7);
        if (i + 1 < total)
            AMXQ_STEP(1, 0, 4, 6);
        if (i + 2 < total)
            AMXQ_STEP(2, 1, 5, 7);
        if (i + 3 < total)
            AMXQ_STEP(3, 2, 4, 6);
    }
    AMXQ_FINISH(pend);
}

/* The prepared input: per 16-token tile, nb B tiles (tile row g = the 16
 * tokens' quants 4g..4g+3; tokens past the last repeat it: computed, never
 * stored) and then the nb blocks' 16 token scales. */
static size_t xprep_tile_bytes(int k) { return (size_t)(k / 32) * (512 + 64); }

static size_t xprep_bytes(int nt, int k)
{
    return nt < AMX_MIN_TOKENS ? 0 : (size_t)((nt + 15) / 16) * xprep_tile_bytes(k);
}

static void xprep(const void *x, size_t x_stride, int nt, int k, void *out)
{
    const int nb = k / 32;
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const int n = nt - t0 < 16 ? nt - t0 : 16;
        uint8_t *pk = (uint8_t *)out + (size_t)(t0 / 16) * xprep_tile_bytes(k);
        const uint8_t *xp[16];
        int32_t xi[16];
        for (int j = 0; j < 16; j++) {
            const int jj = j < n ? j : n - 1;
            xp[j] = (const uint8_t *)x + (size_t)(t0 + jj) * x_stride;
            xi[j] = (int32_t)((size_t)jj * x_stride);
        }
        const __m512i xidx = _mm512_loadu_si512(xi);
        for (int b = 0; b < nb; b++) {
            __m512i v[8];
            transpose16x8(xp, (size_t)b * sizeof(act_blk), v);
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++)
                _mm512_storeu_si512(pk + (size_t)b * 512 + 64 * i, v[i]);
            _mm512_storeu_ps((float *)(void *)(pk + (size_t)nb * 512 + (size_t)b * 64),
                            _mm512_i32gather_ps(xidx, xp[0] + (size_t)b * sizeof(act_blk) + offsetof(act_blk, dx), 1));
        }
    }
}

static void gemm_xp_amx_q8_0(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *xp, int nt, int k,
                             float *y, int ldy)
{
    const int nb = k / 32, ng = (r1 - r0) / 16, tail = (r1 - r0) % 16;
    for (int t0 = 0; t0 < nt; t0 += 16) {
        const int n = nt - t0 < 16 ? nt - t0 : 16;
        const uint8_t *pk = (const uint8_t *)xp + (size_t)(t0 / 16) * xprep_tile_bytes(k);
        float *yt = y + (size_t)t0 * ldy;
        if (ng)
            amx_q8_groups(w, row_bytes, r0, ng, 16, pk, nb, n, yt, ldy, t0 == 0);
        if (tail)
            amx_q8_groups(w, row_bytes, r1 - tail, 1, tail, pk, nb, n, yt, ldy, false);
    }
}

static void gemm_amx_q8_0(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,
                          int k, float *y, int ldy)
{
    const size_t bytes = xprep_bytes(nt, k);
    uint8_t *pk = bytes ? thread_scratch(SCRATCH_AMX, bytes) : NULL;
    if (!pk) { /* few tokens, or no memory for the buffer: the VNNI tile, same bits */
        gemm_q8_0(w, row_bytes, r0, r1, x, x_stride, nt, k, y, ldy);
        return;
    }
    xprep(x, x_stride, nt, k, pk);
    gemm_xp_amx_q8_0(w, row_bytes, r0, r1, pk, nt, k, y, ldy);
}

AMX_GEMM(q4_0, sl_block_q4_0, a->c8, 0)
AMX_GEMM(q4_1, sl_block_q4_1, 0, 1)

const sl_kernels sl_kernels_avx512 = {
    .isa = SL_ISA_AVX512,
    .name = "avx512",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1, gemm_q4_k, gemm_q6_k, gemm_iq4_nl,
             gemm_nf4, gemm_w8a8},
    .gemm_name = {"avx512 f32", "avx512 f16", "avx512 bf16", "avx512-vnni q8_0 x q8", "avx512-vnni q4_0 x q8",
                  "avx512-vnni q4_1 x q8", "avx512-vnni q4_K x q8", "avx512-vnni q6_K x q8",
                  "avx512-vnni iq4_nl x q8", "avx512 nf4 x f32", "avx512-vnni w8a8 x i8"},
    .act_bytes = act_bytes,
    .act_quant = act_quant,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
    .rmsnorm = sl_rmsnorm_avx2,
    .swiglu = sl_swiglu_avx512,
    .exp_shift = sl_exp_shift_avx512,
    .xprep_bytes = il_xprep_bytes,
    .xprep = il_prep,
    .gemm_xp = {[SL_W_Q8_0] = gemm_xp_q8_0, [SL_W_Q4_0] = gemm_xp_q4_0, [SL_W_Q4_1] = gemm_xp_q4_1,
                [SL_W_Q4_K] = gemm_xp_q4_k, [SL_W_Q6_K] = gemm_xp_q6_k, [SL_W_IQ4_NL] = gemm_xp_iq4_nl},
};

/* AVX-512 with AMX-INT8 for the int8 products of several tokens (the
 * dispatcher checks the CPU and asks Linux for the tile state first). */
const sl_kernels sl_kernels_amx = {
    .isa = SL_ISA_AMX,
    .name = "amx",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_amx_q8_0, gemm_amx_q4_0, gemm_amx_q4_1, gemm_q4_k, gemm_q6_k,
             gemm_iq4_nl, gemm_nf4, gemm_w8a8},
    .gemm_name = {"avx512 f32", "avx512 f16", "avx512 bf16", "amx q8_0 x q8 (vnni below 4 tokens)",
                  "amx q4_0 x q8 (vnni below 32 tokens)", "amx q4_1 x q8 (vnni below 32 tokens)",
                  "avx512-vnni q4_K x q8", "avx512-vnni q6_K x q8", "avx512-vnni iq4_nl x q8", "avx512 nf4 x f32",
                  "avx512-vnni w8a8 x i8"},
    .act_bytes = act_bytes,
    .act_quant = act_quant,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
    .rmsnorm = sl_rmsnorm_avx2,
    .swiglu = sl_swiglu_avx512,
    .exp_shift = sl_exp_shift_avx512,
    .xprep_bytes = xprep_bytes,
    .xprep = xprep,
    .gemm_xp = {[SL_W_Q8_0] = gemm_xp_amx_q8_0},
};
