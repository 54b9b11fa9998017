/* sl_types.h - tensor element types, with ggml's ids and block layouts.
 *
 * Type ids below 1024 are ggml's (GGUF files from llama.cpp use them); the
 * block bytes of every ggml type sluice computes with are exactly ggml's.
 * Ids from SL_TYPE_PRIVATE_BASE up are sluice's own (docs/image-format.md). */
#ifndef SL_TYPES_H
#define SL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SL_TYPE_F32 = 0,
    SL_TYPE_F16 = 1,
    SL_TYPE_Q4_0 = 2,
    SL_TYPE_Q4_1 = 3,
    SL_TYPE_Q5_0 = 6,
    SL_TYPE_Q5_1 = 7,
    SL_TYPE_Q8_0 = 8,
    SL_TYPE_Q8_1 = 9,
    SL_TYPE_Q2_K = 10,
    SL_TYPE_Q3_K = 11,
    SL_TYPE_Q4_K = 12,
    SL_TYPE_Q5_K = 13,
    SL_TYPE_Q6_K = 14,
    SL_TYPE_Q8_K = 15,
    SL_TYPE_IQ4_NL = 20,
    SL_TYPE_BF16 = 30,
    SL_TYPE_PRIVATE_BASE = 1024,
    SL_TYPE_NF4 = 1024,  /* sluice: NormalFloat-4 with double-quantized scales */
    SL_TYPE_W8A8 = 1025, /* sluice: int8 rows; scales in companion tensors (docs/image-format.md) */
};

#define SL_QK 32  /* elements per block of the 32-wide types */
#define SL_QKK 256 /* elements per super-block of the K types (and NF4) */

typedef struct sl_type_traits {
    uint32_t id;
    const char *name;      /* ggml's name: "f32", "q4_0", ... */
    uint32_t block_elems;  /* elements per block */
    uint32_t block_bytes;  /* bytes per block */
    bool quantized;
    bool convertible;      /* sluice can quantize to / dequantize from it */
} sl_type_traits;

/* NULL for an id sluice does not know. */
const sl_type_traits *sl_type_get(uint32_t id);
/* Case-insensitive lookup by name ("q4_0", "Q8_0", "bf16"); NULL if unknown. */
const sl_type_traits *sl_type_by_name(const char *name);

/* Bytes of one row of n elements; SL_EFORMAT if n is not a whole number of
 * blocks, SL_ERANGE on overflow. */
sl_status sl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes, sl_err *err);

/* IEEE half and bfloat16 conversions; float->half/bf16 round to nearest
 * even, as F16C's _cvtss_sh(x, 0) and ggml do. */
uint16_t sl_fp32_to_fp16(float f);
float sl_fp16_to_fp32(uint16_t h);
uint16_t sl_fp32_to_bf16(float f);
float sl_bf16_to_fp32(uint16_t h);

/* ggml block structures (little-endian, packed as in ggml). */
typedef struct { uint16_t d; int8_t qs[SL_QK]; } sl_block_q8_0;
typedef struct { uint16_t d; uint8_t qs[SL_QK / 2]; } sl_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[SL_QK / 2]; } sl_block_q4_1;
#ifdef __cplusplus
#define SL_STATIC_ASSERT static_assert
#else
#define SL_STATIC_ASSERT _Static_assert
#endif
/* Q4_K: 8 sub-blocks of 32, value = d*sc_j*q - dmin*m_j, q in 0..15; the
 * 6-bit sc_j / m_j packed in scales[12] as ggml's get_scale_min_k4 reads. */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[SL_QKK / 2]; } sl_block_q4_k;
/* Q6_K: 16 sub-blocks of 16, value = d*sc_j*(q - 32), q in 0..63: low 4
 * bits in ql, high 2 in qh. */
typedef struct { uint8_t ql[SL_QKK / 2]; uint8_t qh[SL_QKK / 4]; int8_t scales[SL_QKK / 16]; uint16_t d; } sl_block_q6_k;
/* IQ4_NL: value = d * sl_iq4nl_values[q], nibbles as Q4_0's. */
typedef struct { uint16_t d; uint8_t qs[SL_QK / 2]; } sl_block_iq4_nl;
/* NF4 (sluice's own): 4 blocks of 64, value = (D * code_b) * sl_nf4_values[q]:
 * the blocks' absmax scales are themselves quantized to 8 bits against the
 * half-float D (double quantization).  In a block of 64, byte l holds
 * element l (low nibble) and element l + 32 (high). */
typedef struct { uint16_t d; uint8_t code[4]; uint8_t qs[SL_QKK / 2]; } sl_block_nf4;
extern const int8_t sl_iq4nl_values[16];
extern const float sl_nf4_values[16];
SL_STATIC_ASSERT(sizeof(sl_block_q8_0) == 34, "q8_0 block");
SL_STATIC_ASSERT(sizeof(sl_block_q4_k) == 144, "q4_K block");
SL_STATIC_ASSERT(sizeof(sl_block_q6_k) == 210, "q6_K block");
SL_STATIC_ASSERT(sizeof(sl_block_iq4_nl) == 18, "iq4_nl block");
SL_STATIC_ASSERT(sizeof(sl_block_nf4) == 134, "nf4 block");
SL_STATIC_ASSERT(sizeof(sl_block_q4_0) == 18, "q4_0 block");
SL_STATIC_ASSERT(sizeof(sl_block_q4_1) == 20, "q4_1 block");

/* Q4_K's 6-bit scale and min of sub-block j (ggml's get_scale_min_k4). */
static inline void sl_q4k_scale_min(const uint8_t *q, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Scalar reference quantization of one row of n floats into type.  For
 * q8_0, q4_0 and q4_1 the rounding is ggml's, so the bytes equal
 * llama-quantize's; for q4_K, q6_K, iq4_nl and nf4 the layout is ggml's (or
 * sluice's) but the scales are sluice's own choice (sl_grid.h).  Refuses n that is
 * not a multiple of the block size (the caller's fallback policy decides
 * what such a row becomes), non-finite inputs, and blocks whose scale does
 * not fit a half float. */
sl_status sl_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n, sl_err *err);
/* W8A8's weights: one row of n floats as int8 (round half away from zero)
 * against scale amax / 127, which is returned in *scale. */
sl_status sl_w8a8_quantize_row(const float *src, int8_t *dst, uint64_t n, float *scale, sl_err *err);
/* Scalar reference dequantization of one row. */
sl_status sl_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n, sl_err *err);

#ifdef __cplusplus
}
#endif

#endif
