/* cmd_quantize.c - `sluice quantize`: a GGUF image into a smaller one, by
 * round-to-nearest, GPTQ or AWQ, with a per-tensor policy and recipes.
 *
 * The policy, per tensor: norms stay f32; rows that are not whole blocks
 * fall back to f16; with a 4-bit target the token embedding and the
 * classifier are kept at q8_0 (they are few bytes and their error reaches
 * every token); a recipe overrides any of it per tensor name.  GPTQ and AWQ
 * apply to the linear layers, whose inputs the calibration measures;
 * anything else is quantized by RTN, and every such choice is reported. */
#include <fnmatch.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sl_blas.h"
#include "sl_awq.h"
#include "sl_checksum.h"
#include "sl_calib.h"
#include "sl_gptq.h"
#include "sl_grid.h"
#include "sl_model_src.h"
#include "sl_types.h"
#include "sluice_cli.h"

enum { M_RTN, M_GPTQ, M_AWQ };
static const char *const method_names[] = {"rtn", "gptq", "awq"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice quantize IN -o OUT --type T [--method rtn|gptq|awq] [--calib FILE] [--calib-split SEP]\n"
            "                       [--calib-tokens N] [--calib-ctx N] [--damp F] [--act-order] [--awq-gptq]\n"
            "                       [--static] [--smooth ALPHA] [--recipe FILE] [--threads T] [--json]\n"
            "  IN is a GGUF image (f32, f16, bf16 or quantized: rows are dequantized first).\n"
            "  Types: q8_0 q4_0 q4_1 q4_K q6_K iq4_nl nf4 w8a8 (and f16 bf16 f32).\n"
            "  GPTQ and AWQ need --calib (text); they target every quantized type but w8a8.\n"
            "  w8a8: int8 weights per output row, int8 activations per token (dynamic), or with\n"
            "  --static one calibrated scale per input; --smooth ALPHA migrates activation outliers\n"
            "  into the weights first (SmoothQuant, alpha 0..1, 0.5 typical).  Both need --calib.\n"
            "  A recipe is JSON: {\"tensors\": [{\"match\": \"blk.*.ffn_down.weight\", \"type\": \"q8_0\",\n"
            "  \"method\": \"rtn\"}, ...]}; the first matching entry wins.\n");
}

/* What happens to one tensor. */
typedef struct plan {
    uint32_t type;
    int method;
    const char *why;    /* a fallback's reason, or NULL */
    int layer;          /* linear layers: their layer (n_layers: classifier), else -1 */
    sl_tap_point at;
    /* results */
    float alpha;        /* AWQ's exponent, or SmoothQuant's */
    float *w_scale;     /* w8a8: the rows' scales (owned until written) */
    float in_scale;     /* w8a8 --static: the input's scale */
    double err, err_rtn; /* relative output errors (-1: not measured) */
    double secs;
} plan;

typedef struct rule {
    char match[128];
    uint32_t type;   /* UINT32_MAX: not set */
    int method;      /* -1: not set */
} rule;

static int parse_method(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}

