/* GGUF writer and reader: round trips for every type, metadata of every
 * value type, checksums, atomic replacement. */
#include <criterion/criterion.h>
#include <math.h>
#include <sys/stat.h>

#include "sl_checksum.h"
#include "sl_gguf.h"
#include "sl_gguf_write.h"
#include "sl_types.h"
#include "test_support.h"

static void fill_rows(float *x, size_t n, float seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = sinf(seed + 0.37f * (float)i) * (1.0f + (float)(i % 7));
}

Test(gguf, round_trip_every_type_and_value_type)
{
    char *dir = test_tmpdir();
    const uint32_t types[] = {SL_TYPE_F32, SL_TYPE_F16, SL_TYPE_BF16, SL_TYPE_Q8_0, SL_TYPE_Q4_0, SL_TYPE_Q4_1};
    enum { COLS = 96, ROWS = 5 };
    static float src[COLS * ROWS];
    static uint8_t q[6][COLS * ROWS * 4];
    fill_rows(src, COLS * ROWS, 0.5f);
    sl_gguf_writer *w = sl_gw_new();
    sl_err err;
    for (size_t k = 0; k < 6; k++) {
        for (int r = 0; r < ROWS; r++) {
            uint64_t rb;
            cr_assert_eq(sl_type_row_bytes(types[k], COLS, &rb, &err), SL_OK);
            cr_assert_eq(sl_quantize_row(types[k], src + r * COLS, q[k] + r * rb, COLS, &err), SL_OK, "%s", err.msg);
        }
        char name[32];
        snprintf(name, sizeof name, "t.%s", sl_type_get(types[k])->name);
        uint64_t ne[2] = {COLS, ROWS};
        cr_assert_eq(sl_gw_add_tensor(w, name, types[k], 2, ne, q[k], &err), SL_OK, "%s", err.msg);
    }
    cr_assert_eq(sl_gw_set_str(w, "general.architecture", "llama"), SL_OK);
    cr_assert_eq(sl_gw_set_u32(w, "a.u32", 4000000000u), SL_OK);
    cr_assert_eq(sl_gw_set_i32(w, "a.i32", -7), SL_OK);
    cr_assert_eq(sl_gw_set_u64(w, "a.u64", 1ull << 40), SL_OK);
    cr_assert_eq(sl_gw_set_f32(w, "a.f32", 1.5f), SL_OK);
    cr_assert_eq(sl_gw_set_bool(w, "a.bool", true), SL_OK);
    cr_assert_eq(sl_gw_set_u32(w, "a.u32", 42), SL_OK); /* replaces, no duplicate */
    sl_str strs[3] = {{"x", 1}, {"", 0}, {"\xe2\x96\x81hello", 8}};
    cr_assert_eq(sl_gw_set_str_arr(w, "a.strs", 3, strs), SL_OK);
    int32_t ints[4] = {1, -2, 3, -4};
    cr_assert_eq(sl_gw_set_arr(w, "a.ints", SL_GGUF_I32, 4, ints), SL_OK);
    char sum[SL_CHECKSUM_STRLEN + 1];
    const char *path = test_path(dir, "rt.gguf");
    cr_assert_eq(sl_gw_write(w, path, sum, &err), SL_OK, "%s", err.msg);
    sl_gw_free(w);

    sl_gguf *g;
    cr_assert_eq(sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_OK, "%s", err.msg);
    cr_assert_eq(g->version, 3);
    cr_assert_eq(g->alignment, 64);
    cr_assert_eq(g->n_tensors, 6);
    uint32_t u32;
    cr_assert_eq(sl_gguf_get_u32(g, "a.u32", &u32, &err), SL_OK);
    cr_assert_eq(u32, 42);
    uint32_t qv;
    cr_assert_eq(sl_gguf_get_u32(g, "general.quantization_version", &qv, &err), SL_OK, "quantized images say so");
    cr_assert_eq(qv, 2);
    const sl_gguf_kv *kv = sl_gguf_find(g, "a.i32");
    int64_t i64;
    cr_assert(sl_gguf_kv_as_i64(kv, &i64) && i64 == -7);
    uint64_t u64;
    cr_assert_eq(sl_gguf_get_u64(g, "a.u64", &u64, &err), SL_OK);
    cr_assert_eq(u64, 1ull << 40);
    float f;
    cr_assert_eq(sl_gguf_get_f32(g, "a.f32", &f, &err), SL_OK);
    cr_assert_eq(f, 1.5f);
    bool b;
    cr_assert_eq(sl_gguf_get_bool(g, "a.bool", &b, &err), SL_OK);
    cr_assert(b);
    cr_assert_eq(sl_gguf_get_u32(g, "a.i32", &u32, &err), SL_EFORMAT, "negative value is not a u32");
    cr_assert_eq(sl_gguf_get_u32(g, "missing", &u32, &err), SL_ENOTFOUND);
    sl_str got[3];
    kv = sl_gguf_find(g, "a.strs");
    cr_assert_eq(kv->arr_n, 3);
    cr_assert_eq(sl_gguf_arr_strings(kv, got, &err), SL_OK);
    for (int i = 0; i < 3; i++)
        cr_assert(got[i].len == strs[i].len && memcmp(got[i].ptr, strs[i].ptr, got[i].len) == 0);
    int64_t iv[4];
    cr_assert_eq(sl_gguf_arr_i64(sl_gguf_find(g, "a.ints"), iv, &err), SL_OK);
    cr_assert(iv[0] == 1 && iv[1] == -2 && iv[3] == -4);
    sl_str ck;
    cr_assert_eq(sl_gguf_get_str(g, "sluice.content_checksum", &ck, &err), SL_OK);
    cr_assert(ck.len == SL_CHECKSUM_STRLEN && memcmp(ck.ptr, sum, ck.len) == 0);
    for (size_t k = 0; k < 6; k++) {
        const sl_gguf_tensor *t = &g->tensors[k];
        cr_assert_eq(t->type, types[k]);
        cr_assert_eq(t->ne[0], COLS);
        cr_assert_eq(t->ne[1], ROWS);
        cr_assert_eq((uintptr_t)t->data % 64, 0, "tensor data aligned to 64 in the file");
        cr_assert_arr_eq(t->data, q[k], t->nbytes, "%s bytes survive the round trip", t->name);
        cr_assert_eq(sl_gguf_find_tensor(g, t->name), t);
    }
    sl_gguf_close(g);
    test_rmtree(dir);
}

