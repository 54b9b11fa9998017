/* mgmt_proto.c - the management protocol (sl_mgmt_proto.h): requests and
 * replies, both directions, each driven by one table. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "sl_json_check.h"
#include "sl_mgmt_proto.h"

const sl_mgmt_cmd_info sl_mgmt_cmds[SL_MGMT_CMD_COUNT] = {
    [SL_MGMT_STATUS] = {"status", 0, "the daemon's state and every version still mapped"},
    [SL_MGMT_MODELS] = {"models", 0, "the versions now serving"},
    [SL_MGMT_STATS] = {"stats", 0, "as status"},
    [SL_MGMT_LOAD] = {"load", SL_MGMT_ARG_NAME | SL_MGMT_ARG_IMAGE | SL_MGMT_ARG_FORCE,
                      "serve an image under a new name"},
    [SL_MGMT_SWAP] = {"swap", SL_MGMT_ARG_NAME | SL_MGMT_ARG_IMAGE | SL_MGMT_ARG_FORCE,
                      "a new version of a loaded name; the old one drains"},
    [SL_MGMT_UNLOAD] = {"unload", SL_MGMT_ARG_NAME, "the name stops taking requests; its version drains"},
    [SL_MGMT_DRAIN] = {"drain", 0, "finish the running requests and exit, as SIGTERM"},
};

/* A command's arguments, in their order on sluicectl's line and in a
 * request: a string of 1..max bytes, or (max 0) a boolean flag. */
static const struct {
    unsigned bit;
    const char *key;
    size_t max;
    const char *meta; /* in sluicectl's usage */
    size_t off;       /* in sl_mgmt_req */
} args[] = {
    {SL_MGMT_ARG_NAME, SL_MGMT_KEY_NAME, SL_MGMT_NAME_MAX, "NAME", offsetof(sl_mgmt_req, name)},
    {SL_MGMT_ARG_IMAGE, SL_MGMT_KEY_IMAGE, SL_MGMT_IMAGE_MAX, "IMAGE", offsetof(sl_mgmt_req, image)},
    {SL_MGMT_ARG_FORCE, SL_MGMT_KEY_FORCE, 0, "[--force]", offsetof(sl_mgmt_req, force)},
};
#define N_ARGS (sizeof args / sizeof args[0])

static const char **str_arg(sl_mgmt_req *q, size_t a) { return (const char **)(void *)((char *)q + args[a].off); }
static bool *flag_arg(sl_mgmt_req *q, size_t a) { return (bool *)(void *)((char *)q + args[a].off); }

/* The string arguments among bits (required where taken; sluicectl's words). */
static unsigned strings_of(unsigned bits)
{
    unsigned s = 0;
    for (size_t a = 0; a < N_ARGS; a++)
        if (args[a].max && (bits & args[a].bit))
            s |= args[a].bit;
    return s;
}

static bool known(sl_mgmt_cmd cmd) { return (int)cmd >= 0 && cmd < SL_MGMT_CMD_COUNT; }

const char *sl_mgmt_cmd_name(sl_mgmt_cmd cmd) { return known(cmd) ? sl_mgmt_cmds[cmd].name : "?"; }

static int cmd_of(const char *s)
{
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++)
        if (!strcmp(s, sl_mgmt_cmds[c].name))
            return c;
    return -1;
}

/* ---- lists for messages, from the tables ---- */

static void cat(char *out, size_t cap, const char *sep, const char *item)
{
    const size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s", n ? sep : "", item);
}

/* "status, models, ..." */
static const char *cmd_list(char *out, size_t cap)
{
    out[0] = 0;
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++)
        cat(out, cap, ", ", sl_mgmt_cmds[c].name);
    return out;
}

enum { AS_KEY, AS_QUOTED, AS_META };

/* The arguments in bits, each as its key (AS_KEY), its key in quote marks
 * (AS_QUOTED) or its usage meta (AS_META), joined by sep. */
static const char *arg_list(char *out, size_t cap, unsigned bits, int as, const char *sep)
{
    out[0] = 0;
    for (size_t a = 0; a < N_ARGS; a++) {
        char item[32];
        snprintf(item, sizeof item, as == AS_QUOTED ? "\"%s\"" : "%s", as == AS_META ? args[a].meta : args[a].key);
        if (bits & args[a].bit)
            cat(out, cap, sep, item);
    }
    return out;
}

static sl_status unknown_command(sl_err *err, sl_status code, const char *word)
{
    char list[128];
    return sl_err_set(err, code, "unknown command \"%.64s\" (%s)", word, cmd_list(list, sizeof list));
}

/* ---- requests ---- */