static int read_recipe(const char *path, rule **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    json_object *j = json_object_from_file(path);
    json_object *arr;
    if (!j || !json_object_object_get_ex(j, "tensors", &arr) || !json_object_is_type(arr, json_type_array)) {
        fprintf(stderr, "sluice: --recipe %s: not JSON with a \"tensors\" array\n", path);
        json_object_put(j);
        return -1;
    }
    const size_t n = json_object_array_length(arr);
    rule *r = calloc(n ? n : 1, sizeof *r);
    if (!r) {
        json_object_put(j);
        fprintf(stderr, "sluice: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i), *x;
        r[i].type = UINT32_MAX;
        r[i].method = -1;
        if (!json_object_object_get_ex(e, "match", &x) || !json_object_is_type(x, json_type_string) ||
            json_object_get_string_len(x) >= (int)sizeof r[i].match) {
            fprintf(stderr, "sluice: --recipe %s: entry %zu needs a \"match\" pattern (under 128 bytes)\n", path, i);
            goto bad;
        }
        snprintf(r[i].match, sizeof r[i].match, "%s", json_object_get_string(x));
        if (json_object_object_get_ex(e, "type", &x)) {
            const sl_type_traits *t = sl_type_by_name(json_object_get_string(x));
            if (!t || !(t->convertible || t->id == SL_TYPE_W8A8)) {
                fprintf(stderr, "sluice: --recipe %s: entry %zu: '%s' is not a type sluice writes\n", path, i,
                        json_object_get_string(x));
                goto bad;
            }
            r[i].type = t->id;
        }
        if (json_object_object_get_ex(e, "method", &x) && (r[i].method = parse_method(json_object_get_string(x))) < 0) {
            fprintf(stderr, "sluice: --recipe %s: entry %zu: method '%s' is not rtn, gptq or awq\n", path, i,
                    json_object_get_string(x));
            goto bad;
        }
    }
    json_object_put(j);
    *out = r;
    *n_out = (int)n;
    return 0;
bad:
    free(r);
    json_object_put(j);
    return -1;
}

/* "blk.N.attn_q.weight" and friends: the layer and the product's input. */
static int linear_role(const char *name, int n_layers, bool tied, int *layer, sl_tap_point *at)
{
    if (strcmp(name, "output.weight") == 0 || (tied && strcmp(name, "token_embd.weight") == 0)) {
        *layer = n_layers;
        *at = SL_TAP_OUT_IN;
        return 1;
    }
    int l, n = 0;
    char what[32];
    if (sscanf(name, "blk.%d.%31[a-z_].weight%n", &l, what, &n) != 2 || name[n] != '\0' || l < 0 || l >= n_layers)
        return 0;
    for (int i = 0; i < SL_LINEAR_ROLES; i++)
        if (strcmp(what, sl_linear_roles[i].name) == 0) {
            *layer = l;
            *at = sl_linear_roles[i].at;
            return 1;
        }
    return 0;
}

static bool four_bit(uint32_t t)
{
    return t == SL_TYPE_Q4_0 || t == SL_TYPE_Q4_1 || t == SL_TYPE_Q4_K || t == SL_TYPE_IQ4_NL || t == SL_TYPE_NF4;
}

/* A GGUF source keeps its hyper-parameters as metadata. */
static sl_status gguf_hparams(sl_model_src *src, sl_err *err)
{
    sl_llama_hparams *hp = &src->hp;
    sl_status st = sl_gguf_get_u32(src->gguf, "llama.block_count", &hp->n_layers, err);
    st = st ? st : sl_gguf_get_u32(src->gguf, "llama.attention.head_count", &hp->n_heads, err);
    if (!st && sl_gguf_get_u32(src->gguf, "llama.attention.head_count_kv", &hp->n_kv_heads, NULL) != SL_OK)
        hp->n_kv_heads = hp->n_heads;
    return st ? sl_err_prefix(err, st, "not a llama image") : SL_OK;
}

static void make_plans(sl_model_src *src, uint32_t type, int method, const rule *rules, int n_rules, plan *p)
{
    const int n_layers = (int)src->hp.n_layers;
    const bool tied = !sl_gguf_find_tensor(src->gguf, "output.weight");
    for (uint32_t i = 0; i < src->n_tensors; i++) {
        const sl_src_tensor *t = &src->tensors[i];
        plan *q = &p[i];
        *q = (plan){.type = type, .method = method, .layer = -1, .err = -1, .err_rtn = -1};
        const bool lin = linear_role(t->name, n_layers, tied, &q->layer, &q->at);
        const rule *r = NULL;
        for (int k = 0; k < n_rules && !r; k++)
            if (fnmatch(rules[k].match, t->name, 0) == 0)
                r = &rules[k];
        if (r && r->type != UINT32_MAX)
            q->type = r->type;
        if (r && r->method >= 0)
            q->method = r->method;
        if (!r && four_bit(type) && t->n_dims > 1 &&
            (strcmp(t->name, "token_embd.weight") == 0 || strcmp(t->name, "output.weight") == 0)) {
            q->type = SL_TYPE_Q8_0;
            q->why = "embedding / classifier kept at q8_0 with a 4-bit target";
        }
        if (q->type == SL_TYPE_W8A8 && !(lin && q->layer < n_layers)) {
            q->type = SL_TYPE_Q8_0;
            q->why = t->n_dims > 1 ? "w8a8 is for the blocks' linear layers: kept at q8_0" : NULL;
        }
        const char *why = NULL;
        const uint32_t pol = q->type == SL_TYPE_W8A8 ? q->type : sl_policy_type(q->type, t, t->type, &why);
        if (pol != q->type) {
            q->type = pol;
            q->why = why;
        }
        if (q->type == SL_TYPE_W8A8 && q->method != M_RTN) {
            q->method = M_RTN;
            q->why = "w8a8 weights are per-row int8 by RTN (use --smooth to move outliers)";
        }
        if (q->method != M_RTN && !(lin && sl_grid_supported(q->type))) {
            if (t->n_dims > 1 && !q->why)
                q->why = lin ? "rtn: the type has no GPTQ/AWQ grid" : "rtn: not a linear layer";
            q->method = M_RTN;
        }
        /* AWQ has nowhere to fold a classifier's scales (the final norm is
         * shared with nothing, but a tied table is also the embedding) */
        if (q->method == M_AWQ && q->layer == n_layers) {
            q->method = M_RTN;
            q->why = "rtn: AWQ leaves the classifier alone";
        }
    }
}

/* A tensor's rows as floats (dequantized from whatever the source holds). */
static float *load_float(const sl_src_tensor *t, sl_err *err)
{
    const uint64_t k = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *w = malloc(sizeof(float) * (size_t)(k * rows));
    if (!w) {
        sl_err_set(err, SL_ENOMEM, "out of memory for %s", t->name);
        return NULL;
    }
    for (uint64_t r = 0; r < rows; r++)
        if (sl_src_row_f32(t, r, w + r * k, err)) {
            free(w);
            return NULL;
        }
    return w;
}

/* The whole working state of one run. */
typedef struct qrun {
    sl_model_src *src;
    plan *p;
    float **fw;      /* float weights of tensors AWQ scaled (else NULL) */
    float **fs;      /* per tensor: the AWQ input scales applied to its columns (NULL: none) */
    sl_gptq_opts go;
    bool awq_gptq;
    float smooth;      /* SmoothQuant's alpha for w8a8 (0: none) */
    bool w8a8_static;  /* calibrated input scales */
    uint32_t n_plans;  /* p's length: the source's tensors before companions */
    int done, total; /* progress */
    double t0;
    bool tty;
} qrun;

static int find_tensor(const sl_model_src *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The float weights of tensor i, loaded on first use. */
static float *weights(qrun *q, int i, sl_err *err)
{
    if (!q->fw[i])
        q->fw[i] = load_float(&q->src->tensors[i], err);
    return q->fw[i];
}

/* SmoothQuant (Xiao et al., 2022): s_j = max|X_j|^alpha / max|W_j|^(1-alpha)
 * over the group's matrices, so x / s and W s share the range. */
static void smooth_scales(const float *const *W, const int *rows, int n_mats, int k, const sl_calib_slot *slot,
                          float alpha, float *s)
{
    for (int j = 0; j < k; j++) {
        float wmax = 0.0f;
        for (int i = 0; i < n_mats; i++)
            for (int r = 0; r < rows[i]; r++)
                wmax = fmaxf(wmax, fabsf(W[i][(size_t)r * (size_t)k + (size_t)j]));
        const float xmax = slot->abs_max[j];
        const float v = xmax > 0.0f && wmax > 0.0f ? powf(xmax, alpha) / powf(wmax, 1.0f - alpha) : 1.0f;
        s[j] = fminf(fmaxf(v, 1e-4f), 1e4f); /* a dead channel must not blow up its weights */
    }
}

/* AWQ or SmoothQuant for one layer: each input group's scales (searched,
 * or SmoothQuant's), folded into the producer of the input, the
 * consumers' columns scaled. */
static sl_status awq_layer(qrun *q, const sl_calib *c, int l, sl_err *err)
{
    const sl_model_src *s = q->src;
    /* the layer's linear layers in sl_linear_roles' order, then its norms */
    int idx[SL_LINEAR_ROLES + 2];
    for (int i = 0; i < SL_LINEAR_ROLES + 2; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "blk.%d.%s.weight", l,
                 i < SL_LINEAR_ROLES ? sl_linear_roles[i].name : i == SL_LINEAR_ROLES ? "attn_norm" : "ffn_norm");
        if ((idx[i] = find_tensor(s, nm)) < 0)
            return sl_err_set(err, SL_ENOTFOUND, "AWQ: %s is missing", nm);
    }
    const bool mha = s->hp.n_heads == s->hp.n_kv_heads;
    /* groups: consumers, the input, the producer to fold 1/s into (a norm
     * vector, or the rows of a matrix) */
    struct {
        int m[3], n;
        sl_tap_point at;
        int fold;
        bool fold_rows;
    } groups[4] = {{{idx[0], idx[1], idx[2]}, 3, SL_TAP_ATTN_IN, idx[7], false},
                   {{idx[3]}, 1, SL_TAP_WO_IN, idx[2], true},
                   {{idx[4], idx[5]}, 2, SL_TAP_FFN_IN, idx[8], false},
                   {{idx[6]}, 1, SL_TAP_DOWN_IN, idx[5], true}};
    for (int g = 0; g < 4; g++) {
        if (g == 1 && !mha) /* GQA: a value channel feeds several heads' outputs */
            continue;
        bool all = true, smooth = q->smooth > 0.0f;
        for (int i = 0; i < groups[g].n; i++) {
            all = all && q->p[groups[g].m[i]].method == M_AWQ;
            smooth = smooth && q->p[groups[g].m[i]].type == SL_TYPE_W8A8;
        }
        if (!all && !smooth)
            continue;
        const sl_calib_slot *slot = sl_calib_slot_for(c, l, groups[g].at);
        if (!slot || !slot->abs_max)
            return sl_err_set(err, SL_EINVAL, "layer %d: no calibration inputs", l);
        const float *W[3];
        int rows[3];
        const int k = (int)s->tensors[groups[g].m[0]].ne[0];
        for (int i = 0; i < groups[g].n; i++) {
            const int t = groups[g].m[i];
            if (!(W[i] = weights(q, t, err)))
                return sl_err_prefix(err, SL_ENOMEM, "AWQ");
            rows[i] = (int)s->tensors[t].ne[1];
        }
        float *sc = malloc(sizeof(float) * (size_t)k);
        if (!sc)
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        float alpha = q->smooth;
        double e = -1, e0 = -1;
        sl_status st = SL_OK;
        if (smooth)
            smooth_scales(W, rows, groups[g].n, k, slot, q->smooth, sc);
        else
            st = sl_awq_search(q->p[groups[g].m[0]].type, W, rows, groups[g].n, k, slot, sc, &alpha, &e, &e0, err);
        if (st) {
            free(sc);
            return sl_err_prefix(err, st, "AWQ, layer %d", l);
        }
        for (int i = 0; i < groups[g].n; i++) {
            const int t = groups[g].m[i];
            float *w = q->fw[t];
            for (size_t r = 0; r < (size_t)rows[i]; r++)
                for (int j = 0; j < k; j++)
                    w[r * (size_t)k + (size_t)j] *= sc[j];
            q->p[t].alpha = alpha;
            q->p[t].err = e;
            q->p[t].err_rtn = e0;
            free(q->fs[t]);
            q->fs[t] = sc;
            if (i + 1 < groups[g].n && !(sc = malloc(sizeof(float) * (size_t)k))) /* one copy per consumer */
                return sl_err_set(err, SL_ENOMEM, "out of memory");
            if (i + 1 < groups[g].n)
                memcpy(sc, q->fs[t], sizeof(float) * (size_t)k);
        }
        const float *s_used = q->fs[groups[g].m[0]];
        float *prod = weights(q, groups[g].fold, err);
        if (!prod)
            return sl_err_prefix(err, SL_ENOMEM, "AWQ");
        if (groups[g].fold_rows) { /* the producer's output channel j feeds input j */
            const size_t pk = (size_t)s->tensors[groups[g].fold].ne[0];
            for (int j = 0; j < k; j++)
                for (size_t i = 0; i < pk; i++)
                    prod[(size_t)j * pk + i] /= s_used[j];
        } else
            for (int j = 0; j < k; j++)
                prod[j] /= s_used[j];
    }
    return SL_OK;
}

static void progress(qrun *q, const char *name)
{
    q->done++;
    if (!q->tty)
        return;
    const double el = (sl_cli_now_us() - q->t0) / 1e6;
    const double eta = q->done ? el / q->done * (q->total - q->done) : 0.0;
    fprintf(stderr, "\r\033[K[%d/%d] %s  %.1f s, ETA %.0f s", q->done, q->total, name, el, eta);
    if (q->done == q->total)
        fputc('\n', stderr);
}

/* Quantizes tensor i by its plan into new bytes the source then serves. */
static sl_status quantize_tensor(qrun *q, int i, const sl_calib *c, sl_err *err)
{
    sl_src_tensor *t = &q->src->tensors[i];
    plan *p = &q->p[i];
    const double t0 = sl_cli_now_us();
    const int k = (int)t->ne[0], rows = (int)(t->ne[1] * t->ne[2] * t->ne[3]);
    const bool gptq = p->method == M_GPTQ || (p->method == M_AWQ && q->awq_gptq);
    float *w = weights(q, i, err);
    if (!w)
        return sl_err_prefix(err, SL_ENOMEM, "%s", t->name);
    uint64_t rb;
    sl_status st = sl_type_row_bytes(p->type, (uint64_t)k, &rb, err);
    uint8_t *out = st ? NULL : malloc((size_t)rb * (size_t)rows);
    if (!st && !out)
        st = sl_err_set(err, SL_ENOMEM, "out of memory for %s", t->name);
    if (!st && gptq) {
        const sl_calib_slot *slot = sl_calib_slot_for(c, p->layer, p->at);
        float *H = slot ? malloc(sizeof(float) * (size_t)k * (size_t)k) : NULL;
        float *orig = slot ? malloc(sizeof(float) * (size_t)k * (size_t)rows) : NULL;
        if (!slot || slot->k != k)
            st = sl_err_set(err, SL_EINVAL, "%s: no calibration inputs of width %d", t->name, k);
        else if (!H || !orig)
            st = sl_err_set(err, SL_ENOMEM, "out of memory for %s", t->name);
        if (!st) {
            memcpy(H, slot->H, sizeof(float) * (size_t)k * (size_t)k);
            const float *s = q->fs[i]; /* scaled columns see inputs x / s */
            if (s)
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++)
                        H[(size_t)a * k + b] /= s[a] * s[b];
            memcpy(orig, w, sizeof(float) * (size_t)k * (size_t)rows);
            float *Hm = malloc(sizeof(float) * (size_t)k * (size_t)k);
            if (!Hm)
                st = sl_err_set(err, SL_ENOMEM, "out of memory for %s", t->name);
            else {
                memcpy(Hm, H, sizeof(float) * (size_t)k * (size_t)k);
                st = sl_gptq_quantize(p->type, w, rows, k, Hm, &q->go, out, err);
                free(Hm);
            }
            /* the output error it reached, and RTN's on the same inputs */
            for (int r = 0; r < rows && !st; r++)
                st = sl_dequantize_row(p->type, out + (size_t)r * rb, w + (size_t)r * k, (uint64_t)k, err);
            if (!st && p->method == M_GPTQ) {
                p->err = sl_output_error(orig, w, rows, k, H);
                /* RTN's error on the same inputs, 512 rows at a time */
                float *rt = malloc(sizeof(float) * (size_t)k * 512);
                double num = 0.0, den = 0.0;
                for (int r0 = 0; rt && r0 < rows; r0 += 512) {
                    const int n = rows - r0 < 512 ? rows - r0 : 512;
                    double a, b;
                    if (sl_rtn_roundtrip(p->type, orig + (size_t)r0 * k, n, k, rt, err))
                        break;
                    sl_output_error_parts(orig + (size_t)r0 * k, rt, n, k, H, &a, &b);
                    num += a, den += b;
                }
                p->err_rtn = rt && den > 0 ? num / den : -1;
                free(rt);
            }
        }
        free(H);
        free(orig);
    } else if (!st && p->type == SL_TYPE_W8A8) {
        if (!(p->w_scale = malloc(sizeof(float) * (size_t)rows)))
            st = sl_err_set(err, SL_ENOMEM, "out of memory for %s", t->name);
        for (int r = 0; r < rows && !st; r++)
            st = sl_w8a8_quantize_row(w + (size_t)r * k, (int8_t *)out + (size_t)r * (size_t)k, (uint64_t)k,
                                      &p->w_scale[r], err);
        if (!st && q->w8a8_static) { /* the largest input seen (as scaled), over 127 */
            const sl_calib_slot *slot = sl_calib_slot_for(c, p->layer, p->at);
            if (!slot || slot->k != k || !slot->abs_max)
                st = sl_err_set(err, SL_EINVAL, "%s: no calibration inputs of width %d", t->name, k);
            float xmax = 0.0f;
            for (int j = 0; j < k && !st; j++)
                xmax = fmaxf(xmax, slot->abs_max[j] / (q->fs[i] ? q->fs[i][j] : 1.0f));
            p->in_scale = xmax > 0.0f ? xmax / 127.0f : 1.0f; /* a dead input: any scale */
        }
    } else if (!st && p->method == M_AWQ) {
        /* AWQ's clipping: each block's scale by the output error it causes,
         * columns weighted by their mean squared input (x / s once scaled) */
        const sl_calib_slot *slot = sl_calib_slot_for(c, p->layer, p->at);
        float *h = slot && slot->k == k ? malloc(sizeof(float) * (size_t)k) : NULL;
        if (!h)
            st = sl_err_set(err, SL_ENOMEM, "%s: no calibration inputs of width %d", t->name, k);
        for (int j = 0; j < k && !st; j++) {
            const float sj = q->fs[i] ? q->fs[i][j] : 1.0f;
            h[j] = slot->H[(size_t)j * k + j] / (float)slot->n / (sj * sj);
        }
        const sl_type_traits *tt = sl_type_get(p->type);
        const int span = sl_grid_span(p->type), sub = sl_grid_sub(p->type);
        const size_t span_bytes = (size_t)tt->block_bytes * (size_t)(span / (int)tt->block_elems);
        for (int r = 0; r < rows && !st; r++)
            for (int b = 0; b < k / span && !st; b++) {
                const float *v = w + (size_t)r * k + (size_t)b * span;
                sl_grid g[16];
                int8_t qs[SL_QKK];
                st = sl_grid_make(p->type, v, h + (size_t)b * span, g, err);
                for (int j = 0; j < span && !st; j++)
                    qs[j] = (int8_t)sl_grid_quant(&g[j / sub], v[j]);
                if (!st)
                    sl_grid_pack(p->type, g, qs, out + (size_t)r * rb + (size_t)b * span_bytes);
            }
        free(h);
    } else if (!st) {
        for (int r = 0; r < rows && !st; r++)
            st = sl_quantize_row(p->type, w + (size_t)r * k, out + (size_t)r * rb, (uint64_t)k, err);
    }
    if (st) {
        free(out);
        return sl_err_prefix(err, st, "%s", t->name);
    }
    if ((st = sl_model_src_own(q->src, out, err))) /* frees out on failure */
        return sl_err_prefix(err, st, "%s", t->name);
    t->type = p->type;
    t->data = out;
    t->rows = NULL;
    t->scales = NULL;
    t->perm_heads = 0;
    free(q->fw[i]);
    q->fw[i] = NULL;
    p->secs = (sl_cli_now_us() - t0) / 1e6;
    progress(q, t->name);
    return SL_OK;
}

