#include "sl_gguf_write.h"

#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_file.h"
#include "sl_grow.h"
#include "sl_le.h"
#include "sl_types.h"

#define CHECKSUM_KEY "sluice.content_checksum"

typedef struct wkv {
    char *key;
    uint8_t *val; /* type field + value, as in the file */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[SL_GGUF_MAX_DIMS];
    uint64_t nbytes, row_bytes, nrows, offset;
    const void *data;
    sl_fill_fn fill;
    void *ctx;
} wtensor;

struct sl_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    bool oom; /* a set_* call failed to allocate: write refuses */
};

/* A growable byte buffer for serialising values. */
typedef struct buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (sl_grow((void **)&b->p, &b->cap, b->n + n, 64)) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

/* The low n (1, 2, 4 or 8) bytes of v: the first n of its little-endian form. */
static void put_le(buf *b, uint64_t v, int n)
{
    uint8_t tmp[8];
    sl_le_store_u64(tmp, v);
    put(b, tmp, (size_t)n);
}

static void put_str(buf *b, const char *s, uint64_t len)
{
    put_le(b, len, 8);
    put(b, s, (size_t)len);
}

sl_gguf_writer *sl_gw_new(void)
{
    return calloc(1, sizeof(sl_gguf_writer));
}

void sl_gw_free(sl_gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++)
        free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

static wkv *find_kv(const sl_gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0)
            return &w->kv[i];
    return NULL;
}

bool sl_gw_has(const sl_gguf_writer *w, const char *key)
{
    return find_kv(w, key) != NULL;
}

sl_status sl_gw_remove(sl_gguf_writer *w, const char *key)
{
    wkv *kv = find_kv(w, key);
    if (!kv)
        return SL_ENOTFOUND;
    free(kv->key);
    free(kv->val);
    size_t i = (size_t)(kv - w->kv);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
    return SL_OK;
}

/* Takes ownership of b's bytes as the value of key. */
static sl_status set_raw(sl_gguf_writer *w, const char *key, buf *b)
{
    if (b->oom || !key[0]) {
        free(b->p);
        w->oom = w->oom || b->oom;
        return b->oom ? SL_ENOMEM : SL_EINVAL;
    }
    wkv *kv = find_kv(w, key);
    if (kv) {
        free(kv->val);
    } else {
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
            wkv *p = realloc(w->kv, cap * sizeof *p);
            if (!p) {
                free(b->p);
                w->oom = true;
                return SL_ENOMEM;
            }
            w->kv = p;
            w->cap_kv = cap;
        }
        kv = &w->kv[w->n_kv];
        kv->key = strdup(key);
        if (!kv->key) {
            free(b->p);
            w->oom = true;
            return SL_ENOMEM;
        }
        w->n_kv++;
    }
    kv->val = b->p;
    kv->val_len = b->n;
    return SL_OK;
}

static sl_status set_scalar(sl_gguf_writer *w, const char *key, uint32_t type, uint64_t bits, int n)
{
    buf b = {0};
    put_le(&b, type, 4);
    put_le(&b, bits, n);
    return set_raw(w, key, &b);
}

sl_status sl_gw_set_u32(sl_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, SL_GGUF_U32, v, 4); }
sl_status sl_gw_set_i32(sl_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, SL_GGUF_I32, (uint32_t)v, 4); }
sl_status sl_gw_set_u64(sl_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, SL_GGUF_U64, v, 8); }
sl_status sl_gw_set_bool(sl_gguf_writer *w, const char *key, bool v) { return set_scalar(w, key, SL_GGUF_BOOL, v ? 1 : 0, 1); }

sl_status sl_gw_set_f32(sl_gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, SL_GGUF_F32, bits, 4);
}

sl_status sl_gw_set_strn(sl_gguf_writer *w, const char *key, const char *v, uint64_t len)
{
    buf b = {0};
    put_le(&b, SL_GGUF_STRING, 4);
    put_str(&b, v, len);
    return set_raw(w, key, &b);
}

sl_status sl_gw_set_str(sl_gguf_writer *w, const char *key, const char *v)
{
    return sl_gw_set_strn(w, key, v, strlen(v));
}

