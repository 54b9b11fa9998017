/* kernels_gemm.h - the row x token loop the SIMD kernel files share.
 * TILE(row, xs, n, k, out) computes one weight row against n <= MT tokens;
 * n is a constant at each call so the tile's loops unroll.
 *
 * Cache blocking: rows are taken in blocks of about W_BLOCK bytes of
 * weights (L2) and tokens in blocks of about X_BLOCK bytes of activations
 * (L1), so
 * a weight block stays in L2 while every token block streams past it and a
 * row stays in L1 while it meets a token block.  Blocking only changes which
 * pairs are computed when, never how: a pair's value is the same. */
#ifndef SL_KERNELS_GEMM_H
#define SL_KERNELS_GEMM_H

#ifndef MT
#define MT 4                      /* tokens per micro-tile (AVX-512 uses 8: 32 registers) */
#endif
/* Per-token loops inside a tile: fully unrolled, so accumulators live in
 * registers (GCC -O2 would keep them on the stack). */
#define UNROLL_MT _Pragma("GCC unroll 8")
#define W_BLOCK (512u << 10)      /* bytes of weights per block: L2 */
#define X_BLOCK (16u << 10)       /* bytes of activations per block: L1 */

_Static_assert(MT <= 8, "the tile switch goes up to 8");

static inline int gemm_block(size_t budget, size_t unit_bytes, int lo)
{
    size_t n = budget / (unit_bytes ? unit_bytes : 1);
    return n < (size_t)lo ? lo : n > (1u << 20) ? (1 << 20) : (int)n;
}

#define GEMM(NAME, TILE, XT)                                                                                           \
    static void NAME(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,      \
                     int k, float *y, int ldy)                                                                         \
    {                                                                                                                  \
        const int rb = gemm_block(W_BLOCK, row_bytes, 4), tb = gemm_block(X_BLOCK, x_stride, MT) / MT * MT;            \
        for (int R = r0; R < r1; R += rb) {                                                                            \
            const int Re = R + rb < r1 ? R + rb : r1;                                                                  \
            for (int T = 0; T < nt; T += tb) {                                                                         \
                const int Te = T + tb < nt ? T + tb : nt;                                                              \
                for (int r = R; r < Re; r++) {                                                                         \
                    const uint8_t *row = w + (size_t)r * row_bytes;                                                    \
                    for (int t = T; t < Te; t += MT) {                                                                 \
                        const XT *xs[MT];                                                                              \
                        float out[MT];                                                                                 \
                        const int n = Te - t < MT ? Te - t : MT;                                                       \
                        for (int j = 0; j < n; j++)                                                                    \
                            xs[j] = (const XT *)(const void *)((const uint8_t *)x + (size_t)(t + j) * x_stride);       \
                        switch (n) {                                                                                   \
                        case 8: TILE(row, xs, 8 <= MT ? 8 : MT, k, out); break;                                        \
                        case 7: TILE(row, xs, 7 <= MT ? 7 : MT, k, out); break;                                        \
                        case 6: TILE(row, xs, 6 <= MT ? 6 : MT, k, out); break;                                        \
                        case 5: TILE(row, xs, 5 <= MT ? 5 : MT, k, out); break;                                        \
                        case 4: TILE(row, xs, 4, k, out); break;                                                       \
                        case 3: TILE(row, xs, 3, k, out); break;                                                       \
                        case 2: TILE(row, xs, 2, k, out); break;                                                       \
                        default: TILE(row, xs, 1, k, out); break;                                                      \
                        }                                                                                              \
                        for (int j = 0; j < n; j++)                                                                    \
                            y[(size_t)(t + j) * ldy + r] = out[j];                                                     \
                    }                                                                                                  \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

/* GEMM with a four-row tile for calls of one or two tokens (decoding):
 * TILE4(rows, xs, n, k, out[4][n]) must give each (row, token) the same
 * bits TILE gives it, which the AVX-512 file ensures by feeding the same
 * accumulators in the same order and reducing them with the same tree. */
#define GEMM4(NAME, TILE, TILE4, XT)                                                                                   \
    GEMM(NAME##_rows, TILE, XT)                                                                                        \
    static void NAME(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,      \
                     int k, float *y, int ldy)                                                                         \
    {                                                                                                                  \
        if (nt > 2) {                                                                                                  \
            NAME##_rows(w, row_bytes, r0, r1, x, x_stride, nt, k, y, ldy);                                             \
            return;                                                                                                    \
        }                                                                                                              \
        const XT *xs[2] = {(const XT *)x, (const XT *)(const void *)((const uint8_t *)x + x_stride)};                  \
        int r = r0;                                                                                                    \
        for (; r + 4 <= r1; r += 4) {                                                                                  \
            float out[4][2];                                                                                           \
            const uint8_t *rows[4] = {w + (size_t)r * row_bytes, w + (size_t)(r + 1) * row_bytes,                      \
                                      w + (size_t)(r + 2) * row_bytes, w + (size_t)(r + 3) * row_bytes};               \
            if (nt == 2)                                                                                               \
                TILE4(rows, xs, 2, k, out);                                                                            \
            else                                                                                                       \
                TILE4(rows, xs, 1, k, out);                                                                            \
            for (int i = 0; i < 4; i++)                                                                                \
                for (int j = 0; j < nt; j++)                                                                           \
                    y[(size_t)j * ldy + r + i] = out[i][j];                                                            \
        }                                                                                                              \
        if (r < r1)                                                                                                    \
            NAME##_rows(w, row_bytes, r, r1, x, x_stride, nt, k, y, ldy);                                              \
    }

#endif
