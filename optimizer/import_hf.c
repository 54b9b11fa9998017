/* import_hf.c - Hugging Face Llama-family checkpoints: config.json plus
 * model.safetensors (or a sharded index), tokenizer.json where present.
 * Q and K rows are reordered from the half-split RoPE layout to adjacent
 * pairs, as llama.cpp's converter does. */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_le.h"
#include "sl_model_src.h"
#include "sl_types.h"

#define MAX_JSON (64u << 20)

typedef struct st_entry {
    char name[160];
    uint32_t type;
    uint32_t n_dims;
    uint64_t shape[4]; /* as safetensors lists it: outermost first */
    const uint8_t *data;
    bool used;
} st_entry;

typedef struct st_list {
    st_entry *e;
    size_t n;
} st_list;

static json_object *parse_json(const char *text, size_t len, sl_err *err, const char *what)
{
    json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!o || e != json_tokener_success) {
        json_object_put(o);
        sl_err_set(err, SL_EFORMAT, "%s is not valid JSON: %s", what, json_tokener_error_desc(e));
        return NULL;
    }
    return o;
}

static json_object *load_json(const char *path, sl_err *err)
{
    char *text;
    size_t len;
    if (sl_read_file(path, MAX_JSON, &text, &len, err))
        return NULL;
    json_object *o = parse_json(text, len, err, path);
    free(text);
    return o;
}

static sl_status cfg_u32(json_object *cfg, const char *key, bool required, uint32_t dflt, uint32_t *out, sl_err *err)
{
    json_object *v;
    if (!json_object_object_get_ex(cfg, key, &v) || json_object_is_type(v, json_type_null)) {
        if (required)
            return sl_err_set(err, SL_EFORMAT, "config.json: '%s' is missing", key);
        *out = dflt;
        return SL_OK;
    }
    if (!json_object_is_type(v, json_type_int))
        return sl_err_set(err, SL_EFORMAT, "config.json: '%s' is not an integer", key);
    int64_t x = json_object_get_int64(v);
    if (x <= 0 || x > (1 << 24))
        return sl_err_set(err, SL_ERANGE, "config.json: '%s' = %lld is out of range", key, (long long)x);
    *out = (uint32_t)x;
    return SL_OK;
}

