/* worker.c - the inference worker (sl_worker.h). */
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "sl_log.h"
#include "sl_mailbox.h"
#include "sl_worker.h"

#define SPIN_ROUNDS (1 << 12) /* tens of microseconds: a busy client's next request is often that close */

typedef struct cmd {
    int cancel;
    sl_version *v;
    sl_sched_req q; /* submit: the request (its prompt now ours); cancel: q.id */
} cmd;

struct sl_worker {
    sl_registry *r;
    pthread_t th;
    int started;
    sl_mailbox cmds, events; /* the loop's to the worker; the worker's to the loop */
    pthread_mutex_t hist_mu;
    sl_hist batch;
    /* the worker thread's own */
    sl_vec local;       /* events of this turn */
    sl_version *cur;    /* whose scheduler is running: the events it sends are its */
    sl_version *active[SL_REG_VERSIONS];
    int n_active;
    /* the loop thread's own */
    sl_vec taken;
};

static void free_events(sl_vec *v)
{
    sl_work_event *e = v->p;
    for (size_t i = 0; i < v->n; i++)
        free(e[i].why);
    v->n = 0;
}

static void free_cmds(sl_worker *w, sl_vec *v)
{
    cmd *c = v->p;
    for (size_t i = 0; i < v->n; i++)
        if (c[i].cancel)
            sl_registry_release(w->r, c[i].v);
        else
            free((void *)c[i].q.prompt);
    v->n = 0;
}

/* An event to the loop: every request's last one must get there (the
 * loop drains on them), so out of memory waits and tries again. */
