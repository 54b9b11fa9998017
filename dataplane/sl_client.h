/* sl_client.h - the client side of the wire protocol (docs/protocol.md),
 * over kernel UDP or TCP sockets, blocking with a callback per TOKENS.
 *
 * UDP: replies are put back in order by seq; a gap that stays open asks
 * for RESEND, silence re-sends the request (the server de-duplicates), and
 * the whole call is bounded by its timeout. */
#ifndef SL_CLIENT_H
#define SL_CLIENT_H

#include <stdint.h>

#include "sl_error.h"
#include "sl_mac.h"
#include "sl_wire.h"

typedef struct sl_client sl_client;

/* host: a numeric IPv4 or IPv6 address. */
sl_status sl_client_open(const char *host, int port, int udp, sl_client **out, sl_err *err);
void sl_client_close(sl_client *c);
/* Signs every GENERATE from now on with this key (NULL: no MAC). */
void sl_client_set_key(sl_client *c, const struct sl_mac_key *k);
/* The client's socket, for poll loops and for tests that speak raw bytes. */
int sl_client_fd(const sl_client *c);

/* One TOKENS reply: n ids and the text they complete (whole characters). */
typedef void (*sl_client_tokens_fn)(void *ctx, const uint32_t *ids, int n, const char *text, size_t len);

typedef struct sl_client_result {
    int error;       /* 0, or the ERROR reply's code */
    char message[SL_WIRE_ERRMSG_MAX + 1];
    sl_wire_done done; /* when error == 0; checksum points into `checksum` */
    char checksum[SL_WIRE_CHECKSUM_MAX + 1];
    int resends;     /* UDP: RESENDs and repeats this call needed */
} sl_client_result;

/* Sends a GENERATE and waits for its DONE or ERROR.  SL_OK with
 * res->error set when the server answered with an error; SL_EIO when the
 * call timed out or the connection failed. */
sl_status sl_client_generate(sl_client *c, uint64_t request_id, const sl_wire_generate *g, sl_client_tokens_fn fn,
                             void *ctx, int timeout_ms, sl_client_result *res, sl_err *err);
/* The blocking style: the whole answer's text, malloc'd and NUL-ended, in
 * *text (its bytes in *len; the caller frees it), and its ids in *ids (n
 * in *n_ids; may be NULL).  Errors as sl_client_generate. */
sl_status sl_client_complete(sl_client *c, uint64_t request_id, const sl_wire_generate *g, int timeout_ms, char **text,
                             size_t *len, uint32_t **ids, int *n_ids, sl_client_result *res, sl_err *err);
/* Sends a CANCEL for a request in flight (from another thread: the socket
 * is shared, the send is one syscall). */
sl_status sl_client_cancel(sl_client *c, uint64_t request_id, sl_err *err);

#endif
