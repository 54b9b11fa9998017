/* sl_gguf.h - GGUF v3 model image reader.
 *
 * The file is mapped, never copied: tensors and metadata values point into
 * the mapping.  Every count, length, offset, type and dimension is checked
 * before use (docs/image-format.md lists the checks), so a hostile file gives
 * an SL_EFORMAT / SL_ERANGE / SL_EUNSUPPORTED error with a message, never a
 * read outside the mapping. */
#ifndef SL_GGUF_H
#define SL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sl_checksum.h"
#include "sl_error.h"
#include "sl_file.h"

#define SL_GGUF_MAGIC 0x46554747u /* "GGUF" read as little-endian u32 */
#define SL_GGUF_DEFAULT_ALIGNMENT 32u
#define SL_GGUF_MAX_DIMS 4
#define SL_GGUF_MAX_KV 65536u          /* more keys than any real model has */
#define SL_GGUF_MAX_TENSORS (1u << 20) /* ditto for tensors */
#define SL_GGUF_MAX_KEY_LEN 65535u     /* GGUF's own limit on key length */

/* Metadata value types (GGUF's numbering). */
typedef enum sl_gguf_vtype {
    SL_GGUF_U8 = 0, SL_GGUF_I8 = 1, SL_GGUF_U16 = 2, SL_GGUF_I16 = 3,
    SL_GGUF_U32 = 4, SL_GGUF_I32 = 5, SL_GGUF_F32 = 6, SL_GGUF_BOOL = 7,
    SL_GGUF_STRING = 8, SL_GGUF_ARRAY = 9, SL_GGUF_U64 = 10, SL_GGUF_I64 = 11,
    SL_GGUF_F64 = 12,
} sl_gguf_vtype;

/* A string inside the mapping: not NUL-terminated. */
typedef struct sl_str {
    const char *ptr;
    uint64_t len;
} sl_str;

typedef struct sl_gguf_kv {
    const char *key;       /* NUL-terminated copy */
    uint32_t type;         /* sl_gguf_vtype */
    uint32_t arr_type;     /* element type when type == ARRAY */
    uint64_t arr_n;        /* element count when type == ARRAY */
    const uint8_t *val;    /* value bytes (for arrays: the elements) */
    uint64_t val_size;
    const uint8_t *raw;    /* from the type field to the value's end, for copying */
    uint64_t raw_size;
} sl_gguf_kv;

typedef struct sl_gguf_tensor {
    const char *name;      /* NUL-terminated copy */
    uint32_t type;         /* tensor type id (sl_types.h) */
    uint32_t n_dims;
    uint64_t ne[SL_GGUF_MAX_DIMS]; /* ne[0] is the row length; unused dims are 1 */
    uint64_t n_elems;
    uint64_t offset;       /* relative to the data section */
    uint64_t nbytes;
    const uint8_t *data;   /* inside the mapping, aligned as the file says */
} sl_gguf_tensor;

typedef struct sl_gguf {
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;  /* start of the data section (aligned) */
    uint64_t n_kv;
    sl_gguf_kv *kv;        /* in file order */
    uint64_t n_tensors;
    sl_gguf_tensor *tensors; /* in file order */
    /* private */
    sl_map map;
    const sl_gguf_kv **kv_sorted;
    const sl_gguf_tensor **t_sorted;
    char checksum[SL_CHECKSUM_STRLEN + 1]; /* the content checksum once hashed ("" before) */
} sl_gguf;

enum { SL_GGUF_VERIFY_CHECKSUM = 1u << 0 };

/* Maps and validates path.  With SL_GGUF_VERIFY_CHECKSUM, an image carrying
 * sluice.content_checksum is hashed and a mismatch is SL_ECHECKSUM. */
sl_status sl_gguf_open(const char *path, unsigned flags, sl_gguf **out, sl_err *err);
/* Validates an in-memory image; buf must outlive the result.  Pure: the same
 * function serves files, tests and the fuzzer. */
sl_status sl_gguf_parse(const uint8_t *buf, size_t len, unsigned flags, sl_gguf **out, sl_err *err);
void sl_gguf_close(sl_gguf *g);

const sl_gguf_kv *sl_gguf_find(const sl_gguf *g, const char *key);
const sl_gguf_tensor *sl_gguf_find_tensor(const sl_gguf *g, const char *name);

/* Typed getters: SL_ENOTFOUND if absent, SL_EFORMAT if the type does not
 * fit (integers of any width are accepted when the value is in range). */
sl_status sl_gguf_get_u64(const sl_gguf *g, const char *key, uint64_t *out, sl_err *err);
sl_status sl_gguf_get_u32(const sl_gguf *g, const char *key, uint32_t *out, sl_err *err);
sl_status sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out, sl_err *err);
sl_status sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out, sl_err *err);
sl_status sl_gguf_get_str(const sl_gguf *g, const char *key, sl_str *out, sl_err *err);
/* Integer or float scalar of any width as a double / int64 (for display). */
bool sl_gguf_kv_as_f64(const sl_gguf_kv *kv, double *out);
bool sl_gguf_kv_as_i64(const sl_gguf_kv *kv, int64_t *out);
/* For a string value. */
sl_str sl_gguf_kv_str(const sl_gguf_kv *kv);

/* Array elements: strings into out[0..arr_n); numbers converted element by
 * element (SL_EFORMAT if the element type is not numeric). */
sl_status sl_gguf_arr_strings(const sl_gguf_kv *kv, sl_str *out, sl_err *err);
sl_status sl_gguf_arr_f32(const sl_gguf_kv *kv, float *out, sl_err *err);
sl_status sl_gguf_arr_i64(const sl_gguf_kv *kv, int64_t *out, sl_err *err);

const char *sl_gguf_vtype_name(uint32_t t);
/* Bytes of one scalar value of type t; 0 for STRING, ARRAY and unknown types. */
size_t sl_gguf_vtype_size(uint32_t t);

/* The content checksum (sl_checksum.h) of all tensors.  Hashed once: the
 * verification at open keeps its result (the mapping is read-only, so
 * the tensors cannot change), and later calls return it. */
sl_status sl_gguf_compute_checksum(const sl_gguf *g, char *out, sl_err *err);

#endif