sl_status sl_gw_set_arr(sl_gguf_writer *w, const char *key, uint32_t elem_type, uint64_t n, const void *data)
{
    size_t es = sl_gguf_vtype_size(elem_type);
    if (es == 0 || n > SIZE_MAX / es)
        return SL_EINVAL;
    buf b = {0};
    put_le(&b, SL_GGUF_ARRAY, 4);
    put_le(&b, elem_type, 4);
    put_le(&b, n, 8);
    put(&b, data, (size_t)n * es); /* sluice runs on little-endian x86-64 only */
    return set_raw(w, key, &b);
}

sl_status sl_gw_set_str_arr(sl_gguf_writer *w, const char *key, uint64_t n, const sl_str *strs)
{
    buf b = {0};
    put_le(&b, SL_GGUF_ARRAY, 4);
    put_le(&b, SL_GGUF_STRING, 4);
    put_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++)
        put_str(&b, strs[i].ptr, strs[i].len);
    return set_raw(w, key, &b);
}

sl_status sl_gw_copy_kv(sl_gguf_writer *w, const sl_gguf_kv *kv)
{
    buf b = {0};
    put(&b, kv->raw, (size_t)kv->raw_size);
    return set_raw(w, kv->key, &b);
}

static sl_status add_tensor(sl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                            const void *data, sl_fill_fn fill, void *ctx, sl_err *err)
{
    if (n_dims < 1 || n_dims > SL_GGUF_MAX_DIMS)
        return sl_err_set(err, SL_EINVAL, "tensor '%s': %u dimensions", name, n_dims);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return sl_err_set(err, SL_EINVAL, "tensor '%s' added twice", name);
    wtensor t = {.type = type, .n_dims = n_dims, .data = data, .fill = fill, .ctx = ctx};
    uint64_t n = 1;
    for (int d = 0; d < SL_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < (int)n_dims ? ne[d] : 1;
        if (t.ne[d] == 0 || t.ne[d] > (uint64_t)INT64_MAX / n)
            return sl_err_set(err, SL_ERANGE, "tensor '%s': bad dimension %d", name, d);
        n *= t.ne[d];
    }
    sl_status st = sl_type_row_bytes(type, t.ne[0], &t.row_bytes, err);
    if (st)
        return sl_err_prefix(err, st, "tensor '%s'", name);
    t.nrows = n / t.ne[0];
    if (t.nrows > (uint64_t)INT64_MAX / t.row_bytes)
        return sl_err_set(err, SL_ERANGE, "tensor '%s' is too large", name);
    t.nbytes = t.nrows * t.row_bytes;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p)
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        w->t = p;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    w->t[w->n_t++] = t;
    return SL_OK;
}

sl_status sl_gw_add_tensor(sl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const uint64_t *ne,
                           const void *data, sl_err *err)
{
    return add_tensor(w, name, type, n_dims, ne, data, NULL, NULL, err);
}

sl_status sl_gw_add_tensor_fill(sl_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                const uint64_t *ne, sl_fill_fn fill, void *ctx, sl_err *err)
{
    return add_tensor(w, name, type, n_dims, ne, NULL, fill, ctx, err);
}

uint64_t sl_gw_tensor_count(const sl_gguf_writer *w)
{
    return w->n_t;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) & ~(a - 1);
}

/* Header, metadata and tensor table; records where the checksum's hex
 * digits go so they can be patched in after the data is hashed. */
static sl_status build_header(sl_gguf_writer *w, buf *h, uint64_t *ck_off, sl_err *err)
{
    bool quantized = false;
    for (size_t i = 0; i < w->n_t; i++) {
        const sl_type_traits *tt = sl_type_get(w->t[i].type);
        quantized = quantized || (tt && tt->quantized);
    }
    if (quantized && !sl_gw_has(w, "general.quantization_version"))
        sl_gw_set_u32(w, "general.quantization_version", 2);
    sl_gw_set_u32(w, "general.alignment", SL_WRITE_ALIGNMENT);
    sl_gw_remove(w, CHECKSUM_KEY);
    if (w->oom)
        return sl_err_set(err, SL_ENOMEM, "out of memory building metadata");

    put_le(h, SL_GGUF_MAGIC, 4);
    put_le(h, 3, 4);
    put_le(h, w->n_t, 8);
    put_le(h, w->n_kv + 1, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(h, w->kv[i].key, strlen(w->kv[i].key));
        put(h, w->kv[i].val, w->kv[i].val_len);
    }
    /* The checksum goes last, as a fixed-width string patched later. */
    put_str(h, CHECKSUM_KEY, strlen(CHECKSUM_KEY));
    put_le(h, SL_GGUF_STRING, 4);
    put_le(h, SL_CHECKSUM_STRLEN, 8);
    *ck_off = h->n;
    char zeros[SL_CHECKSUM_STRLEN];
    memset(zeros, '0', sizeof zeros);
    put(h, zeros, sizeof zeros);

    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        put_str(h, t->name, strlen(t->name));
        put_le(h, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_le(h, t->ne[d], 8);
        put_le(h, t->type, 4);
        t->offset = off;
        put_le(h, off, 8);
        off = align_up(off + t->nbytes, SL_WRITE_ALIGNMENT);
    }
    static const uint8_t pad[SL_WRITE_ALIGNMENT];
    put(h, pad, (size_t)(align_up(h->n, SL_WRITE_ALIGNMENT) - h->n));
    if (h->oom)
        return sl_err_set(err, SL_ENOMEM, "out of memory building the header");
    return SL_OK;
}

