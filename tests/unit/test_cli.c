/* The sluice command as a user runs it: exit statuses, JSON output. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <math.h>
#include <sys/wait.h>

#include "test_support.h"

/* Runs `sluice ARGS` with stderr sent where redir says, stdout into *out
 * (caller frees); returns the exit status. */
static int vrun(char **out, const char *redir, const char *fmt, va_list ap)
{
    char args[8192], cmd[9000];
    vsnprintf(args, sizeof args, fmt, ap);
    const char *bin = getenv("SLUICE_BIN");
    cr_assert_not_null(bin, "SLUICE_BIN is not set (run through meson test)");
    snprintf(cmd, sizeof cmd, "%s %s %s", bin, args, redir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t cap = 1 << 16, n = 0, got;
    char *b = malloc(cap);
    while ((got = fread(b + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 == cap)
            b = realloc(b, cap *= 2);
    }
    b[n] = '\0';
    int st = pclose(p);
    *out = b;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* stdout and stderr together */
static int run(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(out, "2>&1", fmt, ap);
    va_end(ap);
    return rc;
}

/* stdout alone */
static int run_stdout(char **out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(out, "2>/dev/null", fmt, ap);
    va_end(ap);
    return rc;
}

static int64_t jint(json_object *o, const char *a, const char *b)
{
    json_object *x, *y;
    cr_assert(json_object_object_get_ex(o, a, &x), "no '%s'", a);
    cr_assert(json_object_object_get_ex(x, b, &y), "no '%s.%s'", a, b);
    return json_object_get_int64(y);
}

/* stories260K converted to img (type NULL: convert's default) */
static void convert_s260(const char *models, const char *img, const char *type)
{
    char *out;
    cr_assert_eq(run(&out, "convert %s -z %s -o %s%s%s", test_path(models, "stories260K.bin"),
                     test_path(models, "tok512.bin"), img, type ? " --type " : "", type ? type : ""), 0, "%s", out);
    free(out);
}

Test(cli, convert_then_inspect_json_describes_stories260K)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    const char *img = test_path(dir, "s.gguf");
    cr_assert_eq(run(&out, "convert %s -z %s -o %s", test_path(models, "stories260K.bin"),
                     test_path(models, "tok512.bin"), img), 0, "%s", out);
    cr_assert(strstr(out, "47 tensors"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "inspect --json %s", img), 0, "%s", out);
    json_object *j = json_tokener_parse(out);
    cr_assert_not_null(j, "inspect --json printed invalid JSON");
    cr_assert_eq(jint(j, "model", "dim"), 64);
    cr_assert_eq(jint(j, "model", "hidden"), 172);
    cr_assert_eq(jint(j, "model", "layers"), 5);
    cr_assert_eq(jint(j, "model", "heads"), 8);
    cr_assert_eq(jint(j, "model", "kv_heads"), 4);
    cr_assert_eq(jint(j, "model", "vocab"), 512);
    cr_assert_eq(jint(j, "model", "context"), 512);
    cr_assert_eq(jint(j, "tokenizer", "tokens"), 512);
    json_object *x, *ck, *tot;
    cr_assert(json_object_object_get_ex(j, "checksum", &ck));
    cr_assert_str_eq(json_object_get_string(json_object_object_get(ck, "status")), "verified");
    cr_assert(json_object_object_get_ex(json_object_object_get(j, "parameters"), "total", &tot));
    cr_assert_eq(json_object_get_int64(json_object_object_get(tot, "parameters")), 260032);
    cr_assert_eq(json_object_get_double(json_object_object_get(tot, "bits_per_weight")), 32.0);
    cr_assert(json_object_object_get_ex(j, "tensors", &x));
    cr_assert_eq(json_object_array_length(x), 47);
    cr_assert_eq(json_object_get_int64(json_object_object_get(j, "alignment")), 64);
    json_object_put(j);
    free(out);
    test_rmtree(dir);
}

Test(cli, broken_and_corrupt_images_fail_with_a_message)
{
    char *dir = test_tmpdir(), *out;
    const char *bad = test_path(dir, "bad.gguf");
    test_spit(bad, "GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\x7f\0\0\0\0\0\0\0\0", 24);
    cr_assert_eq(run(&out, "inspect %s", bad), 2);
    cr_assert(strstr(out, "tensor count") && strstr(out, "bad.gguf"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "inspect %s", test_path(dir, "missing.gguf")), 2);
    cr_assert(strstr(out, "cannot open"), "%s", out);
    free(out);
    const char *img = test_path(dir, "t.gguf");
    cr_assert_eq(run(&out, "synth --shape tiny --type q4_0 -o %s --seed 7", img), 0, "%s", out);
    free(out);
    cr_assert_eq(run(&out, "inspect %s", img), 0, "%s", out);
    cr_assert(strstr(out, "checksum    verified"), "%s", out);
    free(out);
    size_t len;
    unsigned char *b = test_slurp(img, &len);
    b[len - 1] ^= 0x40;
    test_spit(img, b, len);
    free(b);
    cr_assert_eq(run(&out, "inspect %s", img), 1, "a checksum mismatch is a failed check");
    cr_assert(strstr(out, "MISMATCH") && strstr(out, "corrupt"), "%s", out);
    free(out);
    test_rmtree(dir);
}

Test(cli, kbench_times_every_level_against_the_first)
{
    char *dir = test_tmpdir(), *out;
    const char *img = test_path(dir, "t.gguf");
    cr_assert_eq(run(&out, "synth --shape tiny --type q8_0 -o %s", img), 0, "%s", out);
    free(out);
    const char *simd = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "avx2" : "scalar";
    cr_assert_eq(run_stdout(&out, "kbench %s --tokens 1,5 --isa scalar,%s --rows 16 --reps 2 --json", img, simd), 0,
                 "%s", out);
    json_object *j = json_tokener_parse(out), *lv;
    cr_assert_not_null(j, "%s", out);
    cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "baseline")), "scalar");
    cr_assert(json_object_object_get_ex(j, "levels", &lv));
    cr_assert_eq(json_object_array_length(lv), 4, "2 levels x 2 token counts: %s", out);
    for (int i = 0; i < 4; i++) {
        json_object *l = json_object_array_get_idx(lv, i);
        cr_assert_str_eq(json_object_get_string(json_object_object_get(l, "isa")), i < 2 ? "scalar" : simd);
        cr_assert_eq(json_object_get_int(json_object_object_get(l, "tokens")), i % 2 ? 5 : 1);
        cr_assert_gt(json_object_get_double(json_object_object_get(l, "pass_s")), 0);
        const double speedup = json_object_get_double(json_object_object_get(l, "speedup_vs_baseline"));
        if (i < 2)
            cr_assert_float_eq(speedup, 1.0, 1e-12, "the baseline against itself");
        else
            cr_assert_gt(speedup, 0);
    }
    json_object_put(j);
    free(out);
    cr_assert_eq(run(&out, "kbench %s --isa avx9", img), 2);
    cr_assert(strstr(out, "avx9"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "kbench %s --tokens 1,x", img), 2);
    cr_assert(strstr(out, "--tokens"), "%s", out);
    free(out);
    test_rmtree(dir);
}

