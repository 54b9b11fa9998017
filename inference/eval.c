/* eval.c - perplexity and divergence (sl_eval.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_eval.h"
#include "sl_sampler.h"

/* log-sum-exp of the logits, in double */
static double lse(const float *x, int n)
{
    double mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += exp((double)x[i] - mx);
    return mx + log(s);
}

/* KL(softmax(p) || softmax(q)) given both log-sum-exps */
static double kl_lse(const float *p, double lp, const float *q, double lq, int n)
{
    double kl = 0.0;
    for (int i = 0; i < n; i++) {
        const double a = (double)p[i] - lp, b = (double)q[i] - lq;
        kl += exp(a) * (a - b);
    }
    return kl > 0.0 ? kl : 0.0; /* rounding can leave -1e-17 */
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Runs a group of sequences on one engine from position 0; all logits. */
static sl_status run_group(sl_engine *e, const sl_eval_seq *s, int n, float *logits, sl_err *err)
{
    sl_kv *kv = sl_engine_kv(e);
    sl_chunk c[64];
    sl_status st = SL_OK;
    int made = 0;
    for (; made < n && !st; made++) {
        c[made] = (sl_chunk){0, 0, s[made].n, s[made].tokens, 1};
        st = sl_kv_seq_new(kv, &c[made].seq, err);
        if (st)
            break;
    }
    if (!st)
        st = sl_engine_forward(e, c, n, logits, err);
    for (int i = 0; i < made; i++)
        sl_kv_seq_free(kv, c[i].seq);
    return st;
}

sl_status sl_eval_run(sl_engine *e, sl_engine *ref, const sl_eval_seq *seqs, int n_seqs, sl_eval_result *res,
                      sl_err *err)
{
    memset(res, 0, sizeof *res);
    const int vocab = sl_engine_model(e)->vocab;
    if (ref && sl_engine_model(ref)->vocab != vocab)
        return sl_err_set(err, SL_EINVAL, "the reference has %d tokens, the model %d: not comparable",
                          sl_engine_model(ref)->vocab, vocab);
    uint64_t total = 0;
    int longest = 1;
    for (int i = 0; i < n_seqs; i++) {
        if (seqs[i].n < 1 || seqs[i].first < 0)
            return sl_err_set(err, SL_EINVAL, "sequence %d is empty", i);
        if (seqs[i].n > longest)
            longest = seqs[i].n;
        if (seqs[i].n - 1 > seqs[i].first)
            total += (uint64_t)(seqs[i].n - 1 - seqs[i].first);
    }
    if (total == 0)
        return sl_err_set(err, SL_EINVAL, "nothing to score: every sequence is shorter than 2 tokens");
    /* Group sequences so one group's logits stay near 64 MiB (at least one
     * whole sequence); at most 16 in flight. */
    size_t budget = ((size_t)16 << 20) / (size_t)vocab;
    if (budget < (size_t)longest)
        budget = (size_t)longest;
    const int max_group = sl_engine_kv(e)->max_seqs < 16 ? sl_engine_kv(e)->max_seqs : 16;
    const int ref_group = ref ? sl_engine_kv(ref)->max_seqs : max_group;
    const int group_cap = max_group < ref_group ? max_group : ref_group;
    float *lg = malloc(sizeof(float) * budget * (size_t)vocab);
    float *rl = ref ? malloc(sizeof(float) * budget * (size_t)vocab) : NULL;
    double *kls = ref ? malloc(sizeof(double) * total) : NULL;
    if (!lg || (ref && (!rl || !kls))) {
        free(lg);
        free(rl);
        free(kls);
        return sl_err_set(err, SL_ENOMEM, "out of memory for %zu logits rows", budget);
    }
    sl_status st = SL_OK;
    double nll = 0.0, rnll = 0.0, dmax = 0.0;
    uint64_t k = 0, agree = 0;
    for (int i = 0; i < n_seqs && !st;) {
        /* as many as the logits budget and both KV pools hold (one at least) */
        int g = 0, blocks = 0;
        size_t rows = 0;
        const int free_blocks = ref && sl_engine_kv(ref)->n_free < sl_engine_kv(e)->n_free ? sl_engine_kv(ref)->n_free
                                                                                           : sl_engine_kv(e)->n_free;
        while (i + g < n_seqs && g < group_cap && rows + (size_t)seqs[i + g].n <= budget &&
               (g == 0 || blocks + sl_kv_blocks_for(seqs[i + g].n) <= free_blocks)) {
            blocks += sl_kv_blocks_for(seqs[i + g].n);
            rows += (size_t)seqs[i + g++].n;
        }
        st = run_group(e, seqs + i, g, lg, err);
        if (!st && ref)
            st = run_group(ref, seqs + i, g, rl, err);
        size_t r0 = 0;
        for (int j = 0; j < g && !st; j++) {
            const sl_eval_seq *s = &seqs[i + j];
            for (int p = s->first; p < s->n - 1; p++) {
                const float *a = lg + (r0 + (size_t)p) * vocab;
                const double la = lse(a, vocab); /* once per row: NLL and KL share it */
                nll += la - (double)a[s->tokens[p + 1]];
                if (ref) {
                    const float *b = rl + (r0 + (size_t)p) * vocab;
                    const double lb = lse(b, vocab);
                    rnll += lb - (double)b[s->tokens[p + 1]];
                    kls[k] = kl_lse(b, lb, a, la, vocab);
                    agree += sl_argmax(a, vocab) == sl_argmax(b, vocab);
                    for (int v = 0; v < vocab; v++)
                        if (fabs((double)a[v] - b[v]) > dmax)
                            dmax = fabs((double)a[v] - b[v]);
                }
                k++;
            }
            r0 += (size_t)s->n;
        }
        i += g;
    }
    if (!st) {
        res->n_pred = k;
        res->nll = nll / (double)k;
        res->ppl = exp(res->nll);
        if (ref) {
            res->ref_nll = rnll / (double)k;
            res->ref_ppl = exp(res->ref_nll);
            double sum = 0.0;
            for (uint64_t j = 0; j < k; j++)
                sum += kls[j];
            res->kl_mean = sum / (double)k;
            qsort(kls, k, sizeof *kls, cmp_double);
            res->kl_p99 = kls[(size_t)ceil(0.99 * (double)k) - 1];
            res->kl_max = kls[k - 1];
            res->top1 = (double)agree / (double)k;
            res->max_dlogit = dmax;
        }
    }
    free(lg);
    free(rl);
    free(kls);
    return st;
}

sl_status sl_eval_windows(const int32_t *stream, size_t n_stream, int n_ctx, int bos, sl_eval_seq **out,
                          int32_t **store, int *n_out, sl_err *err)
{
    *out = NULL;
    *store = NULL;
    *n_out = 0;
    if (n_ctx < 4)
        return sl_err_set(err, SL_ERANGE, "context %d is too small for windows (need at least 4)", n_ctx);
    const size_t n = n_stream / (size_t)n_ctx;
    if (n == 0)
        return sl_err_set(err, SL_EINVAL, "%zu tokens do not fill one window of %d", n_stream, n_ctx);
    if (n > INT32_MAX)
        return sl_err_set(err, SL_ERANGE, "too many windows");
    *out = malloc(sizeof **out * n);
    *store = malloc(sizeof **store * n * (size_t)n_ctx);
    if (!*out || !*store) {
        free(*out);
        free(*store);
        *out = NULL;
        *store = NULL;
        return sl_err_set(err, SL_ENOMEM, "out of memory for %zu windows", n);
    }
    memcpy(*store, stream, sizeof **store * n * (size_t)n_ctx);
    for (size_t i = 0; i < n; i++) {
        int32_t *w = *store + i * (size_t)n_ctx;
        if (bos >= 0)
            w[0] = bos;
        (*out)[i] = (sl_eval_seq){w, n_ctx, n_ctx / 2};
    }
    *n_out = (int)n;
    return SL_OK;
}

sl_status sl_eval_pieces(const sl_tokenizer *tok, const char *text, size_t len, const char *sep, size_t sep_len,
                         int max_pieces, int n_ctx, bool add_bos, sl_eval_seq **out, int32_t **store, int *n_out,
                         sl_err *err)
{
    *out = NULL;
    *store = NULL;
    *n_out = 0;
    if (sep_len == 0 || n_ctx < 2)
        return sl_err_set(err, SL_EINVAL, "pieces need a non-empty separator and a context of 2 or more");
    /* Pass 1 encodes into one growing token store; offsets are kept in the
     * descriptors' n field until the store stops moving. */
    size_t cap_t = 0, n_t = 0, cap_s = 0;
    int n = 0;
    int32_t *toks = NULL;
    sl_eval_seq *seqs = NULL;
    size_t *offs = NULL;
    sl_status st = SL_OK;
    const char *p = text, *end = text + len;
    while (!st && (max_pieces <= 0 || n < max_pieces)) {
        const char *q = memmem(p, (size_t)(end - p), sep, sep_len);
        const size_t plen = q ? (size_t)(q - p) : (size_t)(end - p);
        if (plen > 0) {
            int32_t *ids;
            size_t nid;
            st = sl_tok_encode(tok, p, plen, add_bos, &ids, &nid, err);
            if (st) {
                sl_err_prefix(err, st, "piece %d", n);
                break;
            }
            if (nid > (size_t)n_ctx)
                nid = (size_t)n_ctx;
            if (n_t + nid > cap_t) {
                size_t nc = (n_t + nid) * 2;
                int32_t *nt = realloc(toks, nc * sizeof *nt);
                if (!nt) {
                    free(ids);
                    st = sl_err_set(err, SL_ENOMEM, "out of memory for piece tokens");
                    break;
                }
                toks = nt;
                cap_t = nc;
            }
            if ((size_t)n == cap_s) {
                size_t nc = cap_s ? 2 * cap_s : 256;
                sl_eval_seq *ns = realloc(seqs, nc * sizeof *ns);
                size_t *no = ns ? realloc(offs, nc * sizeof *no) : NULL;
                if (ns)
                    seqs = ns;
                if (!no) {
                    free(ids);
                    st = sl_err_set(err, SL_ENOMEM, "out of memory for pieces");
                    break;
                }
                offs = no;
                cap_s = nc;
            }
            memcpy(toks + n_t, ids, nid * sizeof *ids);
            free(ids);
            offs[n] = n_t;
            seqs[n++] = (sl_eval_seq){NULL, (int)nid, 0};
            n_t += nid;
        }
        if (!q)
            break;
        p = q + sep_len;
    }
    if (!st && n == 0)
        st = sl_err_set(err, SL_EINVAL, "the text has no pieces between separators");
    if (st) {
        free(toks);
        free(seqs);
        free(offs);
        return st;
    }
    for (int i = 0; i < n; i++)
        seqs[i].tokens = toks + offs[i];
    free(offs);
    *out = seqs;
    *store = toks;
    *n_out = n;
    return SL_OK;
}
