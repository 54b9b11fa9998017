/* sl_registry.h - the models sluiced serves: a name points to its current
 * version, a mapped image with its own engine and scheduler.
 *
 * A swap opens the new image, verifies it (content checksum, a tokenizer
 * that encodes and decodes as the current one does, a passing quality
 * verdict unless forced, the memory to hold it), pre-faults its pages,
 * and only then publishes it: new requests go to the new version, the
 * ones already running finish on the old one, which is unmapped when its
 * last request ends.  A swap that fails anywhere leaves the name serving
 * the old version, untouched. */
#ifndef SL_REGISTRY_H
#define SL_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_engine.h"
#include "sl_model.h"
#include "sl_sched.h"

#define SL_REG_MODELS 8
#define SL_REG_VERSIONS 16

typedef struct sl_version {
    bool used, retired;
    char name[65];
    uint64_t number;   /* 1, 2, ... per name */
    char image[1024];
    char checksum[80]; /* the content checksum, as computed */
    uint64_t tok_hash; /* what its tokenizer makes of every id (a swap must keep it) */
    sl_model *m;
    sl_engine *e;
    sl_sched *s;
    int active;        /* requests queued or running after the last step */
    uint64_t loaded_us;
} sl_version;

typedef struct sl_registry {
    sl_engine_cfg ec;
    sl_sched_cfg sc;
    sl_sched_cb cb;    /* every version's scheduler reports here */
    void *ctx;
    sl_version v[SL_REG_VERSIONS];
    int cur[SL_REG_MODELS]; /* per name slot: index into v, -1 free */
    uint64_t swaps, swaps_failed;
    void (*on_step)(void *ctx, int batch_tokens); /* optional: each step's size */
    bool mlock; /* lock each version's pages in memory (never paged out) */
} sl_registry;

void sl_registry_init(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc, sl_sched_cb cb, void *ctx);
/* The current version of a name, or NULL. */
sl_version *sl_registry_get(sl_registry *r, const char *name, size_t len);
/* load: a new name; swap: a new version of a loaded name (replace 0/1). */
sl_status sl_registry_load(sl_registry *r, const char *name, const char *image, bool replace, bool force, sl_err *err);
/* Unpublishes a name; its version drains like a swapped-out one. */
sl_status sl_registry_unload(sl_registry *r, const char *name, sl_err *err);
/* One scheduler step of every version with work; retired versions with
 * none are unmapped.  Returns the requests still queued or running. */
int sl_registry_step(sl_registry *r);
void sl_registry_free(sl_registry *r);

#endif
