/* kernels_scalar.c - reference kernels: one plain loop per (row, token),
 * summed in element order.  Every SIMD kernel is tested against these; the
 * F32 one sums exactly as llama2.c's run.c does. */
#include <math.h>
#include <string.h>

#include "sl_kernels.h"
#include "sl_types.h"

void sl_quantize_act(const float *x, sl_block_q8x *q, int k)
{
    for (int b = 0; b < k / 32; b++, x += 32) {
        float amax = 0.0f;
        for (int j = 0; j < 32; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax; /* inline, not libm's fmaxf */
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t s = 0;
        for (int j = 0; j < 32; j++) {
            /* roundf (half away from zero) without the libm call: |x*id| <=
             * 127.5, so adding 0.5 in double is exact */
            const float f = x[j] * id;
            const int v = f >= 0.0f ? (int)((double)f + 0.5) : -(int)(0.5 - (double)f);
            q[b].qs[j] = (int8_t)v;
            s += v;
        }
        q[b].d = d;
        q[b].s = s;
    }
}

size_t sl_w8a8_act_bytes(int k) { return sizeof(sl_w8a8_act) + (((size_t)k + 63) & ~(size_t)63); }

void sl_w8a8_act_quant(const float *x, void *out, int k, float scale)
{
    sl_w8a8_act *h = out;
    int8_t *q = (int8_t *)(h + 1);
    float d = scale;
    if (d <= 0.0f) {
        float amax = 0.0f;
        for (int j = 0; j < k; j++)
            amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        d = amax / 127.0f;
    }
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t s = 0;
    for (int j = 0; j < k; j++) {
        const float f = x[j] * id;
        int v = f >= 0.0f ? (int)((double)f + 0.5) : -(int)(0.5 - (double)f);
        v = v > 127 ? 127 : v < -127 ? -127 : v; /* a static scale clips */
        q[j] = (int8_t)v;
        s += v;
    }
    memset(q + k, 0, (((size_t)k + 63) & ~(size_t)63) - (size_t)k);
    memset(h, 0, sizeof *h);
    h->s = d;
    h->sum = s;
}

size_t sl_act_bytes_blocks(int k) { return (size_t)(k / 32) * sizeof(sl_block_q8x); }
void sl_act_quant_blocks(const float *x, void *out, int k) { sl_quantize_act(x, out, k); }

static float dot_f32(const uint8_t *w, const float *x, int k)
{
    const float *wf = (const float *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k; i++)
        acc += wf[i] * x[i];
    return acc;
}

static float dot_f16(const uint8_t *w, const float *x, int k)
{
    float acc = 0.0f;
    for (int i = 0; i < k; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * i, 2);
        acc += sl_fp16_to_fp32(h) * x[i];
    }
    return acc;
}

static float dot_bf16(const uint8_t *w, const float *x, int k)
{
    float acc = 0.0f;
    for (int i = 0; i < k; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * i, 2);
        acc += sl_bf16_to_fp32(h) * x[i];
    }
    return acc;
}

static float dot_q8_0(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_q8_0 *b = (const sl_block_q8_0 *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 32; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < 32; j++)
            sumi += b[i].qs[j] * x[i].qs[j];
        acc += sl_fp16_to_fp32(b[i].d) * x[i].d * (float)sumi;
    }
    return acc;
}

static float dot_q4_0(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_q4_0 *b = (const sl_block_q4_0 *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 32; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += ((b[i].qs[j] & 0x0f) - 8) * x[i].qs[j];
            sumi += ((b[i].qs[j] >> 4) - 8) * x[i].qs[j + 16];
        }
        acc += sl_fp16_to_fp32(b[i].d) * x[i].d * (float)sumi;
    }
    return acc;
}

