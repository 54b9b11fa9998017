/* test_engine.c - the CPU engine against llama2.c's run.c: greedy tokens,
 * logits, perplexity; batch, chunk and thread invariance; the paged KV
 * cache; typed errors that leave the engine serving. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sl_engine.h"
#include "sl_eval.h"
#include "sl_sampler.h"
#include "sl_types.h"
#include "test_images.h"

typedef struct ref_seq {
    const char *file, *prompt;
    int32_t prompt_ids[64], seq[300];
    int n_prompt, n_seq;
} ref_seq;

static void read_ids(const char *models, const char *file, ref_seq *r)
{
    test_read_ref_ids(test_path(models, file), r->prompt_ids, 64, &r->n_prompt, r->seq, 300, &r->n_seq);
}

static ref_seq refs[3] = {
    {"reference/stories260K_t0_n200_once_upon_a_time.ids", "Once upon a time", {0}, {0}, 0, 0},
    {"reference/stories260K_t0_n200_the_cat.ids", "The cat", {0}, {0}, 0, 0},
    {"reference/stories260K_t0_default_empty_prompt.ids", "", {0}, {0}, 0, 0},
};

/* with unfused, the element-wise steps run as passes of their own */
static sl_engine *engine_ex(const sl_model *m, int isa, int threads, int max_seqs, int unfused)
{
    sl_engine_cfg c = {.n_threads = threads, .isa = isa, .max_seqs = max_seqs, .ctx = 512,
                       .kv_blocks = max_seqs * sl_kv_blocks_for(512), .max_batch_tokens = 64, .unfused = unfused};
    sl_engine *e;
    sl_err err = {0};
    cr_assert_eq(sl_engine_create(m, &c, &e, &err), SL_OK, "%s", err.msg);
    return e;
}

static sl_engine *engine(const sl_model *m, int isa, int threads, int max_seqs)
{
    return engine_ex(m, isa, threads, max_seqs, 0);
}

/* Greedy continuation of ref's prompt to ref's length; every id must match. */
static void check_greedy(const sl_model *m, sl_engine *e, const ref_seq *r, const char *what)
{
    sl_err err = {0};
    int s;
    cr_assert_eq(sl_kv_seq_new(sl_engine_kv(e), &s, &err), SL_OK);
    int32_t seq[300];
    memcpy(seq, r->prompt_ids, sizeof(int32_t) * r->n_prompt);
    int n = r->n_prompt;
    float *lg = malloc(sizeof(float) * m->vocab);
    sl_chunk c = {s, 0, n, seq, 0};
    cr_assert_eq(sl_engine_forward(e, &c, 1, lg, &err), SL_OK, "%s", err.msg);
    while (n < r->n_seq) {
        seq[n] = sl_argmax(lg, m->vocab);
        cr_assert_eq(seq[n], r->seq[n], "%s, %s: position %d is %d, run.c has %d", what, r->file, n, seq[n], r->seq[n]);
        c = (sl_chunk){s, n, 1, &seq[n], 0};
        n++;
        cr_assert_eq(sl_engine_forward(e, &c, 1, lg, &err), SL_OK, "%s", err.msg);
    }
    sl_kv_seq_free(sl_engine_kv(e), s);
    free(lg);
}

static void greedy_all(const char *image, const char *what)
{
    NEED_SHARED(models);
    sl_model *m = test_open_model(image);
    for (int i = 0; i < 3; i++) {
        read_ids(models, refs[i].file, &refs[i]);
        /* the tokenizer gives run.c's prompt ids */
        int32_t *ids;
        size_t n;
        cr_assert_eq(sl_tok_encode(m->tok, refs[i].prompt, strlen(refs[i].prompt), true, &ids, &n, NULL), SL_OK);
        cr_assert_eq((int)n, refs[i].n_prompt, "%s: prompt \"%s\" encodes to %zu ids", what, refs[i].prompt, n);
        cr_assert_eq(memcmp(ids, refs[i].prompt_ids, n * sizeof *ids), 0);
        free(ids);
    }
    for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
        if (!sl_kernels_for((sl_isa)isa))
            continue;
        for (int th = 1; th <= 2; th++) {
            sl_engine *e = engine(m, isa, th, 1);
            char w[160];
            snprintf(w, sizeof w, "%s %s %d thread%s", what, sl_isa_name((sl_isa)isa), th, th > 1 ? "s" : "");
            for (int i = 0; i < 3; i++)
                check_greedy(m, e, &refs[i], w);
            sl_engine_destroy(e);
        }
    }
    sl_model_close(m);
}