static void send_event(sl_worker *w, const sl_work_event *e)
{
    for (int tries = 0; sl_mailbox_put(&w->events, e); tries++) {
        if (!tries)
            sl_log(SL_LOG_ERROR, "out of memory for an event of request %llu: retrying", (unsigned long long)e->ev.id);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

/* This turn's events to the loop, in order. */
static void flush_local(sl_worker *w)
{
    const sl_work_event *e = w->local.p;
    for (size_t i = 0; i < w->local.n; i++)
        send_event(w, &e[i]);
    w->local.n = 0;
}

void sl_worker_sched_event(void *ctx, const sl_sched_event *ev)
{
    sl_worker *w = ctx;
    const sl_work_event we = {.v = w->cur, .ev = *ev};
    if (sl_vec_push(&w->local, &we, sizeof we)) { /* no room to hold it: what came before it goes first */
        flush_local(w);
        send_event(w, &we);
    }
}

sl_status sl_worker_new(sl_worker **out, sl_err *err)
{
    *out = NULL;
    sl_worker *w = calloc(1, sizeof *w);
    if (!w)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    sl_status st = sl_mailbox_init(&w->cmds, sizeof(cmd), 0, err);
    if (st) {
        free(w);
        return st;
    }
    if ((st = sl_mailbox_init(&w->events, sizeof(sl_work_event), 1, err))) {
        sl_mailbox_destroy(&w->cmds);
        free(w);
        return st;
    }
    pthread_mutex_init(&w->hist_mu, NULL);
    w->batch.le = sl_hist_sizes;
    *out = w;
    return SL_OK;
}

int sl_worker_fd(const sl_worker *w) { return sl_mailbox_fd(&w->events); }

void sl_worker_submit(sl_worker *w, sl_version *v, sl_sched_req *q)
{
    if (!sl_mailbox_put(&w->cmds, &(cmd){.v = v, .q = *q}))
        return;
    free((void *)q->prompt); /* refused as the scheduler would refuse it, out of memory */
    send_event(w, &(sl_work_event){.v = v, .ev = {.kind = SL_SCHED_FAILED, .id = q->id}, .refused = SL_ENOMEM});
}

void sl_worker_cancel(sl_worker *w, sl_version *v, uint64_t id)
{
    /* a reference of its own: the request's may go (its DONE was on the
     * way) before the worker reads this */
    atomic_fetch_add(&v->refs, 1);
    if (sl_mailbox_put(&w->cmds, &(cmd){.cancel = 1, .v = v, .q = {.id = id}})) {
        sl_registry_release(w->r, v);
        sl_log(SL_LOG_ERROR, "out of memory: request %llu runs to its end uncancelled", (unsigned long long)id);
    }
}

static void apply(sl_worker *w, cmd *c)
{
    w->cur = c->v;
    if (c->cancel) {
        sl_sched_cancel(c->v->s, c->q.id); /* not found: it ended, its last event is on its way */
        sl_registry_release(w->r, c->v);
        return;
    }
    sl_err err = {0};
    const sl_status st = sl_sched_submit(c->v->s, &c->q, &err);
    free((void *)c->q.prompt);
    c->q.prompt = NULL;
    if (st) {
        const sl_work_event e = {.v = c->v, .ev = {.kind = SL_SCHED_FAILED, .id = c->q.id}, .refused = st,
                                 .why = strdup(err.msg)};
        if (sl_vec_push(&w->local, &e, sizeof e)) {
            flush_local(w);
            send_event(w, &e);
        }
        return;
    }
    for (int i = 0; i < w->n_active; i++)
        if (w->active[i] == c->v)
            return;
    w->active[w->n_active++] = c->v;
}

/* One step of every version with work.  The idle ones leave the set
 * before their last events go out: once the loop sees a version's last
 * request end it may free the version, which the worker never touches
 * again. */
static void step_all(sl_worker *w)
{
    for (int i = 0; i < w->n_active;) {
        sl_version *v = w->active[i];
        w->cur = v;
        sl_sched_stats before, after;
        sl_sched_get_stats(v->s, &before);
        int active = 0;
        sl_err err = {0};
        if (sl_sched_step(v->s, &active, &err))
            sl_log(SL_LOG_ERROR, "%s %s: %s", v->name, v->image, err.msg);
        sl_sched_get_stats(v->s, &after);
        sl_registry_note_stats(v, &after);
        if (after.steps > before.steps) {
            pthread_mutex_lock(&w->hist_mu);
            sl_hist_observe(&w->batch, (double)(after.batch_tokens - before.batch_tokens));
            pthread_mutex_unlock(&w->hist_mu);
        }
        if (active)
            i++;
        else
            w->active[i] = w->active[--w->n_active];
    }
}

static void *run(void *arg)
{
    sl_worker *w = arg;
    sl_vec mine = {0};
    for (;;) {
        sl_mailbox_take(&w->cmds, &mine);
        cmd *c = mine.p;
        for (size_t i = 0; i < mine.n; i++)
            apply(w, &c[i]);
        mine.n = 0;
        step_all(w);
        flush_local(w);
        if (!w->n_active && sl_mailbox_wait(&w->cmds, SPIN_ROUNDS))
            break;
    }
    sl_mailbox_take(&w->cmds, &mine);
    free_cmds(w, &mine);
    free(mine.p);
    return NULL;
}

sl_status sl_worker_start(sl_worker *w, sl_registry *r, sl_err *err)
{
    w->r = r;
    const int rc = sl_thread_start(&w->th, run, w);
    if (rc)
        return sl_err_set(err, SL_EIO, "cannot start the inference worker: %s", strerror(rc));
    w->started = 1;
    return SL_OK;
}

int sl_worker_take(sl_worker *w, const sl_work_event **evs)
{
    free_events(&w->taken);
    sl_mailbox_take(&w->events, &w->taken);
    *evs = w->taken.p;
    return (int)w->taken.n;
}

void sl_worker_batch_hist(sl_worker *w, sl_hist *out)
{
    pthread_mutex_lock(&w->hist_mu);
    *out = w->batch;
    pthread_mutex_unlock(&w->hist_mu);
}

void sl_worker_free(sl_worker *w)
{
    if (!w)
        return;
    sl_mailbox_close(&w->cmds);
    if (w->started)
        pthread_join(w->th, NULL);
    sl_vec rest = {0};
    sl_mailbox_take(&w->cmds, &rest);
    free_cmds(w, &rest);
    free(rest.p);
    rest = (sl_vec){0};
    sl_mailbox_take(&w->events, &rest);
    free_events(&rest);
    free(rest.p);
    free_events(&w->taken);
    free_events(&w->local);
    free(w->taken.p);
    free(w->local.p);
    sl_mailbox_destroy(&w->cmds);
    sl_mailbox_destroy(&w->events);
    pthread_mutex_destroy(&w->hist_mu);
    free(w);
}
