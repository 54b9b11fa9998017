/* mgmt_cmds.c - what sluiced does for each management command and for a
 * SIGHUP reload (sl_daemon.h). */
#include <stdio.h>
#include <string.h>

#include "sl_daemon.h"
#include "sl_log.h"

#define TOKEN_RELOAD UINT64_MAX /* a reload's job: logged, nobody to answer */

static sl_mgmt_version mgmt_version_of(const sl_version_info *v)
{
    const sl_sched_stats *st = &v->stats;
    return (sl_mgmt_version){.name = v->name, .version = v->number, .image = v->image, .checksum = v->checksum,
                             .retired = v->retired, .queued = st->queued, .running = st->running,
                             .kv_blocks_used = st->kv_blocks_used, .kv_blocks_total = st->kv_blocks_total,
                             .steps = st->steps, .generated_tokens = st->generated, .finished = st->finished,
                             .failed = st->failed};
}

static json_object *status_json(sl_daemon *d, int current_only)
{
    sl_version_info v[SL_REG_VERSIONS];
    sl_mgmt_version mv[SL_REG_VERSIONS];
    const int n = sl_registry_list(&d->reg, v, SL_REG_VERSIONS, current_only);
    for (int i = 0; i < n; i++)
        mv[i] = mgmt_version_of(&v[i]);
    int models;
    uint64_t swaps, swaps_failed;
    sl_registry_counts(&d->reg, &models, &swaps, &swaps_failed);
    const sl_serve_stats *st = sl_serve_stats_of(d->serve);
    const int draining = sl_serve_draining(d->serve);
    const sl_mgmt_status s = {.ready = !draining && models > 0, .draining = draining, .served = st->served,
                              .errors = st->errors, .swaps = swaps, .swaps_failed = swaps_failed, .models = mv,
                              .n_models = (size_t)n};
    return sl_mgmt_reply_end(sl_mgmt_status_json(&s), NULL);
}

json_object *sl_daemon_mgmt(void *ctx, const sl_mgmt_req *q, uint64_t token)
{
    sl_daemon *d = ctx;
    switch (q->cmd) {
    case SL_MGMT_STATUS:
    case SL_MGMT_STATS: return status_json(d, 0);
    case SL_MGMT_MODELS: return status_json(d, 1);
    case SL_MGMT_DRAIN: sl_serve_drain(d->serve); return sl_mgmt_reply_end(NULL, NULL);
    default: break;
    }
    if (sl_serve_draining(d->serve) && q->cmd != SL_MGMT_UNLOAD)
        return sl_mgmt_reply_end(NULL, "draining");
    sl_load_job j = {.kind = q->cmd == SL_MGMT_LOAD   ? SL_LOAD_NEW
                             : q->cmd == SL_MGMT_SWAP ? SL_LOAD_SWAP
                                                      : SL_LOAD_UNLOAD,
                     .force = q->force, .token = token};
    snprintf(j.name, sizeof j.name, "%s", q->name);
    snprintf(j.image, sizeof j.image, "%s", q->image ? q->image : "");
    sl_err err = {0};
    if (sl_loader_post(d->loader, &j, &err))
        return sl_mgmt_reply_end(NULL, err.msg);
    return NULL;
}

static const char *kind_name(sl_load_kind k) { return k == SL_LOAD_NEW ? "load" : k == SL_LOAD_SWAP ? "swap" : "unload"; }

