/* model.c - the model view (sl_model.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_kernels.h"
#include "sl_model.h"
#include "sl_types.h"

static sl_status get_dim(const sl_gguf *g, const char *key, int *out, sl_err *err)
{
    uint64_t v;
    sl_status st = sl_gguf_get_u64(g, key, &v, err);
    if (st)
        return st;
    if (v == 0 || v > (1u << 20))
        return sl_err_set(err, SL_ERANGE, "%s = %llu is outside 1..1048576", key, (unsigned long long)v);
    *out = (int)v;
    return SL_OK;
}

/* A W8A8 matrix's companions: "<name>_scale" (f32, one per row, finite
 * and positive or zero) and, for static activation scales,
 * "<prefix>.input_scale" (f32, one value > 0). */
static sl_status bind_w8a8(const sl_gguf *g, const char *name, sl_wmat *w, sl_err *err)
{
    char n[128];
    if (w->cols > SL_W8A8_MAX_K)
        return sl_err_set(err, SL_ERANGE, "tensor %s: w8a8 rows of %d exceed %d (int32 sums)", name, w->cols,
                          SL_W8A8_MAX_K);
    snprintf(n, sizeof n, "%s_scale", name);
    const sl_gguf_tensor *t = sl_gguf_find_tensor(g, n);
    if (!t || t->type != SL_TYPE_F32 || t->n_elems != (uint64_t)w->rows)
        return sl_err_set(err, SL_EFORMAT, "w8a8 tensor %s needs %s: %d f32 row scales", name, n, w->rows);
    w->w_scale = (const float *)(const void *)t->data;
    for (int r = 0; r < w->rows; r++)
        if (!(w->w_scale[r] >= 0.0f && w->w_scale[r] < 1e30f))
            return sl_err_set(err, SL_ERANGE, "%s[%d] = %g is not a scale", n, r, (double)w->w_scale[r]);
    const size_t len = strlen(name);
    if (len > 6 && strcmp(name + len - 6, "weight") == 0) {
        snprintf(n, sizeof n, "%.*sinput_scale", (int)(len - 6), name);
        if ((t = sl_gguf_find_tensor(g, n))) {
            if (t->type != SL_TYPE_F32 || t->n_elems != 1)
                return sl_err_set(err, SL_EFORMAT, "%s must be one f32 value", n);
            memcpy(&w->in_scale, t->data, sizeof(float));
            if (!(w->in_scale > 0.0f && w->in_scale < 1e30f))
                return sl_err_set(err, SL_ERANGE, "%s = %g is not a scale", n, (double)w->in_scale);
        }
    }
    return SL_OK;
}

/* Matrices reading one input quantize it once: all W8A8 with one input
 * scale, or none. */
static sl_status same_input(const sl_wmat *const *w, int n, const char *what, int layer, sl_err *err)
{
    for (int i = 1; i < n; i++)
        if ((w[i]->wt == SL_W_W8A8) != (w[0]->wt == SL_W_W8A8) ||
            (w[0]->wt == SL_W_W8A8 && w[i]->in_scale != w[0]->in_scale))
            return sl_err_set(err, SL_EFORMAT,
                              "layer %d: the %s matrices share an input, so either all or none are w8a8, with one "
                              "input scale",
                              layer, what);
    return SL_OK;
}

static sl_status bind_mat(const sl_gguf *g, const char *name, int rows, int cols, sl_wmat *w, sl_err *err)
{
    const sl_gguf_tensor *t = sl_gguf_find_tensor(g, name);
    if (!t)
        return sl_err_set(err, SL_ENOTFOUND, "tensor %s is missing", name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows)
        return sl_err_set(err, SL_EFORMAT, "tensor %s is [%llu x %llu], expected [%d x %d]", name,
                          (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], cols, rows);
    int wt = sl_wtype_from_ggml(t->type);
    if (wt < 0) {
        const sl_type_traits *tr = sl_type_get(t->type);
        return sl_err_set(err, SL_EUNSUPPORTED, "tensor %s has type %s, which the CPU engine does not compute with", name,
                          tr ? tr->name : "unknown");
    }
    uint64_t rb;
    sl_status st = sl_type_row_bytes(t->type, (uint64_t)cols, &rb, err);
    if (st)
        return sl_err_prefix(err, st, "tensor %s", name);
    *w = (sl_wmat){t->data, t->type, wt, rows, cols, (size_t)rb, NULL, 0.0f};
    return wt == SL_W_W8A8 ? bind_w8a8(g, name, w, err) : SL_OK;
}

