/* sched.c - the continuous-batching scheduler (sl_sched.h). */
#include <stdlib.h>
#include <string.h>

#include "sl_clock.h"
#include "sl_sched.h"
#include "sl_tokenizer.h"

typedef struct seq {
    uint64_t id;
    int32_t *tok;       /* prompt, then what was generated */
    int n_prompt, max_tokens, n_gen;
    int done;           /* positions already in the KV cache */
    int kv;             /* KV sequence, -1 while queued */
    int stop_at_bos;
    int gone;           /* finished or failed: no more events, freed by reap() */
    sl_sampler smp;
    uint64_t t_submit, t_start, t_first, deadline;
} seq;

struct sl_sched {
    sl_engine *e;
    const sl_model *m;
    sl_sched_cfg cfg;
    sl_sched_cb cb;
    void *ctx;
    int max_seqs;
    seq **queue;  /* FIFO ring of max_queue */
    int q_head, q_len;
    seq **run;    /* running, in admission order (prompt chunks go in this order) */
    int n_run;
    int in_cb;    /* callbacks running: a cancel from one marks its request gone, never frees it */
    sl_chunk *chunks;
    seq **chunk_seq;
    float *logits;
    int bos, eos;
    sl_sched_stats st;
};

sl_status sl_sched_create(sl_engine *e, const sl_sched_cfg *cfg, sl_sched_cb cb, void *ctx, sl_sched **out,
                          sl_err *err)
{
    *out = NULL;
    sl_sched *s = calloc(1, sizeof *s);
    if (!s)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    s->e = e;
    s->m = sl_engine_model(e);
    s->cb = cb;
    s->ctx = ctx;
    s->cfg.max_queue = cfg && cfg->max_queue > 0 ? cfg->max_queue : 256;
    s->cfg.step_tokens = cfg && cfg->step_tokens > 0 ? cfg->step_tokens : 256;
    s->max_seqs = sl_engine_kv(e)->max_seqs;
    if (s->cfg.step_tokens < s->max_seqs) /* every decoder moves every step */
        s->cfg.step_tokens = s->max_seqs;
    s->cfg.prompt_chunk = cfg && cfg->prompt_chunk > 0 ? cfg->prompt_chunk : 64;
    const int slots = s->max_seqs;
    s->queue = calloc((size_t)s->cfg.max_queue, sizeof *s->queue);
    s->run = calloc((size_t)slots, sizeof *s->run);
    s->chunks = calloc((size_t)slots, sizeof *s->chunks);
    s->chunk_seq = calloc((size_t)slots, sizeof *s->chunk_seq);
    s->logits = malloc(sizeof(float) * (size_t)slots * (size_t)s->m->vocab);
    if (!s->queue || !s->run || !s->chunks || !s->chunk_seq || !s->logits) {
        sl_sched_destroy(s);
        return sl_err_set(err, SL_ENOMEM, "out of memory for a scheduler of %d sequences", slots);
    }
    s->bos = sl_tok_bos(s->m->tok);
    s->eos = sl_tok_eos(s->m->tok);
    s->st.kv_blocks_total = sl_engine_kv(e)->n_blocks;
    *out = s;
    return SL_OK;
}

static void seq_free(sl_sched *s, seq *q)
{
    if (!q)
        return;
    if (q->kv >= 0)
        sl_kv_seq_free(sl_engine_kv(s->e), q->kv);
    sl_sampler_free(&q->smp);
    free(q->tok);
    free(q);
}

void sl_sched_destroy(sl_sched *s)
{
    if (!s)
        return;
    for (int i = 0; s->queue && i < s->q_len; i++)
        seq_free(s, s->queue[(s->q_head + i) % s->cfg.max_queue]);
    for (int i = 0; s->run && i < s->n_run; i++)
        seq_free(s, s->run[i]);
    free(s->queue);
    free(s->run);
    free(s->chunks);
    free(s->chunk_seq);
    free(s->logits);
    free(s);
}

static seq *find(const sl_sched *s, uint64_t id, int *where, int *index)
{
    for (int i = 0; i < s->n_run; i++)
        if (s->run[i]->id == id) {
            *where = 1, *index = i;
            return s->run[i];
        }
    for (int i = 0; i < s->q_len; i++) {
        seq *q = s->queue[(s->q_head + i) % s->cfg.max_queue];
        if (q->id == id) {
            *where = 0, *index = i;
            return q;
        }
    }
    return NULL;
}

