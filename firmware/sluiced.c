/* sluiced.c - the appliance daemon: one model served over kernel UDP and
 * TCP sockets (docs/protocol.md) through the continuous-batching scheduler.
 *
 * One thread runs the event loop (epoll: the UDP socket, the TCP listener
 * and connections) and the scheduler; the engine's pinned workers run each
 * step's products.  A step runs whenever requests are active, between two
 * non-blocking polls, so sockets are served between steps.
 *
 * Models live in a registry of named versions with hot swap
 * (sl_registry.h), driven through the management socket (sl_mgmt.h,
 * sluicectl).  Not here yet (the appliance issue's later parts): the config
 * file, metrics, UDP cookies and MACs, per-client limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>
#ifdef SL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "sl_config.h"
#include "sl_engine.h"
#include "sl_grow.h"
#include "sl_mac.h"
#include "sl_metrics.h"
#include "sl_mgmt.h"
#include "sl_model.h"
#include "sl_registry.h"
#include "sl_sched.h"
#include "sl_text.h"
#include "sl_tokenizer.h"
#include "sl_wire.h"

#define MAX_CONNS 256
#define MAX_REQS 1024
#define WINDOW 64           /* UDP replies kept per request, to resend */
#define KEEP_US 10000000ull /* and for this long after the end */
#define TCP_IN_MAX (SL_WIRE_HEADER + SL_WIRE_MAX_BODY)
#define TCP_OUT_MAX (8u << 20) /* a client this far behind is dropped */

/* Per-client rate: a token bucket of `rate` requests a second, holding at
 * most max(rate, 1). */
typedef struct bucket {
    double tokens;
    uint64_t last_us;
} bucket;

typedef struct conn {
    int fd;
    uint8_t *in, *out;
    size_t in_len, out_len, out_cap;
    bucket rate;
} conn;

/* A UDP source: its bytes both ways for anti-amplification, whether it
 * echoed its cookie, its rate bucket.  A bounded table: the least recently
 * seen source makes room (and must verify again). */
#define SOURCES 1024
typedef struct source {
    int used, verified, cookie_sent;
    struct sockaddr_in6 addr;
    socklen_t alen;
    uint64_t in, out, seen_us;
    bucket rate;
} source;

typedef struct req {
    int live;          /* in the scheduler */
    int used;
    uint64_t sid, rid; /* the scheduler's id, the client's */
    int ver;           /* the registry version serving it */
    int conn;          /* TCP connection, or -1: UDP from addr */
    struct sockaddr_in6 addr;
    socklen_t alen;
    uint32_t seq;
    int stream, prompt_tokens;
    int32_t prev;
    uint64_t last_tok_us; /* for the inter-token latency */
    sl_utf8_stream u8;
    /* not streaming: everything, sent before DONE */
    uint32_t *ids;
    int n_ids, cap_ids;
    uint8_t *text;
    size_t tlen, tcap;
    /* UDP: the last WINDOW replies */
    uint8_t *win[WINDOW];
    size_t win_len[WINDOW];
    uint64_t ended_us;
} req;

static volatile sig_atomic_t g_stop, g_reload;
static void on_signal(int sig)
{
    if (sig == SIGHUP)
        g_reload = 1;
    else
        g_stop = 1;
}

typedef struct server {
    sl_registry reg;
    sl_mgmt *mgmt;
    sl_metrics *metrics;
    sl_hist ttft, itl, batch;
    uint64_t tokens, by_code[SL_WERR_COUNT], dropped;
    int ep, udp, lsn;
    conn conns[MAX_CONNS];
    req reqs[MAX_REQS];
    uint64_t next_sid;
    uint64_t served, errors;
    source src[SOURCES];
    uint64_t secret; /* keys the cookies */
    int max_inflight, max_prompt, max_tokens;
    double rate;
    sl_mac_key keys[SL_CONFIG_KEYS]; /* per-client request keys */
    int n_keys, require_mac;
    uint8_t buf[SL_WIRE_HEADER + SL_WIRE_MAX_BODY];
} server;

static int g_log_level = 2; /* info */

/* A model's name and image path have one limit each, wherever they come
 * from (the wire, a management line, the config file) and where they are
 * kept (the registry). */
_Static_assert(SL_MGMT_NAME_MAX == SL_WIRE_MODEL_MAX, "one limit of a model name");
_Static_assert(sizeof((sl_version *)0)->name == SL_MGMT_NAME_MAX + 1, "the registry keeps a whole name");
_Static_assert(sizeof((sl_version *)0)->image == SL_MGMT_IMAGE_MAX + 1, "the registry keeps a whole image path");