sl_status sl_wmat_row_f32(const sl_wmat *w, int r, float *out, sl_err *err)
{
    if (r < 0 || r >= w->rows)
        return sl_err_set(err, SL_ERANGE, "row %d of a %d-row matrix", r, w->rows);
    if (w->wt != SL_W_W8A8)
        return sl_dequantize_row(w->type, w->data + (size_t)r * w->row_bytes, out, (uint64_t)w->cols, err);
    const int8_t *q = (const int8_t *)(const void *)(w->data + (size_t)r * w->row_bytes);
    for (int i = 0; i < w->cols; i++)
        out[i] = (float)q[i] * w->w_scale[r];
    return SL_OK;
}

static sl_status bind_norm(const sl_gguf *g, const char *name, int n, const float **out, sl_err *err)
{
    const sl_gguf_tensor *t = sl_gguf_find_tensor(g, name);
    if (!t)
        return sl_err_set(err, SL_ENOTFOUND, "tensor %s is missing", name);
    if (t->type != SL_TYPE_F32 || t->n_elems != (uint64_t)n)
        return sl_err_set(err, SL_EFORMAT, "norm %s must be %d f32 values", name, n);
    *out = (const float *)(const void *)t->data;
    return SL_OK;
}

sl_status sl_model_from_gguf(sl_gguf *g, sl_model **out, sl_err *err)
{
    *out = NULL;
    sl_model *m = calloc(1, sizeof *m);
    if (!m) {
        sl_gguf_close(g);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    m->g = g;
    sl_str arch;
    sl_status st = sl_gguf_get_str(g, "general.architecture", &arch, err);
    if (!st && !(arch.len == 5 && memcmp(arch.ptr, "llama", 5) == 0))
        st = sl_err_set(err, SL_EUNSUPPORTED, "architecture \"%.*s\" is not supported (llama is)",
                        (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
    sl_str nm;
    if (!st && sl_gguf_get_str(g, "general.name", &nm, NULL) == SL_OK)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(nm.len > 127 ? 127 : nm.len), nm.ptr);
    st = st ? st : get_dim(g, "llama.embedding_length", &m->dim, err);
    st = st ? st : get_dim(g, "llama.feed_forward_length", &m->hidden, err);
    st = st ? st : get_dim(g, "llama.block_count", &m->n_layers, err);
    st = st ? st : get_dim(g, "llama.attention.head_count", &m->n_heads, err);
    if (st)
        goto fail;
    m->n_kv_heads = m->n_heads;
    if (sl_gguf_find(g, "llama.attention.head_count_kv") &&
        (st = get_dim(g, "llama.attention.head_count_kv", &m->n_kv_heads, err)))
        goto fail;
    if (m->dim % m->n_heads || m->n_heads % m->n_kv_heads) {
        st = sl_err_set(err, SL_EFORMAT, "dim %d, %d heads, %d KV heads do not divide evenly", m->dim, m->n_heads,
                        m->n_kv_heads);
        goto fail;
    }
    m->head_dim = m->dim / m->n_heads;
    m->kv_dim = m->head_dim * m->n_kv_heads;
    m->n_rot = m->head_dim;
    if (sl_gguf_find(g, "llama.rope.dimension_count") && (st = get_dim(g, "llama.rope.dimension_count", &m->n_rot, err)))
        goto fail;
    if (m->n_rot > m->head_dim || m->n_rot % 2) {
        st = sl_err_set(err, SL_EFORMAT, "rope dimension %d must be even and at most the head size %d", m->n_rot,
                        m->head_dim);
        goto fail;
    }
    m->ctx = 2048;
    if (sl_gguf_find(g, "llama.context_length") && (st = get_dim(g, "llama.context_length", &m->ctx, err)))
        goto fail;
    m->eps = 1e-5f;
    m->theta = 10000.0f;
    if (sl_gguf_find(g, "llama.attention.layer_norm_rms_epsilon") &&
        (st = sl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &m->eps, err)))
        goto fail;
    if (sl_gguf_find(g, "llama.rope.freq_base") && (st = sl_gguf_get_f32(g, "llama.rope.freq_base", &m->theta, err)))
        goto fail;
    if (!(m->eps > 0.0f && m->eps < 1.0f) || !(m->theta > 1.0f && m->theta < 1e12f)) {
        st = sl_err_set(err, SL_ERANGE, "rms eps %g or rope theta %g is out of range", (double)m->eps,
                        (double)m->theta);
        goto fail;
    }
    const sl_gguf_tensor *emb = sl_gguf_find_tensor(g, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[1] == 0 || emb->ne[1] > INT32_MAX / 2) {
        st = sl_err_set(err, SL_EFORMAT, "token_embd.weight is missing or not a matrix");
        goto fail;
    }
    m->vocab = (int)emb->ne[1];
    if ((st = bind_mat(g, "token_embd.weight", m->vocab, m->dim, &m->tok_embd, err)) ||
        (st = bind_norm(g, "output_norm.weight", m->dim, &m->out_norm, err)))
        goto fail;
    if (m->tok_embd.wt == SL_W_W8A8) {
        st = sl_err_set(err, SL_EUNSUPPORTED, "token_embd.weight cannot be w8a8 (rows are looked up, not multiplied)");
        goto fail;
    }
    m->tied = sl_gguf_find_tensor(g, "output.weight") == NULL;
    if (m->tied)
        m->output = m->tok_embd;
    else if ((st = bind_mat(g, "output.weight", m->vocab, m->dim, &m->output, err)))
        goto fail;
    m->layers = calloc((size_t)m->n_layers, sizeof *m->layers);
    if (!m->layers) {
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    m->weight_bytes = (uint64_t)m->output.row_bytes * (uint64_t)m->vocab;
    for (int l = 0; l < m->n_layers; l++) {
        sl_layer *L = &m->layers[l];
        char n[96];
#define MAT(field, suffix, r, c)                                                                                       \
    snprintf(n, sizeof n, "blk.%d." suffix ".weight", l);                                                              \
    if ((st = bind_mat(g, n, r, c, &L->field, err)))                                                                   \
        goto fail;                                                                                                     \
    m->weight_bytes += (uint64_t)L->field.row_bytes * (uint64_t)L->field.rows;
        MAT(wq, "attn_q", m->dim, m->dim)
        MAT(wk, "attn_k", m->kv_dim, m->dim)
        MAT(wv, "attn_v", m->kv_dim, m->dim)
        MAT(wo, "attn_output", m->dim, m->dim)
        MAT(w_gate, "ffn_gate", m->hidden, m->dim)
        MAT(w_down, "ffn_down", m->dim, m->hidden)
        MAT(w_up, "ffn_up", m->hidden, m->dim)
#undef MAT
        if ((st = same_input((const sl_wmat *[]){&L->wq, &L->wk, &L->wv}, 3, "attn_q/k/v", l, err)) ||
            (st = same_input((const sl_wmat *[]){&L->w_gate, &L->w_up}, 2, "ffn_gate/up", l, err)))
            goto fail;
        snprintf(n, sizeof n, "blk.%d.attn_norm.weight", l);
        if ((st = bind_norm(g, n, m->dim, &L->attn_norm, err)))
            goto fail;
        snprintf(n, sizeof n, "blk.%d.ffn_norm.weight", l);
        if ((st = bind_norm(g, n, m->dim, &L->ffn_norm, err)))
            goto fail;
    }
    if ((st = sl_tokenizer_from_gguf(g, &m->tok, err)))
        goto fail;
    if (sl_tok_vocab_size(m->tok) != m->vocab) {
        st = sl_err_set(err, SL_EFORMAT, "the vocabulary has %d tokens but the embedding has %d rows",
                        sl_tok_vocab_size(m->tok), m->vocab);
        goto fail;
    }
    sl_str src;
    m->stop_at_bos = sl_gguf_get_str(g, "sluice.source", &src, NULL) == SL_OK && src.len >= 7 &&
                     memcmp(src.ptr, "llama2c", 7) == 0;
    *out = m;
    return SL_OK;
fail:
    sl_model_close(m);
    return st;
}

sl_status sl_model_open(const char *path, unsigned flags, sl_model **out, sl_err *err)
{
    *out = NULL;
    sl_gguf *g;
    sl_status st = sl_gguf_open(path, flags, &g, err);
    if (st)
        return st;
    st = sl_model_from_gguf(g, out, err);
    return st ? sl_err_prefix(err, st, "%s", path) : SL_OK;
}

void sl_model_close(sl_model *m)
{
    if (!m)
        return;
    sl_tokenizer_free(m->tok);
    free(m->layers);
    sl_gguf_close(m->g);
    free(m);
}
