/* sl_cuda.h - the CUDA side of the engine (built with -Dcuda=enabled).
 * Everything here fails cleanly when there is no driver or no GPU. */
#ifndef SL_CUDA_H
#define SL_CUDA_H

#include <stdint.h>

#include "sl_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Number of usable CUDA devices; 0 when the driver is missing or any CUDA
 * call fails (a machine without a GPU reports cudaErrorInsufficientDriver). */
int sl_cuda_device_count(void);

/* Dequantizes n elements of type (f16, bf16, q8_0, q4_0, q4_1) from host
 * memory on device 0 and copies the floats back: the GPU twin of
 * sl_dequantize_row, bit-exact with it. */
sl_status sl_cuda_dequantize(uint32_t type, const void *src, uint64_t n, float *dst, sl_err *err);

#ifdef __cplusplus
}
#endif

#endif