static sl_status check(json_object *o, sl_mgmt_req *req, sl_err *err)
{
    json_object_object_foreach(o, key, val) {
        (void)val;
        size_t a = 0;
        while (a < N_ARGS && strcmp(key, args[a].key))
            a++;
        if (a == N_ARGS && strcmp(key, SL_MGMT_KEY_CMD)) {
            char keys[64];
            return sl_err_set(err, SL_EINVAL, "unknown key \"%.64s\" (" SL_MGMT_KEY_CMD ", %s)", key,
                              arg_list(keys, sizeof keys, ~0u, AS_KEY, ", "));
        }
    }
    json_object *x;
    char list[128];
    if (!json_object_object_get_ex(o, SL_MGMT_KEY_CMD, &x))
        return sl_err_set(err, SL_EINVAL, "no \"" SL_MGMT_KEY_CMD "\" (%s)", cmd_list(list, sizeof list));
    if (!json_object_is_type(x, json_type_string))
        return sl_err_set(err, SL_EINVAL, "\"" SL_MGMT_KEY_CMD "\" must be a string");
    const char *cmd = json_object_get_string(x);
    const int c = cmd_of(cmd);
    if (c < 0 || strlen(cmd) != (size_t)json_object_get_string_len(x))
        return unknown_command(err, SL_EINVAL, cmd);
    req->cmd = (sl_mgmt_cmd)c;
    const unsigned takes = sl_mgmt_cmds[c].args, needs = strings_of(takes);
    unsigned given = 0;
    for (size_t a = 0; a < N_ARGS; a++) { /* each of its type, whether its command takes it or not */
        char what[16];
        snprintf(what, sizeof what, "\"%s\"", args[a].key);
        if (!json_object_object_get_ex(o, args[a].key, &x))
            continue;
        given |= args[a].bit;
        if (!args[a].max) {
            if (!json_object_is_type(x, json_type_boolean))
                return sl_err_set(err, SL_EINVAL, "%s must be true or false", what);
            *flag_arg(req, a) = json_object_get_boolean(x);
        } else {
            sl_status st = sl_json_string(x, what, args[a].max, str_arg(req, a), err);
            if (st)
                return st;
        }
    }
    if (needs & ~given)
        return sl_err_set(err, SL_EINVAL, "%s needs %s", cmd, arg_list(list, sizeof list, needs, AS_QUOTED, " and "));
    if (given & ~takes) {
        char only[96];
        if (takes)
            snprintf(only, sizeof only, "only %s", arg_list(list, sizeof list, takes, AS_QUOTED, " and "));
        return sl_err_set(err, SL_EINVAL, "%s takes %s", cmd, takes ? only : "no arguments");
    }
    return SL_OK;
}

sl_status sl_mgmt_parse(const char *line, size_t len, json_object **obj, sl_mgmt_req *req, sl_err *err)
{
    *obj = NULL;
    memset(req, 0, sizeof *req);
    if (len >= SL_MGMT_LINE_MAX)
        return sl_err_set(err, SL_ERANGE, "request line over %d bytes", SL_MGMT_LINE_MAX - 1);
    if (memchr(line, 0, len))
        return sl_err_set(err, SL_EFORMAT, "a NUL byte in the request line");
    json_object *o; /* a request is flat: no deep nesting to walk */
    sl_status st = sl_json_parse_object(line, len, 16, "a JSON object on one line", &o, err);
    if (!st)
        st = check(o, req, err);
    if (st) {
        json_object_put(o);
        memset(req, 0, sizeof *req);
        return st;
    }
    *obj = o;
    return SL_OK;
}

sl_status sl_mgmt_encode_request(const sl_mgmt_req *req, char *out, size_t cap, size_t *len, sl_err *err)
{
    *len = 0;
    json_object *o = json_object_new_object();
    if (!o)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    json_object_object_add(o, SL_MGMT_KEY_CMD, json_object_new_string(sl_mgmt_cmd_name(req->cmd)));
    const unsigned takes = known(req->cmd) ? sl_mgmt_cmds[req->cmd].args : 0;
    sl_mgmt_req q = *req; /* str_arg and flag_arg address a request they may write */
    for (size_t a = 0; a < N_ARGS; a++) { /* what is given, for the decoder to judge */
        const char *s = args[a].max ? *str_arg(&q, a) : NULL;
        const bool f = !args[a].max && *flag_arg(&q, a);
        if (s)
            json_object_object_add(o, args[a].key, json_object_new_string(s));
        else if (!args[a].max && (f || (takes & args[a].bit)))
            json_object_object_add(o, args[a].key, json_object_new_boolean(f));
    }
    const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    const size_t n = line ? strlen(line) : 0;
    json_object *back = NULL;
    sl_mgmt_req again;
    sl_status st = line ? sl_mgmt_parse(line, n, &back, &again, err) : sl_err_set(err, SL_ENOMEM, "out of memory");
    json_object_put(back);
    if (!st && n + 2 > cap)
        st = sl_err_set(err, SL_ERANGE, "the request line needs %zu bytes, not %zu", n + 2, cap);
    if (!st) {
        memcpy(out, line, n);
        memcpy(out + n, "\n", 2);
        *len = n + 1;
    }
    json_object_put(o);
    return st;
}