enum { CHUNK_BYTES = 4 << 20 };

static sl_status write_tensor(int fd, wtensor *t, sl_checksum *ck, uint8_t *chunk, uint64_t *pos, sl_err *err)
{
    static const uint8_t pad[SL_WRITE_ALIGNMENT];
    sl_status st = SL_OK;
    sl_checksum_tensor_header(ck, t->name, strlen(t->name), t->type, t->n_dims, t->ne);
    if (t->data) {
        sl_checksum_update(ck, t->data, (size_t)t->nbytes);
        st = sl_write_all(fd, t->data, (size_t)t->nbytes, err);
    } else {
        uint64_t rows_per = CHUNK_BYTES / t->row_bytes;
        if (rows_per == 0)
            return sl_err_set(err, SL_ERANGE, "tensor '%s': a row of %llu bytes exceeds the %d-byte write chunk",
                              t->name, (unsigned long long)t->row_bytes, CHUNK_BYTES);
        for (uint64_t r = 0; r < t->nrows && !st; r += rows_per) {
            uint64_t n = t->nrows - r < rows_per ? t->nrows - r : rows_per;
            st = t->fill(t->ctx, t->name, r, n, chunk, err);
            if (!st) {
                sl_checksum_update(ck, chunk, (size_t)(n * t->row_bytes));
                st = sl_write_all(fd, chunk, (size_t)(n * t->row_bytes), err);
            }
        }
    }
    if (st)
        return sl_err_prefix(err, st, "tensor '%s'", t->name);
    *pos += t->nbytes;
    uint64_t padn = align_up(*pos, SL_WRITE_ALIGNMENT) - *pos;
    *pos += padn;
    return sl_write_all(fd, pad, (size_t)padn, err);
}

sl_status sl_gw_write(sl_gguf_writer *w, const char *path, char *checksum_out, sl_err *err)
{
    buf h = {0};
    uint64_t ck_off = 0;
    sl_status st = build_header(w, &h, &ck_off, err);
    if (st) {
        free(h.p);
        return st;
    }
    sl_atomic_file f;
    st = sl_atomic_open(&f, path, err);
    if (st) {
        free(h.p);
        return st;
    }
    sl_checksum *ck = sl_checksum_new();
    uint8_t *chunk = malloc(CHUNK_BYTES);
    if (!ck || !chunk)
        st = sl_err_set(err, SL_ENOMEM, "out of memory");
    if (!st)
        st = sl_write_all(f.fd, h.p, h.n, err);
    uint64_t pos = 0;
    for (size_t i = 0; i < w->n_t && !st; i++)
        st = write_tensor(f.fd, &w->t[i], ck, chunk, &pos, err);
    char sum[SL_CHECKSUM_STRLEN + 1];
    if (!st) {
        sl_checksum_final(ck, sum);
        st = sl_pwrite_all(f.fd, sum, SL_CHECKSUM_STRLEN, ck_off, err);
    }
    if (!st)
        st = sl_atomic_commit(&f, err);
    sl_atomic_abort(&f);
    sl_checksum_free(ck);
    free(chunk);
    free(h.p);
    if (st)
        return sl_err_prefix(err, st, "writing %s", path);
    if (checksum_out)
        memcpy(checksum_out, sum, sizeof sum);
    return SL_OK;
}