static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const char *level, const char *fmt, ...)
{
    if (sl_log_level_parse(level) > g_log_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluiced: %s: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- sending ---- */

static void conn_close(server *sv, int ci);

static source *src_of(server *sv, const struct sockaddr_in6 *addr, socklen_t alen)
{
    source *lru = &sv->src[0];
    for (int i = 0; i < SOURCES; i++) {
        source *s = &sv->src[i];
        if (s->used && s->alen == alen && memcmp(&s->addr, addr, alen) == 0)
            return s;
        if (!s->used || (lru->used && s->seen_us < lru->seen_us))
            lru = s;
    }
    memset(lru, 0, sizeof *lru);
    lru->used = 1;
    memcpy(&lru->addr, addr, alen);
    lru->alen = alen;
    lru->seen_us = sl_sched_now_us();
    return lru;
}

static uint64_t cookie_of(const server *sv, const struct sockaddr_in6 *addr, socklen_t alen)
{
    return XXH3_64bits_withSeed(addr, alen, sv->secret);
}

/* Every datagram out: an unverified source gets at most 3x the bytes it
 * sent, then one COOKIE; what is held back stays in the request's window
 * and goes out when the cookie comes back. */
static void udp_send(server *sv, const struct sockaddr_in6 *addr, socklen_t alen, const uint8_t *msg, size_t n)
{
    source *s = src_of(sv, addr, alen);
    if (!s->verified && s->out + n > 3 * s->in) {
        uint8_t b[SL_WIRE_HEADER + 8];
        size_t bn;
        if (!s->cookie_sent &&
            sl_wire_put_u64(b, sizeof b, SL_WIRE_COOKIE, 0, cookie_of(sv, addr, alen), &bn, NULL) == SL_OK) {
            (void)sendto(sv->udp, b, bn, 0, (const struct sockaddr *)addr, alen);
            s->cookie_sent = 1;
            s->out += bn;
        }
        return;
    }
    s->out += n;
    (void)sendto(sv->udp, msg, n, 0, (const struct sockaddr *)addr, alen);
}

/* One request from this client: SL_OK, or the reason for BUSY. */
static const char *admit_rate(server *sv, bucket *b)
{
    if (sv->rate <= 0)
        return NULL;
    const uint64_t now = sl_sched_now_us();
    const double cap = sv->rate > 1 ? sv->rate : 1;
    b->tokens = b->last_us ? b->tokens + (double)(now - b->last_us) / 1e6 * sv->rate : cap;
    b->tokens = b->tokens > cap ? cap : b->tokens;
    b->last_us = now;
    if (b->tokens < 1)
        return "over this client's request rate";
    b->tokens -= 1;
    return NULL;
}

static void send_to(server *sv, req *r, int ci, const struct sockaddr_in6 *addr, socklen_t alen, const uint8_t *msg,
                    size_t n)
{
    if (ci >= 0) {
        conn *c = &sv->conns[ci];
        if (c->fd < 0)
            return;
        if (c->out_len + n > TCP_OUT_MAX) {
            logf_("warn", "connection %d is %zu bytes behind: closed", ci, c->out_len);
            conn_close(sv, ci);
            return;
        }
        if (n && sl_grow((void **)&c->out, &c->out_cap, c->out_len + n, 65536)) {
            conn_close(sv, ci);
            return;
        }
        if (n)
            memcpy(c->out + c->out_len, msg, n);
        c->out_len += n;
        ssize_t w = c->out_len ? write(c->fd, c->out, c->out_len) : 0;
        if (w > 0) {
            memmove(c->out, c->out + w, c->out_len - (size_t)w);
            c->out_len -= (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(sv, ci);
            return;
        }
        struct epoll_event ev = {.events = EPOLLIN | (c->out_len ? EPOLLOUT : 0), .data.u64 = (uint64_t)ci + 2};
        epoll_ctl(sv->ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    udp_send(sv, addr, alen, msg, n);
    if (r && r->seq > 0) { /* a numbered reply: kept to resend */
        const uint32_t seq = r->seq - 1;
        free(r->win[seq % WINDOW]);
        r->win[seq % WINDOW] = malloc(n);
        if (r->win[seq % WINDOW])
            memcpy(r->win[seq % WINDOW], msg, n);
        r->win_len[seq % WINDOW] = r->win[seq % WINDOW] ? n : 0;
    }
}

static void reply_error(server *sv, int ci, const struct sockaddr_in6 *addr, socklen_t alen, uint64_t rid,
                        uint32_t seq, int code, const char *msg)
{
    uint8_t b[SL_WIRE_HEADER + 8 + SL_WIRE_ERRMSG_MAX];
    size_t n;
    sv->errors++;
    sv->by_code[code > 0 && code < SL_WERR_COUNT ? code : 0]++;
    if (sl_wire_put_error(b, sizeof b, rid, seq, (uint16_t)code, msg, &n, NULL) == SL_OK)
        send_to(sv, NULL, ci, addr, alen, b, n);
}

/* A numbered reply of r: TOKENS, DONE or ERROR. */
static void req_send(server *sv, req *r, const uint8_t *msg, size_t n)
{
    r->seq++;
    send_to(sv, r, r->conn, &r->addr, r->alen, msg, n);
}

static void req_release(server *sv, req *r)
{
    (void)sv;
    free(r->ids);
    free(r->text);
    for (int i = 0; i < WINDOW; i++)
        free(r->win[i]);
    memset(r, 0, sizeof *r);
}

/* ---- the scheduler's events become replies ---- */

/* A scheduler id is a serial number times MAX_REQS plus the request's slot,
 * so an event finds its request without a search (the serial tells a
 * reused slot's new request from an old one). */
static req *by_sid(server *sv, uint64_t sid)
{
    req *r = &sv->reqs[sid % MAX_REQS];
    return r->used && r->live && r->sid == sid ? r : NULL;
}

static void send_tokens(server *sv, req *r, const uint32_t *ids, int n, const uint8_t *text, size_t tlen)
{
    /* chunks: over UDP each datagram stays under the 1,400 bytes a path
     * carries unfragmented; over TCP up to 256 ids and 60,000 bytes; text
     * is cut on character boundaries, and once the ids are out the rest of
     * the text goes in chunks of its own */
    const int max_ids = r->conn < 0 ? 64 : SL_WIRE_CHUNK_MAX;
    const size_t max_text = r->conn < 0 ? 1024 : 60000;
    int i = 0;
    size_t t = 0;
    while (i < n || t < tlen) {
        const int k = n - i < max_ids ? n - i : max_ids;
        size_t tl = tlen - t < max_text ? tlen - t : max_text;
        if (t + tl < tlen)
            while (tl && (text[t + tl] & 0xc0) == 0x80)
                tl--;
        size_t len;
        sl_err err;
        if (sl_wire_put_tokens(sv->buf, sizeof sv->buf, r->rid, r->seq, ids + i, (uint16_t)k,
                               (sl_wire_bytes){text + t, tl}, (sl_wire_bytes){NULL, 0}, &len, &err) == SL_OK)
            req_send(sv, r, sv->buf, len);
        else
            logf_("error", "request %llu: %s", (unsigned long long)r->rid, err.msg);
        i += k, t += tl;
        if (!k && !tl)
            break;
    }
}

static void on_event(void *ctx, const sl_sched_event *ev)
{
    server *sv = ctx;
    req *r = by_sid(sv, ev->id);
    if (!r)
        return;
    if (ev->kind == SL_SCHED_TOKEN) {
        const uint64_t now = sl_sched_now_us();
        if (r->last_tok_us)
            sl_hist_observe(&sv->itl, (double)(now - r->last_tok_us) / 1e6);
        r->last_tok_us = now;
        sv->tokens++;
        char piece[256];
        size_t pn = sl_tok_piece(sv->reg.v[r->ver].m->tok, r->prev, ev->token, piece, sizeof piece);
        pn = pn < sizeof piece ? pn : sizeof piece;
        r->prev = ev->token;
        uint8_t out[3 * (sizeof piece + 4)];
        const size_t on = sl_utf8_push(&r->u8, (const uint8_t *)piece, pn, out);
        const uint32_t id = (uint32_t)ev->token;
        if (r->stream) {
            send_tokens(sv, r, &id, 1, out, on);
            return;
        }
        if (r->n_ids == r->cap_ids || r->tlen + on > r->tcap) {
            int nc = r->cap_ids ? 2 * r->cap_ids : 256;
            size_t tc = r->tcap ? 2 * r->tcap : 4096;
            while (tc < r->tlen + on)
                tc *= 2;
            uint32_t *ni = realloc(r->ids, sizeof *ni * (size_t)nc);
            if (ni)
                r->ids = ni, r->cap_ids = nc;
            uint8_t *nt = realloc(r->text, tc);
            if (nt)
                r->text = nt, r->tcap = tc;
            if (!ni || !nt)
                return; /* the DONE still comes; the text is short */
        }
        r->ids[r->n_ids++] = id;
        memcpy(r->text + r->tlen, out, on);
        r->tlen += on;
        return;
    }
    uint8_t tail[3];
    const size_t tn = sl_utf8_flush(&r->u8, tail);
    if (r->stream && tn)
        send_tokens(sv, r, NULL, 0, tail, tn);
    if (!r->stream && ev->kind == SL_SCHED_DONE) {
        if (tn && r->tlen + tn <= r->tcap)
            memcpy(r->text + r->tlen, tail, tn), r->tlen += tn;
        if (r->n_ids)
            send_tokens(sv, r, r->ids, r->n_ids, r->text, r->tlen);
    }
    size_t len;
    if (ev->kind == SL_SCHED_DONE) {
        sl_wire_done d = {.finish = ev->finish == SL_FIN_EOS ? SL_WIRE_FIN_EOS : SL_WIRE_FIN_LENGTH,
                          .prompt_tokens = (uint32_t)ev->prompt_tokens, .generated_tokens = (uint32_t)ev->generated_tokens,
                          .queue_us = ev->queue_us, .ttft_us = ev->ttft_us, .total_us = ev->total_us,
                          .model_version = sv->reg.v[r->ver].number,
                          .checksum = {(const uint8_t *)sv->reg.v[r->ver].checksum, strlen(sv->reg.v[r->ver].checksum)}};
        if (sl_wire_put_done(sv->buf, sizeof sv->buf, r->rid, r->seq, &d, &len, NULL) == SL_OK)
            req_send(sv, r, sv->buf, len);
        sv->served++;
        sl_hist_observe(&sv->ttft, (double)ev->ttft_us / 1e6);
    } else {
        const int code = ev->failure == SL_SCHED_CANCELLED  ? SL_WERR_CANCELLED
                         : ev->failure == SL_SCHED_DEADLINE ? SL_WERR_DEADLINE
                                                            : SL_WERR_INTERNAL;
        if (sl_wire_put_error(sv->buf, sizeof sv->buf, r->rid, r->seq, (uint16_t)code, sl_wire_code_name(code), &len,
                              NULL) == SL_OK)
            req_send(sv, r, sv->buf, len);
        sv->errors++;
        sv->by_code[code]++;
    }
    r->live = 0;
    r->ended_us = sl_sched_now_us();
    if (r->conn >= 0) /* TCP delivers: nothing to resend */
        req_release(sv, r);
}

/* ---- requests ---- */

static req *find_req(server *sv, int ci, const struct sockaddr_in6 *addr, socklen_t alen, uint64_t rid)
{
    for (int i = 0; i < MAX_REQS; i++) {
        req *r = &sv->reqs[i];
        if (r->used && r->rid == rid && r->conn == ci &&
            (ci >= 0 || (r->alen == alen && memcmp(&r->addr, addr, alen) == 0)))
            return r;
    }
    return NULL;
}

static void generate(server *sv, const sl_wire_msg *m, const uint8_t *raw, int ci, const struct sockaddr_in6 *addr,
                     socklen_t alen)
{
    const sl_wire_generate *g = &m->u.gen;
    const uint64_t rid = m->h.request_id;
    if (g->mac || sv->require_mac) { /* authenticated before anything else is looked at */
        int ok = 0;
        for (int i = 0; g->mac && i < sv->n_keys && !ok; i++)
            ok = sv->keys[i].id == g->key_id && sl_mac_verify(&sv->keys[i], raw, g);
        if (!ok)
            return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_UNAUTHORIZED,
                               g->mac ? "the MAC does not verify with that key" : "requests must carry a MAC");
    }
    req *old = find_req(sv, ci, addr, alen, rid);
    if (old && ci < 0) { /* a UDP repeat (or the cookie's echo): what was sent, again */
        for (uint32_t s = old->seq > WINDOW ? old->seq - WINDOW : 0; s < old->seq; s++)
            if (old->win[s % WINDOW])
                udp_send(sv, addr, alen, old->win[s % WINDOW], old->win_len[s % WINDOW]);
        return;
    }
    if (old)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BAD_REQUEST, "request_id is already in flight");
    if (g_stop)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BUSY, "draining: not taking requests");
    int inflight = 0;
    for (int i = 0; i < MAX_REQS; i++)
        inflight += sv->reqs[i].used && sv->reqs[i].live && sv->reqs[i].conn == ci &&
                    (ci >= 0 || (sv->reqs[i].alen == alen && memcmp(&sv->reqs[i].addr, addr, alen) == 0));
    if (inflight >= sv->max_inflight)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BUSY, "too many requests in flight from this client");
    const char *why = admit_rate(sv, ci >= 0 ? &sv->conns[ci].rate : &src_of(sv, addr, alen)->rate);
    if (why)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BUSY, why);
    if (g->max_tokens > (uint32_t)sv->max_tokens)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BAD_REQUEST, "max_tokens is over this server's cap");
    if (g->n_stop || g->n_logprobs) /* refused, never silently ignored */
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BAD_REQUEST,
                           "stop strings and log-probabilities are not served yet");
    sl_version *v = sl_registry_get(&sv->reg, (const char *)g->model.p, g->model.n);
    if (!v)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_UNKNOWN_MODEL, "no model of that name is loaded");
    req *r = NULL, *oldest = NULL;
    for (int i = 0; i < MAX_REQS && !r; i++) {
        if (!sv->reqs[i].used)
            r = &sv->reqs[i];
        else if (!sv->reqs[i].live && (!oldest || sv->reqs[i].ended_us < oldest->ended_us))
            oldest = &sv->reqs[i];
    }
    if (!r && oldest) { /* a finished UDP request's resend window makes room */
        req_release(sv, oldest);
        r = oldest;
    }
    if (!r)
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_BUSY, "too many requests in flight");
    int32_t *ids = NULL;
    size_t n = 0;
    sl_err err = {0};
    if (g->prompt_kind == SL_WIRE_TEXT) {
        if (sl_tok_encode(v->m->tok, (const char *)g->prompt, g->prompt_len,
                          !(g->options & SL_WIRE_O_NO_BOS) && sl_tok_add_bos(v->m->tok), &ids, &n, &err))
            return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_INTERNAL, err.msg);
    } else {
        ids = malloc(sizeof *ids * g->prompt_len);
        if (!ids)
            return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_INTERNAL, "out of memory");
        for (uint32_t i = 0; i < g->prompt_len; i++)
            ids[i] = (int32_t)sl_wire_u32(g->prompt, i);
        n = g->prompt_len;
    }
    if ((int)n > sv->max_prompt) {
        free(ids);
        return reply_error(sv, ci, addr, alen, rid, 0, SL_WERR_TOO_LARGE, "the prompt is over this server's cap");
    }
    sl_sched_req q = {.id = ++sv->next_sid * MAX_REQS + (uint64_t)(r - sv->reqs), .prompt = ids, .n_prompt = (int)n, .max_tokens = (int)g->max_tokens,
                      .stop_at_bos = v->m->stop_at_bos};
    q.sampler = sl_sampler_defaults();
    q.sampler.temp = g->temperature, q.sampler.top_k = (int)g->top_k, q.sampler.top_p = g->top_p;
    q.sampler.min_p = g->min_p, q.sampler.rep_penalty = g->repeat_penalty, q.sampler.seed = g->seed;
    q.sampler.rep_last_n = 64;
    if (g->deadline_ms)
        q.deadline_us = sl_sched_now_us() + 1000ull * g->deadline_ms;
    const sl_status st = sl_sched_submit(v->s, &q, &err);
    free(ids);
    if (st) {
        const int code = st == SL_EBUSY ? SL_WERR_BUSY
                         : st == SL_ERANGE && strstr(err.msg, "context full") ? SL_WERR_CONTEXT_FULL
                                                                              : SL_WERR_BAD_REQUEST;
        return reply_error(sv, ci, addr, alen, rid, 0, code, err.msg);
    }
    *r = (req){.live = 1, .used = 1, .sid = q.id, .rid = rid, .ver = (int)(v - sv->reg.v), .conn = ci, .alen = alen,
               .stream = (g->options & SL_WIRE_O_STREAM) != 0, .prompt_tokens = (int)n, .prev = -1};
    if (ci < 0)
        memcpy(&r->addr, addr, alen);
}

