/* Core plans on synthetic multi-node shapes, the pinned worker pool, and
 * NUMA-local buffers (which degrade to plain memory where NUMA is absent). */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sl_numa_mem.h"
#include "sl_plan.h"
#include "sl_pool.h"
#include "sl_topo.h"

Test(numa, plan_on_a_two_socket_shape)
{
    sl_topo t;
    sl_err err = {0};
    cr_assert_eq(sl_topo_probe(&t, "package:2 [numa] core:4 pu:2", &err), SL_OK, "%s", err.msg);
    sl_core_plan *p = malloc(sizeof *p);
    /* node 0, one core for the data plane: workers on the first three cores */
    cr_assert_eq(sl_core_plan_make(&t, -1, 1, 0, p, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(p->node, 0);
    cr_assert_eq(p->n_workers, 3);
    cr_assert_eq(p->worker_cpu[0], 0);
    cr_assert_eq(p->worker_cpu[1], 2);
    cr_assert_eq(p->worker_cpu[2], 4);
    cr_assert_eq(p->n_dp, 1);
    cr_assert_eq(p->dp_cpu[0], 6);
    /* node 1, two data-plane cores, at most one worker */
    cr_assert_eq(sl_core_plan_make(&t, 1, 2, 1, p, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(p->node, 1);
    cr_assert_eq(p->n_workers, 1);
    cr_assert_eq(p->worker_cpu[0], 8);
    cr_assert_eq(p->dp_cpu[0], 12);
    cr_assert_eq(p->dp_cpu[1], 14);
    /* impossible plans are typed errors that say why */
    cr_assert_eq(sl_core_plan_make(&t, 0, 4, 0, p, &err), SL_ERANGE);
    cr_assert(strstr(err.msg, "leaves none"), "%s", err.msg);
    cr_assert_eq(sl_core_plan_make(&t, 7, 0, 0, p, &err), SL_ERANGE);
    cr_assert_eq(sl_core_plan_make(&t, 0, -1, 0, p, &err), SL_EINVAL);
    free(p);
    sl_topo_free(&t);
}

Test(numa, plan_on_this_machine)
{
    sl_topo t;
    sl_err err = {0};
    cr_assert_eq(sl_topo_probe(&t, NULL, &err), SL_OK, "%s", err.msg);
    sl_core_plan *p = malloc(sizeof *p);
    cr_assert_eq(sl_core_plan_make(&t, -1, 0, 0, p, &err), SL_OK, "%s", err.msg);
    cr_assert_geq(p->n_workers, 1);
    free(p);
    sl_topo_free(&t);
}

typedef struct job {
    atomic_int hits[4096];
    atomic_int threads_seen[8];
} job;

static void task(void *ctx, int t, int thread)
{
    job *j = ctx;
    atomic_fetch_add(&j->hits[t], 1);
    atomic_fetch_add(&j->threads_seen[thread], 1);
}

Test(numa, pool_runs_every_task_once)
{
    for (int n = 1; n <= 3; n++) {
        sl_pool *p;
        sl_err err = {0};
        int cpus[3] = {0, 0, 0}; /* pin all to CPU 0: allowed everywhere */
        cr_assert_eq(sl_pool_create(n, cpus, 0, &p, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(sl_pool_threads(p), n);
        cr_assert_leq(sl_pool_pinned(p), n - 1 + 0);
        job *j = calloc(1, sizeof *j);
        for (int round = 0; round < 2000; round++) /* many short jobs: the hand-off must not lose one */
            sl_pool_run(p, task, j, 1 + round % 7);
        sl_pool_run(p, task, j, 4096);
        for (int t = 0; t < 4096; t++) {
            int want = 1;
            for (int round = 0; round < 2000; round++)
                want += t < 1 + round % 7;
            cr_assert_eq(atomic_load(&j->hits[t]), want, "pool of %d: task %d ran %d times, not %d", n, t,
                         atomic_load(&j->hits[t]), want);
        }
        free(j);
        sl_pool_destroy(p);
    }
    sl_pool *p;
    sl_err err = {0};
    cr_assert_eq(sl_pool_create(0, NULL, 0, &p, &err), SL_EINVAL);
}

/* Tasks are dealt in consecutive ranges, one per thread; a thread that
 * is done takes the others' leftovers. */
typedef struct deal {
    atomic_int ran_by[64], order[64], seq;
} deal;

static void deal_task(void *ctx, int t, int thread)
{
    deal *d = ctx;
    if (t == 0) { /* the caller's first task stalls: the worker must finish its range for it */
        struct timespec ts = {0, 300 * 1000 * 1000}; /* long: a loaded machine may start the worker late */
        nanosleep(&ts, NULL);
    }
    atomic_store(&d->order[t], atomic_fetch_add(&d->seq, 1));
    atomic_store(&d->ran_by[t], thread + 1);
}

Test(numa, pool_deals_ranges_and_shares_leftovers)
{
    sl_pool *p;
    sl_err err = {0};
    cr_assert_eq(sl_pool_create(2, NULL, 0, &p, &err), SL_OK, "%s", err.msg);
    deal *d = calloc(1, sizeof *d);
    sl_pool_run(p, deal_task, d, 64);
    int caller = 0, worker_in_callers_range = 0;
    for (int t = 0; t < 64; t++) {
        cr_assert_neq(atomic_load(&d->ran_by[t]), 0, "task %d did not run", t);
        caller += atomic_load(&d->ran_by[t]) == 1;
        worker_in_callers_range += t < 32 && atomic_load(&d->ran_by[t]) == 2;
    }
    cr_assert_eq(atomic_load(&d->ran_by[0]), 1, "task 0 is the caller's first");
    cr_assert_lt(atomic_load(&d->order[32]), atomic_load(&d->order[1]), "the worker starts at its own range (32), not at 1");
    cr_assert_gt(worker_in_callers_range, 0, "the worker took none of the stalled caller's tasks (%d ran on the caller)",
                 caller);
    free(d);
    sl_pool_destroy(p);
}

Test(numa, refused_pinning_degrades_to_unpinned)
{
    sl_pool *p;
    sl_err err = {0};
    int cpus[2] = {CPU_SETSIZE + 5, 100000}; /* no such CPUs: the kernel refuses */
    cr_assert_eq(sl_pool_create(2, cpus, 1, &p, &err), SL_OK, "%s", err.msg);
    job *j = calloc(1, sizeof *j);
    sl_pool_run(p, task, j, 100);
    for (int t = 0; t < 100; t++)
        cr_assert_eq(atomic_load(&j->hits[t]), 1);
    cr_assert_eq(sl_pool_pinned(p), 0);
    free(j);
    sl_pool_destroy(p);
}

Test(numa, buffers_are_zeroed_and_aligned)
{
    for (int node = -1; node <= 0; node++) {
        sl_buf b;
        sl_err err = {0};
        cr_assert_eq(sl_buf_alloc(&b, 1 << 20, node, &err), SL_OK, "%s", err.msg);
        cr_assert_eq((uintptr_t)b.p % (2u << 20), 0, "on a 2 MiB boundary (huge pages)");
        cr_assert_eq(b.bytes, 2u << 20, "rounded up to one 2 MiB unit, not %zu bytes", b.bytes);
        for (size_t i = 0; i < b.bytes; i += 4096)
            cr_assert_eq(((unsigned char *)b.p)[i], 0);
        memset(b.p, 0xa5, b.bytes); /* all of it writable */
        sl_buf_free(&b);
        cr_assert_null(b.p);
    }
}