Test(cli, usage_errors)
{
    char *out;
    cr_assert_eq(run(&out, "frobnicate"), 2);
    cr_assert(strstr(out, "unknown command"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "synth --shape 70b --type q4_0 -o /tmp/x.gguf"), 2);
    cr_assert(strstr(out, "unknown shape"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "synth --shape tiny --type q5_K -o /tmp/x.gguf"), 2);
    cr_assert(strstr(out, "cannot be written"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "--help"), 0);
    cr_assert(strstr(out, "inspect IMAGE"), "%s", out);
    free(out);
}

/* ---- generate / eval / bench ------------------------------------------ */

Test(cli, generate_prints_run_c_text_at_every_isa_level, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *img = strdup(test_path(dir, "s.gguf"));
    convert_s260(models, img, NULL);
    size_t len;
    char *want = (char *)test_slurp(test_path(models, "reference/stories260K_t0_n200_once_upon_a_time.txt"), &len);
    const char *isas[] = {"scalar", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        /* forced through the environment; a level beyond the CPU falls back with a warning */
        int rc = run_stdout(&out, "generate %s -p 'Once upon a time' -n 196 --threads 2 2>/dev/null; SLUICE_ISA=%s %s generate %s "
                            "-p 'Once upon a time' -n 196 --threads 1",
                            img, isas[i], getenv("SLUICE_BIN"), img);
        cr_assert_eq(rc, 0);
        cr_assert_eq(strlen(out), 2 * len, "SLUICE_ISA=%s: %zu bytes", isas[i], strlen(out));
        cr_assert(memcmp(out, want, len) == 0 && memcmp(out + len, want, len) == 0, "SLUICE_ISA=%s:\n%s", isas[i], out);
        free(out);
    }
    /* --json: ids, text, stop reason, timings */
    cr_assert_eq(run_stdout(&out, "generate %s -p 'Once upon a time' -n 5 --json", img), 0);
    json_object *j = json_tokener_parse(out), *ids;
    cr_assert_not_null(j, "%s", out);
    cr_assert(json_object_object_get_ex(j, "ids", &ids));
    cr_assert_eq(json_object_array_length(ids), 5);
    cr_assert_eq(json_object_get_int(json_object_array_get_idx(ids, 0)), 432, "run.c's first generated id");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "prompt")), "Once upon a time");
    cr_assert_str_eq(json_object_get_string(json_object_object_get(j, "stop")), "length");
    cr_assert_gt(json_object_get_double(json_object_object_get(json_object_object_get(j, "timings"), "generate_tok_s")), 0);
    json_object_put(j);
    free(out);
    /* sampling: same seed, same text; bad settings are refused */
    char *a, *b;
    cr_assert_eq(run_stdout(&a, "generate %s -p 'The cat' -n 40 -t 0.9 --top-k 40 --top-p 0.95 --seed 5 --threads 1", img), 0);
    cr_assert_eq(run_stdout(&b, "generate %s -p 'The cat' -n 40 -t 0.9 --top-k 40 --top-p 0.95 --seed 5 --threads 2", img), 0);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    cr_assert_eq(run(&out, "generate %s -p x -n 3 --top-p 0", img), 2);
    free(out);
    cr_assert_eq(run(&out, "generate %s -p x -n 3 --isa sse9", img), 2);
    cr_assert(strstr(out, "--isa"), "%s", out);
    free(out);
    free(want);
    free(img);
    test_rmtree(dir);
}

