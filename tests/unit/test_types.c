/* Tensor types: half/bfloat16 conversions, golden blocks, quantization
 * error bounds and the refusals (partial blocks, non-finite inputs). */
#include <criterion/criterion.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_gguf.h"
#include "sl_grow.h"
#include "sl_types.h"
#include "test_support.h"

static uint64_t rng = 0x1234567887654321ull;
static uint32_t next32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

static float frand(float lo, float hi)
{
    return lo + (hi - lo) * (float)(next32() & 0xffffff) / 16777216.0f;
}

__attribute__((target("f16c"))) static uint16_t hw_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}

__attribute__((target("f16c"))) static float hw_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

Test(types, fp16_matches_f16c_on_every_half_and_random_floats)
{
    if (!__builtin_cpu_supports("f16c"))
        cr_skip_test("CPU lacks F16C: no hardware reference");
    for (uint32_t h = 0; h < 65536; h++) {
        float a = sl_fp16_to_fp32((uint16_t)h), b = hw_f32((uint16_t)h);
        cr_assert(memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)), "half 0x%04x", h);
        if (!isnan(a))
            cr_assert_eq(sl_fp32_to_fp16(a), h, "round trip of half 0x%04x", h);
    }
    for (int i = 0; i < 2000000; i++) {
        uint32_t bits = next32() ^ (next32() << 16);
        float f;
        memcpy(&f, &bits, 4);
        uint16_t mine = sl_fp32_to_fp16(f), hw = hw_f16(f);
        if (isnan(f))
            cr_assert((mine & 0x7c00) == 0x7c00 && (mine & 0x3ff), "NaN stays NaN");
        else
            cr_assert_eq(mine, hw, "float bits 0x%08x: 0x%04x vs F16C 0x%04x", bits, mine, hw);
    }
}

Test(types, fp16_known_values)
{
    cr_assert_eq(sl_fp32_to_fp16(1.0f), 0x3c00);
    cr_assert_eq(sl_fp32_to_fp16(-2.0f), 0xc000);
    cr_assert_eq(sl_fp32_to_fp16(65504.0f), 0x7bff);
    cr_assert_eq(sl_fp32_to_fp16(65520.0f), 0x7c00, "halfway to 65536 rounds to infinity");
    cr_assert_eq(sl_fp32_to_fp16(0x1p-24f), 0x0001);
    cr_assert_eq(sl_fp32_to_fp16(0x1p-25f), 0x0000, "tie rounds to even zero");
    cr_assert_eq(sl_fp32_to_fp16(0x1.8p-25f), 0x0001);
    cr_assert_eq(sl_fp32_to_fp16(0.1f), 0x2e66);
    cr_assert_eq(sl_fp32_to_fp16(1.0f / 3.0f), 0x3555);
}

Test(types, bf16_rounds_to_nearest_even)
{
    cr_assert_eq(sl_fp32_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(sl_fp32_to_bf16(1.00390625f), 0x3f80, "tie to even (down)");
    cr_assert_eq(sl_fp32_to_bf16(1.01171875f), 0x3f82, "tie to even (up)");
    cr_assert_eq(sl_fp32_to_bf16(-0.0f), 0x8000);
    cr_assert(isnan(sl_bf16_to_fp32(sl_fp32_to_bf16(NAN))));
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sl_bf16_to_fp32((uint16_t)h);
        if (!isnan(f))
            cr_assert_eq(sl_fp32_to_bf16(f), h);
    }
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : (c | 32) - 'a' + 10;
}