/* The request id of a message whose header is valid, else -1 (then it
 * is not ours: dropped, counted, never answered). */
static int64_t header_rid(const uint8_t *b, size_t n)
{
    size_t fl;
    if (n < SL_WIRE_HEADER || sl_wire_peek(b, n, &fl, NULL) != SL_OK)
        return -1;
    uint64_t rid = 0;
    for (int i = 7; i >= 0; i--)
        rid = rid << 8 | b[8 + i];
    return (int64_t)(rid & INT64_MAX);
}

static void handle(server *sv, const uint8_t *b, size_t n, int ci, const struct sockaddr_in6 *addr, socklen_t alen)
{
    sl_wire_msg m;
    sl_err err = {0};
    if (ci < 0) {
        source *s = src_of(sv, addr, alen);
        s->in += n;
        s->seen_us = sl_sched_now_us();
    }
    if (ci < 0 && n > SL_WIRE_UDP_MAX) {
        const int64_t rid = header_rid(b, n);
        if (rid >= 0)
            reply_error(sv, ci, addr, alen, (uint64_t)rid, 0, SL_WERR_TOO_LARGE, "over 1400 bytes: send it over TCP");
        else
            sv->dropped++, sv->errors++;
        return;
    }
    if (sl_wire_decode(b, n, &m, &err) != SL_OK) {
        const int64_t rid = header_rid(b, n);
        if (rid >= 0)
            reply_error(sv, ci, addr, alen, (uint64_t)rid, 0, SL_WERR_BAD_REQUEST, err.msg);
        else
            sv->dropped++, sv->errors++; /* not ours: dropped, counted */
        return;
    }
    if (ci < 0 && m.h.type == SL_WIRE_GENERATE && (m.h.flags & SL_WIRE_F_COOKIE) &&
        m.u.gen.cookie == cookie_of(sv, addr, alen))
        src_of(sv, addr, alen)->verified = 1;
    switch (m.h.type) {
    case SL_WIRE_GENERATE: generate(sv, &m, b, ci, addr, alen); break;
    case SL_WIRE_CANCEL: {
        req *r = find_req(sv, ci, addr, alen, m.h.request_id);
        if (r && r->live)
            sl_sched_cancel(sv->reg.v[r->ver].s, r->sid); /* its ERROR CANCELLED comes through on_event */
        break;
    }
    case SL_WIRE_PING: {
        size_t len;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (sl_wire_put_u64(sv->buf, sizeof sv->buf, SL_WIRE_PONG, m.h.request_id,
                            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, &len, NULL) == SL_OK)
            send_to(sv, NULL, ci, addr, alen, sv->buf, len);
        break;
    }
    case SL_WIRE_RESEND: {
        req *r = ci < 0 ? find_req(sv, ci, addr, alen, m.h.request_id) : NULL;
        for (int i = 0; r && i < m.u.resend.n; i++) {
            const uint32_t s = sl_wire_u32(m.u.resend.seqs, (size_t)i);
            if (s < r->seq && s + WINDOW >= r->seq && r->win[s % WINDOW])
                udp_send(sv, addr, alen, r->win[s % WINDOW], r->win_len[s % WINDOW]);
        }
        break;
    }
    default: /* replies are not requests */
        reply_error(sv, ci, addr, alen, m.h.request_id, 0, SL_WERR_BAD_REQUEST, "a reply type sent to the server");
    }
}

