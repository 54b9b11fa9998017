/* pool.c - the worker pool (sl_pool.h). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sl_pool.h"

#define SPIN_ROUNDS (1 << 11) /* ~tens of microseconds before a worker sleeps */

/* One thread's line.  claim: the job number in the high half, the next
 * task of this thread's range in the low half; a number other than the
 * current job's means the range is untouched (it starts at its first
 * task), so a job needs no reset of the ranges, and the owner claims from
 * a line that stays in its own cache unless another thread steals.
 * ack: the last job this worker is done with. */
typedef struct slot {
    _Alignas(64) _Atomic uint64_t claim;
    _Alignas(64) atomic_uint ack; /* its own line: the caller's polling never slows a claim */
} slot;

typedef struct worker {
    struct sl_pool *p;
    int index;
    int cpu;
    pthread_t th;
} worker;

struct sl_pool {
    /* the current job, in one line: a worker's first read brings it all;
     * written only once every worker has acknowledged the previous job */
    _Alignas(64) sl_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_uint gen; /* the job's number, bumped per job */
    _Alignas(64) int n_threads;
    atomic_int pinned;
    worker *w;
    slot *s; /* one per thread */
    int n_started;
    atomic_int stop;
    atomic_int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
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

/* A task of job g from thread i's range, or -1 when none is left. */
static int claim(const sl_pool *p, unsigned g, int i)
{
    const int start = (int)((long)p->n_tasks * i / p->n_threads);
    const int end = (int)((long)p->n_tasks * (i + 1) / p->n_threads);
    _Atomic uint64_t *c = &p->s[i].claim;
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    for (;;) {
        const int next = (unsigned)(v >> 32) == g ? (int)(uint32_t)v : start;
        if (next >= end)
            return -1;
        const uint64_t nv = (uint64_t)g << 32 | (uint32_t)(next + 1);
        if (atomic_compare_exchange_weak_explicit(c, &v, nv, memory_order_relaxed, memory_order_relaxed))
            return next;
    }
}

/* The thread's own consecutive tasks first (a task's neighbour in memory
 * is then most often run by the same core, which has prefetched into it),
 * then the others' leftovers. */
static void drain(const sl_pool *p, unsigned g, int thread)
{
    for (int i = 0; i < p->n_threads; i++) {
        const int r = (thread + i) % p->n_threads;
        for (int t; (t = claim(p, g, r)) >= 0;)
            p->fn(p->ctx, t, thread);
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
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            if (++spins < SPIN_ROUNDS) {
                __builtin_ia32_pause();
                continue;
            }
            /* sleepers, then gen (both sequentially consistent), against
             * sl_pool_run's gen, then sleepers: one of the two sees the
             * other's write, so a job is never slept through */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        drain(p, g, w->index);
        atomic_store_explicit(&p->s[w->index].ack, g, memory_order_release);
    }
}

sl_status sl_pool_create(int n_threads, const int *cpus, int pin_caller, sl_pool **out, sl_err *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return sl_err_set(err, SL_EINVAL, "thread count %d is outside 1..1024", n_threads);
    sl_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->w = calloc((size_t)n_threads, sizeof *p->w)) ||
        !(p->s = aligned_alloc(64, sizeof *p->s * (size_t)n_threads))) {
        if (p)
            free(p->w);
        free(p);
        return sl_err_set(err, SL_ENOMEM, "out of memory for a pool of %d threads", n_threads);
    }
    p->n_threads = n_threads;
    for (int i = 0; i < n_threads; i++) {
        atomic_init(&p->s[i].claim, 0);
        atomic_init(&p->s[i].ack, 0);
    }
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
    free(p->s);
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
    p->n_tasks = n_tasks;
    const unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    /* A range that no job has had tasks in for 2^32 jobs would show the
     * current number again; every 2^31 jobs (no worker busy now) each
     * range is marked with the last one's. */
    if ((g & 0x7fffffffu) == 0)
        for (int i = 0; i < p->n_threads; i++)
            atomic_store_explicit(&p->s[i].claim, (uint64_t)(g - 1) << 32, memory_order_relaxed);
    atomic_store(&p->gen, g);
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    drain(p, g, 0);
    for (int i = 1; i < p->n_threads; i++)
        for (int spins = 0; atomic_load_explicit(&p->s[i].ack, memory_order_acquire) != g;)
            if (++spins < SPIN_ROUNDS)
                __builtin_ia32_pause();
            else
                sched_yield();
}
