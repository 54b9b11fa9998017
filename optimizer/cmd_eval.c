/* cmd_eval.c - `sluice eval`: perplexity, and divergence from a base image.
 *
 * Two protocols:
 *  - windows (default): the whole text (or token file) as one stream,
 *    cut into --ctx windows, each starting with BOS, scored on its second
 *    half (llama-perplexity's method);
 *  - pieces (--split SEP): the text split on SEP, empty pieces skipped,
 *    each piece encoded with BOS, cut to --ctx, scored from its first
 *    prediction (the protocol of ../shared/models/reference/README.md). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_eval.h"
#include "sl_file.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice eval IMAGE (--text FILE | --tokens FILE) [--ref BASE] [--ctx N] [--split SEP]\n"
               "                   [--max-pieces N] [--threads T] [--isa ISA] [--json]\n"
               "  --split takes C escapes (--split '\\n\\n').  --tokens reads whitespace-separated ids.\n");
}

/* C escapes \n \t \r \\ in place. */
static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {
            char c = s[++i];
            s[o++] = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        } else
            s[o++] = s[i];
    }
    s[o] = '\0';
    return o;
}

typedef struct ids {
    int32_t *a;
    size_t n, cap;
} ids;

static int ids_add(ids *v, const int32_t *x, size_t n)
{
    if (v->n + n > v->cap) {
        size_t nc = (v->n + n) * 2;
        int32_t *na = realloc(v->a, nc * sizeof *na);
        if (!na)
            return -1;
        v->a = na;
        v->cap = nc;
    }
    memcpy(v->a + v->n, x, n * sizeof *x);
    v->n += n;
    return 0;
}

static int read_token_file(const char *path, int vocab, ids *out)
{
    char *text;
    size_t len;
    sl_err err = {0};
    if (sl_read_file(path, (size_t)1 << 30, &text, &len, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return -1;
    }
    char *p = text;
    int rc = 0;
    for (size_t i = 0;; i++) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= vocab) {
            fprintf(stderr, "sluice: %s: token %zu ('%.16s') is not an id in 0..%d\n", path, i, p, vocab - 1);
            rc = -1;
            break;
        }
        int32_t id = (int32_t)v;
        if (ids_add(out, &id, 1)) {
            fprintf(stderr, "sluice: out of memory\n");
            rc = -1;
            break;
        }
        p = end;
    }
    free(text);
    return rc;
}

int sl_cli_eval_data(const sl_model *m, const char *text_path, const char *tok_path, char *split, int max_pieces,
                     int ctx, sl_eval_seq **seqs, int32_t **store, int *n_seqs)
{
    sl_err err = {0};
    char *text = NULL;
    size_t tlen = 0;
    ids all = {0};
    int rc = SL_EXIT_ERROR;
    *seqs = NULL;
    *store = NULL;
    *n_seqs = 0;
    if (tok_path) {
        if (read_token_file(tok_path, m->vocab, &all))
            goto out;
    } else if (sl_read_file(text_path, (size_t)1 << 30, &text, &tlen, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    const int bos = sl_tok_add_bos(m->tok) ? sl_tok_bos(m->tok) : -1;
    if (split) {
        size_t sl = unescape(split);
        if (sl == 0) {
            fprintf(stderr, "sluice: --split needs a non-empty separator\n");
            goto out;
        }
        if (sl_eval_pieces(m->tok, text, tlen, split, sl, max_pieces, ctx, bos >= 0, seqs, store, n_seqs, &err)) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            goto out;
        }
    } else {
        if (text) {
            int32_t *t;
            size_t nt;
            if (sl_tok_encode(m->tok, text, tlen, bos >= 0, &t, &nt, &err)) {
                fprintf(stderr, "sluice: %s\n", err.msg);
                goto out;
            }
            all.a = t;
            all.n = nt;
        }
        if (sl_eval_windows(all.a, all.n, ctx, bos, seqs, store, n_seqs, &err)) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            goto out;
        }
    }
    if (*n_seqs == 0) {
        fprintf(stderr, "sluice: the data gives nothing to score (a window needs %d tokens)\n", ctx);
        goto out;
    }
    rc = SL_EXIT_OK;
out:
    free(text);
    free(all.a);
    if (rc) {
        free(*seqs);
        free(*store);
        *seqs = NULL;
        *store = NULL;
    }
    return rc;
}

static json_object *result_json(const sl_eval_result *r, int with_ref)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "predicted_tokens", json_object_new_int64((int64_t)r->n_pred));
    json_object_object_add(o, "mean_nll", json_object_new_double(r->nll));
    json_object_object_add(o, "perplexity", json_object_new_double(r->ppl));
    if (with_ref) {
        json_object_object_add(o, "ref_mean_nll", json_object_new_double(r->ref_nll));
        json_object_object_add(o, "ref_perplexity", json_object_new_double(r->ref_ppl));
        json_object_object_add(o, "kl_mean", json_object_new_double(r->kl_mean));
        json_object_object_add(o, "kl_p99", json_object_new_double(r->kl_p99));
        json_object_object_add(o, "kl_max", json_object_new_double(r->kl_max));
        json_object_object_add(o, "top1_agreement", json_object_new_double(r->top1));
        json_object_object_add(o, "max_abs_dlogit", json_object_new_double(r->max_dlogit));
    }
    return o;
}

