/* gguf_read.c - validating GGUF reader over a read-only mapping.
 *
 * Order of checks: header, then every metadata pair (lengths against the
 * bytes left, types known, bools 0/1, arrays not nested), duplicate keys,
 * general.alignment, then every tensor record (dims, type, sizes without
 * overflow), duplicate names, and finally every data range: aligned, inside
 * the file, not overlapping another.  Nothing is dereferenced before its
 * bounds are known. */
#include "sl_gguf.h"

#include <stdlib.h>
#include <string.h>

#include "sl_checksum.h"
#include "sl_le.h"
#include "sl_types.h"

typedef struct cursor {
    const uint8_t *p;
    size_t len;
    size_t off;
} cursor;

static size_t left(const cursor *c) { return c->len - c->off; }

static sl_status take_u32(cursor *c, uint32_t *v, const char *what, sl_err *err)
{
    *v = 0; /* on failure too: nothing downstream (nor GCC) sees it unset */
    if (left(c) < 4)
        return sl_err_set(err, SL_EFORMAT, "truncated at byte %zu reading %s", c->off, what);
    *v = sl_le_load_u32(c->p + c->off);
    c->off += 4;
    return SL_OK;
}

static sl_status take_u64(cursor *c, uint64_t *v, const char *what, sl_err *err)
{
    *v = 0; /* on failure too: nothing downstream (nor GCC) sees it unset */
    if (left(c) < 8)
        return sl_err_set(err, SL_EFORMAT, "truncated at byte %zu reading %s", c->off, what);
    *v = sl_le_load_u64(c->p + c->off);
    c->off += 8;
    return SL_OK;
}

/* A GGUF string: u64 length, bytes.  The length is checked against the
 * bytes left before anything else looks at it. */
static sl_status take_str(cursor *c, sl_str *s, const char *what, sl_err *err)
{
    uint64_t n;
    sl_status st = take_u64(c, &n, what, err);
    if (st)
        return st;
    if (n > left(c))
        return sl_err_set(err, SL_EFORMAT, "%s at byte %zu claims %llu bytes but only %zu remain", what,
                          c->off - 8, (unsigned long long)n, left(c));
    s->ptr = (const char *)c->p + c->off;
    s->len = n;
    c->off += (size_t)n;
    return SL_OK;
}

size_t sl_gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case SL_GGUF_U8: case SL_GGUF_I8: case SL_GGUF_BOOL: return 1;
    case SL_GGUF_U16: case SL_GGUF_I16: return 2;
    case SL_GGUF_U32: case SL_GGUF_I32: case SL_GGUF_F32: return 4;
    case SL_GGUF_U64: case SL_GGUF_I64: case SL_GGUF_F64: return 8;
    }
    return 0;
}

