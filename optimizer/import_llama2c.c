/* import_llama2c.c - llama2.c checkpoints: the float32 format of run.c and
 * the version-2 Q8 export of runq.c ("ak42"), plus llama2.c tokenizer.bin. */
#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_le.h"
#include "sl_model_src.h"
#include "sl_types.h"

#define MAX_DIM (1u << 20)

static int32_t rd_i32(const uint8_t *p) { return (int32_t)sl_le_load_u32(p); }

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The 7-int config shared by both formats, checked for sense. */
static sl_status parse_config(const uint8_t *p, sl_llama_hparams *hp, bool *shared, sl_err *err)
{
    int32_t c[7];
    for (int i = 0; i < 7; i++)
        c[i] = rd_i32(p + 4 * i);
    *shared = c[5] > 0;
    int64_t vocab = c[5] < 0 ? -(int64_t)c[5] : c[5];
    if (c[0] <= 0 || c[1] <= 0 || c[2] <= 0 || c[3] <= 0 || c[4] <= 0 || vocab == 0 || c[6] <= 0 ||
        (uint32_t)c[0] > MAX_DIM || (uint32_t)c[1] > MAX_DIM || c[2] > 4096 || (uint32_t)c[3] > MAX_DIM ||
        vocab > (int64_t)MAX_DIM * 4 || (uint32_t)c[6] > MAX_DIM)
        return sl_err_set(err, SL_EFORMAT,
                          "implausible llama2.c config dim=%d hidden=%d layers=%d heads=%d kv_heads=%d vocab=%d seq_len=%d",
                          c[0], c[1], c[2], c[3], c[4], c[5], c[6]);
    if (c[0] % c[3] != 0 || c[3] % c[4] != 0 || (c[0] / c[3]) % 2 != 0)
        return sl_err_set(err, SL_EFORMAT,
                          "llama2.c config: dim %d must split into %d heads of even size, and heads into %d KV heads",
                          c[0], c[3], c[4]);
    *hp = (sl_llama_hparams){.dim = (uint32_t)c[0], .hidden = (uint32_t)c[1], .n_layers = (uint32_t)c[2],
                             .n_heads = (uint32_t)c[3], .n_kv_heads = (uint32_t)c[4], .vocab = (uint32_t)vocab,
                             .ctx = (uint32_t)c[6], .rms_eps = 1e-5f, .rope_theta = 10000.0f, .tied = *shared};
    return SL_OK;
}

/* Matrices of one layer in llama2.c order, with their GGUF names and
 * shapes (ne[0] = input width). */
typedef struct wdesc {
    const char *gguf;
    uint64_t in, out;
} wdesc;

static void layer_mats(const sl_llama_hparams *hp, wdesc w[7])
{
    uint64_t kv = (uint64_t)hp->dim * hp->n_kv_heads / hp->n_heads;
    w[0] = (wdesc){"attn_q", hp->dim, hp->dim};
    w[1] = (wdesc){"attn_k", hp->dim, kv};
    w[2] = (wdesc){"attn_v", hp->dim, kv};
    w[3] = (wdesc){"attn_output", hp->dim, hp->dim};
    w[4] = (wdesc){"ffn_gate", hp->dim, hp->hidden};
    w[5] = (wdesc){"ffn_down", hp->hidden, hp->dim};
    w[6] = (wdesc){"ffn_up", hp->dim, hp->hidden};
}

static sl_src_tensor *add2(sl_model_src *m, const char *name, uint64_t in, uint64_t out, sl_err *err)
{
    uint64_t ne[2] = {in, out};
    return sl_model_src_add(m, name, 2, ne, err);
}

static sl_src_tensor *add1(sl_model_src *m, const char *name, uint64_t n, sl_err *err)
{
    return sl_model_src_add(m, name, 1, &n, err);
}

/* Provenance, name and (optionally) the vocabulary: the common tail of
 * both llama2.c importers. */
