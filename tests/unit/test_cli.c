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
    cr_assert_eq(run(&out, "convert %s -z %s -o %s", test_path(models, "stories260K.bin"),
                     test_path(models, "tok512.bin"), img), 0, "%s", out);
    free(out);
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
    cr_assert_eq(run(&out, "convert %s -z %s -o %s", test_path(models, "stories260K.bin"),
                     test_path(models, "tok512.bin"), f32), 0, "%s", out);
    free(out);
    cr_assert_eq(run(&out, "convert %s -z %s -o %s --type q8_0", test_path(models, "stories260K.bin"),
                     test_path(models, "tok512.bin"), q8), 0, "%s", out);
    free(out);
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
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(run(&out, "convert %s -z %s -o %s --type %s", test_path(models, "stories260K.bin"),
                         test_path(models, "tok512.bin"), imgs[i], types[i]), 0, "%s", out);
        free(out);
    }
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