/* Norms AWQ changed: their new floats become the tensor's bytes. */
static sl_status commit_floats(qrun *q, int i, sl_err *err)
{
    sl_src_tensor *t = &q->src->tensors[i];
    sl_status st = sl_model_src_own(q->src, q->fw[i], err); /* frees it on failure */
    if (st) {
        q->fw[i] = NULL;
        return st;
    }
    t->type = SL_TYPE_F32;
    t->data = (const uint8_t *)q->fw[i];
    t->rows = NULL;
    q->fw[i] = NULL;
    return SL_OK;
}

/* Matrices sharing an input are quantized once per token by the engine:
 * all w8a8 or none (a recipe may not split them). */
static sl_status w8a8_groups(const sl_model_src *s, const plan *p, sl_err *err)
{
    static const char *const groups[2][3] = {{"attn_q", "attn_k", "attn_v"}, {"ffn_gate", "ffn_up", NULL}};
    for (uint32_t l = 0; l < s->hp.n_layers; l++)
        for (int g = 0; g < 2; g++) {
            int n8 = 0, n = 0;
            for (int m = 0; m < 3 && groups[g][m]; m++) {
                char nm[64];
                snprintf(nm, sizeof nm, "blk.%u.%s.weight", l, groups[g][m]);
                const int i = find_tensor(s, nm);
                n += i >= 0;
                n8 += i >= 0 && p[i].type == SL_TYPE_W8A8;
            }
            if (n8 && n8 != n)
                return sl_err_set(err, SL_EINVAL,
                                  "layer %u: %s share an input, so they must all be w8a8 or none (check the recipe)", l,
                                  g ? "ffn_gate and ffn_up" : "attn_q, attn_k and attn_v");
        }
    return SL_OK;
}