static sl_status fill_ramp(void *ctx, const char *name, uint64_t row0, uint64_t n, void *dst, sl_err *err)
{
    (void)ctx;
    (void)name;
    (void)err;
    float *d = dst;
    for (uint64_t r = 0; r < n; r++)
        for (int j = 0; j < 1000; j++)
            d[r * 1000 + j] = (float)(row0 + r) + (float)j / 1000.0f;
    return SL_OK;
}

Test(gguf, streamed_tensor_rows_arrive_in_order)
{
    char *dir = test_tmpdir();
    sl_gguf_writer *w = sl_gw_new();
    sl_err err;
    uint64_t ne[2] = {1000, 3000}; /* 12 MB: several 4 MiB write chunks */
    cr_assert_eq(sl_gw_add_tensor_fill(w, "ramp", SL_TYPE_F32, 2, ne, fill_ramp, NULL, &err), SL_OK);
    const char *path = test_path(dir, "ramp.gguf");
    cr_assert_eq(sl_gw_write(w, path, NULL, &err), SL_OK, "%s", err.msg);
    sl_gw_free(w);
    sl_gguf *g;
    cr_assert_eq(sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_OK, "%s", err.msg);
    const float *d = (const float *)g->tensors[0].data;
    cr_assert_eq(d[0], 0.0f);
    cr_assert_eq(d[2999 * 1000 + 999], 2999.999f);
    cr_assert_eq(d[1234 * 1000 + 5], 1234.005f);
    sl_gguf_close(g);
    test_rmtree(dir);
}

