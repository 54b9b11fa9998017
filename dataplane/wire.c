/* wire.c - the wire protocol's codec (sl_wire.h, docs/protocol.md). */
#include <math.h>
#include <string.h>

#include "sl_le.h"
#include "sl_utf8.h"
#include "sl_wire.h"

static const char *const code_names[SL_WERR_COUNT] = {
    "?",     "BAD_REQUEST", "UNKNOWN_MODEL", "TOO_LARGE", "CONTEXT_FULL", "BUSY", "CANCELLED", "DEADLINE",
    "INTERNAL", "UNAUTHORIZED", "UNVERIFIED"};

const char *sl_wire_code_name(int code) { return code > 0 && code < SL_WERR_COUNT ? code_names[code] : "?"; }

/* ---- reading: the first failure wins, later reads return zeros ---- */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
    sl_status st;
    sl_err *err;
} rd;

static const uint8_t *take(rd *r, size_t k, const char *what)
{
    if (r->st)
        return NULL;
    if (k > r->n - r->off) {
        r->st = sl_err_set(r->err, SL_EFORMAT, "truncated: %s needs %zu bytes at offset %zu, %zu left", what, k, r->off,
                           r->n - r->off);
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += k;
    return q;
}

/* k (1, 2, 4 or 8) bytes as the low bytes of a little-endian u64; zero
 * once reading has failed (take() answers NULL). */
static uint64_t le(rd *r, size_t k, const char *w)
{
    uint8_t b[8] = {0};
    const uint8_t *q = take(r, k, w);
    if (q)
        memcpy(b, q, k);
    return sl_le_load_u64(b);
}

static uint8_t u8(rd *r, const char *w) { return (uint8_t)le(r, 1, w); }
static uint16_t u16(rd *r, const char *w) { return (uint16_t)le(r, 2, w); }
static uint32_t u32(rd *r, const char *w) { return (uint32_t)le(r, 4, w); }
static uint64_t u64(rd *r, const char *w) { return le(r, 8, w); }
static float f32(rd *r, const char *w)
{
    const uint32_t b = u32(r, w);
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* A range check on a decoded field; the first failure wins. */
static void check(rd *r, int ok, const char *fmt_field, double v)
{
    if (!r->st && !ok)
        r->st = sl_err_set(r->err, SL_ERANGE, "%s = %g is out of range", fmt_field, v);
}

static sl_wire_bytes text(rd *r, size_t n, const char *what, int nul)
{
    sl_wire_bytes b = {take(r, n, what), n};
    if (!r->st && !sl_utf8_valid(b.p, n, nul))
        r->st = sl_err_set(r->err, SL_EFORMAT, "%s is not well-formed UTF-8%s", what, nul ? "" : " (or holds a NUL)");
    return b;
}

static bool model_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

bool sl_wire_model_name_ok(const char *s, size_t n)
{
    if (n < 1 || n > SL_WIRE_MODEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!model_char((uint8_t)s[i]))
            return false;
    return true;
}

static int known_type(int t)
{
    return (t >= SL_WIRE_GENERATE && t <= SL_WIRE_RESEND) || (t >= SL_WIRE_TOKENS && t <= SL_WIRE_COOKIE);
}

static void header(rd *r, sl_wire_header *h)
{
    const uint32_t magic = u32(r, "magic");
    if (!r->st && magic != SL_WIRE_MAGIC)
        r->st = sl_err_set(r->err, SL_EFORMAT, "not a sluice message (magic 0x%08x)", magic);
    h->version = u8(r, "version");
    h->type = u8(r, "type");
    h->flags = u16(r, "flags");
    h->request_id = u64(r, "request_id");
    h->body_len = u32(r, "body_len");
    h->seq = u32(r, "seq");
    if (r->st)
        return;
    if (h->version != SL_WIRE_VERSION)
        r->st = sl_err_set(r->err, SL_EUNSUPPORTED, "protocol version %u (this side speaks %d)", h->version,
                           SL_WIRE_VERSION);
    else if (!known_type(h->type))
        r->st = sl_err_set(r->err, SL_EFORMAT, "unknown message type %u", h->type);
    else if (h->flags & ~(h->type == SL_WIRE_GENERATE ? (SL_WIRE_F_COOKIE | SL_WIRE_F_MAC) : 0))
        r->st = sl_err_set(r->err, SL_EFORMAT, "flags 0x%x are not defined for message type %u", h->flags, h->type);
    else if (h->body_len > SL_WIRE_MAX_BODY)
        r->st = sl_err_set(r->err, SL_ERANGE, "body_len %u is over %u", h->body_len, SL_WIRE_MAX_BODY);
    else if ((h->type < SL_WIRE_TOKENS || h->type >= SL_WIRE_PONG) && h->seq)
        r->st = sl_err_set(r->err, SL_EFORMAT, "a type %u message carries seq %u (only replies to GENERATE count)",
                           h->type, h->seq);
}

sl_status sl_wire_peek_header(const uint8_t *buf, size_t len, sl_wire_header *h, sl_err *err)
{
    memset(h, 0, sizeof *h);
    if (len < SL_WIRE_HEADER)
        return sl_err_set(err, SL_EFORMAT, "%zu bytes: shorter than the %d-byte header", len, SL_WIRE_HEADER);
    rd r = {buf, SL_WIRE_HEADER, 0, SL_OK, err};
    header(&r, h);
    return r.st;
}

sl_status sl_wire_peek(const uint8_t *buf, size_t len, size_t *frame_len, sl_err *err)
{
    *frame_len = 0;
    if (len < SL_WIRE_HEADER)
        return SL_OK;
    sl_wire_header h;
    const sl_status st = sl_wire_peek_header(buf, len, &h, err);
    if (!st)
        *frame_len = SL_WIRE_HEADER + (size_t)h.body_len;
    return st;
}

static void generate(rd *r, uint16_t flags, sl_wire_generate *g)
{
    const uint8_t ml = u8(r, "model_len");
    check(r, ml >= 1 && ml <= SL_WIRE_MODEL_MAX, "model_len", ml);
    g->model = (sl_wire_bytes){take(r, ml, "model"), ml};
    if (!r->st && !sl_wire_model_name_ok((const char *)g->model.p, ml)) { /* its length is in range: name the byte */
        size_t i = 0;
        while (model_char(g->model.p[i]))
            i++;
        r->st = sl_err_set(r->err, SL_EFORMAT, "model name byte %zu (0x%02x) is not A-Z a-z 0-9 . _ -", i,
                           g->model.p[i]);
    }
    g->prompt_kind = u8(r, "prompt_kind");
    check(r, g->prompt_kind <= SL_WIRE_IDS, "prompt_kind", g->prompt_kind);
    g->prompt_len = u32(r, "prompt_len");
    if (g->prompt_kind == SL_WIRE_TEXT) {
        check(r, g->prompt_len <= SL_WIRE_TEXT_MAX, "prompt_len (text bytes)", g->prompt_len);
        g->prompt = text(r, g->prompt_len, "prompt", 0).p;
    } else {
        check(r, g->prompt_len >= 1 && g->prompt_len <= SL_WIRE_IDS_MAX, "prompt_len (ids)", g->prompt_len);
        g->prompt = take(r, r->st ? 0 : 4 * (size_t)g->prompt_len, "prompt ids");
    }
    g->max_tokens = u32(r, "max_tokens");
    check(r, g->max_tokens >= 1 && g->max_tokens <= SL_WIRE_MAX_TOKENS, "max_tokens", g->max_tokens);
    g->temperature = f32(r, "temperature");
    check(r, g->temperature >= 0.0f && g->temperature <= 16.0f, "temperature", g->temperature);
    g->top_k = u32(r, "top_k");
    check(r, g->top_k <= (1u << 20), "top_k", g->top_k);
    g->top_p = f32(r, "top_p");
    check(r, g->top_p > 0.0f && g->top_p <= 1.0f, "top_p", g->top_p);
    g->min_p = f32(r, "min_p");
    check(r, g->min_p >= 0.0f && g->min_p < 1.0f, "min_p", g->min_p);
    g->repeat_penalty = f32(r, "repeat_penalty");
    check(r, g->repeat_penalty >= 1.0f && g->repeat_penalty <= 16.0f, "repeat_penalty", g->repeat_penalty);
    g->seed = u64(r, "seed");
    g->deadline_ms = u32(r, "deadline_ms");
    check(r, g->deadline_ms <= SL_WIRE_DEADLINE_MAX, "deadline_ms", g->deadline_ms);
    g->options = u8(r, "options");
    check(r, !(g->options & ~(SL_WIRE_O_STREAM | SL_WIRE_O_NO_BOS)), "options", g->options);
    g->n_logprobs = u8(r, "n_logprobs");
    check(r, g->n_logprobs <= SL_WIRE_LOGPROBS_MAX, "n_logprobs", g->n_logprobs);
    g->n_stop = u8(r, "n_stop");
    check(r, g->n_stop <= SL_WIRE_STOPS_MAX, "n_stop", g->n_stop);
    for (int i = 0; !r->st && i < g->n_stop; i++) {
        const uint8_t sl = u8(r, "stop length");
        check(r, sl >= 1 && sl <= SL_WIRE_STOP_LEN_MAX, "stop length", sl);
        g->stop[i] = text(r, sl, "stop string", 0);
    }
    g->cookie = flags & SL_WIRE_F_COOKIE ? u64(r, "cookie") : 0;
    if (flags & SL_WIRE_F_MAC) {
        g->key_id = u32(r, "key_id");
        g->mac_covered = r->off;
        g->mac = take(r, SL_WIRE_MAC_LEN, "mac");
    }
}

static void tokens(rd *r, sl_wire_tokens *t)
{
    t->n = u16(r, "token count");
    check(r, t->n <= SL_WIRE_CHUNK_MAX, "token count", t->n);
    t->ids = take(r, r->st ? 0 : 4 * (size_t)t->n, "token ids");
    t->text = text(r, u16(r, "text_len"), "token text", 1);
    if (!r->st && !t->n && !t->text.n)
        r->st = sl_err_set(r->err, SL_EFORMAT, "an empty TOKENS (token count 0 and no text)");
    if (r->st || r->off == r->n)
        return;
    const size_t start = r->off; /* log-probabilities: one entry per token, nothing after */
    for (int i = 0; !r->st && i < t->n; i++) {
        const uint8_t k = u8(r, "logprob count");
        check(r, k <= SL_WIRE_LOGPROBS_MAX, "logprob count", k);
        for (int j = 0; !r->st && j < k; j++) {
            (void)u32(r, "logprob id");
            const float lp = f32(r, "logprob");
            check(r, lp <= 0.0f, "logprob", lp); /* NaN fails too */
        }
    }
    t->logprobs = (sl_wire_bytes){r->p + start, r->off - start};
}

static void done(rd *r, sl_wire_done *d)
{
    d->finish = u8(r, "finish");
    check(r, d->finish <= SL_WIRE_FIN_CONTEXT, "finish", d->finish);
    d->prompt_tokens = u32(r, "prompt_tokens");
    d->generated_tokens = u32(r, "generated_tokens");
    d->queue_us = u64(r, "queue_us");
    d->ttft_us = u64(r, "ttft_us");
    d->total_us = u64(r, "total_us");
    d->model_version = u64(r, "model_version");
    const uint8_t cl = u8(r, "checksum_len");
    check(r, cl <= SL_WIRE_CHECKSUM_MAX, "checksum_len", cl);
    d->checksum = (sl_wire_bytes){take(r, cl, "checksum"), cl};
    for (size_t i = 0; !r->st && i < cl; i++)
        if (d->checksum.p[i] < 0x21 || d->checksum.p[i] > 0x7e)
            r->st = sl_err_set(r->err, SL_EFORMAT, "checksum byte %zu is not printable ASCII", i);
}

sl_status sl_wire_decode(const uint8_t *buf, size_t len, sl_wire_msg *m, sl_err *err)
{
    memset(m, 0, sizeof *m);
    rd r = {buf, len, 0, SL_OK, err};
    header(&r, &m->h);
    if (!r.st && len - SL_WIRE_HEADER != m->h.body_len)
        r.st = sl_err_set(err, SL_EFORMAT, "body_len %u, but %zu bytes follow the header", m->h.body_len,
                          len - SL_WIRE_HEADER);
    if (r.st)
        return r.st;
    switch (m->h.type) {
    case SL_WIRE_GENERATE: generate(&r, m->h.flags, &m->u.gen); break;
    case SL_WIRE_RESEND:
        m->u.resend.n = u16(&r, "resend count");
        check(&r, m->u.resend.n >= 1 && m->u.resend.n <= SL_WIRE_RESEND_MAX, "resend count", m->u.resend.n);
        m->u.resend.seqs = take(&r, r.st ? 0 : 4 * (size_t)m->u.resend.n, "resend seqs");
        break;
    case SL_WIRE_TOKENS: tokens(&r, &m->u.tokens); break;
    case SL_WIRE_DONE: done(&r, &m->u.done); break;
    case SL_WIRE_ERROR:
        m->u.error.code = u16(&r, "error code");
        check(&r, m->u.error.code >= 1 && m->u.error.code < SL_WERR_COUNT, "error code", m->u.error.code);
        m->u.error.msg = text(&r, u16(&r, "error msg_len"), "error message", 0);
        check(&r, m->u.error.msg.n <= SL_WIRE_ERRMSG_MAX, "error msg_len", (double)m->u.error.msg.n);
        break;
    case SL_WIRE_PONG:
    case SL_WIRE_COOKIE: m->u.value = u64(&r, m->h.type == SL_WIRE_PONG ? "time" : "cookie"); break;
    default: break; /* CANCEL, PING: no body */
    }
    if (!r.st && r.off != len)
        r.st = sl_err_set(err, SL_EFORMAT, "%zu trailing bytes after a type %u message", len - r.off, m->h.type);
    return r.st;
}

/* ---- writing: overflow is remembered and reported once ---- */

typedef struct wr {
    uint8_t *p;
    size_t cap, off;
    int over;
} wr;

static void put(wr *w, const void *src, size_t k)
{
    if (w->over || k > w->cap - w->off) {
        w->over = 1;
        return;
    }
    if (k)
        memcpy(w->p + w->off, src, k);
    w->off += k;
}

/* The low k (1, 2, 4 or 8) bytes of v: the first k of its little-endian form. */
static void put_le(wr *w, uint64_t v, int k)
{
    uint8_t b[8];
    sl_le_store_u64(b, v);
    put(w, b, (size_t)k);
}

static void put_f32(wr *w, float f)
{
    uint8_t b[4];
    sl_le_store_f32(b, f);
    put(w, b, sizeof b);
}

static void begin(wr *w, int type, uint16_t flags, uint64_t request_id, uint32_t seq)
{
    put_le(w, SL_WIRE_MAGIC, 4);
    put_le(w, SL_WIRE_VERSION, 1);
    put_le(w, (uint64_t)type, 1);
    put_le(w, flags, 2);
    put_le(w, request_id, 8);
    put_le(w, 0, 4); /* body_len, set by finish */
    put_le(w, seq, 4);
}

/* Sets body_len and checks the result against the contract by decoding it. */
static sl_status finish(wr *w, size_t *len, sl_err *err)
{
    *len = 0;
    if (w->over)
        return sl_err_set(err, SL_ERANGE, "the message does not fit %zu bytes", w->cap);
    const size_t body = w->off - SL_WIRE_HEADER;
    sl_le_store_u32(w->p + 16, (uint32_t)body);
    sl_wire_msg m;
    sl_status st = sl_wire_decode(w->p, w->off, &m, err);
    if (st)
        return sl_err_prefix(err, SL_ERANGE, "refusing to send it");
    *len = w->off;
    return SL_OK;
}

sl_status sl_wire_put_generate(uint8_t *out, size_t cap, uint64_t request_id, uint16_t flags, const sl_wire_generate *g,
                               size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    begin(&w, SL_WIRE_GENERATE, flags, request_id, 0);
    put_le(&w, g->model.n, 1);
    put(&w, g->model.p, g->model.n > 255 ? 0 : g->model.n);
    put_le(&w, g->prompt_kind, 1);
    put_le(&w, g->prompt_len, 4);
    put(&w, g->prompt, g->prompt_kind == SL_WIRE_IDS ? 4 * (size_t)g->prompt_len : g->prompt_len);
    put_le(&w, g->max_tokens, 4);
    put_f32(&w, g->temperature);
    put_le(&w, g->top_k, 4);
    put_f32(&w, g->top_p);
    put_f32(&w, g->min_p);
    put_f32(&w, g->repeat_penalty);
    put_le(&w, g->seed, 8);
    put_le(&w, g->deadline_ms, 4);
    put_le(&w, g->options, 1);
    put_le(&w, g->n_logprobs, 1);
    put_le(&w, g->n_stop, 1);
    for (int i = 0; i < g->n_stop && i < SL_WIRE_STOPS_MAX; i++) {
        put_le(&w, g->stop[i].n, 1);
        put(&w, g->stop[i].p, g->stop[i].n > 255 ? 0 : g->stop[i].n);
    }
    if (flags & SL_WIRE_F_COOKIE)
        put_le(&w, g->cookie, 8);
    if (flags & SL_WIRE_F_MAC) {
        put_le(&w, g->key_id, 4);
        if (g->mac)
            put(&w, g->mac, SL_WIRE_MAC_LEN);
        else
            w.over = 1;
    }
    return finish(&w, len, err);
}

sl_status sl_wire_put_empty(uint8_t *out, size_t cap, int type, uint64_t request_id, size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    if (type != SL_WIRE_CANCEL && type != SL_WIRE_PING)
        return sl_err_set(err, SL_EINVAL, "type %d has a body", type);
    begin(&w, type, 0, request_id, 0);
    return finish(&w, len, err);
}

static void put_u32s(wr *w, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put_le(w, v[i], 4);
}

sl_status sl_wire_put_resend(uint8_t *out, size_t cap, uint64_t request_id, const uint32_t *seqs, uint16_t n,
                             size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    begin(&w, SL_WIRE_RESEND, 0, request_id, 0);
    put_le(&w, n, 2);
    put_u32s(&w, seqs, n);
    return finish(&w, len, err);
}

sl_status sl_wire_put_tokens(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, const uint32_t *ids,
                             uint16_t n, sl_wire_bytes text, sl_wire_bytes logprobs, size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    begin(&w, SL_WIRE_TOKENS, 0, request_id, seq);
    put_le(&w, n, 2);
    put_u32s(&w, ids, n);
    put_le(&w, text.n, 2);
    put(&w, text.p, text.n > 65535 ? 0 : text.n);
    put(&w, logprobs.p, logprobs.n);
    return finish(&w, len, err);
}

sl_status sl_wire_put_done(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, const sl_wire_done *d,
                           size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    begin(&w, SL_WIRE_DONE, 0, request_id, seq);
    put_le(&w, d->finish, 1);
    put_le(&w, d->prompt_tokens, 4);
    put_le(&w, d->generated_tokens, 4);
    put_le(&w, d->queue_us, 8);
    put_le(&w, d->ttft_us, 8);
    put_le(&w, d->total_us, 8);
    put_le(&w, d->model_version, 8);
    put_le(&w, d->checksum.n, 1);
    put(&w, d->checksum.p, d->checksum.n > 255 ? 0 : d->checksum.n);
    return finish(&w, len, err);
}

sl_status sl_wire_put_error(uint8_t *out, size_t cap, uint64_t request_id, uint32_t seq, uint16_t code,
                            const char *msg, size_t *len, sl_err *err)
{
    wr w = {out, cap, 0, 0};
    /* a message too long for the contract is cut, at a character boundary */
    size_t n = msg ? strlen(msg) : 0;
    if (n > SL_WIRE_ERRMSG_MAX) {
        n = SL_WIRE_ERRMSG_MAX;
        while (n && ((uint8_t)msg[n] & 0xc0) == 0x80)
            n--;
    }
    begin(&w, SL_WIRE_ERROR, 0, request_id, seq);
    put_le(&w, code, 2);
    put_le(&w, n, 2);
    put(&w, msg, n);
    return finish(&w, len, err);
}

sl_status sl_wire_put_u64(uint8_t *out, size_t cap, int type, uint64_t request_id, uint64_t value, size_t *len,
                          sl_err *err)
{
    wr w = {out, cap, 0, 0};
    if (type != SL_WIRE_PONG && type != SL_WIRE_COOKIE)
        return sl_err_set(err, SL_EINVAL, "type %d does not carry a u64", type);
    begin(&w, type, 0, request_id, 0);
    put_le(&w, value, 8);
    return finish(&w, len, err);
}

sl_status sl_wire_encode(const sl_wire_msg *m, uint8_t *out, size_t cap, size_t *len, sl_err *err)
{
    uint32_t v[SL_WIRE_CHUNK_MAX]; /* ids or seqs, from their little-endian bytes */
    switch (m->h.type) {
    case SL_WIRE_GENERATE: return sl_wire_put_generate(out, cap, m->h.request_id, m->h.flags, &m->u.gen, len, err);
    case SL_WIRE_CANCEL:
    case SL_WIRE_PING: return sl_wire_put_empty(out, cap, m->h.type, m->h.request_id, len, err);
    case SL_WIRE_RESEND:
        for (int i = 0; i < m->u.resend.n && i < SL_WIRE_RESEND_MAX; i++)
            v[i] = sl_wire_u32(m->u.resend.seqs, (size_t)i);
        return sl_wire_put_resend(out, cap, m->h.request_id, v, m->u.resend.n, len, err);
    case SL_WIRE_TOKENS:
        for (int i = 0; i < m->u.tokens.n && i < SL_WIRE_CHUNK_MAX; i++)
            v[i] = sl_wire_u32(m->u.tokens.ids, (size_t)i);
        return sl_wire_put_tokens(out, cap, m->h.request_id, m->h.seq, v, m->u.tokens.n, m->u.tokens.text,
                                  m->u.tokens.logprobs, len, err);
    case SL_WIRE_DONE: return sl_wire_put_done(out, cap, m->h.request_id, m->h.seq, &m->u.done, len, err);
    case SL_WIRE_ERROR: {
        char msg[SL_WIRE_ERRMSG_MAX + 1];
        memcpy(msg, m->u.error.msg.p, m->u.error.msg.n <= SL_WIRE_ERRMSG_MAX ? m->u.error.msg.n : 0);
        msg[m->u.error.msg.n <= SL_WIRE_ERRMSG_MAX ? m->u.error.msg.n : 0] = 0;
        return sl_wire_put_error(out, cap, m->h.request_id, m->h.seq, m->u.error.code, msg, len, err);
    }
    case SL_WIRE_PONG:
    case SL_WIRE_COOKIE: return sl_wire_put_u64(out, cap, m->h.type, m->h.request_id, m->u.value, len, err);
    }
    return sl_err_set(err, SL_EINVAL, "unknown message type %u", m->h.type);
}
