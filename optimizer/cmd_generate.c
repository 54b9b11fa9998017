/* cmd_generate.c - `sluice generate`: a prompt and its continuation.
 *
 * Prints the prompt as its tokens decode, then each new token as it comes,
 * then a newline (llama2.c's run.c output).  Generation stops after -n new
 * tokens, at EOS, at the end of the context, and, for vocabularies imported
 * from llama2.c, at BOS (as run.c does; --stop-at-bos / --no-stop-at-bos
 * override). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sl_sampler.h"
#include "sluice_cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sluice generate IMAGE -p PROMPT -n N [-t TEMP] [--top-k K] [--top-p P] [--min-p P]\n"
               "                       [--repeat-penalty R] [--seed S] [--threads T] [--isa ISA] [--json]\n"
               "                       [--stop-at-bos | --no-stop-at-bos] [--no-bos]\n"
               "  -n counts new tokens (default 64).  Temperature 0 (the default) is greedy.\n");
}

static json_object *ids_json(const int32_t *ids, size_t n)
{
    json_object *a = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(a, json_object_new_int(ids[i]));
    return a;
}

/* Appends the decoded piece to buf (grown as needed); writes it to stdout
 * too unless quiet. */
static int put_piece(const sl_tokenizer *tok, int32_t prev, int32_t id, char **buf, size_t *len, size_t *cap, int quiet)
{
    /* decode straight into the text; a piece longer than the room left
     * (sl_tok_piece says how long) grows it and decodes again */
    size_t n = sl_tok_piece(tok, prev, id, *buf ? *buf + *len : NULL, *buf ? *cap - *len : 0);
    if (*len + n + 1 > *cap) {
        size_t nc = (*cap + n + 1) * 2;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = nc;
        n = sl_tok_piece(tok, prev, id, *buf + *len, *cap - *len);
    }
    if (!quiet) {
        fwrite(*buf + *len, 1, n, stdout);
        fflush(stdout);
    }
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

int sl_cmd_generate(int argc, char **argv)
{
    enum { O_TOPK = 256, O_TOPP, O_MINP, O_REP, O_SEED, O_ISA, O_JSON, O_BOS_STOP, O_NO_BOS_STOP, O_NO_BOS };
    static const struct option opts[] = {
        {"prompt", required_argument, 0, 'p'}, {"n", required_argument, 0, 'n'},
        {"temp", required_argument, 0, 't'},   {"top-k", required_argument, 0, O_TOPK},
        {"top-p", required_argument, 0, O_TOPP}, {"min-p", required_argument, 0, O_MINP},
        {"repeat-penalty", required_argument, 0, O_REP}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, 'T'}, {"isa", required_argument, 0, O_ISA},
        {"json", no_argument, 0, O_JSON},       {"stop-at-bos", no_argument, 0, O_BOS_STOP},
        {"no-stop-at-bos", no_argument, 0, O_NO_BOS_STOP}, {"no-bos", no_argument, 0, O_NO_BOS},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *prompt = "";
    long long n_new = 64, v;
    double d;
    int json = 0, bos_stop = -1, no_bos = 0, c;
    sl_sampler_cfg sc = sl_sampler_defaults();
    sl_engine_cfg ec = {.isa = -1, .max_seqs = 1, .pin = 2};
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:n:t:T:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': prompt = optarg; break;
        case 'n': if (sl_cli_int("-n", optarg, 0, 1 << 24, &n_new)) return SL_EXIT_ERROR; break;
        case 't': if (sl_cli_float("-t", optarg, 0, 1e3, &d)) return SL_EXIT_ERROR; sc.temp = (float)d; break;
        case O_TOPK: if (sl_cli_int("--top-k", optarg, 0, 1 << 24, &v)) return SL_EXIT_ERROR; sc.top_k = (int)v; break;
        case O_TOPP: if (sl_cli_float("--top-p", optarg, 1e-9, 1, &d)) return SL_EXIT_ERROR; sc.top_p = (float)d; break;
        case O_MINP: if (sl_cli_float("--min-p", optarg, 0, 0.999999, &d)) return SL_EXIT_ERROR; sc.min_p = (float)d; break;
        case O_REP: if (sl_cli_float("--repeat-penalty", optarg, 1e-3, 1e3, &d)) return SL_EXIT_ERROR; sc.rep_penalty = (float)d; break;
        case O_SEED: if (sl_cli_int("--seed", optarg, 0, INT64_MAX, &v)) return SL_EXIT_ERROR; sc.seed = (uint64_t)v; break;
        case 'T': if (sl_cli_int("--threads", optarg, 1, 1024, &v)) return SL_EXIT_ERROR; ec.n_threads = (int)v; break;
        case O_ISA: if (sl_cli_isa(optarg, &ec.isa)) return SL_EXIT_ERROR; break;
        case O_JSON: json = 1; break;
        case O_BOS_STOP: bos_stop = 1; break;
        case O_NO_BOS_STOP: bos_stop = 0; break;
        case O_NO_BOS: no_bos = 1; break;
        case 'h': usage(stdout); return SL_EXIT_OK;
        default: usage(stderr); return SL_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc) {
        usage(stderr);
        return SL_EXIT_ERROR;
    }
    sl_model *m;
    sl_engine *e;
    ec.kv_blocks = 0; /* engine default covers one full context */
    int rc = sl_cli_open(argv[optind], &ec, &m, &e);
    if (rc)
        return rc;
    const sl_tokenizer *tok = m->tok;
    const int ctx = sl_engine_ctx(e);
    const int bos = sl_tok_bos(tok), eos = sl_tok_eos(tok);
    if (bos_stop < 0)
        bos_stop = m->stop_at_bos;
    sl_err err = {0};
    sl_sampler smp = {0};
    int32_t *ids = NULL, *seq = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    size_t tlen = 0, tcap = 0;
    float *logits = malloc(sizeof(float) * (size_t)m->vocab);
    int s = -1;
    const char *stop = "length";
    double t0 = sl_cli_now_us(), t_prompt = 0, t_end;
    size_t n_gen = 0;
    if (!logits) {
        fprintf(stderr, "sluice: out of memory\n");
        rc = SL_EXIT_ERROR;
        goto out;
    }
    if (sl_tok_encode(tok, prompt, strlen(prompt), !no_bos && sl_tok_add_bos(tok), &ids, &n_ids, &err) ||
        sl_sampler_init(&smp, &sc, m->vocab, &err) || sl_kv_seq_new(sl_engine_kv(e), &s, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        rc = SL_EXIT_ERROR;
        goto out;
    }
    if (n_ids == 0) {
        fprintf(stderr, "sluice: the prompt encodes to no tokens and the vocabulary has no BOS to start from\n");
        rc = SL_EXIT_ERROR;
        goto out;
    }
    if (n_ids > (size_t)ctx) {
        fprintf(stderr, "sluice: the prompt is %zu tokens; the context holds %d\n", n_ids, ctx);
        rc = SL_EXIT_ERROR;
        goto out;
    }
    seq = malloc(sizeof *seq * (n_ids + (size_t)n_new + 1));
    if (!seq) {
        fprintf(stderr, "sluice: out of memory\n");
        rc = SL_EXIT_ERROR;
        goto out;
    }
    memcpy(seq, ids, sizeof *seq * n_ids);
    for (size_t i = 0; i < n_ids; i++)
        if (put_piece(tok, i ? ids[i - 1] : -1, ids[i], &text, &tlen, &tcap, 1))
            goto oom;
    if (!json) {
        fwrite(text ? text : "", 1, tlen, stdout);
        fflush(stdout);
    }
    size_t prompt_len = tlen, n_seq = n_ids;
    sl_chunk ch = {s, 0, (int)n_ids, ids, 0};
    if (sl_engine_forward(e, &ch, 1, logits, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        rc = SL_EXIT_ERROR;
        goto out;
    }
    t_prompt = sl_cli_now_us();
    while (n_gen < (size_t)n_new) {
        int32_t next = sl_sample(&smp, logits, seq, (int)n_seq);
        if (next == eos || (bos_stop && next == bos)) {
            stop = next == eos ? "eos" : "bos";
            break;
        }
        if (put_piece(tok, seq[n_seq - 1], next, &text, &tlen, &tcap, json))
            goto oom;
        seq[n_seq++] = next;
        n_gen++;
        if (n_gen == (size_t)n_new)
            break;
        if (n_seq >= (size_t)ctx) {
            stop = "context";
            break;
        }
        ch = (sl_chunk){s, (int)n_seq - 1, 1, &seq[n_seq - 1], 0};
        if (sl_engine_forward(e, &ch, 1, logits, &err)) {
            fprintf(stderr, "\nsluice: %s\n", err.msg);
            rc = SL_EXIT_ERROR;
            goto out;
        }
    }
    t_end = sl_cli_now_us();
    if (!json) {
        printf("\n");
        fprintf(stderr, "%zu prompt tokens %.1f tok/s, %zu new tokens %.1f tok/s (%s, %d threads, stop: %s)\n", n_ids,
                (double)n_ids * 1e6 / (t_prompt - t0), n_gen,
                n_gen > 1 ? (double)(n_gen - 1) * 1e6 / (t_end - t_prompt) : 0.0, sl_engine_kernels(e)->name,
                sl_engine_threads(e), stop);
    } else {
        json_object *r = json_object_new_object();
        json_object_object_add(r, "prompt", json_object_new_string_len(text ? text : "", (int)prompt_len));
        json_object_object_add(r, "prompt_ids", ids_json(ids, n_ids));
        json_object_object_add(r, "ids", ids_json(seq + n_ids, n_gen));
        json_object_object_add(r, "text", json_object_new_string_len(text ? text + prompt_len : "", (int)(tlen - prompt_len)));
        json_object_object_add(r, "stop", json_object_new_string(stop));
        json_object *t = json_object_new_object();
        json_object_object_add(t, "prompt_ms", json_object_new_double((t_prompt - t0) / 1e3));
        json_object_object_add(t, "generate_ms", json_object_new_double((t_end - t_prompt) / 1e3));
        json_object_object_add(t, "prompt_tok_s", json_object_new_double((double)n_ids * 1e6 / (t_prompt - t0)));
        json_object_object_add(t, "generate_tok_s",
                               json_object_new_double(n_gen > 1 ? (double)(n_gen - 1) * 1e6 / (t_end - t_prompt) : 0.0));
        json_object_object_add(r, "timings", t);
        json_object_object_add(r, "isa", json_object_new_string(sl_engine_kernels(e)->name));
        json_object_object_add(r, "threads", json_object_new_int(sl_engine_threads(e)));
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(r);
    }
    rc = SL_EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "sluice: out of memory\n");
    rc = SL_EXIT_ERROR;
out:
    free(logits);
    free(ids);
    free(seq);
    free(text);
    sl_sampler_free(&smp);
    sl_engine_destroy(e);
    sl_model_close(m);
    return rc;
}
