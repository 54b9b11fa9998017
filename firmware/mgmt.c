/* mgmt.c - the management socket (sl_mgmt.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sl_mgmt.h"
#include "sl_mgmt_proto.h"

#define PEERS 16

typedef struct peer {
    int fd;
    int waiting;     /* for the answer to its last line */
    uint32_t serial; /* tells a reused slot's peer from the one a late answer was for */
    char buf[SL_MGMT_LINE_MAX];
    size_t len;
} peer;

struct sl_mgmt {
    int fd, ep;
    uint64_t tag0;
    char path[108];
    sl_mgmt_fn fn;
    void *ctx;
    uint32_t serials;
    peer peers[PEERS];
};

sl_status sl_mgmt_open(const char *path, int ep, uint64_t tag0, sl_mgmt_fn fn, void *ctx, sl_mgmt **out, sl_err *err)
{
    *out = NULL;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return sl_err_set(err, SL_EINVAL, "management socket path %s is over %zu bytes", path, sizeof a.sun_path - 1);
    sl_mgmt *m = calloc(1, sizeof *m);
    if (!m)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    m->ep = ep, m->tag0 = tag0, m->fn = fn, m->ctx = ctx;
    for (int i = 0; i < PEERS; i++)
        m->peers[i].fd = -1;
    unlink(path); /* a socket file left by a daemon that died */
    const mode_t old = umask(0177); /* created 0600: only the owner connects */
    m->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int bad = m->fd < 0 || bind(m->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(m->fd, 8) < 0;
    umask(old);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag0};
    if (bad || chmod(path, 0600) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, m->fd, &ev) < 0) {
        sl_err_errno(err, SL_EIO, "management socket %s", path);
        sl_mgmt_close(m);
        return SL_EIO;
    }
    *out = m;
    return SL_OK;
}

static void peer_close(sl_mgmt *m, int i)
{
    epoll_ctl(m->ep, EPOLL_CTL_DEL, m->peers[i].fd, NULL);
    close(m->peers[i].fd);
    m->peers[i].fd = -1;
    m->peers[i].len = 0;
    m->peers[i].waiting = 0;
}

/* Replies are small: written whole, waiting if the peer is slow to read. */
static void reply(sl_mgmt *m, int i, json_object *r)
{
    const char *s = json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    for (size_t off = 0; off <= n;) {
        const char *p = off < n ? s + off : "\n";
        const ssize_t w = write(m->peers[i].fd, p, off < n ? n - off : 1);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            usleep(1000);
            continue;
        }
        if (w <= 0) {
            peer_close(m, i);
            return;
        }
        off += (size_t)w;
        if (off == n + 1)
            break;
    }
}

/* Reads from peer i or not: a peer waiting for an answer is not read
 * (its next lines wait in the socket, and its EOF is seen after the
 * answer went out). */
static void arm(sl_mgmt *m, int i, int readable)
{
    struct epoll_event ev = {.events = readable ? EPOLLIN : 0, .data.u64 = m->tag0 + 1 + (uint64_t)i};
    if (epoll_ctl(m->ep, EPOLL_CTL_MOD, m->peers[i].fd, &ev) < 0)
        peer_close(m, i);
}

/* The peer's whole lines, in order, until one is left to answer later. */
static void serve_lines(sl_mgmt *m, int i)
{
    peer *p = &m->peers[i];
    char *nl;
    while (p->fd >= 0 && !p->waiting && (nl = memchr(p->buf, '\n', p->len))) {
        json_object *obj, *out;
        sl_mgmt_req req;
        sl_err err = {0};
        const size_t used = (size_t)(nl - p->buf) + 1;
        if (sl_mgmt_parse(p->buf, used - 1, &obj, &req, &err))
            out = sl_mgmt_reply_error(err.msg);
        else
            out = m->fn(m->ctx, &req, (uint64_t)p->serial << 32 | (uint64_t)i);
        json_object_put(obj);
        memmove(p->buf, p->buf + used, p->len - used);
        p->len -= used;
        if (!out) {
            p->waiting = 1;
            arm(m, i, 0);
            return;
        }
        reply(m, i, out);
        json_object_put(out);
    }
}

void sl_mgmt_answer(sl_mgmt *m, uint64_t token, json_object *r)
{
    const int i = (int)(uint32_t)token;
    peer *p = i >= 0 && i < PEERS ? &m->peers[i] : NULL;
    if (p && p->fd >= 0 && p->waiting && p->serial == (uint32_t)(token >> 32)) {
        p->waiting = 0;
        reply(m, i, r);
        if (p->fd >= 0)
            arm(m, i, 1);
        if (p->fd >= 0)
            serve_lines(m, i);
    }
    json_object_put(r);
}

void sl_mgmt_event(sl_mgmt *m, uint64_t tag, uint32_t events)
{
    if (tag == m->tag0) {
        int fd;
        while ((fd = accept4(m->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
            struct ucred cr;
            socklen_t cl = sizeof cr;
            int i = 0;
            while (i < PEERS && m->peers[i].fd >= 0)
                i++;
            /* root, or the user the daemon runs as */
            if (i == PEERS || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 ||
                (cr.uid != 0 && cr.uid != geteuid())) {
                close(fd);
                continue;
            }
            m->peers[i].fd = fd;
            m->peers[i].len = 0;
            m->peers[i].waiting = 0;
            m->peers[i].serial = ++m->serials;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = m->tag0 + 1 + (uint64_t)i};
            epoll_ctl(m->ep, EPOLL_CTL_ADD, fd, &ev);
        }
        return;
    }
    const int i = (int)(tag - m->tag0 - 1);
    if (i < 0 || i >= PEERS || m->peers[i].fd < 0)
        return;
    peer *p = &m->peers[i];
    (void)events;
    for (;;) {
        if (p->waiting)
            return; /* read on once its answer is out */
        if (p->len == sizeof p->buf) { /* a line past the limit */
            json_object *out = sl_mgmt_reply_error("request line over 64 KiB");
            reply(m, i, out);
            json_object_put(out);
            if (p->fd >= 0)
                peer_close(m, i);
            return;
        }
        const ssize_t r = read(p->fd, p->buf + p->len, sizeof p->buf - p->len);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            peer_close(m, i);
            return;
        }
        if (r < 0)
            return;
        p->len += (size_t)r;
        serve_lines(m, i);
        if (p->fd < 0)
            return;
    }
}

void sl_mgmt_close(sl_mgmt *m)
{
    if (!m)
        return;
    for (int i = 0; i < PEERS; i++)
        if (m->peers[i].fd >= 0)
            peer_close(m, i);
    if (m->fd >= 0) {
        close(m->fd);
        unlink(m->path);
    }
    free(m);
}
