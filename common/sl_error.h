/* sl_error.h - typed status codes plus an operator-readable message.
 *
 * Every library function that can fail returns an sl_status and, when given
 * a non-NULL sl_err, fills in a message that says what was expected and
 * where.  Libraries never exit or abort. */
#ifndef SL_ERROR_H
#define SL_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sl_status {
    SL_OK = 0,
    SL_EINVAL = -1,       /* bad argument from the caller */
    SL_EIO = -2,          /* a system call failed (errno text in message) */
    SL_ENOMEM = -3,       /* allocation failed */
    SL_EFORMAT = -4,      /* input file or message is malformed */
    SL_ERANGE = -5,       /* a value is outside its allowed range */
    SL_EUNSUPPORTED = -6, /* well-formed but not something sluice handles */
    SL_ECHECKSUM = -7,    /* content does not match its checksum */
    SL_ENOTFOUND = -8,    /* a named key, tensor or file is missing */
    SL_EBUSY = -9,        /* a bounded queue is full: try again later */
    SL_ECONTEXT = -10,    /* a sequence would not fit its context or the KV pool */
} sl_status;

typedef struct sl_err {
    sl_status code;
    char msg[512];
} sl_err;

/* Records code and a printf-style message in err (if non-NULL); returns code
 * so callers can write `return sl_err_set(err, SL_EFORMAT, "...")`. */
sl_status sl_err_set(sl_err *err, sl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like sl_err_set, appending ": strerror(errno)". */
sl_status sl_err_errno(sl_err *err, sl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("reading x.gguf: ...");
 * returns code, so the status survives when err is NULL. */
sl_status sl_err_prefix(sl_err *err, sl_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *sl_status_name(sl_status code);

#ifdef __cplusplus
}
#endif

#endif
