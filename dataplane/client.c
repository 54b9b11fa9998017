/* client.c - blocking wire-protocol client over kernel sockets (sl_client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sl_client.h"
#include "sl_grow.h"

#define STASH 64      /* UDP replies held while an earlier one is missing */
#define QUIET_MS 200  /* no progress for this long: ask again */

struct sl_client {
    int fd, udp;
    int signed_;
    sl_mac_key key;
    uint8_t *in; /* TCP: bytes read, not yet a whole message */
    size_t in_len;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

sl_status sl_client_open(const char *host, int port, int udp, sl_client **out, sl_err *err)
{
    *out = NULL;
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (port < 1 || port > 65535)
        return sl_err_set(err, SL_EINVAL, "port %d is not 1..65535", port);
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET, a4->sin_port = htons((uint16_t)port), len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6, a6->sin6_port = htons((uint16_t)port), len = sizeof *a6;
    } else
        return sl_err_set(err, SL_EINVAL, "'%s' is not a numeric IPv4 or IPv6 address", host);
    sl_client *c = calloc(1, sizeof *c);
    uint8_t *in = udp ? NULL : malloc(SL_WIRE_HEADER + SL_WIRE_MAX_BODY);
    if (!c || (!udp && !in)) {
        free(c);
        free(in);
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    c->udp = udp, c->in = in;
    c->fd = socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    int one = 1; /* a request is one small write: no Nagle */
    if (c->fd >= 0 && !udp)
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&ss, len) < 0) {
        sl_err_errno(err, SL_EIO, "%s %s:%d", udp ? "udp" : "tcp", host, port);
        sl_client_close(c);
        return SL_EIO;
    }
    *out = c;
    return SL_OK;
}

void sl_client_close(sl_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c);
}

int sl_client_fd(const sl_client *c) { return c->fd; }

void sl_client_set_key(sl_client *c, const sl_mac_key *k)
{
    c->signed_ = k != NULL;
    if (k)
        c->key = *k;
}

static sl_status put_request(const sl_client *c, uint8_t *out, size_t cap, uint64_t rid, uint16_t flags,
                             const sl_wire_generate *g, size_t *len, sl_err *err)
{
    return c->signed_ ? sl_wire_put_generate_signed(out, cap, rid, flags, g, &c->key, len, err)
                      : sl_wire_put_generate(out, cap, rid, flags, g, len, err);
}

static sl_status send_all(sl_client *c, const uint8_t *b, size_t n, sl_err *err)
{
    while (n) {
        const ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return sl_err_errno(err, SL_EIO, "send");
        b += w, n -= (size_t)w;
    }
    return SL_OK;
}

sl_status sl_client_cancel(sl_client *c, uint64_t request_id, sl_err *err)
{
    uint8_t b[SL_WIRE_HEADER];
    size_t n;
    sl_status st = sl_wire_put_empty(b, sizeof b, SL_WIRE_CANCEL, request_id, &n, err);
    return st ? st : send_all(c, b, n, err);
}

/* A reply of ours in order: 1 when it ends the call. */
static int deliver(const sl_wire_msg *m, sl_client_tokens_fn fn, void *ctx, sl_client_result *res)
{
    if (m->h.type == SL_WIRE_TOKENS) {
        uint32_t ids[SL_WIRE_CHUNK_MAX];
        for (int i = 0; i < m->u.tokens.n; i++)
            ids[i] = sl_wire_u32(m->u.tokens.ids, (size_t)i);
        if (fn)
            fn(ctx, ids, m->u.tokens.n, (const char *)m->u.tokens.text.p, m->u.tokens.text.n);
        return 0;
    }
    if (m->h.type == SL_WIRE_DONE) {
        res->done = m->u.done;
        memcpy(res->checksum, m->u.done.checksum.p, m->u.done.checksum.n);
        res->checksum[m->u.done.checksum.n] = 0;
        res->done.checksum = (sl_wire_bytes){(const uint8_t *)res->checksum, m->u.done.checksum.n};
        return 1;
    }
    if (m->h.type == SL_WIRE_ERROR) {
        res->error = m->u.error.code;
        memcpy(res->message, m->u.error.msg.p, m->u.error.msg.n);
        res->message[m->u.error.msg.n] = 0;
        return 1;
    }
    return 0;
}

