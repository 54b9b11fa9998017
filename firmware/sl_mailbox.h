/* sl_mailbox.h - a queue of fixed-size items from any thread to one
 * consumer: a thread that waits on it, or the event loop, woken through
 * an eventfd.  Items move in batches: the consumer swaps the whole queue
 * for its own empty vector under the lock, so a producer and the consumer
 * meet once per batch, not once per item. */
#ifndef SL_MAILBOX_H
#define SL_MAILBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "sl_error.h"

typedef struct sl_vec {
    void *p;
    size_t n, cap; /* items; bytes */
} sl_vec;

/* Appends one item of size bytes: -1 when out of memory. */
int sl_vec_push(sl_vec *v, const void *item, size_t size);

typedef struct sl_mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sl_vec q;
    size_t size;
    int efd;       /* -1: the consumer is a thread that waits */
    int sleeping, closed;
    atomic_int n;  /* items waiting: a spinning consumer reads it unlocked */
} sl_mailbox;

/* eventfd: whether the consumer is an epoll loop (sl_mailbox_fd). */
sl_status sl_mailbox_init(sl_mailbox *mb, size_t item_size, int eventfd, sl_err *err);
/* -1 when out of memory (the item is not queued). */
int sl_mailbox_put(sl_mailbox *mb, const void *item);
/* Everything waiting, swapped into *into (which must be empty). */
void sl_mailbox_take(sl_mailbox *mb, sl_vec *into);
/* Waits until an item is there or the mailbox is closed, spinning about
 * `spins` pauses before sleeping; returns 1 once closed. */
int sl_mailbox_wait(sl_mailbox *mb, int spins);
int sl_mailbox_fd(const sl_mailbox *mb);
/* Wakes the consumer for good. */
void sl_mailbox_close(sl_mailbox *mb);
/* Starts a thread of the daemon's with every signal blocked in it: the
 * event loop alone takes SIGTERM, SIGINT and SIGHUP (its epoll_wait is
 * what they interrupt).  Returns pthread_create's error number. */
int sl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* Frees the queue (items holding memory are the caller's to free first). */
void sl_mailbox_destroy(sl_mailbox *mb);

#endif
