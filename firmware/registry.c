/* registry.c - named, versioned models and hot swap (sl_registry.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <xxhash.h>

#include "sl_quality.h"
#include "sl_registry.h"
#include "sl_tokenizer.h"

void sl_registry_init(sl_registry *r, const sl_engine_cfg *ec, const sl_sched_cfg *sc, sl_sched_cb cb, void *ctx)
{
    memset(r, 0, sizeof *r);
    r->ec = *ec;
    r->sc = *sc;
    r->cb = cb;
    r->ctx = ctx;
    for (int i = 0; i < SL_REG_MODELS; i++)
        r->cur[i] = -1;
}

static int slot_of(const sl_registry *r, const char *name, size_t len)
{
    for (int i = 0; i < SL_REG_MODELS; i++)
        if (r->cur[i] >= 0 && strlen(r->v[r->cur[i]].name) == len && memcmp(r->v[r->cur[i]].name, name, len) == 0)
            return i;
    return -1;
}

sl_version *sl_registry_get(sl_registry *r, const char *name, size_t len)
{
    const int s = slot_of(r, name, len);
    return s < 0 ? NULL : &r->v[r->cur[s]];
}

static void version_free(sl_version *v)
{
    sl_sched_destroy(v->s);
    sl_engine_destroy(v->e);
    sl_model_close(v->m);
    memset(v, 0, sizeof *v);
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
    if (nl < 1 || nl > 64)
        return sl_err_set(err, SL_EINVAL, "a model name is 1..64 bytes");
    for (size_t i = 0; i < nl; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (name[i] >= '0' && name[i] <= '9') || name[i] == '.' || name[i] == '_' || name[i] == '-'))
            return sl_err_set(err, SL_EINVAL, "model name '%s': only A-Z a-z 0-9 . _ -", name);
    int slot = slot_of(r, name, nl);
    if (replace && slot < 0)
        return sl_err_set(err, SL_ENOTFOUND, "no model named %s is loaded (load it first)", name);
    if (!replace && slot >= 0)
        return sl_err_set(err, SL_EINVAL, "%s is already loaded (swap it)", name);
    if (!replace)
        for (slot = 0; slot < SL_REG_MODELS && r->cur[slot] >= 0; slot++)
            ;
    if (slot == SL_REG_MODELS)
        return sl_err_set(err, SL_ERANGE, "%d models are loaded already", SL_REG_MODELS);
    int vi = 0;
    while (vi < SL_REG_VERSIONS && r->v[vi].used)
        vi++;
    if (vi == SL_REG_VERSIONS)
        return sl_err_set(err, SL_EBUSY, "%d versions are still draining: try again", SL_REG_VERSIONS);
    sl_version *v = &r->v[vi], *old = replace ? &r->v[r->cur[slot]] : NULL;
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->image, sizeof v->image, "%s", image);
    sl_status st = sl_model_open(image, SL_GGUF_VERIFY_CHECKSUM, &v->m, err);
    if (!st && (st = sl_gguf_compute_checksum(v->m->g, v->checksum, err)))
        sl_err_prefix(err, st, "%s", image);
    if (!st)
        v->tok_hash = tokenizer_hash(v->m->tok);
    if (!st && old && v->tok_hash != old->tok_hash)
        st = sl_err_set(err, SL_EUNSUPPORTED, "%s: its tokenizer differs from the one %s serves (%s)", image, name,
                        old->image);
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
        st = st ? st : sl_engine_create(v->m, &r->ec, &v->e, err);
    }
    st = st ? st : sl_sched_create(v->e, &r->sc, r->cb, r->ctx, &v->s, err);
    if (st) {
        version_free(v);
        r->swaps_failed += replace;
        return st;
    }
    v->used = true;
    v->number = old ? old->number + 1 : 1;
    v->loaded_us = sl_sched_now_us();
    r->cur[slot] = vi; /* published: new requests go here */
    if (old) {
        old->retired = true;
        r->swaps++;
    }
    return SL_OK;
}

sl_status sl_registry_unload(sl_registry *r, const char *name, sl_err *err)
{
    const int slot = slot_of(r, name, strlen(name));
    if (slot < 0)
        return sl_err_set(err, SL_ENOTFOUND, "no model named %s is loaded", name);
    r->v[r->cur[slot]].retired = true;
    r->cur[slot] = -1;
    return SL_OK;
}

int sl_registry_step(sl_registry *r)
{
    int total = 0;
    for (int i = 0; i < SL_REG_VERSIONS; i++) {
        sl_version *v = &r->v[i];
        if (!v->used)
            continue;
        sl_sched_stats st;
        sl_sched_get_stats(v->s, &st);
        if (st.queued || st.running) {
            sl_err err = {0};
            if (sl_sched_step(v->s, &v->active, &err))
                fprintf(stderr, "sluiced: error: %s %s: %s\n", v->name, v->image, err.msg);
            sl_sched_stats after;
            sl_sched_get_stats(v->s, &after);
            if (r->on_step && after.steps > st.steps)
                r->on_step(r->ctx, (int)(after.batch_tokens - st.batch_tokens));
        } else
            v->active = 0;
        if (v->retired && v->active == 0) /* its last request ended: unmapped */
            version_free(v);
        else
            total += v->active;
    }
    return total;
}

void sl_registry_free(sl_registry *r)
{
    for (int i = 0; i < SL_REG_VERSIONS; i++)
        if (r->v[i].used)
            version_free(&r->v[i]);
}
