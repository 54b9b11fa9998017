/* registry.c - named, versioned models and hot swap (sl_registry.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xxhash.h>

#include "sl_clock.h"
#include "sl_quality.h"
#include "sl_registry.h"
#include "sl_tokenizer.h"
#include "sl_wire.h"

sl_status sl_registry_init(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc, sl_sched_cb cb, void *ctx,
                           sl_err *err)
{
    memset(r, 0, sizeof *r);
    const int rc = pthread_mutex_init(&r->mu, NULL);
    if (rc)
        return sl_err_set(err, SL_EIO, "pthread_mutex_init: %s", strerror(rc));
    r->ec = *ec;
    r->sc = *sc;
    r->cb = cb;
    r->ctx = ctx;
    for (int i = 0; i < SL_REG_MODELS; i++)
        r->cur[i] = -1;
    return SL_OK;
}

void sl_registry_set_cfg(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc)
{
    pthread_mutex_lock(&r->mu);
    r->ec = *ec;
    r->sc = *sc;
    pthread_mutex_unlock(&r->mu);
}

/* Under r->mu. */
static int slot_of(const sl_registry *r, const char *name, size_t len)
{
    for (int i = 0; i < SL_REG_MODELS; i++)
        if (r->cur[i] >= 0 && strlen(r->v[r->cur[i]].name) == len && memcmp(r->v[r->cur[i]].name, name, len) == 0)
            return i;
    return -1;
}

sl_version *sl_registry_acquire(sl_registry *r, const char *name, size_t len)
{
    pthread_mutex_lock(&r->mu);
    const int s = slot_of(r, name, len);
    sl_version *v = s < 0 ? NULL : &r->v[r->cur[s]];
    if (v)
        atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&r->mu);
    return v;
}

void sl_registry_release(sl_registry *r, sl_version *v)
{
    if (v && atomic_fetch_sub(&v->refs, 1) == 1 && r->on_dead)
        r->on_dead(r->dead_ctx);
}

/* Unmaps a version; its slot is free again. */
static void version_free(sl_registry *r, sl_version *v)
{
    sl_sched_destroy(v->s);
    sl_engine_destroy(v->e);
    sl_model_close(v->m);
    pthread_mutex_lock(&r->mu);
    pthread_mutex_destroy(&v->stats_mu);
    memset(v, 0, sizeof *v);
    pthread_mutex_unlock(&r->mu);
}

/* What the tokenizer makes of every id, hashed: two images whose pieces,
 * BOS and EOS agree encode and decode text alike. */
static uint64_t tokenizer_hash(const sl_tokenizer *t)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return 0;
    XXH3_64bits_reset(h);
    const int n = sl_tok_vocab_size(t), ends[2] = {sl_tok_bos(t), sl_tok_eos(t)};
    XXH3_64bits_update(h, ends, sizeof ends);
    for (int id = 0; id < n; id++) {
        char piece[512];
        size_t k = sl_tok_piece(t, -1, id, piece, sizeof piece);
        k = k < sizeof piece ? k : sizeof piece;
        XXH3_64bits_update(h, &k, sizeof k);
        XXH3_64bits_update(h, piece, k);
    }
    const uint64_t v = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return v;
}

/* MemAvailable, in bytes (0 when unknown). */
static uint64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    uint64_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

