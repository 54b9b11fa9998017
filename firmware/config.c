/* config.c - sluiced's configuration file (sl_config.h). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_config.h"
#include "sl_json_check.h"
#include "sl_kernels.h"

const char *const sl_log_level_names[4] = {"error", "warn", "info", "debug"};

int sl_log_level_parse(const char *s)
{
    for (int l = 0; s && l < 4; l++)
        if (!strcmp(s, sl_log_level_names[l]))
            return l;
    return -1;
}

/* v's string if it is one, with no NUL inside (a name's spelling), else NULL */
static const char *name_of(json_object *v)
{
    if (!json_object_is_type(v, json_type_string))
        return NULL;
    const char *s = json_object_get_string(v);
    return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static sl_status bool_of(json_object *v, const char *key, int *out, sl_err *err)
{
    if (!json_object_is_type(v, json_type_boolean))
        return sl_err_set(err, SL_EINVAL, "\"%s\" must be true or false", key);
    *out = json_object_get_boolean(v);
    return SL_OK;
}

/* {"ID": "HEX", ...}: each as the --key flag's ID:HEX */
static sl_status keys_of(json_object *v, sl_config *c, sl_err *err)
{
    if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) > SL_CONFIG_KEYS)
        return sl_err_set(err, SL_EINVAL, "\"keys\" must be an object of at most %d \"ID\": \"HEX\"", SL_CONFIG_KEYS);
    c->n_keys = 0;
    json_object_object_foreach(v, id, hex) {
        const char *h;
        char spec[16 + 2 * SL_MAC_KEY_MAX];
        if (sl_json_string(hex, "a key", 2 * SL_MAC_KEY_MAX, &h, err) || strlen(id) > 10 ||
            snprintf(spec, sizeof spec, "%s:%s", id, h) >= (int)sizeof spec ||
            sl_mac_key_parse(spec, &c->keys[c->n_keys]))
            return sl_err_set(err, SL_EINVAL, "key \"%.16s\" must be 16..64 bytes in hex under a decimal id", id);
        c->n_keys++;
    }
    return SL_OK;
}

/* {"NAME": "IMAGE", ...} */
static sl_status models_of(json_object *v, sl_config *c, sl_err *err)
{
    if (!json_object_is_type(v, json_type_object) || json_object_object_length(v) > SL_REG_MODELS)
        return sl_err_set(err, SL_EINVAL, "\"models\" must be an object of at most %d NAME: IMAGE", SL_REG_MODELS);
    c->n_models = 0;
    json_object_object_foreach(v, name, img) {
        const char *path;
        const size_t n = strlen(name);
        if (n == 0 || n > SL_WIRE_MODEL_MAX)
            return sl_err_set(err, SL_ERANGE, "a model name must be 1..%d bytes, not %zu", SL_WIRE_MODEL_MAX, n);
        const sl_status st = sl_json_string(img, "its image", SL_MGMT_IMAGE_MAX, &path, err);
        if (st)
            return sl_err_prefix(err, st, "model \"%s\"", name);
        memcpy(c->model_name[c->n_models], name, n + 1);
        memcpy(c->model_image[c->n_models], path, strlen(path) + 1);
        c->n_models++;
    }
    return SL_OK;
}

/* The integer keys: where each is kept, and the values sl_config_check
 * allows (the file itself may say 0..SL_CONFIG_INT_MAX for any). */
static const struct int_key {
    const char *key;
    size_t off;
    int lo, hi;
} int_keys[] = {
    {"threads", offsetof(sl_config, threads), 1, 1024},
    {"max_seqs", offsetof(sl_config, max_seqs), 1, 4096},
    {"max_queue", offsetof(sl_config, max_queue), 1, 65536},
    {"max_inflight", offsetof(sl_config, max_inflight), 1, SL_CONFIG_INT_MAX},
    {"max_prompt", offsetof(sl_config, max_prompt), 1, SL_CONFIG_INT_MAX},
    {"max_tokens", offsetof(sl_config, max_tokens), 1, SL_CONFIG_INT_MAX},
    {"ctx", offsetof(sl_config, ctx), 0, SL_CONFIG_INT_MAX},
};
enum { N_INT_KEYS = sizeof int_keys / sizeof int_keys[0] };