static sl_status finish(sl_model_src *m, const char *kind, const char *ckpt, const sl_map *map, const char *tokenizer,
                        sl_err *err)
{
    snprintf(m->source, sizeof m->source, "%s:%s", kind, base_name(ckpt));
    sl_checksum_bytes(map->data, map->size, m->parent_checksum);
    snprintf(m->name, sizeof m->name, "%s", base_name(ckpt));
    char *dot = strrchr(m->name, '.');
    if (dot)
        *dot = '\0';
    if (!tokenizer)
        return SL_OK;
    sl_status st = sl_vocab_from_llama2c(tokenizer, m->hp.vocab, &m->vocab, err);
    m->has_vocab = st == SL_OK;
    return st;
}

sl_status sl_import_llama2c(const char *ckpt, const char *tokenizer, sl_model_src *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    const sl_map *map;
    sl_status st = sl_model_src_add_map(m, ckpt, &map, err);
    if (st)
        return st;
    bool shared;
    if (map->size < 28)
        st = sl_err_set(err, SL_EFORMAT, "%s: %zu bytes is too short for a llama2.c header", ckpt, map->size);
    if (!st)
        st = parse_config(map->data, &m->hp, &shared, err);
    if (st)
        goto fail;
    const sl_llama_hparams *hp = &m->hp;
    const uint64_t L = hp->n_layers, dim = hp->dim, hid = hp->hidden, V = hp->vocab;
    const uint64_t kv = dim * hp->n_kv_heads / hp->n_heads, hs = dim / hp->n_heads;
    /* Floats, all products < 2^62 given the caps above. */
    uint64_t want = V * dim + L * dim * 2 + L * dim * dim * 2 + L * kv * dim * 2 + L * hid * dim * 3 + dim +
                    (uint64_t)hp->ctx * hs + (shared ? 0 : V * dim);
    if (map->size != 28 + want * 4) {
        st = sl_err_set(err, SL_EFORMAT, "%s: a llama2.c checkpoint of this config has %llu bytes, the file has %zu",
                        ckpt, (unsigned long long)(28 + want * 4), map->size);
        goto fail;
    }
    const uint8_t *p = map->data + 28;
    const uint8_t *emb = p;
    p += V * dim * 4;
    const uint8_t *rms_att = p;
    p += L * dim * 4;
    const uint8_t *mats[7];
    wdesc w[7];
    layer_mats(hp, w);
    for (int k = 0; k < 7; k++) {
        if (k == 4) { /* rms_ffn sits between wo and w1 */
            mats[k] = p + L * dim * 4;
            p += L * dim * 4;
        } else {
            mats[k] = p;
        }
        p += L * w[k].in * w[k].out * 4;
    }
    const uint8_t *rms_ffn = mats[4] - L * dim * 4;
    const uint8_t *rms_final = p;
    p += dim * 4 + (uint64_t)hp->ctx * hs * 4; /* skip the legacy freq_cis blocks */
    const uint8_t *wcls = shared ? emb : p;

    sl_src_tensor *t;
    char name[96];
    if (!(t = add2(m, "token_embd.weight", dim, V, err)))
        goto oom;
    t->data = emb;
    for (uint64_t l = 0; l < L; l++) {
        snprintf(name, sizeof name, "blk.%llu.attn_norm.weight", (unsigned long long)l);
        if (!(t = add1(m, name, dim, err)))
            goto oom;
        t->data = rms_att + l * dim * 4;
        for (int k = 0; k < 7; k++) {
            if (k == 4) {
                snprintf(name, sizeof name, "blk.%llu.ffn_norm.weight", (unsigned long long)l);
                if (!(t = add1(m, name, dim, err)))
                    goto oom;
                t->data = rms_ffn + l * dim * 4;
            }
            snprintf(name, sizeof name, "blk.%llu.%s.weight", (unsigned long long)l, w[k].gguf);
            if (!(t = add2(m, name, w[k].in, w[k].out, err)))
                goto oom;
            t->data = mats[k] + l * w[k].in * w[k].out * 4;
        }
    }
    if (!(t = add1(m, "output_norm.weight", dim, err)))
        goto oom;
    t->data = rms_final;
    if (!shared) {
        if (!(t = add2(m, "output.weight", dim, V, err)))
            goto oom;
        t->data = wcls;
    }
    if ((st = finish(m, "llama2c", ckpt, map, tokenizer, err)))
        goto fail;
    return SL_OK;
oom:
    st = err ? err->code : SL_ENOMEM;
fail:
    sl_model_src_free(m);
    return st;
}