sl_status sl_client_generate(sl_client *c, uint64_t request_id, const sl_wire_generate *g, sl_client_tokens_fn fn,
                             void *ctx, int timeout_ms, sl_client_result *res, sl_err *err)
{
    memset(res, 0, sizeof *res);
    uint8_t *req = malloc(SL_WIRE_HEADER + SL_WIRE_MAX_BODY), *stash[STASH] = {0};
    size_t req_len = 0, stash_len[STASH] = {0};
    if (!req)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    sl_status st = put_request(c, req, SL_WIRE_HEADER + SL_WIRE_MAX_BODY, request_id, 0, g, &req_len, err);
    st = st ? st : send_all(c, req, req_len, err);
    const uint64_t end = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 60000);
    uint64_t last = now_ms();
    uint32_t next = 0; /* the seq we wait for */
    uint8_t dg[65536];
    int finished = 0;
    while (!st && !finished) {
        const uint64_t t = now_ms();
        if (t >= end) {
            st = sl_err_set(err, SL_EIO, "request %llu: no answer within %d ms", (unsigned long long)request_id,
                            timeout_ms);
            break;
        }
        struct pollfd pf = {.fd = c->fd, .events = POLLIN};
        const int pr = poll(&pf, 1, 50);
        if (pr < 0 && errno != EINTR) {
            st = sl_err_errno(err, SL_EIO, "poll");
            break;
        }
        if (pr <= 0) {
            if (c->udp && now_ms() - last >= QUIET_MS) { /* ask again: the request, or what is missing */
                uint8_t b[SL_WIRE_HEADER + 2 + 4 * SL_WIRE_RESEND_MAX];
                uint32_t want[SL_WIRE_RESEND_MAX];
                uint16_t nw = 0;
                for (uint32_t s = next; s < next + STASH && nw < SL_WIRE_RESEND_MAX; s++)
                    if (!stash[s % STASH])
                        want[nw++] = s;
                size_t n;
                if (next == 0 && !stash[0])
                    st = send_all(c, req, req_len, err);
                else if (sl_wire_put_resend(b, sizeof b, request_id, want, nw ? nw : 1, &n, NULL) == SL_OK)
                    st = send_all(c, b, n, err);
                res->resends++;
                last = now_ms();
            }
            continue;
        }
        if (c->udp) {
            const ssize_t r = recv(c->fd, dg, sizeof dg, 0);
            sl_wire_msg m;
            if (r <= 0 || sl_wire_decode(dg, (size_t)r, &m, NULL))
                continue; /* not a sluice message */
            if (m.h.type == SL_WIRE_COOKIE) {
                /* anti-amplification: the request again, with the cookie; the
                 * server answers from where it held back */
                sl_wire_generate gc = *g;
                gc.cookie = m.u.value;
                st = put_request(c, req, SL_WIRE_HEADER + SL_WIRE_MAX_BODY, request_id, SL_WIRE_F_COOKIE, &gc, &req_len,
                                 err);
                st = st ? st : send_all(c, req, req_len, err);
                res->resends++;
                last = now_ms();
                continue;
            }
            if (m.h.request_id != request_id || m.h.seq < next || m.h.seq >= next + STASH)
                continue; /* not ours, a repeat, or too far ahead */
            last = now_ms();
            if (m.h.seq == next) { /* in order: delivered as it came */
                finished = deliver(&m, fn, ctx, res);
                next++;
            } else { /* early: kept until the gap before it fills */
                free(stash[m.h.seq % STASH]);
                if (!(stash[m.h.seq % STASH] = malloc((size_t)r))) {
                    st = sl_err_set(err, SL_ENOMEM, "out of memory");
                    break;
                }
                memcpy(stash[m.h.seq % STASH], dg, (size_t)r);
                stash_len[m.h.seq % STASH] = (size_t)r;
            }
            while (!finished && stash[next % STASH]) { /* what waited for it */
                uint8_t *b = stash[next % STASH];
                sl_wire_decode(b, stash_len[next % STASH], &m, NULL);
                finished = deliver(&m, fn, ctx, res);
                free(b);
                stash[next % STASH] = NULL;
                next++;
            }
            continue;
        }
        const ssize_t r = recv(c->fd, c->in + c->in_len, SL_WIRE_HEADER + SL_WIRE_MAX_BODY - c->in_len, 0);
        if (r <= 0) {
            st = r == 0 ? sl_err_set(err, SL_EIO, "the server closed the connection") : sl_err_errno(err, SL_EIO, "recv");
            break;
        }
        c->in_len += (size_t)r;
        size_t off = 0, fl;
        while (!finished && !st) {
            if (sl_wire_peek(c->in + off, c->in_len - off, &fl, err) != SL_OK) {
                st = sl_err_prefix(err, SL_EFORMAT, "from the server");
                break;
            }
            if (!fl || fl > c->in_len - off)
                break;
            sl_wire_msg m;
            if (sl_wire_decode(c->in + off, fl, &m, err) != SL_OK)
                st = sl_err_prefix(err, SL_EFORMAT, "from the server");
            else if (m.h.request_id == request_id)
                finished = deliver(&m, fn, ctx, res);
            off += fl;
        }
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    for (int i = 0; i < STASH; i++)
        free(stash[i]);
    free(req);
    return st;
}

typedef struct answer {
    char *text;
    size_t len, cap;
    uint32_t *ids;
    size_t ids_bytes; /* capacity of ids */
    int n, oom;
} answer;

static void gather(void *ctx, const uint32_t *ids, int n, const char *text, size_t len)
{
    answer *a = ctx;
    if (a->oom)
        return;
    if (sl_grow((void **)&a->text, &a->cap, a->len + len + 1, 1024) ||
        sl_grow((void **)&a->ids, &a->ids_bytes, sizeof *a->ids * ((size_t)a->n + (size_t)n), 1024)) {
        a->oom = 1;
        return;
    }
    memcpy(a->text + a->len, text, len);
    a->len += len;
    a->text[a->len] = 0;
    memcpy(a->ids + a->n, ids, sizeof *ids * (size_t)n);
    a->n += n;
}

sl_status sl_client_complete(sl_client *c, uint64_t request_id, const sl_wire_generate *g, int timeout_ms, char **text,
                             size_t *len, uint32_t **ids, int *n_ids, sl_client_result *res, sl_err *err)
{
    answer a = {0};
    sl_status st = sl_client_generate(c, request_id, g, gather, &a, timeout_ms, res, err);
    if (!st && a.oom)
        st = sl_err_set(err, SL_ENOMEM, "out of memory for the answer");
    if (!st && !a.text && !(a.text = calloc(1, 1)))
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
    if (st) {
        free(a.text);
        free(a.ids);
        return st;
    }
    *text = a.text;
    *len = a.len;
    if (ids) {
        *ids = a.ids;
        *n_ids = a.n;
    } else
        free(a.ids);
    return SL_OK;
}
