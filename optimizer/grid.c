/* grid.c - per-block quantization grids (sl_grid.h). */
#include <math.h>
#include <string.h>

#include "sl_grid.h"
#include "sl_types.h"

bool sl_grid_supported(uint32_t type)
{
    return type == SL_TYPE_Q8_0 || type == SL_TYPE_Q4_0 || type == SL_TYPE_Q4_1;
}

static sl_status half(float f, uint16_t *h, float *back, sl_err *err)
{
    if (!isfinite(f) || fabsf(f) > 65504.0f)
        return sl_err_set(err, SL_ERANGE, "a block scale of %g does not fit a half float", (double)f);
    *h = sl_fp32_to_fp16(f);
    *back = sl_fp16_to_fp32(*h);
    return SL_OK;
}

sl_status sl_grid_make(uint32_t type, const float *v, sl_grid *g, sl_err *err)
{
    memset(g, 0, sizeof *g);
    float amax = 0.0f, max = 0.0f, mn = v[0], mx = v[0];
    for (int j = 0; j < SL_QK; j++) {
        if (!isfinite(v[j]))
            return sl_err_set(err, SL_ERANGE, "a weight is not finite");
        if (amax < fabsf(v[j]))
            amax = fabsf(v[j]), max = v[j];
        mn = fminf(mn, v[j]);
        mx = fmaxf(mx, v[j]);
    }
    switch (type) {
    case SL_TYPE_Q8_0:
        g->lo = -128, g->hi = 127, g->zero = 0;
        return half(amax / 127.0f, &g->d16, &g->d, err);
    case SL_TYPE_Q4_0: /* the signed extreme maps to -8 */
        g->lo = 0, g->hi = 15, g->zero = 8;
        return half(max / -8.0f, &g->d16, &g->d, err);
    case SL_TYPE_Q4_1: {
        g->lo = 0, g->hi = 15, g->zero = 0;
        sl_status st = half((mx - mn) / 15.0f, &g->d16, &g->d, err);
        return st ? st : half(mn, &g->m16, &g->m, err);
    }
    default:
        return sl_err_set(err, SL_EUNSUPPORTED, "type %u has no GPTQ/AWQ grid", type);
    }
}

static double weighted_error(const sl_grid *g, const float *v, const float *h)
{
    double e = 0.0;
    for (int j = 0; j < SL_QK; j++) {
        const double d = v[j] - sl_grid_value(g, sl_grid_quant(g, v[j]));
        e += h[j] * d * d;
    }
    return e;
}

sl_status sl_grid_make_weighted(uint32_t type, const float *v, const float *h, sl_grid *g, sl_err *err)
{
    sl_status st = sl_grid_make(type, v, g, err);
    if (st)
        return st;
    double best = weighted_error(g, v, h);
    const sl_grid rtn = *g;
    for (int i = 1; i <= 8; i++) {
        const float f = 1.0f - 0.05f * (float)i;
        sl_grid c = rtn;
        if (type == SL_TYPE_Q4_1) { /* shrink the range about its middle */
            const float mid = rtn.m + rtn.d * 7.5f;
            st = half(rtn.d * f, &c.d16, &c.d, err);
            st = st ? st : half(mid - c.d * 7.5f, &c.m16, &c.m, err);
        } else
            st = half(rtn.d * f, &c.d16, &c.d, err);
        if (st)
            return st;
        const double e = weighted_error(&c, v, h);
        if (e < best)
            best = e, *g = c;
    }
    return SL_OK;
}

void sl_grid_pack(uint32_t type, const sl_grid *g, const int8_t *q, void *block)
{
    if (type == SL_TYPE_Q8_0) {
        sl_block_q8_0 *b = block;
        b->d = g->d16;
        memcpy(b->qs, q, SL_QK);
        return;
    }
    uint8_t *qs;
    if (type == SL_TYPE_Q4_0) {
        sl_block_q4_0 *b = block;
        b->d = g->d16;
        qs = b->qs;
    } else {
        sl_block_q4_1 *b = block;
        b->d = g->d16;
        b->m = g->m16;
        qs = b->qs;
    }
    for (int j = 0; j < SL_QK / 2; j++) /* ggml: element j low nibble, j + 16 high */
        qs[j] = (uint8_t)((q[j] & 15) | ((q[j + SL_QK / 2] & 15) << 4));
}