/* A w8a8 matrix's row scales ("<name>_scale") and static input scale
 * ("<prefix>.input_scale") become f32 tensors of their own. */
static sl_status add_w8a8_companions(qrun *q, uint32_t **types, sl_err *err)
{
    sl_model_src *s = q->src;
    for (uint32_t i = 0; i < q->n_plans; i++) {
        plan *p = &q->p[i];
        if (p->type != SL_TYPE_W8A8 || !p->w_scale)
            continue;
        for (int part = 0; part < (p->in_scale > 0.0f ? 2 : 1); part++) {
            char nm[128];
            const char *name = s->tensors[i].name;
            const size_t len = strlen(name);
            if (part == 0)
                snprintf(nm, sizeof nm, "%s_scale", name);
            else
                snprintf(nm, sizeof nm, "%.*sinput_scale", (int)(len - 6), name); /* "...weight" */
            float *data = part == 0 ? p->w_scale : malloc(sizeof(float));
            if (!data)
                return sl_err_set(err, SL_ENOMEM, "out of memory");
            if (part == 1)
                *data = p->in_scale;
            else
                p->w_scale = NULL; /* the source owns it from here */
            const uint64_t ne[1] = {part == 0 ? s->tensors[i].ne[1] : 1};
            if (sl_model_src_own(s, data, err))
                return SL_ENOMEM;
            sl_src_tensor *t = sl_model_src_add(s, nm, 1, ne, err);
            uint32_t *nt = t ? realloc(*types, sizeof **types * s->n_tensors) : NULL;
            if (!nt)
                return sl_err_set(err, SL_ENOMEM, "out of memory");
            *types = nt;
            nt[s->n_tensors - 1] = SL_TYPE_F32;
            t->data = (const uint8_t *)data;
        }
    }
    return SL_OK;
}