Test(cli, eval_reproduces_the_reference_protocol, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *f32 = strdup(test_path(dir, "f.gguf")), *q8 = strdup(test_path(dir, "q.gguf")); /* test_path's buffers rotate */
    convert_s260(models, f32, NULL);
    convert_s260(models, q8, "q8_0");
    cr_assert_eq(run_stdout(&out, "eval %s --text %s --split '\\n\\n' --max-pieces 200 --ref %s --json", q8,
                            test_path(models, "text/tinystories_valid_a.txt"), f32), 0, "%s", out);
    json_object *j = json_tokener_parse(out);
    cr_assert_not_null(j, "%s", out);
    cr_assert_eq(json_object_get_int64(json_object_object_get(j, "predicted_tokens")), 19395);
    double ref_ppl = json_object_get_double(json_object_object_get(j, "ref_perplexity"));
    cr_assert(fabs(ref_ppl - 4.2190) < 5e-5, "%.5f", ref_ppl);
    double kl = json_object_get_double(json_object_object_get(j, "kl_mean"));
    cr_assert(kl > 0 && kl <= 2e-3, "%g", kl);
    cr_assert_geq(json_object_get_double(json_object_object_get(j, "kl_p99")), kl);
    cr_assert_geq(json_object_get_double(json_object_object_get(j, "kl_max")),
                  json_object_get_double(json_object_object_get(j, "kl_p99")));
    json_object_put(j);
    free(out);
    /* windows over the text; token files; bad token ids are refused */
    cr_assert_eq(run(&out, "eval %s --text %s --ctx 128", f32, test_path(models, "text/tinystories_valid_a.txt")), 0,
                 "%s", out);
    cr_assert(strstr(out, "windows") && strstr(out, "perplexity"), "%s", out);
    free(out);
    const char *toks = "1 403 407 261 378 432 383 286 261 376\n";
    test_spit(test_path(dir, "t.txt"), toks, strlen(toks));
    cr_assert_eq(run(&out, "eval %s --tokens %s --ctx 8", f32, test_path(dir, "t.txt")), 0, "%s", out);
    cr_assert(strstr(out, "3 predicted tokens"), "%s", out);
    free(out);
    test_spit(test_path(dir, "bad.txt"), "1 2 9999\n", strlen("1 2 9999\n"));
    cr_assert_eq(run(&out, "eval %s --tokens %s --ctx 8", f32, test_path(dir, "bad.txt")), 2);
    cr_assert(strstr(out, "9999"), "%s", out);
    free(out);
    free(f32);
    free(q8);
    test_rmtree(dir);
}

static double jnum(json_object *o, const char *k)
{
    json_object *x;
    cr_assert(json_object_object_get_ex(o, k, &x), "no '%s'", k);
    return json_object_get_double(x);
}

static const char *jstr_of(json_object *o, const char *a, const char *b)
{
    json_object *x, *y;
    cr_assert(json_object_object_get_ex(o, a, &x), "no '%s'", a);
    if (!b)
        return json_object_get_string(x);
    cr_assert(json_object_object_get_ex(x, b, &y), "no '%s.%s'", a, b);
    return json_object_get_string(y);
}

