/* cmd_inspect.c - `sluice inspect`: a model size analysis at a glance,
 * as text or as JSON (json-c builds the JSON; the text is read off it). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_quality.h"
#include "sl_gguf.h"
#include "sl_types.h"
#include "sluice_cli.h"

enum { K_EMBED, K_ATTN, K_FFN, K_NORM, K_CLS, K_OTHER, K_N };
static const char *const k_kind[K_N] = {"embedding", "attention", "ffn", "norms", "classifier", "other"};

static int kind_of(const char *name)
{
    if (strncmp(name, "token_embd", 10) == 0)
        return K_EMBED;
    if (strncmp(name, "output.", 7) == 0)
        return K_CLS;
    if (strstr(name, "_norm"))
        return K_NORM;
    if (strstr(name, "attn_"))
        return K_ATTN;
    if (strstr(name, "ffn_"))
        return K_FFN;
    return K_OTHER;
}

static json_object *jstr(sl_str s)
{
    return json_object_new_string_len(s.ptr, (int)(s.len > 1u << 20 ? 1u << 20 : s.len));
}

/* A scalar as JSON; arrays are summarised (type and length, first few). */
static json_object *kv_json(const sl_gguf_kv *kv)
{
    double d;
    int64_t i;
    switch (kv->type) {
    case SL_GGUF_STRING: return jstr(sl_gguf_kv_str(kv));
    case SL_GGUF_BOOL: return json_object_new_boolean(kv->val[0]);
    case SL_GGUF_F32:
    case SL_GGUF_F64: sl_gguf_kv_as_f64(kv, &d); return json_object_new_double(d);
    case SL_GGUF_U64:
        if (!sl_gguf_kv_as_i64(kv, &i)) {
            sl_gguf_kv_as_f64(kv, &d);
            return json_object_new_double(d);
        }
        return json_object_new_int64(i);
    case SL_GGUF_ARRAY: {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "array_of", json_object_new_string(sl_gguf_vtype_name(kv->arr_type)));
        json_object_object_add(o, "length", json_object_new_int64((int64_t)kv->arr_n));
        return o;
    }
    default: sl_gguf_kv_as_i64(kv, &i); return json_object_new_int64(i);
    }
}

static json_object *u32_or_null(const sl_gguf *g, const char *key)
{
    uint32_t v;
    return sl_gguf_get_u32(g, key, &v, NULL) == SL_OK ? json_object_new_int64(v) : NULL;
}

static json_object *f32_or_null(const sl_gguf *g, const char *key)
{
    float v;
    return sl_gguf_get_f32(g, key, &v, NULL) == SL_OK ? json_object_new_double(v) : NULL;
}

