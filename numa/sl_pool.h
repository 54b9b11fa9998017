/* sl_pool.h - a persistent pool of worker threads pinned to cores.
 *
 * sl_pool_run hands out tasks 0..n-1 to the calling thread (thread 0) and
 * the workers, and returns when all are done.  Each thread starts on its
 * own consecutive range of the tasks (thread i: i*n/T up to (i+1)*n/T, in
 * order), then takes what is left of the others'.  Which thread runs a task is
 * not fixed; callers make each task's result independent of that (the
 * engine's tasks own disjoint outputs), so results do not depend on the
 * thread count.  Workers spin briefly for the next job, then sleep. */
#ifndef SL_POOL_H
#define SL_POOL_H

#include "sl_error.h"

typedef struct sl_pool sl_pool;
typedef void (*sl_task_fn)(void *ctx, int task, int thread);

/* n_threads counts the caller.  cpus (may be NULL) lists one CPU per
 * thread; the workers pin themselves to cpus[1..], and the caller to cpus[0]
 * when pin_caller.  A refused pin is not an error: sl_pool_pinned tells how
 * many threads are pinned. */
sl_status sl_pool_create(int n_threads, const int *cpus, int pin_caller, sl_pool **out, sl_err *err);
void sl_pool_destroy(sl_pool *p);
int sl_pool_threads(const sl_pool *p);
int sl_pool_pinned(const sl_pool *p);
void sl_pool_run(sl_pool *p, sl_task_fn fn, void *ctx, int n_tasks);

#endif
