#include "sl_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sl_status sl_err_set(sl_err *err, sl_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

sl_status sl_err_errno(sl_err *err, sl_status code, const char *fmt, ...)
{
    int saved = errno;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < sizeof err->msg)
            snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(saved));
        err->code = code;
    }
    return code;
}

sl_status sl_err_prefix(sl_err *err, sl_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    char head[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%.200s: %.300s", head, old);
    err->code = code;
    return code;
}

const char *sl_status_name(sl_status code)
{
    switch (code) {
    case SL_OK: return "ok";
    case SL_EINVAL: return "invalid-argument";
    case SL_EIO: return "io-error";
    case SL_ENOMEM: return "out-of-memory";
    case SL_EFORMAT: return "bad-format";
    case SL_ERANGE: return "out-of-range";
    case SL_EUNSUPPORTED: return "unsupported";
    case SL_ECHECKSUM: return "checksum-mismatch";
    case SL_ENOTFOUND: return "not-found";
    case SL_EBUSY: return "busy";
    case SL_ECONTEXT: return "context-full";
    }
    return "unknown-error";
}