/* ---- sockets ---- */

static void conn_close(server *sv, int ci)
{
    conn *c = &sv->conns[ci];
    if (c->fd < 0)
        return;
    epoll_ctl(sv->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_len = c->out_len = c->out_cap = 0;
    for (int i = 0; i < MAX_REQS; i++) /* a closed connection cancels its requests */
        if (sv->reqs[i].used && sv->reqs[i].conn == ci) {
            if (sv->reqs[i].live)
                sl_sched_cancel(sv->reg.v[sv->reqs[i].ver].s, sv->reqs[i].sid);
            req_release(sv, &sv->reqs[i]);
        }
}

static void conn_read(server *sv, int ci)
{
    conn *c = &sv->conns[ci];
    for (;;) {
        if (!c->in && !(c->in = malloc(TCP_IN_MAX)))
            return conn_close(sv, ci);
        ssize_t r = read(c->fd, c->in + c->in_len, TCP_IN_MAX - c->in_len);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return conn_close(sv, ci);
        if (r < 0)
            break;
        c->in_len += (size_t)r;
        size_t off = 0;
        while (c->fd >= 0) {
            size_t fl;
            sl_err err = {0};
            if (sl_wire_peek(c->in + off, c->in_len - off, &fl, &err) != SL_OK) {
                reply_error(sv, ci, NULL, 0, 0, 0, SL_WERR_BAD_REQUEST, err.msg); /* the stream is lost */
                return conn_close(sv, ci);
            }
            if (!fl || fl > c->in_len - off)
                break;
            handle(sv, c->in + off, fl, ci, NULL, 0);
            off += fl;
        }
        if (c->fd < 0)
            return;
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
}

static int parse_addr(const char *s, struct sockaddr_in6 *a)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || colon - s >= (long)sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    const long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(a, 0, sizeof *a);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1)
        return 0;
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) != 1)
        return -1;
    a->sin6_addr.s6_addr[10] = a->sin6_addr.s6_addr[11] = 0xff; /* ::ffff:a.b.c.d */
    memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
    return 0;
}

