/* CUDA dequantization against the scalar reference: bit-exact.  Skips where
 * no GPU (or no driver) is found. */
#include <criterion/criterion.h>
#include <math.h>

#include "sl_cuda.h"
#include "sl_types.h"

Test(cuda, dequantize_matches_scalar_reference_bit_for_bit)
{
    if (sl_cuda_device_count() == 0)
        cr_skip_test("no CUDA device (or no driver) on this machine");
    const uint32_t types[] = {SL_TYPE_F16, SL_TYPE_BF16, SL_TYPE_Q8_0, SL_TYPE_Q4_0, SL_TYPE_Q4_1};
    enum { N = 1 << 16 };
    static float x[N], ref[N], gpu[N];
    static uint8_t q[N * 4];
    for (int i = 0; i < N; i++)
        x[i] = sinf(0.01f * (float)i) * (float)(1 + i % 13);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        sl_err err;
        cr_assert_eq(sl_quantize_row(types[k], x, q, N, &err), SL_OK);
        cr_assert_eq(sl_dequantize_row(types[k], q, ref, N, &err), SL_OK);
        cr_assert_eq(sl_cuda_dequantize(types[k], q, N, gpu, &err), SL_OK, "%s", err.msg);
        cr_assert_arr_eq(gpu, ref, sizeof ref, "%s: GPU and CPU differ", sl_type_get(types[k])->name);
    }
}

Test(cuda, probe_and_argument_checks_work_without_a_gpu)
{
    int n = sl_cuda_device_count(); /* 0 without a driver: never an error */
    cr_assert_geq(n, 0);
    float out[64];
    uint8_t in[64] = {0};
    sl_err err;
    cr_assert_eq(sl_cuda_dequantize(SL_TYPE_Q8_0, in, 33, out, &err), SL_EFORMAT, "checked before any CUDA call");
    cr_assert(strstr(err.msg, "whole number"), "%s", err.msg);
    cr_assert_eq(sl_cuda_dequantize(9999, in, 32, out, &err), SL_EUNSUPPORTED);
}

Test(cuda, refuses_types_it_has_no_kernel_for)
{
    if (sl_cuda_device_count() == 0)
        cr_skip_test("no CUDA device (or no driver) on this machine");
    float out[256];
    uint8_t in[256] = {0};
    sl_err err;
    cr_assert_eq(sl_cuda_dequantize(SL_TYPE_Q4_K, in, 256, out, &err), SL_EUNSUPPORTED);
}
