/* sl_kernels.h - matrix kernels of the CPU engine, one table per ISA level.
 *
 * A kernel computes y[t][r] = dot(W row r, x token t) for a range of rows
 * and a set of tokens.  Weights are read in place, in ggml's block layouts.
 * For quantized weights the activations are first quantized to int8 blocks
 * (sl_block_q8x, one shared scalar quantizer for every ISA level).
 *
 * Batch invariance rests on one rule every kernel keeps: the value for a
 * (row, token) pair is computed by the same sequence of floating-point
 * operations whichever other rows and tokens are in the call, and whatever
 * micro-tile the pair falls in.  Threads split rows, never the reduction. */
#ifndef SL_KERNELS_H
#define SL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_vmath.h"

/* Levels in order; AMX is AVX-512 (VNNI) plus AMX-INT8 tiles for the int8
 * products of several tokens, with the same bits as AVX-512. */
typedef enum sl_isa { SL_ISA_SCALAR = 0, SL_ISA_AVX2 = 1, SL_ISA_AVX512 = 2, SL_ISA_AMX = 3, SL_ISA_COUNT } sl_isa;

/* Weight types the engine multiplies with (index into sl_kernels.gemm). */
typedef enum sl_wtype {
    SL_W_F32, SL_W_F16, SL_W_BF16, SL_W_Q8_0, SL_W_Q4_0, SL_W_Q4_1, SL_W_Q4_K, SL_W_Q6_K, SL_W_IQ4_NL, SL_W_NF4,
    SL_W_W8A8, SL_W_COUNT
} sl_wtype;

/* An activation block: 32 int8 values, their float scale and their sum (the
 * sum serves Q4_1's offset term). */
typedef struct sl_block_q8x {
    float d;
    int32_t s;
    int8_t qs[32];
} sl_block_q8x;

/* y[t * ldy + r] for r in [r0, r1), t in [0, nt).  x points at nt tokens of
 * k elements each: floats (float weight types) or quantized activations in
 * the level's layout (sl_kernels.act_quant), token t at x + t * x_stride
 * bytes. */
typedef void (*sl_gemm_fn)(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *x, size_t x_stride,
                           int nt, int k, float *y, int ldy);

/* gemm's bits from the input prepared by sl_kernels.xprep for all nt
 * tokens (the level's tile form) instead of from x. */
typedef void (*sl_gemm_xp_fn)(const uint8_t *w, size_t row_bytes, int r0, int r1, const void *xp, int nt, int k,
                              float *y, int ldy);

typedef struct sl_kernels {
    sl_isa isa;
    const char *name;             /* "scalar", "avx2", "avx512", "amx" */
    sl_gemm_fn gemm[SL_W_COUNT];
    const char *gemm_name[SL_W_COUNT]; /* e.g. "avx512-vnni q8_0 x q8" */
    /* Quantized activations in the layout this level's int8 kernels read:
     * bytes for one token of k values, and the quantizer.  The values are
     * always sl_quantize_act's; only their arrangement differs.  Blocks of
     * 32 values stand alone: block b depends on x[32b..32b+31] only and
     * sits at act_bytes(32 * b), so a slice of a row can be quantized by
     * itself (the engine's attention and gate/up tasks do). */
    size_t (*act_bytes)(int k);
    void (*act_quant)(const float *x, void *out, int k);
    /* Optional (NULL where a level has none): quantized activations
     * rearranged once for a whole product instead of once per call, for the
     * types whose gemm_xp is set.  xprep_bytes(nt, k): the size for nt
     * tokens of k values, 0 where gemm is as fast (too few tokens);
     * xprep(x, x_stride, nt, k, out) builds it from act_quant's layout. */
    size_t (*xprep_bytes)(int nt, int k);
    void (*xprep)(const void *x, size_t x_stride, int nt, int k, void *out);
    sl_gemm_xp_fn gemm_xp[SL_W_COUNT];
    /* Attention over one head and n_pos consecutive cached positions (rows
     * `stride` floats apart): out[p] = (q . k_p) / scale, and
     * o += sum_p att[p] * v_p, positions in order. */
    void (*attn_scores)(const float *q, const float *k, size_t stride, int n_pos, int hd, float scale, float *out);
    void (*attn_accum)(float *o, const float *att, const float *v, size_t stride, int n_pos, int hd);
    /* element-wise steps, the same bits at every level (sl_vmath.h) */
    sl_rmsnorm_fn rmsnorm;
    sl_swiglu_fn swiglu;
    sl_exp_shift_fn exp_shift;
} sl_kernels;

/* Kernels of an ISA level, or NULL where this CPU lacks the instructions. */
const sl_kernels *sl_kernels_for(sl_isa isa);
/* The best level this CPU has, lowered by SLUICE_ISA=scalar|avx2|avx512|amx if
 * set (a level above the CPU's is refused with a message on stderr and the
 * best available one is used). */
sl_isa sl_isa_select(void);
const char *sl_isa_name(sl_isa isa);
/* Parses "scalar", "avx2", "avx512", "amx"; -1 if none. */
int sl_isa_parse(const char *s);
/* Space-separated list of the CPU features the kernels care about. */
const char *sl_cpu_features(void);

/* Maps a ggml tensor type id to the engine's weight type; -1 if unsupported. */
int sl_wtype_from_ggml(uint32_t type);
/* Whether the weight type takes quantized activations (NF4's codes are
 * not integers: it multiplies float activations, as bitsandbytes does). */
static inline int sl_wtype_quantized(int wt) { return wt >= SL_W_Q8_0 && wt != SL_W_NF4 && wt != SL_W_W8A8; }

/* W8A8: int8 weights with a float scale per output row, int8 activations
 * with one scale per token.  The kernel's y is the exact integer dot
 * product (as a float); the engine applies row scale x token scale.  The
 * activations of one token: this header, then k int8 values zero-padded
 * to a multiple of 64. */
typedef struct sl_w8a8_act {
    float s;     /* the token's scale */
    int32_t sum; /* sum of its int8 values */
    int32_t pad_[14];
} sl_w8a8_act;
#define SL_W8A8_MAX_K 131072 /* k x 127 x 127 stays inside int32 */
size_t sl_w8a8_act_bytes(int k);
/* scale > 0: static (values beyond +-127 scale clip); 0: dynamic,
 * amax / 127.  Rounding as sl_quantize_act's. */
void sl_w8a8_act_quant(const float *x, void *out, int k, float scale);

/* Quantizes k floats (k a multiple of 32) to k/32 activation blocks:
 * d = amax/127, q = round-half-away(x/d), the same on every ISA level. */
void sl_quantize_act(const float *x, sl_block_q8x *q, int k);
/* The AVX-512 twin of sl_quantize_act for one 32-value block (only on a
 * CPU with AVX-512; tests check that it gives the same bytes). */
void sl_quantize_block_avx512(const float *x, int8_t *qs, float *d, int32_t *s);
/* The block layout above as an act_bytes / act_quant pair (scalar, AVX2). */
size_t sl_act_bytes_blocks(int k);
void sl_act_quant_blocks(const float *x, void *out, int k);

/* Per-ISA tables (kernels_*.c). */
extern const sl_kernels sl_kernels_scalar;
extern const sl_kernels sl_kernels_avx2;
extern const sl_kernels sl_kernels_avx512;
extern const sl_kernels sl_kernels_amx;

#endif
