/* sock_udp.c - the kernel UDP transport (sl_sock.h). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_sock.h"
#include "sl_wire.h"

struct sl_udp {
    sl_transport t; /* first: the transport's send finds its socket */
    int fd;
    uint8_t dgram[65536];
};

_Static_assert(sizeof(struct sockaddr_in6) <= sizeof(((sl_peer *)0)->addr), "a peer holds an IPv6 address");

static void udp_send(sl_transport *t, const sl_peer *to, const uint8_t *msg, size_t n)
{
    const sl_udp *u = (const sl_udp *)t;
    /* a lost datagram is the client's to ask for again (RESEND) */
    (void)sendto(u->fd, msg, n, 0, (const struct sockaddr *)to->addr, to->alen);
}

sl_status sl_udp_open(const struct sockaddr_in6 *a, uint16_t index, int ep, uint64_t tag, sl_udp **out, sl_err *err)
{
    *out = NULL;
    sl_udp *u = calloc(1, sizeof *u);
    if (!u)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    u->t = (sl_transport){.name = "udp", .index = index, .datagram = 1, .max_request = SL_WIRE_UDP_MAX,
                          /* each reply under the 1,400 bytes a path carries unfragmented */
                          .max_reply_ids = 64, .max_reply_text = 1024, .send = udp_send};
    u->fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1, zero = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
    if (u->fd < 0 || setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 ||
        bind(u->fd, (const struct sockaddr *)a, sizeof *a) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, u->fd, &ev) < 0) {
        sl_err_errno(err, SL_EIO, "UDP socket");
        sl_udp_close(u);
        return SL_EIO;
    }
    *out = u;
    return SL_OK;
}

sl_transport *sl_udp_transport(sl_udp *u) { return &u->t; }

void sl_udp_poll(sl_udp *u, const sl_rx *rx)
{
    for (int k = 0; k < 256; k++) {
        struct sockaddr_in6 from;
        socklen_t fl = sizeof from;
        const ssize_t r = recvfrom(u->fd, u->dgram, sizeof u->dgram, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            break;
        sl_peer p = {.transport = u->t.index, .alen = (uint16_t)fl};
        memcpy(p.addr, &from, fl < sizeof p.addr ? fl : sizeof p.addr);
        rx->msg(rx->ctx, &u->t, &p, u->dgram, (size_t)r);
    }
}

void sl_udp_close(sl_udp *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    free(u);
}