static sl_status member(const char *key, json_object *v, sl_config *c, sl_err *err)
{
    for (int i = 0; i < N_INT_KEYS; i++)
        if (!strcmp(key, int_keys[i].key)) {
            if (!json_object_is_type(v, json_type_int))
                return sl_err_set(err, SL_EINVAL, "\"%s\" must be an integer", key);
            const int64_t x = json_object_get_int64(v);
            if (x < 0 || x > SL_CONFIG_INT_MAX)
                return sl_err_set(err, SL_ERANGE, "\"%s\" must be 0..%d", key, SL_CONFIG_INT_MAX);
            const int n = (int)x;
            memcpy((char *)c + int_keys[i].off, &n, sizeof n);
            return SL_OK;
        }
    if (!strcmp(key, "listen"))
        return sl_json_string(v, "\"listen\"", SL_CONFIG_ADDR_MAX, &c->listen, err);
    if (!strcmp(key, "metrics"))
        return sl_json_string(v, "\"metrics\"", SL_CONFIG_ADDR_MAX, &c->metrics, err);
    if (!strcmp(key, "mgmt"))
        return sl_json_string(v, "\"mgmt\"", SL_CONFIG_SOCK_MAX, &c->mgmt, err);
    if (!strcmp(key, "rate")) {
        const double r = json_object_get_double(v);
        if (!(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)) || !(r >= 0) ||
            !isfinite(r))
            return sl_err_set(err, SL_EINVAL, "\"rate\" must be a finite number >= 0");
        c->rate = r;
        return SL_OK;
    }
    if (!strcmp(key, "mlock"))
        return bool_of(v, key, &c->mlock, err);
    if (!strcmp(key, "require_mac"))
        return bool_of(v, key, &c->require_mac, err);
    if (!strcmp(key, "keys"))
        return keys_of(v, c, err);
    if (!strcmp(key, "models"))
        return models_of(v, c, err);
    if (!strcmp(key, "log_level")) {
        if ((c->log_level = sl_log_level_parse(name_of(v))) < 0)
            return sl_err_set(err, SL_EINVAL, "\"log_level\" is \"error\", \"warn\", \"info\" or \"debug\"");
        return SL_OK;
    }
    if (!strcmp(key, "isa")) {
        if ((c->isa = sl_isa_parse(name_of(v))) < 0)
            return sl_err_set(err, SL_EINVAL, "\"isa\" is \"scalar\", \"avx2\", \"avx512\" or \"amx\"");
        return SL_OK;
    }
    return sl_err_set(err, SL_EINVAL, "unknown key \"%.64s\"", key);
}

sl_status sl_config_parse(const char *text, size_t len, sl_config *c, json_object **keep, sl_err *err)
{
    *keep = NULL;
    if (len > SL_CONFIG_MAX)
        return sl_err_set(err, SL_ERANGE, "over %d bytes", SL_CONFIG_MAX);
    if (memchr(text, 0, len))
        return sl_err_set(err, SL_EFORMAT, "a NUL byte in the file");
    json_object *o; /* two levels are used: the file, "models" and "keys" */
    const sl_status st = sl_json_parse_object(text, len, 8, "a JSON object", &o, err);
    if (st)
        return st;
    sl_config t = *c; /* all or nothing */
    json_object_object_foreach(o, key, val) {
        const sl_status bad = member(key, val, &t, err);
        if (bad) {
            json_object_put(o);
            return bad;
        }
    }
    *c = t;
    *keep = o;
    return SL_OK;
}

sl_status sl_config_read(const char *path, sl_config *c, json_object **keep, sl_err *err)
{
    *keep = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return sl_err_set(err, SL_EIO, "%s: %s", path, strerror(errno));
    char *buf = malloc(SL_CONFIG_MAX + 1);
    if (!buf) {
        fclose(f);
        return sl_err_set(err, SL_ENOMEM, "%s: out of memory", path);
    }
    const size_t n = fread(buf, 1, SL_CONFIG_MAX + 1, f);
    const int bad = ferror(f);
    fclose(f);
    sl_status st = bad ? sl_err_set(err, SL_EIO, "%s: read failed", path)
                       : sl_config_parse(buf, n, c, keep, err);
    free(buf);
    return st && !bad ? sl_err_prefix(err, st, "%s", path) : st;
}

