/* sl_registry.h - the models sluiced serves: a name points to its current
 * version, a mapped image with its own engine and scheduler.
 *
 * A load or swap opens the new image, verifies it (content checksum, a
 * tokenizer that encodes and decodes as the current one does, a passing
 * quality verdict unless forced, the memory to hold it), pre-faults its
 * pages, makes its engine, and only then publishes it: new requests get
 * the new version, the ones already running finish on the old one.  A
 * load that fails anywhere leaves the name serving the old version.
 *
 * Threads: loading is slow (seconds for a large image) and runs on the
 * daemon's loader thread; lookups run on the event loop; schedulers are
 * stepped by the inference worker.  The name table is under a mutex (held
 * only to copy a few hundred bytes, so the low-priority loader inside it
 * delays the worker or the loop by a scheduler tick at most); a
 * version lives while it is referenced: by the name table while it is
 * current, and by every request on it.  When the last reference goes,
 * on_dead is called (from whichever thread dropped it) and the loader
 * frees the version with sl_registry_collect. */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "sl_engine.h"
#include "sl_model.h"
#include "sl_sched.h"

#define SL_REG_MODELS 8
#define SL_REG_VERSIONS 16

typedef struct sl_version {
    bool used;         /* the slot holds a version (loading, published or draining) */
    bool published;    /* its engine and scheduler are made */
    bool retired;      /* swapped out or unloaded: finishing what it has */
    bool freeing;      /* the loader is unmapping it */
    char name[65];
    uint64_t number;   /* 1, 2, ... per name */
    char image[1024];
    char checksum[80]; /* the content checksum, as computed */
    uint64_t tok_hash; /* what its tokenizer makes of every id (a swap must keep it) */
    sl_model *m;       /* fixed once published: any thread may read the model and tokenizer */
    sl_engine *e;
    sl_sched *s;       /* the inference worker's alone */
    atomic_int refs;
    uint64_t loaded_us;
    pthread_mutex_t stats_mu; /* the worker's own lock for stats: it never waits on the loader's */
    sl_sched_stats stats;     /* the scheduler's, as of its last step */
} sl_version;

/* A version as the management socket and the metrics show it. */
typedef struct sl_version_info {
    char name[65];
    uint64_t number;
    char image[1024];
    char checksum[80];
    bool retired;
    sl_sched_stats stats;
} sl_version_info;

typedef struct sl_registry {
    pthread_mutex_t mu;
    sl_engine_cfg ec;  /* for versions loaded from now on */
    sl_sched_cfg sc;
    sl_sched_cb cb;    /* every version's scheduler reports here */
    void *ctx;
    void (*on_dead)(void *ctx); /* a retired version's last reference went */
    void *dead_ctx;
    sl_version v[SL_REG_VERSIONS];
    int cur[SL_REG_MODELS]; /* per name slot: index into v, -1 free */
    uint64_t swaps, swaps_failed;
    bool mlock; /* lock each version's pages in memory (never paged out) */
} sl_registry;

sl_status sl_registry_init(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc, sl_sched_cb cb, void *ctx,
                           sl_err *err);
/* The engine and scheduler settings of versions loaded from now on. */
void sl_registry_set_cfg(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc);
/* load: a new name; swap: a new version of a loaded name (replace 0/1).
 * Slow: call it from the loader thread (or before serving starts). */
sl_status sl_registry_load(sl_registry *r, const char *name, const char *image, bool replace, bool force, sl_err *err);
/* Unpublishes a name; its version drains like a swapped-out one. */
sl_status sl_registry_unload(sl_registry *r, const char *name, sl_err *err);
/* The current version of a name with a reference taken, or NULL. */
sl_version *sl_registry_acquire(sl_registry *r, const char *name, size_t len);
void sl_registry_release(sl_registry *r, sl_version *v);
/* Frees every retired version no one references (the loader thread). */
void sl_registry_collect(sl_registry *r);
/* Copies out the versions (current ones first) into out; returns how many. */
int sl_registry_list(sl_registry *r, sl_version_info *out, int max, bool current_only);
/* Names served now; swaps published and refused. */
void sl_registry_counts(sl_registry *r, int *models, uint64_t *swaps, uint64_t *swaps_failed);
/* The inference worker's note of v's scheduler state after a step. */
void sl_registry_note_stats(sl_version *v, const sl_sched_stats *st);
/* Frees everything: no thread may use the registry any more. */
void sl_registry_free(sl_registry *r);

#endif
