/* grid.c - quantization grids per type (sl_grid.h). */
#include <math.h>
#include <string.h>

#include "sl_grid.h"
#include "sl_types.h"

static const float iq4nl_code[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

bool sl_grid_supported(uint32_t type) { return sl_grid_span(type) > 0; }

int sl_grid_span(uint32_t type)
{
    switch (type) {
    case SL_TYPE_Q8_0: case SL_TYPE_Q4_0: case SL_TYPE_Q4_1: case SL_TYPE_IQ4_NL: return SL_QK;
    case SL_TYPE_Q4_K: case SL_TYPE_Q6_K: case SL_TYPE_NF4: return SL_QKK;
    default: return 0;
    }
}

int sl_grid_sub(uint32_t type)
{
    switch (type) {
    case SL_TYPE_Q6_K: return 16;
    case SL_TYPE_NF4: return 64;
    case SL_TYPE_Q4_K: return 32;
    default: return sl_grid_span(type);
    }
}

static sl_status half(float f, uint16_t *h, float *back, sl_err *err)
{
    if (!isfinite(f) || fabsf(f) > 65504.0f)
        return sl_err_set(err, SL_ERANGE, "a block scale of %g does not fit a half float", (double)f);
    *h = sl_fp32_to_fp16(f);
    *back = sl_fp16_to_fp32(*h);
    return SL_OK;
}

static int nearest(float f) { return (int)(f < 0 ? f - 0.5f : f + 0.5f); }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static double weighted_error(const sl_grid *g, const float *v, const float *h, int n)
{
    double e = 0.0;
    for (int j = 0; j < n; j++) {
        const double d = v[j] - sl_grid_value(g, sl_grid_quant(g, v[j]));
        e += h[j] * d * d;
    }
    return e;
}

/* A sub-block's grid before its parameters are rounded to what is stored:
 * scale shrink f of the range-based choice (f = 1 is RTN). */
static void float_grid(uint32_t type, const float *v, int n, float f, sl_grid *g)
{
    float amax = 0.0f, max = 0.0f, mn = v[0], mx = v[0];
    for (int j = 0; j < n; j++) {
        if (amax < fabsf(v[j]))
            amax = fabsf(v[j]), max = v[j];
        mn = fminf(mn, v[j]);
        mx = fmaxf(mx, v[j]);
    }
    memset(g, 0, sizeof *g);
    switch (type) {
    case SL_TYPE_Q8_0: g->lo = -128, g->hi = 127, g->d = f * amax / 127.0f; break;
    case SL_TYPE_Q4_0: g->hi = 15, g->zero = 8, g->d = f * max / -8.0f; break; /* the signed extreme maps to -8 */
    case SL_TYPE_Q4_1: { /* shrink the range about its middle */
        const float d = (mx - mn) / 15.0f;
        g->hi = 15, g->d = d * f, g->m = f == 1.0f ? mn : (mn + d * 7.5f) - g->d * 7.5f;
        break;
    }
    case SL_TYPE_Q4_K: { /* offsets are never positive: the range always holds 0 */
        const float lo = fminf(mn, 0.0f), d = (mx - lo) / 15.0f;
        g->hi = 15, g->d = d * f, g->m = f == 1.0f ? lo : fminf((lo + d * 7.5f) - g->d * 7.5f, 0.0f);
        break;
    }
    case SL_TYPE_Q6_K: g->hi = 63, g->zero = 32, g->d = f * max / -32.0f; break;
    case SL_TYPE_IQ4_NL: g->hi = 15, g->code = iq4nl_code, g->d = f * max / -127.0f; break;
    case SL_TYPE_NF4: g->hi = 15, g->code = sl_nf4_values, g->d = f * amax; break;
    }
}

/* A one-block type's grid as stored: its scale (and Q4_1's offset) in halves. */
static sl_status round_block(uint32_t type, sl_grid *g, sl_err *err)
{
    sl_status st = type == SL_TYPE_Q4_1 ? half(g->m, &g->m16, &g->m, err) : SL_OK;
    return st ? st : half(g->d, &g->d16, &g->d, err);
}

/* RTN's grid (h NULL) or the best of the shrunk ones under h; with
 * `stored`, candidates are judged as the block will store them. */
static sl_status search_grid(uint32_t type, const float *v, const float *h, int n, bool stored, sl_grid *g,
                             sl_err *err)
{
    float_grid(type, v, n, 1.0f, g);
    sl_status st = stored ? round_block(type, g, err) : SL_OK;
    if (!h || st)
        return st;
    double best = weighted_error(g, v, h, n);
    for (int i = 1; i <= 8 && !st; i++) {
        sl_grid c;
        float_grid(type, v, n, 1.0f - 0.05f * (float)i, &c);
        st = stored ? round_block(type, &c, err) : SL_OK;
        const double e = weighted_error(&c, v, h, n);
        if (!st && e < best)
            best = e, *g = c;
    }
    return st;
}

static sl_status check_finite(const float *v, int n, sl_err *err)
{
    for (int j = 0; j < n; j++)
        if (!isfinite(v[j]))
            return sl_err_set(err, SL_ERANGE, "a weight is not finite");
    return SL_OK;
}

/* Q4_K: the sub-blocks' scales and offsets as 6-bit multiples of the
 * super-block's two half floats. */
static sl_status super_q4_k(sl_grid *g, sl_err *err)
{
    float smax = 0.0f, mmax = 0.0f, D = 0.0f, M = 0.0f;
    for (int j = 0; j < 8; j++) {
        smax = fmaxf(smax, g[j].d);
        mmax = fmaxf(mmax, 0.0f - g[j].m); /* +0, not -0, for no offset */
    }
    uint16_t d16 = 0, m16 = 0;
    sl_status st = half(smax / 63.0f, &d16, &D, err);
    if (!st)
        st = half(mmax / 63.0f, &m16, &M, err);
    for (int j = 0; j < 8 && !st; j++) {
        const int sc = D > 0 ? clampi(nearest(g[j].d / D), 0, 63) : 0;
        const int mn = M > 0 ? clampi(nearest(-g[j].m / M), 0, 63) : 0;
        g[j].sc = (int16_t)sc, g[j].mn = (int16_t)mn;
        g[j].d = D * (float)sc; /* as ggml's dequantizer computes them */
        g[j].m = -(M * (float)mn);
        g[j].d16 = d16, g[j].m16 = m16;
    }
    return st;
}

/* Q6_K: the sub-blocks' scales as int8 multiples of one half float; the
 * largest maps to -128. */
static sl_status super_q6_k(sl_grid *g, sl_err *err)
{
    float amax = 0.0f, max = 0.0f, D = 0.0f;
    for (int j = 0; j < 16; j++)
        if (fabsf(g[j].d) > amax)
            amax = fabsf(g[j].d), max = g[j].d;
    uint16_t d16 = 0;
    sl_status st = half(max / -128.0f, &d16, &D, err);
    for (int j = 0; j < 16 && !st; j++) {
        const int sc = D != 0.0f ? clampi(nearest(g[j].d / D), -128, 127) : 0;
        g[j].sc = (int16_t)sc;
        g[j].d = D * (float)sc;
        g[j].d16 = d16;
    }
    return st;
}

/* NF4: each block's absmax as an 8-bit code of the half float D (largest
 * = 255); under h, the codes next to it are tried too. */
static sl_status super_nf4(sl_grid *g, const float *v, const float *h, sl_err *err)
{
    float amax = 0.0f, D = 0.0f;
    for (int j = 0; j < 4; j++)
        amax = fmaxf(amax, g[j].d);
    uint16_t d16 = 0;
    sl_status st = half(amax / 255.0f, &d16, &D, err);
    for (int j = 0; j < 4 && !st; j++) {
        const int c0 = D > 0 ? clampi(nearest(g[j].d / D), g[j].d > 0 ? 1 : 0, 255) : 0;
        int best_c = c0;
        double best = INFINITY;
        for (int c = h ? c0 - 2 : c0; c <= (h ? c0 + 2 : c0); c++) {
            if (c < 0 || c > 255)
                continue;
            sl_grid t = g[j];
            t.d = D * (float)c;
            const double e = h ? weighted_error(&t, v + 64 * j, h + 64 * j, 64) : 0.0;
            if (e < best)
                best = e, best_c = c;
        }
        g[j].sc = (int16_t)best_c;
        g[j].d = D * (float)best_c;
        g[j].d16 = d16;
    }
    return st;
}

sl_status sl_grid_make(uint32_t type, const float *v, const float *h, sl_grid *g, sl_err *err)
{
    const int span = sl_grid_span(type), sub = sl_grid_sub(type);
    if (!span)
        return sl_err_set(err, SL_EUNSUPPORTED, "type %u has no quantization grid", type);
    sl_status st = check_finite(v, span, err);
    if (st)
        return st;
    const bool super = span != sub;
    for (int s = 0; s < span / sub && !st; s++)
        st = search_grid(type, v + s * sub, h ? h + s * sub : NULL, sub, !super, &g[s], err);
    if (st || !super)
        return st;
    return type == SL_TYPE_Q4_K ? super_q4_k(g, err) : type == SL_TYPE_Q6_K ? super_q6_k(g, err) : super_nf4(g, v, h, err);
}

/* Two elements a byte, as ggml packs a block of 2n: j low, j + n high. */
static void nibbles(const int8_t *q, int n, uint8_t *qs)
{
    for (int j = 0; j < n; j++)
        qs[j] = (uint8_t)((q[j] & 15) | ((q[j + n] & 15) << 4));
}

void sl_grid_pack(uint32_t type, const sl_grid *g, const int8_t *q, void *out)
{
    switch (type) {
    case SL_TYPE_Q8_0: {
        sl_block_q8_0 *b = out;
        b->d = g->d16;
        memcpy(b->qs, q, SL_QK);
        return;
    }
    case SL_TYPE_Q4_0:
    case SL_TYPE_IQ4_NL: { /* the same bytes: a half and 16 nibble pairs */
        sl_block_q4_0 *b = out;
        b->d = g->d16;
        nibbles(q, SL_QK / 2, b->qs);
        return;
    }
    case SL_TYPE_Q4_1: {
        sl_block_q4_1 *b = out;
        b->d = g->d16;
        b->m = g->m16;
        nibbles(q, SL_QK / 2, b->qs);
        return;
    }
    case SL_TYPE_Q4_K: {
        sl_block_q4_k *b = out;
        b->d = g[0].d16;
        b->dmin = g[0].m16;
        memset(b->scales, 0, sizeof b->scales);
        for (int j = 0; j < 8; j++) { /* ggml's 6-bit packing: get_scale_min_k4 reversed */
            const int sc = g[j].sc, mn = g[j].mn;
            if (j < 4) {
                b->scales[j] |= (uint8_t)sc;
                b->scales[j + 4] |= (uint8_t)mn;
            } else {
                b->scales[j + 4] = (uint8_t)((sc & 0xF) | ((mn & 0xF) << 4));
                b->scales[j - 4] |= (uint8_t)((sc >> 4) << 6);
                b->scales[j] |= (uint8_t)((mn >> 4) << 6);
            }
        }
        for (int p = 0; p < 4; p++) /* sub-blocks 2p and 2p + 1 share 32 bytes */
            nibbles(q + 64 * p, 32, b->qs + 32 * p);
        return;
    }
    case SL_TYPE_Q6_K: {
        sl_block_q6_k *b = out;
        b->d = g[0].d16;
        for (int j = 0; j < 16; j++)
            b->scales[j] = (int8_t)g[j].sc;
        for (int h = 0; h < 2; h++) { /* each half of 128: four runs of 32 */
            const int8_t *L = q + 128 * h;
            uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((L[l] & 0xF) | ((L[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((L[l + 32] & 0xF) | ((L[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((L[l] >> 4) | ((L[l + 32] >> 4) << 2) | ((L[l + 64] >> 4) << 4) |
                                  ((L[l + 96] >> 4) << 6));
            }
        }
        return;
    }
    case SL_TYPE_NF4: {
        sl_block_nf4 *b = out;
        b->d = g[0].d16;
        for (int j = 0; j < 4; j++) {
            b->code[j] = (uint8_t)g[j].sc;
            nibbles(q + 64 * j, 32, b->qs + 32 * j);
        }
        return;
    }
    }
}
