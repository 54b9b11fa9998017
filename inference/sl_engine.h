/* sl_engine.h - the CPU forward pass over a batch of sequences.
 *
 * One call advances any mix of sequences: a decoding sequence brings one
 * token, a prompt brings a chunk.  Every weight matrix is read once per
 * batch step and multiplied against all the batch's tokens (sl_kernels.h).
 * A sequence's logits are bitwise the same whatever else is in the batch,
 * however its prompt is chunked and at any thread count; they depend only
 * on the model and the ISA level. */
#ifndef SL_ENGINE_H
#define SL_ENGINE_H

#include <stdint.h>

#include "sl_error.h"
#include "sl_kernels.h"
#include "sl_kv.h"
#include "sl_model.h"

typedef struct sl_engine_cfg {
    int n_threads;        /* 0: every worker core of the plan */
    int isa;              /* -1: sl_isa_select() */
    int max_batch_tokens; /* tokens per internal step (0: 512); larger calls are split */
    int max_seqs;         /* KV sequence slots (0: 64) */
    int kv_blocks;        /* KV pool size in blocks (0: full contexts for min(max_seqs, 4)) */
    int ctx;              /* positions per sequence (0: the model's context length) */
    int pin;              /* pin threads to the plan's cores (workers always try when >0) */
    int dp_cores;         /* cores kept off the plan for a data plane */
    int unfused;          /* run each step as its own pass (RoPE and the KV write, SwiGLU, quantizing a
                             product's input) instead of in the tasks of the product or attention
                             before it: the same bits, slower; for tests and A/B timing */
} sl_engine_cfg;

typedef struct sl_engine sl_engine;

/* What one sequence brings to a batch: n tokens at positions pos..pos+n-1.
 * Positions before pos must have been computed by earlier calls.  With
 * all_logits every token's logits are returned, else only the last's. */
typedef struct sl_chunk {
    int seq;
    int pos;
    int n;
    const int32_t *tokens;
    int all_logits;
} sl_chunk;

sl_status sl_engine_create(const sl_model *m, const sl_engine_cfg *cfg, sl_engine **out, sl_err *err);
void sl_engine_destroy(sl_engine *e);

/* Runs the chunks (each sequence at most once per call) and writes their
 * logits rows, in chunk order, to logits (rows x vocab).  Bad token ids,
 * positions past the context, unknown sequences and an exhausted KV pool
 * are typed errors, reported before anything is computed. */
sl_status sl_engine_forward(sl_engine *e, const sl_chunk *c, int n, float *logits, sl_err *err);

/* A tap sees the float input of every matrix product as it is made: nt
 * tokens of k values for `layer` (n_layers for the classifier).  The
 * optimizer's calibration and the quality gate's per-layer errors read
 * the model through it.  Called on the engine's calling thread, between
 * the input's preparation and the product; NULL turns it off. */
typedef enum sl_tap_point {
    SL_TAP_ATTN_IN, /* RMSNorm'd residual: input of attn_q, attn_k, attn_v */
    SL_TAP_WO_IN,   /* attention output: input of attn_output */
    SL_TAP_FFN_IN,  /* RMSNorm'd residual: input of ffn_gate, ffn_up */
    SL_TAP_DOWN_IN, /* SwiGLU output: input of ffn_down */
    SL_TAP_OUT_IN,  /* final RMSNorm: input of the classifier */
    SL_TAP_COUNT
} sl_tap_point;
typedef void (*sl_tap_fn)(void *ctx, int layer, sl_tap_point at, const float *x, int nt, int k);
void sl_engine_set_tap(sl_engine *e, sl_tap_fn fn, void *ctx);

/* Runs n_tasks calls of fn on the engine's own (pinned) threads, taken
 * as they free up; returns when all are done.  For measurements that must
 * run where the forward pass does (the bench's bandwidth probe). */
void sl_engine_run(sl_engine *e, void (*fn)(void *ctx, int task, int thread), void *ctx, int n_tasks);

sl_kv *sl_engine_kv(sl_engine *e);
const sl_kernels *sl_engine_kernels(const sl_engine *e);
int sl_engine_threads(const sl_engine *e);
int sl_engine_pinned(const sl_engine *e);
int sl_engine_ctx(const sl_engine *e);
const sl_model *sl_engine_model(const sl_engine *e);

#endif