sl_status sl_sched_check(const sl_sched *s, const sl_sched_req *r, sl_err *err)
{
    const int ctx = sl_engine_ctx(s->e);
    if (r->n_prompt < 1 || !r->prompt || r->max_tokens < 1)
        return sl_err_set(err, SL_EINVAL, "request %llu: a prompt of at least one token and max_tokens >= 1 are needed",
                          (unsigned long long)r->id);
    for (int k = 0; k < r->n_prompt; k++)
        if (r->prompt[k] < 0 || r->prompt[k] >= s->m->vocab)
            return sl_err_set(err, SL_ERANGE, "request %llu: token %d of the prompt is %d, outside 0..%d",
                              (unsigned long long)r->id, k, r->prompt[k], s->m->vocab - 1);
    const long long need = (long long)r->n_prompt + r->max_tokens;
    if (need > ctx || sl_kv_blocks_for((int)need) > sl_engine_kv(s->e)->n_blocks)
        return sl_err_set(err, SL_ECONTEXT,
                          "context full: request %llu needs %lld positions (prompt %d + max_tokens %d); the context "
                          "holds %d and the KV pool %d",
                          (unsigned long long)r->id, need, r->n_prompt, r->max_tokens, ctx,
                          sl_engine_kv(s->e)->n_blocks * SL_KV_BLOCK);
    const sl_status st = sl_sampler_check(&r->sampler, s->m->vocab, err);
    return st ? sl_err_prefix(err, st, "request %llu", (unsigned long long)r->id) : SL_OK;
}

sl_status sl_sched_submit(sl_sched *s, const sl_sched_req *r, sl_err *err)
{
    int w, i;
    sl_status st = sl_sched_check(s, r, err);
    if (st)
        return st;
    if (find(s, r->id, &w, &i))
        return sl_err_set(err, SL_EINVAL, "request %llu is already live", (unsigned long long)r->id);
    const long long need = (long long)r->n_prompt + r->max_tokens;
    if (s->q_len == s->cfg.max_queue)
        return sl_err_set(err, SL_EBUSY, "busy: %d requests are waiting", s->q_len);
    seq *q = calloc(1, sizeof *q);
    int32_t *tok = q ? malloc(sizeof(int32_t) * (size_t)need) : NULL;
    if (!tok) {
        free(q);
        return sl_err_set(err, SL_ENOMEM, "out of memory for request %llu", (unsigned long long)r->id);
    }
    st = sl_sampler_init(&q->smp, &r->sampler, s->m->vocab, err);
    if (st) {
        free(tok);
        free(q);
        return sl_err_prefix(err, st, "request %llu", (unsigned long long)r->id);
    }
    memcpy(tok, r->prompt, sizeof(int32_t) * (size_t)r->n_prompt);
    *q = (seq){.id = r->id, .tok = tok, .n_prompt = r->n_prompt, .max_tokens = r->max_tokens, .kv = -1,
               .stop_at_bos = r->stop_at_bos, .smp = q->smp, .t_submit = sl_now_us(), .deadline = r->deadline_us};
    s->queue[(s->q_head + s->q_len++) % s->cfg.max_queue] = q;
    return SL_OK;
}

/* An event for q, unless q is gone.  The callback may cancel requests,
 * this one included (a client hung up): they are only marked gone then, so
 * every seq the caller holds stays valid until reap(). */
static void emit(sl_sched *s, const seq *q, sl_sched_event_kind kind, int32_t token, int code)
{
    if (q->gone)
        return;
    const uint64_t now = sl_now_us();
    sl_sched_event ev = {.kind = kind, .id = q->id, .token = token, .prompt_tokens = q->n_prompt,
                         .generated_tokens = q->n_gen};
    if (kind == SL_SCHED_DONE) {
        ev.finish = code;
        ev.queue_us = (q->t_start ? q->t_start : now) - q->t_submit;
        ev.ttft_us = q->t_first ? q->t_first - q->t_submit : 0;
        ev.total_us = now - q->t_submit;
    } else if (kind == SL_SCHED_FAILED)
        ev.failure = code;
    if (s->cb) {
        s->in_cb++;
        s->cb(s->ctx, &ev);
        s->in_cb--;
    }
}

/* q's last event: failed with this code, and marked gone. */
static void fail(sl_sched *s, seq *q, int code)
{
    emit(s, q, SL_SCHED_FAILED, -1, code);
    s->st.failed++;
    q->gone = 1;
}

/* Takes running sequence i out of the batch (order kept) and frees it. */
static void retire(sl_sched *s, int i)
{
    seq *q = s->run[i];
    memmove(s->run + i, s->run + i + 1, sizeof *s->run * (size_t)(s->n_run - i - 1));
    s->n_run--;
    seq_free(s, q);
}

static void unqueue(sl_sched *s, int i)
{
    const int cap = s->cfg.max_queue;
    seq *q = s->queue[(s->q_head + i) % cap];
    for (int k = i; k > 0; k--) /* close the gap from the front */
        s->queue[(s->q_head + k) % cap] = s->queue[(s->q_head + k - 1) % cap];
    s->q_head = (s->q_head + 1) % cap;
    s->q_len--;
    seq_free(s, q);
}

/* Frees what is gone, running or queued (order kept) - unless a callback
 * is running, whose caller still holds them and reaps them after. */
static void reap(sl_sched *s)
{
    if (s->in_cb)
        return;
    for (int i = 0; i < s->n_run;)
        if (s->run[i]->gone)
            retire(s, i);
        else
            i++;
    for (int i = 0; i < s->q_len;)
        if (s->queue[(s->q_head + i) % s->cfg.max_queue]->gone)
            unqueue(s, i);
        else
            i++;
}

