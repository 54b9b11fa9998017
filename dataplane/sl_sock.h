/* sl_sock.h - the kernel-socket transports: UDP datagrams and TCP streams
 * on one address (sl_transport.h), driven by the caller's epoll loop. */
#ifndef SL_SOCK_H
#define SL_SOCK_H

#include <netinet/in.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_transport.h"

/* "ADDR:PORT" (IPv4 or IPv6, no brackets) as an IPv6 socket address (IPv4
 * mapped as ::ffff:a.b.c.d).  -1 if it is not one. */
int sl_sock_parse_addr(const char *s, struct sockaddr_in6 *a);
/* "ADDR:PORT" of a, the IPv4-mapped prefix left off. */
void sl_sock_format_addr(const struct sockaddr_in6 *a, char *out, size_t cap);

typedef struct sl_udp sl_udp;
/* Binds a non-blocking UDP socket at a and adds it to the epoll set ep
 * under tag. */
sl_status sl_udp_open(const struct sockaddr_in6 *a, uint16_t index, int ep, uint64_t tag, sl_udp **out, sl_err *err);
sl_transport *sl_udp_transport(sl_udp *u);
/* Reads what is waiting (at most 256 datagrams: the loop's other work is
 * not starved) and hands each to rx. */
void sl_udp_poll(sl_udp *u, const sl_rx *rx);
void sl_udp_close(sl_udp *u);

typedef struct sl_tcp sl_tcp;
/* Listens at *a (port 0: the kernel picks one, written back into *a) with
 * room for max_conns connections; the listener takes tag0 in ep and
 * connection i takes tag0 + 1 + i. */
sl_status sl_tcp_open(struct sockaddr_in6 *a, uint16_t index, int max_conns, int ep, uint64_t tag0, sl_tcp **out,
                      sl_err *err);
sl_transport *sl_tcp_transport(sl_tcp *t);
/* Whether tag belongs to this transport. */
int sl_tcp_owns(const sl_tcp *t, uint64_t tag);
/* An epoll event for one of its tags: accepts, reads (messages to rx),
 * writes what waited. */
void sl_tcp_event(sl_tcp *t, uint64_t tag, uint32_t events, const sl_rx *rx);
/* Closes the connections that failed or fell too far behind since the
 * last call, telling rx->gone for each.  Called once per loop turn, never
 * from inside a send, so no caller sees its peer vanish mid-reply. */
void sl_tcp_reap(sl_tcp *t, const sl_rx *rx);
/* New connections are refused from now on (draining). */
void sl_tcp_refuse(sl_tcp *t);
void sl_tcp_close(sl_tcp *t);

#endif
