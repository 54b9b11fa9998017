/* mailbox.c - queues between the daemon's threads (sl_mailbox.h). */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "sl_grow.h"
#include "sl_mailbox.h"

int sl_vec_push(sl_vec *v, const void *item, size_t size)
{
    if (sl_grow(&v->p, &v->cap, (v->n + 1) * size, 64 * size))
        return -1;
    memcpy((uint8_t *)v->p + v->n * size, item, size);
    v->n++;
    return 0;
}

sl_status sl_mailbox_init(sl_mailbox *mb, size_t item_size, int with_eventfd, sl_err *err)
{
    memset(mb, 0, sizeof *mb);
    mb->size = item_size;
    mb->efd = -1;
    int rc = pthread_mutex_init(&mb->mu, NULL);
    if (rc)
        return sl_err_set(err, SL_EIO, "pthread_mutex_init: %s", strerror(rc));
    if ((rc = pthread_cond_init(&mb->cv, NULL))) {
        pthread_mutex_destroy(&mb->mu);
        return sl_err_set(err, SL_EIO, "pthread_cond_init: %s", strerror(rc));
    }
    if (with_eventfd && (mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        pthread_mutex_destroy(&mb->mu);
        pthread_cond_destroy(&mb->cv);
        return sl_err_errno(err, SL_EIO, "eventfd");
    }
    return SL_OK;
}

int sl_mailbox_put(sl_mailbox *mb, const void *item)
{
    pthread_mutex_lock(&mb->mu);
    const int rc = sl_vec_push(&mb->q, item, mb->size);
    const int first = !rc && mb->q.n == 1;
    if (!rc)
        atomic_store(&mb->n, (int)mb->q.n);
    if (!rc && mb->sleeping)
        pthread_cond_signal(&mb->cv);
    pthread_mutex_unlock(&mb->mu);
    if (first && mb->efd >= 0) /* the consumer takes all at once: one wake per batch */
        (void)!write(mb->efd, &(uint64_t){1}, 8);
    return rc;
}

void sl_mailbox_take(sl_mailbox *mb, sl_vec *into)
{
    if (mb->efd >= 0) { /* cleared before the take: a put after it writes again */
        uint64_t k;
        (void)!read(mb->efd, &k, sizeof k);
    }
    pthread_mutex_lock(&mb->mu);
    const sl_vec t = *into;
    *into = mb->q;
    mb->q = t;
    atomic_store(&mb->n, 0);
    pthread_mutex_unlock(&mb->mu);
}

int sl_mailbox_wait(sl_mailbox *mb, int spins)
{
    for (int i = 0; i < spins && !atomic_load_explicit(&mb->n, memory_order_relaxed); i++)
        __builtin_ia32_pause();
    pthread_mutex_lock(&mb->mu);
    mb->sleeping = 1;
    while (!mb->q.n && !mb->closed)
        pthread_cond_wait(&mb->cv, &mb->mu);
    mb->sleeping = 0;
    const int closed = mb->closed;
    pthread_mutex_unlock(&mb->mu);
    return closed;
}

int sl_mailbox_fd(const sl_mailbox *mb) { return mb->efd; }

int sl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    const int rc = pthread_create(th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void sl_mailbox_close(sl_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    mb->closed = 1;
    pthread_cond_broadcast(&mb->cv);
    pthread_mutex_unlock(&mb->mu);
}

void sl_mailbox_destroy(sl_mailbox *mb)
{
    free(mb->q.p);
    if (mb->efd >= 0)
        close(mb->efd);
    pthread_mutex_destroy(&mb->mu);
    pthread_cond_destroy(&mb->cv);
}