/* Calibration sequences, cut to at most max_tokens tokens in all. */
static int calib_seqs(const sl_model *m, const char *path, char *split, int ctx, long long max_tokens, sl_eval_seq **seqs,
                      int32_t **store, int *n)
{
    if (sl_cli_eval_data(m, path, NULL, split, 0, ctx, seqs, store, n))
        return SL_EXIT_ERROR;
    long long used = 0;
    for (int i = 0; i < *n; i++) {
        if (max_tokens > 0 && used + (*seqs)[i].n > max_tokens) {
            (*seqs)[i].n = (int)(max_tokens - used);
            *n = (*seqs)[i].n >= 2 ? i + 1 : i;
            used = max_tokens;
            break;
        }
        used += (*seqs)[i].n;
    }
    if (*n == 0) {
        fprintf(stderr, "sluice: --calib gives no sequence to run\n");
        return SL_EXIT_ERROR;
    }
    return SL_EXIT_OK;
}

/* Debian 12's OpenBLAS (0.3.21) does not know Sapphire Rapids and later
 * and falls back to its SSE3 ("Prescott") kernels, at half the speed of
 * its AVX-512 ones on GPTQ's products.  It picks its kernels when the
 * library loads, so the only remedy from inside is to run again with
 * OPENBLAS_CORETYPE set; done once, and only where AVX-512 is there. */
