/* pool.c - the worker pool (sl_pool.h). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sl_pool.h"

#define SPIN_ROUNDS (1 << 11) /* ~tens of microseconds before a worker sleeps */

/* One thread's share of a job: tasks [next, end), taken from the front
 * by the owner and by any thread that has run out of its own. */
typedef struct range {
    _Alignas(64) atomic_int next;
    int end;
} range;

typedef struct worker {
    struct sl_pool *p;
    int index;
    int cpu;
    pthread_t th;
} worker;

struct sl_pool {
    int n_threads;
    atomic_int pinned;
    worker *w;
    int n_started;
    /* the current job */
    sl_task_fn fn;
    void *ctx;
    range *r; /* one per thread */
    atomic_int done;       /* workers finished with this job */
    atomic_uint gen;       /* bumped per job */
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers;
};

static int pin_to(int cpu)
{
    if (cpu < 0 || cpu >= CPU_SETSIZE)
        return -1;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* The thread's own consecutive tasks first (a task's neighbour in memory
 * is then most often run by the same core, which has prefetched into it),
 * then the others' leftovers. */
static void drain(sl_pool *p, int thread)
{
    for (int i = 0; i < p->n_threads; i++) {
        range *r = &p->r[(thread + i) % p->n_threads];
        for (;;) {
            int t = atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed);
            if (t >= r->end)
                break;
            p->fn(p->ctx, t, thread);
        }
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sl_pool *p = w->p;
    if (w->cpu >= 0 && pin_to(w->cpu) == 0)
        atomic_fetch_add(&p->pinned, 1);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS) {
                __builtin_ia32_pause();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        drain(p, w->index);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

sl_status sl_pool_create(int n_threads, const int *cpus, int pin_caller, sl_pool **out, sl_err *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return sl_err_set(err, SL_EINVAL, "thread count %d is outside 1..1024", n_threads);
    sl_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->w = calloc((size_t)n_threads, sizeof *p->w)) ||
        !(p->r = aligned_alloc(64, sizeof *p->r * (size_t)n_threads))) {
        if (p)
            free(p->w);
        free(p);
        return sl_err_set(err, SL_ENOMEM, "out of memory for a pool of %d threads", n_threads);
    }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (cpus && pin_caller && pin_to(cpus[0]) == 0)
        atomic_fetch_add(&p->pinned, 1);
    for (int i = 1; i < n_threads; i++) {
        p->w[i] = (worker){p, i, cpus ? cpus[i] : -1, 0};
        int rc = pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]);
        if (rc) {
            sl_pool_destroy(p);
            return sl_err_set(err, SL_EIO, "pthread_create failed for worker %d: %s", i, strerror(rc));
        }
        p->n_started = i;
    }
    *out = p;
    return SL_OK;
}

void sl_pool_destroy(sl_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->n_started; i++)
        pthread_join(p->w[i].th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->w);
    free(p->r);
    free(p);
}

int sl_pool_threads(const sl_pool *p) { return p->n_threads; }
int sl_pool_pinned(const sl_pool *p) { return atomic_load((atomic_int *)&p->pinned); }

void sl_pool_run(sl_pool *p, sl_task_fn fn, void *ctx, int n_tasks)
{
    if (n_tasks <= 0)
        return;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    for (int i = 0; i < p->n_threads; i++) {
        atomic_store_explicit(&p->r[i].next, (int)((long)n_tasks * i / p->n_threads), memory_order_relaxed);
        p->r[i].end = (int)((long)n_tasks * (i + 1) / p->n_threads);
    }
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers)
        pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n_threads - 1)
        if (++spins < SPIN_ROUNDS)
            __builtin_ia32_pause();
        else
            sched_yield();
}
