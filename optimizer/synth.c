/* synth.c - random-weight Llama models of real shapes, for speed work and
 * demos.  Weights are generated row by row straight into the requested
 * type (no float copy of the model), from a counter-based generator keyed
 * by (seed, tensor name, row): the same seed gives the same bytes whatever
 * the order of generation. */
#include <stdlib.h>
#include <string.h>

#include "sl_model_src.h"
#include "sl_synth.h"

static const sl_synth_shape k_shapes[] = {
    /* name, dim, hidden, layers, heads, kv heads, vocab, ctx, rope theta, tied */
    {"tiny", 128, 512, 4, 4, 2, 512, 512, 10000.0f, true},
    {"110m", 768, 2048, 12, 12, 12, 32000, 1024, 10000.0f, true},
    {"1b", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, false},
    {"8b", 4096, 14336, 32, 32, 8, 128256, 8192, 500000.0f, false},
};

const sl_synth_shape *sl_synth_find(const char *name)
{
    for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
        if (strcmp(k_shapes[i].name, name) == 0)
            return &k_shapes[i];
    return NULL;
}

const char *sl_synth_names(void)
{
    return "tiny, 110m, 1b, 8b";
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

typedef struct synth_ctx {
    uint64_t seed;
} synth_ctx;

/* Norm weights: 1 +- 0.1 uniform; matrices: approximately N(0, 0.02^2)
 * (Irwin-Hall sum of four 16-bit uniforms, ample for speed and for
 * quantization statistics). */
static sl_status synth_rows(const sl_src_tensor *t, uint64_t row0, uint64_t n, float *dst, sl_err *err)
{
    (void)err;
    const synth_ctx *c = t->ctx;
    const uint64_t key = mix64(c->seed ^ name_hash(t->name));
    const uint64_t ncols = t->ne[0];
    const float scale = 0.02f / (65536.0f * 0.57735027f);
    for (uint64_t r = 0; r < n; r++) {
        uint64_t s = mix64(key + (row0 + r) * 0x9e3779b97f4a7c15ull);
        float *out = dst + r * ncols;
        for (uint64_t j = 0; j < ncols; j++) {
            uint64_t x = mix64(s + j * 0x9e3779b97f4a7c15ull);
            if (t->n_dims == 1) {
                out[j] = 1.0f + ((float)(x >> 40) / 16777216.0f - 0.5f) * 0.2f;
            } else {
                float sum = (float)(x & 0xffff) + (float)((x >> 16) & 0xffff) + (float)((x >> 32) & 0xffff) +
                            (float)(x >> 48);
                out[j] = (sum - 2.0f * 65535.0f) * scale;
            }
        }
    }
    return SL_OK;
}

/* Letters in bijective base 26: 0 -> "a", 25 -> "z", 26 -> "aa". */
static size_t letters(uint64_t n, char *out)
{
    char tmp[16];
    size_t k = 0;
    n++;
    while (n > 0 && k < sizeof tmp) {
        n--;
        tmp[k++] = (char)('a' + n % 26);
        n /= 26;
    }
    for (size_t i = 0; i < k; i++)
        out[i] = tmp[k - 1 - i];
    return k;
}

/* A SentencePiece-shaped vocabulary: <unk> <s> </s>, 256 byte pieces,
 * then made-up word pieces with decreasing scores. */
static sl_status synth_vocab(uint32_t n, sl_vocab *v, sl_err *err)
{
    memset(v, 0, sizeof *v);
    v->tokens = calloc(n, sizeof *v->tokens);
    v->scores = calloc(n, sizeof *v->scores);
    v->types = calloc(n, sizeof *v->types);
    v->arena = malloc((size_t)n * 24);
    if (!v->tokens || !v->scores || !v->types || !v->arena) {
        sl_vocab_free(v);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    char *a = v->arena;
    for (uint32_t i = 0; i < n; i++) {
        char *start = a;
        if (i == 0)
            a += (size_t)sprintf(a, "<unk>");
        else if (i == 1)
            a += (size_t)sprintf(a, "<s>");
        else if (i == 2)
            a += (size_t)sprintf(a, "</s>");
        else if (i < 259)
            a += (size_t)sprintf(a, "<0x%02X>", i - 3);
        else {
            uint64_t k = i - 259;
            if (k % 2 == 0) {
                memcpy(a, "\xe2\x96\x81", 3);
                a += 3;
            }
            a += letters(k / 2, a);
            v->scores[i] = -(float)k;
        }
        v->tokens[i] = (sl_str){start, (uint64_t)(a - start)};
        v->types[i] = i == 0 ? SL_TOK_UNKNOWN : i < 3 ? SL_TOK_CONTROL : i < 259 ? SL_TOK_BYTE : SL_TOK_NORMAL;
    }
    v->model = "llama";
    v->n = n;
    v->unk = 0;
    v->bos = 1;
    v->eos = 2;
    return SL_OK;
}

sl_status sl_synth_model(const sl_synth_shape *s, uint64_t seed, sl_model_src *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    synth_ctx *c = malloc(sizeof *c);
    sl_status st = sl_model_src_own(m, c, err);
    if (st)
        return st;
    c->seed = seed;
    m->hp = (sl_llama_hparams){.dim = s->dim, .hidden = s->hidden, .n_layers = s->n_layers, .n_heads = s->n_heads,
                               .n_kv_heads = s->n_kv_heads, .vocab = s->vocab, .ctx = s->ctx, .rms_eps = 1e-5f,
                               .rope_theta = s->rope_theta, .tied = s->tied};
    snprintf(m->name, sizeof m->name, "synth-%s", s->name);
    snprintf(m->source, sizeof m->source, "synth:%s:seed=%llu", s->name, (unsigned long long)seed);
    const uint64_t dim = s->dim, kv = (uint64_t)s->dim * s->n_kv_heads / s->n_heads;
    struct {
        const char *name;
        uint64_t in, out;
    } mats[] = {{"attn_norm", dim, 0},   {"attn_q", dim, dim},         {"attn_k", dim, kv},
                {"attn_v", dim, kv},     {"attn_output", dim, dim},    {"ffn_norm", dim, 0},
                {"ffn_gate", dim, s->hidden}, {"ffn_down", s->hidden, dim}, {"ffn_up", dim, s->hidden}};
    char name[96];
    uint64_t ne[2] = {dim, s->vocab};
    sl_src_tensor *t = sl_model_src_add(m, "token_embd.weight", 2, ne, err);
    for (uint32_t l = 0; t && l < s->n_layers; l++)
        for (size_t k = 0; t && k < sizeof mats / sizeof mats[0]; k++) {
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, mats[k].name);
            ne[0] = mats[k].in;
            ne[1] = mats[k].out;
            t = sl_model_src_add(m, name, mats[k].out ? 2 : 1, ne, err);
        }
    ne[0] = dim;
    if (t)
        t = sl_model_src_add(m, "output_norm.weight", 1, ne, err);
    ne[1] = s->vocab;
    if (t && !s->tied)
        t = sl_model_src_add(m, "output.weight", 2, ne, err);
    if (!t) {
        sl_model_src_free(m);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        m->tensors[i].rows = synth_rows;
        m->tensors[i].ctx = c;
    }
    st = synth_vocab(s->vocab, &m->vocab, err);
    if (st) {
        sl_model_src_free(m);
        return st;
    }
    m->has_vocab = true;
    return SL_OK;
}