sl_status sl_mgmt_request_from_argv(int n, char *const *words, bool force, sl_mgmt_req *req, sl_err *err)
{
    memset(req, 0, sizeof *req);
    if (n < 1)
        return sl_err_set(err, SL_EINVAL, "no command");
    const int c = cmd_of(words[0]);
    if (c < 0 && n > 1)
        return sl_err_set(err, SL_EINVAL, "unknown command \"%.64s\" with arguments", words[0]);
    if (c < 0)
        return unknown_command(err, SL_ENOTFOUND, words[0]);
    const unsigned takes = sl_mgmt_cmds[c].args;
    const int want = __builtin_popcount(strings_of(takes));
    if (n - 1 != want) {
        char list[64];
        return sl_err_set(err, SL_EINVAL, "%s takes %s", words[0],
                          want ? arg_list(list, sizeof list, strings_of(takes), AS_META, " ") : "no arguments");
    }
    req->cmd = (sl_mgmt_cmd)c;
    int w = 1;
    for (size_t a = 0; a < N_ARGS; a++) {
        if (!(takes & args[a].bit))
            continue;
        if (args[a].max)
            *str_arg(req, a) = words[w++];
        else
            *flag_arg(req, a) = force;
    }
    return SL_OK;
}

int sl_mgmt_usage_commands(char *out, size_t cap)
{
    char bare[256] = "", with[512] = "";
    for (int c = 0; c < SL_MGMT_CMD_COUNT; c++) {
        char item[128], list[96];
        const unsigned takes = sl_mgmt_cmds[c].args;
        snprintf(item, sizeof item, "%s%s%s", sl_mgmt_cmds[c].name, takes ? " " : "",
                 arg_list(list, sizeof list, takes, AS_META, " "));
        cat(takes ? with : bare, takes ? sizeof with : sizeof bare, " | ", item);
    }
    return snprintf(out, cap, "  %s\n  %s\n", bare, with);
}

/* ---- replies: each struct's members in one table, read and written ---- */

typedef enum ftype { F_STR, F_BOOL, F_INT, F_U64 } ftype;

typedef struct field {
    const char *key;
    ftype type;
    size_t off;
} field;

/* each member under the key of the same name */
#define V(f, t, m) [SL_MGMT_V_##f] = {SL_MGMT_KEY_##f, t, offsetof(sl_mgmt_version, m)}
static const field version_fields[SL_MGMT_V_COUNT] = {
    V(NAME, F_STR, name),
    V(VERSION, F_U64, version),
    V(IMAGE, F_STR, image),
    V(CHECKSUM, F_STR, checksum),
    V(RETIRED, F_BOOL, retired),
    V(QUEUED, F_INT, queued),
    V(RUNNING, F_INT, running),
    V(KV_BLOCKS_USED, F_INT, kv_blocks_used),
    V(KV_BLOCKS_TOTAL, F_INT, kv_blocks_total),
    V(STEPS, F_U64, steps),
    V(GENERATED_TOKENS, F_U64, generated_tokens),
    V(FINISHED, F_U64, finished),
    V(FAILED, F_U64, failed),
};
#undef V

#define S(f, t, m) [SL_MGMT_S_##f] = {SL_MGMT_KEY_##f, t, offsetof(sl_mgmt_status, m)}
static const field status_fields[SL_MGMT_S_COUNT] = {
    S(READY, F_BOOL, ready),   S(DRAINING, F_BOOL, draining), S(SERVED, F_U64, served),
    S(ERRORS, F_U64, errors), S(SWAPS, F_U64, swaps),        S(SWAPS_FAILED, F_U64, swaps_failed),
};
#undef S

static void put_fields(json_object *o, const field *t, int n, const void *base)
{
    for (int i = 0; i < n; i++) {
        const void *p = (const char *)base + t[i].off;
        json_object *x = NULL;
        switch (t[i].type) {
        case F_STR: {
            const char *s = *(const char *const *)p;
            x = json_object_new_string(s ? s : "");
            break;
        }
        case F_BOOL: x = json_object_new_boolean(*(const bool *)p); break;
        case F_INT: x = json_object_new_int(*(const int *)p); break;
        case F_U64: x = json_object_new_int64((int64_t) * (const uint64_t *)p); break;
        }
        json_object_object_add(o, t[i].key, x);
    }
}