static json_object *describe(const char *path, const sl_gguf *g, const char *verify_state, const char *computed)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "file", json_object_new_string(path));
    json_object_object_add(root, "bytes", json_object_new_int64((int64_t)g->size));
    json_object_object_add(root, "gguf_version", json_object_new_int64(g->version));
    json_object_object_add(root, "alignment", json_object_new_int64(g->alignment));
    json_object_object_add(root, "data_offset", json_object_new_int64((int64_t)g->data_offset));

    sl_str arch = {"", 0};
    sl_gguf_get_str(g, "general.architecture", &arch, NULL);
    char pre[64];
    snprintf(pre, sizeof pre, "%.*s", (int)(arch.len < 40 ? arch.len : 40), arch.ptr);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "architecture", json_object_new_string(pre));
    sl_str name;
    if (sl_gguf_get_str(g, "general.name", &name, NULL) == SL_OK)
        json_object_object_add(a, "name", jstr(name));
    static const struct {
        const char *json, *key;
        int is_f;
    } hp[] = {{"dim", "embedding_length", 0},        {"hidden", "feed_forward_length", 0},
              {"layers", "block_count", 0},          {"heads", "attention.head_count", 0},
              {"kv_heads", "attention.head_count_kv", 0}, {"context", "context_length", 0},
              {"rope_dim", "rope.dimension_count", 0}, {"vocab", "vocab_size", 0},
              {"rms_eps", "attention.layer_norm_rms_epsilon", 1}, {"rope_theta", "rope.freq_base", 1}};
    for (size_t i = 0; i < sizeof hp / sizeof hp[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s.%s", pre, hp[i].key);
        json_object *v = hp[i].is_f ? f32_or_null(g, key) : u32_or_null(g, key);
        if (v)
            json_object_object_add(a, hp[i].json, v);
    }
    const sl_gguf_kv *toks = sl_gguf_find(g, "tokenizer.ggml.tokens");
    if (!json_object_object_get_ex(a, "vocab", NULL) && toks && toks->type == SL_GGUF_ARRAY)
        json_object_object_add(a, "vocab", json_object_new_int64((int64_t)toks->arr_n));
    json_object_object_add(a, "classifier_tied", json_object_new_boolean(!sl_gguf_find_tensor(g, "output.weight")));
    json_object_object_add(root, "model", a);

    json_object *tk = json_object_new_object();
    sl_str tm;
    if (sl_gguf_get_str(g, "tokenizer.ggml.model", &tm, NULL) == SL_OK)
        json_object_object_add(tk, "model", jstr(tm));
    json_object_object_add(tk, "tokens", json_object_new_int64(toks && toks->type == SL_GGUF_ARRAY ? (int64_t)toks->arr_n : 0));
    json_object *v;
    if ((v = u32_or_null(g, "tokenizer.ggml.bos_token_id")))
        json_object_object_add(tk, "bos", v);
    if ((v = u32_or_null(g, "tokenizer.ggml.eos_token_id")))
        json_object_object_add(tk, "eos", v);
    if ((v = u32_or_null(g, "tokenizer.ggml.unknown_token_id")))
        json_object_object_add(tk, "unk", v);
    json_object_object_add(root, "tokenizer", tk);

    json_object *ck = json_object_new_object();
    sl_str stored;
    if (sl_gguf_get_str(g, "sluice.content_checksum", &stored, NULL) == SL_OK)
        json_object_object_add(ck, "stored", jstr(stored));
    json_object_object_add(ck, "status", json_object_new_string(verify_state));
    if (computed)
        json_object_object_add(ck, "computed", json_object_new_string(computed));
    json_object_object_add(root, "checksum", ck);

    /* The quality verdict, believed only when bound to this content. */
    json_object *qj = json_object_new_object();
    sl_quality q;
    sl_err qerr = {0};
    if (!computed)
        json_object_object_add(qj, "status", json_object_new_string("not-checked"));
    else {
        sl_status qs = sl_quality_read(g, computed, &q, &qerr);
        const char *status = qs == SL_ECHECKSUM ? "other-image" : qs ? "malformed" : !q.present ? "none" : q.pass ? "pass" : "fail";
        json_object_object_add(qj, "status", json_object_new_string(status));
        if (qs)
            json_object_object_add(qj, "error", json_object_new_string(qerr.msg));
        if (!qs && q.present) {
            json_object_object_add(qj, "base_checksum", json_object_new_string(q.base));
            json_object_object_add(qj, "ppl_ratio", json_object_new_double(q.ppl_ratio));
            json_object_object_add(qj, "kl_mean", json_object_new_double(q.kl_mean));
            json_object_object_add(qj, "kl_p99", json_object_new_double(q.kl_p99));
            json_object_object_add(qj, "top1", json_object_new_double(q.top1));
            json_object_object_add(qj, "time", json_object_new_string(q.time));
        }
    }
    json_object_object_add(root, "quality", qj);

    uint64_t count[K_N] = {0}, bytes[K_N] = {0}, tot_n = 0, tot_b = 0;
    json_object *tl = json_object_new_array();
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        int k = kind_of(t->name);
        count[k] += t->n_elems;
        bytes[k] += t->nbytes;
        tot_n += t->n_elems;
        tot_b += t->nbytes;
        json_object *jt = json_object_new_object();
        json_object_object_add(jt, "name", json_object_new_string(t->name));
        json_object_object_add(jt, "type", json_object_new_string(sl_type_get(t->type)->name));
        json_object *sh = json_object_new_array();
        for (uint32_t d = 0; d < t->n_dims; d++)
            json_object_array_add(sh, json_object_new_int64((int64_t)t->ne[d]));
        json_object_object_add(jt, "shape", sh);
        json_object_object_add(jt, "elements", json_object_new_int64((int64_t)t->n_elems));
        json_object_object_add(jt, "bytes", json_object_new_int64((int64_t)t->nbytes));
        json_object_object_add(jt, "offset", json_object_new_int64((int64_t)(g->data_offset + t->offset)));
        json_object_array_add(tl, jt);
    }
    json_object *pc = json_object_new_object();
    for (int k = 0; k < K_N; k++) {
        if (k == K_OTHER && count[k] == 0)
            continue;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "parameters", json_object_new_int64((int64_t)count[k]));
        json_object_object_add(e, "bytes", json_object_new_int64((int64_t)bytes[k]));
        json_object_object_add(pc, k_kind[k], e);
    }
    json_object *e = json_object_new_object();
    json_object_object_add(e, "parameters", json_object_new_int64((int64_t)tot_n));
    json_object_object_add(e, "bytes", json_object_new_int64((int64_t)tot_b));
    json_object_object_add(e, "bits_per_weight", json_object_new_double(tot_n ? 8.0 * (double)tot_b / (double)tot_n : 0));
    json_object_object_add(pc, "total", e);
    json_object_object_add(root, "parameters", pc);
    json_object_object_add(root, "tensors", tl);

    json_object *md = json_object_new_object();
    for (uint64_t i = 0; i < g->n_kv; i++)
        json_object_object_add(md, g->kv[i].key, kv_json(&g->kv[i]));
    json_object_object_add(root, "metadata", md);
    return root;
}

