/* serve.c - the serving core (sl_serve.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "sl_clients.h"
#include "sl_clock.h"
#include "sl_log.h"
#include "sl_serve.h"
#include "sl_utf8.h"
#include "sl_tokenizer.h"

#define MAX_REQS 1024          /* requests live or keeping replies to resend */
#define MAX_CLIENTS 2048       /* more than MAX_REQS: a client without work can always make room */
#define WINDOW 64              /* datagram replies kept per request, to resend */
#define KEEP_US 10000000ull    /* and for this long after the request ends */
#define TICK_US 10000ull       /* how often the kept windows are looked over */

enum { R_FREE, R_LIVE, R_ENDED };

typedef struct req {
    int state;
    int orphan;         /* its peer is gone: nothing more is sent, it is freed at its last event */
    uint64_t sid, rid;  /* the worker's id, the client's */
    sl_version *v;      /* a reference, held while it runs */
    sl_transport *t;
    sl_peer peer;
    uint32_t seq;       /* numbered replies sent */
    int stream;
    int32_t prev;       /* the last token, for its piece's leading space */
    uint64_t last_tok_us, ended_us;
    sl_utf8_stream u8;
    uint32_t *ids;      /* not streaming: everything, sent before DONE */
    int n_ids, cap_ids;
    uint8_t *text;
    size_t tlen, tcap;
    uint8_t *win[WINDOW];
    size_t win_len[WINDOW];
    int next;           /* hash chain */
} req;

struct sl_serve {
    sl_registry *reg;
    sl_worker *w;
    sl_serve_limits lim;
    sl_serve_stats st;
    sl_rx rx;
    sl_clients clients;
    req *reqs;
    int *heads, mask;
    uint64_t serial, secret, last_tick;
    int draining, live;
    uint8_t *buf; /* one message out */
};

#define BUF_CAP (SL_WIRE_HEADER + SL_WIRE_MAX_BODY)

/* ---- the request table ---- */

static int hash_of(const sl_serve *s, const sl_peer *p, uint64_t rid)
{
    return (int)(XXH3_64bits_withSeed(p, sizeof *p, rid) & (uint64_t)s->mask);
}

static req *find_req(sl_serve *s, const sl_peer *p, uint64_t rid)
{
    for (int i = s->heads[hash_of(s, p, rid)]; i >= 0; i = s->reqs[i].next)
        if (s->reqs[i].rid == rid && sl_peer_equal(&s->reqs[i].peer, p))
            return &s->reqs[i];
    return NULL;
}

/* A worker id is a serial number times MAX_REQS plus the request's slot,
 * so an event finds its request without a search (the serial tells a
 * reused slot's new request from an old one). */
static req *by_sid(sl_serve *s, uint64_t sid)
{
    req *r = &s->reqs[sid % MAX_REQS];
    return r->state == R_LIVE && r->sid == sid ? r : NULL;
}

static void req_free(sl_serve *s, req *r)
{
    const int i = (int)(r - s->reqs);
    int *link = &s->heads[hash_of(s, &r->peer, r->rid)];
    while (*link >= 0 && *link != i)
        link = &s->reqs[*link].next;
    if (*link == i)
        *link = r->next;
    free(r->ids);
    free(r->text);
    for (int k = 0; k < WINDOW; k++)
        free(r->win[k]);
    memset(r, 0, sizeof *r);
    r->next = -1;
}

/* A free slot, else the one whose resend window is oldest. */
static req *req_slot(sl_serve *s)
{
    req *oldest = NULL;
    for (int i = 0; i < MAX_REQS; i++) {
        req *r = &s->reqs[i];
        if (r->state == R_FREE)
            return r;
        if (r->state == R_ENDED && (!oldest || r->ended_us < oldest->ended_us))
            oldest = r;
    }
    if (oldest)
        req_free(s, oldest);
    return oldest;
}

/* ---- sending ---- */

static uint64_t cookie_of(const sl_serve *s, const sl_peer *p) { return XXH3_64bits_withSeed(p->addr, p->alen, s->secret); }

/* Every message out.  A datagram source that has not proved its address
 * gets at most 3x the bytes it sent, then one COOKIE; what is held back
 * stays in its request's window and goes out when the cookie comes back. */