const char *sl_gguf_vtype_name(uint32_t t)
{
    static const char *const names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static char *dup_name(sl_str s, sl_err *err)
{
    char *p = malloc((size_t)s.len + 1);
    if (!p) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    memcpy(p, s.ptr, (size_t)s.len);
    p[s.len] = '\0';
    return p;
}

/* Validates one value of type t (scalar or string) at the cursor. */
static sl_status take_scalar(cursor *c, uint32_t t, const char *key, sl_err *err)
{
    if (t == SL_GGUF_STRING) {
        sl_str s;
        return take_str(c, &s, "string value", err);
    }
    size_t n = sl_gguf_vtype_size(t);
    if (n == 0)
        return sl_err_set(err, SL_EFORMAT, "key '%s': unknown value type %u", key, t);
    if (left(c) < n)
        return sl_err_set(err, SL_EFORMAT, "key '%s': truncated value at byte %zu", key, c->off);
    if (t == SL_GGUF_BOOL && c->p[c->off] > 1)
        return sl_err_set(err, SL_EFORMAT, "key '%s': bool value %u is neither 0 nor 1", key, c->p[c->off]);
    c->off += n;
    return SL_OK;
}

static sl_status take_kv(cursor *c, sl_gguf_kv *kv, uint64_t idx, sl_err *err)
{
    sl_str key;
    sl_status st = take_str(c, &key, "metadata key", err);
    if (st)
        return sl_err_prefix(err, st, "metadata pair %llu", (unsigned long long)idx);
    if (key.len == 0 || key.len > SL_GGUF_MAX_KEY_LEN)
        return sl_err_set(err, SL_EFORMAT, "metadata pair %llu: key length %llu outside 1..%u",
                          (unsigned long long)idx, (unsigned long long)key.len, SL_GGUF_MAX_KEY_LEN);
    if (memchr(key.ptr, '\0', (size_t)key.len))
        return sl_err_set(err, SL_EFORMAT, "metadata pair %llu: key contains a NUL byte", (unsigned long long)idx);
    kv->key = dup_name(key, err);
    if (!kv->key)
        return SL_ENOMEM;
    kv->raw = c->p + c->off;
    st = take_u32(c, &kv->type, "value type", err);
    if (st)
        return sl_err_prefix(err, st, "key '%s'", kv->key);
    if (kv->type == SL_GGUF_ARRAY) {
        st = take_u32(c, &kv->arr_type, "array element type", err);
        if (!st)
            st = take_u64(c, &kv->arr_n, "array length", err);
        if (st)
            return sl_err_prefix(err, st, "key '%s'", kv->key);
        kv->val = c->p + c->off;
        if (kv->arr_type == SL_GGUF_ARRAY)
            return sl_err_set(err, SL_EUNSUPPORTED, "key '%s': nested arrays are not supported", kv->key);
        if (kv->arr_type == SL_GGUF_STRING) {
            if (kv->arr_n > left(c) / 8) /* each string takes at least its 8-byte length */
                return sl_err_set(err, SL_EFORMAT, "key '%s': array of %llu strings cannot fit in the %zu bytes left",
                                  kv->key, (unsigned long long)kv->arr_n, left(c));
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                sl_str s;
                st = take_str(c, &s, "array string", err);
                if (st)
                    return sl_err_prefix(err, st, "key '%s' element %llu", kv->key, (unsigned long long)i);
            }
        } else {
            size_t es = sl_gguf_vtype_size(kv->arr_type);
            if (es == 0)
                return sl_err_set(err, SL_EFORMAT, "key '%s': unknown array element type %u", kv->key, kv->arr_type);
            if (kv->arr_n > left(c) / es)
                return sl_err_set(err, SL_EFORMAT, "key '%s': array of %llu x %zu bytes exceeds the %zu bytes left",
                                  kv->key, (unsigned long long)kv->arr_n, es, left(c));
            if (kv->arr_type == SL_GGUF_BOOL)
                for (uint64_t i = 0; i < kv->arr_n; i++)
                    if (c->p[c->off + i] > 1)
                        return sl_err_set(err, SL_EFORMAT, "key '%s': bool element %llu is neither 0 nor 1",
                                          kv->key, (unsigned long long)i);
            c->off += (size_t)(kv->arr_n * es);
        }
    } else {
        kv->val = c->p + c->off;
        st = take_scalar(c, kv->type, kv->key, err);
        if (st)
            return st;
    }
    kv->val_size = (uint64_t)(c->p + c->off - kv->val);
    kv->raw_size = (uint64_t)(c->p + c->off - kv->raw);
    return SL_OK;
}

