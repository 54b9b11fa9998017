/* sl_loader.h - the loader thread: loads, swaps and unloads run here,
 * off the event loop, because opening, verifying and warming an image
 * takes seconds for a large one; retired versions are unmapped here too.
 * Each job's outcome comes back to the loop through a queue whose eventfd
 * wakes it, with the caller's token (whom to answer). */
#ifndef SL_LOADER_H
#define SL_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_registry.h"

typedef enum sl_load_kind { SL_LOAD_NEW, SL_LOAD_SWAP, SL_LOAD_UNLOAD } sl_load_kind;

typedef struct sl_load_job {
    sl_load_kind kind;
    bool force;        /* publish without a passing quality verdict */
    char name[65];
    char image[1024];
    uint64_t token;    /* the caller's */
} sl_load_job;

typedef struct sl_load_done {
    sl_load_job job;
    sl_status st;
    char msg[512];     /* why it failed */
} sl_load_done;

typedef struct sl_loader sl_loader;

/* Starts the thread; it becomes r's on_dead. */
sl_status sl_loader_start(sl_registry *r, sl_loader **out, sl_err *err);
int sl_loader_fd(const sl_loader *l);
/* Queues a job; its outcome comes back through sl_loader_take. */
sl_status sl_loader_post(sl_loader *l, const sl_load_job *job, sl_err *err);
/* Jobs posted and not yet taken back as done. */
int sl_loader_pending(const sl_loader *l);
/* The finished jobs, oldest first; valid until the next call. */
int sl_loader_take(sl_loader *l, const sl_load_done **done);
/* Finishes the job at hand, drops the rest, joins the thread. */
void sl_loader_free(sl_loader *l);

#endif