Test(types, golden_blocks_match_byte_for_byte)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/golden_blocks.txt", SL_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "missing %s", path);
    static char line[16384];
    char name[64], tname[16];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "case %63s %15s", name, tname) != 2)
            continue;
        const sl_type_traits *t = sl_type_get(sl_type_by_name(tname) ? sl_type_by_name(tname)->id : UINT32_MAX);
        cr_assert_not_null(t, "%s: type %s", name, tname);
        /* "in V..." or "in*R V...": the values, repeated R times to fill the block */
        float in[256];
        cr_assert_not_null(fgets(line, sizeof line, f));
        char *p = line + 2;
        int rep = 1, n_in = 0;
        if (*p == '*')
            rep = (int)strtol(p + 1, &p, 10);
        while (n_in < 256) {
            char *e;
            const float v = strtof(p, &e);
            if (e == p)
                break;
            in[n_in++] = v, p = e;
        }
        cr_assert_eq(n_in * rep, (int)t->block_elems, "%s: %d x %d inputs for a block of %u", name, n_in, rep,
                     t->block_elems);
        for (int r = 1; r < rep; r++)
            memcpy(in + r * n_in, in, sizeof(float) * (size_t)n_in);
        cr_assert_not_null(fgets(line, sizeof line, f));
        uint8_t want[256], got[256];
        size_t n = (strlen(line) - 5) / 2;
        cr_assert_eq(n, t->block_bytes, "%s: expected %u bytes", name, t->block_bytes);
        for (size_t i = 0; i < n; i++)
            want[i] = (uint8_t)(hexval(line[4 + 2 * i]) << 4 | hexval(line[5 + 2 * i]));
        sl_err err;
        cr_assert_eq(sl_quantize_row(t->id, in, got, t->block_elems, &err), SL_OK, "%s: %s", name, err.msg);
        cr_assert_arr_eq(got, want, n, "%s: bytes differ from the golden block", name);
        float back[256];
        cr_assert_eq(sl_dequantize_row(t->id, got, back, t->block_elems, &err), SL_OK);
        cases++;
    }
    fclose(f);
    cr_assert_eq(cases, 13, "golden cases read: %d", cases);
}

/* Every element's error is bounded by half a quantization step (plus the
 * half-float rounding of the scale). */
/* Every element of x (n values) against its round trip y through type:
 * half a step of its block's or sub-block's scale, plus what storing the
 * scales as halves (and, for the super-block types, as 6- or 8-bit
 * multiples of the super-block's halves) can add at the range's ends. */
static void assert_within_bounds(uint32_t type, const float *x, const float *y, int n, const char *what)
{
    const sl_type_traits *t = sl_type_get(type);
    const bool super = t->block_elems == 256;
    const int sub = type == SL_TYPE_Q6_K ? 16 : type == SL_TYPE_NF4 ? 64 : 32;
    const int span = super ? 256 : 32;
    for (int s0 = 0; s0 < n; s0 += span) {
        float dmax = 0, mmax = 0, amax_all = 0; /* the super-block's largest sub-block scale, offset, value */
        for (int b = s0; b < s0 + span; b += sub) {
            float mn = 0, mx = x[b], am = 0;
            for (int j = b; j < b + sub; j++)
                mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]), am = fmaxf(am, fabsf(x[j]));
            dmax = fmaxf(dmax, type == SL_TYPE_Q4_K ? (mx - mn) / 15 : am / 32);
            mmax = fmaxf(mmax, -mn);
            amax_all = fmaxf(amax_all, am);
        }
        for (int b = s0; b < s0 + span; b += sub) {
            float mn = x[b], mx = x[b], am = 0, lo0 = 0;
            for (int j = b; j < b + sub; j++)
                mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]), am = fmaxf(am, fabsf(x[j]));
            lo0 = fminf(mn, 0.0f);
            for (int j = b; j < b + sub; j++) {
                float bound;
                switch (type) {
                /* half a step, plus the half-float rounding of the scale
                 * (relative 2^-11, absolute 2^-25 where the scale is a
                 * subnormal half) times the largest code */
                case SL_TYPE_Q8_0: bound = am / 254.0f + am * 0x1p-10f + 127 * 0x1p-24f; break;
                case SL_TYPE_Q4_0: bound = am / 8.0f * 1.001f + am * 0x1p-10f + 8 * 0x1p-24f; break;
                case SL_TYPE_Q4_1: bound = (mx - mn) / 30.0f + (fabsf(mn) + mx - mn) * 0x1p-10f + 16 * 0x1p-24f; break;
                case SL_TYPE_F16: bound = fabsf(x[j]) * 0x1p-11f + 0x1p-25f; break;
                case SL_TYPE_BF16: bound = fabsf(x[j]) * 0x1p-8f; break;
                case SL_TYPE_F32: bound = 0.0f; break;
                /* q in 0..15, d_j = D sc_j, m_j = M mn_j (D = dmax/63, M =
                 * mmax/63): half a step, and ends moved by M/2 and 15 D/2 */
                case SL_TYPE_Q4_K: bound = (mx - lo0) / 30 + dmax / 63 * 8 + mmax / 63 / 2; break;
                /* q - 32 in -32..31 with the signed extreme at -32: a
                 * whole step at the other end (as Q4_0), and d_j = D sc_j
                 * (D = dmax/128) moves the extreme by 32 D/2 */
                case SL_TYPE_Q6_K: bound = am / 32 + dmax / 128 * 17; break;
                /* the widest gap of the code is 0.304 (-1 to -0.696); the
                 * block scale is absmax within D/2 (D = amax/255) */
                case SL_TYPE_NF4: bound = am * 0.153f + amax_all / 255; break;
                /* codes -127..113 on d = amax/127: the widest gap 24, and
                 * 113 short of 127 on the other side */
                case SL_TYPE_IQ4_NL: bound = am * 14.0f / 127.0f; break;
                default: cr_assert_fail("no bound for %s", t->name);
                }
                if (t->quantized && type != SL_TYPE_Q8_0 && type != SL_TYPE_Q4_0 && type != SL_TYPE_Q4_1) {
                    /* a scale that is a subnormal half is off by up to 2^-25,
                     * times the largest code times sub-block scale */
                    const float codes = type == SL_TYPE_Q6_K   ? 32 * 128
                                        : type == SL_TYPE_Q4_K ? 16 * 63
                                        : type == SL_TYPE_NF4  ? 255
                                                               : 127;
                    bound = bound * 1.01f + am * 0x1p-10f + codes * 0x1p-25f;
                }
                cr_assert(fabsf(x[j] - y[j]) <= bound, "%s %s element %d: |%g - %g| = %g > %g", what, t->name, j, x[j],
                          y[j], fabsf(x[j] - y[j]), bound);
            }
        }
    }
}

