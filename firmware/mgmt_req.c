/* mgmt_req.c - management request lines (sl_mgmt_req.h). */
#include <stdio.h>
#include <string.h>

#include "sl_json_check.h"
#include "sl_mgmt_req.h"

static const char *const cmd_names[] = {"status", "models", "stats", "load", "swap", "unload", "drain"};
#define CMD_LIST "status, models, stats, load, swap, unload, drain" /* cmd_names, for messages */
#define N_CMDS ((int)(sizeof cmd_names / sizeof cmd_names[0]))

const char *sl_mgmt_cmd_name(sl_mgmt_cmd cmd) { return (int)cmd >= 0 && (int)cmd < N_CMDS ? cmd_names[cmd] : "?"; }

/* A string member: absent leaves NULL; present, it is a string of 1..max
 * bytes with no NUL inside. */
static sl_status string_of(json_object *o, const char *key, size_t max, const char **out, sl_err *err)
{
    json_object *x;
    char what[16];
    *out = NULL;
    if (!json_object_object_get_ex(o, key, &x))
        return SL_OK;
    snprintf(what, sizeof what, "\"%s\"", key);
    return sl_json_string(x, what, max, out, err);
}

static sl_status check(json_object *o, sl_mgmt_req *req, sl_err *err)
{
    json_object_object_foreach(o, key, val) {
        (void)val;
        if (strcmp(key, "cmd") && strcmp(key, "name") && strcmp(key, "image") && strcmp(key, "force"))
            return sl_err_set(err, SL_EINVAL, "unknown key \"%.64s\" (cmd, name, image, force)", key);
    }
    json_object *x;
    if (!json_object_object_get_ex(o, "cmd", &x))
        return sl_err_set(err, SL_EINVAL, "no \"cmd\" (" CMD_LIST ")");
    if (!json_object_is_type(x, json_type_string))
        return sl_err_set(err, SL_EINVAL, "\"cmd\" must be a string");
    const char *cmd = json_object_get_string(x);
    int c = 0;
    while (c < N_CMDS && strcmp(cmd, cmd_names[c]))
        c++;
    if (c == N_CMDS || strlen(cmd) != (size_t)json_object_get_string_len(x))
        return sl_err_set(err, SL_EINVAL, "unknown command \"%.64s\" (" CMD_LIST ")", cmd);
    req->cmd = (sl_mgmt_cmd)c;
    sl_status st = string_of(o, "name", SL_MGMT_NAME_MAX, &req->name, err);
    if (!st)
        st = string_of(o, "image", SL_MGMT_IMAGE_MAX, &req->image, err);
    if (st)
        return st;
    const int has_force = json_object_object_get_ex(o, "force", &x);
    if (has_force && !json_object_is_type(x, json_type_boolean))
        return sl_err_set(err, SL_EINVAL, "\"force\" must be true or false");
    req->force = has_force && json_object_get_boolean(x);
    const int two = req->cmd == SL_MGMT_LOAD || req->cmd == SL_MGMT_SWAP, one = req->cmd == SL_MGMT_UNLOAD;
    if (two && (!req->name || !req->image))
        return sl_err_set(err, SL_EINVAL, "%s needs \"name\" and \"image\"", cmd_names[c]);
    if (one && !req->name)
        return sl_err_set(err, SL_EINVAL, "unload needs \"name\"");
    if ((!two && (req->image || has_force)) || (!two && !one && req->name))
        return sl_err_set(err, SL_EINVAL, "%s takes %s", cmd_names[c], one ? "only \"name\"" : "no arguments");
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
