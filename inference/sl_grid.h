/* sl_grid.h - quantization grids: for every weight type, which values a
 * group of weights can take, and how the chosen integers are packed.
 *
 * A grid serves one sub-block (the elements sharing a scale: 32, or 16 for
 * Q6_K, 64 for NF4).  Grids are made a span at a time: a block for the
 * 32-wide types, a super-block of 256 for Q4_K, Q6_K and NF4, whose
 * sub-block scales are themselves quantized against the super-block's half
 * floats.  The grid's parameters are already rounded to what the block
 * stores, so what GPTQ and AWQ see is exactly what the image will
 * dequantize to; sl_quantize_row (RTN) is make + quant + pack. */
#ifndef SL_GRID_H
#define SL_GRID_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"

typedef struct sl_grid {
    float d, m;        /* value = (q - zero) * d + m, or d * code[q] */
    int lo, hi, zero;  /* q's range, and the q that is value m */
    const float *code; /* a non-linear code (iq4_nl, nf4), else NULL */
    uint16_t d16, m16; /* as stored: the block's, or the super-block's d and dmin */
    int16_t sc, mn;    /* K types: the sub-block's quantized scale and min; nf4: its scale code */
} sl_grid;

/* Whether the type has grids (every quantized type sluice writes). */
bool sl_grid_supported(uint32_t type);
/* Elements per span (grids made together) and per sub-block (one grid). */
int sl_grid_span(uint32_t type);
int sl_grid_sub(uint32_t type);
/* The span/sub grids of span values v.  h NULL: round to nearest from the
 * sub-block's range (ggml's choice of scale for the 32-wide types).  h
 * given (a weight per column, the mean squared input): each sub-block's
 * scale is searched, shrunk by up to 40% to clip the extremes, for the
 * least sum_j h_j (v_j - value(q_j))^2 (AWQ's clipping search). */
sl_status sl_grid_make(uint32_t type, const float *v, const float *h, sl_grid *g, sl_err *err);

static inline int sl_grid_quant(const sl_grid *g, float x)
{
    if (g->d == 0.0f)
        return g->zero;
    if (g->code) { /* nearest code: the codes ascend, midpoints decide */
        const float t = x / g->d;
        int lo = 0, hi = 15;
        while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (t > 0.5f * (g->code[mid] + g->code[mid + 1]))
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
    float f = (x - g->m) / g->d + (float)g->zero;
    int q = (int)(f < 0 ? f - 0.5f : f + 0.5f);
    return q < g->lo ? g->lo : q > g->hi ? g->hi : q;
}
static inline float sl_grid_value(const sl_grid *g, int q)
{
    return g->code ? g->d * g->code[q] : (float)(q - g->zero) * g->d + g->m;
}
/* One span's bytes (a block, or a super-block) from its grids and integers. */
void sl_grid_pack(uint32_t type, const sl_grid *g, const int8_t *q, void *out);

#endif
