/* cmd_validate.c - `sluice validate`: the quality gate.
 *
 * Scores a candidate image against its base on the same data (perplexity of
 * both, KL divergence per position, top-1 agreement), measures each linear
 * layer's output error on inputs taken from the base, judges the numbers
 * against the limits, and writes the verdict into the candidate
 * (sl_quality.h), bound to both content checksums.  Exit status: 0 pass,
 * 1 fail, 2 error. */
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_calib.h"
#include "sl_quality_write.h"
#include "sl_types.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice validate CANDIDATE --base BASE (--text FILE | --tokens FILE) [--split SEP]\n"
            "                       [--max-pieces N] [--ctx N] [--max-ppl-ratio R] [--max-mean-kld K]\n"
            "                       [--max-p99-kld K] [--min-top1 A] [--layer-tokens N] [--dry-run]\n"
            "                       [--threads T] [--isa ISA] [--json]\n"
            "  Limits default to --max-ppl-ratio 1.10 --max-mean-kld 0.10 --max-p99-kld 1.0 --min-top1 0.85.\n"
            "  The verdict is written into CANDIDATE (not with --dry-run).  Exit status: 0 pass, 1 fail, 2 error.\n");
}

/* ---- per-linear output error ------------------------------------------ */

typedef struct lin_err {
    char name[48];
    double rel; /* ||y_cand - y_base|| / ||y_base|| over the captured inputs */
} lin_err;

/* Relative output error of one matrix pair on n inputs of k values. */
static sl_status matrix_error(const sl_wmat *b, const sl_wmat *c, const float *x, int n, double *rel, sl_err *err)
{
    const int k = b->cols;
    float *wb = malloc(sizeof(float) * (size_t)k), *wc = malloc(sizeof(float) * (size_t)k);
    sl_status st = wb && wc ? SL_OK : sl_err_set(err, SL_ENOMEM, "out of memory");
    double num = 0.0, den = 0.0;
    for (int r = 0; r < b->rows && !st; r++) {
        st = sl_wmat_row_f32(b, r, wb, err);
        st = st ? st : sl_wmat_row_f32(c, r, wc, err);
        for (int t = 0; t < n && !st; t++) {
            const float *xt = x + (size_t)t * (size_t)k;
            float yb = 0.0f, yc = 0.0f;
            for (int i = 0; i < k; i++) {
                yb += wb[i] * xt[i];
                yc += wc[i] * xt[i];
            }
            num += ((double)yc - yb) * ((double)yc - yb);
            den += (double)yb * yb;
        }
    }
    free(wb);
    free(wc);
    *rel = den > 0.0 ? sqrt(num / den) : 0.0;
    return st;
}