static unsigned get_fields(json_object *o, const field *t, int n, void *base)
{
    static const json_type json_of[] = {[F_STR] = json_type_string, [F_BOOL] = json_type_boolean,
                                        [F_INT] = json_type_int, [F_U64] = json_type_int};
    unsigned have = 0;
    for (int i = 0; i < n; i++) {
        void *p = (char *)base + t[i].off;
        json_object *x;
        if (!json_object_object_get_ex(o, t[i].key, &x) || !json_object_is_type(x, json_of[t[i].type]))
            continue; /* missing or mistyped: left zero, its bit clear */
        switch (t[i].type) {
        case F_STR: *(const char **)p = json_object_get_string(x); break;
        case F_BOOL: *(bool *)p = json_object_get_boolean(x); break;
        case F_INT: *(int *)p = json_object_get_int(x); break;
        case F_U64: *(uint64_t *)p = (uint64_t)json_object_get_int64(x); break;
        }
        have |= 1u << i;
    }
    return have;
}

static const char *field_text(const field *t, int f, unsigned have, const void *base, char *buf, size_t cap)
{
    if (!(have & (1u << f)))
        return "?";
    const void *p = (const char *)base + t[f].off;
    switch (t[f].type) {
    case F_STR: return *(const char *const *)p;
    case F_BOOL: return *(const bool *)p ? "true" : "false";
    case F_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case F_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    }
    return buf;
}

json_object *sl_mgmt_version_json(const sl_mgmt_version *v)
{
    json_object *o = json_object_new_object();
    put_fields(o, version_fields, SL_MGMT_V_COUNT, v);
    return o;
}

json_object *sl_mgmt_model_json(const sl_mgmt_version *v)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, SL_MGMT_KEY_MODEL, sl_mgmt_version_json(v));
    return o;
}

json_object *sl_mgmt_status_json(const sl_mgmt_status *s)
{
    json_object *o = json_object_new_object(), *ms = json_object_new_array();
    for (size_t i = 0; i < s->n_models; i++)
        json_object_array_add(ms, sl_mgmt_version_json(&s->models[i]));
    json_object_object_add(o, SL_MGMT_KEY_MODELS, ms);
    json_object_object_add(o, SL_MGMT_KEY_LIVE, json_object_new_boolean(1));
    put_fields(o, status_fields, SL_MGMT_S_COUNT, s);
    return o;
}

json_object *sl_mgmt_reply_end(json_object *body, const char *error)
{
    json_object *r = body ? body : json_object_new_object();
    json_object_object_add(r, SL_MGMT_KEY_OK, json_object_new_boolean(error == NULL));
    if (error)
        json_object_object_add(r, SL_MGMT_KEY_ERROR, json_object_new_string(error));
    return r;
}

json_object *sl_mgmt_reply_error(const char *msg) { return sl_mgmt_reply_end(NULL, msg); }

unsigned sl_mgmt_version_from_json(json_object *o, sl_mgmt_version *v)
{
    memset(v, 0, sizeof *v);
    return get_fields(o, version_fields, SL_MGMT_V_COUNT, v);
}

unsigned sl_mgmt_status_from_json(json_object *o, sl_mgmt_status *s, json_object **models)
{
    memset(s, 0, sizeof *s);
    json_object *ms;
    if (!json_object_object_get_ex(o, SL_MGMT_KEY_MODELS, &ms) || !json_object_is_type(ms, json_type_array))
        ms = NULL;
    s->n_models = ms ? json_object_array_length(ms) : 0;
    if (models)
        *models = ms;
    return get_fields(o, status_fields, SL_MGMT_S_COUNT, s);
}

bool sl_mgmt_reply_ok(json_object *r, const char **error)
{
    json_object *x;
    if (error)
        *error = json_object_object_get_ex(r, SL_MGMT_KEY_ERROR, &x) && json_object_is_type(x, json_type_string)
                     ? json_object_get_string(x)
                     : NULL;
    return json_object_object_get_ex(r, SL_MGMT_KEY_OK, &x) && json_object_is_type(x, json_type_boolean) &&
           json_object_get_boolean(x);
}

const char *sl_mgmt_version_text(const sl_mgmt_version *v, unsigned have, sl_mgmt_version_field f, char *buf,
                                 size_t cap)
{
    return (int)f >= 0 && f < SL_MGMT_V_COUNT ? field_text(version_fields, f, have, v, buf, cap) : "?";
}

const char *sl_mgmt_status_text(const sl_mgmt_status *s, unsigned have, sl_mgmt_status_field f, char *buf,
                                size_t cap)
{
    return (int)f >= 0 && f < SL_MGMT_S_COUNT ? field_text(status_fields, f, have, s, buf, cap) : "?";
}