static int same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

int sl_config_equal(const sl_config *a, const sl_config *b)
{
    if (!same_str(a->listen, b->listen) || !same_str(a->mgmt, b->mgmt) || !same_str(a->metrics, b->metrics))
        return 0;
    const int ia[] = {a->threads, a->max_seqs, a->ctx, a->max_queue, a->isa, a->max_inflight, a->max_prompt,
                      a->max_tokens, a->log_level, a->require_mac, a->mlock, a->n_keys, a->n_models};
    const int ib[] = {b->threads, b->max_seqs, b->ctx, b->max_queue, b->isa, b->max_inflight, b->max_prompt,
                      b->max_tokens, b->log_level, b->require_mac, b->mlock, b->n_keys, b->n_models};
    if (memcmp(ia, ib, sizeof ia) || memcmp(&a->rate, &b->rate, sizeof a->rate))
        return 0;
    for (int i = 0; i < a->n_keys; i++)
        if (a->keys[i].id != b->keys[i].id || a->keys[i].len != b->keys[i].len ||
            memcmp(a->keys[i].key, b->keys[i].key, a->keys[i].len))
            return 0;
    for (int i = 0; i < a->n_models; i++)
        if (strcmp(a->model_name[i], b->model_name[i]) || strcmp(a->model_image[i], b->model_image[i]))
            return 0;
    return 1;
}

sl_status sl_config_check(const sl_config *c, sl_err *err)
{
    for (int i = 0; i < N_INT_KEYS; i++) {
        const struct int_key *k = &int_keys[i];
        int v;
        memcpy(&v, (const char *)c + k->off, sizeof v);
        if (v < k->lo || v > k->hi)
            return sl_err_set(err, SL_EINVAL, "%s %d is outside %d..%d", k->key, v, k->lo, k->hi);
    }
    if (!(c->rate >= 0) || !isfinite(c->rate))
        return sl_err_set(err, SL_EINVAL, "rate %g is not a finite number >= 0", c->rate);
    if (!c->n_models && !c->mgmt)
        return sl_err_set(err, SL_EINVAL, "no model and no management socket: nothing to serve");
    return SL_OK;
}

int sl_config_reload_jobs(const sl_config *next, const sl_version_info *served, int n, sl_load_job *jobs)
{
    int k = 0;
    for (int i = 0; i < next->n_models; i++) {
        int at = -1;
        for (int j = 0; j < n && at < 0; j++)
            if (!strcmp(served[j].name, next->model_name[i]))
                at = j;
        if (at >= 0 && !strcmp(served[at].image, next->model_image[i]))
            continue;
        sl_load_job *jb = &jobs[k++];
        *jb = (sl_load_job){.kind = at >= 0 ? SL_LOAD_SWAP : SL_LOAD_NEW, .force = true};
        snprintf(jb->name, sizeof jb->name, "%s", next->model_name[i]);
        snprintf(jb->image, sizeof jb->image, "%s", next->model_image[i]);
    }
    for (int j = 0; j < n && next->n_models; j++) {
        int listed = 0;
        for (int i = 0; i < next->n_models && !listed; i++)
            listed = !strcmp(next->model_name[i], served[j].name);
        if (!listed) {
            jobs[k] = (sl_load_job){.kind = SL_LOAD_UNLOAD};
            snprintf(jobs[k].name, sizeof jobs[k].name, "%s", served[j].name);
            k++;
        }
    }
    return k;
}

static int changed(const char *now, const char *next) { return next && (!now || strcmp(now, next)); }

int sl_config_restart_needed(const sl_config *now, const sl_config *next, const char *why[2])
{
    int n = 0;
    if (next->threads != now->threads || next->max_seqs != now->max_seqs || next->ctx != now->ctx ||
        next->max_queue != now->max_queue)
        why[n++] = "threads, max_seqs, ctx and max_queue apply to versions loaded from now on";
    if (changed(now->listen, next->listen) || changed(now->mgmt, next->mgmt) || changed(now->metrics, next->metrics))
        why[n++] = "listen, mgmt and metrics addresses change only with a restart";
    return n;
}