static int by_rel_desc(const void *a, const void *b)
{
    const double x = ((const lin_err *)a)->rel, y = ((const lin_err *)b)->rel;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Runs sequences through the base, keeping up to max_tokens inputs of
 * every product, then measures every linear layer; errs sorted worst
 * first. */
static sl_status layer_errors(sl_engine *be, const sl_model *bm, const sl_model *cm, const sl_eval_seq *seqs,
                              int n_seqs, int max_tokens, lin_err **errs_out, int *n_out, sl_err *err)
{
    *errs_out = NULL;
    *n_out = 0;
    lin_err *e = calloc((size_t)bm->n_layers * SL_LINEAR_ROLES + 1, sizeof *e);
    if (!e)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    int used = 0, tokens = 0;
    while (used < n_seqs && tokens < max_tokens)
        tokens += seqs[used++].n;
    sl_calib *cap = NULL;
    sl_status st = sl_calib_run(be, seqs, used, 0, bm->n_layers, max_tokens, false, &cap, err);
    int n = 0;
    for (int l = 0; l <= bm->n_layers && !st; l++) {
        for (int j = 0; j < (l < bm->n_layers ? SL_LINEAR_ROLES : 1) && !st; j++) {
            const sl_wmat *wb, *wc;
            sl_tap_point p;
            if (l == bm->n_layers) {
                wb = &bm->output, wc = &cm->output, p = SL_TAP_OUT_IN;
                snprintf(e[n].name, sizeof e[n].name, "output");
            } else {
                /* in sl_linear_roles' order */
                const sl_layer *B = &bm->layers[l], *C = &cm->layers[l];
                const sl_wmat *bw[SL_LINEAR_ROLES] = {&B->wq, &B->wk, &B->wv, &B->wo, &B->w_gate, &B->w_up, &B->w_down};
                const sl_wmat *cw[SL_LINEAR_ROLES] = {&C->wq, &C->wk, &C->wv, &C->wo, &C->w_gate, &C->w_up, &C->w_down};
                wb = bw[j], wc = cw[j], p = sl_linear_roles[j].at;
                snprintf(e[n].name, sizeof e[n].name, "blk.%d.%s", l, sl_linear_roles[j].name);
            }
            const sl_calib_slot *s = sl_calib_slot_for(cap, l, p);
            if (!s || s->k != wb->cols)
                continue;
            st = matrix_error(wb, wc, s->sample, s->n_sample, &e[n].rel, err);
            n++;
        }
    }
    sl_calib_free(cap);
    if (st) {
        free(e);
        return st;
    }
    qsort(e, (size_t)n, sizeof *e, by_rel_desc);
    *errs_out = e;
    *n_out = n;
    return SL_OK;
}

/* ---- the gate ---------------------------------------------------------- */

/* The two images must score the same tokens the same way. */
static int compatible(const sl_model *c, const sl_model *b)
{
    if (c->vocab != b->vocab || c->n_layers != b->n_layers || c->dim != b->dim || c->hidden != b->hidden ||
        c->n_heads != b->n_heads || c->n_kv_heads != b->n_kv_heads) {
        fprintf(stderr, "sluice: the candidate's shape (vocab %d, %d layers, dim %d) is not the base's (%d, %d, %d)\n",
                c->vocab, c->n_layers, c->dim, b->vocab, b->n_layers, b->dim);
        return 0;
    }
    const sl_gguf_kv *tc = sl_gguf_find(c->g, "tokenizer.ggml.tokens"), *tb = sl_gguf_find(b->g, "tokenizer.ggml.tokens");
    if (!tc || !tb || tc->val_size != tb->val_size || memcmp(tc->val, tb->val, tc->val_size) != 0) {
        fprintf(stderr, "sluice: the candidate's vocabulary is not the base's: their scores would not compare\n");
        return 0;
    }
    return 1;
}

typedef struct limits {
    double ppl_ratio, kl_mean, kl_p99, top1;
} limits;

int sl_cmd_validate(int argc, char **argv)
{
    enum { O_BASE = 256, O_TEXT, O_TOKENS, O_SPLIT, O_MAX, O_CTX, O_PPL, O_KLM, O_KLP, O_TOP1, O_LT, O_DRY, O_ISA, O_JSON };
    static const struct option opts[] = {
        {"base", required_argument, 0, O_BASE},         {"text", required_argument, 0, O_TEXT},
        {"tokens", required_argument, 0, O_TOKENS},     {"split", required_argument, 0, O_SPLIT},
        {"max-pieces", required_argument, 0, O_MAX},    {"ctx", required_argument, 0, O_CTX},
        {"max-ppl-ratio", required_argument, 0, O_PPL}, {"max-mean-kld", required_argument, 0, O_KLM},
        {"max-p99-kld", required_argument, 0, O_KLP},   {"min-top1", required_argument, 0, O_TOP1},
        {"layer-tokens", required_argument, 0, O_LT},   {"dry-run", no_argument, 0, O_DRY},
        {"threads", required_argument, 0, 'T'},         {"isa", required_argument, 0, O_ISA},
        {"json", no_argument, 0, O_JSON},               {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *base_path = NULL, *text_path = NULL, *tok_path = NULL;
    char *split = NULL;
    limits lim = {1.10, 0.10, 1.0, 0.85};
    long long ctx = 0, max_pieces = 0, layer_tokens = 64, v;
    int json = 0, dry = 0, c;
    sl_engine_cfg ec = {.isa = -1, .max_seqs = 16, .pin = 2};
    optind = 1;
    while ((c = getopt_long(argc, argv, "T:h", opts, NULL)) != -1) {
        switch (c) {
        case O_BASE: base_path = optarg; break;
        case O_TEXT: text_path = optarg; break;
        case O_TOKENS: tok_path = optarg; break;
        case O_SPLIT: split = optarg; break;
        case O_MAX: if (sl_cli_int("--max-pieces", optarg, 1, INT32_MAX, &max_pieces)) return SL_EXIT_ERROR; break;
        case O_CTX: if (sl_cli_int("--ctx", optarg, 4, 1 << 20, &ctx)) return SL_EXIT_ERROR; break;
        case O_PPL: if (sl_cli_float("--max-ppl-ratio", optarg, 1.0, 1e9, &lim.ppl_ratio)) return SL_EXIT_ERROR; break;
        case O_KLM: if (sl_cli_float("--max-mean-kld", optarg, 0.0, 1e9, &lim.kl_mean)) return SL_EXIT_ERROR; break;
        case O_KLP: if (sl_cli_float("--max-p99-kld", optarg, 0.0, 1e9, &lim.kl_p99)) return SL_EXIT_ERROR; break;
        case O_TOP1: if (sl_cli_float("--min-top1", optarg, 0.0, 1.0, &lim.top1)) return SL_EXIT_ERROR; break;
        case O_LT: if (sl_cli_int("--layer-tokens", optarg, 0, 1 << 16, &layer_tokens)) return SL_EXIT_ERROR; break;
        case O_DRY: dry = 1; break;
        case 'T': if (sl_cli_int("--threads", optarg, 1, 1024, &v)) return SL_EXIT_ERROR; ec.n_threads = (int)v; break;
        case O_ISA: if (sl_cli_isa(optarg, &ec.isa)) return SL_EXIT_ERROR; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || !base_path || !text_path == !tok_path || (split && !text_path)) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    const char *cand_path = argv[optind];
    sl_model *cm = NULL, *bm = NULL;
    sl_engine *ce = NULL, *be = NULL;
    sl_eval_seq *seqs = NULL;
    int32_t *store = NULL;
    lin_err *le = NULL;
    int n_seqs = 0, n_le = 0, rc = SL_EXIT_ERROR;
    sl_err err = {0};
    sl_quality q = {0};
    if (sl_model_open(cand_path, SL_GGUF_VERIFY_CHECKSUM, &cm, &err) ||
        sl_model_open(base_path, SL_GGUF_VERIFY_CHECKSUM, &bm, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    if (!compatible(cm, bm))
        goto out;
    if (sl_gguf_compute_checksum(cm->g, q.candidate, &err) || sl_gguf_compute_checksum(bm->g, q.base, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    if (!ctx)
        ctx = split ? bm->ctx : (bm->ctx < 512 ? bm->ctx : 512);
    ec.ctx = (int)ctx;
    ec.kv_blocks = 16 * sl_kv_blocks_for((int)ctx);
    if (sl_cli_engine(cand_path, cm, &ec, &ce) || sl_cli_engine(base_path, bm, &ec, &be))
        goto out;
    char split_as_given[64];
    snprintf(split_as_given, sizeof split_as_given, "%s", split ? split : "");
    if (sl_cli_eval_data(bm, text_path, tok_path, split, (int)max_pieces, (int)ctx, &seqs, &store, &n_seqs))
        goto out;
    sl_eval_result r;
    if (sl_eval_run(ce, be, seqs, n_seqs, &r, &err) ||
        (layer_tokens > 0 && layer_errors(be, bm, cm, seqs, n_seqs, (int)layer_tokens, &le, &n_le, &err))) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    q.present = true;
    q.tokens = r.n_pred;
    q.ppl = r.ppl;
    q.base_ppl = r.ref_ppl;
    q.ppl_ratio = r.ref_ppl > 0.0 ? r.ppl / r.ref_ppl : INFINITY;
    q.kl_mean = r.kl_mean;
    q.kl_p99 = r.kl_p99;
    q.top1 = r.top1;
    const int ok_ppl = q.ppl_ratio <= lim.ppl_ratio, ok_klm = q.kl_mean <= lim.kl_mean, ok_klp = q.kl_p99 <= lim.kl_p99,
              ok_top1 = q.top1 >= lim.top1;
    q.pass = ok_ppl && ok_klm && ok_klp && ok_top1;
    snprintf(q.base_name, sizeof q.base_name, "%s", base_path);
    snprintf(q.data, sizeof q.data, "%s:%s %s%s%s, %d sequences, ctx %lld", text_path ? "text" : "tokens",
             text_path ? text_path : tok_path, split ? "pieces split on '" : "windows", split_as_given,
             split ? "'" : "", n_seqs, ctx);
    snprintf(q.limits, sizeof q.limits, "ppl_ratio <= %g, kl_mean <= %g, kl_p99 <= %g, top1 >= %g", lim.ppl_ratio,
             lim.kl_mean, lim.kl_p99, lim.top1);
    size_t off = 0;
    for (int i = 0; i < n_le && i < 5 && off < sizeof q.worst; i++)
        off += (size_t)snprintf(q.worst + off, sizeof q.worst - off, "%s%s %.4g", i ? ", " : "", le[i].name, le[i].rel);
    time_t now = time(NULL);
    struct tm tmv;
    strftime(q.time, sizeof q.time, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    int written = 0;
    if (!dry) {
        /* The engines map the candidate: close them first (the rewrite is a
         * new file renamed over it, so this is tidiness, not safety). */
        sl_engine_destroy(ce);
        ce = NULL;
        sl_model_close(cm);
        cm = NULL;
        if (sl_quality_write(cand_path, &q, &err)) {
            fprintf(stderr, "sluice: writing the verdict: %s\n", err.msg);
            goto out;
        }
        written = 1;
    }
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "candidate", json_object_new_string(cand_path));
        json_object_object_add(o, "candidate_checksum", json_object_new_string(q.candidate));
        json_object_object_add(o, "base", json_object_new_string(base_path));
        json_object_object_add(o, "base_checksum", json_object_new_string(q.base));
        json_object_object_add(o, "data", json_object_new_string(q.data));
        json_object_object_add(o, "predicted_tokens", json_object_new_int64((int64_t)q.tokens));
        json_object_object_add(o, "perplexity", json_object_new_double(q.ppl));
        json_object_object_add(o, "base_perplexity", json_object_new_double(q.base_ppl));
        json_object_object_add(o, "ppl_ratio", json_object_new_double(q.ppl_ratio));
        json_object_object_add(o, "kl_mean", json_object_new_double(q.kl_mean));
        json_object_object_add(o, "kl_p99", json_object_new_double(q.kl_p99));
        json_object_object_add(o, "kl_max", json_object_new_double(r.kl_max));
        json_object_object_add(o, "top1_agreement", json_object_new_double(q.top1));
        json_object *lj = json_object_new_object();
        json_object_object_add(lj, "max_ppl_ratio", json_object_new_double(lim.ppl_ratio));
        json_object_object_add(lj, "max_mean_kld", json_object_new_double(lim.kl_mean));
        json_object_object_add(lj, "max_p99_kld", json_object_new_double(lim.kl_p99));
        json_object_object_add(lj, "min_top1", json_object_new_double(lim.top1));
        json_object_object_add(o, "limits", lj);
        json_object *fj = json_object_new_array();
        if (!ok_ppl)
            json_object_array_add(fj, json_object_new_string("ppl_ratio"));
        if (!ok_klm)
            json_object_array_add(fj, json_object_new_string("kl_mean"));
        if (!ok_klp)
            json_object_array_add(fj, json_object_new_string("kl_p99"));
        if (!ok_top1)
            json_object_array_add(fj, json_object_new_string("top1"));
        json_object_object_add(o, "failed", fj);
        json_object *wj = json_object_new_array();
        for (int i = 0; i < n_le; i++) {
            json_object *x = json_object_new_object();
            json_object_object_add(x, "tensor", json_object_new_string(le[i].name));
            json_object_object_add(x, "relative_error", json_object_new_double(le[i].rel));
            json_object_array_add(wj, x);
        }
        json_object_object_add(o, "layers", wj);
        json_object_object_add(o, "verdict", json_object_new_string(q.pass ? "pass" : "fail"));
        json_object_object_add(o, "written", json_object_new_boolean(written));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("candidate %s (%s)\nbase      %s (%s)\n", cand_path, q.candidate, base_path, q.base);
        printf("data      %s, %llu predicted tokens\n", q.data, (unsigned long long)q.tokens);
        printf("perplexity %.4f vs %.4f: ratio %.4f (limit %g) %s\n", q.ppl, q.base_ppl, q.ppl_ratio, lim.ppl_ratio,
               ok_ppl ? "ok" : "FAIL");
        printf("KL mean %.6g (limit %g) %s, p99 %.6g (limit %g) %s, max %.6g\n", q.kl_mean, lim.kl_mean,
               ok_klm ? "ok" : "FAIL", q.kl_p99, lim.kl_p99, ok_klp ? "ok" : "FAIL", r.kl_max);
        printf("top-1 agreement %.4f (limit %g) %s\n", q.top1, lim.top1, ok_top1 ? "ok" : "FAIL");
        if (n_le)
            printf("worst layers (relative output error): %s\n", q.worst);
        printf("verdict: %s%s\n", q.pass ? "PASS" : "FAIL", written ? ", written into the candidate" : " (dry run)");
    }
    rc = q.pass ? SL_EXIT_OK : SL_EXIT_FAIL;
out:
    free(le);
    free(seqs);
    free(store);
    sl_engine_destroy(be);
    sl_engine_destroy(ce);
    sl_model_close(bm);
    sl_model_close(cm);
    return rc;
}
