/* engine.c - the batched Llama forward pass (sl_engine.h).
 *
 * Element-wise steps follow llama2.c's run.c operation for operation
 * (RMSNorm, RoPE on adjacent pairs, softmax, SwiGLU); matrix products and
 * attention sums are the ISA level's kernels.  Parallel work is split so
 * that each output value is computed by exactly one task, with no
 * reduction across tasks: results do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_engine.h"
#include "sl_plan.h"
#include "sl_pool.h"
#include "sl_topo.h"
#include "sl_types.h"
#include "sl_vmath.h"

struct sl_engine {
    const sl_model *m;
    const sl_kernels *k;
    sl_pool *pool;
    sl_kv kv;
    int ctx, bt; /* positions per sequence; tokens per internal step */
    int unfused; /* sl_engine_cfg.unfused */
    float *rope_cos, *rope_sin; /* [ctx][n_rot / 2] */
    /* scratch for bt tokens */
    sl_buf mem;
    float *x, *xb, *q, *kk, *vv, *att_out, *hb, *hb2;
    /* quantized activations, in the kernels' layout: xq2 is the FFN down
     * product's, written by the gate/up product's tasks while others still
     * read xq */
    uint8_t *xq, *xq2;
    uint8_t *xp; /* xq or xq2 in the kernels' prepared form (sl_kernels.xprep), or NULL */
    float *att; /* per thread: ctx scores */
    int32_t *tok_seq, *tok_pos, *tok_id;
    int *tok_out; /* 1 where the token's logits are asked for */
    sl_tap_fn tap;
    void *tap_ctx;
};

void sl_engine_run(sl_engine *e, void (*fn)(void *ctx, int task, int thread), void *ctx, int n_tasks)
{
    sl_pool_run(e->pool, fn, ctx, n_tasks);
}

