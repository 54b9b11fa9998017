/* model_write.c - from an sl_model_src to a GGUF image: Llama keys, the
 * vocabulary, the type policy and row-by-row conversion of each tensor. */
#include <stdlib.h>
#include <string.h>

#include "sl_gguf_write.h"
#include "sl_model_src.h"
#include "sl_types.h"

void sl_vocab_free(sl_vocab *v)
{
    free(v->tokens);
    free(v->scores);
    free(v->types);
    free(v->merges);
    free(v->arena);
    memset(v, 0, sizeof *v);
}

void sl_model_src_free(sl_model_src *m)
{
    for (int i = 0; i < m->n_maps; i++)
        sl_map_release(&m->maps[i]);
    for (int i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    sl_gguf_close(m->owned_gguf);
    sl_vocab_free(&m->vocab);
    free(m->tensors);
    memset(m, 0, sizeof *m);
}

sl_status sl_model_src_add_map(sl_model_src *m, const char *path, const sl_map **out, sl_err *err)
{
    if (m->n_maps == (int)(sizeof m->maps / sizeof m->maps[0]))
        return sl_err_set(err, SL_ERANGE, "too many source files (at most %zu)", sizeof m->maps / sizeof m->maps[0]);
    sl_status st = sl_map_file(path, &m->maps[m->n_maps], err);
    if (st)
        return st;
    *out = &m->maps[m->n_maps++];
    return SL_OK;
}

sl_status sl_model_src_own(sl_model_src *m, void *p, sl_err *err)
{
    if (!p)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    if (m->n_owned == m->cap_owned) {
        const int cap = m->cap_owned ? 2 * m->cap_owned : 16;
        void **n = realloc(m->owned, sizeof *n * (size_t)cap);
        if (!n) {
            free(p);
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        m->owned = n;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return SL_OK;
}

sl_src_tensor *sl_model_src_add(sl_model_src *m, const char *name, uint32_t n_dims, const uint64_t *ne, sl_err *err)
{
    sl_src_tensor *p = realloc(m->tensors, (m->n_tensors + 1) * sizeof *p);
    if (!p) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    m->tensors = p;
    sl_src_tensor *t = &p[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n_dims;
    for (int d = 0; d < 4; d++)
        t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->type = SL_TYPE_F32;
    return t;
}

uint32_t sl_llama_ftype(uint32_t type)
{
    switch (type) {
    case SL_TYPE_F32: return 0;
    case SL_TYPE_F16: return 1;
    case SL_TYPE_Q4_0: return 2;
    case SL_TYPE_Q4_1: return 3;
    case SL_TYPE_Q8_0: return 7;
    case SL_TYPE_Q4_K: return 14; /* MOSTLY_Q4_K_S */
    case SL_TYPE_Q6_K: return 18;
    case SL_TYPE_IQ4_NL: return 25;
    case SL_TYPE_BF16: return 32;
    }
    return 0;
}

uint32_t sl_policy_type(uint32_t requested, const sl_src_tensor *t, uint32_t src_type, const char **why)
{
    *why = NULL;
    if (requested == SL_TYPE_KEEP) /* bytes are copied as they are */
        return src_type;
    uint32_t want = requested;
    const sl_type_traits *tt = sl_type_get(want);
    if (!tt || !tt->convertible)
        want = SL_TYPE_F32;
    if (t->n_dims == 1 && want != SL_TYPE_F32) {
        *why = "1-D tensors (norms) stay f32";
        return SL_TYPE_F32;
    }
    tt = sl_type_get(want);
    if (t->ne[0] % tt->block_elems == 0)
        return want;
    /* a super-block type's nearest 32-wide kin, as llama-quantize falls back */
    if (t->ne[0] % SL_QK == 0 && (want == SL_TYPE_Q4_K || want == SL_TYPE_Q6_K || want == SL_TYPE_NF4)) {
        *why = want == SL_TYPE_Q4_K   ? "rows are not whole 256-blocks: q4_1 instead of q4_K"
               : want == SL_TYPE_Q6_K ? "rows are not whole 256-blocks: q8_0 instead of q6_K"
                                      : "rows are not whole 256-blocks: iq4_nl instead of nf4";
        return want == SL_TYPE_Q4_K ? SL_TYPE_Q4_1 : want == SL_TYPE_Q6_K ? SL_TYPE_Q8_0 : SL_TYPE_IQ4_NL;
    }
    *why = "rows are not whole blocks of the requested type: stored as f16";
    return SL_TYPE_F16;
}

/* The type a source tensor's bytes are in, for the KEEP policy. */
static uint32_t source_type(const sl_src_tensor *t)
{
    return (t->rows || t->scales) ? SL_TYPE_F32 : t->type;
}

typedef struct fill_ctx {
    const sl_src_tensor *t;
    uint32_t out_type;
    uint64_t out_row_bytes, in_row_bytes;
} fill_ctx;

static uint64_t src_row(const sl_src_tensor *t, uint64_t r)
{
    if (!t->perm_heads)
        return r;
    /* Hugging Face keeps each head's rotary pairs as (i, i + hd/2); GGUF's
     * llama layout wants them adjacent (2i, 2i+1). */
    uint64_t hd = t->ne[1] / t->perm_heads;
    uint64_t h = r / hd, i = r % hd;
    return h * hd + (i % 2) * (hd / 2) + i / 2;
}

sl_status sl_src_row_f32(const sl_src_tensor *t, uint64_t r, float *out, sl_err *err)
{
    const uint64_t ncols = t->ne[0], sr = src_row(t, r);
    if (t->rows)
        return t->rows(t, sr, 1, out, err);
    if (t->scales) { /* int8 with one scale per `group` flat elements */
        const int8_t *q = (const int8_t *)t->data;
        for (uint64_t j = 0; j < ncols; j++) {
            uint64_t i = sr * ncols + j;
            float sc;
            memcpy(&sc, t->scales + (i / t->group) * 4, sizeof sc);
            out[j] = (float)q[i] * sc;
        }
        return SL_OK;
    }
    uint64_t rb;
    sl_status st = sl_type_row_bytes(t->type, ncols, &rb, err);
    return st ? st : sl_dequantize_row(t->type, t->data + sr * rb, out, ncols, err);
}

static sl_status fill_rows(void *vctx, const char *name, uint64_t row0, uint64_t n, void *dst, sl_err *err)
{
    (void)name;
    const fill_ctx *c = vctx;
    const sl_src_tensor *t = c->t;
    uint64_t ncols = t->ne[0];
    /* Same type, only reordered: copy bytes, no float round trip. */
    if (!t->rows && !t->scales && t->type == c->out_type) {
        for (uint64_t r = 0; r < n; r++)
            memcpy((uint8_t *)dst + r * c->out_row_bytes, t->data + src_row(t, row0 + r) * c->in_row_bytes,
                   (size_t)c->out_row_bytes);
        return SL_OK;
    }
    float *row = malloc((size_t)ncols * sizeof(float));
    if (!row)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    sl_status st = SL_OK;
    for (uint64_t r = 0; r < n && !st; r++) {
        st = sl_src_row_f32(t, row0 + r, row, err);
        if (!st)
            st = sl_quantize_row(c->out_type, row, (uint8_t *)dst + r * c->out_row_bytes, ncols, err);
        if (st)
            sl_err_prefix(err, st, "row %llu", (unsigned long long)(row0 + r));
    }
    free(row);
    return st;
}

static sl_status set_llama_keys(sl_gguf_writer *w, const sl_model_src *m, uint32_t ftype)
{
    const sl_llama_hparams *hp = &m->hp;
    sl_status st = SL_OK;
    st = st ? st : sl_gw_set_str(w, "general.architecture", "llama");
    st = st ? st : sl_gw_set_str(w, "general.name", m->name[0] ? m->name : "sluice-model");
    st = st ? st : sl_gw_set_u32(w, "general.file_type", ftype);
    st = st ? st : sl_gw_set_u32(w, "llama.context_length", hp->ctx);
    st = st ? st : sl_gw_set_u32(w, "llama.embedding_length", hp->dim);
    st = st ? st : sl_gw_set_u32(w, "llama.feed_forward_length", hp->hidden);
    st = st ? st : sl_gw_set_u32(w, "llama.block_count", hp->n_layers);
    st = st ? st : sl_gw_set_u32(w, "llama.attention.head_count", hp->n_heads);
    st = st ? st : sl_gw_set_u32(w, "llama.attention.head_count_kv", hp->n_kv_heads);
    st = st ? st : sl_gw_set_u32(w, "llama.rope.dimension_count", hp->dim / hp->n_heads);
    st = st ? st : sl_gw_set_f32(w, "llama.attention.layer_norm_rms_epsilon", hp->rms_eps);
    st = st ? st : sl_gw_set_f32(w, "llama.rope.freq_base", hp->rope_theta);
    st = st ? st : sl_gw_set_u32(w, "llama.vocab_size", hp->vocab);
    return st;
}

static sl_status set_vocab_keys(sl_gguf_writer *w, const sl_vocab *v)
{
    sl_status st = SL_OK;
    st = st ? st : sl_gw_set_str(w, "tokenizer.ggml.model", v->model);
    st = st ? st : sl_gw_set_str_arr(w, "tokenizer.ggml.tokens", v->n, v->tokens);
    if (v->scores)
        st = st ? st : sl_gw_set_arr(w, "tokenizer.ggml.scores", SL_GGUF_F32, v->n, v->scores);
    st = st ? st : sl_gw_set_arr(w, "tokenizer.ggml.token_type", SL_GGUF_I32, v->n, v->types);
    if (v->n_merges)
        st = st ? st : sl_gw_set_str_arr(w, "tokenizer.ggml.merges", v->n_merges, v->merges);
    if (v->bos >= 0)
        st = st ? st : sl_gw_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos);
    if (v->eos >= 0)
        st = st ? st : sl_gw_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos);
    if (v->unk >= 0)
        st = st ? st : sl_gw_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk);
    if (strcmp(v->model, "llama") == 0) {
        st = st ? st : sl_gw_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        st = st ? st : sl_gw_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    return st;
}

/* Keys a rewrite must not carry over from a GGUF source. */
static bool regenerated_key(const char *k)
{
    return strcmp(k, "general.alignment") == 0 || strcmp(k, "general.file_type") == 0 ||
           strncmp(k, "sluice.", 7) == 0;
}

sl_status sl_model_write(const sl_model_src *m, const char *path, const sl_write_opts *o, char *checksum_out,
                         sl_err *err)
{
    sl_gguf_writer *w = sl_gw_new();
    fill_ctx *ctx = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *ctx);
    if (!w || !ctx) {
        sl_gw_free(w);
        free(ctx);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    sl_status st = SL_OK;
    /* Types first: general.file_type is the type most weights ended up in. */
    uint64_t count_by_type[64] = {0};
    for (uint32_t i = 0; i < m->n_tensors && !st; i++) {
        const sl_src_tensor *t = &m->tensors[i];
        const char *why = NULL;
        uint32_t out = o->types ? o->types[i] : sl_policy_type(o->type, t, source_type(t), &why);
        if (why && o->report && t->n_dims > 1)
            fprintf(o->report, "  %-28s %s\n", t->name, why);
        ctx[i] = (fill_ctx){.t = t, .out_type = out};
        st = sl_type_row_bytes(out, t->ne[0], &ctx[i].out_row_bytes, err);
        if (!st && !t->rows && !t->scales)
            st = sl_type_row_bytes(t->type, t->ne[0], &ctx[i].in_row_bytes, err);
        if (!st && t->n_dims > 1 && out < 64)
            count_by_type[out] += t->ne[0] * t->ne[1];
    }
    uint32_t major = SL_TYPE_F32;
    for (uint32_t ty = 0; ty < 64; ty++)
        if (count_by_type[ty] > count_by_type[major])
            major = ty;

    if (!st && m->gguf) {
        for (uint64_t i = 0; i < m->gguf->n_kv && !st; i++)
            if (!regenerated_key(m->gguf->kv[i].key))
                st = sl_gw_copy_kv(w, &m->gguf->kv[i]);
        if (!st)
            st = sl_gw_set_u32(w, "general.file_type", sl_llama_ftype(major));
    } else if (!st) {
        st = set_llama_keys(w, m, sl_llama_ftype(major));
        if (!st && m->has_vocab)
            st = set_vocab_keys(w, &m->vocab);
    }
    if (!st) {
        st = sl_gw_set_u32(w, "sluice.format_version", 1);
        st = st ? st : sl_gw_set_str(w, "sluice.recipe", o->recipe ? o->recipe : "");
        if (m->source[0])
            st = st ? st : sl_gw_set_str(w, "sluice.source", m->source);
        if (m->parent_checksum[0])
            st = st ? st : sl_gw_set_str(w, "sluice.parent_checksum", m->parent_checksum);
        if (st)
            sl_err_set(err, st, "out of memory building metadata");
    }
    for (uint32_t i = 0; i < m->n_tensors && !st; i++) {
        const sl_src_tensor *t = &m->tensors[i];
        bool direct = !t->rows && !t->scales && !t->perm_heads && t->type == ctx[i].out_type;
        if (direct)
            st = sl_gw_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, err);
        else
            st = sl_gw_add_tensor_fill(w, t->name, ctx[i].out_type, t->n_dims, t->ne, fill_rows, &ctx[i], err);
    }
    if (!st)
        st = sl_gw_write(w, path, checksum_out, err);
    sl_gw_free(w);
    free(ctx);
    return st;
}