static sl_status take_tensor(cursor *c, sl_gguf_tensor *t, uint64_t idx, sl_err *err)
{
    sl_str name;
    sl_status st = take_str(c, &name, "tensor name", err);
    if (st)
        return sl_err_prefix(err, st, "tensor %llu", (unsigned long long)idx);
    if (name.len == 0 || name.len > SL_GGUF_MAX_KEY_LEN || memchr(name.ptr, '\0', (size_t)name.len))
        return sl_err_set(err, SL_EFORMAT, "tensor %llu: name is empty, longer than %u bytes or holds a NUL",
                          (unsigned long long)idx, SL_GGUF_MAX_KEY_LEN);
    t->name = dup_name(name, err);
    if (!t->name)
        return SL_ENOMEM;
    st = take_u32(c, &t->n_dims, "dimension count", err);
    if (st)
        return sl_err_prefix(err, st, "tensor '%s'", t->name);
    if (t->n_dims < 1 || t->n_dims > SL_GGUF_MAX_DIMS)
        return sl_err_set(err, SL_EFORMAT, "tensor '%s': %u dimensions (1..%d allowed)", t->name, t->n_dims,
                          SL_GGUF_MAX_DIMS);
    for (int d = 0; d < SL_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        st = take_u64(c, &t->ne[d], "dimension", err);
        if (st)
            return sl_err_prefix(err, st, "tensor '%s'", t->name);
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
            return sl_err_set(err, SL_EFORMAT, "tensor '%s': dimension %u is %llu (1..2^63-1 allowed)", t->name, d,
                              (unsigned long long)t->ne[d]);
    }
    st = take_u32(c, &t->type, "tensor type", err);
    if (!st)
        st = take_u64(c, &t->offset, "tensor offset", err);
    if (st)
        return sl_err_prefix(err, st, "tensor '%s'", t->name);
    const sl_type_traits *tt = sl_type_get(t->type);
    if (!tt)
        return sl_err_set(err, SL_EUNSUPPORTED, "tensor '%s': unknown type id %u", t->name, t->type);
    /* Element count and byte size, each step checked: the class of bug
     * behind CVE-2025-53630 / CVE-2026-27940 is a product that wraps. */
    uint64_t n = 1;
    for (int d = 0; d < SL_GGUF_MAX_DIMS; d++) {
        if (t->ne[d] > (uint64_t)INT64_MAX / n)
            return sl_err_set(err, SL_ERANGE, "tensor '%s': element count overflows 63 bits", t->name);
        n *= t->ne[d];
    }
    t->n_elems = n;
    uint64_t row;
    st = sl_type_row_bytes(t->type, t->ne[0], &row, err);
    if (st)
        return sl_err_prefix(err, st, "tensor '%s'", t->name);
    uint64_t rows = n / t->ne[0];
    if (rows > (uint64_t)INT64_MAX / row)
        return sl_err_set(err, SL_ERANGE, "tensor '%s': byte size overflows 63 bits", t->name);
    t->nbytes = rows * row;
    return SL_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const sl_gguf_kv *const *)a)->key, (*(const sl_gguf_kv *const *)b)->key);
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const sl_gguf_tensor *const *)a)->name, (*(const sl_gguf_tensor *const *)b)->name);
}

static int cmp_tensor_off(const void *a, const void *b)
{
    uint64_t x = (*(const sl_gguf_tensor *const *)a)->offset, y = (*(const sl_gguf_tensor *const *)b)->offset;
    return x < y ? -1 : x > y;
}

static sl_status check_alignment(sl_gguf *g, sl_err *err)
{
    g->alignment = SL_GGUF_DEFAULT_ALIGNMENT;
    const sl_gguf_kv *kv = sl_gguf_find(g, "general.alignment");
    if (!kv)
        return SL_OK;
    if (kv->type != SL_GGUF_U32)
        return sl_err_set(err, SL_EFORMAT, "general.alignment has type %s; GGUF requires u32",
                          sl_gguf_vtype_name(kv->type));
    uint32_t a = sl_le_load_u32(kv->val);
    if (a == 0 || (a & (a - 1)) != 0)
        return sl_err_set(err, SL_EFORMAT, "general.alignment %u is not a non-zero power of two", a);
    g->alignment = a;
    return SL_OK;
}

