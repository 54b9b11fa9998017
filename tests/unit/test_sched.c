/* The continuous-batching scheduler on stories260K: requests joining late,
 * prompts in small chunks and a tight token budget still get exactly the
 * tokens they get alone (greedy: run.c's), and cancel, deadlines, a full
 * queue, a full context and a small KV pool behave as sl_sched.h says,
 * cancels from inside the event callback included. */
#include <stdlib.h>
#include <string.h>

#include "sl_clock.h"
#include "sl_sched.h"
#include "test_images.h"

enum { MAXR = 32, MAXT = 256 };

typedef struct record {
    int32_t tok[MAXR][MAXT];
    int n[MAXR], done[MAXR], failed[MAXR];
    int finish[MAXR];
} record;

static void on_event(void *ctx, const sl_sched_event *ev)
{
    record *r = ctx;
    cr_assert_lt(ev->id, MAXR);
    if (ev->kind == SL_SCHED_TOKEN) {
        cr_assert_lt(r->n[ev->id], MAXT);
        cr_assert(!r->done[ev->id] && !r->failed[ev->id], "a token after the end of request %llu",
                  (unsigned long long)ev->id);
        r->tok[ev->id][r->n[ev->id]++] = ev->token;
    } else if (ev->kind == SL_SCHED_DONE) {
        r->done[ev->id]++;
        r->finish[ev->id] = ev->finish;
        cr_assert_eq(ev->generated_tokens, r->n[ev->id]);
        cr_assert_leq(ev->ttft_us, ev->total_us);
    } else
        r->failed[ev->id] = ev->failure;
}

static sl_engine *engine(const sl_model *m, int max_seqs, int kv_blocks)
{
    sl_engine_cfg c = {.n_threads = 2, .isa = -1, .max_seqs = max_seqs, .ctx = 512, .kv_blocks = kv_blocks,
                       .max_batch_tokens = 64};
    sl_engine *e;
    sl_err err = {0};
    cr_assert_eq(sl_engine_create(m, &c, &e, &err), SL_OK, "%s", err.msg);
    return e;
}

static int run_all(sl_sched *s)
{
    int active = 1, steps = 0;
    sl_err err = {0};
    while (active) {
        cr_assert_eq(sl_sched_step(s, &active, &err), SL_OK, "%s", err.msg);
        cr_assert_lt(++steps, 100000, "the scheduler does not finish");
    }
    return steps;
}

/* run.c's reference: the prompt at [0, 300), the whole sequence from 300. */
static int32_t *ids_of(const char *models, const char *file, int *n_prompt, int *n_seq)
{
    int32_t *v = calloc(600, sizeof *v);
    cr_assert_not_null(v);
    test_read_ref_ids(test_path(models, file), v, 300, n_prompt, v + 300, 300, n_seq);
    return v;
}

