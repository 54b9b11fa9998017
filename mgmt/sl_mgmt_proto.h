/* sl_mgmt_proto.h - the management protocol of sluiced's unix socket
 * (docs/operations.md), in one place for both of its ends: sluiced decodes
 * requests and encodes replies with it, sluicectl encodes requests and
 * decodes replies with it, so the two cannot disagree on a command, an
 * argument, a limit or a key.
 *
 * A request is one JSON object on one line: {"cmd": C} and exactly the
 * arguments C takes (sl_mgmt_cmds).  A reply is one JSON object on one
 * line: what the command answers, then "ok" and, when refused, "error". */
#ifndef SL_MGMT_PROTO_H
#define SL_MGMT_PROTO_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_error.h"

/* ---- keys ---- */

/* requests */
#define SL_MGMT_KEY_CMD "cmd"
#define SL_MGMT_KEY_NAME "name"   /* also a model's name in replies */
#define SL_MGMT_KEY_IMAGE "image" /* also a model's image path in replies */
#define SL_MGMT_KEY_FORCE "force"
/* every reply */
#define SL_MGMT_KEY_OK "ok"
#define SL_MGMT_KEY_ERROR "error"
/* load and swap: the version now serving */
#define SL_MGMT_KEY_MODEL "model"
/* status, models, stats */
#define SL_MGMT_KEY_MODELS "models"
#define SL_MGMT_KEY_LIVE "live"
#define SL_MGMT_KEY_READY "ready"
#define SL_MGMT_KEY_DRAINING "draining"
#define SL_MGMT_KEY_SERVED "served"
#define SL_MGMT_KEY_ERRORS "errors"
#define SL_MGMT_KEY_SWAPS "swaps"
#define SL_MGMT_KEY_SWAPS_FAILED "swaps_failed"
/* a model version (with name and image) */
#define SL_MGMT_KEY_VERSION "version"
#define SL_MGMT_KEY_CHECKSUM "checksum"
#define SL_MGMT_KEY_RETIRED "retired"
#define SL_MGMT_KEY_QUEUED "queued"
#define SL_MGMT_KEY_RUNNING "running"
#define SL_MGMT_KEY_KV_BLOCKS_USED "kv_blocks_used"
#define SL_MGMT_KEY_KV_BLOCKS_TOTAL "kv_blocks_total"
#define SL_MGMT_KEY_STEPS "steps"
#define SL_MGMT_KEY_GENERATED_TOKENS "generated_tokens"
#define SL_MGMT_KEY_FINISHED "finished"
#define SL_MGMT_KEY_FAILED "failed"

/* ---- commands ---- */

typedef enum sl_mgmt_cmd {
    SL_MGMT_STATUS,
    SL_MGMT_MODELS,
    SL_MGMT_STATS,
    SL_MGMT_LOAD,
    SL_MGMT_SWAP,
    SL_MGMT_UNLOAD,
    SL_MGMT_DRAIN,
    SL_MGMT_CMD_COUNT
} sl_mgmt_cmd;

#define SL_MGMT_LINE_MAX 65536 /* bytes of a request line, newline included */
#define SL_MGMT_NAME_MAX 64    /* bytes of a model name (the registry checks its characters) */
#define SL_MGMT_IMAGE_MAX 1023 /* bytes of an image path */

/* The arguments a command takes: "name" and "image" are then required
 * (sluicectl's NAME and IMAGE, in this order), "force" optional (--force). */
enum { SL_MGMT_ARG_NAME = 1u << 0, SL_MGMT_ARG_IMAGE = 1u << 1, SL_MGMT_ARG_FORCE = 1u << 2 };

typedef struct sl_mgmt_cmd_info {
    const char *name; /* the "cmd" value, and sluicectl's word */
    unsigned args;    /* SL_MGMT_ARG_* */
    const char *help; /* what it does, in one line */
} sl_mgmt_cmd_info;

/* The commands, indexed by sl_mgmt_cmd: the one list of them. */
extern const sl_mgmt_cmd_info sl_mgmt_cmds[SL_MGMT_CMD_COUNT];

