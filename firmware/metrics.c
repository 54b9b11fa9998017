/* metrics.c - Prometheus exposition over libmicrohttpd (sl_metrics.h). */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "sl_grow.h"
#include "sl_metrics.h"
#include "sl_registry.h"
#include "sl_serve.h"

const double sl_hist_seconds[SL_HIST_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     10};
const double sl_hist_sizes[SL_HIST_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192};

void sl_hist_observe(sl_hist *h, double v)
{
    int i = 0;
    while (i < SL_HIST_BUCKETS && v > h->le[i])
        i++;
    h->count[i]++;
    h->sum += v;
    h->n++;
}

void sl_tb_printf(sl_text_buf *b, const char *fmt, ...)
{
    for (int pass = 0; pass < 2 && !b->oom; pass++) {
        va_list ap;
        va_start(ap, fmt);
        const int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        if (sl_grow((void **)&b->p, &b->cap, b->len + (size_t)n + 1, 4096))
            b->oom = 1;
    }
}

void sl_tb_hist(sl_text_buf *b, const char *name, const char *help, const sl_hist *h)
{
    sl_tb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < SL_HIST_BUCKETS; i++) {
        cum += h->count[i];
        sl_tb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->le[i], (unsigned long long)cum);
    }
    sl_tb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name, (unsigned long long)h->n, name,
                 h->sum, name, (unsigned long long)h->n);
}

struct sl_metrics {
    struct MHD_Daemon *d;
    int ep;
    sl_metrics_fn fn;
    void *ctx;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *data_size, void **state)
{
    (void)version, (void)data, (void)data_size, (void)state;
    sl_metrics *m = cls;
    const int ok = !strcmp(method, "GET") && !strcmp(url, "/metrics");
    sl_text_buf b = {0};
    if (ok)
        m->fn(m->ctx, &b);
    else
        sl_tb_printf(&b, "GET /metrics\n");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.oom ? 0 : b.len, b.oom ? (void *)"" : b.p, MHD_RESPMEM_MUST_COPY);
    free(b.p);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    const enum MHD_Result q = MHD_queue_response(c, b.oom ? 500 : ok ? 200 : 404, r);
    MHD_destroy_response(r);
    return q;
}

sl_status sl_metrics_start(const char *addr, int port, int ep, uint64_t tag, sl_metrics_fn fn, void *ctx,
                           sl_metrics **out, sl_err *err)
{
    *out = NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port < 1 || port > 65535 || inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        return sl_err_set(err, SL_EINVAL, "metrics address %s:%d is not IPv4 ADDR:PORT", addr, port);
    if ((ntohl(a.sin_addr.s_addr) >> 24) != 127) /* the numbers say a lot about the load: loopback only */
        return sl_err_set(err, SL_EINVAL, "metrics address %s is not loopback (127.0.0.0/8)", addr);
    sl_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    m->ep = ep, m->fn = fn, m->ctx = ctx;
    m->d = MHD_start_daemon(MHD_USE_EPOLL, (uint16_t)port, NULL, NULL, answer, m, MHD_OPTION_SOCK_ADDR, &a,
                            MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    const union MHD_DaemonInfo *info = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (!info || epoll_ctl(ep, EPOLL_CTL_ADD, info->epoll_fd, &ev) < 0) {
        sl_metrics_stop(m);
        return sl_err_set(err, SL_EIO, "cannot serve metrics on %s:%d (port in use?)", addr, port);
    }
    *out = m;
    return SL_OK;
}

void sl_metrics_run(sl_metrics *m)
{
    if (m)
        MHD_run(m->d);
}

void sl_metrics_stop(sl_metrics *m)
{
    if (!m)
        return;
    if (m->d)
        MHD_stop_daemon(m->d);
    free(m);
}

void sl_metrics_render(sl_text_buf *b, const sl_serve_stats *s, sl_registry *r, const sl_hist *batch, int draining)
{
    int queued = 0, running = 0, kv_used = 0, kv_total = 0, models;
    uint64_t swaps, swaps_failed;
    sl_version_info v[SL_REG_VERSIONS];
    const int n = sl_registry_list(r, v, SL_REG_VERSIONS, false);
    for (int i = 0; i < n; i++) {
        queued += v[i].stats.queued, running += v[i].stats.running;
        kv_used += v[i].stats.kv_blocks_used, kv_total += v[i].stats.kv_blocks_total;
    }
    sl_registry_counts(r, &models, &swaps, &swaps_failed);
    sl_tb_printf(b,
                 "# HELP sluice_requests_total Requests answered with DONE.\n# TYPE sluice_requests_total counter\n"
                 "sluice_requests_total %llu\n"
                 "# HELP sluice_tokens_total Tokens generated.\n# TYPE sluice_tokens_total counter\n"
                 "sluice_tokens_total %llu\n"
                 "# HELP sluice_errors_total ERROR replies by code.\n# TYPE sluice_errors_total counter\n",
                 (unsigned long long)s->served, (unsigned long long)s->tokens);
    for (int c = 1; c < SL_WERR_COUNT; c++)
        sl_tb_printf(b, "sluice_errors_total{code=\"%s\"} %llu\n", sl_wire_code_name(c),
                     (unsigned long long)s->by_code[c]);
    sl_tb_printf(b,
                 "# HELP sluice_dropped_total Datagrams and frames that were not sluice messages.\n"
                 "# TYPE sluice_dropped_total counter\nsluice_dropped_total %llu\n"
                 "# HELP sluice_queue_depth Requests waiting for a batch slot.\n# TYPE sluice_queue_depth gauge\n"
                 "sluice_queue_depth %d\n"
                 "# HELP sluice_running Requests in the batch.\n# TYPE sluice_running gauge\nsluice_running %d\n"
                 "# HELP sluice_kv_blocks_used KV cache blocks held.\n# TYPE sluice_kv_blocks_used gauge\n"
                 "sluice_kv_blocks_used %d\n"
                 "# HELP sluice_kv_blocks_total KV cache blocks in the pools.\n# TYPE sluice_kv_blocks_total gauge\n"
                 "sluice_kv_blocks_total %d\n"
                 "# HELP sluice_models Model names served.\n# TYPE sluice_models gauge\nsluice_models %d\n"
                 "# HELP sluice_swaps_total Hot swaps published.\n# TYPE sluice_swaps_total counter\n"
                 "sluice_swaps_total %llu\n"
                 "# HELP sluice_swaps_failed_total Swaps refused.\n# TYPE sluice_swaps_failed_total counter\n"
                 "sluice_swaps_failed_total %llu\n"
                 "# HELP sluice_ready 1 when serving (a model, not draining).\n# TYPE sluice_ready gauge\n"
                 "sluice_ready %d\n",
                 (unsigned long long)s->dropped, queued, running, kv_used, kv_total, models, (unsigned long long)swaps,
                 (unsigned long long)swaps_failed, !draining && models > 0);
    sl_tb_hist(b, "sluice_batch_tokens", "Tokens per scheduler step.", batch);
    sl_tb_hist(b, "sluice_ttft_seconds", "Time from arrival to the first token.", &s->ttft);
    sl_tb_hist(b, "sluice_inter_token_seconds", "Time between a request's tokens.", &s->itl);
}
