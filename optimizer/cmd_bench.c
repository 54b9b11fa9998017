/* cmd_bench.c - `sluice bench`: prompt processing and generation speed at
 * several numbers of concurrent sequences, peak memory, and the decoding
 * ceiling that this machine's read bandwidth sets for the image.
 *
 * Prompts are seeded pseudo-random token ids; generation is greedy.  Each
 * concurrency level runs prefill (all prompts in one batch) and then
 * --gen decode steps of one token per sequence. */
#include <getopt.h>
#include <immintrin.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sl_sampler.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice bench IMAGE [--threads T[,T...]] [--isa ISA] [--prompt N] [--gen N]\n"
               "                    [--seqs 1,4,16,64] [--reps R] [--bw-mib M] [--unfused] [--json]\n"
               "  Each level runs R times (default 3); the medians are reported.  Several\n"
               "  thread counts (--threads 1,2) run as engines of their own, interleaved\n"
               "  rep by rep, each level's decoding also compared with the first count's\n"
               "  as the median of the reps' paired ratios.\n"
               "  --unfused runs RoPE, SwiGLU and activation quantization as passes of\n"
               "  their own (the same results), to measure what fusing them gains.\n");
}

/* The build machine kind reads ~28.5 GB/s with 2 threads
 * (../shared/ANCHORS.md); less than this means a noisy neighbour. */
#define NOISY_BW 24e9