static const char *js(json_object *o, const char *a, const char *b)
{
    static char ring[4][32];
    static int k;
    json_object *x, *y;
    if (!json_object_object_get_ex(o, a, &x) || !json_object_object_get_ex(x, b, &y))
        return "-";
    if (!json_object_is_type(y, json_type_double))
        return json_object_get_string(y);
    k = (k + 1) % 4; /* floats read as people write them: 1e-05, not 9.99999974e-06 */
    snprintf(ring[k], sizeof ring[k], "%g", (double)(float)json_object_get_double(y));
    return ring[k];
}

static void human_bytes(double b, char *out, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, n, i ? "%.2f %s" : "%.0f %s", b, u[i]);
}

static void print_text(json_object *r, const sl_gguf *g)
{
    char hb[32];
    human_bytes((double)g->size, hb, sizeof hb);
    printf("image       %s  (%s, GGUF v%u, alignment %u)\n", json_object_get_string(json_object_object_get(r, "file")),
           hb, g->version, g->alignment);
    printf("model       %s \"%s\"\n", js(r, "model", "architecture"), js(r, "model", "name"));
    printf("shape       dim %s, hidden %s, layers %s, heads %s (kv %s), vocab %s, context %s\n", js(r, "model", "dim"),
           js(r, "model", "hidden"), js(r, "model", "layers"), js(r, "model", "heads"), js(r, "model", "kv_heads"),
           js(r, "model", "vocab"), js(r, "model", "context"));
    printf("            rms eps %s, rope theta %s, classifier %s\n", js(r, "model", "rms_eps"),
           js(r, "model", "rope_theta"),
           json_object_get_boolean(json_object_object_get(json_object_object_get(r, "model"), "classifier_tied"))
               ? "tied to the embedding" : "separate");
    printf("tokenizer   %s, %s tokens (bos %s, eos %s, unk %s)\n", js(r, "tokenizer", "model"),
           js(r, "tokenizer", "tokens"), js(r, "tokenizer", "bos"), js(r, "tokenizer", "eos"), js(r, "tokenizer", "unk"));
    printf("checksum    %s %s\n", js(r, "checksum", "status"),
           strcmp(js(r, "checksum", "stored"), "-") ? js(r, "checksum", "stored") : js(r, "checksum", "computed"));
    const char *qs = js(r, "quality", "status");
    if (!strcmp(qs, "pass") || !strcmp(qs, "fail"))
        printf("quality     %s (ppl ratio %s, KL mean %s, p99 %s, top-1 %s; base %s, %s)\n", qs,
               js(r, "quality", "ppl_ratio"), js(r, "quality", "kl_mean"), js(r, "quality", "kl_p99"),
               js(r, "quality", "top1"), js(r, "quality", "base_checksum"), js(r, "quality", "time"));
    else if (!strcmp(qs, "other-image") || !strcmp(qs, "malformed"))
        printf("quality     ignored: %s\n", js(r, "quality", "error"));
    else
        printf("quality     %s\n", !strcmp(qs, "none") ? "no verdict" : "not checked");
    json_object *md = json_object_object_get(r, "metadata"), *x;
    if (json_object_object_get_ex(md, "sluice.recipe", &x))
        printf("recipe      %s\n", json_object_get_string(x));
    if (json_object_object_get_ex(md, "sluice.parent_checksum", &x))
        printf("parent      %s\n", json_object_get_string(x));

    printf("\nparameters  %-12s %14s %8s %14s\n", "kind", "count", "share", "bytes");
    json_object *pc = json_object_object_get(r, "parameters");
    double total = (double)json_object_get_int64(json_object_object_get(json_object_object_get(pc, "total"), "parameters"));
    json_object_object_foreach(pc, kind, e)
    {
        int64_t n = json_object_get_int64(json_object_object_get(e, "parameters"));
        int64_t b = json_object_get_int64(json_object_object_get(e, "bytes"));
        human_bytes((double)b, hb, sizeof hb);
        printf("            %-12s %14lld %7.1f%% %14s\n", kind, (long long)n, total > 0 ? 100.0 * (double)n / total : 0.0, hb);
    }
    printf("            bits per weight %.3f\n",
           json_object_get_double(json_object_object_get(json_object_object_get(pc, "total"), "bits_per_weight")));

    printf("\ntensors (%llu)\n", (unsigned long long)g->n_tensors);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        char shape[96];
        int n = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            n += snprintf(shape + n, sizeof shape - (size_t)n, d ? " x %llu" : "%llu", (unsigned long long)t->ne[d]);
        printf("  %-32s %-6s %-20s %12llu\n", t->name, sl_type_get(t->type)->name, shape, (unsigned long long)t->nbytes);
    }
    printf("\nmetadata (%llu)\n", (unsigned long long)g->n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const sl_gguf_kv *kv = &g->kv[i];
        if (kv->type == SL_GGUF_ARRAY)
            printf("  %-40s [%llu x %s]\n", kv->key, (unsigned long long)kv->arr_n, sl_gguf_vtype_name(kv->arr_type));
        else if (kv->type == SL_GGUF_STRING) {
            sl_str s = sl_gguf_kv_str(kv);
            printf("  %-40s \"%.*s\"%s\n", kv->key, (int)(s.len > 80 ? 80 : s.len), s.ptr, s.len > 80 ? "..." : "");
        } else {
            json_object *o = kv_json(kv);
            printf("  %-40s %s\n", kv->key, json_object_get_string(o));
            json_object_put(o);
        }
    }
}

