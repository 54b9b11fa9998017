/* sl_mgmt_req.h - one management request line, decoded and checked apart
 * from the socket (the unit tests and the fuzzer call it directly).  The
 * requests are listed in docs/operations.md. */
#ifndef SL_MGMT_REQ_H
#define SL_MGMT_REQ_H

#include <json-c/json.h>
#include <stddef.h>

#include "sl_error.h"

typedef enum sl_mgmt_cmd {
    SL_MGMT_STATUS,
    SL_MGMT_MODELS,
    SL_MGMT_STATS,
    SL_MGMT_LOAD,
    SL_MGMT_SWAP,
    SL_MGMT_UNLOAD,
    SL_MGMT_DRAIN,
} sl_mgmt_cmd;

#define SL_MGMT_LINE_MAX 65536 /* bytes of a request line, newline included */
#define SL_MGMT_NAME_MAX 64    /* bytes of a model name (the registry checks its characters) */
#define SL_MGMT_IMAGE_MAX 1023 /* bytes of an image path */

typedef struct sl_mgmt_req {
    sl_mgmt_cmd cmd;
    const char *name;  /* load, swap and unload: 1..SL_MGMT_NAME_MAX bytes; else NULL */
    const char *image; /* load and swap: 1..SL_MGMT_IMAGE_MAX bytes; else NULL */
    int force;         /* load and swap: publish without a passing quality verdict */
} sl_mgmt_req;

/* A line of len bytes (its newline left off) as a request: one JSON
 * object, known keys only, each of its type, the ones its command needs
 * and no others.  SL_OK: *obj is the parsed object, which *req's strings
 * point into (the caller puts it).  Otherwise SL_EFORMAT (not one JSON
 * object), SL_EINVAL (a key wrong, missing or not allowed) or SL_ERANGE
 * (a length over its limit), with a message naming what is wrong, and
 * *obj NULL. */
sl_status sl_mgmt_parse(const char *line, size_t len, json_object **obj, sl_mgmt_req *req, sl_err *err);

const char *sl_mgmt_cmd_name(sl_mgmt_cmd cmd);

#endif