sl_status sl_sched_cancel(sl_sched *s, uint64_t id)
{
    int where, i;
    seq *q = find(s, id, &where, &i);
    if (!q || q->gone)
        return SL_ENOTFOUND;
    fail(s, q, SL_SCHED_CANCELLED);
    reap(s);
    return SL_OK;
}

/* Requests whose deadline passed, queued or running, fail now. */
static void expire(sl_sched *s, uint64_t now)
{
    for (int i = 0; i < s->n_run; i++)
        if (s->run[i]->deadline && now >= s->run[i]->deadline)
            fail(s, s->run[i], SL_SCHED_DEADLINE);
    for (int i = 0; i < s->q_len; i++) {
        seq *q = s->queue[(s->q_head + i) % s->cfg.max_queue];
        if (q->deadline && now >= q->deadline)
            fail(s, q, SL_SCHED_DEADLINE);
    }
    reap(s);
}

/* The queue's head joins while a sequence slot and its whole context's
 * KV blocks are free (in order: a large request is not overtaken). */
static void admit(sl_sched *s, uint64_t now)
{
    sl_kv *kv = sl_engine_kv(s->e);
    while (s->q_len && s->n_run < s->max_seqs) {
        seq *q = s->queue[s->q_head];
        if (sl_kv_blocks_for(q->n_prompt + q->max_tokens) > kv->n_free)
            return;
        int id;
        if (sl_kv_seq_new(kv, &id, NULL))
            return;
        if (sl_kv_seq_reserve(kv, id, q->n_prompt + q->max_tokens, NULL)) {
            sl_kv_seq_free(kv, id);
            return;
        }
        q->kv = id;
        q->t_start = now;
        s->queue[s->q_head] = NULL;
        s->q_head = (s->q_head + 1) % s->cfg.max_queue;
        s->q_len--;
        s->run[s->n_run++] = q;
    }
}

sl_status sl_sched_step(sl_sched *s, int *active, sl_err *err)
{
    uint64_t now = sl_now_us();
    expire(s, now);
    admit(s, now);
    /* decoders first, one token each; then prompt chunks in admission order */
    int n = 0, budget = s->cfg.step_tokens;
    for (int i = 0; i < s->n_run && budget > 0; i++) {
        seq *q = s->run[i];
        if (q->done < q->n_prompt)
            continue;
        s->chunks[n] = (sl_chunk){.seq = q->kv, .pos = q->done, .n = 1, .tokens = q->tok + q->done};
        s->chunk_seq[n++] = q;
        budget--;
    }
    for (int i = 0; i < s->n_run && budget > 0; i++) {
        seq *q = s->run[i];
        if (q->done >= q->n_prompt)
            continue;
        int c = q->n_prompt - q->done;
        c = c < s->cfg.prompt_chunk ? c : s->cfg.prompt_chunk;
        c = c < budget ? c : budget;
        s->chunks[n] = (sl_chunk){.seq = q->kv, .pos = q->done, .n = c, .tokens = q->tok + q->done};
        s->chunk_seq[n++] = q;
        budget -= c;
    }
    if (n) {
        sl_status st = sl_engine_forward(s->e, s->chunks, n, s->logits, err);
        if (st) { /* the batch fails as a whole: its requests get the error, the scheduler lives on */
            for (int i = 0; i < n; i++)
                fail(s, s->chunk_seq[i], SL_SCHED_ENGINE);
            reap(s);
            *active = s->n_run + s->q_len;
            return sl_err_prefix(err, st, "scheduler step");
        }
        s->st.steps++;
        s->st.batch_tokens += (uint64_t)(s->cfg.step_tokens - budget);
        now = sl_now_us();
        for (int i = 0; i < n; i++) {
            seq *q = s->chunk_seq[i];
            q->done += s->chunks[i].n;
            if (q->gone || q->done < q->n_prompt)
                continue; /* more prompt to come: its logits are not wanted */
            const int32_t next = sl_sample(&q->smp, s->logits + (size_t)i * (size_t)s->m->vocab, q->tok, q->done);
            const int stop = next == s->eos || (q->stop_at_bos && next == s->bos);
            if (!stop) {
                q->tok[q->n_prompt + q->n_gen++] = next;
                if (!q->t_first)
                    q->t_first = now;
                s->st.generated++;
                emit(s, q, SL_SCHED_TOKEN, next, 0);
            }
            if (!q->gone && (stop || q->n_gen == q->max_tokens)) { /* gone: cancelled by that event's callback */
                emit(s, q, SL_SCHED_DONE, -1, stop ? SL_FIN_EOS : SL_FIN_LENGTH);
                s->st.finished++;
                q->gone = 1;
            }
        }
        reap(s);
    }
    *active = s->n_run + s->q_len;
    return SL_OK;
}

void sl_sched_get_stats(const sl_sched *s, sl_sched_stats *st)
{
    *st = s->st;
    st->queued = s->q_len;
    st->running = s->n_run;
    const sl_kv *kv = sl_engine_kv(s->e);
    st->kv_blocks_used = kv->n_blocks - kv->n_free;
    st->kv_blocks_total = kv->n_blocks;
}
