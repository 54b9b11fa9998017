/* sl_model.h - a Llama model as a view over a mapped GGUF image: the
 * hyper-parameters from its metadata and, per weight, a pointer into the
 * mapping.  Nothing is copied; kernels read blocks where they lie. */
#ifndef SL_MODEL_H
#define SL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_gguf.h"
#include "sl_tokenizer.h"

/* A weight matrix: rows x cols, row r at data + r * row_bytes. */
typedef struct sl_wmat {
    const uint8_t *data;
    uint32_t type;  /* ggml type id */
    int wt;         /* sl_wtype */
    int rows, cols;
    size_t row_bytes;
    /* W8A8 only: the rows' scales ("<name>_scale") and the calibrated input
     * scale ("<name minus weight>input_scale"; 0 when absent: per token) */
    const float *w_scale;
    float in_scale;
} sl_wmat;

/* Row r of a weight matrix as floats, whatever its type (W8A8 included). */
sl_status sl_wmat_row_f32(const sl_wmat *w, int r, float *out, sl_err *err);

typedef struct sl_layer {
    const float *attn_norm, *ffn_norm;
    sl_wmat wq, wk, wv, wo, w_gate, w_down, w_up;
} sl_layer;

typedef struct sl_model {
    sl_gguf *g;
    sl_tokenizer *tok;
    char name[128];
    int dim, hidden, n_layers, n_heads, n_kv_heads, head_dim, kv_dim, n_rot, vocab, ctx;
    float eps, theta;
    sl_wmat tok_embd;
    const float *out_norm;
    sl_wmat output;       /* the classifier: token_embd when tied */
    bool tied;
    bool stop_at_bos;     /* vocabulary imported from llama2.c: run.c stops at BOS */
    sl_layer *layers;
    uint64_t weight_bytes; /* bytes of every matrix read per token (classifier included) */
} sl_model;

/* Opens and checks an image (flags as sl_gguf_open).  Every tensor the
 * forward pass reads must be present with the right shape and a type the
 * kernels support; anything else is a typed error naming the tensor. */
sl_status sl_model_open(const char *path, unsigned flags, sl_model **out, sl_err *err);
/* The same over an already parsed image, which the model then owns. */
sl_status sl_model_from_gguf(sl_gguf *g, sl_model **out, sl_err *err);
void sl_model_close(sl_model *m);

#endif