static const uint32_t all_types[] = {SL_TYPE_Q8_0, SL_TYPE_Q4_0, SL_TYPE_Q4_1,   SL_TYPE_Q4_K, SL_TYPE_Q6_K,
                                     SL_TYPE_NF4,  SL_TYPE_IQ4_NL, SL_TYPE_F16, SL_TYPE_BF16, SL_TYPE_F32};

static void round_trip(uint32_t type, const float *x, float *y, int n)
{
    static uint8_t q[4096 * 4];
    sl_err err;
    cr_assert_leq(n, 4096);
    cr_assert_eq(sl_quantize_row(type, x, q, (uint64_t)n, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_dequantize_row(type, q, y, (uint64_t)n, &err), SL_OK, "%s", err.msg);
}

Test(types, quantize_error_within_bounds_on_random_rows)
{
    enum { N = 4096 };
    static float x[N], y[N];
    for (size_t k = 0; k < sizeof all_types / sizeof all_types[0]; k++)
        for (int trial = 0; trial < 20; trial++) {
            const float range = powf(10.0f, frand(-4.0f, 3.0f));
            for (int i = 0; i < N; i++) /* sub-blocks of differing ranges, some off centre */
                x[i] = frand(-range, range) * (((i / 32) % 3) ? 1.0f : 0.3f) + (((i / 16) % 5) ? 0.0f : range / 4);
            round_trip(all_types[k], x, y, N);
            assert_within_bounds(all_types[k], x, y, N, "random");
        }
}

/* The same bounds on stories260K's trained matrices, read 256 values at a
 * time across rows (the bounds are per block, whatever the rows). */
Test(types, quantize_error_within_bounds_on_real_weights)
{
    NEED_SHARED(models);
    sl_gguf *g;
    sl_err err;
    cr_assert_eq(sl_gguf_open(test_path(models, "stories260K.gguf"), 0, &g, &err), SL_OK, "%s", err.msg);
    static float y[4096];
    int checked = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        if (t->n_dims != 2 || t->type != SL_TYPE_F32)
            continue;
        const float *x = (const float *)(const void *)t->data;
        const int n = (int)(t->n_elems / 256 * 256 < 4096 ? t->n_elems / 256 * 256 : 4096);
        for (size_t k = 0; k < sizeof all_types / sizeof all_types[0]; k++) {
            round_trip(all_types[k], x, y, n);
            assert_within_bounds(all_types[k], x, y, n, t->name);
        }
        checked++;
    }
    cr_assert_geq(checked, 30, "matrices checked: %d", checked);
    sl_gguf_close(g);
}

/* W8A8's weight rows, worked out by hand: amax 2.54 -> scale 0.02; 1.013
 * is 50.65 steps -> 51 (and -51); 0.009 is 0.45 -> 0; -2.54 is -127. */
