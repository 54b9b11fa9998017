/* The management protocol (mgmt/sl_mgmt_proto.h): every request of
 * docs/operations.md decoded, and each kind of bad line refused with its
 * error code and a message naming the fault; the request encoder and
 * sluicectl's words against the decoder; the replies' exact bytes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sl_mgmt_proto.h"

static sl_status parse(const char *line, sl_mgmt_req *req, json_object **obj, sl_err *err)
{
    return sl_mgmt_parse(line, strlen(line), obj, req, err);
}

Test(mgmt, requests_decode)
{
    sl_mgmt_req q;
    json_object *o;
    sl_err err = {0};
    cr_assert_eq(parse("{\"cmd\": \"swap\", \"name\": \"s260\", \"image\": \"/m/b.gguf\", \"force\": true}\r", &q, &o, &err),
                 SL_OK, "%s", err.msg);
    cr_assert_eq(q.cmd, SL_MGMT_SWAP);
    cr_assert_str_eq(q.name, "s260");
    cr_assert_str_eq(q.image, "/m/b.gguf");
    cr_assert_eq(q.force, 1);
    json_object_put(o);
    cr_assert_eq(parse(" {\"image\":\"a.gguf\",\"name\":\"m-1.q8_0\",\"cmd\":\"load\",\"force\":false} ", &q, &o, &err), SL_OK,
                 "%s", err.msg);
    cr_assert(q.cmd == SL_MGMT_LOAD && !strcmp(q.name, "m-1.q8_0") && !strcmp(q.image, "a.gguf") && q.force == 0);
    json_object_put(o);
    cr_assert_eq(parse("{\"cmd\":\"unload\",\"name\":\"m\"}", &q, &o, &err), SL_OK, "%s", err.msg);
    cr_assert(q.cmd == SL_MGMT_UNLOAD && !strcmp(q.name, "m") && !q.image);
    json_object_put(o);
    const char *bare[] = {"status", "models", "stats", "drain"};
    const sl_mgmt_cmd want[] = {SL_MGMT_STATUS, SL_MGMT_MODELS, SL_MGMT_STATS, SL_MGMT_DRAIN};
    for (int i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "{\"cmd\":\"%s\"}", bare[i]);
        cr_assert_eq(parse(line, &q, &o, &err), SL_OK, "%s: %s", line, err.msg);
        cr_assert(q.cmd == want[i] && !q.name && !q.image && !q.force, "%s", line);
        cr_assert_str_eq(sl_mgmt_cmd_name(q.cmd), bare[i]);
        json_object_put(o);
    }
}

typedef struct bad {
    const char *line;
    sl_status st;
    const char *msg;
} bad;

Test(mgmt, bad_lines_are_refused_by_name)
{
    char name65[128], deep[256];
    snprintf(name65, sizeof name65, "{\"cmd\":\"unload\",\"name\":\"%065d\"}", 7);
    snprintf(deep, sizeof deep, "{\"cmd\":%s1%s}", "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]");
    const bad cases[] = {
        {"", SL_EFORMAT, "not a JSON object on one line (it ends too soon)"},
        {"{\"cmd\":\"status\"", SL_EFORMAT, "not a JSON object on one line (it ends too soon)"},
        {"[1]", SL_EFORMAT, "not a JSON object on one line (a array)"},
        {"null", SL_EFORMAT, "not a JSON object on one line (a null)"},
        {"\"status\"", SL_EFORMAT, "not a JSON object on one line (a string)"},
        {"{\"cmd\":\"status\"} {}", SL_EFORMAT, "not a JSON object on one line (unexpected character at byte 17)"},
        {"{cmd: status}", SL_EFORMAT, "not a JSON object on one line ("},
        {deep, SL_EFORMAT, "not a JSON object on one line (nesting too deep at byte "},
        {"{}", SL_EINVAL, "no \"cmd\""},
        {"{\"cmd\":5}", SL_EINVAL, "\"cmd\" must be a string"},
        {"{\"cmd\":\"stat\"}", SL_EINVAL, "unknown command \"stat\""},
        {"{\"cmd\":\"status\",\"imgae\":\"x\"}", SL_EINVAL, "unknown key \"imgae\""},
        {"{\"cmd\":\"load\",\"name\":\"a\"}", SL_EINVAL, "load needs \"name\" and \"image\""},
        {"{\"cmd\":\"swap\",\"image\":\"/x\"}", SL_EINVAL, "swap needs \"name\" and \"image\""},
        {"{\"cmd\":\"unload\"}", SL_EINVAL, "unload needs \"name\""},
        {"{\"cmd\":\"status\",\"name\":\"a\"}", SL_EINVAL, "status takes no arguments"},
        {"{\"cmd\":\"drain\",\"force\":true}", SL_EINVAL, "drain takes no arguments"},
        {"{\"cmd\":\"unload\",\"name\":\"a\",\"image\":\"/x\"}", SL_EINVAL, "unload takes only \"name\""},
        {"{\"cmd\":\"load\",\"name\":\"a\",\"image\":\"/x\",\"force\":1}", SL_EINVAL, "\"force\" must be true or false"},
        {"{\"cmd\":\"load\",\"name\":7,\"image\":\"/x\"}", SL_EINVAL, "\"name\" must be a string"},
        {"{\"cmd\":\"load\",\"name\":\"a\\u0000b\",\"image\":\"/x\"}", SL_EINVAL, "\"name\" holds a NUL character"},
        {"{\"cmd\":\"load\",\"name\":\"\",\"image\":\"/x\"}", SL_ERANGE, "\"name\" must be 1..64 bytes, not 0"},
        {name65, SL_ERANGE, "\"name\" must be 1..64 bytes, not 65"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sl_mgmt_req q;
        json_object *o = (json_object *)&q; /* must come back NULL */
        sl_err err = {0};
        const sl_status st = parse(cases[i].line, &q, &o, &err);
        cr_assert_eq(st, cases[i].st, "'%s': status %d, not %d (%s)", cases[i].line, st, cases[i].st, err.msg);
        cr_assert(strstr(err.msg, cases[i].msg), "'%s': \"%s\" does not say \"%s\"", cases[i].line, err.msg, cases[i].msg);
        cr_assert_null(o, "'%s': an object came back with the error", cases[i].line);
    }
}