static float cfg_f32(json_object *cfg, const char *key, float dflt)
{
    json_object *v;
    if (!json_object_object_get_ex(cfg, key, &v) ||
        !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return dflt;
    return (float)json_object_get_double(v);
}

static sl_status read_config(const char *dir, sl_llama_hparams *hp, sl_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_object *cfg = load_json(path, err);
    if (!cfg)
        return err ? err->code : SL_EFORMAT;
    sl_status st = SL_OK;
    json_object *mt;
    const char *model_type = json_object_object_get_ex(cfg, "model_type", &mt) ? json_object_get_string(mt) : "";
    if (strcmp(model_type, "llama") != 0 && strcmp(model_type, "mistral") != 0)
        st = sl_err_set(err, SL_EUNSUPPORTED, "%s: model_type '%s' is not a Llama-family model", path, model_type);
    st = st ? st : cfg_u32(cfg, "hidden_size", true, 0, &hp->dim, err);
    st = st ? st : cfg_u32(cfg, "intermediate_size", true, 0, &hp->hidden, err);
    st = st ? st : cfg_u32(cfg, "num_hidden_layers", true, 0, &hp->n_layers, err);
    st = st ? st : cfg_u32(cfg, "num_attention_heads", true, 0, &hp->n_heads, err);
    st = st ? st : cfg_u32(cfg, "num_key_value_heads", false, hp->n_heads, &hp->n_kv_heads, err);
    st = st ? st : cfg_u32(cfg, "vocab_size", true, 0, &hp->vocab, err);
    st = st ? st : cfg_u32(cfg, "max_position_embeddings", false, 2048, &hp->ctx, err);
    if (!st && (hp->dim % hp->n_heads || hp->n_heads % hp->n_kv_heads || (hp->dim / hp->n_heads) % 2))
        st = sl_err_set(err, SL_EFORMAT, "%s: hidden_size %u does not split into %u even heads over %u KV heads", path,
                        hp->dim, hp->n_heads, hp->n_kv_heads);
    hp->rms_eps = cfg_f32(cfg, "rms_norm_eps", 1e-6f);
    hp->rope_theta = cfg_f32(cfg, "rope_theta", 10000.0f);
    json_object *tie;
    hp->tied = json_object_object_get_ex(cfg, "tie_word_embeddings", &tie) && json_object_get_boolean(tie);
    json_object_put(cfg);
    return st;
}

static sl_status parse_safetensors(const sl_map *map, const char *path, st_list *list, sl_err *err)
{
    if (map->size < 8)
        return sl_err_set(err, SL_EFORMAT, "%s: too short for a safetensors header", path);
    const uint64_t hlen = sl_le_load_u64(map->data);
    if (hlen > MAX_JSON || hlen > map->size - 8)
        return sl_err_set(err, SL_EFORMAT, "%s: header length %llu is impossible", path, (unsigned long long)hlen);
    json_object *h = parse_json((const char *)map->data + 8, (size_t)hlen, err, path);
    if (!h)
        return err ? err->code : SL_EFORMAT;
    if (!json_object_is_type(h, json_type_object)) {
        json_object_put(h);
        return sl_err_set(err, SL_EFORMAT, "%s: header is not a JSON object", path);
    }
    const uint8_t *base = map->data + 8 + hlen;
    uint64_t room = map->size - 8 - hlen;
    sl_status st = SL_OK;
    json_object_object_foreach(h, key, val)
    {
        if (strcmp(key, "__metadata__") == 0)
            continue;
        json_object *dt, *shape, *offs;
        if (!json_object_object_get_ex(val, "dtype", &dt) || !json_object_object_get_ex(val, "shape", &shape) ||
            !json_object_object_get_ex(val, "data_offsets", &offs) || !json_object_is_type(shape, json_type_array) ||
            !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2) {
            st = sl_err_set(err, SL_EFORMAT, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, key);
            break;
        }
        const char *dts = json_object_get_string(dt);
        uint32_t type = strcmp(dts, "F32") == 0 ? SL_TYPE_F32 : strcmp(dts, "F16") == 0 ? SL_TYPE_F16
                      : strcmp(dts, "BF16") == 0 ? SL_TYPE_BF16 : UINT32_MAX;
        if (type == UINT32_MAX) {
            st = sl_err_set(err, SL_EUNSUPPORTED, "%s: tensor '%s' has dtype %s (F32, F16, BF16 supported)", path, key, dts);
            break;
        }
        size_t nd = json_object_array_length(shape);
        if (nd < 1 || nd > 4 || strlen(key) >= sizeof list->e[0].name) {
            st = sl_err_set(err, SL_EFORMAT, "%s: tensor '%s' has %zu dimensions or too long a name", path, key, nd);
            break;
        }
        st_entry e = {.type = type, .n_dims = (uint32_t)nd};
        snprintf(e.name, sizeof e.name, "%s", key);
        uint64_t n = 1;
        for (size_t d = 0; d < nd; d++) {
            int64_t x = json_object_get_int64(json_object_array_get_idx(shape, d));
            if (x <= 0 || (uint64_t)x > (uint64_t)INT64_MAX / 8 / n) {
                st = sl_err_set(err, SL_EFORMAT, "%s: tensor '%s' has a bad dimension", path, key);
                break;
            }
            e.shape[d] = (uint64_t)x;
            n *= (uint64_t)x;
        }
        if (st)
            break;
        int64_t b = json_object_get_int64(json_object_array_get_idx(offs, 0));
        int64_t en = json_object_get_int64(json_object_array_get_idx(offs, 1));
        uint64_t bytes = n * (type == SL_TYPE_F32 ? 4 : 2);
        if (b < 0 || en < b || (uint64_t)en > room || (uint64_t)(en - b) != bytes) {
            st = sl_err_set(err, SL_EFORMAT, "%s: tensor '%s' data range [%lld, %lld) does not hold %llu bytes inside the file",
                            path, key, (long long)b, (long long)en, (unsigned long long)bytes);
            break;
        }
        e.data = base + b;
        st_entry *p = realloc(list->e, (list->n + 1) * sizeof *p);
        if (!p) {
            st = sl_err_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        list->e = p;
        list->e[list->n++] = e;
    }
    json_object_put(h);
    return st;
}

static st_entry *find_entry(st_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0)
            return &l->e[i];
    return NULL;
}

/* Takes the HF tensor `hf` as GGUF tensor `gguf` of shape [in, out] (or [n]). */
static sl_status take(sl_model_src *m, st_list *l, const char *hf, const char *gguf, uint64_t in, uint64_t out,
                      uint32_t perm_heads, sl_err *err)
{
    st_entry *e = find_entry(l, hf);
    if (!e)
        return sl_err_set(err, SL_ENOTFOUND, "tensor '%s' is missing from the safetensors files", hf);
    bool is1d = out == 0;
    if ((is1d && (e->n_dims != 1 || e->shape[0] != in)) ||
        (!is1d && (e->n_dims != 2 || e->shape[0] != out || e->shape[1] != in)))
        return sl_err_set(err, SL_EFORMAT, "tensor '%s' has the wrong shape for this config", hf);
    uint64_t ne[2] = {in, out};
    sl_src_tensor *t = sl_model_src_add(m, gguf, is1d ? 1 : 2, ne, err);
    if (!t)
        return SL_ENOMEM;
    t->type = e->type;
    t->data = e->data;
    t->perm_heads = perm_heads;
    e->used = true;
    return SL_OK;
}

static sl_status load_shards(const char *dir, sl_model_src *m, st_list *l, sl_err *err)
{
    char path[4096];
    const sl_map *map;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    sl_status st = sl_model_src_add_map(m, path, &map, err);
    if (st == SL_OK)
        return parse_safetensors(map, path, l, err);
    if (st != SL_ENOTFOUND)
        return st;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    json_object *idx = load_json(path, err);
    if (!idx)
        return sl_err_set(err, SL_ENOTFOUND, "%s has neither model.safetensors nor model.safetensors.index.json", dir);
    json_object *wm;
    st = SL_OK;
    if (!json_object_object_get_ex(idx, "weight_map", &wm) || !json_object_is_type(wm, json_type_object))
        st = sl_err_set(err, SL_EFORMAT, "%s: no weight_map object", path);
    /* Distinct shard files, each mapped and parsed once. */
    char seen[64][256];
    int n_seen = 0;
    if (!st) {
        json_object_object_foreach(wm, key, val)
        {
            (void)key;
            const char *f = json_object_get_string(val);
            if (!f || strchr(f, '/') || strlen(f) >= sizeof seen[0]) {
                st = sl_err_set(err, SL_EFORMAT, "%s: bad shard file name", path);
                break;
            }
            int k;
            for (k = 0; k < n_seen && strcmp(seen[k], f) != 0; k++)
                ;
            if (k < n_seen)
                continue;
            if (n_seen == 64) {
                st = sl_err_set(err, SL_EUNSUPPORTED, "%s: more than 64 shards", path);
                break;
            }
            snprintf(seen[n_seen++], sizeof seen[0], "%s", f);
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/%s", dir, f);
            if ((st = sl_model_src_add_map(m, sp, &map, err)) || (st = parse_safetensors(map, sp, l, err)))
                break;
        }
    }
    json_object_put(idx);
    return st;
}

sl_status sl_import_hf(const char *dir, sl_model_src *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    st_list l = {0};
    sl_status st = read_config(dir, &m->hp, err);
    if (!st)
        st = load_shards(dir, m, &l, err);
    const sl_llama_hparams *hp = &m->hp;
    const uint64_t dim = hp->dim, kv = (uint64_t)hp->dim * hp->n_kv_heads / (hp->n_heads ? hp->n_heads : 1);
    if (!st)
        st = take(m, &l, "model.embed_tokens.weight", "token_embd.weight", dim, hp->vocab, 0, err);
    for (uint32_t i = 0; i < hp->n_layers && !st; i++) {
        static const struct {
            const char *hf, *gguf;
            int kind; /* 0 norm, 1 q, 2 k, 3 v, 4 o, 5 gate/up, 6 down */
        } map[] = {
            {"input_layernorm", "attn_norm", 0}, {"self_attn.q_proj", "attn_q", 1},
            {"self_attn.k_proj", "attn_k", 2},   {"self_attn.v_proj", "attn_v", 3},
            {"self_attn.o_proj", "attn_output", 4}, {"post_attention_layernorm", "ffn_norm", 0},
            {"mlp.gate_proj", "ffn_gate", 5},    {"mlp.down_proj", "ffn_down", 6},
            {"mlp.up_proj", "ffn_up", 5},
        };
        for (size_t k = 0; k < sizeof map / sizeof map[0] && !st; k++) {
            char hf[160], gg[96];
            snprintf(hf, sizeof hf, "model.layers.%u.%s.weight", i, map[k].hf);
            snprintf(gg, sizeof gg, "blk.%u.%s.weight", i, map[k].gguf);
            switch (map[k].kind) {
            case 0: st = take(m, &l, hf, gg, dim, 0, 0, err); break;
            case 1: st = take(m, &l, hf, gg, dim, dim, hp->n_heads, err); break;
            case 2: st = take(m, &l, hf, gg, dim, kv, hp->n_kv_heads, err); break;
            case 3: st = take(m, &l, hf, gg, dim, kv, 0, err); break;
            case 4: st = take(m, &l, hf, gg, dim, dim, 0, err); break;
            case 5: st = take(m, &l, hf, gg, dim, hp->hidden, 0, err); break;
            case 6: st = take(m, &l, hf, gg, hp->hidden, dim, 0, err); break;
            }
        }
    }
    if (!st)
        st = take(m, &l, "model.norm.weight", "output_norm.weight", dim, 0, 0, err);
    if (!st && !hp->tied) {
        st = take(m, &l, "lm_head.weight", "output.weight", dim, hp->vocab, 0, err);
        if (st == SL_ENOTFOUND) { /* some exports tie without saying so */
            st = SL_OK;
            m->hp.tied = true;
        }
    }
    for (size_t i = 0; i < l.n && !st; i++)
        if (!l.e[i].used && !strstr(l.e[i].name, "rotary_emb.inv_freq"))
            st = sl_err_set(err, SL_EUNSUPPORTED, "tensor '%s' has no place in a Llama model", l.e[i].name);
    free(l.e);
    if (!st) {
        const char *b = strrchr(dir, '/');
        b = b && b[1] ? b + 1 : dir;
        snprintf(m->name, sizeof m->name, "%s", b);
        snprintf(m->source, sizeof m->source, "hf:%s", b);
        /* The parent is the set of safetensors files, hashed in order. */
        sl_checksum *ck = sl_checksum_new();
        if (!ck)
            st = sl_err_set(err, SL_ENOMEM, "out of memory");
        for (int i = 0; ck && i < m->n_maps; i++)
            sl_checksum_update(ck, m->maps[i].data, m->maps[i].size);
        if (ck) {
            sl_checksum_final(ck, m->parent_checksum);
            sl_checksum_free(ck);
        }
    }
    if (!st) {
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tokenizer.json", dir);
        st = sl_vocab_from_hf(tp, hp->vocab, &m->vocab, err);
        if (st == SL_ENOTFOUND)
            st = SL_OK; /* a model without a tokenizer still converts */
        else if (!st)
            m->has_vocab = true;
    }
    if (st)
        sl_model_src_free(m);
    return st;
}