void sl_daemon_load_done(sl_daemon *d, const sl_load_done *done)
{
    const sl_load_job *j = &done->job;
    const char *cmd = kind_name(j->kind);
    sl_version_info v = {0};
    int found = 0;
    if (!done->st && j->kind != SL_LOAD_UNLOAD) {
        sl_version_info all[SL_REG_VERSIONS];
        const int n = sl_registry_list(&d->reg, all, SL_REG_VERSIONS, true);
        for (int i = 0; i < n && !found; i++)
            if (!strcmp(all[i].name, j->name))
                v = all[i], found = 1;
    }
    if (j->token == TOKEN_RELOAD) {
        if (done->st)
            sl_log(SL_LOG_ERROR, "reload: %s %s: %s", cmd, j->name, done->msg);
        else
            sl_log(SL_LOG_INFO, "reload: %s %s%s%s", j->kind == SL_LOAD_NEW ? "loaded" : j->kind == SL_LOAD_SWAP ? "swapped" : "unloaded", j->name,
                   j->kind == SL_LOAD_UNLOAD ? "" : ": ", j->image);
        return;
    }
    json_object *body = NULL;
    if (found) {
        const sl_mgmt_version mv = mgmt_version_of(&v);
        body = sl_mgmt_model_json(&mv);
        sl_log(SL_LOG_INFO, "%s %s: version %llu, %s", cmd, j->name, (unsigned long long)v.number, v.image);
    } else if (done->st && j->kind != SL_LOAD_UNLOAD)
        sl_log(SL_LOG_WARN, "%s %s refused: %s", cmd, j->name, done->msg);
    sl_mgmt_answer(d->mgmt, j->token, sl_mgmt_reply_end(body, done->st ? done->msg : NULL));
}

sl_serve_limits sl_daemon_limits(const sl_config *c)
{
    sl_serve_limits l = {.max_inflight = c->max_inflight, .rate = c->rate, .max_prompt = c->max_prompt,
                         .max_tokens = c->max_tokens, .n_keys = c->n_keys, .require_mac = c->require_mac};
    _Static_assert(SL_SERVE_KEYS == SL_CONFIG_KEYS, "the config's keys fit the serving core's");
    memcpy(l.keys, c->keys, sizeof l.keys);
    return l;
}

/* Models, limits and the log level follow the file; listening addresses,
 * threads and batch sizes need a restart (said in the log). */
void sl_daemon_reload(sl_daemon *d)
{
    if (!d->config_path) {
        sl_log(SL_LOG_WARN, "SIGHUP without --config: nothing to reload");
        return;
    }
    sl_config c = d->cfg;
    json_object *keep = NULL;
    sl_err err = {0};
    if (sl_config_read(d->config_path, &c, &keep, &err) || sl_config_check(&c, &err)) {
        sl_log(SL_LOG_ERROR, "reload refused, nothing changed: %s", err.msg);
        json_object_put(keep);
        return;
    }
    const sl_serve_limits lim = sl_daemon_limits(&c);
    sl_serve_set_limits(d->serve, &lim);
    sl_log_set_level(c.log_level);
    sl_version_info served[SL_REG_VERSIONS];
    const int n = sl_registry_list(&d->reg, served, SL_REG_VERSIONS, true);
    sl_load_job jobs[2 * SL_REG_MODELS];
    const int k = sl_config_reload_jobs(&c, served, n, jobs);
    const char *why[2];
    const int nw = sl_config_restart_needed(&d->cfg, &c, why);
    for (int i = 0; i < nw; i++)
        sl_log(SL_LOG_WARN, "reload: %s", why[i]);
    sl_engine_cfg ec = d->reg.ec;
    ec.n_threads = c.threads, ec.max_seqs = c.max_seqs, ec.ctx = c.ctx;
    sl_sched_cfg sc = d->reg.sc;
    sc.max_queue = c.max_queue;
    sl_registry_set_cfg(&d->reg, &ec, &sc); /* before the jobs: they load with it */
    for (int i = 0; i < k; i++) {
        jobs[i].token = TOKEN_RELOAD;
        sl_err err = {0};
        if (sl_loader_post(d->loader, &jobs[i], &err))
            sl_log(SL_LOG_ERROR, "reload: %s: %s", jobs[i].name, err.msg);
    }
    /* the strings point into the parsed file: only the values that stay in use are kept */
    d->cfg.threads = c.threads, d->cfg.max_seqs = c.max_seqs, d->cfg.ctx = c.ctx, d->cfg.max_queue = c.max_queue;
    d->cfg.log_level = c.log_level;
    json_object_put(keep);
}