Test(mgmt, nul_bytes_and_long_lines_are_refused)
{
    sl_mgmt_req q;
    json_object *o;
    sl_err err = {0};
    const char nul[] = "{\"cmd\":\"status\"}\0{\"cmd\":\"drain\"}";
    cr_assert_eq(sl_mgmt_parse(nul, sizeof nul - 1, &o, &q, &err), SL_EFORMAT);
    cr_assert_str_eq(err.msg, "a NUL byte in the request line");
    static char big[SL_MGMT_LINE_MAX + 1];
    const char head[] = "{\"cmd\":\"load\",\"name\":\"a\",\"image\":\"";
    memset(big, 'x', sizeof big);
    memcpy(big, head, sizeof head - 1);
    memcpy(big + SL_MGMT_LINE_MAX - 2, "\"}", 2);
    cr_assert_eq(sl_mgmt_parse(big, SL_MGMT_LINE_MAX, &o, &q, &err), SL_ERANGE);
    cr_assert_str_eq(err.msg, "request line over 65535 bytes");
    /* one byte shorter it parses, and the image is over its own limit */
    memcpy(big + SL_MGMT_LINE_MAX - 3, "\"}", 2);
    cr_assert_eq(sl_mgmt_parse(big, SL_MGMT_LINE_MAX - 1, &o, &q, &err), SL_ERANGE, "%s", err.msg);
    cr_assert(strstr(err.msg, "\"image\" must be 1..1023 bytes, not 65499"), "%s", err.msg);
}

/* ---- the request encoder and sluicectl's words ---- */

/* A request for command c with every argument it takes. */
static sl_mgmt_req full(int c)
{
    const unsigned t = sl_mgmt_cmds[c].args;
    return (sl_mgmt_req){.cmd = (sl_mgmt_cmd)c,
                         .name = t & SL_MGMT_ARG_NAME ? "m-1.q8_0" : NULL,
                         .image = t & SL_MGMT_ARG_IMAGE ? "/srv/m \"a\"/b.gguf" : NULL,
                         .force = (t & SL_MGMT_ARG_FORCE) != 0};
}

