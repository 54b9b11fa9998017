/* sampler.c - token sampling (sl_sampler.h). */
#include <emmintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_sampler.h"
#include "sl_vmath.h"

sl_sampler_cfg sl_sampler_defaults(void)
{
    return (sl_sampler_cfg){.temp = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .rep_penalty = 1.0f,
                            .rep_last_n = 64, .seed = 0};
}

sl_status sl_sampler_check(const sl_sampler_cfg *cfg, int n_vocab, sl_err *err)
{
    if (!(cfg->temp >= 0.0f && cfg->temp < 1e6f) || cfg->top_k < 0 || !(cfg->top_p > 0.0f && cfg->top_p <= 1.0f) ||
        !(cfg->min_p >= 0.0f && cfg->min_p < 1.0f) || !(cfg->rep_penalty > 0.0f && cfg->rep_penalty < 1e6f) ||
        cfg->rep_last_n < 0 || n_vocab <= 0)
        return sl_err_set(err, SL_ERANGE,
                          "sampler settings out of range (need temp >= 0, top-k >= 0, 0 < top-p <= 1, "
                          "0 <= min-p < 1, penalty > 0)");
    return SL_OK;
}

sl_status sl_sampler_init(sl_sampler *s, const sl_sampler_cfg *cfg, int n_vocab, sl_err *err)
{
    memset(s, 0, sizeof *s);
    const sl_status st = sl_sampler_check(cfg, n_vocab, err);
    if (st)
        return st;
    s->cfg = *cfg;
    /* splitmix64 of the seed: nearby seeds give unrelated streams; never 0 */
    uint64_t z = cfg->seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s->state = (z ^ (z >> 31)) | 1;
    s->n_vocab = n_vocab;
    s->work = malloc(sizeof *s->work * (size_t)n_vocab);
    s->idx = malloc(sizeof *s->idx * (size_t)n_vocab);
    s->prob = malloc(sizeof *s->prob * (size_t)n_vocab);
    s->eprob = malloc(sizeof *s->eprob * (size_t)n_vocab);
    if (!s->work || !s->idx || !s->prob || !s->eprob) {
        sl_sampler_free(s);
        return sl_err_set(err, SL_ENOMEM, "out of memory for a sampler over %d tokens", n_vocab);
    }
    return SL_OK;
}

void sl_sampler_free(sl_sampler *s)
{
    free(s->work);
    free(s->idx);
    free(s->prob);
    free(s->eprob);
    memset(s, 0, sizeof *s);
}

int32_t sl_argmax(const float *logits, int n)
{
    /* The one-pass loop's answer (the first index of the largest value;
     * NaNs never win, and a NaN first element keeps 0) in two SSE2 passes:
     * the largest value, then where it first occurs.  Greedy decoding runs
     * this over the vocabulary for every token. */
    const float bv = logits[0];
    if (n <= 1 || bv != bv)
        return 0;
    const float best = sl_max_f32(logits, n);
    const __m128 b = _mm_set1_ps(best);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const int hit = _mm_movemask_ps(_mm_cmpeq_ps(_mm_loadu_ps(logits + i), b));
        if (hit)
            return i + __builtin_ctz((unsigned)hit);
    }
    for (; i < n; i++)
        if (logits[i] == best)
            return i;
    return 0; /* not reached: best is one of the values */
}

