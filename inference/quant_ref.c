/* quant_ref.c - scalar reference quantize / dequantize for the types sluice
 * computes with.  Rounding follows ggml's reference quantizers exactly (scale
 * from the float, inverse scale from the unrounded float, stored as half), so
 * a row quantized here has the bytes llama-quantize gives it. */
#include <math.h>
#include <string.h>

#include "sl_grid.h"
#include "sl_types.h"

static sl_status check_finite(const float *x, uint64_t n, sl_err *err)
{
    for (uint64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return sl_err_set(err, SL_ERANGE, "non-finite value (%g) at element %llu", (double)x[i],
                              (unsigned long long)i);
    return SL_OK;
}

static sl_status store_scale(uint16_t *dst, float d, uint64_t block, sl_err *err)
{
    uint16_t h = sl_fp32_to_fp16(d);
    if ((h & 0x7c00u) == 0x7c00u)
        return sl_err_set(err, SL_ERANGE, "block %llu: scale %g does not fit a half float",
                          (unsigned long long)block, (double)d);
    *dst = h;
    return SL_OK;
}

static sl_status quantize_q8_0(const float *x, sl_block_q8_0 *y, uint64_t nb, sl_err *err)
{
    for (uint64_t i = 0; i < nb; i++, x += SL_QK) {
        float amax = 0.0f;
        for (int j = 0; j < SL_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        sl_status st = store_scale(&y[i].d, d, i, err);
        if (st)
            return st;
        for (int j = 0; j < SL_QK; j++)
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
    return SL_OK;
}

static sl_status quantize_q4_0(const float *x, sl_block_q4_0 *y, uint64_t nb, sl_err *err)
{
    for (uint64_t i = 0; i < nb; i++, x += SL_QK) {
        float amax = 0.0f, max = 0.0f; /* max keeps the sign of the largest magnitude */
        for (int j = 0; j < SL_QK; j++)
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        sl_status st = store_scale(&y[i].d, d, i, err);
        if (st)
            return st;
        for (int j = 0; j < SL_QK / 2; j++) {
            int lo = (int)(int8_t)(x[j] * id + 8.5f);
            int hi = (int)(int8_t)(x[j + SL_QK / 2] * id + 8.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return SL_OK;
}

static sl_status quantize_q4_1(const float *x, sl_block_q4_1 *y, uint64_t nb, sl_err *err)
{
    for (uint64_t i = 0; i < nb; i++, x += SL_QK) {
        float min = x[0], max = x[0];
        for (int j = 1; j < SL_QK; j++) {
            min = fminf(min, x[j]);
            max = fmaxf(max, x[j]);
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        sl_status st = store_scale(&y[i].d, d, i, err);
        if (!st)
            st = store_scale(&y[i].m, min, i, err);
        if (st)
            return st;
        for (int j = 0; j < SL_QK / 2; j++) {
            int lo = (int)(int8_t)((x[j] - min) * id + 0.5f);
            int hi = (int)(int8_t)((x[j + SL_QK / 2] - min) * id + 0.5f);
            lo = lo < 15 ? lo : 15;
            hi = hi < 15 ? hi : 15;
            y[i].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
    return SL_OK;
}

/* The types whose scales are sluice's choice: a span's grids, each value
 * rounded to its nearest point, packed. */
static sl_status quantize_grid(uint32_t type, const float *x, uint8_t *y, uint64_t n, uint32_t block_bytes,
                               sl_err *err)
{
    const int span = sl_grid_span(type);
    const uint64_t per = (uint64_t)span / sl_type_get(type)->block_elems; /* blocks per span */
    for (uint64_t s = 0; s < n / (uint64_t)span; s++, x += span) {
        sl_grid g[16];
        int8_t q[SL_QKK];
        const int sub = sl_grid_sub(type);
        sl_status st = sl_grid_make(type, x, NULL, g, err);
        if (st)
            return sl_err_prefix(err, st, "block %llu", (unsigned long long)(s * per));
        for (int j = 0; j < span; j++)
            q[j] = (int8_t)sl_grid_quant(&g[j / sub], x[j]);
        sl_grid_pack(type, g, q, y + s * per * block_bytes);
    }
    return SL_OK;
}

sl_status sl_w8a8_quantize_row(const float *src, int8_t *dst, uint64_t n, float *scale, sl_err *err)
{
    sl_status st = check_finite(src, n, err);
    if (st)
        return st;
    float amax = 0.0f;
    for (uint64_t j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(src[j]));
    const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    for (uint64_t j = 0; j < n; j++) /* x * (1/d) can round past 127 by an ulp: clamp */
        dst[j] = (int8_t)lroundf(fmaxf(fminf(src[j] * id, 127.0f), -127.0f));
    *scale = d;
    return SL_OK;
}

/* A row both directions accept: a type sluice converts, whole blocks. */
static sl_status check_row(uint32_t type, uint64_t n, const char *verb, const sl_type_traits **t, sl_err *err)
{
    *t = sl_type_get(type);
    if (!*t || !(*t)->convertible)
        return sl_err_set(err, SL_EUNSUPPORTED, "cannot %s type %s", verb, *t ? (*t)->name : "(unknown)");
    if (n % (*t)->block_elems)
        return sl_err_set(err, SL_EFORMAT, "row of %llu elements is not a whole number of %s blocks",
                          (unsigned long long)n, (*t)->name);
    return SL_OK;
}

sl_status sl_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n, sl_err *err)
{
    const sl_type_traits *t;
    sl_status st = check_row(type, n, "quantize to", &t, err);
    if (st)
        return st;
    uint64_t nb = n / t->block_elems;
    switch (type) {
    case SL_TYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return SL_OK;
    case SL_TYPE_F16: {
        uint16_t *h = dst;
        for (uint64_t i = 0; i < n; i++)
            h[i] = sl_fp32_to_fp16(src[i]);
        return SL_OK;
    }
    case SL_TYPE_BF16: {
        uint16_t *h = dst;
        for (uint64_t i = 0; i < n; i++)
            h[i] = sl_fp32_to_bf16(src[i]);
        return SL_OK;
    }
    default:
        break;
    }
    st = check_finite(src, n, err);
    if (st)
        return st;
    switch (type) {
    case SL_TYPE_Q8_0: return quantize_q8_0(src, dst, nb, err);
    case SL_TYPE_Q4_0: return quantize_q4_0(src, dst, nb, err);
    case SL_TYPE_Q4_1: return quantize_q4_1(src, dst, nb, err);
    case SL_TYPE_Q4_K:
    case SL_TYPE_Q6_K:
    case SL_TYPE_IQ4_NL:
    case SL_TYPE_NF4: return quantize_grid(type, src, dst, n, t->block_bytes, err);
    }
    return sl_err_set(err, SL_EUNSUPPORTED, "no quantizer for %s", t->name);
}

sl_status sl_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n, sl_err *err)
{
    const sl_type_traits *t;
    sl_status st = check_row(type, n, "dequantize", &t, err);
    if (st)
        return st;
    uint64_t nb = n / t->block_elems;
    switch (type) {
    case SL_TYPE_F32:
        memcpy(dst, src, n * sizeof(float));
        return SL_OK;
    case SL_TYPE_F16: {
        const uint16_t *h = src;
        for (uint64_t i = 0; i < n; i++)
            dst[i] = sl_fp16_to_fp32(h[i]);
        return SL_OK;
    }
    case SL_TYPE_BF16: {
        const uint16_t *h = src;
        for (uint64_t i = 0; i < n; i++)
            dst[i] = sl_bf16_to_fp32(h[i]);
        return SL_OK;
    }
    case SL_TYPE_Q8_0: {
        const sl_block_q8_0 *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d);
            for (int j = 0; j < SL_QK; j++)
                dst[i * SL_QK + j] = (float)b[i].qs[j] * d;
        }
        return SL_OK;
    }
    case SL_TYPE_Q4_0: {
        const sl_block_q4_0 *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d);
            for (int j = 0; j < SL_QK / 2; j++) {
                dst[i * SL_QK + j] = (float)((b[i].qs[j] & 0x0f) - 8) * d;
                dst[i * SL_QK + j + SL_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
            }
        }
        return SL_OK;
    }
    case SL_TYPE_Q4_1: {
        const sl_block_q4_1 *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d), m = sl_fp16_to_fp32(b[i].m);
            for (int j = 0; j < SL_QK / 2; j++) {
                dst[i * SL_QK + j] = (float)(b[i].qs[j] & 0x0f) * d + m;
                dst[i * SL_QK + j + SL_QK / 2] = (float)(b[i].qs[j] >> 4) * d + m;
            }
        }
        return SL_OK;
    }
    case SL_TYPE_IQ4_NL: {
        const sl_block_iq4_nl *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d);
            for (int j = 0; j < SL_QK / 2; j++) {
                dst[i * SL_QK + j] = d * (float)sl_iq4nl_values[b[i].qs[j] & 0x0f];
                dst[i * SL_QK + j + SL_QK / 2] = d * (float)sl_iq4nl_values[b[i].qs[j] >> 4];
            }
        }
        return SL_OK;
    }
    case SL_TYPE_Q4_K: { /* ggml's dequantize_row_q4_K, step for step */
        const sl_block_q4_k *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d), min = sl_fp16_to_fp32(b[i].dmin);
            float *y = dst + i * SL_QKK;
            for (int p = 0; p < 4; p++) {
                int sc, m;
                sl_q4k_scale_min(b[i].scales, 2 * p, &sc, &m);
                const float d1 = d * (float)sc, m1 = min * (float)m;
                sl_q4k_scale_min(b[i].scales, 2 * p + 1, &sc, &m);
                const float d2 = d * (float)sc, m2 = min * (float)m;
                const uint8_t *q = b[i].qs + 32 * p;
                for (int l = 0; l < 32; l++) {
                    y[64 * p + l] = d1 * (float)(q[l] & 0xF) - m1;
                    y[64 * p + 32 + l] = d2 * (float)(q[l] >> 4) - m2;
                }
            }
        }
        return SL_OK;
    }
    case SL_TYPE_Q6_K: { /* ggml's dequantize_row_q6_K */
        const sl_block_q6_k *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float d = sl_fp16_to_fp32(b[i].d);
            for (int h = 0; h < 2; h++) {
                const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
                const int8_t *sc = b[i].scales + 8 * h;
                float *y = dst + i * SL_QKK + 128 * h;
                for (int l = 0; l < 32; l++) {
                    const int is = l / 16;
                    const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * (float)sc[is] * (float)q1;
                    y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    y[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
            }
        }
        return SL_OK;
    }
    case SL_TYPE_NF4: {
        const sl_block_nf4 *b = src;
        for (uint64_t i = 0; i < nb; i++) {
            const float D = sl_fp16_to_fp32(b[i].d);
            for (int j = 0; j < 4; j++) {
                const float s = D * (float)b[i].code[j];
                float *y = dst + i * SL_QKK + 64 * j;
                for (int l = 0; l < 32; l++) {
                    y[l] = s * sl_nf4_values[b[i].qs[32 * j + l] & 0xF];
                    y[l + 32] = s * sl_nf4_values[b[i].qs[32 * j + l] >> 4];
                }
            }
        }
        return SL_OK;
    }
    }
    return sl_err_set(err, SL_EUNSUPPORTED, "no dequantizer for %s", t->name);
}
