/* sock_tcp.c - the kernel TCP transport (sl_sock.h): length-framed wire
 * messages over streams. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sl_grow.h"
#include "sl_sock.h"
#include "sl_wire.h"

#define IN_MAX (SL_WIRE_HEADER + SL_WIRE_MAX_BODY)
#define OUT_MAX (8u << 20) /* a client this far behind is dropped */

typedef struct conn {
    int fd;
    int dead;        /* failed or too far behind: closed at the next reap */
    char why[64];    /* what closed it, when not its peer */
    int want_out;    /* EPOLLOUT is in its epoll mask */
    uint64_t serial;
    uint8_t *in, *out;
    size_t in_len, out_len, out_cap;
} conn;

struct sl_tcp {
    sl_transport t; /* first: the transport's send finds its connections */
    int lsn, ep, max_conns, refusing;
    int n_dead; /* marked dead and not yet reaped: the reap each loop turn looks only when some are */
    uint64_t tag0, serials;
    conn *conns;
};

static void kill_conn(sl_tcp *t, conn *c)
{
    if (!c->dead) {
        c->dead = 1;
        t->n_dead++;
    }
}

static conn *conn_of(sl_tcp *t, const sl_peer *p)
{
    if (p->conn >= (uint32_t)t->max_conns)
        return NULL;
    conn *c = &t->conns[p->conn];
    return c->fd >= 0 && !c->dead && c->serial == p->serial ? c : NULL;
}

