/* sl_eval.h - model quality over token sequences: perplexity, and against a
 * reference model the per-token KL divergence, top-1 agreement and logit
 * differences (the quality gate's numbers).  Sums are in double. */
#ifndef SL_EVAL_H
#define SL_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_engine.h"

/* One scored sequence: tokens[0..n); the logits after position p are
 * scored against tokens[p+1] for p in [first, n-1). */
typedef struct sl_eval_seq {
    const int32_t *tokens;
    int n;
    int first;
} sl_eval_seq;

typedef struct sl_eval_result {
    uint64_t n_pred;        /* scored positions */
    double nll;             /* mean negative log-likelihood, nats */
    double ppl;             /* exp(nll) */
    /* with a reference (all zero without) */
    double ref_nll, ref_ppl;
    double kl_mean, kl_p99, kl_max; /* KL(reference || model) per position */
    double top1;            /* fraction of positions whose argmax agrees */
    double max_dlogit;      /* max |logit - reference logit| over every position and token */
} sl_eval_result;

/* Scores the sequences with e (and ref, if non-NULL, on the same tokens).
 * Sequences run several at a time, each from position 0 in its own KV
 * slot; both engines need max_seqs >= 1 and room for the longest one. */
sl_status sl_eval_run(sl_engine *e, sl_engine *ref, const sl_eval_seq *seqs, int n_seqs, sl_eval_result *res,
                      sl_err *err);

/* llama-perplexity's windows: n_ctx-token chunks of the stream, the first
 * token of each replaced by bos (if bos >= 0), scored from n_ctx/2 on.
 * Fills up to n_stream / n_ctx descriptors into out (malloc'd, with their
 * own token copies in *store); returns the count in *n_out. */
sl_status sl_eval_windows(const int32_t *stream, size_t n_stream, int n_ctx, int bos, sl_eval_seq **out,
                          int32_t **store, int *n_out, sl_err *err);

/* The per-piece protocol: text split on sep (empty pieces skipped), at
 * most max_pieces (0: all), each encoded (with BOS when add_bos) and cut to
 * n_ctx tokens, scored from its first prediction.  Descriptors and their
 * tokens are malloc'd into *out and *store. */
sl_status sl_eval_pieces(const sl_tokenizer *tok, const char *text, size_t len, const char *sep, size_t sep_len,
                         int max_pieces, int n_ctx, bool add_bos, sl_eval_seq **out, int32_t **store, int *n_out,
                         sl_err *err);

#endif
