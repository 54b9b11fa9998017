/* kernels_gemm.h - the row x token loop the SIMD kernel files share.
 * TILE(row, xs, n, k, out) computes one weight row against n <= MT tokens;
 * n is a constant at each call so the tile's loops unroll. */
#ifndef SL_KERNELS_GEMM_H
#define SL_KERNELS_GEMM_H

#define MT 4 /* tokens per micro-tile */

/* The row x token loop shared by every type: a row stays in L1 while it
 * meets every token of the batch. */
#define GEMM(NAME, TILE, XT)                                                                                           \
    static void NAME(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,      \
                     int k, float *y, int ldy)                                                                         \
    {                                                                                                                  \
        for (int r = r0; r < r1; r++) {                                                                                \
            const uint8_t *row = w + (size_t)r * row_bytes;                                                            \
            for (int t = 0; t < nt; t += MT) {                                                                         \
                const XT *xs[MT];                                                                                      \
                float out[MT];                                                                                         \
                const int n = nt - t < MT ? nt - t : MT;                                                               \
                for (int j = 0; j < n; j++)                                                                            \
                    xs[j] = (const XT *)(const void *)((const uint8_t *)x + (size_t)(t + j) * x_stride);               \
                switch (n) {                                                                                           \
                case 4: TILE(row, xs, 4, k, out); break;                                                               \
                case 3: TILE(row, xs, 3, k, out); break;                                                               \
                case 2: TILE(row, xs, 2, k, out); break;                                                               \
                default: TILE(row, xs, 1, k, out); break;                                                              \
                }                                                                                                      \
                for (int j = 0; j < n; j++)                                                                            \
                    y[(size_t)(t + j) * ldy + r] = out[j];                                                             \
            }                                                                                                          \
        }                                                                                                              \
    }

#endif