Test(cli, validate_passes_q8_fails_just_past_a_limit_and_records_the_verdict, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *f32 = strdup(test_path(dir, "f.gguf")), *q8 = strdup(test_path(dir, "q8.gguf")),
         *q4 = strdup(test_path(dir, "q4.gguf")), *tiny = strdup(test_path(dir, "tiny.gguf"));
    const char *types[3] = {"f32", "q8_0", "q4_0"};
    char *imgs[3] = {f32, q8, q4};
    for (int i = 0; i < 3; i++)
        convert_s260(models, imgs[i], types[i]);
    char data[4400];
    snprintf(data, sizeof data, "--text %s --split '\\n\\n' --max-pieces 100",
             test_path(models, "text/tinystories_valid_a.txt"));
    /* Q8_0 passes the default limits; the verdict lands in the image,
     * which still verifies */
    cr_assert_eq(run_stdout(&out, "validate %s --base %s %s --json", q8, f32, data), 0, "%s", out);
    json_object *j = json_tokener_parse(out);
    cr_assert_not_null(j, "%s", out);
    cr_assert_str_eq(jstr_of(j, "verdict", NULL), "pass");
    cr_assert(json_object_get_boolean(json_object_object_get(j, "written")));
    cr_assert(jnum(j, "kl_mean") > 0 && jnum(j, "kl_mean") <= 2e-3, "%g", jnum(j, "kl_mean"));
    json_object *layers = json_object_object_get(j, "layers");
    cr_assert_eq(json_object_array_length(layers), 5 * 7 + 1, "every linear layer and the classifier");
    double prev = INFINITY;
    for (size_t i = 0; i < json_object_array_length(layers); i++) {
        double e = jnum(json_object_array_get_idx(layers, i), "relative_error");
        cr_assert(e >= 0 && e <= prev && e < 0.05, "layer %zu: %g (Q8_0 errors are small, sorted worst first)", i, e);
        prev = e;
    }
    json_object_put(j);
    free(out);
    cr_assert_eq(run_stdout(&out, "inspect --json %s", q8), 0, "%s", out);
    j = json_tokener_parse(out);
    cr_assert_str_eq(jstr_of(j, "checksum", "status"), "verified");
    cr_assert_str_eq(jstr_of(j, "quality", "status"), "pass");
    json_object_put(j);
    free(out);

    /* Q4_0: measure, then limits 2% either side of its mean KLD */
    cr_assert_neq(run_stdout(&out, "validate %s --base %s %s --dry-run --json", q4, f32, data), 2, "%s", out);
    j = json_tokener_parse(out);
    cr_assert_not_null(j, "%s", out);
    const double kl = jnum(j, "kl_mean");
    cr_assert(kl > 2e-3, "Q4_0 diverges more than Q8_0: %g", kl);
    cr_assert(!json_object_get_boolean(json_object_object_get(j, "written")), "--dry-run writes nothing");
    json_object_put(j);
    free(out);
    const char *loose = "--max-ppl-ratio 10 --max-p99-kld 100 --min-top1 0";
    cr_assert_eq(run(&out, "validate %s --base %s %s %s --max-mean-kld %.9g", q4, f32, data, loose, kl * 1.02), 0,
                 "%s", out);
    cr_assert(strstr(out, "verdict: PASS"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "validate %s --base %s %s %s --max-mean-kld %.9g", q4, f32, data, loose, kl * 0.98), 1,
                 "%s", out);
    cr_assert(strstr(out, "KL mean") && strstr(out, "FAIL") && strstr(out, "verdict: FAIL"), "%s", out);
    free(out);
    cr_assert_eq(run_stdout(&out, "inspect --json %s", q4), 0, "%s", out);
    j = json_tokener_parse(out);
    cr_assert_str_eq(jstr_of(j, "quality", "status"), "fail", "the failing verdict is recorded too");
    json_object_put(j);
    free(out);

    /* a base with another vocabulary, and a missing --base: errors */
    cr_assert_eq(run(&out, "synth --shape tiny --type f32 -o %s", tiny), 0, "%s", out);
    free(out);
    cr_assert_eq(run(&out, "validate %s --base %s %s", q8, tiny, data), 2, "%s", out);
    cr_assert(strstr(out, "not the base's"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "validate %s %s", q8, data), 2, "%s", out);
    free(out);
    free(f32);
    free(q8);
    free(q4);
    free(tiny);
    test_rmtree(dir);
}