sl_status sl_registry_load(sl_registry *r, const char *name, const char *image, bool replace, bool force, sl_err *err)
{
    const size_t nl = strlen(name);
    if (!sl_wire_model_name_ok(name, nl))
        return sl_err_set(err, SL_EINVAL, "model name '%.64s': 1..64 bytes of A-Z a-z 0-9 . _ -", name);
    /* checks and a slot under the lock; the slow work outside it */
    pthread_mutex_lock(&r->mu);
    const int slot = slot_of(r, name, nl);
    int vi = 0;
    while (vi < SL_REG_VERSIONS && r->v[vi].used)
        vi++;
    sl_status st = SL_OK;
    if (replace && slot < 0)
        st = sl_err_set(err, SL_ENOTFOUND, "no model named %s is loaded (load it first)", name);
    else if (!replace && slot >= 0)
        st = sl_err_set(err, SL_EINVAL, "%s is already loaded (swap it)", name);
    else if (vi == SL_REG_VERSIONS)
        st = sl_err_set(err, SL_EBUSY, "%d versions are still draining: try again", SL_REG_VERSIONS);
    sl_version *v = st ? NULL : &r->v[vi];
    uint64_t old_hash = 0;
    const char *old_image = "";
    char old_image_buf[sizeof v->image];
    if (v) {
        memset(v, 0, sizeof *v);
        pthread_mutex_init(&v->stats_mu, NULL);
        v->used = true;
        if (replace) {
            old_hash = r->v[r->cur[slot]].tok_hash;
            snprintf(old_image_buf, sizeof old_image_buf, "%s", r->v[r->cur[slot]].image);
            old_image = old_image_buf;
        }
    }
    const sl_engine_cfg ec = r->ec;
    const sl_sched_cfg sc = r->sc;
    pthread_mutex_unlock(&r->mu);
    if (st) {
        if (replace) {
            pthread_mutex_lock(&r->mu);
            r->swaps_failed++;
            pthread_mutex_unlock(&r->mu);
        }
        return st;
    }
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->image, sizeof v->image, "%s", image);
    st = sl_model_open(image, SL_GGUF_VERIFY_CHECKSUM, &v->m, err);
    if (!st && (st = sl_gguf_compute_checksum(v->m->g, v->checksum, err)))
        sl_err_prefix(err, st, "%s", image);
    if (!st)
        v->tok_hash = tokenizer_hash(v->m->tok);
    if (!st && replace && v->tok_hash != old_hash)
        st = sl_err_set(err, SL_EUNSUPPORTED, "%s: its tokenizer differs from the one %s serves (%s)", image, name,
                        old_image);
    if (!st && !force) {
        sl_quality q;
        st = sl_quality_read(v->m->g, v->checksum, &q, err);
        if (!st && !q.present)
            st = sl_err_set(err, SL_EUNSUPPORTED, "%s carries no quality verdict (sluice validate; or force)", image);
        else if (!st && !q.pass)
            st = sl_err_set(err, SL_EUNSUPPORTED, "%s failed its quality gate (ppl ratio %.4f, mean KLD %.5f)", image,
                            q.ppl_ratio, q.kl_mean);
    }
    if (!st) {
        const uint64_t need = v->m->g->size, avail = mem_available();
        if (avail && need > avail)
            st = sl_err_set(err, SL_ENOMEM, "%s needs %llu MB and %llu MB are available", image,
                            (unsigned long long)(need >> 20), (unsigned long long)(avail >> 20));
    }
    if (!st) { /* warm: every page faulted in before the first request meets it */
        volatile uint8_t sink = 0;
        for (size_t o = 0; o < v->m->g->size; o += 4096)
            sink ^= v->m->g->base[o];
        (void)sink;
        if (r->mlock && mlock(v->m->g->base, v->m->g->size) < 0)
            st = sl_err_errno(err, SL_EIO, "%s: cannot lock %llu MB in memory (RLIMIT_MEMLOCK?)", image,
                              (unsigned long long)(v->m->g->size >> 20));
        st = st ? st : sl_engine_create(v->m, &ec, &v->e, err);
    }
    st = st ? st : sl_sched_create(v->e, &sc, r->cb, r->ctx, &v->s, err);
    pthread_mutex_lock(&r->mu);
    const int now_slot = slot_of(r, name, nl); /* publish: the table may have changed meanwhile */
    if (!st && replace && now_slot < 0)
        st = sl_err_set(err, SL_ENOTFOUND, "%s was unloaded while its new version loaded", name);
    int free_slot = now_slot;
    if (!st && !replace) {
        if (now_slot >= 0)
            st = sl_err_set(err, SL_EINVAL, "%s is already loaded (swap it)", name);
        for (free_slot = 0; free_slot < SL_REG_MODELS && r->cur[free_slot] >= 0; free_slot++)
            ;
        if (!st && free_slot == SL_REG_MODELS)
            st = sl_err_set(err, SL_ERANGE, "%d models are loaded already", SL_REG_MODELS);
    }
    sl_version *old = NULL;
    if (st) {
        r->swaps_failed += replace;
    } else {
        old = replace ? &r->v[r->cur[free_slot]] : NULL;
        v->number = old ? old->number + 1 : 1;
        v->loaded_us = sl_now_us();
        v->published = true;
        atomic_store(&v->refs, 1); /* the name table's */
        sl_sched_get_stats(v->s, &v->stats);
        r->cur[free_slot] = vi; /* published: new requests come here */
        if (old) {
            old->retired = true;
            r->swaps++;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (st) {
        version_free(r, v);
        return st;
    }
    sl_registry_release(r, old); /* the table's reference: it drains and is freed */
    return SL_OK;
}

sl_status sl_registry_unload(sl_registry *r, const char *name, sl_err *err)
{
    pthread_mutex_lock(&r->mu);
    const int slot = slot_of(r, name, strlen(name));
    sl_version *v = slot < 0 ? NULL : &r->v[r->cur[slot]];
    if (v) {
        v->retired = true;
        r->cur[slot] = -1;
    }
    pthread_mutex_unlock(&r->mu);
    if (!v)
        return sl_err_set(err, SL_ENOTFOUND, "no model named %s is loaded", name);
    sl_registry_release(r, v);
    return SL_OK;
}

void sl_registry_collect(sl_registry *r)
{
    for (;;) {
        sl_version *dead = NULL;
        pthread_mutex_lock(&r->mu);
        for (int i = 0; i < SL_REG_VERSIONS && !dead; i++)
            if (r->v[i].published && r->v[i].retired && !r->v[i].freeing && atomic_load(&r->v[i].refs) == 0)
                dead = &r->v[i];
        if (dead)
            dead->freeing = true;
        pthread_mutex_unlock(&r->mu);
        if (!dead)
            return;
        version_free(r, dead);
    }
}

static void info_of(sl_version *v, sl_version_info *o)
{
    memcpy(o->name, v->name, sizeof o->name);
    o->number = v->number;
    memcpy(o->image, v->image, sizeof o->image);
    memcpy(o->checksum, v->checksum, sizeof o->checksum);
    o->retired = v->retired;
    pthread_mutex_lock(&v->stats_mu);
    o->stats = v->stats;
    pthread_mutex_unlock(&v->stats_mu);
}

int sl_registry_list(sl_registry *r, sl_version_info *out, int max, bool current_only)
{
    int n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < SL_REG_VERSIONS && n < max; i++)
        if (r->v[i].published && !r->v[i].freeing && (!current_only || !r->v[i].retired))
            info_of(&r->v[i], &out[n++]);
    pthread_mutex_unlock(&r->mu);
    return n;
}

void sl_registry_counts(sl_registry *r, int *models, uint64_t *swaps, uint64_t *swaps_failed)
{
    pthread_mutex_lock(&r->mu);
    int n = 0;
    for (int i = 0; i < SL_REG_MODELS; i++)
        n += r->cur[i] >= 0;
    *models = n;
    *swaps = r->swaps;
    *swaps_failed = r->swaps_failed;
    pthread_mutex_unlock(&r->mu);
}

void sl_registry_note_stats(sl_version *v, const sl_sched_stats *st)
{
    pthread_mutex_lock(&v->stats_mu);
    v->stats = *st;
    pthread_mutex_unlock(&v->stats_mu);
}

void sl_registry_free(sl_registry *r)
{
    for (int i = 0; i < SL_REG_VERSIONS; i++)
        if (r->v[i].used)
            version_free(r, &r->v[i]);
    pthread_mutex_destroy(&r->mu);
}