static sl_status parse(sl_gguf *g, unsigned flags, sl_err *err)
{
    cursor c = {g->base, g->size, 0};
    uint32_t magic;
    sl_status st = take_u32(&c, &magic, "magic", err);
    if (st)
        return sl_err_set(err, SL_EFORMAT, "file of %zu bytes is too short to be GGUF", g->size);
    if (magic != SL_GGUF_MAGIC)
        return sl_err_set(err, SL_EFORMAT, "bad magic 0x%08x (not a GGUF file)", magic);
    if ((st = take_u32(&c, &g->version, "version", err)))
        return st;
    if (g->version == 0x03000000u || g->version == 0x02000000u)
        return sl_err_set(err, SL_EUNSUPPORTED, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return sl_err_set(err, SL_EUNSUPPORTED, "GGUF version %u is not supported (2 and 3 are)", g->version);
    if ((st = take_u64(&c, &g->n_tensors, "tensor count", err)) ||
        (st = take_u64(&c, &g->n_kv, "metadata count", err)))
        return st;
    /* Counts against hard caps and against what the file could hold: a
     * pair takes at least 14 bytes, a tensor record at least 33. */
    if (g->n_kv > SL_GGUF_MAX_KV || g->n_kv > left(&c) / 14)
        return sl_err_set(err, SL_ERANGE, "metadata count %llu is impossible for a %zu-byte file (cap %u)",
                          (unsigned long long)g->n_kv, g->size, SL_GGUF_MAX_KV);
    if (g->n_tensors > SL_GGUF_MAX_TENSORS || g->n_tensors > left(&c) / 33)
        return sl_err_set(err, SL_ERANGE, "tensor count %llu is impossible for a %zu-byte file (cap %u)",
                          (unsigned long long)g->n_tensors, g->size, SL_GGUF_MAX_TENSORS);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->kv_sorted = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv_sorted);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    g->t_sorted = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->t_sorted);
    if (!g->kv || !g->kv_sorted || !g->tensors || !g->t_sorted)
        return sl_err_set(err, SL_ENOMEM, "out of memory for %llu keys and %llu tensors",
                          (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);

    for (uint64_t i = 0; i < g->n_kv; i++) {
        if ((st = take_kv(&c, &g->kv[i], i, err)))
            return st;
        g->kv_sorted[i] = &g->kv[i];
    }
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv);
    for (uint64_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0)
            return sl_err_set(err, SL_EFORMAT, "duplicate metadata key '%s'", g->kv_sorted[i]->key);
    if ((st = check_alignment(g, err)))
        return st;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if ((st = take_tensor(&c, &g->tensors[i], i, err)))
            return st;
        g->t_sorted[i] = &g->tensors[i];
    }
    qsort(g->t_sorted, (size_t)g->n_tensors, sizeof *g->t_sorted, cmp_tensor_name);
    for (uint64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->t_sorted[i - 1]->name, g->t_sorted[i]->name) == 0)
            return sl_err_set(err, SL_EFORMAT, "duplicate tensor name '%s'", g->t_sorted[i]->name);

    /* Data section: header end rounded up to the alignment (no overflow:
     * c.off <= size < 2^63 and alignment < 2^32). */
    uint64_t a = g->alignment;
    g->data_offset = ((uint64_t)c.off + a - 1) & ~(a - 1);
    if (g->n_tensors > 0 && g->data_offset > g->size)
        return sl_err_set(err, SL_EFORMAT, "data section would start at byte %llu, past the end of the %zu-byte file",
                          (unsigned long long)g->data_offset, g->size);
    uint64_t room = g->n_tensors > 0 ? g->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        sl_gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return sl_err_set(err, SL_EFORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %u",
                              t->name, (unsigned long long)t->offset, g->alignment);
        if (t->offset > room || t->nbytes > room - t->offset)
            return sl_err_set(err, SL_EFORMAT,
                              "tensor '%s': %llu bytes at data offset %llu run past the end of the file (%llu bytes of data)",
                              t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset,
                              (unsigned long long)room);
        t->data = g->base + g->data_offset + t->offset;
    }
    /* Overlaps: sort a scratch copy of the pointers by offset. */
    if (g->n_tensors > 1) {
        const sl_gguf_tensor **by_off = malloc((size_t)g->n_tensors * sizeof *by_off);
        if (!by_off)
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        memcpy(by_off, g->t_sorted, (size_t)g->n_tensors * sizeof *by_off);
        qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, cmp_tensor_off);
        for (uint64_t i = 1; i < g->n_tensors; i++)
            if (by_off[i - 1]->offset + by_off[i - 1]->nbytes > by_off[i]->offset) {
                st = sl_err_set(err, SL_EFORMAT, "tensors '%s' and '%s' overlap", by_off[i - 1]->name,
                                by_off[i]->name);
                free(by_off);
                return st;
            }
        free(by_off);
    }

    if (flags & SL_GGUF_VERIFY_CHECKSUM) {
        sl_str want;
        st = sl_gguf_get_str(g, "sluice.content_checksum", &want, err);
        if (st == SL_ENOTFOUND)
            return SL_OK; /* nothing to verify against; inspect says so */
        if (st)
            return st;
        char got[SL_CHECKSUM_STRLEN + 1];
        if ((st = sl_gguf_compute_checksum(g, got, err)))
            return st;
        memcpy(g->checksum, got, sizeof got);
        if (want.len != SL_CHECKSUM_STRLEN || memcmp(want.ptr, got, SL_CHECKSUM_STRLEN) != 0)
            return sl_err_set(err, SL_ECHECKSUM, "content checksum mismatch: the image says %.*s, its tensors hash to %s",
                              (int)(want.len < 64 ? want.len : 64), want.ptr, got);
    }
    return SL_OK;
}

sl_status sl_gguf_parse(const uint8_t *buf, size_t len, unsigned flags, sl_gguf **out, sl_err *err)
{
    *out = NULL;
    sl_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    g->base = buf;
    g->size = len;
    sl_status st = parse(g, flags, err);
    if (st) {
        sl_gguf_close(g);
        return st;
    }
    *out = g;
    return SL_OK;
}

