/* sl_json_check.h - strict JSON for the decoders of what sluiced is sent
 * or given to read (management lines, the configuration file): one object
 * and nothing after it, a bounded nesting, and strings of bounded length
 * with no NUL inside. */
#ifndef SL_JSON_CHECK_H
#define SL_JSON_CHECK_H

#include <json-c/json.h>
#include <stddef.h>

#include "sl_error.h"

/* text (len bytes, no NUL among them) as one JSON object nested at most
 * depth deep.  SL_OK: *out the object (the caller puts it).  Otherwise
 * SL_EFORMAT, "not WHAT (...)" saying where it went wrong (what: "a JSON
 * object", say), or SL_ENOMEM; *out NULL. */
sl_status sl_json_parse_object(const char *text, size_t len, int depth, const char *what, json_object **out,
                               sl_err *err);

/* v as a string of 1..max bytes with no NUL inside (which a C string would
 * silently cut): SL_EINVAL or SL_ERANGE naming it as what otherwise. */
sl_status sl_json_string(json_object *v, const char *what, size_t max, const char **out, sl_err *err);

#endif