sl_status sl_import_ak42(const char *ckpt, const char *tokenizer, sl_model_src *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    const sl_map *map;
    sl_status st = sl_model_src_add_map(m, ckpt, &map, err);
    if (st)
        return st;
    bool shared;
    if (map->size < 256 || (uint32_t)rd_i32(map->data) != 0x616b3432u) {
        st = sl_err_set(err, SL_EFORMAT, "%s: not a llama2.c Q8 export (no 'ak42' magic in a 256-byte header)", ckpt);
        goto fail;
    }
    if (rd_i32(map->data + 4) != 2) {
        st = sl_err_set(err, SL_EUNSUPPORTED, "%s: llama2.c export version %d (only version 2, Q8_0, is supported)",
                        ckpt, rd_i32(map->data + 4));
        goto fail;
    }
    if ((st = parse_config(map->data + 8, &m->hp, &shared, err)))
        goto fail;
    uint8_t shared_flag = map->data[36];
    int32_t gs = rd_i32(map->data + 37);
    if (shared_flag > 1 || gs <= 0 || gs > 4096) {
        st = sl_err_set(err, SL_EFORMAT, "%s: bad shared-classifier flag %u or group size %d", ckpt, shared_flag, gs);
        goto fail;
    }
    shared = shared_flag == 1;
    m->hp.tied = shared;
    const sl_llama_hparams *hp = &m->hp;
    const uint64_t L = hp->n_layers, dim = hp->dim, V = hp->vocab;
    wdesc w[7];
    layer_mats(hp, w);
    /* Every quantized tensor must be whole groups; then sizes add up. */
    uint64_t want = 256 + (L * dim * 2 + dim) * 4;
    uint64_t sizes[9];
    int ns = 0;
    sizes[ns++] = V * dim;
    for (int k = 0; k < 7; k++)
        sizes[ns++] = w[k].in * w[k].out;
    if (!shared)
        sizes[ns++] = V * dim;
    for (int i = 0; i < ns; i++) {
        if (sizes[i] % (uint64_t)gs) {
            st = sl_err_set(err, SL_EFORMAT, "%s: a tensor of %llu elements is not whole groups of %d", ckpt,
                            (unsigned long long)sizes[i], gs);
            goto fail;
        }
        uint64_t per = sizes[i] + sizes[i] / (uint64_t)gs * 4;
        want += (i == 0 || (!shared && i == ns - 1)) ? per : per * L;
    }
    if (map->size != want) {
        st = sl_err_set(err, SL_EFORMAT, "%s: a Q8 export of this config has %llu bytes, the file has %zu", ckpt,
                        (unsigned long long)want, map->size);
        goto fail;
    }
    const uint8_t *p = map->data + 256;
    const uint8_t *rms_att = p, *rms_ffn = p + L * dim * 4, *rms_final = p + 2 * L * dim * 4;
    p += (2 * L * dim + dim) * 4;
    sl_src_tensor *t;
    char name[96];
#define Q8_TENSOR(t_, n_)                                                                                              \
    do {                                                                                                               \
        (t_)->data = p;                                                                                                \
        (t_)->scales = p + (n_);                                                                                       \
        (t_)->group = (uint32_t)gs;                                                                                    \
        p += (n_) + (n_) / (uint64_t)gs * 4;                                                                           \
    } while (0)
    if (!(t = add2(m, "token_embd.weight", dim, V, err)))
        goto oom;
    Q8_TENSOR(t, V * dim);
    for (uint64_t l = 0; l < L; l++) {
        snprintf(name, sizeof name, "blk.%llu.attn_norm.weight", (unsigned long long)l);
        if (!(t = add1(m, name, dim, err)))
            goto oom;
        t->data = rms_att + l * dim * 4;
        snprintf(name, sizeof name, "blk.%llu.ffn_norm.weight", (unsigned long long)l);
        if (!(t = add1(m, name, dim, err)))
            goto oom;
        t->data = rms_ffn + l * dim * 4;
    }
    for (int k = 0; k < 7; k++)
        for (uint64_t l = 0; l < L; l++) {
            snprintf(name, sizeof name, "blk.%llu.%s.weight", (unsigned long long)l, w[k].gguf);
            if (!(t = add2(m, name, w[k].in, w[k].out, err)))
                goto oom;
            Q8_TENSOR(t, w[k].in * w[k].out);
        }
    if (!shared) {
        if (!(t = add2(m, "output.weight", dim, V, err)))
            goto oom;
        Q8_TENSOR(t, V * dim);
    }
#undef Q8_TENSOR
    if (!(t = add1(m, "output_norm.weight", dim, err)))
        goto oom;
    t->data = rms_final;
    if ((st = finish(m, "llama2c-q8", ckpt, map, tokenizer, err)))
        goto fail;
    return SL_OK;
oom:
    st = err ? err->code : SL_ENOMEM;
fail:
    sl_model_src_free(m);
    return st;
}