/* cmd's name; "?" outside the enum. */
const char *sl_mgmt_cmd_name(sl_mgmt_cmd cmd);

/* ---- requests ---- */

typedef struct sl_mgmt_req {
    sl_mgmt_cmd cmd;
    const char *name;  /* load, swap and unload: 1..SL_MGMT_NAME_MAX bytes; else NULL */
    const char *image; /* load and swap: 1..SL_MGMT_IMAGE_MAX bytes; else NULL */
    bool force;        /* load and swap: publish without a passing quality verdict */
} sl_mgmt_req;

/* A line of len bytes (its newline left off) as a request: one JSON
 * object, known keys only, each of its type, the ones its command needs
 * and no others.  SL_OK: *obj is the parsed object, which *req's strings
 * point into (the caller puts it).  Otherwise SL_EFORMAT (not one JSON
 * object), SL_EINVAL (a key wrong, missing or not allowed) or SL_ERANGE
 * (a length over its limit), with a message naming what is wrong, and
 * *obj NULL. */
sl_status sl_mgmt_parse(const char *line, size_t len, json_object **obj, sl_mgmt_req *req, sl_err *err);

/* *req as the line to send, newline included, NUL-terminated in out (cap
 * bytes; SL_MGMT_LINE_MAX + 1 always do), its length without the NUL in
 * *len.  "force" is written (true or false) for the commands that take it.
 * The line is checked by sl_mgmt_parse before it is handed back: what it
 * refuses is refused here with the same status and message, *len 0. */
sl_status sl_mgmt_encode_request(const sl_mgmt_req *req, char *out, size_t cap, size_t *len, sl_err *err);

/* sluicectl's words (COMMAND and its arguments, options taken out) as a
 * request whose strings point into words; force is --force, kept only for
 * the commands that take it.  SL_EINVAL (a usage error): no words, the
 * wrong number of arguments for the command, or words after one that
 * names no command.  SL_ENOTFOUND: a lone word that names no command, with
 * the message sl_mgmt_parse gives for it (the daemon's refusal). */
sl_status sl_mgmt_request_from_argv(int n, char *const *words, bool force, sl_mgmt_req *req, sl_err *err);

/* The commands' synopsis, as usage text: a line of those without
 * arguments, then a line of the others with theirs, each indented two
 * spaces and ended by a newline.  snprintf's contract: returns the full
 * length, writes at most cap bytes, NUL included. */
int sl_mgmt_usage_commands(char *out, size_t cap);

/* ---- replies ----
 *
 * The daemon builds each reply with these, in this shape (key order as
 * listed: a reply is byte-for-byte what sluiced wrote before them):
 *   status, models, stats: sl_mgmt_reply_end(sl_mgmt_status_json(&s), NULL)
 *   load, swap: sl_mgmt_reply_end(ok ? sl_mgmt_model_json(&v) : NULL, ok ? NULL : msg)
 *   unload, drain: sl_mgmt_reply_end(NULL, ok ? NULL : msg)
 *   a line that fails sl_mgmt_parse: sl_mgmt_reply_error(err.msg) */

/* One model version (strings borrowed, not copied). */
typedef struct sl_mgmt_version {
    const char *name;                    /* "name" */
    uint64_t version;                    /* "version": 1, 2, ... per name */
    const char *image;                   /* "image" */
    const char *checksum;                /* "checksum": the content checksum, as computed */
    bool retired;                        /* "retired": draining after a swap */
    int queued, running;                 /* "queued", "running" */
    int kv_blocks_used, kv_blocks_total; /* "kv_blocks_used", "kv_blocks_total" */
    uint64_t steps;                      /* "steps" */
    uint64_t generated_tokens;           /* "generated_tokens" */
    uint64_t finished;                   /* "finished" */
    uint64_t failed;                     /* "failed": cancelled, past the deadline, engine errors */
} sl_mgmt_version;

/* sl_mgmt_version's members, in their JSON order: bit (1u << f) of a
 * decoder's answer says member f was there. */
