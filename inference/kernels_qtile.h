/* kernels_qtile.h - the int8 micro-tiles (one weight row of Q8_0, Q4_0 or
 * Q4_1 against up to MT quantized tokens), shared by the AVX2 and AVX-512
 * files.  The includer defines INLINE, hsum8 and the two block products:
 *   dot_i8(a, b): sum of 32 signed x signed byte products, as 8 float lanes
 *   dot_u4(u, b): the same for unsigned nibbles (0..15) x signed bytes
 * (AVX2 with maddubs, AVX-512 with VNNI's dpbusd). */
#ifndef SL_KERNELS_QTILE_H
#define SL_KERNELS_QTILE_H

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

#endif