static int open_socket(int type, const struct sockaddr_in6 *a)
{
    int fd = socket(AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (const struct sockaddr *)a, sizeof *a) < 0 || (type == SOCK_STREAM && listen(fd, 128) < 0)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- metrics (sl_metrics.h) ---- */

static void on_step(void *ctx, int tokens)
{
    server *sv = ctx;
    sl_hist_observe(&sv->batch, tokens);
}

static void render_metrics(void *ctx, sl_text_buf *b)
{
    server *sv = ctx;
    int queued = 0, running = 0, kv_used = 0, kv_total = 0, models = 0;
    for (int i = 0; i < SL_REG_VERSIONS; i++)
        if (sv->reg.v[i].used) {
            sl_sched_stats st;
            sl_sched_get_stats(sv->reg.v[i].s, &st);
            queued += st.queued, running += st.running, kv_used += st.kv_blocks_used, kv_total += st.kv_blocks_total;
        }
    for (int i = 0; i < SL_REG_MODELS; i++)
        models += sv->reg.cur[i] >= 0;
    sl_tb_printf(b,
                 "# HELP sluice_requests_total Requests answered with DONE.\n# TYPE sluice_requests_total counter\n"
                 "sluice_requests_total %llu\n"
                 "# HELP sluice_tokens_total Tokens generated.\n# TYPE sluice_tokens_total counter\n"
                 "sluice_tokens_total %llu\n"
                 "# HELP sluice_errors_total ERROR replies by code.\n# TYPE sluice_errors_total counter\n",
                 (unsigned long long)sv->served, (unsigned long long)sv->tokens);
    for (int c = 1; c < SL_WERR_COUNT; c++)
        sl_tb_printf(b, "sluice_errors_total{code=\"%s\"} %llu\n", sl_wire_code_name(c),
                     (unsigned long long)sv->by_code[c]);
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
                 (unsigned long long)sv->dropped, queued, running, kv_used, kv_total, models,
                 (unsigned long long)sv->reg.swaps, (unsigned long long)sv->reg.swaps_failed, !g_stop && models > 0);
    sl_tb_hist(b, "sluice_batch_tokens", "Tokens per scheduler step.", &sv->batch);
    sl_tb_hist(b, "sluice_ttft_seconds", "Time from arrival to the first token.", &sv->ttft);
    sl_tb_hist(b, "sluice_inter_token_seconds", "Time between a request's tokens.", &sv->itl);
}

/* ---- management commands (sl_mgmt.h) ---- */

static json_object *version_json(const sl_version *v)
{
    json_object *o = json_object_new_object();
    sl_sched_stats st;
    sl_sched_get_stats(v->s, &st);
    json_object_object_add(o, "name", json_object_new_string(v->name));
    json_object_object_add(o, "version", json_object_new_int64((int64_t)v->number));
    json_object_object_add(o, "image", json_object_new_string(v->image));
    json_object_object_add(o, "checksum", json_object_new_string(v->checksum));
    json_object_object_add(o, "retired", json_object_new_boolean(v->retired));
    json_object_object_add(o, "queued", json_object_new_int(st.queued));
    json_object_object_add(o, "running", json_object_new_int(st.running));
    json_object_object_add(o, "kv_blocks_used", json_object_new_int(st.kv_blocks_used));
    json_object_object_add(o, "kv_blocks_total", json_object_new_int(st.kv_blocks_total));
    json_object_object_add(o, "steps", json_object_new_int64((int64_t)st.steps));
    json_object_object_add(o, "generated_tokens", json_object_new_int64((int64_t)st.generated));
    json_object_object_add(o, "finished", json_object_new_int64((int64_t)st.finished));
    json_object_object_add(o, "failed", json_object_new_int64((int64_t)st.failed)); /* cancelled, deadline, engine */
    return o;
}