typedef enum sl_mgmt_version_field {
    SL_MGMT_V_NAME,
    SL_MGMT_V_VERSION,
    SL_MGMT_V_IMAGE,
    SL_MGMT_V_CHECKSUM,
    SL_MGMT_V_RETIRED,
    SL_MGMT_V_QUEUED,
    SL_MGMT_V_RUNNING,
    SL_MGMT_V_KV_BLOCKS_USED,
    SL_MGMT_V_KV_BLOCKS_TOTAL,
    SL_MGMT_V_STEPS,
    SL_MGMT_V_GENERATED_TOKENS,
    SL_MGMT_V_FINISHED,
    SL_MGMT_V_FAILED,
    SL_MGMT_V_COUNT
} sl_mgmt_version_field;

/* The daemon's state for status, models and stats. */
typedef struct sl_mgmt_status {
    bool ready;                  /* "ready": a model to serve and not draining */
    bool draining;               /* "draining" */
    uint64_t served;             /* "served": requests answered with DONE */
    uint64_t errors;             /* "errors": ERROR replies */
    uint64_t swaps;              /* "swaps": published */
    uint64_t swaps_failed;       /* "swaps_failed": refused */
    const sl_mgmt_version *models; /* "models": n_models versions (status, stats: every one mapped; models: current) */
    size_t n_models;
} sl_mgmt_status;

/* sl_mgmt_status's scalar members, in their JSON order (as above). */
typedef enum sl_mgmt_status_field {
    SL_MGMT_S_READY,
    SL_MGMT_S_DRAINING,
    SL_MGMT_S_SERVED,
    SL_MGMT_S_ERRORS,
    SL_MGMT_S_SWAPS,
    SL_MGMT_S_SWAPS_FAILED,
    SL_MGMT_S_COUNT
} sl_mgmt_status_field;

/* {"name": s, "version": n, "image": s, "checksum": s, "retired": b,
 *  "queued": n, "running": n, "kv_blocks_used": n, "kv_blocks_total": n,
 *  "steps": n, "generated_tokens": n, "finished": n, "failed": n}
 * (a NULL string is written as ""). */
json_object *sl_mgmt_version_json(const sl_mgmt_version *v);
/* {"model": sl_mgmt_version_json(v)}: the body of load's and swap's reply. */
json_object *sl_mgmt_model_json(const sl_mgmt_version *v);
/* {"models": [sl_mgmt_version_json of each], "live": true, "ready": b,
 *  "draining": b, "served": n, "errors": n, "swaps": n, "swaps_failed": n}:
 * the body of status's, models' and stats' reply ("live" is always true:
 * the daemon answered). */
json_object *sl_mgmt_status_json(const sl_mgmt_status *s);
/* Ends a reply: appends "ok" (error == NULL) and, with an error, "error":
 * error to body (NULL: a new, empty object) and returns it. */
json_object *sl_mgmt_reply_end(json_object *body, const char *error);
/* {"ok": false, "error": msg}. */
json_object *sl_mgmt_reply_error(const char *msg);

/* Decoders, for the replies' readers: the members found in o with their
 * type are set (strings point into o), the others zeroed; the answer is a
 * bit (1u << field) for each member set. */
unsigned sl_mgmt_version_from_json(json_object *o, sl_mgmt_version *v);
/* The scalars of a status reply; *models (may be NULL) gets its "models"
 * array, borrowed from o, or NULL when there is none, and s->n_models its
 * length (s->models stays NULL: decode each with sl_mgmt_version_from_json). */
unsigned sl_mgmt_status_from_json(json_object *o, sl_mgmt_status *s, json_object **models);
/* Whether reply r says "ok": true; *error (may be NULL) its "error"
 * string, or NULL. */
bool sl_mgmt_reply_ok(json_object *r, const char **error);
/* Member f of v as text ("?" where bit f of have is clear): a string
 * member itself, a number in decimal in buf (24 bytes do), a boolean as
 * true or false. */
const char *sl_mgmt_version_text(const sl_mgmt_version *v, unsigned have, sl_mgmt_version_field f, char *buf,
                                 size_t cap);
/* Likewise for member f of s. */
const char *sl_mgmt_status_text(const sl_mgmt_status *s, unsigned have, sl_mgmt_status_field f, char *buf,
                                size_t cap);

#endif