Test(types, w8a8_rows_golden)
{
    const float x[6] = {2.54f, -2.54f, 1.013f, -1.013f, 0.0f, 0.009f};
    int8_t q[6];
    float s;
    sl_err err;
    cr_assert_eq(sl_w8a8_quantize_row(x, q, 6, &s, &err), SL_OK);
    cr_assert_eq(s, 2.54f / 127.0f);
    const int8_t want[6] = {127, -127, 51, -51, 0, 0};
    cr_assert_arr_eq(q, want, 6);
    const float z[3] = {0, 0, 0};
    cr_assert_eq(sl_w8a8_quantize_row(z, q, 3, &s, &err), SL_OK);
    cr_assert_eq(s, 0.0f);
    cr_assert_eq(q[0] | q[1] | q[2], 0);
    const float bad[2] = {1.0f, INFINITY};
    cr_assert_eq(sl_w8a8_quantize_row(bad, q, 2, &s, &err), SL_ERANGE);
}

Test(types, quantizers_refuse_partial_blocks_and_non_finite_values)
{
    float x[64] = {0};
    uint8_t q[256];
    sl_err err;
    cr_assert_eq(sl_quantize_row(SL_TYPE_Q8_0, x, q, 33, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "whole number"), "%s", err.msg);
    cr_assert_eq(sl_dequantize_row(SL_TYPE_Q4_0, q, x, 48, &err), SL_EFORMAT);
    x[5] = NAN;
    cr_assert_eq(sl_quantize_row(SL_TYPE_Q4_0, x, q, 32, &err), SL_ERANGE);
    cr_assert(strstr(err.msg, "element 5"), "%s", err.msg);
    x[5] = 1e9f; /* scale 1e9/127 does not fit a half */
    cr_assert_eq(sl_quantize_row(SL_TYPE_Q8_0, x, q, 32, &err), SL_ERANGE);
    cr_assert_eq(sl_quantize_row(SL_TYPE_Q5_K, x, q, 256, &err), SL_EUNSUPPORTED);
    cr_assert_eq(sl_quantize_row(SL_TYPE_Q4_K, x, q, 32, &err), SL_EFORMAT);
}

Test(types, table_matches_ggml_block_sizes)
{
    struct { const char *n; uint32_t id, be, bb; } k[] = {
        {"f32", 0, 1, 4}, {"f16", 1, 1, 2}, {"q4_0", 2, 32, 18}, {"q4_1", 3, 32, 20}, {"q8_0", 8, 32, 34},
        {"q4_K", 12, 256, 144}, {"q6_K", 14, 256, 210}, {"iq4_nl", 20, 32, 18}, {"bf16", 30, 1, 2}};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const sl_type_traits *t = sl_type_by_name(k[i].n);
        cr_assert_not_null(t, "%s", k[i].n);
        cr_assert_eq(t->id, k[i].id);
        cr_assert_eq(t->block_elems, k[i].be);
        cr_assert_eq(t->block_bytes, k[i].bb);
    }
    cr_assert_null(sl_type_get(4), "ids 4 and 5 were removed from ggml");
    uint64_t b;
    cr_assert_eq(sl_type_row_bytes(SL_TYPE_Q8_0, UINT64_MAX - 31, &b, NULL), SL_ERANGE);
}

/* sl_grow (common/sl_grow.h), which the writers and the network buffers
 * share: doubling from `first`, nothing done when there is room, and a
 * size that would overflow refused with the buffer left as it was. */
Test(types, grow_doubles_and_refuses_overflow)
{
    void *p = NULL;
    size_t cap = 0;
    cr_assert_eq(sl_grow(&p, &cap, 10, 64), 0);
    cr_assert_eq(cap, 64);
    void *was = p;
    cr_assert_eq(sl_grow(&p, &cap, 64, 64), 0);
    cr_assert(p == was && cap == 64, "room enough: untouched");
    cr_assert_eq(sl_grow(&p, &cap, 300, 64), 0);
    cr_assert_eq(cap, 512);
    memset(p, 7, 300);
    cr_assert_eq(sl_grow(&p, &cap, SIZE_MAX, 64), -1);
    cr_assert_eq(cap, 512);
    cr_assert_eq(((unsigned char *)p)[299], 7);
    free(p);
}