Test(gguf, checksum_catches_a_flipped_data_byte)
{
    char *dir = test_tmpdir();
    sl_gguf_writer *w = sl_gw_new();
    sl_err err;
    float x[64];
    fill_rows(x, 64, 1.0f);
    uint64_t ne[1] = {64};
    cr_assert_eq(sl_gw_add_tensor(w, "x", SL_TYPE_F32, 1, ne, x, &err), SL_OK);
    const char *path = test_path(dir, "ck.gguf");
    cr_assert_eq(sl_gw_write(w, path, NULL, &err), SL_OK);
    sl_gw_free(w);
    size_t len;
    unsigned char *b = test_slurp(path, &len);
    b[len - 10] ^= 0x01;
    sl_gguf *g;
    cr_assert_eq(sl_gguf_parse(b, len, 0, &g, &err), SL_OK, "structure is still valid");
    sl_gguf_close(g);
    cr_assert_eq(sl_gguf_parse(b, len, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_ECHECKSUM);
    cr_assert(strstr(err.msg, "checksum mismatch"), "%s", err.msg);
    free(b);
    test_rmtree(dir);
}

Test(gguf, write_is_atomic_and_leaves_no_temporary_file)
{
    char *dir = test_tmpdir();
    const char *path = test_path(dir, "img.gguf");
    test_spit(path, "old contents", 12);
    sl_err err;
    /* A failing write (a fill error half way) leaves the old file alone. */
    sl_gguf_writer *w = sl_gw_new();
    uint64_t ne[2] = {1000, 3000};
    cr_assert_eq(sl_gw_add_tensor_fill(w, "bad", SL_TYPE_Q8_0, 2, ne, NULL, NULL, &err), SL_EFORMAT,
                 "1000 is not whole q8_0 blocks");
    sl_gw_free(w);

    size_t len;
    unsigned char *b = test_slurp(path, &len);
    cr_assert(len == 12 && memcmp(b, "old contents", 12) == 0);
    free(b);
    w = sl_gw_new();
    cr_assert_eq(sl_gw_set_str(w, "k", "v"), SL_OK);
    cr_assert_eq(sl_gw_write(w, path, NULL, &err), SL_OK, "%s", err.msg);
    sl_gw_free(w);
    sl_gguf *g;
    cr_assert_eq(sl_gguf_open(path, SL_GGUF_VERIFY_CHECKSUM, &g, &err), SL_OK, "%s", err.msg);
    sl_gguf_close(g);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0, "temporary file removed");
    /* Into a directory that does not exist: a clear error. */
    w = sl_gw_new();
    cr_assert_eq(sl_gw_write(w, "/nonexistent-dir/x.gguf", NULL, &err), SL_EIO);
    cr_assert(strstr(err.msg, "/nonexistent-dir/x.gguf"), "%s", err.msg);
    sl_gw_free(w);
    test_rmtree(dir);
}

static sl_status fill_fail(void *ctx, const char *name, uint64_t row0, uint64_t n, void *dst, sl_err *err)
{
    (void)ctx;
    (void)n;
    (void)dst;
    if (row0 > 0)
        return sl_err_set(err, SL_EIO, "source went away at row %llu of %s", (unsigned long long)row0, name);
    return SL_OK;
}

Test(gguf, failed_fill_keeps_the_old_image)
{
    char *dir = test_tmpdir();
    const char *path = test_path(dir, "img.gguf");
    test_spit(path, "old", 3);
    sl_gguf_writer *w = sl_gw_new();
    sl_err err;
    uint64_t ne[2] = {1 << 20, 8}; /* 4 MiB rows: one row per chunk */
    cr_assert_eq(sl_gw_add_tensor_fill(w, "x", SL_TYPE_F32, 2, ne, fill_fail, NULL, &err), SL_OK);
    cr_assert_eq(sl_gw_write(w, path, NULL, &err), SL_EIO);
    cr_assert(strstr(err.msg, "source went away"), "%s", err.msg);
    sl_gw_free(w);
    size_t len;
    unsigned char *b = test_slurp(path, &len);
    cr_assert(len == 3 && memcmp(b, "old", 3) == 0, "old image untouched");
    free(b);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    cr_assert_neq(access(tmp, F_OK), 0, "temporary file removed after failure");
    test_rmtree(dir);
}