/* The first and second halves of a text's "\n\n"-separated pieces. */
static void split_halves(const char *path, const char *first, const char *second)
{
    size_t len;
    char *t = (char *)test_slurp(path, &len);
    int n = 0;
    for (char *p = t; (p = strstr(p, "\n\n")); p += 2)
        n++;
    char *cut = t;
    for (int i = 0; i < (n + 1) / 2; i++)
        cut = strstr(cut, "\n\n") + 2;
    test_spit(first, t, (size_t)(cut - t));
    test_spit(second, cut, len - (size_t)(cut - t));
    free(t);
}

static json_object *run_json(const char *what, char **out, int want_rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vrun(out, "2>/dev/null", fmt, ap);
    va_end(ap);
    cr_assert_eq(rc, want_rc, "%s: exit %d\n%s", what, rc, *out);
    json_object *j = json_tokener_parse(*out);
    cr_assert_not_null(j, "%s: not JSON:\n%s", what, *out);
    return j;
}

static json_object *tensor_named(json_object *report, const char *name)
{
    json_object *ts = json_object_object_get(report, "tensors");
    for (size_t i = 0; ts && i < json_object_array_length(ts); i++)
        if (!strcmp(jstr_of(json_object_array_get_idx(ts, i), "name", NULL), name))
            return json_object_array_get_idx(ts, i);
    return NULL;
}

Test(cli, quantize_gptq_and_awq_beat_rtn_on_stories260K, .timeout = 600)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *base = strdup(test_path(dir, "f32.gguf")), *calib = strdup(test_path(dir, "calib.txt")),
         *held = strdup(test_path(dir, "eval.txt")), *img = strdup(test_path(dir, "q.gguf"));
    convert_s260(models, base, NULL);
    split_halves(test_path(models, "text/tinystories_valid_a.txt"), calib, held);
    const char *types[3] = {"q4_0", "q4_1", "iq4_nl"}, *methods[3] = {"rtn", "gptq", "awq"};
    for (int t = 0; t < 3; t++) {
        double kl[3];
        for (int m = 0; m < 3; m++) {
            json_object *j = run_json("quantize", &out, 0,
                                      "quantize %s -o %s --type %s --method %s --calib %s --calib-split '\\n\\n' "
                                      "--calib-tokens 16384 --json",
                                      base, img, types[t], methods[m], calib);
            json_object_put(j);
            free(out);
            j = run_json("eval", &out, 0, "eval %s --ref %s --text %s --split '\\n\\n' --max-pieces 400 --json", img,
                         base, held);
            kl[m] = jnum(j, "kl_mean");
            json_object_put(j);
            free(out);
            /* the image reopens, verifies, generates */
            cr_assert_eq(run(&out, "inspect %s", img), 0, "%s", out);
            cr_assert(strstr(out, "verified"), "%s", out);
            free(out);
            cr_assert_eq(run_stdout(&out, "generate %s -p 'Once upon a time' -n 16", img), 0, "%s", out);
            cr_assert_gt(strlen(out), strlen("Once upon a time"), "%s", out);
            free(out);
        }
        cr_log_info("stories260K %s, mean KLD on held-out text: rtn %.5f, gptq %.5f (%.0f%%), awq %.5f (%.0f%%)",
                    types[t], kl[0], kl[1], 100 * (kl[1] / kl[0] - 1), kl[2], 100 * (kl[2] / kl[0] - 1));
        cr_assert_leq(kl[1], 0.9 * kl[0], "%s: GPTQ %.5f is not 10%% below RTN %.5f", types[t], kl[1], kl[0]);
        cr_assert_leq(kl[2], 0.9 * kl[0], "%s: AWQ %.5f is not 10%% below RTN %.5f", types[t], kl[2], kl[0]);
    }
    /* memory: within 3x RTN's, and not growing with 8x the calibration
     * (without meson's MALLOC_PERTURB_, which touches every page malloc
     * hands out and so counts buffers a run never uses) */
    unsetenv("MALLOC_PERTURB_");
    json_object *j = run_json("rtn", &out, 0, "quantize %s -o %s --type q4_0 --json", base, img);
    const double rtn_rss = jnum(j, "peak_rss_bytes");
    json_object_put(j);
    free(out);
    double rss[2];
    for (int i = 0; i < 2; i++) {
        j = run_json("gptq", &out, 0,
                     "quantize %s -o %s --type q4_0 --method gptq --calib %s --calib-split '\\n\\n' --calib-tokens %d "
                     "--json",
                     base, img, calib, i ? 16384 : 2048);
        rss[i] = jnum(j, "peak_rss_bytes");
        cr_assert_eq((int)jnum(j, "calibration_tokens"), i ? 16384 : 2048);
        json_object_put(j);
        free(out);
    }
    cr_log_info("peak RSS: rtn %.1f MB, gptq %.1f MB (2048 tokens), %.1f MB (16384)", rtn_rss / 1e6, rss[0] / 1e6,
                rss[1] / 1e6);