typedef struct bw_arg {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
} bw_arg;

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n)
{
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(const void *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(const void *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(const void *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(const void *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    return (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 3);
}

static uint64_t read_plain(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s ^= v;
    }
    return s;
}

/* One slice of the buffer: 1/BW_SLICES of it, read by whichever engine
 * thread takes the task. */
#define BW_SLICES 64

static void bw_task(void *ctx, int task, int thread)
{
    (void)thread;
    bw_arg *a = (bw_arg *)ctx + task;
    a->sink = __builtin_cpu_supports("avx2") ? read_avx2(a->p, a->n) : read_plain(a->p, a->n);
}

/* Read-only bandwidth over `mib` MiB on the engine's threads (pinned as
 * they decode): the median of 5 passes, in bytes/s; 0 if the buffer cannot
 * be had. */
static double read_bandwidth(sl_engine *e, size_t mib)
{
    size_t n = mib << 20;
    uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return 0.0;
    memset(p, 1, n);
    double bw[5];
    bw_arg args[BW_SLICES];
    const size_t per = (n / BW_SLICES) & ~(size_t)127;
    for (int pass = 0; pass < 5; pass++) {
        for (int i = 0; i < BW_SLICES; i++)
            args[i] = (bw_arg){p + (size_t)i * per, per, 0};
        double t0 = sl_cli_now_us();
        sl_engine_run(e, bw_task, args, BW_SLICES);
        bw[pass] = (double)per * BW_SLICES / ((sl_cli_now_us() - t0) / 1e6);
    }
    munmap(p, n);
    return sl_cli_median(bw, 5);
}

#define MAX_TC 4 /* thread counts compared in one run */

typedef struct level {
    int seqs;
    double pp_tok_s, tg_tok_s;
} level;

/* One concurrency level: prefill n prompts together, then gen steps. */
static int run_level(sl_engine *e, const sl_model *m, int n, int prompt, int gen, uint64_t seed, level *out, sl_err *err)
{
    sl_kv *kv = sl_engine_kv(e);
    int32_t *toks = malloc(sizeof *toks * (size_t)n * (size_t)(prompt + gen));
    float *logits = malloc(sizeof(float) * (size_t)n * (size_t)m->vocab);
    sl_chunk *ch = malloc(sizeof *ch * (size_t)n);
    int *seq = malloc(sizeof *seq * (size_t)n), made = 0;
    sl_status st = toks && logits && ch && seq ? SL_OK : sl_err_set(err, SL_ENOMEM, "out of memory");
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; !st && i < (size_t)n * (size_t)(prompt + gen); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        toks[i] = (int32_t)(x % (uint64_t)m->vocab);
    }
    for (; !st && made < n; made++)
        st = sl_kv_seq_new(kv, &seq[made], err);
    if (!st) {
        for (int i = 0; i < n; i++)
            ch[i] = (sl_chunk){seq[i], 0, prompt, toks + (size_t)i * (prompt + gen), 0};
        double t0 = sl_cli_now_us();
        st = sl_engine_forward(e, ch, n, logits, err);
        double t1 = sl_cli_now_us();
        out->pp_tok_s = (double)n * prompt * 1e6 / (t1 - t0);
        for (int g = 0; !st && g < gen; g++) {
            for (int i = 0; i < n; i++) {
                int32_t *row = toks + (size_t)i * (prompt + gen);
                row[prompt + g] = sl_argmax(logits + (size_t)i * m->vocab, m->vocab);
                ch[i] = (sl_chunk){seq[i], prompt + g, 1, row + prompt + g, 0};
            }
            st = sl_engine_forward(e, ch, n, logits, err);
        }
        out->tg_tok_s = (double)n * gen * 1e6 / (sl_cli_now_us() - t1);
        out->seqs = n;
    }
    for (int i = 0; i < made; i++)
        sl_kv_seq_free(kv, seq[i]);
    free(toks);
    free(logits);
    free(ch);
    free(seq);
    return st ? -1 : 0;
}

int sl_cmd_bench(int argc, char **argv)
{
    enum { O_ISA = 256, O_PROMPT, O_GEN, O_SEQS, O_BW, O_JSON, O_REPS, O_UNFUSED };
    static const struct option opts[] = {
        {"threads", required_argument, 0, 'T'}, {"isa", required_argument, 0, O_ISA},
        {"prompt", required_argument, 0, O_PROMPT}, {"gen", required_argument, 0, O_GEN},
        {"seqs", required_argument, 0, O_SEQS}, {"bw-mib", required_argument, 0, O_BW},
        {"json", no_argument, 0, O_JSON},       {"reps", required_argument, 0, O_REPS},
        {"unfused", no_argument, 0, O_UNFUSED}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    long long prompt = 32, gen = 32, bw_mib = 1024, reps = 3;
    int json = 0, c, levels[16] = {1, 4, 16, 64}, n_levels = 4, tcs[MAX_TC] = {0}, n_tc = 1;
    sl_engine_cfg ec = {.isa = -1, .pin = 2};
    optind = 1;
    while ((c = getopt_long(argc, argv, "T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            if ((n_tc = sl_cli_int_list("--threads", optarg, 1, 1024, tcs, MAX_TC)) < 1)
                return SL_EXIT_ERROR;
            break;
        case O_ISA: if (sl_cli_isa(optarg, &ec.isa)) return SL_EXIT_ERROR; break;
        case O_UNFUSED: ec.unfused = 1; break;
        case O_PROMPT: if (sl_cli_int("--prompt", optarg, 1, 4096, &prompt)) return SL_EXIT_ERROR; break;
        case O_GEN: if (sl_cli_int("--gen", optarg, 1, 4096, &gen)) return SL_EXIT_ERROR; break;
        case O_REPS: if (sl_cli_int("--reps", optarg, 1, 100, &reps)) return SL_EXIT_ERROR; break;
        case O_BW: if (sl_cli_int("--bw-mib", optarg, 0, 1 << 16, &bw_mib)) return SL_EXIT_ERROR; break;
        case O_SEQS:
            if ((n_levels = sl_cli_int_list("--seqs", optarg, 1, 1024, levels, 16)) < 0)
                return SL_EXIT_ERROR;
            break;
        case O_JSON: json = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc || n_levels == 0) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    int max_seqs = 1;
    for (int i = 0; i < n_levels; i++)
        max_seqs = levels[i] > max_seqs ? levels[i] : max_seqs;
    ec.max_seqs = max_seqs;
    ec.ctx = (int)(prompt + gen);
    ec.kv_blocks = max_seqs * sl_kv_blocks_for(ec.ctx);
    ec.max_batch_tokens = 512;
    sl_model *m;
    sl_engine *es[MAX_TC] = {0};
    ec.n_threads = tcs[0];
    int rc = sl_cli_open(argv[optind], &ec, &m, &es[0]);
    if (rc)
        return rc;
    for (int ti = 1; ti < n_tc && !rc; ti++) {
        sl_engine_cfg ci = ec;
        ci.n_threads = tcs[ti];
        rc = sl_cli_engine(argv[optind], m, &ci, &es[ti]);
    }
    /* the engine that the bandwidth, the ceiling and the summary are for:
     * the one with the most threads */
    int top = 0;
    for (int ti = 1; ti < n_tc && !rc; ti++)
        if (sl_engine_threads(es[ti]) > sl_engine_threads(es[top]))
            top = ti;
    sl_engine *e = es[top];
    static level res[MAX_TC][16];
    static double pp[MAX_TC][16][100], tg[MAX_TC][16][100], ratio[MAX_TC][16], lratio[MAX_TC][16];
    sl_err err = {0};
    if (rc)
        goto out;
    /* warm-up: page the weights in so the first level is not a disk test */
    for (int ti = 0; ti < n_tc; ti++) {
        level warm;
        if (run_level(es[ti], m, 1, prompt < 4 ? (int)prompt : 4, gen < 2 ? (int)gen : 2, 7, &warm, &err)) {
            fprintf(stderr, "sluice: %s\n", err.msg);
            rc = SL_EXIT_ERROR;
            goto out;
        }
    }
    /* Levels (and thread counts) interleaved across repetitions, so a noisy
     * minute spreads over all of them; medians per level. */
    for (int r = 0; r < reps; r++)
        for (int ti = 0; ti < n_tc; ti++)
            for (int i = 0; i < n_levels; i++) {
                if (run_level(es[ti], m, levels[i], (int)prompt, (int)gen, 42 + (uint64_t)i, &res[ti][i], &err)) {
                    fprintf(stderr, "sluice: %d threads, %d sequences: %s\n", sl_engine_threads(es[ti]), levels[i],
                            err.msg);
                    rc = SL_EXIT_ERROR;
                    goto out;
                }
                pp[ti][i][r] = res[ti][i].pp_tok_s;
                tg[ti][i][r] = res[ti][i].tg_tok_s;
            }
    /* each rep's decoding against the first thread count's, and against the
     * first level's, in the same rep (before the medians, which sort) */
    for (int ti = 0; ti < n_tc; ti++)
        for (int i = 0; i < n_levels; i++) {
            double q[100], s[100];
            for (int r = 0; r < reps; r++) {
                q[r] = tg[ti][i][r] / tg[0][i][r];
                s[r] = tg[ti][i][r] / tg[ti][0][r];
            }
            ratio[ti][i] = sl_cli_median(q, (int)reps);
            lratio[ti][i] = sl_cli_median(s, (int)reps);
        }
    for (int ti = 0; ti < n_tc; ti++)
        for (int i = 0; i < n_levels; i++) {
            res[ti][i].pp_tok_s = sl_cli_median(pp[ti][i], (int)reps);
            res[ti][i].tg_tok_s = sl_cli_median(tg[ti][i], (int)reps);
        }
    const uint64_t rss = sl_cli_peak_rss();
    const int threads = sl_engine_threads(e);
    const double bw = bw_mib ? read_bandwidth(e, (size_t)bw_mib) : 0.0;
    const double ceiling = bw > 0 ? bw / (double)m->weight_bytes : 0.0;
    const sl_kernels *k = sl_engine_kernels(e);
    /* the kernels this image uses */
    int used[SL_W_COUNT] = {0};
    used[m->output.wt] = 1;
    for (int l = 0; l < m->n_layers; l++) {
        const sl_layer *L = &m->layers[l];
        used[L->wq.wt] = used[L->wk.wt] = used[L->wv.wt] = used[L->wo.wt] = 1;
        used[L->w_gate.wt] = used[L->w_down.wt] = used[L->w_up.wt] = 1;
    }
    double tg1 = 0.0;
    for (int i = 0; i < n_levels; i++)
        if (res[top][i].seqs == 1)
            tg1 = res[top][i].tg_tok_s;
    if (json) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "image", json_object_new_string(argv[optind]));
        json_object_object_add(o, "weight_bytes_per_token", json_object_new_int64((int64_t)m->weight_bytes));
        json_object_object_add(o, "threads", json_object_new_int(threads));
        json_object_object_add(o, "pinned_threads", json_object_new_int(sl_engine_pinned(e)));
        json_object_object_add(o, "isa", json_object_new_string(k->name));
        json_object_object_add(o, "fused", json_object_new_boolean(!ec.unfused));
        json_object_object_add(o, "cpu_features", json_object_new_string(sl_cpu_features()));
        json_object *ka = json_object_new_array();
        for (int t = 0; t < SL_W_COUNT; t++)
            if (used[t])
                json_object_array_add(ka, json_object_new_string(k->gemm_name[t]));
        json_object_object_add(o, "kernels", ka);
        json_object_object_add(o, "prompt_tokens", json_object_new_int((int)prompt));
        json_object_object_add(o, "gen_tokens", json_object_new_int((int)gen));
        json_object_object_add(o, "reps", json_object_new_int((int)reps));
        json_object *la = json_object_new_array();
        for (int ti = 0; ti < n_tc; ti++)
            for (int i = 0; i < n_levels; i++) {
                json_object *l = json_object_new_object();
                json_object_object_add(l, "threads", json_object_new_int(sl_engine_threads(es[ti])));
                json_object_object_add(l, "sequences", json_object_new_int(res[ti][i].seqs));
                json_object_object_add(l, "pp_tok_s", json_object_new_double(res[ti][i].pp_tok_s));
                json_object_object_add(l, "tg_tok_s", json_object_new_double(res[ti][i].tg_tok_s));
                if (ti > 0)
                    json_object_object_add(l, "tg_paired_ratio_to_first_threads", json_object_new_double(ratio[ti][i]));
                if (i > 0)
                    json_object_object_add(l, "tg_paired_ratio_to_first_level", json_object_new_double(lratio[ti][i]));
                json_object_array_add(la, l);
            }
        json_object_object_add(o, "levels", la);
        json_object_object_add(o, "peak_rss_bytes", json_object_new_int64((int64_t)rss));
        json_object_object_add(o, "read_bw_bytes_s", json_object_new_double(bw));
        json_object_object_add(o, "tg_ceiling_tok_s", json_object_new_double(ceiling));
        json_object_object_add(o, "tg1_fraction_of_ceiling", json_object_new_double(ceiling > 0 ? tg1 / ceiling : 0));
        json_object_object_add(o, "bandwidth_method", json_object_new_string("read-only, engine threads, median of 5"));
        json_object_object_add(o, "noisy_machine", json_object_new_boolean(bw > 0 && bw < NOISY_BW));
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    } else {
        printf("%s: %.1f MB of weights per token; %s kernels (%s), %d threads (%d pinned)\n", argv[optind],
               (double)m->weight_bytes / 1e6, k->name, sl_cpu_features(), threads, sl_engine_pinned(e));
        printf("kernels:");
        for (int t = 0; t < SL_W_COUNT; t++)
            if (used[t])
                printf(" [%s]", k->gemm_name[t]);
        printf("\n%8s %8s %14s %14s   (prompt %lld, generate %lld; medians of %lld)\n", "threads", "seqs", "pp tok/s",
               "tg tok/s", prompt, gen, reps);
        for (int ti = 0; ti < n_tc; ti++)
            for (int i = 0; i < n_levels; i++) {
                printf("%8d %8d %14.1f %14.1f", sl_engine_threads(es[ti]), res[ti][i].seqs, res[ti][i].pp_tok_s,
                       res[ti][i].tg_tok_s);
                if (i > 0)
                    printf("   (tg %.2fx seqs %d, paired)", lratio[ti][i], res[ti][0].seqs);
                if (ti > 0)
                    printf("   (tg %.3fx threads %d, paired)", ratio[ti][i], sl_engine_threads(es[0]));
                printf("\n");
            }
        printf("peak RSS %.1f MB\n", (double)rss / 1e6);
        if (bw > 0)
            printf("read bandwidth %.1f GB/s (median of 5 over %lld MiB) -> decoding ceiling %.1f tok/s; 1 sequence "
                   "reaches %.0f%%\n",
                   bw / 1e9, bw_mib, ceiling, 100.0 * tg1 / ceiling);
        if (bw > 0 && bw < NOISY_BW)
            printf("warning: under %.0f GB/s, this machine is busy or noisy now: repeat the run\n", NOISY_BW / 1e9);
    }
    rc = SL_EXIT_OK;
out:
    for (int ti = 0; ti < n_tc; ti++)
        sl_engine_destroy(es[ti]);
    sl_model_close(m);
    return rc;
}
