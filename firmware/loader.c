/* loader.c - the loader thread (sl_loader.h). */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_loader.h"
#include "sl_log.h"
#include "sl_mailbox.h"

/* An item of the job queue: a job, or a nudge to free dead versions. */
typedef struct item {
    int collect;
    sl_load_job job;
} item;

struct sl_loader {
    sl_registry *r;
    pthread_t th;
    sl_mailbox jobs, done;
    int pending; /* the loop's count */
    sl_vec taken;
};

static void on_dead(void *ctx)
{
    sl_loader *l = ctx;
    if (sl_mailbox_put(&l->jobs, &(item){.collect = 1}))
        sl_log(SL_LOG_ERROR, "out of memory: a retired version stays mapped until the next swap");
}

static void run_job(sl_loader *l, const sl_load_job *j)
{
    sl_load_done d = {.job = *j};
    sl_err err = {0};
    if (j->kind == SL_LOAD_UNLOAD)
        d.st = sl_registry_unload(l->r, j->name, &err);
    else
        d.st = sl_registry_load(l->r, j->name, j->image, j->kind == SL_LOAD_SWAP, j->force, &err);
    if (d.st)
        snprintf(d.msg, sizeof d.msg, "%s", err.msg);
    while (sl_mailbox_put(&l->done, &d)) /* its caller waits for this answer */
        sl_log(SL_LOG_ERROR, "out of memory for a load's outcome: retrying");
}

static void *run(void *arg)
{
    sl_loader *l = arg;
    sl_vec mine = {0};
    /* the lowest priority: it yields its core to the worker and the loop
     * whenever they run, so a load never stalls a stream (it takes longer
     * on a machine with no idle core) */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), 19) < 0)
        sl_log(SL_LOG_WARN, "the loader runs at normal priority: %m");
    /* and it verifies images at 2 GB/s: a memory-bound forward pass beside
     * it keeps its bandwidth (a 620 MB image takes 0.3 s longer) */
    sl_checksum_pace(2000000000ull);
    while (!sl_mailbox_wait(&l->jobs, 0)) {
        sl_mailbox_take(&l->jobs, &mine);
        const item *it = mine.p;
        for (size_t i = 0; i < mine.n; i++)
            if (!it[i].collect)
                run_job(l, &it[i].job);
        mine.n = 0;
        sl_registry_collect(l->r);
    }
    free(mine.p);
    return NULL;
}

sl_status sl_loader_start(sl_registry *r, sl_loader **out, sl_err *err)
{
    *out = NULL;
    sl_loader *l = calloc(1, sizeof *l);
    if (!l)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    l->r = r;
    sl_status st = sl_mailbox_init(&l->jobs, sizeof(item), 0, err);
    if (st) {
        free(l);
        return st;
    }
    if ((st = sl_mailbox_init(&l->done, sizeof(sl_load_done), 1, err))) {
        sl_mailbox_destroy(&l->jobs);
        free(l);
        return st;
    }
    pthread_mutex_lock(&r->mu);
    r->on_dead = on_dead;
    r->dead_ctx = l;
    pthread_mutex_unlock(&r->mu);
    const int rc = sl_thread_start(&l->th, run, l);
    if (rc) {
        r->on_dead = NULL;
        sl_mailbox_destroy(&l->jobs);
        sl_mailbox_destroy(&l->done);
        free(l);
        return sl_err_set(err, SL_EIO, "cannot start the loader thread: %s", strerror(rc));
    }
    sl_registry_collect(r); /* what was retired before */
    *out = l;
    return SL_OK;
}

int sl_loader_fd(const sl_loader *l) { return sl_mailbox_fd(&l->done); }

sl_status sl_loader_post(sl_loader *l, const sl_load_job *job, sl_err *err)
{
    if (sl_mailbox_put(&l->jobs, &(item){.job = *job}))
        return sl_err_set(err, SL_ENOMEM, "out of memory for the job");
    l->pending++;
    return SL_OK;
}

int sl_loader_pending(const sl_loader *l) { return l->pending; }

int sl_loader_take(sl_loader *l, const sl_load_done **done)
{
    l->taken.n = 0;
    sl_mailbox_take(&l->done, &l->taken);
    l->pending -= (int)l->taken.n;
    *done = l->taken.p;
    return (int)l->taken.n;
}

void sl_loader_free(sl_loader *l)
{
    if (!l)
        return;
    sl_mailbox_close(&l->jobs);
    pthread_join(l->th, NULL);
    pthread_mutex_lock(&l->r->mu);
    l->r->on_dead = NULL;
    pthread_mutex_unlock(&l->r->mu);
    sl_mailbox_destroy(&l->jobs);
    sl_mailbox_destroy(&l->done);
    free(l->taken.p);
    free(l);
}