#ifndef __SANITIZE_ADDRESS__ /* ASan's shadow memory and quarantine make RSS meaningless */
    cr_assert_leq(rss[1], 3 * rtn_rss, "GPTQ peak RSS %.1f MB is over 3x RTN's %.1f MB", rss[1] / 1e6, rtn_rss / 1e6);
    cr_assert_leq(rss[1], 1.10 * rss[0], "memory grew with the calibration's length: %.1f -> %.1f MB", rss[0] / 1e6,
                  rss[1] / 1e6);
#endif
    free(base);
    free(calib);
    free(held);
    free(img);
    test_rmtree(dir);
}

Test(cli, quantize_policy_recipes_and_errors)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *base = strdup(test_path(dir, "f32.gguf")), *img = strdup(test_path(dir, "q.gguf")),
         *recipe = strdup(test_path(dir, "r.json"));
    convert_s260(models, base, NULL);
    const char *r = "{\"tensors\": [{\"match\": \"blk.*.ffn_gate.weight\", \"type\": \"q8_0\"},"
                    " {\"match\": \"blk.0.*\", \"type\": \"q4_1\"}]}";
    test_spit(recipe, r, strlen(r));
    json_object *j = run_json("quantize", &out, 0, "quantize %s -o %s --type q4_0 --recipe %s --json", base, img, recipe);
    free(out);
    struct {
        const char *name, *type, *fallback;
    } want[] = {{"blk.1.ffn_gate.weight", "q8_0", NULL}, {"blk.0.attn_q.weight", "q4_1", NULL},
                {"blk.0.ffn_gate.weight", "q8_0", NULL}, {"blk.2.attn_q.weight", "q4_0", NULL},
                {"token_embd.weight", "q8_0", "embedding"}, {"blk.3.ffn_down.weight", "f16", "whole blocks"},
                {"blk.3.attn_norm.weight", "f32", NULL}};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        json_object *t = tensor_named(j, want[w].name);
        cr_assert_not_null(t, "%s missing from the report", want[w].name);
        cr_assert_str_eq(jstr_of(t, "type", NULL), want[w].type, "%s", want[w].name);
        if (want[w].fallback)
            cr_assert(strstr(jstr_of(t, "fallback", NULL), want[w].fallback), "%s", want[w].name);
    }
    json_object_put(j);
    /* what the report says is what the image holds */
    j = run_json("inspect", &out, 0, "inspect --json %s", img);
    free(out);
    cr_assert_str_eq(jstr_of(tensor_named(j, "blk.0.attn_q.weight"), "type", NULL), "q4_1");
    cr_assert_str_eq(jstr_of(tensor_named(j, "blk.4.ffn_gate.weight"), "type", NULL), "q8_0");
    json_object_put(j);
    /* errors: GPTQ without calibration, a broken recipe, an unknown type */
    cr_assert_eq(run(&out, "quantize %s -o %s --type q4_0 --method gptq", base, img), 2, "%s", out);
    cr_assert(strstr(out, "--calib"), "%s", out);
    free(out);
    test_spit(recipe, "{\"tensors\": [{\"type\": \"q4_0\"}]}", 31);
    cr_assert_eq(run(&out, "quantize %s -o %s --type q4_0 --recipe %s", base, img, recipe), 2, "%s", out);
    cr_assert(strstr(out, "match"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "quantize %s -o %s --type q3_k", base, img), 2, "%s", out);
    free(out);
    free(base);
    free(img);
    free(recipe);
    test_rmtree(dir);
}