Test(engine, greedy_matches_run_c_converted_image, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    test_write_image(models, "llama2c", SL_TYPE_KEEP, test_path(dir, "s.gguf"));
    greedy_all(test_path(dir, "s.gguf"), "converted stories260K");
    test_rmtree(dir);
}

Test(engine, greedy_matches_run_c_llama_cpp_gguf, .timeout = 300)
{
    NEED_SHARED(models);
    greedy_all(test_path(models, "stories260K.gguf"), "llama.cpp stories260K.gguf");
}

Test(engine, ak42_q8_matches_its_reference)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    test_write_image(models, "ak42", SL_TYPE_KEEP, test_path(dir, "q.gguf"));
    sl_model *m = test_open_model(test_path(dir, "q.gguf"));
    ref_seq r = {"reference/stories260K-q8_dequant_t0_n200_once_upon_a_time.ids", "Once upon a time", {0}, {0}, 0, 0};
    read_ids(models, r.file, &r);
    for (int isa = 0; isa < SL_ISA_COUNT; isa++)
        if (sl_kernels_for((sl_isa)isa)) {
            sl_engine *e = engine(m, isa, 2, 1);
            check_greedy(m, e, &r, sl_isa_name((sl_isa)isa));
            sl_engine_destroy(e);
        }
    sl_model_close(m);
    test_rmtree(dir);
}

Test(engine, logits_match_run_c)
{
    NEED_SHARED(models);
    size_t len;
    float *ref = (float *)(void *)test_slurp(test_path(models, "reference/stories260K_t0_n200_once_upon_a_time.logits.f32"), &len);
    cr_assert_eq(len, 200 * 512 * sizeof(float));
    read_ids(models, refs[0].file, &refs[0]);
    sl_model *m = test_open_model(test_path(models, "stories260K.gguf"));
    float *lg = malloc(sizeof(float) * 200 * 512);
    for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
        if (!sl_kernels_for((sl_isa)isa))
            continue;
        sl_engine *e = engine(m, isa, 2, 1);
        int s;
        sl_kv_seq_new(sl_engine_kv(e), &s, NULL);
        sl_chunk c = {s, 0, 200, refs[0].seq, 1};
        sl_err err = {0};
        cr_assert_eq(sl_engine_forward(e, &c, 1, lg, &err), SL_OK, "%s", err.msg);
        double worst = 0;
        for (int p = 0; p < 200; p++) {
            float mx = 0;
            for (int v = 0; v < 512; v++)
                mx = fmaxf(mx, fabsf(ref[p * 512 + v]));
            for (int v = 0; v < 512; v++) {
                double d = fabs((double)lg[p * 512 + v] - ref[p * 512 + v]);
                cr_assert(d <= 1e-4 * mx, "%s: row %d token %d: %.7g vs run.c %.7g (|d| %.3g > 1e-4 x %.4g)",
                          sl_isa_name((sl_isa)isa), p, v, lg[p * 512 + v], ref[p * 512 + v], d, mx);
                worst = fmax(worst, d / mx);
            }
        }
        cr_log_info("%s: worst |dlogit| / row max = %.3g", sl_isa_name((sl_isa)isa), worst);
        sl_engine_destroy(e);
    }
    free(lg);
    free(ref);
    sl_model_close(m);
}

/* ---- invariance ------------------------------------------------------ */

static uint64_t rs = 99;
static int32_t rtok(void)
{
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (int32_t)(rs % 509) + 3;
}

