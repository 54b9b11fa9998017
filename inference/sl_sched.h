/* sl_sched.h - the continuous-batching scheduler over one engine.
 *
 * Requests wait in a bounded queue and join the running batch between
 * steps; each step carries one token of every decoding sequence first, then
 * prompt chunks in arrival order up to a token budget (so a long prompt
 * cannot starve decoders, and is never taken in one bite); sequences leave
 * the batch as they finish, and their KV blocks return to the pool at once.
 * Because the engine is batch-invariant, a request's tokens are the ones it
 * would get alone.
 *
 * KV policy: a request is admitted when the pool can hold its whole
 * context (prompt + max_tokens), reserved up front, so a running sequence
 * never runs out mid-answer; until then it waits, in order.  A request
 * whose prompt + max_tokens exceed the context is refused at submission
 * (never truncated).
 *
 * Single-threaded: submit, cancel and step are called from one thread (the
 * daemon's inference worker); the engine parallelizes inside a step.  Events come back
 * through the callback during step (and cancel).  The callback may cancel
 * any request, its own included (a client that hung up): that request gets
 * its FAILED event at once and no event after it. */
#ifndef SL_SCHED_H
#define SL_SCHED_H

#include <stdint.h>

#include "sl_engine.h"
#include "sl_error.h"
#include "sl_sampler.h"

typedef enum { SL_SCHED_TOKEN, SL_SCHED_DONE, SL_SCHED_FAILED } sl_sched_event_kind;
typedef enum { SL_FIN_LENGTH, SL_FIN_EOS } sl_sched_finish;
typedef enum { SL_SCHED_CANCELLED = 1, SL_SCHED_DEADLINE, SL_SCHED_ENGINE } sl_sched_failure;

typedef struct sl_sched_event {
    sl_sched_event_kind kind;
    uint64_t id;
    int32_t token;   /* TOKEN */
    int finish;      /* DONE: sl_sched_finish */
    int failure;     /* FAILED: sl_sched_failure */
    int prompt_tokens, generated_tokens;
    uint64_t queue_us, ttft_us, total_us; /* DONE: waiting, to the first token, in all */
} sl_sched_event;

typedef void (*sl_sched_cb)(void *ctx, const sl_sched_event *ev);

typedef struct sl_sched_cfg {
    int max_queue;    /* waiting requests (0: 256) */
    int step_tokens;  /* tokens per step (0: 256) */
    int prompt_chunk; /* prompt tokens one sequence brings per step (0: 64) */
} sl_sched_cfg;

typedef struct sl_sched_req {
    uint64_t id;           /* the caller's; unique among live requests */
    const int32_t *prompt; /* copied */
    int n_prompt;
    int max_tokens;
    sl_sampler_cfg sampler;
    uint64_t deadline_us;  /* sl_now_us() clock; 0: none */
    int stop_at_bos;       /* also stop at BOS (llama2.c's models) */
} sl_sched_req;

typedef struct sl_sched_stats {
    int queued, running;
    int kv_blocks_used, kv_blocks_total;
    uint64_t steps, batch_tokens, generated, finished, failed;
} sl_sched_stats;

typedef struct sl_sched sl_sched;

sl_status sl_sched_create(sl_engine *e, const sl_sched_cfg *cfg, sl_sched_cb cb, void *ctx, sl_sched **out,
                          sl_err *err);
/* Frees everything; requests still queued or running get no event. */
void sl_sched_destroy(sl_sched *s);
/* What submit checks of r alone: SL_EINVAL an empty prompt or max_tokens
 * < 1; SL_ERANGE a token id outside the vocabulary or sampler settings out
 * of range; SL_ECONTEXT prompt + max_tokens past the context or the whole
 * KV pool.  Reads only what is fixed when the scheduler is made, so another
 * thread may call it while this one steps. */
sl_status sl_sched_check(const sl_sched *s, const sl_sched_req *r, sl_err *err);
/* Queues a request: sl_sched_check, then SL_EINVAL a duplicate id,
 * SL_EBUSY the queue is full. */
sl_status sl_sched_submit(sl_sched *s, const sl_sched_req *r, sl_err *err);
/* Cancels a queued or running request: a FAILED (CANCELLED) event is sent
 * and its KV blocks are freed at once (from inside the callback: as soon
 * as the callback returns to the scheduler).  SL_ENOTFOUND if unknown or
 * already ended. */
sl_status sl_sched_cancel(sl_sched *s, uint64_t id);
/* Admits what fits, runs one engine step, samples, sends events, retires
 * what finished.  *active: requests queued or running afterwards. */
sl_status sl_sched_step(sl_sched *s, int *active, sl_err *err);
void sl_sched_get_stats(const sl_sched *s, sl_sched_stats *st);

#endif