Test(cli, quantize_w8a8_dynamic_static_and_smoothquant, .timeout = 300)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *base = strdup(test_path(dir, "f32.gguf")), *calib = strdup(test_path(dir, "calib.txt")),
         *held = strdup(test_path(dir, "eval.txt")), *img = strdup(test_path(dir, "w.gguf")),
         *recipe = strdup(test_path(dir, "r.json"));
    convert_s260(models, base, NULL);
    split_halves(test_path(models, "text/tinystories_valid_a.txt"), calib, held);
    const char *variants[3] = {"", "--static", "--static --smooth 0.8"};
    double kl[3], top1[3];
    for (int v = 0; v < 3; v++) {
        json_object *j = run_json("quantize", &out, 0,
                                  "quantize %s -o %s --type w8a8 %s --calib %s --calib-split '\\n\\n' --calib-tokens 8192 "
                                  "--json",
                                  base, img, variants[v], calib);
        free(out);
        json_object *t = tensor_named(j, "blk.2.ffn_up.weight");
        cr_assert_str_eq(jstr_of(t, "type", NULL), "w8a8");
        cr_assert_eq(json_object_object_get(t, "input_scale") != NULL, v > 0, "input_scale only when static");
        cr_assert_str_eq(jstr_of(tensor_named(j, "token_embd.weight"), "type", NULL), "q8_0");
        json_object_put(j);
        /* the companions are in the image, which verifies and generates */
        cr_assert_eq(run(&out, "inspect %s", img), 0, "%s", out);
        cr_assert(strstr(out, "verified") && strstr(out, "blk.4.ffn_down.weight_scale"), "%s", out);
        cr_assert_eq(strstr(out, "blk.4.ffn_down.input_scale") != NULL, v > 0, "%s", out);
        free(out);
        cr_assert_eq(run_stdout(&out, "generate %s -p 'Once upon a time' -n 16", img), 0, "%s", out);
        free(out);
        j = run_json("eval", &out, 0, "eval %s --ref %s --text %s --split '\\n\\n' --max-pieces 300 --json", img, base,
                     held);
        kl[v] = jnum(j, "kl_mean");
        top1[v] = jnum(j, "top1_agreement");
        json_object_put(j);
        free(out);
    }
    cr_log_info("stories260K w8a8 mean KLD: dynamic %.5f, static %.5f, static + SmoothQuant 0.8 %.5f", kl[0], kl[1],
                kl[2]);
    cr_assert_lt(kl[0], 0.005, "dynamic w8a8 KLD %.5f", kl[0]);
    cr_assert_gt(top1[0], 0.95, "dynamic w8a8 top-1 %.4f", top1[0]);
    cr_assert_lt(kl[1], 0.05, "static w8a8 KLD %.5f", kl[1]);
    cr_assert_leq(kl[2], 0.8 * kl[1], "SmoothQuant %.5f is not 20%% below static %.5f", kl[2], kl[1]);
    /* errors: static scales without calibration; a recipe splitting q/k/v;
     * --smooth with nothing to smooth */
    cr_assert_eq(run(&out, "quantize %s -o %s --type w8a8 --static", base, img), 2, "%s", out);
    cr_assert(strstr(out, "--calib"), "%s", out);
    free(out);
    const char *r = "{\"tensors\": [{\"match\": \"blk.1.attn_k.weight\", \"type\": \"q8_0\"}]}";
    test_spit(recipe, r, strlen(r));
    cr_assert_eq(run(&out, "quantize %s -o %s --type w8a8 --recipe %s", base, img, recipe), 2, "%s", out);
    cr_assert(strstr(out, "share an input"), "%s", out);
    free(out);
    cr_assert_eq(run(&out, "quantize %s -o %s --type q4_0 --smooth 0.5 --calib %s", base, img, calib), 2, "%s", out);
    cr_assert(strstr(out, "w8a8"), "%s", out);
    free(out);
    free(base);
    free(calib);
    free(held);
    free(img);
    free(recipe);
    test_rmtree(dir);
}

/* stories260K's rows (64, 172) are not whole 256-blocks: the super-block
 * types fall back to their 32-wide kin, say so, and the image runs. */
Test(cli, quantize_super_block_types_fall_back_on_narrow_rows)
{
    NEED_SHARED(models);
    char *dir = test_tmpdir(), *out;
    char *base = strdup(test_path(dir, "f32.gguf")), *img = strdup(test_path(dir, "k.gguf"));
    convert_s260(models, base, NULL);
    const struct {
        const char *type, *to, *why;
    } want[] = {{"q4_K", "q4_1", "q4_1 instead of q4_K"}, {"q6_K", "q8_0", "q8_0 instead of q6_K"},
                {"nf4", "iq4_nl", "iq4_nl instead of nf4"}, {"iq4_nl", "iq4_nl", NULL}};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        json_object *j = run_json("quantize", &out, 0, "quantize %s -o %s --type %s --json", base, img, want[w].type);
        free(out);
        json_object *t = tensor_named(j, "blk.0.attn_q.weight");
        cr_assert_str_eq(jstr_of(t, "type", NULL), want[w].to, "%s", want[w].type);
        if (want[w].why)
            cr_assert(strstr(jstr_of(t, "fallback", NULL), want[w].why), "%s", want[w].type);
        json_object_put(j);
        cr_assert_eq(run_stdout(&out, "generate %s -p 'Once upon a time' -n 8", img), 0, "%s", out);
        free(out);
    }
    free(base);
    free(img);
    test_rmtree(dir);
}