/* The logits of every position of `toks`, computed alone in one chunk. */
static float *alone(sl_engine *e, const int32_t *toks, int n)
{
    float *lg = malloc(sizeof(float) * 512 * n);
    int s;
    sl_err err = {0};
    cr_assert_eq(sl_kv_seq_new(sl_engine_kv(e), &s, &err), SL_OK);
    sl_chunk c = {s, 0, n, toks, 1};
    cr_assert_eq(sl_engine_forward(e, &c, 1, lg, &err), SL_OK, "%s", err.msg);
    sl_kv_seq_free(sl_engine_kv(e), s);
    return lg;
}

/* Runs n_seq sequences together: each advances by its own chunk size per
 * call (sizes[] cycle), sequences join late and finish early, and every
 * position's logits are compared bitwise with `solo`. */
static void mixed(sl_engine *e, int n_seq, int32_t **toks, const int *len, float **solo, const char *what)
{
    sl_err err = {0};
    int seq[16], done[16] = {0}, start[16];
    const int sizes[] = {1, 3, 7, 2, 16, 5};
    for (int i = 0; i < n_seq; i++) {
        cr_assert_eq(sl_kv_seq_new(sl_engine_kv(e), &seq[i], &err), SL_OK, "%s", err.msg);
        start[i] = i % 3; /* join after 0, 1 or 2 rounds */
    }
    float *lg = malloc(sizeof(float) * 512 * 16 * 16);
    for (int round = 0;; round++) {
        sl_chunk c[16];
        int who[16], n = 0;
        for (int i = 0; i < n_seq; i++) {
            if (round < start[i] || done[i] >= len[i])
                continue;
            int k = sizes[(round + i) % 6];
            if (k > len[i] - done[i])
                k = len[i] - done[i];
            c[n] = (sl_chunk){seq[i], done[i], k, toks[i] + done[i], 1};
            who[n++] = i;
        }
        if (n == 0)
            break;
        cr_assert_eq(sl_engine_forward(e, c, n, lg, &err), SL_OK, "%s", err.msg);
        int row = 0;
        for (int j = 0; j < n; j++) {
            const int i = who[j];
            cr_assert(memcmp(lg + (size_t)row * 512, solo[i] + (size_t)done[i] * 512, sizeof(float) * 512 * c[j].n) == 0,
                      "%s: sequence %d positions %d..%d differ from the same sequence alone", what, i, done[i],
                      done[i] + c[j].n - 1);
            row += c[j].n;
            done[i] += c[j].n;
        }
    }
    for (int i = 0; i < n_seq; i++)
        sl_kv_seq_free(sl_engine_kv(e), seq[i]);
    free(lg);
}

/* 16 prompts of 5 to 44 tokens: BOS, then random ids */
static void random_prompts(int32_t *toks[16], int len[16])
{
    for (int i = 0; i < 16; i++) {
        len[i] = 5 + (i * 7) % 40;
        toks[i] = malloc(sizeof(int32_t) * len[i]);
        toks[i][0] = 1;
        for (int j = 1; j < len[i]; j++)
            toks[i][j] = rtok();
    }
}

static void invariance(const char *image)
{
    sl_model *m = test_open_model(image);
    int32_t *toks[16];
    int len[16];
    random_prompts(toks, len);
    for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
        if (!sl_kernels_for((sl_isa)isa))
            continue;
        sl_engine *e1 = engine(m, isa, 1, 16), *e2 = engine(m, isa, 2, 16);
        float *solo[16];
        for (int i = 0; i < 16; i++) {
            solo[i] = alone(e1, toks[i], len[i]);
            float *two = alone(e2, toks[i], len[i]);
            cr_assert(memcmp(solo[i], two, sizeof(float) * 512 * len[i]) == 0,
                      "%s: sequence %d differs between 1 and 2 threads", sl_isa_name((sl_isa)isa), i);
            free(two);
        }
        char w[64];
        snprintf(w, sizeof w, "%s batch of 4", sl_isa_name((sl_isa)isa));
        mixed(e2, 4, toks, len, solo, w);
        snprintf(w, sizeof w, "%s batch of 16", sl_isa_name((sl_isa)isa));
        mixed(e2, 16, toks, len, solo, w);
        snprintf(w, sizeof w, "%s batch of 16, 1 thread", sl_isa_name((sl_isa)isa));
        mixed(e1, 16, toks, len, solo, w);
        /* every block came back */
        cr_assert_eq(sl_engine_kv(e2)->n_free, sl_engine_kv(e2)->n_blocks);
        for (int i = 0; i < 16; i++)
            free(solo[i]);
        sl_engine_destroy(e1);
        sl_engine_destroy(e2);
    }
    for (int i = 0; i < 16; i++)
        free(toks[i]);
    sl_model_close(m);
}