sl_status sl_vocab_from_llama2c(const char *path, uint32_t vocab_size, sl_vocab *v, sl_err *err)
{
    memset(v, 0, sizeof *v);
    sl_map map;
    sl_status st = sl_map_file(path, &map, err);
    if (st)
        return st;
    const uint8_t *p = map.data, *end = map.data + map.size;
    /* Space for pieces: each ' ' may grow to 3 bytes (U+2581). */
    v->tokens = calloc(vocab_size, sizeof *v->tokens);
    v->scores = calloc(vocab_size, sizeof *v->scores);
    v->types = calloc(vocab_size, sizeof *v->types);
    v->arena = malloc(map.size * 3 + 16);
    if (!v->tokens || !v->scores || !v->types || !v->arena) {
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
        goto fail;
    }
    if (map.size < 4 || rd_i32(p) <= 0 || rd_i32(p) > 65536) {
        st = sl_err_set(err, SL_EFORMAT, "%s: bad max_token_length header", path);
        goto fail;
    }
    p += 4;
    char *a = v->arena;
    for (uint32_t i = 0; i < vocab_size; i++) {
        if (end - p < 8) {
            st = sl_err_set(err, SL_EFORMAT, "%s: truncated at token %u of %u", path, i, vocab_size);
            goto fail;
        }
        v->scores[i] = sl_le_load_f32(p);
        int32_t len = rd_i32(p + 4);
        p += 8;
        if (len < 0 || len > end - p) {
            st = sl_err_set(err, SL_EFORMAT, "%s: token %u claims %d bytes, %td remain", path, i, len, end - p);
            goto fail;
        }
        const char *s = (const char *)p;
        p += len;
        v->tokens[i].ptr = a;
        if (len == 5 && memcmp(s, "\n<s>\n", 5) == 0) {
            memcpy(a, "<s>", 3);
            a += 3;
        } else if (len == 6 && memcmp(s, "\n</s>\n", 6) == 0) {
            memcpy(a, "</s>", 4);
            a += 4;
        } else {
            for (int32_t j = 0; j < len; j++) {
                if (s[j] == ' ') {
                    memcpy(a, "\xe2\x96\x81", 3); /* SentencePiece's word boundary mark */
                    a += 3;
                } else {
                    *a++ = s[j];
                }
            }
        }
        v->tokens[i].len = (uint64_t)(a - v->tokens[i].ptr);
        if (sl_is_byte_piece(v->tokens[i].ptr, v->tokens[i].len))
            v->types[i] = SL_TOK_BYTE;
        else if (i == 0)
            v->types[i] = SL_TOK_UNKNOWN;
        else if (i == 1 || i == 2)
            v->types[i] = SL_TOK_CONTROL;
        else
            v->types[i] = SL_TOK_NORMAL;
    }
    if (p != end) {
        st = sl_err_set(err, SL_EFORMAT, "%s: %td bytes left after %u tokens (does the vocabulary size match?)", path,
                        end - p, vocab_size);
        goto fail;
    }
    sl_map_release(&map);
    v->model = "llama";
    v->n = vocab_size;
    v->unk = 0;
    v->bos = 1;
    v->eos = 2;
    return SL_OK;
fail:
    sl_map_release(&map);
    sl_vocab_free(v);
    return st;
}