static json_object *on_mgmt(void *ctx, const sl_mgmt_req *q)
{
    server *sv = ctx;
    json_object *r = json_object_new_object();
    const char *cmd = sl_mgmt_cmd_name(q->cmd), *name = q->name;
    sl_err err = {0};
    sl_status st = SL_OK;
    if (q->cmd == SL_MGMT_STATUS || q->cmd == SL_MGMT_MODELS || q->cmd == SL_MGMT_STATS) {
        json_object *ms = json_object_new_array();
        for (int i = 0; i < SL_REG_VERSIONS; i++)
            if (sv->reg.v[i].used && (q->cmd != SL_MGMT_MODELS || !sv->reg.v[i].retired))
                json_object_array_add(ms, version_json(&sv->reg.v[i]));
        json_object_object_add(r, "models", ms);
        json_object_object_add(r, "live", json_object_new_boolean(1));
        int n_models = 0;
        for (int i = 0; i < SL_REG_MODELS; i++)
            n_models += sv->reg.cur[i] >= 0;
        /* live: this answer; ready: a model to serve and not draining */
        json_object_object_add(r, "ready", json_object_new_boolean(!g_stop && n_models > 0));
        json_object_object_add(r, "draining", json_object_new_boolean(g_stop != 0));
        json_object_object_add(r, "served", json_object_new_int64((int64_t)sv->served));
        json_object_object_add(r, "errors", json_object_new_int64((int64_t)sv->errors));
        json_object_object_add(r, "swaps", json_object_new_int64((int64_t)sv->reg.swaps));
        json_object_object_add(r, "swaps_failed", json_object_new_int64((int64_t)sv->reg.swaps_failed));
    } else if (q->cmd == SL_MGMT_LOAD || q->cmd == SL_MGMT_SWAP) {
        if (g_stop)
            st = sl_err_set(&err, SL_EBUSY, "draining");
        else
            st = sl_registry_load(&sv->reg, name, q->image, q->cmd == SL_MGMT_SWAP, q->force, &err);
        if (!st) {
            sl_version *v = sl_registry_get(&sv->reg, name, strlen(name));
            json_object_object_add(r, "model", version_json(v));
            logf_("info", "%s %s: version %llu, %s", cmd, name, (unsigned long long)v->number, v->image);
        } else
            logf_("warn", "%s %s refused: %s", cmd, name, err.msg);
    } else if (q->cmd == SL_MGMT_UNLOAD) {
        st = sl_registry_unload(&sv->reg, name, &err);
    } else { /* SL_MGMT_DRAIN: sl_mgmt_parse let no other command through */
        g_stop = 1;
    }
    json_object_object_add(r, "ok", json_object_new_boolean(st == SL_OK));
    if (st)
        json_object_object_add(r, "error", json_object_new_string(err.msg));
    return r;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sluiced [--config FILE] --model NAME=IMAGE [--model ...] [--listen ADDR:PORT] [--mgmt PATH]\n"
               "               [--threads T] [--log-level error|warn|info|debug]\n"
               "               [--max-seqs N] [--ctx N] [--max-queue N] [--isa ISA] [--metrics ADDR:PORT]\n"
               "               [--max-inflight N] [--rate R] [--max-prompt N] [--max-tokens N]\n"
               "               [--key ID:HEX ...] [--require-mac] [--mlock]\n"
               "  Serves each image as NAME over UDP and TCP on the same port (default 127.0.0.1:7433;\n"
               "  port 0 picks one, printed on stdout as \"listening on ADDR:PORT\").  Images given here\n"
               "  are trusted without a quality verdict; swaps through the management socket (--mgmt,\n"
               "  sluicectl) need a passing one unless forced.  SIGTERM or SIGINT drains: no new\n"
               "  requests, the running ones finish, then it exits.  --metrics serves Prometheus text at\n"
               "  http://ADDR:PORT/metrics (keep it on loopback).  Per client (UDP source, TCP\n"
               "  connection): --max-inflight requests at once (64), --rate requests a second (off);\n"
               "  per request: --max-prompt tokens (16384), --max-tokens (4096).  --config reads the same\n"
               "  settings from JSON (docs/operations.md), flags winning; SIGHUP re-reads it: models\n"
               "  load, swap and unload to match, limits and the log level change.\n");
}

/* ---- configuration: flags over a JSON file, the file re-read on SIGHUP ---- */

/* SIGHUP: models, limits and the log level follow the file; listening
 * addresses, threads and batch sizes need a restart (said in the log). */