Test(engine, batch_chunk_thread_invariance_f32, .timeout = 300)
{
    NEED_SHARED(models);
    invariance(test_path(models, "stories260K.gguf"));
}

Test(engine, batch_chunk_thread_invariance_quantized, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    /* q4_1 exercises the quantized kernels plus the f16 fallback of ffn_down (172 columns) */
    test_write_image(models, "llama2c", SL_TYPE_Q4_1, test_path(dir, "q41.gguf"));
    invariance(test_path(dir, "q41.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_BF16, test_path(dir, "bf16.gguf"));
    invariance(test_path(dir, "bf16.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_IQ4_NL, test_path(dir, "iq4nl.gguf"));
    invariance(test_path(dir, "iq4nl.gguf"));
    test_rmtree(dir);
}

/* The fused steps (RoPE and the KV write in the QKV product's tasks, each
 * attention task quantizing its head for wo, SwiGLU and down's
 * quantization in the gate/up product's tasks) against the same steps run
 * as their own passes: the same bits, at every level, alone and in mixed
 * batches, 1 and 2 threads.  The tiny synth shape takes every fused path
 * (head_dim 32, grouped KV heads, block-quantized down); stories260K's
 * head_dim 8 and 172-wide FFN take none. */
Test(engine, fused_steps_match_unfused_bit_for_bit, .timeout = 300)
{
    char *dir = test_tmpdir();
    const uint32_t types[] = {SL_TYPE_Q8_0, SL_TYPE_Q4_0, SL_TYPE_IQ4_NL};
    int32_t *toks[16];
    int len[16];
    random_prompts(toks, len);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const char *path = test_path(dir, "tiny.gguf");
        test_write_synth("tiny", 7, types[ti], path);
        sl_model *m = test_open_model(path);
        cr_assert_eq(m->head_dim % 32, 0);
        cr_assert_neq(m->n_heads, m->n_kv_heads);
        for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
            if (!sl_kernels_for((sl_isa)isa))
                continue;
            sl_engine *ef[2] = {engine(m, isa, 1, 16), engine(m, isa, 2, 16)}, *eu = engine_ex(m, isa, 2, 16, 1);
            float *solo[16];
            for (int i = 0; i < 16; i++) {
                solo[i] = alone(eu, toks[i], len[i]);
                float *f = alone(ef[0], toks[i], len[i]);
                cr_assert(memcmp(solo[i], f, sizeof(float) * 512 * len[i]) == 0,
                          "%s %s: sequence %d, fused differs from unfused", sl_isa_name((sl_isa)isa),
                          sl_type_get(types[ti])->name, i);
                free(f);
            }
            char w[80];
            snprintf(w, sizeof w, "%s %s fused, batch of 16", sl_isa_name((sl_isa)isa), sl_type_get(types[ti])->name);
            mixed(ef[1], 16, toks, len, solo, w);
            for (int i = 0; i < 16; i++)
                free(solo[i]);
            sl_engine_destroy(ef[0]);
            sl_engine_destroy(ef[1]);
            sl_engine_destroy(eu);
        }
        sl_model_close(m);
    }
    for (int i = 0; i < 16; i++)
        free(toks[i]);
    test_rmtree(dir);
}

/* One token a step far into the context: from 128 positions the tiny
 * shape's attention reads 64 KiB of keys and values a step, and at 2
 * threads goes to the pool even for one token.  Every step's logits must
 * equal the same positions computed in one chunk on one thread. */
Test(engine, long_context_decoding_matches_one_chunk, .timeout = 300)
{
    char *dir = test_tmpdir();
    sl_err err = {0};
    const char *path = test_path(dir, "tiny.gguf");
    test_write_synth("tiny", 11, SL_TYPE_Q8_0, path);
    sl_model *m = test_open_model(path);
    cr_assert_eq(m->vocab, 512);
    enum { N = 300 };
    int32_t toks[N];
    toks[0] = 1;
    for (int i = 1; i < N; i++)
        toks[i] = rtok();
    float *lg = malloc(sizeof(float) * 512);
    for (int isa = 0; isa < SL_ISA_COUNT; isa++) {
        if (!sl_kernels_for((sl_isa)isa))
            continue;
        sl_engine *e1 = engine(m, isa, 1, 1), *e2 = engine(m, isa, 2, 1);
        float *whole = alone(e1, toks, N);
        int s;
        cr_assert_eq(sl_kv_seq_new(sl_engine_kv(e2), &s, &err), SL_OK, "%s", err.msg);
        for (int p = 0; p < N; p++) {
            sl_chunk c = {s, p, 1, &toks[p], 1};
            cr_assert_eq(sl_engine_forward(e2, &c, 1, lg, &err), SL_OK, "%s", err.msg);
            cr_assert(memcmp(lg, whole + (size_t)p * 512, sizeof(float) * 512) == 0,
                      "%s: position %d decoded alone at 2 threads differs from the chunk at 1", sl_isa_name((sl_isa)isa),
                      p);
        }
        sl_kv_seq_free(sl_engine_kv(e2), s);
        free(whole);
        sl_engine_destroy(e1);
        sl_engine_destroy(e2);
    }
    free(lg);
    sl_model_close(m);
    test_rmtree(dir);
}

/* W8A8 (written by `sluice quantize`): per-token activation scales keep a
 * token's values independent of its batch; and an image missing a row
 * scale tensor is refused by name. */
Test(engine, w8a8_invariance_and_missing_scales, .timeout = 300)
{
    NEED_SHARED(models);
    const char *bin = getenv("SLUICE_BIN");
    if (!bin)
        cr_skip_test("SLUICE_BIN is not set (run through meson test)");
    char *dir = test_tmpdir();
    char *f32 = strdup(test_path(dir, "f32.gguf")), *w = strdup(test_path(dir, "w8a8.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_F32, f32);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' quantize '%s' -o '%s' --type w8a8 >/dev/null", bin, f32, w);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    invariance(w);
    sl_model_src src;
    sl_err err = {0};
    cr_assert_eq(sl_import_gguf(w, &src, &err), SL_OK, "%s", err.msg);
    uint32_t i = 0;
    while (i < src.n_tensors && strcmp(src.tensors[i].name, "blk.3.ffn_up.weight_scale"))
        i++;
    cr_assert_lt(i, src.n_tensors, "the row scales of blk.3.ffn_up are missing from the image");
    memmove(&src.tensors[i], &src.tensors[i + 1], sizeof *src.tensors * (src.n_tensors - i - 1));
    src.n_tensors--;
    const char *bad = test_path(dir, "bad.gguf");
    sl_write_opts o = {.type = SL_TYPE_KEEP, .recipe = "test"};
    cr_assert_eq(sl_model_write(&src, bad, &o, NULL, &err), SL_OK, "%s", err.msg);
    sl_model_src_free(&src);
    sl_model *m;
    cr_assert_eq(sl_model_open(bad, 0, &m, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "blk.3.ffn_up.weight_scale"), "%s", err.msg);
    free(f32);
    free(w);
    test_rmtree(dir);
}

/* ---- quality ----------------------------------------------------------- */

static sl_eval_result pieces(sl_engine *e, sl_engine *ref, const sl_model *m, const char *models)
{
    size_t len;
    char *text = (char *)test_slurp(test_path(models, "text/tinystories_valid_a.txt"), &len);
    sl_eval_seq *seqs;
    int32_t *store;
    int n;
    sl_err err = {0};
    cr_assert_eq(sl_eval_pieces(m->tok, text, len, "\n\n", 2, 200, 512, true, &seqs, &store, &n, &err), SL_OK, "%s",
                 err.msg);
    cr_assert_eq(n, 200);
    sl_eval_result r;
    cr_assert_eq(sl_eval_run(e, ref, seqs, n, &r, &err), SL_OK, "%s", err.msg);
    free(seqs);
    free(store);
    free(text);
    return r;
}

Test(engine, perplexity_and_kld_reference_protocol, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir();
    test_write_image(models, "llama2c", SL_TYPE_KEEP, test_path(dir, "f32.gguf"));
    test_write_image(models, "llama2c", SL_TYPE_Q8_0, test_path(dir, "q8.gguf"));
    test_write_image(models, "ak42", SL_TYPE_KEEP, test_path(dir, "ak42.gguf"));
    sl_model *f = test_open_model(test_path(dir, "f32.gguf"));
    sl_model *q = test_open_model(test_path(dir, "q8.gguf"));
    sl_model *a = test_open_model(test_path(dir, "ak42.gguf"));
    sl_engine *ef = engine(f, -1, 2, 16), *eq = engine(q, -1, 2, 16), *ea = engine(a, -1, 2, 16);

    sl_eval_result r = pieces(ef, NULL, f, models);
    cr_assert_eq(r.n_pred, 19395);
    cr_assert(fabs(r.nll - 1.439589) < 1e-6, "mean NLL %.7f, run.c 1.439589", r.nll);
    cr_assert(fabs(r.ppl - 4.2190) < 5e-5, "perplexity %.5f, run.c 4.2190", r.ppl);

    r = pieces(eq, ef, q, models);
    cr_log_info("q8_0 vs f32: ppl %.4f, KLD mean %.3g p99 %.3g max %.3g, top-1 %.4f", r.ppl, r.kl_mean, r.kl_p99,
                r.kl_max, r.top1);
    cr_assert(r.kl_mean <= 2e-3, "Q8_0 mean KLD %.3g > 2e-3", r.kl_mean);
    cr_assert(r.kl_mean > 0 && r.top1 < 1.0, "Q8_0 cannot equal F32 exactly");
    cr_assert(fabs(r.ref_ppl - 4.2190) < 5e-5);

    /* the correctly dequantized ak42 export: reference/README.md's numbers */
    r = pieces(ea, ef, a, models);
    cr_assert(fabs(r.ppl - 4.2193) < 5e-5, "ak42 perplexity %.5f, run.c 4.2193", r.ppl);
    cr_assert(fabs(r.kl_mean - 2.339e-4) < 0.01e-4, "ak42 KLD %.4g, reference 2.339e-4", r.kl_mean);
    cr_assert(fabs(r.kl_max - 0.0278) < 0.0005, "ak42 max KLD %.4g, reference 0.0278", r.kl_max);
    cr_assert(fabs(r.top1 - 0.9922) < 0.0001, "ak42 top-1 %.4f, reference 0.9922", r.top1);

    /* the model against itself: zero divergence */
    r = pieces(ef, ef, f, models);
    cr_assert_eq(r.kl_mean, 0.0);
    cr_assert_eq(r.top1, 1.0);
    cr_assert_eq(r.max_dlogit, 0.0);
    sl_engine_destroy(ef);
    sl_engine_destroy(eq);
    sl_engine_destroy(ea);
    sl_model_close(f);
    sl_model_close(q);
    sl_model_close(a);
    test_rmtree(dir);
}

/* ---- KV cache and errors ----------------------------------------------- */

Test(engine, kv_pool_and_typed_errors_keep_serving)
{
    NEED_SHARED(models);
    sl_model *m = test_open_model(test_path(models, "stories260K.gguf"));
    /* a pool of 5 blocks (80 positions) for 4 sequences */
    sl_engine_cfg c = {.n_threads = 2, .isa = -1, .max_seqs = 4, .ctx = 512, .kv_blocks = 5, .max_batch_tokens = 32};
    sl_engine *e;
    sl_err err = {0};
    cr_assert_eq(sl_engine_create(m, &c, &e, &err), SL_OK, "%s", err.msg);
    sl_kv *kv = sl_engine_kv(e);
    int32_t toks[100];
    toks[0] = 1;
    for (int i = 1; i < 100; i++)
        toks[i] = rtok();
    float *lg = malloc(sizeof(float) * 512 * 100), *first = malloc(sizeof(float) * 512);
    int a, b;
    cr_assert_eq(sl_kv_seq_new(kv, &a, &err), SL_OK);
    sl_chunk ch = {a, 0, 40, toks, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, first, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(kv->n_free, 2, "40 positions hold 3 blocks of 16");
    /* growing past the pool: typed error, nothing lost */
    cr_assert_eq(sl_kv_seq_new(kv, &b, &err), SL_OK);
    ch = (sl_chunk){b, 0, 60, toks, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, lg, &err), SL_ERANGE);
    cr_assert(strstr(err.msg, "KV pool exhausted"), "%s", err.msg);
    /* bad token id, position past the context, dead or repeated sequence */
    int32_t bad = 512;
    ch = (sl_chunk){a, 40, 1, &bad, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, lg, &err), SL_ERANGE);
    cr_assert(strstr(err.msg, "outside the vocabulary"), "%s", err.msg);
    ch = (sl_chunk){a, 512, 1, toks, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, lg, &err), SL_ERANGE);
    ch = (sl_chunk){3, 0, 1, toks, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, lg, &err), SL_EINVAL);
    sl_chunk two[2] = {{a, 40, 1, toks + 40, 0}, {a, 41, 1, toks + 41, 0}};
    cr_assert_eq(sl_engine_forward(e, two, 2, lg, &err), SL_EINVAL);
    /* freeing returns blocks at once; a reused slot starts clean */
    sl_kv_seq_free(kv, a);
    sl_kv_seq_free(kv, b);
    cr_assert_eq(kv->n_free, 5);
    cr_assert_eq(sl_kv_seq_new(kv, &a, &err), SL_OK);
    ch = (sl_chunk){a, 0, 40, toks, 0};
    cr_assert_eq(sl_engine_forward(e, &ch, 1, lg, &err), SL_OK, "%s", err.msg);
    cr_assert(memcmp(lg, first, sizeof(float) * 512) == 0, "the same prompt after errors and reuse gives other logits");
    /* the sequence limit */
    int s2, s3, s4;
    cr_assert_eq(sl_kv_seq_new(kv, &s2, NULL), SL_OK);
    cr_assert_eq(sl_kv_seq_new(kv, &s3, NULL), SL_OK);
    cr_assert_eq(sl_kv_seq_new(kv, &s4, NULL), SL_OK);
    cr_assert_eq(sl_kv_seq_new(kv, &b, &err), SL_ERANGE);
    free(lg);
    free(first);
    sl_engine_destroy(e);
    sl_model_close(m);
}

Test(engine, model_open_refuses_what_it_cannot_run)
{
    NEED_SHARED(models);
    sl_model *m;
    sl_err err = {0};
    cr_assert_eq(sl_model_open(test_path(models, "vocab/ggml-vocab-gpt-2.gguf"), 0, &m, &err), SL_EUNSUPPORTED);
    cr_assert(strstr(err.msg, "gpt2"), "%s", err.msg);
    cr_assert_eq(sl_model_open(test_path(models, "vocab/ggml-vocab-llama-spm.gguf"), 0, &m, &err), SL_EFORMAT);
    cr_assert(strstr(err.msg, "token_embd"), "%s", err.msg);
    cr_assert_eq(sl_model_open("/nonexistent.gguf", 0, &m, &err), SL_ENOTFOUND);
}
