#include "sl_types.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

/* ggml's type table: id, name, block elements, block bytes.  Types sluice
 * cannot compute with are still listed so files using them can be checked
 * and described. */
static const sl_type_traits k_types[] = {
    {0, "f32", 1, 4, false, true},      {1, "f16", 1, 2, false, true},
    {2, "q4_0", 32, 18, true, true},    {3, "q4_1", 32, 20, true, true},
    {6, "q5_0", 32, 22, true, false},   {7, "q5_1", 32, 24, true, false},
    {8, "q8_0", 32, 34, true, true},    {9, "q8_1", 32, 36, true, false},
    {10, "q2_K", 256, 84, true, false}, {11, "q3_K", 256, 110, true, false},
    {12, "q4_K", 256, 144, true, true}, {13, "q5_K", 256, 176, true, false},
    {14, "q6_K", 256, 210, true, true}, {15, "q8_K", 256, 292, true, false},
    {16, "iq2_xxs", 256, 66, true, false}, {17, "iq2_xs", 256, 74, true, false},
    {18, "iq3_xxs", 256, 98, true, false}, {19, "iq1_s", 256, 50, true, false},
    {20, "iq4_nl", 32, 18, true, true}, {21, "iq3_s", 256, 110, true, false},
    {22, "iq2_s", 256, 82, true, false}, {23, "iq4_xs", 256, 136, true, false},
    {24, "i8", 1, 1, false, false},     {25, "i16", 1, 2, false, false},
    {26, "i32", 1, 4, false, false},    {27, "i64", 1, 8, false, false},
    {28, "f64", 1, 8, false, false},    {29, "iq1_m", 256, 56, true, false},
    {30, "bf16", 1, 2, false, true},    {34, "tq1_0", 256, 54, true, false},
    {35, "tq2_0", 256, 66, true, false}, {39, "mxfp4", 32, 17, true, false},
    {SL_TYPE_NF4, "nf4", 256, 134, true, true}, /* sluice's own from here */
    /* int8 per element; a row's scale lives in "<name>_scale", so a row
     * alone neither quantizes nor dequantizes: only `sluice quantize` writes it */
    {SL_TYPE_W8A8, "w8a8", 1, 1, true, false},
};

const int8_t sl_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* bitsandbytes' NormalFloat-4 code: quantiles of N(0, 1) scaled to [-1, 1],
 * with an exact zero (Dettmers et al., QLoRA, 2023). */
const float sl_nf4_values[16] = {-1.0f,
                                 -0.6961928009986877f,
                                 -0.5250730514526367f,
                                 -0.39491748809814453f,
                                 -0.28444138169288635f,
                                 -0.18477343022823334f,
                                 -0.09105003625154495f,
                                 0.0f,
                                 0.07958029955625534f,
                                 0.16093020141124725f,
                                 0.24611230194568634f,
                                 0.33791524171829224f,
                                 0.44070982933044434f,
                                 0.5626170039176941f,
                                 0.7229568362236023f,
                                 1.0f};

const sl_type_traits *sl_type_get(uint32_t id)
{
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].id == id)
            return &k_types[i];
    return NULL;
}

const sl_type_traits *sl_type_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (strcasecmp(k_types[i].name, name) == 0)
            return &k_types[i];
    return NULL;
}

sl_status sl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes, sl_err *err)
{
    const sl_type_traits *t = sl_type_get(type);
    if (!t)
        return sl_err_set(err, SL_EUNSUPPORTED, "unknown tensor type id %u", type);
    if (n % t->block_elems != 0)
        return sl_err_set(err, SL_EFORMAT, "row of %llu elements is not a whole number of %s blocks (%u)",
                          (unsigned long long)n, t->name, t->block_elems);
    uint64_t blocks = n / t->block_elems;
    if (blocks > UINT64_MAX / t->block_bytes)
        return sl_err_set(err, SL_ERANGE, "row of %llu %s elements overflows a 64-bit size",
                          (unsigned long long)n, t->name);
    *bytes = blocks * t->block_bytes;
    return SL_OK;
}

static uint32_t f32_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float bits_f32(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

uint16_t sl_fp32_to_fp16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: quiet it, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) { /* below 2^-14: half subnormal or zero */
        if (ax < 0x33000000u)
            return (uint16_t)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value * 2^24 = m >> shift */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1)))
            q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u; /* rebias exponent 127 -> 15 */
    uint32_t q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1)))
        q++; /* a carry into the exponent is the correct result */
    return (uint16_t)(sign | q);
}

float sl_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* exact: m < 2^10 */
        return sign ? -v : v;
    }
    if (e == 31)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

uint16_t sl_fp32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 64); /* quiet NaN */
    return (uint16_t)((x + (0x7fffu + ((x >> 16) & 1))) >> 16);
}

float sl_bf16_to_fp32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}
