/* import_hf_tokenizer.c - Hugging Face tokenizer.json (BPE models) into a
 * GGUF vocabulary.  With byte_fallback it is SentencePiece-style (`llama`:
 * merge priority becomes score = -(rank among normal pieces)); without it,
 * byte-level BPE (`gpt2`: merges carried as they are). */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "sl_model_src.h"

static const char *tok_content(json_object *v)
{
    json_object *c;
    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "content", &c))
        return json_object_get_string(c);
    return NULL;
}

/* bos/eos from tokenizer_config.json beside tokenizer.json, if any. */
static void special_names(const char *tok_path, char *bos, char *eos, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", tok_path);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0), "tokenizer_config.json");
    char *text;
    size_t len;
    if (sl_read_file(path, 16u << 20, &text, &len, NULL))
        return;
    json_object *cfg = json_tokener_parse(text), *v;
    free(text);
    if (!cfg)
        return;
    const char *s;
    if (json_object_object_get_ex(cfg, "bos_token", &v) && (s = tok_content(v)))
        snprintf(bos, n, "%s", s);
    if (json_object_object_get_ex(cfg, "eos_token", &v) && (s = tok_content(v)))
        snprintf(eos, n, "%s", s);
    json_object_put(cfg);
}

static int64_t find_piece(const sl_vocab *v, const char *s)
{
    size_t n = strlen(s);
    for (uint32_t i = 0; i < v->n; i++)
        if (v->tokens[i].ptr && v->tokens[i].len == n && memcmp(v->tokens[i].ptr, s, n) == 0)
            return i;
    return -1;
}

sl_status sl_vocab_from_hf(const char *path, uint32_t vocab_size, sl_vocab *v, sl_err *err)
{
    memset(v, 0, sizeof *v);
    char *text;
    size_t len;
    sl_status st = sl_read_file(path, 256u << 20, &text, &len, err);
    if (st)
        return st;
    json_tokener *tk = json_tokener_new_ex(64);
    json_object *root = tk ? json_tokener_parse_ex(tk, text, (int)len) : NULL;
    if (tk)
        json_tokener_free(tk);
    json_object *model, *vocab, *type, *bf, *merges, *added, *unk;
    if (!root || !json_object_object_get_ex(root, "model", &model) ||
        !json_object_object_get_ex(model, "vocab", &vocab) || !json_object_is_type(vocab, json_type_object)) {
        st = sl_err_set(err, SL_EFORMAT, "%s: not a tokenizer.json with model.vocab", path);
        goto out;
    }
    if (!json_object_object_get_ex(model, "type", &type) || strcmp(json_object_get_string(type), "BPE") != 0) {
        st = sl_err_set(err, SL_EUNSUPPORTED, "%s: only BPE tokenizers are supported", path);
        goto out;
    }
    bool byte_fallback = json_object_object_get_ex(model, "byte_fallback", &bf) && json_object_get_boolean(bf);
    v->model = byte_fallback ? "llama" : "gpt2";
    v->n = vocab_size;
    v->tokens = calloc(vocab_size, sizeof *v->tokens);
    v->scores = calloc(vocab_size, sizeof *v->scores);
    v->types = calloc(vocab_size, sizeof *v->types);
    size_t arena_len = len + (size_t)vocab_size * 16 + 16; /* pieces are never longer than in the JSON text */
    v->arena = malloc(arena_len);
    if (!v->tokens || !v->scores || !v->types || !v->arena) {
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
        goto out;
    }
    char *a = v->arena;
    const char *arena_end = v->arena + arena_len;
#define PUT_PIECE(id_, s_)                                                                                             \
    do {                                                                                                               \
        size_t l_ = strlen(s_);                                                                                        \
        memcpy(a, (s_), l_);                                                                                           \
        v->tokens[id_] = (sl_str){a, l_};                                                                              \
        a += l_;                                                                                                       \
    } while (0)
    json_object_object_foreach(vocab, piece, idv)
    {
        int64_t id = json_object_get_int64(idv);
        if (!json_object_is_type(idv, json_type_int) || id < 0 || id >= vocab_size || v->tokens[id].ptr) {
            st = sl_err_set(err, SL_EFORMAT, "%s: piece '%.40s' has id %lld (outside 0..%u or repeated)", path, piece,
                            (long long)id, vocab_size - 1);
            goto out;
        }
        PUT_PIECE(id, piece);
        v->types[id] = byte_fallback && sl_is_byte_piece(piece, strlen(piece)) ? SL_TOK_BYTE : SL_TOK_NORMAL;
    }
    if (json_object_object_get_ex(root, "added_tokens", &added) && json_object_is_type(added, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(added); i++) {
            json_object *t = json_object_array_get_idx(added, i), *idv, *cv, *sp;
            if (!json_object_object_get_ex(t, "id", &idv) || !json_object_object_get_ex(t, "content", &cv))
                continue;
            int64_t id = json_object_get_int64(idv);
            if (id < 0 || id >= vocab_size) {
                st = sl_err_set(err, SL_EFORMAT, "%s: added token id %lld is outside the vocabulary", path, (long long)id);
                goto out;
            }
            if (!v->tokens[id].ptr) {
                const char *c = json_object_get_string(cv);
                if (strlen(c) > 4096) {
                    st = sl_err_set(err, SL_EFORMAT, "%s: added token %lld is too long", path, (long long)id);
                    goto out;
                }
                PUT_PIECE(id, c);
            }
            bool special = json_object_object_get_ex(t, "special", &sp) && json_object_get_boolean(sp);
            v->types[id] = special ? SL_TOK_CONTROL : SL_TOK_USER;
        }
    }
    for (uint32_t i = 0; i < vocab_size; i++)
        if (!v->tokens[i].ptr) { /* ids the tokenizer never produces (padded vocabularies) */
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%u]", i);
            PUT_PIECE(i, pad);
            v->types[i] = SL_TOK_UNUSED;
        }