Test(sched, late_joiners_and_chunked_prompts_get_their_solo_tokens, .timeout = 300)
{
    NEED_SHARED(models);
    sl_model *m = test_open_model(test_path(models, "stories260K.gguf"));
    const char *files[3] = {"reference/stories260K_t0_n200_once_upon_a_time.ids",
                            "reference/stories260K_t0_n200_the_cat.ids",
                            "reference/stories260K_t0_default_empty_prompt.ids"};
    sl_sched_req req[12];
    int32_t *store[12];
    int ref_n[3];
    uint64_t rng = 99;
    for (int i = 0; i < 12; i++) {
        memset(&req[i], 0, sizeof req[i]);
        req[i].id = (uint64_t)i;
        req[i].sampler = sl_sampler_defaults();
        req[i].stop_at_bos = 1;
        if (i < 3) { /* run.c's greedy continuations */
            int np, ns;
            store[i] = ids_of(models, files[i], &np, &ns);
            req[i].prompt = store[i], req[i].n_prompt = np, req[i].max_tokens = ns - np;
            ref_n[i] = ns;
        } else { /* random prompts; some sampled with their own seeds */
            store[i] = malloc(sizeof(int32_t) * 40);
            const int np = 1 + (int)((rng = rng * 6364136223846793005ull + 1) >> 58) % 40;
            for (int k = 0; k < np; k++)
                store[i][k] = 1 + (int)(((rng = rng * 6364136223846793005ull + 1) >> 33) % (uint64_t)(m->vocab - 1));
            req[i].prompt = store[i], req[i].n_prompt = np, req[i].max_tokens = 10 + 7 * i;
            if (i % 2) {
                req[i].sampler.temp = 0.9f, req[i].sampler.top_p = 0.9f;
                req[i].sampler.seed = 1000u + (uint64_t)i;
            }
        }
    }
    /* alone: one request per scheduler */
    static record solo, batch;
    memset(&solo, 0, sizeof solo);
    memset(&batch, 0, sizeof batch);
    sl_engine *e = engine(m, 4, 4 * sl_kv_blocks_for(512));
    sl_err err = {0};
    for (int i = 0; i < 12; i++) {
        sl_sched *s;
        cr_assert_eq(sl_sched_create(e, NULL, on_event, &solo, &s, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(sl_sched_submit(s, &req[i], &err), SL_OK, "%s", err.msg);
        run_all(s);
        sl_sched_destroy(s);
        cr_assert_eq(solo.done[i], 1, "request %d did not finish alone", i);
    }
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(req[i].n_prompt + solo.n[i], ref_n[i], "%s: %d tokens, run.c made %d", files[i],
                     req[i].n_prompt + solo.n[i], ref_n[i]);
        cr_assert(memcmp(solo.tok[i], store[i] + 300 + req[i].n_prompt, sizeof(int32_t) * (size_t)solo.n[i]) == 0,
                  "%s: the scheduler's greedy tokens are not run.c's", files[i]);
    }
    /* together: 4 sequence slots for 12 requests, prompts in chunks of 3,
     * 8 tokens a step, requests arriving every few steps */
    sl_sched_cfg cfg = {.max_queue = 16, .step_tokens = 8, .prompt_chunk = 3};
    sl_sched *s;
    cr_assert_eq(sl_sched_create(e, &cfg, on_event, &batch, &s, &err), SL_OK, "%s", err.msg);
    int next = 0, active = 1, steps = 0, max_running = 0;
    while (active || next < 12) {
        if (next < 12 && steps % 3 == 0)
            cr_assert_eq(sl_sched_submit(s, &req[next++], &err), SL_OK, "%s", err.msg);
        cr_assert_eq(sl_sched_step(s, &active, &err), SL_OK, "%s", err.msg);
        sl_sched_stats st;
        sl_sched_get_stats(s, &st);
        max_running = st.running > max_running ? st.running : max_running;
        cr_assert_lt(++steps, 100000);
    }
    cr_assert_eq(max_running, 4, "the batch never filled its 4 slots");
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(batch.done[i], 1, "request %d", i);
        cr_assert_eq(batch.n[i], solo.n[i], "request %d: %d tokens in the batch, %d alone", i, batch.n[i], solo.n[i]);
        cr_assert(memcmp(batch.tok[i], solo.tok[i], sizeof(int32_t) * (size_t)solo.n[i]) == 0,
                  "request %d: its tokens depend on its company", i);
    }
    sl_sched_stats st;
    sl_sched_get_stats(s, &st);
    cr_assert_eq(st.kv_blocks_used, 0, "KV blocks left held: %d", st.kv_blocks_used);
    cr_assert_eq(st.finished, 12);
    sl_sched_destroy(s);
    sl_engine_destroy(e);
    for (int i = 0; i < 12; i++)
        free(store[i]);
    sl_model_close(m);
}

Test(sched, cancel_deadline_busy_context_and_a_small_pool)
{
    NEED_SHARED(models);
    sl_model *m = test_open_model(test_path(models, "stories260K.gguf"));
    /* a pool of 40 blocks: one 512-position context (32 blocks) at a time */
    sl_engine *e = engine(m, 4, 40);
    static record r;
    memset(&r, 0, sizeof r);
    sl_sched_cfg cfg = {.max_queue = 2};
    sl_sched *s;
    sl_err err = {0};
    cr_assert_eq(sl_sched_create(e, &cfg, on_event, &r, &s, &err), SL_OK, "%s", err.msg);
    const int32_t prompt[4] = {1, 403, 407, 261};
    sl_sched_req q = {.id = 0, .prompt = prompt, .n_prompt = 4, .max_tokens = 400, .sampler = sl_sampler_defaults()};
    /* the context's limit is the policy: refused, never truncated */
    q.max_tokens = 509;
    cr_assert_eq(sl_sched_check(s, &q, &err), SL_ECONTEXT, "the check alone says so too");
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_ECONTEXT);
    cr_assert(strstr(err.msg, "context full"), "%s", err.msg);
    q.max_tokens = 400;
    const int32_t bad[2] = {1, 100000};
    sl_sched_req qb = q;
    qb.prompt = bad, qb.n_prompt = 2;
    cr_assert_eq(sl_sched_submit(s, &qb, &err), SL_ERANGE);
    cr_assert(strstr(err.msg, "100000"), "%s", err.msg);
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_EINVAL, "a duplicate id");
    q.id = 1;
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_OK, "%s", err.msg);
    q.id = 2;
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_EBUSY, "a third request in a queue of 2");
    /* request 0 runs (26 of 40 blocks), request 1 waits for blocks */
    int active;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_sched_step(s, &active, &err), SL_OK, "%s", err.msg);
    sl_sched_stats st;
    sl_sched_get_stats(s, &st);
    cr_assert(st.running == 1 && st.queued == 1, "running %d, queued %d", st.running, st.queued);
    cr_assert_eq(st.kv_blocks_used, sl_kv_blocks_for(404));
    cr_assert_gt(r.n[0], 0);
    /* cancel frees its blocks at once, and the waiting request moves in */
    cr_assert_eq(sl_sched_cancel(s, 0), SL_OK);
    cr_assert_eq(r.failed[0], SL_SCHED_CANCELLED);
    sl_sched_get_stats(s, &st);
    cr_assert_eq(st.kv_blocks_used, 0, "cancel kept %d blocks", st.kv_blocks_used);
    cr_assert_eq(sl_sched_step(s, &active, &err), SL_OK);
    sl_sched_get_stats(s, &st);
    cr_assert(st.running == 1 && st.queued == 0);
    cr_assert_eq(sl_sched_cancel(s, 0), SL_ENOTFOUND);
    /* a deadline that has passed fails the request and frees its blocks */
    q.id = 3, q.deadline_us = sl_now_us() + 1;
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(sl_sched_cancel(s, 1), SL_OK);
    cr_assert_eq(sl_sched_step(s, &active, &err), SL_OK);
    cr_assert_eq(r.failed[3], SL_SCHED_DEADLINE);
    sl_sched_get_stats(s, &st);
    cr_assert(st.running == 0 && st.queued == 0 && st.kv_blocks_used == 0);
    /* two requests that each need most of the pool run one after the other */
    q.deadline_us = 0, q.max_tokens = 60;
    q.id = 4;
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_OK);
    q.id = 5;
    cr_assert_eq(sl_sched_submit(s, &q, &err), SL_OK);
    run_all(s);
    cr_assert(r.done[4] == 1 && r.done[5] == 1);
    cr_assert(memcmp(r.tok[4], r.tok[5], sizeof(int32_t) * (size_t)r.n[4]) == 0 && r.n[4] == r.n[5]);
    sl_sched_destroy(s);
    sl_engine_destroy(e);
    sl_model_close(m);
}