/* xorshift64*, 24 random bits as a float in [0, 1) */
static float uniform(sl_sampler *s)
{
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    return (float)((s->state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

static int by_logit_desc(const void *a, const void *b, void *keys)
{
    const float *sort_keys = keys;
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_keys[x] != sort_keys[y])
        return sort_keys[x] > sort_keys[y] ? -1 : 1;
    return x < y ? -1 : x > y; /* stable by id: ties do not depend on qsort */
}

/* a ranks before b: higher logit, or the same logit and a lower id */
static int ahead(const float *w, int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); }

/* The k best ids into idx[0..k), in rank order: a heap of the k best seen
 * (worst on top), O(n log k), then a sort of those k. */
static void top_k_ids(const float *w, int n, int k, int32_t *idx)
{
    int h = 0;
    for (int32_t t = 0; t < n; t++) {
        int i;
        if (h < k) {
            i = h++;
            while (i > 0 && ahead(w, idx[(i - 1) / 2], t)) { /* sift up: the worst stays on top */
                idx[i] = idx[(i - 1) / 2];
                i = (i - 1) / 2;
            }
            idx[i] = t;
            continue;
        }
        if (!ahead(w, t, idx[0]))
            continue;
        i = 0; /* replace the worst, sift down */
        for (;;) {
            int c = 2 * i + 1;
            if (c >= h)
                break;
            if (c + 1 < h && ahead(w, idx[c], idx[c + 1]))
                c++;
            if (!ahead(w, t, idx[c]))
                break;
            idx[i] = idx[c];
            i = c;
        }
        idx[i] = t;
    }
    qsort_r(idx, (size_t)k, sizeof *idx, by_logit_desc, (void *)w);
}

int32_t sl_sample(sl_sampler *s, const float *logits, const int32_t *history, int n_history)
{
    const int n = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, sizeof *w * (size_t)n);
    if (s->cfg.rep_penalty != 1.0f && history) {
        int from = n_history > s->cfg.rep_last_n ? n_history - s->cfg.rep_last_n : 0;
        for (int i = from; i < n_history; i++) {
            int32_t t = history[i];
            if (t < 0 || t >= n)
                continue;
            /* once per distinct token: skip if it occurs again later in the window */
            int again = 0;
            for (int j = i + 1; j < n_history && !again; j++)
                again = history[j] == t;
            if (!again)
                w[t] = w[t] > 0.0f ? w[t] / s->cfg.rep_penalty : w[t] * s->cfg.rep_penalty;
        }
    }
    if (s->cfg.temp == 0.0f)
        return sl_argmax(w, n);
    /* Candidates: the top k in rank order; without top-k, every id, in
     * rank order only when top-p or min-p need the ranking (a full sort
     * of a 32000-token vocabulary costs more than a small model's step). */
    int m = n;
    double *pr = s->prob;
    double sum = 0.0, mx;
    if (s->cfg.top_k > 0 && s->cfg.top_k < n) {
        m = s->cfg.top_k;
        top_k_ids(w, n, m, s->idx);
    } else if (s->cfg.top_p < 1.0f || s->cfg.min_p > 0.0f) {
        /* Ranked candidates, but only those within 1e-12 of the most likely
         * token's probability: the rest cannot reach a top-p cut below
         * 1 - n * 1e-12 or a min-p above 1e-12 (else every id is ranked). */
        mx = w[sl_argmax(w, n)];
        double *e = s->eprob, kept = 0.0;
        m = 0;
        for (int i = 0; i < n; i++) {
            sum += e[i] = exp(((double)w[i] - mx) / s->cfg.temp);
            if (e[i] >= 1e-12) {
                s->idx[m++] = i;
                kept += e[i];
            }
        }
        if ((s->cfg.top_p < 1.0f && kept / sum < s->cfg.top_p) || (s->cfg.min_p > 0.0f && s->cfg.min_p < 1e-12f)) {
            m = n;
            for (int i = 0; i < n; i++)
                s->idx[i] = i;
        }
        qsort_r(s->idx, (size_t)m, sizeof *s->idx, by_logit_desc, w);
        for (int i = 0; i < m; i++)
            pr[i] = e[s->idx[i]] / sum;
        goto filter;
    } else {
        for (int i = 0; i < n; i++)
            s->idx[i] = i;
    }
    /* softmax over the kept candidates at the temperature, in double */
    mx = w[s->idx[0]];
    for (int i = 1; i < m; i++)
        if (w[s->idx[i]] > mx)
            mx = w[s->idx[i]];
    for (int i = 0; i < m; i++)
        sum += pr[i] = exp(((double)w[s->idx[i]] - mx) / s->cfg.temp);
    for (int i = 0; i < m; i++)
        pr[i] /= sum;
filter:
    if (s->cfg.top_p < 1.0f) {
        double c = 0.0;
        for (int i = 0; i < m; i++)
            if ((c += pr[i]) >= s->cfg.top_p) {
                m = i + 1;
                break;
            }
    }
    if (s->cfg.min_p > 0.0f) {
        int keep = 1;
        while (keep < m && pr[keep] >= s->cfg.min_p * pr[0])
            keep++;
        m = keep;
    }
    double total = 0.0;
    for (int i = 0; i < m; i++)
        total += pr[i];
    const double r = (double)uniform(s) * total;
    double c = 0.0;
    int32_t pick = s->idx[m - 1];
    for (int i = 0; i < m; i++)
        if (r < (c += pr[i])) {
            pick = s->idx[i];
            break;
        }
    return pick;
}