static void same(const sl_mgmt_req *a, const sl_mgmt_req *b, const char *what)
{
    cr_assert_eq(a->cmd, b->cmd, "%s", what);
    cr_assert_eq(a->force, b->force, "%s", what);
    cr_assert_eq(!a->name, !b->name, "%s", what);
    cr_assert_eq(!a->image, !b->image, "%s", what);
    cr_assert(!a->name || !strcmp(a->name, b->name), "%s", what);
    cr_assert(!a->image || !strcmp(a->image, b->image), "%s", what);
}

Test(mgmt, every_command_encodes_to_a_line_that_decodes_back)
{
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++)
        for (int f = 0; f < 2; f++) {
            sl_mgmt_req q = full(c);
            q.force = q.force && f;
            char line[SL_MGMT_LINE_MAX + 1];
            size_t n;
            sl_err err = {0};
            cr_assert_eq(sl_mgmt_encode_request(&q, line, sizeof line, &n, &err), SL_OK, "%s: %s",
                         sl_mgmt_cmds[c].name, err.msg);
            cr_assert(n >= 2 && line[n - 1] == '\n' && line[n] == 0 && !memchr(line, '\n', n - 1), "%s", line);
            sl_mgmt_req back;
            json_object *o;
            cr_assert_eq(sl_mgmt_parse(line, n - 1, &o, &back, &err), SL_OK, "%s: %s", line, err.msg);
            same(&q, &back, line);
            json_object_put(o);
        }
    /* what sluicectl has always sent */
    char line[256];
    size_t n;
    const sl_mgmt_req load = {SL_MGMT_LOAD, "s260", "/m/a.gguf", false};
    cr_assert_eq(sl_mgmt_encode_request(&load, line, sizeof line, &n, NULL), SL_OK);
    cr_assert_str_eq(line, "{\"cmd\":\"load\",\"name\":\"s260\",\"image\":\"\\/m\\/a.gguf\",\"force\":false}\n");
    cr_assert_eq(n, strlen(line));
    const sl_mgmt_req unload = {SL_MGMT_UNLOAD, "s260", NULL, false};
    cr_assert_eq(sl_mgmt_encode_request(&unload, line, sizeof line, &n, NULL), SL_OK);
    cr_assert_str_eq(line, "{\"cmd\":\"unload\",\"name\":\"s260\"}\n");
    cr_assert_eq(sl_mgmt_encode_request(&(sl_mgmt_req){SL_MGMT_DRAIN, 0, 0, 0}, line, sizeof line, &n, NULL), SL_OK);
    cr_assert_str_eq(line, "{\"cmd\":\"drain\"}\n");
}

