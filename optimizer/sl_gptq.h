/* sl_gptq.h - GPTQ (Frantar et al., 2022): quantizes a matrix column by
 * column, spreading each column's rounding error over the columns not yet
 * quantized through the inverse of the input Hessian H = X^T X, so the
 * layer's output on the calibration inputs moves as little as possible.
 *
 * Damped Hessian (dead inputs zeroed), Cholesky-based inverse (LAPACK),
 * lazy batched updates of 128 columns (BLAS), block-wise grids (each 32-
 * column block's scale chosen from the weights as they are when the block
 * starts, i.e. after the earlier blocks' corrections), optional act-order
 * (columns by decreasing H diagonal, grids then fixed from the original
 * weights). */
#ifndef SL_GPTQ_H
#define SL_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"

typedef struct sl_gptq_opts {
    float damp;     /* fraction of the mean diagonal added to it (0: 0.01) */
    bool act_order;
    int block;      /* lazy-update width (0: 128) */
} sl_gptq_opts;

/* W: rows x k floats, row-major (overwritten); H: k x k, symmetric
 * (overwritten).  out: rows x (k / 32) blocks of type (q8_0, q4_0, q4_1).
 * SL_ERANGE when H cannot be made positive definite. */
sl_status sl_gptq_quantize(uint32_t type, float *W, int rows, int k, float *H, const sl_gptq_opts *o, void *out,
                           sl_err *err);

/* ||(W_q - W) X^T||_F^2 / ||W X^T||_F^2 through H: the relative output
 * error of a quantized matrix on the calibration inputs (for reports and
 * tests). Wq: dequantized rows. */
double sl_output_error(const float *W, const float *Wq, int rows, int k, const float *H);
/* Its numerator and denominator, to sum over blocks of rows. */
void sl_output_error_parts(const float *W, const float *Wq, int rows, int k, const float *H, double *num, double *den);

#endif
