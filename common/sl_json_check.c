/* sl_json_check.c - strict JSON objects and strings (sl_json_check.h). */
#include <string.h>

#include "sl_json_check.h"

sl_status sl_json_parse_object(const char *text, size_t len, int depth, const char *what, json_object **out,
                               sl_err *err)
{
    *out = NULL;
    json_tokener *tok = json_tokener_new_ex(depth);
    if (!tok)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    const size_t end = json_tokener_get_parse_end(tok);
    int cut = 0;
    if (je == json_tokener_continue) { /* the text ended: say so (a NUL), for values that end only there */
        o = json_tokener_parse_ex(tok, "", 1);
        je = json_tokener_get_error(tok);
        cut = je != json_tokener_success;
    }
    json_tokener_free(tok);
    if (je != json_tokener_success) { /* strict: bytes after the object are an error too */
        json_object_put(o);
        if (cut)
            return sl_err_set(err, SL_EFORMAT, "not %s (it ends too soon)", what);
        return sl_err_set(err, SL_EFORMAT, "not %s (%s at byte %zu)", what, json_tokener_error_desc(je), end);
    }
    if (!o || !json_object_is_type(o, json_type_object)) { /* NULL: the JSON null */
        const char *type = json_type_to_name(json_object_get_type(o));
        json_object_put(o);
        return sl_err_set(err, SL_EFORMAT, "not %s (a %s)", what, type);
    }
    *out = o;
    return SL_OK;
}

sl_status sl_json_string(json_object *v, const char *what, size_t max, const char **out, sl_err *err)
{
    if (!json_object_is_type(v, json_type_string))
        return sl_err_set(err, SL_EINVAL, "%s must be a string", what);
    const char *s = json_object_get_string(v);
    const size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0 || n > max)
        return sl_err_set(err, SL_ERANGE, "%s must be 1..%zu bytes, not %zu", what, max, n);
    if (strlen(s) != n)
        return sl_err_set(err, SL_EINVAL, "%s holds a NUL character", what);
    *out = s;
    return SL_OK;
}