static void set_out(sl_tcp *t, int ci, int want)
{
    conn *c = &t->conns[ci];
    if (c->want_out == want)
        return; /* one epoll_ctl per change, not per send */
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.u64 = t->tag0 + 1 + (uint64_t)ci};
    if (epoll_ctl(t->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = want;
    else
        kill_conn(t, c);
}

/* Writes what is queued; what the socket does not take waits for EPOLLOUT. */
static void flush(sl_tcp *t, int ci)
{
    conn *c = &t->conns[ci];
    if (c->out_len) {
        const ssize_t w = write(c->fd, c->out, c->out_len);
        if (w > 0) {
            memmove(c->out, c->out + w, c->out_len - (size_t)w);
            c->out_len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            kill_conn(t, c);
            return;
        }
    }
    set_out(t, ci, c->out_len > 0);
}

static void tcp_send(sl_transport *tr, const sl_peer *to, const uint8_t *msg, size_t n)
{
    sl_tcp *t = (sl_tcp *)tr;
    conn *c = conn_of(t, to);
    if (!c)
        return;
    if (c->out_len + n > OUT_MAX) {
        snprintf(c->why, sizeof c->why, "%zu bytes behind", c->out_len);
        kill_conn(t, c);
        return;
    }
    if (sl_grow((void **)&c->out, &c->out_cap, c->out_len + n, 65536)) {
        kill_conn(t, c);
        return;
    }
    memcpy(c->out + c->out_len, msg, n);
    c->out_len += n;
    flush(t, (int)to->conn);
}

sl_status sl_tcp_open(struct sockaddr_in6 *a, uint16_t index, int max_conns, int ep, uint64_t tag0, sl_tcp **out,
                      sl_err *err)
{
    *out = NULL;
    sl_tcp *t = calloc(1, sizeof *t);
    if (!t || !(t->conns = calloc((size_t)max_conns, sizeof *t->conns))) {
        free(t);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    t->t = (sl_transport){.name = "tcp", .index = index, .datagram = 0, .max_request = IN_MAX,
                          .max_reply_ids = SL_WIRE_CHUNK_MAX, .max_reply_text = 60000, .send = tcp_send};
    t->ep = ep, t->tag0 = tag0, t->max_conns = max_conns;
    for (int i = 0; i < max_conns; i++)
        t->conns[i].fd = -1;
    t->lsn = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1, zero = 0;
    socklen_t al = sizeof *a;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag0};
    if (t->lsn < 0 || setsockopt(t->lsn, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(t->lsn, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0 ||
        bind(t->lsn, (const struct sockaddr *)a, sizeof *a) < 0 || listen(t->lsn, 128) < 0 ||
        getsockname(t->lsn, (struct sockaddr *)a, &al) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, t->lsn, &ev) < 0) {
        sl_err_errno(err, SL_EIO, "TCP socket");
        sl_tcp_close(t);
        return SL_EIO;
    }
    *out = t;
    return SL_OK;
}

sl_transport *sl_tcp_transport(sl_tcp *t) { return &t->t; }

int sl_tcp_owns(const sl_tcp *t, uint64_t tag) { return tag >= t->tag0 && tag <= t->tag0 + (uint64_t)t->max_conns; }

void sl_tcp_refuse(sl_tcp *t) { t->refusing = 1; }

static void accept_all(sl_tcp *t)
{
    int fd;
    while ((fd = accept4(t->lsn, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        int ci = 0;
        while (ci < t->max_conns && t->conns[ci].fd >= 0)
            ci++;
        if (ci == t->max_conns || t->refusing) {
            close(fd);
            continue;
        }
        const int one = 1; /* replies are small and latency-bound: no Nagle */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = t->tag0 + 1 + (uint64_t)ci};
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            continue;
        }
        t->conns[ci] = (conn){.fd = fd, .serial = ++t->serials};
    }
}

static sl_peer peer_of(const sl_tcp *t, int ci)
{
    return (sl_peer){.transport = t->t.index, .conn = (uint32_t)ci, .serial = t->conns[ci].serial};
}

/* Cuts whole frames from what arrived and hands them on. */
static void read_conn(sl_tcp *t, int ci, const sl_rx *rx)
{
    conn *c = &t->conns[ci];
    const sl_peer p = peer_of(t, ci);
    while (!c->dead) {
        if (!c->in && !(c->in = malloc(IN_MAX))) {
            kill_conn(t, c);
            return;
        }
        const ssize_t r = read(c->fd, c->in + c->in_len, IN_MAX - c->in_len);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            kill_conn(t, c);
            return;
        }
        if (r < 0)
            return;
        c->in_len += (size_t)r;
        size_t off = 0;
        while (!c->dead) {
            size_t fl;
            sl_err err = {0};
            if (sl_wire_peek(c->in + off, c->in_len - off, &fl, &err) != SL_OK) {
                rx->lost(rx->ctx, &t->t, &p, err.msg);
                kill_conn(t, c);
                return;
            }
            if (!fl || fl > c->in_len - off)
                break;
            rx->msg(rx->ctx, &t->t, &p, c->in + off, fl);
            off += fl;
        }
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

void sl_tcp_event(sl_tcp *t, uint64_t tag, uint32_t events, const sl_rx *rx)
{
    if (tag == t->tag0)
        return accept_all(t);
    const int ci = (int)(tag - t->tag0 - 1);
    if (ci < 0 || ci >= t->max_conns || t->conns[ci].fd < 0 || t->conns[ci].dead)
        return;
    if (events & EPOLLOUT)
        flush(t, ci);
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        read_conn(t, ci, rx);
}

static void conn_close(sl_tcp *t, int ci)
{
    conn *c = &t->conns[ci];
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->in);
    free(c->out);
    *c = (conn){.fd = -1};
}

void sl_tcp_reap(sl_tcp *t, const sl_rx *rx)
{
    for (int i = 0; t->n_dead && i < t->max_conns; i++)
        if (t->conns[i].fd >= 0 && t->conns[i].dead) {
            const sl_peer p = peer_of(t, i);
            char why[sizeof t->conns[i].why];
            memcpy(why, t->conns[i].why, sizeof why);
            conn_close(t, i);
            t->n_dead--;
            if (rx)
                rx->gone(rx->ctx, &p, why[0] ? why : NULL);
        }
}

void sl_tcp_close(sl_tcp *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->max_conns; i++)
        if (t->conns[i].fd >= 0)
            conn_close(t, i);
    if (t->lsn >= 0)
        close(t->lsn);
    free(t->conns);
    free(t);
}
