/* sl_clients.h - what the serving core keeps per client (a UDP source
 * address or a TCP connection): its requests in flight, its rate bucket,
 * and for datagram sources the bytes both ways and whether it proved its
 * address (docs/protocol.md, anti-amplification).
 *
 * A hash table of bounded size: when it is full the least recently heard
 * client without requests in flight makes room (and a datagram source
 * then proves its address again).  Stream clients stay until their
 * connection closes. */
#ifndef SL_CLIENTS_H
#define SL_CLIENTS_H

#include <stdint.h>

#include "sl_error.h"
#include "sl_transport.h"

typedef struct sl_client {
    sl_peer peer;
    int used, pinned;         /* pinned: a stream's, kept until it closes */
    int verified, cookie_sent;
    int inflight;             /* requests running */
    uint64_t in, out;         /* bytes from and to a datagram source */
    uint64_t seen_us;
    double tokens;            /* the rate bucket: requests it may still send now */
    uint64_t bucket_us;
    int next, newer, older;   /* hash chain; recency list */
} sl_client;

typedef struct sl_clients {
    sl_client *c;
    int cap;
    int *heads, mask;
    int newest, oldest, free_head;
} sl_clients;

sl_status sl_clients_init(sl_clients *t, int cap, sl_err *err);
void sl_clients_free(sl_clients *t);
/* The client for p, made if new; NULL only when every entry has requests
 * in flight. */
sl_client *sl_clients_get(sl_clients *t, const sl_peer *p, uint64_t now_us);
/* Marks c heard from now: the last to make room. */
void sl_clients_heard(sl_clients *t, sl_client *c, uint64_t now_us);
/* The client for p if known, else NULL. */
sl_client *sl_clients_find(sl_clients *t, const sl_peer *p);
void sl_clients_drop(sl_clients *t, sl_client *c);

#endif