static void send_msg(sl_serve *s, sl_transport *t, const sl_peer *p, const uint8_t *msg, size_t n)
{
    if (!t->datagram)
        return t->send(t, p, msg, n);
    sl_client *c = sl_clients_get(&s->clients, p, sl_now_us());
    if (!c)
        return;
    if (!c->verified && c->out + n > 3 * c->in) {
        uint8_t b[SL_WIRE_HEADER + 8];
        size_t bn;
        if (!c->cookie_sent &&
            sl_wire_put_u64(b, sizeof b, SL_WIRE_COOKIE, 0, cookie_of(s, p), &bn, NULL) == SL_OK) {
            t->send(t, p, b, bn);
            c->cookie_sent = 1;
            c->out += bn;
        }
        return;
    }
    c->out += n;
    t->send(t, p, msg, n);
}

static void reply_error(sl_serve *s, sl_transport *t, const sl_peer *p, uint64_t rid, int code, const char *msg)
{
    uint8_t b[SL_WIRE_HEADER + 8 + SL_WIRE_ERRMSG_MAX];
    size_t n;
    s->st.errors++;
    s->st.by_code[code > 0 && code < SL_WERR_COUNT ? code : 0]++;
    if (sl_wire_put_error(b, sizeof b, rid, 0, (uint16_t)code, msg, &n, NULL) == SL_OK)
        send_msg(s, t, p, b, n);
}

/* A numbered reply of r (TOKENS, DONE or ERROR), kept to resend over
 * datagrams. */
static void req_send(sl_serve *s, req *r, const uint8_t *msg, size_t n)
{
    const uint32_t seq = r->seq++;
    send_msg(s, r->t, &r->peer, msg, n);
    if (!r->t->datagram)
        return;
    uint8_t **slot = &r->win[seq % WINDOW];
    free(*slot);
    *slot = malloc(n);
    if (*slot)
        memcpy(*slot, msg, n);
    r->win_len[seq % WINDOW] = *slot ? n : 0;
}

static void resend(sl_serve *s, req *r, uint32_t seq)
{
    if (seq < r->seq && seq + WINDOW >= r->seq && r->win[seq % WINDOW])
        send_msg(s, r->t, &r->peer, r->win[seq % WINDOW], r->win_len[seq % WINDOW]);
}

/* ---- the worker's events become replies ---- */

/* Chunks of at most the transport's ids and text per reply; text is cut
 * on character boundaries, and once the ids are out the rest of the text
 * goes in chunks of its own. */
static void send_tokens(sl_serve *s, req *r, const uint32_t *ids, int n, const uint8_t *text, size_t tlen)
{
    const int max_ids = r->t->max_reply_ids;
    const size_t max_text = r->t->max_reply_text;
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
        if (sl_wire_put_tokens(s->buf, BUF_CAP, r->rid, r->seq, ids + i, (uint16_t)k, (sl_wire_bytes){text + t, tl},
                               (sl_wire_bytes){NULL, 0}, &len, &err) == SL_OK)
            req_send(s, r, s->buf, len);
        else
            sl_log(SL_LOG_ERROR, "request %llu: %s", (unsigned long long)r->rid, err.msg);
        i += k, t += tl;
        if (!k && !tl)
            break;
    }
}

