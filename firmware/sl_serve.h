/* sl_serve.h - the serving core: wire messages in from any transport,
 * requests to the inference worker, its events out as replies.
 *
 * It owns what a request is on the server side: admission (MACs, per-
 * client requests in flight and rate, the server's caps), the request
 * table and de-duplication by (peer, request id), the anti-amplification
 * budget and cookies of datagram sources, the window of numbered replies
 * kept to resend, and the metrics counters.  It knows transports only as
 * sl_transport (sl_transport.h) and peers only as values; inference/ knows
 * nothing of it.  Single-threaded: the event loop calls every function. */
#ifndef SL_SERVE_H
#define SL_SERVE_H

#include <stdint.h>

#include "sl_mac.h"
#include "sl_metrics.h"
#include "sl_registry.h"
#include "sl_transport.h"
#include "sl_wire.h"
#include "sl_worker.h"

#define SL_SERVE_KEYS 16 /* request keys */

typedef struct sl_serve_limits {
    int max_inflight;  /* per client */
    double rate;       /* requests a second per client; 0: off */
    int max_prompt, max_tokens; /* per request */
    sl_mac_key keys[SL_SERVE_KEYS];
    int n_keys, require_mac;
} sl_serve_limits;

typedef struct sl_serve_stats {
    uint64_t served, errors, tokens, dropped;
    uint64_t by_code[SL_WERR_COUNT];
    sl_hist ttft, itl;
} sl_serve_stats;

typedef struct sl_serve sl_serve;

sl_status sl_serve_new(sl_registry *r, sl_worker *w, const sl_serve_limits *lim, sl_serve **out, sl_err *err);
void sl_serve_set_limits(sl_serve *s, const sl_serve_limits *lim);
/* What the transports call (sl_transport.h). */
const sl_rx *sl_serve_rx(sl_serve *s);
/* The worker's events become replies. */
void sl_serve_events(sl_serve *s, const sl_work_event *ev, int n);
/* Drops the resend windows of datagram requests that ended long enough ago. */
void sl_serve_tick(sl_serve *s, uint64_t now_us);
/* From now on new requests are answered BUSY. */
void sl_serve_drain(sl_serve *s);
int sl_serve_draining(const sl_serve *s);
/* Requests the worker still has. */
int sl_serve_live(const sl_serve *s);
const sl_serve_stats *sl_serve_stats_of(const sl_serve *s);
/* Frees the tables and every reference held (the worker is stopped). */
void sl_serve_free(sl_serve *s);

#endif