/* A callback that cancels, as sluiced's does when a client hangs up while
 * its tokens are sent: request 0 cancels itself on its third token (and
 * tries again), request 1's first token cancels request 2. */
typedef struct canceller {
    record r;
    sl_sched *s;
    sl_status self, again, other;
} canceller;

static void on_event_cancel(void *ctx, const sl_sched_event *ev)
{
    canceller *c = ctx;
    on_event(&c->r, ev);
    if (ev->kind != SL_SCHED_TOKEN)
        return;
    if (ev->id == 0 && c->r.n[0] == 3) {
        c->self = sl_sched_cancel(c->s, 0);
        c->again = sl_sched_cancel(c->s, 0);
    }
    if (ev->id == 1 && c->r.n[1] == 1)
        c->other = sl_sched_cancel(c->s, 2);
}

Test(sched, cancels_from_inside_the_callback)
{
    NEED_SHARED(models);
    sl_model *m = test_open_model(test_path(models, "stories260K.gguf"));
    sl_engine *e = engine(m, 4, 40);
    static canceller c;
    memset(&c, 0, sizeof c);
    c.self = c.again = c.other = 1;
    sl_err err = {0};
    cr_assert_eq(sl_sched_create(e, NULL, on_event_cancel, &c, &c.s, &err), SL_OK, "%s", err.msg);
    const int32_t prompt[4] = {1, 403, 407, 261};
    sl_sched_req q = {.prompt = prompt, .n_prompt = 4, .max_tokens = 20, .sampler = sl_sampler_defaults()};
    for (q.id = 0; q.id < 4; q.id++)
        cr_assert_eq(sl_sched_submit(c.s, &q, &err), SL_OK, "%s", err.msg);
    run_all(c.s);
    /* on_event also asserts that no event follows a request's end */
    cr_assert(c.self == SL_OK && c.again == SL_ENOTFOUND && c.other == SL_OK, "cancel returned %d, %d, %d", c.self,
              c.again, c.other);
    cr_assert(c.r.failed[0] == SL_SCHED_CANCELLED && c.r.n[0] == 3 && !c.r.done[0], "request 0: %d tokens, done %d",
              c.r.n[0], c.r.done[0]);
    cr_assert(c.r.failed[2] == SL_SCHED_CANCELLED && c.r.n[2] == 0 && !c.r.done[2], "request 2: %d tokens",
              c.r.n[2]);
    cr_assert(c.r.done[1] == 1 && c.r.done[3] == 1 && c.r.n[1] == 20 && c.r.n[3] == 20);
    cr_assert_arr_eq(c.r.tok[1], c.r.tok[3], sizeof(int32_t) * 20, "the same prompt, greedy: the same tokens");
    cr_assert_arr_eq(c.r.tok[0], c.r.tok[1], sizeof(int32_t) * 3);
    sl_sched_stats st;
    sl_sched_get_stats(c.s, &st);
    cr_assert(st.failed == 2 && st.finished == 2 && st.running == 0 && st.queued == 0 && st.kv_blocks_used == 0,
              "failed %llu, finished %llu, running %d, queued %d, blocks %d", (unsigned long long)st.failed,
              (unsigned long long)st.finished, st.running, st.queued, st.kv_blocks_used);
    sl_sched_destroy(c.s);
    sl_engine_destroy(e);
    sl_model_close(m);
}