int sl_cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'}, {"no-verify", no_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int json = 0, verify = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'n': verify = 0; break;
        case 'h': printf("usage: sluice inspect IMAGE [--json] [--no-verify]\n"); return SL_EXIT_OK;
        default: return SL_EXIT_ERROR;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: sluice inspect IMAGE [--json] [--no-verify]\n");
        return SL_EXIT_ERROR;
    }
    const char *path = argv[optind];
    sl_gguf *g;
    sl_err err = {0};
    if (sl_gguf_open(path, 0, &g, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    char computed[SL_CHECKSUM_STRLEN + 1];
    const char *state = "not-verified";
    int rc = SL_EXIT_OK;
    sl_str stored;
    bool has = sl_gguf_get_str(g, "sluice.content_checksum", &stored, NULL) == SL_OK;
    if (verify) {
        sl_gguf_compute_checksum(g, computed, NULL);
        if (!has)
            state = "absent";
        else if (stored.len == SL_CHECKSUM_STRLEN && memcmp(stored.ptr, computed, SL_CHECKSUM_STRLEN) == 0)
            state = "verified";
        else {
            state = "MISMATCH";
            rc = SL_EXIT_FAIL;
        }
    }
    json_object *r = describe(path, g, state, verify ? computed : NULL);
    if (json)
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    else
        print_text(r, g);
    if (rc)
        fprintf(stderr, "sluice: %s: content checksum mismatch: the image is corrupt\n", path);
    json_object_put(r);
    sl_gguf_close(g);
    return rc;
}
