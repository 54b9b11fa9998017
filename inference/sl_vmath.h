/* sl_vmath.h - the forward pass's element-wise math (RMSNorm, SwiGLU,
 * softmax's exponentials), with the same bits at every ISA level.
 *
 * sl_expf is glibc's expf (2.28 and later, the FMA build its ifunc picks on
 * any CPU with AVX2 and FMA), step for step: the same 32-entry table, the
 * same polynomial, the same fused operations.  It therefore returns expf's
 * bits wherever that libm runs (test_vmath checks this) and the same bits
 * everywhere else, whatever libm the machine has.  The vector versions
 * compute the same double-precision steps lane by lane.
 *
 * RMSNorm keeps run.c's order: one token's sum of squares is a sequential
 * sum.  The vector version sums eight tokens at once, one per lane, each in
 * that order, so it is exact and still fast. */
#ifndef SL_VMATH_H
#define SL_VMATH_H

#include <stdint.h>

/* glibc's expf data (e_exp2f_data.c): 2^(i/32) as a double, less i << 47
 * in its bits; x * 32 / ln 2; the shift that rounds to an integer; the
 * polynomial of 2^(r/32). */
extern const uint64_t sl_expf_tab[32];
#define SL_EXPF_INVLN2N 0x1.71547652b82fep+5
#define SL_EXPF_SHIFT 0x1.8p+52
#define SL_EXPF_C0 0x1.c6af84b912394p-20
#define SL_EXPF_C1 0x1.ebfce50fac4f3p-13
#define SL_EXPF_C2 0x1.62e42ff0c52d6p-6
/* |x| >= 88 or NaN (the top 12 bits of |x| above this) take expf's
 * special cases */
#define SL_EXPF_ABSTOP_MAX 0x42a

float sl_expf(float x);

/* o[t][j] = w[j] * (x[t][j] / sqrt(mean_j x[t][j]^2 + eps)) for nt tokens of
 * n values (rows n apart), in run.c's operations. */
typedef void (*sl_rmsnorm_fn)(float *o, const float *x, const float *w, int n, int nt, float eps);
/* h[i] = h[i] * (1 / (1 + exp(-h[i]))) * h2[i] (run.c's SwiGLU) */
typedef void (*sl_swiglu_fn)(float *h, const float *h2, int n);
/* a[i] = exp(a[i] - shift) (softmax's numerators) */
typedef void (*sl_exp_shift_fn)(float *a, int n, float shift);

/* The largest of x[0..n), n >= 1, as the loop `m = x[0]; if (x[i] > m)
 * m = x[i]` finds it (NaNs never win; a NaN x[0] is returned), 4 lanes at
 * a time: the loop's value, but where zeros of both signs tie for the
 * largest, either zero. */
float sl_max_f32(const float *x, int n);
/* x[i] /= d, 4 lanes at a time (each lane's quotient is the scalar's). */
void sl_div_f32(float *x, int n, float d);
/* x[i] += y[i], 4 lanes at a time (each lane's sum is the scalar's). */
void sl_add_f32(float *x, const float *y, int n);

void sl_rmsnorm_scalar(float *o, const float *x, const float *w, int n, int nt, float eps);
void sl_swiglu_scalar(float *h, const float *h2, int n);
void sl_exp_shift_scalar(float *a, int n, float shift);
/* AVX2 + FMA (vmath_avx2.c): only after the CPU check */
void sl_rmsnorm_avx2(float *o, const float *x, const float *w, int n, int nt, float eps);
void sl_swiglu_avx2(float *h, const float *h2, int n);
void sl_exp_shift_avx2(float *a, int n, float shift);
/* AVX-512 (vmath_avx512.c): only after the CPU check */
void sl_swiglu_avx512(float *h, const float *h2, int n);
void sl_exp_shift_avx512(float *a, int n, float shift);

#endif