Test(cli, bench_reports_json)
{
    NEED_SHARED(models);
    char *out;
    cr_assert_eq(run_stdout(&out, "bench %s --seqs 1,3 --prompt 8 --gen 4 --bw-mib 64 --json",
                            test_path(models, "stories260K.gguf")), 0, "%s", out);
    json_object *j = json_tokener_parse(out), *lv, *k;
    cr_assert_not_null(j, "%s", out);
    cr_assert(json_object_object_get_ex(j, "levels", &lv));
    cr_assert_eq(json_object_array_length(lv), 2);
    cr_assert_eq(json_object_get_int(json_object_object_get(json_object_array_get_idx(lv, 1), "sequences")), 3);
    cr_assert_gt(json_object_get_double(json_object_object_get(json_object_array_get_idx(lv, 1), "tg_tok_s")), 0);
    cr_assert_gt(json_object_get_int64(json_object_object_get(j, "peak_rss_bytes")), 0);
    cr_assert_gt(json_object_get_double(json_object_object_get(j, "read_bw_bytes_s")), 1e8);
    cr_assert(json_object_object_get_ex(j, "kernels", &k));
    cr_assert_eq(json_object_array_length(k), 1, "stories260K.gguf is all f32");
    /* 5 layers of 45312 f32 weights plus the 512 x 64 classifier */
    cr_assert_eq(json_object_get_int64(json_object_object_get(j, "weight_bytes_per_token")), (5 * 45312 + 512 * 64) * 4);
    json_object_put(j);
    free(out);
}

/* Several thread counts in one run: a level per (count, sequences), in
 * that order, each count's later levels with their paired ratio, each
 * count's later sequence levels with theirs to its first; the summary
 * fields for the count with the most threads. */
Test(cli, bench_compares_thread_counts)
{
    NEED_SHARED(models);
    char *out;
    cr_assert_eq(run_stdout(&out, "bench %s --threads 2,1 --seqs 1,2 --prompt 4 --gen 3 --reps 3 --bw-mib 0 --json",
                            test_path(models, "stories260K.gguf")), 0, "%s", out);
    json_object *j = json_tokener_parse(out), *lv;
    cr_assert_not_null(j, "%s", out);
    cr_assert_eq(json_object_get_int(json_object_object_get(j, "threads")), 2);
    cr_assert(json_object_object_get_ex(j, "levels", &lv));
    cr_assert_eq(json_object_array_length(lv), 4);
    const int want[4][2] = {{2, 1}, {2, 2}, {1, 1}, {1, 2}};
    for (int i = 0; i < 4; i++) {
        json_object *l = json_object_array_get_idx(lv, (size_t)i), *r;
        cr_assert_eq(json_object_get_int(json_object_object_get(l, "threads")), want[i][0], "level %d", i);
        cr_assert_eq(json_object_get_int(json_object_object_get(l, "sequences")), want[i][1], "level %d", i);
        cr_assert_gt(json_object_get_double(json_object_object_get(l, "tg_tok_s")), 0, "level %d", i);
        const int paired = json_object_object_get_ex(l, "tg_paired_ratio_to_first_threads", &r);
        cr_assert_eq(paired, i >= 2, "level %d: a paired ratio only after the first count", i);
        if (paired)
            cr_assert(json_object_get_double(r) > 0.01 && json_object_get_double(r) < 100, "level %d: ratio %g", i,
                      json_object_get_double(r));
        const int per_level = json_object_object_get_ex(l, "tg_paired_ratio_to_first_level", &r);
        cr_assert_eq(per_level, i % 2 == 1, "level %d: a ratio to 1 sequence only for 2 sequences", i);
        if (per_level) /* a ratio of two speeds, not a speed (thousands of tok/s); wide bounds: 3 reps of
                        * 3 tokens under ASan on a busy machine gave 0.15 */
            cr_assert(json_object_get_double(r) > 0.01 && json_object_get_double(r) < 100, "level %d: ratio %g", i,
                      json_object_get_double(r));
    }
    json_object_put(j);
    free(out);
    cr_assert_eq(run(&out, "bench %s --threads 1,x", test_path(models, "stories260K.gguf")), 2);
    free(out);
    cr_assert_eq(run(&out, "bench %s --threads 1,2,3,4,5", test_path(models, "stories260K.gguf")), 2);
    free(out);
    /* a context of two positions: the warm-up fits in it too */
    cr_assert_eq(run(&out, "bench %s --prompt 1 --gen 1 --reps 1 --bw-mib 0", test_path(models, "stories260K.gguf")), 0,
                 "%s", out);
    free(out);
}
