// dequant.cu - GPU dequantization of the ggml block types sluice computes
// with.  Multiplies and adds are written with __fmul_rn / __fadd_rn so nvcc
// cannot fuse them into FMAs: results are bit-identical to the scalar
// reference in quant_ref.c.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "sl_cuda.h"
#include "sl_types.h"

extern "C" int sl_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky error
        return 0;
    }
    return n;
}

__device__ static float half_bits_to_float(uint16_t h)
{
    return __half2float(__ushort_as_half(h));
}

// One thread per block of 32 elements.
__global__ static void k_q8_0(const sl_block_q8_0 *b, float *y, uint64_t nb)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb)
        return;
    const float d = half_bits_to_float(b[i].d);
    for (int j = 0; j < SL_QK; j++)
        y[i * SL_QK + j] = __fmul_rn((float)b[i].qs[j], d);
}

__global__ static void k_q4_0(const sl_block_q4_0 *b, float *y, uint64_t nb)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb)
        return;
    const float d = half_bits_to_float(b[i].d);
    for (int j = 0; j < SL_QK / 2; j++) {
        y[i * SL_QK + j] = __fmul_rn((float)((b[i].qs[j] & 0x0f) - 8), d);
        y[i * SL_QK + j + SL_QK / 2] = __fmul_rn((float)((b[i].qs[j] >> 4) - 8), d);
    }
}

__global__ static void k_q4_1(const sl_block_q4_1 *b, float *y, uint64_t nb)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nb)
        return;
    const float d = half_bits_to_float(b[i].d), m = half_bits_to_float(b[i].m);
    for (int j = 0; j < SL_QK / 2; j++) {
        y[i * SL_QK + j] = __fadd_rn(__fmul_rn((float)(b[i].qs[j] & 0x0f), d), m);
        y[i * SL_QK + j + SL_QK / 2] = __fadd_rn(__fmul_rn((float)(b[i].qs[j] >> 4), d), m);
    }
}

__global__ static void k_f16(const uint16_t *x, float *y, uint64_t n)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = half_bits_to_float(x[i]);
}

__global__ static void k_bf16(const uint16_t *x, float *y, uint64_t n)
{
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        y[i] = __uint_as_float((uint32_t)x[i] << 16);
}

static sl_status cuda_fail(sl_err *err, cudaError_t e, const char *what)
{
    return sl_err_set(err, SL_EIO, "CUDA %s failed: %s", what, cudaGetErrorString(e));
}

extern "C" sl_status sl_cuda_dequantize(uint32_t type, const void *src, uint64_t n, float *dst, sl_err *err)
{
    uint64_t in_bytes;
    sl_status st = sl_type_row_bytes(type, n, &in_bytes, err);
    if (st)
        return st;
    const sl_type_traits *t = sl_type_get(type);
    uint64_t units = n / t->block_elems;
    void *d_src = NULL;
    float *d_dst = NULL;
    cudaError_t e = cudaMalloc(&d_src, in_bytes ? in_bytes : 1);
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&d_dst, n * sizeof(float) + 1);
    if (e == cudaSuccess)
        e = cudaMemcpy(d_src, src, in_bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        st = cuda_fail(err, e, "allocation or copy");
        goto out;
    }
    {
        const unsigned threads = 256;
        const unsigned grid = (unsigned)((units + threads - 1) / threads);
        if (units > 0) {
            switch (type) {
            case SL_TYPE_Q8_0: k_q8_0<<<grid, threads>>>((const sl_block_q8_0 *)d_src, d_dst, units); break;
            case SL_TYPE_Q4_0: k_q4_0<<<grid, threads>>>((const sl_block_q4_0 *)d_src, d_dst, units); break;
            case SL_TYPE_Q4_1: k_q4_1<<<grid, threads>>>((const sl_block_q4_1 *)d_src, d_dst, units); break;
            case SL_TYPE_F16: k_f16<<<grid, threads>>>((const uint16_t *)d_src, d_dst, units); break;
            case SL_TYPE_BF16: k_bf16<<<grid, threads>>>((const uint16_t *)d_src, d_dst, units); break;
            default:
                st = sl_err_set(err, SL_EUNSUPPORTED, "no CUDA dequantizer for %s", t->name);
                goto out;
            }
        }
        e = cudaGetLastError();
        if (e == cudaSuccess)
            e = cudaMemcpy(dst, d_dst, n * sizeof(float), cudaMemcpyDeviceToHost);
        if (e != cudaSuccess)
            st = cuda_fail(err, e, "dequantize kernel");
    }
out:
    cudaFree(d_src);
    cudaFree(d_dst);
    return st;
}
