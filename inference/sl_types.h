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
};

#define SL_QK 32 /* elements per block of the 32-wide types */

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
SL_STATIC_ASSERT(sizeof(sl_block_q8_0) == 34, "q8_0 block");
SL_STATIC_ASSERT(sizeof(sl_block_q4_0) == 18, "q4_0 block");
SL_STATIC_ASSERT(sizeof(sl_block_q4_1) == 20, "q4_1 block");

/* Scalar reference quantization of one row of n floats into type, with
 * ggml's rounding, so the bytes equal llama-quantize's.  Refuses n that is
 * not a multiple of the block size (the caller's fallback policy decides
 * what such a row becomes), non-finite inputs, and blocks whose scale does
 * not fit a half float. */
sl_status sl_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n, sl_err *err);
/* Scalar reference dequantization of one row. */
sl_status sl_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n, sl_err *err);

#ifdef __cplusplus
}
#endif

#endif
