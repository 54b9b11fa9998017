/* quant_ref.c - scalar reference quantize / dequantize for the types sluice
 * computes with.  Rounding follows ggml's reference quantizers exactly (scale
 * from the float, inverse scale from the unrounded float, stored as half), so
 * a row quantized here has the bytes llama-quantize gives it. */
#include <math.h>
#include <string.h>

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
    }
    return sl_err_set(err, SL_EUNSUPPORTED, "no dequantizer for %s", t->name);
}