int sl_cmd_eval(int argc, char **argv)
{
    enum { O_TEXT = 256, O_TOKENS, O_REF, O_CTX, O_SPLIT, O_MAX, O_ISA, O_JSON };
    static const struct option opts[] = {
        {"text", required_argument, 0, O_TEXT},   {"tokens", required_argument, 0, O_TOKENS},
        {"ref", required_argument, 0, O_REF},     {"ctx", required_argument, 0, O_CTX},
        {"split", required_argument, 0, O_SPLIT}, {"max-pieces", required_argument, 0, O_MAX},
        {"threads", required_argument, 0, 'T'},   {"isa", required_argument, 0, O_ISA},
        {"json", no_argument, 0, O_JSON},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *text_path = NULL, *tok_path = NULL, *ref_path = NULL;
    char *split = NULL;
    long long ctx = 0, max_pieces = 0, v;
    int json = 0, c;
    sl_engine_cfg ec = {.isa = -1, .max_seqs = 16, .pin = 2};
    optind = 1;
    while ((c = getopt_long(argc, argv, "T:h", opts, NULL)) != -1) {
        switch (c) {
        case O_TEXT: text_path = optarg; break;
        case O_TOKENS: tok_path = optarg; break;
        case O_REF: ref_path = optarg; break;
        case O_CTX: if (sl_cli_int("--ctx", optarg, 4, 1 << 20, &ctx)) return SL_EXIT_ERROR; break;
        case O_SPLIT: split = optarg; break;
        case O_MAX: if (sl_cli_int("--max-pieces", optarg, 1, INT32_MAX, &max_pieces)) return SL_EXIT_ERROR; break;
        case 'T': if (sl_cli_int("--threads", optarg, 1, 1024, &v)) return SL_EXIT_ERROR; ec.n_threads = (int)v; break;
        case O_ISA: if (sl_cli_isa(optarg, &ec.isa)) return SL_EXIT_ERROR; break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || !text_path == !tok_path || (split && !text_path)) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    sl_model *m = NULL, *rm = NULL;
    sl_engine *e = NULL, *re = NULL;
    sl_err err = {0};
    sl_eval_seq *seqs = NULL;
    int32_t *store = NULL;
    int n_seqs = 0, rc;
    /* The model first: its context is the default window. */
    if (sl_model_open(argv[optind], 0, &m, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        return SL_EXIT_ERROR;
    }
    if (!ctx)
        ctx = split ? m->ctx : (m->ctx < 512 ? m->ctx : 512);
    ec.ctx = (int)ctx;
    ec.kv_blocks = 16 * sl_kv_blocks_for((int)ctx);
    if ((rc = sl_cli_engine(argv[optind], m, &ec, &e)))
        goto out;
    if (ref_path && (rc = sl_cli_open(ref_path, &ec, &rm, &re)))
        goto out;
    rc = SL_EXIT_ERROR;
    if (sl_cli_eval_data(m, text_path, tok_path, split, (int)max_pieces, (int)ctx, &seqs, &store, &n_seqs))
        goto out;
    sl_eval_result r;
    double t0 = sl_cli_now_us();
    if (sl_eval_run(e, re, seqs, n_seqs, &r, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        goto out;
    }
    double secs = (sl_cli_now_us() - t0) / 1e6;
    if (json) {
        json_object *o = result_json(&r, re != NULL);
        json_object_object_add(o, "image", json_object_new_string(argv[optind]));
        if (ref_path)
            json_object_object_add(o, "ref", json_object_new_string(ref_path));
        json_object_object_add(o, "protocol", json_object_new_string(split ? "pieces" : "windows"));
        json_object_object_add(o, "sequences", json_object_new_int(n_seqs));
        json_object_object_add(o, "ctx", json_object_new_int((int)ctx));
        json_object_object_add(o, "seconds", json_object_new_double(secs));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("%s: %d %s, %llu predicted tokens, ctx %lld\n", argv[optind], n_seqs, split ? "pieces" : "windows",
               (unsigned long long)r.n_pred, ctx);
        printf("perplexity %.4f (mean NLL %.6f nats)\n", r.ppl, r.nll);
        if (re) {
            printf("reference %s: perplexity %.4f (mean NLL %.6f nats)\n", ref_path, r.ref_ppl, r.ref_nll);
            printf("KL(reference || model): mean %.6g, p99 %.6g, max %.6g\n", r.kl_mean, r.kl_p99, r.kl_max);
            printf("top-1 agreement %.4f, max |dlogit| %.6g\n", r.top1, r.max_dlogit);
        }
        fprintf(stderr, "%.2f s (%s, %d threads)\n", secs, sl_engine_kernels(e)->name, sl_engine_threads(e));
    }
    rc = SL_EXIT_OK;
out:
    free(seqs);
    free(store);
    sl_engine_destroy(re);
    sl_model_close(rm);
    sl_engine_destroy(e);
    sl_model_close(m);
    return rc;
}
