/* sl_grid.h - the quantization grid of one 32-value block, per type.
 *
 * GPTQ and AWQ decide values column by column against a block's grid and
 * then pack the chosen integers: the grid's parameters are already rounded
 * to the half floats the block stores, so what the methods see is exactly
 * what the image will dequantize to. */
#ifndef SL_GRID_H
#define SL_GRID_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"

typedef struct sl_grid {
    float d, m;        /* value = (q - zero) * d + m */
    int lo, hi, zero;  /* q's range, and the q that is value m */
    uint16_t d16, m16; /* as stored */
} sl_grid;

/* Whether GPTQ/AWQ can target the type (q8_0, q4_0, q4_1). */
bool sl_grid_supported(uint32_t type);
/* The RTN grid of 32 values (ggml's choice of scale and offset). */
sl_status sl_grid_make(uint32_t type, const float *v, sl_grid *g, sl_err *err);
static inline int sl_grid_quant(const sl_grid *g, float x)
{
    if (g->d == 0.0f)
        return g->zero;
    float f = (x - g->m) / g->d + (float)g->zero;
    int q = (int)(f < 0 ? f - 0.5f : f + 0.5f);
    return q < g->lo ? g->lo : q > g->hi ? g->hi : q;
}
static inline float sl_grid_value(const sl_grid *g, int q) { return (float)(q - g->zero) * g->d + g->m; }
/* The grid of 32 values whose scale (shrunk from RTN's by up to 40%,
 * clipping the extremes) minimizes sum_j h_j (v_j - value(q_j))^2: h is the
 * mean squared input of each column, so the error is weighted as the
 * layer's output feels it (AWQ's clipping search, per block). */
sl_status sl_grid_make_weighted(uint32_t type, const float *v, const float *h, sl_grid *g, sl_err *err);
/* One block's bytes from its grid and 32 integers. */
void sl_grid_pack(uint32_t type, const sl_grid *g, const int8_t *q, void *block);

#endif
