/* The sluice command as a user runs it: exit statuses, JSON output. */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <sys/wait.h>

#include "test_support.h"

/* Runs `sluice ARGS`, stdout and stderr into *out (caller frees); returns
 * the exit status. */
static int run(char **out, const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    const char *bin = getenv("SLUICE_BIN");
    cr_assert_not_null(bin, "SLUICE_BIN is not set (run through meson test)");
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", bin, args);
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