static void openblas_kernels(char **argv)
{
    const sl_blas_fns *blas = sl_blas(NULL); /* this command is the one that loads it */
    const char *core = blas ? blas->corename() : NULL;
    if (getenv("OPENBLAS_CORETYPE") || !core || strcasecmp(core, "prescott") != 0 ||
        !__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw"))
        return;
    if (setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) == 0)
        execv("/proc/self/exe", argv - 1); /* argv[-1] is "sluice"; on failure, carry on as we are */
}

int sl_cmd_quantize(int argc, char **argv)
{
    openblas_kernels(argv);
    enum { O_TYPE = 256, O_METHOD, O_CALIB, O_CSPLIT, O_CTOK, O_CCTX, O_DAMP, O_ACT, O_AWQG, O_RECIPE, O_JSON, O_STATIC,
           O_SMOOTH };
    static const struct option opts[] = {
        {"type", required_argument, 0, O_TYPE},          {"method", required_argument, 0, O_METHOD},
        {"calib", required_argument, 0, O_CALIB},        {"calib-split", required_argument, 0, O_CSPLIT},
        {"calib-tokens", required_argument, 0, O_CTOK},  {"calib-ctx", required_argument, 0, O_CCTX},
        {"damp", required_argument, 0, O_DAMP},          {"act-order", no_argument, 0, O_ACT},
        {"awq-gptq", no_argument, 0, O_AWQG},            {"recipe", required_argument, 0, O_RECIPE},
        {"threads", required_argument, 0, 'T'},          {"json", no_argument, 0, O_JSON},
        {"static", no_argument, 0, O_STATIC},            {"smooth", required_argument, 0, O_SMOOTH},
        {"help", no_argument, 0, 'h'},                   {0, 0, 0, 0}};
    const char *out_path = NULL, *calib = NULL, *recipe = NULL;
    char *csplit = NULL;
    uint32_t type = UINT32_MAX;
    int method = M_RTN, json = 0, c;
    long long ctok = 0, cctx = 0, v;
    double damp = 0.01;
    qrun q = {0};
    sl_engine_cfg ec = {.isa = -1, .max_seqs = 16, .pin = 2};
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_path = optarg; break;
        case O_TYPE: {
            const sl_type_traits *t = sl_type_by_name(optarg);
            if (!t || !(t->convertible || t->id == SL_TYPE_W8A8)) {
                fprintf(stderr, "sluice: --type %s: not a type sluice writes\n", optarg);
                return SL_EXIT_ERROR;
            }
            type = t->id;
            break;
        }
        case O_METHOD:
            if ((method = parse_method(optarg)) < 0) {
                fprintf(stderr, "sluice: --method %s: not rtn, gptq or awq\n", optarg);
                return SL_EXIT_ERROR;
            }
            break;
        case O_CALIB: calib = optarg; break;
        case O_CSPLIT: csplit = optarg; break;
        case O_CTOK: if (sl_cli_int("--calib-tokens", optarg, 16, 1ll << 32, &ctok)) return SL_EXIT_ERROR; break;
        case O_CCTX: if (sl_cli_int("--calib-ctx", optarg, 8, 1 << 20, &cctx)) return SL_EXIT_ERROR; break;
        case O_DAMP: if (sl_cli_float("--damp", optarg, 1e-6, 10.0, &damp)) return SL_EXIT_ERROR; break;
        case O_ACT: q.go.act_order = true; break;
        case O_AWQG: q.awq_gptq = true; break;
        case O_STATIC: q.w8a8_static = true; break;
        case O_SMOOTH: {
            double a;
            if (sl_cli_float("--smooth", optarg, 0.01, 0.99, &a))
                return SL_EXIT_ERROR;
            q.smooth = (float)a;
            break;
        }
        case O_RECIPE: recipe = optarg; break;
        case 'T': if (sl_cli_int("--threads", optarg, 1, 1024, &v)) return SL_EXIT_ERROR; ec.n_threads = (int)v; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || !out_path || type == UINT32_MAX) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    q.go.damp = (float)damp;
    const char *in_path = argv[optind];
    rule *rules = NULL;
    int n_rules = 0, rc = SL_EXIT_ERROR;
    sl_model_src src = {0};
    sl_model *m = NULL;
    sl_engine *e = NULL;
    sl_calib *cal = NULL;
    sl_eval_seq *seqs = NULL;
    int32_t *store = NULL;
    int n_seqs = 0;
    uint32_t *types = NULL;
    long long calib_tokens = 0;
    double calib_secs = 0.0;
    sl_err err = {0};
    const double t_start = sl_cli_now_us();
    if (recipe && read_recipe(recipe, &rules, &n_rules))
        return SL_EXIT_ERROR;
    if (sl_import_gguf(in_path, &src, &err) || gguf_hparams(&src, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    q.src = &src;
    q.p = calloc(src.n_tensors, sizeof *q.p);
    q.n_plans = src.n_tensors;
    q.fw = calloc(src.n_tensors, sizeof *q.fw);
    q.fs = calloc(src.n_tensors, sizeof *q.fs);
    types = calloc(src.n_tensors, sizeof *types);
    if (!q.p || !q.fw || !q.fs || !types) {
        fprintf(stderr, "sluice: out of memory\n");
        goto out;
    }
    make_plans(&src, type, method, rules, n_rules, q.p);
    bool need_calib = false, need_awq = false, any_w8a8 = false;
    for (uint32_t i = 0; i < src.n_tensors; i++) {
        any_w8a8 = any_w8a8 || q.p[i].type == SL_TYPE_W8A8;
        need_calib = need_calib || q.p[i].method != M_RTN ||
                     (q.p[i].type == SL_TYPE_W8A8 && (q.w8a8_static || q.smooth > 0.0f));
        need_awq = need_awq || q.p[i].method == M_AWQ;
        types[i] = q.p[i].type;
        if (q.p[i].method != M_RTN || (q.p[i].type != src.tensors[i].type && src.tensors[i].n_dims > 1))
            q.total++;
    }
    if ((q.w8a8_static || q.smooth > 0.0f) && !any_w8a8) {
        fprintf(stderr, "sluice: --static and --smooth apply to w8a8 tensors, and there are none\n");
        goto out;
    }
    if (need_calib && !calib) {
        fprintf(stderr, "sluice: GPTQ, AWQ, and w8a8's --static and --smooth need --calib FILE (text the model "
                        "will read)\n");
        goto out;
    }
    if (w8a8_groups(&src, q.p, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    q.tty = !json && isatty(2);
    q.t0 = sl_cli_now_us();
    if (need_calib) {
        /* the engine reads the very pages the source maps: a second
         * mapping would hold the input twice while both are touched */
        sl_gguf *g2 = NULL;
        if (sl_gguf_parse(src.gguf->base, src.gguf->size, 0, &g2, &err) || sl_model_from_gguf(g2, &m, &err)) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            goto out;
        }
        const int ctx = (int)(cctx ? cctx : (m->ctx < 512 ? m->ctx : 512));
        ec.ctx = ctx;
        ec.kv_blocks = 16 * sl_kv_blocks_for(ctx);
        if (sl_cli_engine(in_path, m, &ec, &e) || calib_seqs(m, calib, csplit, ctx, ctok, &seqs, &store, &n_seqs))
            goto out;
        for (int i = 0; i < n_seqs; i++)
            calib_tokens += seqs[i].n;
    }
    /* Layers in groups whose statistics fit 1 GiB (all at once for the
     * shapes sluice ships); each group is one calibration pass. */
    const int n_layers = (int)src.hp.n_layers;
    for (int l0 = 0; l0 <= n_layers;) {
        int l1 = l0;
        if (need_calib)
            while (l1 < n_layers && sl_calib_bytes(m, l0, l1 + 1, need_awq ? 128 : 0) <= (1ull << 30))
                l1++;
        else
            l1 = n_layers;
        const double tc = sl_cli_now_us();
        if (need_calib && sl_calib_run(e, seqs, n_seqs, l0, l1, need_awq ? 128 : 0, true, &cal, &err)) {
            fprintf(stderr, "sluice: calibration: %s\n", err.msg);
            goto out;
        }
        calib_secs += (sl_cli_now_us() - tc) / 1e6;
        if (l1 == n_layers) { /* the last pass: the engine's own mapping of the input can go */
            sl_engine_destroy(e);
            e = NULL;
            sl_model_close(m);
            m = NULL;
        }
        /* layer by layer, so only one layer's float weights are held */
        for (int l = l0; l <= l1; l++) {
            if ((need_awq || q.smooth > 0.0f) && l < n_layers && awq_layer(&q, cal, l, &err))
                goto fail;
            for (uint32_t i = 0; i < src.n_tensors; i++) {
                const plan *p = &q.p[i];
                const sl_src_tensor *t = &src.tensors[i];
                if (p->layer == l && t->n_dims > 1 && (p->method != M_RTN || q.fw[i] || p->type != t->type) &&
                    quantize_tensor(&q, (int)i, cal, &err))
                    goto fail;
            }
        }
        if (l1 == n_layers) /* the norms AWQ folded scales into */
            for (uint32_t i = 0; i < src.n_tensors; i++)
                if (src.tensors[i].n_dims == 1 && q.fw[i] && commit_floats(&q, (int)i, &err))
                    goto fail;
        sl_calib_free(cal);
        cal = NULL;
        l0 = l1 + 1;
    }
    /* the rest (embeddings when untied, anything not linear) converts as the writer goes */
    for (uint32_t i = 0; i < src.n_tensors; i++)
        if (q.p[i].layer < 0 && src.tensors[i].n_dims > 1 && q.p[i].type != src.tensors[i].type)
            progress(&q, src.tensors[i].name);
    const uint32_t n_plans = src.n_tensors; /* companions come after */
    if (add_w8a8_companions(&q, &types, &err))
        goto fail;
    {
        char desc[1024], sum[SL_CHECKSUM_STRLEN + 1];
        char w8[48] = "";
        if (q.w8a8_static || q.smooth > 0.0f)
            snprintf(w8, sizeof w8, "%s%s%.2f", q.w8a8_static ? " --static" : "", q.smooth > 0.0f ? " --smooth " : "",
                     (double)q.smooth);
        if (q.smooth <= 0.0f && q.w8a8_static)
            w8[sizeof " --static" - 1] = 0; /* no alpha to print */
        snprintf(desc, sizeof desc, "quantize --type %s --method %s%s%s%s%s%s (%lld calibration tokens)%s%s",
                 sl_type_get(type)->name, method_names[method], w8, q.go.act_order ? " --act-order" : "",
                 q.awq_gptq ? " --awq-gptq" : "", calib ? " --calib " : "", calib ? calib : "", calib_tokens,
                 recipe ? " --recipe " : "", recipe ? recipe : "");
        snprintf(src.source, sizeof src.source, "gguf:%s", in_path);
        sl_write_opts o = {.type = type, .recipe = desc, .report = NULL, .types = types};
        if (sl_model_write(&src, out_path, &o, sum, &err)) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            goto out;
        }
        const double secs = (sl_cli_now_us() - t_start) / 1e6;
        if (json) {
            json_object *j = json_object_new_object();
            json_object_object_add(j, "output", json_object_new_string(out_path));
            json_object_object_add(j, "checksum", json_object_new_string(sum));
            json_object_object_add(j, "type", json_object_new_string(sl_type_get(type)->name));
            json_object_object_add(j, "method", json_object_new_string(method_names[method]));
            json_object_object_add(j, "calibration_tokens", json_object_new_int64(calib_tokens));
            json_object_object_add(j, "seconds", json_object_new_double(secs));
            json_object_object_add(j, "calibration_seconds", json_object_new_double(calib_secs));
            json_object_object_add(j, "peak_rss_bytes", json_object_new_int64((int64_t)sl_cli_peak_rss()));
            json_object *ta = json_object_new_array();
            for (uint32_t i = 0; i < n_plans; i++) {
                const plan *p = &q.p[i];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "name", json_object_new_string(src.tensors[i].name));
                json_object_object_add(x, "type", json_object_new_string(sl_type_get(p->type)->name));
                json_object_object_add(x, "method", json_object_new_string(method_names[p->method]));
                if (p->why)
                    json_object_object_add(x, "fallback", json_object_new_string(p->why));
                if (p->err >= 0)
                    json_object_object_add(x, "output_error", json_object_new_double(p->err));
                if (p->err_rtn >= 0)
                    json_object_object_add(x, "rtn_output_error", json_object_new_double(p->err_rtn));
                if (p->method == M_AWQ)
                    json_object_object_add(x, "awq_alpha", json_object_new_double(p->alpha));
                if (p->type == SL_TYPE_W8A8 && q.smooth > 0.0f)
                    json_object_object_add(x, "smooth_alpha", json_object_new_double(q.smooth));
                if (p->type == SL_TYPE_W8A8 && p->in_scale > 0.0f)
                    json_object_object_add(x, "input_scale", json_object_new_double(p->in_scale));
                json_object_array_add(ta, x);
            }
            json_object_object_add(j, "tensors", ta);
            printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
            json_object_put(j);
        } else {
            for (uint32_t i = 0; i < n_plans; i++)
                if (q.p[i].why && src.tensors[i].n_dims > 1)
                    printf("  %-28s %-5s %s\n", src.tensors[i].name, sl_type_get(q.p[i].type)->name, q.p[i].why);
            printf("wrote %s: %s, %s, %lld calibration tokens, %.1f s, peak RSS %.1f MB, %s\n", out_path,
                   sl_type_get(type)->name, method_names[method], calib_tokens, secs, (double)sl_cli_peak_rss() / 1e6,
                   sum);
        }
    }
    rc = SL_EXIT_OK;
    goto out;
fail:
    fprintf(stderr, "sluice: %s\n", err.msg);
out:
    sl_calib_free(cal);
    for (uint32_t i = 0; q.fw && i < q.n_plans; i++) /* the arrays predate the companion tensors */
        free(q.fw[i]);
    for (uint32_t i = 0; q.fs && i < q.n_plans; i++)
        free(q.fs[i]);
    for (uint32_t i = 0; q.p && i < q.n_plans; i++)
        free(q.p[i].w_scale);
    free(q.fw);
    free(q.fs);
    free(q.p);
    free(types);
    free(rules);
    free(seqs);
    free(store);
    sl_engine_destroy(e);
    sl_model_close(m);
    sl_model_src_free(&src);
    return rc;
}