#undef PUT_PIECE
    v->unk = -1;
    if (json_object_object_get_ex(model, "unk_token", &unk) && json_object_is_type(unk, json_type_string)) {
        v->unk = find_piece(v, json_object_get_string(unk));
        if (v->unk >= 0)
            v->types[v->unk] = SL_TOK_UNKNOWN;
    }
    if (byte_fallback) {
        int64_t first = -1;
        for (uint32_t i = 0; i < vocab_size; i++) {
            if (v->types[i] == SL_TOK_NORMAL && first < 0)
                first = i;
            v->scores[i] = v->types[i] == SL_TOK_NORMAL ? -(float)(i - first) : 0.0f;
        }
    } else {
        free(v->scores);
        v->scores = NULL;
        if (json_object_object_get_ex(model, "merges", &merges) && json_object_is_type(merges, json_type_array)) {
            size_t nm = json_object_array_length(merges);
            v->merges = calloc(nm ? nm : 1, sizeof *v->merges);
            if (!v->merges) {
                st = sl_err_set(err, SL_ENOMEM, "out of memory");
                goto out;
            }
            /* Merge strings go after the pieces in the same arena: every
             * piece and merge stands in the JSON text, which sized it. */
            for (size_t i = 0; i < nm; i++) {
                json_object *e = json_object_array_get_idx(merges, i);
                const char *l, *r = NULL;
                if (json_object_is_type(e, json_type_string))
                    l = json_object_get_string(e);
                else if (json_object_is_type(e, json_type_array) && json_object_array_length(e) == 2) {
                    l = json_object_get_string(json_object_array_get_idx(e, 0));
                    r = json_object_get_string(json_object_array_get_idx(e, 1));
                } else {
                    st = sl_err_set(err, SL_EFORMAT, "%s: merge %zu is neither \"a b\" nor [a, b]", path, i);
                    goto out;
                }
                size_t ll = strlen(l), rl = r ? strlen(r) : 0;
                if ((size_t)(arena_end - a) < ll + 1 + rl) {
                    st = sl_err_set(err, SL_EFORMAT, "%s: merges longer than the file itself", path);
                    goto out;
                }
                char *start = a;
                memcpy(a, l, ll);
                a += ll;
                if (r) {
                    *a++ = ' ';
                    memcpy(a, r, rl);
                    a += rl;
                }
                v->merges[i] = (sl_str){start, (uint64_t)(a - start)};
            }
            v->n_merges = nm;
        }
    }
    char bos[256] = "", eos[256] = "";
    if (byte_fallback) {
        snprintf(bos, sizeof bos, "<s>");
        snprintf(eos, sizeof eos, "</s>");
    }
    special_names(path, bos, eos, sizeof bos);
    v->bos = bos[0] ? find_piece(v, bos) : -1;
    v->eos = eos[0] ? find_piece(v, eos) : -1;
out:
    json_object_put(root);
    free(text);
    if (st)
        sl_vocab_free(v);
    return st;
}