sl_status sl_gguf_open(const char *path, unsigned flags, sl_gguf **out, sl_err *err)
{
    *out = NULL;
    sl_map m;
    sl_status st = sl_map_file(path, &m, err);
    if (st)
        return st;
    st = sl_gguf_parse(m.data, m.size, flags, out, err);
    if (st) {
        sl_map_release(&m);
        return sl_err_prefix(err, st, "%s", path);
    }
    (*out)->map = m;
    return SL_OK;
}

void sl_gguf_close(sl_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++)
            free((void *)g->kv[i].key);
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free((void *)g->tensors[i].name);
    free(g->kv);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    sl_map_release(&g->map);
    free(g);
}

const sl_gguf_kv *sl_gguf_find(const sl_gguf *g, const char *key)
{
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sl_gguf_kv *kv = g->kv_sorted[mid];
        int c = strcmp(key, kv->key);
        if (c == 0)
            return kv;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const sl_gguf_tensor *sl_gguf_find_tensor(const sl_gguf *g, const char *name)
{
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sl_gguf_tensor *t = g->t_sorted[mid];
        int c = strcmp(name, t->name);
        if (c == 0)
            return t;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool sl_gguf_kv_as_i64(const sl_gguf_kv *kv, int64_t *out)
{
    const uint8_t *p = kv->val;
    switch (kv->type) {
    case SL_GGUF_U8: *out = p[0]; return true;
    case SL_GGUF_I8: *out = (int8_t)p[0]; return true;
    case SL_GGUF_U16: *out = sl_le_load_u16(p); return true;
    case SL_GGUF_I16: *out = (int16_t)sl_le_load_u16(p); return true;
    case SL_GGUF_U32: *out = sl_le_load_u32(p); return true;
    case SL_GGUF_I32: *out = (int32_t)sl_le_load_u32(p); return true;
    case SL_GGUF_I64: *out = (int64_t)sl_le_load_u64(p); return true;
    case SL_GGUF_U64: {
        uint64_t v = sl_le_load_u64(p);
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)v;
        return true;
    }
    }
    return false;
}

bool sl_gguf_kv_as_f64(const sl_gguf_kv *kv, double *out)
{
    int64_t i;
    if (kv->type == SL_GGUF_F32) {
        *out = sl_le_load_f32(kv->val);
        return true;
    }
    if (kv->type == SL_GGUF_F64) {
        uint64_t b = sl_le_load_u64(kv->val);
        memcpy(out, &b, 8);
        return true;
    }
    if (kv->type == SL_GGUF_U64) {
        *out = (double)sl_le_load_u64(kv->val);
        return true;
    }
    if (sl_gguf_kv_as_i64(kv, &i)) {
        *out = (double)i;
        return true;
    }
    return false;
}

sl_str sl_gguf_kv_str(const sl_gguf_kv *kv)
{
    sl_str s = {NULL, 0};
    if (kv->type == SL_GGUF_STRING) {
        s.len = sl_le_load_u64(kv->val);
        s.ptr = (const char *)kv->val + 8;
    }
    return s;
}

static sl_status find_typed(const sl_gguf *g, const char *key, const sl_gguf_kv **kv, sl_err *err)
{
    *kv = sl_gguf_find(g, key);
    if (!*kv)
        return sl_err_set(err, SL_ENOTFOUND, "metadata key '%s' is missing", key);
    return SL_OK;
}

sl_status sl_gguf_get_u64(const sl_gguf *g, const char *key, uint64_t *out, sl_err *err)
{
    const sl_gguf_kv *kv;
    sl_status st = find_typed(g, key, &kv, err);
    if (st)
        return st;
    if (kv->type == SL_GGUF_U64) {
        *out = sl_le_load_u64(kv->val);
        return SL_OK;
    }
    int64_t v;
    if (!sl_gguf_kv_as_i64(kv, &v) || v < 0)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' (%s) is not a non-negative integer", key,
                          sl_gguf_vtype_name(kv->type));
    *out = (uint64_t)v;
    return SL_OK;
}

sl_status sl_gguf_get_u32(const sl_gguf *g, const char *key, uint32_t *out, sl_err *err)
{
    uint64_t v;
    sl_status st = sl_gguf_get_u64(g, key, &v, err);
    if (st)
        return st;
    if (v > UINT32_MAX)
        return sl_err_set(err, SL_ERANGE, "metadata key '%s' = %llu does not fit 32 bits", key, (unsigned long long)v);
    *out = (uint32_t)v;
    return SL_OK;
}