static float dot_q4_1(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_q4_1 *b = (const sl_block_q4_1 *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 32; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += (b[i].qs[j] & 0x0f) * x[i].qs[j];
            sumi += (b[i].qs[j] >> 4) * x[i].qs[j + 16];
        }
        acc += sl_fp16_to_fp32(b[i].d) * x[i].d * (float)sumi + sl_fp16_to_fp32(b[i].m) * (x[i].d * (float)x[i].s);
    }
    return acc;
}

/* IQ4_NL: Q4_0's nibbles through ggml's non-linear code. */
static float dot_iq4_nl(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_iq4_nl *b = (const sl_block_iq4_nl *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 32; i++) {
        int32_t sumi = 0;
        for (int j = 0; j < 16; j++) {
            sumi += sl_iq4nl_values[b[i].qs[j] & 0x0f] * x[i].qs[j];
            sumi += sl_iq4nl_values[b[i].qs[j] >> 4] * x[i].qs[j + 16];
        }
        acc += sl_fp16_to_fp32(b[i].d) * x[i].d * (float)sumi;
    }
    return acc;
}

/* Q4_K: per sub-block of 32 (one activation block), the scale term and the
 * offset term, as ggml's dequantizer forms the weights. */
static float dot_q4_k(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_q4_k *b = (const sl_block_q4_k *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 256; i++) {
        const float d = sl_fp16_to_fp32(b[i].d), dmin = sl_fp16_to_fp32(b[i].dmin);
        for (int j = 0; j < 8; j++) {
            const sl_block_q8x *a = &x[8 * i + j];
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            const int shift = 4 * (j & 1);
            int sc, m;
            sl_q4k_scale_min(b[i].scales, j, &sc, &m);
            int32_t sumi = 0;
            for (int l = 0; l < 32; l++)
                sumi += ((q[l] >> shift) & 0xF) * a->qs[l];
            acc += d * (float)sc * a->d * (float)sumi - dmin * (float)m * (a->d * (float)a->s);
        }
    }
    return acc;
}

/* The 6-bit value of element e (0..255) of a Q6_K super-block, 0..63. */
static inline int q6_k_at(const sl_block_q6_k *b, int e)
{
    const int h = e / 128, r = (e % 128) / 32, l = e % 32;
    const uint8_t ql = b->ql[64 * h + l + 32 * (r & 1)], qh = b->qh[32 * h + l];
    return ((ql >> (4 * (r >> 1))) & 0xF) | (((qh >> (2 * r)) & 3) << 4);
}

/* Q6_K: an activation block spans two sub-blocks of 16; their integer
 * sums are combined with the int8 scales exactly, then scaled once. */
static float dot_q6_k(const uint8_t *w, const sl_block_q8x *x, int k)
{
    const sl_block_q6_k *b = (const sl_block_q6_k *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 256; i++) {
        const float d = sl_fp16_to_fp32(b[i].d);
        for (int j = 0; j < 8; j++) {
            const sl_block_q8x *a = &x[8 * i + j];
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 16; l++) {
                s0 += (q6_k_at(&b[i], 32 * j + l) - 32) * a->qs[l];
                s1 += (q6_k_at(&b[i], 32 * j + 16 + l) - 32) * a->qs[16 + l];
            }
            acc += d * a->d * (float)(b[i].scales[2 * j] * s0 + b[i].scales[2 * j + 1] * s1);
        }
    }
    return acc;
}

/* NF4: float activations; per block of 64, the codes' sum of products,
 * then the block's double-quantized scale. */
static float dot_nf4(const uint8_t *w, const float *x, int k)
{
    const sl_block_nf4 *b = (const sl_block_nf4 *)(const void *)w;
    float acc = 0.0f;
    for (int i = 0; i < k / 256; i++) {
        const float D = sl_fp16_to_fp32(b[i].d);
        for (int j = 0; j < 4; j++) {
            const uint8_t *q = b[i].qs + 32 * j;
            const float *xs = x + 256 * i + 64 * j;
            float s = 0.0f;
            for (int l = 0; l < 32; l++)
                s += sl_nf4_values[q[l] & 0xF] * xs[l];
            for (int l = 0; l < 32; l++)
                s += sl_nf4_values[q[l] >> 4] * xs[32 + l];
            acc += D * (float)b[i].code[j] * s;
        }
    }
    return acc;
}