/* Not streaming: a token and its text kept until DONE. */
static void keep_token(req *r, uint32_t id, const uint8_t *text, size_t n)
{
    if (r->n_ids == r->cap_ids || r->tlen + n > r->tcap) {
        const int nc = r->cap_ids ? 2 * r->cap_ids : 256;
        size_t tc = r->tcap ? 2 * r->tcap : 4096;
        while (tc < r->tlen + n)
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
    memcpy(r->text + r->tlen, text, n);
    r->tlen += n;
}

static void on_token(sl_serve *s, req *r, int32_t token)
{
    const uint64_t now = sl_now_us();
    if (r->last_tok_us)
        sl_hist_observe(&s->st.itl, (double)(now - r->last_tok_us) / 1e6);
    r->last_tok_us = now;
    s->st.tokens++;
    if (r->orphan)
        return;
    char piece[256];
    size_t pn = sl_tok_piece(r->v->m->tok, r->prev, token, piece, sizeof piece);
    pn = pn < sizeof piece ? pn : sizeof piece;
    r->prev = token;
    uint8_t out[3 * (sizeof piece + 4)];
    const size_t on = sl_utf8_push(&r->u8, (const uint8_t *)piece, pn, out);
    const uint32_t id = (uint32_t)token;
    if (r->stream)
        send_tokens(s, r, &id, 1, out, on);
    else
        keep_token(r, id, out, on);
}

/* r's last event is in: its reference and its client's slot go back. */
static void finish(sl_serve *s, req *r, int keep_window)
{
    sl_registry_release(s->reg, r->v);
    r->v = NULL;
    sl_client *c = sl_clients_find(&s->clients, &r->peer);
    if (c && c->inflight > 0)
        c->inflight--;
    s->live--;
    if (keep_window && !r->orphan && r->t->datagram) {
        r->state = R_ENDED;
        r->ended_us = sl_now_us();
    } else
        req_free(s, r);
}

static int wire_code_of_failure(int failure)
{
    return failure == SL_SCHED_CANCELLED ? SL_WERR_CANCELLED
           : failure == SL_SCHED_DEADLINE ? SL_WERR_DEADLINE
                                          : SL_WERR_INTERNAL;
}

static void on_end(sl_serve *s, req *r, const sl_sched_event *ev)
{
    if (r->orphan)
        return finish(s, r, 0);
    uint8_t tail[3];
    const size_t tn = sl_utf8_flush(&r->u8, tail);
    if (r->stream && tn)
        send_tokens(s, r, NULL, 0, tail, tn);
    size_t len;
    if (ev->kind == SL_SCHED_DONE) {
        if (!r->stream) {
            if (tn && r->tlen + tn <= r->tcap)
                memcpy(r->text + r->tlen, tail, tn), r->tlen += tn;
            if (r->n_ids)
                send_tokens(s, r, r->ids, r->n_ids, r->text, r->tlen);
        }
        const sl_wire_done d = {.finish = ev->finish == SL_FIN_EOS ? SL_WIRE_FIN_EOS : SL_WIRE_FIN_LENGTH,
                                .prompt_tokens = (uint32_t)ev->prompt_tokens,
                                .generated_tokens = (uint32_t)ev->generated_tokens,
                                .queue_us = ev->queue_us, .ttft_us = ev->ttft_us, .total_us = ev->total_us,
                                .model_version = r->v->number,
                                .checksum = {(const uint8_t *)r->v->checksum, strlen(r->v->checksum)}};
        if (sl_wire_put_done(s->buf, BUF_CAP, r->rid, r->seq, &d, &len, NULL) == SL_OK)
            req_send(s, r, s->buf, len);
        s->st.served++;
        sl_hist_observe(&s->st.ttft, (double)ev->ttft_us / 1e6);
    } else {
        const int code = wire_code_of_failure(ev->failure);
        if (sl_wire_put_error(s->buf, BUF_CAP, r->rid, r->seq, (uint16_t)code, sl_wire_code_name(code), &len, NULL) ==
            SL_OK)
            req_send(s, r, s->buf, len);
        s->st.errors++;
        s->st.by_code[code]++;
    }
    finish(s, r, 1);
}

/* Typed reasons choose wire codes: never the message's words. */
static int wire_code_of_status(sl_status st)
{
    switch (st) {
    case SL_EBUSY: return SL_WERR_BUSY;
    case SL_ECONTEXT: return SL_WERR_CONTEXT_FULL;
    case SL_ENOMEM:
    case SL_EIO: return SL_WERR_INTERNAL;
    default: return SL_WERR_BAD_REQUEST;
    }
}

void sl_serve_events(sl_serve *s, const sl_work_event *ev, int n)
{
    for (int i = 0; i < n; i++) {
        req *r = by_sid(s, ev[i].ev.id);
        if (!r)
            continue;
        if (ev[i].refused) { /* never ran: answered like any other refusal */
            if (!r->orphan)
                reply_error(s, r->t, &r->peer, r->rid, wire_code_of_status(ev[i].refused),
                            ev[i].why ? ev[i].why : sl_status_name(ev[i].refused));
            finish(s, r, 0);
        } else if (ev[i].ev.kind == SL_SCHED_TOKEN)
            on_token(s, r, ev[i].ev.token);
        else
            on_end(s, r, &ev[i].ev);
    }
}

/* ---- requests in ---- */

/* One request from client c: NULL, or the reason for BUSY. */
static const char *admit_rate(sl_serve *s, sl_client *c)
{
    if (s->lim.rate <= 0)
        return NULL;
    const uint64_t now = sl_now_us();
    const double cap = s->lim.rate > 1 ? s->lim.rate : 1;
    c->tokens = c->bucket_us ? c->tokens + (double)(now - c->bucket_us) / 1e6 * s->lim.rate : cap;
    c->tokens = c->tokens > cap ? cap : c->tokens;
    c->bucket_us = now;
    if (c->tokens < 1)
        return "over this client's request rate";
    c->tokens -= 1;
    return NULL;
}

static int mac_ok(const sl_serve *s, const uint8_t *raw, const sl_wire_generate *g)
{
    for (int i = 0; g->mac && i < s->lim.n_keys; i++)
        if (s->lim.keys[i].id == g->key_id && sl_mac_verify(&s->lim.keys[i], raw, g))
            return 1;
    return 0;
}

/* The prompt as token ids (malloc'd), through the version's tokenizer for
 * text. */
static sl_status prompt_ids(const sl_version *v, const sl_wire_generate *g, int32_t **ids, size_t *n, sl_err *err)
{
    if (g->prompt_kind == SL_WIRE_TEXT)
        return sl_tok_encode(v->m->tok, (const char *)g->prompt, g->prompt_len,
                             !(g->options & SL_WIRE_O_NO_BOS) && sl_tok_add_bos(v->m->tok), ids, n, err);
    *ids = malloc(sizeof **ids * (g->prompt_len ? g->prompt_len : 1));
    if (!*ids)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    for (uint32_t i = 0; i < g->prompt_len; i++)
        (*ids)[i] = (int32_t)sl_wire_u32(g->prompt, i);
    *n = g->prompt_len;
    return SL_OK;
}

/* The one server-side shape of a request, built once from the message. */
static sl_sched_req sched_req_of(const sl_wire_generate *g, const sl_version *v, int32_t *ids, size_t n)
{
    sl_sched_req q = {.prompt = ids, .n_prompt = (int)n, .max_tokens = (int)g->max_tokens,
                      .stop_at_bos = v->m->stop_at_bos, .sampler = sl_sampler_defaults()};
    q.sampler.temp = g->temperature, q.sampler.top_k = (int)g->top_k, q.sampler.top_p = g->top_p;
    q.sampler.min_p = g->min_p, q.sampler.rep_penalty = g->repeat_penalty, q.sampler.seed = g->seed;
    q.sampler.rep_last_n = 64;
    if (g->deadline_ms)
        q.deadline_us = sl_now_us() + 1000ull * g->deadline_ms;
    return q;
}

static void generate(sl_serve *s, sl_transport *t, const sl_peer *p, const sl_wire_msg *m, const uint8_t *raw)
{
    const sl_wire_generate *g = &m->u.gen;
    const uint64_t rid = m->h.request_id;
    if ((g->mac || s->lim.require_mac) && !mac_ok(s, raw, g)) /* authenticated before anything else is looked at */
        return reply_error(s, t, p, rid, SL_WERR_UNAUTHORIZED,
                           g->mac ? "the MAC does not verify with that key" : "requests must carry a MAC");
    req *old = find_req(s, p, rid);
    if (old && t->datagram) { /* a repeat (or the cookie's echo): what was sent, again */
        for (uint32_t q = old->seq > WINDOW ? old->seq - WINDOW : 0; q < old->seq; q++)
            resend(s, old, q);
        return;
    }
    if (old)
        return reply_error(s, t, p, rid, SL_WERR_BAD_REQUEST, "request_id is already in flight");
    if (s->draining)
        return reply_error(s, t, p, rid, SL_WERR_BUSY, "draining: not taking requests");
    sl_client *c = sl_clients_get(&s->clients, p, sl_now_us());
    if (!c)
        return reply_error(s, t, p, rid, SL_WERR_BUSY, "too many requests in flight");
    c->pinned = !t->datagram;
    if (c->inflight >= s->lim.max_inflight)
        return reply_error(s, t, p, rid, SL_WERR_BUSY, "too many requests in flight from this client");
    const char *why = admit_rate(s, c);
    if (why)
        return reply_error(s, t, p, rid, SL_WERR_BUSY, why);
    if (g->max_tokens > (uint32_t)s->lim.max_tokens)
        return reply_error(s, t, p, rid, SL_WERR_BAD_REQUEST, "max_tokens is over this server's cap");
    if (g->n_stop || g->n_logprobs) /* refused, never silently ignored */
        return reply_error(s, t, p, rid, SL_WERR_BAD_REQUEST, "stop strings and log-probabilities are not served yet");
    sl_version *v = sl_registry_acquire(s->reg, (const char *)g->model.p, g->model.n);
    if (!v)
        return reply_error(s, t, p, rid, SL_WERR_UNKNOWN_MODEL, "no model of that name is loaded");
    req *r = req_slot(s);
    int32_t *ids = NULL;
    size_t n = 0;
    sl_err err = {0};
    int code = 0;
    sl_status st = SL_OK;
    if (!r)
        code = SL_WERR_BUSY, snprintf(err.msg, sizeof err.msg, "too many requests in flight");
    else if ((st = prompt_ids(v, g, &ids, &n, &err)))
        code = SL_WERR_INTERNAL;
    else if ((int)n > s->lim.max_prompt)
        code = SL_WERR_TOO_LARGE, snprintf(err.msg, sizeof err.msg, "the prompt is over this server's cap");
    sl_sched_req q = sched_req_of(g, v, ids, n);
    q.id = ++s->serial * MAX_REQS + (uint64_t)(r ? r - s->reqs : 0);
    if (!code && (st = sl_sched_check(v->s, &q, &err)))
        code = wire_code_of_status(st);
    if (code) {
        free(ids);
        sl_registry_release(s->reg, v);
        return reply_error(s, t, p, rid, code, err.msg);
    }
    *r = (req){.state = R_LIVE, .sid = q.id, .rid = rid, .v = v, .t = t, .peer = *p,
               .stream = (g->options & SL_WIRE_O_STREAM) != 0, .prev = -1};
    const int h = hash_of(s, p, rid);
    r->next = s->heads[h];
    s->heads[h] = (int)(r - s->reqs);
    c->inflight++;
    s->live++;
    sl_worker_submit(s->w, v, &q); /* the prompt is the worker's now */
}

/* A message that is refused whole: an ERROR to its request id when its
 * header is ours, else dropped and counted, never answered. */
static void refuse(sl_serve *s, sl_transport *t, const sl_peer *p, const uint8_t *b, size_t n, int code,
                   const char *why)
{
    sl_wire_header h;
    if (sl_wire_peek_header(b, n, &h, NULL) == SL_OK)
        reply_error(s, t, p, h.request_id, code, why);
    else
        s->st.dropped++, s->st.errors++;
}

static void on_msg(void *ctx, sl_transport *t, const sl_peer *p, const uint8_t *b, size_t n)
{
    sl_serve *s = ctx;
    sl_wire_msg m;
    sl_err err = {0};
    sl_client *c = NULL; /* a datagram source's */
    if (t->datagram && (c = sl_clients_get(&s->clients, p, sl_now_us()))) {
        c->in += n;
        sl_clients_heard(&s->clients, c, c->seen_us);
    }
    if (n > t->max_request) {
        char why[64];
        snprintf(why, sizeof why, "over %zu bytes: send it over TCP", t->max_request);
        return refuse(s, t, p, b, n, SL_WERR_TOO_LARGE, why);
    }
    if (sl_wire_decode(b, n, &m, &err) != SL_OK)
        return refuse(s, t, p, b, n, SL_WERR_BAD_REQUEST, err.msg);
    if (c && m.h.type == SL_WIRE_GENERATE && (m.h.flags & SL_WIRE_F_COOKIE) && m.u.gen.cookie == cookie_of(s, p))
        c->verified = 1;
    switch (m.h.type) {
    case SL_WIRE_GENERATE: generate(s, t, p, &m, b); break;
    case SL_WIRE_CANCEL: {
        req *r = find_req(s, p, m.h.request_id);
        if (r && r->state == R_LIVE)
            sl_worker_cancel(s->w, r->v, r->sid); /* its ERROR CANCELLED comes back as an event */
        break;
    }
    case SL_WIRE_PING: {
        size_t len;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (sl_wire_put_u64(s->buf, BUF_CAP, SL_WIRE_PONG, m.h.request_id,
                            (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u, &len, NULL) == SL_OK)
            send_msg(s, t, p, s->buf, len);
        break;
    }
    case SL_WIRE_RESEND: {
        req *r = t->datagram ? find_req(s, p, m.h.request_id) : NULL;
        for (int i = 0; r && i < m.u.resend.n; i++)
            resend(s, r, sl_wire_u32(m.u.resend.seqs, (size_t)i));
        break;
    }
    default: /* replies are not requests */
        reply_error(s, t, p, m.h.request_id, SL_WERR_BAD_REQUEST, "a reply type sent to the server");
    }
}

static void on_lost(void *ctx, sl_transport *t, const sl_peer *p, const char *why)
{
    reply_error(ctx, t, p, 0, SL_WERR_BAD_REQUEST, why); /* the stream is lost */
}

/* A closed stream cancels its requests; each is freed at its last event. */
static void on_gone(void *ctx, const sl_peer *p, const char *why)
{
    sl_serve *s = ctx;
    if (why)
        sl_log(SL_LOG_WARN, "connection %u: %s: closed", (unsigned)p->conn, why);
    for (int i = 0; i < MAX_REQS; i++) {
        req *r = &s->reqs[i];
        if (r->state == R_FREE || !sl_peer_equal(&r->peer, p))
            continue;
        if (r->state == R_LIVE && !r->orphan) {
            r->orphan = 1;
            sl_worker_cancel(s->w, r->v, r->sid);
        } else if (r->state == R_ENDED)
            req_free(s, r);
    }
    sl_client *c = sl_clients_find(&s->clients, p);
    if (c)
        sl_clients_drop(&s->clients, c);
}

/* ---- the rest ---- */

sl_status sl_serve_new(sl_registry *r, sl_worker *w, const sl_serve_limits *lim, sl_serve **out, sl_err *err)
{
    *out = NULL;
    sl_serve *s = calloc(1, sizeof *s);
    int nb = 1;
    while (nb < 2 * MAX_REQS)
        nb <<= 1;
    if (!s || !(s->reqs = calloc(MAX_REQS, sizeof *s->reqs)) || !(s->heads = malloc(sizeof *s->heads * (size_t)nb)) ||
        !(s->buf = malloc(BUF_CAP))) {
        if (s)
            free(s->reqs), free(s->heads);
        free(s);
        return sl_err_set(err, SL_ENOMEM, "out of memory for the request table");
    }
    s->mask = nb - 1;
    for (int i = 0; i < nb; i++)
        s->heads[i] = -1;
    for (int i = 0; i < MAX_REQS; i++)
        s->reqs[i].next = -1;
    sl_status st = sl_clients_init(&s->clients, MAX_CLIENTS, err);
    if (!st && getrandom(&s->secret, sizeof s->secret, 0) != sizeof s->secret)
        st = sl_err_errno(err, SL_EIO, "no random bytes for the cookie key");
    if (st) {
        sl_serve_free(s);
        return st;
    }
    s->reg = r, s->w = w, s->lim = *lim;
    s->st.ttft.le = s->st.itl.le = sl_hist_seconds;
    s->rx = (sl_rx){.ctx = s, .msg = on_msg, .lost = on_lost, .gone = on_gone};
    *out = s;
    return SL_OK;
}

void sl_serve_set_limits(sl_serve *s, const sl_serve_limits *lim) { s->lim = *lim; }
const sl_rx *sl_serve_rx(sl_serve *s) { return &s->rx; }
void sl_serve_drain(sl_serve *s) { s->draining = 1; }
int sl_serve_draining(const sl_serve *s) { return s->draining; }
int sl_serve_live(const sl_serve *s) { return s->live; }
const sl_serve_stats *sl_serve_stats_of(const sl_serve *s) { return &s->st; }

void sl_serve_tick(sl_serve *s, uint64_t now)
{
    if (now - s->last_tick < TICK_US)
        return;
    s->last_tick = now;
    for (int i = 0; i < MAX_REQS; i++)
        if (s->reqs[i].state == R_ENDED && now - s->reqs[i].ended_us > KEEP_US)
            req_free(s, &s->reqs[i]);
}

void sl_serve_free(sl_serve *s)
{
    if (!s)
        return;
    for (int i = 0; s->reqs && i < MAX_REQS; i++)
        if (s->reqs[i].state != R_FREE) {
            sl_registry_release(s->reg, s->reqs[i].v);
            req_free(s, &s->reqs[i]);
        }
    sl_clients_free(&s->clients);
    free(s->reqs);
    free(s->heads);
    free(s->buf);
    free(s);
}
