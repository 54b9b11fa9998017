/* sluiced's configuration file (firmware/sl_config.h): every key of
 * docs/operations.md decoded, each kind of bad file refused with its error
 * code and a message naming the fault, and a refused file changing
 * nothing. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sl_config.h"
#include "test_support.h"

static const sl_config defaults = {.listen = "127.0.0.1:7433", .threads = 1, .max_seqs = 16, .max_queue = 256,
                                   .isa = -1, .max_inflight = 64, .max_prompt = 16384, .max_tokens = 4096,
                                   .log_level = 2};

static sl_status parse(const char *text, sl_config *c, json_object **keep, sl_err *err)
{
    *c = defaults;
    return sl_config_parse(text, strlen(text), c, keep, err);
}

Test(config, every_key_decodes)
{
    sl_config c;
    json_object *keep;
    sl_err err = {0};
    const char *text = "{\"listen\": \"0.0.0.0:7000\", \"mgmt\": \"/run/sluiced.sock\",\n"
                       " \"metrics\": \"127.0.0.1:9100\",\n"
                       " \"threads\": 2, \"max_seqs\": 8, \"ctx\": 512, \"max_queue\": 64, \"max_inflight\": 32,\n"
                       " \"max_prompt\": 1024, \"max_tokens\": 256, \"rate\": 2.5, \"mlock\": true,\n"
                       " \"require_mac\": true,\n"
                       " \"log_level\": \"debug\", \"isa\": \"avx2\",\n"
                       " \"keys\": {\"7\": \"000102030405060708090a0b0c0d0e0f\"},\n"
                       " \"models\": {\"s260\": \"/m/a.gguf\", \"m-1.q8_0\": \"b.gguf\"}}\n";
    cr_assert_eq(parse(text, &c, &keep, &err), SL_OK, "%s", err.msg);
    cr_assert_str_eq(c.listen, "0.0.0.0:7000");
    cr_assert_str_eq(c.mgmt, "/run/sluiced.sock");
    cr_assert_str_eq(c.metrics, "127.0.0.1:9100");
    cr_assert(c.threads == 2 && c.max_seqs == 8 && c.ctx == 512 && c.max_queue == 64 && c.max_inflight == 32);
    cr_assert(c.max_prompt == 1024 && c.max_tokens == 256 && c.rate == 2.5 && c.mlock == 1 && c.require_mac == 1);
    cr_assert_eq(c.log_level, 3);
    cr_assert_str_eq(sl_log_level_names[c.log_level], "debug");
    cr_assert_eq(c.isa, sl_isa_parse("avx2"));
    cr_assert_eq(c.n_keys, 1);
    cr_assert(c.keys[0].id == 7 && c.keys[0].len == 16 && c.keys[0].key[0] == 0 && c.keys[0].key[15] == 15);
    cr_assert_eq(c.n_models, 2);
    cr_assert_str_eq(c.model_name[0], "s260");
    cr_assert_str_eq(c.model_image[0], "/m/a.gguf");
    cr_assert_str_eq(c.model_name[1], "m-1.q8_0");
    cr_assert_str_eq(c.model_image[1], "b.gguf");
    cr_assert_eq(sl_config_check(&c, &err), SL_OK, "%s", err.msg);
    /* equal by content, and not where one value differs */
    sl_config d = c;
    char listen[] = "0.0.0.0:7000";
    d.listen = listen;
    cr_assert(sl_config_equal(&c, &d));
    d.model_image[1][0] = 'c';
    cr_assert(!sl_config_equal(&c, &d));
    d = c, d.keys[0].key[15] = 0;
    cr_assert(!sl_config_equal(&c, &d));
    d = c, d.rate = 2.25;
    cr_assert(!sl_config_equal(&c, &d));
    d = c, d.metrics = NULL;
    cr_assert(!sl_config_equal(&c, &d));
    json_object_put(keep);

    /* an empty object keeps every value; integers may be 0 in the file */
    cr_assert_eq(parse(" {} ", &c, &keep, &err), SL_OK, "%s", err.msg);
    cr_assert(sl_config_equal(&c, &defaults));
    json_object_put(keep);
    cr_assert_eq(parse("{\"ctx\": 0, \"rate\": 0}", &c, &keep, &err), SL_OK, "%s", err.msg);
    json_object_put(keep);
}

