/* sl_worker.h - the inference worker: one thread that owns every model
 * version's scheduler and steps them, so the event loop never runs (or
 * waits for) a forward pass.
 *
 * The loop posts requests and cancels; the worker applies them between
 * steps, steps every version that has work, and hands the schedulers'
 * events back in order through a queue whose eventfd wakes the loop.  The
 * engine's threads are the worker (thread 0 of each step) and the pool's
 * pinned workers.  When nothing is left to run the worker spins a few tens
 * of microseconds for the next request, then sleeps. */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include "sl_metrics.h"
#include "sl_registry.h"
#include "sl_sched.h"

typedef struct sl_work_event {
    sl_version *v;      /* the version the request runs on */
    sl_sched_event ev;
    sl_status refused;  /* SL_OK, or why the scheduler refused the request (ev: FAILED, ev.id) */
    char *why;          /* refused: the scheduler's message */
} sl_work_event;

typedef struct sl_worker sl_worker;

/* The scheduler callback every version's scheduler is made with (ctx: the
 * worker), so sl_worker_new comes before the registry's first load. */
void sl_worker_sched_event(void *ctx, const sl_sched_event *ev);

sl_status sl_worker_new(sl_worker **out, sl_err *err);
/* Starts the thread over the registry's versions. */
sl_status sl_worker_start(sl_worker *w, sl_registry *r, sl_err *err);
/* Readable while events wait: the loop's epoll watches it. */
int sl_worker_fd(const sl_worker *w);
/* Queues q on v (q->prompt, malloc'd, becomes the worker's).  Every
 * request gets events: tokens then DONE, or FAILED, or a refusal. */
void sl_worker_submit(sl_worker *w, sl_version *v, sl_sched_req *q);
void sl_worker_cancel(sl_worker *w, sl_version *v, uint64_t id);
/* The events waiting, oldest first; valid until the next call. */
int sl_worker_take(sl_worker *w, const sl_work_event **evs);
/* Tokens per step, as a histogram. */
void sl_worker_batch_hist(sl_worker *w, sl_hist *out);
/* Stops and joins the thread (requests still queued get no events) and
 * frees the worker. */
void sl_worker_free(sl_worker *w);

#endif