/* W8A8: the exact integer dot product. */
static float dot_w8a8(const uint8_t *w, const sl_w8a8_act *x, int k)
{
    const int8_t *a = (const int8_t *)(const void *)w, *b = (const int8_t *)(x + 1);
    int32_t s = 0;
    for (int i = 0; i < k; i++)
        s += a[i] * b[i];
    return (float)s;
}

/* Attention's two inner loops.  Eight partial sums (fixed combine order)
 * keep the dot product off one long dependency chain. */
static float attn_dot(const float *q, const float *k, int n)
{
    float p[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            p[l] += q[i + l] * k[i + l];
    for (int l = 0; i < n; i++, l++)
        p[l] += q[i] * k[i];
    return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}

static void attn_scores(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out)
{
    for (int p = 0; p < n_pos; p++)
        out[p] = attn_dot(q, k + (size_t)p * stride, hd) / scale;
}

static void attn_accum(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd)
{
    for (int p = 0; p < n_pos; p++)
        for (int i = 0; i < hd; i++)
            o[i] += att[p] * v[(size_t)p * stride + i];
}

#define SCALAR_GEMM(NAME, DOT, XT)                                                                                     \
    static void NAME(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride, int nt,      \
                     int k, float *y, int ldy)                                                                         \
    {                                                                                                                  \
        for (int r = r0; r < r1; r++)                                                                                  \
            for (int t = 0; t < nt; t++)                                                                               \
                y[(size_t)t * ldy + r] = DOT(w + (size_t)r * row_bytes,                                               \
                                             (const XT *)(const void *)((const uint8_t *)x + t * x_stride), k);       \
    }

SCALAR_GEMM(gemm_f32, dot_f32, float)
SCALAR_GEMM(gemm_f16, dot_f16, float)
SCALAR_GEMM(gemm_bf16, dot_bf16, float)
SCALAR_GEMM(gemm_q8_0, dot_q8_0, sl_block_q8x)
SCALAR_GEMM(gemm_q4_0, dot_q4_0, sl_block_q8x)
SCALAR_GEMM(gemm_q4_1, dot_q4_1, sl_block_q8x)
SCALAR_GEMM(gemm_q4_k, dot_q4_k, sl_block_q8x)
SCALAR_GEMM(gemm_q6_k, dot_q6_k, sl_block_q8x)
SCALAR_GEMM(gemm_iq4_nl, dot_iq4_nl, sl_block_q8x)
SCALAR_GEMM(gemm_nf4, dot_nf4, float)
SCALAR_GEMM(gemm_w8a8, dot_w8a8, sl_w8a8_act)

const sl_kernels sl_kernels_scalar = {
    .isa = SL_ISA_SCALAR,
    .name = "scalar",
    .gemm = {gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0, gemm_q4_1, gemm_q4_k, gemm_q6_k, gemm_iq4_nl,
             gemm_nf4, gemm_w8a8},
    .gemm_name = {"scalar f32", "scalar f16", "scalar bf16", "scalar q8_0 x q8", "scalar q4_0 x q8",
                  "scalar q4_1 x q8", "scalar q4_K x q8", "scalar q6_K x q8", "scalar iq4_nl x q8",
                  "scalar nf4 x f32", "scalar w8a8 x i8"},
    .act_bytes = sl_act_bytes_blocks,
    .act_quant = sl_act_quant_blocks,
    .attn_scores = attn_scores,
    .attn_accum = attn_accum,
    .rmsnorm = sl_rmsnorm_scalar,
    .swiglu = sl_swiglu_scalar,
    .exp_shift = sl_exp_shift_scalar,
};