static void reload(server *sv, const char *path, const sl_config *now)
{
    sl_config c = *now;
    json_object *keep = NULL;
    sl_err err = {0};
    if (sl_config_read(path, &c, &keep, &err) || sl_config_check(&c, &err)) {
        logf_("error", "reload refused, nothing changed: %s", err.msg);
        json_object_put(keep);
        return;
    }
    sv->max_inflight = c.max_inflight, sv->rate = c.rate, sv->max_prompt = c.max_prompt, sv->max_tokens = c.max_tokens;
    memcpy(sv->keys, c.keys, sizeof sv->keys);
    sv->n_keys = c.n_keys, sv->require_mac = c.require_mac;
    g_log_level = c.log_level;
    for (int i = 0; i < c.n_models; i++) { /* new names load, changed images swap (trusted as on the command line) */
        sl_version *v = sl_registry_get(&sv->reg, c.model_name[i], strlen(c.model_name[i]));
        sl_err err = {0};
        if (v && !strcmp(v->image, c.model_image[i]))
            continue;
        if (sl_registry_load(&sv->reg, c.model_name[i], c.model_image[i], v != NULL, true, &err))
            logf_("error", "reload: %s %s: %s", v ? "swap" : "load", c.model_name[i], err.msg);
        else
            logf_("info", "reload: %s %s: %s", v ? "swapped" : "loaded", c.model_name[i], c.model_image[i]);
    }
    for (int s = 0; s < SL_REG_MODELS; s++) { /* names no longer in the file are unloaded */
        if (sv->reg.cur[s] < 0)
            continue;
        const char *name = sv->reg.v[sv->reg.cur[s]].name;
        int keep_it = 0;
        for (int i = 0; i < c.n_models && !keep_it; i++)
            keep_it = !strcmp(c.model_name[i], name);
        if (!keep_it && c.n_models) {
            logf_("info", "reload: unloaded %s", name);
            sl_registry_unload(&sv->reg, name, NULL);
        }
    }
    if (c.threads != now->threads || c.max_seqs != now->max_seqs || c.ctx != now->ctx || c.max_queue != now->max_queue)
        logf_("warn", "reload: threads, max_seqs, ctx and max_queue apply to versions loaded from now on");
    sv->reg.ec.n_threads = c.threads, sv->reg.ec.max_seqs = c.max_seqs, sv->reg.ec.ctx = c.ctx;
    sv->reg.sc.max_queue = c.max_queue;
    if ((c.listen && (!now->listen || strcmp(c.listen, now->listen))) ||
        (c.mgmt && (!now->mgmt || strcmp(c.mgmt, now->mgmt))) ||
        (c.metrics && (!now->metrics || strcmp(c.metrics, now->metrics))))
        logf_("warn", "reload: listen, mgmt and metrics addresses change only with a restart");
    json_object_put(keep);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"listen", required_argument, 0, 'l'},
        {"threads", required_argument, 0, 't'}, {"max-seqs", required_argument, 0, 's'},
        {"ctx", required_argument, 0, 'c'},     {"max-queue", required_argument, 0, 'q'},
        {"isa", required_argument, 0, 'i'},     {"mgmt", required_argument, 0, 'M'},
        {"metrics", required_argument, 0, 'P'}, {"max-inflight", required_argument, 0, 'F'},
        {"rate", required_argument, 0, 'R'},    {"max-prompt", required_argument, 0, 'X'},
        {"max-tokens", required_argument, 0, 'T'}, {"config", required_argument, 0, 'C'},
        {"log-level", required_argument, 0, 'L'}, {"key", required_argument, 0, 'K'},
        {"require-mac", no_argument, 0, 'Q'},   {"mlock", no_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    static sl_config cfg = {.listen = "127.0.0.1:7433", .threads = 1, .max_seqs = 16, .max_queue = 256, .isa = -1,
                            .max_inflight = 64, .max_prompt = 16384, .max_tokens = 4096, .log_level = 2};
    const char *config_path = NULL;
    json_object *cfg_keep = NULL;
    int o;
    /* the file first, then the flags over it */
    while ((o = getopt_long(argc, argv, "m:l:t:h", opts, NULL)) != -1)
        if (o == 'C')
            config_path = optarg;
    sl_err cerr = {0};
    if (config_path && sl_config_read(config_path, &cfg, &cfg_keep, &cerr)) {
        fprintf(stderr, "sluiced: %s\n", cerr.msg);
        return 2;
    }
    const int file_models = cfg.n_models;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:l:t:h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1] || eq - optarg > SL_WIRE_MODEL_MAX ||
                strlen(eq + 1) > SL_MGMT_IMAGE_MAX) {
                fprintf(stderr, "sluiced: --model %s: not NAME=IMAGE\n", optarg);
                return 2;
            }
            if (cfg.n_models == file_models)
                cfg.n_models = 0; /* --model replaces the file's list */
            if (cfg.n_models == SL_REG_MODELS) {
                fprintf(stderr, "sluiced: at most %d models\n", SL_REG_MODELS);
                return 2;
            }
            snprintf(cfg.model_name[cfg.n_models], sizeof cfg.model_name[0], "%.*s", (int)(eq - optarg), optarg);
            snprintf(cfg.model_image[cfg.n_models], sizeof cfg.model_image[0], "%s", eq + 1);
            cfg.n_models++;
            break;
        }
        case 'l': cfg.listen = optarg; break;
        case 'M': cfg.mgmt = optarg; break;
        case 'P': cfg.metrics = optarg; break;
        case 'F': cfg.max_inflight = atoi(optarg); break;
        case 'R': cfg.rate = atof(optarg); break;
        case 'X': cfg.max_prompt = atoi(optarg); break;
        case 'T': cfg.max_tokens = atoi(optarg); break;
        case 't': cfg.threads = atoi(optarg); break;
        case 's': cfg.max_seqs = atoi(optarg); break;
        case 'c': cfg.ctx = atoi(optarg); break;
        case 'q': cfg.max_queue = atoi(optarg); break;
        case 'C': break;
        case 'K':
            if (cfg.n_keys == SL_CONFIG_KEYS || sl_mac_key_parse(optarg, &cfg.keys[cfg.n_keys])) {
                fprintf(stderr, "sluiced: --key %s: ID:HEX with 16..64 bytes of key (at most 16 keys)\n", optarg);
                return 2;
            }
            cfg.n_keys++;
            break;
        case 'Q': cfg.require_mac = 1; break;
        case 'k': cfg.mlock = 1; break;
        case 'L':
            if ((cfg.log_level = sl_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "sluiced: --log-level %s: not error, warn, info or debug\n", optarg);
                return 2;
            }
            break;
        case 'i':
            if ((cfg.isa = sl_isa_parse(optarg)) < 0) {
                fprintf(stderr, "sluiced: --isa %s: not scalar, avx2, avx512 or amx\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (sl_config_check(&cfg, &cerr)) {
        fprintf(stderr, "sluiced: %s\n", cerr.msg);
        usage(stderr);
        return 2;
    }
    g_log_level = cfg.log_level;
    const char *listen_at = cfg.listen, *mgmt_path = cfg.mgmt, *metrics_at = cfg.metrics;
    const int threads = cfg.threads;
    static server sv;
    for (int i = 0; i < MAX_CONNS; i++)
        sv.conns[i].fd = -1;
    sv.max_inflight = cfg.max_inflight, sv.rate = cfg.rate, sv.max_prompt = cfg.max_prompt, sv.max_tokens = cfg.max_tokens;
    memcpy(sv.keys, cfg.keys, sizeof sv.keys);
    sv.n_keys = cfg.n_keys, sv.require_mac = cfg.require_mac;
    if (sv.require_mac && !sv.n_keys) {
        fprintf(stderr, "sluiced: --require-mac without any --key\n");
        return 2;
    }
    if (getrandom(&sv.secret, sizeof sv.secret, 0) != sizeof sv.secret) {
        fprintf(stderr, "sluiced: no random bytes for the cookie key: %s\n", strerror(errno));
        return 1;
    }
    sv.ttft.le = sv.itl.le = sl_hist_seconds;
    sv.batch.le = sl_hist_sizes;
    sl_registry_init(&sv.reg,
                     &(sl_engine_cfg){.n_threads = cfg.threads, .isa = cfg.isa, .max_seqs = cfg.max_seqs, .ctx = cfg.ctx,
                                      .pin = 1},
                     &(sl_sched_cfg){.max_queue = cfg.max_queue}, on_event, &sv);
    sv.reg.on_step = on_step;
    sv.reg.mlock = cfg.mlock;
    sl_err err = {0};
    for (int i = 0; i < cfg.n_models; i++)
        if (sl_registry_load(&sv.reg, cfg.model_name[i], cfg.model_image[i], false, true, &err)) {
            fprintf(stderr, "sluiced: %s\n", err.msg);
            return 1;
        }
    struct sockaddr_in6 a;
    if (parse_addr(listen_at, &a)) {
        fprintf(stderr, "sluiced: --listen %s: not ADDR:PORT\n", listen_at);
        return 2;
    }
    sv.lsn = open_socket(SOCK_STREAM, &a);
    socklen_t al = sizeof a;
    if (sv.lsn >= 0 && a.sin6_port == 0) /* port 0: UDP takes the port TCP was given */
        getsockname(sv.lsn, (struct sockaddr *)&a, &al);
    sv.udp = sv.lsn >= 0 ? open_socket(SOCK_DGRAM, &a) : -1;
    sv.ep = epoll_create1(EPOLL_CLOEXEC);
    if (sv.lsn < 0 || sv.udp < 0 || sv.ep < 0) {
        fprintf(stderr, "sluiced: cannot listen on %s: %s\n", listen_at, strerror(errno));
        return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(sv.ep, EPOLL_CTL_ADD, sv.udp, &ev);
    ev.data.u64 = 1;
    epoll_ctl(sv.ep, EPOLL_CTL_ADD, sv.lsn, &ev);
    const uint64_t mgmt_tag = 2 + MAX_CONNS;
    if (mgmt_path && sl_mgmt_open(mgmt_path, sv.ep, mgmt_tag, on_mgmt, &sv, &sv.mgmt, &err)) {
        fprintf(stderr, "sluiced: %s\n", err.msg);
        return 1;
    }
    const uint64_t metrics_tag = mgmt_tag + 17;
    if (metrics_at) {
        char host[64];
        const char *colon = strrchr(metrics_at, ':');
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - metrics_at) : 0, metrics_at);
        if (!colon || sl_metrics_start(host, atoi(colon + 1), sv.ep, metrics_tag, render_metrics, &sv, &sv.metrics, &err)) {
            fprintf(stderr, "sluiced: --metrics %s: %s\n", metrics_at, colon ? err.msg : "not ADDR:PORT");
            return 1;
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    char host[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof host);
    printf("listening on %s:%u (", strncmp(host, "::ffff:", 7) ? host : host + 7, ntohs(a.sin6_port));
    for (int i = 0; i < SL_REG_VERSIONS; i++)
        if (sv.reg.v[i].used)
            printf("model %s: %s, ", sv.reg.v[i].name, sv.reg.v[i].image);
    printf("%d thread%s, isa %s)\n", threads, threads > 1 ? "s" : "", sl_isa_name(sl_isa_select()));
    fflush(stdout);
#ifdef SL_HAVE_SYSTEMD
    sd_notify(0, "READY=1\nSTATUS=serving"); /* Type=notify: ready once listening with its models */
#endif
    int active = 0;
    uint8_t dgram[65536];
    while (!g_stop || active) {
        struct epoll_event evs[64];
        const int n = epoll_wait(sv.ep, evs, 64, active ? 0 : 100);
        for (int i = 0; i < n; i++) {
            const uint64_t id = evs[i].data.u64;
            if (id == metrics_tag) {
                sl_metrics_run(sv.metrics);
            } else if (id >= mgmt_tag) {
                sl_mgmt_event(sv.mgmt, id, evs[i].events);
            } else if (id == 0) {
                for (int k = 0; k < 256; k++) {
                    struct sockaddr_in6 from;
                    socklen_t fl = sizeof from;
                    const ssize_t r = recvfrom(sv.udp, dgram, sizeof dgram, 0, (struct sockaddr *)&from, &fl);
                    if (r < 0)
                        break;
                    handle(&sv, dgram, (size_t)r, -1, &from, fl);
                }
            } else if (id == 1) {
                int fd;
                while ((fd = accept4(sv.lsn, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    int ci = 0;
                    while (ci < MAX_CONNS && sv.conns[ci].fd >= 0)
                        ci++;
                    if (ci == MAX_CONNS || g_stop) {
                        close(fd);
                        continue;
                    }
                    int one = 1; /* replies are small and latency-bound: no Nagle */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    sv.conns[ci].fd = fd;
                    struct epoll_event ce = {.events = EPOLLIN, .data.u64 = (uint64_t)ci + 2};
                    epoll_ctl(sv.ep, EPOLL_CTL_ADD, fd, &ce);
                }
            } else {
                const int ci = (int)(id - 2);
                if (evs[i].events & EPOLLOUT && sv.conns[ci].fd >= 0)
                    send_to(&sv, NULL, ci, NULL, 0, NULL, 0);
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR) && sv.conns[ci].fd >= 0)
                    conn_read(&sv, ci);
            }
        }
        if (g_reload) {
            g_reload = 0;
            if (config_path)
                reload(&sv, config_path, &cfg);
            else
                logf_("warn", "SIGHUP without --config: nothing to reload");
        }
        active = sl_registry_step(&sv.reg);
        sl_metrics_run(sv.metrics); /* its timeouts */
#ifdef SL_HAVE_SYSTEMD
        static int told_stopping;
        if (g_stop && !told_stopping++)
            sd_notify(0, "STOPPING=1\nSTATUS=draining");
#endif
        const uint64_t now = sl_sched_now_us();
        for (int i = 0; i < MAX_REQS; i++) /* UDP replies are kept a while to resend, then dropped */
            if (sv.reqs[i].used && !sv.reqs[i].live && sv.reqs[i].conn < 0 && now - sv.reqs[i].ended_us > KEEP_US)
                req_release(&sv, &sv.reqs[i]);
    }
    logf_("info", "drained: %llu requests served, %llu errors, %llu swaps", (unsigned long long)sv.served,
          (unsigned long long)sv.errors, (unsigned long long)sv.reg.swaps);
    for (int i = 0; i < MAX_CONNS; i++)
        if (sv.conns[i].fd >= 0)
            conn_close(&sv, i);
    for (int i = 0; i < MAX_REQS; i++)
        if (sv.reqs[i].used)
            req_release(&sv, &sv.reqs[i]);
    sl_mgmt_close(sv.mgmt);
    sl_metrics_stop(sv.metrics);
    sl_registry_free(&sv.reg);
    json_object_put(cfg_keep);
    close(sv.udp);
    close(sv.lsn);
    close(sv.ep);
    return 0;
}
