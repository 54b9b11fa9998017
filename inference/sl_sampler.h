/* sl_sampler.h - choosing the next token from logits.
 *
 * Order: repetition penalty, then greedy (temperature 0) or temperature,
 * top-k, softmax, top-p, min-p, and a draw from the sequence's own seeded
 * generator.  Nothing depends on threads or on other sequences, so a seed
 * gives the same tokens at any thread count and in any batch. */
#ifndef SL_SAMPLER_H
#define SL_SAMPLER_H

#include <stdint.h>

#include "sl_error.h"

typedef struct sl_sampler_cfg {
    float temp;        /* 0: greedy */
    int top_k;         /* 0: off */
    float top_p;       /* 1: off */
    float min_p;       /* 0: off */
    float rep_penalty; /* 1: off; > 1 discourages tokens seen in the last rep_last_n */
    int rep_last_n;
    uint64_t seed;
} sl_sampler_cfg;

typedef struct sl_sampler {
    sl_sampler_cfg cfg;
    uint64_t state;
    int n_vocab;
    float *work;   /* n_vocab: penalised logits */
    int32_t *idx;  /* n_vocab: candidate ids */
    double *prob;  /* n_vocab: candidate probabilities, in rank order */
    double *eprob; /* n_vocab: unnormalized probabilities by id (top-p / min-p) */
} sl_sampler;

/* Defaults: greedy, no filters, seed 0. */
sl_sampler_cfg sl_sampler_defaults(void);
/* Checks ranges (temp >= 0, top_p in (0,1], min_p in [0,1), penalty > 0). */
/* Whether cfg is in range for a vocabulary of n_vocab (SL_ERANGE if not). */
sl_status sl_sampler_check(const sl_sampler_cfg *cfg, int n_vocab, sl_err *err);
sl_status sl_sampler_init(sl_sampler *s, const sl_sampler_cfg *cfg, int n_vocab, sl_err *err);
void sl_sampler_free(sl_sampler *s);

/* The next token; history (may be NULL) is the sequence so far, for the
 * repetition penalty. */
int32_t sl_sample(sl_sampler *s, const float *logits, const int32_t *history, int n_history);

/* Greedy choice: the largest logit, the lowest id on ties. */
int32_t sl_argmax(const float *logits, int n);

#endif