sl_status sl_gguf_get_f32(const sl_gguf *g, const char *key, float *out, sl_err *err)
{
    const sl_gguf_kv *kv;
    sl_status st = find_typed(g, key, &kv, err);
    if (st)
        return st;
    double d;
    if (kv->type == SL_GGUF_ARRAY || kv->type == SL_GGUF_STRING || !sl_gguf_kv_as_f64(kv, &d))
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' (%s) is not a number", key, sl_gguf_vtype_name(kv->type));
    *out = (float)d;
    return SL_OK;
}

sl_status sl_gguf_get_bool(const sl_gguf *g, const char *key, bool *out, sl_err *err)
{
    const sl_gguf_kv *kv;
    sl_status st = find_typed(g, key, &kv, err);
    if (st)
        return st;
    if (kv->type != SL_GGUF_BOOL)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' (%s) is not a bool", key, sl_gguf_vtype_name(kv->type));
    *out = kv->val[0] != 0;
    return SL_OK;
}

sl_status sl_gguf_get_str(const sl_gguf *g, const char *key, sl_str *out, sl_err *err)
{
    const sl_gguf_kv *kv;
    sl_status st = find_typed(g, key, &kv, err);
    if (st)
        return st;
    if (kv->type != SL_GGUF_STRING)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' (%s) is not a string", key, sl_gguf_vtype_name(kv->type));
    *out = sl_gguf_kv_str(kv);
    return SL_OK;
}

sl_status sl_gguf_arr_strings(const sl_gguf_kv *kv, sl_str *out, sl_err *err)
{
    if (kv->type != SL_GGUF_ARRAY || kv->arr_type != SL_GGUF_STRING)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' is not an array of strings", kv->key);
    const uint8_t *p = kv->val; /* lengths were validated by the parser */
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        out[i].len = sl_le_load_u64(p);
        out[i].ptr = (const char *)p + 8;
        p += 8 + out[i].len;
    }
    return SL_OK;
}

static bool elem_as_f64(uint32_t t, const uint8_t *p, double *out)
{
    sl_gguf_kv tmp = {.type = t, .val = p};
    return sl_gguf_kv_as_f64(&tmp, out);
}

sl_status sl_gguf_arr_f32(const sl_gguf_kv *kv, float *out, sl_err *err)
{
    size_t es = sl_gguf_vtype_size(kv->arr_type);
    if (kv->type != SL_GGUF_ARRAY || es == 0 || kv->arr_type == SL_GGUF_BOOL)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' is not a numeric array", kv->key);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        double d;
        if (!elem_as_f64(kv->arr_type, kv->val + i * es, &d))
            return sl_err_set(err, SL_ERANGE, "metadata key '%s' element %llu is out of range", kv->key,
                              (unsigned long long)i);
        out[i] = (float)d;
    }
    return SL_OK;
}

sl_status sl_gguf_arr_i64(const sl_gguf_kv *kv, int64_t *out, sl_err *err)
{
    size_t es = sl_gguf_vtype_size(kv->arr_type);
    if (kv->type != SL_GGUF_ARRAY || es == 0 || kv->arr_type == SL_GGUF_BOOL || kv->arr_type == SL_GGUF_F32 ||
        kv->arr_type == SL_GGUF_F64)
        return sl_err_set(err, SL_EFORMAT, "metadata key '%s' is not an integer array", kv->key);
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        sl_gguf_kv tmp = {.type = kv->arr_type, .val = kv->val + i * es};
        if (!sl_gguf_kv_as_i64(&tmp, &out[i]))
            return sl_err_set(err, SL_ERANGE, "metadata key '%s' element %llu is out of range", kv->key,
                              (unsigned long long)i);
    }
    return SL_OK;
}

sl_status sl_gguf_compute_checksum(const sl_gguf *g, char *out, sl_err *err)
{
    if (g->checksum[0]) {
        memcpy(out, g->checksum, sizeof g->checksum);
        return SL_OK;
    }
    sl_checksum *c = sl_checksum_new();
    if (!c)
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const sl_gguf_tensor *t = &g->tensors[i];
        sl_checksum_tensor_header(c, t->name, strlen(t->name), t->type, t->n_dims, t->ne);
        sl_checksum_update(c, t->data, (size_t)t->nbytes);
    }
    sl_checksum_final(c, out);
    sl_checksum_free(c);
    return SL_OK;
}
