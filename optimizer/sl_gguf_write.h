/* sl_gguf_write.h - GGUF v3 image writer.
 *
 * Metadata and tensor records are collected first, then written in one
 * pass: header, metadata, tensor table, data aligned to 64 bytes.  Tensor
 * bytes come from memory or from a fill callback called row block by row
 * block, so an 8B-parameter image is written without ever holding it.  The
 * writer always adds sluice.content_checksum (sl_checksum.h) and replaces
 * the destination atomically (temporary file, fsync, rename, fsync of the
 * directory). */
#ifndef SL_GGUF_WRITE_H
#define SL_GGUF_WRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "sl_error.h"
#include "sl_gguf.h"

#define SL_WRITE_ALIGNMENT 64u

typedef struct sl_gguf_writer sl_gguf_writer;

/* Fills rows [row0, row0 + nrows) of tensor `name` (row = ne[0] elements,
 * already in the tensor's type) into dst; returns SL_OK or an error. */
typedef sl_status (*sl_fill_fn)(void *ctx, const char *name, uint64_t row0, uint64_t nrows, void *dst, sl_err *err);

sl_gguf_writer *sl_gw_new(void);
void sl_gw_free(sl_gguf_writer *w);

/* Setting a key that is already present replaces its value in place. */
sl_status sl_gw_set_u32(sl_gguf_writer *w, const char *key, uint32_t v);
sl_status sl_gw_set_i32(sl_gguf_writer *w, const char *key, int32_t v);
sl_status sl_gw_set_u64(sl_gguf_writer *w, const char *key, uint64_t v);
sl_status sl_gw_set_f32(sl_gguf_writer *w, const char *key, float v);
sl_status sl_gw_set_bool(sl_gguf_writer *w, const char *key, bool v);
sl_status sl_gw_set_str(sl_gguf_writer *w, const char *key, const char *v);
sl_status sl_gw_set_strn(sl_gguf_writer *w, const char *key, const char *v, uint64_t len);
/* Array of n numeric elements of GGUF type elem_type, little-endian bytes. */
sl_status sl_gw_set_arr(sl_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, const void *data);
sl_status sl_gw_set_str_arr(sl_gguf_writer *w, const char *key, uint64_t n, const sl_str *strs);
/* Copies a pair as it is from an image being read (raw bytes). */
sl_status sl_gw_copy_kv(sl_gguf_writer *w, const sl_gguf_kv *kv);
bool sl_gw_has(const sl_gguf_writer *w, const char *key);
sl_status sl_gw_remove(sl_gguf_writer *w, const char *key);

/* Adds a tensor whose bytes are in memory (borrowed until write returns). */
sl_status sl_gw_add_tensor(sl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, sl_err *err);
/* Adds a tensor whose rows are produced by fill during the write. */
sl_status sl_gw_add_tensor_fill(sl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const uint64_t *ne, sl_fill_fn fill, void *ctx, sl_err *err);
uint64_t sl_gw_tensor_count(const sl_gguf_writer *w);

/* Writes path atomically.  checksum_out (SL_CHECKSUM_STRLEN+1 bytes) may be
 * NULL; it receives the content checksum written into the image. */
sl_status sl_gw_write(sl_gguf_writer *w, const char *path, char *checksum_out, sl_err *err);

#endif
