/* The management request decoder (firmware/sl_mgmt_req.h): every request
 * of docs/operations.md decoded, and each kind of bad line refused with its
 * error code and a message naming the fault. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sl_mgmt_req.h"

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
