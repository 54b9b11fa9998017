/* sl_metrics.h - Prometheus text exposition over HTTP (libmicrohttpd),
 * opt-in, on a loopback port.  The HTTP server runs inside the daemon's
 * epoll loop (MHD's epoll mode, no thread of its own): a scrape reads the
 * serving core's counters on the loop's thread, and the schedulers' state
 * as the inference worker last noted it. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"

#define SL_HIST_BUCKETS 14

/* A histogram with fixed upper bounds (Prometheus `le`). */
typedef struct sl_hist {
    const double *le; /* SL_HIST_BUCKETS ascending bounds */
    uint64_t count[SL_HIST_BUCKETS + 1]; /* the last: +Inf */
    double sum;
    uint64_t n;
} sl_hist;

extern const double sl_hist_seconds[SL_HIST_BUCKETS]; /* 100 µs .. 10 s */
extern const double sl_hist_sizes[SL_HIST_BUCKETS];   /* 1 .. 8192 */
void sl_hist_observe(sl_hist *h, double v);

/* A growing text buffer for the exposition. */
typedef struct sl_text_buf {
    char *p;
    size_t len, cap;
    int oom;
} sl_text_buf;
void sl_tb_printf(sl_text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_tb_hist(sl_text_buf *b, const char *name, const char *help, const sl_hist *h);

typedef struct sl_metrics sl_metrics;
/* Writes the whole exposition for one scrape. */
typedef void (*sl_metrics_fn)(void *ctx, sl_text_buf *out);

/* Serves GET /metrics on addr:port (IPv4, e.g. "127.0.0.1"), its sockets in
 * the epoll set ep under `tag`. */
sl_status sl_metrics_start(const char *addr, int port, int ep, uint64_t tag, sl_metrics_fn fn, void *ctx,
                           sl_metrics **out, sl_err *err);
/* sluiced's whole exposition: the serving core's counters (s), the
 * versions' schedulers (r), the worker's tokens per step (batch). */
struct sl_serve_stats;
struct sl_registry;
void sl_metrics_render(sl_text_buf *b, const struct sl_serve_stats *s, struct sl_registry *r, const sl_hist *batch,
                       int draining);

/* Runs what is ready (on the tag's events, and once per loop for timeouts). */
void sl_metrics_run(sl_metrics *m);
void sl_metrics_stop(sl_metrics *m);

#endif
