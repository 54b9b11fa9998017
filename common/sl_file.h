/* sl_file.h - read-only file mappings and atomic file replacement. */
#ifndef SL_FILE_H
#define SL_FILE_H

#include <stdint.h>
#include <stddef.h>

#include "sl_error.h"

/* A whole file mapped read-only.  An empty file maps to data == NULL,
 * size == 0 (mmap refuses zero lengths). */
typedef struct sl_map {
    const uint8_t *data;
    size_t size;
} sl_map;

sl_status sl_map_file(const char *path, sl_map *out, sl_err *err);
void sl_map_release(sl_map *m);

/* Reads a whole (small) file into a NUL-terminated heap buffer; refuses
 * files larger than max_bytes. */
sl_status sl_read_file(const char *path, size_t max_bytes, char **out, size_t *len, sl_err *err);

/* Atomic replacement: data goes to "<path>.tmp.<pid>" in the same
 * directory; commit fsyncs it, renames it over path and fsyncs the
 * directory, so readers see the old file or the new one, never a part. */
typedef struct sl_atomic_file {
    int fd;
    char *path;
    char *tmp_path;
} sl_atomic_file;

sl_status sl_atomic_open(sl_atomic_file *f, const char *path, sl_err *err);
/* Full write at the current position (retries short writes and EINTR). */
sl_status sl_write_all(int fd, const void *buf, size_t len, sl_err *err);
/* Full write at an absolute offset; does not move the file position. */
sl_status sl_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, sl_err *err);
sl_status sl_atomic_commit(sl_atomic_file *f, sl_err *err);
/* Removes the temporary file; safe after commit or on a zeroed struct. */
void sl_atomic_abort(sl_atomic_file *f);

#endif