void sl_engine_set_tap(sl_engine *e, sl_tap_fn fn, void *ctx)
{
    e->tap = fn;
    e->tap_ctx = ctx;
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

sl_status sl_engine_create(const sl_model *m, const sl_engine_cfg *cfg_in, sl_engine **out, sl_err *err)
{
    *out = NULL;
    sl_engine_cfg cfg = cfg_in ? *cfg_in : (sl_engine_cfg){0};
    if (cfg.max_batch_tokens <= 0)
        cfg.max_batch_tokens = 512;
    if (cfg.max_seqs <= 0)
        cfg.max_seqs = 64;
    if (cfg.ctx <= 0)
        cfg.ctx = m->ctx;
    if (cfg.ctx > (1 << 20) || cfg.max_batch_tokens > (1 << 16) || cfg.max_seqs > (1 << 16) || cfg.n_threads < 0 ||
        cfg.n_threads > 1024)
        return sl_err_set(err, SL_ERANGE, "engine limits out of range (ctx %d, batch %d, seqs %d, threads %d)",
                          cfg.ctx, cfg.max_batch_tokens, cfg.max_seqs, cfg.n_threads);
    if (cfg.kv_blocks <= 0) /* full contexts for up to 4 sequences; pages are touched only as used */
        cfg.kv_blocks = (cfg.max_seqs < 4 ? cfg.max_seqs : 4) * sl_kv_blocks_for(cfg.ctx);
    sl_isa isa = cfg.isa < 0 ? sl_isa_select() : (sl_isa)cfg.isa;
    const sl_kernels *k = sl_kernels_for(isa);
    if (!k)
        return sl_err_set(err, SL_EUNSUPPORTED, "this CPU lacks the %s instructions", sl_isa_name(isa));

    sl_engine *e = calloc(1, sizeof *e);
    if (!e)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    e->m = m;
    e->k = k;
    e->ctx = cfg.ctx;
    e->bt = cfg.max_batch_tokens;
    e->unfused = cfg.unfused;

    /* Threads: the core plan of this machine; pinning is best effort. */
    sl_topo topo;
    sl_core_plan *plan = calloc(1, sizeof *plan);
    sl_status st = plan ? SL_OK : sl_err_set(err, SL_ENOMEM, "out of memory");
    int node = -1;
    if (!st && sl_topo_probe(&topo, NULL, NULL) == SL_OK) {
        if (sl_core_plan_make(&topo, -1, cfg.dp_cores, 0, plan, NULL) == SL_OK)
            node = topo.n_nodes > 1 ? plan->node : -1;
        else
            plan->n_workers = 0;
        sl_topo_free(&topo);
    }
    int n_threads = cfg.n_threads ? cfg.n_threads : (plan && plan->n_workers ? plan->n_workers : 1);
    const int *cpus = NULL;
    if (!st && plan && plan->n_workers >= n_threads && cfg.pin > 0)
        cpus = plan->worker_cpu;
    st = st ? st : sl_pool_create(n_threads, cpus, cfg.pin > 1, &e->pool, err);
    free(plan);
    st = st ? st
            : sl_kv_init(&e->kv, m->n_layers, m->n_kv_heads, m->head_dim, cfg.ctx, cfg.kv_blocks, cfg.max_seqs, node, err);
    if (st)
        goto fail;

    /* RoPE tables, computed as run.c does per position and pair. */
    const int half = m->n_rot / 2;
    const size_t bt = (size_t)e->bt;
    const int kmax = m->dim > m->hidden ? m->dim : m->hidden;
    const size_t xq_tok = k->act_bytes(kmax) > sl_w8a8_act_bytes(kmax) ? k->act_bytes(kmax) : sl_w8a8_act_bytes(kmax);
    const size_t xq_bytes = bt * xq_tok; /* either layout, for the widest input */
    size_t sizes[] = {
        (size_t)e->ctx * (size_t)half * 4, (size_t)e->ctx * (size_t)half * 4, /* cos, sin */
        bt * (size_t)m->dim * 4, bt * (size_t)m->dim * 4, bt * (size_t)m->dim * 4,   /* x, xb, q */
        bt * (size_t)m->kv_dim * 4, bt * (size_t)m->kv_dim * 4,                     /* k, v */
        bt * (size_t)m->dim * 4,                                                    /* att_out */
        bt * (size_t)m->hidden * 4, bt * (size_t)m->hidden * 4,                     /* hb, hb2 */
        xq_bytes, xq_bytes,                                                         /* xq, xq2 */
        (size_t)n_threads * (size_t)e->ctx * 4,                                     /* att */
        bt * 4, bt * 4, bt * 4, bt * sizeof(int),                                   /* token meta */
        k->xprep_bytes ? k->xprep_bytes(e->bt, kmax) : 0,                           /* xp */
    };
    enum { N = sizeof sizes / sizeof sizes[0] };
    size_t total = 0;
    for (int i = 0; i < N; i++)
        total += up64(sizes[i]);
    if ((st = sl_buf_alloc(&e->mem, total, node, err)))
        goto fail;
    void *ptr[N];
    char *p = e->mem.p;
    for (int i = 0; i < N; i++) {
        ptr[i] = p;
        p += up64(sizes[i]);
    }
    e->rope_cos = ptr[0];
    e->rope_sin = ptr[1];
    e->x = ptr[2];
    e->xb = ptr[3];
    e->q = ptr[4];
    e->kk = ptr[5];
    e->vv = ptr[6];
    e->att_out = ptr[7];
    e->hb = ptr[8];
    e->hb2 = ptr[9];
    e->xq = ptr[10];
    e->xq2 = ptr[11];
    e->att = ptr[12];
    e->tok_seq = ptr[13];
    e->tok_pos = ptr[14];
    e->tok_id = ptr[15];
    e->tok_out = ptr[16];
    e->xp = sizes[17] ? ptr[17] : NULL;
    for (int j = 0; j < half; j++) {
        const float freq = 1.0f / powf(m->theta, (float)(2 * j) / (float)m->n_rot);
        for (int pos = 0; pos < e->ctx; pos++) {
            const float val = (float)pos * freq;
            e->rope_cos[(size_t)pos * half + j] = cosf(val);
            e->rope_sin[(size_t)pos * half + j] = sinf(val);
        }
    }
    *out = e;
    return SL_OK;
fail:
    sl_engine_destroy(e);
    return st;
}

void sl_engine_destroy(sl_engine *e)
{
    if (!e)
        return;
    sl_pool_destroy(e->pool);
    sl_kv_free(&e->kv);
    sl_buf_free(&e->mem);
    free(e);
}

sl_kv *sl_engine_kv(sl_engine *e) { return &e->kv; }
const sl_kernels *sl_engine_kernels(const sl_engine *e) { return e->k; }
int sl_engine_threads(const sl_engine *e) { return sl_pool_threads(e->pool); }
int sl_engine_pinned(const sl_engine *e) { return sl_pool_pinned(e->pool); }
int sl_engine_ctx(const sl_engine *e) { return e->ctx; }
const sl_model *sl_engine_model(const sl_engine *e) { return e->m; }

/* ---- RoPE and the KV write, fused into the QKV product --------------- */

/* Where rows r.. of token tok's k (which = 1) or v (2) go in its
 * sequence's KV block: *len of them, up to r1 or the head's end. */
static float *kv_run(const sl_engine *e, int layer, int which, int tok, int r, int r1, int *len)
{
    const int hd = e->m->head_dim, h = r / hd, off = r % hd;
    const int seq = e->tok_seq[tok], pos = e->tok_pos[tok];
    *len = hd - off < r1 - r ? hd - off : r1 - r;
    return (which == 1 ? sl_kv_k(&e->kv, seq, layer, h, pos) : sl_kv_v(&e->kv, seq, layer, h, pos)) + off;
}

/* A task of the q, k or v product (which: 0, 1, 2), once its rows r0..r1
 * (whole pairs: a task's rows start at a multiple of 16) are computed for
 * nt tokens from t0 (rows ldy apart in y):
 * RoPE on q's and k's rows (run.c's rotation of adjacent pairs), then k's
 * and v's rows into the KV cache.  The rows are still in L1, and the
 * attention that reads the cache starts after the whole product. */
static void qkv_epilogue(const sl_engine *e, int layer, int which, int r0, int r1, int nt, float *y, int ldy,
                         int t0)
{
    const sl_model *m = e->m;
    const int hd = m->head_dim, half = m->n_rot / 2;
    for (int t = 0; t < nt; t++) {
        float *v = y + (size_t)t * ldy;
        const int pos = e->tok_pos[t0 + t];
        if (which < 2) {
            const float *c = e->rope_cos + (size_t)pos * half, *s = e->rope_sin + (size_t)pos * half;
            for (int r = r0; r < r1;) { /* a head's part at a time: its first n_rot dims turn */
                const int head = r - r % hd, end = head + hd < r1 ? head + hd : r1;
                const int stop = head + 2 * half < end ? head + 2 * half : end;
                for (int j = (r - head) / 2; r < stop; r += 2, j++) {
                    const float v0 = v[r], v1 = v[r + 1];
                    v[r] = v0 * c[j] - v1 * s[j];
                    v[r + 1] = v0 * s[j] + v1 * c[j];
                }
                r = end;
            }
        }
        for (int r = r0, len; which > 0 && r < r1; r += len) {
            float *dst = kv_run(e, layer, which, t0 + t, r, r1, &len);
            memcpy(dst, v + r, sizeof(float) * (size_t)len);
        }
    }
}

/* The KV lines qkv_epilogue(which = 1 or 2) will write for rows [r0, r1),
 * asked for, for writing, before the task's product: their reads from
 * memory then overlap the product instead of stalling the stores after it. */
static void kv_write_prefetch(const sl_engine *e, int layer, int which, int r0, int r1, int nt)
{
    for (int t = 0; t < nt; t++)
        for (int r = r0, len; r < r1; r += len) {
            const uintptr_t a = (uintptr_t)kv_run(e, layer, which, t, r, r1, &len);
            for (uintptr_t l = a & ~(uintptr_t)63; l < a + sizeof(float) * (size_t)len; l += 64)
                __builtin_prefetch((const void *)l, 1);
        }
}

/* ---- matrix products ------------------------------------------------ */

/* What a product's task does with its rows once they are computed. */
typedef enum {
    EPI_NONE,
    EPI_QKV,    /* q, k, v: RoPE and the KV write (qkv_epilogue) */
    EPI_SWIGLU, /* gate and up, the same rows in one task: SwiGLU into gate's
                   rows, then those rows quantized for the down product */
    EPI_RESID,  /* wo, down: the rows added into the residual stream e->x */
} epi_kind;

typedef struct mm_job {
    const sl_engine *e;
    const sl_kernels *k;
    int n_mats;
    const sl_wmat *w[3];
    float *y[3];
    int tasks[3]; /* tasks per matrix */
    int chunk[3]; /* rows per task */
    const float *xf;
    const uint8_t *xq;
    int nt;
    epi_kind epi;
    int layer;
    int quant_out; /* EPI_SWIGLU: quantize the rows into e->xq2 (block-quantized down) */
    const uint8_t *xp; /* xq prepared for every matrix's gemm_xp, or NULL */
} mm_job;

static void mm_rows(const mm_job *j, int i, int r0, int r1)
{
    const sl_wmat *w = j->w[i];
    const int quant = sl_wtype_quantized(w->wt), w8a8 = w->wt == SL_W_W8A8;
    const void *x = quant || w8a8 ? (const void *)j->xq : (const void *)j->xf;
    const size_t stride = quant ? j->k->act_bytes(w->cols)
                          : w8a8 ? sl_w8a8_act_bytes(w->cols)
                                 : (size_t)w->cols * sizeof(float);
    if (j->xp)
        j->k->gemm_xp[w->wt](w->data, w->row_bytes, r0, r1, j->xp, j->nt, w->cols, j->y[i], w->rows);
    else
        j->k->gemm[w->wt](w->data, w->row_bytes, r0, r1, x, stride, j->nt, w->cols, j->y[i], w->rows);
    for (int t = 0; w8a8 && t < j->nt; t++) { /* the integer products times row scale x token scale */
        const float sx = ((const sl_w8a8_act *)(const void *)(j->xq + (size_t)t * stride))->s;
        float *y = j->y[i] + (size_t)t * w->rows;
        for (int r = r0; r < r1; r++)
            y[r] *= w->w_scale[r] * sx;
    }
}

static void mm_task(void *ctx, int task, int thread)
{
    (void)thread;
    const mm_job *j = ctx;
    int i = 0;
    while (task >= j->tasks[i])
        task -= j->tasks[i++];
    const int rows = j->w[i]->rows, r0 = task * j->chunk[i];
    const int r1 = r0 + j->chunk[i] < rows ? r0 + j->chunk[i] : rows;
    if (j->epi == EPI_QKV && i > 0)
        kv_write_prefetch(j->e, j->layer, i, r0, r1, j->nt);
    mm_rows(j, i, r0, r1);
    if (j->epi == EPI_QKV)
        qkv_epilogue(j->e, j->layer, i, r0, r1, j->nt, j->y[i], rows, 0);
    if (j->epi == EPI_RESID) /* rows == dim; the same sums as the step's loop, in parallel and in cache */
        for (int t = 0; t < j->nt; t++)
            sl_add_f32(j->e->x + (size_t)t * rows + r0, j->y[i] + (size_t)t * rows + r0, r1 - r0);
    if (j->epi != EPI_SWIGLU)
        return;
    mm_rows(j, 1, r0, r1);
    const sl_engine *e = j->e;
    for (int t = 0; t < j->nt; t++) {
        float *h = j->y[0] + (size_t)t * rows + r0;
        j->k->swiglu(h, j->y[1] + (size_t)t * rows + r0, r1 - r0);
        if (j->quant_out) /* whole 32-value blocks: the chunk is a multiple of 32 */
            j->k->act_quant(h, e->xq2 + (size_t)t * j->k->act_bytes(rows) + j->k->act_bytes(r0), r1 - r0);
    }
}

/* Below this many multiply-adds a job is cheaper on the calling thread
 * than handed to the pool (a tiny model's matrices); the tasks are the same
 * either way, so the results are too. */
#define POOL_MIN_WORK 262144u
/* A product whose weights are under POOL_SMALL_BYTES gains nothing from a
 * second core's bandwidth, and under POOL_SMALL_WORK multiply-adds its
 * arithmetic does not repay what sharing costs: the second core's caches
 * would hold part of the output and of the weights, which the calling
 * thread then fetches back from them. */
#define POOL_SMALL_BYTES (256u << 10)
#define POOL_SMALL_WORK (2u << 20)
/* Attention reads the cache mostly from memory, at what one core's fill
 * buffers allow: from this many bytes of keys and values a second core's
 * share repays the handoff (~0.5 us) even for one token.  Only what
 * earlier steps wrote counts: this step's keys and values sit in the
 * calling core's cache, and the other core's share of them costs more to
 * move than to compute. */
#define POOL_ATT_BYTES (64u << 10)

/* The tasks on the pool, or one after another on the calling thread. */
static void run_tasks(sl_engine *e, sl_task_fn fn, void *ctx, int n_tasks, int pooled)
{
    if (!pooled) {
        for (int t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    sl_pool_run(e->pool, fn, ctx, n_tasks);
}

/* What a product's input needs first, done in one pool job with the
 * activation quantization: RMSNorm of the residual stream, or nothing
 * (SwiGLU is the gate/up product's epilogue; PRE_SWIGLU, here, only when
 * unfused).  Skipped where an earlier job's tasks already quantized the
 * input. */
typedef enum { PRE_NONE, PRE_NORM, PRE_SWIGLU } pre_kind;

typedef struct pre_job {
    sl_engine *e;
    pre_kind kind;
    int layer;         /* for the tap */
    sl_tap_point at;
    const float *norm; /* PRE_NORM: the norm's weights */
    const float *in;   /* PRE_NORM: the residual stream */
    float *x;          /* the product's input, nt x k floats (written by PRE_NORM) */
    uint8_t *xq;       /* its quantized form (e->xq unless set) */
    int ready;         /* xq already holds x quantized for this product */
    int k, nt;
    int quant;         /* also quantize x for the int8 kernels */
    int w8a8;          /* or for W8A8's, per token, with this scale (0: the token's own) */
    float in_scale;
} pre_job;

#define PRE_GROUP 8 /* tokens per task: RMSNorm sums them in the lanes of one vector */

static void pre_task(void *ctx, int g, int thread)
{
    (void)thread;
    const pre_job *j = ctx;
    sl_engine *e = j->e;
    const int t0 = g * PRE_GROUP, n = j->nt - t0 < PRE_GROUP ? j->nt - t0 : PRE_GROUP;
    float *x = j->x + (size_t)t0 * j->k;
    if (j->kind == PRE_NORM)
        e->k->rmsnorm(x, j->in + (size_t)t0 * j->k, j->norm, j->k, n, e->m->eps);
    else if (j->kind == PRE_SWIGLU)
        e->k->swiglu(x, e->hb2 + (size_t)t0 * j->k, n * j->k);
    for (int t = t0; t < t0 + n; t++)
        if (j->quant)
            e->k->act_quant(j->x + (size_t)t * j->k, j->xq + (size_t)t * e->k->act_bytes(j->k), j->k);
        else if (j->w8a8)
            sl_w8a8_act_quant(j->x + (size_t)t * j->k, j->xq + (size_t)t * sl_w8a8_act_bytes(j->k), j->k, j->in_scale);
}

/* y_i[t][r] = W_i[r] . x[t] for up to three matrices sharing the input
 * pre->x (nt tokens of w[0]->cols floats), prepared by *pre first; epi
 * says what each task does with its rows after (EPI_SWIGLU: w is gate and
 * up, and quant_out whether down takes block-quantized input). */
static void matmul(sl_engine *e, int n_mats, const sl_wmat *const *w, float *const *y, pre_job *pre, int nt,
                   epi_kind epi, int quant_out)
{
    if (!pre->xq)
        pre->xq = e->xq;
    mm_job j = {.e = e, .k = e->k, .n_mats = n_mats, .xf = pre->x, .xq = pre->xq, .nt = nt, .epi = epi,
                .layer = pre->layer, .quant_out = quant_out};
    int quant = 0, total = 0, w8a8 = 0;
    uint64_t work = 0, bytes = 0;
    for (int i = 0; i < n_mats; i++) {
        work += (uint64_t)w[i]->rows * (uint64_t)w[i]->cols * (uint64_t)nt;
        bytes += (uint64_t)w[i]->rows * w[i]->row_bytes;
    }
    const int pooled = work >= POOL_MIN_WORK && (bytes >= POOL_SMALL_BYTES || work >= POOL_SMALL_WORK);
    /* a job for the calling thread alone is cut as for one thread: then
     * any thread count runs it the same way, at the same cost */
    const int threads = pooled ? sl_pool_threads(e->pool) : 1;
    for (int i = 0; i < n_mats; i++) {
        j.w[i] = w[i];
        j.y[i] = y[i];
        quant |= sl_wtype_quantized(w[i]->wt);
        w8a8 |= w[i]->wt == SL_W_W8A8; /* the model checked: then all are, with one input scale */
        /* ~4 tasks per thread, rows in multiples of 16 (whole cache lines of
         * y), of 32 where the rows are quantized after (whole blocks) */
        const int align = epi == EPI_SWIGLU ? 32 : 16;
        int c = (w[i]->rows + 4 * threads - 1) / (4 * threads);
        c = (c + align - 1) & ~(align - 1);
        j.chunk[i] = c;
        j.tasks[i] = epi == EPI_SWIGLU && i == 1 ? 0 : (w[i]->rows + c - 1) / c; /* up: in gate's tasks */
        total += j.tasks[i];
    }
    pre->e = e;
    pre->k = w[0]->cols;
    pre->nt = nt;
    pre->quant = quant;
    pre->w8a8 = w8a8;
    pre->in_scale = w[0]->in_scale;
    /* a prepared value costs about what 32 multiply-adds do */
    if (!pre->ready && (quant || w8a8 || pre->kind != PRE_NONE))
        run_tasks(e, pre_task, pre, (nt + PRE_GROUP - 1) / PRE_GROUP,
                  (uint64_t)nt * (uint64_t)w[0]->cols * 32 >= POOL_MIN_WORK);
    if (e->tap)
        e->tap(e->tap_ctx, pre->layer, pre->at, pre->x, nt, w[0]->cols);
    /* The input in the tile kernels' form, made once here instead of in
     * every task's call (a pure function of xq: the same bits). */
    int xp = quant && e->xp && e->k->xprep_bytes(nt, w[0]->cols) > 0;
    for (int i = 0; i < n_mats; i++)
        xp &= e->k->gemm_xp[w[i]->wt] != NULL;
    if (xp) {
        e->k->xprep(pre->xq, e->k->act_bytes(w[0]->cols), nt, w[0]->cols, e->xp);
        j.xp = e->xp;
    }
    run_tasks(e, mm_task, &j, total, pooled);
}

/* The first `bytes` of one or two KV runs touched (b may be NULL): the
 * hardware streamer then starts on their pages before they are read. */
static void kick_runs(const char *a, const char *b, size_t bytes)
{
    for (size_t off = 0; off < bytes; off += 64) {
        __builtin_prefetch(a + off);
        if (b)
            __builtin_prefetch(b + off);
    }
}

typedef struct att_job {
    sl_engine *e;
    int layer;
    int quant_out; /* quantize each head's output for the wo product (whole blocks) */
    int n_tasks;
} att_job;

/* One (token, head): scores over the sequence's positions 0..pos, softmax,
 * weighted sum of values (run.c's steps; the dot products and sums are the
 * ISA level's kernels). */
static void att_task(void *ctx, int task, int thread)
{
    const att_job *j = ctx;
    sl_engine *e = j->e;
    const sl_model *m = e->m;
    const int t = task / m->n_heads, h = task % m->n_heads;
    const int seq = e->tok_seq[t], pos = e->tok_pos[t], hd = m->head_dim;
    const int kvh = h / (m->n_heads / m->n_kv_heads);
    const float *q = e->q + (size_t)t * m->dim + (size_t)h * hd;
    float *att = e->att + (size_t)thread * e->ctx;
    const float scale = sqrtf((float)hd);
    const size_t stride = (size_t)hd; /* a KV block's positions of one head are consecutive */
    const size_t blk_bytes = sizeof(float) * SL_KV_BLOCK * (size_t)hd;
    const size_t kick = blk_bytes < 256 ? blk_bytes : 256;
    /* The next task's first key and value runs, kicked as below: that task
     * is most often this core's next. */
    if (task + 1 < j->n_tasks) {
        const int t2 = (task + 1) / m->n_heads, kvh2 = (task + 1) % m->n_heads / (m->n_heads / m->n_kv_heads);
        if (t2 != t || kvh2 != kvh)
            kick_runs((const char *)sl_kv_k(&e->kv, e->tok_seq[t2], j->layer, kvh2, 0),
                      (const char *)sl_kv_v(&e->kv, e->tok_seq[t2], j->layer, kvh2, 0), kick);
    }
    for (int p = 0; p <= pos; p += SL_KV_BLOCK) {
        /* The cache is read once per step, mostly from memory, a 4 KiB run
         * (one page) per block.  The hardware streamer reads a run well but
         * starts cold on each page: touching the first lines of the next
         * key run and this value run starts it early.  Prefetching whole
         * runs measured no better: each prefetch holds one of the core's
         * few fill buffers, which the streamer does not need. */
        const char *vk = (const char *)sl_kv_v(&e->kv, seq, j->layer, kvh, p);
        const char *nk = p + SL_KV_BLOCK <= pos ? (const char *)sl_kv_k(&e->kv, seq, j->layer, kvh, p + SL_KV_BLOCK) : NULL;
        kick_runs(vk, nk, kick);
        e->k->attn_scores(q, sl_kv_k(&e->kv, seq, j->layer, kvh, p), stride,
                          pos + 1 - p < SL_KV_BLOCK ? pos + 1 - p : SL_KV_BLOCK, hd, scale, att + p);
    }
    e->k->exp_shift(att, pos + 1, sl_max_f32(att, pos + 1));
    float sum = 0.0f; /* run.c's order */
    for (int p = 0; p <= pos; p++)
        sum += att[p];
    sl_div_f32(att, pos + 1, sum);
    float *o = e->att_out + (size_t)t * m->dim + (size_t)h * hd;
    memset(o, 0, sizeof(float) * (size_t)hd);
    for (int p = 0; p <= pos; p += SL_KV_BLOCK)
        e->k->attn_accum(o, att + p, sl_kv_v(&e->kv, seq, j->layer, kvh, p), stride,
                         pos + 1 - p < SL_KV_BLOCK ? pos + 1 - p : SL_KV_BLOCK, hd);
    if (j->quant_out)
        e->k->act_quant(o, e->xq + (size_t)t * e->k->act_bytes(m->dim) + e->k->act_bytes(h * hd), hd);
}

/* One internal step over nt <= bt tokens whose meta is filled in; n_out
 * logits rows go to logits. */
static void step(sl_engine *e, int nt, float *logits, int n_out)
{
    const sl_model *m = e->m;
    const int dim = m->dim;
    for (int t = 0; t < nt; t++)
        sl_dequantize_row(m->tok_embd.type, m->tok_embd.data + (size_t)e->tok_id[t] * m->tok_embd.row_bytes,
                          e->x + (size_t)t * dim, (uint64_t)dim, NULL);
    for (int l = 0; l < m->n_layers; l++) {
        const sl_layer *L = &m->layers[l];
        pre_job pn = {.kind = PRE_NORM, .layer = l, .at = SL_TAP_ATTN_IN, .norm = L->attn_norm, .in = e->x, .x = e->xb};
        const int fuse = !e->unfused;
        matmul(e, 3, (const sl_wmat *[]){&L->wq, &L->wk, &L->wv}, (float *[]){e->q, e->kk, e->vv}, &pn, nt,
               fuse ? EPI_QKV : EPI_NONE, 0);
        for (int t = 0; !fuse && t < nt; t++) { /* what EPI_QKV does, a token at a time */
            qkv_epilogue(e, l, 0, 0, dim, 1, e->q + (size_t)t * dim, dim, t);
            qkv_epilogue(e, l, 1, 0, m->kv_dim, 1, e->kk + (size_t)t * m->kv_dim, m->kv_dim, t);
            qkv_epilogue(e, l, 2, 0, m->kv_dim, 1, e->vv + (size_t)t * m->kv_dim, m->kv_dim, t);
        }
        /* a head's output is whole blocks of wo's input when head_dim is a
         * multiple of 32: each attention task quantizes its own */
        att_job aj = {e, l, fuse && sl_wtype_quantized(L->wo.wt) && m->head_dim % 32 == 0, nt * m->n_heads};
        /* positions read over the step's tokens, and of them those written
         * before this step (a sequence's tokens are adjacent here) */
        uint64_t n_pos = 0, n_old = 0;
        for (int t = 0, p0 = 0; t < nt; t++) {
            if (t == 0 || e->tok_seq[t] != e->tok_seq[t - 1])
                p0 = e->tok_pos[t];
            n_pos += (uint64_t)e->tok_pos[t] + 1;
            n_old += (uint64_t)p0;
        }
        const uint64_t att_work = n_pos * (uint64_t)m->dim * 2;
        const uint64_t kv_bytes = n_old * (uint64_t)m->kv_dim * 2 * sizeof(float);
        run_tasks(e, att_task, &aj, aj.n_tasks, att_work >= POOL_MIN_WORK || kv_bytes >= POOL_ATT_BYTES);
        pre_job pa = {.kind = PRE_NONE, .layer = l, .at = SL_TAP_WO_IN, .x = e->att_out, .ready = aj.quant_out};
        matmul(e, 1, (const sl_wmat *[]){&L->wo}, (float *[]){e->xb}, &pa, nt, fuse ? EPI_RESID : EPI_NONE, 0);
        if (!fuse)
            sl_add_f32(e->x, e->xb, nt * dim);
        const int down_q = fuse && sl_wtype_quantized(L->w_down.wt);
        pre_job pf = {.kind = PRE_NORM, .layer = l, .at = SL_TAP_FFN_IN, .norm = L->ffn_norm, .in = e->x, .x = e->xb};
        matmul(e, 2, (const sl_wmat *[]){&L->w_gate, &L->w_up}, (float *[]){e->hb, e->hb2}, &pf, nt,
               fuse ? EPI_SWIGLU : EPI_NONE, down_q);
        pre_job ps = {.kind = fuse ? PRE_NONE : PRE_SWIGLU, .layer = l, .at = SL_TAP_DOWN_IN, .x = e->hb, .xq = e->xq2,
                      .ready = down_q};
        matmul(e, 1, (const sl_wmat *[]){&L->w_down}, (float *[]){e->xb}, &ps, nt, fuse ? EPI_RESID : EPI_NONE, 0);
        if (!fuse)
            sl_add_f32(e->x, e->xb, nt * dim);
    }
    if (n_out == 0)
        return;
    /* Final norm and classifier only for the rows asked for, packed. */
    int r = 0;
    for (int t = 0; t < nt; t++)
        if (e->tok_out[t])
            e->k->rmsnorm(e->xb + (size_t)r++ * dim, e->x + (size_t)t * dim, m->out_norm, dim, 1, m->eps);
    pre_job po = {.kind = PRE_NONE, .layer = m->n_layers, .at = SL_TAP_OUT_IN, .x = e->xb};
    matmul(e, 1, (const sl_wmat *[]){&m->output}, (float *[]){logits}, &po, n_out, EPI_NONE, 0);
}

sl_status sl_engine_forward(sl_engine *e, const sl_chunk *c, int n, float *logits, sl_err *err)
{
    const sl_model *m = e->m;
    /* Check everything before computing anything. */
    for (int i = 0; i < n; i++) {
        if (c[i].seq < 0 || c[i].seq >= e->kv.max_seqs || !e->kv.seqs[c[i].seq].in_use)
            return sl_err_set(err, SL_EINVAL, "chunk %d: sequence %d is not live", i, c[i].seq);
        if (c[i].n <= 0 || c[i].pos < 0 || c[i].pos > e->ctx - c[i].n)
            return sl_err_set(err, SL_ERANGE, "chunk %d: positions %d..%d are outside the context of %d", i, c[i].pos,
                              c[i].pos + c[i].n - 1, e->ctx);
        for (int j = 0; j < i; j++)
            if (c[j].seq == c[i].seq)
                return sl_err_set(err, SL_EINVAL, "sequence %d appears twice in one batch", c[i].seq);
        for (int t = 0; t < c[i].n; t++)
            if (c[i].tokens[t] < 0 || c[i].tokens[t] >= m->vocab)
                return sl_err_set(err, SL_ERANGE, "chunk %d, token %d: id %d is outside the vocabulary (0..%d)", i, t,
                                  (int)c[i].tokens[t], m->vocab - 1);
    }
    for (int i = 0; i < n; i++) {
        sl_status st = sl_kv_seq_reserve(&e->kv, c[i].seq, c[i].pos + c[i].n, err);
        if (st)
            return sl_err_prefix(err, st, "sequence %d", c[i].seq);
    }
    /* Pack tokens into steps of at most bt; a chunk may span steps, which
     * changes nothing since a position only reads earlier ones. */
    int nt = 0, row = 0, step_rows = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < c[i].n; t++) {
            const int want = c[i].all_logits || t == c[i].n - 1;
            e->tok_seq[nt] = c[i].seq;
            e->tok_pos[nt] = c[i].pos + t;
            e->tok_id[nt] = c[i].tokens[t];
            e->tok_out[nt] = want;
            step_rows += want;
            if (++nt == e->bt) {
                step(e, nt, logits + (size_t)row * m->vocab, step_rows);
                row += step_rows;
                nt = step_rows = 0;
            }
        }
    if (nt)
        step(e, nt, logits + (size_t)row * m->vocab, step_rows);
    return SL_OK;
}
