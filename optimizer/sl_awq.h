/* sl_awq.h - AWQ (Lin et al., 2023): activation-aware scaling.
 *
 * Input channels that carry large activations matter most; scaling such a
 * channel's weights up by s (and its input down by 1/s, folded into the
 * operation that produces the input, so the graph is unchanged) gives them
 * finer steps on the quantization grid.  s = mean|x|^alpha, normalized;
 * alpha is searched on a grid of 20 points in [0, 1) for the smallest output
 * error on calibration inputs, summed over the matrices sharing the input. */
#ifndef SL_AWQ_H
#define SL_AWQ_H

#include <stdint.h>

#include "sl_calib.h"
#include "sl_error.h"

/* W[i]: rows[i] x k floats (not modified).  s_out: k scales (all 1 when
 * alpha 0 wins); *alpha_out and *err_out (relative output error at the
 * chosen alpha, and at alpha 0 = plain RTN) may be NULL. */
sl_status sl_awq_search(uint32_t type, const float *const *W, const int *rows, int n_mats, int k,
                        const sl_calib_slot *slot, float *s_out, float *alpha_out, double *err_out, double *err_rtn,
                        sl_err *err);

/* RTN of rows x k floats to type and back to floats (the grids of
 * sl_grid.h), into out. */
sl_status sl_rtn_roundtrip(uint32_t type, const float *W, int rows, int k, float *out, sl_err *err);

#endif