Test(mgmt, the_encoder_refuses_what_the_decoder_refuses)
{
    char name65[66];
    memset(name65, 'n', 65);
    name65[65] = 0;
    const struct {
        sl_mgmt_req q;
        sl_status st;
        const char *msg;
    } cases[] = {
        {{SL_MGMT_STATUS, "a", NULL, false}, SL_EINVAL, "status takes no arguments"},
        {{SL_MGMT_DRAIN, NULL, NULL, true}, SL_EINVAL, "drain takes no arguments"},
        {{SL_MGMT_UNLOAD, "a", "/x", false}, SL_EINVAL, "unload takes only \"name\""},
        {{SL_MGMT_UNLOAD, "a", NULL, true}, SL_EINVAL, "unload takes only \"name\""},
        {{SL_MGMT_LOAD, "a", NULL, false}, SL_EINVAL, "load needs \"name\" and \"image\""},
        {{SL_MGMT_UNLOAD, NULL, NULL, false}, SL_EINVAL, "unload needs \"name\""},
        {{SL_MGMT_SWAP, "", "/x", false}, SL_ERANGE, "\"name\" must be 1..64 bytes, not 0"},
        {{SL_MGMT_SWAP, name65, "/x", false}, SL_ERANGE, "\"name\" must be 1..64 bytes, not 65"},
        {{SL_MGMT_CMD_COUNT, NULL, NULL, false}, SL_EINVAL, "unknown command \"?\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[512];
        size_t n = 99;
        sl_err err = {0};
        cr_assert_eq(sl_mgmt_encode_request(&cases[i].q, line, sizeof line, &n, &err), cases[i].st, "case %zu: %s", i,
                     err.msg);
        cr_assert(strstr(err.msg, cases[i].msg), "case %zu: \"%s\" does not say \"%s\"", i, err.msg, cases[i].msg);
        cr_assert_eq(n, 0);
    }
    /* a line that passes but does not fit the buffer */
    char small[16];
    size_t n;
    sl_err err = {0};
    cr_assert_eq(sl_mgmt_encode_request(&(sl_mgmt_req){SL_MGMT_STATUS, 0, 0, 0}, small, sizeof small, &n, &err),
                 SL_ERANGE);
    cr_assert_str_eq(err.msg, "the request line needs 18 bytes, not 16");
}

static sl_status words(const char *line, bool force, sl_mgmt_req *q, sl_err *err)
{
    static char buf[256];
    static char *w[8];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", line);
    for (char *t = strtok(buf, " "); t && n < 8; t = strtok(NULL, " "))
        w[n++] = t;
    return sl_mgmt_request_from_argv(n, w, force, q, err);
}

Test(mgmt, sluicectl_words_take_the_tables_argument_counts)
{
    sl_mgmt_req q;
    sl_err err = {0};
    cr_assert_eq(words("swap s260 b.gguf", true, &q, &err), SL_OK, "%s", err.msg);
    same(&q, &(sl_mgmt_req){SL_MGMT_SWAP, "s260", "b.gguf", true}, "swap");
    cr_assert_eq(words("load s260 b.gguf", false, &q, &err), SL_OK, "%s", err.msg);
    same(&q, &(sl_mgmt_req){SL_MGMT_LOAD, "s260", "b.gguf", false}, "load");
    cr_assert_eq(words("unload s260", true, &q, &err), SL_OK, "%s", err.msg); /* --force only where it counts */
    same(&q, &(sl_mgmt_req){SL_MGMT_UNLOAD, "s260", NULL, false}, "unload");
    cr_assert_eq(words("stats", true, &q, &err), SL_OK, "%s", err.msg);
    same(&q, &(sl_mgmt_req){SL_MGMT_STATS, NULL, NULL, false}, "stats");
    const struct {
        const char *line;
        const char *msg;
    } bad[] = {
        {"", "no command"},
        {"load", "load takes NAME IMAGE"},
        {"load s260", "load takes NAME IMAGE"},
        {"swap s260 b.gguf c.gguf", "swap takes NAME IMAGE"},
        {"unload", "unload takes NAME"},
        {"unload a b", "unload takes NAME"},
        {"status now", "status takes no arguments"},
        {"drain x", "drain takes no arguments"},
        {"stat x", "unknown command \"stat\" with arguments"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(words(bad[i].line, false, &q, &err), SL_EINVAL, "'%s' passed", bad[i].line);
        cr_assert_str_eq(err.msg, bad[i].msg);
    }
    /* every command, one argument short and one over */
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++) {
        char *w[4] = {(char *)sl_mgmt_cmds[c].name, "x", "y", "z"};
        const unsigned t = sl_mgmt_cmds[c].args;
        const int want = !!(t & SL_MGMT_ARG_NAME) + !!(t & SL_MGMT_ARG_IMAGE);
        cr_assert_eq(sl_mgmt_request_from_argv(1 + want, w, false, &q, &err), SL_OK, "%s", err.msg);
        cr_assert_eq(q.cmd, (sl_mgmt_cmd)c);
        cr_assert_eq(sl_mgmt_request_from_argv(2 + want, w, false, &q, &err), SL_EINVAL, "%s", w[0]);
        if (want)
            cr_assert_eq(sl_mgmt_request_from_argv(want, w, false, &q, &err), SL_EINVAL, "%s", w[0]);
    }
    /* a lone unknown word: the daemon's own refusal */
    cr_assert_eq(words("stat", false, &q, &err), SL_ENOTFOUND);
    cr_assert_str_eq(err.msg, "unknown command \"stat\" (status, models, stats, load, swap, unload, drain)");
    json_object *o;
    cr_assert_eq(parse("{\"cmd\":\"stat\"}", &q, &o, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "unknown command \"stat\" (status, models, stats, load, swap, unload, drain)");
}

Test(mgmt, usage_and_messages_come_from_the_table)
{
    char u[256];
    const char want[] = "  status | models | stats | drain\n"
                        "  load NAME IMAGE [--force] | swap NAME IMAGE [--force] | unload NAME\n";
    cr_assert_eq(sl_mgmt_usage_commands(u, sizeof u), (int)strlen(want));
    cr_assert_str_eq(u, want);
    cr_assert_eq(sl_mgmt_usage_commands(u, 8), (int)strlen(want), "snprintf's contract");
    cr_assert_str_eq(u, "  statu");
    sl_mgmt_req q;
    json_object *o;
    sl_err err = {0};
    cr_assert_eq(parse("{}", &q, &o, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "no \"cmd\" (status, models, stats, load, swap, unload, drain)");
    cr_assert_eq(parse("{\"cmd\":\"status\",\"imgae\":\"x\"}", &q, &o, &err), SL_EINVAL);
    cr_assert_str_eq(err.msg, "unknown key \"imgae\" (cmd, name, image, force)");
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++) {
        cr_assert_str_eq(sl_mgmt_cmd_name((sl_mgmt_cmd)c), sl_mgmt_cmds[c].name);
        cr_assert(sl_mgmt_cmds[c].help && sl_mgmt_cmds[c].help[0] && !strchr(sl_mgmt_cmds[c].help, '\n'));
    }
    cr_assert_str_eq(sl_mgmt_cmd_name(SL_MGMT_CMD_COUNT), "?");
}

/* ---- replies ---- */

static const char *plain(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

static const sl_mgmt_version v1 = {"s260", 2, "/m/b.gguf", "xxh3-128:00ff", true, 1, 3, 40, 512, 7000, 123456,
                                   99, 4};
static const sl_mgmt_version v2 = {"tiny", 1, "/m/t.gguf", "xxh3-128:ab", false, 0, 0, 0, 64, 0, 0, 0, 0};
#define V1_JSON                                                                                                       \
    "{\"name\":\"s260\",\"version\":2,\"image\":\"/m/b.gguf\",\"checksum\":\"xxh3-128:00ff\",\"retired\":true,"       \
    "\"queued\":1,\"running\":3,\"kv_blocks_used\":40,\"kv_blocks_total\":512,\"steps\":7000,"                        \
    "\"generated_tokens\":123456,\"finished\":99,\"failed\":4}"
#define V2_JSON                                                                                                       \
    "{\"name\":\"tiny\",\"version\":1,\"image\":\"/m/t.gguf\",\"checksum\":\"xxh3-128:ab\",\"retired\":false,"        \
    "\"queued\":0,\"running\":0,\"kv_blocks_used\":0,\"kv_blocks_total\":64,\"steps\":0,"                            \
    "\"generated_tokens\":0,\"finished\":0,\"failed\":0}"

Test(mgmt, reply_encoders_write_exactly_the_daemons_keys)
{
    json_object *o = sl_mgmt_version_json(&v1);
    cr_assert_str_eq(plain(o), V1_JSON);
    json_object_put(o);
    o = sl_mgmt_reply_end(sl_mgmt_model_json(&v1), NULL);
    cr_assert_str_eq(plain(o), "{\"model\":" V1_JSON ",\"ok\":true}");
    json_object_put(o);
    const sl_mgmt_version both[] = {v1, v2};
    const sl_mgmt_status s = {true, false, 1000, 7, 51, 2, both, 2};
    o = sl_mgmt_reply_end(sl_mgmt_status_json(&s), NULL);
    cr_assert_str_eq(plain(o), "{\"models\":[" V1_JSON "," V2_JSON "],\"live\":true,\"ready\":true,\"draining\":false,"
                               "\"served\":1000,\"errors\":7,\"swaps\":51,\"swaps_failed\":2,\"ok\":true}");
    json_object_put(o);
    const sl_mgmt_status none = {false, true, 0, 0, 0, 0, NULL, 0};
    o = sl_mgmt_reply_end(sl_mgmt_status_json(&none), NULL);
    cr_assert_str_eq(plain(o), "{\"models\":[],\"live\":true,\"ready\":false,\"draining\":true,"
                               "\"served\":0,\"errors\":0,\"swaps\":0,\"swaps_failed\":0,\"ok\":true}");
    json_object_put(o);
    o = sl_mgmt_reply_end(NULL, NULL);
    cr_assert_str_eq(plain(o), "{\"ok\":true}");
    json_object_put(o);
    o = sl_mgmt_reply_end(NULL, "draining");
    cr_assert_str_eq(plain(o), "{\"ok\":false,\"error\":\"draining\"}");
    json_object_put(o);
    o = sl_mgmt_reply_error("unknown key \"x\" (cmd, name, image, force)");
    cr_assert_str_eq(plain(o), "{\"ok\":false,\"error\":\"unknown key \\\"x\\\" (cmd, name, image, force)\"}");
    json_object_put(o);
}

Test(mgmt, reply_decoders_read_what_the_encoders_wrote)
{
    const sl_mgmt_version both[] = {v1, v2};
    const sl_mgmt_status s = {true, false, 1000, 7, 51, 2, both, 2};
    json_object *o = sl_mgmt_reply_end(sl_mgmt_status_json(&s), NULL), *ms;
    const char *error = "x";
    cr_assert(sl_mgmt_reply_ok(o, &error));
    cr_assert_null(error);
    sl_mgmt_status d;
    cr_assert_eq(sl_mgmt_status_from_json(o, &d, &ms), (1u << SL_MGMT_S_COUNT) - 1);
    cr_assert(d.ready && !d.draining && d.served == 1000 && d.errors == 7 && d.swaps == 51 && d.swaps_failed == 2);
    cr_assert(ms && d.n_models == 2 && !d.models);
    sl_mgmt_version v;
    cr_assert_eq(sl_mgmt_version_from_json(json_object_array_get_idx(ms, 0), &v), (1u << SL_MGMT_V_COUNT) - 1);
    cr_assert_str_eq(v.name, "s260");
    cr_assert_str_eq(v.image, "/m/b.gguf");
    cr_assert_str_eq(v.checksum, "xxh3-128:00ff");
    cr_assert(v.version == 2 && v.retired && v.queued == 1 && v.running == 3 && v.kv_blocks_used == 40 &&
              v.kv_blocks_total == 512 && v.steps == 7000 && v.generated_tokens == 123456 && v.finished == 99 &&
              v.failed == 4);
    char b[24];
    cr_assert_str_eq(sl_mgmt_version_text(&v, ~0u, SL_MGMT_V_GENERATED_TOKENS, b, sizeof b), "123456");
    cr_assert_str_eq(sl_mgmt_version_text(&v, ~0u, SL_MGMT_V_KV_BLOCKS_TOTAL, b, sizeof b), "512");
    cr_assert_str_eq(sl_mgmt_version_text(&v, ~0u, SL_MGMT_V_NAME, b, sizeof b), "s260");
    cr_assert_str_eq(sl_mgmt_version_text(&v, ~0u, SL_MGMT_V_RETIRED, b, sizeof b), "true");
    cr_assert_str_eq(sl_mgmt_status_text(&d, ~0u, SL_MGMT_S_SWAPS_FAILED, b, sizeof b), "2");
    json_object_put(o);
    /* missing or mistyped members: their bits clear, "?" as text */
    o = json_tokener_parse("{\"name\":\"a\",\"version\":\"2\",\"queued\":5,\"ok\":1,\"error\":\"no\"}");
    cr_assert_eq(sl_mgmt_version_from_json(o, &v), 1u << SL_MGMT_V_NAME | 1u << SL_MGMT_V_QUEUED);
    cr_assert_str_eq(sl_mgmt_version_text(&v, 1u << SL_MGMT_V_NAME, SL_MGMT_V_VERSION, b, sizeof b), "?");
    cr_assert_eq(v.version, 0);
    cr_assert(!sl_mgmt_reply_ok(o, &error), "ok must be a boolean");
    cr_assert_str_eq(error, "no");
    cr_assert_eq(sl_mgmt_status_from_json(o, &d, &ms), 0);
    cr_assert_null(ms);
    json_object_put(o);
}
