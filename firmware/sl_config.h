/* sl_config.h - sluiced's configuration: the JSON file (read at start and
 * again on SIGHUP) decoded and checked apart from the daemon, so that the
 * unit tests and the fuzzer call it directly.  The keys are listed in
 * docs/operations.md. */
#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <json-c/json.h>
#include <stddef.h>

#include "sl_error.h"
#include "sl_mac.h"
#include "sl_mgmt_proto.h"
#include "sl_loader.h"
#include "sl_registry.h"
#include "sl_wire.h"

#define SL_CONFIG_MAX (1 << 20) /* bytes of a configuration file */
#define SL_CONFIG_KEYS 16       /* per-client request keys */
#define SL_CONFIG_INT_MAX (1 << 20)
#define SL_CONFIG_ADDR_MAX 255  /* bytes of "listen" and "metrics" */
#define SL_CONFIG_SOCK_MAX 107  /* bytes of "mgmt": a unix socket path, NUL included, fits sun_path */

typedef struct sl_config {
    const char *listen, *mgmt, *metrics; /* NULL: none (listen: the default) */
    int threads, max_seqs, ctx, max_queue, isa, max_inflight, max_prompt, max_tokens, log_level, require_mac, mlock;
    double rate;
    sl_mac_key keys[SL_CONFIG_KEYS];
    int n_keys;
    int n_models;
    char model_name[SL_REG_MODELS][SL_WIRE_MODEL_MAX + 1];
    char model_image[SL_REG_MODELS][SL_MGMT_IMAGE_MAX + 1]; /* the one limit of an image path */
} sl_config;

/* The log levels, quietest first: "error", "warn", "info", "debug". */
extern const char *const sl_log_level_names[4];
/* A level's number, or -1 for none of the names (s may be NULL). */
int sl_log_level_parse(const char *s);

/* The text (len bytes) as a configuration over *c: one JSON object, known
 * keys only, each optional and of its type and range; "models" and "keys"
 * replace the lists in *c.  SL_OK: *c updated and *keep the parsed object,
 * which c's strings point into (the caller puts it).  Otherwise
 * SL_EFORMAT (not one JSON object), SL_EINVAL (a key unknown or of the
 * wrong type or value) or SL_ERANGE (a number or length over its limit),
 * with a message naming the key; *c untouched and *keep NULL. */
sl_status sl_config_parse(const char *text, size_t len, sl_config *c, json_object **keep, sl_err *err);

/* The file at path (at most SL_CONFIG_MAX bytes) through sl_config_parse;
 * SL_EIO where it cannot be read.  Messages start with the path. */
sl_status sl_config_read(const char *path, sl_config *c, json_object **keep, sl_err *err);

/* Whether a and b hold the same values (strings by content, padding
 * aside). */
int sl_config_equal(const sl_config *a, const sl_config *b);

/* What the daemon needs of the values together, whichever set them (the
 * file, the flags, or both): SL_EINVAL naming the first one out of range. */
sl_status sl_config_check(const sl_config *c, sl_err *err);

/* A SIGHUP's model changes: what next lists against what is served
 * (served, n): new names load, changed images swap (trusted as on the
 * command line), names no longer listed unload (unless next lists none).
 * Writes the jobs to jobs (room for 2 * SL_REG_MODELS) and returns how
 * many. */
int sl_config_reload_jobs(const sl_config *next, const sl_version_info *served, int n, sl_load_job *jobs);

/* What changed from now to next that a reload does not apply now, as up
 * to two messages for the log; returns how many. */
int sl_config_restart_needed(const sl_config *now, const sl_config *next, const char *why[2]);

#endif