Test(config, bad_files_are_refused_by_name)
{
    static char long_mgmt[160], long_image[1100], long_name[100], nine[400];
    snprintf(long_mgmt, sizeof long_mgmt, "{\"mgmt\": \"/%0107d\"}", 0);
    snprintf(long_image, sizeof long_image, "{\"models\": {\"m\": \"/%01023d\"}}", 0);
    snprintf(long_name, sizeof long_name, "{\"models\": {\"%065d\": \"a.gguf\"}}", 0);
    int n = snprintf(nine, sizeof nine, "{\"models\": {");
    for (int i = 0; i < 9; i++)
        n += snprintf(nine + n, sizeof nine - (size_t)n, "%s\"m%d\": \"a.gguf\"", i ? ", " : "", i);
    snprintf(nine + n, sizeof nine - (size_t)n, "}}");
    static const struct {
        const char *text;
        sl_status code;
        const char *msg;
    } bad[] = {
        {"{\"log_level\": null}", SL_EINVAL, "\"log_level\" is \"error\", \"warn\", \"info\" or \"debug\""},
        {"{\"log_level\": 3}", SL_EINVAL, "\"log_level\" is \"error\", \"warn\", \"info\" or \"debug\""},
        {"{\"log_level\": \"loud\"}", SL_EINVAL, "\"log_level\" is \"error\", \"warn\", \"info\" or \"debug\""},
        {"{\"isa\": null}", SL_EINVAL, "\"isa\" is \"scalar\", \"avx2\", \"avx512\" or \"amx\""},
        {"{\"isa\": \"avx2\\u0000x\"}", SL_EINVAL, "\"isa\" is \"scalar\", \"avx2\", \"avx512\" or \"amx\""},
        {"{\"threads\": \"2\"}", SL_EINVAL, "\"threads\" must be an integer"},
        {"{\"threads\": 1.5}", SL_EINVAL, "\"threads\" must be an integer"},
        {"{\"threads\": -1}", SL_ERANGE, "\"threads\" must be 0..1048576"},
        {"{\"max_prompt\": 1048577}", SL_ERANGE, "\"max_prompt\" must be 0..1048576"},
        {"{\"rate\": -0.5}", SL_EINVAL, "\"rate\" must be a finite number >= 0"},
        {"{\"rate\": \"1\"}", SL_EINVAL, "\"rate\" must be a finite number >= 0"},
        {"{\"rate\": 1e999}", SL_EINVAL, "\"rate\" must be a finite number >= 0"},
        {"{\"mlock\": 1}", SL_EINVAL, "\"mlock\" must be true or false"},
        {"{\"require_mac\": null}", SL_EINVAL, "\"require_mac\" must be true or false"},
        {"{\"listen\": \"\"}", SL_ERANGE, "\"listen\" must be 1..255 bytes, not 0"},
        {"{\"listen\": 7433}", SL_EINVAL, "\"listen\" must be a string"},
        {"{\"metrics\": \"a\\u0000b\"}", SL_EINVAL, "\"metrics\" holds a NUL character"},
        {long_mgmt, SL_ERANGE, "\"mgmt\" must be 1..107 bytes, not 108"},
        {"{\"models\": 3}", SL_EINVAL, "\"models\" must be an object of at most 8 NAME: IMAGE"},
        {nine, SL_EINVAL, "\"models\" must be an object of at most 8 NAME: IMAGE"},
        {"{\"models\": {\"\": \"a.gguf\"}}", SL_ERANGE, "a model name must be 1..64 bytes, not 0"},
        {long_name, SL_ERANGE, "a model name must be 1..64 bytes, not 65"},
        {"{\"models\": {\"m\": null}}", SL_EINVAL, "model \"m\": its image must be a string"},
        {"{\"models\": {\"m\": \"\"}}", SL_ERANGE, "model \"m\": its image must be 1..1023 bytes, not 0"},
        {long_image, SL_ERANGE, "model \"m\": its image must be 1..1023 bytes, not 1024"},
        {"{\"keys\": {\"1\": \"00\"}}", SL_EINVAL, "key \"1\" must be 16..64 bytes in hex under a decimal id"},
        {"{\"keys\": {\"1\": null}}", SL_EINVAL, "key \"1\" must be 16..64 bytes in hex under a decimal id"},
        {"{\"keys\": {\"x\": \"000102030405060708090a0b0c0d0e0f\"}}", SL_EINVAL,
         "key \"x\" must be 16..64 bytes in hex under a decimal id"},
        {"{\"keys\": []}", SL_EINVAL, "\"keys\" must be an object of at most 16 \"ID\": \"HEX\""},
        {"{\"thread\": 2}", SL_EINVAL, "unknown key \"thread\""},
        {"[1]", SL_EFORMAT, "not a JSON object (a array)"},
        {"null", SL_EFORMAT, "not a JSON object (a null)"},
        {"", SL_EFORMAT, "not a JSON object (it ends too soon)"},
        {"{\"threads\": 2} {}", SL_EFORMAT, "not a JSON object (unexpected character at byte 15)"},
        {"{\"threads\": 2", SL_EFORMAT, "not a JSON object (it ends too soon)"},
        {"{\"rate\": NaN}", SL_EINVAL, "\"rate\" must be a finite number >= 0"},
        {"{\"models\": {\"m\": [[[[[[[[[[1]]]]]]]]]]}}", SL_EFORMAT,
         "not a JSON object (nesting too deep at byte 23)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sl_config c;
        json_object *keep = (json_object *)&c; /* must come back NULL */
        sl_err err = {0};
        cr_assert_eq(parse(bad[i].text, &c, &keep, &err), bad[i].code, "%s: %s", bad[i].text, err.msg);
        cr_assert_str_eq(err.msg, bad[i].msg, "%s", bad[i].text);
        cr_assert_null(keep);
        cr_assert(sl_config_equal(&c, &defaults), "%s changed the configuration", bad[i].text);
    }
    /* all or nothing: the good keys before a bad one are not kept */
    sl_config c;
    json_object *keep;
    sl_err err = {0};
    cr_assert_eq(parse("{\"threads\": 4, \"models\": {\"m\": \"a.gguf\"}, \"log_level\": null}", &c, &keep, &err),
                 SL_EINVAL);
    cr_assert(sl_config_equal(&c, &defaults));
    /* a NUL byte in the file, and a file over the limit */
    c = defaults;
    cr_assert_eq(sl_config_parse("{\"ctx\": 1}\0", 12, &c, &keep, &err), SL_EFORMAT);
    cr_assert_str_eq(err.msg, "a NUL byte in the file");
    cr_assert_eq(sl_config_parse("{}", SL_CONFIG_MAX + 1, &c, &keep, &err), SL_ERANGE);
    cr_assert_str_eq(err.msg, "over 1048576 bytes");
}

Test(config, files_are_read_and_named)
{
    char *dir = test_tmpdir();
    char *good = strdup(test_path(dir, "good.json")), *bad = strdup(test_path(dir, "bad.json"));
    test_spit(good, "{\"threads\": 3}\n", 15);
    test_spit(bad, "{\"threads\": 3,}\n", 16);
    sl_config c = defaults;
    json_object *keep;
    sl_err err = {0};
    cr_assert_eq(sl_config_read(good, &c, &keep, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(c.threads, 3);
    json_object_put(keep);
    cr_assert_eq(sl_config_read(bad, &c, &keep, &err), SL_EFORMAT);
    char want[600];
    snprintf(want, sizeof want, "%s: not a JSON object (unexpected character at byte 14)", bad);
    cr_assert_str_eq(err.msg, want);
    char *none = strdup(test_path(dir, "none.json"));
    cr_assert_eq(sl_config_read(none, &c, &keep, &err), SL_EIO);
    snprintf(want, sizeof want, "%s: No such file or directory", none);
    cr_assert_str_eq(err.msg, want);
    cr_assert_null(keep);
    free(good);
    free(bad);
    free(none);
    test_rmtree(dir);
}

Test(config, values_together_are_checked)
{
    sl_config c = defaults;
    sl_err err = {0};
    cr_assert_eq(sl_config_check(&c, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "no model and no management socket: nothing to serve");
    c.mgmt = "/run/s.sock";
    cr_assert_eq(sl_config_check(&c, &err), SL_OK, "%s", err.msg);
    c.threads = 0;
    cr_assert_eq(sl_config_check(&c, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "threads 0 is outside 1..1024");
    c.threads = 2, c.max_prompt = 0;
    cr_assert_eq(sl_config_check(&c, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "max_prompt 0 is outside 1..1048576");
    c.max_prompt = 1, c.max_queue = 65537;
    cr_assert_eq(sl_config_check(&c, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "max_queue 65537 is outside 1..65536");
    c.max_queue = 1, c.rate = -1;
    cr_assert_eq(sl_config_check(&c, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "rate -1 is not a finite number >= 0");
    cr_assert_eq(sl_log_level_parse(NULL), -1);
    cr_assert_eq(sl_log_level_parse("warn"), 1);
}
